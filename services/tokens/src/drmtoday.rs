//! castLabs DRMtoday upfront tokens for a tenant: the integration settings (`/api/v1/integrations/drmtoday`),
//! verification of a presented `x-dt-auth-token` with the merchant's shared secrets, and the mapping of its customer
//! rights (`crt`) onto Clavis's policy model.
//!
//! The token format itself (JWT, claims, rights, durations) is in [`crate::foreign::drmtoday`]; this module is what
//! makes a merchant's existing DRMtoday token code work against Clavis unchanged.
//!
//! The mapping, field by field (the token policy is then narrowed by the tenant's default policy, as for every
//! format):
//! - who and what: user = `optData.userId`, content = the rights' `assetId` (every right must name the same asset;
//!   `variantId` is not used, Clavis keys belong to the content);
//! - `jti` is always single use (DRMtoday's rule): the mapped policy says `single_use`, so the license path claims it
//!   only once everything else agreed; the replay ledger keeps it until `exp`, or `iat` + 24 h for a token without
//!   `exp` (such a token is refused as expired after that, so that it cannot outlive its ledger entry);
//! - `profile.purchase`: no duration limit of its own; `profile.rental`: `relativeExpiration` is the license duration,
//!   `absoluteExpiration` the policy's `expires_at`, `playDuration` the playback duration (durations are rounded up
//!   to whole seconds; a zero duration is refused, as 0 means "unlimited" in Clavis);
//! - `storeLicense` is `persistent`;
//! - `outputProtection` with `enforce`: `digital` requires HDCP (as `requireHDCP: HDCP_V1`), `analogue` turns off
//!   analog output on Widevine (Clavis has no CGMS-A rule; this is the fail-closed equivalent). Without `enforce`
//!   the protection is best effort, which restricts nothing;
//! - `op.config.<quality>.<drm>`: Clavis keeps one track list and one rule set per DRM for the whole token, so the
//!   strictest reading applies: a quality denied for any DRM is left out of `allowed_tracks` (UHD is UHD1 and
//!   UHD2), `requireHDCP` of `WidevineM`/`PlayReadyM`/`FairPlayM` (or `*`, for all three) and `minSL` of
//!   `WidevineM` (1-5) and `PlayReadyM` (150, 2000, 3000) take the strictest value over all qualities. `minSL` under
//!   `*` is refused (its scale differs per DRM) and `minSL` under `FairPlayM` is ignored (Clavis has no FairPlay
//!   security level);
//! - several rights: each is mapped and the narrowest of them applies.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpResponse, delete, get, put, web};
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use clavis_core::http::ValidJson;
use clavis_core::ids::{ContentId, TenantId, TrackType, UserId};
use clavis_core::policy::{FairPlayRules, Hdcp, PlayReadyRules, Policy, WidevineRules};
use clavis_core::{ClavisError, ErrorCode, Result};
use clavis_tenant::{Secret, SecretKind, SecretVault, Tenant, TenantAuth};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::foreign::drmtoday::{self as format, CrtRight, DrmtodayClaims, OpRule, Profile};
use crate::issuers::Issuers;
use crate::native::VerifiedToken;

/// The token format's name in the issuer registry, the replay ledger and the log.
pub const FORMAT: &str = "drmtoday";
/// The header DRMtoday players send the token in (header names are case-insensitive).
pub const HEADER: &str = "x-dt-auth-token";
/// How long after its `iat` a token without `exp` is accepted (and remembered as used).
pub const MAX_AGE_WITHOUT_EXP_SECONDS: i64 = 24 * 3600;
/// Most shared secrets a merchant may have configured at once (old and new, while rotating).
pub const MAX_SECRETS: usize = 16;
const MAX_MERCHANT_LEN: usize = 100;
const MAX_KID_LEN: usize = 100;
const VAULT_NAME: &str = "default";

