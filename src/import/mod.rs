//! The import pipeline, the same for every backend: read the input files ([`ingest`]),
//! infer column types, choose the time column, count what cannot be placed or read
//! (within `--max-errors`), refuse an input that yields nothing, order the rows (Hilbert
//! key, ties in input order; spilled to temporary files past [`rows::MEMORY_BUDGET`]),
//! and hand typed rows to a [`DatasetWriter`], which commits them as one new version.
//!
//! `--append` reads only the new files: the writer copies its base version's rows
//! itself, so an append's memory does not grow with the dataset.

mod columns;
pub mod infer;
mod rows;

use crate::ingest::{self, IngestError, IngestOptions, Record};
use crate::model::{Bounds, DatasetId, DatasetMeta, NoGeometry, TimeRange};
use crate::store::{Catalog, DatasetWriter, FeatureRow, NewVersion, StoreError, WriteMode};
use columns::{Columns, RowTime, TimeColumns, Typer};
use jiff::tz::TimeZone;
use rows::{Row, SortedRows, hilbert_key};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

pub use rows::MEMORY_BUDGET;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("import stopped after {count} unreadable rows (--max-errors {max}); first: {first}")]
    TooManyErrors { count: u64, max: u64, first: String },
    #[error("import configuration: {0}")]
    Config(String),
    #[error("temporary file for sorting rows: {0}")]
    Spill(#[from] std::io::Error),
}

/// What to import and how.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub id: DatasetId,
    pub meta: DatasetMeta,
    pub files: Vec<PathBuf>,
    pub options: IngestOptions,
    /// Column giving the feature time; `None` picks a column named like a date, if any parses.
    pub time: Option<String>,
    pub time_end: Option<String>,
    /// Zone for date-times written without an offset.
    pub timezone: TimeZone,
    /// Add to the dataset instead of replacing it.
    pub append: bool,
    /// Unreadable rows tolerated before the import fails (and leaves the old data in place).
    pub max_errors: u64,
}

/// Live counters for a progress display.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub file: PathBuf,
    pub rows: u64,
    pub bytes: u64,
}

/// The end-of-import summary.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub rows_read: u64,
    pub imported: u64,
    pub without_geometry: Vec<(NoGeometry, u64)>,
    /// Unreadable rows that were skipped, with the first messages.
    pub errors: u64,
    pub error_samples: Vec<String>,
    /// Rows whose time column held something that is not a date.
    pub time_unparsed: u64,
    pub time_column: Option<String>,
    /// What the readers decided (position columns, formats), one line per file.
    pub notes: Vec<String>,
    pub seconds: f64,
    pub version: i64,
}

impl ImportReport {
    pub fn rows_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.rows_read as f64 / self.seconds
        } else {
            0.0
        }
    }
}

const MAX_ERROR_SAMPLES: usize = 10;
/// Rows handed to the writer at a time.
const BATCH: usize = 4096;

