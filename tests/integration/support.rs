//! Shared helpers: fixture paths, import requests, a real server on an ephemeral port.

use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tessera::http::{AppState, router};
use tessera::import::{ImportError, ImportReport, ImportRequest};
use tessera::ingest::IngestOptions;
use tessera::model::{DatasetId, DatasetInfo, DatasetMeta};
use tessera::render::TileConfig;
use tessera::store::sqlite::SqliteCatalog;
use tessera::store::{Catalog, DbLocation};

/// A file of `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// An import request with every option on its default (auto-detection, UTC, replace).
pub fn request(id: &str, files: &[PathBuf]) -> ImportRequest {
    ImportRequest {
        id: DatasetId::parse(id).expect("valid test dataset id"),
        meta: DatasetMeta {
            title: format!("Test {id}"),
            ..DatasetMeta::default()
        },
        files: files.to_vec(),
        options: IngestOptions::default(),
        time: None,
        time_end: None,
        timezone: jiff::tz::TimeZone::UTC,
        append: false,
        max_errors: 0,
    }
}

/// A request for one fixture file.
pub fn fixture_request(id: &str, name: &str) -> ImportRequest {
    request(id, &[fixture(name)])
}

/// Which backend a [`TestCatalog`] runs on, for tests that say so in their messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        })
    }
}

/// The PostgreSQL server the suite's second pass runs on, when `TESSERA_TEST_PG` names
/// one (a URL ending in `/`, as `tests/pg/setup.sh` prints); `None` means SQLite.
pub fn pg_server() -> Option<String> {
    let url = std::env::var("TESSERA_TEST_PG").ok()?;
    if url.is_empty() {
        return None;
    }
    assert!(
        url.ends_with('/'),
        "TESSERA_TEST_PG must be a server URL ending in `/` (the harness appends a \
         database name), got {url}"
    );
    Some(url)
}

/// A catalog of its own: a SQLite file in a temporary directory, or (under
/// `TESSERA_TEST_PG`) a fresh PostgreSQL database copied from `tessera_template`. The
/// directory exists for both, for the test's own files.
///
/// Field order is drop order: the catalog (its connections) goes before the database is
/// dropped, and the directory last.
pub struct TestCatalog {
    pub catalog: Arc<dyn Catalog>,
    /// The same catalog as a `SqliteCatalog`, for tests about the SQLite file.
    sqlite: Option<Arc<SqliteCatalog>>,
    location: DbLocation,
    /// Held for its Drop, which drops the database after the catalog has gone.
    _database: Option<PgDatabase>,
    pub dir: TempDir,
}

impl TestCatalog {
    /// A catalog on the backend of this pass: PostgreSQL under `TESSERA_TEST_PG`, else SQLite.
    pub fn new() -> Self {
        match pg_server() {
            Some(server) => Self::postgres(&server),
            None => Self::sqlite(),
        }
    }

    /// A SQLite catalog whatever the pass, for tests about SQLite itself (the file, its
    /// probe of other processes' commits, recovery after a kill).
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("catalog.db");
        let sqlite = Arc::new(SqliteCatalog::open(&path).expect("open catalog"));
        Self {
            catalog: sqlite.clone(),
            sqlite: Some(sqlite),
            location: DbLocation::Sqlite(path),
            _database: None,
            dir,
        }
    }

    fn postgres(server: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = PgDatabase::create(server);
        let location = DbLocation::Postgres(db.url());
        let catalog = tessera::store::open(&location, &[])
            .unwrap_or_else(|e| panic!("open PostgreSQL catalog {}: {e}", location.display()));
        Self {
            catalog: Arc::from(catalog),
            sqlite: None,
            location,
            _database: Some(db),
            dir,
        }
    }

    pub fn backend(&self) -> Backend {
        match self.location {
            DbLocation::Sqlite(_) => Backend::Sqlite,
            DbLocation::Postgres(_) => Backend::Postgres,
        }
    }

    /// What to pass to the binary's `--db`: the SQLite file's path or the database URL.
    pub fn db_arg(&self) -> String {
        match &self.location {
            DbLocation::Sqlite(p) => p.to_str().expect("UTF-8 temp path").to_owned(),
            DbLocation::Postgres(url) => url.clone(),
        }
    }

    /// A second catalog on the same data, opened as another process would open it.
    pub fn reopen(&self) -> Box<dyn Catalog> {
        tessera::store::open(&self.location, &[])
            .unwrap_or_else(|e| panic!("reopen catalog {}: {e}", self.location.display()))
    }

    /// The catalog as a `SqliteCatalog`; only for tests made with [`Self::sqlite`].
    pub fn sqlite_catalog(&self) -> &Arc<SqliteCatalog> {
        self.sqlite
            .as_ref()
            .expect("a SQLite-only test must make its catalog with TestCatalog::sqlite()")
    }

    /// The SQLite file; only for tests made with [`Self::sqlite`].
    pub fn sqlite_path(&self) -> &Path {
        self.sqlite_catalog().path()
    }

    pub fn try_import(&self, req: &ImportRequest) -> Result<ImportReport, ImportError> {
        tessera::import::run(self.catalog.as_ref(), req, &mut |_| {})
    }

    pub fn import(&self, req: &ImportRequest) -> ImportReport {
        self.try_import(req)
            .unwrap_or_else(|e| panic!("import of `{}` ({}) failed: {e}", req.id, self.backend()))
    }

    pub fn info(&self, id: &str) -> Option<DatasetInfo> {
        let snap = self.catalog.snapshot().expect("snapshot");
        snap.dataset(&DatasetId::parse(id).expect("id"))
            .expect("read dataset")
    }

    /// Writes a file into the catalog's temporary directory and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, contents).expect("write test file");
        p
    }
}

