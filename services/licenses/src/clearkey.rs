//! W3C ClearKey: the CDM's license request JSON in, the JWK-set license out.
//!
//! Request: `{"kids":["<base64url>"],"type":"temporary"}`. License: `{"keys":[{"kty":"oct","k":..,"kid":..}],
//! "type":"temporary"}`, where `k` and `kid` MUST be base64url without padding (Chromium rejects anything else).

use clavis_core::ids::Kid;
use clavis_core::{ClavisError, ErrorCode, Result};
use serde::{Deserialize, Serialize};

/// Most KIDs one request may ask for.
pub const MAX_KIDS: usize = 64;
/// Largest request body accepted.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionType {
    Temporary,
    PersistentLicense,
}

impl SessionType {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionType::Temporary => "temporary",
            SessionType::PersistentLicense => "persistent-license",
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct ClearKeyRequest {
    pub kids: Vec<Kid>,
    pub session_type: SessionType,
}

#[derive(Deserialize)]
struct RawRequest {
    kids: Vec<String>,
    #[serde(rename = "type", default)]
    session_type: Option<String>,
}

fn malformed(detail: impl Into<String>) -> ClavisError {
    ClavisError::new(ErrorCode::LicenseRequestMalformed, detail.into())
}

impl ClearKeyRequest {
    pub fn parse(body: &[u8]) -> Result<ClearKeyRequest> {
        let raw: RawRequest =
            serde_json::from_slice(body).map_err(|e| malformed(format!("not a ClearKey license request: {e}")))?;
        if raw.kids.is_empty() || raw.kids.len() > MAX_KIDS {
            return Err(malformed(format!("`kids` must list 1 to {MAX_KIDS} key ids")));
        }
        let kids = raw
            .kids
            .iter()
            .map(|k| {
                Kid::parse_base64url(k).ok_or_else(|| malformed(format!("{k:?} is not a base64url 16-byte key id")))
            })
            .collect::<Result<Vec<_>>>()?;
        let session_type = match raw.session_type.as_deref() {
            None | Some("temporary") => SessionType::Temporary,
            Some("persistent-license") => SessionType::PersistentLicense,
            Some(other) => return Err(malformed(format!("session type {other:?} is not supported"))),
        };
        Ok(ClearKeyRequest { kids, session_type })
    }
}

#[derive(Serialize)]
struct JsonWebKey {
    kty: &'static str,
    k: String,
    kid: String,
}

#[derive(Serialize)]
struct License {
    keys: Vec<JsonWebKey>,
    #[serde(rename = "type")]
    session_type: &'static str,
}

/// The license body for `(kid, key)` pairs.
pub fn encode_license(keys: &[(Kid, [u8; 16])], session_type: SessionType) -> Result<Vec<u8>> {
    use base64::Engine;
    let license = License {
        keys: keys
            .iter()
            .map(|(kid, key)| JsonWebKey {
                kty: "oct",
                k: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key),
                kid: kid.to_base64url(),
            })
            .collect(),
        session_type: session_type.as_str(),
    };
    serde_json::to_vec(&license).map_err(|e| ClavisError::internal("encode clearkey license", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spec_example_round_trips() {
        let request = ClearKeyRequest::parse(br#"{"kids":["LwVHf8JLtPrv2GUXFW2v_A"],"type":"temporary"}"#).unwrap();
        let kid = Kid::parse_hex("2f05477fc24bb4faefd86517156daffc").unwrap();
        assert_eq!(request, ClearKeyRequest { kids: vec![kid], session_type: SessionType::Temporary });
        let mut key = [0u8; 16];
        hex::decode_to_slice("b50d1b25559be9bd0a3cbe8ab59232fc", &mut key).unwrap();
        let license = encode_license(&[(kid, key)], SessionType::Temporary).unwrap();
        assert_eq!(
            std::str::from_utf8(&license).unwrap(),
            r#"{"keys":[{"kty":"oct","k":"tQ0bJVWb6b0KPL6KtZIy_A","kid":"LwVHf8JLtPrv2GUXFW2v_A"}],"type":"temporary"}"#
        );
    }

    #[test]
    fn bad_requests_are_refused() {
        for body in [
            &b""[..],
            b"{}",
            b"[]",
            br#"{"kids":[]}"#,
            br#"{"kids":["AAAA"]}"#,
            br#"{"kids":["LwVHf8JLtPrv2GUXFW2v_A"],"type":"x"}"#,
        ] {
            let err = ClearKeyRequest::parse(body).unwrap_err();
            assert_eq!(err.code, ErrorCode::LicenseRequestMalformed, "{:?}", String::from_utf8_lossy(body));
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = ClearKeyRequest::parse(&body);
        }

        #[test]
        fn any_kid_list_round_trips(kids in proptest::collection::vec(any::<[u8; 16]>(), 1..MAX_KIDS)) {
            let encoded: Vec<String> = kids.iter().map(|k| Kid(*k).to_base64url()).collect();
            let body = serde_json::to_vec(&serde_json::json!({"kids": encoded})).unwrap();
            let parsed = ClearKeyRequest::parse(&body).unwrap();
            prop_assert_eq!(parsed.kids, kids.into_iter().map(Kid).collect::<Vec<_>>());
        }
    }
}
