//! `POST /api/v1/tokens`.

use actix_web::{HttpResponse, delete, get, post, web};
use clavis_core::http::ValidJson;
use clavis_core::{ClavisError, Result};
use clavis_tenant::TenantAuth;

use crate::service::{IssuedToken, TokenRequest, TokenService};
use crate::signing::{KeySpec, NewTokenKey, TokenKeyView, parse_ed25519_public_pem};

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

/// Body of `POST /api/v1/token-keys`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenKeyRequest {
    /// `HS256` (a shared secret) or `EdDSA` (an Ed25519 key pair).
    #[schema(example = "HS256")]
    pub algorithm: String,
    /// EdDSA only: register this public key (PEM) instead of having Clavis make a key pair. Clavis then verifies
    /// tokens signed with it but cannot mint any.
    #[serde(default)]
    pub public_key: Option<String>,
}

/// Add a signing key (rotation): the newest key Clavis can sign with becomes the token API's key, and every active
/// key keeps verifying until retired. The secret (HS256) or private key (EdDSA) is in this answer only.
#[utoipa::path(
    post, path = "/api/v1/token-keys", tag = "tokens",
    security(("api_key" = [])),
    request_body = NewTokenKeyRequest,
    responses(
        (status = 201, body = NewTokenKey),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 422, description = "1011 invalid field (algorithm, public key, too many active keys)", body = clavis_core::error::Problem),
    )
)]
#[post("/api/v1/token-keys")]
pub async fn create_token_key(
    auth: TenantAuth,
    tokens: web::Data<TokenService>,
    body: ValidJson<NewTokenKeyRequest>,
) -> Result<HttpResponse> {
    let body = body.into_inner();
    let spec = match (body.algorithm.as_str(), body.public_key.as_deref()) {
        ("HS256", None) => KeySpec::Hs256,
        ("HS256", Some(_)) => {
            return Err(ClavisError::invalid("public_key", "only EdDSA keys have a public key"));
        }
        ("EdDSA", None) => KeySpec::Ed25519Generated,
        ("EdDSA", Some(pem)) => KeySpec::Ed25519Public(parse_ed25519_public_pem(pem)?),
        _ => return Err(ClavisError::invalid("algorithm", "must be \"HS256\" or \"EdDSA\"")),
    };
    let created = tokens.signing_keys().insert(auth.tenant.id, spec).await?;
    Ok(HttpResponse::Created().json(created))
}

/// The tenant's signing keys, newest first, with which one the token API uses (never the secrets).
#[utoipa::path(
    get, path = "/api/v1/token-keys", tag = "tokens",
    security(("api_key" = [])),
    responses(
        (status = 200, body = Vec<TokenKeyView>),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
    )
)]
#[get("/api/v1/token-keys")]
pub async fn list_token_keys(auth: TenantAuth, tokens: web::Data<TokenService>) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(tokens.signing_keys().list(auth.tenant.id).await?))
}

/// Retire a signing key: tokens signed with it no longer verify. The last key Clavis can sign with cannot be retired.
#[utoipa::path(
    delete, path = "/api/v1/token-keys/{kid}", tag = "tokens",
    security(("api_key" = [])),
    params(("kid" = String, Path, description = "The key id (JWT `kid`)")),
    responses(
        (status = 204, description = "Retired"),
        (status = 401, description = "2001, 2002, 4004 no such active key", body = clavis_core::error::Problem),
        (status = 422, description = "1011 the only key Clavis can sign with", body = clavis_core::error::Problem),
    )
)]
#[delete("/api/v1/token-keys/{kid}")]
pub async fn retire_token_key(
    auth: TenantAuth,
    tokens: web::Data<TokenService>,
    kid: web::Path<String>,
) -> Result<HttpResponse> {
    tokens.signing_keys().retire(auth.tenant.id, &kid).await?;
    Ok(HttpResponse::NoContent().finish())
}
