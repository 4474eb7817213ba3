//! The integration settings page: license settings (token lifetime, clock skew, CORS origins and the crossdomain.xml
//! made from them), token or callback mode (with "send test callback", showing the exact exchange), and the
//! accepted foreign token formats with their secrets.
//!
//! Every form goes through the same functions as the REST API (`SettingsPatch::apply`, `Callbacks::put`/`test`,
//! `clavis_tokens::{pallycon,drmtoday,axinom_integration}::save_integration`), so the rules and error codes are the
//! API's. Secrets go in and never come out: the page shows only whether one is set (and a generated callback secret
//! once, right after it is made). Everyone reads; admins and owners change; developers may send test callbacks.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, http::header, post, web};
use askama::Template;
use clavis_core::{ClavisError, ErrorCode};
use clavis_licenses::LicenseService;
use clavis_licenses::callback::{CallbackMode, CallbackSettingsBody};
use clavis_tenant::{Role, SecretVault};
use clavis_tokens::Issuers;
use clavis_tokens::axinom_integration::{self as axinom, AxinomIntegrationBody, AxinomKeyBody};
use clavis_tokens::drmtoday::{self, DrmtodayIntegrationBody, DrmtodaySecretBody};
use clavis_tokens::pallycon::{self, PallyconIntegrationBody};
use serde::Deserialize;

use super::pages::{Page, console, html, when};
use super::{Console, Shell, SignedIn};

/// What one section of the page says after a form was posted to it.
struct Outcome {
    /// The section's id (`settings`, `callback`, `pallycon`, `drmtoday`, `axinom`).
    section: &'static str,
    ok: bool,
    message: String,
    /// A secret to show once (a generated callback secret).
    secret: Option<String>,
    /// The test callback's exchange, as pretty JSON.
    exchange: Option<String>,
    /// The page's status: the refusal's own (422, 409) or 200.
    status: StatusCode,
}

struct CallbackView {
    configured: bool,
    mode: &'static str,
    url: String,
    timeout_ms: u32,
    updated_at: String,
}

struct FormatView {
    configured: bool,
    /// The non-secret facts: site id, merchant, key ids.
    facts: String,
    updated_at: String,
}

#[derive(Template)]
#[template(path = "console/integrations.html")]
struct IntegrationsPage {
    shell: Shell,
    can_edit: bool,
    can_test: bool,
    token_ttl_seconds: u32,
    clock_skew_seconds: u32,
    origins: String,
    crossdomain_url: String,
    callback: CallbackView,
    pallycon: FormatView,
    pallycon_compat: bool,
    pallycon_ttl: u32,
    drmtoday: FormatView,
    axinom: FormatView,
    outcome: Option<Outcome>,
}

impl IntegrationsPage {
    fn outcome_for(&self, section: &str) -> Option<&Outcome> {
        self.outcome.as_ref().filter(|o| o.section == section)
    }
}

fn format_view(updated: Option<chrono::DateTime<chrono::Utc>>, facts: Option<String>) -> FormatView {
    FormatView {
        configured: facts.is_some(),
        facts: facts.unwrap_or_default(),
        updated_at: updated.map(when).unwrap_or_default(),
    }
}

async fn render(
    session: &SignedIn,
    data: &web::Data<Console>,
    service: &LicenseService,
    vault: &SecretVault,
    outcome: Option<Outcome>,
) -> Page {
    // Read the tenant fresh: a form on this page may just have changed its settings.
    let tenant = console(data).directory.get(session.tenant.id).await?;
    let callback = match service.callbacks().view(&tenant).await {
        Ok(view) => CallbackView {
            configured: true,
            mode: match view.mode {
                CallbackMode::Token => "token",
                CallbackMode::Callback => "callback",
            },
            url: view.url,
            timeout_ms: view.timeout_ms,
            updated_at: view.updated_at.map(when).unwrap_or_default(),
        },
        Err(e) if e.code == ErrorCode::CallbackNotEnabled => CallbackView {
            configured: false,
            mode: "token",
            url: String::new(),
            timeout_ms: 1500,
            updated_at: String::new(),
        },
        Err(e) => return Err(e.into()),
    };
    let pallycon_view = pallycon::read_integration(vault, tenant.id).await?;
    let drmtoday_view = drmtoday::read_integration(vault, tenant.id).await?;
    let axinom_view = axinom::read_integration(vault, tenant.id).await?;
    let status = outcome.as_ref().map_or(StatusCode::OK, |o| o.status);
    let page = IntegrationsPage {
        shell: session.shell(),
        can_edit: session.member.role >= Role::Admin,
        can_test: session.member.role >= Role::Developer,
        token_ttl_seconds: tenant.settings.token_ttl_seconds,
        clock_skew_seconds: tenant.settings.clock_skew_seconds,
        origins: tenant.settings.allowed_origins.join("\n"),
        crossdomain_url: console(data).link(&format!("/license/{}/crossdomain.xml", tenant.site_id)),
        callback,
        pallycon_compat: pallycon_view.as_ref().is_some_and(|v| v.compat_errors),
        pallycon_ttl: pallycon_view.as_ref().map_or(600, |v| v.token_ttl_seconds),
        pallycon: format_view(
            pallycon_view.as_ref().and_then(|v| v.updated_at),
            pallycon_view.as_ref().map(|v| format!("site id {}", v.site_id)),
        ),
        drmtoday: format_view(
            drmtoday_view.as_ref().and_then(|v| v.updated_at),
            drmtoday_view.as_ref().map(|v| format!("merchant {}, key ids {}", v.merchant, v.kids.join(", "))),
        ),
        axinom: format_view(
            axinom_view.as_ref().and_then(|v| v.updated_at),
            axinom_view.as_ref().map(|v| format!("communication key ids {}", v.com_key_ids.join(", "))),
        ),
        outcome,
    };
    html(status, &page)
}

