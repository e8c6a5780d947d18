//! Clipping lon/lat geometry to a lon/lat box, before it is projected into any tile.
//!
//! The tiler clips each tile's features to a box a little larger than the tile, and the
//! children of that tile start from the clipped copies: a continent of 100,000 points is
//! cut down once per level instead of being projected whole for every one of thousands
//! of tiles. A box in lon/lat is a box in Web Mercator too (both axes are monotonic), so
//! clipping here and again in tile space gives the same shape. The final, exact clip to
//! the buffered tile is [`crate::tiles::clip_geometry`]'s; this one only has to keep
//! everything inside the box.

use geo_types::{Coord, Geometry, LineString, MultiLineString, MultiPolygon, Point, Polygon};

/// west, south, east, north
pub type Box4 = [f64; 4];

/// The bounding box of a geometry, `None` when it has no positions.
pub fn bbox(g: &Geometry<f64>) -> Option<Box4> {
    let mut b: Option<Box4> = None;
    visit(g, &mut |c| {
        let v = b.get_or_insert([c.x, c.y, c.x, c.y]);
        v[0] = v[0].min(c.x);
        v[1] = v[1].min(c.y);
        v[2] = v[2].max(c.x);
        v[3] = v[3].max(c.y);
    });
    b
}

fn visit(g: &Geometry<f64>, f: &mut impl FnMut(Coord<f64>)) {
    let ring = |l: &LineString<f64>, f: &mut dyn FnMut(Coord<f64>)| l.0.iter().for_each(|c| f(*c));
    match g {
        Geometry::Point(p) => f(p.0),
        Geometry::MultiPoint(m) => m.iter().for_each(|p| f(p.0)),
        Geometry::Line(l) => {
            f(l.start);
            f(l.end);
        }
        Geometry::LineString(l) => ring(l, f),
        Geometry::MultiLineString(m) => m.iter().for_each(|l| ring(l, f)),
        Geometry::Polygon(p) => {
            ring(p.exterior(), f);
            p.interiors().iter().for_each(|r| ring(r, f));
        }
        Geometry::MultiPolygon(m) => m.iter().for_each(|p| {
            ring(p.exterior(), f);
            p.interiors().iter().for_each(|r| ring(r, f));
        }),
        Geometry::GeometryCollection(c) => c.iter().for_each(|g| visit(g, f)),
        Geometry::Rect(r) => {
            f(r.min());
            f(r.max());
        }
        Geometry::Triangle(t) => t.to_array().iter().for_each(|c| f(*c)),
    }
}

pub fn boxes_meet(a: Box4, b: Box4) -> bool {
    a[0] <= b[2] && a[2] >= b[0] && a[1] <= b[3] && a[3] >= b[1]
}

fn inside(c: Coord<f64>, b: Box4) -> bool {
    c.x >= b[0] && c.x <= b[2] && c.y >= b[1] && c.y <= b[3]
}

/// `g` cut to the box `b`; `None` when nothing is left. Geometry entirely inside comes
/// back unchanged (a clone), the common case at high zoom.
pub fn clip(g: &Geometry<f64>, b: Box4) -> Option<Geometry<f64>> {
    let gb = bbox(g)?;
    if !boxes_meet(gb, b) {
        return None;
    }
    if gb[0] >= b[0] && gb[2] <= b[2] && gb[1] >= b[1] && gb[3] <= b[3] {
        return Some(g.clone());
    }
    match g {
        Geometry::Point(p) => inside(p.0, b).then(|| g.clone()),
        Geometry::MultiPoint(m) => {
            let kept: Vec<Point<f64>> = m.iter().filter(|p| inside(p.0, b)).copied().collect();
            (!kept.is_empty()).then(|| Geometry::MultiPoint(kept.into()))
        }
        Geometry::Line(l) => lines(&[l.start, l.end], b),
        Geometry::LineString(l) => lines(&l.0, b),
        Geometry::MultiLineString(m) => {
            let parts: Vec<LineString<f64>> = m.iter().flat_map(|l| line_parts(&l.0, b)).collect();
            (!parts.is_empty()).then_some(Geometry::MultiLineString(MultiLineString(parts)))
        }
        Geometry::Polygon(p) => polygon(p, b).map(Geometry::Polygon),
        Geometry::MultiPolygon(m) => {
            let parts: Vec<Polygon<f64>> = m.iter().filter_map(|p| polygon(p, b)).collect();
            (!parts.is_empty()).then_some(Geometry::MultiPolygon(MultiPolygon(parts)))
        }
        Geometry::Rect(r) => polygon(&r.to_polygon(), b).map(Geometry::Polygon),
        Geometry::Triangle(t) => polygon(&t.to_polygon(), b).map(Geometry::Polygon),
        Geometry::GeometryCollection(c) => {
            let kept: Vec<Geometry<f64>> = c.iter().filter_map(|g| clip(g, b)).collect();
            (!kept.is_empty()).then(|| Geometry::GeometryCollection(kept.into()))
        }
    }
}

fn lines(pts: &[Coord<f64>], b: Box4) -> Option<Geometry<f64>> {
    let parts = line_parts(pts, b);
    (!parts.is_empty()).then_some(Geometry::MultiLineString(MultiLineString(parts)))
}

