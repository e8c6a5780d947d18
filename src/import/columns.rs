//! The columns of an import: their names in first-seen order, what their values allow
//! (inference), which one gives the feature time, and raw text made typed values.

use super::ImportError;
use super::infer::{ColumnInference, field_type, named_like_time, widen};
use crate::model::time::{TimeFormat, format_utc};
use crate::model::{DatasetInfo, Field, FieldType, TimeRange, Value};
use jiff::tz::TimeZone;
use std::collections::HashMap;

/// Every column seen so far, with its inference.
#[derive(Debug, Default)]
pub struct Columns {
    names: Vec<String>,
    index: HashMap<String, usize>,
    inference: Vec<ColumnInference>,
}

impl Columns {
    /// The index of column `name`, registering it at the end if new.
    pub fn column(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len();
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), i);
        self.inference.push(ColumnInference::new(name));
        i
    }

    pub fn observe(&mut self, col: usize, value: &str) {
        self.inference[col].observe(value);
    }

    /// The fields of the new version: a base's fields first, in their order and with
    /// their stored types unless new values force a wider one ([`widen`]), then the
    /// new columns with their inferred types.
    pub fn fields(&self, base: Option<&DatasetInfo>) -> Vec<Field> {
        let stored = base.map_or(&[][..], |b| &b.fields[..]);
        self.names
            .iter()
            .zip(&self.inference)
            .enumerate()
            .map(|(i, (name, inf))| Field {
                name: name.clone(),
                ty: match stored.get(i) {
                    Some(f) => widen(f.ty, inf),
                    None => field_type(inf),
                },
            })
            .collect()
    }

    /// Picks the time columns, at the first record, when the header's columns are known.
    pub fn time_columns(
        &self,
        start: Option<&str>,
        end: Option<&str>,
    ) -> Result<TimeColumns, ImportError> {
        let lookup = |name: &str, flag: &str| -> Result<(usize, u8), ImportError> {
            let i = self.index.get(name).copied().ok_or_else(|| {
                ImportError::Config(format!(
                    "{flag} `{name}` is not a column (columns: {})",
                    self.names.join(", ")
                ))
            })?;
            Ok((i, allowed_formats(name)))
        };
        let start = match start {
            Some(t) => Some(lookup(t, "--time")?),
            // Auto-pick by name: the first column named like a date, in header order (the
            // first row may well have it empty). Record-keeping stamps (`created_at`,
            // `updated_at`) say when a row was edited, not when the thing happened.
            None => self
                .names
                .iter()
                .enumerate()
                .find(|(_, n)| named_like_time(n) && !n.to_ascii_lowercase().ends_with("_at"))
                .map(|(i, n)| (i, allowed_formats(n))),
        };
        let end = end.map(|t| lookup(t, "--time-end")).transpose()?;
        Ok(TimeColumns {
            start,
            end,
            name: start.map(|(i, _)| self.names[i].clone()),
        })
    }
}

/// The columns giving a feature's time: (column, allowed formats) of start and end.
#[derive(Debug, Clone, Default)]
pub struct TimeColumns {
    start: Option<(usize, u8)>,
    end: Option<(usize, u8)>,
    pub name: Option<String>,
}

/// A row's time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RowTime {
    At(TimeRange),
    /// No start column, or it is empty in this row.
    None,
    /// The start column holds something that is not a date.
    Unparsed,
}

impl TimeColumns {
    pub fn of(&self, cells: &[(usize, String)], zone: &TimeZone) -> RowTime {
        let cell = |col: Option<(usize, u8)>| {
            col.and_then(|(i, mask)| {
                cells
                    .iter()
                    .find(|(j, _)| *j == i)
                    .map(|(_, v)| (v.as_str(), mask))
            })
        };
        let Some((v, mask)) = cell(self.start) else {
            return RowTime::None;
        };
        let Some(s) = parse_time(v, mask, zone) else {
            return RowTime::Unparsed;
        };
        let end = cell(self.end).and_then(|(v, m)| parse_time(v, m, zone));
        RowTime::At(TimeRange {
            start: s.start,
            end: end.map_or(s.end, |e| e.end.max(s.end)),
        })
    }
}

