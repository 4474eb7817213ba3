//! The license service: the license corridor shared by every DRM, ClearKey issuance, CORS per tenant, and the
//! license log.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod api;
pub mod callback;
pub mod clearkey;
mod cors;
mod entity;
pub mod fairplay;
mod hls;
pub mod inspect;
pub mod log;
pub mod service;

use actix_web::web;

pub use log::LicenseLog;
pub use service::LicenseService;

/// Register the token inspector (served with the token service's routes, as its path says; it runs the license
/// corridor, so it lives here).
pub fn configure_inspector(cfg: &mut web::ServiceConfig) {
    cfg.service(inspect::inspect);
}

/// Register the license service's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(api::license_log)
        .service(callback::put_callback)
        .service(callback::get_callback)
        .service(callback::delete_callback)
        .service(callback::test_callback)
        .service(fairplay::put_credentials)
        .service(fairplay::list_credentials)
        .service(fairplay::delete_credentials)
        .service(
            web::scope("/license")
                .route("/clearkey", web::post().to(api::clearkey))
                .route("/fairplay", web::post().to(fairplay::ksm))
                .route("/fairplay/certificate/{site_id}", web::get().to(fairplay::certificate))
                .route("/hls-aes/{site_id}/{content_id}/{kid}", web::get().to(hls::hls_aes))
                .route("/{site_id}/crossdomain.xml", web::get().to(api::crossdomain))
                .route("/{tail:.*}", web::method(actix_web::http::Method::OPTIONS).to(api::preflight))
                .default_service(web::to(api::unknown_license_path)),
        );
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        api::clearkey,
        api::crossdomain,
        hls::hls_aes,
        api::license_log,
        inspect::inspect,
        fairplay::ksm,
        fairplay::certificate,
        fairplay::put_credentials,
        fairplay::list_credentials,
        fairplay::delete_credentials,
        callback::put_callback,
        callback::get_callback,
        callback::delete_callback,
        callback::test_callback
    ),
    components(schemas(
        log::LogRow,
        inspect::InspectRequest,
        inspect::Inspection,
        inspect::Refusal,
        fairplay::CredentialsBody,
        fairplay::CredentialView,
        callback::CallbackMode,
        callback::CallbackSettingsBody,
        callback::CallbackSettingsView,
        callback::TestExchange,
        callback::outbound::SentRequest,
        callback::outbound::ReceivedAnswer
    )),
    tags(
        (name = "licenses", description = "License issuance (called by players) and the license log"),
        (name = "fairplay", description = "FairPlay Streaming: provider credentials, the certificate and the key server")
    )
)]
struct ApiDoc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    <ApiDoc as utoipa::OpenApi>::openapi()
}
