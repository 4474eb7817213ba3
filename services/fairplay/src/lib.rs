//! FairPlay Streaming key server (KSM) protocol, without HTTP or storage: open an SPC with the provider's
//! credentials and build the CKC that carries the content key. See `shared/specs/fairplay.md` for the layouts.
//!
//! Processing an SPC: parse the container ([`SpcContainer`]), pick the credential the SPC names by certificate hash,
//! [`Provider::open`] it (RSA-OAEP unwrap of the SPC key, payload decryption, TLLVs, D function, [SK..R1] and its
//! integrity check), look the content key up by the asset id, and [`build_ckc`] under the terms the policy sets.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod credentials;
pub mod der;
pub mod dfunction;
pub mod rsa;
pub mod spc;

use aws_lc_rs::digest;
use zeroize::Zeroizing;

pub use dfunction::{AppleSample, DFunction, FixedDask};
pub use rsa::OaepKey;
pub use spc::{SpcContainer, SpcFields, Tllv};

/// Why an SPC is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpcError {
    #[error("{0}")]
    Malformed(String),
    #[error("the SPC key does not decrypt with the private key of the certificate it names")]
    KeyUndecryptable,
    #[error("the [SK..R1] integrity value does not match: wrong ASk or D function, or a tampered SPC")]
    Integrity,
}

/// AES-128 single blocks and unpadded CBC: all the FairPlay protocol needs.
// generic-array 0.14 (what aes 0.8 takes) is marked deprecated in favour of 1.x, which aes 0.8 cannot use.
#[allow(deprecated)]
pub mod aes128 {
    use aes::Aes128;
    use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit, generic_array::GenericArray};

    pub fn ecb_encrypt(key: &[u8; 16], block: &[u8; 16]) -> [u8; 16] {
        let cipher = Aes128::new(GenericArray::from_slice(key));
        let mut out = GenericArray::clone_from_slice(block);
        cipher.encrypt_block(&mut out);
        out.into()
    }

    /// CBC without padding, in place; `data` must be a whole number of blocks (callers check).
    pub fn cbc_decrypt(key: &[u8; 16], iv: &[u8; 16], data: &mut [u8]) {
        let cipher = Aes128::new(GenericArray::from_slice(key));
        let mut previous = *iv;
        for block in data.chunks_exact_mut(16) {
            let mut saved = [0u8; 16];
            saved.copy_from_slice(block);
            cipher.decrypt_block(GenericArray::from_mut_slice(block));
            block.iter_mut().zip(previous.iter()).for_each(|(b, p)| *b ^= p);
            previous = saved;
        }
    }

    /// CBC without padding, in place; `data` must be a whole number of blocks (callers make it so).
    pub fn cbc_encrypt(key: &[u8; 16], iv: &[u8; 16], data: &mut [u8]) {
        let cipher = Aes128::new(GenericArray::from_slice(key));
        let mut previous = *iv;
        for block in data.chunks_exact_mut(16) {
            block.iter_mut().zip(previous.iter()).for_each(|(b, p)| *b ^= p);
            cipher.encrypt_block(GenericArray::from_mut_slice(block));
            previous.copy_from_slice(block);
        }
    }
}

/// One provider credential, opened: the certificate's private key, the ASk and the D function.
pub struct Provider {
    key: OaepKey,
    ask: Zeroizing<[u8; 16]>,
    d: Box<dyn DFunction>,
}

impl Provider {
    pub fn new(key: OaepKey, ask: [u8; 16], d: Box<dyn DFunction>) -> Provider {
        Provider { key, ask: Zeroizing::new(ask), d }
    }

    /// Unwrap, decrypt and check an SPC made for this provider's certificate.
    pub fn open(&self, container: &SpcContainer<'_>) -> Result<OpenedSpc, SpcError> {
        if container.wrapped_key.len() != self.key.size() {
            return Err(SpcError::Malformed(format!(
                "an SPC v{} wraps its key for a {}-bit certificate; this certificate is {} bits",
                container.version,
                container.wrapped_key.len() * 8,
                self.key.size() * 8
            )));
        }
        let spck = self.key.decrypt(container.wrapped_key).ok_or(SpcError::KeyUndecryptable)?;
        let spck: Zeroizing<[u8; 16]> =
            Zeroizing::new(spck.as_slice().try_into().map_err(|_| SpcError::KeyUndecryptable)?);
        let mut payload = Zeroizing::new(container.payload.to_vec());
        aes128::cbc_decrypt(&spck, &container.iv, &mut payload);
        open_payload(&payload, container.version, &self.ask, self.d.as_ref())
    }
}

