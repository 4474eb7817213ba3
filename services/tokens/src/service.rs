//! The token service: mint native tokens for a tenant's backend, and verify tokens for the license service.

use std::sync::Arc;

use clavis_core::ids::{ContentId, Drm, UserId};
use clavis_core::policy::Policy;
use clavis_core::{ClavisError, Platform, Result};
use clavis_tenant::{Directory, Tenant};
use serde::{Deserialize, Serialize};

use clavis_core::ErrorCode;
use clavis_tenant::SecretVault;

use crate::axinom_integration::{AxinomMessage, AxinomTokens};
use crate::drmtoday::{DrmtodayToken, DrmtodayTokens};
use crate::foreign::pallycon::PallyconToken;
use crate::issuers::Issuers;
use crate::native::{self, NativeClaims, PresentedToken, VerifiedToken};
use crate::pallycon::PallyconTokens;
use crate::replay::ReplayGuard;
use crate::signing::SigningKeys;

pub struct TokenService {
    directory: Arc<Directory>,
    keys: SigningKeys,
    replay: ReplayGuard,
    pallycon: PallyconTokens,
    drmtoday: DrmtodayTokens,
    axinom: AxinomTokens,
}

/// A license token as the player sent it, by the header (or query parameter) it came in.
#[derive(Clone, Copy, Debug)]
pub enum Credential<'a> {
    /// `X-Clavis-Token` / `?token=`.
    Native(&'a str),
    /// `pallycon-customdata-v2`.
    Pallycon(&'a str),
    /// `x-dt-auth-token` (castLabs DRMtoday upfront token).
    Drmtoday(&'a str),
    /// `X-AxDRM-Message` (Axinom license service message).
    Axinom(&'a str),
}

/// A token decoded, not yet verified.
#[derive(Debug)]
pub enum Presented {
    Native(PresentedToken),
    Pallycon(PallyconToken),
    Drmtoday(DrmtodayToken),
    Axinom(AxinomMessage),
}

/// How refusals are answered to the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorStyle {
    /// problem+json with the catalog's HTTP status.
    Clavis,
    /// PallyCon's: HTTP 200 with `{"errorCode", "message"}` (a tenant setting for PallyCon tokens).
    Pallycon,
}

/// Body of `POST /api/v1/tokens`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The tenant's id for the viewer.
    #[schema(example = "u1")]
    pub user_id: String,
    #[schema(example = "movie-1")]
    pub content_id: String,
    /// Narrows the tenant's default policy; empty or absent means the default.
    #[serde(default)]
    pub policy: Option<Policy>,
    /// Limit the token to one DRM system.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "clearkey")]
    pub drm: Option<String>,
    /// Token lifetime in seconds, at most the tenant's token TTL (the default).
    #[serde(default)]
    pub ttl_seconds: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    pub token: String,
    /// RFC 3339.
    pub expires_at: String,
}

impl TokenService {
    pub fn new(
        platform: Platform,
        directory: Arc<Directory>,
        vault: Arc<SecretVault>,
        issuers: Arc<Issuers>,
    ) -> TokenService {
        TokenService {
            directory,
            replay: ReplayGuard::new(platform.db.clone()),
            keys: SigningKeys::new(platform),
            pallycon: PallyconTokens::new(vault.clone(), issuers.clone()),
            drmtoday: DrmtodayTokens::new(vault.clone(), issuers.clone()),
            axinom: AxinomTokens::new(vault, issuers),
        }
    }

    /// The tenant signing keys.
    pub fn signing_keys(&self) -> &SigningKeys {
        &self.keys
    }

    /// The single-use ledger.
    pub fn replay(&self) -> &ReplayGuard {
        &self.replay
    }

    /// Use a verified token: single-use tokens are claimed in the database, others pass. Called last on the license
    /// path, once everything else agreed, so that a refused request does not burn the token.
    pub async fn consume(&self, token: &VerifiedToken) -> Result<()> {
        if !token.policy.is_single_use() {
            return Ok(());
        }
        let jti = token
            .jti
            .as_deref()
            .ok_or_else(|| ClavisError::new(ErrorCode::TokenMalformed, "a single-use token needs a `jti` claim"))?;
        let skew = i64::from(token.tenant.settings.clock_skew_seconds);
        let keep_until_ms = token.expires_at.saturating_add(skew).saturating_mul(1000);
        self.replay.claim(token.tenant.id, token.format, jti, keep_until_ms).await
    }

    pub async fn issue(&self, tenant: &Tenant, request: TokenRequest) -> Result<IssuedToken> {
        let user_id = UserId::parse(&request.user_id)?;
        let content_id = ContentId::parse(&request.content_id)?;
        let policy = request.policy.unwrap_or_default();
        tenant.settings.default_policy.check_narrows(&policy)?;
        let drm = request.drm.as_deref().map(str::parse::<Drm>).transpose()?;
        let max_ttl = tenant.settings.token_ttl_seconds;
        let ttl = match request.ttl_seconds {
            None => max_ttl,
            Some(ttl) if ttl >= 1 && ttl <= max_ttl => ttl,
            Some(_) => {
                return Err(ClavisError::invalid(
                    "ttl_seconds",
                    format!("must be 1 to the tenant's token TTL of {max_ttl}"),
                ));
            }
        };
        let now = chrono::Utc::now();
        let exp = now + chrono::Duration::seconds(i64::from(ttl));
        let claims = NativeClaims {
            iss: tenant.site_id.to_string(),
            sub: user_id.as_str().to_owned(),
            cid: content_id.as_str().to_owned(),
            drm: drm.map(|d| d.as_str().to_owned()),
            policy,
            iat: now.timestamp(),
            nbf: Some(now.timestamp()),
            exp: exp.timestamp(),
            jti: Some(uuid::Uuid::new_v4().to_string()),
        };
        let keys = self.keys.for_tenant(tenant.id).await?;
        let token = native::sign(&keys.current, &claims)?;
        Ok(IssuedToken { token, expires_at: exp.to_rfc3339_opts(chrono::SecondsFormat::Secs, true) })
    }

    /// Decode a token as presented (not yet verified).
    pub fn parse(&self, credential: Credential<'_>) -> Result<Presented> {
        Ok(match credential {
            Credential::Native(raw) => Presented::Native(PresentedToken::parse(raw)?),
            Credential::Pallycon(raw) => Presented::Pallycon(PallyconToken::parse(raw)?),
            Credential::Drmtoday(raw) => Presented::Drmtoday(DrmtodayToken::parse(raw)?),
            Credential::Axinom(raw) => Presented::Axinom(AxinomMessage::parse(raw)?),
        })
    }

    /// The tenant a token names, before verification (to attribute logs and CORS decisions).
    pub async fn issuer(&self, token: &Presented) -> Result<Arc<Tenant>> {
        match token {
            Presented::Native(token) => native::issuer(&self.directory, token).await,
            Presented::Pallycon(token) => {
                let owner = self.pallycon.owner(token).await?.ok_or_else(|| {
                    ClavisError::new(
                        ErrorCode::TokenIssuerUnknown,
                        format!("no tenant accepts PallyCon tokens of site {:?}", token.site_id),
                    )
                })?;
                self.directory.get(owner).await
            }
            Presented::Drmtoday(token) => {
                let owner = self.drmtoday.owner(token).await?.ok_or_else(|| {
                    ClavisError::new(
                        ErrorCode::TokenIssuerUnknown,
                        format!("no tenant accepts DRMtoday tokens of merchant {:?}", token.merchant),
                    )
                })?;
                self.directory.get(owner).await
            }
            Presented::Axinom(message) => {
                let owner = self.axinom.owner(message).await?.ok_or_else(|| {
                    ClavisError::new(
                        ErrorCode::TokenIssuerUnknown,
                        format!("no tenant accepts Axinom messages of communication key {}", message.com_key_id),
                    )
                })?;
                self.directory.get(owner).await
            }
        }
    }

    /// The tenant a device-registration token names (`crate::registration`), before verification.
    pub async fn registration_issuer(&self, token: &crate::registration::PresentedRegistration) -> Result<Arc<Tenant>> {
        token.issuer(&self.directory).await
    }

    /// How refusals of this token are answered.
    pub async fn error_style(&self, tenant: &Tenant, token: &Presented) -> ErrorStyle {
        match token {
            Presented::Native(_) | Presented::Drmtoday(_) | Presented::Axinom(_) => ErrorStyle::Clavis,
            Presented::Pallycon(_) => match self.pallycon.integration(tenant).await {
                Ok(Some(integration)) if integration.view.compat_errors => ErrorStyle::Pallycon,
                _ => ErrorStyle::Clavis,
            },
        }
    }

    /// Verify a token of `tenant` and compute its effective policy.
    pub async fn verify(&self, tenant: Arc<Tenant>, token: Presented) -> Result<VerifiedToken> {
        match token {
            Presented::Native(token) => native::verify(&self.keys, tenant, token).await,
            Presented::Pallycon(token) => self.pallycon.verify(tenant, &token).await,
            Presented::Drmtoday(token) => self.drmtoday.verify(tenant, &token).await,
            Presented::Axinom(message) => self.axinom.verify(tenant, &message).await,
        }
    }
}
