//! One license request, one corridor: token, tenant, rules, keys, encode, log.
//!
//! Each DRM's handler parses its own challenge; everything else (finding and verifying the token, the tenant's
//! state and origin rules, resolving keys, the log row, CORS and the error answer) is shared here.

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use actix_web::HttpResponse;
use actix_web::http::header::{self, HeaderValue};
use clavis_core::ids::{Drm, Kid};
use clavis_core::telemetry::Handles;
use clavis_core::{ClavisError, ErrorCode, Result};
use clavis_keys::KeyStore;
use clavis_tenant::Tenant;
use clavis_tokens::{Credential, ErrorStyle, TokenService, VerifiedToken};

use crate::clearkey::{self, ClearKeyRequest, SessionType};
use crate::cors;
use crate::log::{LicenseLog, LogEntry, Outcome};
use crate::rules::{Admission, RequestFacts, Rules, Subject};

pub struct LicenseService {
    tokens: Arc<TokenService>,
    keys: Arc<KeyStore>,
    log: LicenseLog,
    fairplay_providers: crate::fairplay::Providers,
    callbacks: Arc<crate::callback::Callbacks>,
    rules: Arc<Rules>,
    upstreams: crate::upstream::Upstreams,
}

/// Every code the shared corridor can answer on any license endpoint, whatever the DRM: the token, the tenant, the
/// policy, the keys, callback mode, the request headers and the rules that remember. The OpenAPI document lists them
/// on each license endpoint (beside each DRM's own codes), so it cannot fall behind the corridor.
pub const CORRIDOR_CODES: &[ErrorCode] = &[
    ErrorCode::PayloadTooLarge,
    ErrorCode::TenantNotFound,
    ErrorCode::TenantSuspended,
    ErrorCode::TokenMissing,
    ErrorCode::TokenMalformed,
    ErrorCode::TokenSignatureInvalid,
    ErrorCode::TokenKeyUnknown,
    ErrorCode::TokenExpired,
    ErrorCode::TokenNotYetValid,
    ErrorCode::TokenIssuerUnknown,
    ErrorCode::TokenContentMismatch,
    ErrorCode::TokenDrmMismatch,
    ErrorCode::PolicyInvalid,
    ErrorCode::TokenReplayed,
    ErrorCode::TokenFormatNotEnabled,
    ErrorCode::LicenseRequestMalformed,
    ErrorCode::KidNotInContent,
    ErrorCode::OriginNotAllowed,
    ErrorCode::ContentHasNoKeys,
    ErrorCode::TrackNotAllowed,
    ErrorCode::ClientNotAllowed,
    ErrorCode::PolicyExpired,
    ErrorCode::CallbackNotEnabled,
    ErrorCode::CallbackAddressForbidden,
    ErrorCode::CallbackUnreachable,
    ErrorCode::CallbackTimeout,
    ErrorCode::CallbackStatusRefused,
    ErrorCode::CallbackAnswerMalformed,
    ErrorCode::CallbackSignatureInvalid,
    ErrorCode::CallbackNonceMismatch,
    ErrorCode::CallbackDenied,
    ErrorCode::CallbackValueMalformed,
    ErrorCode::DeviceLimitReached,
    ErrorCode::LicenseRequestReplayed,
    ErrorCode::LicenseRequestTimeOutOfWindow,
    ErrorCode::ClientStateRolledBack,
    ErrorCode::StreamLimitReached,
];

/// The license endpoints that run the corridor (the OpenAPI paths).
pub const CORRIDOR_PATHS: &[&str] = &[
    "/license/clearkey",
    "/license/fairplay",
    "/license/widevine",
    "/license/playready",
    "/license/hls-aes/{site_id}/{content_id}/{kid}",
    "/ri/licenseManager.do",
];

/// Headers of license answers (lower case): the server configuration version, the configuration itself for a
/// client that holds an older one, and the stream slot id a license holds.
pub const SERVER_CONFIG_VERSION_HEADER: &str = "x-clavis-server-config-version";
pub const SERVER_CONFIG_HEADER: &str = "x-clavis-server-config";

