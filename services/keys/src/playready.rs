//! PlayReady: key-seed key derivation, the PlayReady Header (`WRMHEADER`) 4.0 to 4.3, the PlayReady Object (PRO) and
//! the PlayReady `pssh` box, plus strict parsers for headers and objects that arrive from outside.
//!
//! Why Clavis needs each piece (see `shared/specs/playready.md`):
//! * the key seed lets a tenant's own PlayReady license server derive the same content key from a KID, so Clavis never
//!   has to ship keys to it;
//! * the header/PRO/PSSH builders write what packagers put into the content and the manifest;
//! * the parsers read the header out of a PSSH or a license challenge, because Clavis, acting as a proxy in front of
//!   the tenant's PlayReady server, authorizes by the KIDs it finds there. That input is attacker-controlled, so the
//!   parsers bound every read, never panic, and reject headers that could be read two ways (duplicate or misplaced
//!   KID elements) instead of guessing which reading the license server will pick.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clavis_core::ids::Kid;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use zeroize::Zeroizing;

use crate::pssh::pssh_box;

/// PlayReady system id `9a04f079-9840-4286-ab92-e65be0885f95`, as written in `pssh` boxes and DASH `urn:uuid:`.
pub const PLAYREADY_SYSTEM_ID: [u8; 16] =
    [0x9a, 0x04, 0xf0, 0x79, 0x98, 0x40, 0x42, 0x86, 0xab, 0x92, 0xe6, 0x5b, 0xe0, 0x88, 0x5f, 0x95];

/// The XML namespace every PlayReady Header declares on its root element.
pub const WRMHEADER_NAMESPACE: &str = "http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader";

/// Microsoft's algorithm reads exactly this many bytes of the seed; shorter seeds cannot derive keys.
pub const KEY_SEED_MIN_LEN: usize = 30;

/// PRO record type of a PlayReady Header (UTF-16LE `WRMHEADER`).
pub const PRO_RECORD_WRMHEADER: u16 = 1;
/// PRO record type of an embedded license store.
pub const PRO_RECORD_EMBEDDED_LICENSE_STORE: u16 = 3;

/// Largest header input [`parse_wrmheader`] looks at. A PRO record length is a `u16`, so a real header never exceeds
/// 64 KiB of UTF-16; the cap bounds the work an attacker can ask for.
pub const MAX_WRMHEADER_INPUT: usize = 128 * 1024;

/// Element nesting deeper than this is not a PlayReady Header; refusing it bounds the parser's stack of open elements.
const MAX_XML_DEPTH: usize = 64;

// ---------------------------------------------------------------------------------------------------------------------
// Key seed

/// Why a key seed was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySeedError {
    #[error("a PlayReady key seed needs at least {KEY_SEED_MIN_LEN} bytes, got {0}")]
    TooShort(usize),
    #[error("the key seed is not valid base64")]
    InvalidBase64,
}

/// A PlayReady key seed: the shared secret from which Microsoft's algorithm derives every content key from its KID.
///
/// The bytes are wiped when the value is dropped and never printed by `Debug`, because anyone holding the seed can
/// derive every key of every content protected with it.
pub struct KeySeed(Zeroizing<Vec<u8>>);

impl KeySeed {
    /// Keep a copy of `bytes` as a seed. Only the first 30 bytes take part in derivation (that is the published
    /// algorithm), but the whole seed is kept so that it can be stored back exactly as the tenant gave it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeySeedError> {
        if bytes.len() < KEY_SEED_MIN_LEN {
            return Err(KeySeedError::TooShort(bytes.len()));
        }
        Ok(KeySeed(Zeroizing::new(bytes.to_vec())))
    }

    /// Decode a base64 seed (the form Microsoft and most key-management consoles show, e.g. the test seed
    /// `XVBovsmzhP9gRIZxWfFta3VVRPzVEWmJsazEJ46I`).
    pub fn from_base64(text: &str) -> Result<Self, KeySeedError> {
        let bytes = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| KeySeedError::InvalidBase64)?);
        Self::from_bytes(&bytes)
    }

    /// The content key for `kid`, exactly as a PlayReady license server holding the same seed derives it:
    /// `s` = first 30 seed bytes, `k` = the KID in little-endian GUID order, `A = SHA-256(s|k)`,
    /// `B = SHA-256(s|k|s)`, `C = SHA-256(s|k|s|k)`, `key[i] = A[i]^A[i+16]^B[i]^B[i+16]^C[i]^C[i+16]`.
    /// The returned key is the caller's to protect (wrap it in `Zeroizing`, as `ContentKey` does).
    pub fn derive(&self, kid: &Kid) -> [u8; 16] {
        // The constructor guarantees at least 30 bytes; `min` only keeps this free of any panic path.
        let (seed, _) = self.0.split_at(KEY_SEED_MIN_LEN.min(self.0.len()));
        let kid_le = kid_to_guid_le(kid);
        let a = sha256(&[seed, &kid_le]);
        let b = sha256(&[seed, &kid_le, seed]);
        let c = sha256(&[seed, &kid_le, seed, &kid_le]);
        let mut key = [0u8; 16];
        for digest in [&a, &b, &c] {
            let (lo, hi) = digest.split_at(16);
            for ((k, x), y) in key.iter_mut().zip(lo).zip(hi) {
                *k ^= x ^ y;
            }
        }
        key
    }
}

impl fmt::Debug for KeySeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeySeed(<{} bytes redacted>)", self.0.len())
    }
}

