//! `POST /api/v1/keys` and `GET /api/v1/keys/{content_id}`.

use actix_web::{HttpResponse, get, post, web};
use clavis_core::http::ValidJson;
use clavis_core::ids::ContentId;
use clavis_core::{ClavisError, ErrorCode, Result};
use clavis_tenant::TenantAuth;

use crate::model::{KeysRequest, KeysResponse};
use crate::store::KeyStore;

/// Create the content's keys if it has none; answer the content's keys either way (201 when created, 200 when they
/// already existed). With `keys`, import the given keys instead. With `period` (live key rotation), make or read the
/// keys of that crypto period, one per track, and answer only those: the same period always gives the same keys.
#[utoipa::path(
    post, path = "/api/v1/keys", tag = "keys",
    security(("api_key" = [])),
    request_body = KeysRequest,
    responses(
        (status = 201, description = "Keys created", body = KeysResponse),
        (status = 200, description = "The content already had keys; these are they", body = KeysResponse),
        (status = 400, description = "1010 malformed JSON", body = clavis_core::error::Problem),
        (status = 401, description = "2001 API key missing, 2002 API key invalid", body = clavis_core::error::Problem),
        (status = 409, description = "3002 content already has other keys, 3003 KID in use, 3004 key seed not set", body = clavis_core::error::Problem),
        (status = 413, description = "1012 body too large", body = clavis_core::error::Problem),
        (status = 422, description = "1011 invalid field", body = clavis_core::error::Problem),
    )
)]
#[post("/api/v1/keys")]
pub async fn create_keys(
    auth: TenantAuth,
    store: web::Data<KeyStore>,
    body: ValidJson<KeysRequest>,
) -> Result<HttpResponse> {
    let mut request = body.into_inner();
    if let Some(period) = request.period.take() {
        let (answer, created) =
            crate::periods::ensure_period_keys(&store, auth.tenant.id, auth.tenant.site_id, request, &period).await?;
        let mut response = if created { HttpResponse::Created() } else { HttpResponse::Ok() };
        return Ok(response.json(answer));
    }
    let (content_id, plan) = request.into_plan()?;
    let (set, created) = store.ensure(auth.tenant.id, content_id, plan).await?;
    let mut response = if created { HttpResponse::Created() } else { HttpResponse::Ok() };
    Ok(response.json(KeysResponse::from_set(&set, &store.public_url(), auth.tenant.site_id)?))
}

/// Read every key of a content.
#[utoipa::path(
    get, path = "/api/v1/keys/{content_id}", tag = "keys",
    security(("api_key" = [])),
    params(("content_id" = String, Path, description = "The tenant's content id")),
    responses(
        (status = 200, body = KeysResponse),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 404, description = "3001 content not found", body = clavis_core::error::Problem),
        (status = 422, description = "1011 invalid content id", body = clavis_core::error::Problem),
    )
)]
#[get("/api/v1/keys/{content_id}")]
pub async fn read_keys(auth: TenantAuth, store: web::Data<KeyStore>, path: web::Path<String>) -> Result<HttpResponse> {
    let content_id = ContentId::parse(&path)?;
    let set = store.get(auth.tenant.id, &content_id).await?.ok_or_else(|| {
        ClavisError::new(ErrorCode::ContentNotFound, format!("no content {content_id:?} for this tenant"))
    })?;
    Ok(HttpResponse::Ok().json(KeysResponse::from_set(&set, &store.public_url(), auth.tenant.site_id)?))
}
