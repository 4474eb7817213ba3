//! The OpenAPI document: every service's paths merged, whatever subset this instance serves, so `clavis openapi`
//! and `/api-docs/openapi.json` are the same document.

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
    doc
}

/// The document as committed at `openapi/openapi.json`.
pub fn pretty_json() -> String {
    let mut json = document().to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}