/// One shared secret in `PUT /api/v1/integrations/drmtoday`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrmtodaySecretBody {
    /// The key id the tokens' JWT header `kid` names.
    #[schema(example = "key-2024")]
    pub kid: String,
    /// The 32-byte shared secret, hex (64 digits) or base64.
    pub secret: String,
}

/// Body of `PUT /api/v1/integrations/drmtoday`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrmtodayIntegrationBody {
    /// The merchant id the tokens carry in `optData.merchant`.
    #[schema(example = "acme")]
    pub merchant: String,
    /// The shared secrets tokens may be signed with (several while rotating; 1 to 16). Replaces the earlier set.
    pub secrets: Vec<DrmtodaySecretBody>,
}

/// The integration's settings as shown (never the secrets).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DrmtodayIntegrationView {
    pub merchant: String,
    /// The key ids of the configured secrets.
    pub kids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, Deserialize)]
struct StoredSecret {
    kid: String,
    /// Hex of the 32 bytes.
    secret: String,
}

#[derive(Serialize, Deserialize)]
struct StoredSecrets {
    secrets: Vec<StoredSecret>,
}

/// A tenant's DRMtoday settings with its secrets, opened.
pub struct DrmtodayIntegration {
    pub view: DrmtodayIntegrationView,
    secrets: Vec<(String, Zeroizing<Vec<u8>>)>,
}

impl DrmtodayIntegration {
    /// The shared secret a `kid` names.
    pub fn secret(&self, kid: &str) -> Option<&[u8]> {
        self.secrets.iter().find(|(id, _)| id == kid).map(|(_, secret)| secret.as_slice())
    }
}

/// A DRMtoday token as presented: its text and the merchant it names (unverified). `Debug` does not print the token.
pub struct DrmtodayToken {
    raw: String,
    pub merchant: String,
}

impl std::fmt::Debug for DrmtodayToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrmtodayToken").field("merchant", &self.merchant).finish_non_exhaustive()
    }
}

impl DrmtodayToken {
    pub fn parse(raw: &str) -> Result<DrmtodayToken> {
        let merchant = format::peek_merchant(raw)?;
        Ok(DrmtodayToken { raw: raw.to_owned(), merchant })
    }
}

pub struct DrmtodayTokens {
    vault: Arc<SecretVault>,
    issuers: Arc<Issuers>,
}

fn not_enabled() -> ClavisError {
    ClavisError::new(ErrorCode::TokenFormatNotEnabled, "this tenant has not configured DRMtoday tokens")
}

fn view_of(secret: &Secret) -> Result<DrmtodayIntegrationView> {
    Ok(DrmtodayIntegrationView { updated_at: Some(secret.updated_at), ..secret.meta_as()? })
}

impl DrmtodayTokens {
    pub fn new(vault: Arc<SecretVault>, issuers: Arc<Issuers>) -> DrmtodayTokens {
        DrmtodayTokens { vault, issuers }
    }

    pub async fn integration(&self, tenant: &Tenant) -> Result<Option<DrmtodayIntegration>> {
        let Some(secret) = self.vault.get(tenant.id, SecretKind::Drmtoday, VAULT_NAME).await? else { return Ok(None) };
        let view = view_of(&secret)?;
        let stored: StoredSecrets = secret.value_as()?;
        let secrets = stored
            .secrets
            .into_iter()
            .map(|entry| {
                let bytes = Zeroizing::new(
                    hex::decode(&entry.secret).map_err(|e| ClavisError::internal("drmtoday secret", e))?,
                );
                Ok((entry.kid, bytes))
            })
            .collect::<Result<_>>()?;
        Ok(Some(DrmtodayIntegration { view, secrets }))
    }

    /// The tenant that owns the token's merchant.
    pub async fn owner(&self, token: &DrmtodayToken) -> Result<Option<TenantId>> {
        self.issuers.owner(FORMAT, &token.merchant).await
    }

