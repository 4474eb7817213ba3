//! SPEKE v1/v2 and CPIX: every AWS SPEKE request sample and DASH-IF CPIX test vector against a real server; keys
//! encrypted to the DASH-IF test certificates are opened with the openssl CLI (independent of Clavis's crypto) and
//! compared with what the key API reports.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clavis_keys::cpix::document::{Document, FieldKind, KeyValue};
use clavis_keys::cpix::parse::parse;
use clavis_keys::playready::wrmheader_from_playready_object;
use clavis_keys::widevine_pssh::parse_widevine_pssh_data;
use serde_json::Value;

use crate::kit::{TestApp, TestTenant, vectors_dir};

const V2: &str = "/speke/v2.0/copyProtection";
const V1: &str = "/speke/v1.0/copyProtection";

fn cpix_dir() -> PathBuf {
    vectors_dir().join("cpix")
}

fn read(relative: &str) -> Vec<u8> {
    let path = cpix_dir().join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn post(app: &TestApp, tenant: &TestTenant, path: &str, body: Vec<u8>) -> reqwest::Response {
    app.http
        .post(app.url(path))
        .bearer_auth(&tenant.api_key)
        .header("X-Speke-Version", "2.0")
        .header("Content-Type", "application/xml")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Post and expect 200 with an XML answer; returns the parsed answer.
async fn answered(app: &TestApp, tenant: &TestTenant, path: &str, body: Vec<u8>) -> Document {
    let response = post(app, tenant, path, body).await;
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {text}");
    assert_eq!(headers.get("content-type").unwrap(), "application/xml");
    if path == V2 {
        assert_eq!(headers.get("x-speke-version").unwrap(), "2.0");
    } else {
        assert!(headers.get("speke-user-agent").unwrap().to_str().unwrap().starts_with("Clavis/"));
    }
    parse(text.as_bytes()).unwrap_or_else(|e| panic!("answer does not parse: {e}\n{text}"))
}

async fn refused(app: &TestApp, tenant: &TestTenant, path: &str, body: Vec<u8>, status: u16, code: u16) -> String {
    let response = post(app, tenant, path, body).await;
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(response.headers().get("x-clavis-error").unwrap().to_str().unwrap(), code.to_string());
    assert!(response.headers().get("content-type").unwrap().to_str().unwrap().starts_with("text/plain"));
    response.text().await.unwrap()
}

async fn api_keys(app: &TestApp, tenant: &TestTenant, content: &str) -> HashMap<String, (String, String)> {
    let response = app.get(&format!("/api/v1/keys/{content}"), &tenant.api_key).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let kid = k["kid"].as_str().unwrap().to_owned();
            (kid, (k["key"].as_str().unwrap().to_owned(), k["track_type"].as_str().unwrap().to_owned()))
        })
        .collect()
}

fn kid_hex(doc_kid: &clavis_core::ids::Kid) -> String {
    doc_kid.to_hex()
}

fn plain_keys(doc: &Document) -> HashMap<String, String> {
    doc.content_keys
        .iter()
        .map(|k| match &k.value {
            Some(KeyValue::Plain(v)) => (kid_hex(&k.kid), hex::encode(**v)),
            other => panic!("{} has no plain value: {other:?}", k.kid),
        })
        .collect()
}

