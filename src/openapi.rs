//! The OpenAPI document: every service's paths merged, whatever subset this instance serves, so `clavis openapi`
//! and `/api-docs/openapi.json` are the same document.

use clavis_core::ErrorCode;
use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Clavis",
        description = "Self-hostable multi-tenant DRM license platform. Tenant backends authenticate with \
                       `Authorization: Bearer <api_key>`; errors are `application/problem+json` with a numeric \
                       `code` from the error catalog (see /errors).",
        license(name = "Apache-2.0")
    ),
    paths(crate::platform_routes::healthz, crate::platform_routes::readyz, crate::platform_routes::metrics),
    components(schemas(clavis_core::error::Problem)),
    modifiers(&ApiKeyScheme),
    tags((name = "platform", description = "Health, readiness and metrics"))
)]
struct PlatformDoc;

struct ApiKeyScheme;

impl Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description =
            Some("The tenant API key printed by `clavis tenant create` or created in the console".into());
        components.add_security_scheme("api_key", SecurityScheme::Http(scheme));
        let mut basic = Http::new(HttpAuthScheme::Basic);
        basic.description = Some("HTTP Basic with the site id as user and the API key as password (packagers)".into());
        components.add_security_scheme("basic", SecurityScheme::Http(basic));
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = PlatformDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.merge(clavis_tenant::openapi());
    doc.merge(clavis_keys::openapi());
    doc.merge(clavis_tokens::openapi());
    doc.merge(clavis_licenses::openapi());
    complete_error_responses(doc)
}

/// Errors every operation of a kind can answer, whatever its handler: the extractors, the authentication and the
/// database are shared, so their codes are added here once instead of on every handler annotation.
fn shared_errors(
    has_body: bool,
    has_params: bool,
    authenticated: bool,
    platform: bool,
    corridor: bool,
) -> Vec<ErrorCode> {
    let mut codes = Vec::new();
    if corridor {
        codes.extend_from_slice(clavis_licenses::CORRIDOR_CODES);
    }
    if has_body {
        codes.extend([
            ErrorCode::MalformedJson,
            ErrorCode::PayloadTooLarge,
            ErrorCode::UnsupportedMediaType,
            ErrorCode::InvalidField,
        ]);
    }
    if has_params {
        codes.extend([ErrorCode::MalformedRequest, ErrorCode::InvalidField]);
    }
    if authenticated {
        codes.extend([ErrorCode::ApiKeyMissing, ErrorCode::ApiKeyInvalid, ErrorCode::TenantSuspended]);
    }
    if !platform {
        codes.extend([ErrorCode::Internal, ErrorCode::DatabaseUnavailable]);
    }
    codes
}

/// Make every error response honest: `application/problem+json` with the Problem schema and the `X-Clavis-Error`
/// header, plus the shared errors of [`shared_errors`], each response listing the catalog codes it stands for.
/// (schemathesis checks the served API against this document in CI.)
fn complete_error_responses(doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let Ok(mut json) = serde_json::to_value(&doc) else { return doc };
    let problem = serde_json::json!({
        "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } }
    });
    let header = serde_json::json!({
        "X-Clavis-Error": { "description": "The numeric catalog code", "schema": { "type": "integer" } }
    });
    let Some(paths) = json.get_mut("paths").and_then(|p| p.as_object_mut()) else { return doc };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for operation in item.values_mut() {
            let has_body = operation.get("requestBody").is_some();
            let has_params = operation.get("parameters").and_then(|p| p.as_array()).is_some_and(|p| !p.is_empty());
            let authenticated = operation.get("security").is_some();
            let platform = matches!(path.as_str(), "/healthz" | "/metrics");
            let corridor = clavis_licenses::CORRIDOR_PATHS.contains(&path.as_str());
            let Some(responses) = operation.get_mut("responses").and_then(|r| r.as_object_mut()) else { continue };
            let mut by_status: std::collections::BTreeMap<u16, Vec<ErrorCode>> = Default::default();
            for code in shared_errors(has_body, has_params, authenticated, platform, corridor) {
                let entry = by_status.entry(code.status().as_u16()).or_default();
                if !entry.contains(&code) {
                    entry.push(code);
                }
            }
            for (status, codes) in by_status {
                let response = responses
                    .entry(status.to_string())
                    .or_insert_with(|| serde_json::json!({ "description": "Catalog codes:" }));
                let text = response.get("description").and_then(|d| d.as_str()).unwrap_or_default().to_owned();
                // Name only the codes the handler's own description does not already name.
                let missing = codes
                    .iter()
                    .filter(|c| !text.contains(c.code_str()))
                    .map(|c| format!("{} {}", c.code(), c.title()))
                    .collect::<Vec<_>>();
                if !missing.is_empty() {
                    let joined = missing.join(", ");
                    let text = if text == "Catalog codes:" {
                        format!("Catalog codes: {joined}")
                    } else {
                        format!("{text}; also {joined}")
                    };
                    response["description"] = serde_json::Value::String(text);
                }
            }
            // Endpoints whose protocol fixes another error format keep theirs: SPEKE's plain-text messages, and
            // PlayReady's SOAP faults (every error of such an endpoint is one). Every other error is problem+json.
            let plain_text = responses.values().any(|r| r.pointer("/content/text~1plain").is_some());
            let soap = responses
                .iter()
                .any(|(status, r)| status.as_str() >= "400" && r.pointer("/content/text~1xml").is_some());
            for (status, response) in responses.iter_mut() {
                if soap && status.as_str() >= "400" && status.len() == 3 {
                    response["content"] = serde_json::json!({ "text/xml": { "schema": { "type": "string" } } });
                    response["headers"] = header.clone();
                    continue;
                }
                if status.as_str() >= "400" && status.len() == 3 && path == "/ri/licenseManager.do" {
                    // PallyCon's URL serves every DRM: a PlayReady request's refusals there are SOAP faults.
                    response["content"] = problem.clone();
                    response["content"]["text/xml"] = serde_json::json!({ "schema": { "type": "string" } });
                    response["headers"] = header.clone();
                    continue;
                }
                if status.as_str() >= "400" && status.len() == 3 {
                    let declared_plain = response.pointer("/content/text~1plain").is_some();
                    if !declared_plain {
                        response["content"] = problem.clone();
                    }
                    if plain_text && !declared_plain && status.as_str() != "401" {
                        response["content"]["text/plain"] = serde_json::json!({ "schema": { "type": "string" } });
                    }
                    response["headers"] = header.clone();
                }
            }
        }
    }
    serde_json::from_value(json).unwrap_or(doc)
}

/// The document as committed at `openapi/openapi.json`.
pub fn pretty_json() -> String {
    let mut json = document().to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every license endpoint documents every code the shared corridor can answer, under the code's own status.
    #[test]
    fn license_endpoints_document_every_corridor_code() {
        let json = serde_json::to_value(document()).unwrap();
        for path in clavis_licenses::CORRIDOR_PATHS {
            let operation = &json["paths"][path]["post"];
            let operation = if operation.is_null() { &json["paths"][path]["get"] } else { operation };
            assert!(!operation.is_null(), "{path} is in the document");
            for code in clavis_licenses::CORRIDOR_CODES {
                let response = &operation["responses"][code.status().as_u16().to_string()];
                let text = response["description"].as_str().unwrap_or_default();
                assert!(
                    text.contains(code.code_str()),
                    "{path} does not document {} under {}",
                    code.code(),
                    code.status()
                );
            }
        }
    }
}
