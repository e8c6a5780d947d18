//! Cutting basemap features into tiles: a depth-first descent of the tile pyramid. Each
//! tile's features are pre-clipped (in lon/lat) to a box a little larger than the tile,
//! its children start from those copies, and a branch stops where no feature goes
//! deeper, so only tiles that have something are ever visited.

use super::Layer;
use super::lonlat::{self, Box4};
use super::source::BaseFeature;
use crate::tiles::{LayerBuilder, PropValue, TileCoord, TileGeometry, clip_geometry, encode_tile};
use std::io::Write;

/// Tile units per side (the contract: extent 4096).
pub const EXTENT: u32 = 4096;
/// Tile units beyond the edge that shapes reach, so strokes join across tile seams.
pub const BUFFER: u32 = 64;
pub const GZIP_LEVEL: u32 = 6;

/// One encoded tile, gzipped, with a hash of its bytes for the writer's deduplication.
#[derive(Debug, Clone)]
pub struct BuiltTile {
    pub coord: TileCoord,
    pub gz: Vec<u8>,
    pub key: u128,
}

/// Every tile of the features, sorted by PMTiles tile id (the order readers are fastest
/// with). The four quarters of the world are cut on their own threads.
pub fn render_all(features: Vec<BaseFeature>, gzip_level: u32) -> Vec<BuiltTile> {
    let root = TileCoord::new(0, 0, 0).expect("tile 0/0/0 exists");
    let mut out = Vec::new();
    emit(root, &features, gzip_level, &mut out);
    if let Some(children) = root.children() {
        let parts: Vec<Vec<BuiltTile>> = std::thread::scope(|s| {
            let handles: Vec<_> = children
                .iter()
                .map(|&child| {
                    let features = &features;
                    s.spawn(move || {
                        let mut part = Vec::new();
                        if let Some(mine) = narrow(features, child, 0) {
                            descend(child, &mine, gzip_level, &mut part);
                        }
                        part
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        out.extend(parts.into_iter().flatten());
    }
    out.sort_by_key(|t| tile_id(t.coord));
    out
}

fn tile_id(c: TileCoord) -> u64 {
    pmtiles::TileCoord::new(c.z(), c.x(), c.y())
        .map(|t| pmtiles::TileId::from(t).value())
        .unwrap_or(u64::MAX)
}

fn descend(tile: TileCoord, features: &[BaseFeature], gzip_level: u32, out: &mut Vec<BuiltTile>) {
    emit(tile, features, gzip_level, out);
    let Some(children) = tile.children() else {
        return;
    };
    for child in children {
        if let Some(mine) = narrow(features, child, tile.z()) {
            descend(child, &mine, gzip_level, out);
        }
    }
}

/// The features that go below zoom `z`, clipped to a box around `tile` (twice the
/// buffer wide, so the tile clip never sees a pre-clip edge); `None` when none are left.
fn narrow(features: &[BaseFeature], tile: TileCoord, z: u8) -> Option<Vec<BaseFeature>> {
    let b = tile.buffered_bounds_lonlat(BUFFER * 2, EXTENT);
    let bx: Box4 = [b.min_x, b.min_y, b.max_x, b.max_y];
    let kept: Vec<BaseFeature> = features
        .iter()
        .filter(|f| f.maxzoom > z)
        .filter_map(|f| {
            Some(BaseFeature {
                geometry: lonlat::clip(&f.geometry, bx)?,
                ..f.clone_without_geometry()
            })
        })
        .collect();
    (!kept.is_empty()).then_some(kept)
}

impl BaseFeature {
    /// The attributes and zooms, with an empty geometry to be replaced.
    fn clone_without_geometry(&self) -> BaseFeature {
        BaseFeature {
            attrs: self.attrs.clone(),
            geometry: geo_types::Geometry::GeometryCollection(Default::default()),
            minzoom: self.minzoom,
            maxzoom: self.maxzoom,
        }
    }
}

/// Encodes the features drawn at `tile`'s zoom; nothing is added for an empty tile.
fn emit(tile: TileCoord, features: &[BaseFeature], gzip_level: u32, out: &mut Vec<BuiltTile>) {
    if let Some(bytes) = encode(tile, features) {
        let mut gz =
            flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(gzip_level));
        // Writing to a Vec cannot fail.
        if gz.write_all(&bytes).is_ok()
            && let Ok(gz) = gz.finish()
        {
            let key = xxhash_rust::xxh3::xxh3_128(&gz);
            out.push(BuiltTile {
                coord: tile,
                gz,
                key,
            });
        }
    }
}

/// The MVT bytes of one tile, `None` when no feature is drawn in it.
pub fn encode(tile: TileCoord, features: &[BaseFeature]) -> Option<Vec<u8>> {
    let z = tile.z();
    let mut layers: Vec<LayerBuilder> = Layer::ALL
        .iter()
        .map(|l| LayerBuilder::new(l.name(), EXTENT))
        .collect();
    for f in features.iter().filter(|f| f.minzoom <= z && z <= f.maxzoom) {
        let a = &f.attrs;
        let mut props: Vec<(&str, PropValue<'_>)> = Vec::with_capacity(3);
        if let Some(k) = &a.kind {
            props.push(("kind", k.as_str().into()));
        }
        if let Some(n) = &a.name {
            props.push(("name", n.as_str().into()));
        }
        if let Some(r) = a.rank {
            props.push(("rank", r.into()));
        }
        let Some(layer) = layers.get_mut(Layer::ALL.iter().position(|l| *l == a.layer)?) else {
            continue;
        };
        for g in clip_geometry(&f.geometry, tile, EXTENT, BUFFER) {
            let g = match g {
                // A label belongs to the one tile that holds it, not to the buffers of
                // its neighbours too (MapLibre would place it once per tile).
                TileGeometry::Points(pts) => TileGeometry::Points(
                    pts.into_iter()
                        .filter(|p| p.iter().all(|&v| (0..EXTENT as i32).contains(&v)))
                        .collect(),
                ),
                other => other,
            };
            if !g.is_empty() {
                layer.add_feature(None, &g, &props);
            }
        }
    }
    encode_tile(layers)
}