/// Every ContentKey has a value, every requested signalling element is filled, and PSSH boxes carry the KID.
fn assert_conformant(doc: &Document) {
    assert!(!doc.content_keys.is_empty());
    assert!(doc.content_keys.iter().all(|k| k.value.is_some()), "every ContentKey has a key");
    for system in &doc.drm_systems {
        let sid = system.system_id.to_string();
        for field in &system.fields {
            let fillable = match (sid.as_str(), &field.kind) {
                (_, FieldKind::SmoothStreamingProtectionHeaderData | FieldKind::ProtectionHeader) => {
                    sid.starts_with("9a04f079")
                }
                ("81376844-f976-481e-a84e-cc25d39b0b33", FieldKind::Pssh | FieldKind::ContentProtectionData) => false,
                _ => true,
            };
            if fillable {
                assert!(!field.value.is_empty(), "{sid} {:?} filled", field.kind);
                STANDARD.decode(&field.value).unwrap_or_else(|_| panic!("{sid} {:?} is base64", field.kind));
            }
            if field.kind == FieldKind::Pssh && fillable {
                let pssh = STANDARD.decode(&field.value).unwrap();
                assert_eq!(&pssh[4..8], b"pssh");
                assert_eq!(u32::from_be_bytes(pssh[0..4].try_into().unwrap()) as usize, pssh.len());
                assert_eq!(&pssh[12..28], system.system_id.as_bytes());
                match sid.as_str() {
                    "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed" => {
                        let data = parse_widevine_pssh_data(&pssh[32..]).unwrap();
                        assert_eq!(data.key_ids, vec![system.kid]);
                    }
                    "9a04f079-9840-4286-ab92-e65be0885f95" => {
                        let header = wrmheader_from_playready_object(&pssh[32..]).unwrap();
                        assert_eq!(header.kid_list(), vec![system.kid]);
                        assert!(header.la_url.unwrap().ends_with("/license/playready"));
                    }
                    _ => {
                        assert_eq!(pssh[8], 1, "v1 box with KIDs");
                        assert_eq!(&pssh[32..48], &system.kid.0);
                    }
                }
            }
            if let FieldKind::HlsSignalingData { playlist } = &field.kind {
                let line = String::from_utf8(STANDARD.decode(&field.value).unwrap()).unwrap();
                let tag = if playlist.as_deref() == Some("master") { "#EXT-X-SESSION-KEY:" } else { "#EXT-X-KEY:" };
                assert!(line.starts_with(tag), "{line}");
            }
        }
    }
}

