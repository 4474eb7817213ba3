//! The Widevine key-server API (`POST /key-server/widevine`) that Shaka Packager's `--key_server_url` calls, the
//! signer registry behind it, and key periods for live rotation (also through `POST /api/v1/keys`).
//!
//! Proofs: the public AES signature vector and both padding styles; tampering, unknown signers and other tenants'
//! signers refused; an RSA-PSS signer; the requests Shaka Packager 3.4.2 really sent (captured) answered in the shape it
//! accepted; and the real packager encrypting with Clavis keys (plain and rotating), the output decrypted by ffmpeg
//! with the keys `GET /api/v1/keys` shows, and played in headless Chromium with a Clavis ClearKey license.
//! Needs ffmpeg, openssl, chromium and Shaka Packager (`scripts/test` installs them); a missing tool fails the test.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clavis_keys::widevine_key_server::aes_signature;
use clavis_keys::widevine_pssh::parse_widevine_pssh_data;
use serde_json::{Value, json};

use crate::browser::{ChromeDriver, PAGE, check, mpd_codecs, packager, play, player_url, serve_dir, test_clip, tool};
use crate::kit::{TestApp, TestTenant, assert_problem, read_vector_json, vectors_dir};

const VECTOR: &str = "widevine/aes_signature_vector.json";
const AES_CAPTURE: &str = "widevine/shaka-packager-3.4.2-capture/aes_signed_getcontentkey_capture.json";
const RSA_CAPTURE: &str = "widevine/shaka-packager-3.4.2-capture/rsa_signed_getcontentkey_capture.json";
const RSA_CAPTURE_KEY: &str = "widevine/shaka-packager-3.4.2-capture/rsa_test_key_GENERATED_BY_US.pem";

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_else(|| panic!("not a string: {value}"))
}

fn b64(value: &Value) -> Vec<u8> {
    STANDARD.decode(text(value)).unwrap()
}

/// The public `widevine_test` key and IV of the vector.
fn vector_key_iv() -> ([u8; 32], [u8; 16]) {
    let vector = read_vector_json(VECTOR);
    (
        hex::decode(text(&vector["aes_key_hex"])).unwrap().try_into().unwrap(),
        hex::decode(text(&vector["aes_iv_hex"])).unwrap().try_into().unwrap(),
    )
}

async fn put_aes_signer(app: &TestApp, tenant: &TestTenant, name: &str, key: &[u8; 32], iv: &[u8; 16]) -> Value {
    let response = app
        .put(
            &format!("/api/v1/widevine/signers/{name}"),
            &tenant.api_key,
            &json!({"aes_key": hex::encode(key), "aes_iv": hex::encode(iv)}),
        )
        .await;
    assert_eq!(response.status(), 200, "PUT signer {name}");
    response.json().await.unwrap()
}

/// An envelope as Shaka Packager writes it, AES-signed.
fn signed(message: &str, signer: &str, key: &[u8; 32], iv: &[u8; 16]) -> String {
    json!({
        "request": STANDARD.encode(message),
        "signature": STANDARD.encode(aes_signature(key, iv, message.as_bytes())),
        "signer": signer,
    })
    .to_string()
}

/// What the key server answered: the HTTP status, `X-Clavis-Error`, and the decoded inner response.
struct Answer {
    http: u16,
    error_code: Option<String>,
    inner: Value,
}

async fn key_request(app: &TestApp, body: String) -> Answer {
    let response = app
        .http
        .post(app.url("/key-server/widevine"))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let http = response.status().as_u16();
    let error_code = response.headers().get("x-clavis-error").map(|v| v.to_str().unwrap().to_owned());
    let outer: Value = response.json().await.unwrap();
    let inner = serde_json::from_slice(&b64(&outer["response"])).unwrap();
    Answer { http, error_code, inner }
}

fn assert_refused(answer: &Answer, status: &str, code: u16) {
    assert_eq!(answer.http, 200, "refusals are key-server answers, as Google's server gives them");
    assert_eq!(answer.inner["status"], status, "{}", answer.inner);
    assert_eq!(answer.error_code.as_deref(), Some(code.to_string().as_str()), "X-Clavis-Error");
    assert!(answer.inner.get("tracks").is_none());
}