    /// Verify a presented token of `tenant` and map it onto the tenant's policy.
    pub async fn verify(&self, tenant: Arc<Tenant>, token: &DrmtodayToken) -> Result<VerifiedToken> {
        let integration = self.integration(&tenant).await?.ok_or_else(not_enabled)?;
        let skew = tenant.settings.clock_skew_seconds;
        let now = Utc::now();
        let claims = format::verify(&token.raw, |kid| integration.secret(kid), now, skew)?;
        if claims.opt_data.merchant != integration.view.merchant {
            return Err(ClavisError::new(
                ErrorCode::TokenIssuerUnknown,
                format!("the token is for merchant {:?}, not this tenant's", claims.opt_data.merchant),
            ));
        }
        verified(tenant, claims, now, skew)
    }
}

/// The Clavis view of verified DRMtoday claims at `now`.
fn verified(
    tenant: Arc<Tenant>,
    claims: DrmtodayClaims,
    now: DateTime<Utc>,
    skew_seconds: u32,
) -> Result<VerifiedToken> {
    let expires_at = match claims.expires_at {
        Some(exp) => exp,
        None => {
            let until = claims.issued_at + TimeDelta::seconds(MAX_AGE_WITHOUT_EXP_SECONDS);
            if now.signed_duration_since(until) > TimeDelta::seconds(i64::from(skew_seconds)) {
                return Err(ClavisError::new(
                    ErrorCode::TokenExpired,
                    "a DRMtoday token without `exp` is accepted for 24 hours after its `iat`",
                ));
            }
            until
        }
    };
    let user_id = UserId::parse(&claims.opt_data.user_id).map_err(|e| {
        ClavisError::field(ErrorCode::TokenMalformed, "optData.userId", format!("`optData.userId` {}", e.detail))
    })?;
    let content_id = content_of(&claims.rights)?;
    let mut token_policy = map_rights(&claims.rights)?;
    // DRMtoday tokens are single use, whatever the rights say.
    token_policy.single_use = Some(true);
    token_policy.validate()?;
    let policy = tenant.settings.default_policy.narrowed_by(&token_policy);
    Ok(VerifiedToken {
        tenant,
        user_id,
        content_id,
        // The license endpoint names the DRM; DRMtoday tokens are not limited to one.
        drm: None,
        policy,
        jti: Some(claims.jti),
        expires_at: expires_at.timestamp(),
        format: FORMAT,
        external_keys: Vec::new(),
    })
}

/// The one asset every right names.
fn content_of(rights: &[CrtRight]) -> Result<ContentId> {
    let Some(first) = rights.first() else {
        return Err(ClavisError::field(ErrorCode::TokenMalformed, "crt", "`crt` grants no right"));
    };
    if let Some(index) = rights.iter().position(|right| right.asset_id != first.asset_id) {
        return Err(ClavisError::field(
            ErrorCode::TokenMalformed,
            format!("crt[{index}].assetId"),
            format!("every right of a token must be for the same asset ({:?})", first.asset_id),
        ));
    }
    ContentId::parse(&first.asset_id)
        .map_err(|e| ClavisError::field(ErrorCode::TokenMalformed, "crt[0].assetId", format!("`assetId` {}", e.detail)))
}

fn policy_invalid(field: String, detail: impl Into<String>) -> ClavisError {
    ClavisError::field(ErrorCode::PolicyInvalid, field, detail.into())
}

/// Whole seconds (rounded up) of a duration that must not be zero.
fn seconds(duration: Duration, field: String) -> Result<u64> {
    let whole = duration.as_secs().saturating_add(u64::from(duration.subsec_nanos() > 0));
    if whole == 0 {
        return Err(policy_invalid(field, "a zero duration would mean no limit in Clavis; give at least one second"));
    }
    Ok(whole)
}

