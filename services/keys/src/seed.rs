//! The tenant's PlayReady key seed: `PUT`/`POST`/`GET`/`DELETE /api/v1/key-seed`.
//!
//! A key seed is the secret a tenant shares with its PlayReady license server: keys made with `"source":
//! "key_seed"` are derived from it and the KID ([`crate::playready::KeySeed::derive`]), so that server can find a
//! content key from the KID in a client's header alone. Clavis stores the seed sealed in the tenant's vault and shows
//! it once, when it generates one; afterwards only its fingerprint.

use actix_web::{HttpResponse, delete, get, post, put, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use clavis_core::http::ValidJson;
use clavis_core::ids::TenantId;
use clavis_core::{ClavisError, ErrorCode, Result, crypto};
use clavis_tenant::{SecretKind, SecretVault, TenantAuth};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::playready::KeySeed;

/// The vault name of the one key seed a tenant has.
const SEED_NAME: &str = "playready";
/// Length of a generated seed: what Microsoft's tools make and the derivation reads.
const GENERATED_SEED_LEN: usize = 30;
/// Longest seed accepted (only the first 30 bytes take part in the derivation).
const MAX_SEED_LEN: usize = 256;

/// Body of `PUT /api/v1/key-seed`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeySeedBody {
    /// Standard base64 of at least 30 bytes.
    #[schema(example = "XVBovsmzhP9gRIZxWfFta3VVRPzVEWmJsazEJ46I")]
    pub key_seed: String,
}

/// What Clavis shows about a key seed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeySeedView {
    /// The seed itself: only in the answer of `POST` (generation), never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_seed: Option<String>,
    /// First 8 bytes of SHA-256 of the seed, hex: lets the tenant check both sides hold the same seed.
    #[schema(example = "4f1c2a9b3e5d6f70")]
    pub fingerprint: String,
    pub length: usize,
    pub updated_at: DateTime<Utc>,
}

fn fingerprint(seed: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, seed);
    hex::encode(&digest.as_ref()[..8])
}

async fn store(vault: &SecretVault, tenant_id: TenantId, seed: &[u8]) -> Result<KeySeedView> {
    let view =
        KeySeedView { key_seed: None, fingerprint: fingerprint(seed), length: seed.len(), updated_at: Utc::now() };
    let meta = serde_json::json!({ "fingerprint": view.fingerprint, "length": view.length });
    vault.put(tenant_id, SecretKind::KeySeed, SEED_NAME, meta, seed).await?;
    Ok(view)
}

/// The tenant's key seed, if set.
pub async fn load(vault: &SecretVault, tenant_id: TenantId) -> Result<Option<KeySeed>> {
    let Some(secret) = vault.get(tenant_id, SecretKind::KeySeed, SEED_NAME).await? else { return Ok(None) };
    KeySeed::from_bytes(&secret.value).map(Some).map_err(|e| ClavisError::internal("stored key seed", e))
}

/// Set the tenant's PlayReady key seed (replacing any earlier one; keys already made keep their values).
#[utoipa::path(
    put, path = "/api/v1/key-seed", tag = "keys",
    security(("api_key" = [])),
    request_body = KeySeedBody,
    responses(
        (status = 200, description = "Seed stored; the answer shows its fingerprint", body = KeySeedView),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 422, description = "1011 not base64 or shorter than 30 bytes", body = clavis_core::error::Problem),
    )
)]
#[put("/api/v1/key-seed")]
pub async fn put_key_seed(
    auth: TenantAuth,
    vault: web::Data<SecretVault>,
    body: ValidJson<KeySeedBody>,
) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(set_seed(&vault, auth.tenant.id, &body.into_inner().key_seed).await?))
}

/// Validate and store a key seed given in base64: what `PUT /api/v1/key-seed` and the console do.
pub async fn set_seed(vault: &SecretVault, tenant_id: TenantId, base64_seed: &str) -> Result<KeySeedView> {
    let compact: String = base64_seed.split_whitespace().collect();
    let seed = Zeroizing::new(
        STANDARD.decode(compact).map_err(|_| ClavisError::invalid("key_seed", "must be standard base64"))?,
    );
    if seed.len() < GENERATED_SEED_LEN || seed.len() > MAX_SEED_LEN {
        return Err(ClavisError::invalid(
            "key_seed",
            format!("must decode to {GENERATED_SEED_LEN} to {MAX_SEED_LEN} bytes, not {}", seed.len()),
        ));
    }
    store(vault, tenant_id, &seed).await
}

/// Generate and store a random seed; the answer shows it (the only time it is shown).
pub async fn generate_seed(vault: &SecretVault, tenant_id: TenantId) -> Result<KeySeedView> {
    let seed = Zeroizing::new(crypto::random_array::<GENERATED_SEED_LEN>()?);
    let mut view = store(vault, tenant_id, &*seed).await?;
    view.key_seed = Some(STANDARD.encode(*seed));
    Ok(view)
}

/// The tenant's seed as shown (fingerprint and length), if set.
pub async fn seed_view(vault: &SecretVault, tenant_id: TenantId) -> Result<Option<KeySeedView>> {
    Ok(vault.get(tenant_id, SecretKind::KeySeed, SEED_NAME).await?.map(|secret| KeySeedView {
        key_seed: None,
        fingerprint: fingerprint(&secret.value),
        length: secret.value.len(),
        updated_at: secret.updated_at,
    }))
}

fn not_set() -> ClavisError {
    ClavisError::new(ErrorCode::KeySeedNotSet, "this tenant has no PlayReady key seed")
}

/// Remove the seed (3004 when there is none).
pub async fn remove_seed(vault: &SecretVault, tenant_id: TenantId) -> Result<()> {
    if !vault.delete(tenant_id, SecretKind::KeySeed, SEED_NAME).await? {
        return Err(not_set());
    }
    Ok(())
}

/// Generate a new random key seed for the tenant (replacing any earlier one) and show it, this once.
#[utoipa::path(
    post, path = "/api/v1/key-seed", tag = "keys",
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Seed generated; `key_seed` is shown only here", body = KeySeedView),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
    )
)]
#[post("/api/v1/key-seed")]
pub async fn generate_key_seed(auth: TenantAuth, vault: web::Data<SecretVault>) -> Result<HttpResponse> {
    Ok(HttpResponse::Created().json(generate_seed(&vault, auth.tenant.id).await?))
}

/// Whether the tenant has a key seed, and its fingerprint.
#[utoipa::path(
    get, path = "/api/v1/key-seed", tag = "keys",
    security(("api_key" = [])),
    responses(
        (status = 200, body = KeySeedView),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 409, description = "3004 no key seed set", body = clavis_core::error::Problem),
    )
)]
#[get("/api/v1/key-seed")]
pub async fn read_key_seed(auth: TenantAuth, vault: web::Data<SecretVault>) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(seed_view(&vault, auth.tenant.id).await?.ok_or_else(not_set)?))
}

/// Remove the tenant's key seed. Keys already derived from it stay as they are.
#[utoipa::path(
    delete, path = "/api/v1/key-seed", tag = "keys",
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 409, description = "3004 no key seed set", body = clavis_core::error::Problem),
    )
)]
#[delete("/api/v1/key-seed")]
pub async fn delete_key_seed(auth: TenantAuth, vault: web::Data<SecretVault>) -> Result<HttpResponse> {
    remove_seed(&vault, auth.tenant.id).await?;
    Ok(HttpResponse::NoContent().finish())
}
