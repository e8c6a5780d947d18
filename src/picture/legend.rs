//! The legend box (bottom left) and the attribution line (bottom right) of a picture:
//! corners, so they cover as little of a centred view's data as they can.

use super::style::parse_colour;
use super::text;
use tiny_skia::{ColorU8, FillRule, Paint, PathBuilder, Pixmap, Rect, Transform};

/// What the legend lists: a title and (label, CSS colour) lines.
#[derive(Debug, Clone, Default)]
pub struct Legend {
    pub title: String,
    pub entries: Vec<(String, String)>,
}

/// Longest label shown; longer ones end in an ellipsis (a legend must not cover the map).
const MAX_LABEL_CHARS: usize = 32;

fn shorten(s: &str) -> String {
    if s.chars().count() <= MAX_LABEL_CHARS {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX_LABEL_CHARS - 1).collect();
    out.push('…');
    out
}

fn rgba(r: u8, g: u8, b: u8, a: u8) -> ColorU8 {
    ColorU8::from_rgba(r, g, b, a)
}

fn fill_rect(canvas: &mut Pixmap, rect: Rect, c: ColorU8) {
    let mut paint = Paint::default();
    paint.set_color_rgba8(c.red(), c.green(), c.blue(), c.alpha());
    canvas.fill_rect(rect, &paint, Transform::identity(), None);
}

/// Text size of legend and attribution, scaled down on small pictures.
fn size_for(canvas: &Pixmap) -> f32 {
    (canvas.height().min(canvas.width()) as f32 / 40.0).clamp(7.0, 14.0)
}

/// Draws the legend; lines that do not fit above the attribution are left out.
pub fn draw_legend(canvas: &mut Pixmap, legend: &Legend) {
    if legend.entries.is_empty() {
        return;
    }
    let size = size_for(canvas);
    let line = size * 1.5;
    let pad = size * 0.8;
    let room = canvas.height() as f32 - 3.0 * line - 2.0 * pad;
    let fits = ((room / line).floor().max(0.0) as usize).min(legend.entries.len());
    if fits == 0 {
        return;
    }
    let entries = &legend.entries[..fits];
    let title = shorten(&legend.title);
    let widest = entries
        .iter()
        .map(|(l, _)| text::measure(&shorten(l), size).0 + line)
        .chain([text::measure(&title, size).0])
        .fold(0.0_f32, f32::max);
    let (w, h) = (widest + 2.0 * pad, line * (fits as f32 + 1.0) + 2.0 * pad);
    let left = pad;
    let top = canvas.height() as f32 - h - line * 1.5;
    if let Some(r) = Rect::from_xywh(left, top, w, h) {
        fill_rect(canvas, r, rgba(255, 255, 255, 230));
    }
    let ink = rgba(0x22, 0x22, 0x22, 255);
    text::draw(canvas, &title, (left + pad, top + pad), size, ink, None);
    for (i, (label, css)) in entries.iter().enumerate() {
        let y = top + pad + line * (i as f32 + 1.0);
        let c = parse_colour(css).unwrap_or(rgba(0x88, 0x88, 0x88, 255));
        let r = size * 0.45;
        if let Some(dot) = PathBuilder::from_circle(left + pad + r, y + line / 2.0 - size * 0.15, r)
        {
            let mut paint = Paint::default();
            paint.set_color_rgba8(c.red(), c.green(), c.blue(), 255);
            paint.anti_alias = true;
            canvas.fill_path(&dot, &paint, FillRule::Winding, Transform::identity(), None);
        }
        text::draw(
            canvas,
            &shorten(label),
            (left + pad + line, y),
            size,
            ink,
            None,
        );
    }
}

/// Draws the attribution line in the bottom right corner on a light band.
pub fn draw_attribution(canvas: &mut Pixmap, attribution: &str) {
    if attribution.is_empty() {
        return;
    }
    let size = size_for(canvas) * 0.85;
    let (w, h) = text::measure(attribution, size);
    let (cw, ch) = (canvas.width() as f32, canvas.height() as f32);
    let pad = size * 0.4;
    let left = (cw - w - 2.0 * pad).max(0.0);
    let top = ch - h - 2.0 * pad;
    if let Some(r) = Rect::from_xywh(left, top, (w + 2.0 * pad).min(cw), h + 2.0 * pad) {
        fill_rect(canvas, r, rgba(255, 255, 255, 210));
    }
    text::draw(
        canvas,
        attribution,
        (left + pad, top + pad),
        size,
        rgba(0x33, 0x33, 0x33, 255),
        None,
    );
}
