//! The policy editors (the tenant's default policy and each content's own) and the contents pages.
//!
//! The rules are the API's: the default policy is checked field by field (`PATCH /api/v1/tenant/settings`), and a
//! content's policy must narrow the default (`PUT /api/v1/contents/{id}/policy`). Everyone may read; admins and
//! owners change. Contents are addressed by a query parameter (`/console/content?id=...`) because a content id may
//! hold any printable character, `/` included.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, http::header, post, web};
use askama::Template;
use clavis_core::ids::ContentId;
use clavis_core::policy::Policy;
use clavis_core::{ClavisError, ErrorCode, Platform};
use clavis_keys::KeyStore;
use clavis_keys::contents::{ContentSummary, PAGE_SIZE, list_contents};
use clavis_licenses::LicenseService;
use clavis_tenant::Role;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use super::pages::{Page, console, html, when};
use super::policy_form::{FieldProblem, PolicyEditor, PolicyForm};
use super::{Console, Shell, SignedIn};

/// Most keys the content page lists (a live content with key rotation can have thousands of periods).
const KEYS_SHOWN: usize = 50;

fn pretty(policy: &Policy) -> String {
    serde_json::to_string_pretty(policy).unwrap_or_default()
}

fn query_value(value: &str) -> String {
    utf8_percent_encode(value, NON_ALPHANUMERIC).to_string()
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish()
}

// ---------------------------------------------------------------------------------------------------------------
// The default policy

#[derive(Template)]
#[template(path = "console/policy.html")]
struct DefaultPolicyPage {
    shell: Shell,
    editor: PolicyEditor,
    json: String,
    saved: Option<&'static str>,
}

#[derive(Deserialize)]
struct SavedQuery {
    #[serde(default)]
    saved: Option<String>,
    #[serde(default)]
    id: String,
}

#[get("/console/policy")]
async fn default_policy(session: SignedIn, query: web::Query<SavedQuery>) -> Page {
    session.require(Role::Viewer)?;
    let policy = &session.tenant.settings.default_policy;
    let editor = PolicyEditor {
        form: PolicyForm::of(policy),
        problem: None,
        can_edit: session.member.role >= Role::Admin,
        above: "the platform",
    };
    let saved = query.saved.is_some().then_some("Default policy saved. New licenses use it now.");
    html(StatusCode::OK, &DefaultPolicyPage { shell: session.shell(), editor, json: pretty(policy), saved })
}

#[post("/console/policy")]
async fn save_default_policy(session: SignedIn, data: web::Data<Console>, form: web::Form<PolicyForm>) -> Page {
    session.require(Role::Admin)?;
    session.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let refused = |problem: FieldProblem, form: PolicyForm| {
        let json = pretty(&session.tenant.settings.default_policy);
        let editor = PolicyEditor { form, problem: Some(problem), can_edit: true, above: "the platform" };
        html(StatusCode::UNPROCESSABLE_ENTITY, &DefaultPolicyPage { shell: session.shell(), editor, json, saved: None })
    };
    let policy = match form.policy() {
        Ok(policy) => policy,
        Err(problem) => return refused(problem, form),
    };
    let mut settings = session.tenant.settings.clone();
    settings.default_policy = policy;
    console(&data).directory.update_settings(session.tenant.id, &settings).await?;
    Ok(see_other("/console/policy?saved=1"))
}

// ---------------------------------------------------------------------------------------------------------------
// Contents

struct ContentRow {
    content_id: String,
    link: String,
    key_count: u64,
    has_policy: bool,
    created_at: String,
}

impl From<ContentSummary> for ContentRow {
    fn from(c: ContentSummary) -> Self {
        ContentRow {
            link: format!("content?id={}", query_value(&c.content_id)),
            content_id: c.content_id,
            key_count: c.key_count,
            has_policy: c.has_policy,
            created_at: when(c.created_at),
        }
    }
}

#[derive(Template)]
#[template(path = "console/contents.html")]
struct ContentsPage {
    shell: Shell,
    prefix: String,
    prefix_query: String,
    rows: Vec<ContentRow>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct ContentsQuery {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    after: Option<String>,
}

#[get("/console/contents")]
async fn contents(session: SignedIn, platform: web::Data<Platform>, query: web::Query<ContentsQuery>) -> Page {
    session.require(Role::Viewer)?;
    let prefix = query.prefix.trim().to_owned();
    let rows = list_contents(&platform.db, session.tenant.id, &prefix, query.after.as_deref()).await?;
    let next = (rows.len() as u64 == PAGE_SIZE).then(|| rows.last().map(|r| query_value(&r.content_id))).flatten();
    let rows = rows.into_iter().map(ContentRow::from).collect();
    html(
        StatusCode::OK,
        &ContentsPage { shell: session.shell(), prefix_query: query_value(&prefix), prefix, rows, next },
    )
}

struct KeyRow {
    track: &'static str,
    kid: String,
    period: String,
    source: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "console/content.html")]
