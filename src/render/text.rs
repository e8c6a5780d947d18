//! Tiles as readable text: what `tessera tile` prints and what golden tests compare, so a
//! change in a tile shows up as a diff a person can read. Decoding uses the independent
//! `mvt-reader` crate, not our encoder.

use geo_types::{Coord, Geometry, LineString, Polygon};
use mvt_reader::feature::Value;
use std::fmt::Write;

/// Decodes MVT bytes into text: layers in order, features in order, properties by name.
pub fn describe(bytes: &[u8]) -> Result<String, String> {
    let reader =
        mvt_reader::Reader::new(bytes.to_vec()).map_err(|e| format!("not a vector tile: {e:?}"))?;
    let layers = reader.get_layer_metadata().map_err(|e| format!("{e:?}"))?;
    let mut out = String::new();
    for layer in layers {
        let _ = writeln!(
            out,
            "layer {} (version {}, extent {}, {} features)",
            layer.name, layer.version, layer.extent, layer.feature_count
        );
        for f in reader
            .get_features(layer.layer_index)
            .map_err(|e| format!("{e:?}"))?
        {
            let id = f.id.map_or("-".into(), |i| i.to_string());
            let mut props: Vec<(String, String)> = f
                .properties
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, value(&v)))
                .collect();
            props.sort();
            let props: Vec<String> = props.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(
                out,
                "  id {id} {} {{{}}}",
                geometry(&f.geometry),
                props.join(", ")
            );
        }
    }
    Ok(out)
}

fn value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Float(x) => x.to_string(),
        Value::Double(x) => x.to_string(),
        Value::Int(i) | Value::SInt(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
    }
}

fn coords<'a>(cs: impl Iterator<Item = &'a Coord<f32>>) -> String {
    cs.map(|c| format!("{} {}", c.x, c.y))
        .collect::<Vec<_>>()
        .join(", ")
}

fn ring(l: &LineString<f32>) -> String {
    format!("({})", coords(l.coords()))
}

fn polygon(p: &Polygon<f32>) -> String {
    let mut rings = vec![ring(p.exterior())];
    rings.extend(p.interiors().iter().map(ring));
    format!("({})", rings.join(", "))
}

fn geometry(g: &Geometry<f32>) -> String {
    match g {
        Geometry::Point(p) => format!("POINT ({} {})", p.x(), p.y()),
        Geometry::MultiPoint(m) => format!("MULTIPOINT ({})", coords(m.iter().map(|p| &p.0))),
        Geometry::LineString(l) => format!("LINESTRING {}", ring(l)),
        Geometry::MultiLineString(m) => format!(
            "MULTILINESTRING ({})",
            m.iter().map(ring).collect::<Vec<_>>().join(", ")
        ),
        Geometry::Polygon(p) => format!("POLYGON {}", polygon(p)),
        Geometry::MultiPolygon(m) => format!(
            "MULTIPOLYGON ({})",
            m.iter().map(polygon).collect::<Vec<_>>().join(", ")
        ),
        other => format!("{other:?}"),
    }
}
