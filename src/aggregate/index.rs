//! Which area a point falls in: an R-tree over the areas' bounding boxes narrows the
//! candidates, then an exact point-in-polygon test decides.

use geo::orient::{Direction, Orient};
use geo::{BoundingRect, GeodesicArea, Intersects};
use geo_types::{Geometry, MultiPolygon, Point};
use rstar::{AABB, RTree, RTreeObject};

/// One area's bounding box in the tree; `slot` indexes [`AreaIndex::areas`].
#[derive(Debug, Clone)]
struct Envelope {
    slot: u32,
    bounds: AABB<[f64; 2]>,
}

impl RTreeObject for Envelope {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.bounds
    }
}

#[derive(Debug, Clone)]
struct Area {
    id: i64,
    shape: MultiPolygon<f64>,
    area_km2: f64,
}

/// Polygons indexed for "which one holds this point?".
///
/// **A point on an edge shared by two areas** (or inside two overlapping areas) goes to
/// the one with the lowest id: the point-in-polygon test is geo's `Intersects`, which
/// includes the boundary, so such a point matches both and the tie must be broken; a
/// rule of ids keeps the answer independent of input order.
///
/// **Invalid polygons** (self-intersecting rings, as some of the shared boundary files
/// have) are not repaired: `Intersects` decides by the winding number of the rings, so a
/// bow-tie holds the points of both its lobes, and the crossing-number test of GEOS
/// agrees with that everywhere except where a ring winds twice around a point. Their
/// geodesic area is the unsigned area of each ring as drawn, so a bow-tie's lobes can
/// cancel out; [`Self::geodesic_area_km2`] is then an underestimate, never a panic.
///
/// ```
/// use geo_types::{Geometry, polygon};
/// use tessera::aggregate::AreaIndex;
/// let west = polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 0.0), (x: 1.0, y: 1.0), (x: 0.0, y: 1.0)];
/// let east = polygon![(x: 1.0, y: 0.0), (x: 2.0, y: 0.0), (x: 2.0, y: 1.0), (x: 1.0, y: 1.0)];
/// let ix = AreaIndex::build([(7, Geometry::Polygon(east)), (3, Geometry::Polygon(west))]);
/// assert_eq!(ix.locate(0.5, 0.5), Some(3));
/// assert_eq!(ix.locate(1.5, 0.5), Some(7));
/// assert_eq!(ix.locate(1.0, 0.5), Some(3)); // on the shared edge: the lower id
/// assert_eq!(ix.locate(5.0, 0.5), None);
/// ```
#[derive(Debug, Clone)]
pub struct AreaIndex {
    tree: RTree<Envelope>,
    /// Sorted by id, so the first match of a point is the lowest id.
    areas: Vec<Area>,
}

impl AreaIndex {
    /// Indexes the polygons and multipolygons of `areas`; other geometries (points,
    /// lines) hold no point and are left out, as are empty polygons. An id given twice
    /// keeps both shapes under that id.
    pub fn build(areas: impl IntoIterator<Item = (i64, Geometry<f64>)>) -> Self {
        let mut kept: Vec<Area> = areas
            .into_iter()
            .filter_map(|(id, g)| {
                let shape = polygons(g)?;
                let area_km2 = shape
                    .0
                    .iter()
                    // Oriented first: on a clockwise exterior ring (common in GeoJSON
                    // before RFC 7946) the geodesic area is the rest of the Earth.
                    .map(|p| p.orient(Direction::Default).geodesic_area_unsigned())
                    .sum::<f64>()
                    / 1e6;
                Some(Area {
                    id,
                    shape,
                    area_km2,
                })
            })
            .collect();
        kept.sort_by_key(|a| a.id);
        let boxes = kept
            .iter()
            .enumerate()
            .filter_map(|(slot, a)| {
                let r = a.shape.bounding_rect()?;
                Some(Envelope {
                    slot: slot as u32,
                    bounds: AABB::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]),
                })
            })
            .collect();
        Self {
            tree: RTree::bulk_load(boxes),
            areas: kept,
        }
    }

    /// The id of the area holding the point (see the type's doc for edges), `None` when
    /// no area does.
    pub fn locate(&self, lon: f64, lat: f64) -> Option<i64> {
        let p = Point::new(lon, lat);
        self.tree
            .locate_in_envelope_intersecting(&AABB::from_point([lon, lat]))
            .map(|e| e.slot)
            .filter(|&slot| self.areas[slot as usize].shape.intersects(&p))
            .min()
            .map(|slot| self.areas[slot as usize].id)
    }

    /// The area's size on the WGS84 ellipsoid (geo's geodesic area, after Karney), in
    /// square kilometres; `None` for an id not in the index. Holes are subtracted.
    pub fn geodesic_area_km2(&self, id: i64) -> Option<f64> {
        let first = self.areas.partition_point(|a| a.id < id);
        let same = self.areas[first..].iter().take_while(|a| a.id == id);
        let mut found = None;
        for a in same {
            *found.get_or_insert(0.0) += a.area_km2;
        }
        found
    }

    /// Number of areas indexed.
    pub fn len(&self) -> usize {
        self.areas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.areas.is_empty()
    }
}

