//! The device endpoints: `/license/devices/...` for apps (CORS per tenant, like every license endpoint) and
//! `/api/v1/devices...` for the tenant's backend.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use clavis_core::http::ValidJson;
use clavis_core::policy::Policy;
use clavis_core::{ClavisError, ErrorCode, Result};
use clavis_tenant::TenantAuth;
use clavis_tokens::TokenService;
use serde::Deserialize;

use super::{BundleCheck, BundleView, DeviceService, DeviceView};
use crate::api::{RawToken, token_from};
use crate::cors;

/// Largest body of the app-facing device endpoints.
const MAX_BODY: usize = 64 * 1024;

/// Answer with CORS for the tenant's allowed origins (all origins until the tenant is known).
fn answer(req: &HttpRequest, allowed: bool, result: Result<HttpResponse>) -> HttpResponse {
    let mut response = result.unwrap_or_else(|err| actix_web::ResponseError::error_response(&err));
    cors::apply(&mut response, cors::request_origin(req).as_deref(), allowed);
    response
}

fn origin_refused() -> ClavisError {
    ClavisError::new(ErrorCode::OriginNotAllowed, "the origin is not in the tenant's allowed origins")
}

fn jose_body(body: String) -> HttpResponse {
    HttpResponse::Ok().insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/jose"))).body(body)
}

/// Body of `POST /license/devices`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    /// A random id the app chose for itself (1 to 128 of `A-Za-z0-9-_.`).
    pub device_id: String,
    /// The device's public key, a P-256 JWK (`kty` EC, `crv` P-256, `x`, `y`).
    #[schema(value_type = Object)]
    pub public_key: serde_json::Value,
    /// A name for the console (default: the device id).
    #[serde(default)]
    pub name: Option<String>,
}

/// Register a device key for the user named by a token in `X-Clavis-Token` or `?token=`: any native license token of
/// the tenant for that user (it is not used up), or a device-registration token the tenant signed with one of its
/// token signing keys (`aud` `clavis-device-registration`, no content; docs/offline.md). The first registration of a device id counts against the policy's
/// `max_devices` (the token's effective policy); registering the same key again answers the device unchanged (200);
/// after a reset, registering a new key makes the next key generation (200).
#[utoipa::path(
    post, path = "/license/devices", tag = "devices",
    params(("token" = Option<String>, Query, description = "The license token, when not sent in X-Clavis-Token")),
    request_body = RegisterBody,
    responses(
        (status = 201, body = DeviceView, description = "registered"),
        (status = 200, body = DeviceView, description = "already registered with this key, or the new key after a reset"),
        (status = 400, description = "1010 malformed JSON", body = clavis_core::error::Problem),
        (status = 401, description = "4001-4007 token missing, malformed, bad signature, unknown key, expired, not yet valid, unknown issuer", body = clavis_core::error::Problem),
        (status = 403, description = "2003 tenant suspended, 5003 origin not allowed, 5041 device limit reached", body = clavis_core::error::Problem),
        (status = 409, description = "5043 device id registered with another key or for another user", body = clavis_core::error::Problem),
        (status = 413, description = "1012 body too large", body = clavis_core::error::Problem),
        (status = 422, description = "5040 device id or public key invalid", body = clavis_core::error::Problem),
    )
)]
pub async fn register(
    req: HttpRequest,
    payload: web::Payload,
    tokens: web::Data<TokenService>,
    devices: web::Data<DeviceService>,
) -> HttpResponse {
    let mut allowed = true;
    let result = async {
        let body = clavis_core::http::read_body(payload, MAX_BODY).await?;
        let token = match token_from(&req) {
            Some(RawToken::Native(raw)) => raw,
            _ => {
                return Err(ClavisError::new(
                    ErrorCode::TokenMissing,
                    "send a license token of the user in X-Clavis-Token or the `token` query parameter",
                ));
            }
        };
        // A device-registration token (tenant-signed, naming only the user) or any license token of the user.
        let (tenant, user_id, max_devices) = if clavis_tokens::registration::is_registration_token(&token) {
            let presented = clavis_tokens::registration::PresentedRegistration::parse(&token)?;
            let tenant = tokens.registration_issuer(&presented).await?;
            tenant.ensure_active()?;
            allowed = tenant.settings.origin_allowed(cors::request_origin(&req).as_deref());
            if !allowed {
                return Err(origin_refused());
            }
            let verified = presented.verify(tokens.signing_keys(), tenant.clone()).await?;
            (tenant, verified.user_id, verified.policy.max_devices)
        } else {
            let presented = tokens.parse(clavis_tokens::Credential::Native(&token))?;
            let tenant = tokens.issuer(&presented).await?;
            tenant.ensure_active()?;
            allowed = tenant.settings.origin_allowed(cors::request_origin(&req).as_deref());
            if !allowed {
                return Err(origin_refused());
            }
            let verified = tokens.verify(tenant.clone(), presented).await?;
            (tenant, verified.user_id, verified.policy.max_devices)
        };
        let body: RegisterBody = serde_json::from_slice(&body)
            .map_err(|e| ClavisError::new(ErrorCode::DeviceRegistrationInvalid, format!("not a registration: {e}")))?;
        let (view, created) = devices
            .register(&tenant, user_id.as_str(), max_devices, &body.device_id, &body.public_key, body.name.as_deref())
            .await?;
        Ok(if created { HttpResponse::Created().json(view) } else { HttpResponse::Ok().json(view) })
    }
    .await;
    answer(&req, allowed, result)
}

