//! What a hostile or just unusual client sends: each finding of issue 8 about the request
//! surface, over real HTTP, named after the finding. The property tests that look for
//! new ones are in `fuzz_requests.rs`.

use crate::support::*;
use serde_json::Value as Json;

/// uk (time: `Month`) and nyc (category: `Complaint Type`).
async fn server() -> Server {
    let s = Server::with_fixture("uk", "uk-crime-sample.csv").await;
    let mut req = fixture_request("nyc", "nyc-311-sample.csv");
    req.options.id_column = Some("Unique Key".into());
    req.meta.category = Some("Complaint Type".into());
    s.import(&req);
    s
}

/// At most `n` bytes of `s`, cut at a character boundary (for readable failure messages).
fn head(s: &str, n: usize) -> &str {
    let mut end = n.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// GETs `path` (already encoded) and checks a `status` problem document naming `param`.
async fn expect_problem(s: &Server, path: &str, status: u16, param: &str) -> Json {
    let r = s.get(path).await;
    let got = r.status().as_u16();
    let ct = content_type(&r);
    let body = r.text().await.unwrap();
    let short = head(path, 200);
    assert_eq!(got, status, "{short}: {}", head(&body, 500));
    assert_eq!(ct, "application/problem+json", "{short}");
    let doc: Json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{short}: {e}"));
    assert_eq!(doc["status"], status, "{short}: {body}");
    assert_eq!(doc["parameter"], param, "{short}: {body}");
    doc
}

async fn expect_ok(s: &Server, path: &str) {
    let r = s.get(path).await;
    let status = r.status();
    let body = r.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {body}");
}

fn enc(v: &str) -> String {
    serde_urlencoded::to_string([("", v)]).unwrap()[1..].to_owned()
}

/// Every route that takes `datetime`, in the forms that reach different code: the items
/// page, the histogram, TileJSON, the XYZ tile (its fast path too: the second round
/// runs after the first warmed the tile metadata) and the OGC tile.
#[tokio::test]
async fn datetime_that_is_not_a_time_is_400_on_every_route_regression() {
    let s = server().await;
    let values = [
        enc("Kraków"),
        enc("2024年"),
        "%00%ff%fe".to_owned(), // decoded lossily: NUL and two U+FFFD
        enc("Gdańsk/.."),
        enc("../2024年"),
        enc("2018-11-01/Kraków"),
        enc("2018-11/%00%ff%fe"),
        enc("ż/"),
    ];
    let routes = [
        "/collections/uk/items?datetime=",
        "/collections/uk/histogram?datetime=",
        "/tiles/uk?datetime=",
        "/tiles/uk/0/0/0.mvt?datetime=",
        "/tiles/uk,nyc/3/3/2.mvt?datetime=",
        "/collections/uk/tiles/WebMercatorQuad/0/0/0?datetime=",
    ];
    // The tile metadata fast path needs a tile served first.
    expect_ok(&s, "/tiles/uk/0/0/0.mvt").await;
    for round in 0..2 {
        for route in routes {
            for v in &values {
                let doc = expect_problem(&s, &format!("{route}{v}"), 400, "datetime").await;
                assert!(doc["detail"].is_string(), "round {round}: {doc}");
            }
        }
    }
    // The server still answers good requests afterwards.
    expect_ok(&s, "/collections/uk/items?datetime=2018-11").await;
}

/// `Complaint Type=a,b,…` with 1,000 values was a 500 ("Expression tree is too large").
#[tokio::test]
async fn category_filter_with_1000_values_is_400_not_500_regression() {
    let s = server().await;
    let many = |n: usize| {
        (0..n)
            .map(|i| format!("v{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let doc = expect_problem(
        &s,
        &items_path("nyc", &[("Complaint Type", &many(1000))]),
        400,
        "Complaint Type",
    )
    .await;
    assert!(doc["detail"].as_str().unwrap().contains("100"), "{doc}");
    expect_problem(
        &s,
        &items_path("nyc", &[("Complaint Type", &many(101))]),
        400,
        "Complaint Type",
    )
    .await;
    // The cap itself is allowed, and matching still works with it.
    let mut at_cap = many(99);
    at_cap.push_str(",Animal-Abuse");
    let fc = s.items("nyc", &[("Complaint Type", &at_cap)]).await;
    assert!(number_matched(&fc) > 0, "{fc}");
    // Tiles take the same filter and the same cap.
    expect_problem(
        &s,
        &format!("/tiles/nyc/0/0/0.mvt?Complaint%20Type={}", many(1000)),
        400,
        "Complaint Type",
    )
    .await;
}

/// `sortby` with 2,001 terms was a 500, and 1,999 terms cost 2.7 s of CPU.
#[tokio::test]
async fn sortby_with_2001_terms_is_400_not_500_regression() {
    let s = server().await;
    // One-letter terms keep 2,001 of them under the 8 KiB request-target cap: the term
    // cap answers before any field is looked up.
    for n in [2001, 1999] {
        let terms = vec!["a"; n].join(",");
        expect_problem(&s, &items_path("uk", &[("sortby", &terms)]), 400, "sortby").await;
    }
    let terms = |n: usize| vec!["Crime type"; n].join(",");
    expect_problem(
        &s,
        &items_path("uk", &[("sortby", &terms(9))]),
        400,
        "sortby",
    )
    .await;
    // With real names, 2,001 terms do not even fit in a request target.
    expect_problem(
        &s,
        &items_path("uk", &[("sortby", &terms(2001))]),
        414,
        "query",
    )
    .await;
    // A field may appear once, whichever direction.
    expect_problem(
        &s,
        &items_path("uk", &[("sortby", "Month,-Month")]),
        400,
        "sortby",
    )
    .await;
    let eight = "Crime ID,Month,Reported by,Falls within,-Longitude,Latitude,Location,+LSOA code";
    let fc = s.items("uk", &[("sortby", eight), ("limit", "3")]).await;
    assert_eq!(features(&fc).len(), 3);
}

/// Every list parameter has a cap with a 400 beyond it: bbox numbers, properties,
/// sortby (above), category values (above), the datasets of a tile URL.
#[tokio::test]
async fn every_list_parameter_has_a_cap_regression() {
    let s = server().await;
    let nums = vec!["1"; 1000].join(",");
    expect_problem(&s, &items_path("uk", &[("bbox", &nums)]), 400, "bbox").await;
    expect_problem(
        &s,
        &items_path("uk", &[("bbox", "0,0,0,1,1,1,1")]),
        400,
        "bbox",
    )
    .await;
    let props = vec!["Month"; 257].join(",");
    expect_problem(
        &s,
        &items_path("uk", &[("properties", &props)]),
        400,
        "properties",
    )
    .await;
    let fc = s
        .items("uk", &[("properties", &vec!["Month"; 256].join(","))])
        .await;
    assert!(!features(&fc).is_empty());
    let ids = vec!["uk"; 17].join(",");
    expect_problem(&s, &format!("/tiles/{ids}/0/0/0.mvt"), 400, "ids").await;
    expect_problem(&s, &format!("/tiles/{ids}"), 400, "ids").await;
    expect_ok(&s, &format!("/tiles/{}", vec!["uk"; 16].join(","))).await;
}

/// A request target over 8 KiB is a 414 problem; headers over 16 KiB a 431 problem. The
/// connection stays usable for the next request.
#[tokio::test]
async fn long_query_and_huge_headers_are_problems_not_work_regression() {
    let s = server().await;
    let long = format!("/collections/uk/items?Month={}", "x".repeat(9000));
    expect_problem(&s, &long, 414, "query").await;
    let long_path = format!("/collections/{}/items", "a".repeat(9000));
    expect_problem(&s, &long_path, 414, "path").await;
    let big = "a".repeat(20_000);
    let r = s
        .get_with("/collections/uk/items", &[("x-filler", &big)])
        .await;
    assert_eq!(r.status(), 431);
    assert_eq!(content_type(&r), "application/problem+json");
    let doc: Json = r.json().await.unwrap();
    assert_eq!(doc["parameter"], "headers", "{doc}");
    expect_ok(&s, "/collections/uk/items?limit=1").await;
}

/// `limit` is clamped to 10,000 and a page is linear in it: a full page of the widest
/// demo dataset (Chicago food inspections: 28 columns, long violation texts) with every
/// property stays within a few bytes of the source per row, so `limit` × properties
/// cannot make the server allocate without bound.
#[tokio::test]
async fn items_page_of_widest_demo_dataset_stays_bounded() {
    let s = Server::start().await;
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/chicago/food-inspections.csv.gz");
    let mut req = request("chicago", std::slice::from_ref(&file));
    req.options.id_column = Some("Inspection_ID".into());
    s.import(&req);
    let r = s.get("/collections/chicago/items?limit=1000000").await;
    assert_eq!(r.status(), 200);
    let body = r.bytes().await.unwrap();
    let fc: Json = serde_json::from_slice(&body).unwrap();
    assert_eq!(features(&fc).len(), 10_000, "limit clamped to 10000");
    // The source: ~7.9 MB of CSV for 27,600 rows; its longest record, all fields.
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(&file).unwrap());
    let longest_row = csv::Reader::from_reader(gz)
        .byte_records()
        .map(|r| r.unwrap().iter().map(<[u8]>::len).sum::<usize>())
        .max()
        .unwrap();
    eprintln!(
        "a 10000-row page of chicago food inspections: {} bytes (longest record {longest_row} bytes)",
        body.len()
    );
    // JSON repeats the keys per feature; 28 keys add well under 2 KB.
    assert!(
        body.len() < 10_000 * (2 * longest_row + 2048),
        "{} bytes",
        body.len()
    );
    assert!(body.len() < 64 << 20, "{} bytes", body.len());
}

/// An items query `within=` an area answered 304 with stale data after the area dataset
/// was re-imported: the weak ETag now includes the area dataset's version.
#[tokio::test]
async fn items_etag_includes_within_area_version_regression() {
    let s = server().await;
    let area = |coords: &str| {
        format!(
            r#"{{"type":"FeatureCollection","features":[{{"type":"Feature","id":"a","properties":{{"name":"all"}},
            "geometry":{{"type":"Polygon","coordinates":[{coords}]}}}}]}}"#
        )
    };
    let gb = area("[[-6,49],[2,49],[2,56],[-6,56],[-6,49]]");
    let far = area("[[10,10],[11,10],[11,11],[10,11],[10,10]]");
    s.import(&request("area", &[s.data.write("gb.geojson", gb)]));
    let fid = id_of(&features(&s.items("area", &[]).await)[0]);
    let within = format!("area/{fid}");
    let path = items_path("uk", &[("within", &within)]);
    let r = s.get(&path).await;
    let tag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert!(tag.starts_with("W/\""), "items tags are weak: {tag}");
    let before: Json = r.json().await.unwrap();
    assert!(number_matched(&before) > 0);
    assert_eq!(
        s.get_with(&path, &[("if-none-match", &tag)]).await.status(),
        304
    );

    s.import(&request("area", &[s.data.write("far.geojson", far)]));
    let r = s.get_with(&path, &[("if-none-match", &tag)]).await;
    assert_eq!(
        r.status(),
        200,
        "GET {path} after re-importing the area: a 304 would keep stale features"
    );
    assert_ne!(r.headers()["etag"].to_str().unwrap(), tag);
    let after: Json = r.json().await.unwrap();
    assert_eq!(number_matched(&after), 0, "{after}");
}

