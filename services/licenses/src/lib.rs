//! The license service: the license corridor shared by every DRM, ClearKey issuance, CORS per tenant, and the
//! license log.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod api;
pub mod clearkey;
mod cors;
mod entity;
pub mod log;
pub mod service;

use actix_web::web;

pub use log::LicenseLog;
pub use service::LicenseService;

/// Register the license service's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(api::license_log).service(
        web::scope("/license")
            .route("/clearkey", web::post().to(api::clearkey))
            .route("/{tail:.*}", web::method(actix_web::http::Method::OPTIONS).to(api::preflight))
            .default_service(web::to(api::unknown_license_path)),
    );
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(api::clearkey, api::license_log),
    components(schemas(log::LogRow)),
    tags((name = "licenses", description = "License issuance (called by players) and the license log"))
)]
struct ApiDoc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    <ApiDoc as utoipa::OpenApi>::openapi()
}
