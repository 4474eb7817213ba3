//! Callback mode: instead of a token, the player sends an opaque session value and Clavis asks the tenant's own
//! backend whether (and under which policy) to issue the license.
//!
//! The player sends `X-Clavis-Callback: <site_id>.<session>` (or `?callback=<site_id>.<session>`). Clavis POSTs the
//! facts (session, content, DRM, KIDs, device, client address, a fresh nonce, a timestamp) to the tenant's URL,
//! signed with HMAC-SHA256 over `timestamp + "." + body`; the backend answers the decision, echoing the nonce and
//! signed the same way. The answer's policy narrows the tenant's and the content's, never widens them.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpResponse, delete, get, post, put, web};
use base64::Engine;
use chrono::{DateTime, Utc};
use clavis_core::http::ValidJson;
use clavis_core::ids::{Kid, SiteId};
use clavis_core::policy::Policy;
use clavis_core::{ClavisError, ErrorCode, Result};
use clavis_tenant::{Directory, SecretKind, SecretVault, Tenant, TenantAuth};
use serde::{Deserialize, Serialize};
use url::Url;
use zeroize::Zeroizing;

use crate::outbound::{Outbound, Peer, ReceivedAnswer, SentRequest};
use crate::service::LicenseService;

/// The tenant's backend, as the outbound client names it and answers its failures.
pub const PEER: Peer = Peer {
    name: "callback backend",
    settings_invalid: ErrorCode::CallbackSettingsInvalid,
    target_forbidden: ErrorCode::CallbackTargetForbidden,
    address_forbidden: ErrorCode::CallbackAddressForbidden,
    unreachable: ErrorCode::CallbackUnreachable,
    timeout: ErrorCode::CallbackTimeout,
    answer_malformed: ErrorCode::CallbackAnswerMalformed,
};

/// The header (lower case) a player sends the callback value in; the query parameter is `callback`.
pub const HEADER: &str = "x-clavis-callback";
pub const QUERY: &str = "callback";
pub const TIMESTAMP_HEADER: &str = "x-clavis-timestamp";
pub const SIGNATURE_HEADER: &str = "x-clavis-signature";
/// The token format name the log and the replay ledger use for callback decisions.
pub const FORMAT: &str = "callback";
pub const MAX_TIMEOUT_MS: u32 = 2000;
pub const MIN_TIMEOUT_MS: u32 = 100;
pub const DEFAULT_TIMEOUT_MS: u32 = 1500;
pub const MIN_SECRET_BYTES: usize = 32;
pub const MAX_SESSION_CHARS: usize = 1024;
/// How far the answer's timestamp may be from Clavis's clock.
pub const ANSWER_TOLERANCE_SECONDS: i64 = 300;
const VAULT_NAME: &str = "default";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CallbackMode {
    /// Settings kept (and testable), callback requests refused; tokens work as always.
    Token,
    /// License requests carrying a callback value are decided by the tenant's backend.
    Callback,
}

/// Body of `PUT /api/v1/integrations/callback`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackSettingsBody {
    pub mode: CallbackMode,
    /// The tenant backend's URL (https; http only where the operator allows private targets).
    #[schema(example = "https://backend.example.com/clavis/callback")]
    pub url: String,
    /// Base64 of at least 32 bytes, or `"generate"` for a fresh one (shown once, in this answer). Omitted: keep
    /// the current secret (a first PUT generates one).
    #[serde(default)]
    pub shared_secret: Option<String>,
    /// The whole exchange's budget, connection included: 100 to 2000 ms (default 1500).
    #[serde(default)]
    pub timeout_ms: Option<u32>,
}

#[derive(Clone, Serialize, Deserialize)]
struct StoredSettings {
    mode: CallbackMode,
    url: String,
    timeout_ms: u32,
}

/// The settings as shown: never the secret, only whether one is set.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CallbackSettingsView {
    pub mode: CallbackMode,
    pub url: String,
    pub timeout_ms: u32,
    pub shared_secret_set: bool,
    /// Only in the answer to the PUT that generated it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_shared_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// A tenant's callback settings, opened.
