//! Tessera on a shared PostgreSQL, as deployed with more than one process: two servers
//! following an import made by a third process, importers killed with SIGKILL at seeded
//! moments, and reads that leave a stopped streaming replica and come back to it.
//!
//! They need a PostgreSQL + PostGIS server: `TESSERA_TEST_PG` is its URL ending in `/`
//! (`tests/pg/setup.sh` prints it). Without it a test says it skips, except under CI
//! (`CI` set), where it fails: CI must not pass by skipping them. Each test makes its
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

/// A z10 tile inside the generated points (London).
const TILE: &str = "/tiles/ds/10/511/340.mvt";
/// Rows of the file whose imports are killed.
const BIG_ROWS: u64 = 200_000;

/// The PostgreSQL server to test on, or `None` when the test should skip.
fn pg_server(test: &str) -> Option<String> {
    match std::env::var("TESSERA_TEST_PG") {
        Ok(url) if !url.is_empty() => {
            assert!(
                url.ends_with('/'),
                "TESSERA_TEST_PG must be a server URL ending in `/`, not {url}"
            );
            Some(url)
        }
        _ if std::env::var_os("CI").is_some() => panic!(
            "{test}: TESSERA_TEST_PG is not set; under CI the PostgreSQL tests must run (see tests/pg/setup.sh)"
        ),
        _ => {
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
        let mut cmd = tessera();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_follow_an_import_from_a_third_process() {
    let Some(pg) = pg_server("two_servers_follow_an_import_from_a_third_process") else {
        return;
    };
    let db = TestDb::create(&pg);
    let dir = tempfile::tempdir().expect("tempdir");
    let (v1, v2) = (dir.path().join("v1.csv"), dir.path().join("v2.csv"));
    write_csv(&v1, 2_000, 11);
    write_csv(&v2, 3_000, 12);
    import_ok(&db.url(), &v1, "ds");

    let servers = [Server::start(&db.url(), &[]), Server::start(&db.url(), &[])];
    let c = client();
    let a = view(&c, &servers[0].base).await;
    assert_eq!(a.count, 2_000);
    assert_eq!(
        view(&c, &servers[1].base).await,
        a,
        "two servers, two answers"
    );

    let loads: Vec<Load> = servers
        .iter()
        .map(|s| Load::start(&s.base, &[2_000, 3_000]))
        .collect();
    // Let the clients get going before the switch.
    while loads.iter().any(|l| l.done() < 20) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let url = db.url();
    tokio::task::spawn_blocking(move || import_ok(&url, &v2, "ds"))
        .await
        .expect("import task");

    let mut after = Vec::new();
    for (name, s) in ["first", "second"].iter().zip(&servers) {
        let Some((v, took)) =
            wait_for_new_version(&c, &s.base, a.version, Duration::from_secs(10)).await
        else {
            panic!(
                "the {name} server still serves version {} 10 s after the import ended; its log:\n{}",
                a.version,
                s.log_tail()
            );
        };
        eprintln!("the {name} server served the new version {took:?} after the importer exited");
        assert_eq!(v.count, 3_000, "{name} server: the new version's count");
        assert_ne!(
            v.items_etag, a.items_etag,
            "{name} server: items ETag unchanged"
        );
        assert_ne!(
            v.tile_etag, a.tile_etag,
            "{name} server: tile ETag unchanged"
        );
        assert_ne!(
            v.tile_query, a.tile_query,
            "{name} server: TileJSON URL unchanged"
        );
        after.push(v);
    }
    assert_eq!(
        after[0], after[1],
        "after the import the two servers differ"
    );
    // Some load on the new version too, then no failure anywhere.
    let marks: Vec<u64> = loads.iter().map(Load::done).collect();
    while loads.iter().zip(&marks).any(|(l, m)| l.done() < m + 20) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for ((name, load), s) in ["first", "second"].iter().zip(loads).zip(&servers) {
        let (done, failures) = load.finish().await;
        eprintln!("the {name} server answered {done} requests during the switch");
        assert!(
            failures.is_empty(),
            "the {name} server failed {} requests during the switch, first: {:?}; its log:\n{}",
            failures.len(),
            &failures[..failures.len().min(5)],
            s.log_tail()
        );
    }
}

/// Feature tables in schema `tessera` that neither a dataset nor a retirement names.
fn stray_tables(db: &str) -> String {
    psql(
        db,
        "SELECT string_agg(c.relname, ' ' ORDER BY c.relname) FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'tessera' AND c.relkind = 'r' AND c.relname ~ '^f_[0-9]+$'
           AND substr(c.relname, 3)::bigint NOT IN (SELECT gen FROM tessera.datasets)
           AND substr(c.relname, 3)::bigint NOT IN (SELECT gen FROM tessera.retired)",
    )
}

/// The version of `ds` in the catalog table and the rows of the table it names.
fn stored(db: &str) -> (i64, u64) {
    let version: i64 = psql(db, "SELECT version FROM tessera.datasets WHERE id = 'ds'")
        .parse()
        .expect("a version");
    let generation = psql(db, "SELECT gen FROM tessera.datasets WHERE id = 'ds'");
    // The table name comes from an integer the catalog stored.
    let generation: i64 = generation.parse().expect("a generation");
    let rows = psql(db, &format!("SELECT count(*) FROM tessera.f_{generation}"));
    (version, rows.parse().expect("a count"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_importer_leaves_the_previous_version() {
    let Some(pg) = pg_server("a_killed_importer_leaves_the_previous_version") else {
        return;
    };
    let db = TestDb::create(&pg);
    let url = db.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let p = |n: &str| dir.path().join(n);
    let (small, big, probe) = (p("small.csv"), p("big.csv"), p("probe.csv"));
    write_csv(&small, 2_000, 21);
    write_csv(&big, BIG_ROWS, 22);
    write_csv(&probe, 50, 23);
    // Kill moments are fractions of a whole import's time here.
    let full = import_ok(&url, &big, "timing");
    import_ok(&url, &small, "ds");
    let server = Server::start(&url, &[]);
    let c = client();
    let mut before = view(&c, &server.base).await;
    assert_eq!(before.count, 2_000);

    let mut rng = Rng(0x5EED_0010);
    // Two rounds each early (reading, creating the table), in the COPY, and late (index,
    // switch, commit); each at a seeded place within its band.
    let bands = [
        (0.0, 0.15),
        (0.0, 0.15),
        (0.3, 0.6),
        (0.3, 0.6),
        (0.75, 1.05),
        (0.75, 1.05),
    ];
    let (mut kills, mut kept) = (0, 0);
    for (round, (lo, hi)) in bands.into_iter().enumerate() {
        let delay = full.mul_f64(lo + (hi - lo) * rng.unit());
        let mut child = import_cmd(&url, &big, "ds").spawn().expect("spawn import");
        tokio::time::sleep(delay).await;
        let killed = kill_9(&mut child);
        let what = format!("round {round}, kill after {delay:?} of {full:?}");

        // The running server serves either the previous version or the whole new one.
        let now = view(&c, &server.base).await;
        if now == before {
            kept += u32::from(killed);
        } else {
            assert_eq!(
                now.count, BIG_ROWS,
                "{what}: neither the previous version ({before:?}) nor the whole new one: {now:?}"
            );
            assert_ne!(
                now.items_etag, before.items_etag,
                "{what}: new data, old ETag"
            );
            assert_ne!(now.version, before.version, "{what}: new data, old version");
        }
        kills += u32::from(killed);
        let outcome = match (killed, now == before) {
            (false, _) => "had already exited",
            (true, true) => "killed; previous version kept",
            (true, false) => "killed after its commit; new version served",
        };
        eprintln!("{what}: {outcome}");
        // The database says the same, and holds no table of the killed import.
        assert_eq!(
            stored(&url),
            (now.version, now.count),
            "{what}: catalog table"
        );
        assert_eq!(stray_tables(&url), "", "{what}: stray tables");
        // Its lock is given back: another import of the same dataset goes through (a
        // hang here fails after 5 minutes), and one of another dataset too.
        import_ok(&url, &probe, "probe");
        before = now;
    }
    eprintln!(
        "{kills} of {} importers killed while running, {kept} of them before their commit",
        bands.len()
    );
    assert!(
        kills >= 4,
        "only {kills} importers were still running when killed"
    );
    assert!(kept >= 2, "only {kept} kills landed before the commit");

    // A whole import after the kills, then a fresh process sees the catalog clean.
    import_ok(&url, &big, "ds");
    drop(server);
    let server = Server::start(&url, &[]);
    let now = view(&c, &server.base).await;
    assert_eq!(now.count, BIG_ROWS);
    assert_eq!(stored(&url), (now.version, BIG_ROWS));
    assert_eq!(stray_tables(&url), "", "after a fresh start");
    import_ok(&url, &small, "ds");
    let (v, took) = wait_for_new_version(&c, &server.base, now.version, Duration::from_secs(10))
        .await
        .expect("the server follows the last import");
    eprintln!("the last import was served {took:?} after the importer exited");
    assert_eq!(v.count, 2_000);
}

/// The streaming replica of `tests/pg/replica.sh`, destroyed when dropped.
struct Replica {
    url: String,
}

fn replica_script(arg: &str) -> Result<String, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pg/replica.sh");
    let out = Command::new("bash")
        .args([script, arg])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {script}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{script} {arg} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    Ok(stdout.lines().last().unwrap_or("").trim().to_owned())
}

impl Replica {
    fn start() -> Self {
        let url = replica_script("start").unwrap_or_else(|e| panic!("{e}"));
        assert!(
            url.starts_with("postgresql://") && url.ends_with('/'),
            "replica URL {url}"
        );
        Self { url }
    }

    async fn run(arg: &'static str) {
        tokio::task::spawn_blocking(move || replica_script(arg))
            .await
            .expect("replica task")
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Err(e) = replica_script("destroy") {
            eprintln!("{e}");
        }
    }
}

/// Transactions the replica has counted in database `name` (its read snapshots among them).
fn replica_transactions(replica: &str, name: &str) -> u64 {
    let sql = format!(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{name}'"
    );
    psql(&format!("{replica}postgres"), &sql)
        .parse()
        .unwrap_or(0)
}

async fn health(c: &reqwest::Client, base: &str) -> (u16, Json) {
    let r = c
        .get(format!("{base}/health"))
        .send()
        .await
        .expect("GET /health");
    let status = r.status().as_u16();
    let text = r.text().await.expect("/health body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("/health answered {status} with no JSON ({e}): {text}"));
    (status, body)
}

/// The `/health` entry of the endpoint with `role`.
fn endpoint<'a>(h: &'a Json, role: &str) -> &'a Json {
    h["endpoints"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["role"] == role))
        .unwrap_or_else(|| panic!("no {role} endpoint in /health: {h}"))
}

fn reads(h: &Json, role: &str) -> u64 {
    endpoint(h, role)["reads"]
        .as_u64()
        .unwrap_or_else(|| panic!("no reads counter for the {role} in /health: {h}"))
}

/// Requests `n` different items pages (different offsets, so no cache answers them).
async fn distinct_reads(c: &reqwest::Client, base: &str, n: u64, round: u64) {
    for i in 0..n {
        let offset = round * 100 + i;
        get_ok(
            c,
            &format!("{base}/collections/ds/items?limit=3&offset={offset}"),
        )
        .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_move_off_a_stopped_replica_and_back() {
    let Some(pg) = pg_server("reads_move_off_a_stopped_replica_and_back") else {
        return;
    };
    let replica = Replica::start();
    let db = TestDb::create(&pg);
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("v1.csv");
    write_csv(&csv, 2_000, 31);
    import_ok(&db.url(), &csv, "ds");
    // The replica has replayed the import before the server starts.
    let on_replica = db.url_on(&replica.url);
    let replayed = wait_until(Duration::from_secs(60), async || {
        psql_try(
            &on_replica,
            "SELECT count(*) FROM tessera.datasets WHERE id = 'ds'",
        )
        .is_ok_and(|n| n == "1")
    })
    .await;
    assert!(
        replayed.is_some(),
        "the replica did not replay the import within 60 s"
    );

    let server = Server::start(&db.url(), std::slice::from_ref(&on_replica));
    let c = client();
    let (status, h) = health(&c, &server.base).await;
    assert_eq!(status, 200, "{h}");
    assert_eq!(h["status"], "ok", "{h}");
    assert_eq!(h["backend"], "postgresql", "{h}");
    assert_eq!(h["ready"], true, "{h}");
    for role in ["primary", "replica"] {
        let e = endpoint(&h, role);
        assert_eq!(e["up"], true, "{h}");
        assert!(e["error"].is_null(), "{h}");
        let location = e["location"].as_str().expect("location");
        assert!(!location.contains(":tessera@"), "password shown: {h}");
    }

    // Reads are the replica's: the server's counter and the replica's own statistics rise.
    let (before, xacts) = (
        reads(&h, "replica"),
        replica_transactions(&replica.url, &db.name),
    );
    distinct_reads(&c, &server.base, 30, 0).await;
    let h = health(&c, &server.base).await.1;
    assert!(
        reads(&h, "replica") >= before + 30,
        "reads not on the replica: {h}"
    );
    let seen = wait_until(Duration::from_secs(10), async || {
        replica_transactions(&replica.url, &db.name) >= xacts + 30
    })
    .await;
    assert!(seen.is_some(), "the replica's statistics show no reads");

    // Stopped under load: the primary answers, nothing fails, /health says degraded.
    let load = Load::start(&server.base, &[2_000]);
    while load.done() < 30 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Replica::run("stop").await;
    let mark = load.done();
    while load.done() < mark + 60 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, h) = health(&c, &server.base).await;
    assert_eq!(status, 200, "reads are served with the replica down: {h}");
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["ready"], true, "{h}");
    assert_eq!(endpoint(&h, "replica")["up"], false, "{h}");
    assert!(endpoint(&h, "replica")["error"].is_string(), "{h}");
    assert_eq!(endpoint(&h, "primary")["up"], true, "{h}");
    let on_primary = reads(&h, "primary");
    distinct_reads(&c, &server.base, 10, 1).await;
    let h = health(&c, &server.base).await.1;
    assert!(
        reads(&h, "primary") >= on_primary + 10,
        "reads not on the primary: {h}"
    );

    // Back: within a few seconds /health says so and the reads return to it.
    Replica::run("resume").await;
    let back = wait_until(Duration::from_secs(20), async || {
        let (status, h) = health(&c, &server.base).await;
        status == 200 && h["status"] == "ok" && endpoint(&h, "replica")["up"] == true
    })
    .await;
    let back = back.unwrap_or_else(|| {
        panic!(
            "the resumed replica is not up in /health after 20 s; server log:\n{}",
            server.log_tail()
        )
    });
    eprintln!("/health saw the resumed replica up {back:?} after it started");
    let (before, xacts) = (
        reads(&health(&c, &server.base).await.1, "replica"),
        replica_transactions(&replica.url, &db.name),
    );
    distinct_reads(&c, &server.base, 30, 2).await;
    let h = health(&c, &server.base).await.1;
    assert!(
        reads(&h, "replica") >= before + 30,
        "reads did not return to the replica: {h}"
    );
    let seen = wait_until(Duration::from_secs(10), async || {
        replica_transactions(&replica.url, &db.name) >= xacts + 30
    })
    .await;
    assert!(
        seen.is_some(),
        "the resumed replica's statistics show no reads"
    );

    let (done, failures) = load.finish().await;
    eprintln!("{done} requests answered while the replica stopped and resumed");
    assert!(
        failures.is_empty(),
        "{} requests failed while the replica stopped and resumed, first: {:?}; server log:\n{}",
        failures.len(),
        &failures[..failures.len().min(5)],
        server.log_tail()
    );
    drop(server);
    drop(db);
    drop(replica);
}
