//! The D function: DASk = D(R2, ASk). Apple gives each provider its own D; the SDK ships a sample D for the
//! development credentials. Tenants choose a strategy; a provider's own D plugs in as another implementation.

use aws_lc_rs::digest;

use crate::aes128;

pub trait DFunction: Send + Sync {
    /// The derived application secret key for this R2.
    fn dask(&self, r2: &[u8], ask: &[u8; 16]) -> Option<[u8; 16]>;
}

/// Apple's sample D function (FPS SDK development credentials).
pub struct AppleSample;

/// A precomputed DASk, whatever R2 says (Apple's SDK verification set uses one).
pub struct FixedDask(pub [u8; 16]);

const PRIME: u32 = 813_416_437;
const ROUNDS: usize = 16;

fn scramble(mut x: u32) -> u32 {
    for _ in 0..ROUNDS {
        x = if x & 1 == 1 { x >> 1 } else { x.wrapping_mul(3).wrapping_add(1) % PRIME };
    }
    x
}

/// The sample D's hash: SHA-1 of R2 padded into one 64-byte block that ends with two scrambled word sums.
pub fn apple_sample_hash(r2: &[u8]) -> Option<[u8; 16]> {
    if r2.len() > 55 {
        return None;
    }
    let mut block = [0u8; 64];
    block[..r2.len()].copy_from_slice(r2);
    block[r2.len()] = 0x80;
    let words: Vec<u32> = block[..56].chunks_exact(4).map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]])).collect();
    let m0 = scramble(words[..7].iter().fold(0u32, |a, w| a.wrapping_add(*w)));
    let m1 = scramble(words[7..14].iter().fold(0u32, |a, w| a.wrapping_add(*w)));
    block[56..60].copy_from_slice(&m0.to_le_bytes());
    block[60..64].copy_from_slice(&m1.to_le_bytes());
    let sha1 = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &block);
    let mut out = [0u8; 16];
    out.copy_from_slice(&sha1.as_ref()[..16]);
    Some(out)
}

impl DFunction for AppleSample {
    fn dask(&self, r2: &[u8], ask: &[u8; 16]) -> Option<[u8; 16]> {
        let hash = apple_sample_hash(r2)?;
        Some(aes128::ecb_encrypt(ask, &hash))
    }
}

impl DFunction for FixedDask {
    fn dask(&self, _r2: &[u8], _ask: &[u8; 16]) -> Option<[u8; 16]> {
        Some(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors() -> serde_json::Value {
        let path = crate::tests::vectors_dir().join("fairplay/d_function_hash_vectors.json");
        let text = std::fs::read_to_string(path).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn apple_sample_d_matches_every_vector() {
        let vectors = vectors();
        let list = vectors["vectors"].as_array().unwrap();
        assert!(list.len() >= 16, "expected the 16 published vectors");
        for v in list {
            let r2 = hex::decode(v["r2_hex"].as_str().unwrap()).unwrap();
            let hash = apple_sample_hash(&r2).unwrap();
            assert_eq!(hex::encode(hash), v["hash16_hex"].as_str().unwrap(), "R2 {}", v["r2_hex"]);
        }
    }

    #[test]
    fn dask_is_aes_ecb_of_the_hash_under_ask() {
        let ask = [7u8; 16];
        let r2 = [1u8; 21];
        let expected = aes128::ecb_encrypt(&ask, &apple_sample_hash(&r2).unwrap());
        assert_eq!(AppleSample.dask(&r2, &ask), Some(expected));
        assert_eq!(AppleSample.dask(&[0u8; 56], &ask), None);
        assert_eq!(FixedDask([9; 16]).dask(&r2, &ask), Some([9; 16]));
    }
}
