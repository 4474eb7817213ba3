//! The server-rendered web pages (askama): the home page, the error-code reference (generated from the catalog, the
//! single source) and the tenant console (`console`).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use actix_web::{HttpResponse, Responder, get, web};
use askama::Template;
use askama_web::WebTemplate;
use clavis_core::{ClavisError, ErrorCode};

mod console;
mod mail;
mod staff;

pub use console::{Console, LOCKOUT, MAX_FAILURES_PER_ACCOUNT, MAX_FAILURES_PER_IP, MAX_SIGNUPS_PER_IP_PER_HOUR};
pub use mail::Mailer;
pub use staff::StaffConsole;

pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One catalog entry as the pages show it.
pub struct EntryView {
    pub code: u16,
    pub status: u16,
    pub name: &'static str,
    pub title: &'static str,
    pub remedy: &'static str,
}

impl From<ErrorCode> for EntryView {
    fn from(e: ErrorCode) -> Self {
        EntryView { code: e.code(), status: e.status().as_u16(), name: e.name(), title: e.title(), remedy: e.remedy() }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
struct HomePage {}

#[derive(Template, WebTemplate)]
#[template(path = "errors.html")]
struct ErrorsPage {
    entries: Vec<EntryView>,
}

#[derive(Template, WebTemplate)]
#[template(path = "error_entry.html")]
struct ErrorEntryPage {
    entry: EntryView,
}

#[get("/")]
async fn home() -> impl Responder {
    HomePage {}
}

#[get("/errors")]
async fn errors() -> impl Responder {
    ErrorsPage { entries: ErrorCode::ALL.iter().copied().map(EntryView::from).collect() }
}

#[get("/errors/{code}")]
async fn error_entry(path: web::Path<String>) -> Result<HttpResponse, ClavisError> {
    let entry = path.parse::<u16>().ok().and_then(ErrorCode::by_code).ok_or_else(|| {
        ClavisError::new(ErrorCode::RouteNotFound, format!("there is no error code {}", path.as_str()))
    })?;
    let page = ErrorEntryPage { entry: entry.into() };
    let html = page.render().map_err(|e| ClavisError::internal("render", e))?;
    Ok(HttpResponse::Ok().content_type("text/html; charset=utf-8").body(html))
}

/// Register the web pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(home).service(errors).service(error_entry);
    console::configure(cfg);
    console::audit::configure(cfg);
    staff::configure(cfg);
}

/// The error-code reference as Markdown (`docs/errors.md` is generated from this; a test keeps it current).
pub fn errors_markdown() -> String {
    let mut out = String::from(
        "# Error codes\n\nGenerated from the error catalog (`services/core/src/error.rs`) by `clavis errors`; do not edit by hand.\n\n\
         Every error answer carries its code in the `code` field of the `application/problem+json` body and in the \
         `X-Clavis-Error` header.\n\n| Code | HTTP | Name | Meaning | What to do |\n|---|---|---|---|---|\n",
    );
    for e in ErrorCode::ALL {
        out.push_str(&format!(
            "| {} | {} | `{}` | {} | {} |\n",
            e.code(),
            e.status().as_u16(),
            e.name(),
            e.title(),
            e.remedy().replace('|', "\\|")
        ));
    }
    out
}
