//! Tile addresses and the Web Mercator projection.
//!
//! Positions are projected once to "world" coordinates: integers on a 2^32 x 2^32 grid
//! covering the Web Mercator square, x east and y south (the tile convention). Integers
//! make tile membership exact (a tile is a block of world coordinates sharing their top
//! `z` bits), so the point index, the clusterer and the tile address always agree on
//! which tile a point is in, with no floating-point seams.

use super::TileError;
use crate::model::Bounds;
use std::f64::consts::PI;

/// The deepest zoom served. 32-bit world coordinates leave 8 bits below a z24 tile,
/// which is still sub-pixel at extent 256 and ~2 cm on the ground.
pub const MAX_ZOOM: u8 = 24;

/// The latitude at which Web Mercator's square ends (atan(sinh(pi)) in degrees);
/// positions further north or south are clamped onto the edge.
pub const MAX_LAT: f64 = 85.051_128_78;

/// 2^32 as a float: the size of the world grid.
const WORLD: f64 = 4_294_967_296.0;

/// A tile address `z/x/y` (XYZ scheme, y down from the north edge). The fields are
/// private so that every value in circulation is a valid tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileCoord {
    z: u8,
    x: u32,
    y: u32,
}

impl TileCoord {
    /// Validates a tile address: `z <= 24` and `x, y < 2^z`.
    ///
    /// ```
    /// use tessera::tiles::TileCoord;
    /// assert!(TileCoord::new(2, 3, 3).is_ok());
    /// assert!(TileCoord::new(2, 4, 0).is_err());
    /// assert!(TileCoord::new(25, 0, 0).is_err());
    /// ```
    pub fn new(z: u8, x: u32, y: u32) -> Result<Self, TileError> {
        if z > MAX_ZOOM {
            return Err(TileError::ZoomTooDeep { z });
        }
        let n = 1u64 << z;
        if u64::from(x) >= n || u64::from(y) >= n {
            return Err(TileError::OutOfRange { z, x, y });
        }
        Ok(TileCoord { z, x, y })
    }

    pub fn z(self) -> u8 {
        self.z
    }
    pub fn x(self) -> u32 {
        self.x
    }
    pub fn y(self) -> u32 {
        self.y
    }

    /// The tile one zoom up that contains this one; `None` at zoom 0.
    pub fn parent(self) -> Option<TileCoord> {
        (self.z > 0).then(|| TileCoord {
            z: self.z - 1,
            x: self.x >> 1,
            y: self.y >> 1,
        })
    }

    /// The four tiles one zoom down (NW, NE, SW, SE); `None` at [`MAX_ZOOM`].
    pub fn children(self) -> Option<[TileCoord; 4]> {
        if self.z >= MAX_ZOOM {
            return None;
        }
        let (z, x, y) = (self.z + 1, self.x * 2, self.y * 2);
        Some([
            TileCoord { z, x, y },
            TileCoord { z, x: x + 1, y },
            TileCoord { z, x, y: y + 1 },
            TileCoord {
                z,
                x: x + 1,
                y: y + 1,
            },
        ])
    }

    /// Number of low world-coordinate bits inside one tile at this zoom.
    pub(crate) fn shift(self) -> u32 {
        32 - u32::from(self.z)
    }

    /// The first world coordinate (x, y) of this tile.
    pub fn world_origin(self) -> (u32, u32) {
        // z = 0 shifts by 32, which `<<` on u32 forbids; go through u64.
        let s = self.shift();
        (
            (u64::from(self.x) << s) as u32,
            (u64::from(self.y) << s) as u32,
        )
    }

    /// The tile in lon/lat degrees (west, south, east, north).
    pub fn bounds_lonlat(self) -> Bounds {
        self.buffered_bounds_lonlat(0, 1)
    }

    /// The tile grown by `buffer_px` units of a tile `extent` units wide on each side,
    /// in lon/lat, clamped to the Web Mercator square. This is the box the store is
    /// queried with, so that geometry reaching into the buffer is drawn across the seam.
    /// An `extent` of 0 is treated as no buffer. See [`Self::buffered_boxes_lonlat`]
    /// for the part of the buffer beyond the antimeridian.
    pub fn buffered_bounds_lonlat(self, buffer_px: u32, extent: u32) -> Bounds {
        let b = if extent == 0 {
            0.0
        } else {
            f64::from(buffer_px) / f64::from(extent)
        };
        let n = (1u64 << self.z) as f64;
        let fx = |t: f64| (t / n).clamp(0.0, 1.0);
        let (x0, x1) = (fx(f64::from(self.x) - b), fx(f64::from(self.x) + 1.0 + b));
        let (y0, y1) = (fx(f64::from(self.y) - b), fx(f64::from(self.y) + 1.0 + b));
        Bounds {
            min_x: x0 * 360.0 - 180.0,
            min_y: lat_of_fraction(y1),
            max_x: x1 * 360.0 - 180.0,
            max_y: lat_of_fraction(y0),
        }
    }

