//! PallyCon / DoveRunner license tokens (the v2 token with a v1 or v2 policy).
//!
//! The token travels in the `pallycon-customdata-v2` header (or the same-named query parameter, or for PlayReady
//! in the challenge's CustomData). It is standard base64 of a JSON object:
//!
//! ```json
//! {"drm_type":"Widevine","site_id":"TUTO","user_id":"test-user","cid":"bigbuckbunny",
//!  "policy":"<base64 AES-256-CBC of the policy JSON>","timestamp":"2019-07-17T08:57:04Z","hash":"<base64 SHA-256>"}
//! ```
//!
//! * `policy` = base64(AES-256-CBC(PKCS7(policy JSON))), key = the 32-character site key's raw UTF-8 bytes,
//!   IV = the ASCII bytes `0123456789abcdef` ([`POLICY_IV`]). Older integrations name the field `token`.
//! * `hash` = base64(SHA-256(access_key + drm_type + site_id + user_id + cid + policy + timestamp)); the optional
//!   `response_format` and `key_rotation` are not covered.
//! * `timestamp` (`yyyy-mm-ddThh:mm:ssZ`, GMT) starts the token's validity (600 s by default, a per-site setting).
//!
//! Verification order: the hash first (constant-time), then the time window, then the policy is decrypted and
//! parsed into [`PallyconPolicy`] (v2 when `policy_version` is 2, v1 when it is absent). Unknown policy fields are
//! tolerated (PallyCon has more than Clavis reads); a known field of the wrong type is refused, naming its path.
//!
//! Refusals are [`PallyconError`]s that carry PallyCon's numeric codes (for tenants that turn on PallyCon-compatible
//! error answers) and convert to Clavis's catalog with [`PallyconError::to_clavis`].

use std::borrow::Cow;
use std::fmt;

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use clavis_core::{ClavisError, ErrorCode};
use serde::{Deserialize, Deserializer, Serialize};
use zeroize::Zeroize;

use super::{ContentKey, FieldError, MAX_TOKEN_LEN, STANDARD_LENIENT, ct_eq, parse_json_at};

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// The fixed IV PallyCon uses to encrypt the policy.
pub const POLICY_IV: &[u8; 16] = b"0123456789abcdef";

/// PallyCon's default token validity after its `timestamp`, in seconds (a per-site setting).
pub const DEFAULT_TTL_SECONDS: u32 = 600;

/// The `timestamp` format, GMT.
pub const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// The `user_id` PallyCon documents for tokens not tied to a user.
pub const LICENSE_TOKEN_USER: &str = "LICENSETOKEN";

// ---------------------------------------------------------------------------------------------------------------
// Errors

/// Why a PallyCon token was refused. Each variant has PallyCon's numeric code ([`PallyconError::pallycon_code`]),
/// for tenants whose players test for it, and converts to the closest Clavis catalog entry
/// ([`PallyconError::to_clavis`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PallyconError {
    /// 7009: the token is not base64 JSON of the expected shape (`field` names the faulty token field).
    Malformed { field: Option<String>, detail: String },
    /// 7009: the policy does not decrypt with the site key, or its JSON is invalid (`field` is its path below
    /// `policy`).
    PolicyInvalid { field: Option<String>, detail: String },
    /// 7011: `timestamp` + the validity period is past.
    Expired { detail: String },
    /// 7012: the token's `cid` is not the content requested (detected by the caller).
    CidMismatch { token_cid: String, requested_cid: String },
    /// 7016: the token is structurally fine but not acceptable (both `policy` and `token`, bad `site_id`, ...).
    InvalidToken { detail: String },
    /// 7016: `timestamp` lies further in the future than the allowed clock skew.
    NotYetValid { detail: String },
    /// 7018: `drm_type` is not one of PallyCon's (case-sensitive) names.
    InvalidDrmType { value: String },
    /// 7019: the hash does not match (wrong access key, or a field was changed).
    HashMismatch,
    /// 1003: no tenant has the token's `site_id` (detected by the caller).
    SiteNotFound { site_id: String },
    /// 1004: the tenant's service is stopped (detected by the caller).
    ServiceStopped,
}

impl PallyconError {
    /// PallyCon's numeric error code.
    pub const fn pallycon_code(&self) -> u16 {
        match self {
            PallyconError::Malformed { .. } | PallyconError::PolicyInvalid { .. } => 7009,
            PallyconError::Expired { .. } => 7011,
            PallyconError::CidMismatch { .. } => 7012,
            PallyconError::InvalidToken { .. } | PallyconError::NotYetValid { .. } => 7016,
            PallyconError::InvalidDrmType { .. } => 7018,
            PallyconError::HashMismatch => 7019,
            PallyconError::SiteNotFound { .. } => 1003,
            PallyconError::ServiceStopped => 1004,
        }
    }

    /// A short title in PallyCon's style for the code.
    pub const fn title(&self) -> &'static str {
        match self {
            PallyconError::Malformed { .. } | PallyconError::PolicyInvalid { .. } => "Token parse failed",
            PallyconError::Expired { .. } => "Token expired",
            PallyconError::CidMismatch { .. } => "Content ID mismatch",
            PallyconError::InvalidToken { .. } | PallyconError::NotYetValid { .. } => "Invalid token",
            PallyconError::InvalidDrmType { .. } => "Invalid DRM type",
            PallyconError::HashMismatch => "Token hash mismatch",
            PallyconError::SiteNotFound { .. } => "Site not found",
            PallyconError::ServiceStopped => "Service stopped",
        }
    }

    /// The field at fault, when one is known (a token field, or a path inside `policy`).
    pub fn field(&self) -> Option<String> {
        match self {
            PallyconError::Malformed { field, .. } => field.clone(),
            PallyconError::PolicyInvalid { field, .. } => {
                Some(field.as_deref().map_or_else(|| "policy".to_owned(), |f| format!("policy.{f}")))
            }
            PallyconError::InvalidDrmType { .. } => Some("drm_type".to_owned()),
            PallyconError::HashMismatch => Some("hash".to_owned()),
            PallyconError::Expired { .. } | PallyconError::NotYetValid { .. } => Some("timestamp".to_owned()),
            PallyconError::CidMismatch { .. } => Some("cid".to_owned()),
            PallyconError::SiteNotFound { .. } => Some("site_id".to_owned()),
            PallyconError::InvalidToken { .. } | PallyconError::ServiceStopped => None,
        }
    }

    /// The human message: the title and what exactly is wrong.
    pub fn message(&self) -> String {
        let detail: Cow<'_, str> = match self {
            PallyconError::Malformed { detail, .. }
            | PallyconError::PolicyInvalid { detail, .. }
            | PallyconError::Expired { detail }
            | PallyconError::InvalidToken { detail }
            | PallyconError::NotYetValid { detail } => detail.into(),
            PallyconError::CidMismatch { token_cid, requested_cid } => {
                format!("the token is for content {token_cid:?}, not {requested_cid:?}").into()
            }
            PallyconError::InvalidDrmType { value } => {
                format!("{value:?} is not a drm_type (Widevine, PlayReady, FairPlay, NCG, Wiseplay; case-sensitive)")
                    .into()
            }
            PallyconError::HashMismatch => {
                "the hash does not match the token's fields and the site's access key".into()
            }
            PallyconError::SiteNotFound { site_id } => format!("no site {site_id:?}").into(),
            PallyconError::ServiceStopped => "the site's service is stopped".into(),
        };
        format!("{}: {detail}", self.title())
    }

    /// PallyCon's own error answer (sent with HTTP 200 when the tenant turned on compatible errors):
    /// `{"errorCode":"7011","message":"..."}`.
    pub fn compat_body(&self) -> String {
        serde_json::json!({"errorCode": self.pallycon_code().to_string(), "message": self.message()}).to_string()
    }

    /// The closest Clavis catalog entry; the detail keeps PallyCon's code.
    pub fn to_clavis(&self) -> ClavisError {
        let code = match self {
            PallyconError::Malformed { .. }
            | PallyconError::InvalidToken { .. }
            | PallyconError::InvalidDrmType { .. } => ErrorCode::TokenMalformed,
            PallyconError::PolicyInvalid { .. } => ErrorCode::PolicyInvalid,
            PallyconError::Expired { .. } => ErrorCode::TokenExpired,
            PallyconError::NotYetValid { .. } => ErrorCode::TokenNotYetValid,
            PallyconError::HashMismatch => ErrorCode::TokenSignatureInvalid,
            PallyconError::CidMismatch { .. } => ErrorCode::TokenContentMismatch,
            PallyconError::SiteNotFound { .. } => ErrorCode::TokenIssuerUnknown,
            PallyconError::ServiceStopped => ErrorCode::TenantSuspended,
        };
        let detail = format!("PallyCon token {}: {}", self.pallycon_code(), self.message());
        ClavisError { code, detail: detail.into(), field: self.field().map(Cow::Owned) }
    }
}

