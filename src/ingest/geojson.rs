//! GeoJSON input: a FeatureCollection (streamed feature by feature, never loaded whole),
//! newline-delimited GeoJSON, or RFC 8142 GeoJSON text sequences. [`super::json_scan`]
//! delimits each feature; it is parsed here on its own, so a bad one is one row error.

use super::json_scan::{Piece, ScanError, Scanner};
use super::limits::{MAX_COLUMNS, MAX_DEPTH};
use super::{Geometry, IngestError, IngestOptions, Input, Record, RecordReader, check_position};
use crate::model::{Bounds, NoGeometry};
use geojson::GeometryValue;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct GeoJsonReader {
    file: PathBuf,
    scanner: Scanner<Input>,
    columns: Vec<String>,
    index: HashMap<String, usize>,
    count: u64,
    id_column: Option<String>,
    bytes: Arc<AtomicU64>,
    /// Set after a structural error: the rest of the input is not read.
    failed: bool,
}

/// A feature as found in the input; the geometry is kept as text so that a geometry
/// that is not valid GeoJSON (`1e400`, a string) costs the row its place, not its data.
#[derive(Deserialize)]
struct RawFeature<'a> {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default, borrow)]
    geometry: Option<&'a RawValue>,
    #[serde(default)]
    properties: Option<Map<String, Value>>,
}

impl GeoJsonReader {
    /// `line` is the line on which `input` starts.
    pub fn new(
        path: &Path,
        mut input: Input,
        opts: &IngestOptions,
        line: u64,
    ) -> Result<Self, IngestError> {
        let bytes = input.get_ref().counter();
        let first = std::io::BufRead::fill_buf(&mut input)
            .map_err(|source| IngestError::Io {
                file: path.to_owned(),
                source,
            })?
            .first()
            .copied();
        if first == Some(b'[') {
            return Err(IngestError::Setup {
                file: path.to_owned(),
                message: "a bare JSON array is not GeoJSON: expected a FeatureCollection or one Feature per line".into(),
            });
        }
        Ok(Self {
            file: path.to_owned(),
            scanner: Scanner::new(input, line),
            columns: Vec::new(),
            index: HashMap::new(),
            count: 0,
            id_column: opts.id_column.clone(),
            bytes,
            failed: false,
        })
    }

    fn column(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        self.columns.push(name.to_owned());
        self.index.insert(name.to_owned(), self.columns.len() - 1);
        self.columns.len() - 1
    }

    /// Parses one delimited feature; the error is the row's message.
    fn record(&mut self, bytes: &[u8], line: u64) -> Result<Record, String> {
        let raw: RawFeature = serde_json::from_slice(bytes).map_err(|e| json_message(&e, line))?;
        if raw.kind != "Feature" {
            return Err(format!("a `{}` where a Feature was expected", raw.kind));
        }
        let props = raw.properties.unwrap_or_default();
        let new = props
            .keys()
            .filter(|k| !self.index.contains_key(*k))
            .count();
        if self.columns.len() + new > MAX_COLUMNS {
            return Err(format!(
                "its properties would make {} columns; at most {MAX_COLUMNS} are supported",
                self.columns.len() + new
            ));
        }
        let mut values: Vec<Option<String>> = Vec::new();
        for (k, v) in &props {
            let i = self.column(k);
            if values.len() <= i {
                values.resize(i + 1, None);
            }
            values[i] = value_text(v);
        }
        let geometry = match raw.geometry {
            None => Err(NoGeometry::Missing),
            Some(g) => serde_json::from_str::<geojson::Geometry>(g.get())
                .map_err(|_| NoGeometry::Unparseable)
                .and_then(convert),
        };
        let source_id = match &self.id_column {
            Some(col) => props.get(col).and_then(value_text),
            None => match raw.id {
                Some(Value::String(s)) => Some(s),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            },
        };
        Ok(Record {
            line: self.count,
            geometry,
            values,
            source_id,
        })
    }
}

/// serde_json's message with the position made absolute (it counts from the feature).
fn json_message(e: &serde_json::Error, start: u64) -> String {
    let text = e.to_string();
    let what = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(w, _)| w);
    if what.contains("recursion limit") {
        return format!("JSON nested more than {MAX_DEPTH} levels deep");
    }
    let line = start + (e.line() as u64).saturating_sub(1);
    format!("{what} (line {line}, column {})", e.column())
}

