//! License endpoints (called by players) and the tenant's view of its license log.

use actix_web::{HttpRequest, HttpResponse, get, web};
use clavis_core::ids::{Drm, SiteId};
use clavis_core::{ClavisError, ErrorCode, Result};
use clavis_tenant::{Directory, TenantAuth};
use serde::Deserialize;

use clavis_tokens::Credential;

use crate::clearkey::MAX_REQUEST_BYTES;
use crate::cors;
use crate::log::{LogQuery, LogRow, Outcome};
use crate::service::{LicenseService, Story};

pub const TOKEN_HEADER: &str = "x-clavis-token";

/// A token as it arrived: which format (by header or query parameter name) and its text.
pub enum RawToken {
    Native(String),
    Pallycon(String),
    Drmtoday(String),
    Axinom(String),
}

impl RawToken {
    pub fn credential(&self) -> Credential<'_> {
        match self {
            RawToken::Native(raw) => Credential::Native(raw),
            RawToken::Pallycon(raw) => Credential::Pallycon(raw),
            RawToken::Drmtoday(raw) => Credential::Drmtoday(raw),
            RawToken::Axinom(raw) => Credential::Axinom(raw),
        }
    }
}

/// The token from the `X-Clavis-Token`, `pallycon-customdata-v2`, `x-dt-auth-token` (DRMtoday) or `X-AxDRM-Message`
/// (Axinom) header, in that order (header names are case-insensitive), else the `token` or `pallycon-customdata-v2`
/// query parameter.
pub(crate) fn token_from(req: &HttpRequest) -> Option<RawToken> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(|v| v.trim().to_owned());
    if let Some(value) = header(TOKEN_HEADER) {
        return Some(RawToken::Native(value));
    }
    if let Some(value) = header(clavis_tokens::pallycon::HEADER) {
        return Some(RawToken::Pallycon(value));
    }
    if let Some(value) = header(clavis_tokens::drmtoday::HEADER) {
        return Some(RawToken::Drmtoday(value));
    }
    if let Some(value) = header(clavis_tokens::axinom_integration::HEADER) {
        return Some(RawToken::Axinom(value));
    }
    url::form_urlencoded::parse(req.query_string().as_bytes()).find_map(|(k, v)| match &*k {
        "token" => Some(RawToken::Native(v.into_owned())),
        clavis_tokens::pallycon::HEADER => Some(RawToken::Pallycon(v.into_owned())),
        _ => None,
    })
}

/// A callback-mode value from `X-Clavis-Callback` or the `callback` query parameter (with the User-Agent as the
/// device facts), when the request carries one.
pub(crate) fn callback_from(req: &HttpRequest) -> Result<Option<crate::callback::CallbackValue>> {
    let raw = req
        .headers()
        .get(crate::callback::HEADER)
        .map(|v| v.to_str().map(|s| s.trim().to_owned()))
        .transpose()
        .map_err(|_| ClavisError::new(ErrorCode::CallbackValueMalformed, "X-Clavis-Callback is not ASCII"))?
        .or_else(|| {
            url::form_urlencoded::parse(req.query_string().as_bytes())
                .find_map(|(k, v)| (k == crate::callback::QUERY).then(|| v.into_owned()))
        });
    let Some(raw) = raw else { return Ok(None) };
    let user_agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(512).collect());
    crate::callback::CallbackValue::parse(&raw, user_agent).map(Some)
}

pub(crate) fn story(req: &HttpRequest, drm: Drm) -> Story {
    use actix_web::HttpMessage;
    Story::new(
        drm,
        cors::request_origin(req),
        clavis_core::http::peer_ip(req),
        clavis_core::http::request_id(req).and_then(|v| v.to_str().ok().map(str::to_owned)),
    )
    .with_root_span(req.extensions().get::<tracing_actix_web::RootSpan>().cloned())
}