#[tokio::test]
async fn speke_v2_reference_request_is_answered_and_keys_are_the_content_keys() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Packager").await;
    let body = read("aws-speke-reference-server/speke_v2_request_server_api_body_spekev2.xml");
    let answer = answered(&app, &tenant, V2, body.clone()).await;
    assert_conformant(&answer);
    assert_eq!(answer.content_id.as_deref(), Some("cenc_test_001"));
    assert_eq!(answer.version.as_deref(), Some("2.3"));
    let keys = plain_keys(&answer);
    let stored = api_keys(&app, &tenant, "cenc_test_001").await;
    assert_eq!(stored.len(), 2);
    for (kid, key) in &keys {
        assert_eq!(&stored[kid].0, key, "SPEKE key is the key API's");
    }
    // VIDEO without pixel bounds is ALL (allowed only where every track is); AUDIO is AUDIO.
    assert_eq!(stored["0f083e4eb8314a3d917ece78076e54aa"].1, "ALL");
    assert_eq!(stored["041fdd3a7f5e4848a7cb65e97758e9a0"].1, "AUDIO");

    // Idempotent: the same request gives the same keys.
    let again = answered(&app, &tenant, V2, body).await;
    assert_eq!(plain_keys(&again), keys);

    // The keys work on the ClearKey license path.
    let token = app.token_for(&tenant, "u1", "cenc_test_001").await;
    let kids: Vec<&str> = keys.keys().map(String::as_str).collect();
    let license = app.clearkey(&token, &kids).await;
    assert_eq!(license.status(), 200);
    let license: Value = license.json().await.unwrap();
    assert_eq!(license["keys"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn aws_verification_suite_gets_answers_or_the_refusal_it_expects() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Suite").await;
    // One tenant, as the suite runs against one key server: both directories repeat the same contents and KIDs.
    for dir in ["general", "vod"] {
        for name in [
            "1_generic_spekev2_dash_widevine_preset_video_1_audio_1_no_rotation.xml",
            "2_speke_v1_style_implementation.xml",
        ] {
            let answer =
                answered(&app, &tenant, V2, read(&format!("aws-speke-reference-server/spekev2_requests/{dir}/{name}")))
                    .await;
            assert_conformant(&answer);
            let stored = api_keys(&app, &tenant, answer.content_id.as_deref().unwrap()).await;
            for (kid, key) in plain_keys(&answer) {
                assert_eq!(stored[&kid].0, key);
            }
        }
        let wrong_version = read(&format!(
            "aws-speke-reference-server/spekev2_requests/{dir}/3_negative_wrong_version_spekev2_dash_widevine.xml"
        ));
        let message = refused(&app, &tenant, V2, wrong_version, 422, 3012).await;
        assert!(message.starts_with("Unsupported CPIX@version"), "{message}");
        for name in ["4_spekev2_negative_preset_shared_video.xml", "5_spekev2_negative_preset_shared_audio.xml"] {
            let message = refused(
                &app,
                &tenant,
                V2,
                read(&format!("aws-speke-reference-server/spekev2_requests/{dir}/{name}")),
                422,
                3011,
            )
            .await;
            assert!(
                message.contains("ALL cannot be combined") || message.contains("names no ContentKeyPeriod"),
                "{message}"
            );
        }
    }
    // The negatives made no keys.
    let response = app.get("/api/v1/keys/test_case_negative_shared_video", &tenant.api_key).await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn speke_v2_requires_what_the_spec_requires() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Strict").await;
    let base =
        String::from_utf8(read("aws-speke-reference-server/speke_v2_request_server_api_body_spekev2.xml")).unwrap();
    let cases = [
        (base.replace(" contentId=\"cenc_test_001\"", ""), 3011, "Missing CPIX@contentId"),
        (base.replace("version=\"2.3\"", "version=\"2.2\""), 3012, "Unsupported CPIX@version"),
        (base.replacen(" commonEncryptionScheme=\"cenc\"", "", 1), 3011, "Missing ContentKey@commonEncryptionScheme"),
        (base.replacen(" intendedTrackType=\"VIDEO\"", "", 1), 3011, "Missing ContentKeyUsageRule@intendedTrackType"),
        (
            base.replacen("commonEncryptionScheme=\"cenc\"", "commonEncryptionScheme=\"ctr\"", 1),
            3011,
            "Unsupported ContentKey@commonEncryptionScheme",
        ),
        (
            base.replacen("systemId=\"edef8ba9", "systemId=\"00000000", 1).replacen(
                "-79d6-4ace-a3c8-27dcd51d21ed",
                "-0000-0000-0000-000000000000",
                1,
            ),
            3011,
            "Unsupported DRMSystem@systemId",
        ),
        (base.replace("</cpix:CPIX>", ""), 3010, "not well-formed"),
        ("not xml at all".to_owned(), 3010, ""),
        ("<CPIX xmlns=\"urn:other\"/>".to_owned(), 3010, "root element"),
    ];
    for (body, code, message) in cases {
        let text = refused(&app, &tenant, V2, body.into_bytes(), 422, code).await;
        assert!(text.contains(message), "{text} should contain {message}");
    }
    // A SPEKE version other than 2.0 in the header.
    let response = app
        .http
        .post(app.url(V2))
        .bearer_auth(&tenant.api_key)
        .header("X-Speke-Version", "1.0")
        .body(base.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    assert_eq!(response.headers().get("x-clavis-error").unwrap(), "3012");
    // Too large.
    let huge = format!("{}<!--{}-->", base, "x".repeat(1024 * 1024 + 1));
    let response = post(&app, &tenant, V2, huge.into_bytes()).await;
    assert_eq!(response.status(), 413);
    assert_eq!(response.headers().get("x-clavis-error").unwrap(), "1012");
}

#[tokio::test]
async fn speke_v1_requests_are_answered_with_v1_signalling() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("V1").await;
    let answer =
        answered(&app, &tenant, V1, read("aws-speke-reference-server/speke_v1_request_server_api_body.xml")).await;
    assert_conformant(&answer);
    let aes = &answer.drm_systems[0];
    let field = |kind: FieldKind| {
        let v = &aes.fields.iter().find(|f| f.kind == kind).unwrap().value;
        String::from_utf8(STANDARD.decode(v).unwrap()).unwrap()
    };
    assert_eq!(field(FieldKind::KeyFormat), "identity");
    assert_eq!(field(FieldKind::KeyFormatVersions), "1");
    let uri = field(FieldKind::UriExtXKey);
    assert!(
        uri.contains(&format!(
            "/license/hls-aes/{}/5E99137A-BD6C-4ECC-A24D-A3EE04B4E011/6c5f52067d98480884d894f132c1e9fe",
            tenant.site_id
        )),
        "{uri}"
    );
    let stored = api_keys(&app, &tenant, "5E99137A-BD6C-4ECC-A24D-A3EE04B4E011").await;
    assert_eq!(stored.len(), 1);

    // The VOD and live examples are the same content and KID: the second call gets the first one's key.
    let tenant = app.create_tenant("V1 docs").await;
    for name in ["speke_v1_vod_request.xml", "speke_v1_live_request.xml"] {
        let answer = answered(&app, &tenant, V1, read(&format!("aws-speke-docs/{name}"))).await;
        assert_conformant(&answer);
        // explicitIV: the request's IV became the key's IV and comes back.
        assert_eq!(STANDARD.encode(answer.content_keys[0].explicit_iv.unwrap()), "OFj2IjCsPJFfMAxmQxLGPw==");
        let by_system = |id: &str| answer.drm_systems.iter().find(|s| s.system_id.to_string().starts_with(id)).unwrap();
        let fairplay = by_system("94ce86fb");
        let key_format = &fairplay.fields.iter().find(|f| f.kind == FieldKind::KeyFormat).unwrap().value;
        assert_eq!(STANDARD.decode(key_format).unwrap(), b"com.apple.streamingkeydelivery");
        let uri = &fairplay.fields.iter().find(|f| f.kind == FieldKind::UriExtXKey).unwrap().value;
        assert_eq!(STANDARD.decode(uri).unwrap(), b"skd://abc123");
        let playready = by_system("9a04f079");
        let header = &playready.fields.iter().find(|f| f.kind == FieldKind::ProtectionHeader).unwrap().value;
        let parsed = wrmheader_from_playready_object(&STANDARD.decode(header).unwrap()).unwrap();
        assert_eq!(parsed.kid_list(), vec![playready.kid]);
        let keys = api_keys(&app, &tenant, "abc123").await;
        assert_eq!(keys.len(), 1);
    }
}

#[tokio::test]
async fn key_rotation_answers_every_period_with_its_own_key() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Live").await;
    let period = |n: u32| {
        format!(
            r#"<cpix:CPIX contentId="live-1" version="2.3" xmlns:cpix="urn:dashif:org:cpix">
  <cpix:ContentKeyList>
    <cpix:ContentKey kid="00000000-0000-4000-8000-0000000000{n:02}" commonEncryptionScheme="cbcs"/>
    <cpix:ContentKey kid="00000000-0000-4000-8000-0000000001{n:02}" commonEncryptionScheme="cbcs"/>
  </cpix:ContentKeyList>
  <cpix:DRMSystemList>
    <cpix:DRMSystem kid="00000000-0000-4000-8000-0000000000{n:02}" systemId="edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"><cpix:PSSH/></cpix:DRMSystem>
    <cpix:DRMSystem kid="00000000-0000-4000-8000-0000000001{n:02}" systemId="9a04f079-9840-4286-ab92-e65be0885f95"><cpix:PSSH/></cpix:DRMSystem>
  </cpix:DRMSystemList>
  <cpix:ContentKeyPeriodList><cpix:ContentKeyPeriod id="p{n}" index="{n}"/></cpix:ContentKeyPeriodList>
  <cpix:ContentKeyUsageRuleList>
    <cpix:ContentKeyUsageRule kid="00000000-0000-4000-8000-0000000000{n:02}" intendedTrackType="HD"><cpix:KeyPeriodFilter periodId="p{n}"/></cpix:ContentKeyUsageRule>
    <cpix:ContentKeyUsageRule kid="00000000-0000-4000-8000-0000000001{n:02}" intendedTrackType="AUDIO"><cpix:KeyPeriodFilter periodId="p{n}"/></cpix:ContentKeyUsageRule>
  </cpix:ContentKeyUsageRuleList>
</cpix:CPIX>"#
        )
    };
    let mut all = HashMap::new();
    for n in 1..=3 {
        let answer = answered(&app, &tenant, V2, period(n).into_bytes()).await;
        assert_conformant(&answer);
        assert_eq!(answer.periods[0].index, Some(u64::from(n)));
        all.extend(plain_keys(&answer));
    }
    let distinct: std::collections::HashSet<_> = all.values().collect();
    assert_eq!((all.len(), distinct.len()), (6, 6), "six KIDs, six different keys");
    let stored = api_keys(&app, &tenant, "live-1").await;
    assert_eq!(stored.len(), 6);
    for (kid, key) in &all {
        assert_eq!(&stored[kid].0, key);
    }
    // A repeated period answers the same keys.
    let again = plain_keys(&answered(&app, &tenant, V2, period(2).into_bytes()).await);
    for (kid, key) in again {
        assert_eq!(all[&kid], key);
    }
}

