//! Imports of the quirky real fixtures, checked against the facts of `tests/fixtures/README.md`,
//! through the library and read back over HTTP.

use crate::support::*;
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};
use tessera::model::time::format_utc;
use tessera::model::{FieldType, NoGeometry};

fn missing(info: &tessera::model::DatasetInfo) -> u64 {
    info.without_geometry
        .iter()
        .find(|(k, _)| *k == NoGeometry::Missing)
        .map_or(0, |(_, n)| *n)
}

fn extent(info: &tessera::model::DatasetInfo) -> (String, String) {
    let t = info.time_extent.expect("dataset has a time extent");
    (format_utc(t.start), format_utc(t.end))
}

fn field_type(info: &tessera::model::DatasetInfo, name: &str) -> FieldType {
    info.fields[info
        .field_index(name)
        .unwrap_or_else(|| panic!("no field {name}"))]
    .ty
}

#[tokio::test]
async fn latin1_businesses_keep_every_row_and_serve_utf8() {
    let s = Server::start().await;
    let mut req = fixture_request("sf", "sf-businesses-latin1.csv");
    req.options.id_column = Some("business_id".into());
    let report = s.import(&req);
    assert_eq!(report.rows_read, 60);
    assert_eq!(report.imported, 60, "all 60 rows kept");
    assert_eq!(report.errors, 0);
    let info = s.data.info("sf").unwrap();
    assert_eq!(info.feature_count, 60);
    assert_eq!(missing(&info), 9, "9 rows have empty latitude/longitude");
    assert_eq!(info.without_geometry_total(), 9);
    assert!(
        info.source_ids,
        "business_id is unique, so it is the feature id"
    );

    // Every Latin-1 name comes back as the right UTF-8 text.
    let expected = [
        ("38566", "TROPISUEÑO"),
        ("68091", "KIÊN THANH"),
        ("70705", "CRÈME BRULEE TO GO"),
        ("71259", "CRÈME BRULEE TO GO"),
        ("75448", "LAGUNA CAFÉ"),
        ("81484", "LA NOISETTE CAFÉ AND DELI"),
        ("85095", "T-28 BAKERY & CAFÉ"),
        ("86814", "SUNNY WHEATFIELD CAFÉ INC"),
    ];
    for (id, name) in expected {
        let r = s.get(&format!("/collections/sf/items/{id}")).await;
        assert_eq!(r.status(), 200);
        let bytes = r.bytes().await.unwrap();
        let text = std::str::from_utf8(&bytes).expect("response is valid UTF-8");
        assert!(
            text.contains(name),
            "{id}: `{name}` not in the UTF-8 body {text}"
        );
        let f: Json = serde_json::from_str(text).unwrap();
        assert_eq!(f["properties"]["name"], name);
        assert_eq!(id_of(&f), id);
    }
    // 38566 is the only Latin-1 row with a position; the other 7 have none.
    let f = s.json("/collections/sf/items/38566").await;
    assert_eq!(f["geometry"]["type"], "Point");
    let f = s.json("/collections/sf/items/75448").await;
    assert!(f["geometry"].is_null());

    // Also through the HTML page and the CSV export.
    let html = s
        .get("/collections/sf/items/75448?f=html")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("LAGUNA CAFÉ"), "{html}");
    let csv = s
        .get("/collections/sf/items?f=csv")
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.contains("KIÊN THANH"));
}

#[tokio::test]
async fn latin1_explicit_encoding_matches_auto() {
    let c = TestCatalog::new();
    let mut req = fixture_request("auto", "sf-businesses-latin1.csv");
    c.import(&req);
    req.id = tessera::model::DatasetId::parse("latin").unwrap();
    req.options.encoding = tessera::ingest::Encoding::Latin1;
    c.import(&req);
    let (a, b) = (c.info("auto").unwrap(), c.info("latin").unwrap());
    assert_eq!(a.fields, b.fields);
    assert_eq!(a.feature_count, b.feature_count);
    // Strict UTF-8 rejects the rows with Latin-1 bytes.
    req.id = tessera::model::DatasetId::parse("strict").unwrap();
    req.options.encoding = tessera::ingest::Encoding::Utf8;
    let err = c.try_import(&req).unwrap_err().to_string();
    assert!(err.contains("sf-businesses-latin1.csv"), "{err}");
    assert!(c.info("strict").is_none());
}

