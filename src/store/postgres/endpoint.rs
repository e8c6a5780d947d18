//! One PostgreSQL server the catalog talks to (the primary or a read replica): its idle
//! connections, and whether it answered lately, so that reads skip a replica that is down
//! and come back to it once it answers again.

use super::{StoreError, db};
use crate::store::EndpointHealth;
use crate::store::location::redact;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_postgres::{Client, NoTls};

/// How long a replica that failed is left alone before a read tries it again.
pub(super) const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Idle connections kept per endpoint; more may be open while busy.
const KEEP_IDLE: usize = 16;

pub(super) struct Endpoint {
    pub(super) role: &'static str,
    /// The URL without its password, for messages and `/health`.
    pub(super) shown: String,
    config: tokio_postgres::Config,
    idle: Mutex<Vec<Client>>,
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
        Ok(Arc::new(Self {
            role,
            shown: redact(url),
            config,
            idle: Mutex::new(Vec::new()),
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

    /// A new connection, driven by a task on the current (the backend's) runtime.
    pub(super) async fn connect(&self) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = self.config.connect(NoTls).await?;
        tokio::spawn(async move {
            // Ends when the client is dropped or the server goes away; errors surface on
            // the client's next query.
            let _ = connection.await;
        });
        Ok(client)
    }

    /// An idle connection if one is open, else a new one.
    pub(super) async fn client(&self) -> Result<Client, tokio_postgres::Error> {
        loop {
            let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match pooled {
                Some(c) if c.is_closed() => continue,
                Some(c) => return Ok(c),
                None => return self.connect().await,
            }
        }
    }

    /// Gives a connection back once it is out of any transaction.
    pub(super) fn give_back(&self, client: Client) {
        if client.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < KEEP_IDLE {
            idle.push(client);
        }
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
        let answer = tokio::time::timeout(Duration::from_secs(2), async {
            let client = self.client().await?;
            client.simple_query("SELECT 1").await?;
            Ok::<_, tokio_postgres::Error>(client)
        })
        .await;
        match answer {
            Ok(Ok(client)) => {
                self.mark_up();
                self.give_back(client);
            }
            Ok(Err(e)) => self.mark_down(&db::describe(&e)),
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
