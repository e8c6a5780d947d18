//! One PostgreSQL server the catalog talks to (the primary or a read replica): its idle
//! connections, and whether it answered lately, so that reads skip a replica that is down
//! and come back to it once it answers again.

use super::{StoreError, db};
use crate::store::EndpointHealth;
use crate::store::location::redact;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, Statement};

/// How long a replica that failed is left alone before a read tries it again.
pub(super) const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Connections each process opens at most to one server for reads: PostgreSQL's own
/// limit (`max_connections`, 100 by default) is shared by every Tessera process.
/// `TESSERA_DB_POOL` sets another number (1 to 1,000).
pub const MAX_READ_CONNECTIONS: usize = 16;

/// The read pool's size: `TESSERA_DB_POOL` when it is a number from 1 to 1,000, else
/// [`MAX_READ_CONNECTIONS`] (a bad value is reported, not silently used).
pub(super) fn pool_size(setting: Option<&str>) -> Result<usize, StoreError> {
    match setting.map(str::trim) {
        None | Some("") => Ok(MAX_READ_CONNECTIONS),
        Some(text) => match text.parse::<usize>() {
            Ok(n @ 1..=1000) => Ok(n),
            _ => Err(StoreError::Config(format!(
                "TESSERA_DB_POOL=`{text}`: the read connections per server must be a number from 1 to 1000"
            ))),
        },
    }
}
/// How long a read waits for a connection when all are busy.
const WAIT_FOR_CONNECTION: Duration = Duration::from_secs(10);

/// A read connection and its share of the pool.
pub(super) struct Pooled {
    client: Client,
    _permit: OwnedSemaphorePermit,
    /// Statements prepared on this connection, by SQL text: a page or a count of the same
    /// shape is then neither parsed nor (after a few runs) planned again.
    statements: Mutex<HashMap<String, Statement>>,
}

/// A read connection nobody has checked out, with its prepared statements.
struct Idle {
    client: Client,
    statements: HashMap<String, Statement>,
}

/// Statements kept per connection; past this the cache starts over (texts name table
/// generations, so replaced versions' statements would otherwise pile up).
const KEEP_STATEMENTS: usize = 256;

