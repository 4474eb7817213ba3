//! CPIX documents: parse arbitrary bytes (UTF-8 or UTF-16); whatever parses must write out and read back the same,
//! and must survive the SPEKE usage-rule mapping. Signed documents reach the XML-DSig verifier through `parse`; the
//! verifier is also fed directly (UTF-8 text without a DTD, what `parse` hands it), so mutations of a signed vector
//! that no longer pass the CPIX checks still exercise canonicalisation, digests and key handling.
#![no_main]

use clavis_keys::cpix::parse::parse;
use clavis_keys::cpix::signature::verify;
use clavis_keys::cpix::speke::track_type;
use clavis_keys::cpix::write::write;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && data.len() <= clavis_keys::cpix::parse::MAX_DOCUMENT_BYTES
        && !text.contains("<!")
    {
        let _ = verify(text);
    }
    let Ok(doc) = parse(data) else { return };
    for key in &doc.content_keys {
        let _ = track_type(doc.usage_rules.iter().filter(|r| r.kid == key.kid));
    }
    let xml = write(&doc).expect("a parsed document writes");
    let back = parse(xml.as_bytes()).expect("a written document parses");
    assert_eq!(back, doc, "round trip");
});
