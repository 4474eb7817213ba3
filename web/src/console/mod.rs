//! The tenant console: sign-up, sign-in, sessions, API keys and the team, as server-rendered forms.
//!
//! Security choices, in one place:
//! - Sessions live in the database (`console_sessions`, SHA-256 of the id only). The cookie is HttpOnly,
//!   SameSite=Lax, and Secure when `CLAVIS_PUBLIC_URL` is https. Every sign-in makes a new id (no fixation).
//! - CSRF: no maintained crate fits actix-web 4 with database sessions, so forms carry a synchronizer token. For a
//!   signed-in member it is derived from the session id (SHA-256 over a label and the id), so it needs no storage and
//!   dies with the session. Forms used before sign-in (sign-up, login, reset) use a double-submit token: a random
//!   HttpOnly cookie that the form must repeat. Every POST checks its token in constant time before anything else.
//! - Rate limits: failed sign-ins are counted per account and per client IP; at the limit, sign-in is refused (even
//!   with the right password) until 15 minutes pass. Sign-up attempts are limited per IP. The counters are in this
//!   instance's memory (moka caches with a time-to-live), which is what a lockout window needs; behind several
//!   instances each counts on its own.

pub(crate) mod activity;
pub(crate) mod audit;
mod devices;
mod drm;
mod error_codes;
mod fairplay;
mod inspector;
mod integrations;
mod pages;
mod policies;
mod policy_form;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use clavis_core::{ClavisError, ErrorCode, Platform};
use clavis_tenant::{Accounts, Directory, Member, Role, Tenant};
use moka::sync::Cache;
use subtle::ConstantTimeEq;

use crate::mail::Mailer;

pub use pages::configure;

const SESSION_COOKIE: &str = "clavis_session";
const FORM_COOKIE: &str = "clavis_form";

pub const MAX_FAILURES_PER_ACCOUNT: u32 = 5;
pub const MAX_FAILURES_PER_IP: u32 = 20;
pub const LOCKOUT: Duration = Duration::from_secs(15 * 60);
pub const MAX_SIGNUPS_PER_IP_PER_HOUR: u32 = 20;

/// What the console pages share; one per process.
pub struct Console {
    accounts: Accounts,
    directory: Arc<Directory>,
    mailer: Mailer,
    limits: Limits,
    public_url: Arc<str>,
    secure_cookies: bool,
}

impl Console {
    pub fn new(platform: &Platform, directory: Arc<Directory>) -> Result<Console, String> {
        Ok(Console {
            accounts: Accounts::new(platform.db.clone()),
            directory,
            mailer: Mailer::from_config(&platform.config)?,
            limits: Limits::new(),
            secure_cookies: platform.public_url.starts_with("https://"),
            public_url: platform.public_url.clone(),
        })
    }

    fn cookie<'c>(&self, name: &'c str, value: String) -> Cookie<'c> {
        Cookie::build(name, value)
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure_cookies)
            .finish()
    }

    fn removal(&self, name: &'static str) -> Cookie<'static> {
        let mut cookie = self.cookie(name, String::new());
        cookie.make_removal();
        cookie
    }

    fn link(&self, path_and_query: &str) -> String {
        format!("{}{}", self.public_url, path_and_query)
    }
}

/// Failed sign-ins per account and per IP, sign-ups per IP.
struct Limits {
    failures_by_account: Cache<String, u32>,
    failures_by_ip: Cache<String, u32>,
    signups_by_ip: Cache<String, u32>,
}

impl Limits {
    fn new() -> Limits {
        Limits {
            failures_by_account: Cache::builder().max_capacity(100_000).time_to_live(LOCKOUT).build(),
            failures_by_ip: Cache::builder().max_capacity(100_000).time_to_live(LOCKOUT).build(),
            signups_by_ip: Cache::builder().max_capacity(100_000).time_to_live(Duration::from_secs(3600)).build(),
        }
    }

    fn sign_in_locked(&self, account: &str, ip: &str) -> bool {
        self.failures_by_account.get(account).unwrap_or(0) >= MAX_FAILURES_PER_ACCOUNT
            || self.failures_by_ip.get(ip).unwrap_or(0) >= MAX_FAILURES_PER_IP
    }

    fn sign_in_failed(&self, account: &str, ip: &str) {
        let bump = |cache: &Cache<String, u32>, key: &str| {
            cache.entry(key.to_owned()).and_upsert_with(|e| e.map_or(1, |v| v.into_value().saturating_add(1)));
        };
        bump(&self.failures_by_account, account);
        bump(&self.failures_by_ip, ip);
    }

    fn sign_in_succeeded(&self, account: &str) {
        self.failures_by_account.invalidate(account);
    }

    /// Count a sign-up attempt; false once the IP has made too many this hour.
    fn sign_up_allowed(&self, ip: &str) -> bool {
        let count = self
            .signups_by_ip
            .entry(ip.to_owned())
            .and_upsert_with(|e| e.map_or(1, |v| v.into_value().saturating_add(1)))
            .into_value();
        count <= MAX_SIGNUPS_PER_IP_PER_HOUR
    }
}

fn client_ip(req: &HttpRequest) -> String {
    clavis_core::http::peer_ip(req).unwrap_or_else(|| "unknown".into())
}

