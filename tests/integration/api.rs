//! Every endpoint of the OGC API - Features server, through HTTP.

use crate::support::*;
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

async fn uk() -> Server {
    Server::with_fixture("uk", "uk-crime-sample.csv").await
}

/// A UK fixture row: position (if any), `Location`, `Crime type`.
type UkRow = (Option<(f64, f64)>, String, String);

/// The UK fixture rows for brute-force checks.
fn uk_points() -> Vec<UkRow> {
    let (h, rows) = read_csv(&fixture("uk-crime-sample.csv"));
    let (lon, lat, loc, ty) = (
        col(&h, "Longitude"),
        col(&h, "Latitude"),
        col(&h, "Location"),
        col(&h, "Crime type"),
    );
    rows.iter()
        .map(|r| {
            let p =
                (!r[lon].is_empty()).then(|| (r[lon].parse().unwrap(), r[lat].parse().unwrap()));
            (p, r[loc].to_owned(), r[ty].to_owned())
        })
        .collect()
}

/// A comparable key for a served UK feature.
fn uk_key(f: &Json) -> (String, String, String, String) {
    let p = &f["properties"];
    (
        p["Longitude"].to_string(),
        p["Latitude"].to_string(),
        p["Location"].as_str().unwrap_or("").to_owned(),
        p["Crime type"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn landing_page_links() {
    let s = uk().await;
    let r = s.get("/").await;
    assert_eq!(r.status(), 200);
    assert_eq!(content_type(&r), "application/json");
    let doc: Json = r.json().await.unwrap();
    for rel in ["self", "service-desc", "service-doc", "conformance", "data"] {
        let href = link(&doc, rel).unwrap_or_else(|| panic!("no `{rel}` link in {doc}"));
        assert!(href.starts_with(&s.base), "{rel}: {href}");
        let r = s.client.get(href).send().await.unwrap();
        assert_eq!(r.status(), 200, "{rel} link {href} does not resolve");
    }
    assert_eq!(link(&doc, "service-desc"), Some(s.url("/api").as_str()));
    assert_eq!(link(&doc, "service-doc"), Some(s.url("/api.html").as_str()));
    assert_eq!(
        link(&doc, "conformance"),
        Some(s.url("/conformance").as_str())
    );
    assert_eq!(link(&doc, "data"), Some(s.url("/collections").as_str()));
}

#[tokio::test]
async fn conformance_classes() {
    let s = Server::start().await;
    let doc = s.json("/conformance").await;
    let got: BTreeSet<&str> = doc["conformsTo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let want: BTreeSet<&str> = [
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    ]
    .into();
    assert_eq!(got, want);
}

#[tokio::test]
async fn openapi_document() {
    let s = uk().await;
    let r = s.get("/api").await;
    assert_eq!(r.status(), 200);
    let ct = r
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(ct.starts_with("application/vnd.oai.openapi+json"), "{ct}");
    let doc: Json = r.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.0"),
        "{}",
        doc["openapi"]
    );
    let items = &doc["paths"]["/collections/uk/items"]["get"];
    let params: BTreeMap<&str, &Json> = items["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p))
        .collect();
    for std in [
        "limit",
        "offset",
        "bbox",
        "datetime",
        "sortby",
        "properties",
        "f",
    ] {
        assert!(params.contains_key(std), "no `{std}` parameter");
    }
    let info = s.data.info("uk").unwrap();
    for f in &info.fields {
        let p = params
            .get(f.name.as_str())
            .unwrap_or_else(|| panic!("no parameter for property `{}`", f.name));
        assert_eq!(p["in"], "query");
    }
    // A month stays a month (YYYY-MM), not an instant.
    assert_eq!(params["Month"]["schema"]["pattern"], "^[0-9]{4}-[0-9]{2}$");
    assert_eq!(params["Longitude"]["schema"]["type"], "number");
    assert_eq!(params["Crime type"]["schema"]["type"], "string");
    assert!(doc["paths"]["/collections/uk/items/{featureId}"].is_object());
    assert!(doc["paths"]["/collections/uk"].is_object());
    assert!(doc["paths"]["/conformance"].is_object());

    let page = s.get("/api.html").await;
    assert_eq!(page.status(), 200);
    assert_eq!(content_type(&page), "text/html");
    let html = page.text().await.unwrap();
    assert!(html.contains("/collections/uk/items"));
    assert!(html.contains("Crime type"));
}

#[tokio::test]
async fn collections_and_collection() {
    let s = uk().await;
    let mut req = fixture_request("mpls", "mpls-stops-sample.csv");
    req.meta.title = "Minneapolis stops".into();
    s.import(&req);
    let doc = s.json("/collections").await;
    let list = doc["collections"].as_array().unwrap();
    let ids: Vec<&str> = list.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["mpls", "uk"]);
    assert!(link(&doc, "self").is_some());

    let c = s.json("/collections/mpls").await;
    assert_eq!(c["id"], "mpls");
    assert_eq!(c["title"], "Minneapolis stops");
    assert_eq!(c["itemType"], "feature");
    assert_eq!(c["featureCount"], 100);
    let bbox = c["extent"]["spatial"]["bbox"][0].as_array().unwrap();
    assert_eq!(bbox.len(), 4);
    let (h, rows) = read_csv(&fixture("mpls-stops-sample.csv"));
    let (lat, lon) = (col(&h, "lat"), col(&h, "long"));
    let xs: Vec<f64> = rows.iter().map(|r| r[lon].parse().unwrap()).collect();
    let ys: Vec<f64> = rows.iter().map(|r| r[lat].parse().unwrap()).collect();
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(bbox[0].as_f64(), Some(min(&xs)));
    assert_eq!(bbox[1].as_f64(), Some(min(&ys)));
    assert_eq!(bbox[2].as_f64(), Some(max(&xs)));
    assert_eq!(bbox[3].as_f64(), Some(max(&ys)));
    assert_eq!(
        c["extent"]["temporal"]["interval"],
        serde_json::json!([["2017-01-01T06:00:42Z", "2017-12-27T04:27:22Z"]])
    );
    let items = c["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "items" && l["type"] == "application/geo+json")
        .expect("items link");
    let fc = s.json_abs(items["href"].as_str().unwrap()).await;
    assert_eq!(number_matched(&fc), 100);
    assert!(link(&c, "self").is_some());
    let q = c["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "http://www.opengis.net/def/rel/ogc/1.0/queryables")
        .expect("queryables link");
    s.json_abs(q["href"].as_str().unwrap()).await;
}

#[tokio::test]
async fn queryables_list_typed_properties() {
    let s = Server::with_fixture("sq", "squirrels-sample.csv").await;
    let r = s.get("/collections/sq/queryables").await;
    assert_eq!(r.status(), 200);
    assert_eq!(content_type(&r), "application/schema+json");
    let q: Json = r.json().await.unwrap();
    let props = q["properties"].as_object().unwrap();
    assert_eq!(props["Running"]["type"], "boolean");
    assert_eq!(props["Hectare Squirrel Number"]["type"], "integer");
    assert_eq!(props["X"]["type"], "number");
    assert_eq!(props["Date"]["format"], "date");
    assert_eq!(props["Unique Squirrel ID"]["type"], "string");
    assert_eq!(props["geometry"]["format"], "geometry-point");
    // One entry per field plus the geometry.
    assert_eq!(props.len(), 31 + 1);
}

#[tokio::test]
async fn items_limit_default_and_clamp() {
    let s = uk().await;
    let fc = s.items("uk", &[]).await;
    assert_eq!(fc["type"], "FeatureCollection");
    assert_eq!(number_matched(&fc), 200);
    assert_eq!(fc["numberReturned"], 10);
    assert_eq!(features(&fc).len(), 10);
    let fc = s.items("uk", &[("limit", "10000")]).await;
    assert_eq!(features(&fc).len(), 200);
    let fc = s.items("uk", &[("limit", "1000000")]).await;
    assert_eq!(features(&fc).len(), 200, "a huge limit is clamped");
    let fc = s.items("uk", &[("limit", "3")]).await;
    assert_eq!(fc["numberReturned"], 3);
    // Past the end: an empty page, not an error.
    let fc = s.items("uk", &[("offset", "500")]).await;
    assert_eq!(features(&fc).len(), 0);
    assert_eq!(number_matched(&fc), 200);
    assert!(link(&fc, "next").is_none());
}

#[tokio::test]
async fn items_limit_above_maximum_is_clamped_to_10000() {
    let s = Server::start().await;
    let mut csv = String::from("uid,lon,lat\n");
    for i in 0..10_050 {
        csv.push_str(&format!(
            "u{i},{},{}\n",
            -10.0 + (i % 100) as f64 * 0.1,
            40.0 + (i / 100) as f64 * 0.1
        ));
    }
    let file = s.data.write("many.csv", csv);
    let mut req = request("many", &[file]);
    req.options.id_column = Some("uid".into());
    s.import(&req);
    let fc = s.items("many", &[("limit", "20000")]).await;
    assert_eq!(number_matched(&fc), 10_050);
    assert_eq!(features(&fc).len(), 10_000);
    let next = link(&fc, "next").expect("next link after a clamped page");
    let rest = s.json_abs(next).await;
    assert_eq!(
        features(&rest).len(),
        50,
        "the next page starts where the clamped one ended: {next}"
    );
}

#[tokio::test]
async fn paging_follows_next_links_to_the_end() {
    let s = uk().await;
    for query in [
        vec![("limit", "7")],
        vec![("limit", "7"), ("bbox", "-3,51,0,53")],
        vec![("limit", "9"), ("Crime type", "Anti-social behaviour")],
    ] {
        let mut page = s.items("uk", &query).await;
        let matched = number_matched(&page);
        let mut seen: Vec<String> = Vec::new();
        let mut pages = 1;
        loop {
            assert_eq!(number_matched(&page), matched);
            seen.extend(ids(&page));
            let Some(next) = link(&page, "next") else {
                break;
            };
            page = s.json_abs(next).await;
            pages += 1;
            assert!(pages < 100, "runaway paging");
        }
        let unique: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "an id came twice: {query:?}");
        assert_eq!(seen.len() as u64, matched, "{query:?}");
        assert!(pages > 1, "{query:?} should need several pages");
        // The same set as one big page.
        let mut big = query[1..].to_vec();
        big.push(("limit", "10000"));
        let all = s.items("uk", &big).await;
        let all_ids: BTreeSet<String> = ids(&all).into_iter().collect();
        assert_eq!(all_ids, seen.into_iter().collect::<BTreeSet<_>>());
    }
}

#[tokio::test]
async fn prev_links() {
    let s = uk().await;
    let first = s.items("uk", &[("limit", "7")]).await;
    assert!(link(&first, "prev").is_none());
    let second = s.json_abs(link(&first, "next").unwrap()).await;
    let prev = link(&second, "prev").expect("prev on the second page");
    let back = s.json_abs(prev).await;
    assert_eq!(ids(&back), ids(&first));
    let third = s.items("uk", &[("limit", "7"), ("offset", "10")]).await;
    let back = s.json_abs(link(&third, "prev").unwrap()).await;
    let want = s.items("uk", &[("limit", "7"), ("offset", "3")]).await;
    assert_eq!(ids(&back), ids(&want));
}

#[tokio::test]
async fn bbox_filter_equals_brute_force() {
    let s = uk().await;
    let points = uk_points();
    for bbox in [
        (-2.7, 51.4, -2.5, 51.5),
        (-3.0, 51.0, 0.0, 53.0),
        (-6.0, 50.0, 2.0, 56.0),
        (-180.0, -90.0, 180.0, 90.0),
        (10.0, 10.0, 11.0, 11.0),
    ] {
        let q = format!("{},{},{},{}", bbox.0, bbox.1, bbox.2, bbox.3);
        let fc = s.items("uk", &[("bbox", &q), ("limit", "10000")]).await;
        let mut got: Vec<_> = features(&fc).iter().map(uk_key).collect();
        got.sort();
        let mut want: Vec<_> = points
            .iter()
            .filter_map(|(p, loc, ty)| {
                let (x, y) = (*p)?;
                (bbox.0 <= x && x <= bbox.2 && bbox.1 <= y && y <= bbox.3).then(|| {
                    (
                        serde_json::json!(x).to_string(),
                        serde_json::json!(y).to_string(),
                        loc.clone(),
                        ty.clone(),
                    )
                })
            })
            .collect();
        want.sort();
        assert_eq!(got, want, "bbox {q}");
        assert_eq!(number_matched(&fc), want.len() as u64);
    }
    // A point exactly on the box edge is inside: -2.625649,51.480484 is a row of the fixture.
    let fc = s
        .items("uk", &[("bbox", "-2.625649,51.480484,-2.625649,51.480484")])
        .await;
    assert_eq!(number_matched(&fc), 1);
    // With heights (6 numbers).
    let fc = s
        .items("uk", &[("bbox", "-2.7,51.4,0,-2.5,51.5,100")])
        .await;
    assert_eq!(number_matched(&fc), 4);
}

#[tokio::test]
async fn bbox_across_the_antimeridian() {
    let s = Server::start().await;
    let file = s.data.write(
        "dateline.geojson",
        r#"{"type":"FeatureCollection","features":[
{"type":"Feature","id":"east","properties":{"n":1},"geometry":{"type":"Point","coordinates":[179.5,10]}},
{"type":"Feature","id":"west","properties":{"n":2},"geometry":{"type":"Point","coordinates":[-179.5,10]}},
{"type":"Feature","id":"zero","properties":{"n":3},"geometry":{"type":"Point","coordinates":[0,10]}}
]}"#,
    );
    s.import(&request("dl", &[file]));
    let cases: [(&str, &[&str]); 5] = [
        ("179,0,-179,20", &["east", "west"]),
        ("179.6,0,-179.6,20", &[]),
        ("170,0,-179.6,20", &["east"]),
        ("179.6,0,5,20", &["west", "zero"]),
        ("-180,0,180,20", &["east", "west", "zero"]),
    ];
    for (bbox, want) in cases {
        let fc = s.items("dl", &[("bbox", bbox)]).await;
        let got: BTreeSet<String> = ids(&fc).into_iter().collect();
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(got, want, "bbox {bbox}");
        assert_eq!(number_matched(&fc), want.len() as u64, "bbox {bbox}");
    }
}

#[tokio::test]
async fn datetime_instants_intervals_and_open_ends() {
    let s = Server::with_fixture("mpls", "mpls-stops-sample.csv").await;
    let (h, rows) = read_csv(&fixture("mpls-stops-sample.csv"));
    let d = col(&h, "date");
    let dates: Vec<&str> = rows.iter().map(|r| &r[d]).collect();
    // RFC 3339 in UTC with Z: string order is time order.
    let count = |f: &dyn Fn(&str) -> bool| dates.iter().filter(|x| f(x)).count() as u64;
    let cases: Vec<(&str, u64)> = vec![
        ("2017-01-01T06:00:42Z", 1),
        ("2017-01-01T06:00:41Z", 0),
        ("2017-01", count(&|x| x.starts_with("2017-01"))),
        ("2017-01-01", count(&|x| x.starts_with("2017-01-01"))),
        (
            "2017-01-01T00:00:00Z/2017-01-31T23:59:59Z",
            count(&|x| x.starts_with("2017-01")),
        ),
        (
            "2017-03-01/2017-05-31",
            count(&|x| ("2017-03".."2017-06").contains(&x)),
        ),
        ("../2017-06-30T23:59:59Z", count(&|x| x < "2017-07")),
        ("/2017-06-30T23:59:59Z", count(&|x| x < "2017-07")),
        ("2017-07-01T00:00:00Z/..", count(&|x| x >= "2017-07")),
        ("2017-07-01T00:00:00Z/", count(&|x| x >= "2017-07")),
        ("2017-07-01/..", count(&|x| x >= "2017-07")),
        ("../..", 100),
        ("2016-01-01/2016-12-31", 0),
        // Ends included.
        ("2017-12-27T04:27:22Z/2018-01-01T00:00:00Z", 1),
        // An offset is honoured: 00:00:42-06:00 is 06:00:42Z.
        ("2017-01-01T00:00:42-06:00", 1),
    ];
    for (q, want) in cases {
        let fc = s
            .items("mpls", &[("datetime", q), ("limit", "10000")])
            .await;
        assert_eq!(number_matched(&fc), want, "datetime={q}");
        assert_eq!(features(&fc).len() as u64, want, "datetime={q}");
    }
}

/// Rows without a time never match a datetime filter, whatever its form (OGC API - Features
/// Part 1, /req/core/fc-time-response; also this server's own parameter description).
#[tokio::test]
async fn datetime_filters_exclude_rows_without_time() {
    let s = Server::start().await;
    let file = s.data.write(
        "some-undated.csv",
        "code,date,lon,lat\na,2020-01-02,1,2\nb,,3,4\nc,2020-03-04,5,6\n",
    );
    let mut req = request("t", &[file]);
    req.options.id_column = Some("code".into());
    s.import(&req);
    for q in [
        "2020-01-01/..",
        "../2030-01-01",
        "2020-01-01/",
        "/2030-01-01",
        "2000-01-01/2030-01-01",
        // Open at both ends: every row with a time, still none without.
        "../..",
        "/",
    ] {
        let fc = s.items("t", &[("datetime", q)]).await;
        let got: BTreeSet<String> = ids(&fc).into_iter().collect();
        assert_eq!(
            got,
            BTreeSet::from(["a".into(), "c".into()]),
            "datetime={q}"
        );
    }
}

#[tokio::test]
async fn typed_property_filters() {
    let s = Server::start().await;
    let mut req = fixture_request("nyc", "nyc-311-sample.csv");
    req.timezone = tessera::model::time::parse_zone("America/New_York").unwrap();
    s.import(&req);
    s.import(&fixture_request("sq", "squirrels-sample.csv"));
    s.import(&fixture_request("uk", "uk-crime-sample.csv"));

    // Integer.
    let fc = s.items("nyc", &[("Unique Key", "64345465")]).await;
    assert_eq!(number_matched(&fc), 1);
    assert_eq!(features(&fc)[0]["properties"]["Unique Key"], 64345465);
    let fc = s.items("nyc", &[("Unique Key", "1")]).await;
    assert_eq!(number_matched(&fc), 0);
    // Date-time, as served (UTC).
    let fc = s
        .items("nyc", &[("Created Date", "2025-03-14T05:20:00Z")])
        .await;
    assert_eq!(number_matched(&fc), 1);
    // String (ZIP codes stay strings).
    let (h, rows) = read_csv(&fixture("nyc-311-sample.csv"));
    let zip = col(&h, "Incident Zip");
    let want = rows.iter().filter(|r| &r[zip] == "11207").count() as u64;
    let fc = s.items("nyc", &[("Incident Zip", "11207")]).await;
    assert_eq!(number_matched(&fc), want);
    // Boolean, either case.
    let (h, rows) = read_csv(&fixture("squirrels-sample.csv"));
    let run = col(&h, "Running");
    let want = rows.iter().filter(|r| &r[run] == "true").count() as u64;
    assert_eq!(want, 23);
    for v in ["true", "TRUE"] {
        let fc = s.items("sq", &[("Running", v), ("limit", "1000")]).await;
        assert_eq!(number_matched(&fc), want, "Running={v}");
        assert!(
            features(&fc)
                .iter()
                .all(|f| f["properties"]["Running"] == true)
        );
    }
    let fc = s.items("sq", &[("Running", "false")]).await;
    assert_eq!(number_matched(&fc), 100 - want);
    // String with spaces, combined with a bbox.
    let fc = s
        .items(
            "uk",
            &[("Crime type", "Drugs"), ("bbox", "-180,-90,180,90")],
        )
        .await;
    let want = uk_points()
        .iter()
        .filter(|(p, _, ty)| p.is_some() && ty == "Drugs")
        .count() as u64;
    assert_eq!(number_matched(&fc), want);
}

#[tokio::test]
async fn sortby_ascending_and_descending() {
    let s = Server::with_fixture("mpls", "mpls-stops-sample.csv").await;
    let (h, rows) = read_csv(&fixture("mpls-stops-sample.csv"));
    let d = col(&h, "date");
    let mut dates: Vec<String> = rows.iter().map(|r| r[d].to_owned()).collect();
    dates.sort();
    let served = |fc: &Json| -> Vec<String> {
        features(fc)
            .iter()
            .map(|f| f["properties"]["date"].as_str().unwrap().to_owned())
            .collect()
    };
    for q in ["date", "+date"] {
        let fc = s.items("mpls", &[("sortby", q), ("limit", "1000")]).await;
        assert_eq!(served(&fc), dates, "sortby={q}");
    }
    let fc = s
        .items("mpls", &[("sortby", "-date"), ("limit", "1000")])
        .await;
    let mut desc = dates.clone();
    desc.reverse();
    assert_eq!(served(&fc), desc);
    // Integers sort as numbers, not text.
    let fc = s
        .items("mpls", &[("sortby", "-rownames"), ("limit", "1000")])
        .await;
    let nums: Vec<i64> = features(&fc)
        .iter()
        .map(|f| f["properties"]["rownames"].as_i64().unwrap())
        .collect();
    let mut sorted = nums.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(nums, sorted);
    // Sorting applies before paging.
    let page = s
        .items(
            "mpls",
            &[("sortby", "date"), ("limit", "5"), ("offset", "5")],
        )
        .await;
    assert_eq!(served(&page), dates[5..10].to_vec());
}

#[tokio::test]
async fn properties_subset() {
    let s = Server::with_fixture("mpls", "mpls-stops-sample.csv").await;
    let fc = s
        .items("mpls", &[("properties", "problem,date"), ("limit", "100")])
        .await;
    assert_eq!(features(&fc).len(), 100);
    for f in features(&fc) {
        let keys: BTreeSet<&str> = f["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, BTreeSet::from(["problem", "date"]));
        assert_eq!(f["geometry"]["type"], "Point");
    }
    // The CSV export honours it too.
    let text = s
        .get(&items_path(
            "mpls",
            &[("properties", "problem"), ("f", "csv")],
        ))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        text.lines().next().unwrap(),
        "id,longitude,latitude,problem"
    );
}

#[tokio::test]
async fn html_for_every_resource() {
    let s = uk().await;
    let fid = ids(&s.items("uk", &[("limit", "1")]).await).remove(0);
    let paths = [
        "/".to_owned(),
        "/conformance".to_owned(),
        "/collections".to_owned(),
        "/collections/uk".to_owned(),
        "/collections/uk/items".to_owned(),
        format!("/collections/uk/items/{fid}"),
    ];
    for p in &paths {
        let sep = if p.contains('?') { '&' } else { '?' };
        for (how, r) in [
            ("f=html", s.get(&format!("{p}{sep}f=html")).await),
            (
                "Accept",
                s.get_with(p, &[("accept", "text/html,application/xhtml+xml")])
                    .await,
            ),
        ] {
            assert_eq!(r.status(), 200, "{p} {how}");
            assert_eq!(content_type(&r), "text/html", "{p} {how}");
            let body = r.text().await.unwrap();
            assert!(body.starts_with("<!doctype html>"), "{p} {how}: {body}");
            assert!(body.contains("</html>"), "{p} {how}");
        }
        // f=json wins over Accept: text/html.
        let r = s
            .get_with(&format!("{p}{sep}f=json"), &[("accept", "text/html")])
            .await;
        assert_eq!(r.status(), 200);
        assert_ne!(content_type(&r), "text/html", "{p}");
    }
    let page = s
        .get("/collections/uk/items?f=html&limit=5")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("of 200 matching"), "{page}");
    assert!(page.contains("rel=\"next\""));
}

