//! What browsers get: embedded static files, pages escaped by construction, security
//! headers, pages behind a path prefix, and the per-version memo of what pages compute.

use crate::support::*;
use axum::response::IntoResponse;
use serde_json::Value as Json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tessera::import::ImportRequest;
use tessera::model::TimeRange;
use tessera::model::{DatasetId, DatasetInfo, Value};
use tessera::store::{
    Bucket, Catalog, DatasetWriter, PositionRow, Query, Snapshot, StoreError, StoredFeature,
    WriteMode,
};

/// Sends `request_line` byte for byte (no client-side URL normalisation, which would
/// resolve `..` and `%2e%2e` before the server saw them); returns status and response.
async fn raw(s: &Server, method: &str, target: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let req = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let port = s.port;
    // A blocking socket on its own thread: the server keeps running on the runtime.
    let buf = tokio::task::spawn_blocking(move || {
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        tcp.write_all(req.as_bytes()).expect("write");
        let mut buf = Vec::new();
        tcp.read_to_end(&mut buf).expect("response in time");
        buf
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{method} {target}: no status line in {text:?}"));
    (status, text)
}

#[tokio::test]
async fn assets_and_fonts_names_of_256_bytes_or_more_answer_404_not_500_regression() {
    let s = Server::start().await;
    for len in [255, 256, 300, 4000] {
        let name = "a".repeat(len);
        for prefix in [
            "/assets/",
            "/fonts/",
            "/fonts/Noto Sans Regular/",
            "/assets/vendor/",
        ] {
            let path = format!("{prefix}{name}");
            let r = s.get(&path).await;
            assert_eq!(r.status(), 404, "{prefix}<{len} bytes>");
            assert_eq!(content_type(&r), "application/problem+json");
        }
    }
    for bare in ["/assets/", "/fonts/", "/assets", "/fonts"] {
        assert_eq!(s.get(bare).await.status(), 404, "{bare}");
    }
}

#[tokio::test]
async fn head_assets_with_nul_answers_404_not_500_regression() {
    let s = Server::start().await;
    for target in [
        "/assets/x%00",
        "/assets/map.js%00",
        "/fonts/x%00.pbf",
        "/assets/%ff%fe",
    ] {
        for method in ["HEAD", "GET"] {
            let (status, text) = raw(&s, method, target).await;
            assert_eq!(status, 404, "{method} {target}: {text}");
        }
    }
}

#[tokio::test]
async fn static_routes_refuse_path_traversal() {
    let s = Server::start().await;
    let escapes = [
        "../Cargo.toml",
        "../../Cargo.toml",
        "%2e%2e/Cargo.toml",
        "%2e%2e%2fCargo.toml",
        "..%2f..%2fCargo.toml",
        "..%5cCargo.toml",
        "..\\Cargo.toml",
        "%2fetc%2fpasswd",
        "/etc/passwd",
        "//etc/passwd",
        "fonts/..%2f..%2f..%2fCargo.toml",
        "Noto%20Sans%20Regular/..%2f..%2f..%2fCargo.toml",
        "./map.js/..%2f..%2fsrc/main.rs",
        "..%00/Cargo.toml",
        "C:%5cwindows",
    ];
    for route in ["/assets/", "/fonts/"] {
        for e in escapes {
            let target = format!("{route}{e}");
            let (status, text) = raw(&s, "GET", &target).await;
            assert!(matches!(status, 400 | 404), "GET {target}: {status}");
            assert!(
                !text.contains("[package]") && !text.contains("root:") && !text.contains("fn main"),
                "GET {target} leaked a file: {text}"
            );
        }
    }
}

#[tokio::test]
async fn static_files_have_types_weak_etags_304_and_head() {
    let s = Server::start().await;
    let cases = [
        ("/assets/map.js", "text/javascript"),
        (
            "/assets/vendor/maplibre-gl/maplibre-gl.mjs",
            "text/javascript",
        ),
        (
            "/assets/vendor/maplibre-gl/maplibre-gl-worker.mjs",
            "text/javascript",
        ),
        ("/assets/map.css", "text/css"),
        ("/assets/pages.css", "text/css"),
        ("/assets/favicon.svg", "image/svg+xml"),
        (
            "/fonts/Noto%20Sans%20Regular/0-255.pbf",
            "application/x-protobuf",
        ),
        (
            "/fonts/Noto%20Sans%20Bold/256-511.pbf",
            "application/x-protobuf",
        ),
    ];
    for (path, ty) in cases {
        let r = s.get(path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(content_type(&r), ty, "{path}");
        let h = r.headers().clone();
        let tag = h["etag"].to_str().unwrap().to_owned();
        // Weak: the compression layer sends gzip, br and identity bodies under one tag.
        let opaque = tag
            .strip_prefix("W/")
            .unwrap_or_else(|| panic!("{path}: weak ETag, got {tag}"))
            .to_owned();
        assert!(
            opaque.starts_with('"') && opaque.ends_with('"') && opaque.len() >= 18,
            "{path}: {tag}"
        );
        assert!(
            h["cache-control"].to_str().unwrap().contains("max-age"),
            "{path}"
        );
        let len = r.bytes().await.unwrap().len();
        assert!(len > 0, "{path}");

        let again = s.get(path).await;
        assert_eq!(
            again.headers()["etag"],
            tag.as_str(),
            "{path}: ETag is stable"
        );
        for inm in [
            tag.clone(),
            opaque.clone(),
            format!("\"x\", {tag}"),
            "*".into(),
        ] {
            let r = s.get_with(path, &[("if-none-match", &inm)]).await;
            assert_eq!(r.status(), 304, "{path} If-None-Match: {inm}");
            assert_eq!(r.headers()["etag"], tag.as_str());
        }
        let r = s.get_with(path, &[("if-none-match", "\"other\"")]).await;
        assert_eq!(r.status(), 200, "{path}");

        let head = s.client.head(s.url(path)).send().await.unwrap();
        assert_eq!(head.status(), 200, "HEAD {path}");
        assert_eq!(head.headers()["etag"], tag.as_str());
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "HEAD {path} has no body"
        );
    }
}

/// The real binary, started from an empty directory: nothing but the binary and its
/// catalog, so every page, style, asset and glyph must come from inside the binary.
#[tokio::test]
async fn binary_serves_every_page_and_asset_from_a_directory_without_the_source_tree() {
    let data = TestCatalog::new();
    let dir = &data.dir;
    let bin = dir.path().join("tessera");
    std::fs::copy(env!("CARGO_BIN_EXE_tessera"), &bin).unwrap();
    let db = data.db_arg();
    let out = std::process::Command::new(&bin)
        .current_dir(dir.path())
        .args([
            "import",
            "--dataset",
            "uk",
            "--category",
            "Crime type",
            "--db",
        ])
        .arg(&db)
        .arg(fixture("uk-crime-sample.csv"))
        .env("RUST_LOG", "tessera=warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut child = std::process::Command::new(&bin)
        .current_dir(dir.path())
        .args(["serve", "--no-manifest", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .env("RUST_LOG", "tessera=info")
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _stop = KillOnDrop(child);
    let base = tokio::task::spawn_blocking(move || serving_address(stderr))
        .await
        .unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let get = |path: String| {
        let client = client.clone();
        async move {
            let r = client.get(&path).send().await.unwrap();
            assert_eq!(r.status(), 200, "GET {path}");
            r.text().await.unwrap()
        }
    };
    let catalog = get(format!("{base}/?f=html")).await;
    let map = get(format!("{base}/maps/uk")).await;
    for page in [&catalog, &map] {
        for url in attribute_urls(page) {
            get(url).await;
        }
    }
    let style: Json = serde_json::from_str(&get(format!("{base}/styles/uk.json")).await).unwrap();
    let glyphs = style["glyphs"].as_str().unwrap();
    for font in ["Noto Sans Regular", "Noto Sans Bold"] {
        let url = glyphs
            .replace("{fontstack}", font)
            .replace("{range}", "0-255");
        get(url).await;
    }
    for path in [
        "/collections/uk?f=html",
        "/collections/uk/items?f=html",
        "/api.html",
    ] {
        get(format!("{base}{path}")).await;
    }
}

/// Stops the server this test started, also when an assertion fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The address the server logs once it listens (read on a thread of its own, so a
/// silent server cannot hang the test past the timeout).
fn serving_address(stderr: std::process::ChildStderr) -> String {
    use std::io::BufRead;
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
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .expect("the server listens within 60 s")
}

/// The `href` and `src` attribute values of a page (absolute URLs only; fragments skipped).
fn attribute_urls(page: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["href=\"", "src=\""] {
        for part in page.split(attr).skip(1) {
            let v = part.split('"').next().unwrap().replace("&amp;", "&");
            if v.starts_with("http") {
                out.push(v);
            }
        }
    }
    out
}

/// A page's text outside its JSON data blocks (where escaped hostile text may appear).
fn outside_data_blocks(page: &str) -> String {
    let mut out = String::new();
    let mut rest = page;
    while let Some(i) = rest.find("<script type=\"application/json\"") {
        out.push_str(&rest[..i]);
        let block = &rest[i..];
        let end = block.find("</script>").expect("data block closed");
        let body = &block[block.find('>').unwrap() + 1..end];
        for raw in ['<', '>', '&', '\u{2028}', '\u{2029}'] {
            assert!(
                !body.contains(raw),
                "raw {raw:?} inside a data block: {body}"
            );
        }
        serde_json::from_str::<Json>(body).expect("data block is JSON");
        rest = &block[end + "</script>".len()..];
    }
    out.push_str(rest);
    out
}

const XSS_TITLE: &str = "x {{CONFIG_JSON}}";
const XSS_ATTRIBUTION: &str = "x onmouseover=alert(1) y";

#[tokio::test]
async fn map_page_title_with_config_json_token_gets_no_raw_json_in_an_attribute_regression() {
    let s = Server::start().await;
    let mut req = fixture_request("uk", "uk-crime-sample.csv");
    req.meta.title = XSS_TITLE.into();
    req.meta.attribution = XSS_ATTRIBUTION.into();
    req.meta.category = Some("Crime type".into());
    s.import(&req);
    let page = s.get("/maps/uk").await.text().await.unwrap();
    let outside = outside_data_blocks(&page);
    assert!(
        !outside.contains("onmouseover"),
        "attribution outside JSON: {outside}"
    );
    assert!(
        !outside.contains("\"attribution\""),
        "config JSON pasted into markup"
    );
    assert!(
        outside.contains("aria-label=\"Map: x {{CONFIG_JSON}}\""),
        "{outside}"
    );
    assert!(
        outside.contains("<h1 id=\"page-title\">x {{CONFIG_JSON}}</h1>"),
        "{outside}"
    );
    assert_eq!(
        page.matches("\"attribution\":").count(),
        1,
        "one config, in its block"
    );
}

/// Text a hostile or careless publisher might put in a dataset.
const HOSTILE: [&str; 8] = [
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(2)>",
    "{{CONFIG_JSON}}{{TITLE}}",
    "</script><script>alert(3)</script>",
    "line\u{2028}sep\u{2029}end",
    "\u{202e}evil\u{202c} RTL",
    "emoji 🗺️ 👩‍👩‍👧",
    "'single' & \"double\" <!-- -->",
];

fn hostile_request(s: &Server) -> ImportRequest {
    let field = "<b onmouseover=alert(4)>kind</b>";
    let mut csv = format!(
        "id,latitude,longitude,\"{}\",\"{}\"\n",
        field.replace('"', "\"\""),
        HOSTILE[1].replace('"', "\"\"")
    );
    for (i, h) in HOSTILE.iter().enumerate() {
        let v = h.replace('"', "\"\"");
        csv.push_str(&format!("f{i},51.5{i},-0.1{i},\"{v}\",\"{v}\"\n"));
    }
    csv.push_str("<i>x</i>,51.6,-0.2,plain,plain\n");
    let path = s.data.write("hostile.csv", csv);
    let mut req = request("evil", &[path]);
    req.options.id_column = Some("id".into());
    req.meta.title = HOSTILE.join(" | ");
    req.meta.description = HOSTILE[1].into();
    req.meta.attribution = HOSTILE[3].into();
    req.meta.licence = HOSTILE[0].into();
    req.meta.source = "javascript:alert(5)".into();
    req.meta.category = Some(field.into());
    req
}

#[tokio::test]
async fn hostile_titles_fields_and_values_are_escaped_in_every_html_page() {
    let s = Server::start().await;
    s.import(&hostile_request(&s));
    let html = [("accept", "text/html")];
    let pages = [
        "/",
        "/maps/evil",
        "/maps/evil?embed=1",
        "/collections",
        "/collections/evil",
        "/collections/evil/items",
        "/collections/evil/items/f1",
        "/collections/evil/items/%3Ci%3Ex%3C%2Fi%3E",
        "/collections/evil/queryables",
        "/conformance",
        "/api.html",
    ];
    for path in pages {
        let r = s.get_with(path, &html).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(content_type(&r), "text/html", "{path}");
        let page = r.text().await.unwrap();
        // The one image element the pages make themselves: the picture of the view,
        // whose alt text (the hostile title) must still be escaped.
        let outside = outside_data_blocks(&page).replace("<img id=\"map-picture\"", "");
        for needle in [
            "<script>",
            "<img",
            "<b ",
            "<i>",
            "onerror=alert(2)>",
            "<!-- -->",
            "javascript:",
        ] {
            let allowed =
                needle == "javascript:" && outside.contains("<dd>javascript:alert(5)</dd>");
            if !allowed {
                assert!(
                    !outside.contains(needle),
                    "{path}: raw {needle:?} in {outside}"
                );
            }
        }
        // The only scripts are this origin's modules and the JSON data blocks.
        assert_eq!(
            outside.matches("<script").count(),
            outside.matches("<script type=\"module\" src=\"").count(),
            "{path}: an unexpected script element"
        );
    }
    // The escaped text is there, readable: escaping did not drop it.
    let about = s
        .get_with("/collections/evil", &html)
        .await
        .text()
        .await
        .unwrap();
    assert!(about.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(about.contains("\u{202e}evil\u{202c} RTL") && about.contains("👩‍👩‍👧"));
    assert!(
        !about.contains("href=\"javascript:"),
        "a javascript: source is not a link"
    );
    let items = s
        .get_with("/collections/evil/items", &html)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        items.contains("/items/%3Ci%3Ex%3C%2Fi%3E?f=html"),
        "ids are one path segment"
    );
}

#[tokio::test]
async fn every_response_carries_security_headers_and_pages_a_csp() {
    let s =
        Server::start_with(|st| st.frame_ancestors = "'self' https://portal.example.org".into())
            .await;
    s.import(&fixture_request("uk", "uk-crime-sample.csv"));
    let cases: [(&str, Option<&str>); 10] = [
        ("/?f=html", Some("text/html")),
        ("/maps/uk", Some("text/html")),
        ("/collections/uk/items?f=html", Some("text/html")),
        ("/collections/uk/preview.svg", Some("image/svg+xml")),
        ("/collections/uk/items", None),
        ("/tiles/uk", None),
        ("/tiles/uk/0/0/0.mvt", None),
        ("/assets/map.js", None),
        ("/no/such/thing", None),
        ("/collections/uk/items?limit=x", None),
    ];
    for (path, csp) in cases {
        let r = s.get(path).await;
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(
            h["referrer-policy"], "strict-origin-when-cross-origin",
            "{path}"
        );
        match csp {
            Some(_) => {
                let p = h["content-security-policy"].to_str().unwrap();
                assert!(p.contains("script-src 'self';"), "{path}: {p}");
                assert!(p.contains("default-src 'none'"), "{path}: {p}");
                assert!(p.contains("worker-src 'self' blob:"), "{path}: {p}");
                assert!(
                    p.ends_with("frame-ancestors 'self' https://portal.example.org"),
                    "{path}: {p}"
                );
                assert!(
                    !p.contains("unsafe-inline") && !p.contains("unsafe-eval"),
                    "{path}: {p}"
                );
            }
            None => assert!(h.get("content-security-policy").is_none(), "{path}"),
        }
    }
    // No inline script or style in any page: the CSP above would block it.
    for path in [
        "/?f=html",
        "/maps/uk",
        "/collections/uk?f=html",
        "/api.html",
    ] {
        let page = s
            .get_with(path, &[("accept", "text/html")])
            .await
            .text()
            .await
            .unwrap();
        let outside = outside_data_blocks(&page);
        assert!(
            !outside.contains("<style") && !outside.contains(" style=\""),
            "{path}"
        );
        assert!(!outside.contains("<script>"), "{path}");
    }
}

/// A reverse proxy on its own port that serves the app under `/opendata`.
async fn prefix_proxy(listener: tokio::net::TcpListener, upstream: String) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (client, upstream) = (client.clone(), upstream.clone());
        async move {
            let pq = req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            let Some(rest) = pq.strip_prefix("/opendata") else {
                return (axum::http::StatusCode::NOT_FOUND, "outside the prefix").into_response();
            };
            let r = client
                .get(format!("{upstream}{rest}"))
                .headers(req.headers().clone());
            let r = r.send().await.unwrap();
            let status = r.status();
            let ty = r.headers().get("content-type").cloned();
            let body = r.bytes().await.unwrap();
            let mut res = (status, body).into_response();
            if let Some(ty) = ty {
                res.headers_mut().insert("content-type", ty);
            }
            res
        }
    });
    axum::serve(listener, app).await.unwrap();
}

#[tokio::test]
async fn pages_styles_tiles_and_assets_work_under_a_public_url_prefix() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let prefix = format!(
        "http://127.0.0.1:{}/opendata",
        listener.local_addr().unwrap().port()
    );
    let p = prefix.clone();
    let s = Server::start_with(move |st| st.public_url = Some(format!("{p}/"))).await;
    let mut req = fixture_request("uk", "uk-crime-sample.csv");
    req.meta.category = Some("Crime type".into());
    s.import(&req);
    s.import(&fixture_request(
        "areas",
        "manhattan-neighbourhoods.geojson",
    ));
    let proxy = tokio::spawn(prefix_proxy(listener, s.base.clone()));
    let get = |url: String| {
        let client = s.client.clone();
        async move {
            let r = client
                .get(&url)
                .header("accept", "text/html")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "GET {url}");
            r.text().await.unwrap()
        }
    };
    let mut urls = Vec::new();
    for page in [
        "/",
        "/maps/uk",
        "/maps/uk?embed=1",
        "/collections",
        "/collections/uk",
        "/collections/uk/items",
        "/collections/uk/items?limit=2&offset=2",
        "/collections/uk/queryables",
        "/api.html",
        "/conformance",
    ] {
        let text = get(format!("{prefix}{page}")).await;
        for v in attribute_urls(&text) {
            assert!(
                v.starts_with(&format!("{prefix}/")),
                "{page}: {v} is outside the prefix"
            );
            urls.push(v);
        }
        // Relative links (top-level pages without a base) resolve under the prefix too.
        for part in text.split("href=\"").skip(1) {
            let v = part.split('"').next().unwrap();
            if !v.starts_with("http") && !v.starts_with('#') {
                assert!(
                    !v.starts_with('/'),
                    "{page}: root-relative link {v} escapes the prefix"
                );
                urls.push(format!("{prefix}/{}", v.trim_start_matches("./")));
            }
        }
    }
    // The map page's own configuration: style, TileJSON, tiles, glyphs.
    let map = get(format!("{prefix}/maps/uk")).await;
    let start = map.find("id=\"tessera-config\">").unwrap() + "id=\"tessera-config\">".len();
    let config: Json =
        serde_json::from_str(&map[start..start + map[start..].find("</script>").unwrap()]).unwrap();
    for key in ["style", "items", "histogram"] {
        let v = config[key].as_str().unwrap();
        assert!(v.starts_with(&format!("{prefix}/")), "{key}: {v}");
        urls.push(v.to_owned());
    }
    assert!(
        config["polygons"][0]["items"]
            .as_str()
            .unwrap()
            .starts_with(&prefix)
    );
    let style: Json =
        serde_json::from_str(&get(config["style"].as_str().unwrap().into()).await).unwrap();
    let tilejson_url = style["sources"]["data"]["url"].as_str().unwrap();
    assert!(tilejson_url.starts_with(&prefix), "{tilejson_url}");
    let tilejson: Json = serde_json::from_str(&get(tilejson_url.into()).await).unwrap();
    let tiles = tilejson["tiles"][0].as_str().unwrap();
    assert!(tiles.starts_with(&prefix), "{tiles}");
    let glyphs = style["glyphs"].as_str().unwrap();
    assert!(glyphs.starts_with(&prefix), "{glyphs}");
    urls.push(
        glyphs
            .replace("{fontstack}", "Noto Sans Regular")
            .replace("{range}", "0-255"),
    );
    urls.push(
        tiles
            .replace("{z}", "0")
            .replace("{x}", "0")
            .replace("{y}", "0"),
    );
    urls.sort();
    urls.dedup();
    for url in urls {
        let r = s.client.get(&url).send().await.unwrap();
        assert!(
            matches!(r.status().as_u16(), 200 | 204),
            "GET {url}: {}",
            r.status()
        );
    }
    proxy.abort();
}