/// `clavis_licenses_total{drm, outcome, code}` (code 0 for issued licenses).
fn license_counter(drm: Drm, code: Option<ErrorCode>) -> metrics::Counter {
    static HANDLES: LazyLock<Handles<(Drm, Option<ErrorCode>), metrics::Counter>> = LazyLock::new(Handles::new);
    HANDLES.get_or((drm, code), |(drm, code)| {
        let outcome = if code.is_some() { Outcome::Denied } else { Outcome::Issued };
        metrics::counter!(
            "clavis_licenses_total",
            "drm" => drm.as_str(),
            "outcome" => outcome.as_str(),
            "code" => code.map_or("0", |c| c.code_str())
        )
    })
}

/// `clavis_license_duration_seconds{drm, outcome}`.
fn license_histogram(drm: Drm, outcome: Outcome) -> metrics::Histogram {
    static HANDLES: LazyLock<Handles<(Drm, Outcome), metrics::Histogram>> = LazyLock::new(Handles::new);
    HANDLES.get_or((drm, outcome), |(drm, outcome)| {
        metrics::histogram!("clavis_license_duration_seconds", "drm" => drm.as_str(), "outcome" => outcome.as_str())
    })
}

/// What the log records about one request, filled in as the corridor proceeds.
pub struct Story {
    pub drm: Drm,
    started: Instant,
    pub(crate) tenant: Option<Arc<Tenant>>,
    user_id: Option<String>,
    pub(crate) content_id: Option<String>,
    kids: Vec<Kid>,
    /// The rule being applied; when a step fails, the rule that refused.
    rule: &'static str,
    pub origin: Option<String>,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
    /// How a refusal is answered (the tenant may ask for PallyCon's style for PallyCon tokens).
    error_style: ErrorStyle,
    /// A callback-mode request's value: when present, the tenant's backend decides instead of a token.
    pub(crate) callback: Option<crate::callback::CallbackValue>,
    /// What the request says about its device, stream and message, for the rules.
    pub(crate) facts: RequestFacts,
    /// The stream slot the license holds (answered in `X-Clavis-Session`).
    stream_id: Option<String>,
    /// A mark for the log on requests worth a look (`rollback`).
    flag: Option<&'static str>,
    /// Refusals are answered as SOAP faults (PlayReady clients read nothing else).
    soap_faults: bool,
    /// An upstream's own refusal, relayed as the answer's body instead of Clavis's rendering of the error.
    relayed_error: Option<Vec<u8>>,
    /// The request's root span, which gets the tenant id once the token named it (JSON logs carry it).
    root_span: Option<tracing_actix_web::RootSpan>,
}