struct ContentPage {
    shell: Shell,
    content_id: String,
    /// The content's id as a query string value (for the forms' actions).
    link: String,
    keys: Vec<KeyRow>,
    more_keys: usize,
    has_policy: bool,
    editor: PolicyEditor,
    effective: String,
    saved: Option<&'static str>,
}

fn content_not_found(content_id: &ContentId) -> ClavisError {
    ClavisError::new(ErrorCode::ContentNotFound, format!("no content {:?} in this account", content_id.as_str()))
}

/// Render a content's page; `form` and `problem` replace the stored policy's form after a refused save.
async fn render_content(
    session: &SignedIn,
    store: &KeyStore,
    service: &LicenseService,
    content_id: &ContentId,
    refused: Option<(PolicyForm, FieldProblem)>,
    saved: Option<&'static str>,
) -> Page {
    let set = store.get(session.tenant.id, content_id).await?.ok_or_else(|| content_not_found(content_id))?;
    let mut keys = Vec::with_capacity(set.keys.len().min(KEYS_SHOWN));
    for key in set.keys.iter().take(KEYS_SHOWN) {
        let kid = key.kid.to_hex();
        let last = service.log().key_last_issued(session.tenant.id, content_id.as_str(), &kid).await?;
        keys.push(KeyRow {
            track: key.track_type.as_str(),
            period: key.period.map(|p| p.to_string()).unwrap_or_else(|| "–".into()),
            source: serde_json::to_value(key.source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            last_used: last
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map_or_else(|| "never".to_owned(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
            kid,
        });
    }
    let stored = set.policy.clone().unwrap_or_default();
    let effective = session.tenant.settings.default_policy.narrowed_by(&stored);
    let status = if refused.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let (form, problem) = match refused {
        Some((form, problem)) => (form, Some(problem)),
        None => (PolicyForm::of(&stored), None),
    };
    let page = ContentPage {
        shell: session.shell(),
        content_id: content_id.as_str().to_owned(),
        link: query_value(content_id.as_str()),
        more_keys: set.keys.len().saturating_sub(KEYS_SHOWN),
        keys,
        has_policy: set.policy.is_some(),
        editor: PolicyEditor {
            form,
            problem,
            can_edit: session.member.role >= Role::Admin,
            above: "the default policy",
        },
        effective: pretty(&effective),
        saved,
    };
    html(status, &page)
}

#[get("/console/content")]
async fn content(
    session: SignedIn,
    store: web::Data<KeyStore>,
    service: web::Data<LicenseService>,
    query: web::Query<SavedQuery>,
) -> Page {
    session.require(Role::Viewer)?;
    let content_id = ContentId::parse(&query.id)?;
    let saved = query.saved.is_some().then_some("Content policy saved. New licenses for this content use it now.");
    render_content(&session, &store, &service, &content_id, None, saved).await
}

#[derive(Deserialize)]
struct ContentQuery {
    #[serde(default)]
    id: String,
}

#[post("/console/content/policy")]
async fn save_content_policy(
    session: SignedIn,
    store: web::Data<KeyStore>,
    service: web::Data<LicenseService>,
    query: web::Query<ContentQuery>,
    form: web::Form<PolicyForm>,
) -> Page {
    session.require(Role::Admin)?;
    session.check_csrf(&form.csrf)?;
    let content_id = ContentId::parse(&query.id)?;
    let form = form.into_inner();
    let checked = form.policy().and_then(|policy| {
        session.tenant.settings.default_policy.check_narrows(&policy).map_err(|e| FieldProblem::of(&e))?;
        Ok(policy)
    });
    let policy = match checked {
        Ok(policy) => policy,
        Err(problem) => {
            return render_content(&session, &store, &service, &content_id, Some((form, problem)), None).await;
        }
    };
    // An empty form clears the content's policy: the default applies unchanged.
    let policy = (policy != Policy::default()).then_some(policy);
    if !store.set_policy(session.tenant.id, &content_id, policy.as_ref()).await? {
        return Err(content_not_found(&content_id).into());
    }
    Ok(see_other(&format!("/console/content?id={}&saved=1", query_value(content_id.as_str()))))
}

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(default_policy)
        .service(save_default_policy)
        .service(contents)
        .service(content)
        .service(save_content_policy);
}
