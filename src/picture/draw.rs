//! Drawing decoded vector tiles through style layers onto the canvas.
//!
//! Tiles carry a buffer of their neighbours' features, so each tile draws only its own
//! square: polygons are cut to it (else a translucent fill would be doubled in a strip
//! along every tile edge), lines are stroked through a mask of it (else the outline of a
//! polygon piece would draw the piece's cut edges in the buffer as lines across the
//! neighbouring tile) and points are drawn by the tile that contains them (else a
//! cluster or dot in a buffer would be drawn twice).

use super::expr::Context;
use super::style::{Kind, StyleLayer};
use super::view::View;
use super::{PictureError, text};
use crate::tiles::TileCoord;
use geo_types::Geometry;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::time::Instant;
use tiny_skia::{
    ColorU8, FillRule, LineCap, LineJoin, Mask, Paint, PathBuilder, Pixmap, Rect, Stroke, Transform,
};

/// One decoded tile: its place and its layers' features.
#[derive(Debug)]
pub struct DecodedTile {
    pub coord: TileCoord,
    pub layers: Vec<DecodedLayer>,
}

#[derive(Debug)]
pub struct DecodedLayer {
    pub name: String,
    pub extent: u32,
    pub features: Vec<(Geometry<f32>, HashMap<String, Json>)>,
}

/// Decodes one MVT (gzip-coded or not); a tile that does not decode is an error naming it.
pub fn decode(coord: TileCoord, bytes: &[u8]) -> Result<DecodedTile, PictureError> {
    let raw = if bytes.starts_with(&[0x1f, 0x8b]) {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| PictureError::Tile(format!("{coord}: {e}")))?;
        out
    } else {
        bytes.to_vec()
    };
    let bad = |e: mvt_reader::error::ParserError| PictureError::Tile(format!("{coord}: {e:?}"));
    let reader = mvt_reader::Reader::new(raw).map_err(bad)?;
    let mut layers = Vec::new();
    for meta in reader.get_layer_metadata().map_err(bad)? {
        let features = reader
            .get_features(meta.layer_index)
            .map_err(bad)?
            .into_iter()
            .map(|f| {
                let props = f
                    .properties
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, json_value(v)))
                    .collect();
                (f.geometry, props)
            })
            .collect();
        layers.push(DecodedLayer {
            name: meta.name,
            extent: meta.extent.max(1),
            features,
        });
    }
    Ok(DecodedTile { coord, layers })
}

fn json_value(v: mvt_reader::feature::Value) -> Json {
    use mvt_reader::feature::Value as V;
    match v {
        V::String(s) => Json::String(s),
        V::Float(x) => serde_json::Number::from_f64(f64::from(x)).map_or(Json::Null, Json::Number),
        V::Double(x) => serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number),
        V::Int(i) | V::SInt(i) => Json::from(i),
        V::UInt(u) => Json::from(u),
        V::Bool(b) => Json::Bool(b),
        V::Null => Json::Null,
    }
}

/// The canvas and what drawing needs across layers.
#[derive(Debug)]
pub struct Painter<'a> {
    pub canvas: Pixmap,
    pub view: &'a View,
    /// Boxes of labels drawn so far (labels that would overlap one are left out).
    labels: Vec<Rect>,
    deadline: Option<Instant>,
    drawn: u64,
}

impl<'a> Painter<'a> {
    pub fn new(view: &'a View, deadline: Option<Instant>) -> Result<Self, PictureError> {
        let canvas = Pixmap::new(view.width, view.height)
            .ok_or_else(|| PictureError::Tile("no canvas of that size".into()))?;
        Ok(Self {
            canvas,
            view,
            labels: Vec::new(),
            deadline,
            drawn: 0,
        })
    }

