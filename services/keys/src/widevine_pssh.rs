//! Widevine `pssh` boxes: the `WidevinePsshData` protobuf, written and read by hand.
//!
//! The message is small and stable (see `shared/specs/widevine.md`), so a dozen lines of varint code replace a
//! protobuf toolchain and generated code. The reader exists because PSSH data reaches Clavis from outside (imported
//! content, license requests), so it bounds every read, never panics, skips fields it does not know (as protobuf
//! readers must, so newer packagers keep working) and refuses input it cannot read unambiguously.

use std::fmt;

use clavis_core::ids::Kid;

use crate::pssh::pssh_box;

/// Widevine system id `edef8ba9-79d6-4ace-a3c8-27dcd51d21ed`.
pub const WIDEVINE_SYSTEM_ID: [u8; 16] =
    [0xed, 0xef, 0x8b, 0xa9, 0x79, 0xd6, 0x4a, 0xce, 0xa3, 0xc8, 0x27, 0xdc, 0xd5, 0x1d, 0x21, 0xed];

// Field numbers of WidevinePsshData.
const FIELD_ALGORITHM: u32 = 1;
const FIELD_KEY_ID: u32 = 2;
const FIELD_PROVIDER: u32 = 3;
const FIELD_CONTENT_ID: u32 = 4;
const FIELD_TRACK_TYPE: u32 = 5;
const FIELD_POLICY: u32 = 6;
const FIELD_CRYPTO_PERIOD_INDEX: u32 = 7;
const FIELD_GROUPED_LICENSE: u32 = 8;
const FIELD_PROTECTION_SCHEME: u32 = 9;
const FIELD_CRYPTO_PERIOD_SECONDS: u32 = 10;

const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_FIXED32: u8 = 5;

/// The Common Encryption scheme of the content, as Widevine signals it: the scheme's four-character code read as a
/// big-endian `u32` (`cenc` = `0x63656e63`). Clients use it to pick the decryption mode before any license arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProtectionScheme {
    Cenc,
    Cbcs,
    Cbc1,
    Cens,
}

impl ProtectionScheme {
    pub const EVERY: [ProtectionScheme; 4] =
        [ProtectionScheme::Cenc, ProtectionScheme::Cbcs, ProtectionScheme::Cbc1, ProtectionScheme::Cens];

    /// The four-character code, e.g. `"cenc"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProtectionScheme::Cenc => "cenc",
            ProtectionScheme::Cbcs => "cbcs",
            ProtectionScheme::Cbc1 => "cbc1",
            ProtectionScheme::Cens => "cens",
        }
    }

    /// The value of the `protection_scheme` field.
    pub fn fourcc(self) -> u32 {
        let code = self.as_str().as_bytes();
        let mut out = [0u8; 4];
        for (o, c) in out.iter_mut().zip(code) {
            *o = *c;
        }
        u32::from_be_bytes(out)
    }

    pub fn from_fourcc(value: u32) -> Option<Self> {
        ProtectionScheme::EVERY.into_iter().find(|s| s.fourcc() == value)
    }
}

impl fmt::Display for ProtectionScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fields of `WidevinePsshData` that the spec lists. The deprecated ones (algorithm, provider, track type,
/// policy, grouped license) are kept because real boxes still carry them (pycpix and the key-server answers in the
/// Shaka Packager captures write `provider`), and a reader that dropped them could not reproduce those boxes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WidevinePsshData {
    /// Field 1 (enum Algorithm; 1 = AESCTR). Legacy.
    pub algorithm: Option<u32>,
    /// Field 2, repeated: the KIDs, in UUID byte order (Widevine does not swap bytes).
    pub key_ids: Vec<Kid>,
    /// Field 3: the content provider name (e.g. the key-server signer).
    pub provider: Option<String>,
    /// Field 4: the content id the license service looks keys up by.
    pub content_id: Option<Vec<u8>>,
    /// Field 5. Deprecated.
    pub track_type: Option<String>,
    /// Field 6: policy name. Deprecated.
    pub policy: Option<String>,
    /// Field 7: the crypto period of a key-rotation box.
    pub crypto_period_index: Option<u32>,
    /// Field 8. Deprecated.
    pub grouped_license: Option<Vec<u8>>,
    /// Field 9, raw: kept as a number so that a scheme Clavis does not know survives a read/write cycle; see
    /// [`WidevinePsshData::scheme`].
    pub protection_scheme: Option<u32>,
    /// Field 10: key-rotation period length.
    pub crypto_period_seconds: Option<u32>,
}

