//! The HTTP side of request parameters: the size limits checked before any parsing.
//! Parsing and validation live in [`crate::query`] (re-exported here for the handlers).

use super::error::ApiError;
// What the other handlers (OpenAPI, map pages, lanes) read from here.
pub use crate::query::{
    Format, ITEMS_PARAMS, MAX_CATEGORY_VALUES, format_only, pairs, parse_format,
};

/// Longest request target (path and query) and most header bytes a request may carry.
pub const MAX_URI_BYTES: usize = 8 * 1024;
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Middleware: a request whose target or headers exceed [`MAX_URI_BYTES`] or
/// [`MAX_HEADER_BYTES`] is answered with a 414 or 431 problem before any parsing, so
/// no handler parses (or echoes into links) megabytes of text.
pub async fn limit_request(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        let part = if req.uri().path().len() > MAX_URI_BYTES / 2 {
            "path"
        } else {
            "query"
        };
        return ApiError::too_large(
            axum::http::StatusCode::URI_TOO_LONG,
            part,
            format!("the request target is {target} bytes; at most {MAX_URI_BYTES}"),
        )
        .into_response();
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return ApiError::too_large(
            axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers",
            format!("the request headers are {header_bytes} bytes; at most {MAX_HEADER_BYTES}"),
        )
        .into_response();
    }
    next.run(req).await
}
