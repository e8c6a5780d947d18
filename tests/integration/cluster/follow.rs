//! Two `tessera serve` processes on one database follow an import made by a third.

use super::*;

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
