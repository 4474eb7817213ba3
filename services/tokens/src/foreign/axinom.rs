//! Axinom DRM license service messages (`X-AxDRM-Message`).
//!
//! A JWT signed with HS256 using the tenant's 32-byte communication key (configured base64-encoded), which the
//! claim `com_key_id` names. Claims:
//!
//! ```json
//! {"version": 1, "com_key_id": "<uuid>",
//!  "message": {"type": "entitlement_message", "version": 2,
//!    "license": {"start_datetime": "...", "expiration_datetime": "...", "duration": 3600, "allow_persistence": true},
//!    "content_keys_source": {"inline": [{"id": "<kid uuid>", "encrypted_key": "<base64>", "usage_policy": "Policy A"}]},
//!    "content_key_usage_policies": [{"name": "Policy A", "playready": {...}, "widevine": {...}, "fairplay": {...}}],
//!    "license_server": {"access_control": {"prevent_drm_message_reuse": true}}},
//!  "begin_date": "2024-01-01T00:00:00+00:00", "expiration_date": "2025-01-01T00:00:00+00:00"}
//! ```
//!
//! Each inline `encrypted_key` is the 16-byte content key encrypted with AES-256-CBC under the communication key,
//! with the KID's 16 bytes (RFC 4122 / big-endian order, as the UUID is written) as IV and no padding.
//!
//! [`verify`] checks the signature, the message's dates and structure, and decrypts the inline keys. A licence
//! request for any KID the message does not grant must be refused whole ([`AxinomClaims::ensure_granted`]).
//! Unknown fields are kept (`other` maps); known fields of the wrong type are refused, naming their path.

use std::collections::BTreeMap;
use std::fmt;

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeDelta, Utc};
use clavis_core::{ClavisError, ErrorCode};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;
use zeroize::Zeroize;

use super::{CompactJwt, ContentKey, FieldError, HmacAlgorithm, STANDARD_LENIENT, parse_json_at};

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// The message type Clavis understands.
pub const ENTITLEMENT_MESSAGE: &str = "entitlement_message";

/// A tenant's Axinom communication key (32 bytes). `Debug` never prints it; it is wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct AxinomComKey([u8; 32]);

impl AxinomComKey {
    pub const fn from_bytes(bytes: [u8; 32]) -> AxinomComKey {
        AxinomComKey(bytes)
    }

    /// The key as Axinom shows it: base64 of 32 bytes.
    pub fn from_base64(text: &str) -> Result<AxinomComKey, ClavisError> {
        let mut bytes = STANDARD_LENIENT.decode(text.trim()).unwrap_or_default();
        let key = <[u8; 32]>::try_from(bytes.as_slice()).map(AxinomComKey);
        bytes.zeroize();
        key.map_err(|_| ClavisError::invalid("communication_key", "an Axinom communication key is base64 of 32 bytes"))
    }
}

impl fmt::Debug for AxinomComKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AxinomComKey(<redacted>)")
    }
}

impl Drop for AxinomComKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A verified message.
#[derive(Clone, Debug, PartialEq)]
pub struct AxinomClaims {
    /// `version` (always 1).
    pub version: u32,
    /// `com_key_id`: the communication key that signed it.
    pub com_key_id: Uuid,
    pub message: EntitlementMessage,
    /// `begin_date`: the message is not valid before.
    pub begin_date: Option<DateTime<Utc>>,
    /// `expiration_date`: the message is not valid after.
    pub expiration_date: Option<DateTime<Utc>>,
    /// The decrypted inline content keys, by KID.
    pub content_keys: BTreeMap<Uuid, ContentKey>,
}

impl AxinomClaims {
    /// The KIDs the message grants, in order.
    pub fn granted_kids(&self) -> Vec<Uuid> {
        self.content_keys.keys().copied().collect()
    }

    /// The content key of a granted KID.
    pub fn key(&self, kid: &Uuid) -> Option<&ContentKey> {
        self.content_keys.get(kid)
    }

    /// The usage policy that applies to a granted KID, when it names one.
    pub fn usage_policy(&self, kid: &Uuid) -> Option<&ContentKeyUsagePolicy> {
        let inline = self.message.content_keys_source.inline.iter().find(|key| key.id == *kid)?;
        let name = inline.usage_policy.as_deref()?;
        self.message.content_key_usage_policies.iter().find(|policy| policy.name == name)
    }