/// SHA-256 over the concatenation of `parts`, fed piecewise so that no seed-bearing buffer is ever assembled; the
/// result is wiped on drop because it is one step away from a content key.
fn sha256(parts: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        ctx.update(part);
    }
    let digest = ctx.finish();
    let mut out = Zeroizing::new([0u8; 32]);
    for (o, d) in out.iter_mut().zip(digest.as_ref()) {
        *o = *d;
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------------
// KIDs and checksums

/// The KID in the little-endian (.NET `Guid`) byte order PlayReady uses everywhere: the first three GUID fields
/// (4, 2 and 2 bytes) are byte-swapped, the last 8 bytes stay as they are. Clavis stores KIDs in UUID (big-endian)
/// order, so every PlayReady boundary goes through this function or [`kid_from_guid_le`].
pub fn kid_to_guid_le(kid: &Kid) -> [u8; 16] {
    uuid::Uuid::from_bytes(kid.0).to_bytes_le()
}

/// The inverse of [`kid_to_guid_le`]: a KID read from a PlayReady header, back in Clavis's UUID byte order.
pub fn kid_from_guid_le(guid_le: [u8; 16]) -> Kid {
    Kid(uuid::Uuid::from_bytes_le(guid_le).into_bytes())
}

/// The 8 checksum bytes of an AESCTR key: AES-128-ECB(key, KID in GUID little-endian order), first 8 bytes. Clients
/// compare it with the key they receive so that a mislabelled key is caught before it plays noise.
fn aesctr_checksum_bytes(key: &[u8; 16], kid: &Kid) -> [u8; 8] {
    use aes::cipher::{BlockEncrypt, KeyInit};
    let cipher = aes::Aes128::new(key.into());
    let mut block = aes::Block::from(kid_to_guid_le(kid));
    cipher.encrypt_block(&mut block);
    let mut out = [0u8; 8];
    for (o, b) in out.iter_mut().zip(block.iter()) {
        *o = *b;
    }
    out
}

/// The AESCTR key checksum as written in a header (`CHECKSUM`): base64 of the first 8 bytes of
/// AES-128-ECB(key, KID little-endian).
pub fn aesctr_checksum(key: &[u8; 16], kid: &Kid) -> String {
    STANDARD.encode(aesctr_checksum_bytes(key, kid))
}

// ---------------------------------------------------------------------------------------------------------------------
// Errors

/// Everything that can go wrong building or reading PlayReady structures. Building errors mean the caller asked for
/// a header the PlayReady Header specification does not allow; reading errors mean the input is not a header Clavis
/// can read unambiguously.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlayReadyError {
    #[error("PlayReady Header {version} allows {allowed} KID(s), got {count}")]
    KidCount { version: &'static str, allowed: &'static str, count: usize },
    #[error("PlayReady Header {version} needs an ALGID for its KIDs")]
    AlgIdRequired { version: &'static str },
    #[error("ALGID {algid} is not allowed in PlayReady Header {version}")]
    AlgIdNotAllowed { version: &'static str, algid: &'static str },
    #[error("an ALGID was given for a header without KIDs")]
    AlgIdWithoutKid,
    #[error("unsupported ALGID {0:?} (Clavis handles AESCTR and AESCBC keys)")]
    UnsupportedAlgId(String),
    #[error("all KIDs of a multi-key header must carry the same ALGID")]
    MixedAlgIds,
    #[error("a CHECKSUM is only defined for AESCTR keys")]
    ChecksumNotAllowed,
    #[error("the CHECKSUM {0:?} is not base64 of 8 bytes")]
    InvalidChecksum(String),
    #[error("KID {0} appears more than once")]
    DuplicateKid(Kid),
    #[error("the KID {0:?} is not base64 of a 16-byte GUID")]
    InvalidKid(String),
    #[error("{field} must be an absolute http(s) URL without control characters or surrounding spaces")]
    InvalidUrl { field: &'static str },
    #[error("{field} must be non-empty text without control characters or surrounding spaces")]
    InvalidText { field: &'static str },
    #[error("DS_ID must be base64 of a 16-byte GUID")]
    InvalidDsId,
    #[error("CUSTOMATTRIBUTES is not acceptable: {0}")]
    InvalidCustomAttributes(String),
    #[error("DECRYPTORSETUP is not defined in PlayReady Header 4.0")]
    DecryptorSetupNotAllowed,
    #[error("{what} is {len} bytes, more than the {max} allowed")]
    TooLarge { what: &'static str, len: usize, max: usize },
    #[error("a PlayReady Header in UTF-16 must have an even number of bytes")]
    OddUtf16Length,
    #[error("the header is neither valid UTF-16LE nor UTF-8 text")]
    InvalidEncoding,
    #[error("malformed XML: {0}")]
    Xml(String),
    #[error("the root element is not WRMHEADER")]
    NotAWrmHeader,
    #[error("WRMHEADER has no version attribute")]
    MissingVersion,
    #[error("unsupported PlayReady Header version {0:?}")]
    UnsupportedVersion(String),
    #[error("WRMHEADER declares the namespace {0:?}, not the PlayReady Header namespace")]
    WrongNamespace(String),
    #[error("the element {0} appears more than once")]
    DuplicateElement(&'static str),
    #[error("the element {0} is not allowed where it appears in this header version")]
    MisplacedElement(String),
    #[error("unexpected content: {0}")]
    UnexpectedContent(String),
    #[error("the KID element has no VALUE attribute")]
    MissingKidValue,
    #[error("PlayReady Header 4.0 needs exactly one KID element and an ALGID in PROTECTINFO")]
    Incomplete40,
    #[error("KEYLEN {0:?} does not match an AESCTR key (16)")]
    InvalidKeyLen(String),
    #[error("{0} must not be empty")]
    EmptyElement(&'static str),
    #[error("DECRYPTORSETUP may only be ONDEMAND, got {0:?}")]
    InvalidDecryptorSetup(String),
    #[error("KIDS must contain at least one KID")]
    EmptyKids,
    #[error("the PlayReady Object is truncated")]
    Truncated,
    #[error("the PlayReady Object declares {declared} bytes but has {actual}")]
    LengthMismatch { declared: u32, actual: usize },
    #[error("{0} unexpected bytes after the last PlayReady Object record")]
    TrailingBytes(usize),
    #[error("the PlayReady Object has {0} PlayReady Header records, expected exactly one")]
    HeaderRecordCount(usize),
}

// ---------------------------------------------------------------------------------------------------------------------
// Header model and builder

/// The PlayReady Header versions. Older clients refuse newer versions, so pick the lowest one that expresses the
/// content: 4.0 (one AESCTR key, every client), 4.1 (one key, PlayReady 2+), 4.2 (several keys, PlayReady 3+),
/// 4.3 (AESCBC/`cbcs` keys or no ALGID, PlayReady 4+).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WrmHeaderVersion {
    V4_0,
    V4_1,
    V4_2,
    V4_3,
}

impl WrmHeaderVersion {
    pub const EVERY: [WrmHeaderVersion; 4] =
        [WrmHeaderVersion::V4_0, WrmHeaderVersion::V4_1, WrmHeaderVersion::V4_2, WrmHeaderVersion::V4_3];

    /// The `version` attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            WrmHeaderVersion::V4_0 => "4.0.0.0",
            WrmHeaderVersion::V4_1 => "4.1.0.0",
            WrmHeaderVersion::V4_2 => "4.2.0.0",
            WrmHeaderVersion::V4_3 => "4.3.0.0",
        }
    }

    /// The version named by a `version` attribute, if Clavis knows it.
    pub fn parse(s: &str) -> Option<Self> {
        WrmHeaderVersion::EVERY.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for WrmHeaderVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The encryption algorithm a header announces for its keys: AESCTR is CENC `cenc`, AESCBC is `cbcs` (4.3 only).
/// The legacy WMDRM `COCKTAIL` algorithm is deliberately absent: Clavis never has such keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AlgId {
    AesCtr,
    AesCbc,
}

impl AlgId {
    pub fn as_str(self) -> &'static str {
        match self {
            AlgId::AesCtr => "AESCTR",
            AlgId::AesCbc => "AESCBC",
        }
    }

    fn parse(s: &str) -> Result<Self, PlayReadyError> {
        match s {
            "AESCTR" => Ok(AlgId::AesCtr),
            "AESCBC" => Ok(AlgId::AesCbc),
            other => Err(PlayReadyError::UnsupportedAlgId(other.to_owned())),
        }
    }
}

/// A PlayReady Header to build. `kids` pairs each KID with its content key when a `CHECKSUM` should be written
/// (AESCTR only); the key is used for nothing else and is wiped when the header is dropped.
///
/// The builder refuses combinations the specification forbids (several KIDs in 4.0/4.1, AESCBC before 4.3, a
/// checksum for a non-AESCTR key, ...), because a client facing such a header fails at playback time, far from the
/// mistake.
#[derive(Clone)]
pub struct WrmHeader {
    pub version: WrmHeaderVersion,
    pub kids: Vec<(Kid, Option<Zeroizing<[u8; 16]>>)>,
    /// `None` is only valid in 4.3 (the client learns the algorithm from the license) or for a header without KIDs.
    pub algid: Option<AlgId>,
    /// Absolute http(s) URL of the license acquisition service.
    pub la_url: Option<String>,
    /// Absolute http(s) URL of a non-silent license acquisition web page.
    pub lui_url: Option<String>,
    /// Domain service id: base64 of a 16-byte GUID.
    pub ds_id: Option<String>,
    /// XML written verbatim inside `CUSTOMATTRIBUTES`; checked to be well-formed and canonical (explicit closing tags,
    /// attributes in alphabetical order) because the header rules require it and a stray closing tag would let it
    /// rewrite the rest of the header.
    pub custom_attributes: Option<String>,
    /// Writes `<DECRYPTORSETUP>ONDEMAND</DECRYPTORSETUP>` (4.1 and later).
    pub decryptor_setup_on_demand: bool,
}

impl WrmHeader {
    /// An empty header of `version`; fill in the public fields.
    pub fn new(version: WrmHeaderVersion) -> Self {
        WrmHeader {
            version,
            kids: Vec::new(),
            algid: None,
            la_url: None,
            lui_url: None,
            ds_id: None,
            custom_attributes: None,
            decryptor_setup_on_demand: false,
        }
    }

    /// Check the header against the rules of its version (see the type's documentation).
    pub fn validate(&self) -> Result<(), PlayReadyError> {
        let version = self.version.as_str();
        let count = self.kids.len();
        match self.version {
            WrmHeaderVersion::V4_0 if count != 1 => {
                return Err(PlayReadyError::KidCount { version, allowed: "exactly 1", count });
            }
            WrmHeaderVersion::V4_1 if count > 1 => {
                return Err(PlayReadyError::KidCount { version, allowed: "0 or 1", count });
            }
            _ => {}
        }
        if count == 0 && self.algid.is_some() {
            return Err(PlayReadyError::AlgIdWithoutKid);
        }
        if count > 0 {
            match (self.version, self.algid) {
                (_, Some(AlgId::AesCtr)) | (WrmHeaderVersion::V4_3, _) => {}
                (_, None) => return Err(PlayReadyError::AlgIdRequired { version }),
                (_, Some(other)) => return Err(PlayReadyError::AlgIdNotAllowed { version, algid: other.as_str() }),
            }
        }
        if self.algid != Some(AlgId::AesCtr) && self.kids.iter().any(|(_, key)| key.is_some()) {
            return Err(PlayReadyError::ChecksumNotAllowed);
        }
        for (i, (kid, _)) in self.kids.iter().enumerate() {
            if self.kids.iter().take(i).any(|(earlier, _)| earlier == kid) {
                return Err(PlayReadyError::DuplicateKid(*kid));
            }
        }
        if let Some(url) = &self.la_url {
            check_url("LA_URL", url)?;
        }
        if let Some(url) = &self.lui_url {
            check_url("LUI_URL", url)?;
        }
        if let Some(ds_id) = &self.ds_id {
            check_text("DS_ID", ds_id)?;
            if STANDARD.decode(ds_id).map(|b| b.len()) != Ok(16) {
                return Err(PlayReadyError::InvalidDsId);
            }
        }
        if let Some(custom) = &self.custom_attributes {
            check_custom_attributes(custom)?;
        }
        if self.decryptor_setup_on_demand && self.version == WrmHeaderVersion::V4_0 {
            return Err(PlayReadyError::DecryptorSetupNotAllowed);
        }
        Ok(())
    }

    /// The header as the exact XML string clients expect: no XML declaration, no whitespace between elements,
    /// attributes in alphabetical order and explicit closing tags (the header's canonical-form rules). Element order
    /// follows what Microsoft's own examples, Shaka Packager and pycpix emit, so the output matches them byte for
    /// byte.
    pub fn to_xml(&self) -> Result<String, PlayReadyError> {
        self.validate()?;
        let mut x = String::with_capacity(512);
        x.push_str("<WRMHEADER xmlns=\"");
        x.push_str(WRMHEADER_NAMESPACE);
        x.push_str("\" version=\"");
        x.push_str(self.version.as_str());
        x.push_str("\"><DATA>");
        match self.version {
            WrmHeaderVersion::V4_0 => {
                // validate() guarantees exactly one KID and AESCTR.
                if let Some((kid, key)) = self.kids.first() {
                    x.push_str("<PROTECTINFO><KEYLEN>16</KEYLEN><ALGID>AESCTR</ALGID></PROTECTINFO><KID>");
                    x.push_str(&STANDARD.encode(kid_to_guid_le(kid)));
                    x.push_str("</KID>");
                    if let Some(key) = key {
                        x.push_str("<CHECKSUM>");
                        x.push_str(&aesctr_checksum(key, kid));
                        x.push_str("</CHECKSUM>");
                    }
                }
            }
            WrmHeaderVersion::V4_1 => {
                if let Some((kid, key)) = self.kids.first() {
                    x.push_str("<PROTECTINFO>");
                    push_kid_element(&mut x, kid, key.as_deref(), self.algid);
                    x.push_str("</PROTECTINFO>");
                }
            }
            WrmHeaderVersion::V4_2 | WrmHeaderVersion::V4_3 => {
                if !self.kids.is_empty() {
                    x.push_str("<PROTECTINFO><KIDS>");
                    for (kid, key) in &self.kids {
                        push_kid_element(&mut x, kid, key.as_deref(), self.algid);
                    }
                    x.push_str("</KIDS></PROTECTINFO>");
                }
            }
        }
        push_text_element(&mut x, "LA_URL", self.la_url.as_deref());
        push_text_element(&mut x, "LUI_URL", self.lui_url.as_deref());
        push_text_element(&mut x, "DS_ID", self.ds_id.as_deref());
        if let Some(custom) = &self.custom_attributes {
            // Verbatim: validate() proved it is a balanced, canonical fragment.
            x.push_str("<CUSTOMATTRIBUTES>");
            x.push_str(custom);
            x.push_str("</CUSTOMATTRIBUTES>");
        }
        if self.decryptor_setup_on_demand {
            x.push_str("<DECRYPTORSETUP>ONDEMAND</DECRYPTORSETUP>");
        }
        x.push_str("</DATA></WRMHEADER>");
        Ok(x)
    }

    /// The header in UTF-16LE without a byte-order mark: the form stored in a PRO.
    pub fn to_utf16le(&self) -> Result<Vec<u8>, PlayReadyError> {
        Ok(self.to_xml()?.encode_utf16().flat_map(u16::to_le_bytes).collect())
    }

    /// The header wrapped in a one-record PlayReady Object.
    pub fn to_playready_object(&self) -> Result<Vec<u8>, PlayReadyError> {
        playready_object(&self.to_utf16le()?)
    }
}

impl fmt::Debug for WrmHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Content keys never reach logs: show only whether a checksum key is present.
        let kids: Vec<String> =
            self.kids.iter().map(|(kid, key)| format!("{kid}{}", if key.is_some() { "+key" } else { "" })).collect();
        f.debug_struct("WrmHeader")
            .field("version", &self.version)
            .field("kids", &kids)
            .field("algid", &self.algid)
            .field("la_url", &self.la_url)
            .field("lui_url", &self.lui_url)
            .field("ds_id", &self.ds_id)
            .field("custom_attributes", &self.custom_attributes)
            .field("decryptor_setup_on_demand", &self.decryptor_setup_on_demand)
            .finish()
    }
}

/// `<KID ALGID=".." CHECKSUM=".." VALUE=".."></KID>`: attributes in alphabetical order, explicit closing tag.
fn push_kid_element(x: &mut String, kid: &Kid, key: Option<&[u8; 16]>, algid: Option<AlgId>) {
    x.push_str("<KID");
    if let Some(algid) = algid {
        x.push_str(" ALGID=\"");
        x.push_str(algid.as_str());
        x.push('"');
    }
    if let Some(key) = key {
        x.push_str(" CHECKSUM=\"");
        x.push_str(&aesctr_checksum(key, kid));
        x.push('"');
    }
    x.push_str(" VALUE=\"");
    x.push_str(&STANDARD.encode(kid_to_guid_le(kid)));
    x.push_str("\"></KID>");
}

fn push_text_element(x: &mut String, name: &str, value: Option<&str>) {
    if let Some(value) = value {
        x.push('<');
        x.push_str(name);
        x.push('>');
        // Canonical XML escapes &, < and > in text; quotes stay as they are.
        x.push_str(&quick_xml::escape::partial_escape(value));
        x.push_str("</");
        x.push_str(name);
        x.push('>');
    }
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Text values must survive a write/read cycle unchanged: the reader trims surrounding XML whitespace, and control
/// characters are either illegal in XML or rewritten by line-end normalization.
fn check_text(field: &'static str, value: &str) -> Result<(), PlayReadyError> {
    if value.is_empty() || value.trim_matches(is_xml_space) != value || value.chars().any(char::is_control) {
        return Err(PlayReadyError::InvalidText { field });
    }
    Ok(())
}

/// The header rules allow only absolute URLs; a PlayReady client only fetches http(s).
fn check_url(field: &'static str, value: &str) -> Result<(), PlayReadyError> {
    check_text(field, value).map_err(|_| PlayReadyError::InvalidUrl { field })?;
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(()),
        _ => Err(PlayReadyError::InvalidUrl { field }),
    }
}

/// Accept only a fragment that is well-formed, balanced (it cannot close `CUSTOMATTRIBUTES` early and inject
/// elements into `DATA`) and in the canonical form the header rules demand: explicit closing tags, namespace
/// declarations before other attributes, attributes in alphabetical order, no comments, CDATA, PIs or declarations.
fn check_custom_attributes(fragment: &str) -> Result<(), PlayReadyError> {
    let bad = |why: &str| PlayReadyError::InvalidCustomAttributes(why.to_owned());
    if fragment.trim_matches(is_xml_space).is_empty() {
        return Err(bad("must not be empty"));
    }
    if fragment.chars().any(|c| c.is_control() && c != '\t' && c != '\n') {
        return Err(bad("control characters are not allowed"));
    }
    let mut reader = Reader::from_str(fragment);
    let mut depth = 0usize;
    loop {
        match reader.read_event().map_err(|e| PlayReadyError::InvalidCustomAttributes(e.to_string()))? {
            Event::Start(start) => {
                check_canonical_attributes(&start)?;
                depth += 1;
                if depth > MAX_XML_DEPTH {
                    return Err(bad("nested too deeply"));
                }
            }
            Event::End(_) => depth = depth.checked_sub(1).ok_or_else(|| bad("unbalanced closing tag"))?,
            Event::Empty(_) => return Err(bad("self-closing elements are not allowed; use an explicit closing tag")),
            Event::Text(_) => {}
            Event::GeneralRef(reference) => {
                resolve_reference(&reference).map_err(|_| bad("unknown entity reference"))?;
            }
            Event::CData(_) | Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {
                return Err(bad("only elements and text are allowed"));
            }
            Event::Eof => break,
        }
    }
    if depth != 0 {
        return Err(bad("unclosed element"));
    }
    Ok(())
}

fn check_canonical_attributes(start: &BytesStart<'_>) -> Result<(), PlayReadyError> {
    let bad = |why: &str| PlayReadyError::InvalidCustomAttributes(why.to_owned());
    let mut last_ns: Option<Vec<u8>> = None;
    let mut last_plain: Option<Vec<u8>> = None;
    for attr in start.attributes() {
        let attr = attr.map_err(|e| PlayReadyError::InvalidCustomAttributes(e.to_string()))?;
        let key = attr.key.as_ref().as_bytes().to_vec();
        if key == b"xmlns" || key.starts_with(b"xmlns:") {
            if last_plain.is_some() {
                return Err(bad("namespace declarations must come before other attributes"));
            }
            if last_ns.as_ref().is_some_and(|prev| *prev >= key) {
                return Err(bad("namespace declarations must be in alphabetical order"));
            }
            last_ns = Some(key);
        } else {
            if last_plain.as_ref().is_some_and(|prev| *prev >= key) {
                return Err(bad("attributes must be in alphabetical order"));
            }
            last_plain = Some(key);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------------
// PlayReady Object and PSSH

/// One record of a PlayReady Object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProRecord {
    /// [`PRO_RECORD_WRMHEADER`], [`PRO_RECORD_EMBEDDED_LICENSE_STORE`] or another (reserved) value.
    pub record_type: u16,
    pub value: Vec<u8>,
}

/// A PlayReady Object holding one PlayReady Header record: `u32` LE total length, `u16` LE record count (1), then
/// `u16` LE type 1, `u16` LE value length and the UTF-16LE header. Fails when the header does not fit the `u16`
/// record length or is not whole UTF-16 code units, rather than writing a length that lies.
pub fn playready_object(wrmheader_utf16: &[u8]) -> Result<Vec<u8>, PlayReadyError> {
    let max = usize::from(u16::MAX);
    let value_len = u16::try_from(wrmheader_utf16.len()).map_err(|_| PlayReadyError::TooLarge {
        what: "the PlayReady Header",
        len: wrmheader_utf16.len(),
        max,
    })?;
    if !wrmheader_utf16.len().is_multiple_of(2) {
        return Err(PlayReadyError::OddUtf16Length);
    }
    let total = 10 + u32::from(value_len);
    let mut out = Vec::with_capacity(10 + wrmheader_utf16.len());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&PRO_RECORD_WRMHEADER.to_le_bytes());
    out.extend_from_slice(&value_len.to_le_bytes());
    out.extend_from_slice(wrmheader_utf16);
    Ok(out)
}

/// The PlayReady `pssh` box carrying `pro`: version 0 when `kids` is `None` (what Shaka Packager writes and what
/// PlayReady clients older than the v1 box understand), version 1 with the KIDs in the box header otherwise (lets
/// players and packagers see the KIDs without parsing the PRO).
pub fn playready_pssh(pro: &[u8], kids: Option<&[Kid]>) -> Vec<u8> {
    pssh_box(&PLAYREADY_SYSTEM_ID, kids, pro)
}

/// Bounds-checked cursor over attacker-controlled bytes: every read either fits or reports [`PlayReadyError::Truncated`].
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PlayReadyError> {
        let end = self.pos.checked_add(n).ok_or(PlayReadyError::Truncated)?;
        let slice = self.bytes.get(self.pos..end).ok_or(PlayReadyError::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn u16_le(&mut self) -> Result<u16, PlayReadyError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b.first().copied().unwrap_or(0), b.get(1).copied().unwrap_or(0)]))
    }

    fn u32_le(&mut self) -> Result<u32, PlayReadyError> {
        let mut out = [0u8; 4];
        for (o, b) in out.iter_mut().zip(self.take(4)?) {
            *o = *b;
        }
        Ok(u32::from_le_bytes(out))
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }
}