async fn uk_dataset_checks(s: &Server, id: &str) {
    let info = s.data.info(id).unwrap();
    assert_eq!(info.feature_count, 200);
    assert_eq!(missing(&info), 24);
    assert_eq!(info.without_geometry, vec![(NoGeometry::Missing, 24)]);
    assert_eq!(info.geometry_type.as_deref(), Some("Point"));
    assert_eq!(field_type(&info, "Month"), FieldType::Month);
    assert_eq!(
        extent(&info),
        ("2018-11-01T00:00:00Z".into(), "2018-11-30T23:59:59Z".into())
    );
    // Every row has a time (the month), with or without geometry.
    let all = s
        .items(id, &[("datetime", "2018-11"), ("limit", "1000")])
        .await;
    assert_eq!(number_matched(&all), 200);
    let day = s.items(id, &[("datetime", "2018-11-15")]).await;
    assert_eq!(number_matched(&day), 200);
    let before = s.items(id, &[("datetime", "2018-10")]).await;
    assert_eq!(number_matched(&before), 0);
    let no_geom = features(&all)
        .iter()
        .filter(|f| f["geometry"].is_null())
        .count();
    assert_eq!(no_geom, 24);
}

#[tokio::test]
async fn uk_crime_plain_and_gzip_give_the_same_dataset() {
    let s = Server::start().await;
    let plain = s.import(&fixture_request("plain", "uk-crime-sample.csv"));
    let gz = s.import(&fixture_request("gz", "uk-crime-sample.csv.gz"));
    for r in [&plain, &gz] {
        assert_eq!(r.rows_read, 200);
        assert_eq!(r.imported, 200);
        assert_eq!(r.without_geometry, vec![(NoGeometry::Missing, 24)]);
        assert_eq!(r.time_column.as_deref(), Some("Month"));
        assert_eq!(r.time_unparsed, 0);
    }
    uk_dataset_checks(&s, "plain").await;
    uk_dataset_checks(&s, "gz").await;
    let (a, b) = (s.data.info("plain").unwrap(), s.data.info("gz").unwrap());
    assert_eq!(a.fields, b.fields);
    assert_eq!(a.bounds, b.bounds);
    // Same features, in the same order, with the same values.
    let fa = s.items("plain", &[("limit", "1000")]).await;
    let fb = s.items("gz", &[("limit", "1000")]).await;
    assert_eq!(features(&fa), features(&fb));
}

#[tokio::test]
async fn nyc_311_location_only_uses_wkt_and_new_york_time() {
    let s = Server::start().await;
    let mut req = fixture_request("nyc", "nyc-311-location-only.csv");
    req.options.id_column = Some("Unique Key".into());
    req.timezone = tessera::model::time::parse_zone("America/New_York").unwrap();
    let report = s.import(&req);
    assert_eq!(report.imported, 100);
    assert_eq!(report.time_column.as_deref(), Some("Created Date"));
    assert!(
        report.notes.iter().any(|n| n.contains("`Location`")),
        "position should come from Location: {:?}",
        report.notes
    );
    let info = s.data.info("nyc").unwrap();
    assert_eq!(info.without_geometry, vec![(NoGeometry::Missing, 6)]);
    // The State Plane columns must not be taken as coordinates: everything is in New York.
    let b = info.bounds.unwrap();
    assert!(
        b.min_x > -74.3 && b.max_x < -73.6 && b.min_y > 40.4 && b.max_y < 41.0,
        "bounds outside NYC: {b:?}"
    );
    // The WKT keeps all its digits: POINT (-73.88182509318824 40.65651333701598).
    let f = s.json("/collections/nyc/items/64345465").await;
    assert_eq!(f["geometry"]["coordinates"][0], -73.88182509318824);
    assert_eq!(f["geometry"]["coordinates"][1], 40.65651333701598);
    // 3/14/2025 1:20 New York (EDT, UTC-4) is 05:20 UTC.
    assert_eq!(f["properties"]["Created Date"], "2025-03-14T05:20:00Z");
    // 1/2/2025 9:20 New York (EST, UTC-5) is 14:20 UTC.
    let f = s.json("/collections/nyc/items/63608618").await;
    assert_eq!(f["properties"]["Created Date"], "2025-01-02T14:20:00Z");
    assert_eq!(
        extent(&info),
        ("2025-01-02T14:20:00Z".into(), "2025-03-14T05:20:00Z".into())
    );
    // The datetime filter sees the UTC instant, not the wall time.
    let hit = s
        .items("nyc", &[("datetime", "2025-03-14T05:20:00Z")])
        .await;
    assert_eq!(ids(&hit), vec!["64345465"]);
    let wall = s
        .items("nyc", &[("datetime", "2025-03-14T01:20:00Z")])
        .await;
    assert_eq!(number_matched(&wall), 0);
}

