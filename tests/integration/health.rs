//! `/health`, `/health/ready` and `/health/live` through the real router: backend-neutral
//! checks of a healthy catalog, and the answers for a degraded or unavailable backend
//! from a catalog whose health report is replaced (every other call reaches the real one).

use crate::support::*;
use serde_json::Value as Json;
use std::sync::Arc;
use tessera::http::{AppState, router};
use tessera::model::DatasetId;
use tessera::render::TileConfig;
use tessera::store::{
    BackendHealth, Catalog, DatasetWriter, EndpointHealth, Snapshot, StoreError, WriteMode,
};

async fn get(s: &Server, path: &str) -> (u16, String, Json) {
    let r = s.get(path).await;
    let status = r.status().as_u16();
    let cache = r
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(content_type(&r), "application/json", "{path}");
    let body = r.text().await.unwrap();
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (status, cache, json)
}

#[tokio::test]
async fn a_healthy_catalog_is_ready_with_every_endpoint_up() {
    let s = Server::with_fixture("uk", "uk-crime-sample.csv").await;
    for path in ["/health", "/health/ready"] {
        let (status, cache, h) = get(&s, path).await;
        assert_eq!(status, 200, "{path}: {h}");
        assert_eq!(cache, "no-store", "{path}");
        assert_eq!(h["status"], "ok", "{path}: {h}");
        assert_eq!(h["ready"], true, "{path}: {h}");
        let backend = h["backend"].as_str().unwrap_or("");
        assert!(["sqlite", "postgresql"].contains(&backend), "{path}: {h}");
        let endpoints = h["endpoints"].as_array().expect("endpoints");
        assert!(!endpoints.is_empty(), "{path}: {h}");
        for e in endpoints {
            assert_eq!(e["up"], true, "{path}: {e}");
            assert!(e["error"].is_null(), "{path}: {e}");
            assert!(e["reads"].is_u64(), "{path}: {e}");
            assert!(
                ["file", "primary", "replica"].contains(&e["role"].as_str().unwrap_or("")),
                "{path}: {e}"
            );
            // The location is shown, but never a password.
            assert!(!e["location"].as_str().unwrap_or("").is_empty(), "{e}");
            assert!(!e["location"].to_string().contains(":tessera@"), "{e}");
        }
    }
    let (status, cache, live) = get(&s, "/health/live").await;
    assert_eq!((status, cache.as_str()), (200, "no-store"));
    assert_eq!(live, serde_json::json!({"status": "live"}));

    let r = s.client.head(s.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn health_takes_no_parameters_and_is_in_the_api_document() {
    let s = Server::start().await;
    for path in [
        "/health?verbose=1",
        "/health/ready?f=json",
        "/health/live?x",
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status(), 400, "{path}");
        let p: Json = r.json().await.unwrap();
        assert!(p["parameter"].is_string(), "{path}: {p}");
    }
    let api = s.json("/api").await;
    for path in ["/health", "/health/ready"] {
        let get = &api["paths"][path]["get"];
        for code in ["200", "503"] {
            assert_eq!(
                get["responses"][code]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/Health",
                "{path} {code}"
            );
        }
    }
    assert!(api["paths"]["/health/live"]["get"]["responses"]["200"].is_object());
    // The schema's required members are what a healthy answer has.
    let required = api["components"]["schemas"]["Health"]["required"]
        .as_array()
        .unwrap()
        .clone();
    let h = s.json("/health").await;
    for key in required {
        assert!(!h[key.as_str().unwrap()].is_null(), "{key} missing in {h}");
    }
}

/// A real catalog that reports a fixed health, as a PostgreSQL catalog would with a
/// replica or every database down.
struct Reporting {
    inner: Arc<dyn Catalog>,
    health: BackendHealth,
}

impl Catalog for Reporting {
    fn snapshot(&self) -> Result<Box<dyn Snapshot + '_>, StoreError> {
        self.inner.snapshot()
    }
    fn writer(
        &self,
        id: &DatasetId,
        mode: WriteMode,
    ) -> Result<Box<dyn DatasetWriter + '_>, StoreError> {
        self.inner.writer(id, mode)
    }
    fn delete(&self, id: &DatasetId) -> Result<bool, StoreError> {
        self.inner.delete(id)
    }
    fn data_stamp(&self) -> Result<i64, StoreError> {
        self.inner.data_stamp()
    }
    fn catch_up(&self) -> Result<bool, StoreError> {
        self.inner.catch_up()
    }
    fn health(&self) -> BackendHealth {
        self.health.clone()
    }
}