#[tokio::test]
async fn tenants_are_isolated_and_basic_auth_is_checked() {
    let app = TestApp::spawn().await;
    let a = app.create_tenant("Tenant A").await;
    let b = app.create_tenant("Tenant B").await;
    let body = read("aws-speke-reference-server/speke_v2_request_server_api_body_spekev2.xml");
    let answer_a = answered(&app, &a, V2, body.clone()).await;
    assert_conformant(&answer_a);
    // B asks for A's KIDs (same content id even): refused, and B gets no key.
    let text = refused(&app, &b, V2, body.clone(), 409, 3003).await;
    assert!(text.contains("already in use"), "{text}");
    assert_eq!(app.get("/api/v1/keys/cenc_test_001", &b.api_key).await.status(), 404);
    // Within A, the KID cannot move to another content.
    let other_content = String::from_utf8(body.clone()).unwrap().replace("cenc_test_001", "another");
    refused(&app, &a, V2, other_content.into_bytes(), 409, 3003).await;

    // HTTP Basic: site id and API key.
    let basic = |user: &str, password: &str| {
        app.http
            .post(app.url(V2))
            .basic_auth(user, Some(password))
            .header("X-Speke-Version", "2.0")
            .body(body.clone())
            .send()
    };
    let ok = basic(&a.site_id, &a.api_key).await.unwrap();
    assert_eq!(ok.status(), 200);
    let ok = parse(ok.text().await.unwrap().as_bytes()).unwrap();
    assert_eq!(plain_keys(&ok), plain_keys(&answer_a));
    crate::kit::assert_problem(basic(&b.site_id, &a.api_key).await.unwrap(), 401, 2002).await;
    crate::kit::assert_problem(basic(&a.site_id, "not-the-key").await.unwrap(), 401, 2002).await;
    crate::kit::assert_problem(app.http.post(app.url(V1)).body(body).send().await.unwrap(), 401, 2001).await;
}