/// A refused form: the catalog's words, naming the field when the error does.
fn refused(section: &'static str, e: &ClavisError) -> Option<Outcome> {
    let message = match &e.field {
        Some(field) => format!("{} ({}): {}: {}", e.code.title(), e.code.code(), field, e.detail),
        None => format!("{} ({}): {}", e.code.title(), e.code.code(), e.detail),
    };
    Some(Outcome { section, ok: false, message, secret: None, exchange: None, status: e.code.status() })
}

fn saved(section: &'static str, message: &str) -> Option<Outcome> {
    Some(Outcome {
        section,
        ok: true,
        message: message.to_owned(),
        secret: None,
        exchange: None,
        status: StatusCode::OK,
    })
}

/// Errors a form can cause are shown on the page; anything else (the database down) is the error page.
fn is_form_error(e: &ClavisError) -> bool {
    !matches!(e.code, ErrorCode::Internal | ErrorCode::DatabaseUnavailable)
}

#[get("/console/integrations")]
async fn integrations(
    session: SignedIn,
    data: web::Data<Console>,
    service: web::Data<LicenseService>,
    vault: web::Data<SecretVault>,
) -> Page {
    session.require(Role::Viewer)?;
    render(&session, &data, &service, &vault, None).await
}

#[derive(Deserialize)]
struct SettingsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token_ttl_seconds: String,
    #[serde(default)]
    clock_skew_seconds: String,
    #[serde(default)]
    allowed_origins: String,
}

fn seconds(field: &str, value: &str) -> Result<u32, ClavisError> {
    value
        .trim()
        .parse()
        .map_err(|_| ClavisError::invalid(field.to_owned(), format!("{value:?} is not a number of seconds")))
}

#[post("/console/integrations/settings")]
async fn save_settings(
    session: SignedIn,
    data: web::Data<Console>,
    service: web::Data<LicenseService>,
    vault: web::Data<SecretVault>,
    form: web::Form<SettingsForm>,
) -> Page {
    session.require(Role::Admin)?;
    session.check_csrf(&form.csrf)?;
    let result = async {
        let patch = clavis_tenant::SettingsPatch {
            default_policy: None,
            allowed_origins: Some(
                form.allowed_origins
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|o| !o.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
            clock_skew_seconds: Some(seconds("clock_skew_seconds", &form.clock_skew_seconds)?),
            token_ttl_seconds: Some(seconds("token_ttl_seconds", &form.token_ttl_seconds)?),
            server_config: None,
        };
        let tenant = console(&data).directory.get(session.tenant.id).await?;
        let next = patch.apply(&tenant.settings)?;
        console(&data).directory.update_settings(session.tenant.id, &next).await
    }
    .await;
    let outcome = match result {
        Ok(_) => saved("settings", "License settings saved."),
        Err(e) if is_form_error(&e) => refused("settings", &e),
        Err(e) => return Err(e.into()),
    };
    render(&session, &data, &service, &vault, outcome).await
}

#[derive(Deserialize)]
struct CallbackForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    timeout_ms: String,
    /// "keep" (or empty), "generate", or "set" with `shared_secret`.
    #[serde(default)]
    secret: String,
    #[serde(default)]
    shared_secret: String,
}

