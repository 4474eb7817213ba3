//! Axinom DRM license service messages for a tenant: the integration settings (`/api/v1/integrations/axinom`),
//! verification of a presented `X-AxDRM-Message` with the tenant's communication keys, and the mapping of its
//! entitlement onto Clavis's policy model.
//!
//! The message format itself (JWT, entitlement message, inline key decryption) is in [`crate::foreign::axinom`];
//! this module is what makes a tenant's existing Axinom message code work against Clavis unchanged.
//!
//! The mapping (the message policy is then narrowed by the tenant's default policy, as for every format):
//! - Axinom messages name no user and no content: they grant KIDs. The user is [`USER_ID`] and the content
//!   [`CONTENT_ID`], both fixed; the keys are the message's inline keys (`content_keys_source.inline`, each for
//!   track type ALL), and a license request for any KID the message does not grant is refused whole (5002). A
//!   message without inline keys is refused (Clavis does not resolve Axinom's other key sources);
//! - `license.duration` is the license duration (0 is refused: it would mean "unlimited" in Clavis),
//!   `license.allow_persistence` is `persistent`, `license.expiration_datetime` the policy's `expires_at`; a
//!   `license.start_datetime` in the future refuses the message as not yet valid (Clavis licenses have no start);
//! - `license_server.access_control.prevent_drm_message_reuse` makes the message single use. Axinom messages carry
//!   no message id, so the id in the replay ledger is the SHA-256 of the message's signature, kept until the
//!   earliest of `expiration_date` and `license.expiration_datetime` (after which the message no longer verifies or
//!   its policy has expired), or for good when the message has neither;
//! - the usage policies of the granted keys (`content_key_usage_policies`): Clavis keeps one rule set per DRM for the
//!   whole token, so the strictest of them applies to every key. Widevine `device_security_level` (SW_SECURE_CRYPTO
//!   1 ... HW_SECURE_ALL 5) and `hdcp` (`none`, `1.0` ... `2.3`, `no_digital_output`, or DRMtoday-style `HDCP_V2_2`
//!   names); a CGMS-A restriction other than `copy_free` turns off analog output (Clavis has no CGMS-A rule); PlayReady
//!   `min_device_security_level` and the output protection levels; FairPlay `hdcp` other than `none` requires HDCP.
//!   `concurrency_limit` is not enforced.

use std::collections::BTreeSet;
use std::sync::Arc;

use actix_web::{HttpResponse, delete, get, put, web};
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use clavis_core::http::ValidJson;
use clavis_core::ids::{ContentId, Kid, TenantId, TrackType, UserId};
use clavis_core::policy::{FairPlayRules, Hdcp, PlayReadyRules, Policy, WidevineRules};
use clavis_core::{ClavisError, ErrorCode, Result};
use clavis_tenant::{Secret, SecretKind, SecretVault, Tenant, TenantAuth};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::foreign::CompactJwt;
use crate::foreign::axinom::{self as format, AxinomClaims, AxinomComKey, ContentKeyUsagePolicy};
use crate::issuers::Issuers;
use crate::native::{ExternalKey, VerifiedToken};

/// The token format's name in the issuer registry, the replay ledger and the log.
pub const FORMAT: &str = "axinom";
/// The header Axinom players send the message in (header names are case-insensitive; Axinom writes
/// `X-AxDRM-Message`).
pub const HEADER: &str = "x-axdrm-message";
/// The user id of every Axinom message (the format names no user).
pub const USER_ID: &str = "axinom";
/// The content id of every Axinom message (the format grants KIDs, not a content).
pub const CONTENT_ID: &str = "axinom";
/// Most communication keys a tenant may have configured at once.
pub const MAX_KEYS: usize = 16;
/// The ledger expiry of a single-use message that never expires: 9999-12-31T23:59:59Z.
const NEVER: i64 = 253_402_300_799;
const VAULT_NAME: &str = "default";

/// One communication key in `PUT /api/v1/integrations/axinom`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AxinomKeyBody {
    /// The key's id, as the messages' `com_key_id` names it.
    #[schema(example = "69e54088-e9e0-4530-8c1a-1eb6dcd0d14e")]
    pub com_key_id: String,
    /// The communication key: base64 of 32 bytes.
    pub com_key: String,
}

/// Body of `PUT /api/v1/integrations/axinom`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AxinomIntegrationBody {
    /// The communication keys messages may be signed with (1 to 16). Replaces the earlier set.
    pub keys: Vec<AxinomKeyBody>,
}

