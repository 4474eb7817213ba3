//! The Widevine and PlayReady page: the Widevine key-server signers packagers sign with (AES key and IV, or an RSA
//! public key uploaded as a .pem file), the upstream Widevine license service Clavis proxies to, the PlayReady key
//! seed (set, generated and shown once, replaced, deleted) and the upstream PlayReady license server. Each section
//! says in plain words what was checked.
//!
//! Every form goes through the functions behind the REST API (`clavis_keys::widevine_key_server::signers`,
//! `clavis_keys::seed`, `clavis_licenses::upstream`), so the checks and codes are the API's. Secrets go in and never
//! come out (a generated seed is shown once, on the answer page). Everyone reads; admins and owners change.

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{get, post, web};
use askama::Template;
use clavis_core::platform::Platform;
use clavis_core::{ClavisError, ErrorCode};
use clavis_keys::seed::{self, KeySeedView};
use clavis_keys::widevine_key_server::signers::{self, SignerBody, SignerView};
use clavis_licenses::LicenseService;
use clavis_licenses::upstream::{PlayReadyProxyBody, WidevineProxyBody};
use clavis_tenant::{Role, SecretKind, SecretVault};
use serde::Deserialize;

use super::fairplay::{read_parts, text};
use super::pages::{Page, html, when};
use super::{Shell, SignedIn};

/// What one section says after a form was posted to it.
struct Outcome {
    /// `signers`, `widevine`, `seed` or `playready`.
    section: &'static str,
    ok: bool,
    message: String,
    /// A generated key seed, shown this once.
    secret: Option<String>,
    /// The page's status: the refusal's own (422, 409) or 200.
    status: StatusCode,
}

struct SignerRow {
    name: String,
    summary: String,
}

impl From<SignerView> for SignerRow {
    fn from(v: SignerView) -> Self {
        let kind = match v.rsa_bits {
            Some(bits) => format!("an RSA {bits}-bit public key (RSASSA-PSS signatures)"),
            None => "an AES-256 key and IV".to_owned(),
        };
        SignerRow {
            summary: format!(
                "Checks key requests signed with {kind}; fingerprint {} (compare it with the packager's key); changed {}.",
                v.fingerprint,
                when(v.updated_at)
            ),
            name: v.name,
        }
    }
}

/// An upstream's settings as shown.
struct UpstreamRow {
    url: String,
    /// Widevine: the provider; PlayReady: whether an Authorization value is set.
    detail: String,
    timeout_ms: u32,
    retries: u32,
    updated_at: String,
}

#[derive(Template)]
#[template(path = "console/drm.html")]
struct DrmPage {
    shell: Shell,
    can_edit: bool,
    signers: Vec<SignerRow>,
    widevine: Option<UpstreamRow>,
    seed: Option<String>,
    playready: Option<UpstreamRow>,
    outcome: Option<Outcome>,
}

fn seed_summary(v: &KeySeedView) -> String {
    format!(
        "A {}-byte key seed (the first 30 bytes derive the keys), fingerprint {}: keys made with \"source\": \
         \"key_seed\" derive from it, as your PlayReady license server does from the same seed. Set {}.",
        v.length,
        v.fingerprint,
        when(v.updated_at)
    )
}

async fn render(session: &SignedIn, vault: &SecretVault, service: &LicenseService, outcome: Option<Outcome>) -> Page {
    let tenant = &session.tenant;
    let widevine = optional(service.upstreams().widevine_view(tenant).await)?.map(|v| UpstreamRow {
        url: v.license_url,
        detail: format!("provider {}, signing key set", v.provider),
        timeout_ms: v.timeout_ms,
        retries: v.retries,
        updated_at: when(v.updated_at),
    });
    let playready = optional(service.upstreams().playready_view(tenant).await)?.map(|v| UpstreamRow {
        url: v.license_url,
        detail: if v.authorization_set { "an Authorization value is sent" } else { "no Authorization header" }.into(),
        timeout_ms: v.timeout_ms,
        retries: v.retries,
        updated_at: when(v.updated_at),
    });
    let page = DrmPage {
        shell: session.shell(),
        can_edit: session.member.role >= Role::Admin,
        signers: signers::signer_views(vault, tenant.id).await?.into_iter().map(SignerRow::from).collect(),
        widevine,
        seed: seed::seed_view(vault, tenant.id).await?.as_ref().map(seed_summary),
        playready,
        outcome,
    };
    let status = page.outcome.as_ref().map_or(StatusCode::OK, |o| o.status);
    html(status, &page)
}