/// The (type, key_id hex, key hex) of each track of an OK answer, checking each track's Widevine PSSH data names its
/// KID, the content id and the protection scheme.
fn tracks(answer: &Answer, content_id: &[u8], scheme: &str) -> Vec<(String, String, String)> {
    assert_eq!(answer.http, 200);
    assert_eq!(answer.error_code, None);
    assert_eq!(answer.inner["status"], "OK", "{}", answer.inner);
    answer.inner["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|track| {
            let kid = b64(&track["key_id"]);
            let key = b64(&track["key"]);
            assert_eq!((kid.len(), key.len()), (16, 16), "{track}");
            let pssh = track["pssh"].as_array().unwrap();
            assert_eq!(pssh.len(), 1, "Shaka Packager wants exactly one PSSH per track");
            assert_eq!(pssh[0]["drm_type"], "WIDEVINE");
            let data = parse_widevine_pssh_data(&b64(&pssh[0]["data"])).unwrap();
            assert_eq!(data.key_ids.iter().map(|k| k.0.to_vec()).collect::<Vec<_>>(), std::slice::from_ref(&kid));
            assert_eq!(data.content_id.as_deref(), Some(content_id));
            assert_eq!(data.scheme().map(|s| s.as_str()), Some(scheme));
            assert_eq!(data.crypto_period_index.map(u64::from), track["crypto_period_index"].as_u64());
            (text(&track["type"]).to_owned(), hex::encode(kid), hex::encode(key))
        })
        .collect()
}

/// The content's keys as `GET /api/v1/keys/{content_id}` shows them: KID → (track type, key, period index).
async fn stored_keys(
    app: &TestApp,
    tenant: &TestTenant,
    content_id: &str,
) -> HashMap<String, (String, String, Option<u64>)> {
    let response = app.get(&format!("/api/v1/keys/{content_id}"), &tenant.api_key).await;
    assert_eq!(response.status(), 200, "GET keys of {content_id}");
    let body: Value = response.json().await.unwrap();
    body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                text(&k["kid"]).to_owned(),
                (text(&k["track_type"]).to_owned(), text(&k["key"]).to_owned(), k["period_index"].as_u64()),
            )
        })
        .collect()
}

const FIVE_TRACKS: [&str; 5] = ["SD", "HD", "UHD1", "UHD2", "AUDIO"];

#[tokio::test]
async fn public_aes_vector_verifies_and_forgeries_are_refused() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Widevine Films").await;
    let other = app.create_tenant("Other Films").await;
    let vector = read_vector_json(VECTOR);
    let (key, iv) = vector_key_iv();
    let view = put_aes_signer(&app, &tenant, "widevine_test", &key, &iv).await;
    assert_eq!(view["kind"], "aes");
    assert!(!view.to_string().contains(&hex::encode(key)), "the answer never shows the key: {view}");

    // The public vector, byte for byte as published (PKCS#5 padding, what Shaka Packager sends).
    let answer = key_request(&app, text(&vector["outer_request_json"]).to_owned()).await;
    let first = tracks(&answer, b"test content id", "cenc");
    assert_eq!(first.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(), FIVE_TRACKS);
    assert_eq!(first.iter().map(|t| &t.1).collect::<BTreeSet<_>>().len(), 5, "one key per track");

    // The keys are the content's keys: the key API shows them with their track types.
    let stored = stored_keys(&app, &tenant, "test%20content%20id").await;
    for (track, kid, key) in &first {
        assert_eq!(stored.get(kid), Some(&(track.clone(), key.clone(), None)), "{track}");
    }

    // Zero padding (Google's reference proxy) verifies too, and the same request gets the same keys.
    let message = text(&vector["message_utf8"]);
    let zero_padded = json!({
        "request": text(&vector["message_b64"]),
        "signature": text(&vector["signature_zeropad_b64 (Google python reference proxy style)"]),
        "signer": "widevine_test",
    });
    assert_eq!(tracks(&key_request(&app, zero_padded.to_string()).await, b"test content id", "cenc"), first);

    // One flipped byte in the signed request, the signature left as it was.
    let mut tampered = message.as_bytes().to_vec();
    let at = message.find("CENC").unwrap();
    tampered[at] = b'X';
    let forged = json!({
        "request": STANDARD.encode(&tampered),
        "signature": text(&vector["signature_pkcs5_b64 (Shaka Packager, captured)"]),
        "signer": "widevine_test",
    });
    assert_refused(&key_request(&app, forged.to_string()).await, "SIGNATURE_FAILED", 3020);
    // A flipped bit in the signature.
    let mut signature = b64(&vector["signature_pkcs5_b64 (Shaka Packager, captured)"]);
    signature[3] ^= 1;
    let forged = json!({"request": text(&vector["message_b64"]), "signature": STANDARD.encode(&signature), "signer": "widevine_test"});
    assert_refused(&key_request(&app, forged.to_string()).await, "SIGNATURE_FAILED", 3020);

    // A signer nobody registered, and an unsigned request.
    assert_refused(&key_request(&app, signed(message, "nobody", &key, &iv)).await, "ACCESS_DENIED", 3021);
    let unsigned = json!({"request": text(&vector["message_b64"])}).to_string();
    assert_refused(&key_request(&app, unsigned).await, "ACCESS_DENIED", 3021);

    // Another tenant's signer does not verify this tenant's key, and cannot take this tenant's signer name.
    let other_key = [7u8; 32];
    put_aes_signer(&app, &other, "other_signer", &other_key, &iv).await;
    assert_refused(&key_request(&app, signed(message, "other_signer", &key, &iv)).await, "SIGNATURE_FAILED", 3020);
    let taken = app
        .put(
            "/api/v1/widevine/signers/widevine_test",
            &other.api_key,
            &json!({"aes_key": hex::encode(other_key), "aes_iv": hex::encode(iv)}),
        )
        .await;
    assert_problem(taken, 409, 3023).await;
    // Signed with the other tenant's signer, the request makes the other tenant's keys: this tenant's stay its own.
    let theirs =
        tracks(&key_request(&app, signed(message, "other_signer", &other_key, &iv)).await, b"test content id", "cenc");
    assert!(theirs.iter().all(|t| !first.contains(t)), "tenants never share keys");
    let their_stored = stored_keys(&app, &other, "test%20content%20id").await;
    assert_eq!(their_stored.len(), 5);
    assert!(first.iter().all(|(_, kid, _)| !their_stored.contains_key(kid)));
}