struct Cert {
    dir: tempfile::TempDir,
}

impl Cert {
    /// Cert1..Cert4's private key as PEM, converted with the openssl CLI.
    fn new(name: &str) -> Cert {
        let dir = tempfile::tempdir().unwrap();
        let pfx = cpix_dir().join(format!("dashif-cpix-test-vectors/{name}.pfx"));
        let status = Command::new("openssl")
            .args(["pkcs12", "-in"])
            .arg(&pfx)
            .args(["-nocerts", "-nodes", "-passin", &format!("pass:{name}"), "-out"])
            .arg(dir.path().join("key.pem"))
            .output()
            .unwrap();
        assert!(status.status.success(), "openssl pkcs12: {}", String::from_utf8_lossy(&status.stderr));
        Cert { dir }
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }
}

fn openssl(args: &[&str], input: &[u8], dir: &Path) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}

/// Open every content key of `doc` as the recipient `cert` (index in DeliveryDataList), with openssl only.
fn open_with_openssl(doc: &Document, recipient: usize, cert: &Cert) -> HashMap<String, String> {
    let dir = cert.dir.path();
    let wrapped = doc.recipients[recipient].wrapped.as_ref().expect("DocumentKey and MACMethod");
    let key = cert.key();
    let key = key.to_str().unwrap();
    let rsa = ["pkeyutl", "-decrypt", "-inkey", key, "-pkeyopt", "rsa_padding_mode:oaep"];
    let document_key = openssl(&rsa, &wrapped.document_key, dir);
    let mac_key = openssl(&rsa, &wrapped.mac_key, dir);
    assert_eq!(document_key.len(), 32);
    doc.content_keys
        .iter()
        .map(|k| {
            let Some(KeyValue::Encrypted { cipher, mac: Some(mac) }) = &k.value else {
                panic!("{} not encrypted", k.kid)
            };
            let expected_mac = openssl(
                &[
                    "dgst",
                    "-sha512",
                    "-mac",
                    "HMAC",
                    "-macopt",
                    &format!("hexkey:{}", hex::encode(&mac_key)),
                    "-binary",
                ],
                cipher,
                dir,
            );
            assert_eq!(&expected_mac, mac, "ValueMAC");
            let plain = openssl(
                &["enc", "-d", "-aes-256-cbc", "-K", &hex::encode(&document_key), "-iv", &hex::encode(&cipher[..16])],
                &cipher[16..],
                dir,
            );
            (k.kid.to_hex(), hex::encode(plain))
        })
        .collect()
}

