//! The PlayReady license acquisition challenge, read as far as a proxy can (shared/specs/playready.md): the KIDs of
//! the content header, the CustomData (where a license token may travel), the license nonce and the client time.
//! The device certificate is encrypted to Microsoft's server key, so the device cannot be named from it.
//!
//! A challenge arrives as the SOAP `AcquireLicense` envelope, or as the EME `PlayReadyKeyMessage` (UTF-16LE XML)
//! that wraps it in base64; [`parse`] answers the SOAP envelope to forward either way. Nothing here is trusted on
//! its own: the token and the rules decide, and the upstream server checks the signature and the device.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clavis_core::ids::Kid;
use clavis_keys::playready::parse_wrmheader_str;
use quick_xml::Reader;
use quick_xml::events::Event;

/// The largest challenge read (real ones are 3 to 10 KiB).
pub const MAX_CHALLENGE_BYTES: usize = 64 * 1024;
const MAX_DEPTH: usize = 32;
/// The longest CustomData kept (a token is far shorter).
pub const MAX_CUSTOM_DATA: usize = 8 * 1024;

/// What a proxy reads from a challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcquireLicense {
    /// The SOAP envelope, as it goes upstream (the wrapper's decoded challenge, or the body itself).
    pub soap: Vec<u8>,
    pub kids: Vec<Kid>,
    /// The `LA_URL` of the content header, when it has one.
    pub la_url: Option<String>,
    pub custom_data: Option<String>,
    /// `LicenseNonce` (base64 of 16 bytes): the message's identity for replay protection.
    pub license_nonce: Option<String>,
    /// `ClientTime`, Unix seconds by the client's clock.
    pub client_time: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("the challenge is larger than {MAX_CHALLENGE_BYTES} bytes")]
    TooLarge,
    #[error("the challenge is neither UTF-8 nor UTF-16LE text")]
    Encoding,
    #[error("the challenge is not well-formed XML: {0}")]
    Xml(String),
    #[error("the challenge is not a SOAP AcquireLicense request (found {0})")]
    NotAcquireLicense(String),
    #[error("the PlayReadyKeyMessage has no base64 Challenge")]
    Wrapper,
    #[error("the challenge has no content header (LA/ContentHeader/WRMHEADER)")]
    NoHeader,
    #[error("the content header: {0}")]
    Header(String),
    #[error("the content header names no KID")]
    NoKid,
    #[error("{0} is malformed")]
    Field(&'static str),
    #[error("the challenge repeats {0}")]
    Repeated(&'static str),
}

fn decode_text(bytes: &[u8]) -> Result<String, ChallengeError> {
    if let Some(rest) = bytes.strip_prefix(&[0xef, 0xbb, 0xbf]) {
        return std::str::from_utf8(rest).map(str::to_owned).map_err(|_| ChallengeError::Encoding);
    }
    let utf16 = bytes.strip_prefix(&[0xff, 0xfe]).or_else(|| (bytes.get(1) == Some(&0)).then_some(bytes));
    match utf16 {
        Some(units) => {
            if !units.len().is_multiple_of(2) {
                return Err(ChallengeError::Encoding);
            }
            let units = units.chunks_exact(2).map(|p| u16::from_le_bytes([p[0], p[1]]));
            char::decode_utf16(units).collect::<Result<String, _>>().map_err(|_| ChallengeError::Encoding)
        }
        None => std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| ChallengeError::Encoding),
    }
}

fn xml_error(e: impl std::fmt::Display) -> ChallengeError {
    ChallengeError::Xml(e.to_string())
}

