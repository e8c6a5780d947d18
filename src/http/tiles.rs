//! Vector tiles: `/tiles/{ids}/{z}/{x}/{y}.mvt`, TileJSON 3.0 at `/tiles/{ids}`, and OGC
//! API - Tiles under `/collections/{id}/tiles`. Filters are the items filters (one query
//! model); a property filter applies to the layers that have that property.

use super::conditional::Validator;
use super::error::ApiError;
use super::features::with_snapshot;
use super::{AppState, base_url, content_type};
use crate::query::{load_datasets, parse_coord};
use crate::render::catalog::CatalogSource;
use crate::render::source::{SourceError, TileFormat, TileReply, TileRequest, TileSource};
use crate::tiles::TileCoord;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

const MVT: &str = "application/vnd.mapbox-vector-tile";

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

impl From<SourceError> for ApiError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::BadParam { param, message } => ApiError::bad_param(&param, message),
            SourceError::NotFound(m) => ApiError::not_found(m),
            SourceError::Store(e) => e.into(),
            SourceError::Query(e) => e.into(),
            SourceError::Read(m) => ApiError::internal(m),
        }
    }
}

/// The tileset a URL names: an archive served under that id, else catalog datasets.
pub fn source_for(state: &AppState, ids: &str) -> Arc<dyn TileSource> {
    if let Some(archive) = state.archives.get(ids) {
        return archive.clone();
    }
    Arc::new(CatalogSource {
        renderer: state.tiles.clone(),
        catalog: state.catalog.clone(),
        ids: ids.to_owned(),
        compress_min_bytes: usize::from(state.compress_min_bytes),
    })
}

/// The file extensions a tile of `format` may be asked with.
fn extensions(format: TileFormat) -> &'static [&'static str] {
    match format {
        TileFormat::Mvt => &["mvt", "pbf"],
        TileFormat::Png => &["png"],
        TileFormat::Jpeg => &["jpg", "jpeg"],
        TileFormat::Webp => &["webp"],
        TileFormat::Avif => &["avif"],
    }
}

/// `GET /tiles/{ids}/{z}/{x}/{y}.mvt` (or `.pbf`; archives of pictures: `.png`, ...).
pub async fn tile(
    State(state): State<AppState>,
    Path((ids, z, x, file)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let source = source_for(&state, &ids);
    let allowed = extensions(source.format());
    let y = file
        .rsplit_once('.')
        .filter(|(_, ext)| allowed.contains(ext))
        .map(|(y, _)| y)
        .ok_or_else(|| {
            let ends: Vec<String> = allowed.iter().map(|e| format!(".{e}")).collect();
            ApiError::not_found(format!("tiles end in {}", ends.join(" or ")))
        })?;
    serve_tile(
        &state,
        &*source,
        parse_coord(&z, &x, y)?,
        &headers,
        q.as_deref(),
    )
    .await
}

/// `GET /collections/{id}/tiles/WebMercatorQuad/{z}/{y}/{x}` (OGC order: row before column).
pub async fn ogc_tile(
    State(state): State<AppState>,
    Path((id, z, y, x)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let source = source_for(&state, &id);
    serve_tile(
        &state,
        &*source,
        parse_coord(&z, &x, &y)?,
        &headers,
        q.as_deref(),
    )
    .await
}

async fn serve_tile(
    state: &AppState,
    source: &dyn TileSource,
    coord: TileCoord,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let outside = || {
        let z = source.zooms();
        ApiError::not_found(format!(
            "no tile {coord}: this tileset has zooms {}-{} within its bounds",
            z.start(),
            z.end()
        ))
    };
    if !source.zooms().contains(&coord.z()) {
        return Err(outside());
    }
    let req = TileRequest {
        coord,
        query,
        gzip: accepts_gzip(headers),
    };
    let reply = source.tile(req).await?;
    // A stored tile is served even a little outside the stated bounds (tile buffers);
    // only a missing one is told apart: empty inside, not found outside.
    if reply.tile.is_none() && !source.covers(coord) {
        return Err(outside());
    }
    Ok(tile_response(state, headers, reply))
}

/// The response for a tile: 200 with the bytes, 204 when empty, 304 when the client's
/// ETag matches; strong ETag from the reply's key, Cache-Control, Vary.
fn tile_response(state: &AppState, headers: &HeaderMap, reply: TileReply) -> Response {
    // Strong: the key names the bytes exactly, content coding included.
    let etag = Validator::strong(&[reply.key.as_bytes()]);
    let cache_control = HeaderValue::from_str(&state.tiles.config.cache_control)
        .unwrap_or(HeaderValue::from_static("no-cache"));
    let matches = etag.matches(headers);
    let mut resp = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match reply.tile {
            None => StatusCode::NO_CONTENT.into_response(),
            Some(tile) => {
                let mut r = Response::new(Body::from(tile.bytes));
                let h = r.headers_mut();
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(tile.format.content_type()),
                );
                // Already coded: the compression layer leaves such a body alone.
                if let Some(coding) = tile.encoding.header() {
                    h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
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
    let ids = ids.strip_suffix(".json").unwrap_or(&ids);
    let base = base_url(&state, &headers);
    let source = source_for(&state, ids);
    let body = source.tilejson(&base, q.as_deref()).await?;
    let body = serde_json::to_string(&body).map_err(ApiError::internal)?;
    Ok(([content_type("application/json")], body).into_response())
}

/// `GET /tiles`: every tileset, datasets and archives, with its TileJSON URL.
pub async fn tilesets_list(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let base = base_url(&state, &headers);
    let datasets = with_snapshot(&state, |s| Ok(s.datasets()?)).await?;
    let mut sets: Vec<serde_json::Value> = datasets
        .iter()
        .map(|d| {
            json!({"id": d.id, "title": d.meta.title, "kind": "dataset", "format": "pbf",
                   "tilejson": format!("{base}/tiles/{}", d.id)})
        })
        .collect();
    for a in state.archives.values() {
        sets.push(json!({"id": a.id(), "title": a.title(), "kind": "archive",
                         "format": a.format().name(), "tilejson": format!("{base}/tiles/{}", a.id())}));
    }
    let body = json!({"tilesets": sets});
    Ok(([content_type("application/json")], body.to_string()).into_response())
}

/// `GET /collections/{id}/tiles`: the tilesets of a collection (one, WebMercatorQuad).
pub async fn tilesets(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let base = base_url(&state, &headers);
    let ds = with_snapshot(&state, move |s| {
        load_datasets(s, &id)
            .map(|mut v| v.remove(0))
            .map_err(ApiError::from)
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
        load_datasets(s, &id)
            .map(|mut v| v.remove(0))
            .map_err(ApiError::from)
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
