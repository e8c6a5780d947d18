//! Turning catalog data into tiles: the glue between [`crate::store`] and the pure
//! [`crate::tiles`] core, shared by the HTTP tile endpoints and `tessera tile`.
//!
//! Point datasets are drawn from an in-memory [`PointIndex`] (built once per dataset
//! version, ordered along a Morton curve so any tile is one contiguous range): no tile,
//! not even z0 of 1.4M points, reads rows from SQLite, except for filters the index does
//! not hold (other properties, `within=`), which fetch matching ids from the store.
//! Lines and polygons are read from the store by the buffered tile's box, then clipped.

pub mod archive;
pub mod cache;
pub mod catalog;
pub mod source;
pub mod text;
pub mod tilejson;

use crate::model::{DatasetId, DatasetInfo, Value};
use crate::store::{Query, Snapshot, StoreError, StoredGeometry};
use crate::tiles::{
    self, Filter, LayerBuilder, PointIndex, PointLayerParams, PointRecord, PropValue, TileCoord,
};
use cache::TileCache;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Tile settings.
#[derive(Debug, Clone)]
pub struct TileConfig {
    /// Tile units beyond the edge that clipped geometry may reach (MVT extent units).
    pub buffer: u32,
    pub extent: u32,
    /// Bytes of compressed tiles kept in memory; 0 turns the cache off.
    pub cache_bytes: usize,
    /// `Cache-Control` of tile responses.
    pub cache_control: String,
    /// gzip level 0-9 for tiles (compression dominates tile CPU; see bench/README.md).
    pub gzip_level: u32,
    /// Cells per tile side of the cluster grid.
    pub grid_cells: u32,
    /// Fixed cluster zoom for every point dataset; `None` chooses one from each dataset's density.
    pub cluster_zoom: Option<u8>,
}

impl Default for TileConfig {
    fn default() -> Self {
        Self {
            buffer: 64,
            extent: 4096,
            cache_bytes: 64 << 20,
            cache_control: "public, max-age=300".into(),
            gzip_level: 3,
            grid_cells: tiles::DEFAULT_GRID_CELLS,
            cluster_zoom: None,
        }
    }
}

/// What the tiles of one point dataset version are drawn from.
#[derive(Debug)]
pub struct PointSource {
    pub version: i64,
    pub index: PointIndex,
    pub cluster_zoom: u8,
    /// The category field's name, when the dataset has one.
    pub category: Option<String>,
    /// Served ids by internal key, for datasets whose ids are the input's own.
    pub ids: Option<tiles::ServedIds>,
}

/// One layer of a tile request: a dataset and its filters.
#[derive(Debug, Clone)]
pub struct LayerRequest {
    pub dataset: DatasetInfo,
    pub query: Query,
    /// Indexes of the fields point tiles carry besides fid, category and time: the
    /// manifest's `tile_fields` and the URL's `properties=` (shape tiles carry every field).
    pub properties: Vec<usize>,
}

impl LayerRequest {
    /// The names of [`Self::properties`].
    pub fn property_names(&self) -> Vec<String> {
        self.properties
            .iter()
            .filter_map(|&i| Some(self.dataset.fields.get(i)?.name.clone()))
            .collect()
    }
}

#[derive(Debug)]
pub struct Renderer {
    pub config: TileConfig,
    pub cache: TileCache,
    points: Mutex<HashMap<DatasetId, Arc<PointSource>>>,
    /// Dataset metadata by id, valid while the catalog's data stamp is the first value.
    known: Mutex<(i64, HashMap<DatasetId, DatasetInfo>)>,
    /// Serialises index builds so that concurrent first requests build once.
    building: Mutex<()>,
}

impl Renderer {
    pub fn new(config: TileConfig) -> Self {
        Self {
            cache: TileCache::new(config.cache_bytes),
            config,
            points: Mutex::default(),
            known: Mutex::new((i64::MIN, HashMap::new())),
            building: Mutex::new(()),
        }
    }

