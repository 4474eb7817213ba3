//! HLS AES-128 key delivery: the key URI of `#EXT-X-KEY:METHOD=AES-128` (see `clavis_keys::signalling`).
//!
//! Players fetch the key with a GET and use the 16 bytes as the AES-128-CBC key of every segment. They cannot send a
//! body, so the token comes in `X-Clavis-Token` (hls.js `xhrSetup`, an AVPlayer resource loader, ExoPlayer's data
//! source headers) or, for players that only follow the URI, as `?token=` appended to it by the page or the packager.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use clavis_core::ids::Drm;

use crate::api::{RawToken, token_from};
use crate::service::LicenseService;

/// The raw key for HLS `METHOD=AES-128`. The token comes in `X-Clavis-Token` or `?token=` and must be for the
/// content the URI names; the answer is exactly 16 bytes, never cached. Refusals are problem+json with the catalog
/// code in `X-Clavis-Error` (readable through CORS); a site id that is not the token's tenant's is refused like a
/// content id that is not the token's: 4008.
#[utoipa::path(
    get, path = "/license/hls-aes/{site_id}/{content_id}/{kid}", tag = "licenses",
    params(
        ("site_id" = String, Path, description = "The tenant's site id"),
        ("content_id" = String, Path, description = "The content id, percent-encoded as one path segment"),
        ("kid" = String, Path, description = "The key's KID: 32 hex digits (a UUID with dashes is accepted)"),
        ("token" = Option<String>, Query, description = "The license token, when not sent in X-Clavis-Token"),
        ("callback" = Option<String>, Query, description = "Callback mode: `<site_id>.<session>`, when not sent in X-Clavis-Callback"),
    ),
    responses(
        (status = 200, description = "The 16 key bytes (Cache-Control: no-store)", content_type = "application/octet-stream"),
        (status = 400, description = "5001 the KID is not 32 hex digits", body = clavis_core::error::Problem),
        (status = 401, description = "4001-4007 token missing, malformed, bad signature, unknown key, expired, not yet valid, unknown issuer", body = clavis_core::error::Problem),
        (status = 403, description = "2003 tenant suspended, 4008 token for another content (or the URI's site id is not the token's tenant's, or the KID is another content's), 4009 token for another DRM (a `drm`-limited token must say `hls-aes`), 4011 single-use token already used, 5002 KID not in content, 5003 origin not allowed, 5006 track not allowed", body = clavis_core::error::Problem),
        (status = 404, description = "5005 content has no keys", body = clavis_core::error::Problem),
    )
)]
pub async fn hls_aes(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    service: web::Data<LicenseService>,
) -> HttpResponse {
    let (site_id, content_id, kid) = path.into_inner();
    let mut story = crate::api::story(&req, Drm::HlsAes);
    let token = token_from(&req);
    let result = async {
        story.callback = crate::api::callback_from(&req)?;
        story.read_facts(req.headers())?;
        service.hls_aes(&mut story, token.as_ref().map(RawToken::credential), &site_id, &content_id, &kid).await
    }
    .await;
    let mut response = service.finish(story, result, "application/octet-stream").await;
    // A key must never sit in a shared cache, and a refusal must not be replayed from one either.
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
