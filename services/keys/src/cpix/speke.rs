//! `POST /speke/v2.0/copyProtection` (SPEKE v2, CPIX 2.3) and `POST /speke/v1.0/copyProtection` (SPEKE v1 and
//! generic CPIX): read the packager's document, get or make a key for every `ContentKey@kid` of the content, and
//! answer the document filled in: key values (plain, or encrypted to the recipients it names), PSSH boxes, DASH
//! `ContentProtection` children, HLS `#EXT-X-KEY` / `#EXT-X-SESSION-KEY` lines and key URIs, each carrying the
//! tenant's license URLs.
//!
//! Errors after authentication are plain text (what SPEKE clients log), with the catalog code in `X-Clavis-Error`.

use std::collections::{HashMap, HashSet};

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, post, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clavis_core::ClavisError;
use clavis_core::error::ERROR_HEADER;
use clavis_core::ids::{ContentId, Kid, SiteId, TrackType};
use clavis_tenant::TenantAuth;
use quick_xml::escape::escape;
use uuid::Uuid;

use super::delivery::Sealer;
use super::document::{Document, FieldKind, FilterKind, KeyValue, UsageRule};
use super::parse::{MAX_DOCUMENT_BYTES, parse};
use super::write::write;
use super::{COMMON, CpixError, FAIRPLAY, HLS_AES128, PLAYREADY, WIDEVINE};
use crate::model::{ContentKey, ContentKeySet};
use crate::pssh::pssh_box;
use crate::signalling::{
    CENC_NAMESPACE, CLEARKEY_NAMESPACE, FAIRPLAY_KEYFORMAT, LicenseUrls, MSPR_NAMESPACE, PLAYREADY_KEYFORMAT, Scheme,
    SystemData, WIDEVINE_URN, fairplay_uri, hls_aes128, hls_fairplay, hls_playready, hls_widevine,
};
use crate::store::{KeyStore, KidRequest};

/// The SPEKE version this endpoint speaks, echoed in `X-Speke-Version`.
pub const SPEKE_V2: &str = "2.0";
/// What Clavis calls itself in `Speke-User-Agent` (v1) and `X-Speke-User-Agent` (v2).
const USER_AGENT: &str = concat!("Clavis/", env!("CARGO_PKG_VERSION"));

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// SPEKE v1 and any CPIX 2.x document: content id from `CPIX@contentId`, `CPIX@id` or `?content_id=`.
    V1,
    /// SPEKE v2: CPIX 2.3 with `contentId`, schemes and track types required.
    V2,
}

/// A plain-text SPEKE error with the catalog code in `X-Clavis-Error`.
fn plain_error(e: &ClavisError) -> HttpResponse {
    HttpResponse::build(e.code.status())
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8")))
        .insert_header((ERROR_HEADER, HeaderValue::from_static(e.code.code_str())))
        .body(e.detail.to_string())
}