    fn cached_source(&self, ds: &DatasetInfo) -> Option<Arc<PointSource>> {
        let map = self.points.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&ds.id).filter(|s| s.version == ds.version).cloned()
    }

    /// The point source of a point dataset (built on first use per version); `None` for others.
    pub fn point_source(
        &self,
        snap: &dyn Snapshot,
        ds: &DatasetInfo,
    ) -> Result<Option<Arc<PointSource>>, StoreError> {
        if ds.geometry_type.as_deref() != Some("Point") {
            return Ok(None);
        }
        if let Some(s) = self.cached_source(ds) {
            return Ok(Some(s));
        }
        let _guard = self.building.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = self.cached_source(ds) {
            return Ok(Some(s));
        }
        let started = std::time::Instant::now();
        let source = Arc::new(build_source(snap, ds, &self.config)?);
        tracing::info!(
            dataset = %ds.id,
            points = source.index.len(),
            cluster_zoom = source.cluster_zoom,
            mib = source.index.heap_bytes() / (1 << 20),
            secs = started.elapsed().as_secs_f64(),
            "point index built"
        );
        self.points
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(ds.id.clone(), source.clone());
        Ok(Some(source))
    }

    /// The zoom from which points are drawn one by one (for pages and TileJSON).
    pub fn cluster_zoom(&self, ds: &DatasetInfo) -> Option<u8> {
        self.cached_source(ds).map(|s| s.cluster_zoom)
    }

    /// Renders a tile: raw MVT bytes, or `None` when no layer has a feature in it.
    pub fn render(
        &self,
        snap: &dyn Snapshot,
        layers: &[LayerRequest],
        tile: TileCoord,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let mut built = Vec::with_capacity(layers.len());
        for l in layers {
            match self.point_source(snap, &l.dataset)? {
                Some(source) => built.push(
                    self.point_layer(Some(snap), l, &source, tile)?
                        .unwrap_or_else(|| {
                            LayerBuilder::new(l.dataset.id.as_str(), self.config.extent)
                        }),
                ),
                None => {
                    let (shapes, labels) = self.shape_layer(snap, l, tile)?;
                    built.extend([shapes, labels]);
                }
            }
        }
        Ok(tiles::encode_tile(built))
    }

    /// A point layer from the index; `None` when a filter needs the store and there is no
    /// snapshot to ask.
    fn point_layer(
        &self,
        snap: Option<&dyn Snapshot>,
        l: &LayerRequest,
        source: &PointSource,
        tile: TileCoord,
    ) -> Result<Option<LayerBuilder>, StoreError> {
        let ds = &l.dataset;
        let mut filter = Filter {
            time: l.query.time.map(|t| (t.start, t.end)),
            ..Filter::default()
        };
        let category_index = source.category.as_deref().and_then(|c| ds.field_index(c));
        let mut rest = Query {
            within: l.query.within.clone(),
            ..Query::default()
        };
        for (field, values) in &l.query.equals {
            if Some(*field) == category_index {
                let names = source.index.categories();
                let wanted: Vec<u32> = values
                    .iter()
                    .filter_map(|v| {
                        names
                            .iter()
                            .position(|n| *n == value_text(v))
                            .map(|i| i as u32)
                    })
                    .collect();
                filter.categories = Some(wanted);
            } else {
                rest.equals.push((*field, values.clone()));
            }
        }
        if !rest.equals.is_empty() || rest.within.is_some() || !l.query.bbox.is_empty() {
            let Some(snap) = snap else { return Ok(None) };
            // Filters the index does not hold: ask the store which ids match in this tile.
            // The buffered box: points drawn in the buffer must pass the filter too.
            filter.fids = Some(match self.tile_boxes(&l.query, tile) {
                Some(boxes) => {
                    rest.bbox = boxes;
                    snap.matching_keys(ds, &rest)?.into_iter().collect()
                }
                None => HashSet::new(),
            });
        }
        let extra = if l.properties.is_empty() || tile.z() < source.cluster_zoom {
            None
        } else {
            let Some(snap) = snap else { return Ok(None) };
            Some(self.extra_props(snap, l, tile)?)
        };
        let params = PointLayerParams {
            layer: ds.id.as_str(),
            cluster_zoom: source.cluster_zoom,
            grid_cells: self.config.grid_cells,
            buffer: self.config.buffer,
            extent: self.config.extent,
            category_field: source.category.as_deref(),
            ids: source.ids.as_ref(),
            extra: extra.as_ref(),
        };
        Ok(Some(tiles::render_points(
            &source.index,
            tile,
            &filter,
            &params,
        )))
    }

    /// The values of the layer's extra properties for the points of the buffered tile,
    /// read from the store (only where points are drawn one by one: a few per tile).
    fn extra_props(
        &self,
        snap: &dyn Snapshot,
        l: &LayerRequest,
        tile: TileCoord,
    ) -> Result<tiles::ExtraProps, StoreError> {
        let ds = &l.dataset;
        let mut extra = tiles::ExtraProps {
            names: l.property_names(),
            ..tiles::ExtraProps::default()
        };
        let Some(boxes) = self.tile_boxes(&l.query, tile) else {
            return Ok(extra);
        };
        let q = Query {
            bbox: boxes,
            ..Query::default()
        };
        snap.scan(ds, &q, &mut |f| {
            let values = l
                .properties
                .iter()
                .map(|&i| f.values.get(i).and_then(prop_value).map(owned_prop))
                .collect();
            extra.values.insert(f.id, values);
            true
        })?;
        Ok(extra)
    }

    /// Renders from memory alone, without a store snapshot or a blocking thread: only
    /// point layers whose index is built, at or above their cluster zoom (cheap: a few
    /// points each), with filters the index holds. `None` when that is not the case.
    pub fn render_in_memory(
        &self,
        layers: &[LayerRequest],
        tile: TileCoord,
    ) -> Option<Option<Vec<u8>>> {
        let mut built = Vec::with_capacity(layers.len());
        for l in layers {
            let source = self.cached_source(&l.dataset)?;
            if tile.z() < source.cluster_zoom {
                return None;
            }
            built.push(self.point_layer(None, l, &source, tile).ok()??);
        }
        Some(tiles::encode_tile(built))
    }

    /// Remembers dataset metadata read at data stamp `stamp` (see [`Self::known`]).
    pub fn remember(&self, stamp: i64, datasets: &[DatasetInfo]) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.0 != stamp {
            *known = (stamp, HashMap::new());
        }
        for d in datasets {
            known.1.insert(d.id.clone(), d.clone());
        }
    }

    /// The remembered metadata of `ids` (comma list), if all are known at data stamp `stamp`.
    pub fn known(&self, stamp: i64, ids: &str) -> Option<Vec<DatasetInfo>> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.0 != stamp {
            return None;
        }
        let mut out: Vec<DatasetInfo> = Vec::new();
        for id in ids.split(',') {
            let d = known.1.get(&DatasetId::parse(id).ok()?)?;
            if !out.iter().any(|o| o.id == d.id) {
                out.push(d.clone());
            }
        }
        Some(out)
    }

    /// The boxes a layer's features are read from in `tile`: the buffered tile, cut down
    /// to the query's own `bbox` (as `tessera bake --bbox` gives; tile URLs take none).
    /// `None` when they do not meet: an empty list would mean no spatial filter at all.
    fn tile_boxes(&self, q: &Query, tile: TileCoord) -> Option<Vec<crate::model::Bounds>> {
        let boxes = tile.buffered_boxes_lonlat(self.config.buffer, self.config.extent);
        if q.bbox.is_empty() {
            return Some(boxes);
        }
        let cut: Vec<crate::model::Bounds> = boxes
            .iter()
            .flat_map(|t| q.bbox.iter().filter_map(move |b| intersect(t, b)))
            .collect();
        (!cut.is_empty()).then_some(cut)
    }

    /// The layer of a line or polygon dataset and its label layer (see [`label_layer`];
    /// empty for lines).
    fn shape_layer(
        &self,
        snap: &dyn Snapshot,
        l: &LayerRequest,
        tile: TileCoord,
    ) -> Result<(LayerBuilder, LayerBuilder), StoreError> {
        let ds = &l.dataset;
        let (buffer, extent) = (self.config.buffer, self.config.extent);
        let mut layer = LayerBuilder::new(ds.id.as_str(), extent);
        let mut labels = LayerBuilder::new(&label_layer(ds.id.as_str()), extent);
        let with_labels = has_labels(ds);
        let mut tiny = TinyFeatures::new(tile, extent, self.config.grid_cells);
        let mut q = l.query.clone();
        let Some(boxes) = self.tile_boxes(&l.query, tile) else {
            return Ok((layer, labels));
        };
        q.bbox = boxes;
        q.limit = None;
        q.offset = 0;
        snap.scan(ds, &q, &mut |f| {
            let point;
            let (geometry, bounds) = match &f.geometry {
                Some(StoredGeometry::Shape { geometry, bounds }) => (geometry, Some(bounds)),
                Some(StoredGeometry::Point { lon, lat }) => {
                    point = geo_types::Geometry::Point(geo_types::Point::new(*lon, *lat));
                    (&point, None)
                }
                None => return true,
            };
            let mut props: Vec<(&str, PropValue)> = Vec::with_capacity(ds.fields.len() + 1);
            props.push(("fid", f.id.as_str().into()));
            for (field, v) in ds.fields.iter().zip(&f.values) {
                if let Some(p) = prop_value(v) {
                    props.push((field.name.as_str(), p));
                }
            }
            let id = f.id.parse::<u64>().ok();
            let parts = tiles::clip_geometry(geometry, tile, extent, buffer);
            if let (true, Some(bounds)) = (parts.is_empty(), bounds) {
                tiny.add(bounds);
            }
            if with_labels && let Some(at) = label_point(geometry, tile, extent) {
                labels.add_point(id, at, &props);
            }
            for g in parts {
                layer.add_feature(id, &g, &props);
            }
            true
        })?;
        tiny.emit(&mut layer);
        Ok((layer, labels))
    }
}

