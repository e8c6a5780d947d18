//! CSV input (plain or gzip): header row, then one feature per row.

use super::csv_guard::{Broken, CsvGuard};
use super::limits::MAX_COLUMNS;
use super::{Encoding, Geometry, IngestError, IngestOptions, Input, Record, RecordReader, point};
use crate::model::NoGeometry;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const LON_NAMES: [&str; 5] = ["longitude", "lon", "lng", "long", "x"];
const LAT_NAMES: [&str; 3] = ["latitude", "lat", "y"];
const LOCATION_NAMES: [&str; 6] = [
    "location", "lat/long", "the_geom", "geom", "geometry", "wkt",
];

/// Where a row's position comes from.
#[derive(Debug, Clone)]
enum Position {
    /// Two numeric columns, with an optional location column as fallback when they are empty.
    Pair {
        lon: usize,
        lat: usize,
        fallback: Option<usize>,
    },
    /// One column holding `POINT (lon lat)` or `(lat, lon)`.
    Location(usize),
    None,
}

pub struct CsvReader {
    file: PathBuf,
    reader: csv::Reader<CsvGuard<Input>>,
    /// Lines skipped before the parser started (blank lines before the header).
    line_offset: u64,
    columns: Vec<String>,
    position: Position,
    encoding: Encoding,
    record: csv::ByteRecord,
    id_column: Option<usize>,
    bytes: Arc<AtomicU64>,
}

impl CsvReader {
    /// `line` is the line on which `input` starts.
    pub fn new(
        path: &Path,
        input: Input,
        opts: &IngestOptions,
        line: u64,
    ) -> Result<Self, IngestError> {
        let bytes = input.get_ref().counter();
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(CsvGuard::new(input, line));
        let setup = |message: String| IngestError::Setup {
            file: path.to_owned(),
            message,
        };
        let header = reader.byte_headers().map_err(|e| fatal(path, line, e))?;
        if header.len() > MAX_COLUMNS {
            return Err(IngestError::Format {
                file: path.to_owned(),
                line,
                message: format!(
                    "the header has {} columns; at most {MAX_COLUMNS} are supported",
                    header.len()
                ),
            });
        }
        let mut columns = Vec::with_capacity(header.len());
        for (i, raw) in header.iter().enumerate() {
            let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
            let name = decode(raw, opts.encoding)
                .map_err(|_| setup(format!("column {} of the header is not UTF-8", i + 1)))?;
            columns.push(name.trim().to_owned());
        }
        if columns.iter().all(String::is_empty) {
            return Err(setup("the header row is empty".into()));
        }
        let position = choose_position(&columns, opts).map_err(setup)?;
        let id_column = match &opts.id_column {
            Some(name) => Some(named(&columns, name, "--id-column").map_err(setup)?),
            None => None,
        };
        Ok(Self {
            id_column,
            file: path.to_owned(),
            reader,
            line_offset: line - 1,
            columns,
            position,
            encoding: opts.encoding,
            record: csv::ByteRecord::new(),
            bytes,
        })
    }

    fn row_error(&self, line: u64, message: String) -> IngestError {
        IngestError::Row {
            file: self.file.clone(),
            line,
            message,
        }
    }
}

/// A parser error: the guard's reason with its line, or the I/O error as it came. The
/// CSV parser itself accepts any bytes (flexible rows, byte records), so every error it
/// returns means the input could not be read on: never a row to skip.
fn fatal(path: &Path, line: u64, e: csv::Error) -> IngestError {
    let broken = match e.kind() {
        csv::ErrorKind::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<Broken>()),
        _ => None,
    };
    match broken {
        Some(b) => IngestError::Format {
            file: path.to_owned(),
            line: b.line,
            message: b.message.clone(),
        },
        None => IngestError::Format {
            file: path.to_owned(),
            line: e.position().map_or(line, |p| p.line()),
            message: e.to_string(),
        },
    }
}

fn find(columns: &[String], names: &[&str]) -> Option<usize> {
    names
        .iter()
        .find_map(|n| columns.iter().position(|c| c.eq_ignore_ascii_case(n)))
}

fn named(columns: &[String], name: &str, flag: &str) -> Result<usize, String> {
    columns.iter().position(|c| c == name).ok_or_else(|| {
        format!(
            "{flag} `{name}` is not a column (columns: {})",
            columns.join(", ")
        )
    })
}

fn choose_position(columns: &[String], opts: &IngestOptions) -> Result<Position, String> {
    if let Some(w) = &opts.wkt {
        return Ok(Position::Location(named(columns, w, "--wkt")?));
    }
    let location = find(columns, &LOCATION_NAMES);
    match (&opts.lon, &opts.lat) {
        (Some(lon), Some(lat)) => {
            let (lon, lat) = (named(columns, lon, "--lon")?, named(columns, lat, "--lat")?);
            return Ok(Position::Pair {
                lon,
                lat,
                fallback: None,
            });
        }
        (None, None) => {}
        _ => return Err("--lon and --lat go together".into()),
    }
    Ok(
        match (
            find(columns, &LON_NAMES),
            find(columns, &LAT_NAMES),
            location,
        ) {
            (Some(lon), Some(lat), fallback) => Position::Pair { lon, lat, fallback },
            (_, _, Some(loc)) => Position::Location(loc),
            _ => Position::None,
        },
    )
}

/// Decodes one field. Latin-1 maps each byte to the code point of the same number.
fn decode(raw: &[u8], encoding: Encoding) -> Result<String, ()> {
    match encoding {
        Encoding::Latin1 => Ok(raw.iter().map(|&b| b as char).collect()),
        Encoding::Utf8 => std::str::from_utf8(raw).map(str::to_owned).map_err(|_| ()),
        Encoding::Auto => Ok(match std::str::from_utf8(raw) {
            Ok(s) => s.to_owned(),
            Err(_) => raw.iter().map(|&b| b as char).collect(),
        }),
    }
}

