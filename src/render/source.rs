//! What the tile endpoints serve: a [`TileSource`] is TileJSON plus tiles by coordinate.
//! Catalog datasets rendered on demand ([`super::catalog::CatalogSource`]) and stored
//! archives ([`super::archive`]) implement it; the HTTP handlers know nothing else.
//!
//! The trait is async (futures boxed by hand, so that it stays object-safe without a macro
//! crate): the `pmtiles` reader is async only, and the catalog's fast path (cache hits and
//! tiles drawn from the in-memory point index) must answer on the async worker without a
//! hop to the blocking pool. Sources with blocking work (SQLite) move it there themselves.

use crate::store::StoreError;
use crate::tiles::TileCoord;
use bytes::Bytes;
use std::future::Future;
use std::ops::RangeInclusive;
use std::pin::Pin;
use tilejson::TileJSON;

/// What a tile's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TileFormat {
    Mvt,
    Png,
    Jpeg,
    Webp,
    Avif,
}

impl TileFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            TileFormat::Mvt => "application/vnd.mapbox-vector-tile",
            TileFormat::Png => "image/png",
            TileFormat::Jpeg => "image/jpeg",
            TileFormat::Webp => "image/webp",
            TileFormat::Avif => "image/avif",
        }
    }

    /// The name used by MBTiles' `format` metadata and TileJSON consumers.
    pub fn name(self) -> &'static str {
        match self {
            TileFormat::Mvt => "pbf",
            TileFormat::Png => "png",
            TileFormat::Jpeg => "jpg",
            TileFormat::Webp => "webp",
            TileFormat::Avif => "avif",
        }
    }

    /// From MBTiles' `format` metadata value (case-insensitive); `None` if unknown.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "pbf" | "mvt" => TileFormat::Mvt,
            "png" => TileFormat::Png,
            "jpg" | "jpeg" => TileFormat::Jpeg,
            "webp" => TileFormat::Webp,
            "avif" => TileFormat::Avif,
            _ => return None,
        })
    }
}

/// The content coding of a tile's bytes, as stored or as produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Identity,
    Gzip,
}

impl Encoding {
    /// The `Content-Encoding` value; `None` for identity.
    pub fn header(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
        }
    }
}

/// One tile: its bytes (shared, never copied per response), what they are and their coding.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    pub bytes: Bytes,
    pub format: TileFormat,
    pub encoding: Encoding,
}

/// A tile request: where, with which filters, and whether the client takes gzip.
#[derive(Debug, Clone, Copy)]
pub struct TileRequest<'a> {
    pub coord: TileCoord,
    /// The URL's raw query (filters and `v=`).
    pub query: Option<&'a str>,
    /// The client accepts gzip (and the server is allowed to send it).
    pub gzip: bool,
}

/// A source's answer: the tile (`None`: no data there, a 204) and the text that names
/// exactly these bytes (source version, tile, filters, content coding), for the strong
/// ETag and the cache.
#[derive(Debug, Clone)]
pub struct TileReply {
    pub key: String,
    pub tile: Option<Tile>,
}

/// Why a source could not answer. Request faults name what was wrong; HTTP maps them to
/// 400 and 404 at its edge.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A request parameter is malformed or not taken by this source.
    #[error("{param}: {message}")]
    BadParam { param: String, message: String },
    /// No such tileset, layer or tile.
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A parameter the query model refused (400 naming it, or 404 for an unknown dataset).
    #[error(transparent)]
    Query(#[from] crate::query::QueryError),
    /// Reading a stored archive failed after it opened.
    #[error("{0}")]
    Read(String),
}

pub type SourceFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, SourceError>> + Send + 'a>>;

/// TileJSON and tiles of one tileset.
pub trait TileSource: Send + Sync + std::fmt::Debug {
    /// TileJSON 3.0 with absolute tile URLs under `base`; `query` (filters) is validated
    /// and carried into the tile URLs by sources that take filters.
    fn tilejson<'a>(&'a self, base: &'a str, query: Option<&'a str>) -> SourceFuture<'a, TileJSON>;

    /// The tile at `req.coord`, or `None` when the source has nothing there.
    fn tile<'a>(&'a self, req: TileRequest<'a>) -> SourceFuture<'a, TileReply>;

    /// What the tiles are (the URL's extension must say the same).
    fn format(&self) -> TileFormat {
        TileFormat::Mvt
    }

    /// Zooms the source has tiles for: outside them a tile is a 404, not an empty 204.
    fn zooms(&self) -> RangeInclusive<u8> {
        0..=crate::tiles::MAX_ZOOM
    }

    /// Where the source has data (west, south, east, north in degrees): a tile it lacks
    /// wholly outside is a 404 rather than an empty 204. `None`: anywhere.
    fn bounds(&self) -> Option<[f64; 4]> {
        None
    }

    /// Whether a tile lies where the source could have one (zoom range and bounds).
    fn covers(&self, coord: TileCoord) -> bool {
        if !self.zooms().contains(&coord.z()) {
            return false;
        }
        let Some([w, s, e, n]) = self.bounds() else {
            return true;
        };
        let t = coord.bounds_lonlat();
        t.min_x <= e && t.max_x >= w && t.min_y <= n && t.max_y >= s
    }
}
