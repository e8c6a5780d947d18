//! HTTP: OGC API - Features over the catalog. Handlers parse and validate at the edge,
//! run store calls on blocking threads, and write responses; [`error::ApiError`] is the
//! only error that becomes a response.

mod aggregate;
mod assets;
mod conditional;
mod dashboards;
pub mod error;
mod export;
mod extract;
mod features;
mod formats;
mod health;
mod html;
pub mod lanes;
pub(crate) mod maps;
mod openapi;
mod pages;
pub mod params;
mod picture;
mod security;
pub mod tiles;

use crate::render::archive::{ArchiveSource, ArchiveSpec};
use crate::render::{Renderer, TileConfig};
use crate::store::Catalog;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::routing::get;
use params::Format;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::cors::CorsLayer;
use tower_http::set_header::SetResponseHeaderLayer;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub catalog: Arc<dyn Catalog>,
    /// Base URL for links, when the server sits behind a proxy that rewrites hosts.
    pub public_url: Option<String>,
    pub tiles: Arc<Renderer>,
    /// Who may embed the map pages in a frame: a CSP `frame-ancestors` source list.
    pub frame_ancestors: String,
    /// Bodies smaller than this go out uncompressed, tiles included.
    pub compress_min_bytes: u16,
    /// The heavy lane: exports and big requests, bounded and timed (see [`lanes`]).
    pub lanes: Arc<lanes::Lanes>,
    /// Tile archives by id, served beside the datasets.
    pub archives: Arc<BTreeMap<String, Arc<ArchiveSource>>>,
    /// Counts by area: areas and point-to-area assignments kept per version.
    pub aggregates: Arc<crate::aggregate::Aggregator>,
    /// `--basemap` as a style the map pages compose the data over (instead of the archive).
    pub basemap_style: Option<crate::config::BasemapStyle>,
}

/// Below this size compression saves too little to pay for itself: such a body fits in
/// one TCP segment either way, and deflating a few hundred bytes costs more CPU than
/// drawing the tile (most z14-16 tiles are this small; bench/RESULTS.md). CloudFront
/// likewise compresses only objects of 1,000 bytes or more ("Serve compressed files",
/// Amazon CloudFront Developer Guide).
pub const DEFAULT_COMPRESS_MIN_BYTES: u16 = 512;

impl AppState {
    pub fn new(catalog: Arc<dyn Catalog>, public_url: Option<String>, tiles: TileConfig) -> Self {
        Self {
            catalog,
            public_url,
            tiles: Arc::new(Renderer::new(tiles)),
            frame_ancestors: "*".into(),
            compress_min_bytes: DEFAULT_COMPRESS_MIN_BYTES,
            lanes: Arc::default(),
            archives: Arc::default(),
            aggregates: Arc::default(),
            basemap_style: None,
        }
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("public_url", &self.public_url)
            .finish()
    }
}

/// The whole application; used by `serve` and by the tests.
/// tower-http's default predicate with our size floor instead of its 32 bytes.
fn compress_predicate(min: u16) -> impl Predicate {
    SizeAbove::new(u64::from(min))
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE)
}

