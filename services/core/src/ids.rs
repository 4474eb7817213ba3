//! Domain newtypes shared by the services: parse once at the edge, then trust the type.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{ClavisError, ErrorCode};

/// A tenant's internal id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(pub uuid::Uuid);

impl TenantId {
    pub fn new() -> TenantId {
        TenantId(uuid::Uuid::new_v4())
    }
}

impl Default for TenantId {
    fn default() -> Self {
        TenantId::new()
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for TenantId {
    type Err = ClavisError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(TenantId).map_err(|_| ClavisError::invalid("tenant_id", "must be a UUID"))
    }
}

/// A tenant's public site id: four upper-case ASCII letters, as PallyCon uses, so migrating tenants keep theirs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SiteId([u8; 4]);

impl SiteId {
    pub fn parse(s: &str) -> Result<SiteId, ClavisError> {
        let bytes = s.as_bytes();
        if bytes.len() != 4 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(ClavisError::invalid("site_id", "must be four upper-case letters A-Z"));
        }
        Ok(SiteId([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// A site id from four random letters (26^4 = 456,976 ids; callers retry on collision).
    pub fn random() -> Result<SiteId, ClavisError> {
        let raw = crate::crypto::random_array::<4>()?;
        Ok(SiteId(raw.map(|b| b'A' + b % 26)))
    }

    pub fn as_str(&self) -> &str {
        // Only A-Z ever gets in, so this is always valid UTF-8.
        std::str::from_utf8(&self.0).unwrap_or("????")
    }
}

impl fmt::Display for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SiteId({})", self.as_str())
    }
}

impl Serialize for SiteId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A tenant's identifier for a piece of content ("movie-1"). 1 to 200 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ContentId(String);

pub const CONTENT_ID_MAX: usize = 200;

impl ContentId {
    pub fn parse(s: &str) -> Result<ContentId, ClavisError> {
        Self::parse_field(s, "content_id")
    }

    pub fn parse_field(s: &str, field: &'static str) -> Result<ContentId, ClavisError> {
        if s.is_empty() || s.chars().count() > CONTENT_ID_MAX {
            return Err(ClavisError::invalid(field, format!("must be 1 to {CONTENT_ID_MAX} characters")));
        }
        if s.chars().any(char::is_control) {
            return Err(ClavisError::invalid(field, "must not contain control characters"));
        }
        Ok(ContentId(s.to_owned()))
    }

    /// The content id that bytes from a DRM message stand for (the FairPlay asset id, the Widevine key-server
    /// `content_id`): their UTF-8 text when that is printable, `0x<hex>` otherwise (the contract's rule).
    pub fn from_wire_bytes(bytes: &[u8]) -> Result<ContentId, ClavisError> {
        match std::str::from_utf8(bytes) {
            Ok(text) if !text.is_empty() && !text.chars().any(char::is_control) => ContentId::parse(text),
            _ => ContentId::parse(&format!("0x{}", hex::encode(bytes))),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ContentId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ContentId::parse(&s).map_err(|e| serde::de::Error::custom(e.detail))
    }
}

/// The tenant's identifier for a viewer. 1 to 200 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    pub fn parse(s: &str) -> Result<UserId, ClavisError> {
        if s.is_empty() || s.chars().count() > 200 || s.chars().any(char::is_control) {
            return Err(ClavisError::invalid("user_id", "must be 1 to 200 characters without control characters"));
        }
        Ok(UserId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        UserId::parse(&s).map_err(|e| serde::de::Error::custom(e.detail))
    }
}

/// A 16-byte key id. Canonical text form: 32 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kid(pub [u8; 16]);

impl Kid {
    /// Parse 32 hex digits, or a UUID with dashes (how many tools print KIDs).
    pub fn parse_hex(s: &str) -> Result<Kid, ClavisError> {
        let cleaned: String = if s.len() == 36 { s.chars().filter(|c| *c != '-').collect() } else { s.to_owned() };
        Ok(Kid(parse_hex16(&cleaned, "kid")?))
    }

    /// Parse the base64url (no padding) form used by EME ClearKey; padded and standard base64 are accepted too.
    pub fn parse_base64url(s: &str) -> Option<Kid> {
        let trimmed = s.trim_end_matches('=');
        let bytes = URL_SAFE_NO_PAD.decode(trimmed).ok().or_else(|| STANDARD.decode(s).ok())?;
        <[u8; 16]>::try_from(bytes.as_slice()).ok().map(Kid)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The UUID form (8-4-4-4-12), as CPIX and DASH `cenc:default_KID` write it.
    pub fn to_uuid_string(&self) -> String {
        uuid::Uuid::from_bytes(self.0).hyphenated().to_string()
    }
}

impl fmt::Display for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kid({})", self.to_hex())
    }
}

impl Serialize for Kid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

/// Parse exactly 32 hex digits into 16 bytes, naming `field` on failure.
pub fn parse_hex16(s: &str, field: &'static str) -> Result<[u8; 16], ClavisError> {
    let mut out = [0u8; 16];
    if s.len() != 32 || hex::decode_to_slice(s, &mut out).is_err() {
        return Err(ClavisError::invalid(field, "must be 32 hexadecimal digits"));
    }
    Ok(out)
}

/// The track types a key can be made for (PallyCon's and SPEKE's vocabulary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum TrackType {
    All,
    Sd,
    Hd,
    Uhd1,
    Uhd2,
    Audio,
}

