//! `POST /license/clearkey`: issuance, every refusal, CORS, and the license log.

use std::time::Duration;

use base64::Engine;
use clavis_tenant::TenantStatus;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::kit::{TestApp, TestTenant, assert_problem, b64url, read_vector_json};

const KID: &str = "2f05477fc24bb4faefd86517156daffc";
const KEY: &str = "b50d1b25559be9bd0a3cbe8ab59232fc";

async fn tenant_with_w3c_key(app: &TestApp) -> TestTenant {
    let tenant = app.create_tenant("Acme").await;
    app.create_keys(&tenant, json!({"content_id": "movie-1", "keys": [{"kid": KID, "key": KEY}]})).await;
    tenant
}

fn forge(claims: &Value, kid: Option<&str>, secret: &[u8]) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

#[tokio::test]
async fn the_w3c_example_license_is_issued_exactly() {
    let vector = read_vector_json("clearkey/clearkey_examples.json");
    let examples = &vector["w3c_spec_examples"];
    let app = TestApp::spawn().await;
    let tenant = tenant_with_w3c_key(&app).await;
    let token = app.token_for(&tenant, "viewer-1", "movie-1").await;
    let request = json!({"kids": [examples["license_request"]["kids"][0]], "type": "temporary"});
    let response = app
        .http
        .post(app.url("/license/clearkey"))
        .header("X-Clavis-Token", &token)
        .body(request.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers().get("content-type").unwrap(), "application/json");
    let license: Value = response.json().await.unwrap();
    assert_eq!(license, examples["license_response"]);

    // The token may also come as a query parameter.
    let by_query = app
        .http
        .post(app.url("/license/clearkey"))
        .query(&[("token", &token)])
        .body(request.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(by_query.status(), 200);

    let log = app.license_log(&tenant).await;
    assert_eq!(log.len(), 2);
    let row = &log[0];
    assert_eq!(row["outcome"], "issued");
    assert_eq!(row["rule"], "ok");
    assert_eq!(row["drm"], "clearkey");
    assert_eq!(row["user_id"], "viewer-1");
    assert_eq!(row["content_id"], "movie-1");
    assert_eq!(row["kids"], json!([KID]));
    assert!(row["error_code"].is_null());
    assert!(row["latency_us"].as_i64().unwrap() > 0);
    assert!(row["request_id"].as_str().is_some_and(|id| id.len() == 36));
}

#[tokio::test]
async fn only_the_requested_kids_are_answered() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let keys = app.create_keys(&tenant, json!({"content_id": "multi", "tracks": ["SD", "HD", "AUDIO"]})).await;
    let kid_of = |i: usize| keys["keys"][i]["kid"].as_str().unwrap().to_owned();
    let token = app.token_for(&tenant, "u", "multi").await;
    let response = app.clearkey(&token, &[&kid_of(2), &kid_of(0)]).await;
    assert_eq!(response.status(), 200);
    let license: Value = response.json().await.unwrap();
    let answered: Vec<String> = license["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            hex::encode(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(k["kid"].as_str().unwrap()).unwrap())
        })
        .collect();
    assert_eq!(answered, vec![kid_of(2), kid_of(0)], "exactly the requested KIDs, in request order");
    let audio_key = license["keys"][0]["k"].as_str().unwrap();
    assert!(
        !audio_key.contains('=') && !audio_key.contains('+') && !audio_key.contains('/'),
        "base64url without padding"
    );
    assert_eq!(
        hex::encode(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(audio_key).unwrap()),
        keys["keys"][2]["key"].as_str().unwrap()
    );
}

