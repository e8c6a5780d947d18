//! Points of an index -> one MVT layer: clusters below the cluster zoom, single points
//! from it on.

use super::cluster::{ClusterFeature, ClusterParams, abbreviate, cluster_tile};
use super::{Filter, LayerBuilder, PointIndex, PointRef, PropValue, TileCoord, coord};
use crate::model::time::format_utc;

/// How [`render_points`] draws a point layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointLayerParams<'a> {
    /// The MVT layer name.
    pub layer: &'a str,
    /// Tiles below this zoom are clustered; from it on each point is a feature. It is
    /// also the clusters' expansion-zoom cap (see [`ClusterParams::max_zoom`]).
    pub cluster_zoom: u8,
    /// Cells per tile side of the cluster grid.
    pub grid_cells: u32,
    /// Extra tile units around unclustered tiles from which neighbours' points are
    /// included (for symbols that straddle the seam); at most `extent`. Clustered tiles
    /// take no buffer: see the conservation invariant in [`super::cluster`].
    pub buffer: u32,
    pub extent: u32,
    /// The property that names each point's category, if the dataset has one.
    pub category_field: Option<&'a str>,
    /// Served feature ids by fid, for datasets whose ids are the input's own (the
    /// `fid` property then carries them, so a client can fetch the feature).
    pub ids: Option<&'a super::ServedIds>,
    /// Extra properties of points drawn one by one (asked for by name; read from the
    /// store by the caller, since the index holds only position, time and category).
    pub extra: Option<&'a ExtraProps>,
}

/// Values of extra tile properties by served feature id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExtraProps {
    /// The property names, in the order of each feature's values.
    pub names: Vec<String>,
    /// Per served id, one value per name (`None`: no value, nothing encoded).
    pub values: std::collections::HashMap<String, Vec<Option<PropValue<'static>>>>,
}

/// Renders the points of `tile` that pass `filter` into a layer ready for
/// [`super::encode_tile`].
///
/// Single points (unclustered, or alone in their cluster cell) have their fid as MVT id
/// (when not negative) and the properties `fid`, the category under
/// `category_field`, and `time_start` / `time_end` (RFC 3339; `time_end` only for
/// intervals). Clusters have `cluster` = true, `point_count`,
/// `point_count_abbreviated`, `cluster_expansion_zoom` and, with a category field, a
/// `count:<category>` per category present and the commonest one (ties by name) as
/// `cat_top` and under the category field.
pub fn render_points(
    index: &PointIndex,
    tile: TileCoord,
    filter: &Filter,
    params: &PointLayerParams<'_>,
) -> LayerBuilder {
    let mut layer = LayerBuilder::new(params.layer, params.extent);
    if tile.z() < params.cluster_zoom {
        let cp = ClusterParams {
            grid_cells: params.grid_cells,
            max_zoom: params.cluster_zoom,
            extent: params.extent,
        };
        let count_keys: Vec<String> = index
            .categories()
            .iter()
            .map(|c| format!("count:{c}"))
            .collect();
        for c in cluster_tile(index, tile, filter, &cp) {
            add_cluster(&mut layer, index, &c, params, &count_keys);
        }
        return layer;
    }
    // Points at one world position share a Morton code, so they come out of the index
    // next to each other: a stack is a run of equal positions, found without a map.
    let mut points = buffered_rows(index, tile, filter, params)
        .filter_map(|(row, shift)| Some((index.point(row)?, shift)))
        .peekable();
    while let Some((p, shift)) = points.next() {
        let wx = i64::from(p.world.0) + shift;
        let (x, y) = coord::world_to_tile_wide(wx, p.world.1.into(), tile, params.extent);
        let same = |(q, s): &(PointRef, i64)| q.world == p.world && *s == shift;
        if points.peek().is_none_or(|next| !same(next)) {
            add_single(&mut layer, index, p.fid, p.time, p.category, [x, y], params);
            continue;
        }
        let mut stack = Stack::new(&p);
        while let Some(next) = points.next_if(same) {
            stack.push(&next.0);
        }
        add_stack(&mut layer, index, &stack, p.world, [x, y], params);
    }
    layer
}

