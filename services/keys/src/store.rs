//! The key store: making, importing and reading content keys, and the cached path the license service reads.
//!
//! Content keys are sealed under the master key in the database (context `content_key/<tenant>/<kid>`) and held
//! decrypted only in a bounded in-memory cache, so a license request neither queries nor decrypts. A content's keys
//! never change once made, so a cached set can only be missing, never wrong; the TTL bounds how long a deleted
//! content's keys could outlive it in another instance's memory.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use clavis_core::crypto;
use clavis_core::db::is_unique_violation;
use clavis_core::ids::{ContentId, Kid, TenantId, TrackType};
use clavis_core::policy::Policy;
use clavis_core::{ClavisError, ErrorCode, Platform, Result};
use moka::future::Cache;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use uuid::Uuid;
use zeroize::Zeroizing;

use clavis_tenant::SecretVault;

use crate::entity::{content_keys, contents};
use crate::model::{ContentKey, ContentKeySet, KeyPlan, KeySource};

mod slots;
pub use slots::KeySlot;

pub const CACHE_TTL: Duration = Duration::from_secs(300);
const CACHE_CAPACITY: u64 = 200_000;

pub struct KeyStore {
    platform: Platform,
    vault: Arc<SecretVault>,
    cache: Cache<(TenantId, ContentId), Arc<ContentKeySet>>,
    /// Bumped by every write to a content's keys, before its cache entry is dropped. A cache fill that began under an
    /// older value may have read the database before that write committed: its set must not be kept (moka would
    /// otherwise store it after the invalidation, and every later reader, the writer included, would see a set that
    /// lacks the new keys until the TTL).
    writes: std::sync::atomic::AtomicU64,
}

/// Why a cache fill produced nothing: not an error to cache.
#[derive(Clone)]
enum Miss {
    Absent,
    /// The fill raced a write; its answer is not kept (the caller reads afresh).
    Stale,
    Failed(ClavisError),
}

fn seal_context(tenant_id: TenantId, kid: &Kid) -> String {
    format!("content_key/{tenant_id}/{kid}")
}

/// The row that stores `key` (sealed) as the content's key number `ordinal`.
fn key_row(
    master_key: &crypto::MasterKey,
    tenant_id: TenantId,
    content_ref: Uuid,
    ordinal: i32,
    key: &ContentKey,
    now: chrono::DateTime<Utc>,
) -> Result<content_keys::ActiveModel> {
    Ok(content_keys::ActiveModel {
        id: Set(Uuid::new_v4()),
        tenant_id: Set(tenant_id.0),
        content_ref: Set(content_ref),
        ordinal: Set(ordinal),
        track_type: Set(key.track_type.as_str().to_owned()),
        kid: Set(key.kid.to_hex()),
        key_sealed: Set(master_key.seal(&seal_context(tenant_id, &key.kid), &*key.key)?),
        iv: Set(hex::encode(key.iv)),
        source: Set(key.source.as_str().to_owned()),
        created_at: Set(now),
        period_index: Set(key.period.map(i64::from)),
    })
}

/// The content-key column, for master-key rotation (`clavis master-key rotate`).
pub const SEALED: clavis_core::rekey::SealedColumn = clavis_core::rekey::SealedColumn {
    table: "content_keys",
    column: "key_sealed",
    context_columns: &["tenant_id", "kid"],
    context: |row| {
        let tenant: Uuid = row.try_get("", "tenant_id")?;
        let kid: String = row.try_get("", "kid")?;
        Ok(format!("content_key/{tenant}/{kid}"))
    },
};