/// Parses with the first format of `mask` that accepts the value.
pub fn parse_time(text: &str, mask: u8, zone: &TimeZone) -> Option<TimeRange> {
    TimeFormat::ALL
        .iter()
        .filter(|f| mask & f.bit() != 0)
        .find_map(|f| f.parse(text, zone))
}

/// Formats a value may be read in: the compact all-digit ones only for date-like names.
pub fn allowed_formats(column: &str) -> u8 {
    let numeric_ok = named_like_time(column);
    TimeFormat::ALL
        .iter()
        .filter(|f| numeric_ok || !f.is_numeric_lookalike())
        .fold(0, |m, f| m | f.bit())
}

/// The stored text of a value of a time column of type `ty`: `2014-12-30` in a date
/// column (whatever format it came in), `2019-01` in a month column, RFC 3339 UTC in a
/// date-time column. `None` when no allowed format reads it.
pub fn canonical_time(text: &str, mask: u8, zone: &TimeZone, ty: FieldType) -> Option<String> {
    let range = parse_time(text, mask, zone)?;
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

/// Turns raw cells into one typed value per field.
pub struct Typer {
    fields: Vec<Field>,
    masks: Vec<u8>,
    zone: TimeZone,
}

impl Typer {
    pub fn new(fields: &[Field], zone: &TimeZone) -> Self {
        Self {
            masks: fields.iter().map(|f| allowed_formats(&f.name)).collect(),
            fields: fields.to_vec(),
            zone: zone.clone(),
        }
    }

    /// Fills `out` with one value per field; a value its type cannot read stays text.
    pub fn values(&self, cells: Vec<(usize, String)>, out: &mut Vec<Value>) {
        out.clear();
        out.resize(self.fields.len(), Value::Null);
        for (col, v) in cells {
            if let Some(f) = self.fields.get(col) {
                out[col] = typed(v, f.ty, self.masks[col], &self.zone);
            }
        }
    }
}

fn typed(v: String, ty: FieldType, time_mask: u8, zone: &TimeZone) -> Value {
    match ty {
        FieldType::Integer => v
            .trim()
            .parse::<i64>()
            .map_or(Value::Text(v), Value::Integer),
        FieldType::Number => v
            .trim()
            .parse::<f64>()
            .map_or(Value::Text(v), Value::Number),
        FieldType::Boolean => Value::Boolean(v.trim().eq_ignore_ascii_case("true")),
        FieldType::Datetime | FieldType::Date | FieldType::Month => {
            canonical_time(&v, time_mask, zone, ty).map_or(Value::Text(v), Value::Text)
        }
        FieldType::String => Value::Text(v),
    }
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
    fn cells_become_typed_values_and_unreadable_ones_stay_text() {
        let f = |name: &str, ty| Field {
            name: name.into(),
            ty,
        };
        let fields = [
            f("n", FieldType::Integer),
            f("x", FieldType::Number),
            f("ok", FieldType::Boolean),
            f("date", FieldType::Date),
        ];
        let typer = Typer::new(&fields, &TimeZone::UTC);
        let mut out = Vec::new();
        let cells = vec![
            (0, " 7 ".to_owned()),
            (1, "n/a".to_owned()),
            (2, "TRUE".to_owned()),
            (3, "12/30/2014".to_owned()),
        ];
        typer.values(cells, &mut out);
        assert_eq!(
            out,
            vec![
                Value::Integer(7),
                Value::Text("n/a".into()),
                Value::Boolean(true),
                Value::Text("2014-12-30".into())
            ]
        );
        typer.values(vec![(1, "2.5".into())], &mut out);
        assert_eq!(
            out,
            vec![Value::Null, Value::Number(2.5), Value::Null, Value::Null]
        );
    }
}
