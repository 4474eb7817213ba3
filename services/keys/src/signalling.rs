//! Signalling: what a packager writes into the manifests so that players find the keys' license servers from the
//! packaged content alone.
//!
//! * DASH: the `ContentProtection` elements of an `AdaptationSet`: the `mp4protection` element (scheme and
//!   `cenc:default_KID`), Widevine (`cenc:pssh`), PlayReady (`cenc:pssh` and `mspr:pro`, whose header carries the
//!   tenant's PlayReady `LA_URL`), ClearKey (`clearkey:Laurl`, DASH-IF IOP) and the W3C common system. Elements and
//!   attributes follow what Shaka Packager 3.4.2 writes (see the MPDs in `shared/vectors/*/shaka-packager-3.4.2-capture/`).
//!   Each element declares the namespaces it uses, so the fragment is well-formed XML on its own and stays so wherever
//!   it is pasted (a repeated declaration of the same namespace is harmless).
//! * HLS: `#EXT-X-KEY` lines: FairPlay (`skd://<content id>`), AES-128 (Clavis's key URI and the key's IV), and
//!   Widevine / PlayReady with their PSSH data in a `data:` URI, attribute for attribute as Shaka Packager writes them.
//!
//! Everything here is a pure function of a key set, a scheme and the tenant's URLs.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clavis_core::ids::{ContentId, Kid, SiteId, TrackType};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use quick_xml::Writer;
use quick_xml::events::BytesText;
use serde::Serialize;

use crate::model::ContentKeySet;
use crate::playready::{AlgId, PlayReadyError, WrmHeader, WrmHeaderVersion, playready_pssh};
use crate::pssh::{COMMON_SYSTEM_ID, pssh_box};
use crate::widevine_pssh::{ProtectionScheme, widevine_pssh};

/// `schemeIdUri` of the element that names the encryption scheme and the default KID.
pub const MP4_PROTECTION_SCHEME: &str = "urn:mpeg:dash:mp4protection:2011";
/// Widevine, as a DASH `schemeIdUri` and an HLS `KEYFORMAT`.
pub const WIDEVINE_URN: &str = "urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed";
pub const PLAYREADY_URN: &str = "urn:uuid:9a04f079-9840-4286-ab92-e65be0885f95";
/// The ClearKey system id DASH-IF IOP uses for the element that carries `clearkey:Laurl`.
pub const CLEARKEY_URN: &str = "urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e";
/// The W3C common system, whose PSSH (KIDs in the box header) ClearKey players read.
pub const COMMON_URN: &str = "urn:uuid:1077efec-c0b2-4d02-ace3-3c1e52e2fb4b";

pub const CENC_NAMESPACE: &str = "urn:mpeg:cenc:2013";
pub const MSPR_NAMESPACE: &str = "urn:microsoft:playready";
/// DASH-IF IOP's namespace for `clearkey:Laurl`. Players (ExoPlayer among them) match the element by its literal name,
/// so the prefix is always `clearkey`.
pub const CLEARKEY_NAMESPACE: &str = "http://dashif.org/guidelines/clearKey";

pub const FAIRPLAY_KEYFORMAT: &str = "com.apple.streamingkeydelivery";
pub const PLAYREADY_KEYFORMAT: &str = "com.microsoft.playready";

/// The PlayReady `value` Shaka Packager writes (PlayReady 2.0 and later clients).
const PLAYREADY_VALUE: &str = "MSPR 2.0";
/// The ClearKey `value` of DASH-IF IOP's example.
const CLEARKEY_VALUE: &str = "ClearKey1.0";

/// Characters a path segment or an `skd://` asset id keeps as they are: RFC 3986 "unreserved". Everything else
/// (including `/`, `?`, `#`, `%`, `"`, spaces and non-ASCII) is percent-encoded, so a content id can never change
/// the shape of the URI nor end the quoted string of an HLS attribute.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Why signalling could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SignallingError {
    #[error("PlayReady header: {0}")]
    PlayReady(#[from] PlayReadyError),
    #[error("writing XML: {0}")]
    Xml(String),
    #[error("the content has no keys")]
    NoKeys,
}

impl From<std::io::Error> for SignallingError {
    fn from(e: std::io::Error) -> Self {
        SignallingError::Xml(e.to_string())
    }
}

