//! Reading a CPIX document: bytes (UTF-8 or UTF-16, any namespace prefixes) to a small namespace-resolved tree under
//! strict bounds, then the tree to [`Document`]. Nothing here panics on input; every refusal names what is wrong.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clavis_core::ids::Kid;
use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::{NsReader, XmlVersion};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::document::*;
use super::{CPIX_NS, CpixError, DS_NS, ENC_NS, PSKC_NS, SPEKE_NS};

/// Largest CPIX document accepted (the biggest DASH-IF vector, UTF-16 and signed, is under 100 KB).
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
const MAX_DEPTH: usize = 32;
const MAX_ELEMENTS: usize = 20_000;
const MAX_ATTRIBUTES: usize = 32;
const MAX_TEXT: usize = 256 * 1024;
const MAX_ATTRIBUTE_VALUE: usize = 4096;
pub const MAX_CONTENT_KEYS: usize = 256;
pub const MAX_DRM_SYSTEMS: usize = 2048;
pub const MAX_RECIPIENTS: usize = 16;
pub const MAX_PERIODS: usize = 1024;
pub const MAX_USAGE_RULES: usize = 1024;

fn malformed(message: impl Into<String>) -> CpixError {
    CpixError::Malformed(message.into())
}

/// One element of the tree: its namespace, local name, unqualified attributes (namespaced ones other than `xmlns`
/// are ignored: CPIX defines none), text and children.
#[derive(Debug, Default)]
struct Node {
    ns: Option<String>,
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn is(&self, ns: &str, name: &str) -> bool {
        self.ns.as_deref() == Some(ns) && self.name == name
    }

    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn child(&self, ns: &str, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    fn children_named<'a>(&'a self, ns: &'a str, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    fn path(&self) -> String {
        self.name.clone()
    }
}

/// The document's text as UTF-8: a UTF-16 byte-order mark selects UTF-16 (the XML declaration's `encoding` is then
/// moot), a UTF-8 one is dropped.
pub(crate) fn decode(bytes: &[u8]) -> Result<String, CpixError> {
    let utf16 = |bytes: &[u8], le: bool| -> Result<String, CpixError> {
        if !bytes.len().is_multiple_of(2) {
            return Err(malformed("the UTF-16 document has an odd number of bytes"));
        }
        let units = bytes
            .chunks_exact(2)
            .map(|c| if le { u16::from_le_bytes([c[0], c[1]]) } else { u16::from_be_bytes([c[0], c[1]]) });
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|_| malformed("the UTF-16 document holds an unpaired surrogate"))
    };
    match bytes {
        [0xFF, 0xFE, rest @ ..] => utf16(rest, true),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, false),
        // UTF-16 without a byte-order mark: `<` followed or preceded by a zero byte.
        [b'<', 0, ..] => utf16(bytes, true),
        [0, b'<', ..] => utf16(bytes, false),
        _ => {
            let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
            String::from_utf8(bytes.to_vec())
                .map_err(|_| malformed("the document is not UTF-8 (nor UTF-16 with a byte-order mark)"))
        }
    }
}

fn namespace(resolved: ResolveResult<'_>) -> Result<Option<String>, CpixError> {
    match resolved {
        ResolveResult::Bound(Namespace(ns)) => Ok(Some(ns.to_owned())),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(prefix) => Err(malformed(format!("undeclared namespace prefix {:?}", prefix))),
    }
}