/// The narrowest policy of all rights.
pub fn map_rights(rights: &[CrtRight]) -> Result<Policy> {
    let mut mapped: Option<Policy> = None;
    for (index, right) in rights.iter().enumerate() {
        let policy = map_right(index, right)?;
        mapped = Some(match mapped {
            None => policy,
            Some(earlier) => earlier.narrowed_by(&policy),
        });
    }
    Ok(mapped.unwrap_or_default())
}

/// One right as a Clavis policy.
fn map_right(index: usize, right: &CrtRight) -> Result<Policy> {
    let at = |path: &str| format!("crt[{index}].{path}");
    let mut policy = Policy { persistent: Some(right.store_license), ..Policy::default() };
    match &right.profile {
        Profile::Purchase(_) => policy.license_duration_seconds = Some(0),
        Profile::Rental(rental) => {
            if let Some(duration) = rental.relative_expiration {
                policy.license_duration_seconds = Some(seconds(duration, at("profile.rental.relativeExpiration"))?);
            }
            policy.expires_at = rental.absolute_expiration;
            if let Some(duration) = rental.play_duration {
                policy.playback_duration_seconds = Some(seconds(duration, at("profile.rental.playDuration"))?);
            }
        }
    }
    if let Some(protection) = right.output_protection
        && protection.enforce
    {
        if protection.digital {
            policy = policy.narrowed_by(&hdcp_rules(Hdcp::V1, true, true, true));
        }
        if protection.analogue {
            policy = policy.narrowed_by(&Policy {
                widevine: Some(WidevineRules { disable_analog_output: Some(true), ..WidevineRules::default() }),
                ..Policy::default()
            });
        }
    }
    let Some(op) = &right.op else { return Ok(policy) };
    let config = &op.config;
    let mut denied = BTreeSet::new();
    for (name, rules, tracks) in [
        ("UHD", &config.uhd, &[TrackType::Uhd1, TrackType::Uhd2][..]),
        ("HD", &config.hd, &[TrackType::Hd][..]),
        ("SD", &config.sd, &[TrackType::Sd][..]),
        ("AUDIO", &config.audio, &[TrackType::Audio][..]),
    ] {
        let Some(rules) = rules else { continue };
        let entries = [
            ("WidevineM", &rules.widevine),
            ("PlayReadyM", &rules.playready),
            ("FairPlayM", &rules.fairplay),
            ("*", &rules.any),
        ];
        for (drm, rule) in entries {
            let Some(rule) = rule else { continue };
            let field = |leaf: &str| at(&format!("op.config.{name}.{drm}.{leaf}"));
            if rule.deny {
                denied.extend(tracks.iter().copied());
            }
            policy = policy.narrowed_by(&map_op_rule(drm, rule, &field)?);
        }
    }
    if !denied.is_empty() {
        let allowed = [TrackType::Sd, TrackType::Hd, TrackType::Uhd1, TrackType::Uhd2, TrackType::Audio]
            .into_iter()
            .filter(|track| !denied.contains(track))
            .collect();
        policy.allowed_tracks = Some(allowed);
    }
    Ok(policy)
}

