//! The token inspector page: the same inspection as `POST /api/v1/tokens/inspect` (`clavis_licenses::inspect`),
//! behind a form. Inspecting changes nothing (no license, no log row, no single-use token used up), so every role
//! may use it.

use actix_web::{get, post, web};
use askama::Template;
use clavis_core::ClavisError;
use clavis_licenses::LicenseService;
use clavis_licenses::inspect::{InspectRequest, Inspection, inspect_token};
use clavis_tenant::Role;
use serde::Deserialize;

use super::pages::{Page, html, ok};
use super::{PageError, Shell, SignedIn};

pub(super) const FORMATS: [(&str, &str); 4] = [
    ("native", "Clavis (X-Clavis-Token)"),
    ("pallycon", "PallyCon (pallycon-customdata-v2)"),
    ("drmtoday", "DRMtoday (x-dt-auth-token)"),
    ("axinom", "Axinom (X-AxDRM-Message)"),
];
pub(super) const DRMS: [&str; 5] = ["clearkey", "widevine", "playready", "fairplay", "hls-aes"];
pub(super) const SESSION_TYPES: [&str; 2] = ["temporary", "persistent-license"];

#[derive(Deserialize, Default, Clone)]
pub(super) struct InspectForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    drm: String,
    /// KIDs separated by commas, spaces or new lines.
    #[serde(default)]
    kids: String,
    #[serde(default)]
    session_type: String,
    #[serde(default)]
    origin: String,
    #[serde(default)]
    client_ip: String,
}

fn optional(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

impl InspectForm {
    fn request(&self) -> InspectRequest {
        let kids: Vec<String> = self
            .kids
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect();
        InspectRequest {
            token: self.token.trim().to_owned(),
            format: optional(&self.format),
            drm: optional(&self.drm),
            kids: (!kids.is_empty()).then_some(kids),
            session_type: optional(&self.session_type),
            origin: optional(&self.origin),
            client_ip: optional(&self.client_ip),
        }
    }
}

/// The verdict as the page shows it.
pub(super) struct Verdict {
    issued: bool,
    code: u16,
    title: String,
    rule: String,
    detail: String,
    field: Option<String>,
    remedy: String,
    decoded: Option<String>,
    user_id: Option<String>,
    content_id: Option<String>,
    expires_at: Option<String>,
    policy: Option<String>,
}

fn pretty(value: &impl serde::Serialize) -> Option<String> {
    serde_json::to_string_pretty(value).ok()
}

impl From<Inspection> for Verdict {
    fn from(i: Inspection) -> Self {
        let refusal = i.refusal.as_ref();
        Verdict {
            issued: i.license_would_be_issued,
            code: refusal.map_or(0, |r| r.code),
            title: refusal.map_or_else(String::new, |r| r.title.to_owned()),
            rule: refusal.map_or_else(String::new, |r| r.rule.to_owned()),
            detail: refusal.map_or_else(String::new, |r| r.detail.clone()),
            field: refusal.and_then(|r| r.field.clone()),
            remedy: refusal.map_or_else(String::new, |r| r.remedy.to_owned()),
            decoded: i.decoded.as_ref().and_then(pretty),
            user_id: i.user_id,
            content_id: i.content_id,
            expires_at: i
                .expires_at
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
            policy: i.effective_policy.as_ref().and_then(pretty),
        }
    }
}

#[derive(Template)]
#[template(path = "console/inspect.html")]
struct InspectPage {
    shell: Shell,
    form: InspectForm,
    /// A request field the inspector could not use: (form field, message).
    field_error: Option<(String, String)>,
    verdict: Option<Verdict>,
}

impl InspectPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        self.field_error.as_ref().filter(|(f, _)| f == field).map(|(_, m)| m.as_str())
    }

    fn selected(&self, field: &str, value: &str) -> bool {
        let current = match field {
            "format" => &self.form.format,
            "drm" => &self.form.drm,
            _ => &self.form.session_type,
        };
        current == value
    }
}

#[get("/console/tokens/inspect")]
async fn inspect_page(session: SignedIn) -> Page {
    session.require(Role::Viewer)?;
    let form = InspectForm {
        format: "native".into(),
        drm: "clearkey".into(),
        session_type: "temporary".into(),
        ..InspectForm::default()
    };
    ok(&InspectPage { shell: session.shell(), form, field_error: None, verdict: None })
}

#[post("/console/tokens/inspect")]
async fn inspect(session: SignedIn, service: web::Data<LicenseService>, form: web::Form<InspectForm>) -> Page {
    session.require(Role::Viewer)?;
    session.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    if form.token.trim().is_empty() {
        let page = InspectPage {
            shell: session.shell(),
            form,
            field_error: Some(("token".into(), "paste the token to inspect".into())),
            verdict: None,
        };
        return html(actix_web::http::StatusCode::UNPROCESSABLE_ENTITY, &page);
    }
    match inspect_token(&service, session.tenant.id, form.request()).await {
        Ok(inspection) => {
            ok(&InspectPage { shell: session.shell(), form, field_error: None, verdict: Some(inspection.into()) })
        }
        Err(e) if e.field.is_some() => {
            let status = e.code.status();
            let page = InspectPage { shell: session.shell(), form, field_error: Some(field_error(&e)), verdict: None };
            html(status, &page)
        }
        Err(e) => Err(PageError(e)),
    }
}

/// The form field a request error belongs to (`kids[2]` is the KIDs box) and its message with the catalog code.
fn field_error(e: &ClavisError) -> (String, String) {
    let field = e.field.as_deref().unwrap_or_default();
    let input = field.split('[').next().unwrap_or(field).to_owned();
    (input, format!("{} ({} {})", e.detail, e.code.code(), field))
}

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(inspect_page).service(inspect);
}
