//! The query of a tile: which datasets (layers), which tile, and each layer's filters.

use super::QueryError;
use super::items::{MAX_LAYERS, ParamSet, pairs, parse_items, resolve_within};
use crate::model::{DatasetId, DatasetInfo};
use crate::render::LayerRequest;
use crate::store::Snapshot;
use crate::tiles::TileCoord;

/// Parameters that apply to every layer; the rest must name a property of some layer.
const SHARED: [&str; 3] = ["datetime", "within", PROPERTIES];

/// The parameter that asks point tiles for extra properties: a comma list of fields.
pub const PROPERTIES: &str = "properties";

/// The dataset ids of a tile URL (`a,b,c`), at most [`MAX_LAYERS`].
pub fn layer_ids(ids: &str) -> Result<std::str::Split<'_, char>, QueryError> {
    if ids.split(',').nth(MAX_LAYERS).is_some() {
        return Err(QueryError::invalid(
            "ids",
            format!("at most {MAX_LAYERS} datasets in one tile URL"),
        ));
    }
    Ok(ids.split(','))
}

/// Loads the comma-separated datasets of a tile URL (each once, in URL order); an
/// unknown one is [`QueryError::NoDataset`].
pub fn load_datasets(snap: &dyn Snapshot, ids: &str) -> Result<Vec<DatasetInfo>, QueryError> {
    let mut out: Vec<DatasetInfo> = Vec::new();
    for id in layer_ids(ids)? {
        let parsed = DatasetId::parse(id).map_err(|_| QueryError::NoDataset(id.to_owned()))?;
        if out.iter().any(|d| d.id == parsed) {
            continue;
        }
        out.push(
            snap.dataset(&parsed)?
                .ok_or_else(|| QueryError::NoDataset(id.to_owned()))?,
        );
    }
    Ok(out)
}

/// Splits a tile query into per-layer filters: `datetime` goes to layers that have time,
/// a property filter to layers that have the property; a parameter no layer takes is an
/// error. `v=` (the versions TileJSON writes into tile URLs) is not a filter.
///
/// Without a snapshot, `within=` cannot be resolved: that is [`QueryError::NeedsCatalog`],
/// after every other parameter has been checked.
pub fn layer_requests(
    snap: Option<&dyn Snapshot>,
    datasets: &[DatasetInfo],
    raw_query: Option<&str>,
) -> Result<Vec<LayerRequest>, QueryError> {
    let pairs = pairs(raw_query)?;
    for (k, _) in &pairs {
        if k != "v"
            && !SHARED.contains(&k.as_str())
            && !datasets.iter().any(|d| d.field_index(k).is_some())
        {
            return Err(QueryError::Unknown(k.clone()));
        }
    }
    let asked = asked_properties(datasets, &pairs)?;
    let mut layers = Vec::with_capacity(datasets.len());
    for ds in datasets {
        let own: Vec<(String, String)> = pairs
            .iter()
            .filter(|(k, _)| match k.as_str() {
                "datetime" => ds.time_extent.is_some(),
                "within" => true,
                "v" | PROPERTIES => false,
                k => ds.field_index(k).is_some(),
            })
            .cloned()
            .collect();
        // Re-encoding pairs that were just decoded cannot fail; should it, it is no
        // fault of the client's, so it is not reported as a parameter.
        let raw = serde_urlencoded::to_string(&own)
            .map_err(|e| QueryError::Malformed(format!("malformed query string: {e}")))?;
        let mut req = parse_items(ds, Some(&raw), ParamSet::Tiles)?;
        match snap {
            Some(snap) => {
                resolve_within(snap, &mut req)?;
            }
            None if req.within_ref.is_some() => return Err(QueryError::NeedsCatalog),
            None => {}
        }
        req.query.limit = None;
        let mut properties: Vec<usize> = Vec::new();
        let names = ds.meta.display.tile_fields.iter().map(String::as_str);
        for name in names.chain(asked.iter().copied()) {
            if let Some(i) = ds.field_index(name)
                && !properties.contains(&i)
                && ds.meta.category.as_deref() != Some(name)
            {
                properties.push(i);
            }
        }
        layers.push(LayerRequest {
            dataset: ds.clone(),
            query: req.query,
            properties,
        });
    }
    Ok(layers)
}

/// The fields named by `properties=` (once, comma-separated); each must be a field of
/// some layer, so that a typo is a 400 naming the parameter rather than a silent no-op.
fn asked_properties<'a>(
    datasets: &[DatasetInfo],
    pairs: &'a [(String, String)],
) -> Result<Vec<&'a str>, QueryError> {
    let mut values = pairs.iter().filter(|(k, _)| k == PROPERTIES);
    let Some((_, list)) = values.next() else {
        return Ok(Vec::new());
    };
    if values.next().is_some() {
        return Err(QueryError::Repeated(PROPERTIES.into()));
    }
    let names: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if let Some(bad) = names
        .iter()
        .find(|n| !datasets.iter().any(|d| d.field_index(n).is_some()))
    {
        return Err(QueryError::invalid(
            PROPERTIES,
            format!("`{bad}` is not a field of the tile's datasets"),
        ));
    }
    Ok(names)
}

/// The tile address of a URL or a command line: `z`, `x` and `y` must be numbers (else
/// the parameter is named); a zoom or column outside the pyramid is [`QueryError::NoTile`].
pub fn parse_coord(z: &str, x: &str, y: &str) -> Result<TileCoord, QueryError> {
    let num = |name: &str, v: &str| {
        v.parse::<u32>()
            .map_err(|_| QueryError::invalid(name, format!("`{v}` is not a tile {name}")))
    };
    let (z, x, y) = (num("z", z)?, num("x", x)?, num("y", y)?);
    let z = u8::try_from(z).map_err(|_| QueryError::NoTile(format!("no zoom level {z}")))?;
    TileCoord::new(z, x, y).map_err(|e| QueryError::NoTile(e.to_string()))
}