    /// Refuse a licence request that asks for any KID the message does not grant.
    pub fn ensure_granted(&self, requested: &[Uuid]) -> Result<(), ClavisError> {
        match requested.iter().find(|kid| !self.content_keys.contains_key(kid)) {
            None => Ok(()),
            Some(kid) => Err(ClavisError::new(
                ErrorCode::KidNotInContent,
                format!("the Axinom message does not grant key {kid}; the whole licence is refused"),
            )),
        }
    }
}

/// `message`: the entitlement message.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct EntitlementMessage {
    /// `type`: always [`ENTITLEMENT_MESSAGE`].
    #[serde(rename = "type")]
    pub message_type: String,
    /// `version`: always 2.
    pub version: u32,
    #[serde(default)]
    pub license: License,
    #[serde(default)]
    pub content_keys_source: ContentKeysSource,
    #[serde(default)]
    pub content_key_usage_policies: Vec<ContentKeyUsagePolicy>,
    #[serde(default)]
    pub license_server: LicenseServer,
    /// Fields Clavis does not type.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `message.license`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct License {
    /// The licence is not valid before (RFC 3339).
    pub start_datetime: Option<DateTime<Utc>>,
    /// The licence is not valid after (RFC 3339).
    pub expiration_datetime: Option<DateTime<Utc>>,
    /// Licence validity in seconds from issuance.
    pub duration: Option<u64>,
    /// Persistent (offline) licence allowed.
    pub allow_persistence: bool,
    /// Fields Clavis does not type.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `message.content_keys_source`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ContentKeysSource {
    /// Keys carried in the message itself, encrypted with the communication key.
    pub inline: Vec<InlineKey>,
    /// Fields Clavis does not type.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `message.content_keys_source.inline[]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct InlineKey {
    /// The KID.
    pub id: Uuid,
    /// base64 of AES-256-CBC(content key), communication key, IV = KID bytes, no padding.
    pub encrypted_key: String,
    /// The name of the `content_key_usage_policies` entry that applies.
    #[serde(default)]
    pub usage_policy: Option<String>,
    /// Fields Clavis does not type.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `message.content_key_usage_policies[]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ContentKeyUsagePolicy {
    pub name: String,
    #[serde(default)]
    pub playready: Option<PlayreadyUsage>,
    #[serde(default)]
    pub widevine: Option<WidevineUsage>,
    #[serde(default)]
    pub fairplay: Option<FairplayUsage>,
    /// Fields Clavis does not type.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// PlayReady rules of a usage policy.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PlayreadyUsage {
    /// 150, 2000 or 3000.
    pub min_device_security_level: Option<u32>,
    /// Play enabler GUIDs.
    pub play_enablers: Vec<Uuid>,
    pub digital_video_protection_level: Option<u32>,
    pub analog_video_protection_level: Option<u32>,
    pub compressed_digital_audio_protection_level: Option<u32>,
    pub uncompressed_digital_audio_protection_level: Option<u32>,
    /// Fields Clavis does not type.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Widevine rules of a usage policy (Axinom's names, e.g. `HW_SECURE_ALL`, `2.2`, `never`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct WidevineUsage {
    pub device_security_level: Option<String>,
    #[serde(rename = "cgms-a")]
    pub cgms_a: Option<String>,
    pub hdcp: Option<String>,
    /// Fields Clavis does not type.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// FairPlay rules of a usage policy.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct FairplayUsage {
    /// Axinom's HDCP requirement name (e.g. `TYPE0`).
    pub hdcp: Option<String>,
    /// Fields Clavis does not type.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `message.license_server`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct LicenseServer {
    pub access_control: AccessControl,
    /// Fields Clavis does not type.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `message.license_server.access_control`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct AccessControl {
    /// Each message may obtain a licence once (the caller enforces it).
    pub prevent_drm_message_reuse: bool,
    /// The concurrency limit as given (its shape is not pinned down by the spec, so it stays JSON).
    pub concurrency_limit: Option<Value>,
    /// Fields Clavis does not type.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Deserialize)]
struct KeyIdProbe {
    #[serde(default)]
    com_key_id: Option<String>,
}

#[derive(Deserialize)]
struct RawClaims {
    version: u32,
    com_key_id: Uuid,
    message: EntitlementMessage,
    #[serde(default)]
    begin_date: Option<DateTime<Utc>>,
    #[serde(default)]
    expiration_date: Option<DateTime<Utc>>,
}