/// Points at exactly one position (snapped open-data locations: one UK crime dot can
/// hold 85 crimes), drawn as one feature so the count is visible and clickable.
struct Stack {
    count: u64,
    /// (category index, count); few distinct categories per position, so a Vec.
    categories: Vec<(u32, u64)>,
    time: Option<(i64, i64)>,
}

impl Stack {
    fn new(p: &PointRef) -> Self {
        let mut stack = Stack {
            count: 0,
            categories: Vec::new(),
            time: None,
        };
        stack.push(p);
        stack
    }

    fn push(&mut self, p: &PointRef) {
        self.count += 1;
        if let Some(c) = p.category {
            match self.categories.iter_mut().find(|(k, _)| *k == c) {
                Some((_, n)) => *n += 1,
                None => self.categories.push((c, 1)),
            }
        }
        if let Some((s, e)) = p.time {
            let (s0, e0) = self.time.unwrap_or((s, e));
            self.time = Some((s0.min(s), e0.max(e)));
        }
    }
}

/// A stack's properties: `count`; with a category field, that field and `cat_top` set to
/// the commonest category (so the category colour and legend filters apply unchanged)
/// and `cat_mix`, a JSON object of category -> count, commonest first; `time_start` /
/// `time_end` spanning the stack's times; and `bbox`, the box of the position as the
/// items `bbox` parameter takes it, so a client can list the stack's features.
fn add_stack(
    layer: &mut LayerBuilder,
    index: &PointIndex,
    stack: &Stack,
    world: (u32, u32),
    at: [i32; 2],
    params: &PointLayerParams<'_>,
) {
    let mut cats: Vec<(&str, u64)> = stack
        .categories
        .iter()
        .filter_map(|&(c, n)| Some((index.category_name(c)?, n)))
        .collect();
    // Ties by name, so that a tile is the same bytes whatever the row order.
    cats.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mix = serde_json::Value::Object(
        cats.iter()
            .map(|&(k, n)| (k.to_owned(), n.into()))
            .collect(),
    )
    .to_string();
    let bbox = position_bbox(world);
    let start = stack.time.map(|(s, _)| rfc3339(s));
    let end = stack.time.map(|(_, e)| rfc3339(e));
    let mut props = vec![
        ("count", PropValue::UInt(stack.count)),
        ("bbox", bbox.as_str().into()),
    ];
    if let (Some(field), Some(&(top, _))) = (params.category_field, cats.first()) {
        props.push((field, top.into()));
        props.push(("cat_top", top.into()));
        props.push(("cat_mix", mix.as_str().into()));
    }
    if let (Some(s), Some(e)) = (&start, &end) {
        props.push(("time_start", s.as_str().into()));
        if s.as_str() != e.as_str() {
            props.push(("time_end", e.as_str().into()));
        }
    }
    layer.add_point(None, at, &props);
}

/// `west,south,east,north` of the world cell `world` (about 1 cm wide), rounded outward
/// to 7 decimals: it holds every point projected to that cell, whatever the rounding of
/// the stored degrees.
fn position_bbox(world: (u32, u32)) -> String {
    let cell = coord::world_cell_lonlat(world.0, world.1);
    let down = |v: f64| (v * 1e7).floor() / 1e7;
    let up = |v: f64| (v * 1e7).ceil() / 1e7;
    format!(
        "{:.7},{:.7},{:.7},{:.7}",
        down(cell.min_x),
        down(cell.min_y),
        up(cell.max_x),
        up(cell.max_y)
    )
}

