//! Slow and greedy clients: CSV exports that are never read, exports during re-imports,
//! heavy requests past their time limit. Real servers on 127.0.0.1:0, raw TCP clients.

use crate::support::{TestCatalog, request};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera::http::lanes::{LaneConfig, Lanes, TimeoutListener};
use tessera::http::{AppState, router};
use tessera::render::TileConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server with the heavy lane set by `lanes`, served through the same write-idle
/// listener as `tessera serve`.
struct Server {
    addr: SocketAddr,
    data: TestCatalog,
    client: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    async fn start(lanes: LaneConfig) -> Self {
        let data = TestCatalog::new();
        let mut state = AppState::new(data.catalog.clone(), None, TileConfig::default());
        let write_idle = lanes.write_idle;
        state.lanes = Arc::new(Lanes::new(lanes));
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let listener = TimeoutListener::new(tcp, write_idle);
        let task = tokio::spawn(async move {
            axum::serve(listener, router(state)).await.unwrap();
        });
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self {
            addr,
            data,
            client,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Status, headers and body of a GET; `Err` when the transfer failed (e.g. a body cut
    /// short: hyper closes the connection rather than end it cleanly).
    async fn get(&self, path: &str) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>), String> {
        let r = self
            .client
            .get(self.url(path))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        let body = r.bytes().await.map_err(|e| format!("body: {e}"))?;
        Ok((status, headers, body.to_vec()))
    }
}

/// `n` deterministic London points with rows wide enough (~350 bytes) that an export of
/// 20,000 of them (7 MB) cannot sit in the socket buffers of a client that never reads.
fn wide_points(data: &TestCatalog, id: &str, n: usize) {
    let mut csv = String::from("longitude,latitude,category,note\n");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let pad = "x".repeat(300);
    for i in 0..n {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let lon = -0.5 + (x >> 40) as f64 / (1u64 << 24) as f64 * 0.7;
        let lat = 51.3 + ((x >> 16) & 0xFF_FFFF) as f64 / (1u64 << 24) as f64 * 0.4;
        csv.push_str(&format!("{lon:.5},{lat:.5},c{},{i} {pad}\n", i % 7));
    }
    let file = data.write(&format!("{id}.csv"), csv);
    data.import(&request(id, &[file]));
}

/// A client that asks for `path` and then stops reading once the response headers are in
/// (a tiny receive buffer, so almost nothing of the body is taken off the server).
async fn slow_reader(addr: SocketAddr, path: &str) -> (tokio::net::TcpStream, String) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut s = socket.connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let read_head = async {
        while !head.ends_with(b"\r\n\r\n") && head.len() < 16 << 10 {
            if s.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
    };
    tokio::time::timeout(Duration::from_secs(120), read_head)
        .await
        .expect("the response head arrives");
    (s, String::from_utf8_lossy(&head).into_owned())
}

/// A Web Mercator tile holding (lon, lat) at zoom z.
fn tile_of(lon: f64, lat: f64, z: u8) -> (u8, u32, u32) {
    let n = f64::from(1u32 << z);
    let x = ((lon + 180.0) / 360.0 * n) as u32;
    let r = lat.to_radians();
    let y = ((1.0 - (r.tan() + 1.0 / r.cos()).ln() / std::f64::consts::PI) / 2.0 * n) as u32;
    (z, x, y)
}

/// Runs tiles, small pages, a collection document and an asset from `workers` clients
/// for `secs`; returns every latency (all requests must succeed).
async fn light_load(s: &Server, secs: f64, workers: usize) -> Vec<Duration> {
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (client, base) = (s.client.clone(), s.url(""));
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = w as u64 * 7919;
            while Instant::now() < until {
                i += 1;
                let (lon, la) = (-0.5 + (i % 70) as f64 * 0.01, 51.3 + (i % 40) as f64 * 0.01);
                let (z, x, y) = tile_of(lon, la, 9 + (i % 7) as u8);
                let path = match i % 4 {
                    0 | 1 => format!("/tiles/wide/{z}/{x}/{y}.mvt"),
                    2 => format!("/collections/wide/items?limit=10&offset={}", i % 500),
                    _ => "/assets/map.css".to_owned(),
                };
                let t = Instant::now();
                let r = client.get(format!("{base}{path}")).send().await;
                let ok = match r {
                    Ok(r) => {
                        let st = r.status().as_u16();
                        r.bytes().await.is_ok() && (st == 200 || st == 204)
                    }
                    Err(_) => false,
                };
                assert!(ok, "GET {path} failed under load");
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

fn p99(lat: &mut [Duration]) -> Duration {
    lat.sort();
    lat[(lat.len() * 99).div_ceil(100).saturating_sub(1)]
}

const SLOW_READERS: usize = 20;

/// Issue 8: 16 clients that opened `items?f=csv` and never read pinned every blocking
/// thread (and a SQLite read transaction each), which stopped every database-backed
/// route and `/assets`. Now exports are spooled and the slow readers hold only that.
#[test]
fn sixteen_slow_csv_readers_do_not_stall_other_routes_regression() {
    let config = LaneConfig {
        heavy: 4,
        queue_wait: Duration::from_secs(120),
        exports: SLOW_READERS,
        ..LaneConfig::default()
    };
    // The runtime of `tessera serve`, with its bounded blocking pool.
    let runtime = tessera::http::lanes::runtime(&config).unwrap();
    runtime.block_on(slow_readers_and_light_load(config));
}

async fn slow_readers_and_light_load(config: LaneConfig) {
    let s = Server::start(config).await;
    wide_points(&s.data, "wide", 20_000);
    let mut unloaded = light_load(&s, 2.0, 4).await;
    let export = "/collections/wide/items?f=csv";
    let readers: Vec<_> = (0..SLOW_READERS)
        .map(|_| tokio::spawn(slow_reader(s.addr, export)))
        .collect();
    let (mut slow, mut heads) = (Vec::new(), Vec::new());
    for r in readers {
        let (stream, head) = r.await.unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "slow reader got {head}");
        slow.push(stream);
        heads.push(head);
    }
    let mut loaded = light_load(&s, 2.0, 4).await;
    for head in heads {
        let len: u64 = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|v| v.trim().parse().ok())
            .expect("a spooled export has its length");
        assert!(
            len > 6 << 20,
            "the export ({len} B) must outgrow socket buffers"
        );
    }
    let (n_u, n_l) = (unloaded.len(), loaded.len());
    let (base, with) = (p99(&mut unloaded), p99(&mut loaded));
    println!(
        "light load p99: {:.1} ms without, {:.1} ms with {SLOW_READERS} slow CSV readers ({n_u} / {n_l} requests)",
        base.as_secs_f64() * 1e3,
        with.as_secs_f64() * 1e3
    );
    assert!(
        with < base * 10 + Duration::from_millis(50),
        "p99 {with:?} with slow readers vs {base:?} without"
    );

    // Every export slot is taken: a further export is refused at once, clearly.
    let (status, headers, body) = s.get(export).await.unwrap();
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(
        headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(headers["content-type"], "application/problem+json");
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["status"], 503);

    // The slow readers leave: their slots come back and exports work again.
    drop(slow);
    export_works_again(&s, export, 20_000, "exports stay refused").await;
}

/// Waits (up to 20 s) until `export` is answered 200 with all `rows`, else fails with `why`.
async fn export_works_again(s: &Server, export: &str, rows: usize, why: &str) {
    let start = Instant::now();
    loop {
        let (status, _, body) = s.get(export).await.unwrap();
        if status == 200 {
            assert_eq!(bytecount_lines(&body), 1 + rows);
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{why}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn bytecount_lines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

/// A client that stops reading is cut after the write-idle limit, which frees its
/// export slot (rather than holding it for as long as it stays connected).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_csv_reader_is_disconnected_after_write_idle_and_frees_its_slot() {
    let s = Server::start(LaneConfig {
        exports: 1,
        write_idle: Duration::from_millis(500),
        ..LaneConfig::default()
    })
    .await;
    wide_points(&s.data, "wide", 20_000);
    let export = "/collections/wide/items?f=csv";
    let (mut stalled, head) = slow_reader(s.addr, export).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(s.get(export).await.unwrap().0, 503, "the one slot is taken");
    export_works_again(&s, export, 20_000, "the idle reader kept its slot").await;
    // What the stalled client finally reads is cut short: never a clean, complete file.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stalled.read_to_end(&mut rest)).await;
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(
        matches!(read, Ok(Err(_))) || rest.len() < len,
        "{} of {len} bytes",
        rest.len()
    );
}

/// A heavy request past its time limit is cut with a 503 problem and frees its lane.
#[tokio::test]
async fn heavy_request_past_its_time_limit_is_cut_regression() {
    let s = Server::start(LaneConfig {
        heavy: 1,
        time_limit: Duration::from_millis(20),
        ..LaneConfig::default()
    })
    .await;
    wide_points(&s.data, "wide", 20_000);
    for _ in 0..3 {
        let (status, headers, body) = s.get("/collections/wide/items?f=csv").await.unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, 503, "{problem}");
        assert!(headers.contains_key("retry-after"));
        let detail = problem["detail"].as_str().unwrap();
        // Not "busy": the one lane was given back after each cut.
        assert!(detail.contains("longer than its limit"), "{detail}");
    }
    let (status, _, _) = s.get("/collections/wide/items?limit=5").await.unwrap();
    assert_eq!(status, 200, "light requests do not take the heavy lane");
}

/// Issue 8: an export resolved the dataset in one snapshot and scanned it in a second,
/// so during re-imports some exports had one version's header and another's rows, or
/// were cut after a 200. Now every export is one snapshot, whole or visibly failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn csv_export_uses_one_snapshot_during_reimport_regression() {
    let s = Arc::new(Server::start(LaneConfig::default()).await);
    let version = |tag: &str, fields: &str, n: usize| {
        let mut csv = format!("longitude,latitude,{fields}\n");
        let extra = if fields.contains(',') { ",x" } else { "" };
        for i in 0..n {
            csv.push_str(&format!(
                "{},{},{tag}{extra}\n",
                (i % 100) as f64 * 0.01,
                (i / 100) as f64 * 0.01
            ));
        }
        s.data.write(&format!("{tag}.csv"), csv)
    };
    let a = request("flip", &[version("A", "va,pa", 3_000)]);
    let b = request("flip", &[version("B", "vb", 5_000)]);
    s.data.import(&a);
    let run_for = Duration::from_secs(4);
    let importer = {
        let catalog = s.data.catalog.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut n = 0;
            while start.elapsed() < run_for {
                let req = if n % 2 == 0 { &b } else { &a };
                tessera::import::run(catalog.as_ref(), req, &mut |_| {}).expect("re-import");
                n += 1;
            }
            n
        })
    };
    let mut exporters = Vec::new();
    for _ in 0..3 {
        let s = s.clone();
        exporters.push(tokio::spawn(async move {
            let (mut seen, mut failed, mut busy, mut wrong) = ([0usize; 2], 0, 0, Vec::new());
            let start = Instant::now();
            while start.elapsed() < run_for {
                match s.get("/collections/flip/items?f=csv").await {
                    Err(_) => failed += 1,
                    Ok((503, _, _)) => busy += 1,
                    Ok((200, _, body)) => match check_version(&body) {
                        Ok(v) => seen[v] += 1,
                        Err(e) => wrong.push(e),
                    },
                    Ok((st, _, body)) => {
                        wrong.push(format!("{st}: {}", String::from_utf8_lossy(&body)))
                    }
                }
            }
            (seen, failed, busy, wrong)
        }));
    }
    let mut totals = ([0usize; 2], 0, 0, Vec::new());
    for e in exporters {
        let (seen, failed, busy, wrong) = e.await.unwrap();
        totals.0[0] += seen[0];
        totals.0[1] += seen[1];
        totals.1 += failed;
        totals.2 += busy;
        totals.3.extend(wrong);
    }
    let imports = importer.join().unwrap();
    let ([a_seen, b_seen], failed, busy, wrong) = totals;
    println!(
        "{imports} re-imports; exports: {a_seen} of version A, {b_seen} of B, {failed} failed visibly, {busy} refused busy"
    );
    assert!(
        wrong.is_empty(),
        "{} mixed or short exports: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(3)]
    );
    assert!(
        a_seen > 0 && b_seen > 0,
        "the exports must overlap both versions"
    );
    assert_eq!(
        failed, 0,
        "a spooled export fails before its status, not midway"
    );
}

/// Which version a complete export is of (0: A, 1: B), or what is wrong with it.
fn check_version(body: &[u8]) -> Result<usize, String> {
    let mut rd = csv::ReaderBuilder::new().flexible(true).from_reader(body);
    let header: Vec<String> = rd
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(str::to_owned)
        .collect();
    let (v, tag, width, count) = match header.last().map(String::as_str) {
        Some("pa") => (0, "A", 7, 3_000),
        Some("vb") => (1, "B", 6, 5_000),
        _ => return Err(format!("unknown header {header:?}")),
    };
    let mut n = 0;
    for r in rd.records() {
        let r = r.map_err(|e| e.to_string())?;
        if r.len() != width || &r[5] != tag {
            return Err(format!("header of {tag}, row {r:?}"));
        }
        n += 1;
    }
    if n != count {
        return Err(format!("version {tag} with {n} rows of {count}"));
    }
    Ok(v)
}
