//! An in-memory, column-oriented index of a point dataset, for low-zoom tiles.
//!
//! A z3 tile of a million-point dataset covers most rows; reading them from SQLite per
//! request is far too slow, so point datasets are also held here: projected once,
//! sorted by Morton code, each attribute that filters or styles points in its own
//! column. Every tile, and every clustering cell inside it, is then one contiguous run
//! of rows found by binary search.
//!
//! Memory per point, heap only: Morton code 8 bytes + fid 8 = 16 bytes; + 16 when any
//! point has a time (start and end); + 4 when any point has a category. At most 36
//! bytes per point (36 MB per million points), 16 for a dataset with neither. World
//! x/y are not stored: they decode losslessly from the Morton code in a few
//! nanoseconds, so a column for them would cost 8 bytes per point for nothing.

use super::{TileCoord, TileError, coord, morton};
use std::collections::HashSet;
use std::ops::Range;

/// One point as handed to [`PointIndex::build`].
#[derive(Debug, Clone, PartialEq)]
pub struct PointRecord {
    pub fid: i64,
    pub lon: f64,
    pub lat: f64,
    /// Closed interval in Unix seconds; an instant has `start == end`.
    pub time: Option<(i64, i64)>,
    /// Index into the index's category names.
    pub category: Option<u32>,
}

/// One stored point, as read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointRef {
    /// World coordinates (see [`coord::world_xy`]).
    pub world: (u32, u32),
    pub fid: i64,
    pub time: Option<(i64, i64)>,
    pub category: Option<u32>,
}

/// Which points to draw. The parts are ANDed; `None` means "no restriction".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Closed interval; a point matches when its time intersects it. Points without a
    /// time never match a time filter: "when" cannot be answered for them.
    pub time: Option<(i64, i64)>,
    /// Allowed category indexes. Points without a category never match.
    pub categories: Option<Vec<u32>>,
    /// Only these feature ids.
    pub fids: Option<HashSet<i64>>,
}

impl Filter {
    /// True when the filter lets everything through.
    pub fn is_empty(&self) -> bool {
        self.time.is_none() && self.categories.is_none() && self.fids.is_none()
    }
}

/// Sentinel in the category column for "no category".
const NO_CATEGORY: u32 = u32::MAX;

/// See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct PointIndex {
    codes: Vec<u64>,
    fids: Vec<i64>,
    /// Empty when no point has a time. A point without one has `start > end` (build
    /// normalises real intervals so that `start <= end`).
    time_start: Vec<i64>,
    time_end: Vec<i64>,
    /// Empty when no point has a category; [`NO_CATEGORY`] for a point without one.
    category: Vec<u32>,
    names: Vec<String>,
    /// `directory[c]` is the first row in zoom-[`DIRECTORY_ZOOM`] tile `c` (in Morton
    /// order), with one entry past the end. A tile range then costs a lookup in 256 KiB
    /// instead of two binary searches over all codes, which cache-missed their way to
    /// ~10% of a loaded server's CPU (perf). Empty for an index too big for u32 rows.
    directory: Vec<u32>,
    /// Every [`SAMPLE_EVERY`]th code: a search first narrows to one block here (a few
    /// KiB that stay in cache) and then reads one block of `codes`, instead of missing
    /// the cache at every step of a search over a dense city's rows.
    sample: Vec<u64>,
}

/// Rows per block of [`PointIndex::sample`]: 64 codes are 512 bytes, 8 cache lines.
const SAMPLE_EVERY: usize = 64;

/// The zoom whose tiles the directory lists: 4^8 entries of 4 bytes.
const DIRECTORY_ZOOM: u32 = 8;