impl Pooled {
    /// The prepared statement for `sql` with parameters of `types`.
    pub(super) async fn prepared(
        &self,
        sql: &str,
        types: &[Type],
    ) -> Result<Statement, tokio_postgres::Error> {
        let known = self
            .statements
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(sql)
            .cloned();
        if let Some(statement) = known {
            return Ok(statement);
        }
        let statement = self.client.prepare_typed(sql, types).await?;
        let mut statements = self.statements.lock().unwrap_or_else(|e| e.into_inner());
        if statements.len() >= KEEP_STATEMENTS {
            statements.clear();
        }
        statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

impl std::ops::Deref for Pooled {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

pub(super) struct Endpoint {
    pub(super) role: &'static str,
    /// The URL without its password, for messages and `/health`.
    pub(super) shown: String,
    config: tokio_postgres::Config,
    idle: Mutex<Vec<Idle>>,
    permits: Arc<Semaphore>,
    pool: usize,
    up: AtomicBool,
    error: Mutex<Option<String>>,
    /// When a failed endpoint may be tried again.
    retry_at: Mutex<Option<Instant>>,
    /// Snapshots served by this endpoint (so tests and operators can see reads move).
    pub(super) reads: AtomicU64,
}

impl Endpoint {
    pub(super) fn new(role: &'static str, url: &str) -> Result<Arc<Self>, StoreError> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| {
                StoreError::Config(format!("{}: {e}", redact(url)))
            })?;
        config.application_name("tessera");
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(3));
        }
        let pool = pool_size(std::env::var("TESSERA_DB_POOL").ok().as_deref())?;
        Ok(Arc::new(Self {
            role,
            shown: redact(url),
            config,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(pool)),
            pool,
            up: AtomicBool::new(true),
            error: Mutex::new(None),
            retry_at: Mutex::new(None),
            reads: AtomicU64::new(0),
        }))
    }

    /// A new connection whose driver the caller polls itself (to read notifications).
    pub(super) async fn connect_raw(
        &self,
    ) -> Result<
        (
            Client,
            tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
        ),
        tokio_postgres::Error,
    > {
        self.config.connect(NoTls).await
    }

    /// A new connection outside the read pool (an import's, which holds its transaction
    /// for the whole import), driven by a task on the current (the backend's) runtime.
    pub(super) async fn connect(&self) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = self.config.connect(NoTls).await?;
        tokio::spawn(async move {
            // Ends when the client is dropped or the server goes away; errors surface on
            // the client's next query.
            let _ = connection.await;
        });
        Ok(client)
    }

    /// Waits (at most [`WAIT_FOR_CONNECTION`]) until fewer than the pool's number of read
    /// connections are checked out.
    async fn permit(&self) -> Result<OwnedSemaphorePermit, String> {
        tokio::time::timeout(WAIT_FOR_CONNECTION, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                format!(
                    "all {} connections stayed busy for {WAIT_FOR_CONNECTION:?}",
                    self.pool
                )
            })?
            .map_err(|e| e.to_string())
    }

    /// A new read connection, once one of the pool's is free.
    pub(super) async fn fresh(&self) -> Result<Pooled, String> {
        let permit = self.permit().await?;
        let client = self.connect().await.map_err(|e| db::describe(&e))?;
        Ok(Pooled {
            client,
            _permit: permit,
            statements: Mutex::new(HashMap::new()),
        })
    }

    /// An idle read connection if one is open, else a new one. The permit is taken first
    /// and idle connections hold none, so a read that waits is woken by the next one given
    /// back and takes that connection.
    pub(super) async fn client(&self) -> Result<Pooled, String> {
        let permit = self.permit().await?;
        loop {
            let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match idle {
                Some(c) if c.client.is_closed() => continue,
                Some(Idle { client, statements }) => {
                    return Ok(Pooled {
                        client,
                        _permit: permit,
                        statements: Mutex::new(statements),
                    });
                }
                None => {
                    let client = self.connect().await.map_err(|e| db::describe(&e))?;
                    return Ok(Pooled {
                        client,
                        _permit: permit,
                        statements: Mutex::new(HashMap::new()),
                    });
                }
            }
        }
    }

    /// Gives a read connection back once it is out of any transaction; its permit goes
    /// back with it (on drop), waking a waiting read.
    pub(super) fn give_back(&self, pooled: Pooled) {
        if pooled.client.is_closed() {
            return;
        }
        let Pooled {
            client, statements, ..
        } = pooled;
        let statements = statements.into_inner().unwrap_or_else(|e| e.into_inner());
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Idle { client, statements });
    }

    /// Whether reads should try this endpoint now.
    pub(super) fn usable(&self) -> bool {
        if self.up.load(Ordering::Acquire) {
            return true;
        }
        let retry = self.retry_at.lock().unwrap_or_else(|e| e.into_inner());
        retry.is_none_or(|at| Instant::now() >= at)
    }

    pub(super) fn mark_up(&self) {
        if !self.up.swap(true, Ordering::AcqRel) {
            tracing::info!(endpoint = %self.shown, role = self.role, "PostgreSQL answers again");
        }
        *self.error.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    pub(super) fn mark_down(&self, why: &str) {
        if self.up.swap(false, Ordering::AcqRel) {
            tracing::warn!(endpoint = %self.shown, role = self.role, error = why, "PostgreSQL does not answer; reads go elsewhere");
        }
        *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.to_owned());
        *self.retry_at.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Instant::now() + RETRY_AFTER);
        // Connections to a server that went away are all broken.
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Asks the server for a trivial answer (for `/health`), updating the state.
    pub(super) async fn probe(&self) {
        let idle = !self
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        if !idle && self.permits.available_permits() == 0 {
            // Every connection is busy with reads: the server answers them (or they fail
            // and say so); a probe would only queue behind them and time out.
            return;
        }
        let answer = tokio::time::timeout(Duration::from_secs(2), async {
            let client = self.client().await?;
            client
                .simple_query("SELECT 1")
                .await
                .map_err(|e| db::describe(&e))?;
            Ok::<_, String>(client)
        })
        .await;
        match answer {
            Ok(Ok(client)) => {
                self.mark_up();
                self.give_back(client);
            }
            Ok(Err(e)) => self.mark_down(&e),
            Err(_) => self.mark_down("no answer within 2 s"),
        }
    }

    pub(super) fn health(&self) -> EndpointHealth {
        EndpointHealth {
            role: self.role,
            location: self.shown.clone(),
            up: self.up.load(Ordering::Acquire),
            error: self.error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            reads: self.reads.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_size_is_a_small_number_or_the_default() {
        assert_eq!(pool_size(None).unwrap(), MAX_READ_CONNECTIONS);
        assert_eq!(pool_size(Some(" ")).unwrap(), MAX_READ_CONNECTIONS);
        assert_eq!(pool_size(Some("4")).unwrap(), 4);
        for bad in ["0", "-3", "many", "1001"] {
            let e = pool_size(Some(bad)).unwrap_err().to_string();
            assert!(e.contains("TESSERA_DB_POOL") && e.contains(bad), "{e}");
        }
    }
}
