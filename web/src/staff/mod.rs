//! The platform support console (`/staff`): a separate sign-in for staff accounts (`clavis staff create`), a
//! read-only view across tenants, suspend and resume, and an audit row for every page a staff member opens and every
//! action taken. The tenant concerned reads its rows at `/console/audit` and `GET /api/v1/audit`.
//!
//! Security choices, mirroring the tenant console (`crate::console`) but sharing none of its state:
//! - Sessions are rows of `staff_sessions` (SHA-256 of the id only) behind their own cookie, `clavis_staff_session`,
//!   scoped to `Path=/staff` and `SameSite=Strict`. A tenant member's session id is not in that table and a staff
//!   session id is not in `console_sessions`, so neither cookie opens the other console, even renamed.
//! - CSRF: a synchronizer token derived from the session id (under a label of its own, so a tenant console token
//!   never passes here) on every signed-in form; a double-submit cookie (`clavis_staff_form`) on the sign-in form.
//! - Failed sign-ins are counted per account and per IP like the tenant console's, with the same limits.

mod pages;

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use clavis_core::{ClavisError, ErrorCode, Platform};
use clavis_tenant::{Accounts, Staff, StaffMember};
use moka::sync::Cache;
use subtle::ConstantTimeEq;

use crate::console::{LOCKOUT, MAX_FAILURES_PER_ACCOUNT, MAX_FAILURES_PER_IP};

pub use pages::configure;

const SESSION_COOKIE: &str = "clavis_staff_session";
const FORM_COOKIE: &str = "clavis_staff_form";
const COOKIE_PATH: &str = "/staff";

/// What the staff pages share; one per process (the sign-in counters must see every worker's failures).
pub struct StaffConsole {
    staff: Staff,
    accounts: Accounts,
    limits: Limits,
    secure_cookies: bool,
}

impl StaffConsole {
    pub fn new(platform: &Platform) -> StaffConsole {
        StaffConsole {
            staff: Staff::new(platform.db.clone()),
            accounts: Accounts::new(platform.db.clone()),
            limits: Limits::new(),
            secure_cookies: platform.public_url.starts_with("https://"),
        }
    }

