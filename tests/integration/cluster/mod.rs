//! Tessera on a shared PostgreSQL, as deployed with more than one process: two servers
//! following an import made by a third process, importers killed with SIGKILL at seeded
//! moments, and reads that leave a stopped streaming replica and come back to it.
//!
//! They need a PostgreSQL + PostGIS server: `TESSERA_TEST_PG` is its URL ending in `/`
//! (`tests/pg/setup.sh` prints it). Without it a test says it skips, except under CI
//! (`CI` set), where it fails: CI must not pass by skipping them. Set but empty, it
//! marks a SQLite-only pass, where they skip even under CI. Each test makes its
//! own database and drops it at the end. The replica test also runs `tests/pg/replica.sh`
//! (root or postgres), which builds a streaming replica of that server on port 5433.
//!
//! Everything goes through real interfaces: the `tessera` binary for `serve` and
//! `import`, HTTP for what clients see, and `psql` for what is in the database.

use serde_json::Value as Json;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod follow;
mod kill;
mod pool;
mod replica;

/// A z10 tile inside the generated points (London).
const TILE: &str = "/tiles/ds/10/511/340.mvt";

/// The PostgreSQL server to test on, or `None` when the test should skip: when
/// `TESSERA_TEST_PG` is set but empty (a pass that is meant to run on SQLite only), or
/// unset outside CI. Unset under CI is a failure, so CI cannot pass by skipping.
fn pg_server(test: &str) -> Option<String> {
    match std::env::var("TESSERA_TEST_PG") {
        Ok(url) if url.is_empty() => {
            eprintln!("skipping {test}: TESSERA_TEST_PG is empty (a SQLite-only pass)");
            None
        }
        Ok(url) => {
            assert!(
                url.ends_with('/'),
                "TESSERA_TEST_PG must be a server URL ending in `/`, not {url}"
            );
            Some(url)
        }
        Err(_) if std::env::var_os("CI").is_some() => panic!(
            "{test}: TESSERA_TEST_PG is not set; under CI the PostgreSQL tests must run (see tests/pg/setup.sh)"
        ),
        Err(_) => {
            eprintln!("skipping {test}: TESSERA_TEST_PG is not set");
            None
        }
    }
}