fn tree(text: &str) -> Result<Node, CpixError> {
    let mut reader = NsReader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut elements = 0usize;
    let xml_error = |e: quick_xml::Error| malformed(format!("not well-formed XML: {e}"));
    loop {
        let (resolved, event) = reader.read_resolved_event().map_err(xml_error)?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if root.is_some() {
                    return Err(malformed("content after the root element"));
                }
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(malformed(format!("more than {MAX_ELEMENTS} elements")));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(malformed(format!("elements nested deeper than {MAX_DEPTH}")));
                }
                let ns = namespace(resolved)?;
                let name = e.local_name().as_ref().to_owned();
                let mut node = Node { ns, name, ..Node::default() };
                for attr in e.attributes() {
                    let attr = attr.map_err(|e| malformed(format!("attribute of {}: {e}", node.name)))?;
                    if attr.key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let (attr_ns, local) = reader.resolver().resolve_attribute(attr.key);
                    if namespace(attr_ns)?.is_some() {
                        continue;
                    }
                    if node.attrs.len() >= MAX_ATTRIBUTES {
                        return Err(malformed(format!("{} has more than {MAX_ATTRIBUTES} attributes", node.name)));
                    }
                    let value = attr
                        .normalized_value(XmlVersion::Implicit1_0)
                        .map_err(|e| malformed(format!("attribute of {}: {e}", node.name)))?;
                    if value.len() > MAX_ATTRIBUTE_VALUE {
                        return Err(malformed(format!(
                            "an attribute of {} is longer than {MAX_ATTRIBUTE_VALUE} bytes",
                            node.name
                        )));
                    }
                    let local = local.as_ref().to_owned();
                    node.attrs.push((local, value.into_owned()));
                }
                if matches!(event, Event::Start(_)) {
                    stack.push(node);
                } else {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(node),
                        None => root = Some(node),
                    }
                }
            }
            Event::End(_) => {
                let node = stack.pop().ok_or_else(|| malformed("unbalanced end tag"))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::Text(t) => append_text(&mut stack, &t.xml10_content())?,
            Event::CData(c) => append_text(&mut stack, &c.xml10_content())?,
            Event::GeneralRef(r) => {
                let name = r.xml10_content();
                let resolved = match quick_xml::escape::resolve_predefined_entity(&name) {
                    Some(s) => s.to_owned(),
                    None => match r.resolve_char_ref().map_err(xml_error)? {
                        Some(c) => c.to_string(),
                        None => return Err(malformed(format!("unknown entity &{name};"))),
                    },
                };
                append_text(&mut stack, &resolved)?;
            }
            Event::DocType(_) => return Err(malformed("document type declarations are not accepted")),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(malformed("not well-formed XML: the document ends inside an element"));
    }
    root.ok_or_else(|| malformed("the document has no root element"))
}

fn append_text(stack: &mut [Node], text: &str) -> Result<(), CpixError> {
    match stack.last_mut() {
        Some(node) => {
            if node.text.len() + text.len() > MAX_TEXT {
                return Err(malformed(format!("the text of {} is longer than {MAX_TEXT} bytes", node.name)));
            }
            node.text.push_str(text);
            Ok(())
        }
        // Whitespace around the root element.
        None if text.trim().is_empty() => Ok(()),
        None => Err(malformed("text outside the root element")),
    }
}

fn kid_attr(node: &Node, what: &str) -> Result<Kid, CpixError> {
    let text = node.attr("kid").ok_or_else(|| CpixError::Invalid(format!("Missing {what}@kid")))?;
    parse_uuid(text).map(|u| Kid(u.into_bytes())).map_err(|_| malformed(format!("{what}@kid {text:?} is not a UUID")))
}

fn parse_uuid(text: &str) -> Result<Uuid, ()> {
    // Only the hyphenated form (xs:string pattern of CPIX's UUIDType); braces and URNs are not CPIX.
    if text.len() != 36 {
        return Err(());
    }
    Uuid::try_parse(text).map_err(|_| ())
}

fn base64_text(node: &Node, what: &str) -> Result<Vec<u8>, CpixError> {
    let compact: String = node.text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(compact.as_bytes()).map_err(|_| malformed(format!("{what} is not base64")))
}

fn optional_attr(node: &Node, name: &str) -> Option<String> {
    node.attr(name).map(str::to_owned)
}