#[post("/console/integrations/callback")]
async fn save_callback(
    session: SignedIn,
    data: web::Data<Console>,
    service: web::Data<LicenseService>,
    vault: web::Data<SecretVault>,
    form: web::Form<CallbackForm>,
) -> Page {
    session.require(Role::Admin)?;
    session.check_csrf(&form.csrf)?;
    let result = async {
        let mode = match form.mode.as_str() {
            "token" => CallbackMode::Token,
            "callback" => CallbackMode::Callback,
            other => return Err(ClavisError::invalid("mode", format!("{other:?} is not token or callback"))),
        };
        let timeout_ms = match form.timeout_ms.trim() {
            "" => None,
            value => Some(
                value
                    .parse()
                    .map_err(|_| ClavisError::invalid("timeout_ms", format!("{value:?} is not milliseconds")))?,
            ),
        };
        let shared_secret = match form.secret.as_str() {
            "" | "keep" => None,
            "generate" => Some("generate".to_owned()),
            "set" => Some(form.shared_secret.trim().to_owned()),
            other => return Err(ClavisError::invalid("secret", format!("{other:?} is not keep, generate or set"))),
        };
        let body = CallbackSettingsBody { mode, url: form.url.clone(), shared_secret, timeout_ms };
        service.callbacks().put(&session.tenant, body).await
    }
    .await;
    let outcome = match result {
        Ok(view) => Some(Outcome {
            section: "callback",
            ok: true,
            message: format!("Callback settings saved; the account is in {} mode.", form.mode),
            secret: view.generated_shared_secret,
            exchange: None,
            status: StatusCode::OK,
        }),
        Err(e) if is_form_error(&e) => refused("callback", &e),
        Err(e) => return Err(e.into()),
    };
    render(&session, &data, &service, &vault, outcome).await
}

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

#[post("/console/integrations/callback/test")]
async fn test_callback(
    session: SignedIn,
    data: web::Data<Console>,
    service: web::Data<LicenseService>,
    vault: web::Data<SecretVault>,
    form: web::Form<CsrfOnly>,
) -> Page {
    session.require(Role::Developer)?;
    session.check_csrf(&form.csrf)?;
    let outcome = match service.callbacks().test(&session.tenant).await {
        Ok(exchange) => Some(Outcome {
            section: "callback",
            ok: exchange.ok,
            message: match (exchange.ok, exchange.code) {
                (true, _) => "The test callback passed every check.".to_owned(),
                (false, Some(code)) => format!(
                    "The test callback failed: {} ({code}): {}",
                    exchange.title.unwrap_or_default(),
                    exchange.detail.clone().unwrap_or_default()
                ),
                (false, None) => "The test callback failed.".to_owned(),
            },
            secret: None,
            exchange: Some(serde_json::to_string_pretty(&exchange).unwrap_or_default()),
            status: StatusCode::OK,
        }),
        Err(e) if is_form_error(&e) => refused("callback", &e),
        Err(e) => return Err(e.into()),
    };
    render(&session, &data, &service, &vault, outcome).await
}

#[derive(Deserialize)]
struct RemoveForm {
    #[serde(default)]
    csrf: String,
}

/// Remove one integration (`callback`, `pallycon`, `drmtoday` or `axinom`) and forget its secrets.
#[post("/console/integrations/{name}/remove")]
async fn remove(
    session: SignedIn,
    data: web::Data<Console>,
    service: web::Data<LicenseService>,
    vault: web::Data<SecretVault>,
    issuers: web::Data<Issuers>,
    path: web::Path<String>,
    form: web::Form<RemoveForm>,
) -> Page {
    session.require(Role::Admin)?;
    session.check_csrf(&form.csrf)?;
    let tenant_id = session.tenant.id;
    let (section, removed): (&'static str, bool) = match path.as_str() {
        "callback" => ("callback", vault.delete(tenant_id, clavis_tenant::SecretKind::Callback, "default").await?),
        "pallycon" => ("pallycon", pallycon::remove_integration(&vault, &issuers, tenant_id).await?),
        "drmtoday" => ("drmtoday", drmtoday::remove_integration(&vault, &issuers, tenant_id).await?),
        "axinom" => ("axinom", axinom::remove_integration(&vault, &issuers, tenant_id).await?),
        _ => return Err(ClavisError::new(ErrorCode::RouteNotFound, "no such integration").into()),
    };
    let message = if removed { "Removed; its secrets are forgotten." } else { "It was not configured." };
    render(&session, &data, &service, &vault, saved(section, message)).await
}