/// Runs a whole import into `catalog`. Nothing in the catalog changes unless this returns `Ok`.
pub fn run(
    catalog: &dyn Catalog,
    req: &ImportRequest,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ImportReport, ImportError> {
    run_with_budget(catalog, req, progress, MEMORY_BUDGET)
}

/// [`run`] with a given memory budget for rows (0 sorts every row on disk).
pub fn run_with_budget(
    catalog: &dyn Catalog,
    req: &ImportRequest,
    progress: &mut dyn FnMut(&Progress),
    budget: usize,
) -> Result<ImportReport, ImportError> {
    let mode = if req.append {
        WriteMode::Append
    } else {
        WriteMode::Replace
    };
    let writer = catalog.writer(&req.id, mode)?;
    write_version(writer, req, progress, budget)
}

/// Reads every file, then writes and commits the new version through `writer`.
pub fn write_version(
    mut writer: Box<dyn DatasetWriter + '_>,
    req: &ImportRequest,
    progress: &mut dyn FnMut(&Progress),
    budget: usize,
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let mut st = Collector::new(budget);
    if let Some(base) = writer.base() {
        // Old fields keep their places: the writer copies their columns as they are.
        for f in &base.fields {
            st.columns.column(&f.name);
        }
    }
    for file in &req.files {
        st.read_file(req, file, progress)?;
    }
    tracing::debug!(secs = started.elapsed().as_secs_f64(), "read");
    let fields = st.columns.fields(writer.base());
    writer.schema(&fields)?;
    let typer = Typer::new(&fields, &req.timezone);
    let mut batch: Vec<FeatureRow> = Vec::with_capacity(BATCH);
    for row in st.rows.into_sorted()? {
        let row = row?;
        let mut values = Vec::new();
        typer.values(row.cells, &mut values);
        batch.push(FeatureRow {
            src: row.src,
            geometry: row.geometry,
            time: row.time,
            values,
        });
        if batch.len() == BATCH {
            writer.write(&batch)?;
            batch.clear();
        }
    }
    writer.write(&batch)?;
    tracing::debug!(secs = started.elapsed().as_secs_f64(), "rows written");

    let mut summary = st.summary;
    if let Some(base) = writer.base() {
        summary.add_base(base);
    }
    let mut report = st.report;
    report.without_geometry = summary.no_geom.iter().map(|(k, v)| (*k, *v)).collect();
    let committed = writer.commit(NewVersion {
        meta: DatasetMeta {
            // The end column is an import option; readers of the metadata learn of it here.
            end_time: req.meta.end_time.clone().or_else(|| req.time_end.clone()),
            ..req.meta.clone()
        },
        geometry_type: summary.geometry_type(),
        bounds: summary.bounds,
        time_extent: summary.time,
        without_geometry: report.without_geometry.clone(),
        timezone: req.timezone.iana_name().map(str::to_owned),
    })?;
    report.imported = committed.feature_count;
    report.version = committed.version;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// What the whole new version holds, for its metadata.
#[derive(Debug, Default)]
struct Summary {
    no_geom: BTreeMap<NoGeometry, u64>,
    /// Of the new rows (names the readers give; no allocation per row) and of the base.
    geometry_types: BTreeSet<&'static str>,
    base_type: Option<String>,
    bounds: Option<Bounds>,
    time: Option<TimeRange>,
}

impl Summary {
    fn add_bounds(&mut self, b: &Bounds) {
        match &mut self.bounds {
            Some(all) => all.extend(b),
            None => self.bounds = Some(*b),
        }
    }

    fn add_time(&mut self, t: TimeRange) {
        let all = self.time.get_or_insert(t);
        all.start = all.start.min(t.start);
        all.end = all.end.max(t.end);
    }

    /// Counts the base version's rows in, from its metadata (they are not read).
    fn add_base(&mut self, base: &crate::model::DatasetInfo) {
        for (reason, n) in &base.without_geometry {
            *self.no_geom.entry(*reason).or_default() += n;
        }
        self.base_type.clone_from(&base.geometry_type);
        if let Some(b) = &base.bounds {
            self.add_bounds(b);
        }
        if let Some(t) = base.time_extent {
            self.add_time(t);
        }
    }

    fn geometry_type(&self) -> Option<String> {
        let mut all: BTreeSet<&str> = self.geometry_types.clone();
        all.extend(self.base_type.as_deref());
        match all.len() {
            0 => None,
            1 => all.first().map(|t| (*t).to_owned()),
            _ => Some("Geometry".to_owned()),
        }
    }
}

/// State of one import while rows stream in.
struct Collector {
    columns: Columns,
    time: Option<TimeColumns>,
    report: ImportReport,
    summary: Summary,
    rows: SortedRows,
}

impl Collector {
    fn new(budget: usize) -> Self {
        Self {
            columns: Columns::default(),
            time: None,
            report: ImportReport::default(),
            summary: Summary::default(),
            rows: SortedRows::new(budget),
        }
    }

    fn read_file(
        &mut self,
        req: &ImportRequest,
        file: &std::path::Path,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<(), ImportError> {
        let mut reader = ingest::open(file, &req.options)?;
        let mut p = Progress {
            file: file.to_owned(),
            rows: 0,
            bytes: 0,
        };
        let mut placed = 0u64;
        // Fields follow the header, including columns that are empty in every row.
        let mut known = 0;
        let mut map: Vec<usize> = Vec::new();
        while let Some(next) = reader.next_record() {
            match next {
                Ok(rec) => {
                    placed += 1;
                    if reader.columns().len() > known {
                        for name in &reader.columns()[known..] {
                            map.push(self.columns.column(name));
                        }
                        known = reader.columns().len();
                    }
                    self.push(req, rec, &map)?;
                }
                Err(e) if e.is_row_error() => self.record_error(e, req.max_errors)?,
                Err(e) => return Err(e.into()),
            }
            p.rows += 1;
            if p.rows.is_multiple_of(8192) {
                p.bytes = reader.bytes_read();
                progress(&p);
            }
        }
        p.bytes = reader.bytes_read();
        progress(&p);
        // An empty result from a file is far likelier a misread (wrong format, a cut
        // download) than an intended empty dataset: it must not replace the data.
        if placed == 0 {
            return Err(IngestError::Setup {
                file: file.to_owned(),
                message: format!(
                    "no rows could be read ({} unreadable): nothing to import",
                    p.rows
                ),
            }
            .into());
        }
        self.report.notes.push(format!(
            "{}: {} ({} rows)",
            file.display(),
            reader.describe(),
            p.rows
        ));
        Ok(())
    }

    fn record_error(&mut self, e: IngestError, max: u64) -> Result<(), ImportError> {
        let report = &mut self.report;
        report.errors += 1;
        if report.error_samples.len() < MAX_ERROR_SAMPLES {
            report.error_samples.push(e.to_string());
        }
        if report.errors > max {
            let first = report.error_samples.first().cloned().unwrap_or_default();
            return Err(ImportError::TooManyErrors {
                count: report.errors,
                max,
                first,
            });
        }
        Ok(())
    }

    /// One record: its cells observed for inference, its time, its place in the order.
    /// `map` takes the file's column index to the import's.
    fn push(&mut self, req: &ImportRequest, rec: Record, map: &[usize]) -> Result<(), ImportError> {
        let mut cells: Vec<(usize, String)> = Vec::with_capacity(rec.values.len());
        for (i, v) in rec.values.into_iter().enumerate() {
            if let (Some(v), Some(&col)) = (v, map.get(i)) {
                self.columns.observe(col, &v);
                cells.push((col, v));
            }
        }
        if self.time.is_none() {
            let t = self
                .columns
                .time_columns(req.time.as_deref(), req.time_end.as_deref())?;
            self.report.time_column = t.name.clone();
            self.time = Some(t);
        }
        let time = match self.time.as_ref().map(|t| t.of(&cells, &req.timezone)) {
            Some(RowTime::At(t)) => {
                self.summary.add_time(t);
                Some(t)
            }
            Some(RowTime::Unparsed) => {
                self.report.time_unparsed += 1;
                None
            }
            _ => None,
        };
        let (hkey, geometry) = match rec.geometry {
            Ok(g) => {
                self.summary.geometry_types.insert(g.type_name);
                self.summary.add_bounds(&g.bounds);
                let b = g.bounds;
                let key = hilbert_key((b.min_x + b.max_x) / 2.0, (b.min_y + b.max_y) / 2.0);
                (key, Some(g))
            }
            Err(reason) => {
                *self.summary.no_geom.entry(reason).or_default() += 1;
                (i64::MAX, None)
            }
        };
        let row = Row {
            src: rec.source_id,
            geometry,
            time,
            cells,
        };
        self.rows.push(hkey, &row)?;
        self.report.rows_read += 1;
        Ok(())
    }
}
