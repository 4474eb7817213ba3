//! The tenant's secrets vault: one sealed value per (tenant, kind, name), with non-secret metadata beside it.
//!
//! Every credential a tenant hands Clavis (the PlayReady key seed, foreign token secrets, FairPlay credentials,
//! Widevine signers) lives here, envelope-encrypted under the master key with a context that binds it to its tenant,
//! kind and name, so a sealed value copied to another row does not open. Reads go through a short-lived cache (the
//! license path must not decrypt per request); writes through this vault invalidate it at once, and other
//! instances see a change within `CACHE_TTL`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clavis_core::ids::TenantId;
use clavis_core::{ClavisError, Platform, Result};
use moka::future::Cache;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::entity::tenant_secrets;

pub const CACHE_TTL: Duration = Duration::from_secs(10);

/// What a secret is for. The string form is stored and is part of the sealing context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SecretKind {
    /// The PlayReady key seed (raw bytes).
    KeySeed,
    /// PallyCon site key and access key (JSON).
    Pallycon,
    /// A DRMtoday merchant's shared secrets, by `kid` (JSON, one entry per tenant: the set rotates as a whole).
    Drmtoday,
    /// Axinom communication keys, by `com_key_id` (JSON, one entry per tenant: the set rotates as a whole).
    Axinom,
    /// FairPlay certificate, private key and ASk (JSON).
    FairplayCredentials,
    /// A Widevine key-server signer; the name is the signer's name.
    WidevineSigner,
    /// Callback-mode settings (URL, mode, timeout as metadata) and their HMAC shared secret (raw bytes).
    Callback,
    /// The Ed25519 key that signs device license bundles and revocation lists (PKCS#8 DER).
    DeviceLicenseSigner,
    /// The upstream Widevine license service (URL, provider as metadata) and its request signing key (JSON).
    WidevineProxy,
    /// The upstream PlayReady license server (URL as metadata) and an optional Authorization value (JSON).
    PlayreadyProxy,
}

impl SecretKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::KeySeed => "key_seed",
            SecretKind::Pallycon => "pallycon",
            SecretKind::Drmtoday => "drmtoday",
            SecretKind::Axinom => "axinom",
            SecretKind::FairplayCredentials => "fairplay",
            SecretKind::WidevineSigner => "widevine_signer",
            SecretKind::Callback => "callback",
            SecretKind::DeviceLicenseSigner => "device_license_signer",
            SecretKind::WidevineProxy => "widevine_proxy",
            SecretKind::PlayreadyProxy => "playready_proxy",
        }
    }
}

/// A secret, opened. `Debug` never shows the value; the bytes are wiped when the last holder drops it.
pub struct Secret {
    pub name: String,
    pub meta: serde_json::Value,
    pub value: Zeroizing<Vec<u8>>,
    pub updated_at: DateTime<Utc>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret").field("name", &self.name).field("meta", &self.meta).finish_non_exhaustive()
    }
}

impl Secret {
    /// The metadata, as the type it was stored from.
    pub fn meta_as<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.meta.clone()).map_err(|e| ClavisError::internal("secret meta", e))
    }

    /// The value, for secrets stored with [`SecretVault::put_json`].
    pub fn value_as<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.value).map_err(|e| ClavisError::internal("secret value", e))
    }
}

/// A secret without its value, for listings.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SecretInfo {
    pub name: String,
    pub meta: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

type CacheKey = (TenantId, SecretKind, String);

pub struct SecretVault {
    platform: Platform,
    cache: Cache<CacheKey, Option<Arc<Secret>>>,
}

fn seal_context(tenant_id: TenantId, kind: SecretKind, name: &str) -> String {
    format!("tenant_secret/{tenant_id}/{}/{name}", kind.as_str())
}

/// The vault's sealed column, for master-key rotation (`clavis master-key rotate`).
pub const SEALED: clavis_core::rekey::SealedColumn = clavis_core::rekey::SealedColumn {
    table: "tenant_secrets",
    column: "value_sealed",
    context_columns: &["tenant_id", "kind", "name"],
    context: |row| {
        let tenant: uuid::Uuid = row.try_get("", "tenant_id")?;
        let kind: String = row.try_get("", "kind")?;
        let name: String = row.try_get("", "name")?;
        Ok(format!("tenant_secret/{tenant}/{kind}/{name}"))
    },
};

impl SecretVault {
    pub fn new(platform: Platform) -> SecretVault {
        SecretVault { platform, cache: Cache::builder().max_capacity(50_000).time_to_live(CACHE_TTL).build() }
    }