/// Answer a SPEKE v2 request (CPIX 2.3).
#[utoipa::path(
    post, path = "/speke/v2.0/copyProtection", tag = "keys",
    security(("api_key" = []), ("basic" = [])),
    params(
        ("X-Speke-Version" = Option<String>, Header, description = "2.0 (echoed in the answer)"),
    ),
    request_body(content = String, content_type = "application/xml",
        description = "A CPIX 2.3 document with `contentId`, ContentKeys (`kid`, `commonEncryptionScheme`), DRMSystems whose empty elements ask for signalling, and usage rules with `intendedTrackType`; DeliveryData recipients make the keys come back encrypted."),
    responses(
        (status = 200, description = "The document filled in: keys, PSSH, ContentProtectionData, HLS signalling", body = String, content_type = "application/xml"),
        (status = 401, description = "2001 API key missing, 2002 API key invalid (or wrong site id in Basic auth)", body = clavis_core::error::Problem),
        (status = 409, description = "3003 KID already used by another content, 3014 key in the document differs (plain text)", body = String, content_type = "text/plain"),
        (status = 413, description = "1012 document too large (plain text)", body = String, content_type = "text/plain"),
        (status = 422, description = "3010 malformed, 3011 invalid (`Missing CPIX@contentId`, ...), 3012 unsupported version, 3013 recipient certificate rejected (plain text)", body = String, content_type = "text/plain"),
    )
)]
#[post("/speke/v2.0/copyProtection")]
pub async fn speke_v2(
    auth: TenantAuth,
    store: web::Data<KeyStore>,
    req: HttpRequest,
    body: web::Payload,
) -> HttpResponse {
    let answer = async {
        if let Some(version) = req.headers().get("x-speke-version") {
            let version = version.to_str().unwrap_or_default().trim();
            if version != SPEKE_V2 {
                return Err(ClavisError::from(CpixError::Version(format!(
                    "Unsupported X-Speke-Version {version:?}; this endpoint speaks 2.0"
                ))));
            }
        }
        let bytes = clavis_core::http::read_body(body, MAX_DOCUMENT_BYTES).await?;
        answer(&auth, &store, &req, &bytes, Flavor::V2).await
    };
    match answer.await {
        Ok(xml) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/xml")))
            .insert_header(("X-Speke-Version", SPEKE_V2))
            .insert_header(("X-Speke-User-Agent", USER_AGENT))
            .body(xml),
        Err(e) => {
            let mut response = plain_error(&e);
            response
                .headers_mut()
                .insert(header::HeaderName::from_static("x-speke-version"), HeaderValue::from_static(SPEKE_V2));
            response
        }
    }
}

/// Answer a SPEKE v1 request, or any CPIX 2.x document.
#[utoipa::path(
    post, path = "/speke/v1.0/copyProtection", tag = "keys",
    security(("api_key" = []), ("basic" = [])),
    params(
        ("content_id" = Option<String>, Query, description = "The content id when the document names none (neither `CPIX@contentId` nor `CPIX@id`)"),
    ),
    request_body(content = String, content_type = "application/xml",
        description = "A SPEKE v1 CPIX document (`CPIX@id` is the content id; `speke:KeyFormat`, `speke:KeyFormatVersions`, `speke:ProtectionHeader` are filled in) or any CPIX 2.x document."),
    responses(
        (status = 200, description = "The document filled in", body = String, content_type = "application/xml"),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 409, description = "3003, 3014 (plain text)", body = String, content_type = "text/plain"),
        (status = 413, description = "1012 (plain text)", body = String, content_type = "text/plain"),
        (status = 422, description = "3010, 3011, 3012, 3013 (plain text)", body = String, content_type = "text/plain"),
    )
)]
#[post("/speke/v1.0/copyProtection")]
pub async fn speke_v1(
    auth: TenantAuth,
    store: web::Data<KeyStore>,
    req: HttpRequest,
    body: web::Payload,
) -> HttpResponse {
    let answer = async {
        let bytes = clavis_core::http::read_body(body, MAX_DOCUMENT_BYTES).await?;
        answer(&auth, &store, &req, &bytes, Flavor::V1).await
    };
    match answer.await {
        Ok(xml) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/xml")))
            .insert_header(("Speke-User-Agent", USER_AGENT))
            .body(xml),
        Err(e) => plain_error(&e),
    }
}

async fn answer(
    auth: &TenantAuth,
    store: &KeyStore,
    req: &HttpRequest,
    body: &[u8],
    flavor: Flavor,
) -> Result<String, ClavisError> {
    let mut doc = parse(body)?;
    let query_content = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "content_id")
        .map(|(_, v)| v.into_owned());
    let plan = plan(&doc, flavor, query_content.as_deref())?;
    let Some((content_id, requests)) = plan else {
        // No content keys asked for (an empty document, recipients only): nothing to make or fill.
        return write(&doc).map_err(|e| ClavisError::internal("cpix write", e));
    };
    let keys = store.get_or_create_by_kid(auth.tenant.id, &content_id, &requests).await?;
    let urls = LicenseUrls::new(&store.public_url());
    fill(&mut doc, &content_id, &keys, &urls, auth.tenant.site_id)?;
    write(&doc).map_err(|e| ClavisError::internal("cpix write", e))
}