/// Split a PlayReady Object into its records. Strict: the declared total length must equal the input length, every
/// record must fit, and nothing may follow the last record, so that two readers cannot disagree on where a record
/// starts.
pub fn parse_playready_object(bytes: &[u8]) -> Result<Vec<ProRecord>, PlayReadyError> {
    let mut cursor = Cursor { bytes, pos: 0 };
    let declared = cursor.u32_le()?;
    if usize::try_from(declared).ok() != Some(bytes.len()) {
        return Err(PlayReadyError::LengthMismatch { declared, actual: bytes.len() });
    }
    let count = cursor.u16_le()?;
    // Each record takes at least 4 bytes, so a lying count cannot make us reserve more than the input allows.
    let mut records = Vec::with_capacity(usize::from(count).min(cursor.remaining() / 4));
    for _ in 0..count {
        let record_type = cursor.u16_le()?;
        let len = cursor.u16_le()?;
        let value = cursor.take(usize::from(len))?.to_vec();
        records.push(ProRecord { record_type, value });
    }
    if cursor.remaining() != 0 {
        return Err(PlayReadyError::TrailingBytes(cursor.remaining()));
    }
    Ok(records)
}

/// The PlayReady Header inside a PlayReady Object (e.g. the data of a PlayReady `pssh` box). Exactly one header
/// record is required: with two, which one the client uses is anybody's guess.
pub fn wrmheader_from_playready_object(bytes: &[u8]) -> Result<ParsedWrmHeader, PlayReadyError> {
    let records = parse_playready_object(bytes)?;
    let mut headers = records.iter().filter(|r| r.record_type == PRO_RECORD_WRMHEADER);
    match (headers.next(), headers.count()) {
        (Some(record), 0) => parse_wrmheader(&record.value),
        (first, more) => Err(PlayReadyError::HeaderRecordCount(usize::from(first.is_some()) + more)),
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// Header parser

/// One KID read from a header, with what the header says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedKid {
    /// In Clavis's UUID byte order (converted from the header's little-endian GUID).
    pub kid: Kid,
    pub algid: Option<AlgId>,
    /// The 8 checksum bytes, when the header carries a `CHECKSUM`.
    pub checksum: Option<[u8; 8]>,
}

impl ParsedKid {
    /// Whether `key` is the key this header's checksum was made with; `None` when there is no checksum to compare.
    pub fn checksum_matches(&self, key: &[u8; 16]) -> Option<bool> {
        self.checksum.map(|c| c == aesctr_checksum_bytes(key, &self.kid))
    }
}

/// What Clavis reads from a PlayReady Header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedWrmHeader {
    pub version: WrmHeaderVersion,
    pub kids: Vec<ParsedKid>,
    pub la_url: Option<String>,
    pub lui_url: Option<String>,
    pub ds_id: Option<String>,
    /// The raw XML between `<CUSTOMATTRIBUTES>` and `</CUSTOMATTRIBUTES>`, exactly as written (this is where
    /// services put their own data, e.g. a content id or a token hint).
    pub custom_attributes: Option<String>,
    pub decryptor_setup_on_demand: bool,
}

impl ParsedWrmHeader {
    /// The KIDs alone, in header order.
    pub fn kid_list(&self) -> Vec<Kid> {
        self.kids.iter().map(|k| k.kid).collect()
    }
}

/// Parse a PlayReady Header given as UTF-16LE (with or without a byte-order mark, as stored in a PRO) or as UTF-8
/// text (how it appears inside a license challenge once the SOAP XML is decoded). The encoding is detected from the
/// first bytes: a header always starts with `<`, which in UTF-16LE is followed by a zero byte.
pub fn parse_wrmheader(bytes: &[u8]) -> Result<ParsedWrmHeader, PlayReadyError> {
    if bytes.len() > MAX_WRMHEADER_INPUT {
        return Err(PlayReadyError::TooLarge { what: "the header input", len: bytes.len(), max: MAX_WRMHEADER_INPUT });
    }
    let text = if let Some(rest) = bytes.strip_prefix(&[0xff, 0xfe]) {
        decode_utf16le(rest)?
    } else if let Some(rest) = bytes.strip_prefix(&[0xef, 0xbb, 0xbf]) {
        std::str::from_utf8(rest).map_err(|_| PlayReadyError::InvalidEncoding)?.to_owned()
    } else if bytes.get(1) == Some(&0) && bytes.first().is_some_and(|b| *b != 0) {
        decode_utf16le(bytes)?
    } else {
        std::str::from_utf8(bytes).map_err(|_| PlayReadyError::InvalidEncoding)?.to_owned()
    };
    parse_wrmheader_str(&text)
}

fn decode_utf16le(bytes: &[u8]) -> Result<String, PlayReadyError> {
    if !bytes.len().is_multiple_of(2) {
        return Err(PlayReadyError::OddUtf16Length);
    }
    let units = bytes.chunks_exact(2).map(|pair| match pair {
        [lo, hi] => u16::from_le_bytes([*lo, *hi]),
        _ => 0,
    });
    char::decode_utf16(units).collect::<Result<String, _>>().map_err(|_| PlayReadyError::InvalidEncoding)
}

/// Where an element sits in the header, for the header's version. Anything Microsoft defines that shows up in a
/// place its version does not define (a 4.1-style `KID` in a 4.2 header, a second `KID` in 4.0 ...) is an error,
/// not skipped: the license server might read it, and Clavis must authorize exactly what the server will issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    Root,
    Data,
    ProtectInfo,
    KeyLen,
    AlgId40,
    Kid40,
    Checksum40,
    KidAttr,
    Kids,
    LaUrl,
    LuiUrl,
    DsId,
    CustomAttributes,
    DecryptorSetup,
    /// An element the header rules do not define (skipped, as the rules tell clients to do).
    Unknown,
    /// Anything inside `CUSTOMATTRIBUTES`.
    Custom,
}

