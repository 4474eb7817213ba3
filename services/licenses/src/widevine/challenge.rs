//! The Widevine CDM's license request (the EME `message`), read as far as a proxy needs: which keys it asks for,
//! whether it renews, which session and device it comes from, and when it was made.
//!
//! The challenge is a `SignedMessage` protobuf whose `msg` is a `LicenseRequest` (field numbers from Widevine's
//! `license_protocol.proto`). Clavis cannot verify the CDM's signature (that needs Google's root of trust, which the
//! upstream license service holds), so nothing read here grants anything on its own: the token and the rules decide,
//! and the upstream checks the device. The reader bounds every read, never panics, skips unknown fields, and refuses
//! what it cannot read unambiguously. KIDs come from the Widevine PSSH data (or the full `pssh` boxes that newer
//! CDMs put in `init_data`, of any system when they are version 1), or the WebM key id.

use clavis_core::ids::Kid;
use clavis_keys::widevine_pssh::{WIDEVINE_SYSTEM_ID, parse_widevine_pssh_data};

/// The largest challenge read (real ones are a few kilobytes).
pub const MAX_CHALLENGE_BYTES: usize = 64 * 1024;
/// Most KIDs one request may name.
pub const MAX_KIDS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestType {
    New,
    Renewal,
    Release,
}

/// What a challenge is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// `SERVICE_CERTIFICATE_REQUEST` (the two bytes `08 04`): the CDM asks for the license service's certificate
    /// before its first license request (privacy mode). Relayed without keys.
    ServiceCertificate,
    License(LicenseRequest),
}

