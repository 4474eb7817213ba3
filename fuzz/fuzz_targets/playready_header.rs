//! PlayReady Objects and Headers, and Widevine PSSH data: all arrive from outside (PSSH boxes, license challenges).
#![no_main]

use clavis_keys::playready::{PRO_RECORD_WRMHEADER, parse_playready_object, parse_wrmheader};
use clavis_keys::widevine_pssh::parse_widevine_pssh_data;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The bytes as a PlayReady Object, and each header record found in it as a header.
    if let Ok(records) = parse_playready_object(data) {
        for record in records.iter().filter(|r| r.record_type == PRO_RECORD_WRMHEADER) {
            if let Ok(header) = parse_wrmheader(&record.value) {
                let _ = header.kid_list();
            }
        }
    }
    // The bytes as a header directly (UTF-16LE with or without BOM, or UTF-8).
    if let Ok(header) = parse_wrmheader(data) {
        for kid in &header.kids {
            let _ = kid.checksum_matches(&[0u8; 16]);
        }
    }
    // The bytes as Widevine PSSH data.
    let _ = parse_widevine_pssh_data(data);
});