impl PointIndex {
    /// Projects, validates and sorts the points. Fails on a non-finite coordinate or a
    /// category index outside `categories`: the store never produces either, so one is
    /// a bug upstream that should be loud rather than a point silently misplaced.
    /// Latitudes beyond ±85.0511° are clamped onto the edge of the map, as drawn.
    /// An interval given as `(end, start)` is stored as `(start, end)`.
    pub fn build(points: Vec<PointRecord>, categories: Vec<String>) -> Result<Self, TileError> {
        if categories.len() >= NO_CATEGORY as usize {
            return Err(TileError::TooManyCategories {
                len: categories.len(),
            });
        }
        let mut keys = Vec::with_capacity(points.len());
        for (i, p) in points.iter().enumerate() {
            if !p.lon.is_finite() || !p.lat.is_finite() {
                return Err(TileError::NonFiniteCoordinate { fid: p.fid });
            }
            if let Some(c) = p.category.filter(|&c| c as usize >= categories.len()) {
                return Err(TileError::UnknownCategory {
                    fid: p.fid,
                    category: c,
                    len: categories.len(),
                });
            }
            let (x, y) = coord::world_xy(p.lon, p.lat);
            keys.push((morton::encode(x, y), p.fid, i));
        }
        // fid breaks ties so that equal inputs give byte-identical tiles.
        keys.sort_unstable();
        let has_time = points.iter().any(|p| p.time.is_some());
        let has_category = points.iter().any(|p| p.category.is_some());
        let n = points.len();
        let mut ix = PointIndex {
            codes: Vec::with_capacity(n),
            fids: Vec::with_capacity(n),
            time_start: Vec::with_capacity(if has_time { n } else { 0 }),
            time_end: Vec::with_capacity(if has_time { n } else { 0 }),
            category: Vec::with_capacity(if has_category { n } else { 0 }),
            names: categories,
            directory: Vec::new(),
            sample: Vec::new(),
        };
        for (code, fid, i) in keys {
            let p = &points[i];
            ix.codes.push(code);
            ix.fids.push(fid);
            if has_time {
                let (s, e) = match p.time {
                    Some((a, b)) => (a.min(b), a.max(b)),
                    None => (i64::MAX, i64::MIN),
                };
                ix.time_start.push(s);
                ix.time_end.push(e);
            }
            if has_category {
                ix.category.push(p.category.unwrap_or(NO_CATEGORY));
            }
        }
        ix.directory = directory(&ix.codes);
        ix.sample = ix.codes.iter().step_by(SAMPLE_EVERY).copied().collect();
        Ok(ix)
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }
    /// The category names that category indexes refer to.
    pub fn categories(&self) -> &[String] {
        &self.names
    }
    pub fn category_name(&self, index: u32) -> Option<&str> {
        self.names.get(index as usize).map(String::as_str)
    }

    /// Heap bytes held by the columns (capacity, not just length).
    pub fn heap_bytes(&self) -> usize {
        self.codes.capacity() * 8
            + self.fids.capacity() * 8
            + (self.time_start.capacity() + self.time_end.capacity()) * 8
            + self.category.capacity() * 4
            + self.names.iter().map(String::capacity).sum::<usize>()
            + self.directory.capacity() * 4
            + self.sample.capacity() * 8
    }

    /// Rows of the points inside `tile`: a directory lookup, then (below the directory
    /// zoom) two binary searches inside one directory tile.
    pub fn range(&self, tile: TileCoord) -> Range<usize> {
        let (first, last) = morton::tile_span(tile);
        let shift = 64 - 2 * DIRECTORY_ZOOM;
        let (c0, c1) = ((first >> shift) as usize, (last >> shift) as usize);
        let (Some(&start), Some(&end)) = (self.directory.get(c0), self.directory.get(c1 + 1))
        else {
            return self.range_within(tile, 0..self.codes.len());
        };
        let rows = start as usize..end as usize;
        if u32::from(tile.z()) <= DIRECTORY_ZOOM {
            rows // the tile is exactly directory tiles c0..=c1
        } else {
            self.range_within(tile, rows)
        }
    }

    /// [`Self::range`] searched only inside `rows`, which must hold every point of
    /// `tile` (e.g. the range of an ancestor): a few steps over cached rows instead of
    /// two searches of the whole column, for callers that split a tile into many.
    pub fn range_within(&self, tile: TileCoord, rows: Range<usize>) -> Range<usize> {
        let rows = rows.start.min(self.codes.len())..rows.end.min(self.codes.len());
        let (first, last) = morton::tile_span(tile);
        let lo = self.partition(rows.clone(), |c| c < first);
        let hi = self.partition(lo..rows.end.max(lo), |c| c <= last);
        lo..hi
    }

