//! Writing a [`Document`] as CPIX XML with the usual prefixes (`cpix`, `pskc`, `enc`, `ds`, `speke`), children in
//! the order the request had them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::document::*;
use super::{ALG_AES256_CBC, ALG_HMAC_SHA512, ALG_RSA_OAEP_MGF1P, CPIX_NS, DS_NS, ENC_NS, PSKC_NS, SPEKE_NS};

type W = Writer<Vec<u8>>;
type R = std::io::Result<()>;

fn text_element(w: &mut W, name: &str, text: &str) -> R {
    if text.is_empty() {
        w.create_element(name).write_empty()?;
    } else {
        w.create_element(name).write_text_content(BytesText::new(text))?;
    }
    Ok(())
}

/// `enc:EncryptionMethod` and `enc:CipherData/enc:CipherValue`.
fn cipher(w: &mut W, algorithm: &str, value: &[u8]) -> R {
    w.create_element("enc:EncryptionMethod").with_attribute(("Algorithm", algorithm)).write_empty()?;
    w.create_element("enc:CipherData")
        .write_inner_content(|w| text_element(w, "enc:CipherValue", &STANDARD.encode(value)))?;
    Ok(())
}

fn recipient(w: &mut W, r: &Recipient) -> R {
    let mut el = w.create_element("cpix:DeliveryData");
    if let Some(id) = &r.id {
        el = el.with_attribute(("id", id.as_str()));
    }
    el.write_inner_content(|w| {
        w.create_element("cpix:DeliveryKey").write_inner_content(|w| {
            w.create_element("ds:X509Data")
                .write_inner_content(|w| text_element(w, "ds:X509Certificate", &STANDARD.encode(&r.certificate)))?;
            Ok(())
        })?;
        if let Some(wrapped) = &r.wrapped {
            w.create_element("cpix:DocumentKey").with_attribute(("Algorithm", ALG_AES256_CBC)).write_inner_content(
                |w| {
                    w.create_element("cpix:Data").write_inner_content(|w| {
                        w.create_element("pskc:Secret").write_inner_content(|w| {
                            w.create_element("pskc:EncryptedValue")
                                .write_inner_content(|w| cipher(w, ALG_RSA_OAEP_MGF1P, &wrapped.document_key))?;
                            Ok(())
                        })?;
                        Ok(())
                    })?;
                    Ok(())
                },
            )?;
            w.create_element("cpix:MACMethod").with_attribute(("Algorithm", ALG_HMAC_SHA512)).write_inner_content(
                |w| {
                    w.create_element("cpix:Key")
                        .write_inner_content(|w| cipher(w, ALG_RSA_OAEP_MGF1P, &wrapped.mac_key))?;
                    Ok(())
                },
            )?;
        }
        Ok(())
    })?;
    Ok(())
}