/// Every license answer of a tenant says which server configuration version is current; a client that said it
/// holds an older one (`X-Clavis-Config-Version`) also gets the configuration, as base64url JSON.
fn server_config_headers(response: &mut HttpResponse, config: &clavis_tenant::ServerConfig, held: Option<u32>) {
    use base64::Engine;
    let headers = response.headers_mut();
    headers.insert(header::HeaderName::from_static(SERVER_CONFIG_VERSION_HEADER), HeaderValue::from(config.version));
    if held.is_some_and(|held| held < config.version)
        && let Ok(json) = serde_json::to_vec(config)
        && let Ok(value) = HeaderValue::from_str(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
    {
        headers.insert(header::HeaderName::from_static(SERVER_CONFIG_HEADER), value);
    }
}

impl Story {
    /// The rule being applied, or the one that refused.
    pub(crate) fn rule(&self) -> &'static str {
        self.rule
    }

    pub(crate) fn tenant(&self) -> Option<&Arc<Tenant>> {
        self.tenant.as_ref()
    }

    pub(crate) fn set_rule(&mut self, rule: &'static str) {
        self.rule = rule;
    }

    pub(crate) fn set_kids(&mut self, kids: Vec<Kid>) {
        self.kids = kids;
    }

    pub fn new(drm: Drm, origin: Option<String>, client_ip: Option<String>, request_id: Option<String>) -> Story {
        Story {
            drm,
            started: Instant::now(),
            tenant: None,
            user_id: None,
            content_id: None,
            kids: Vec::new(),
            rule: "token",
            origin,
            client_ip,
            request_id,
            error_style: ErrorStyle::Clavis,
            callback: None,
            facts: RequestFacts::default(),
            stream_id: None,
            flag: None,
            soap_faults: false,
            relayed_error: None,
            root_span: None,
        }
    }

    pub(crate) fn with_root_span(mut self, span: Option<tracing_actix_web::RootSpan>) -> Story {
        self.root_span = span;
        self
    }

    pub(crate) fn answer_soap_faults(&mut self) {
        self.soap_faults = true;
    }

    pub(crate) fn relay_error_body(&mut self, body: Vec<u8>) {
        self.relayed_error = Some(body);
    }

    /// Read the rules' facts from the request's `X-Clavis-*` headers (a DRM handler then adds its own).
    pub(crate) fn read_facts(&mut self, headers: &actix_web::http::header::HeaderMap) -> Result<()> {
        self.rule = "request";
        self.facts = RequestFacts::from_headers(headers)?;
        Ok(())
    }
}

/// One key a license delivers.
pub(crate) struct LicenseKey {
    pub kid: Kid,
    pub key: [u8; 16],
    pub track_type: clavis_core::ids::TrackType,
}

/// Keys from the token itself: every requested KID must be one of them, and of an allowed track.
fn external_keys(story: &mut Story, token: &VerifiedToken, kids: &[Kid]) -> Result<Vec<LicenseKey>> {
    story.rule = "kids";
    if kids.is_empty() {
        return Ok(token
            .external_keys
            .iter()
            .filter(|k| token.policy.allows_track(k.track_type))
            .map(|k| LicenseKey { kid: k.kid, key: *k.key, track_type: k.track_type })
            .collect());
    }
    kids.iter()
        .map(|kid| {
            let key = token.external_keys.iter().find(|k| &k.kid == kid).ok_or_else(|| {
                ClavisError::new(ErrorCode::KidNotInContent, format!("KID {kid} is not among the token's keys"))
            })?;
            if !token.policy.allows_track(key.track_type) {
                story.rule = "policy.allowed_tracks";
                return Err(ClavisError::new(
                    ErrorCode::TrackNotAllowed,
                    format!("KID {kid} is a {} key; the policy allows {}", key.track_type, allowed_list(&token.policy)),
                ));
            }
            Ok(LicenseKey { kid: *kid, key: *key.key, track_type: key.track_type })
        })
        .collect()
}

fn allowed_list(policy: &clavis_core::policy::Policy) -> String {
    policy.allowed_tracks.as_ref().map_or_else(
        || "every track".to_owned(),
        |tracks| tracks.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "),
    )
}

impl LicenseService {
    /// The license service. `allow_private` lets callbacks and upstream license servers be reached on loopback,
    /// private and link-local addresses (the operator's `CLAVIS_CALLBACK_ALLOW_PRIVATE_NETWORKS`).
    pub fn new(
        tokens: Arc<TokenService>,
        keys: Arc<KeyStore>,
        log: LicenseLog,
        vault: Arc<clavis_tenant::SecretVault>,
        directory: Arc<clavis_tenant::Directory>,
        db: sea_orm::DatabaseConnection,
        allow_private: bool,
    ) -> Result<LicenseService> {
        let outbound = Arc::new(crate::outbound::Outbound::new(allow_private)?);
        let callbacks = Arc::new(crate::callback::Callbacks::new(vault.clone(), directory, outbound.clone()));
        let rules = Arc::new(Rules::new(db, tokens.replay().clone()));
        let upstreams = crate::upstream::Upstreams::new(vault, outbound);
        Ok(LicenseService {
            tokens,
            keys,
            log,
            fairplay_providers: crate::fairplay::Providers::default(),
            callbacks,
            rules,
            upstreams,
        })
    }

