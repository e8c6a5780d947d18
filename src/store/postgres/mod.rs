//! PostgreSQL + PostGIS catalog: the same data model as [`super::sqlite`], in a database
//! that many Tessera processes and read replicas share.
//!
//! Layout, in schema `tessera`: `datasets` (one row per dataset: its metadata as JSON and
//! the generation `gen` of the table holding its current version), `f_{gen}` (one table
//! per dataset version, rows in the importer's Hilbert order, a GiST index on `geom`),
//! `retired` (tables of replaced versions, dropped after a grace period so that readers
//! still on the old version finish), and `state.stamp`, a counter every commit raises and
//! announces with `NOTIFY tessera_changes`. Table names are built only from integers.
//!
//! An import fills its new table inside one transaction that also switches `datasets`, so
//! readers see the old or the new version, and a killed importer leaves nothing behind
//! (PostgreSQL rolls the transaction back, table included). Imports of one dataset take
//! an advisory lock and run one after another; different datasets import in parallel.
//!
//! Reads go to a read replica when one is given and answers, else the primary. Every read
//! snapshot checks that its server has replayed at least the stamp this process has
//! adopted, so a lagging replica is skipped rather than serving older data under a newer
//! version's ETag.

mod bridge;
mod copy;
mod db;
mod endpoint;
mod read;
mod writer;

use super::{BackendHealth, Catalog, DatasetWriter, Snapshot, StoreError, WriteMode};
use crate::import::{ImportError, ImportReport, ImportRequest, Progress};
use crate::model::DatasetId;
use bridge::Bridge;
use endpoint::Endpoint;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio_postgres::Client;

/// How often each process asks the primary for the stamp, besides listening for
/// `NOTIFY`: the bound on how late another process's commit is seen if a notification
/// is lost (the listening connection broke).
pub const POLL_EVERY: Duration = Duration::from_millis(250);
/// How long a replaced version's table stays for readers that started before the switch.
const RETIRE_GRACE_SECONDS: i64 = 60;
/// The advisory-lock namespace of Tessera (the first key of the two-key form).
const LOCK_SPACE: i32 = 0x7e55;

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE SCHEMA IF NOT EXISTS tessera;
CREATE TABLE IF NOT EXISTS tessera.meta (key text PRIMARY KEY, value bigint NOT NULL);
CREATE TABLE IF NOT EXISTS tessera.datasets (
    id text PRIMARY KEY,
    gen bigint NOT NULL,
    version bigint NOT NULL,
    info text NOT NULL
);
CREATE TABLE IF NOT EXISTS tessera.retired (
    gen bigint PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS tessera.state (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    stamp bigint NOT NULL
);
INSERT INTO tessera.state VALUES (true, 1) ON CONFLICT DO NOTHING;
CREATE SEQUENCE IF NOT EXISTS tessera.gen_seq;
";

pub struct PgCatalog {
    bridge: Bridge,
    primary: Arc<Endpoint>,
    replicas: Vec<Arc<Endpoint>>,
    /// The newest stamp this process knows of; reads need a server at least this new.
    stamp: Arc<AtomicI64>,
    /// Where the next read starts among the replicas.
    next_replica: AtomicUsize,
}

impl std::fmt::Debug for PgCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCatalog")
            .field("primary", &self.primary.shown)
            .finish()
    }
}

impl PgCatalog {
    /// Connects to the primary at `url` (creating or migrating the schema) and to the
    /// read replicas `read`, and starts following changes made by other processes.
    pub fn open(url: &str, read: &[String]) -> Result<Self, StoreError> {
        let bridge = Bridge::new()?;
        let primary = Endpoint::new("primary", url)?;
        let replicas = read
            .iter()
            .map(|u| Endpoint::new("replica", u))
            .collect::<Result<Vec<_>, _>>()?;
        let stamp = {
            let primary = primary.clone();
            bridge.run(async move {
                let client = primary
                    .client()
                    .await
                    .map_err(|e| open_error(&primary, &e))?;
                prepare_schema(&client)
                    .await
                    .map_err(|e| open_error(&primary, &e))?;
                db::drop_orphans(&client).await?;
                let stamp = db::read_stamp(&client).await?;
                primary.give_back(client);
                Ok(stamp)
            })?
        };
        let catalog = Self {
            bridge,
            primary,
            replicas,
            stamp: Arc::new(AtomicI64::new(stamp)),
            next_replica: AtomicUsize::new(0),
        };
        catalog.bridge.handle().spawn(follow_changes(
            catalog.primary.clone(),
            catalog.stamp.clone(),
        ));
        Ok(catalog)
    }