/// Text form of a property value; `None` for null and empty strings.
fn value_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) if s.trim().is_empty() => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Converts a GeoJSON geometry to geo-types, checking every position (a third
/// coordinate, if any, is dropped: shapes are stored XY).
pub fn convert(g: geojson::Geometry) -> Result<Geometry, NoGeometry> {
    let mut bounds: Option<Bounds> = None;
    let mut visit = |p: &geojson::Position| -> Result<(), NoGeometry> {
        let (x, y) = match p.as_slice() {
            [x, y, ..] => (*x, *y),
            _ => return Err(NoGeometry::Unparseable),
        };
        check_position(x, y).or_else(|e| {
            if e == NoGeometry::NullIsland {
                Ok(())
            } else {
                Err(e)
            }
        })?;
        let b = Bounds::of_point(x, y);
        match &mut bounds {
            Some(acc) => acc.extend(&b),
            None => bounds = Some(b),
        }
        Ok(())
    };
    walk(&g.value, &mut visit)?;
    let bounds = bounds.ok_or(NoGeometry::Missing)?;
    well_formed(&g.value)?;
    if let GeometryValue::Point { .. } = g.value {
        check_position(bounds.min_x, bounds.min_y)?;
        return Ok(Geometry {
            bounds,
            shape: None,
            type_name: "Point",
        });
    }
    let type_name = g.value.type_name();
    // Every position has two coordinates by now, the one thing the conversion needs.
    let shape = geo_types::Geometry::try_from(g.value).map_err(|_| NoGeometry::Unparseable)?;
    Ok(Geometry {
        bounds,
        shape: Some(shape),
        type_name,
    })
}

/// Rings closed with at least four positions, lines of at least two: what clipping and
/// tile encoding assume. Anything else is kept without geometry, counted as unparseable.
fn well_formed(v: &GeometryValue) -> Result<(), NoGeometry> {
    let same = |a: &geojson::Position, b: &geojson::Position| {
        a.as_slice().get(..2) == b.as_slice().get(..2)
    };
    let ring = |r: &Vec<geojson::Position>| r.len() >= 4 && same(&r[0], &r[r.len() - 1]);
    let ok = match v {
        GeometryValue::Point { .. } | GeometryValue::MultiPoint { .. } => true,
        GeometryValue::LineString { coordinates } => coordinates.len() >= 2,
        GeometryValue::MultiLineString { coordinates } => coordinates.iter().all(|l| l.len() >= 2),
        GeometryValue::Polygon { coordinates } => {
            !coordinates.is_empty() && coordinates.iter().all(ring)
        }
        GeometryValue::MultiPolygon { coordinates } => coordinates
            .iter()
            .all(|p| !p.is_empty() && p.iter().all(ring)),
        GeometryValue::GeometryCollection { geometries } => {
            return geometries.iter().try_for_each(|g| well_formed(&g.value));
        }
    };
    if ok {
        Ok(())
    } else {
        Err(NoGeometry::Unparseable)
    }
}

fn walk(
    v: &GeometryValue,
    f: &mut impl FnMut(&geojson::Position) -> Result<(), NoGeometry>,
) -> Result<(), NoGeometry> {
    match v {
        GeometryValue::Point { coordinates } => f(coordinates),
        GeometryValue::MultiPoint { coordinates } | GeometryValue::LineString { coordinates } => {
            coordinates.iter().try_for_each(f)
        }
        GeometryValue::MultiLineString { coordinates } | GeometryValue::Polygon { coordinates } => {
            coordinates.iter().flatten().try_for_each(f)
        }
        GeometryValue::MultiPolygon { coordinates } => {
            coordinates.iter().flatten().flatten().try_for_each(f)
        }
        GeometryValue::GeometryCollection { geometries } => {
            geometries.iter().try_for_each(|g| walk(&g.value, f))
        }
    }
}

impl RecordReader for GeoJsonReader {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn next_record(&mut self) -> Option<Result<Record, IngestError>> {
        if self.failed {
            return None;
        }
        let file = self.file.clone();
        let piece = match self.scanner.next_piece() {
            Ok(None) => return None,
            Ok(Some(p)) => p,
            Err(e) => {
                self.failed = true;
                return Some(Err(match e {
                    ScanError::Io(source) => IngestError::Io { file, source },
                    ScanError::Broken { line, message } => IngestError::Format {
                        file,
                        line,
                        message,
                    },
                }));
            }
        };
        self.count += 1;
        let n = self.count;
        let row = |line, message: String| IngestError::Row {
            file: file.clone(),
            line,
            message: format!("feature {n}: {message}"),
        };
        let (bytes, line, complete) = match piece {
            Piece::Feature {
                bytes,
                line,
                complete,
            } => (bytes, line, complete),
            Piece::Unfit { line, message } => return Some(Err(row(line, message))),
        };
        Some(match self.record(&bytes, line) {
            Ok(r) => Ok(r),
            Err(message) if !complete => {
                self.failed = true;
                Err(IngestError::Format {
                    file,
                    line,
                    message: format!("the file ends inside feature {n}: truncated? ({message})"),
                })
            }
            Err(message) => Err(row(line, message)),
        })
    }

    fn describe(&self) -> String {
        if self.scanner.collection {
            "GeoJSON FeatureCollection".into()
        } else {
            "GeoJSON sequence, one feature per line".into()
        }
    }

    fn bytes_read(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}
