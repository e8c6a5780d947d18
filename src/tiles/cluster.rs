//! Grid clustering of the points of one tile, for zooms below the cluster zoom.
//!
//! The grid is aligned with the world, not with the request: a tile is cut into
//! `grid_cells` x `grid_cells` square cells (a power of two), and since tiles are
//! quadtree nodes the cells of every tile at every zoom nest into each other. So:
//! - a cell is a contiguous run of the Morton-sorted index, and a tile is clustered in
//!   one linear pass over its range, with no hash map and no sort;
//! - clusters do not depend on which tile asked: neighbouring tiles agree at the seam;
//! - **conservation**: only the tile's own range is read (no buffer), each point lies
//!   in exactly one tile and one cell, and every cell becomes one feature, so the counts
//!   of a tile's features add up to exactly the filtered points inside it. A cluster sits
//!   at the mean of its members, which is inside its cell and therefore inside the tile;
//!   a buffer would only draw the neighbours' clusters a second time.
//!
//! The default of 16 cells per side makes a cell 32 CSS pixels on a 512-pixel tile, near
//! supercluster's default radius of 40 pixels, and bounds a tile to 256 features.

use super::{Filter, PointIndex, TileCoord, coord, morton};

/// Default cells per tile side.
pub const DEFAULT_GRID_CELLS: u32 = 16;

/// The densest tile allowed at the cluster zoom by [`choose_cluster_zoom`].
pub const DEFAULT_MAX_POINTS_PER_TILE: usize = 2_000;

/// How to cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterParams {
    /// Cells per tile side; rounded down to a power of two in 1..=256.
    pub grid_cells: u32,
    /// The cluster zoom: from here on points are served one by one, so no cluster
    /// needs a deeper expansion zoom than `max_zoom`.
    pub max_zoom: u8,
    /// Tile extent of the output coordinates.
    pub extent: u32,
}

impl Default for ClusterParams {
    fn default() -> Self {
        ClusterParams {
            grid_cells: DEFAULT_GRID_CELLS,
            max_zoom: 14,
            extent: 4096,
        }
    }
}

impl ClusterParams {
    fn grid_log2(&self) -> u32 {
        (31u32.saturating_sub(self.grid_cells.max(1).leading_zeros())).min(8)
    }
}

/// One cluster, or one lone point (`count == 1`, with `fid` and `time` set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterFeature {
    /// Tile coordinates of the members' mean position.
    pub x: i32,
    pub y: i32,
    pub count: u64,
    /// The first zoom at which the members no longer share one grid cell, capped at
    /// `max_zoom` (where points are drawn one by one); `max_zoom` also when they all
    /// share one exact position.
    pub expansion_zoom: u8,
    pub fid: Option<i64>,
    pub time: Option<(i64, i64)>,
    /// Members per category index, ascending by index; members without a category are
    /// not listed (so the counts may add up to less than `count`).
    pub categories: Vec<(u32, u64)>,
}

/// Running totals of the current cell.
struct Acc {
    key: u64,
    count: u64,
    sum: (u128, u128),
    min: (u32, u32),
    max: (u32, u32),
    first: usize,
}

impl Acc {
    fn new(key: u64, row: usize, (x, y): (u32, u32)) -> Self {
        Acc {
            key,
            count: 0,
            sum: (0, 0),
            min: (x, y),
            max: (x, y),
            first: row,
        }
    }
    fn add(&mut self, (x, y): (u32, u32)) {
        self.count += 1;
        self.sum.0 += u128::from(x);
        self.sum.1 += u128::from(y);
        self.min = (self.min.0.min(x), self.min.1.min(y));
        self.max = (self.max.0.max(x), self.max.1.max(y));
    }
}

