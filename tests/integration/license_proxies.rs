//! Widevine and PlayReady as a DRM proxy (seed document 004), against local STAND-INS for the upstream servers
//! (Google's Widevine license service and a tenant's PlayReady license server cannot be reached from here): the
//! exact request Clavis sends upstream, the license relayed to the player, retries within the budget, and every
//! failure mapped to its catalog code.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clavis::ServiceSet;
use clavis_core::ids::Kid;
use clavis_keys::widevine_pssh::{ProtectionScheme, widevine_pssh_data};
use clavis_licenses::widevine::challenge::build::{Request, license_request};
use serde_json::{Value, json};

use crate::kit::{TestApp, TestTenant, assert_problem, read_vector_json, vectors_dir};
use crate::standin::{Answer, StandIn};

const WV_PATH: &str = "/cenc/getlicense/widevine_test";
const PR_PATH: &str = "/playready/rightsmanager.asmx";

async fn spawn_allowing_private() -> TestApp {
    TestApp::spawn_with(ServiceSet::ALL, |config| config.callback_allow_private_networks = true).await
}

/// A tenant with content "movie" (SD, HD and audio keys); answers its keys (kid, key) in that order.
async fn tenant_with_content(app: &TestApp, name: &str) -> (TestTenant, Vec<(String, String)>) {
    let tenant = app.create_tenant(name).await;
    let keys = app.create_keys(&tenant, json!({"content_id": "movie", "tracks": ["SD", "HD", "AUDIO"]})).await;
    let pairs = (0..3)
        .map(|i| {
            (keys["keys"][i]["kid"].as_str().unwrap().to_owned(), keys["keys"][i]["key"].as_str().unwrap().to_owned())
        })
        .collect();
    (tenant, pairs)
}

fn kid(hex_kid: &str) -> Kid {
    Kid(hex::decode(hex_kid).unwrap().try_into().unwrap())
}

/// The public `widevine_test` signing key and IV (shared vectors).
fn signing_key() -> (String, String) {
    let v = read_vector_json("widevine/aes_signature_vector.json");
    (v["aes_key_hex"].as_str().unwrap().to_owned(), v["aes_iv_hex"].as_str().unwrap().to_owned())
}

fn wv_ok(license: &[u8]) -> Answer {
    Answer::Reply(200, "application/json", json!({"status": "OK", "license": STANDARD.encode(license)}).to_string())
}

async fn configure_widevine(app: &TestApp, tenant: &TestTenant, url: &str, timeout_ms: u32, retries: u32) {
    let (key, iv) = signing_key();
    let response = app
        .put(
            "/api/v1/integrations/widevine",
            &tenant.api_key,
            &json!({"license_url": url, "provider": "widevine_test", "signing_key": key, "signing_iv": iv,
                    "timeout_ms": timeout_ms, "retries": retries}),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["signing_key_set"], true);
    assert!(!body.to_string().contains(&key), "the signing key is never shown");
}

async fn widevine(app: &TestApp, token: &str, challenge: &[u8]) -> reqwest::Response {
    app.http
        .post(app.url("/license/widevine"))
        .header("X-Clavis-Token", token)
        .body(challenge.to_vec())
        .send()
        .await
        .unwrap()
}

fn challenge_for(kids: &[&str], request_id: &[u8]) -> Vec<u8> {
    let kids: Vec<Kid> = kids.iter().map(|k| kid(k)).collect();
    let pssh = widevine_pssh_data(&kids, Some(b"movie"), ProtectionScheme::Cenc);
    license_request(&Request {
        pssh: Some(&pssh),
        request_id,
        client_token: Some(b"stand-in device certificate"),
        request_time: Some(chrono::Utc::now().timestamp()),
        nonce: 1,
        ..Request::default()
    })
}

