//! Platform support staff: their sign-in and browser sessions, the cross-tenant list they see, and the audit log of
//! what they do and look at.
//!
//! Staff are not members of any tenant: their accounts (`staff_accounts`, made by `clavis staff create`) and sessions
//! (`staff_sessions`, SHA-256 of the id only) are separate tables, so a tenant session id can never open a staff page
//! and the reverse. The tenant list is the one deliberately cross-tenant query of the platform; everything else here
//! is read per tenant id, and every audit row read by a tenant is filtered by that tenant's id.

use chrono::{DateTime, Utc};
use clavis_core::ids::TenantId;
use clavis_core::{ClavisError, ErrorCode, Result};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use secrecy::SecretString;
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::accounts::{SESSION_IDLE, SESSION_MAX, chrono_duration, hash_secret, random_secret};
use crate::entity::{staff_accounts, staff_audit, staff_sessions, tenants};
use crate::model::{Email, TenantStatus};
use crate::password;

/// A staff session's `last_seen_at` is written at most this often.
const LAST_SEEN_RESOLUTION_SECONDS: i64 = 60;
/// At most this many audit rows or tenants in one listing.
pub const MAX_LIST: u64 = 1000;

/// A signed-in platform support person.
#[derive(Clone, Debug)]
pub struct StaffMember {
    pub id: Uuid,
    pub email: String,
}

/// What a staff member did or looked at. The string form is stored and shown to tenants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditAction {
    SignIn,
    SignOut,
    /// The cross-tenant list (names no tenant).
    ViewTenants,
    /// One tenant's settings, log and refusals.
    ViewTenant,
    /// The platform-wide audit log.
    ViewAudit,
    Suspend,
    Resume,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::SignIn => "sign_in",
            AuditAction::SignOut => "sign_out",
            AuditAction::ViewTenants => "view_tenants",
            AuditAction::ViewTenant => "view_tenant",
            AuditAction::ViewAudit => "view_audit",
            AuditAction::Suspend => "suspend",
            AuditAction::Resume => "resume",
        }
    }

    /// The plain-language label the pages show for a stored action.
    pub fn label(stored: &str) -> &'static str {
        match stored {
            "sign_in" => "signed in",
            "sign_out" => "signed out",
            "view_tenants" => "viewed the list of tenants",
            "view_tenant" => "viewed the account (settings, license log, refusals)",
            "view_audit" => "viewed the audit log",
            "suspend" => "suspended the account",
            "resume" => "resumed the account",
            _ => "other",
        }
    }
}

/// One audit row.
#[derive(Clone, Debug)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub staff_email: String,
    pub tenant_id: Option<TenantId>,
    pub action: String,
    pub detail: Option<String>,
}

impl From<staff_audit::Model> for AuditEntry {
    fn from(row: staff_audit::Model) -> Self {
        AuditEntry {
            id: row.id,
            at: row.at,
            staff_email: row.staff_email,
            tenant_id: row.tenant_id.map(TenantId),
            action: row.action,
            detail: row.detail,
        }
    }
}

/// A tenant as the staff list shows it.
#[derive(Clone, Debug)]
pub struct TenantSummary {
    pub id: TenantId,
    pub name: String,
    pub site_id: String,
    pub status: TenantStatus,
    pub created_at: DateTime<Utc>,
}

impl TenantSummary {
    fn from_row(row: tenants::Model) -> TenantSummary {
        TenantSummary {
            id: TenantId(row.id),
            name: row.name,
            site_id: row.site_id,
            status: if row.status == TenantStatus::Active.as_str() {
                TenantStatus::Active
            } else {
                TenantStatus::Suspended
            },
            created_at: row.created_at,
        }
    }
}

/// Staff sign-in, sessions, the tenant list and the audit log.
pub struct Staff {
    db: DatabaseConnection,
    /// A hash verified when the email is unknown, so that unknown and known emails take the same time.
    decoy_hash: OnceCell<String>,
}

impl Staff {
    pub fn new(db: DatabaseConnection) -> Staff {
        Staff { db, decoy_hash: OnceCell::new() }
    }

    /// Check an email and password; `None` for an unknown email or a wrong password alike.
    pub async fn sign_in(&self, email: &Email, password: SecretString) -> Result<Option<StaffMember>> {
        let row = staff_accounts::Entity::find()
            .filter(staff_accounts::Column::Email.eq(email.as_str()))
            .one(&self.db)
            .await?;
        let Some(row) = row else {
            let decoy = self
                .decoy_hash
                .get_or_try_init(|| password::hash(SecretString::from("decoy password, never valid")))
                .await?
                .clone();
            password::verify(password, decoy).await?;
            return Ok(None);
        };
        if !password::verify(password, row.password_hash.clone()).await? {
            return Ok(None);
        }
        Ok(Some(StaffMember { id: row.id, email: row.email }))
    }

