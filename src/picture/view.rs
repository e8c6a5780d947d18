//! Where a picture looks: a lon/lat box fitted into `width` x `height` pixels in web
//! mercator, the zoom that scale corresponds to, and the tiles that cover it.

use super::PictureError;
use crate::tiles::coord::world_fraction as world_xy;
use crate::tiles::{MAX_ZOOM, TileCoord};

/// Sides a picture may have, in pixels. 2048 keeps one RGBA canvas at 16 MiB and the tiles
/// of one source at 25 (see [`View::tiles`]).
pub const MIN_SIDE: u32 = 16;
pub const MAX_SIDE: u32 = 2048;

/// MapLibre draws vector tiles 512 px wide: a map at zoom z is 512 * 2^z px around the
/// world. The picture takes the same convention, so its zoom (and every zoom-dependent
/// radius and width of the style) is what the map page shows at that size.
pub const TILE_PX: f64 = 512.0;

/// A view: the box asked for, fitted (centred, aspect kept) into the picture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    pub width: u32,
    pub height: u32,
    /// Web-mercator world coordinates (0..1, y down) of the picture's centre.
    centre: (f64, f64),
    /// Pixels per world unit (the world is 1 x 1).
    scale: f64,
}

impl View {
    /// Fits `bbox` = [west, south, east, north] into `width` x `height` pixels.
    pub fn fit(bbox: [f64; 4], width: u32, height: u32) -> Result<Self, PictureError> {
        for (name, side) in [("width", width), ("height", height)] {
            if !(MIN_SIDE..=MAX_SIDE).contains(&side) {
                return Err(PictureError::BadParam {
                    param: name.into(),
                    message: format!("{side} px: a picture is {MIN_SIDE} to {MAX_SIDE} px"),
                });
            }
        }
        let [w, s, e, n] = bbox;
        let (x0, y0) = world_xy(w, n);
        let (x1, y1) = world_xy(e, s);
        // A point or a line of points still needs a finite scale: at least a street's width.
        let dx = (x1 - x0).max(1e-7);
        let dy = (y1 - y0).max(1e-7);
        let most = TILE_PX * f64::from(1u32 << MAX_ZOOM.min(22));
        let scale = (f64::from(width) / dx)
            .min(f64::from(height) / dy)
            .clamp(TILE_PX / 2.0, most);
        Ok(Self {
            width,
            height,
            centre: ((x0 + x1) / 2.0, (y0 + y1) / 2.0),
            scale,
        })
    }

    /// The map zoom of this scale (fractional; what the style's zoom expressions read).
    pub fn zoom(&self) -> f64 {
        (self.scale / TILE_PX).log2()
    }

    /// The tile zoom whose tiles are drawn: the whole part of the zoom, capped by the
    /// source's deepest zoom (deeper views draw its tiles enlarged, as MapLibre overzooms).
    pub fn tile_zoom(&self, max: u8) -> u8 {
        (self.zoom().floor().max(0.0) as u8).min(max)
    }

    /// The pixel position of a world coordinate.
    pub fn pixel(&self, wx: f64, wy: f64) -> (f32, f32) {
        let x = (wx - self.centre.0) * self.scale + f64::from(self.width) / 2.0;
        let y = (wy - self.centre.1) * self.scale + f64::from(self.height) / 2.0;
        (x as f32, y as f32)
    }

    /// The pixel position of a lon/lat.
    pub fn lonlat_pixel(&self, lon: f64, lat: f64) -> (f32, f32) {
        let (wx, wy) = world_xy(lon, lat);
        self.pixel(wx, wy)
    }

    /// The tiles of zoom `z` under the picture, row by row. A tile at the drawn zoom is
    /// 512 to 1024 px wide, so a 2048 px side meets at most 5 columns (fewer when tiles
    /// are overzoomed): at most 25 tiles, the bound behind [`super::MAX_TILES`].
    pub fn tiles(&self, z: u8) -> Vec<TileCoord> {
        let n = f64::from(1u32 << z);
        let half_w = f64::from(self.width) / 2.0 / self.scale;
        let half_h = f64::from(self.height) / 2.0 / self.scale;
        let span = |c: f64, half: f64| {
            let lo = ((c - half) * n).floor().max(0.0) as u32;
            let hi = (((c + half) * n).ceil() as u32).min(1 << z);
            lo..hi
        };
        let mut out = Vec::new();
        for y in span(self.centre.1, half_h) {
            for x in span(self.centre.0, half_w) {
                if let Ok(t) = TileCoord::new(z, x, y) {
                    out.push(t);
                }
            }
        }
        out
    }

    /// The lon/lat box the picture shows (wider than asked on one axis when the aspect
    /// differs): [west, south, east, north].
    pub fn shown_bbox(&self) -> [f64; 4] {
        let half_w = f64::from(self.width) / 2.0 / self.scale;
        let half_h = f64::from(self.height) / 2.0 / self.scale;
        let lon = |wx: f64| wx.clamp(0.0, 1.0) * 360.0 - 180.0;
        let lat = |wy: f64| {
            let y = std::f64::consts::PI * (1.0 - 2.0 * wy.clamp(0.0, 1.0));
            y.sinh().atan().to_degrees()
        };
        [
            lon(self.centre.0 - half_w),
            lat(self.centre.1 + half_h),
            lon(self.centre.0 + half_w),
            lat(self.centre.1 - half_h),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_box_fits_and_its_corners_land_on_the_edges() {
        let v = View::fit([-0.2, 51.4, 0.0, 51.6], 1200, 630).unwrap();
        let (x0, y0) = v.lonlat_pixel(-0.2, 51.6);
        let (x1, y1) = v.lonlat_pixel(0.0, 51.4);
        // One axis fills the picture exactly, the other fits inside it.
        let fills_x = (x0.abs() < 0.01 && (x1 - 1200.0).abs() < 0.01) && y0 >= -0.01;
        let fills_y = (y0.abs() < 0.01 && (y1 - 630.0).abs() < 0.01) && x0 >= -0.01;
        assert!(fills_x || fills_y, "{x0},{y0} {x1},{y1}");
        assert!(v.zoom() > 10.0 && v.zoom() < 12.0, "zoom {}", v.zoom());
    }

    #[test]
    fn oversize_and_undersize_name_the_side() {
        let e = View::fit([0.0, 0.0, 1.0, 1.0], 4000, 4000).unwrap_err();
        assert!(matches!(e, PictureError::BadParam { ref param, .. } if param == "width"));
        let e = View::fit([0.0, 0.0, 1.0, 1.0], 100, 8).unwrap_err();
        assert!(matches!(e, PictureError::BadParam { ref param, .. } if param == "height"));
    }

    #[test]
    fn tiles_cover_the_picture_and_stay_within_the_bound() {
        for (bbox, w, h) in [
            ([-180.0, -85.0, 180.0, 85.0], 2048, 2048),
            ([-74.1, 40.6, -73.8, 40.9], 2048, 2048),
            ([2.29, 48.85, 2.3, 48.86], 2048, 16),
            ([10.0, 10.0, 10.0, 10.0], 2048, 2048),
        ] {
            let v = View::fit(bbox, w, h).unwrap();
            let z = v.tile_zoom(MAX_ZOOM);
            let tiles = v.tiles(z);
            assert!(
                !tiles.is_empty() && tiles.len() <= super::super::MAX_TILES,
                "{bbox:?}: {}",
                tiles.len()
            );
        }
    }
}
