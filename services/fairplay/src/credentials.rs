//! The provider credentials Apple hands out: the FPS certificate (DER), its RSA private key (PEM, often with a
//! passphrase) and the Application Secret key (ASk). Read and cross-checked here, at upload, so that a key server
//! request never meets a credential that cannot work.

use aws_lc_rs::digest;
use base64::Engine;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use zeroize::Zeroizing;

use crate::der::{self, Tlv};
use crate::rsa::OaepKey;

/// What is wrong with an uploaded credential, naming the request field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {detail}")]
pub struct CredentialError {
    pub field: &'static str,
    pub detail: String,
}

fn bad(field: &'static str, detail: impl Into<String>) -> CredentialError {
    CredentialError { field, detail: detail.into() }
}

/// The facts read from an FPS certificate.
#[derive(Debug, Clone)]
pub struct CertificateInfo {
    /// SHA-1 of the certificate DER: the SPC names the certificate it was made for by this hash.
    pub sha1: [u8; 20],
    /// The subject as `CN=..., OU=..., O=..., C=...`.
    pub subject: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub key_bits: usize,
    /// The RSA modulus and public exponent (unsigned big-endian).
    modulus: Vec<u8>,
    exponent: Vec<u8>,
}

const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_PBES2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d];
const OID_PBKDF2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0c];
const OID_HMAC_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x07];
const OID_HMAC_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x09];
const OID_AES128_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02];
const OID_AES192_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x16];
const OID_AES256_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a];

/// Read an X.509 certificate (DER).
pub fn parse_certificate(der_bytes: &[u8]) -> Result<CertificateInfo, CredentialError> {
    let field = "certificate";
    let not_x509 = || bad(field, "not an X.509 certificate in DER");
    let cert = der::expect(der_bytes, der::SEQUENCE).ok_or_else(not_x509)?;
    let parts = der::children(cert.content).ok_or_else(not_x509)?;
    let tbs = parts.first().filter(|t| t.tag == der::SEQUENCE).ok_or_else(not_x509)?;
    let mut fields = der::children(tbs.content).ok_or_else(not_x509)?.into_iter().peekable();
    // [0] version is optional (v1 certificates omit it).
    if fields.peek().is_some_and(|t| t.tag == 0xa0) {
        fields.next();
    }
    let _serial = fields.next().filter(|t| t.tag == der::INTEGER).ok_or_else(not_x509)?;
    let _signature = fields.next().filter(|t| t.tag == der::SEQUENCE).ok_or_else(not_x509)?;
    let _issuer = fields.next().filter(|t| t.tag == der::SEQUENCE).ok_or_else(not_x509)?;
    let validity = fields.next().filter(|t| t.tag == der::SEQUENCE).ok_or_else(not_x509)?;
    let subject = fields.next().filter(|t| t.tag == der::SEQUENCE).ok_or_else(not_x509)?;
    let spki = fields.next().filter(|t| t.tag == der::SEQUENCE).ok_or_else(not_x509)?;

    let times = der::children(validity.content).ok_or_else(not_x509)?;
    let [not_before, not_after] = times.as_slice() else { return Err(not_x509()) };
    let not_before = parse_time(not_before).ok_or_else(|| bad(field, "unreadable notBefore"))?;
    let not_after = parse_time(not_after).ok_or_else(|| bad(field, "unreadable notAfter"))?;

    let (modulus, exponent) = rsa_public_key(&spki).ok_or_else(|| bad(field, "the public key is not an RSA key"))?;
    let key_bits = bit_length(&modulus);
    let mut sha1 = [0u8; 20];
    sha1.copy_from_slice(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der_bytes).as_ref());
    Ok(CertificateInfo {
        sha1,
        subject: render_name(&subject).unwrap_or_default(),
        not_before,
        not_after,
        key_bits,
        modulus,
        exponent,
    })
}