/// The name of the layer that carries one label point per polygon of dataset `id`.
///
/// A symbol layer over the polygons themselves places a name on every tile piece of an
/// area (Chicago's community areas showed most names two or more times); this layer has
/// each polygon once, at an interior point, in the one tile of each zoom that holds it.
pub fn label_layer(id: &str) -> String {
    format!("{id}_labels")
}

/// Whether the tiles of `ds` carry a [`label_layer`]: polygon datasets.
pub fn has_labels(ds: &DatasetInfo) -> bool {
    matches!(
        ds.geometry_type.as_deref(),
        Some("Polygon" | "MultiPolygon")
    )
}

/// Where in `tile` the label of polygon `g` goes, in tile units; `None` when its label
/// point (the basemap's interior point, so area names sit alike on both) is in another
/// tile: the point lies in exactly one tile per zoom, so a name is drawn once.
fn label_point(g: &geo_types::Geometry<f64>, tile: TileCoord, extent: u32) -> Option<[i32; 2]> {
    use geo_types::Geometry::{MultiPolygon, Polygon};
    if !matches!(g, Polygon(_) | MultiPolygon(_)) {
        return None;
    }
    let p = crate::basemap::label::interior_point(g)?;
    if tiles::tile_of(p.x(), p.y(), tile.z()).ok()? != tile {
        return None;
    }
    let (wx, wy) = tiles::world_xy(p.x(), p.y());
    let (x, y) = tiles::world_to_tile(wx, wy, tile, extent);
    Some([x, y])
}

