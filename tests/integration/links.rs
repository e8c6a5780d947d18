//! Links between the views of one dataset: the HTML API pages show a picture of their view
//! and link the map with the same filters, dashboards preview as a picture of theirs,
//! the choropleth tiles are discoverable by TileJSON and OpenAPI, and `--basemap` may be
//! a style URL that the map pages compose over.

use crate::support::{Server, TestCatalog, fixture_request};
use serde_json::Value as Json;
use std::collections::BTreeSet;

const FEB: &str = "2025-02-01T00:00:00-05:00/2025-02-20T23:59:59-05:00";

async fn nyc() -> Server {
    let s = Server::start().await;
    let mut req = fixture_request("nyc", "nyc-311-sample.csv");
    req.timezone = tessera::model::time::parse_zone("America/New_York").unwrap();
    req.meta.category = Some("Complaint Type".into());
    req.options.id_column = Some("Unique Key".into());
    s.import(&req);
    s
}

/// The value of attribute `attr` of the element with id `id` (maud writes `id` first),
/// with the HTML escapes of `&` and quotes undone.
fn attr_of(page: &str, id: &str, attr: &str) -> Option<String> {
    let at = page.find(&format!("id=\"{id}\""))?;
    let tag = &page[at..at + page[at..].find('>')?];
    let start = tag.find(&format!(" {attr}=\""))? + attr.len() + 3;
    let value = &tag[start..start + tag[start..].find('"')?];
    Some(value.replace("&amp;", "&").replace("&quot;", "\""))
}

/// The decoded query pairs of a URL.
fn query_of(url: &str) -> Vec<(String, String)> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    serde_urlencoded::from_str(q).unwrap()
}

fn get<'a>(pairs: &'a [(String, String)], k: &str) -> Option<&'a str> {
    pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

/// GETs an absolute URL of the test server and decodes it as a PNG with `image`.
async fn picture(s: &Server, url: &str) -> image::RgbaImage {
    let path = url
        .strip_prefix(&s.base)
        .unwrap_or_else(|| panic!("{url} is not on {}", s.base));
    let r = s.get(path).await;
    assert_eq!(r.status(), 200, "{url}");
    assert_eq!(crate::support::content_type(&r), "image/png", "{url}");
    let bytes = r.bytes().await.unwrap();
    image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .expect("a PNG")
        .to_rgba8()
}

