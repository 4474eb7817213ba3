//! The token inspector: `POST /api/v1/tokens/inspect` decodes a token, verifies it, shows the effective policy, and
//! says exactly why a license would be refused, by running the license corridor without issuing, logging or using
//! the token up.
//!
//! The corridor is the license service's, so the inspector cannot drift from what the license endpoints do. Only the
//! tenant's own tokens are inspected beyond decoding: for another tenant's token the answer says so and nothing more.

use std::sync::Arc;

use actix_web::{HttpResponse, post, web};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use clavis_core::http::ValidJson;
use clavis_core::ids::{Drm, Kid, TenantId};
use clavis_core::policy::Policy;
use clavis_core::{ClavisError, ErrorCode, Result};
use clavis_tenant::TenantAuth;
use clavis_tokens::Credential;
use serde::{Deserialize, Serialize};

use crate::clearkey::SessionType;
use crate::service::{LicenseService, Story};

/// Body of `POST /api/v1/tokens/inspect`: the token, and optionally the license request to judge it against.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectRequest {
    pub token: String,
    /// `native` (default, as sent in X-Clavis-Token), `pallycon` (pallycon-customdata-v2), `drmtoday`
    /// (x-dt-auth-token) or `axinom` (X-AxDRM-Message).
    #[serde(default)]
    #[schema(example = "native")]
    pub format: Option<String>,
    /// The DRM of the license request (default `clearkey`).
    #[serde(default)]
    pub drm: Option<String>,
    /// KIDs the player would ask for (32 hex digits each).
    #[serde(default)]
    pub kids: Option<Vec<String>>,
    /// `temporary` (default) or `persistent-license`.
    #[serde(default)]
    pub session_type: Option<String>,
    /// The player's origin and IP address, for the origin and network rules.
    #[serde(default)]
    pub origin: Option<String>,
    #[serde(default)]
    pub client_ip: Option<String>,
}

/// Why a license would be refused.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Refusal {
    pub code: u16,
    pub title: &'static str,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The rule that refused (`token`, `tenant`, `origin`, `drm`, `policy.allowed_tracks`, `kids`, `replay`, ...).
    pub rule: &'static str,
    /// What to do about it (the catalog's remedy).
    pub remedy: &'static str,
}

/// What the inspector found.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Inspection {
    pub format: String,
    /// The token's decoded parts as presented (JWT header and claims; the PallyCon JSON), before any check.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub decoded: Option<serde_json::Value>,
    /// Whether a license would be issued for the request described.
    pub license_would_be_issued: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Refusal>,
    /// For a token that verified: whom and what it is for, and the effective policy (tenant default, content
    /// policy and token policy combined).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_policy: Option<Policy>,
}

fn decode_jwt(token: &str) -> Option<serde_json::Value> {
    let mut parts = token.split('.');
    let part = |p: Option<&str>| {
        p.and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    };
    let header = part(parts.next())?;
    let claims = part(parts.next())?;
    Some(serde_json::json!({"header": header, "claims": claims}))
}

fn decode_pallycon(token: &str) -> Option<serde_json::Value> {
    let bytes = STANDARD.decode(token.trim()).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn refusal(err: &ClavisError, rule: &'static str) -> Refusal {
    Refusal {
        code: err.code.code(),
        title: err.code.title(),
        detail: err.detail.to_string(),
        field: err.field.as_ref().map(|f| f.to_string()),
        rule,
        remedy: err.code.remedy(),
    }
}

/// Decode and verify a token of this tenant, show its effective policy, and say whether (and why not) a license
/// would be issued for the described request. Nothing is issued, logged or used up.
#[utoipa::path(
    post, path = "/api/v1/tokens/inspect", tag = "tokens",
    security(("api_key" = [])),
    request_body = InspectRequest,
    responses(
        (status = 200, description = "The verdict (a refused token is a successful inspection)", body = Inspection),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 422, description = "1011 invalid field", body = clavis_core::error::Problem),
    )
)]
#[post("/api/v1/tokens/inspect")]
pub async fn inspect(
    auth: TenantAuth,
    service: web::Data<LicenseService>,
    body: ValidJson<InspectRequest>,
) -> Result<HttpResponse> {
    let inspection = inspect_token(&service, auth.tenant.id, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(inspection))
}