    /// Start a session; returns the id for the cookie (shown only here).
    pub async fn start_session(
        &self,
        staff: &StaffMember,
        user_agent: Option<&str>,
        ip: Option<&str>,
    ) -> Result<String> {
        let id = random_secret()?;
        let now = Utc::now();
        staff_sessions::ActiveModel {
            id_hash: Set(hash_secret(&id)),
            staff_id: Set(staff.id),
            created_at: Set(now),
            last_seen_at: Set(now),
            user_agent: Set(user_agent.map(|ua| ua.chars().take(300).collect())),
            ip: Set(ip.map(str::to_owned)),
        }
        .insert(&self.db)
        .await?;
        Ok(id)
    }

    /// The staff member of a live session (same idle and absolute limits as tenant sessions).
    pub async fn session(&self, id: &str) -> Result<Option<StaffMember>> {
        if id.is_empty() || id.len() > 64 {
            return Ok(None);
        }
        let hash = hash_secret(id);
        let Some(row) = staff_sessions::Entity::find_by_id(hash.clone()).one(&self.db).await? else {
            return Ok(None);
        };
        let now = Utc::now();
        if now - row.last_seen_at > chrono_duration(SESSION_IDLE) || now - row.created_at > chrono_duration(SESSION_MAX)
        {
            staff_sessions::Entity::delete_by_id(hash).exec(&self.db).await?;
            return Ok(None);
        }
        let Some(account) = staff_accounts::Entity::find_by_id(row.staff_id).one(&self.db).await? else {
            return Ok(None);
        };
        if (now - row.last_seen_at).num_seconds() >= LAST_SEEN_RESOLUTION_SECONDS {
            staff_sessions::Entity::update_many()
                .col_expr(staff_sessions::Column::LastSeenAt, Expr::value(now))
                .filter(staff_sessions::Column::IdHash.eq(hash))
                .exec(&self.db)
                .await?;
        }
        Ok(Some(StaffMember { id: account.id, email: account.email }))
    }

    pub async fn end_session(&self, id: &str) -> Result<()> {
        staff_sessions::Entity::delete_by_id(hash_secret(id)).exec(&self.db).await?;
        Ok(())
    }

    /// Every tenant, newest first (at most [`MAX_LIST`]). Deliberately cross-tenant: only staff pages call this.
    pub async fn tenants(&self) -> Result<Vec<TenantSummary>> {
        Ok(tenants::Entity::find()
            .order_by_desc(tenants::Column::CreatedAt)
            .limit(MAX_LIST)
            .all(&self.db)
            .await?
            .into_iter()
            .map(TenantSummary::from_row)
            .collect())
    }

    /// When the tenant was created (the cached [`crate::Tenant`] does not carry it).
    pub async fn tenant_summary(&self, tenant_id: TenantId) -> Result<TenantSummary> {
        tenants::Entity::find_by_id(tenant_id.0)
            .one(&self.db)
            .await?
            .map(TenantSummary::from_row)
            .ok_or_else(|| ClavisError::new(ErrorCode::TenantNotFound, format!("no tenant with id {tenant_id}")))
    }

    /// Write an audit row. Callers write it before they show or change anything, so nothing a staff member sees
    /// or does goes unrecorded (an action that then fails leaves its attempt in the log).
    pub async fn record(
        &self,
        staff: &StaffMember,
        tenant_id: Option<TenantId>,
        action: AuditAction,
        detail: Option<&str>,
    ) -> Result<()> {
        staff_audit::ActiveModel {
            at: Set(Utc::now()),
            staff_id: Set(staff.id),
            staff_email: Set(staff.email.clone()),
            tenant_id: Set(tenant_id.map(|t| t.0)),
            action: Set(action.as_str().to_owned()),
            detail: Set(detail.map(|d| d.chars().take(1000).collect())),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// The platform-wide audit log, newest first (staff only).
    pub async fn audit_all(&self, limit: u64) -> Result<Vec<AuditEntry>> {
        Ok(staff_audit::Entity::find()
            .order_by_desc(staff_audit::Column::At)
            .order_by_desc(staff_audit::Column::Id)
            .limit(limit.clamp(1, MAX_LIST))
            .all(&self.db)
            .await?
            .into_iter()
            .map(AuditEntry::from)
            .collect())
    }
}

impl crate::Directory {
    /// The audit rows about one tenant, newest first: what the tenant itself may read (console and API).
    pub async fn staff_audit(&self, tenant_id: TenantId, limit: u64) -> Result<Vec<AuditEntry>> {
        Ok(staff_audit::Entity::find()
            .filter(staff_audit::Column::TenantId.eq(tenant_id.0))
            .order_by_desc(staff_audit::Column::At)
            .order_by_desc(staff_audit::Column::Id)
            .limit(limit.clamp(1, MAX_LIST))
            .all(&self.platform().db)
            .await?
            .into_iter()
            .map(AuditEntry::from)
            .collect())
    }
}
