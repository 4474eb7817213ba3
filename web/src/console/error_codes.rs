//! The error-code browser: the whole catalog (the one in `clavis_core::error`, as the API and docs/errors.md use it),
//! searched with a plain GET form, with how often each code refused this tenant's licenses in the last 24 hours.

use std::collections::HashMap;

use actix_web::{get, web};
use askama::Template;
use clavis_core::ErrorCode;
use clavis_licenses::LicenseService;
use clavis_tenant::Role;
use serde::Deserialize;

use super::pages::{Page, ok};
use super::{Shell, SignedIn};
use crate::EntryView;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

#[derive(Deserialize)]
struct Search {
    #[serde(default)]
    q: String,
    /// Only codes that refused a license in the last 24 hours.
    #[serde(default)]
    seen: Option<String>,
}

struct Row {
    entry: EntryView,
    last_day: u64,
}

#[derive(Template)]
#[template(path = "console/error_codes.html")]
struct ErrorCodesPage {
    shell: Shell,
    q: String,
    seen_only: bool,
    rows: Vec<Row>,
    total: usize,
}

/// Whether an entry matches every word of the search (code, name, title or what to do; case-insensitive).
fn matches(entry: &EntryView, words: &[String]) -> bool {
    let haystack =
        format!("{} {} {} {} {}", entry.code, entry.status, entry.name, entry.title, entry.remedy).to_lowercase();
    words.iter().all(|w| haystack.contains(w.as_str()))
}

#[get("/console/errors")]
async fn error_codes(session: SignedIn, service: web::Data<LicenseService>, search: web::Query<Search>) -> Page {
    session.require(Role::Viewer)?;
    let since = chrono::Utc::now().timestamp_millis() - DAY_MS;
    let counts: HashMap<u16, u64> =
        service.log().refusals_by_code(session.tenant.id, since).await?.into_iter().collect();
    let words: Vec<String> = search.q.split_whitespace().take(10).map(str::to_lowercase).collect();
    let seen_only = search.seen.is_some();
    let rows: Vec<Row> = ErrorCode::ALL
        .iter()
        .copied()
        .map(EntryView::from)
        .filter(|e| matches(e, &words))
        .map(|entry| Row { last_day: counts.get(&entry.code).copied().unwrap_or(0), entry })
        .filter(|r| !seen_only || r.last_day > 0)
        .collect();
    ok(&ErrorCodesPage { shell: session.shell(), q: search.q.clone(), seen_only, rows, total: ErrorCode::ALL.len() })
}

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(error_codes);
}