struct Settings {
    mode: CallbackMode,
    url: Url,
    timeout: Duration,
    secret: Zeroizing<Vec<u8>>,
}

/// What the player sent: the site id and the opaque session value, plus what the request says about the device.
#[derive(Clone, Debug)]
pub struct CallbackValue {
    pub site_id: SiteId,
    pub session: String,
    pub user_agent: Option<String>,
}

impl CallbackValue {
    /// `<site_id>.<session>`.
    pub fn parse(raw: &str, user_agent: Option<String>) -> Result<CallbackValue> {
        let malformed = |detail: &'static str| ClavisError::new(ErrorCode::CallbackValueMalformed, detail);
        let (site, session) = raw.split_once('.').ok_or_else(|| malformed("the value must be <site_id>.<session>"))?;
        let site_id = SiteId::parse(site).map_err(|_| malformed("the site id must be four upper-case letters"))?;
        if session.is_empty()
            || session.len() > MAX_SESSION_CHARS
            || !session.bytes().all(|b| (0x20..0x7f).contains(&b))
        {
            return Err(malformed("the session must be 1 to 1024 printable ASCII characters"));
        }
        Ok(CallbackValue { site_id, session: session.to_owned(), user_agent })
    }
}

/// The facts Clavis sends for one license request.
#[derive(Serialize)]
pub struct Facts<'a> {
    /// `license_request`, or `test` from the test endpoint.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub nonce: String,
    pub timestamp: i64,
    pub site_id: &'a str,
    pub session: &'a str,
    pub drm: &'a str,
    pub content_id: Option<&'a str>,
    pub kids: Vec<String>,
    pub device: Device<'a>,
    pub client_ip: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

#[derive(Serialize)]
pub struct Device<'a> {
    pub user_agent: Option<&'a str>,
}

/// The backend's decision.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    allow: bool,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    /// The user, for the license log (the session value itself is never logged).
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    policy: Option<Policy>,
}

/// A granted callback.
pub struct Grant {
    pub user_id: Option<String>,
    pub policy: Policy,
    pub nonce: String,
}

/// One exchange, as the test endpoint shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TestExchange {
    /// The request exactly as Clavis sent it (absent when the settings refused before sending).
    pub request: Option<SentRequest>,
    /// The backend's answer exactly as received (absent on timeout or a connection failure).
    pub response: Option<ReceivedAnswer>,
    /// True when the answer passed every check (status, signature, nonce, shape) and allowed.
    pub ok: bool,
    /// The catalog code of the failure.
    pub code: Option<u16>,
    pub title: Option<&'static str>,
    pub detail: Option<String>,
}

/// Hex HMAC-SHA256 over `timestamp + "." + body`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut context = ring::hmac::Context::with_key(&key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    hex::encode(context.sign().as_ref())
}

fn verify_signature(secret: &[u8], answer: &ReceivedAnswer) -> Result<()> {
    let bad = |detail: &'static str| ClavisError::new(ErrorCode::CallbackSignatureInvalid, detail);
    let timestamp: i64 = answer
        .header(TIMESTAMP_HEADER)
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| bad("the answer has no X-Clavis-Timestamp (Unix seconds)"))?;
    let signature = answer
        .header(SIGNATURE_HEADER)
        .and_then(|s| hex::decode(s.trim()).ok())
        .ok_or_else(|| bad("the answer has no hex X-Clavis-Signature"))?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut message = timestamp.to_string().into_bytes();
    message.push(b'.');
    message.extend_from_slice(&answer.raw_body);
    ring::hmac::verify(&key, &message, &signature)
        .map_err(|_| bad("X-Clavis-Signature does not match HMAC-SHA256(secret, timestamp + \".\" + body)"))?;
    if (Utc::now().timestamp() - timestamp).abs() > ANSWER_TOLERANCE_SECONDS {
        return Err(bad("the answer's X-Clavis-Timestamp is more than 300 s from Clavis's clock"));
    }
    Ok(())
}

