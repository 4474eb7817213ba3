//! FairPlay SPCs arrive from players: the container, the TLLV list inside the payload, and the fields the key
//! server reads after decrypting it. The first byte picks the layer, so the fuzzer reaches each one directly.
#![no_main]

use clavis_fairplay::{FixedDask, SpcContainer, aes128, open_payload, spc};
use libfuzzer_sys::fuzz_target;

const ASK: [u8; 16] = [0x11; 16];
const DASK: [u8; 16] = [0xd8; 16];
const SPCK: [u8; 16] = [0x33; 16];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 3 {
        // The outer container, then its payload taken as already decrypted.
        0 => {
            if let Ok(container) = SpcContainer::parse(rest) {
                let _ = open_payload(container.payload, container.version, &ASK, &FixedDask(DASK));
            }
        }
        // A decrypted payload: TLLVs, the fields, [SK..R1] under a fixed DASk and its integrity check.
        1 => {
            if let Ok(tllvs) = spc::parse_tllvs(rest) {
                let _ = clavis_fairplay::SpcFields::from_tllvs(&tllvs);
            }
            let _ = open_payload(rest, 1, &ASK, &FixedDask(DASK));
        }
        // A payload as it arrives (encrypted), decrypted with a fixed SPC key first.
        _ => {
            let whole = rest.len() / 16 * 16;
            let mut payload = rest[..whole].to_vec();
            aes128::cbc_decrypt(&SPCK, &[0; 16], &mut payload);
            if let Ok(opened) = open_payload(&payload, 2, &ASK, &clavis_fairplay::AppleSample) {
                let _ = clavis_fairplay::build_ckc(&opened, &[0; 16], &[0; 16], &Default::default());
            }
        }
    }
});
