//! The read interface is a real seam: an in-memory catalog written here, with no SQLite
//! in it, drives the tile renderer and the items handler over HTTP exactly as the SQLite
//! store does. Its internal keys are sparse and far apart, as a PostgreSQL backend's may
//! be, so nothing above `store/` may treat them as array indexes.

use geo_types::{Geometry, LineString, Polygon};
use mvt_reader::Reader;
use serde_json::Value as Json;
use std::sync::Arc;
use tessera::http::{AppState, router};
use tessera::model::{
    Bounds, DatasetId, DatasetInfo, DatasetKind, DatasetMeta, Field, FieldType, TimeRange, Value,
};
use tessera::render::{LayerRequest, Renderer, TileConfig};
use tessera::store::{
    Bucket, Catalog, DatasetWriter, PositionRow, Query, Snapshot, StoreError, StoredFeature,
    StoredGeometry, WriteMode,
};
use tessera::tiles::TileCoord;

/// One feature of the fake store: its internal key and what a read returns.
#[derive(Clone)]
struct Row {
    key: i64,
    feature: StoredFeature,
}

struct FakeDataset {
    info: DatasetInfo,
    rows: Vec<Row>,
}

/// An in-memory catalog of two datasets, read-only.
struct FakeCatalog {
    datasets: Vec<FakeDataset>,
}

struct FakeSnapshot<'a>(&'a FakeCatalog);

fn bounds_of(g: &StoredGeometry) -> Bounds {
    match g {
        StoredGeometry::Point { lon, lat } => Bounds::of_point(*lon, *lat),
        StoredGeometry::Shape { bounds, .. } => *bounds,
    }
}

fn intersects(a: &Bounds, b: &Bounds) -> bool {
    a.min_x <= b.max_x && a.max_x >= b.min_x && a.min_y <= b.max_y && a.max_y >= b.min_y
}

impl FakeSnapshot<'_> {
    fn rows(&self, ds: &DatasetInfo) -> Result<&[Row], StoreError> {
        self.0
            .datasets
            .iter()
            .find(|d| d.info.id == ds.id)
            .map(|d| d.rows.as_slice())
            .ok_or_else(|| StoreError::NoDataset(ds.id.clone()))
    }

    /// The rows matching `q`'s filters, in key order (no sort keys are used here).
    fn matching(&self, ds: &DatasetInfo, q: &Query) -> Result<Vec<&Row>, StoreError> {
        assert!(q.sort.is_empty(), "the fake does not sort");
        let ok = |r: &&Row| {
            let f = &r.feature;
            let b = f.geometry.as_ref().map(bounds_of);
            let in_box =
                q.bbox.is_empty() || b.is_some_and(|b| q.bbox.iter().any(|q| intersects(&b, q)));
            let in_time = q.time.is_none_or(|t| {
                f.time
                    .is_some_and(|ft| ft.start <= t.end && ft.end >= t.start)
            });
            let equal = q
                .equals
                .iter()
                .all(|(i, vs)| vs.iter().any(|v| f.values.get(*i) == Some(v)));
            let within = q.within.as_ref().is_none_or(|w| {
                b.is_some_and(|b| {
                    w.area
                        .contains((b.min_x + b.max_x) / 2.0, (b.min_y + b.max_y) / 2.0)
                })
            });
            in_box && in_time && equal && within
        };
        let mut rows: Vec<&Row> = self.rows(ds)?.iter().filter(ok).collect();
        rows.sort_by_key(|r| r.key);
        Ok(rows)
    }
}

