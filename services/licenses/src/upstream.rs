//! The tenant's upstream license servers, for the DRMs whose licenses only their owner's servers can sign (seed
//! document 004, the DRM proxy): Google's Widevine license service (or any service speaking its `getlicense` API)
//! and the tenant's PlayReady license server (which shares the tenant's key seed).
//!
//! Clavis applies the token and the rules, then forwards. Each upstream has a time budget for the whole exchange,
//! retries included: a connection failure, an HTTP 5xx or an answer the protocol marks as "try again" is retried
//! after a short pause while the budget lasts, and what is left of it is the next attempt's deadline. The URL goes
//! through the same outbound checks as callbacks (no loopback, private, link-local or metadata targets unless the
//! operator allows private networks; checked on the resolved addresses; no redirects).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{HttpResponse, delete, get, put, web};
use chrono::{DateTime, Utc};
use clavis_core::http::ValidJson;
use clavis_core::{ClavisError, ErrorCode, Result};
use clavis_tenant::{SecretKind, SecretVault, Tenant, TenantAuth};
use serde::{Deserialize, Serialize};
use url::Url;
use zeroize::Zeroizing;

use crate::outbound::{Outbound, Peer, ReceivedAnswer};

pub const WIDEVINE_PEER: Peer = Peer {
    name: "Widevine license service",
    settings_invalid: ErrorCode::UpstreamSettingsInvalid,
    target_forbidden: ErrorCode::UpstreamTargetForbidden,
    address_forbidden: ErrorCode::UpstreamAddressForbidden,
    unreachable: ErrorCode::UpstreamUnreachable,
    timeout: ErrorCode::UpstreamTimeout,
    answer_malformed: ErrorCode::UpstreamAnswerMalformed,
};

pub const PLAYREADY_PEER: Peer = Peer { name: "PlayReady license server", ..WIDEVINE_PEER };

pub const DEFAULT_TIMEOUT_MS: u32 = 3000;
pub const MIN_TIMEOUT_MS: u32 = 100;
pub const MAX_TIMEOUT_MS: u32 = 10_000;
pub const DEFAULT_RETRIES: u32 = 1;
pub const MAX_RETRIES: u32 = 3;
/// Below this much budget another attempt is not worth starting.
const MIN_ATTEMPT: Duration = Duration::from_millis(50);
const VAULT_NAME: &str = "default";

fn invalid(field: &'static str, detail: impl Into<std::borrow::Cow<'static, str>>) -> ClavisError {
    ClavisError::field(ErrorCode::UpstreamSettingsInvalid, field, detail)
}

fn not_configured(drm: &str, path: &str) -> ClavisError {
    ClavisError::new(
        ErrorCode::UpstreamNotConfigured,
        format!("this tenant has no upstream {drm} license server; set one with PUT {path}"),
    )
}

fn budget(timeout_ms: Option<u32>, retries: Option<u32>) -> Result<(u32, u32)> {
    let timeout_ms = timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if !(MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
        return Err(invalid("timeout_ms", format!("must be {MIN_TIMEOUT_MS} to {MAX_TIMEOUT_MS}")));
    }
    let retries = retries.unwrap_or(DEFAULT_RETRIES);
    if retries > MAX_RETRIES {
        return Err(invalid("retries", format!("must be 0 to {MAX_RETRIES}")));
    }
    Ok((timeout_ms, retries))
}

fn hex_array<const N: usize>(field: &'static str, value: &str) -> Result<Zeroizing<[u8; N]>> {
    let mut out = Zeroizing::new([0u8; N]);
    hex::decode_to_slice(value.trim(), &mut *out)
        .map_err(|_| invalid(field, format!("must be {} hex digits ({N} bytes)", N * 2)))?;
    Ok(out)
}

