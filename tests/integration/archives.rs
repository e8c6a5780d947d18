//! Tile archives served by the real binary (`tessera serve --tiles DIR`): PMTiles and
//! MBTiles made by tippecanoe from the UK crime sample, raster archives made by the
//! `pmtiles` writer and sqlite3, all read back by those Python tools (nobody here wrote
//! them) and compared byte for byte with what the server sends. Bad archives in the same
//! folder are reported at start and skipped while the rest, datasets included, serves.

use super::support::{TestCatalog, fixture_request};
use serde_json::Value as Json;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const MVT: &str = "application/vnd.mapbox-vector-tile";

/// The test venv's interpreter (`make pyenv`), or `None` with a notice; in CI its
/// absence is a failure, not a skip.
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
    eprintln!(
        "notice: archive tests skipped: no Python test venv at {} (run `make pyenv`)",
        p.display()
    );
    None
}

/// Builds the archives into `dir` and returns what the Python readers read from them.
fn make_archives(python: &Path, dir: &Path) -> Json {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(python)
        .arg(root.join("tests/python/archives.py"))
        .arg("make")
        .arg(dir)
        .arg(root.join("tests/fixtures"))
        .output()
        .expect("run tests/python/archives.py");
    assert!(
        out.status.success(),
        "archives.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("archives.py prints JSON")
}

/// A `tessera serve` child: its address and its start-up log.
struct Serve {
    child: Child,
    base: String,
    log: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_cmd(db: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.arg("serve")
        .arg("--db")
        .arg(db)
        .args(["--no-manifest", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "tessera=info")
        .env_remove("TESSERA_MANIFEST")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Starts the server and waits (bounded) for its address; the log up to then is kept.
fn serve(db: &str, args: &[&str]) -> Serve {
    serve_with(serve_cmd(db, args))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

async fn get(c: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> Got {
    let mut rb = c.get(url);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    Got {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.bytes().await.expect("body").to_vec(),
    }
}

fn header<'a>(g: &'a Got, name: &str) -> Option<&'a str> {
    g.headers.get(name).and_then(|v| v.to_str().ok())
}

fn hex(s: &Json) -> Vec<u8> {
    let s = s.as_str().expect("hex string");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A catalog with one dataset, to show datasets still serve beside the archives.
fn catalog_with_mpls() -> TestCatalog {
    let data = TestCatalog::new();
    data.import(&fixture_request("mpls", "mpls-stops-sample.csv"));
    data
}

/// Every tile of `archive` as the Python reader read it: gzip clients get the stored
/// bytes with `Content-Encoding: gzip`, others the inflated bytes and no coding; the
/// content type is the archive's format; ETags differ per coding and revalidate to 304.
async fn check_every_tile(
    c: &reqwest::Client,
    base: &str,
    id: &str,
    read: &Json,
    ext: &str,
    ty: &str,
) {
    let tiles = read["tiles"].as_array().expect("tiles");
    assert!(!tiles.is_empty(), "{id}: the archive has tiles");
    for t in tiles {
        let (z, x, y) = (&t[0], &t[1], &t[2]);
        let (stored, inflated) = (hex(&t[3]), hex(&t[4]));
        let url = format!("{base}/tiles/{id}/{z}/{x}/{y}.{ext}");
        let gz = get(c, &url, &[("accept-encoding", "gzip")]).await;
        assert_eq!(gz.status, 200, "GET {url}");
        assert_eq!(gz.body, stored, "GET {url} with gzip: the stored bytes");
        assert_eq!(header(&gz, "content-type"), Some(ty), "{url}");
        let stored_gzip = stored.starts_with(&[0x1f, 0x8b]);
        assert_eq!(
            header(&gz, "content-encoding"),
            stored_gzip.then_some("gzip"),
            "{url}"
        );
        let plain = get(c, &url, &[]).await;
        assert_eq!(plain.status, 200, "GET {url}");
        assert_eq!(
            plain.body, inflated,
            "GET {url} without gzip: inflated once"
        );
        assert_eq!(header(&plain, "content-encoding"), None, "{url}");
        let (e1, e2) = (
            header(&gz, "etag").unwrap(),
            header(&plain, "etag").unwrap(),
        );
        assert!(e1.starts_with('"'), "strong ETag: {e1}");
        if stored_gzip {
            assert_ne!(
                e1, e2,
                "{url}: gzip and identity bodies need their own tags"
            );
        }
        let again = get(
            c,
            &url,
            &[("accept-encoding", "gzip"), ("if-none-match", e1)],
        )
        .await;
        assert_eq!(again.status, 304, "GET {url} If-None-Match {e1}");
        assert!(again.body.is_empty());
    }
}

/// A tile at `z` inside `bounds` that the archive does not have (for the 204 check).
fn missing_tile(read: &Json, z: u8, bounds: [f64; 4]) -> (u8, u32, u32) {
    let have: std::collections::HashSet<(u64, u64, u64)> = read["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t[0].as_u64().unwrap(),
                t[1].as_u64().unwrap(),
                t[2].as_u64().unwrap(),
            )
        })
        .collect();
    let n = 1u32 << z;
    let col = |lon: f64| (((lon + 180.0) / 360.0) * f64::from(n)).floor() as u32;
    let row = |lat: f64| {
        let r = lat.to_radians();
        ((1.0 - (r.tan() + 1.0 / r.cos()).ln() / std::f64::consts::PI) / 2.0 * f64::from(n)).floor()
            as u32
    };
    for x in col(bounds[0])..=col(bounds[2]) {
        for y in row(bounds[3])..=row(bounds[1]) {
            if !have.contains(&(u64::from(z), u64::from(x), u64::from(y))) {
                return (z, x, y);
            }
        }
    }
    panic!("every tile at z{z} inside {bounds:?} exists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_are_served_as_stored_and_bad_ones_are_skipped() {
    let Some(python) = python() else { return };
    let data = catalog_with_mpls();
    let dir = data.dir.path().join("archives");
    std::fs::create_dir(&dir).unwrap();
    let read = make_archives(&python, &dir);
    let s = serve(&data.db_arg(), &["--tiles", dir.to_str().unwrap()]);
    let c = client();

    // Bad archives: named with what is wrong, at start; the server still started.
    for (file, why) in [
        ("truncated.pmtiles", "truncated"),
        ("badmagic.pmtiles", "wrong magic"),
        ("unknowncompression.pmtiles", "compression"),
        ("notiles.mbtiles", "no `tiles` table"),
        ("notsqlite.mbtiles", "not a readable MBTiles (SQLite) file"),
    ] {
        let line = s
            .log
            .lines()
            .find(|l| l.contains(file))
            .unwrap_or_else(|| panic!("no start-up line names {file}:\n{}", s.log));
        assert!(line.contains(why), "{file}: `{why}` expected in: {line}");
        let id = file.split('.').next().unwrap();
        let g = get(&c, &format!("{}/tiles/{id}", s.base), &[]).await;
        assert_eq!(g.status, 404, "a skipped archive is not served: {id}");
    }

    // The listing has the good archives and the dataset.
    let list: Json = serde_json::from_slice(&get(&c, &format!("{}/tiles", s.base), &[]).await.body)
        .expect("/tiles is JSON");
    let ids: Vec<&str> = list["tilesets"]
        .as_array()
        .expect("tilesets")
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    for id in ["mpls", "crime", "crime-mb", "raster", "raster-webp"] {
        assert!(ids.contains(&id), "{id} in /tiles: {ids:?}");
    }
    for id in [
        "truncated",
        "badmagic",
        "unknowncompression",
        "notiles",
        "notsqlite",
    ] {
        assert!(!ids.contains(&id), "{id} not in /tiles: {ids:?}");
    }

    // The dataset still serves tiles.
    let tj: Json =
        serde_json::from_slice(&get(&c, &format!("{}/tiles/mpls", s.base), &[]).await.body)
            .unwrap();
    let url = tj["tiles"][0]
        .as_str()
        .unwrap()
        .replace("{z}/{x}/{y}", "0/0/0");
    assert_eq!(get(&c, &url, &[]).await.status, 200, "dataset tile {url}");

    // TileJSON of the PMTiles archive: from its header and metadata.
    let pm = &read["crime.pmtiles"];
    let tj: Json =
        serde_json::from_slice(&get(&c, &format!("{}/tiles/crime", s.base), &[]).await.body)
            .unwrap();
    assert_eq!(tj["tilejson"], "3.0.0");
    assert_eq!(
        tj["tiles"][0],
        format!("{}/tiles/crime/{{z}}/{{x}}/{{y}}.mvt", s.base)
    );
    assert_eq!(tj["minzoom"], pm["header"]["min_zoom"]);
    assert_eq!(tj["maxzoom"], pm["header"]["max_zoom"]);
    assert_eq!(tj["name"], pm["metadata"]["name"]);
    assert_eq!(tj["vector_layers"], pm["metadata"]["vector_layers"]);
    let e7 = |k: &str| pm["header"][k].as_f64().unwrap() / 1e7;
    let b: Vec<f64> = tj["bounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let want = [
        e7("min_lon_e7"),
        e7("min_lat_e7"),
        e7("max_lon_e7"),
        e7("max_lat_e7"),
    ];
    for (got, want) in b.iter().zip(want) {
        assert!((got - want).abs() < 1e-6, "bounds {b:?} vs header {want:?}");
    }

    check_every_tile(&c, &s.base, "crime", pm, "mvt", MVT).await;
    check_every_tile(
        &c,
        &s.base,
        "raster",
        &read["raster.pmtiles"],
        "png",
        "image/png",
    )
    .await;
    check_every_tile(
        &c,
        &s.base,
        "raster-webp",
        &read["raster-webp.mbtiles"],
        "webp",
        "image/webp",
    )
    .await;

    // Empty inside the archive's zooms and bounds: 204; outside: 404.
    let (z, x, y) = missing_tile(pm, 9, want);
    let g = get(&c, &format!("{}/tiles/crime/{z}/{x}/{y}.mvt", s.base), &[]).await;
    assert_eq!(g.status, 204, "missing tile {z}/{x}/{y} inside the archive");
    for path in [
        "/tiles/crime/10/500/330.mvt",
        "/tiles/crime/3/4/2.mvt",
        "/tiles/crime/5/30/10.mvt",
    ] {
        let g = get(&c, &format!("{}{path}", s.base), &[]).await;
        assert_eq!(
            g.status, 404,
            "GET {path}: outside the archive's zooms or bounds"
        );
    }
    // A picture archive is not asked for as MVT, nor an archive with filters.
    let g = get(&c, &format!("{}/tiles/raster/0/0/0.mvt", s.base), &[]).await;
    assert_eq!(g.status, 404);
    let g = get(
        &c,
        &format!("{}/tiles/crime/4/7/5.mvt?month=2018-11", s.base),
        &[],
    )
    .await;
    assert_eq!(g.status, 400);
    let problem: Json = serde_json::from_slice(&g.body).unwrap();
    assert_eq!(problem["parameter"], "month", "{problem}");
}

/// The MBTiles made by tippecanoe, served from a manifest entry under an id of its own,
/// byte for byte as sqlite3 reads it (TMS rows flipped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mbtiles_from_the_manifest() {
    let Some(python) = python() else { return };
    let data = TestCatalog::new();
    let dir = data.dir.path().join("archives");
    std::fs::create_dir(&dir).unwrap();
    let read = make_archives(&python, &dir);
    let manifest = data.dir.path().join("tessera.toml");
    std::fs::write(
        &manifest,
        "[[archives]]\npath = \"archives/crime-mb.mbtiles\"\nid = \"uk-crime\"\n",
    )
    .unwrap();
    // An explicit --manifest is read even with --no-manifest (which skips the default).
    let s = serve(&data.db_arg(), &["--manifest", manifest.to_str().unwrap()]);
    let c = client();
    let mb = &read["crime-mb.mbtiles"];
    let m = &mb["metadata"];
    let tj: Json = serde_json::from_slice(
        &get(&c, &format!("{}/tiles/uk-crime", s.base), &[])
            .await
            .body,
    )
    .unwrap();
    assert_eq!(
        tj["tiles"][0],
        format!("{}/tiles/uk-crime/{{z}}/{{x}}/{{y}}.mvt", s.base)
    );
    assert_eq!(tj["name"], m["name"]);
    assert_eq!(tj["minzoom"].to_string(), m["minzoom"].as_str().unwrap());
    assert_eq!(tj["maxzoom"].to_string(), m["maxzoom"].as_str().unwrap());
    let json: Json = serde_json::from_str(m["json"].as_str().unwrap()).unwrap();
    assert_eq!(tj["vector_layers"], json["vector_layers"]);
    let b: Vec<f64> = m["bounds"]
        .as_str()
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(tj["bounds"], serde_json::json!(b));
    check_every_tile(&c, &s.base, "uk-crime", mb, "mvt", MVT).await;
    let g = get(&c, &format!("{}/tiles/uk-crime/10/0/0.mvt", s.base), &[]).await;
    assert_eq!(g.status, 404, "above the archive's max zoom");
}

fn serve_with(mut cmd: Command) -> Serve {
    let mut child = cmd.spawn().expect("spawn tessera serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut log = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            log.push_str(&line);
            log.push('\n');
            if let Some(at) = line.find("serving on http://") {
                let _ = tx.send((
                    line[at + "serving on ".len()..].trim().to_owned(),
                    log.clone(),
                ));
            }
        }
        let _ = tx.send((String::new(), log));
    });
    let (base, log) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("serve started or exited");
    assert!(!base.is_empty(), "tessera serve did not start:\n{log}");
    Serve { child, base, log }
}

/// An archive whose id is also a dataset's: which would `/tiles/{id}` serve? A clear
/// start-up error naming both, not a silent choice.
#[test]
fn an_archive_id_that_is_a_dataset_id_stops_the_start() {
    let Some(python) = python() else { return };
    let data = catalog_with_mpls();
    let dir = data.dir.path().join("archives");
    std::fs::create_dir(&dir).unwrap();
    make_archives(&python, &dir);
    std::fs::rename(dir.join("crime.pmtiles"), dir.join("mpls.pmtiles")).unwrap();
    let mut child = serve_cmd(&data.db_arg(), &["--tiles", dir.to_str().unwrap()])
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("tessera serve kept running with a clashing archive id");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("mpls.pmtiles") && log.contains("archive id `mpls` is also a dataset id"),
        "{log}"
    );
}
