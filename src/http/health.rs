//! `/health`, `/health/live` and `/health/ready`: what a load balancer or an orchestrator
//! asks before sending traffic to this process.
//!
//! Liveness says only that the process answers HTTP; readiness says whether the catalog
//! can answer reads now. A PostgreSQL catalog with a read replica down is still ready
//! (reads fall back to the others or the primary) but `degraded`, so a dashboard can tell.

use super::error::ApiError;
use super::{AppState, content_type};
use crate::store::BackendHealth;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// `ok`, `degraded` (ready, but some endpoint is down) or `unavailable` (not ready).
pub fn status(h: &BackendHealth) -> &'static str {
    if !h.ready {
        "unavailable"
    } else if h.endpoints.iter().any(|e| !e.up) {
        "degraded"
    } else {
        "ok"
    }
}

/// The body of `/health` and `/health/ready`.
pub fn body(h: &BackendHealth) -> serde_json::Value {
    json!({
        "status": status(h),
        "backend": h.backend,
        "ready": h.ready,
        "endpoints": h.endpoints,
    })
}

/// A health answer: JSON that no cache may keep (a stale "ready" is worse than none).
fn answer(code: StatusCode, body: &serde_json::Value) -> Response {
    let mut r = (code, [content_type("application/json")], body.to_string()).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// These resources take no parameters; a typo in a probe's URL should show, not pass.
fn no_params(q: Option<&str>) -> Result<(), ApiError> {
    match crate::query::pairs(q)?.first() {
        Some((k, _)) => Err(ApiError::bad_param(
            k,
            format!("unknown parameter `{k}`: health resources take none"),
        )),
        None => Ok(()),
    }
}

/// `/health` and `/health/ready`: 200 while reads can be answered, else 503.
pub async fn ready(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    no_params(q.as_deref())?;
    let catalog = state.catalog.clone();
    // The backend may probe its databases (network round trips): not on a worker thread.
    let health = tokio::task::spawn_blocking(move || catalog.health()).await?;
    let code = if health.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(answer(code, &body(&health)))
}

/// `/health/live`: 200 whenever the process answers at all; it never touches the catalog,
/// so a database outage does not get healthy processes restarted.
pub async fn live(RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    no_params(q.as_deref())?;
    Ok(answer(StatusCode::OK, &json!({"status": "live"})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EndpointHealth;

    fn endpoint(role: &'static str, up: bool) -> EndpointHealth {
        EndpointHealth {
            role,
            location: format!("postgresql://db/{role}"),
            up,
            error: (!up).then(|| "connection refused".to_owned()),
            reads: 3,
        }
    }

    fn health(ready: bool, endpoints: Vec<EndpointHealth>) -> BackendHealth {
        BackendHealth {
            backend: "postgresql",
            ready,
            endpoints,
        }
    }

    #[test]
    fn a_replica_down_is_degraded_and_nothing_up_is_unavailable() {
        let all_up = health(
            true,
            vec![endpoint("primary", true), endpoint("replica", true)],
        );
        assert_eq!(status(&all_up), "ok");
        let one_down = health(
            true,
            vec![endpoint("primary", true), endpoint("replica", false)],
        );
        assert_eq!(status(&one_down), "degraded");
        let none = health(false, vec![endpoint("primary", false)]);
        assert_eq!(status(&none), "unavailable");
    }

    #[test]
    fn the_body_lists_every_endpoint_with_its_reads_and_error() {
        let b = body(&health(
            true,
            vec![endpoint("primary", true), endpoint("replica", false)],
        ));
        assert_eq!(b["status"], "degraded");
        assert_eq!(b["backend"], "postgresql");
        assert_eq!(b["ready"], true);
        assert_eq!(b["endpoints"][1]["role"], "replica");
        assert_eq!(b["endpoints"][1]["up"], false);
        assert_eq!(b["endpoints"][1]["error"], "connection refused");
        assert_eq!(b["endpoints"][0]["error"], serde_json::Value::Null);
        assert_eq!(b["endpoints"][0]["reads"], 3);
    }
}