/// A device resets itself (a DRM factory reset): the body is a compact JWS (ES256) signed with its registered key
/// over `{"device_id": "...", "action": "reset", "iat": <unix seconds, within five minutes>}`. The current key
/// generation is revoked; the device must register a new key.
#[utoipa::path(
    post, path = "/license/devices/{site_id}/{device_id}/reset", tag = "devices",
    params(("site_id" = String, Path), ("device_id" = String, Path)),
    request_body(content = String, content_type = "application/jose", description = "The device's signed reset proof"),
    responses(
        (status = 200, body = DeviceView),
        (status = 401, description = "5048 proof invalid", body = clavis_core::error::Problem),
        (status = 404, description = "2004 unknown site, 5042 device not found", body = clavis_core::error::Problem),
        (status = 413, description = "1012 body too large", body = clavis_core::error::Problem),
    )
)]
pub async fn reset_by_device(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    devices: web::Data<DeviceService>,
) -> HttpResponse {
    let mut allowed = true;
    let result = async {
        let (site_id, device_id) = path.into_inner();
        let body = clavis_core::http::read_body(payload, MAX_BODY).await?;
        let tenant = devices.tenant_by_site(&site_id).await?;
        allowed = tenant.settings.origin_allowed(cors::request_origin(&req).as_deref());
        let proof = String::from_utf8_lossy(&body);
        let view = devices.reset_by_device(&tenant, &device_id, &proof).await?;
        Ok(HttpResponse::Ok().json(view))
    }
    .await;
    answer(&req, allowed, result)
}

/// A bundle Clavis stored for a device and content (the compact JWE, `application/jose`). Refused once the device
/// was reset (5046) or the bundle expired (5045).
#[utoipa::path(
    get, path = "/license/devices/{site_id}/{device_id}/bundles/{content_id}", tag = "devices",
    params(("site_id" = String, Path), ("device_id" = String, Path), ("content_id" = String, Path)),
    responses(
        (status = 200, description = "The compact JWE", content_type = "application/jose"),
        (status = 403, description = "5045 bundle expired, 5046 bundle revoked (device reset)", body = clavis_core::error::Problem),
        (status = 404, description = "2004 unknown site, 5042 device not found, 5050 no bundle", body = clavis_core::error::Problem),
    )
)]
pub async fn get_bundle(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    devices: web::Data<DeviceService>,
) -> HttpResponse {
    let mut allowed = true;
    let result = async {
        let (site_id, device_id, content_id) = path.into_inner();
        let tenant = devices.tenant_by_site(&site_id).await?;
        allowed = tenant.settings.origin_allowed(cors::request_origin(&req).as_deref());
        Ok(jose_body(devices.stored_bundle(tenant.id, &device_id, &content_id).await?))
    }
    .await;
    answer(&req, allowed, result)
}

