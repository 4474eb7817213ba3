//! The staff pages. Each signed-in handler: extract the staff session, check the form token (POST), write the audit
//! row, then read or act, then render. The audit row comes before the read so nothing is seen unrecorded.

use std::sync::Arc;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use clavis_core::ids::TenantId;
use clavis_core::{ClavisError, ErrorCode};
use clavis_licenses::LicenseService;
use clavis_licenses::log::LogQuery;
use clavis_tenant::{AuditAction, AuditEntry, Directory, Email, SecretKind, SecretVault, Tenant, TenantStatus};
use secrecy::SecretString;
use serde::Deserialize;
use uuid::Uuid;

use super::{
    FormToken, SESSION_COOKIE, StaffConsole, StaffError, StaffShell, StaffSignedIn, client_ip, lockout_minutes,
    user_agent,
};

type Page = Result<HttpResponse, StaffError>;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// License log rows on a tenant's page.
const LOG_ROWS: u64 = 50;
/// Audit rows on a tenant's page and on the platform-wide audit page.
const AUDIT_ROWS_TENANT: u64 = 50;
const AUDIT_ROWS_ALL: u64 = 200;

fn html(status: StatusCode, page: &impl Template) -> Page {
    let body = page.render().map_err(|e| ClavisError::internal("render", e))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish()
}

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

// ---------------------------------------------------------------------------------------------------------------
// Sign-in and sign-out

