//! The license log: one row per license request, issued or denied, with the rule that decided it.
//!
//! Rows are written in batches by a background task so the request path only enqueues. A batch is flushed every
//! `FLUSH_INTERVAL` or when `BATCH_MAX` rows are waiting, and on shutdown. A crash loses at most the rows enqueued
//! since the last flush (under `FLUSH_INTERVAL` of traffic). A full queue makes requests wait rather than drop rows.

use std::time::Duration;

use clavis_core::Result;
use clavis_core::ids::TenantId;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::entity::{license_log, license_stats};

const QUEUE_CAPACITY: usize = 20_000;
const BATCH_MAX: usize = 500;
const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// The granularity of the hourly counts (`license_stats`).
pub const HOUR_MS: i64 = 3_600_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Issued,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Issued => "issued",
            Outcome::Denied => "denied",
        }
    }
}

#[derive(Clone, Debug)]
pub struct LogEntry {
    pub tenant_id: TenantId,
    pub at_ms: i64,
    pub drm: &'static str,
    pub user_id: Option<String>,
    pub content_id: Option<String>,
    pub kids: Vec<String>,
    pub outcome: Outcome,
    pub error_code: Option<u16>,
    pub rule: &'static str,
    pub detail: Option<String>,
    pub latency_us: i64,
    pub client_ip: Option<String>,
    pub origin: Option<String>,
    pub request_id: Option<String>,
    /// The device the request came from (a DRM machine id, a registered device or `X-Clavis-Device`).
    pub device_id: Option<String>,
    /// Set on requests worth a look whatever their outcome: `rollback` (the client state went backwards).
    pub flag: Option<&'static str>,
}

enum Command {
    Entry(Box<LogEntry>),
    Flush(oneshot::Sender<()>),
}

pub struct LicenseLog {
    tx: mpsc::Sender<Command>,
    db: DatabaseConnection,
}

impl LicenseLog {
    /// Start the writer task on the current tokio runtime.
    pub fn start(db: DatabaseConnection) -> LicenseLog {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(writer(db.clone(), rx));
        LicenseLog { tx, db }
    }

    pub async fn record(&self, entry: LogEntry) {
        if self.tx.send(Command::Entry(Box::new(entry))).await.is_err() {
            tracing::error!("license log writer has stopped; a log row was lost");
        }
    }

    /// Wait until everything enqueued so far is written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Command::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// The tenant's newest rows, newest first.
    pub async fn recent(&self, tenant_id: TenantId, query: &LogQuery) -> Result<Vec<LogRow>> {
        let mut select = license_log::Entity::find()
            .filter(license_log::Column::TenantId.eq(tenant_id.0))
            .order_by_desc(license_log::Column::AtMs)
            .order_by_desc(license_log::Column::Id)
            .limit(query.limit.clamp(1, 1000));
        if let Some(outcome) = query.outcome {
            select = select.filter(license_log::Column::Outcome.eq(outcome.as_str()));
        }
        if let Some(content_id) = &query.content_id {
            select = select.filter(license_log::Column::ContentId.eq(content_id.as_str()));
        }
        if let Some(user_id) = &query.user_id {
            select = select.filter(license_log::Column::UserId.eq(user_id.as_str()));
        }
        if let Some(device_id) = &query.device_id {
            select = select.filter(license_log::Column::DeviceId.eq(device_id.as_str()));
        }
        if query.flagged {
            select = select.filter(license_log::Column::Flag.is_not_null());
        }
        if let Some(since) = query.since_ms {
            select = select.filter(license_log::Column::AtMs.gte(since));
        }
        if let Some(until) = query.until_ms {
            select = select.filter(license_log::Column::AtMs.lt(until));
        }
        if let Some((at_ms, id)) = query.before {
            select = select.filter(sea_orm::Condition::any().add(license_log::Column::AtMs.lt(at_ms)).add(
                sea_orm::Condition::all().add(license_log::Column::AtMs.eq(at_ms)).add(license_log::Column::Id.lt(id)),
            ));
        }
        Ok(select.all(&self.db).await?.into_iter().map(LogRow::from).collect())
    }