/// Parse a CPIX document.
pub fn parse(bytes: &[u8]) -> Result<Document, CpixError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(malformed(format!("the document is larger than {MAX_DOCUMENT_BYTES} bytes")));
    }
    let text = decode(bytes)?;
    let root = tree(&text)?;
    if !root.is(CPIX_NS, "CPIX") {
        return Err(malformed(format!(
            "the root element must be CPIX in namespace {CPIX_NS}, not {:?} in {:?}",
            root.name,
            root.ns.as_deref().unwrap_or("no namespace")
        )));
    }
    // Signatures are verified on the same text, only once the bounded parse above accepted it.
    if super::signature::may_be_signed(&text) {
        super::signature::verify(&text)?;
    }
    let mut doc = Document {
        id: optional_attr(&root, "id"),
        content_id: optional_attr(&root, "contentId"),
        version: optional_attr(&root, "version"),
        name: optional_attr(&root, "name"),
        ..Document::default()
    };
    for list in &root.children {
        if list.ns.as_deref() != Some(CPIX_NS) {
            continue;
        }
        match list.name.as_str() {
            "DeliveryDataList" => {
                for item in list.children_named(CPIX_NS, "DeliveryData") {
                    if doc.recipients.len() >= MAX_RECIPIENTS {
                        return Err(CpixError::Invalid(format!("more than {MAX_RECIPIENTS} DeliveryData")));
                    }
                    doc.recipients.push(recipient(item)?);
                }
            }
            "ContentKeyList" => {
                for item in list.children_named(CPIX_NS, "ContentKey") {
                    if doc.content_keys.len() >= MAX_CONTENT_KEYS {
                        return Err(CpixError::Invalid(format!("more than {MAX_CONTENT_KEYS} ContentKey elements")));
                    }
                    doc.content_keys.push(content_key(item)?);
                }
            }
            "DRMSystemList" => {
                for item in list.children_named(CPIX_NS, "DRMSystem") {
                    if doc.drm_systems.len() >= MAX_DRM_SYSTEMS {
                        return Err(CpixError::Invalid(format!("more than {MAX_DRM_SYSTEMS} DRMSystem elements")));
                    }
                    doc.drm_systems.push(drm_system(item)?);
                }
            }
            "ContentKeyPeriodList" => {
                for item in list.children_named(CPIX_NS, "ContentKeyPeriod") {
                    if doc.periods.len() >= MAX_PERIODS {
                        return Err(CpixError::Invalid(format!("more than {MAX_PERIODS} ContentKeyPeriod elements")));
                    }
                    doc.periods.push(period(item)?);
                }
            }
            "ContentKeyUsageRuleList" => {
                for item in list.children_named(CPIX_NS, "ContentKeyUsageRule") {
                    if doc.usage_rules.len() >= MAX_USAGE_RULES {
                        return Err(CpixError::Invalid(format!(
                            "more than {MAX_USAGE_RULES} ContentKeyUsageRule elements"
                        )));
                    }
                    doc.usage_rules.push(usage_rule(item)?);
                }
            }
            // UpdateHistoryItemList, Signature and extensions are not a key server's business.
            _ => {}
        }
    }
    Ok(doc)
}

fn recipient(node: &Node) -> Result<Recipient, CpixError> {
    let cert = node
        .child(CPIX_NS, "DeliveryKey")
        .and_then(|k| k.child(DS_NS, "X509Data"))
        .and_then(|d| d.child(DS_NS, "X509Certificate"))
        .ok_or_else(|| CpixError::Invalid("Missing DeliveryData/DeliveryKey/ds:X509Data/ds:X509Certificate".into()))?;
    let certificate = base64_text(cert, "ds:X509Certificate")?;
    let document_key = node
        .child(CPIX_NS, "DocumentKey")
        .and_then(|k| k.child(CPIX_NS, "Data"))
        .and_then(|d| d.child(PSKC_NS, "Secret"))
        .and_then(|s| s.child(PSKC_NS, "EncryptedValue"))
        .map(encrypted_value)
        .transpose()?;
    let mac_key = node.child(CPIX_NS, "MACMethod").and_then(|m| m.child(CPIX_NS, "Key")).map(|key| {
        // CPIX 2.3 writes xenc:EncryptedDataType children directly under Key; some writers wrap them in
        // pskc:EncryptedValue.
        match key.child(PSKC_NS, "EncryptedValue") {
            Some(value) => encrypted_value(value),
            None => encrypted_value(key),
        }
    });
    let mac_key = mac_key.transpose()?;
    let wrapped = match (document_key, mac_key) {
        (Some(document_key), Some(mac_key)) => Some(WrappedKeys { document_key, mac_key }),
        _ => None,
    };
    Ok(Recipient { id: optional_attr(node, "id"), certificate, wrapped })
}

/// The bytes of `enc:CipherData/enc:CipherValue` under `node`.
fn encrypted_value(node: &Node) -> Result<Vec<u8>, CpixError> {
    let value = node
        .child(ENC_NS, "CipherData")
        .and_then(|d| d.child(ENC_NS, "CipherValue"))
        .ok_or_else(|| CpixError::Invalid(format!("Missing {}/enc:CipherData/enc:CipherValue", node.path())))?;
    base64_text(value, "enc:CipherValue")
}

