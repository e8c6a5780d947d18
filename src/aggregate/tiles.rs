//! Choropleth tiles: the polygons of the boundary dataset, each carrying its count,
//! density and rate for a dataset and filters, so a map can colour areas by them.

use super::AreaCounts;
use crate::model::DatasetInfo;
use crate::store::{Query, Snapshot, StoreError, StoredGeometry};
use crate::tiles::{self, LayerBuilder, PropValue, TileCoord};
use std::collections::HashMap;

/// The properties [`choropleth_tile`] gives the areas of `areas`, with what each means:
/// what a TileJSON `vector_layers` entry lists (`name` only when the areas have a name
/// field, `rate` only when they have a population).
pub fn choropleth_fields(areas: &DatasetInfo) -> Vec<(&'static str, &'static str)> {
    let mut out = vec![
        ("id", "the area's feature id in its boundary dataset"),
        (
            "count",
            "features of the dataset in the area, with the filters",
        ),
        ("area_km2", "the area's size in square kilometres"),
        ("density", "count per square kilometre"),
    ];
    if super::areas::name_field(areas).is_some() {
        out.push(("name", "the area's name"));
    }
    let population = areas.meta.population.as_deref();
    if population.and_then(|f| areas.field_index(f)).is_some() {
        out.push(("rate", "count per 1,000 residents"));
    }
    out
}

/// The tile's layer (named after the boundary dataset): each area clipped to the tile
/// with `id`, `name`, `count`, `area_km2`, `density` and, when the areas have a
/// population, `rate`. `None` when no area reaches the tile.
pub fn choropleth_tile(
    snap: &dyn Snapshot,
    areas: &DatasetInfo,
    counts: &AreaCounts,
    tile: TileCoord,
    extent: u32,
    buffer: u32,
) -> Result<Option<Vec<u8>>, StoreError> {
    let by_id: HashMap<&str, &super::AreaCount> =
        counts.areas.iter().map(|a| (a.id.as_str(), a)).collect();
    let mut layer = LayerBuilder::new(areas.id.as_str(), extent);
    let q = Query {
        bbox: tile.buffered_boxes_lonlat(buffer, extent),
        ..Query::default()
    };
    snap.scan(areas, &q, &mut |f| {
        let (Some(StoredGeometry::Shape { geometry, .. }), Some(a)) =
            (&f.geometry, by_id.get(f.id.as_str()))
        else {
            return true;
        };
        let mut props: Vec<(&str, PropValue)> = vec![
            ("id", a.id.as_str().into()),
            ("count", PropValue::UInt(a.count)),
            ("area_km2", PropValue::Double(a.area_km2)),
            ("density", PropValue::Double(a.density)),
        ];
        if let Some(name) = &a.name {
            props.push(("name", name.as_str().into()));
        }
        if let (true, Some(rate)) = (counts.has_population, a.rate) {
            props.push(("rate", PropValue::Double(rate)));
        }
        let id = f.id.parse::<u64>().ok();
        for g in tiles::clip_geometry(geometry, tile, extent, buffer) {
            layer.add_feature(id, &g, &props);
        }
        true
    })?;
    Ok(tiles::encode_tile(vec![layer]))
}