impl fmt::Display for PallyconError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.pallycon_code(), self.message())
    }
}

impl std::error::Error for PallyconError {}

impl From<PallyconError> for ClavisError {
    fn from(err: PallyconError) -> Self {
        err.to_clavis()
    }
}

fn malformed(field: Option<&str>, detail: impl Into<String>) -> PallyconError {
    PallyconError::Malformed { field: field.map(str::to_owned), detail: detail.into() }
}

fn policy_invalid(err: FieldError) -> PallyconError {
    PallyconError::PolicyInvalid { field: (!err.field.is_empty()).then_some(err.field), detail: err.detail }
}

// ---------------------------------------------------------------------------------------------------------------
// Secrets

/// A PallyCon site's secrets: the 32-character site key (encrypts the policy) and the access key (salts the hash).
/// `Debug` never prints them; they are wiped on drop.
#[derive(Clone)]
pub struct PallyconSecrets {
    site_key: [u8; 32],
    access_key: String,
}

impl PallyconSecrets {
    /// The site key is used as its raw UTF-8 bytes and must be exactly 32 of them.
    pub fn new(site_key: &str, access_key: impl Into<String>) -> Result<PallyconSecrets, ClavisError> {
        let site_key: [u8; 32] = site_key
            .as_bytes()
            .try_into()
            .map_err(|_| ClavisError::invalid("site_key", "a PallyCon site key is 32 characters (32 bytes)"))?;
        let access_key = access_key.into();
        if access_key.is_empty() {
            return Err(ClavisError::invalid("access_key", "a PallyCon access key must not be empty"));
        }
        Ok(PallyconSecrets { site_key, access_key })
    }
}

impl fmt::Debug for PallyconSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PallyconSecrets { site_key: <redacted>, access_key: <redacted> }")
    }
}

impl Drop for PallyconSecrets {
    fn drop(&mut self) {
        self.site_key.zeroize();
        self.access_key.zeroize();
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The token

/// PallyCon's DRM names (`drm_type`), case-sensitive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PallyconDrmType {
    Widevine,
    PlayReady,
    FairPlay,
    /// INKA's NCG DRM.
    #[serde(rename = "NCG")]
    Ncg,
    /// Huawei's Wiseplay.
    Wiseplay,
}

impl PallyconDrmType {
    pub const ALL: [PallyconDrmType; 5] = [
        PallyconDrmType::Widevine,
        PallyconDrmType::PlayReady,
        PallyconDrmType::FairPlay,
        PallyconDrmType::Ncg,
        PallyconDrmType::Wiseplay,
    ];

    /// The name as it appears in the token (and in the hash).
    pub const fn as_str(self) -> &'static str {
        match self {
            PallyconDrmType::Widevine => "Widevine",
            PallyconDrmType::PlayReady => "PlayReady",
            PallyconDrmType::FairPlay => "FairPlay",
            PallyconDrmType::Ncg => "NCG",
            PallyconDrmType::Wiseplay => "Wiseplay",
        }
    }

    /// Exact (case-sensitive) match of PallyCon's name.
    pub fn parse(name: &str) -> Option<PallyconDrmType> {
        PallyconDrmType::ALL.into_iter().find(|drm| drm.as_str() == name)
    }
}

impl Default for PallyconDrmType {
    /// PallyCon's default when `drm_type` is absent.
    fn default() -> Self {
        PallyconDrmType::PlayReady
    }
}

impl fmt::Display for PallyconDrmType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `response_format`: how the license answer is shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseFormat {
    /// The DRM's license bytes only (PallyCon's default).
    Original,
    /// A JSON object with the license and metadata.
    Json,
}

impl ResponseFormat {
    pub const fn as_str(self) -> &'static str {
        match self {
            ResponseFormat::Original => "original",
            ResponseFormat::Json => "json",
        }
    }
}

/// The token field that carried the encrypted policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyFieldName {
    /// `policy`, the current name.
    Policy,
    /// `token`, the legacy name.
    Token,
}

/// The token as presented, decoded but not verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PallyconToken {
    /// `drm_type` ([`PallyconDrmType::PlayReady`] when absent).
    pub drm_type: PallyconDrmType,
    /// Whether `drm_type` was present; when absent, the hash is computed over the default's name.
    pub drm_type_present: bool,
    /// `site_id`: the tenant, four upper-case letters.
    pub site_id: String,
    /// `user_id` (or [`LICENSE_TOKEN_USER`]).
    pub user_id: String,
    /// `cid`: the content id.
    pub cid: String,
    /// The encrypted policy (base64), as presented.
    pub policy: String,
    /// Which field carried the policy (`policy` or the legacy `token`).
    pub policy_field: PolicyFieldName,
    /// `timestamp` as presented (the hash covers the exact text).
    pub timestamp: String,
    /// `hash` as presented (base64).
    pub hash: String,
    /// `response_format`, when present.
    pub response_format: Option<ResponseFormat>,
    /// `key_rotation` (false when absent).
    pub key_rotation: bool,
}

/// The token's JSON as presented.
#[derive(Deserialize)]
struct RawToken {
    #[serde(default)]
    drm_type: Option<String>,
    site_id: String,
    user_id: String,
    cid: String,
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    token: Option<String>,
    timestamp: String,
    hash: String,
    #[serde(default)]
    response_format: Option<String>,
    #[serde(default)]
    key_rotation: Option<bool>,
}

/// A verified token: the fields, the time window and the decrypted, parsed policy.
#[derive(Clone, Debug, PartialEq)]
pub struct PallyconClaims {
    pub drm_type: PallyconDrmType,
    pub site_id: String,
    pub user_id: String,
    pub cid: String,
    /// `timestamp`, parsed.
    pub issued_at: DateTime<Utc>,
    /// `timestamp` + the validity period used for verification.
    pub expires_at: DateTime<Utc>,
    pub response_format: Option<ResponseFormat>,
    pub key_rotation: bool,
    /// The policy, typed.
    pub policy: PallyconPolicy,
    /// The decrypted policy JSON, for fields Clavis does not type (PallyCon has more).
    pub policy_json: String,
}

impl PallyconToken {
    /// Decode a token as presented (surrounding ASCII whitespace is ignored; padding is optional).
    pub fn parse(raw: &str) -> Result<PallyconToken, PallyconError> {
        if raw.len() > MAX_TOKEN_LEN {
            return Err(malformed(None, format!("the token is longer than {} KiB", MAX_TOKEN_LEN / 1024)));
        }
        let raw = raw.trim_matches(|c: char| c.is_ascii_whitespace());
        let json = STANDARD_LENIENT.decode(raw).map_err(|_| malformed(None, "the token is not standard base64"))?;
        let token: RawToken = parse_json_at(&json, "").map_err(|e| {
            malformed(
                (!e.field.is_empty()).then_some(e.field.as_str()),
                format!("the token is not PallyCon token JSON: {}", e.detail),
            )
        })?;

        let drm_type_present = token.drm_type.is_some();
        let drm_type = match token.drm_type {
            None => PallyconDrmType::default(),
            Some(name) => PallyconDrmType::parse(&name).ok_or(PallyconError::InvalidDrmType { value: name })?,
        };
        let (policy, policy_field) = match (token.policy, token.token) {
            (Some(policy), None) => (policy, PolicyFieldName::Policy),
            (None, Some(policy)) => (policy, PolicyFieldName::Token),
            (Some(_), Some(_)) => {
                return Err(PallyconError::InvalidToken {
                    detail: "the token has both `policy` and its legacy name `token`; send one".into(),
                });
            }
            (None, None) => return Err(malformed(Some("policy"), "the token has no `policy`")),
        };
        let site = token.site_id.as_bytes();
        if site.len() != 4 || !site.iter().all(u8::is_ascii_uppercase) {
            return Err(PallyconError::InvalidToken { detail: "`site_id` must be four upper-case letters".into() });
        }
        if token.user_id.is_empty() {
            return Err(PallyconError::InvalidToken { detail: "`user_id` must not be empty".into() });
        }
        if token.cid.is_empty() {
            return Err(PallyconError::InvalidToken { detail: "`cid` must not be empty".into() });
        }
        let response_format = match token.response_format.as_deref() {
            None => None,
            Some("original") => Some(ResponseFormat::Original),
            Some("json") => Some(ResponseFormat::Json),
            Some(other) => {
                return Err(PallyconError::InvalidToken {
                    detail: format!("{other:?} is not a response_format (original, json)"),
                });
            }
        };
        Ok(PallyconToken {
            drm_type,
            drm_type_present,
            site_id: token.site_id,
            user_id: token.user_id,
            cid: token.cid,
            policy,
            policy_field,
            timestamp: token.timestamp,
            hash: token.hash,
            response_format,
            key_rotation: token.key_rotation.unwrap_or(false),
        })
    }