impl WidevinePsshData {
    /// The protection scheme, when the box names one Clavis knows.
    pub fn scheme(&self) -> Option<ProtectionScheme> {
        self.protection_scheme.and_then(ProtectionScheme::from_fourcc)
    }

    /// Protobuf encoding with fields in field-number order (what protobuf serializers, Shaka Packager and pycpix
    /// write, so the bytes match theirs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + 18 * self.key_ids.len());
        if let Some(v) = self.algorithm {
            put_varint_field(&mut out, FIELD_ALGORITHM, u64::from(v));
        }
        for kid in &self.key_ids {
            put_bytes_field(&mut out, FIELD_KEY_ID, &kid.0);
        }
        if let Some(v) = &self.provider {
            put_bytes_field(&mut out, FIELD_PROVIDER, v.as_bytes());
        }
        if let Some(v) = &self.content_id {
            put_bytes_field(&mut out, FIELD_CONTENT_ID, v);
        }
        if let Some(v) = &self.track_type {
            put_bytes_field(&mut out, FIELD_TRACK_TYPE, v.as_bytes());
        }
        if let Some(v) = &self.policy {
            put_bytes_field(&mut out, FIELD_POLICY, v.as_bytes());
        }
        if let Some(v) = self.crypto_period_index {
            put_varint_field(&mut out, FIELD_CRYPTO_PERIOD_INDEX, u64::from(v));
        }
        if let Some(v) = &self.grouped_license {
            put_bytes_field(&mut out, FIELD_GROUPED_LICENSE, v);
        }
        if let Some(v) = self.protection_scheme {
            put_varint_field(&mut out, FIELD_PROTECTION_SCHEME, u64::from(v));
        }
        if let Some(v) = self.crypto_period_seconds {
            put_varint_field(&mut out, FIELD_CRYPTO_PERIOD_SECONDS, u64::from(v));
        }
        out
    }

    /// The version 0 Widevine `pssh` box carrying this data.
    pub fn to_pssh(&self) -> Vec<u8> {
        pssh_box(&WIDEVINE_SYSTEM_ID, None, &self.encode())
    }
}

/// `WidevinePsshData` as Clavis writes it: the KIDs, the content id if any, and the protection scheme (what Shaka
/// Packager writes for raw keys: `12 10 <kid> 48 e3dc959b06` for one KID and `cenc`).
pub fn widevine_pssh_data(kids: &[Kid], content_id: Option<&[u8]>, scheme: ProtectionScheme) -> Vec<u8> {
    WidevinePsshData {
        key_ids: kids.to_vec(),
        content_id: content_id.map(<[u8]>::to_vec),
        protection_scheme: Some(scheme.fourcc()),
        ..WidevinePsshData::default()
    }
    .encode()
}

