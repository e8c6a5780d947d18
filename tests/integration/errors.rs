//! Every client error is a 4xx problem document naming what is wrong; none is a 500.

use crate::support::*;
use serde_json::Value as Json;

async fn server() -> Server {
    let s = Server::with_fixture("uk", "uk-crime-sample.csv").await;
    let mut req = fixture_request("nyc", "nyc-311-sample.csv");
    req.options.id_column = Some("Unique Key".into());
    s.import(&req);
    s
}

/// GETs `path` and checks a 400 problem document whose `parameter` is `param`.
async fn expect_400(s: &Server, path: &str, param: &str) {
    let r = s.get(path).await;
    let status = r.status();
    let ct = content_type(&r);
    let body = r.text().await.unwrap();
    assert_eq!(status, 400, "{path}: {body}");
    assert_eq!(ct, "application/problem+json", "{path}");
    let doc: Json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    assert_eq!(doc["status"], 400, "{path}: {body}");
    assert_eq!(doc["parameter"], param, "{path}: {body}");
    assert!(
        doc["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{path}: {body}"
    );
    assert!(doc["title"].is_string(), "{path}: {body}");
}

async fn expect_404(s: &Server, path: &str) {
    let r = s.get(path).await;
    let status = r.status();
    let ct = content_type(&r);
    let body = r.text().await.unwrap();
    assert_eq!(status, 404, "{path}: {body}");
    assert_eq!(ct, "application/problem+json", "{path}");
    let doc: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["status"], 404, "{path}");
}

#[tokio::test]
async fn unknown_parameters() {
    let s = server().await;
    expect_400(&s, "/collections/uk/items?foo=1", "foo").await;
    expect_400(&s, "/collections/uk/items?limit=5&Foo=bar", "Foo").await;
    // Property names are case-sensitive.
    expect_400(&s, "/collections/uk/items?month=2018-11", "month").await;
    expect_400(&s, "/?foo=1", "foo").await;
    expect_400(&s, "/conformance?limit=1", "limit").await;
    expect_400(&s, "/collections?bbox=0,0,1,1", "bbox").await;
    expect_400(&s, "/collections/uk?x=1", "x").await;
    expect_400(&s, "/collections/uk/queryables?x=1", "x").await;
    expect_400(&s, "/api?x=1", "x").await;
    expect_400(&s, "/collections/uk/items/1?limit=1", "limit").await;
}

#[tokio::test]
async fn bad_limit_and_offset() {
    let s = server().await;
    for v in ["0", "-1", "abc", "", "1.5", "1e3"] {
        expect_400(&s, &format!("/collections/uk/items?limit={v}"), "limit").await;
    }
    for v in ["-1", "abc", "", "1.5", "99999999999999999999999"] {
        expect_400(&s, &format!("/collections/uk/items?offset={v}"), "offset").await;
    }
}

#[tokio::test]
async fn bad_bbox() {
    let s = server().await;
    for v in [
        "1,2,3",
        "1,2,3,4,5",
        "a,b,c,d",
        "0,-91,1,0",
        "0,0,1,91",
        "0,50,1,40",
        "-181,0,0,1",
        "0,0,181,1",
        "NaN,0,1,1",
        "inf,0,1,1",
        "",
        "1,,2,3",
    ] {
        expect_400(&s, &items_path("uk", &[("bbox", v)]), "bbox").await;
    }
    expect_400(&s, "/collections/uk/items?bbox-crs=EPSG:4326", "bbox-crs").await;
}

#[tokio::test]
async fn bad_datetime() {
    let s = server().await;
    for v in [
        "yesterday",
        "",
        "2018-13-01",
        "2018-11-31",
        "11/05/2018",
        "2018-12-31/2018-11-01",
        "2018-11-05T10:00:00Z/2018-11-05T09:59:59Z",
        "2018-11/2018-10",
        "a/b",
        "2018-11-01/2018-11-02/2018-11-03",
    ] {
        expect_400(&s, &items_path("uk", &[("datetime", v)]), "datetime").await;
    }
}

