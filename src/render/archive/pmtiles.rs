//! PMTiles v3 through the `pmtiles` crate: a memory-mapped file (range reads by the OS,
//! never a whole-file load) and a directory cache, so a tile costs one lookup in memory.

use super::{Described, usable_bounds};
use crate::render::source::{Encoding, TileFormat};
use crate::tiles::TileCoord;
use ::pmtiles::{AsyncPmTilesReader, Compression, HashMapCache, MmapBackend, TileType};
use bytes::Bytes;
use std::io::Read;
use std::path::Path;
use tilejson::{TileJSON, VectorLayer};

pub(super) struct PmtilesReader {
    inner: AsyncPmTilesReader<MmapBackend, HashMapCache>,
}

impl std::fmt::Debug for PmtilesReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PmtilesReader").finish_non_exhaustive()
    }
}

/// Section ends from the fixed v3 header (offset, length pairs at bytes 8..72), checked
/// against the file size: a truncated archive fails here, at start, not tile by tile.
fn check_length(path: &Path) -> Result<(), String> {
    let mut head = [0u8; 127];
    let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    f.read_exact(&mut head)
        .map_err(|_| format!("truncated: {len} bytes, shorter than a PMTiles header"))?;
    if &head[..7] != b"PMTiles" {
        return Err("not a PMTiles archive (wrong magic number)".into());
    }
    if head[7] != 3 {
        return Err(format!(
            "PMTiles version {} (only version 3 is read)",
            head[7]
        ));
    }
    let word = |i: usize| u64::from_le_bytes(head[i..i + 8].try_into().unwrap_or([0; 8]));
    for (name, at) in [
        ("root directory", 8),
        ("metadata", 24),
        ("leaf directories", 40),
        ("tile data", 56),
    ] {
        let end = word(at).saturating_add(word(at + 8));
        if end > len {
            return Err(format!(
                "truncated: the {name} ends at byte {end} but the file has {len} bytes"
            ));
        }
    }
    Ok(())
}

impl PmtilesReader {
    pub(super) async fn open(path: &Path) -> Result<(Self, Described), String> {
        check_length(path)?;
        let inner = AsyncPmTilesReader::new_with_cached_path(HashMapCache::default(), path)
            .await
            .map_err(|e| format!("not a readable PMTiles archive: {e}"))?;
        let h = inner.get_header();
        let format = match h.tile_type {
            TileType::Mvt => TileFormat::Mvt,
            TileType::Png => TileFormat::Png,
            TileType::Jpeg => TileFormat::Jpeg,
            TileType::Webp => TileFormat::Webp,
            TileType::Avif => TileFormat::Avif,
            other => {
                return Err(format!(
                    "tile type {other:?} is not served (MVT, PNG, JPEG, WebP, AVIF)"
                ));
            }
        };
        let stored = match h.tile_compression {
            Compression::None => Encoding::Identity,
            Compression::Gzip => Encoding::Gzip,
            other => {
                return Err(format!(
                    "tile compression {other:?} is not served (gzip or none)"
                ));
            }
        };
        let mut tilejson = h.get_tilejson(vec![]);
        // Metadata is optional in the spec; when present it must be JSON.
        match inner.get_metadata().await {
            Ok(text) => merge_metadata(&mut tilejson, &text)?,
            Err(::pmtiles::PmtError::InvalidMetadata) => {}
            Err(e) => return Err(format!("metadata: {e}")),
        }
        let b = h.get_bounds();
        let described = Described {
            format,
            stored: Some(stored),
            zooms: h.min_zoom..=h.max_zoom,
            bounds: usable_bounds([b.left, b.bottom, b.right, b.top]),
            tilejson,
        };
        Ok((Self { inner }, described))
    }

    pub(super) async fn tile(&self, coord: TileCoord) -> Result<Option<Bytes>, String> {
        let c = ::pmtiles::TileCoord::new(coord.z(), coord.x(), coord.y())
            .map_err(|e| e.to_string())?;
        self.inner.get_tile(c).await.map_err(|e| e.to_string())
    }
}

/// The TileJSON fields of an archive's metadata JSON (tippecanoe and planetiler write
/// name, description, attribution, version and `vector_layers` there).
pub(super) fn merge_metadata(tj: &mut TileJSON, text: &str) -> Result<(), String> {
    let meta: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| format!("metadata is not a JSON object: {e}"))?;
    let text_field = |k: &str| meta.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    tj.name = text_field("name").or(tj.name.take());
    tj.description = text_field("description").or(tj.description.take());
    tj.attribution = text_field("attribution").or(tj.attribution.take());
    tj.version = text_field("version").or(tj.version.take());
    if let Some(layers) = meta.get("vector_layers") {
        let layers: Vec<VectorLayer> = serde_json::from_value(layers.clone())
            .map_err(|e| format!("metadata `vector_layers`: {e}"))?;
        tj.vector_layers = Some(layers);
    }
    Ok(())
}
