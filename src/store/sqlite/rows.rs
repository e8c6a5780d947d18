//! Rows of an import held in memory, packed, so that an input that fits the budget is
//! sorted in Rust and written once, typed, into the feature table: one pass through
//! SQLite instead of two (staging table, then a sorted copy). Measured on 1.4M points:
//! staging 3.6 s + sorted copy 3.1 s before. Inputs over the budget spill into the
//! staging table, so memory stays bounded whatever the input size.

use crate::ingest::infer::ColumnInference;
use crate::model::time::{TimeFormat, format_utc};
use crate::model::{Bounds, Field, FieldType, TimeRange};
use jiff::tz::TimeZone;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};

/// One row on its way to the feature table; `cells` are (column, raw text).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub hkey: i64,
    pub src: Option<String>,
    pub bounds: Option<Bounds>,
    pub geom: Option<String>,
    pub time: Option<TimeRange>,
    pub cells: Vec<(usize, String)>,
}

/// Packed rows: an arena of encoded rows and a sort index of (Hilbert key, order, offset).
#[derive(Debug, Default)]
pub struct MemoryRows {
    arena: Vec<u8>,
    index: Vec<(i64, u64, usize)>,
}

/// Bytes of packed rows kept before spilling to the staging table.
pub const MEMORY_BUDGET: usize = 512 << 20;

impl MemoryRows {
    pub fn bytes(&self) -> usize {
        self.arena.len() + self.index.len() * std::mem::size_of::<(i64, u64, usize)>()
    }

    pub fn push(&mut self, row: &Row) {
        let at = self.arena.len();
        self.index.push((row.hkey, self.index.len() as u64, at));
        encode(&mut self.arena, row);
    }

    /// Rows in input order (for spilling into the staging table).
    pub fn drain_in_order(self) -> impl Iterator<Item = Row> {
        let MemoryRows { arena, index } = self;
        index.into_iter().map(move |(_, _, at)| decode(&arena, at))
    }

    /// Rows in Hilbert order, ties in input order: the feature table's row order.
    pub fn sorted(mut self) -> impl Iterator<Item = Row> {
        self.index.sort_unstable();
        let MemoryRows { arena, index } = self;
        index.into_iter().map(move |(_, _, at)| decode(&arena, at))
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn encode(out: &mut Vec<u8>, r: &Row) {
    let point = r
        .bounds
        .is_some_and(|b| b.min_x == b.max_x && b.min_y == b.max_y);
    let flags = u8::from(r.src.is_some())
        | u8::from(r.bounds.is_some()) << 1
        | u8::from(point) << 2
        | u8::from(r.geom.is_some()) << 3
        | u8::from(r.time.is_some()) << 4;
    out.push(flags);
    if let Some(b) = r.bounds {
        let coords: &[f64] = if point {
            &[b.min_x, b.min_y]
        } else {
            &[b.min_x, b.min_y, b.max_x, b.max_y]
        };
        coords
            .iter()
            .for_each(|c| out.extend_from_slice(&c.to_le_bytes()));
    }
    if let Some(t) = r.time {
        out.extend_from_slice(&t.start.to_le_bytes());
        out.extend_from_slice(&t.end.to_le_bytes());
    }
    if let Some(s) = &r.src {
        put_str(out, s);
    }
    if let Some(g) = &r.geom {
        put_str(out, g);
    }
    out.extend_from_slice(&(r.cells.len() as u32).to_le_bytes());
    for (col, v) in &r.cells {
        out.extend_from_slice(&(*col as u32).to_le_bytes());
        put_str(out, v);
    }
}

/// Reads back what [`encode`] wrote; the arena is only ever written by `encode`.
fn decode(a: &[u8], at: usize) -> Row {
    let mut c = Cursor { a, at };
    let flags = c.bytes(1)[0];
    let bounds = (flags & 2 != 0).then(|| {
        if flags & 4 != 0 {
            let (x, y) = (c.f64(), c.f64());
            Bounds::of_point(x, y)
        } else {
            Bounds {
                min_x: c.f64(),
                min_y: c.f64(),
                max_x: c.f64(),
                max_y: c.f64(),
            }
        }
    });
    let time = (flags & 16 != 0).then(|| TimeRange {
        start: c.i64(),
        end: c.i64(),
    });
    let src = (flags & 1 != 0).then(|| c.string());
    let geom = (flags & 8 != 0).then(|| c.string());
    let n = c.u32();
    let cells = (0..n).map(|_| (c.u32(), c.string())).collect();
    Row {
        hkey: 0,
        src,
        bounds,
        geom,
        time,
        cells,
    }
}

/// A read position in the arena.
struct Cursor<'a> {
    a: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn bytes(&mut self, n: usize) -> &[u8] {
        let s = &self.a[self.at..self.at + n];
        self.at += n;
        s
    }
    fn f64(&mut self) -> f64 {
        f64::from_le_bytes(self.bytes(8).try_into().unwrap_or([0; 8]))
    }
    fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.bytes(8).try_into().unwrap_or([0; 8]))
    }
    fn u32(&mut self) -> usize {
        u32::from_le_bytes(self.bytes(4).try_into().unwrap_or([0; 4])) as usize
    }
    fn string(&mut self) -> String {
        let n = self.u32();
        String::from_utf8_lossy(self.bytes(n)).into_owned()
    }
}