/// Body of `PUT /api/v1/integrations/widevine`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WidevineProxyBody {
    /// The license service's getlicense URL, e.g. `https://license.uat.widevine.com/cenc/getlicense/widevine_test`.
    pub license_url: String,
    /// The provider name Google assigned (it signs requests as this signer).
    #[schema(example = "widevine_test")]
    pub provider: String,
    /// The provider's AES-256 request signing key, 64 hex digits. Omitted: keep the current one.
    #[serde(default)]
    pub signing_key: Option<String>,
    /// Its IV, 32 hex digits (with `signing_key`).
    #[serde(default)]
    pub signing_iv: Option<String>,
    /// The whole exchange's budget, retries included: 100 to 10000 ms (default 3000).
    #[serde(default)]
    pub timeout_ms: Option<u32>,
    /// Attempts after the first on connection failures, HTTP 5xx and `INTERNAL_ERROR`: 0 to 3 (default 1).
    #[serde(default)]
    pub retries: Option<u32>,
}

#[derive(Clone, Serialize, Deserialize)]
struct WidevineMeta {
    license_url: String,
    provider: String,
    timeout_ms: u32,
    retries: u32,
}

#[derive(Serialize, Deserialize)]
struct WidevineSecret {
    signing_key: String,
    signing_iv: String,
}

impl zeroize::Zeroize for WidevineSecret {
    fn zeroize(&mut self) {
        self.signing_key.zeroize();
        self.signing_iv.zeroize();
    }
}

/// The Widevine proxy settings as shown: never the signing key.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WidevineProxyView {
    pub license_url: String,
    pub provider: String,
    pub timeout_ms: u32,
    pub retries: u32,
    pub signing_key_set: bool,
    pub updated_at: DateTime<Utc>,
}

/// Body of `PUT /api/v1/integrations/playready`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlayReadyProxyBody {
    /// The tenant's PlayReady license server (its AcquireLicense endpoint, e.g. `.../rightsmanager.asmx`).
    pub license_url: String,
    /// An `Authorization` header value Clavis sends upstream (so the server knows the proxy). Omitted: keep the
    /// current one; empty: send none.
    #[serde(default)]
    pub authorization: Option<String>,
    #[serde(default)]
    pub timeout_ms: Option<u32>,
    #[serde(default)]
    pub retries: Option<u32>,
}

#[derive(Clone, Serialize, Deserialize)]
struct PlayReadyMeta {
    license_url: String,
    timeout_ms: u32,
    retries: u32,
}

#[derive(Serialize, Deserialize, Default)]
struct PlayReadySecret {
    #[serde(default)]
    authorization: Option<String>,
}

impl zeroize::Zeroize for PlayReadySecret {
    fn zeroize(&mut self) {
        self.authorization.zeroize();
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PlayReadyProxyView {
    pub license_url: String,
    pub timeout_ms: u32,
    pub retries: u32,
    pub authorization_set: bool,
    pub updated_at: DateTime<Utc>,
}

/// How long an upstream exchange may take in all, and how many attempts may follow the first.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    pub total: Duration,
    pub retries: u32,
}

impl Budget {
    fn new(timeout_ms: u32, retries: u32) -> Budget {
        Budget { total: Duration::from_millis(u64::from(timeout_ms)), retries }
    }
}

/// A tenant's Widevine upstream, opened.
pub(crate) struct WidevineUpstream {
    pub url: Url,
    pub provider: String,
    pub signing_key: Zeroizing<[u8; 32]>,
    pub signing_iv: [u8; 16],
    pub budget: Budget,
}

/// A tenant's PlayReady upstream, opened.
pub(crate) struct PlayReadyUpstream {
    pub url: Url,
    pub authorization: Option<Zeroizing<String>>,
    pub budget: Budget,
}

pub struct Upstreams {
    vault: Arc<SecretVault>,
    outbound: Arc<Outbound>,
}

impl Upstreams {
    pub fn new(vault: Arc<SecretVault>, outbound: Arc<Outbound>) -> Upstreams {
        Upstreams { vault, outbound }
    }