/// Clusters the points of `tile` that pass `filter`. See the module docs for the grid
/// and the conservation invariant. Output is in Morton order of the cells.
pub fn cluster_tile(
    index: &PointIndex,
    tile: TileCoord,
    filter: &Filter,
    params: &ClusterParams,
) -> Vec<ClusterFeature> {
    let g = params.grid_log2();
    let level = u32::from(tile.z()) + g;
    let mut out = Vec::new();
    let mut per_category = vec![0u64; index.categories().len()];
    let mut touched: Vec<u32> = Vec::new();
    let mut acc: Option<Acc> = None;
    for row in index.filtered(index.range(tile), filter) {
        let (Some(code), Some(p)) = (index.code(row), index.point(row)) else {
            continue;
        };
        let key = morton::cell_key(code, level);
        if acc.as_ref().is_some_and(|a| a.key != key) {
            let done = acc.take();
            out.extend(
                done.map(|a| finish(a, index, tile, params, g, &mut per_category, &mut touched)),
            );
        }
        acc.get_or_insert_with(|| Acc::new(key, row, p.world))
            .add(p.world);
        if let Some(c) = p.category
            && let Some(slot) = per_category.get_mut(c as usize)
        {
            if *slot == 0 {
                touched.push(c);
            }
            *slot += 1;
        }
    }
    out.extend(acc.map(|a| finish(a, index, tile, params, g, &mut per_category, &mut touched)));
    out
}

/// Turns a closed cell into a feature and resets the category counters it used.
fn finish(
    a: Acc,
    index: &PointIndex,
    tile: TileCoord,
    params: &ClusterParams,
    g: u32,
    per_category: &mut [u64],
    touched: &mut Vec<u32>,
) -> ClusterFeature {
    let n = u128::from(a.count.max(1));
    let mean = ((a.sum.0 / n) as u32, (a.sum.1 / n) as u32);
    let (x, y) = coord::world_to_tile(mean.0, mean.1, tile, params.extent);
    touched.sort_unstable();
    let categories = touched
        .drain(..)
        .filter_map(|c| {
            let slot = per_category.get_mut(c as usize)?;
            Some((c, std::mem::take(slot)))
        })
        .collect();
    let single = (a.count == 1).then(|| index.point(a.first)).flatten();
    ClusterFeature {
        x,
        y,
        count: a.count,
        expansion_zoom: expansion_zoom(a.min, a.max, tile.z(), g, params.max_zoom),
        fid: single.map(|p| p.fid),
        time: single.and_then(|p| p.time),
        categories,
    }
}

/// The first zoom after `z` at which a box of world coordinates spans more than one
/// cell of side 2^(32 - zoom - g), capped at `max_zoom`: from the cluster zoom on every
/// member is drawn as its own point, so a cluster always opens there at the latest. Two coordinates share a
/// cell at level L exactly when they agree on their top L bits, so the answer follows
/// from the highest bit in which the box's corners differ.
fn expansion_zoom(min: (u32, u32), max: (u32, u32), z: u8, g: u32, max_zoom: u8) -> u8 {
    // Clusters exist only below the cluster zoom, so the cap is always past `z`.
    let cap = max_zoom.max(z.saturating_add(1));
    let diff = (min.0 ^ max.0) | (min.1 ^ max.1);
    if diff == 0 {
        return cap;
    }
    let high_bit = 31 - diff.leading_zeros();
    let split = (32 - i64::from(high_bit) - i64::from(g)).max(i64::from(z) + 1);
    split.min(i64::from(cap)).clamp(0, 255) as u8
}

/// The lowest zoom at which the densest tile holds at most
/// [`DEFAULT_MAX_POINTS_PER_TILE`] points, clamped to 10..=16. See
/// [`choose_cluster_zoom_with`].
pub fn choose_cluster_zoom(index: &PointIndex) -> u8 {
    choose_cluster_zoom_with(index, DEFAULT_MAX_POINTS_PER_TILE)
}

/// The lowest zoom in 10..=16 at which the densest tile holds at most `max_points`,
/// or 16 when none does. From the cluster zoom on every point is its own feature, so
/// this bounds the size of an unclustered tile (2,000 points is ~30 KB of MVT). Below
/// 10 (a region on screen) single points are rarely readable, so clustering always
/// runs there; above 16 (a few streets) a tile that is still too dense is better
/// served point by point than as clusters that never open.
pub fn choose_cluster_zoom_with(index: &PointIndex, max_points: usize) -> u8 {
    (10..=16)
        .find(|&z| index.densest_tile(z) <= max_points)
        .unwrap_or(16)
}

