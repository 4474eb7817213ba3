//! The devices page (issue 7): the tenant's registered devices (out-of-band licenses, docs/offline.md), with rename,
//! reset and remove; the same operations as `/api/v1/devices` (`clavis_licenses::DeviceService`), behind forms.
//! For one user it also shows what the license rules count (issue 6, docs/licenses.md): the devices the user obtained
//! licenses on, which a developer frees, and the streams the user plays, which a developer ends (the same operations
//! as `/api/v1/users/{user_id}/devices` and `/streams`). Every role sees the lists; developers and above change them.

use actix_web::http::header;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use clavis_core::ids::UserId;
use clavis_licenses::devices::DeviceView;
use clavis_licenses::rules::{StreamView, UserDevice};
use clavis_licenses::{DeviceService, LicenseService};
use clavis_tenant::Role;
use serde::Deserialize;

use super::pages::{Page, ok, when};
use super::{Shell, SignedIn};

struct DeviceRow {
    device_id: String,
    user_id: String,
    name: String,
    generation: i32,
    state: String,
    created_at: String,
    updated_at: String,
}

impl From<DeviceView> for DeviceRow {
    fn from(d: DeviceView) -> Self {
        DeviceRow {
            device_id: d.device_id,
            user_id: d.user_id,
            name: d.name,
            generation: d.generation,
            state: d.state,
            created_at: when(d.created_at),
            updated_at: when(d.updated_at),
        }
    }
}

#[derive(Template)]
#[template(path = "console/devices.html")]
struct DevicesPage {
    shell: Shell,
    devices: Vec<DeviceRow>,
    /// The user filter as typed (empty: all users).
    user_id: String,
    /// With a user filter: the devices the user's licenses came from, and the streams the user plays.
    licensed: Vec<UserDevice>,
    streams: Vec<StreamView>,
    can_manage: bool,
    notice: Option<String>,
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    user_id: String,
    /// What the last change did (set by the redirect after a POST).
    #[serde(default)]
    done: String,
}

#[get("/console/devices")]
async fn devices_page(
    session: SignedIn,
    devices: web::Data<DeviceService>,
    licenses: web::Data<LicenseService>,
    query: web::Query<ListQuery>,
) -> Page {
    session.require(Role::Viewer)?;
    let query = query.into_inner();
    let user = query.user_id.trim();
    let rows = devices.list(session.tenant.id, (!user.is_empty()).then_some(user)).await?;
    let (licensed, streams) = match UserId::parse(user) {
        Ok(user) => {
            let rules = licenses.rules();
            let now = chrono::Utc::now().timestamp_millis();
            (
                rules.devices(session.tenant.id, user.as_str()).await?,
                rules.streams(session.tenant.id, user.as_str(), now).await?,
            )
        }
        Err(_) => (Vec::new(), Vec::new()),
    };
    // Only the fixed words the handlers below send are shown back (never text from the query).
    let notice = match query.done.as_str() {
        "renamed" => Some("Device renamed.".to_owned()),
        "reset" => Some("Device reset: its key is revoked; it must register a new key.".to_owned()),
        "removed" => Some("Device removed: its key is revoked and its bundles deleted.".to_owned()),
        "freed" => Some("Device freed: it no longer counts against the user's device limit.".to_owned()),
        "ended" => Some("Stream ended: its slot is free.".to_owned()),
        _ => None,
    };
    ok(&DevicesPage {
        shell: session.shell(),
        devices: rows.into_iter().map(DeviceRow::from).collect(),
        user_id: user.to_owned(),
        licensed,
        streams,
        can_manage: session.member.role >= Role::Developer,
        notice,
    })
}

/// Back to the list after a change (POST, redirect, GET: reloading the page does not repeat the change).
fn done(what: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, format!("/console/devices?done={what}"))).finish()
}

/// Back to one user's lists.
fn done_for(user: &str, what: &str) -> HttpResponse {
    let user = percent_encoding::utf8_percent_encode(user, percent_encoding::NON_ALPHANUMERIC);
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/console/devices?user_id={user}&done={what}")))
        .finish()
}

#[derive(Deserialize)]
struct FreeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    device_id: String,
}

#[post("/console/devices/free")]
async fn free(session: SignedIn, licenses: web::Data<LicenseService>, form: web::Form<FreeForm>) -> Page {
    session.require(Role::Developer)?;
    session.check_csrf(&form.csrf)?;
    let user = UserId::parse(&form.user_id)?;
    if !licenses.rules().free_device(session.tenant.id, user.as_str(), &form.device_id).await? {
        return Err(clavis_core::ClavisError::new(
            clavis_core::ErrorCode::DeviceNotFound,
            "the user has no such device",
        )
        .into());
    }
    Ok(done_for(user.as_str(), "freed"))
}

#[derive(Deserialize)]
struct EndForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    stream_id: String,
}

#[post("/console/streams/end")]
async fn end_stream(session: SignedIn, licenses: web::Data<LicenseService>, form: web::Form<EndForm>) -> Page {
    session.require(Role::Developer)?;
    session.check_csrf(&form.csrf)?;
    let user = UserId::parse(&form.user_id)?;
    if !licenses.rules().release_stream(session.tenant.id, user.as_str(), &form.stream_id).await? {
        return Err(clavis_core::ClavisError::new(
            clavis_core::ErrorCode::StreamNotFound,
            "the user has no such stream",
        )
        .into());
    }
    Ok(done_for(user.as_str(), "ended"))
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
struct RenameForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

#[post("/console/devices/{device_id}/rename")]
async fn rename(
    session: SignedIn,
    devices: web::Data<DeviceService>,
    path: web::Path<String>,
    form: web::Form<RenameForm>,
) -> Page {
    session.require(Role::Developer)?;
    session.check_csrf(&form.csrf)?;
    devices.rename(session.tenant.id, &path, &form.name).await?;
    Ok(done("renamed"))
}

#[post("/console/devices/{device_id}/reset")]
async fn reset(
    session: SignedIn,
    devices: web::Data<DeviceService>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Page {
    session.require(Role::Developer)?;
    session.check_csrf(&form.csrf)?;
    devices.reset(session.tenant.id, &path).await?;
    Ok(done("reset"))
}

#[post("/console/devices/{device_id}/remove")]
async fn remove(
    session: SignedIn,
    devices: web::Data<DeviceService>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Page {
    session.require(Role::Developer)?;
    session.check_csrf(&form.csrf)?;
    devices.delete(session.tenant.id, &path).await?;
    Ok(done("removed"))
}

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(devices_page).service(rename).service(reset).service(remove).service(free).service(end_stream);
}
