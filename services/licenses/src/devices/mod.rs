//! Devices and out-of-band licenses (issue 7, after Adobe Primetime's model, with open standards).
//!
//! A device (an app install) makes a P-256 key pair and a random device id and registers the public key with a
//! license token naming its user (`POST /license/devices`); registrations count against the policy's `max_devices`.
//! The tenant backend then asks for bundles (`POST /api/v1/devices/{device_id}/bundles`): per content, a compact JWE
//! (ECDH-ES+A256KW, A256GCM) to the device key holding a compact JWS (EdDSA, the tenant's license-signing key, sealed
//! in the vault, published at `/license/devices/keys/{site_id}`) whose payload is the ClearKey key set, the content
//! and device ids, the device's key generation, the policy and the expiry. Bundles may be hosted anywhere; Clavis
//! serves them too. A factory reset (by the device, with a JWS signed by its key, or by the tenant) revokes the
//! current key generation: the device registers a new key (generation + 1), old bundles are refused by Clavis and
//! listed in the signed revocation list (`/license/devices/revocations/{site_id}`) for clients offline.

pub mod api;
pub mod jose;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use clavis_core::ids::{ContentId, SiteId, TenantId};
use clavis_core::policy::Policy;
use clavis_core::{ClavisError, ErrorCode, Result};
use clavis_keys::KeyStore;
use clavis_tenant::secrets::{SecretKind, SecretVault};
use clavis_tenant::{Directory, Tenant};
use josekit::jwk::Jwk;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::entity::{device_bundles, device_revocations, devices};
use jose::SigningKey;

/// Most contents one bundle request may name.
pub const MAX_BUNDLE_CONTENTS: usize = 64;
/// A bundle's lifetime when the policy sets none (30 days).
pub const DEFAULT_BUNDLE_SECONDS: u64 = 30 * 24 * 3600;
/// How far a device's reset proof `iat` may be from now.
pub const PROOF_WINDOW_SECONDS: i64 = 300;
/// The vault name of the one license-signing key per tenant.
const SIGNER_NAME: &str = "device-licenses";

const ACTIVE: &str = "active";
const RESET: &str = "reset";

/// A registered device as the APIs show it.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceView {
    pub device_id: String,
    pub user_id: String,
    pub name: String,
    /// The key generation: 1 at first registration, incremented by every reset.
    pub generation: i32,
    /// `active`, or `reset` (waiting for the device to register a new key).
    pub state: String,
    /// The device's public P-256 JWK (absent while reset).
    #[schema(value_type = Option<Object>)]
    pub public_key: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<devices::Model> for DeviceView {
    fn from(row: devices::Model) -> DeviceView {
        DeviceView {
            public_key: serde_json::from_str(&row.public_key).ok(),
            device_id: row.device_id,
            user_id: row.user_id,
            name: row.name,
            generation: row.generation,
            state: row.state,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// The payload of a bundle's inner JWS.
#[derive(Debug, Serialize, Deserialize)]
pub struct BundleClaims {
    /// The tenant's site id.
    pub iss: String,
    /// The device id.
    pub sub: String,
    /// The device key generation the bundle was made for.
    pub generation: i32,
    pub content_id: String,
    /// The ClearKey license as `MediaKeySession.update` takes it: `{"keys":[{kty,k,kid}],"type":"temporary"}`.
    pub license: serde_json::Value,
    pub policy: Policy,
    pub iat: i64,
    pub exp: i64,
}

/// One bundle as the tenant API answers it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BundleView {
    pub content_id: String,
    pub device_id: String,
    pub generation: i32,
    pub expires_at: DateTime<Utc>,
    /// Where Clavis serves it; any static host may serve the same bytes at a path of its choosing.
    pub url: String,
    /// The compact JWE.
    pub jwe: String,
}

/// What an online bundle check confirms.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BundleCheck {
    pub valid: bool,
    pub device_id: String,
    pub content_id: String,
    pub generation: i32,
    pub exp: i64,
}

/// One revoked key generation.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Revoked {
    pub device_id: String,
    pub generation: i32,
}

/// The payload of the signed revocation list.
#[derive(Debug, Serialize, Deserialize)]
pub struct RevocationList {
    pub iss: String,
    /// Grows by one with every revocation (revocations are never removed).
    pub version: u64,
    pub iat: i64,
    pub revoked: Vec<Revoked>,
}

