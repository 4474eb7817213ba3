//! Native Clavis tokens: parse arbitrary input, and well-formed JWTs around arbitrary headers and claims; the
//! `policy` claim as the verifier reads it once the signature checked; and device registration tokens.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clavis_tokens::PresentedToken;
use libfuzzer_sys::fuzz_target;

fn parse(raw: &str) {
    if let Ok(token) = PresentedToken::parse(raw) {
        let _ = token.issuer();
    }
}

fuzz_target!(|data: &[u8]| {
    // The token as presented.
    if let Ok(text) = std::str::from_utf8(data) {
        parse(text);
        let _ = clavis_tokens::registration::PresentedRegistration::parse(text);
        if let Ok(raw) = serde_json::value::RawValue::from_string(text.to_owned()) {
            let _ = clavis_tokens::native::parse_policy(Some(&raw));
        }
    }
    // Past base64url: the bytes as the claims under a valid header, and as the header over valid claims.
    const HEADER: &str = r#"{"alg":"HS256","typ":"JWT","kid":"k1"}"#;
    const CLAIMS: &str = r#"{"iss":"site","sub":"user","cid":"content","iat":1700000000,"exp":1700000600}"#;
    let bytes = URL_SAFE_NO_PAD.encode(data);
    let header = URL_SAFE_NO_PAD.encode(HEADER);
    let claims = URL_SAFE_NO_PAD.encode(CLAIMS);
    parse(&format!("{header}.{bytes}.c2ln"));
    parse(&format!("{bytes}.{claims}.c2ln"));
});
