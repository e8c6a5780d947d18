//! Lanes: heavy requests (CSV exports, big or sorted pages, histograms of big datasets)
//! run in their own bounded lane, under a time limit, so they cannot take the blocking
//! threads and SQLite readers that tiles, small pages, styles and assets need.
//!
//! - At most [`LaneConfig::heavy`] heavy requests hold a blocking thread at once; a
//!   request that waits longer than [`LaneConfig::queue_wait`] for one is refused with
//!   503 + `Retry-After` (waiting is async: a queued request holds no thread).
//! - Heavy work that runs longer than [`LaneConfig::time_limit`] is cut: its SQLite query
//!   is interrupted and the client gets a 503 problem.
//! - A finished export no longer holds a thread or a snapshot, only its spool (see
//!   `export.rs`); at most [`LaneConfig::exports`] spools are open at once, and a
//!   connection whose writes make no progress for [`LaneConfig::write_idle`] is closed
//!   ([`TimeoutListener`]), which frees its spool.

use super::error::ApiError;
use crate::store::{Catalog, Interrupter, Snapshot};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The `serve` flags of the heavy lane.
#[derive(Debug, Clone, clap::Args)]
pub struct LaneArgs {
    /// Heavy requests (CSV exports, pages over 1,000 features, sorted or deep pages,
    /// histograms of big datasets) that may run at once; each holds one blocking thread
    /// and one core [default: half the cores, at least 1].
    #[arg(long, env = "TESSERA_HEAVY_LANES", default_value_t = default_heavy() as u32, hide_default_value = true, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub heavy_lanes: u32,
    /// Seconds a heavy request may wait for a lane before it gets 503 + Retry-After.
    #[arg(long, env = "TESSERA_HEAVY_QUEUE_SECS", default_value_t = 2.0)]
    pub heavy_queue_secs: f64,
    /// Seconds a heavy request may run (its query is then interrupted; 503).
    #[arg(long, env = "TESSERA_HEAVY_TIMEOUT_SECS", default_value_t = 30.0)]
    pub heavy_timeout_secs: f64,
    /// CSV exports that may be in delivery at once (each holds a spool: memory up to 1 MiB,
    /// then a temporary file); beyond it, 503 + Retry-After.
    #[arg(long, env = "TESSERA_EXPORT_SLOTS", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub export_slots: u32,
    /// Seconds a response write may make no progress (a client that stopped reading)
    /// before the connection is closed.
    #[arg(long, env = "TESSERA_WRITE_IDLE_SECS", default_value_t = 30.0)]
    pub write_idle_secs: f64,
    /// Seconds an export's delivery may take in all, however slowly the client reads.
    #[arg(long, env = "TESSERA_EXPORT_MAX_SECS", default_value_t = 3600.0)]
    pub export_max_secs: f64,
}

impl LaneArgs {
    /// The validated settings; errors name the flag.
    pub fn config(&self) -> Result<LaneConfig, String> {
        let secs = |flag: &str, v: f64| {
            Duration::try_from_secs_f64(v)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| format!("--{flag} must be a positive number of seconds, not {v}"))
        };
        Ok(LaneConfig {
            heavy: self.heavy_lanes as usize,
            queue_wait: secs("heavy-queue-secs", self.heavy_queue_secs)?,
            time_limit: secs("heavy-timeout-secs", self.heavy_timeout_secs)?,
            exports: self.export_slots as usize,
            write_idle: secs("write-idle-secs", self.write_idle_secs)?,
            export_max: secs("export-max-secs", self.export_max_secs)?,
        })
    }
}

/// Settings of the heavy lane; the defaults are those of the `serve` flags.
#[derive(Debug, Clone)]
pub struct LaneConfig {
    pub heavy: usize,
    pub queue_wait: Duration,
    pub time_limit: Duration,
    pub exports: usize,
    pub write_idle: Duration,
    pub export_max: Duration,
}

/// Half the cores: an export scan is core-bound. On 2 cores, with 4 clients downloading
/// full exports over and over, tile p99 was 2.72x its value alone with 2 lanes and 1.39x
/// with 1 (bench/stall.sh, medians of 3 rounds); the other half stays for tiles and pages.
fn default_heavy() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

impl Default for LaneConfig {
    fn default() -> Self {
        Self {
            heavy: default_heavy(),
            queue_wait: Duration::from_secs(2),
            time_limit: Duration::from_secs(30),
            exports: 32,
            write_idle: Duration::from_secs(30),
            export_max: Duration::from_secs(3600),
        }
    }
}

/// Blocking threads kept for light work (tile renders, small pages, static files, the
/// short file reads of export bodies), whatever the heavy lane does.
pub const LIGHT_BLOCKING_THREADS: usize = 16;