    /// Store (or replace) a secret.
    pub async fn put(
        &self,
        tenant_id: TenantId,
        kind: SecretKind,
        name: &str,
        meta: serde_json::Value,
        value: &[u8],
    ) -> Result<()> {
        let now = Utc::now();
        let sealed = self.platform.master_key.seal(&seal_context(tenant_id, kind, name), value)?;
        tenant_secrets::Entity::insert(tenant_secrets::ActiveModel {
            id: Set(Uuid::new_v4()),
            tenant_id: Set(tenant_id.0),
            kind: Set(kind.as_str().to_owned()),
            name: Set(name.to_owned()),
            meta: Set(meta.to_string()),
            value_sealed: Set(sealed),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([
                tenant_secrets::Column::TenantId,
                tenant_secrets::Column::Kind,
                tenant_secrets::Column::Name,
            ])
            .update_columns([
                tenant_secrets::Column::Meta,
                tenant_secrets::Column::ValueSealed,
                tenant_secrets::Column::UpdatedAt,
            ])
            .to_owned(),
        )
        .exec_without_returning(&self.platform.db)
        .await?;
        self.cache.invalidate(&(tenant_id, kind, name.to_owned())).await;
        Ok(())
    }

    /// Store (or replace) a secret whose value and metadata are JSON documents (integration settings).
    pub async fn put_json(
        &self,
        tenant_id: TenantId,
        kind: SecretKind,
        name: &str,
        meta: &impl serde::Serialize,
        value: &impl serde::Serialize,
    ) -> Result<()> {
        let value = Zeroizing::new(serde_json::to_vec(value).map_err(|e| ClavisError::internal("secret value", e))?);
        let meta = serde_json::to_value(meta).map_err(|e| ClavisError::internal("secret meta", e))?;
        self.put(tenant_id, kind, name, meta, &value).await
    }

    /// The secret, opened, from the cache or the database.
    pub async fn get(&self, tenant_id: TenantId, kind: SecretKind, name: &str) -> Result<Option<Arc<Secret>>> {
        let key = (tenant_id, kind, name.to_owned());
        if let Some(hit) = self.cache.get(&key).await {
            return Ok(hit);
        }
        let loaded = self.load(tenant_id, kind, name).await?.map(Arc::new);
        self.cache.insert(key, loaded.clone()).await;
        Ok(loaded)
    }

    async fn load(&self, tenant_id: TenantId, kind: SecretKind, name: &str) -> Result<Option<Secret>> {
        let Some(row) = tenant_secrets::Entity::find()
            .filter(tenant_secrets::Column::TenantId.eq(tenant_id.0))
            .filter(tenant_secrets::Column::Kind.eq(kind.as_str()))
            .filter(tenant_secrets::Column::Name.eq(name))
            .one(&self.platform.db)
            .await?
        else {
            return Ok(None);
        };
        let value = self.platform.master_key.open(&seal_context(tenant_id, kind, name), &row.value_sealed)?;
        Ok(Some(Secret {
            name: row.name,
            meta: serde_json::from_str(&row.meta).map_err(|e| ClavisError::internal("secret meta", e))?,
            value,
            updated_at: row.updated_at,
        }))
    }

    /// Remove a secret; false when there was none.
    pub async fn delete(&self, tenant_id: TenantId, kind: SecretKind, name: &str) -> Result<bool> {
        let result = tenant_secrets::Entity::delete_many()
            .filter(tenant_secrets::Column::TenantId.eq(tenant_id.0))
            .filter(tenant_secrets::Column::Kind.eq(kind.as_str()))
            .filter(tenant_secrets::Column::Name.eq(name))
            .exec(&self.platform.db)
            .await?;
        self.cache.invalidate(&(tenant_id, kind, name.to_owned())).await;
        Ok(result.rows_affected > 0)
    }

    /// The tenant's secrets of one kind, without their values, by name.
    pub async fn list(&self, tenant_id: TenantId, kind: SecretKind) -> Result<Vec<SecretInfo>> {
        let rows = tenant_secrets::Entity::find()
            .filter(tenant_secrets::Column::TenantId.eq(tenant_id.0))
            .filter(tenant_secrets::Column::Kind.eq(kind.as_str()))
            .order_by_asc(tenant_secrets::Column::Name)
            .all(&self.platform.db)
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(SecretInfo {
                    meta: serde_json::from_str(&row.meta).map_err(|e| ClavisError::internal("secret meta", e))?,
                    name: row.name,
                    created_at: row.created_at,
                    updated_at: row.updated_at,
                })
            })
            .collect()
    }
}