/// The pieces of a line inside the box (Liang–Barsky per segment, joined while they
/// stay connected).
fn line_parts(pts: &[Coord<f64>], b: Box4) -> Vec<LineString<f64>> {
    let mut out = Vec::new();
    let mut cur: Vec<Coord<f64>> = Vec::new();
    for w in pts.windows(2) {
        let (p, q) = (w[0], w[1]);
        match segment(p, q, b) {
            Some((a, c)) => {
                if cur.last() != Some(&a) {
                    if cur.len() >= 2 {
                        out.push(LineString(std::mem::take(&mut cur)));
                    }
                    cur.clear();
                    cur.push(a);
                }
                cur.push(c);
            }
            None => {
                if cur.len() >= 2 {
                    out.push(LineString(std::mem::take(&mut cur)));
                }
                cur.clear();
            }
        }
    }
    if cur.len() >= 2 {
        out.push(LineString(cur));
    }
    out
}

fn segment(p: Coord<f64>, q: Coord<f64>, b: Box4) -> Option<(Coord<f64>, Coord<f64>)> {
    let (dx, dy) = (q.x - p.x, q.y - p.y);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (den, num) in [
        (-dx, p.x - b[0]),
        (dx, b[2] - p.x),
        (-dy, p.y - b[1]),
        (dy, b[3] - p.y),
    ] {
        if den == 0.0 {
            if num < 0.0 {
                return None;
            }
        } else {
            let t = num / den;
            if den < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    if t0 > t1 {
        return None;
    }
    let at = |t: f64| {
        if t == 0.0 {
            p
        } else if t == 1.0 {
            q
        } else {
            Coord {
                x: p.x + dx * t,
                y: p.y + dy * t,
            }
        }
    };
    Some((at(t0), at(t1)))
}

/// Sutherland–Hodgman on each ring: exact for a convex clip window. Concave rings may
/// gain zero-width edges along the box side; they lie on the edge of the buffer, which
/// the tile clip trims again.
fn polygon(p: &Polygon<f64>, b: Box4) -> Option<Polygon<f64>> {
    let ext = ring(&p.exterior().0, b)?;
    let holes: Vec<LineString<f64>> = p.interiors().iter().filter_map(|r| ring(&r.0, b)).collect();
    Some(Polygon::new(ext, holes))
}

fn ring(pts: &[Coord<f64>], b: Box4) -> Option<LineString<f64>> {
    type Edge = (
        fn(Coord<f64>, f64) -> bool,
        fn(Coord<f64>, Coord<f64>, f64) -> Coord<f64>,
        f64,
    );
    fn cut_x(p: Coord<f64>, q: Coord<f64>, x: f64) -> Coord<f64> {
        let t = (x - p.x) / (q.x - p.x);
        Coord {
            x,
            y: p.y + (q.y - p.y) * t,
        }
    }
    fn cut_y(p: Coord<f64>, q: Coord<f64>, y: f64) -> Coord<f64> {
        let t = (y - p.y) / (q.y - p.y);
        Coord {
            x: p.x + (q.x - p.x) * t,
            y,
        }
    }
    let edges: [Edge; 4] = [
        (|c, v| c.x >= v, cut_x, b[0]),
        (|c, v| c.x <= v, cut_x, b[2]),
        (|c, v| c.y >= v, cut_y, b[1]),
        (|c, v| c.y <= v, cut_y, b[3]),
    ];
    let mut cur: Vec<Coord<f64>> = pts.to_vec();
    if cur.len() > 1 && cur.first() == cur.last() {
        cur.pop();
    }
    for (keep, cut, v) in edges {
        if cur.is_empty() {
            return None;
        }
        let mut next = Vec::with_capacity(cur.len() + 4);
        for i in 0..cur.len() {
            let p = cur[i];
            let q = cur[(i + 1) % cur.len()];
            match (keep(p, v), keep(q, v)) {
                (true, true) => next.push(q),
                (true, false) => next.push(cut(p, q, v)),
                (false, true) => {
                    next.push(cut(p, q, v));
                    next.push(q);
                }
                (false, false) => {}
            }
        }
        cur = next;
    }
    if cur.len() < 3 {
        return None;
    }
    cur.push(cur[0]);
    Some(LineString(cur))
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo_types::{line_string, polygon};

    #[test]
    fn square_is_cut_to_the_box() {
        let sq: Geometry<f64> =
            polygon![(x: 0.0, y: 0.0), (x: 10.0, y: 0.0), (x: 10.0, y: 10.0), (x: 0.0, y: 10.0)]
                .into();
        let Some(Geometry::Polygon(p)) = clip(&sq, [5.0, 5.0, 20.0, 20.0]) else {
            panic!("expected a polygon");
        };
        assert_eq!(bbox(&Geometry::Polygon(p)), Some([5.0, 5.0, 10.0, 10.0]));
        assert!(clip(&sq, [11.0, 11.0, 20.0, 20.0]).is_none());
    }

    #[test]
    fn line_leaving_and_returning_makes_two_pieces() {
        let l: Geometry<f64> =
            line_string![(x: 0.0, y: 1.0), (x: 5.0, y: 1.0), (x: 5.0, y: 9.0), (x: 0.0, y: 9.0)]
                .into();
        let Some(Geometry::MultiLineString(m)) = clip(&l, [-1.0, 0.0, 3.0, 10.0]) else {
            panic!("expected lines");
        };
        assert_eq!(m.0.len(), 2);
        assert_eq!(m.0[0].0.last().map(|c| c.x), Some(3.0));
    }
}