    pub async fn put_widevine(&self, tenant: &Tenant, body: WidevineProxyBody) -> Result<WidevineProxyView> {
        let url = self.outbound.check_url(&WIDEVINE_PEER, "license_url", body.license_url.trim())?;
        let provider = body.provider.trim();
        if provider.is_empty()
            || provider.len() > 64
            || !provider.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        {
            return Err(invalid("provider", "must be 1 to 64 letters, digits, `_`, `-` or `.`"));
        }
        let (timeout_ms, retries) = budget(body.timeout_ms, body.retries)?;
        let secret = match (body.signing_key.as_deref(), body.signing_iv.as_deref()) {
            (Some(key), Some(iv)) => {
                hex_array::<32>("signing_key", key)?;
                hex_array::<16>("signing_iv", iv)?;
                Zeroizing::new(WidevineSecret {
                    signing_key: key.trim().to_ascii_lowercase(),
                    signing_iv: iv.trim().to_ascii_lowercase(),
                })
            }
            (None, None) => match self.vault.get(tenant.id, SecretKind::WidevineProxy, VAULT_NAME).await? {
                Some(current) => Zeroizing::new(current.value_as()?),
                None => return Err(invalid("signing_key", "the first settings need signing_key and signing_iv")),
            },
            (Some(_), None) => return Err(invalid("signing_iv", "goes with signing_key")),
            (None, Some(_)) => return Err(invalid("signing_key", "goes with signing_iv")),
        };
        let meta = WidevineMeta { license_url: url.to_string(), provider: provider.to_owned(), timeout_ms, retries };
        self.vault.put_json(tenant.id, SecretKind::WidevineProxy, VAULT_NAME, &meta, &*secret).await?;
        self.widevine_view(tenant).await
    }

    pub async fn widevine_view(&self, tenant: &Tenant) -> Result<WidevineProxyView> {
        let secret = self
            .vault
            .get(tenant.id, SecretKind::WidevineProxy, VAULT_NAME)
            .await?
            .ok_or_else(|| not_configured("Widevine", "/api/v1/integrations/widevine"))?;
        let meta: WidevineMeta = secret.meta_as()?;
        Ok(WidevineProxyView {
            license_url: meta.license_url,
            provider: meta.provider,
            timeout_ms: meta.timeout_ms,
            retries: meta.retries,
            signing_key_set: !secret.value.is_empty(),
            updated_at: secret.updated_at,
        })
    }

    pub(crate) async fn widevine(&self, tenant: &Tenant) -> Result<WidevineUpstream> {
        let secret = self
            .vault
            .get(tenant.id, SecretKind::WidevineProxy, VAULT_NAME)
            .await?
            .ok_or_else(|| not_configured("Widevine", "/api/v1/integrations/widevine"))?;
        let meta: WidevineMeta = secret.meta_as()?;
        let sealed: Zeroizing<WidevineSecret> = Zeroizing::new(secret.value_as()?);
        let stored = |e: ClavisError| ClavisError::internal("stored widevine proxy", e.detail);
        let signing_key = hex_array::<32>("signing_key", &sealed.signing_key).map_err(stored)?;
        let signing_iv = *hex_array::<16>("signing_iv", &sealed.signing_iv).map_err(stored)?;
        Ok(WidevineUpstream {
            url: Url::parse(&meta.license_url).map_err(|e| ClavisError::internal("stored widevine url", e))?,
            provider: meta.provider,
            signing_key,
            signing_iv,
            budget: Budget::new(meta.timeout_ms, meta.retries),
        })
    }

    pub async fn put_playready(&self, tenant: &Tenant, body: PlayReadyProxyBody) -> Result<PlayReadyProxyView> {
        let url = self.outbound.check_url(&PLAYREADY_PEER, "license_url", body.license_url.trim())?;
        let (timeout_ms, retries) = budget(body.timeout_ms, body.retries)?;
        let secret = match body.authorization.as_deref().map(str::trim) {
            Some("") => PlayReadySecret { authorization: None },
            Some(value) => {
                if value.len() > 4096 || !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                    return Err(invalid("authorization", "must be printable ASCII, at most 4096 characters"));
                }
                PlayReadySecret { authorization: Some(value.to_owned()) }
            }
            None => match self.vault.get(tenant.id, SecretKind::PlayreadyProxy, VAULT_NAME).await? {
                Some(current) => current.value_as()?,
                None => PlayReadySecret::default(),
            },
        };
        let secret = Zeroizing::new(secret);
        let meta = PlayReadyMeta { license_url: url.to_string(), timeout_ms, retries };
        self.vault.put_json(tenant.id, SecretKind::PlayreadyProxy, VAULT_NAME, &meta, &*secret).await?;
        self.playready_view(tenant).await
    }

