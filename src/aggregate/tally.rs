//! The fast path of counts by area for point datasets: each point's area is found once
//! per (points version, areas version) and kept as one `u32` per row of the in-memory
//! [`PointIndex`]; a request then only filters rows and adds them up.

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

/// Counts per area of the rows of `index` that pass `filter` and lie in any of `boxes`
/// (no box: everywhere); `area_of[row]` is the row's area or [`OUTSIDE`]. Returns the
/// counts by area number and the number outside every area.
pub fn tally(
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
    }
}
