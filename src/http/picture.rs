//! `GET /maps/{id}.png?bbox=&datetime=&<filters>&width=&height=`: a picture of a map view
//! (link previews, articles, the catalog), drawn by [`crate::picture`] from the tiles the
//! tile endpoints serve, under the dataset's own style, over the basemap.
//!
//! Bounds: sides of 16 to 2048 px (a 2048² canvas is 16 MiB), at most
//! [`picture::MAX_TILES`] tiles per source (what such a side can meet), drawing cut
//! after [`DRAW_LIMIT`] (a 503), and at most [`MAX_DRAWING`] pictures drawn at once on
//! the blocking pool, so pictures cannot take the threads tiles and pages need.

use super::conditional::Validator;
use super::error::ApiError;
use super::features::{dataset, with_snapshot};
use super::{AppState, content_type, maps, tiles};
use crate::picture::{self, Legend, PictureError, SourceTiles, View};
use crate::query::{pairs, parse_bbox};
use crate::render::source::{TileRequest, TileSource};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Default size: the 1.91:1 of link preview cards (Open Graph, X/Twitter large image).
pub const DEFAULT_WIDTH: u32 = 1200;
pub const DEFAULT_HEIGHT: u32 = 630;
/// Drawing stops after this; a picture of 25 tiles of clusters draws in well under it.
pub const DRAW_LIMIT: Duration = Duration::from_secs(10);
/// Pictures drawn at once (each holds a blocking thread and a core while it draws).
pub const MAX_DRAWING: usize = 2;
/// How long a picture waits for a drawing slot before the client is told to retry.
const QUEUE_WAIT: Duration = Duration::from_secs(5);
/// Changes when the drawing changes, so that old ETags stop matching.
const RENDERER_VERSION: &str = "picture-1";

static DRAWING: Semaphore = Semaphore::const_new(MAX_DRAWING);

impl From<PictureError> for ApiError {
    fn from(e: PictureError) -> Self {
        match e {
            PictureError::BadParam { param, message } => ApiError::bad_param(&param, message),
            PictureError::TooSlow => busy(format!(
                "the picture took longer than {} s to draw; ask for a smaller area or size",
                DRAW_LIMIT.as_secs()
            )),
            other => ApiError::internal(other),
        }
    }
}

fn busy(detail: String) -> ApiError {
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        title: "Service unavailable",
        detail,
        parameter: None,
    }
}

/// A picture request's query, read once.
struct PictureQuery {
    bbox: Option<[f64; 4]>,
    width: u32,
    height: u32,
    /// The tile filters (everything but the picture's own parameters), sorted: the query
    /// the tiles are asked with and part of the cache key and ETag.
    filters: String,
    /// Category values asked for, to show only those in the legend.
    pairs: Vec<(String, String)>,
}

fn side(pairs: &[(String, String)], name: &str, default: u32) -> Result<u32, ApiError> {
    match pairs.iter().find(|(k, _)| k == name) {
        None => Ok(default),
        Some((_, v)) => v.trim().parse::<u32>().map_err(|_| {
            ApiError::bad_param(name, format!("`{v}` is not a whole number of pixels"))
        }),
    }
}

fn read_query(raw: Option<&str>) -> Result<PictureQuery, ApiError> {
    let all = pairs(raw)?;
    let width = side(&all, "width", DEFAULT_WIDTH)?;
    let height = side(&all, "height", DEFAULT_HEIGHT)?;
    let bbox = match all.iter().find(|(k, _)| k == "bbox") {
        None => None,
        Some((_, v)) => {
            let boxes = parse_bbox(v)?;
            // A box across the antimeridian arrives as two; the picture shows their span.
            let w = boxes.iter().map(|b| b.min_x).fold(f64::INFINITY, f64::min);
            let e = boxes
                .iter()
                .map(|b| b.max_x)
                .fold(f64::NEG_INFINITY, f64::max);
            let s = boxes.iter().map(|b| b.min_y).fold(f64::INFINITY, f64::min);
            let n = boxes
                .iter()
                .map(|b| b.max_y)
                .fold(f64::NEG_INFINITY, f64::max);
            if !(w.is_finite() && s.is_finite() && e.is_finite() && n.is_finite()) {
                return Err(ApiError::bad_param("bbox", "give west,south,east,north"));
            }
            Some([w, s, e, n])
        }
    };
    let mut rest: Vec<(String, String)> = all
        .into_iter()
        .filter(|(k, _)| !matches!(k.as_str(), "bbox" | "width" | "height" | "v"))
        .collect();
    rest.sort();
    let filters = serde_urlencoded::to_string(&rest).map_err(ApiError::internal)?;
    Ok(PictureQuery {
        bbox,
        width,
        height,
        filters,
        pairs: rest,
    })
}

/// The dataset's extent with a margin (so edge points are not cut), or the world.
fn default_bbox(b: Option<crate::model::Bounds>) -> [f64; 4] {
    let Some(b) = b else {
        return [-180.0, -80.0, 180.0, 80.0];
    };
    let (mx, my) = ((b.max_x - b.min_x) * 0.05, (b.max_y - b.min_y) * 0.05);
    [b.min_x - mx, b.min_y - my, b.max_x + mx, b.max_y + my]
}

