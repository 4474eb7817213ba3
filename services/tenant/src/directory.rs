//! The tenant directory: creating tenants, finding them by id, site id or API key, and changing their settings.
//!
//! Lookups are served from a short-lived in-memory cache so the license hot path does not query per request.
//! Changes made through this directory invalidate the cache at once; changes made by another instance show here
//! within `CACHE_TTL`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::Utc;
use clavis_core::crypto;
use clavis_core::db::is_unique_violation;
use clavis_core::ids::{SiteId, TenantId};
use clavis_core::{ClavisError, ErrorCode, Platform, Result};
use moka::future::Cache;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use secrecy::SecretString;
use serde::Serialize;
use uuid::Uuid;

use crate::entity::{api_keys, staff_accounts, tenants, users};
use crate::model::{Email, Role, Tenant, TenantSettings, TenantStatus};
use crate::password;

/// How long a cached tenant or API key may be stale when another instance changed it.
pub const CACHE_TTL: Duration = Duration::from_secs(10);
/// `last_used_at` of an API key is written at most this often.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;
const API_KEY_PREFIX: &str = "clv_";

/// The tenant an API key authenticated.
#[derive(Clone, Debug)]
pub struct ApiKeyIdentity {
    pub key_id: Uuid,
    pub tenant_id: TenantId,
    last_written_ms: Arc<AtomicI64>,
}

/// What `create_tenant` made. The API key is shown only here.
#[derive(Debug, Serialize)]
pub struct CreatedTenant {
    pub tenant_id: TenantId,
    pub site_id: SiteId,
    pub name: String,
    pub owner_email: String,
    pub api_key: String,
    pub api_key_id: Uuid,
}

/// An API key as the console lists it.
#[derive(Clone, Debug)]
pub struct ApiKeyInfo {
    pub id: Uuid,
    pub name: String,
    /// The key's first characters, so people can tell which key a backend uses.
    pub prefix: String,
    pub created_at: chrono::DateTime<Utc>,
    pub last_used_at: Option<chrono::DateTime<Utc>>,
    pub revoked_at: Option<chrono::DateTime<Utc>>,
}

pub struct NewTenant {
    pub name: String,
    pub email: Email,
    pub password: Option<SecretString>,
}

pub struct Directory {
    platform: Platform,
    by_id: Cache<TenantId, Arc<Tenant>>,
    by_site: Cache<SiteId, Arc<Tenant>>,
    by_key_hash: Cache<[u8; 32], ApiKeyIdentity>,
}