/// The integration's settings as shown (never the keys).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AxinomIntegrationView {
    /// The ids of the configured communication keys.
    pub com_key_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    com_key_id: Uuid,
    /// Hex of the 32 bytes.
    com_key: String,
}

#[derive(Serialize, Deserialize)]
struct StoredKeys {
    keys: Vec<StoredKey>,
}

/// A tenant's Axinom settings with its keys, opened.
pub struct AxinomIntegration {
    pub view: AxinomIntegrationView,
    keys: Vec<(Uuid, AxinomComKey)>,
}

impl AxinomIntegration {
    /// The communication key an id names.
    pub fn key(&self, com_key_id: &Uuid) -> Option<AxinomComKey> {
        self.keys.iter().find(|(id, _)| id == com_key_id).map(|(_, key)| key.clone())
    }
}

/// An Axinom message as presented: its text and the communication key it names (unverified). `Debug` does not print
/// the message.
pub struct AxinomMessage {
    raw: String,
    pub com_key_id: Uuid,
}

impl std::fmt::Debug for AxinomMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AxinomMessage").field("com_key_id", &self.com_key_id).finish_non_exhaustive()
    }
}

impl AxinomMessage {
    pub fn parse(raw: &str) -> Result<AxinomMessage> {
        let com_key_id = format::peek_com_key_id(raw)?;
        Ok(AxinomMessage { raw: raw.to_owned(), com_key_id })
    }
}

pub struct AxinomTokens {
    vault: Arc<SecretVault>,
    issuers: Arc<Issuers>,
}

fn not_enabled() -> ClavisError {
    ClavisError::new(ErrorCode::TokenFormatNotEnabled, "this tenant has not configured Axinom messages")
}

fn view_of(secret: &Secret) -> Result<AxinomIntegrationView> {
    Ok(AxinomIntegrationView { updated_at: Some(secret.updated_at), ..secret.meta_as()? })
}

impl AxinomTokens {
    pub fn new(vault: Arc<SecretVault>, issuers: Arc<Issuers>) -> AxinomTokens {
        AxinomTokens { vault, issuers }
    }

    pub async fn integration(&self, tenant: &Tenant) -> Result<Option<AxinomIntegration>> {
        let Some(secret) = self.vault.get(tenant.id, SecretKind::Axinom, VAULT_NAME).await? else { return Ok(None) };
        let view = view_of(&secret)?;
        let stored: StoredKeys = secret.value_as()?;
        let keys = stored
            .keys
            .into_iter()
            .map(|entry| {
                let bytes = Zeroizing::new(hex::decode(&entry.com_key).unwrap_or_default());
                let bytes = <[u8; 32]>::try_from(bytes.as_slice())
                    .map_err(|_| ClavisError::internal("axinom key", "not 32 bytes"))?;
                Ok((entry.com_key_id, AxinomComKey::from_bytes(bytes)))
            })
            .collect::<Result<_>>()?;
        Ok(Some(AxinomIntegration { view, keys }))
    }

    /// The tenant that owns the message's communication key.
    pub async fn owner(&self, message: &AxinomMessage) -> Result<Option<TenantId>> {
        self.issuers.owner(FORMAT, &message.com_key_id.to_string()).await
    }

    /// Verify a presented message of `tenant` and map it onto the tenant's policy.
    pub async fn verify(&self, tenant: Arc<Tenant>, message: &AxinomMessage) -> Result<VerifiedToken> {
        let integration = self.integration(&tenant).await?.ok_or_else(not_enabled)?;
        let skew = tenant.settings.clock_skew_seconds;
        let now = Utc::now();
        let claims = format::verify(&message.raw, |id| integration.key(id), now, skew)?;
        verified(tenant, &message.raw, &claims, now, skew)
    }
}

/// The replay ledger's id of a message: the SHA-256 of its signature (Axinom messages carry no id of their own).
fn message_id(raw: &str) -> Result<String> {
    let jwt = CompactJwt::parse(raw, "Axinom message")?;
    Ok(hex::encode(ring::digest::digest(&ring::digest::SHA256, &jwt.signature)))
}