pub fn router(state: AppState) -> Router {
    let min = state.compress_min_bytes;
    let frame_ancestors = state.frame_ancestors.clone();
    let style_origin = state.basemap_style.as_ref().and_then(|b| b.origin());
    let app = Router::new()
        .route("/", get(features::landing))
        .route("/conformance", get(features::conformance))
        .route("/health", get(health::ready))
        .route("/health/ready", get(health::ready))
        .route("/health/live", get(health::live))
        .route("/api", get(openapi::document))
        .route("/api.html", get(openapi::page))
        .route("/collections", get(features::collections))
        .route("/collections/{id}", get(features::collection))
        .route("/collections/{id}/queryables", get(features::queryables))
        .route("/collections/{id}/items", get(features::items))
        .route("/collections/{id}/histogram", get(features::histogram))
        .route("/collections/{id}/aggregate", get(aggregate::aggregate))
        .route(
            "/collections/{id}/aggregate/tiles.json",
            get(aggregate::tilejson),
        )
        .route(
            "/collections/{id}/aggregate/{z}/{x}/{file}",
            get(aggregate::choropleth),
        )
        .route("/collections/{id}/preview.svg", get(maps::preview))
        .route("/collections/{id}/tiles", get(tiles::tilesets))
        .route("/collections/{id}/tiles/{tms}", get(tiles::tileset))
        .route(
            "/collections/{id}/tiles/WebMercatorQuad/{z}/{y}/{x}",
            get(tiles::ogc_tile),
        )
        .route("/tiles", get(tiles::tilesets_list))
        .route("/tiles/{ids}", get(tiles::tilejson_handler))
        .route("/tiles/{ids}/{z}/{x}/{file}", get(tiles::tile))
        .route("/styles", get(maps::list))
        .route("/styles/{file}", get(maps::get_style))
        .route("/maps/{id}", get(maps::map_page))
        .route("/dashboards/{id}", get(dashboards::page))
        .route("/dashboards/{id}/cards/{card}", get(dashboards::card))
        .route("/assets/{*path}", get(assets::asset))
        .route("/fonts/{*path}", get(assets::glyphs))
        .route("/collections/{id}/items/{fid}", get(features::item))
        .merge(error::test_routes())
        .fallback(|| async { error::ApiError::not_found("no such resource") })
        // Responses differ by Accept (JSON or HTML): caches must key on it.
        .layer(SetResponseHeaderLayer::appending(
            header::VARY,
            HeaderValue::from_static("accept"),
        ))
        .layer(CompressionLayer::new().compress_when(compress_predicate(min)))
        .layer(CorsLayer::permissive().expose_headers([header::ETAG, header::LINK]))
        .layer(axum::middleware::from_fn(params::limit_request))
        // A panic anywhere inside becomes a logged 500 problem, not a dropped connection
        // (still given the security headers below).
        .layer(CatchPanicLayer::custom(error::panic_response))
        .with_state(state);
    security::apply(app, &frame_ancestors, style_origin.as_deref())
}

/// Binds `listen` and serves until Ctrl-C.
// One argument per serve setting, each passed straight through from the command line.
#[allow(clippy::too_many_arguments)]
pub async fn serve<C: Catalog + 'static>(
    catalog: C,
    listen: SocketAddr,
    public_url: Option<String>,
    tiles: TileConfig,
    frame_ancestors: String,
    compress_min_bytes: u16,
    lanes: lanes::LaneConfig,
    archives: &[ArchiveSpec],
    basemap_style: Option<crate::config::BasemapStyle>,
) -> std::io::Result<()> {
    let mut state = AppState::new(Arc::new(catalog), public_url, tiles);
    state.basemap_style = basemap_style;
    state.frame_ancestors = frame_ancestors;
    state.compress_min_bytes = compress_min_bytes;
    let write_idle = lanes.write_idle;
    state.lanes = Arc::new(lanes::Lanes::new(lanes));
    state.archives = Arc::new(open_archives(&state, archives).await?);
    warm_up(&state);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!("serving on http://{}", listener.local_addr()?);
    let listener = lanes::TimeoutListener::new(listener, write_idle);
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
}

/// Opens the archives to serve: a bad one is logged (file and fault) and skipped, so the
/// rest still serves; an id that is also a dataset's is a start-up error (which would win?).
async fn open_archives(
    state: &AppState,
    specs: &[ArchiveSpec],
) -> std::io::Result<BTreeMap<String, Arc<ArchiveSource>>> {
    let cfg = &state.tiles.config;
    let (open, failed) = crate::render::archive::open_all(
        specs,
        cfg.gzip_level,
        usize::from(state.compress_min_bytes),
    )
    .await;
    for e in &failed {
        tracing::error!("skipping tile archive {e}");
    }
    let catalog = state.catalog.clone();
    let datasets = tokio::task::spawn_blocking(move || catalog.snapshot()?.datasets())
        .await
        .map_err(std::io::Error::other)?
        .map_err(std::io::Error::other)?;
    for a in open.values() {
        if datasets.iter().any(|d| d.id.as_str() == a.id()) {
            return Err(std::io::Error::other(format!(
                "{}: archive id `{}` is also a dataset id; rename the file or give it another id",
                a.path().display(),
                a.id()
            )));
        }
        tracing::info!(archive = a.id(), path = %a.path().display(), "serving tile archive");
    }
    Ok(open)
}

