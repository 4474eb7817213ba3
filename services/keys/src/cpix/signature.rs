//! XML-DSig verification of signed CPIX documents: the document signature (`Reference URI=""` with the
//! enveloped-signature transform) and the signatures over lists referenced by id (`Reference URI="#ContentKeyList"`),
//! as the DASH-IF vectors (Axinom.Cpix) and packagers write them.
//!
//! Canonicalisation is the hard part of XML-DSig, so it is not written here: `bergshamra-c14n` does it. Why that
//! crate: it is pure safe Rust (`forbid(unsafe_code)`, no C library, so nothing to add to the machine or CI), small
//! (its own XML tree `uppsala`, `memchr`, `thiserror`), implements all of inclusive C14N 1.0/1.1 and exclusive C14N
//! on document subsets (node sets, which the enveloped transform and `#id` references need), and is byte-exact on the
//! DASH-IF vectors (their digests are checked in the tests below, including the UTF-16, pretty-printed, commented
//! `EvenMoreComplex`). The alternatives: `xmlsec` (bindings to libxmlsec1: C, bindgen, global init state), `xml_c14n`
//! (libxml2 bindings, whole documents only, no node sets) and a hand-written c14n (a correctness risk).
//! Its sibling crates (`bergshamra-dsig`) are not used: their default crypto is the `rsa` crate, which the project
//! does not take; RSA and ECDSA are verified with aws-lc-rs, already used for DeliveryData.
//!
//! Trust is not decided here: a valid signature proves the signed parts are as the holder of the KeyInfo
//! certificate's key wrote them. Which signers a tenant trusts is a separate question.
//!
//! The document reaching [`verify`] has already passed the bounded quick-xml parse (size, depth, element count, no
//! DTD), so the second parse here works on a bounded, entity-free document.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bergshamra_c14n::C14nMode;
use bergshamra_xml::NodeSet;
use bergshamra_xml::uppsala::{Document, NodeId, NodeKind};
use std::collections::HashMap;
use x509_cert::Certificate;
use x509_cert::der::Decode;

use super::{CpixError, DS_NS};

/// Most `ds:Signature` elements one document may carry (Complex.xml has 9).
pub const MAX_SIGNATURES: usize = 32;
/// Most references over all signatures: each one canonicalises (part of) the document.
pub const MAX_REFERENCES: usize = 64;
const MAX_TRANSFORMS: usize = 4;

const EXC_C14N_NS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const TRANSFORM_ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// What one verified signature covered, for logs and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// What each reference named: `document` or the local name of the referenced element.
    pub covers: Vec<String>,
    /// The signer certificate's subject.
    pub signer: String,
}

fn invalid(message: impl Into<String>) -> CpixError {
    CpixError::Signature(message.into())
}

fn unsupported(message: impl Into<String>) -> CpixError {
    CpixError::SignatureUnsupported(message.into())
}

/// Whether the document holds a `ds:Signature` element anywhere. Cheap pre-check on the raw text so unsigned
/// documents (the packagers' usual case) are not parsed a second time.
pub fn may_be_signed(text: &str) -> bool {
    text.contains(DS_NS) && text.contains("Signature")
}

/// Verify every `ds:Signature` of the document. Unsigned documents verify (an empty list).
pub fn verify(text: &str) -> Result<Vec<VerifiedSignature>, CpixError> {
    // The XML declaration is dropped: `text` is already decoded (UTF-16 documents declare encoding="utf-16",
    // which a parser of a Rust string must not act on), and C14N does not output it.
    let body = strip_xml_declaration(text);
    let doc =
        bergshamra_xml::uppsala::parse(body).map_err(|e| CpixError::Malformed(format!("not well-formed XML: {e}")))?;
    let signatures: Vec<NodeId> =
        doc.descendants(doc.root()).into_iter().filter(|&id| is_ds(&doc, id, "Signature")).collect();
    if signatures.is_empty() {
        return Ok(Vec::new());
    }
    if signatures.len() > MAX_SIGNATURES {
        return Err(unsupported(format!("more than {MAX_SIGNATURES} ds:Signature elements")));
    }
    let ids = id_map(&doc)?;
    let mut references = 0usize;
    let total = signatures.len();
    let mut verified = Vec::with_capacity(total);
    for (index, &signature) in signatures.iter().enumerate() {
        let which = format!("ds:Signature {} of {total}", index + 1);
        verified.push(verify_one(&doc, &ids, signature, &which, &mut references)?);
    }
    Ok(verified)
}

