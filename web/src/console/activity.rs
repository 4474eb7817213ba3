//! The dashboard (licenses issued and denied over time as an SVG chart drawn on the server, by DRM, by error code)
//! and the license log search, whose rows open the request's whole story: what was asked, which rule decided, and
//! what the catalog says to do about it.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{get, web};
use askama::Template;
use chrono::{DateTime, NaiveDateTime, Utc};
use clavis_core::{ClavisError, ErrorCode};
use clavis_licenses::LicenseService;
use clavis_licenses::log::{LogQuery, LogRow, Outcome};
use clavis_tenant::Role;
use serde::Deserialize;

use super::pages::{Page, console, html};
use super::{Console, Shell, SignedIn};

const HOUR_MS: i64 = 3_600_000;
/// Rows per page of the log search.
const LOG_PAGE: u64 = 50;

/// A dashboard range: how far back, in buckets of what size.
#[derive(Clone, Copy)]
struct Range {
    name: &'static str,
    label: &'static str,
    buckets: i64,
    bucket_ms: i64,
}

const RANGES: [Range; 2] = [
    Range { name: "24h", label: "last 24 hours", buckets: 24, bucket_ms: HOUR_MS },
    Range { name: "7d", label: "last 7 days", buckets: 28, bucket_ms: 6 * HOUR_MS },
];

pub(crate) struct Bar {
    pub(crate) x: u32,
    pub(crate) issued_y: u32,
    pub(crate) issued_height: u32,
    pub(crate) denied_y: u32,
    pub(crate) denied_height: u32,
    pub(crate) title: String,
}

pub(crate) struct AxisLabel {
    pub(crate) x: u32,
    pub(crate) text: String,
}

/// The chart, laid out in Rust so the template (`chart.html`, shared with the support console) only draws rectangles.
pub(crate) struct Chart {
    pub(crate) bars: Vec<Bar>,
    pub(crate) labels: Vec<AxisLabel>,
    pub(crate) max: u64,
    pub(crate) bar_width: u32,
    pub(crate) summary: String,
}

const CHART_WIDTH: u32 = 720;
const CHART_HEIGHT: u32 = 180;
const CHART_LEFT: u32 = 40;

fn chart(range: Range, now_ms: i64, per_bucket: &BTreeMap<i64, (u64, u64)>) -> Chart {
    let first = (now_ms / range.bucket_ms - (range.buckets - 1)) * range.bucket_ms;
    let max = per_bucket.values().map(|(i, d)| i + d).max().unwrap_or(0).max(1);
    let slot = (CHART_WIDTH - CHART_LEFT) / u32::try_from(range.buckets).unwrap_or(1);
    let bar_width = slot.saturating_sub(2).max(1);
    let scale = |n: u64| u32::try_from(n * u64::from(CHART_HEIGHT) / max).unwrap_or(CHART_HEIGHT);
    let mut bars = Vec::new();
    let mut labels = Vec::new();
    let (mut total_issued, mut total_denied) = (0, 0);
    for i in 0..range.buckets {
        let start = first + i * range.bucket_ms;
        let (issued, denied) = per_bucket.get(&start).copied().unwrap_or((0, 0));
        total_issued += issued;
        total_denied += denied;
        let x = CHART_LEFT + u32::try_from(i).unwrap_or(0) * slot;
        let (issued_height, denied_height) = (scale(issued), scale(denied));
        let when =
            DateTime::from_timestamp_millis(start).map(|t| t.format("%m-%d %H:00").to_string()).unwrap_or_default();
        bars.push(Bar {
            x,
            issued_y: CHART_HEIGHT - issued_height,
            issued_height,
            denied_y: CHART_HEIGHT - issued_height - denied_height,
            denied_height,
            title: format!("{when} UTC: {issued} issued, {denied} denied"),
        });
        if i % (range.buckets / 4).max(1) == 0 {
            labels.push(AxisLabel { x, text: when });
        }
    }
    Chart {
        bars,
        labels,
        max,
        bar_width,
        summary: format!("{total_issued} licenses issued and {total_denied} denied in the {}", range.label),
    }
}