/// The Clavis view of verified Axinom claims at `now`.
fn verified(
    tenant: Arc<Tenant>,
    raw: &str,
    claims: &AxinomClaims,
    now: DateTime<Utc>,
    skew_seconds: u32,
) -> Result<VerifiedToken> {
    let license = &claims.message.license;
    if license
        .start_datetime
        .is_some_and(|start| start.signed_duration_since(now) > TimeDelta::seconds(i64::from(skew_seconds)))
    {
        return Err(ClavisError::new(
            ErrorCode::TokenNotYetValid,
            "the message's `license.start_datetime` is in the future",
        ));
    }
    if claims.content_keys.is_empty() {
        return Err(ClavisError::field(
            ErrorCode::PolicyInvalid,
            "message.content_keys_source.inline",
            "the message grants no inline content key (Clavis takes an Axinom message's keys from `inline` only)",
        ));
    }
    let external_keys = claims
        .content_keys
        .iter()
        .map(|(kid, key)| ExternalKey {
            kid: Kid(*kid.as_bytes()),
            key: Zeroizing::new(*key.as_bytes()),
            track_type: TrackType::All,
        })
        .collect();
    let token_policy = map_policy(claims)?;
    token_policy.validate()?;
    let policy = tenant.settings.default_policy.narrowed_by(&token_policy);
    let expires_at = [claims.expiration_date, license.expiration_datetime].into_iter().flatten().min();
    Ok(VerifiedToken {
        tenant,
        user_id: UserId::parse(USER_ID)?,
        content_id: ContentId::parse(CONTENT_ID)?,
        drm: None,
        policy,
        jti: Some(message_id(raw)?),
        expires_at: expires_at.map_or(NEVER, |at| at.timestamp()),
        format: FORMAT,
        external_keys,
    })
}

fn policy_invalid(field: String, detail: impl Into<String>) -> ClavisError {
    ClavisError::field(ErrorCode::PolicyInvalid, field, detail.into())
}

/// The message's license rules and the strictest usage policy of its granted keys, as a Clavis policy.
pub fn map_policy(claims: &AxinomClaims) -> Result<Policy> {
    let message = &claims.message;
    let license = &message.license;
    let mut policy = Policy {
        expires_at: license.expiration_datetime,
        persistent: Some(license.allow_persistence),
        single_use: message.license_server.access_control.prevent_drm_message_reuse.then_some(true),
        ..Policy::default()
    };
    if let Some(duration) = license.duration {
        if duration == 0 {
            return Err(policy_invalid(
                "message.license.duration".into(),
                "a zero duration would mean no limit in Clavis; give at least one second",
            ));
        }
        policy.license_duration_seconds = Some(duration);
    }
    let used: BTreeSet<&str> =
        message.content_keys_source.inline.iter().filter_map(|key| key.usage_policy.as_deref()).collect();
    for (index, usage) in message.content_key_usage_policies.iter().enumerate() {
        if used.contains(usage.name.as_str()) {
            policy = policy.narrowed_by(&map_usage_policy(index, usage)?);
        }
    }
    Ok(policy)
}

fn map_usage_policy(index: usize, usage: &ContentKeyUsagePolicy) -> Result<Policy> {
    let at = |path: &str| format!("message.content_key_usage_policies[{index}].{path}");
    let mut policy = Policy::default();
    if let Some(widevine) = &usage.widevine {
        let min_security_level = widevine
            .device_security_level
            .as_deref()
            .map(|name| {
                widevine_level(name).ok_or_else(|| {
                    policy_invalid(
                        at("widevine.device_security_level"),
                        format!("{name:?} is not a Widevine security level (SW_SECURE_CRYPTO ... HW_SECURE_ALL)"),
                    )
                })
            })
            .transpose()?;
        let required_hdcp = widevine
            .hdcp
            .as_deref()
            .map(|name| {
                hdcp(name).ok_or_else(|| {
                    policy_invalid(
                        at("widevine.hdcp"),
                        format!(
                            "{name:?} is not an HDCP requirement (none, 1.0, 2.0, 2.1, 2.2, 2.3, no_digital_output)"
                        ),
                    )
                })
            })
            .transpose()?;
        let restricts_copies = widevine
            .cgms_a
            .as_deref()
            .is_some_and(|value| !["copy_free", "none", ""].contains(&value.to_ascii_lowercase().as_str()));
        policy.widevine = Some(WidevineRules {
            min_security_level,
            required_hdcp,
            disable_analog_output: restricts_copies.then_some(true),
        });
    }
    if let Some(playready) = &usage.playready {
        let level = |value: Option<u32>, path: &str| -> Result<Option<u16>> {
            value.map(|v| u16::try_from(v).map_err(|_| policy_invalid(at(path), "not a PlayReady level"))).transpose()
        };
        let min_security_level = level(playready.min_device_security_level, "playready.min_device_security_level")?;
        if min_security_level.is_some_and(|l| ![150, 2000, 3000].contains(&l)) {
            return Err(policy_invalid(
                at("playready.min_device_security_level"),
                "a PlayReady security level is 150, 2000 or 3000",
            ));
        }
        let compressed = level(
            playready.compressed_digital_audio_protection_level,
            "playready.compressed_digital_audio_protection_level",
        )?;
        let uncompressed = level(
            playready.uncompressed_digital_audio_protection_level,
            "playready.uncompressed_digital_audio_protection_level",
        )?;
        policy.playready = Some(PlayReadyRules {
            min_security_level,
            digital_video_protection: level(
                playready.digital_video_protection_level,
                "playready.digital_video_protection_level",
            )?,
            analog_video_protection: level(
                playready.analog_video_protection_level,
                "playready.analog_video_protection_level",
            )?,
            digital_audio_protection: compressed.max(uncompressed),
            require_hdcp_type_1: None,
        });
    }
    if let Some(fairplay) = &usage.fairplay
        && let Some(hdcp) = fairplay.hdcp.as_deref()
        && !hdcp.eq_ignore_ascii_case("none")
    {
        policy.fairplay = Some(FairPlayRules { hdcp_required: Some(true), ..FairPlayRules::default() });
    }
    Ok(policy)
}

