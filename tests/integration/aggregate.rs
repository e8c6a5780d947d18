//! Counts by area (`/collections/{id}/aggregate`): real UK crime points in the real LSOAs
//! of Bristol and Liverpool and Minneapolis stops in its neighbourhoods, compared with a
//! brute-force point-in-polygon count by shapely (nobody here wrote it), with and
//! without filters; the shared-edge rule; attribute joins; CSV, ETags and 400s.

use super::support::{Server, fixture, fixture_request, request};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use tessera::model::AreaJoin;

/// The test venv's interpreter (`make pyenv`); in CI its absence is a failure.
fn python() -> Option<PathBuf> {
    let p = std::env::var_os("TESSERA_PYTHON").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/py-venv/bin/python"),
        PathBuf::from,
    );
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but there is no Python test venv at {} (run `make pyenv`)",
        p.display()
    );
    eprintln!("notice: shapely comparison skipped: no Python test venv (run `make pyenv`)");
    None
}

/// shapely's counts by area name, outside and total.
fn shapely(
    py: &Path,
    points: &str,
    areas: &str,
    lonlat: (&str, &str),
    name: &str,
    filters: &[(&str, &str)],
) -> (BTreeMap<String, u64>, u64, u64) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/count_by_area.py");
    let mut cmd = Command::new(py);
    cmd.arg(script)
        .arg(fixture(points))
        .arg(fixture(areas))
        .args([lonlat.0, lonlat.1, name]);
    for (k, v) in filters {
        cmd.args([k, v]);
    }
    let out = cmd.output().expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Json = serde_json::from_slice(&out.stdout).expect("shapely JSON");
    let counts = j["counts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    (
        counts,
        j["outside"].as_u64().unwrap(),
        j["total"].as_u64().unwrap(),
    )
}

/// Tessera's counts by area name, after checking the body's own arithmetic.
fn by_name(body: &Json) -> (BTreeMap<String, u64>, u64, u64) {
    let areas = body["areas"].as_array().expect("areas");
    let counts: BTreeMap<String, u64> = areas
        .iter()
        .map(|a| {
            let count = a["count"].as_u64().unwrap();
            let km2 = a["area_km2"].as_f64().unwrap();
            assert!(km2 > 0.0, "{a}");
            let density = a["density"].as_f64().unwrap();
            assert!(
                (density - count as f64 / km2).abs() <= 1e-5 * density.max(1.0),
                "{a}"
            );
            (a["name"].as_str().unwrap().to_owned(), count)
        })
        .collect();
    let (outside, total) = (
        body["outside"].as_u64().unwrap(),
        body["total"].as_u64().unwrap(),
    );
    assert_eq!(
        counts.values().sum::<u64>() + outside,
        total,
        "areas + outside = total"
    );
    (counts, outside, total)
}

/// Areas dataset, query suffix, and the same filters as shapely's (field, prefix) pairs.
type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

