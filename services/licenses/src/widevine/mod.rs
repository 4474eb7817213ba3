//! Widevine as a DRM proxy (`POST /license/widevine`, seed document 004): read the CDM's challenge enough to know
//! its keys, session, device and time; apply the token and the rules; then ask the tenant's Widevine license
//! service for the license with the `getlicense` API, giving it the content keys and the policy, signed as the
//! tenant's provider; relay the license bytes to the player.
//!
//! A self-hosted server cannot sign Widevine licenses itself (that needs Google's provider agreement), so the
//! upstream makes the license; Clavis decides whether there is one and what it allows.

pub mod challenge;

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clavis_core::ids::{Drm, TrackType};
use clavis_core::policy::{Hdcp, Policy};
use clavis_core::{ClavisError, ErrorCode, Result};
use clavis_tokens::{Credential, VerifiedToken};
use serde::{Deserialize, Serialize};

use crate::api::{RawToken, callback_from, token_from};
use crate::outbound::ReceivedAnswer;
use crate::rules::Message;
use crate::service::{LicenseKey, LicenseService, Story};
use crate::upstream::{WIDEVINE_PEER, WidevineUpstream};
use challenge::{Challenge, LicenseRequest, RequestType};

/// The inner `getlicense` message (shared/specs/widevine.md).
#[derive(Serialize, Debug)]
pub struct GetLicense {
    /// The CDM's challenge, base64.
    pub payload: String,
    pub provider: String,
    /// The content id's bytes, base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_track_types: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub content_key_specs: Vec<ContentKeySpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_overrides: Option<PolicyOverrides>,
}

#[derive(Serialize, Debug)]
pub struct ContentKeySpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track_type: Option<&'static str>,
    pub key_id: String,
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_level: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_output_protection: Option<OutputProtection>,
}

#[derive(Serialize, Debug)]
pub struct OutputProtection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hdcp: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_analog_output: Option<bool>,
}

#[derive(Serialize, Debug)]
pub struct PolicyOverrides {
    pub can_play: bool,
    pub can_persist: bool,
    pub can_renew: bool,
    pub license_duration_seconds: u64,
    pub rental_duration_seconds: u64,
    pub playback_duration_seconds: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewal_server_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewal_delay_seconds: Option<u64>,
}

/// The signed envelope posted upstream.
#[derive(Serialize)]
struct Envelope<'a> {
    request: String,
    signature: String,
    signer: &'a str,
}

/// The upstream's answer.
#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    license: Option<String>,
    #[serde(default)]
    status_message: Option<String>,
}

fn hdcp_name(hdcp: Hdcp) -> &'static str {
    match hdcp {
        Hdcp::None => "HDCP_NONE",
        Hdcp::V1 => "HDCP_V1",
        Hdcp::V2 => "HDCP_V2",
        Hdcp::V2_1 => "HDCP_V2_1",
        Hdcp::V2_2 => "HDCP_V2_2",
        Hdcp::V2_3 => "HDCP_V2_3",
        Hdcp::NoDigitalOutput => "HDCP_NO_DIGITAL_OUTPUT",
    }
}

/// The widest video track the policy allows, as Widevine's `allowed_track_types`.
fn allowed_track_types(policy: &Policy) -> &'static str {
    match &policy.allowed_tracks {
        None => "SD_UHD2",
        Some(tracks) if tracks.contains(&TrackType::Uhd2) => "SD_UHD2",
        Some(tracks) if tracks.contains(&TrackType::Uhd1) => "SD_UHD1",
        Some(tracks) if tracks.contains(&TrackType::Hd) => "SD_HD",
        Some(_) => "SD_ONLY",
    }
}

