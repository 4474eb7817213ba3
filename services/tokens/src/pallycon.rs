//! PallyCon tokens for a tenant: the integration settings (`/api/v1/integrations/pallycon`), verification of a
//! presented `pallycon-customdata-v2` token with the tenant's site key and access key, and the mapping of its policy
//! onto Clavis's policy model.
//!
//! The token format itself (decoding, hash, policy encryption, policy types) is in [`crate::foreign::pallycon`];
//! this module is what makes a tenant's existing PallyCon token code work against Clavis unchanged.

use std::collections::BTreeSet;
use std::sync::Arc;

use actix_web::{HttpResponse, delete, get, put, web};
use chrono::{DateTime, Utc};
use clavis_core::http::ValidJson;
use clavis_core::ids::{ContentId, Kid, SiteId, TrackType, UserId, recode};
use clavis_core::policy::{FairPlayRules, Hdcp, PlayReadyRules, Policy, WidevineRules};
use clavis_core::{ClavisError, ErrorCode, Result};
use clavis_tenant::{Secret, SecretKind, SecretVault, Tenant, TenantAuth};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::foreign::pallycon::{
    self as format, AllowedTrackTypes, HdcpVersion, MpegCencKey, PallyconClaims, PallyconPolicy, PallyconSecrets,
    PallyconToken,
};
use crate::issuers::Issuers;
use crate::native::{ExternalKey, VerifiedToken};

/// The token format's name in the issuer registry, the replay ledger and the log.
pub const FORMAT: &str = "pallycon";
/// The header (and query parameter) PallyCon players send the token in.
pub const HEADER: &str = "pallycon-customdata-v2";
const VAULT_NAME: &str = "default";

/// Body of `PUT /api/v1/integrations/pallycon`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PallyconIntegrationBody {
    /// The PallyCon site id the tenant's tokens carry (4 capital letters).
    #[schema(example = "TUTO")]
    pub site_id: String,
    /// The 32-character site key (encrypts the token policy).
    pub site_key: String,
    /// The access key (part of the token hash).
    pub access_key: String,
    /// How long after its `timestamp` a token is accepted (default 600).
    #[serde(default)]
    pub token_ttl_seconds: Option<u32>,
    /// Answer requests carrying PallyCon tokens in PallyCon's error style: HTTP 200 with
    /// `{"errorCode": "7011", "message": ...}` (default false: Clavis's problem+json with real statuses).
    #[serde(default)]
    pub compat_errors: Option<bool>,
}

/// The integration's settings as shown (never the keys).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PallyconIntegrationView {
    pub site_id: String,
    pub token_ttl_seconds: u32,
    pub compat_errors: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, Deserialize)]
struct StoredKeys {
    site_key: String,
    access_key: String,
}

/// A tenant's PallyCon settings with its keys, opened.
pub struct PallyconIntegration {
    pub view: PallyconIntegrationView,
    pub secrets: PallyconSecrets,
}

pub struct PallyconTokens {
    vault: Arc<SecretVault>,
    issuers: Arc<Issuers>,
}

fn view_of(secret: &Secret) -> Result<PallyconIntegrationView> {
    Ok(PallyconIntegrationView { updated_at: Some(secret.updated_at), ..secret.meta_as()? })
}

fn not_enabled() -> ClavisError {
    ClavisError::new(ErrorCode::TokenFormatNotEnabled, "this tenant has not configured PallyCon tokens")
}

impl PallyconTokens {
    pub fn new(vault: Arc<SecretVault>, issuers: Arc<Issuers>) -> PallyconTokens {
        PallyconTokens { vault, issuers }
    }

    pub async fn integration(&self, tenant: &Tenant) -> Result<Option<PallyconIntegration>> {
        let Some(secret) = self.vault.get(tenant.id, SecretKind::Pallycon, VAULT_NAME).await? else { return Ok(None) };
        let view = view_of(&secret)?;
        let keys: StoredKeys = secret.value_as()?;
        let secrets = PallyconSecrets::new(&keys.site_key, keys.access_key.clone())?;
        Ok(Some(PallyconIntegration { view, secrets }))
    }

    /// The tenant that owns the token's site id.
    pub async fn owner(&self, token: &PallyconToken) -> Result<Option<clavis_core::ids::TenantId>> {
        self.issuers.owner(FORMAT, &token.site_id).await
    }

