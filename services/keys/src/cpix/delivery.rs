//! CPIX DeliveryData: content keys encrypted for the recipients a request names.
//!
//! One random document key (AES-256) and one MAC key (HMAC-SHA512, 64 bytes) per answer; both are wrapped with
//! RSA-OAEP (MGF1 with SHA-1, `xmlenc#rsa-oaep-mgf1p`) to each recipient certificate. Each content key becomes
//! `pskc:EncryptedValue` = IV | AES-256-CBC(PKCS#7) of the 16 key bytes under the document key, and `pskc:ValueMAC` =
//! HMAC-SHA512(MAC key, IV | ciphertext): the layout of the DASH-IF test vectors (Axinom.Cpix).

use aws_lc_rs::cipher::{
    AES_256, DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
};
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};
use zeroize::Zeroizing;

use super::CpixError;
use super::document::{KeyValue, Recipient, WrappedKeys};

/// Smallest recipient RSA key accepted (NIST SP 800-57: 2048 bits until 2030).
pub const MIN_RSA_BITS: usize = 2048;
const MAC_KEY_LEN: usize = 64;

/// Signature algorithms that mark a certificate as too weak to trust with keys: md5WithRSAEncryption,
/// sha1WithRSAEncryption, OIW's sha1WithRSA (what makecert writes), and the DSA/ECDSA SHA-1 ones.
const WEAK_SIGNATURES: [&str; 5] =
    ["1.2.840.113549.1.1.4", "1.2.840.113549.1.1.5", "1.3.14.3.2.29", "1.2.840.10040.4.3", "1.2.840.10045.4.1"];

fn rejected(message: impl Into<String>) -> CpixError {
    CpixError::Recipient(message.into())
}

/// The RSA public key of a recipient certificate, refused when the certificate is unreadable, not RSA, smaller than
/// [`MIN_RSA_BITS`] or signed with MD5/SHA-1.
pub fn recipient_key(certificate_der: &[u8]) -> Result<PublicEncryptingKey, CpixError> {
    let cert = Certificate::from_der(certificate_der)
        .map_err(|e| rejected(format!("DeliveryKey certificate is not X.509 DER: {e}")))?;
    let algorithm = cert.signature_algorithm.oid.to_string();
    if WEAK_SIGNATURES.contains(&algorithm.as_str()) {
        return Err(rejected(format!(
            "DeliveryKey certificate is signed with a weak algorithm ({algorithm}, MD5 or SHA-1)"
        )));
    }
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| rejected(format!("DeliveryKey certificate public key: {e}")))?;
    let key = PublicEncryptingKey::from_der(&spki)
        .map_err(|_| rejected("DeliveryKey certificate does not hold an RSA public key"))?;
    if key.key_size_bits() < MIN_RSA_BITS {
        return Err(rejected(format!(
            "DeliveryKey certificate's RSA key has {} bits; at least {MIN_RSA_BITS} are required",
            key.key_size_bits()
        )));
    }
    Ok(key)
}

/// The document key and MAC key of one answer.
pub struct Sealer {
    document_key: Zeroizing<[u8; 32]>,
    mac_key: Zeroizing<[u8; MAC_KEY_LEN]>,
}

fn crypto_failed(what: &str) -> CpixError {
    // Only a broken crypto library gets here; no input can cause it.
    CpixError::Recipient(format!("{what} failed"))
}

fn random<const N: usize>() -> Result<[u8; N], CpixError> {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out).map_err(|_| crypto_failed("random generation"))?;
    Ok(out)
}

fn oaep_wrap(key: &PublicEncryptingKey, plaintext: &[u8]) -> Result<Vec<u8>, CpixError> {
    let key = OaepPublicEncryptingKey::new(key.clone()).map_err(|_| crypto_failed("RSA-OAEP setup"))?;
    let mut out = vec![0u8; key.ciphertext_size()];
    let len = key.encrypt(&OAEP_SHA1_MGF1SHA1, plaintext, &mut out, None).map_err(|_| crypto_failed("RSA-OAEP"))?.len();
    out.truncate(len);
    Ok(out)
}

impl Sealer {
    pub fn new() -> Result<Sealer, CpixError> {
        Ok(Sealer { document_key: Zeroizing::new(random()?), mac_key: Zeroizing::new(random()?) })
    }

    /// Wrap the document key and MAC key to the recipient's certificate (checked by [`recipient_key`]).
    pub fn wrap_for(&self, recipient: &mut Recipient) -> Result<(), CpixError> {
        let key = recipient_key(&recipient.certificate)?;
        recipient.wrapped = Some(WrappedKeys {
            document_key: oaep_wrap(&key, &*self.document_key)?,
            mac_key: oaep_wrap(&key, &*self.mac_key)?,
        });
        Ok(())
    }