impl Snapshot for FakeSnapshot<'_> {
    fn datasets(&self) -> Result<Vec<DatasetInfo>, StoreError> {
        Ok(self.0.datasets.iter().map(|d| d.info.clone()).collect())
    }
    fn dataset(&self, id: &DatasetId) -> Result<Option<DatasetInfo>, StoreError> {
        Ok(self
            .0
            .datasets
            .iter()
            .find(|d| d.info.id == *id)
            .map(|d| d.info.clone()))
    }
    fn count(&self, ds: &DatasetInfo, q: &Query) -> Result<u64, StoreError> {
        Ok(self.matching(ds, q)?.len() as u64)
    }
    fn scan(
        &self,
        ds: &DatasetInfo,
        q: &Query,
        visit: &mut dyn FnMut(StoredFeature) -> bool,
    ) -> Result<(), StoreError> {
        let rows = self.matching(ds, q)?;
        let take = q.limit.map_or(usize::MAX, |l| l as usize);
        for r in rows.into_iter().skip(q.offset as usize).take(take) {
            if !visit(r.feature.clone()) {
                break;
            }
        }
        Ok(())
    }
    fn feature(&self, ds: &DatasetInfo, id: &str) -> Result<Option<StoredFeature>, StoreError> {
        Ok(self
            .rows(ds)?
            .iter()
            .find(|r| r.feature.id == id)
            .map(|r| r.feature.clone()))
    }
    fn histogram(
        &self,
        _: &DatasetInfo,
        _: &Query,
        _: Bucket,
    ) -> Result<Vec<(TimeRange, u64)>, StoreError> {
        // No feature here has a time, and those without one are not counted.
        Ok(Vec::new())
    }
    fn positions(
        &self,
        ds: &DatasetInfo,
        field: Option<usize>,
        visit: &mut dyn FnMut(PositionRow),
    ) -> Result<(), StoreError> {
        for r in self.matching(ds, &Query::default())? {
            let Some(g) = &r.feature.geometry else {
                continue;
            };
            let b = bounds_of(g);
            visit(PositionRow {
                key: r.key,
                id: r.feature.id.clone(),
                lon: (b.min_x + b.max_x) / 2.0,
                lat: (b.min_y + b.max_y) / 2.0,
                time: r.feature.time,
                value: field.map_or(Value::Null, |i| r.feature.values[i].clone()),
            });
        }
        Ok(())
    }
    fn matching_keys(&self, ds: &DatasetInfo, q: &Query) -> Result<Vec<i64>, StoreError> {
        Ok(self.matching(ds, q)?.iter().map(|r| r.key).collect())
    }
    fn top_values(
        &self,
        ds: &DatasetInfo,
        field: usize,
        n: usize,
    ) -> Result<Vec<(Value, u64)>, StoreError> {
        let mut counts: Vec<(Value, u64)> = Vec::new();
        for r in self.rows(ds)? {
            let v = &r.feature.values[field];
            match counts.iter_mut().find(|(c, _)| c == v) {
                Some((_, k)) => *k += 1,
                None => counts.push((v.clone(), 1)),
            }
        }
        counts.sort_by_key(|c| std::cmp::Reverse(c.1));
        counts.truncate(n);
        Ok(counts)
    }
}

impl Catalog for FakeCatalog {
    fn snapshot(&self) -> Result<Box<dyn Snapshot + '_>, StoreError> {
        Ok(Box::new(FakeSnapshot(self)))
    }
    fn writer(
        &self,
        _: &DatasetId,
        _: WriteMode,
    ) -> Result<Box<dyn DatasetWriter + '_>, StoreError> {
        Err(StoreError::Config("the test catalog is read-only".into()))
    }
    fn delete(&self, _: &DatasetId) -> Result<bool, StoreError> {
        Ok(false)
    }
    fn data_stamp(&self) -> Result<i64, StoreError> {
        Ok(1)
    }
}

/// Central London around the z14 tile of (-0.1, 51.5).
fn tile() -> TileCoord {
    tessera::tiles::coord::tile_of(-0.1, 51.5, 14).unwrap()
}

/// lon/lat at a fraction of [`tile`] (0..1 across, y down).
fn at(fx: f64, fy: f64) -> (f64, f64) {
    let b = tile().bounds_lonlat();
    // Linear in latitude is close enough inside one z14 tile; the checks below allow
    // a few units for it.
    (
        b.min_x + fx * (b.max_x - b.min_x),
        b.max_y - fy * (b.max_y - b.min_y),
    )
}

fn info(
    id: &str,
    geometry_type: &str,
    fields: Vec<Field>,
    count: u64,
    source_ids: bool,
) -> DatasetInfo {
    DatasetInfo {
        id: DatasetId::parse(id).unwrap(),
        meta: DatasetMeta {
            title: id.into(),
            kind: DatasetKind::Boundaries,
            ..DatasetMeta::default()
        },
        fields,
        geometry_type: Some(geometry_type.into()),
        bounds: Some(tile().bounds_lonlat()),
        time_extent: None,
        feature_count: count,
        without_geometry: Vec::new(),
        version: 7,
        updated: "2026-01-01T00:00:00Z".into(),
        source_ids,
        timezone: None,
    }
}

fn shape(g: Geometry<f64>) -> StoredGeometry {
    let mut b: Option<Bounds> = None;
    let mut add = |(x, y): (f64, f64)| {
        let p = Bounds::of_point(x, y);
        match &mut b {
            Some(acc) => acc.extend(&p),
            None => b = Some(p),
        }
    };
    match &g {
        Geometry::LineString(l) => l.coords().for_each(|c| add(c.x_y())),
        Geometry::Polygon(p) => p.exterior().coords().for_each(|c| add(c.x_y())),
        _ => unreachable!("only lines and polygons here"),
    }
    StoredGeometry::Shape {
        bounds: b.unwrap(),
        geometry: g,
    }
}