/// Widevine's security level names (Axinom uses them) as Clavis's levels 1-5.
fn widevine_level(name: &str) -> Option<u8> {
    Some(match name.to_ascii_uppercase().as_str() {
        "SW_SECURE_CRYPTO" => 1,
        "SW_SECURE_DECODE" => 2,
        "HW_SECURE_CRYPTO" => 3,
        "HW_SECURE_DECODE" => 4,
        "HW_SECURE_ALL" => 5,
        _ => return None,
    })
}

/// An HDCP requirement as Axinom writes it (`2.2`), or with Widevine's / DRMtoday's names (`HDCP_V2_2`).
fn hdcp(name: &str) -> Option<Hdcp> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("HDCP_").unwrap_or(&upper);
    Some(match bare.strip_prefix('V').unwrap_or(bare) {
        "NONE" => Hdcp::None,
        "1" | "1.0" | "1.X" => Hdcp::V1,
        "2" | "2.0" => Hdcp::V2,
        "2_1" | "2.1" => Hdcp::V2_1,
        "2_2" | "2.2" => Hdcp::V2_2,
        "2_3" | "2.3" => Hdcp::V2_3,
        "NO_DIGITAL_OUTPUT" => Hdcp::NoDigitalOutput,
        _ => return None,
    })
}

fn parse_body(body: AxinomIntegrationBody) -> Result<(AxinomIntegrationView, StoredKeys)> {
    let field = |name: String, detail: &str| ClavisError::field(ErrorCode::IntegrationInvalid, name, detail.to_owned());
    if body.keys.is_empty() || body.keys.len() > MAX_KEYS {
        return Err(field("keys".into(), "give 1 to 16 communication keys"));
    }
    let mut keys: Vec<StoredKey> = Vec::with_capacity(body.keys.len());
    for (index, entry) in body.keys.iter().enumerate() {
        let id = Uuid::parse_str(entry.com_key_id.trim())
            .map_err(|_| field(format!("keys[{index}].com_key_id"), "a communication key id is a UUID"))?;
        if keys.iter().any(|key| key.com_key_id == id) {
            return Err(field(format!("keys[{index}].com_key_id"), "each communication key id may be given once"));
        }
        let key = Zeroizing::new(crate::foreign::STANDARD_LENIENT.decode(entry.com_key.trim()).unwrap_or_default());
        if key.len() != 32 {
            return Err(field(format!("keys[{index}].com_key"), "an Axinom communication key is base64 of 32 bytes"));
        }
        keys.push(StoredKey { com_key_id: id, com_key: hex::encode(key.as_slice()) });
    }
    let view = AxinomIntegrationView {
        com_key_ids: keys.iter().map(|k| k.com_key_id.to_string()).collect(),
        updated_at: None,
    };
    Ok((view, StoredKeys { keys }))
}

/// Configure (or replace) the tenant's Axinom integration: what `PUT /api/v1/integrations/axinom` and the console's
/// form both do. The issuer id is claimed first, so one belongs to one tenant.
pub async fn save_integration(
    vault: &SecretVault,
    issuers: &Issuers,
    tenant_id: clavis_core::ids::TenantId,
    body: AxinomIntegrationBody,
) -> Result<AxinomIntegrationView> {
    let (view, keys) = parse_body(body)?;
    issuers.claim_many(FORMAT, &view.com_key_ids, tenant_id).await?;
    vault.put_json(tenant_id, SecretKind::Axinom, VAULT_NAME, &view, &keys).await?;
    Ok(AxinomIntegrationView { updated_at: Some(Utc::now()), ..view })
}

