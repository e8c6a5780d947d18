//! The one error type that becomes an HTTP response: an RFC 9457 problem document.

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

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoDataset(id) => ApiError::not_found(format!("no collection `{id}`")),
            other => ApiError::internal(other),
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
        (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body.to_string(),
        )
            .into_response()
    }
}