/// The facts of a `LICENSE_REQUEST`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LicenseRequest {
    pub request_type: Option<RequestType>,
    pub kids: Vec<Kid>,
    /// `content_id` of the Widevine PSSH data, when present.
    pub pssh_content_id: Option<Vec<u8>>,
    /// The CDM's opaque session request id (NEW requests); the license id's request id (renewals, releases).
    pub request_id: Option<Vec<u8>>,
    /// SHA-256 of the device's client token (its DRM certificate), when the client id is sent in clear.
    pub client_token_sha256: Option<[u8; 32]>,
    /// The client id is encrypted to the service certificate (privacy mode): the device cannot be named from it.
    pub client_id_encrypted: bool,
    /// `request_time`, Unix seconds by the client's clock.
    pub request_time: Option<i64>,
    /// `OFFLINE` was asked for.
    pub offline: bool,
    /// SHA-256 of the `LicenseRequest` bytes: the message's identity for replay protection.
    pub message_sha256: [u8; 32],
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("the challenge is empty")]
    Empty,
    #[error("the challenge is larger than {MAX_CHALLENGE_BYTES} bytes")]
    TooLarge,
    #[error("{0}: the protobuf is truncated")]
    Truncated(&'static str),
    #[error("{0}: a varint is longer than 64 bits")]
    VarintOverflow(&'static str),
    #[error("{0}: field {1} has the wrong wire type")]
    WrongWireType(&'static str, u32),
    #[error("{0}: unsupported wire type {1}")]
    UnsupportedWireType(&'static str, u8),
    #[error("{0}: invalid field number")]
    InvalidField(&'static str),
    #[error("the SignedMessage is of type {0}, not a license or service certificate request")]
    NotARequest(u64),
    #[error("the SignedMessage has no msg")]
    NoMessage,
    #[error("a key id is {0} bytes, not 16")]
    KidLength(usize),
    #[error("the request names more than {MAX_KIDS} keys")]
    TooManyKids,
    #[error("a pssh box is malformed")]
    PsshBox,
    #[error("the Widevine PSSH data is malformed: {0}")]
    PsshData(String),
}

const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_FIXED32: u8 = 5;

/// One field of a protobuf message.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// Fixed-width values (wire types 1 and 5): no field read here has one.
    Fixed,
}

/// A bounds-checked field reader over attacker-controlled bytes.
struct Fields<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// The message being read, for errors.
    message: &'static str,
}

impl<'a> Fields<'a> {
    fn new(message: &'static str, bytes: &'a [u8]) -> Fields<'a> {
        Fields { bytes, pos: 0, message }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ChallengeError> {
        let end = self.pos.checked_add(n).ok_or(ChallengeError::Truncated(self.message))?;
        let slice = self.bytes.get(self.pos..end).ok_or(ChallengeError::Truncated(self.message))?;
        self.pos = end;
        Ok(slice)
    }

    fn varint(&mut self) -> Result<u64, ChallengeError> {
        let mut value = 0u64;
        for i in 0..10u32 {
            let byte = *self.take(1)?.first().ok_or(ChallengeError::Truncated(self.message))?;
            let bits = u64::from(byte & 0x7f);
            if i == 9 && bits > 1 {
                return Err(ChallengeError::VarintOverflow(self.message));
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ChallengeError::VarintOverflow(self.message))
    }

    /// The next field, or `None` at the end.
    fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, ChallengeError> {
        if self.pos >= self.bytes.len() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let field = u32::try_from(tag >> 3)
            .ok()
            .filter(|f| (1..=0x1fff_ffff).contains(f))
            .ok_or(ChallengeError::InvalidField(self.message))?;
        let value = match (tag & 7) as u8 {
            WIRE_VARINT => Value::Varint(self.varint()?),
            WIRE_LEN => {
                let len = usize::try_from(self.varint()?).map_err(|_| ChallengeError::Truncated(self.message))?;
                Value::Bytes(self.take(len)?)
            }
            WIRE_FIXED64 => {
                self.take(8)?;
                Value::Fixed
            }
            WIRE_FIXED32 => {
                self.take(4)?;
                Value::Fixed
            }
            wire => return Err(ChallengeError::UnsupportedWireType(self.message, wire)),
        };
        Ok(Some((field, value)))
    }
}

fn bytes<'a>(message: &'static str, field: u32, value: Value<'a>) -> Result<&'a [u8], ChallengeError> {
    match value {
        Value::Bytes(b) => Ok(b),
        _ => Err(ChallengeError::WrongWireType(message, field)),
    }
}

fn varint(message: &'static str, field: u32, value: Value<'_>) -> Result<u64, ChallengeError> {
    match value {
        Value::Varint(v) => Ok(v),
        _ => Err(ChallengeError::WrongWireType(message, field)),
    }
}

/// Read a challenge.
pub fn parse(challenge: &[u8]) -> Result<Challenge, ChallengeError> {
    if challenge.is_empty() {
        return Err(ChallengeError::Empty);
    }
    if challenge.len() > MAX_CHALLENGE_BYTES {
        return Err(ChallengeError::TooLarge);
    }
    const M: &str = "SignedMessage";
    let mut fields = Fields::new(M, challenge);
    let (mut kind, mut msg) = (None, None);
    while let Some((field, value)) = fields.next_field()? {
        match field {
            1 => kind = Some(varint(M, field, value)?),
            2 => msg = Some(bytes(M, field, value)?),
            _ => {}
        }
    }
    match kind {
        Some(4) => Ok(Challenge::ServiceCertificate),
        Some(1) | None => parse_license_request(msg.ok_or(ChallengeError::NoMessage)?).map(Challenge::License),
        Some(other) => Err(ChallengeError::NotARequest(other)),
    }
}

fn parse_license_request(msg: &[u8]) -> Result<LicenseRequest, ChallengeError> {
    const M: &str = "LicenseRequest";
    let mut request = LicenseRequest { message_sha256: clavis_core::crypto::sha256(msg), ..Default::default() };
    let mut fields = Fields::new(M, msg);
    while let Some((field, value)) = fields.next_field()? {
        match field {
            1 => read_client_id(bytes(M, field, value)?, &mut request)?,
            2 => read_content_id(bytes(M, field, value)?, &mut request)?,
            3 => {
                request.request_type = match varint(M, field, value)? {
                    1 => Some(RequestType::New),
                    2 => Some(RequestType::Renewal),
                    3 => Some(RequestType::Release),
                    _ => None,
                }
            }
            4 => request.request_time = i64::try_from(varint(M, field, value)?).ok(),
            8 => {
                bytes(M, field, value)?;
                request.client_id_encrypted = true;
            }
            _ => {}
        }
    }
    request.kids.sort_by_key(|k| k.0);
    request.kids.dedup();
    Ok(request)
}

fn read_client_id(client_id: &[u8], request: &mut LicenseRequest) -> Result<(), ChallengeError> {
    const M: &str = "ClientIdentification";
    let mut fields = Fields::new(M, client_id);
    while let Some((field, value)) = fields.next_field()? {
        if field == 2 {
            request.client_token_sha256 = Some(clavis_core::crypto::sha256(bytes(M, field, value)?));
        }
    }
    Ok(())
}

fn push_kid(request: &mut LicenseRequest, kid: &[u8]) -> Result<(), ChallengeError> {
    let kid: [u8; 16] = kid.try_into().map_err(|_| ChallengeError::KidLength(kid.len()))?;
    if request.kids.len() >= MAX_KIDS {
        return Err(ChallengeError::TooManyKids);
    }
    request.kids.push(Kid(kid));
    Ok(())
}

fn license_type(request: &mut LicenseRequest, value: u64) {
    if value == 2 {
        request.offline = true;
    }
}

fn read_content_id(content_id: &[u8], request: &mut LicenseRequest) -> Result<(), ChallengeError> {
    const M: &str = "ContentIdentification";
    let mut fields = Fields::new(M, content_id);
    while let Some((field, value)) = fields.next_field()? {
        let inner = bytes(M, field, value)?;
        match field {
            // WidevinePsshData { repeated bytes pssh_data = 1; license_type = 2; request_id = 3 }
            1 => {
                const W: &str = "WidevinePsshData";
                let mut fields = Fields::new(W, inner);
                while let Some((field, value)) = fields.next_field()? {
                    match field {
                        1 => read_init_data(bytes(W, field, value)?, request)?,
                        2 => license_type(request, varint(W, field, value)?),
                        3 => request.request_id = Some(bytes(W, field, value)?.to_vec()),
                        _ => {}
                    }
                }
            }
            // WebmKeyId { header = 1 (the KID); license_type = 2; request_id = 3 }
            2 => {
                const W: &str = "WebmKeyId";
                let mut fields = Fields::new(W, inner);
                while let Some((field, value)) = fields.next_field()? {
                    match field {
                        1 => push_kid(request, bytes(W, field, value)?)?,
                        2 => license_type(request, varint(W, field, value)?),
                        3 => request.request_id = Some(bytes(W, field, value)?.to_vec()),
                        _ => {}
                    }
                }
            }
            // ExistingLicense { LicenseIdentification license_id = 1 { request_id = 1; ...; type = 4 } }
            3 => {
                const E: &str = "ExistingLicense";
                let mut fields = Fields::new(E, inner);
                while let Some((field, value)) = fields.next_field()? {
                    if field == 1 {
                        const L: &str = "LicenseIdentification";
                        let mut id = Fields::new(L, bytes(E, field, value)?);
                        while let Some((field, value)) = id.next_field()? {
                            match field {
                                1 => request.request_id = Some(bytes(L, field, value)?.to_vec()),
                                4 => license_type(request, varint(L, field, value)?),
                                _ => {}
                            }
                        }
                    }
                }
            }
            // InitData { init_data_type = 1 (CENC 1, WEBM 2); init_data = 2; license_type = 3; request_id = 4 }
            4 => {
                const I: &str = "InitData";
                let (mut kind, mut data) = (1, None);
                let mut fields = Fields::new(I, inner);
                while let Some((field, value)) = fields.next_field()? {
                    match field {
                        1 => kind = varint(I, field, value)?,
                        2 => data = Some(bytes(I, field, value)?),
                        3 => license_type(request, varint(I, field, value)?),
                        4 => request.request_id = Some(bytes(I, field, value)?.to_vec()),
                        _ => {}
                    }
                }
                match (kind, data) {
                    (2, Some(kid)) => push_kid(request, kid)?,
                    (_, Some(data)) => read_init_data(data, request)?,
                    (_, None) => {}
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// One `pssh_data` entry or CENC init data: `pssh` boxes, or the bare Widevine PSSH data.
fn read_init_data(data: &[u8], request: &mut LicenseRequest) -> Result<(), ChallengeError> {
    if data.get(4..8) == Some(b"pssh") {
        let mut rest = data;
        while !rest.is_empty() {
            rest = read_pssh_box(rest, request)?;
        }
        return Ok(());
    }
    read_widevine_data(data, request)
}

fn read_widevine_data(data: &[u8], request: &mut LicenseRequest) -> Result<(), ChallengeError> {
    let parsed = parse_widevine_pssh_data(data).map_err(|e| ChallengeError::PsshData(e.to_string()))?;
    for kid in parsed.key_ids {
        push_kid(request, &kid.0)?;
    }
    if parsed.content_id.is_some() {
        request.pssh_content_id = parsed.content_id;
    }
    Ok(())
}

/// One ISO-BMFF `pssh` box; answers the bytes after it.
fn read_pssh_box<'a>(data: &'a [u8], request: &mut LicenseRequest) -> Result<&'a [u8], ChallengeError> {
    let u32_at = |at: usize| -> Result<usize, ChallengeError> {
        let b: [u8; 4] = data.get(at..at + 4).and_then(|s| s.try_into().ok()).ok_or(ChallengeError::PsshBox)?;
        usize::try_from(u32::from_be_bytes(b)).map_err(|_| ChallengeError::PsshBox)
    };
    let size = u32_at(0)?;
    if size < 32 || size > data.len() || data.get(4..8) != Some(b"pssh") {
        return Err(ChallengeError::PsshBox);
    }
    let body = &data[..size];
    let version = body[8];
    let system: [u8; 16] = body.get(12..28).and_then(|s| s.try_into().ok()).ok_or(ChallengeError::PsshBox)?;
    let mut at = 28;
    if version == 1 {
        let count = u32_at(at)?;
        at += 4;
        let kids_len = count.checked_mul(16).ok_or(ChallengeError::PsshBox)?;
        let kids = body.get(at..at + kids_len).ok_or(ChallengeError::PsshBox)?;
        for kid in kids.chunks_exact(16) {
            push_kid(request, kid)?;
        }
        at += kids_len;
    } else if version != 0 {
        return Err(ChallengeError::PsshBox);
    }
    let data_len = u32_at(at)?;
    at += 4;
    let payload = body.get(at..at + data_len).ok_or(ChallengeError::PsshBox)?;
    if at + data_len != size {
        return Err(ChallengeError::PsshBox);
    }
    if system == WIDEVINE_SYSTEM_ID {
        read_widevine_data(payload, request)?;
    }
    Ok(&data[size..])
}

/// Writing challenges, for tests and the fuzz target's seeds: what a Widevine CDM sends, field by field.
pub mod build {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    pub fn varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
        varint(out, u64::from(field) << 3);
        varint(out, v);
    }

    pub fn bytes_field(out: &mut Vec<u8>, field: u32, b: &[u8]) {
        varint(out, (u64::from(field) << 3) | 2);
        varint(out, b.len() as u64);
        out.extend_from_slice(b);
    }

    /// The parts of a license request a test sets.
    #[derive(Default, Clone)]
    pub struct Request<'a> {
        /// `None` builds a renewal naming `request_id` as its license id.
        pub pssh: Option<&'a [u8]>,
        pub request_id: &'a [u8],
        pub client_token: Option<&'a [u8]>,
        pub encrypted_client_id: bool,
        pub request_time: Option<i64>,
        pub offline: bool,
        pub nonce: u32,
    }

    /// A `SignedMessage` wrapping the `LicenseRequest` (with a dummy signature, as the proxy does not check it).
    pub fn license_request(r: &Request<'_>) -> Vec<u8> {
        let mut msg = Vec::new();
        if let Some(token) = r.client_token {
            let mut client = Vec::new();
            varint_field(&mut client, 1, 1);
            bytes_field(&mut client, 2, token);
            bytes_field(&mut msg, 1, &client);
        }
        let mut content = Vec::new();
        let license_type = if r.offline { 2 } else { 1 };
        match r.pssh {
            Some(pssh) => {
                let mut wv = Vec::new();
                bytes_field(&mut wv, 1, pssh);
                varint_field(&mut wv, 2, license_type);
                bytes_field(&mut wv, 3, r.request_id);
                bytes_field(&mut content, 1, &wv);
            }
            None => {
                let mut id = Vec::new();
                bytes_field(&mut id, 1, r.request_id);
                varint_field(&mut id, 4, license_type);
                let mut existing = Vec::new();
                bytes_field(&mut existing, 1, &id);
                bytes_field(&mut content, 3, &existing);
            }
        }
        bytes_field(&mut msg, 2, &content);
        varint_field(&mut msg, 3, if r.pssh.is_some() { 1 } else { 2 });
        if let Some(t) = r.request_time {
            varint_field(&mut msg, 4, t as u64);
        }
        varint_field(&mut msg, 6, 21);
        varint_field(&mut msg, 7, u64::from(r.nonce));
        if r.encrypted_client_id {
            bytes_field(&mut msg, 8, &[0x0a, 0x03, 0x61, 0x62, 0x63]);
        }
        let mut signed = Vec::new();
        varint_field(&mut signed, 1, 1);
        bytes_field(&mut signed, 2, &msg);
        bytes_field(&mut signed, 3, &[0u8; 256]);
        signed
    }
}

#[cfg(test)]
mod tests {
    use clavis_keys::widevine_pssh::{ProtectionScheme, widevine_pssh, widevine_pssh_data};
    use proptest::prelude::*;

    use super::build::Request;
    use super::*;

    fn kid(byte: u8) -> Kid {
        Kid([byte; 16])
    }

    #[test]
    fn a_new_request_names_its_keys_session_device_and_time() {
        let data = widevine_pssh_data(&[kid(2), kid(1)], Some(b"movie-1"), ProtectionScheme::Cenc);
        let challenge = build::license_request(&Request {
            pssh: Some(&data),
            request_id: b"session-1",
            client_token: Some(b"device certificate"),
            request_time: Some(1_700_000_000),
            nonce: 7,
            ..Request::default()
        });
        let Challenge::License(request) = parse(&challenge).unwrap() else { panic!("not a license request") };
        assert_eq!(request.request_type, Some(RequestType::New));
        assert_eq!(request.kids, vec![kid(1), kid(2)]);
        assert_eq!(request.pssh_content_id.as_deref(), Some(&b"movie-1"[..]));
        assert_eq!(request.request_id.as_deref(), Some(&b"session-1"[..]));
        assert_eq!(request.client_token_sha256, Some(clavis_core::crypto::sha256(b"device certificate")));
        assert_eq!(request.request_time, Some(1_700_000_000));
        assert!(!request.offline && !request.client_id_encrypted);
    }

    #[test]
    fn full_pssh_boxes_of_any_system_are_read() {
        // A v1 box of another system (the common system) carries KIDs too; a Widevine v0 box its data.
        let mut init = widevine_pssh(&[kid(3)], None, ProtectionScheme::Cbcs);
        init.extend(clavis_keys::pssh::pssh_box(&[0x10; 16], Some(&[kid(4)]), &[]));
        let challenge = build::license_request(&Request { pssh: Some(&init), request_id: b"r", ..Request::default() });
        let Challenge::License(request) = parse(&challenge).unwrap() else { panic!() };
        assert_eq!(request.kids, vec![kid(3), kid(4)]);
    }

    #[test]
    fn renewals_name_the_license_and_privacy_mode_hides_the_device() {
        let challenge = build::license_request(&Request {
            pssh: None,
            request_id: b"session-1",
            encrypted_client_id: true,
            offline: true,
            ..Request::default()
        });
        let Challenge::License(request) = parse(&challenge).unwrap() else { panic!() };
        assert_eq!(request.request_type, Some(RequestType::Renewal));
        assert!(request.kids.is_empty());
        assert_eq!(request.request_id.as_deref(), Some(&b"session-1"[..]));
        assert!(request.client_id_encrypted && request.offline);
        assert_eq!(request.client_token_sha256, None);
    }

    #[test]
    fn service_certificate_requests_and_bad_input() {
        assert_eq!(parse(&[0x08, 0x04]).unwrap(), Challenge::ServiceCertificate);
        assert_eq!(parse(&[]).unwrap_err(), ChallengeError::Empty);
        assert_eq!(parse(&[0x08, 0x02]).unwrap_err(), ChallengeError::NotARequest(2));
        assert_eq!(parse(&[0x08, 0x01]).unwrap_err(), ChallengeError::NoMessage);
        assert!(matches!(parse(&[0x12, 0x05, 0x01]).unwrap_err(), ChallengeError::Truncated(_)));
        assert!(matches!(parse(&[0x0b]).unwrap_err(), ChallengeError::UnsupportedWireType(_, 3)));
        assert!(matches!(parse(&[0x0a, 0x00]).unwrap_err(), ChallengeError::WrongWireType(_, 1)));
        assert_eq!(parse(&vec![0u8; MAX_CHALLENGE_BYTES + 1]).unwrap_err(), ChallengeError::TooLarge);
        // A WebM key id must be 16 bytes.
        let mut webm = Vec::new();
        build::bytes_field(&mut webm, 1, &[1, 2, 3]);
        let mut content = Vec::new();
        build::bytes_field(&mut content, 2, &webm);
        let mut msg = Vec::new();
        build::bytes_field(&mut msg, 2, &content);
        let mut signed = Vec::new();
        build::bytes_field(&mut signed, 2, &msg);
        assert_eq!(parse(&signed).unwrap_err(), ChallengeError::KidLength(3));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn mutated_requests_never_panic(
            n in 1usize..8,
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            cut in any::<prop::sample::Index>(),
        ) {
            let kids: Vec<Kid> = (0..n).map(|i| kid(i as u8)).collect();
            let data = widevine_pssh_data(&kids, Some(b"c"), ProtectionScheme::Cenc);
            let mut challenge = build::license_request(&Request {
                pssh: Some(&data), request_id: b"id", client_token: Some(b"t"), request_time: Some(5), ..Request::default()
            });
            let i = at.index(challenge.len());
            challenge[i] = byte;
            challenge.truncate(cut.index(challenge.len() + 1));
            let _ = parse(&challenge);
        }

        #[test]
        fn every_kid_written_is_read(n in 1usize..MAX_KIDS) {
            let kids: Vec<Kid> = (0..n).map(|i| Kid([i as u8; 16])).collect();
            let data = widevine_pssh_data(&kids, None, ProtectionScheme::Cenc);
            let challenge = build::license_request(&Request { pssh: Some(&data), request_id: b"x", ..Request::default() });
            let Challenge::License(request) = parse(&challenge).unwrap() else { panic!() };
            prop_assert_eq!(request.kids, kids);
        }
    }
}
