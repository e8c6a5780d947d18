//! Geometry interchange: every layer passes `geo_types::Geometry<f64>` (lon/lat, EPSG:4326).
//! This module writes it as GeoJSON text, for feature pages and exports, straight into a
//! byte buffer.
//!
//! Numbers are written by serde_json, as the GeoJSON text stored by earlier versions was:
//! the same input gives the same coordinate text (shortest round-trip form, `1.0` for
//! whole numbers) whether a catalog holds WKB or that legacy text.

use geo_types::{Coord, Geometry, LineString, Polygon};

/// The GeoJSON type name of `g` (Rect and Triangle are written as Polygons, Line as a
/// LineString, so they are named so).
pub fn type_name(g: &Geometry<f64>) -> &'static str {
    match g {
        Geometry::Point(_) => "Point",
        Geometry::Line(_) | Geometry::LineString(_) => "LineString",
        Geometry::Polygon(_) | Geometry::Rect(_) | Geometry::Triangle(_) => "Polygon",
        Geometry::MultiPoint(_) => "MultiPoint",
        Geometry::MultiLineString(_) => "MultiLineString",
        Geometry::MultiPolygon(_) => "MultiPolygon",
        Geometry::GeometryCollection(_) => "GeometryCollection",
    }
}

/// Appends `g` as a GeoJSON geometry object.
///
/// ```
/// use geo_types::{Geometry, LineString};
/// let g: Geometry<f64> = LineString::from(vec![(-73.99, 40.5), (2.0, 1e-7)]).into();
/// let mut out = Vec::new();
/// tessera::geometry::write_geojson(&mut out, &g);
/// assert_eq!(
///     String::from_utf8(out).unwrap(),
///     r#"{"type":"LineString","coordinates":[[-73.99,40.5],[2.0,1e-7]]}"#
/// );
/// ```
pub fn write_geojson(out: &mut Vec<u8>, g: &Geometry<f64>) {
    out.extend_from_slice(br#"{"type":""#);
    out.extend_from_slice(type_name(g).as_bytes());
    if let Geometry::GeometryCollection(c) = g {
        out.extend_from_slice(br#"","geometries":["#);
        for (i, member) in c.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_geojson(out, member);
        }
        out.extend_from_slice(b"]}");
        return;
    }
    out.extend_from_slice(br#"","coordinates":"#);
    match g {
        Geometry::Point(p) => position(out, p.0),
        Geometry::Line(l) => positions(out, [l.start, l.end].iter()),
        Geometry::LineString(l) => positions(out, l.0.iter()),
        Geometry::Polygon(p) => polygon(out, p),
        Geometry::Rect(r) => polygon(out, &r.to_polygon()),
        Geometry::Triangle(t) => polygon(out, &t.to_polygon()),
        Geometry::MultiPoint(m) => list(out, &m.0, |out, p| position(out, p.0)),
        Geometry::MultiLineString(m) => list(out, &m.0, |out, l| positions(out, l.0.iter())),
        Geometry::MultiPolygon(m) => list(out, &m.0, polygon),
        Geometry::GeometryCollection(_) => {}
    }
    out.push(b'}');
}

/// GeoJSON text of `g`, for callers that need an owned string.
pub fn to_geojson(g: &Geometry<f64>) -> String {
    let mut out = Vec::new();
    write_geojson(&mut out, g);
    // Only ASCII and serde_json output was written.
    String::from_utf8(out).unwrap_or_default()
}

fn list<T>(out: &mut Vec<u8>, items: &[T], mut each: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        each(out, item);
    }
    out.push(b']');
}

fn polygon(out: &mut Vec<u8>, p: &Polygon<f64>) {
    let rings: Vec<&LineString<f64>> = std::iter::once(p.exterior()).chain(p.interiors()).collect();
    list(out, &rings, |out, r| positions(out, r.0.iter()));
}

fn positions<'a>(out: &mut Vec<u8>, coords: impl Iterator<Item = &'a Coord<f64>>) {
    out.push(b'[');
    for (i, c) in coords.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        position(out, *c);
    }
    out.push(b']');
}

fn position(out: &mut Vec<u8>, c: Coord<f64>) {
    out.push(b'[');
    number(out, c.x);
    out.push(b',');
    number(out, c.y);
    out.push(b']');
}

fn number(out: &mut Vec<u8>, x: f64) {
    // serde_json's float formatting (and its `null` for a non-finite value, which import
    // never stores): the text earlier versions stored.
    let _ = serde_json::to_writer(&mut *out, &x);
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo_types::{GeometryCollection, MultiLineString, MultiPoint, MultiPolygon, Point, Rect};

    /// What earlier versions stored: serde_json of the geojson crate's bare geometry.
    fn legacy(g: &Geometry<f64>) -> String {
        let value = geojson::GeometryValue::from(g);
        serde_json::to_string(&geojson::Geometry::new(value)).unwrap()
    }

    #[test]
    fn same_text_as_the_legacy_writer() {
        let ring = |pts: &[(f64, f64)]| LineString::from(pts.to_vec());
        let donut = Polygon::new(
            ring(&[
                (0.0, 0.0),
                (10.0, 0.0),
                (10.0, 10.0),
                (0.0, 10.0),
                (0.0, 0.0),
            ]),
            vec![ring(&[(4.0, 4.0), (6.0, 4.0), (6.0, 6.0), (4.0, 4.0)])],
        );
        let line = ring(&[
            (-73.985_713_2, 40.748_4),
            (1e-7, -0.0),
            (179.999_999_999_999_97, 1e21),
        ]);
        let all: Vec<Geometry<f64>> = vec![
            Point::new(-0.127_758, 51.507_351).into(),
            line.clone().into(),
            donut.clone().into(),
            MultiPoint::from(vec![(1.0, 2.0), (3.5, 4.25)]).into(),
            MultiLineString::new(vec![line.clone(), ring(&[(1.0, 1.0), (2.0, 2.0)])]).into(),
            MultiPolygon::new(vec![donut.clone(), donut]).into(),
            Geometry::GeometryCollection(GeometryCollection::new_from(vec![
                Point::new(0.1, 0.2).into(),
                line.into(),
                Geometry::GeometryCollection(GeometryCollection::new_from(vec![])),
            ])),
        ];
        for g in &all {
            assert_eq!(to_geojson(g), legacy(g));
        }
    }

    #[test]
    fn rect_is_written_as_its_polygon() {
        let r: Geometry<f64> = Rect::new((0.0, 0.0), (1.0, 2.0)).into();
        let p: Geometry<f64> = Rect::new((0.0, 0.0), (1.0, 2.0)).to_polygon().into();
        assert_eq!(to_geojson(&r), to_geojson(&p));
        assert_eq!(type_name(&r), "Polygon");
    }
}