#[tokio::test]
async fn nyc_311_with_both_position_forms_agrees_with_location_only() {
    let c = TestCatalog::new();
    c.import(&fixture_request("both", "nyc-311-sample.csv"));
    c.import(&fixture_request("wkt", "nyc-311-location-only.csv"));
    let (a, b) = (c.info("both").unwrap(), c.info("wkt").unwrap());
    assert_eq!(a.feature_count, 100);
    assert_eq!(a.without_geometry, vec![(NoGeometry::Missing, 6)]);
    assert_eq!(a.without_geometry, b.without_geometry);
    let (ba, bb) = (a.bounds.unwrap(), b.bounds.unwrap());
    // The lat/lon columns have fewer digits than the WKT: equal to about a metre.
    for (x, y) in [
        (ba.min_x, bb.min_x),
        (ba.min_y, bb.min_y),
        (ba.max_x, bb.max_x),
        (ba.max_y, bb.max_y),
    ] {
        assert!((x - y).abs() < 1e-5, "{ba:?} vs {bb:?}");
    }
}

#[tokio::test]
async fn chicago_lat_lon_location_is_latitude_first() {
    let s = Server::start().await;
    let report = s.import(&fixture_request("chi", "chicago-food-location-only.csv"));
    assert_eq!(report.imported, 100);
    let info = s.data.info("chi").unwrap();
    assert_eq!(info.without_geometry, vec![(NoGeometry::Missing, 5)]);
    let b = info.bounds.unwrap();
    assert!(
        b.min_x > -88.0 && b.max_x < -87.5 && b.min_y > 41.6 && b.max_y < 42.1,
        "bounds outside Chicago (lat/lon swapped?): {b:?}"
    );
    assert_eq!(
        extent(&info),
        ("2011-09-08T00:00:00Z".into(), "2014-11-25T23:59:59Z".into())
    );
    assert_eq!(field_type(&info, "Inspection_ID"), FieldType::Number);
    // "(41.943359344775146, -87.64499875300952)" is SEVEN STAR, Inspection_ID 269961.0.
    let fc = s.items("chi", &[("Inspection_ID", "269961")]).await;
    assert_eq!(number_matched(&fc), 1);
    let f = &features(&fc)[0];
    assert_eq!(f["properties"]["DBA_Name"], "SEVEN STAR");
    assert_eq!(f["geometry"]["coordinates"][0], -87.64499875300952);
    assert_eq!(f["geometry"]["coordinates"][1], 41.943359344775146);
}

