//! Small statements shared by the catalog, its snapshots and its writers.

use super::endpoint::Endpoint;
use super::{LOCK_SPACE, RETIRE_GRACE_SECONDS};
use crate::store::StoreError;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tokio_postgres::{AsyncMessage, Client};

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Db(describe(&e).into())
    }
}

/// The server's own message when there is one (tokio-postgres's Display says only
/// "db error"), else the client's.
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{}: {} ({detail})", db.code().code(), db.message()),
            None => format!("{}: {}", db.code().code(), db.message()),
        },
        None => e.to_string(),
    }
}

/// Whether `e` says the server or the connection went away (so another server may answer
/// the same read), rather than that the statement itself failed.
pub(super) fn is_connection_error(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.as_db_error() {
        // 08: connection exception; 57: operator intervention (shutdown, terminated);
        // 40001 on a standby: cancelled by a conflict with recovery.
        Some(db) => {
            let code = db.code().code();
            // 57014 is a cancel asked by Tessera itself (a request's time limit).
            (code.starts_with("08") || code.starts_with("57") || code == "40001") && code != "57014"
        }
        None => true,
    }
}

pub(super) async fn read_stamp(client: &Client) -> Result<i64, StoreError> {
    Ok(client
        .query_one("SELECT stamp FROM tessera.state", &[])
        .await?
        .get(0))
}

/// Raises the stamp inside the caller's transaction and announces it at commit.
pub(super) async fn bump_stamp(client: &Client) -> Result<i64, StoreError> {
    let stamp: i64 = client
        .query_one(
            "UPDATE tessera.state SET stamp = stamp + 1 RETURNING stamp",
            &[],
        )
        .await?
        .get(0);
    client.batch_execute("NOTIFY tessera_changes").await?;
    Ok(stamp)
}

/// Takes the lock that serialises writes to dataset `id` until the transaction ends.
pub(super) async fn lock_dataset(client: &Client, id: &str) -> Result<(), StoreError> {
    client
        .execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&LOCK_SPACE, &id],
        )
        .await?;
    Ok(())
}

/// Deletes dataset `id`; the new stamp if it existed.
pub(super) async fn delete(client: &Client, id: &str) -> Result<Option<i64>, StoreError> {
    client.batch_execute("BEGIN").await?;
    let answer = async {
        lock_dataset(client, id).await?;
        let row = client
            .query_opt(
                "DELETE FROM tessera.datasets WHERE id = $1 RETURNING gen",
                &[&id],
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let generation: i64 = row.get(0);
        retire(client, generation).await?;
        Ok::<_, StoreError>(Some(bump_stamp(client).await?))
    }
    .await;
    match answer {
        Ok(stamp) => {
            client.batch_execute("COMMIT").await?;
            drop_retired(client).await;
            Ok(stamp)
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// Marks the table of a replaced version for dropping after the grace period.
pub(super) async fn retire(client: &Client, generation: i64) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO tessera.retired (gen) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&generation],
        )
        .await?;
    Ok(())
}

/// Drops retired tables whose grace period is over. Best effort and never waiting: a
/// table a reader still holds is left for the next time.
pub(super) async fn drop_retired(client: &Client) {
    let due = client
        .query(
            "SELECT gen FROM tessera.retired WHERE at < now() - make_interval(secs => $1)",
            &[&(RETIRE_GRACE_SECONDS as f64)],
        )
        .await;
    let Ok(due) = due else { return };
    for row in due {
        let generation: i64 = row.get(0);
        // The table name is built from an integer the catalog itself allotted.
        let sql = format!(
            "BEGIN; SET LOCAL lock_timeout = '200ms'; DROP TABLE IF EXISTS tessera.f_{generation};
             DELETE FROM tessera.retired WHERE gen = {generation}; COMMIT;"
        );
        if let Err(e) = client.batch_execute(&sql).await {
            let _ = client.batch_execute("ROLLBACK").await;
            tracing::debug!(generation, error = %describe(&e), "retired table still in use; dropped later");
        }
    }
}

/// Drops feature tables that no dataset and no retirement names (left by hand or by an
/// older Tessera), then retired tables that are due. An import in progress is invisible
/// here: its table exists only inside its own transaction.
pub(super) async fn drop_orphans(client: &Client) -> Result<(), StoreError> {
    let rows = client
        .query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'tessera' AND c.relkind = 'r' AND c.relname ~ '^f_[0-9]+$'
               AND substr(c.relname, 3)::bigint NOT IN (SELECT gen FROM tessera.datasets)
               AND substr(c.relname, 3)::bigint NOT IN (SELECT gen FROM tessera.retired)",
            &[],
        )
        .await?;
    for row in rows {
        let name: String = row.get(0);
        // Only names matching ^f_[0-9]+$ reach here.
        tracing::warn!(table = %name, "dropping a feature table no dataset uses");
        let sql = format!(
            "SET lock_timeout = '200ms'; DROP TABLE IF EXISTS tessera.{name}; RESET lock_timeout;"
        );
        if let Err(e) = client.batch_execute(&sql).await {
            tracing::warn!(table = %name, error = %describe(&e), "could not drop an unused table");
        }
    }
    drop_retired(client).await;
    Ok(())
}

/// One listening session: `LISTEN tessera_changes` on a connection of its own, reading
/// the stamp at each notification and every [`super::POLL_EVERY`]. Returns when the
/// connection breaks.
pub(super) async fn listen(
    primary: &Endpoint,
    stamp: &Arc<AtomicI64>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = primary.connect_raw().await?;
    let notified = Arc::new(tokio::sync::Notify::new());
    let wake = notified.clone();
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => wake.notify_one(),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
        // Wake the loop so it sees the closed client.
        wake.notify_one();
    });
    client.batch_execute("LISTEN tessera_changes").await?;
    primary.mark_up();
    let answer = loop {
        match client
            .query_one("SELECT stamp FROM tessera.state", &[])
            .await
        {
            Ok(row) => {
                stamp.fetch_max(row.get(0), Ordering::AcqRel);
            }
            Err(e) => break Err(e),
        }
        tokio::select! {
            _ = notified.notified() => {}
            _ = tokio::time::sleep(super::POLL_EVERY) => {}
        }
    };
    driver.abort();
    answer
}