fn bit_length(magnitude: &[u8]) -> usize {
    match magnitude.first() {
        None => 0,
        Some(first) => magnitude.len() * 8 - first.leading_zeros() as usize,
    }
}

/// The modulus and exponent of an RSA SubjectPublicKeyInfo.
fn rsa_public_key(spki: &Tlv<'_>) -> Option<(Vec<u8>, Vec<u8>)> {
    let parts = der::children(spki.content)?;
    let [algorithm, key] = parts.as_slice() else { return None };
    let algorithm = der::children(algorithm.content)?;
    if algorithm.first().is_none_or(|oid| oid.tag != der::OID || oid.content != OID_RSA_ENCRYPTION) {
        return None;
    }
    if key.tag != der::BIT_STRING || key.content.first() != Some(&0) {
        return None;
    }
    let sequence = der::expect(&key.content[1..], der::SEQUENCE)?;
    let numbers = der::children(sequence.content)?;
    let [n, e] = numbers.as_slice() else { return None };
    (n.tag == der::INTEGER && e.tag == der::INTEGER)
        .then(|| (der::unsigned(n.content).to_vec(), der::unsigned(e.content).to_vec()))
}

fn parse_time(tlv: &Tlv<'_>) -> Option<DateTime<Utc>> {
    let text = std::str::from_utf8(tlv.content).ok()?;
    let text = text.strip_suffix('Z')?;
    let (year, rest) = match tlv.tag {
        der::UTC_TIME => {
            let yy: i32 = text.get(..2)?.parse().ok()?;
            // RFC 5280: two-digit years 50-99 are 19xx, 00-49 are 20xx.
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
        }
        der::GENERALIZED_TIME => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    let number = |range: std::ops::Range<usize>| rest.get(range)?.parse::<u32>().ok();
    let date = NaiveDate::from_ymd_opt(year, number(0..2)?, number(2..4)?)?;
    let seconds = if rest.len() >= 10 { number(8..10)? } else { 0 };
    let time = NaiveTime::from_hms_opt(number(4..6)?, number(6..8)?, seconds)?;
    Some(NaiveDateTime::new(date, time).and_utc())
}

/// `CN=..., OU=..., O=..., C=...` for the attributes people read; others are left out.
fn render_name(name: &Tlv<'_>) -> Option<String> {
    let mut parts = Vec::new();
    for set in der::children(name.content)? {
        for attribute in der::children(set.content)? {
            let pair = der::children(attribute.content)?;
            let [oid, value] = pair.as_slice() else { continue };
            let label = match oid.content {
                [0x55, 0x04, 0x03] => "CN",
                [0x55, 0x04, 0x06] => "C",
                [0x55, 0x04, 0x07] => "L",
                [0x55, 0x04, 0x08] => "ST",
                [0x55, 0x04, 0x0a] => "O",
                [0x55, 0x04, 0x0b] => "OU",
                _ => continue,
            };
            parts.push(format!("{label}={}", String::from_utf8_lossy(value.content)));
        }
    }
    Some(parts.join(", "))
}

/// A PEM block: its label, its headers (legacy encryption), its DER bytes.
struct Pem {
    label: String,
    headers: Vec<(String, String)>,
    der: Zeroizing<Vec<u8>>,
}

fn parse_pem(text: &str) -> Option<Pem> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_owned();
    let body_start = &rest[label_end + 5..];
    let end = body_start.find(&format!("-----END {label}-----"))?;
    let mut headers = Vec::new();
    let mut encoded = String::new();
    for line in body_start[..end].lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.split_once(':') {
            Some((name, value)) if encoded.is_empty() => {
                headers.push((name.trim().to_owned(), value.trim().to_owned()))
            }
            _ => encoded.push_str(line),
        }
    }
    let der = base64::engine::general_purpose::STANDARD.decode(encoded.as_bytes()).ok()?;
    Some(Pem { label, headers, der: Zeroizing::new(der) })
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo`.
pub fn pkcs1_from_pkcs8(pkcs8: &[u8]) -> Option<Vec<u8>> {
    let info = der::expect(pkcs8, der::SEQUENCE)?;
    let parts = der::children(info.content)?;
    let (version, algorithm, key) = (parts.first()?, parts.get(1)?, parts.get(2)?);
    if der::small_uint(version)? > 1 || algorithm.tag != der::SEQUENCE || key.tag != der::OCTET_STRING {
        return None;
    }
    let algorithm = der::children(algorithm.content)?;
    if algorithm.first()?.content != OID_RSA_ENCRYPTION {
        return None;
    }
    Some(key.content.to_vec())
}

// generic-array 0.14 (what aes 0.8 takes) is marked deprecated in favour of 1.x, which aes 0.8 cannot use.
#[allow(deprecated)]
fn aes_cbc_decrypt_padded(key: &[u8], iv: &[u8], data: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if iv.len() != 16 || data.is_empty() || !data.len().is_multiple_of(16) {
        return None;
    }
    use aes::cipher::{BlockDecrypt, KeyInit, generic_array::GenericArray};
    let mut out = Zeroizing::new(data.to_vec());
    let mut previous = [0u8; 16];
    previous.copy_from_slice(iv);
    macro_rules! run {
        ($cipher:ty) => {{
            let cipher = <$cipher>::new_from_slice(key).ok()?;
            for block in out.chunks_exact_mut(16) {
                let mut saved = [0u8; 16];
                saved.copy_from_slice(block);
                cipher.decrypt_block(GenericArray::from_mut_slice(block));
                block.iter_mut().zip(previous.iter()).for_each(|(b, p)| *b ^= p);
                previous = saved;
            }
        }};
    }
    match key.len() {
        16 => run!(aes::Aes128),
        24 => run!(aes::Aes192),
        32 => run!(aes::Aes256),
        _ => return None,
    }
    let pad = usize::from(*out.last()?);
    if pad == 0 || pad > 16 || out[out.len() - pad..].iter().any(|b| usize::from(*b) != pad) {
        return None;
    }
    let len = out.len() - pad;
    out.truncate(len);
    Some(out)
}

/// A PBES2 (PBKDF2 + AES-CBC) `EncryptedPrivateKeyInfo`, decrypted to the PKCS#8 it holds.
fn decrypt_pkcs8(der_bytes: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>, CredentialError> {
    let field = "private_key";
    let unsupported = || bad(field, "only PBES2 (PBKDF2 with HMAC-SHA1/SHA-256, AES-CBC) encrypted keys are supported");
    let outer = der::expect(der_bytes, der::SEQUENCE).ok_or_else(unsupported)?;
    let parts = der::children(outer.content).ok_or_else(unsupported)?;
    let [algorithm, encrypted] = parts.as_slice() else { return Err(unsupported()) };
    let algorithm = der::children(algorithm.content).ok_or_else(unsupported)?;
    let [oid, params] = algorithm.as_slice() else { return Err(unsupported()) };
    if oid.content != OID_PBES2 {
        return Err(unsupported());
    }
    let params = der::children(params.content).ok_or_else(unsupported)?;
    let [kdf, scheme] = params.as_slice() else { return Err(unsupported()) };
    let kdf = der::children(kdf.content).ok_or_else(unsupported)?;
    let [kdf_oid, kdf_params] = kdf.as_slice() else { return Err(unsupported()) };
    if kdf_oid.content != OID_PBKDF2 {
        return Err(unsupported());
    }
    let kdf_params = der::children(kdf_params.content).ok_or_else(unsupported)?;
    let salt = kdf_params.first().filter(|t| t.tag == der::OCTET_STRING).ok_or_else(unsupported)?;
    let iterations = kdf_params.get(1).and_then(der::small_uint).ok_or_else(unsupported)?;
    let mut prf = aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA1;
    for extra in &kdf_params[2..] {
        if extra.tag == der::SEQUENCE {
            let prf_parts = der::children(extra.content).ok_or_else(unsupported)?;
            prf = match prf_parts.first().map(|t| t.content) {
                Some(OID_HMAC_SHA1) => aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA1,
                Some(OID_HMAC_SHA256) => aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
                _ => return Err(unsupported()),
            };
        }
    }
    let scheme = der::children(scheme.content).ok_or_else(unsupported)?;
    let [cipher_oid, iv] = scheme.as_slice() else { return Err(unsupported()) };
    let key_len = match cipher_oid.content {
        OID_AES128_CBC => 16,
        OID_AES192_CBC => 24,
        OID_AES256_CBC => 32,
        _ => return Err(unsupported()),
    };
    // A huge iteration count would let an upload burn the CPU.
    let iterations = std::num::NonZeroU32::new(iterations)
        .filter(|n| n.get() <= 10_000_000)
        .ok_or_else(|| bad(field, "PBKDF2 iteration count out of range"))?;
    let mut key = Zeroizing::new(vec![0u8; key_len]);
    aws_lc_rs::pbkdf2::derive(prf, iterations, salt.content, password, &mut key);
    if encrypted.tag != der::OCTET_STRING {
        return Err(unsupported());
    }
    aes_cbc_decrypt_padded(&key, iv.content, encrypted.content)
        .ok_or_else(|| bad("private_key_password", "the password does not open the private key"))
}

/// OpenSSL's legacy `Proc-Type: 4,ENCRYPTED` PEM (`DEK-Info: AES-128-CBC,<iv>`): key = EVP_BytesToKey(MD5).
fn decrypt_legacy_pem(pem: &Pem, password: &[u8]) -> Result<Zeroizing<Vec<u8>>, CredentialError> {
    let field = "private_key";
    let dek = pem
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("DEK-Info"))
        .map(|(_, value)| value.as_str())
        .ok_or_else(|| bad(field, "encrypted PEM without DEK-Info"))?;
    let (cipher, iv_hex) = dek.split_once(',').ok_or_else(|| bad(field, "malformed DEK-Info"))?;
    let key_len = match cipher.trim().to_ascii_uppercase().as_str() {
        "AES-128-CBC" => 16,
        "AES-192-CBC" => 24,
        "AES-256-CBC" => 32,
        other => return Err(bad(field, format!("legacy PEM cipher {other} is not supported; use AES or PKCS#8"))),
    };
    let iv =
        hex::decode(iv_hex.trim()).ok().filter(|iv| iv.len() == 16).ok_or_else(|| bad(field, "bad DEK-Info IV"))?;
    let mut key = Zeroizing::new(Vec::with_capacity(32));
    let mut previous: Vec<u8> = Vec::new();
    while key.len() < key_len {
        let mut input = Zeroizing::new(previous.clone());
        input.extend_from_slice(password);
        input.extend_from_slice(&iv[..8]);
        previous = crate::rsa::md5(&input).to_vec();
        key.extend_from_slice(&previous);
    }
    key.truncate(key_len);
    aes_cbc_decrypt_padded(&key, &iv, &pem.der)
        .ok_or_else(|| bad("private_key_password", "the password does not open the private key"))
}

/// The private key as PKCS#1 DER, from PEM (`RSA PRIVATE KEY`, `PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`, legacy
/// encrypted PEM) or from base64 DER.
pub fn read_private_key(text: &str, password: Option<&str>) -> Result<Zeroizing<Vec<u8>>, CredentialError> {
    let field = "private_key";
    let password = password.map(str::as_bytes);
    let need_password = || bad("private_key_password", "the private key is encrypted: send private_key_password");
    let Some(pem) = parse_pem(text) else {
        let der = base64::engine::general_purpose::STANDARD
            .decode(text.split_whitespace().collect::<String>())
            .map_err(|_| bad(field, "not a PEM private key"))?;
        return Ok(pkcs1_from_pkcs8(&der).map(Zeroizing::new).unwrap_or(Zeroizing::new(der)));
    };
    let encrypted_legacy =
        pem.headers.iter().any(|(name, value)| name.eq_ignore_ascii_case("Proc-Type") && value.contains("ENCRYPTED"));
    match pem.label.as_str() {
        "RSA PRIVATE KEY" if encrypted_legacy => decrypt_legacy_pem(&pem, password.ok_or_else(need_password)?),
        "RSA PRIVATE KEY" => Ok(pem.der),
        "PRIVATE KEY" => pkcs1_from_pkcs8(&pem.der).map(Zeroizing::new).ok_or_else(|| bad(field, "not an RSA key")),
        "ENCRYPTED PRIVATE KEY" => {
            let pkcs8 = decrypt_pkcs8(&pem.der, password.ok_or_else(need_password)?)?;
            pkcs1_from_pkcs8(&pkcs8)
                .map(Zeroizing::new)
                .ok_or_else(|| bad("private_key_password", "the password does not open the private key"))
        }
        other => Err(bad(field, format!("a PEM {other:?} is not a private key"))),
    }
}

/// The modulus and public exponent of a PKCS#1 `RSAPrivateKey`.
fn pkcs1_public_numbers(pkcs1: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let key = der::expect(pkcs1, der::SEQUENCE)?;
    let parts = der::children(key.content)?;
    let (n, e) = (parts.get(1)?, parts.get(2)?);
    (n.tag == der::INTEGER && e.tag == der::INTEGER)
        .then(|| (der::unsigned(n.content).to_vec(), der::unsigned(e.content).to_vec()))
}

/// A certificate and private key that belong together, ready for the key server.
pub struct Validated {
    pub certificate: CertificateInfo,
    pub private_key_pkcs1: Zeroizing<Vec<u8>>,
}

/// Read both and check that the key is the certificate's, of a size FairPlay uses (1024 or 2048 bits).
pub fn validate(
    certificate_der: &[u8],
    private_key: &str,
    password: Option<&str>,
) -> Result<Validated, CredentialError> {
    let certificate = parse_certificate(certificate_der)?;
    if certificate.key_bits != 1024 && certificate.key_bits != 2048 {
        return Err(bad(
            "certificate",
            format!("the certificate's key is {} bits; FairPlay uses RSA 1024 or 2048", certificate.key_bits),
        ));
    }
    let pkcs1 = read_private_key(private_key, password)?;
    let (n, e) = pkcs1_public_numbers(&pkcs1).ok_or_else(|| bad("private_key", "not an RSA private key"))?;
    if n != certificate.modulus || e != certificate.exponent {
        return Err(bad("private_key", "the private key does not belong to the certificate"));
    }
    if OaepKey::from_pkcs1_der(&pkcs1).is_none() {
        return Err(bad("private_key", "the RSA private key is inconsistent"));
    }
    Ok(Validated { certificate, private_key_pkcs1: pkcs1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_and_generalized_times() {
        let utc = der::encode(der::UTC_TIME, b"131017015722Z");
        let (tlv, _) = der::read(&utc).unwrap();
        assert_eq!(parse_time(&tlv).unwrap().to_rfc3339(), "2013-10-17T01:57:22+00:00");
        let generalized = der::encode(der::GENERALIZED_TIME, b"20500101000000Z");
        let (tlv, _) = der::read(&generalized).unwrap();
        assert_eq!(parse_time(&tlv).unwrap().to_rfc3339(), "2050-01-01T00:00:00+00:00");
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        assert!(parse_certificate(b"").is_err());
        assert!(parse_certificate(&[0x30, 0x03, 0x30, 0x01, 0x00]).is_err());
        assert!(read_private_key("-----BEGIN RSA PRIVATE KEY-----\n!!\n-----END RSA PRIVATE KEY-----", None).is_err());
        assert!(read_private_key("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", None).is_err());
    }
}