/// One conditional-request implementation for pages and tiles: weak comparison for
/// If-None-Match (RFC 9110 13.1.2), lists, `*`, and garbage treated as no match.
#[tokio::test]
async fn if_none_match_weak_comparison_lists_and_garbage_on_every_route() {
    let s = server().await;
    let fid = ids(&s.items("uk", &[("limit", "1")]).await).remove(0);
    let paths = [
        "/collections/uk/items?limit=2".to_owned(),
        format!("/collections/uk/items/{fid}"),
        "/tiles/uk/0/0/0.mvt".to_owned(),
        "/collections/uk/tiles/WebMercatorQuad/0/0/0".to_owned(),
    ];
    for path in &paths {
        let r = s.get(path).await;
        assert_eq!(r.status(), 200, "{path}");
        let tag = r.headers()["etag"].to_str().unwrap().to_owned();
        let opaque = tag.trim_start_matches("W/");
        // Tiles: strong tags (the bytes are fixed); pages: weak.
        assert_eq!(
            tag.starts_with("W/"),
            !path.contains("tiles"),
            "{path}: {tag}"
        );
        for matching in [
            tag.clone(),
            opaque.to_owned(),
            format!("W/{opaque}"),
            format!("\"nope\", {tag}"),
            "*".to_owned(),
        ] {
            let r = s.get_with(path, &[("if-none-match", &matching)]).await;
            assert_eq!(r.status(), 304, "{path} If-None-Match: {matching}");
            assert_eq!(r.headers()["etag"].to_str().unwrap(), tag, "{path}");
        }
        for garbage in [
            "\"nope\"",
            opaque.trim_matches('"'),
            "W/",
            "\"a b\"",
            "\"unterminated",
            ",,,,",
        ] {
            let r = s.get_with(path, &[("if-none-match", garbage)]).await;
            assert_eq!(r.status(), 200, "{path} If-None-Match: {garbage}");
        }
    }
}

