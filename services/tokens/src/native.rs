//! The Clavis native token: a JWT signed with the tenant's key (`kid` names it).
//!
//! Claims: `iss` (site id), `sub` (user id), `cid` (content id), optional `drm`, `policy`, `iat`, `nbf`, `exp`, `jti`.
//!
//! Verification parses each part once: the header and claims are decoded when the token is presented (the issuer
//! names the tenant, so even a refused token can be attributed), the HS256 signature is checked with ring's
//! constant-time HMAC verification against the tenant's key (kept ready in the signing-key cache), and only then is the
//! policy interpreted. Tokens are signed with jsonwebtoken; `jsonwebtoken::decode` verifies the same tokens (a test
//! and the benchmark check both), but it decodes header and claims twice and rebuilds the HMAC key per call, which
//! made it the largest cost of a license request.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clavis_core::ids::{ContentId, Drm, SiteId, UserId, recode};
use clavis_core::policy::Policy;
use clavis_core::{ClavisError, ErrorCode, Result};
use clavis_tenant::{Directory, Tenant};
use jsonwebtoken::Header;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::signing::{SigningKey, SigningKeys};

/// Longest token accepted (a JWT with a large policy is still far below this).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The claims as minted by the token API.
#[derive(Debug, Serialize)]
pub struct NativeClaims {
    pub iss: String,
    pub sub: String,
    pub cid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drm: Option<String>,
    pub policy: Policy,
    pub iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// The claims as presented, before the signature is checked: the policy stays raw JSON until then.
#[derive(Debug, Deserialize)]
struct PresentedClaims {
    iss: String,
    sub: String,
    cid: String,
    #[serde(default)]
    drm: Option<String>,
    #[serde(default)]
    policy: Option<Box<RawValue>>,
    iat: i64,
    #[serde(default)]
    nbf: Option<i64>,
    exp: i64,
    #[serde(default)]
    jti: Option<String>,
    /// Set only on device-registration tokens, which are refused here.
    #[serde(default)]
    aud: Option<String>,
}

/// The JOSE header fields Clavis reads.
#[derive(Debug, Deserialize)]
pub(crate) struct JoseHeader {
    pub(crate) alg: String,
    #[serde(default)]
    pub(crate) kid: Option<String>,
}

/// A token split and decoded, not yet verified.
#[derive(Debug)]
pub struct PresentedToken {
    /// `header.payload`, the signed part.
    signed: String,
    signature: Vec<u8>,
    header: JoseHeader,
    claims: PresentedClaims,
}

fn malformed(detail: impl Into<String>) -> ClavisError {
    ClavisError::new(ErrorCode::TokenMalformed, detail.into())
}

/// Length of the signature part including its dot.
fn signature_len(raw: &str) -> usize {
    raw.rsplit('.').next().map_or(0, |s| s.len() + 1)
}

impl PresentedToken {
    pub fn parse(raw: &str) -> Result<PresentedToken> {
        if raw.len() > MAX_TOKEN_LEN {
            return Err(malformed("the token is longer than 8 KiB"));
        }
        let mut parts = raw.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("a token is a JWT: three base64url parts separated by dots"));
        };
        let decode = |part: &str, what: &str| {
            URL_SAFE_NO_PAD.decode(part).map_err(|_| malformed(format!("the token {what} is not base64url")))
        };
        let header: JoseHeader = serde_json::from_slice(&decode(header, "header")?)
            .map_err(|_| malformed("the token header is not a JOSE header with `alg`"))?;
        let claims: PresentedClaims = serde_json::from_slice(&decode(payload, "payload")?)
            .map_err(|e| malformed(format!("the token claims are not Clavis claims (iss, sub, cid, iat, exp): {e}")))?;
        let signature = decode(signature, "signature")?;
        let signed = raw[..raw.len() - signature_len(raw)].to_owned();
        Ok(PresentedToken { signed, signature, header, claims })
    }

    /// The site id the token claims to come from (unverified).
    pub fn issuer(&self) -> &str {
        &self.claims.iss
    }
}