/// One `op.config.<quality>.<drm>` rule (other than `deny`) as a policy. `field` names a leaf of the rule.
fn map_op_rule(drm: &str, rule: &OpRule, field: &dyn Fn(&str) -> String) -> Result<Policy> {
    let (widevine, playready, fairplay) = match drm {
        "WidevineM" => (true, false, false),
        "PlayReadyM" => (false, true, false),
        "FairPlayM" => (false, false, true),
        _ => (true, true, true),
    };
    let mut policy = Policy::default();
    if let Some(name) = &rule.require_hdcp {
        let hdcp = hdcp(name).ok_or_else(|| {
            policy_invalid(
                field("requireHDCP"),
                format!("{name:?} is not an HDCP requirement (HDCP_NONE, HDCP_V1, HDCP_V2, HDCP_V2_1, HDCP_V2_2, HDCP_V2_3, HDCP_NO_DIGITAL_OUTPUT)"),
            )
        })?;
        policy = policy.narrowed_by(&hdcp_rules(hdcp, widevine, playready, fairplay));
    }
    if let Some(level) = rule.min_sl {
        match drm {
            "WidevineM" => {
                let level = u8::try_from(level)
                    .ok()
                    .filter(|l| (1..=5).contains(l))
                    .ok_or_else(|| policy_invalid(field("minSL"), "a Widevine security level is 1 to 5"))?;
                policy = policy.narrowed_by(&Policy {
                    widevine: Some(WidevineRules { min_security_level: Some(level), ..WidevineRules::default() }),
                    ..Policy::default()
                });
            }
            "PlayReadyM" => {
                let level = u16::try_from(level)
                    .ok()
                    .filter(|l| [150, 2000, 3000].contains(l))
                    .ok_or_else(|| policy_invalid(field("minSL"), "a PlayReady security level is 150, 2000 or 3000"))?;
                policy = policy.narrowed_by(&Policy {
                    playready: Some(PlayReadyRules { min_security_level: Some(level), ..PlayReadyRules::default() }),
                    ..Policy::default()
                });
            }
            // Clavis has no FairPlay security level.
            "FairPlayM" => {}
            _ => {
                return Err(policy_invalid(
                    field("minSL"),
                    "security levels differ per DRM; set minSL under WidevineM or PlayReadyM",
                ));
            }
        }
    }
    Ok(policy)
}

/// DRMtoday's HDCP requirement names.
fn hdcp(name: &str) -> Option<Hdcp> {
    Some(match name {
        "HDCP_NONE" => Hdcp::None,
        "HDCP_V1" => Hdcp::V1,
        "HDCP_V2" => Hdcp::V2,
        "HDCP_V2_1" => Hdcp::V2_1,
        "HDCP_V2_2" => Hdcp::V2_2,
        "HDCP_V2_3" => Hdcp::V2_3,
        "HDCP_NO_DIGITAL_OUTPUT" => Hdcp::NoDigitalOutput,
        _ => return None,
    })
}

/// An HDCP requirement for the chosen DRMs: Widevine's `required_hdcp`; PlayReady's digital video output
/// protection level 300 (HDCP required) and HDCP type 1 from HDCP 2.2 on (PlayReady cannot forbid digital output, so
/// `NO_DIGITAL_OUTPUT` is its strictest HDCP requirement); FairPlay's `hdcp_required`.
fn hdcp_rules(hdcp: Hdcp, widevine: bool, playready: bool, fairplay: bool) -> Policy {
    let required = hdcp != Hdcp::None;
    Policy {
        widevine: widevine.then(|| WidevineRules { required_hdcp: Some(hdcp), ..WidevineRules::default() }),
        playready: (playready && required).then(|| PlayReadyRules {
            digital_video_protection: Some(300),
            require_hdcp_type_1: Some(hdcp >= Hdcp::V2_2),
            ..PlayReadyRules::default()
        }),
        fairplay: (fairplay && required)
            .then(|| FairPlayRules { hdcp_required: Some(true), ..FairPlayRules::default() }),
        ..Policy::default()
    }
}

/// The 32 bytes of a secret given as hex (64 digits) or base64 (standard or URL-safe, padded or not).
fn secret_bytes(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    let text = text.trim();
    let decoded = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).ok()
    } else {
        crate::foreign::STANDARD_LENIENT
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .ok()
    };
    decoded.map(Zeroizing::new).filter(|bytes| bytes.len() == 32)
}