/// The server's runtime. Each blocking thread may hold a SQLite reader, so they are
/// bounded (tokio's default is 512): the heavy lane takes at most `config.heavy` of them
/// and light work always has [`LIGHT_BLOCKING_THREADS`].
pub fn runtime(config: &LaneConfig) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(LIGHT_BLOCKING_THREADS + config.heavy)
        .enable_all()
        .build()
}

/// Pages up to this many features are light.
pub const LIGHT_LIMIT: u64 = 1_000;
/// Offsets up to this are light (SQLite walks every skipped row).
pub const LIGHT_OFFSET: u64 = 10_000;
/// Histograms of datasets up to this many features are light.
pub const LIGHT_ROWS: u64 = 100_000;

/// Why the lane refused or cut a request, or the request's own error.
#[derive(Debug)]
pub enum LaneError {
    /// Every lane (or export slot) stayed busy: try again after the given time.
    Busy(Duration),
    /// The work ran past the time limit and was cut.
    TooSlow(Duration),
    Api(ApiError),
}

impl From<ApiError> for LaneError {
    fn from(e: ApiError) -> Self {
        LaneError::Api(e)
    }
}

impl From<crate::store::StoreError> for LaneError {
    fn from(e: crate::store::StoreError) -> Self {
        LaneError::Api(e.into())
    }
}

impl From<tokio::task::JoinError> for LaneError {
    fn from(e: tokio::task::JoinError) -> Self {
        LaneError::Api(e.into())
    }
}

impl IntoResponse for LaneError {
    fn into_response(self) -> Response {
        let (detail, retry) = match self {
            LaneError::Api(e) => return e.into_response(),
            LaneError::Busy(retry) => (
                "the server is busy with other exports and large requests; try again shortly"
                    .to_owned(),
                retry,
            ),
            LaneError::TooSlow(limit) => (
                format!(
                    "the request took longer than its limit of {} s and was stopped; narrow it (bbox, datetime, filters, limit)",
                    limit.as_secs_f64()
                ),
                limit,
            ),
        };
        let mut resp = ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            title: "Service unavailable",
            detail,
            parameter: None,
        }
        .into_response();
        let secs = retry.as_secs_f64().ceil().max(1.0) as u64;
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        resp
    }
}

/// When heavy work must stop; checked by scans between rows.
#[derive(Debug, Clone)]
pub struct Deadline {
    at: Option<Instant>,
    cut: Arc<AtomicBool>,
}

impl Deadline {
    /// No limit (light requests).
    pub fn none() -> Self {
        Self {
            at: None,
            cut: Arc::new(AtomicBool::new(false)),
        }
    }