    /// Verify the token with its site's secrets at `now`.
    ///
    /// The hash is checked first (constant-time). The token is expired when `now` > timestamp + `ttl_seconds`, and
    /// refused as not yet valid when its timestamp is more than `future_skew_seconds` ahead of `now`. Then the policy
    /// is decrypted and parsed.
    pub fn verify(
        &self,
        secrets: &PallyconSecrets,
        now: DateTime<Utc>,
        ttl_seconds: u32,
        future_skew_seconds: u32,
    ) -> Result<PallyconClaims, PallyconError> {
        let expected =
            hash_digest(secrets, self.drm_type, &self.site_id, &self.user_id, &self.cid, &self.policy, &self.timestamp);
        let presented = STANDARD_LENIENT.decode(self.hash.trim()).unwrap_or_default();
        if !ct_eq(expected.as_ref(), &presented) {
            return Err(PallyconError::HashMismatch);
        }

        let issued_at = parse_timestamp(&self.timestamp)
            .ok_or_else(|| malformed(Some("timestamp"), "`timestamp` must be yyyy-mm-ddThh:mm:ssZ (GMT)"))?;
        let expires_at = issued_at
            .checked_add_signed(TimeDelta::seconds(i64::from(ttl_seconds)))
            .ok_or_else(|| malformed(Some("timestamp"), "`timestamp` is out of range"))?;
        if now > expires_at {
            return Err(PallyconError::Expired {
                detail: format!("the token's timestamp {} is more than {ttl_seconds} s ago", self.timestamp),
            });
        }
        if issued_at.signed_duration_since(now) > TimeDelta::seconds(i64::from(future_skew_seconds)) {
            return Err(PallyconError::NotYetValid {
                detail: format!(
                    "the token's timestamp {} is more than {future_skew_seconds} s in the future",
                    self.timestamp
                ),
            });
        }

        let policy_json = decrypt_policy(secrets, &self.policy)?;
        let policy = PallyconPolicy::parse(policy_json.as_bytes())?;
        Ok(PallyconClaims {
            drm_type: self.drm_type,
            site_id: self.site_id.clone(),
            user_id: self.user_id.clone(),
            cid: self.cid.clone(),
            issued_at,
            expires_at,
            response_format: self.response_format,
            key_rotation: self.key_rotation,
            policy,
            policy_json,
        })
    }
}

/// `yyyy-mm-ddThh:mm:ssZ`, exactly.
fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let bytes = text.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:ddZ";
    if bytes.len() != shape.len()
        || !bytes.iter().zip(shape).all(|(b, s)| if *s == b'd' { b.is_ascii_digit() } else { b == s })
    {
        return None;
    }
    NaiveDateTime::parse_from_str(text, TIMESTAMP_FORMAT).ok().map(|naive| naive.and_utc())
}

fn hash_digest(
    secrets: &PallyconSecrets,
    drm_type: PallyconDrmType,
    site_id: &str,
    user_id: &str,
    cid: &str,
    policy: &str,
    timestamp: &str,
) -> ring::digest::Digest {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [secrets.access_key.as_str(), drm_type.as_str(), site_id, user_id, cid, policy, timestamp] {
        context.update(part.as_bytes());
    }
    context.finish()
}

/// The token's `hash`: base64(SHA-256(access_key + drm_type + site_id + user_id + cid + policy + timestamp)).
pub fn token_hash(
    secrets: &PallyconSecrets,
    drm_type: PallyconDrmType,
    site_id: &str,
    user_id: &str,
    cid: &str,
    policy: &str,
    timestamp: &str,
) -> String {
    STANDARD.encode(hash_digest(secrets, drm_type, site_id, user_id, cid, policy, timestamp))
}

/// Encrypt a policy JSON as PallyCon does: base64(AES-256-CBC(PKCS7(json))), site key, [`POLICY_IV`].
pub fn encrypt_policy(secrets: &PallyconSecrets, policy_json: &str) -> String {
    let cipher = Aes256CbcEnc::new(&secrets.site_key.into(), &(*POLICY_IV).into());
    STANDARD.encode(cipher.encrypt_padded_vec_mut::<Pkcs7>(policy_json.as_bytes()))
}

/// Decrypt a token's policy into its JSON text.
pub fn decrypt_policy(secrets: &PallyconSecrets, policy: &str) -> Result<String, PallyconError> {
    let unreadable = |detail: &str| PallyconError::PolicyInvalid { field: None, detail: detail.to_owned() };
    let ciphertext = STANDARD_LENIENT.decode(policy.trim()).map_err(|_| unreadable("the policy is not base64"))?;
    if ciphertext.is_empty() || ciphertext.len() % 16 != 0 {
        return Err(unreadable("the policy is not AES-256-CBC ciphertext (a non-empty multiple of 16 bytes)"));
    }
    let cipher = Aes256CbcDec::new(&secrets.site_key.into(), &(*POLICY_IV).into());
    let plaintext = cipher
        .decrypt_padded_vec_mut::<Pkcs7>(&ciphertext)
        .map_err(|_| unreadable("the policy does not decrypt with the site key (bad padding)"))?;
    String::from_utf8(plaintext).map_err(|_| unreadable("the decrypted policy is not UTF-8"))
}

#[derive(Serialize)]
struct EncodedToken<'a> {
    drm_type: &'a str,
    site_id: &'a str,
    user_id: &'a str,
    cid: &'a str,
    policy: &'a str,
    timestamp: &'a str,
    hash: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<&'a str>,
}

/// Build a token as PallyCon's tutorial code does (for tests and the migration docs): encrypt the policy, hash,
/// and base64 the JSON (fields in the tutorial's order, padded standard base64).
#[allow(clippy::too_many_arguments)]
pub fn encode_token(
    secrets: &PallyconSecrets,
    drm_type: PallyconDrmType,
    site_id: &str,
    user_id: &str,
    cid: &str,
    policy_json: &str,
    timestamp: DateTime<Utc>,
    response_format: Option<ResponseFormat>,
) -> String {
    let policy = encrypt_policy(secrets, policy_json);
    let timestamp = timestamp.format(TIMESTAMP_FORMAT).to_string();
    let hash = token_hash(secrets, drm_type, site_id, user_id, cid, &policy, &timestamp);
    let token = EncodedToken {
        drm_type: drm_type.as_str(),
        site_id,
        user_id,
        cid,
        policy: &policy,
        timestamp: &timestamp,
        hash: &hash,
        response_format: response_format.map(ResponseFormat::as_str),
    };
    // Serializing a struct of strings cannot fail.
    STANDARD.encode(serde_json::to_vec(&token).unwrap_or_default())
}

// ---------------------------------------------------------------------------------------------------------------
// Policies

/// A token's decrypted policy: v2 when `policy_version` is 2, v1 when it is absent (or 1).
#[derive(Clone, Debug, PartialEq)]
pub enum PallyconPolicy {
    V1(PolicyV1),
    V2(PolicyV2),
}

#[derive(Deserialize)]
struct VersionProbe {
    #[serde(default)]
    policy_version: Option<serde_json::Value>,
}

