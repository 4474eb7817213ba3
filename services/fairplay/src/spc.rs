//! The SPC (server playback context): the outer container, the TLLV list inside its payload, and the fields the
//! key server needs. Every length in an SPC comes from the client, so each one is checked before it is used.

use crate::SpcError;

pub const TAG_SK_R1: u64 = 0x3d1a_10b8_bffa_c2ec;
pub const TAG_SK_R1_INTEGRITY: u64 = 0xb349_d480_9e91_0687;
pub const TAG_ANTI_REPLAY_SEED: u64 = 0x89c9_0f12_2041_06b2;
pub const TAG_R2: u64 = 0x71b5_595a_c152_1133;
pub const TAG_RETURN_REQUEST: u64 = 0x19f9_d4e5_ab76_09cb;
pub const TAG_ASSET_ID: u64 = 0x1bf7_f53f_5d5d_5a1f;
pub const TAG_TRANSACTION_ID: u64 = 0x47aa_7ad3_4405_77de;
pub const TAG_PROTOCOL_VERSION_USED: u64 = 0x5d81_bcbc_c7f6_1703;
pub const TAG_STREAMING_INDICATOR: u64 = 0xabb0_256a_3184_3974;
pub const TAG_MEDIA_PLAYBACK_STATE: u64 = 0xeb8e_fdf2_b25a_b3a0;
pub const TAG_OFFLINE_SYNC: u64 = 0x7796_6de1_dc10_83ad;

/// Bytes before the payload for a given wrapped-key size: version, reserved, IV, key, certificate hash, length.
const fn header_len(key_len: usize) -> usize {
    4 + 4 + 16 + key_len + 20 + 4
}

/// Largest SPC accepted (Apple's are 2 to 5 KiB).
pub const MAX_SPC_BYTES: usize = 64 * 1024;
/// Most TLLVs one payload may hold.
pub const MAX_TLLVS: usize = 1024;
const TLLV_HEADER: usize = 16;

/// The SPC's outer layer, before any decryption.
#[derive(Debug, Clone, Copy)]
pub struct SpcContainer<'a> {
    pub version: u32,
    pub iv: [u8; 16],
    /// The SPC key, wrapped with RSA-OAEP to the provider key (128 bytes in v1, 256 in v2).
    pub wrapped_key: &'a [u8],
    /// SHA-1 of the provider certificate the SPC was made for.
    pub certificate_sha1: [u8; 20],
    /// AES-128-CBC under the SPC key: a list of TLLVs.
    pub payload: &'a [u8],
}

fn malformed(detail: impl Into<String>) -> SpcError {
    SpcError::Malformed(detail.into())
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    bytes.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes)
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    bytes.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes)
}

impl<'a> SpcContainer<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<SpcContainer<'a>, SpcError> {
        if bytes.len() > MAX_SPC_BYTES {
            return Err(malformed(format!("an SPC is at most {MAX_SPC_BYTES} bytes")));
        }
        let version = u32_at(bytes, 0).ok_or_else(|| malformed("too short for an SPC"))?;
        // Version 1 wraps the SPC key to a 1024-bit certificate, version 2 to a 2048-bit one.
        let key_len = match version {
            1 => 128,
            2 => 256,
            other => return Err(malformed(format!("SPC version {other} is not supported (1 and 2 are)"))),
        };
        let header = header_len(key_len);
        if bytes.len() < header {
            return Err(malformed(format!("an SPC v{version} has a {header}-byte header; got {} bytes", bytes.len())));
        }
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&bytes[8..24]);
        let wrapped_key = &bytes[24..24 + key_len];
        let mut certificate_sha1 = [0u8; 20];
        certificate_sha1.copy_from_slice(&bytes[24 + key_len..44 + key_len]);
        let declared = u32_at(bytes, 44 + key_len).ok_or_else(|| malformed("no payload length"))? as usize;
        let payload = &bytes[header..];
        if declared != payload.len() {
            return Err(malformed(format!("the payload length says {declared} bytes; {} follow", payload.len())));
        }
        if payload.is_empty() || !payload.len().is_multiple_of(16) {
            return Err(malformed("the payload is not a whole number of AES blocks"));
        }
        Ok(SpcContainer { version, iv, wrapped_key, certificate_sha1, payload })
    }
}