/// The encryption scheme of the packaged content, as the manifest announces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// AES-CTR, full-sample (`cenc`): DASH with Widevine, PlayReady and ClearKey.
    Cenc,
    /// AES-CBC with pattern (`cbcs`): what FairPlay needs, and what one CMAF rendition for every DRM uses.
    Cbcs,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Cenc => "cenc",
            Scheme::Cbcs => "cbcs",
        }
    }

    /// The `METHOD` of a DRM system's `#EXT-X-KEY` line (Shaka Packager's mapping).
    pub fn hls_method(self) -> &'static str {
        match self {
            Scheme::Cenc => "SAMPLE-AES-CTR",
            Scheme::Cbcs => "SAMPLE-AES",
        }
    }

    fn widevine(self) -> ProtectionScheme {
        match self {
            Scheme::Cenc => ProtectionScheme::Cenc,
            Scheme::Cbcs => ProtectionScheme::Cbcs,
        }
    }
}

/// Percent-encode one path segment (or asset id). `.` and `..` are encoded too, although a WHATWG URL parser (every
/// browser) still treats `%2E` and `%2E%2E` as dot segments: such content ids cannot appear in a browser's key URI.
pub fn encode_segment(segment: &str) -> Cow<'_, str> {
    match segment {
        "." => Cow::Borrowed("%2E"),
        ".." => Cow::Borrowed("%2E%2E"),
        _ => utf8_percent_encode(segment, UNRESERVED).into(),
    }
}

/// A URI as the value of an HLS quoted-string attribute, which cannot hold `"`, CR or LF: those (and other control
/// characters, which a configured public URL should never contain anyway) are percent-encoded.
fn hls_quoted(uri: &str) -> Cow<'_, str> {
    if !uri.chars().any(|c| c == '"' || c.is_control()) {
        return Cow::Borrowed(uri);
    }
    let mut out = String::with_capacity(uri.len() + 8);
    for c in uri.chars() {
        if c == '"' || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The tenant's license URLs, as written into content.
#[derive(Clone, Debug)]
pub struct LicenseUrls {
    base: String,
}

impl LicenseUrls {
    /// `public_url` is Clavis's public base URL (`CLAVIS_PUBLIC_URL`); a trailing `/` is ignored.
    pub fn new(public_url: &str) -> LicenseUrls {
        LicenseUrls { base: public_url.trim_end_matches('/').to_owned() }
    }

    /// The PlayReady `LA_URL`.
    pub fn playready(&self) -> String {
        format!("{}/license/playready", self.base)
    }

    /// The ClearKey license URL (`clearkey:Laurl`).
    pub fn clearkey(&self) -> String {
        format!("{}/license/clearkey", self.base)
    }

    /// The HLS AES-128 key URI of one key: `/license/hls-aes/{site_id}/{content_id}/{kid}`, the content id
    /// percent-encoded as one path segment. Players add the token as `?token=` or in `X-Clavis-Token`.
    pub fn hls_aes(&self, site_id: SiteId, content_id: &ContentId, kid: &Kid) -> String {
        format!(
            "{}/license/hls-aes/{}/{}/{}",
            self.base,
            site_id.as_str(),
            encode_segment(content_id.as_str()),
            kid.to_hex()
        )
    }
}

/// The `skd://` URI of a content: the content id, which the player hands to the FairPlay license endpoint as the
/// asset id (percent-encoded as a path segment; ids made of letters, digits, `-`, `.`, `_` and `~` are unchanged).
pub fn fairplay_uri(content_id: &ContentId) -> String {
    format!("skd://{}", encode_segment(content_id.as_str()))
}

/// The DRM systems' data for one key set in one scheme: the boxes a packager embeds and the manifest repeats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemData {
    /// Widevine v0 box: `WidevinePsshData` with every KID, the content id and the scheme.
    pub widevine_pssh: Vec<u8>,
    /// PlayReady Object. `cenc`: WRMHEADER 4.0 for one key, 4.2 for several, AESCTR with checksums; `cbcs`: 4.3
    /// AESCBC. `LA_URL` is the tenant's PlayReady endpoint.
    pub playready_pro: Vec<u8>,
    /// PlayReady v0 box around [`Self::playready_pro`].
    pub playready_pssh: Vec<u8>,
    /// W3C common-system v1 box (KIDs in the header, no data).
    pub common_pssh: Vec<u8>,
}

impl SystemData {
    pub fn for_set(set: &ContentKeySet, urls: &LicenseUrls, scheme: Scheme) -> Result<SystemData, SignallingError> {
        let kids = set.kids();
        let (version, algid) = match (scheme, set.keys.len()) {
            (Scheme::Cenc, 1) => (WrmHeaderVersion::V4_0, AlgId::AesCtr),
            (Scheme::Cenc, _) => (WrmHeaderVersion::V4_2, AlgId::AesCtr),
            (Scheme::Cbcs, _) => (WrmHeaderVersion::V4_3, AlgId::AesCbc),
        };
        let mut header = WrmHeader::new(version);
        header.algid = Some(algid);
        // Checksums are defined for AESCTR keys only.
        header.kids = set.keys.iter().map(|k| (k.kid, (algid == AlgId::AesCtr).then(|| k.key.clone()))).collect();
        header.la_url = Some(urls.playready());
        let pro = header.to_playready_object()?;
        Ok(SystemData {
            widevine_pssh: widevine_pssh(&kids, Some(set.content_id.as_str().as_bytes()), scheme.widevine()),
            playready_pssh: playready_pssh(&pro, None),
            playready_pro: pro,
            common_pssh: pssh_box(&COMMON_SYSTEM_ID, Some(&kids), &[]),
        })
    }
}