fn content_key(node: &Node) -> Result<ContentKey, CpixError> {
    let kid = kid_attr(node, "ContentKey")?;
    let explicit_iv = node.attr("explicitIV").map(parse_iv).transpose()?;
    let secret = node.child(CPIX_NS, "Data").and_then(|d| d.child(PSKC_NS, "Secret"));
    let value = match secret {
        None => None,
        Some(secret) => {
            if let Some(plain) = secret.child(PSKC_NS, "PlainValue") {
                let bytes = base64_text(plain, "pskc:PlainValue")?;
                let key = <[u8; 16]>::try_from(bytes.as_slice()).map_err(|_| {
                    CpixError::Invalid(format!("the key of ContentKey {} is not 16 bytes", kid.to_uuid_string()))
                })?;
                Some(KeyValue::Plain(Zeroizing::new(key)))
            } else if let Some(encrypted) = secret.child(PSKC_NS, "EncryptedValue") {
                let cipher = encrypted_value(encrypted)?;
                let mac = secret.child(PSKC_NS, "ValueMAC").map(|m| base64_text(m, "pskc:ValueMAC")).transpose()?;
                Some(KeyValue::Encrypted { cipher, mac })
            } else {
                None
            }
        }
    };
    Ok(ContentKey {
        kid,
        id: optional_attr(node, "id"),
        explicit_iv,
        scheme: optional_attr(node, "commonEncryptionScheme"),
        value,
    })
}

fn parse_iv(text: &str) -> Result<[u8; 16], CpixError> {
    let bad = || malformed(format!("ContentKey@explicitIV {text:?} is not base64 of 16 bytes"));
    if let Ok(uuid) = parse_uuid(text) {
        return Ok(uuid.into_bytes());
    }
    let bytes = STANDARD.decode(text.trim()).map_err(|_| bad())?;
    <[u8; 16]>::try_from(bytes.as_slice()).map_err(|_| bad())
}

fn drm_system(node: &Node) -> Result<DrmSystem, CpixError> {
    let kid = kid_attr(node, "DRMSystem")?;
    let system_id = node.attr("systemId").ok_or_else(|| CpixError::Invalid("Missing DRMSystem@systemId".into()))?;
    let system_id =
        parse_uuid(system_id).map_err(|_| malformed(format!("DRMSystem@systemId {system_id:?} is not a UUID")))?;
    let mut fields = Vec::new();
    for child in &node.children {
        let kind = match (child.ns.as_deref(), child.name.as_str()) {
            (Some(CPIX_NS), "PSSH") => FieldKind::Pssh,
            (Some(CPIX_NS), "ContentProtectionData") => FieldKind::ContentProtectionData,
            (Some(CPIX_NS), "URIExtXKey") => FieldKind::UriExtXKey,
            (Some(CPIX_NS), "HLSSignalingData") => {
                let playlist = optional_attr(child, "playlist");
                if let Some(p) = playlist.as_deref()
                    && p != "media"
                    && p != "master"
                {
                    return Err(malformed(format!("HLSSignalingData@playlist must be media or master, not {p:?}")));
                }
                FieldKind::HlsSignalingData { playlist }
            }
            (Some(CPIX_NS), "SmoothStreamingProtectionHeaderData") => FieldKind::SmoothStreamingProtectionHeaderData,
            (Some(SPEKE_NS), "KeyFormat") => FieldKind::KeyFormat,
            (Some(SPEKE_NS), "KeyFormatVersions") => FieldKind::KeyFormatVersions,
            (Some(SPEKE_NS), "ProtectionHeader") => FieldKind::ProtectionHeader,
            _ => continue,
        };
        fields.push(Field { kind, value: child.text.trim().to_owned() });
    }
    Ok(DrmSystem { kid, system_id, id: optional_attr(node, "id"), fields })
}

fn period(node: &Node) -> Result<KeyPeriod, CpixError> {
    let id = node.attr("id").ok_or_else(|| CpixError::Invalid("Missing ContentKeyPeriod@id".into()))?.to_owned();
    let index = node
        .attr("index")
        .map(|i| {
            i.trim().parse::<u64>().map_err(|_| malformed(format!("ContentKeyPeriod@index {i:?} is not a number")))
        })
        .transpose()?;
    Ok(KeyPeriod { id, index, start: optional_attr(node, "start"), end: optional_attr(node, "end") })
}

const NUMERIC_FILTER_ATTRS: [&str; 10] = [
    "minPixels",
    "maxPixels",
    "minFps",
    "maxFps",
    "minChannels",
    "maxChannels",
    "minBitrate",
    "maxBitrate",
    "minBitsPerSample",
    "maxBitsPerSample",
];

