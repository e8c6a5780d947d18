//! `f=csv` exports: every match of an items query, streamed from a blocking thread
//! through a bounded channel, so an export of a million rows never sits in memory.

use super::output;
use super::params::ItemsRequest;
use crate::model::DatasetInfo;
use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;

/// Streams every match as CSV from a blocking thread, in chunks, through a bounded channel.
pub fn csv_export(
    catalog: std::sync::Arc<dyn crate::store::Catalog>,
    ds: DatasetInfo,
    mut req: ItemsRequest,
    tag: HeaderValue,
) -> Response {
    if !req.explicit_limit {
        req.query.limit = None;
    }
    let disposition = format!("attachment; filename=\"{}.csv\"", ds.id);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let sink = ChannelWriter {
            buf: Vec::with_capacity(1 << 16),
            tx: tx.clone(),
        };
        let mut w = csv::WriterBuilder::new().from_writer(sink);
        let props = req.properties.as_deref();
        let mut ok = w.write_record(output::csv_header(&ds, props)).is_ok();
        let result = catalog.snapshot().and_then(|snap| {
            snap.scan(&ds, &req.query, &mut |f| {
                // A failed write means the client went away: stop scanning.
                ok = ok && w.write_record(output::csv_row(&ds, &f, props)).is_ok();
                ok
            })
        });
        match (result, w.into_inner()) {
            (Ok(()), Ok(sink)) => {
                let _ = tx.blocking_send(Ok(sink.buf));
            }
            (Err(e), _) => {
                tracing::error!(error = %e, "CSV export failed midway");
                let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
            }
            (_, Err(_)) => {}
        }
    });
    let mut resp = Response::new(Body::from_stream(ReceiverStream(rx)));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(header::ETAG, tag);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// Collects CSV output and hands it to the response body in 64 KiB chunks.
struct ChannelWriter {
    buf: Vec<u8>,
    tx: tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 1 << 16 {
            let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(1 << 16));
            self.tx
                .blocking_send(Ok(chunk))
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct ReceiverStream<T>(tokio::sync::mpsc::Receiver<T>);

impl<T> futures_core::Stream for ReceiverStream<T> {
    type Item = T;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}
