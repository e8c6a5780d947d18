//! `tessera copy`: moves datasets from one catalog to another (SQLite to PostgreSQL, back,
//! or between two of a kind) through the store traits alone, so any pair of backends works.
//!
//! A dataset is streamed: a reader thread scans the source in one snapshot and hands rows
//! over in batches through a small bounded channel while this thread writes them, so memory
//! stays at a few batches whatever the size, and reading and writing overlap. The new
//! version on the destination commits only when as many rows were written as the source
//! holds, and is read back afterwards to check its count.

use crate::model::{DatasetId, DatasetInfo};
use crate::store::{
    Catalog, FeatureRow, NewVersion, Query, StoreError, StoredFeature, StoredGeometry, WriteMode,
};
use std::sync::mpsc;
use std::time::Instant;

/// Rows per batch handed to the destination writer.
pub const BATCH: usize = 2_000;

/// Batches in flight between the reader and the writer.
const IN_FLIGHT: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("reading the source catalog: {0}")]
    Source(#[source] StoreError),
    #[error("dataset `{0}` is not in the source catalog")]
    Missing(DatasetId),
    #[error("`{id}`: {source}")]
    Store {
        id: DatasetId,
        #[source]
        source: StoreError,
    },
    /// Counts that disagree: before the commit (nothing changed on the destination) or
    /// after it (the message says so).
    #[error("`{id}`: {message}")]
    Count { id: DatasetId, message: String },
}

/// How far the copy of one dataset is.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub written: u64,
    pub total: u64,
}

/// What was copied.
#[derive(Debug, Clone, PartialEq)]
pub struct Copied {
    pub id: DatasetId,
    pub features: u64,
    /// The destination's version of the dataset.
    pub version: i64,
    pub seconds: f64,
    /// The source's numeric ids were not 1, 2, 3... in order, so the destination, which
    /// numbers rows in write order, serves other ids for the same features.
    pub renumbered: bool,
}

/// The datasets to copy: `only` (each checked to exist) or every dataset of the source.
pub fn datasets_to_copy(
    from: &dyn Catalog,
    only: &[DatasetId],
) -> Result<Vec<DatasetId>, CopyError> {
    let snap = from.snapshot().map_err(CopyError::Source)?;
    let all: Vec<DatasetId> = snap
        .datasets()
        .map_err(CopyError::Source)?
        .into_iter()
        .map(|d| d.id)
        .collect();
    if only.is_empty() {
        return Ok(all);
    }
    match only.iter().find(|id| !all.contains(id)) {
        Some(id) => Err(CopyError::Missing(id.clone())),
        None => Ok(only.to_vec()),
    }
}

/// A stored feature as a row to write: the same id (kept as the input's own when the
/// dataset serves those; numeric ids follow from the write order), geometry, time, values.
pub fn feature_row(f: StoredFeature, source_ids: bool) -> FeatureRow {
    let geometry = f.geometry.map(|g| match g {
        StoredGeometry::Point { lon, lat } => crate::ingest::Geometry {
            bounds: crate::model::Bounds::of_point(lon, lat),
            shape: None,
            type_name: "Point",
        },
        StoredGeometry::Shape { bounds, geometry } => crate::ingest::Geometry {
            bounds,
            type_name: crate::geometry::type_name(&geometry),
            shape: Some(geometry),
        },
    });
    FeatureRow {
        src: source_ids.then_some(f.id),
        geometry,
        time: f.time,
        values: f.values,
    }
}

/// What the reader thread sends: the dataset as its snapshot sees it, then row batches.
enum Message {
    Info(Box<DatasetInfo>),
    Rows(Vec<FeatureRow>),
}

/// What the reader found, once its scan is over.
struct Scanned {
    rows: u64,
    renumbered: bool,
}

