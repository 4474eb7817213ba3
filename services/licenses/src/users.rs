//! A user's devices and streams as the license rules count them, for the tenant: list them, free a device (it no
//! longer counts against the user's `max_devices`), end a stream (its slot frees at once).

use actix_web::{HttpResponse, delete, get, web};
use clavis_core::ids::UserId;
use clavis_core::{ClavisError, ErrorCode, Result};
use clavis_tenant::TenantAuth;

use crate::rules::{StreamView, UserDevice};
use crate::service::LicenseService;

/// The devices the user obtained licenses on, most recently seen first (registered devices are listed by
/// `GET /api/v1/devices`; both count against `max_devices`).
#[utoipa::path(
    get, path = "/api/v1/users/{user_id}/devices", tag = "licenses",
    security(("api_key" = [])),
    params(("user_id" = String, Path, description = "The user id the tokens name")),
    responses(
        (status = 200, body = Vec<UserDevice>),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 422, description = "1011 invalid user id", body = clavis_core::error::Problem),
    )
)]
#[get("/api/v1/users/{user_id}/devices")]
pub async fn devices(
    auth: TenantAuth,
    service: web::Data<LicenseService>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let user = UserId::parse(&path)?;
    Ok(HttpResponse::Ok().json(service.rules().devices(auth.tenant.id, user.as_str()).await?))
}

/// Free one of the user's devices: it no longer counts against the user's device limit, and its streams end.
#[utoipa::path(
    delete, path = "/api/v1/users/{user_id}/devices/{device_id}", tag = "licenses",
    security(("api_key" = [])),
    params(("user_id" = String, Path), ("device_id" = String, Path)),
    responses(
        (status = 204, description = "Freed"),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 404, description = "5042 the user has no such device", body = clavis_core::error::Problem),
        (status = 422, description = "1011 invalid user id", body = clavis_core::error::Problem),
    )
)]
#[delete("/api/v1/users/{user_id}/devices/{device_id}")]
pub async fn free_device(
    auth: TenantAuth,
    service: web::Data<LicenseService>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    let (user, device) = path.into_inner();
    let user = UserId::parse(&user)?;
    if !service.rules().free_device(auth.tenant.id, user.as_str(), &device).await? {
        return Err(ClavisError::new(ErrorCode::DeviceNotFound, format!("the user has no device {device:?}")));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The user's active streams (slots held by licenses with a renewal interval), newest first.
#[utoipa::path(
    get, path = "/api/v1/users/{user_id}/streams", tag = "licenses",
    security(("api_key" = [])),
    params(("user_id" = String, Path)),
    responses(
        (status = 200, body = Vec<StreamView>),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 422, description = "1011 invalid user id", body = clavis_core::error::Problem),
    )
)]
#[get("/api/v1/users/{user_id}/streams")]
pub async fn streams(
    auth: TenantAuth,
    service: web::Data<LicenseService>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let user = UserId::parse(&path)?;
    let now = chrono::Utc::now().timestamp_millis();
    Ok(HttpResponse::Ok().json(service.rules().streams(auth.tenant.id, user.as_str(), now).await?))
}

/// End one of the user's streams: its slot is free at once (its next renewal takes a new one, if there is room).
#[utoipa::path(
    delete, path = "/api/v1/users/{user_id}/streams/{stream_id}", tag = "licenses",
    security(("api_key" = [])),
    params(("user_id" = String, Path), ("stream_id" = String, Path)),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 404, description = "5064 no such stream", body = clavis_core::error::Problem),
        (status = 422, description = "1011 invalid user id", body = clavis_core::error::Problem),
    )
)]
#[delete("/api/v1/users/{user_id}/streams/{stream_id}")]
pub async fn end_stream(
    auth: TenantAuth,
    service: web::Data<LicenseService>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    let (user, stream) = path.into_inner();
    let user = UserId::parse(&user)?;
    if !service.rules().release_stream(auth.tenant.id, user.as_str(), &stream).await? {
        return Err(ClavisError::new(ErrorCode::StreamNotFound, format!("the user has no stream {stream:?}")));
    }
    Ok(HttpResponse::NoContent().finish())
}
