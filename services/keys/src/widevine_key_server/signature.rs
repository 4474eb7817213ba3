//! Key-request signatures, over the exact bytes of the signed request.
//!
//! AES signers: AES-256-CBC(key, iv) of SHA-1(request). Shaka Packager pads the 20-byte hash with PKCS#5, Google's old
//! reference proxy with zeros; both give 32 bytes whose first block and first 4 bytes of the second block depend only
//! on the hash, so decrypting the signature and comparing its first 20 bytes (in constant time) accepts both.
//! RSA signers: RSASSA-PSS with SHA-1, MGF1-SHA-1 and a 20-byte salt (aws-lc-rs has no SHA-1 PSS, so OpenSSL).

use aes::Aes256;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Public};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Verifier};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

const SHA1_LEN: usize = 20;
const AES_SIGNATURE_LEN: usize = 32;
/// Smallest RSA signer key accepted.
pub const MIN_RSA_BITS: u32 = 2048;
pub const MAX_RSA_BITS: u32 = 8192;

/// A signer's verification key.
pub enum SignerKey {
    Aes { key: Zeroizing<[u8; 32]>, iv: [u8; 16] },
    Rsa(PKey<Public>),
}

impl SignerKey {
    /// Whether `signature` is this signer's signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            SignerKey::Aes { key, iv } => verify_aes(key, iv, message, signature),
            SignerKey::Rsa(public_key) => verify_rsa_pss_sha1(public_key, message, signature),
        }
    }
}

fn sha1(message: &[u8]) -> [u8; SHA1_LEN] {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, message);
    let mut out = [0u8; SHA1_LEN];
    out.copy_from_slice(digest.as_ref());
    out
}

fn verify_aes(key: &[u8; 32], iv: &[u8; 16], message: &[u8], signature: &[u8]) -> bool {
    let Ok(signature) = <&[u8; AES_SIGNATURE_LEN]>::try_from(signature) else { return false };
    let cipher = Aes256::new(key.into());
    // CBC decryption of two blocks: P1 = D(C1) ^ IV, P2 = D(C2) ^ C1.
    let mut plain = Zeroizing::new([0u8; AES_SIGNATURE_LEN]);
    let (first, second) = signature.split_at(16);
    for (block, (cipher_block, chain)) in plain.chunks_exact_mut(16).zip([(first, &iv[..]), (second, first)]) {
        let mut b = aes::Block::default();
        b.copy_from_slice(cipher_block);
        cipher.decrypt_block(&mut b);
        for ((out, d), c) in block.iter_mut().zip(b.iter()).zip(chain) {
            *out = d ^ c;
        }
    }
    bool::from(plain[..SHA1_LEN].ct_eq(&sha1(message)))
}

/// The AES signature Shaka Packager makes (PKCS#5 padding): for tests and tools that act as a packager.
pub fn aes_signature(key: &[u8; 32], iv: &[u8; 16], message: &[u8]) -> [u8; AES_SIGNATURE_LEN] {
    let mut padded = [12u8; AES_SIGNATURE_LEN];
    padded[..SHA1_LEN].copy_from_slice(&sha1(message));
    let cipher = Aes256::new(key.into());
    let mut out = [0u8; AES_SIGNATURE_LEN];
    let mut chain = *iv;
    for (plain, out) in padded.chunks_exact(16).zip(out.chunks_exact_mut(16)) {
        let mut block = aes::Block::default();
        block.copy_from_slice(plain);
        for (b, c) in block.iter_mut().zip(chain) {
            *b ^= c;
        }
        cipher.encrypt_block(&mut block);
        out.copy_from_slice(&block);
        chain.copy_from_slice(&block);
    }
    out
}