/// The stored type of an inferred column: date-only and month columns stay dates and
/// months, so that `2014-12-30` is not served as an instant at a made-up time of day.
pub fn field_type(inference: &ColumnInference) -> FieldType {
    let inferred = inference.result();
    match (inferred.ty, inferred.time_format) {
        (
            FieldType::Datetime,
            Some(TimeFormat::IsoDate | TimeFormat::Compact | TimeFormat::CompactUs),
        ) => FieldType::Date,
        // `12/30/2014` in every row: a date column; one `12/30/2014 1:20` makes it instants.
        (FieldType::Datetime, Some(TimeFormat::UsSlash)) if !inference.saw_clock() => {
            FieldType::Date
        }
        (FieldType::Datetime, Some(TimeFormat::YearMonth)) => FieldType::Month,
        (ty, _) => ty,
    }
}

/// The stored text of a value of a time column of type `ty`: `2014-12-30` in a date
/// column (whatever format it came in), `2019-01` in a month column, RFC 3339 UTC in a
/// date-time column. `None` when no allowed format reads it.
pub fn canonical_time(text: &str, mask: u8, zone: &TimeZone, ty: FieldType) -> Option<String> {
    let range = super::import::parse_time(text, mask, zone)?;
    // A date or month starts at local midnight: its calendar date is that of the start,
    // read in the zone it was parsed in.
    let local = || {
        jiff::Timestamp::from_second(range.start)
            .ok()
            .map(|ts| zone.to_datetime(ts).date())
    };
    match ty {
        FieldType::Date => Some(local()?.to_string()),
        FieldType::Month => Some(local()?.strftime("%Y-%m").to_string()),
        _ => Some(format_utc(range.start)),
    }
}

/// Converts a raw cell to its column's type, as the staging path's SQL does.
fn typed(v: &str, ty: FieldType, time_mask: u8, zone: &TimeZone) -> SqlValue {
    let text = || SqlValue::Text(v.to_owned());
    match ty {
        FieldType::Integer => v
            .trim()
            .parse::<i64>()
            .map_or_else(|_| text(), SqlValue::Integer),
        FieldType::Number => v
            .trim()
            .parse::<f64>()
            .map_or_else(|_| text(), SqlValue::Real),
        FieldType::Boolean => SqlValue::Integer(i64::from(v.trim().eq_ignore_ascii_case("true"))),
        FieldType::Datetime | FieldType::Date | FieldType::Month => {
            canonical_time(v, time_mask, zone, ty).map_or_else(text, SqlValue::Text)
        }
        FieldType::String => text(),
    }
}