fn malformed(field: &str, detail: impl Into<String>) -> ClavisError {
    ClavisError::field(ErrorCode::TokenMalformed, field.to_owned(), detail.into())
}

fn invalid(field: String, detail: impl Into<String>) -> ClavisError {
    ClavisError::field(ErrorCode::PolicyInvalid, field, detail.into())
}

/// Faults inside `message` are policy faults; the rest are token faults.
fn claims_error(err: FieldError) -> ClavisError {
    let detail = format!("Axinom message: {}", err.detail);
    if err.field.starts_with("message") {
        invalid(err.field, detail)
    } else {
        let field = if err.field.is_empty() { "claims".to_owned() } else { err.field };
        ClavisError::field(ErrorCode::TokenMalformed, field, detail)
    }
}

/// Verify a message at `now`. `lookup` returns the communication key `com_key_id` names, or `None`;
/// `skew_seconds` is the clock skew allowed on `begin_date` and `expiration_date`.
pub fn verify(
    message: &str,
    lookup: impl Fn(&Uuid) -> Option<AxinomComKey>,
    now: DateTime<Utc>,
    skew_seconds: u32,
) -> Result<AxinomClaims, ClavisError> {
    let jwt = CompactJwt::parse(message, "Axinom message")?;
    let algorithm = jwt.hmac_algorithm(&[HmacAlgorithm::Hs256])?;
    // The key is named in the (not yet verified) claims: read only that before the signature check.
    let com_key_id = com_key_id_of(&jwt)?;
    let key = lookup(&com_key_id)
        .ok_or_else(|| ClavisError::new(ErrorCode::TokenKeyUnknown, format!("no communication key {com_key_id}")))?;
    algorithm.verify(&key.0, jwt.signed.as_bytes(), &jwt.signature)?;

    let claims: RawClaims = parse_json_at(&jwt.payload, "").map_err(claims_error)?;
    if claims.com_key_id != com_key_id {
        return Err(malformed("com_key_id", "`com_key_id` is ambiguous"));
    }
    if claims.version != 1 {
        return Err(malformed("version", "the message `version` must be 1"));
    }
    let message = claims.message;
    if message.message_type != ENTITLEMENT_MESSAGE {
        return Err(invalid("message.type".into(), format!("the message type must be {ENTITLEMENT_MESSAGE:?}")));
    }
    if message.version != 2 {
        return Err(invalid("message.version".into(), "the entitlement message `version` must be 2"));
    }

    let skew = TimeDelta::seconds(i64::from(skew_seconds));
    if claims.begin_date.is_some_and(|begin| begin.signed_duration_since(now) > skew) {
        return Err(ClavisError::new(ErrorCode::TokenNotYetValid, "the message's `begin_date` is in the future"));
    }
    if claims.expiration_date.is_some_and(|end| now.signed_duration_since(end) > skew) {
        return Err(ClavisError::new(ErrorCode::TokenExpired, "the message's `expiration_date` has passed"));
    }

    let mut content_keys = BTreeMap::new();
    for (index, inline) in message.content_keys_source.inline.iter().enumerate() {
        let field = |name: &str| format!("message.content_keys_source.inline[{index}].{name}");
        if let Some(policy) = &inline.usage_policy
            && !message.content_key_usage_policies.iter().any(|p| &p.name == policy)
        {
            return Err(invalid(field("usage_policy"), format!("no content key usage policy named {policy:?}")));
        }
        let content_key = decrypt_inline_key(&key, &inline.id, &inline.encrypted_key)
            .map_err(|e| invalid(field("encrypted_key"), e))?;
        if content_keys.insert(inline.id, content_key).is_some() {
            return Err(invalid(field("id"), format!("key {} is given twice", inline.id)));
        }
    }
    Ok(AxinomClaims {
        version: claims.version,
        com_key_id,
        message,
        begin_date: claims.begin_date,
        expiration_date: claims.expiration_date,
        content_keys,
    })
}

/// The communication key a message names (`com_key_id`), read **without verifying anything**: it only says whose
/// key to verify the message with, so nothing else may be trusted from it. Parsing is as bounded as [`verify`]'s.
pub fn peek_com_key_id(message: &str) -> Result<Uuid, ClavisError> {
    com_key_id_of(&CompactJwt::parse(message, "Axinom message")?)
}

