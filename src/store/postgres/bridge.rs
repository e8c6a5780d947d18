//! The backend's own Tokio runtime, and the one way synchronous store calls wait on it.
//!
//! The store traits are synchronous (SQLite is), and they are called from every kind of
//! thread: blocking-pool threads of the server, the importer's main thread, and tests that
//! run inside `#[tokio::test]`. A client that calls `Runtime::block_on` on the caller's
//! thread panics in the last case ("Cannot start a runtime from within a runtime"), so
//! every PostgreSQL future runs on this runtime and the caller waits with a plain thread
//! park, which is allowed anywhere.

use super::StoreError;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

pub(super) struct Bridge {
    /// `None` only while dropping: a runtime dropped inside another runtime's context
    /// panics, so it is shut down in the background instead.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Bridge {
    pub(super) fn new() -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tessera-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Db(Box::new(e)))?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    pub(super) fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime
            .as_ref()
            .expect("runtime present until drop")
            .handle()
    }

    /// Runs `fut` on the backend's runtime and waits for its answer on this thread.
    pub(super) fn run<T, F>(&self, fut: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let task = self.handle().spawn(fut);
        match wait(task) {
            Ok(answer) => answer,
            Err(e) => Err(StoreError::Db(Box::new(e))),
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Wakes a parked thread.
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `fut` to completion on this thread, parking between polls. Used only on futures
/// that are driven elsewhere (a task handle, a channel), so nothing here does I/O.
pub(super) fn wait<F: Future>(fut: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}
