//! CPIX documents: parse arbitrary bytes (UTF-8 or UTF-16); whatever parses must write out and read back the same,
//! and must survive the SPEKE usage-rule mapping.
#![no_main]

use clavis_keys::cpix::parse::parse;
use clavis_keys::cpix::speke::track_type;
use clavis_keys::cpix::write::write;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = parse(data) else { return };
    for key in &doc.content_keys {
        let _ = track_type(doc.usage_rules.iter().filter(|r| r.kid == key.kid));
    }
    let xml = write(&doc).expect("a parsed document writes");
    let back = parse(xml.as_bytes()).expect("a written document parses");
    assert_eq!(back, doc, "round trip");
});
