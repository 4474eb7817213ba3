//! The tenant's Widevine signers: `PUT`/`GET`/`DELETE /api/v1/widevine/signers/{name}`, `GET /api/v1/widevine/signers`.
//!
//! A key request names only its signer, never the tenant, so a signer name belongs to one tenant platform-wide: the
//! `widevine_signers` table maps the name to its owner (its primary key makes a second tenant's claim fail, even when
//! two claims race), and the key material sits sealed in the owner's secrets vault (kind `widevine_signer`, the
//! signer's name as the secret's name). The answers never show a key, only its kind and fingerprint.

use actix_web::{HttpResponse, delete, get, put, web};
use chrono::{DateTime, Utc};
use clavis_core::http::ValidJson;
use clavis_core::ids::{TenantId, parse_hex16};
use clavis_core::{ClavisError, ErrorCode, Platform, Result};
use clavis_tenant::{SecretKind, SecretVault, TenantAuth};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::signature::{SignerKey, parse_rsa_public_key};
use crate::entity::widevine_signers;

const NAME_MAX: usize = 64;

/// Body of `PUT /api/v1/widevine/signers/{name}`: an AES key and IV, or an RSA public key.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignerBody {
    /// 64 hex digits: the packager's `--aes_signing_key`.
    #[serde(default)]
    #[schema(example = "1ae8ccd0e7985cc0b6203a55855a1034afc252980e970ca90e5202689f947ab9")]
    pub aes_key: Option<String>,
    /// 32 hex digits: the packager's `--aes_signing_iv`.
    #[serde(default)]
    #[schema(example = "d58ce954203b7c9a9a9d467f59839249")]
    pub aes_iv: Option<String>,
    /// PEM (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`), 2048 to 8192 bits: the public half of the packager's
    /// `--rsa_signing_key_path`.
    #[serde(default)]
    pub rsa_public_key: Option<String>,
}

/// What Clavis shows about a signer (never the key).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignerView {
    #[schema(example = "my_packager")]
    pub name: String,
    /// `aes` or `rsa`.
    #[schema(example = "aes")]
    pub kind: String,
    /// First 8 bytes of SHA-256 of the key (AES: key then IV; RSA: the DER public key), hex: lets the tenant check
    /// that the packager holds the same key.
    pub fingerprint: String,
    /// The RSA key's size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rsa_bits: Option<u32>,
    #[serde(default = "Utc::now")]
    pub updated_at: DateTime<Utc>,
}

/// The sealed value in the vault.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum StoredSigner {
    Aes { key: String, iv: String },
    Rsa { public_key_pem: String },
}

fn fingerprint(bytes: &[u8]) -> String {
    hex::encode(&ring::digest::digest(&ring::digest::SHA256, bytes).as_ref()[..8])
}

fn parse_name(name: &str) -> Result<&str> {
    let ok = !name.is_empty()
        && name.len() <= NAME_MAX
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(name)
    } else {
        Err(ClavisError::invalid("name", format!("1 to {NAME_MAX} characters from A-Z a-z 0-9 _ - .")))
    }
}

fn hex32(text: &str, field: &'static str) -> Result<Zeroizing<[u8; 32]>> {
    let bytes =
        Zeroizing::new(hex::decode(text.trim()).map_err(|_| ClavisError::invalid(field, "must be 64 hex digits"))?);
    let key =
        <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| ClavisError::invalid(field, "must be 64 hex digits"))?;
    Ok(Zeroizing::new(key))
}

