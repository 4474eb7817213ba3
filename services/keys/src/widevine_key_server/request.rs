//! Parsing key-server requests: the signed envelope, and the key request inside it.
//!
//! Shaka Packager writes both as protobuf JSON (`SignedModularDrmRequest` around `CommonEncryptionRequest`), so this
//! reader accepts what protobuf's JSON mapping allows: bytes as standard or URL-safe base64 with or without padding,
//! numbers as JSON numbers or decimal strings, enums by name or number, and unknown fields (newer packagers add
//! some). It never panics and bounds everything it reads; its errors carry the key-server status to answer.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use clavis_core::ids::TrackType;
use serde_json::Value;

use crate::widevine_pssh::{ProtectionScheme, parse_widevine_pssh_data};

/// Largest envelope accepted (Shaka's requests are well under 1 KiB).
pub const MAX_ENVELOPE_BYTES: usize = 64 * 1024;
/// Most crypto periods one rotation request may ask for (Shaka asks for 10 at a time).
pub const MAX_PERIODS_PER_REQUEST: u32 = 100;

/// The `status` values of `CommonEncryptionResponse` that Clavis answers. Only names from Shaka Packager's enum:
/// its JSON reader ignores unknown enum names, which would read as `OK`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    SignatureFailed,
    ContentIdMissing,
    TrackTypeMissing,
    TrackTypeUnknown,
    MalformedRequest,
    AccessDenied,
    /// The one status Shaka Packager retries (with backoff).
    InternalError,
    NoRequestedCryptoPeriods,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::SignatureFailed => "SIGNATURE_FAILED",
            Status::ContentIdMissing => "CONTENT_ID_MISSING",
            Status::TrackTypeMissing => "TRACK_TYPE_MISSING",
            Status::TrackTypeUnknown => "TRACK_TYPE_UNKNOWN",
            Status::MalformedRequest => "MALFORMED_REQUEST",
            Status::AccessDenied => "ACCESS_DENIED",
            Status::InternalError => "INTERNAL_ERROR",
            Status::NoRequestedCryptoPeriods => "NO_REQUESTED_CRYPTO_PERIODS",
        }
    }
}

/// Why a request could not be read: the status to answer and a sentence for the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed {
    pub status: Status,
    pub detail: String,
}

fn malformed(detail: impl Into<String>) -> Malformed {
    Malformed { status: Status::MalformedRequest, detail: detail.into() }
}

/// The signed envelope (`SignedModularDrmRequest`), decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The exact bytes the signature covers (the inner JSON, never re-serialized).
    pub request: Vec<u8>,
    /// Empty when the request is unsigned.
    pub signature: Vec<u8>,
    /// Empty when the request is unsigned.
    pub signer: String,
}

/// Crypto periods a rotation request asks for: `count` periods from `first`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    pub first: u32,
    pub count: u32,
    /// The packager's period length, written into the PSSH data.
    pub seconds: Option<u32>,
}

impl Rotation {
    pub fn periods(self) -> impl Iterator<Item = u32> {
        // `parse_key_request` checked that first + count - 1 fits.
        (0..self.count).map(move |i| self.first.saturating_add(i))
    }
}

/// The key request (`CommonEncryptionRequest`), validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRequest {
    /// The content id bytes (from `content_id`, or from the Widevine PSSH data in `pssh_data`).
    pub content_id: Vec<u8>,
    /// Requested track types, in request order, without repeats.
    pub tracks: Vec<TrackType>,
    pub scheme: ProtectionScheme,
    pub rotation: Option<Rotation>,
}