    pub fn callbacks(&self) -> &crate::callback::Callbacks {
        &self.callbacks
    }

    pub fn rules(&self) -> &Arc<Rules> {
        &self.rules
    }

    pub fn upstreams(&self) -> &crate::upstream::Upstreams {
        &self.upstreams
    }

    /// The rules that remember (replay, rollback, devices, streams) for a verified request, logged under the rule
    /// that refused. Call [`LicenseService::settle`] once the license is made.
    pub(crate) async fn admit(&self, story: &mut Story, verified: &VerifiedToken) -> Result<Admission> {
        story.rule = "rules";
        let subject = Subject {
            tenant_id: verified.tenant.id,
            user_id: verified.user_id.as_str(),
            content_id: verified.content_id.as_str(),
            drm: story.drm,
            policy: &verified.policy,
            config: &verified.tenant.settings.server_config,
        };
        match self.rules.admit(&subject, &story.facts, chrono::Utc::now().timestamp_millis()).await {
            Ok(admission) => {
                story.stream_id.clone_from(&admission.stream_id);
                Ok(admission)
            }
            Err(refusal) => {
                story.rule = refusal.rule;
                story.flag = refusal.flag;
                Err(refusal.error)
            }
        }
    }

    /// The last step of an issued license: use up a single-use token. When that refuses, a stream slot the request
    /// took is given back (the license was not issued).
    pub(crate) async fn settle(
        &self,
        story: &mut Story,
        verified: &VerifiedToken,
        admission: &Admission,
    ) -> Result<()> {
        story.rule = "replay";
        if let Err(e) = self.tokens.consume(verified).await {
            self.abandon(story, verified, admission).await;
            return Err(e);
        }
        story.rule = "ok";
        Ok(())
    }

    /// Give back a new stream slot of a request that failed after admission.
    pub(crate) async fn abandon(&self, story: &mut Story, verified: &VerifiedToken, admission: &Admission) {
        if admission.new_stream
            && let Some(stream_id) = &admission.stream_id
        {
            if let Err(e) = self.rules.release_stream(verified.tenant.id, verified.user_id.as_str(), stream_id).await {
                tracing::warn!(error = %e.detail, "could not release a stream slot");
            }
            story.stream_id = None;
        }
    }

    pub(crate) fn keys(&self) -> &KeyStore {
        &self.keys
    }

    pub(crate) fn fairplay_providers(&self) -> &crate::fairplay::Providers {
        &self.fairplay_providers
    }

    pub fn log(&self) -> &LicenseLog {
        &self.log
    }

    pub(crate) fn tokens(&self) -> &TokenService {
        &self.tokens
    }

    /// Find and verify the token, then apply the tenant-level rules (active, origin, DRM).
    pub(crate) async fn authorize(&self, story: &mut Story, token: Option<Credential<'_>>) -> Result<VerifiedToken> {
        if let Some(value) = story.callback.take() {
            return self.authorize_callback(story, value).await;
        }
        story.rule = "token";
        let credential = token.ok_or_else(|| {
            ClavisError::new(
                ErrorCode::TokenMissing,
                "send the token in X-Clavis-Token or the `token` query parameter (or a configured format's header: \
                 pallycon-customdata-v2, x-dt-auth-token, X-AxDRM-Message)",
            )
        })?;
        let presented = self.tokens.parse(credential)?;
        let tenant = self.tokens.issuer(&presented).await?;
        story.tenant = Some(tenant.clone());
        story.error_style = self.tokens.error_style(&tenant, &presented).await;
        story.rule = "tenant";
        tenant.ensure_active()?;
        story.rule = "origin";
        if !tenant.settings.origin_allowed(story.origin.as_deref()) {
            return Err(ClavisError::new(
                ErrorCode::OriginNotAllowed,
                format!(
                    "origin {:?} is not in the tenant's allowed origins",
                    story.origin.as_deref().unwrap_or_default()
                ),
            ));
        }
        story.rule = "token";
        let mut verified = self.tokens.verify(tenant, presented).await?;
        story.user_id = Some(verified.user_id.as_str().to_owned());
        story.content_id = Some(verified.content_id.as_str().to_owned());
        story.rule = "drm";
        verified.ensure_drm(story.drm)?;
        // The content's own policy sits between the tenant default (already applied) and the token's.
        story.rule = "content";
        // (Axinom messages name no content: their keys come with them, under a synthetic content id.)
        if verified.format != clavis_tokens::axinom_integration::FORMAT
            && let Some(set) = self.keys.get(verified.tenant.id, &verified.content_id).await?
            && let Some(content_policy) = &set.policy
        {
            verified.policy = verified.policy.narrowed_by(content_policy);
        }
        self.apply_policy(story, &verified)?;
        Ok(verified)
    }