fn strip_xml_declaration(text: &str) -> &str {
    let text = text.trim_start_matches('\u{feff}');
    if text.starts_with("<?xml")
        && let Some(end) = text.find("?>")
    {
        return &text[end + 2..];
    }
    text
}

fn is_ds(doc: &Document<'_>, id: NodeId, local: &str) -> bool {
    doc.element(id).is_some_and(|e| e.name.matches(Some(DS_NS), local))
}

fn child_elements(doc: &Document<'_>, id: NodeId) -> Vec<NodeId> {
    doc.children(id).into_iter().filter(|&c| doc.element(c).is_some()).collect()
}

fn ds_child(doc: &Document<'_>, id: NodeId, local: &str) -> Option<NodeId> {
    child_elements(doc, id).into_iter().find(|&c| is_ds(doc, c, local))
}

fn ds_children(doc: &Document<'_>, id: NodeId, local: &str) -> Vec<NodeId> {
    child_elements(doc, id).into_iter().filter(|&c| is_ds(doc, c, local)).collect()
}

fn algorithm<'d>(doc: &'d Document<'_>, id: NodeId) -> Result<&'d str, CpixError> {
    doc.element(id)
        .and_then(|e| e.attributes.iter().find(|a| a.name.namespace_uri.is_none() && a.name.local_name == "Algorithm"))
        .map(|a| &*a.value)
        .ok_or_else(|| invalid("an algorithm element lacks its Algorithm attribute"))
}

fn text_of(doc: &Document<'_>, id: NodeId) -> String {
    doc.children(id)
        .into_iter()
        .filter_map(|c| match doc.node_kind(c) {
            Some(NodeKind::Text(t)) | Some(NodeKind::CData(t)) => Some(t.to_string()),
            _ => None,
        })
        .collect()
}

fn base64_of(doc: &Document<'_>, id: NodeId, what: &str) -> Result<Vec<u8>, CpixError> {
    let compact: String = text_of(doc, id).chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(compact.as_bytes()).map_err(|_| invalid(format!("{what} is not base64")))
}

/// Elements by their `id`/`Id`/`ID` attribute. Two elements with one id are refused: which of them a reference
/// means would be ambiguous, the classic signature-wrapping opening.
fn id_map(doc: &Document<'_>) -> Result<HashMap<String, NodeId>, CpixError> {
    let mut ids = HashMap::new();
    for node in doc.descendants(doc.root()) {
        let Some(element) = doc.element(node) else { continue };
        for attribute in &element.attributes {
            if attribute.name.namespace_uri.is_none()
                && matches!(&*attribute.name.local_name, "id" | "Id" | "ID")
                && ids.insert(attribute.value.to_string(), node).is_some()
            {
                return Err(invalid(format!("two elements carry the id {:?}", attribute.value)));
            }
        }
    }
    Ok(ids)
}

fn c14n_mode(uri: &str) -> Result<C14nMode, CpixError> {
    C14nMode::from_uri(uri).ok_or_else(|| unsupported(format!("canonicalisation {uri:?} is not supported")))
}

/// The `PrefixList` of an exclusive canonicalisation's `InclusiveNamespaces` child, if any.
fn inclusive_prefixes(doc: &Document<'_>, method: NodeId) -> Vec<String> {
    child_elements(doc, method)
        .into_iter()
        .find(|&c| doc.element(c).is_some_and(|e| e.name.matches(Some(EXC_C14N_NS), "InclusiveNamespaces")))
        .and_then(|c| {
            doc.get_attribute(c, "PrefixList").map(|list| list.split_whitespace().map(str::to_owned).collect())
        })
        .unwrap_or_default()
}