impl PallyconPolicy {
    /// Parse a decrypted policy JSON.
    pub fn parse(json: &[u8]) -> Result<PallyconPolicy, PallyconError> {
        let probe: VersionProbe = parse_json_at(json, "").map_err(policy_invalid)?;
        match probe.policy_version.as_ref().map(|v| v.as_u64()) {
            None | Some(Some(1)) => parse_json_at(json, "").map(PallyconPolicy::V1).map_err(policy_invalid),
            Some(Some(2)) => parse_json_at(json, "").map(PallyconPolicy::V2).map_err(policy_invalid),
            Some(_) => Err(PallyconError::PolicyInvalid {
                field: Some("policy_version".into()),
                detail: "`policy_version` must be 2 (or absent for a v1 policy)".into(),
            }),
        }
    }

    /// The version number (1 or 2).
    pub const fn version(&self) -> u8 {
        match self {
            PallyconPolicy::V1(_) => 1,
            PallyconPolicy::V2(_) => 2,
        }
    }
}

/// A PallyCon date (`expire_date`): `yyyy-mm-ddThh:mm:ssZ`, GMT. `null` and `""` mean none.
fn pallycon_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let text: Option<String> = Option::deserialize(deserializer)?;
    match text.as_deref() {
        None | Some("") => Ok(None),
        Some(text) => parse_timestamp(text)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a date yyyy-mm-ddThh:mm:ssZ"))),
    }
}

/// 16 bytes given as 32 hex digits (key ids, keys, IVs). `Debug` shows the hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hex16(pub [u8; 16]);

impl fmt::Debug for Hex16 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hex16({})", hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for Hex16 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(&text, &mut bytes)
            .map_err(|_| serde::de::Error::custom("expected 32 hexadecimal digits (16 bytes)"))?;
        Ok(Hex16(bytes))
    }
}

/// A content key given as 32 hex digits; `Debug` never shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HexKey(pub ContentKey);

impl<'de> Deserialize<'de> for HexKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut text = String::deserialize(deserializer)?;
        let mut bytes = [0u8; 16];
        let decoded = hex::decode_to_slice(&text, &mut bytes);
        text.zeroize();
        decoded.map_err(|_| serde::de::Error::custom("expected 32 hexadecimal digits (16 bytes)"))?;
        let key = HexKey(ContentKey::new(bytes));
        bytes.zeroize();
        Ok(key)
    }
}

/// A CENC IV: 8 or 16 bytes as hex.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HexIv(pub Vec<u8>);

impl<'de> Deserialize<'de> for HexIv {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match hex::decode(&text) {
            Ok(bytes) if bytes.len() == 8 || bytes.len() == 16 => Ok(HexIv(bytes)),
            _ => Err(serde::de::Error::custom("expected 16 or 32 hexadecimal digits (an 8- or 16-byte IV)")),
        }
    }
}

/// Which tracks a licence may cover (`allowed_track_types`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum AllowedTrackTypes {
    #[default]
    #[serde(rename = "ALL")]
    All,
    #[serde(rename = "SD_ONLY")]
    SdOnly,
    #[serde(rename = "SD_HD")]
    SdHd,
    #[serde(rename = "SD_UHD1")]
    SdUhd1,
    #[serde(rename = "SD_UHD2")]
    SdUhd2,
}

/// The tracks a security policy or external key applies to (`track_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum TrackType {
    #[default]
    #[serde(rename = "ALL")]
    All,
    #[serde(rename = "ALL_VIDEO")]
    AllVideo,
    #[serde(rename = "AUDIO")]
    Audio,
    #[serde(rename = "SD")]
    Sd,
    #[serde(rename = "HD")]
    Hd,
    #[serde(rename = "UHD1")]
    Uhd1,
    #[serde(rename = "UHD2")]
    Uhd2,
}

/// v2 policy (`"policy_version": 2`). Omitted fields take PallyCon's defaults.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PolicyV2 {
    pub playback_policy: PlaybackPolicyV2,
    /// Per-track security rules, in order.
    pub security_policy: Vec<SecurityPolicyV2>,
    pub external_key: ExternalKeyV2,
}

/// v2 `playback_policy`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct PlaybackPolicyV2 {
    /// Persistent (offline) licence allowed.
    pub persistent: bool,
    /// Licence validity in seconds from issuance; 0 = unlimited.
    pub license_duration: u64,
    /// Absolute licence end (GMT), when set.
    #[serde(deserialize_with = "pallycon_date")]
    pub expire_date: Option<DateTime<Utc>>,
    /// Rental period in seconds; 0 = none.
    pub rental_duration: u64,
    /// Playback period in seconds after first play; 0 = none.
    pub playback_duration: u64,
    pub allowed_track_types: AllowedTrackTypes,
    /// Concurrent streams per user; 0 = unlimited.
    pub max_stream_per_user: u32,
    /// Licence renewal interval in seconds; 0 = no renewal.
    pub renewal_duration: u64,
}

/// One v2 `security_policy` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SecurityPolicyV2 {
    pub track_type: TrackType,
    pub widevine: WidevineSecurity,
    pub playready: PlayreadySecurity,
    pub fairplay: FairplaySecurity,
}

/// Widevine security level 1 (software) to 5 (hardware, all secure).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "u8")]
pub struct WidevineSecurityLevel(u8);

impl WidevineSecurityLevel {
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl Default for WidevineSecurityLevel {
    fn default() -> Self {
        WidevineSecurityLevel(1)
    }
}

impl TryFrom<u8> for WidevineSecurityLevel {
    type Error = String;

    fn try_from(level: u8) -> Result<Self, Self::Error> {
        if (1..=5).contains(&level) {
            Ok(WidevineSecurityLevel(level))
        } else {
            Err(format!("{level} is not a Widevine security level (1 to 5)"))
        }
    }
}

/// Widevine `required_hdcp_version`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum HdcpVersion {
    #[default]
    #[serde(rename = "HDCP_NONE")]
    None,
    #[serde(rename = "HDCP_V1")]
    V1,
    #[serde(rename = "HDCP_V2")]
    V2,
    #[serde(rename = "HDCP_V2_1")]
    V2_1,
    #[serde(rename = "HDCP_V2_2")]
    V2_2,
    #[serde(rename = "HDCP_V2_3")]
    V2_3,
    #[serde(rename = "HDCP_NO_DIGITAL_OUTPUT")]
    NoDigitalOutput,
}

/// Widevine `required_cgms_flags`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum CgmsFlags {
    #[default]
    #[serde(rename = "CGMS_NONE")]
    None,
    #[serde(rename = "COPY_FREE")]
    CopyFree,
    #[serde(rename = "COPY_ONCE")]
    CopyOnce,
    #[serde(rename = "COPY_NEVER")]
    CopyNever,
}

/// Widevine `hdcp_srm_rule`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum HdcpSrmRule {
    #[default]
    #[serde(rename = "HDCP_SRM_RULE_NONE")]
    None,
    #[serde(rename = "CURRENT_SRM")]
    CurrentSrm,
}

/// v2 `security_policy[].widevine`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct WidevineSecurity {
    pub security_level: WidevineSecurityLevel,
    pub required_hdcp_version: HdcpVersion,
    pub required_cgms_flags: CgmsFlags,
    pub disable_analog_output: bool,
    pub hdcp_srm_rule: HdcpSrmRule,
    pub override_device_revocation: bool,
    pub enable_license_cipher: bool,
}

/// PlayReady security level: 150, 2000 or 3000.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "u16")]
pub struct PlayreadySecurityLevel(u16);

impl PlayreadySecurityLevel {
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl Default for PlayreadySecurityLevel {
    fn default() -> Self {
        PlayreadySecurityLevel(150)
    }
}

impl TryFrom<u16> for PlayreadySecurityLevel {
    type Error = String;

    fn try_from(level: u16) -> Result<Self, Self::Error> {
        match level {
            150 | 2000 | 3000 => Ok(PlayreadySecurityLevel(level)),
            _ => Err(format!("{level} is not a PlayReady security level (150, 2000, 3000)")),
        }
    }
}

/// v2 `security_policy[].playready`. Protection levels are PlayReady's output protection levels (OPL).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct PlayreadySecurity {
    pub security_level: PlayreadySecurityLevel,
    pub digital_video_protection_level: u16,
    pub analog_video_protection_level: u16,
    pub digital_audio_protection_level: u16,
    pub require_hdcp_type_1: bool,
}

