//! Vector tiles: `/tiles/{ids}/{z}/{x}/{y}.mvt`, TileJSON 3.0 at `/tiles/{ids}`, and OGC
//! API - Tiles under `/collections/{id}/tiles`. Filters are the items filters (one query
//! model); a property filter applies to the layers that have that property.

use super::conditional::Validator;
use super::error::ApiError;
use super::features::with_snapshot;
use super::params::{self, ParamSet};
use super::{AppState, base_url, content_type};
use crate::model::{DatasetId, DatasetInfo};
use crate::render::{LayerRequest, Renderer, tilejson};
use crate::store::Snapshot;
use crate::tiles::TileCoord;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

/// A tile's cache key and its bytes (`None`: empty tile).
type Rendered = (String, Option<Arc<Vec<u8>>>);

const MVT: &str = "application/vnd.mapbox-vector-tile";
/// Parameters that apply to every layer; the rest must name a property of some layer.
const SHARED: [&str; 2] = ["datetime", "within"];

/// Loads the comma-separated datasets of a tile URL; unknown ones are a 404.
pub fn load_datasets(snap: &dyn Snapshot, ids: &str) -> Result<Vec<DatasetInfo>, ApiError> {
    let mut out: Vec<DatasetInfo> = Vec::new();
    for id in params::layer_ids(ids)? {
        let parsed =
            DatasetId::parse(id).map_err(|_| ApiError::not_found(format!("no dataset `{id}`")))?;
        if out.iter().any(|d| d.id == parsed) {
            continue;
        }
        out.push(
            snap.dataset(&parsed)?
                .ok_or_else(|| ApiError::not_found(format!("no dataset `{id}`")))?,
        );
    }
    Ok(out)
}

/// Splits the tile query into per-layer filters: `datetime` goes to layers that have time,
/// a property filter to layers that have the property; a parameter no layer takes is a 400.
/// Without a snapshot, `within=` cannot be resolved: the answer is then `None`.
pub fn layer_requests(
    snap: Option<&dyn Snapshot>,
    datasets: &[DatasetInfo],
    raw: Option<&str>,
) -> Result<Option<Vec<LayerRequest>>, ApiError> {
    let pairs = params::pairs(raw)?;
    for (k, _) in &pairs {
        if k != "v"
            && !SHARED.contains(&k.as_str())
            && !datasets.iter().any(|d| d.field_index(k).is_some())
        {
            return Err(ApiError::bad_param(k, format!("unknown parameter `{k}`")));
        }
    }
    let mut layers = Vec::with_capacity(datasets.len());
    for ds in datasets {
        let own: Vec<(String, String)> = pairs
            .iter()
            .filter(|(k, _)| match k.as_str() {
                "datetime" => ds.time_extent.is_some(),
                "within" => true,
                "v" => false,
                k => ds.field_index(k).is_some(),
            })
            .cloned()
            .collect();
        let raw = serde_urlencoded::to_string(&own).map_err(ApiError::internal)?;
        let mut req = params::parse_items(ds, Some(&raw), ParamSet::Tiles)?;
        match snap {
            Some(snap) => {
                params::resolve_within(snap, &mut req)?;
            }
            None if req.within_ref.is_some() => return Ok(None),
            None => {}
        }
        req.query.limit = None;
        layers.push(LayerRequest {
            dataset: ds.clone(),
            query: req.query,
        });
    }
    Ok(Some(layers))
}

pub fn parse_coord(z: &str, x: &str, y: &str) -> Result<TileCoord, ApiError> {
    let num = |name: &str, v: &str| {
        v.parse::<u32>()
            .map_err(|_| ApiError::bad_param(name, format!("`{v}` is not a tile {name}")))
    };
    let (z, x, y) = (num("z", z)?, num("x", x)?, num("y", y)?);
    let z = u8::try_from(z).map_err(|_| ApiError::not_found(format!("no zoom level {z}")))?;
    TileCoord::new(z, x, y).map_err(|e| ApiError::not_found(e.to_string()))
}

/// A tile URL's query, read once: the filters as normalised text for cache keys and
/// ETags (parameter order does not matter) and the `v=` that TileJSON writes.
struct TileQuery {
    filter: String,
    versions: Option<String>,
}

/// A malformed query is an error here already, before any cache lookup.
fn tile_query(raw: Option<&str>) -> Result<TileQuery, ApiError> {
    let mut pairs = params::pairs(raw)?;
    let versions = pairs.iter().find(|(k, _)| k == "v").map(|(_, v)| v.clone());
    pairs.retain(|(k, _)| k != "v");
    pairs.sort();
    let filter = serde_urlencoded::to_string(pairs).map_err(ApiError::internal)?;
    Ok(TileQuery { filter, versions })
}

