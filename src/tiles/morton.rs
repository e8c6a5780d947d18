//! Morton (Z-order) codes of world coordinates.
//!
//! Interleaving the bits of x and y puts the top `2z` bits of a code in one-to-one
//! correspondence with the zoom-`z` tile of the point, so points sorted by code form one
//! contiguous run per tile at every zoom, and per clustering grid cell too. That is what
//! lets [`super::PointIndex`] answer a tile with two binary searches and cluster it in
//! one linear pass.

use super::TileCoord;

/// Spreads the 32 bits of `v` over the even bits of a u64.
fn spread(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// Gathers the even bits of a u64 into a u32 (the inverse of `spread`).
fn gather(v: u64) -> u32 {
    let mut x = v & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    (x | (x >> 16)) as u32
}

/// The Morton code of world coordinates: x in the even bits, y in the odd bits.
///
/// ```
/// use tessera::tiles::morton::{encode, decode};
/// assert_eq!(encode(0b11, 0b01), 0b0111);
/// assert_eq!(decode(encode(123_456, 7_890_123)), (123_456, 7_890_123));
/// ```
pub fn encode(x: u32, y: u32) -> u64 {
    spread(x) | (spread(y) << 1)
}

/// World coordinates back from a Morton code.
pub fn decode(code: u64) -> (u32, u32) {
    (gather(code), gather(code >> 1))
}

/// The Morton codes `first..=last` of every world position in `tile`, inclusive because
/// the zoom-0 tile spans all 2^64 codes.
pub fn tile_span(tile: TileCoord) -> (u64, u64) {
    let (ox, oy) = tile.world_origin();
    let first = encode(ox, oy);
    // 2 * (32 - z) low bits vary inside the tile; for z = 0 that is all 64.
    let low = u64::MAX.checked_shr(2 * u32::from(tile.z())).unwrap_or(0);
    (first, first | low)
}

/// The key that groups codes into cells of side 2^(32 - level) world units: the same
/// key means the same cell. `level` above 32 is treated as 32 (one world unit).
pub fn cell_key(code: u64, level: u32) -> u64 {
    let level = level.min(32);
    code.checked_shr(64 - 2 * level).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn whole_world_span() {
        let t = TileCoord::new(0, 0, 0).unwrap();
        assert_eq!(tile_span(t), (0, u64::MAX));
        assert_eq!(cell_key(u64::MAX, 0), 0);
        assert_eq!(cell_key(u64::MAX, 40), u64::MAX);
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(x in any::<u32>(), y in any::<u32>()) {
            prop_assert_eq!(decode(encode(x, y)), (x, y));
        }

        #[test]
        fn tile_span_holds_exactly_the_tiles_codes(x in any::<u32>(), y in any::<u32>(), z in 0u8..=24) {
            let s = 32 - u32::from(z);
            let tile = TileCoord::new(z, (u64::from(x) >> s) as u32, (u64::from(y) >> s) as u32).unwrap();
            let (first, last) = tile_span(tile);
            let c = encode(x, y);
            prop_assert!(first <= c && c <= last);
            prop_assert_eq!(cell_key(c, u32::from(z)), cell_key(first, u32::from(z)));
            // The neighbour tile's codes are outside the span.
            if let Ok(next) = TileCoord::new(z, tile.x() + 1, tile.y()) {
                let (nf, nl) = tile_span(next);
                prop_assert!(nl < first || nf > last);
            }
        }
    }
}