#[tokio::test]
async fn squirrels_compact_us_dates_and_trap_location_column() {
    let s = Server::start().await;
    let report = s.import(&fixture_request("sq", "squirrels-sample.csv"));
    assert_eq!(report.imported, 100);
    assert_eq!(report.time_column.as_deref(), Some("Date"));
    assert_eq!(report.time_unparsed, 0);
    let info = s.data.info("sq").unwrap();
    assert_eq!(info.without_geometry_total(), 0, "X/Y always present");
    assert!(
        !info.source_ids,
        "no id column was given, so ids are numbers"
    );
    assert_eq!(field_type(&info, "Date"), FieldType::Date);
    assert_eq!(field_type(&info, "Location"), FieldType::String);
    assert_eq!(field_type(&info, "Running"), FieldType::Boolean);
    assert_eq!(
        extent(&info),
        ("2018-10-06T00:00:00Z".into(), "2018-10-19T23:59:59Z".into())
    );
    let b = info.bounds.unwrap();
    assert!(b.min_x > -74.0 && b.max_x < -73.9 && b.min_y > 40.76 && b.max_y < 40.81);
    // 10142018 is 14 October 2018, a whole day.
    let day = s
        .items(
            "sq",
            &[("datetime", "2018-10-14T12:00:00Z"), ("limit", "1000")],
        )
        .await;
    let (header, rows) = read_csv(&fixture("squirrels-sample.csv"));
    let d = col(&header, "Date");
    let expected = rows.iter().filter(|r| &r[d] == "10142018").count() as u64;
    assert!(expected > 0);
    assert_eq!(number_matched(&day), expected);
    for f in features(&day) {
        assert_eq!(f["properties"]["Date"], "2018-10-14");
    }
    // The duplicated squirrel id: ids are not taken from it even when asked for.
    let mut req = fixture_request("sq2", "squirrels-sample.csv");
    req.options.id_column = Some("Unique Squirrel ID".into());
    s.import(&req);
    let info = s.data.info("sq2").unwrap();
    assert_eq!(info.feature_count, 100);
    assert!(!info.source_ids, "1F-AM-1010-04 appears twice");
}

#[tokio::test]
async fn events_without_coordinates_take_time_from_start_and_end() {
    let s = Server::start().await;
    let mut req = fixture_request("events", "nyc-events-sample.csv");
    req.time = Some("Start Date/Time".into());
    req.time_end = Some("End Date/Time".into());
    let report = s.import(&req);
    assert_eq!(report.imported, 100);
    assert_eq!(report.without_geometry, vec![(NoGeometry::Missing, 100)]);
    let info = s.data.info("events").unwrap();
    assert_eq!(info.geometry_type, None);
    assert_eq!(info.bounds, None);
    assert_eq!(
        extent(&info),
        ("2022-02-16T18:00:00Z".into(), "2022-11-12T14:00:00Z".into()),
        "start of the earliest start, end of the latest end"
    );
    // 611810 runs 05/05/2022 09:00 AM to 04:00 PM: an instant inside matches it.
    let fc = s
        .items(
            "events",
            &[("datetime", "2022-05-05T15:00:00Z"), ("Event ID", "611810")],
        )
        .await;
    assert_eq!(number_matched(&fc), 1);
    let after_end = s
        .items(
            "events",
            &[("datetime", "2022-05-05T16:00:01Z"), ("Event ID", "611810")],
        )
        .await;
    assert_eq!(number_matched(&after_end), 0);
    // The double-encoded UTF-8 of data rows 3, 5 and 90 is served as published (the
    // README shows it as `Ã¢â‚¬â€œ`; the bytes are C1 controls, not Windows-1252).
    let all = s.items("events", &[("limit", "100")]).await;
    let mojibake = "Football \u{c3}\u{a2}\u{e2}\u{82}\u{ac}\u{e2}\u{80}\u{9c} Flag Football";
    let n = features(&all)
        .iter()
        .filter(|f| f["properties"]["Event Name"] == mojibake)
        .count();
    assert_eq!(n, 3);
    // A bbox never matches a feature without geometry.
    let boxed = s.items("events", &[("bbox", "-180,-90,180,90")]).await;
    assert_eq!(number_matched(&boxed), 0);
}

#[tokio::test]
async fn mpls_rfc3339_times() {
    let c = TestCatalog::new();
    let report = c.import(&fixture_request("mpls", "mpls-stops-sample.csv"));
    assert_eq!(report.imported, 100);
    assert_eq!(report.time_column.as_deref(), Some("date"));
    let info = c.info("mpls").unwrap();
    assert_eq!(info.without_geometry_total(), 0);
    assert_eq!(
        extent(&info),
        ("2017-01-01T06:00:42Z".into(), "2017-12-27T04:27:22Z".into())
    );
}

#[tokio::test]
async fn sf_inspections_compact_dates_without_coordinates() {
    let c = TestCatalog::new();
    let report = c.import(&fixture_request("insp", "sf-inspections-sample.csv"));
    assert_eq!(report.imported, 100);
    assert_eq!(report.time_column.as_deref(), Some("date"));
    assert_eq!(report.without_geometry, vec![(NoGeometry::Missing, 100)]);
    let info = c.info("insp").unwrap();
    assert_eq!(field_type(&info, "date"), FieldType::Date);
    assert_eq!(field_type(&info, "business_id"), FieldType::Integer);
    assert_eq!(field_type(&info, "Score"), FieldType::Integer);
    assert_eq!(
        extent(&info),
        ("2014-10-24T00:00:00Z".into(), "2017-10-16T23:59:59Z".into())
    );
}

