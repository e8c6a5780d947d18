//! geo-types geometry (lon/lat) -> integer tile geometry: project, clip to the buffered tile,
//! simplify, round, clean and orient, in that order.
//!
//! Clipping comes first so that simplification and rounding only see the (small) part
//! of a large polygon that touches the tile, and so that no coordinate leaves the
//! buffered square (GDAL and some other decoders drop features that reach past it).
//! Simplification comes before rounding so its error and the rounding error do not
//! compound; cleaning comes after rounding because rounding is what creates repeated
//! points and zero-area slivers. Orientation comes last because cleaning can flip the
//! sign of a tiny ring's area.
//!
//! Written by hand rather than with `geo`: the whole pipeline is ~250 lines, needs no
//! boolean operations (Sutherland–Hodgman is exact for clipping to a convex box), and
//! keeps a large dependency out of the build.

use super::{TileCoord, coord};
use geo_types::{Coord, Geometry, Polygon};

/// Geometry in tile coordinates (y down), ready to encode. Rings are open (the first
/// point is not repeated at the end; MVT closes them with ClosePath).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TileGeometry {
    Points(Vec<[i32; 2]>),
    Lines(Vec<Vec<[i32; 2]>>),
    /// Each polygon is its exterior ring (positive area by the MVT formula, clockwise on
    /// screen) followed by its holes (negative area).
    Polygons(Vec<Vec<Vec<[i32; 2]>>>),
}

impl TileGeometry {
    pub fn is_empty(&self) -> bool {
        match self {
            TileGeometry::Points(p) => p.is_empty(),
            TileGeometry::Lines(l) => l.is_empty(),
            TileGeometry::Polygons(p) => p.is_empty(),
        }
    }
}

type Pt = [f64; 2];

/// The buffered square and the simplification tolerance, in tile units.
#[derive(Debug, Clone, Copy)]
struct Frame {
    tile: TileCoord,
    extent: u32,
    lo: f64,
    hi: f64,
    tolerance: f64,
    /// Added to every projected x: whole world widths, for the buffer beyond the
    /// antimeridian.
    x_shift: f64,
}

/// Clips `geom` to `tile` grown by `buffer` units on each side, with `extent` units per
/// tile side, simplified with a tolerance of `extent / 256` (about one pixel on a
/// 256-pixel screen tile at every zoom). Returns at most one geometry per kind (points,
/// lines, polygons): a GeometryCollection's members are merged by kind. Nothing is
/// returned when nothing of `geom` reaches the buffered tile. Positions with
/// non-finite coordinates are skipped.
///
/// The buffer wraps across the antimeridian: in the first and last column of tiles
/// (below zoom 0, which is its own neighbour) the geometry is also clipped one world
/// width over, so what lies just across the line shows in the buffer on the right side.
pub fn clip_geometry(
    geom: &Geometry<f64>,
    tile: TileCoord,
    extent: u32,
    buffer: u32,
) -> Vec<TileGeometry> {
    let frame = |x_shift| Frame {
        tile,
        extent,
        lo: -f64::from(buffer),
        hi: f64::from(extent) + f64::from(buffer),
        tolerance: f64::from(extent) / 256.0,
        x_shift,
    };
    let (mut points, mut lines, mut polygons) = (Vec::new(), Vec::new(), Vec::new());
    collect(geom, &frame(0.0), &mut points, &mut lines, &mut polygons);
    let across = 1u32 << tile.z();
    let world = f64::from(across) * f64::from(extent);
    for (edge, shift) in [(0, -world), (across - 1, world)] {
        if across > 1 && buffer > 0 && tile.x() == edge {
            collect(geom, &frame(shift), &mut points, &mut lines, &mut polygons);
        }
    }
    let all = [
        TileGeometry::Points(points),
        TileGeometry::Lines(lines),
        TileGeometry::Polygons(polygons),
    ];
    all.into_iter().filter(|g| !g.is_empty()).collect()
}

