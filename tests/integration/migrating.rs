//! The migration guide (`docs/migrating.md`): the token code a PallyCon, DRMtoday or Axinom customer already runs
//! (`docs/examples/migrating/`) and the key-import snippets run against a live server, and the licenses they get
//! carry exactly the keys that were imported (or, for Axinom, sent inline).

use std::path::Path;
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::kit::{TestApp, TestTenant, assert_problem, b64url};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/examples");

/// Run a documented example (from `docs/examples`) with `env`, off the runtime's threads (the scripts call the
/// server this test runs); returns what it printed, asserting it succeeded.
pub(crate) async fn run_example(program: &str, script: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = Command::new(program);
    command.arg(Path::new(EXAMPLES).join(script)).args(args).current_dir(EXAMPLES);
    for (name, value) in env {
        command.env(name, value);
    }
    let what = format!("{program} {script}");
    let output =
        tokio::task::spawn_blocking(move || command.output()).await.unwrap().unwrap_or_else(|e| panic!("{what}: {e}"));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{script}: {}{stdout}", String::from_utf8_lossy(&output.stderr));
    stdout.trim().to_owned()
}

/// The environment the shell examples read: the server and the tenant's credentials.
fn env_for<'a>(app: &'a TestApp, tenant: &'a TestTenant) -> [(&'static str, &'a str); 3] {
    [("CLAVIS", app.base.as_str()), ("CLAVIS_API_KEY", tenant.api_key.as_str()), ("SITE_ID", tenant.site_id.as_str())]
}

/// `POST /license/clearkey` for hex KIDs with the token in `header`, as the player does after the switch.
async fn license(app: &TestApp, header: &str, token: &str, kids_hex: &[&str]) -> reqwest::Response {
    let kids: Vec<String> = kids_hex.iter().map(|k| b64url(&hex::decode(k.replace('-', "")).unwrap())).collect();
    app.http
        .post(app.url("/license/clearkey"))
        .header(header, token)
        .body(json!({"kids": kids, "type": "temporary"}).to_string())
        .send()
        .await
        .unwrap()
}

/// The keys of a ClearKey license as (KID hex, key hex), asserting it was issued.
async fn license_keys(response: reqwest::Response) -> Vec<(String, String)> {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let hex_of = |v: &Value| hex::encode(URL_SAFE_NO_PAD.decode(v.as_str().unwrap()).unwrap());
    let mut keys: Vec<(String, String)> =
        body["keys"].as_array().unwrap().iter().map(|k| (hex_of(&k["kid"]), hex_of(&k["k"]))).collect();
    keys.sort();
    keys
}

async fn put_ok(app: &TestApp, tenant: &TestTenant, path: &str, body: Value) -> Value {
    let response = app.put(path, &tenant.api_key, &body).await;
    let status = response.status();
    let view: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{path}: {view}");
    view
}

#[test]
fn the_guide_shows_the_examples_as_they_are_tested() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/migrating.md")).unwrap();
    for file in [
        "migrating/pallycon_token.js",
        "migrating/drmtoday_token.py",
        "migrating/axinom_message.js",
        "migrating/import_keys.sh",
        "migrating/import.cpix.xml",
    ] {
        let code = std::fs::read_to_string(Path::new(EXAMPLES).join(file)).unwrap();
        assert!(doc.contains(&code), "docs/migrating.md does not show docs/examples/{file} as it is");
    }
    for settings in [PALLYCON_SETTINGS, DRMTODAY_SETTINGS, AXINOM_SETTINGS] {
        assert!(doc.contains(&format!("```json\n{settings}\n```")), "docs/migrating.md does not show {settings}");
    }
    // The guide is reachable from the README and from the token docs.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(readme.contains("docs/migrating.md"));
    let tokens = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/tokens.md")).unwrap();
    assert!(tokens.contains("(migrating.md)"));
}