impl Directory {
    pub fn new(platform: Platform) -> Directory {
        Directory {
            platform,
            by_id: Cache::builder().max_capacity(100_000).time_to_live(CACHE_TTL).build(),
            by_site: Cache::builder().max_capacity(100_000).time_to_live(CACHE_TTL).build(),
            by_key_hash: Cache::builder().max_capacity(100_000).time_to_live(CACHE_TTL).build(),
        }
    }

    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// Create a tenant, its owner account and its first API key in one transaction.
    pub async fn create_tenant(&self, new: NewTenant) -> Result<CreatedTenant> {
        let name = new.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(ClavisError::invalid("name", "must be 1 to 200 characters"));
        }
        let password_hash = match new.password {
            Some(password) => {
                password::check_strength(&password)?;
                Some(password::hash(password).await?)
            }
            None => None,
        };
        // Four random letters collide now and then; retry with fresh ones.
        for _ in 0..8 {
            let site_id = SiteId::random()?;
            match self.insert_tenant(&name, site_id, &new.email, password_hash.clone()).await {
                Err(e) if e.code == ErrorCode::TenantExists => {
                    if self.email_taken(&new.email).await? {
                        return Err(e);
                    }
                }
                other => return other,
            }
        }
        Err(ClavisError::internal("create tenant", "no free site id after 8 attempts"))
    }

    async fn email_taken(&self, email: &Email) -> Result<bool> {
        Ok(users::Entity::find()
            .filter(users::Column::Email.eq(email.as_str()))
            .one(&self.platform.db)
            .await?
            .is_some())
    }

    async fn insert_tenant(
        &self,
        name: &str,
        site_id: SiteId,
        email: &Email,
        password_hash: Option<String>,
    ) -> Result<CreatedTenant> {
        let now = Utc::now();
        let tenant_id = TenantId::new();
        let settings = TenantSettings::default();
        let txn = clavis_core::db::begin_write(&self.platform.db).await?;
        let conflict = |e: sea_orm::DbErr| {
            if is_unique_violation(&e) {
                ClavisError::new(ErrorCode::TenantExists, format!("an account for {} already exists", email.as_str()))
            } else {
                e.into()
            }
        };
        tenants::ActiveModel {
            id: Set(tenant_id.0),
            name: Set(name.to_owned()),
            site_id: Set(site_id.to_string()),
            status: Set(TenantStatus::Active.as_str().to_owned()),
            default_policy: Set(serde_json::to_string(&settings.default_policy)?),
            allowed_origins: Set(serde_json::to_string(&settings.allowed_origins)?),
            clock_skew_seconds: Set(to_i32(settings.clock_skew_seconds)),
            token_ttl_seconds: Set(to_i32(settings.token_ttl_seconds)),
            server_config: Set(Some(serde_json::to_string(&settings.server_config)?)),
            created_at: Set(now),
        }
        .insert(&txn)
        .await
        .map_err(conflict)?;
        users::ActiveModel {
            id: Set(Uuid::new_v4()),
            tenant_id: Set(tenant_id.0),
            email: Set(email.as_str().to_owned()),
            password_hash: Set(password_hash),
            role: Set(Role::Owner.as_str().to_owned()),
            email_verified_at: Set(None),
            created_at: Set(now),
        }
        .insert(&txn)
        .await
        .map_err(conflict)?;
        let (api_key, api_key_id) = insert_api_key(&txn, tenant_id, "default").await?;
        txn.commit().await?;
        tracing::info!(tenant_id = %tenant_id, site_id = %site_id, "tenant created");
        Ok(CreatedTenant {
            tenant_id,
            site_id,
            name: name.to_owned(),
            owner_email: email.as_str().to_owned(),
            api_key,
            api_key_id,
        })
    }

    /// Create another API key for a tenant. The key is returned only here; the database keeps its SHA-256.
    pub async fn create_api_key(&self, tenant_id: TenantId, name: &str) -> Result<(String, Uuid)> {
        insert_api_key(&self.platform.db, tenant_id, name).await
    }

    /// The tenant's API keys (revoked ones too, so the page can show when), newest first. Never the key itself.
    pub async fn api_keys(&self, tenant_id: TenantId) -> Result<Vec<ApiKeyInfo>> {
        use sea_orm::QueryOrder;
        Ok(api_keys::Entity::find()
            .filter(api_keys::Column::TenantId.eq(tenant_id.0))
            .order_by_desc(api_keys::Column::CreatedAt)
            .all(&self.platform.db)
            .await?
            .into_iter()
            .map(|row| ApiKeyInfo {
                id: row.id,
                name: row.name,
                prefix: row.prefix,
                created_at: row.created_at,
                last_used_at: row.last_used_at,
                revoked_at: row.revoked_at,
            })
            .collect())
    }

    /// Revoke one of the tenant's keys. A key id of another tenant is "not found", exactly like an unknown one.
    pub async fn revoke_api_key(&self, tenant_id: TenantId, key_id: Uuid) -> Result<()> {
        let row = api_keys::Entity::find_by_id(key_id)
            .filter(api_keys::Column::TenantId.eq(tenant_id.0))
            .one(&self.platform.db)
            .await?
            .ok_or_else(|| ClavisError::new(ErrorCode::ApiKeyNotFound, "no such API key in this account"))?;
        if row.revoked_at.is_none() {
            api_keys::Entity::update_many()
                .col_expr(api_keys::Column::RevokedAt, sea_orm::sea_query::Expr::value(Utc::now()))
                .filter(api_keys::Column::Id.eq(key_id))
                .filter(api_keys::Column::TenantId.eq(tenant_id.0))
                .exec(&self.platform.db)
                .await?;
        }
        // This instance stops accepting the key at once; others within CACHE_TTL.
        if let Ok(hash) = <[u8; 32]>::try_from(hex::decode(&row.key_hash).unwrap_or_default().as_slice()) {
            self.by_key_hash.invalidate(&hash).await;
        }
        Ok(())
    }

    /// Create a platform support account (`clavis staff create`).
    pub async fn create_staff(&self, email: Email, password: SecretString) -> Result<Uuid> {
        password::check_strength(&password)?;
        let hash = password::hash(password).await?;
        let id = Uuid::new_v4();
        staff_accounts::ActiveModel {
            id: Set(id),
            email: Set(email.as_str().to_owned()),
            password_hash: Set(hash),
            created_at: Set(Utc::now()),
        }
        .insert(&self.platform.db)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                ClavisError::new(
                    ErrorCode::TenantExists,
                    format!("a staff account for {} already exists", email.as_str()),
                )
            } else {
                e.into()
            }
        })?;
        Ok(id)
    }

    pub async fn get(&self, id: TenantId) -> Result<Arc<Tenant>> {
        if let Some(tenant) = self.by_id.get(&id).await {
            return Ok(tenant);
        }
        let db = &self.platform.db;
        self.by_id
            .try_get_with(id, async move {
                let row = tenants::Entity::find_by_id(id.0)
                    .one(db)
                    .await?
                    .ok_or_else(|| ClavisError::new(ErrorCode::TenantNotFound, format!("no tenant with id {id}")))?;
                Tenant::from_row(row).map(Arc::new)
            })
            .await
            .map_err(|e| (*e).clone())
    }

    /// The tenant with this public site id, if any (one cache lookup: the license path calls this per request).
    pub async fn by_site_id(&self, site_id: SiteId) -> Result<Option<Arc<Tenant>>> {
        if let Some(tenant) = self.by_site.get(&site_id).await {
            return Ok(Some(tenant));
        }
        let db = &self.platform.db;
        let found = self
            .by_site
            .try_get_with(site_id, async move {
                let row = tenants::Entity::find()
                    .filter(tenants::Column::SiteId.eq(site_id.to_string()))
                    .one(db)
                    .await
                    .map_err(|e| Some(ClavisError::from(e)))?
                    .ok_or(None)?;
                Tenant::from_row(row).map(Arc::new).map_err(Some)
            })
            .await;
        match found {
            Ok(tenant) => Ok(Some(tenant)),
            Err(e) => match &*e {
                None => Ok(None),
                Some(err) => Err(err.clone()),
            },
        }
    }

    /// Forget a tenant in both caches after a change.
    async fn invalidate(&self, tenant: &Tenant) {
        self.by_id.invalidate(&tenant.id).await;
        self.by_site.invalidate(&tenant.site_id).await;
    }

    /// Resolve an API key to its tenant. Unknown and revoked keys are refused alike.
    pub async fn authenticate(&self, presented: &str) -> Result<(Arc<Tenant>, ApiKeyIdentity)> {
        let invalid = || ClavisError::new(ErrorCode::ApiKeyInvalid, "the API key is unknown or revoked");
        if !presented.starts_with(API_KEY_PREFIX) || presented.len() > 128 {
            return Err(invalid());
        }
        let hash = crypto::sha256(presented.as_bytes());
        let db = &self.platform.db;
        let identity = self
            .by_key_hash
            .try_get_with(hash, async move {
                let row = api_keys::Entity::find()
                    .filter(api_keys::Column::KeyHash.eq(hex::encode(hash)))
                    .filter(api_keys::Column::RevokedAt.is_null())
                    .one(db)
                    .await
                    .map_err(ClavisError::from)?
                    .ok_or_else(invalid)?;
                Ok::<_, ClavisError>(ApiKeyIdentity {
                    key_id: row.id,
                    tenant_id: TenantId(row.tenant_id),
                    last_written_ms: Arc::new(AtomicI64::new(row.last_used_at.map_or(0, |t| t.timestamp_millis()))),
                })
            })
            .await
            .map_err(|e| (*e).clone())?;
        self.touch_api_key(&identity);
        let tenant = self.get(identity.tenant_id).await?;
        Ok((tenant, identity))
    }

    /// Record that a key was used, at most once a minute per key, off the request path.
    fn touch_api_key(&self, identity: &ApiKeyIdentity) {
        let now = Utc::now();
        let now_ms = now.timestamp_millis();
        let last = identity.last_written_ms.load(Ordering::Relaxed);
        if now_ms - last < LAST_USED_RESOLUTION_MS
            || identity.last_written_ms.compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return;
        }
        let db = self.platform.db.clone();
        let key_id = identity.key_id;
        let tenant_id = identity.tenant_id;
        tokio::spawn(async move {
            let update = api_keys::Entity::update_many()
                .col_expr(api_keys::Column::LastUsedAt, sea_orm::sea_query::Expr::value(now))
                .filter(api_keys::Column::Id.eq(key_id))
                .filter(api_keys::Column::TenantId.eq(tenant_id.0))
                .exec(&db)
                .await;
            if let Err(e) = update {
                tracing::warn!(error = %e, "could not record API key use");
            }
        });
    }

    pub async fn update_settings(&self, tenant_id: TenantId, settings: &TenantSettings) -> Result<Arc<Tenant>> {
        tenants::Entity::update_many()
            .col_expr(
                tenants::Column::DefaultPolicy,
                sea_orm::sea_query::Expr::value(serde_json::to_string(&settings.default_policy)?),
            )
            .col_expr(
                tenants::Column::AllowedOrigins,
                sea_orm::sea_query::Expr::value(serde_json::to_string(&settings.allowed_origins)?),
            )
            .col_expr(
                tenants::Column::ClockSkewSeconds,
                sea_orm::sea_query::Expr::value(to_i32(settings.clock_skew_seconds)),
            )
            .col_expr(
                tenants::Column::TokenTtlSeconds,
                sea_orm::sea_query::Expr::value(to_i32(settings.token_ttl_seconds)),
            )
            .col_expr(
                tenants::Column::ServerConfig,
                sea_orm::sea_query::Expr::value(serde_json::to_string(&settings.server_config)?),
            )
            .filter(tenants::Column::Id.eq(tenant_id.0))
            .exec(&self.platform.db)
            .await?;
        let before = self.get(tenant_id).await?;
        self.invalidate(&before).await;
        self.get(tenant_id).await
    }

    pub async fn set_status(&self, tenant_id: TenantId, status: TenantStatus) -> Result<()> {
        tenants::Entity::update_many()
            .col_expr(tenants::Column::Status, sea_orm::sea_query::Expr::value(status.as_str()))
            .filter(tenants::Column::Id.eq(tenant_id.0))
            .exec(&self.platform.db)
            .await?;
        let before = self.get(tenant_id).await?;
        self.invalidate(&before).await;
        Ok(())
    }
}

async fn insert_api_key(db: &impl ConnectionTrait, tenant_id: TenantId, name: &str) -> Result<(String, Uuid)> {
    use base64::Engine;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ClavisError::invalid("name", "must be 1 to 100 characters"));
    }
    let secret = crypto::random_array::<32>()?;
    let key = format!("{API_KEY_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret));
    let id = Uuid::new_v4();
    api_keys::ActiveModel {
        id: Set(id),
        tenant_id: Set(tenant_id.0),
        name: Set(name.to_owned()),
        prefix: Set(key.chars().take(API_KEY_PREFIX.len() + 6).collect()),
        key_hash: Set(hex::encode(crypto::sha256(key.as_bytes()))),
        created_at: Set(Utc::now()),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok((key, id))
}

fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}