/// Sends raw bytes on a fresh connection and returns the status line of the answer.
async fn raw_status(s: &Server, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", s.port))
        .await
        .unwrap();
    // The server may answer before it has read everything: a failed write is fine.
    let _ = conn.write_all(request).await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut chunk = [0u8; 4096];
        while !buf.windows(2).any(|w| w == b"\r\n") {
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within 10 s");
    let text = String::from_utf8_lossy(&buf);
    text.lines().next().unwrap_or("").to_owned()
}

/// Targets and headers no HTTP client library will build (over 64 KiB, raw bytes that
/// are not UTF-8): the server still answers with a status line below 500, never a
/// silent close.
#[tokio::test]
async fn oversized_and_non_utf8_raw_requests_get_an_answer_regression() {
    let s = server().await;
    let huge_target = format!(
        "GET /collections/uk/items?datetime={} HTTP/1.1\r\nHost: x\r\n\r\n",
        "K".repeat(100_000)
    );
    let huge_header = format!(
        "GET /collections/uk/items HTTP/1.1\r\nHost: x\r\nAccept: {}\r\n\r\n",
        "a".repeat(100_000)
    );
    let raw_target = b"GET /collections/uk/items?datetime=\xff\xfe\x00 HTTP/1.1\r\nHost: x\r\n\r\n";
    let raw_header =
        b"GET /tiles/uk/0/0/0.mvt HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"\xff\xfe\"\r\n\r\n";
    for (name, req) in [
        ("100 KB target", huge_target.as_bytes()),
        ("100 KB header", huge_header.as_bytes()),
        ("raw bytes in target", &raw_target[..]),
        ("raw bytes in If-None-Match", &raw_header[..]),
    ] {
        let line = raw_status(&s, req).await;
        let code: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no status line, got `{line}`"));
        assert!(code < 500, "{name}: {line}");
    }
    expect_ok(&s, "/collections/uk/items?limit=1").await;
}