/// One TLLV: tag, value, and the whole encoding (header, value and padding) for echoing it verbatim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tllv<'a> {
    pub tag: u64,
    pub value: &'a [u8],
    pub raw: &'a [u8],
}

/// The TLLVs of a decrypted payload. They must tile it exactly: each `tag | block length | value length | value |
/// padding`, the value within the block and the block within the payload.
pub fn parse_tllvs(payload: &[u8]) -> Result<Vec<Tllv<'_>>, SpcError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < payload.len() {
        if out.len() == MAX_TLLVS {
            return Err(malformed(format!("more than {MAX_TLLVS} TLLVs")));
        }
        let rest = &payload[at..];
        let (Some(tag), Some(block_len), Some(value_len)) = (u64_at(rest, 0), u32_at(rest, 8), u32_at(rest, 12)) else {
            return Err(malformed(format!("truncated TLLV header at payload offset {at}")));
        };
        let (block_len, value_len) = (block_len as usize, value_len as usize);
        if value_len > block_len {
            return Err(malformed(format!(
                "TLLV {tag:016x}: value length {value_len} exceeds block length {block_len}"
            )));
        }
        let end = TLLV_HEADER
            .checked_add(block_len)
            .filter(|end| *end <= rest.len())
            .ok_or_else(|| malformed(format!("TLLV {tag:016x} runs past the end of the payload")))?;
        out.push(Tllv { tag, value: &rest[TLLV_HEADER..TLLV_HEADER + value_len], raw: &rest[..end] });
        at += end;
    }
    Ok(out)
}

/// The fields of a decrypted SPC payload that the key server reads. Borrowed from the payload.
#[derive(Debug, Clone)]
pub struct SpcFields<'a> {
    /// [SK..R1]: IV (16) and the 96 encrypted bytes.
    pub sk_r1: &'a [u8],
    pub integrity: [u8; 16],
    pub anti_replay_seed: [u8; 16],
    pub r2: &'a [u8],
    pub asset_id: &'a [u8],
    /// The TLLVs the return request names, in its order, verbatim.
    pub echo: Vec<Tllv<'a>>,
    /// The playback state's state word, when the client sent one (first playback, playing...).
    pub playback_state: Option<u32>,
    /// Whether the client sent an offline sync TLLV (a persistent key's renewal or release report).
    pub offline_sync: bool,
}

/// Longest asset id (Apple: 2 to 200 bytes).
pub const MAX_ASSET_ID: usize = 200;
/// Longest R2 the key server accepts (the sample D function needs it below 56 bytes).
pub const MAX_R2: usize = 55;