#[tokio::test]
async fn widevine_requests_reach_the_stand_in_signed_with_keys_and_policy_and_the_license_is_relayed() {
    let app = spawn_allowing_private().await;
    let (tenant, keys) = tenant_with_content(&app, "Acme").await;
    let upstream = StandIn::start(WV_PATH, vec![wv_ok(b"stand-in widevine license")]).await;
    configure_widevine(&app, &tenant, &upstream.url, 2000, 1).await;
    let token = app
        .mint_token(
            &tenant,
            json!({"user_id": "viewer-1", "content_id": "movie", "policy": {
                "license_duration_seconds": 600, "renewal_interval_seconds": 60, "allowed_tracks": ["SD", "AUDIO"],
                "widevine": {"min_security_level": 3, "required_hdcp": "V1", "disable_analog_output": true}}}),
        )
        .await;

    let challenge = challenge_for(&[&keys[0].0, &keys[2].0], b"session-1");
    let response = widevine(&app, &token, &challenge).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/octet-stream");
    assert_eq!(&response.bytes().await.unwrap()[..], b"stand-in widevine license");

    // The exact request: the getlicense envelope, signed as the provider over the exact inner bytes.
    let sent = upstream.last();
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("POST", WV_PATH));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    let envelope = sent.json();
    assert_eq!(envelope["signer"], "widevine_test");
    let inner = STANDARD.decode(envelope["request"].as_str().unwrap()).unwrap();
    let (key, iv) = signing_key();
    let expected = clavis_keys::widevine_key_server::aes_signature(
        &hex::decode(key).unwrap().try_into().unwrap(),
        &hex::decode(iv).unwrap().try_into().unwrap(),
        &inner,
    );
    assert_eq!(envelope["signature"], STANDARD.encode(expected));
    let message: Value = serde_json::from_slice(&inner).unwrap();
    assert_eq!(message["payload"], STANDARD.encode(&challenge), "the CDM's challenge goes upstream untouched");
    assert_eq!(message["provider"], "widevine_test");
    assert_eq!(message["content_id"], STANDARD.encode(b"movie"));
    assert_eq!(message["allowed_track_types"], "SD_ONLY");
    let specs = message["content_key_specs"].as_array().unwrap();
    assert_eq!(specs.len(), 2);
    for (track, (kid_hex, key_hex)) in [("SD", &keys[0]), ("AUDIO", &keys[2])] {
        let key_id = STANDARD.encode(hex::decode(kid_hex).unwrap());
        let spec = specs.iter().find(|s| s["key_id"] == key_id.as_str()).expect("a spec per requested key");
        assert_eq!(spec["track_type"], track);
        assert_eq!(spec["key"], STANDARD.encode(hex::decode(key_hex).unwrap()));
        assert_eq!(spec["security_level"], 3);
        assert_eq!(spec["required_output_protection"], json!({"hdcp": "HDCP_V1", "disable_analog_output": true}));
    }
    let overrides = &message["policy_overrides"];
    assert_eq!(overrides["can_play"], true);
    assert_eq!(overrides["can_persist"], false);
    assert_eq!(overrides["can_renew"], true);
    assert_eq!(overrides["license_duration_seconds"], 600);
    assert_eq!(overrides["renewal_delay_seconds"], 60);
    assert_eq!(overrides["renewal_server_url"], app.url("/license/widevine"));

    // A KID the policy does not allow: refused before anything goes upstream.
    let before = upstream.count();
    assert_problem(widevine(&app, &token, &challenge_for(&[&keys[1].0], b"session-2")).await, 403, 5006).await;
    // An offline license under a streaming policy.
    let offline = license_request(&Request {
        pssh: Some(&widevine_pssh_data(&[kid(&keys[0].0)], None, ProtectionScheme::Cenc)),
        request_id: b"session-3",
        offline: true,
        ..Request::default()
    });
    assert_problem(widevine(&app, &token, &offline).await, 403, 5004).await;
    // Another tenant's token (for its own content of the same name) does not use this tenant's upstream.
    let other = app.create_tenant("Other").await;
    app.create_keys(&other, json!({"content_id": "movie"})).await;
    let foreign = app.token_for(&other, "viewer-1", "movie").await;
    let response = widevine(&app, &foreign, &challenge).await;
    assert_problem(response, 404, 5070).await;
    assert_eq!(upstream.count(), before, "refused requests never reach the upstream");

    // A renewal names no keys; the upstream renews under the policy given again.
    let renewal = license_request(&Request { pssh: None, request_id: b"session-1", ..Request::default() });
    assert_eq!(widevine(&app, &token, &renewal).await.status(), 200);
    let renewed: Value =
        serde_json::from_slice(&STANDARD.decode(upstream.last().json()["request"].as_str().unwrap()).unwrap()).unwrap();
    assert!(renewed.get("content_key_specs").is_none(), "{renewed}");
    assert_eq!(renewed["policy_overrides"]["license_duration_seconds"], 600);

    // A service certificate request is relayed without keys.
    assert_eq!(widevine(&app, &token, &[0x08, 0x04]).await.status(), 200);
    let certificate: Value =
        serde_json::from_slice(&STANDARD.decode(upstream.last().json()["request"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(certificate, json!({"payload": STANDARD.encode([0x08u8, 0x04]), "provider": "widevine_test"}));

    let log = app.license_log(&tenant).await;
    let issued = log.iter().rev().find(|r| r["outcome"] == "issued" && r["drm"] == "widevine").unwrap();
    assert_eq!(issued["user_id"], "viewer-1");
    assert!(issued["device_id"].as_str().unwrap().starts_with("widevine:"), "{issued}");
    assert!(log.iter().any(|r| r["error_code"] == 5006 && r["rule"] == "policy.allowed_tracks"));
}

#[tokio::test]
async fn widevine_upstream_failures_are_retried_within_the_budget_and_mapped_to_catalog_codes() {
    let app = spawn_allowing_private().await;
    let (tenant, keys) = tenant_with_content(&app, "Acme").await;
    let token = app.token_for(&tenant, "viewer-1", "movie").await;
    let challenge = || challenge_for(&[&keys[0].0], uuid::Uuid::new_v4().as_bytes());

    // Not configured yet.
    assert_problem(widevine(&app, &token, &challenge()).await, 404, 5070).await;
    // A challenge that is not one.
    let upstream = StandIn::start(WV_PATH, vec![wv_ok(b"ok")]).await;
    configure_widevine(&app, &tenant, &upstream.url, 1500, 2).await;
    assert_problem(widevine(&app, &token, b"not a challenge").await, 400, 5080).await;
    assert_eq!(upstream.count(), 0);

    // A 503 and an INTERNAL_ERROR are retried; the third attempt answers.
    upstream.script(vec![
        Answer::Reply(503, "text/plain", "busy".into()),
        Answer::Reply(200, "application/json", json!({"status": "INTERNAL_ERROR"}).to_string()),
        wv_ok(b"third time"),
    ]);
    let response = widevine(&app, &token, &challenge()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(&response.bytes().await.unwrap()[..], b"third time");
    assert_eq!(upstream.count(), 3);

    // A refusal is not retried and says the upstream's status.
    upstream.script(vec![Answer::Reply(200, "application/json", json!({"status": "SIGNATURE_FAILED"}).to_string())]);
    let before = upstream.count();
    let body = assert_problem(widevine(&app, &token, &challenge()).await, 502, 5076).await;
    assert!(body["detail"].as_str().unwrap().contains("SIGNATURE_FAILED"), "{body}");
    assert_eq!(upstream.count(), before + 1);
    // Garbage.
    upstream.script(vec![Answer::Reply(200, "text/html", "<html>".into())]);
    assert_problem(widevine(&app, &token, &challenge()).await, 502, 5077).await;
    // Too slow for the budget, retries included: 504 well within it.
    upstream.script(vec![Answer::Slow(Duration::from_secs(5), Box::new(wv_ok(b"late")))]);
    configure_widevine(&app, &tenant, &upstream.url, 400, 3).await;
    let started = std::time::Instant::now();
    assert_problem(widevine(&app, &token, &challenge()).await, 504, 5075).await;
    assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
    // Nobody listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    configure_widevine(&app, &tenant, &format!("http://127.0.0.1:{closed}/x"), 1000, 1).await;
    assert_problem(widevine(&app, &token, &challenge()).await, 502, 5074).await;

    let log = app.license_log(&tenant).await;
    for code in [5070, 5080, 5076, 5077, 5075, 5074] {
        assert!(log.iter().any(|r| r["error_code"] == code && r["drm"] == "widevine"), "{code} logged");
    }
    assert!(log.iter().filter(|r| r["error_code"] == 5076).all(|r| r["rule"] == "upstream"));

    // Settings are validated: the first ones need the signing key; later ones may keep it.
    let newcomer = app.create_tenant("Newcomer").await;
    let bad = app
        .put("/api/v1/integrations/widevine", &newcomer.api_key, &json!({"license_url": upstream.url, "provider": "x"}))
        .await;
    let body = assert_problem(bad, 422, 5071).await;
    assert_eq!(body["field"], "signing_key", "{body}");
    let kept = app
        .put("/api/v1/integrations/widevine", &tenant.api_key, &json!({"license_url": upstream.url, "provider": "x y"}))
        .await;
    assert_eq!(assert_problem(kept, 422, 5071).await["field"], "provider");
    // On an operator's default (strict) server no private target is allowed.
    let strict = TestApp::spawn().await;
    let strict_tenant = strict.create_tenant("Strict").await;
    let (key, iv) = signing_key();
    for (url, code) in [("https://127.0.0.1/cenc", 5072), ("http://license.example.com/cenc", 5071)] {
        let response = strict
            .put(
                "/api/v1/integrations/widevine",
                &strict_tenant.api_key,
                &json!({"license_url": url, "provider": "p", "signing_key": key, "signing_iv": iv}),
            )
            .await;
        assert_problem(response, 422, code).await;
    }
    // Settings are the tenant's own: another tenant sees none, and deleting them turns the proxy off.
    let other = app.create_tenant("Other").await;
    assert_problem(app.get("/api/v1/integrations/widevine", &other.api_key).await, 404, 5070).await;
    assert_eq!(app.delete("/api/v1/integrations/widevine", &tenant.api_key).await.status(), 204);
    assert_problem(widevine(&app, &token, &challenge()).await, 404, 5070).await;
}

/// Microsoft's example challenge, naming `kid` and carrying `custom_data`, with a fresh nonce and the client's
/// clock `clock_offset` seconds from now.
fn playready_challenge_at(kid_hex: &str, custom_data: Option<&str>, clock_offset: i64) -> String {
    let text = std::fs::read_to_string(vectors_dir().join("playready/microsoft-docs/license_challenge_example.xml"))
        .unwrap()
        .replace("ml:space", "xml:space");
    let guid = clavis_keys::playready::kid_to_guid_le(&kid(kid_hex));
    let nonce = STANDARD.encode(uuid::Uuid::new_v4().as_bytes());
    let mut text = text
        .replace("4Rplb+TbNES8tGkNFWTEHA==", &STANDARD.encode(guid))
        .replace("lojenZOMSu6K8OgsuUB7lA==", &nonce)
        .replace("1487020942", &(chrono::Utc::now().timestamp() + clock_offset).to_string());
    if let Some(custom) = custom_data {
        text = text.replace("<LicenseNonce>", &format!("<CustomData>{custom}</CustomData><LicenseNonce>"));
    }
    text
}

fn playready_challenge(kid_hex: &str, custom_data: Option<&str>) -> String {
    playready_challenge_at(kid_hex, custom_data, 0)
}

const PR_LICENSE: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><AcquireLicenseResponse xmlns=\"http://schemas.microsoft.com/DRM/2007/03/protocols\"><AcquireLicenseResult><Response><LicenseResponse><Licenses><License>stand-in</License></Licenses></LicenseResponse></Response></AcquireLicenseResult></AcquireLicenseResponse></soap:Body></soap:Envelope>";

async fn playready(app: &TestApp, token: Option<&str>, body: Vec<u8>) -> reqwest::Response {
    let mut request = app
        .http
        .post(app.url("/license/playready"))
        .header("content-type", "text/xml; charset=utf-8")
        .header("soapaction", "\"http://schemas.microsoft.com/DRM/2007/03/protocols/AcquireLicense\"");
    if let Some(token) = token {
        request = request.header("X-Clavis-Token", token);
    }
    request.body(body).send().await.unwrap()
}

/// A SOAP fault with catalog `code` in the header and the fault's detail.
async fn assert_fault(response: reqwest::Response, status: u16, code: u16) -> String {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(response.headers()["content-type"], "text/xml; charset=utf-8");
    assert_eq!(response.headers()["x-clavis-error"], code.to_string().as_str());
    let body = response.text().await.unwrap();
    assert!(body.contains("<soap:Fault>") && body.contains("<StatusCode>0x8004C6"), "{body}");
    assert!(body.contains(&format!("<CustomData>{code}</CustomData>")), "{body}");
    body
}

#[tokio::test]
async fn playready_challenges_are_forwarded_untouched_with_the_token_from_custom_data() {
    let app = spawn_allowing_private().await;
    let (tenant, keys) = tenant_with_content(&app, "Acme").await;
    let upstream =
        StandIn::start(PR_PATH, vec![Answer::Reply(200, "text/xml; charset=utf-8", PR_LICENSE.into())]).await;
    let response = app
        .put(
            "/api/v1/integrations/playready",
            &tenant.api_key,
            &json!({"license_url": upstream.url, "authorization": "Bearer proxy-secret", "timeout_ms": 1500}),
        )
        .await;
    let status = response.status();
    let view: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["authorization_set"], true);
    assert!(!view.to_string().contains("proxy-secret"));

    // The token travels in CustomData, as PlayReady apps put it.
    let token = app.token_for(&tenant, "viewer-1", "movie").await;
    let challenge = playready_challenge(&keys[0].0, Some(&token));
    let response = playready(&app, None, challenge.clone().into_bytes()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), PR_LICENSE);
    let sent = upstream.last();
    assert_eq!(sent.body, challenge.as_bytes(), "the challenge goes upstream untouched");
    assert_eq!(
        sent.header("soapaction"),
        Some("\"http://schemas.microsoft.com/DRM/2007/03/protocols/AcquireLicense\"")
    );
    assert_eq!(sent.header("content-type"), Some("text/xml; charset=utf-8"));
    assert_eq!(sent.header("authorization"), Some("Bearer proxy-secret"));

    // The EME wrapper (UTF-16LE, base64 challenge): the decoded SOAP goes upstream; the token in the header.
    let inner = playready_challenge(&keys[0].0, None);
    let wrapper = format!(
        "<PlayReadyKeyMessage type=\"LicenseAcquisition\"><LicenseAcquisition Version=\"1\"><Challenge encoding=\"base64encoded\">{}</Challenge></LicenseAcquisition></PlayReadyKeyMessage>",
        STANDARD.encode(inner.as_bytes())
    );
    let utf16: Vec<u8> = wrapper.encode_utf16().flat_map(u16::to_le_bytes).collect();
    assert_eq!(playready(&app, Some(&token), utf16).await.status(), 200);
    assert_eq!(upstream.last().body, inner.as_bytes());

    // The same message again (same nonce) is a replay; a client clock far off is refused.
    assert_fault(playready(&app, None, challenge.into_bytes()).await, 403, 5060).await;
    let late = playready_challenge_at(&keys[0].0, Some(&token), -7200);
    assert_fault(playready(&app, None, late.into_bytes()).await, 403, 5061).await;

    // Refusals are SOAP faults: another content's KID, no token, a bad challenge.
    let before = upstream.count();
    let other_keys = app.create_keys(&tenant, json!({"content_id": "trailer"})).await;
    let other_kid = other_keys["keys"][0]["kid"].as_str().unwrap();
    assert_fault(playready(&app, None, playready_challenge(other_kid, Some(&token)).into_bytes()).await, 403, 4008)
        .await;
    assert_fault(playready(&app, None, playready_challenge(&keys[0].0, None).into_bytes()).await, 401, 4001).await;
    assert_fault(playready(&app, Some(&token), b"<html/>".to_vec()).await, 400, 5081).await;
    assert_eq!(upstream.count(), before, "refused requests never reach the upstream");

    // The upstream's own fault is relayed as it came, under 502 and 5076.
    let fault = "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>domain required</faultstring><detail><Exception><StatusCode>0x8004C605</StatusCode></Exception></detail></soap:Fault></soap:Body></soap:Envelope>";
    upstream.script(vec![Answer::Reply(500, "text/xml; charset=utf-8", fault.into())]);
    let response = playready(&app, Some(&token), playready_challenge(&keys[0].0, None).into_bytes()).await;
    assert_eq!(response.status(), 502);
    assert_eq!(response.headers()["x-clavis-error"], "5076");
    assert_eq!(response.text().await.unwrap(), fault);
    // An answer that is not a license.
    upstream.script(vec![Answer::Reply(200, "text/plain", "hello".into())]);
    assert_fault(playready(&app, Some(&token), playready_challenge(&keys[0].0, None).into_bytes()).await, 502, 5077)
        .await;

    let log = app.license_log(&tenant).await;
    assert!(log.iter().any(|r| r["drm"] == "playready" && r["outcome"] == "issued" && r["user_id"] == "viewer-1"));
    // (The request without a token names no tenant, so it is only counted in the metrics.)
    for code in [5060, 5061, 4008, 5081, 5076, 5077] {
        assert!(log.iter().any(|r| r["drm"] == "playready" && r["error_code"] == code), "{code} logged");
    }
}

#[tokio::test]
async fn pallycons_license_url_serves_each_drm_by_its_token_or_its_body() {
    use clavis_tokens::foreign::pallycon::{PallyconDrmType, PallyconSecrets, encode_token};
    let app = spawn_allowing_private().await;
    let (tenant, keys) = tenant_with_content(&app, "Acme").await;
    let upstream = StandIn::start(WV_PATH, vec![wv_ok(b"widevine via the alias")]).await;
    configure_widevine(&app, &tenant, &upstream.url, 2000, 0).await;
    let (site_key, access_key) = ("lU5D8s3PWoLls3PWFWkClULlFWk5D8oC", "LT2FVJDp2Xr018zf4Di6lzvNOv3DKP20");
    let body = json!({"site_id": "TUTO", "site_key": site_key, "access_key": access_key});
    assert_eq!(app.put("/api/v1/integrations/pallycon", &tenant.api_key, &body).await.status(), 200);
    let secrets = PallyconSecrets::new(site_key, access_key).unwrap();
    let policy = json!({"policy_version": 2}).to_string();
    let pallycon =
        encode_token(&secrets, PallyconDrmType::Widevine, "TUTO", "u1", "movie", &policy, chrono::Utc::now(), None);

    // The token says Widevine: the challenge goes to the Widevine upstream.
    let response = app
        .http
        .post(app.url("/ri/licenseManager.do"))
        .header("pallycon-customdata-v2", &pallycon)
        .body(challenge_for(&[&keys[0].0], b"alias"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(&response.bytes().await.unwrap()[..], b"widevine via the alias");
    assert_eq!(upstream.count(), 1);

    // A native token and a ClearKey body: a ClearKey license.
    let token = app.token_for(&tenant, "u1", "movie").await;
    let response = app
        .http
        .post(app.url("/ri/licenseManager.do"))
        .header("X-Clavis-Token", &token)
        .body(json!({"kids": [crate::kit::b64url(&hex::decode(&keys[0].0).unwrap())], "type": "temporary"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let license: Value = response.json().await.unwrap();
    assert_eq!(license["keys"][0]["k"], crate::kit::b64url(&hex::decode(&keys[0].1).unwrap()));
    // A SOAP body goes to PlayReady (not configured here: its SOAP fault says so).
    let response = app
        .http
        .post(app.url("/ri/licenseManager.do"))
        .header("X-Clavis-Token", &token)
        .body(playready_challenge(&keys[0].0, None))
        .send()
        .await
        .unwrap();
    assert_fault(response, 404, 5070).await;
    let log = app.license_log(&tenant).await;
    let drms: Vec<&str> = log.iter().map(|r| r["drm"].as_str().unwrap()).collect();
    assert_eq!(drms, ["playready", "clearkey", "widevine"]);
}