/// Lines and polygons smaller than a pixel at a tile's zoom vanish in clipping and
/// simplification. They are not dropped silently: each one whose centre lies in the tile
/// (so exactly one tile per zoom counts it) is added to a count per cluster cell, drawn as
/// a cluster point like those of point datasets (`cluster`, `point_count`).
struct TinyFeatures {
    tile: TileCoord,
    extent: u32,
    cells: u32,
    counts: HashMap<(i32, i32), (u64, i64, i64)>,
}

impl TinyFeatures {
    fn new(tile: TileCoord, extent: u32, cells: u32) -> Self {
        Self {
            tile,
            extent,
            cells: cells.max(1),
            counts: HashMap::new(),
        }
    }

    fn add(&mut self, b: &crate::model::Bounds) {
        let (lon, lat) = ((b.min_x + b.max_x) / 2.0, (b.min_y + b.max_y) / 2.0);
        if tiles::tile_of(lon, lat, self.tile.z()).ok() != Some(self.tile) {
            return;
        }
        let (wx, wy) = tiles::world_xy(lon, lat);
        let (x, y) = tiles::world_to_tile(wx, wy, self.tile, self.extent);
        let size = (self.extent / self.cells).max(1) as i32;
        let e = self.counts.entry((x / size, y / size)).or_insert((0, 0, 0));
        *e = (e.0 + 1, e.1 + i64::from(x), e.2 + i64::from(y));
    }