    /// Callback mode: the tenant named by the value, its rules, then its backend's decision on the facts.
    async fn authorize_callback(
        &self,
        story: &mut Story,
        value: crate::callback::CallbackValue,
    ) -> Result<VerifiedToken> {
        use crate::callback::{self, Device, Facts};
        story.rule = "tenant";
        let tenant = self.callbacks.directory().by_site_id(value.site_id).await?.ok_or_else(|| {
            ClavisError::new(ErrorCode::TenantNotFound, format!("no tenant has site id {}", value.site_id))
        })?;
        story.tenant = Some(tenant.clone());
        tenant.ensure_active()?;
        story.rule = "origin";
        if !tenant.settings.origin_allowed(story.origin.as_deref()) {
            return Err(ClavisError::new(
                ErrorCode::OriginNotAllowed,
                format!(
                    "origin {:?} is not in the tenant's allowed origins",
                    story.origin.as_deref().unwrap_or_default()
                ),
            ));
        }
        // The content is the one the request names (a FairPlay SPC's asset id), else the one the requested keys
        // belong to.
        story.rule = "content";
        let content_id = match story.content_id.as_deref() {
            Some(named) => clavis_core::ids::ContentId::parse(named)?,
            None => {
                let first = story.kids.first().copied().ok_or_else(|| {
                    ClavisError::new(ErrorCode::LicenseRequestMalformed, "the license request names no key id")
                })?;
                self.keys.content_of_kid(tenant.id, &first).await?.ok_or_else(|| {
                    ClavisError::new(ErrorCode::KidNotInContent, format!("KID {first} is not a key of any content"))
                })?
            }
        };
        story.content_id = Some(content_id.as_str().to_owned());
        story.rule = "callback";
        let facts = Facts {
            kind: "license_request",
            nonce: callback::new_nonce()?,
            timestamp: chrono::Utc::now().timestamp(),
            site_id: tenant.site_id.as_str(),
            session: &value.session,
            drm: story.drm.as_str(),
            content_id: Some(content_id.as_str()),
            kids: callback::kid_list(&story.kids),
            device: Device { user_agent: value.user_agent.as_deref() },
            client_ip: story.client_ip.as_deref(),
            origin: story.origin.as_deref(),
            request_id: story.request_id.as_deref(),
        };
        let grant = self.callbacks.ask(&tenant, facts).await.inspect_err(|e| story.rule = callback::rule_of(e.code))?;
        story.rule = "callback.user_id";
        let user_id = clavis_core::ids::UserId::parse(grant.user_id.as_deref().unwrap_or("callback")).map_err(|e| {
            ClavisError::new(ErrorCode::CallbackAnswerMalformed, format!("the answer's user_id: {}", e.detail))
        })?;
        story.user_id = Some(user_id.as_str().to_owned());
        let mut policy = tenant.settings.default_policy.narrowed_by(&grant.policy);
        story.rule = "content";
        if let Some(set) = self.keys.get(tenant.id, &content_id).await?
            && let Some(content_policy) = &set.policy
        {
            policy = policy.narrowed_by(content_policy);
        }
        let verified = VerifiedToken {
            tenant,
            user_id,
            content_id,
            drm: None,
            policy,
            // The nonce is unique per decision: a single-use policy is claimed under it.
            jti: Some(grant.nonce),
            expires_at: chrono::Utc::now().timestamp().saturating_add(60),
            format: callback::FORMAT,
            external_keys: Vec::new(),
        };
        self.apply_policy(story, &verified)?;
        Ok(verified)
    }