/// The key specs and policy overrides for a license under `policy`. Keys made for all tracks carry no track type
/// (Widevine has no such type; the license applies the key to every track).
pub fn getlicense(
    challenge: &[u8],
    provider: &str,
    content_id: Option<&[u8]>,
    keys: &[(clavis_core::ids::Kid, [u8; 16], TrackType)],
    policy: Option<(&Policy, chrono::DateTime<chrono::Utc>, String)>,
) -> GetLicense {
    let mut message = GetLicense {
        payload: STANDARD.encode(challenge),
        provider: provider.to_owned(),
        content_id: content_id.map(|c| STANDARD.encode(c)),
        allowed_track_types: None,
        content_key_specs: Vec::new(),
        policy_overrides: None,
    };
    let Some((policy, now, renewal_url)) = policy else { return message };
    let rules = policy.widevine.as_ref();
    let protection = rules.and_then(|r| {
        (r.required_hdcp.is_some() || r.disable_analog_output.is_some()).then(|| OutputProtection {
            hdcp: r.required_hdcp.map(hdcp_name),
            disable_analog_output: r.disable_analog_output,
        })
    });
    message.allowed_track_types = Some(allowed_track_types(policy));
    message.content_key_specs = keys
        .iter()
        .map(|(kid, key, track)| ContentKeySpec {
            track_type: (*track != TrackType::All).then(|| track.as_str()),
            key_id: STANDARD.encode(kid.0),
            key: STANDARD.encode(key),
            security_level: rules.and_then(|r| r.min_security_level),
            required_output_protection: protection
                .as_ref()
                .map(|p| OutputProtection { hdcp: p.hdcp, disable_analog_output: p.disable_analog_output }),
        })
        .collect();
    let renewal = policy.renewal_interval_seconds.filter(|s| *s > 0);
    message.policy_overrides = Some(PolicyOverrides {
        can_play: true,
        can_persist: policy.allows_persistence(),
        can_renew: renewal.is_some(),
        license_duration_seconds: policy.license_seconds_at(now).unwrap_or(0),
        rental_duration_seconds: policy.rental_duration_seconds.unwrap_or(0),
        playback_duration_seconds: policy.playback_duration_seconds.unwrap_or(0),
        renewal_server_url: renewal.map(|_| renewal_url),
        renewal_delay_seconds: renewal,
    });
    message
}

fn malformed(e: challenge::ChallengeError) -> ClavisError {
    ClavisError::new(ErrorCode::WidevineChallengeMalformed, e.to_string())
}

/// `INTERNAL_ERROR` is the one status the Widevine services ask to retry.
fn retryable(answer: &ReceivedAnswer) -> bool {
    serde_json::from_slice::<Answer>(&answer.raw_body).is_ok_and(|a| a.status == "INTERNAL_ERROR")
}

/// The license bytes from the upstream's answer.
fn license_of(answer: &ReceivedAnswer) -> Result<Vec<u8>> {
    if !(200..300).contains(&answer.status) {
        return Err(ClavisError::new(
            ErrorCode::UpstreamRefused,
            format!("the Widevine license service answered HTTP {}", answer.status),
        ));
    }
    let parsed: Answer = serde_json::from_slice(&answer.raw_body).map_err(|e| {
        ClavisError::new(ErrorCode::UpstreamAnswerMalformed, format!("the answer is not getlicense JSON: {e}"))
    })?;
    if parsed.status != "OK" {
        let message: String =
            parsed.status_message.unwrap_or_default().chars().filter(|c| !c.is_control()).take(200).collect();
        let status: String = parsed.status.chars().filter(|c| !c.is_control()).take(64).collect();
        return Err(ClavisError::new(
            ErrorCode::UpstreamRefused,
            format!("the Widevine license service answered status {status} {message}").trim_end().to_owned(),
        ));
    }
    let license = parsed.license.filter(|l| !l.is_empty()).ok_or_else(|| {
        ClavisError::new(ErrorCode::UpstreamAnswerMalformed, "the answer says OK but carries no license")
    })?;
    STANDARD
        .decode(license.trim())
        .map_err(|_| ClavisError::new(ErrorCode::UpstreamAnswerMalformed, "the answer's license is not base64"))
}

/// Ids derived from the DRM's bytes: hashed, so they are short, printable and reveal nothing.
fn derived_id(prefix: &str, bytes: &[u8]) -> String {
    format!("{prefix}:{}", hex::encode(&clavis_core::crypto::sha256(bytes)[..16]))
}