    /// Verify a presented PallyCon token of `tenant` and map it onto the tenant's policy.
    pub async fn verify(&self, tenant: Arc<Tenant>, token: &PallyconToken) -> Result<VerifiedToken> {
        let integration = self.integration(&tenant).await?.ok_or_else(not_enabled)?;
        let skew = tenant.settings.clock_skew_seconds;
        let claims = token.verify(&integration.secrets, Utc::now(), integration.view.token_ttl_seconds, skew)?;
        verified(tenant, claims)
    }
}

/// The Clavis view of verified PallyCon claims.
fn verified(tenant: Arc<Tenant>, claims: PallyconClaims) -> Result<VerifiedToken> {
    let user_id = UserId::parse(&claims.user_id).map_err(|e| recode(e, ErrorCode::TokenMalformed))?;
    let content_id = ContentId::parse_field(&claims.cid, "cid").map_err(|e| recode(e, ErrorCode::TokenMalformed))?;
    let (token_policy, external_keys) = map_policy(&claims.policy);
    token_policy.validate()?;
    let policy = tenant.settings.default_policy.narrowed_by(&token_policy);
    Ok(VerifiedToken {
        tenant,
        user_id,
        content_id,
        // Clavis's license endpoints are per DRM, so the endpoint names the DRM; the token's drm_type only selects
        // the hash input (and the DRM on PallyCon's own shared path).
        drm: None,
        policy,
        jti: None,
        expires_at: claims.expires_at.timestamp(),
        format: FORMAT,
        external_keys,
    })
}

/// PallyCon's policy (v1 or v2) as a Clavis policy, plus the keys it carries (`external_key`).
pub fn map_policy(policy: &PallyconPolicy) -> (Policy, Vec<ExternalKey>) {
    match policy {
        PallyconPolicy::V1(v1) => {
            let playback = &v1.playback_policy;
            let security = &v1.security_policy;
            let mut mapped = Policy {
                license_duration_seconds: Some(if playback.limit { playback.duration } else { 0 }),
                expires_at: playback.expire_date,
                persistent: Some(playback.persistent),
                ..Policy::default()
            };
            if security.hardware_drm {
                mapped.widevine = Some(WidevineRules { min_security_level: Some(5), ..WidevineRules::default() });
                mapped.playready = Some(PlayReadyRules { min_security_level: Some(3000), ..PlayReadyRules::default() });
            }
            let level = security.playready_security_level.get();
            if level > 150 {
                let rules = mapped.playready.get_or_insert_with(PlayReadyRules::default);
                rules.min_security_level = Some(rules.min_security_level.unwrap_or(0).max(level));
            }
            let keys = v1.external_key.mpeg_cenc.iter().map(external_key).collect();
            (mapped, keys)
        }
        PallyconPolicy::V2(v2) => {
            let playback = &v2.playback_policy;
            let mut mapped = Policy {
                license_duration_seconds: Some(playback.license_duration),
                expires_at: playback.expire_date,
                persistent: Some(playback.persistent),
                rental_duration_seconds: Some(playback.rental_duration),
                playback_duration_seconds: Some(playback.playback_duration),
                allowed_tracks: allowed_tracks(playback.allowed_track_types),
                max_concurrent_streams: (playback.max_stream_per_user > 0).then_some(playback.max_stream_per_user),
                renewal_interval_seconds: Some(playback.renewal_duration),
                ..Policy::default()
            };
            // Clavis keeps one rule set per DRM: the strictest of the per-track entries applies to all tracks.
            for entry in &v2.security_policy {
                let wv = Policy {
                    widevine: Some(WidevineRules {
                        min_security_level: Some(entry.widevine.security_level.get()),
                        required_hdcp: Some(hdcp(entry.widevine.required_hdcp_version)),
                        disable_analog_output: Some(entry.widevine.disable_analog_output),
                    }),
                    playready: Some(PlayReadyRules {
                        min_security_level: Some(entry.playready.security_level.get()),
                        digital_video_protection: Some(entry.playready.digital_video_protection_level),
                        analog_video_protection: Some(entry.playready.analog_video_protection_level),
                        digital_audio_protection: Some(entry.playready.digital_audio_protection_level),
                        require_hdcp_type_1: Some(entry.playready.require_hdcp_type_1),
                    }),
                    fairplay: Some(FairPlayRules {
                        hdcp_required: Some(entry.fairplay.hdcp_enforcement.get() >= 0),
                        allow_airplay: Some(entry.fairplay.allow_airplay),
                        allow_av_adapter: Some(entry.fairplay.allow_av_adapter),
                    }),
                    ..Policy::default()
                };
                mapped = mapped.narrowed_by(&wv);
            }
            let keys = v2.external_key.mpeg_cenc.iter().map(external_key).collect();
            (mapped, keys)
        }
    }
}