    /// [`Self::buffered_bounds_lonlat`] plus, for a tile at the world's left or right
    /// edge (below zoom 0, whose buffer would repeat the tile itself), the strip of the
    /// buffer that wraps across the antimeridian, as a box on the other side.
    pub fn buffered_boxes_lonlat(self, buffer_px: u32, extent: u32) -> Vec<Bounds> {
        let main = self.buffered_bounds_lonlat(buffer_px, extent);
        let mut boxes = vec![main];
        let n = 1u32 << self.z;
        if n == 1 || extent == 0 || buffer_px == 0 {
            return boxes;
        }
        let width = 360.0 / f64::from(n) * f64::from(buffer_px.min(extent)) / f64::from(extent);
        let wrap = |min_x: f64, max_x: f64| Bounds {
            min_x,
            max_x,
            ..main
        };
        if self.x == 0 {
            boxes.push(wrap(180.0 - width, 180.0));
        }
        if self.x == n - 1 {
            boxes.push(wrap(-180.0, -180.0 + width));
        }
        boxes
    }
}

impl std::fmt::Display for TileCoord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.z, self.x, self.y)
    }
}

/// Latitude (degrees) of a fraction of the world's height, 0 = north edge.
fn lat_of_fraction(fy: f64) -> f64 {
    (PI * (1.0 - 2.0 * fy)).sinh().atan().to_degrees()
}

/// lon/lat -> fractions of the world (0..1, x east, y south); latitude clamped to
/// [`MAX_LAT`]. Non-finite input gives a non-finite output; callers saturate it.
pub(crate) fn world_fraction(lon: f64, lat: f64) -> (f64, f64) {
    let fx = (lon + 180.0) / 360.0;
    let lat = lat.clamp(-MAX_LAT, MAX_LAT).to_radians();
    let fy = 0.5 - (lat.tan() + 1.0 / lat.cos()).ln() / (2.0 * PI);
    (fx, fy)
}

/// Projects lon/lat (degrees) to world coordinates on the 2^32 grid. Latitude is clamped
/// to ±[`MAX_LAT`], longitude to ±180 (so 180 lands in the easternmost column); NaN
/// maps to 0, since a float-to-int cast saturates instead of panicking.
///
/// ```
/// use tessera::tiles::world_xy;
/// assert_eq!(world_xy(0.0, 0.0), (1 << 31, 1 << 31));
/// assert_eq!(world_xy(-180.0, 90.0), (0, 0));
/// assert_eq!(world_xy(180.0, -90.0), (u32::MAX, u32::MAX));
/// ```
pub fn world_xy(lon: f64, lat: f64) -> (u32, u32) {
    let (fx, fy) = world_fraction(lon, lat);
    ((fx * WORLD).floor() as u32, (fy * WORLD).floor() as u32)
}

/// The lon/lat box of world cell (`wx`, `wy`): every position [`world_xy`] maps there.
pub fn world_cell_lonlat(wx: u32, wy: u32) -> Bounds {
    let fx = |w: u32| f64::from(w) / WORLD;
    let fx1 = |w: u32| (f64::from(w) + 1.0) / WORLD;
    Bounds {
        min_x: fx(wx) * 360.0 - 180.0,
        min_y: lat_of_fraction(fx1(wy)),
        max_x: fx1(wx) * 360.0 - 180.0,
        max_y: lat_of_fraction(fx(wy)),
    }
}

/// The tile at zoom `z` that contains a position (after the clamping of [`world_xy`]).
pub fn tile_of(lon: f64, lat: f64, z: u8) -> Result<TileCoord, TileError> {
    if z > MAX_ZOOM {
        return Err(TileError::ZoomTooDeep { z });
    }
    let (wx, wy) = world_xy(lon, lat);
    let s = 32 - u32::from(z);
    TileCoord::new(z, (u64::from(wx) >> s) as u32, (u64::from(wy) >> s) as u32)
}