/// Fetches the tiles of `view` from `source` at the zoom it draws (none below its zooms).
async fn fetch(
    name: &str,
    source: &dyn TileSource,
    view: &View,
    query: Option<&str>,
) -> Result<SourceTiles, ApiError> {
    let zooms = source.zooms();
    let z = view.tile_zoom(*zooms.end());
    let mut out = SourceTiles {
        name: name.to_owned(),
        tiles: Vec::new(),
    };
    if !zooms.contains(&z) {
        return Ok(out);
    }
    for coord in view.tiles(z).into_iter().take(picture::MAX_TILES) {
        if !source.covers(coord) {
            continue;
        }
        let req = TileRequest {
            coord,
            query,
            gzip: false,
        };
        if let Some(tile) = source.tile(req).await?.tile {
            out.tiles.push((coord, tile.bytes));
        }
    }
    Ok(out)
}

/// `GET /maps/{id}.png` (routed by [`maps::map_page`]).
pub async fn picture(
    state: &AppState,
    id: String,
    headers: &HeaderMap,
    raw: Option<&str>,
) -> Result<Response, ApiError> {
    let q = read_query(raw)?;
    let st = state.clone();
    let (ds, cats, style) = with_snapshot(state, move |s| {
        let ds = dataset(s, &id)?;
        let cats = maps::categories(s, &st.tiles.cache, &ds)?;
        let style = maps::style("", &ds, &cats)?;
        Ok((ds, cats, style))
    })
    .await?;
    let view = View::fit(
        q.bbox.unwrap_or_else(|| default_bbox(ds.bounds)),
        q.width,
        q.height,
    )?;
    let basemap = state.archives.get(picture::basemap::SOURCE);
    // The map page's own basemap layers (styles/basemap.json), so the picture matches it.
    let mut style = style;
    if let Some(b) = basemap {
        maps::with_basemap(&mut style, "", b.attribution().unwrap_or(""))?;
    }
    let key = format!(
        "png|{RENDERER_VERSION}|{}@{}|{}|{:?}|{}x{}|{}",
        ds.id,
        ds.version,
        basemap.map_or("", |b| b.version()),
        view.shown_bbox(),
        q.width,
        q.height,
        q.filters
    );
    let etag = Validator::strong(&[key.as_bytes()]);
    if etag.matches(headers) {
        return Ok(respond(state, &etag, None));
    }
    if let Some(hit) = state.tiles.cache.get(&key) {
        return Ok(respond(state, &etag, Some(hit)));
    }
    let filters = Some(q.filters.as_str()).filter(|f| !f.is_empty());
    let data = tiles::source_for(state, ds.id.as_str());
    let mut sources = vec![fetch("data", &*data, &view, filters).await?];
    let mut attribution = vec![ds.meta.attribution.clone()];
    if let Some(b) = basemap {
        sources.push(fetch(picture::basemap::SOURCE, &**b, &view, None).await?);
        attribution.extend(b.attribution().map(str::to_owned));
    }
    let legend = legend(&cats, &q.pairs);
    let style = picture::with_basemap(&style, basemap.is_some());
    let attribution = attribution
        .into_iter()
        .filter(|a| !a.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" · ");
    let _slot = tokio::time::timeout(QUEUE_WAIT, DRAWING.acquire())
        .await
        .map_err(|_| busy("the server is busy drawing other pictures; try again shortly".into()))?
        .map_err(ApiError::internal)?;
    let png = tokio::task::spawn_blocking(move || {
        picture::render(&picture::Scene {
            view,
            style: &style,
            sources,
            legend,
            attribution,
            deadline: Some(Instant::now() + DRAW_LIMIT),
        })
    })
    .await
    .map_err(ApiError::internal)??;
    let png = bytes::Bytes::from(png);
    state.tiles.cache.put(key, png.clone());
    Ok(respond(state, &etag, Some(png)))
}

/// The legend's lines: the style's categories, only those asked for when the category
/// is filtered.
fn legend(cats: &Option<maps::Legend>, asked: &[(String, String)]) -> Legend {
    let Some((field, values)) = cats else {
        return Legend::default();
    };
    let wanted: Vec<&str> = asked
        .iter()
        .filter(|(k, _)| k == field)
        .flat_map(|(_, v)| v.split(','))
        .collect();
    Legend {
        title: field.clone(),
        entries: values
            .iter()
            .filter(|(v, _, _)| wanted.is_empty() || wanted.contains(&v.as_str()))
            .map(|(v, c, _)| (v.clone(), (*c).to_owned()))
            .collect(),
    }
}

/// 200 with the PNG, or 304 (`png` = `None`); strong ETag and the tiles' Cache-Control.
fn respond(state: &AppState, etag: &Validator, png: Option<bytes::Bytes>) -> Response {
    let cache_control = HeaderValue::from_str(&state.tiles.config.cache_control)
        .unwrap_or(HeaderValue::from_static("no-cache"));
    let mut resp = match png {
        None => StatusCode::NOT_MODIFIED.into_response(),
        Some(png) => ([content_type("image/png")], png).into_response(),
    };
    let h = resp.headers_mut();
    h.insert(header::ETAG, etag.header_value());
    h.insert(header::CACHE_CONTROL, cache_control);
    resp
}
