//! License tokens of other DRM services, so a tenant can move to Clavis without touching its backend.
//!
//! Three formats are understood (see `shared/specs/token-formats.md`):
//!
//! | format | header | signature | module |
//! | --- | --- | --- | --- |
//! | PallyCon / DoveRunner license token (v2 policy) | `pallycon-customdata-v2` | SHA-256 hash with the site's access key, policy AES-256-CBC encrypted with the site key | [`pallycon`] |
//! | castLabs DRMtoday upfront authorization token | `x-dt-auth-token` | JWT HS256/384/512, `kid` names the merchant's shared secret | [`drmtoday`] |
//! | Axinom DRM license service message | `X-AxDRM-Message` | JWT HS256 with the communication key named by `com_key_id` | [`axinom`] |
//!
//! Each module parses and verifies its format into typed, documented structs that carry every field the format
//! defines. Mapping those onto Clavis's one policy model is deliberately not done here: it belongs to the license
//! service, which also decides (per tenant setting) which formats a tenant accepts.
//!
//! Everything here parses attacker-controlled input: lengths are bounded ([`MAX_TOKEN_LEN`]), nothing indexes
//! or unwraps, secrets are compared in constant time and never printed by `Debug`.

pub mod axinom;
pub mod drmtoday;
pub mod pallycon;

use std::fmt;

use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::{DateTime, Utc};
use clavis_core::{ClavisError, ErrorCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroize;

/// Longest foreign token accepted. PallyCon tokens carrying external keys for many tracks are the largest seen in
/// practice, a few KiB; this leaves room while bounding the work an attacker can ask for.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The foreign token formats Clavis accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ForeignFormat {
    /// PallyCon / DoveRunner license token: base64 JSON with an encrypted policy and a SHA-256 hash.
    Pallycon,
    /// castLabs DRMtoday upfront authorization token: an HMAC JWT with `optData` and `crt` claims.
    Drmtoday,
    /// Axinom DRM license service message: an HS256 JWT carrying an entitlement message with inline keys.
    Axinom,
}

impl ForeignFormat {
    /// Every format, in a fixed order.
    pub const ALL: [ForeignFormat; 3] = [ForeignFormat::Pallycon, ForeignFormat::Drmtoday, ForeignFormat::Axinom];

    /// The HTTP header that carries a token of this format, spelled as the format's own documentation spells it
    /// (header names are case-insensitive on the wire).
    pub const fn header_name(self) -> &'static str {
        match self {
            ForeignFormat::Pallycon => "pallycon-customdata-v2",
            ForeignFormat::Drmtoday => "x-dt-auth-token",
            ForeignFormat::Axinom => "X-AxDRM-Message",
        }
    }

    /// The query parameter that may carry the token instead of the header (only PallyCon has one; its name is the
    /// header's). For PlayReady a PallyCon token may also sit in the challenge's CustomData.
    pub const fn query_parameter(self) -> Option<&'static str> {
        match self {
            ForeignFormat::Pallycon => Some("pallycon-customdata-v2"),
            ForeignFormat::Drmtoday | ForeignFormat::Axinom => None,
        }
    }

    /// The format whose header this is (case-insensitive), if any.
    pub fn from_header_name(name: &str) -> Option<ForeignFormat> {
        ForeignFormat::ALL.into_iter().find(|format| format.header_name().eq_ignore_ascii_case(name))
    }

    /// A stable lower-case name for settings, logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            ForeignFormat::Pallycon => "pallycon",
            ForeignFormat::Drmtoday => "drmtoday",
            ForeignFormat::Axinom => "axinom",
        }
    }
}

impl fmt::Display for ForeignFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ForeignFormat {
    type Err = ClavisError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ForeignFormat::ALL.into_iter().find(|format| format.as_str() == s).ok_or_else(|| {
            ClavisError::invalid("token_format", format!("{s:?} is not a token format (pallycon, drmtoday, axinom)"))
        })
    }
}

/// A 16-byte content key taken from a foreign token. Its `Debug` never shows the key, and it is wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct ContentKey([u8; 16]);

