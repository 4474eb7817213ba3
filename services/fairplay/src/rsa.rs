//! RSA-OAEP (SHA-1, MGF1-SHA-1) decryption of the SPC key with AWS-LC.
//!
//! aws-lc-rs's safe `OaepPrivateDecryptingKey` refuses keys under 2048 bits, but FairPlay's SPC v1 and Apple's
//! development credentials use 1024-bit keys; so this calls AWS-LC's `RSA_decrypt` (constant time, blinded: the
//! same code aws-lc-rs runs) through `aws-lc-sys` for every key size, behind a small safe type. The pure-Rust
//! `rsa` crate is not an option (RUSTSEC-2023-0071, a timing side channel on exactly this attacker-fed input).

use std::ptr::NonNull;

use aws_lc_sys as ffi;

/// An RSA private key (from PKCS#1 `RSAPrivateKey` DER) that decrypts OAEP SHA-1 ciphertexts.
pub struct OaepKey {
    rsa: NonNull<ffi::RSA>,
    size: usize,
}

// AWS-LC's RSA objects are safe to use from several threads for private-key operations (the blinding state is
// locked inside); the pointer is owned and freed once.
unsafe impl Send for OaepKey {}
unsafe impl Sync for OaepKey {}

impl Drop for OaepKey {
    fn drop(&mut self) {
        // SAFETY: `rsa` came from RSA_private_key_from_bytes and is freed exactly once, here.
        unsafe { ffi::RSA_free(self.rsa.as_ptr()) }
    }
}

impl std::fmt::Debug for OaepKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OaepKey({} bits)", self.size * 8)
    }
}

impl OaepKey {
    /// The key from PKCS#1 `RSAPrivateKey` DER; `None` when it does not parse or fails AWS-LC's consistency check.
    pub fn from_pkcs1_der(der: &[u8]) -> Option<OaepKey> {
        // SAFETY: the pointer and length describe `der`, which outlives the call; AWS-LC copies what it keeps.
        let rsa = NonNull::new(unsafe { ffi::RSA_private_key_from_bytes(der.as_ptr(), der.len()) })?;
        // SAFETY: `rsa` is a valid key object until the OaepKey (which now owns it) is dropped.
        let key = OaepKey { rsa, size: unsafe { ffi::RSA_size(rsa.as_ptr()) } as usize };
        // SAFETY: as above.
        if unsafe { ffi::RSA_check_key(key.rsa.as_ptr()) } != 1 {
            return None;
        }
        Some(key)
    }

    /// The modulus size in bytes (128 for RSA-1024, 256 for RSA-2048): the size of a ciphertext.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The OAEP plaintext of `ciphertext`, or `None` when it is not a valid ciphertext for this key.
    pub fn decrypt(&self, ciphertext: &[u8]) -> Option<Vec<u8>> {
        if ciphertext.len() != self.size {
            return None;
        }
        let mut out = vec![0u8; self.size];
        let mut out_len = 0usize;
        // SAFETY: `out` has room for `out.len()` bytes, `ciphertext` is readable for its length, and `rsa` is valid.
        let ok = unsafe {
            ffi::RSA_decrypt(
                self.rsa.as_ptr(),
                &mut out_len,
                out.as_mut_ptr(),
                out.len(),
                ciphertext.as_ptr(),
                ciphertext.len(),
                ffi::RSA_PKCS1_OAEP_PADDING,
            )
        };
        // A failed decryption leaves an error on AWS-LC's thread-local queue; clear it so it cannot surface later.
        // SAFETY: no arguments; only touches this thread's error queue.
        unsafe { ffi::ERR_clear_error() };
        if ok != 1 || out_len > out.len() {
            return None;
        }
        out.truncate(out_len);
        Some(out)
    }
}

/// MD5, for the legacy OpenSSL PEM encryption's key derivation (EVP_BytesToKey) only.
pub(crate) fn md5(data: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    // SAFETY: `data` is readable for its length and `out` holds the 16 bytes MD5 writes.
    unsafe { ffi::MD5(data.as_ptr(), data.len(), out.as_mut_ptr()) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{KeySize, OAEP_SHA1_MGF1SHA1, OaepPublicEncryptingKey, PrivateDecryptingKey};

    /// A 2048-bit key made by aws-lc-rs, encrypted to with aws-lc-rs's own OAEP, opens here.
    #[test]
    fn opens_what_aws_lc_rs_encrypts_for_2048_bits() {
        let private = PrivateDecryptingKey::generate(KeySize::Rsa2048).unwrap();
        let pkcs8 = private.as_der().unwrap();
        let pkcs1 = crate::credentials::pkcs1_from_pkcs8(pkcs8.as_ref()).unwrap();
        let key = OaepKey::from_pkcs1_der(&pkcs1).unwrap();
        assert_eq!(key.size(), 256);
        let public = OaepPublicEncryptingKey::new(private.public_key()).unwrap();
        let mut ciphertext = vec![0u8; public.ciphertext_size()];
        let ciphertext = public.encrypt(&OAEP_SHA1_MGF1SHA1, b"0123456789abcdef", &mut ciphertext, None).unwrap();
        assert_eq!(key.decrypt(ciphertext).unwrap(), b"0123456789abcdef");
        let mut corrupt = ciphertext.to_vec();
        corrupt[10] ^= 1;
        assert!(key.decrypt(&corrupt).is_none());
        assert!(key.decrypt(&corrupt[1..]).is_none());
    }

    #[test]
    fn md5_matches_rfc1321() {
        assert_eq!(hex::encode(md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
    }
}