/// The real catalog, counting the legend queries (`top_values`) that reach it.
struct CountingCatalog {
    inner: Arc<dyn Catalog>,
    top_values: Arc<AtomicUsize>,
}

struct CountingSnapshot<'a> {
    inner: Box<dyn Snapshot + 'a>,
    top_values: Arc<AtomicUsize>,
}

impl Catalog for CountingCatalog {
    fn snapshot(&self) -> Result<Box<dyn Snapshot + '_>, StoreError> {
        Ok(Box::new(CountingSnapshot {
            inner: self.inner.snapshot()?,
            top_values: self.top_values.clone(),
        }))
    }
    fn writer(
        &self,
        id: &DatasetId,
        mode: WriteMode,
    ) -> Result<Box<dyn DatasetWriter + '_>, StoreError> {
        self.inner.writer(id, mode)
    }
    fn delete(&self, id: &DatasetId) -> Result<bool, StoreError> {
        self.inner.delete(id)
    }
    fn data_stamp(&self) -> Result<i64, StoreError> {
        self.inner.data_stamp()
    }
}

impl Snapshot for CountingSnapshot<'_> {
    fn datasets(&self) -> Result<Vec<DatasetInfo>, StoreError> {
        self.inner.datasets()
    }
    fn dataset(&self, id: &DatasetId) -> Result<Option<DatasetInfo>, StoreError> {
        self.inner.dataset(id)
    }
    fn count(&self, ds: &DatasetInfo, q: &Query) -> Result<u64, StoreError> {
        self.inner.count(ds, q)
    }
    fn scan(
        &self,
        ds: &DatasetInfo,
        q: &Query,
        visit: &mut dyn FnMut(StoredFeature) -> bool,
    ) -> Result<(), StoreError> {
        self.inner.scan(ds, q, visit)
    }
    fn feature(&self, ds: &DatasetInfo, id: &str) -> Result<Option<StoredFeature>, StoreError> {
        self.inner.feature(ds, id)
    }
    fn histogram(
        &self,
        ds: &DatasetInfo,
        q: &Query,
        b: Bucket,
    ) -> Result<Vec<(TimeRange, u64)>, StoreError> {
        self.inner.histogram(ds, q, b)
    }
    fn positions(
        &self,
        ds: &DatasetInfo,
        field: Option<usize>,
        visit: &mut dyn FnMut(PositionRow),
    ) -> Result<(), StoreError> {
        self.inner.positions(ds, field, visit)
    }
    fn matching_keys(&self, ds: &DatasetInfo, q: &Query) -> Result<Vec<i64>, StoreError> {
        self.inner.matching_keys(ds, q)
    }
    fn top_values(
        &self,
        ds: &DatasetInfo,
        field: usize,
        n: usize,
    ) -> Result<Vec<(Value, u64)>, StoreError> {
        self.top_values.fetch_add(1, Ordering::SeqCst);
        self.inner.top_values(ds, field, n)
    }
}