    pub async fn playready_view(&self, tenant: &Tenant) -> Result<PlayReadyProxyView> {
        let secret = self
            .vault
            .get(tenant.id, SecretKind::PlayreadyProxy, VAULT_NAME)
            .await?
            .ok_or_else(|| not_configured("PlayReady", "/api/v1/integrations/playready"))?;
        let meta: PlayReadyMeta = secret.meta_as()?;
        let opened: Zeroizing<PlayReadySecret> = Zeroizing::new(secret.value_as()?);
        Ok(PlayReadyProxyView {
            license_url: meta.license_url,
            timeout_ms: meta.timeout_ms,
            retries: meta.retries,
            authorization_set: opened.authorization.is_some(),
            updated_at: secret.updated_at,
        })
    }

    pub(crate) async fn playready(&self, tenant: &Tenant) -> Result<PlayReadyUpstream> {
        let secret = self
            .vault
            .get(tenant.id, SecretKind::PlayreadyProxy, VAULT_NAME)
            .await?
            .ok_or_else(|| not_configured("PlayReady", "/api/v1/integrations/playready"))?;
        let meta: PlayReadyMeta = secret.meta_as()?;
        let mut opened: Zeroizing<PlayReadySecret> = Zeroizing::new(secret.value_as()?);
        Ok(PlayReadyUpstream {
            url: Url::parse(&meta.license_url).map_err(|e| ClavisError::internal("stored playready url", e))?,
            authorization: opened.authorization.take().map(Zeroizing::new),
            budget: Budget::new(meta.timeout_ms, meta.retries),
        })
    }

    pub async fn delete(&self, tenant: &Tenant, kind: SecretKind) -> Result<bool> {
        self.vault.delete(tenant.id, kind, VAULT_NAME).await
    }

    /// POST to an upstream within `budget`, retrying connection failures and the answers `retry` marks (HTTP 5xx
    /// always) while the budget lasts. Answers the last answer, or the last failure.
    pub(crate) async fn send(
        &self,
        peer: &Peer,
        url: &Url,
        headers: &[(&'static str, String)],
        body: &[u8],
        budget: Budget,
        retry: fn(&ReceivedAnswer) -> bool,
    ) -> Result<ReceivedAnswer> {
        let retries = budget.retries;
        let deadline = Instant::now() + budget.total;
        let mut attempt = 0u32;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut sent = None;
            let outcome = self.outbound.post(peer, url, headers, body.to_vec(), left, &mut sent).await;
            let again = match &outcome {
                Ok(answer) => answer.status >= 500 || retry(answer),
                Err(e) => e.code == peer.unreachable,
            };
            let label = match &outcome {
                Ok(_) if again => "retryable",
                Ok(answer) if answer.status < 300 => "ok",
                Ok(_) => "refused",
                Err(e) if e.code == peer.timeout => "timeout",
                Err(_) => "failed",
            };
            metrics::counter!("clavis_upstream_requests_total", "peer" => peer.name, "outcome" => label).increment(1);
            attempt += 1;
            // Back off 50 ms, 100 ms, 200 ms; never past the deadline.
            let pause = Duration::from_millis(50u64 << attempt.min(3).saturating_sub(1));
            if !again || attempt > retries || deadline.saturating_duration_since(Instant::now()) < pause + MIN_ATTEMPT {
                return outcome;
            }
            tracing::info!(peer = peer.name, attempt, "upstream attempt failed; retrying");
            tokio::time::sleep(pause).await;
        }
    }
}

/// Set the tenant's upstream Widevine license service: Clavis forwards Widevine license requests there after its
/// token and rules, with the content keys and the policy, signed as the provider.
#[utoipa::path(
    put, path = "/api/v1/integrations/widevine", tag = "licenses",
    security(("api_key" = [])),
    request_body = WidevineProxyBody,
    responses(
        (status = 200, body = WidevineProxyView),
        (status = 400, description = "1010 malformed JSON", body = clavis_core::error::Problem),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 422, description = "1011 invalid field, 5071 settings invalid, 5072 the URL is a forbidden address", body = clavis_core::error::Problem),
    )
)]
#[put("/api/v1/integrations/widevine")]
pub async fn put_widevine(
    auth: TenantAuth,
    service: web::Data<crate::LicenseService>,
    body: ValidJson<WidevineProxyBody>,
) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(service.upstreams().put_widevine(&auth.tenant, body.into_inner()).await?))
}