impl Default for PlayreadySecurity {
    fn default() -> Self {
        PlayreadySecurity {
            security_level: PlayreadySecurityLevel::default(),
            digital_video_protection_level: 100,
            analog_video_protection_level: 100,
            digital_audio_protection_level: 100,
            require_hdcp_type_1: false,
        }
    }
}

/// FairPlay `hdcp_enforcement`: -1 (no HDCP required), 0 (HDCP type 0), 1 (HDCP type 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "i8")]
pub struct FairplayHdcp(i8);

impl FairplayHdcp {
    pub const fn get(self) -> i8 {
        self.0
    }
}

impl Default for FairplayHdcp {
    fn default() -> Self {
        FairplayHdcp(-1)
    }
}

impl TryFrom<i8> for FairplayHdcp {
    type Error = String;

    fn try_from(value: i8) -> Result<Self, Self::Error> {
        if (-1..=1).contains(&value) {
            Ok(FairplayHdcp(value))
        } else {
            Err(format!("{value} is not a FairPlay hdcp_enforcement (-1, 0, 1)"))
        }
    }
}

/// v2 `security_policy[].fairplay`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct FairplaySecurity {
    pub hdcp_enforcement: FairplayHdcp,
    pub allow_airplay: bool,
    pub allow_av_adapter: bool,
}

impl Default for FairplaySecurity {
    fn default() -> Self {
        FairplaySecurity { hdcp_enforcement: FairplayHdcp::default(), allow_airplay: true, allow_av_adapter: true }
    }
}

/// v2 `external_key`: keys the tenant supplies instead of Clavis's (lowercase hex).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ExternalKeyV2 {
    pub mpeg_cenc: Vec<MpegCencKey>,
    pub hls_aes: Vec<HlsAesKey>,
}

/// An `external_key.mpeg_cenc` entry (in v1 a single object without `track_type`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct MpegCencKey {
    #[serde(default)]
    pub track_type: TrackType,
    pub key_id: Hex16,
    pub key: HexKey,
    #[serde(default)]
    pub iv: Option<HexIv>,
}

/// An `external_key.hls_aes` entry (in v1 a single object without `track_type`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct HlsAesKey {
    #[serde(default)]
    pub track_type: TrackType,
    pub key: HexKey,
    pub iv: Hex16,
    #[serde(default)]
    pub key_id: Option<Hex16>,
}

/// v1 policy (no `policy_version`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PolicyV1 {
    pub playback_policy: PlaybackPolicyV1,
    pub security_policy: SecurityPolicyV1,
    pub external_key: ExternalKeyV1,
}

/// v1 `playback_policy`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct PlaybackPolicyV1 {
    /// Whether the licence is limited in time (by `duration` or `expire_date`); false = unlimited.
    pub limit: bool,
    /// Persistent (offline) licence allowed.
    pub persistent: bool,
    /// Licence validity in seconds (when `limit`).
    pub duration: u64,
    /// Absolute licence end (GMT), when set (and `limit`).
    #[serde(deserialize_with = "pallycon_date")]
    pub expire_date: Option<DateTime<Utc>>,
}

/// v1 `security_policy`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SecurityPolicyV1 {
    /// Require hardware DRM (Widevine L1, PlayReady SL3000).
    pub hardware_drm: bool,
    pub output_protect: OutputProtectV1,
    /// Allow rooted / jailbroken mobile devices.
    pub allow_mobile_abnormal_device: bool,
    pub playready_security_level: PlayreadySecurityLevel,
}

/// v1 `security_policy.output_protect`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct OutputProtectV1 {
    pub allow_external_display: bool,
    /// 0 = no HDCP, 1 = HDCP 1.4, 2 = HDCP 2.2.
    pub control_hdcp: u8,
    pub allow_mobile_screen_capture: bool,
}

