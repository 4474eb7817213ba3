//! FairPlay Streaming: credentials upload and validation, the certificate endpoint, and the key server proven on
//! Apple's own SDK exchanges: every sample SPC yields a CKC that an independent decoder (written here, on aws-lc-rs
//! AES directly, not the production code) opens to the content key, IV and terms Apple's own CKC carries.
//! Needs the shared vectors and the `openssl` command (for encrypted keys and a 2048-bit certificate).

use std::path::{Path, PathBuf};
use std::process::Command;

use aws_lc_rs::cipher::{
    AES_128, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::kit::{TestApp, TestTenant, assert_problem, read_vector_json, vectors_dir};

/// Apple's DASk for every SPC of the SDK verification set (`spc_internal_values_v2.txt`).
const SDK_DASK: &str = "d87ce7a26081de2e8eb8acef3a6dc179";
const DEV_CERT_SHA1: &str = "5561980aa51f03aa04bca24556c841a71736c771";

fn sdk_dir() -> PathBuf {
    vectors_dir().join("fairplay/apple-fps-sdk-4.1.0-via-andreyrikunov")
}

fn dev_credentials() -> (Vec<u8>, String) {
    let dir = sdk_dir().join("credentials");
    (
        std::fs::read(dir.join("dev_certificate.der")).unwrap(),
        std::fs::read_to_string(dir.join("dev_private_key.pem")).unwrap(),
    )
}

fn credentials_body(cert: &[u8], pem: &str, d_function: &str, dask: Option<&str>) -> Value {
    let mut body = json!({
        "certificate": STANDARD.encode(cert),
        "private_key": pem,
        "ask": "00112233445566778899aabbccddeeff",
        "d_function": d_function,
    });
    if let Some(dask) = dask {
        body["dask"] = json!(dask);
    }
    body
}

async fn upload_dev_credentials(app: &TestApp, tenant: &TestTenant, dask: &str) -> Value {
    let (cert, pem) = dev_credentials();
    let response = app
        .put("/api/v1/fairplay/credentials", &tenant.api_key, &credentials_body(&cert, &pem, "fixed", Some(dask)))
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

fn openssl(args: &[&str], dir: &Path) {
    let output = Command::new("openssl").args(args).current_dir(dir).output().expect("the openssl command is needed");
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

fn hex16(s: &str) -> [u8; 16] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn aes_ecb(key: &[u8; 16], block: &[u8; 16], encrypt: bool) -> [u8; 16] {
    let mut out = *block;
    let unbound = UnboundCipherKey::new(&AES_128, key).unwrap();
    if encrypt {
        EncryptingKey::ecb(unbound).unwrap().encrypt(&mut out).unwrap();
    } else {
        DecryptingKey::ecb(unbound).unwrap().decrypt(&mut out, DecryptionContext::None).unwrap();
    }
    out
}

fn aes_cbc(key: &[u8; 16], iv: &[u8; 16], data: &mut [u8], encrypt: bool) {
    let unbound = UnboundCipherKey::new(&AES_128, key).unwrap();
    if encrypt {
        EncryptingKey::cbc(unbound)
            .unwrap()
            .less_safe_encrypt(data, EncryptionContext::Iv128(FixedLength::from(iv)))
            .unwrap();
    } else {
        DecryptingKey::cbc(unbound).unwrap().decrypt(data, DecryptionContext::Iv128(FixedLength::from(iv))).unwrap();
    }
}

fn sha1(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, data).as_ref().to_vec()
}

/// TLLVs as (tag, value, whole encoding).
fn tllvs(payload: &[u8]) -> Vec<(u64, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < payload.len() {
        let tag = u64::from_be_bytes(payload[at..at + 8].try_into().unwrap());
        let block = u32::from_be_bytes(payload[at + 8..at + 12].try_into().unwrap()) as usize;
        let len = u32::from_be_bytes(payload[at + 12..at + 16].try_into().unwrap()) as usize;
        assert!(len <= block && at + 16 + block <= payload.len(), "TLLV {tag:016x} out of bounds");
        out.push((tag, payload[at + 16..at + 16 + len].to_vec(), payload[at..at + 16 + block].to_vec()));
        at += 16 + block;
    }
    out
}

/// A CKC opened the way a FairPlay client does: K_ar = AES-ECB(SHA-1(R1)[..16], anti-replay seed), then the
/// payload TLLVs, the content key TLLV's IV and AES-ECB(SK) key.
struct OpenedCkc {
    content_iv: String,
    content_key: String,
    tllvs: Vec<(u64, Vec<u8>, Vec<u8>)>,
}

fn open_ckc(ckc: &[u8], r1: &[u8], anti_replay_seed: &[u8; 16], sk: &[u8; 16]) -> OpenedCkc {
    assert_eq!(&ckc[..4], &[0, 0, 0, 1], "CKC version");
    let iv: [u8; 16] = ckc[8..24].try_into().unwrap();
    let len = u32::from_be_bytes(ckc[24..28].try_into().unwrap()) as usize;
    assert_eq!(ckc.len(), 28 + len, "CKC length");
    let r1_hash: [u8; 16] = sha1(r1)[..16].try_into().unwrap();
    let k_ar = aes_ecb(&r1_hash, anti_replay_seed, true);
    let mut payload = ckc[28..].to_vec();
    aes_cbc(&k_ar, &iv, &mut payload, false);
    let tllvs = tllvs(&payload);
    let key_tllv = tllvs.iter().find(|t| t.0 == 0x58b38165af0e3d5a).expect("content key TLLV");
    assert_eq!(key_tllv.1.len(), 32);
    let key = aes_ecb(sk, &key_tllv.1[16..32].try_into().unwrap(), false);
    OpenedCkc { content_iv: hex::encode(&key_tllv.1[..16]), content_key: hex::encode(key), tllvs }
}

fn tllv_value(tllvs: &[(u64, Vec<u8>, Vec<u8>)], tag: u64) -> Option<Vec<u8>> {
    tllvs.iter().find(|t| t.0 == tag).map(|t| t.1.clone())
}

fn tag_of(hex_tag: &str) -> u64 {
    u64::from_str_radix(hex_tag, 16).unwrap()
}

/// How a KSM request carries the SPC.
#[derive(Clone, Copy, Debug)]
enum Carrier {
    /// `spc=<base64>` form, percent-encoded.
    Form,
    /// `spc=<base64>` with the base64 not percent-encoded (`+` arrives as a space).
    SloppyForm,
    /// The raw SPC, with the raw CKC asked for.
    Raw,
    /// Base64 text.
    Base64,
}

async fn ksm(app: &TestApp, token: Option<&str>, spc: &[u8], carrier: Carrier) -> reqwest::Response {
    let encoded = STANDARD.encode(spc);
    let mut request = app.http.post(app.url("/license/fairplay"));
    if let Some(token) = token {
        request = request.header("X-Clavis-Token", token);
    }
    let request = match carrier {
        Carrier::Form => request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("spc={}", encoded.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D"))),
        Carrier::SloppyForm => {
            request.header("content-type", "application/x-www-form-urlencoded").body(format!("spc={encoded}"))
        }
        Carrier::Raw => request
            .header("content-type", "application/octet-stream")
            .header("accept", "application/octet-stream")
            .body(spc.to_vec()),
        Carrier::Base64 => request.header("content-type", "text/plain").body(encoded),
    };
    request.send().await.unwrap()
}

async fn ckc_of(response: reqwest::Response, carrier: Carrier) -> Vec<u8> {
    let status = response.status();
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    let body = response.bytes().await.unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    match carrier {
        Carrier::Raw => {
            assert_eq!(content_type, "application/octet-stream");
            body.to_vec()
        }
        _ => {
            assert_eq!(content_type, "text/plain");
            STANDARD.decode(&body).unwrap()
        }
    }
}

async fn set_default_policy(app: &TestApp, tenant: &TestTenant, policy: Value) {
    let response = app
        .http
        .patch(app.url("/api/v1/tenant/settings"))
        .bearer_auth(&tenant.api_key)
        .json(&json!({"default_policy": policy}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn import_key(app: &TestApp, tenant: &TestTenant, content_id: &str, key: &str, iv: &str) -> String {
    let kid = hex::encode(uuid::Uuid::new_v4().as_bytes());
    app.create_keys(
        tenant,
        json!({"content_id": content_id, "keys": [{"track_type": "ALL", "kid": kid, "key": key, "iv": iv}]}),
    )
    .await;
    kid
}

#[tokio::test]
async fn credentials_are_validated_stored_without_secrets_and_kept_per_tenant() {
    let app = TestApp::spawn().await;
    let a = app.create_tenant("Apple Dev").await;
    let b = app.create_tenant("Other").await;
    let (cert, pem) = dev_credentials();

    let view = upload_dev_credentials(&app, &a, SDK_DASK).await;
    assert_eq!(view["sha1"], DEV_CERT_SHA1);
    assert_eq!(view["key_bits"], 1024);
    assert_eq!(view["spc_version"], 1);
    assert_eq!(view["d_function"], "fixed");
    assert_eq!(view["private_key_matches_certificate"], true);
    assert_eq!(view["subject"], "CN=Partner2, OU=Partner2, O=Partner2, C=US");
    assert_eq!(view["not_after"], "2013-10-17T01:57:22Z");
    assert_eq!(view["expired"], true, "Apple's development certificate expired in 2013");
    assert_eq!(view["certificate_url"], app.url(&format!("/license/fairplay/certificate/{}", a.site_id)));

    // The listing shows what was validated, never a secret.
    let listed = app.get("/api/v1/fairplay/credentials", &a.api_key).await;
    assert_eq!(listed.status(), 200);
    let text = listed.text().await.unwrap();
    let listed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["sha1"], DEV_CERT_SHA1);
    for secret in ["\"private_key\"", "\"ask\"", "\"dask\"", "MIIC", SDK_DASK, "00112233445566778899aabbccddeeff"] {
        assert!(!text.contains(secret), "the listing leaks {secret}: {text}");
    }

    // The certificate endpoint serves A's certificate, DER, readable cross-origin.
    let served = app
        .http
        .get(app.url(&format!("/license/fairplay/certificate/{}", a.site_id)))
        .header("origin", "https://player.example")
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["access-control-allow-origin"], "https://player.example");
    assert_eq!(served.headers()["content-type"], "application/octet-stream");
    assert_eq!(served.bytes().await.unwrap().to_vec(), cert);

    // Tenant B sees none of it, and cannot delete it.
    let b_list: Value = app.get("/api/v1/fairplay/credentials", &b.api_key).await.json().await.unwrap();
    assert_eq!(b_list, json!([]));
    let b_cert = app.http.get(app.url(&format!("/license/fairplay/certificate/{}", b.site_id))).send().await.unwrap();
    assert_problem(b_cert, 404, 5014).await;
    assert_problem(app.delete(&format!("/api/v1/fairplay/credentials/{DEV_CERT_SHA1}"), &b.api_key).await, 404, 5014)
        .await;
    let unknown_site = app.http.get(app.url("/license/fairplay/certificate/ZZZZ")).send().await.unwrap();
    assert_problem(unknown_site, 404, 2004).await;
    let a_list: Value = app.get("/api/v1/fairplay/credentials", &a.api_key).await.json().await.unwrap();
    assert_eq!(a_list.as_array().unwrap().len(), 1);

    // Refusals name the field.
    let tmp = tempfile::tempdir().unwrap();
    openssl(&["genrsa", "-out", "other.pem", "1024"], tmp.path());
    openssl(&["rsa", "-in", "other.pem", "-out", "other-pkcs1.pem", "-traditional"], tmp.path());
    let other_key = std::fs::read_to_string(tmp.path().join("other-pkcs1.pem")).unwrap();
    let refusals = [
        (credentials_body(&cert, &other_key, "apple-sample", None), "private_key"),
        (json!({"certificate": STANDARD.encode(&cert), "private_key": pem, "ask": "abcd"}), "ask"),
        (
            json!({"certificate": STANDARD.encode(b"not a certificate"), "private_key": pem, "ask": "00112233445566778899aabbccddeeff"}),
            "certificate",
        ),
        (json!({"certificate": "%%%", "private_key": pem, "ask": "00112233445566778899aabbccddeeff"}), "certificate"),
        (credentials_body(&cert, &pem, "fixed", None), "dask"),
        (credentials_body(&cert, &pem, "apple-sample", Some(SDK_DASK)), "dask"),
        (credentials_body(&cert, &pem, "provider-x", None), "d_function"),
        (
            credentials_body(
                &cert,
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
                "apple-sample",
                None,
            ),
            "private_key",
        ),
    ];
    for (body, field) in refusals {
        let response = app.put("/api/v1/fairplay/credentials", &a.api_key, &body).await;
        let problem = assert_problem(response, 422, 5015).await;
        assert_eq!(problem["field"], field, "{problem}");
    }

    // Encrypted keys open with their password: PKCS#8 (PBES2) and OpenSSL's legacy PEM encryption.
    std::fs::write(tmp.path().join("dev.pem"), &pem).unwrap();
    openssl(
        &["pkcs8", "-topk8", "-in", "dev.pem", "-out", "pkcs8.pem", "-v2", "aes-256-cbc", "-passout", "pass:s3cret"],
        tmp.path(),
    );
    openssl(
        &["rsa", "-in", "dev.pem", "-out", "legacy.pem", "-aes128", "-traditional", "-passout", "pass:s3cret"],
        tmp.path(),
    );
    for file in ["pkcs8.pem", "legacy.pem"] {
        let encrypted = std::fs::read_to_string(tmp.path().join(file)).unwrap();
        assert!(encrypted.contains("ENCRYPTED"), "{file}: {encrypted}");
        let mut body = credentials_body(&cert, &encrypted, "apple-sample", None);
        let missing = app.put("/api/v1/fairplay/credentials", &a.api_key, &body).await;
        assert_eq!(assert_problem(missing, 422, 5015).await["field"], "private_key_password", "{file}");
        body["private_key_password"] = json!("wrong");
        let wrong = app.put("/api/v1/fairplay/credentials", &a.api_key, &body).await;
        assert_eq!(assert_problem(wrong, 422, 5015).await["field"], "private_key_password", "{file}");
        body["private_key_password"] = json!("s3cret");
        let ok = app.put("/api/v1/fairplay/credentials", &a.api_key, &body).await;
        assert_eq!(ok.status(), 200, "{file}: {}", ok.text().await.unwrap());
    }

    // Deleting removes it; the certificate endpoint then says FairPlay is not configured.
    let deleted = app.delete(&format!("/api/v1/fairplay/credentials/{DEV_CERT_SHA1}"), &a.api_key).await;
    assert_eq!(deleted.status(), 204);
    let gone = app.http.get(app.url(&format!("/license/fairplay/certificate/{}", a.site_id))).send().await.unwrap();
    assert_problem(gone, 404, 5014).await;
}

/// One Apple sample exchange: the SPC file, the content its asset id names, the key and IV imported for it, the
/// policy that gives Apple's terms, and where Apple's decoded CKC is (the vector the SPC is compared against).
struct Case {
    spc: &'static str,
    expected: &'static str,
    policy: Value,
}

fn expected_cases() -> Value {
    let mut all = read_vector_json("fairplay/expected_decoded_apple_sdk.json");
    let dual = read_vector_json("fairplay/expected_decoded_apple_sdk_dualexpiry.json");
    for (k, v) in dual.as_object().unwrap() {
        all[k] = v.clone();
    }
    all
}

#[tokio::test]
async fn every_apple_sample_spc_yields_a_ckc_with_apples_key_iv_and_terms() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Apple Dev").await;
    // No tenant-wide license duration: each token's policy alone decides the terms, as each Apple sample does.
    set_default_policy(&app, &tenant, json!({})).await;
    upload_dev_credentials(&app, &tenant, SDK_DASK).await;
    let expected = expected_cases();

    // Keys for each asset id, as Apple's sample KSM holds them (content id from the asset id's bytes).
    let streaming = "0xaabbccddeeffaabbccddeeffaabbccddeeff";
    let dual = "persistent_duration_twelve_dual_30d_24h";
    let apple_iv = "d5fbd6b82ed93e4ef98ae40931ee33b7";
    let mut kids = std::collections::HashMap::new();
    for (content, key, iv) in [
        (streaming, "3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b", apple_iv),
        ("one", "31313131313131313131313131313131", "546865517569636b42726f776e466f78"),
        ("persistent_twelve", "3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c", apple_iv),
        (dual, "3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c", apple_iv),
    ] {
        kids.insert(content, import_key(&app, &tenant, content, key, iv).await);
    }

    let hdcp_persistent = json!({"persistent": true, "fairplay": {"hdcp_required": true}});
    let dual_policy = json!({"persistent": true, "license_duration_seconds": 2_592_000,
        "playback_duration_seconds": 86_400, "fairplay": {"hdcp_required": true}});
    let lease = json!({"license_duration_seconds": 120});
    let cases = [
        Case { spc: "verification/FPS/spc1.bin", expected: "verification/FPS/spc1.bin", policy: json!({}) },
        Case { spc: "verification/FPS/spc2.bin", expected: "verification/FPS/spc2.bin", policy: json!({}) },
        Case { spc: "verification/FPS/spc3.bin", expected: "verification/FPS/spc3.bin", policy: json!({}) },
        Case {
            spc: "verification/FPS-Lease/spc1.bin",
            expected: "verification/FPS-Lease/spc1.bin",
            policy: lease.clone(),
        },
        Case {
            spc: "verification/FPS-Lease/spc2.bin",
            expected: "verification/FPS-Lease/spc2.bin",
            policy: lease.clone(),
        },
        Case { spc: "verification/FPS-Lease/spc3.bin", expected: "verification/FPS-Lease/spc3.bin", policy: lease },
        Case {
            spc: "verification/FPS-Lease/spc4.bin",
            expected: "verification/FPS-Lease/spc4.bin",
            policy: hdcp_persistent,
        },
        Case {
            spc: "verification/DualExpiry/dual_expiry_spc.bin",
            expected: "verification/DualExpiry/dual_expiry_spc.bin",
            policy: dual_policy.clone(),
        },
        // Apple ships no CKC for the sync SPC; it asks for the same asset, so Apple's dual-expiry CKC is the reference.
        Case {
            spc: "verification/DualExpiry/sync_spc.bin",
            expected: "verification/DualExpiry/dual_expiry_spc.bin",
            policy: dual_policy,
        },
    ];
    let carriers = [Carrier::Form, Carrier::Raw, Carrier::Base64, Carrier::SloppyForm];
    for (index, case) in cases.iter().enumerate() {
        let spc_case = &expected[case.spc];
        let apple = &expected[case.expected]["ckc"];
        let spc = std::fs::read(sdk_dir().join(case.spc)).unwrap();
        let asset = spc_case["tllvs"].as_array().unwrap().iter().find(|t| t["name"] == "asset_id").unwrap();
        let asset_bytes = hex::decode(asset["value"].as_str().unwrap()).unwrap();
        let content = match String::from_utf8(asset_bytes.clone()) {
            Ok(text) => text,
            Err(_) => format!("0x{}", hex::encode(&asset_bytes)),
        };
        let token =
            app.mint_token(&tenant, json!({"user_id": "viewer", "content_id": content, "policy": case.policy})).await;
        let carrier = carriers[index % carriers.len()];
        let ckc = ckc_of(ksm(&app, Some(&token), &spc, carrier).await, carrier).await;

        let decrypted = &spc_case["sk_r1_decrypted"];
        let r1 = hex::decode(decrypted["R1"].as_str().unwrap()).unwrap();
        let seed = spc_case["tllvs"].as_array().unwrap().iter().find(|t| t["name"] == "anti_replay_seed").unwrap();
        let opened =
            open_ckc(&ckc, &r1, &hex16(seed["value"].as_str().unwrap()), &hex16(decrypted["SK"].as_str().unwrap()));
        let name = case.spc;
        assert_eq!(opened.content_key, apple["content_key_decrypted_with_SK"].as_str().unwrap(), "{name}: key");
        assert_eq!(opened.content_iv, apple["content_iv"].as_str().unwrap(), "{name}: IV");
        assert_eq!(tllv_value(&opened.tllvs, 0xea74c4645d5efee9), Some(r1), "{name}: R1");

        // Every tag the return request names comes back verbatim (header, value and padding as the SPC had them).
        let spc_tllvs = spc_case["tllvs"].as_array().unwrap();
        let requested = spc_tllvs.iter().find(|t| t["name"] == "return_request").unwrap()["value"].as_str().unwrap();
        let requested = hex::decode(requested).unwrap();
        for tag in requested.chunks(8).map(|c| u64::from_be_bytes(c.try_into().unwrap())) {
            let sent = spc_tllvs.iter().find(|t| tag_of(t["tag"].as_str().unwrap()) == tag).unwrap();
            let echoed =
                opened.tllvs.iter().find(|t| t.0 == tag).unwrap_or_else(|| panic!("{name}: {tag:016x} echoed"));
            assert_eq!(hex::encode(&echoed.1), sent["value"].as_str().unwrap(), "{name}: {tag:016x}");
            assert_eq!(echoed.2.len(), 16 + sent["block_len"].as_u64().unwrap() as usize, "{name}: {tag:016x} block");
        }

        // The terms: exactly the key-duration, HDCP and offline-key TLLVs Apple's CKC has, with Apple's values.
        let apple_tllvs = apple["tllvs"].as_array().unwrap();
        let apple_value = |tag: u64| {
            apple_tllvs
                .iter()
                .find(|t| tag_of(t["tag"].as_str().unwrap()) == tag)
                .map(|t| t["value"].as_str().unwrap().to_owned())
        };
        let ours = |tag: u64| tllv_value(&opened.tllvs, tag).map(hex::encode);
        assert_eq!(ours(0x47acf6a418cd091a), apple_value(0x47acf6a418cd091a), "{name}: key duration");
        assert_eq!(
            ours(0x2e52f1530d8ddb4a).map(|v| v[..16].to_owned()),
            apple_value(0x2e52f1530d8ddb4a).map(|v| v[..16].to_owned()),
            "{name}: HDCP requirement"
        );
        match apple_value(0x6375d9727060218c) {
            None => assert_eq!(ours(0x6375d9727060218c), None, "{name}: no offline key"),
            Some(apple_offline) => {
                let ours = ours(0x6375d9727060218c).unwrap_or_else(|| panic!("{name}: offline key TLLV"));
                // version | reserved | content id (Clavis: the KID) | storage seconds | playback seconds
                assert_eq!(ours[..16], apple_offline[..16], "{name}: offline key version");
                assert_eq!(ours[16..48], *kids[content.as_str()], "{name}: offline key content id");
                assert_eq!(ours[48..], apple_offline[48..], "{name}: storage and playback durations");
            }
        }
        for apple_tag in apple_tllvs.iter().map(|t| tag_of(t["tag"].as_str().unwrap())) {
            // e6d0a3e72c92a4ef is a tag of Apple's sample KSM that no return request asks for.
            if apple_tag != 0xe6d0a3e72c92a4ef {
                assert!(opened.tllvs.iter().any(|t| t.0 == apple_tag), "{name}: Apple's CKC has {apple_tag:016x}");
            }
        }
    }

    let log = app.license_log(&tenant).await;
    let issued: Vec<&Value> = log.iter().filter(|r| r["drm"] == "fairplay" && r["outcome"] == "issued").collect();
    assert_eq!(issued.len(), cases.len(), "{log:?}");
    assert!(issued.iter().any(|r| r["content_id"] == "persistent_twelve" && r["kids"][0] == kids["persistent_twelve"]));
}

#[tokio::test]
async fn bad_spcs_wrong_credentials_and_foreign_tokens_are_refused_with_catalog_codes() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Apple Dev").await;
    upload_dev_credentials(&app, &tenant, SDK_DASK).await;
    import_key(&app, &tenant, "one", "31313131313131313131313131313131", "546865517569636b42726f776e466f78").await;
    let spc = std::fs::read(sdk_dir().join("verification/FPS/spc2.bin")).unwrap();
    let token = || app.token_for(&tenant, "viewer", "one");

    // The untouched SPC works (so each refusal below is about its one change).
    assert_eq!(ksm(&app, Some(&token().await), &spc, Carrier::Raw).await.status(), 200);

    let mut wrong_key = spc.clone();
    wrong_key[60] ^= 0x01;
    let mut other_certificate = spc.clone();
    other_certificate[152..172].copy_from_slice(&[0x42; 20]);
    let mut bad_length = spc.clone();
    bad_length[172..176].copy_from_slice(&u32::MAX.to_be_bytes());
    let mut bad_version = spc.clone();
    bad_version[3] = 9;
    let mut tail_garbled = spc.clone();
    let last = tail_garbled.len() - 20;
    tail_garbled[last] ^= 0xff;
    let cases: Vec<(&str, Vec<u8>, u16, u16)> = vec![
        ("truncated", spc[..100].to_vec(), 400, 5010),
        ("truncated payload", spc[..spc.len() - 16].to_vec(), 400, 5010),
        ("payload length", bad_length, 400, 5010),
        ("version", bad_version, 400, 5010),
        ("not an SPC", b"hello, key server".to_vec(), 400, 5010),
        ("empty", Vec::new(), 400, 5010),
        ("wrapped key corrupted", wrong_key, 400, 5012),
        ("made for another certificate", other_certificate, 400, 5011),
    ];
    for (what, body, status, code) in cases {
        let response = ksm(&app, Some(&token().await), &body, Carrier::Raw).await;
        assert_eq!(response.status().as_u16(), status, "{what}");
        assert_problem(response, status, code).await;
    }
    // A garbled last block leaves the TLLVs readable or not, but never issues a license it should not, nor a 500.
    let garbled = ksm(&app, Some(&token().await), &tail_garbled, Carrier::Raw).await;
    assert!(garbled.status() == 200 || garbled.status() == 400, "{}", garbled.status());

    // A token for another content: the SPC's asset id is "one".
    import_key(&app, &tenant, "two", "32323232323232323232323232323232", "546865517569636b42726f776e466f78").await;
    let for_two = app.token_for(&tenant, "viewer", "two").await;
    assert_problem(ksm(&app, Some(&for_two), &spc, Carrier::Form).await, 403, 4008).await;
    // No token, and a token for a content without keys.
    assert_problem(ksm(&app, None, &spc, Carrier::Form).await, 401, 4001).await;

    // Another tenant's token: that tenant has not uploaded this certificate, so A's credentials cannot serve it.
    let other = app.create_tenant("Other").await;
    import_key(&app, &other, "one", "41414141414141414141414141414141", "546865517569636b42726f776e466f78").await;
    let foreign = app.token_for(&other, "viewer", "one").await;
    assert_problem(ksm(&app, Some(&foreign), &spc, Carrier::Form).await, 400, 5011).await;

    // Credentials whose DASk is wrong fail the [SK..R1] integrity check; apple-sample D with a made-up ASk too.
    let wrong = app.create_tenant("Wrong DASk").await;
    upload_dev_credentials(&app, &wrong, "000102030405060708090a0b0c0d0e0f").await;
    import_key(&app, &wrong, "one", "31313131313131313131313131313131", "546865517569636b42726f776e466f78").await;
    let wrong_token = app.token_for(&wrong, "viewer", "one").await;
    assert_problem(ksm(&app, Some(&wrong_token), &spc, Carrier::Base64).await, 400, 5013).await;
    let (cert, pem) = dev_credentials();
    let sample = app
        .put("/api/v1/fairplay/credentials", &wrong.api_key, &credentials_body(&cert, &pem, "apple-sample", None))
        .await;
    assert_eq!(sample.status(), 200);
    // The vault's read cache lives up to 10 s; the replaced credential must be seen at once on this instance.
    let wrong_token = app.token_for(&wrong, "viewer", "one").await;
    assert_problem(ksm(&app, Some(&wrong_token), &spc, Carrier::Base64).await, 400, 5013).await;

    // Refusals are in the license log with the rule that refused.
    let log = app.license_log(&tenant).await;
    let denied: Vec<&Value> = log.iter().filter(|r| r["drm"] == "fairplay" && r["outcome"] == "denied").collect();
    assert!(denied.iter().any(|r| r["error_code"] == 5012 && r["rule"] == "fairplay.spc"), "{denied:?}");
    assert!(denied.iter().any(|r| r["error_code"] == 5011 && r["rule"] == "fairplay.certificate"), "{denied:?}");
    assert!(denied.iter().any(|r| r["error_code"] == 4008 && r["rule"] == "content"), "{denied:?}");
}

/// An SPC v2 built here for a 2048-bit certificate (Clavis has no Apple v2 sample): the tenant holds the 1024-bit
/// development certificate and the 2048-bit one at once, and the SPC's certificate hash picks the right one.
#[tokio::test]
async fn a_2048_bit_certificate_serves_spc_v2_beside_the_1024_bit_one() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Both sizes").await;
    upload_dev_credentials(&app, &tenant, SDK_DASK).await;
    let tmp = tempfile::tempdir().unwrap();
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.der",
            "-outform",
            "DER",
            "-subj",
            "/CN=Clavis test FPS 2048",
            "-days",
            "2",
        ],
        tmp.path(),
    );
    openssl(&["pkey", "-in", "key.pem", "-pubout", "-outform", "DER", "-out", "spki.der"], tmp.path());
    let cert = std::fs::read(tmp.path().join("cert.der")).unwrap();
    let pem = std::fs::read_to_string(tmp.path().join("key.pem")).unwrap();
    let ask = hex16("0f0e0d0c0b0a09080706050403020100");
    let response = app
        .put(
            "/api/v1/fairplay/credentials",
            &tenant.api_key,
            &json!({"certificate": STANDARD.encode(&cert), "private_key": pem, "ask": hex::encode(ask), "d_function": "apple-sample"}),
        )
        .await;
    let view: Value = response.json().await.unwrap();
    assert_eq!(
        (view["key_bits"].as_u64(), view["spc_version"].as_u64(), view["expired"].as_bool()),
        (Some(2048), Some(2), Some(false)),
        "{view}"
    );
    let listed: Value = app.get("/api/v1/fairplay/credentials", &tenant.api_key).await.json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    // The newest certificate is served unless one is named.
    let newest =
        app.http.get(app.url(&format!("/license/fairplay/certificate/{}", tenant.site_id))).send().await.unwrap();
    assert_eq!(newest.bytes().await.unwrap().to_vec(), cert);
    let named = app
        .http
        .get(app.url(&format!("/license/fairplay/certificate/{}?sha1={DEV_CERT_SHA1}", tenant.site_id)))
        .send()
        .await
        .unwrap();
    assert_eq!(named.bytes().await.unwrap().to_vec(), dev_credentials().0);

    let kid =
        import_key(&app, &tenant, "movie-2048", "77777777777777777777777777777777", "00112233445566778899aabbccddeeff")
            .await;
    assert_eq!(kid.len(), 32);

    // The SPC: [SK..R1] under DASk = AES-ECB(ASk, sample-D hash of R2), the payload under a random SPCK wrapped to
    // the certificate's key with RSA-OAEP SHA-1.
    let r2 = [0x5au8; 21];
    let dask = aes_ecb(&ask, &apple_sample_d_hash(&r2), true);
    let sk = [0x11u8; 16];
    let r1 = [0x22u8; 44];
    let integrity = [0x33u8; 16];
    let seed = [0x44u8; 16];
    let mut sk_r1 = Vec::new();
    sk_r1.extend_from_slice(&sk);
    sk_r1.extend_from_slice(&[0x55; 20]);
    sk_r1.extend_from_slice(&r1);
    sk_r1.extend_from_slice(&integrity);
    let sk_r1_iv = [0x66u8; 16];
    aes_cbc(&dask, &sk_r1_iv, &mut sk_r1, true);
    let mut sk_r1_value = sk_r1_iv.to_vec();
    sk_r1_value.extend_from_slice(&sk_r1);
    let asset = b"movie-2048";
    let mut payload = Vec::new();
    for (tag, value) in [
        (0x3d1a10b8bffac2ecu64, sk_r1_value.as_slice()),
        (0xb349d4809e910687, &integrity[..]),
        (0x89c90f12204106b2, &seed[..]),
        (0x71b5595ac1521133, &r2[..]),
        (0x1bf7f53f5d5d5a1f, &asset[..]),
        (0x47aa7ad3440577de, &[9u8; 8][..]),
        (0x19f9d4e5ab7609cb, &[0x1bf7f53f5d5d5a1fu64.to_be_bytes(), 0x47aa7ad3440577deu64.to_be_bytes()].concat()[..]),
    ] {
        let block = value.len().div_ceil(16) * 16 + 16;
        payload.extend_from_slice(&tag.to_be_bytes());
        payload.extend_from_slice(&(block as u32).to_be_bytes());
        payload.extend_from_slice(&(value.len() as u32).to_be_bytes());
        payload.extend_from_slice(value);
        payload.resize(payload.len() + block - value.len(), 0xee);
    }
    let spck = [0x77u8; 16];
    let spc_iv = [0x88u8; 16];
    aes_cbc(&spck, &spc_iv, &mut payload, true);
    let spki = std::fs::read(tmp.path().join("spki.der")).unwrap();
    let public =
        aws_lc_rs::rsa::OaepPublicEncryptingKey::new(aws_lc_rs::rsa::PublicEncryptingKey::from_der(&spki).unwrap())
            .unwrap();
    let mut wrapped = vec![0u8; public.ciphertext_size()];
    let wrapped = public.encrypt(&aws_lc_rs::rsa::OAEP_SHA1_MGF1SHA1, &spck, &mut wrapped, None).unwrap().to_vec();
    assert_eq!(wrapped.len(), 256);
    let mut spc = Vec::new();
    spc.extend_from_slice(&2u32.to_be_bytes());
    spc.extend_from_slice(&[0; 4]);
    spc.extend_from_slice(&spc_iv);
    spc.extend_from_slice(&wrapped);
    spc.extend_from_slice(&sha1(&cert));
    spc.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    spc.extend_from_slice(&payload);

    let token = app
        .mint_token(&tenant, json!({"user_id": "u", "content_id": "movie-2048", "policy": {"rental_duration_seconds": 600, "license_duration_seconds": 3600}}))
        .await;
    let ckc = ckc_of(ksm(&app, Some(&token), &spc, Carrier::Form).await, Carrier::Form).await;
    let opened = open_ckc(&ckc, &r1, &seed, &sk);
    assert_eq!(opened.content_key, "77777777777777777777777777777777");
    assert_eq!(opened.content_iv, "00112233445566778899aabbccddeeff");
    assert_eq!(tllv_value(&opened.tllvs, 0x47aa7ad3440577de), Some(vec![9u8; 8]), "transaction id echoed");
    // Lease and rental: lease 3600 s, rental 600 s, type 27b59bde.
    assert_eq!(hex::encode(tllv_value(&opened.tllvs, 0x47acf6a418cd091a).unwrap()), "00000e100000025827b59bde00000000");

    // The same SPC with its key wrapped for the 1024-bit certificate's size does not pass as v2.
    let mut v1_claim = spc.clone();
    v1_claim[3] = 1;
    assert_problem(ksm(&app, Some(&token), &v1_claim, Carrier::Raw).await, 400, 5010).await;
}