/// The tenant's Widevine proxy settings (whether a signing key is set, never the key).
#[utoipa::path(
    get, path = "/api/v1/integrations/widevine", tag = "licenses",
    security(("api_key" = [])),
    responses(
        (status = 200, body = WidevineProxyView),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 404, description = "5070 not configured", body = clavis_core::error::Problem),
    )
)]
#[get("/api/v1/integrations/widevine")]
pub async fn get_widevine(auth: TenantAuth, service: web::Data<crate::LicenseService>) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(service.upstreams().widevine_view(&auth.tenant).await?))
}

/// Remove the Widevine proxy settings; Widevine license requests are refused with 5070 from then on.
#[utoipa::path(
    delete, path = "/api/v1/integrations/widevine", tag = "licenses",
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 404, description = "5070 not configured", body = clavis_core::error::Problem),
    )
)]
#[delete("/api/v1/integrations/widevine")]
pub async fn delete_widevine(auth: TenantAuth, service: web::Data<crate::LicenseService>) -> Result<HttpResponse> {
    if !service.upstreams().delete(&auth.tenant, SecretKind::WidevineProxy).await? {
        return Err(not_configured("Widevine", "/api/v1/integrations/widevine"));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Set the tenant's upstream PlayReady license server: Clavis forwards PlayReady challenges there, untouched,
/// after its token and rules; the server derives the keys from the key seed it shares with Clavis.
#[utoipa::path(
    put, path = "/api/v1/integrations/playready", tag = "licenses",
    security(("api_key" = [])),
    request_body = PlayReadyProxyBody,
    responses(
        (status = 200, body = PlayReadyProxyView),
        (status = 400, description = "1010 malformed JSON", body = clavis_core::error::Problem),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 422, description = "1011 invalid field, 5071 settings invalid, 5072 the URL is a forbidden address", body = clavis_core::error::Problem),
    )
)]
#[put("/api/v1/integrations/playready")]
pub async fn put_playready(
    auth: TenantAuth,
    service: web::Data<crate::LicenseService>,
    body: ValidJson<PlayReadyProxyBody>,
) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(service.upstreams().put_playready(&auth.tenant, body.into_inner()).await?))
}

/// The tenant's PlayReady proxy settings (whether an Authorization value is set, never the value).
#[utoipa::path(
    get, path = "/api/v1/integrations/playready", tag = "licenses",
    security(("api_key" = [])),
    responses(
        (status = 200, body = PlayReadyProxyView),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 404, description = "5070 not configured", body = clavis_core::error::Problem),
    )
)]
#[get("/api/v1/integrations/playready")]
pub async fn get_playready(auth: TenantAuth, service: web::Data<crate::LicenseService>) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(service.upstreams().playready_view(&auth.tenant).await?))
}

/// Remove the PlayReady proxy settings; PlayReady license requests are refused with 5070 from then on.
#[utoipa::path(
    delete, path = "/api/v1/integrations/playready", tag = "licenses",
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 404, description = "5070 not configured", body = clavis_core::error::Problem),
    )
)]
#[delete("/api/v1/integrations/playready")]
pub async fn delete_playready(auth: TenantAuth, service: web::Data<crate::LicenseService>) -> Result<HttpResponse> {
    if !service.upstreams().delete(&auth.tenant, SecretKind::PlayreadyProxy).await? {
        return Err(not_configured("PlayReady", "/api/v1/integrations/playready"));
    }
    Ok(HttpResponse::NoContent().finish())
}
