//! The CPIX document as Clavis reads and answers it. Elements a key server has no use for (signatures, update
//! history) are not kept: the answer is written anew from this model, so it never echoes a signature that no longer
//! matches.

use clavis_core::ids::Kid;
use uuid::Uuid;
use zeroize::Zeroizing;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Document {
    /// `CPIX@id` (SPEKE v1 puts the content id here).
    pub id: Option<String>,
    /// `CPIX@contentId` (SPEKE v2).
    pub content_id: Option<String>,
    /// `CPIX@version`.
    pub version: Option<String>,
    /// `CPIX@name`.
    pub name: Option<String>,
    pub recipients: Vec<Recipient>,
    pub content_keys: Vec<ContentKey>,
    pub drm_systems: Vec<DrmSystem>,
    pub periods: Vec<KeyPeriod>,
    pub usage_rules: Vec<UsageRule>,
}

/// One `DeliveryData`: a recipient's certificate and, in an answer, the keys wrapped for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    pub id: Option<String>,
    /// DER of `DeliveryKey/ds:X509Data/ds:X509Certificate`.
    pub certificate: Vec<u8>,
    /// `DocumentKey` and `MACMethod/Key`, each RSA-OAEP-wrapped to the certificate's key.
    pub wrapped: Option<WrappedKeys>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedKeys {
    pub document_key: Vec<u8>,
    pub mac_key: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentKey {
    pub kid: Kid,
    pub id: Option<String>,
    /// `explicitIV` (base64 of 16 bytes; a UUID-formatted value, which some tools write, is read as its 16 bytes).
    pub explicit_iv: Option<[u8; 16]>,
    /// `commonEncryptionScheme`: cenc, cbc1, cens or cbcs.
    pub scheme: Option<String>,
    pub value: Option<KeyValue>,
}

#[derive(Clone, PartialEq, Eq)]
pub enum KeyValue {
    Plain(Zeroizing<[u8; 16]>),
    /// IV | AES-256-CBC ciphertext, and HMAC-SHA512 over it.
    Encrypted {
        cipher: Vec<u8>,
        mac: Option<Vec<u8>>,
    },
}

impl std::fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyValue::Plain(_) => f.write_str("Plain([REDACTED])"),
            KeyValue::Encrypted { cipher, mac } => {
                write!(f, "Encrypted({} bytes, mac: {})", cipher.len(), mac.is_some())
            }
        }
    }
}

/// The signalling elements of a `DRMSystem`. The text is the element's (base64) content; a request names an element
/// empty to ask for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldKind {
    Pssh,
    ContentProtectionData,
    UriExtXKey,
    HlsSignalingData {
        playlist: Option<String>,
    },
    SmoothStreamingProtectionHeaderData,
    /// SPEKE v1 `speke:KeyFormat`.
    KeyFormat,
    /// SPEKE v1 `speke:KeyFormatVersions`.
    KeyFormatVersions,
    /// SPEKE v1 `speke:ProtectionHeader`.
    ProtectionHeader,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub kind: FieldKind,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrmSystem {
    pub kid: Kid,
    pub system_id: Uuid,
    pub id: Option<String>,
    pub fields: Vec<Field>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPeriod {
    pub id: String,
    pub index: Option<u64>,
    pub start: Option<String>,
    pub end: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterKind {
    KeyPeriod,
    Label,
    Video,
    Audio,
    Bitrate,
}

impl FilterKind {
    pub fn element(&self) -> &'static str {
        match self {
            FilterKind::KeyPeriod => "KeyPeriodFilter",
            FilterKind::Label => "LabelFilter",
            FilterKind::Video => "VideoFilter",
            FilterKind::Audio => "AudioFilter",
            FilterKind::Bitrate => "BitrateFilter",
        }
    }
}

/// A filter of a usage rule with its (unqualified) attributes in document order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub kind: FilterKind,
    pub attrs: Vec<(String, String)>,
}

impl Filter {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageRule {
    pub kid: Kid,
    pub intended_track_type: Option<String>,
    pub filters: Vec<Filter>,
}