/// The checks on an answer, in order: status, signature, shape, nonce, decision.
fn decide(secret: &[u8], nonce: &str, answer: &ReceivedAnswer) -> Result<Grant> {
    if !(200..300).contains(&answer.status) {
        return Err(ClavisError::new(
            ErrorCode::CallbackStatusRefused,
            format!("the callback backend answered HTTP {} (redirects are not followed)", answer.status),
        ));
    }
    verify_signature(secret, answer)?;
    let parsed: Answer = serde_json::from_slice(&answer.raw_body).map_err(|e| {
        ClavisError::new(ErrorCode::CallbackAnswerMalformed, format!("the answer is not the expected JSON: {e}"))
    })?;
    match parsed.nonce.as_deref() {
        // The nonce is no secret (the backend saw it); it only binds this answer to this request.
        Some(echoed) if echoed == nonce => {}
        Some(_) => {
            return Err(ClavisError::new(ErrorCode::CallbackNonceMismatch, "the answer echoes another nonce"));
        }
        None => return Err(ClavisError::new(ErrorCode::CallbackNonceMismatch, "the answer has no nonce")),
    }
    if !parsed.allow {
        let reason = parsed.reason.unwrap_or_else(|| "no reason given".to_owned());
        let reason: String = reason.chars().filter(|c| !c.is_control()).take(200).collect();
        return Err(ClavisError::new(ErrorCode::CallbackDenied, format!("the tenant's backend refused: {reason}")));
    }
    let policy = parsed.policy.unwrap_or_default();
    policy.validate().map_err(|e| {
        ClavisError::new(ErrorCode::CallbackAnswerMalformed, format!("the answer's policy is invalid: {}", e.detail))
    })?;
    Ok(Grant { user_id: parsed.user_id, policy, nonce: nonce.to_owned() })
}

fn not_enabled() -> ClavisError {
    ClavisError::new(ErrorCode::CallbackNotEnabled, "this tenant has no callback settings")
}

/// The rule a callback refusal is logged under.
pub fn rule_of(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::CallbackDenied => "callback.deny",
        ErrorCode::CallbackNonceMismatch => "callback.nonce",
        ErrorCode::CallbackSignatureInvalid => "callback.signature",
        ErrorCode::CallbackAnswerMalformed => "callback.answer",
        ErrorCode::CallbackStatusRefused => "callback.status",
        ErrorCode::CallbackTimeout => "callback.timeout",
        ErrorCode::CallbackAddressForbidden | ErrorCode::CallbackUnreachable => "callback.network",
        _ => "callback",
    }
}

/// Callback settings per tenant and the exchanges with tenant backends.
pub struct Callbacks {
    vault: Arc<SecretVault>,
    directory: Arc<Directory>,
    outbound: Arc<Outbound>,
}

impl Callbacks {
    pub fn new(vault: Arc<SecretVault>, directory: Arc<Directory>, outbound: Arc<Outbound>) -> Callbacks {
        Callbacks { vault, directory, outbound }
    }

    pub(crate) fn directory(&self) -> &Directory {
        &self.directory
    }

    async fn settings(&self, tenant: &Tenant) -> Result<Option<Settings>> {
        let Some(secret) = self.vault.get(tenant.id, SecretKind::Callback, VAULT_NAME).await? else {
            return Ok(None);
        };
        let stored: StoredSettings = secret.meta_as()?;
        let url = Url::parse(&stored.url).map_err(|e| ClavisError::internal("stored callback url", e))?;
        Ok(Some(Settings {
            mode: stored.mode,
            url,
            timeout: Duration::from_millis(u64::from(stored.timeout_ms)),
            secret: Zeroizing::new(secret.value.to_vec()),
        }))
    }

