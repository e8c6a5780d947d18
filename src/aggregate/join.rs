//! The fast path of counts by area for attribute joins (rows without positions, joined to
//! the areas by a field): each row's area is found from its join value once per
//! (dataset version, areas version) and kept with the row's internal id and time, so a
//! request filters by time in memory and asks the store only for the keys the other
//! filters match, instead of reading and decoding every row again.

use super::tally::OUTSIDE;
use crate::model::TimeRange;
use crate::store::FieldValueRow;

/// The rows of one dataset version with their areas, in internal id order.
#[derive(Debug, Default)]
pub struct JoinedRows {
    keys: Vec<i64>,
    /// The row's area number, or [`OUTSIDE`] when its value names no area.
    area_of: Vec<u32>,
    /// `(start, end)` as stored; a row without a time never matches a time filter (as
    /// in the store).
    time: Vec<Option<(i64, i64)>>,
}

impl JoinedRows {
    /// Adds one row; `area` is the area its join value names, if any. Rows must come in
    /// ascending key order (as [`crate::store::Snapshot::field_values`] gives them).
    pub fn push(&mut self, row: &FieldValueRow, area: Option<u32>) {
        debug_assert!(self.keys.last().is_none_or(|&k| k < row.key));
        self.keys.push(row.key);
        self.area_of.push(area.unwrap_or(OUTSIDE));
        self.time.push(row.time.map(|t| (t.start, t.end)));
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Counts per area of the rows whose time intersects `time` (closed; `None`: any
    /// row) and, when `only` is given, whose key is in it (ascending, as
    /// [`crate::store::Snapshot::matching_keys`] returns them). Returns the counts by area
    /// number and the number of rows whose value names no area.
    pub fn tally(
        &self,
        areas: usize,
        time: Option<TimeRange>,
        only: Option<&[i64]>,
    ) -> (Vec<u64>, u64) {
        let mut counts = vec![0u64; areas];
        let mut outside = 0u64;
        let mut add = |row: usize| {
            // The store's test: the row's interval intersects the filter's.
            let in_time = time
                .is_none_or(|t| self.time[row].is_some_and(|(s, e)| s <= t.end && e >= t.start));
            if in_time {
                match counts.get_mut(self.area_of[row] as usize) {
                    Some(n) => *n += 1,
                    None => outside += 1,
                }
            }
        };
        match only {
            None => (0..self.len()).for_each(add),
            // Both sides ascend: one merge walk, no hashing.
            Some(keys) => {
                let mut row = 0;
                for &k in keys {
                    row += self.keys[row..].partition_point(|&have| have < k);
                    if self.keys.get(row) == Some(&k) {
                        add(row);
                    }
                }
            }
        }
        (counts, outside)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Value;

    fn rows() -> JoinedRows {
        let mut j = JoinedRows::default();
        // Keys 10, 20, ... 60; times 1..=6 (key 60: none); areas 0, 1, 0, none, 1, 0.
        let areas = [Some(0), Some(1), Some(0), None, Some(1), Some(0)];
        for (i, area) in areas.into_iter().enumerate() {
            let t = i as i64 + 1;
            let row = FieldValueRow {
                key: (i as i64 + 1) * 10,
                time: (i < 5).then_some(TimeRange { start: t, end: t }),
                value: Value::Null,
            };
            j.push(&row, area);
        }
        j
    }

    #[test]
    fn rows_are_tallied_by_area_with_time_and_keys() {
        let j = rows();
        assert_eq!(j.tally(2, None, None), (vec![3, 2], 1));
        let early = TimeRange { start: 2, end: 4 };
        assert_eq!(j.tally(2, Some(early), None), (vec![1, 1], 1));
        // A row without a time never matches a time filter, even the widest.
        let all = TimeRange {
            start: i64::MIN,
            end: i64::MAX,
        };
        assert_eq!(j.tally(2, Some(all), None), (vec![2, 2], 1));
        // Keys the store matched; 35 and 70 are not rows here.
        assert_eq!(
            j.tally(2, None, Some(&[20, 35, 40, 60, 70])),
            (vec![1, 1], 1)
        );
        assert_eq!(
            j.tally(2, Some(early), Some(&[10, 20, 30])),
            (vec![1, 1], 0)
        );
    }
}