    /// A content key as `EncryptedValue` (IV | ciphertext) with its `ValueMAC`.
    pub fn seal(&self, content_key: &[u8; 16]) -> Result<KeyValue, CpixError> {
        let iv: [u8; 16] = random()?;
        let unbound = UnboundCipherKey::new(&AES_256, &*self.document_key).map_err(|_| crypto_failed("AES key"))?;
        let key = PaddedBlockEncryptingKey::cbc_pkcs7(unbound).map_err(|_| crypto_failed("AES-CBC"))?;
        let mut data = content_key.to_vec();
        key.less_safe_encrypt(&mut data, EncryptionContext::Iv128(FixedLength::from(iv)))
            .map_err(|_| crypto_failed("AES-CBC"))?;
        let mut cipher = iv.to_vec();
        cipher.extend_from_slice(&data);
        let mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA512, &*self.mac_key), &cipher);
        Ok(KeyValue::Encrypted { cipher, mac: Some(mac.as_ref().to_vec()) })
    }
}

/// The receiving side: unwrap the document and MAC keys with the recipient's private key (PKCS#8 DER), then open
/// encrypted content keys, checking each MAC. Clavis itself never holds a recipient's private key; this reads
/// documents addressed to a key Clavis is given (tests, imports).
pub struct Opener {
    document_key: Zeroizing<Vec<u8>>,
    mac_key: Zeroizing<Vec<u8>>,
}

impl Opener {
    pub fn new(private_key_pkcs8: &[u8], wrapped: &WrappedKeys) -> Result<Opener, CpixError> {
        let key = PrivateDecryptingKey::from_pkcs8(private_key_pkcs8)
            .map_err(|_| rejected("not an RSA PKCS#8 private key"))?;
        let key = OaepPrivateDecryptingKey::new(key).map_err(|_| crypto_failed("RSA-OAEP setup"))?;
        let unwrap = |cipher: &[u8]| -> Result<Zeroizing<Vec<u8>>, CpixError> {
            let mut out = Zeroizing::new(vec![0u8; key.min_output_size()]);
            let len = key
                .decrypt(&OAEP_SHA1_MGF1SHA1, cipher, &mut out, None)
                .map_err(|_| rejected("the wrapped key does not open with this private key"))?
                .len();
            out.truncate(len);
            Ok(out)
        };
        Ok(Opener { document_key: unwrap(&wrapped.document_key)?, mac_key: unwrap(&wrapped.mac_key)? })
    }

    pub fn open(&self, value: &KeyValue) -> Result<Zeroizing<[u8; 16]>, CpixError> {
        let (cipher, mac) = match value {
            KeyValue::Plain(key) => return Ok(key.clone()),
            KeyValue::Encrypted { cipher, mac } => (cipher, mac),
        };
        let mac =
            mac.as_ref().ok_or_else(|| CpixError::Invalid("encrypted content key without pskc:ValueMAC".into()))?;
        hmac::verify(&hmac::Key::new(hmac::HMAC_SHA512, &self.mac_key), cipher, mac)
            .map_err(|_| CpixError::Invalid("pskc:ValueMAC does not match the encrypted content key".into()))?;
        if cipher.len() < 32 || cipher.len() % 16 != 0 {
            return Err(CpixError::Invalid("encrypted content key has the wrong length".into()));
        }
        let (iv, body) = cipher.split_at(16);
        let iv = <[u8; 16]>::try_from(iv).map_err(|_| CpixError::Invalid("IV".into()))?;
        let unbound = UnboundCipherKey::new(&AES_256, &self.document_key)
            .map_err(|_| rejected("the document key is not 32 bytes"))?;
        let key = PaddedBlockDecryptingKey::cbc_pkcs7(unbound).map_err(|_| crypto_failed("AES-CBC"))?;
        let mut data = Zeroizing::new(body.to_vec());
        let plain = key
            .decrypt(&mut data, DecryptionContext::Iv128(FixedLength::from(iv)))
            .map_err(|_| CpixError::Invalid("encrypted content key does not decrypt".into()))?;
        <[u8; 16]>::try_from(&*plain)
            .map(Zeroizing::new)
            .map_err(|_| CpixError::Invalid("decrypted content key is not 16 bytes".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::KeySize;

    #[test]
    fn seal_and_open_round_trip() {
        let private = PrivateDecryptingKey::generate(KeySize::Rsa2048).unwrap();
        let pkcs8 = private.as_der().unwrap();
        let public = private.public_key();
        let sealer = Sealer::new().unwrap();
        let wrapped = WrappedKeys {
            document_key: oaep_wrap(&public, &*sealer.document_key).unwrap(),
            mac_key: oaep_wrap(&public, &*sealer.mac_key).unwrap(),
        };
        let sealed = sealer.seal(&[7; 16]).unwrap();
        let opener = Opener::new(pkcs8.as_ref(), &wrapped).unwrap();
        assert_eq!(*opener.open(&sealed).unwrap(), [7; 16]);
        let KeyValue::Encrypted { cipher, mut mac } = sealed else { panic!() };
        assert_eq!(cipher.len(), 48);
        if let Some(m) = mac.as_mut() {
            m[0] ^= 1;
        }
        assert!(opener.open(&KeyValue::Encrypted { cipher, mac }).is_err());
    }
}