#[tokio::test]
async fn manhattan_neighbourhoods_are_37_multipolygons() {
    let s = Server::with_fixture("mn", "manhattan-neighbourhoods.geojson").await;
    let info = s.data.info("mn").unwrap();
    assert_eq!(info.feature_count, 37);
    assert_eq!(info.geometry_type.as_deref(), Some("MultiPolygon"));
    assert_eq!(info.without_geometry_total(), 0);
    let fc = s.items("mn", &[("limit", "100")]).await;
    assert_eq!(number_matched(&fc), 37);
    let names: BTreeSet<&str> = features(&fc)
        .iter()
        .map(|f| {
            assert_eq!(f["geometry"]["type"], "MultiPolygon");
            assert_eq!(f["geometry"]["coordinates"].as_array().unwrap().len(), 1);
            f["properties"]["name"].as_str().unwrap()
        })
        .collect();
    assert!(names.contains("Battery Park City"));
    let vertices: usize = features(&fc)
        .iter()
        .map(|f| {
            f["geometry"]["coordinates"][0]
                .as_array()
                .unwrap()
                .iter()
                .map(|ring| ring.as_array().unwrap().len())
                .sum::<usize>()
        })
        .sum();
    assert_eq!(vertices, 3699);
}

#[tokio::test]
async fn polygon_hole_survives_a_round_trip() {
    let s = Server::with_fixture("fd", "polygons-with-holes.geojson").await;
    let source: Json = serde_json::from_str(
        &std::fs::read_to_string(fixture("polygons-with-holes.geojson")).unwrap(),
    )
    .unwrap();
    let src_geom = &source["features"][0]["geometry"];
    let fc = s.items("fd", &[]).await;
    assert_eq!(number_matched(&fc), 1);
    let id = id_of(&features(&fc)[0]);
    let f = s.json(&format!("/collections/fd/items/{id}")).await;
    assert_eq!(id_of(&f), id);
    let rings = f["geometry"]["coordinates"][0].as_array().unwrap();
    assert_eq!(rings.len(), 2, "shell and hole");
    assert_eq!(rings[0].as_array().unwrap().len(), 148);
    assert_eq!(rings[1].as_array().unwrap().len(), 5);
    assert_eq!(&f["geometry"], src_geom, "geometry unchanged");
    assert_eq!(f["properties"]["name"], "Financial District");

    // The degenerate holes are kept as they are.
    s.import(&fixture_request(
        "longfellow",
        "polygons-degenerate-holes.geojson",
    ));
    let source: Json = serde_json::from_str(
        &std::fs::read_to_string(fixture("polygons-degenerate-holes.geojson")).unwrap(),
    )
    .unwrap();
    let fc = s.items("longfellow", &[]).await;
    assert_eq!(
        features(&fc)[0]["geometry"],
        source["features"][0]["geometry"]
    );
}

