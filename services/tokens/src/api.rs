//! `POST /api/v1/tokens`.

use actix_web::{HttpResponse, post, web};
use clavis_core::Result;
use clavis_core::http::ValidJson;
use clavis_tenant::TenantAuth;

use crate::service::{IssuedToken, TokenRequest, TokenService};

/// Mint a license token for one user and one content. An empty policy means the tenant's default policy; a policy
/// may narrow the default, never widen it.
#[utoipa::path(
    post, path = "/api/v1/tokens", tag = "tokens",
    security(("api_key" = [])),
    request_body = TokenRequest,
    responses(
        (status = 201, body = IssuedToken),
        (status = 400, description = "1010 malformed JSON", body = clavis_core::error::Problem),
        (status = 401, description = "2001 API key missing, 2002 API key invalid", body = clavis_core::error::Problem),
        (status = 422, description = "1011 invalid field, 4010 policy invalid", body = clavis_core::error::Problem),
    )
)]
#[post("/api/v1/tokens")]
pub async fn create_token(
    auth: TenantAuth,
    tokens: web::Data<TokenService>,
    body: ValidJson<TokenRequest>,
) -> Result<HttpResponse> {
    let issued = tokens.issue(&auth.tenant, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(issued))
}
