//! The style layers of a MapLibre style as a picture draws them: type, source, filter,
//! zoom range and paint/layout values evaluated per feature, and CSS colours.

use super::expr::{self, Context};
use serde_json::Value as Json;
use tiny_skia::ColorU8;

/// What a style layer draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Background,
    Fill,
    Line,
    Circle,
    Symbol,
}

/// One style layer, borrowed from the style document.
#[derive(Debug)]
pub struct StyleLayer<'a> {
    pub kind: Kind,
    pub source: &'a str,
    pub source_layer: &'a str,
    filter: Option<&'a Json>,
    minzoom: f64,
    maxzoom: f64,
    paint: Option<&'a Json>,
    layout: Option<&'a Json>,
}

/// The layers of `style` a picture can draw, in drawing order. Hidden layers
/// (`visibility: none`) and types we do not draw (heatmap, raster, hillshade...) are left out.
pub fn layers(style: &Json) -> Vec<StyleLayer<'_>> {
    let list = style["layers"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    list.iter()
        .filter(|l| l["layout"]["visibility"] != "none")
        .filter_map(|l| {
            let kind = match l["type"].as_str()? {
                "background" => Kind::Background,
                "fill" => Kind::Fill,
                "line" => Kind::Line,
                "circle" => Kind::Circle,
                "symbol" => Kind::Symbol,
                _ => return None,
            };
            Some(StyleLayer {
                kind,
                source: l["source"].as_str().unwrap_or(""),
                source_layer: l["source-layer"].as_str().unwrap_or(""),
                filter: l.get("filter"),
                minzoom: l["minzoom"].as_f64().unwrap_or(0.0),
                maxzoom: l["maxzoom"].as_f64().unwrap_or(f64::INFINITY),
                paint: l.get("paint"),
                layout: l.get("layout"),
            })
        })
        .collect()
}

impl StyleLayer<'_> {
    /// MapLibre shows a layer for minzoom <= zoom < maxzoom.
    pub fn visible_at(&self, zoom: f64) -> bool {
        zoom >= self.minzoom && zoom < self.maxzoom
    }

    pub fn passes(&self, ctx: &Context) -> bool {
        expr::passes(self.filter, ctx)
    }

    fn value(group: Option<&Json>, name: &str, ctx: &Context) -> Option<Json> {
        let v = group?.get(name)?;
        Some(expr::eval(v, ctx)).filter(|v| !v.is_null())
    }

    /// A paint number, else `default` (the specification's default for that property).
    pub fn number(&self, name: &str, ctx: &Context, default: f64) -> f64 {
        Self::value(self.paint, name, ctx)
            .and_then(|v| v.as_f64())
            .unwrap_or(default)
    }

    /// A paint colour with an `*-opacity` property folded into its alpha.
    pub fn colour(&self, name: &str, opacity: &str, ctx: &Context, default: ColorU8) -> ColorU8 {
        let c = Self::value(self.paint, name, ctx)
            .and_then(|v| v.as_str().and_then(parse_colour))
            .unwrap_or(default);
        let o = self.number(opacity, ctx, 1.0).clamp(0.0, 1.0);
        ColorU8::from_rgba(
            c.red(),
            c.green(),
            c.blue(),
            (f64::from(c.alpha()) * o).round() as u8,
        )
    }

    /// A layout value (text fields, text size).
    pub fn layout(&self, name: &str, ctx: &Context) -> Option<Json> {
        Self::value(self.layout, name, ctx)
    }
}

/// A CSS colour as styles write them: `#rgb`, `#rrggbb`, `#rrggbbaa`, `rgb(...)`,
/// `rgba(...)`, and a few names. `None` for anything else.
pub fn parse_colour(s: &str) -> Option<ColorU8> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix('#') {
        let digit = |i: usize| u8::from_str_radix(hex.get(i..i + 1)?, 16).ok();
        let pair = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
        return match hex.len() {
            3 => Some(ColorU8::from_rgba(
                digit(0)? * 17,
                digit(1)? * 17,
                digit(2)? * 17,
                255,
            )),
            6 => Some(ColorU8::from_rgba(pair(0)?, pair(2)?, pair(4)?, 255)),
            8 => Some(ColorU8::from_rgba(pair(0)?, pair(2)?, pair(4)?, pair(6)?)),
            _ => None,
        };
    }
    if let Some(inner) = s
        .strip_prefix("rgba(")
        .or_else(|| s.strip_prefix("rgb("))
        .and_then(|r| r.strip_suffix(')'))
    {
        let parts: Vec<f64> = inner
            .split(',')
            .map(|p| p.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .ok()?;
        let byte = |v: f64| v.clamp(0.0, 255.0).round() as u8;
        return match parts[..] {
            [r, g, b] => Some(ColorU8::from_rgba(byte(r), byte(g), byte(b), 255)),
            [r, g, b, a] => Some(ColorU8::from_rgba(
                byte(r),
                byte(g),
                byte(b),
                byte(a * 255.0),
            )),
            _ => None,
        };
    }
    Some(match s {
        "white" => ColorU8::from_rgba(255, 255, 255, 255),
        "black" => ColorU8::from_rgba(0, 0, 0, 255),
        "transparent" => ColorU8::from_rgba(0, 0, 0, 0),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_as_styles_write_them() {
        assert_eq!(
            parse_colour("#0072b2"),
            Some(ColorU8::from_rgba(0, 0x72, 0xb2, 255))
        );
        assert_eq!(
            parse_colour("#fff"),
            Some(ColorU8::from_rgba(255, 255, 255, 255))
        );
        assert_eq!(
            parse_colour("rgba(10, 20, 30, 0.5)"),
            Some(ColorU8::from_rgba(10, 20, 30, 128))
        );
        assert_eq!(parse_colour("hsl(0, 0%, 0%)"), None);
    }
}
