//! schemathesis (property-based API testing from the OpenAPI document) against a live server with a tenant's API key:
//! no 5xx, no status code, content type or body that the committed `openapi/openapi.json` does not describe.

use std::path::PathBuf;

use crate::kit::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_api_matches_its_openapi_document() {
    let schemathesis = std::env::var_os("CLAVIS_SCHEMATHESIS")
        .map(PathBuf::from)
        .expect("CLAVIS_SCHEMATHESIS is not set: run the suite through scripts/test, which installs schemathesis");
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Schemathesis").await;
    // Give the generated requests something to find: a content with keys and a token-signing key exist already.
    app.create_keys(&tenant, serde_json::json!({ "content_id": "movie-1" })).await;

    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let output = tokio::process::Command::new(schemathesis)
        .args(["run", spec, "--url", &app.base])
        .args(["--header", &format!("Authorization: Bearer {}", tenant.api_key)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--phases", "examples,coverage,fuzzing", "--max-time", "40", "--workers", "2", "--seed", "1"])
        .env("SCHEMATHESIS_HOOKS", concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis/hooks.py"))
        .env("NO_COLOR", "1")
        .output()
        .await
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("passed"), "schemathesis ran no test cases:\n{stdout}");
}
