//! The key service: contents and their keys (random, imported; key seeds and packager protocols come later), the
//! PSSH boxes that signal them, and the cached key path the license service reads.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod api;
pub mod contents;
pub mod cpix;
mod entity;
pub mod model;
pub mod playready;
pub mod pssh;
pub mod seed;
pub mod signalling;
mod store;
pub mod widevine_pssh;

use actix_web::web;

pub use model::{ContentKey, ContentKeySet, KeySource};
pub use store::{KeyStore, KidRequest};

/// Register the key service's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(api::create_keys)
        .service(api::read_keys)
        .service(seed::put_key_seed)
        .service(seed::generate_key_seed)
        .service(seed::read_key_seed)
        .service(seed::delete_key_seed)
        .service(contents::read_content)
        .service(contents::put_content_policy)
        .service(cpix::speke::speke_v2)
        .service(cpix::speke::speke_v1);
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        api::create_keys,
        api::read_keys,
        seed::put_key_seed,
        seed::generate_key_seed,
        seed::read_key_seed,
        seed::delete_key_seed,
        contents::read_content,
        contents::put_content_policy,
        cpix::speke::speke_v2,
        cpix::speke::speke_v1
    ),
    components(schemas(model::KeysRequest, model::ImportedKeyBody, model::KeysResponse, model::KeyView, model::PsshView, model::KeySource, signalling::SignallingView, signalling::HlsSignallingView, signalling::TrackSignallingView, seed::KeySeedBody, seed::KeySeedView, contents::ContentView, contents::ContentKeyInfo)),
    tags((name = "keys", description = "Content keys"))
)]
struct ApiDoc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    <ApiDoc as utoipa::OpenApi>::openapi()
}