#[tokio::test]
async fn malformed_requests_get_key_server_refusals_never_500() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Careful Films").await;
    let (key, iv) = vector_key_iv();
    put_aes_signer(&app, &tenant, "careful", &key, &iv).await;
    for body in ["", "not json", "[]", r#"{"request": 5}"#, r#"{"request": "%%%"}"#, r#"{"request": ""}"#] {
        let answer = key_request(&app, body.to_owned()).await;
        assert_refused(&answer, "MALFORMED_REQUEST", 3022);
    }
    // Well signed but wrong inside: the status says what is wrong.
    for (message, status) in [
        (r#"{"tracks":[{"type":"SD"}]}"#, "CONTENT_ID_MISSING"),
        (r#"{"content_id":"YQ==","tracks":[]}"#, "TRACK_TYPE_MISSING"),
        (r#"{"content_id":"YQ==","tracks":[{"type":"8K"}]}"#, "TRACK_TYPE_UNKNOWN"),
        (
            r#"{"content_id":"YQ==","tracks":[{"type":"SD"}],"first_crypto_period_index":0,"crypto_period_count":0}"#,
            "NO_REQUESTED_CRYPTO_PERIODS",
        ),
        (
            r#"{"content_id":"YQ==","tracks":[{"type":"SD"}],"first_crypto_period_index":0,"crypto_period_count":100000}"#,
            "MALFORMED_REQUEST",
        ),
        ("{\"content_id\":\"YQ==\"", "MALFORMED_REQUEST"),
    ] {
        assert_refused(&key_request(&app, signed(message, "careful", &key, &iv)).await, status, 3022);
    }
    // Content ids that are bytes: printable UTF-8 is the content id, anything else `0x<hex>`.
    let message = json!({"content_id": STANDARD.encode([0u8, 1, 0xff]), "tracks": [{"type": "SD"}]}).to_string();
    let answer = key_request(&app, signed(&message, "careful", &key, &iv)).await;
    let sd = tracks(&answer, &[0, 1, 0xff], "cenc");
    assert!(stored_keys(&app, &tenant, "0x0001ff").await.contains_key(&sd[0].1));
}

#[tokio::test]
async fn rsa_pss_signers_verify_and_the_captured_rsa_request_is_answered() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("RSA Films").await;
    let dir = tempfile::tempdir().unwrap();
    let openssl = tool("CLAVIS_OPENSSL", &["/usr/bin/openssl"]);

    // The capture's signing key (ours, generated for the capture): register its public half.
    let public = Command::new(&openssl)
        .args(["rsa", "-pubout", "-in"])
        .arg(vectors_dir().join(RSA_CAPTURE_KEY))
        .output()
        .unwrap();
    assert!(public.status.success());
    let pem = String::from_utf8(public.stdout).unwrap();
    let response =
        app.put("/api/v1/widevine/signers/widevine_test", &tenant.api_key, &json!({"rsa_public_key": pem})).await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert_eq!((view["kind"].as_str(), view["rsa_bits"].as_u64()), (Some("rsa"), Some(2048)));

    let capture = read_vector_json(RSA_CAPTURE);
    let answer = key_request(&app, text(&capture["outer_body"]).to_owned()).await;
    let ours = tracks(&answer, b"test content id", "cbcs");
    let expected: Value = serde_json::from_str(text(&capture["inner_response"])).unwrap();
    assert_same_shape(&answer.inner, &expected);
    assert_eq!(ours.len(), 5);

    // A fresh key signed by the openssl CLI with PSS / SHA-1 / salt 20, as Shaka Packager signs.
    let key_path = dir.path().join("signer.pem");
    check(Command::new(&openssl).args(["genrsa", "-out"]).arg(&key_path).arg("2048"), "openssl genrsa");
    let public = Command::new(&openssl).args(["rsa", "-pubout", "-in"]).arg(&key_path).output().unwrap();
    let pem = String::from_utf8(public.stdout).unwrap();
    let response =
        app.put("/api/v1/widevine/signers/fresh_rsa", &tenant.api_key, &json!({"rsa_public_key": pem})).await;
    assert_eq!(response.status(), 200);
    let message = r#"{"content_id":"cnNhLWNsaXA=","policy":"","tracks":[{"type":"SD"}],"drm_types":["WIDEVINE"],"protection_scheme":"CENC"}"#;
    std::fs::write(dir.path().join("message"), message).unwrap();
    let signature = Command::new(&openssl)
        .current_dir(dir.path())
        .args([
            "dgst",
            "-sha1",
            "-sign",
            "signer.pem",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:20",
        ])
        .args(["-sigopt", "rsa_mgf1_md:sha1", "message"])
        .output()
        .unwrap();
    assert!(signature.status.success(), "{}", String::from_utf8_lossy(&signature.stderr));
    let envelope = |message: &str| {
        json!({"request": STANDARD.encode(message), "signature": STANDARD.encode(&signature.stdout), "signer": "fresh_rsa"})
            .to_string()
    };
    let sd = tracks(&key_request(&app, envelope(message)).await, b"rsa-clip", "cenc");
    assert!(stored_keys(&app, &tenant, "rsa-clip").await.contains_key(&sd[0].1));
    assert_refused(&key_request(&app, envelope(&message.replace("SD", "HD"))).await, "SIGNATURE_FAILED", 3020);

    // Private keys and small keys are refused at registration.
    let private = std::fs::read_to_string(&key_path).unwrap();
    assert_problem(
        app.put("/api/v1/widevine/signers/x", &tenant.api_key, &json!({"rsa_public_key": private})).await,
        422,
        1011,
    )
    .await;
    let small = dir.path().join("small.pem");
    check(Command::new(&openssl).args(["genrsa", "-out"]).arg(&small).arg("1024"), "openssl genrsa");
    let public = Command::new(&openssl).args(["rsa", "-pubout", "-in"]).arg(&small).output().unwrap();
    let pem = String::from_utf8(public.stdout).unwrap();
    assert_problem(
        app.put("/api/v1/widevine/signers/x", &tenant.api_key, &json!({"rsa_public_key": pem})).await,
        422,
        1011,
    )
    .await;
}

/// The answer has the captured answer's shape: the same status, the same track types in the same order, and per
/// track the same fields (values are Clavis's own keys, not the mock's).
fn assert_same_shape(ours: &Value, captured: &Value) {
    assert_eq!(ours["status"], captured["status"]);
    let (ours, captured) = (ours["tracks"].as_array().unwrap(), captured["tracks"].as_array().unwrap());
    assert_eq!(ours.len(), captured.len());
    for (o, c) in ours.iter().zip(captured) {
        assert_eq!(o["type"], c["type"]);
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<BTreeSet<_>>();
        assert_eq!(keys(o), keys(c), "fields of a track");
        assert_eq!(keys(&o["pssh"][0]), keys(&c["pssh"][0]), "fields of a PSSH");
        assert_eq!(o["pssh"][0]["drm_type"], c["pssh"][0]["drm_type"]);
        // Clavis's PSSH data holds what the mock's held (KID, provider, content id) plus the protection scheme.
        let (od, cd) = (
            parse_widevine_pssh_data(&b64(&o["pssh"][0]["data"])).unwrap(),
            parse_widevine_pssh_data(&b64(&c["pssh"][0]["data"])).unwrap(),
        );
        assert_eq!((od.provider, od.content_id), (cd.provider, cd.content_id));
    }
}

#[tokio::test]
async fn captured_aes_request_of_shaka_packager_is_answered_in_the_shape_it_accepted() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Capture Films").await;
    let (key, iv) = vector_key_iv();
    put_aes_signer(&app, &tenant, "widevine_test", &key, &iv).await;
    let capture = read_vector_json(AES_CAPTURE);
    let expected: Value = serde_json::from_str(text(&capture["inner_response"])).unwrap();
    let answer = key_request(&app, text(&capture["outer_body"]).to_owned()).await;
    assert_same_shape(&answer.inner, &expected);
    let first = tracks(&answer, b"test content id", "cenc");
    // Replayed: the same keys (what a packager restarted on the same content needs).
    assert_eq!(
        tracks(&key_request(&app, text(&capture["outer_body"]).to_owned()).await, b"test content id", "cenc"),
        first
    );
}