type Ring = Vec<[i32; 2]>;

fn collect(
    geom: &Geometry<f64>,
    f: &Frame,
    points: &mut Vec<[i32; 2]>,
    lines: &mut Vec<Ring>,
    polygons: &mut Vec<Vec<Ring>>,
) {
    match geom {
        Geometry::Point(p) => clip_points(std::slice::from_ref(&p.0), f, points),
        Geometry::MultiPoint(m) => {
            let coords: Vec<Coord<f64>> = m.iter().map(|p| p.0).collect();
            clip_points(&coords, f, points);
        }
        Geometry::Line(l) => lines.extend(clip_line(&[l.start, l.end], f)),
        Geometry::LineString(l) => lines.extend(clip_line(&l.0, f)),
        Geometry::MultiLineString(m) => {
            lines.extend(m.iter().flat_map(|l| clip_line(&l.0, f)));
        }
        Geometry::Polygon(p) => polygons.extend(clip_polygon(p, f)),
        Geometry::Rect(r) => polygons.extend(clip_polygon(&r.to_polygon(), f)),
        Geometry::Triangle(t) => polygons.extend(clip_polygon(&t.to_polygon(), f)),
        Geometry::MultiPolygon(m) => {
            polygons.extend(m.iter().filter_map(|p| clip_polygon(p, f)));
        }
        Geometry::GeometryCollection(c) => {
            for g in c {
                collect(g, f, points, lines, polygons);
            }
        }
    }
}

/// Projects positions into tile units, skipping non-finite ones.
fn project(positions: &[Coord<f64>], f: &Frame) -> Vec<Pt> {
    positions
        .iter()
        .map(|c| {
            let [x, y] = coord::tile_xy_f64(c.x, c.y, f.tile, f.extent);
            [x + f.x_shift, y]
        })
        .filter(|p| p[0].is_finite() && p[1].is_finite())
        .collect()
}

fn round(p: Pt) -> [i32; 2] {
    // The float-to-int cast saturates, and clipped values are within the buffer anyway.
    [p[0].round() as i32, p[1].round() as i32]
}

fn clip_points(positions: &[Coord<f64>], f: &Frame, out: &mut Vec<[i32; 2]>) {
    let inside = |p: &Pt| p.iter().all(|v| (f.lo..=f.hi).contains(v));
    out.extend(project(positions, f).into_iter().filter(inside).map(round));
}

/// Clips, simplifies and rounds one line; it may come back as several parts (or none).
fn clip_line(positions: &[Coord<f64>], f: &Frame) -> Vec<Ring> {
    let pts = project(positions, f);
    let mut parts = Vec::new();
    let mut cur: Vec<Pt> = Vec::new();
    for w in pts.windows(2) {
        let (a, b) = (w[0], w[1]);
        let Some((t0, t1)) = liang_barsky(a, b, f.lo, f.hi) else {
            parts.extend((!cur.is_empty()).then(|| std::mem::take(&mut cur)));
            continue;
        };
        if t0 > 0.0 && !cur.is_empty() {
            parts.push(std::mem::take(&mut cur));
        }
        if cur.is_empty() {
            cur.push(lerp(a, b, t0));
        }
        cur.push(lerp(a, b, t1));
        if t1 < 1.0 {
            parts.push(std::mem::take(&mut cur));
        }
    }
    parts.extend((!cur.is_empty()).then_some(cur));
    parts
        .into_iter()
        .filter_map(|part| {
            let line = dedup(
                simplify(&part, f.tolerance)
                    .into_iter()
                    .map(round)
                    .collect(),
            );
            (line.len() >= 2).then_some(line)
        })
        .collect()
}

fn lerp(a: Pt, b: Pt, t: f64) -> Pt {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]
}