    fn emit(self, layer: &mut LayerBuilder) {
        let mut cells: Vec<_> = self.counts.into_iter().collect();
        cells.sort_unstable_by_key(|(k, _)| *k);
        for (_, (n, sx, sy)) in cells {
            let at = [(sx / n as i64) as i32, (sy / n as i64) as i32];
            let props = [
                ("cluster", PropValue::Bool(true)),
                ("point_count", PropValue::UInt(n)),
                ("point_count_abbreviated", tiles::abbreviate(n).into()),
            ];
            layer.add_point(None, at, &props);
        }
    }
}

/// The common part of two boxes, `None` when they do not meet.
fn intersect(a: &crate::model::Bounds, b: &crate::model::Bounds) -> Option<crate::model::Bounds> {
    a.intersects(b).then(|| crate::model::Bounds {
        min_x: a.min_x.max(b.min_x),
        min_y: a.min_y.max(b.min_y),
        max_x: a.max_x.min(b.max_x),
        max_y: a.max_y.min(b.max_y),
    })
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

fn prop_value(v: &Value) -> Option<PropValue<'_>> {
    Some(match v {
        Value::Null => return None,
        Value::Integer(i) => PropValue::Int(*i),
        Value::Number(x) => PropValue::Double(*x),
        Value::Boolean(b) => PropValue::Bool(*b),
        Value::Text(s) => s.as_str().into(),
    })
}

fn owned_prop(p: PropValue<'_>) -> PropValue<'static> {
    match p {
        PropValue::String(s) => PropValue::String(s.into_owned().into()),
        PropValue::Int(i) => PropValue::Int(i),
        PropValue::UInt(u) => PropValue::UInt(u),
        PropValue::Double(d) => PropValue::Double(d),
        PropValue::Bool(b) => PropValue::Bool(b),
    }
}

/// Reads a point dataset's positions, times and categories into an index.
fn build_source(
    snap: &dyn Snapshot,
    ds: &DatasetInfo,
    config: &TileConfig,
) -> Result<PointSource, StoreError> {
    let category = ds
        .meta
        .category
        .clone()
        .filter(|c| ds.field_index(c).is_some());
    let field = category.as_deref().and_then(|c| ds.field_index(c));
    let mut names: Vec<String> = Vec::new();
    let mut lookup: HashMap<String, u32> = HashMap::new();
    let mut points = Vec::with_capacity(ds.feature_count as usize);
    let mut ids = ds.source_ids.then(tiles::ServedIds::new);
    snap.positions(ds, field, &mut |row| {
        let category = match &row.value {
            Value::Null => None,
            v => {
                let text = value_text(v);
                Some(*lookup.entry(text.clone()).or_insert_with(|| {
                    names.push(text);
                    (names.len() - 1) as u32
                }))
            }
        };
        if let Some(ids) = ids.as_mut() {
            ids.push(row.key, row.id.clone());
        }
        points.push(PointRecord {
            fid: row.key,
            lon: row.lon,
            lat: row.lat,
            time: row.time.map(|t| (t.start, t.end)),
            category,
        });
    })?;
    let index = PointIndex::build(points, names).map_err(|e| StoreError::Corrupt {
        id: ds.id.to_string(),
        message: e.to_string(),
    })?;
    let cluster_zoom = config
        .cluster_zoom
        .unwrap_or_else(|| tiles::choose_cluster_zoom(&index));
    Ok(PointSource {
        version: ds.version,
        index,
        cluster_zoom,
        category,
        ids: ids.map(tiles::ServedIds::finish),
    })
}
