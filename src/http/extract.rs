//! The one extractor of the collection resources: what every `/collections/{id}/...`
//! handler reads from its request, so handlers start from it instead of repeating path,
//! base URL, query and header plumbing.
//!
//! It holds no snapshot: rusqlite snapshots are not `Send` and must not live across an
//! `.await`, so the dataset is read on the blocking thread that does the rest of the work
//! ([`CollectionRequest::dataset`], or [`dataset`] inside a `with_snapshot` closure).

use super::error::ApiError;
use super::features::with_snapshot;
use super::{AppState, base_url, negotiate};
use crate::model::{DatasetId, DatasetInfo};
use crate::query::{self, Format};
use crate::store::Snapshot;
use axum::extract::{FromRequestParts, Path};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

/// A request to one collection (`{id}`) or one of its features (`{fid}`).
#[derive(Debug, Clone)]
pub struct CollectionRequest {
    /// The collection id as given in the path (checked when the dataset is loaded).
    pub id: String,
    /// The feature id of `/items/{fid}`.
    pub fid: Option<String>,
    /// The URL prefix of links: `--public-url`, else the request's host.
    pub base: String,
    /// The raw query string, parsed by [`crate::query`] where the resource needs it.
    pub query: Option<String>,
    /// Accept (format negotiation) and If-None-Match (conditional requests).
    pub headers: HeaderMap,
}

impl FromRequestParts<AppState> for CollectionRequest {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        // A path that is not UTF-8 gets axum's own rejection, as with `Path<String>`.
        let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        Ok(Self {
            id: param("id").unwrap_or_default(),
            fid: param("fid"),
            base: base_url(state, &parts.headers),
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers.clone(),
        })
    }
}

impl CollectionRequest {
    /// The format of a resource whose only parameter is `f` (json or html): `f` if
    /// given, else the Accept header.
    pub fn format(&self) -> Result<Format, ApiError> {
        Ok(negotiate(
            query::format_only(self.query.as_deref())?,
            &self.headers,
        ))
    }

    /// The collection's dataset, read in a snapshot of its own on a blocking thread.
    pub async fn dataset(&self, state: &AppState) -> Result<DatasetInfo, ApiError> {
        let id = self.id.clone();
        with_snapshot(state, move |s| dataset(s, &id)).await
    }
}

/// Loads a dataset by the id in the path; 404 for unknown or malformed ids.
pub(crate) fn dataset(snap: &dyn Snapshot, id: &str) -> Result<DatasetInfo, ApiError> {
    let id =
        DatasetId::parse(id).map_err(|_| ApiError::not_found(format!("no collection `{id}`")))?;
    snap.dataset(&id)?
        .ok_or_else(|| ApiError::not_found(format!("no collection `{id}`")))
}
