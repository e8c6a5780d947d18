//! The numbers of a dataset's dashboard: total in a period, the change against the
//! previous period of equal length, counts over time and the top categories. They are
//! computed through the same [`Query`] as the map's tiles and the items pages, so a card
//! and the map never disagree about what "these filters" select.
//!
//! Sync and free of HTTP: [`numbers`] reads a [`Snapshot`]; the period arithmetic and the
//! wording of a change are pure functions; [`svg`] draws the time series.

pub mod svg;

use crate::model::{DatasetInfo, TimeRange, Value};
use crate::store::{Bucket, Query, Snapshot, StoreError};

/// Categories listed by name on the top-categories card; the rest are "Other".
pub const TOP_CATEGORIES: usize = 8;

/// Most bars a time series draws; a finer bucket that would give more is widened.
const MAX_BARS: usize = 400;

/// The period the numbers are about and the one just before it, of equal length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub current: TimeRange,
    pub previous: TimeRange,
}

/// The period of a request: its `datetime` (open ends closed by the data's time extent),
/// or without one the data's whole time extent. `None` when neither gives a period.
pub fn period(asked: Option<TimeRange>, extent: Option<TimeRange>) -> Option<Period> {
    let current = match (asked, extent) {
        (Some(a), Some(e)) => TimeRange {
            start: if a.start == i64::MIN {
                e.start
            } else {
                a.start
            },
            end: if a.end == i64::MAX { e.end } else { a.end },
        },
        (Some(a), None) if a.start != i64::MIN && a.end != i64::MAX => a,
        (None, Some(e)) => e,
        _ => return None,
    };
    // Closed intervals: a period of `len` seconds ends `len - 1` after it starts.
    let len = current.end.checked_sub(current.start)?.checked_add(1)?;
    let previous = TimeRange {
        start: current.start.checked_sub(len)?,
        end: current.start - 1,
    };
    Some(Period { current, previous })
}

/// How a count moved from one period to the next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// Percentage of the previous count (positive up, negative down).
    By(f64),
    Same,
    /// Nothing in the previous period: no percentage means anything.
    FromNothing,
}

pub fn change(current: u64, previous: u64) -> Change {
    if current == previous {
        Change::Same
    } else if previous == 0 {
        Change::FromNothing
    } else {
        Change::By((current as f64 - previous as f64) / previous as f64 * 100.0)
    }
}

impl Change {
    /// An arrow for the eye (the words carry the meaning; the arrow is hidden from
    /// screen readers and colour is never the only sign).
    pub fn arrow(self) -> &'static str {
        match self {
            Change::By(p) if p > 0.0 => "▲",
            Change::By(_) => "▼",
            Change::Same => "▶",
            Change::FromNothing => "▲",
        }
    }

    /// The change in words: "up 12.5%", "down 3%", "no change", "up from none".
    pub fn words(self) -> String {
        match self {
            Change::By(p) if p > 0.0 => format!("up {}%", percent(p)),
            Change::By(p) => format!("down {}%", percent(-p)),
            Change::Same => "no change".into(),
            Change::FromNothing => "up from none".into(),
        }
    }
}

/// A percentage with one decimal below 10, none above ("4.5", "38").
pub fn percent(p: f64) -> String {
    if p < 9.95 {
        let s = format!("{p:.1}");
        s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
    } else {
        format!("{p:.0}")
    }
}

/// A count with thousands separators ("8,501").
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Everything the cards show, for one dataset and one query.
#[derive(Debug, Clone, PartialEq)]
pub struct Numbers {
    /// Matches of the query as asked (with its `datetime`, if any).
    pub total: u64,
    pub period: Option<Period>,
    /// Matches in [`Period::previous`], the other filters unchanged.
    pub previous: Option<u64>,
    pub bucket: Bucket,
    /// Counts per bucket over the period, empty buckets included.
    pub series: Vec<(TimeRange, u64)>,
    /// The most frequent categories among the matches, most first, then the count of all
    /// other matches (`None` when the dataset has no category field).
    pub categories: Option<(Vec<(String, u64)>, u64)>,
}

