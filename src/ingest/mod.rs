//! Reading input files into [`Record`]s: one module per format, all streaming.
//!
//! A reader yields one record per input row. Rows it cannot place (no or bad coordinates)
//! still become records, with the reason in `geometry`; rows it cannot read at all become
//! [`IngestError::Row`] with file and line, and the importer decides when to give up.

mod csv;
mod csv_guard;
#[cfg(test)]
mod fuzz;
mod geojson;
mod json_scan;
mod sniff;

pub use self::geojson::convert as convert_geojson;

use crate::model::{Bounds, NoGeometry};
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// How to read the input; everything is optional and auto-detected when absent.
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    pub lon: Option<String>,
    pub lat: Option<String>,
    pub wkt: Option<String>,
    pub encoding: Encoding,
    pub id_column: Option<String>,
}

/// Text encoding of CSV input. `Auto` reads UTF-8 and falls back to Latin-1 for any
/// field that is not valid UTF-8 (portal exports from older systems are often Latin-1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Encoding {
    #[default]
    Auto,
    Utf8,
    Latin1,
}

impl std::str::FromStr for Encoding {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "auto" => Ok(Encoding::Auto),
            "utf8" | "utf-8" => Ok(Encoding::Utf8),
            "latin1" | "latin-1" | "iso-8859-1" | "windows-1252" | "cp1252" => Ok(Encoding::Latin1),
            _ => Err(format!(
                "unknown encoding `{s}` (use utf-8, latin1 or auto)"
            )),
        }
    }
}

/// A located geometry: geo-types for anything but a point, which is kept as bounds alone.
#[derive(Debug, Clone, PartialEq)]
pub struct Geometry {
    pub bounds: Bounds,
    /// The shape, converted once when read; `None` for a Point (its coordinates are the bounds).
    pub shape: Option<geo_types::Geometry<f64>>,
    pub type_name: &'static str,
}

/// One input row.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 1-based line (CSV) or feature number (GeoJSON) for messages.
    pub line: u64,
    pub geometry: Result<Geometry, NoGeometry>,
    /// Raw text of each property, by column index into [`RecordReader::columns`]; `None` when
    /// empty or null. Shorter than `columns()` when later columns are absent.
    pub values: Vec<Option<String>>,
    /// The input's own id for the row (GeoJSON `id` or the `--id-column` value).
    pub source_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{file}: {source}")]
    Io {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: line {line}: {message}")]
    Row {
        file: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{file}: {message}")]
    Setup { file: PathBuf, message: String },
    /// The reader lost its place (truncated, unbalanced, unclosed quote, over a size limit):
    /// never skippable, since what follows cannot be trusted to be whole rows.
    #[error("{file}: line {line}: {message}")]
    Format {
        file: PathBuf,
        line: u64,
        message: String,
    },
}

impl IngestError {
    /// Whether the importer may skip this row and go on (subject to `--max-errors`).
    pub fn is_row_error(&self) -> bool {
        matches!(self, IngestError::Row { .. })
    }
}

/// Limits that keep an import's memory bounded whatever the input holds.
pub mod limits {
    /// Largest CSV field: a bigger one is an unclosed quote or not a table at all.
    pub const MAX_FIELD_BYTES: usize = 1 << 20;
    /// Largest CSV row, all fields together.
    pub const MAX_RECORD_BYTES: usize = 16 << 20;
    /// Most fields in one CSV row, before the header is even compared.
    pub const MAX_FIELDS: usize = 10_000;
    /// Most property columns: SQLite allows 2,000 columns per table and the feature
    /// table needs 9 of its own (id, source id, bounds, geometry, time), with margin.
    pub const MAX_COLUMNS: usize = 1_990;
    /// Largest GeoJSON feature (a detailed country outline is a few MB).
    pub const MAX_FEATURE_BYTES: usize = 64 << 20;
    /// Deepest JSON nesting inside one feature (serde_json's own recursion limit).
    pub const MAX_DEPTH: u32 = 128;
}

/// A streaming source of records with a growing list of property columns.
pub trait RecordReader {
    /// Property column names known so far (GeoJSON discovers them as it reads).
    fn columns(&self) -> &[String];
    /// The next row, `None` at the end.
    fn next_record(&mut self) -> Option<Result<Record, IngestError>>;
    /// What the reader decided about the input (which columns carry the position, ...).
    fn describe(&self) -> String;
    /// Bytes consumed so far of the (decompressed) input, for progress.
    fn bytes_read(&self) -> u64;
}

/// Opens `path`, sniffing gzip by its magic bytes and the format by the first bytes of content.
pub fn open(path: &Path, opts: &IngestOptions) -> Result<Box<dyn RecordReader>, IngestError> {
    let io = |source| IngestError::Io {
        file: path.to_owned(),
        source,
    };
    let mut raw = BufReader::with_capacity(1 << 16, File::open(path).map_err(io)?);
    let gz = raw.fill_buf().map_err(io)?.starts_with(&[0x1f, 0x8b]);
    let inner: Box<dyn Read + Send> = if gz {
        Box::new(MultiGzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    let mut text = BufReader::with_capacity(1 << 16, CountingReader::new(inner));
    let start = sniff::start(&mut text).map_err(|e| e.into_ingest(path))?;
    match start.first {
        Some(b'{') | Some(b'[') | Some(0x1e) => Ok(Box::new(geojson::GeoJsonReader::new(
            path, text, opts, start.line,
        )?)),
        _ => Ok(Box::new(csv::CsvReader::new(path, text, opts, start.line)?)),
    }
}

/// Counts bytes passing through, shared with the reader that owns it.
#[derive(Debug)]
pub struct CountingReader<R> {
    inner: R,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R> CountingReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            count: Default::default(),
        }
    }
    fn counter(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.count.clone()
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

type Input = BufReader<CountingReader<Box<dyn Read + Send>>>;

/// Checks a lon/lat pair and classifies why it cannot be placed.
pub fn check_position(lon: f64, lat: f64) -> Result<(), NoGeometry> {
    if !lon.is_finite() || !lat.is_finite() {
        Err(NoGeometry::Unparseable)
    } else if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
        Err(NoGeometry::OutOfRange)
    } else if lon == 0.0 && lat == 0.0 {
        Err(NoGeometry::NullIsland)
    } else {
        Ok(())
    }
}

/// A point geometry after checking its position.
pub fn point(lon: f64, lat: f64) -> Result<Geometry, NoGeometry> {
    check_position(lon, lat)?;
    Ok(Geometry {
        bounds: Bounds::of_point(lon, lat),
        shape: None,
        type_name: "Point",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_classified() {
        assert!(point(-2.5, 51.4).is_ok());
        assert_eq!(point(0.0, 0.0).unwrap_err(), NoGeometry::NullIsland);
        assert_eq!(point(181.0, 0.0).unwrap_err(), NoGeometry::OutOfRange);
        assert_eq!(point(10.0, -91.0).unwrap_err(), NoGeometry::OutOfRange);
        assert_eq!(point(f64::NAN, 1.0).unwrap_err(), NoGeometry::Unparseable);
    }

    #[test]
    fn encodings_parse() {
        assert_eq!("LATIN1".parse::<Encoding>().unwrap(), Encoding::Latin1);
        assert_eq!("utf-8".parse::<Encoding>().unwrap(), Encoding::Utf8);
        assert!("ebcdic".parse::<Encoding>().is_err());
    }
}