/// A short label for a count, as supercluster writes it: `999`, `1.2k`, `35k`, `1.4M`.
///
/// ```
/// use tessera::tiles::abbreviate;
/// assert_eq!(abbreviate(999), "999");
/// assert_eq!(abbreviate(1_234), "1.2k");
/// assert_eq!(abbreviate(35_400), "35k");
/// assert_eq!(abbreviate(1_440_000), "1.4M");
/// ```
pub fn abbreviate(count: u64) -> String {
    /// `tenths` as "a.b" + unit, without ".0".
    fn tenths(t: u64, unit: &str) -> String {
        if t.is_multiple_of(10) {
            format!("{}{unit}", t / 10)
        } else {
            format!("{}.{}{unit}", t / 10, t % 10)
        }
    }
    match count {
        0..1_000 => count.to_string(),
        1_000..10_000 => tenths((count + 50) / 100, "k"),
        10_000..999_500 => format!("{}k", (count + 500) / 1_000),
        999_500..9_950_000 => tenths(count.saturating_add(50_000) / 100_000, "M"),
        _ => format!("{}M", count.saturating_add(500_000) / 1_000_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiles::PointRecord;
    use crate::tiles::points::tests::{names, random_points};
    use proptest::prelude::*;

    #[test]
    fn abbreviations() {
        let cases = [
            (0, "0"),
            (1_000, "1k"),
            (1_050, "1.1k"),
            (9_949, "9.9k"),
            (9_950, "10k"),
            (10_499, "10k"),
            (999_499, "999k"),
            (999_500, "1M"),
            (1_440_000, "1.4M"),
            (12_345_678, "12M"),
            (u64::MAX, "18446744073709M"),
        ];
        for (n, s) in cases {
            assert_eq!(abbreviate(n), s, "{n}");
        }
    }

    #[test]
    fn expansion_zoom_cases() {
        // Same position: never splits.
        assert_eq!(expansion_zoom((5, 5), (5, 5), 3, 4, 14), 14);
        // Corners differ in the top bit: they split at the next zoom already.
        assert_eq!(expansion_zoom((0, 0), (1 << 31, 0), 0, 0, 14), 1);
        // Differ only in bit 20 with g = 4: cells of 2^20 units at zoom 8.
        assert_eq!(expansion_zoom((0, 0), (0, 1 << 20), 2, 4, 14), 8);
        // Past the cluster zoom the cap applies.
        assert_eq!(expansion_zoom((0, 0), (1, 0), 2, 4, 14), 14);
        assert_eq!(
            expansion_zoom((0, 0), (1, 0), 2, 4, 200),
            28,
            "one world unit apart"
        );
    }

    #[test]
    fn single_points_and_categories() {
        let p = |fid, lon, category| PointRecord {
            fid,
            lon,
            lat: 51.5,
            time: Some((fid, fid)),
            category,
        };
        let pts = vec![
            p(1, -0.1, Some(1)),
            p(2, -0.1, Some(1)),
            p(3, -0.1, None),
            p(4, 100.0, Some(0)),
        ];
        let ix = PointIndex::build(pts, names()).unwrap();
        let world = TileCoord::new(0, 0, 0).unwrap();
        let out = cluster_tile(&ix, world, &Filter::default(), &ClusterParams::default());
        assert_eq!(out.len(), 2);
        let london = out.iter().find(|c| c.count == 3).unwrap();
        assert_eq!(london.categories, vec![(1, 2)]);
        assert_eq!(
            london.expansion_zoom, 14,
            "identical positions open at the cluster zoom"
        );
        assert_eq!(london.fid, None);
        let lone = out.iter().find(|c| c.count == 1).unwrap();
        assert_eq!(
            (lone.fid, lone.time, lone.categories.clone()),
            (Some(4), Some((4, 4)), vec![(0, 1)])
        );
    }

    /// The conservation invariant on one tile, against a brute-force count.
    fn check_conservation(
        pts: &[PointRecord],
        ix: &PointIndex,
        tile: TileCoord,
        f: &Filter,
        p: &ClusterParams,
    ) -> Result<(), TestCaseError> {
        let brute = ix
            .filtered(0..ix.len(), f)
            .filter(|&i| {
                let (x, y) = ix.point(i).unwrap().world;
                let s = 32 - u32::from(tile.z());
                (u64::from(x) >> s, u64::from(y) >> s) == (u64::from(tile.x()), u64::from(tile.y()))
            })
            .count() as u64;
        let out = cluster_tile(ix, tile, f, p);
        prop_assert_eq!(out.iter().map(|c| c.count).sum::<u64>(), brute);
        let e = p.extent as i32;
        for c in &out {
            prop_assert!((0..e).contains(&c.x) && (0..e).contains(&c.y), "{:?}", c);
            prop_assert!(c.expansion_zoom > tile.z());
            prop_assert_eq!(c.fid.is_some(), c.count == 1);
            prop_assert!(c.categories.iter().map(|x| x.1).sum::<u64>() <= c.count);
        }
        let _ = pts;
        Ok(())
    }

    fn filters() -> Vec<Filter> {
        vec![
            Filter::default(),
            Filter {
                time: Some((100, 400)),
                ..Filter::default()
            },
            Filter {
                categories: Some(vec![0, 2]),
                ..Filter::default()
            },
            Filter {
                fids: Some((0..300).collect()),
                time: Some((0, 900)),
                ..Filter::default()
            },
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn counts_add_up_on_random_points(seed in 1u64.., z in 0u8..12, pick in 0usize..2000, cells in 1u32..300) {
            let pts = random_points(2000, seed);
            let ix = PointIndex::build(pts.clone(), names()).unwrap();
            let tile = coord::tile_of(pts[pick].lon, pts[pick].lat, z).unwrap();
            let params = ClusterParams { grid_cells: cells, max_zoom: 12, extent: 4096 };
            for f in filters() {
                check_conservation(&pts, &ix, tile, &f, &params)?;
            }
        }
    }

    /// Real, clumpy points: UK police crime records (`Longitude`, `Latitude`, `Crime type`).
    #[test]
    fn counts_add_up_on_real_points() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/uk-crime-sample.csv"
        );
        let mut rdr = csv::Reader::from_path(path).unwrap();
        let headers = rdr.headers().unwrap().clone();
        let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
        let (lon, lat, ty) = (col("Longitude"), col("Latitude"), col("Crime type"));
        let mut cats: Vec<String> = Vec::new();
        let mut pts = Vec::new();
        for (i, rec) in rdr.records().enumerate() {
            let rec = rec.unwrap();
            let (Ok(x), Ok(y)) = (rec[lon].parse::<f64>(), rec[lat].parse::<f64>()) else {
                continue;
            };
            let c = match cats.iter().position(|c| c == &rec[ty]) {
                Some(c) => c,
                None => {
                    cats.push(rec[ty].to_owned());
                    cats.len() - 1
                }
            };
            pts.push(PointRecord {
                fid: i as i64,
                lon: x,
                lat: y,
                time: Some((i as i64, i as i64)),
                category: Some(c as u32),
            });
        }
        assert!(pts.len() > 150, "{}", pts.len());
        let ix = PointIndex::build(pts.clone(), cats).unwrap();
        let params = ClusterParams::default();
        let mut filters = filters();
        filters.push(Filter {
            categories: Some(vec![0]),
            ..Filter::default()
        });
        for z in 0..=12 {
            for f in &filters {
                // Every tile that holds a point: the tiles' totals are the dataset's.
                let mut tiles: Vec<_> = pts
                    .iter()
                    .map(|p| coord::tile_of(p.lon, p.lat, z).unwrap())
                    .collect();
                tiles.sort_unstable();
                tiles.dedup();
                let mut total = 0;
                for &t in &tiles {
                    check_conservation(&pts, &ix, t, f, &params).unwrap();
                    total += cluster_tile(&ix, t, f, &params)
                        .iter()
                        .map(|c| c.count)
                        .sum::<u64>();
                }
                assert_eq!(
                    total,
                    ix.filtered(0..ix.len(), f).count() as u64,
                    "z{z} {f:?}"
                );
            }
        }
        assert!((10..=16).contains(&choose_cluster_zoom(&ix)));
    }
}