/// Copies dataset `id` from `from` to `to`, replacing it there in one commit.
pub fn copy_dataset(
    from: &dyn Catalog,
    to: &dyn Catalog,
    id: &DatasetId,
    progress: &mut dyn FnMut(Progress),
) -> Result<Copied, CopyError> {
    let started = Instant::now();
    let store = |source: StoreError| CopyError::Store {
        id: id.clone(),
        source,
    };
    let (tx, rx) = mpsc::sync_channel::<Message>(IN_FLIGHT);
    let (wrote, scanned) = std::thread::scope(|scope| {
        let reader = scope.spawn(move || read(from, id, &tx));
        let wrote = write(to, id, &rx, progress);
        // A writer that failed stops the reader: its next send finds no receiver.
        drop(rx);
        let scanned = reader.join().unwrap_or_else(|_| {
            Err(store(StoreError::Config(
                "the thread reading the source panicked".into(),
            )))
        });
        (wrote, scanned)
    });
    let wrote = wrote?;
    let scanned = scanned?;
    let Some((info, written, writer)) = wrote else {
        return Err(CopyError::Missing(id.clone()));
    };
    let before = |message: String| CopyError::Count {
        id: id.clone(),
        message: format!("{message}; the destination is unchanged"),
    };
    if scanned.rows != info.feature_count {
        return Err(before(format!(
            "the source lists {} features but {} were read",
            info.feature_count, scanned.rows
        )));
    }
    if written != scanned.rows {
        return Err(before(format!(
            "{} features were read but {written} written",
            scanned.rows
        )));
    }
    let committed = writer
        .commit(NewVersion {
            meta: info.meta.clone(),
            geometry_type: info.geometry_type.clone(),
            bounds: info.bounds,
            time_extent: info.time_extent,
            without_geometry: info.without_geometry.clone(),
            timezone: info.timezone.clone(),
        })
        .map_err(store)?;
    check_copy(to, &info, committed.version)?;
    Ok(Copied {
        id: id.clone(),
        features: committed.feature_count,
        version: committed.version,
        seconds: started.elapsed().as_secs_f64(),
        renumbered: scanned.renumbered,
    })
}

/// Scans the source dataset in one snapshot and sends its rows in batches; stops early,
/// without an error, when the writer has gone (it reports why).
fn read(
    from: &dyn Catalog,
    id: &DatasetId,
    tx: &mpsc::SyncSender<Message>,
) -> Result<Scanned, CopyError> {
    let store = |source: StoreError| CopyError::Store {
        id: id.clone(),
        source,
    };
    let snap = from.snapshot().map_err(store)?;
    let info = snap
        .dataset(id)
        .map_err(store)?
        .ok_or_else(|| CopyError::Missing(id.clone()))?;
    let mut scanned = Scanned {
        rows: 0,
        renumbered: false,
    };
    if tx.send(Message::Info(Box::new(info.clone()))).is_err() {
        return Ok(scanned);
    }
    let source_ids = info.source_ids;
    let mut batch = Vec::with_capacity(BATCH);
    let mut open = true;
    snap.scan(&info, &Query::default(), &mut |f| {
        scanned.rows += 1;
        // Scan order is internal id order, and the destination numbers rows 1, 2, 3...
        // in write order: the served ids stay the same exactly when the source's are so.
        if !source_ids && f.id.parse::<u64>() != Ok(scanned.rows) {
            scanned.renumbered = true;
        }
        batch.push(feature_row(f, source_ids));
        if batch.len() == BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            open = tx.send(Message::Rows(full)).is_ok();
        }
        open
    })
    .map_err(store)?;
    if open && !batch.is_empty() {
        let _ = tx.send(Message::Rows(batch));
    }
    Ok(scanned)
}

/// A writer with every row the reader sent, not yet committed.
type Written<'a> = (
    Box<DatasetInfo>,
    u64,
    Box<dyn crate::store::DatasetWriter + 'a>,
);

