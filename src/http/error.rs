//! The one error type that becomes an HTTP response: an RFC 9457 problem document.

use crate::query::QueryError;
use crate::store::StoreError;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub title: &'static str,
    pub detail: String,
    /// The query parameter at fault, for 400s.
    pub parameter: Option<String>,
}

impl ApiError {
    pub fn bad_param(name: &str, detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            title: "Invalid parameter",
            detail: detail.into(),
            parameter: Some(name.to_owned()),
        }
    }
    /// 414 or 431: a request too big to be read, naming what was too big.
    pub fn too_large(status: StatusCode, what: &str, detail: impl Into<String>) -> Self {
        Self {
            status,
            title: "Request too large",
            detail: detail.into(),
            parameter: Some(what.to_owned()),
        }
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            title: "Not found",
            detail: detail.into(),
            parameter: None,
        }
    }
    pub fn not_acceptable(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_ACCEPTABLE,
            title: "Not acceptable",
            detail: detail.into(),
            parameter: None,
        }
    }
    /// 503: the database does not answer now; the client may retry (`Retry-After`).
    pub fn unavailable(detail: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %detail, "request refused: the database does not answer");
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            title: "Service unavailable",
            detail: "the database does not answer; try again shortly".into(),
            parameter: None,
        }
    }
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        // Details of server faults go to the log, not to the client.
        tracing::error!(error = %detail, "request failed");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            title: "Internal error",
            detail: "the server could not complete the request; see its log".into(),
            parameter: None,
        }
    }
}

/// The response for a handler that panicked (tower-http's `CatchPanicLayer` calls this):
/// the panic message goes to the log, the client gets the same 500 problem document as
/// any other server fault, and the connection stays open.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    ApiError::internal(format_args!("handler panicked: {message}")).into_response()
}

/// Routes compiled into unit tests only: a handler that panics, to prove that the real
/// router's layers turn a panic into [`panic_response`]. Empty in every other build.
pub(crate) fn test_routes<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    #[cfg(test)]
    {
        async fn panics() -> &'static str {
            panic!("a handler bug")
        }
        axum::Router::new().route("/__test/panic", axum::routing::get(panics))
    }
    #[cfg(not(test))]
    axum::Router::new()
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoDataset(id) => ApiError::not_found(format!("no collection `{id}`")),
            StoreError::Unavailable(_) => ApiError::unavailable(e),
            other => ApiError::internal(other),
        }
    }
}

/// The one place where a query's error becomes a response: a 400 naming the parameter,
/// or a 404 for a dataset or tile that does not exist.
impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Store(e) => e.into(),
            QueryError::NoDataset(_) | QueryError::NoTile(_) => ApiError::not_found(e.to_string()),
            // A caller's bug (a tile drawn without the catalog at hand), not the client's.
            QueryError::NeedsCatalog => ApiError::internal(e),
            _ => {
                let param = e.parameter().unwrap_or("query").to_owned();
                ApiError::bad_param(&param, e.to_string())
            }
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({
            "type": "about:blank",
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Some(p) = self.parameter {
            body["parameter"] = p.into();
        }
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body.to_string(),
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use crate::http::{AppState, router};
    use crate::render::TileConfig;
    use crate::store::sqlite::SqliteCatalog;
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use std::sync::Arc;
    use tower::ServiceExt;

    /// A panic inside a handler is answered (500, problem JSON, no panic text leaked), and
    /// the same router keeps serving afterwards.
    #[tokio::test]
    async fn handler_panic_becomes_problem_500_regression() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = SqliteCatalog::open(&dir.path().join("c.db")).unwrap();
        let app = router(AppState::new(
            Arc::new(catalog),
            None,
            TileConfig::default(),
        ));
        let get = |p: &str| Request::get(p).body(Body::empty()).unwrap();
        let r = app.clone().oneshot(get("/__test/panic")).await.unwrap();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(doc["status"], 500, "{doc}");
        assert_eq!(doc["title"], "Internal error", "{doc}");
        assert!(!doc.to_string().contains("a handler bug"), "{doc}");
        let r = app.oneshot(get("/conformance")).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
}