#[tokio::test]
async fn refusals_carry_catalog_codes_and_are_logged() {
    let app = TestApp::spawn().await;
    let tenant = tenant_with_w3c_key(&app).await;
    let other = app.create_keys(&tenant, json!({"content_id": "movie-2"})).await;
    let other_kid = other["keys"][0]["kid"].as_str().unwrap().to_owned();
    let token = app.token_for(&tenant, "u1", "movie-1").await;

    // No token, garbage token, tampered token, unknown key id, unknown issuer.
    assert_problem(app.http.post(app.url("/license/clearkey")).body("{}").send().await.unwrap(), 401, 4001).await;
    assert_problem(app.clearkey("not-a-jwt", &[KID]).await, 401, 4002).await;
    // Flip a character in the middle of the signature: the last one also carries padding bits, and changing those can
    // make the base64url non-canonical (a malformed token, 4002) instead of a wrong signature.
    let mut tampered: Vec<char> = token.chars().collect();
    let middle = tampered.len() - 10;
    tampered[middle] = if tampered[middle] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    assert_problem(app.clearkey(&tampered, &[KID]).await, 401, 4003).await;
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"iss": tenant.site_id, "sub": "u1", "cid": "movie-1", "iat": now, "exp": now + 60});
    assert_problem(app.clearkey(&forge(&claims, Some("hs-unknown"), b"guessed secret"), &[KID]).await, 401, 4004).await;
    assert_problem(app.clearkey(&forge(&claims, None, b"guessed secret"), &[KID]).await, 401, 4003).await;
    let stranger = json!({"iss": "ZZZZ", "sub": "u1", "cid": "movie-1", "iat": now, "exp": now + 60});
    assert_problem(app.clearkey(&forge(&stranger, None, b"x"), &[KID]).await, 401, 4007).await;

    // Token for another content; KID of no content; content without keys.
    let body = assert_problem(app.clearkey(&token, &[&other_kid]).await, 403, 4008).await;
    assert!(body["detail"].as_str().unwrap().contains("movie-2"), "{body}");
    assert_problem(app.clearkey(&token, &["00000000000000000000000000000001"]).await, 403, 5002).await;
    assert_problem(app.clearkey(&token, &[KID, &other_kid]).await, 403, 4008).await;
    let keyless = app.token_for(&tenant, "u1", "no-such-content").await;
    assert_problem(app.clearkey(&keyless, &[KID]).await, 404, 5005).await;

    // Malformed and oversized requests.
    for body in ["", "{\"kids\": 5}", "{\"kids\": [\"!!\"]}", "{\"kids\": []}"] {
        let response = app
            .http
            .post(app.url("/license/clearkey"))
            .header("X-Clavis-Token", &token)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_problem(response, 400, 5001).await;
    }
    let huge = "x".repeat(64 * 1024);
    let response =
        app.http.post(app.url("/license/clearkey")).header("X-Clavis-Token", &token).body(huge).send().await.unwrap();
    assert_problem(response, 413, 1012).await;

    // Persistent sessions need a persistent policy; DRM-limited tokens only work for their DRM.
    let persistent = json!({"kids": [b64url(&hex::decode(KID).unwrap())], "type": "persistent-license"}).to_string();
    let response = app
        .http
        .post(app.url("/license/clearkey"))
        .header("X-Clavis-Token", &token)
        .body(persistent)
        .send()
        .await
        .unwrap();
    assert_problem(response, 403, 5004).await;
    let widevine_only =
        app.mint_token(&tenant, json!({"user_id": "u1", "content_id": "movie-1", "drm": "widevine"})).await;
    assert_problem(app.clearkey(&widevine_only, &[KID]).await, 403, 4009).await;
    let clearkey_only =
        app.mint_token(&tenant, json!({"user_id": "u1", "content_id": "movie-1", "drm": "clearkey"})).await;
    assert_eq!(app.clearkey(&clearkey_only, &[KID]).await.status(), 200);

    // Every request that named this tenant is in its log with the rule that decided it.
    let log = app.license_log(&tenant).await;
    let denied: Vec<(i64, String)> = log
        .iter()
        .filter(|r| r["outcome"] == "denied")
        .map(|r| (r["error_code"].as_i64().unwrap(), r["rule"].as_str().unwrap().to_owned()))
        .collect();
    for expected in [
        (4003, "token"),
        (4004, "token"),
        (4008, "kids"),
        (5002, "kids"),
        (5005, "content"),
        (5001, "request"),
        (5004, "persistence"),
        (4009, "drm"),
    ] {
        assert!(
            denied.iter().any(|(code, rule)| *code == expected.0 && rule == expected.1),
            "{expected:?} not in {denied:?}"
        );
    }
    // Requests with no token, or an issuer that is not this tenant, are not attributed to it.
    assert!(!denied.iter().any(|(code, _)| *code == 4001 || *code == 4007));
    assert_eq!(log.iter().filter(|r| r["outcome"] == "issued").count(), 1);
}

