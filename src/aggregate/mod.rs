//! Counts by area: the features of a dataset counted into the polygons of a boundary
//! dataset, with the same filters as items and tiles (the choropleth, the "top areas" of
//! a dashboard, `GET /collections/{id}/aggregate?by={areas}`).
//!
//! - [`AreaIndex`] (pure): an R-tree over the areas' bounding boxes, then geo's exact
//!   point-in-polygon test. A point on an edge shared by two areas counts once, for the
//!   area stored first (lowest id); points in no area are counted as `outside`. Invalid
//!   (self-intersecting) polygons are used as drawn, not repaired: see [`AreaIndex`].
//! - **Point datasets** take the fast path ([`tally`]): each point's area is found once
//!   per (dataset version, areas version) and kept as a `Vec<u32>` beside the in-memory
//!   point index of the tiles, so a request only filters (time, category, bbox, all
//!   held by the index) and adds up. Other property filters and `within=` ask the store
//!   which features match ([`Snapshot::matching_keys`]), as point tiles do.
//! - **Attribute joins** (manifest `join = { field, areas, key }`) count each row into
//!   the area whose `key` equals its `field`; a row whose value names no area is
//!   `outside`. They take a fast path too ([`join`]): each row's area, key and time are
//!   kept once per (dataset version, areas version), so a request filters time in memory
//!   and asks the store only for the keys of the other filters.
//! - **Other datasets** are scanned through the store query: a line or polygon counts
//!   where the centre of its bounds lies (as `within=` decides).
//!
//! `total` is the features that matched the filters and could be placed or joined: the
//! sum of the areas' counts plus `outside`. Rows without a position (and without a join
//! to the `by` areas) cannot be placed and are not in it; joined rows whose value names
//! no area are `outside`.

mod areas;
mod index;
pub mod join;
pub mod tally;
mod tiles;

pub use areas::{Areas, join_text};
pub use index::AreaIndex;
pub use tiles::{choropleth_fields, choropleth_tile};

use crate::model::{DatasetId, DatasetInfo, Value};
use crate::render::{PointSource, Renderer};
use crate::store::{Query, Snapshot, StoreError, StoredGeometry};
use crate::tiles::Filter;
use join::JoinedRows;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tally::{Assigned, OUTSIDE, WorldBox};