/// The tenant's Axinom settings without their secrets; `None` when not configured.
pub async fn read_integration(
    vault: &SecretVault,
    tenant_id: clavis_core::ids::TenantId,
) -> Result<Option<AxinomIntegrationView>> {
    vault.get(tenant_id, SecretKind::Axinom, VAULT_NAME).await?.map(|secret| view_of(&secret)).transpose()
}

/// Stop accepting the tenant's Axinom tokens and forget the secrets; false when none were configured.
pub async fn remove_integration(
    vault: &SecretVault,
    issuers: &Issuers,
    tenant_id: clavis_core::ids::TenantId,
) -> Result<bool> {
    issuers.release(FORMAT, tenant_id).await?;
    vault.delete(tenant_id, SecretKind::Axinom, VAULT_NAME).await
}

/// Accept the tenant's Axinom license service messages: the communication keys they are signed with (stored sealed;
/// the set replaces the earlier one). No key id may belong to another tenant.
#[utoipa::path(
    put, path = "/api/v1/integrations/axinom", tag = "tokens",
    security(("api_key" = [])),
    request_body = AxinomIntegrationBody,
    responses(
        (status = 200, body = AxinomIntegrationView),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 409, description = "4014 a communication key id belongs to another tenant", body = clavis_core::error::Problem),
        (status = 422, description = "1011 invalid field, 4013 invalid integration setting", body = clavis_core::error::Problem),
    )
)]
#[put("/api/v1/integrations/axinom")]
pub async fn put_axinom(
    auth: TenantAuth,
    vault: web::Data<SecretVault>,
    issuers: web::Data<Issuers>,
    body: ValidJson<AxinomIntegrationBody>,
) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(save_integration(&vault, &issuers, auth.tenant.id, body.into_inner()).await?))
}

/// The tenant's Axinom settings (key ids, never the keys).
#[utoipa::path(
    get, path = "/api/v1/integrations/axinom", tag = "tokens",
    security(("api_key" = [])),
    responses(
        (status = 200, body = AxinomIntegrationView),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 404, description = "4012 not configured", body = clavis_core::error::Problem),
    )
)]
#[get("/api/v1/integrations/axinom")]
pub async fn get_axinom(auth: TenantAuth, vault: web::Data<SecretVault>) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(read_integration(&vault, auth.tenant.id).await?.ok_or_else(not_enabled)?))
}

