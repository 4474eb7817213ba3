//! Axinom messages: verify arbitrary input, and correctly signed messages around arbitrary claims and inline keys.
#![no_main]

use chrono::DateTime;
use clavis_tokens::foreign::axinom::{AxinomComKey, peek_com_key_id, sign_message, verify};
use libfuzzer_sys::fuzz_target;
use uuid::Uuid;

const COM_KEY_ID: Uuid = Uuid::from_u128(0x69e5_4088_e9e0_4530_8c1a_1eb6_dcd0_d14e);
const COM_KEY: [u8; 32] = *b"axinom communication key 32 byte";

fn lookup(id: &Uuid) -> Option<AxinomComKey> {
    (*id == COM_KEY_ID).then(|| AxinomComKey::from_bytes(COM_KEY))
}

fuzz_target!(|data: &[u8]| {
    let Some(now) = DateTime::from_timestamp(1_700_000_000, 0) else { return };
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = verify(text, lookup, now, 60);
    let _ = peek_com_key_id(text);
    let key = AxinomComKey::from_bytes(COM_KEY);
    // Past the signature: the bytes as the claims (with the right key id), and as an inline key entry.
    if let Ok(mut claims) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Some(fields) = claims.as_object_mut() {
            fields.insert("com_key_id".into(), COM_KEY_ID.to_string().into());
        }
        let _ = verify(&sign_message(&key, &claims), lookup, now, 60);
    }
    let (id, encrypted_key) = text.split_once('|').unwrap_or((text, ""));
    let claims = serde_json::json!({
        "version": 1, "com_key_id": COM_KEY_ID.to_string(),
        "message": {"type": "entitlement_message", "version": 2,
                    "content_keys_source": {"inline": [{"id": id, "encrypted_key": encrypted_key}]}},
    });
    let _ = verify(&sign_message(&key, &claims), lookup, now, 60);
});
