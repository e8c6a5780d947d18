//! The one place where `tessera bake` turns its filters into layer requests. The
//! parameters mean what they mean in `/items` and tile URLs because they go through the
//! same parser, [`crate::query`].

use super::BakeError;
use crate::model::{Bounds, DatasetInfo};
use crate::query::{self, QueryError};
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
    let datasets = query::load_datasets(snap, ids).map_err(query_error)?;
    let query = filters.tile_query();
    let mut layers =
        query::layer_requests(Some(snap), &datasets, Some(&query)).map_err(query_error)?;
    let bbox = match &filters.bbox {
        Some(b) => query::parse_bbox(b).map_err(query_error)?,
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

fn query_error(e: QueryError) -> BakeError {
    match (e.parameter(), &e) {
        (Some(parameter), _) => BakeError::Filter {
            parameter: parameter.to_owned(),
            detail: e.to_string(),
        },
        (None, QueryError::NoDataset(_) | QueryError::NoTile(_)) => {
            BakeError::Dataset(e.to_string())
        }
        (None, _) => BakeError::Filter {
            parameter: String::new(),
            detail: e.to_string(),
        },
    }
}