pub(crate) struct DrmRow {
    pub(crate) drm: String,
    pub(crate) issued: u64,
    pub(crate) denied: u64,
}

struct CodeRow {
    code: u16,
    title: &'static str,
    count: u64,
}

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct DashboardPage {
    shell: Shell,
    key_count: usize,
    range: &'static str,
    chart: Chart,
    drms: Vec<DrmRow>,
    codes: Vec<CodeRow>,
}

/// The tenant's licenses over the range: where it starts, the chart, and the counts by DRM.
async fn activity(
    service: &LicenseService,
    tenant_id: clavis_core::ids::TenantId,
    range: Range,
) -> Result<(i64, Chart, Vec<DrmRow>), ClavisError> {
    let now_ms = Utc::now().timestamp_millis();
    let since = (now_ms / range.bucket_ms - (range.buckets - 1)) * range.bucket_ms;
    let activity = service.log().activity(tenant_id, since, range.bucket_ms).await?;
    let mut per_bucket: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    let mut per_drm: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for a in &activity {
        for entry in [per_bucket.entry(a.bucket_start_ms).or_default(), per_drm.entry(a.drm.clone()).or_default()] {
            if a.issued {
                entry.0 += a.count;
            } else {
                entry.1 += a.count;
            }
        }
    }
    let drms = per_drm.into_iter().map(|(drm, (issued, denied))| DrmRow { drm, issued, denied }).collect();
    Ok((since, chart(range, now_ms, &per_bucket), drms))
}

/// The last 24 hours, as the dashboard's default range shows them (the support console's tenant page).
pub(crate) async fn last_day(
    service: &LicenseService,
    tenant_id: clavis_core::ids::TenantId,
) -> Result<(Chart, Vec<DrmRow>), ClavisError> {
    let (_, chart, drms) = activity(service, tenant_id, RANGES[0]).await?;
    Ok((chart, drms))
}

#[derive(Deserialize)]
struct DashboardQuery {
    #[serde(default)]
    range: String,
}

#[get("/console")]
async fn dashboard(
    session: SignedIn,
    data: web::Data<Console>,
    service: web::Data<LicenseService>,
    query: web::Query<DashboardQuery>,
) -> Page {
    session.require(Role::Viewer)?;
    let range = RANGES.iter().copied().find(|r| r.name == query.range).unwrap_or(RANGES[0]);
    let (since, chart, drms) = activity(&service, session.tenant.id, range).await?;
    let mut codes: Vec<CodeRow> = service
        .log()
        .refusals_by_code(session.tenant.id, since)
        .await?
        .into_iter()
        .map(|(code, count)| CodeRow {
            code,
            title: ErrorCode::by_code(code).map_or("(retired code)", ErrorCode::title),
            count,
        })
        .collect();
    codes.sort_by(|a, b| b.count.cmp(&a.count).then(a.code.cmp(&b.code)));
    let keys = console(&data).directory.api_keys(session.tenant.id).await?;
    html(
        StatusCode::OK,
        &DashboardPage {
            shell: session.shell(),
            key_count: keys.iter().filter(|k| k.revoked_at.is_none()).count(),
            range: range.name,
            chart,
            drms,
            codes,
        },
    )
}

// ---------------------------------------------------------------------------------------------------------------
// The log search and a request's story

#[derive(Deserialize, Default, Clone)]
struct LogSearch {
    #[serde(default)]
    user: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    device: String,
    /// `issued`, `denied` or empty for both.
    #[serde(default)]
    outcome: String,
    /// UTC, `2026-11-28T10:00` (or RFC 3339).
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// Paging cursor `<at_ms>.<id>` of the last row shown.
    #[serde(default)]
    before: String,
}

fn parse_time(field: &'static str, value: &str) -> Result<Option<i64>, ClavisError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        return Ok(Some(at.timestamp_millis()));
    }
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
        .map(|t| Some(t.and_utc().timestamp_millis()))
        .ok_or_else(|| ClavisError::invalid(field, format!("{value:?} is not a UTC time like 2026-11-28T10:00")))
}