#[tokio::test(flavor = "multi_thread")]
async fn html_pages_show_a_picture_of_their_view_and_link_the_map_with_its_filters() {
    let s = nyc().await;
    let bbox = "-74.05,40.6,-73.85,40.85";
    let q = serde_urlencoded::to_string([
        ("f", "html"),
        ("datetime", FEB),
        ("Complaint Type", "Dead Animal"),
        ("bbox", bbox),
        ("limit", "20"),
    ])
    .unwrap();
    let page = s
        .get(&format!("/collections/nyc/items?{q}"))
        .await
        .text()
        .await
        .unwrap();
    let href =
        attr_of(&page, "open-on-map", "href").unwrap_or_else(|| panic!("no map link: {page}"));
    assert!(page.contains(">Open on the map<"));
    assert!(href.starts_with(&format!("{}/maps/nyc?", s.base)), "{href}");
    let link = query_of(&href);
    assert_eq!(get(&link, "datetime"), Some(FEB));
    assert_eq!(get(&link, "Complaint Type"), Some("Dead Animal"));
    assert_eq!(get(&link, "bbox"), Some(bbox));
    assert_eq!(get(&link, "limit"), None, "paging is not part of the view");
    assert_eq!(get(&link, "f"), None);

    let src = attr_of(&page, "map-picture", "src").expect("a picture");
    let pic = query_of(&src);
    assert_eq!(get(&pic, "datetime"), Some(FEB));
    assert_eq!(get(&pic, "Complaint Type"), Some("Dead Animal"));
    // The picture shows the page's items: its box holds every position on the page.
    let b: Vec<f64> = get(&pic, "bbox")
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    let items = s
        .json(&format!(
            "/collections/nyc/items?{}",
            q.replace("f=html", "f=json")
        ))
        .await;
    let features = crate::support::features(&items);
    assert!(!features.is_empty());
    for f in features {
        let c = &f["geometry"]["coordinates"];
        let (x, y) = (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
        assert!(
            b[0] <= x && x <= b[2] && b[1] <= y && y <= b[3],
            "{x},{y} outside {b:?}"
        );
    }
    let img = picture(&s, &src).await;
    assert_eq!((img.width(), img.height()), (600, 315));

    // The collection page: a picture of the whole dataset and the plain map link.
    let page = s.get("/collections/nyc?f=html").await.text().await.unwrap();
    let href = attr_of(&page, "open-on-map", "href").unwrap();
    assert_eq!(href, format!("{}/maps/nyc", s.base));
    let src = attr_of(&page, "map-picture", "src").unwrap();
    picture(&s, &src).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboards_preview_as_a_picture_of_their_view_and_link_the_same_map() {
    let s = nyc().await;
    let q = serde_urlencoded::to_string([
        ("datetime", FEB),
        ("Complaint Type", "Dead Animal"),
        ("bucket", "day"),
    ])
    .unwrap();
    let page = s
        .get(&format!("/dashboards/nyc?{q}"))
        .await
        .text()
        .await
        .unwrap();
    let meta = |p: &str| {
        let pattern = format!("=\"{p}\" content=\"");
        let at = page.find(&pattern).unwrap_or_else(|| panic!("no {p}"));
        let rest = &page[at + pattern.len()..];
        rest[..rest.find('"').unwrap()].replace("&amp;", "&")
    };
    let og = meta("og:image");
    assert_eq!(meta("twitter:image"), og);
    assert_eq!(meta("twitter:card"), "summary_large_image");
    let pairs = query_of(&og);
    assert_eq!(get(&pairs, "datetime"), Some(FEB));
    assert_eq!(get(&pairs, "Complaint Type"), Some("Dead Animal"));
    let img = picture(&s, &og).await;
    assert_eq!((img.width(), img.height()), (1200, 630));
    // The same filters, unfiltered, give another picture.
    let all = picture(&s, &format!("{}/maps/nyc.png", s.base)).await;
    assert_ne!(img.as_raw(), all.as_raw(), "the filters reach the picture");

    let map = attr_of(&page, "map-link", "href").unwrap();
    assert!(map.starts_with(&format!("{}/maps/nyc?", s.base)), "{map}");
    let pairs = query_of(&map);
    assert_eq!(get(&pairs, "datetime"), Some(FEB));
    assert_eq!(get(&pairs, "Complaint Type"), Some("Dead Animal"));
    assert_eq!(get(&pairs, "bucket"), None, "the map page takes no bucket");
    assert_eq!(
        s.get(map.strip_prefix(&s.base).unwrap()).await.status(),
        200
    );
}

/// A dashboard URL with `bucket=` (the time series' width) gave its top-areas card an
/// aggregate URL with `bucket`, which the counts refuse (400).
#[tokio::test(flavor = "multi_thread")]
async fn the_top_areas_card_of_a_dashboard_with_a_bucket_counts_regression() {
    let s = nyc().await;
    s.import(&fixture_request(
        "hoods",
        "manhattan-neighbourhoods.geojson",
    ));
    let page = s
        .get("/dashboards/nyc?bucket=day&datetime=2025-02")
        .await
        .text()
        .await
        .unwrap();
    let at = page.find("data-aggregate=\"").expect("a top-areas card") + 16;
    let url = page[at..at + page[at..].find('"').unwrap()].replace("&amp;", "&");
    let r = s.get(url.strip_prefix(&s.base).unwrap()).await;
    assert_eq!(r.status(), 200, "{url}");
}

async fn uk() -> Server {
    let s = Server::start().await;
    let mut req = fixture_request("uk", "uk-crime-bristol-liverpool.csv");
    req.time = Some("Month".into());
    req.meta.category = Some("Crime type".into());
    s.import(&req);
    s.import(&fixture_request("bristol-lsoa", "bristol-lsoa.geojson"));
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn choropleth_tilejson_lists_exactly_what_its_tiles_carry() {
    use mvt_reader::feature::Value;
    let s = uk().await;
    let counts = s
        .json("/collections/uk/aggregate?by=bristol-lsoa&datetime=2018-12")
        .await;
    let link = counts["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "tiles")
        .expect("a tiles link")["href"]
        .as_str()
        .unwrap()
        .to_owned();
    let tj = s.json_abs(&link).await;
    assert_eq!(tj["tilejson"], "3.0.0");
    let layers = tj["vector_layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["id"], "bristol-lsoa");
    let listed: BTreeSet<String> = layers[0]["fields"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();

    let url = tj["tiles"][0].as_str().unwrap();
    assert!(url.contains("datetime=2018-12"), "{url}");
    let t = tessera::tiles::tile_of(-2.59, 51.45, 10).unwrap();
    let url = url
        .replace("{z}", "10")
        .replace("{x}", &t.x().to_string())
        .replace("{y}", &t.y().to_string());
    let r = s.get(url.strip_prefix(&s.base).unwrap()).await;
    assert_eq!(r.status(), 200, "{url}");
    let reader = mvt_reader::Reader::new(r.bytes().await.unwrap().to_vec()).unwrap();
    let mut carried = BTreeSet::new();
    for f in reader.get_features(0).unwrap() {
        let props = f.properties.unwrap();
        assert!(matches!(props.get("count"), Some(Value::UInt(_))));
        carried.extend(props.into_keys());
    }
    assert_eq!(listed, carried);

    // Bad `by` is the client's: a problem naming it.
    for q in ["", "?by=nope", "?by=uk", "?by=bristol-lsoa&f=csv"] {
        let r = s
            .get(&format!("/collections/uk/aggregate/tiles.json{q}"))
            .await;
        assert_eq!(r.status(), 400, "{q}");
        let p: Json = r.json().await.unwrap();
        let want = if q.contains("f=") { "f" } else { "by" };
        assert_eq!(p["parameter"], want, "{q}: {p}");
    }
    // Both are in the OpenAPI document, with `by` required.
    let api = s.json("/api").await;
    for path in [
        "/collections/uk/aggregate/tiles.json",
        "/collections/uk/aggregate/{z}/{x}/{y}.mvt",
    ] {
        let params = api["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}"));
        let by = params.iter().find(|p| p["name"] == "by").unwrap();
        assert_eq!(by["required"], true, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_basemap_style_url_is_what_the_map_pages_compose_over() {
    let url = "https://tiles.example.org/styles/streets.json";
    let s = Server::start_with(|st| {
        st.basemap_style = tessera::config::BasemapStyle::from_flag(url).unwrap();
    })
    .await;
    s.import(&fixture_request("mpls", "mpls-stops-sample.csv"));
    for path in ["/maps/mpls", "/maps/mpls?embed=1"] {
        let r = s.get(path).await;
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("connect-src 'self' https://tiles.example.org;"),
            "{csp}"
        );
        let page = r.text().await.unwrap();
        let at = page.find("id=\"tessera-config\">").unwrap() + 20;
        let config: Json =
            serde_json::from_str(&page[at..at + page[at..].find("</script>").unwrap()]).unwrap();
        assert_eq!(config["basemap"], url, "{path}");
    }
    let style = s.json("/styles/mpls.json").await;
    assert!(
        style["sources"].get("basemap").is_none(),
        "the style URL takes the archive's place"
    );
    // Without the flag there is none.
    let plain = Server::with_fixture("mpls", "mpls-stops-sample.csv").await;
    let page = plain.get("/maps/mpls").await.text().await.unwrap();
    assert!(page.contains("\"basemap\":null"));
}

fn tessera(args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .env("RUST_LOG", "tessera=info")
        .env_remove("TESSERA_MANIFEST")
        .env_remove("TESSERA_BASEMAP")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn tessera")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_takes_a_style_url_or_file_for_basemap_and_refuses_bad_ones_by_name() {
    use std::io::{BufRead, Read};
    let data = TestCatalog::new();
    let dir = &data.dir;
    let db = data.db_arg();
    let db = db.as_str();
    let bad_json = dir.path().join("bad.json");
    std::fs::write(&bad_json, r#"{"version": 8}"#).unwrap();
    for bad in [
        "https://exa mple.org/s.json",
        "https://h/s.json;script-src *",
        bad_json.to_str().unwrap(),
    ] {
        let mut child = tessera(&[
            "serve",
            "--no-manifest",
            "--db",
            db,
            "--listen",
            "127.0.0.1:0",
            "--basemap",
            bad,
        ]);
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(!child.wait().unwrap().success(), "{bad}");
        assert!(err.contains(&format!("--basemap `{bad}`")), "{bad}: {err}");
    }
    let style = dir.path().join("style.json");
    std::fs::write(
        &style,
        r#"{"version": 8, "sources": {}, "layers": [{"id": "bg", "type": "background"}]}"#,
    )
    .unwrap();
    let url = "https://tiles.example.org/style.json";
    for (flag, want) in [
        (url, url.to_owned()),
        (style.to_str().unwrap(), String::new()),
    ] {
        let mut child = tessera(&[
            "serve",
            "--no-manifest",
            "--db",
            db,
            "--listen",
            "127.0.0.1:0",
            "--basemap",
            flag,
        ]);
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(i) = line.find("serving on ") {
                    let _ = tx.send(line[i + "serving on ".len()..].trim().to_owned());
                }
            }
        });
        let base = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("listens");
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        // No dataset in the catalog: the served style file shows the flag was taken.
        let got = client
            .get(format!("{base}/styles/basemap.json"))
            .send()
            .await
            .unwrap();
        if want.is_empty() {
            assert_eq!(got.status(), 200, "{flag}");
            let s: Json = got.json().await.unwrap();
            assert_eq!(s["layers"][0]["id"], "bg");
        } else {
            assert_eq!(got.status(), 404, "{flag}: a URL style is not served here");
            let csp = client
                .get(format!("{base}/"))
                .header("accept", "text/html")
                .send()
                .await
                .unwrap();
            let csp = csp.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(csp.contains("https://tiles.example.org"), "{csp}");
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
