//! The archive's metadata: the server's TileJSON for the same datasets and filters
//! ([`crate::render::tilejson`]), narrowed to what was baked (zooms, bbox) and without
//! tile URLs.

use super::archive::Metadata;
use super::{BakeError, BakeOptions, Filters};
use crate::model::{Bounds, DatasetInfo};
use crate::render::tilejson::PointLayout;
use serde_json::{Value as Json, json};

pub fn metadata(
    datasets: &[DatasetInfo],
    points: &[Option<PointLayout>],
    filters: &Filters,
    bbox: &[Bounds],
    opts: &BakeOptions,
) -> Result<Metadata, BakeError> {
    let tj =
        crate::render::tilejson::datasets_tilejson(datasets, points, "", &filters.tile_query());
    let mut doc = serde_json::to_value(&tj).map_err(|e| BakeError::Write(e.to_string()))?;
    let obj = doc
        .as_object_mut()
        .ok_or_else(|| BakeError::Write("TileJSON is not an object".into()))?;
    obj.remove("tiles");
    let number = |v: &Json, i: usize| v.get(i).and_then(Json::as_f64);
    let b = obj.get("bounds").cloned().unwrap_or_default();
    let mut bounds = match (number(&b, 0), number(&b, 1), number(&b, 2), number(&b, 3)) {
        (Some(w), Some(s), Some(e), Some(n)) => [w, s, e, n],
        _ => crate::render::tilejson::WORLD,
    };
    // One box: the bounds are what lies inside it. Two (across the antimeridian): the
    // data's bounds stay, a box of both would claim the whole width.
    if let [only] = bbox {
        bounds = [
            bounds[0].max(only.min_x),
            bounds[1].max(only.min_y),
            bounds[2].min(only.max_x),
            bounds[3].min(only.max_y),
        ];
        if bounds[0] > bounds[2] || bounds[1] > bounds[3] {
            bounds = [only.min_x, only.min_y, only.max_x, only.max_y];
        }
    }
    let (minzoom, maxzoom) = (opts.minzoom, opts.maxzoom);
    let span = (bounds[2] - bounds[0]).max(bounds[3] - bounds[1]).max(1e-6);
    let zoom = ((360.0 / span).log2().floor().clamp(0.0, 16.0) as u8).clamp(minzoom, maxzoom);
    let center = (
        (bounds[0] + bounds[2]) / 2.0,
        (bounds[1] + bounds[3]) / 2.0,
        zoom,
    );
    obj.insert("bounds".into(), json!(bounds));
    obj.insert("center".into(), json!([center.0, center.1, center.2]));
    obj.insert("minzoom".into(), json!(minzoom));
    obj.insert("maxzoom".into(), json!(maxzoom));
    if let Some(Json::Array(layers)) = obj.get_mut("vector_layers") {
        for l in layers.iter_mut().filter_map(Json::as_object_mut) {
            l.insert("minzoom".into(), json!(minzoom));
            l.insert("maxzoom".into(), json!(maxzoom));
        }
    }
    let text = |k: &str| obj.get(k).and_then(Json::as_str).unwrap_or("").to_owned();
    Ok(Metadata {
        name: text("name"),
        description: text("description"),
        attribution: text("attribution"),
        bounds,
        center,
        minzoom,
        maxzoom,
        tilejson: doc,
    })
}