/// Validate a body into what to store and what to show.
fn validate(name: &str, body: SignerBody) -> Result<(StoredSigner, SignerView)> {
    match (body.aes_key, body.aes_iv, body.rsa_public_key) {
        (Some(key), Some(iv), None) => {
            let key = hex32(&key, "aes_key")?;
            let iv = parse_hex16(iv.trim(), "aes_iv")?;
            let mut material = Zeroizing::new(Vec::with_capacity(48));
            material.extend_from_slice(&*key);
            material.extend_from_slice(&iv);
            let view = SignerView {
                name: name.to_owned(),
                kind: "aes".into(),
                fingerprint: fingerprint(&material),
                rsa_bits: None,
                updated_at: Utc::now(),
            };
            Ok((StoredSigner::Aes { key: hex::encode(*key), iv: hex::encode(iv) }, view))
        }
        (None, None, Some(pem)) => {
            let key = parse_rsa_public_key(&pem).map_err(|e| ClavisError::invalid("rsa_public_key", e))?;
            let der = key.public_key_to_der().map_err(|e| ClavisError::internal("rsa public key", e))?;
            let pem = key.public_key_to_pem().map_err(|e| ClavisError::internal("rsa public key", e))?;
            let view = SignerView {
                name: name.to_owned(),
                kind: "rsa".into(),
                fingerprint: fingerprint(&der),
                rsa_bits: Some(key.bits()),
                updated_at: Utc::now(),
            };
            let public_key_pem = String::from_utf8(pem).map_err(|e| ClavisError::internal("rsa public key", e))?;
            Ok((StoredSigner::Rsa { public_key_pem }, view))
        }
        _ => Err(ClavisError::invalid(
            "aes_key",
            "give `aes_key` (64 hex) with `aes_iv` (32 hex), or `rsa_public_key` (PEM), not both",
        )),
    }
}

/// Make `name` the tenant's, unless another tenant owns it (3023).
async fn claim(platform: &Platform, tenant_id: TenantId, name: &str) -> Result<()> {
    let txn = clavis_core::db::begin_write(&platform.db).await?;
    widevine_signers::Entity::insert(widevine_signers::ActiveModel {
        name: Set(name.to_owned()),
        tenant_id: Set(tenant_id.0),
        created_at: Set(Utc::now()),
    })
    .on_conflict(OnConflict::column(widevine_signers::Column::Name).do_nothing().to_owned())
    .exec_without_returning(&txn)
    .await?;
    let owner = widevine_signers::Entity::find_by_id(name.to_owned()).one(&txn).await?;
    if owner.is_none_or(|row| row.tenant_id != tenant_id.0) {
        txn.rollback().await?;
        return Err(ClavisError::new(
            ErrorCode::WidevineSignerTaken,
            format!("the Widevine signer name {name:?} belongs to another tenant"),
        ));
    }
    txn.commit().await?;
    Ok(())
}

/// The tenant that owns the signer `name`.
pub(crate) async fn owner(platform: &Platform, name: &str) -> Result<Option<TenantId>> {
    Ok(widevine_signers::Entity::find_by_id(name.to_owned())
        .one(&platform.db)
        .await?
        .map(|row| TenantId(row.tenant_id)))
}

/// The signer's verification key, from the tenant's vault.
pub(crate) async fn load(vault: &SecretVault, tenant_id: TenantId, name: &str) -> Result<Option<SignerKey>> {
    let Some(secret) = vault.get(tenant_id, SecretKind::WidevineSigner, name).await? else { return Ok(None) };
    let stored: StoredSigner = secret.value_as()?;
    let key = match stored {
        StoredSigner::Aes { key, iv } => SignerKey::Aes {
            key: hex32(&key, "aes_key").map_err(|e| ClavisError::internal("stored signer", e))?,
            iv: parse_hex16(&iv, "aes_iv").map_err(|e| ClavisError::internal("stored signer", e))?,
        },
        StoredSigner::Rsa { public_key_pem } => SignerKey::Rsa(
            parse_rsa_public_key(&public_key_pem).map_err(|e| ClavisError::internal("stored signer", e))?,
        ),
    };
    Ok(Some(key))
}

fn not_found(name: &str) -> ClavisError {
    ClavisError::new(ErrorCode::WidevineSignerNotFound, format!("this tenant has no Widevine signer {name:?}"))
}

/// Register (or replace) a Widevine signer: the name the packager sends with `--signer`, and the key it signs with.
#[utoipa::path(
    put, path = "/api/v1/widevine/signers/{name}", tag = "widevine",
    security(("api_key" = [])),
    params(("name" = String, Path, description = "The signer name (the packager's --signer): 1 to 64 of A-Z a-z 0-9 _ - .")),
    request_body = SignerBody,
    responses(
        (status = 200, description = "Signer stored; the answer shows its kind and fingerprint", body = SignerView),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 409, description = "3023 the name belongs to another tenant", body = clavis_core::error::Problem),
        (status = 422, description = "1011 bad name, key, IV or PEM", body = clavis_core::error::Problem),
    )
)]
#[put("/api/v1/widevine/signers/{name}")]
pub async fn put_signer(
    auth: TenantAuth,
    platform: web::Data<Platform>,
    vault: web::Data<SecretVault>,
    path: web::Path<String>,
    body: ValidJson<SignerBody>,
) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(save_signer(&platform, &vault, auth.tenant.id, &path, body.into_inner()).await?))
}