/// A W3C ClearKey license. The body is the CDM's license request (`{"kids":[...],"type":"temporary"}`); the token
/// comes in `X-Clavis-Token` or `?token=`, or, for tenants that configured the format under
/// `/api/v1/integrations/`, as a PallyCon token (`pallycon-customdata-v2` header or query parameter), a DRMtoday
/// upfront token (`x-dt-auth-token`) or an Axinom license service message (`X-AxDRM-Message`). Errors carry their
/// catalog code in `X-Clavis-Error`.
#[utoipa::path(
    post, path = "/license/clearkey", tag = "licenses",
    params(("token" = Option<String>, Query, description = "The license token, when not sent in X-Clavis-Token"), ("callback" = Option<String>, Query, description = "Callback mode: `<site_id>.<session>`, when not sent in X-Clavis-Callback")),
    request_body(content = String, content_type = "application/json", description = "The EME ClearKey license request"),
    responses(
        (status = 200, description = "The ClearKey license (JWK set, base64url without padding)", content_type = "application/json"),
        (status = 400, description = "5001 license request malformed", body = clavis_core::error::Problem),
        (status = 401, description = "4001-4007 token missing, malformed, bad signature, unknown key, expired, not yet valid, unknown issuer", body = clavis_core::error::Problem),
        (status = 403, description = "2003 tenant suspended, 4008 token for another content, 4009 token for another DRM, 4011 single-use token already used (DRMtoday tokens always are), 5002 KID not in content (or not granted by an Axinom message), 5003 origin not allowed, 5004 persistence not allowed, 5006 track not allowed", body = clavis_core::error::Problem),
        (status = 404, description = "4012 token format not configured by the tenant, 5005 content has no keys", body = clavis_core::error::Problem),
        (status = 422, description = "4010 the token's policy (or a foreign token's rights) cannot be applied", body = clavis_core::error::Problem),
        (status = 413, description = "1012 body too large", body = clavis_core::error::Problem),
    )
)]
pub async fn clearkey(req: HttpRequest, payload: web::Payload, service: web::Data<LicenseService>) -> HttpResponse {
    let body = clavis_core::http::read_body(payload, MAX_REQUEST_BYTES).await;
    clearkey_answer(&req, body, &service).await
}

/// The ClearKey answer for a body as read (or the error of reading it).
pub(crate) async fn clearkey_answer(
    req: &HttpRequest,
    body: Result<web::Bytes>,
    service: &LicenseService,
) -> HttpResponse {
    let mut story = story(req, Drm::ClearKey);
    let token = token_from(req);
    let result = async {
        story.callback = callback_from(req)?;
        story.read_facts(req.headers())?;
        service.clearkey(&mut story, token.as_ref().map(RawToken::credential), &body?).await
    }
    .await;
    service.finish(story, result, "application/json").await
}

/// PallyCon's license URL, for players migrating from PallyCon without changing theirs: the DRM is the PallyCon
/// token's `drm_type`, or what the body is (a ClearKey JSON request, a FairPlay SPC, a PlayReady SOAP challenge,
/// else a Widevine challenge). Each answers as its own endpoint does.
#[utoipa::path(
    post, path = "/ri/licenseManager.do", tag = "licenses",
    params(("pallycon-customdata-v2" = Option<String>, Query, description = "The PallyCon token, when not in the header")),
    request_body(content = String, content_type = "application/octet-stream", description = "The DRM's license request, as for its own endpoint"),
    responses(
        (status = 200, description = "The license, as the DRM's own endpoint answers it", content_type = "application/octet-stream"),
        (status = 400, description = "5001, 5010, 5080, 5081: the DRM's request is malformed", body = clavis_core::error::Problem),
        (status = 401, description = "4001-4007 token missing or invalid", body = clavis_core::error::Problem),
        (status = 403, description = "The refusals of the DRM's own endpoint (4008, 4009, 4011, 5002-5008, 5041, 5060-5063)", body = clavis_core::error::Problem),
        (status = 404, description = "4012, 5005, 5014, 5070", body = clavis_core::error::Problem),
        (status = 413, description = "1012 body too large", body = clavis_core::error::Problem),
        (status = 422, description = "4010 the token's policy cannot be applied", body = clavis_core::error::Problem),
        (status = 502, description = "5073, 5074, 5076, 5077 upstream failures", body = clavis_core::error::Problem),
        (status = 504, description = "5075 upstream too slow", body = clavis_core::error::Problem),
    )
)]
pub async fn pallycon_alias(
    req: HttpRequest,
    payload: web::Payload,
    service: web::Data<LicenseService>,
    vault: web::Data<clavis_tenant::SecretVault>,
) -> HttpResponse {
    let body = clavis_core::http::read_body(payload, crate::fairplay::MAX_KSM_BODY).await;
    let named = match token_from(&req) {
        Some(RawToken::Pallycon(raw)) => clavis_tokens::pallycon::drm_type_of(&raw),
        _ => None,
    };
    let drm = named.or_else(|| body.as_deref().ok().map(sniff_drm)).unwrap_or(Drm::Widevine);
    match drm {
        Drm::ClearKey | Drm::HlsAes => clearkey_answer(&req, body, &service).await,
        Drm::FairPlay => crate::fairplay::ksm_answer(&req, body, &service, &vault).await,
        Drm::PlayReady => crate::playready::answer(&req, body, &service).await,
        Drm::Widevine => crate::widevine::answer(&req, body, &service).await,
    }
}

