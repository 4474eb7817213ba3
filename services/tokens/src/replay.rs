//! Replay protection for single-use tokens (seed document 002: a message id used once, within a time window).
//!
//! A token is claimed by inserting `(tenant, format:jti)` into `used_tokens`; the primary key makes the database
//! decide, so the rule holds across every instance sharing it: of any number of concurrent uses exactly one insert
//! succeeds. A token can be refused as replayed only while it could still verify, so its row is kept until the token's
//! expiry plus the clock-skew window and swept afterwards; the expiry check, not the ledger, refuses it from then on.

use std::time::Duration;

use clavis_core::ids::TenantId;
use clavis_core::{ClavisError, ErrorCode, Result};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};

use crate::entity::used_tokens;

/// Longest `jti` remembered; longer ids are refused rather than truncated (truncation would merge ids).
pub const MAX_JTI_LEN: usize = 200;
/// How often expired entries are swept.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct ReplayGuard {
    db: DatabaseConnection,
}

impl ReplayGuard {
    pub fn new(db: DatabaseConnection) -> ReplayGuard {
        ReplayGuard { db }
    }

    /// Use the token `format:jti` of `tenant` once. `keep_until_ms` is when the token stops verifying (expiry plus
    /// skew). A second use is refused with 4011.
    pub async fn claim(&self, tenant_id: TenantId, format: &str, jti: &str, keep_until_ms: i64) -> Result<()> {
        if jti.is_empty() || jti.len() > MAX_JTI_LEN {
            return Err(ClavisError::new(
                ErrorCode::TokenMalformed,
                format!("a single-use token needs a `jti` of 1 to {MAX_JTI_LEN} characters"),
            ));
        }
        if !self.claim_once(tenant_id, &format!("{format}:{jti}"), keep_until_ms).await? {
            return Err(ClavisError::new(
                ErrorCode::TokenReplayed,
                format!("the single-use token {jti:?} was already used"),
            ));
        }
        Ok(())
    }

    /// Record `id` for the tenant once, until `keep_until_ms`: true the first time, false when it was there already.
    /// Single-use tokens (`format:jti`) and license request messages (`msg:<drm>:<digest>`) share the ledger.
    pub async fn claim_once(&self, tenant_id: TenantId, id: &str, keep_until_ms: i64) -> Result<bool> {
        let inserted = used_tokens::Entity::insert(used_tokens::ActiveModel {
            tenant_id: Set(tenant_id.0),
            token_id: Set(id.to_owned()),
            expires_at_ms: Set(keep_until_ms),
        })
        .on_conflict(
            OnConflict::columns([used_tokens::Column::TenantId, used_tokens::Column::TokenId]).do_nothing().to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        Ok(inserted > 0)
    }

    /// Whether `format:jti` of the tenant was already used (for the token inspector; the license path claims).
    pub async fn is_used(&self, tenant_id: TenantId, format: &str, jti: &str) -> Result<bool> {
        Ok(used_tokens::Entity::find()
            .filter(used_tokens::Column::TenantId.eq(tenant_id.0))
            .filter(used_tokens::Column::TokenId.eq(format!("{format}:{jti}")))
            .one(&self.db)
            .await?
            .is_some())
    }

    /// Forget tokens that can no longer verify. Returns how many were removed.
    pub async fn sweep(&self, now_ms: i64) -> Result<u64> {
        let result = used_tokens::Entity::delete_many()
            .filter(used_tokens::Column::ExpiresAtMs.lt(now_ms))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }

    /// Sweep every [`SWEEP_EVERY`] for as long as the runtime lives.
    pub fn spawn_sweeper(&self) {
        let guard = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            loop {
                tick.tick().await;
                match guard.sweep(chrono::Utc::now().timestamp_millis()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(removed = n, "swept used single-use tokens"),
                    Err(e) => tracing::warn!(error = %e.detail, "sweeping used tokens failed"),
                }
            }
        });
    }
}