async fn uk_server() -> Server {
    let s = Server::start().await;
    let mut req = fixture_request("uk", "uk-crime-bristol-liverpool.csv");
    req.time = Some("Month".into());
    req.meta.category = Some("Crime type".into());
    s.import(&req);
    s.import(&fixture_request("bristol-lsoa", "bristol-lsoa.geojson"));
    s.import(&fixture_request("liverpool-lsoa", "liverpool-lsoa.geojson"));
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn uk_crime_counts_by_lsoa_equal_shapely_with_and_without_filters() {
    let s = uk_server().await;
    let Some(py) = python() else { return };
    let cases: &[Case] = &[
        ("bristol-lsoa", "", &[]),
        ("liverpool-lsoa", "", &[]),
        ("bristol-lsoa", "&datetime=2018-12", &[("Month", "2018-12")]),
        (
            "liverpool-lsoa",
            "&Crime%20type=Burglary",
            &[("Crime type", "Burglary")],
        ),
        (
            "liverpool-lsoa",
            "&Crime%20type=Anti-social%20behaviour&datetime=2018-11",
            &[
                ("Crime type", "Anti-social behaviour"),
                ("Month", "2018-11"),
            ],
        ),
        (
            "bristol-lsoa",
            "&Last%20outcome%20category=Unable%20to%20prosecute%20suspect",
            &[("Last outcome category", "Unable to prosecute suspect")],
        ),
    ];
    for (areas, query, filters) in cases {
        let body = s
            .json(&format!("/collections/uk/aggregate?by={areas}{query}"))
            .await;
        assert_eq!(body["by"], *areas);
        let got = by_name(&body);
        let file = format!("{areas}.geojson");
        let want = shapely(
            &py,
            "uk-crime-bristol-liverpool.csv",
            &file,
            ("Longitude", "Latitude"),
            "LSOA11NM",
            filters,
        );
        assert_eq!(got, want, "{areas}{query}");
        assert!(
            got.0.values().any(|&n| n > 0),
            "{areas}{query}: nothing counted"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn minneapolis_stops_by_neighbourhood_equal_shapely() {
    let s = Server::start().await;
    s.import(&fixture_request("stops", "mpls-stops-sample.csv"));
    s.import(&fixture_request(
        "hoods",
        "minneapolis-neighbourhoods.geojson",
    ));
    let Some(py) = python() else { return };
    for (query, filters) in [
        ("", vec![]),
        ("&problem=traffic", vec![("problem", "traffic")]),
        (
            "&datetime=2017-01-01/2017-01-09T23:59:59Z",
            vec![("date", "2017-01-0")],
        ),
    ] {
        let body = s
            .json(&format!("/collections/stops/aggregate?by=hoods{query}"))
            .await;
        let got = by_name(&body);
        let want = shapely(
            &py,
            "mpls-stops-sample.csv",
            "minneapolis-neighbourhoods.geojson",
            ("long", "lat"),
            "name",
            &filters,
        );
        assert_eq!(got, want, "{query}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bbox_filter_counts_only_points_in_the_box() {
    let s = uk_server().await;
    let all = s.json("/collections/uk/aggregate?by=bristol-lsoa").await;
    let boxed = s
        .json("/collections/uk/aggregate?by=bristol-lsoa&bbox=-2.62,51.44,-2.56,51.48")
        .await;
    let items = s
        .json("/collections/uk/items?bbox=-2.62,51.44,-2.56,51.48&limit=1")
        .await;
    let (_, _, total) = by_name(&boxed);
    assert_eq!(total, items["numberMatched"].as_u64().unwrap());
    assert!(total > 0 && total < all["total"].as_u64().unwrap());
}

/// Two unit squares that share the edge x = 1, and points on it, inside and outside.
#[tokio::test(flavor = "multi_thread")]
async fn a_point_on_a_shared_edge_counts_once_for_the_area_stored_first() {
    let s = Server::start().await;
    let squares = r#"{"type":"FeatureCollection","features":[
 {"type":"Feature","properties":{"name":"west"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1],[0,0]]]}},
 {"type":"Feature","properties":{"name":"east"},"geometry":{"type":"Polygon","coordinates":[[[1,0],[2,0],[2,1],[1,1],[1,0]]]}}]}"#;
    let points = "lon,lat\n1,0.5\n1,0.25\n0.5,0.5\n1.5,0.5\n1.5,0.75\n3,3\n";
    let sq = s.data.write("squares.geojson", squares);
    let pts = s.data.write("points.csv", points);
    s.import(&request("squares", &[sq]));
    s.import(&request("points", &[pts]));
    let body = s.json("/collections/points/aggregate?by=squares").await;
    let (counts, outside, total) = by_name(&body);
    assert_eq!(counts["west"], 3, "{body}");
    assert_eq!(counts["east"], 2, "{body}");
    assert_eq!((outside, total), (1, 6));
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_without_positions_join_by_attribute_and_rates_use_the_population() {
    let s = Server::start().await;
    let areas = r#"{"type":"FeatureCollection","features":[
 {"type":"Feature","properties":{"name":"North","code":"7","residents":2000},"geometry":{"type":"Polygon","coordinates":[[[0,1],[1,1],[1,2],[0,2],[0,1]]]}},
 {"type":"Feature","properties":{"name":"South","code":"8","residents":500},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1],[0,0]]]}}]}"#;
    let rows =
        "case,area,kind\na,7,theft\nb,7,theft\nc,8,theft\nd,8,fraud\ne,99,theft\nf,7,fraud\n";
    let a = s.data.write("areas.geojson", areas);
    let r = s.data.write("rows.csv", rows);
    let mut areas_req = request("areas", &[a]);
    areas_req.meta.population = Some("residents".into());
    s.import(&areas_req);
    let mut rows_req = request("cases", &[r]);
    rows_req.meta.join = Some(AreaJoin {
        field: "area".into(),
        areas: "areas".into(),
        key: "code".into(),
    });
    s.import(&rows_req);
    let body = s.json("/collections/cases/aggregate?by=areas").await;
    let (counts, outside, total) = by_name(&body);
    assert_eq!(
        (counts["North"], counts["South"], outside, total),
        (3, 2, 1, 6)
    );
    let areas = body["areas"].as_array().unwrap();
    let north = areas.iter().find(|a| a["name"] == "North").unwrap();
    assert_eq!(north["rate"].as_f64(), Some(1.5), "3 per 2,000 residents");
    let thefts = s
        .json("/collections/cases/aggregate?by=areas&kind=theft")
        .await;
    assert_eq!(
        by_name(&thefts),
        (
            BTreeMap::from([("North".into(), 2), ("South".into(), 1)]),
            1,
            4
        )
    );
    // Without a join to these areas and without positions, there is nothing to count by.
    let r = s.get("/collections/cases/aggregate?by=other").await;
    assert_eq!(r.status(), 400);
}