fn add_cluster(
    layer: &mut LayerBuilder,
    index: &PointIndex,
    c: &ClusterFeature,
    params: &PointLayerParams<'_>,
    count_keys: &[String],
) {
    if let (1, Some(fid)) = (c.count, c.fid) {
        let category = c.categories.first().map(|&(cat, _)| cat);
        add_single(layer, index, fid, c.time, category, [c.x, c.y], params);
        return;
    }
    let mut props = vec![
        ("cluster", PropValue::Bool(true)),
        ("point_count", PropValue::UInt(c.count)),
        ("point_count_abbreviated", abbreviate(c.count).into()),
        (
            "cluster_expansion_zoom",
            PropValue::UInt(c.expansion_zoom.into()),
        ),
    ];
    if let Some(field) = params.category_field {
        for &(cat, n) in &c.categories {
            if let Some(k) = count_keys.get(cat as usize) {
                props.push((k.as_str(), PropValue::UInt(n)));
            }
        }
        // The commonest category under the category field too, as on stacks, so that the
        // style's category colour (the cluster's ring) applies unchanged. The mix itself
        // stays in `count:<category>`: keys and small integers are interned per layer,
        // which a JSON string per cluster would not be.
        let top = c
            .categories
            .iter()
            .filter_map(|&(cat, n)| Some((index.category_name(cat)?, n)))
            // Ties by name, so that a tile is the same bytes whatever the row order.
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)));
        if let Some((name, _)) = top {
            props.push((field, name.into()));
            props.push(("cat_top", name.into()));
        }
    }
    layer.add_point(None, [c.x, c.y], &props);
}

fn add_single(
    layer: &mut LayerBuilder,
    index: &PointIndex,
    fid: i64,
    time: Option<(i64, i64)>,
    category: Option<u32>,
    at: [i32; 2],
    params: &PointLayerParams<'_>,
) {
    // `fid` is the id served by /items: the input's own id where the dataset has them.
    let served = params.ids.and_then(|ids| ids.get(fid));
    let fid_prop = match served {
        Some(s) => s.into(),
        None => PropValue::Int(fid),
    };
    // On the stack: this runs for every point of a tile, and each allocation showed.
    let start = time.map(|(s, _)| rfc3339(s));
    let end = time.filter(|(s, e)| s != e).map(|(_, e)| rfc3339(e));
    let unused = || ("", PropValue::Bool(false));
    let mut props = [("fid", fid_prop), unused(), unused(), unused()];
    let mut n = 1;
    let mut push = |p| {
        props[n] = p;
        n += 1;
    };
    if let (Some(field), Some(name)) = (
        params.category_field,
        category.and_then(|c| index.category_name(c)),
    ) {
        push((field, name.into()));
    }
    if let Some(t) = &start {
        push(("time_start", t.as_str().into()));
    }
    if let Some(t) = &end {
        push(("time_end", t.as_str().into()));
    }
    let id = u64::try_from(fid).ok();
    let Some(extra) = params.extra else {
        layer.add_point(id, at, &props[..n]);
        return;
    };
    let key = served.map_or_else(|| fid.to_string(), str::to_owned);
    let mut all: Vec<(&str, PropValue<'_>)> = props[..n].to_vec();
    if let Some(values) = extra.values.get(&key) {
        for (name, v) in extra.names.iter().zip(values) {
            if let Some(v) = v {
                all.push((name.as_str(), v.clone()));
            }
        }
    }
    layer.add_point(id, at, &all);
}

/// An RFC 3339 UTC timestamp, on the stack for the usual years.
enum Rfc3339 {
    Short([u8; 20]),
    Long(String),
}

impl Rfc3339 {
    fn as_str(&self) -> &str {
        match self {
            // Only ASCII digits and separators are ever written.
            Rfc3339::Short(b) => std::str::from_utf8(b).unwrap_or_default(),
            Rfc3339::Long(s) => s,
        }
    }
}

/// [`format_utc`] without its per-call format parsing and time-zone machinery, which
/// made up most of the time of a 1,000-point tile. Years outside 1..=9998 (near the
/// ends of jiff's range) go to `format_utc` itself; the test compares the two.
fn rfc3339(secs: i64) -> Rfc3339 {
    // Days to civil date: H. Hinnant's algorithm, exact on the proleptic Gregorian calendar.
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(1..=9998).contains(&year) {
        return Rfc3339::Long(format_utc(secs));
    }
    let mut b = *b"0000-00-00T00:00:00Z";
    let mut put = |at: usize, width: usize, mut v: i64| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, sod / 3600);
    put(14, 2, sod / 60 % 60);
    put(17, 2, sod % 60);
    Rfc3339::Short(b)
}