    /// One of the tenant's rows by id (another tenant's id is not found).
    pub async fn row(&self, tenant_id: TenantId, id: i64) -> Result<Option<LogRow>> {
        Ok(license_log::Entity::find_by_id(id)
            .filter(license_log::Column::TenantId.eq(tenant_id.0))
            .one(&self.db)
            .await?
            .map(LogRow::from))
    }

    /// Counts of the tenant's requests since `since_ms` (from the start of its hour) per time bucket of
    /// `bucket_ms` (whole hours; the bucket's start, Unix milliseconds), DRM and outcome: the dashboard's chart and
    /// tables, summed from the hourly counts (at most a few rows per hour, however busy the tenant is).
    pub async fn activity(&self, tenant_id: TenantId, since_ms: i64, bucket_ms: i64) -> Result<Vec<Activity>> {
        // Buckets are whole hours, epoch-aligned, so they are sums of the hourly counts.
        let bucket_ms = Ord::max(bucket_ms.div_euclid(HOUR_MS), 1) * HOUR_MS;
        let rows = license_stats::Entity::find()
            .filter(license_stats::Column::TenantId.eq(tenant_id.0))
            .filter(license_stats::Column::HourMs.gte(since_ms.div_euclid(HOUR_MS) * HOUR_MS))
            .all(&self.db)
            .await?;
        let mut groups: std::collections::BTreeMap<(i64, String, bool), u64> = Default::default();
        for row in rows {
            let bucket = row.hour_ms.div_euclid(bucket_ms) * bucket_ms;
            let issued = row.outcome == Outcome::Issued.as_str();
            *groups.entry((bucket, row.drm, issued)).or_default() += u64::try_from(row.requests).unwrap_or(0);
        }
        Ok(groups
            .into_iter()
            .map(|((bucket_start_ms, drm, issued), count)| Activity { bucket_start_ms, drm, issued, count })
            .collect())
    }
}

impl LicenseLog {
    /// How many of the tenant's requests were refused with each catalog code since `since_ms` (Unix milliseconds),
    /// counted from the start of that hour, from the hourly counts.
    pub async fn refusals_by_code(&self, tenant_id: TenantId, since_ms: i64) -> Result<Vec<(u16, u64)>> {
        // Summed here rather than in SQL: PostgreSQL's SUM of a BIGINT is NUMERIC, and the rows are few.
        let rows = license_stats::Entity::find()
            .filter(license_stats::Column::TenantId.eq(tenant_id.0))
            .filter(license_stats::Column::HourMs.gte(since_ms.div_euclid(HOUR_MS) * HOUR_MS))
            .filter(license_stats::Column::ErrorCode.ne(0))
            .all(&self.db)
            .await?;
        let mut counts: std::collections::BTreeMap<u16, u64> = Default::default();
        for row in rows {
            if let Ok(code) = u16::try_from(row.error_code) {
                *counts.entry(code).or_default() += u64::try_from(row.requests).unwrap_or(0);
            }
        }
        Ok(counts.into_iter().collect())
    }
}

impl LicenseLog {
    /// When `kid` (hex) was last in a license issued for `content_id`, as Unix milliseconds. A newest-first scan of
    /// the content's issued rows (the `(tenant_id, content_id, at_ms)` index) that stops at the first row naming it.
    pub async fn key_last_issued(&self, tenant_id: TenantId, content_id: &str, kid_hex: &str) -> Result<Option<i64>> {
        // KIDs are stored as lowercase hex, which holds no LIKE wildcard.
        let kid = kid_hex.to_ascii_lowercase();
        if !kid.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let at: Option<i64> = license_log::Entity::find()
            .select_only()
            .column(license_log::Column::AtMs)
            .filter(license_log::Column::TenantId.eq(tenant_id.0))
            .filter(license_log::Column::ContentId.eq(content_id))
            .filter(license_log::Column::Outcome.eq(Outcome::Issued.as_str()))
            .filter(license_log::Column::Kids.contains(&kid))
            .order_by_desc(license_log::Column::AtMs)
            .limit(1)
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(at)
    }
}