#[derive(Debug, thiserror::Error)]
pub enum AggregateError {
    /// The `by` dataset holds no polygon.
    #[error("`{0}` has no polygons to count into: choose a boundary dataset")]
    NotAreas(String),
    /// The dataset has no positions and no attribute join to these areas.
    #[error("`{dataset}` has no positions and no join to `{areas}`")]
    NoJoin { dataset: String, areas: String },
    /// A join names a key field that the areas do not have (a manifest mistake).
    #[error("the join of `{dataset}` names field `{key}`, which `{areas}` does not have")]
    NoKey {
        dataset: String,
        areas: String,
        key: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The counts of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct AreaCounts {
    /// The boundary dataset counted into.
    pub by: DatasetId,
    /// Every area, counted or not, in the boundary dataset's order.
    pub areas: Vec<AreaCount>,
    pub outside: u64,
    /// The sum of the counts plus `outside`.
    pub total: u64,
    /// Whether the areas carry a population (then each has a `rate`, if its own is known).
    pub has_population: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AreaCount {
    /// The area's feature id in its dataset.
    pub id: String,
    pub name: Option<String>,
    pub count: u64,
    /// Geodesic area.
    pub area_km2: f64,
    /// Count per km² (0 for an area of no size).
    pub density: f64,
    /// Count per 1,000 residents, when the area's population is known and positive.
    pub rate: Option<f64>,
}

/// Counts without any cache (each call reads the areas and scans the dataset): for
/// one-off callers. The server uses [`Aggregator::count_by_area`].
pub fn count_by_area(
    snap: &dyn Snapshot,
    dataset: &DatasetInfo,
    areas: &DatasetInfo,
    filters: &Query,
) -> Result<AreaCounts, AggregateError> {
    let a = Areas::load(snap, areas)?;
    let (counts, outside) = scan_counts(snap, dataset, areas, &a, filters)?;
    Ok(report(areas, &a, counts, outside))
}

/// Areas and point-to-area assignments, cached by version.
#[derive(Debug, Default)]
pub struct Aggregator {
    areas: Mutex<HashMap<DatasetId, Arc<Areas>>>,
    /// By (points, areas): the points version, the areas version, the area of each row.
    assigned: Mutex<HashMap<(DatasetId, DatasetId), Arc<Assignment>>>,
    /// By (joined dataset, areas): the rows with their areas, for attribute joins.
    joined: Mutex<HashMap<(DatasetId, DatasetId), Arc<Joined>>>,
    /// Serialises builds, so concurrent first requests build once.
    building: Mutex<()>,
}

#[derive(Debug)]
struct Joined {
    version: i64,
    areas_version: i64,
    rows: JoinedRows,
}

#[derive(Debug)]
struct Assignment {
    points_version: i64,
    areas_version: i64,
    rows: Assigned,
}

impl Aggregator {
    /// Counts `dataset` into the areas of `areas` with `filters` (see the module doc).
    pub fn count_by_area(
        &self,
        snap: &dyn Snapshot,
        tiles: &Renderer,
        dataset: &DatasetInfo,
        areas: &DatasetInfo,
        filters: &Query,
    ) -> Result<AreaCounts, AggregateError> {
        let a = self.areas(snap, areas)?;
        let joined = dataset
            .meta
            .join
            .as_ref()
            .is_some_and(|j| j.areas == areas.id.as_str());
        let source = match joined {
            true => None,
            false => tiles.point_source(snap, dataset)?,
        };
        let (counts, outside) = match source {
            Some(source) if source.version == dataset.version => {
                let assigned = self.assignment(snap, dataset, areas, &a, &source)?;
                let filter = index_filter(snap, dataset, &source, filters)?;
                let boxes: Vec<WorldBox> = filters.bbox.iter().map(WorldBox::of).collect();
                assigned.rows.tally(&source.index, a.len(), &filter, &boxes)
            }
            None if joined => match self.joined(snap, dataset, areas, &a)? {
                Some(j) => {
                    // Time is held in memory; whatever else the query asks, the store
                    // answers with keys, so a filter means what it means in a scan. It
                    // gets the time too: its time index narrows first (without it, a
                    // month and a type read every row for the type: slower than a scan).
                    let whole = Query {
                        limit: None,
                        offset: 0,
                        sort: Vec::new(),
                        ..filters.clone()
                    };
                    let time_only = Query {
                        time: None,
                        ..whole.clone()
                    } == Query::default();
                    let only = match time_only {
                        true => None,
                        false => Some(snap.matching_keys(dataset, &whole)?),
                    };
                    j.rows.tally(a.len(), filters.time, only.as_deref())
                }
                None => scan_counts(snap, dataset, areas, &a, filters)?,
            },
            _ => scan_counts(snap, dataset, areas, &a, filters)?,
        };
        Ok(report(areas, &a, counts, outside))
    }

    fn areas(&self, snap: &dyn Snapshot, ds: &DatasetInfo) -> Result<Arc<Areas>, AggregateError> {
        let cached = || {
            let map = self.areas.lock().unwrap_or_else(|e| e.into_inner());
            map.get(&ds.id).filter(|a| a.version == ds.version).cloned()
        };
        if let Some(a) = cached() {
            return Ok(a);
        }
        let _guard = self.building.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = cached() {
            return Ok(a);
        }
        let a = Arc::new(Areas::load(snap, ds)?);
        let mut map = self.areas.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(ds.id.clone(), a.clone());
        Ok(a)
    }

    /// The rows of a dataset joined to `areas_ds` by attribute with their areas, read once
    /// per versions; `None` when the store cannot list them (then the caller scans).
    fn joined(
        &self,
        snap: &dyn Snapshot,
        ds: &DatasetInfo,
        areas_ds: &DatasetInfo,
        areas: &Areas,
    ) -> Result<Option<Arc<Joined>>, AggregateError> {
        let key = (ds.id.clone(), areas_ds.id.clone());
        let cached = || {
            let map = self.joined.lock().unwrap_or_else(|e| e.into_inner());
            map.get(&key)
                .filter(|j| j.version == ds.version && j.areas_version == areas.version)
                .cloned()
        };
        if let Some(j) = cached() {
            return Ok(Some(j));
        }
        let _guard = self.building.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(j) = cached() {
            return Ok(Some(j));
        }
        let Some((field, keys)) = join_of(ds, areas_ds, areas)? else {
            return Ok(None);
        };
        let started = std::time::Instant::now();
        let mut rows = JoinedRows::default();
        let listed = snap.field_values(ds, field, &mut |row| {
            let area = join_text(&row.value).and_then(|k| keys.get(&k).copied());
            rows.push(&row, area);
        })?;
        if !listed {
            return Ok(None);
        }
        tracing::info!(dataset = %ds.id, areas = %areas_ds.id, rows = rows.len(),
            secs = started.elapsed().as_secs_f64(), "rows joined to areas");
        let joined = Arc::new(Joined {
            version: ds.version,
            areas_version: areas.version,
            rows,
        });
        let mut map = self.joined.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(key, joined.clone());
        Ok(Some(joined))
    }

    /// The area of every row of the dataset's point index, found once per versions.
    fn assignment(
        &self,
        snap: &dyn Snapshot,
        ds: &DatasetInfo,
        areas_ds: &DatasetInfo,
        areas: &Areas,
        source: &PointSource,
    ) -> Result<Arc<Assignment>, AggregateError> {
        let key = (ds.id.clone(), areas_ds.id.clone());
        let cached = || {
            let map = self.assigned.lock().unwrap_or_else(|e| e.into_inner());
            map.get(&key)
                .filter(|a| a.points_version == ds.version && a.areas_version == areas.version)
                .cloned()
        };
        if let Some(a) = cached() {
            return Ok(a);
        }
        let _guard = self.building.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = cached() {
            return Ok(a);
        }
        let started = std::time::Instant::now();
        // The exact stored positions (the index keeps them rounded to its world grid),
        // in internal id order, so each index row finds its own by binary search.
        let mut by_key: Vec<(i64, u32)> = Vec::with_capacity(ds.feature_count as usize);
        snap.positions(ds, None, &mut |row| {
            let area = areas.index.locate(row.lon, row.lat);
            by_key.push((row.key, area.map_or(OUTSIDE, |s| s as u32)));
        })?;
        by_key.sort_unstable_by_key(|(k, _)| *k);
        let area_of: Vec<u32> = (0..source.index.len())
            .map(|i| {
                let fid = source.index.point(i).map_or(i64::MIN, |p| p.fid);
                by_key
                    .binary_search_by_key(&fid, |(k, _)| *k)
                    .map_or(OUTSIDE, |at| by_key[at].1)
            })
            .collect();
        let assignment = Arc::new(Assignment {
            points_version: ds.version,
            areas_version: areas.version,
            rows: Assigned::new(&source.index, area_of),
        });
        tracing::info!(dataset = %ds.id, areas = %areas_ds.id, points = by_key.len(),
            secs = started.elapsed().as_secs_f64(), "points assigned to areas");
        let mut map = self.assigned.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(key, assignment.clone());
        Ok(assignment)
    }
}

/// The filters of `q` that the point index holds (time, category), plus the ids of the
/// features matching the rest (other properties, `within=`) as the store finds them.
fn index_filter(
    snap: &dyn Snapshot,
    ds: &DatasetInfo,
    source: &PointSource,
    q: &Query,
) -> Result<Filter, StoreError> {
    let mut filter = Filter {
        time: q.time.map(|t| (t.start, t.end)),
        ..Filter::default()
    };
    let category = source.category.as_deref().and_then(|c| ds.field_index(c));
    let mut rest = Query {
        within: q.within.clone(),
        ..Query::default()
    };
    for (field, values) in &q.equals {
        if Some(*field) == category {
            let names = source.index.categories();
            let wanted = values.iter().filter_map(|v| {
                let t = value_text(v);
                names.iter().position(|n| *n == t).map(|i| i as u32)
            });
            let mut wanted: Vec<u32> = wanted.collect();
            // Two filters on one field: both must hold.
            if let Some(before) = &filter.categories {
                wanted.retain(|c| before.contains(c));
            }
            filter.categories = Some(wanted);
        } else {
            rest.equals.push((*field, values.clone()));
        }
    }
    if !rest.equals.is_empty() || rest.within.is_some() {
        let keys: HashSet<i64> = snap.matching_keys(ds, &rest)?.into_iter().collect();
        filter.fids = Some(keys);
    }
    Ok(filter)
}

/// Counts by scanning the store with the full query: datasets that are not points, and
/// attribute joins.
fn scan_counts(
    snap: &dyn Snapshot,
    ds: &DatasetInfo,
    areas_ds: &DatasetInfo,
    areas: &Areas,
    filters: &Query,
) -> Result<(Vec<u64>, u64), AggregateError> {
    let join = join_of(ds, areas_ds, areas)?;
    if join.is_none() && ds.geometry_type.is_none() {
        return Err(AggregateError::NoJoin {
            dataset: ds.id.to_string(),
            areas: areas_ds.id.to_string(),
        });
    }
    let mut counts = vec![0u64; areas.len()];
    let mut outside = 0u64;
    let q = Query {
        limit: None,
        offset: 0,
        sort: Vec::new(),
        ..filters.clone()
    };
    snap.scan(ds, &q, &mut |f| {
        let area = match &join {
            Some((field, keys)) => f
                .values
                .get(*field)
                .and_then(join_text)
                .and_then(|k| keys.get(&k).copied()),
            None => match &f.geometry {
                Some(StoredGeometry::Point { lon, lat }) => areas.index.locate(*lon, *lat),
                Some(StoredGeometry::Shape { bounds, .. }) => areas.index.locate(
                    (bounds.min_x + bounds.max_x) / 2.0,
                    (bounds.min_y + bounds.max_y) / 2.0,
                ),
                None => return true,
            }
            .map(|s| s as u32),
        };
        match area.and_then(|a| counts.get_mut(a as usize)) {
            Some(n) => *n += 1,
            None => outside += 1,
        }
        true
    })?;
    Ok((counts, outside))
}

/// A join's field index (in the joined dataset) and the area number of each key value.
type JoinKeys = (usize, HashMap<String, u32>);

/// The join of `ds` to these areas, if it has one: the field index of its value and
/// the area number of each key.
fn join_of(
    ds: &DatasetInfo,
    areas_ds: &DatasetInfo,
    areas: &Areas,
) -> Result<Option<JoinKeys>, AggregateError> {
    let Some(j) = ds
        .meta
        .join
        .as_ref()
        .filter(|j| j.areas == areas_ds.id.as_str())
    else {
        return Ok(None);
    };
    let field = ds
        .field_index(&j.field)
        .ok_or_else(|| AggregateError::NoJoin {
            dataset: ds.id.to_string(),
            areas: areas_ds.id.to_string(),
        })?;
    let keys = areas.keys(&j.key).ok_or_else(|| AggregateError::NoKey {
        dataset: ds.id.to_string(),
        areas: areas_ds.id.to_string(),
        key: j.key.clone(),
    })?;
    Ok(Some((field, keys)))
}

/// The response rows: every area with its count, size, density and rate.
fn report(ds: &DatasetInfo, areas: &Areas, counts: Vec<u64>, outside: u64) -> AreaCounts {
    let rows = counts
        .iter()
        .enumerate()
        .map(|(slot, &count)| {
            let area_km2 = areas.index.geodesic_area_km2(slot as i64).unwrap_or(0.0);
            let density = if area_km2 > 0.0 {
                count as f64 / area_km2
            } else {
                0.0
            };
            let rate = areas.population[slot]
                .filter(|p| *p > 0.0)
                .map(|p| count as f64 * 1000.0 / p);
            AreaCount {
                id: areas.ids[slot].clone(),
                name: areas.names[slot].clone(),
                count,
                area_km2,
                density,
                rate,
            }
        })
        .collect();
    AreaCounts {
        by: ds.id.clone(),
        areas: rows,
        outside,
        total: counts.iter().sum::<u64>() + outside,
        has_population: areas.has_population,
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Integer(i) => i.to_string(),
        Value::Number(x) => x.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Text(s) => s.clone(),
    }
}