// The PallyCon site of the guide's example (any 4 capital letters, a 32-character site key, an access key), and the
// settings body the guide shows.
const SITE: &str = "MIGR";
const SITE_KEY: &str = "k8Jd0sLq2Vn5Xr7Tz1Bc4Fg6Hm9Pw3Ya";
const ACCESS_KEY: &str = "Qe5Rt7Yu9Io1Pa3Sd5Fg7Hj9Kl2Zx4Cv";
pub(crate) const PALLYCON_SETTINGS: &str = r#"{"site_id": "MIGR", "site_key": "k8Jd0sLq2Vn5Xr7Tz1Bc4Fg6Hm9Pw3Ya", "access_key": "Qe5Rt7Yu9Io1Pa3Sd5Fg7Hj9Kl2Zx4Cv", "token_ttl_seconds": 600, "compat_errors": false}"#;
const HD: (&str, &str) = ("9b2f6a1c3d4e4f50a1b2c3d4e5f60718", "0f1e2d3c4b5a69788796a5b4c3d2e1f0");
const AUDIO: (&str, &str) = ("9b2f6a1c3d4e4f50a1b2c3d4e5f60719", "a0b1c2d3e4f5061728394a5b6c7d8e9f");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pallycon_token_code_gets_licenses_with_the_imported_keys() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Migrating from PallyCon").await;
    let env = env_for(&app, &tenant);

    // Step 1: the keys the packaged content was encrypted with move over (the guide's import script).
    let imported = run_example(
        "sh",
        "migrating/import_keys.sh",
        &["bigbuckbunny", &format!("HD:{}:{}", HD.0, HD.1), &format!("AUDIO:{}:{}", AUDIO.0, AUDIO.1)],
        &env,
    )
    .await;
    let imported: Value = serde_json::from_str(&imported).unwrap();
    let mut listed: Vec<(&str, &str)> = imported["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kid"].as_str().unwrap(), k["track_type"].as_str().unwrap()))
        .collect();
    listed.sort();
    assert_eq!(listed, [(HD.0, "HD"), (AUDIO.0, "AUDIO")]);

    // Step 2: the PallyCon keys go into the tenant's settings.
    let settings: Value = serde_json::from_str(PALLYCON_SETTINGS).unwrap();
    let view = put_ok(&app, &tenant, "/api/v1/integrations/pallycon", settings.clone()).await;
    assert_eq!(view["site_id"], SITE);
    assert_eq!(view["compat_errors"], false);

    // Step 3: the backend's unchanged token code; the player sends its token to Clavis's license URL.
    let token = run_example(
        "node",
        "migrating/pallycon_token.js",
        &[SITE, SITE_KEY, ACCESS_KEY, "viewer-1", "bigbuckbunny"],
        &[],
    )
    .await;
    let fields: Value = serde_json::from_slice(&STANDARD.decode(&token).unwrap()).unwrap();
    assert_eq!(fields["response_format"], "original");
    let keys = license_keys(license(&app, "pallycon-customdata-v2", &token, &[HD.0, AUDIO.0]).await).await;
    assert_eq!(keys, [(HD.0.to_owned(), HD.1.to_owned()), (AUDIO.0.to_owned(), AUDIO.1.to_owned())]);

    // Its policy is honoured: SD_ONLY gets no HD key.
    let sd_only = r#"{"policy_version": 2, "playback_policy": {"allowed_track_types": "SD_ONLY"}}"#;
    let token = run_example(
        "node",
        "migrating/pallycon_token.js",
        &[SITE, SITE_KEY, ACCESS_KEY, "viewer-1", "bigbuckbunny", sd_only, "PlayReady"],
        &[],
    )
    .await;
    assert_problem(license(&app, "pallycon-customdata-v2", &token, &[HD.0]).await, 403, 5006).await;

    // external_key: the token carries the key of content Clavis has no keys for.
    let (kid, key) = ("c0ffee00c0ffee00c0ffee00c0ffee00", "00112233445566778899aabbccddeeff");
    let external =
        json!({"policy_version": 2, "external_key": {"mpeg_cenc": [{"track_type": "ALL", "key_id": kid, "key": key}]}});
    let token = run_example(
        "node",
        "migrating/pallycon_token.js",
        &[SITE, SITE_KEY, ACCESS_KEY, "viewer-1", "live-event", &external.to_string()],
        &[],
    )
    .await;
    let keys = license_keys(license(&app, "pallycon-customdata-v2", &token, &[kid]).await).await;
    assert_eq!(keys, [(kid.to_owned(), key.to_owned())]);

    // Players that test for PallyCon's error codes: with compat_errors, a refusal is HTTP 200 with errorCode.
    let wrong_access_key = run_example(
        "node",
        "migrating/pallycon_token.js",
        &[SITE, SITE_KEY, "not-the-access-key", "viewer-1", "bigbuckbunny"],
        &[],
    )
    .await;
    assert_problem(license(&app, "pallycon-customdata-v2", &wrong_access_key, &[HD.0]).await, 401, 4003).await;
    let mut compat = settings;
    compat["compat_errors"] = json!(true);
    put_ok(&app, &tenant, "/api/v1/integrations/pallycon", compat).await;
    let answer = license(&app, "pallycon-customdata-v2", &wrong_access_key, &[HD.0]).await;
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["errorCode"], "7019", "{body}");

    // Rollback is deleting the settings: the site id is free again, the tokens stop here.
    assert_eq!(app.delete("/api/v1/integrations/pallycon", &tenant.api_key).await.status(), 204);
    assert_problem(license(&app, "pallycon-customdata-v2", &wrong_access_key, &[HD.0]).await, 401, 4007).await;
}

