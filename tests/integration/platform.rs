//! Health, readiness, metrics, the API documentation, unknown routes and service subsets.

use clavis::ServiceSet;
use serde_json::json;

use crate::kit::{TestApp, assert_problem};

#[tokio::test]
async fn health_readiness_and_request_ids() {
    let app = TestApp::spawn().await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let id = health.headers().get("x-request-id").expect("request id header").to_str().unwrap().to_owned();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<serde_json::Value>().await.unwrap()["status"], "ready");
}

#[tokio::test]
async fn metrics_count_requests_and_licenses() {
    let app = TestApp::spawn().await;
    app.http.get(app.url("/healthz")).send().await.unwrap();
    app.http.post(app.url("/license/clearkey")).body("{}").send().await.unwrap();
    let body = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("clavis_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}"), "{body}");
    assert!(body.contains("clavis_licenses_total{drm=\"clearkey\",outcome=\"denied\",code=\"4001\"}"), "{body}");
    assert!(body.contains("clavis_license_duration_seconds_bucket"), "{body}");
    assert!(body.contains("clavis_db_pool_connections{state=\"idle\"}"), "{body}");
    assert!(body.contains("clavis_db_pool_connections{state=\"busy\"}"), "{body}");

    // An issued license: its count and latency per DRM and outcome; the key and token API calls that led to it,
    // per route (their rates).
    let tenant = app.create_tenant("Metrics").await;
    let keys = app.create_keys(&tenant, json!({"content_id": "metered", "tracks": ["SD"]})).await;
    let kid = keys["keys"][0]["kid"].as_str().unwrap().to_owned();
    let token = app.token_for(&tenant, "viewer", "metered").await;
    assert_eq!(app.clearkey(&token, &[&kid]).await.status(), 200);
    let body = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for series in [
        "clavis_licenses_total{drm=\"clearkey\",outcome=\"issued\",code=\"0\"}",
        "clavis_license_duration_seconds_bucket{drm=\"clearkey\",outcome=\"issued\",le=",
        "clavis_license_duration_seconds_bucket{drm=\"clearkey\",outcome=\"denied\",le=",
        "clavis_http_requests_total{method=\"POST\",route=\"/api/v1/keys\",status=\"201\"}",
        "clavis_http_requests_total{method=\"POST\",route=\"/api/v1/tokens\",status=\"201\"}",
    ] {
        assert!(body.contains(series), "{series} in {body}");
    }
}

#[tokio::test]
async fn unknown_routes_answer_from_the_catalog() {
    let app = TestApp::spawn().await;
    let body = assert_problem(app.http.get(app.url("/no/such/thing")).send().await.unwrap(), 404, 1002).await;
    assert_eq!(body["type"], "/errors/1002");
    assert!(body["remedy"].as_str().unwrap().len() > 10);
    assert_problem(app.http.post(app.url("/license/nope")).send().await.unwrap(), 404, 1002).await;
}

#[tokio::test]
async fn openapi_document_and_offline_page_are_served() {
    let app = TestApp::spawn().await;
    let served: serde_json::Value =
        app.http.get(app.url("/api-docs/openapi.json")).send().await.unwrap().json().await.unwrap();
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        served, committed,
        "openapi/openapi.json is stale: regenerate it with `cargo run -- openapi > openapi/openapi.json`"
    );
    for path in [
        "/api/v1/keys",
        "/api/v1/keys/{content_id}",
        "/api/v1/tokens",
        "/license/clearkey",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(served["paths"][path].is_object(), "{path} missing from the OpenAPI document");
    }
    assert_eq!(served["components"]["securitySchemes"]["api_key"]["scheme"], "bearer");

    // The interactive page and its assets come from this server (vendored), not from a CDN.
    let page = app.http.get(app.url("/api-docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(!html.contains("https://"), "the API page must work offline: {html}");
    let initializer =
        app.http.get(app.url("/api-docs/swagger-initializer.js")).send().await.unwrap().text().await.unwrap();
    assert!(initializer.contains("/api-docs/openapi.json"), "{initializer}");
    let bundle = app.http.get(app.url("/api-docs/swagger-ui-bundle.js")).send().await.unwrap();
    assert_eq!(bundle.status(), 200);
}

#[tokio::test]
async fn error_pages_come_from_the_catalog() {
    let app = TestApp::spawn().await;
    let page = app.http.get(app.url("/errors")).send().await.unwrap().text().await.unwrap();
    for entry in clavis_core::ErrorCode::ALL {
        assert!(page.contains(&format!("<code>{}</code>", entry.code())), "{} missing", entry.code());
    }
    let one = app.http.get(app.url("/errors/4005")).send().await.unwrap();
    assert_eq!(one.status(), 200);
    assert!(one.text().await.unwrap().contains("License token expired"));
    assert_problem(app.http.get(app.url("/errors/9999")).send().await.unwrap(), 404, 1002).await;
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/errors.md")).unwrap();
    assert_eq!(
        committed,
        clavis_web::errors_markdown(),
        "docs/errors.md is stale: regenerate it with `cargo run -- errors > docs/errors.md`"
    );
}

#[tokio::test]
async fn a_subset_of_services_mounts_only_their_routes() {
    let only_licenses = ServiceSet { licenses: true, ..ServiceSet::NONE };
    let app = TestApp::spawn_with(only_licenses, |_| {}).await;
    let tenant = app.create_tenant("Subset").await;
    assert_problem(app.post("/api/v1/keys", &tenant.api_key, &json!({"content_id": "m"})).await, 404, 1002).await;
    assert_problem(app.http.get(app.url("/")).send().await.unwrap(), 404, 1002).await;
    // The license endpoint is there (and refuses a request without a token).
    assert_problem(app.http.post(app.url("/license/clearkey")).body("{}").send().await.unwrap(), 401, 4001).await;
    assert_eq!(app.http.get(app.url("/healthz")).send().await.unwrap().status(), 200);
}