    pub async fn put(&self, tenant: &Tenant, body: CallbackSettingsBody) -> Result<CallbackSettingsView> {
        let url = self.outbound.check_url(&PEER, "url", body.url.trim())?;
        let timeout_ms = body.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if !(MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
            return Err(ClavisError::field(
                ErrorCode::CallbackSettingsInvalid,
                "timeout_ms",
                "must be 100 to 2000 (the whole license request must stay fast)",
            ));
        }
        let current = self.vault.get(tenant.id, SecretKind::Callback, VAULT_NAME).await?;
        let mut generated = None;
        let secret: Zeroizing<Vec<u8>> = match (body.shared_secret.as_deref(), &current) {
            (Some("generate"), _) | (None, None) => {
                let fresh = Zeroizing::new(clavis_core::crypto::random_array::<32>()?.to_vec());
                generated = Some(base64::engine::general_purpose::STANDARD.encode(&*fresh));
                fresh
            }
            (None, Some(current)) => Zeroizing::new(current.value.to_vec()),
            (Some(given), _) => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(given.trim())
                    .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(given.trim()))
                    .map_err(|_| {
                        ClavisError::field(
                            ErrorCode::CallbackSettingsInvalid,
                            "shared_secret",
                            "must be base64 (or \"generate\")",
                        )
                    })?;
                if decoded.len() < MIN_SECRET_BYTES {
                    return Err(ClavisError::field(
                        ErrorCode::CallbackSettingsInvalid,
                        "shared_secret",
                        "must be at least 32 bytes",
                    ));
                }
                Zeroizing::new(decoded)
            }
        };
        let stored = StoredSettings { mode: body.mode, url: url.to_string(), timeout_ms };
        let meta = serde_json::to_value(&stored).map_err(|e| ClavisError::internal("callback meta", e))?;
        self.vault.put(tenant.id, SecretKind::Callback, VAULT_NAME, meta, &secret).await?;
        Ok(CallbackSettingsView {
            mode: stored.mode,
            url: stored.url,
            timeout_ms,
            shared_secret_set: true,
            generated_shared_secret: generated,
            updated_at: Some(Utc::now()),
        })
    }

    pub async fn view(&self, tenant: &Tenant) -> Result<CallbackSettingsView> {
        let secret = self.vault.get(tenant.id, SecretKind::Callback, VAULT_NAME).await?.ok_or_else(not_enabled)?;
        let stored: StoredSettings = secret.meta_as()?;
        Ok(CallbackSettingsView {
            mode: stored.mode,
            url: stored.url,
            timeout_ms: stored.timeout_ms,
            shared_secret_set: !secret.value.is_empty(),
            generated_shared_secret: None,
            updated_at: Some(secret.updated_at),
        })
    }

    /// One signed exchange; `sent` and `received` record it whatever the outcome.
    async fn exchange(
        &self,
        settings: &Settings,
        facts: &Facts<'_>,
        sent: &mut Option<SentRequest>,
        received: &mut Option<ReceivedAnswer>,
    ) -> Result<Grant> {
        let body = serde_json::to_vec(facts).map_err(|e| ClavisError::internal("callback facts", e))?;
        let signature = sign(&settings.secret, facts.timestamp, &body);
        let headers = [
            ("content-type", "application/json".to_owned()),
            (TIMESTAMP_HEADER, facts.timestamp.to_string()),
            (SIGNATURE_HEADER, signature),
        ];
        let answer = self.outbound.post(&PEER, &settings.url, &headers, body, settings.timeout, sent).await?;
        let decision = decide(&settings.secret, &facts.nonce, &answer);
        *received = Some(answer);
        decision
    }

    /// Ask the tenant's backend about one license request (`facts` without nonce and timestamp, filled here).
    pub(crate) async fn ask(&self, tenant: &Tenant, facts: Facts<'_>) -> Result<Grant> {
        let settings = self.settings(tenant).await?.ok_or_else(not_enabled)?;
        if settings.mode != CallbackMode::Callback {
            return Err(ClavisError::new(
                ErrorCode::CallbackNotEnabled,
                "the tenant's callback settings are in mode `token`",
            ));
        }
        let (mut sent, mut received) = (None, None);
        self.exchange(&settings, &facts, &mut sent, &mut received).await
    }

    pub async fn test(&self, tenant: &Tenant) -> Result<TestExchange> {
        let settings = self.settings(tenant).await?.ok_or_else(not_enabled)?;
        let facts = Facts {
            kind: "test",
            nonce: new_nonce()?,
            timestamp: Utc::now().timestamp(),
            site_id: tenant.site_id.as_str(),
            session: "test",
            drm: "clearkey",
            content_id: None,
            kids: Vec::new(),
            device: Device { user_agent: None },
            client_ip: None,
            origin: None,
            request_id: None,
        };
        let (mut sent, mut received) = (None, None);
        let outcome = self.exchange(&settings, &facts, &mut sent, &mut received).await;
        let error = outcome.err();
        Ok(TestExchange {
            request: sent,
            response: received,
            ok: error.is_none(),
            code: error.as_ref().map(|e| e.code.code()),
            title: error.as_ref().map(|e| e.code.title()),
            detail: error.map(|e| e.detail.into_owned()),
        })
    }
}

