//! Inferring a column's type from every one of its values, in one streaming pass.

use crate::model::FieldType;
use crate::model::time::TimeFormat;
use jiff::tz::TimeZone;

/// What is still possible for one column after the values seen so far.
#[derive(Debug, Clone)]
pub struct ColumnInference {
    integer: bool,
    number: bool,
    boolean: bool,
    /// Bit set of [`TimeFormat`]s that parsed every value so far.
    time_formats: u8,
    non_empty: u64,
    named_like_time: bool,
    /// Whether any value had a clock time (`:`): `M/D/YYYY` columns without one are dates.
    clock: bool,
}

/// The decision for a column: its type, and for date-times the format its values use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inferred {
    pub ty: FieldType,
    pub time_format: Option<TimeFormat>,
}

/// Whether a column name suggests it holds dates (`Created Date`, `month`, `Start Date/Time`).
pub fn named_like_time(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["date", "time", "month", "day", "created", "updated", "year"]
        .iter()
        .any(|w| n.contains(w))
        && !n.contains("zone")
}

impl ColumnInference {
    pub fn new(name: &str) -> Self {
        Self {
            integer: true,
            number: true,
            boolean: true,
            time_formats: TimeFormat::ALL.iter().fold(0, |m, f| m | f.bit()),
            non_empty: 0,
            named_like_time: named_like_time(name),
            clock: false,
        }
    }

    /// Narrows the possible types with one non-empty value.
    pub fn observe(&mut self, v: &str) {
        let v = v.trim();
        self.non_empty += 1;
        self.clock |= v.contains(':');
        if self.integer && !is_integer(v) {
            self.integer = false;
        }
        if self.number && !is_number(v) {
            self.number = false;
        }
        if self.boolean && !(v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false")) {
            self.boolean = false;
        }
        if self.time_formats != 0 {
            for f in TimeFormat::ALL {
                if self.time_formats & f.bit() != 0 && f.parse(v, &TimeZone::UTC).is_none() {
                    self.time_formats &= !f.bit();
                }
            }
        }
    }

    /// Whether any value seen had a clock time.
    pub fn saw_clock(&self) -> bool {
        self.clock
    }

    /// Number of non-empty values seen.
    pub fn non_empty(&self) -> u64 {
        self.non_empty
    }

    pub fn result(&self) -> Inferred {
        let format = TimeFormat::ALL
            .into_iter()
            .find(|f| self.time_formats & f.bit() != 0);
        let ty = |ty| Inferred {
            ty,
            time_format: None,
        };
        if self.non_empty == 0 {
            return ty(FieldType::String);
        }
        if let Some(f) = format {
            // 20160513 is a date in a column called `date` and a number anywhere else.
            if !f.is_numeric_lookalike() || self.named_like_time {
                return Inferred {
                    ty: FieldType::Datetime,
                    time_format: Some(f),
                };
            }
        }
        if self.boolean {
            ty(FieldType::Boolean)
        } else if self.integer {
            ty(FieldType::Integer)
        } else if self.number {
            ty(FieldType::Number)
        } else {
            ty(FieldType::String)
        }
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

/// The type of a field kept by `--append`: its stored type, unless the new values
/// need a wider one. Integers widen to numbers; any other disagreement makes text,
/// which holds every value (the stored ones in their stored form).
pub fn widen(stored: FieldType, new: &ColumnInference) -> FieldType {
    if new.non_empty() == 0 {
        return stored;
    }
    match (stored, field_type(new)) {
        (a, b) if a == b => a,
        (FieldType::Integer, FieldType::Number) | (FieldType::Number, FieldType::Integer) => {
            FieldType::Number
        }
        _ => FieldType::String,
    }
}

/// An integer that survives a round trip: no leading zeros (ZIP codes stay strings), fits i64.
fn is_integer(v: &str) -> bool {
    let digits = v.strip_prefix('-').unwrap_or(v);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && v.parse::<i64>().is_ok()
}

/// A finite decimal number, again without leading zeros that carry meaning.
fn is_number(v: &str) -> bool {
    let digits = v.strip_prefix('-').unwrap_or(v);
    let int_part = digits.split(['.', 'e', 'E']).next().unwrap_or("");
    !digits.is_empty()
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && !(int_part.len() > 1 && int_part.starts_with('0'))
        && v.parse::<f64>().is_ok_and(f64::is_finite)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer(name: &str, values: &[&str]) -> Inferred {
        let mut c = ColumnInference::new(name);
        values.iter().for_each(|v| c.observe(v));
        c.result()
    }

    #[test]
    fn types_from_real_columns() {
        assert_eq!(
            infer("Unique Key", &["64345465", "64345466"]).ty,
            FieldType::Integer
        );
        assert_eq!(
            infer("Latitude", &["40.656", "-73.8"]).ty,
            FieldType::Number
        );
        assert_eq!(infer("Running", &["false", "TRUE"]).ty, FieldType::Boolean);
        assert_eq!(
            infer("Incident Zip", &["11207", "07030"]).ty,
            FieldType::String
        );
        assert_eq!(infer("Name", &["Park", "12"]).ty, FieldType::String);
        assert_eq!(infer("empty", &[]).ty, FieldType::String);
        assert_eq!(infer("score", &["inf"]).ty, FieldType::String);
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
    fn appended_values_widen_stored_types_only_when_they_must() {
        let new = |values: &[&str]| {
            let mut c = ColumnInference::new("v");
            values.iter().for_each(|v| c.observe(v));
            c
        };
        assert_eq!(widen(FieldType::Integer, &new(&["7"])), FieldType::Integer);
        assert_eq!(widen(FieldType::Integer, &new(&["7.5"])), FieldType::Number);
        assert_eq!(widen(FieldType::Number, &new(&["7"])), FieldType::Number);
        assert_eq!(widen(FieldType::Integer, &new(&["x"])), FieldType::String);
        assert_eq!(widen(FieldType::Boolean, &new(&["1"])), FieldType::String);
        // No new value: nothing to widen for.
        assert_eq!(widen(FieldType::Date, &new(&[])), FieldType::Date);
        let mut d = ColumnInference::new("date");
        d.observe("12/30/2014");
        assert_eq!(widen(FieldType::Date, &d), FieldType::Date);
    }

    #[test]
    fn date_columns() {
        let month = infer("Month", &["2018-10", "2018-11"]);
        assert_eq!(
            month,
            Inferred {
                ty: FieldType::Datetime,
                time_format: Some(TimeFormat::YearMonth)
            }
        );
        let us = infer("Created Date", &["3/14/2025 1:20", "12/31/2024 23:59"]);
        assert_eq!(us.time_format, Some(TimeFormat::UsSlash));
        // Compact dates only in columns named like a date.
        assert_eq!(
            infer("date", &["20160513"]).time_format,
            Some(TimeFormat::Compact)
        );
        assert_eq!(
            infer("Date", &["10142018"]).time_format,
            Some(TimeFormat::CompactUs)
        );
        assert_eq!(infer("business_id", &["20160513"]).ty, FieldType::Integer);
        assert_eq!(
            infer("Created Date", &["3/14/2025 1:20", "soon"]).ty,
            FieldType::String
        );
    }
}