fn invalid(message: impl Into<String>) -> ClavisError {
    CpixError::Invalid(message.into()).into()
}

const SCHEMES: [&str; 4] = ["cenc", "cbc1", "cens", "cbcs"];

/// Check the document against what this endpoint answers, and name the content and the keys it asks for.
fn plan(
    doc: &Document,
    flavor: Flavor,
    query_content: Option<&str>,
) -> Result<Option<(ContentId, Vec<KidRequest>)>, ClavisError> {
    match (flavor, doc.version.as_deref()) {
        (Flavor::V2, None) => return Err(CpixError::Version("Missing CPIX@version".into()).into()),
        (Flavor::V2, Some("2.3")) | (Flavor::V1, None | Some("2.0" | "2.1" | "2.2" | "2.3")) => {}
        (_, Some(other)) => return Err(CpixError::Version(format!("Unsupported CPIX@version {other:?}")).into()),
    }
    let content = match flavor {
        Flavor::V2 => doc.content_id.as_deref(),
        Flavor::V1 => doc.content_id.as_deref().or(doc.id.as_deref()).or(query_content),
    };
    if flavor == Flavor::V2 && content.is_none() {
        return Err(invalid("Missing CPIX@contentId"));
    }

    let mut kids = HashSet::new();
    for key in &doc.content_keys {
        if !kids.insert(key.kid) {
            return Err(invalid(format!("ContentKey@kid {} is listed twice", key.kid.to_uuid_string())));
        }
        match key.scheme.as_deref() {
            None if flavor == Flavor::V2 => return Err(invalid("Missing ContentKey@commonEncryptionScheme")),
            Some(s) if !SCHEMES.contains(&s) => {
                return Err(invalid(format!("Unsupported ContentKey@commonEncryptionScheme {s:?}")));
            }
            _ => {}
        }
    }
    for system in &doc.drm_systems {
        if !kids.contains(&system.kid) {
            return Err(invalid(format!("DRMSystem@kid {} names no ContentKey", system.kid.to_uuid_string())));
        }
        if ![WIDEVINE, PLAYREADY, FAIRPLAY, COMMON, HLS_AES128].contains(&system.system_id) {
            return Err(invalid(format!("Unsupported DRMSystem@systemId {}", system.system_id)));
        }
    }
    let mut periods = HashSet::new();
    for period in &doc.periods {
        if !periods.insert(period.id.as_str()) {
            return Err(invalid(format!("ContentKeyPeriod@id {:?} is listed twice", period.id)));
        }
    }
    let mut labels = HashSet::new();
    for rule in &doc.usage_rules {
        if !kids.contains(&rule.kid) {
            return Err(invalid(format!("ContentKeyUsageRule@kid {} names no ContentKey", rule.kid.to_uuid_string())));
        }
        for filter in rule.filters.iter().filter(|f| f.kind == FilterKind::KeyPeriod) {
            let id = filter.attr("periodId").unwrap_or_default();
            if !periods.contains(id) {
                return Err(invalid(format!("KeyPeriodFilter@periodId {id:?} names no ContentKeyPeriod")));
            }
        }
        match rule.intended_track_type.as_deref() {
            Some(label) => {
                labels.insert(label.to_ascii_uppercase());
            }
            None if flavor == Flavor::V2 => return Err(invalid("Missing ContentKeyUsageRule@intendedTrackType")),
            None => {}
        }
    }
    // SPEKE v2: one key for every track (`ALL`) cannot also be a key for some tracks.
    if labels.contains("ALL") && labels.len() > 1 {
        return Err(invalid("ContentKeyUsageRule@intendedTrackType ALL cannot be combined with other track types"));
    }
    if flavor == Flavor::V2
        && let Some(key) = doc.content_keys.iter().find(|k| !doc.usage_rules.iter().any(|r| r.kid == k.kid))
    {
        return Err(invalid(format!(
            "Missing ContentKeyUsageRule@intendedTrackType for ContentKey {}",
            key.kid.to_uuid_string()
        )));
    }

    if doc.content_keys.is_empty() {
        return Ok(None);
    }
    let content =
        content.ok_or_else(|| invalid("Missing CPIX@contentId (or CPIX@id, or the content_id query parameter)"))?;
    let content_id =
        ContentId::parse_field(content, "contentId").map_err(|e| invalid(format!("CPIX@contentId {}", e.detail)))?;
    let requests = doc
        .content_keys
        .iter()
        .map(|key| KidRequest {
            kid: key.kid,
            track_type: track_type(doc.usage_rules.iter().filter(|r| r.kid == key.kid)),
            iv: key.explicit_iv,
            key: match &key.value {
                Some(KeyValue::Plain(k)) => Some(k.clone()),
                // A value encrypted to someone else is not readable here: the key is Clavis's, as for an empty one.
                _ => None,
            },
        })
        .collect();
    Ok(Some((content_id, requests)))
}