fn endpoint(role: &'static str, up: bool) -> EndpointHealth {
    EndpointHealth {
        role,
        location: format!("postgresql://tessera@{role}.internal/opendata"),
        up,
        error: (!up).then(|| "connection refused".to_owned()),
        reads: 7,
    }
}

/// Serves the real router over `health`; returns the server task's guard and base URL.
async fn serve_reporting(health: BackendHealth) -> (tokio::task::JoinHandle<()>, String) {
    let data = TestCatalog::new();
    let catalog = Arc::new(Reporting {
        inner: data.catalog.clone(),
        health,
    });
    let state = AppState::new(catalog, None, TileConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _keep = data;
        axum::serve(listener, router(state)).await.unwrap();
    });
    (task, base)
}

#[tokio::test]
async fn a_replica_down_is_degraded_but_ready_and_nothing_up_is_503() {
    let cases = [
        (
            true,
            vec![endpoint("primary", true), endpoint("replica", false)],
            200,
            "degraded",
        ),
        (
            false,
            vec![endpoint("primary", false), endpoint("replica", false)],
            503,
            "unavailable",
        ),
    ];
    for (ready, endpoints, code, status) in cases {
        let (task, base) = serve_reporting(BackendHealth {
            backend: "postgresql",
            ready,
            endpoints,
        })
        .await;
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        for path in ["/health", "/health/ready"] {
            let r = client.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(r.status().as_u16(), code, "{path}");
            assert_eq!(r.headers()["cache-control"], "no-store");
            let h: Json = r.json().await.unwrap();
            assert_eq!(h["status"], status, "{path}: {h}");
            assert_eq!(h["ready"], ready, "{path}: {h}");
            assert_eq!(h["endpoints"][1]["role"], "replica", "{h}");
            assert_eq!(h["endpoints"][1]["error"], "connection refused", "{h}");
            assert_eq!(h["endpoints"][1]["reads"], 7, "{h}");
        }
        // Liveness does not depend on the catalog.
        let r = client
            .get(format!("{base}/health/live"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        task.abort();
    }
}

/// The PostgreSQL catalog's own report: a replica that does not answer makes the backend
/// degraded but ready, named with its error; the primary keeps serving the reads.
#[tokio::test(flavor = "multi_thread")]
async fn postgresql_with_a_replica_down_is_degraded() {
    let Some(pg) = crate::copy::PgDatabase::create("health") else {
        eprintln!("SKIPPED postgresql_with_a_replica_down_is_degraded: TESSERA_TEST_PG is not set");
        return;
    };
    // Nothing listens on port 1: connections are refused at once.
    let replica = "postgresql://tessera:hidden@127.0.0.1:1/nowhere".to_owned();
    let catalog = tessera::store::open(&tessera::store::DbLocation::parse(&pg.url()), &[replica])
        .expect("a replica that is down does not stop the start");
    let state = AppState::new(Arc::from(catalog), None, TileConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, router(state)).await.unwrap();
    });
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    // Reads still answer (from the primary).
    let r = client
        .get(format!("{base}/collections"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h: Json = r.json().await.unwrap();
    assert_eq!(h["backend"], "postgresql", "{h}");
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["ready"], true, "{h}");
    let endpoints = h["endpoints"].as_array().unwrap();
    let primary = endpoints
        .iter()
        .find(|e| e["role"] == "primary")
        .expect("primary");
    assert_eq!(primary["up"], true, "{h}");
    assert!(primary["reads"].as_u64().unwrap() >= 1, "{h}");
    let down = endpoints
        .iter()
        .find(|e| e["role"] == "replica")
        .expect("replica");
    assert_eq!(down["up"], false, "{h}");
    assert!(down["error"].as_str().is_some_and(|e| !e.is_empty()), "{h}");
    assert!(
        !h.to_string().contains("hidden"),
        "a password is shown: {h}"
    );
    task.abort();
}