    /// The first row of `rows` (within the index) whose code fails `pred`, for a `pred`
    /// that holds for a prefix of the sorted codes: `rows.end` when it never fails.
    fn partition(&self, rows: Range<usize>, pred: impl Fn(u64) -> bool) -> usize {
        let (start, end) = (rows.start, rows.end);
        if end.saturating_sub(start) <= 4 * SAMPLE_EVERY || self.sample.is_empty() {
            return start + self.codes[start..end].partition_point(|&c| pred(c));
        }
        // Samples whose rows lie in start..end: sample[k] is row k * SAMPLE_EVERY.
        let (k0, k1) = (start.div_ceil(SAMPLE_EVERY), (end - 1) / SAMPLE_EVERY + 1);
        let k = k0 + self.sample[k0..k1].partition_point(|&c| pred(c));
        // Row (k - 1) * SAMPLE_EVERY passes and row k * SAMPLE_EVERY fails: the answer is
        // in between (or at the ends of `rows`).
        let lo = if k == k0 {
            start
        } else {
            (k - 1) * SAMPLE_EVERY + 1
        };
        let hi = if k == k1 { end } else { k * SAMPLE_EVERY };
        lo + self.codes[lo..hi].partition_point(|&c| pred(c))
    }

    /// The Morton code of row `i`.
    pub fn code(&self, i: usize) -> Option<u64> {
        self.codes.get(i).copied()
    }

    /// Row `i`, or `None` past the end.
    pub fn point(&self, i: usize) -> Option<PointRef> {
        let code = *self.codes.get(i)?;
        Some(PointRef {
            world: morton::decode(code),
            fid: self.fids[i],
            time: self.time(i),
            category: self.category(i),
        })
    }

    fn time(&self, i: usize) -> Option<(i64, i64)> {
        let (s, e) = (*self.time_start.get(i)?, *self.time_end.get(i)?);
        (s <= e).then_some((s, e))
    }

    fn category(&self, i: usize) -> Option<u32> {
        self.category.get(i).copied().filter(|&c| c != NO_CATEGORY)
    }

    /// The rows of `rows` (clamped to the index) that pass `filter`, in Morton order.
    pub fn filtered<'a>(
        &'a self,
        rows: Range<usize>,
        filter: &'a Filter,
    ) -> impl Iterator<Item = usize> + 'a {
        let rows = rows.start.min(self.len())..rows.end.min(self.len());
        let m = Matcher::new(self, filter);
        rows.filter(move |&i| m.matches(self, i))
    }

    /// The number of points in the fullest tile at zoom `z` (0 for an empty index): the
    /// longest run of codes sharing their top `2z` bits.
    pub fn densest_tile(&self, z: u8) -> usize {
        let level = u32::from(z);
        let mut best = 0;
        let mut start = 0;
        for i in 1..=self.codes.len() {
            let boundary = i == self.codes.len()
                || morton::cell_key(self.codes[i], level)
                    != morton::cell_key(self.codes[start], level);
            if boundary {
                best = best.max(i - start);
                start = i;
            }
        }
        best
    }
}

/// A [`Filter`] turned into what is cheapest to test per row.
struct Matcher<'a> {
    time: Option<(i64, i64)>,
    /// `allowed[c]` for category index `c`.
    allowed: Option<Vec<bool>>,
    fids: Option<&'a HashSet<i64>>,
}

impl<'a> Matcher<'a> {
    fn new(ix: &PointIndex, f: &'a Filter) -> Self {
        let allowed = f.categories.as_ref().map(|cats| {
            let mut v = vec![false; ix.names.len()];
            for &c in cats {
                if let Some(slot) = v.get_mut(c as usize) {
                    *slot = true;
                }
            }
            v
        });
        Matcher {
            time: f.time,
            allowed,
            fids: f.fids.as_ref(),
        }
    }

    fn matches(&self, ix: &PointIndex, i: usize) -> bool {
        if let Some((qs, qe)) = self.time {
            match ix.time(i) {
                Some((s, e)) if s <= qe && e >= qs => {}
                _ => return false,
            }
        }
        if let Some(allowed) = &self.allowed {
            let ok = ix
                .category(i)
                .and_then(|c| allowed.get(c as usize).copied());
            if ok != Some(true) {
                return false;
            }
        }
        self.fids.is_none_or(|set| set.contains(&ix.fids[i]))
    }
}

