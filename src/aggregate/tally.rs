//! The fast path of counts by area for point datasets: each point's area is found once
//! per (points version, areas version) and kept as one `u32` per row of the in-memory
//! [`PointIndex`]; a request then only filters rows and adds them up ([`Assigned`]).

use crate::model::Bounds;
use crate::tiles::{Filter, PointIndex, world_xy};

/// Marks a point that no area holds.
pub const OUTSIDE: u32 = u32::MAX;

/// A lon/lat box in world coordinates (y grows southwards, as in [`world_xy`]).
#[derive(Debug, Clone, Copy)]
pub struct WorldBox {
    x: (u32, u32),
    y: (u32, u32),
}

impl WorldBox {
    pub fn of(b: &Bounds) -> Self {
        let (x0, y0) = world_xy(b.min_x, b.max_y);
        let (x1, y1) = world_xy(b.max_x, b.min_y);
        Self {
            x: (x0, x1),
            y: (y0, y1),
        }
    }

    fn holds(&self, (x, y): (u32, u32)) -> bool {
        (self.x.0..=self.x.1).contains(&x) && (self.y.0..=self.y.1).contains(&y)
    }
}

/// The area of every row of one point index, with what lets a request skip the rows that
/// no area holds: a city's areas hold a few thousand of a country's million points, and
/// visiting every row cost ~50 ms a request on a loaded machine (`bench/aggregate.sh`).
#[derive(Debug, Default)]
pub struct Assigned {
    /// `area_of[row]`: the row's area or [`OUTSIDE`].
    area_of: Vec<u32>,
    /// The rows some area holds, ascending.
    inside: Vec<u32>,
    /// The starts and the ends of the rows' times (of the rows that have one), each sorted
    /// on its own: how many rows a time filter matches, counted without visiting them.
    starts: Vec<i64>,
    ends: Vec<i64>,
}

impl Assigned {
    /// `area_of[row]` is the area of row `row` of `index`, or [`OUTSIDE`].
    pub fn new(index: &PointIndex, area_of: Vec<u32>) -> Self {
        let inside = (0..area_of.len().min(index.len()))
            .filter(|&row| area_of[row] != OUTSIDE)
            .map(|row| row as u32)
            .collect();
        let (mut starts, mut ends): (Vec<i64>, Vec<i64>) = (0..index.len())
            .filter_map(|i| index.point(i)?.time)
            .unzip();
        starts.sort_unstable();
        ends.sort_unstable();
        Self {
            area_of,
            inside,
            starts,
            ends,
        }
    }

    /// Counts per area of the rows of `index` that pass `filter` and lie in any of
    /// `boxes` (no box: everywhere). Returns the counts by area number and the number
    /// outside every area.
    pub fn tally(
        &self,
        index: &PointIndex,
        areas: usize,
        filter: &Filter,
        boxes: &[WorldBox],
    ) -> (Vec<u64>, u64) {
        // Only the time (or nothing) asked, as a proper interval: visit the rows inside
        // areas, and count all matching rows from the sorted times.
        let time_only = boxes.is_empty()
            && filter.categories.is_none()
            && filter.fids.is_none()
            && filter.time.is_none_or(|(s, e)| s <= e)
            && u32::try_from(index.len()).is_ok()
            && self.area_of.len() == index.len();
        if !time_only {
            return tally(index, &self.area_of, areas, filter, boxes);
        }
        let mut counts = vec![0u64; areas];
        let mut counted = 0u64;
        for &row in &self.inside {
            let row = row as usize;
            let hit = match filter.time {
                None => true,
                Some((qs, qe)) => index
                    .point(row)
                    .and_then(|p| p.time)
                    .is_some_and(|(s, e)| s <= qe && e >= qs),
            };
            if let (true, Some(n)) = (hit, counts.get_mut(self.area_of[row] as usize)) {
                *n += 1;
                counted += 1;
            }
        }
        let matched = match filter.time {
            None => index.len(),
            // A row misses [qs, qe] when it starts after qe or ends before qs, never both
            // (its start is not after its end, and qs <= qe).
            Some((qs, qe)) => {
                let late = self.starts.len() - self.starts.partition_point(|&s| s <= qe);
                let early = self.ends.partition_point(|&e| e < qs);
                self.starts.len() - late - early
            }
        };
        (counts, matched as u64 - counted)
    }
}

