//! GeoJSON input: a FeatureCollection (streamed feature by feature, never loaded whole),
//! newline-delimited GeoJSON, or RFC 8142 GeoJSON text sequences.

use super::{Geometry, IngestError, IngestOptions, Input, Record, RecordReader, check_position};
use crate::model::{Bounds, NoGeometry};
use geojson::{Feature, GeometryValue};
use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

type Features = Box<dyn Iterator<Item = Result<Feature, String>>>;

pub struct GeoJsonReader {
    file: PathBuf,
    features: Features,
    columns: Vec<String>,
    index: HashMap<String, usize>,
    count: u64,
    sequence: bool,
    id_column: Option<String>,
    bytes: Arc<AtomicU64>,
}

impl GeoJsonReader {
    pub fn new(path: &Path, mut input: Input, opts: &IngestOptions) -> Result<Self, IngestError> {
        let bytes = input.get_ref().counter();
        let head = input.fill_buf().map_err(|source| IngestError::Io {
            file: path.to_owned(),
            source,
        })?;
        let text = String::from_utf8_lossy(head);
        let trimmed = text.trim_start_matches('\u{feff}').trim_start();
        if trimmed.starts_with('[') {
            return Err(IngestError::Setup {
                file: path.to_owned(),
                message: "a bare JSON array is not GeoJSON: expected a FeatureCollection or one Feature per line".into(),
            });
        }
        let sequence = !text.contains("\"FeatureCollection\"");
        let features: Features = if sequence {
            Box::new(input.lines().filter_map(|line| {
                let line = match line {
                    Ok(l) => l,
                    Err(e) => return Some(Err(e.to_string())),
                };
                let l = line.trim_matches(|c: char| c == '\u{1e}' || c.is_whitespace());
                (!l.is_empty()).then(|| l.parse::<Feature>().map_err(|e| e.to_string()))
            }))
        } else {
            Box::new(
                geojson::FeatureReader::from_reader(input)
                    .features()
                    .map(|f| f.map_err(|e| e.to_string())),
            )
        };
        Ok(Self {
            file: path.to_owned(),
            features,
            columns: Vec::new(),
            index: HashMap::new(),
            count: 0,
            sequence,
            id_column: opts.id_column.clone(),
            bytes,
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

/// Converts a GeoJSON geometry, checking every position.
pub fn convert(g: &geojson::Geometry) -> Result<Geometry, NoGeometry> {
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
    if let GeometryValue::Point { .. } = g.value {
        check_position(bounds.min_x, bounds.min_y)?;
        return Ok(Geometry {
            bounds,
            geojson: None,
            type_name: "Point",
        });
    }
    let bare = geojson::Geometry::new(g.value.clone());
    let text = serde_json::to_string(&bare).map_err(|_| NoGeometry::Unparseable)?;
    Ok(Geometry {
        bounds,
        geojson: Some(text),
        type_name: g.value.type_name(),
    })
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
        let next = self.features.next()?;
        self.count += 1;
        let line = self.count;
        let feature = match next {
            Ok(f) => f,
            Err(message) => {
                return Some(Err(IngestError::Row {
                    file: self.file.clone(),
                    line,
                    message,
                }));
            }
        };
        let mut values: Vec<Option<String>> = Vec::new();
        for (k, v) in feature.properties_iter() {
            let i = self.column(k);
            if values.len() <= i {
                values.resize(i + 1, None);
            }
            values[i] = value_text(v);
        }
        let geometry = match &feature.geometry {
            Some(g) => convert(g),
            None => Err(NoGeometry::Missing),
        };
        let source_id = match &self.id_column {
            Some(col) => feature.property(col).and_then(value_text),
            None => feature.id.as_ref().map(|id| match id {
                geojson::feature::Id::String(s) => s.clone(),
                geojson::feature::Id::Number(n) => n.to_string(),
            }),
        };
        Some(Ok(Record {
            line,
            geometry,
            values,
            source_id,
        }))
    }

    fn describe(&self) -> String {
        if self.sequence {
            "GeoJSON sequence, one feature per line".into()
        } else {
            "GeoJSON FeatureCollection".into()
        }
    }

    fn bytes_read(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}