/// Largest picture of each video track type (in pixels): SD up to 768x768 (AWS's preset boundary, 589,824), HD up to
/// 1920x1080, UHD1 up to 4096x2160; more is UHD2.
const SD_MAX_PIXELS: u64 = 589_824;
const HD_MAX_PIXELS: u64 = 2_073_600;
const UHD1_MAX_PIXELS: u64 = 8_847_360;

fn by_pixels(pixels: u64) -> TrackType {
    if pixels <= SD_MAX_PIXELS {
        TrackType::Sd
    } else if pixels <= HD_MAX_PIXELS {
        TrackType::Hd
    } else if pixels <= UHD1_MAX_PIXELS {
        TrackType::Uhd1
    } else {
        TrackType::Uhd2
    }
}

/// The Clavis track type of a key from its usage rules: SPEKE's `intendedTrackType` when it is one of Clavis's (any
/// `*AUDIO*` label is AUDIO), else the video filter's pixel bounds, else an audio filter; a key for unbounded video or
/// an unknown label is ALL, which a policy allows only when it allows every track type: the safe reading.
pub fn track_type<'a>(rules: impl Iterator<Item = &'a UsageRule>) -> TrackType {
    let rules: Vec<&UsageRule> = rules.collect();
    for rule in &rules {
        if let Some(label) = rule.intended_track_type.as_deref() {
            let upper = label.to_ascii_uppercase();
            if let Ok(t) = upper.parse::<TrackType>() {
                return t;
            }
            if upper.contains("AUDIO") {
                return TrackType::Audio;
            }
        }
    }
    let number = |rule: &UsageRule, kind: FilterKind, name: &str| {
        rule.filters.iter().filter(|f| f.kind == kind).find_map(|f| f.attr(name)?.trim().parse::<u64>().ok())
    };
    for rule in &rules {
        if let Some(max) = number(rule, FilterKind::Video, "maxPixels") {
            return by_pixels(max);
        }
        if let Some(min) = number(rule, FilterKind::Video, "minPixels") {
            // Only a lower bound: the class that bound starts in (anything above SD starts HD, ...).
            return by_pixels(min);
        }
    }
    let has = |kind: FilterKind| rules.iter().any(|r| r.filters.iter().any(|f| f.kind == kind));
    if has(FilterKind::Audio) && !has(FilterKind::Video) {
        return TrackType::Audio;
    }
    TrackType::All
}

fn scheme_of(name: Option<&str>) -> Scheme {
    match name {
        Some("cbcs" | "cbc1") => Scheme::Cbcs,
        _ => Scheme::Cenc,
    }
}

fn b64(text: &str) -> String {
    STANDARD.encode(text.as_bytes())
}

fn session_key(line: &str) -> String {
    line.replacen("#EXT-X-KEY:", "#EXT-X-SESSION-KEY:", 1)
}

fn cenc_pssh_element(pssh: &[u8]) -> String {
    format!("<cenc:pssh xmlns:cenc=\"{CENC_NAMESPACE}\">{}</cenc:pssh>", STANDARD.encode(pssh))
}

/// What to write into one DRMSystem's elements.
#[derive(Default)]
struct Signalling {
    pssh: Option<String>,
    content_protection: Option<String>,
    uri: Option<String>,
    hls_media: Option<String>,
    smooth: Option<String>,
    key_format: Option<String>,
    protection_header: Option<String>,
}

