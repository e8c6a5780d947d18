//! Reads on a streaming replica (tests/pg/replica.sh): they move to the primary when
//! it stops, with no failed request, and come back when it resumes.

use super::*;

/// The streaming replica of `tests/pg/replica.sh`, destroyed when dropped.
struct Replica {
    url: String,
}

fn replica_script(args: &[&str]) -> Result<String, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pg/replica.sh");
    let arg = args.join(" ");
    let out = Command::new("bash")
        .arg(script)
        .args(args)
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
    Ok(if arg == "log" {
        stdout.into_owned()
    } else {
        stdout.lines().last().unwrap_or("").trim().to_owned()
    })
}

impl Replica {
    fn start() -> Self {
        let url = replica_script(&["start"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            url.starts_with("postgresql://") && url.ends_with('/'),
            "replica URL {url}"
        );
        Self { url }
    }

    async fn run(args: &'static [&'static str]) {
        tokio::task::spawn_blocking(move || replica_script(args))
            .await
            .expect("replica task")
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Err(e) = replica_script(&["destroy"]) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_move_off_a_stopped_or_lagging_replica_and_back() {
    let Some(pg) = pg_server("reads_move_off_a_stopped_or_lagging_replica_and_back") else {
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
    let mut last = Err(String::new());
    let replayed = wait_until(Duration::from_secs(120), async || {
        last = psql_try(
            &on_replica,
            "SELECT count(*) FROM tessera.datasets WHERE id = 'ds'",
        );
        last.as_deref() == Ok("1")
    })
    .await;
    if replayed.is_none() {
        let lag = psql_try(
            &format!("{pg}postgres"),
            "SELECT string_agg(format('%s %s sent %s replayed %s of %s', client_port, state, sent_lsn, replay_lsn, pg_current_wal_lsn()), '; ') FROM pg_stat_replication",
        );
        let log = replica_script(&["log"]).unwrap_or_else(|e| e);
        panic!(
            "the replica did not replay the import within 120 s (last answer {last:?}); replication: {lag:?}; replica log:\n{log}"
        );
    }

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
    // An idle PostgreSQL 15 backend reports its statistics only after 10 s.
    let seen = wait_until(Duration::from_secs(40), async || {
        replica_transactions(&replica.url, &db.name) >= xacts + 30
    })
    .await;
    assert!(seen.is_some(), "the replica's statistics show no reads");

    // Stopped under load, by a clean shutdown and then as in a crash: the primary
    // answers, nothing fails, /health says degraded; resumed, it takes the reads again.
    let load = Load::start(&server.base, &[2_000]);
    while load.done() < 30 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stops: [&[&str]; 2] = [&["stop", "fast"], &["stop", "immediate"]];
    for (round, stop) in (0u64..).zip(stops) {
        let how = stop[1];
        Replica::run(stop).await;
        let mark = load.done();
        while load.done() < mark + 60 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (status, h) = health(&c, &server.base).await;
        assert_eq!(
            status, 200,
            "{how} stop: reads are served with the replica down: {h}"
        );
        assert_eq!(h["status"], "degraded", "{how} stop: {h}");
        assert_eq!(h["ready"], true, "{h}");
        assert_eq!(endpoint(&h, "replica")["up"], false, "{how} stop: {h}");
        assert!(endpoint(&h, "replica")["error"].is_string(), "{h}");
        assert_eq!(endpoint(&h, "primary")["up"], true, "{h}");
        let on_primary = reads(&h, "primary");
        distinct_reads(&c, &server.base, 10, 1 + 2 * round).await;
        let h = health(&c, &server.base).await.1;
        assert!(
            reads(&h, "primary") >= on_primary + 10,
            "{how} stop: reads not on the primary: {h}"
        );

        // Back: within a few seconds /health says so and the reads return to it.
        Replica::run(&["resume"]).await;
        let back = wait_until(Duration::from_secs(20), async || {
            let (status, h) = health(&c, &server.base).await;
            status == 200 && h["status"] == "ok" && endpoint(&h, "replica")["up"] == true
        })
        .await;
        let back = back.unwrap_or_else(|| {
        panic!(
            "after the {how} stop the resumed replica is not up in /health after 20 s; server log:\n{}",
            server.log_tail()
        )
    });
        eprintln!(
            "after the {how} stop /health saw the resumed replica up {back:?} after it started"
        );
        let (before, xacts) = (
            reads(&health(&c, &server.base).await.1, "replica"),
            replica_transactions(&replica.url, &db.name),
        );
        distinct_reads(&c, &server.base, 30, 2 + 2 * round).await;
        let h = health(&c, &server.base).await.1;
        assert!(
            reads(&h, "replica") >= before + 30,
            "{how} stop: reads did not return to the replica: {h}"
        );
        let seen = wait_until(Duration::from_secs(40), async || {
            replica_transactions(&replica.url, &db.name) >= xacts + 30
        })
        .await;
        assert!(
            seen.is_some(),
            "{how} stop: the resumed replica's statistics show no reads"
        );
    }

    let (done, failures) = load.finish().await;
    eprintln!("{done} requests answered while the replica stopped and resumed");
    assert!(
        failures.is_empty(),
        "{} requests failed while the replica stopped and resumed, first: {:?}; server log:\n{}",
        failures.len(),
        &failures[..failures.len().min(5)],
        server.log_tail()
    );

    // Behind: replay paused on the replica, a new version imported on the primary. The
    // server follows the primary's stamp, skips the replica (it has not replayed that
    // stamp) and reads the primary: never the old data under the new version's ETag.
    let old = view(&c, &server.base).await;
    psql(&on_replica, "SELECT pg_wal_replay_pause()");
    let v2 = dir.path().join("v2.csv");
    write_csv(&v2, 2_500, 32);
    import_ok(&db.url(), &v2, "ds");
    let (new, _) = wait_for_new_version(&c, &server.base, old.version, Duration::from_secs(10))
        .await
        .unwrap_or_else(|| {
            panic!(
                "the new version is not served after 10 s; log:\n{}",
                server.log_tail()
            )
        });
    assert_eq!(new.count, 2_500, "{new:?}");
    assert_ne!(new.items_etag, old.items_etag);
    assert_ne!(new.tile_etag, old.tile_etag);
    assert_eq!(
        psql(
            &on_replica,
            "SELECT version FROM tessera.datasets WHERE id = 'ds'"
        ),
        old.version.to_string(),
        "the paused replica should still hold the old version"
    );
    let h = health(&c, &server.base).await.1;
    let (on_replica_before, on_primary_before) = (reads(&h, "replica"), reads(&h, "primary"));
    for _ in 0..10 {
        assert_eq!(
            view(&c, &server.base).await,
            new,
            "a read served the old version"
        );
        let tile = get_ok(&c, &format!("{}{TILE}?{}", server.base, new.tile_query)).await;
        assert_eq!(etag(&tile), new.tile_etag);
    }
    let h = health(&c, &server.base).await.1;
    assert_eq!(
        endpoint(&h, "replica")["up"],
        true,
        "behind is not down: {h}"
    );
    assert_eq!(
        reads(&h, "replica"),
        on_replica_before,
        "a lagging replica served reads: {h}"
    );
    assert!(reads(&h, "primary") >= on_primary_before + 10, "{h}");

    // Replay resumed: the replica catches up and takes the reads again.
    psql(&on_replica, "SELECT pg_wal_replay_resume()");
    let caught_up = wait_until(Duration::from_secs(30), async || {
        distinct_reads(&c, &server.base, 5, 50).await;
        reads(&health(&c, &server.base).await.1, "replica") > on_replica_before
    })
    .await;
    assert!(
        caught_up.is_some(),
        "reads did not return to the replica after its replay resumed"
    );
    assert_eq!(view(&c, &server.base).await, new);
    drop(server);
    drop(db);
    drop(replica);
}
