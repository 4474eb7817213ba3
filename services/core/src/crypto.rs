//! Envelope encryption of secrets at rest, and the platform's randomness and hashing.
//!
//! Every secret (content keys, token signing secrets, FairPlay private keys, ASks, ...) is sealed with a fresh
//! 256-bit data key; the data key is wrapped with the master key. Both layers are AES-256-GCM (ring), and both bind
//! the caller's context string (for example `content_key/<tenant>/<kid>`) as associated data, so a sealed value copied
//! to another row, tenant or purpose fails to open. Rotating the master key only re-wraps the small data keys.
//!
//! Sealed layout (version 1):
//! `0x01 | master key id (4) | wrap nonce (12) | wrapped data key (32 + 16) | data nonce (12) | ciphertext + tag`

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::error::{ClavisError, Result};

const VERSION: u8 = 1;
const KEY_ID_LEN: usize = 4;
const TAG_LEN: usize = 16;
const WRAPPED_LEN: usize = 32 + TAG_LEN;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN + WRAPPED_LEN + NONCE_LEN;

/// Fill `out` from the operating system's CSPRNG.
pub fn fill_random(out: &mut [u8]) -> Result<()> {
    SystemRandom::new().fill(out).map_err(|_| ClavisError::internal("randomness", "the system CSPRNG failed"))
}

pub fn random_array<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    fill_random(&mut out)?;
    Ok(out)
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

/// The platform master key (key-encryption key). Its bytes never leave this type.
///
/// It seals with the current key and opens with whichever key a sealed value names: the current one or one of the
/// previous keys kept during a rotation (see [`MasterKey::rewrap`] and `clavis master-key rotate`).
pub struct MasterKey {
    key: LessSafeKey,
    id: [u8; KEY_ID_LEN],
    previous: Vec<MasterKey>,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(id={})", hex::encode(self.id))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("the master key must be base64 of exactly 32 bytes")]
    Malformed,
    #[error("master key file {0}: {1}")]
    Io(String, std::io::Error),
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<MasterKey, MasterKeyError> {
        if bytes.len() != 32 {
            return Err(MasterKeyError::Malformed);
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| MasterKeyError::Malformed)?;
        let mut id = [0u8; KEY_ID_LEN];
        let mut labelled = Zeroizing::new(b"clavis-master-key-id:".to_vec());
        labelled.extend_from_slice(bytes);
        id.copy_from_slice(&sha256(&labelled)[..KEY_ID_LEN]);
        Ok(MasterKey { key: LessSafeKey::new(key), id, previous: Vec::new() })
    }

    /// Also accept values sealed under `previous` keys (read-only: new values are always sealed with this key).
    pub fn with_previous(mut self, previous: Vec<MasterKey>) -> MasterKey {
        self.previous = previous.into_iter().filter(|k| k.id != self.id).collect();
        self
    }

    /// Parse `CLAVIS_MASTER_KEY_PREVIOUS`: comma-separated base64 keys.
    pub fn parse_list(encoded: &str) -> Result<Vec<MasterKey>, MasterKeyError> {
        encoded.split(',').map(str::trim).filter(|k| !k.is_empty()).map(MasterKey::from_base64).collect()
    }

    /// Which master key sealed `sealed` (hex of its 4-byte id), or `None` when the value is malformed.
    pub fn sealed_by(sealed: &[u8]) -> Option<String> {
        (sealed.len() >= HEADER_LEN + TAG_LEN && sealed[0] == VERSION).then(|| hex::encode(&sealed[1..1 + KEY_ID_LEN]))
    }

    /// The key (current or previous) whose id the sealed value names.
    fn key_for(&self, key_id: &[u8]) -> Option<&MasterKey> {
        if key_id == self.id { Some(self) } else { self.previous.iter().find(|k| k.id == key_id) }
    }