/// The polygons of a geometry, `None` when it has none.
fn polygons(g: Geometry<f64>) -> Option<MultiPolygon<f64>> {
    let mp = match g {
        Geometry::Polygon(p) => MultiPolygon::new(vec![p]),
        Geometry::MultiPolygon(mp) => mp,
        Geometry::Rect(r) => MultiPolygon::new(vec![r.to_polygon()]),
        Geometry::Triangle(t) => MultiPolygon::new(vec![t.to_polygon()]),
        Geometry::GeometryCollection(gc) => MultiPolygon::new(
            gc.0.into_iter()
                .filter_map(polygons)
                .flat_map(|m| m.0)
                .collect(),
        ),
        _ => return None,
    };
    let mp = MultiPolygon::new(
        mp.0.into_iter()
            .filter(|p| p.exterior().0.len() >= 3)
            .collect(),
    );
    (!mp.0.is_empty()).then_some(mp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo_types::{line_string, polygon};
    use proptest::prelude::*;

    fn square(x0: f64, y0: f64, side: f64) -> Geometry<f64> {
        Geometry::Polygon(polygon![
            (x: x0, y: y0), (x: x0 + side, y: y0), (x: x0 + side, y: y0 + side), (x: x0, y: y0 + side)
        ])
    }

    /// A 4×4 grid of unit squares with ids given in a scrambled order.
    fn grid() -> AreaIndex {
        let mut cells = Vec::new();
        for i in 0..4 {
            for j in 0..4 {
                let id = ((i * 7 + j * 5) % 16) as i64;
                cells.push((id, square(f64::from(i), f64::from(j), 1.0)));
            }
        }
        AreaIndex::build(cells)
    }

    #[test]
    fn a_shared_corner_goes_to_the_lowest_of_four_ids() {
        let ix = grid();
        // (1,1) is a corner of cells (0,0) id 0, (1,0) id 7, (0,1) id 5, (1,1) id 12.
        assert_eq!(ix.locate(1.0, 1.0), Some(0));
        // (2,2): cells (1,1) 12, (2,1) 3, (1,2) 1, (2,2) 8.
        assert_eq!(ix.locate(2.0, 2.0), Some(1));
    }

    #[test]
    fn points_outside_every_area_and_in_holes_are_none() {
        let with_hole = Geometry::Polygon(polygon!(
            exterior: [(x: 0.0, y: 0.0), (x: 10.0, y: 0.0), (x: 10.0, y: 10.0), (x: 0.0, y: 10.0)],
            interiors: [[(x: 4.0, y: 4.0), (x: 6.0, y: 4.0), (x: 6.0, y: 6.0), (x: 4.0, y: 6.0)]],
        ));
        let ix = AreaIndex::build([(1, with_hole)]);
        assert_eq!(ix.locate(5.0, 5.0), None);
        assert_eq!(ix.locate(2.0, 5.0), Some(1));
        assert_eq!(ix.locate(-1.0, 5.0), None);
    }

    #[test]
    fn a_self_intersecting_bow_tie_holds_both_lobes() {
        let bow_tie = Geometry::Polygon(polygon![
            (x: 0.0, y: 0.0), (x: 2.0, y: 2.0), (x: 2.0, y: 0.0), (x: 0.0, y: 2.0)
        ]);
        let ix = AreaIndex::build([(4, bow_tie)]);
        assert_eq!(ix.locate(1.8, 1.0), Some(4));
        assert_eq!(ix.locate(0.2, 1.0), Some(4));
        assert_eq!(ix.locate(1.0, 1.8), None);
        assert!(ix.geodesic_area_km2(4).is_some_and(f64::is_finite));
    }

    #[test]
    fn lines_and_points_are_not_areas() {
        let line = Geometry::LineString(line_string![(x: 0.0, y: 0.0), (x: 1.0, y: 1.0)]);
        let ix = AreaIndex::build([(1, line), (2, Geometry::Point(Point::new(0.5, 0.5)))]);
        assert!(ix.is_empty());
        assert_eq!(ix.locate(0.5, 0.5), None);
    }

    #[test]
    fn a_one_degree_cell_at_the_equator_has_its_geodesic_size() {
        let ix = AreaIndex::build([(1, square(0.0, 0.0, 1.0))]);
        // 1° × 1° at the equator on WGS84: about 12,308 km² (Karney's GeographicLib gives
        // 12308.778 km² for this cell).
        let km2 = ix.geodesic_area_km2(1).unwrap();
        assert!((km2 - 12_308.8).abs() < 1.0, "{km2}");
        assert_eq!(ix.geodesic_area_km2(2), None);
    }

    #[test]
    fn a_clockwise_ring_has_the_same_area_not_the_rest_of_the_earth() {
        let cw = Geometry::Polygon(polygon![
            (x: 0.0, y: 0.0), (x: 0.0, y: 1.0), (x: 1.0, y: 1.0), (x: 1.0, y: 0.0)
        ]);
        let ix = AreaIndex::build([(1, cw)]);
        let km2 = ix.geodesic_area_km2(1).unwrap();
        assert!((km2 - 12_308.8).abs() < 1.0, "{km2}");
    }

    proptest! {
        /// Over the grid, every point gets exactly the area a brute force gives: the
        /// lowest id among the cells whose closed square holds it.
        #[test]
        fn locate_matches_brute_force(x in -0.5f64..4.5, y in -0.5f64..4.5, snap in 0u8..3) {
            // Snap some points onto grid lines, where ties happen.
            let (x, y) = match snap {
                0 => (x.round(), y),
                1 => (x.round(), y.round()),
                _ => (x, y),
            };
            let mut expected = None::<i64>;
            for i in 0..4 {
                for j in 0..4 {
                    let (x0, y0) = (f64::from(i), f64::from(j));
                    if x >= x0 && x <= x0 + 1.0 && y >= y0 && y <= y0 + 1.0 {
                        let id = ((i * 7 + j * 5) % 16) as i64;
                        expected = Some(expected.map_or(id, |e| e.min(id)));
                    }
                }
            }
            prop_assert_eq!(grid().locate(x, y), expected);
        }
    }
}