/// 16 random bytes, hex.
pub fn new_nonce() -> Result<String> {
    Ok(hex::encode(clavis_core::crypto::random_array::<16>()?))
}

/// The KIDs as the facts list them.
pub fn kid_list(kids: &[Kid]) -> Vec<String> {
    kids.iter().map(Kid::to_hex).collect()
}

/// Set the tenant's callback settings. The shared secret is sealed in the tenant vault and never shown again
/// (except a generated one, once, in this answer).
#[utoipa::path(
    put, path = "/api/v1/integrations/callback", tag = "licenses",
    security(("api_key" = [])),
    request_body = CallbackSettingsBody,
    responses(
        (status = 200, body = CallbackSettingsView),
        (status = 400, description = "1010 malformed JSON", body = clavis_core::error::Problem),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 422, description = "1011 invalid field, 5021 callback settings invalid, 5022 the URL is a forbidden address", body = clavis_core::error::Problem),
    )
)]
#[put("/api/v1/integrations/callback")]
pub async fn put_callback(
    auth: TenantAuth,
    service: web::Data<LicenseService>,
    body: ValidJson<CallbackSettingsBody>,
) -> Result<HttpResponse> {
    let view = service.callbacks().put(&auth.tenant, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The tenant's callback settings (whether a shared secret is set, never the secret).
#[utoipa::path(
    get, path = "/api/v1/integrations/callback", tag = "licenses",
    security(("api_key" = [])),
    responses(
        (status = 200, body = CallbackSettingsView),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 404, description = "5020 not configured", body = clavis_core::error::Problem),
    )
)]
#[get("/api/v1/integrations/callback")]
pub async fn get_callback(auth: TenantAuth, service: web::Data<LicenseService>) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(service.callbacks().view(&auth.tenant).await?))
}

/// Remove the callback settings and forget the shared secret; callback requests are refused from then on.
#[utoipa::path(
    delete, path = "/api/v1/integrations/callback", tag = "licenses",
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 404, description = "5020 not configured", body = clavis_core::error::Problem),
    )
)]
#[delete("/api/v1/integrations/callback")]
pub async fn delete_callback(auth: TenantAuth, vault: web::Data<SecretVault>) -> Result<HttpResponse> {
    if !vault.delete(auth.tenant.id, SecretKind::Callback, VAULT_NAME).await? {
        return Err(not_enabled());
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Send a test callback (`"type": "test"`, in either mode) and show the exchange: the exact request Clavis sent and
/// the exact answer, or the catalog code of what failed (5022-5030). The answer is 200 whenever the test ran.
#[utoipa::path(
    post, path = "/api/v1/integrations/callback/test", tag = "licenses",
    security(("api_key" = [])),
    responses(
        (status = 200, body = TestExchange),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 404, description = "5020 not configured", body = clavis_core::error::Problem),
    )
)]
#[post("/api/v1/integrations/callback/test")]
pub async fn test_callback(auth: TenantAuth, service: web::Data<LicenseService>) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(service.callbacks().test(&auth.tenant).await?))
}