    /// Re-wrap a value sealed under a previous key so the current key opens it; `None` when it already is.
    ///
    /// Only the 32-byte data key is decrypted and wrapped again (with a fresh nonce); the sealed secret itself is
    /// copied unchanged, so a rotation never holds the secrets in memory and cannot alter them.
    pub fn rewrap(&self, context: &str, sealed: &[u8]) -> Result<Option<Vec<u8>>> {
        let (key_id, wrap_nonce, wrapped, _) = split_sealed(context, sealed)?;
        if key_id == self.id {
            return Ok(None);
        }
        let old = self.key_for(key_id).ok_or_else(|| unknown_key(context, key_id, self))?;
        let failed = || ClavisError::internal("rewrap", format!("sealed value for {context} does not authenticate"));
        let mut data_key = Zeroizing::new(wrapped.to_vec());
        let nonce = Nonce::try_assume_unique_for_key(wrap_nonce).map_err(|_| failed())?;
        let data_key =
            old.key.open_in_place(nonce, Aad::from(context.as_bytes()), &mut data_key).map_err(|_| failed())?;

        let new_nonce = random_array::<NONCE_LEN>()?;
        let mut rewrapped = Zeroizing::new(data_key.to_vec());
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(new_nonce),
                Aad::from(context.as_bytes()),
                &mut *rewrapped,
            )
            .map_err(|_| ClavisError::internal("rewrap", "wrapping the data key failed"))?;
        let mut out = sealed.to_vec();
        out[1..1 + KEY_ID_LEN].copy_from_slice(&self.id);
        out[1 + KEY_ID_LEN..1 + KEY_ID_LEN + NONCE_LEN].copy_from_slice(&new_nonce);
        out[1 + KEY_ID_LEN + NONCE_LEN..1 + KEY_ID_LEN + NONCE_LEN + WRAPPED_LEN].copy_from_slice(&rewrapped);
        Ok(Some(out))
    }

    pub fn from_base64(encoded: &str) -> Result<MasterKey, MasterKeyError> {
        let bytes = Zeroizing::new(STANDARD.decode(encoded.trim()).map_err(|_| MasterKeyError::Malformed)?);
        MasterKey::from_bytes(&bytes)
    }

    /// A new random key, base64-encoded (what `CLAVIS_MASTER_KEY` holds).
    pub fn generate_base64() -> Result<Zeroizing<String>> {
        let bytes = Zeroizing::new(random_array::<32>()?);
        Ok(Zeroizing::new(STANDARD.encode(*bytes)))
    }

    /// Read the embedded-mode key file, or create it (mode 0600) when absent. Returns whether it was created.
    pub fn load_or_create_file(path: &Path) -> Result<(MasterKey, bool), MasterKeyError> {
        let io = |e| MasterKeyError::Io(path.display().to_string(), e);
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((MasterKey::from_base64(&Zeroizing::new(text))?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(io)?;
                }
                let encoded = MasterKey::generate_base64().map_err(|_| MasterKeyError::Malformed)?;
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut file = match options.open(path) {
                    Ok(file) => file,
                    // Another process made it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Self::load_existing(path),
                    Err(e) => return Err(io(e)),
                };
                file.write_all(encoded.as_bytes()).map_err(io)?;
                file.sync_all().map_err(io)?;
                Ok((MasterKey::from_base64(&encoded)?, true))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Read a key file another process is creating: wait briefly for its content to be complete.
    fn load_existing(path: &Path) -> Result<(MasterKey, bool), MasterKeyError> {
        let mut last = MasterKeyError::Malformed;
        for _ in 0..50 {
            match std::fs::read_to_string(path) {
                Ok(text) => match MasterKey::from_base64(&Zeroizing::new(text)) {
                    Ok(key) => return Ok((key, false)),
                    Err(e) => last = e,
                },
                Err(e) => last = MasterKeyError::Io(path.display().to_string(), e),
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Err(last)
    }

    pub fn id_hex(&self) -> String {
        hex::encode(self.id)
    }

    /// Seal `plaintext` under a fresh data key; `context` names what the secret is and whose it is.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let data_key = Zeroizing::new(random_array::<32>()?);
        let wrap_nonce = random_array::<NONCE_LEN>()?;
        let data_nonce = random_array::<NONCE_LEN>()?;

        let mut wrapped = Zeroizing::new(data_key.to_vec());
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(wrap_nonce),
                Aad::from(context.as_bytes()),
                &mut *wrapped,
            )
            .map_err(|_| ClavisError::internal("seal", "wrapping the data key failed"))?;

        let data = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &*data_key).map_err(|_| ClavisError::internal("seal", "bad data key"))?,
        );
        let mut body = plaintext.to_vec();
        data.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(data_nonce),
            Aad::from(context.as_bytes()),
            &mut body,
        )
        .map_err(|_| ClavisError::internal("seal", "sealing the secret failed"))?;

        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.push(VERSION);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&wrap_nonce);
        out.extend_from_slice(&wrapped);
        out.extend_from_slice(&data_nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Open a value sealed by [`MasterKey::seal`] with the same `context` (under this key or a previous one).
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let (key_id, wrap_nonce, wrapped, rest) = split_sealed(context, sealed)?;
        let key = self.key_for(key_id).ok_or_else(|| unknown_key(context, key_id, self))?;
        let (data_nonce, body) = rest.split_at(NONCE_LEN);
        let failed = || ClavisError::internal("open", format!("sealed value for {context} does not authenticate"));

        let mut data_key = Zeroizing::new(wrapped.to_vec());
        let nonce = Nonce::try_assume_unique_for_key(wrap_nonce).map_err(|_| failed())?;
        let data_key =
            key.key.open_in_place(nonce, Aad::from(context.as_bytes()), &mut data_key).map_err(|_| failed())?;
        let data = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, data_key).map_err(|_| failed())?);

        let mut plaintext = Zeroizing::new(body.to_vec());
        let nonce = Nonce::try_assume_unique_for_key(data_nonce).map_err(|_| failed())?;
        let len = data.open_in_place(nonce, Aad::from(context.as_bytes()), &mut plaintext).map_err(|_| failed())?.len();
        plaintext.truncate(len);
        Ok(plaintext)
    }
}