#[tokio::test]
async fn signer_registry_lists_replaces_and_deletes_without_showing_keys() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Registry Films").await;
    let other = app.create_tenant("Registry Rivals").await;
    let (key, iv) = vector_key_iv();
    put_aes_signer(&app, &tenant, "packager-1", &key, &iv).await;
    put_aes_signer(&app, &tenant, "packager-2", &[9; 32], &iv).await;

    let list: Value = app.get("/api/v1/widevine/signers", &tenant.api_key).await.json().await.unwrap();
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|s| text(&s["name"])).collect();
    assert_eq!(names, ["packager-1", "packager-2"]);
    assert!(!list.to_string().contains(&hex::encode(key)) && !list.to_string().contains(&hex::encode(iv)));
    let others: Value = app.get("/api/v1/widevine/signers", &other.api_key).await.json().await.unwrap();
    assert_eq!(others, json!([]), "another tenant sees none of them");
    assert_problem(app.get("/api/v1/widevine/signers/packager-1", &other.api_key).await, 404, 3024).await;
    assert_problem(app.delete("/api/v1/widevine/signers/packager-1", &other.api_key).await, 404, 3024).await;

    // Bad bodies and names.
    for body in [
        json!({"aes_key": "00", "aes_iv": hex::encode(iv)}),
        json!({"aes_key": hex::encode(key)}),
        json!({"aes_key": hex::encode(key), "aes_iv": hex::encode(iv), "rsa_public_key": "x"}),
        json!({"rsa_public_key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}),
    ] {
        assert_problem(app.put("/api/v1/widevine/signers/bad", &tenant.api_key, &body).await, 422, 1011).await;
    }
    let body = json!({"aes_key": hex::encode(key), "aes_iv": hex::encode(iv)});
    assert_problem(app.put("/api/v1/widevine/signers/has%20space", &tenant.api_key, &body).await, 422, 1011).await;

    // Replaced: the new key signs, the old one no longer does.
    let message = r#"{"content_id":"cmVn","tracks":[{"type":"SD"}]}"#;
    put_aes_signer(&app, &tenant, "packager-1", &[5; 32], &iv).await;
    assert_refused(&key_request(&app, signed(message, "packager-1", &key, &iv)).await, "SIGNATURE_FAILED", 3020);
    tracks(&key_request(&app, signed(message, "packager-1", &[5; 32], &iv)).await, b"reg", "cenc");

    // Deleted: refused, and the name is free for another tenant.
    assert_eq!(app.delete("/api/v1/widevine/signers/packager-1", &tenant.api_key).await.status(), 204);
    assert_refused(&key_request(&app, signed(message, "packager-1", &[5; 32], &iv)).await, "ACCESS_DENIED", 3021);
    put_aes_signer(&app, &other, "packager-1", &key, &iv).await;
    let theirs = tracks(&key_request(&app, signed(message, "packager-1", &key, &iv)).await, b"reg", "cenc");
    assert!(stored_keys(&app, &other, "reg").await.contains_key(&theirs[0].1), "now the other tenant's signer");
}

#[tokio::test]
async fn key_rotation_requests_get_keys_period_by_period_and_the_same_keys_again() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Live Films").await;
    let (key, iv) = vector_key_iv();
    put_aes_signer(&app, &tenant, "live", &key, &iv).await;
    let request = |first: u32, count: u32| {
        let message = json!({
            "content_id": STANDARD.encode("live-1"), "policy": "",
            "tracks": [{"type": "SD"}, {"type": "HD"}, {"type": "AUDIO"}], "drm_types": ["WIDEVINE"],
            "protection_scheme": "CBCS", "first_crypto_period_index": first, "crypto_period_count": count,
            "crypto_period_seconds": 2,
        })
        .to_string();
        signed(&message, "live", &key, &iv)
    };
    let answer = key_request(&app, request(3, 4)).await;
    let keys = tracks(&answer, b"live-1", "cbcs");
    assert_eq!(keys.len(), 12);
    let periods: Vec<u64> =
        answer.inner["tracks"].as_array().unwrap().iter().map(|t| t["crypto_period_index"].as_u64().unwrap()).collect();
    assert_eq!(periods, [3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6], "period by period, as Shaka Packager reads them");
    let types: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
    assert_eq!(types[..3], ["SD", "HD", "AUDIO"]);
    assert_eq!(keys.iter().map(|k| &k.1).collect::<BTreeSet<_>>().len(), 12, "a key per track and period");
    let data = parse_widevine_pssh_data(&b64(&answer.inner["tracks"][0]["pssh"][0]["data"])).unwrap();
    assert_eq!((data.crypto_period_index, data.crypto_period_seconds), (Some(3), Some(2)));

    // An overlapping request: the periods already made keep their keys.
    let later = tracks(&key_request(&app, request(5, 4)).await, b"live-1", "cbcs");
    assert_eq!(later[..6], keys[6..]);
    let stored = stored_keys(&app, &tenant, "live-1").await;
    assert_eq!(stored.len(), 18);
    for (i, (track, kid, key)) in keys.iter().enumerate() {
        assert_eq!(stored[kid], (track.clone(), key.clone(), Some(3 + i as u64 / 3)));
    }
}