fn parse_body(body: DrmtodayIntegrationBody) -> Result<(DrmtodayIntegrationView, StoredSecrets)> {
    let field = |name: String, detail: &str| ClavisError::field(ErrorCode::IntegrationInvalid, name, detail.to_owned());
    let merchant = body.merchant.trim();
    if merchant.is_empty() || merchant.chars().count() > MAX_MERCHANT_LEN || merchant.chars().any(char::is_control) {
        return Err(field("merchant".into(), "the merchant id is 1 to 100 characters without control characters"));
    }
    if body.secrets.is_empty() || body.secrets.len() > MAX_SECRETS {
        return Err(field("secrets".into(), "give 1 to 16 shared secrets"));
    }
    let mut secrets = Vec::with_capacity(body.secrets.len());
    for (index, entry) in body.secrets.iter().enumerate() {
        let kid = entry.kid.as_str();
        if kid.is_empty() || kid.chars().count() > MAX_KID_LEN || kid.chars().any(char::is_control) {
            return Err(field(
                format!("secrets[{index}].kid"),
                "a key id is 1 to 100 characters without control characters",
            ));
        }
        if secrets.iter().any(|s: &StoredSecret| s.kid == kid) {
            return Err(field(format!("secrets[{index}].kid"), "each key id may be given once"));
        }
        let bytes = secret_bytes(&entry.secret).ok_or_else(|| {
            field(format!("secrets[{index}].secret"), "a DRMtoday shared secret is 32 bytes, as hex or base64")
        })?;
        secrets.push(StoredSecret { kid: kid.to_owned(), secret: hex::encode(bytes.as_slice()) });
    }
    let view = DrmtodayIntegrationView {
        merchant: merchant.to_owned(),
        kids: secrets.iter().map(|s| s.kid.clone()).collect(),
        updated_at: None,
    };
    Ok((view, StoredSecrets { secrets }))
}

/// Configure (or replace) the tenant's DRMtoday integration: what `PUT /api/v1/integrations/drmtoday` and the console's
/// form both do. The issuer id is claimed first, so one belongs to one tenant.
pub async fn save_integration(
    vault: &SecretVault,
    issuers: &Issuers,
    tenant_id: clavis_core::ids::TenantId,
    body: DrmtodayIntegrationBody,
) -> Result<DrmtodayIntegrationView> {
    let (view, secrets) = parse_body(body)?;
    issuers.claim(FORMAT, &view.merchant, tenant_id).await?;
    vault.put_json(tenant_id, SecretKind::Drmtoday, VAULT_NAME, &view, &secrets).await?;
    Ok(DrmtodayIntegrationView { updated_at: Some(Utc::now()), ..view })
}

/// The tenant's DRMtoday settings without their secrets; `None` when not configured.
pub async fn read_integration(
    vault: &SecretVault,
    tenant_id: clavis_core::ids::TenantId,
) -> Result<Option<DrmtodayIntegrationView>> {
    vault.get(tenant_id, SecretKind::Drmtoday, VAULT_NAME).await?.map(|secret| view_of(&secret)).transpose()
}

/// Stop accepting the tenant's DRMtoday tokens and forget the secrets; false when none were configured.
pub async fn remove_integration(
    vault: &SecretVault,
    issuers: &Issuers,
    tenant_id: clavis_core::ids::TenantId,
) -> Result<bool> {
    issuers.release(FORMAT, tenant_id).await?;
    vault.delete(tenant_id, SecretKind::Drmtoday, VAULT_NAME).await
}

/// Accept the tenant's DRMtoday upfront tokens: its merchant id and the shared secrets the tokens are signed with
/// (stored sealed; the set replaces the earlier one). The merchant must not belong to another tenant.
#[utoipa::path(
    put, path = "/api/v1/integrations/drmtoday", tag = "tokens",
    security(("api_key" = [])),
    request_body = DrmtodayIntegrationBody,
    responses(
        (status = 200, body = DrmtodayIntegrationView),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 409, description = "4014 the merchant belongs to another tenant", body = clavis_core::error::Problem),
        (status = 422, description = "1011 invalid field, 4013 invalid integration setting", body = clavis_core::error::Problem),
    )
)]
#[put("/api/v1/integrations/drmtoday")]
pub async fn put_drmtoday(
    auth: TenantAuth,
    vault: web::Data<SecretVault>,
    issuers: web::Data<Issuers>,
    body: ValidJson<DrmtodayIntegrationBody>,
) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(save_integration(&vault, &issuers, auth.tenant.id, body.into_inner()).await?))
}