fn legend_values(style: &Json) -> Vec<String> {
    let layers = style["layers"].as_array().unwrap();
    let expr = layers
        .iter()
        .find_map(|l| {
            l["paint"]["circle-color"]
                .as_array()
                .filter(|a| a[0] == "match")
        })
        .expect("a category colour expression");
    expr[2..expr.len() - 1]
        .iter()
        .step_by(2)
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn simultaneous_map_views_run_the_legend_query_once_per_dataset_version() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let s = Server::start_with(move |st| {
        st.catalog = Arc::new(CountingCatalog {
            inner: st.catalog.clone(),
            top_values: c,
        });
    })
    .await;
    let write = |values: &[&str]| {
        let mut csv = String::from("id,latitude,longitude,kind\n");
        for (i, v) in values.iter().enumerate() {
            csv.push_str(&format!("{i},51.{i},-0.{i},{v}\n"));
        }
        s.data.write("legend.csv", csv)
    };
    let import = |path| {
        let mut req = request("legend", &[path]);
        req.options.id_column = Some("id".into());
        req.meta.category = Some("kind".into());
        s.import(&req)
    };
    import(write(&["alpha", "alpha", "beta"]));

    let views = (0..16).map(|i| {
        let path = if i % 2 == 0 {
            "/maps/legend"
        } else {
            "/styles/legend.json"
        };
        let (client, url) = (s.client.clone(), s.url(path));
        async move { client.get(url).send().await.unwrap() }
    });
    let responses = futures_join_all(views).await;
    let mut tags = std::collections::HashSet::new();
    for r in responses {
        assert_eq!(r.status(), 200);
        tags.insert(r.headers()["etag"].to_str().unwrap().to_owned());
    }
    assert_eq!(tags.len(), 2, "one ETag for the page, one for the style");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "16 views, one GROUP BY");
    let style = s.json("/styles/legend.json").await;
    assert_eq!(legend_values(&style), ["alpha", "beta"]);
    let tag = s.get("/styles/legend.json").await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let r = s
        .get_with("/styles/legend.json", &[("if-none-match", &tag)])
        .await;
    assert_eq!(r.status(), 304);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // A re-import is a new version: the next view sees the new legend, computed once.
    import(write(&["gamma", "gamma", "gamma", "delta"]));
    let style = s.json("/styles/legend.json").await;
    assert_eq!(legend_values(&style), ["gamma", "delta"]);
    let page = s.get("/maps/legend").await.text().await.unwrap();
    assert!(page.contains("\"value\":\"gamma\",\"color\"") || page.contains("\"value\":\"gamma\""));
    assert!(!page.contains("\"alpha\""));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let r = s
        .get_with("/styles/legend.json", &[("if-none-match", &tag)])
        .await;
    assert_eq!(r.status(), 200, "the old ETag no longer matches");
}

/// Awaits every future concurrently (all requests in flight at once).
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futs: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
