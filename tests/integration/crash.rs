//! Crash safety with a real `kill -9` of the real binary: during `tessera import`, during a
//! re-import while a server reads the same catalog, and of `tessera serve` under load.
//! After each kill the catalog passes `PRAGMA integrity_check`, the last committed version
//! is served whole (same count and ETag as before the kill unless the import had already
//! committed), and the next import succeeds. Kill moments are seeded, so a failure repeats.
//! On the PostgreSQL pass the same kills run against a database; the checks of the SQLite
//! file itself (integrity_check, free pages, WAL size) apply to the SQLite pass only.

use crate::support::{Backend, TestCatalog};
use serde_json::Value as Json;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tessera::http::{AppState, router};
use tessera::model::DatasetId;
use tessera::render::TileConfig;
use tessera::store::{Catalog, DbLocation};

/// Rows of the generated dataset that imports are killed in.
const BIG_ROWS: usize = 100_000;

/// splitmix64: a seeded, dependency-free source of kill delays and row values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A CSV of `rows` points around London with a category, a date and some text.
fn write_csv(path: &Path, rows: usize, seed: u64) {
    let mut rng = Rng(seed);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create csv"));
    writeln!(out, "id,kind,Date,Longitude,Latitude,note").expect("write");
    let kinds = ["burglary", "theft", "arson", "fraud"];
    for i in 0..rows {
        let lon = -0.5 + rng.unit();
        let lat = 51.2 + rng.unit() * 0.6;
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

fn serve_cmd(db: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.env_remove("TESSERA_DB")
        .env("RUST_LOG", "tessera=info")
        .env("NO_COLOR", "1")
        .args(["serve", "--listen", "127.0.0.1:0", "--no-manifest", "--db"])
        .arg(db);
    cmd
}

fn import_cmd(db: &str, file: &Path, id: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.env_remove("TESSERA_DB")
        .env("RUST_LOG", "tessera=warn")
        .env("NO_COLOR", "1")
        .args(["import"])
        .arg(file)
        .args(["--dataset", id, "--db"])
        .arg(db)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Runs an import to completion and requires success.
fn import_ok(db: &str, file: &Path, id: &str) -> Duration {
    let t = Instant::now();
    let out = import_cmd(db, file, id)
        .stderr(Stdio::piped())
        .output()
        .expect("run tessera import");
    assert!(
        out.status.success(),
        "import of {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed()
}

/// Sends SIGKILL; `true` when the process was still running (a real kill), `false` when
/// it had already exited on its own.
fn kill_9(child: &mut Child) -> bool {
    if child.try_wait().expect("try_wait").is_some() {
        return false;
    }
    child.kill().expect("kill -9");
    let status = child.wait().expect("wait");
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(9)
}

/// SQLite's integrity_check of the catalog file; "ok" on PostgreSQL, which has no file a
/// kill could leave torn (a killed transaction rolls back whole).
fn integrity(data: &TestCatalog) -> String {
    if data.backend() != Backend::Sqlite {
        return "ok".into();
    }
    let conn = rusqlite::Connection::open(data.db_arg()).expect("open catalog after kill");
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check")
}

/// What a client sees of a dataset: the number of features and the items ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Served {
    count: u64,
    etag: String,
}

async fn served(client: &reqwest::Client, base: &str, id: &str) -> Served {
    let url = format!("{base}/collections/{id}/items?limit=1");
    let r = client.get(&url).send().await.expect("GET items");
    assert_eq!(r.status(), 200, "GET {url}");
    let etag = r.headers()["etag"].to_str().expect("etag").to_owned();
    let body: Json = r.json().await.expect("items JSON");
    let count = body["numberMatched"].as_u64().expect("numberMatched");
    Served { count, etag }
}

/// Opens the catalog as a restarted server would and serves it in process on 127.0.0.1:0.
async fn serve_in_process(db: &str) -> (String, tokio::task::JoinHandle<()>) {
    let catalog: Arc<dyn Catalog> = tessera::store::open(&DbLocation::parse(db), &[])
        .expect("reopen catalog after kill")
        .into();
    let state = AppState::new(catalog, None, TileConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        axum::serve(listener, router(state)).await.expect("serve");
    });
    (format!("http://127.0.0.1:{port}"), task)
}

async fn served_after_restart(db: &str, id: &str) -> Served {
    let (base, task) = serve_in_process(db).await;
    let s = served(&client(), &base, id).await;
    task.abort();
    s
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// Checks after a kill that the catalog is whole and serves either the version from
/// before (`before`) or, when the killed import had committed, the complete new one.
/// Returns what is served now and whether it is still the previous version.
fn judge(now: Served, before: &Served, new_count: u64) -> (Served, bool) {
    if now == *before {
        return (now, true);
    }
    assert_eq!(
        now.count, new_count,
        "after a kill the catalog serves neither the previous version ({before:?}) nor the complete new one: {now:?}"
    );
    assert_ne!(now.etag, before.etag, "new data under the old ETag");
    (now, false)
}

struct Fixture {
    data: TestCatalog,
    /// `--db` of `data`: the SQLite file or the PostgreSQL URL of this pass.
    db: String,
    small: PathBuf,
    big: PathBuf,
    probe: PathBuf,
}

/// A catalog holding the small version of `ds`, the files to re-import, and how long a
/// full import of the big file takes here (the kill delays are fractions of it).
fn fixture() -> (Fixture, Duration) {
    let data = TestCatalog::new();
    let db = data.db_arg();
    let p = |n: &str| data.dir.path().join(n);
    let (small, big, probe) = (p("small.csv"), p("big.csv"), p("probe.csv"));
    write_csv(&small, 2_000, 1);
    write_csv(&big, BIG_ROWS, 2);
    write_csv(&probe, 50, 3);
    // Timed on a catalog of its own, of the same backend.
    let full = import_ok(&TestCatalog::new().db_arg(), &big, "ds");
    import_ok(&db, &small, "ds");
    let f = Fixture {
        data,
        db,
        small,
        big,
        probe,
    };
    (f, full)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_import_keeps_the_previous_version() {
    let (f, full) = fixture();
    let mut rng = Rng(0x5EED_0001);
    let mut before = served_after_restart(&f.db, "ds").await;
    assert_eq!(before.count, 2_000);
    let (mut kills, mut kept_previous) = (0, 0);
    for round in 0..10 {
        // Spread over the whole import: reading, staging, writing tables, commit, reclaim
        // (past its usual end too: an import that finished first is not counted as a kill).
        let delay = full.mul_f64(0.05 + rng.unit());
        let mut child = import_cmd(&f.db, &f.big, "ds").spawn().expect("spawn");
        tokio::time::sleep(delay).await;
        let killed = kill_9(&mut child);
        assert_eq!(integrity(&f.data), "ok", "round {round} after {delay:?}");
        let now = served_after_restart(&f.db, "ds").await;
        let (now, previous) = judge(now, &before, BIG_ROWS as u64);
        if killed {
            kills += 1;
            kept_previous += u32::from(previous);
        }
        before = now;
        // The next import succeeds (another dataset: `ds` stays for the next round).
        import_ok(&f.db, &f.probe, "probe");
    }
    eprintln!(
        "{kills} kills during import, {kept_previous} before its commit (full import {full:?})"
    );
    assert!(
        kills >= 5,
        "only {kills} of 10 imports were still running when killed"
    );
    import_ok(&f.db, &f.big, "ds");
    let mut before = served_after_restart(&f.db, "ds").await;
    assert_eq!(before.count, BIG_ROWS as u64);

    // Kills right after the switch commits, while the replaced version's pages are being
    // given back: the new version is served whole and the next open finishes the reclaim.
    let mut after_commit = 0;
    for round in 0..3 {
        let old = generation(&f);
        let mut child = import_cmd(&f.db, &f.big, "ds").spawn().expect("spawn");
        let deadline = Instant::now() + Duration::from_secs(300);
        while generation(&f) == old && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        after_commit += u32::from(kill_9(&mut child));
        assert_eq!(integrity(&f.data), "ok", "round {round} after the commit");
        let now = served_after_restart(&f.db, "ds").await;
        assert_eq!(now.count, BIG_ROWS as u64);
        assert_ne!(now.etag, before.etag, "the committed import is not served");
        if f.data.backend() == Backend::Sqlite {
            assert_eq!(freelist(&f.db), 0, "the reopened catalog left freed pages");
        }
        before = now;
    }
    eprintln!("{after_commit} kills of 3 after the commit, during the reclaim");
    import_ok(&f.db, &f.small, "ds");
    assert_eq!(served_after_restart(&f.db, "ds").await.count, 2_000);
    assert_eq!(integrity(&f.data), "ok");
}

/// Changes when an import of `ds` commits: on SQLite the generation of the tables `ds` is
/// served from, read straight from the file; on PostgreSQL the dataset's version as the
/// test's own catalog sees it (it follows other processes' commits by itself).
fn generation(f: &Fixture) -> i64 {
    if f.data.backend() != Backend::Sqlite {
        let snap = f.data.catalog.snapshot().expect("snapshot");
        let id = DatasetId::parse("ds").expect("id");
        return snap
            .dataset(&id)
            .expect("read dataset")
            .map_or(-1, |d| d.version);
    }
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    rusqlite::Connection::open_with_flags(&f.db, flags)
        .and_then(|c| c.query_row("SELECT gen FROM datasets WHERE id = 'ds'", [], |r| r.get(0)))
        .unwrap_or(-1)
}

fn freelist(db: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).expect("open");
    conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .expect("freelist_count")
}

/// A `tessera serve` child process and the address it listens on.
struct ServeProcess {
    child: Child,
    base: String,
}

impl ServeProcess {
    fn start(db: &str) -> Self {
        let mut child = serve_cmd(db)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tessera serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        // Keeps draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("serving on http://") {
                    let _ = tx.send(line[at + "serving on ".len()..].trim().to_owned());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("tessera serve printed its address");
        Self { child, base }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Readers that request items, counts and tiles until `stop`, failing on any answer
/// other than 200/204 or a count that is neither version's.
fn read_load(
    base: &str,
    counts: [u64; 2],
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..4)
        .map(|k| {
            let (base, stop, done, c) = (base.to_owned(), stop.clone(), done.clone(), client());
            tokio::spawn(async move {
                let paths = [
                    "/collections/ds/items?limit=50".to_owned(),
                    "/collections/ds/items?limit=10&kind=theft".to_owned(),
                    format!("/tiles/ds/{}/{}/{}.mvt", 10, 511 + k % 2, 340),
                    "/collections/ds/items?f=csv&limit=2000".to_owned(),
                ];
                let mut i = k;
                while !stop.load(Ordering::Relaxed) {
                    let path = &paths[i % paths.len()];
                    i += 1;
                    let r = c.get(format!("{base}{path}")).send().await;
                    let r = match r {
                        Ok(r) => r,
                        // The server itself is being killed in one test.
                        Err(_) if stop.load(Ordering::Relaxed) => break,
                        Err(e) => panic!("GET {path}: {e}"),
                    };
                    let status = r.status().as_u16();
                    // Exports may be turned away by a full export lane (503 + Retry-After).
                    let busy = status == 503 && path.contains("f=csv");
                    assert!(
                        matches!(status, 200 | 204) || busy,
                        "GET {path} answered {status}"
                    );
                    if path.ends_with("limit=50") {
                        let body: Json = match r.json().await {
                            Ok(b) => b,
                            Err(_) if stop.load(Ordering::Relaxed) => break,
                            Err(e) => panic!("GET {path}: {e}"),
                        };
                        let n = body["numberMatched"].as_u64().expect("numberMatched");
                        assert!(counts.contains(&n), "GET {path}: a count of {n}");
                    } else {
                        let _ = r.bytes().await;
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_reimport_under_read_load_keeps_serving() {
    let (f, full) = fixture();
    let server = ServeProcess::start(&f.db);
    let c = client();
    let before = served(&c, &server.base, "ds").await;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let load = read_load(
        &server.base,
        [2_000, BIG_ROWS as u64],
        stop.clone(),
        done.clone(),
    );
    let mut rng = Rng(0x5EED_0002);
    let mut before = before;
    let mut kills = 0;
    for round in 0..5 {
        // Under read load the import runs slower than `full`: aim at its first part.
        let delay = full.mul_f64(0.05 + 0.8 * rng.unit());
        let mut child = import_cmd(&f.db, &f.big, "ds").spawn().expect("spawn");
        tokio::time::sleep(delay).await;
        kills += u32::from(kill_9(&mut child));
        assert_eq!(integrity(&f.data), "ok", "round {round} after {delay:?}");
        // The running server, not a fresh one, still serves the committed version.
        let now = served(&c, &server.base, "ds").await;
        before = judge(now, &before, BIG_ROWS as u64).0;
    }
    import_ok(&f.db, &f.small, "ds");
    if f.data.backend() == Backend::Sqlite {
        // The WAL was truncated although the server kept reading (its snapshots are short).
        let wal = file_len(&Path::new(&f.db).with_extension("db-wal"));
        assert!(
            wal < 4 << 20,
            "WAL of {wal} bytes after an import under read load"
        );
    }
    // The server sees other processes' commits within its probe interval.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(served(&c, &server.base, "ds").await.count, 2_000);
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.expect("read load task");
    }
    let requests = done.load(Ordering::Relaxed);
    eprintln!("{kills} kills during re-import under {requests} reads");
    assert!(
        kills >= 3,
        "only {kills} of 5 imports were running when killed"
    );
    assert!(requests > 0, "the read load made no request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_server_under_load_leaves_the_catalog_intact() {
    let (f, _) = fixture();
    let mut rng = Rng(0x5EED_0003);
    let mut before: Option<Served> = None;
    for round in 0..5 {
        let mut server = ServeProcess::start(&f.db);
        let now = served(&client(), &server.base, "ds").await;
        if let Some(b) = &before {
            assert_eq!(
                &now, b,
                "round {round}: the restarted server serves other data"
            );
        }
        before = Some(now);
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let load = read_load(&server.base, [2_000, 2_000], stop.clone(), done.clone());
        tokio::time::sleep(Duration::from_millis(200 + rng.next() % 800)).await;
        stop.store(true, Ordering::Relaxed);
        assert!(
            kill_9(&mut server.child),
            "round {round}: the server had exited"
        );
        for task in load {
            task.await.expect("read load task");
        }
        assert_eq!(integrity(&f.data), "ok", "round {round}");
    }
    import_ok(&f.db, &f.probe, "probe");
    assert_eq!(
        served_after_restart(&f.db, "ds").await,
        before.expect("served")
    );
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// Re-imports give the replaced version's pages back and leave a small WAL (SQLite), while
/// a reader that holds a snapshot across a re-import reads its own version to the end
/// (both backends).
#[test]
fn reimport_reclaims_the_old_version_and_the_wal_regression() {
    use tessera::store::Query;
    let data = TestCatalog::new();
    let sqlite = data.backend() == Backend::Sqlite;
    let db = data.dir.path().join("catalog.db");
    let wal = data.dir.path().join("catalog.db-wal");
    let csv = |seed: u64| {
        let p = data.dir.path().join(format!("v{seed}.csv"));
        write_csv(&p, 50_000, seed);
        p
    };
    let req = |seed: u64| crate::support::request("ds", &[csv(seed)]);
    data.import(&req(1));
    let first = file_len(&db);
    assert!(
        !sqlite || file_len(&wal) < 4 << 20,
        "WAL of {} bytes after the first import",
        file_len(&wal)
    );

    // A reader holds a snapshot of version 1 while version 2 is imported and reclaimed.
    let catalog = data.catalog.clone();
    let (started_tx, started) = std::sync::mpsc::channel();
    let (imported_tx, imported) = std::sync::mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        let snap = catalog.snapshot().expect("snapshot");
        let id = DatasetId::parse("ds").expect("id");
        let ds = snap.dataset(&id).expect("read").expect("dataset");
        let note = ds.field_index("note").expect("note field");
        let (mut rows, mut foreign) = (0u64, 0u64);
        snap.scan(&ds, &Query::default(), &mut |f| {
            if rows == 0 {
                started_tx.send(()).expect("signal");
                imported.recv().expect("import finished");
            }
            rows += 1;
            let v = format!("{:?}", f.values[note]);
            foreign += u64::from(!v.contains("seed 1"));
            true
        })
        .expect("scan of the old version");
        (rows, foreign)
    });
    started.recv().expect("reader started");
    data.import(&req(2));
    imported_tx.send(()).expect("signal");
    let (rows, foreign) = reader.join().expect("reader thread");
    assert_eq!(
        (rows, foreign),
        (50_000, 0),
        "the reader's snapshot lost its version"
    );

    data.import(&req(3));
    let third = file_len(&db);
    let wal_after = file_len(&wal);
    eprintln!(
        "catalog {first} bytes after the first import, {third} after the third; WAL {wal_after}"
    );
    if sqlite {
        assert!(
            third * 2 <= first * 3,
            "catalog grew from {first} to {third} bytes over three imports of the same size"
        );
        assert!(
            wal_after < 4 << 20,
            "WAL of {wal_after} bytes after the import returned"
        );
    }
    assert_eq!(data.info("ds").expect("dataset").feature_count, 50_000);
    assert_eq!(integrity(&data), "ok");
}
