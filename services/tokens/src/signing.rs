//! Per-tenant token signing keys: created on first use, sealed at rest, held decrypted in a cache.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use clavis_core::crypto;
use clavis_core::ids::TenantId;
use clavis_core::{ClavisError, Platform, Result};
use jsonwebtoken::EncodingKey;
use moka::future::Cache;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use uuid::Uuid;

use crate::entity::token_signing_keys;

const CACHE_TTL: Duration = Duration::from_secs(60);
/// An unknown `kid` reloads the tenant's keys (another instance may have rotated) at most this often.
const RELOAD_AFTER: Duration = Duration::from_secs(5);
const ALGORITHM_HS256: &str = "HS256";
const STATUS_ACTIVE: &str = "active";

pub struct SigningKey {
    pub kid: String,
    pub encoding: EncodingKey,
    /// The same secret, ready for verification (building an HMAC key per request is measurable).
    pub hmac: ring::hmac::Key,
}

pub struct TenantKeys {
    /// The newest active key: new tokens are signed with it.
    pub current: Arc<SigningKey>,
    pub by_kid: HashMap<String, Arc<SigningKey>>,
    loaded_at: Instant,
}

pub struct SigningKeys {
    platform: Platform,
    cache: Cache<TenantId, Arc<TenantKeys>>,
}

fn seal_context(tenant_id: TenantId, kid: &str) -> String {
    format!("token_key/{tenant_id}/{kid}")
}

impl SigningKeys {
    pub fn new(platform: Platform) -> SigningKeys {
        SigningKeys { platform, cache: Cache::builder().max_capacity(100_000).time_to_live(CACHE_TTL).build() }
    }

    pub async fn for_tenant(&self, tenant_id: TenantId) -> Result<Arc<TenantKeys>> {
        if let Some(keys) = self.cache.get(&tenant_id).await {
            return Ok(keys);
        }
        self.cache.try_get_with(tenant_id, self.load_or_create(tenant_id)).await.map_err(|e| (*e).clone())
    }

    /// The key named `kid`, reloading once if this instance may not have seen it yet.
    pub async fn find(&self, tenant_id: TenantId, kid: Option<&str>) -> Result<Option<Arc<SigningKey>>> {
        let keys = self.for_tenant(tenant_id).await?;
        let Some(kid) = kid else { return Ok(Some(keys.current.clone())) };
        if let Some(key) = keys.by_kid.get(kid) {
            return Ok(Some(key.clone()));
        }
        if keys.loaded_at.elapsed() < RELOAD_AFTER {
            return Ok(None);
        }
        self.cache.invalidate(&tenant_id).await;
        Ok(self.for_tenant(tenant_id).await?.by_kid.get(kid).cloned())
    }

    async fn load_or_create(&self, tenant_id: TenantId) -> Result<Arc<TenantKeys>> {
        if let Some(keys) = self.load(tenant_id).await? {
            return Ok(keys);
        }
        self.create(tenant_id).await?;
        self.load(tenant_id).await?.ok_or_else(|| ClavisError::internal("signing keys", "created key not readable"))
    }

    async fn load(&self, tenant_id: TenantId) -> Result<Option<Arc<TenantKeys>>> {
        let rows = token_signing_keys::Entity::find()
            .filter(token_signing_keys::Column::TenantId.eq(tenant_id.0))
            .filter(token_signing_keys::Column::Status.eq(STATUS_ACTIVE))
            .order_by_desc(token_signing_keys::Column::CreatedAt)
            .all(&self.platform.db)
            .await?;
        let mut by_kid = HashMap::new();
        let mut current = None;
        for row in rows {
            let secret = self.platform.master_key.open(&seal_context(tenant_id, &row.kid), &row.secret_sealed)?;
            let key = Arc::new(SigningKey {
                kid: row.kid.clone(),
                encoding: EncodingKey::from_secret(&secret),
                hmac: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret),
            });
            current.get_or_insert_with(|| key.clone());
            by_kid.insert(row.kid, key);
        }
        Ok(current.map(|current| Arc::new(TenantKeys { current, by_kid, loaded_at: Instant::now() })))
    }

    async fn create(&self, tenant_id: TenantId) -> Result<()> {
        let secret = zeroize::Zeroizing::new(crypto::random_array::<32>()?);
        let kid = format!("hs-{}", hex::encode(crypto::random_array::<6>()?));
        token_signing_keys::ActiveModel {
            id: Set(Uuid::new_v4()),
            tenant_id: Set(tenant_id.0),
            kid: Set(kid.clone()),
            algorithm: Set(ALGORITHM_HS256.to_owned()),
            secret_sealed: Set(self.platform.master_key.seal(&seal_context(tenant_id, &kid), &*secret)?),
            status: Set(STATUS_ACTIVE.to_owned()),
            created_at: Set(Utc::now()),
        }
        .insert(&self.platform.db)
        .await?;
        tracing::info!(tenant_id = %tenant_id, kid, "token signing key created");
        Ok(())
    }
}