fn com_key_id_of(jwt: &CompactJwt<'_>) -> Result<Uuid, ClavisError> {
    let probe: KeyIdProbe = parse_json_at(&jwt.payload, "").map_err(claims_error)?;
    let com_key_id = probe.com_key_id.ok_or_else(|| malformed("com_key_id", "the message has no `com_key_id`"))?;
    Uuid::parse_str(&com_key_id).map_err(|_| malformed("com_key_id", "`com_key_id` is not a UUID"))
}

/// Encrypt a content key for an inline entry: base64(AES-256-CBC(key)), communication key, IV = KID bytes, no
/// padding (for tests and the migration docs).
pub fn encrypt_inline_key(com_key: &AxinomComKey, kid: &Uuid, key: &[u8; 16]) -> String {
    let mut block: aes::Block = (*key).into();
    Aes256CbcEnc::new(&com_key.0.into(), kid.as_bytes().into()).encrypt_block_mut(&mut block);
    STANDARD.encode(block)
}

/// Decrypt an inline entry's `encrypted_key`.
pub fn decrypt_inline_key(com_key: &AxinomComKey, kid: &Uuid, encrypted_key: &str) -> Result<ContentKey, String> {
    let bytes =
        STANDARD_LENIENT.decode(encrypted_key.trim()).map_err(|_| "`encrypted_key` is not base64".to_owned())?;
    let bytes: [u8; 16] =
        bytes.as_slice().try_into().map_err(|_| "`encrypted_key` must be 16 bytes (one AES block)".to_owned())?;
    let mut block: aes::Block = bytes.into();
    Aes256CbcDec::new(&com_key.0.into(), kid.as_bytes().into()).decrypt_block_mut(&mut block);
    let key = <[u8; 16]>::try_from(&block[..]).map(ContentKey::new);
    block[..].zeroize();
    key.map_err(|_| "the decrypted key is not 16 bytes".to_owned())
}