/// Validate and store (or replace) a signer: what `PUT /api/v1/widevine/signers/{name}` and the console do.
pub async fn save_signer(
    platform: &Platform,
    vault: &SecretVault,
    tenant_id: TenantId,
    name: &str,
    body: SignerBody,
) -> Result<SignerView> {
    let name = parse_name(name)?;
    let (stored, view) = validate(name, body)?;
    claim(platform, tenant_id, name).await?;
    vault.put_json(tenant_id, SecretKind::WidevineSigner, name, &view, &stored).await?;
    Ok(view)
}

/// The tenant's signers as shown (never a key).
pub async fn signer_views(vault: &SecretVault, tenant_id: TenantId) -> Result<Vec<SignerView>> {
    vault
        .list(tenant_id, SecretKind::WidevineSigner)
        .await?
        .into_iter()
        .map(|info| {
            let mut view: SignerView =
                serde_json::from_value(info.meta).map_err(|e| ClavisError::internal("signer meta", e))?;
            view.updated_at = info.updated_at;
            Ok(view)
        })
        .collect()
}

/// Remove a signer and free its name (3024 when the tenant has none of that name).
pub async fn remove_signer(platform: &Platform, vault: &SecretVault, tenant_id: TenantId, name: &str) -> Result<()> {
    let name = parse_name(name)?;
    let had_secret = vault.delete(tenant_id, SecretKind::WidevineSigner, name).await?;
    let released = widevine_signers::Entity::delete_many()
        .filter(widevine_signers::Column::Name.eq(name))
        .filter(widevine_signers::Column::TenantId.eq(tenant_id.0))
        .exec(&platform.db)
        .await?;
    if !had_secret && released.rows_affected == 0 {
        return Err(not_found(name));
    }
    Ok(())
}

/// The tenant's Widevine signers (names, kinds, fingerprints; never keys).
#[utoipa::path(
    get, path = "/api/v1/widevine/signers", tag = "widevine",
    security(("api_key" = [])),
    responses(
        (status = 200, body = Vec<SignerView>),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
    )
)]
#[get("/api/v1/widevine/signers")]
pub async fn list_signers(auth: TenantAuth, vault: web::Data<SecretVault>) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(signer_views(&vault, auth.tenant.id).await?))
}

/// One Widevine signer of the tenant.
#[utoipa::path(
    get, path = "/api/v1/widevine/signers/{name}", tag = "widevine",
    security(("api_key" = [])),
    params(("name" = String, Path, description = "The signer name")),
    responses(
        (status = 200, body = SignerView),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 404, description = "3024 no such signer", body = clavis_core::error::Problem),
    )
)]
#[get("/api/v1/widevine/signers/{name}")]
pub async fn read_signer(
    auth: TenantAuth,
    vault: web::Data<SecretVault>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let name = parse_name(&path)?;
    let secret = vault.get(auth.tenant.id, SecretKind::WidevineSigner, name).await?.ok_or_else(|| not_found(name))?;
    let mut view: SignerView = secret.meta_as()?;
    view.updated_at = secret.updated_at;
    Ok(HttpResponse::Ok().json(view))
}

/// Remove a Widevine signer; its name becomes free for any tenant, and key requests it signs are refused.
#[utoipa::path(
    delete, path = "/api/v1/widevine/signers/{name}", tag = "widevine",
    security(("api_key" = [])),
    params(("name" = String, Path, description = "The signer name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 404, description = "3024 no such signer", body = clavis_core::error::Problem),
    )
)]
#[delete("/api/v1/widevine/signers/{name}")]
pub async fn delete_signer(
    auth: TenantAuth,
    platform: web::Data<Platform>,
    vault: web::Data<SecretVault>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    remove_signer(&platform, &vault, auth.tenant.id, &path).await?;
    Ok(HttpResponse::NoContent().finish())
}
