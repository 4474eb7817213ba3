//! License challenges arrive from players: the Widevine CDM's license request (protobuf) and the PlayReady SOAP
//! challenge (XML, or the EME wrapper around it), plus the rules' request headers. The first byte picks the parser.
#![no_main]

use clavis_licenses::playready::challenge as playready;
use clavis_licenses::rules::RequestFacts;
use clavis_licenses::widevine::challenge as widevine;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 3 {
        0 => {
            if let Ok(widevine::Challenge::License(request)) = widevine::parse(rest) {
                assert!(request.kids.len() <= widevine::MAX_KIDS);
            }
        }
        1 => {
            if let Ok(challenge) = playready::parse(rest) {
                assert!(!challenge.kids.is_empty());
            }
        }
        // The `X-Clavis-*` headers, split on newlines as name: value.
        _ => {
            let mut headers = actix_web::http::header::HeaderMap::new();
            for line in rest.split(|b| *b == b'\n') {
                let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
                let (name, value) = (&line[..colon], &line[colon + 1..]);
                if let (Ok(name), Ok(value)) = (
                    actix_web::http::header::HeaderName::from_bytes(name),
                    actix_web::http::header::HeaderValue::from_bytes(value),
                ) {
                    headers.insert(name, value);
                }
            }
            let _ = RequestFacts::from_headers(&headers);
        }
    }
});
