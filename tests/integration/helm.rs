//! The Helm chart, checked offline: lint and values references (helm/tests/check_chart.py through helm-sdkpy, the Helm
//! Go library; `scripts/test` prepares its Python 3.12 environment and names it in `CLAVIS_HELM_PYTHON`), and the
//! Ingress route table proven against real servers: every endpoint of the OpenAPI document, sent where the Ingress
//! would send it, reaches a Deployment that serves it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use clavis::ServiceSet;
use serde_json::Value;

use crate::kit::TestApp;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python that has helm-sdkpy; the test fails (never skips) without it.
fn helm_python() -> PathBuf {
    let python = std::env::var_os("CLAVIS_HELM_PYTHON").map(PathBuf::from).expect(
        "CLAVIS_HELM_PYTHON is not set: run the suite through scripts/test, which prepares a Python 3.12 \
         environment with helm-sdkpy for the chart checks",
    );
    assert!(python.exists(), "CLAVIS_HELM_PYTHON={} does not exist", python.display());
    python
}

#[test]
fn chart_lints_and_every_value_is_defined_and_used() {
    let output = Command::new(helm_python())
        .arg(repo().join("helm/tests/check_chart.py"))
        .output()
        .expect("run helm/tests/check_chart.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "chart check failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("3 lint runs, 0 problem(s)"), "unexpected checker output:\n{stdout}");
}

/// The service the Ingress sends `path` to: the longest matching prefix wins, as with `pathType: Prefix`.
fn route_of<'a>(routes: &'a BTreeMap<String, Vec<String>>, path: &str) -> Option<&'a str> {
    let matches = |prefix: &str| {
        let prefix = prefix.trim_end_matches('/');
        prefix.is_empty() || path == prefix || path.starts_with(&format!("{prefix}/"))
    };
    routes
        .iter()
        .flat_map(|(service, prefixes)| prefixes.iter().map(move |p| (service.as_str(), p)))
        .filter(|(_, prefix)| matches(prefix))
        .max_by_key(|(_, prefix)| prefix.trim_end_matches('/').len())
        .map(|(service, _)| service)
}

fn only(service: &str) -> ServiceSet {
    service.parse().unwrap_or_else(|e| panic!("route table names unknown service {service}: {e}"))
}

#[tokio::test]
async fn ingress_routes_send_every_endpoint_to_a_service_that_serves_it() {
    let output = Command::new(helm_python())
        .arg(repo().join("helm/tests/check_chart.py"))
        .arg("--routes")
        .output()
        .expect("run check_chart.py --routes");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let routes: BTreeMap<String, Vec<String>> = serde_json::from_slice(&output.stdout).unwrap();

    let openapi: Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("openapi/openapi.json")).unwrap()).unwrap();
    let mut by_service: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for (path, item) in openapi["paths"].as_object().unwrap() {
        let service = route_of(&routes, path).unwrap_or_else(|| panic!("no ingress route matches {path}"));
        for method in item.as_object().unwrap().keys() {
            by_service.entry(service).or_default().push((method.clone(), path.clone()));
        }
    }
    assert!(by_service.len() >= 4, "the route table should spread endpoints over the services: {by_service:?}");

    for (service, endpoints) in by_service {
        let app = TestApp::spawn_with(only(service), |_| {}).await;
        for (method, path) in endpoints {
            // Path parameters become a placeholder: the route must match, whatever the handler then says.
            let concrete = path
                .split('/')
                .map(|s| if s.starts_with('{') { "placeholder" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = app.http.request(method.clone(), app.url(&concrete)).send().await.unwrap();
            let code = response.headers().get("x-clavis-error").map(|v| v.to_str().unwrap().to_owned());
            assert!(
                code.as_deref() != Some("1002") && code.as_deref() != Some("1003"),
                "{method} {path} is routed to the {service} Deployment, which does not serve it (status {}, code {code:?})",
                response.status()
            );
        }
    }
}
