//! One label point per area, inside it: a centroid can fall outside a crescent-shaped
//! neighbourhood or in a lake, and a label per tile piece repeats the name at every tile
//! edge.

use geo_types::{Coord, Geometry, Point, Polygon};

/// A point inside `g` (the largest polygon of a multipolygon), found on horizontal scan
/// lines: of the crossings of each line with the rings, the widest inside span wins, and
/// its middle is the label point. Points and lines give their first position.
pub fn interior_point(g: &Geometry<f64>) -> Option<Point<f64>> {
    match g {
        Geometry::Point(p) => Some(*p),
        Geometry::Polygon(p) => polygon_point(p),
        Geometry::MultiPolygon(m) => m
            .iter()
            .max_by(|a, b| box_area(a).total_cmp(&box_area(b)))
            .and_then(polygon_point),
        Geometry::LineString(l) => l.0.first().map(|c| Point(*c)),
        Geometry::MultiLineString(m) => m.0.first()?.0.first().map(|c| Point(*c)),
        _ => None,
    }
}

fn box_area(p: &Polygon<f64>) -> f64 {
    super::lonlat::bbox(&Geometry::Polygon(p.clone())).map_or(0.0, |[w, s, e, n]| (e - w) * (n - s))
}

fn polygon_point(p: &Polygon<f64>) -> Option<Point<f64>> {
    let [_, s, _, n] = super::lonlat::bbox(&Geometry::Polygon(p.clone()))?;
    let rings: Vec<&[Coord<f64>]> = std::iter::once(p.exterior())
        .chain(p.interiors())
        .map(|r| r.0.as_slice())
        .collect();
    let mut best: Option<(f64, Point<f64>)> = None;
    // Odd numbers of sixteenths: never exactly on the box edge or on the middle line
    // that simple shapes have a vertex on.
    for i in (1..16).step_by(2) {
        let y = s + (n - s) * f64::from(i) / 16.0;
        let mut xs: Vec<f64> = Vec::new();
        for r in &rings {
            for w in r.windows(2) {
                let (a, b) = (w[0], w[1]);
                if (a.y <= y) != (b.y <= y) {
                    xs.push(a.x + (y - a.y) * (b.x - a.x) / (b.y - a.y));
                }
            }
        }
        xs.sort_by(f64::total_cmp);
        for pair in xs.chunks_exact(2) {
            let width = pair[1] - pair[0];
            // Spans near the middle of the shape read better: a small preference.
            let centrality = 1.0 - (f64::from(i) - 8.0).abs() / 16.0;
            let score = width * (0.75 + 0.25 * centrality);
            if best.is_none_or(|(s, _)| score > s) {
                best = Some((score, Point::new((pair[0] + pair[1]) / 2.0, y)));
            }
        }
    }
    best.map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo_types::polygon;

    #[test]
    fn a_u_shape_gets_a_point_on_the_shape_not_in_the_gap() {
        // A "U": the centroid (about x=5) is in the gap between the arms.
        let u: Geometry<f64> = polygon![
            (x: 0.0, y: 0.0), (x: 10.0, y: 0.0), (x: 10.0, y: 10.0), (x: 8.0, y: 10.0),
            (x: 8.0, y: 2.0), (x: 2.0, y: 2.0), (x: 2.0, y: 10.0), (x: 0.0, y: 10.0)
        ]
        .into();
        let p = interior_point(&u).unwrap();
        let in_base = p.y() < 2.0;
        let in_arm = p.x() < 2.0 || p.x() > 8.0;
        assert!(in_base || in_arm, "{p:?} is in the gap");
    }
}