/// Rows of the points in `tile` and in a `buffer`-wide ring around it (taken from the
/// eight neighbours, which is why the buffer is capped at one tile), in tile-major order,
/// each with the world-x shift to draw it at: the buffer wraps across the antimeridian,
/// so the first column of tiles shows the last column's points one world width (2^32)
/// to the left, and the reverse. Not at zoom 0, whose only neighbour is itself.
fn buffered_rows<'a>(
    index: &'a PointIndex,
    tile: TileCoord,
    filter: &'a Filter,
    params: &PointLayerParams<'_>,
) -> impl Iterator<Item = (usize, i64)> + 'a {
    let size = 1i64 << (32 - i64::from(tile.z()));
    let pad = if params.extent == 0 {
        0
    } else {
        size * i64::from(params.buffer.min(params.extent)) / i64::from(params.extent)
    };
    let (ox, oy) = tile.world_origin();
    let (x0, y0) = (i64::from(ox) - pad, i64::from(oy) - pad);
    let (x1, y1) = (i64::from(ox) + size + pad, i64::from(oy) + size + pad);
    let mut ranges = vec![index.range(tile)];
    let mut shifts = vec![0i64];
    let (world, across) = (1i64 << 32, 1i64 << tile.z());
    if pad > 0 {
        for (dx, dy) in [
            (-1, -1),
            (0, -1),
            (1, -1),
            (-1, 0),
            (1, 0),
            (-1, 1),
            (0, 1),
            (1, 1),
        ] {
            let (nx, ny) = (i64::from(tile.x()) + dx, i64::from(tile.y()) + dy);
            let (nx, shift) = match nx {
                _ if across == 1 => continue,
                -1 => (across - 1, -world),
                _ if nx == across => (0, world),
                _ => (nx, 0),
            };
            if let (Ok(nx), Ok(ny)) = (u32::try_from(nx), u32::try_from(ny))
                && let Ok(n) = TileCoord::new(tile.z(), nx, ny)
            {
                edge_ranges(index, n, (dx, dy), params, &mut ranges);
                shifts.resize(ranges.len(), shift);
            }
        }
    }
    ranges.into_iter().zip(shifts).flat_map(move |(r, shift)| {
        index.filtered(r, filter).filter_map(move |row| {
            let p = index.point(row)?;
            let (x, y) = (i64::from(p.world.0) + shift, i64::from(p.world.1));
            ((x0..x1).contains(&x) && (y0..y1).contains(&y)).then_some((row, shift))
        })
    })
}

/// The index ranges of neighbour `n` that can hold points of the buffer: the neighbour
/// split into sub-tiles along the shared edge, level by level, only where they are
/// crowded, down to the level whose sub-tiles are as wide as the buffer. Dense city
/// tiles hold thousands of points of which the buffer needs a 1/64 strip; splitting
/// every neighbour to that level at once cost hundreds of binary searches a tile.
fn edge_ranges(
    index: &PointIndex,
    n: TileCoord,
    toward: (i64, i64),
    params: &PointLayerParams<'_>,
    out: &mut Vec<std::ops::Range<usize>>,
) {
    let buffer = params.buffer.clamp(1, params.extent.max(1));
    let levels = (params.extent.max(1) / buffer)
        .ilog2()
        .min(u32::from(super::MAX_ZOOM - n.z().min(super::MAX_ZOOM)));
    split_along_edge(index, n, index.range(n), toward, levels, out);
}