/// Counts per area of the rows of `index` that pass `filter` and lie in any of `boxes`
/// (no box: everywhere), visiting every row; `area_of[row]` is the row's area or
/// [`OUTSIDE`]. Returns the counts by area number and the number outside every area.
fn tally(
    index: &PointIndex,
    area_of: &[u32],
    areas: usize,
    filter: &Filter,
    boxes: &[WorldBox],
) -> (Vec<u64>, u64) {
    let mut counts = vec![0u64; areas];
    let mut outside = 0u64;
    let mut add = |row: usize| match area_of.get(row).and_then(|&a| counts.get_mut(a as usize)) {
        Some(n) => *n += 1,
        None => outside += 1,
    };
    let rows = 0..index.len();
    match (filter.is_empty(), boxes.is_empty()) {
        (true, true) => rows.for_each(&mut add),
        (_, true) => index.filtered(rows, filter).for_each(&mut add),
        _ => index
            .filtered(rows, filter)
            .filter(|&i| {
                index
                    .point(i)
                    .is_some_and(|p| boxes.iter().any(|b| b.holds(p.world)))
            })
            .for_each(&mut add),
    }
    (counts, outside)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiles::PointRecord;

    fn index() -> PointIndex {
        let points = (0..10)
            .map(|i| PointRecord {
                fid: i,
                lon: f64::from(i as i32),
                lat: 0.0,
                time: Some((i, i)),
                category: None,
            })
            .collect();
        PointIndex::build(points, vec![]).unwrap()
    }

    #[test]
    fn rows_are_tallied_by_area_with_filters_and_boxes() {
        let ix = index();
        // Rows are in Morton order, which here is lon order: row i is fid i.
        let area_of: Vec<u32> = (0..10)
            .map(|i| if i < 8 { i % 2 } else { OUTSIDE })
            .collect();
        assert_eq!(
            tally(&ix, &area_of, 2, &Filter::default(), &[]),
            (vec![4, 4], 2)
        );
        let early = Filter {
            time: Some((0, 4)),
            ..Filter::default()
        };
        assert_eq!(tally(&ix, &area_of, 2, &early, &[]), (vec![3, 2], 0));
        let west = WorldBox::of(&Bounds {
            min_x: -0.5,
            min_y: -1.0,
            max_x: 2.5,
            max_y: 1.0,
        });
        assert_eq!(tally(&ix, &area_of, 2, &early, &[west]), (vec![2, 1], 0));
        let assigned = Assigned::new(&ix, area_of);
        assert_eq!(
            assigned.tally(&ix, 2, &Filter::default(), &[]),
            (vec![4, 4], 2)
        );
        assert_eq!(assigned.tally(&ix, 2, &early, &[]), (vec![3, 2], 0));
        assert_eq!(assigned.tally(&ix, 2, &early, &[west]), (vec![2, 1], 0));
    }

    /// The shortcut (rows inside areas + times counted from sorted arrays) gives what
    /// visiting every row gives, for intervals, instants, rows without a time, and
    /// windows before, across, inside and after the data.
    #[test]
    fn the_time_shortcut_equals_visiting_every_row() {
        let mut seed = 7u64;
        let mut next = move |n: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) % n
        };
        let points: Vec<PointRecord> = (0..2_000)
            .map(|i| {
                let start = next(100) as i64;
                let time = match next(4) {
                    0 => None,
                    1 => Some((start, start)),
                    _ => Some((start, start + next(30) as i64)),
                };
                PointRecord {
                    fid: i,
                    lon: next(3_600) as f64 / 10.0 - 180.0,
                    lat: next(1_700) as f64 / 10.0 - 85.0,
                    time,
                    category: None,
                }
            })
            .collect();
        let ix = PointIndex::build(points, vec![]).unwrap();
        let area_of: Vec<u32> = (0..ix.len())
            .map(|_| match next(5) {
                0 => OUTSIDE,
                a => a as u32 - 1,
            })
            .collect();
        let assigned = Assigned::new(&ix, area_of.clone());
        let mut windows = vec![None, Some((-50, -1)), Some((200, 300)), Some((-5, 500))];
        for _ in 0..200 {
            let s = next(140) as i64 - 10;
            windows.push(Some((s, s + next(40) as i64)));
        }
        for time in windows {
            let f = Filter {
                time,
                ..Filter::default()
            };
            // With `areas` = 3, the rows of area 3 name no area: both count them outside.
            for areas in [4, 3] {
                assert_eq!(
                    assigned.tally(&ix, areas, &f, &[]),
                    tally(&ix, &area_of, areas, &f, &[]),
                    "{time:?}, {areas} areas"
                );
            }
        }
    }
}