/// A token that verified: whose it is, for whom and what, and the effective policy (tenant default narrowed by
/// the token's policy).
#[derive(Clone, Debug)]
pub struct VerifiedToken {
    pub tenant: Arc<Tenant>,
    pub user_id: UserId,
    pub content_id: ContentId,
    pub drm: Option<Drm>,
    pub policy: Policy,
    pub jti: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
    /// Which token format it came in (`native`, `pallycon`, ...): replay ids are kept per format.
    pub format: &'static str,
    /// Keys the token carries itself (PallyCon's `external_key`); when present, licenses use these, not stored keys.
    pub external_keys: Vec<ExternalKey>,
}

/// A content key carried in a token. `Debug` never prints the key.
#[derive(Clone)]
pub struct ExternalKey {
    pub kid: clavis_core::ids::Kid,
    pub key: zeroize::Zeroizing<[u8; 16]>,
    pub track_type: clavis_core::ids::TrackType,
}

impl std::fmt::Debug for ExternalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExternalKey({}, {})", self.track_type, self.kid)
    }
}

impl VerifiedToken {
    /// Refuse a token limited to another DRM.
    pub fn ensure_drm(&self, drm: Drm) -> Result<()> {
        match self.drm {
            Some(limited) if limited != drm => Err(ClavisError::new(
                ErrorCode::TokenDrmMismatch,
                format!("the token is limited to {limited}, not {drm}"),
            )),
            _ => Ok(()),
        }
    }
}

/// The tenant a presented token names (its `iss`), before any signature check. Lets the caller attribute the
/// request (log, CORS) even when verification then fails.
pub async fn issuer(directory: &Directory, token: &PresentedToken) -> Result<Arc<Tenant>> {
    let unknown =
        || ClavisError::new(ErrorCode::TokenIssuerUnknown, format!("no tenant with site id {:?}", token.issuer()));
    let site = SiteId::parse(token.issuer()).map_err(|_| unknown())?;
    directory.by_site_id(site).await?.ok_or_else(unknown)
}

/// Verify a presented token of `tenant` (found by [`issuer`]).
pub async fn verify(keys: &SigningKeys, tenant: Arc<Tenant>, token: PresentedToken) -> Result<VerifiedToken> {
    check_signature(keys, &tenant, &token.header, token.signed.as_bytes(), &token.signature).await?;
    let claims = token.claims;
    // A device-registration token (same keys, `aud` set) names a user, not a license.
    if claims.aud.as_deref() == Some(crate::registration::AUDIENCE) {
        return Err(malformed("a device-registration token is not a license token"));
    }
    check_times(&tenant, claims.iat, claims.nbf, claims.exp)?;
    let user_id = UserId::parse(&claims.sub).map_err(|e| recode(e, ErrorCode::TokenMalformed))?;
    let content_id = ContentId::parse_field(&claims.cid, "cid").map_err(|e| recode(e, ErrorCode::TokenMalformed))?;
    let drm =
        claims.drm.as_deref().map(str::parse::<Drm>).transpose().map_err(|e| recode(e, ErrorCode::TokenMalformed))?;
    let policy = parse_policy(claims.policy.as_deref())?;
    let policy = tenant.settings.default_policy.narrowed_by(&policy);
    Ok(VerifiedToken {
        tenant,
        user_id,
        content_id,
        drm,
        policy,
        jti: claims.jti,
        expires_at: claims.exp,
        format: "native",
        external_keys: Vec::new(),
    })
}

/// Check a token's signature with the tenant key its `kid` names. The key decides the algorithm; a header naming
/// another one (`none`, or HS256 against a public key) is refused.
pub(crate) async fn check_signature(
    keys: &SigningKeys,
    tenant: &Tenant,
    header: &JoseHeader,
    signed: &[u8],
    signature: &[u8],
) -> Result<()> {
    let key = keys.find(tenant.id, header.kid.as_deref()).await?.ok_or_else(|| {
        ClavisError::new(
            ErrorCode::TokenKeyUnknown,
            format!("no active signing key {:?}", header.kid.as_deref().unwrap_or_default()),
        )
    })?;
    if header.alg != key.algorithm.as_str() {
        return Err(ClavisError::new(
            ErrorCode::TokenSignatureInvalid,
            format!("key {:?} is an {} key; the token says {:?}", key.kid, key.algorithm.as_str(), header.alg),
        ));
    }
    if !key.verify(signed, signature) {
        return Err(ClavisError::new(ErrorCode::TokenSignatureInvalid, "the signature does not verify"));
    }
    Ok(())
}