fn content_key(w: &mut W, key: &ContentKey) -> R {
    let kid = key.kid.to_uuid_string();
    let iv = key.explicit_iv.map(|iv| STANDARD.encode(iv));
    let mut el = w.create_element("cpix:ContentKey").with_attribute(("kid", kid.as_str()));
    if let Some(id) = &key.id {
        el = el.with_attribute(("id", id.as_str()));
    }
    if let Some(iv) = &iv {
        el = el.with_attribute(("explicitIV", iv.as_str()));
    }
    if let Some(scheme) = &key.scheme {
        el = el.with_attribute(("commonEncryptionScheme", scheme.as_str()));
    }
    let Some(value) = &key.value else {
        el.write_empty()?;
        return Ok(());
    };
    el.write_inner_content(|w| {
        w.create_element("cpix:Data").write_inner_content(|w| {
            w.create_element("pskc:Secret").write_inner_content(|w| {
                match value {
                    KeyValue::Plain(k) => text_element(w, "pskc:PlainValue", &STANDARD.encode(**k))?,
                    KeyValue::Encrypted { cipher: c, mac } => {
                        w.create_element("pskc:EncryptedValue")
                            .write_inner_content(|w| cipher(w, ALG_AES256_CBC, c))?;
                        if let Some(mac) = mac {
                            text_element(w, "pskc:ValueMAC", &STANDARD.encode(mac))?;
                        }
                    }
                }
                Ok(())
            })?;
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(())
}

fn drm_system(w: &mut W, system: &DrmSystem) -> R {
    let kid = system.kid.to_uuid_string();
    let system_id = system.system_id.hyphenated().to_string();
    let mut el = w
        .create_element("cpix:DRMSystem")
        .with_attribute(("kid", kid.as_str()))
        .with_attribute(("systemId", system_id.as_str()));
    if let Some(id) = &system.id {
        el = el.with_attribute(("id", id.as_str()));
    }
    if system.fields.is_empty() {
        el.write_empty()?;
        return Ok(());
    }
    el.write_inner_content(|w| {
        for field in &system.fields {
            let name = match &field.kind {
                FieldKind::Pssh => "cpix:PSSH",
                FieldKind::ContentProtectionData => "cpix:ContentProtectionData",
                FieldKind::UriExtXKey => "cpix:URIExtXKey",
                FieldKind::HlsSignalingData { playlist } => {
                    let mut el = w.create_element("cpix:HLSSignalingData");
                    if let Some(p) = playlist {
                        el = el.with_attribute(("playlist", p.as_str()));
                    }
                    if field.value.is_empty() {
                        el.write_empty()?;
                    } else {
                        el.write_text_content(BytesText::new(&field.value))?;
                    }
                    continue;
                }
                FieldKind::SmoothStreamingProtectionHeaderData => "cpix:SmoothStreamingProtectionHeaderData",
                FieldKind::KeyFormat => "speke:KeyFormat",
                FieldKind::KeyFormatVersions => "speke:KeyFormatVersions",
                FieldKind::ProtectionHeader => "speke:ProtectionHeader",
            };
            text_element(w, name, &field.value)?;
        }
        Ok(())
    })?;
    Ok(())
}

fn period(w: &mut W, p: &KeyPeriod) -> R {
    let index = p.index.map(|i| i.to_string());
    let mut el = w.create_element("cpix:ContentKeyPeriod").with_attribute(("id", p.id.as_str()));
    if let Some(index) = &index {
        el = el.with_attribute(("index", index.as_str()));
    }
    if let Some(start) = &p.start {
        el = el.with_attribute(("start", start.as_str()));
    }
    if let Some(end) = &p.end {
        el = el.with_attribute(("end", end.as_str()));
    }
    el.write_empty()?;
    Ok(())
}

fn usage_rule(w: &mut W, rule: &UsageRule) -> R {
    let kid = rule.kid.to_uuid_string();
    let mut el = w.create_element("cpix:ContentKeyUsageRule").with_attribute(("kid", kid.as_str()));
    if let Some(t) = &rule.intended_track_type {
        el = el.with_attribute(("intendedTrackType", t.as_str()));
    }
    if rule.filters.is_empty() {
        el.write_empty()?;
        return Ok(());
    }
    el.write_inner_content(|w| {
        for filter in &rule.filters {
            let name = format!("cpix:{}", filter.kind.element());
            let mut el = w.create_element(name.as_str());
            for (k, v) in &filter.attrs {
                el = el.with_attribute((k.as_str(), v.as_str()));
            }
            el.write_empty()?;
        }
        Ok(())
    })?;
    Ok(())
}

fn list<T>(w: &mut W, name: &str, items: &[T], each: impl Fn(&mut W, &T) -> R) -> R {
    if items.is_empty() {
        return Ok(());
    }
    w.create_element(name).write_inner_content(|w| {
        for item in items {
            each(w, item)?;
        }
        Ok(())
    })?;
    Ok(())
}

/// The document as UTF-8 XML with an XML declaration.
pub fn write(doc: &Document) -> Result<String, std::io::Error> {
    let mut w = Writer::new_with_indent(Vec::with_capacity(4096), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let mut root = w.create_element("cpix:CPIX");
    for (name, value) in
        [("id", &doc.id), ("contentId", &doc.content_id), ("version", &doc.version), ("name", &doc.name)]
    {
        if let Some(value) = value {
            root = root.with_attribute((name, value.as_str()));
        }
    }
    root = root
        .with_attribute(("xmlns:cpix", CPIX_NS))
        .with_attribute(("xmlns:pskc", PSKC_NS))
        .with_attribute(("xmlns:enc", ENC_NS))
        .with_attribute(("xmlns:ds", DS_NS))
        .with_attribute(("xmlns:speke", SPEKE_NS));
    root.write_inner_content(|w| {
        list(w, "cpix:DeliveryDataList", &doc.recipients, recipient)?;
        list(w, "cpix:ContentKeyList", &doc.content_keys, content_key)?;
        list(w, "cpix:DRMSystemList", &doc.drm_systems, drm_system)?;
        list(w, "cpix:ContentKeyPeriodList", &doc.periods, period)?;
        list(w, "cpix:ContentKeyUsageRuleList", &doc.usage_rules, usage_rule)?;
        Ok(())
    })?;
    String::from_utf8(w.into_inner()).map_err(std::io::Error::other)
}