fn usage_rule(node: &Node) -> Result<UsageRule, CpixError> {
    let kid = kid_attr(node, "ContentKeyUsageRule")?;
    let mut filters = Vec::new();
    for child in node.children.iter().filter(|c| c.ns.as_deref() == Some(CPIX_NS)) {
        let kind = match child.name.as_str() {
            "KeyPeriodFilter" => FilterKind::KeyPeriod,
            "LabelFilter" => FilterKind::Label,
            "VideoFilter" => FilterKind::Video,
            "AudioFilter" => FilterKind::Audio,
            "BitrateFilter" => FilterKind::Bitrate,
            _ => continue,
        };
        for (name, value) in &child.attrs {
            if NUMERIC_FILTER_ATTRS.contains(&name.as_str()) && value.trim().parse::<u64>().is_err() {
                return Err(malformed(format!("{}@{name} {value:?} is not a number", child.name)));
            }
            if (name == "hdr" || name == "wcg") && !matches!(value.trim(), "true" | "false" | "1" | "0") {
                return Err(malformed(format!("{}@{name} {value:?} is not a boolean", child.name)));
            }
        }
        let filter = Filter { kind, attrs: child.attrs.clone() };
        match filter.kind {
            FilterKind::KeyPeriod if filter.attr("periodId").is_none() => {
                return Err(CpixError::Invalid("Missing KeyPeriodFilter@periodId".into()));
            }
            FilterKind::Label if filter.attr("label").is_none() => {
                return Err(CpixError::Invalid("Missing LabelFilter@label".into()));
            }
            _ => {}
        }
        filters.push(filter);
    }
    Ok(UsageRule { kid, intended_track_type: optional_attr(node, "intendedTrackType"), filters })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        "[^\\p{Cc}]{0,16}"
    }

    fn b64ish() -> impl Strategy<Value = String> {
        "[A-Za-z0-9+/=]{0,24}"
    }

    fn kid() -> impl Strategy<Value = Kid> {
        any::<[u8; 16]>().prop_map(Kid)
    }

    fn field() -> impl Strategy<Value = Field> {
        let kind = prop_oneof![
            Just(FieldKind::Pssh),
            Just(FieldKind::ContentProtectionData),
            Just(FieldKind::UriExtXKey),
            proptest::option::of(prop_oneof![Just("media".to_owned()), Just("master".to_owned())])
                .prop_map(|playlist| FieldKind::HlsSignalingData { playlist }),
            Just(FieldKind::SmoothStreamingProtectionHeaderData),
            Just(FieldKind::KeyFormat),
            Just(FieldKind::KeyFormatVersions),
            Just(FieldKind::ProtectionHeader),
        ];
        (kind, b64ish()).prop_map(|(kind, value)| Field { kind, value })
    }

    fn filter() -> impl Strategy<Value = Filter> {
        let attrs = |pairs: Vec<(&str, String)>| pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<Vec<_>>();
        prop_oneof![
            "[a-z0-9_]{1,8}"
                .prop_map(move |id| Filter { kind: FilterKind::KeyPeriod, attrs: attrs(vec![("periodId", id)]) }),
            text().prop_map(move |l| Filter { kind: FilterKind::Label, attrs: attrs(vec![("label", l)]) }),
            (any::<u32>(), any::<u32>()).prop_map(move |(a, b)| Filter {
                kind: FilterKind::Video,
                attrs: attrs(vec![("minPixels", a.to_string()), ("maxPixels", b.to_string()), ("hdr", "true".into())])
            }),
            any::<u8>().prop_map(move |c| Filter {
                kind: FilterKind::Audio,
                attrs: attrs(vec![("maxChannels", c.to_string())])
            }),
            Just(Filter { kind: FilterKind::Bitrate, attrs: vec![] }),
        ]
    }

    fn document() -> impl Strategy<Value = Document> {
        let recipient = (
            proptest::option::of(text()),
            proptest::collection::vec(any::<u8>(), 0..40),
            proptest::option::of((
                proptest::collection::vec(any::<u8>(), 0..40),
                proptest::collection::vec(any::<u8>(), 0..40),
            )),
        )
            .prop_map(|(id, certificate, wrapped)| Recipient {
                id,
                certificate,
                wrapped: wrapped.map(|(document_key, mac_key)| WrappedKeys { document_key, mac_key }),
            });
        let value = prop_oneof![
            any::<[u8; 16]>().prop_map(|k| KeyValue::Plain(Zeroizing::new(k))),
            (
                proptest::collection::vec(any::<u8>(), 0..64),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 1..64))
            )
                .prop_map(|(cipher, mac)| KeyValue::Encrypted { cipher, mac }),
        ];
        let content_key = (
            kid(),
            proptest::option::of(text()),
            proptest::option::of(any::<[u8; 16]>()),
            proptest::option::of(text()),
            proptest::option::of(value),
        )
            .prop_map(|(kid, id, explicit_iv, scheme, value)| ContentKey {
                kid,
                id,
                explicit_iv,
                scheme,
                value,
            });
        let system = (kid(), any::<u128>(), proptest::option::of(text()), proptest::collection::vec(field(), 0..5))
            .prop_map(|(kid, id, sid, fields)| DrmSystem { kid, system_id: Uuid::from_u128(id), id: sid, fields });
        let period = (
            "[a-z0-9_]{1,8}",
            proptest::option::of(any::<u64>()),
            proptest::option::of(text()),
            proptest::option::of(text()),
        )
            .prop_map(|(id, index, start, end)| KeyPeriod { id, index, start, end });
        let rule = (kid(), proptest::option::of(text()), proptest::collection::vec(filter(), 0..4))
            .prop_map(|(kid, intended_track_type, filters)| UsageRule { kid, intended_track_type, filters });
        (
            (
                proptest::option::of(text()),
                proptest::option::of(text()),
                proptest::option::of(text()),
                proptest::option::of(text()),
            ),
            proptest::collection::vec(recipient, 0..3),
            proptest::collection::vec(content_key, 0..4),
            proptest::collection::vec(system, 0..4),
            proptest::collection::vec(period, 0..3),
            proptest::collection::vec(rule, 0..3),
        )
            .prop_map(
                |((id, content_id, version, name), recipients, content_keys, drm_systems, periods, usage_rules)| {
                    Document {
                        id,
                        content_id,
                        version,
                        name,
                        recipients,
                        content_keys,
                        drm_systems,
                        periods,
                        usage_rules,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn arbitrary_xml_like_text_never_panics(text in "(<[a-zA-Z:]{1,6}( [a-z:]{1,5}=\"[^\"]{0,8}\")*/?>|</[a-zA-Z:]{1,6}>|[^<]{0,10}|&[a-z#0-9]{0,5};){0,30}") {
            let _ = parse(format!("<CPIX xmlns='urn:dashif:org:cpix'>{text}</CPIX>").as_bytes());
        }

        #[test]
        fn written_documents_read_back_the_same(doc in document()) {
            let xml = crate::cpix::write::write(&doc).unwrap();
            let back = parse(xml.as_bytes()).unwrap();
            prop_assert_eq!(back, doc);
        }
    }

    #[test]
    fn utf16_and_prefixes() {
        let xml = r#"<?xml version="1.0" encoding="utf-16"?><x:CPIX xmlns:x="urn:dashif:org:cpix" contentId="c&amp;1"><x:ContentKeyList><x:ContentKey kid="6c5f5206-7d98-4808-84d8-94f132c1e9fe"/></x:ContentKeyList></x:CPIX>"#;
        let mut bytes = vec![0xFF, 0xFE];
        for unit in xml.encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        let doc = parse(&bytes).unwrap();
        assert_eq!(doc.content_id.as_deref(), Some("c&1"));
        assert_eq!(doc.content_keys.len(), 1);
        assert_eq!(doc.content_keys[0].kid.to_uuid_string(), "6c5f5206-7d98-4808-84d8-94f132c1e9fe");
    }

    #[test]
    fn refusals() {
        let malformed = |xml: &str| matches!(parse(xml.as_bytes()), Err(CpixError::Malformed(_)));
        assert!(malformed("<CPIX"));
        assert!(malformed("<CPIX xmlns='urn:other'/>"));
        assert!(malformed("<c:CPIX xmlns:c='urn:dashif:org:cpix'></d:CPIX>"));
        assert!(malformed("<!DOCTYPE x [<!ENTITY a 'b'>]><CPIX xmlns='urn:dashif:org:cpix'/>"));
        assert!(malformed(
            "<CPIX xmlns='urn:dashif:org:cpix'><ContentKeyList><ContentKey kid='nope'/></ContentKeyList></CPIX>"
        ));
        assert!(malformed("<CPIX xmlns='urn:dashif:org:cpix'>&foo;</CPIX>"));
        let deep = format!("<CPIX xmlns='urn:dashif:org:cpix'>{}{}</CPIX>", "<a>".repeat(40), "</a>".repeat(40));
        assert!(malformed(&deep));
        assert!(parse("<CPIX xmlns='urn:dashif:org:cpix'/>".as_bytes()).is_ok());
    }
}
