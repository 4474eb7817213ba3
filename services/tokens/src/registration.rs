//! Device-registration tokens (issue 7, docs/offline.md): a JWT the tenant's backend signs with one of its token
//! signing keys (the same HS256 or EdDSA keys as self-signed license tokens, `kid` naming the key), naming a user
//! but no content, so an app can register a device before it has any license token:
//!
//! `{"iss": site_id, "sub": user_id, "aud": "clavis-device-registration", "iat", "exp", "nbf"?, "policy"?}`
//!
//! `policy` (optional) narrows the tenant's default policy like a license token's; only its `max_devices` matters
//! for a registration. The `aud` keeps the two kinds apart: license endpoints refuse a token with this audience.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clavis_core::ids::{SiteId, UserId, recode};
use clavis_core::policy::Policy;
use clavis_core::{ClavisError, ErrorCode, Result};
use clavis_tenant::{Directory, Tenant};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::native::{JoseHeader, MAX_TOKEN_LEN, check_signature, check_times, parse_policy};
use crate::signing::SigningKeys;

/// The `aud` of a device-registration token.
pub const AUDIENCE: &str = "clavis-device-registration";

#[derive(Debug, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    #[serde(default)]
    policy: Option<Box<RawValue>>,
    iat: i64,
    #[serde(default)]
    nbf: Option<i64>,
    exp: i64,
}

/// A registration token split and decoded, not yet verified.
#[derive(Debug)]
pub struct PresentedRegistration {
    signed: String,
    signature: Vec<u8>,
    header: JoseHeader,
    claims: Claims,
}

/// A registration token that verified: whose user it names, and the effective policy.
#[derive(Debug)]
pub struct VerifiedRegistration {
    pub tenant: Arc<Tenant>,
    pub user_id: UserId,
    pub policy: Policy,
}

fn malformed(detail: impl Into<String>) -> ClavisError {
    ClavisError::new(ErrorCode::TokenMalformed, detail.into())
}

/// The decoded payload of a JWT-shaped string, if it is one (unverified).
fn payload(raw: &str) -> Option<serde_json::Value> {
    if raw.len() > MAX_TOKEN_LEN {
        return None;
    }
    let payload = raw.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// Whether `raw` claims to be a registration token (its `aud`), to route it before verification.
pub fn is_registration_token(raw: &str) -> bool {
    payload(raw).is_some_and(|claims| claims.get("aud").and_then(serde_json::Value::as_str) == Some(AUDIENCE))
}

impl PresentedRegistration {
    pub fn parse(raw: &str) -> Result<PresentedRegistration> {
        if raw.len() > MAX_TOKEN_LEN {
            return Err(malformed("the token is longer than 8 KiB"));
        }
        let mut parts = raw.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("a registration token is a JWT: three base64url parts separated by dots"));
        };
        let decode = |part: &str, what: &str| {
            URL_SAFE_NO_PAD.decode(part).map_err(|_| malformed(format!("the token {what} is not base64url")))
        };
        let header: JoseHeader = serde_json::from_slice(&decode(header, "header")?)
            .map_err(|_| malformed("the token header is not a JOSE header with `alg`"))?;
        let claims: Claims = serde_json::from_slice(&decode(payload, "payload")?).map_err(|e| {
            malformed(format!("the token claims are not registration claims (iss, sub, aud, iat, exp): {e}"))
        })?;
        if claims.aud != AUDIENCE {
            return Err(malformed(format!("a registration token's `aud` is {AUDIENCE:?}")));
        }
        let signature = decode(signature, "signature")?;
        let signed_len = header_and_payload_len(raw);
        Ok(PresentedRegistration { signed: raw[..signed_len].to_owned(), signature, header, claims })
    }

    /// The tenant the token names (its `iss`), before any signature check.
    pub async fn issuer(&self, directory: &Directory) -> Result<Arc<Tenant>> {
        let unknown =
            || ClavisError::new(ErrorCode::TokenIssuerUnknown, format!("no tenant with site id {:?}", self.claims.iss));
        let site = SiteId::parse(&self.claims.iss).map_err(|_| unknown())?;
        directory.by_site_id(site).await?.ok_or_else(unknown)
    }

    /// Verify with the tenant's signing keys and times; the policy is the tenant's default narrowed by the token's.
    pub async fn verify(self, keys: &SigningKeys, tenant: Arc<Tenant>) -> Result<VerifiedRegistration> {
        check_signature(keys, &tenant, &self.header, self.signed.as_bytes(), &self.signature).await?;
        let claims = self.claims;
        check_times(&tenant, claims.iat, claims.nbf, claims.exp)?;
        let user_id = UserId::parse(&claims.sub).map_err(|e| recode(e, ErrorCode::TokenMalformed))?;
        let policy = parse_policy(claims.policy.as_deref())?;
        let policy = tenant.settings.default_policy.narrowed_by(&policy);
        Ok(VerifiedRegistration { tenant, user_id, policy })
    }
}

/// Length of `header.payload` (everything before the last dot).
fn header_and_payload_len(raw: &str) -> usize {
    raw.rfind('.').unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn token(claims: serde_json::Value) -> String {
        let key = jsonwebtoken::EncodingKey::from_secret(b"k");
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
    }

    #[test]
    fn registration_tokens_are_told_apart_by_their_audience() {
        let raw = token(serde_json::json!({"iss": "ABCD", "sub": "u", "aud": AUDIENCE, "iat": 1, "exp": 2}));
        assert!(is_registration_token(&raw));
        let parsed = PresentedRegistration::parse(&raw).unwrap();
        assert_eq!(parsed.signed, raw.rsplit_once('.').unwrap().0);
        let license = token(serde_json::json!({"iss": "ABCD", "sub": "u", "cid": "c", "iat": 1, "exp": 2}));
        assert!(!is_registration_token(&license));
        assert_eq!(PresentedRegistration::parse(&license).unwrap_err().code, ErrorCode::TokenMalformed);
        let other = token(serde_json::json!({"iss": "ABCD", "sub": "u", "aud": "x", "iat": 1, "exp": 2}));
        assert_eq!(PresentedRegistration::parse(&other).unwrap_err().code, ErrorCode::TokenMalformed);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(raw in ".{0,600}", a in "[A-Za-z0-9_-]{0,80}", b in "[A-Za-z0-9_-]{0,200}") {
            let _ = is_registration_token(&raw);
            let _ = PresentedRegistration::parse(&raw);
            let jwt = format!("{a}.{b}.{a}");
            let _ = is_registration_token(&jwt);
            let _ = PresentedRegistration::parse(&jwt);
        }
    }
}
