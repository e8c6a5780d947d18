//! More concurrent reads than the read pool has connections.

use super::*;

/// With a pool of 2 and 48 reads at once, each read waits for the next connection given
/// back and every one answers; no more than the pool's connections are opened. (Idle
/// connections once kept the pool's permits, so waiting reads slept out their whole 10 s
/// and got a 503.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_reads_than_pooled_connections_all_answer() {
    let Some(pg) = pg_server("more_reads_than_pooled_connections_all_answer") else {
        return;
    };
    let db = TestDb::create(&pg);
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("v1.csv");
    write_csv(&csv, 2_000, 7);
    import_ok(&db.url(), &csv, "ds");
    let server = Server::start_with_env(&db.url(), &[], &[("TESSERA_DB_POOL", "2")]);
    let c = client();
    for round in 0..3 {
        let tasks: Vec<_> = (0..48)
            .map(|i| {
                let c = c.clone();
                let url = format!(
                    "{}/collections/ds/items?limit=5&offset={}",
                    server.base,
                    round * 100 + i
                );
                tokio::spawn(async move {
                    let r = c.get(&url).send().await.map_err(|e| e.to_string())?;
                    Ok::<_, String>((r.status().as_u16(), url))
                })
            })
            .collect();
        for t in tasks {
            let (status, url) = t.await.expect("task").expect("request");
            assert_eq!(
                status,
                200,
                "GET {url} with 48 reads on 2 connections; server log:\n{}",
                server.log_tail()
            );
        }
    }
    let open: u64 = psql(
        &db.url(),
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'tessera'",
    )
    .parse()
    .expect("a count");
    // Two read connections and the one that listens for changes.
    assert!(open <= 3, "{open} connections open with TESSERA_DB_POOL=2");
}
