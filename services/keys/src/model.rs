//! Content keys as the services use them, and the key request parsed into a plan.

use std::collections::HashSet;
use std::fmt;

use clavis_core::ids::{ContentId, Kid, SiteId, TrackType, parse_hex16};
use clavis_core::{ClavisError, Result};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::signalling::{LicenseUrls, Scheme, SignallingError, SignallingView, SystemData};

/// How a key was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// 16 bytes from the operating system's CSPRNG.
    Random,
    /// Derived from the tenant's PlayReady key seed and the KID.
    KeySeed,
    /// Given by the tenant.
    Imported,
}

impl KeySource {
    pub fn as_str(self) -> &'static str {
        match self {
            KeySource::Random => "random",
            KeySource::KeySeed => "key_seed",
            KeySource::Imported => "imported",
        }
    }

    pub(crate) fn parse_stored(s: &str) -> KeySource {
        match s {
            "key_seed" => KeySource::KeySeed,
            "imported" => KeySource::Imported,
            _ => KeySource::Random,
        }
    }
}

/// One decrypted content key. Its `Debug` never prints the key; the key bytes are wiped when dropped.
#[derive(Clone)]
pub struct ContentKey {
    pub track_type: TrackType,
    pub kid: Kid,
    pub key: Zeroizing<[u8; 16]>,
    /// The IV FairPlay and HLS AES-128 deliver with the key.
    pub iv: [u8; 16],
    pub source: KeySource,
    /// The crypto period (live key rotation) the key is for; `None` for a key that does not rotate.
    pub period: Option<u32>,
}

impl fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContentKey")
            .field("track_type", &self.track_type)
            .field("kid", &self.kid)
            .field("key", &"[REDACTED]")
            .field("source", &self.source)
            .field("period", &self.period)
            .finish()
    }
}

/// All keys of one content, however they were made.
#[derive(Clone, Debug)]
pub struct ContentKeySet {
    pub content_id: ContentId,
    pub keys: Vec<ContentKey>,
    /// The content's own policy, applied between the tenant default and the token's.
    pub policy: Option<clavis_core::policy::Policy>,
}

impl ContentKeySet {
    pub fn find(&self, kid: &Kid) -> Option<&ContentKey> {
        self.keys.iter().find(|k| &k.kid == kid)
    }

    pub fn kids(&self) -> Vec<Kid> {
        self.keys.iter().map(|k| k.kid).collect()
    }
}

/// Body of `POST /api/v1/keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeysRequest {
    /// The tenant's id for the content.
    #[schema(example = "movie-1")]
    pub content_id: String,
    /// Track types to make one key each for (default `["ALL"]`). Not with `keys`.
    #[serde(default)]
    pub tracks: Option<Vec<String>>,
    /// How to make the keys (default `random`). Not with `keys`.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "random")]
    pub source: Option<String>,
    /// Keys to import instead of making them. Only for content that has no keys yet.
    #[serde(default)]
    pub keys: Option<Vec<ImportedKeyBody>>,
    /// A crypto period of live key rotation: make (or read) the keys of that period, one per track. Not with `keys`.
    #[serde(default)]
    pub period: Option<crate::periods::PeriodBody>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportedKeyBody {
    #[serde(default)]
    #[schema(example = "ALL")]
    pub track_type: Option<String>,
    /// 32 hex digits (a UUID with dashes is accepted too).
    pub kid: String,
    /// 32 hex digits.
    pub key: String,
    /// 32 hex digits; a random IV is made when absent.
    #[serde(default)]
    pub iv: Option<String>,
}

/// Most keys one request may make or import.
pub const MAX_KEYS_PER_REQUEST: usize = 64;

/// What a key request asks for, validated.
#[derive(Debug)]
pub enum KeyPlan {
    Generate { source: KeySource, tracks: Vec<TrackType> },
    Import(Vec<ImportedKey>),
}

pub struct ImportedKey {
    pub track_type: TrackType,
    pub kid: Kid,
    pub key: Zeroizing<[u8; 16]>,
    pub iv: Option<[u8; 16]>,
}

impl fmt::Debug for ImportedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImportedKey({}, {})", self.track_type, self.kid)
    }
}