/// The answer to a form: the page with the section's result, or the error page for what no form can cause.
async fn answer<T>(
    session: &SignedIn,
    vault: &SecretVault,
    service: &LicenseService,
    section: &'static str,
    result: Result<T, ClavisError>,
    done: impl FnOnce(T) -> (String, Option<String>),
) -> Page {
    let outcome = match result {
        Ok(value) => {
            let (message, secret) = done(value);
            Outcome { section, ok: true, message, secret, status: StatusCode::OK }
        }
        Err(e) if !matches!(e.code, ErrorCode::Internal | ErrorCode::DatabaseUnavailable) => {
            let field = e.field.as_deref().map(|f| format!("{f}: ")).unwrap_or_default();
            Outcome {
                section,
                ok: false,
                message: format!("Not saved: {} ({}): {field}{}", e.code.title(), e.code.code(), e.detail),
                secret: None,
                status: e.code.status(),
            }
        }
        Err(e) => return Err(e.into()),
    };
    render(session, vault, service, Some(outcome)).await
}

#[get("/console/drm")]
async fn drm(session: SignedIn, vault: web::Data<SecretVault>, service: web::Data<LicenseService>) -> Page {
    session.require(Role::Viewer)?;
    render(&session, &vault, &service, None).await
}

/// Settings that are not there yet are `None`, not an error.
fn optional<T>(result: Result<T, ClavisError>) -> Result<Option<T>, ClavisError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.code == ErrorCode::UpstreamNotConfigured => Ok(None),
        Err(e) => Err(e),
    }
}

