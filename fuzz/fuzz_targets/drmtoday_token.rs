//! DRMtoday upfront tokens: verify arbitrary input, and correctly signed tokens around arbitrary claims and rights.
#![no_main]

use chrono::DateTime;
use clavis_tokens::foreign::HmacAlgorithm;
use clavis_tokens::foreign::drmtoday::{parse_iso8601_duration, peek_merchant, sign_token, verify};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

fn lookup(kid: &str) -> Option<&'static [u8]> {
    (kid == "fuzz").then_some(SECRET.as_slice())
}

fuzz_target!(|data: &[u8]| {
    let Some(now) = DateTime::from_timestamp(1_700_000_000, 0) else { return };
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = verify(text, lookup, now, 30);
    let _ = peek_merchant(text);
    let _ = parse_iso8601_duration(text);
    // Past the signature: the bytes as the claims, and as the `crt` of otherwise valid claims.
    if let Ok(claims) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = verify(&sign_token(HmacAlgorithm::Hs256, "fuzz", SECRET, &claims), lookup, now, 30);
    }
    let claims = serde_json::json!({
        "jti": "j", "iat": 1_700_000_000, "optData": r#"{"merchant":"m","userId":"u"}"#, "crt": text,
    });
    let _ = verify(&sign_token(HmacAlgorithm::Hs512, "fuzz", SECRET, &claims), lookup, now, 30);
});