/// The `ContentProtection` elements of an `AdaptationSet` whose samples are encrypted with `default_kid`, one per
/// line, children indented by two spaces.
pub fn dash_content_protection(
    default_kid: &Kid,
    scheme: Scheme,
    data: &SystemData,
    urls: &LicenseUrls,
) -> Result<String, SignallingError> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let pssh = |w: &mut Writer<Vec<u8>>, pssh: &[u8]| -> std::io::Result<()> {
        w.create_element("cenc:pssh").write_text_content(BytesText::new(&STANDARD.encode(pssh)))?;
        Ok(())
    };
    w.create_element("ContentProtection")
        .with_attribute(("xmlns:cenc", CENC_NAMESPACE))
        .with_attribute(("value", scheme.as_str()))
        .with_attribute(("schemeIdUri", MP4_PROTECTION_SCHEME))
        .with_attribute(("cenc:default_KID", default_kid.to_uuid_string().as_str()))
        .write_empty()?;
    w.create_element("ContentProtection")
        .with_attribute(("xmlns:cenc", CENC_NAMESPACE))
        .with_attribute(("schemeIdUri", WIDEVINE_URN))
        .write_inner_content(|w| pssh(w, &data.widevine_pssh))?;
    w.create_element("ContentProtection")
        .with_attribute(("xmlns:cenc", CENC_NAMESPACE))
        .with_attribute(("xmlns:mspr", MSPR_NAMESPACE))
        .with_attribute(("value", PLAYREADY_VALUE))
        .with_attribute(("schemeIdUri", PLAYREADY_URN))
        .write_inner_content(|w| {
            pssh(w, &data.playready_pssh)?;
            w.create_element("mspr:pro").write_text_content(BytesText::new(&STANDARD.encode(&data.playready_pro)))?;
            Ok(())
        })?;
    w.create_element("ContentProtection")
        .with_attribute(("xmlns:clearkey", CLEARKEY_NAMESPACE))
        .with_attribute(("value", CLEARKEY_VALUE))
        .with_attribute(("schemeIdUri", CLEARKEY_URN))
        .write_inner_content(|w| {
            w.create_element("clearkey:Laurl")
                .with_attribute(("Lic_type", "EME-1.0"))
                .write_text_content(BytesText::new(&urls.clearkey()))?;
            Ok(())
        })?;
    w.create_element("ContentProtection")
        .with_attribute(("xmlns:cenc", CENC_NAMESPACE))
        .with_attribute(("schemeIdUri", COMMON_URN))
        .write_inner_content(|w| pssh(w, &data.common_pssh))?;
    String::from_utf8(w.into_inner()).map_err(|e| SignallingError::Xml(e.to_string()))
}

/// FairPlay: `#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://<content id>",KEYFORMATVERSIONS="1",
/// KEYFORMAT="com.apple.streamingkeydelivery"`. FairPlay content is always `cbcs`, and the IV travels in the CKC.
pub fn hls_fairplay(content_id: &ContentId) -> String {
    format!(
        "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"{}\",KEYFORMATVERSIONS=\"1\",KEYFORMAT=\"{FAIRPLAY_KEYFORMAT}\"",
        hls_quoted(&fairplay_uri(content_id))
    )
}

/// AES-128 (whole segments, AES-CBC): `#EXT-X-KEY:METHOD=AES-128,URI="<key uri>",IV=0x<iv>`.
pub fn hls_aes128(key_uri: &str, iv: &[u8; 16]) -> String {
    format!("#EXT-X-KEY:METHOD=AES-128,URI=\"{}\",IV=0x{}", hls_quoted(key_uri), hex::encode(iv))
}

/// Widevine: the PSSH box as a base64 `data:` URI and the KID, as Shaka Packager writes it.
pub fn hls_widevine(kid: &Kid, scheme: Scheme, widevine_pssh: &[u8]) -> String {
    format!(
        "#EXT-X-KEY:METHOD={},URI=\"data:text/plain;base64,{}\",KEYID=0x{},KEYFORMATVERSIONS=\"1\",KEYFORMAT=\"{WIDEVINE_URN}\"",
        scheme.hls_method(),
        STANDARD.encode(widevine_pssh),
        kid.to_hex()
    )
}

