//! [`CatalogSource`]: catalog datasets rendered on demand, one layer per dataset of a
//! comma-separated id list. Filters are the items filters (one query model); a property
//! filter applies to the layers that have that property.
//! Parameters are parsed by [`crate::query`]; its errors travel as [`SourceError::Query`].

use super::source::{
    Encoding, SourceError, SourceFuture, Tile, TileFormat, TileReply, TileRequest, TileSource,
};
use super::{Renderer, tilejson};
use crate::model::{DatasetId, DatasetInfo};
use crate::query::{self, QueryError, layer_requests, load_datasets};
use crate::store::{Catalog, Snapshot};
use crate::tiles::TileCoord;
use bytes::Bytes;
use std::sync::Arc;
use tilejson::TileJSON;

/// The datasets named by one tile URL, drawn by the shared [`Renderer`].
pub struct CatalogSource {
    pub renderer: Arc<Renderer>,
    pub catalog: Arc<dyn Catalog>,
    /// The comma-separated dataset ids of the URL.
    pub ids: String,
    /// Tiles smaller than this go out uncompressed.
    pub compress_min_bytes: usize,
}

impl std::fmt::Debug for CatalogSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogSource")
            .field("ids", &self.ids)
            .finish_non_exhaustive()
    }
}

/// The layers of a request when they need nothing from the catalog (no `within=`), for
/// the fast path; `None` sends the request to the snapshot path.
fn layers_without_catalog(
    datasets: &[DatasetInfo],
    raw: Option<&str>,
) -> Result<Option<Vec<super::LayerRequest>>, SourceError> {
    match layer_requests(None, datasets, raw) {
        Ok(layers) => Ok(Some(layers)),
        Err(QueryError::NeedsCatalog) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A tile URL's query, read once: the filters as normalised text for cache keys and
/// ETags (parameter order does not matter) and the `v=` that TileJSON writes.
struct TileQuery {
    filter: String,
    versions: Option<String>,
}

/// A malformed query is an error here already, before any cache lookup.
fn tile_query(raw: Option<&str>) -> Result<TileQuery, SourceError> {
    let mut pairs = query::pairs(raw)?;
    let versions = pairs.iter().find(|(k, _)| k == "v").map(|(_, v)| v.clone());
    pairs.retain(|(k, _)| k != "v");
    pairs.sort();
    let filter =
        serde_urlencoded::to_string(pairs).map_err(|e| SourceError::Read(e.to_string()))?;
    Ok(TileQuery { filter, versions })
}

impl TileQuery {
    /// Whether the `v=` (if any) names the versions of `datasets`. The fast path's
    /// metadata may trail a commit made by another process by up to
    /// [`crate::store::sqlite::PROBE_EVERY`] (PostgreSQL: [`crate::store::postgres::POLL_EVERY`]);
    /// a client that already saw the new version
    /// in TileJSON must not get (and cache) the old tiles under the new URL.
    fn versions_match(&self, datasets: &[DatasetInfo]) -> bool {
        let Some(asked) = &self.versions else {
            return true;
        };
        let mut known = datasets.iter().map(|d| d.version.to_string());
        asked.split('.').all(|v| known.next().as_deref() == Some(v)) && known.next().is_none()
    }
}

/// `dataset@version` of the area named by `within=`, so that a re-import of the area
/// dataset changes the cache key and ETag of every tile filtered by it.
fn within_version(snap: &dyn Snapshot, raw: Option<&str>) -> Result<String, SourceError> {
    let pairs = query::pairs(raw)?;
    let Some((_, v)) = pairs.iter().find(|(k, _)| k == "within") else {
        return Ok(String::new());
    };
    let ds = v
        .split_once('/')
        .and_then(|(d, _)| DatasetId::parse(d).ok());
    Ok(match ds.map(|d| snap.dataset(&d)).transpose()?.flatten() {
        Some(d) => format!("{}@{}", d.id, d.version),
        None => "none".into(),
    })
}

/// The cache key of a tile: dataset versions, the `within` area's version, tile, filters, coding.
fn tile_key(
    datasets: &[DatasetInfo],
    area: &str,
    coord: TileCoord,
    filter: &str,
    gzip: bool,
) -> String {
    let versions: Vec<String> = datasets
        .iter()
        .map(|d| format!("{}@{}", d.id, d.version))
        .collect();
    format!(
        "{}|{area}|{coord}|{filter}|{}",
        versions.join(","),
        if gzip { "gz" } else { "raw" }
    )
}

/// Compresses a rendered tile when the client takes gzip (`gzip_from`: the smallest size
/// worth compressing) and caches it; `None` stays `None` (empty tile).
fn finish_tile(
    renderer: &Renderer,
    key: &str,
    raw: Option<Vec<u8>>,
    gzip_from: Option<usize>,
) -> Result<Option<Tile>, SourceError> {
    let Some(raw) = raw else { return Ok(None) };
    let (bytes, encoding) = if gzip_from.is_some_and(|min| raw.len() >= min) {
        let gz = gzip_bytes(&raw, renderer.config.gzip_level)
            .map_err(|e| SourceError::Read(e.to_string()))?;
        (gz, Encoding::Gzip)
    } else {
        (raw, Encoding::Identity)
    };
    let tile = Tile {
        bytes: Bytes::from(bytes),
        format: TileFormat::Mvt,
        encoding,
    };
    renderer.cache.put(key.to_owned(), tile.bytes.clone());
    Ok(Some(tile))
}

/// A cached tile; whether its bytes are compressed is read from the bytes themselves: a
/// tile too small to compress was cached as it is. No MVT starts with gzip's magic (0x1f
/// would be field 3 with the invalid wire type 7).
fn cached(bytes: Bytes) -> Tile {
    let encoding = if bytes.starts_with(&[0x1f, 0x8b]) {
        Encoding::Gzip
    } else {
        Encoding::Identity
    };
    Tile {
        bytes,
        format: TileFormat::Mvt,
        encoding,
    }
}

impl CatalogSource {
    async fn serve(&self, req: TileRequest<'_>) -> Result<TileReply, SourceError> {
        let coord = req.coord;
        let gzip = req.gzip && self.renderer.config.gzip_level > 0;
        let min = self.compress_min_bytes;
        let query = tile_query(req.query)?;
        // Read before any snapshot: metadata remembered at this stamp is at least this new.
        let stamp = self.catalog.data_stamp()?;
        // Fast path, on this async worker: metadata known at the current stamp, and the tile
        // either cached or drawable from the in-memory point index alone.
        if let Some(datasets) = self.renderer.known(stamp, &self.ids)
            && query.versions_match(&datasets)
            && let Some(layers) = layers_without_catalog(&datasets, req.query)?
        {
            let key = tile_key(&datasets, "", coord, &query.filter, gzip);
            if let Some(hit) = self.renderer.cache.get(&key) {
                return Ok(TileReply {
                    key,
                    tile: Some(cached(hit)),
                });
            }
            if let Some(raw) = self.renderer.render_in_memory(&layers, coord) {
                let tile = finish_tile(&self.renderer, &key, raw, gzip.then_some(min))?;
                return Ok(TileReply { key, tile });
            }
        }
        let renderer = self.renderer.clone();
        let catalog = self.catalog.clone();
        let ids = self.ids.clone();
        let q = req.query.map(str::to_owned);
        tokio::task::spawn_blocking(move || -> Result<TileReply, SourceError> {
            let mut stamp = stamp;
            let mut snap = catalog.snapshot()?;
            let mut datasets = load_datasets(&*snap, &ids)?;
            // A URL naming versions this process has not seen yet (TileJSON from another
            // process, or a replica behind): catch up with the primary before drawing, so
            // the newer URL never gets (and a proxy never caches under it) older tiles.
            if !query.versions_match(&datasets) && catalog.catch_up()? {
                drop(snap);
                stamp = catalog.data_stamp()?;
                snap = catalog.snapshot()?;
                datasets = load_datasets(&*snap, &ids)?;
            }
            renderer.remember(stamp, &datasets);
            let area = within_version(&*snap, q.as_deref())?;
            let key = tile_key(&datasets, &area, coord, &query.filter, gzip);
            if let Some(hit) = renderer.cache.get(&key) {
                return Ok(TileReply {
                    key,
                    tile: Some(cached(hit)),
                });
            }
            let layers = layer_requests(Some(&*snap), &datasets, q.as_deref())?;
            let raw = renderer.render(&*snap, &layers, coord)?;
            let tile = finish_tile(&renderer, &key, raw, gzip.then_some(min))?;
            Ok(TileReply { key, tile })
        })
        .await
        .map_err(|e| SourceError::Read(e.to_string()))?
    }

    async fn describe(&self, base: &str, raw: Option<&str>) -> Result<TileJSON, SourceError> {
        let query = tile_query(raw)?.filter;
        let (renderer, catalog) = (self.renderer.clone(), self.catalog.clone());
        let ids = self.ids.clone();
        let q = raw.map(str::to_owned);
        let (datasets, zooms) = tokio::task::spawn_blocking(move || -> Result<_, SourceError> {
            let s = catalog.snapshot()?;
            let datasets = load_datasets(&*s, &ids)?;
            // Validate the filters now, not per tile.
            let layers = layer_requests(Some(&*s), &datasets, q.as_deref())?;
            let mut points = Vec::with_capacity(datasets.len());
            for l in &layers {
                // So that the cluster zoom is known, not null.
                let source = renderer.point_source(&*s, &l.dataset)?;
                points.push(source.map(|p| tilejson::PointLayout::of(&p, l.property_names())));
            }
            Ok((datasets, points))
        })
        .await
        .map_err(|e| SourceError::Read(e.to_string()))??;
        Ok(tilejson::datasets_tilejson(&datasets, &zooms, base, &query))
    }
}

impl TileSource for CatalogSource {
    fn tilejson<'a>(&'a self, base: &'a str, query: Option<&'a str>) -> SourceFuture<'a, TileJSON> {
        Box::pin(self.describe(base, query))
    }

    fn tile<'a>(&'a self, req: TileRequest<'a>) -> SourceFuture<'a, TileReply> {
        Box::pin(self.serve(req))
    }
}