/// The parameter interval `t0..=t1` of segment `a -> b` inside the square `[lo, hi]²`.
fn liang_barsky(a: Pt, b: Pt, lo: f64, hi: f64) -> Option<(f64, f64)> {
    let d = [b[0] - a[0], b[1] - a[1]];
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for axis in 0..2 {
        for (p, q) in [(-d[axis], a[axis] - lo), (d[axis], hi - a[axis])] {
            if p == 0.0 {
                if q < 0.0 {
                    return None;
                }
            } else {
                let t = q / p;
                if p < 0.0 {
                    t0 = t0.max(t);
                } else {
                    t1 = t1.min(t);
                }
            }
        }
    }
    (t0 <= t1).then_some((t0, t1))
}

/// One polygon: exterior first, then holes. `None` when the exterior does not survive
/// clipping and cleaning (its holes then have nothing to be holes of).
fn clip_polygon(polygon: &Polygon<f64>, f: &Frame) -> Option<Vec<Ring>> {
    let rings = std::iter::once(polygon.exterior()).chain(polygon.interiors());
    let mut out = Vec::with_capacity(1 + polygon.interiors().len());
    for (i, ring) in rings.enumerate() {
        let mut pts = project(&ring.0, f);
        if pts.len() > 1 && pts.first() == pts.last() {
            pts.pop();
        }
        let mut closed = sutherland_hodgman(pts, f.lo, f.hi);
        closed.extend(closed.first().copied());
        let mut simple = simplify(&closed, f.tolerance);
        simple.pop();
        let mut r = dedup(simple.into_iter().map(round).collect());
        while r.len() > 1 && r.first() == r.last() {
            r.pop();
        }
        let area = area2(&r);
        if r.len() < 3 || area == 0 {
            if i == 0 {
                return None;
            }
            continue;
        }
        // Exterior positive, holes negative (MVT 2.1, 4.3.4.4).
        if (i == 0) != (area > 0) {
            r.reverse();
        }
        out.push(r);
    }
    Some(out)
}

/// Clips a ring to the square `[lo, hi]²`, one half-plane at a time.
fn sutherland_hodgman(mut ring: Vec<Pt>, lo: f64, hi: f64) -> Vec<Pt> {
    // (axis, bound, keep values >= bound?)
    for (axis, bound, keep_above) in [(0, lo, true), (0, hi, false), (1, lo, true), (1, hi, false)]
    {
        let inside = |p: &Pt| {
            if keep_above {
                p[axis] >= bound
            } else {
                p[axis] <= bound
            }
        };
        let mut out = Vec::with_capacity(ring.len() + 4);
        for (i, &b) in ring.iter().enumerate() {
            let a = ring[(i + ring.len() - 1) % ring.len()];
            let (ain, bin) = (inside(&a), inside(&b));
            if ain != bin {
                let t = (bound - a[axis]) / (b[axis] - a[axis]);
                let mut p = lerp(a, b, t);
                p[axis] = bound; // exact on the edge despite rounding in lerp
                out.push(p);
            }
            if bin {
                out.push(b);
            }
        }
        ring = out;
        if ring.is_empty() {
            break;
        }
    }
    ring
}

/// Douglas–Peucker with an explicit stack (a long line must not overflow the call
/// stack). Keeps the end points.
fn simplify(pts: &[Pt], tolerance: f64) -> Vec<Pt> {
    if pts.len() < 3 || tolerance <= 0.0 {
        return pts.to_vec();
    }
    let mut keep = vec![false; pts.len()];
    keep[0] = true;
    keep[pts.len() - 1] = true;
    let mut stack = vec![(0, pts.len() - 1)];
    let tol2 = tolerance * tolerance;
    while let Some((s, e)) = stack.pop() {
        let (mut best, mut best_d) = (0, tol2);
        for (i, p) in pts.iter().enumerate().take(e).skip(s + 1) {
            let d = seg_dist2(*p, pts[s], pts[e]);
            if d > best_d {
                (best, best_d) = (i, d);
            }
        }
        if best != 0 {
            keep[best] = true;
            stack.push((s, best));
            stack.push((best, e));
        }
    }
    pts.iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(p, _)| *p)
        .collect()
}