fn signalling(
    system_id: Uuid,
    key: &ContentKey,
    scheme: Scheme,
    data: &SystemData,
    content_id: &ContentId,
    urls: &LicenseUrls,
    site_id: SiteId,
) -> Signalling {
    match system_id {
        WIDEVINE => {
            let pssh = STANDARD.encode(&data.widevine_pssh);
            Signalling {
                content_protection: Some(b64(&cenc_pssh_element(&data.widevine_pssh))),
                uri: Some(b64(&format!("data:text/plain;base64,{pssh}"))),
                hls_media: Some(hls_widevine(&key.kid, scheme, &data.widevine_pssh)),
                key_format: Some(WIDEVINE_URN.to_owned()),
                pssh: Some(pssh),
                ..Signalling::default()
            }
        }
        PLAYREADY => {
            let pro = STANDARD.encode(&data.playready_pro);
            Signalling {
                pssh: Some(STANDARD.encode(&data.playready_pssh)),
                content_protection: Some(b64(&format!(
                    "{}<mspr:pro xmlns:mspr=\"{MSPR_NAMESPACE}\">{pro}</mspr:pro>",
                    cenc_pssh_element(&data.playready_pssh)
                ))),
                uri: Some(b64(&format!("data:text/plain;charset=UTF-16;base64,{pro}"))),
                hls_media: Some(hls_playready(scheme, &data.playready_pro)),
                smooth: Some(pro.clone()),
                key_format: Some(PLAYREADY_KEYFORMAT.to_owned()),
                protection_header: Some(pro),
            }
        }
        FAIRPLAY => {
            let pssh = pssh_box(FAIRPLAY.as_bytes(), Some(&[key.kid]), &[]);
            Signalling {
                pssh: Some(STANDARD.encode(&pssh)),
                content_protection: Some(b64(&cenc_pssh_element(&pssh))),
                uri: Some(b64(&fairplay_uri(content_id))),
                hls_media: Some(hls_fairplay(content_id)),
                key_format: Some(FAIRPLAY_KEYFORMAT.to_owned()),
                ..Signalling::default()
            }
        }
        HLS_AES128 => {
            let uri = urls.hls_aes(site_id, content_id, &key.kid);
            Signalling {
                hls_media: Some(hls_aes128(&uri, &key.iv)),
                uri: Some(b64(&uri)),
                key_format: Some("identity".to_owned()),
                ..Signalling::default()
            }
        }
        _ => Signalling {
            pssh: Some(STANDARD.encode(&data.common_pssh)),
            content_protection: Some(b64(&format!(
                "{}<clearkey:Laurl xmlns:clearkey=\"{CLEARKEY_NAMESPACE}\" Lic_type=\"EME-1.0\">{}</clearkey:Laurl>",
                cenc_pssh_element(&data.common_pssh),
                escape(urls.clearkey().as_str())
            ))),
            ..Signalling::default()
        },
    }
}