/// The key server's work on a decrypted SPC payload: its TLLVs, the D function, [SK..R1] and its integrity check.
pub fn open_payload(payload: &[u8], version: u32, ask: &[u8; 16], d: &dyn DFunction) -> Result<OpenedSpc, SpcError> {
    let tllvs = spc::parse_tllvs(payload)?;
    let fields = SpcFields::from_tllvs(&tllvs)?;
    let dask = Zeroizing::new(
        d.dask(fields.r2, ask).ok_or_else(|| SpcError::Malformed("R2 does not fit the D function".into()))?,
    );
    let mut sk_r1_iv = [0u8; 16];
    sk_r1_iv.copy_from_slice(&fields.sk_r1[..16]);
    let mut sk_r1 = Zeroizing::new([0u8; 96]);
    sk_r1.copy_from_slice(&fields.sk_r1[16..]);
    aes128::cbc_decrypt(&dask, &sk_r1_iv, sk_r1.as_mut_slice());
    // SK (16) | HU (20) | R1 (44) | integrity (16)
    let difference = sk_r1[80..96].iter().zip(fields.integrity.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if difference != 0 {
        return Err(SpcError::Integrity);
    }
    let mut sk = Zeroizing::new([0u8; 16]);
    sk.copy_from_slice(&sk_r1[..16]);
    let mut r1 = [0u8; 44];
    r1.copy_from_slice(&sk_r1[36..80]);
    Ok(OpenedSpc {
        version,
        sk,
        r1,
        anti_replay_seed: fields.anti_replay_seed,
        asset_id: fields.asset_id.to_vec(),
        echo: fields.echo.iter().map(|t| t.raw.to_vec()).collect(),
        playback_state: fields.playback_state,
        offline_sync: fields.offline_sync,
    })
}

/// What the key server needs from an opened SPC.
pub struct OpenedSpc {
    pub version: u32,
    pub sk: Zeroizing<[u8; 16]>,
    pub r1: [u8; 44],
    pub anti_replay_seed: [u8; 16],
    pub asset_id: Vec<u8>,
    /// The TLLVs the return request names, verbatim (header, value and padding).
    pub echo: Vec<Vec<u8>>,
    pub playback_state: Option<u32>,
    pub offline_sync: bool,
}

pub const TAG_CONTENT_KEY: u64 = 0x58b3_8165_af0e_3d5a;
pub const TAG_R1: u64 = 0xea74_c464_5d5e_fee9;
pub const TAG_KEY_DURATION: u64 = 0x47ac_f6a4_18cd_091a;
pub const TAG_HDCP: u64 = 0x2e52_f153_0d8d_db4a;
pub const TAG_OFFLINE_KEY: u64 = 0x6375_d972_7060_218c;

pub const KEY_TYPE_LEASE: u32 = 0x1a4b_de7e;
pub const KEY_TYPE_RENTAL: u32 = 0x3dfe_45a0;
pub const KEY_TYPE_LEASE_AND_RENTAL: u32 = 0x27b5_9bde;
pub const KEY_TYPE_PERSISTENT: u32 = 0x3df2_d9fb;
pub const KEY_TYPE_PERSISTENT_WITH_DURATION: u32 = 0x18f0_6048;

pub const HDCP_NONE: u64 = 0xef72_894c_a789_5b78;
pub const HDCP_TYPE_0: u64 = 0x4079_1ac7_8bd5_c571;
pub const HDCP_TYPE_1: u64 = 0x285a_0863_bba8_e1d3;

/// The key duration TLLV's content: how long the key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDuration {
    /// The key expires this many seconds after delivery, even mid-playback.
    Lease(u32),
    /// Playback must start within this many seconds of delivery.
    Rental(u32),
    LeaseAndRental {
        lease: u32,
        rental: u32,
    },
    /// Stored for offline playback, no expiry.
    Persistent,
    /// Stored for offline playback for this many seconds.
    PersistentWithDuration(u32),
}