impl ContentKey {
    pub const fn new(bytes: [u8; 16]) -> ContentKey {
        ContentKey(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContentKey(<redacted>)")
    }
}

impl Drop for ContentKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Standard base64 that accepts input with or without its `=` padding.
pub(crate) const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Constant-time equality (the length is not secret).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Seconds since the epoch as a UTC time, if representable.
pub(crate) fn utc_from_seconds(seconds: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, 0)
}

/// A JWT NumericDate: integer seconds, or a finite fractional number of seconds (floored).
pub(crate) fn numeric_date(number: &serde_json::Number) -> Option<DateTime<Utc>> {
    let seconds = match number.as_i64() {
        Some(seconds) => seconds,
        None => {
            let float = number.as_f64()?;
            // Outside this range chrono cannot represent the date anyway.
            if !float.is_finite() || float.abs() > 1e15 {
                return None;
            }
            float.floor() as i64
        }
    };
    utc_from_seconds(seconds)
}

/// A JSON document's fault: the field path (`a.b[2].c`, empty for the document itself) and serde's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FieldError {
    pub field: String,
    pub detail: String,
}

fn join_path(root: &str, path: &str) -> String {
    match (root.is_empty(), path) {
        (_, "" | ".") => root.to_owned(),
        (true, path) => path.to_owned(),
        (false, path) if path.starts_with('[') => format!("{root}{path}"),
        (false, path) => format!("{root}.{path}"),
    }
}

fn field_error(root: &str, err: serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let path = join_path(root, &err.path().to_string());
    let detail = err.into_inner().to_string();
    // For "missing field `x`" the path is the parent; name the missing field itself.
    let field = match detail.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()) {
        Some(name) => join_path(&path, name),
        None => path,
    };
    FieldError { field, detail }
}

/// Deserialize JSON text, naming the faulty field by its path below `root`.
pub(crate) fn parse_json_at<T: DeserializeOwned>(bytes: &[u8], root: &str) -> Result<T, FieldError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| field_error(root, err))?;
    deserializer.end().map_err(|err| FieldError { field: root.to_owned(), detail: err.to_string() })?;
    Ok(value)
}

/// Deserialize an already parsed JSON value, naming the faulty field by its path below `root`.
pub(crate) fn parse_value_at<T: DeserializeOwned>(value: serde_json::Value, root: &str) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(value).map_err(|err| field_error(root, err))
}

/// A JSON claim that holds a JSON document either as a string (as DRMtoday specifies `optData` and `crt`) or
/// directly.
pub(crate) fn parse_embedded_json<T: DeserializeOwned>(value: serde_json::Value, root: &str) -> Result<T, FieldError> {
    match value {
        serde_json::Value::String(text) => parse_json_at(text.as_bytes(), root),
        other => parse_value_at(other, root),
    }
}

/// The HMAC JWT algorithms the foreign formats use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HmacAlgorithm {
    Hs256,
    Hs384,
    Hs512,
}

impl HmacAlgorithm {
    /// The algorithm a JOSE `alg` names (case-sensitive, as RFC 7515 requires). `none` and every asymmetric
    /// algorithm give `None`.
    pub fn from_jose(alg: &str) -> Option<HmacAlgorithm> {
        match alg {
            "HS256" => Some(HmacAlgorithm::Hs256),
            "HS384" => Some(HmacAlgorithm::Hs384),
            "HS512" => Some(HmacAlgorithm::Hs512),
            _ => None,
        }
    }

    pub const fn jose_name(self) -> &'static str {
        match self {
            HmacAlgorithm::Hs256 => "HS256",
            HmacAlgorithm::Hs384 => "HS384",
            HmacAlgorithm::Hs512 => "HS512",
        }
    }

    fn ring(self) -> ring::hmac::Algorithm {
        match self {
            HmacAlgorithm::Hs256 => ring::hmac::HMAC_SHA256,
            HmacAlgorithm::Hs384 => ring::hmac::HMAC_SHA384,
            HmacAlgorithm::Hs512 => ring::hmac::HMAC_SHA512,
        }
    }

    /// Check `signature` over `signed` with `secret` (ring's constant-time verification).
    pub(crate) fn verify(self, secret: &[u8], signed: &[u8], signature: &[u8]) -> Result<(), ClavisError> {
        if secret.is_empty() {
            // An empty HMAC key is valid to ring but never a configured secret: refuse rather than accept a
            // signature anyone can make.
            return Err(ClavisError::new(ErrorCode::TokenKeyUnknown, "the signing secret is empty"));
        }
        let key = ring::hmac::Key::new(self.ring(), secret);
        ring::hmac::verify(&key, signed, signature)
            .map_err(|_| ClavisError::new(ErrorCode::TokenSignatureInvalid, "the signature does not verify"))
    }
}

