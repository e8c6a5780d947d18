//! Which tiles a bake renders: zoom by zoom from z0, only tiles that can hold data.
//!
//! A tile's buffered box lies inside its parent's, so a tile can only draw something if
//! its parent did, with one exception: below a point layer's cluster zoom tiles have no
//! buffer (see `tiles::cluster`), so at the cluster zoom a tile may draw only points of
//! its neighbour's area; and a line or polygon too small to draw is counted in the one
//! tile holding its centre, which may be a neighbour's. At those zooms the candidates are
//! the children of the non-empty tiles *and of their neighbours*.

use crate::model::Bounds;
use crate::tiles::TileCoord;

/// The tiles to render at zoom `z`, in PMTiles' Hilbert order.
///
/// `nonempty` are the non-empty tiles of zoom `z - 1` (ignored at z0); `wide` asks for
/// their neighbours' children too; `bbox` (empty: no limit) keeps tiles meeting a box.
pub fn candidates(z: u8, nonempty: &[TileCoord], wide: bool, bbox: &[Bounds]) -> Vec<TileCoord> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if z > 0 {
        let side = 1u32 << (z - 1);
        for t in nonempty {
            if !wide {
                parents.push((t.x(), t.y()));
                continue;
            }
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (x, y) = (i64::from(t.x()) + dx, i64::from(t.y()) + dy);
                    if (0..i64::from(side)).contains(&x) && (0..i64::from(side)).contains(&y) {
                        parents.push((x as u32, y as u32));
                    }
                }
            }
        }
        parents.sort_unstable();
        parents.dedup();
    }
    let mut out: Vec<TileCoord> = if z == 0 {
        TileCoord::new(0, 0, 0).into_iter().collect()
    } else {
        parents
            .iter()
            .filter_map(|&(x, y)| TileCoord::new(z - 1, x, y).ok()?.children())
            .flatten()
            .collect()
    };
    out.retain(|t| bbox.is_empty() || bbox.iter().any(|b| t.bounds_lonlat().intersects(b)));
    out.sort_unstable_by_key(|t| hilbert_id(*t));
    out
}

/// The PMTiles tile id (Hilbert order within a zoom, zooms in order).
pub fn hilbert_id(t: TileCoord) -> u64 {
    pmtiles::TileCoord::new(t.z(), t.x(), t.y())
        .map(|c| pmtiles::TileId::from(c).value())
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(z: u8, x: u32, y: u32) -> TileCoord {
        TileCoord::new(z, x, y).unwrap()
    }

    #[test]
    fn children_of_nonempty_tiles_only() {
        assert_eq!(candidates(0, &[], false, &[]), vec![t(0, 0, 0)]);
        let c = candidates(2, &[t(1, 0, 0)], false, &[]);
        assert_eq!(c.len(), 4);
        assert!(c.iter().all(|c| c.x() < 2 && c.y() < 2));
    }

    #[test]
    fn wide_takes_the_neighbours_children_within_the_grid() {
        // 2/1/1 has all 8 neighbours at z2: 9 parents, 36 children.
        assert_eq!(candidates(3, &[t(2, 1, 1)], true, &[]).len(), 36);
        // A corner tile has 3 neighbours.
        assert_eq!(candidates(3, &[t(2, 0, 0)], true, &[]).len(), 16);
    }

    #[test]
    fn hilbert_order_and_bbox() {
        let all = candidates(1, &[t(0, 0, 0)], false, &[]);
        let ids: Vec<u64> = all.iter().map(|t| hilbert_id(*t)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let west = Bounds {
            min_x: -170.0,
            min_y: 10.0,
            max_x: -160.0,
            max_y: 20.0,
        };
        assert_eq!(
            candidates(1, &[t(0, 0, 0)], false, &[west]),
            vec![t(1, 0, 0)]
        );
    }
}
