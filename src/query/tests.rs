//! The query model without HTTP: every error names its parameter, and the same filters
//! give the same [`Query`] whether they come from an items page or a tile.

use super::*;
use crate::model::{DatasetInfo, Value};
use crate::store::Catalog;

/// A dataset with a time extent, a category, a number and a date field.
fn crimes() -> DatasetInfo {
    serde_json::from_value(serde_json::json!({
        "id": "crimes",
        "meta": {"title": "Crimes", "description": "", "attribution": "", "licence": "",
                 "source": "", "kind": "incidents", "category": "kind"},
        "fields": [{"name": "kind", "type": "string"}, {"name": "score", "type": "number"},
                   {"name": "seen", "type": "date"}, {"name": "open", "type": "boolean"}],
        "geometry_type": "Point",
        "bounds": {"min_x": -3.0, "min_y": 51.0, "max_x": -2.0, "max_y": 52.0},
        "time_extent": {"start": 1_540_000_000, "end": 1_545_000_000},
        "feature_count": 3, "without_geometry": [], "version": 7, "updated": "2026-01-01T00:00:00Z"
    }))
    .expect("a valid DatasetInfo")
}

/// A dataset without time that shares no field with [`crimes`] but `kind`.
fn areas() -> DatasetInfo {
    let mut d = crimes();
    d.id = crate::model::DatasetId::parse("areas").unwrap();
    d.fields.truncate(1);
    d.time_extent = None;
    d.meta.category = None;
    d
}

#[track_caller]
fn rejects(q: &str, param: &str, detail: &str) {
    let e = parse_items(&crimes(), Some(q), ParamSet::Items).unwrap_err();
    assert_eq!(e.parameter(), Some(param), "{q}: {e:?}");
    assert_eq!(e.to_string(), detail, "{q}");
}

#[test]
fn each_parameter_error_names_the_parameter() {
    rejects("limit=x", "limit", "`x` is not an integer");
    rejects("limit=0", "limit", "limit must be at least 1");
    rejects(
        "offset=-1",
        "offset",
        "`-1` is not an integer from 0 to 9223372036854775807",
    );
    rejects("bbox=1,2,3", "bbox", "expected 4 or 6 numbers, got 3");
    rejects(
        "bbox-crs=EPSG:4326",
        "bbox-crs",
        "unsupported CRS `EPSG:4326`: only CRS84",
    );
    rejects(
        "datetime=soon",
        "datetime",
        "`soon` is not an RFC 3339 date-time, a date, or an interval a/b",
    );
    rejects("within=uk", "within", "`uk` is not dataset/featureId");
    rejects("sortby=nope", "sortby", "no property `nope` to sort by");
    rejects(
        "sortby=score,-score",
        "sortby",
        "`score` is given more than once",
    );
    rejects("properties=nope", "properties", "no property `nope`");
    rejects(
        "f=xml",
        "f",
        "unknown format `xml`: use json or html, csv or ics",
    );
    rejects(
        "score=high",
        "score",
        "`high` is not a number (property `score` is number)",
    );
    rejects(
        "seen=2018-11",
        "seen",
        "`2018-11` is not a date (YYYY-MM-DD) (property `seen` is date)",
    );
    rejects(
        "open=yes",
        "open",
        "`yes` is not true or false (property `open` is boolean)",
    );
    rejects("colour=red", "colour", "unknown parameter `colour`");
    rejects(
        "score=1&score=2",
        "score",
        "`score` is given more than once",
    );
    rejects("=1", "query", "a value without a parameter name");
    let many = vec!["a"; MAX_CATEGORY_VALUES + 1].join(",");
    rejects(
        &format!("kind={many}"),
        "kind",
        "at most 100 values, comma-separated",
    );
    // `bucket` is a histogram's parameter only; paging ones are not the tiles'.
    let e = parse_items(&crimes(), Some("bucket=day"), ParamSet::Items).unwrap_err();
    assert_eq!(e.parameter(), Some("bucket"));
    let e = parse_items(&crimes(), Some("bucket=year"), ParamSet::Histogram).unwrap_err();
    assert_eq!(e.to_string(), "`year` is not day, week or month");
    let e = parse_items(&crimes(), Some("limit=5"), ParamSet::Tiles).unwrap_err();
    assert!(
        matches!(e, QueryError::Unknown(ref p) if p == "limit"),
        "{e:?}"
    );
}

