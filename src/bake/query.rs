//! The one place where `tessera bake` turns its filters into layer requests. The
//! parameters mean what they mean in `/items` and tile URLs because they go through the
//! same parser; that parser still lives in `http` (it moves to `crate::query`), so this
//! is the only function of `bake` that names `http`.

use super::BakeError;
use crate::model::{Bounds, DatasetInfo};
use crate::render::LayerRequest;
use crate::store::Snapshot;

/// Filters of a bake, as a user types them.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// `datetime=` as in `/items` (an instant, an interval, or a month such as `2025-02`).
    pub datetime: Option<String>,
    /// `field=value` pairs as in a tile URL (a category filter is one of them).
    pub equals: Vec<(String, String)>,
    /// `bbox=` as in `/items`: `minx,miny,maxx,maxy`.
    pub bbox: Option<String>,
}

impl Filters {
    /// The tile URL query these filters make (without `bbox`, which tile URLs do not take).
    pub fn tile_query(&self) -> String {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        if let Some(d) = &self.datetime {
            pairs.push(("datetime", d));
        }
        for (k, v) in &self.equals {
            pairs.push((k, v));
        }
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    }
}

/// What a bake draws: datasets, one layer request each, the bbox boxes (two when
/// crossing the antimeridian; none without `bbox`).
#[derive(Debug)]
pub struct Layers {
    pub datasets: Vec<DatasetInfo>,
    pub layers: Vec<LayerRequest>,
    pub bbox: Vec<Bounds>,
}

/// The datasets named by `ids` (comma list) with the filters as layer requests.
pub fn layer_requests(
    snap: &dyn Snapshot,
    ids: &str,
    filters: &Filters,
) -> Result<Layers, BakeError> {
    let datasets = crate::http::tiles::load_datasets(snap, ids).map_err(query_error)?;
    let query = filters.tile_query();
    let mut layers = crate::http::tiles::layer_requests(Some(snap), &datasets, Some(&query))
        .map_err(query_error)?
        .unwrap_or_default();
    let bbox = match &filters.bbox {
        Some(b) => crate::http::params::parse_bbox(b).map_err(query_error)?,
        None => Vec::new(),
    };
    for l in &mut layers {
        l.query.bbox = bbox.clone();
    }
    Ok(Layers {
        datasets,
        layers,
        bbox,
    })
}

fn query_error(e: crate::http::error::ApiError) -> BakeError {
    match e.parameter {
        Some(parameter) => BakeError::Filter {
            parameter,
            detail: e.detail,
        },
        None if e.status == axum::http::StatusCode::NOT_FOUND => BakeError::Dataset(e.detail),
        None => BakeError::Filter {
            parameter: String::new(),
            detail: e.detail,
        },
    }
}
