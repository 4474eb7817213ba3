//! The license rules that remember across requests (seed documents 000, 002 and 004): device limits, concurrent
//! streams, license request replay and client state rollback. Every DRM's request passes through
//! [`Rules::admit`] after its token and keys were found and before its license is made.
//!
//! What each rule knows comes from [`RequestFacts`]: the DRM's own request where it says (the Widevine client id and
//! request id, the PlayReady license nonce and client time) and otherwise the `X-Clavis-*` request headers that an
//! application sets (the reference clients of Clavis do). A request that names no device is not counted against a
//! device limit, since there is nothing to count; the docs say so.
//!
//! Counting and inserting must be one step per user, or two first requests at once would both see room for one
//! more: each such step runs in a transaction under an in-process lock (one of [`LOCK_STRIPES`], by user) and, on
//! PostgreSQL, a per-user advisory lock, so the rule holds across instances.
//!
//! Admissions are remembered for a few seconds ([`ADMISSION_TTL`]): a playing user's repeated requests on a device
//! it already has, or renewals of a slot renewed recently, are then memory reads. Only admissions are kept (anything
//! that could be refused asks the database), and freeing a device or ending a stream forgets them on this instance
//! at once; on other instances such a device or stream is admitted for at most [`ADMISSION_TTL`] more.

use std::time::Duration;

use clavis_core::ids::{Drm, TenantId};
use clavis_core::policy::Policy;
use clavis_core::{ClavisError, ErrorCode, Result};
use clavis_tenant::ServerConfig;
use clavis_tokens::replay::ReplayGuard;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde::Serialize;

use crate::entity::{client_states, devices, license_devices, stream_slots};

/// Request headers an application sets for the rules (lower case).
pub const DEVICE_HEADER: &str = "x-clavis-device";
pub const SESSION_HEADER: &str = "x-clavis-session";
pub const MESSAGE_ID_HEADER: &str = "x-clavis-message-id";
pub const MESSAGE_TIME_HEADER: &str = "x-clavis-message-time";
pub const CLIENT_STATE_HEADER: &str = "x-clavis-client-state";
pub const CONFIG_VERSION_HEADER: &str = "x-clavis-config-version";

/// Longest device, stream and message id accepted.
pub const MAX_ID_LEN: usize = 128;
/// Per-user steps of different users seldom wait for each other.
const LOCK_STRIPES: usize = 64;
/// A device's `last_seen` is written at most this often.
const LAST_SEEN_RESOLUTION_MS: i64 = 60_000;
/// How long an admission the database confirmed is remembered (see the module docs).
pub const ADMISSION_TTL: Duration = Duration::from_secs(5);
/// Most admissions remembered at once, per kind.
const ADMISSION_CAPACITY: u64 = 200_000;
/// How often expired stream slots are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// What a license request says about its device, its stream and itself.
#[derive(Clone, Debug, Default)]
pub struct RequestFacts {
    /// The device: a DRM machine id (`widevine:<hash>`), a registered device's id, or `X-Clavis-Device`.
    pub device_id: Option<String>,
    /// The playback session: the DRM's request id or `X-Clavis-Session`. A license with a renewal interval holds
    /// a stream slot under it; a request naming an active slot renews it.
    pub stream_id: Option<String>,
    /// The DRM says this request renews an earlier license (Widevine `RENEWAL`).
    pub renewal: bool,
    /// The message's identity for replay protection.
    pub message: Option<Message>,
    /// The client state counter (`X-Clavis-Client-State`), which must never go backwards on a device.
    pub client_state: Option<u64>,
    /// The server configuration version the client holds (`X-Clavis-Config-Version`).
    pub config_version: Option<u32>,
}

/// A license request message: an id that must be used once and, when the DRM says, when it was made.
#[derive(Clone, Debug)]
pub struct Message {
    pub id: String,
    /// Unix seconds, by the client's clock.
    pub time: Option<i64>,
}

/// A device, stream or message id: 1 to 128 printable ASCII characters without spaces.
pub fn parse_id(field: &'static str, raw: &str) -> Result<String> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > MAX_ID_LEN || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ClavisError::field(
            ErrorCode::LicenseRequestMalformed,
            field,
            format!("must be 1 to {MAX_ID_LEN} printable ASCII characters without spaces"),
        ));
    }
    Ok(raw.to_owned())
}