#[tokio::test]
async fn ndjson_and_geojson_sequence_roads() {
    let s = Server::start().await;
    for (id, file) in [
        ("nd", "roads-sample.ndjson"),
        ("seq", "roads-sample.geojsonseq"),
    ] {
        let r = s.import(&fixture_request(id, file));
        assert_eq!(r.imported, 50, "{file}");
        let info = s.data.info(id).unwrap();
        assert_eq!(info.geometry_type.as_deref(), Some("LineString"), "{file}");
        assert_eq!(info.without_geometry_total(), 0);
        let fc = s.items(id, &[("limit", "100")]).await;
        let mut classes: BTreeMap<String, u32> = BTreeMap::new();
        let mut positions = 0;
        for f in features(&fc) {
            assert_eq!(f["geometry"]["type"], "LineString");
            positions += f["geometry"]["coordinates"].as_array().unwrap().len();
            *classes
                .entry(f["properties"]["fclass"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        assert_eq!(positions, 439);
        assert_eq!(classes.len(), 11);
        assert_eq!(classes["footway"], 17);
        assert_eq!(classes["secondary"], 9);
        // `name` is missing from 19 features: null there.
        let unnamed = features(&fc)
            .iter()
            .filter(|f| f["properties"]["name"].is_null())
            .count();
        assert_eq!(unnamed, 19);
    }
    let a = s.items("nd", &[("limit", "100")]).await;
    let b = s.items("seq", &[("limit", "100")]).await;
    assert_eq!(features(&a), features(&b));
}

#[tokio::test]
async fn several_files_of_one_schema_make_one_dataset() {
    let c = TestCatalog::new();
    let req = request(
        "uk",
        &[
            fixture("uk-crime-sample.csv"),
            fixture("uk-crime-sample.csv.gz"),
        ],
    );
    let report = c.import(&req);
    assert_eq!(report.rows_read, 400);
    assert_eq!(report.imported, 400);
    assert_eq!(
        report.notes.len(),
        2,
        "one note per file: {:?}",
        report.notes
    );
    let info = c.info("uk").unwrap();
    assert_eq!(info.feature_count, 400);
    assert_eq!(info.without_geometry, vec![(NoGeometry::Missing, 48)]);
    let datasets = c.catalog.snapshot().unwrap().datasets().unwrap();
    assert_eq!(datasets.len(), 1);
}

#[tokio::test]
async fn append_adds_rows_and_reimport_replaces() {
    let s = Server::with_fixture("uk", "uk-crime-sample.csv").await;
    let v1 = s.data.info("uk").unwrap().version;
    let mut req = fixture_request("uk", "uk-crime-sample.csv.gz");
    req.append = true;
    let report = s.import(&req);
    assert_eq!(report.rows_read, 200, "rows read from the new file");
    assert_eq!(report.imported, 400, "rows in the dataset after the append");
    let info = s.data.info("uk").unwrap();
    assert_eq!(info.feature_count, 400);
    assert_eq!(info.without_geometry, vec![(NoGeometry::Missing, 48)]);
    assert_ne!(info.version, v1);
    let fc = s.items("uk", &[("datetime", "2018-11")]).await;
    assert_eq!(number_matched(&fc), 400, "appended rows keep their time");
    let boxed = s.items("uk", &[("bbox", "-2.7,51.4,-2.5,51.5")]).await;
    assert_eq!(number_matched(&boxed), 8, "4 points of each copy");
    let v2 = info.version;

    // A plain re-import replaces: another file, other count, new version.
    s.import(&fixture_request("uk", "mpls-stops-sample.csv"));
    let info = s.data.info("uk").unwrap();
    assert_eq!(info.feature_count, 100);
    assert_ne!(info.version, v2);
    assert!(info.field_index("Crime type").is_none());
    let coll = s.json("/collections/uk").await;
    assert_eq!(coll["featureCount"], 100);
    assert_eq!(coll["version"], info.version);
    let fc = s.items("uk", &[]).await;
    assert_eq!(number_matched(&fc), 100);
}

#[tokio::test]
async fn failed_import_leaves_the_previous_version() {
    let s = Server::with_fixture("uk", "uk-crime-sample.csv").await;
    let before = s.data.info("uk").unwrap();
    let bad = s.data.write(
        "bad.csv",
        "id,name,lon,lat\n1,a,-2.6,51.45\n2,b,-2.61,51.46,EXTRA\n3,c,-2.62,51.47\n",
    );
    let err = s
        .data
        .try_import(&request("uk", std::slice::from_ref(&bad)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.csv"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    let after = s.data.info("uk").unwrap();
    assert_eq!(after.version, before.version);
    assert_eq!(after.feature_count, 200);
    let fc = s.items("uk", &[]).await;
    assert_eq!(number_matched(&fc), 200);
    assert_eq!(s.json("/collections/uk").await["version"], before.version);

    // Tolerating a few errors: the good rows replace the dataset, the bad one is reported.
    let mut req = request("uk", std::slice::from_ref(&bad));
    req.max_errors = 5;
    let report = s.import(&req);
    assert_eq!(report.errors, 1);
    assert_eq!(report.imported, 2);
    assert_eq!(report.error_samples.len(), 1);
    let msg = &report.error_samples[0];
    assert!(
        msg.contains("bad.csv") && msg.contains("line 3"),
        "error names file and line: {msg}"
    );
    let info = s.data.info("uk").unwrap();
    assert_eq!(info.feature_count, 2);
    assert_ne!(info.version, before.version);
    assert_eq!(number_matched(&s.items("uk", &[]).await), 2);
}

#[tokio::test]
async fn nonexistent_file_is_an_error_naming_it() {
    let c = TestCatalog::new();
    let path = c.dir.path().join("no-such-file.csv");
    let err = c
        .try_import(&request("x", std::slice::from_ref(&path)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no-such-file.csv"), "{err}");
    assert!(c.info("x").is_none());
}

#[tokio::test]
async fn unknown_time_column_is_a_config_error() {
    let c = TestCatalog::new();
    let mut req = fixture_request("uk", "uk-crime-sample.csv");
    req.time = Some("When".into());
    let err = c.try_import(&req).unwrap_err().to_string();
    assert!(err.contains("When"), "{err}");
    assert!(c.info("uk").is_none());
}

/// The time column is picked by name; an empty cell in the first row must not hide it.
#[tokio::test]
async fn time_column_detected_when_first_row_is_empty() {
    let c = TestCatalog::new();
    let file = c.write(
        "first-empty.csv",
        "id,date,lon,lat\n1,,-2.6,51.45\n2,2020-01-02,-2.61,51.46\n3,2020-01-03,-2.62,51.47\n",
    );
    let report = c.import(&request("t", &[file]));
    assert_eq!(report.time_column.as_deref(), Some("date"));
    let info = c.info("t").unwrap();
    assert_eq!(
        extent(&info),
        ("2020-01-02T00:00:00Z".into(), "2020-01-03T23:59:59Z".into())
    );
}

/// A CSV header defines the dataset's fields: all of them, in header order, even a column
/// that is empty in every row (UK crime's `Context`) or empty in the first rows.
#[tokio::test]
async fn csv_header_defines_the_fields() {
    let s = Server::with_fixture("uk", "uk-crime-sample.csv").await;
    let (header, _) = read_csv(&fixture("uk-crime-sample.csv"));
    let info = s.data.info("uk").unwrap();
    let names: Vec<&str> = info.fields.iter().map(|f| f.name.as_str()).collect();
    // A column empty in the first row must keep its place.
    let file = s
        .data
        .write("late.csv", "a,b,c,lon,lat\n1,,3,1,2\n4,5,6,3,4\n");
    s.import(&request("late", &[file]));
    let late = s.data.info("late").unwrap();
    let late: Vec<&str> = late.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(late, ["a", "b", "c", "lon", "lat"], "fields vs CSV header");
    assert_eq!(names, header, "fields vs CSV header");
    let q = s.json("/collections/uk/queryables").await;
    assert!(q["properties"]["Context"].is_object(), "{q}");
}

/// The data stamp lets the tile fast path trust metadata it keeps in memory: a change
/// committed through the same catalog must show at once, one committed by another
/// process (here another catalog on the same data) soon after.
#[test]
fn data_stamp_sees_own_writes_at_once_and_others_soon() {
    let data = TestCatalog::new();
    let before = data.catalog.data_stamp().unwrap();
    assert_eq!(
        data.catalog.data_stamp().unwrap(),
        before,
        "no change, same stamp"
    );
    data.import(&fixture_request("uk", "uk-crime-sample.csv"));
    let after_own = data.catalog.data_stamp().unwrap();
    assert_ne!(after_own, before, "own import shows at once");

    let other = data.reopen();
    tessera::import::run(
        other.as_ref(),
        &fixture_request("uk2", "uk-crime-sample.csv"),
        &mut |_| {},
    )
    .unwrap();
    // Not a timing assertion: the stamp must change eventually; 50 ms is the design.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while data.catalog.data_stamp().unwrap() == after_own {
        assert!(
            std::time::Instant::now() < deadline,
            "another process's import never showed in the stamp"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let after_other = data.catalog.data_stamp().unwrap();
    assert!(
        data.catalog
            .delete(&tessera::model::DatasetId::parse("uk2").unwrap())
            .unwrap()
    );
    assert_ne!(
        data.catalog.data_stamp().unwrap(),
        after_other,
        "own delete shows at once"
    );
}