impl KeyStore {
    pub fn new(platform: Platform, vault: Arc<SecretVault>) -> KeyStore {
        KeyStore {
            platform,
            vault,
            cache: Cache::builder().max_capacity(CACHE_CAPACITY).time_to_live(CACHE_TTL).build(),
            writes: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Drop the content's cached keys after a write committed, so the next read sees it.
    async fn forget(&self, tenant_id: TenantId, content_id: &ContentId) {
        self.writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.cache.invalidate(&(tenant_id, content_id.clone())).await;
    }

    /// The base URL license URLs in signalling data start with.
    pub fn public_url(&self) -> std::sync::Arc<str> {
        self.platform.public_url.clone()
    }

    /// Make (or import) the content's keys unless it has some, and return the content's keys either way.
    /// The boolean says whether this call created them.
    pub async fn ensure(
        &self,
        tenant_id: TenantId,
        content_id: ContentId,
        plan: KeyPlan,
    ) -> Result<(Arc<ContentKeySet>, bool)> {
        if let KeyPlan::Generate { .. } = plan
            && let Some(existing) = self.get(tenant_id, &content_id).await?
        {
            return Ok((existing, false));
        }
        let fresh = match &plan {
            KeyPlan::Generate { source: KeySource::KeySeed, tracks } => {
                let seed = crate::seed::load(&self.vault, tenant_id).await?.ok_or_else(|| {
                    ClavisError::new(
                        ErrorCode::KeySeedNotSet,
                        "this tenant has no PlayReady key seed; set one with PUT /api/v1/key-seed, \
                         or use \"source\": \"random\"",
                    )
                })?;
                generate(tracks, |kid| Ok(Zeroizing::new(seed.derive(kid))), KeySource::KeySeed)?
            }
            KeyPlan::Generate { source, tracks } => {
                generate(tracks, |_| Ok(Zeroizing::new(crypto::random_array()?)), *source)?
            }
            KeyPlan::Import(keys) => keys
                .iter()
                .map(|k| {
                    Ok(ContentKey {
                        track_type: k.track_type,
                        kid: k.kid,
                        key: k.key.clone(),
                        iv: match k.iv {
                            Some(iv) => iv,
                            None => crypto::random_array()?,
                        },
                        source: KeySource::Imported,
                        period: None,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        };

        match self.insert(tenant_id, &content_id, &fresh).await? {
            true => {
                let set = Arc::new(ContentKeySet { content_id: content_id.clone(), keys: fresh, policy: None });
                self.cache.insert((tenant_id, content_id), set.clone()).await;
                Ok((set, true))
            }
            false => {
                let existing = match self.load(tenant_id, &content_id).await? {
                    Some(existing) => existing,
                    // The content exists without keys (a row an earlier version left behind): give it these.
                    None => {
                        self.append_keys(tenant_id, &content_id, &fresh).await?;
                        self.forget(tenant_id, &content_id).await;
                        self.load(tenant_id, &content_id)
                            .await?
                            .ok_or_else(|| ClavisError::internal("keys", "content has no keys after adding them"))?
                    }
                };
                if let KeyPlan::Import(_) = plan
                    && !same_keys(&existing.keys, &fresh)
                {
                    return Err(ClavisError::new(
                        ErrorCode::KeysAlreadyExist,
                        format!("content {content_id:?} already has {} key(s)", existing.keys.len()),
                    ));
                }
                Ok((existing, false))
            }
        }
    }

    /// Insert the content and its keys in one transaction. False when the content already existed.
    async fn insert(&self, tenant_id: TenantId, content_id: &ContentId, keys: &[ContentKey]) -> Result<bool> {
        let now = Utc::now();
        let content_ref = Uuid::new_v4();
        let txn = clavis_core::db::begin_write(&self.platform.db).await?;
        let inserted = contents::Entity::insert(contents::ActiveModel {
            id: Set(content_ref),
            tenant_id: Set(tenant_id.0),
            content_id: Set(content_id.to_string()),
            created_at: Set(now),
            policy: Set(None),
        })
        .on_conflict(
            OnConflict::columns([contents::Column::TenantId, contents::Column::ContentId]).do_nothing().to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        if inserted == 0 {
            txn.rollback().await?;
            return Ok(false);
        }
        let rows = keys
            .iter()
            .enumerate()
            .map(|(ordinal, k)| {
                let ordinal = i32::try_from(ordinal).unwrap_or(i32::MAX);
                key_row(&self.platform.master_key, tenant_id, content_ref, ordinal, k, now)
            })
            .collect::<Result<Vec<_>>>()?;
        content_keys::Entity::insert_many(rows).exec_without_returning(&txn).await.map_err(|e| {
            if is_unique_violation(&e) {
                ClavisError::new(
                    ErrorCode::KidInUse,
                    "a KID in the request already belongs to another content of this tenant",
                )
            } else {
                e.into()
            }
        })?;
        txn.commit().await?;
        Ok(true)
    }

    /// The content's keys, decrypted, from the cache or the database. `None` when the content has none.
    pub async fn get(&self, tenant_id: TenantId, content_id: &ContentId) -> Result<Option<Arc<ContentKeySet>>> {
        let key = (tenant_id, content_id.clone());
        // A plain lookup first: moka's loading path costs several times a hit, and nearly every call is a hit.
        if let Some(set) = self.cache.get(&key).await {
            return Ok(Some(set));
        }
        let found = self
            .cache
            .try_get_with(key, async {
                let writes = self.writes.load(std::sync::atomic::Ordering::SeqCst);
                let loaded = self.load(tenant_id, content_id).await;
                if self.writes.load(std::sync::atomic::Ordering::SeqCst) != writes {
                    return Err(Miss::Stale);
                }
                match loaded {
                    Ok(Some(set)) => Ok(set),
                    Ok(None) => Err(Miss::Absent),
                    Err(e) => Err(Miss::Failed(e)),
                }
            })
            .await;
        match found {
            Ok(set) => Ok(Some(set)),
            Err(miss) => match &*miss {
                Miss::Absent => Ok(None),
                Miss::Stale => self.load(tenant_id, content_id).await,
                Miss::Failed(e) => Err(e.clone()),
            },
        }
    }

    async fn load(&self, tenant_id: TenantId, content_id: &ContentId) -> Result<Option<Arc<ContentKeySet>>> {
        let db = &self.platform.db;
        let Some(content) = find_content(db, tenant_id, content_id).await? else { return Ok(None) };
        let rows = content_keys::Entity::find()
            .filter(content_keys::Column::TenantId.eq(tenant_id.0))
            .filter(content_keys::Column::ContentRef.eq(content.id))
            .order_by_asc(content_keys::Column::Ordinal)
            .all(db)
            .await?;
        let keys = rows
            .into_iter()
            .map(|row| {
                let kid = Kid::parse_hex(&row.kid).map_err(|e| ClavisError::internal("stored kid", e))?;
                let opened = self.platform.master_key.open(&seal_context(tenant_id, &kid), &row.key_sealed)?;
                let key = <[u8; 16]>::try_from(opened.as_slice())
                    .map_err(|_| ClavisError::internal("stored key", "sealed key is not 16 bytes"))?;
                Ok(ContentKey {
                    track_type: row.track_type.parse().map_err(|e| ClavisError::internal("stored track type", e))?,
                    kid,
                    key: Zeroizing::new(key),
                    iv: clavis_core::ids::parse_hex16(&row.iv, "iv")
                        .map_err(|e| ClavisError::internal("stored iv", e))?,
                    source: KeySource::parse_stored(&row.source),
                    period: row.period_index.and_then(|p| u32::try_from(p).ok()),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if keys.is_empty() {
            // Not reachable through Clavis's own writes (a content and its first keys commit together), but a set
            // with no keys has nothing to sign or signal: treat it as no content.
            return Ok(None);
        }
        let policy = content
            .policy
            .as_deref()
            .map(serde_json::from_str::<Policy>)
            .transpose()
            .map_err(|e| ClavisError::internal("stored content policy", e))?;
        Ok(Some(Arc::new(ContentKeySet { content_id: content_id.clone(), keys, policy })))
    }

    /// Set (or clear) the content's own policy. False when the tenant has no such content.
    pub async fn set_policy(
        &self,
        tenant_id: TenantId,
        content_id: &ContentId,
        policy: Option<&Policy>,
    ) -> Result<bool> {
        let json = policy.map(serde_json::to_string).transpose().map_err(|e| ClavisError::internal("policy", e))?;
        let result = contents::Entity::update_many()
            .col_expr(contents::Column::Policy, sea_orm::sea_query::Expr::value(json))
            .filter(contents::Column::TenantId.eq(tenant_id.0))
            .filter(contents::Column::ContentId.eq(content_id.as_str()))
            .exec(&self.platform.db)
            .await?;
        self.forget(tenant_id, content_id).await;
        Ok(result.rows_affected > 0)
    }

    /// Which of the tenant's contents owns `kid`, if any (for precise refusals; not on the success path).
    pub async fn content_of_kid(&self, tenant_id: TenantId, kid: &Kid) -> Result<Option<ContentId>> {
        let db = &self.platform.db;
        let Some(key) = content_keys::Entity::find()
            .filter(content_keys::Column::TenantId.eq(tenant_id.0))
            .filter(content_keys::Column::Kid.eq(kid.to_hex()))
            .one(db)
            .await?
        else {
            return Ok(None);
        };
        let content = contents::Entity::find()
            .filter(contents::Column::TenantId.eq(tenant_id.0))
            .filter(contents::Column::Id.eq(key.content_ref))
            .one(db)
            .await?;
        content.map(|c| ContentId::parse(&c.content_id)).transpose()
    }
}

/// The id of the content's row, inserting the content when it is new (inside the caller's transaction).
async fn content_ref(db: &impl ConnectionTrait, tenant_id: TenantId, content_id: &ContentId) -> Result<Uuid> {
    contents::Entity::insert(contents::ActiveModel {
        id: Set(Uuid::new_v4()),
        tenant_id: Set(tenant_id.0),
        content_id: Set(content_id.to_string()),
        created_at: Set(Utc::now()),
        policy: Set(None),
    })
    .on_conflict(OnConflict::columns([contents::Column::TenantId, contents::Column::ContentId]).do_nothing().to_owned())
    .exec_without_returning(db)
    .await?;
    let content = find_content(db, tenant_id, content_id)
        .await?
        .ok_or_else(|| ClavisError::internal("keys", "content row missing after insert"))?;
    Ok(content.id)
}

async fn find_content(
    db: &impl ConnectionTrait,
    tenant_id: TenantId,
    content_id: &ContentId,
) -> Result<Option<contents::Model>> {
    Ok(contents::Entity::find()
        .filter(contents::Column::TenantId.eq(tenant_id.0))
        .filter(contents::Column::ContentId.eq(content_id.as_str()))
        .one(db)
        .await?)
}

/// One new key per track: a random KID and IV, the key from `key_for` (random, or derived from the KID).
fn generate(
    tracks: &[TrackType],
    key_for: impl Fn(&Kid) -> Result<Zeroizing<[u8; 16]>>,
    source: KeySource,
) -> Result<Vec<ContentKey>> {
    tracks
        .iter()
        .map(|&track_type| {
            let kid = Kid(crypto::random_array()?);
            Ok(ContentKey { track_type, key: key_for(&kid)?, kid, iv: crypto::random_array()?, source, period: None })
        })
        .collect()
}

/// Whether an import repeats exactly the keys the content already has (an idempotent retry).
fn same_keys(existing: &[ContentKey], imported: &[ContentKey]) -> bool {
    existing.len() == imported.len()
        && imported
            .iter()
            .all(|i| existing.iter().any(|e| e.kid == i.kid && *e.key == *i.key && e.track_type == i.track_type))
}

/// A key a packager asks for by its KID (SPEKE/CPIX): the packager chose the KID, Clavis the key, unless the request
/// carries a key to import.
#[derive(Debug)]
pub struct KidRequest {
    pub kid: Kid,
    pub track_type: TrackType,
    /// The IV to keep with a new key (CPIX `explicitIV`); a random one when absent. An existing key keeps its own.
    pub iv: Option<[u8; 16]>,
    /// A key value the document carries (CPIX `PlainValue`): imported when the KID is new, compared when it is not.
    pub key: Option<Zeroizing<[u8; 16]>>,
}

impl KeyStore {
    /// The content's keys for these KIDs, making the missing ones: the same tenant, content and KID always get the
    /// same key (across calls, restarts and instances, since the database's unique (tenant, KID) decides races).
    /// New keys derive from the tenant's PlayReady key seed when it has one (so a PlayReady server holding the seed
    /// finds them from the KID alone, whatever DRM systems the request named), else they are random. A KID that
    /// belongs to another content of the tenant, or to another tenant, is refused (3003). Keys come back in request
    /// order.
    pub async fn get_or_create_by_kid(
        &self,
        tenant_id: TenantId,
        content_id: &ContentId,
        requests: &[KidRequest],
    ) -> Result<Vec<ContentKey>> {
        let mut set = self.get(tenant_id, content_id).await?;
        let missing = |set: &Option<Arc<ContentKeySet>>| {
            requests.iter().filter(|r| set.as_ref().and_then(|s| s.find(&r.kid)).is_none()).collect::<Vec<_>>()
        };
        if !missing(&set).is_empty() {
            // The cache may predate keys another instance made: ask the database before making any.
            self.forget(tenant_id, content_id).await;
            set = self.get(tenant_id, content_id).await?;
        }
        let to_make = missing(&set);
        if !to_make.is_empty() {
            for request in &to_make {
                self.ensure_kid_is_free(tenant_id, &request.kid).await?;
            }
            let seed = crate::seed::load(&self.vault, tenant_id).await?;
            let fresh = to_make
                .iter()
                .map(|r| {
                    let (key, source) = match (&r.key, &seed) {
                        (Some(key), _) => (key.clone(), KeySource::Imported),
                        (None, Some(seed)) => (Zeroizing::new(seed.derive(&r.kid)), KeySource::KeySeed),
                        (None, None) => (Zeroizing::new(crypto::random_array()?), KeySource::Random),
                    };
                    let iv = match r.iv {
                        Some(iv) => iv,
                        None => crypto::random_array()?,
                    };
                    Ok(ContentKey { track_type: r.track_type, kid: r.kid, key, iv, source, period: None })
                })
                .collect::<Result<Vec<_>>>()?;
            let inserted = self.append_keys(tenant_id, content_id, &fresh).await;
            self.forget(tenant_id, content_id).await;
            match inserted {
                Ok(()) => {}
                // Another request made (some of) them first: theirs stand, as read back below.
                Err(e) if e.code == ErrorCode::KidInUse => {}
                Err(e) => return Err(e),
            }
            set = self.get(tenant_id, content_id).await?;
        }
        let set = set.ok_or_else(|| ClavisError::internal("keys", "content has no keys after making them"))?;
        requests
            .iter()
            .map(|r| {
                let key = set.find(&r.kid).ok_or_else(|| {
                    ClavisError::new(
                        ErrorCode::KidInUse,
                        format!("KID {} already belongs to another content", r.kid.to_uuid_string()),
                    )
                })?;
                if let Some(given) = &r.key
                    && **given != *key.key
                {
                    return Err(ClavisError::new(
                        ErrorCode::CpixKeyConflict,
                        format!("ContentKey {} carries a key that differs from the stored one", r.kid.to_uuid_string()),
                    ));
                }
                Ok(key.clone())
            })
            .collect()
    }

    /// Refuse a KID another content of the tenant, or another tenant, already uses. Across tenants only the fact is
    /// told, never which tenant: a packager-chosen KID that collides is either a copy-paste mistake or a probe.
    async fn ensure_kid_is_free(&self, tenant_id: TenantId, kid: &Kid) -> Result<()> {
        let owners = content_keys::Entity::find()
            .filter(content_keys::Column::Kid.eq(kid.to_hex()))
            .all(&self.platform.db)
            .await?;
        if owners.is_empty() {
            return Ok(());
        }
        let detail = if owners.iter().any(|o| o.tenant_id == tenant_id.0) {
            format!("KID {} already belongs to another content of this tenant", kid.to_uuid_string())
        } else {
            format!("KID {} is already in use; choose another KID", kid.to_uuid_string())
        };
        Err(ClavisError::new(ErrorCode::KidInUse, detail))
    }

    /// Add keys to a content (creating the content row if needed), after its existing keys, in one transaction.
    async fn append_keys(&self, tenant_id: TenantId, content_id: &ContentId, keys: &[ContentKey]) -> Result<()> {
        let now = Utc::now();
        let txn = clavis_core::db::begin_write(&self.platform.db).await?;
        let content_ref = content_ref(&txn, tenant_id, content_id).await?;
        let last = content_keys::Entity::find()
            .filter(content_keys::Column::TenantId.eq(tenant_id.0))
            .filter(content_keys::Column::ContentRef.eq(content_ref))
            .order_by_desc(content_keys::Column::Ordinal)
            .one(&txn)
            .await?
            .map_or(-1, |k| k.ordinal);
        let rows = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let ordinal = last.saturating_add(1).saturating_add(i32::try_from(i).unwrap_or(i32::MAX));
                key_row(&self.platform.master_key, tenant_id, content_ref, ordinal, k, now)
            })
            .collect::<Result<Vec<_>>>()?;
        let inserted = content_keys::Entity::insert_many(rows).exec_without_returning(&txn).await;
        match inserted {
            Ok(_) => {
                txn.commit().await?;
                Ok(())
            }
            Err(e) => {
                txn.rollback().await?;
                if is_unique_violation(&e) {
                    Err(ClavisError::new(ErrorCode::KidInUse, "a KID was made concurrently"))
                } else {
                    Err(e.into())
                }
            }
        }
    }
}