/// Squared distance from `p` to segment `a-b` (to `a` when the segment is a point).
fn seg_dist2(p: Pt, a: Pt, b: Pt) -> f64 {
    let d = [b[0] - a[0], b[1] - a[1]];
    let len2 = d[0] * d[0] + d[1] * d[1];
    let t = if len2 > 0.0 {
        (((p[0] - a[0]) * d[0] + (p[1] - a[1]) * d[1]) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let q = lerp(a, b, t);
    (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)
}

fn dedup(mut v: Ring) -> Ring {
    v.dedup();
    v
}

/// Twice the signed area by the MVT spec's surveyor's formula (positive = clockwise on
/// screen, y down). i128: coordinates may be near the i32 limits.
pub(crate) fn area2(ring: &[[i32; 2]]) -> i128 {
    let n = ring.len();
    (0..n)
        .map(|i| {
            let (a, b) = (ring[i], ring[(i + 1) % n]);
            i128::from(a[0]) * i128::from(b[1]) - i128::from(b[0]) * i128::from(a[1])
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use geojson::{GeometryValue, Position};
    use proptest::prelude::*;

    /// The cases are written as GeoJSON values (as a reader sees them) and clipped in the
    /// geo-types form the store hands over.
    fn clip_geometry(g: &GeometryValue, tile: TileCoord, e: u32, b: u32) -> Vec<TileGeometry> {
        let g = Geometry::try_from(g.clone()).expect("two coordinates per position");
        super::clip_geometry(&g, tile, e, b)
    }

    const E: u32 = 4096;
    const B: u32 = 64;

    /// The z10 tile over central London and a helper to place lon/lat by tile fraction.
    fn tile() -> TileCoord {
        coord::tile_of(-0.1, 51.5, 10).unwrap()
    }
    fn at(fx: f64, fy: f64) -> Position {
        let t = tile();
        let n = f64::from(1u32 << t.z());
        let lon = (f64::from(t.x()) + fx) / n * 360.0 - 180.0;
        let lat = (std::f64::consts::PI * (1.0 - 2.0 * (f64::from(t.y()) + fy) / n))
            .sinh()
            .atan()
            .to_degrees();
        Position::from([lon, lat])
    }
    fn ring(pts: &[(f64, f64)]) -> Vec<Position> {
        let mut r: Vec<_> = pts.iter().map(|&(x, y)| at(x, y)).collect();
        r.push(r[0].clone());
        r
    }

    #[test]
    fn line_leaving_and_reentering_splits_in_two() {
        let line = GeometryValue::LineString {
            coordinates: vec![at(0.2, 0.5), at(2.0, 0.5), at(2.0, 0.8), at(0.5, 0.8)],
        };
        let out = clip_geometry(&line, tile(), E, B);
        let [TileGeometry::Lines(parts)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], vec![[819, 2048], [4160, 2048]]);
        assert_eq!(parts[1], vec![[4160, 3277], [2048, 3277]]);
    }

    #[test]
    fn polygon_with_hole_is_clipped_and_oriented() {
        // Exterior counter-clockwise on screen (wrong for MVT), hole likewise.
        let poly = GeometryValue::Polygon {
            coordinates: vec![
                ring(&[(-1.0, -1.0), (-1.0, 0.5), (0.5, 0.5), (0.5, -1.0)]),
                ring(&[(0.1, 0.1), (0.1, 0.3), (0.3, 0.3), (0.3, 0.1)]),
            ],
        };
        let out = clip_geometry(&poly, tile(), E, B);
        let [TileGeometry::Polygons(polys)] = out.as_slice() else {
            panic!("{out:?}")
        };
        let rings = &polys[0];
        assert_eq!(rings.len(), 2);
        assert!(area2(&rings[0]) > 0 && area2(&rings[1]) < 0);
        let lo = -(B as i32);
        assert!(
            rings[0]
                .iter()
                .all(|p| p[0] >= lo && p[1] >= lo && p[0] <= 2048 && p[1] <= 2048)
        );
        assert!(
            rings[0].contains(&[lo, lo]),
            "corner of the buffered square: {:?}",
            rings[0]
        );
    }

    #[test]
    fn degenerate_parts_are_dropped() {
        let tiny = GeometryValue::Polygon {
            coordinates: vec![ring(&[(0.5, 0.5), (0.50001, 0.5), (0.5, 0.50001)])],
        };
        assert!(clip_geometry(&tiny, tile(), E, B).is_empty());
        let far = GeometryValue::LineString {
            coordinates: vec![at(3.0, 3.0), at(4.0, 4.0)],
        };
        assert!(clip_geometry(&far, tile(), E, B).is_empty());
        let dot = GeometryValue::LineString {
            coordinates: vec![at(0.5, 0.5), at(0.5, 0.5)],
        };
        assert!(clip_geometry(&dot, tile(), E, B).is_empty());
        // Non-finite positions are skipped (a one-coordinate position, the other bad case
        // of GeoJSON, cannot exist in geo-types).
        let bad: Geometry<f64> =
            geo_types::LineString::from(vec![(f64::NAN, 1.0), (1.0, f64::INFINITY)]).into();
        assert!(super::clip_geometry(&bad, tile(), E, B).is_empty());
        // A hole outside the buffer goes, the exterior stays.
        let p = GeometryValue::Polygon {
            coordinates: vec![
                ring(&[(0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.1, 0.9)]),
                ring(&[(5.0, 5.0), (5.1, 5.0), (5.1, 5.1)]),
            ],
        };
        let out = clip_geometry(&p, tile(), E, B);
        assert!(matches!(out.as_slice(), [TileGeometry::Polygons(p)] if p[0].len() == 1));
    }

    #[test]
    fn collections_merge_by_kind_and_points_are_clipped() {
        let g = |value| geojson::Geometry {
            bbox: None,
            value,
            foreign_members: None,
        };
        let coll = GeometryValue::GeometryCollection {
            geometries: vec![
                g(GeometryValue::Point {
                    coordinates: at(0.5, 0.5),
                }),
                g(GeometryValue::MultiPoint {
                    coordinates: vec![at(0.0, 0.0), at(1.01, 0.5), at(1.5, 0.5)],
                }),
                g(GeometryValue::LineString {
                    coordinates: vec![at(0.1, 0.1), at(0.9, 0.9)],
                }),
            ],
        };
        let out = clip_geometry(&coll, tile(), E, B);
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0],
            TileGeometry::Points(vec![[2048, 2048], [0, 0], [4137, 2048]])
        );
    }

    /// A road and a park on the east side of the antimeridian (Fiji's Taveuni sits on
    /// it): the westmost tile draws them in its buffer, left of its edge, and the
    /// eastmost tile draws them inside as usual, one tile width apart.
    #[test]
    fn buffer_wraps_across_the_antimeridian() {
        let z = 12;
        let west = TileCoord::new(z, 0, 2260).unwrap();
        let east = TileCoord::new(z, (1 << z) - 1, 2260).unwrap();
        let b = east.bounds_lonlat();
        let lat = (b.min_y + b.max_y) / 2.0;
        // Within 0.001° of the line: inside the 64/4096 buffer (0.0014° at z12).
        let road = GeometryValue::new_line_string(vec![
            Position::from([179.9995, lat]),
            Position::from([179.9999, lat + 0.001]),
        ]);
        let park = GeometryValue::new_polygon(vec![
            [
                (179.9990, lat),
                (179.9999, lat),
                (179.9999, lat + 0.002),
                (179.9990, lat + 0.002),
                (179.9990, lat),
            ]
            .iter()
            .map(|&(x, y)| Position::from([x, y]))
            .collect::<Vec<Position>>(),
        ]);
        let xs = |g: &[TileGeometry]| -> Vec<i32> {
            g.iter()
                .flat_map(|g| match g {
                    TileGeometry::Lines(l) => l.iter().flatten().map(|p| p[0]).collect::<Vec<_>>(),
                    TileGeometry::Polygons(p) => {
                        p.iter().flatten().flatten().map(|p| p[0]).collect()
                    }
                    TileGeometry::Points(p) => p.iter().map(|p| p[0]).collect(),
                })
                .collect()
        };
        for g in [&road, &park] {
            let in_east = xs(&clip_geometry(g, east, E, B));
            let in_west = xs(&clip_geometry(g, west, E, B));
            assert!(!in_east.is_empty() && !in_west.is_empty(), "{g:?}");
            assert!(
                in_east.iter().all(|&x| x > 4000 && x <= 4096),
                "{in_east:?}"
            );
            assert!(
                in_west.iter().all(|&x| (-64..0).contains(&x)),
                "{in_west:?}"
            );
            let shifted: Vec<i32> = in_east.iter().map(|x| x - 4096).collect();
            assert_eq!(in_west, shifted, "the same shape, one tile width over");
            // No buffer, no wrap; a tile away from the edge never sees it.
            assert!(clip_geometry(g, west, E, 0).is_empty());
            let inner = TileCoord::new(z, 1, 2260).unwrap();
            assert!(clip_geometry(g, inner, E, B).is_empty());
        }
    }

    #[test]
    fn simplification_drops_near_collinear_points() {
        let line = GeometryValue::LineString {
            coordinates: (0..=100)
                .map(|i| at(f64::from(i) / 100.0, 0.5 + 1e-5 * f64::from(i % 2)))
                .collect(),
        };
        let out = clip_geometry(&line, tile(), E, B);
        let [TileGeometry::Lines(parts)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(parts[0], vec![[0, 2048], [4096, 2048]]);
    }

    fn frac() -> impl Strategy<Value = f64> {
        -3.0f64..4.0
    }

    proptest! {
        #[test]
        fn output_stays_in_the_buffered_square_and_is_oriented(
            ext in prop::collection::vec((frac(), frac()), 3..12),
            hole in prop::collection::vec((0.2f64..0.8, 0.2f64..0.8), 3..8),
            line in prop::collection::vec((frac(), frac()), 2..12),
        ) {
            let geom = GeometryValue::GeometryCollection { geometries: vec![
                geojson::Geometry::new(GeometryValue::Polygon { coordinates: vec![ring(&ext), ring(&hole)] }),
                geojson::Geometry::new(GeometryValue::LineString { coordinates: line.iter().map(|&(x, y)| at(x, y)).collect() }),
            ]};
            let (lo, hi) = (-(B as i32), (E + B) as i32);
            let ok = |p: &[i32; 2]| p.iter().all(|v| (lo..=hi).contains(v));
            for g in clip_geometry(&geom, tile(), E, B) {
                match g {
                    TileGeometry::Points(_) => prop_assert!(false),
                    TileGeometry::Lines(ls) => for l in ls {
                        prop_assert!(l.len() >= 2 && l.iter().all(ok));
                        prop_assert!(l.windows(2).all(|w| w[0] != w[1]));
                    },
                    TileGeometry::Polygons(ps) => for rings in ps {
                        for (i, r) in rings.iter().enumerate() {
                            prop_assert!(r.len() >= 3 && r.iter().all(ok));
                            prop_assert!(r.windows(2).all(|w| w[0] != w[1]) && r.first() != r.last());
                            let a = area2(r);
                            prop_assert!(if i == 0 { a > 0 } else { a < 0 }, "ring {i} area {a}");
                        }
                    },
                }
            }
        }
    }
}