#[derive(Template)]
#[template(path = "staff/login.html")]
struct LoginPage {
    csrf: String,
    email: String,
    error: Option<String>,
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

fn login_form(console: &StaffConsole, req: &HttpRequest, email: String, error: Option<&ClavisError>) -> Page {
    let token = FormToken::for_page(console, req)?;
    let page = LoginPage {
        csrf: token.value.clone(),
        email,
        error: error.map(|e| format!("{} ({})", e.detail, e.code.code())),
    };
    let mut response = html(error.map_or(StatusCode::OK, |e| e.code.status()), &page)?;
    if let Some(e) = error {
        response
            .headers_mut()
            .insert(clavis_core::error::ERROR_HEADER, header::HeaderValue::from_static(e.code.code_str()));
    }
    if let Some(cookie) = token.new_cookie {
        response.add_cookie(&cookie).map_err(|e| ClavisError::internal("cookie", e))?;
    }
    Ok(response)
}

#[get("/staff/login")]
async fn login_page(data: web::Data<StaffConsole>, req: HttpRequest) -> Page {
    login_form(&data, &req, String::new(), None)
}

#[post("/staff/login")]
async fn login(data: web::Data<StaffConsole>, req: HttpRequest, form: web::Form<LoginForm>) -> Page {
    FormToken::check(&req, &form.csrf)?;
    let console = data.get_ref();
    let form = form.into_inner();
    let ip = client_ip(&req);
    let wrong = || ClavisError::new(ErrorCode::LoginFailed, "the email or the password is wrong");
    let Ok(email) = Email::parse(&form.email) else { return login_form(console, &req, form.email, Some(&wrong())) };
    if console.limits.locked(email.as_str(), &ip) {
        let locked = ClavisError::new(
            ErrorCode::AccountLocked,
            format!("too many failed sign-ins; staff sign-in is locked for {} minutes", lockout_minutes()),
        );
        return login_form(console, &req, form.email, Some(&locked));
    }
    let Some(staff) = console.staff.sign_in(&email, SecretString::from(form.password)).await? else {
        console.limits.failed(email.as_str(), &ip);
        return login_form(console, &req, form.email, Some(&wrong()));
    };
    console.limits.succeeded(email.as_str());
    // A new session id at every sign-in; the one the browser brought (if any) ends: no session fixation.
    if let Some(previous) = req.cookie(SESSION_COOKIE) {
        console.staff.end_session(previous.value()).await?;
    }
    console.staff.record(&staff, None, AuditAction::SignIn, Some(&format!("from {ip}"))).await?;
    let session_id = console.staff.start_session(&staff, user_agent(&req).as_deref(), Some(&ip)).await?;
    let mut response = see_other("/staff");
    response.add_cookie(&console.cookie(SESSION_COOKIE, session_id)).map_err(|e| ClavisError::internal("cookie", e))?;
    Ok(response)
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[post("/staff/logout")]
async fn logout(session: StaffSignedIn, data: web::Data<StaffConsole>, form: web::Form<CsrfForm>) -> Page {
    session.check_csrf(&form.csrf)?;
    let console = data.get_ref();
    console.staff.record(&session.staff, None, AuditAction::SignOut, None).await?;
    console.staff.end_session(&session.session_id).await?;
    let mut response = see_other("/staff/login");
    response.add_removal_cookie(&console.removal(SESSION_COOKIE)).map_err(|e| ClavisError::internal("cookie", e))?;
    Ok(response)
}

// ---------------------------------------------------------------------------------------------------------------
// The tenant list

struct TenantRow {
    id: String,
    name: String,
    site_id: String,
    status: &'static str,
    created_at: String,
}

#[derive(Template)]
#[template(path = "staff/tenants.html")]
struct TenantsPage {
    shell: StaffShell,
    tenants: Vec<TenantRow>,
}

#[get("/staff")]
async fn tenants_page(session: StaffSignedIn, data: web::Data<StaffConsole>) -> Page {
    let console = data.get_ref();
    console.staff.record(&session.staff, None, AuditAction::ViewTenants, None).await?;
    let tenants = console
        .staff
        .tenants()
        .await?
        .into_iter()
        .map(|t| TenantRow {
            id: t.id.to_string(),
            name: t.name,
            site_id: t.site_id,
            status: t.status.as_str(),
            created_at: when(t.created_at),
        })
        .collect();
    html(StatusCode::OK, &TenantsPage { shell: session.shell(), tenants })
}

// ---------------------------------------------------------------------------------------------------------------
// One tenant

struct IntegrationRow {
    label: &'static str,
    /// What is stored, by name and date; never the values nor their metadata.
    configured: Option<String>,
}

struct MemberRow {
    email: String,
    role: &'static str,
    status: &'static str,
}

struct KeyRow {
    name: String,
    prefix: String,
    created_at: String,
    last_used_at: String,
    revoked_at: Option<String>,
}

struct LogLine {
    at: String,
    drm: String,
    user_id: String,
    content_id: String,
    outcome: String,
    code: String,
    rule: String,
    detail: String,
}

struct RefusalRow {
    code: u16,
    title: &'static str,
    count: u64,
}

struct AuditRow {
    at: String,
    staff_email: String,
    action: &'static str,
    detail: String,
    tenant: Option<String>,
}

impl From<AuditEntry> for AuditRow {
    fn from(e: AuditEntry) -> Self {
        AuditRow {
            at: when(e.at),
            staff_email: e.staff_email,
            action: AuditAction::label(&e.action),
            detail: e.detail.unwrap_or_default(),
            tenant: e.tenant_id.map(|t| t.to_string()),
        }
    }
}

#[derive(Template)]
#[template(path = "staff/tenant.html")]
struct TenantPage {
    shell: StaffShell,
    id: String,
    name: String,
    site_id: String,
    status: &'static str,
    suspended: bool,
    created_at: String,
    policy_json: String,
    origins: Vec<String>,
    token_ttl_seconds: u32,
    clock_skew_seconds: u32,
    integrations: Vec<IntegrationRow>,
    members: Vec<MemberRow>,
    keys: Vec<KeyRow>,
    log: Vec<LogLine>,
    refusals: Vec<RefusalRow>,
    chart: crate::console::activity::Chart,
    drms: Vec<crate::console::activity::DrmRow>,
    audit: Vec<AuditRow>,
}

fn parse_tenant_id(raw: &str) -> Result<TenantId, StaffError> {
    Uuid::parse_str(raw)
        .map(TenantId)
        .map_err(|_| ClavisError::new(ErrorCode::TenantNotFound, format!("no tenant with id {raw:?}")).into())
}

/// Which integrations hold credentials: names and dates only.
async fn integrations(vault: &SecretVault, tenant: &Tenant) -> Result<Vec<IntegrationRow>, StaffError> {
    const KINDS: [(SecretKind, &str); 9] = [
        (SecretKind::Callback, "Callback mode"),
        (SecretKind::Pallycon, "PallyCon tokens"),
        (SecretKind::Drmtoday, "DRMtoday tokens"),
        (SecretKind::Axinom, "Axinom entitlement messages"),
        (SecretKind::FairplayCredentials, "FairPlay credentials"),
        (SecretKind::WidevineSigner, "Widevine key-server signers"),
        (SecretKind::KeySeed, "PlayReady key seed"),
        (SecretKind::WidevineProxy, "Widevine license proxy"),
        (SecretKind::PlayreadyProxy, "PlayReady license proxy"),
    ];
    let mut rows = Vec::with_capacity(KINDS.len());
    for (kind, label) in KINDS {
        let stored = vault.list(tenant.id, kind).await?;
        let configured = (!stored.is_empty()).then(|| {
            let latest = stored.iter().map(|s| s.updated_at).max().map(when).unwrap_or_default();
            if kind == SecretKind::WidevineSigner {
                let names = stored.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ");
                format!("{} signer(s): {names}; last changed {latest}", stored.len())
            } else {
                format!("configured; last changed {latest}")
            }
        });
        rows.push(IntegrationRow { label, configured });
    }
    Ok(rows)
}

#[get("/staff/tenants/{id}")]
async fn tenant_page(
    session: StaffSignedIn,
    data: web::Data<StaffConsole>,
    directory: web::Data<Directory>,
    vault: web::Data<SecretVault>,
    licenses: web::Data<LicenseService>,
    path: web::Path<String>,
) -> Page {
    let console = data.get_ref();
    let tenant_id = parse_tenant_id(&path)?;
    let summary = console.staff.tenant_summary(tenant_id).await?;
    console.staff.record(&session.staff, Some(tenant_id), AuditAction::ViewTenant, None).await?;
    let tenant: Arc<Tenant> = directory.get(tenant_id).await?;
    let settings = &tenant.settings;
    let members = console
        .accounts
        .members(tenant_id)
        .await?
        .into_iter()
        .map(|m| MemberRow {
            status: if m.verified {
                "active"
            } else if m.has_password {
                "email not verified"
            } else {
                "invited"
            },
            email: m.email,
            role: m.role.as_str(),
        })
        .collect();
    let keys = directory
        .api_keys(tenant_id)
        .await?
        .into_iter()
        .map(|k| KeyRow {
            name: k.name,
            prefix: k.prefix,
            created_at: when(k.created_at),
            last_used_at: k.last_used_at.map_or_else(|| "never".into(), when),
            revoked_at: k.revoked_at.map(when),
        })
        .collect();
    let log = licenses
        .log()
        .recent(tenant_id, &LogQuery { limit: LOG_ROWS, ..Default::default() })
        .await?
        .into_iter()
        .map(|r| LogLine {
            at: r.at,
            drm: r.drm,
            user_id: r.user_id.unwrap_or_default(),
            content_id: r.content_id.unwrap_or_default(),
            outcome: r.outcome,
            code: r.error_code.map(|c| c.to_string()).unwrap_or_default(),
            rule: r.rule.unwrap_or_default(),
            detail: r.detail.unwrap_or_default(),
        })
        .collect();
    let since = chrono::Utc::now().timestamp_millis() - DAY_MS;
    let mut refusals: Vec<RefusalRow> = licenses
        .log()
        .refusals_by_code(tenant_id, since)
        .await?
        .into_iter()
        .map(|(code, count)| RefusalRow {
            code,
            title: ErrorCode::by_code(code).map_or("unknown code", |c| c.title()),
            count,
        })
        .collect();
    refusals.sort_by(|a, b| b.count.cmp(&a.count).then(a.code.cmp(&b.code)));
    let (chart, drms) = crate::console::activity::last_day(&licenses, tenant_id).await?;
    let audit = directory.staff_audit(tenant_id, AUDIT_ROWS_TENANT).await?.into_iter().map(AuditRow::from).collect();
    let page = TenantPage {
        shell: session.shell(),
        id: tenant_id.to_string(),
        name: summary.name,
        site_id: summary.site_id,
        status: tenant.status.as_str(),
        suspended: tenant.status == TenantStatus::Suspended,
        created_at: when(summary.created_at),
        policy_json: serde_json::to_string_pretty(&settings.default_policy)
            .map_err(|e| ClavisError::internal("policy", e))?,
        origins: settings.allowed_origins.clone(),
        token_ttl_seconds: settings.token_ttl_seconds,
        clock_skew_seconds: settings.clock_skew_seconds,
        integrations: integrations(&vault, &tenant).await?,
        members,
        keys,
        log,
        refusals,
        chart,
        drms,
        audit,
    };
    html(StatusCode::OK, &page)
}

#[derive(Deserialize)]
struct StatusForm {
    #[serde(default)]
    csrf: String,
    /// Why; shown to the tenant in its audit log.
    #[serde(default)]
    reason: String,
}

async fn change_status(
    session: StaffSignedIn,
    console: &StaffConsole,
    directory: &Directory,
    raw_id: &str,
    form: StatusForm,
    status: TenantStatus,
) -> Page {
    session.check_csrf(&form.csrf)?;
    let tenant_id = parse_tenant_id(raw_id)?;
    // Existence first, so a mistyped id leaves no audit row about a tenant that does not exist.
    console.staff.tenant_summary(tenant_id).await?;
    let reason = form.reason.trim();
    if reason.chars().count() > 500 {
        return Err(ClavisError::invalid("reason", "must be at most 500 characters").into());
    }
    let action = if status == TenantStatus::Suspended { AuditAction::Suspend } else { AuditAction::Resume };
    console.staff.record(&session.staff, Some(tenant_id), action, (!reason.is_empty()).then_some(reason)).await?;
    // `set_status` drops the tenant from this instance's directory cache, so licenses are refused (2003) from the
    // next request on; other instances follow within the cache's time-to-live.
    directory.set_status(tenant_id, status).await?;
    Ok(see_other(&format!("/staff/tenants/{tenant_id}")))
}

#[post("/staff/tenants/{id}/suspend")]
async fn suspend(
    session: StaffSignedIn,
    data: web::Data<StaffConsole>,
    directory: web::Data<Directory>,
    path: web::Path<String>,
    form: web::Form<StatusForm>,
) -> Page {
    change_status(session, &data, &directory, &path, form.into_inner(), TenantStatus::Suspended).await
}

#[post("/staff/tenants/{id}/resume")]
async fn resume(
    session: StaffSignedIn,
    data: web::Data<StaffConsole>,
    directory: web::Data<Directory>,
    path: web::Path<String>,
    form: web::Form<StatusForm>,
) -> Page {
    change_status(session, &data, &directory, &path, form.into_inner(), TenantStatus::Active).await
}

// ---------------------------------------------------------------------------------------------------------------
// The platform-wide audit log

#[derive(Template)]
#[template(path = "staff/audit.html")]
struct AuditPage {
    shell: StaffShell,
    rows: Vec<AuditRow>,
}

#[get("/staff/audit")]
async fn audit_page(session: StaffSignedIn, data: web::Data<StaffConsole>) -> Page {
    let console = data.get_ref();
    console.staff.record(&session.staff, None, AuditAction::ViewAudit, None).await?;
    let rows = console.staff.audit_all(AUDIT_ROWS_ALL).await?.into_iter().map(AuditRow::from).collect();
    html(StatusCode::OK, &AuditPage { shell: session.shell(), rows })
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(login_page)
        .service(login)
        .service(logout)
        .service(tenants_page)
        .service(tenant_page)
        .service(suspend)
        .service(resume)
        .service(audit_page);
}