impl KeysRequest {
    pub fn into_plan(self) -> Result<(ContentId, KeyPlan)> {
        let content_id = ContentId::parse(&self.content_id)?;
        let plan = match self.keys {
            Some(keys) => {
                if self.source.is_some() || self.tracks.is_some() {
                    return Err(ClavisError::invalid(
                        "keys",
                        "give either `keys` to import, or `tracks`/`source`, not both",
                    ));
                }
                KeyPlan::Import(parse_imports(keys)?)
            }
            None => {
                let source = match self.source.as_deref() {
                    None | Some("random") => KeySource::Random,
                    Some("key_seed") => KeySource::KeySeed,
                    Some(_) => return Err(ClavisError::invalid("source", "must be \"random\" or \"key_seed\"")),
                };
                KeyPlan::Generate { source, tracks: parse_tracks(self.tracks)? }
            }
        };
        Ok((content_id, plan))
    }
}

pub(crate) fn parse_tracks(tracks: Option<Vec<String>>) -> Result<Vec<TrackType>> {
    let Some(tracks) = tracks else { return Ok(vec![TrackType::All]) };
    if tracks.is_empty() || tracks.len() > TrackType::EVERY.len() {
        return Err(ClavisError::invalid("tracks", "must list 1 to 6 track types"));
    }
    let mut seen = HashSet::new();
    tracks
        .iter()
        .map(|t| {
            let track: TrackType = t.parse().map_err(|_| {
                ClavisError::invalid("tracks", format!("{t:?} is not one of ALL, SD, HD, UHD1, UHD2, AUDIO"))
            })?;
            if !seen.insert(track) {
                return Err(ClavisError::invalid("tracks", format!("{track} is listed twice")));
            }
            Ok(track)
        })
        .collect()
}

fn parse_imports(keys: Vec<ImportedKeyBody>) -> Result<Vec<ImportedKey>> {
    if keys.is_empty() || keys.len() > MAX_KEYS_PER_REQUEST {
        return Err(ClavisError::invalid("keys", format!("must list 1 to {MAX_KEYS_PER_REQUEST} keys")));
    }
    let mut seen = HashSet::new();
    keys.into_iter()
        .enumerate()
        .map(|(i, body)| {
            let field = |name: &str| format!("keys[{i}].{name}");
            let recode = |e: ClavisError, name: &str| ClavisError { field: Some(field(name).into()), ..e };
            let track_type = match body.track_type.as_deref() {
                None => TrackType::All,
                Some(t) => t.parse().map_err(|e| recode(e, "track_type"))?,
            };
            let kid = Kid::parse_hex(&body.kid).map_err(|e| recode(e, "kid"))?;
            if !seen.insert(kid) {
                return Err(ClavisError::invalid(field("kid"), format!("{kid} is listed twice")));
            }
            let key = Zeroizing::new(parse_hex16(&body.key, "key").map_err(|e| recode(e, "key"))?);
            let iv = body.iv.as_deref().map(|iv| parse_hex16(iv, "iv").map_err(|e| recode(e, "iv"))).transpose()?;
            Ok(ImportedKey { track_type, kid, key, iv })
        })
        .collect()
}

/// One key in an answer of the key API.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    #[schema(value_type = String, example = "ALL")]
    pub track_type: TrackType,
    #[schema(example = "2f05477fc24bb4faefd86517156daffc")]
    pub kid: String,
    #[schema(example = "b50d1b25559be9bd0a3cbe8ab59232fc")]
    pub key: String,
    pub iv: String,
    pub source: KeySource,
    /// The crypto period (live key rotation) the key is for; absent for a key that does not rotate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_index: Option<u32>,
}

/// PSSH boxes for the content's KIDs, base64, ready for a packager's `--pssh` or a manifest.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PsshView {
    /// Widevine (v0 box; `WidevinePsshData` with the KIDs, the content id and protection scheme `cenc`).
    pub widevine: String,
    /// PlayReady (v0 box around a PlayReady Object: WRMHEADER 4.0 for one key, 4.2 for several, AESCTR with
    /// checksums, `LA_URL` the tenant's PlayReady license endpoint).
    pub playready: String,
    /// The W3C common-system PSSH (v1, KIDs in the header), which ClearKey players read.
    pub common: String,
}