/// Check `exp`, `nbf` and `iat` against now, with the tenant's clock skew.
pub(crate) fn check_times(tenant: &Tenant, iat: i64, nbf: Option<i64>, exp: i64) -> Result<()> {
    let now = chrono::Utc::now().timestamp();
    let skew = i64::from(tenant.settings.clock_skew_seconds);
    if exp.saturating_add(skew) < now {
        return Err(ClavisError::new(ErrorCode::TokenExpired, "the token's `exp` has passed"));
    }
    if nbf.is_some_and(|nbf| nbf.saturating_sub(skew) > now) {
        return Err(ClavisError::new(ErrorCode::TokenNotYetValid, "the token's `nbf` is in the future"));
    }
    if iat.saturating_sub(skew) > now {
        return Err(ClavisError::new(ErrorCode::TokenNotYetValid, "the token's `iat` is in the future"));
    }
    Ok(())
}

/// A token's `policy` claim (raw until the signature verified), validated.
pub fn parse_policy(raw: Option<&RawValue>) -> Result<Policy> {
    let policy = match raw {
        None => Policy::default(),
        Some(raw) => clavis_core::http::parse_json::<Policy>(raw.get().as_bytes()).map_err(|e| ClavisError {
            code: ErrorCode::PolicyInvalid,
            field: Some(e.field.map_or_else(|| "policy".into(), |f| format!("policy.{f}").into())),
            ..e
        })?,
    };
    policy.validate()?;
    Ok(policy)
}

/// Sign native claims with the tenant's current key.
pub fn sign(key: &SigningKey, claims: &NativeClaims) -> Result<String> {
    let encoding =
        key.encoding.as_ref().ok_or_else(|| ClavisError::internal("sign token", "the current key cannot sign"))?;
    let mut header = Header::new(key.jwt_algorithm());
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, encoding).map_err(|e| ClavisError::internal("sign token", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn presented_tokens_are_split_once() {
        let claims = serde_json::json!({"iss": "ABCD", "sub": "u", "cid": "c", "iat": 1, "exp": 2, "policy": {"persistent": true}});
        let raw =
            jsonwebtoken::encode(&Header::default(), &claims, &jsonwebtoken::EncodingKey::from_secret(b"k")).unwrap();
        let token = PresentedToken::parse(&raw).unwrap();
        assert_eq!(token.issuer(), "ABCD");
        assert_eq!(token.signed, raw.rsplit_once('.').unwrap().0);
        assert_eq!(token.header.alg, "HS256");
        // ring's HMAC accepts exactly what jsonwebtoken signed.
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"k");
        assert!(ring::hmac::verify(&key, token.signed.as_bytes(), &token.signature).is_ok());
        assert_eq!(token.claims.policy.as_ref().unwrap().get(), r#"{"persistent":true}"#);
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for raw in ["", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30.AA", "e30.e30.", &"x".repeat(MAX_TOKEN_LEN + 1)] {
            assert_eq!(PresentedToken::parse(raw).unwrap_err().code, ErrorCode::TokenMalformed, "{raw:.20}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(raw in ".{0,600}") {
            let _ = PresentedToken::parse(&raw);
        }

        #[test]
        fn parse_never_panics_on_jwt_shaped_input(a in "[A-Za-z0-9_-]{0,80}", b in "[A-Za-z0-9_-]{0,200}", c in "[A-Za-z0-9_-]{0,80}") {
            let _ = PresentedToken::parse(&format!("{a}.{b}.{c}"));
        }
    }
}