#[derive(Deserialize)]
struct PallyconForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    site_id: String,
    #[serde(default)]
    site_key: String,
    #[serde(default)]
    access_key: String,
    #[serde(default)]
    token_ttl_seconds: String,
    #[serde(default)]
    compat_errors: Option<String>,
}

#[post("/console/integrations/pallycon")]
async fn save_pallycon(
    session: SignedIn,
    data: web::Data<Console>,
    service: web::Data<LicenseService>,
    vault: web::Data<SecretVault>,
    issuers: web::Data<Issuers>,
    form: web::Form<PallyconForm>,
) -> Page {
    session.require(Role::Admin)?;
    session.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let result = async {
        let token_ttl_seconds = match form.token_ttl_seconds.trim() {
            "" => None,
            value => Some(seconds("token_ttl_seconds", value)?),
        };
        let body = PallyconIntegrationBody {
            site_id: form.site_id.trim().to_owned(),
            site_key: form.site_key.trim().to_owned(),
            access_key: form.access_key.trim().to_owned(),
            token_ttl_seconds,
            compat_errors: Some(form.compat_errors.is_some()),
        };
        pallycon::save_integration(&vault, &issuers, session.tenant.id, body).await
    }
    .await;
    let outcome = match result {
        Ok(_) => saved("pallycon", "PallyCon tokens are accepted with these keys."),
        Err(e) if is_form_error(&e) => refused("pallycon", &e),
        Err(e) => return Err(e.into()),
    };
    render(&session, &data, &service, &vault, outcome).await
}

/// Lines of `<id> <secret>` (spaces, tabs or a colon between), for key sets that rotate.
fn pairs(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (id, secret) = line
                .split_once(|c: char| c.is_whitespace() || c == ':')
                .map_or((line, ""), |(id, secret)| (id, secret.trim()));
            (id.to_owned(), secret.to_owned())
        })
        .collect()
}

#[derive(Deserialize)]
struct KeyListForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    merchant: String,
    #[serde(default)]
    keys: String,
}

#[post("/console/integrations/drmtoday")]
async fn save_drmtoday(
    session: SignedIn,
    data: web::Data<Console>,
    service: web::Data<LicenseService>,
    vault: web::Data<SecretVault>,
    issuers: web::Data<Issuers>,
    form: web::Form<KeyListForm>,
) -> Page {
    session.require(Role::Admin)?;
    session.check_csrf(&form.csrf)?;
    let body = DrmtodayIntegrationBody {
        merchant: form.merchant.trim().to_owned(),
        secrets: pairs(&form.keys).into_iter().map(|(kid, secret)| DrmtodaySecretBody { kid, secret }).collect(),
    };
    let outcome = match drmtoday::save_integration(&vault, &issuers, session.tenant.id, body).await {
        Ok(_) => saved("drmtoday", "DRMtoday tokens are accepted with these secrets."),
        Err(e) if is_form_error(&e) => refused("drmtoday", &e),
        Err(e) => return Err(e.into()),
    };
    render(&session, &data, &service, &vault, outcome).await
}

#[post("/console/integrations/axinom")]
async fn save_axinom(
    session: SignedIn,
    data: web::Data<Console>,
    service: web::Data<LicenseService>,
    vault: web::Data<SecretVault>,
    issuers: web::Data<Issuers>,
    form: web::Form<KeyListForm>,
) -> Page {
    session.require(Role::Admin)?;
    session.check_csrf(&form.csrf)?;
    let body = AxinomIntegrationBody {
        keys: pairs(&form.keys)
            .into_iter()
            .map(|(com_key_id, com_key)| AxinomKeyBody { com_key_id, com_key })
            .collect(),
    };
    let outcome = match axinom::save_integration(&vault, &issuers, session.tenant.id, body).await {
        Ok(_) => saved("axinom", "Axinom license service messages are accepted with these keys."),
        Err(e) if is_form_error(&e) => refused("axinom", &e),
        Err(e) => return Err(e.into()),
    };
    render(&session, &data, &service, &vault, outcome).await
}

/// Where a plain GET of a form's address goes (a reload after a POST).
#[get("/console/integrations/{name:callback|pallycon|drmtoday|axinom|settings}")]
async fn back_to_page() -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, "/console/integrations")).finish()
}

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(integrations)
        .service(save_settings)
        .service(save_callback)
        .service(test_callback)
        .service(remove)
        .service(save_pallycon)
        .service(save_drmtoday)
        .service(save_axinom)
        .service(back_to_page);
}