impl LicenseService {
    /// The Widevine license for the challenge in `body`, from the tenant's upstream, or the refusal.
    pub async fn widevine(&self, story: &mut Story, token: Option<Credential<'_>>, body: &[u8]) -> Result<Vec<u8>> {
        // Parsed first so that even a refused token's log row says which keys were asked for.
        let parsed = challenge::parse(body).map_err(malformed);
        if let Ok(Challenge::License(request)) = &parsed {
            story.set_kids(request.kids.clone());
        }
        let verified = self.authorize(story, token).await?;
        story.set_rule("request");
        let parsed = parsed?;
        story.set_rule("upstream.settings");
        let upstream = self.upstreams().widevine(&verified.tenant).await?;
        match parsed {
            Challenge::ServiceCertificate => {
                // No keys and no rules: the certificate is public; the token still had to be good.
                let message = getlicense(body, &upstream.provider, None, &[], None);
                let license = self.ask_upstream(story, &upstream, &message).await?;
                story.set_rule("ok");
                Ok(license)
            }
            Challenge::License(request) => self.widevine_license(story, &verified, &upstream, body, request).await,
        }
    }

    async fn widevine_license(
        &self,
        story: &mut Story,
        verified: &VerifiedToken,
        upstream: &WidevineUpstream,
        body: &[u8],
        request: LicenseRequest,
    ) -> Result<Vec<u8>> {
        // What the DRM says outranks what the application's headers say.
        if let Some(token) = request.client_token_sha256 {
            story.facts.device_id = Some(derived_id("widevine", &token));
        }
        if let Some(id) = &request.request_id {
            story.facts.stream_id = Some(derived_id("widevine", id));
        }
        story.facts.renewal = request.request_type == Some(RequestType::Renewal);
        story.facts.message = Some(Message { id: hex::encode(request.message_sha256), time: request.request_time });
        if request.request_type == Some(RequestType::Release) {
            // The player stops: its stream slot is free from now, and the upstream confirms the release.
            if let Some(stream) = &story.facts.stream_id {
                self.rules().release_stream(verified.tenant.id, verified.user_id.as_str(), stream).await?;
            }
            let message = getlicense(body, &upstream.provider, None, &[], None);
            let license = self.ask_upstream(story, upstream, &message).await?;
            story.set_rule("ok");
            return Ok(license);
        }
        story.set_rule("persistence");
        if request.offline && !verified.policy.allows_persistence() {
            return Err(ClavisError::new(
                ErrorCode::PersistenceNotAllowed,
                "the CDM asks for an offline license; the policy allows streaming licenses only",
            ));
        }
        // A renewal names no keys: the upstream renews the license it made, under the policy given again.
        let keys: Vec<LicenseKey> =
            if story.facts.renewal { Vec::new() } else { self.license_keys(story, verified, &request.kids).await? };
        story.set_kids(keys.iter().map(|k| k.kid).collect());
        let admission = self.admit(story, verified).await?;
        let renewal_url = format!("{}/license/widevine", self.keys().public_url().trim_end_matches('/'));
        let specs: Vec<_> = keys.iter().map(|k| (k.kid, k.key, k.track_type)).collect();
        let message = getlicense(
            body,
            &upstream.provider,
            Some(verified.content_id.as_str().as_bytes()),
            &specs,
            Some((&verified.policy, chrono::Utc::now(), renewal_url)),
        );
        let license = match self.ask_upstream(story, upstream, &message).await {
            Ok(license) => license,
            Err(e) => {
                self.abandon(story, verified, &admission).await;
                return Err(e);
            }
        };
        self.settle(story, verified, &admission).await?;
        Ok(license)
    }