    /// Draws one style layer from the tiles of its source.
    pub fn layer(&mut self, layer: &StyleLayer, tiles: &[DecodedTile]) -> Result<(), PictureError> {
        let zoom = self.view.zoom();
        if !layer.visible_at(zoom) {
            return Ok(());
        }
        if layer.kind == Kind::Background {
            let empty = HashMap::new();
            let ctx = Context {
                zoom,
                geometry_type: "Point",
                properties: &empty,
            };
            let c = layer.colour(
                "background-color",
                "background-opacity",
                &ctx,
                ColorU8::from_rgba(0, 0, 0, 0),
            );
            self.canvas.fill(colour(c));
            return Ok(());
        }
        for tile in tiles {
            let Some(data) = tile.layers.iter().find(|l| l.name == layer.source_layer) else {
                continue;
            };
            let place = Placement::new(self.view, tile.coord, data.extent);
            let mask = if layer.kind == Kind::Line {
                place.mask(self.canvas.width(), self.canvas.height())
            } else {
                None
            };
            for (geometry, properties) in &data.features {
                let ctx = Context {
                    zoom,
                    geometry_type: geometry_type(geometry),
                    properties,
                };
                if !layer.passes(&ctx) {
                    continue;
                }
                self.feature(layer, &ctx, geometry, &place, mask.as_ref());
                self.drawn += 1;
                if self.drawn.is_multiple_of(512)
                    && self.deadline.is_some_and(|d| Instant::now() > d)
                {
                    return Err(PictureError::TooSlow);
                }
            }
        }
        Ok(())
    }

    fn feature(
        &mut self,
        layer: &StyleLayer,
        ctx: &Context,
        g: &Geometry<f32>,
        place: &Placement,
        mask: Option<&Mask>,
    ) {
        match (layer.kind, g) {
            (Kind::Fill, Geometry::Polygon(p)) => {
                self.fill(layer, ctx, std::slice::from_ref(p), place)
            }
            (Kind::Fill, Geometry::MultiPolygon(mp)) => self.fill(layer, ctx, &mp.0, place),
            (Kind::Line, Geometry::LineString(l)) => {
                self.line(layer, ctx, std::slice::from_ref(l), place, mask)
            }
            (Kind::Line, Geometry::MultiLineString(ml)) => {
                self.line(layer, ctx, &ml.0, place, mask)
            }
            (Kind::Line, Geometry::Polygon(p)) => self.line(layer, ctx, &rings(p), place, mask),
            (Kind::Line, Geometry::MultiPolygon(mp)) => {
                let all: Vec<_> = mp.0.iter().flat_map(rings).collect();
                self.line(layer, ctx, &all, place, mask);
            }
            (Kind::Circle | Kind::Symbol, Geometry::Point(p)) => self.point(layer, ctx, p.0, place),
            (Kind::Circle | Kind::Symbol, Geometry::MultiPoint(mp)) => {
                for p in &mp.0 {
                    self.point(layer, ctx, p.0, place);
                }
            }
            _ => {}
        }
    }

    fn fill(
        &mut self,
        layer: &StyleLayer,
        ctx: &Context,
        polygons: &[geo_types::Polygon<f32>],
        place: &Placement,
    ) {
        let c = layer.colour(
            "fill-color",
            "fill-opacity",
            ctx,
            ColorU8::from_rgba(0, 0, 0, 255),
        );
        let mut pb = PathBuilder::new();
        for ring in polygons.iter().flat_map(rings) {
            let pts: Vec<(f32, f32)> = ring.0.iter().map(|c| place.pixel(c.x, c.y)).collect();
            let cut = clip_ring(&pts, place.square);
            let Some((first, rest)) = cut.split_first() else {
                continue;
            };
            pb.move_to(first.0, first.1);
            for p in rest {
                pb.line_to(p.0, p.1);
            }
            pb.close();
        }
        if let Some(path) = pb.finish() {
            self.canvas.fill_path(
                &path,
                &paint(c),
                FillRule::EvenOdd,
                Transform::identity(),
                None,
            );
        }
    }

    fn line(
        &mut self,
        layer: &StyleLayer,
        ctx: &Context,
        lines: &[geo_types::LineString<f32>],
        place: &Placement,
        mask: Option<&Mask>,
    ) {
        let c = layer.colour(
            "line-color",
            "line-opacity",
            ctx,
            ColorU8::from_rgba(0, 0, 0, 255),
        );
        let width = layer.number("line-width", ctx, 1.0) as f32;
        let mut pb = PathBuilder::new();
        for l in lines {
            for (i, p) in l.0.iter().map(|c| place.pixel(c.x, c.y)).enumerate() {
                if i == 0 {
                    pb.move_to(p.0, p.1)
                } else {
                    pb.line_to(p.0, p.1)
                }
            }
        }
        let Some(path) = pb.finish() else { return };
        let stroke = Stroke {
            width: width.max(0.1),
            line_cap: LineCap::Round,
            line_join: LineJoin::Round,
            ..Stroke::default()
        };
        self.canvas
            .stroke_path(&path, &paint(c), &stroke, Transform::identity(), mask);
    }