fn canonicalize(
    doc: &Document<'_>,
    mode: C14nMode,
    nodes: &NodeSet,
    prefixes: &[String],
    what: &str,
) -> Result<Vec<u8>, CpixError> {
    bergshamra_c14n::canonicalize_doc(doc, mode, Some(nodes), prefixes)
        .map_err(|e| invalid(format!("{what} cannot be canonicalised: {e}")))
}

fn digest_algorithm(uri: &str) -> Result<&'static digest::Algorithm, CpixError> {
    match uri {
        "http://www.w3.org/2001/04/xmlenc#sha256" => Ok(&digest::SHA256),
        "http://www.w3.org/2001/04/xmldsig-more#sha384" => Ok(&digest::SHA384),
        "http://www.w3.org/2001/04/xmlenc#sha512" => Ok(&digest::SHA512),
        other => Err(unsupported(format!("digest {other:?} is not supported (SHA-256, SHA-384 or SHA-512 are)"))),
    }
}

/// What a reference names, for messages: `the document` or the referenced element's local name.
fn describe(doc: &Document<'_>, node: NodeId, uri: &str) -> String {
    if uri.is_empty() {
        return "the document".to_owned();
    }
    match doc.element(node) {
        Some(e) => format!("{} (URI {uri:?})", e.name.local_name),
        None => format!("URI {uri:?}"),
    }
}