impl fmt::Display for HmacAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.jose_name())
    }
}

/// Sign `claims` as a compact JWS with an HMAC algorithm (encoders for tests, fuzzing and the migration docs).
pub(crate) fn sign_compact(
    algorithm: HmacAlgorithm,
    kid: Option<&str>,
    secret: &[u8],
    claims: &serde_json::Value,
) -> String {
    let mut header = serde_json::json!({"alg": algorithm.jose_name(), "typ": "JWT"});
    if let (Some(kid), Some(fields)) = (kid, header.as_object_mut()) {
        fields.insert("kid".into(), kid.into());
    }
    let signed =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let tag = ring::hmac::sign(&ring::hmac::Key::new(algorithm.ring(), secret), signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// The JOSE header fields the foreign JWT formats use.
#[derive(Debug, Deserialize)]
pub(crate) struct JoseHeader {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
    /// Critical extensions: none is understood, so any makes the token unacceptable (RFC 7515 §4.1.11).
    #[serde(default)]
    pub crit: Option<serde_json::Value>,
}

/// A compact JWS split and base64url-decoded, nothing verified yet.
#[derive(Debug)]
pub(crate) struct CompactJwt<'a> {
    /// `header.payload`, the signed part.
    pub signed: &'a str,
    pub header: JoseHeader,
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

impl CompactJwt<'_> {
    /// Split and decode a compact JWS; `what` names the format in error details.
    pub(crate) fn parse<'a>(raw: &'a str, what: &str) -> Result<CompactJwt<'a>, ClavisError> {
        let malformed = |detail: String| ClavisError::new(ErrorCode::TokenMalformed, detail);
        if raw.len() > MAX_TOKEN_LEN {
            return Err(malformed(format!("the {what} is longer than {} KiB", MAX_TOKEN_LEN / 1024)));
        }
        let raw = raw.trim_matches(|c: char| c.is_ascii_whitespace());
        let mut parts = raw.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed(format!("the {what} is a JWT: three base64url parts separated by dots")));
        };
        let decode = |part: &str, name: &str| {
            URL_SAFE_NO_PAD.decode(part).map_err(|_| malformed(format!("the {what} {name} is not base64url")))
        };
        let header_bytes = decode(header, "header")?;
        let header: JoseHeader = parse_json_at(&header_bytes, "")
            .map_err(|e| malformed(format!("the {what} header is not a JOSE header with `alg`: {}", e.detail)))?;
        if header.crit.is_some() {
            return Err(malformed(format!("the {what} header has critical extensions (`crit`), none is supported")));
        }
        let payload = decode(payload, "payload")?;
        let signature = decode(signature, "signature")?;
        let signed = raw.rsplit_once('.').map_or("", |(signed, _)| signed);
        Ok(CompactJwt { signed, header, payload, signature })
    }

    /// The HMAC algorithm the header names, refusing `none` and anything not in `accepted`.
    pub(crate) fn hmac_algorithm(&self, accepted: &[HmacAlgorithm]) -> Result<HmacAlgorithm, ClavisError> {
        let alg = &self.header.alg;
        let names = accepted.iter().map(|a| a.jose_name()).collect::<Vec<_>>().join(", ");
        match HmacAlgorithm::from_jose(alg) {
            Some(found) if accepted.contains(&found) => Ok(found),
            _ => Err(ClavisError::new(
                ErrorCode::TokenSignatureInvalid,
                format!("{alg:?} is not an accepted algorithm ({names})"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_name_their_headers() {
        assert_eq!(ForeignFormat::Pallycon.header_name(), "pallycon-customdata-v2");
        assert_eq!(ForeignFormat::Drmtoday.header_name(), "x-dt-auth-token");
        assert_eq!(ForeignFormat::Axinom.header_name(), "X-AxDRM-Message");
        assert_eq!(ForeignFormat::from_header_name("x-axdrm-message"), Some(ForeignFormat::Axinom));
        assert_eq!(ForeignFormat::from_header_name("X-DT-AUTH-TOKEN"), Some(ForeignFormat::Drmtoday));
        assert_eq!(ForeignFormat::from_header_name("x-clavis-token"), None);
        for format in ForeignFormat::ALL {
            assert_eq!(format.as_str().parse::<ForeignFormat>().unwrap(), format);
        }
        assert!("PallyCon".parse::<ForeignFormat>().is_err());
    }

    #[test]
    fn content_keys_are_not_printed() {
        let key = ContentKey::new([0xab; 16]);
        assert_eq!(format!("{key:?}"), "ContentKey(<redacted>)");
    }

    #[test]
    fn field_paths_are_named() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Inner {
            seconds: u64,
        }
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Outer {
            inner: Inner,
            list: Vec<Inner>,
        }
        let field = |json: &str| parse_json_at::<Outer>(json.as_bytes(), "root").unwrap_err().field;
        assert_eq!(field(r#"{"inner":{"seconds":"x"},"list":[]}"#), "root.inner.seconds");
        assert_eq!(field(r#"{"inner":{},"list":[]}"#), "root.inner.seconds");
        assert_eq!(field(r#"{"inner":{"seconds":1},"list":[{"seconds":-1}]}"#), "root.list[0].seconds");
        assert_eq!(field(r#"{"list":[]}"#), "root.inner");
        assert_eq!(field(r#"{"inner":{"seconds":1},"list":[]} trailing"#), "root");
        let value = serde_json::json!({"inner": {"seconds": true}, "list": []});
        assert_eq!(parse_value_at::<Outer>(value, "").unwrap_err().field, "inner.seconds");
    }

    #[test]
    fn numeric_dates() {
        let n = |json: &str| numeric_date(&serde_json::from_str::<serde_json::Number>(json).unwrap());
        assert_eq!(n("1700000000").unwrap().timestamp(), 1_700_000_000);
        assert_eq!(n("1700000000.9").unwrap().timestamp(), 1_700_000_000);
        assert_eq!(n("1e300"), None);
        assert_eq!(n("18446744073709551615"), None);
    }

    #[test]
    fn jwts_are_split_and_algorithms_checked() {
        let raw = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS384),
            &serde_json::json!({"a": 1}),
            &jsonwebtoken::EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        let jwt = CompactJwt::parse(&raw, "token").unwrap();
        assert_eq!(jwt.signed, raw.rsplit_once('.').unwrap().0);
        let alg = jwt.hmac_algorithm(&[HmacAlgorithm::Hs256, HmacAlgorithm::Hs384]).unwrap();
        assert!(alg.verify(b"secret", jwt.signed.as_bytes(), &jwt.signature).is_ok());
        assert_eq!(
            alg.verify(b"other", jwt.signed.as_bytes(), &jwt.signature).unwrap_err().code,
            ErrorCode::TokenSignatureInvalid
        );
        assert_eq!(
            alg.verify(b"", jwt.signed.as_bytes(), &jwt.signature).unwrap_err().code,
            ErrorCode::TokenKeyUnknown
        );
        assert_eq!(jwt.hmac_algorithm(&[HmacAlgorithm::Hs256]).unwrap_err().code, ErrorCode::TokenSignatureInvalid);
        for bad in ["", "a.b", "a.b.c.d", "!.e30.", "e30.e30.", "eyJhbGciOiJIUzI1NiIsImNyaXQiOlsiYiJdfQ.e30."] {
            assert_eq!(CompactJwt::parse(bad, "token").unwrap_err().code, ErrorCode::TokenMalformed, "{bad}");
        }
    }
}