impl KeyDuration {
    fn fields(self) -> (u32, u32, u32) {
        match self {
            KeyDuration::Lease(secs) => (secs, 0, KEY_TYPE_LEASE),
            KeyDuration::Rental(secs) => (0, secs, KEY_TYPE_RENTAL),
            KeyDuration::LeaseAndRental { lease, rental } => (lease, rental, KEY_TYPE_LEASE_AND_RENTAL),
            KeyDuration::Persistent => (0, 0, KEY_TYPE_PERSISTENT),
            KeyDuration::PersistentWithDuration(secs) => (secs, 0, KEY_TYPE_PERSISTENT_WITH_DURATION),
        }
    }
}

/// A persistent key with a storage and a playback duration (Apple's "dual expiry"), in the offline key TLLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfflineKey {
    /// Names the stored key (Clavis uses the KID).
    pub content_id: [u8; 16],
    /// Seconds the key may stay stored; 0 is unlimited.
    pub storage_seconds: u32,
    /// Seconds playback may last once started; 0 is unlimited.
    pub playback_seconds: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HdcpRequirement {
    None,
    Type0,
    Type1,
}

/// The terms the policy puts in the CKC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CkcTerms {
    pub duration: Option<KeyDuration>,
    pub offline: Option<OfflineKey>,
    pub hdcp: Option<HdcpRequirement>,
}

fn push_tllv(out: &mut Vec<u8>, tag: u64, value: &[u8], padding: &mut impl Iterator<Item = u8>) {
    let block = value.len().div_ceil(16) * 16;
    out.extend_from_slice(&tag.to_be_bytes());
    out.extend_from_slice(&(block as u32).to_be_bytes());
    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    out.extend_from_slice(value);
    out.extend((value.len()..block).map(|_| padding.next().unwrap_or(0)));
}

/// The CKC for an opened SPC: the content key (under SK) with its IV, R1, the echoed TLLVs and the terms, all
/// under the anti-replay key, in the versioned container.
pub fn build_ckc(
    spc: &OpenedSpc,
    content_key: &[u8; 16],
    content_iv: &[u8; 16],
    terms: &CkcTerms,
) -> Result<Vec<u8>, aws_lc_rs::error::Unspecified> {
    // Random padding (at most 15 bytes per TLLV) and the CKC IV.
    let mut random = [0u8; 16 * 8];
    aws_lc_rs::rand::fill(&mut random)?;
    let (iv_bytes, padding_bytes) = random.split_at(16);
    let mut padding = padding_bytes.iter().copied().cycle();

    let mut payload = Zeroizing::new(Vec::with_capacity(512 + spc.echo.iter().map(Vec::len).sum::<usize>()));
    let mut key_value = [0u8; 32];
    key_value[..16].copy_from_slice(content_iv);
    key_value[16..].copy_from_slice(&aes128::ecb_encrypt(&spc.sk, content_key));
    push_tllv(&mut payload, TAG_CONTENT_KEY, &key_value, &mut padding);
    push_tllv(&mut payload, TAG_R1, &spc.r1, &mut padding);
    for raw in &spc.echo {
        payload.extend_from_slice(raw);
    }
    if let Some(duration) = terms.duration {
        let (lease, rental, key_type) = duration.fields();
        let mut value = [0u8; 16];
        value[..4].copy_from_slice(&lease.to_be_bytes());
        value[4..8].copy_from_slice(&rental.to_be_bytes());
        value[8..12].copy_from_slice(&key_type.to_be_bytes());
        push_tllv(&mut payload, TAG_KEY_DURATION, &value, &mut padding);
    }
    if let Some(offline) = terms.offline {
        let mut value = [0u8; 32];
        value[..4].copy_from_slice(&1u32.to_be_bytes());
        value[8..24].copy_from_slice(&offline.content_id);
        value[24..28].copy_from_slice(&offline.storage_seconds.to_be_bytes());
        value[28..32].copy_from_slice(&offline.playback_seconds.to_be_bytes());
        push_tllv(&mut payload, TAG_OFFLINE_KEY, &value, &mut padding);
    }
    if let Some(hdcp) = terms.hdcp {
        let requirement = match hdcp {
            HdcpRequirement::None => HDCP_NONE,
            HdcpRequirement::Type0 => HDCP_TYPE_0,
            HdcpRequirement::Type1 => HDCP_TYPE_1,
        };
        let mut value = [0u8; 16];
        value[..8].copy_from_slice(&requirement.to_be_bytes());
        push_tllv(&mut payload, TAG_HDCP, &value, &mut padding);
    }

    let mut r1_hash = [0u8; 16];
    r1_hash.copy_from_slice(&digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &spc.r1).as_ref()[..16]);
    let anti_replay_key = Zeroizing::new(aes128::ecb_encrypt(&r1_hash, &spc.anti_replay_seed));
    let mut iv = [0u8; 16];
    iv.copy_from_slice(iv_bytes);
    aes128::cbc_encrypt(&anti_replay_key, &iv, &mut payload);

    let mut ckc = Vec::with_capacity(28 + payload.len());
    ckc.extend_from_slice(&1u32.to_be_bytes());
    ckc.extend_from_slice(&0u32.to_be_bytes());
    ckc.extend_from_slice(&iv);
    ckc.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    ckc.extend_from_slice(&payload);
    Ok(ckc)
}