/// Builds the point indexes in the background, so the first map view does not wait.
fn warm_up(state: &AppState) {
    let (catalog, tiles) = (state.catalog.clone(), state.tiles.clone());
    tokio::task::spawn_blocking(move || {
        let result = catalog.snapshot().and_then(|snap| {
            for ds in snap.datasets()? {
                tiles.point_source(&*snap, &ds)?;
            }
            Ok(())
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not build the point indexes ahead of time");
        }
    });
}

/// Ctrl-C or SIGTERM (what service managers and CI send).
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
    tracing::info!("shutting down");
}

/// The URL prefix clients reach us at: `--public-url`, else the request's forwarded or Host headers.
pub fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(u) = &state.public_url {
        return u.trim_end_matches('/').to_owned();
    }
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(',').next().unwrap_or("").trim().to_owned())
    };
    let proto = h("x-forwarded-proto")
        .filter(|p| p == "http" || p == "https")
        .unwrap_or_else(|| "http".into());
    let host = h("x-forwarded-host")
        .or_else(|| h("host"))
        .filter(|v| valid_host(v))
        .unwrap_or_else(|| "localhost".into());
    let prefix = h("x-forwarded-prefix")
        .filter(|p| p.starts_with('/') && valid_host(&p[1..].replace('/', "")))
        .unwrap_or_default();
    format!("{proto}://{host}{}", prefix.trim_end_matches('/'))
}

/// Host header values are echoed into links: accept only host[:port] characters.
fn valid_host(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 255
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]_".contains(c))
}

/// `?f=` wins; otherwise the Accept header decides, with q-values: HTML only when the
/// client prefers it strictly (browsers), JSON for everyone else (`*/*`, curl, GDAL).
pub fn negotiate(explicit: Option<Format>, headers: &HeaderMap) -> Format {
    if let Some(f) = explicit {
        return f;
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (mut html, mut json, mut calendar) = (0.0_f32, 0.0_f32, 0.0_f32);
    for entry in accept.split(',') {
        let mut parts = entry.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "text/html" | "application/xhtml+xml" | "text/*" => html = html.max(q),
            // Only items answer in iCalendar; other resources take it as JSON.
            "text/calendar" => calendar = calendar.max(q),
            "*/*" => {
                html = html.max(q);
                json = json.max(q);
            }
            m if m.starts_with("application/") => json = json.max(q),
            _ => {}
        }
    }
    if calendar > html && calendar > json {
        Format::Ics
    } else if html > json {
        Format::Html
    } else {
        Format::Json
    }
}

pub fn content_type(v: &'static str) -> (header::HeaderName, HeaderValue) {
    (header::CONTENT_TYPE, HeaderValue::from_static(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(accept: &str) -> Format {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
        negotiate(None, &h)
    }

    #[test]
    fn accept_with_q_values() {
        assert_eq!(
            pick("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
            Format::Html
        );
        assert_eq!(pick("*/*"), Format::Json);
        assert_eq!(pick("text/calendar"), Format::Ics);
        assert_eq!(pick("text/calendar;q=0.5, text/html"), Format::Html);
        assert_eq!(pick("application/json, text/html;q=0.5"), Format::Json);
        assert_eq!(pick("text/html;q=0"), Format::Json);
        assert_eq!(pick("application/geo+json"), Format::Json);
        assert_eq!(
            negotiate(Some(Format::Html), &HeaderMap::new()),
            Format::Html
        );
    }
}