impl Node {
    fn captures_text(self) -> bool {
        matches!(
            self,
            Node::KeyLen
                | Node::AlgId40
                | Node::Kid40
                | Node::Checksum40
                | Node::LaUrl
                | Node::LuiUrl
                | Node::DsId
                | Node::DecryptorSetup
        )
    }

    /// Elements the rules allow at most once (per parent; each has a single possible parent).
    fn singleton_name(self, version: WrmHeaderVersion) -> Option<&'static str> {
        Some(match self {
            Node::Data => "DATA",
            Node::ProtectInfo => "PROTECTINFO",
            Node::KeyLen => "KEYLEN",
            Node::AlgId40 => "ALGID",
            Node::Kid40 => "KID",
            Node::Checksum40 => "CHECKSUM",
            Node::KidAttr if version == WrmHeaderVersion::V4_1 => "KID",
            Node::Kids => "KIDS",
            Node::LaUrl => "LA_URL",
            Node::LuiUrl => "LUI_URL",
            Node::DsId => "DS_ID",
            Node::CustomAttributes => "CUSTOMATTRIBUTES",
            Node::DecryptorSetup => "DECRYPTORSETUP",
            _ => return None,
        })
    }
}

const HEADER_VOCABULARY: [&str; 13] = [
    "WRMHEADER",
    "DATA",
    "PROTECTINFO",
    "KEYLEN",
    "ALGID",
    "KID",
    "KIDS",
    "CHECKSUM",
    "LA_URL",
    "LUI_URL",
    "DS_ID",
    "CUSTOMATTRIBUTES",
    "DECRYPTORSETUP",
];

fn classify(version: WrmHeaderVersion, parent: Node, name: &str) -> Result<Node, PlayReadyError> {
    use WrmHeaderVersion::{V4_0, V4_1, V4_2, V4_3};
    let node = match (parent, name) {
        (Node::Root, "DATA") => Node::Data,
        (Node::Data, "PROTECTINFO") => Node::ProtectInfo,
        (Node::ProtectInfo, "KEYLEN") if version == V4_0 => Node::KeyLen,
        (Node::ProtectInfo, "ALGID") if version == V4_0 => Node::AlgId40,
        (Node::Data, "KID") if version == V4_0 => Node::Kid40,
        (Node::Data, "CHECKSUM") if version == V4_0 => Node::Checksum40,
        (Node::ProtectInfo, "KID") if version == V4_1 => Node::KidAttr,
        (Node::ProtectInfo, "KIDS") if matches!(version, V4_2 | V4_3) => Node::Kids,
        (Node::Kids, "KID") => Node::KidAttr,
        (Node::Data, "LA_URL") => Node::LaUrl,
        (Node::Data, "LUI_URL") => Node::LuiUrl,
        (Node::Data, "DS_ID") => Node::DsId,
        (Node::Data, "CUSTOMATTRIBUTES") => Node::CustomAttributes,
        (Node::Data, "DECRYPTORSETUP") if version != V4_0 => Node::DecryptorSetup,
        (_, other) if HEADER_VOCABULARY.contains(&other) => {
            return Err(PlayReadyError::MisplacedElement(other.to_owned()));
        }
        _ => Node::Unknown,
    };
    Ok(node)
}

/// Resolve `&name;` / `&#n;` to text. Only the XML predefined entities exist in a header (no DTD is allowed).
fn resolve_reference(reference: &quick_xml::events::BytesRef<'_>) -> Result<String, PlayReadyError> {
    if let Some(c) = reference.resolve_char_ref().map_err(|e| PlayReadyError::Xml(e.to_string()))? {
        return Ok(c.to_string());
    }
    quick_xml::escape::resolve_predefined_entity(reference)
        .map(str::to_owned)
        .ok_or_else(|| PlayReadyError::Xml(format!("unknown entity &{};", &**reference)))
}

fn decode_kid(text: &str) -> Result<Kid, PlayReadyError> {
    let bytes = STANDARD.decode(text).map_err(|_| PlayReadyError::InvalidKid(text.to_owned()))?;
    let guid: [u8; 16] = bytes.try_into().map_err(|_| PlayReadyError::InvalidKid(text.to_owned()))?;
    Ok(kid_from_guid_le(guid))
}

fn decode_checksum(text: &str) -> Result<[u8; 8], PlayReadyError> {
    let bytes = STANDARD.decode(text).map_err(|_| PlayReadyError::InvalidChecksum(text.to_owned()))?;
    bytes.try_into().map_err(|_| PlayReadyError::InvalidChecksum(text.to_owned()))
}

/// A `KID` element in attribute form (4.1 and later): `VALUE` required, `ALGID` and `CHECKSUM` optional here (the
/// per-version rules are checked once the whole header has been read). Unknown attributes are skipped.
fn kid_from_attributes(start: &BytesStart<'_>) -> Result<ParsedKid, PlayReadyError> {
    let (mut value, mut algid, mut checksum) = (None, None, None);
    for attr in start.attributes() {
        let attr = attr.map_err(|e| PlayReadyError::Xml(e.to_string()))?;
        let text = attr.normalized_value(XmlVersion::Implicit1_0).map_err(|e| PlayReadyError::Xml(e.to_string()))?;
        let text = text.trim_matches(is_xml_space);
        match attr.key.as_ref() {
            "VALUE" => value = Some(decode_kid(text)?),
            "ALGID" => algid = Some(AlgId::parse(text)?),
            "CHECKSUM" => checksum = Some(decode_checksum(text)?),
            _ => {}
        }
    }
    Ok(ParsedKid { kid: value.ok_or(PlayReadyError::MissingKidValue)?, algid, checksum })
}

/// Parse state gathered while walking the XML.
#[derive(Default)]
struct Gathered {
    kids: Vec<ParsedKid>,
    kid40: Option<Kid>,
    algid40: Option<AlgId>,
    checksum40: Option<[u8; 8]>,
    la_url: Option<String>,
    lui_url: Option<String>,
    ds_id: Option<String>,
    custom_attributes: Option<String>,
    decryptor_setup_on_demand: bool,
}

/// Parse a PlayReady Header from XML text. See [`parse_wrmheader`] for the byte-level entry point.
pub fn parse_wrmheader_str(xml: &str) -> Result<ParsedWrmHeader, PlayReadyError> {
    if xml.len() > MAX_WRMHEADER_INPUT {
        return Err(PlayReadyError::TooLarge { what: "the header input", len: xml.len(), max: MAX_WRMHEADER_INPUT });
    }
    // XML 1.0 forbids these characters anywhere; quick-xml does not check characters, so do it here.
    if xml.chars().any(|c| (c < ' ' && !is_xml_space(c)) || c == '\u{fffe}' || c == '\u{ffff}') {
        return Err(PlayReadyError::Xml("characters not allowed in XML".to_owned()));
    }
    let mut reader = Reader::from_str(xml);
    reader.config_mut().expand_empty_elements = true;

    let mut version: Option<WrmHeaderVersion> = None;
    let mut stack: Vec<Node> = Vec::new();
    let mut seen: Vec<Node> = Vec::new();
    let mut text = String::new();
    let mut root_closed = false;
    // (stack depth of CUSTOMATTRIBUTES, byte offset just after its start tag)
    let mut custom: Option<(usize, usize)> = None;
    let mut g = Gathered::default();

    loop {
        let before = usize::try_from(reader.buffer_position()).map_err(|_| PlayReadyError::Truncated)?;
        let event = reader.read_event().map_err(|e| PlayReadyError::Xml(e.to_string()))?;

        if let Some((depth, start)) = custom {
            match event {
                Event::Start(_) => {
                    if stack.len() >= MAX_XML_DEPTH {
                        return Err(PlayReadyError::Xml("elements nested too deeply".to_owned()));
                    }
                    stack.push(Node::Custom);
                }
                Event::End(_) => {
                    if stack.len() == depth {
                        let raw = xml.get(start..before).ok_or(PlayReadyError::Truncated)?;
                        g.custom_attributes = Some(raw.to_owned());
                        custom = None;
                    }
                    stack.pop();
                }
                Event::Eof => return Err(PlayReadyError::Xml("unclosed CUSTOMATTRIBUTES".to_owned())),
                Event::DocType(_) => return Err(PlayReadyError::UnexpectedContent("a DTD".to_owned())),
                _ => {}
            }
            continue;
        }

        match event {
            Event::Start(start) => {
                let name = start.name().as_ref().to_owned();
                let Some(parent) = stack.last().copied() else {
                    if root_closed {
                        return Err(PlayReadyError::UnexpectedContent("content after WRMHEADER".to_owned()));
                    }
                    if name != "WRMHEADER" {
                        return Err(PlayReadyError::NotAWrmHeader);
                    }
                    version = Some(root_version(&start)?);
                    stack.push(Node::Root);
                    continue;
                };
                let Some(v) = version else {
                    return Err(PlayReadyError::MissingVersion);
                };
                if parent.captures_text() || parent == Node::KidAttr {
                    return Err(PlayReadyError::UnexpectedContent(format!("element {name} inside a value")));
                }
                let node = if parent == Node::Unknown && !HEADER_VOCABULARY.contains(&name.as_str()) {
                    Node::Unknown
                } else {
                    classify(v, parent, &name)?
                };
                if let Some(single) = node.singleton_name(v) {
                    if seen.contains(&node) {
                        return Err(PlayReadyError::DuplicateElement(single));
                    }
                    seen.push(node);
                }
                if stack.len() >= MAX_XML_DEPTH {
                    return Err(PlayReadyError::Xml("elements nested too deeply".to_owned()));
                }
                stack.push(node);
                match node {
                    Node::KidAttr => g.kids.push(kid_from_attributes(&start)?),
                    Node::CustomAttributes => {
                        let after = usize::try_from(reader.buffer_position()).map_err(|_| PlayReadyError::Truncated)?;
                        custom = Some((stack.len(), after));
                    }
                    _ => {}
                }
                text.clear();
            }
            Event::End(_) => {
                let node = stack.pop().ok_or_else(|| PlayReadyError::Xml("unbalanced closing tag".to_owned()))?;
                if node.captures_text() {
                    finish_value(node, text.trim_matches(is_xml_space), &mut g)?;
                }
                if node == Node::Kids && g.kids.is_empty() {
                    return Err(PlayReadyError::EmptyKids);
                }
                if stack.is_empty() {
                    root_closed = true;
                }
                text.clear();
            }
            Event::Text(t) => accept_text(stack.last().copied(), &t.xml10_content(), &mut text)?,
            Event::CData(t) => accept_text(stack.last().copied(), &t.xml10_content(), &mut text)?,
            Event::GeneralRef(r) => accept_text(stack.last().copied(), &resolve_reference(&r)?, &mut text)?,
            Event::Comment(_) => {}
            Event::Decl(_) if version.is_none() => {}
            Event::Decl(_) | Event::PI(_) | Event::DocType(_) | Event::Empty(_) => {
                return Err(PlayReadyError::UnexpectedContent(
                    "declarations, DTDs or processing instructions".to_owned(),
                ));
            }
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(PlayReadyError::Xml("unclosed element".to_owned()));
    }
    let version = version.ok_or(PlayReadyError::NotAWrmHeader)?;
    assemble(version, g)
}

fn root_version(start: &BytesStart<'_>) -> Result<WrmHeaderVersion, PlayReadyError> {
    let mut version = None;
    for attr in start.attributes() {
        let attr = attr.map_err(|e| PlayReadyError::Xml(e.to_string()))?;
        let value = attr.normalized_value(XmlVersion::Implicit1_0).map_err(|e| PlayReadyError::Xml(e.to_string()))?;
        match attr.key.as_ref() {
            "version" => {
                version = Some(
                    WrmHeaderVersion::parse(value.trim_matches(is_xml_space))
                        .ok_or_else(|| PlayReadyError::UnsupportedVersion(value.clone().into_owned()))?,
                );
            }
            "xmlns" if value != WRMHEADER_NAMESPACE => {
                return Err(PlayReadyError::WrongNamespace(value.into_owned()));
            }
            _ => {}
        }
    }
    version.ok_or(PlayReadyError::MissingVersion)
}

/// Text goes into the value being read; elsewhere only layout whitespace is allowed (text in unknown elements is
/// theirs to have).
fn accept_text(top: Option<Node>, chunk: &str, text: &mut String) -> Result<(), PlayReadyError> {
    match top {
        Some(node) if node.captures_text() => {
            text.push_str(chunk);
            Ok(())
        }
        Some(Node::Unknown) => Ok(()),
        _ if chunk.chars().all(is_xml_space) => Ok(()),
        _ => Err(PlayReadyError::UnexpectedContent("text outside a value element".to_owned())),
    }
}

fn finish_value(node: Node, value: &str, g: &mut Gathered) -> Result<(), PlayReadyError> {
    let non_empty = |name: &'static str| {
        if value.is_empty() { Err(PlayReadyError::EmptyElement(name)) } else { Ok(value.to_owned()) }
    };
    match node {
        Node::KeyLen if value != "16" => return Err(PlayReadyError::InvalidKeyLen(value.to_owned())),
        Node::KeyLen => {}
        Node::AlgId40 => g.algid40 = Some(AlgId::parse(value)?),
        Node::Kid40 => g.kid40 = Some(decode_kid(value)?),
        Node::Checksum40 => g.checksum40 = Some(decode_checksum(value)?),
        Node::LaUrl => g.la_url = Some(non_empty("LA_URL")?),
        Node::LuiUrl => g.lui_url = Some(non_empty("LUI_URL")?),
        Node::DsId => g.ds_id = Some(non_empty("DS_ID")?),
        Node::DecryptorSetup if value == "ONDEMAND" => g.decryptor_setup_on_demand = true,
        Node::DecryptorSetup => return Err(PlayReadyError::InvalidDecryptorSetup(value.to_owned())),
        _ => {}
    }
    Ok(())
}