/// Sign claims as a message (HS256, the communication key), for tests and the migration docs.
pub fn sign_message(com_key: &AxinomComKey, claims: &Value) -> String {
    super::sign_compact(HmacAlgorithm::Hs256, None, &com_key.0, claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use proptest::prelude::*;
    use serde_json::json;

    const COM_KEY_ID: &str = "69e54088-e9e0-4530-8c1a-1eb6dcd0d14e";
    const KID_1: &str = "6e5a1d26-2757-47d7-8046-eaa5a9c6ee6b";
    const KID_2: &str = "0f8f9e2c-5a4e-4b1e-9b3e-2d7c1a6b4c3d";
    const KEY_1: [u8; 16] = *b"content key one!";
    const KEY_2: [u8; 16] = [7; 16];
    const NOW: i64 = 1_700_000_000;

    fn com_key() -> AxinomComKey {
        AxinomComKey::from_base64(&STANDARD.encode(*b"axinom communication key 32 byte")).unwrap()
    }

    fn lookup(id: &Uuid) -> Option<AxinomComKey> {
        (*id == Uuid::parse_str(COM_KEY_ID).unwrap()).then(com_key)
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(NOW, 0).unwrap()
    }

    fn kid(text: &str) -> Uuid {
        Uuid::parse_str(text).unwrap()
    }

    fn claims() -> Value {
        json!({
            "version": 1,
            "com_key_id": COM_KEY_ID,
            "message": {
                "type": "entitlement_message",
                "version": 2,
                "license": {
                    "start_datetime": "2023-11-14T00:00:00+02:00",
                    "expiration_datetime": "2023-12-14T00:00:00Z",
                    "duration": 3600,
                    "allow_persistence": true,
                    "real_time_expiration": false
                },
                "content_keys_source": {"inline": [
                    {"id": KID_1, "encrypted_key": encrypt_inline_key(&com_key(), &kid(KID_1), &KEY_1), "usage_policy": "Policy A"},
                    {"id": KID_2, "encrypted_key": encrypt_inline_key(&com_key(), &kid(KID_2), &KEY_2)}
                ]},
                "content_key_usage_policies": [{
                    "name": "Policy A",
                    "playready": {"min_device_security_level": 3000, "play_enablers": ["786627d8-c2a6-44be-8f88-08ae255b01a7"],
                                  "digital_video_protection_level": 300},
                    "widevine": {"device_security_level": "HW_SECURE_ALL", "cgms-a": "never", "hdcp": "2.2"},
                    "fairplay": {"hdcp": "TYPE1"}
                }],
                "license_server": {"access_control": {"prevent_drm_message_reuse": true, "concurrency_limit": 2}}
            },
            "begin_date": "2023-11-14T00:00:00+00:00",
            "expiration_date": "2023-11-15T00:00:00+00:00"
        })
    }

    fn verify_claims(claims: &Value) -> Result<AxinomClaims, ClavisError> {
        verify(&sign_message(&com_key(), claims), lookup, now(), 60)
    }

    #[test]
    fn round_trip_with_every_field() {
        let claims = verify_claims(&claims()).unwrap();
        assert_eq!(claims.version, 1);
        assert_eq!(claims.com_key_id, kid(COM_KEY_ID));
        assert_eq!(claims.begin_date.unwrap().to_rfc3339(), "2023-11-14T00:00:00+00:00");
        assert_eq!(claims.expiration_date.unwrap().to_rfc3339(), "2023-11-15T00:00:00+00:00");
        let license = &claims.message.license;
        assert_eq!(license.start_datetime.unwrap().to_rfc3339(), "2023-11-13T22:00:00+00:00");
        assert_eq!(license.duration, Some(3600));
        assert!(license.allow_persistence);
        assert_eq!(license.other.get("real_time_expiration"), Some(&json!(false)));
        let mut granted = vec![kid(KID_1), kid(KID_2)];
        granted.sort();
        assert_eq!(claims.granted_kids(), granted);
        assert_eq!(claims.key(&kid(KID_1)).unwrap().as_bytes(), &KEY_1);
        assert_eq!(claims.key(&kid(KID_2)).unwrap().as_bytes(), &KEY_2);
        let policy = claims.usage_policy(&kid(KID_1)).unwrap();
        let playready = policy.playready.as_ref().unwrap();
        assert_eq!(playready.min_device_security_level, Some(3000));
        assert_eq!(playready.play_enablers, vec![kid("786627d8-c2a6-44be-8f88-08ae255b01a7")]);
        assert_eq!(playready.digital_video_protection_level, Some(300));
        let widevine = policy.widevine.as_ref().unwrap();
        assert_eq!(
            (widevine.device_security_level.as_deref(), widevine.cgms_a.as_deref(), widevine.hdcp.as_deref()),
            (Some("HW_SECURE_ALL"), Some("never"), Some("2.2"))
        );
        assert_eq!(policy.fairplay.as_ref().unwrap().hdcp.as_deref(), Some("TYPE1"));
        assert!(claims.usage_policy(&kid(KID_2)).is_none());
        let access = &claims.message.license_server.access_control;
        assert!(access.prevent_drm_message_reuse);
        assert_eq!(access.concurrency_limit, Some(json!(2)));

        assert!(claims.ensure_granted(&[kid(KID_1), kid(KID_2)]).is_ok());
        let err = claims.ensure_granted(&[kid(KID_1), Uuid::nil()]).unwrap_err();
        assert_eq!(err.code, ErrorCode::KidNotInContent);
        assert!(!format!("{claims:?}").contains("content key one"), "keys are not printed");
    }

    #[test]
    fn a_kid_decrypts_to_its_key_and_only_with_its_iv() {
        let encrypted = encrypt_inline_key(&com_key(), &kid(KID_1), &KEY_1);
        assert_eq!(STANDARD.decode(&encrypted).unwrap().len(), 16, "no padding");
        assert_eq!(decrypt_inline_key(&com_key(), &kid(KID_1), &encrypted).unwrap().as_bytes(), &KEY_1);
        assert_ne!(decrypt_inline_key(&com_key(), &kid(KID_2), &encrypted).unwrap().as_bytes(), &KEY_1);
        let other = AxinomComKey::from_bytes([1; 32]);
        assert_ne!(decrypt_inline_key(&other, &kid(KID_1), &encrypted).unwrap().as_bytes(), &KEY_1);
        // Cross-check against a single-block AES-256 encryption of key XOR IV (the CBC definition).
        use aes::cipher::{BlockEncrypt, KeyInit};
        let cipher = aes::Aes256::new(&(*b"axinom communication key 32 byte").into());
        let mut block: aes::Block = std::array::from_fn::<u8, 16, _>(|i| KEY_1[i] ^ kid(KID_1).as_bytes()[i]).into();
        cipher.encrypt_block(&mut block);
        assert_eq!(STANDARD.encode(block), encrypted);
    }

    #[test]
    fn wrong_or_unknown_key_is_refused() {
        let token = sign_message(&AxinomComKey::from_bytes([9; 32]), &claims());
        assert_eq!(verify(&token, lookup, now(), 60).unwrap_err().code, ErrorCode::TokenSignatureInvalid);
        let mut unknown = claims();
        unknown["com_key_id"] = Uuid::nil().to_string().into();
        let err = verify(&sign_message(&com_key(), &unknown), lookup, now(), 60).unwrap_err();
        assert_eq!(err.code, ErrorCode::TokenKeyUnknown);
        for id in [json!("not-a-uuid"), json!(5), Value::Null] {
            let mut bad = claims();
            bad["com_key_id"] = id.clone();
            let err = verify(&sign_message(&com_key(), &bad), lookup, now(), 60).unwrap_err();
            assert_eq!((err.code, err.field.as_deref()), (ErrorCode::TokenMalformed, Some("com_key_id")), "{id}");
        }
    }

    #[test]
    fn the_com_key_id_is_peeked_without_the_key() {
        let token = sign_message(&AxinomComKey::from_bytes([9; 32]), &claims());
        assert_eq!(peek_com_key_id(&token).unwrap(), kid(COM_KEY_ID));
        for id in [json!("not-a-uuid"), json!(5), Value::Null] {
            let mut bad = claims();
            bad["com_key_id"] = id.clone();
            let err = peek_com_key_id(&sign_message(&com_key(), &bad)).unwrap_err();
            assert_eq!((err.code, err.field.as_deref()), (ErrorCode::TokenMalformed, Some("com_key_id")), "{id}");
        }
        for raw in ["", "abc", "a.b.c", "e30.e30.e30"] {
            assert_eq!(peek_com_key_id(raw).unwrap_err().code, ErrorCode::TokenMalformed, "{raw}");
        }
    }

    #[test]
    fn tampered_messages_are_refused() {
        let token = sign_message(&com_key(), &claims());
        let mut changed = claims();
        changed["message"]["license"]["allow_persistence"] = false.into();
        let changed = sign_message(&com_key(), &changed);
        let swapped = format!(
            "{}.{}.{}",
            token.split('.').next().unwrap(),
            changed.split('.').nth(1).unwrap(),
            token.rsplit('.').next().unwrap()
        );
        assert_eq!(verify(&swapped, lookup, now(), 60).unwrap_err().code, ErrorCode::TokenSignatureInvalid);
        let truncated = &token[..token.len() - 3];
        assert_eq!(verify(truncated, lookup, now(), 60).unwrap_err().code, ErrorCode::TokenSignatureInvalid);
        // HS512 (or none) with the right key is still refused: Axinom signs HS256 only.
        let jwt = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
            &claims(),
            &jsonwebtoken::EncodingKey::from_secret(b"axinom communication key 32 byte"),
        )
        .unwrap();
        assert_eq!(verify(&jwt, lookup, now(), 60).unwrap_err().code, ErrorCode::TokenSignatureInvalid);
        let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#), token.split('.').nth(1).unwrap());
        assert_eq!(verify(&none, lookup, now(), 60).unwrap_err().code, ErrorCode::TokenSignatureInvalid);
        // jsonwebtoken's HS256 verifies the same way as sign_message's.
        let jwt = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims(),
            &jsonwebtoken::EncodingKey::from_secret(b"axinom communication key 32 byte"),
        )
        .unwrap();
        assert!(verify(&jwt, lookup, now(), 60).is_ok());
    }

    #[test]
    fn expired_and_future_messages_are_refused() {
        let with = |claim: &str, date: &str| {
            let mut claims = claims();
            claims[claim] = date.into();
            verify_claims(&claims)
        };
        // NOW is 2023-11-14T22:13:20Z.
        assert!(with("expiration_date", "2023-11-14T22:12:20Z").is_ok(), "within the skew");
        assert_eq!(with("expiration_date", "2023-11-14T22:12:19Z").unwrap_err().code, ErrorCode::TokenExpired);
        assert!(with("begin_date", "2023-11-14T22:14:20Z").is_ok(), "within the skew");
        assert_eq!(with("begin_date", "2023-11-14T22:14:21Z").unwrap_err().code, ErrorCode::TokenNotYetValid);
        assert_eq!(with("begin_date", "2023-11-15T00:14:21+02:00").unwrap_err().code, ErrorCode::TokenNotYetValid);
        assert_eq!(with("begin_date", "yesterday").unwrap_err().field.as_deref(), Some("begin_date"));
        let mut open = claims();
        open.as_object_mut().unwrap().remove("begin_date");
        open.as_object_mut().unwrap().remove("expiration_date");
        assert!(verify_claims(&open).is_ok());
    }

    #[test]
    fn malformed_messages_name_the_field() {
        let cases: [(&str, Value, ErrorCode, &str); 10] = [
            ("/version", json!(2), ErrorCode::TokenMalformed, "version"),
            ("/message/type", json!("other_message"), ErrorCode::PolicyInvalid, "message.type"),
            ("/message/version", json!(1), ErrorCode::PolicyInvalid, "message.version"),
            ("/message/license/duration", json!("1h"), ErrorCode::PolicyInvalid, "message.license.duration"),
            (
                "/message/license/allow_persistence",
                json!(1),
                ErrorCode::PolicyInvalid,
                "message.license.allow_persistence",
            ),
            (
                "/message/content_keys_source/inline/0/id",
                json!("nope"),
                ErrorCode::PolicyInvalid,
                "message.content_keys_source.inline[0].id",
            ),
            (
                "/message/content_keys_source/inline/1/encrypted_key",
                json!("AAAA"),
                ErrorCode::PolicyInvalid,
                "message.content_keys_source.inline[1].encrypted_key",
            ),
            (
                "/message/content_keys_source/inline/0/usage_policy",
                json!("Policy B"),
                ErrorCode::PolicyInvalid,
                "message.content_keys_source.inline[0].usage_policy",
            ),
            (
                "/message/content_keys_source/inline/1/id",
                json!(KID_1),
                ErrorCode::PolicyInvalid,
                "message.content_keys_source.inline[1].id",
            ),
            (
                "/message/content_key_usage_policies/0/playready/min_device_security_level",
                json!("3000"),
                ErrorCode::PolicyInvalid,
                "message.content_key_usage_policies[0].playready.min_device_security_level",
            ),
        ];
        for (pointer, value, code, field) in cases {
            let mut claims = claims();
            *claims.pointer_mut(pointer).unwrap() = value;
            let err = verify_claims(&claims).unwrap_err();
            assert_eq!((err.code, err.field.as_deref()), (code, Some(field)), "{pointer}: {err}");
        }
        let mut claims = claims();
        claims["message"].as_object_mut().unwrap().remove("type");
        assert_eq!(verify_claims(&claims).unwrap_err().field.as_deref(), Some("message.type"));
        claims.as_object_mut().unwrap().remove("message");
        assert_eq!(verify_claims(&claims).unwrap_err().field.as_deref(), Some("message"));
    }

    #[test]
    fn communication_keys_are_checked_and_not_printed() {
        assert!(AxinomComKey::from_base64("AAAA").is_err());
        assert!(AxinomComKey::from_base64("not base64!").is_err());
        assert!(AxinomComKey::from_base64(&STANDARD.encode([0u8; 33])).is_err());
        assert_eq!(format!("{:?}", com_key()), "AxinomComKey(<redacted>)");
    }

    proptest! {
        #[test]
        fn verify_never_panics(raw in ".{0,400}") {
            let _ = verify(&raw, lookup, now(), 60);
            let _ = peek_com_key_id(&raw);
        }

        #[test]
        fn verify_never_panics_on_signed_garbage(payload in ".{0,300}", key in ".{0,40}", kid_text in ".{0,40}") {
            let token = sign_message(&com_key(), &json!({"com_key_id": COM_KEY_ID, "x": payload}));
            let _ = verify(&token, lookup, now(), 60);
            let mut claims = claims();
            claims["message"]["content_keys_source"]["inline"][0]["encrypted_key"] = key.into();
            claims["message"]["content_keys_source"]["inline"][1]["id"] = kid_text.into();
            let _ = verify_claims(&claims);
        }

        #[test]
        fn inline_keys_round_trip(key in any::<[u8; 16]>(), kid_bytes in any::<[u8; 16]>()) {
            let kid = Uuid::from_bytes(kid_bytes);
            let encrypted = encrypt_inline_key(&com_key(), &kid, &key);
            let decrypted = decrypt_inline_key(&com_key(), &kid, &encrypted).unwrap();
            prop_assert_eq!(decrypted.as_bytes(), &key);
        }
    }
}