/// Joined rows are counted from a copy kept per version (time filtered in memory, other
/// filters by the store): time, a property and both together, answers after a
/// re-import that changes the rows (the copy must not outlive its version), and after
/// an append (a new version too).
#[tokio::test(flavor = "multi_thread")]
async fn joined_counts_follow_time_filters_and_new_versions() {
    let s = Server::start().await;
    let areas = r#"{"type":"FeatureCollection","features":[
 {"type":"Feature","properties":{"name":"North","code":"7"},"geometry":{"type":"Polygon","coordinates":[[[0,1],[1,1],[1,2],[0,2],[0,1]]]}},
 {"type":"Feature","properties":{"name":"South","code":"8"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1],[0,0]]]}}]}"#;
    s.import(&request("areas", &[s.data.write("areas.geojson", areas)]));
    let join = |files: &[PathBuf], append: bool| {
        let mut r = request("cases", files);
        r.time = Some("when".into());
        r.append = append;
        r.meta.join = Some(AreaJoin {
            field: "area".into(),
            areas: "areas".into(),
            key: "code".into(),
        });
        r
    };
    let first = s.data.write(
        "first.csv",
        "case,area,kind,when\na,7,theft,2024-01-05\nb,7,theft,2024-02-05\nc,8,fraud,2024-01-20\n\
         d,8,theft,2024-01-31\ne,99,theft,2024-01-10\nf,7,fraud,\n",
    );
    s.import(&join(&[first], false));
    let counts = |q: &'static str| {
        let s = &s;
        async move {
            let body = s
                .json(&format!("/collections/cases/aggregate?by=areas{q}"))
                .await;
            let (c, outside, total) = by_name(&body);
            (c["North"], c["South"], outside, total)
        }
    };
    assert_eq!(counts("").await, (3, 2, 1, 6));
    // January: a, c, d and e (outside); f has no time and never matches a time filter.
    assert_eq!(counts("&datetime=2024-01").await, (1, 2, 1, 4));
    assert_eq!(counts("&kind=theft").await, (2, 1, 1, 4));
    assert_eq!(counts("&kind=theft&datetime=2024-01").await, (1, 1, 1, 3));
    assert_eq!(counts("&datetime=2023-01").await, (0, 0, 0, 0));

    let second = s.data.write(
        "second.csv",
        "case,area,kind,when\ng,8,theft,2024-01-02\nh,8,theft,2024-03-02\n",
    );
    s.import(&join(std::slice::from_ref(&second), false));
    assert_eq!(counts("").await, (0, 2, 0, 2));
    assert_eq!(counts("&datetime=2024-01").await, (0, 1, 0, 1));
    s.import(&join(&[second], true));
    assert_eq!(counts("&datetime=2024-01&kind=theft").await, (0, 2, 0, 2));
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_output_and_etags() {
    let s = uk_server().await;
    let r = s
        .get("/collections/uk/aggregate?by=bristol-lsoa&f=csv")
        .await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let text = r.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("id,name,count,area_km2,density"));
    let json = s.json("/collections/uk/aggregate?by=bristol-lsoa").await;
    let csv_sum: u64 = lines
        .map(|l| l.split(',').nth(2).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        csv_sum + json["outside"].as_u64().unwrap(),
        json["total"].as_u64().unwrap()
    );
    let again = s
        .get_with(
            "/collections/uk/aggregate?by=bristol-lsoa&f=csv",
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(again.status(), 304);
    let other = s
        .get_with(
            "/collections/uk/aggregate?by=bristol-lsoa&datetime=2018-11&f=csv",
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(other.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_aggregate_requests_are_400s_naming_the_parameter() {
    let s = uk_server().await;
    for (query, param) in [
        ("", "by"),
        ("?by=nope", "by"),
        ("?by=uk", "by"),
        ("?by=bristol-lsoa&f=xml", "f"),
        ("?by=bristol-lsoa&datetime=yesterday", "datetime"),
        ("?by=bristol-lsoa&colour=red", "colour"),
        ("?by=bristol-lsoa&by=liverpool-lsoa", "by"),
    ] {
        let r = s.get(&format!("/collections/uk/aggregate{query}")).await;
        assert_eq!(r.status(), 400, "{query}");
        let body: Json = r.json().await.unwrap();
        assert_eq!(body["parameter"], param, "{query}: {body}");
    }
    let r = s
        .get("/collections/missing/aggregate?by=bristol-lsoa")
        .await;
    assert_eq!(r.status(), 404);
    let api = s.json("/api").await;
    let op = &api["paths"]["/collections/uk/aggregate"]["get"];
    assert!(
        op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "by"),
        "{op}"
    );
}

/// The demo manifest's import request for `id`.
fn demo_request(id: &str) -> tessera::import::ImportRequest {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tessera.toml");
    tessera::config::load_manifest(&manifest)
        .expect("data/tessera.toml loads")
        .into_iter()
        .find(|r| r.id.as_str() == id)
        .unwrap_or_else(|| panic!("no dataset `{id}` in data/tessera.toml"))
}

/// The demo's Chicago crimes (no positions) joined by community area number: each
/// area's count is the number of rows naming it, read here straight from the file.
#[tokio::test(flavor = "multi_thread")]
async fn demo_chicago_crimes_count_by_community_area_join() {
    let s = Server::start().await;
    s.import(&demo_request("chicago-community-areas"));
    s.import(&demo_request("chicago-crimes-2022"));
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/chicago/crimes-2022.csv.gz");
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(file).unwrap());
    let mut rows = csv::Reader::from_reader(gz);
    let column = rows
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "Community Area")
        .unwrap();
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    let mut thefts: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0;
    for r in rows.records() {
        let r = r.unwrap();
        total += 1;
        *want.entry(r[column].to_owned()).or_default() += 1;
        if &r[1] == "THEFT" {
            *thefts.entry(r[column].to_owned()).or_default() += 1;
        }
    }
    let body = s
        .json("/collections/chicago-crimes-2022/aggregate?by=chicago-community-areas")
        .await;
    assert_eq!(body["total"].as_u64(), Some(total));
    let areas = body["areas"].as_array().unwrap();
    assert_eq!(areas.len(), 77);
    let mut joined = 0;
    for a in areas {
        let id = a["id"].as_str().unwrap();
        assert_eq!(
            a["count"].as_u64(),
            Some(want.get(id).copied().unwrap_or(0)),
            "{a}"
        );
        joined += a["count"].as_u64().unwrap();
    }
    assert_eq!(body["outside"].as_u64(), Some(total - joined));
    let theft = s
        .json("/collections/chicago-crimes-2022/aggregate?by=chicago-community-areas&Primary%20Type=THEFT")
        .await;
    for a in theft["areas"].as_array().unwrap() {
        let id = a["id"].as_str().unwrap();
        assert_eq!(
            a["count"].as_u64(),
            Some(thefts.get(id).copied().unwrap_or(0)),
            "{a}"
        );
    }
}

