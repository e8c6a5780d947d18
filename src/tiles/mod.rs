//! The pure tile core: tile maths and projection ([`coord`]), an in-memory point index
//! sorted along a Morton curve ([`morton`], [`points`]), grid clustering ([`cluster`]),
//! clipping and simplification of lines and polygons ([`clip`]) and MVT 2.1 encoding
//! ([`encode`]).
//!
//! Nothing here does I/O, awaits or touches SQLite: the HTTP layer calls into it on a
//! blocking thread with data the store has already read, so every function is cheap to
//! test in isolation and none panics on any input.

pub mod clip;
pub mod cluster;
pub mod coord;
pub mod encode;
pub mod ids;
pub mod morton;
pub mod points;
mod render;

pub use clip::{TileGeometry, clip_geometry};
pub use cluster::{
    ClusterFeature, ClusterParams, DEFAULT_GRID_CELLS, abbreviate, choose_cluster_zoom,
    cluster_tile,
};
pub use coord::{MAX_LAT, MAX_ZOOM, TileCoord, tile_of, world_to_tile, world_xy};
pub use encode::{LayerBuilder, PropValue, encode_tile};
pub use ids::ServedIds;
pub use points::{Filter, PointIndex, PointRecord, PointRef};
pub use render::{ExtraProps, PointLayerParams, render_points};

/// Why a tile-core operation was refused. Every variant is a caller mistake or bad input
/// that the HTTP layer turns into a 4xx (tile address) or reports at build time (index).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TileError {
    /// Zoom above [`MAX_ZOOM`]: world coordinates have 32 bits, tiles 8 of them per pixel
    /// at extent 256, so deeper tiles would have no resolution left.
    #[error("zoom {z} is above the maximum zoom {MAX_ZOOM}")]
    ZoomTooDeep { z: u8 },
    /// x or y not below 2^z.
    #[error("tile {z}/{x}/{y} does not exist: x and y must be below {}", 1u64 << z)]
    OutOfRange { z: u8, x: u32, y: u32 },
    /// A point whose longitude or latitude is NaN or infinite.
    #[error("point {fid} has a non-finite coordinate")]
    NonFiniteCoordinate { fid: i64 },
    /// A point whose category index is not an index into the category list.
    #[error("point {fid} has category index {category} but there are {len} categories")]
    UnknownCategory { fid: i64, category: u32, len: usize },
    /// More categories than the index stores (u32::MAX is reserved for "none").
    #[error("{len} categories are more than an index holds")]
    TooManyCategories { len: usize },
}