/// Apply the per-version rules to what was read.
fn assemble(version: WrmHeaderVersion, g: Gathered) -> Result<ParsedWrmHeader, PlayReadyError> {
    let v = version.as_str();
    let kids = match version {
        WrmHeaderVersion::V4_0 => {
            let (Some(kid), Some(algid)) = (g.kid40, g.algid40) else {
                return Err(PlayReadyError::Incomplete40);
            };
            if algid != AlgId::AesCtr {
                return Err(PlayReadyError::AlgIdNotAllowed { version: v, algid: algid.as_str() });
            }
            vec![ParsedKid { kid, algid: Some(algid), checksum: g.checksum40 }]
        }
        WrmHeaderVersion::V4_1 | WrmHeaderVersion::V4_2 => {
            for kid in &g.kids {
                match kid.algid {
                    Some(AlgId::AesCtr) => {}
                    None => return Err(PlayReadyError::AlgIdRequired { version: v }),
                    Some(other) => return Err(PlayReadyError::AlgIdNotAllowed { version: v, algid: other.as_str() }),
                }
            }
            g.kids
        }
        WrmHeaderVersion::V4_3 => {
            if g.kids.len() > 1 && g.kids.iter().any(|k| k.algid.is_some()) {
                let first = g.kids.first().and_then(|k| k.algid);
                if g.kids.iter().any(|k| k.algid != first) {
                    return Err(PlayReadyError::MixedAlgIds);
                }
            }
            if g.kids.iter().any(|k| k.checksum.is_some() && k.algid != Some(AlgId::AesCtr)) {
                return Err(PlayReadyError::ChecksumNotAllowed);
            }
            g.kids
        }
    };
    for (i, k) in kids.iter().enumerate() {
        if kids.iter().take(i).any(|earlier| earlier.kid == k.kid) {
            return Err(PlayReadyError::DuplicateKid(k.kid));
        }
    }
    Ok(ParsedWrmHeader {
        version,
        kids,
        la_url: g.la_url,
        lui_url: g.lui_url,
        ds_id: g.ds_id,
        custom_attributes: g.custom_attributes,
        decryptor_setup_on_demand: g.decryptor_setup_on_demand,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use proptest::prelude::*;

    use super::*;
    use crate::pssh::COMMON_SYSTEM_ID;

    const MS_TEST_SEED: &str = "XVBovsmzhP9gRIZxWfFta3VVRPzVEWmJsazEJ46I";

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

    fn vector_text(rel: &str) -> String {
        String::from_utf8(vector(rel)).unwrap()
    }

    fn vector_json(rel: &str) -> serde_json::Value {
        serde_json::from_slice(&vector(rel)).unwrap()
    }

    /// The text of every element named `name` (qualified name as written) in `xml`.
    fn element_texts(xml: &str, name: &str) -> Vec<String> {
        let mut reader = Reader::from_str(xml);
        let mut out = Vec::new();
        let mut current: Option<String> = None;
        loop {
            match reader.read_event().unwrap() {
                Event::Start(s) if s.name().as_ref() == name => current = Some(String::new()),
                Event::Text(t) => {
                    if let Some(c) = current.as_mut() {
                        c.push_str(&t.xml10_content());
                    }
                }
                Event::End(e) if e.name().as_ref() == name => out.extend(current.take()),
                Event::Eof => break,
                _ => {}
            }
        }
        out
    }

    fn seed() -> KeySeed {
        KeySeed::from_base64(MS_TEST_SEED).unwrap()
    }

    fn kid(s: &str) -> Kid {
        Kid::parse_hex(s).unwrap()
    }

    fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    /// A header whose checksum keys come from Microsoft's test seed.
    fn seeded_header(version: WrmHeaderVersion, kids: &[Kid], algid: Option<AlgId>, checksums: bool) -> WrmHeader {
        let seed = seed();
        let mut header = WrmHeader::new(version);
        header.kids = kids.iter().map(|k| (*k, checksums.then(|| Zeroizing::new(seed.derive(k))))).collect();
        header.algid = algid;
        header
    }

    fn file_without_final_newline(rel: &str) -> String {
        let text = vector_text(rel);
        text.strip_suffix('\n').unwrap_or(&text).to_owned()
    }

    // --- key seed ---------------------------------------------------------------------------------------------------

    #[test]
    fn keyseed_vectors_derive_keys_and_checksums() {
        let json = vector_json("playready/keyseed_vectors.json");
        let seed = KeySeed::from_base64(json["key_seed_b64"].as_str().unwrap()).unwrap();
        assert_eq!(hex::encode(STANDARD.decode(json["key_seed_b64"].as_str().unwrap()).unwrap()), json["key_seed_hex"]);
        let vectors = json["vectors"].as_array().unwrap();
        assert_eq!(vectors.len(), 4);
        for v in vectors {
            let kid = kid(v["kid_be_hex"].as_str().unwrap());
            assert_eq!(kid, Kid::parse_hex(&v["kid_uuid"].as_str().unwrap().to_lowercase()).unwrap());
            assert_eq!(STANDARD.encode(kid_to_guid_le(&kid)), v["kid_guid_le_b64"], "{kid}");
            assert_eq!(kid_from_guid_le(kid_to_guid_le(&kid)), kid);
            let key = seed.derive(&kid);
            assert_eq!(hex::encode(key), v["content_key_hex"], "{kid}");
            assert_eq!(STANDARD.encode(key), v["content_key_b64"], "{kid}");
            assert_eq!(aesctr_checksum(&key, &kid), v["checksum_aesctr_b64"], "{kid}");
        }
    }

    #[test]
    fn spec_example_key() {
        let kid = kid("8ba94ade6eb9449db44fa5beefaf43b0");
        let key = seed().derive(&kid);
        assert_eq!(hex::encode(key), "dbfd6922c321c4bb486f4a1c44097ed6");
        assert_eq!(aesctr_checksum(&key, &kid), "Me48z71nuqY=");
    }

    #[test]
    fn key_seed_length_and_secrecy() {
        assert_eq!(KeySeed::from_bytes(&[7; 29]).unwrap_err(), KeySeedError::TooShort(29));
        assert_eq!(KeySeed::from_base64("not base64!").unwrap_err(), KeySeedError::InvalidBase64);
        let long = KeySeed::from_bytes(&[7; 40]).unwrap();
        let exact = KeySeed::from_bytes(&[7; 30]).unwrap();
        let k = kid("10000000100010001000100000000001");
        assert_eq!(long.derive(&k), exact.derive(&k), "only the first 30 bytes count");
        let debug = format!("{:?}", seed());
        assert!(!debug.contains("5d") && !debug.contains(MS_TEST_SEED), "{debug}");
    }

    // --- pycpix byte-exact vectors ----------------------------------------------------------------------------------

    fn pycpix_header(checksum: bool) -> WrmHeader {
        let mut header = seeded_header(
            WrmHeaderVersion::V4_2,
            &[kid("8ba94ade6eb9449db44fa5beefaf43b0")],
            Some(AlgId::AesCtr),
            checksum,
        );
        header.la_url = Some("https://test.playready.microsoft.com/service/rightsmanager.asmx".to_owned());
        header
    }

    #[test]
    fn pycpix_wrmheader_is_byte_exact() {
        assert_eq!(pycpix_header(true).to_utf16le().unwrap(), vector("playready/pycpix/test_generate_wrmheader.bin"));
        assert_eq!(
            pycpix_header(false).to_utf16le().unwrap(),
            vector("playready/pycpix/test_generate_wrmheader_without_checksum.bin")
        );
    }

    #[test]
    fn pycpix_pro_and_pssh_are_byte_exact() {
        let pro = pycpix_header(true).to_playready_object().unwrap();
        assert_eq!(pro, vector("playready/pycpix/test_generate_playready_object.bin"));
        assert_eq!(playready_pssh(&pro, None), vector("playready/pycpix/test_generate_v0_pssh.bin"));
        let kids = [kid("8ba94ade6eb9449db44fa5beefaf43b0")];
        assert_eq!(playready_pssh(&pro, Some(&kids)), vector("playready/pycpix/test_generate_v1_pssh.bin"));
    }

    #[test]
    fn pycpix_vectors_parse_back() {
        let key = seed().derive(&kid("8ba94ade6eb9449db44fa5beefaf43b0"));
        let parsed = parse_wrmheader(&vector("playready/pycpix/test_generate_wrmheader.bin")).unwrap();
        assert_eq!(parsed.version, WrmHeaderVersion::V4_2);
        assert_eq!(parsed.kid_list(), vec![kid("8ba94ade6eb9449db44fa5beefaf43b0")]);
        assert_eq!(parsed.kids[0].checksum_matches(&key), Some(true));
        assert_eq!(parsed.la_url.as_deref(), Some("https://test.playready.microsoft.com/service/rightsmanager.asmx"));
        let pro =
            wrmheader_from_playready_object(&vector("playready/pycpix/test_generate_playready_object.bin")).unwrap();
        assert_eq!(pro, parsed);
        let bare = parse_wrmheader(&vector("playready/pycpix/test_generate_wrmheader_without_checksum.bin")).unwrap();
        assert_eq!(bare.kids[0].checksum, None);
    }

    // --- Microsoft documentation examples ---------------------------------------------------------------------------

    const MS_DOCS_KID: &str = "09e091abf83841d29e3558531fd19ec7";

    #[test]
    fn microsoft_pro_v4_0_parses_and_rebuilds_byte_exactly() {
        let bin = vector("playready/microsoft-docs/pro_v4.0_example.bin");
        assert_eq!(bin.len(), 860);
        let b64 = vector_text("playready/microsoft-docs/pro_v4.0_example.b64");
        assert_eq!(STANDARD.decode(b64.trim()).unwrap(), bin);

        let records = parse_playready_object(&bin).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].record_type, PRO_RECORD_WRMHEADER);
        let parsed = wrmheader_from_playready_object(&bin).unwrap();
        assert_eq!(parsed.version, WrmHeaderVersion::V4_0);
        assert_eq!(parsed.kid_list(), vec![kid(MS_DOCS_KID)]);
        assert_eq!(parsed.kids[0].algid, Some(AlgId::AesCtr));
        // The example content is keyed from Microsoft's public test seed: the checksum proves it.
        assert_eq!(parsed.kids[0].checksum_matches(&seed().derive(&kid(MS_DOCS_KID))), Some(true));
        assert_eq!(parsed.kids[0].checksum_matches(&[0; 16]), Some(false));
        let la_url = "https://profficialsite.keydelivery.mediaservices.windows.net/PlayReady/";
        assert_eq!(parsed.la_url.as_deref(), Some(la_url));
        let custom = "<IIS_DRM_VERSION>8.0.1705.19</IIS_DRM_VERSION>";
        assert_eq!(parsed.custom_attributes.as_deref(), Some(custom));

        let mut header = seeded_header(WrmHeaderVersion::V4_0, &[kid(MS_DOCS_KID)], Some(AlgId::AesCtr), true);
        header.la_url = Some(la_url.to_owned());
        header.custom_attributes = Some(custom.to_owned());
        assert_eq!(header.to_playready_object().unwrap(), bin);
    }

    #[test]
    fn microsoft_wrmheader_v4_0_example_parses() {
        let xml = file_without_final_newline("playready/microsoft-docs/wrmheader_4.0_example.xml");
        let parsed = parse_wrmheader(xml.as_bytes()).unwrap();
        assert_eq!(parsed.version, WrmHeaderVersion::V4_0);
        assert_eq!(parsed.kid_list(), vec![kid(MS_DOCS_KID)]);
        assert_eq!(parsed.kids[0].checksum_matches(&seed().derive(&kid(MS_DOCS_KID))), Some(true));
        assert_eq!(parsed.la_url.as_deref(), Some("http://rm.contoso.com/rightsmanager.asmx"));
        assert_eq!(parsed.custom_attributes.as_deref(), Some("<IIS_DRM_VERSION>8.0.1705.19</IIS_DRM_VERSION>"));

        // This docs example lists ALGID before KEYLEN; the PRO on the same page, Shaka Packager and Clavis write
        // KEYLEN first (4.0 says child order does not matter). Everything else is identical.
        let mut header = seeded_header(WrmHeaderVersion::V4_0, &[kid(MS_DOCS_KID)], Some(AlgId::AesCtr), true);
        header.la_url = parsed.la_url.clone();
        header.custom_attributes = parsed.custom_attributes.clone();
        let ours = header.to_xml().unwrap();
        let swapped =
            xml.replace("<ALGID>AESCTR</ALGID><KEYLEN>16</KEYLEN>", "<KEYLEN>16</KEYLEN><ALGID>AESCTR</ALGID>");
        assert_ne!(ours, xml);
        assert_eq!(ours, swapped);
    }

    #[test]
    fn microsoft_wrmheader_v4_2_example_is_byte_exact() {
        let xml = file_without_final_newline("playready/microsoft-docs/wrmheader_4.2_two_aesctr_example.xml");
        let kids = [kid("a2c786d0f9ef4cb3b333cd323a4284a5"), kid("db06a8feec164de292282c71e9b856ab")];
        let parsed = parse_wrmheader(xml.as_bytes()).unwrap();
        assert_eq!(parsed.version, WrmHeaderVersion::V4_2);
        assert_eq!(parsed.kid_list(), kids.to_vec());
        for k in &parsed.kids {
            assert_eq!(k.algid, Some(AlgId::AesCtr));
            assert_eq!(k.checksum_matches(&seed().derive(&k.kid)), Some(true));
        }
        assert_eq!(parsed.la_url.as_deref(), Some("http://rm.contoso.com/rightsmanager.asmx"));
        assert_eq!(parsed.ds_id.as_deref(), Some("AH+03juKbUGbHl1V/QIwRA=="));

        let mut header = seeded_header(WrmHeaderVersion::V4_2, &kids, Some(AlgId::AesCtr), true);
        header.la_url = parsed.la_url.clone();
        header.ds_id = parsed.ds_id.clone();
        assert_eq!(header.to_xml().unwrap(), xml);
    }

    #[test]
    fn microsoft_wrmheader_v4_3_aescbc_example_is_byte_exact() {
        let xml = file_without_final_newline("playready/microsoft-docs/wrmheader_4.3_aescbc_example.xml");
        let parsed = parse_wrmheader(xml.as_bytes()).unwrap();
        assert_eq!(parsed.version, WrmHeaderVersion::V4_3);
        assert_eq!(parsed.kids.len(), 2);
        assert!(parsed.kids.iter().all(|k| k.algid == Some(AlgId::AesCbc) && k.checksum.is_none()));
        assert_eq!(parsed.kids[0].kid, decode_kid("PV1LM/VEVk+kEOB8qqcWDg==").unwrap());
        assert_eq!(parsed.kids[1].kid, decode_kid("tuhDoKUN7EyxDPtMRNmhyA==").unwrap());
        assert_eq!(parsed.la_url.as_deref(), Some("http://rm.contoso.com/rightsmanager.asmx"));

        let mut header = seeded_header(WrmHeaderVersion::V4_3, &parsed.kid_list(), Some(AlgId::AesCbc), false);
        header.la_url = parsed.la_url.clone();
        header.ds_id = parsed.ds_id.clone();
        assert_eq!(header.to_xml().unwrap(), xml);
    }

    #[test]
    fn microsoft_wrmheader_v4_3_no_algid_example_is_byte_exact() {
        let xml = file_without_final_newline("playready/microsoft-docs/wrmheader_4.3_no_algid_example.xml");
        let parsed = parse_wrmheader(xml.as_bytes()).unwrap();
        assert_eq!(parsed.version, WrmHeaderVersion::V4_3);
        assert_eq!(parsed.kids.len(), 1);
        assert_eq!(parsed.kids[0].algid, None);
        assert!(parsed.decryptor_setup_on_demand);

        let mut header = seeded_header(WrmHeaderVersion::V4_3, &parsed.kid_list(), None, false);
        header.la_url = parsed.la_url.clone();
        header.ds_id = parsed.ds_id.clone();
        header.decryptor_setup_on_demand = true;
        assert_eq!(header.to_xml().unwrap(), xml);
        // The same header in UTF-16 with a byte-order mark, as some tools store it.
        let mut with_bom = vec![0xff, 0xfe];
        with_bom.extend(utf16(&xml));
        assert_eq!(parse_wrmheader(&with_bom).unwrap(), parsed);
    }

    // --- Shaka Packager 3.4.2 captures ------------------------------------------------------------------------------

    #[test]
    fn shaka_raw_key_psshs_are_byte_exact() {
        let json = vector_json("playready/shaka-packager-3.4.2-capture/raw_key_pssh_outputs.json");
        // Inputs from the recorded command line: --keys key_id=8ba94ade...:key=dbfd6922...
        let kid = kid("8ba94ade6eb9449db44fa5beefaf43b0");
        let key: [u8; 16] = hex::decode("dbfd6922c321c4bb486f4a1c44097ed6").unwrap().try_into().unwrap();
        assert!(
            json["cmd"]
                .as_str()
                .unwrap()
                .contains("key_id=8ba94ade6eb9449db44fa5beefaf43b0:key=dbfd6922c321c4bb486f4a1c44097ed6")
        );

        let pr = &json["pssh"]["9a04f079-9840-4286-ab92-e65be0885f95"];
        let mut header = WrmHeader::new(WrmHeaderVersion::V4_0);
        header.kids = vec![(kid, Some(Zeroizing::new(key)))];
        header.algid = Some(AlgId::AesCtr);
        assert_eq!(header.to_xml().unwrap(), pr["wrmheader"].as_str().unwrap());
        let pro = header.to_playready_object().unwrap();
        assert_eq!(hex::encode(&pro), pr["data_hex"].as_str().unwrap());
        assert_eq!(STANDARD.encode(playready_pssh(&pro, None)), pr["pssh_b64"].as_str().unwrap());
        assert_eq!(pr["version"], 0);
        let parsed = wrmheader_from_playready_object(&pro).unwrap();
        assert_eq!(parsed.kid_list(), vec![kid]);
        assert_eq!(parsed.kids[0].checksum_matches(&key), Some(true));

        let common = &json["pssh"]["1077efec-c0b2-4d02-ace3-3c1e52e2fb4b"];
        assert_eq!(
            STANDARD.encode(pssh_box(&COMMON_SYSTEM_ID, Some(&[kid]), &[])),
            common["pssh_b64"].as_str().unwrap()
        );
    }

    #[test]
    fn shaka_packaging_data_capture_pro_and_mpd_are_byte_exact() {
        let capture = vector_json("playready/shaka-packager-3.4.2-capture/acquire_packaging_data_capture.json");
        let response = capture["mock_response"].as_str().unwrap();
        let pro_b64 = element_texts(response, "Data").pop().unwrap();
        let pro = STANDARD.decode(&pro_b64).unwrap();
        let key_id = element_texts(response, "KeyId").pop().unwrap();
        let kid = Kid::parse_hex(&key_id).unwrap();

        let parsed = wrmheader_from_playready_object(&pro).unwrap();
        assert_eq!(parsed.version, WrmHeaderVersion::V4_0);
        assert_eq!(parsed.kid_list(), vec![kid]);
        assert_eq!(parsed.kids[0].checksum, None);
        assert_eq!(parsed.la_url, None);

        // The same PRO from our builder: 4.0, no checksum, no LA_URL.
        let mut header = WrmHeader::new(WrmHeaderVersion::V4_0);
        header.kids = vec![(kid, None)];
        header.algid = Some(AlgId::AesCtr);
        assert_eq!(header.to_playready_object().unwrap(), pro);

        // What the packager wrote into the MPD from it.
        let mpd = vector_text("playready/shaka-packager-3.4.2-capture/packager_output_with_mock_pr_key.mpd");
        assert_eq!(element_texts(&mpd, "mspr:pro"), vec![pro_b64.clone()]);
        let psshs = element_texts(&mpd, "cenc:pssh");
        assert_eq!(psshs.len(), 2);
        assert_eq!(psshs[0], STANDARD.encode(playready_pssh(&pro, None)));
        assert_eq!(psshs[1], STANDARD.encode(pssh_box(&COMMON_SYSTEM_ID, Some(&[kid]), &[])));
    }

    // --- builder rules ----------------------------------------------------------------------------------------------

    #[test]
    fn builder_refuses_invalid_combinations() {
        use WrmHeaderVersion::*;
        let (a, b) = (kid("00000000000000000000000000000001"), kid("00000000000000000000000000000002"));
        let err = |h: WrmHeader| h.to_xml().unwrap_err();
        assert!(matches!(
            err(seeded_header(V4_0, &[a, b], Some(AlgId::AesCtr), true)),
            PlayReadyError::KidCount { .. }
        ));
        assert!(matches!(err(seeded_header(V4_0, &[], Some(AlgId::AesCtr), true)), PlayReadyError::KidCount { .. }));
        assert!(matches!(
            err(seeded_header(V4_1, &[a, b], Some(AlgId::AesCtr), true)),
            PlayReadyError::KidCount { .. }
        ));
        for v in [V4_0, V4_1, V4_2] {
            assert!(matches!(
                err(seeded_header(v, &[a], Some(AlgId::AesCbc), false)),
                PlayReadyError::AlgIdNotAllowed { .. }
            ));
            assert!(matches!(err(seeded_header(v, &[a], None, false)), PlayReadyError::AlgIdRequired { .. }));
        }
        assert_eq!(err(seeded_header(V4_3, &[a], Some(AlgId::AesCbc), true)), PlayReadyError::ChecksumNotAllowed);
        assert_eq!(err(seeded_header(V4_3, &[a], None, true)), PlayReadyError::ChecksumNotAllowed);
        assert_eq!(err(seeded_header(V4_2, &[a, a], Some(AlgId::AesCtr), true)), PlayReadyError::DuplicateKid(a));
        assert_eq!(err(seeded_header(V4_2, &[], Some(AlgId::AesCtr), false)), PlayReadyError::AlgIdWithoutKid);

        let with = |f: &dyn Fn(&mut WrmHeader)| {
            let mut h = seeded_header(V4_2, &[a], Some(AlgId::AesCtr), true);
            f(&mut h);
            h.to_xml()
        };
        for bad in ["/relative", "ftp://x/", " https://x/", "https://x/\n", "", "https://x/a\u{7}b"] {
            assert!(
                matches!(
                    with(&|h| h.la_url = Some(bad.to_owned())),
                    Err(PlayReadyError::InvalidUrl { field: "LA_URL" })
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(with(&|h| h.lui_url = Some("nope".to_owned())), Err(PlayReadyError::InvalidUrl { .. })));
        assert_eq!(with(&|h| h.ds_id = Some("AAAA".to_owned())), Err(PlayReadyError::InvalidDsId));
        let mut four_oh = seeded_header(V4_0, &[a], Some(AlgId::AesCtr), true);
        four_oh.decryptor_setup_on_demand = true;
        assert_eq!(four_oh.to_xml(), Err(PlayReadyError::DecryptorSetupNotAllowed));
        for bad in [
            "</CUSTOMATTRIBUTES><LA_URL>https://evil/</LA_URL><CUSTOMATTRIBUTES>",
            "<a/>",
            "<a z=\"1\" b=\"2\"></a>",
            "<a b=\"2\" xmlns=\"urn:x\"></a>",
            "<a>",
            "</a>",
            "<!-- c --><a></a>",
            "<![CDATA[x]]>",
            "<a>&nbsp;</a>",
            "   ",
        ] {
            assert!(
                matches!(
                    with(&|h| h.custom_attributes = Some(bad.to_owned())),
                    Err(PlayReadyError::InvalidCustomAttributes(_))
                ),
                "{bad:?}"
            );
        }
        let ok = "<mm:Publisher xmlns:mm=\"urn:x\" a=\"1\" b=\"&amp;\"><mm:Author>E &amp; P</mm:Author></mm:Publisher>";
        assert!(with(&|h| h.custom_attributes = Some(ok.to_owned())).is_ok());
    }

    #[test]
    fn builder_escapes_text_and_redacts_keys() {
        let a = kid("00000000000000000000000000000001");
        let mut header = seeded_header(WrmHeaderVersion::V4_3, &[a], Some(AlgId::AesCtr), true);
        header.la_url = Some("https://lic.example/pr?a=1&b=<2>\"'".to_owned());
        let xml = header.to_xml().unwrap();
        assert!(xml.contains("<LA_URL>https://lic.example/pr?a=1&amp;b=&lt;2&gt;\"'</LA_URL>"), "{xml}");
        assert_eq!(parse_wrmheader_str(&xml).unwrap().la_url, header.la_url);
        let debug = format!("{header:?}");
        let key_hex = hex::encode(seed().derive(&a));
        assert!(!debug.contains(&key_hex) && debug.contains("+key"), "{debug}");
    }

    #[test]
    fn version_forms_round_trip() {
        use WrmHeaderVersion::*;
        let kids = [kid("11111111222233334444555555555555"), kid("66666666777788889999aaaaaaaaaaaa")];
        let cases: Vec<(WrmHeaderVersion, &[Kid], Option<AlgId>, bool)> = vec![
            (V4_0, &kids[..1], Some(AlgId::AesCtr), true),
            (V4_0, &kids[..1], Some(AlgId::AesCtr), false),
            (V4_1, &kids[..1], Some(AlgId::AesCtr), true),
            (V4_1, &[], None, false),
            (V4_2, &kids, Some(AlgId::AesCtr), true),
            (V4_2, &[], None, false),
            (V4_3, &kids, Some(AlgId::AesCbc), false),
            (V4_3, &kids, None, false),
            (V4_3, &kids, Some(AlgId::AesCtr), true),
        ];
        for (version, kids, algid, checksum) in cases {
            let mut header = seeded_header(version, kids, algid, checksum);
            header.la_url = Some("https://license.example/pr".to_owned());
            header.lui_url = Some("http://ui.example/".to_owned());
            header.ds_id = Some("AH+03juKbUGbHl1V/QIwRA==".to_owned());
            header.custom_attributes = Some("<ContentId a=\"x\">movie-1</ContentId>".to_owned());
            header.decryptor_setup_on_demand = version != V4_0;
            let pro = header.to_playready_object().unwrap();
            let parsed = wrmheader_from_playready_object(&pro).unwrap();
            assert_parsed_matches(&header, &parsed);
            assert_eq!(parse_wrmheader(header.to_xml().unwrap().as_bytes()).unwrap(), parsed);
        }
    }

    fn assert_parsed_matches(header: &WrmHeader, parsed: &ParsedWrmHeader) {
        assert_eq!(parsed.version, header.version);
        assert_eq!(parsed.kids.len(), header.kids.len());
        for ((kid, key), p) in header.kids.iter().zip(&parsed.kids) {
            assert_eq!(p.kid, *kid);
            assert_eq!(p.algid, header.algid);
            assert_eq!(p.checksum, key.as_ref().map(|k| aesctr_checksum_bytes(k, kid)));
        }
        assert_eq!(parsed.la_url, header.la_url);
        assert_eq!(parsed.lui_url, header.lui_url);
        assert_eq!(parsed.ds_id, header.ds_id);
        assert_eq!(parsed.custom_attributes, header.custom_attributes);
        assert_eq!(parsed.decryptor_setup_on_demand, header.decryptor_setup_on_demand);
    }

    // --- parser strictness ------------------------------------------------------------------------------------------

    fn wrap(version: &str, data: &str) -> String {
        format!("<WRMHEADER xmlns=\"{WRMHEADER_NAMESPACE}\" version=\"{version}\"><DATA>{data}</DATA></WRMHEADER>")
    }

    const K1: &str = "3kqpi7lunUS0T6W+769DsA==";
    const K2: &str = "AAAAEAAQABAQABAAAAAAAQ==";

    #[test]
    fn parser_rejects_ambiguous_or_invalid_headers() {
        let kid40 = format!("<PROTECTINFO><KEYLEN>16</KEYLEN><ALGID>AESCTR</ALGID></PROTECTINFO><KID>{K1}</KID>");
        let cases: Vec<(String, PlayReadyError)> = vec![
            (wrap("4.0.0.0", &format!("{kid40}<KID>{K2}</KID>")), PlayReadyError::DuplicateElement("KID")),
            (
                wrap("4.0.0.0", &format!("{kid40}<LA_URL>https://a/</LA_URL><LA_URL>https://b/</LA_URL>")),
                PlayReadyError::DuplicateElement("LA_URL"),
            ),
            (
                wrap("4.0.0.0", "<PROTECTINFO><KEYLEN>16</KEYLEN><ALGID>AESCTR</ALGID></PROTECTINFO>"),
                PlayReadyError::Incomplete40,
            ),
            (
                wrap(
                    "4.0.0.0",
                    &format!("<PROTECTINFO><KEYLEN>7</KEYLEN><ALGID>AESCTR</ALGID></PROTECTINFO><KID>{K1}</KID>"),
                ),
                PlayReadyError::InvalidKeyLen("7".to_owned()),
            ),
            (
                wrap(
                    "4.0.0.0",
                    &format!("<PROTECTINFO><KEYLEN>16</KEYLEN><ALGID>COCKTAIL</ALGID></PROTECTINFO><KID>{K1}</KID>"),
                ),
                PlayReadyError::UnsupportedAlgId("COCKTAIL".to_owned()),
            ),
            (
                wrap("4.0.0.0", &format!("{kid40}<DECRYPTORSETUP>ONDEMAND</DECRYPTORSETUP>")),
                PlayReadyError::MisplacedElement("DECRYPTORSETUP".to_owned()),
            ),
            (
                wrap(
                    "4.1.0.0",
                    &format!(
                        "<PROTECTINFO><KID ALGID=\"AESCTR\" VALUE=\"{K1}\"></KID><KID ALGID=\"AESCTR\" VALUE=\"{K2}\"></KID></PROTECTINFO>"
                    ),
                ),
                PlayReadyError::DuplicateElement("KID"),
            ),
            (
                wrap("4.1.0.0", &format!("<PROTECTINFO><KID VALUE=\"{K1}\"></KID></PROTECTINFO>")),
                PlayReadyError::AlgIdRequired { version: "4.1.0.0" },
            ),
            (
                wrap(
                    "4.2.0.0",
                    &format!(
                        "<PROTECTINFO><KIDS><KID ALGID=\"AESCTR\" VALUE=\"{K1}\"></KID></KIDS><KID ALGID=\"AESCTR\" VALUE=\"{K2}\"></KID></PROTECTINFO>"
                    ),
                ),
                PlayReadyError::MisplacedElement("KID".to_owned()),
            ),
            (
                wrap(
                    "4.2.0.0",
                    &format!(
                        "<PROTECTINFO><KIDS><KID ALGID=\"AESCTR\" VALUE=\"{K1}\"></KID></KIDS></PROTECTINFO><X><KID VALUE=\"{K2}\"></KID></X>"
                    ),
                ),
                PlayReadyError::MisplacedElement("KID".to_owned()),
            ),
            (
                wrap(
                    "4.2.0.0",
                    &format!("<PROTECTINFO><KIDS><KID ALGID=\"AESCBC\" VALUE=\"{K1}\"></KID></KIDS></PROTECTINFO>"),
                ),
                PlayReadyError::AlgIdNotAllowed { version: "4.2.0.0", algid: "AESCBC" },
            ),
            (wrap("4.2.0.0", "<PROTECTINFO><KIDS></KIDS></PROTECTINFO>"), PlayReadyError::EmptyKids),
            (
                wrap(
                    "4.2.0.0",
                    &format!(
                        "<PROTECTINFO><KIDS><KID ALGID=\"AESCTR\" VALUE=\"{K1}\"></KID><KID ALGID=\"AESCTR\" VALUE=\"{K1}\"></KID></KIDS></PROTECTINFO>"
                    ),
                ),
                PlayReadyError::DuplicateKid(kid("8ba94ade6eb9449db44fa5beefaf43b0")),
            ),
            (
                wrap(
                    "4.3.0.0",
                    &format!(
                        "<PROTECTINFO><KIDS><KID ALGID=\"AESCBC\" VALUE=\"{K1}\"></KID><KID VALUE=\"{K2}\"></KID></KIDS></PROTECTINFO>"
                    ),
                ),
                PlayReadyError::MixedAlgIds,
            ),
            (
                wrap(
                    "4.3.0.0",
                    &format!(
                        "<PROTECTINFO><KIDS><KID ALGID=\"AESCBC\" CHECKSUM=\"Me48z71nuqY=\" VALUE=\"{K1}\"></KID></KIDS></PROTECTINFO>"
                    ),
                ),
                PlayReadyError::ChecksumNotAllowed,
            ),
            (
                wrap("4.3.0.0", "<PROTECTINFO><KIDS><KID ALGID=\"AESCTR\" VALUE=\"AAAA\"></KID></KIDS></PROTECTINFO>"),
                PlayReadyError::InvalidKid("AAAA".to_owned()),
            ),
            (
                wrap("4.3.0.0", "<PROTECTINFO><KIDS><KID ALGID=\"AESCTR\"></KID></KIDS></PROTECTINFO>"),
                PlayReadyError::MissingKidValue,
            ),
            (
                wrap("4.3.0.0", "<DECRYPTORSETUP>LATER</DECRYPTORSETUP>"),
                PlayReadyError::InvalidDecryptorSetup("LATER".to_owned()),
            ),
            (wrap("4.3.0.0", "<LA_URL></LA_URL>"), PlayReadyError::EmptyElement("LA_URL")),
            (
                wrap("4.3.0.0", "<LA_URL>https://a/<b>x</b></LA_URL>"),
                PlayReadyError::UnexpectedContent("element b inside a value".to_owned()),
            ),
            (wrap("4.3.0.0", "stray"), PlayReadyError::UnexpectedContent("text outside a value element".to_owned())),
            (wrap("5.0.0.0", ""), PlayReadyError::UnsupportedVersion("5.0.0.0".to_owned())),
            ("<WRMHEADER><DATA></DATA></WRMHEADER>".to_owned(), PlayReadyError::MissingVersion),
            (
                "<WRMHEADER xmlns=\"urn:other\" version=\"4.3.0.0\"></WRMHEADER>".to_owned(),
                PlayReadyError::WrongNamespace("urn:other".to_owned()),
            ),
            ("<HEADER version=\"4.3.0.0\"></HEADER>".to_owned(), PlayReadyError::NotAWrmHeader),
            (
                format!("{}<WRMHEADER version=\"4.3.0.0\"></WRMHEADER>", wrap("4.3.0.0", "")),
                PlayReadyError::UnexpectedContent("content after WRMHEADER".to_owned()),
            ),
            ("".to_owned(), PlayReadyError::NotAWrmHeader),
        ];
        for (xml, expected) in cases {
            assert_eq!(parse_wrmheader_str(&xml), Err(expected), "{xml}");
        }
        for broken in [
            wrap("4.3.0.0", "<LA_URL>&bogus;</LA_URL>"),
            wrap("4.3.0.0", "<LA_URL>x</LA_URLX>"),
            "<!DOCTYPE x [<!ENTITY a \"b\">]><WRMHEADER version=\"4.3.0.0\"></WRMHEADER>".to_owned(),
            "<WRMHEADER version=\"4.3.0.0\"><DATA>".to_owned(),
            "<WRMHEADER version=\"4.3.0.0\" version=\"4.0.0.0\"></WRMHEADER>".to_owned(),
            wrap("4.3.0.0", "<LA_URL>a\u{1}b</LA_URL>"),
        ] {
            assert!(parse_wrmheader_str(&broken).is_err(), "{broken}");
        }
    }

    #[test]
    fn parser_tolerates_layout_unknown_elements_and_entities() {
        let xml = format!(
            "<?xml version=\"1.0\"?>\n<WRMHEADER xmlns=\"{WRMHEADER_NAMESPACE}\" version=\"4.2.0.0\">\n  <DATA>\n    \
             <PROTECTINFO LICENSEREQUESTED=\"true\">\n      <KIDS>\n        <KID ALGID=\"AESCTR\" VALUE=\" {K1} \" X=\"y\"/>\n      \
             </KIDS>\n    </PROTECTINFO>\n    <LA_URL> https://a.example/x?a=1&amp;b=&#50; </LA_URL>\n    \
             <FUTURE_TAG>anything <Nested>at all</Nested></FUTURE_TAG>\n    <!-- note -->\n  </DATA>\n</WRMHEADER>\n"
        );
        let parsed = parse_wrmheader_str(&xml).unwrap();
        assert_eq!(parsed.kid_list(), vec![kid("8ba94ade6eb9449db44fa5beefaf43b0")]);
        assert_eq!(parsed.la_url.as_deref(), Some("https://a.example/x?a=1&b=2"));
        assert_eq!(parse_wrmheader(&utf16(&xml)).unwrap(), parsed);
    }

    #[test]
    fn encoding_detection_is_strict() {
        assert_eq!(parse_wrmheader(&[b'<', 0, b'W']), Err(PlayReadyError::OddUtf16Length));
        assert_eq!(parse_wrmheader(&[0xff, 0xfe, 0x00, 0xd8]), Err(PlayReadyError::InvalidEncoding));
        assert_eq!(parse_wrmheader(&[b'<', 0xff]), Err(PlayReadyError::InvalidEncoding));
        let big = vec![b' '; MAX_WRMHEADER_INPUT + 1];
        assert!(matches!(parse_wrmheader(&big), Err(PlayReadyError::TooLarge { .. })));
    }

    // --- PlayReady Object -------------------------------------------------------------------------------------------

    #[test]
    fn playready_object_bounds() {
        let pro = pycpix_header(true).to_playready_object().unwrap();
        assert_eq!(parse_playready_object(&pro[..3]), Err(PlayReadyError::Truncated));
        assert_eq!(parse_playready_object(&pro[..5]), Err(PlayReadyError::LengthMismatch { declared: 654, actual: 5 }));
        assert_eq!(parse_playready_object(&[5, 0, 0, 0, 1]), Err(PlayReadyError::Truncated));
        let mut longer = pro.clone();
        longer.push(0);
        assert!(matches!(parse_playready_object(&longer), Err(PlayReadyError::LengthMismatch { .. })));
        let mut short_record = pro.clone();
        short_record.truncate(pro.len() - 2);
        let len = u32::try_from(short_record.len()).unwrap();
        short_record[..4].copy_from_slice(&len.to_le_bytes());
        assert_eq!(parse_playready_object(&short_record), Err(PlayReadyError::Truncated));
        let mut trailing = pro.clone();
        trailing.extend_from_slice(&[1, 2, 3]);
        let len = u32::try_from(trailing.len()).unwrap();
        trailing[..4].copy_from_slice(&len.to_le_bytes());
        assert_eq!(parse_playready_object(&trailing), Err(PlayReadyError::TrailingBytes(3)));

        // Two header records, or none, cannot be read unambiguously.
        let value = pycpix_header(true).to_utf16le().unwrap();
        let mut two = Vec::new();
        let len = u16::try_from(value.len()).unwrap();
        two.extend_from_slice(&(6 + 2 * (4 + u32::from(len))).to_le_bytes());
        two.extend_from_slice(&2u16.to_le_bytes());
        for _ in 0..2 {
            two.extend_from_slice(&1u16.to_le_bytes());
            two.extend_from_slice(&len.to_le_bytes());
            two.extend_from_slice(&value);
        }
        assert_eq!(parse_playready_object(&two).unwrap().len(), 2);
        assert_eq!(wrmheader_from_playready_object(&two), Err(PlayReadyError::HeaderRecordCount(2)));
        let empty = [6, 0, 0, 0, 0, 0];
        assert_eq!(parse_playready_object(&empty).unwrap(), vec![]);
        assert_eq!(wrmheader_from_playready_object(&empty), Err(PlayReadyError::HeaderRecordCount(0)));

        assert_eq!(playready_object(&[0; 3]), Err(PlayReadyError::OddUtf16Length));
        assert!(matches!(playready_object(&vec![0; 65_536]), Err(PlayReadyError::TooLarge { .. })));
        assert_eq!(playready_object(&vec![0; 65_534]).unwrap().len(), 65_544);
    }

    // --- property tests ---------------------------------------------------------------------------------------------

    fn arb_url() -> impl Strategy<Value = String> {
        ("(http|https)", "[a-z][a-z0-9]{0,11}(\\.[a-z]{2,6}){0,2}", "(/[a-zA-Z0-9&<>\"'=?%._~é中-]{0,12}){0,4}")
            .prop_map(|(scheme, host, path)| format!("{scheme}://{host}{path}"))
    }

    fn arb_header() -> impl Strategy<Value = WrmHeader> {
        (
            0usize..4,
            prop::collection::btree_set(any::<[u8; 16]>(), 0..6),
            any::<bool>(),
            prop::option::of(any::<bool>()),
            prop::option::of(arb_url()),
            prop::option::of(arb_url()),
            prop::option::of(any::<[u8; 16]>()),
            prop::option::of("[A-Za-z0-9 &<>'\"]{1,20}"),
            any::<bool>(),
        )
            .prop_map(|(v, kids, with_keys, cbc, la_url, lui_url, ds_id, custom, on_demand)| {
                let version = WrmHeaderVersion::EVERY[v];
                let mut kids: Vec<Kid> = kids.into_iter().map(Kid).collect();
                match version {
                    WrmHeaderVersion::V4_0 => kids.resize(1, Kid([9; 16])),
                    WrmHeaderVersion::V4_1 => kids.truncate(1),
                    _ => {}
                }
                let algid = match (version, cbc) {
                    _ if kids.is_empty() => None,
                    (WrmHeaderVersion::V4_3, Some(true)) => Some(AlgId::AesCbc),
                    (WrmHeaderVersion::V4_3, None) => None,
                    _ => Some(AlgId::AesCtr),
                };
                let mut header = WrmHeader::new(version);
                header.kids = kids
                    .iter()
                    .map(|k| (*k, (with_keys && algid == Some(AlgId::AesCtr)).then(|| Zeroizing::new(k.0))))
                    .collect();
                header.algid = algid;
                header.la_url = la_url;
                header.lui_url = lui_url;
                header.ds_id = ds_id.map(|d| STANDARD.encode(d));
                header.custom_attributes =
                    custom.map(|t| format!("<Tag b=\"1\">{}</Tag>", quick_xml::escape::partial_escape(t.as_str())));
                header.decryptor_setup_on_demand = on_demand && version != WrmHeaderVersion::V4_0;
                header
            })
    }

    proptest! {
        #[test]
        fn build_then_parse_round_trips(header in arb_header()) {
            let pro = header.to_playready_object().unwrap();
            let parsed = wrmheader_from_playready_object(&pro).unwrap();
            assert_parsed_matches(&header, &parsed);
            let v1 = playready_pssh(&pro, Some(&parsed.kid_list()));
            prop_assert_eq!(v1.len(), 32 + 4 + 16 * parsed.kids.len() + pro.len());
        }

        #[test]
        fn parse_playready_object_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_playready_object(&bytes);
            let _ = wrmheader_from_playready_object(&bytes);
        }

        #[test]
        fn parse_playready_object_never_panics_on_plausible_prefixes(
            count in any::<u16>(), records in prop::collection::vec((any::<u16>(), any::<u16>(), prop::collection::vec(any::<u8>(), 0..40)), 0..4)
        ) {
            let mut bytes = Vec::new();
            bytes.extend_from_slice(&count.to_le_bytes());
            for (t, l, v) in records {
                bytes.extend_from_slice(&t.to_le_bytes());
                bytes.extend_from_slice(&l.to_le_bytes());
                bytes.extend_from_slice(&v);
            }
            let mut pro = u32::try_from(bytes.len() + 4).unwrap().to_le_bytes().to_vec();
            pro.extend_from_slice(&bytes);
            let _ = parse_playready_object(&pro);
        }

        #[test]
        fn parse_wrmheader_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
            let _ = parse_wrmheader(&bytes);
        }

        #[test]
        fn parse_wrmheader_never_panics_on_mutated_headers(
            header in arb_header(), at in any::<prop::sample::Index>(), len in 0usize..40, insert in ".{0,30}"
        ) {
            let xml = header.to_xml().unwrap();
            let mut chars: Vec<char> = xml.chars().collect();
            let start = at.index(chars.len() + 1);
            let end = (start + len).min(chars.len());
            chars.splice(start..end, insert.chars());
            let mutated: String = chars.into_iter().collect();
            let _ = parse_wrmheader_str(&mutated);
            let _ = parse_wrmheader(&utf16(&mutated));
        }
    }
}