    /// The effective policy's request-level rules: its absolute expiry, client networks and origins.
    fn apply_policy(&self, story: &mut Story, verified: &VerifiedToken) -> Result<()> {
        let policy = &verified.policy;
        story.rule = "policy.expires_at";
        if policy.license_seconds_at(chrono::Utc::now()) == Some(0) {
            return Err(ClavisError::new(ErrorCode::PolicyExpired, "the policy's expires_at has passed"));
        }
        story.rule = "policy.allowed_client_networks";
        let ip = story.client_ip.as_deref().and_then(|ip| ip.parse().ok());
        if !policy.allows_client(ip) {
            return Err(ClavisError::new(
                ErrorCode::ClientNotAllowed,
                format!(
                    "client address {:?} is not in the policy's networks",
                    story.client_ip.as_deref().unwrap_or("?")
                ),
            ));
        }
        story.rule = "policy.allowed_origins";
        if !policy.allows_origin(story.origin.as_deref()) {
            return Err(ClavisError::new(
                ErrorCode::OriginNotAllowed,
                format!(
                    "origin {:?} is not in the policy's allowed origins",
                    story.origin.as_deref().unwrap_or_default()
                ),
            ));
        }
        Ok(())
    }

    /// The keys for exactly the requested KIDs, all of which must belong to the token's content.
    pub(crate) async fn resolve_keys(
        &self,
        story: &mut Story,
        token: &VerifiedToken,
        kids: &[Kid],
    ) -> Result<Vec<(Kid, [u8; 16])>> {
        Ok(self.license_keys(story, token, kids).await?.into_iter().map(|k| (k.kid, k.key)).collect())
    }

    /// The keys for exactly the requested KIDs with their track types; with no KIDs named, every key of the
    /// content the policy allows (a Widevine request may name only the content).
    pub(crate) async fn license_keys(
        &self,
        story: &mut Story,
        token: &VerifiedToken,
        kids: &[Kid],
    ) -> Result<Vec<LicenseKey>> {
        if !token.external_keys.is_empty() {
            return external_keys(story, token, kids);
        }
        story.rule = "content";
        let tenant_id = token.tenant.id;
        let mut set = self.keys.get(tenant_id, &token.content_id).await?.ok_or_else(|| {
            ClavisError::new(
                ErrorCode::ContentHasNoKeys,
                format!("content {:?} has no keys", token.content_id.as_str()),
            )
        })?;
        // Keys can join a content after another instance cached it (key-server slots, rotation periods): a KID the
        // cached set lacks gets one fresh read before the refusal path.
        if kids.iter().any(|kid| set.find(kid).is_none())
            && let Some(fresh) = self.keys.refresh(tenant_id, &token.content_id).await?
        {
            set = fresh;
        }
        story.rule = "kids";
        if kids.is_empty() {
            let allowed: Vec<LicenseKey> = set
                .keys
                .iter()
                .filter(|k| token.policy.allows_track(k.track_type))
                .map(|k| LicenseKey { kid: k.kid, key: *k.key, track_type: k.track_type })
                .collect();
            if allowed.is_empty() {
                story.rule = "policy.allowed_tracks";
                return Err(ClavisError::new(
                    ErrorCode::TrackNotAllowed,
                    format!("the policy allows {}, none of the content's key tracks", allowed_list(&token.policy)),
                ));
            }
            return Ok(allowed);
        }
        let mut found = Vec::with_capacity(kids.len());
        for kid in kids {
            match set.find(kid) {
                Some(key) if !token.policy.allows_track(key.track_type) => {
                    story.rule = "policy.allowed_tracks";
                    return Err(ClavisError::new(
                        ErrorCode::TrackNotAllowed,
                        format!(
                            "KID {kid} is a {} key; the policy allows {}",
                            key.track_type,
                            allowed_list(&token.policy)
                        ),
                    ));
                }
                Some(key) => found.push(LicenseKey { kid: *kid, key: *key.key, track_type: key.track_type }),
                None => {
                    // Only the refusal path looks further, to say precisely why.
                    return Err(match self.keys.content_of_kid(tenant_id, kid).await? {
                        Some(other) => ClavisError::new(
                            ErrorCode::TokenContentMismatch,
                            format!(
                                "KID {kid} belongs to content {:?}; the token is for {:?}",
                                other.as_str(),
                                token.content_id.as_str()
                            ),
                        ),
                        None => ClavisError::new(
                            ErrorCode::KidNotInContent,
                            format!("KID {kid} is not a key of content {:?}", token.content_id.as_str()),
                        ),
                    });
                }
            }
        }
        Ok(found)
    }