#[tokio::test]
async fn key_periods_through_the_key_api_are_stable_distinct_and_per_tenant() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Period Films").await;
    let other = app.create_tenant("Period Rivals").await;
    let period = |index: Value| json!({"content_id": "live", "tracks": ["SD", "HD"], "period": index});

    let response = app.post("/api/v1/keys", &tenant.api_key, &period(json!({"index": 5}))).await;
    assert_eq!(response.status(), 201, "made");
    let five: Value = response.json().await.unwrap();
    assert_eq!(five["keys"].as_array().unwrap().len(), 2);
    assert!(five["keys"].as_array().unwrap().iter().all(|k| k["period_index"] == 5));
    let response = app.post("/api/v1/keys", &tenant.api_key, &period(json!({"index": 5}))).await;
    assert_eq!(response.status(), 200, "already there");
    let again: Value = response.json().await.unwrap();
    assert_eq!(again["keys"], five["keys"], "same period, same keys");
    // The same period named by a time inside it and the period length: 5 * 60 s after the epoch.
    let by_time =
        app.create_keys(&tenant, period(json!({"start": "1970-01-01T00:05:30Z", "duration_seconds": 60}))).await;
    assert_eq!(by_time["keys"], five["keys"]);

    let six = app.create_keys(&tenant, period(json!({"index": 6}))).await;
    let kids = |v: &Value| v["keys"].as_array().unwrap().iter().map(|k| text(&k["kid"]).to_owned()).collect::<Vec<_>>();
    let all_keys =
        |v: &Value| v["keys"].as_array().unwrap().iter().map(|k| text(&k["key"]).to_owned()).collect::<Vec<_>>();
    assert!(kids(&six).iter().all(|k| !kids(&five).contains(k)), "another period, other KIDs");
    assert!(all_keys(&six).iter().all(|k| !all_keys(&five).contains(k)), "another period, other keys");

    // Racing requests for a new period all get the one key set that was stored.
    let racers: Vec<_> = (0..6)
        .map(|_| {
            let (http, url, api_key, body) =
                (app.http.clone(), app.url("/api/v1/keys"), tenant.api_key.clone(), period(json!({"index": 9})));
            tokio::spawn(async move { http.post(url).bearer_auth(api_key).json(&body).send().await.unwrap() })
        })
        .collect();
    let mut answers: Vec<Value> = Vec::new();
    for racer in racers {
        let response = racer.await.unwrap();
        assert!(response.status().is_success());
        answers.push(response.json().await.unwrap());
    }
    assert!(answers.windows(2).all(|w| w[0]["keys"] == w[1]["keys"]), "{answers:?}");

    // GET shows every period's keys with their index; the other tenant's period 5 is its own.
    let stored = stored_keys(&app, &tenant, "live").await;
    assert_eq!(stored.len(), 6);
    assert_eq!(stored.values().filter(|v| v.2 == Some(9)).count(), 2);
    let theirs = app.create_keys(&other, period(json!({"index": 5}))).await;
    assert!(kids(&theirs).iter().all(|k| !kids(&five).contains(k)));
    assert!(all_keys(&theirs).iter().all(|k| !all_keys(&five).contains(k)));
    assert_eq!(stored_keys(&app, &other, "live").await.len(), 2);

    // Bad periods.
    for bad in [
        json!({}),
        json!({"index": -1}),
        json!({"index": 1, "duration_seconds": 5}),
        json!({"start": "soon", "duration_seconds": 5}),
    ] {
        let response = app.post("/api/v1/keys", &tenant.api_key, &period(bad.clone())).await;
        assert!(matches!(response.status().as_u16(), 400 | 422), "{bad}: {}", response.status());
    }
    let import = json!({"content_id": "live", "period": {"index": 1}, "keys": [{"kid": "00112233445566778899aabbccddeeff", "key": "00112233445566778899aabbccddeeff"}]});
    assert_problem(app.post("/api/v1/keys", &tenant.api_key, &import).await, 422, 1011).await;

    // A period key is a license key like any other.
    let token = app.token_for(&tenant, "viewer", "live").await;
    let kid = kids(&six)[0].clone();
    let license = app.clearkey(&token, &[&kid]).await;
    assert_eq!(license.status(), 200);
}