/// Accept negotiation follows RFC 9110: q-values count, and responses that depend on Accept
/// say so in `Vary` so that caches keep HTML and JSON apart.
#[tokio::test]
async fn negotiation_honours_q_values_and_varies_on_accept() {
    let s = uk().await;
    let mut wrong = Vec::new();
    for p in ["/", "/collections", "/collections/uk/items"] {
        for (accept, want) in [
            ("application/json, text/html;q=0.5", "json"),
            ("application/geo+json;q=1.0, text/html;q=0.1", "json"),
            ("text/html;q=0", "json"),
            ("*/*", "json"),
            ("text/html, application/json;q=0.9", "html"),
        ] {
            let r = s.get_with(p, &[("accept", accept)]).await;
            let ct = content_type(&r);
            let got = if ct == "text/html" { "html" } else { "json" };
            if got != want {
                wrong.push(format!("{p} Accept: {accept} gave {ct}, want {want}"));
            }
        }
        let r = s.get(p).await;
        let vary = r
            .headers()
            .get_all("vary")
            .iter()
            .map(|v| v.to_str().unwrap().to_ascii_lowercase())
            .collect::<Vec<_>>()
            .join(",");
        if !vary.split(',').any(|v| v.trim() == "accept") {
            wrong.push(format!("{p}: Vary is `{vary}`, without Accept"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// `f=html` is accepted by /queryables and /api, so it should give HTML (or a 406), not JSON.
#[tokio::test]
async fn html_for_queryables_and_api() {
    let s = uk().await;
    let mut wrong = Vec::new();
    for p in ["/collections/uk/queryables?f=html", "/api?f=html"] {
        let r = s.get(p).await;
        let status = r.status();
        let ct = content_type(&r);
        if !((status == 200 && ct == "text/html") || status == 406) {
            wrong.push(format!("{p}: {status} {ct}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn csv_export_returns_every_match() {
    let s = uk().await;
    let r = s.get("/collections/uk/items?f=csv").await;
    assert_eq!(r.status(), 200);
    assert_eq!(content_type(&r), "text/csv");
    assert!(r.headers().get("etag").is_some());
    let body = r.text().await.unwrap();
    let mut rd = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = rd.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(&header[..3], &["id", "longitude", "latitude"]);
    assert!(header.contains(&"Crime type".to_owned()));
    let info = s.data.info("uk").unwrap();
    assert_eq!(header.len(), 3 + info.fields.len());
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 200, "no default limit for CSV");
    let no_pos = rows.iter().filter(|r| r[1].is_empty()).count();
    assert_eq!(no_pos, 24);
    let ids: BTreeSet<&str> = rows.iter().map(|r| r.get(0).unwrap()).collect();
    assert_eq!(ids.len(), 200);

    // Filters apply; an explicit limit too.
    let body = s
        .get(&items_path("uk", &[("f", "csv"), ("bbox", "-3,51,0,53")]))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(body.lines().count(), 1 + 60);
    let body = s
        .get("/collections/uk/items?f=csv&limit=7")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(body.lines().count(), 1 + 7);

    // Non-point datasets get a GeoJSON geometry column.
    s.import(&fixture_request("fd", "polygons-with-holes.geojson"));
    let body = s
        .get("/collections/fd/items?f=csv")
        .await
        .text()
        .await
        .unwrap();
    let mut rd = csv::Reader::from_reader(body.as_bytes());
    assert_eq!(&rd.headers().unwrap()[1], "geometry");
    let row = rd.records().next().unwrap().unwrap();
    let g: Json = serde_json::from_str(&row[1]).unwrap();
    assert_eq!(g["type"], "MultiPolygon");
}

#[tokio::test]
async fn single_feature() {
    let s = uk().await;
    let fc = s.items("uk", &[("limit", "3")]).await;
    for f in features(&fc) {
        let id = id_of(f);
        let one = s.json(&format!("/collections/uk/items/{id}")).await;
        assert_eq!(one["type"], "Feature");
        assert_eq!(id_of(&one), id);
        assert_eq!(one["properties"], f["properties"]);
        assert_eq!(one["geometry"], f["geometry"]);
        assert!(
            link(&one, "self")
                .unwrap()
                .ends_with(&format!("/collections/uk/items/{id}"))
        );
        assert!(link(&one, "collection").is_some());
    }
    for bad in ["999999", "abc", "-1", "0"] {
        let r = s.get(&format!("/collections/uk/items/{bad}")).await;
        assert_eq!(r.status(), 404, "feature {bad}");
        assert_eq!(content_type(&r), "application/problem+json");
    }
    // Source ids with characters that need escaping.
    let file = s.data.write(
        "odd-ids.csv",
        "code,lon,lat\na b/c,1,2\nx%y,3,4\nplain,5,6\n",
    );
    let mut req = request("odd", &[file]);
    req.options.id_column = Some("code".into());
    s.import(&req);
    let f = s.json("/collections/odd/items/a%20b%2Fc").await;
    assert_eq!(f["id"], "a b/c");
    let f = s.json("/collections/odd/items/x%25y").await;
    assert_eq!(f["id"], "x%y");
    let self_link = link(&f, "self").unwrap().to_owned();
    let again = s.json_abs(&self_link).await;
    assert_eq!(again["id"], "x%y");
}

#[tokio::test]
async fn head_requests() {
    let s = uk().await;
    for p in [
        "/",
        "/conformance",
        "/collections",
        "/collections/uk",
        "/collections/uk/items",
        "/collections/uk/queryables",
        "/api",
    ] {
        let r = s.client.head(s.url(p)).send().await.unwrap();
        assert_eq!(r.status(), 200, "HEAD {p}");
        assert!(r.headers().get("content-type").is_some(), "HEAD {p}");
        assert!(r.bytes().await.unwrap().is_empty(), "HEAD {p} has a body");
    }
    let r = s
        .client
        .head(s.url("/collections/uk/items"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("etag").is_some());
    let r = s
        .client
        .head(s.url("/collections/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn cors_headers() {
    let s = uk().await;
    let r = s
        .get_with(
            "/collections/uk/items",
            &[("origin", "https://example.org")],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap()),
        Some("*")
    );
    let exposed = r
        .headers()
        .get("access-control-expose-headers")
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .unwrap_or_default();
    assert!(exposed.contains("etag"), "{exposed}");
    // A preflight.
    let r = s
        .client
        .request(reqwest::Method::OPTIONS, s.url("/collections/uk/items"))
        .header("origin", "https://example.org")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert!(r.headers().get("access-control-allow-methods").is_some());
}

fn strip_timestamp(mut v: Json) -> Json {
    v.as_object_mut().unwrap().remove("timeStamp");
    v
}

#[tokio::test]
async fn gzip_and_brotli_compression() {
    let s = uk().await;
    let path = "/collections/uk/items?limit=10000";
    let plain = s.get_with(path, &[("accept-encoding", "identity")]).await;
    assert!(plain.headers().get("content-encoding").is_none());
    let plain_bytes = plain.bytes().await.unwrap();
    assert!(plain_bytes.len() > 50_000, "a large response");
    let reference = strip_timestamp(serde_json::from_slice(&plain_bytes).unwrap());

    let r = s.get_with(path, &[("accept-encoding", "gzip")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    // Vary may come as several header lines: together they form one list.
    assert!(r.headers().get_all("vary").iter().any(|v| {
        v.to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("accept-encoding")
    }));
    let gz = r.bytes().await.unwrap();
    assert!(gz.len() < plain_bytes.len() / 3, "compressed well");
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(
        strip_timestamp(serde_json::from_slice(&out).unwrap()),
        reference
    );

    let r = s.get_with(path, &[("accept-encoding", "br")]).await;
    assert_eq!(r.headers()["content-encoding"], "br");
    let br = r.bytes().await.unwrap();
    let mut out = Vec::new();
    brotli_decompressor::Decompressor::new(&br[..], 4096)
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(
        strip_timestamp(serde_json::from_slice(&out).unwrap()),
        reference
    );

    // The CSV stream is compressed too.
    let r = s
        .get_with(
            "/collections/uk/items?f=csv",
            &[("accept-encoding", "gzip")],
        )
        .await;
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let gz = r.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text.lines().count(), 201);
}

#[tokio::test]
async fn etags_and_conditional_requests() {
    let s = uk().await;
    let path = "/collections/uk/items?limit=5";
    let r = s.get(path).await;
    let tag = r.headers()["etag"].to_str().unwrap().to_owned();
    // A weak entity tag: the compression layer may serve the page in several codings.
    assert!(tag.starts_with("W/\"") && tag.ends_with('"'), "{tag}");
    // Same request, same tag; another query, another tag.
    assert_eq!(s.get(path).await.headers()["etag"], tag.as_str());
    let other = s.get("/collections/uk/items?limit=6").await;
    assert_ne!(other.headers()["etag"], tag.as_str());

    let r = s.get_with(path, &[("if-none-match", &tag)]).await;
    assert_eq!(r.status(), 304);
    assert!(r.bytes().await.unwrap().is_empty());
    // The same opaque tag without `W/` (`W/W/"…"` is not an entity tag at all).
    let strong = tag.trim_start_matches("W/");
    let r = s.get_with(path, &[("if-none-match", strong)]).await;
    assert_eq!(r.status(), 304, "weak comparison for If-None-Match");
    let r = s.get_with(path, &[("if-none-match", "\"other\"")]).await;
    assert_eq!(r.status(), 200);

    // Single features too.
    let fid = ids(&s.items("uk", &[("limit", "1")]).await).remove(0);
    let fpath = format!("/collections/uk/items/{fid}");
    let ftag = s.get(&fpath).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        s.get_with(&fpath, &[("if-none-match", &ftag)])
            .await
            .status(),
        304
    );

    // A re-import changes the tag, and the old one no longer matches.
    s.import(&fixture_request("uk", "uk-crime-sample.csv"));
    let r = s.get_with(path, &[("if-none-match", &tag)]).await;
    assert_eq!(r.status(), 200);
    let new_tag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(new_tag, tag);
}