fn hdcp(version: HdcpVersion) -> Hdcp {
    match version {
        HdcpVersion::None => Hdcp::None,
        HdcpVersion::V1 => Hdcp::V1,
        HdcpVersion::V2 => Hdcp::V2,
        HdcpVersion::V2_1 => Hdcp::V2_1,
        HdcpVersion::V2_2 => Hdcp::V2_2,
        HdcpVersion::V2_3 => Hdcp::V2_3,
        HdcpVersion::NoDigitalOutput => Hdcp::NoDigitalOutput,
    }
}

/// PallyCon's track limits name the highest video class allowed; audio is always allowed.
fn allowed_tracks(allowed: AllowedTrackTypes) -> Option<BTreeSet<TrackType>> {
    let video: &[TrackType] = match allowed {
        AllowedTrackTypes::All => return None,
        AllowedTrackTypes::SdOnly => &[TrackType::Sd],
        AllowedTrackTypes::SdHd => &[TrackType::Sd, TrackType::Hd],
        AllowedTrackTypes::SdUhd1 => &[TrackType::Sd, TrackType::Hd, TrackType::Uhd1],
        AllowedTrackTypes::SdUhd2 => &[TrackType::Sd, TrackType::Hd, TrackType::Uhd1, TrackType::Uhd2],
    };
    Some(video.iter().copied().chain([TrackType::Audio]).collect())
}

fn external_key(key: &MpegCencKey) -> ExternalKey {
    let track_type = match key.track_type {
        format::TrackType::Audio => TrackType::Audio,
        format::TrackType::Sd => TrackType::Sd,
        format::TrackType::Hd => TrackType::Hd,
        format::TrackType::Uhd1 => TrackType::Uhd1,
        format::TrackType::Uhd2 => TrackType::Uhd2,
        format::TrackType::All | format::TrackType::AllVideo => TrackType::All,
    };
    ExternalKey { kid: Kid(key.key_id.0), key: Zeroizing::new(*key.key.0.as_bytes()), track_type }
}

/// PallyCon's code for a refusal, for tenants that asked for PallyCon's error style. Codes without a PallyCon
/// equivalent keep Clavis's number.
pub fn compat_code(code: ErrorCode) -> u16 {
    match code {
        ErrorCode::TokenExpired => 7011,
        ErrorCode::TokenContentMismatch => 7012,
        ErrorCode::TokenSignatureInvalid => 7019,
        ErrorCode::TokenMalformed | ErrorCode::PolicyInvalid | ErrorCode::TokenMissing => 7009,
        ErrorCode::TokenNotYetValid | ErrorCode::TokenReplayed => 7016,
        ErrorCode::TokenDrmMismatch => 7018,
        ErrorCode::TokenIssuerUnknown | ErrorCode::TokenFormatNotEnabled => 1003,
        ErrorCode::TenantSuspended => 1004,
        other => other.code(),
    }
}

/// The body of a PallyCon-style error answer.
pub fn compat_body(err: &ClavisError) -> String {
    serde_json::json!({"errorCode": compat_code(err.code).to_string(), "message": err.detail}).to_string()
}

fn parse_body(body: PallyconIntegrationBody) -> Result<(PallyconIntegrationView, StoredKeys)> {
    let field =
        |name: &'static str, detail: &str| ClavisError::field(ErrorCode::IntegrationInvalid, name, detail.to_owned());
    SiteId::parse(&body.site_id).map_err(|_| field("site_id", "a PallyCon site id is 4 capital letters"))?;
    if body.site_key.len() != 32 {
        return Err(field("site_key", "a PallyCon site key is 32 characters"));
    }
    if body.access_key.is_empty() || body.access_key.len() > 256 {
        return Err(field("access_key", "the access key is 1 to 256 characters"));
    }
    let ttl = body.token_ttl_seconds.unwrap_or(format::DEFAULT_TTL_SECONDS);
    if !(1..=7 * 24 * 3600).contains(&ttl) {
        return Err(field("token_ttl_seconds", "must be 1 to 604800"));
    }
    Ok((
        PallyconIntegrationView {
            site_id: body.site_id,
            token_ttl_seconds: ttl,
            compat_errors: body.compat_errors.unwrap_or(false),
            updated_at: None,
        },
        StoredKeys { site_key: body.site_key, access_key: body.access_key },
    ))
}

