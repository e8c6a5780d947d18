//! GeoJSON (RFC 7946) with the JSON-FG `time` member, written directly into byte
//! buffers (no intermediate tree).

use super::{Collection, FeatureWriter};
use crate::model::{DatasetInfo, Value};
use crate::store::{StoredFeature, StoredGeometry};
use std::io::{self, Write};

pub const GEOJSON: &str = "application/geo+json";

/// A FeatureCollection: OGC API - Features' page members, then the features.
#[derive(Debug)]
pub struct GeoJsonWriter<W> {
    out: W,
    /// One feature's bytes, reused from feature to feature.
    scratch: Vec<u8>,
    first: bool,
}

impl<W: Write> GeoJsonWriter<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            scratch: Vec::with_capacity(512),
            first: true,
        }
    }
}

impl<W: Write> FeatureWriter<W> for GeoJsonWriter<W> {
    fn content_type(&self) -> &'static str {
        GEOJSON
    }
    fn extension(&self) -> &'static str {
        "geojson"
    }
    fn begin(&mut self, c: &Collection<'_>) -> io::Result<()> {
        let out = &mut self.scratch;
        out.clear();
        out.extend_from_slice(br#"{"type":"FeatureCollection""#);
        if let Some(p) = &c.page {
            let _ = write!(
                out,
                r#","numberMatched":{},"numberReturned":{},"timeStamp":"#,
                p.matched, p.returned
            );
            let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ");
            json_str(out, &now.to_string());
            out.extend_from_slice(br#","links":"#);
            let _ = serde_json::to_writer(&mut *out, p.links);
        }
        out.extend_from_slice(br#","features":["#);
        self.out.write_all(out)
    }
    fn feature(&mut self, c: &Collection<'_>, f: StoredFeature) -> io::Result<()> {
        self.scratch.clear();
        if !std::mem::take(&mut self.first) {
            self.scratch.push(b',');
        }
        feature(&mut self.scratch, c.ds, &f, c.properties);
        self.out.write_all(&self.scratch)
    }
    fn finish(mut self: Box<Self>, _: &Collection<'_>) -> io::Result<W> {
        self.out.write_all(b"]}")?;
        Ok(self.out)
    }
}

/// Appends `s` as a JSON string literal.
pub fn json_str(out: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn json_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Number(x) if x.is_finite() => {
            let _ = write!(out, "{x}");
        }
        Value::Number(_) => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Text(s) => json_str(out, s),
    }
}

/// The GeoJSON `id`: a number when the ids are numbers, so clients can use them as such.
pub fn json_id(out: &mut Vec<u8>, ds: &DatasetInfo, id: &str) {
    if !ds.source_ids && id.bytes().all(|b| b.is_ascii_digit()) {
        out.extend_from_slice(id.as_bytes());
    } else {
        json_str(out, id);
    }
}

pub fn geometry(out: &mut Vec<u8>, g: &Option<StoredGeometry>) {
    match g {
        None => out.extend_from_slice(b"null"),
        Some(StoredGeometry::Point { lon, lat }) => {
            let _ = write!(out, r#"{{"type":"Point","coordinates":[{lon},{lat}]}}"#);
        }
        Some(StoredGeometry::Shape { geometry, .. }) => {
            crate::geometry::write_geojson(out, geometry)
        }
    }
}

/// One GeoJSON Feature; `props` selects properties by index (all when `None`).
pub fn feature(out: &mut Vec<u8>, ds: &DatasetInfo, f: &StoredFeature, props: Option<&[usize]>) {
    out.extend_from_slice(br#"{"type":"Feature","id":"#);
    json_id(out, ds, &f.id);
    out.extend_from_slice(br#","geometry":"#);
    geometry(out, &f.geometry);
    out.extend_from_slice(br#","properties":{"#);
    let mut first = true;
    let mut put = |out: &mut Vec<u8>, i: usize| {
        if !first {
            out.push(b',');
        }
        first = false;
        json_str(out, &ds.fields[i].name);
        out.push(b':');
        json_value(out, &f.values[i]);
    };
    match props {
        Some(sel) => sel.iter().for_each(|&i| put(out, i)),
        None => (0..ds.fields.len()).for_each(|i| put(out, i)),
    }
    out.push(b'}');
    if let Some(t) = f.time {
        out.extend_from_slice(br#","time":"#);
        time_member(out, ds, t);
    }
    out.push(b'}');
}

/// The feature's time as a JSON-FG `time` member, in the precision it has: a whole local
/// day is `{"date":"2014-12-30"}`, whole days (a month) `{"interval":["2019-01-01",
/// "2019-01-31"]}` (ends included), anything else UTC timestamps.
fn time_member(out: &mut Vec<u8>, ds: &DatasetInfo, t: crate::model::TimeRange) {
    use crate::model::time::format_utc;
    // Only digits, '-', ':', 'T' and 'Z' are written: no JSON escaping is needed.
    let _ = match whole_days(ds, t) {
        Some((d0, d1)) if d0 == d1 => write!(out, r#"{{"date":"{d0}"}}"#),
        Some((d0, d1)) => write!(out, r#"{{"interval":["{d0}","{d1}"]}}"#),
        None if t.start == t.end => write!(out, r#"{{"timestamp":"{}"}}"#, format_utc(t.start)),
        None => write!(
            out,
            r#"{{"interval":["{}","{}"]}}"#,
            format_utc(t.start),
            format_utc(t.end)
        ),
    };
}

/// The first and last calendar dates of `t` when it runs from a local midnight to the
/// second before a local midnight in the dataset's zone.
pub(super) fn whole_days(
    ds: &DatasetInfo,
    t: crate::model::TimeRange,
) -> Option<(jiff::civil::Date, jiff::civil::Date)> {
    let zone = ds.zone();
    let local = |s: i64| {
        jiff::Timestamp::from_second(s)
            .ok()
            .map(|ts| zone.to_datetime(ts))
    };
    let (start, after) = (local(t.start)?, local(t.end.checked_add(1)?)?);
    let midnight = jiff::civil::Time::midnight();
    (t.end > t.start && start.time() == midnight && after.time() == midnight)
        .then(|| Some((start.date(), after.date().yesterday().ok()?)))
        .flatten()
}