/// The text of an element, with entities resolved.
fn push_text(out: &mut String, event: &Event<'_>) -> Result<(), ChallengeError> {
    match event {
        Event::Text(t) => out.push_str(&t.xml10_content()),
        Event::CData(t) => out.push_str(&t.xml10_content()),
        Event::GeneralRef(r) => {
            if let Some(c) = r.resolve_char_ref().map_err(xml_error)? {
                out.push(c);
            } else {
                let entity = quick_xml::escape::resolve_predefined_entity(r)
                    .ok_or_else(|| ChallengeError::Xml(format!("unknown entity &{};", &**r)))?;
                out.push_str(entity);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Read a challenge (SOAP envelope or EME wrapper).
pub fn parse(body: &[u8]) -> Result<AcquireLicense, ChallengeError> {
    if body.len() > MAX_CHALLENGE_BYTES {
        return Err(ChallengeError::TooLarge);
    }
    let text = decode_text(body)?;
    if root_name(&text)? == "PlayReadyKeyMessage" {
        let soap = unwrap_key_message(&text)?;
        let inner = decode_text(&soap)?;
        return parse_soap(&inner, soap);
    }
    parse_soap(&text, body.to_vec())
}

/// The local name of the first element.
fn root_name(text: &str) -> Result<String, ChallengeError> {
    let mut reader = Reader::from_str(text);
    loop {
        match reader.read_event().map_err(xml_error)? {
            Event::Start(e) | Event::Empty(e) => {
                return Ok(e.local_name().as_ref().to_owned());
            }
            Event::DocType(_) => return Err(ChallengeError::Xml("a DTD is not allowed".to_owned())),
            Event::Eof => return Err(ChallengeError::NotAcquireLicense("no element".to_owned())),
            _ => {}
        }
    }
}

/// The base64 `Challenge` of an EME `PlayReadyKeyMessage`, decoded.
fn unwrap_key_message(text: &str) -> Result<Vec<u8>, ChallengeError> {
    let mut reader = Reader::from_str(text);
    let (mut inside, mut value, mut depth) = (false, String::new(), 0usize);
    loop {
        let event = reader.read_event().map_err(xml_error)?;
        match &event {
            Event::Start(e) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(ChallengeError::Xml("elements nested too deeply".to_owned()));
                }
                if e.local_name().as_ref() == "Challenge" {
                    inside = true;
                }
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                if inside && e.local_name().as_ref() == "Challenge" {
                    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
                    return STANDARD.decode(compact).map_err(|_| ChallengeError::Wrapper);
                }
            }
            Event::DocType(_) => return Err(ChallengeError::Xml("a DTD is not allowed".to_owned())),
            Event::Eof => return Err(ChallengeError::Wrapper),
            other if inside => push_text(&mut value, other)?,
            _ => {}
        }
    }
}

/// Where the reader is in the envelope.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    LicenseNonce,
    ClientTime,
    CustomData,
}

fn parse_soap(text: &str, soap: Vec<u8>) -> Result<AcquireLicense, ChallengeError> {
    let mut reader = Reader::from_str(text);
    let mut path: Vec<String> = Vec::new();
    let mut header: Option<String> = None;
    let (mut nonce, mut time, mut custom) = (None::<String>, None::<String>, None::<String>);
    let mut capturing: Option<(Field, String)> = None;
    let mut header_start: Option<(usize, usize)> = None;
    let mut acquire = false;
    loop {
        let before = usize::try_from(reader.buffer_position()).map_err(|_| ChallengeError::Field("position"))?;
        let event = reader.read_event().map_err(xml_error)?;
        match &event {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_owned();
                if path.is_empty() && name != "Envelope" {
                    return Err(ChallengeError::NotAcquireLicense(name));
                }
                if path.len() == 2 && name == "AcquireLicense" && path[1] == "Body" {
                    acquire = true;
                }
                // Envelope/Body/AcquireLicense/challenge/Challenge/LA/<field>
                let in_la = path.len() == 6 && path[5] == "LA" && acquire;
                if in_la {
                    let field = match name.as_str() {
                        "LicenseNonce" => Some(Field::LicenseNonce),
                        "ClientTime" => Some(Field::ClientTime),
                        "CustomData" => Some(Field::CustomData),
                        _ => None,
                    };
                    capturing = field.map(|f| (f, String::new()));
                }
                if path.len() == 7 && path[6] == "ContentHeader" && name == "WRMHEADER" && acquire {
                    if header.is_some() || header_start.is_some() {
                        return Err(ChallengeError::Repeated("WRMHEADER"));
                    }
                    header_start = Some((before, path.len()));
                }
                path.push(name);
                if path.len() > MAX_DEPTH {
                    return Err(ChallengeError::Xml("elements nested too deeply".to_owned()));
                }
            }
            Event::End(_) => {
                path.pop();
                if let Some((start, depth)) = header_start
                    && path.len() == depth
                {
                    let end =
                        usize::try_from(reader.buffer_position()).map_err(|_| ChallengeError::Field("position"))?;
                    let raw = text.get(start..end).ok_or(ChallengeError::Field("WRMHEADER"))?;
                    header = Some(raw.trim().to_owned());
                    header_start = None;
                }
                if path.len() == 6
                    && let Some((field, value)) = capturing.take()
                {
                    let slot = match field {
                        Field::LicenseNonce => &mut nonce,
                        Field::ClientTime => &mut time,
                        Field::CustomData => &mut custom,
                    };
                    if slot.is_some() {
                        return Err(ChallengeError::Repeated(match field {
                            Field::LicenseNonce => "LicenseNonce",
                            Field::ClientTime => "ClientTime",
                            Field::CustomData => "CustomData",
                        }));
                    }
                    *slot = Some(value.trim().to_owned());
                }
            }
            Event::DocType(_) => return Err(ChallengeError::Xml("a DTD is not allowed".to_owned())),
            Event::Eof => break,
            other => {
                if let Some((_, value)) = &mut capturing {
                    push_text(value, other)?;
                    if value.len() > MAX_CUSTOM_DATA {
                        return Err(ChallengeError::Field("CustomData"));
                    }
                }
            }
        }
    }
    if !path.is_empty() {
        return Err(ChallengeError::Xml("unclosed element".to_owned()));
    }
    if !acquire {
        return Err(ChallengeError::NotAcquireLicense("no soap:Body/AcquireLicense".to_owned()));
    }
    let header = header.ok_or(ChallengeError::NoHeader)?;
    let parsed = parse_wrmheader_str(&header).map_err(|e| ChallengeError::Header(e.to_string()))?;
    let kids = parsed.kid_list();
    if kids.is_empty() {
        return Err(ChallengeError::NoKid);
    }
    if let Some(nonce) = &nonce
        && STANDARD.decode(nonce).map_or(true, |n| n.len() != 16)
    {
        return Err(ChallengeError::Field("LicenseNonce"));
    }
    let client_time = time.map(|t| t.parse::<i64>().map_err(|_| ChallengeError::Field("ClientTime"))).transpose()?;
    Ok(AcquireLicense {
        soap,
        kids,
        la_url: parsed.la_url,
        custom_data: custom.filter(|c| !c.is_empty()),
        license_nonce: nonce,
        client_time,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use proptest::prelude::*;

    use super::*;

    fn vector(name: &str) -> Vec<u8> {
        let dir = std::env::var_os("CLAVIS_TEST_VECTORS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors"));
        std::fs::read(dir.join("playready").join(name)).expect("the shared PlayReady vectors (CLAVIS_TEST_VECTORS)")
    }

    /// Microsoft's example, with the docs' typo `ml:space` corrected to `xml:space` as real clients send it.
    fn microsoft_example() -> String {
        String::from_utf8(vector("microsoft-docs/license_challenge_example.xml"))
            .unwrap()
            .replace("ml:space", "xml:space")
    }

    #[test]
    fn microsofts_example_challenge_is_read() {
        let text = microsoft_example();
        let parsed = parse(text.as_bytes()).unwrap();
        // KID 4Rplb+TbNES8tGkNFWTEHA== is a little-endian GUID.
        let guid: [u8; 16] = STANDARD.decode("4Rplb+TbNES8tGkNFWTEHA==").unwrap().try_into().unwrap();
        assert_eq!(parsed.kids, vec![clavis_keys::playready::kid_from_guid_le(guid)]);
        assert_eq!(parsed.license_nonce.as_deref(), Some("lojenZOMSu6K8OgsuUB7lA=="));
        assert_eq!(parsed.client_time, Some(1_487_020_942));
        assert_eq!(parsed.la_url.as_deref(), Some("http://playready-testserver.azurewebsites.net/rightsmanager.asmx"));
        assert_eq!(parsed.custom_data, None);
        assert_eq!(parsed.soap, text.as_bytes());
    }

    #[test]
    fn custom_data_and_the_eme_wrapper() {
        let soap = microsoft_example().replace(
            "<LicenseNonce>",
            "<CustomData>eyJ0b2tlbiI6IjEyMyJ9.a&amp;b</CustomData>\n            <LicenseNonce>",
        );
        let wrapper = format!(
            "<PlayReadyKeyMessage type=\"LicenseAcquisition\"><LicenseAcquisition Version=\"1\"><Challenge \
             encoding=\"base64encoded\">{}</Challenge><HttpHeaders></HttpHeaders></LicenseAcquisition></PlayReadyKeyMessage>",
            STANDARD.encode(soap.as_bytes())
        );
        // EME hands the wrapper over as UTF-16LE.
        let utf16: Vec<u8> = wrapper.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let parsed = parse(&utf16).unwrap();
        assert_eq!(parsed.custom_data.as_deref(), Some("eyJ0b2tlbiI6IjEyMyJ9.a&b"));
        assert_eq!(parsed.soap, soap.as_bytes(), "the decoded SOAP goes upstream");
    }

    #[test]
    fn bad_challenges_are_refused_with_reasons() {
        let example = microsoft_example();
        for (body, want) in [
            ("<html/>".to_owned(), "not a SOAP"),
            ("<soap:Envelope xmlns:soap=\"x\"><soap:Body/></soap:Envelope>".to_owned(), "not a SOAP"),
            (
                example.replace("<WRMHEADER", "<WRMHEADERX").replace("</WRMHEADER>", "</WRMHEADERX>"),
                "no content header",
            ),
            (example.replace("<ClientTime>1487020942", "<ClientTime>soon"), "ClientTime is malformed"),
            (example.replace("lojenZOMSu6K8OgsuUB7lA==", "AAAA"), "LicenseNonce is malformed"),
            (example.replace("<KID>4Rplb+TbNES8tGkNFWTEHA==</KID>", "<KID>bad</KID>"), "content header"),
            (example.replace("</soap:Envelope>", ""), "not well-formed"),
            (format!("<!DOCTYPE x [<!ENTITY a \"b\">]>{example}"), "DTD"),
        ] {
            let err = parse(body.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(want), "{want}: got {err}");
        }
        assert_eq!(parse(&vec![b' '; MAX_CHALLENGE_BYTES + 1]).unwrap_err(), ChallengeError::TooLarge);
        assert_eq!(parse(&[0xff, 0xfe, 0x00]).unwrap_err(), ChallengeError::Encoding);
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn mutated_challenges_never_panic(at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
            let mut body = microsoft_example().into_bytes();
            let i = at.index(body.len());
            body[i] = byte;
            body.truncate(cut.index(body.len() + 1));
            let _ = parse(&body);
        }
    }
}