/// SHA-1, as FairPlay names certificates (the SPC carries the SHA-1 of the certificate DER).
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut out = [0u8; 20];
    out.copy_from_slice(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared vectors, as the integration kit finds them (`CLAVIS_TEST_VECTORS`, else beside the checkout).
    pub(crate) fn vectors_dir() -> std::path::PathBuf {
        let dir = std::env::var_os("CLAVIS_TEST_VECTORS").map_or_else(
            || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors"),
            std::path::PathBuf::from,
        );
        assert!(dir.is_dir(), "test vectors not found at {} (set CLAVIS_TEST_VECTORS)", dir.display());
        dir
    }

    /// Apple's development credentials and the DASk of the SDK verification set open every sample SPC to the SK,
    /// R1 and asset id the decoded vectors list.
    #[test]
    fn opens_every_apple_sample_spc() {
        let base = vectors_dir().join("fairplay/apple-fps-sdk-4.1.0-via-andreyrikunov");
        let pem = std::fs::read_to_string(base.join("credentials/dev_private_key.pem")).unwrap();
        let cert = std::fs::read(base.join("credentials/dev_certificate.der")).unwrap();
        let validated = credentials::validate(&cert, &pem, None).unwrap();
        assert_eq!(validated.certificate.key_bits, 1024);
        assert_eq!(hex::encode(validated.certificate.sha1), "5561980aa51f03aa04bca24556c841a71736c771");
        let key = OaepKey::from_pkcs1_der(&validated.private_key_pkcs1).unwrap();
        let mut dask = [0u8; 16];
        hex::decode_to_slice("d87ce7a26081de2e8eb8acef3a6dc179", &mut dask).unwrap();
        let provider = Provider::new(key, [0; 16], Box::new(FixedDask(dask)));
        let mut seen = 0;
        for file in ["expected_decoded_apple_sdk.json", "expected_decoded_apple_sdk_dualexpiry.json"] {
            let text = std::fs::read_to_string(vectors_dir().join("fairplay").join(file)).unwrap();
            let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
            for (name, case) in expected.as_object().unwrap() {
                let bytes = std::fs::read(base.join(name)).unwrap();
                let container = SpcContainer::parse(&bytes).unwrap();
                assert_eq!(hex::encode(container.certificate_sha1), case["cert_hash_sha1"].as_str().unwrap());
                let opened = provider.open(&container).unwrap();
                assert_eq!(hex::encode(*opened.sk), case["sk_r1_decrypted"]["SK"].as_str().unwrap(), "{name}");
                assert_eq!(hex::encode(opened.r1), case["sk_r1_decrypted"]["R1"].as_str().unwrap(), "{name}");
                let asset = case["tllvs"].as_array().unwrap().iter().find(|t| t["name"] == "asset_id").unwrap();
                assert_eq!(hex::encode(&opened.asset_id), asset["value"].as_str().unwrap(), "{name}");
                seen += 1;
            }
        }
        assert_eq!(seen, 9);
        // A wrong DASk fails the integrity check, never anything worse.
        let bytes = std::fs::read(base.join("verification/FPS/spc1.bin")).unwrap();
        let key =
            OaepKey::from_pkcs1_der(&credentials::validate(&cert, &pem, None).unwrap().private_key_pkcs1).unwrap();
        let wrong = Provider::new(key, [0; 16], Box::new(FixedDask([1; 16])));
        assert_eq!(wrong.open(&SpcContainer::parse(&bytes).unwrap()).err(), Some(SpcError::Integrity));
    }
}