#[tokio::test]
async fn dashif_vectors_with_recipients_get_keys_only_the_recipients_can_open() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Recipients").await;
    let certs: Vec<Cert> = (1..=4).map(|n| Cert::new(&format!("Cert{n}"))).collect();
    // (vector, content id, recipients as Cert numbers in DeliveryDataList order)
    for (vector, content, recipients) in [
        ("EncryptedContentKeys.xml", "dashif-encrypted", vec![1]),
        ("EncryptedContentKeysWithMultipleRecipients.xml", "dashif-multi", vec![1, 2, 3, 4]),
        ("Complex.xml", "dashif-complex", vec![]),
        ("EvenMoreComplex.xml", "dashif-even-more-complex", vec![]),
    ] {
        let body = read(&format!("dashif-cpix-test-vectors/{vector}"));
        let answer = answered(&app, &tenant, &format!("{V1}?content_id={content}"), body).await;
        let stored = api_keys(&app, &tenant, content).await;
        assert_eq!(stored.len(), answer.content_keys.len(), "{vector}");
        // Which certificate each DeliveryData names: compare with the .cer files.
        let cers: Vec<Vec<u8>> = (1..=4).map(|n| read(&format!("dashif-cpix-test-vectors/Cert{n}.cer"))).collect();
        let named: Vec<usize> =
            answer.recipients.iter().map(|r| cers.iter().position(|c| *c == r.certificate).unwrap() + 1).collect();
        if !recipients.is_empty() {
            assert_eq!(named, recipients, "{vector}");
        }
        assert!(!named.is_empty());
        for (i, n) in named.iter().enumerate() {
            let opened = open_with_openssl(&answer, i, &certs[n - 1]);
            for (kid, key) in opened {
                assert_eq!(stored[&kid].0, key, "{vector}: Cert{n} opens the key the key API reports");
            }
        }
        // DRM systems the vector lists are filled in too.
        if vector.contains("Complex") {
            assert!(
                answer.drm_systems.iter().any(|s| s
                    .fields
                    .iter()
                    .any(|f| f.kind == FieldKind::ContentProtectionData && !f.value.is_empty()))
            );
        }
    }
}