fn user_agent(req: &HttpRequest) -> Option<String> {
    req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The token a signed-in member's forms carry: bound to the session, useless without its cookie.
fn session_csrf(session_id: &str) -> String {
    let mut input = b"clavis console csrf\0".to_vec();
    input.extend_from_slice(session_id.as_bytes());
    hex::encode(clavis_core::crypto::sha256(&input))
}

fn tokens_match(given: &str, expected: &str) -> bool {
    !expected.is_empty() && given.as_bytes().ct_eq(expected.as_bytes()).into()
}

fn csrf_rejected() -> PageError {
    PageError(ClavisError::new(ErrorCode::CsrfRejected, "the form's security token is missing or wrong"))
}

/// The double-submit token of forms used before sign-in: the cookie's value, made when a form page is shown.
struct FormToken {
    value: String,
    /// The cookie to set when the browser had none yet.
    new_cookie: Option<Cookie<'static>>,
}

impl FormToken {
    fn for_page(console: &Console, req: &HttpRequest) -> Result<FormToken, PageError> {
        if let Some(existing) = req.cookie(FORM_COOKIE).map(|c| c.value().to_owned()).filter(|v| v.len() == 64) {
            return Ok(FormToken { value: existing, new_cookie: None });
        }
        let value = hex::encode(clavis_core::crypto::random_array::<32>()?);
        Ok(FormToken { new_cookie: Some(console.cookie(FORM_COOKIE, value.clone())), value })
    }

    /// Check a submitted anonymous form's token against the cookie.
    fn check(req: &HttpRequest, submitted: &str) -> Result<(), PageError> {
        let cookie = req.cookie(FORM_COOKIE).map(|c| c.value().to_owned()).unwrap_or_default();
        if cookie.len() == 64 && tokens_match(submitted, &cookie) { Ok(()) } else { Err(csrf_rejected()) }
    }
}

/// A signed-in member of an active tenant. Extracting it is the first line of every console handler; `require`
/// then checks the role the action needs.
pub struct SignedIn {
    pub member: Member,
    pub tenant: Arc<Tenant>,
    session_id: String,
    csrf: String,
}

impl SignedIn {
    pub fn require(&self, role: Role) -> Result<&Member, PageError> {
        if self.member.role >= role {
            Ok(&self.member)
        } else {
            Err(PageError(ClavisError::new(
                ErrorCode::RoleForbidden,
                format!("this needs the {} role or higher; you are {}", role.as_str(), self.member.role.as_str()),
            )))
        }
    }

    /// Check a submitted form's token; every POST handler calls this before acting.
    pub fn check_csrf(&self, submitted: &str) -> Result<(), PageError> {
        if tokens_match(submitted, &self.csrf) { Ok(()) } else { Err(csrf_rejected()) }
    }

    fn shell(&self) -> Shell {
        Shell {
            tenant_name: self.tenant.name.clone(),
            site_id: self.tenant.site_id.to_string(),
            email: self.member.email.clone(),
            role: self.member.role.as_str(),
            csrf: self.csrf.clone(),
        }
    }
}

/// What every signed-in page's frame shows (and the Log out form's token).
pub struct Shell {
    pub tenant_name: String,
    pub site_id: String,
    pub email: String,
    pub role: &'static str,
    pub csrf: String,
}

fn not_signed_in() -> PageError {
    PageError(ClavisError::new(ErrorCode::NotSignedIn, "sign in to use the console"))
}

impl FromRequest for SignedIn {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let console = req.app_data::<web::Data<Console>>().cloned();
        let session_id = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
        Box::pin(async move {
            let console =
                console.ok_or_else(|| PageError(ClavisError::internal("console", "console state not mounted")))?;
            let session_id = session_id.ok_or_else(not_signed_in)?;
            let (_, member) = console.accounts.session(&session_id).await?.ok_or_else(not_signed_in)?;
            let tenant = console.directory.get(member.tenant_id).await?;
            tenant.ensure_active()?;
            let csrf = session_csrf(&session_id);
            Ok(SignedIn { member, tenant, session_id, csrf })
        })
    }
}

/// A console error: an HTML page with the catalog code (and `X-Clavis-Error`), or the way to the sign-in page when
/// the session is missing.
#[derive(Debug)]
pub struct PageError(pub ClavisError);

impl From<ClavisError> for PageError {
    fn from(e: ClavisError) -> Self {
        PageError(e)
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    code: u16,
    title: &'a str,
    detail: &'a str,
    remedy: &'a str,
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        if self.0.code == ErrorCode::NotSignedIn { StatusCode::SEE_OTHER } else { self.0.code.status() }
    }

    fn error_response(&self) -> HttpResponse {
        let code = self.0.code;
        if code == ErrorCode::NotSignedIn {
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/login"))
                .insert_header((clavis_core::error::ERROR_HEADER, code.code_str()))
                .finish();
        }
        let page = ErrorPage { code: code.code(), title: code.title(), detail: &self.0.detail, remedy: code.remedy() };
        let html = page.render().unwrap_or_else(|_| format!("Error {}: {}", code.code(), code.title()));
        HttpResponse::build(code.status())
            .content_type("text/html; charset=utf-8")
            .insert_header((clavis_core::error::ERROR_HEADER, code.code_str()))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(html)
    }
}