/// Package `clear.mp4` in `dir` with Shaka Packager asking Clavis's key server, with `extra` flags.
fn package_with_key_server(
    dir: &Path,
    app_base: &str,
    content_id: &str,
    key: &[u8; 32],
    iv: &[u8; 16],
    extra: &[&str],
) {
    let mut command = Command::new(packager());
    command.current_dir(dir).args(extra).args([
        "--enable_widevine_encryption",
        "--key_server_url",
        &format!("{app_base}/key-server/widevine"),
        "--content_id",
        &hex::encode(content_id),
        "--signer",
        "clavis_packager",
        "--aes_signing_key",
        &hex::encode(key),
        "--aes_signing_iv",
        &hex::encode(iv),
        "--clear_lead",
        "0",
    ]);
    check(&mut command, "shaka packager with the Clavis key server");
}

/// Decode `input` with ffmpeg decrypting with `key_hex`: the number of decoded video frames, or ffmpeg's complaint.
fn decrypt_and_decode(dir: &Path, input: &str, key_hex: &str) -> Result<usize, String> {
    let output = Command::new(tool("CLAVIS_FFMPEG", &["/usr/bin/ffmpeg"]))
        .current_dir(dir)
        .args(["-hide_banner", "-nostats", "-loglevel", "error", "-decryption_key", key_hex, "-i", input])
        .args(["-map", "0:v", "-f", "framemd5", "-"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() || !stderr.trim().is_empty() {
        return Err(stderr);
    }
    Ok(String::from_utf8_lossy(&output.stdout).lines().filter(|l| !l.starts_with('#')).count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shaka_packager_encrypts_with_clavis_keys_that_decrypt_and_play_with_a_clavis_license() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Packaged Films").await;
    let key = [0x42u8; 32];
    let iv = [0x24u8; 16];
    put_aes_signer(&app, &tenant, "clavis_packager", &key, &iv).await;
    let media = tempfile::tempdir().unwrap();
    let dir = media.path().to_path_buf();
    let base = app.base.clone();
    tokio::task::spawn_blocking(move || {
        test_clip(&dir, 4);
        // CommonSystem too: ClearKey players find the KIDs in the common PSSH.
        package_with_key_server(
            &dir,
            &base,
            "clip",
            &key,
            &iv,
            &[
                "in=clear.mp4,stream=video,output=enc.mp4",
                "--protection_systems",
                "Widevine,CommonSystem",
                "--mpd_output",
                "enc.mpd",
            ],
        );
    })
    .await
    .unwrap();

    // The packager used the SD key (320x240 video) that GET /api/v1/keys shows; ffmpeg decrypts with it.
    let stored = stored_keys(&app, &tenant, "clip").await;
    assert_eq!(stored.len(), 5, "one key per track type the packager asked for");
    let (sd_kid, (_, sd_key, _)) = stored.iter().find(|(_, v)| v.0 == "SD").unwrap();
    let mpd = std::fs::read_to_string(media.path().join("enc.mpd")).unwrap();
    let uuid = format!("{}-{}-{}-{}-{}", &sd_kid[..8], &sd_kid[8..12], &sd_kid[12..16], &sd_kid[16..20], &sd_kid[20..]);
    assert!(mpd.contains(&format!("cenc:default_KID=\"{uuid}\"")), "the MPD names the SD KID: {mpd}");
    assert!(mpd.contains("edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"), "Widevine ContentProtection");
    let frames = decrypt_and_decode(media.path(), "enc.mp4", sd_key).unwrap();
    assert_eq!(frames, 100, "4 s at 25 fps");
    let (_, (_, hd_key, _)) = stored.iter().find(|(_, v)| v.0 == "HD").unwrap();
    assert!(decrypt_and_decode(media.path(), "enc.mp4", hd_key).is_err(), "another key does not decode it");

    // Headless Chromium plays it with a ClearKey license from Clavis for the content.
    let codecs = mpd_codecs(&mpd);
    std::fs::write(media.path().join("player.html"), PAGE).unwrap();
    let media_port = serve_dir(media.path().to_path_buf()).await;
    let driver = ChromeDriver::start();
    let client = driver.browser().await;
    let token = app.token_for(&tenant, "viewer", "clip").await;
    let state =
        play(&client, &player_url(media_port, "enc.mp4", &codecs, &app.base, &token), 2.0, Duration::from_secs(30))
            .await;
    client.close().await.unwrap();
    assert!(state["currentTime"].as_f64().unwrap() > 2.0, "playback with a Clavis license: {state}");
    assert_eq!(state["licenseStatus"], 200, "{state}");
}

/// Readers racing writers of new periods: a cache fill that read the database just before a period's keys committed
/// must not be kept, or the content's set would lack those keys (and `GET` once answered 500 for a content caught
/// between its row and its first keys).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periods_written_while_others_read_are_never_lost_or_half_seen() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Racing Readers").await;
    for round in 0..3 {
        let content = format!("race-{round}");
        let mut tasks = Vec::new();
        for period in 0..12u64 {
            let (http, api_key) = (app.http.clone(), tenant.api_key.clone());
            let (post, get) = (app.url("/api/v1/keys"), app.url(&format!("/api/v1/keys/{content}")));
            let body = json!({"content_id": content, "tracks": ["SD"], "period": {"index": period}});
            tasks.push(tokio::spawn(async move {
                let made = http.post(post).bearer_auth(&api_key).json(&body).send().await.unwrap();
                let made_status = made.status().as_u16();
                let read = http.get(get).bearer_auth(&api_key).send().await.unwrap().status().as_u16();
                (made_status, read)
            }));
        }
        for task in tasks {
            let (made, read) = task.await.unwrap();
            assert_eq!(made, 201, "round {round}: every period is new");
            assert!(read == 200 || read == 404, "round {round}: a read during the writes answered {read}");
        }
        let stored = stored_keys(&app, &tenant, &content).await;
        let periods: BTreeSet<u64> = stored.values().filter_map(|v| v.2).collect();
        assert_eq!(periods, (0..12).collect::<BTreeSet<_>>(), "round {round}: every period's key is in the set");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shaka_packager_rotates_keys_per_crypto_period_and_every_segment_decrypts() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Rotating Films").await;
    let key = [0x17u8; 32];
    let iv = [0x71u8; 16];
    put_aes_signer(&app, &tenant, "clavis_packager", &key, &iv).await;
    let media = tempfile::tempdir().unwrap();
    let dir = media.path().to_path_buf();
    let base = app.base.clone();
    tokio::task::spawn_blocking(move || {
        test_clip(&dir, 4);
        package_with_key_server(
            &dir,
            &base,
            "live-clip",
            &key,
            &iv,
            &[
                "in=clear.mp4,stream=video,init_segment=init.mp4,segment_template=seg_$Number$.m4s",
                "--segment_duration",
                "1",
                "--crypto_period_duration",
                "1",
                "--mpd_output",
                "live.mpd",
            ],
        );
    })
    .await
    .unwrap();

    let stored = stored_keys(&app, &tenant, "live-clip").await;
    let periods: BTreeSet<u64> = stored.values().filter_map(|v| v.2).collect();
    assert!(periods.len() >= 4, "keys for several crypto periods: {periods:?}");
    // (Shaka Packager also asks once without rotation when it starts: those keys have no period.)

    // Each segment names its period's KID (in its `seig` sample group); with that key the init segment + the segment
    // decrypt and decode.
    let init = std::fs::read(media.path().join("init.mp4")).unwrap();
    let mut used = BTreeSet::new();
    for number in 1..=4 {
        let segment = std::fs::read(media.path().join(format!("seg_{number}.m4s"))).unwrap();
        let kid = hex::encode(seig_kid(&segment));
        let (track, key, period) = stored.get(&kid).unwrap_or_else(|| panic!("segment {number}: KID {kid} unknown"));
        assert_eq!(track, "SD");
        used.insert(period.unwrap());
        let joined = format!("joined_{number}.mp4");
        std::fs::write(media.path().join(&joined), [init.as_slice(), segment.as_slice()].concat()).unwrap();
        let frames = decrypt_and_decode(media.path(), &joined, key)
            .unwrap_or_else(|e| panic!("segment {number} with KID {kid}: {e}"));
        assert_eq!(frames, 25, "segment {number}: one second at 25 fps");
    }
    // Shaka Packager numbers periods by sample time, so the first period may span two 1-second segments.
    assert!(used.len() >= 3, "the key rotates across the segments: periods {used:?}");
}

/// The KID of the `seig` sample group description of a fragment (how a key-rotating fragment names its key):
/// `sgpd` version 1, grouping type `seig`, default length, entry count, then the entry's 4 bytes and the KID.
fn seig_kid(segment: &[u8]) -> [u8; 16] {
    let at = segment.windows(8).position(|w| &w[..4] == b"sgpd" && &w[8 - 4..] == b"\x01\0\0\0").expect("an sgpd box");
    let grouping = at + 8;
    assert_eq!(&segment[grouping..grouping + 4], b"seig", "sgpd of type seig");
    let kid = grouping + 4 + 4 + 4 + 4;
    segment[kid..kid + 16].try_into().unwrap()
}