    /// Sign `message` as the provider, post it within the budget, and take the license out of the answer.
    async fn ask_upstream(
        &self,
        story: &mut Story,
        upstream: &WidevineUpstream,
        message: &GetLicense,
    ) -> Result<Vec<u8>> {
        story.set_rule("upstream");
        let inner = serde_json::to_vec(message).map_err(|e| ClavisError::internal("getlicense message", e))?;
        let signature =
            clavis_keys::widevine_key_server::aes_signature(&upstream.signing_key, &upstream.signing_iv, &inner);
        let envelope = Envelope {
            request: STANDARD.encode(&inner),
            signature: STANDARD.encode(signature),
            signer: &upstream.provider,
        };
        let body = serde_json::to_vec(&envelope).map_err(|e| ClavisError::internal("getlicense envelope", e))?;
        let headers = [("content-type", "application/json".to_owned())];
        let answer =
            self.upstreams().send(&WIDEVINE_PEER, &upstream.url, &headers, &body, upstream.budget, retryable).await?;
        license_of(&answer)
    }
}

/// A Widevine license through the tenant's upstream license service. The body is the CDM's license request (the
/// EME `message`, raw bytes); the token comes as for every license endpoint (`X-Clavis-Token`, `?token=`, a
/// configured foreign format, or callback mode). The answer is the license bytes for `MediaKeySession.update()`.
/// The device is the CDM's client id when it is sent in clear, else `X-Clavis-Device`; the session the CDM's
/// request id.
#[utoipa::path(
    post, path = "/license/widevine", tag = "licenses",
    params(("token" = Option<String>, Query, description = "The license token, when not sent in X-Clavis-Token"), ("callback" = Option<String>, Query, description = "Callback mode: `<site_id>.<session>`, when not sent in X-Clavis-Callback")),
    request_body(content = String, content_type = "application/octet-stream", description = "The Widevine CDM's license request"),
    responses(
        (status = 200, description = "The Widevine license", content_type = "application/octet-stream"),
        (status = 400, description = "5001 request headers malformed, 5031 callback value malformed, 5080 challenge malformed", body = clavis_core::error::Problem),
        (status = 401, description = "4001-4007 token missing, malformed, bad signature, unknown key, expired, not yet valid, unknown issuer", body = clavis_core::error::Problem),
        (status = 403, description = "2003 tenant suspended, 4008 token for another content, 4009 token for another DRM, 4011 single-use token already used, 5002 KID not in content, 5003 origin not allowed, 5004 offline license not allowed, 5006 track not allowed, 5007 client not allowed, 5008 policy expired, 5030 callback refused, 5041 device limit, 5060 request replayed, 5061 request time outside the window, 5062 client state rolled back, 5063 stream limit", body = clavis_core::error::Problem),
        (status = 404, description = "4012 token format not configured, 5005 content has no keys, 5020 callback mode not enabled, 5070 no upstream configured", body = clavis_core::error::Problem),
        (status = 413, description = "1012 body too large", body = clavis_core::error::Problem),
        (status = 422, description = "4010 the token's policy cannot be applied", body = clavis_core::error::Problem),
        (status = 502, description = "5023-5029 callback backend failures, 5073 upstream address forbidden, 5074 upstream unreachable, 5076 upstream refused, 5077 upstream answer malformed", body = clavis_core::error::Problem),
        (status = 504, description = "5025 callback too slow, 5075 upstream too slow", body = clavis_core::error::Problem),
    )
)]
pub async fn license(req: HttpRequest, payload: web::Payload, service: web::Data<LicenseService>) -> HttpResponse {
    let body = clavis_core::http::read_body(payload, challenge::MAX_CHALLENGE_BYTES).await;
    answer(&req, body, &service).await
}

/// The Widevine answer for a body as read (or the error of reading it).
pub(crate) async fn answer(req: &HttpRequest, body: Result<web::Bytes>, service: &LicenseService) -> HttpResponse {
    let mut story = crate::api::story(req, Drm::Widevine);
    let token = token_from(req);
    let result = async {
        story.callback = callback_from(req)?;
        story.read_facts(req.headers())?;
        service.widevine(&mut story, token.as_ref().map(RawToken::credential), &body?).await
    }
    .await;
    service.finish(story, result, "application/octet-stream").await
}