/// Starts the new version on the destination and writes the batches as they come; `None`
/// when the reader stopped before it found the dataset (its own error says why).
fn write<'a>(
    to: &'a dyn Catalog,
    id: &DatasetId,
    rx: &mpsc::Receiver<Message>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Option<Written<'a>>, CopyError> {
    let store = |source: StoreError| CopyError::Store {
        id: id.clone(),
        source,
    };
    let Ok(Message::Info(info)) = rx.recv() else {
        return Ok(None);
    };
    let mut writer = to.writer(id, WriteMode::Replace).map_err(store)?;
    writer.schema(&info.fields).map_err(store)?;
    let mut written = 0;
    for message in rx {
        if let Message::Rows(rows) = message {
            writer.write(&rows).map_err(store)?;
            written += rows.len() as u64;
            progress(Progress {
                written,
                total: info.feature_count,
            });
        }
    }
    Ok(Some((info, written, writer)))
}

/// Reads the committed copy back and compares its counts with the source's.
fn check_copy(to: &dyn Catalog, source: &DatasetInfo, version: i64) -> Result<(), CopyError> {
    let id = &source.id;
    let store = |source: StoreError| CopyError::Store {
        id: id.clone(),
        source,
    };
    let after = |message: String| CopyError::Count {
        id: id.clone(),
        message: format!(
            "{message}; the copy was committed on the destination: check it, or copy it again"
        ),
    };
    let snap = to.snapshot().map_err(store)?;
    let Some(copy) = snap.dataset(id).map_err(store)? else {
        return Err(after("the copy is not in the destination catalog".into()));
    };
    if copy.version != version {
        return Err(after(format!(
            "the copy (version {version}) was replaced by version {} before it could be checked",
            copy.version
        )));
    }
    let counted = snap.count(&copy, &Query::default()).map_err(store)?;
    if copy.feature_count != source.feature_count || counted != source.feature_count {
        return Err(after(format!(
            "the source has {} features, the copy lists {} and counts {counted}",
            source.feature_count, copy.feature_count
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Bounds, Value};

    #[test]
    fn points_become_bare_positions_and_shapes_keep_their_type() {
        let point = StoredFeature {
            id: "7".into(),
            geometry: Some(StoredGeometry::Point {
                lon: -2.5,
                lat: 51.4,
            }),
            time: None,
            values: vec![Value::Integer(3)],
        };
        let row = feature_row(point, false);
        let g = row.geometry.expect("a geometry");
        assert_eq!((g.shape, g.type_name), (None, "Point"));
        assert_eq!(g.bounds, Bounds::of_point(-2.5, 51.4));
        // Numeric ids are not written: the destination numbers rows in write order.
        assert_eq!(row.src, None);
        assert_eq!(row.values, vec![Value::Integer(3)]);

        let line: geo_types::Geometry<f64> =
            geo_types::LineString::from(vec![(0.5, 1.0), (2.0, 3.0)]).into();
        let bounds = Bounds {
            min_x: 0.5,
            min_y: 1.0,
            max_x: 2.0,
            max_y: 3.0,
        };
        let shape = StoredFeature {
            id: "road-1".into(),
            geometry: Some(StoredGeometry::Shape {
                bounds,
                geometry: line.clone(),
            }),
            time: None,
            values: vec![],
        };
        let row = feature_row(shape, true);
        let g = row.geometry.expect("a geometry");
        assert_eq!(g.type_name, "LineString");
        assert_eq!(g.shape, Some(line));
        assert_eq!(g.bounds, bounds);
        // The input's own ids are kept as such.
        assert_eq!(row.src.as_deref(), Some("road-1"));
    }

    #[test]
    fn features_without_geometry_stay_without() {
        let f = StoredFeature {
            id: "1".into(),
            geometry: None,
            time: Some(crate::model::TimeRange { start: 0, end: 60 }),
            values: vec![Value::Null],
        };
        let row = feature_row(f, false);
        assert!(row.geometry.is_none());
        assert_eq!(
            row.time,
            Some(crate::model::TimeRange { start: 0, end: 60 })
        );
    }
}