impl RequestFacts {
    /// The facts the `X-Clavis-*` headers carry. A DRM's own facts are set over these by its handler.
    pub fn from_headers(headers: &actix_web::http::header::HeaderMap) -> Result<RequestFacts> {
        let text = |name: &'static str| -> Result<Option<&str>> {
            headers
                .get(name)
                .map(|v| {
                    v.to_str()
                        .map_err(|_| ClavisError::field(ErrorCode::LicenseRequestMalformed, name, "must be ASCII text"))
                })
                .transpose()
        };
        let number = |name: &'static str| -> Result<Option<u64>> {
            text(name)?
                .map(|v| {
                    v.trim().parse::<u64>().map_err(|_| {
                        ClavisError::field(ErrorCode::LicenseRequestMalformed, name, "must be a non-negative integer")
                    })
                })
                .transpose()
        };
        let device_id = text(DEVICE_HEADER)?.map(|v| parse_id(DEVICE_HEADER, v)).transpose()?;
        let stream_id = text(SESSION_HEADER)?.map(|v| parse_id(SESSION_HEADER, v)).transpose()?;
        let message_time = number(MESSAGE_TIME_HEADER)?.map(|t| i64::try_from(t).unwrap_or(i64::MAX));
        let message = match text(MESSAGE_ID_HEADER)? {
            Some(id) => Some(Message { id: parse_id(MESSAGE_ID_HEADER, id)?, time: message_time }),
            None if message_time.is_some() => {
                return Err(ClavisError::field(
                    ErrorCode::LicenseRequestMalformed,
                    MESSAGE_TIME_HEADER,
                    "goes with X-Clavis-Message-Id",
                ));
            }
            None => None,
        };
        let config_version = number(CONFIG_VERSION_HEADER)?.map(|v| u32::try_from(v).unwrap_or(u32::MAX));
        Ok(RequestFacts {
            device_id,
            stream_id,
            renewal: false,
            message,
            client_state: number(CLIENT_STATE_HEADER)?,
            config_version,
        })
    }
}

/// Who asks, for what, under which policy.
pub struct Subject<'a> {
    pub tenant_id: TenantId,
    pub user_id: &'a str,
    pub content_id: &'a str,
    pub drm: Drm,
    pub policy: &'a Policy,
    pub config: &'a ServerConfig,
}

/// What admission decided beyond yes: the stream slot the license holds.
#[derive(Clone, Debug, Default)]
pub struct Admission {
    /// The slot's id (the DRM's, the application's, or one Clavis made, which the answer's `X-Clavis-Session`
    /// tells the client so its renewals can name it).
    pub stream_id: Option<String>,
    /// The slot is new (not a renewal): undo it with [`Rules::release_stream`] if the license then fails.
    pub new_stream: bool,
}

/// A refusal, and whether it is one to flag in the log.
pub struct Refusal {
    pub error: ClavisError,
    pub rule: &'static str,
    pub flag: Option<&'static str>,
}

impl Refusal {
    fn new(error: ClavisError, rule: &'static str) -> Refusal {
        Refusal { error, rule, flag: None }
    }
}

impl From<sea_orm::DbErr> for Refusal {
    fn from(e: sea_orm::DbErr) -> Refusal {
        Refusal::new(e.into(), "rules")
    }
}

/// A device a user obtained licenses on, as the API and console show it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct UserDevice {
    pub device_id: String,
    /// The DRM of the first license on it.
    pub drm: String,
    pub first_seen: String,
    pub last_seen: String,
}

/// A stream slot, as the API and console show it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct StreamView {
    pub stream_id: String,
    pub content_id: String,
    pub device_id: Option<String>,
    pub drm: String,
    pub started: String,
    pub last_renewed: String,
    /// The slot frees itself at this time unless a renewal extends it.
    pub expires: String,
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// How long a stream slot lasts after a license or renewal: the renewal interval and half again (a renewal that
/// is a little late keeps its slot), at least ten seconds more. Without a renewal interval, the license duration.
fn slot_seconds(policy: &Policy) -> Option<u64> {
    match policy.renewal_interval_seconds.filter(|s| *s > 0) {
        Some(interval) => Some(interval.saturating_add(Ord::max(interval / 2, 10))),
        None => policy.license_duration_seconds.filter(|s| *s > 0),
    }
}