/// Which DRM a license request body is for, by its shape.
fn sniff_drm(body: &[u8]) -> Drm {
    let text = body.trim_ascii_start();
    if text.starts_with(b"{") {
        Drm::ClearKey
    } else if text.starts_with(b"<") || body.starts_with(&[0xff, 0xfe]) || body.get(1) == Some(&0) && body[0] == b'<' {
        Drm::PlayReady
    } else if text.starts_with(b"spc=") || body.starts_with(&[0, 0, 0]) {
        Drm::FairPlay
    } else {
        Drm::Widevine
    }
}

/// The tenant's cross-domain policy for legacy (Flash-era) players, made from its allowed origins.
#[utoipa::path(
    get, path = "/license/{site_id}/crossdomain.xml", tag = "licenses",
    params(("site_id" = String, Path, description = "The tenant's site id")),
    responses(
        (status = 200, description = "The cross-domain policy", content_type = "text/x-cross-domain-policy", body = String),
        (status = 404, description = "2004 no tenant has this site id", body = clavis_core::error::Problem),
    )
)]
pub async fn crossdomain(path: web::Path<String>, directory: web::Data<Directory>) -> Result<HttpResponse> {
    let unknown = || ClavisError::new(ErrorCode::TenantNotFound, "no tenant has this site id");
    let site_id = SiteId::parse(&path).map_err(|_| unknown())?;
    let tenant = directory.by_site_id(site_id).await?.ok_or_else(unknown)?;
    Ok(HttpResponse::Ok()
        .content_type("text/x-cross-domain-policy")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "max-age=300"))
        .body(cors::crossdomain_xml(&tenant.settings.allowed_origins)))
}

pub async fn preflight(req: HttpRequest) -> HttpResponse {
    cors::preflight(&req)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    /// Rows to return, newest first (1 to 1000, default 50).
    pub limit: Option<u64>,
    /// `issued` or `denied`.
    pub outcome: Option<String>,
    pub content_id: Option<String>,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    /// `true`: only flagged rows (rollbacks).
    pub flagged: Option<bool>,
}

/// The tenant's license log, newest first. Rows are written in batches within about 50 ms of the request.
#[utoipa::path(
    get, path = "/api/v1/license-log", tag = "licenses",
    security(("api_key" = [])),
    params(LogParams),
    responses(
        (status = 200, body = Vec<LogRow>),
        (status = 400, description = "1014 malformed query", body = clavis_core::error::Problem),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
    )
)]
#[get("/api/v1/license-log")]
pub async fn license_log(
    auth: TenantAuth,
    service: web::Data<LicenseService>,
    params: web::Query<LogParams>,
) -> Result<HttpResponse> {
    let params = params.into_inner();
    let outcome = match params.outcome.as_deref() {
        None => None,
        Some("issued") => Some(Outcome::Issued),
        Some("denied") => Some(Outcome::Denied),
        Some(_) => return Err(ClavisError::invalid("outcome", "must be issued or denied")),
    };
    let query = LogQuery {
        limit: params.limit.unwrap_or(50),
        outcome,
        content_id: params.content_id,
        user_id: params.user_id,
        device_id: params.device_id,
        flagged: params.flagged.unwrap_or(false),
        ..LogQuery::default()
    };
    let rows = service.log().recent(auth.tenant.id, &query).await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// Every path under `/license/` answers preflights; unknown license paths answer from the catalog.
pub async fn unknown_license_path(req: HttpRequest) -> HttpResponse {
    let err = ClavisError::new(ErrorCode::RouteNotFound, format!("no license endpoint at {}", req.path()));
    let mut response = actix_web::ResponseError::error_response(&err);
    cors::apply(&mut response, cors::request_origin(&req).as_deref(), true);
    response
}