/// The inspection itself, shared by the API and the console's inspector page. An `Err` is a request the inspector
/// cannot judge (a field of the request is invalid); a refused token is an `Ok` inspection with a `refusal`.
pub async fn inspect_token(
    service: &LicenseService,
    tenant_id: TenantId,
    request: InspectRequest,
) -> Result<Inspection> {
    let format = request.format.as_deref().unwrap_or("native").to_owned();
    let (credential, decoded) = match format.as_str() {
        "native" => (Credential::Native(&request.token), decode_jwt(&request.token)),
        "pallycon" => (Credential::Pallycon(&request.token), decode_pallycon(&request.token)),
        "drmtoday" => (Credential::Drmtoday(&request.token), decode_jwt(&request.token)),
        "axinom" => (Credential::Axinom(&request.token), decode_jwt(&request.token)),
        _ => {
            return Err(ClavisError::invalid("format", "must be \"native\", \"pallycon\", \"drmtoday\" or \"axinom\""));
        }
    };
    let drm: Drm = request
        .drm
        .as_deref()
        .unwrap_or("clearkey")
        .parse()
        .map_err(|e: ClavisError| ClavisError { field: Some("drm".into()), ..e })?;
    let kids = request
        .kids
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, k)| Kid::parse_hex(k).map_err(|e| ClavisError { field: Some(format!("kids[{i}]").into()), ..e }))
        .collect::<Result<Vec<_>>>()?;
    let session_type = match request.session_type.as_deref() {
        None | Some("temporary") => SessionType::Temporary,
        Some("persistent-license") => SessionType::PersistentLicense,
        Some(_) => return Err(ClavisError::invalid("session_type", "must be \"temporary\" or \"persistent-license\"")),
    };

    let mut story = Story::new(drm, request.origin.clone(), request.client_ip.clone(), None);
    let verdict = judge(service, &mut story, credential, &kids, session_type).await;
    let own = story.tenant().is_none_or(|t| t.id == tenant_id);
    let mut inspection = Inspection {
        format,
        decoded,
        license_would_be_issued: false,
        refusal: None,
        user_id: None,
        content_id: None,
        expires_at: None,
        effective_policy: None,
    };
    match verdict {
        // Another tenant's token: say so, and nothing about whether it verifies.
        _ if !own => {
            let err = ClavisError::new(ErrorCode::TokenIssuerUnknown, "the token was not issued for this tenant");
            inspection.refusal = Some(refusal(&err, "tenant"));
        }
        (Some(verified), Ok(())) => {
            inspection.license_would_be_issued = true;
            fill(&mut inspection, &verified);
        }
        (verified, Err(err)) => {
            inspection.refusal = Some(refusal(&err, story.rule()));
            if let Some(verified) = verified {
                fill(&mut inspection, &verified);
            }
        }
        (None, Ok(())) => {}
    }
    Ok(inspection)
}

fn fill(inspection: &mut Inspection, verified: &clavis_tokens::VerifiedToken) {
    inspection.user_id = Some(verified.user_id.as_str().to_owned());
    inspection.content_id = Some(verified.content_id.as_str().to_owned());
    inspection.expires_at = Some(verified.expires_at);
    inspection.effective_policy = Some(verified.policy.clone());
}

/// The license corridor, dry: everything the license endpoint checks, except that a single-use token is only looked
/// up in the ledger, not claimed.
async fn judge(
    service: &LicenseService,
    story: &mut Story,
    credential: Credential<'_>,
    kids: &[Kid],
    session_type: SessionType,
) -> (Option<Arc<clavis_tokens::VerifiedToken>>, std::result::Result<(), ClavisError>) {
    let verified = match service.authorize(story, Some(credential)).await {
        Ok(verified) => Arc::new(verified),
        Err(err) => return (None, Err(err)),
    };
    if !kids.is_empty()
        && let Err(err) = service.resolve_keys(story, &verified, kids).await
    {
        return (Some(verified), Err(err));
    }
    if session_type == SessionType::PersistentLicense && !verified.policy.allows_persistence() {
        story.set_rule("persistence");
        let err = ClavisError::new(ErrorCode::PersistenceNotAllowed, "the policy allows temporary sessions only");
        return (Some(verified), Err(err));
    }
    if verified.policy.is_single_use() {
        story.set_rule("replay");
        let used = match verified.jti.as_deref() {
            None => Err(ClavisError::new(ErrorCode::TokenMalformed, "a single-use token needs a `jti` claim")),
            Some(jti) => service.tokens().replay().is_used(verified.tenant.id, verified.format, jti).await,
        };
        match used {
            Ok(false) => {}
            Ok(true) => {
                let err = ClavisError::new(ErrorCode::TokenReplayed, "the single-use token was already used");
                return (Some(verified), Err(err));
            }
            Err(err) => return (Some(verified), Err(err)),
        }
    }
    story.set_rule("ok");
    (Some(verified), Ok(()))
}