/// v1 `external_key`: single objects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ExternalKeyV1 {
    pub mpeg_cenc: Option<MpegCencKey>,
    pub hls_aes: Option<HlsAesKey>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SITE_KEY: &str = "lU5D8s3PWoLls3PWFWkClULlFWk5D8oC";
    const ACCESS_KEY: &str = "LT2FVJDp2Xr018zf4Di6lzvNOv3DKP20";
    const TUTORIAL_POLICY: &str = r#"{"playback_policy":{"limit":true,"persistent":false,"duration":3600}}"#;
    const TUTORIAL_CIPHERTEXT: &str =
        "bO9DzyQgtgfbSDWmqGgZXWZdWm7M4oZ4X0hC1hS6QNraiwLI0LwmNY+OfOh1L0KmtuH7NF1blUxep9YLWrNfSy4H/6swQW7pbjZnRqRguDQ=";
    const TUTORIAL_HASH: &str = "0Zef3WHBbzQAR0oGf5KXn25G1TmvB2Bkvzv+7OqIWvQ=";

    fn secrets() -> PallyconSecrets {
        PallyconSecrets::new(SITE_KEY, ACCESS_KEY).unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        parse_timestamp(text).unwrap()
    }

    fn encode(policy: &str, timestamp: &str) -> String {
        encode_token(
            &secrets(),
            PallyconDrmType::Widevine,
            "TUTO",
            "test-user",
            "bigbuckbunny",
            policy,
            at(timestamp),
            None,
        )
    }

    /// Re-encode a token's JSON after editing it (the hash is left as it was).
    fn edit(token: &str, change: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> String {
        let mut json: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&STANDARD.decode(token).unwrap()).unwrap();
        change(&mut json);
        STANDARD.encode(serde_json::to_vec(&json).unwrap())
    }

    /// Re-hash a token's fields after editing them, as a tenant backend would.
    fn rehash(token: &str) -> String {
        let parsed = PallyconToken::parse(token).unwrap();
        let hash = token_hash(
            &secrets(),
            parsed.drm_type,
            &parsed.site_id,
            &parsed.user_id,
            &parsed.cid,
            &parsed.policy,
            &parsed.timestamp,
        );
        edit(token, |json| {
            json.insert("hash".into(), hash.into());
        })
    }

    #[test]
    fn tutorial_vector_reproduces_policy_and_hash() {
        let policy = encrypt_policy(&secrets(), TUTORIAL_POLICY);
        assert_eq!(policy, TUTORIAL_CIPHERTEXT);
        let hash = token_hash(
            &secrets(),
            PallyconDrmType::Widevine,
            "TUTO",
            "test-user",
            "bigbuckbunny",
            &policy,
            "2019-07-17T08:57:04Z",
        );
        assert_eq!(hash, TUTORIAL_HASH);
        assert_eq!(decrypt_policy(&secrets(), TUTORIAL_CIPHERTEXT).unwrap(), TUTORIAL_POLICY);

        let token = encode(TUTORIAL_POLICY, "2019-07-17T08:57:04Z");
        let decoded: serde_json::Value = serde_json::from_slice(&STANDARD.decode(&token).unwrap()).unwrap();
        assert_eq!(decoded["policy"], TUTORIAL_CIPHERTEXT);
        assert_eq!(decoded["hash"], TUTORIAL_HASH);
        assert_eq!(decoded["drm_type"], "Widevine");

        let parsed = PallyconToken::parse(&token).unwrap();
        assert_eq!(parsed.policy_field, PolicyFieldName::Policy);
        let claims = parsed.verify(&secrets(), at("2019-07-17T09:00:00Z"), DEFAULT_TTL_SECONDS, 60).unwrap();
        assert_eq!(claims.site_id, "TUTO");
        assert_eq!(claims.user_id, "test-user");
        assert_eq!(claims.cid, "bigbuckbunny");
        assert_eq!(claims.drm_type, PallyconDrmType::Widevine);
        assert_eq!(claims.issued_at, at("2019-07-17T08:57:04Z"));
        assert_eq!(claims.expires_at, at("2019-07-17T09:07:04Z"));
        assert_eq!(claims.policy_json, TUTORIAL_POLICY);
        let PallyconPolicy::V1(policy) = claims.policy else { panic!("a v1 policy") };
        assert_eq!(
            policy.playback_policy,
            PlaybackPolicyV1 { limit: true, persistent: false, duration: 3600, expire_date: None }
        );
        assert_eq!(policy.security_policy, SecurityPolicyV1::default());
    }

    #[test]
    fn unpadded_tokens_and_hashes_are_accepted() {
        let token = encode(TUTORIAL_POLICY, "2019-07-17T08:57:04Z");
        let token = edit(&token, |json| {
            json.insert("hash".into(), TUTORIAL_HASH.trim_end_matches('=').into());
        });
        let parsed = PallyconToken::parse(&format!(" {} \n", token.trim_end_matches('='))).unwrap();
        assert!(parsed.verify(&secrets(), at("2019-07-17T08:57:04Z"), 600, 0).is_ok());
    }

    #[test]
    fn v2_policy_with_every_field() {
        let policy = r#"{
            "policy_version": 2,
            "playback_policy": {
                "persistent": true, "license_duration": 86400, "expire_date": "2030-01-02T03:04:05Z",
                "rental_duration": 172800, "playback_duration": 7200, "allowed_track_types": "SD_UHD1",
                "max_stream_per_user": 3, "renewal_duration": 300, "future_field": {"x": 1}
            },
            "security_policy": [
                {
                    "track_type": "HD",
                    "widevine": {
                        "security_level": 5, "required_hdcp_version": "HDCP_V2_2", "required_cgms_flags": "COPY_NEVER",
                        "disable_analog_output": true, "hdcp_srm_rule": "CURRENT_SRM",
                        "override_device_revocation": true, "enable_license_cipher": true
                    },
                    "playready": {
                        "security_level": 3000, "digital_video_protection_level": 300,
                        "analog_video_protection_level": 200, "digital_audio_protection_level": 250,
                        "require_hdcp_type_1": true
                    },
                    "fairplay": {"hdcp_enforcement": 1, "allow_airplay": false, "allow_av_adapter": false},
                    "ncg": {"allow_mobile_abnormal_device": false}
                },
                {"track_type": "AUDIO"}
            ],
            "external_key": {
                "mpeg_cenc": [{"track_type": "ALL_VIDEO", "key_id": "00112233445566778899aabbccddeeff",
                               "key": "ffeeddccbbaa99887766554433221100", "iv": "0123456789abcdef"}],
                "hls_aes": [{"track_type": "ALL", "key": "000102030405060708090a0b0c0d0e0f",
                             "iv": "0f0e0d0c0b0a09080706050403020100", "key_id": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}]
            }
        }"#;
        let token = encode(policy, "2024-05-01T12:00:00Z");
        let claims =
            PallyconToken::parse(&token).unwrap().verify(&secrets(), at("2024-05-01T12:05:00Z"), 600, 60).unwrap();
        let PallyconPolicy::V2(policy) = claims.policy else { panic!("a v2 policy") };
        assert_eq!(
            policy.playback_policy,
            PlaybackPolicyV2 {
                persistent: true,
                license_duration: 86400,
                expire_date: Some(at("2030-01-02T03:04:05Z")),
                rental_duration: 172800,
                playback_duration: 7200,
                allowed_track_types: AllowedTrackTypes::SdUhd1,
                max_stream_per_user: 3,
                renewal_duration: 300,
            }
        );
        assert_eq!(policy.security_policy.len(), 2);
        let hd = &policy.security_policy[0];
        assert_eq!(hd.track_type, TrackType::Hd);
        assert_eq!(
            hd.widevine,
            WidevineSecurity {
                security_level: WidevineSecurityLevel(5),
                required_hdcp_version: HdcpVersion::V2_2,
                required_cgms_flags: CgmsFlags::CopyNever,
                disable_analog_output: true,
                hdcp_srm_rule: HdcpSrmRule::CurrentSrm,
                override_device_revocation: true,
                enable_license_cipher: true,
            }
        );
        assert_eq!(
            hd.playready,
            PlayreadySecurity {
                security_level: PlayreadySecurityLevel(3000),
                digital_video_protection_level: 300,
                analog_video_protection_level: 200,
                digital_audio_protection_level: 250,
                require_hdcp_type_1: true,
            }
        );
        assert_eq!(
            hd.fairplay,
            FairplaySecurity { hdcp_enforcement: FairplayHdcp(1), allow_airplay: false, allow_av_adapter: false }
        );
        let audio = &policy.security_policy[1];
        assert_eq!(audio.track_type, TrackType::Audio);
        assert_eq!(audio.widevine, WidevineSecurity::default());
        assert_eq!(audio.playready.digital_video_protection_level, 100);
        assert_eq!(audio.fairplay.hdcp_enforcement.get(), -1);
        assert!(audio.fairplay.allow_airplay);

        let cenc = &policy.external_key.mpeg_cenc[0];
        assert_eq!(cenc.track_type, TrackType::AllVideo);
        assert_eq!(hex::encode(cenc.key_id.0), "00112233445566778899aabbccddeeff");
        assert_eq!(hex::encode(cenc.key.0.as_bytes()), "ffeeddccbbaa99887766554433221100");
        assert_eq!(cenc.iv.as_ref().unwrap().0.len(), 8);
        assert!(!format!("{cenc:?}").contains("ffeedd"), "keys are not printed");
        let hls = &policy.external_key.hls_aes[0];
        assert_eq!(hex::encode(hls.key.0.as_bytes()), "000102030405060708090a0b0c0d0e0f");
        assert_eq!(hex::encode(hls.iv.0), "0f0e0d0c0b0a09080706050403020100");
        assert_eq!(hls.key_id.map(|k| hex::encode(k.0)).unwrap(), "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    }

    #[test]
    fn v2_policy_defaults() {
        let PallyconPolicy::V2(policy) = PallyconPolicy::parse(br#"{"policy_version":2}"#).unwrap() else {
            panic!("a v2 policy")
        };
        assert_eq!(policy, PolicyV2::default());
        assert_eq!(policy.playback_policy.license_duration, 0);
        assert_eq!(policy.playback_policy.allowed_track_types, AllowedTrackTypes::All);
        assert!(policy.security_policy.is_empty());
    }

    #[test]
    fn v1_policy_with_every_field() {
        let policy = r#"{
            "playback_policy": {"limit": true, "persistent": true, "duration": 600, "expire_date": "2031-12-31T23:59:59Z"},
            "security_policy": {
                "hardware_drm": true,
                "output_protect": {"allow_external_display": true, "control_hdcp": 2, "allow_mobile_screen_capture": true},
                "allow_mobile_abnormal_device": true,
                "playready_security_level": 2000
            },
            "external_key": {
                "mpeg_cenc": {"key_id": "00112233445566778899aabbccddeeff", "key": "ffeeddccbbaa99887766554433221100",
                              "iv": "00000000000000000000000000000001"},
                "hls_aes": {"key": "000102030405060708090a0b0c0d0e0f", "iv": "0f0e0d0c0b0a09080706050403020100"},
                "ncg": {"cek": "00"}
            }
        }"#;
        let token = encode(policy, "2024-05-01T12:00:00Z");
        let claims =
            PallyconToken::parse(&token).unwrap().verify(&secrets(), at("2024-05-01T12:00:00Z"), 600, 60).unwrap();
        let PallyconPolicy::V1(policy) = claims.policy else { panic!("a v1 policy") };
        assert_eq!(
            policy.playback_policy,
            PlaybackPolicyV1 {
                limit: true,
                persistent: true,
                duration: 600,
                expire_date: Some(at("2031-12-31T23:59:59Z"))
            }
        );
        assert_eq!(
            policy.security_policy,
            SecurityPolicyV1 {
                hardware_drm: true,
                output_protect: OutputProtectV1 {
                    allow_external_display: true,
                    control_hdcp: 2,
                    allow_mobile_screen_capture: true
                },
                allow_mobile_abnormal_device: true,
                playready_security_level: PlayreadySecurityLevel(2000),
            }
        );
        let cenc = policy.external_key.mpeg_cenc.unwrap();
        assert_eq!(cenc.track_type, TrackType::All);
        assert_eq!(cenc.iv.unwrap().0.len(), 16);
        assert_eq!(hex::encode(policy.external_key.hls_aes.unwrap().iv.0), "0f0e0d0c0b0a09080706050403020100");
    }

    #[test]
    fn optional_token_fields() {
        let token = encode_token(
            &secrets(),
            PallyconDrmType::FairPlay,
            "TUTO",
            LICENSE_TOKEN_USER,
            "c",
            "{}",
            at("2024-05-01T12:00:00Z"),
            Some(ResponseFormat::Json),
        );
        let token = edit(&token, |json| {
            json.insert("key_rotation".into(), true.into());
        });
        let parsed = PallyconToken::parse(&token).unwrap();
        assert_eq!(parsed.response_format, Some(ResponseFormat::Json));
        assert!(parsed.key_rotation);
        // Neither is covered by the hash.
        let claims = parsed.verify(&secrets(), at("2024-05-01T12:00:00Z"), 600, 0).unwrap();
        assert_eq!(claims.response_format, Some(ResponseFormat::Json));
        assert!(claims.key_rotation);

        // Without drm_type the default, PlayReady, is used (and hashed).
        let token = encode_token(
            &secrets(),
            PallyconDrmType::PlayReady,
            "TUTO",
            "u",
            "c",
            "{}",
            at("2024-05-01T12:00:00Z"),
            None,
        );
        let token = edit(&token, |json| {
            json.remove("drm_type");
        });
        let parsed = PallyconToken::parse(&token).unwrap();
        assert_eq!(parsed.drm_type, PallyconDrmType::PlayReady);
        assert!(!parsed.drm_type_present);
        assert!(parsed.verify(&secrets(), at("2024-05-01T12:00:00Z"), 600, 0).is_ok());
    }

    #[test]
    fn legacy_token_field_is_read_as_the_policy() {
        let token = encode(TUTORIAL_POLICY, "2019-07-17T08:57:04Z");
        let legacy = edit(&token, |json| {
            let policy = json.remove("policy").unwrap();
            json.insert("token".into(), policy);
        });
        let parsed = PallyconToken::parse(&legacy).unwrap();
        assert_eq!(parsed.policy_field, PolicyFieldName::Token);
        assert_eq!(parsed.policy, TUTORIAL_CIPHERTEXT);
        assert!(parsed.verify(&secrets(), at("2019-07-17T08:57:04Z"), 600, 0).is_ok());

        let both = edit(&token, |json| {
            json.insert("token".into(), TUTORIAL_CIPHERTEXT.into());
        });
        let err = PallyconToken::parse(&both).unwrap_err();
        assert_eq!(err.pallycon_code(), 7016);
        let neither = edit(&token, |json| {
            json.remove("policy");
        });
        assert_eq!(PallyconToken::parse(&neither).unwrap_err().field().as_deref(), Some("policy"));
    }

    #[test]
    fn bad_hash_is_refused() {
        let token = encode(TUTORIAL_POLICY, "2019-07-17T08:57:04Z");
        let now = at("2019-07-17T08:57:04Z");
        // A changed field under the old hash.
        let changed = edit(&token, |json| {
            json.insert("cid".into(), "another".into());
        });
        let err = PallyconToken::parse(&changed).unwrap().verify(&secrets(), now, 600, 0).unwrap_err();
        assert_eq!(err, PallyconError::HashMismatch);
        assert_eq!(err.pallycon_code(), 7019);
        assert_eq!(err.to_clavis().code, ErrorCode::TokenSignatureInvalid);
        // The wrong access key.
        let other = PallyconSecrets::new(SITE_KEY, "another-access-key").unwrap();
        assert_eq!(PallyconToken::parse(&token).unwrap().verify(&other, now, 600, 0), Err(PallyconError::HashMismatch));
        // Not base64, and base64 of the wrong length.
        for hash in ["***", "", "AAAA"] {
            let bad = edit(&token, |json| {
                json.insert("hash".into(), hash.into());
            });
            let result = PallyconToken::parse(&bad).unwrap().verify(&secrets(), now, 600, 0);
            assert_eq!(result, Err(PallyconError::HashMismatch), "{hash}");
        }
    }

    #[test]
    fn expired_and_future_tokens_are_refused() {
        let token = PallyconToken::parse(&encode(TUTORIAL_POLICY, "2019-07-17T08:57:04Z")).unwrap();
        assert!(token.verify(&secrets(), at("2019-07-17T09:07:04Z"), 600, 0).is_ok(), "the last valid second");
        let err = token.verify(&secrets(), at("2019-07-17T09:07:05Z"), 600, 0).unwrap_err();
        assert!(matches!(err, PallyconError::Expired { .. }));
        assert_eq!(err.pallycon_code(), 7011);
        assert_eq!(err.to_clavis().code, ErrorCode::TokenExpired);
        assert!(token.verify(&secrets(), at("2019-07-17T09:07:05Z"), 3600, 0).is_ok(), "a longer site ttl");

        assert!(token.verify(&secrets(), at("2019-07-17T08:56:04Z"), 600, 60).is_ok(), "within the skew");
        let err = token.verify(&secrets(), at("2019-07-17T08:56:03Z"), 600, 60).unwrap_err();
        assert!(matches!(err, PallyconError::NotYetValid { .. }));
        assert_eq!(err.to_clavis().code, ErrorCode::TokenNotYetValid);
    }

    #[test]
    fn malformed_timestamps_are_refused_after_the_hash() {
        let token = encode(TUTORIAL_POLICY, "2019-07-17T08:57:04Z");
        for timestamp in [
            "2019-07-17 08:57:04Z",
            "2019-07-17T08:57:04",
            "2019-07-17T08:57:04+00:00",
            "2019-13-17T08:57:04Z",
            "+019-07-17T08:57:04Z",
        ] {
            let bad = rehash(&edit(&token, |json| {
                json.insert("timestamp".into(), timestamp.into());
            }));
            let err =
                PallyconToken::parse(&bad).unwrap().verify(&secrets(), at("2019-07-17T08:57:04Z"), 600, 0).unwrap_err();
            assert_eq!(err.field().as_deref(), Some("timestamp"), "{timestamp}");
            assert_eq!(err.pallycon_code(), 7009);
        }
    }

    #[test]
    fn drm_type_is_case_sensitive() {
        let token = encode(TUTORIAL_POLICY, "2019-07-17T08:57:04Z");
        for name in ["widevine", "WIDEVINE", "Playready", "fairplay", "ncg", "WisePlay", ""] {
            let bad = edit(&token, |json| {
                json.insert("drm_type".into(), name.into());
            });
            let err = PallyconToken::parse(&bad).unwrap_err();
            assert_eq!(err, PallyconError::InvalidDrmType { value: name.into() });
            assert_eq!(err.pallycon_code(), 7018);
            assert_eq!(err.to_clavis().field.as_deref(), Some("drm_type"));
        }
        for drm in PallyconDrmType::ALL {
            assert_eq!(PallyconDrmType::parse(drm.as_str()), Some(drm));
        }
    }

    #[test]
    fn policy_fields_of_the_wrong_type_are_named() {
        let cases = [
            (r#"{"playback_policy":{"limit":"yes"}}"#, "playback_policy.limit"),
            (r#"{"playback_policy":{"duration":-1}}"#, "playback_policy.duration"),
            (
                r#"{"policy_version":2,"playback_policy":{"license_duration":"3600"}}"#,
                "playback_policy.license_duration",
            ),
            (
                r#"{"policy_version":2,"security_policy":[{},{"widevine":{"security_level":6}}]}"#,
                "security_policy[1].widevine.security_level",
            ),
            (r#"{"policy_version":2,"security_policy":[{"track_type":"hd"}]}"#, "security_policy[0].track_type"),
            (
                r#"{"policy_version":2,"security_policy":[{"playready":{"security_level":1000}}]}"#,
                "security_policy[0].playready.security_level",
            ),
            (
                r#"{"policy_version":2,"security_policy":[{"fairplay":{"hdcp_enforcement":2}}]}"#,
                "security_policy[0].fairplay.hdcp_enforcement",
            ),
            (r#"{"policy_version":2,"security_policy":{}}"#, "security_policy"),
            (r#"{"policy_version":2,"playback_policy":{"expire_date":"tomorrow"}}"#, "playback_policy.expire_date"),
            (
                r#"{"policy_version":2,"external_key":{"mpeg_cenc":[{"key_id":"zz","key":"00"}]}}"#,
                "external_key.mpeg_cenc[0].key_id",
            ),
            (
                r#"{"policy_version":2,"external_key":{"mpeg_cenc":[{"key_id":"00112233445566778899aabbccddeeff"}]}}"#,
                "external_key.mpeg_cenc[0].key",
            ),
            (r#"{"policy_version":3}"#, "policy_version"),
            (r#"{"policy_version":"2"}"#, "policy_version"),
            (r#"[1,2]"#, ""),
        ];
        for (policy, field) in cases {
            let token = PallyconToken::parse(&encode(policy, "2019-07-17T08:57:04Z")).unwrap();
            let err = token.verify(&secrets(), at("2019-07-17T08:57:04Z"), 600, 0).unwrap_err();
            let PallyconError::PolicyInvalid { field: found, .. } = &err else { panic!("{policy}: {err:?}") };
            assert_eq!(found.as_deref().unwrap_or_default(), field, "{policy}: {err:?}");
            assert_eq!(err.pallycon_code(), 7009);
            let clavis = err.to_clavis();
            assert_eq!(clavis.code, ErrorCode::PolicyInvalid);
            let expected = if field.is_empty() { "policy".to_owned() } else { format!("policy.{field}") };
            assert_eq!(clavis.field.as_deref(), Some(expected.as_str()));
        }
    }

    #[test]
    fn undecryptable_policies_are_refused() {
        let token = encode(TUTORIAL_POLICY, "2019-07-17T08:57:04Z");
        let other_site = PallyconSecrets::new("0123456789abcdef0123456789abcdef", ACCESS_KEY).unwrap();
        // Same access key: the hash holds, the policy does not decrypt (or decrypts to garbage).
        let err = PallyconToken::parse(&token).unwrap().verify(&other_site, at("2019-07-17T08:57:04Z"), 600, 0);
        assert!(matches!(err, Err(PallyconError::PolicyInvalid { .. })), "{err:?}");
        for policy in ["", "not base64!", "AAAA", &STANDARD.encode([0u8; 16])] {
            let bad = rehash(&edit(&token, |json| {
                json.insert("policy".into(), policy.into());
            }));
            let err = PallyconToken::parse(&bad).unwrap().verify(&secrets(), at("2019-07-17T08:57:04Z"), 600, 0);
            assert!(matches!(err, Err(PallyconError::PolicyInvalid { .. })), "{policy}: {err:?}");
        }
    }

    #[test]
    fn garbage_is_refused() {
        let cases = [
            "",
            "!!!",
            "not base64 at all",
            &STANDARD.encode("not json"),
            &STANDARD.encode("[]"),
            &STANDARD.encode(r#"{"site_id":"TUTO"}"#),
            &STANDARD.encode(r#"{"site_id":"TUTO","user_id":"u","cid":"c","policy":"p","timestamp":"t","hash":"h","key_rotation":"true"}"#),
            &STANDARD.encode(r#"{"site_id":"TUTO","user_id":1,"cid":"c","policy":"p","timestamp":"t","hash":"h"}"#),
            &"A".repeat(MAX_TOKEN_LEN + 1),
        ];
        for raw in cases {
            let err = PallyconToken::parse(raw).unwrap_err();
            assert_eq!(err.pallycon_code(), 7009, "{raw:.40}: {err:?}");
            assert_eq!(err.to_clavis().code, ErrorCode::TokenMalformed);
        }
        let field = |json: &str| PallyconToken::parse(&STANDARD.encode(json)).unwrap_err().field();
        assert_eq!(field(r#"{"site_id":"TUTO"}"#).as_deref(), Some("user_id"));
        assert_eq!(
            field(
                r#"{"site_id":"TUTO","user_id":"u","cid":"c","policy":"p","timestamp":"t","hash":"h","key_rotation":1}"#
            )
            .as_deref(),
            Some("key_rotation")
        );

        let invalid = [
            r#"{"site_id":"tuto","user_id":"u","cid":"c","policy":"p","timestamp":"t","hash":"h"}"#,
            r#"{"site_id":"TUTOR","user_id":"u","cid":"c","policy":"p","timestamp":"t","hash":"h"}"#,
            r#"{"site_id":"TUTO","user_id":"","cid":"c","policy":"p","timestamp":"t","hash":"h"}"#,
            r#"{"site_id":"TUTO","user_id":"u","cid":"","policy":"p","timestamp":"t","hash":"h"}"#,
            r#"{"site_id":"TUTO","user_id":"u","cid":"c","policy":"p","timestamp":"t","hash":"h","response_format":"xml"}"#,
        ];
        for json in invalid {
            let err = PallyconToken::parse(&STANDARD.encode(json)).unwrap_err();
            assert!(matches!(err, PallyconError::InvalidToken { .. }), "{json}: {err:?}");
            assert_eq!(err.pallycon_code(), 7016);
        }
    }

    #[test]
    fn errors_map_to_codes_and_the_catalog() {
        let cases = [
            (
                PallyconError::CidMismatch { token_cid: "a".into(), requested_cid: "b".into() },
                7012,
                ErrorCode::TokenContentMismatch,
            ),
            (PallyconError::SiteNotFound { site_id: "ABCD".into() }, 1003, ErrorCode::TokenIssuerUnknown),
            (PallyconError::ServiceStopped, 1004, ErrorCode::TenantSuspended),
            (PallyconError::HashMismatch, 7019, ErrorCode::TokenSignatureInvalid),
            (PallyconError::InvalidDrmType { value: "x".into() }, 7018, ErrorCode::TokenMalformed),
        ];
        for (err, code, clavis) in cases {
            assert_eq!(err.pallycon_code(), code);
            let converted: ClavisError = err.clone().into();
            assert_eq!(converted.code, clavis);
            assert!(converted.detail.contains(&code.to_string()), "{}", converted.detail);
            let body: serde_json::Value = serde_json::from_str(&err.compat_body()).unwrap();
            assert_eq!(body["errorCode"], code.to_string());
            assert_eq!(body["message"], err.message());
        }
    }

    #[test]
    fn secrets_are_checked_and_never_printed() {
        assert!(PallyconSecrets::new("short", ACCESS_KEY).is_err());
        assert!(PallyconSecrets::new(SITE_KEY, "").is_err());
        let printed = format!("{:?}", secrets());
        assert!(!printed.contains(SITE_KEY) && !printed.contains(ACCESS_KEY), "{printed}");
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_strings(raw in ".{0,400}") {
            let _ = PallyconToken::parse(&raw);
        }

        #[test]
        fn parse_and_verify_never_panic_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(token) = PallyconToken::parse(&STANDARD.encode(&bytes)) {
                let _ = token.verify(&secrets(), at("2019-07-17T08:57:04Z"), 600, 60);
            }
        }

        #[test]
        fn verify_never_panics_on_json_shaped_tokens(
            drm in prop::sample::select(vec!["Widevine", "PlayReady", "x"]),
            user in ".{0,20}", policy in "[A-Za-z0-9+/=]{0,80}", timestamp in ".{0,24}", hash in "[A-Za-z0-9+/=]{0,48}",
        ) {
            let json = serde_json::json!({"drm_type": drm, "site_id": "TUTO", "user_id": user, "cid": "c",
                "policy": policy, "timestamp": timestamp, "hash": hash});
            if let Ok(token) = PallyconToken::parse(&STANDARD.encode(json.to_string())) {
                let _ = token.verify(&secrets(), at("2019-07-17T08:57:04Z"), 600, 60);
            }
        }

        #[test]
        fn policy_parse_never_panics(json in ".{0,200}") {
            let _ = PallyconPolicy::parse(json.as_bytes());
        }

        #[test]
        fn encode_verify_round_trip(user in ".{1,40}", cid in ".{1,40}", duration in 0u64..1_000_000, seconds in 0i64..4_000_000_000) {
            let timestamp = DateTime::from_timestamp(seconds, 0).unwrap();
            let policy = format!(r#"{{"policy_version":2,"playback_policy":{{"license_duration":{duration}}}}}"#);
            let token = encode_token(&secrets(), PallyconDrmType::Widevine, "ABCD", &user, &cid, &policy, timestamp, None);
            let claims = PallyconToken::parse(&token).unwrap().verify(&secrets(), timestamp, 600, 0).unwrap();
            prop_assert_eq!(&claims.user_id, &user);
            prop_assert_eq!(&claims.cid, &cid);
            prop_assert_eq!(claims.issued_at, timestamp);
            let PallyconPolicy::V2(policy) = claims.policy else { panic!("v2") };
            prop_assert_eq!(policy.playback_policy.license_duration, duration);
        }
    }
}