#[test]
fn a_valid_items_request_is_parsed_once_into_its_query() {
    let req = parse_items(
        &crimes(),
        Some("limit=20000&offset=5&bbox=-3,51,-2,52&datetime=2018-11&kind=a,b&sortby=-score&properties=kind&f=csv"),
        ParamSet::Items,
    )
    .unwrap();
    assert_eq!(req.query.limit, Some(MAX_LIMIT));
    assert!(req.explicit_limit);
    assert_eq!(req.query.offset, 5);
    assert_eq!(req.query.bbox.len(), 1);
    assert_eq!(
        req.query.equals,
        vec![(0, vec![Value::Text("a".into()), Value::Text("b".into())])]
    );
    assert_eq!(req.query.sort, vec![(1, true)]);
    assert_eq!(req.properties, Some(vec![0]));
    assert_eq!(req.format, Some(Format::Csv));
    let default = parse_items(&crimes(), None, ParamSet::Items).unwrap();
    assert_eq!(default.query.limit, Some(DEFAULT_LIMIT));
    assert!(!default.explicit_limit);
}

/// A tile of two layers and an items page given the same filters select the same
/// features: the layer's query is the items query without its page size.
#[test]
fn tile_layers_and_items_share_one_query() {
    let filters = "datetime=2018-11-01/2018-11-30&kind=burglary&score=3.5";
    let layers = layer_requests(None, &[crimes(), areas()], Some(filters)).unwrap();
    let mut items = parse_items(&crimes(), Some(filters), ParamSet::Items)
        .unwrap()
        .query;
    items.limit = None;
    assert_eq!(layers[0].query, items);
    assert_eq!(layers[0].dataset.id.as_str(), "crimes");
    // The layer without time or `score` gets only what applies to it.
    let mut own = parse_items(&areas(), Some("kind=burglary"), ParamSet::Items)
        .unwrap()
        .query;
    own.limit = None;
    assert_eq!(layers[1].query, own);
    assert!(layers[1].query.time.is_none());
    // The versions TileJSON writes into tile URLs are not a filter.
    let plain = layer_requests(None, &[crimes()], Some("v=7")).unwrap();
    assert_eq!(plain[0].query, Query::default());
}

#[test]
fn tile_filters_that_no_layer_takes_are_errors() {
    let e = layer_requests(None, &[areas()], Some("score=1")).unwrap_err();
    assert_eq!(
        (e.parameter(), e.to_string().as_str()),
        (Some("score"), "unknown parameter `score`")
    );
    let e = layer_requests(None, &[crimes()], Some("bbox=0,0,1,1")).unwrap_err();
    assert_eq!(e.parameter(), Some("bbox"));
    let e = layer_requests(None, &[crimes()], Some("datetime=never")).unwrap_err();
    assert_eq!(e.parameter(), Some("datetime"));
    // A well-formed `within=` needs the catalog; a malformed one is the client's fault.
    let e = layer_requests(None, &[crimes()], Some("within=areas/1")).unwrap_err();
    assert!(matches!(e, QueryError::NeedsCatalog), "{e:?}");
    assert_eq!(e.parameter(), None);
    let e = layer_requests(None, &[crimes()], Some("within=areas")).unwrap_err();
    assert_eq!(e.parameter(), Some("within"));
}

#[test]
fn tile_coordinates() {
    let c = parse_coord("3", "2", "5").unwrap();
    assert_eq!(
        c.to_string(),
        crate::tiles::TileCoord::new(3, 2, 5).unwrap().to_string()
    );
    for (z, x, y, param) in [
        ("a", "0", "0", "z"),
        ("1", "-1", "0", "x"),
        ("1", "0", "1.5", "y"),
    ] {
        let e = parse_coord(z, x, y).unwrap_err();
        assert_eq!(e.parameter(), Some(param), "{z}/{x}/{y}");
        assert!(
            e.to_string().ends_with(&format!("is not a tile {param}")),
            "{e}"
        );
    }
    for (z, x, y) in [("300", "0", "0"), ("2", "4", "0"), ("25", "0", "0")] {
        assert!(
            matches!(parse_coord(z, x, y), Err(QueryError::NoTile(_))),
            "{z}/{x}/{y}"
        );
    }
}

#[test]
fn datasets_of_a_tile_url() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = crate::store::sqlite::SqliteCatalog::open(&dir.path().join("c.db")).unwrap();
    let snap = catalog.snapshot().unwrap();
    let e = load_datasets(&*snap, "missing").unwrap_err();
    assert!(
        matches!(e, QueryError::NoDataset(ref id) if id == "missing"),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "no dataset `missing`");
    let e = load_datasets(&*snap, "Not An Id").unwrap_err();
    assert!(matches!(e, QueryError::NoDataset(_)), "{e:?}");
    let many = vec!["a"; MAX_LAYERS + 1].join(",");
    let e = load_datasets(&*snap, &many).unwrap_err();
    assert_eq!(e.parameter(), Some("ids"));
    assert_eq!(e.to_string(), "at most 16 datasets in one tile URL");
}
