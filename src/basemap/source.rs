//! Reading one source file into basemap features: GeoJSON (a FeatureCollection or one
//! feature per line, as `ogr2ogr -f GeoJSONSeq` writes), gzipped or not, or an MBTiles
//! of vector tiles ([`super::mbtiles`]), with the recipe rule deciding each feature's
//! layer, kind, name, rank and zooms.

use super::recipe::SourceRule;
use super::{BasemapError, Layer, label};
use geo_types::Geometry;
use serde_json::{Map, Value};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

/// The attributes a basemap feature carries into its tiles (shared by every clipped copy).
#[derive(Debug, Clone, PartialEq)]
pub struct Attributes {
    pub layer: Layer,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub rank: Option<i64>,
}

/// One feature ready for tiling: lon/lat geometry and the zooms it is drawn at.
#[derive(Debug, Clone)]
pub struct BaseFeature {
    pub attrs: Arc<Attributes>,
    pub geometry: Geometry<f64>,
    pub minzoom: u8,
    pub maxzoom: u8,
}

/// Reads the features of `path` that `rule` keeps.
pub fn read(path: &Path, rule: &SourceRule) -> Result<Vec<BaseFeature>, BasemapError> {
    if path.extension().is_some_and(|e| e == "mbtiles") {
        return super::mbtiles::read(path, rule);
    }
    let err = |message: String| BasemapError::Source {
        path: path.to_owned(),
        message,
    };
    let raw = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let text = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut s = String::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_string(&mut s)
            .map_err(|e| err(format!("gzip: {e}")))?;
        s
    } else {
        String::from_utf8(raw).map_err(|e| err(e.to_string()))?
    };
    let mut out = Vec::new();
    for (i, value) in documents(&text).enumerate() {
        let value = value.map_err(|e| err(format!("document {}: {e}", i + 1)))?;
        match value.get("type").and_then(Value::as_str) {
            Some("FeatureCollection") => {
                let list = value.get("features").and_then(Value::as_array);
                for f in list.into_iter().flatten() {
                    out.extend(feature(f, rule));
                }
            }
            Some("Feature") => out.extend(feature(&value, rule)),
            other => return Err(err(format!("unexpected GeoJSON type {other:?}"))),
        }
    }
    Ok(out)
}

/// The JSON documents of a file: one FeatureCollection, or one feature per line (a
/// leading RS of RFC 8142 text sequences is skipped).
fn documents(text: &str) -> Box<dyn Iterator<Item = Result<Value, serde_json::Error>> + '_> {
    let first = text
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches('\u{1e}');
    if serde_json::from_str::<Value>(first).is_err() {
        return Box::new(std::iter::once(serde_json::from_str(text)));
    }
    Box::new(
        text.lines()
            .map(|l| l.trim_start_matches('\u{1e}').trim())
            .filter(|l| !l.is_empty())
            .map(serde_json::from_str),
    )
}

/// A property as text: strings as they are, numbers without a trailing `.0`.
fn text_of(props: &Map<String, Value>, field: &str) -> Option<String> {
    match props.get(field)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(match n.as_f64() {
            Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", x as i64),
            _ => n.to_string(),
        }),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn number_of(props: &Map<String, Value>, field: &str) -> Option<f64> {
    match props.get(field)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Applies the rule to one GeoJSON feature; `None` when the rule leaves it out or its
/// geometry is missing or unreadable.
fn feature(f: &Value, rule: &SourceRule) -> Option<BaseFeature> {
    let empty = Map::new();
    let props = f
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let g: geojson::Geometry = serde_json::from_value(f.get("geometry")?.clone()).ok()?;
    apply(props, Geometry::<f64>::try_from(g.value).ok()?, rule)
}

/// Applies the rule to one feature's properties and lon/lat geometry; `None` when the
/// rule leaves it out.
pub(super) fn apply(
    props: &Map<String, Value>,
    mut geometry: Geometry<f64>,
    rule: &SourceRule,
) -> Option<BaseFeature> {
    let kind = match (&rule.kind, &rule.kind_field) {
        (Some(k), _) => Some(k.clone()),
        (None, Some(field)) => {
            let v = text_of(props, field).unwrap_or_default();
            Some(rule.kinds.get(&v).or_else(|| rule.kinds.get("*"))?.clone())
        }
        (None, None) => None,
    };
    // A regional rule keeps only what lies in its box: a world ocean limited to a region
    // must not reach every tile of the world.
    if let Some(b) = rule.bbox {
        geometry = super::lonlat::clip(&geometry, b)?;
    }
    if rule.label_points {
        geometry = Geometry::Point(label::interior_point(&geometry)?);
    }
    let minzoom = rule
        .minzoom_field
        .as_deref()
        .and_then(|field| number_of(props, field))
        .map_or(rule.minzoom, |z| {
            (z.floor().clamp(0.0, 24.0) as u8).max(rule.minzoom)
        })
        .min(rule.maxzoom);
    let rank = rule
        .rank_field
        .as_deref()
        .and_then(|field| number_of(props, field))
        .map(|r| r.round() as i64)
        .or(rule.rank);
    Some(BaseFeature {
        attrs: Arc::new(Attributes {
            layer: rule.layer,
            kind,
            name: rule.name_field.as_deref().and_then(|n| text_of(props, n)),
            rank,
        }),
        geometry,
        minzoom,
        maxzoom: rule.maxzoom,
    })
}