/// PlayReady: the PlayReady Object (not the box) as a UTF-16 base64 `data:` URI, as Shaka Packager writes it.
pub fn hls_playready(scheme: Scheme, playready_pro: &[u8]) -> String {
    format!(
        "#EXT-X-KEY:METHOD={},URI=\"data:text/plain;charset=UTF-16;base64,{}\",KEYFORMATVERSIONS=\"1\",KEYFORMAT=\"{PLAYREADY_KEYFORMAT}\"",
        scheme.hls_method(),
        STANDARD.encode(playready_pro)
    )
}

/// `#EXT-X-KEY` lines for one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HlsSignallingView {
    /// FairPlay (`cbcs` content): `skd://<content id>`; the player passes the asset id to `/license/fairplay`.
    #[schema(
        example = "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://movie-1\",KEYFORMATVERSIONS=\"1\",KEYFORMAT=\"com.apple.streamingkeydelivery\""
    )]
    pub fairplay: String,
    /// AES-128: the key URI at `/license/hls-aes/{site_id}/{content_id}/{kid}` and the key's IV. Append
    /// `?token=<license token>` (or have the player send `X-Clavis-Token`).
    #[schema(
        example = "#EXT-X-KEY:METHOD=AES-128,URI=\"https://drm.example.com/license/hls-aes/ABCD/movie-1/2f05477fc24bb4faefd86517156daffc\",IV=0x0123456789abcdef0123456789abcdef"
    )]
    pub aes128: String,
    /// Widevine (`cenc` content, `SAMPLE-AES-CTR`): the Widevine PSSH box as a `data:` URI and the KID.
    pub widevine: String,
    /// PlayReady (`cenc` content, `SAMPLE-AES-CTR`): the PlayReady Object (with `LA_URL`) as a UTF-16 `data:` URI.
    pub playready: String,
}

/// Signalling for one key of a content with several keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TrackSignallingView {
    #[schema(value_type = String, example = "HD")]
    pub track_type: TrackType,
    pub kid: String,
    /// `ContentProtection` elements for the adaptation sets of this track type (`cenc:default_KID` is this key).
    pub dash: String,
    pub hls: HlsSignallingView,
}

/// What to write into manifests so that players find Clavis: DASH `ContentProtection` elements and HLS `#EXT-X-KEY`
/// lines carrying the tenant's license URLs. Scheme `cenc`, except FairPlay (always `cbcs`) and AES-128.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SignallingView {
    /// `ContentProtection` elements for an `AdaptationSet`: `mp4protection` with `cenc:default_KID` (the content's
    /// first key), Widevine, PlayReady (`LA_URL`), ClearKey (`clearkey:Laurl`) and the W3C common system. Each
    /// element declares the namespaces it uses.
    pub dash: String,
    /// `#EXT-X-KEY` lines for the content's first key.
    pub hls: HlsSignallingView,
    /// Present when the content has several keys: the same signalling per key, in the order of `keys`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tracks: Vec<TrackSignallingView>,
}

