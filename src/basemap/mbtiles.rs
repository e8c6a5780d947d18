//! Reading features out of an MBTiles of vector tiles (another schema, such as Mapbox
//! Streets v7): each tile is decoded with mvt-reader, the features of one of its layers
//! are turned back into lon/lat and cut to the tile's own square, and the recipe rule
//! then maps their properties like those of any other source.
//!
//! Cutting to the square drops the buffer each tile carries: the pieces of a road from
//! neighbouring tiles then meet at the tile edge instead of overlapping, and a label
//! point in a buffer is not read twice.

use super::recipe::SourceRule;
use super::source::{BaseFeature, apply};
use super::{BasemapError, lonlat};
use crate::tiles::{MAX_ZOOM, TileCoord};
use geo_types::{Coord, Geometry};
use rusqlite::{Connection, OpenFlags};
use serde_json::{Map, Value};
use std::io::Read;
use std::path::Path;

/// Reads the features of the rule's `mvt_layer` from every tile of the MBTiles `path`.
pub fn read(path: &Path, rule: &SourceRule) -> Result<Vec<BaseFeature>, BasemapError> {
    let err = |message: String| BasemapError::Source {
        path: path.to_owned(),
        message,
    };
    let Some(layer) = rule.mvt_layer.as_deref() else {
        return Err(err("an MBTiles source needs `mvt_layer`".into()));
    };
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| err(e.to_string()))?;
    let mut stmt = conn
        .prepare("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles")
        .map_err(|e| err(format!("not an MBTiles file: {e}")))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, u8>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        })
        .map_err(|e| err(e.to_string()))?;
    let mut out = Vec::new();
    for row in rows {
        let (z, x, tms_y, data) = row.map_err(|e| err(e.to_string()))?;
        // MBTiles numbers rows from the south (TMS); tiles here count from the north.
        let coord = (z <= MAX_ZOOM)
            .then(|| (1u32 << z).checked_sub(tms_y + 1))
            .flatten()
            .and_then(|y| TileCoord::new(z, x, y).ok())
            .ok_or_else(|| err(format!("tile {z}/{x}/{tms_y} (TMS) is not a tile")))?;
        let at = || format!("tile {z}/{x}/{}", coord.y());
        let bytes = gunzip(data).map_err(|e| err(format!("{}: gzip: {e}", at())))?;
        for (props, geometry) in
            features(coord, bytes, layer).map_err(|e| err(format!("{}: {e}", at())))?
        {
            out.extend(apply(&props, geometry, rule));
        }
    }
    Ok(out)
}

fn gunzip(data: Vec<u8>) -> std::io::Result<Vec<u8>> {
    if !data.starts_with(&[0x1f, 0x8b]) {
        return Ok(data);
    }
    let mut raw = Vec::new();
    flate2::read::MultiGzDecoder::new(&data[..]).read_to_end(&mut raw)?;
    Ok(raw)
}

/// One feature of a tile: its properties and its lon/lat geometry.
type Piece = (Map<String, Value>, Geometry<f64>);

/// The features of `layer` in one tile: properties as JSON values, geometry in lon/lat
/// cut to the tile's square (features wholly in the buffer are left out).
fn features(coord: TileCoord, bytes: Vec<u8>, layer: &str) -> Result<Vec<Piece>, String> {
    let reader = mvt_reader::Reader::new(bytes).map_err(|e| format!("{e:?}"))?;
    let meta = reader.get_layer_metadata().map_err(|e| format!("{e:?}"))?;
    let Some(l) = meta.iter().find(|l| l.name == layer) else {
        return Ok(Vec::new());
    };
    let b = coord.bounds_lonlat();
    let square = [b.min_x, b.min_y, b.max_x, b.max_y];
    let feats = reader
        .get_features_as::<f64>(l.layer_index)
        .map_err(|e| format!("layer {layer}: {e:?}"))?;
    let extent = f64::from(l.extent.max(1));
    let mut out = Vec::with_capacity(feats.len());
    for f in feats {
        let mut g = f.geometry;
        to_lonlat(&mut g, coord, extent);
        let Some(g) = lonlat::clip(&g, square) else {
            continue;
        };
        let props = f
            .properties
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| Some((k, json(v)?)))
            .collect();
        out.push((props, g));
    }
    Ok(out)
}

/// Tile units of `coord` -> lon/lat, in place (inverse Web Mercator).
fn to_lonlat(g: &mut Geometry<f64>, coord: TileCoord, extent: f64) {
    use geo::MapCoordsInPlace;
    let n = f64::from(1u32 << coord.z());
    let (tx, ty) = (f64::from(coord.x()), f64::from(coord.y()));
    g.map_coords_in_place(|c| {
        let wx = (tx + c.x / extent) / n;
        let wy = (ty + c.y / extent) / n;
        let lat = (std::f64::consts::PI * (1.0 - 2.0 * wy))
            .sinh()
            .atan()
            .to_degrees();
        Coord {
            x: wx * 360.0 - 180.0,
            y: lat,
        }
    });
}

fn json(v: mvt_reader::feature::Value) -> Option<Value> {
    use mvt_reader::feature::Value as V;
    Some(match v {
        V::String(s) => Value::String(s),
        V::Float(x) => serde_json::Number::from_f64(f64::from(x))?.into(),
        V::Double(x) => serde_json::Number::from_f64(x)?.into(),
        V::Int(i) | V::SInt(i) => i.into(),
        V::UInt(u) => u.into(),
        V::Bool(b) => b.into(),
        V::Null => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiles::{LayerBuilder, PropValue, TileGeometry, encode_tile};

    #[test]
    fn features_come_back_in_lonlat_cut_to_their_tile() {
        let coord = crate::tiles::tile_of(-87.65, 41.85, 13).unwrap();
        let mut layer = LayerBuilder::new("road", 4096);
        // From the tile's west edge across to 64 units beyond its east edge (the buffer).
        let line = TileGeometry::Lines(vec![vec![[0, 2048], [4096 + 64, 2048]]]);
        layer.add_feature(Some(1), &line, &[("class", PropValue::from("street"))]);
        // Wholly in the buffer: left out.
        layer.add_point(None, [4096 + 30, 100], &[("class", PropValue::from("x"))]);
        let bytes = encode_tile(vec![layer]).unwrap();
        let got = features(coord, bytes.clone(), "road").unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0["class"], "street");
        let b = coord.bounds_lonlat();
        let Some([w, s, e, n]) = lonlat::bbox(&got[0].1) else {
            panic!("no box")
        };
        assert!(
            (w - b.min_x).abs() < 1e-9 && (e - b.max_x).abs() < 1e-9,
            "{w} {e} {b:?}"
        );
        assert!(s > b.min_y && n < b.max_y);
        assert!(features(coord, bytes, "water").unwrap().is_empty());
    }
}
