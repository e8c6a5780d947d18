//! `tessera copy` with the real binary: a copy serves what the original serves (features
//! with their ids, geometry and properties, numberMatched, extents, tiles byte for byte).
//! SQLite to SQLite always; SQLite to PostgreSQL and back when `TESSERA_TEST_PG` names a
//! server (a URL ending in `/`, e.g. `postgresql://tessera:tessera@127.0.0.1:5432/`).

use crate::support::fixture;
use serde_json::Value as Json;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use tessera::http::{AppState, router};
use tessera::render::TileConfig;
use tessera::store::DbLocation;

fn tessera(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .env_remove("TESSERA_DB")
        .env("RUST_LOG", "tessera=warn")
        .env("RUST_BACKTRACE", "0")
        .env("NO_COLOR", "1")
        .output()
        .expect("run tessera")
}

fn ok(out: &Output) -> String {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        out.status.success(),
        "tessera failed ({}): stdout {} stderr {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn fails(out: &Output) -> String {
    assert!(!out.status.success(), "tessera should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Points with time and numeric ids, points with their own ids, and polygons.
fn import_fixtures(db: &str) {
    let uk = fixture("uk-crime-sample.csv");
    ok(&tessera(&[
        "import",
        uk.to_str().unwrap(),
        "--dataset",
        "uk",
        "--db",
        db,
    ]));
    let nyc = fixture("nyc-311-location-only.csv");
    ok(&tessera(&[
        "import",
        nyc.to_str().unwrap(),
        "--dataset",
        "nyc",
        "--db",
        db,
        "--wkt",
        "Location",
        "--id-column",
        "Unique Key",
        "--timezone",
        "America/New_York",
    ]));
    let areas = fixture("manhattan-neighbourhoods.geojson");
    ok(&tessera(&[
        "import",
        areas.to_str().unwrap(),
        "--dataset",
        "areas",
        "--kind",
        "boundaries",
        "--db",
        db,
    ]));
}

/// The real router over the catalog at `db`, on 127.0.0.1:0.
struct Served {
    base: String,
    client: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(db: &str) -> Served {
    let catalog = tessera::store::open(&DbLocation::parse(db), &[]).expect("open the catalog");
    let state = AppState::new(Arc::from(catalog), None, TileConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, router(state)).await.unwrap();
    });
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    Served { base, client, task }
}

impl Served {
    async fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
    }

    /// A JSON document with this server's base URL replaced, so two servers' answers compare.
    async fn json(&self, path: &str) -> Json {
        let (status, body) = self.get(path).await;
        let text = String::from_utf8_lossy(&body).replace(&self.base, "BASE");
        assert_eq!(status, 200, "GET {path}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

/// The tile holding (lon, lat) at zoom `z`.
fn tile_of(lon: f64, lat: f64, z: u8) -> (u32, u32) {
    let n = f64::from(1u32 << z);
    let x = ((lon + 180.0) / 360.0 * n).floor();
    let lat = lat.to_radians();
    let y = ((1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / std::f64::consts::PI) / 2.0 * n).floor();
    (x as u32, y as u32)
}

/// Every dataset of `a` answers the same on `b`: collection, all features, tiles.
async fn assert_same(a: &Served, b: &Served, what: &str) {
    let list = a.json("/collections").await;
    let ids: Vec<String> = list["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["areas", "nyc", "uk"], "{what}");
    let other: Vec<Json> = b.json("/collections").await["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].clone())
        .collect();
    assert_eq!(other, ids, "{what}: the copy lists other datasets");
    for id in &ids {
        let (ca, cb) = (
            a.json(&format!("/collections/{id}")).await,
            b.json(&format!("/collections/{id}")).await,
        );
        assert_eq!(ca["extent"], cb["extent"], "{what}: extent of {id}");
        assert_eq!(ca["title"], cb["title"], "{what}: title of {id}");
        let path = format!("/collections/{id}/items?limit=1000");
        let (fa, fb) = (a.json(&path).await, b.json(&path).await);
        assert!(fa["numberMatched"].as_u64().unwrap() > 0, "{what}: {id}");
        assert_eq!(fa["numberMatched"], fb["numberMatched"], "{what}: {id}");
        assert_eq!(fa["numberReturned"], fb["numberReturned"], "{what}: {id}");
        let (xs, ys) = (
            fa["features"].as_array().unwrap(),
            fb["features"].as_array().unwrap(),
        );
        assert_eq!(xs.len(), ys.len(), "{what}: {id}");
        for (x, y) in xs.iter().zip(ys) {
            assert_eq!(x["id"], y["id"], "{what}: {id}: ids differ");
            assert_eq!(
                x["geometry"], y["geometry"],
                "{what}: {id} feature {}",
                x["id"]
            );
            assert_eq!(
                x["properties"], y["properties"],
                "{what}: {id} feature {}",
                x["id"]
            );
        }
        // One feature by its id, as links to it are written.
        let first = match &xs[0]["id"] {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        let one = format!("/collections/{id}/items/{first}");
        assert_eq!(
            a.json(&one).await["properties"],
            b.json(&one).await["properties"]
        );

        let bbox = ca["extent"]["spatial"]["bbox"][0]
            .as_array()
            .unwrap()
            .clone();
        let (lon, lat) = (bbox[0].as_f64().unwrap(), bbox[1].as_f64().unwrap());
        let mut drawn = 0;
        for z in [0u8, 8, 12, 14] {
            let (x, y) = tile_of(lon + 1e-6, lat + 1e-6, z);
            let tile = format!("/tiles/{id}/{z}/{x}/{y}.mvt");
            let ((sa, ta), (sb, tb)) = (a.get(&tile).await, b.get(&tile).await);
            assert_eq!(sa, sb, "{what}: {tile}");
            if sa == 200 {
                drawn += 1;
            }
            assert!(
                ta == tb,
                "{what}: {tile} differs ({} and {} bytes)",
                ta.len(),
                tb.len()
            );
        }
        assert!(drawn > 0, "{what}: no tile of {id} had features");
    }
}

/// A database made for one test from the `tessera_template` database, dropped at the end
/// (also used by the health tests).
pub(crate) struct PgDatabase {
    server: String,
    name: String,
}

impl PgDatabase {
    /// `None` when `TESSERA_TEST_PG` is not set or empty (the SQLite pass).
    pub(crate) fn create(tag: &str) -> Option<Self> {
        let server = crate::support::pg_server()?;
        let name = format!("tessera_test_{tag}_{}", std::process::id());
        let db = Self { server, name };
        db.psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name));
        db.psql(&format!(
            "CREATE DATABASE {} TEMPLATE tessera_template",
            db.name
        ));
        Some(db)
    }

    fn psql(&self, sql: &str) {
        let out = Command::new("psql")
            .arg(format!("{}postgres", self.server))
            .args(["-v", "ON_ERROR_STOP=1", "-qc", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub(crate) fn url(&self) -> String {
        format!("{}{}", self.server, self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(format!("{}postgres", self.server))
            .args([
                "-qc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sqlite_copy_serves_what_the_original_serves() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    import_fixtures(path_str(&a));
    let out = ok(&tessera(&[
        "copy",
        "--from",
        path_str(&a),
        "--to",
        path_str(&b),
    ]));
    for line in [
        "areas: copied 37 features",
        "nyc: copied 100 features",
        "uk: copied 200 features",
        "copied 3 datasets from",
    ] {
        assert!(out.contains(line), "{line} not in {out}");
    }
    assert!(!out.contains("renumbered"), "{out}");
    let (sa, sb) = (serve(path_str(&a)).await, serve(path_str(&b)).await);
    assert_same(&sa, &sb, "sqlite -> sqlite").await;

    // Copying again replaces the datasets (a new version each), with the same answers.
    let out = ok(&tessera(&[
        "copy",
        "--from",
        path_str(&a),
        "--to",
        path_str(&b),
    ]));
    assert!(out.contains("uk: copied 200 features"), "{out}");
    assert_same(&sa, &serve(path_str(&b)).await, "sqlite -> sqlite, again").await;
}

#[test]
fn only_the_named_datasets_are_copied() {
    let dir = tempfile::tempdir().unwrap();
    let (a, c) = (dir.path().join("a.db"), dir.path().join("c.db"));
    import_fixtures(path_str(&a));
    let out = ok(&tessera(&[
        "copy",
        "--from",
        path_str(&a),
        "--to",
        path_str(&c),
        "--dataset",
        "uk",
        "--dataset",
        "areas",
    ]));
    assert!(out.contains("copied 2 datasets"), "{out}");
    let listed = ok(&tessera(&["datasets", "--db", path_str(&c)]));
    let ids: Vec<&str> = listed
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(ids, ["areas", "uk"], "{listed}");
}

#[test]
fn bad_copies_say_why_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.db");
    let uk = fixture("uk-crime-sample.csv");
    ok(&tessera(&[
        "import",
        uk.to_str().unwrap(),
        "--dataset",
        "uk",
        "--db",
        path_str(&a),
    ]));
    let to = dir.path().join("to.db");

    let err = fails(&tessera(&[
        "copy",
        "--from",
        path_str(&a),
        "--to",
        path_str(&to),
        "--dataset",
        "nope",
    ]));
    assert!(
        err.contains("dataset `nope` is not in the source catalog"),
        "{err}"
    );
    let err = fails(&tessera(&[
        "copy",
        "--from",
        path_str(&a),
        "--to",
        path_str(&to),
        "--dataset",
        "Not An Id",
    ]));
    assert!(err.contains("--dataset"), "{err}");
    let missing = dir.path().join("missing.db");
    let err = fails(&tessera(&[
        "copy",
        "--from",
        path_str(&missing),
        "--to",
        path_str(&to),
    ]));
    assert!(err.contains("no catalog at"), "{err}");
    assert!(!missing.exists(), "a missing source must not be created");
    assert!(
        !to.exists(),
        "a failed copy must not create its destination"
    );

    // The same file, however its path is written.
    let same = dir.path().join(".").join("a.db");
    let err = fails(&tessera(&[
        "copy",
        "--from",
        path_str(&a),
        "--to",
        path_str(&same),
    ]));
    assert!(err.contains("the same catalog"), "{err}");
    let err = fails(&tessera(&["copy", "--from", path_str(&a)]));
    assert!(err.contains("--to"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn copies_to_postgresql_and_back_serve_what_the_original_serves() {
    let Some(pg) = PgDatabase::create("copy") else {
        eprintln!("SKIPPED copies_to_postgresql_and_back: TESSERA_TEST_PG is not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (a, back) = (dir.path().join("a.db"), dir.path().join("back.db"));
    import_fixtures(path_str(&a));
    let out = ok(&tessera(&[
        "copy",
        "--from",
        path_str(&a),
        "--to",
        &pg.url(),
    ]));
    assert!(out.contains("uk: copied 200 features"), "{out}");
    // The URL's password is not printed.
    assert!(!out.contains(":tessera@"), "{out}");
    let out = ok(&tessera(&[
        "copy",
        "--from",
        &pg.url(),
        "--to",
        path_str(&back),
    ]));
    assert!(out.contains("areas: copied 37 features"), "{out}");
    assert!(!out.contains("renumbered"), "{out}");
    let original = serve(path_str(&a)).await;
    assert_same(&original, &serve(&pg.url()).await, "sqlite -> postgresql").await;
    assert_same(
        &original,
        &serve(path_str(&back)).await,
        "postgresql -> sqlite",
    )
    .await;
}
