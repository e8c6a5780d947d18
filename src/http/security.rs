//! Security headers on every response (pages, JSON, tiles, assets, errors), and a
//! Content-Security-Policy on HTML and SVG (an SVG opened on its own is a document too).
//!
//! The pages run only scripts from this origin (`assets/*.js`, vendored MapLibre), read
//! their configuration from JSON data blocks (not executed, so no inline script), and
//! take styles from style sheets. MapLibre starts its worker from a module file and may
//! use `blob:` URLs for workers and images.

use axum::Router;
use axum::http::{HeaderValue, Response, header};
use tower_http::set_header::SetResponseHeaderLayer;

/// The policy of every HTML page; `frame_ancestors` is `--frame-ancestors` (who may embed
/// the pages; `?embed=1` maps are meant for other sites); `style_origin` the origin of a
/// `--basemap` style URL, whose style, tiles, sprites and glyphs the browser fetches.
pub fn csp(frame_ancestors: &str, style_origin: Option<&str>) -> String {
    let remote = style_origin.map(|o| format!(" {o}")).unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:{remote}; \
         font-src 'self'; connect-src 'self'{remote}; worker-src 'self' blob:; child-src 'self' blob:; \
         base-uri 'none'; form-action 'self'; frame-ancestors {frame_ancestors}"
    )
}

/// Adds the headers to every route and the fallback of `router`.
pub fn apply<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    frame_ancestors: &str,
    style_origin: Option<&str>,
) -> Router<S> {
    let policy = HeaderValue::from_str(&csp(frame_ancestors, style_origin)).unwrap_or_else(|_| {
        // A value that cannot be a header (a newline in the flag) must not open the
        // pages to framing: fall back to the strictest choice and say so.
        tracing::error!("invalid --frame-ancestors value; pages will refuse to be framed");
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'")
    });
    router
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            move |res: &Response<_>| is_html(res).then(|| policy.clone()),
        ))
}

fn is_html<B>(res: &Response<B>) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|t| t.trim_start().to_ascii_lowercase())
        .is_some_and(|t| t.starts_with("text/html") || t.starts_with("image/svg+xml"))
}