/// The Widevine `pssh` box for [`widevine_pssh_data`]. Version 0, the form Widevine CDMs and Shaka Packager use; the
/// KIDs are inside the data, which is where Widevine reads them.
pub fn widevine_pssh(kids: &[Kid], content_id: Option<&[u8]>, scheme: ProtectionScheme) -> Vec<u8> {
    pssh_box(&WIDEVINE_SYSTEM_ID, None, &widevine_pssh_data(kids, content_id, scheme))
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn put_varint_field(out: &mut Vec<u8>, field: u32, value: u64) {
    put_tag(out, field, WIRE_VARINT);
    put_varint(out, value);
}

fn put_bytes_field(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    put_tag(out, field, WIRE_LEN);
    put_varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// Why `WidevinePsshData` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WidevinePsshError {
    #[error("the protobuf is truncated")]
    Truncated,
    #[error("a varint is longer than 64 bits")]
    VarintOverflow,
    #[error("field {field} holds {value}, which does not fit 32 bits")]
    ValueOutOfRange { field: u32, value: u64 },
    #[error("invalid field number {0}")]
    InvalidField(u64),
    #[error("unsupported wire type {wire} (field {field})")]
    UnsupportedWireType { field: u32, wire: u8 },
    #[error("field {field} has wire type {wire}, not the one WidevinePsshData defines")]
    WrongWireType { field: u32, wire: u8 },
    #[error("a key_id is {0} bytes, not 16")]
    InvalidKeyIdLength(usize),
    #[error("field {0} is not valid UTF-8")]
    InvalidUtf8(u32),
}

/// Bounds-checked reader over attacker-controlled bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WidevinePsshError> {
        let end = self.pos.checked_add(n).ok_or(WidevinePsshError::Truncated)?;
        let slice = self.bytes.get(self.pos..end).ok_or(WidevinePsshError::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    /// A base-128 varint of at most 10 bytes whose value fits 64 bits.
    fn varint(&mut self) -> Result<u64, WidevinePsshError> {
        let mut value = 0u64;
        for i in 0..10u32 {
            let byte = *self.take(1)?.first().ok_or(WidevinePsshError::Truncated)?;
            let bits = u64::from(byte & 0x7f);
            if i == 9 && bits > 1 {
                return Err(WidevinePsshError::VarintOverflow);
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WidevinePsshError::VarintOverflow)
    }

    fn length_delimited(&mut self) -> Result<&'a [u8], WidevinePsshError> {
        let len = usize::try_from(self.varint()?).map_err(|_| WidevinePsshError::Truncated)?;
        self.take(len)
    }
}

/// Read `WidevinePsshData`. Known fields must have the wire type the message defines (a mismatch means the bytes
/// are not what they claim to be); unknown fields are skipped; a repeated singular field keeps its last value, as
/// protobuf readers (and therefore Widevine license services) do. Groups (wire types 3/4) are refused.
pub fn parse_widevine_pssh_data(bytes: &[u8]) -> Result<WidevinePsshData, WidevinePsshError> {
    let mut cursor = Cursor { bytes, pos: 0 };
    let mut data = WidevinePsshData::default();
    while !cursor.is_empty() {
        let tag = cursor.varint()?;
        let wire = (tag & 0x7) as u8;
        let field = u32::try_from(tag >> 3).ok().filter(|f| (1..=0x1fff_ffff).contains(f));
        let field = field.ok_or(WidevinePsshError::InvalidField(tag >> 3))?;
        let expected = match field {
            FIELD_ALGORITHM | FIELD_CRYPTO_PERIOD_INDEX | FIELD_PROTECTION_SCHEME | FIELD_CRYPTO_PERIOD_SECONDS => {
                Some(WIRE_VARINT)
            }
            FIELD_KEY_ID
            | FIELD_PROVIDER
            | FIELD_CONTENT_ID
            | FIELD_TRACK_TYPE
            | FIELD_POLICY
            | FIELD_GROUPED_LICENSE => Some(WIRE_LEN),
            _ => None,
        };
        if expected.is_some_and(|w| w != wire) {
            return Err(WidevinePsshError::WrongWireType { field, wire });
        }
        match wire {
            WIRE_VARINT => {
                let value = cursor.varint()?;
                let small = || u32::try_from(value).map_err(|_| WidevinePsshError::ValueOutOfRange { field, value });
                match field {
                    FIELD_ALGORITHM => data.algorithm = Some(small()?),
                    FIELD_CRYPTO_PERIOD_INDEX => data.crypto_period_index = Some(small()?),
                    FIELD_PROTECTION_SCHEME => data.protection_scheme = Some(small()?),
                    FIELD_CRYPTO_PERIOD_SECONDS => data.crypto_period_seconds = Some(small()?),
                    _ => {}
                }
            }
            WIRE_LEN => {
                let value = cursor.length_delimited()?;
                let text =
                    || std::str::from_utf8(value).map(str::to_owned).map_err(|_| WidevinePsshError::InvalidUtf8(field));
                match field {
                    FIELD_KEY_ID => {
                        let kid: [u8; 16] =
                            value.try_into().map_err(|_| WidevinePsshError::InvalidKeyIdLength(value.len()))?;
                        data.key_ids.push(Kid(kid));
                    }
                    FIELD_PROVIDER => data.provider = Some(text()?),
                    FIELD_CONTENT_ID => data.content_id = Some(value.to_vec()),
                    FIELD_TRACK_TYPE => data.track_type = Some(text()?),
                    FIELD_POLICY => data.policy = Some(text()?),
                    FIELD_GROUPED_LICENSE => data.grouped_license = Some(value.to_vec()),
                    _ => {}
                }
            }
            WIRE_FIXED64 => {
                cursor.take(8)?;
            }
            WIRE_FIXED32 => {
                cursor.take(4)?;
            }
            _ => return Err(WidevinePsshError::UnsupportedWireType { field, wire }),
        }
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use proptest::prelude::*;

    use super::*;
    use crate::pssh::COMMON_SYSTEM_ID;

    /// The shared vectors directory. Missing vectors fail the test loudly: a skipped vector test proves nothing.
    fn vectors_dir() -> PathBuf {
        let dir = std::env::var_os("CLAVIS_TEST_VECTORS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors")));
        assert!(
            dir.is_dir(),
            "test vectors directory {} not found: set CLAVIS_TEST_VECTORS to the shared/vectors directory",
            dir.display()
        );
        dir
    }

    fn vector(rel: &str) -> Vec<u8> {
        let path = vectors_dir().join(rel);
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read test vector {}: {e}", path.display()))
    }

    fn vector_json(rel: &str) -> serde_json::Value {
        serde_json::from_slice(&vector(rel)).unwrap()
    }

    fn kid(s: &str) -> Kid {
        Kid::parse_hex(s).unwrap()
    }

    /// pycpix `tests/test_widevine.py` inputs: provider `widevine_test`, content id `uspwvtest3`, no scheme.
    fn pycpix_data(kids: &[Kid]) -> WidevinePsshData {
        WidevinePsshData {
            key_ids: kids.to_vec(),
            provider: Some("widevine_test".to_owned()),
            content_id: Some(b"uspwvtest3".to_vec()),
            ..WidevinePsshData::default()
        }
    }

    const PYCPIX_KIDS: [&str; 3] =
        ["c2faf66e2852cc4c4a751f0a2a941fdb", "087bcfc6f7a55716b8406aa6eba3369e", "0d6b40238da15e75af6875c514c59b63"];

    #[test]
    fn scheme_fourccs() {
        assert_eq!(ProtectionScheme::Cenc.fourcc(), 0x6365_6e63);
        assert_eq!(ProtectionScheme::Cbcs.fourcc(), 0x6362_6373);
        for s in ProtectionScheme::EVERY {
            assert_eq!(ProtectionScheme::from_fourcc(s.fourcc()), Some(s));
            assert_eq!(&s.fourcc().to_be_bytes(), s.as_str().as_bytes());
        }
        assert_eq!(ProtectionScheme::from_fourcc(0), None);
    }

    #[test]
    fn pycpix_single_and_multi_key_are_byte_exact() {
        let one = pycpix_data(&[kid(PYCPIX_KIDS[0])]);
        assert_eq!(one.encode(), vector("widevine/pycpix/test_generate_single_key_widevine_data.bin"));
        assert_eq!(one.to_pssh(), vector("widevine/pycpix/test_single_key_v0_pssh.bin"));
        let three = pycpix_data(&PYCPIX_KIDS.map(kid));
        assert_eq!(three.encode(), vector("widevine/pycpix/test_generate_multi_key_widevine_data.bin"));
        assert_eq!(three.to_pssh(), vector("widevine/pycpix/test_multiple_key_v0_pssh.bin"));

        assert_eq!(
            parse_widevine_pssh_data(&vector("widevine/pycpix/test_generate_single_key_widevine_data.bin")),
            Ok(one)
        );
        assert_eq!(
            parse_widevine_pssh_data(&vector("widevine/pycpix/test_generate_multi_key_widevine_data.bin")),
            Ok(three)
        );
    }

    #[test]
    fn shaka_raw_key_pssh_is_byte_exact() {
        let json = vector_json("playready/shaka-packager-3.4.2-capture/raw_key_pssh_outputs.json");
        let wv = &json["pssh"]["edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"];
        let kid = kid("8ba94ade6eb9449db44fa5beefaf43b0");
        let data = widevine_pssh_data(&[kid], None, ProtectionScheme::Cenc);
        assert_eq!(hex::encode(&data), wv["data_hex"].as_str().unwrap());
        // The spec's shorthand for the same bytes.
        assert_eq!(hex::encode(&data), format!("1210{}48e3dc959b06", kid.to_hex()));
        assert_eq!(
            STANDARD.encode(widevine_pssh(&[kid], None, ProtectionScheme::Cenc)),
            wv["pssh_b64"].as_str().unwrap()
        );
        let parsed = parse_widevine_pssh_data(&data).unwrap();
        assert_eq!(parsed.key_ids, vec![kid]);
        assert_eq!(parsed.scheme(), Some(ProtectionScheme::Cenc));
        assert_eq!(parsed.content_id, None);
    }

    #[test]
    fn shaka_key_server_capture_psshs_are_byte_exact() {
        let capture = vector_json("widevine/shaka-packager-3.4.2-capture/aes_signed_getcontentkey_capture.json");
        let inner: serde_json::Value = serde_json::from_str(capture["inner_response"].as_str().unwrap()).unwrap();
        let tracks = inner["tracks"].as_array().unwrap();
        assert_eq!(tracks.len(), 5);
        let mut kids = Vec::new();
        for track in tracks {
            let kid = Kid::parse_base64url(track["key_id"].as_str().unwrap()).unwrap();
            let expected = STANDARD.decode(track["pssh"][0]["data"].as_str().unwrap()).unwrap();
            let data = WidevinePsshData {
                key_ids: vec![kid],
                provider: Some("widevine_test".to_owned()),
                content_id: Some(b"test content id".to_vec()),
                ..WidevinePsshData::default()
            };
            assert_eq!(data.encode(), expected, "{}", track["type"]);
            assert_eq!(parse_widevine_pssh_data(&expected), Ok(data));
            kids.push(kid);
        }

        // The MPD the packager wrote from that answer: per adaptation set a Widevine v0 box and a common v1 box.
        let mpd = String::from_utf8(vector("widevine/shaka-packager-3.4.2-capture/packager_output_with_mock_keys.mpd"))
            .unwrap();
        let mut reader = quick_xml::Reader::from_str(&mpd);
        let mut boxes = Vec::new();
        let mut inside = false;
        loop {
            match reader.read_event().unwrap() {
                quick_xml::events::Event::Start(s) if s.name().as_ref() == "cenc:pssh" => inside = true,
                quick_xml::events::Event::Text(t) if inside => {
                    boxes.push(STANDARD.decode(t.xml10_content().trim()).unwrap())
                }
                quick_xml::events::Event::End(_) => inside = false,
                quick_xml::events::Event::Eof => break,
                _ => {}
            }
        }
        assert!(!boxes.is_empty());
        let common = pssh_box(&COMMON_SYSTEM_ID, Some(&kids), &[]);
        for found in &boxes {
            let is_widevine = found.get(12..28) == Some(&WIDEVINE_SYSTEM_ID[..]);
            if is_widevine {
                let data = parse_widevine_pssh_data(found.get(32..).unwrap()).unwrap();
                assert_eq!(data.key_ids.len(), 1);
                assert!(kids.contains(&data.key_ids[0]));
                assert_eq!(&data.to_pssh(), found);
            } else {
                assert_eq!(found, &common);
            }
        }
    }

    #[test]
    fn every_field_round_trips() {
        let data = WidevinePsshData {
            algorithm: Some(1),
            key_ids: vec![kid(PYCPIX_KIDS[0]), kid(PYCPIX_KIDS[1])],
            provider: Some("p".to_owned()),
            content_id: Some(vec![0, 1, 2]),
            track_type: Some("HD".to_owned()),
            policy: Some("default".to_owned()),
            crypto_period_index: Some(7),
            grouped_license: Some(vec![9; 3]),
            protection_scheme: Some(ProtectionScheme::Cbcs.fourcc()),
            crypto_period_seconds: Some(u32::MAX),
        };
        assert_eq!(parse_widevine_pssh_data(&data.encode()), Ok(data));
    }

    #[test]
    fn decoder_skips_unknown_fields_and_rejects_malformed_input() {
        let kid = kid(PYCPIX_KIDS[0]);
        let mut bytes = widevine_pssh_data(&[kid], Some(b"c"), ProtectionScheme::Cbcs);
        // Unknown fields of every skippable wire type: 11 varint, 13 fixed64, 14 length-delimited, 15 fixed32.
        bytes.extend_from_slice(&[
            0x58, 0x96, 0x01, 0x69, 1, 2, 3, 4, 5, 6, 7, 8, 0x72, 2, 0xaa, 0xbb, 0x7d, 1, 2, 3, 4,
        ]);
        let parsed = parse_widevine_pssh_data(&bytes).unwrap();
        assert_eq!(
            (parsed.scheme(), parsed.key_ids, parsed.content_id),
            (Some(ProtectionScheme::Cbcs), vec![kid], Some(b"c".to_vec()))
        );

        assert_eq!(parse_widevine_pssh_data(&[]), Ok(WidevinePsshData::default()));
        let cases: Vec<(Vec<u8>, WidevinePsshError)> = vec![
            (vec![0x12, 0x10, 1, 2, 3], WidevinePsshError::Truncated),
            (vec![0x12], WidevinePsshError::Truncated),
            (vec![0x12, 0x03, 1, 2, 3], WidevinePsshError::InvalidKeyIdLength(3)),
            (vec![0x48, 0xff], WidevinePsshError::Truncated),
            (vec![0x48, 0x80, 0x80, 0x80, 0x80, 0x10], WidevinePsshError::ValueOutOfRange { field: 9, value: 1 << 32 }),
            (vec![0x48, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], WidevinePsshError::VarintOverflow),
            (vec![0x4a, 0x00], WidevinePsshError::WrongWireType { field: 9, wire: 2 }),
            (vec![0x10, 0x00], WidevinePsshError::WrongWireType { field: 2, wire: 0 }),
            (vec![0x1a, 0x01, 0xff], WidevinePsshError::InvalidUtf8(3)),
            (vec![0x5b], WidevinePsshError::UnsupportedWireType { field: 11, wire: 3 }),
            (vec![0x5e], WidevinePsshError::UnsupportedWireType { field: 11, wire: 6 }),
            (vec![0x02], WidevinePsshError::InvalidField(0)),
            (vec![0x69, 1, 2], WidevinePsshError::Truncated),
            (vec![0x72, 0xff, 0xff, 0xff, 0xff, 0x0f], WidevinePsshError::Truncated),
        ];
        for (bytes, expected) in cases {
            assert_eq!(parse_widevine_pssh_data(&bytes), Err(expected), "{}", hex::encode(&bytes));
        }
        // The last of a repeated singular field wins, as in every protobuf reader.
        assert_eq!(parse_widevine_pssh_data(&[0x22, 1, b'a', 0x22, 1, b'b']).unwrap().content_id, Some(b"b".to_vec()));
    }

    fn arb_data() -> impl Strategy<Value = WidevinePsshData> {
        (
            (
                prop::option::of(any::<u32>()),
                prop::collection::vec(any::<[u8; 16]>(), 0..5),
                prop::option::of(".{0,20}"),
            ),
            (
                prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
                prop::option::of(".{0,8}"),
                prop::option::of(".{0,8}"),
            ),
            (prop::option::of(any::<u32>()), prop::option::of(prop::collection::vec(any::<u8>(), 0..20))),
            (prop::option::of(any::<u32>()), prop::option::of(any::<u32>())),
        )
            .prop_map(
                |((algorithm, kids, provider), (content_id, track_type, policy), (index, grouped), (scheme, secs))| {
                    WidevinePsshData {
                        algorithm,
                        key_ids: kids.into_iter().map(Kid).collect(),
                        provider,
                        content_id,
                        track_type,
                        policy,
                        crypto_period_index: index,
                        grouped_license: grouped,
                        protection_scheme: scheme,
                        crypto_period_seconds: secs,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn encode_then_parse_round_trips(data in arb_data()) {
            prop_assert_eq!(parse_widevine_pssh_data(&data.encode()), Ok(data));
        }

        #[test]
        fn simple_builder_round_trips(
            kids in prop::collection::vec(any::<[u8; 16]>(), 0..5),
            content_id in prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
            scheme in prop::sample::select(ProtectionScheme::EVERY.to_vec()),
        ) {
            let kids: Vec<Kid> = kids.into_iter().map(Kid).collect();
            let parsed = parse_widevine_pssh_data(&widevine_pssh_data(&kids, content_id.as_deref(), scheme)).unwrap();
            prop_assert_eq!(parsed.scheme(), Some(scheme));
            prop_assert_eq!(parsed.key_ids, kids);
            prop_assert_eq!(parsed.content_id, content_id);
        }

        #[test]
        fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_widevine_pssh_data(&bytes);
        }

        #[test]
        fn parse_never_panics_on_mutated_data(data in arb_data(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
            let mut bytes = data.encode();
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] = byte;
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            let _ = parse_widevine_pssh_data(&bytes);
        }
    }
}