    fn point(
        &mut self,
        layer: &StyleLayer,
        ctx: &Context,
        at: geo_types::Coord<f32>,
        place: &Placement,
    ) {
        if !place.owns(at.x, at.y) {
            return;
        }
        let (x, y) = place.pixel(at.x, at.y);
        if layer.kind == Kind::Symbol {
            self.label(layer, ctx, (x, y));
            return;
        }
        let r = layer.number("circle-radius", ctx, 5.0) as f32;
        let fill = layer.colour(
            "circle-color",
            "circle-opacity",
            ctx,
            ColorU8::from_rgba(0, 0, 0, 255),
        );
        let Some(path) = PathBuilder::from_circle(x, y, r.max(0.1)) else {
            return;
        };
        self.canvas.fill_path(
            &path,
            &paint(fill),
            FillRule::Winding,
            Transform::identity(),
            None,
        );
        let sw = layer.number("circle-stroke-width", ctx, 0.0) as f32;
        if sw > 0.0 {
            let sc = layer.colour(
                "circle-stroke-color",
                "circle-stroke-opacity",
                ctx,
                ColorU8::from_rgba(0, 0, 0, 255),
            );
            let stroke = Stroke {
                width: sw,
                ..Stroke::default()
            };
            self.canvas
                .stroke_path(&path, &paint(sc), &stroke, Transform::identity(), None);
        }
    }

    /// A point label centred on its point, unless it would overlap a label already drawn
    /// (and the layer does not allow overlap), as MapLibre's placement leaves it out.
    fn label(&mut self, layer: &StyleLayer, ctx: &Context, (x, y): (f32, f32)) {
        let words = layer
            .layout("text-field", ctx)
            .map(|v| super::expr::to_text(&v))
            .unwrap_or_default();
        if words.is_empty() {
            return;
        }
        let size = layer
            .layout("text-size", ctx)
            .and_then(|v| v.as_f64())
            .unwrap_or(16.0) as f32;
        let (w, h) = text::measure(&words, size);
        let (left, top) = (x - w / 2.0, y - h / 2.0);
        let overlap_ok = layer.layout("text-allow-overlap", ctx) == Some(Json::Bool(true));
        let Some(rect) = Rect::from_xywh(left, top, w.max(1.0), h.max(1.0)) else {
            return;
        };
        if !overlap_ok && self.labels.iter().any(|r| r.intersect(&rect).is_some()) {
            return;
        }
        self.labels.push(rect);
        let c = layer.colour(
            "text-color",
            "text-opacity",
            ctx,
            ColorU8::from_rgba(0, 0, 0, 255),
        );
        let halo_w = layer.number("text-halo-width", ctx, 0.0) as f32;
        let halo_c = layer.colour(
            "text-halo-color",
            "text-opacity",
            ctx,
            ColorU8::from_rgba(0, 0, 0, 0),
        );
        text::draw(
            &mut self.canvas,
            &words,
            (left, top),
            size,
            c,
            Some((halo_w, halo_c)),
        );
    }
}

fn rings(p: &geo_types::Polygon<f32>) -> Vec<geo_types::LineString<f32>> {
    std::iter::once(p.exterior().clone())
        .chain(p.interiors().iter().cloned())
        .collect()
}

fn geometry_type(g: &Geometry<f32>) -> &'static str {
    match g {
        Geometry::Point(_) | Geometry::MultiPoint(_) => "Point",
        Geometry::LineString(_) | Geometry::MultiLineString(_) | Geometry::Line(_) => "LineString",
        _ => "Polygon",
    }
}

fn colour(c: ColorU8) -> tiny_skia::Color {
    tiny_skia::Color::from_rgba8(c.red(), c.green(), c.blue(), c.alpha())
}

fn paint(c: ColorU8) -> Paint<'static> {
    let mut p = Paint::default();
    p.set_color(colour(c));
    p.anti_alias = true;
    p
}