fn registration_invalid(detail: impl Into<String>) -> ClavisError {
    ClavisError::new(ErrorCode::DeviceRegistrationInvalid, detail.into())
}

fn device_not_found(device_id: &str) -> ClavisError {
    ClavisError::new(ErrorCode::DeviceNotFound, format!("no device {device_id:?} is registered"))
}

fn bundle_invalid(detail: impl Into<String>) -> ClavisError {
    ClavisError::new(ErrorCode::DeviceBundleInvalid, detail.into())
}

/// Device ids are chosen by apps: random, URL-safe (they appear in bundle paths).
pub fn validate_device_id(device_id: &str) -> Result<()> {
    let ok = (1..=128).contains(&device_id.len())
        && device_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !device_id.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(ClavisError::field(
            ErrorCode::DeviceRegistrationInvalid,
            "device_id",
            "must be 1 to 128 characters of letters, digits, `-`, `_`, `.` (not starting with `.`)",
        ))
    }
}

pub struct DeviceService {
    db: DatabaseConnection,
    vault: Arc<SecretVault>,
    keys: Arc<KeyStore>,
    directory: Arc<Directory>,
    /// Serializes the first creation of a tenant's signing key in this process, so two first requests cannot
    /// store two different keys (the second would invalidate what the first signed).
    signer_creation: tokio::sync::Mutex<()>,
    /// Serializes new registrations in this process, so the device count and the insert cannot interleave
    /// (on PostgreSQL an advisory lock per user does the same across instances).
    registrations: tokio::sync::Mutex<()>,
}