/// The dashboard's numbers for `q` over `ds`.
pub fn numbers(
    snap: &dyn Snapshot,
    ds: &DatasetInfo,
    q: &Query,
    bucket: Option<Bucket>,
) -> Result<Numbers, StoreError> {
    let total = snap.count(ds, q)?;
    let period = period(q.time, ds.time_extent);
    let previous = match period {
        Some(p) => Some(snap.count(
            ds,
            &Query {
                time: Some(p.previous),
                ..q.clone()
            },
        )?),
        None => None,
    };
    let zone = ds.zone();
    let (bucket, series) = match period {
        None => (bucket.unwrap_or(Bucket::Day), Vec::new()),
        Some(p) => {
            let mut b = bucket.unwrap_or_else(|| Bucket::for_extent(p.current));
            let mut buckets = b.series(p.current, MAX_BARS, &zone);
            while buckets.is_none() && b != Bucket::Month {
                b = if b == Bucket::Day {
                    Bucket::Week
                } else {
                    Bucket::Month
                };
                buckets = b.series(p.current, MAX_BARS, &zone);
            }
            let counted: std::collections::HashMap<i64, u64> = snap
                .histogram(ds, q, b)?
                .into_iter()
                .map(|(r, n)| (r.start, n))
                .collect();
            let series = buckets
                .unwrap_or_default()
                .into_iter()
                .map(|r| {
                    let n = counted.get(&b.containing(r.start, &zone).start);
                    (r, n.copied().unwrap_or(0))
                })
                .collect();
            (b, series)
        }
    };
    let categories = match ds.meta.category.as_deref().and_then(|c| ds.field_index(c)) {
        None => None,
        Some(field) => Some(top_categories(snap, ds, q, field, total)?),
    };
    Ok(Numbers {
        total,
        period,
        previous,
        bucket,
        series,
        categories,
    })
}

/// Counts of the dataset's most frequent category values among the matches of `q`.
/// Candidates are the most frequent values overall (the store keeps those cheaply), each
/// counted under the query's filters; a value the query's own category filter excludes
/// counts nothing.
fn top_categories(
    snap: &dyn Snapshot,
    ds: &DatasetInfo,
    q: &Query,
    field: usize,
    total: u64,
) -> Result<(Vec<(String, u64)>, u64), StoreError> {
    let asked = q.equals.iter().find(|(f, _)| *f == field).map(|(_, v)| v);
    let mut counts = Vec::new();
    for (value, _) in snap.top_values(ds, field, TOP_CATEGORIES * 2)? {
        if asked.is_some_and(|vals| !vals.contains(&value)) {
            continue;
        }
        let mut one = q.clone();
        one.equals.retain(|(f, _)| *f != field);
        one.equals.push((field, vec![value.clone()]));
        let n = snap.count(ds, &one)?;
        if n > 0 {
            counts.push((label(&value), n));
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts.truncate(TOP_CATEGORIES);
    let listed: u64 = counts.iter().map(|(_, n)| n).sum();
    Ok((counts, total.saturating_sub(listed)))
}

fn label(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        Value::Text(s) if s.is_empty() => "(none)".into(),
        Value::Text(s) => s.clone(),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Boolean(b) => b.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_period_has_the_same_length_and_ends_before_this_one() {
        let p = period(
            Some(TimeRange {
                start: 100,
                end: 199,
            }),
            None,
        )
        .unwrap();
        assert_eq!(p.previous, TimeRange { start: 0, end: 99 });
        let extent = TimeRange {
            start: 50,
            end: 1000,
        };
        let open = period(
            Some(TimeRange {
                start: 500,
                end: i64::MAX,
            }),
            Some(extent),
        )
        .unwrap();
        assert_eq!(
            open.current,
            TimeRange {
                start: 500,
                end: 1000
            }
        );
        assert_eq!(
            open.previous,
            TimeRange {
                start: -1,
                end: 499
            }
        );
        assert_eq!(period(None, Some(extent)).unwrap().current, extent);
        assert_eq!(period(None, None), None);
        assert_eq!(
            period(
                Some(TimeRange {
                    start: i64::MIN,
                    end: i64::MAX
                }),
                None
            ),
            None
        );
    }

    #[test]
    fn changes_read_in_words() {
        assert_eq!(change(150, 100).words(), "up 50%");
        assert_eq!(change(95, 100).words(), "down 5%");
        assert_eq!(change(1001, 1000).words(), "up 0.1%");
        assert_eq!(change(7, 7).words(), "no change");
        assert_eq!(change(3, 0).words(), "up from none");
        assert_eq!(change(0, 4).words(), "down 100%");
        assert_eq!(thousands(8501), "8,501");
        assert_eq!(thousands(1_390_000), "1,390,000");
        assert_eq!(thousands(12), "12");
    }
}
