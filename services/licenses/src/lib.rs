//! The license service: the license corridor shared by every DRM, ClearKey issuance, CORS per tenant, and the
//! license log.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod api;
pub mod callback;
pub mod clearkey;
mod cors;
pub mod devices;
mod entity;
pub mod fairplay;
mod hls;
pub mod inspect;
pub mod log;
pub mod outbound;
pub mod playready;
pub mod rules;
pub mod service;
pub mod upstream;
mod users;
pub mod widevine;

use actix_web::web;

pub use devices::DeviceService;
pub use log::LicenseLog;
pub use service::{CORRIDOR_CODES, CORRIDOR_PATHS, LicenseService};

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
        .service(upstream::put_widevine)
        .service(upstream::get_widevine)
        .service(upstream::delete_widevine)
        .service(upstream::put_playready)
        .service(upstream::get_playready)
        .service(upstream::delete_playready)
        .service(users::devices)
        .service(users::free_device)
        .service(users::streams)
        .service(users::end_stream)
        .service(fairplay::put_credentials)
        .service(fairplay::list_credentials)
        .service(fairplay::delete_credentials)
        .route("/static/clavis-offline.js", web::get().to(devices::api::client_script))
        .service(devices::api::list)
        .service(devices::api::rename)
        .service(devices::api::remove)
        .service(devices::api::reset)
        .service(devices::api::make_bundles)
        .route("/ri/licenseManager.do", web::post().to(api::pallycon_alias))
        .route("/ri/{tail:.*}", web::method(actix_web::http::Method::OPTIONS).to(api::preflight))
        .service(
            web::scope("/license")
                .route("/clearkey", web::post().to(api::clearkey))
                .route("/fairplay", web::post().to(fairplay::ksm))
                .route("/widevine", web::post().to(widevine::license))
                .route("/playready", web::post().to(playready::license))
                .route("/fairplay/certificate/{site_id}", web::get().to(fairplay::certificate))
                .route("/devices", web::post().to(devices::api::register))
                .route("/devices/bundles/check", web::post().to(devices::api::check))
                .route("/devices/keys/{site_id}", web::get().to(devices::api::jwks))
                .route("/devices/revocations/{site_id}", web::get().to(devices::api::revocations))
                .route("/devices/{site_id}/{device_id}/reset", web::post().to(devices::api::reset_by_device))
                .route("/devices/{site_id}/{device_id}/bundles/{content_id}", web::get().to(devices::api::get_bundle))
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
        api::pallycon_alias,
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
        callback::test_callback,
        widevine::license,
        playready::license,
        upstream::put_widevine,
        upstream::get_widevine,
        upstream::delete_widevine,
        upstream::put_playready,
        upstream::get_playready,
        upstream::delete_playready,
        users::devices,
        users::free_device,
        users::streams,
        users::end_stream,
        devices::api::register,
        devices::api::reset_by_device,
        devices::api::get_bundle,
        devices::api::check,
        devices::api::jwks,
        devices::api::revocations,
        devices::api::list,
        devices::api::rename,
        devices::api::remove,
        devices::api::reset,
        devices::api::make_bundles
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
        outbound::SentRequest,
        outbound::ReceivedAnswer,
        upstream::WidevineProxyBody,
        upstream::WidevineProxyView,
        upstream::PlayReadyProxyBody,
        upstream::PlayReadyProxyView,
        rules::UserDevice,
        rules::StreamView,
        devices::DeviceView,
        devices::BundleView,
        devices::BundleCheck,
        devices::api::RegisterBody,
        devices::api::CheckBody,
        devices::api::RenameBody,
        devices::api::BundlesBody
    )),
    tags(
        (name = "licenses", description = "License issuance (called by players) and the license log"),
        (name = "devices", description = "Devices and out-of-band licenses: registration, bundles, resets and revocations"),
        (name = "fairplay", description = "FairPlay Streaming: provider credentials, the certificate and the key server")
    )
)]
struct ApiDoc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    <ApiDoc as utoipa::OpenApi>::openapi()
}