#[tokio::test]
async fn dashif_vectors_with_clear_keys_are_imported() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Import").await;
    for (vector, content) in [
        ("ClearContentKeysOnly.xml", "dashif-clear"),
        ("UsageRulesBasedOnLabels.xml", "dashif-labels"),
        ("KeyRotationMultiKeyMulitPeriod.xml", "ignored: CPIX@id is test"),
    ] {
        let body = read(&format!("dashif-cpix-test-vectors/{vector}"));
        let given = plain_keys(&parse(&body).unwrap());
        let path = format!("{V1}?content_id={}", content.replace(' ', "%20"));
        let answer = answered(&app, &tenant, &path, body.clone()).await;
        assert_eq!(plain_keys(&answer), given, "{vector}: the document's keys are kept");
        let stored_content = if vector.starts_with("KeyRotation") { "test" } else { content };
        let stored = api_keys(&app, &tenant, stored_content).await;
        for (kid, key) in &given {
            assert_eq!(&stored[kid].0, key);
        }
        // Importing again is idempotent; a different value for a known KID is refused.
        answered(&app, &tenant, &path, body.clone()).await;
        let text = String::from_utf8(body).unwrap();
        let first_value = text.split("PlainValue>").nth(1).unwrap().trim_end_matches("</pskc:");
        let changed = text.replacen(first_value, "AAAAAAAAAAAAAAAAAAAAAA==", 1);
        refused(&app, &tenant, &path, changed.into_bytes(), 409, 3014).await;
    }
    // Label-based usage rules map to track types.
    let labels = api_keys(&app, &tenant, "dashif-labels").await;
    assert_eq!(labels["ba6c62d64a494aa48869ce4d2727a2b5"].1, "ALL");

    // Documents without keys are answered as they are.
    for vector in ["EmptyDocument.xml", "RecipientsWithoutContentKeys.xml", "KeyRotationMultiKeySinglePeriod.xml"] {
        let body = read(&format!("dashif-cpix-test-vectors/{vector}"));
        let response = post(&app, &tenant, &format!("{V1}?content_id=single"), body).await;
        if vector.starts_with("KeyRotation") {
            // Same KIDs and keys as the multi-period vector's first period, under the same CPIX@id: accepted.
            assert_eq!(response.status(), 200);
        } else {
            assert_eq!(response.status(), 200, "{vector}");
        }
    }
}

#[tokio::test]
async fn weak_recipient_certificates_are_refused() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Weak").await;
    let cert = STANDARD.encode(read("dashif-cpix-test-vectors/WeakCert_Sha1.cer"));
    let body = format!(
        r#"<CPIX xmlns="urn:dashif:org:cpix" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" contentId="weak" version="2.3">
<DeliveryDataList><DeliveryData><DeliveryKey><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></DeliveryKey></DeliveryData></DeliveryDataList>
<ContentKeyList><ContentKey kid="11111111-2222-4333-8444-555555555555" commonEncryptionScheme="cenc"/></ContentKeyList>
<ContentKeyUsageRuleList><ContentKeyUsageRule kid="11111111-2222-4333-8444-555555555555" intendedTrackType="ALL"/></ContentKeyUsageRuleList>
</CPIX>"#
    );
    let text = refused(&app, &tenant, V2, body.into_bytes(), 422, 3013).await;
    assert!(text.contains("weak"), "{text}");
    let garbage = "<CPIX xmlns=\"urn:dashif:org:cpix\" xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" contentId=\"weak\" version=\"2.3\"><DeliveryDataList><DeliveryData><DeliveryKey><ds:X509Data><ds:X509Certificate>AAAA</ds:X509Certificate></ds:X509Data></DeliveryKey></DeliveryData></DeliveryDataList><ContentKeyList><ContentKey kid=\"11111111-2222-4333-8444-555555555555\" commonEncryptionScheme=\"cenc\"/></ContentKeyList><ContentKeyUsageRuleList><ContentKeyUsageRule kid=\"11111111-2222-4333-8444-555555555555\" intendedTrackType=\"ALL\"/></ContentKeyUsageRuleList></CPIX>";
    refused(&app, &tenant, V2, garbage.as_bytes().to_vec(), 422, 3013).await;
}