impl TileQuery {
    /// Whether the `v=` (if any) names the versions of `datasets`. The fast path's
    /// metadata may trail a commit made by another process by up to
    /// [`crate::store::sqlite::PROBE_EVERY`]; a client that already saw the new version
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
fn within_version(snap: &dyn Snapshot, raw: Option<&str>) -> Result<String, ApiError> {
    let pairs = params::pairs(raw)?;
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

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|e| {
                e.split(';')
                    .next()
                    .is_some_and(|t| t.trim() == "gzip" || t.trim() == "*")
            })
        })
}

/// `GET /tiles/{ids}/{z}/{x}/{y}.mvt` (or `.pbf`).
pub async fn tile(
    State(state): State<AppState>,
    Path((ids, z, x, file)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let y = file
        .strip_suffix(".mvt")
        .or_else(|| file.strip_suffix(".pbf"))
        .ok_or_else(|| ApiError::not_found("tiles end in .mvt or .pbf"))?;
    serve_tile(state, ids, parse_coord(&z, &x, y)?, headers, q).await
}

/// `GET /collections/{id}/tiles/WebMercatorQuad/{z}/{y}/{x}` (OGC order: row before column).
pub async fn ogc_tile(
    State(state): State<AppState>,
    Path((id, z, y, x)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    serve_tile(state, id, parse_coord(&z, &x, &y)?, headers, q).await
}

async fn serve_tile(
    state: AppState,
    ids: String,
    coord: TileCoord,
    headers: HeaderMap,
    q: Option<String>,
) -> Result<Response, ApiError> {
    let gzip = accepts_gzip(&headers) && state.tiles.config.gzip_level > 0;
    let min = usize::from(state.compress_min_bytes);
    let query = tile_query(q.as_deref())?;
    // Read before any snapshot: metadata remembered at this stamp is at least this new.
    let stamp = state.catalog.data_stamp()?;
    // Fast path, on this async worker: metadata known at the current stamp, and the tile
    // either cached or drawable from the in-memory point index alone.
    if let Some(datasets) = state.tiles.known(stamp, &ids)
        && query.versions_match(&datasets)
        && let Some(layers) = layer_requests(None, &datasets, q.as_deref())?
    {
        let key = tile_key(&datasets, "", coord, &query.filter, gzip);
        if let Some(hit) = state.tiles.cache.get(&key) {
            return Ok(tile_response(&state, &headers, &key, Some(hit), gzip));
        }
        if let Some(raw) = state.tiles.render_in_memory(&layers, coord) {
            let body = finish_tile(&state.tiles, &key, raw, gzip.then_some(min))?;
            return Ok(tile_response(&state, &headers, &key, body, gzip));
        }
    }
    let renderer = state.tiles.clone();
    let catalog = state.catalog.clone();
    let (key, body) = tokio::task::spawn_blocking(move || -> Result<Rendered, ApiError> {
        let snap = catalog.snapshot()?;
        let datasets = load_datasets(&*snap, &ids)?;
        renderer.remember(stamp, &datasets);
        let area = within_version(&*snap, q.as_deref())?;
        let key = tile_key(&datasets, &area, coord, &query.filter, gzip);
        if let Some(hit) = renderer.cache.get(&key) {
            return Ok((key, Some(hit)));
        }
        let layers = layer_requests(Some(&*snap), &datasets, q.as_deref())?.unwrap_or_default();
        let raw = renderer.render(&*snap, &layers, coord)?;
        let body = finish_tile(&renderer, &key, raw, gzip.then_some(min))?;
        Ok((key, body))
    })
    .await??;
    Ok(tile_response(&state, &headers, &key, body, gzip))
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
/// worth compressing) and caches it; `None` stays `None` (empty tile). Whether cached
/// bytes are compressed is read from the bytes themselves ([`is_gzip`]).
fn finish_tile(
    renderer: &Renderer,
    key: &str,
    raw: Option<Vec<u8>>,
    gzip_from: Option<usize>,
) -> Result<Option<Arc<Vec<u8>>>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let bytes = if gzip_from.is_some_and(|min| raw.len() >= min) {
        gzip_bytes(&raw, renderer.config.gzip_level)?
    } else {
        raw
    };
    let bytes = Arc::new(bytes);
    renderer.cache.put(key.to_owned(), bytes.clone());
    Ok(Some(bytes))
}

/// Whether tile bytes are gzip: a tile that was too small to compress is sent as it is.
/// No MVT starts with gzip's magic (0x1f would be field 3 with the invalid wire type 7).
fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// gzip (RFC 1952) of `raw`, with one deflate state per thread reused from tile to tile:
/// a fresh encoder allocates and clears ~200 KB of zlib tables, which dominated the cost
/// of compressing a typical few-hundred-byte tile (measured with perf).
fn gzip_bytes(raw: &[u8], level: u32) -> Result<Vec<u8>, ApiError> {
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
                Err(e) => return Err(ApiError::internal(e)),
            }
        }
        let mut crc = flate2::Crc::new();
        crc.update(raw);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        Ok(out)
    })
}