fn feature(id: &str, geometry: StoredGeometry, name: &str) -> StoredFeature {
    StoredFeature {
        id: id.into(),
        geometry: Some(geometry),
        time: None,
        values: vec![Value::Text(name.into())],
    }
}

/// `areas`: a line and a polygon with a hole (a shape layer). `sites`: three points with
/// their own ids and keys 10, 5 billion and 5 billion + 7 (a point layer).
fn fake() -> FakeCatalog {
    let ring = |pts: &[(f64, f64)]| {
        LineString::from(pts.iter().map(|&(x, y)| at(x, y)).collect::<Vec<_>>())
    };
    let line = ring(&[(0.1, 0.5), (0.9, 0.5)]);
    let park = Polygon::new(
        ring(&[(0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8), (0.2, 0.2)]),
        vec![ring(&[
            (0.4, 0.4),
            (0.6, 0.4),
            (0.6, 0.6),
            (0.4, 0.6),
            (0.4, 0.4),
        ])],
    );
    let name = || {
        vec![Field {
            name: "name".into(),
            ty: FieldType::String,
        }]
    };
    let areas = FakeDataset {
        info: info("areas", "Geometry", name(), 2, false),
        rows: vec![
            Row {
                key: 3,
                feature: feature("3", shape(line.into()), "road"),
            },
            Row {
                key: 90,
                feature: feature("90", shape(park.into()), "park"),
            },
        ],
    };
    let point = |fx, fy| {
        let (lon, lat) = at(fx, fy);
        StoredGeometry::Point { lon, lat }
    };
    let sites = FakeDataset {
        info: info("sites", "Point", name(), 3, true),
        rows: vec![
            Row {
                key: 10,
                feature: feature("cafe-1", point(0.25, 0.25), "cafe"),
            },
            Row {
                key: 5_000_000_000,
                feature: feature("cafe-2", point(0.75, 0.25), "cafe"),
            },
            Row {
                key: 5_000_000_007,
                feature: feature("bar-1", point(0.5, 0.75), "bar"),
            },
        ],
    };
    FakeCatalog {
        datasets: vec![areas, sites],
    }
}

fn rings(p: &Polygon<f32>) -> Vec<(f32, f32)> {
    p.exterior()
        .coords()
        .chain(p.interiors().iter().flat_map(|r| r.coords()))
        .map(|c| c.x_y())
        .collect()
}

/// A decoded feature: geometry kind, tile coordinates, `fid` property.
type Drawn = (String, Vec<(f32, f32)>, Option<String>);

/// Decoded features of layer `layer`.
fn decode(tile: &[u8], layer: &str) -> Vec<Drawn> {
    let reader = Reader::new(tile.to_vec()).expect("a valid tile");
    let meta = reader.get_layer_metadata().unwrap();
    let i = meta
        .iter()
        .find(|l| l.name == layer)
        .expect("layer present")
        .layer_index;
    reader
        .get_features(i)
        .unwrap()
        .into_iter()
        .map(|f| {
            let g: Geometry<f32> = f.geometry;
            let kind = match &g {
                Geometry::Point(_) | Geometry::MultiPoint(_) => "point",
                Geometry::LineString(_) | Geometry::MultiLineString(_) => "line",
                Geometry::Polygon(_) | Geometry::MultiPolygon(_) => "polygon",
                _ => "other",
            };
            // mvt-reader gives Multi* forms; each feature here has one part.
            let coords = match &g {
                Geometry::Point(p) => vec![p.x_y()],
                Geometry::MultiPoint(m) if m.0.len() == 1 => vec![m.0[0].x_y()],
                Geometry::LineString(l) => l.coords().map(|c| c.x_y()).collect(),
                Geometry::MultiLineString(m) if m.0.len() == 1 => {
                    m.0[0].coords().map(|c| c.x_y()).collect()
                }
                Geometry::Polygon(p) => rings(p),
                Geometry::MultiPolygon(m) if m.0.len() == 1 => rings(&m.0[0]),
                other => panic!("unexpected {other:?}"),
            };
            let fid = f.properties.and_then(|p| {
                p.get("fid").map(|v| match v {
                    mvt_reader::feature::Value::String(s) => s.clone(),
                    other => format!("{other:?}"),
                })
            });
            (kind.to_owned(), coords, fid)
        })
        .collect()
}

fn near(a: (f32, f32), b: (f64, f64)) -> bool {
    (f64::from(a.0) - b.0).abs() <= 3.0 && (f64::from(a.1) - b.1).abs() <= 3.0
}