/// A database of one test, created from `tessera_template` (PostGIS already in it) and
/// dropped again when the test ends, pass or fail. psql does the creating: the catalog
/// only ever connects to a database that exists.
struct PgDatabase {
    server: String,
    name: String,
}

impl PgDatabase {
    fn create(server: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        static SWEEP: Once = Once::new();
        SWEEP.call_once(|| sweep_dead_databases(server));
        let pid = std::process::id();
        let name = format!(
            "tessera_t_{pid}_{}",
            NEXT.fetch_add(1, AtomicOrdering::Relaxed)
        );
        // Connected to `postgres`, not to the template: a session in the template makes
        // every concurrent CREATE DATABASE from it fail ("being accessed by other users").
        // Someone else may still be in it for a moment (setup.sh, a helper): retry then.
        let sql = format!("CREATE DATABASE {name} TEMPLATE tessera_template");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match psql(server, &sql) {
                Ok(_) => break,
                Err(e)
                    if e.contains("being accessed by other users") && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("{sql} failed (has tests/pg/setup.sh run on this server?): {e}"),
            }
        }
        Self {
            server: server.to_owned(),
            name,
        }
    }

    fn url(&self) -> String {
        format!("{}{}", self.server, self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // FORCE ends the sessions of a catalog that a still-running server task holds.
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = psql(&self.server, &sql) {
            eprintln!("warning: {sql}: {e}");
        }
    }
}