#[tokio::test]
async fn bad_sortby_properties_and_typed_filters() {
    let s = server().await;
    expect_400(&s, "/collections/uk/items?sortby=nope", "sortby").await;
    expect_400(&s, "/collections/uk/items?sortby=-nope", "sortby").await;
    expect_400(&s, "/collections/uk/items?sortby=Month,nope", "sortby").await;
    expect_400(&s, "/collections/uk/items?properties=nope", "properties").await;
    expect_400(
        &s,
        "/collections/uk/items?properties=Month,nope",
        "properties",
    )
    .await;
    expect_400(
        &s,
        &items_path("nyc", &[("Unique Key", "abc")]),
        "Unique Key",
    )
    .await;
    expect_400(
        &s,
        &items_path("nyc", &[("Unique Key", "1.5")]),
        "Unique Key",
    )
    .await;
    expect_400(&s, &items_path("uk", &[("Longitude", "west")]), "Longitude").await;
    expect_400(&s, &items_path("uk", &[("Month", "November")]), "Month").await;
}

#[tokio::test]
async fn repeated_parameters() {
    let s = server().await;
    expect_400(&s, "/collections/uk/items?limit=1&limit=2", "limit").await;
    expect_400(
        &s,
        "/collections/uk/items?bbox=0,0,1,1&bbox=0,0,1,1",
        "bbox",
    )
    .await;
    expect_400(&s, "/collections/uk/items?f=json&f=json", "f").await;
    expect_400(&s, "/collections?f=json&f=html", "f").await;
}

#[tokio::test]
async fn unknown_formats() {
    let s = server().await;
    for p in [
        "/?f=xml",
        "/conformance?f=xml",
        "/collections?f=csv",
        "/collections/uk?f=xml",
        "/collections/uk/items?f=xml",
        "/collections/uk/items?f=",
        "/collections/uk/items/64345465?f=csv",
        "/api?f=yaml",
    ] {
        expect_400(&s, p, "f").await;
    }
}

#[tokio::test]
async fn not_found() {
    let s = server().await;
    for p in [
        "/collections/nope",
        "/collections/nope/items",
        "/collections/nope/items/1",
        "/collections/nope/queryables",
        "/collections/UK",
        "/collections/uk/items/999999",
        "/collections/nyc/items/1",
        "/nope",
        "/collections/uk/nope",
        "/collections/uk/items/1/more",
    ] {
        expect_404(&s, p).await;
    }
}

/// Parameter values at the edges of the integer types must not crash the server.
#[tokio::test]
async fn huge_offsets_are_not_server_errors() {
    let s = server().await;
    let mut wrong = Vec::new();
    for v in [
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551615",
    ] {
        for extra in ["", "&f=csv", "&f=html"] {
            let path = format!("/collections/uk/items?offset={v}{extra}");
            let r = match s.client.get(s.url(&path)).send().await {
                Ok(r) => r,
                Err(e) => {
                    wrong.push(format!("{path}: no response ({e})"));
                    continue;
                }
            };
            let status = r.status();
            let body = match r.text().await {
                Ok(b) => b,
                Err(e) => {
                    wrong.push(format!("{path}: {status}, body cut off ({e})"));
                    continue;
                }
            };
            if status != 200 && status != 400 {
                wrong.push(format!("{path}: {status} {body}"));
            } else if status == 200 && extra.is_empty() {
                let fc: Json = serde_json::from_str(&body).unwrap();
                if !features(&fc).is_empty() {
                    wrong.push(format!(
                        "{path}: {} features for an offset past the end",
                        features(&fc).len()
                    ));
                }
            } else if status == 200 && extra == "&f=csv" && body.lines().count() > 1 {
                wrong.push(format!(
                    "{path}: {} CSV rows for an offset past the end",
                    body.lines().count() - 1
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// A sweep of malformed requests: none may be a 5xx.
#[tokio::test]
async fn no_request_is_a_server_error() {
    let s = server().await;
    let paths = [
        "/collections/uk/items?%ZZ=1",
        "/collections/uk/items?=1",
        "/collections/uk/items?limit",
        "/collections/uk/items?bbox=1e400,0,1,1",
        "/collections/uk/items?datetime=9999-12-31T23:59:59Z/..",
        "/collections/uk/items?datetime=0000-01-01/..",
        "/collections/uk/items?datetime=../..",
        "/collections/uk/items?sortby=",
        "/collections/uk/items?properties=",
        "/collections/uk/items?sortby=%2B",
        "/collections/uk/items?Month=2018-11-01T00:00:00Z",
        "/collections/uk/items?Context=",
        "/collections/uk/items/%FF",
        "/collections/%FF/items",
        "/collections/uk/items?limit=10000&offset=199",
    ];
    for p in paths {
        let r = s.get(p).await;
        let status = r.status();
        let body = r.text().await.unwrap();
        assert!(status.as_u16() < 500, "{p}: {status} {body}");
    }
}