/// Body of `POST /license/devices/bundles/check`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
    /// The device presenting the bundle.
    pub device_id: String,
    /// The bundle's inner compact JWS (what the device decrypted from the JWE).
    pub jws: String,
}

/// Online bundle check: the JWS verifies with its tenant's device-license key, is for this device, has not expired,
/// and is for the device's current key generation.
#[utoipa::path(
    post, path = "/license/devices/bundles/check", tag = "devices",
    request_body = CheckBody,
    responses(
        (status = 200, body = BundleCheck),
        (status = 400, description = "5044 bundle invalid (not a JWS, unknown issuer, bad signature)", body = clavis_core::error::Problem),
        (status = 403, description = "5045 expired, 5046 revoked, 5047 for another device", body = clavis_core::error::Problem),
        (status = 404, description = "5042 device not found", body = clavis_core::error::Problem),
        (status = 413, description = "1012 body too large", body = clavis_core::error::Problem),
    )
)]
pub async fn check(req: HttpRequest, payload: web::Payload, devices: web::Data<DeviceService>) -> HttpResponse {
    let result = async {
        let body = clavis_core::http::read_body(payload, MAX_BODY).await?;
        let body: CheckBody = serde_json::from_slice(&body)
            .map_err(|_| ClavisError::new(ErrorCode::DeviceBundleInvalid, "send {\"device_id\", \"jws\"}"))?;
        Ok(HttpResponse::Ok().json(devices.check(&body.device_id, &body.jws).await?))
    }
    .await;
    answer(&req, true, result)
}

/// The tenant's device-license verification key as a JWKS (Ed25519, `alg` EdDSA).
#[utoipa::path(
    get, path = "/license/devices/keys/{site_id}", tag = "devices",
    params(("site_id" = String, Path)),
    responses(
        (status = 200, description = "JWKS", content_type = "application/json"),
        (status = 404, description = "2004 unknown site", body = clavis_core::error::Problem),
    )
)]
pub async fn jwks(req: HttpRequest, path: web::Path<String>, devices: web::Data<DeviceService>) -> HttpResponse {
    let result = async {
        let tenant = devices.tenant_by_site(&path).await?;
        let key = devices.signing_key(tenant.id).await?;
        Ok(HttpResponse::Ok().json(serde_json::json!({"keys": [key.public_jwk()]})))
    }
    .await;
    answer(&req, true, result)
}

/// The tenant's signed revocation list: a compact JWS (EdDSA, `typ` clavis-revocations+jwt) whose payload is
/// `{"iss": site_id, "version": n, "iat", "revoked": [{"device_id", "generation"}]}`. `version` grows with every
/// revocation; clients keep the highest version they verified and refuse bundles it lists.
#[utoipa::path(
    get, path = "/license/devices/revocations/{site_id}", tag = "devices",
    params(("site_id" = String, Path)),
    responses(
        (status = 200, description = "The compact JWS", content_type = "application/jose"),
        (status = 404, description = "2004 unknown site", body = clavis_core::error::Problem),
    )
)]
pub async fn revocations(req: HttpRequest, path: web::Path<String>, devices: web::Data<DeviceService>) -> HttpResponse {
    let result = async {
        let tenant = devices.tenant_by_site(&path).await?;
        Ok(jose_body(devices.revocation_list(&tenant).await?))
    }
    .await;
    answer(&req, true, result)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only this user's devices.
    pub user_id: Option<String>,
}

/// The tenant's devices (all, or one user's), oldest first.
#[utoipa::path(
    get, path = "/api/v1/devices", tag = "devices",
    security(("api_key" = [])),
    params(ListParams),
    responses(
        (status = 200, body = Vec<DeviceView>),
        (status = 400, description = "1014 malformed query", body = clavis_core::error::Problem),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
    )
)]
#[get("/api/v1/devices")]
pub async fn list(
    auth: TenantAuth,
    params: web::Query<ListParams>,
    devices: web::Data<DeviceService>,
) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(devices.list(auth.tenant.id, params.user_id.as_deref()).await?))
}

/// Body of `PATCH /api/v1/devices/{device_id}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameBody {
    pub name: String,
}