#[test]
fn the_renderer_draws_from_a_store_without_sqlite() {
    let fake = fake();
    let snap = fake.snapshot().unwrap();
    let renderer = Renderer::new(TileConfig::default());
    let ds = |id: &str| {
        snap.dataset(&DatasetId::parse(id).unwrap())
            .unwrap()
            .unwrap()
    };
    let layers = [
        LayerRequest {
            dataset: ds("areas"),
            query: Query::default(),
            properties: vec![],
        },
        LayerRequest {
            dataset: ds("sites"),
            query: Query::default(),
            properties: vec![],
        },
    ];
    let bytes = renderer
        .render(&*snap, &layers, tile())
        .unwrap()
        .expect("a tile");

    let mut areas = decode(&bytes, "areas");
    areas.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(areas.len(), 2, "{areas:?}");
    let (line, park) = (&areas[0], &areas[1]);
    assert_eq!(line.0, "line");
    assert!(
        near(line.1[0], (409.6, 2048.0)) && near(line.1[1], (3686.4, 2048.0)),
        "{line:?}"
    );
    assert_eq!(park.0, "polygon");
    // Exterior and hole, each closed: 5 + 5 positions, corners where they were put.
    assert_eq!(park.1.len(), 10, "{park:?}");
    for corner in [
        (819.2, 819.2),
        (3276.8, 3276.8),
        (1638.4, 1638.4),
        (2457.6, 2457.6),
    ] {
        assert!(
            park.1.iter().any(|&p| near(p, corner)),
            "{corner:?} in {park:?}"
        );
    }

    // Point layer: the served ids come back by sparse key.
    let mut sites: Vec<_> = decode(&bytes, "sites")
        .into_iter()
        .map(|(k, c, fid)| (fid, k, c))
        .collect();
    sites.sort_by(|a, b| a.0.cmp(&b.0));
    let fids: Vec<Option<String>> = sites.iter().map(|s| s.0.clone()).collect();
    assert_eq!(
        fids,
        ["bar-1", "cafe-1", "cafe-2"].map(|s| Some(s.to_owned()))
    );
    assert!(near(sites[0].2[0], (2048.0, 3072.0)), "{sites:?}");
    assert!(near(sites[2].2[0], (3072.0, 1024.0)), "{sites:?}");

    // A filter the point index does not hold goes through matching_keys (sparse keys).
    let name = ds("sites").field_index("name").unwrap();
    let bars = LayerRequest {
        dataset: ds("sites"),
        query: Query {
            equals: vec![(name, vec![Value::Text("bar".into())])],
            ..Query::default()
        },
        properties: vec![],
    };
    // `name` is not the category (none is set), so the store is asked.
    let bytes = renderer
        .render(&*snap, &[bars], tile())
        .unwrap()
        .expect("a tile");
    let only: Vec<_> = decode(&bytes, "sites").into_iter().map(|f| f.2).collect();
    assert_eq!(only, vec![Some("bar-1".to_owned())]);
}

#[tokio::test]
async fn the_items_handler_serves_a_store_without_sqlite() {
    let state = AppState::new(Arc::new(fake()), None, TileConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let get = |path: String| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            let r = client.get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200, "{url}");
            r.json::<Json>().await.unwrap()
        }
    };

    let page = get("/collections/areas/items?limit=1".into()).await;
    assert_eq!(page["type"], "FeatureCollection");
    assert_eq!(page["numberMatched"], 2);
    assert_eq!(page["numberReturned"], 1);
    let first = &page["features"][0];
    assert_eq!(first["id"], 3);
    assert_eq!(first["geometry"]["type"], "LineString");
    let (x, y) = at(0.1, 0.5);
    assert_eq!(
        first["geometry"]["coordinates"][0],
        serde_json::json!([x, y]),
        "exact numbers"
    );

    let park = get("/collections/areas/items/90".into()).await;
    assert_eq!(park["properties"]["name"], "park");
    let rings = park["geometry"]["coordinates"].as_array().unwrap();
    assert_eq!(
        (rings.len(), rings[1].as_array().unwrap().len()),
        (2, 5),
        "exterior and hole"
    );

    // A box around the left quarter of the tile holds the line and one cafe only.
    let (x0, y1) = at(0.0, 0.0);
    let (x1, y0) = at(0.3, 0.3);
    let bbox = format!("{x0},{y0},{x1},{y1}");
    let sites = get(format!("/collections/sites/items?bbox={bbox}")).await;
    assert_eq!(sites["numberMatched"], 1);
    assert_eq!(sites["features"][0]["id"], "cafe-1");
    let areas = get(format!("/collections/areas/items?bbox={bbox}")).await;
    let ids: Vec<&Json> = areas["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["id"])
        .collect();
    assert_eq!(
        ids,
        [&serde_json::json!(90)],
        "the park's box reaches in, the line's does not"
    );
    server.abort();
}