/// Read the envelope. The request must be there; signature and signer may be absent (the caller refuses unsigned
/// requests with its own status).
pub fn parse_envelope(body: &[u8]) -> Result<Envelope, Malformed> {
    if body.len() > MAX_ENVELOPE_BYTES {
        return Err(malformed(format!("the request body is over {MAX_ENVELOPE_BYTES} bytes")));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| malformed(format!("the body is not JSON: {e}")))?;
    let Value::Object(fields) = value else { return Err(malformed("the body must be a JSON object")) };
    let request = match fields.get("request") {
        Some(v) => bytes_field(v, "request")?,
        None => return Err(malformed("`request` is missing")),
    };
    if request.is_empty() {
        return Err(malformed("`request` is empty"));
    }
    let signature = fields.get("signature").map(|v| bytes_field(v, "signature")).transpose()?.unwrap_or_default();
    let signer = match fields.get("signer") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(malformed("`signer` must be a string")),
    };
    Ok(Envelope { request, signature, signer })
}

/// Read the key request inside the envelope.
pub fn parse_key_request(bytes: &[u8]) -> Result<KeyRequest, Malformed> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| malformed(format!("the signed request is not JSON: {e}")))?;
    let Value::Object(fields) = value else { return Err(malformed("the signed request must be a JSON object")) };
    let field = |name: &str| fields.get(name).filter(|v| !v.is_null());

    let mut content_id = field("content_id").map(|v| bytes_field(v, "content_id")).transpose()?.unwrap_or_default();
    if content_id.is_empty()
        && let Some(pssh) = field("pssh_data")
    {
        // Shaka asks by PSSH data when it re-packages content it found encrypted: the content id is inside.
        let data = bytes_field(pssh, "pssh_data")?;
        let parsed = parse_widevine_pssh_data(&data)
            .map_err(|e| malformed(format!("`pssh_data` is not Widevine PSSH data: {e}")))?;
        content_id = parsed.content_id.unwrap_or_default();
    }
    if content_id.is_empty() {
        return Err(Malformed { status: Status::ContentIdMissing, detail: "`content_id` is missing or empty".into() });
    }

    let tracks = match field("tracks") {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            let mut seen = HashSet::new();
            let mut tracks = Vec::with_capacity(items.len().min(TrackType::EVERY.len()));
            for item in items {
                let name = match item.get("type") {
                    Some(Value::String(s)) => s.as_str(),
                    _ => {
                        return Err(Malformed {
                            status: Status::TrackTypeMissing,
                            detail: "each track must be {\"type\": \"SD\" | \"HD\" | \"UHD1\" | \"UHD2\" | \"AUDIO\"}"
                                .into(),
                        });
                    }
                };
                let track: TrackType = name.parse().map_err(|_| Malformed {
                    status: Status::TrackTypeUnknown,
                    detail: format!("unknown track type {:?}", truncate(name)),
                })?;
                if !seen.insert(track) {
                    return Err(malformed(format!("track type {track} is listed twice")));
                }
                tracks.push(track);
            }
            tracks
        }
        Some(_) => return Err(malformed("`tracks` must be a list")),
    };
    if tracks.is_empty() {
        return Err(Malformed { status: Status::TrackTypeMissing, detail: "`tracks` lists no track".into() });
    }

    if let Some(drm_types) = field("drm_types") {
        let Value::Array(items) = drm_types else { return Err(malformed("`drm_types` must be a list")) };
        if !items.iter().all(|t| t == "WIDEVINE" || t.as_u64() == Some(0)) {
            return Err(malformed("`drm_types` may only name WIDEVINE"));
        }
    }

    let scheme = match field("protection_scheme") {
        None => ProtectionScheme::Cenc,
        Some(Value::String(name)) => match name.as_str() {
            "UNSPECIFIED" | "CENC" => ProtectionScheme::Cenc,
            "CBCS" => ProtectionScheme::Cbcs,
            "CBC1" => ProtectionScheme::Cbc1,
            "CENS" => ProtectionScheme::Cens,
            other => return Err(malformed(format!("unknown protection_scheme {:?}", truncate(other)))),
        },
        Some(v) => match v.as_u64().map(u32::try_from) {
            Some(Ok(0)) => ProtectionScheme::Cenc,
            Some(Ok(fourcc)) => ProtectionScheme::from_fourcc(fourcc)
                .ok_or_else(|| malformed(format!("unknown protection_scheme {fourcc}")))?,
            _ => return Err(malformed("`protection_scheme` must be a scheme name or its number")),
        },
    };

    let first = field("first_crypto_period_index").map(|v| u32_field(v, "first_crypto_period_index")).transpose()?;
    let count = field("crypto_period_count").map(|v| u32_field(v, "crypto_period_count")).transpose()?;
    let seconds = field("crypto_period_seconds").map(|v| u32_field(v, "crypto_period_seconds")).transpose()?;
    let rotation = match (first, count) {
        (None, None) => None,
        (None, Some(_)) => return Err(malformed("`crypto_period_count` needs `first_crypto_period_index`")),
        (Some(first), count) => {
            // protobuf's default for crypto_period_count is 1.
            let count = count.unwrap_or(1);
            if count == 0 {
                return Err(Malformed {
                    status: Status::NoRequestedCryptoPeriods,
                    detail: "`crypto_period_count` is 0".into(),
                });
            }
            if count > MAX_PERIODS_PER_REQUEST {
                return Err(malformed(format!("at most {MAX_PERIODS_PER_REQUEST} crypto periods per request")));
            }
            if first.checked_add(count - 1).is_none() {
                return Err(malformed("the requested crypto periods run past index 4294967295"));
            }
            Some(Rotation { first, count, seconds: seconds.filter(|s| *s > 0) })
        }
    };

    Ok(KeyRequest { content_id, tracks, scheme, rotation })
}