/// The choropleth tile of Bristol: every LSOA piece carries the count the JSON answer
/// gives that LSOA for the same filters (decoded with mvt-reader); far away: 204.
#[tokio::test(flavor = "multi_thread")]
async fn choropleth_tiles_carry_the_counts_of_each_area() {
    use mvt_reader::feature::Value;
    let s = uk_server().await;
    let query = "by=bristol-lsoa&datetime=2018-12";
    let body = s.json(&format!("/collections/uk/aggregate?{query}")).await;
    let want: BTreeMap<String, u64> = body["areas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_owned(),
                a["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let t = tessera::tiles::tile_of(-2.59, 51.45, 10).unwrap();
    let r = s
        .get(&format!(
            "/collections/uk/aggregate/10/{}/{}.mvt?{query}",
            t.x(),
            t.y()
        ))
        .await;
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap();
    let reader = mvt_reader::Reader::new(bytes.to_vec()).expect("mvt-reader reads the tile");
    let layers = reader.get_layer_metadata().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0].name, "bristol-lsoa");
    let features = reader.get_features(0).unwrap();
    let mut seen = BTreeMap::new();
    for f in &features {
        let props = f.properties.as_ref().expect("properties");
        let Some(Value::String(id)) = props.get("id") else {
            panic!("no id: {props:?}")
        };
        let count = match props.get("count") {
            Some(Value::UInt(n)) => *n,
            Some(Value::Int(n)) | Some(Value::SInt(n)) => *n as u64,
            other => panic!("count {other:?}"),
        };
        assert_eq!(Some(&count), want.get(id), "{id}");
        assert!(matches!(props.get("density"), Some(Value::Double(_))));
        seen.insert(id.clone(), count);
    }
    assert!(
        seen.len() > 100,
        "most of Bristol's 263 LSOAs are in this tile: {}",
        seen.len()
    );
    assert!(seen.values().any(|&n| n > 0));
    let far = tessera::tiles::tile_of(140.0, -30.0, 10).unwrap();
    let r = s
        .get(&format!(
            "/collections/uk/aggregate/10/{}/{}.mvt?{query}",
            far.x(),
            far.y()
        ))
        .await;
    assert_eq!(r.status(), 204);
    let r = s.get("/collections/uk/aggregate/10/1/1.mvt?by=nope").await;
    assert_eq!(r.status(), 400);
}