/// gzip (RFC 1952) of `raw`, with one deflate state per thread reused from tile to tile:
/// a fresh encoder allocates and clears ~200 KB of zlib tables, which dominated the cost
/// of compressing a typical few-hundred-byte tile (measured with perf).
pub(crate) fn gzip_bytes(raw: &[u8], level: u32) -> std::io::Result<Vec<u8>> {
    use flate2::{Compress, Compression, FlushCompress, Status};
    thread_local! {
        static DEFLATE: std::cell::RefCell<Option<(u32, Compress)>> = const { std::cell::RefCell::new(None) };
    }
    DEFLATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let compress = match &mut *slot {
            Some((l, c)) if *l == level => {
                c.reset();
                c
            }
            other => {
                &mut other
                    .insert((level, Compress::new(Compression::new(level), false)))
                    .1
            }
        };
        // Header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
        let mut out = Vec::with_capacity(raw.len() / 2 + 64);
        out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let consumed = compress.total_in() as usize;
            match compress.compress_vec(&raw[consumed..], &mut out, FlushCompress::Finish) {
                Ok(Status::StreamEnd) => break,
                Ok(_) => continue,
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
        let mut crc = flate2::Crc::new();
        crc.update(raw);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::gzip_bytes;
    use std::io::Read;

    #[test]
    fn gzip_output_decodes_and_state_reuse_is_clean() {
        let mut seed = 7u64;
        let noise: Vec<u8> = (0..100_000)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed % 7) as u8
            })
            .collect();
        let inputs: [&[u8]; 4] = [b"", b"tile", &noise[..300], &noise];
        for level in [1, 3, 9] {
            for _ in 0..2 {
                for input in inputs {
                    let gz = gzip_bytes(input, level).unwrap();
                    let mut out = Vec::new();
                    flate2::read::GzDecoder::new(&gz[..])
                        .read_to_end(&mut out)
                        .unwrap();
                    assert_eq!(out, input, "level {level}, {} bytes", input.len());
                }
            }
        }
    }
}