impl<'a> SpcFields<'a> {
    pub fn from_tllvs(tllvs: &[Tllv<'a>]) -> Result<SpcFields<'a>, SpcError> {
        let find = |tag: u64, name: &str| {
            let mut matching = tllvs.iter().filter(|t| t.tag == tag);
            let first = matching.next().ok_or_else(|| malformed(format!("the SPC has no {name} TLLV")))?;
            if matching.next().is_some() {
                return Err(malformed(format!("the SPC has more than one {name} TLLV")));
            }
            Ok(first.value)
        };
        let fixed16 = |tag: u64, name: &str| -> Result<[u8; 16], SpcError> {
            find(tag, name)?.try_into().map_err(|_| malformed(format!("the {name} TLLV must be 16 bytes")))
        };
        let sk_r1 = find(TAG_SK_R1, "[SK..R1]")?;
        if sk_r1.len() != 112 {
            return Err(malformed("the [SK..R1] TLLV must be 112 bytes"));
        }
        let integrity = fixed16(TAG_SK_R1_INTEGRITY, "[SK..R1] integrity")?;
        let anti_replay_seed = fixed16(TAG_ANTI_REPLAY_SEED, "anti-replay seed")?;
        let r2 = find(TAG_R2, "R2")?;
        if r2.is_empty() || r2.len() > MAX_R2 {
            return Err(malformed(format!("R2 must be 1 to {MAX_R2} bytes")));
        }
        let asset_id = find(TAG_ASSET_ID, "asset id")?;
        if asset_id.is_empty() || asset_id.len() > MAX_ASSET_ID {
            return Err(malformed(format!("the asset id must be 1 to {MAX_ASSET_ID} bytes")));
        }
        let requested = find(TAG_RETURN_REQUEST, "return request")?;
        if requested.len() % 8 != 0 {
            return Err(malformed("the return request is not a list of 8-byte tags"));
        }
        let mut echo = Vec::with_capacity(requested.len() / 8);
        for tag in requested.chunks_exact(8).filter_map(|c| c.try_into().ok()).map(u64::from_be_bytes) {
            let tllv = tllvs
                .iter()
                .find(|t| t.tag == tag)
                .ok_or_else(|| malformed(format!("the return request names tag {tag:016x}, which the SPC lacks")))?;
            if !echo.iter().any(|e: &Tllv<'_>| e.tag == tag) {
                echo.push(*tllv);
            }
        }
        let playback_state = tllvs.iter().find(|t| t.tag == TAG_MEDIA_PLAYBACK_STATE).and_then(|t| u32_at(t.value, 4));
        let offline_sync = tllvs.iter().any(|t| t.tag == TAG_OFFLINE_SYNC);
        Ok(SpcFields { sk_r1, integrity, anti_replay_seed, r2, asset_id, echo, playback_state, offline_sync })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn tllv(tag: u64, value: &[u8], block: usize) -> Vec<u8> {
        let mut out = tag.to_be_bytes().to_vec();
        out.extend_from_slice(&(block as u32).to_be_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value);
        out.resize(TLLV_HEADER + block, 0xa5);
        out
    }

    #[test]
    fn tllvs_tile_the_payload() {
        let mut payload = tllv(1, b"abc", 16);
        payload.extend(tllv(2, &[], 0));
        let parsed = parse_tllvs(&payload).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].value, b"abc");
        assert_eq!(parsed[0].raw.len(), 32);
        assert!(parse_tllvs(&payload[..20]).is_err());
        let mut too_long = tllv(1, b"abc", 16);
        too_long[12..16].copy_from_slice(&17u32.to_be_bytes());
        assert!(parse_tllvs(&too_long).is_err());
        let mut huge_block = tllv(1, b"abc", 16);
        huge_block[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse_tllvs(&huge_block).is_err());
    }

    #[test]
    fn container_bounds() {
        assert!(SpcContainer::parse(&[]).is_err());
        assert!(SpcContainer::parse(&[0, 0, 0, 3]).is_err());
        let mut spc = vec![0u8; 176 + 16];
        spc[3] = 1;
        spc[172..176].copy_from_slice(&16u32.to_be_bytes());
        let parsed = SpcContainer::parse(&spc).unwrap();
        assert_eq!((parsed.version, parsed.wrapped_key.len(), parsed.payload.len()), (1, 128, 16));
        spc[172..176].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(SpcContainer::parse(&spc).is_err());
        spc[172..176].copy_from_slice(&32u32.to_be_bytes());
        assert!(SpcContainer::parse(&spc).is_err());
    }

    proptest! {
        #[test]
        fn container_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = SpcContainer::parse(&bytes);
        }

        #[test]
        fn tllv_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(tllvs) = parse_tllvs(&bytes) {
                let _ = SpcFields::from_tllvs(&tllvs);
            }
        }

        /// Well-framed TLLVs with random tags, lengths and contents: parsed back exactly, and the field reader
        /// refuses or accepts without panicking.
        #[test]
        fn framed_tllvs_parse_back(items in proptest::collection::vec(
            (prop_oneof![Just(TAG_SK_R1), Just(TAG_R2), Just(TAG_ASSET_ID), Just(TAG_RETURN_REQUEST), any::<u64>()],
             proptest::collection::vec(any::<u8>(), 0..130), 0usize..40), 0..12)) {
            let mut payload = Vec::new();
            for (tag, value, extra) in &items {
                payload.extend(tllv(*tag, value, value.len() + extra));
            }
            let parsed = parse_tllvs(&payload).unwrap();
            prop_assert_eq!(parsed.len(), items.len());
            for (p, (tag, value, _)) in parsed.iter().zip(&items) {
                prop_assert_eq!(p.tag, *tag);
                prop_assert_eq!(p.value, &value[..]);
            }
            let _ = SpcFields::from_tllvs(&parsed);
        }
    }
}
