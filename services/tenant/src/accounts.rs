//! People of a tenant signing in to the console: password checks, single-use mailed links (verify the address,
//! reset the password, accept an invitation) and browser sessions.
//!
//! Secrets handed to browsers (session ids, link tokens) are 32 random bytes; the database keeps only their
//! SHA-256, so reading the tables gives no live session or usable link. Every query that a member's request drives
//! is scoped by the member's tenant.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use clavis_core::ids::TenantId;
use clavis_core::{ClavisError, ErrorCode, Result, crypto};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set};
use secrecy::SecretString;
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::entity::{account_tokens, console_sessions, users};
use crate::model::{Email, Role};
use crate::password;

/// A session ends after this long without a request.
pub const SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);
/// A session ends this long after sign-in, used or not.
pub const SESSION_MAX: Duration = Duration::from_secs(7 * 24 * 3600);
/// `last_seen_at` is written at most this often per session.
const LAST_SEEN_RESOLUTION_SECONDS: i64 = 60;

/// What a mailed link is for; a token redeems only for its own purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkPurpose {
    VerifyEmail,
    ResetPassword,
    Invite,
}

impl LinkPurpose {
    fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::VerifyEmail => "verify_email",
            LinkPurpose::ResetPassword => "reset_password",
            LinkPurpose::Invite => "invite",
        }
    }

    /// How long a link stays valid.
    pub fn lifetime(self) -> Duration {
        match self {
            LinkPurpose::VerifyEmail => Duration::from_secs(48 * 3600),
            LinkPurpose::ResetPassword => Duration::from_secs(3600),
            LinkPurpose::Invite => Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// A person of a tenant.
#[derive(Clone, Debug)]
pub struct Member {
    pub user_id: Uuid,
    pub tenant_id: TenantId,
    pub email: String,
    pub role: Role,
    pub verified: bool,
    pub has_password: bool,
}

impl Member {
    fn from_row(row: users::Model) -> Member {
        Member {
            user_id: row.id,
            tenant_id: TenantId(row.tenant_id),
            email: row.email,
            // An unknown stored role gets the least power: fail closed.
            role: Role::parse(&row.role).unwrap_or(Role::Viewer),
            verified: row.email_verified_at.is_some(),
            has_password: row.password_hash.is_some(),
        }
    }
}

/// One browser session as the sessions page lists it.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    /// The first hex digits of the stored hash: enough to tell sessions apart, useless to sign in.
    pub label: String,
    pub id_hash: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

/// The outcome of a sign-in attempt with a correct or wrong password.
pub enum SignIn {
    Ok(Member),
    WrongCredentials,
    NotVerified(Member),
}

pub struct Accounts {
    db: DatabaseConnection,
    /// A hash verified when the email is unknown, so that unknown and known emails take the same time.
    decoy_hash: OnceCell<String>,
}

pub(crate) fn random_secret() -> Result<String> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crypto::random_array::<32>()?))
}

pub(crate) fn hash_secret(secret: &str) -> String {
    hex::encode(crypto::sha256(secret.as_bytes()))
}

