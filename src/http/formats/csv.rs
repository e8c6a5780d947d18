//! CSV (RFC 4180) with a header row: `id`, then `longitude`/`latitude` for points or a
//! GeoJSON `geometry` column otherwise, then the properties.

use super::geojson::geometry;
use super::{Collection, FeatureWriter};
use crate::model::{DatasetInfo, Value};
use crate::store::{StoredFeature, StoredGeometry};
use std::io::{self, Write};

#[derive(Debug)]
pub struct CsvWriter<W: Write> {
    out: csv::Writer<W>,
}

impl<W: Write> CsvWriter<W> {
    pub fn new(out: W) -> Self {
        Self {
            out: csv::WriterBuilder::new().from_writer(out),
        }
    }
}

/// The csv crate's errors are I/O errors here: records are written with no fixed width.
fn io(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

impl<W: Write> FeatureWriter<W> for CsvWriter<W> {
    fn content_type(&self) -> &'static str {
        "text/csv; charset=utf-8"
    }
    fn extension(&self) -> &'static str {
        "csv"
    }
    fn begin(&mut self, c: &Collection<'_>) -> io::Result<()> {
        self.out
            .write_record(csv_header(c.ds, c.properties))
            .map_err(io)
    }
    fn feature(&mut self, c: &Collection<'_>, f: StoredFeature) -> io::Result<()> {
        self.out
            .write_record(csv_row(c.ds, &f, c.properties))
            .map_err(io)
    }
    fn finish(self: Box<Self>, _: &Collection<'_>) -> io::Result<W> {
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

/// CSV columns: id, then longitude/latitude for points or a GeoJSON `geometry` column otherwise.
fn csv_header(ds: &DatasetInfo, props: Option<&[usize]>) -> Vec<String> {
    let mut h = vec!["id".to_owned()];
    if ds.geometry_type.as_deref() == Some("Point") {
        h.extend(["longitude".to_owned(), "latitude".to_owned()]);
    } else {
        h.push("geometry".to_owned());
    }
    match props {
        Some(sel) => h.extend(sel.iter().map(|&i| ds.fields[i].name.clone())),
        None => h.extend(ds.fields.iter().map(|f| f.name.clone())),
    }
    h
}

fn csv_row(ds: &DatasetInfo, f: &StoredFeature, props: Option<&[usize]>) -> Vec<String> {
    let mut row = vec![f.id.clone()];
    let point_dataset = ds.geometry_type.as_deref() == Some("Point");
    match (&f.geometry, point_dataset) {
        (Some(StoredGeometry::Point { lon, lat }), true) => {
            row.extend([lon.to_string(), lat.to_string()])
        }
        (None, true) => row.extend([String::new(), String::new()]),
        (g, _) => {
            let mut b = Vec::new();
            if g.is_some() {
                geometry(&mut b, g);
            }
            row.push(String::from_utf8_lossy(&b).into_owned());
        }
    }
    let text = |v: &Value| match v {
        Value::Null => String::new(),
        Value::Integer(i) => i.to_string(),
        Value::Number(x) => x.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Text(s) => s.clone(),
    };
    match props {
        Some(sel) => row.extend(sel.iter().map(|&i| text(&f.values[i]))),
        None => row.extend(f.values.iter().map(text)),
    }
    row
}