/// Drops the test databases of earlier runs whose process is gone (killed mid-run, so
/// their Drop never ran); those of live processes, this one's included, stay.
fn sweep_dead_databases(server: &str) {
    let Ok(names) = psql(
        server,
        "SELECT datname FROM pg_database WHERE datname LIKE 'tessera\\_t\\_%'",
    ) else {
        return;
    };
    for name in names.lines() {
        let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
        if pid.is_some() && !alive {
            let _ = psql(
                server,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
    }
}

/// Runs one SQL command with psql in the server's `postgres` database; its output
/// (unaligned, tuples only) or its error text.
fn psql(server: &str, sql: &str) -> Result<String, String> {
    let out = std::process::Command::new("psql")
        .arg(format!("{server}postgres"))
        .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .map_err(|e| format!("cannot run psql (install postgresql-client): {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// The real router, served on 127.0.0.1:0 over its own catalog.
pub struct Server {
    pub base: String,
    pub port: u16,
    pub data: TestCatalog,
    pub client: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Starts a server over an empty catalog; call from within a Tokio runtime.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// [`Self::start`] with settings changed from the defaults by `configure`.
    pub async fn start_with(configure: impl FnOnce(&mut AppState)) -> Self {
        Self::start_over(TestCatalog::new(), configure).await
    }

    /// Starts a server over a SQLite catalog whatever the pass, for SQLite-only tests.
    pub async fn start_sqlite() -> Self {
        Self::start_over(TestCatalog::sqlite(), |_| {}).await
    }

    /// A server over `data`, with settings changed from the defaults by `configure`.
    pub async fn start_over(data: TestCatalog, configure: impl FnOnce(&mut AppState)) -> Self {
        let mut state = AppState::new(data.catalog.clone(), None, TileConfig::default());
        configure(&mut state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let task = tokio::spawn(async move {
            axum::serve(listener, router(state))
                .await
                .expect("server runs");
        });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .expect("client");
        Self {
            base: format!("http://127.0.0.1:{port}"),
            port,
            data,
            client,
            task,
        }
    }

    /// Starts a server and imports `fixture` as dataset `id`.
    pub async fn with_fixture(id: &str, fixture_name: &str) -> Self {
        let s = Self::start().await;
        s.import(&fixture_request(id, fixture_name));
        s
    }

    pub fn import(&self, req: &ImportRequest) -> ImportReport {
        self.data.import(req)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// GET with extra headers.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut rb = self.client.get(self.url(path));
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        rb.send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// GET that must answer 200 with JSON; returns the parsed body.
    pub async fn json(&self, path: &str) -> Json {
        let r = self.get(path).await;
        let status = r.status();
        let body = r.text().await.expect("body");
        assert_eq!(status, 200, "GET {path} answered {status}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
    }

    /// GET of an absolute URL (a link the server gave) that must answer 200 JSON.
    pub async fn json_abs(&self, url: &str) -> Json {
        let r = self
            .client
            .get(url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = r.status();
        let body = r.text().await.expect("body");
        assert_eq!(status, 200, "GET {url} answered {status}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {body}"))
    }

    /// Items of `collection` for the query pairs (encoded here), with a 200 expected.
    pub async fn items(&self, collection: &str, query: &[(&str, &str)]) -> Json {
        self.json(&items_path(collection, query)).await
    }
}

/// `/collections/{c}/items?...` with the pairs form-encoded.
pub fn items_path(collection: &str, query: &[(&str, &str)]) -> String {
    let q = serde_urlencoded::to_string(query).expect("encode query");
    if q.is_empty() {
        format!("/collections/{collection}/items")
    } else {
        format!("/collections/{collection}/items?{q}")
    }
}

/// The ids of a FeatureCollection's features, as strings.
pub fn ids(fc: &Json) -> Vec<String> {
    features(fc).iter().map(id_of).collect()
}

pub fn id_of(f: &Json) -> String {
    match &f["id"] {
        Json::String(s) => s.clone(),
        Json::Number(n) => n.to_string(),
        other => panic!("feature id is neither string nor number: {other}"),
    }
}

pub fn features(fc: &Json) -> &Vec<Json> {
    fc["features"]
        .as_array()
        .unwrap_or_else(|| panic!("no features array in {fc}"))
}

pub fn number_matched(fc: &Json) -> u64 {
    fc["numberMatched"]
        .as_u64()
        .unwrap_or_else(|| panic!("no numberMatched in {fc}"))
}

/// The `href` of the first link with `rel`, if any.
pub fn link<'a>(doc: &'a Json, rel: &str) -> Option<&'a str> {
    doc["links"]
        .as_array()?
        .iter()
        .find(|l| l["rel"] == rel)
        .and_then(|l| l["href"].as_str())
}

/// Reads a fixture CSV (UTF-8) into its header and rows.
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<csv::StringRecord>) {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .expect("open csv");
    let header = r
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = r.records().collect::<Result<Vec<_>, _>>().expect("rows");
    (header, rows)
}

/// The index of column `name` in a header.
pub fn col(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

/// Content-Type of a response, without parameters.
pub fn content_type(r: &reqwest::Response) -> String {
    r.headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// Runs ogrinfo on a blocking thread (the server keeps serving on the runtime); fails
/// the test with its output when it fails. Proxies are bypassed for 127.0.0.1.
pub async fn ogrinfo(args: Vec<String>) -> String {
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("ogrinfo")
            .args(&args)
            .env("no_proxy", "127.0.0.1,localhost")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("CPL_DEBUG", "OFF")
            .output()
            .expect("run ogrinfo")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "ogrinfo failed ({}): {stdout}\n{stderr}",
        out.status
    );
    stdout
}

/// Whether `ogrinfo` can run; fails in CI without it, skips with a notice elsewhere.
pub fn ogrinfo_available(test: &str) -> bool {
    let found = std::process::Command::new("ogrinfo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "ogrinfo is not on PATH but CI is set: install gdal-bin"
        );
        eprintln!("SKIPPED {test}: ogrinfo is not on PATH");
    }
    found
}