/// Configure (or replace) the tenant's PallyCon integration: what `PUT /api/v1/integrations/pallycon` and the console's
/// form both do. The issuer id is claimed first, so one belongs to one tenant.
pub async fn save_integration(
    vault: &SecretVault,
    issuers: &Issuers,
    tenant_id: clavis_core::ids::TenantId,
    body: PallyconIntegrationBody,
) -> Result<PallyconIntegrationView> {
    let (view, keys) = parse_body(body)?;
    issuers.claim(FORMAT, &view.site_id, tenant_id).await?;
    vault.put_json(tenant_id, SecretKind::Pallycon, VAULT_NAME, &view, &keys).await?;
    Ok(PallyconIntegrationView { updated_at: Some(Utc::now()), ..view })
}

/// The tenant's PallyCon settings without their secrets; `None` when not configured.
pub async fn read_integration(
    vault: &SecretVault,
    tenant_id: clavis_core::ids::TenantId,
) -> Result<Option<PallyconIntegrationView>> {
    vault.get(tenant_id, SecretKind::Pallycon, VAULT_NAME).await?.map(|secret| view_of(&secret)).transpose()
}

/// Stop accepting the tenant's PallyCon tokens and forget the secrets; false when none were configured.
pub async fn remove_integration(
    vault: &SecretVault,
    issuers: &Issuers,
    tenant_id: clavis_core::ids::TenantId,
) -> Result<bool> {
    issuers.release(FORMAT, tenant_id).await?;
    vault.delete(tenant_id, SecretKind::Pallycon, VAULT_NAME).await
}

/// Accept the tenant's PallyCon tokens: their site id, site key and access key (stored sealed), token lifetime and
/// error style. The site id must not belong to another tenant.
#[utoipa::path(
    put, path = "/api/v1/integrations/pallycon", tag = "tokens",
    security(("api_key" = [])),
    request_body = PallyconIntegrationBody,
    responses(
        (status = 200, body = PallyconIntegrationView),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 409, description = "4014 the site id belongs to another tenant", body = clavis_core::error::Problem),
        (status = 422, description = "1011 invalid field, 4013 invalid integration setting", body = clavis_core::error::Problem),
    )
)]
#[put("/api/v1/integrations/pallycon")]
pub async fn put_pallycon(
    auth: TenantAuth,
    vault: web::Data<SecretVault>,
    issuers: web::Data<Issuers>,
    body: ValidJson<PallyconIntegrationBody>,
) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(save_integration(&vault, &issuers, auth.tenant.id, body.into_inner()).await?))
}

/// The tenant's PallyCon settings (without keys).
#[utoipa::path(
    get, path = "/api/v1/integrations/pallycon", tag = "tokens",
    security(("api_key" = [])),
    responses(
        (status = 200, body = PallyconIntegrationView),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 404, description = "4012 not configured", body = clavis_core::error::Problem),
    )
)]
#[get("/api/v1/integrations/pallycon")]
pub async fn get_pallycon(auth: TenantAuth, vault: web::Data<SecretVault>) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(read_integration(&vault, auth.tenant.id).await?.ok_or_else(not_enabled)?))
}

/// Stop accepting the tenant's PallyCon tokens and forget its keys.
#[utoipa::path(
    delete, path = "/api/v1/integrations/pallycon", tag = "tokens",
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 404, description = "4012 not configured", body = clavis_core::error::Problem),
    )
)]
#[delete("/api/v1/integrations/pallycon")]
pub async fn delete_pallycon(
    auth: TenantAuth,
    vault: web::Data<SecretVault>,
    issuers: web::Data<Issuers>,
) -> Result<HttpResponse> {
    if !remove_integration(&vault, &issuers, auth.tenant.id).await? {
        return Err(not_enabled());
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The DRM a PallyCon token names, for PallyCon's license URL (`/ri/licenseManager.do`), which serves every DRM:
/// only when the token says (its default, PlayReady, is not assumed: the request body tells then), and only for the
/// DRMs Clavis serves.
pub fn drm_type_of(raw: &str) -> Option<clavis_core::ids::Drm> {
    use crate::foreign::pallycon::{PallyconDrmType, PallyconToken};
    use clavis_core::ids::Drm;
    let token = PallyconToken::parse(raw).ok().filter(|t| t.drm_type_present)?;
    match token.drm_type {
        PallyconDrmType::Widevine => Some(Drm::Widevine),
        PallyconDrmType::PlayReady => Some(Drm::PlayReady),
        PallyconDrmType::FairPlay => Some(Drm::FairPlay),
        PallyconDrmType::Ncg | PallyconDrmType::Wiseplay => None,
    }
}
