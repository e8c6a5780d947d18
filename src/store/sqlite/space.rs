//! Giving back the disk space of replaced versions without blocking readers.
//!
//! A re-import writes the new version's tables beside the old ones and drops the old
//! ones in the switching transaction, so without care the file keeps both versions' pages
//! (the old ones on the freelist) and the WAL holds a copy of everything written (measured
//! before: 895 MB catalog + 874 MB WAL after two imports of a 64 MB input).
//!
//! - New catalogs use `auto_vacuum = INCREMENTAL`: after a commit that freed pages,
//!   [`reclaim`] moves pages into the holes and truncates the file in steps of
//!   [`VACUUM_STEP_PAGES`], each its own short write transaction. Readers in WAL mode never
//!   wait for a writer, and one holding a snapshot keeps reading its version to the end.
//! - The WAL is checkpointed after each write; `TRUNCATE` once readers of older snapshots
//!   are done (waiting at most [`TRUNCATE_WAIT_MS`]), otherwise `PASSIVE` now and again at
//!   the next write or open. The
//!   [`JOURNAL_SIZE_LIMIT`] trims the file whenever SQLite restarts the log.
//!
//! Catalogs created before this cannot switch without a full `VACUUM` (a rewrite that
//! blocks writers), so [`prepare`] only logs how to do it once: their freed pages are still
//! reused by the next import, which bounds them at about two versions' worth.

use rusqlite::Connection;

/// Pages moved per incremental-vacuum transaction (8 MiB at the default 4 KiB page).
pub const VACUUM_STEP_PAGES: i64 = 2048;
/// How long a writer waits for older snapshots to end before it truncates the WAL.
pub const TRUNCATE_WAIT_MS: i64 = 1_000;
/// Size the WAL file is cut back to when SQLite restarts it.
pub const JOURNAL_SIZE_LIMIT: i64 = 4 << 20;

/// What [`reclaim`] did, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reclaimed {
    pub pages_freed: i64,
    pub steps: u32,
    /// Whether the WAL was checkpointed completely and truncated.
    pub wal_truncated: bool,
}

/// Settings for the writing connection. Must run before the journal mode is set and any
/// table exists: `auto_vacuum` can only be chosen for an empty database.
pub fn prepare(conn: &Connection) -> rusqlite::Result<()> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    if pages == 0 {
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    } else if auto_vacuum(conn)? != 2 {
        tracing::info!(
            "this catalog was created without incremental vacuum: space of replaced versions \
             is reused by later imports but the file does not shrink; to convert it once, stop \
             the server and run: sqlite3 CATALOG 'PRAGMA auto_vacuum=INCREMENTAL; VACUUM;'"
        );
    }
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
    Ok(())
}

fn auto_vacuum(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
}

/// Returns freed pages to the file system in bounded steps and checkpoints the WAL.
/// Runs after a commit: a failure here loses nothing, the next write retries.
pub fn reclaim(conn: &Connection) -> rusqlite::Result<Reclaimed> {
    let mut done = Reclaimed::default();
    if auto_vacuum(conn)? == 2 {
        let free =
            |c: &Connection| c.query_row("PRAGMA freelist_count", [], |r| r.get::<_, i64>(0));
        let start = free(conn)?;
        // Bounded: each step frees up to a step's pages, so this many always suffice.
        let max_steps = start / VACUUM_STEP_PAGES + 2;
        let mut left = start;
        while left > 0 && i64::from(done.steps) < max_steps {
            // Frees its pages as the statement is stepped: step it to the end.
            let mut stmt =
                conn.prepare(&format!("PRAGMA incremental_vacuum({VACUUM_STEP_PAGES})"))?;
            let mut rows = stmt.query([])?;
            while rows.next()?.is_some() {}
            // Keeps the WAL from growing by the whole file while pages move.
            checkpoint(conn, "PASSIVE")?;
            done.steps += 1;
            left = free(conn)?;
        }
        done.pages_freed = start - left;
    }
    // TRUNCATE waits for readers of snapshots older than the checkpoint (readers never wait
    // for it). A server's requests hold theirs for milliseconds; a slow export may hold one
    // for minutes, so the writer waits at most TRUNCATE_WAIT_MS and then leaves it for later.
    let busy_timeout: i64 = conn.query_row("PRAGMA busy_timeout", [], |r| r.get(0))?;
    conn.pragma_update(None, "busy_timeout", TRUNCATE_WAIT_MS)?;
    let truncated = checkpoint(conn, "TRUNCATE");
    conn.pragma_update(None, "busy_timeout", busy_timeout)?;
    done.wal_truncated = truncated?;
    if !done.wal_truncated {
        checkpoint(conn, "PASSIVE")?;
    }
    Ok(done)
}

/// Runs a checkpoint; `true` when it completed (no reader or writer was in the way).
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<bool> {
    let sql = format!("PRAGMA wal_checkpoint({mode})");
    match conn.query_row(&sql, [], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    }) {
        Ok((busy, log, done)) => Ok(busy == 0 && log == done),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::DatabaseBusy =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}