    fn after(limit: Duration) -> Self {
        Self {
            at: Instant::now().checked_add(limit),
            cut: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn passed(&self) -> bool {
        self.cut.load(Ordering::Relaxed) || self.at.is_some_and(|at| Instant::now() >= at)
    }
}

/// The lane's semaphores; one per server.
#[derive(Debug)]
pub struct Lanes {
    pub config: LaneConfig,
    heavy: Arc<Semaphore>,
    exports: Arc<Semaphore>,
}

impl Default for Lanes {
    fn default() -> Self {
        Self::new(LaneConfig::default())
    }
}

impl Lanes {
    pub fn new(config: LaneConfig) -> Self {
        Self {
            heavy: Arc::new(Semaphore::new(config.heavy.max(1))),
            exports: Arc::new(Semaphore::new(config.exports.max(1))),
            config,
        }
    }

    /// A slot for one export in delivery, or 503 at once when all are taken.
    pub fn export_slot(&self) -> Result<OwnedSemaphorePermit, LaneError> {
        self.exports
            .clone()
            .try_acquire_owned()
            .map_err(|_| LaneError::Busy(self.config.queue_wait))
    }

    /// Runs `f` with one snapshot on a blocking thread of the heavy lane, under the time
    /// limit. The lane is held until the thread is really done, so an interrupted query
    /// still counts until it has stopped.
    pub async fn run<T: Send + 'static>(
        &self,
        catalog: Arc<dyn Catalog>,
        f: impl FnOnce(&dyn Snapshot, &Deadline) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, LaneError> {
        let busy = LaneError::Busy(self.config.queue_wait);
        let permit =
            tokio::time::timeout(self.config.queue_wait, self.heavy.clone().acquire_owned())
                .await
                .map_err(|_| busy)?
                .map_err(|_| LaneError::Busy(self.config.queue_wait))?;
        let limit = self.config.time_limit;
        let deadline = Deadline::after(limit);
        let mut cut = Cut {
            deadline: deadline.clone(),
            armed: Arc::new(Mutex::new(None)),
            done: false,
        };
        let task = tokio::task::spawn_blocking({
            let (armed, deadline) = (cut.armed.clone(), deadline.clone());
            move || {
                let _permit = permit;
                let snap = catalog.snapshot()?;
                *lock(&armed) = snap.interrupter();
                let out = f(&*snap, &deadline);
                lock(&armed).take();
                out
            }
        });
        let out = match tokio::time::timeout(limit, task).await {
            Ok(joined) => {
                cut.done = true;
                joined?
            }
            Err(_) => {
                tracing::warn!(
                    limit_s = limit.as_secs_f64(),
                    "heavy request cut at its time limit"
                );
                return Err(LaneError::TooSlow(limit)); // `cut` interrupts as it drops
            }
        };
        // An interrupted query or a scan stopped by the deadline fails in its own words.
        out.map_err(|e| {
            if deadline.passed() {
                LaneError::TooSlow(limit)
            } else {
                LaneError::Api(e)
            }
        })
    }
}

/// Stops heavy work that nobody waits for any more: at the time limit, or when the
/// client goes away (axum drops the handler's future), so neither keeps a lane busy.
struct Cut {
    deadline: Deadline,
    /// The snapshot's interrupter while its work runs; emptied before the connection goes
    /// back to the pool, so a late interrupt can never hit another request's query.
    armed: Arc<Mutex<Option<Interrupter>>>,
    done: bool,
}

impl Drop for Cut {
    fn drop(&mut self) {
        if !self.done {
            self.deadline.cut.store(true, Ordering::Relaxed);
            if let Some(interrupt) = lock(&self.armed).as_ref() {
                interrupt();
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How much work an items request is, from its query string alone (before any snapshot,
/// so the request takes exactly one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    Light,
    /// A page of more than [`LIGHT_LIMIT`] features, an offset past [`LIGHT_OFFSET`], or a sort.
    Heavy,
    /// `f=csv`: heavy, and it needs an export slot.
    Export,
}

pub fn items_weight(raw: Option<&str>) -> Weight {
    let Ok(pairs) = super::params::pairs(raw) else {
        return Weight::Light; // answered 400 by the parser
    };
    let above = |v: &str, max: u64| v.trim().parse::<u64>().is_ok_and(|n| n > max);
    let csv = |v: &str| {
        super::params::parse_format(v, true)
            .is_ok_and(|f| matches!(f, super::Format::Csv | super::Format::Ics))
    };
    if pairs.iter().any(|(k, v)| k == "f" && csv(v)) {
        return Weight::Export;
    }
    let heavy = pairs.iter().any(|(k, v)| match k.as_str() {
        "limit" => above(v, LIGHT_LIMIT),
        "offset" => above(v, LIGHT_OFFSET),
        "sortby" => true,
        _ => false,
    });
    if heavy { Weight::Heavy } else { Weight::Light }
}

/// A listener whose connections fail a write that makes no progress for `write_idle`:
/// hyper then closes the connection and drops the response body, so a client that stops
/// reading frees what its response held.
#[derive(Debug)]
pub struct TimeoutListener {
    inner: tokio::net::TcpListener,
    write_idle: Duration,
}

impl TimeoutListener {
    pub fn new(inner: tokio::net::TcpListener, write_idle: Duration) -> Self {
        Self { inner, write_idle }
    }
}

impl axum::serve::Listener for TimeoutListener {
    type Io = std::pin::Pin<Box<tokio_io_timeout::TimeoutStream<tokio::net::TcpStream>>>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
        stream.set_write_timeout(Some(self.write_idle));
        (Box::pin(stream), addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_of_items_queries() {
        for q in ["f=csv", "f=csv&limit=2", "limit=5000&f=csv"] {
            assert_eq!(items_weight(Some(q)), Weight::Export, "{q}");
        }
        for q in [
            "limit=5000",
            "offset=20000",
            "sortby=-a",
            "f=html&limit=1001",
        ] {
            assert_eq!(items_weight(Some(q)), Weight::Heavy, "{q}");
        }
        for q in [
            "",
            "limit=1000",
            "offset=10",
            "f=json",
            "f=CSV",
            "limit=x",
            "f=csv&f=csv",
        ] {
            assert_eq!(items_weight(Some(q)), Weight::Light, "{q}");
        }
    }

    #[test]
    fn busy_is_a_503_with_retry_after() {
        let r = LaneError::Busy(Duration::from_millis(1500)).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        let r = LaneError::TooSlow(Duration::from_secs(30)).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "30");
    }

    #[test]
    fn flags_are_validated() {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            lanes: LaneArgs,
        }
        let t = T::parse_from(["t"]);
        let c = t.lanes.config().unwrap();
        let d = LaneConfig::default();
        assert_eq!((c.heavy, c.exports), (d.heavy, d.exports));
        assert!(c.heavy >= 1);
        let t = T::parse_from(["t", "--heavy-timeout-secs", "0"]);
        assert!(
            t.lanes
                .config()
                .unwrap_err()
                .contains("--heavy-timeout-secs")
        );
    }
}