/// The tenant's DRMtoday settings (key ids, never the secrets).
#[utoipa::path(
    get, path = "/api/v1/integrations/drmtoday", tag = "tokens",
    security(("api_key" = [])),
    responses(
        (status = 200, body = DrmtodayIntegrationView),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 404, description = "4012 not configured", body = clavis_core::error::Problem),
    )
)]
#[get("/api/v1/integrations/drmtoday")]
pub async fn get_drmtoday(auth: TenantAuth, vault: web::Data<SecretVault>) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(read_integration(&vault, auth.tenant.id).await?.ok_or_else(not_enabled)?))
}

/// Stop accepting the tenant's DRMtoday tokens and forget its secrets.
#[utoipa::path(
    delete, path = "/api/v1/integrations/drmtoday", tag = "tokens",
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 404, description = "4012 not configured", body = clavis_core::error::Problem),
    )
)]
#[delete("/api/v1/integrations/drmtoday")]
pub async fn delete_drmtoday(
    auth: TenantAuth,
    vault: web::Data<SecretVault>,
    issuers: web::Data<Issuers>,
) -> Result<HttpResponse> {
    if !remove_integration(&vault, &issuers, auth.tenant.id).await? {
        return Err(not_enabled());
    }
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foreign::drmtoday::{OutputPolicy, OutputProtection, Purchase, Rental};

    fn right(profile: Profile) -> CrtRight {
        CrtRight {
            asset_id: "movie".into(),
            variant_id: None,
            profile,
            store_license: false,
            output_protection: None,
            op: None,
            other: serde_json::Map::new(),
        }
    }

    fn op(config: serde_json::Value) -> Option<OutputPolicy> {
        Some(serde_json::from_value(serde_json::json!({ "config": config })).unwrap())
    }

    #[test]
    fn profiles_map_onto_durations() {
        let purchase =
            map_rights(&[CrtRight { store_license: true, ..right(Profile::Purchase(Purchase {})) }]).unwrap();
        assert_eq!(purchase.license_duration_seconds, Some(0));
        assert_eq!(purchase.persistent, Some(true));
        let rental = Rental {
            relative_expiration: Some(Duration::from_millis(600_500)),
            absolute_expiration: Some("2030-01-01T00:00:00Z".parse().unwrap()),
            play_duration: Some(Duration::from_secs(60)),
        };
        let rental = map_rights(&[right(Profile::Rental(rental))]).unwrap();
        assert_eq!(rental.license_duration_seconds, Some(601), "rounded up");
        assert_eq!(rental.playback_duration_seconds, Some(60));
        assert_eq!(rental.expires_at.unwrap().to_rfc3339(), "2030-01-01T00:00:00+00:00");
        assert_eq!(rental.persistent, Some(false));
        let zero = Rental { relative_expiration: Some(Duration::ZERO), ..Rental::default() };
        let err = map_rights(&[right(Profile::Purchase(Purchase {})), right(Profile::Rental(zero))]).unwrap_err();
        assert_eq!(
            (err.code, err.field.as_deref()),
            (ErrorCode::PolicyInvalid, Some("crt[1].profile.rental.relativeExpiration"))
        );
        // Several rights: the narrowest applies.
        let both = map_rights(&[
            CrtRight { store_license: true, ..right(Profile::Purchase(Purchase {})) },
            right(Profile::Rental(Rental { relative_expiration: Some(Duration::from_secs(60)), ..Rental::default() })),
        ])
        .unwrap();
        assert_eq!((both.license_duration_seconds, both.persistent), (Some(60), Some(false)));
    }

    #[test]
    fn output_policies_take_the_strictest_reading() {
        let mut with_op = right(Profile::Purchase(Purchase {}));
        with_op.op = op(serde_json::json!({
            "UHD": {"WidevineM": {"requireHDCP": "HDCP_V2_2", "minSL": 5}, "*": {"deny": true}},
            "HD": {"PlayReadyM": {"minSL": 3000}, "FairPlayM": {"requireHDCP": "HDCP_V1", "minSL": 7}},
            "SD": {"*": {}},
        }));
        let policy = map_rights(&[with_op.clone()]).unwrap();
        let tracks: Vec<_> = policy.allowed_tracks.unwrap().into_iter().collect();
        assert_eq!(tracks, vec![TrackType::Sd, TrackType::Hd, TrackType::Audio]);
        let widevine = policy.widevine.unwrap();
        assert_eq!((widevine.min_security_level, widevine.required_hdcp), (Some(5), Some(Hdcp::V2_2)));
        let playready = policy.playready.unwrap();
        assert_eq!((playready.min_security_level, playready.digital_video_protection), (Some(3000), None));
        assert_eq!(policy.fairplay.unwrap().hdcp_required, Some(true));

        for (config, field) in [
            (serde_json::json!({"HD": {"*": {"minSL": 1}}}), "crt[0].op.config.HD.*.minSL"),
            (serde_json::json!({"SD": {"WidevineM": {"minSL": 6}}}), "crt[0].op.config.SD.WidevineM.minSL"),
            (serde_json::json!({"SD": {"PlayReadyM": {"minSL": 1}}}), "crt[0].op.config.SD.PlayReadyM.minSL"),
            (serde_json::json!({"UHD": {"*": {"requireHDCP": "2.2"}}}), "crt[0].op.config.UHD.*.requireHDCP"),
        ] {
            with_op.op = op(config);
            let err = map_rights(&[with_op.clone()]).unwrap_err();
            assert_eq!((err.code, err.field.as_deref()), (ErrorCode::PolicyInvalid, Some(field)));
        }
    }

    #[test]
    fn enforced_output_protection_is_required() {
        let mut protected = right(Profile::Purchase(Purchase {}));
        protected.output_protection = Some(OutputProtection { digital: true, analogue: true, enforce: false });
        assert_eq!(map_rights(&[protected.clone()]).unwrap().widevine, None, "best effort restricts nothing");
        protected.output_protection = Some(OutputProtection { digital: true, analogue: true, enforce: true });
        let policy = map_rights(&[protected]).unwrap();
        let widevine = policy.widevine.unwrap();
        assert_eq!((widevine.required_hdcp, widevine.disable_analog_output), (Some(Hdcp::V1), Some(true)));
        assert_eq!(policy.playready.unwrap().digital_video_protection, Some(300));
        assert_eq!(policy.fairplay.unwrap().hdcp_required, Some(true));
    }

    #[test]
    fn rights_must_share_their_asset() {
        let mut other = right(Profile::Purchase(Purchase {}));
        other.asset_id = "trailer".into();
        let err = content_of(&[right(Profile::Purchase(Purchase {})), other]).unwrap_err();
        assert_eq!((err.code, err.field.as_deref()), (ErrorCode::TokenMalformed, Some("crt[1].assetId")));
        assert_eq!(content_of(&[right(Profile::Purchase(Purchase {}))]).unwrap().as_str(), "movie");
    }

    #[test]
    fn secrets_are_hex_or_base64_of_32_bytes() {
        let bytes = [0xabu8; 32];
        for text in [
            hex::encode(bytes),
            hex::encode_upper(bytes),
            base64::engine::general_purpose::STANDARD.encode(bytes),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        ] {
            assert_eq!(secret_bytes(&text).unwrap().as_slice(), &bytes, "{text}");
        }
        for bad in ["", "abcd", &hex::encode([0u8; 31]), &base64::engine::general_purpose::STANDARD.encode([0u8; 33])] {
            assert!(secret_bytes(bad).is_none(), "{bad}");
        }
    }
}