#[tokio::test]
async fn expired_tokens_are_refused_after_the_skew_window() {
    let app = TestApp::spawn().await;
    let tenant = tenant_with_w3c_key(&app).await;
    let set_skew = |skew: u32| {
        app.http
            .patch(app.url("/api/v1/tenant/settings"))
            .bearer_auth(&tenant.api_key)
            .json(&json!({"clock_skew_seconds": skew}))
            .send()
    };
    assert_eq!(set_skew(0).await.unwrap().status(), 200);
    let token = app.mint_token(&tenant, json!({"user_id": "u", "content_id": "movie-1", "ttl_seconds": 1})).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_problem(app.clearkey(&token, &[KID]).await, 401, 4005).await;
    // With a wider clock-skew window the same token is still accepted.
    assert_eq!(set_skew(30).await.unwrap().status(), 200);
    assert_eq!(app.clearkey(&token, &[KID]).await.status(), 200);
}

#[tokio::test]
async fn cors_follows_the_tenants_allowed_origins() {
    let app = TestApp::spawn().await;
    let tenant = tenant_with_w3c_key(&app).await;
    let token = app.token_for(&tenant, "u", "movie-1").await;
    let request = json!({"kids": [b64url(&hex::decode(KID).unwrap())]}).to_string();
    let post_from = |origin: &'static str| {
        app.http
            .post(app.url("/license/clearkey"))
            .header("Origin", origin)
            .header("X-Clavis-Token", &token)
            .body(request.clone())
            .send()
    };

    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/license/clearkey"))
        .header("Origin", "https://player.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "x-clavis-token")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "https://player.example");
    assert!(preflight.headers()["access-control-allow-headers"].to_str().unwrap().contains("x-clavis-token"));
    assert!(preflight.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));

    // A new tenant accepts any origin, and players can read the error code of a refusal.
    let any = post_from("https://anywhere.example").await.unwrap();
    assert_eq!(any.status(), 200);
    assert_eq!(any.headers()["access-control-allow-origin"], "https://anywhere.example");
    let refused = app
        .http
        .post(app.url("/license/clearkey"))
        .header("Origin", "https://anywhere.example")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.headers()["access-control-allow-origin"], "https://anywhere.example");
    assert!(refused.headers()["access-control-expose-headers"].to_str().unwrap().contains("x-clavis-error"));

    let set = app
        .http
        .patch(app.url("/api/v1/tenant/settings"))
        .bearer_auth(&tenant.api_key)
        .json(&json!({"allowed_origins": ["https://player.example"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let allowed = post_from("https://player.example").await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://player.example");
    let foreign = post_from("https://evil.example").await.unwrap();
    assert!(
        foreign.headers().get("access-control-allow-origin").is_none(),
        "the browser must not hand the answer to that page"
    );
    assert_problem(foreign, 403, 5003).await;
    // Native players and servers send no Origin and are not subject to CORS.
    assert_eq!(app.clearkey(&token, &[KID]).await.status(), 200);
}

#[tokio::test]
async fn a_suspended_tenant_gets_no_licenses() {
    let app = TestApp::spawn().await;
    let tenant = tenant_with_w3c_key(&app).await;
    let token = app.token_for(&tenant, "u", "movie-1").await;
    assert_eq!(app.clearkey(&token, &[KID]).await.status(), 200);
    app.directory.set_status(tenant.tenant_id.parse().unwrap(), TenantStatus::Suspended).await.unwrap();
    assert_problem(app.clearkey(&token, &[KID]).await, 403, 2003).await;
    assert_problem(app.get("/api/v1/tenant", &tenant.api_key).await, 403, 2003).await;
    app.directory.set_status(tenant.tenant_id.parse().unwrap(), TenantStatus::Active).await.unwrap();
    assert_eq!(app.clearkey(&token, &[KID]).await.status(), 200);
}