    /// A ClearKey license for the request body, or the refusal.
    pub async fn clearkey(&self, story: &mut Story, token: Option<Credential<'_>>, body: &[u8]) -> Result<Vec<u8>> {
        // Parsed first so that even a refused token's log row says which keys were asked for.
        let request = ClearKeyRequest::parse(body);
        if let Ok(request) = &request {
            story.kids.clone_from(&request.kids);
        }
        let verified = self.authorize(story, token).await?;
        story.rule = "request";
        let request = request?;
        let keys = self.resolve_keys(story, &verified, &request.kids).await?;
        story.rule = "persistence";
        if request.session_type == SessionType::PersistentLicense && !verified.policy.allows_persistence() {
            return Err(ClavisError::new(
                ErrorCode::PersistenceNotAllowed,
                "the policy allows temporary sessions only",
            ));
        }
        let license = clearkey::encode_license(&keys, request.session_type)?;
        let admission = self.admit(story, &verified).await?;
        self.settle(story, &verified, &admission).await?;
        Ok(license)
    }

    /// The 16 raw bytes of one key for HLS `METHOD=AES-128` (`GET /license/hls-aes/{site_id}/{content_id}/{kid}`),
    /// or the refusal. The key URI names a content (the tenant by its site id, then the content id) and one of its
    /// keys: the token must be for exactly that content, so a URI naming another site or another content id is
    /// refused with 4008 "token for another content" (after the token itself was verified, so a URI cannot be used
    /// to probe other tenants); the KID must be a key of the content (5002; 4008 when it is another content's key).
    /// Tokens limited to a DRM must say `hls-aes`; single-use tokens are used up by the one key they fetch.
    pub async fn hls_aes(
        &self,
        story: &mut Story,
        token: Option<Credential<'_>>,
        site_id: &str,
        content_id: &str,
        kid: &str,
    ) -> Result<Vec<u8>> {
        // Parsed first so that even a refused token's log row says which key was asked for.
        let kid = Kid::parse_hex(kid).map_err(|_| {
            ClavisError::new(ErrorCode::LicenseRequestMalformed, "the key URI must end with a KID of 32 hex digits")
        });
        if let Ok(kid) = &kid {
            story.kids = vec![*kid];
        }
        let verified = self.authorize(story, token).await?;
        story.rule = "request";
        let kid = kid?;
        story.rule = "content";
        let site = verified.tenant.site_id;
        if site_id != site.as_str() {
            return Err(ClavisError::new(
                ErrorCode::TokenContentMismatch,
                format!("the key URI names site {site_id:?}; the token is for a content of site {site}"),
            ));
        }
        if content_id != verified.content_id.as_str() {
            return Err(ClavisError::new(
                ErrorCode::TokenContentMismatch,
                format!(
                    "the key URI names content {content_id:?}; the token is for {:?}",
                    verified.content_id.as_str()
                ),
            ));
        }
        let keys = self.resolve_keys(story, &verified, &[kid]).await?;
        let key = match keys.as_slice() {
            [(_, key)] => key.to_vec(),
            _ => return Err(ClavisError::internal("hls-aes", "resolve_keys did not answer exactly one key")),
        };
        let admission = self.admit(story, &verified).await?;
        self.settle(story, &verified, &admission).await?;
        Ok(key)
    }