    /// Runs the import pipeline into this catalog (as [`super::sqlite::SqliteCatalog::import`]).
    pub fn import(
        &self,
        req: &ImportRequest,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<ImportReport, ImportError> {
        crate::import::run(self, req, progress)
    }

    /// Raises the known stamp to `seen` (never lowers it).
    fn adopt(&self, seen: i64) {
        self.stamp.fetch_max(seen, Ordering::AcqRel);
    }

    /// Endpoints to read from, in the order to try them: replicas (round robin, skipping
    /// those waiting out a failure), then the primary.
    fn read_order(&self) -> Vec<Arc<Endpoint>> {
        let n = self.replicas.len();
        let start = self.next_replica.fetch_add(1, Ordering::Relaxed);
        let mut order: Vec<Arc<Endpoint>> = (0..n)
            .map(|i| self.replicas[(start + i) % n].clone())
            .filter(|e| e.usable())
            .collect();
        order.push(self.primary.clone());
        order
    }

    /// A read transaction on the first endpoint that answers and is at least as new as
    /// the adopted stamp.
    fn begin_read(&self) -> Result<(Arc<Endpoint>, Client), StoreError> {
        let need = self.stamp.load(Ordering::Acquire);
        let mut last_error = None;
        for endpoint in self.read_order() {
            let ep = endpoint.clone();
            let answer = self
                .bridge
                .run(async move { Ok(read::begin(&ep, need).await) })?;
            match answer {
                Ok(Some(client)) => {
                    endpoint.reads.fetch_add(1, Ordering::Relaxed);
                    return Ok((endpoint, client));
                }
                // Behind this process's stamp: not down, just not yet usable.
                Ok(None) => continue,
                Err(e) => {
                    if endpoint.role == "replica" {
                        endpoint.mark_down(&e);
                    }
                    last_error = Some(format!("{}: {e}", endpoint.shown));
                }
            }
        }
        Err(StoreError::Db(
            last_error
                .unwrap_or_else(|| "no PostgreSQL server answered".into())
                .into(),
        ))
    }
}

fn open_error(endpoint: &Endpoint, e: &tokio_postgres::Error) -> StoreError {
    StoreError::Open {
        path: endpoint.shown.clone().into(),
        message: db::describe(e),
    }
}

/// Creates or upgrades the schema; serialised across processes by an advisory lock.
async fn prepare_schema(client: &Client) -> Result<(), tokio_postgres::Error> {
    let has_postgis = client
        .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'postgis'", &[])
        .await?
        .is_some();
    if !has_postgis {
        client
            .batch_execute("CREATE EXTENSION IF NOT EXISTS postgis")
            .await?;
    }
    client
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({LOCK_SPACE}, 0); {SCHEMA}
             INSERT INTO tessera.meta VALUES ('schema', {SCHEMA_VERSION}) ON CONFLICT DO NOTHING;
             COMMIT;"
        ))
        .await
}

/// Keeps `stamp` at the primary's: listens for `NOTIFY tessera_changes` and also asks
/// every [`POLL_EVERY`], reconnecting whenever the connection breaks.
async fn follow_changes(primary: Arc<Endpoint>, stamp: Arc<AtomicI64>) {
    loop {
        if let Err(e) = db::listen(&primary, &stamp).await {
            primary.mark_down(&db::describe(&e));
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

impl Catalog for PgCatalog {
    fn snapshot(&self) -> Result<Box<dyn Snapshot + '_>, StoreError> {
        let (endpoint, client) = self.begin_read()?;
        Ok(Box::new(read::PgSnapshot::new(self, endpoint, client)))
    }

    fn writer(
        &self,
        id: &DatasetId,
        mode: WriteMode,
    ) -> Result<Box<dyn DatasetWriter + '_>, StoreError> {
        Ok(Box::new(writer::PgWriter::new(self, id, mode)?))
    }

    fn delete(&self, id: &DatasetId) -> Result<bool, StoreError> {
        let primary = self.primary.clone();
        let id = id.as_str().to_owned();
        let answer = self.bridge.run(async move {
            let client = primary.client().await?;
            let answer = db::delete(&client, &id).await;
            primary.give_back(client);
            Ok(answer?)
        })?;
        if let Some(stamp) = answer {
            self.adopt(stamp);
        }
        Ok(answer.is_some())
    }

    fn data_stamp(&self) -> Result<i64, StoreError> {
        Ok(self.stamp.load(Ordering::Acquire))
    }

    fn health(&self) -> BackendHealth {
        let all: Vec<Arc<Endpoint>> = std::iter::once(self.primary.clone())
            .chain(self.replicas.iter().cloned())
            .collect();
        let probed = all.clone();
        let _ = self.bridge.run(async move {
            let probes = probed.iter().map(|e| e.probe());
            futures_util::future::join_all(probes).await;
            Ok(())
        });
        let endpoints: Vec<_> = all.iter().map(|e| e.health()).collect();
        BackendHealth {
            backend: "postgresql",
            ready: endpoints.iter().any(|e| e.up),
            endpoints,
        }
    }
}