const MERCHANT: &str = "acme-media";
const DT_KID: &str = "shared-secret-1";
const DT_SECRET: &str = "6a1f0c3e9b7d2a4c8e6f1b3d5a7c9e0f2b4d6f8a1c3e5a7b9d0f2e4c6a8b1d3f";
pub(crate) const DRMTODAY_SETTINGS: &str = r#"{"merchant": "acme-media", "secrets": [{"kid": "shared-secret-1", "secret": "6a1f0c3e9b7d2a4c8e6f1b3d5a7c9e0f2b4d6f8a1c3e5a7b9d0f2e4c6a8b1d3f"}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drmtoday_token_code_gets_licenses_with_keys_imported_by_cpix() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Migrating from DRMtoday").await;
    let env = env_for(&app, &tenant);

    // The keys come over as a CPIX document with plain values, posted with the Unified Streaming script.
    let answer = run_example("sh", "unified/fetch_cpix.sh", &["bigbuckbunny", "migrating/import.cpix.xml"], &env).await;
    assert!(answer.contains("ESIzRFVmd4iZqrvM3e7/AA=="), "the answer repeats the imported keys: {answer}");
    let stored: Value = app.get("/api/v1/keys/bigbuckbunny", &tenant.api_key).await.json().await.unwrap();
    let mut stored: Vec<(&str, &str, &str)> = stored["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kid"].as_str().unwrap(), k["key"].as_str().unwrap(), k["track_type"].as_str().unwrap()))
        .collect();
    stored.sort();
    let (hd, audio) = ("3c4b2a109f8e4d7cb6a5948372615001", "3c4b2a109f8e4d7cb6a5948372615002");
    let (hd_key, audio_key) = ("112233445566778899aabbccddeeff00", "00112233445566778899aabbccddeeff");
    assert_eq!(stored, [(hd, hd_key, "HD"), (audio, audio_key, "AUDIO")]);

    let view =
        put_ok(&app, &tenant, "/api/v1/integrations/drmtoday", serde_json::from_str(DRMTODAY_SETTINGS).unwrap()).await;
    assert_eq!(view["merchant"], MERCHANT);
    assert_eq!(view["kids"], json!([DT_KID]));
    let token = run_example(
        "python3",
        "migrating/drmtoday_token.py",
        &[MERCHANT, DT_KID, DT_SECRET, "viewer-7", "bigbuckbunny"],
        &[],
    )
    .await;
    let keys = license_keys(license(&app, "x-dt-auth-token", &token, &[hd, audio]).await).await;
    assert_eq!(keys, [(hd.to_owned(), hd_key.to_owned()), (audio.to_owned(), audio_key.to_owned())]);
    // DRMtoday's rule: a token is good for one license.
    assert_problem(license(&app, "x-dt-auth-token", &token, &[hd]).await, 403, 4011).await;

    // The crt rights are honoured: a denied quality is not delivered, the others are.
    let no_hd = r#"{"op": {"config": {"HD": {"*": {"deny": true}}}}}"#;
    let args = [MERCHANT, DT_KID, DT_SECRET, "viewer-7", "bigbuckbunny", no_hd];
    let token = run_example("python3", "migrating/drmtoday_token.py", &args, &[]).await;
    assert_problem(license(&app, "x-dt-auth-token", &token, &[hd]).await, 403, 5006).await;
    let token = run_example("python3", "migrating/drmtoday_token.py", &args, &[]).await;
    assert_eq!(license_keys(license(&app, "x-dt-auth-token", &token, &[audio]).await).await.len(), 1);

    // A token signed with another secret is refused.
    let forged = run_example(
        "python3",
        "migrating/drmtoday_token.py",
        &[MERCHANT, DT_KID, &"00".repeat(32), "viewer-7", "bigbuckbunny"],
        &[],
    )
    .await;
    assert_problem(license(&app, "x-dt-auth-token", &forged, &[hd]).await, 401, 4003).await;
}