/// The first row of each zoom-[`DIRECTORY_ZOOM`] tile, in Morton order, and `codes.len()`
/// at the end; empty when rows do not fit in u32.
fn directory(codes: &[u64]) -> Vec<u32> {
    if u32::try_from(codes.len()).is_err() {
        return Vec::new();
    }
    let shift = 64 - 2 * DIRECTORY_ZOOM;
    let cells = 1u64 << (2 * DIRECTORY_ZOOM);
    let mut out = Vec::with_capacity(cells as usize + 1);
    let mut row = 0;
    for cell in 0..=cells {
        while codes.get(row).is_some_and(|&c| c >> shift < cell) {
            row += 1;
        }
        out.push(row as u32);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Seeded, dependency-free pseudo-random points (xorshift), for tests and benches.
    pub(crate) fn random_points(n: usize, seed: u64) -> Vec<PointRecord> {
        let mut s = seed.max(1);
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        (0..n)
            .map(|i| {
                let r = next();
                let u = |bits: u64| (bits & 0xFFFF_FFFF) as f64 / 4_294_967_296.0;
                PointRecord {
                    fid: i as i64,
                    lon: -10.0 + 12.0 * u(r),
                    lat: 49.0 + 10.0 * u(r >> 32),
                    time: (r % 5 != 0).then(|| {
                        let t = (next() % 1000) as i64;
                        (t, t + (r % 7) as i64)
                    }),
                    category: (r % 11 != 0).then_some((r % 4) as u32),
                }
            })
            .collect()
    }

    pub(crate) fn names() -> Vec<String> {
        ["burglary", "drugs", "robbery", "shoplifting"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn rejects_bad_points() {
        let p = |lon: f64, category| PointRecord {
            fid: 7,
            lon,
            lat: 0.0,
            time: None,
            category,
        };
        assert_eq!(
            PointIndex::build(vec![p(f64::NAN, None)], vec![]).unwrap_err(),
            TileError::NonFiniteCoordinate { fid: 7 }
        );
        assert!(matches!(
            PointIndex::build(vec![p(1.0, Some(1))], vec!["a".into()]),
            Err(TileError::UnknownCategory { category: 1, .. })
        ));
    }

    #[test]
    fn compact_columns() {
        // 36 bytes a point, plus the directory's fixed 256 KiB and 1/8 byte a point of
        // search samples.
        let directory = 4 * ((1 << (2 * DIRECTORY_ZOOM)) + 1);
        let samples = |n: usize| 8 * n.div_ceil(SAMPLE_EVERY);
        let ix = PointIndex::build(random_points(10_000, 3), names()).unwrap();
        let bytes = ix.heap_bytes() - directory - samples(10_000);
        assert!(bytes <= 36 * ix.len() + 64, "{bytes}");
        let bare: Vec<_> = random_points(1000, 3)
            .into_iter()
            .map(|p| PointRecord {
                time: None,
                category: None,
                ..p
            })
            .collect();
        assert_eq!(
            PointIndex::build(bare, vec![]).unwrap().heap_bytes(),
            16_000 + directory + samples(1000)
        );
    }

    #[test]
    fn filters_and_reversed_intervals() {
        let pts = vec![
            PointRecord {
                fid: 1,
                lon: 1.0,
                lat: 1.0,
                time: Some((20, 10)),
                category: Some(0),
            },
            PointRecord {
                fid: 2,
                lon: 1.0,
                lat: 1.0,
                time: None,
                category: None,
            },
        ];
        let ix = PointIndex::build(pts, vec!["a".into()]).unwrap();
        let all = ix.range(TileCoord::new(0, 0, 0).unwrap());
        let run = |f: Filter| -> Vec<i64> {
            ix.filtered(all.clone(), &f)
                .map(|i| ix.point(i).unwrap().fid)
                .collect()
        };
        assert_eq!(run(Filter::default()), vec![1, 2]);
        assert_eq!(ix.point(0).unwrap().time, Some((10, 20)));
        let time = |a, b| Filter {
            time: Some((a, b)),
            ..Filter::default()
        };
        assert_eq!(run(time(20, 30)), vec![1], "closed interval: ends touch");
        assert_eq!(run(time(21, 30)), Vec::<i64>::new());
        assert_eq!(
            run(time(i64::MIN, i64::MAX)),
            vec![1],
            "no time never matches"
        );
        let cats = |c: Vec<u32>| Filter {
            categories: Some(c),
            ..Filter::default()
        };
        assert_eq!(run(cats(vec![0])), vec![1]);
        assert_eq!(
            run(cats(vec![5])),
            Vec::<i64>::new(),
            "unknown index is ignored"
        );
        let fids = Filter {
            fids: Some([2].into()),
            ..Filter::default()
        };
        assert_eq!(run(fids), vec![2]);
        assert_eq!(ix.filtered(5..9, &Filter::default()).count(), 0);
        assert_eq!(ix.point(9), None);
    }

    #[test]
    fn densest_tile_counts_runs() {
        let ix = PointIndex::build(random_points(5000, 9), names()).unwrap();
        assert_eq!(ix.densest_tile(0), 5000);
        assert!(ix.densest_tile(8) < 5000);
        assert_eq!(PointIndex::default().densest_tile(3), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn tile_range_is_exactly_the_points_in_the_tile(seed in 1u64.., z in 0u8..=18, pick in 0usize..400) {
            let pts = random_points(400, seed);
            let ix = PointIndex::build(pts.clone(), names()).unwrap();
            // A tile that holds a point, so the test is not vacuous.
            let tile = super::coord::tile_of(pts[pick].lon, pts[pick].lat, z).unwrap();
            let mut brute: Vec<i64> = pts.iter()
                .filter(|p| super::coord::tile_of(p.lon, p.lat, z).unwrap() == tile)
                .map(|p| p.fid)
                .collect();
            let mut got: Vec<i64> = ix.range(tile).map(|i| ix.point(i).unwrap().fid).collect();
            brute.sort_unstable();
            got.sort_unstable();
            prop_assert!(got.contains(&pts[pick].fid));
            prop_assert_eq!(got, brute);
        }

        #[test]
        fn sampled_search_equals_a_plain_binary_search(seed in 1u64.., a in 0usize..3000, b in 0usize..3000, pick in 0usize..3000) {
            let ix = PointIndex::build(random_points(3000, seed), names()).unwrap();
            let (start, end) = (a.min(b), a.max(b));
            // Thresholds at, just above and just below real codes, and at the extremes.
            let c = ix.codes[pick];
            for t in [c, c.saturating_add(1), c.saturating_sub(1), 0, u64::MAX] {
                for strict in [true, false] {
                    let pred = |x: u64| if strict { x < t } else { x <= t };
                    let want = start + ix.codes[start..end].partition_point(|&x| pred(x));
                    prop_assert_eq!(ix.partition(start..end, pred), want, "{}..{} t={} strict={}", start, end, t, strict);
                }
            }
        }

        #[test]
        fn range_within_an_ancestor_equals_range(seed in 1u64.., z in 0u8..=12, depth in 1u8..=6, pick in 0usize..400) {
            let pts = random_points(400, seed);
            let ix = PointIndex::build(pts.clone(), names()).unwrap();
            let deep = super::coord::tile_of(pts[pick].lon, pts[pick].lat, z + depth).unwrap();
            let ancestor = super::coord::tile_of(pts[pick].lon, pts[pick].lat, z).unwrap();
            let within = ix.range_within(deep, ix.range(ancestor));
            prop_assert!(!within.is_empty());
            prop_assert_eq!(within, ix.range(deep));
            // Every sub-tile of the ancestor one level down, empty ones included.
            let (x, y) = (ancestor.x() * 2, ancestor.y() * 2);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let child = TileCoord::new(z + 1, x + dx, y + dy).unwrap();
                let searched = ix.range_within(child, 0..ix.len());
                prop_assert_eq!(ix.range_within(child, ix.range(ancestor)), searched.clone());
                prop_assert_eq!(ix.range(child), searched);
            }
        }
    }
}