/// Rename a device.
#[utoipa::path(
    patch, path = "/api/v1/devices/{device_id}", tag = "devices",
    security(("api_key" = [])),
    params(("device_id" = String, Path)),
    request_body = RenameBody,
    responses(
        (status = 200, body = DeviceView),
        (status = 400, description = "1010 malformed JSON, 1011 invalid name", body = clavis_core::error::Problem),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 404, description = "5042 device not found", body = clavis_core::error::Problem),
    )
)]
#[patch("/api/v1/devices/{device_id}")]
pub async fn rename(
    auth: TenantAuth,
    path: web::Path<String>,
    body: ValidJson<RenameBody>,
    devices: web::Data<DeviceService>,
) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(devices.rename(auth.tenant.id, &path, &body.into_inner().name).await?))
}

/// Remove a device: its current key generation is revoked and its bundles deleted; it no longer counts against the
/// user's device limit.
#[utoipa::path(
    delete, path = "/api/v1/devices/{device_id}", tag = "devices",
    security(("api_key" = [])),
    params(("device_id" = String, Path)),
    responses(
        (status = 204, description = "removed"),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 404, description = "5042 device not found", body = clavis_core::error::Problem),
    )
)]
#[delete("/api/v1/devices/{device_id}")]
pub async fn remove(
    auth: TenantAuth,
    path: web::Path<String>,
    devices: web::Data<DeviceService>,
) -> Result<HttpResponse> {
    devices.delete(auth.tenant.id, &path).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Reset a device for the tenant (a factory reset on the user's behalf): its current key generation is revoked.
#[utoipa::path(
    post, path = "/api/v1/devices/{device_id}/reset", tag = "devices",
    security(("api_key" = [])),
    params(("device_id" = String, Path)),
    responses(
        (status = 200, body = DeviceView),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 404, description = "5042 device not found", body = clavis_core::error::Problem),
    )
)]
#[post("/api/v1/devices/{device_id}/reset")]
pub async fn reset(
    auth: TenantAuth,
    path: web::Path<String>,
    devices: web::Data<DeviceService>,
) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(devices.reset(auth.tenant.id, &path).await?))
}

/// Body of `POST /api/v1/devices/{device_id}/bundles`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BundlesBody {
    /// 1 to 64 contents with keys.
    pub content_ids: Vec<String>,
    /// Narrows the tenant's and the content's policy for these bundles.
    #[serde(default)]
    pub policy: Option<Policy>,
}

/// Make bundles for a device: per content, a compact JWE (ECDH-ES+A256KW, A256GCM) to the device key wrapping a
/// compact JWS (EdDSA) of the ClearKey key set, device id, key generation, policy and expiry (the policy's license
/// duration or expiry, else 30 days). Each is stored (replacing the previous one) and served at its `url`; the JWE
/// may as well be written to any static host.
#[utoipa::path(
    post, path = "/api/v1/devices/{device_id}/bundles", tag = "devices",
    security(("api_key" = [])),
    params(("device_id" = String, Path)),
    request_body = BundlesBody,
    responses(
        (status = 200, body = Vec<BundleView>),
        (status = 400, description = "1010 malformed JSON, 1011 invalid content id", body = clavis_core::error::Problem),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 403, description = "5008 policy expired", body = clavis_core::error::Problem),
        (status = 404, description = "5005 content has no keys, 5042 device not found", body = clavis_core::error::Problem),
        (status = 422, description = "4010 invalid policy, 5049 request invalid (no contents, device reset, no allowed track)", body = clavis_core::error::Problem),
    )
)]
#[post("/api/v1/devices/{device_id}/bundles")]
pub async fn make_bundles(
    auth: TenantAuth,
    path: web::Path<String>,
    body: ValidJson<BundlesBody>,
    keys: web::Data<clavis_keys::KeyStore>,
    devices: web::Data<DeviceService>,
) -> Result<HttpResponse> {
    let body = body.into_inner();
    let bundles: Vec<BundleView> =
        devices.make_bundles(&auth.tenant, &keys.public_url(), &path, &body.content_ids, body.policy.as_ref()).await?;
    Ok(HttpResponse::Ok().json(bundles))
}

/// The reference web client (docs/offline.md), served as a static file.
pub async fn client_script() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8")))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")))
        .body(include_str!("../../static/clavis-offline.js"))
}