/// protobuf JSON bytes: standard or URL-safe base64, padded or not.
fn bytes_field(value: &Value, name: &str) -> Result<Vec<u8>, Malformed> {
    let Value::String(text) = value else { return Err(malformed(format!("`{name}` must be a base64 string"))) };
    let text = text.trim();
    [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .into_iter()
        .find_map(|engine| engine.decode(text).ok())
        .ok_or_else(|| malformed(format!("`{name}` is not base64")))
}

/// protobuf JSON uint32: a number or a decimal string.
fn u32_field(value: &Value, name: &str) -> Result<u32, Malformed> {
    let number = match value {
        Value::Number(n) => {
            n.as_u64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64))
        }
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    number
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| malformed(format!("`{name}` must be a whole number from 0 to 4294967295")))
}

/// At most 40 characters of untrusted text, for error details.
fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CAPTURED: &str = r#"{"content_id":"dGVzdCBjb250ZW50IGlk","policy":"","tracks":[{"type":"SD"},{"type":"HD"},{"type":"UHD1"},{"type":"UHD2"},{"type":"AUDIO"}],"drm_types":["WIDEVINE"],"protection_scheme":"CENC"}"#;

    #[test]
    fn reads_the_captured_shaka_request() {
        let request = parse_key_request(CAPTURED.as_bytes()).unwrap();
        assert_eq!(request.content_id, b"test content id");
        assert_eq!(request.tracks, [TrackType::Sd, TrackType::Hd, TrackType::Uhd1, TrackType::Uhd2, TrackType::Audio]);
        assert_eq!(request.scheme, ProtectionScheme::Cenc);
        assert_eq!(request.rotation, None);
    }

    #[test]
    fn reads_rotation_fields_as_numbers_or_strings() {
        let json = r#"{"content_id":"bGl2ZQ==","tracks":[{"type":"SD"}],"protection_scheme":"CBCS",
            "first_crypto_period_index":"41","crypto_period_count":10,"crypto_period_seconds":2}"#;
        let request = parse_key_request(json.as_bytes()).unwrap();
        assert_eq!(request.scheme, ProtectionScheme::Cbcs);
        let rotation = request.rotation.unwrap();
        assert_eq!(rotation, Rotation { first: 41, count: 10, seconds: Some(2) });
        assert_eq!(rotation.periods().collect::<Vec<_>>(), (41..51).collect::<Vec<_>>());
    }

    #[test]
    fn refusals_carry_the_status_to_answer() {
        let status = |json: &str| parse_key_request(json.as_bytes()).unwrap_err().status;
        assert_eq!(status(r#"{"tracks":[{"type":"SD"}]}"#), Status::ContentIdMissing);
        assert_eq!(status(r#"{"content_id":"YQ==","tracks":[]}"#), Status::TrackTypeMissing);
        assert_eq!(status(r#"{"content_id":"YQ==","tracks":[{"type":"XD"}]}"#), Status::TrackTypeUnknown);
        assert_eq!(status(r#"{"content_id":"YQ==","tracks":[{"type":"SD"},{"type":"SD"}]}"#), Status::MalformedRequest);
        assert_eq!(
            status(
                r#"{"content_id":"YQ==","tracks":[{"type":"SD"}],"first_crypto_period_index":1,"crypto_period_count":0}"#
            ),
            Status::NoRequestedCryptoPeriods
        );
        assert_eq!(
            status(
                r#"{"content_id":"YQ==","tracks":[{"type":"SD"}],"first_crypto_period_index":4294967295,"crypto_period_count":2}"#
            ),
            Status::MalformedRequest
        );
        assert_eq!(status(r#"{"content_id":"!!","tracks":[{"type":"SD"}]}"#), Status::MalformedRequest);
        assert_eq!(status("[1]"), Status::MalformedRequest);
    }

    #[test]
    fn content_id_can_come_from_pssh_data() {
        let data =
            crate::widevine_pssh::WidevinePsshData { content_id: Some(b"from-pssh".to_vec()), ..Default::default() }
                .encode();
        let json = format!(r#"{{"pssh_data":"{}","tracks":[{{"type":"HD"}}]}}"#, STANDARD.encode(data));
        assert_eq!(parse_key_request(json.as_bytes()).unwrap().content_id, b"from-pssh");
    }

    #[test]
    fn envelope_keeps_the_exact_request_bytes() {
        let body = format!(r#"{{"request":"{}","signature":"AAEC","signer":"s"}}"#, STANDARD.encode(CAPTURED));
        let envelope = parse_envelope(body.as_bytes()).unwrap();
        assert_eq!(envelope.request, CAPTURED.as_bytes());
        assert_eq!(envelope.signature, [0, 1, 2]);
        assert_eq!(envelope.signer, "s");
        assert!(parse_envelope(br#"{"signature":"AA==","signer":"s"}"#).is_err());
        assert!(parse_envelope(br#"{"request":"","signer":"s"}"#).is_err());
        assert!(parse_envelope(b"not json").is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_envelopes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_envelope(&body);
        }

        #[test]
        fn arbitrary_key_requests_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_key_request(&body);
        }

        #[test]
        fn json_shaped_key_requests_never_panic(
            content in "[A-Za-z0-9+/=_-]{0,24}",
            tracks in proptest::collection::vec("[A-Z0-9]{0,5}", 0..8),
            scheme in prop_oneof![Just("\"CENC\"".to_owned()), Just("\"CBCS\"".to_owned()), any::<i64>().prop_map(|n| n.to_string()), "\"[A-Z]{0,6}\""],
            first in prop_oneof![any::<i64>().prop_map(|n| n.to_string()), Just("\"12\"".to_owned()), Just("1.5".to_owned()), Just("null".to_owned())],
            count in prop_oneof![any::<i64>().prop_map(|n| n.to_string()), Just("1e3".to_owned()), Just("\"x\"".to_owned())],
        ) {
            let tracks: Vec<String> = tracks.iter().map(|t| format!(r#"{{"type":"{t}"}}"#)).collect();
            let json = format!(
                r#"{{"content_id":"{content}","tracks":[{}],"protection_scheme":{scheme},"first_crypto_period_index":{first},"crypto_period_count":{count}}}"#,
                tracks.join(",")
            );
            if let Ok(request) = parse_key_request(json.as_bytes()) {
                prop_assert!(!request.content_id.is_empty());
                prop_assert!(!request.tracks.is_empty());
                if let Some(rotation) = request.rotation {
                    prop_assert!(rotation.count >= 1 && rotation.count <= MAX_PERIODS_PER_REQUEST);
                    prop_assert_eq!(rotation.periods().count() as u32, rotation.count);
                }
            }
        }
    }
}