impl TrackType {
    pub const EVERY: [TrackType; 6] =
        [TrackType::All, TrackType::Sd, TrackType::Hd, TrackType::Uhd1, TrackType::Uhd2, TrackType::Audio];

    pub fn as_str(self) -> &'static str {
        match self {
            TrackType::All => "ALL",
            TrackType::Sd => "SD",
            TrackType::Hd => "HD",
            TrackType::Uhd1 => "UHD1",
            TrackType::Uhd2 => "UHD2",
            TrackType::Audio => "AUDIO",
        }
    }
}

impl FromStr for TrackType {
    type Err = ClavisError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TrackType::EVERY
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ClavisError::invalid("track_type", "must be one of ALL, SD, HD, UHD1, UHD2, AUDIO"))
    }
}

impl fmt::Display for TrackType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Map a parse error onto the catalog code of the caller's domain (tokens use 4xxx, say).
pub fn recode(err: ClavisError, code: ErrorCode) -> ClavisError {
    ClavisError { code, ..err }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn site_ids_are_four_capitals() {
        assert!(SiteId::parse("ABCD").is_ok());
        for bad in ["abcd", "ABC", "ABCDE", "AB1D", "ÄBCD"] {
            assert!(SiteId::parse(bad).is_err(), "{bad}");
        }
        let random = SiteId::random().unwrap();
        assert!(SiteId::parse(random.as_str()).is_ok());
    }

    #[test]
    fn kid_forms_agree() {
        let kid = Kid::parse_hex("2f05477fc24bb4faefd86517156daffc").unwrap();
        assert_eq!(kid.to_base64url(), "LwVHf8JLtPrv2GUXFW2v_A");
        assert_eq!(Kid::parse_base64url("LwVHf8JLtPrv2GUXFW2v_A"), Some(kid));
        assert_eq!(Kid::parse_base64url("LwVHf8JLtPrv2GUXFW2v/A=="), Some(kid));
        assert_eq!(Kid::parse_hex(&kid.to_uuid_string()).unwrap(), kid);
        assert!(Kid::parse_hex("2f05477fc24bb4faefd86517156daff").is_err());
        assert!(Kid::parse_base64url("AAAA").is_none());
    }

    #[test]
    fn drm_names_agree_in_text_and_json() {
        for drm in Drm::EVERY {
            assert_eq!(drm.as_str().parse::<Drm>().unwrap(), drm);
            assert_eq!(serde_json::to_value(drm).unwrap(), drm.as_str());
        }
        assert_eq!("HLS-AES".parse::<Drm>().unwrap(), Drm::HlsAes);
    }

    #[test]
    fn wire_content_ids() {
        assert_eq!(ContentId::from_wire_bytes(b"movie-1").unwrap().as_str(), "movie-1");
        assert_eq!(ContentId::from_wire_bytes(&[0, 1, 0xff]).unwrap().as_str(), "0x0001ff");
    }

    proptest! {
        #[test]
        fn content_id_parse_never_panics(s in ".{0,300}") {
            let _ = ContentId::parse(&s);
        }

        #[test]
        fn kid_hex_round_trips(bytes in any::<[u8; 16]>()) {
            let kid = Kid(bytes);
            prop_assert_eq!(Kid::parse_hex(&kid.to_hex()).unwrap(), kid);
            prop_assert_eq!(Kid::parse_base64url(&kid.to_base64url()), Some(kid));
        }
    }
}

/// The DRM systems Clavis issues licenses for. HLS AES-128 is not a DRM, but its key delivery goes through the same
/// license corridor (token, rules, log), so it is one of them here: `hls-aes` in tokens, the log and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Drm {
    ClearKey,
    FairPlay,
    Widevine,
    PlayReady,
    /// HLS `METHOD=AES-128`: the raw key from `/license/hls-aes/...`.
    #[serde(rename = "hls-aes")]
    HlsAes,
}

impl Drm {
    pub const EVERY: [Drm; 5] = [Drm::ClearKey, Drm::FairPlay, Drm::Widevine, Drm::PlayReady, Drm::HlsAes];

    pub fn as_str(self) -> &'static str {
        match self {
            Drm::ClearKey => "clearkey",
            Drm::FairPlay => "fairplay",
            Drm::Widevine => "widevine",
            Drm::PlayReady => "playready",
            Drm::HlsAes => "hls-aes",
        }
    }
}

impl FromStr for Drm {
    type Err = ClavisError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Drm::EVERY.into_iter().find(|d| d.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| {
            ClavisError::invalid("drm", "must be one of clearkey, fairplay, widevine, playready, hls-aes")
        })
    }
}

impl fmt::Display for Drm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
