//! Histogram buckets in SQL, shared by the backends: each groups rows by a bucket key
//! computed in its own SQL, and this module turns the keys back into time ranges.

use super::Bucket;
use crate::model::TimeRange;
use crate::model::time::TimeFormat;
use jiff::tz::TimeZone;

/// A bucket as the database grouped it.
pub(crate) enum BucketKey {
    /// Days, weeks or quarter hours since the epoch (see [`key_sql`]).
    Number(i64),
    /// `YYYY-MM` (UTC months).
    Month(String),
}

/// Whether `zone` is UTC, where calendar buckets are plain arithmetic on `t0`.
pub(crate) fn is_utc(zone: &TimeZone) -> bool {
    matches!(zone.iana_name(), Some("UTC" | "Etc/UTC"))
}

/// The SQL expression of a row's bucket key; `month` is the backend's expression for the
/// UTC `YYYY-MM` of `t0`. Outside UTC midnight moves with daylight saving: rows are counted
/// per quarter hour (every zone's offset is a multiple of 15 minutes) and each quarter goes
/// to the local bucket that holds it.
pub(crate) fn key_sql(bucket: Bucket, utc: bool, month: &str) -> String {
    // SQL's `/` on integers truncates toward zero, which put the afternoon of 31 December
    // 1969 into 1 January 1970: divide rounding down (the same text works in SQLite and
    // PostgreSQL, whose `%` also takes the dividend's sign).
    let floor_div = |x: &str, n: i64| format!("(({x}) - ((({x}) % {n}) + {n}) % {n}) / {n}");
    match bucket {
        _ if !utc => floor_div("t0", 900),
        Bucket::Day => floor_div("t0", 86_400),
        Bucket::Week => floor_div("t0 - 345600", 604_800),
        Bucket::Month => month.to_owned(),
    }
}

/// Turns grouped rows, in key order, into counts per bucket.
pub(crate) fn collect(
    bucket: Bucket,
    zone: &TimeZone,
    rows: impl IntoIterator<Item = (BucketKey, u64)>,
) -> Vec<(TimeRange, u64)> {
    let utc = is_utc(zone);
    let mut out: Vec<(TimeRange, u64)> = Vec::new();
    for (key, n) in rows {
        let range = match (bucket, key) {
            (_, BucketKey::Number(q)) if !utc => bucket.containing(q.saturating_mul(900), zone),
            (Bucket::Day, BucketKey::Number(d)) => TimeRange {
                start: d * 86_400,
                end: d * 86_400 + 86_399,
            },
            (Bucket::Week, BucketKey::Number(w)) => {
                let start = w * 604_800 + 345_600;
                TimeRange {
                    start,
                    end: start + 604_799,
                }
            }
            (Bucket::Month, BucketKey::Month(m)) => {
                match TimeFormat::YearMonth.parse(&m, &TimeZone::UTC) {
                    Some(r) => r,
                    None => continue,
                }
            }
            _ => continue,
        };
        // Quarters arrive in time order, so one bucket's quarters are adjacent.
        match out.last_mut() {
            Some((last, count)) if *last == range => *count += n,
            _ => out.push((range, n)),
        }
    }
    out
}
