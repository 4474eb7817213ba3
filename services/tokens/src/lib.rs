//! The token service: per-tenant signing keys, the token API, and verification for the license service.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod api;
pub mod axinom_integration;
pub mod drmtoday;
mod entity;
pub mod foreign;
pub mod issuers;
pub mod native;
pub mod pallycon;
pub mod registration;
pub mod replay;
mod service;
pub mod signing;

use actix_web::web;

pub use issuers::Issuers;
pub use native::{PresentedToken, VerifiedToken};
pub use service::{Credential, ErrorStyle, IssuedToken, Presented, TokenRequest, TokenService};

/// Register the token service's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(api::create_token)
        .service(api::create_token_key)
        .service(api::list_token_keys)
        .service(api::retire_token_key)
        .service(pallycon::put_pallycon)
        .service(pallycon::get_pallycon)
        .service(pallycon::delete_pallycon)
        .service(drmtoday::put_drmtoday)
        .service(drmtoday::get_drmtoday)
        .service(drmtoday::delete_drmtoday)
        .service(axinom_integration::put_axinom)
        .service(axinom_integration::get_axinom)
        .service(axinom_integration::delete_axinom);
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        api::create_token,
        api::create_token_key,
        api::list_token_keys,
        api::retire_token_key,
        pallycon::put_pallycon, pallycon::get_pallycon, pallycon::delete_pallycon,
        drmtoday::put_drmtoday, drmtoday::get_drmtoday, drmtoday::delete_drmtoday,
        axinom_integration::put_axinom, axinom_integration::get_axinom, axinom_integration::delete_axinom),
    components(schemas(
        TokenRequest,
        IssuedToken,
        api::NewTokenKeyRequest,
        signing::NewTokenKey,
        signing::TokenKeyView,
        signing::KeyAlgorithm,
        clavis_core::policy::Policy,
        pallycon::PallyconIntegrationBody,
        pallycon::PallyconIntegrationView,
        drmtoday::DrmtodayIntegrationBody,
        drmtoday::DrmtodaySecretBody,
        drmtoday::DrmtodayIntegrationView,
        axinom_integration::AxinomIntegrationBody,
        axinom_integration::AxinomKeyBody,
        axinom_integration::AxinomIntegrationView
    )),
    tags((name = "tokens", description = "License tokens"))
)]
struct ApiDoc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    <ApiDoc as utoipa::OpenApi>::openapi()
}