/// A sealed value's parts: key id, wrap nonce, wrapped data key and the rest (data nonce, ciphertext).
type SealedParts<'a> = (&'a [u8], &'a [u8], &'a [u8], &'a [u8]);

fn split_sealed<'a>(context: &str, sealed: &'a [u8]) -> Result<SealedParts<'a>> {
    if sealed.len() < HEADER_LEN + TAG_LEN || sealed[0] != VERSION {
        return Err(ClavisError::internal("open", format!("sealed value for {context} is malformed")));
    }
    let (key_id, rest) = sealed[1..].split_at(KEY_ID_LEN);
    let (wrap_nonce, rest) = rest.split_at(NONCE_LEN);
    let (wrapped, rest) = rest.split_at(WRAPPED_LEN);
    Ok((key_id, wrap_nonce, wrapped, rest))
}

fn unknown_key(context: &str, key_id: &[u8], current: &MasterKey) -> ClavisError {
    ClavisError::internal(
        "open",
        format!(
            "sealed value for {context} was sealed with master key {}, which is neither the current key {} nor one \
             of CLAVIS_MASTER_KEY_PREVIOUS",
            hex::encode(key_id),
            current.id_hex()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> MasterKey {
        MasterKey::from_base64(&MasterKey::generate_base64().unwrap()).unwrap()
    }

    #[test]
    fn sealed_values_need_the_same_context_and_key() {
        let master = key();
        let sealed = master.seal("content_key/t1/kid", b"0123456789abcdef").unwrap();
        assert_eq!(&*master.open("content_key/t1/kid", &sealed).unwrap(), b"0123456789abcdef");
        assert!(master.open("content_key/t2/kid", &sealed).is_err(), "another tenant's context must not open it");
        assert!(key().open("content_key/t1/kid", &sealed).is_err(), "another master key must not open it");
        assert!(!sealed.windows(16).any(|w| w == b"0123456789abcdef"), "plaintext must not appear in the blob");
    }

    #[test]
    fn rotation_rewraps_without_touching_the_secret() {
        let (old, new) = (key(), key());
        let sealed = old.seal("token_key/t1/k1", b"secret bytes").unwrap();
        let old_id = old.id_hex();
        let ring = new.with_previous(vec![MasterKey::from_bytes(&[0u8; 32]).unwrap(), old]);
        // The new key opens the old value through the previous list, and re-wraps it under itself.
        assert_eq!(&*ring.open("token_key/t1/k1", &sealed).unwrap(), b"secret bytes");
        assert_eq!(MasterKey::sealed_by(&sealed).unwrap(), old_id);
        let rewrapped = ring.rewrap("token_key/t1/k1", &sealed).unwrap().expect("needs re-wrapping");
        assert_eq!(MasterKey::sealed_by(&rewrapped).unwrap(), ring.id_hex());
        assert_eq!(rewrapped[HEADER_LEN..], sealed[HEADER_LEN..], "the sealed secret itself is copied unchanged");
        assert!(ring.rewrap("token_key/t1/k1", &rewrapped).unwrap().is_none(), "already current");
        // Without the previous keys only the re-wrapped value opens.
        let alone = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        assert!(alone.open("token_key/t1/k1", &sealed).is_err());
        assert!(ring.rewrap("token_key/t2/k1", &sealed).is_err(), "the context still binds the data key");
        let unknown = key().seal("token_key/t1/k1", b"x").unwrap();
        assert!(ring.rewrap("token_key/t1/k1", &unknown).is_err(), "an unknown key is an error, never a silent skip");
    }

    #[test]
    fn malformed_keys_are_refused() {
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let (first, created) = MasterKey::load_or_create_file(&path).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let (second, created) = MasterKey::load_or_create_file(&path).unwrap();
        assert!(!created);
        assert_eq!(first.id_hex(), second.id_hex());
    }

    proptest! {
        #[test]
        fn seal_open_round_trips(data in proptest::collection::vec(any::<u8>(), 0..512), ctx in "[a-z/0-9]{0,40}") {
            let master = key();
            let sealed = master.seal(&ctx, &data).unwrap();
            prop_assert_eq!(&*master.open(&ctx, &sealed).unwrap(), &data[..]);
        }

        #[test]
        fn any_bit_flip_is_detected(data in proptest::collection::vec(any::<u8>(), 1..64), flip in any::<prop::sample::Index>()) {
            let master = key();
            let mut sealed = master.seal("ctx", &data).unwrap();
            let i = flip.index(sealed.len());
            sealed[i] ^= 0x01;
            prop_assert!(master.open("ctx", &sealed).is_err());
        }
    }
}