impl DeviceService {
    pub fn new(
        db: DatabaseConnection,
        vault: Arc<SecretVault>,
        keys: Arc<KeyStore>,
        directory: Arc<Directory>,
    ) -> DeviceService {
        DeviceService {
            db,
            vault,
            keys,
            directory,
            signer_creation: tokio::sync::Mutex::new(()),
            registrations: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) async fn tenant_by_site(&self, site_id: &str) -> Result<Arc<Tenant>> {
        let unknown = || ClavisError::new(ErrorCode::TenantNotFound, "no tenant has this site id");
        let site_id = SiteId::parse(site_id).map_err(|_| unknown())?;
        self.directory.by_site_id(site_id).await?.ok_or_else(unknown)
    }

    /// The tenant's license-signing key, made on first use.
    pub async fn signing_key(&self, tenant_id: TenantId) -> Result<SigningKey> {
        if let Some(key) = self.stored_signing_key(tenant_id).await? {
            return Ok(key);
        }
        let _guard = self.signer_creation.lock().await;
        if let Some(key) = self.stored_signing_key(tenant_id).await? {
            return Ok(key);
        }
        let key = SigningKey::generate().map_err(|e| ClavisError::internal("generate device license key", e))?;
        let meta = serde_json::json!({"kid": key.kid()});
        self.vault.put(tenant_id, SecretKind::DeviceLicenseSigner, SIGNER_NAME, meta, &key.pkcs8()).await?;
        Ok(key)
    }

    async fn stored_signing_key(&self, tenant_id: TenantId) -> Result<Option<SigningKey>> {
        let Some(secret) = self.vault.get(tenant_id, SecretKind::DeviceLicenseSigner, SIGNER_NAME).await? else {
            return Ok(None);
        };
        SigningKey::from_pkcs8(&secret.value)
            .map(Some)
            .map_err(|e| ClavisError::internal("stored device license key", e))
    }

    async fn find(&self, tenant_id: TenantId, device_id: &str) -> Result<Option<devices::Model>> {
        Ok(devices::Entity::find()
            .filter(devices::Column::TenantId.eq(tenant_id.0))
            .filter(devices::Column::DeviceId.eq(device_id))
            .one(&self.db)
            .await?)
    }

    async fn get(&self, tenant_id: TenantId, device_id: &str) -> Result<devices::Model> {
        self.find(tenant_id, device_id).await?.ok_or_else(|| device_not_found(device_id))
    }

    /// Register a device key for a user (the first time, or after a reset). Answers the device and whether it was
    /// newly created.
    pub async fn register(
        &self,
        tenant: &Tenant,
        user_id: &str,
        max_devices: Option<u32>,
        device_id: &str,
        public_key: &serde_json::Value,
        name: Option<&str>,
    ) -> Result<(DeviceView, bool)> {
        validate_device_id(device_id)?;
        let jwk = jose::parse_device_jwk(public_key)
            .map_err(|e| ClavisError::field(ErrorCode::DeviceRegistrationInvalid, "public_key", e))?;
        let key_text = serde_json::to_string(&jwk).map_err(|e| ClavisError::internal("device jwk", e))?;
        let name = name.map(str::trim).filter(|n| !n.is_empty()).unwrap_or(device_id);
        if name.len() > 200 {
            return Err(registration_invalid("name must be at most 200 bytes"));
        }
        let now = Utc::now();
        if let Some(existing) = self.find(tenant.id, device_id).await? {
            if existing.user_id != user_id {
                return Err(ClavisError::new(
                    ErrorCode::DeviceAlreadyRegistered,
                    "this device id is registered for another user",
                ));
            }
            if existing.state == ACTIVE {
                if existing.public_key == key_text {
                    return Ok((existing.into(), false));
                }
                return Err(ClavisError::new(
                    ErrorCode::DeviceAlreadyRegistered,
                    "this device id is registered with another key; reset the device first",
                ));
            }
            // After a reset: the new key is the next generation.
            let mut row: devices::ActiveModel = existing.clone().into();
            row.public_key = Set(key_text);
            row.generation = Set(existing.generation.saturating_add(1));
            row.state = Set(ACTIVE.to_owned());
            row.updated_at = Set(now);
            return Ok((row.update(&self.db).await?.into(), false));
        }
        // Count and insert as one step per user: without the locks, two first registrations at once could both
        // see room for one more device.
        let _one_at_a_time = self.registrations.lock().await;
        let txn = clavis_core::db::begin_write(&self.db).await?;
        if txn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            let digest =
                clavis_core::crypto::sha256(format!("device-registration\0{}\0{user_id}", tenant.id.0).as_bytes());
            let mut key = [0u8; 8];
            key.copy_from_slice(&digest[..8]);
            txn.execute_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DatabaseBackend::Postgres,
                "SELECT pg_advisory_xact_lock($1)",
                [i64::from_be_bytes(key).into()],
            ))
            .await?;
        }
        if let Some(limit) = max_devices {
            let count = devices::Entity::find()
                .filter(devices::Column::TenantId.eq(tenant.id.0))
                .filter(devices::Column::UserId.eq(user_id))
                .count(&txn)
                .await?;
            if count >= u64::from(limit) {
                return Err(ClavisError::new(
                    ErrorCode::DeviceLimitReached,
                    format!("the user has {count} devices; the policy allows {limit}"),
                ));
            }
        }
        let row = devices::ActiveModel {
            id: Set(Uuid::new_v4()),
            tenant_id: Set(tenant.id.0),
            device_id: Set(device_id.to_owned()),
            user_id: Set(user_id.to_owned()),
            name: Set(name.to_owned()),
            public_key: Set(key_text),
            generation: Set(1),
            state: Set(ACTIVE.to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let inserted = row.insert(&txn).await?;
        txn.commit().await?;
        Ok((inserted.into(), true))
    }

    pub async fn list(&self, tenant_id: TenantId, user_id: Option<&str>) -> Result<Vec<DeviceView>> {
        let mut select = devices::Entity::find().filter(devices::Column::TenantId.eq(tenant_id.0));
        if let Some(user_id) = user_id {
            select = select.filter(devices::Column::UserId.eq(user_id));
        }
        let rows = select.order_by_asc(devices::Column::CreatedAt).all(&self.db).await?;
        Ok(rows.into_iter().map(DeviceView::from).collect())
    }

    pub async fn rename(&self, tenant_id: TenantId, device_id: &str, name: &str) -> Result<DeviceView> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(ClavisError::invalid("name", "must be 1 to 200 bytes"));
        }
        let mut row: devices::ActiveModel = self.get(tenant_id, device_id).await?.into();
        row.name = Set(name.to_owned());
        row.updated_at = Set(Utc::now());
        Ok(row.update(&self.db).await?.into())
    }

    /// Reset: revoke the current key generation; the device must register a new key.
    pub async fn reset(&self, tenant_id: TenantId, device_id: &str) -> Result<DeviceView> {
        let existing = self.get(tenant_id, device_id).await?;
        if existing.state != ACTIVE {
            return Ok(existing.into());
        }
        let txn = clavis_core::db::begin_write(&self.db).await?;
        revoke(&txn, tenant_id, &existing).await?;
        let mut row: devices::ActiveModel = existing.into();
        row.state = Set(RESET.to_owned());
        row.public_key = Set(String::new());
        row.updated_at = Set(Utc::now());
        let row = row.update(&txn).await?;
        txn.commit().await?;
        Ok(row.into())
    }

    /// Remove a device (its current generation is revoked, so its bundles stay refused offline too).
    pub async fn delete(&self, tenant_id: TenantId, device_id: &str) -> Result<()> {
        let existing = self.get(tenant_id, device_id).await?;
        let txn = clavis_core::db::begin_write(&self.db).await?;
        if existing.state == ACTIVE {
            revoke(&txn, tenant_id, &existing).await?;
        }
        device_bundles::Entity::delete_many()
            .filter(device_bundles::Column::TenantId.eq(tenant_id.0))
            .filter(device_bundles::Column::DeviceId.eq(device_id))
            .exec(&txn)
            .await?;
        devices::Entity::delete_many()
            .filter(devices::Column::TenantId.eq(tenant_id.0))
            .filter(devices::Column::Id.eq(existing.id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// A device resets itself: `proof` is a compact JWS (ES256) by its registered key over
    /// `{"device_id", "action": "reset", "iat"}`.
    pub async fn reset_by_device(&self, tenant: &Tenant, device_id: &str, proof: &str) -> Result<DeviceView> {
        let invalid = |detail: &str| ClavisError::new(ErrorCode::DeviceProofInvalid, detail.to_owned());
        let existing = self.get(tenant.id, device_id).await?;
        if existing.state != ACTIVE {
            return Err(invalid("the device has no active key (already reset)"));
        }
        let jwk = Jwk::from_bytes(existing.public_key.as_bytes())
            .map_err(|e| ClavisError::internal("stored device jwk", e))?;
        let payload = jose::verify_device_proof(&jwk, proof.trim())
            .map_err(|_| invalid("the proof is not a JWS signed by the device's registered key"))?;
        #[derive(Deserialize)]
        struct Proof {
            device_id: String,
            action: String,
            iat: i64,
        }
        let proof: Proof = serde_json::from_slice(&payload)
            .map_err(|_| invalid("the proof's payload must be {\"device_id\", \"action\", \"iat\"}"))?;
        if proof.device_id != device_id || proof.action != "reset" {
            return Err(invalid("the proof is for another device or action"));
        }
        if (Utc::now().timestamp() - proof.iat).abs() > PROOF_WINDOW_SECONDS {
            return Err(invalid("the proof's iat is more than five minutes from now"));
        }
        self.reset(tenant.id, device_id).await
    }

    /// Make, store and answer bundles for a device.
    pub async fn make_bundles(
        &self,
        tenant: &Tenant,
        public_url: &str,
        device_id: &str,
        content_ids: &[String],
        policy: Option<&Policy>,
    ) -> Result<Vec<BundleView>> {
        let request_invalid = |detail: String| ClavisError::new(ErrorCode::DeviceBundleRequestInvalid, detail);
        if content_ids.is_empty() || content_ids.len() > MAX_BUNDLE_CONTENTS {
            return Err(request_invalid(format!("content_ids must list 1 to {MAX_BUNDLE_CONTENTS} contents")));
        }
        if let Some(policy) = policy {
            policy.validate()?;
        }
        let device = self.get(tenant.id, device_id).await?;
        if device.state != ACTIVE {
            return Err(request_invalid("the device was reset and has not registered a new key yet".to_owned()));
        }
        let device_key =
            Jwk::from_bytes(device.public_key.as_bytes()).map_err(|e| ClavisError::internal("stored device jwk", e))?;
        let signing = self.signing_key(tenant.id).await?;
        let now = Utc::now();
        let mut views = Vec::with_capacity(content_ids.len());
        for content_id in content_ids {
            let content = ContentId::parse_field(content_id, "content_ids")?;
            let set = self.keys.get(tenant.id, &content).await?.ok_or_else(|| {
                ClavisError::new(ErrorCode::ContentHasNoKeys, format!("content {content_id:?} has no keys"))
            })?;
            let mut effective = tenant.settings.default_policy.clone();
            if let Some(content_policy) = &set.policy {
                effective = effective.narrowed_by(content_policy);
            }
            if let Some(policy) = policy {
                effective = effective.narrowed_by(policy);
            }
            let seconds = match effective.license_seconds_at(now) {
                Some(0) => {
                    return Err(ClavisError::new(ErrorCode::PolicyExpired, "the policy's expires_at has passed"));
                }
                Some(seconds) => seconds,
                None => DEFAULT_BUNDLE_SECONDS,
            };
            let exp = now + chrono::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX / 2).min(i64::MAX / 2));
            let keys: Vec<_> =
                set.keys.iter().filter(|k| effective.allows_track(k.track_type)).map(|k| (k.kid, *k.key)).collect();
            if keys.is_empty() {
                return Err(request_invalid(format!("the policy allows none of content {content_id:?}'s tracks")));
            }
            let session_type = if effective.allows_persistence() {
                crate::clearkey::SessionType::PersistentLicense
            } else {
                crate::clearkey::SessionType::Temporary
            };
            let license = crate::clearkey::encode_license(&keys, session_type)?;
            let claims = BundleClaims {
                iss: tenant.site_id.to_string(),
                sub: device_id.to_owned(),
                generation: device.generation,
                content_id: content_id.clone(),
                license: serde_json::from_slice(&license).map_err(|e| ClavisError::internal("bundle license", e))?,
                policy: effective,
                iat: now.timestamp(),
                exp: exp.timestamp(),
            };
            let payload = zeroize::Zeroizing::new(
                serde_json::to_vec(&claims).map_err(|e| ClavisError::internal("bundle claims", e))?,
            );
            let jws = signing.sign(&payload, jose::BUNDLE_TYP).map_err(|e| ClavisError::internal("sign bundle", e))?;
            let jwe = jose::encrypt_to_device(&device_key, jws.as_bytes())
                .map_err(|e| ClavisError::internal("encrypt bundle", e))?;
            self.store_bundle(tenant.id, device_id, content_id, device.generation, &jwe, exp).await?;
            views.push(BundleView {
                content_id: content_id.clone(),
                device_id: device_id.to_owned(),
                generation: device.generation,
                expires_at: exp,
                url: bundle_url(public_url, tenant.site_id, device_id, content_id),
                jwe,
            });
        }
        Ok(views)
    }

    async fn store_bundle(
        &self,
        tenant_id: TenantId,
        device_id: &str,
        content_id: &str,
        generation: i32,
        jwe: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let txn = clavis_core::db::begin_write(&self.db).await?;
        device_bundles::Entity::delete_many()
            .filter(device_bundles::Column::TenantId.eq(tenant_id.0))
            .filter(device_bundles::Column::DeviceId.eq(device_id))
            .filter(device_bundles::Column::ContentId.eq(content_id))
            .exec(&txn)
            .await?;
        device_bundles::ActiveModel {
            id: Set(Uuid::new_v4()),
            tenant_id: Set(tenant_id.0),
            device_id: Set(device_id.to_owned()),
            content_id: Set(content_id.to_owned()),
            generation: Set(generation),
            jwe: Set(jwe.to_owned()),
            expires_at: Set(expires_at),
            created_at: Set(Utc::now()),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// A stored bundle, refused when its device was reset since or it expired.
    pub async fn stored_bundle(&self, tenant_id: TenantId, device_id: &str, content_id: &str) -> Result<String> {
        let device = self.get(tenant_id, device_id).await?;
        let bundle = device_bundles::Entity::find()
            .filter(device_bundles::Column::TenantId.eq(tenant_id.0))
            .filter(device_bundles::Column::DeviceId.eq(device_id))
            .filter(device_bundles::Column::ContentId.eq(content_id))
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                ClavisError::new(ErrorCode::DeviceBundleNotFound, "no bundle was made for this device and content")
            })?;
        if device.state != ACTIVE || bundle.generation != device.generation {
            return Err(revoked(bundle.generation));
        }
        if bundle.expires_at <= Utc::now() {
            return Err(ClavisError::new(ErrorCode::DeviceBundleExpired, "the bundle has expired"));
        }
        Ok(bundle.jwe)
    }

    /// Check a bundle's inner JWS online: signed by its tenant, for the presenting device, not expired, and for the
    /// device's current key generation.
    pub async fn check(&self, device_id: &str, jws: &str) -> Result<BundleCheck> {
        let jws = jws.trim();
        let unverified = jose::unverified_payload(jws).ok_or_else(|| bundle_invalid("not a compact JWS"))?;
        let site = unverified.get("iss").and_then(serde_json::Value::as_str).unwrap_or_default();
        let tenant = self.tenant_by_site(site).await.map_err(|_| bundle_invalid("the bundle names no known issuer"))?;
        let signing = self.signing_key(tenant.id).await?;
        let payload = jose::verify_eddsa(&signing.public_jwk(), jws, jose::BUNDLE_TYP)
            .map_err(|_| bundle_invalid("the signature does not verify with the tenant's device-license key"))?;
        let claims: BundleClaims =
            serde_json::from_slice(&payload).map_err(|_| bundle_invalid("the payload is not a bundle"))?;
        if claims.sub != device_id {
            return Err(ClavisError::new(
                ErrorCode::DeviceBundleWrongDevice,
                format!("the bundle is for device {:?}", claims.sub),
            ));
        }
        if claims.exp <= Utc::now().timestamp() {
            return Err(ClavisError::new(ErrorCode::DeviceBundleExpired, "the bundle has expired"));
        }
        let device = self.get(tenant.id, device_id).await?;
        if device.state != ACTIVE || device.generation != claims.generation {
            return Err(revoked(claims.generation));
        }
        Ok(BundleCheck {
            valid: true,
            device_id: claims.sub,
            content_id: claims.content_id,
            generation: claims.generation,
            exp: claims.exp,
        })
    }

    /// The signed revocation list (compact JWS).
    pub async fn revocation_list(&self, tenant: &Tenant) -> Result<String> {
        let rows = device_revocations::Entity::find()
            .filter(device_revocations::Column::TenantId.eq(tenant.id.0))
            .order_by_asc(device_revocations::Column::RevokedAt)
            .all(&self.db)
            .await?;
        let list = RevocationList {
            iss: tenant.site_id.to_string(),
            version: rows.len() as u64,
            iat: Utc::now().timestamp(),
            revoked: rows.into_iter().map(|r| Revoked { device_id: r.device_id, generation: r.generation }).collect(),
        };
        let payload = serde_json::to_vec(&list).map_err(|e| ClavisError::internal("revocation list", e))?;
        self.signing_key(tenant.id)
            .await?
            .sign(&payload, jose::REVOCATIONS_TYP)
            .map_err(|e| ClavisError::internal("sign revocation list", e))
    }
}