#[derive(Debug, Default)]
pub struct LogQuery {
    pub limit: u64,
    pub outcome: Option<Outcome>,
    pub content_id: Option<String>,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    /// Only flagged rows (rollbacks).
    pub flagged: bool,
    /// Rows at or after this Unix millisecond.
    pub since_ms: Option<i64>,
    /// Rows before this Unix millisecond.
    pub until_ms: Option<i64>,
    /// Paging: only rows older than this one (its `at_ms` and `id`), in the newest-first order.
    pub before: Option<(i64, i64)>,
}

/// One group of [`LicenseLog::activity`].
#[derive(Debug, Clone)]
pub struct Activity {
    pub bucket_start_ms: i64,
    pub drm: String,
    pub issued: bool,
    pub count: u64,
}

/// A license log row as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogRow {
    pub id: i64,
    /// RFC 3339 with milliseconds.
    pub at: String,
    pub drm: String,
    pub user_id: Option<String>,
    pub content_id: Option<String>,
    pub kids: Vec<String>,
    pub outcome: String,
    pub error_code: Option<i32>,
    /// The rule that decided: `token`, `origin`, `drm`, `request`, `content`, `kids`, `persistence`, or `ok`.
    pub rule: Option<String>,
    pub detail: Option<String>,
    pub latency_us: i64,
    pub client_ip: Option<String>,
    pub origin: Option<String>,
    pub request_id: Option<String>,
    pub device_id: Option<String>,
    /// `rollback` when the client state counter went backwards.
    pub flag: Option<String>,
}

impl From<license_log::Model> for LogRow {
    fn from(row: license_log::Model) -> Self {
        LogRow {
            id: row.id,
            at: chrono::DateTime::from_timestamp_millis(row.at_ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default(),
            drm: row.drm,
            user_id: row.user_id,
            content_id: row.content_id,
            kids: row.kids.split(',').filter(|k| !k.is_empty()).map(str::to_owned).collect(),
            outcome: row.outcome,
            error_code: row.error_code,
            rule: row.rule,
            detail: row.detail,
            latency_us: row.latency_us,
            client_ip: row.client_ip,
            origin: row.origin,
            request_id: row.request_id,
            device_id: row.device_id,
            flag: row.flag,
        }
    }
}

async fn writer(db: DatabaseConnection, mut rx: mpsc::Receiver<Command>) {
    let mut commands: Vec<Command> = Vec::with_capacity(BATCH_MAX);
    let mut batch: Vec<LogEntry> = Vec::with_capacity(BATCH_MAX);
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    // Under load, rows pile up while the previous batch is written, so each receive takes many at once and no timer
    // is armed per row. When idle, the first row waits up to FLUSH_INTERVAL for company.
    while rx.recv_many(&mut commands, BATCH_MAX).await > 0 {
        if commands.len() < BATCH_MAX && !commands.iter().any(|c| matches!(c, Command::Flush(_))) {
            tokio::time::sleep(FLUSH_INTERVAL).await;
            while commands.len() < BATCH_MAX {
                match rx.try_recv() {
                    Ok(next) => commands.push(next),
                    Err(_) => break,
                }
            }
        }
        for command in commands.drain(..) {
            match command {
                Command::Entry(entry) => batch.push(*entry),
                Command::Flush(done) => waiters.push(done),
            }
        }
        if !batch.is_empty() {
            write_batch(&db, std::mem::take(&mut batch)).await;
        }
        for done in waiters.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Rows per INSERT statement. A fixed size keeps the statement text the same, so the driver's prepared-statement
/// cache serves it instead of preparing a new multi-row statement for every batch size.
const ROWS_PER_STATEMENT: usize = 50;

/// Write one batch in one transaction, retrying briefly if the database is unavailable.
async fn write_batch(db: &DatabaseConnection, batch: Vec<LogEntry>) {
    let count = batch.len();
    for attempt in 0..5u32 {
        match insert_rows(db, &batch).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(attempt, error = %e, "license log batch not written yet");
                tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(attempt))).await;
            }
        }
    }
    metrics::counter!("clavis_license_log_dropped_total").increment(count as u64);
    tracing::error!(rows = count, "license log batch dropped after retries");
}

