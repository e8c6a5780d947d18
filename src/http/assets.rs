//! The front end compiled into the binary: scripts, style sheets, the favicon, vendored
//! MapLibre, glyph PBFs and the MapLibre style templates. Nothing is read from disk at
//! run time, so a copied `tessera` binary serves every page wherever it runs.
//!
//! Lookups are by exact name in the embedded table, never by file-system path, so no
//! request name (traversal, NUL, a 10 KB name) can reach the file system or fail with
//! an I/O error: what is not in the table is a 404.

use super::conditional::Validator;
use super::error::ApiError;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use rust_embed::{EmbeddedFile, RustEmbed};

/// `assets/`: served under `/assets`; its `fonts/` also under `/fonts`. `debug-embed`
/// is on, so debug builds embed too and behave like the release binary.
#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// `styles/`: one MapLibre style template per dataset kind.
#[derive(RustEmbed)]
#[folder = "styles/"]
struct Styles;

/// The style template of a dataset kind (`events` reads `styles/events.json`).
pub fn style_template(kind: &str) -> Option<std::borrow::Cow<'static, [u8]>> {
    Styles::get(&format!("{kind}.json")).map(|f| f.data)
}

/// Glyphs and vendored scripts change only with a new binary, whose file hashes (and
/// so ETags) change with them: an hour fresh, then a cheap 304 revalidation.
const CACHE_CONTROL: &str = "public, max-age=3600";

/// `GET /assets/{*path}`.
pub async fn asset(path: Result<Path<String>, PathRejection>, headers: HeaderMap) -> Response {
    serve("", path, &headers)
}

/// `GET /fonts/{*path}`: the glyph PBFs MapLibre asks for as `{fontstack}/{range}.pbf`.
pub async fn glyphs(path: Result<Path<String>, PathRejection>, headers: HeaderMap) -> Response {
    serve("fonts/", path, &headers)
}

fn serve(dir: &str, path: Result<Path<String>, PathRejection>, headers: &HeaderMap) -> Response {
    // A path that does not even decode (invalid UTF-8 after %-decoding) names nothing here.
    let Some(name) = path
        .ok()
        .and_then(|Path(p)| clean(&p).map(|n| format!("{dir}{n}")))
    else {
        return not_found();
    };
    let Some(file) = Assets::get(&name) else {
        return not_found();
    };
    respond(&name, &file, headers)
}

fn not_found() -> Response {
    ApiError::not_found("no such file").into_response()
}

/// The name as the embedded table spells it, or `None` for anything a file name in
/// `assets/` cannot be: empty or dot segments, backslashes, NUL, absolute paths.
/// (The table lookup alone would already refuse them; refusing early keeps the rule
/// explicit and independent of how the table is built.)
fn clean(p: &str) -> Option<&str> {
    let ok = !p.is_empty()
        && !p.starts_with('/')
        && !p.contains(['\\', '\0', ':'])
        && p.split('/').all(|s| !s.is_empty() && s != "." && s != "..");
    ok.then_some(p)
}

fn respond(name: &str, file: &EmbeddedFile, headers: &HeaderMap) -> Response {
    // The file's SHA-256, computed when the binary was built, names its content. Weak:
    // the compression layer sends the same tag on its gzip and br bodies, and a strong tag
    // must name one sequence of bytes (RFC 9110 8.8.1).
    let tag = Validator::weak(&[&file.metadata.sha256_hash()]);
    let cache = (
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    if tag.matches(headers) {
        let mut r = tag.not_modified();
        r.headers_mut().insert(cache.0, cache.1);
        return r;
    }
    let ty = HeaderValue::from_str(content_type(name, file.metadata.mimetype()))
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    // Embedded bytes are 'static: served without a copy per request.
    let body = match &file.data {
        std::borrow::Cow::Borrowed(b) => axum::body::Body::from(axum::body::Bytes::from_static(b)),
        std::borrow::Cow::Owned(v) => axum::body::Body::from(v.clone()),
    };
    (
        [(header::ETAG, tag.header_value()), cache],
        [(header::CONTENT_TYPE, ty)],
        body,
    )
        .into_response()
}

/// Content types for the kinds of file the front end uses, where the guess is too vague
/// and those `mime_guess` does not know (glyph PBFs).
fn content_type<'a>(name: &str, guessed: &'a str) -> &'a str {
    match name.rsplit_once('.').map(|(_, e)| e) {
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("pbf") => "application/x-protobuf",
        Some("json") => "application/json",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        _ => guessed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_resource_is_embedded() {
        for name in [
            "map.js",
            "map.css",
            "popup.js",
            "catalog.js",
            "catalog.css",
            "favicon.svg",
            "vendor/maplibre-gl/maplibre-gl.mjs",
            "vendor/maplibre-gl/maplibre-gl.css",
            "fonts/Noto Sans Regular/0-255.pbf",
            "fonts/Noto Sans Bold/0-255.pbf",
        ] {
            assert!(Assets::get(name).is_some(), "{name} is not embedded");
        }
        for kind in ["events", "incidents", "inspections", "boundaries", "lines"] {
            assert!(
                style_template(kind).is_some(),
                "style {kind} is not embedded"
            );
        }
    }

    #[test]
    fn names_outside_the_table_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../Cargo.toml",
            "a/../b",
            "a//b",
            "a\\b",
            "x\0",
            "./map.js",
            "C:x",
        ] {
            assert_eq!(clean(bad), None, "{bad:?}");
        }
        assert_eq!(
            clean("fonts/Noto Sans Bold/0-255.pbf"),
            Some("fonts/Noto Sans Bold/0-255.pbf")
        );
    }
}