fn verify_one(
    doc: &Document<'_>,
    ids: &HashMap<String, NodeId>,
    signature: NodeId,
    which: &str,
    references_so_far: &mut usize,
) -> Result<VerifiedSignature, CpixError> {
    let signed_info =
        ds_child(doc, signature, "SignedInfo").ok_or_else(|| invalid(format!("{which} has no SignedInfo")))?;
    let method = ds_child(doc, signed_info, "CanonicalizationMethod")
        .ok_or_else(|| invalid(format!("{which} has no CanonicalizationMethod")))?;
    let signed_info_mode = c14n_mode(algorithm(doc, method)?).map_err(|e| in_signature(which, e))?;
    let signature_method = ds_child(doc, signed_info, "SignatureMethod")
        .ok_or_else(|| invalid(format!("{which} has no SignatureMethod")))?;
    let signature_uri = algorithm(doc, signature_method)?;
    let references = ds_children(doc, signed_info, "Reference");
    if references.is_empty() {
        return Err(invalid(format!("{which} has no Reference")));
    }
    *references_so_far += references.len();
    if *references_so_far > MAX_REFERENCES {
        return Err(unsupported(format!("more than {MAX_REFERENCES} signature references in the document")));
    }

    // The key first: an unreadable or unsupported key says more than a digest that happens to match.
    let key_info = ds_child(doc, signature, "KeyInfo")
        .ok_or_else(|| unsupported(format!("{which} has no KeyInfo: the signer certificate must be in ds:X509Data")))?;
    let certificate = ds_child(doc, key_info, "X509Data")
        .and_then(|data| ds_child(doc, data, "X509Certificate"))
        .ok_or_else(|| {
            unsupported(format!("{which}: KeyInfo must carry the signer certificate as ds:X509Data/ds:X509Certificate"))
        })?;
    let certificate = base64_of(doc, certificate, &format!("{which}: X509Certificate"))?;
    let certificate = Certificate::from_der(&certificate)
        .map_err(|e| invalid(format!("{which}: the KeyInfo certificate is not X.509 DER: {e}")))?;
    let signer = certificate.tbs_certificate.subject.to_string();
    let (verification, public_key) =
        verification_key(&certificate, signature_uri).map_err(|e| in_signature(which, e))?;

    // Each reference's digest over its transformed node set.
    let mut covers = Vec::with_capacity(references.len());
    for reference in references {
        let uri = doc.get_attribute(reference, "URI").unwrap_or_default();
        let (target, mut nodes) = if uri.is_empty() {
            (doc.root(), NodeSet::all_without_comments(doc))
        } else if let Some(id) = uri.strip_prefix('#').filter(|id| !id.starts_with("xpointer(")) {
            let target = *ids.get(id).ok_or_else(|| {
                invalid(format!("{which} references {uri:?}, which no element of the document carries"))
            })?;
            (target, NodeSet::tree_without_comments(target, doc))
        } else {
            return Err(unsupported(format!(
                "{which} references {uri:?}: only the document (URI=\"\") and same-document ids (URI=\"#id\") are supported"
            )));
        };
        let what = describe(doc, target, uri);
        let mut octets: Option<Vec<u8>> = None;
        if let Some(transforms) = ds_child(doc, reference, "Transforms") {
            let transforms = ds_children(doc, transforms, "Transform");
            if transforms.len() > MAX_TRANSFORMS {
                return Err(unsupported(format!("{which}: more than {MAX_TRANSFORMS} transforms on {what}")));
            }
            for transform in transforms {
                if octets.is_some() {
                    return Err(unsupported(format!(
                        "{which}: a transform after canonicalisation on {what} is not supported"
                    )));
                }
                let uri = algorithm(doc, transform)?;
                if uri == TRANSFORM_ENVELOPED {
                    nodes = nodes.subtract(&NodeSet::tree_with_comments(signature, doc));
                } else {
                    let mode = c14n_mode(uri).map_err(|e| in_signature(which, e))?;
                    octets = Some(canonicalize(doc, mode, &nodes, &inclusive_prefixes(doc, transform), &what)?);
                }
            }
        }
        // A node set left at the end is canonicalised with inclusive C14N 1.0 (XML-DSig 4.3.3.2).
        let octets = match octets {
            Some(octets) => octets,
            None => canonicalize(doc, C14nMode::Inclusive, &nodes, &[], &what)?,
        };
        let digest_method = ds_child(doc, reference, "DigestMethod")
            .ok_or_else(|| invalid(format!("{which}: no DigestMethod for {what}")))?;
        let digest_algorithm = digest_algorithm(algorithm(doc, digest_method)?).map_err(|e| in_signature(which, e))?;
        let expected = ds_child(doc, reference, "DigestValue")
            .ok_or_else(|| invalid(format!("{which}: no DigestValue for {what}")))?;
        let expected = base64_of(doc, expected, &format!("{which}: DigestValue"))?;
        if digest::digest(digest_algorithm, &octets).as_ref() != expected.as_slice() {
            return Err(invalid(format!(
                "{which} (signed by {signer}) over {what}: digest mismatch, the signed content was changed after signing"
            )));
        }
        covers.push(what);
    }

    // Then the signature over the canonical SignedInfo.
    let signed_info_octets = canonicalize(
        doc,
        signed_info_mode,
        &if signed_info_mode.with_comments() {
            NodeSet::tree_with_comments(signed_info, doc)
        } else {
            NodeSet::tree_without_comments(signed_info, doc)
        },
        &inclusive_prefixes(doc, method),
        &format!("{which}: SignedInfo"),
    )?;
    let value =
        ds_child(doc, signature, "SignatureValue").ok_or_else(|| invalid(format!("{which} has no SignatureValue")))?;
    let value = base64_of(doc, value, &format!("{which}: SignatureValue"))?;
    UnparsedPublicKey::new(verification, public_key).verify(&signed_info_octets, &value).map_err(|_| {
        invalid(format!(
            "{which} (signed by {signer}) over {}: signature mismatch, SignatureValue does not verify with the KeyInfo \
             certificate's key (SignedInfo changed, wrong key, or an RSA key outside 2048-8192 bits)",
            covers.join(", ")
        ))
    })?;
    Ok(VerifiedSignature { covers, signer })
}

