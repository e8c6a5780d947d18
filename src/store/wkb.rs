//! The stored form of lines and polygons: ISO WKB, little-endian, XY.
//!
//! WKB rather than GeoJSON text because every shape tile decodes every geometry it
//! draws: WKB is read without parsing numbers from text (see `benches/geometry.rs` for
//! the figures), and it is what PostGIS stores and sends, so a second backend needs no
//! other form. Writing and reading go through the `wkb` crate, which validates buffer
//! lengths (a damaged blob is an error, not a panic).

use geo_traits::to_geo::ToGeoGeometry;
use geo_types::Geometry;

/// Why a blob could not be read as a geometry.
#[derive(Debug, thiserror::Error)]
pub enum WkbError {
    #[error("invalid WKB: {0}")]
    Invalid(String),
    /// geo-types has no empty points, so `POINT EMPTY` (or a collection holding one)
    /// has no geo-types form.
    #[error("WKB holds an empty point, which has no geo-types form")]
    EmptyPoint,
}

/// ISO WKB, little-endian, XY, of `g`.
///
/// ```
/// use geo_types::{LineString, Geometry};
/// let line: Geometry<f64> = LineString::from(vec![(-73.99, 40.73), (-73.98, 40.75)]).into();
/// let blob = tessera::store::wkb::encode(&line);
/// assert_eq!(&blob[..5], &[1, 2, 0, 0, 0]); // little-endian, type 2 (LineString)
/// assert_eq!(tessera::store::wkb::decode(&blob).unwrap(), line);
/// ```
pub fn encode(g: &Geometry<f64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(wkb::writer::geometry_wkb_size(g));
    // Writing to a Vec cannot fail, and every geo-types geometry has a WKB form (Rect,
    // Triangle and Line are written as Polygon and LineString).
    let _ = wkb::writer::write_geometry(&mut out, g, &wkb::writer::WriteOptions::default());
    out
}

/// Reads WKB (either byte order; Z and M values are dropped) into geo-types.
pub fn decode(blob: &[u8]) -> Result<Geometry<f64>, WkbError> {
    let wkb = wkb::reader::read_wkb(blob).map_err(|e| WkbError::Invalid(e.to_string()))?;
    wkb.try_to_geometry().ok_or(WkbError::EmptyPoint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo_types::{
        GeometryCollection, LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon,
        coord,
    };

    fn samples() -> Vec<Geometry<f64>> {
        let ring = |pts: &[(f64, f64)]| LineString::from(pts.to_vec());
        let donut = Polygon::new(
            ring(&[
                (0.0, 0.0),
                (10.0, 0.0),
                (10.0, 10.0),
                (0.0, 10.0),
                (0.0, 0.0),
            ]),
            vec![ring(&[
                (4.0, 4.0),
                (6.0, 4.0),
                (6.0, 6.0),
                (4.0, 6.0),
                (4.0, 4.0),
            ])],
        );
        let line = ring(&[(-73.9857, 40.7484), (-73.9772, 40.7527), (-0.1, 51.5)]);
        vec![
            Point::new(1.5, -2.25).into(),
            line.clone().into(),
            donut.clone().into(),
            MultiPoint::from(vec![(1.0, 2.0), (3.0, 4.0)]).into(),
            MultiLineString::new(vec![line.clone(), ring(&[(1.0, 1.0), (2.0, 2.0)])]).into(),
            MultiPolygon::new(vec![donut.clone(), donut.clone()]).into(),
            Geometry::GeometryCollection(GeometryCollection::new_from(vec![
                Point::new(0.1, 0.2).into(),
                line.into(),
            ])),
        ]
    }

    #[test]
    fn round_trips_every_kind_bit_for_bit() {
        for g in samples() {
            let blob = encode(&g);
            assert_eq!(blob[0], 1, "little-endian");
            assert_eq!(decode(&blob).unwrap(), g);
        }
        // Exact f64s: no decimal text in between.
        let tricky: Geometry<f64> = LineString::new(vec![
            coord! {x: 0.1 + 0.2, y: 1e-300},
            coord! {x: -0.0, y: 179.99999999999997},
        ])
        .into();
        assert_eq!(decode(&encode(&tricky)).unwrap(), tricky);
    }

    #[test]
    fn iso_type_codes() {
        let types: Vec<u32> = samples()
            .iter()
            .map(|g| u32::from_le_bytes(encode(g)[1..5].try_into().unwrap()))
            .collect();
        assert_eq!(types, vec![1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn damaged_blobs_are_errors_not_panics() {
        let blob = encode(&samples()[2]);
        for cut in 0..blob.len() {
            assert!(decode(&blob[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(b"{\"type\":\"Point\"}").is_err());
        let mut wrong = blob.clone();
        wrong[0] = 7; // neither byte order
        assert!(decode(&wrong).is_err());
    }
}