/// The log's inserts go to sqlx directly rather than through sea-orm's value conversion: at thousands of licenses
/// a second this one statement is the platform's largest write cost, and the extra copies showed in profiles.
async fn insert_rows(db: &DatabaseConnection, batch: &[LogEntry]) -> Result<(), sea_orm::sqlx::Error> {
    match db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => insert_with(db.get_postgres_connection_pool(), batch).await,
        _ => insert_with(db.get_sqlite_connection_pool(), batch).await,
    }
}

async fn insert_with<DB>(pool: &sea_orm::sqlx::Pool<DB>, batch: &[LogEntry]) -> Result<(), sea_orm::sqlx::Error>
where
    DB: sea_orm::sqlx::Database,
    DB::Arguments: sea_orm::sqlx::IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: sea_orm::sqlx::Executor<'c, Database = DB>,
    for<'q> uuid::Uuid: sea_orm::sqlx::Encode<'q, DB> + sea_orm::sqlx::Type<DB>,
    for<'q> i64: sea_orm::sqlx::Encode<'q, DB> + sea_orm::sqlx::Type<DB>,
    for<'q> Option<i32>: sea_orm::sqlx::Encode<'q, DB> + sea_orm::sqlx::Type<DB>,
    for<'q> &'q str: sea_orm::sqlx::Encode<'q, DB> + sea_orm::sqlx::Type<DB>,
    for<'q> Option<&'q str>: sea_orm::sqlx::Encode<'q, DB> + sea_orm::sqlx::Type<DB>,
    for<'q> String: sea_orm::sqlx::Encode<'q, DB> + sea_orm::sqlx::Type<DB>,
    for<'q> i32: sea_orm::sqlx::Encode<'q, DB> + sea_orm::sqlx::Type<DB>,
{
    let mut txn = pool.begin().await?;
    for chunk in batch.chunks(ROWS_PER_STATEMENT) {
        let mut insert = sea_orm::sqlx::QueryBuilder::<DB>::new(
            "INSERT INTO license_log (tenant_id, at_ms, drm, user_id, content_id, kids, outcome, error_code, rule, \
             detail, latency_us, client_ip, origin, request_id, device_id, flag) ",
        );
        insert.push_values(chunk, |mut row, entry| {
            row.push_bind(entry.tenant_id.0)
                .push_bind(entry.at_ms)
                .push_bind(entry.drm)
                .push_bind(entry.user_id.as_deref())
                .push_bind(entry.content_id.as_deref())
                .push_bind(entry.kids.join(","))
                .push_bind(entry.outcome.as_str())
                .push_bind(entry.error_code.map(i32::from))
                .push_bind(entry.rule)
                .push_bind(entry.detail.as_deref())
                .push_bind(entry.latency_us)
                .push_bind(entry.client_ip.as_deref())
                .push_bind(entry.origin.as_deref())
                .push_bind(entry.request_id.as_deref())
                .push_bind(entry.device_id.as_deref())
                .push_bind(entry.flag);
        });
        insert.build().execute(&mut *txn).await?;
    }
    // The hourly counts, in the same transaction: a batch is counted exactly when its rows are written.
    let mut counts: std::collections::BTreeMap<(uuid::Uuid, i64, &str, &str, i32), i64> = Default::default();
    for entry in batch {
        let hour = entry.at_ms.div_euclid(HOUR_MS) * HOUR_MS;
        let code = entry.error_code.map_or(0, i32::from);
        *counts.entry((entry.tenant_id.0, hour, entry.drm, entry.outcome.as_str(), code)).or_default() += 1;
    }
    let counts: Vec<_> = counts.into_iter().collect();
    for chunk in counts.chunks(ROWS_PER_STATEMENT) {
        let mut upsert = sea_orm::sqlx::QueryBuilder::<DB>::new(
            "INSERT INTO license_stats (tenant_id, hour_ms, drm, outcome, error_code, requests) ",
        );
        upsert.push_values(chunk, |mut row, ((tenant, hour, drm, outcome, code), n)| {
            row.push_bind(*tenant).push_bind(*hour).push_bind(*drm).push_bind(*outcome).push_bind(*code).push_bind(*n);
        });
        upsert.push(
            " ON CONFLICT (tenant_id, hour_ms, drm, outcome, error_code) \
             DO UPDATE SET requests = license_stats.requests + excluded.requests",
        );
        upsert.build().execute(&mut *txn).await?;
    }
    txn.commit().await
}