#[cfg(test)]
mod tests {
    use clavis_core::ids::Kid;
    use clavis_core::policy::WidevineRules;

    use super::*;

    #[test]
    fn the_policy_becomes_key_specs_and_overrides() {
        let now = chrono::Utc::now();
        let policy = Policy {
            license_duration_seconds: Some(3600),
            rental_duration_seconds: Some(86400),
            persistent: Some(true),
            renewal_interval_seconds: Some(60),
            allowed_tracks: Some([TrackType::Sd, TrackType::Hd, TrackType::Audio].into()),
            widevine: Some(WidevineRules {
                min_security_level: Some(3),
                required_hdcp: Some(Hdcp::V2_2),
                disable_analog_output: Some(true),
            }),
            ..Policy::default()
        };
        let keys = [(Kid([1; 16]), [2; 16], TrackType::Hd), (Kid([3; 16]), [4; 16], TrackType::All)];
        let message = getlicense(
            b"challenge",
            "widevine_test",
            Some(b"movie-1"),
            &keys,
            Some((&policy, now, "https://drm.example/license/widevine".into())),
        );
        let json = serde_json::to_value(&message).unwrap();
        assert_eq!(json["payload"], STANDARD.encode(b"challenge"));
        assert_eq!(json["content_id"], STANDARD.encode(b"movie-1"));
        assert_eq!(json["allowed_track_types"], "SD_HD");
        assert_eq!(json["content_key_specs"][0]["track_type"], "HD");
        assert_eq!(json["content_key_specs"][0]["key_id"], STANDARD.encode([1u8; 16]));
        assert_eq!(json["content_key_specs"][0]["key"], STANDARD.encode([2u8; 16]));
        assert_eq!(json["content_key_specs"][0]["security_level"], 3);
        assert_eq!(json["content_key_specs"][0]["required_output_protection"]["hdcp"], "HDCP_V2_2");
        assert_eq!(json["content_key_specs"][0]["required_output_protection"]["disable_analog_output"], true);
        assert!(json["content_key_specs"][1].get("track_type").is_none());
        let overrides = &json["policy_overrides"];
        assert_eq!(overrides["can_persist"], true);
        assert_eq!(overrides["can_renew"], true);
        assert_eq!(overrides["license_duration_seconds"], 3600);
        assert_eq!(overrides["rental_duration_seconds"], 86400);
        assert_eq!(overrides["renewal_delay_seconds"], 60);
        assert_eq!(overrides["renewal_server_url"], "https://drm.example/license/widevine");

        let bare = serde_json::to_value(getlicense(b"x", "p", None, &[], None)).unwrap();
        assert_eq!(bare, serde_json::json!({"payload": STANDARD.encode(b"x"), "provider": "p"}));
    }

    #[test]
    fn upstream_answers_map_to_licenses_or_catalog_codes() {
        let answer = |status: u16, body: &str| ReceivedAnswer {
            status,
            headers: Vec::new(),
            body: body.to_owned(),
            raw_body: body.as_bytes().to_vec(),
        };
        let ok = answer(200, &format!(r#"{{"status":"OK","license":"{}"}}"#, STANDARD.encode(b"license")));
        assert_eq!(license_of(&ok).unwrap(), b"license");
        for (a, code) in [
            (answer(200, r#"{"status":"SIGNATURE_FAILED"}"#), ErrorCode::UpstreamRefused),
            (answer(403, "forbidden"), ErrorCode::UpstreamRefused),
            (answer(200, "<html>"), ErrorCode::UpstreamAnswerMalformed),
            (answer(200, r#"{"status":"OK"}"#), ErrorCode::UpstreamAnswerMalformed),
            (answer(200, r#"{"status":"OK","license":"%%%"}"#), ErrorCode::UpstreamAnswerMalformed),
        ] {
            assert_eq!(license_of(&a).unwrap_err().code, code, "{}", a.body);
        }
        assert!(retryable(&answer(200, r#"{"status":"INTERNAL_ERROR"}"#)));
        assert!(!retryable(&answer(200, r#"{"status":"OK"}"#)));
    }
}