/// Apple's sample D hash, written here from the spec independently of the production code.
fn apple_sample_d_hash(r2: &[u8]) -> [u8; 16] {
    let mut block = [0u8; 64];
    block[..r2.len()].copy_from_slice(r2);
    block[r2.len()] = 0x80;
    let word = |i: usize| u32::from_be_bytes(block[i * 4..i * 4 + 4].try_into().unwrap());
    let mut sums =
        [(0..7).fold(0u32, |a, i| a.wrapping_add(word(i))), (7..14).fold(0u32, |a, i| a.wrapping_add(word(i)))];
    for sum in &mut sums {
        for _ in 0..16 {
            *sum = if *sum % 2 == 1 { *sum >> 1 } else { sum.wrapping_mul(3).wrapping_add(1) % 813_416_437 };
        }
    }
    block[56..60].copy_from_slice(&sums[0].to_le_bytes());
    block[60..64].copy_from_slice(&sums[1].to_le_bytes());
    sha1(&block)[..16].try_into().unwrap()
}

#[tokio::test]
async fn callback_mode_opens_the_spc_with_the_tenants_credentials_and_asks_its_backend_about_the_asset() {
    use crate::callback::{Backend, Behaviour};
    let app = crate::callback::spawn_allowing_private().await;
    let tenant = app.create_tenant("Callback FairPlay").await;
    upload_dev_credentials(&app, &tenant, SDK_DASK).await;
    import_key(&app, &tenant, "one", "31313131313131313131313131313131", "546865517569636b42726f776e466f78").await;
    let backend = Backend::start(Behaviour::Allow(json!({"license_duration_seconds": 600}))).await;
    crate::callback::configure(&app, &tenant, &backend.url).await;
    let spc = std::fs::read(sdk_dir().join("verification/FPS/spc2.bin")).unwrap();
    let send = |value: String, spc: Vec<u8>| {
        let request = app
            .http
            .post(app.url(&format!("/license/fairplay?callback={value}")))
            .header("content-type", "application/octet-stream")
            .header("accept", "application/octet-stream")
            .body(spc);
        async move { request.send().await.unwrap() }
    };

    // No token: the callback value names the tenant, the SPC its asset, and the backend allows it.
    let ckc = ckc_of(send(format!("{}.fp-session", tenant.site_id), spc.clone()).await, Carrier::Raw).await;
    assert!(ckc.len() > 100, "a CKC");
    let facts = backend.last().facts();
    assert_eq!((facts["drm"].as_str(), facts["content_id"].as_str()), (Some("fairplay"), Some("one")), "{facts}");
    assert_eq!(facts["session"], "fp-session");
    assert_eq!(facts["site_id"], tenant.site_id);

    // The backend's refusal is the answer.
    backend.set(Behaviour::Deny("no subscription"));
    let denied = send(format!("{}.fp-session", tenant.site_id), spc.clone()).await;
    let body = assert_problem(denied, 403, 5030).await;
    assert!(body["detail"].as_str().unwrap().contains("no subscription"), "{body}");

    // Another tenant's site id: its credentials do not include the SPC's certificate, so the SPC is refused before
    // any backend is asked; a broken SPC likewise.
    let other = app.create_tenant("Other FairPlay").await;
    let asked = backend.count();
    assert_problem(send(format!("{}.fp-session", other.site_id), spc.clone()).await, 400, 5011).await;
    assert_problem(send(format!("{}.fp-session", tenant.site_id), spc[..100].to_vec()).await, 400, 5010).await;
    assert_eq!(backend.count(), asked, "no callback for an SPC that cannot be opened");
    let log = app.license_log(&tenant).await;
    assert!(log.iter().any(|r| r["outcome"] == "issued" && r["drm"] == "fairplay" && r["content_id"] == "one"));
    assert!(log.iter().any(|r| r["error_code"] == 5030), "{log:?}");
    assert!(log.iter().any(|r| r["error_code"] == 5010 && r["rule"] == "request"), "a refused SPC is logged: {log:?}");
}