/// Fill the document in: key values, and every signalling element the request named.
fn fill(
    doc: &mut Document,
    content_id: &ContentId,
    keys: &[ContentKey],
    urls: &LicenseUrls,
    site_id: SiteId,
) -> Result<(), ClavisError> {
    let by_kid: HashMap<Kid, &ContentKey> = keys.iter().map(|k| (k.kid, k)).collect();
    let sealer = if doc.recipients.is_empty() { None } else { Some(Sealer::new()?) };
    if let Some(sealer) = &sealer {
        for recipient in &mut doc.recipients {
            sealer.wrap_for(recipient)?;
        }
    }
    let mut schemes = HashMap::new();
    for entry in &mut doc.content_keys {
        let key =
            by_kid.get(&entry.kid).ok_or_else(|| ClavisError::internal("speke", "key missing after get_or_create"))?;
        schemes.insert(entry.kid, scheme_of(entry.scheme.as_deref()));
        entry.value = Some(match &sealer {
            Some(sealer) => sealer.seal(&key.key)?,
            None => KeyValue::Plain(key.key.clone()),
        });
        if entry.explicit_iv.is_some() {
            entry.explicit_iv = Some(key.iv);
        }
    }
    // One key's system data per scheme: FairPlay is cbcs even where the key's other systems are cenc.
    let mut data_cache: HashMap<(Kid, Scheme), SystemData> = HashMap::new();
    for system in &mut doc.drm_systems {
        let key = by_kid.get(&system.kid).ok_or_else(|| ClavisError::internal("speke", "DRMSystem key missing"))?;
        let scheme = schemes.get(&system.kid).copied().unwrap_or(Scheme::Cenc);
        // FairPlay is always cbcs, whatever the key's scheme says.
        let scheme = if system.system_id == FAIRPLAY { Scheme::Cbcs } else { scheme };
        let data = match data_cache.get(&(system.kid, scheme)) {
            Some(data) => data.clone(),
            None => {
                let set = ContentKeySet { content_id: content_id.clone(), keys: vec![(*key).clone()], policy: None };
                let data =
                    SystemData::for_set(&set, urls, scheme).map_err(|e| ClavisError::internal("signalling", e))?;
                data_cache.insert((system.kid, scheme), data.clone());
                data
            }
        };
        let s = signalling(system.system_id, key, scheme, &data, content_id, urls, site_id);
        for field in &mut system.fields {
            let value = match &field.kind {
                FieldKind::Pssh => s.pssh.clone(),
                FieldKind::ContentProtectionData => s.content_protection.clone(),
                FieldKind::UriExtXKey => s.uri.clone(),
                FieldKind::HlsSignalingData { playlist } => {
                    s.hls_media.as_deref().map(|line| match playlist.as_deref() {
                        Some("master") => b64(&session_key(line)),
                        _ => b64(line),
                    })
                }
                FieldKind::SmoothStreamingProtectionHeaderData => s.smooth.clone(),
                FieldKind::KeyFormat => s.key_format.as_deref().map(b64),
                FieldKind::KeyFormatVersions => s.key_format.as_ref().map(|_| b64("1")),
                FieldKind::ProtectionHeader => s.protection_header.clone(),
            };
            // An element this DRM system has no use for stays as the request had it.
            if let Some(value) = value {
                field.value = value;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpix::document::Filter;

    fn rule(label: Option<&str>, filters: Vec<(FilterKind, &[(&str, &str)])>) -> UsageRule {
        UsageRule {
            kid: Kid([0; 16]),
            intended_track_type: label.map(str::to_owned),
            filters: filters
                .into_iter()
                .map(|(kind, attrs)| Filter {
                    kind,
                    attrs: attrs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn track_types_from_labels_and_filters() {
        let of = |r: UsageRule| track_type(std::iter::once(&r));
        assert_eq!(of(rule(Some("UHD1"), vec![])), TrackType::Uhd1);
        assert_eq!(of(rule(Some("sd"), vec![])), TrackType::Sd);
        assert_eq!(of(rule(Some("STEREO_AUDIO"), vec![])), TrackType::Audio);
        assert_eq!(of(rule(Some("MULTICHANNEL_AUDIO"), vec![])), TrackType::Audio);
        assert_eq!(of(rule(Some("VIDEO"), vec![])), TrackType::All);
        assert_eq!(of(rule(Some("VIDEO"), vec![(FilterKind::Video, &[("maxPixels", "589824")])])), TrackType::Sd);
        assert_eq!(of(rule(None, vec![(FilterKind::Video, &[("minPixels", "589825")])])), TrackType::Hd);
        assert_eq!(of(rule(None, vec![(FilterKind::Video, &[("maxPixels", "8847360")])])), TrackType::Uhd1);
        assert_eq!(of(rule(None, vec![(FilterKind::Video, &[("minPixels", "8847361")])])), TrackType::Uhd2);
        assert_eq!(of(rule(None, vec![(FilterKind::Audio, &[])])), TrackType::Audio);
        assert_eq!(of(rule(Some("SUBTITLES"), vec![])), TrackType::All);
        assert_eq!(track_type(std::iter::empty()), TrackType::All);
    }
}