/// Writes sorted rows into `f_{generation}` (already created with `fields`' columns).
pub fn write_sorted(
    conn: &Connection,
    generation: i64,
    fields: &[Field],
    rows: impl Iterator<Item = Row>,
    zone: &TimeZone,
) -> rusqlite::Result<()> {
    let cols: String = (0..fields.len()).map(|i| format!(", c{i}")).collect();
    let marks = vec!["?"; 8 + fields.len()].join(", ");
    let mut stmt = conn.prepare(&format!(
        "INSERT INTO f_{generation} (src, minx, miny, maxx, maxy, geom, t0, t1{cols}) VALUES ({marks})"
    ))?;
    let masks: Vec<u8> = fields
        .iter()
        .map(|f| super::import::allowed_formats(&f.name))
        .collect();
    let mut values: Vec<SqlValue> = Vec::with_capacity(8 + fields.len());
    let real = |x: Option<f64>| x.map_or(SqlValue::Null, SqlValue::Real);
    let int = |x: Option<i64>| x.map_or(SqlValue::Null, SqlValue::Integer);
    for row in rows {
        values.clear();
        values.push(row.src.map_or(SqlValue::Null, SqlValue::Text));
        values.push(real(row.bounds.map(|b| b.min_x)));
        values.push(real(row.bounds.map(|b| b.min_y)));
        values.push(real(row.bounds.map(|b| b.max_x)));
        values.push(real(row.bounds.map(|b| b.max_y)));
        values.push(row.geom.map_or(SqlValue::Null, SqlValue::Text));
        values.push(int(row.time.map(|t| t.start)));
        values.push(int(row.time.map(|t| t.end)));
        values.resize(8 + fields.len(), SqlValue::Null);
        for (col, v) in row.cells {
            if let Some(f) = fields.get(col) {
                values[8 + col] = typed(&v, f.ty, masks[col], zone);
            }
        }
        stmt.execute(params_from_iter(values.iter()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_values_keep_their_precision() {
        let all = TimeFormat::ALL.iter().fold(0, |m, f| m | f.bit());
        let chicago = TimeZone::get("America/Chicago").unwrap();
        let warsaw = TimeZone::get("Europe/Warsaw").unwrap();
        for zone in [&TimeZone::UTC, &chicago, &warsaw] {
            let c = |s: &str, ty| canonical_time(s, all, zone, ty);
            assert_eq!(
                c("2014-12-30", FieldType::Date).as_deref(),
                Some("2014-12-30")
            );
            assert_eq!(
                c("20141230", FieldType::Date).as_deref(),
                Some("2014-12-30")
            );
            assert_eq!(
                c("12/30/2014", FieldType::Date).as_deref(),
                Some("2014-12-30")
            );
            assert_eq!(c("2019-01", FieldType::Month).as_deref(), Some("2019-01"));
            assert_eq!(c("Kraków", FieldType::Date), None);
        }
        let c = |s: &str| canonical_time(s, all, &chicago, FieldType::Datetime);
        assert_eq!(
            c("12/30/2014 1:00 AM").as_deref(),
            Some("2014-12-30T07:00:00Z")
        );
        // In a date-time column a date-only value is the instant its day starts.
        assert_eq!(c("12/30/2014").as_deref(), Some("2014-12-30T06:00:00Z"));
        assert_eq!(
            c("2014-12-30T00:00:00Z").as_deref(),
            Some("2014-12-30T00:00:00Z")
        );
    }

    #[test]
    fn us_dates_without_a_clock_are_a_date_column() {
        let column = |values: &[&str]| {
            let mut c = ColumnInference::new("Inspection Date");
            values.iter().for_each(|v| c.observe(v));
            field_type(&c)
        };
        assert_eq!(column(&["12/30/2014", "1/2/2015"]), FieldType::Date);
        assert_eq!(
            column(&["12/30/2014", "1/2/2015 3:00 PM"]),
            FieldType::Datetime
        );
        assert_eq!(column(&["2019-01", "2019-02"]), FieldType::Month);
    }

    #[test]
    fn rows_round_trip_and_sort() {
        let a = Row {
            hkey: 9,
            src: Some("x1".into()),
            bounds: Some(Bounds::of_point(-2.5, 51.4)),
            geom: None,
            time: Some(TimeRange { start: 1, end: 2 }),
            cells: vec![(0, "Burglary".into()), (3, "café".into())],
        };
        let b = Row {
            hkey: 3,
            src: None,
            bounds: Some(Bounds {
                min_x: 0.0,
                min_y: 1.0,
                max_x: 2.0,
                max_y: 3.0,
            }),
            geom: Some("{\"type\":\"LineString\"}".into()),
            time: None,
            cells: vec![],
        };
        let c = Row {
            hkey: 3,
            src: None,
            bounds: None,
            geom: None,
            time: None,
            cells: vec![(1, "z".into())],
        };
        let mut m = MemoryRows::default();
        for r in [&a, &b, &c] {
            m.push(r);
        }
        let sorted: Vec<Row> = m.sorted().collect();
        let strip = |r: &Row| Row {
            hkey: 0,
            ..r.clone()
        };
        assert_eq!(
            sorted,
            vec![strip(&b), strip(&c), strip(&a)],
            "Hilbert order, ties in input order"
        );
    }
}