/// World coordinates -> integer coordinates local to `tile` with `extent` units per
/// side, rounded down. Points of the tile land in `0..extent`; points outside (in the
/// buffer, or anywhere) get negative or larger values, saturated to the i32 range.
pub fn world_to_tile(wx: u32, wy: u32, tile: TileCoord, extent: u32) -> (i32, i32) {
    world_to_tile_wide(wx.into(), wy.into(), tile, extent)
}

/// [`world_to_tile`] for world coordinates moved by whole world widths (2^32), as a
/// buffer across the antimeridian needs.
pub fn world_to_tile_wide(wx: i64, wy: i64, tile: TileCoord, extent: u32) -> (i32, i32) {
    let (ox, oy) = tile.world_origin();
    let s = tile.shift();
    let local = |w: i64, o: u32| {
        // i128: a 2^32 offset times a 2^32 extent does not fit in i64.
        let v = ((i128::from(w) - i128::from(o)) * i128::from(extent)) >> s;
        v.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32
    };
    (local(wx, ox), local(wy, oy))
}

/// lon/lat -> tile-local coordinates as floats, for lines and polygons that are clipped
/// and simplified before rounding.
pub(crate) fn tile_xy_f64(lon: f64, lat: f64, tile: TileCoord, extent: u32) -> [f64; 2] {
    let (fx, fy) = world_fraction(lon, lat);
    let n = (1u64 << tile.z) as f64;
    let e = f64::from(extent);
    [
        (fx * n - f64::from(tile.x)) * e,
        (fy * n - f64::from(tile.y)) * e,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_bad_addresses() {
        assert_eq!(
            TileCoord::new(25, 0, 0),
            Err(TileError::ZoomTooDeep { z: 25 })
        );
        assert!(TileCoord::new(0, 1, 0).is_err());
        assert!(TileCoord::new(24, (1 << 24) - 1, (1 << 24) - 1).is_ok());
        assert!(TileCoord::new(24, 1 << 24, 0).is_err());
        assert!(tile_of(0.0, 0.0, 30).is_err());
    }

    #[test]
    fn world_tile_at_zoom_zero() {
        let t = TileCoord::new(0, 0, 0).unwrap();
        let b = t.bounds_lonlat();
        assert!((b.min_x + 180.0).abs() < 1e-12 && (b.max_x - 180.0).abs() < 1e-12);
        assert!((b.max_y - MAX_LAT).abs() < 1e-6 && (b.min_y + MAX_LAT).abs() < 1e-6);
        assert_eq!(t.parent(), None);
        assert_eq!(world_to_tile(u32::MAX, 0, t, 4096), (4095, 0));
    }

    #[test]
    fn buffer_grows_and_clamps() {
        let t = TileCoord::new(3, 0, 4).unwrap();
        let (b, bb) = (t.bounds_lonlat(), t.buffered_bounds_lonlat(64, 4096));
        assert_eq!(bb.min_x, -180.0, "clamped at the antimeridian");
        assert!(bb.max_x > b.max_x && bb.min_y < b.min_y && bb.max_y > b.max_y);
        assert_eq!(t.buffered_bounds_lonlat(64, 0), b);
    }

    #[test]
    fn tile_local_coordinates_can_leave_the_tile() {
        let t = TileCoord::new(10, 500, 400).unwrap();
        let (ox, oy) = t.world_origin();
        assert_eq!(world_to_tile(ox, oy, t, 4096), (0, 0));
        assert_eq!(world_to_tile(ox - 1, oy, t, 4096).0, -1);
        let step = 1u32 << (32 - 10);
        assert_eq!(world_to_tile(ox + step, oy + step, t, 4096), (4096, 4096));
        let deep = TileCoord::new(24, 0, 0).unwrap();
        assert_eq!(world_to_tile(u32::MAX, 0, deep, 1 << 20).0, i32::MAX);
    }

    #[test]
    fn non_finite_input_does_not_panic() {
        let _ = world_xy(f64::NAN, f64::INFINITY);
        let _ = tile_of(f64::NEG_INFINITY, f64::NAN, 12);
    }

    fn tile() -> impl Strategy<Value = TileCoord> {
        (0u8..=MAX_ZOOM, any::<u32>(), any::<u32>()).prop_map(|(z, x, y)| {
            let m = ((1u64 << z) - 1) as u32;
            TileCoord::new(z, x & m, y & m).unwrap()
        })
    }

    proptest! {
        #[test]
        fn point_lies_in_the_bounds_of_its_tile(
            lon in -180.0f64..180.0, lat in -85.0f64..85.0, z in 0u8..=MAX_ZOOM
        ) {
            let b = tile_of(lon, lat, z).unwrap().bounds_lonlat();
            let eps = 1e-9;
            prop_assert!(b.min_x - eps <= lon && lon <= b.max_x + eps, "{lon} not in {b:?}");
            prop_assert!(b.min_y - eps <= lat && lat <= b.max_y + eps, "{lat} not in {b:?}");
        }

        #[test]
        fn tile_of_agrees_with_parents(lon in -180.0f64..=180.0, lat in -90.0f64..=90.0, z in 1u8..=MAX_ZOOM) {
            let t = tile_of(lon, lat, z).unwrap();
            prop_assert_eq!(t.parent(), Some(tile_of(lon, lat, z - 1).unwrap()));
        }

        #[test]
        fn children_cover_the_parent_exactly(t in tile()) {
            let Some(kids) = t.children() else { return Ok(()) };
            let p = t.bounds_lonlat();
            for k in kids {
                prop_assert_eq!(k.parent(), Some(t));
            }
            // The children tile the parent: corners coincide, no gap, no overlap.
            let [nw, ne, sw, se] = kids.map(TileCoord::bounds_lonlat);
            prop_assert_eq!((nw.min_x, nw.max_y, se.max_x, se.min_y), (p.min_x, p.max_y, p.max_x, p.min_y));
            prop_assert_eq!(nw.max_x, ne.min_x);
            prop_assert_eq!(sw.max_x, se.min_x);
            prop_assert_eq!(nw.min_y, sw.max_y);
            prop_assert_eq!(ne.min_y, se.max_y);
            // In world coordinates the children are the four quarters, exactly.
            let (ox, oy) = t.world_origin();
            let half = 1u64 << (t.shift() - 1);
            prop_assert_eq!(kids[3].world_origin(), ((u64::from(ox) + half) as u32, (u64::from(oy) + half) as u32));
        }

        #[test]
        fn tile_local_coordinates_of_own_points_are_in_extent(wx in any::<u32>(), wy in any::<u32>(), z in 0u8..=MAX_ZOOM) {
            let s = 32 - u32::from(z);
            let t = TileCoord::new(z, (u64::from(wx) >> s) as u32, (u64::from(wy) >> s) as u32).unwrap();
            let (x, y) = world_to_tile(wx, wy, t, 4096);
            prop_assert!((0..4096).contains(&x) && (0..4096).contains(&y));
        }
    }

    #[test]
    fn buffered_boxes_wrap_at_the_world_edges() {
        let middle = TileCoord::new(3, 4, 2).unwrap();
        assert_eq!(middle.buffered_boxes_lonlat(64, 4096).len(), 1);
        let west = TileCoord::new(3, 0, 2).unwrap();
        let boxes = west.buffered_boxes_lonlat(64, 4096);
        assert_eq!(boxes.len(), 2);
        let strip = 45.0 * 64.0 / 4096.0;
        assert!(
            (boxes[1].min_x - (180.0 - strip)).abs() < 1e-9,
            "{:?}",
            boxes[1]
        );
        assert_eq!(boxes[1].max_x, 180.0);
        assert_eq!(
            (boxes[1].min_y, boxes[1].max_y),
            (boxes[0].min_y, boxes[0].max_y)
        );
        let east = TileCoord::new(3, 7, 2).unwrap();
        let boxes = east.buffered_boxes_lonlat(64, 4096);
        assert_eq!((boxes.len(), boxes[1].min_x), (2, -180.0));
        assert!((boxes[1].max_x - (-180.0 + strip)).abs() < 1e-9);
        // At z1 each column touches one edge.
        assert_eq!(
            TileCoord::new(1, 0, 0)
                .unwrap()
                .buffered_boxes_lonlat(64, 4096)
                .len(),
            2
        );
        assert_eq!(
            TileCoord::new(0, 0, 0)
                .unwrap()
                .buffered_boxes_lonlat(64, 4096)
                .len(),
            1
        );
        assert_eq!(west.buffered_boxes_lonlat(0, 4096).len(), 1);
    }
}