    /// Log the outcome and build the answer (with CORS headers for the origin when it may read it).
    pub async fn finish(&self, mut story: Story, result: Result<Vec<u8>>, content_type: &'static str) -> HttpResponse {
        let latency = story.started.elapsed();
        let origin_allowed =
            story.tenant.as_ref().is_none_or(|tenant| tenant.settings.origin_allowed(story.origin.as_deref()));
        let (mut response, outcome, error) = match result {
            Ok(body) => {
                let response = HttpResponse::Ok()
                    .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)))
                    .body(body);
                (response, Outcome::Issued, None)
            }
            Err(err) if story.soap_faults => {
                let body =
                    story.relayed_error.take().unwrap_or_else(|| crate::playready::soap_fault(&err).into_bytes());
                let response = HttpResponse::build(err.code.status())
                    .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(crate::playready::CONTENT_TYPE)))
                    .insert_header((clavis_core::error::ERROR_HEADER, err.code.code_str()))
                    .body(body);
                (response, Outcome::Denied, Some(err))
            }
            Err(err) => {
                let response = match story.error_style {
                    ErrorStyle::Clavis => actix_web::ResponseError::error_response(&err),
                    // PallyCon answers refusals with 200 and its own code in the body; players written for it read that.
                    ErrorStyle::Pallycon => HttpResponse::Ok()
                        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/json")))
                        .insert_header((clavis_core::error::ERROR_HEADER, err.code.code_str()))
                        .body(clavis_tokens::pallycon::compat_body(&err)),
                };
                (response, Outcome::Denied, Some(err))
            }
        };
        cors::apply(&mut response, story.origin.as_deref(), origin_allowed);
        if let Some(tenant) = &story.tenant {
            server_config_headers(&mut response, &tenant.settings.server_config, story.facts.config_version);
        }
        if outcome == Outcome::Issued
            && let Some(stream_id) = story.stream_id.as_deref().and_then(|id| HeaderValue::from_str(id).ok())
        {
            response.headers_mut().insert(header::HeaderName::from_static(crate::rules::SESSION_HEADER), stream_id);
        }

        let code = error.as_ref().map(|e| e.code);
        if let (Some(span), Some(tenant)) = (&story.root_span, &story.tenant) {
            span.record("tenant_id", tracing::field::display(tenant.id));
        }
        license_counter(story.drm, code).increment(1);
        license_histogram(story.drm, outcome).record(latency.as_secs_f64());
        if let Some(err) = &error {
            tracing::info!(drm = story.drm.as_str(), code = err.code.code(), rule = story.rule, detail = %err.detail, "license denied");
        }
        // Requests that never named a tenant cannot go in a tenant's log; they are counted in metrics only.
        if let Some(tenant) = &story.tenant {
            self.log
                .record(LogEntry {
                    tenant_id: tenant.id,
                    at_ms: chrono::Utc::now().timestamp_millis(),
                    drm: story.drm.as_str(),
                    user_id: story.user_id,
                    content_id: story.content_id,
                    kids: story.kids.iter().map(Kid::to_hex).collect(),
                    outcome,
                    error_code: code.map(ErrorCode::code),
                    rule: story.rule,
                    detail: error.map(|e| e.detail.into_owned()),
                    latency_us: i64::try_from(latency.as_micros()).unwrap_or(i64::MAX),
                    client_ip: story.client_ip,
                    origin: story.origin,
                    request_id: story.request_id,
                    device_id: story.facts.device_id,
                    flag: story.flag,
                })
                .await;
        }
        response
    }
}