impl SignallingView {
    /// Signalling for `set`, from its system data in scheme `cenc`.
    pub fn for_set(
        set: &ContentKeySet,
        data: &SystemData,
        urls: &LicenseUrls,
        site_id: SiteId,
    ) -> Result<SignallingView, SignallingError> {
        let fairplay = hls_fairplay(&set.content_id);
        let playready = hls_playready(Scheme::Cenc, &data.playready_pro);
        let mut tracks = set
            .keys
            .iter()
            .map(|key| {
                Ok(TrackSignallingView {
                    track_type: key.track_type,
                    kid: key.kid.to_hex(),
                    dash: dash_content_protection(&key.kid, Scheme::Cenc, data, urls)?,
                    hls: HlsSignallingView {
                        fairplay: fairplay.clone(),
                        aes128: hls_aes128(&urls.hls_aes(site_id, &set.content_id, &key.kid), &key.iv),
                        widevine: hls_widevine(&key.kid, Scheme::Cenc, &data.widevine_pssh),
                        playready: playready.clone(),
                    },
                })
            })
            .collect::<Result<Vec<_>, SignallingError>>()?;
        let first = if tracks.len() == 1 { tracks.pop() } else { tracks.first().cloned() };
        let first = first.ok_or(SignallingError::NoKeys)?;
        Ok(SignallingView { dash: first.dash, hls: first.hls, tracks })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use clavis_core::ids::TrackType;
    use percent_encoding::percent_decode_str;
    use proptest::prelude::*;
    use quick_xml::events::Event;
    use quick_xml::name::{Namespace, ResolveResult};
    use quick_xml::{NsReader, XmlVersion};
    use zeroize::Zeroizing;

    use super::*;
    use crate::model::{ContentKey, KeySource};
    use crate::playready::{PLAYREADY_SYSTEM_ID, wrmheader_from_playready_object};
    use crate::widevine_pssh::{WIDEVINE_SYSTEM_ID, parse_widevine_pssh_data};

    const PUBLIC_URL: &str = "https://drm.example.com/";
    const KID: &str = "2f05477fc24bb4faefd86517156daffc";
    const KEY: &str = "b50d1b25559be9bd0a3cbe8ab59232fc";
    const IV: &str = "0123456789abcdef0123456789abcdef";

    fn key(track_type: TrackType, kid: &str, key: &str, iv: &str) -> ContentKey {
        ContentKey {
            track_type,
            kid: Kid::parse_hex(kid).unwrap(),
            key: Zeroizing::new(hex::decode(key).unwrap().try_into().unwrap()),
            iv: hex::decode(iv).unwrap().try_into().unwrap(),
            source: KeySource::Imported,
            period: None,
        }
    }

    fn set(content_id: &str, keys: Vec<ContentKey>) -> ContentKeySet {
        ContentKeySet { content_id: ContentId::parse(content_id).unwrap(), keys, policy: None }
    }

    fn one_key_set() -> ContentKeySet {
        set("movie-1", vec![key(TrackType::All, KID, KEY, IV)])
    }

    fn site() -> SiteId {
        SiteId::parse("ABCD").unwrap()
    }

    /// One element of a parsed fragment: its resolved name, attributes (resolved names) and text.
    #[derive(Debug, Default, Clone)]
    struct Element {
        ns: Option<String>,
        name: String,
        attrs: BTreeMap<(Option<String>, String), String>,
        text: String,
        children: Vec<Element>,
    }

    fn ns_of(resolved: ResolveResult) -> Option<String> {
        match resolved {
            ResolveResult::Bound(Namespace(ns)) => Some(ns.to_owned()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(prefix) => panic!("undeclared prefix {prefix:?}"),
        }
    }

    /// Parse an XML fragment (several top-level elements) with namespaces resolved; any malformation panics.
    fn parse_fragment(xml: &str) -> Vec<Element> {
        let mut reader = NsReader::from_str(xml);
        let mut stack: Vec<Element> = Vec::new();
        let mut top = Vec::new();
        loop {
            let (resolved, event) = reader.read_resolved_event().unwrap();
            let ns = match &event {
                Event::Start(_) | Event::Empty(_) => ns_of(resolved),
                _ => None,
            };
            match event {
                Event::Start(ref e) | Event::Empty(ref e) => {
                    let mut element = Element { ns, name: e.local_name().as_ref().to_owned(), ..Element::default() };
                    for attr in e.attributes() {
                        let attr = attr.unwrap();
                        if attr.key.as_namespace_binding().is_some() {
                            continue;
                        }
                        let (resolved, local) = reader.resolver().resolve_attribute(attr.key);
                        let value = attr.normalized_value(XmlVersion::Implicit1_0).unwrap().into_owned();
                        element.attrs.insert((ns_of(resolved), local.as_ref().to_owned()), value);
                    }
                    if matches!(event, Event::Start(_)) {
                        stack.push(element);
                    } else if let Some(parent) = stack.last_mut() {
                        parent.children.push(element);
                    } else {
                        top.push(element);
                    }
                }
                Event::End(_) => {
                    let element = stack.pop().unwrap();
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None => top.push(element),
                    }
                }
                Event::Text(t) => {
                    if let Some(current) = stack.last_mut() {
                        current.text.push_str(&t.xml10_content());
                    }
                }
                Event::GeneralRef(r) => {
                    let name = r.xml10_content();
                    let resolved = quick_xml::escape::resolve_predefined_entity(&name)
                        .map(str::to_owned)
                        .or_else(|| r.resolve_char_ref().unwrap().map(String::from))
                        .unwrap();
                    stack.last_mut().unwrap().text.push_str(&resolved);
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert!(stack.is_empty(), "unclosed elements");
        for element in &mut top {
            trim(element);
        }
        top
    }

    fn trim(element: &mut Element) {
        element.text = element.text.trim().to_owned();
        element.children.iter_mut().for_each(trim);
    }

    fn attr<'a>(element: &'a Element, ns: Option<&str>, name: &str) -> Option<&'a str> {
        element.attrs.get(&(ns.map(str::to_owned), name.to_owned())).map(String::as_str)
    }

    fn by_scheme<'a>(elements: &'a [Element], scheme: &str) -> &'a Element {
        elements.iter().find(|e| attr(e, None, "schemeIdUri") == Some(scheme)).unwrap()
    }

