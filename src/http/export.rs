//! Exports (`f=csv`, `f=ics`): the whole export is written at disk speed from the request's one
//! snapshot into a [`Spool`] (memory up to [`SPOOL_MEMORY`], then an anonymous temporary
//! file), and only then sent, at the client's pace, by an async body.
//!
//! Why a spool rather than a channel from the scanning thread: a slow reader would pin
//! that thread and a SQLite read transaction for as long as it stays connected (16 such
//! clients stopped the server). Spooled, it holds only a file descriptor and disk space.
//! Writing everything first also means the status comes after the data is known to be
//! whole: a failure (or the time limit) is a problem response, never a 200 cut short,
//! and the response carries its exact `Content-Length`.

use super::error::ApiError;
use super::formats::{self, Collection};
use super::lanes::Deadline;
use crate::model::DatasetInfo;
use crate::query::{Format, ItemsRequest};
use crate::store::Snapshot;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use std::io::{Seek, Write};
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;

/// Exports up to this size stay in memory; bigger ones go to a temporary file.
pub const SPOOL_MEMORY: usize = 1 << 20;

/// Chunk size of a spooled body.
const CHUNK: usize = 64 << 10;

/// Bytes written so far, in memory or (past [`SPOOL_MEMORY`]) in a temporary file.
#[derive(Debug, Default)]
pub struct Spool {
    mem: Vec<u8>,
    file: Option<std::io::BufWriter<std::fs::File>>,
    len: u64,
}

impl Write for Spool {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.file.is_none() && self.mem.len() + data.len() > SPOOL_MEMORY {
            // Unlinked at once: the file vanishes with its last descriptor, even on a crash.
            let mut f = std::io::BufWriter::with_capacity(CHUNK, tempfile::tempfile()?);
            f.write_all(&self.mem)?;
            self.mem = Vec::new();
            self.file = Some(f);
        }
        match &mut self.file {
            Some(f) => f.write_all(data)?,
            None => self.mem.extend_from_slice(data),
        }
        self.len += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
    }
}

/// A finished spool, ready to be sent.
#[derive(Debug)]
pub enum Spooled {
    Memory(Vec<u8>),
    File { file: std::fs::File, len: u64 },
}

impl Spool {
    pub fn finish(self) -> std::io::Result<Spooled> {
        match self.file {
            None => Ok(Spooled::Memory(self.mem)),
            Some(f) => {
                let mut file = f.into_inner().map_err(|e| e.into_error())?;
                file.rewind()?;
                Ok(Spooled::File {
                    file,
                    len: self.len,
                })
            }
        }
    }
}

/// A spooled export and what its response says about it.
#[derive(Debug)]
pub struct Export {
    pub body: Spooled,
    pub content_type: &'static str,
    /// Of the download's file name.
    pub extension: &'static str,
}

/// Writes every match of `req` in `format` into a spool, from this one snapshot; stops
/// with an error when the deadline passes.
pub fn spool(
    snap: &dyn Snapshot,
    base: &str,
    ds: &DatasetInfo,
    mut req: ItemsRequest,
    format: Format,
    deadline: &Deadline,
) -> Result<Export, ApiError> {
    if !req.explicit_limit {
        req.query.limit = None;
    }
    // A calendar holds only items with a time; how many matches it leaves out is counted
    // first, as its properties come before its events.
    let mut skipped = None;
    if format == Format::Ics && req.query.time.is_none() {
        let all = snap.count(ds, &req.query)?;
        req.query.time = Some(crate::model::TimeRange {
            start: i64::MIN,
            end: i64::MAX,
        });
        skipped = Some(all.saturating_sub(snap.count(ds, &req.query)?));
    } else if format == Format::Ics {
        skipped = Some(0); // a time filter already excludes items without a time
    }
    let c = Collection {
        base,
        ds,
        properties: req.properties.as_deref(),
        page: None,
    };
    let mut w = match format {
        Format::Ics => Box::new(formats::ics::IcsWriter::new(Spool::default(), skipped)),
        _ => formats::writer(format, Spool::default()),
    };
    let (content_type, extension) = (w.content_type(), w.extension());
    let io_error = |e: std::io::Error| ApiError::internal(format!("export spool: {e}"));
    w.begin(&c).map_err(io_error)?;
    let mut failed = None;
    snap.scan(ds, &req.query, &mut |f| {
        if deadline.passed() {
            failed = Some(ApiError::internal("export stopped at its deadline"));
            return false;
        }
        match w.feature(&c, f) {
            Ok(()) => true,
            Err(e) => {
                failed = Some(io_error(e));
                false
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    let body = w.finish(&c).and_then(Spool::finish).map_err(io_error)?;
    Ok(Export {
        body,
        content_type,
        extension,
    })
}

/// The response for a finished export. `slot` is held until the body is sent or the
/// connection dropped; delivery taking longer than `max` in all is aborted (the client
/// sees a cut connection, never a clean end).
pub fn export_response(
    ds: &DatasetInfo,
    tag: HeaderValue,
    export: Export,
    slot: Option<OwnedSemaphorePermit>,
    max: Duration,
) -> Response {
    let (reader, len): (Box<dyn tokio::io::AsyncRead + Send + Unpin>, u64) = match export.body {
        Spooled::Memory(bytes) => {
            let len = bytes.len() as u64;
            (Box::new(std::io::Cursor::new(bytes)), len)
        }
        Spooled::File { file, len } => (Box::new(tokio::fs::File::from_std(file)), len),
    };
    let body = Body::from_stream(Delivery {
        inner: tokio_util::io::ReaderStream::with_capacity(reader, CHUNK),
        deadline: tokio::time::Instant::now() + max,
        _slot: slot,
    });
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(export.content_type),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ETAG, tag);
    let disposition = format!("attachment; filename=\"{}.{}\"", ds.id, export.extension);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// A spooled body with an overall delivery deadline and the export slot it occupies.
struct Delivery<S> {
    inner: S,
    deadline: tokio::time::Instant,
    _slot: Option<OwnedSemaphorePermit>,
}

impl<S> futures_core::Stream for Delivery<S>
where
    S: futures_core::Stream<Item = std::io::Result<Bytes>> + Unpin,
{
    type Item = std::io::Result<Bytes>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if tokio::time::Instant::now() >= self.deadline {
            tracing::warn!("CSV export delivery passed its time limit; closing");
            return std::task::Poll::Ready(Some(Err(std::io::ErrorKind::TimedOut.into())));
        }
        std::pin::Pin::new(&mut self.inner).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn spool_moves_to_a_file_past_its_memory_and_keeps_every_byte() {
        let mut s = Spool::default();
        let line: Vec<u8> = (0..=255u8).collect();
        let n = SPOOL_MEMORY / line.len() * 3;
        for _ in 0..n {
            s.write_all(&line).unwrap();
        }
        let Spooled::File { mut file, len } = s.finish().unwrap() else {
            panic!("a spool of 3 MiB must be on disk");
        };
        assert_eq!(len, (n * line.len()) as u64);
        let mut back = Vec::new();
        file.read_to_end(&mut back).unwrap();
        assert_eq!(back.len() as u64, len);
        assert!(back.chunks(256).all(|c| c == line.as_slice()));
    }

    #[test]
    fn small_spool_stays_in_memory() {
        let mut s = Spool::default();
        s.write_all(b"id\n1\n").unwrap();
        assert!(matches!(s.finish().unwrap(), Spooled::Memory(m) if m == b"id\n1\n"));
    }
}
