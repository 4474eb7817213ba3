//! FairPlay CKCs per second (the whole key-server step on Apple's sample SPC, without HTTP or storage: container,
//! RSA-OAEP unwrap, payload decryption, TLLVs, D function, integrity check, CKC) against the raw RSA-OAEP
//! private-key decryptions per second of AWS-LC on the same key in the same run. The RSA step dominates, so the
//! ratio says how much the rest costs. `CLAVIS_TEST_VECTORS=.../shared/vectors cargo bench -p clavis-fairplay`.

use std::time::{Duration, Instant};

use clavis_fairplay::{FixedDask, OaepKey, Provider, SpcContainer, build_ckc, credentials};

fn per_second<F: FnMut()>(name: &str, budget: Duration, mut f: F) -> f64 {
    for _ in 0..200 {
        f();
    }
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < budget {
        for _ in 0..100 {
            f();
        }
        count += 100;
    }
    let rate = count as f64 / start.elapsed().as_secs_f64();
    println!("{name:<52} {rate:>10.0} /s");
    rate
}

fn main() {
    let dir = std::path::PathBuf::from(
        std::env::var("CLAVIS_TEST_VECTORS").expect("set CLAVIS_TEST_VECTORS to shared/vectors"),
    )
    .join("fairplay/apple-fps-sdk-4.1.0-via-andreyrikunov");
    let pem = std::fs::read_to_string(dir.join("credentials/dev_private_key.pem")).unwrap();
    let cert = std::fs::read(dir.join("credentials/dev_certificate.der")).unwrap();
    let spc = std::fs::read(dir.join("verification/FPS/spc1.bin")).unwrap();
    let validated = credentials::validate(&cert, &pem, None).unwrap();
    let raw_key = OaepKey::from_pkcs1_der(&validated.private_key_pkcs1).unwrap();
    let dask: [u8; 16] = hex::decode("d87ce7a26081de2e8eb8acef3a6dc179").unwrap().try_into().unwrap();
    let provider = Provider::new(
        OaepKey::from_pkcs1_der(&validated.private_key_pkcs1).unwrap(),
        [0; 16],
        Box::new(FixedDask(dask)),
    );
    let wrapped = SpcContainer::parse(&spc).unwrap().wrapped_key.to_vec();
    let content_key = [0x3b; 16];
    let content_iv = [0xd5; 16];
    let terms = Default::default();

    let budget = Duration::from_secs(3);
    let mut rounds = Vec::new();
    // Alternate the two measurements so frequency scaling and neighbours affect both alike.
    for _ in 0..3 {
        let rsa = per_second("raw AWS-LC RSA-OAEP-SHA1 decrypt (1024-bit)", budget, || {
            std::hint::black_box(raw_key.decrypt(std::hint::black_box(&wrapped)).unwrap());
        });
        let ksm = per_second("FairPlay CKC from Apple's FPS/spc1 (full KSM step)", budget, || {
            let container = SpcContainer::parse(std::hint::black_box(&spc)).unwrap();
            let opened = provider.open(&container).unwrap();
            std::hint::black_box(build_ckc(&opened, &content_key, &content_iv, &terms).unwrap());
        });
        rounds.push(ksm / rsa);
    }
    rounds.sort_by(f64::total_cmp);
    println!("ratio CKC/s over RSA decrypt/s: median {:.3} (rounds {:?})", rounds[1], rounds);
}