fn verify_rsa_pss_sha1(public_key: &PKey<Public>, message: &[u8], signature: &[u8]) -> bool {
    let verify = || -> Result<bool, openssl::error::ErrorStack> {
        let mut verifier = Verifier::new(MessageDigest::sha1(), public_key)?;
        verifier.set_rsa_padding(Padding::PKCS1_PSS)?;
        verifier.set_rsa_mgf1_md(MessageDigest::sha1())?;
        verifier.set_rsa_pss_saltlen(RsaPssSaltlen::custom(SHA1_LEN as i32))?;
        verifier.verify_oneshot(signature, message)
    };
    verify().unwrap_or(false)
}

/// An RSA public key from PEM (`PUBLIC KEY`, or PKCS#1 `RSA PUBLIC KEY`), of an accepted size.
pub fn parse_rsa_public_key(pem: &str) -> Result<PKey<Public>, String> {
    let pem = pem.trim();
    if pem.contains("PRIVATE KEY") {
        return Err("give the signer's public key, never its private key".into());
    }
    let key = if pem.contains("BEGIN RSA PUBLIC KEY") {
        Rsa::public_key_from_pem_pkcs1(pem.as_bytes()).and_then(PKey::from_rsa)
    } else {
        PKey::public_key_from_pem(pem.as_bytes())
    }
    .map_err(|_| {
        "not a PEM RSA public key (-----BEGIN PUBLIC KEY----- or -----BEGIN RSA PUBLIC KEY-----)".to_owned()
    })?;
    if key.rsa().is_err() {
        return Err("the key is not an RSA key".into());
    }
    let bits = key.bits();
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(format!("the key has {bits} bits; {MIN_RSA_BITS} to {MAX_RSA_BITS} are accepted"));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "1ae8ccd0e7985cc0b6203a55855a1034afc252980e970ca90e5202689f947ab9";
    const IV: &str = "d58ce954203b7c9a9a9d467f59839249";
    const MESSAGE: &str = r#"{"content_id":"dGVzdCBjb250ZW50IGlk","policy":"","tracks":[{"type":"SD"},{"type":"HD"},{"type":"UHD1"},{"type":"UHD2"},{"type":"AUDIO"}],"drm_types":["WIDEVINE"],"protection_scheme":"CENC"}"#;

    fn signer() -> SignerKey {
        SignerKey::Aes {
            key: Zeroizing::new(hex::decode(KEY).unwrap().try_into().unwrap()),
            iv: hex::decode(IV).unwrap().try_into().unwrap(),
        }
    }

    fn b64(s: &str) -> Vec<u8> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    }

    #[test]
    fn public_widevine_test_vector_in_both_paddings() {
        let pkcs5 = b64("6D7aXKgIsgmb3zpWS4LCROsYbT4CAZhJTI8ZTa2ykSM=");
        let zero = b64("6D7aXKgIsgmb3zpWS4LCREjqtIT43m+wiUzrgIwFS/A=");
        assert!(signer().verify(MESSAGE.as_bytes(), &pkcs5));
        assert!(signer().verify(MESSAGE.as_bytes(), &zero));
        let key: [u8; 32] = hex::decode(KEY).unwrap().try_into().unwrap();
        let iv: [u8; 16] = hex::decode(IV).unwrap().try_into().unwrap();
        assert_eq!(aes_signature(&key, &iv, MESSAGE.as_bytes()).to_vec(), pkcs5);
    }

    #[test]
    fn any_changed_byte_fails() {
        let signature = b64("6D7aXKgIsgmb3zpWS4LCROsYbT4CAZhJTI8ZTa2ykSM=");
        let mut message = MESSAGE.as_bytes().to_vec();
        message[10] ^= 1;
        assert!(!signer().verify(&message, &signature));
        for i in 0..20 {
            let mut bad = signature.clone();
            bad[i] ^= 0x80;
            assert!(!signer().verify(MESSAGE.as_bytes(), &bad), "byte {i}");
        }
        assert!(!signer().verify(MESSAGE.as_bytes(), &signature[..16]));
        assert!(!signer().verify(MESSAGE.as_bytes(), &[]));
    }
}
