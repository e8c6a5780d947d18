//! Pictures of a map view: the same vector tiles and MapLibre style the map page shows,
//! drawn server-side into a PNG (for link previews, articles and the catalog).
//!
//! Pure and synchronous: the caller fetches the tiles (through the tile sources, so a
//! picture shows exactly what the tile endpoint serves, clusters included) and this
//! module decodes them ([`draw::decode`], mvt-reader), evaluates the style's layers per
//! feature ([`expr`], [`style`]), rasterises with anti-aliasing (tiny-skia), adds the
//! legend and attribution ([`legend`], glyphs from the vendored Noto Sans via
//! `ab_glyph`) and encodes the PNG with tiny-skia's encoder. Identical input gives
//! identical bytes: nothing depends on time, hash order or threads.

pub mod basemap;
pub mod draw;
pub mod expr;
pub mod legend;
pub mod style;
pub mod text;
pub mod view;

pub use basemap::with_basemap;
pub use legend::Legend;
pub use view::{MAX_SIDE, MIN_SIDE, View};

use draw::{DecodedTile, Painter};
use serde_json::Value as Json;
use std::time::Instant;

/// Most tiles drawn from one source: [`View::tiles`] of a 2048 x 2048 picture meets at
/// most 5 x 5 tiles of the zoom it draws.
pub const MAX_TILES: usize = 25;

/// Why a picture could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PictureError {
    /// A request parameter is out of range (the picture's size, its box).
    #[error("{param}: {message}")]
    BadParam { param: String, message: String },
    /// A tile did not decode.
    #[error("a tile of the picture does not decode: {0}")]
    Tile(String),
    /// Drawing ran past its deadline.
    #[error("the picture took too long to draw")]
    TooSlow,
    #[error("PNG encoding failed: {0}")]
    Encode(String),
}

/// The tiles of one style source (`data`, `basemap`...), raw MVT bytes by coordinate.
#[derive(Debug, Default)]
pub struct SourceTiles {
    pub name: String,
    pub tiles: Vec<(crate::tiles::TileCoord, bytes::Bytes)>,
}

/// Everything a picture is drawn from.
#[derive(Debug)]
pub struct Scene<'a> {
    pub view: View,
    /// A MapLibre style; its layers are drawn in order from the sources of the same name.
    pub style: &'a Json,
    pub sources: Vec<SourceTiles>,
    pub legend: Legend,
    pub attribution: String,
    /// When drawing must give up ([`PictureError::TooSlow`]); `None`: no limit.
    pub deadline: Option<Instant>,
}

/// Draws the scene and encodes it as PNG.
pub fn render(scene: &Scene) -> Result<Vec<u8>, PictureError> {
    let mut decoded: Vec<(&str, Vec<DecodedTile>)> = Vec::new();
    for source in &scene.sources {
        let mut tiles = Vec::with_capacity(source.tiles.len());
        for (coord, bytes) in source.tiles.iter().take(MAX_TILES) {
            tiles.push(draw::decode(*coord, bytes)?);
        }
        decoded.push((source.name.as_str(), tiles));
    }
    let mut painter = Painter::new(&scene.view, scene.deadline)?;
    painter.canvas.fill(tiny_skia::Color::WHITE);
    for layer in style::layers(scene.style) {
        let tiles = decoded
            .iter()
            .find(|(name, _)| *name == layer.source)
            .map_or(&[][..], |(_, t)| t.as_slice());
        painter.layer(&layer, tiles)?;
    }
    let mut canvas = painter.canvas;
    legend::draw_legend(&mut canvas, &scene.legend);
    legend::draw_attribution(&mut canvas, &scene.attribution);
    canvas
        .encode_png()
        .map_err(|e| PictureError::Encode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiles::{
        LayerBuilder, PropValue, TileCoord, encode_tile, tile_of, world_to_tile, world_xy,
    };
    use serde_json::json;

    /// A one-layer tile with a point of category `kind` at lon/lat.
    fn tile_with_point(coord: TileCoord, lon: f64, lat: f64, kind: &str) -> bytes::Bytes {
        let mut layer = LayerBuilder::new("pts", 4096);
        let (wx, wy) = world_xy(lon, lat);
        let at = world_to_tile(wx, wy, coord, 4096);
        layer.add_point(Some(1), [at.0, at.1], &[("kind", PropValue::from(kind))]);
        bytes::Bytes::from(encode_tile(vec![layer]).unwrap())
    }

    #[test]
    fn a_point_is_drawn_where_it_is_in_its_colour_and_the_output_repeats() {
        let style = json!({"layers": [
            {"id": "bg", "type": "background", "paint": {"background-color": "#eeeeee"}},
            {"id": "p", "type": "circle", "source": "data", "source-layer": "pts",
             "paint": {"circle-radius": 6, "circle-color": ["match", ["get", "kind"], "A", "#ff0000", "#0000ff"]}}
        ]});
        let view = View::fit([-0.2, 51.4, 0.0, 51.6], 400, 300).unwrap();
        let z = view.tile_zoom(14);
        let coord = tile_of(-0.1, 51.5, z).unwrap();
        let scene = Scene {
            view,
            style: &style,
            sources: vec![SourceTiles {
                name: "data".into(),
                tiles: vec![(coord, tile_with_point(coord, -0.1, 51.5, "A"))],
            }],
            legend: Legend {
                title: "kind".into(),
                entries: vec![("A".into(), "#ff0000".into())],
            },
            attribution: "© test".into(),
            deadline: None,
        };
        let png = render(&scene).unwrap();
        assert_eq!(png, render(&scene).unwrap(), "same scene, same bytes");
        let pixmap = tiny_skia::Pixmap::decode_png(&png).unwrap();
        let (x, y) = view.lonlat_pixel(-0.1, 51.5);
        let at = pixmap.pixel(x as u32, y as u32).unwrap();
        assert_eq!((at.red(), at.green(), at.blue()), (255, 0, 0));
        let far = pixmap.pixel(x as u32 + 40, y as u32).unwrap();
        assert_eq!((far.red(), far.green(), far.blue()), (0xee, 0xee, 0xee));
    }
}