/// The response for a tile: 200 with the bytes, 204 when empty, 304 when the client's
/// ETag matches; strong ETag from the cache key, Cache-Control, Vary.
fn tile_response(
    state: &AppState,
    headers: &HeaderMap,
    key: &str,
    body: Option<Arc<Vec<u8>>>,
    gzip: bool,
) -> Response {
    // Strong: the key names the bytes exactly, content coding included.
    let etag = Validator::strong(&[key.as_bytes()]);
    let cache_control = HeaderValue::from_str(&state.tiles.config.cache_control)
        .unwrap_or(HeaderValue::from_static("no-cache"));
    let matches = etag.matches(headers);
    let mut resp = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match body {
            None => StatusCode::NO_CONTENT.into_response(),
            Some(bytes) => {
                let mut r = Response::new(Body::from(bytes.as_ref().clone()));
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(MVT));
                if gzip && is_gzip(&bytes) {
                    r.headers_mut()
                        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                }
                r
            }
        }
    };
    let h = resp.headers_mut();
    h.insert(header::ETAG, etag.header_value());
    h.insert(header::CACHE_CONTROL, cache_control);
    h.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    resp
}

/// `GET /tiles/{ids}` (or `/tiles/{ids}.json`): TileJSON 3.0; filters given here are carried
/// into the tile URLs.
pub async fn tilejson_handler(
    State(state): State<AppState>,
    Path(ids): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let ids = ids.strip_suffix(".json").unwrap_or(&ids).to_owned();
    let base = base_url(&state, &headers);
    let query = tile_query(q.as_deref())?.filter;
    let tiles = state.tiles.clone();
    let datasets = with_snapshot(&state, {
        let q = q.clone();
        move |s| {
            let datasets = load_datasets(s, &ids)?;
            layer_requests(Some(s), &datasets, q.as_deref())?; // validate the filters now, not per tile
            for d in &datasets {
                tiles.point_source(s, d)?; // so that the cluster zoom is known, not null
            }
            Ok(datasets)
        }
    })
    .await?;
    let zooms: Vec<Option<u8>> = datasets
        .iter()
        .map(|d| state.tiles.cluster_zoom(d))
        .collect();
    let body = tilejson::datasets_tilejson(&datasets, &zooms, &base, &query);
    let body = serde_json::to_string(&body).map_err(ApiError::internal)?;
    Ok(([content_type("application/json")], body).into_response())
}

/// `GET /collections/{id}/tiles`: the tilesets of a collection (one, WebMercatorQuad).
pub async fn tilesets(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let base = base_url(&state, &headers);
    let ds = with_snapshot(&state, move |s| {
        load_datasets(s, &id).map(|mut v| v.remove(0))
    })
    .await?;
    let c = format!("{base}/collections/{}/tiles", ds.id);
    let body = json!({
        "links": [{"rel": "self", "href": c, "type": "application/json"}],
        "tilesets": [{
            "title": ds.meta.title,
            "dataType": "vector",
            "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
            "tileMatrixSetURI": "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad",
            "links": [{"rel": "self", "href": format!("{c}/WebMercatorQuad"), "type": "application/json"}],
        }],
    });
    Ok(([content_type("application/json")], body.to_string()).into_response())
}

/// `GET /collections/{id}/tiles/WebMercatorQuad`: tileset metadata with the templated tile link.
pub async fn tileset(
    State(state): State<AppState>,
    Path((id, tms)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if tms != "WebMercatorQuad" {
        return Err(ApiError::not_found(format!(
            "no tile matrix set `{tms}`: only WebMercatorQuad"
        )));
    }
    let base = base_url(&state, &headers);
    let ds = with_snapshot(&state, move |s| {
        load_datasets(s, &id).map(|mut v| v.remove(0))
    })
    .await?;
    let c = format!("{base}/collections/{}/tiles/WebMercatorQuad", ds.id);
    let body = json!({
        "title": ds.meta.title,
        "dataType": "vector",
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        "tileMatrixSetURI": "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad",
        "layers": [{"id": ds.id, "dataType": "vector", "geometryType": ds.geometry_type}],
        "links": [
            {"rel": "self", "href": c, "type": "application/json"},
            {"rel": "item", "href": format!("{c}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"), "type": MVT, "templated": true},
            {"rel": "describedby", "href": format!("{base}/tiles/{}", ds.id), "type": "application/json", "title": "TileJSON"},
        ],
    });
    Ok(([content_type("application/json")], body.to_string()).into_response())
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