const COM_KEY_ID: &str = "4f1d2c3b-5a69-4788-9a6b-5c4d3e2f1a0b";
const COM_KEY: &str = "wL3mB9sQ1vN7kX2pR5tY8uZ0aC4dE6fG1hJ3kL5mN7o=";
pub(crate) const AXINOM_SETTINGS: &str = r#"{"keys": [{"com_key_id": "4f1d2c3b-5a69-4788-9a6b-5c4d3e2f1a0b", "com_key": "wL3mB9sQ1vN7kX2pR5tY8uZ0aC4dE6fG1hJ3kL5mN7o="}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axinom_message_code_gets_licenses_with_its_inline_keys() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Migrating from Axinom").await;
    assert_eq!(STANDARD.decode(COM_KEY).unwrap().len(), 32);
    let view =
        put_ok(&app, &tenant, "/api/v1/integrations/axinom", serde_json::from_str(AXINOM_SETTINGS).unwrap()).await;
    assert_eq!(view["com_key_ids"], json!([COM_KEY_ID]));

    let (kid_1, key_1) = ("1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "5a4b3c2d1e0f99887766554433221100");
    let (kid_2, key_2) = ("1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5e", "ffeeddccbbaa99887766554433221100");
    let message = run_example(
        "node",
        "migrating/axinom_message.js",
        &[COM_KEY_ID, COM_KEY, &format!("{kid_1}:{key_1}"), &format!("{kid_2}:{key_2}")],
        &[],
    )
    .await;
    let keys = license_keys(license(&app, "X-AxDRM-Message", &message, &[kid_1, kid_2]).await).await;
    let plain = |kid: &str| kid.replace('-', "");
    assert_eq!(keys, [(plain(kid_1), key_1.to_owned()), (plain(kid_2), key_2.to_owned())]);
    // A KID the message does not grant refuses the whole license.
    let stranger = "99999999-5e6f-4a7b-8c9d-0e1f2a3b4c5d";
    assert_problem(license(&app, "X-AxDRM-Message", &message, &[kid_1, stranger]).await, 403, 5002).await;
    // A message signed with another communication key is refused.
    let other_key = STANDARD.encode([3u8; 32]);
    let forged =
        run_example("node", "migrating/axinom_message.js", &[COM_KEY_ID, &other_key, &format!("{kid_1}:{key_1}")], &[])
            .await;
    assert_problem(license(&app, "X-AxDRM-Message", &forged, &[kid_1]).await, 401, 4003).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_seed_from_the_old_service_gives_the_old_keys_for_the_old_kids() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Migrating with a key seed").await;
    // Microsoft's published vectors: the seed, and the key each KID derives to, as the old service derived them.
    let vectors = crate::kit::read_vector_json("playready/keyseed_vectors.json");
    let seed = vectors["key_seed_b64"].as_str().unwrap();
    assert_eq!(app.put("/api/v1/key-seed", &tenant.api_key, &json!({"key_seed": seed})).await.status(), 200);
    let old: Vec<(String, String)> = vectors["vectors"].as_array().unwrap()[..2]
        .iter()
        .map(|v| (v["kid_uuid"].as_str().unwrap().to_lowercase(), v["content_key_hex"].as_str().unwrap().to_owned()))
        .collect();

    // The old KIDs, without values, posted with the Unified Streaming script: Clavis derives their keys.
    let content_keys: String =
        old.iter().map(|(kid, _)| format!(r#"<cpix:ContentKey kid="{kid}" commonEncryptionScheme="cenc"/>"#)).collect();
    let rules: String = old
        .iter()
        .map(|(kid, _)| format!(r#"<cpix:ContentKeyUsageRule kid="{kid}" intendedTrackType="ALL"/>"#))
        .collect();
    let request = format!(
        r#"<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" version="2.3"><cpix:ContentKeyList>{content_keys}</cpix:ContentKeyList><cpix:ContentKeyUsageRuleList>{rules}</cpix:ContentKeyUsageRuleList></cpix:CPIX>"#
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old-kids.cpix.xml");
    std::fs::write(&path, request).unwrap();
    let env = env_for(&app, &tenant);
    run_example("sh", "unified/fetch_cpix.sh", &["back-catalogue", path.to_str().unwrap()], &env).await;

    let stored: Value = app.get("/api/v1/keys/back-catalogue", &tenant.api_key).await.json().await.unwrap();
    let mut stored: Vec<(String, String)> = stored["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kid"].as_str().unwrap().to_owned(), k["key"].as_str().unwrap().to_owned()))
        .collect();
    stored.sort();
    let mut expected: Vec<(String, String)> =
        old.iter().map(|(kid, key)| (kid.replace('-', ""), key.clone())).collect();
    expected.sort();
    assert_eq!(stored, expected, "the keys the old service derived from the same seed");
    let token = app.token_for(&tenant, "viewer", "back-catalogue").await;
    let kids: Vec<&str> = expected.iter().map(|(kid, _)| kid.as_str()).collect();
    assert_eq!(license_keys(license(&app, "X-Clavis-Token", &token, &kids).await).await, expected);
}