fn optional(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

impl LogSearch {
    fn query(&self) -> Result<LogQuery, ClavisError> {
        let outcome = match self.outcome.as_str() {
            "" => None,
            "issued" => Some(Outcome::Issued),
            "denied" => Some(Outcome::Denied),
            other => return Err(ClavisError::invalid("outcome", format!("{other:?} is not issued or denied"))),
        };
        let before = match self.before.split_once('.') {
            None if self.before.is_empty() => None,
            Some((at, id)) => Some((at.parse().ok(), id.parse().ok())).and_then(|(a, i)| Some((a?, i?))),
            None => None,
        };
        Ok(LogQuery {
            limit: LOG_PAGE,
            outcome,
            content_id: optional(&self.content),
            user_id: optional(&self.user),
            device_id: optional(&self.device),
            flagged: false,
            since_ms: parse_time("from", &self.from)?,
            until_ms: parse_time("to", &self.to)?,
            before,
        })
    }

    /// The search as a query string, without the cursor.
    fn query_string(&self) -> String {
        let enc = |v: &str| percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string();
        format!(
            "user={}&content={}&device={}&outcome={}&from={}&to={}",
            enc(&self.user),
            enc(&self.content),
            enc(&self.device),
            enc(&self.outcome),
            enc(&self.from),
            enc(&self.to)
        )
    }
}

struct LogLine {
    id: i64,
    at: String,
    drm: String,
    user: String,
    content: String,
    outcome: String,
    code: String,
    rule: String,
}

impl From<&LogRow> for LogLine {
    fn from(r: &LogRow) -> Self {
        LogLine {
            id: r.id,
            at: r.at.replace('T', " ").trim_end_matches('Z').to_owned(),
            drm: r.drm.clone(),
            user: r.user_id.clone().unwrap_or_default(),
            content: r.content_id.clone().unwrap_or_default(),
            outcome: r.outcome.clone(),
            code: r.error_code.map(|c| c.to_string()).unwrap_or_default(),
            rule: r.rule.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/logs.html")]
struct LogsPage {
    shell: Shell,
    search: LogSearch,
    error: Option<String>,
    lines: Vec<LogLine>,
    next: Option<String>,
}

#[get("/console/logs")]
async fn logs(session: SignedIn, service: web::Data<LicenseService>, search: web::Query<LogSearch>) -> Page {
    session.require(Role::Viewer)?;
    let search = search.into_inner();
    let (lines, next, error, status) = match search.query() {
        Ok(query) => {
            let rows = service.log().recent(session.tenant.id, &query).await?;
            let next = (rows.len() as u64 == LOG_PAGE).then(|| rows.last()).flatten().and_then(|last| {
                let at = DateTime::parse_from_rfc3339(&last.at).ok()?.timestamp_millis();
                Some(format!("{}&before={at}.{}", search.query_string(), last.id))
            });
            (rows.iter().map(LogLine::from).collect(), next, None, StatusCode::OK)
        }
        Err(e) => {
            (Vec::new(), None, Some(format!("{}: {}", e.field.as_deref().unwrap_or(""), e.detail)), e.code.status())
        }
    };
    html(status, &LogsPage { shell: session.shell(), search, error, lines, next })
}

#[derive(Template)]
#[template(path = "console/log_entry.html")]
struct LogEntryPage {
    shell: Shell,
    row: LogRow,
    /// The refusal's catalog entry: (code, title, HTTP status, what to do).
    refusal: Option<(u16, &'static str, u16, &'static str)>,
}

#[get("/console/logs/{id}")]
async fn log_entry(session: SignedIn, service: web::Data<LicenseService>, path: web::Path<String>) -> Page {
    session.require(Role::Viewer)?;
    let not_found = || ClavisError::new(ErrorCode::RouteNotFound, "no such license log entry in this account");
    let id: i64 = path.parse().map_err(|_| not_found())?;
    let row = service.log().row(session.tenant.id, id).await?.ok_or_else(not_found)?;
    let refusal = row
        .error_code
        .and_then(|c| u16::try_from(c).ok())
        .and_then(ErrorCode::by_code)
        .map(|e| (e.code(), e.title(), e.status().as_u16(), e.remedy()));
    html(StatusCode::OK, &LogEntryPage { shell: session.shell(), row, refusal })
}

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(dashboard).service(logs).service(log_entry);
}