/// The import path's decryption (Clavis's own `Opener`) opens the DASH-IF vector with Cert1 to the documented keys,
/// and notices the wrong MAC of `Invalid_WrongMac.xml`.
#[test]
fn dashif_encrypted_vector_opens_with_cert1_to_the_documented_keys() {
    use clavis_keys::cpix::delivery::Opener;
    let cert = Cert::new("Cert1");
    let pkcs8 = Command::new("openssl")
        .args(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in"])
        .arg(cert.key())
        .output()
        .unwrap();
    assert!(pkcs8.status.success());
    let doc = parse(&read("dashif-cpix-test-vectors/EncryptedContentKeys.xml")).unwrap();
    let opener = Opener::new(&pkcs8.stdout, doc.recipients[0].wrapped.as_ref().unwrap()).unwrap();
    let opened: Vec<(String, String)> = doc
        .content_keys
        .iter()
        .map(|k| (k.kid.to_uuid_string(), STANDARD.encode(*opener.open(k.value.as_ref().unwrap()).unwrap())))
        .collect();
    assert_eq!(
        opened,
        [
            ("bd5adf51-cf04-410f-aac3-ec63a69e929e", "3rWoHYasQubO6HbJGrGtLw=="),
            ("d2920429-87ab-41e6-a4c5-a8c836b6312e", "O5w9FdZiwmQK4uIXzAziaQ=="),
            ("e17ba4b8-faff-4d30-bcba-7485e3f2e884", "Cwu/3hSBBRQ7SurBdZD5ow=="),
            ("0ae6b9ad-92d2-4ebe-882b-1d07dee70715", "FB6/Eck9Y9SXy6bY8UU/Mw=="),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    let wrong = parse(&read("dashif-cpix-test-vectors/Invalid_WrongMac.xml")).unwrap();
    let opener = Opener::new(&pkcs8.stdout, wrong.recipients[0].wrapped.as_ref().unwrap()).unwrap();
    assert!(wrong.content_keys.iter().any(|k| opener.open(k.value.as_ref().unwrap()).is_err()));
}

/// Complex.xml as text with one character of `region` (found after `anchor`) replaced, so it differs by one byte.
fn complex_with_one_byte_changed(anchor: &str, skip: usize) -> Vec<u8> {
    let text = String::from_utf8(read("dashif-cpix-test-vectors/Complex.xml")).unwrap();
    let at = text.find(anchor).unwrap() + anchor.len() + skip;
    let replacement = if &text[at..at + 1] == "A" { "B" } else { "A" };
    let mut changed = text.clone();
    changed.replace_range(at..at + 1, replacement);
    assert_ne!(changed, text);
    changed.into_bytes()
}

#[tokio::test]
async fn signed_dashif_vectors_are_verified() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Signed").await;
    // Every signature of the signed vectors verifies (UTF-16, odd prefixes and ids, comments added after signing).
    for (vector, content) in [("Complex.xml", "signed-complex"), ("EvenMoreComplex.xml", "signed-even-more")] {
        let body = read(&format!("dashif-cpix-test-vectors/{vector}"));
        answered(&app, &tenant, &format!("{V1}?content_id={content}"), body).await;
    }
    // The DASH-IF vectors whose signatures are broken: a content key removed after signing, a namespace declaration
    // added to the signed root.
    let path = format!("{V1}?content_id=signed-bad");
    let keys =
        refused(&app, &tenant, &path, read("dashif-cpix-test-vectors/Invalid_BadContentKeysSignature.xml"), 422, 3015)
            .await;
    assert!(keys.contains("over ContentKeyList") && keys.contains("digest mismatch"), "{keys}");
    let document =
        refused(&app, &tenant, &path, read("dashif-cpix-test-vectors/Invalid_BadDocumentSignature.xml"), 422, 3015)
            .await;
    assert!(document.contains("over the document") && document.contains("digest mismatch"), "{document}");

    // One byte of a KID inside the signed ContentKeyList.
    let kid = refused(&app, &tenant, &path, complex_with_one_byte_changed("<ContentKey kid=\"", 3), 422, 3015).await;
    assert!(kid.contains("over ContentKeyList") && kid.contains("digest mismatch"), "{kid}");
    // One byte of a SignatureValue: the digests still match, the signature does not.
    let value = refused(&app, &tenant, &path, complex_with_one_byte_changed("<SignatureValue>", 20), 422, 3015).await;
    assert!(value.contains("signature mismatch") && value.contains("CPIX Example Entity"), "{value}");

    // An algorithm Clavis does not verify is a clear 422 too.
    let text = String::from_utf8(read("dashif-cpix-test-vectors/Complex.xml")).unwrap();
    let sha1 = text.replacen("http://www.w3.org/2001/04/xmlenc#sha512", "http://www.w3.org/2000/09/xmldsig#sha1", 1);
    let unsupported = refused(&app, &tenant, &path, sha1.into_bytes(), 422, 3016).await;
    assert!(unsupported.contains("sha1"), "{unsupported}");

    // Nothing of the refused documents was stored.
    let response = app.get("/api/v1/keys/signed-bad", &tenant.api_key).await;
    assert_eq!(response.status(), 404);
}