fn optional_text(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

/// Add or replace a signer: a multipart form, so an RSA public key can be uploaded as its .pem file.
#[post("/console/drm/signers")]
async fn save_signer(
    session: SignedIn,
    platform: web::Data<Platform>,
    vault: web::Data<SecretVault>,
    service: web::Data<LicenseService>,
    form: Multipart,
) -> Page {
    session.require(Role::Admin)?;
    let parts = read_parts(form).await?;
    session.check_csrf(&text(&parts, "csrf"))?;
    let pem = parts.get("rsa_public_key").filter(|b| !b.is_empty()).map(|b| String::from_utf8_lossy(b).into_owned());
    let body = SignerBody {
        aes_key: optional_text(text(&parts, "aes_key")),
        aes_iv: optional_text(text(&parts, "aes_iv")),
        rsa_public_key: pem,
    };
    let name = text(&parts, "name");
    let result = signers::save_signer(&platform, &vault, session.tenant.id, &name, body).await;
    answer(&session, &vault, &service, "signers", result, |view| {
        let row = SignerRow::from(view);
        (
            format!("Signer {} saved. {} Shaka Packager sends it with --signer {}.", row.name, row.summary, row.name),
            None,
        )
    })
    .await
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[post("/console/drm/signers/{name}/delete")]
async fn delete_signer(
    session: SignedIn,
    platform: web::Data<Platform>,
    vault: web::Data<SecretVault>,
    service: web::Data<LicenseService>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Page {
    session.require(Role::Admin)?;
    session.check_csrf(&form.csrf)?;
    let name = path.into_inner();
    let result = signers::remove_signer(&platform, &vault, session.tenant.id, &name).await;
    answer(&session, &vault, &service, "signers", result, |()| {
        (format!("Signer {name} deleted; key requests it signs are refused from now on (3021)."), None)
    })
    .await
}

#[derive(Deserialize)]
struct SeedForm {
    #[serde(default)]
    csrf: String,
    /// `set` (with `key_seed`) or `generate`.
    #[serde(default)]
    action: String,
    #[serde(default)]
    key_seed: String,
}

#[post("/console/drm/key-seed")]
async fn save_seed(
    session: SignedIn,
    vault: web::Data<SecretVault>,
    service: web::Data<LicenseService>,
    form: web::Form<SeedForm>,
) -> Page {
    session.require(Role::Admin)?;
    session.check_csrf(&form.csrf)?;
    let result = if form.action == "generate" {
        seed::generate_seed(&vault, session.tenant.id).await
    } else {
        seed::set_seed(&vault, session.tenant.id, &form.key_seed).await
    };
    answer(&session, &vault, &service, "seed", result, |view| {
        let shown = view.key_seed.clone();
        let lead = if shown.is_some() {
            "Key seed generated. Copy it now for your PlayReady license server: it is not shown again."
        } else {
            "Key seed saved."
        };
        (format!("{lead} {}", seed_summary(&view)), shown)
    })
    .await
}

#[post("/console/drm/key-seed/delete")]
async fn delete_seed(
    session: SignedIn,
    vault: web::Data<SecretVault>,
    service: web::Data<LicenseService>,
    form: web::Form<CsrfForm>,
) -> Page {
    session.require(Role::Admin)?;
    session.check_csrf(&form.csrf)?;
    let result = seed::remove_seed(&vault, session.tenant.id).await;
    answer(&session, &vault, &service, "seed", result, |()| {
        (
            "Key seed deleted. Keys already derived from it keep their values; new key_seed keys are refused (3004)."
                .into(),
            None,
        )
    })
    .await
}

#[derive(Deserialize)]
struct UpstreamForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    license_url: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    signing_key: String,
    #[serde(default)]
    signing_iv: String,
    #[serde(default)]
    authorization: String,
    /// PlayReady: `keep` the current Authorization value, or `set` it to the field (empty: none).
    #[serde(default)]
    authorization_action: String,
    #[serde(default)]
    timeout_ms: String,
    #[serde(default)]
    retries: String,
}

fn number(field: &'static str, value: &str) -> Result<Option<u32>, ClavisError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    value.parse().map(Some).map_err(|_| ClavisError::invalid(field, "must be a whole number"))
}

#[post("/console/drm/widevine")]
async fn save_widevine(
    session: SignedIn,
    vault: web::Data<SecretVault>,
    service: web::Data<LicenseService>,
    form: web::Form<UpstreamForm>,
) -> Page {
    session.require(Role::Admin)?;
    session.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let result = async {
        let body = WidevineProxyBody {
            license_url: form.license_url,
            provider: form.provider,
            signing_key: optional_text(form.signing_key.trim().to_owned()),
            signing_iv: optional_text(form.signing_iv.trim().to_owned()),
            timeout_ms: number("timeout_ms", &form.timeout_ms)?,
            retries: number("retries", &form.retries)?,
        };
        service.upstreams().put_widevine(&session.tenant, body).await
    }
    .await;
    answer(&session, &vault, &service, "widevine", result, |v| {
        (
            format!(
                "Widevine proxy saved: license requests go to {} as provider {}, signed with the key you gave, within \
                 {} ms and {} retries.",
                v.license_url, v.provider, v.timeout_ms, v.retries
            ),
            None,
        )
    })
    .await
}

#[post("/console/drm/playready")]
async fn save_playready(
    session: SignedIn,
    vault: web::Data<SecretVault>,
    service: web::Data<LicenseService>,
    form: web::Form<UpstreamForm>,
) -> Page {
    session.require(Role::Admin)?;
    session.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let result = async {
        let body = PlayReadyProxyBody {
            license_url: form.license_url,
            authorization: (form.authorization_action == "set").then(|| form.authorization.trim().to_owned()),
            timeout_ms: number("timeout_ms", &form.timeout_ms)?,
            retries: number("retries", &form.retries)?,
        };
        service.upstreams().put_playready(&session.tenant, body).await
    }
    .await;
    answer(&session, &vault, &service, "playready", result, |v| {
        (
            format!(
                "PlayReady proxy saved: challenges go untouched to {} ({}), within {} ms and {} retries.",
                v.license_url,
                if v.authorization_set { "with your Authorization value" } else { "without an Authorization header" },
                v.timeout_ms,
                v.retries
            ),
            None,
        )
    })
    .await
}

#[post("/console/drm/{which}/delete")]
async fn delete_upstream(
    session: SignedIn,
    vault: web::Data<SecretVault>,
    service: web::Data<LicenseService>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Page {
    session.require(Role::Admin)?;
    session.check_csrf(&form.csrf)?;
    let (section, kind, name) = match path.as_str() {
        "widevine" => ("widevine", SecretKind::WidevineProxy, "Widevine"),
        "playready" => ("playready", SecretKind::PlayreadyProxy, "PlayReady"),
        _ => return Err(ClavisError::new(ErrorCode::RouteNotFound, "no such settings").into()),
    };
    let result = match service.upstreams().delete(&session.tenant, kind).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(ClavisError::new(ErrorCode::UpstreamNotConfigured, format!("no {name} proxy is set"))),
        Err(e) => Err(e),
    };
    answer(&session, &vault, &service, section, result, |()| {
        (format!("{name} proxy deleted: {name} license requests are refused (5070) until it is set again."), None)
    })
    .await
}

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(drm)
        .service(save_signer)
        .service(delete_signer)
        .service(save_seed)
        .service(delete_seed)
        .service(save_widevine)
        .service(save_playready)
        .service(delete_upstream);
}