    fn vectors_dir() -> PathBuf {
        let dir = std::env::var_os("CLAVIS_TEST_VECTORS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors")));
        assert!(dir.is_dir(), "test vectors not found at {}: set CLAVIS_TEST_VECTORS", dir.display());
        dir
    }

    /// The `ContentProtection` elements of the first `AdaptationSet` of an MPD.
    fn mpd_content_protection(relative: &str) -> Vec<Element> {
        let path = vectors_dir().join(relative);
        let mpd = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mpd = mpd.split_once("?>").map_or(mpd.as_str(), |(_, rest)| rest);
        let root = parse_fragment(mpd).into_iter().find(|e| e.name == "MPD").unwrap();
        let set = &root.children[0].children[0];
        assert_eq!(set.name, "AdaptationSet");
        set.children.iter().filter(|e| e.name == "ContentProtection").cloned().collect()
    }

    fn quoted_attribute<'a>(line: &'a str, name: &str) -> &'a str {
        let start = line.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        let len = line[start..].find('"').unwrap();
        &line[start..start + len]
    }

    #[test]
    fn dash_fragment_is_namespaced_xml_with_every_system() {
        let set = one_key_set();
        let urls = LicenseUrls::new(PUBLIC_URL);
        let data = SystemData::for_set(&set, &urls, Scheme::Cenc).unwrap();
        let xml = dash_content_protection(&set.keys[0].kid, Scheme::Cenc, &data, &urls).unwrap();
        let elements = parse_fragment(&xml);
        let schemes: Vec<_> = elements.iter().map(|e| attr(e, None, "schemeIdUri").unwrap()).collect();
        assert_eq!(schemes, [MP4_PROTECTION_SCHEME, WIDEVINE_URN, PLAYREADY_URN, CLEARKEY_URN, COMMON_URN]);
        assert!(elements.iter().all(|e| e.name == "ContentProtection" && e.ns.is_none()));

        let mp4 = &elements[0];
        assert_eq!(attr(mp4, None, "value"), Some("cenc"));
        assert_eq!(attr(mp4, Some(CENC_NAMESPACE), "default_KID"), Some("2f05477f-c24b-b4fa-efd8-6517156daffc"));

        let pssh_of = |e: &Element| {
            let pssh = e.children.iter().find(|c| c.name == "pssh").unwrap();
            assert_eq!(pssh.ns.as_deref(), Some(CENC_NAMESPACE));
            STANDARD.decode(&pssh.text).unwrap()
        };
        let widevine = pssh_of(by_scheme(&elements, WIDEVINE_URN));
        assert_eq!(widevine, data.widevine_pssh);
        assert_eq!(&widevine[12..28], &WIDEVINE_SYSTEM_ID);
        let parsed = parse_widevine_pssh_data(&widevine[32..]).unwrap();
        assert_eq!(parsed.key_ids, vec![set.keys[0].kid]);
        assert_eq!(parsed.content_id.as_deref(), Some(&b"movie-1"[..]));

        let playready = by_scheme(&elements, PLAYREADY_URN);
        assert_eq!(attr(playready, None, "value"), Some("MSPR 2.0"));
        let pr_box = pssh_of(playready);
        assert_eq!(&pr_box[12..28], &PLAYREADY_SYSTEM_ID);
        let pro = playready.children.iter().find(|c| c.name == "pro").unwrap();
        assert_eq!(pro.ns.as_deref(), Some(MSPR_NAMESPACE));
        let pro = STANDARD.decode(&pro.text).unwrap();
        assert_eq!(&pr_box[32..], &pro[..], "the box carries the same PRO");
        let header = wrmheader_from_playready_object(&pro).unwrap();
        assert_eq!(header.la_url.as_deref(), Some("https://drm.example.com/license/playready"));
        assert_eq!(header.kid_list(), vec![set.keys[0].kid]);

        let clearkey = by_scheme(&elements, CLEARKEY_URN);
        assert_eq!(attr(clearkey, None, "value"), Some("ClearKey1.0"));
        let laurl = &clearkey.children[0];
        assert_eq!((laurl.ns.as_deref(), laurl.name.as_str()), (Some(CLEARKEY_NAMESPACE), "Laurl"));
        assert_eq!(attr(laurl, None, "Lic_type"), Some("EME-1.0"));
        assert_eq!(laurl.text, "https://drm.example.com/license/clearkey");
        // ExoPlayer finds the element by its literal qualified name.
        assert!(xml.contains(
            "<clearkey:Laurl Lic_type=\"EME-1.0\">https://drm.example.com/license/clearkey</clearkey:Laurl>"
        ));

        assert_eq!(pssh_of(by_scheme(&elements, COMMON_URN)), pssh_box(&COMMON_SYSTEM_ID, Some(&set.kids()), &[]));
        // One element per line, children indented, as in a packager's MPD.
        assert_eq!(xml.lines().filter(|l| l.starts_with("<ContentProtection")).count(), 5);
        assert!(xml.lines().any(|l| l.starts_with("  <cenc:pssh>")));
    }

    #[test]
    fn dash_fragment_has_the_structure_of_shaka_packager_mpds() {
        let set = one_key_set();
        let urls = LicenseUrls::new(PUBLIC_URL);
        let data = SystemData::for_set(&set, &urls, Scheme::Cenc).unwrap();
        let ours = parse_fragment(&dash_content_protection(&set.keys[0].kid, Scheme::Cenc, &data, &urls).unwrap());
        let shape = |e: &Element| {
            let mut attrs: Vec<_> = e.attrs.keys().cloned().collect();
            attrs.sort();
            let children: Vec<_> = e.children.iter().map(|c| (c.ns.clone(), c.name.clone())).collect();
            (attr(e, None, "value").map(str::to_owned), attrs, children)
        };
        let mut compared = 0;
        for mpd in [
            "playready/shaka-packager-3.4.2-capture/packager_output_with_mock_pr_key.mpd",
            "widevine/shaka-packager-3.4.2-capture/packager_output_with_mock_keys.mpd",
        ] {
            for theirs in mpd_content_protection(mpd) {
                let scheme = attr(&theirs, None, "schemeIdUri").unwrap();
                assert_eq!(shape(by_scheme(&ours, scheme)), shape(&theirs), "{scheme} in {mpd}");
                compared += 1;
            }
        }
        assert_eq!(compared, 6);
    }

    #[test]
    fn urls_in_xml_are_escaped_and_read_back_exactly() {
        let set = one_key_set();
        let data = SystemData::for_set(&set, &LicenseUrls::new(PUBLIC_URL), Scheme::Cenc).unwrap();
        let urls = LicenseUrls::new("https://drm.example.com/a&b'c\"d<e>/");
        let xml = dash_content_protection(&set.keys[0].kid, Scheme::Cenc, &data, &urls).unwrap();
        let elements = parse_fragment(&xml);
        assert_eq!(
            by_scheme(&elements, CLEARKEY_URN).children[0].text,
            "https://drm.example.com/a&b'c\"d<e>/license/clearkey"
        );
    }

    #[test]
    fn cbcs_announces_cbcs_everywhere() {
        let set = one_key_set();
        let urls = LicenseUrls::new(PUBLIC_URL);
        let data = SystemData::for_set(&set, &urls, Scheme::Cbcs).unwrap();
        let elements = parse_fragment(&dash_content_protection(&set.keys[0].kid, Scheme::Cbcs, &data, &urls).unwrap());
        assert_eq!(attr(&elements[0], None, "value"), Some("cbcs"));
        let wv = parse_widevine_pssh_data(&data.widevine_pssh[32..]).unwrap();
        assert_eq!(wv.scheme(), Some(ProtectionScheme::Cbcs));
        let header = wrmheader_from_playready_object(&data.playready_pro).unwrap();
        assert_eq!(header.version, WrmHeaderVersion::V4_3);
        assert!(header.kids.iter().all(|k| k.algid == Some(AlgId::AesCbc) && k.checksum.is_none()));
        assert!(
            hls_widevine(&set.keys[0].kid, Scheme::Cbcs, &data.widevine_pssh)
                .starts_with("#EXT-X-KEY:METHOD=SAMPLE-AES,")
        );
        assert!(hls_playready(Scheme::Cbcs, &data.playready_pro).starts_with("#EXT-X-KEY:METHOD=SAMPLE-AES,"));
    }

    #[test]
    fn hls_lines_for_one_key() {
        let set = one_key_set();
        let urls = LicenseUrls::new(PUBLIC_URL);
        let data = SystemData::for_set(&set, &urls, Scheme::Cenc).unwrap();
        let view = SignallingView::for_set(&set, &data, &urls, site()).unwrap();
        assert!(view.tracks.is_empty());
        assert_eq!(
            view.hls.fairplay,
            "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://movie-1\",KEYFORMATVERSIONS=\"1\",KEYFORMAT=\"com.apple.streamingkeydelivery\""
        );
        assert_eq!(
            view.hls.aes128,
            format!(
                "#EXT-X-KEY:METHOD=AES-128,URI=\"https://drm.example.com/license/hls-aes/ABCD/movie-1/{KID}\",IV=0x{IV}"
            )
        );
        assert_eq!(
            view.hls.widevine,
            format!(
                "#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI=\"data:text/plain;base64,{}\",KEYID=0x{KID},KEYFORMATVERSIONS=\"1\",KEYFORMAT=\"urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed\"",
                STANDARD.encode(&data.widevine_pssh)
            )
        );
        let pr_uri = quoted_attribute(&view.hls.playready, "URI");
        let pro = STANDARD.decode(pr_uri.strip_prefix("data:text/plain;charset=UTF-16;base64,").unwrap()).unwrap();
        assert_eq!(pro, data.playready_pro);
        assert!(view.hls.playready.starts_with("#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,"));
        assert!(view.hls.playready.ends_with(",KEYFORMATVERSIONS=\"1\",KEYFORMAT=\"com.microsoft.playready\""));
        assert_eq!(view.dash, dash_content_protection(&set.keys[0].kid, Scheme::Cenc, &data, &urls).unwrap());
    }

    #[test]
    fn several_keys_get_signalling_per_track() {
        let set = set(
            "series/ep 1",
            vec![
                key(TrackType::Sd, "00000000000000000000000000000001", KEY, IV),
                key(TrackType::Hd, "00000000000000000000000000000002", KEY, "ffeeddccbbaa99887766554433221100"),
            ],
        );
        let urls = LicenseUrls::new(PUBLIC_URL);
        let data = SystemData::for_set(&set, &urls, Scheme::Cenc).unwrap();
        let header = wrmheader_from_playready_object(&data.playready_pro).unwrap();
        assert_eq!(header.version, WrmHeaderVersion::V4_2);
        assert_eq!(header.kid_list(), set.kids());
        let view = SignallingView::for_set(&set, &data, &urls, site()).unwrap();
        assert_eq!(view.tracks.len(), 2);
        assert_eq!((view.dash.as_str(), &view.hls), (view.tracks[0].dash.as_str(), &view.tracks[0].hls));
        let hd = &view.tracks[1];
        assert_eq!((hd.track_type, hd.kid.as_str()), (TrackType::Hd, "00000000000000000000000000000002"));
        assert_eq!(
            hd.hls.aes128,
            "#EXT-X-KEY:METHOD=AES-128,URI=\"https://drm.example.com/license/hls-aes/ABCD/series%2Fep%201/00000000000000000000000000000002\",IV=0xffeeddccbbaa99887766554433221100"
        );
        assert!(hd.hls.widevine.contains("KEYID=0x00000000000000000000000000000002"));
        let mp4 = &parse_fragment(&hd.dash)[0];
        assert_eq!(attr(mp4, Some(CENC_NAMESPACE), "default_KID"), Some("00000000-0000-0000-0000-000000000002"));
        assert_eq!(hd.hls.fairplay, view.hls.fairplay);
        assert!(view.hls.fairplay.contains("URI=\"skd://series%2Fep%201\""));
    }

    #[test]
    fn segments_and_quoted_strings() {
        assert_eq!(encode_segment("movie-1_v2.0~x"), "movie-1_v2.0~x");
        assert_eq!(encode_segment("a/b?c#d%e f\"g+é"), "a%2Fb%3Fc%23d%25e%20f%22g%2B%C3%A9");
        assert_eq!(encode_segment("."), "%2E");
        assert_eq!(encode_segment(".."), "%2E%2E");
        assert_eq!(hls_quoted("https://x/\"a\"\r\n"), "https://x/%22a%22%0D%0A");
        assert_eq!(
            hls_aes128("https://x/\"k", &[0; 16]),
            format!("#EXT-X-KEY:METHOD=AES-128,URI=\"https://x/%22k\",IV=0x{}", "0".repeat(32))
        );
    }

    proptest! {
        #[test]
        fn every_content_id_gives_a_well_formed_key_uri(id in "[^\\p{Cc}]{1,60}") {
            let content_id = ContentId::parse(&id).unwrap();
            let kid = Kid([7; 16]);
            let uri = LicenseUrls::new(PUBLIC_URL).hls_aes(site(), &content_id, &kid);
            let line = hls_aes128(&uri, &[0; 16]);
            prop_assert_eq!(line.matches('"').count(), 2);
            prop_assert!(!line.contains('\n') && !line.contains('\r'));
            prop_assert!(uri.is_ascii());
            let segments: Vec<&str> = uri.split('/').collect();
            prop_assert_eq!(segments.len(), 8);
            prop_assert_eq!(percent_decode_str(segments[6]).decode_utf8().unwrap(), id.as_str());
            prop_assert_eq!(segments[7], kid.to_hex());
            let fairplay = hls_fairplay(&content_id);
            prop_assert_eq!(fairplay.matches('"').count(), 6);
            prop_assert!(fairplay.is_ascii());
        }
    }
}
