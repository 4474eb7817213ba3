//! PallyCon tokens: parse and verify arbitrary input, and verify well-hashed tokens around arbitrary policies.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::DateTime;
use clavis_tokens::foreign::pallycon::{PallyconDrmType, PallyconPolicy, PallyconSecrets, PallyconToken, encode_token};
use libfuzzer_sys::fuzz_target;

// PallyCon's tutorial site (public test values).
const SITE_KEY: &str = "lU5D8s3PWoLls3PWFWkClULlFWk5D8oC";
const ACCESS_KEY: &str = "LT2FVJDp2Xr018zf4Di6lzvNOv3DKP20";

fuzz_target!(|data: &[u8]| {
    let (Ok(secrets), Some(now)) =
        (PallyconSecrets::new(SITE_KEY, ACCESS_KEY), DateTime::from_timestamp(1_563_353_824, 0))
    else {
        return;
    };
    // The header value as sent.
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(token) = PallyconToken::parse(text)
    {
        let _ = token.verify(&secrets, now, 600, 60);
    }
    // The bytes as the token's JSON.
    if let Ok(token) = PallyconToken::parse(&STANDARD.encode(data)) {
        let _ = token.verify(&secrets, now, 600, 60);
    }
    // The bytes as a decrypted policy, directly and inside a correctly hashed and encrypted token.
    let _ = PallyconPolicy::parse(data);
    if let Ok(policy) = std::str::from_utf8(data) {
        let token = encode_token(&secrets, PallyconDrmType::Widevine, "TUTO", "user", "cid", policy, now, None);
        let _ = PallyconToken::parse(&token).map(|token| token.verify(&secrets, now, 600, 60));
    }
});
