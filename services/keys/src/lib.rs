//! The key service: contents and their keys (random, imported; key seeds and packager protocols come later), the
//! PSSH boxes that signal them, and the cached key path the license service reads.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod api;
pub mod contents;
pub mod cpix;
mod entity;
pub mod model;
pub mod periods;
pub mod playready;
pub mod pssh;
pub mod seed;
pub mod signalling;
mod store;
pub mod widevine_key_server;
pub mod widevine_pssh;

use actix_web::web;

pub use model::{ContentKey, ContentKeySet, KeySource};
pub use store::{KeySlot, KeyStore, KidRequest, SEALED};

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
        .service(widevine_key_server::signers::list_signers)
        .service(widevine_key_server::signers::put_signer)
        .service(widevine_key_server::signers::read_signer)
        .service(widevine_key_server::signers::delete_signer)
        .service(widevine_key_server::key_server)
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
        widevine_key_server::signers::put_signer,
        widevine_key_server::signers::list_signers,
        widevine_key_server::signers::read_signer,
        widevine_key_server::signers::delete_signer,
        widevine_key_server::key_server,
        cpix::speke::speke_v2,
        cpix::speke::speke_v1
    ),
    components(schemas(model::KeysRequest, periods::PeriodBody, model::ImportedKeyBody, model::KeysResponse, model::KeyView, model::PsshView, model::KeySource, signalling::SignallingView, signalling::HlsSignallingView, signalling::TrackSignallingView, seed::KeySeedBody, seed::KeySeedView, contents::ContentView, contents::ContentKeyInfo, widevine_key_server::signers::SignerBody, widevine_key_server::signers::SignerView)),
    tags((name = "keys", description = "Content keys"), (name = "widevine", description = "Widevine signers and the key-server API Shaka Packager calls"))
)]
struct ApiDoc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    <ApiDoc as utoipa::OpenApi>::openapi()
}
