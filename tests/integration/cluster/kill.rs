//! `kill -9` of importers at seeded moments: the previous version stays whole, no
//! table of the killed import is left, and the next import and start are clean.

use super::*;

/// Rows of the file whose imports are killed.
const BIG_ROWS: u64 = 200_000;

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

/// When in an import to kill it.
enum Moment {
    /// At a seeded place between these fractions of a whole import's time.
    Time(f64, f64),
    /// Once the server has received this share of the rows.
    Copied(f64),
    /// Once the new version is visible in the catalog table.
    Committed,
}

/// Rows the server has received in a COPY into this database now (0 when none runs).
fn copied(db: &str) -> u64 {
    psql(
        db,
        "SELECT coalesce(max(tuples_processed), 0) FROM pg_stat_progress_copy WHERE datname = current_database()",
    )
    .parse()
    .unwrap_or(0)
}

/// Waits (up to 60 s) until no other session of database `url` is in a transaction,
/// twice in a row: a killed importer's transaction has then ended, one way or the other.
async fn settle(url: &str, what: &str) {
    let sql = "SELECT count(*) FROM pg_stat_activity
               WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL";
    let mut zeros = 0;
    let settled = wait_until(Duration::from_secs(60), async || {
        zeros = if psql(url, sql) == "0" { zeros + 1 } else { 0 };
        zeros >= 2
    })
    .await;
    assert!(
        settled.is_some(),
        "{what}: a transaction is still open 60 s after the kill"
    );
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
    // Kills at seeded moments: two early (reading the file, creating the table) and two
    // late (index, switch) as fractions of a whole import's time; two in the COPY, once
    // the server has taken a seeded share of the rows; two once the new version is in
    // `tessera.datasets` (its retired table is left for a later start to drop).
    let moments = [
        Moment::Time(0.0, 0.15),
        Moment::Time(0.0, 0.15),
        Moment::Copied(0.1 + 0.8 * rng.unit()),
        Moment::Copied(0.1 + 0.8 * rng.unit()),
        Moment::Time(0.65, 0.9),
        Moment::Time(0.65, 0.9),
        Moment::Committed,
        Moment::Committed,
    ];
    let (mut kills, mut kept, mut in_copy) = (0, 0, 0);
    for (round, moment) in moments.iter().enumerate() {
        let old = stored(&url).0;
        let mut child = import_cmd(&url, &big, "ds").spawn().expect("spawn import");
        let t = Instant::now();
        let limit = Duration::from_secs(300);
        let moment = match *moment {
            Moment::Time(lo, hi) => {
                let delay = full.mul_f64(lo + (hi - lo) * rng.unit());
                tokio::time::sleep(delay).await;
                format!("after {delay:?} of {full:?}")
            }
            Moment::Copied(share) => {
                let rows = (share * BIG_ROWS as f64) as u64;
                while copied(&url) < rows
                    && child.try_wait().expect("try_wait").is_none()
                    && t.elapsed() < limit
                {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                format!("once the server had {rows} rows of the COPY")
            }
            Moment::Committed => {
                while stored(&url).0 == old && t.elapsed() < limit {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                "once the new version was in tessera.datasets".to_owned()
            }
        };
        // Whether the importer was sending rows when it was killed (for the record).
        let copying = psql(
            &url,
            "SELECT count(*) FROM pg_stat_progress_copy WHERE datname = current_database()",
        ) != "0";
        let killed = kill_9(&mut child);
        let what = format!("round {round}, kill {moment}");

        // What the database holds once the killed importer's session has ended (a
        // COMMIT it sent just before it died is still carried out).
        settle(&url, &what).await;
        let (version, rows) = stored(&url);
        // The running server serves that: the previous version or the whole new one.
        let mut now = view(&c, &server.base).await;
        if now.version != version {
            now = wait_for_new_version(&c, &server.base, now.version, Duration::from_secs(10))
                .await
                .unwrap_or_else(|| panic!("{what}: the server does not follow version {version}"))
                .0;
        }
        assert_eq!(
            (now.version, now.count),
            (version, rows),
            "{what}: served vs stored"
        );
        let previous = now == before;
        if !previous {
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
        if moment.starts_with("once the new") {
            assert!(!previous, "{what}: the committed version is not served");
        }
        kills += u32::from(killed);
        kept += u32::from(killed && previous);
        in_copy += u32::from(killed && copying);
        let outcome = match (killed, previous) {
            (false, _) => "had already exited",
            (true, true) if copying => "killed in its COPY; previous version kept",
            (true, true) => "killed; previous version kept",
            (true, false) => "killed after its commit; new version served",
        };
        eprintln!("{what}: {outcome}");
        // No table of the killed import is left.
        assert_eq!(stray_tables(&url), "", "{what}: stray tables");
        // The killed importer's lock is given back: a new import of the same dataset
        // goes through (a hang fails after 5 minutes) and is served.
        import_ok(&url, &probe, "ds");
        let (v, _) = wait_for_new_version(&c, &server.base, now.version, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("{what}: the import after the kill is not served"));
        assert_eq!(v.count, 50, "{what}: the import after the kill");
        before = v;
    }
    eprintln!(
        "{kills} of {} importers killed while running: {kept} before their commit, {in_copy} in the COPY",
        moments.len()
    );
    assert!(
        kills >= 4,
        "only {kills} importers were still running when killed"
    );
    assert!(kept >= 2, "only {kept} kills landed before the commit");
    assert!(in_copy >= 1, "no kill landed in the COPY");

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