fn in_signature(which: &str, e: CpixError) -> CpixError {
    match e {
        CpixError::SignatureUnsupported(m) => unsupported(format!("{which}: {m}")),
        CpixError::Signature(m) => invalid(format!("{which}: {m}")),
        other => other,
    }
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";

/// The aws-lc-rs verification algorithm for a SignatureMethod and the certificate's key, and the key's bytes
/// (RSAPublicKey DER for RSA, the uncompressed point for ECDSA, as `UnparsedPublicKey` wants them). XML-DSig ECDSA
/// signature values are `r || s` (RFC 4050/6931), hence the FIXED algorithms.
fn verification_key<'c>(
    certificate: &'c Certificate,
    signature_uri: &str,
) -> Result<(&'static dyn VerificationAlgorithm, &'c [u8]), CpixError> {
    let spki = &certificate.tbs_certificate.subject_public_key_info;
    let key_oid = spki.algorithm.oid.to_string();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<x509_cert::der::asn1::ObjectIdentifier>().ok())
        .map(|oid| oid.to_string());
    let more = "http://www.w3.org/2001/04/xmldsig-more#";
    let method = signature_uri.strip_prefix(more).unwrap_or(signature_uri);
    let algorithm: &'static dyn VerificationAlgorithm = match (method, key_oid.as_str(), curve.as_deref()) {
        ("rsa-sha256", OID_RSA, _) => &signature::RSA_PKCS1_2048_8192_SHA256,
        ("rsa-sha384", OID_RSA, _) => &signature::RSA_PKCS1_2048_8192_SHA384,
        ("rsa-sha512", OID_RSA, _) => &signature::RSA_PKCS1_2048_8192_SHA512,
        ("ecdsa-sha256", OID_EC, Some(OID_P256)) => &signature::ECDSA_P256_SHA256_FIXED,
        ("ecdsa-sha384", OID_EC, Some(OID_P384)) => &signature::ECDSA_P384_SHA384_FIXED,
        ("ecdsa-sha512", OID_EC, Some(OID_P521)) => &signature::ECDSA_P521_SHA512_FIXED,
        ("rsa-sha256" | "rsa-sha384" | "rsa-sha512" | "ecdsa-sha256" | "ecdsa-sha384" | "ecdsa-sha512", _, _) => {
            return Err(unsupported(format!(
                "SignatureMethod {signature_uri:?} does not fit the KeyInfo certificate's key ({key_oid}{}); \
                 ECDSA is supported as P-256/SHA-256, P-384/SHA-384 and P-521/SHA-512",
                curve.map(|c| format!(" on {c}")).unwrap_or_default()
            )));
        }
        _ => {
            return Err(unsupported(format!(
                "SignatureMethod {signature_uri:?} is not supported (rsa-sha256/384/512 and ecdsa-sha256/384/512 are)"
            )));
        }
    };
    Ok((algorithm, spki.subject_public_key.raw_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vector(name: &str) -> String {
        let dir = std::env::var_os("CLAVIS_TEST_VECTORS")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::PathBuf::from("../../../shared/vectors"));
        let path = dir.join("cpix/dashif-cpix-test-vectors").join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!("{}: {e}; set CLAVIS_TEST_VECTORS to the shared/vectors directory", path.display())
        });
        super::super::parse::decode(&bytes).unwrap()
    }

    #[test]
    fn every_signature_of_the_signed_dashif_vectors_verifies() {
        let complex = verify(&vector("Complex.xml")).unwrap();
        assert_eq!(complex.len(), 9, "four lists signed twice, and the document");
        assert_eq!(complex.last().unwrap().covers, ["the document"]);
        assert!(complex[2].covers[0].starts_with("ContentKeyList"), "{:?}", complex[2]);
        assert!(complex.iter().all(|s| s.signer.contains("CPIX Example Entity")));
        // UTF-16, unusual prefixes and ids, pretty-printed, comments added after signing.
        let even_more = verify(&vector("EvenMoreComplex.xml")).unwrap();
        assert!(even_more.len() >= 6, "{even_more:?}");
    }

    #[test]
    fn the_invalid_dashif_vectors_fail_with_a_digest_mismatch_naming_the_element() {
        let keys = verify(&vector("Invalid_BadContentKeysSignature.xml")).unwrap_err();
        assert!(matches!(keys, CpixError::Signature(_)), "{keys:?}");
        assert!(keys.message().contains("ContentKeyList") && keys.message().contains("digest mismatch"), "{keys}");
        let document = verify(&vector("Invalid_BadDocumentSignature.xml")).unwrap_err();
        assert!(
            document.message().contains("the document") && document.message().contains("digest mismatch"),
            "{document}"
        );
    }

    #[test]
    fn an_altered_signature_value_is_a_signature_mismatch() {
        let text = vector("Complex.xml");
        let start = text.find("<SignatureValue>").unwrap() + "<SignatureValue>".len();
        let mut altered = text.clone();
        // Change one base64 character of the first SignatureValue.
        let replacement = if &text[start + 10..start + 11] == "A" { "B" } else { "A" };
        altered.replace_range(start + 10..start + 11, replacement);
        let error = verify(&altered).unwrap_err();
        assert!(
            error.message().contains("signature mismatch") && error.message().contains("ds:Signature 1 of 9"),
            "{error}"
        );
    }

    #[test]
    fn a_changed_kid_inside_the_signed_content_key_list_is_a_digest_mismatch() {
        let text = vector("Complex.xml");
        let list = text.find("<ContentKeyList").unwrap();
        let kid = list + text[list..].find("kid=\"").unwrap() + "kid=\"".len();
        let mut altered = text.clone();
        let replacement = if &text[kid..kid + 1] == "0" { "1" } else { "0" };
        altered.replace_range(kid..kid + 1, replacement);
        let error = verify(&altered).unwrap_err();
        assert!(error.message().contains("ContentKeyList") && error.message().contains("digest mismatch"), "{error}");
    }

    #[test]
    fn unsupported_algorithms_are_named() {
        let text = vector("Complex.xml");
        let sha1 = text.replacen("xmlenc#sha512", "xmldsig#sha1", 1);
        let error = verify(&sha1).unwrap_err();
        assert!(matches!(error, CpixError::SignatureUnsupported(_)) && error.message().contains("sha1"), "{error}");
        let xpath = text.replacen(
            "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
            "http://www.w3.org/TR/1999/REC-xpath-19991116",
            1,
        );
        assert!(matches!(verify(&xpath).unwrap_err(), CpixError::SignatureUnsupported(_)));
        let dsa = text.replacen("xmldsig-more#rsa-sha512", "xmldsig#dsa-sha1", 1);
        assert!(matches!(verify(&dsa).unwrap_err(), CpixError::SignatureUnsupported(_)));
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let text = vector("Complex.xml");
        let doubled =
            text.replacen("<ContentKeyList id=\"ContentKeyList\">", "<ContentKeyList id=\"DeliveryDataList\">", 1);
        assert!(verify(&doubled).unwrap_err().message().contains("two elements carry the id"));
    }

    #[test]
    fn unsigned_documents_verify_to_nothing() {
        assert_eq!(verify(&vector("EncryptedContentKeys.xml")).unwrap(), []);
        assert!(!may_be_signed("<CPIX xmlns=\"urn:dashif:org:cpix\"/>"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn never_panics_on_arbitrary_text(text in ".{0,400}") {
            let _ = verify(&text);
        }

        #[test]
        fn never_panics_on_a_mangled_signed_document(cut in 0usize..3573, byte in any::<u8>()) {
            let text = vector("Invalid_BadContentKeysSignature.xml");
            let mut bytes = text.into_bytes();
            let at = cut.min(bytes.len().saturating_sub(1));
            bytes[at] = byte;
            let _ = verify(&String::from_utf8_lossy(&bytes));
        }
    }
}
