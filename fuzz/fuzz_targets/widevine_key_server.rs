//! Widevine key-server requests: arbitrary bytes as the envelope and as the signed key request inside it, and every
//! envelope that parses checked against an AES signer (verification must refuse, never panic, on any signature).
#![no_main]

use clavis_keys::widevine_key_server::{SignerKey, aes_signature, parse_envelope, parse_key_request};
use libfuzzer_sys::fuzz_target;

const KEY: [u8; 32] = *b"widevine key-server fuzz key 32b";
const IV: [u8; 16] = *b"fuzz iv 16 bytes";

fuzz_target!(|data: &[u8]| {
    let signer = SignerKey::Aes { key: KEY.into(), iv: IV };
    if let Ok(envelope) = parse_envelope(data) {
        let _ = signer.verify(&envelope.request, &envelope.signature);
        let _ = parse_key_request(&envelope.request);
    }
    if let Ok(request) = parse_key_request(data) {
        // What a parsed request promises the handler.
        assert!(!request.content_id.is_empty() && !request.tracks.is_empty());
        if let Some(rotation) = request.rotation {
            assert!(rotation.count >= 1);
            assert_eq!(rotation.periods().count(), rotation.count as usize);
        }
    }
    // The same bytes signed correctly must verify; one flipped signature bit must not.
    let mut signature = aes_signature(&KEY, &IV, data);
    assert!(signer.verify(data, &signature));
    signature[(data.len() % 20).min(19)] ^= 1;
    assert!(!signer.verify(data, &signature));
});