/// Parses `POINT (lon lat)` (any case, optional Z) or `(lat, lon)`.
pub fn parse_location(s: &str) -> Result<(f64, f64), NoGeometry> {
    let s = s.trim();
    if s.is_empty() {
        return Err(NoGeometry::Missing);
    }
    let upper = s.to_ascii_uppercase();
    let (body, wkt) = if let Some(rest) = upper.strip_prefix("POINT") {
        let rest = rest.trim_start();
        let rest = rest.strip_prefix('Z').unwrap_or(rest).trim_start();
        if rest.starts_with("EMPTY") {
            return Err(NoGeometry::Missing);
        }
        (rest, true)
    } else {
        (upper.as_str(), false)
    };
    let inner = body
        .strip_prefix('(')
        .and_then(|b| b.strip_suffix(')'))
        .ok_or(NoGeometry::Unparseable)?;
    let nums: Vec<f64> = inner
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<f64>().map_err(|_| NoGeometry::Unparseable))
        .collect::<Result<_, _>>()?;
    match (wkt, nums.as_slice()) {
        (true, [lon, lat, ..]) => Ok((*lon, *lat)),
        (false, [lat, lon]) => Ok((*lon, *lat)),
        _ => Err(NoGeometry::Unparseable),
    }
}

fn parse_pair(lon: &str, lat: &str) -> Result<Geometry, NoGeometry> {
    let (lon, lat) = (lon.trim(), lat.trim());
    if lon.is_empty() || lat.is_empty() {
        return Err(NoGeometry::Missing);
    }
    match (lon.parse::<f64>(), lat.parse::<f64>()) {
        (Ok(x), Ok(y)) => point(x, y),
        _ => Err(NoGeometry::Unparseable),
    }
}

impl RecordReader for CsvReader {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn next_record(&mut self) -> Option<Result<Record, IngestError>> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => return None,
            Ok(true) => {}
            Err(e) => {
                let line = self.reader.get_ref().line();
                return Some(Err(fatal(&self.file, line, e)));
            }
        }
        let line = self.record.position().map_or(0, |p| p.line()) + self.line_offset;
        if self.record.len() > self.columns.len() {
            let msg = format!(
                "{} fields but the header has {}",
                self.record.len(),
                self.columns.len()
            );
            return Some(Err(self.row_error(line, msg)));
        }
        let mut values = Vec::with_capacity(self.columns.len());
        for (i, raw) in self.record.iter().enumerate() {
            if raw.contains(&0) {
                let msg = format!("column `{}` holds a NUL byte", self.columns[i]);
                return Some(Err(self.row_error(line, msg)));
            }
            match decode(raw, self.encoding) {
                Ok(s) if s.trim().is_empty() => values.push(None),
                Ok(s) => values.push(Some(s)),
                Err(()) => {
                    let msg = format!(
                        "column `{}` is not valid UTF-8 (try --encoding latin1)",
                        self.columns[i]
                    );
                    return Some(Err(self.row_error(line, msg)));
                }
            }
        }
        let cell = |i: usize| values.get(i).and_then(|v| v.as_deref()).unwrap_or("");
        let geometry = match self.position {
            Position::Pair { lon, lat, fallback } => {
                match (parse_pair(cell(lon), cell(lat)), fallback) {
                    // Only a location that parses counts: UK crime's `Location` is a street name.
                    (Err(NoGeometry::Missing), Some(loc)) => match parse_location(cell(loc)) {
                        Ok((x, y)) => point(x, y),
                        Err(_) => Err(NoGeometry::Missing),
                    },
                    (g, _) => g,
                }
            }
            Position::Location(loc) => parse_location(cell(loc)).and_then(|(x, y)| point(x, y)),
            Position::None => Err(NoGeometry::Missing),
        };
        let source_id = self
            .id_column
            .and_then(|i| values.get(i).cloned().flatten());
        Some(Ok(Record {
            line,
            geometry,
            values,
            source_id,
        }))
    }

    fn describe(&self) -> String {
        let c = |i: usize| format!("`{}`", self.columns[i]);
        match self.position {
            Position::Pair {
                lon,
                lat,
                fallback: Some(f),
            } => {
                format!(
                    "position from {} / {} (or {} when empty)",
                    c(lon),
                    c(lat),
                    c(f)
                )
            }
            Position::Pair { lon, lat, .. } => format!("position from {} / {}", c(lon), c(lat)),
            Position::Location(l) => format!("position from {}", c(l)),
            Position::None => "no position column found: rows are imported without geometry".into(),
        }
    }

    fn bytes_read(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_forms() {
        assert_eq!(parse_location("POINT (-73.88 40.65)"), Ok((-73.88, 40.65)));
        assert_eq!(parse_location("point(-73.88 40.65)"), Ok((-73.88, 40.65)));
        assert_eq!(parse_location("(41.94, -87.64)"), Ok((-87.64, 41.94)));
        assert_eq!(parse_location(""), Err(NoGeometry::Missing));
        assert_eq!(parse_location("POINT EMPTY"), Err(NoGeometry::Missing));
        assert_eq!(parse_location("somewhere"), Err(NoGeometry::Unparseable));
        assert_eq!(parse_location("(1, 2, 3)"), Err(NoGeometry::Unparseable));
    }

    #[test]
    fn latin1_fallback() {
        assert_eq!(decode(b"caf\xe9", Encoding::Auto).unwrap(), "café");
        assert_eq!(decode("café".as_bytes(), Encoding::Auto).unwrap(), "café");
        assert!(decode(b"caf\xe9", Encoding::Utf8).is_err());
    }
}