/// Stop accepting the tenant's Axinom messages and forget its keys.
#[utoipa::path(
    delete, path = "/api/v1/integrations/axinom", tag = "tokens",
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 404, description = "4012 not configured", body = clavis_core::error::Problem),
    )
)]
#[delete("/api/v1/integrations/axinom")]
pub async fn delete_axinom(
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
    use crate::foreign::axinom::{encrypt_inline_key, sign_message, verify};
    use serde_json::{Value, json};

    const COM_KEY_ID: &str = "69e54088-e9e0-4530-8c1a-1eb6dcd0d14e";
    const KID: &str = "6e5a1d26-2757-47d7-8046-eaa5a9c6ee6b";

    fn com_key() -> AxinomComKey {
        AxinomComKey::from_bytes(*b"axinom communication key 32 byte")
    }

    fn claims(policy: Value) -> AxinomClaims {
        let kid = Uuid::parse_str(KID).unwrap();
        let message = json!({
            "version": 1,
            "com_key_id": COM_KEY_ID,
            "message": {
                "type": "entitlement_message",
                "version": 2,
                "license": {"duration": 3600, "allow_persistence": true, "expiration_datetime": "2030-01-01T00:00:00Z"},
                "content_keys_source": {"inline": [
                    {"id": KID, "encrypted_key": encrypt_inline_key(&com_key(), &kid, &[1; 16]), "usage_policy": "A"}
                ]},
                "content_key_usage_policies": [policy, {"name": "unused", "widevine": {"hdcp": "bogus"}}],
                "license_server": {"access_control": {"prevent_drm_message_reuse": true}}
            }
        });
        verify(&sign_message(&com_key(), &message), |_| Some(com_key()), Utc::now(), 30).unwrap()
    }

    #[test]
    fn license_rules_and_usage_policies_map_onto_the_policy() {
        let claims = claims(json!({
            "name": "A",
            "widevine": {"device_security_level": "HW_SECURE_DECODE", "hdcp": "2.2", "cgms-a": "copy_never"},
            "playready": {"min_device_security_level": 2000, "digital_video_protection_level": 300,
                          "compressed_digital_audio_protection_level": 100, "uncompressed_digital_audio_protection_level": 250},
            "fairplay": {"hdcp": "TYPE1"}
        }));
        let policy = map_policy(&claims).unwrap();
        assert_eq!(policy.license_duration_seconds, Some(3600));
        assert_eq!(policy.persistent, Some(true));
        assert_eq!(policy.single_use, Some(true));
        assert_eq!(policy.expires_at.unwrap().to_rfc3339(), "2030-01-01T00:00:00+00:00");
        assert_eq!(
            policy.widevine,
            Some(WidevineRules {
                min_security_level: Some(4),
                required_hdcp: Some(Hdcp::V2_2),
                disable_analog_output: Some(true)
            })
        );
        let playready = policy.playready.unwrap();
        assert_eq!(playready.min_security_level, Some(2000));
        assert_eq!(playready.digital_video_protection, Some(300));
        assert_eq!(playready.digital_audio_protection, Some(250));
        assert_eq!(policy.fairplay.unwrap().hdcp_required, Some(true));
    }

    #[test]
    fn unknown_usage_values_are_refused_naming_the_field() {
        for (policy, field) in [
            (
                json!({"name": "A", "widevine": {"device_security_level": "L1"}}),
                "message.content_key_usage_policies[0].widevine.device_security_level",
            ),
            (json!({"name": "A", "widevine": {"hdcp": "3.0"}}), "message.content_key_usage_policies[0].widevine.hdcp"),
            (
                json!({"name": "A", "playready": {"min_device_security_level": 1000}}),
                "message.content_key_usage_policies[0].playready.min_device_security_level",
            ),
        ] {
            let err = map_policy(&claims(policy)).unwrap_err();
            assert_eq!((err.code, err.field.as_deref()), (ErrorCode::PolicyInvalid, Some(field)));
        }
    }

    #[test]
    fn hdcp_names() {
        for (name, hdcp_version) in [
            ("none", Hdcp::None),
            ("1.0", Hdcp::V1),
            ("HDCP_V1", Hdcp::V1),
            ("2.1", Hdcp::V2_1),
            ("HDCP_V2_2", Hdcp::V2_2),
            ("no_digital_output", Hdcp::NoDigitalOutput),
        ] {
            assert_eq!(hdcp(name), Some(hdcp_version), "{name}");
        }
        assert_eq!(hdcp("3"), None);
    }

    #[test]
    fn messages_are_identified_by_their_signature() {
        let message = sign_message(&com_key(), &json!({"com_key_id": COM_KEY_ID}));
        let other = sign_message(&com_key(), &json!({"com_key_id": COM_KEY_ID, "x": 1}));
        let id = message_id(&message).unwrap();
        assert_eq!(id.len(), 64);
        assert_eq!(id, message_id(&message).unwrap());
        assert_ne!(id, message_id(&other).unwrap());
    }

    #[test]
    fn settings_are_validated() {
        let key = base64::engine::general_purpose::STANDARD.encode([3u8; 32]);
        let body = |keys: Value| serde_json::from_value::<AxinomIntegrationBody>(json!({ "keys": keys })).unwrap();
        for (keys, field) in [
            (json!([]), "keys"),
            (json!([{"com_key_id": "nope", "com_key": key}]), "keys[0].com_key_id"),
            (json!([{"com_key_id": COM_KEY_ID, "com_key": "AAAA"}]), "keys[0].com_key"),
            (
                json!([{"com_key_id": COM_KEY_ID, "com_key": key}, {"com_key_id": COM_KEY_ID.to_uppercase(), "com_key": key}]),
                "keys[1].com_key_id",
            ),
        ] {
            let err = parse_body(body(keys)).err().unwrap();
            assert_eq!((err.code, err.field.as_deref()), (ErrorCode::IntegrationInvalid, Some(field)));
        }
        let (view, stored) =
            parse_body(body(json!([{"com_key_id": COM_KEY_ID.to_uppercase(), "com_key": key}]))).unwrap();
        assert_eq!(view.com_key_ids, vec![COM_KEY_ID.to_owned()]);
        assert_eq!(stored.keys[0].com_key, hex::encode([3u8; 32]));
    }
}