/// Rows of `tile` (`rows`) this few are scanned rather than split further.
const SCAN_ROWS: usize = 32;

fn split_along_edge(
    index: &PointIndex,
    tile: TileCoord,
    rows: std::ops::Range<usize>,
    (dx, dy): (i64, i64),
    levels: u32,
    out: &mut Vec<std::ops::Range<usize>>,
) {
    if rows.is_empty() {
        return;
    }
    if levels == 0 || rows.len() <= SCAN_ROWS {
        out.push(rows);
        return;
    }
    // The children facing the centre tile: a neighbour to the left (dx = -1) keeps its
    // right column, one to the right its left column; dx = 0 keeps both.
    let keep = |d: i64| match d {
        -1 => 1..2,
        1 => 0..1,
        _ => 0..2,
    };
    for cy in keep(dy) {
        for cx in keep(dx) {
            let Ok(child) = TileCoord::new(tile.z() + 1, tile.x() * 2 + cx, tile.y() * 2 + cy)
            else {
                continue;
            };
            let r = index.range_within(child, rows.clone());
            split_along_edge(index, child, r, (dx, dy), levels - 1, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiles::encode_tile;
    use crate::tiles::points::tests::{names, random_points};
    use mvt_reader::{Reader, feature::Value};

    fn params(cluster_zoom: u8, buffer: u32) -> PointLayerParams<'static> {
        PointLayerParams {
            layer: "crime",
            cluster_zoom,
            grid_cells: 16,
            buffer,
            extent: 4096,
            category_field: Some("type"),
            ids: None,
            extra: None,
        }
    }

    /// Dense neighbours are read by their edge sub-tiles only: the rows must be exactly
    /// those a scan of the nine whole tiles finds inside the buffered box.
    #[test]
    fn edge_subtiles_find_every_buffer_point() {
        // 20,000 points packed into a few z16 tiles in London: every neighbour is dense.
        let pts: Vec<crate::tiles::PointRecord> = random_points(20_000, 11)
            .into_iter()
            .map(|mut p| {
                // random_points spans lon -10..2, lat 49..59: squeeze it into ~4 x 3 z16 tiles.
                p.lon = -0.1 + (p.lon + 10.0) / 12.0 * 0.02;
                p.lat = 51.5 + (p.lat - 49.0) / 10.0 * 0.012;
                p
            })
            .collect();
        let centre = crate::tiles::tile_of(pts[0].lon, pts[0].lat, 16).unwrap();
        let ix = PointIndex::build(pts, names()).unwrap();
        let filter = Filter::default();
        for ((x, y), buffer) in [
            (centre.x(), centre.y()),
            (centre.x() + 1, centre.y()),
            (centre.x(), centre.y() - 1),
        ]
        .into_iter()
        .flat_map(|t| [(t, 64), (t, 1), (t, 300)])
        {
            let tile = TileCoord::new(16, x, y).unwrap();
            let p = params(16, buffer);
            let mut got: Vec<usize> = buffered_rows(&ix, tile, &filter, &p)
                .map(|(row, _)| row)
                .collect();
            got.sort_unstable();
            let size = 1i64 << 16;
            let pad = size * i64::from(buffer) / 4096;
            let (ox, oy) = tile.world_origin();
            let (x0, y0, x1, y1) = (
                i64::from(ox) - pad,
                i64::from(oy) - pad,
                i64::from(ox) + size + pad,
                i64::from(oy) + size + pad,
            );
            let want: Vec<usize> = (0..ix.len())
                .filter(|&i| {
                    let w = ix.point(i).unwrap().world;
                    (x0..x1).contains(&i64::from(w.0)) && (y0..y1).contains(&i64::from(w.1))
                })
                .collect();
            assert!(!want.is_empty());
            assert_eq!(got, want, "tile 16/{x}/{y}");
        }
    }

    fn decode(layer: LayerBuilder) -> Vec<mvt_reader::feature::Feature> {
        let Some(bytes) = encode_tile(vec![layer]) else {
            return vec![];
        };
        Reader::new(bytes).unwrap().get_features(0).unwrap()
    }

    #[test]
    fn fast_rfc3339_agrees_with_format_utc() {
        let fixed = [
            0,
            -1,
            86_399,
            951_782_400,
            4_107_542_400,
            -62_167_219_200,
            253_402_300_799,
            253_402_300_800,
            i64::MIN,
            i64::MAX,
        ];
        for s in fixed {
            assert_eq!(rfc3339(s).as_str(), format_utc(s), "{s}");
        }
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let s = (x % 700_000_000_000) as i64 - 350_000_000_000;
            assert_eq!(rfc3339(s).as_str(), format_utc(s), "{s}");
        }
    }

    #[test]
    fn clustered_tile_accounts_for_every_point() {
        let pts = random_points(3000, 5);
        let ix = PointIndex::build(pts, names()).unwrap();
        let tile = coord::tile_of(-4.0, 54.0, 4).unwrap();
        let f = Filter {
            categories: Some(vec![1, 2]),
            ..Filter::default()
        };
        let feats = decode(render_points(&ix, tile, &f, &params(12, 64)));
        let expected = ix.filtered(ix.range(tile), &f).count() as u64;
        let mut total = 0;
        for feat in &feats {
            let p = feat.properties.as_ref().unwrap();
            match p.get("point_count") {
                Some(Value::UInt(n)) => {
                    total += n;
                    assert_eq!(p["cluster"], Value::Bool(true));
                    let split: u64 = p
                        .iter()
                        .filter(|(k, _)| k.starts_with("count:"))
                        .map(|(_, v)| match v {
                            Value::UInt(n) => *n,
                            _ => 0,
                        })
                        .sum();
                    assert_eq!(split, *n, "every filtered point has a category");
                    assert!(
                        matches!(p["cluster_expansion_zoom"], Value::UInt(z) if (5..=13).contains(&z))
                    );
                    assert!(matches!(&p["point_count_abbreviated"], Value::String(_)));
                    assert_eq!(feat.id, None);
                }
                _ => {
                    total += 1;
                    assert!(
                        matches!(p["type"], Value::String(ref s) if s == "drugs" || s == "robbery")
                    );
                    assert_eq!(
                        feat.id.map(|i| Value::SInt(i as i64)),
                        Some(p["fid"].clone())
                    );
                }
            }
        }
        assert!(feats.len() > 1);
        assert_eq!(total, expected);
    }

    #[test]
    fn unclustered_tile_has_single_points_with_properties() {
        let pts = vec![
            crate::tiles::PointRecord {
                fid: 3,
                lon: -0.1,
                lat: 51.5,
                time: Some((0, 86_400)),
                category: Some(0),
            },
            // Not at the first point's position, which would make a stack of the two.
            crate::tiles::PointRecord {
                fid: -1,
                lon: -0.1001,
                lat: 51.5,
                time: None,
                category: None,
            },
        ];
        let ix = PointIndex::build(pts, names()).unwrap();
        let tile = coord::tile_of(-0.1, 51.5, 14).unwrap();
        let feats = decode(render_points(&ix, tile, &Filter::default(), &params(14, 0)));
        assert_eq!(feats.len(), 2);
        let a = feats.iter().find(|f| f.id == Some(3)).unwrap();
        let p = a.properties.as_ref().unwrap();
        assert_eq!(p["type"], Value::String("burglary".into()));
        assert_eq!(
            p["time_start"],
            Value::String("1970-01-01T00:00:00Z".into())
        );
        assert_eq!(p["time_end"], Value::String("1970-01-02T00:00:00Z".into()));
        let b = feats.iter().find(|f| f.id.is_none()).unwrap();
        assert_eq!(
            b.properties.as_ref().unwrap().len(),
            1,
            "only fid for a bare point"
        );
        // Empty tile: nothing to encode.
        let away = coord::tile_of(100.0, 0.0, 14).unwrap();
        assert!(render_points(&ix, away, &Filter::default(), &params(14, 64)).is_empty());
    }

    #[test]
    fn buffer_brings_in_neighbours_points_near_the_seam() {
        let tile = coord::tile_of(-0.1, 51.5, 14).unwrap();
        let b = tile.bounds_lonlat();
        let w = b.max_x - b.min_x;
        let rec = |fid, lon| crate::tiles::PointRecord {
            fid,
            lon,
            lat: (b.min_y + b.max_y) / 2.0,
            time: None,
            category: None,
        };
        // Just east of the tile (1% of its width: within a 64/4096 buffer), and far east.
        let ix = PointIndex::build(
            vec![rec(1, b.max_x + w * 0.01), rec(2, b.max_x + w * 0.5)],
            vec![],
        )
        .unwrap();
        let got = decode(render_points(
            &ix,
            tile,
            &Filter::default(),
            &params(10, 64),
        ));
        assert_eq!(got.iter().map(|f| f.id).collect::<Vec<_>>(), vec![Some(1)]);
        assert!(decode(render_points(&ix, tile, &Filter::default(), &params(10, 0))).is_empty());
    }

    /// Fiji straddles the antimeridian: the first and last tile columns draw each
    /// other's points in their buffers, just outside the tile, on the correct side.
    #[test]
    fn buffer_wraps_across_the_antimeridian() {
        let rec = |fid, lon| crate::tiles::PointRecord {
            fid,
            lon,
            lat: -17.0,
            time: None,
            category: None,
        };
        // 0.01° from the antimeridian: within a 64/4096 buffer at z8 (1.4° a tile).
        let ix = PointIndex::build(vec![rec(1, 179.99), rec(2, -179.99), rec(3, 179.5)], vec![])
            .unwrap();
        let xy = |f: &mvt_reader::feature::Feature| match &f.geometry {
            geo_types::Geometry::Point(p) => (p.x(), p.y()),
            geo_types::Geometry::MultiPoint(mp) => (mp.0[0].x(), mp.0[0].y()),
            g => panic!("{g:?}"),
        };
        let west = coord::tile_of(-179.99, -17.0, 8).unwrap();
        let east = coord::tile_of(179.99, -17.0, 8).unwrap();
        assert_eq!((west.x(), east.x()), (0, 255));
        let w = decode(render_points(&ix, west, &Filter::default(), &params(8, 64)));
        let mut ids: Vec<_> = w.iter().map(|f| (f.id, xy(f).0 < 0.0)).collect();
        ids.sort_unstable_by_key(|(id, _)| *id);
        assert_eq!(ids, vec![(Some(1), true), (Some(2), false)], "west tile");
        let e = decode(render_points(&ix, east, &Filter::default(), &params(8, 64)));
        let mut ids: Vec<_> = e.iter().map(|f| (f.id, xy(f).0 > 4096.0)).collect();
        ids.sort_unstable_by_key(|(id, _)| *id);
        assert_eq!(
            ids,
            vec![(Some(1), false), (Some(2), true), (Some(3), false)],
            "east tile"
        );
        // Drawn exactly where the neighbour's own tile puts it, one tile width over.
        let in_east = xy(e.iter().find(|f| f.id == Some(1)).unwrap()).0;
        let in_west = xy(w.iter().find(|f| f.id == Some(1)).unwrap()).0;
        assert_eq!(in_west, in_east - 4096.0);
        // Zoom 0 is its own neighbour: every point once.
        let world = TileCoord::new(0, 0, 0).unwrap();
        let z0 = decode(render_points(
            &ix,
            world,
            &Filter::default(),
            &params(0, 64),
        ));
        assert_eq!(z0.len(), 3);
        // Without a buffer nothing wraps.
        let w0 = decode(render_points(&ix, west, &Filter::default(), &params(8, 0)));
        assert_eq!(w0.iter().map(|f| f.id).collect::<Vec<_>>(), vec![Some(2)]);
    }
}