    fn cookie(&self, name: &'static str, value: String) -> Cookie<'static> {
        Cookie::build(name, value)
            .path(COOKIE_PATH)
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(self.secure_cookies)
            .finish()
    }

    fn removal(&self, name: &'static str) -> Cookie<'static> {
        let mut cookie = self.cookie(name, String::new());
        cookie.make_removal();
        cookie
    }
}

/// Failed staff sign-ins per account and per IP.
struct Limits {
    failures_by_account: Cache<String, u32>,
    failures_by_ip: Cache<String, u32>,
}

impl Limits {
    fn new() -> Limits {
        Limits {
            failures_by_account: Cache::builder().max_capacity(10_000).time_to_live(LOCKOUT).build(),
            failures_by_ip: Cache::builder().max_capacity(100_000).time_to_live(LOCKOUT).build(),
        }
    }

    fn locked(&self, account: &str, ip: &str) -> bool {
        self.failures_by_account.get(account).unwrap_or(0) >= MAX_FAILURES_PER_ACCOUNT
            || self.failures_by_ip.get(ip).unwrap_or(0) >= MAX_FAILURES_PER_IP
    }

    fn failed(&self, account: &str, ip: &str) {
        let bump = |cache: &Cache<String, u32>, key: &str| {
            cache.entry(key.to_owned()).and_upsert_with(|e| e.map_or(1, |v| v.into_value().saturating_add(1)));
        };
        bump(&self.failures_by_account, account);
        bump(&self.failures_by_ip, ip);
    }

    fn succeeded(&self, account: &str) {
        self.failures_by_account.invalidate(account);
    }
}

/// The lockout window in minutes, for messages.
fn lockout_minutes() -> u64 {
    LOCKOUT.as_secs() / 60
}

fn client_ip(req: &HttpRequest) -> String {
    clavis_core::http::peer_ip(req).unwrap_or_else(|| "unknown".into())
}

fn user_agent(req: &HttpRequest) -> Option<String> {
    req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn session_csrf(session_id: &str) -> String {
    let mut input = b"clavis staff csrf\0".to_vec();
    input.extend_from_slice(session_id.as_bytes());
    hex::encode(clavis_core::crypto::sha256(&input))
}

fn tokens_match(given: &str, expected: &str) -> bool {
    !expected.is_empty() && given.as_bytes().ct_eq(expected.as_bytes()).into()
}

fn csrf_rejected() -> StaffError {
    StaffError(ClavisError::new(ErrorCode::CsrfRejected, "the form's security token is missing or wrong"))
}

/// The double-submit token of the sign-in form.
struct FormToken {
    value: String,
    new_cookie: Option<Cookie<'static>>,
}

impl FormToken {
    fn for_page(console: &StaffConsole, req: &HttpRequest) -> Result<FormToken, StaffError> {
        if let Some(existing) = req.cookie(FORM_COOKIE).map(|c| c.value().to_owned()).filter(|v| v.len() == 64) {
            return Ok(FormToken { value: existing, new_cookie: None });
        }
        let value = hex::encode(clavis_core::crypto::random_array::<32>()?);
        Ok(FormToken { new_cookie: Some(console.cookie(FORM_COOKIE, value.clone())), value })
    }

    fn check(req: &HttpRequest, submitted: &str) -> Result<(), StaffError> {
        let cookie = req.cookie(FORM_COOKIE).map(|c| c.value().to_owned()).unwrap_or_default();
        if cookie.len() == 64 && tokens_match(submitted, &cookie) { Ok(()) } else { Err(csrf_rejected()) }
    }
}

/// A signed-in staff member; the first extractor of every staff page but the sign-in form.
pub struct StaffSignedIn {
    pub staff: StaffMember,
    session_id: String,
    csrf: String,
}

impl StaffSignedIn {
    /// Check a submitted form's token; every POST handler calls this before acting.
    fn check_csrf(&self, submitted: &str) -> Result<(), StaffError> {
        if tokens_match(submitted, &self.csrf) { Ok(()) } else { Err(csrf_rejected()) }
    }

    fn shell(&self) -> StaffShell {
        StaffShell { email: self.staff.email.clone(), csrf: self.csrf.clone() }
    }
}

/// What every signed-in staff page's frame shows (and the Log out form's token).
pub struct StaffShell {
    pub email: String,
    pub csrf: String,
}

fn not_signed_in() -> StaffError {
    StaffError(ClavisError::new(ErrorCode::NotSignedIn, "sign in to the support console at /staff/login"))
}

impl FromRequest for StaffSignedIn {
    type Error = StaffError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let console = req.app_data::<web::Data<StaffConsole>>().cloned();
        let session_id = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
        Box::pin(async move {
            let console =
                console.ok_or_else(|| StaffError(ClavisError::internal("staff", "staff console state not mounted")))?;
            let session_id = session_id.ok_or_else(not_signed_in)?;
            let staff = console.staff.session(&session_id).await?.ok_or_else(not_signed_in)?;
            let csrf = session_csrf(&session_id);
            Ok(StaffSignedIn { staff, session_id, csrf })
        })
    }
}

/// A staff page error: an HTML page with the catalog code (and `X-Clavis-Error`), or the way to the staff sign-in
/// page when there is no staff session.
#[derive(Debug)]
pub struct StaffError(pub ClavisError);

impl From<ClavisError> for StaffError {
    fn from(e: ClavisError) -> Self {
        StaffError(e)
    }
}

impl std::fmt::Display for StaffError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Template)]
#[template(path = "staff/error.html")]
struct ErrorPage<'a> {
    code: u16,
    title: &'a str,
    detail: &'a str,
    remedy: &'a str,
}

impl ResponseError for StaffError {
    fn status_code(&self) -> StatusCode {
        if self.0.code == ErrorCode::NotSignedIn { StatusCode::SEE_OTHER } else { self.0.code.status() }
    }

    fn error_response(&self) -> HttpResponse {
        let code = self.0.code;
        if code == ErrorCode::NotSignedIn {
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/staff/login"))
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