/// Runs one statement with psql; its output (unaligned, tuples only) or psql's error.
fn psql_try(url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run psql (postgresql-client): {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

fn psql(url: &str, sql: &str) -> String {
    psql_try(url, sql).unwrap_or_else(|e| panic!("psql `{sql}` on {url}: {e}"))
}

/// A database of its own for one test, dropped at the end.
struct TestDb {
    server: String,
    name: String,
}

impl TestDb {
    fn create(server: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "tessera_cluster_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        // Connected to `postgres`, not to the template: a session on the template would
        // make other tests' CREATE DATABASE ... TEMPLATE fail.
        let admin = format!("{server}postgres");
        let has_template = psql(
            &admin,
            "SELECT count(*) FROM pg_database WHERE datname = 'tessera_template'",
        ) == "1";
        // Without the template the catalog creates the postgis extension itself.
        let sql = if has_template {
            format!("CREATE DATABASE {name} TEMPLATE tessera_template")
        } else {
            format!("CREATE DATABASE {name}")
        };
        // Another test copying the template at the same moment makes CREATE fail.
        let mut tries = 0;
        while let Err(e) = psql_try(&admin, &sql) {
            tries += 1;
            assert!(
                tries < 20 && e.contains("accessed by other users"),
                "{sql}: {e}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        Self {
            server: server.to_owned(),
            name,
        }
    }

    /// The database on the primary.
    fn url(&self) -> String {
        format!("{}{}", self.server, self.name)
    }

    /// The same database on another server (a replica, whose URL ends in `/`).
    fn url_on(&self, server: &str) -> String {
        format!("{server}{}", self.name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = psql_try(&format!("{}postgres", self.server), &sql) {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

/// splitmix64: seeded kill delays and row values, so a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A CSV of `rows` points around London with a category, a date and a note.
fn write_csv(path: &Path, rows: u64, seed: u64) {
    let mut rng = Rng(seed);
    let file = std::fs::File::create(path).expect("create csv");
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "id,kind,Date,Longitude,Latitude,note").expect("write");
    let kinds = ["burglary", "theft", "arson", "fraud"];
    for i in 0..rows {
        let (lon, lat) = (-0.5 + rng.unit(), 51.2 + rng.unit() * 0.6);
        let kind = kinds[(rng.next() % 4) as usize];
        let day = 1 + rng.next() % 28;
        writeln!(
            out,
            "{i},{kind},2024-02-{day:02},{lon:.6},{lat:.6},row {i} of {rows} seed {seed}"
        )
        .expect("write");
    }
    out.flush().expect("flush");
}

fn tessera() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.env_remove("TESSERA_DB")
        .env_remove("TESSERA_DB_READ")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

fn import_cmd(db: &str, file: &Path, id: &str) -> Command {
    let mut cmd = tessera();
    cmd.env("RUST_LOG", "tessera=warn")
        .arg("import")
        .arg(file)
        .args(["--dataset", id, "--db", db])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Runs an import to its end (at most 5 minutes) and requires success; how long it took.
fn import_ok(db: &str, file: &Path, id: &str) -> Duration {
    let t = Instant::now();
    let mut child = import_cmd(db, file, id)
        .spawn()
        .expect("spawn tessera import");
    let mut stderr = child.stderr.take().expect("stderr");
    // Read in a thread so a chatty importer never blocks on a full pipe.
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if t.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "import of {} into `{id}` still running after 5 minutes",
                file.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = log.join().unwrap_or_default();
    assert!(
        status.success(),
        "import of {} into `{id}` failed ({status}): {log}",
        file.display()
    );
    t.elapsed()
}

/// Sends SIGKILL; `true` when the importer was still running (a real kill).
fn kill_9(child: &mut Child) -> bool {
    if child.try_wait().expect("try_wait").is_some() {
        return false;
    }
    child.kill().expect("kill -9");
    let status = child.wait().expect("wait");
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(9)
}

/// A `tessera serve` process on 127.0.0.1:0 and the address it printed.
struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(db: &str, read: &[String]) -> Self {
        Self::start_with_env(db, read, &[])
    }

    /// [`Self::start`] with extra environment variables for the server.
    fn start_with_env(db: &str, read: &[String], env: &[(&str, &str)]) -> Self {
        let mut cmd = tessera();
        cmd.envs(env.iter().copied());
        cmd.env("RUST_LOG", "tessera=info").args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-manifest",
            "--db",
            db,
        ]);
        for r in read {
            cmd.args(["--db-read", r]);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tessera serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let kept = log.clone();
        // Keeps draining the log (the server must never block on a full pipe) and keeps
        // it for failure messages.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("serving on http://") {
                    let _ = tx.send(line[at + "serving on ".len()..].trim().to_owned());
                }
                kept.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let log = log.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
                panic!("tessera serve --db {db} did not print its address; its log:\n{log}")
            });
        Self { child, base, log }
    }

    /// The last lines the server logged (for failure messages).
    fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log[log.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// What a client sees of dataset `ds` on one server.
#[derive(Debug, Clone, PartialEq, Eq)]
struct View {
    version: i64,
    count: u64,
    items_etag: String,
    tile_etag: String,
    /// The query of the TileJSON tile URL (the version the URL carries).
    tile_query: String,
}

async fn get_ok(c: &reqwest::Client, url: &str) -> reqwest::Response {
    let r = c
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(r.status(), 200, "GET {url}");
    r
}

fn etag(r: &reqwest::Response) -> String {
    r.headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no ETag from {}", r.url()))
        .to_owned()
}

async fn view(c: &reqwest::Client, base: &str) -> View {
    let coll: Json = get_ok(c, &format!("{base}/collections/ds"))
        .await
        .json()
        .await
        .expect("collection JSON");
    let items = get_ok(c, &format!("{base}/collections/ds/items?limit=1")).await;
    let items_etag = etag(&items);
    let body: Json = items.json().await.expect("items JSON");
    let tile = get_ok(c, &format!("{base}{TILE}")).await;
    let tilejson: Json = get_ok(c, &format!("{base}/tiles/ds"))
        .await
        .json()
        .await
        .expect("TileJSON");
    let url = tilejson["tiles"][0].as_str().expect("a tile URL");
    View {
        version: coll["version"].as_i64().expect("collection version"),
        count: body["numberMatched"].as_u64().expect("numberMatched"),
        items_etag,
        tile_etag: etag(&tile),
        tile_query: url.split_once('?').map_or("", |(_, q)| q).to_owned(),
    }
}

/// Polls `base` until `ds` is served at another version than `old` (at most `limit`);
/// the new view and how long it took.
async fn wait_for_new_version(
    c: &reqwest::Client,
    base: &str,
    old: i64,
    limit: Duration,
) -> Option<(View, Duration)> {
    let t = Instant::now();
    while t.elapsed() < limit {
        let v = view(c, base).await;
        if v.version != old {
            return Some((v, t.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// Clients requesting an items page, a tile and the TileJSON in a loop until stopped
/// (or for at most 10 minutes), keeping every failure: a transport error, a status other
/// than 200/204, or an items count that is none of `counts`.
struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(base: &str, counts: &[u64]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let began = Instant::now();
        let tasks = (0..3)
            .map(|k| {
                let (stop, done, failures) = (stop.clone(), done.clone(), failures.clone());
                let (base, counts, c) = (base.to_owned(), counts.to_vec(), client());
                tokio::spawn(async move {
                    let paths = ["/collections/ds/items?limit=20", TILE, "/tiles/ds"];
                    let mut i = k;
                    while !stop.load(Ordering::Relaxed) && began.elapsed().as_secs() < 600 {
                        let path = paths[i % paths.len()];
                        i += 1;
                        let at = began.elapsed();
                        let failure = match c.get(format!("{base}{path}")).send().await {
                            Err(e) => Some(format!("{e}")),
                            Ok(r) if !matches!(r.status().as_u16(), 200 | 204) => {
                                let status = r.status();
                                let body = r.text().await.unwrap_or_default();
                                Some(format!("{status} {}", &body[..body.len().min(300)]))
                            }
                            Ok(r) if path.contains("items") => match r.json::<Json>().await {
                                Err(e) => Some(format!("body: {e}")),
                                Ok(b) => match b["numberMatched"].as_u64() {
                                    Some(n) if counts.contains(&n) => None,
                                    n => {
                                        Some(format!("numberMatched {n:?}, not one of {counts:?}"))
                                    }
                                },
                            },
                            Ok(r) => r.bytes().await.err().map(|e| format!("body: {e}")),
                        };
                        match failure {
                            Some(f) => failures
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(format!("{at:?} GET {path}: {f}")),
                            None => {
                                done.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            done,
            failures,
            tasks,
        }
    }

    fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Stops the clients; the answered requests and the failures.
    async fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.expect("load task");
        }
        let failures =
            std::mem::take(&mut *self.failures.lock().unwrap_or_else(|e| e.into_inner()));
        (self.done.load(Ordering::Relaxed), failures)
    }
}

/// Waits up to `limit` for `test`; how long it took, or `None`.
async fn wait_until(limit: Duration, mut test: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if test().await {
            return Some(t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}