impl PsshView {
    /// The three boxes for `set`; `public_url` is the base of the license URLs written into them.
    pub fn for_set(set: &ContentKeySet, public_url: &str) -> Result<PsshView> {
        let urls = LicenseUrls::new(public_url);
        Ok(PsshView::from_data(&SystemData::for_set(set, &urls, Scheme::Cenc).map_err(signalling_failed)?))
    }

    /// The boxes of `data`, base64.
    pub fn from_data(data: &SystemData) -> PsshView {
        use base64::Engine;
        use base64::engine::general_purpose::STANDARD;
        PsshView {
            widevine: STANDARD.encode(&data.widevine_pssh),
            playready: STANDARD.encode(&data.playready_pssh),
            common: STANDARD.encode(&data.common_pssh),
        }
    }
}

fn signalling_failed(e: SignallingError) -> ClavisError {
    ClavisError::internal("signalling", e)
}

/// The answer of the key API: every key of the content.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeysResponse {
    pub content_id: String,
    pub keys: Vec<KeyView>,
    pub pssh: PsshView,
    /// What to write into DASH and HLS manifests so that players find the tenant's license URLs.
    pub signalling: SignallingView,
}

impl KeysResponse {
    /// `public_url` is the base of the license URLs; `site_id` (the tenant's) goes into the HLS AES-128 key URIs.
    pub fn from_set(set: &ContentKeySet, public_url: &str, site_id: SiteId) -> Result<KeysResponse> {
        let urls = LicenseUrls::new(public_url);
        let data = SystemData::for_set(set, &urls, Scheme::Cenc).map_err(signalling_failed)?;
        Ok(KeysResponse {
            content_id: set.content_id.to_string(),
            keys: set
                .keys
                .iter()
                .map(|k| KeyView {
                    track_type: k.track_type,
                    kid: k.kid.to_hex(),
                    key: hex::encode(*k.key),
                    iv: hex::encode(k.iv),
                    source: k.source,
                    period_index: k.period,
                })
                .collect(),
            pssh: PsshView::from_data(&data),
            signalling: SignallingView::for_set(set, &data, &urls, site_id).map_err(signalling_failed)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: &str) -> Result<(ContentId, KeyPlan)> {
        serde_json::from_str::<KeysRequest>(json).unwrap().into_plan()
    }

    #[test]
    fn defaults_to_one_random_all_key() {
        let (content, plan) = request(r#"{"content_id":"movie-1"}"#).unwrap();
        assert_eq!(content.as_str(), "movie-1");
        assert!(
            matches!(plan, KeyPlan::Generate { source: KeySource::Random, ref tracks } if tracks == &[TrackType::All])
        );
    }

    #[test]
    fn bad_requests_name_the_field() {
        let field = |json: &str| request(json).unwrap_err().field.map(|f| f.to_string());
        assert_eq!(field(r#"{"content_id":""}"#).as_deref(), Some("content_id"));
        assert_eq!(field(r#"{"content_id":"m","tracks":["XX"]}"#).as_deref(), Some("tracks"));
        assert_eq!(field(r#"{"content_id":"m","tracks":["SD","SD"]}"#).as_deref(), Some("tracks"));
        assert_eq!(field(r#"{"content_id":"m","source":"magic"}"#).as_deref(), Some("source"));
        assert_eq!(
            field(r#"{"content_id":"m","keys":[{"kid":"00","key":"00112233445566778899aabbccddeeff"}]}"#).as_deref(),
            Some("keys[0].kid")
        );
        assert_eq!(
            field(r#"{"content_id":"m","source":"random","keys":[{"kid":"00112233445566778899aabbccddeeff","key":"00112233445566778899aabbccddeeff"}]}"#).as_deref(),
            Some("keys")
        );
    }

    #[test]
    fn content_key_debug_hides_the_key() {
        let key = ContentKey {
            track_type: TrackType::All,
            kid: Kid([1; 16]),
            key: Zeroizing::new([0xab; 16]),
            iv: [0; 16],
            source: KeySource::Random,
            period: None,
        };
        assert!(!format!("{key:?}").contains("abab"));
    }
}
