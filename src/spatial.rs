//! Point-in-area tests for the `within=` filter: an area is any (Multi)Polygon feature of
//! another dataset, e.g. a neighbourhood.
//!
//! Even-odd ray casting, which also gives a sensible answer for the self-intersecting
//! polygons that real boundary files contain.

use crate::model::Bounds;
use geo_types::{Geometry, MultiPolygon};

/// The rings of one or more polygons, flattened: even-odd over all rings handles holes.
#[derive(Debug, Clone, PartialEq)]
pub struct Area {
    /// The polygons as given, for backends that evaluate the area themselves.
    polygons: MultiPolygon<f64>,
    rings: Vec<Vec<[f64; 2]>>,
    pub bounds: Bounds,
}

impl Area {
    /// The area of a Polygon or MultiPolygon; `None` for other types or no usable ring.
    pub fn from_geometry(g: &Geometry<f64>) -> Option<Area> {
        let polygons = match g {
            Geometry::Polygon(p) => MultiPolygon::new(vec![p.clone()]),
            Geometry::MultiPolygon(m) => m.clone(),
            Geometry::Rect(r) => MultiPolygon::new(vec![r.to_polygon()]),
            _ => return None,
        };
        let rings: Vec<Vec<[f64; 2]>> = polygons
            .iter()
            .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
            .map(|ring| ring.coords().map(|c| [c.x, c.y]).collect::<Vec<_>>())
            .filter(|r: &Vec<[f64; 2]>| r.len() >= 3)
            .collect();
        let mut bounds: Option<Bounds> = None;
        for p in rings.iter().flatten() {
            let b = Bounds::of_point(p[0], p[1]);
            match &mut bounds {
                Some(acc) => acc.extend(&b),
                None => bounds = Some(b),
            }
        }
        Some(Area {
            polygons,
            rings,
            bounds: bounds?,
        })
    }

    /// The area as a geometry (a MultiPolygon).
    pub fn geometry(&self) -> Geometry<f64> {
        Geometry::MultiPolygon(self.polygons.clone())
    }

    /// Whether (x, y) lies inside (boundary points may go either way).
    pub fn contains(&self, x: f64, y: f64) -> bool {
        if x < self.bounds.min_x
            || x > self.bounds.max_x
            || y < self.bounds.min_y
            || y > self.bounds.max_y
        {
            return false;
        }
        let mut inside = false;
        for ring in &self.rings {
            let mut j = ring.len() - 1;
            for i in 0..ring.len() {
                let ([xi, yi], [xj, yj]) = (ring[i], ring[j]);
                if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
                    inside = !inside;
                }
                j = i;
            }
        }
        inside
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_geojson(text: &str) -> Option<Area> {
        let g: geojson::Geometry = text.parse().ok()?;
        Area::from_geometry(&Geometry::try_from(g).ok()?)
    }

    #[test]
    fn holes_and_multipolygons() {
        let donut = r#"{"type":"Polygon","coordinates":[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[4,4],[6,4],[6,6],[4,6],[4,4]]]}"#;
        let a = from_geojson(donut).unwrap();
        assert!(a.contains(1.0, 1.0));
        assert!(!a.contains(5.0, 5.0));
        assert!(!a.contains(11.0, 5.0));
        let multi = r#"{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]],[[[5,5],[6,5],[6,6],[5,5]]]]}"#;
        let m = from_geojson(multi).unwrap();
        assert!(m.contains(0.8, 0.2) && m.contains(5.8, 5.2) && !m.contains(3.0, 3.0));
        assert!(from_geojson(r#"{"type":"Point","coordinates":[1,2]}"#).is_none());
        // What a backend is handed evaluates the same.
        let again = Area::from_geometry(&m.geometry()).unwrap();
        assert_eq!(again, m);
    }
}