/// (tenant, user, device or stream id): the key of a remembered admission.
type AdmissionKey = (uuid::Uuid, String, String);

fn admission_cache<V: Clone + Send + Sync + 'static>() -> moka::sync::Cache<AdmissionKey, V> {
    moka::sync::Cache::builder().max_capacity(ADMISSION_CAPACITY).time_to_live(ADMISSION_TTL).build()
}

/// A slot this instance renewed or saw renewed.
#[derive(Clone)]
struct FreshSlot {
    renewed_ms: i64,
    device_id: Option<String>,
}

pub struct Rules {
    db: DatabaseConnection,
    replay: ReplayGuard,
    stripes: Vec<tokio::sync::Mutex<()>>,
    known_devices: moka::sync::Cache<AdmissionKey, ()>,
    fresh_slots: moka::sync::Cache<AdmissionKey, FreshSlot>,
}

impl Rules {
    pub fn new(db: DatabaseConnection, replay: ReplayGuard) -> Rules {
        Rules {
            db,
            replay,
            stripes: (0..LOCK_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            known_devices: admission_cache(),
            fresh_slots: admission_cache(),
        }
    }

    /// Every rule in order: message time, rollback, message replay, device limit, stream limit. The first refusal
    /// wins. Nothing is recorded for a message refused by time; a replay or limit refusal after the client state
    /// was recorded keeps that record (the counter only moves forward, so that is harmless).
    pub async fn admit(
        &self,
        subject: &Subject<'_>,
        facts: &RequestFacts,
        now_ms: i64,
    ) -> std::result::Result<Admission, Refusal> {
        let tolerance_ms = i64::from(subject.config.message_time_tolerance_seconds) * 1000;
        if let Some(Message { time: Some(time), .. }) = &facts.message
            && (time.saturating_mul(1000) - now_ms).abs() > tolerance_ms
        {
            return Err(Refusal::new(
                ClavisError::new(
                    ErrorCode::LicenseRequestTimeOutOfWindow,
                    format!(
                        "the request was made at {} by the client's clock, more than {} s from the server's",
                        rfc3339(time.saturating_mul(1000)),
                        subject.config.message_time_tolerance_seconds
                    ),
                ),
                "replay.time",
            ));
        }
        if subject.config.rollback_detection
            && let (Some(device), Some(counter)) = (&facts.device_id, facts.client_state)
        {
            self.record_client_state(subject.tenant_id, device, counter, now_ms).await?;
        }
        if let Some(message) = &facts.message {
            // Kept twice the window: a message can be replayed only while its time is inside the window.
            let key = format!("msg:{}:{}", subject.drm.as_str(), message.id);
            let keep_until = now_ms.saturating_add(2 * tolerance_ms);
            let first = self
                .replay
                .claim_once(subject.tenant_id, &key, keep_until)
                .await
                .map_err(|e| Refusal::new(e, "replay"))?;
            if !first {
                return Err(Refusal::new(
                    ClavisError::new(
                        ErrorCode::LicenseRequestReplayed,
                        format!("the license request message {:?} was already used", message.id),
                    ),
                    "replay.message",
                ));
            }
        }
        if let Some(device) = &facts.device_id {
            self.admit_device(subject, device, now_ms).await?;
        }
        if subject.policy.max_concurrent_streams.is_some()
            && let Some(seconds) = slot_seconds(subject.policy)
        {
            return self.hold_stream(subject, facts, seconds, now_ms).await;
        }
        Ok(Admission { stream_id: None, new_stream: false })
    }

    fn stripe(&self, tenant_id: TenantId, user_id: &str) -> &tokio::sync::Mutex<()> {
        let digest = clavis_core::crypto::sha256(format!("{}\0{user_id}", tenant_id.0).as_bytes());
        &self.stripes[usize::from(digest[0]) % LOCK_STRIPES]
    }

    /// Begin a transaction that holds the user's lock on PostgreSQL (the in-process stripe is the caller's).
    async fn user_transaction(&self, scope: &str, tenant_id: TenantId, user_id: &str) -> Result<DatabaseTransaction> {
        let txn = clavis_core::db::begin_write(&self.db).await?;
        if txn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            let digest = clavis_core::crypto::sha256(format!("{scope}\0{}\0{user_id}", tenant_id.0).as_bytes());
            let mut key = [0u8; 8];
            key.copy_from_slice(&digest[..8]);
            txn.execute_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DatabaseBackend::Postgres,
                "SELECT pg_advisory_xact_lock($1)",
                [i64::from_be_bytes(key).into()],
            ))
            .await?;
        }
        Ok(txn)
    }

    /// Keep the highest counter the device showed; refuse (and flag) one lower than that. One statement, so two
    /// requests at once cannot both pass with counters on either side of each other.
    async fn record_client_state(
        &self,
        tenant_id: TenantId,
        device_id: &str,
        counter: u64,
        now_ms: i64,
    ) -> std::result::Result<(), Refusal> {
        let counter = i64::try_from(counter).unwrap_or(i64::MAX);
        let changed = client_states::Entity::insert(client_states::ActiveModel {
            tenant_id: Set(tenant_id.0),
            device_id: Set(device_id.to_owned()),
            counter: Set(counter),
            updated_ms: Set(now_ms),
        })
        .on_conflict(
            OnConflict::columns([client_states::Column::TenantId, client_states::Column::DeviceId])
                .update_columns([client_states::Column::Counter, client_states::Column::UpdatedMs])
                .action_and_where(Expr::col((client_states::Entity, client_states::Column::Counter)).lte(counter))
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        if changed == 0 {
            let seen = client_states::Entity::find_by_id((tenant_id.0, device_id.to_owned()))
                .one(&self.db)
                .await?
                .map_or(0, |row| row.counter);
            return Err(Refusal {
                error: ClavisError::new(
                    ErrorCode::ClientStateRolledBack,
                    format!("device {device_id:?} shows client state {counter}; it showed {seen} before"),
                ),
                rule: "rollback",
                flag: Some("rollback"),
            });
        }
        Ok(())
    }

    /// A device the user already has is seen again; a new one is counted (the devices of its licenses and the
    /// user's registered devices, once each) against the policy's `max_devices`.
    async fn admit_device(
        &self,
        subject: &Subject<'_>,
        device_id: &str,
        now_ms: i64,
    ) -> std::result::Result<(), Refusal> {
        let (tenant, user) = (subject.tenant_id, subject.user_id);
        let remembered: AdmissionKey = (tenant.0, user.to_owned(), device_id.to_owned());
        if self.known_devices.contains_key(&remembered) {
            return Ok(());
        }
        // A known device is the common case: a read, and a write only when `last_seen` is stale (so licenses do not
        // queue for the database's write lock one after another).
        let known = license_devices::Entity::find_by_id(remembered.clone()).one(&self.db).await?;
        if let Some(row) = known {
            if now_ms.saturating_sub(row.last_seen_ms) >= LAST_SEEN_RESOLUTION_MS {
                license_devices::Entity::update_many()
                    .col_expr(license_devices::Column::LastSeenMs, Expr::value(now_ms))
                    .filter(license_devices::Column::TenantId.eq(tenant.0))
                    .filter(license_devices::Column::UserId.eq(user))
                    .filter(license_devices::Column::DeviceId.eq(device_id))
                    .exec(&self.db)
                    .await?;
            }
            self.known_devices.insert(remembered, ());
            return Ok(());
        }
        let _one_at_a_time = self.stripe(tenant, user).lock().await;
        let txn =
            self.user_transaction("license-devices", tenant, user).await.map_err(|e| Refusal::new(e, "devices"))?;
        let mut ids: std::collections::BTreeSet<String> = license_devices::Entity::find()
            .filter(license_devices::Column::TenantId.eq(tenant.0))
            .filter(license_devices::Column::UserId.eq(user))
            .all(&txn)
            .await?
            .into_iter()
            .map(|row| row.device_id)
            .collect();
        let registered: Vec<String> = devices::Entity::find()
            .filter(devices::Column::TenantId.eq(tenant.0))
            .filter(devices::Column::UserId.eq(user))
            .all(&txn)
            .await?
            .into_iter()
            .map(|row| row.device_id)
            .collect();
        ids.extend(registered);
        if !ids.contains(device_id)
            && let Some(limit) = subject.policy.max_devices
            && ids.len() >= limit as usize
        {
            return Err(Refusal::new(
                ClavisError::new(
                    ErrorCode::DeviceLimitReached,
                    format!(
                        "the user has licenses on {} devices; the policy allows {limit} (free one with DELETE \
                         /api/v1/users/{{user_id}}/devices/{{device_id}})",
                        ids.len()
                    ),
                ),
                "policy.max_devices",
            ));
        }
        license_devices::Entity::insert(license_devices::ActiveModel {
            tenant_id: Set(tenant.0),
            user_id: Set(user.to_owned()),
            device_id: Set(device_id.to_owned()),
            drm: Set(subject.drm.as_str().to_owned()),
            first_seen_ms: Set(now_ms),
            last_seen_ms: Set(now_ms),
        })
        .on_conflict(
            OnConflict::columns([
                license_devices::Column::TenantId,
                license_devices::Column::UserId,
                license_devices::Column::DeviceId,
            ])
            .update_column(license_devices::Column::LastSeenMs)
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        self.known_devices.insert(remembered, ());
        Ok(())
    }

    /// Renew the request's active slot, or take a new one if the user plays fewer than `max_concurrent_streams`.
    async fn hold_stream(
        &self,
        subject: &Subject<'_>,
        facts: &RequestFacts,
        seconds: u64,
        now_ms: i64,
    ) -> std::result::Result<Admission, Refusal> {
        let (tenant, user) = (subject.tenant_id, subject.user_id);
        let expires = now_ms.saturating_add(i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX));
        let stream_id = match &facts.stream_id {
            Some(id) => id.clone(),
            None => hex::encode(clavis_core::crypto::random_array::<16>().map_err(|e| Refusal::new(e, "streams"))?),
        };
        // A renewal of an active slot: extended in the database only when a sixth of the slot has passed since the
        // last extension (its expiry then still lies well over one renewal interval ahead), so renewals that come
        // faster than that are reads.
        let slot_ms = expires.saturating_sub(now_ms);
        let remembered: AdmissionKey = (tenant.0, user.to_owned(), stream_id.clone());
        let fresh = |renewed_ms: i64| now_ms.saturating_sub(renewed_ms) < slot_ms / 6;
        if self.fresh_slots.get(&remembered).is_some_and(|slot| fresh(slot.renewed_ms)) {
            return Ok(Admission { stream_id: Some(stream_id), new_stream: false });
        }
        let active = stream_slots::Entity::find_by_id(remembered.clone())
            .one(&self.db)
            .await?
            .filter(|slot| slot.expires_ms > now_ms);
        if let Some(slot) = active {
            if fresh(slot.renewed_ms) {
                self.fresh_slots
                    .insert(remembered, FreshSlot { renewed_ms: slot.renewed_ms, device_id: slot.device_id });
                return Ok(Admission { stream_id: Some(stream_id), new_stream: false });
            }
            let renewed = stream_slots::Entity::update_many()
                .col_expr(stream_slots::Column::RenewedMs, Expr::value(now_ms))
                .col_expr(stream_slots::Column::ExpiresMs, Expr::value(expires))
                .filter(stream_slots::Column::TenantId.eq(tenant.0))
                .filter(stream_slots::Column::UserId.eq(user))
                .filter(stream_slots::Column::StreamId.eq(stream_id.as_str()))
                .filter(stream_slots::Column::ExpiresMs.gt(now_ms))
                .exec(&self.db)
                .await?;
            if renewed.rows_affected > 0 {
                self.fresh_slots.insert(remembered, FreshSlot { renewed_ms: now_ms, device_id: slot.device_id });
                return Ok(Admission { stream_id: Some(stream_id), new_stream: false });
            }
            // Swept between the read and the update: it needs a slot of its own again, below.
        }
        let limit = subject.policy.max_concurrent_streams.unwrap_or(u32::MAX);
        let _one_at_a_time = self.stripe(tenant, user).lock().await;
        let txn = self.user_transaction("stream-slots", tenant, user).await.map_err(|e| Refusal::new(e, "streams"))?;
        let active = stream_slots::Entity::find()
            .filter(stream_slots::Column::TenantId.eq(tenant.0))
            .filter(stream_slots::Column::UserId.eq(user))
            .filter(stream_slots::Column::ExpiresMs.gt(now_ms))
            .filter(stream_slots::Column::StreamId.ne(stream_id.as_str()))
            .all(&txn)
            .await?;
        if active.len() >= limit as usize {
            return Err(Refusal::new(
                ClavisError::new(
                    ErrorCode::StreamLimitReached,
                    format!(
                        "the user plays {} streams ({}); the policy allows {limit}",
                        active.len(),
                        active.iter().map(|s| s.content_id.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ),
                "policy.max_concurrent_streams",
            ));
        }
        let row = stream_slots::ActiveModel {
            tenant_id: Set(tenant.0),
            user_id: Set(user.to_owned()),
            stream_id: Set(stream_id.clone()),
            content_id: Set(subject.content_id.to_owned()),
            device_id: Set(facts.device_id.clone()),
            drm: Set(subject.drm.as_str().to_owned()),
            started_ms: Set(now_ms),
            renewed_ms: Set(now_ms),
            expires_ms: Set(expires),
        };
        // An expired slot under the same id is replaced: its stream stopped and starts again.
        stream_slots::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([
                    stream_slots::Column::TenantId,
                    stream_slots::Column::UserId,
                    stream_slots::Column::StreamId,
                ])
                .update_columns([
                    stream_slots::Column::ContentId,
                    stream_slots::Column::DeviceId,
                    stream_slots::Column::Drm,
                    stream_slots::Column::StartedMs,
                    stream_slots::Column::RenewedMs,
                    stream_slots::Column::ExpiresMs,
                ])
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        self.fresh_slots.insert(remembered, FreshSlot { renewed_ms: now_ms, device_id: facts.device_id.clone() });
        Ok(Admission { stream_id: Some(stream_id), new_stream: true })
    }

    /// End a stream slot (a license that then failed, or the tenant ending it). True when there was one.
    pub async fn release_stream(&self, tenant_id: TenantId, user_id: &str, stream_id: &str) -> Result<bool> {
        let deleted = stream_slots::Entity::delete_many()
            .filter(stream_slots::Column::TenantId.eq(tenant_id.0))
            .filter(stream_slots::Column::UserId.eq(user_id))
            .filter(stream_slots::Column::StreamId.eq(stream_id))
            .exec(&self.db)
            .await?;
        self.fresh_slots.invalidate(&(tenant_id.0, user_id.to_owned(), stream_id.to_owned()));
        Ok(deleted.rows_affected > 0)
    }

    /// The devices the user obtained licenses on, most recently seen first.
    pub async fn devices(&self, tenant_id: TenantId, user_id: &str) -> Result<Vec<UserDevice>> {
        let rows = license_devices::Entity::find()
            .filter(license_devices::Column::TenantId.eq(tenant_id.0))
            .filter(license_devices::Column::UserId.eq(user_id))
            .order_by_desc(license_devices::Column::LastSeenMs)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| UserDevice {
                device_id: row.device_id,
                drm: row.drm,
                first_seen: rfc3339(row.first_seen_ms),
                last_seen: rfc3339(row.last_seen_ms),
            })
            .collect())
    }

    /// Free a device: it no longer counts against the user's limit, and its streams end. True when it was there.
    pub async fn free_device(&self, tenant_id: TenantId, user_id: &str, device_id: &str) -> Result<bool> {
        let txn = clavis_core::db::begin_write(&self.db).await?;
        let deleted = license_devices::Entity::delete_many()
            .filter(license_devices::Column::TenantId.eq(tenant_id.0))
            .filter(license_devices::Column::UserId.eq(user_id))
            .filter(license_devices::Column::DeviceId.eq(device_id))
            .exec(&txn)
            .await?;
        stream_slots::Entity::delete_many()
            .filter(stream_slots::Column::TenantId.eq(tenant_id.0))
            .filter(stream_slots::Column::UserId.eq(user_id))
            .filter(stream_slots::Column::DeviceId.eq(device_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        self.forget_device(tenant_id, user_id, device_id);
        Ok(deleted.rows_affected > 0)
    }

    /// Forget this instance's admissions of the device and of its streams (once the database no longer has them, so
    /// the next request asks it and finds them gone).
    fn forget_device(&self, tenant_id: TenantId, user_id: &str, device_id: &str) {
        self.known_devices.invalidate(&(tenant_id.0, user_id.to_owned(), device_id.to_owned()));
        let streams: Vec<AdmissionKey> = self
            .fresh_slots
            .iter()
            .filter(|(key, slot)| {
                key.0 == tenant_id.0 && key.1 == user_id && slot.device_id.as_deref() == Some(device_id)
            })
            .map(|(key, _)| (*key).clone())
            .collect();
        for key in streams {
            self.fresh_slots.invalidate(&key);
        }
    }

    /// The user's active streams, newest first.
    pub async fn streams(&self, tenant_id: TenantId, user_id: &str, now_ms: i64) -> Result<Vec<StreamView>> {
        let rows = stream_slots::Entity::find()
            .filter(stream_slots::Column::TenantId.eq(tenant_id.0))
            .filter(stream_slots::Column::UserId.eq(user_id))
            .filter(stream_slots::Column::ExpiresMs.gt(now_ms))
            .order_by_desc(stream_slots::Column::StartedMs)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| StreamView {
                stream_id: row.stream_id,
                content_id: row.content_id,
                device_id: row.device_id,
                drm: row.drm,
                started: rfc3339(row.started_ms),
                last_renewed: rfc3339(row.renewed_ms),
                expires: rfc3339(row.expires_ms),
            })
            .collect())
    }

    /// Forget expired stream slots. Returns how many were removed.
    pub async fn sweep(&self, now_ms: i64) -> Result<u64> {
        let deleted = stream_slots::Entity::delete_many()
            .filter(stream_slots::Column::ExpiresMs.lte(now_ms))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected)
    }

    /// Sweep every minute for as long as the runtime lives.
    pub fn spawn_sweeper(self: &std::sync::Arc<Self>) {
        let rules = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            loop {
                tick.tick().await;
                if let Err(e) = rules.sweep(chrono::Utc::now().timestamp_millis()).await {
                    tracing::warn!(error = %e.detail, "sweeping stream slots failed");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_outlast_a_late_renewal() {
        let policy = |renewal: Option<u64>, duration: Option<u64>| Policy {
            renewal_interval_seconds: renewal,
            license_duration_seconds: duration,
            ..Policy::default()
        };
        assert_eq!(slot_seconds(&policy(Some(60), Some(3600))), Some(90));
        assert_eq!(slot_seconds(&policy(Some(4), None)), Some(14));
        assert_eq!(slot_seconds(&policy(None, Some(600))), Some(600));
        assert_eq!(slot_seconds(&policy(Some(0), Some(0))), None);
        assert_eq!(slot_seconds(&policy(None, None)), None);
    }

    #[test]
    fn header_facts_are_parsed_and_bad_ones_named() {
        use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
        let mut headers = HeaderMap::new();
        let mut set = |name: &'static str, value: &str| {
            headers.insert(HeaderName::from_static(name), HeaderValue::from_str(value).unwrap());
        };
        set(DEVICE_HEADER, "tv-1");
        set(SESSION_HEADER, "s-9");
        set(MESSAGE_ID_HEADER, "m-1");
        set(MESSAGE_TIME_HEADER, "1700000000");
        set(CLIENT_STATE_HEADER, "42");
        set(CONFIG_VERSION_HEADER, "3");
        let facts = RequestFacts::from_headers(&headers).unwrap();
        assert_eq!(facts.device_id.as_deref(), Some("tv-1"));
        assert_eq!(facts.stream_id.as_deref(), Some("s-9"));
        assert_eq!(facts.message.as_ref().map(|m| (m.id.as_str(), m.time)), Some(("m-1", Some(1_700_000_000))));
        assert_eq!(facts.client_state, Some(42));
        assert_eq!(facts.config_version, Some(3));

        for (name, value) in [
            (CLIENT_STATE_HEADER, "-1"),
            (DEVICE_HEADER, "has space"),
            (SESSION_HEADER, &"x".repeat(129)),
            (CONFIG_VERSION_HEADER, "v2"),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(HeaderName::from_static(name), HeaderValue::from_str(value).unwrap());
            let err = RequestFacts::from_headers(&headers).unwrap_err();
            assert_eq!(err.code, ErrorCode::LicenseRequestMalformed);
            assert_eq!(err.field.as_deref(), Some(name));
        }
        let mut headers = HeaderMap::new();
        headers.insert(HeaderName::from_static(MESSAGE_TIME_HEADER), HeaderValue::from_static("5"));
        assert_eq!(RequestFacts::from_headers(&headers).unwrap_err().field.as_deref(), Some(MESSAGE_TIME_HEADER));
    }
}