fn revoked(generation: i32) -> ClavisError {
    ClavisError::new(
        ErrorCode::DeviceBundleRevoked,
        format!("the bundle is for key generation {generation}, which was revoked by a reset"),
    )
}

async fn revoke(txn: &impl sea_orm::ConnectionTrait, tenant_id: TenantId, device: &devices::Model) -> Result<()> {
    device_revocations::ActiveModel {
        id: Set(Uuid::new_v4()),
        tenant_id: Set(tenant_id.0),
        device_id: Set(device.device_id.clone()),
        generation: Set(device.generation),
        revoked_at: Set(Utc::now()),
    }
    .insert(txn)
    .await?;
    Ok(())
}

pub fn bundle_url(public_url: &str, site_id: SiteId, device_id: &str, content_id: &str) -> String {
    let content = clavis_keys::signalling::encode_segment(content_id);
    format!("{}/license/devices/{site_id}/{device_id}/bundles/{content}", public_url.trim_end_matches('/'))
}

/// The device's current bundles (its key generation, not expired) as `(relative path, compact JWE)`, the path being
/// the one Clavis serves them at (`license/devices/{site_id}/{device_id}/bundles/{content_id}`), so a directory
/// written from them can be served by any static host under the same URLs (`clavis bundles export`).
pub async fn export_bundles(
    db: &DatabaseConnection,
    tenant: &Tenant,
    device_id: &str,
) -> Result<Vec<(String, String)>> {
    validate_device_id(device_id)?;
    let device = devices::Entity::find()
        .filter(devices::Column::TenantId.eq(tenant.id.0))
        .filter(devices::Column::DeviceId.eq(device_id))
        .one(db)
        .await?
        .ok_or_else(|| device_not_found(device_id))?;
    let now = Utc::now();
    let rows = device_bundles::Entity::find()
        .filter(device_bundles::Column::TenantId.eq(tenant.id.0))
        .filter(device_bundles::Column::DeviceId.eq(device_id))
        .filter(device_bundles::Column::Generation.eq(device.generation))
        .order_by_asc(device_bundles::Column::ContentId)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter(|row| device.state == ACTIVE && row.expires_at > now)
        .map(|row| {
            // One percent-encoded segment: a content id can never make a path outside the export directory.
            let content = clavis_keys::signalling::encode_segment(&row.content_id);
            (format!("license/devices/{}/{device_id}/bundles/{content}", tenant.site_id), row.jwe)
        })
        .collect())
}