pub(crate) fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Accounts {
    pub fn new(db: DatabaseConnection) -> Accounts {
        Accounts { db, decoy_hash: OnceCell::new() }
    }

    pub async fn find_by_email(&self, email: &Email) -> Result<Option<Member>> {
        Ok(users::Entity::find()
            .filter(users::Column::Email.eq(email.as_str()))
            .one(&self.db)
            .await?
            .map(Member::from_row))
    }

    pub async fn member(&self, tenant_id: TenantId, user_id: Uuid) -> Result<Option<Member>> {
        Ok(users::Entity::find_by_id(user_id)
            .filter(users::Column::TenantId.eq(tenant_id.0))
            .one(&self.db)
            .await?
            .map(Member::from_row))
    }

    /// Check an email and password. Unknown emails cost the same argon2 work as known ones.
    pub async fn sign_in(&self, email: &Email, password: SecretString) -> Result<SignIn> {
        let row = users::Entity::find().filter(users::Column::Email.eq(email.as_str())).one(&self.db).await?;
        let stored = match row.as_ref().and_then(|r| r.password_hash.clone()) {
            Some(stored) => stored,
            None => {
                let decoy = self
                    .decoy_hash
                    .get_or_try_init(|| password::hash(SecretString::from("decoy password, never valid")))
                    .await?
                    .clone();
                password::verify(password, decoy).await?;
                return Ok(SignIn::WrongCredentials);
            }
        };
        if !password::verify(password, stored).await? {
            return Ok(SignIn::WrongCredentials);
        }
        let Some(row) = row else { return Ok(SignIn::WrongCredentials) };
        let member = Member::from_row(row);
        if !member.verified {
            return Ok(SignIn::NotVerified(member));
        }
        Ok(SignIn::Ok(member))
    }

    /// Make a single-use link token for `member`; the caller mails it.
    pub async fn issue_link(&self, member: &Member, purpose: LinkPurpose) -> Result<String> {
        let token = random_secret()?;
        let now = Utc::now();
        account_tokens::ActiveModel {
            token_hash: Set(hash_secret(&token)),
            user_id: Set(member.user_id),
            tenant_id: Set(member.tenant_id.0),
            purpose: Set(purpose.as_str().to_owned()),
            created_at: Set(now),
            expires_at: Set(now + chrono_duration(purpose.lifetime())),
            used_at: Set(None),
        }
        .insert(&self.db)
        .await?;
        Ok(token)
    }

    /// Whether a link token is currently valid for `purpose`, without using it (the reset form shows first).
    pub async fn peek_link(&self, token: &str, purpose: LinkPurpose) -> Result<Member> {
        let row = account_tokens::Entity::find_by_id(hash_secret(token))
            .filter(account_tokens::Column::Purpose.eq(purpose.as_str()))
            .filter(account_tokens::Column::UsedAt.is_null())
            .filter(account_tokens::Column::ExpiresAt.gt(Utc::now()))
            .one(&self.db)
            .await?
            .ok_or_else(link_invalid)?;
        self.member(TenantId(row.tenant_id), row.user_id).await?.ok_or_else(link_invalid)
    }

    /// Use a link token: valid once, for its purpose, before it expires. The update is conditional, so two
    /// concurrent visits cannot both succeed.
    pub async fn redeem_link(&self, token: &str, purpose: LinkPurpose) -> Result<Member> {
        let hash = hash_secret(token);
        let now = Utc::now();
        let row = account_tokens::Entity::find_by_id(hash.clone())
            .filter(account_tokens::Column::Purpose.eq(purpose.as_str()))
            .one(&self.db)
            .await?
            .ok_or_else(link_invalid)?;
        let used = account_tokens::Entity::update_many()
            .col_expr(account_tokens::Column::UsedAt, Expr::value(now))
            .filter(account_tokens::Column::TokenHash.eq(hash))
            .filter(account_tokens::Column::UsedAt.is_null())
            .filter(account_tokens::Column::ExpiresAt.gt(now))
            .exec(&self.db)
            .await?;
        if used.rows_affected != 1 {
            return Err(link_invalid());
        }
        self.member(TenantId(row.tenant_id), row.user_id).await?.ok_or_else(link_invalid)
    }

    pub async fn mark_verified(&self, member: &Member) -> Result<()> {
        users::Entity::update_many()
            .col_expr(users::Column::EmailVerifiedAt, Expr::value(Utc::now()))
            .filter(users::Column::Id.eq(member.user_id))
            .filter(users::Column::TenantId.eq(member.tenant_id.0))
            .filter(users::Column::EmailVerifiedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Set a new password and end every session of the member (a reset must lock out whoever had the old one).
    pub async fn set_password(&self, member: &Member, password: SecretString) -> Result<()> {
        password::check_strength(&password)?;
        let hash = password::hash(password).await?;
        users::Entity::update_many()
            .col_expr(users::Column::PasswordHash, Expr::value(hash))
            .filter(users::Column::Id.eq(member.user_id))
            .filter(users::Column::TenantId.eq(member.tenant_id.0))
            .exec(&self.db)
            .await?;
        self.end_all_sessions(member).await
    }

    /// Start a session; returns the id for the cookie (shown only here).
    pub async fn start_session(&self, member: &Member, user_agent: Option<&str>, ip: Option<&str>) -> Result<String> {
        let id = random_secret()?;
        let now = Utc::now();
        console_sessions::ActiveModel {
            id_hash: Set(hash_secret(&id)),
            user_id: Set(member.user_id),
            tenant_id: Set(member.tenant_id.0),
            created_at: Set(now),
            last_seen_at: Set(now),
            user_agent: Set(user_agent.map(|ua| ua.chars().take(300).collect())),
            ip: Set(ip.map(str::to_owned)),
        }
        .insert(&self.db)
        .await?;
        Ok(id)
    }

    /// The live session with this cookie value and its member, refreshing its last-seen time now and then.
    pub async fn session(&self, id: &str) -> Result<Option<(SessionInfo, Member)>> {
        if id.is_empty() || id.len() > 64 {
            return Ok(None);
        }
        let hash = hash_secret(id);
        let Some(row) = console_sessions::Entity::find_by_id(hash.clone()).one(&self.db).await? else {
            return Ok(None);
        };
        let now = Utc::now();
        if now - row.last_seen_at > chrono_duration(SESSION_IDLE) || now - row.created_at > chrono_duration(SESSION_MAX)
        {
            console_sessions::Entity::delete_by_id(hash).exec(&self.db).await?;
            return Ok(None);
        }
        let Some(member) = self.member(TenantId(row.tenant_id), row.user_id).await? else { return Ok(None) };
        if (now - row.last_seen_at).num_seconds() >= LAST_SEEN_RESOLUTION_SECONDS {
            console_sessions::Entity::update_many()
                .col_expr(console_sessions::Column::LastSeenAt, Expr::value(now))
                .filter(console_sessions::Column::IdHash.eq(hash))
                .exec(&self.db)
                .await?;
        }
        Ok(Some((SessionInfo::from_row(row), member)))
    }

    pub async fn end_session(&self, id: &str) -> Result<()> {
        console_sessions::Entity::delete_by_id(hash_secret(id)).exec(&self.db).await?;
        Ok(())
    }

    pub async fn end_all_sessions(&self, member: &Member) -> Result<()> {
        console_sessions::Entity::delete_many()
            .filter(console_sessions::Column::UserId.eq(member.user_id))
            .filter(console_sessions::Column::TenantId.eq(member.tenant_id.0))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The member's live sessions, most recently used first.
    pub async fn sessions(&self, member: &Member) -> Result<Vec<SessionInfo>> {
        let idle_since = Utc::now() - chrono_duration(SESSION_IDLE);
        Ok(console_sessions::Entity::find()
            .filter(console_sessions::Column::UserId.eq(member.user_id))
            .filter(console_sessions::Column::TenantId.eq(member.tenant_id.0))
            .filter(console_sessions::Column::LastSeenAt.gt(idle_since))
            .order_by_desc(console_sessions::Column::LastSeenAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(SessionInfo::from_row)
            .collect())
    }

    /// The tenant's members, by email.
    pub async fn members(&self, tenant_id: TenantId) -> Result<Vec<Member>> {
        Ok(users::Entity::find()
            .filter(users::Column::TenantId.eq(tenant_id.0))
            .order_by_asc(users::Column::Email)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Member::from_row)
            .collect())
    }

    /// Change a member's role. The owner's role stays (an account has one owner), and no one becomes owner here.
    pub async fn set_role(&self, tenant_id: TenantId, user_id: Uuid, role: Role) -> Result<Member> {
        let member = self.member(tenant_id, user_id).await?.ok_or_else(member_not_found)?;
        if member.role == Role::Owner || role == Role::Owner {
            return Err(ClavisError::new(
                ErrorCode::RoleForbidden,
                "the owner's role does not change, and there is one owner",
            ));
        }
        users::Entity::update_many()
            .col_expr(users::Column::Role, Expr::value(role.as_str()))
            .filter(users::Column::Id.eq(user_id))
            .filter(users::Column::TenantId.eq(tenant_id.0))
            .exec(&self.db)
            .await?;
        Ok(Member { role, ..member })
    }

    /// Remove a member (not the owner): their account, sessions and pending links go at once.
    pub async fn remove_member(&self, tenant_id: TenantId, user_id: Uuid) -> Result<Member> {
        let member = self.member(tenant_id, user_id).await?.ok_or_else(member_not_found)?;
        if member.role == Role::Owner {
            return Err(ClavisError::new(ErrorCode::RoleForbidden, "the owner cannot be removed"));
        }
        let txn = clavis_core::db::begin_write(&self.db).await?;
        console_sessions::Entity::delete_many()
            .filter(console_sessions::Column::UserId.eq(user_id))
            .filter(console_sessions::Column::TenantId.eq(tenant_id.0))
            .exec(&txn)
            .await?;
        account_tokens::Entity::delete_many()
            .filter(account_tokens::Column::UserId.eq(user_id))
            .filter(account_tokens::Column::TenantId.eq(tenant_id.0))
            .exec(&txn)
            .await?;
        users::Entity::delete_many()
            .filter(users::Column::Id.eq(user_id))
            .filter(users::Column::TenantId.eq(tenant_id.0))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(member)
    }

    /// Add a member without a password; they set one through the invitation link.
    pub async fn invite(&self, tenant_id: TenantId, email: &Email, role: Role) -> Result<Member> {
        if role == Role::Owner {
            return Err(ClavisError::invalid("role", "invite as admin, developer or viewer; an account has one owner"));
        }
        let row = users::ActiveModel {
            id: Set(Uuid::new_v4()),
            tenant_id: Set(tenant_id.0),
            email: Set(email.as_str().to_owned()),
            password_hash: Set(None),
            role: Set(role.as_str().to_owned()),
            email_verified_at: Set(None),
            created_at: Set(Utc::now()),
        }
        .insert(&self.db)
        .await
        .map_err(|e| {
            if clavis_core::db::is_unique_violation(&e) {
                ClavisError::new(ErrorCode::MemberExists, format!("{} already has an account", email.as_str()))
            } else {
                e.into()
            }
        })?;
        Ok(Member::from_row(row))
    }
}

impl SessionInfo {
    fn from_row(row: console_sessions::Model) -> SessionInfo {
        SessionInfo {
            label: row.id_hash.chars().take(8).collect(),
            id_hash: row.id_hash,
            created_at: row.created_at,
            last_seen_at: row.last_seen_at,
            user_agent: row.user_agent,
            ip: row.ip,
        }
    }

    /// Whether this is the session with the cookie value `id`.
    pub fn is(&self, id: &str) -> bool {
        self.id_hash == hash_secret(id)
    }
}

fn member_not_found() -> ClavisError {
    ClavisError::new(ErrorCode::MemberNotFound, "this account has no such member")
}

fn link_invalid() -> ClavisError {
    ClavisError::new(ErrorCode::LinkInvalid, "the link was already used, has expired or is not for this page")
}