/// Tile units of one tile -> picture pixels, and the tile's own square.
struct Placement<'a> {
    view: &'a View,
    coord: TileCoord,
    extent: f64,
    /// The tile's square in pixels: left, top, right, bottom.
    square: [f32; 4],
}

impl<'a> Placement<'a> {
    fn new(view: &'a View, coord: TileCoord, extent: u32) -> Self {
        let mut p = Self {
            view,
            coord,
            extent: f64::from(extent),
            square: [0.0; 4],
        };
        let (l, t) = p.pixel(0.0, 0.0);
        let (r, b) = p.pixel(extent as f32, extent as f32);
        p.square = [l, t, r, b];
        p
    }

    fn pixel(&self, u: f32, v: f32) -> (f32, f32) {
        let n = f64::from(1u32 << self.coord.z());
        let wx = (f64::from(self.coord.x()) + f64::from(u) / self.extent) / n;
        let wy = (f64::from(self.coord.y()) + f64::from(v) / self.extent) / n;
        self.view.pixel(wx, wy)
    }

    /// A mask of the tile's square on a `width` x `height` canvas; `None` when the square
    /// is off the canvas. Not anti-aliased: the squares of neighbouring tiles then share
    /// out the pixels along their common edge, with no seam and no pixel drawn twice.
    fn mask(&self, width: u32, height: u32) -> Option<Mask> {
        let [l, t, r, b] = self.square;
        let rect = Rect::from_ltrb(l, t, r, b)?;
        let mut mask = Mask::new(width, height)?;
        mask.fill_path(
            &PathBuilder::from_rect(rect),
            FillRule::Winding,
            false,
            Transform::identity(),
        );
        Some(mask)
    }

    /// Whether a point in tile units lies in the tile itself, not in its buffer.
    fn owns(&self, u: f32, v: f32) -> bool {
        let e = self.extent as f32;
        (0.0..e).contains(&u) && (0.0..e).contains(&v)
    }
}

/// Sutherland–Hodgman: a ring cut to the box [left, top, right, bottom]. Edges along
/// the box where the ring left it are kept; filled, they add no area.
fn clip_ring(ring: &[(f32, f32)], [l, t, r, b]: [f32; 4]) -> Vec<(f32, f32)> {
    type Side = (
        fn(&(f32, f32), f32) -> bool,
        fn((f32, f32), (f32, f32), f32) -> (f32, f32),
        f32,
    );
    let at_x = |p: (f32, f32), q: (f32, f32), x: f32| {
        let k = (x - p.0) / (q.0 - p.0);
        (x, p.1 + k * (q.1 - p.1))
    };
    let at_y = |p: (f32, f32), q: (f32, f32), y: f32| {
        let k = (y - p.1) / (q.1 - p.1);
        (p.0 + k * (q.0 - p.0), y)
    };
    let sides: [Side; 4] = [
        (|p, v| p.0 >= v, at_x, l),
        (|p, v| p.0 <= v, at_x, r),
        (|p, v| p.1 >= v, at_y, t),
        (|p, v| p.1 <= v, at_y, b),
    ];
    let mut out: Vec<(f32, f32)> = ring.to_vec();
    for (inside, cross, v) in sides {
        let input = std::mem::take(&mut out);
        let Some(&last) = input.last() else { break };
        let mut prev = last;
        for &p in &input {
            match (inside(&p, v), inside(&prev, v)) {
                (true, true) => out.push(p),
                (true, false) => {
                    out.push(cross(prev, p, v));
                    out.push(p);
                }
                (false, true) => out.push(cross(prev, p, v)),
                (false, false) => {}
            }
            prev = p;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::clip_ring;

    #[test]
    fn a_ring_is_cut_to_the_square() {
        let ring = [(-10.0, -10.0), (20.0, -10.0), (20.0, 20.0), (-10.0, 20.0)];
        let cut = clip_ring(&ring, [0.0, 0.0, 10.0, 10.0]);
        assert!(
            cut.iter()
                .all(|&(x, y)| (0.0..=10.0).contains(&x) && (0.0..=10.0).contains(&y))
        );
        assert_eq!(cut.len(), 4);
        assert!(
            clip_ring(
                &[(20.0, 20.0), (30.0, 20.0), (30.0, 30.0)],
                [0.0, 0.0, 10.0, 10.0]
            )
            .is_empty()
        );
    }
}
