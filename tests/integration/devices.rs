//! Devices and out-of-band licenses (issue 7) at the API level: registration and the device limit, bundles (decrypted
//! and verified here with josekit as a device would, from the published JWKS), resets, the signed revocation list,
//! and every refusal: another device's bundle, an expired bundle, a tampered JWS, a device over the user's limit,
//! another tenant's device id.

use std::time::Duration;

use josekit::jwe::ECDH_ES_A256KW;
use josekit::jwk::Jwk;
use josekit::jwk::alg::ec::{EcCurve, EcKeyPair};
use josekit::jws::{ES256, EdDSA, JwsHeader};
use serde_json::{Value, json};

use crate::kit::{TestApp, TestTenant, assert_problem, b64url};

const KID: &str = "2f05477fc24bb4faefd86517156daffc";
const KEY: &str = "b50d1b25559be9bd0a3cbe8ab59232fc";

/// A device as the reference client is: a P-256 key pair and a random id.
pub struct Device {
    pub id: String,
    pub pair: EcKeyPair,
}

impl Device {
    pub fn new() -> Device {
        Device { id: uuid::Uuid::new_v4().to_string(), pair: EcKeyPair::generate(EcCurve::P256).unwrap() }
    }

    pub fn public_jwk(&self) -> Value {
        use josekit::jwk::KeyPair;
        serde_json::to_value(self.pair.to_jwk_public_key()).unwrap()
    }

    pub fn decrypt(&self, jwe: &str) -> String {
        use josekit::jwk::KeyPair;
        let decrypter = ECDH_ES_A256KW.decrypter_from_jwk(&self.pair.to_jwk_private_key()).unwrap();
        let (jws, header) = josekit::jwe::deserialize_compact(jwe, &decrypter).unwrap();
        assert_eq!(header.content_encryption(), Some("A256GCM"));
        String::from_utf8(jws).unwrap()
    }

    /// A reset proof signed with the device key.
    pub fn reset_proof(&self, iat: i64) -> String {
        use josekit::jwk::KeyPair;
        let signer = ES256.signer_from_jwk(&self.pair.to_jwk_private_key()).unwrap();
        let payload = json!({"device_id": self.id, "action": "reset", "iat": iat}).to_string();
        josekit::jws::serialize_compact(payload.as_bytes(), &JwsHeader::new(), &signer).unwrap()
    }
}

async fn tenant_with_content(app: &TestApp) -> TestTenant {
    let tenant = app.create_tenant("Acme").await;
    app.create_keys(&tenant, json!({"content_id": "movie-1", "keys": [{"kid": KID, "key": KEY}]})).await;
    tenant
}

pub async fn register(app: &TestApp, token: &str, device: &Device) -> reqwest::Response {
    app.http
        .post(app.url("/license/devices"))
        .header("X-Clavis-Token", token)
        .json(&json!({"device_id": device.id, "public_key": device.public_jwk()}))
        .send()
        .await
        .unwrap()
}

async fn bundle(app: &TestApp, tenant: &TestTenant, device: &Device, policy: Option<Value>) -> reqwest::Response {
    let mut body = json!({"content_ids": ["movie-1"]});
    if let Some(policy) = policy {
        body["policy"] = policy;
    }
    app.post(&format!("/api/v1/devices/{}/bundles", device.id), &tenant.api_key, &body).await
}

async fn jwe_for(app: &TestApp, tenant: &TestTenant, device: &Device) -> String {
    let response = bundle(app, tenant, device, None).await;
    assert_eq!(response.status(), 200);
    let bundles: Value = response.json().await.unwrap();
    bundles[0]["jwe"].as_str().unwrap().to_owned()
}

async fn published_key(app: &TestApp, tenant: &TestTenant) -> Jwk {
    let jwks: Value = app
        .http
        .get(app.url(&format!("/license/devices/keys/{}", tenant.site_id)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["alg"], "EdDSA");
    assert_eq!(keys[0]["crv"], "Ed25519");
    assert!(keys[0].get("d").is_none(), "only the public key is published");
    Jwk::from_map(keys[0].as_object().unwrap().clone()).unwrap()
}

fn verify(key: &Jwk, jws: &str) -> Value {
    let verifier = EdDSA.verifier_from_jwk(key).unwrap();
    let (payload, header) = josekit::jws::deserialize_compact(jws, &verifier).unwrap();
    assert_eq!(header.algorithm(), Some("EdDSA"));
    serde_json::from_slice(&payload).unwrap()
}

async fn check(app: &TestApp, device_id: &str, jws: &str) -> reqwest::Response {
    app.http
        .post(app.url("/license/devices/bundles/check"))
        .json(&json!({"device_id": device_id, "jws": jws}))
        .send()
        .await
        .unwrap()
}

async fn revocations(app: &TestApp, tenant: &TestTenant, key: &Jwk) -> Value {
    let response =
        app.http.get(app.url(&format!("/license/devices/revocations/{}", tenant.site_id))).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers().get("content-type").unwrap(), "application/jose");
    verify(key, &response.text().await.unwrap())
}

#[tokio::test]
async fn a_registered_device_gets_a_bundle_it_can_decrypt_and_verify() {
    let app = TestApp::spawn().await;
    let tenant = tenant_with_content(&app).await;
    let token = app.token_for(&tenant, "viewer-1", "movie-1").await;
    let device = Device::new();

    let created = register(&app, &token, &device).await;
    assert_eq!(created.status(), 201);
    let view: Value = created.json().await.unwrap();
    assert_eq!(view["user_id"], "viewer-1");
    assert_eq!(view["generation"], 1);
    assert_eq!(view["state"], "active");
    // Registering the same key again changes nothing.
    let again = register(&app, &token, &device).await;
    assert_eq!(again.status(), 200);
    // The same id with another key is refused until a reset.
    let impostor = Device { id: device.id.clone(), pair: EcKeyPair::generate(EcCurve::P256).unwrap() };
    assert_problem(register(&app, &token, &impostor).await, 409, 5043).await;

    let listed: Value = app.get("/api/v1/devices?user_id=viewer-1", &tenant.api_key).await.json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let renamed = app
        .http
        .patch(app.url(&format!("/api/v1/devices/{}", device.id)))
        .bearer_auth(&tenant.api_key)
        .json(&json!({"name": "Living room TV"}))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), 200);
    assert_eq!(renamed.json::<Value>().await.unwrap()["name"], "Living room TV");

    let response = bundle(&app, &tenant, &device, Some(json!({"license_duration_seconds": 3600}))).await;
    assert_eq!(response.status(), 200);
    let bundles: Value = response.json().await.unwrap();
    let jwe = bundles[0]["jwe"].as_str().unwrap();
    assert_eq!(jwe.split('.').count(), 5, "a compact JWE");
    let jws = device.decrypt(jwe);
    let claims = verify(&published_key(&app, &tenant).await, &jws);
    assert_eq!(claims["sub"], device.id);
    assert_eq!(claims["iss"], tenant.site_id);
    assert_eq!(claims["generation"], 1);
    assert_eq!(claims["content_id"], "movie-1");
    let kid = b64url(&hex::decode(KID).unwrap());
    let key = b64url(&hex::decode(KEY).unwrap());
    assert_eq!(claims["license"]["keys"], json!([{"kty": "oct", "k": key, "kid": kid}]));
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 3600, "the request's policy narrows the bundle's lifetime");

    // Clavis serves the same bytes at the bundle's URL, to anyone (only the device can open them).
    let url = bundles[0]["url"].as_str().unwrap();
    let served = app.http.get(url).send().await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.text().await.unwrap(), jwe);

    let checked = check(&app, &device.id, &jws).await;
    assert_eq!(checked.status(), 200);
    assert_eq!(checked.json::<Value>().await.unwrap()["valid"], true);

    // A content id that is not URL-safe is one percent-encoded segment of its bundle's URL.
    app.create_keys(&tenant, json!({"content_id": "season 1/ep+2"})).await;
    let path = format!("/api/v1/devices/{}/bundles", device.id);
    let response = app.post(&path, &tenant.api_key, &json!({"content_ids": ["season 1/ep+2"]})).await;
    let bundles: Value = response.json().await.unwrap();
    let url = bundles[0]["url"].as_str().unwrap();
    assert!(url.ends_with("/bundles/season%201%2Fep%2B2"), "{url}");
    let served = app.http.get(url).send().await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.text().await.unwrap(), bundles[0]["jwe"].as_str().unwrap());
}

#[tokio::test]
async fn registrations_over_the_users_device_limit_are_refused() {
    let app = TestApp::spawn().await;
    let tenant = tenant_with_content(&app).await;
    let token =
        app.mint_token(&tenant, json!({"user_id": "u", "content_id": "movie-1", "policy": {"max_devices": 2}})).await;
    let (first, second, third) = (Device::new(), Device::new(), Device::new());
    assert_eq!(register(&app, &token, &first).await.status(), 201);
    assert_eq!(register(&app, &token, &second).await.status(), 201);
    let refused = assert_problem(register(&app, &token, &third).await, 403, 5041).await;
    assert!(refused["detail"].as_str().unwrap().contains("allows 2"), "{refused}");
    // Twenty first registrations at once for one user with room for two: exactly two get in.
    let racer = app
        .mint_token(&tenant, json!({"user_id": "racer", "content_id": "movie-1", "policy": {"max_devices": 2}}))
        .await;
    let devices: Vec<Device> = (0..20).map(|_| Device::new()).collect();
    let statuses = futures_util::future::join_all(devices.iter().map(|d| register(&app, &racer, d))).await;
    let created = statuses.iter().filter(|r| r.status() == 201).count();
    let refused = statuses.iter().filter(|r| r.status() == 403).count();
    assert_eq!((created, refused), (2, 18), "{:?}", statuses.iter().map(|r| r.status()).collect::<Vec<_>>());
    // Another user of the same tenant has their own count.
    let other =
        app.mint_token(&tenant, json!({"user_id": "v", "content_id": "movie-1", "policy": {"max_devices": 2}})).await;
    assert_eq!(register(&app, &other, &third).await.status(), 201);
    // Removing a device frees a place.
    assert_eq!(app.delete(&format!("/api/v1/devices/{}", first.id), &tenant.api_key).await.status(), 204);
    assert_eq!(register(&app, &token, &Device::new()).await.status(), 201);
    // A bad key or id is refused, and no token is no registration.
    let bad = app
        .http
        .post(app.url("/license/devices"))
        .header("X-Clavis-Token", &token)
        .json(&json!({"device_id": "x", "public_key": {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}}))
        .send()
        .await
        .unwrap();
    assert_problem(bad, 422, 5040).await;
    let anonymous = app
        .http
        .post(app.url("/license/devices"))
        .json(&json!({"device_id": "y", "public_key": Device::new().public_jwk()}))
        .send()
        .await
        .unwrap();
    assert_problem(anonymous, 401, 4001).await;
}

/// A device-registration token the tenant signs itself with an HS256 token key (no content, `aud` set).
fn registration_token(tenant: &TestTenant, kid: &str, secret_hex: &str, user: &str, policy: Option<Value>) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "iss": tenant.site_id, "sub": user, "aud": "clavis-device-registration", "iat": now, "exp": now + 600,
    });
    if let Some(policy) = policy {
        claims["policy"] = policy;
    }
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    let key = jsonwebtoken::EncodingKey::from_secret(&hex::decode(secret_hex).unwrap());
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

#[tokio::test]
async fn a_tenant_signed_registration_token_registers_within_its_device_limit_and_is_no_license() {
    let app = TestApp::spawn().await;
    let tenant = tenant_with_content(&app).await;
    let made = app.post("/api/v1/token-keys", &tenant.api_key, &json!({"algorithm": "HS256"})).await;
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.unwrap();
    let (kid, secret) = (made["kid"].as_str().unwrap(), made["secret_hex"].as_str().unwrap());
    let token = registration_token(&tenant, kid, secret, "reg-user", Some(json!({"max_devices": 1})));

    let device = Device::new();
    let created = register(&app, &token, &device).await;
    assert_eq!(created.status(), 201);
    assert_eq!(created.json::<Value>().await.unwrap()["user_id"], "reg-user");
    // The token's policy caps the user at one device.
    assert_problem(register(&app, &token, &Device::new()).await, 403, 5041).await;
    // The device gets bundles like any other.
    let jws = device.decrypt(&jwe_for(&app, &tenant, &device).await);
    assert_eq!(verify(&published_key(&app, &tenant).await, &jws)["sub"], device.id);

    // A registration token is not a license token.
    let kids = [b64url(&hex::decode(KID).unwrap())];
    let license = app
        .http
        .post(app.url("/license/clearkey"))
        .header("X-Clavis-Token", &token)
        .body(json!({"kids": kids, "type": "temporary"}).to_string())
        .send()
        .await
        .unwrap();
    assert_problem(license, 401, 4002).await;
    // Signed with another secret, or expired: refused with the token catalog codes.
    let forged = registration_token(&tenant, kid, &"00".repeat(32), "reg-user", None);
    assert_problem(register(&app, &forged, &Device::new()).await, 401, 4003).await;
    let now = chrono::Utc::now().timestamp();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    let expired = jsonwebtoken::encode(
        &header,
        &json!({"iss": tenant.site_id, "sub": "u", "aud": "clavis-device-registration", "iat": now - 7200, "exp": now - 3600}),
        &jsonwebtoken::EncodingKey::from_secret(&hex::decode(secret).unwrap()),
    )
    .unwrap();
    assert_problem(register(&app, &expired, &Device::new()).await, 401, 4005).await;
    // Attacker bytes in the body are refused with a catalog code, not a panic.
    let fresh = registration_token(&tenant, kid, secret, "other-user", None);
    for body in [
        "{",
        "[]",
        r#"{"device_id": 7, "public_key": {}}"#,
        r#"{"device_id": "d", "public_key": "x"}"#,
        r#"{"device_id": "../x", "public_key": {"kty": "EC"}}"#,
        r#"{"device_id": "d", "public_key": {"kty": "EC", "crv": "P-256", "x": "%%", "y": 1}}"#,
    ] {
        let response = app
            .http
            .post(app.url("/license/devices"))
            .header("X-Clavis-Token", &fresh)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_problem(response, 422, 5040).await;
    }
}

/// The console's devices page over plain HTTP, signed in: the list, rename, reset and remove, each needing the
/// page's form token, and only this tenant's devices.
#[tokio::test]
async fn the_console_lists_renames_resets_and_removes_devices() {
    use crate::console::{Visitor, create_key, signed_in, signed_up};

    let app = TestApp::spawn().await;
    let email = signed_up(&app, "Device Films").await;
    let mut owner = signed_in(&app, &email).await;
    let (_, api_key) = create_key(&mut owner, "backend").await;
    let info: Value = app.get("/api/v1/tenant", &api_key).await.json().await.unwrap();
    let tenant = TestTenant {
        tenant_id: info["id"].as_str().unwrap_or_default().to_owned(),
        site_id: info["site_id"].as_str().unwrap().to_owned(),
        api_key,
    };
    app.create_keys(&tenant, json!({"content_id": "movie-1", "keys": [{"kid": KID, "key": KEY}]})).await;
    let token = app.token_for(&tenant, "viewer-9", "movie-1").await;
    let (device, other) = (Device::new(), Device::new());
    assert_eq!(register(&app, &token, &device).await.status(), 201);
    assert_eq!(register(&app, &token, &other).await.status(), 201);
    // Another tenant's device never shows.
    let rival = tenant_with_content(&app).await;
    let rival_device = Device::new();
    register(&app, &app.token_for(&rival, "viewer-9", "movie-1").await, &rival_device).await;

    let page = owner.get("/console/devices").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("href=\"/console/devices\""), "the nav links the page");
    assert!(page.body.contains(&format!("id=\"device-{}\"", device.id)));
    assert!(page.body.contains(&format!("id=\"device-{}\"", other.id)));
    assert!(!page.body.contains(&rival_device.id));
    let filtered = owner.get("/console/devices?user_id=nobody").await;
    assert!(!filtered.body.contains(&device.id) && filtered.body.contains("No devices"), "{}", filtered.body);

    let rename = format!("/console/devices/{}/rename", device.id);
    let renamed = owner.submit("/console/devices", &rename, &[("name", "Kitchen <tablet>")]).await;
    assert_eq!((renamed.status, renamed.location.as_deref()), (303, Some("/console/devices?done=renamed")));
    let listed: Value = app.get("/api/v1/devices", &tenant.api_key).await.json().await.unwrap();
    let named = listed.as_array().unwrap().iter().find(|d| d["device_id"] == device.id.as_str()).unwrap();
    assert_eq!(named["name"], "Kitchen <tablet>");
    let page = owner.get("/console/devices?done=renamed").await;
    assert!(page.body.contains("Kitchen &#60;tablet&#62;") && page.body.contains("Device renamed."), "{}", page.body);

    // Reset from the console: the device's bundle is refused, and the revocation list names it.
    let jws = device.decrypt(&jwe_for(&app, &tenant, &device).await);
    let reset = owner.submit("/console/devices", &format!("/console/devices/{}/reset", device.id), &[]).await;
    assert_eq!(reset.status, 303);
    assert_problem(check(&app, &device.id, &jws).await, 403, 5046).await;
    let list = revocations(&app, &tenant, &published_key(&app, &tenant).await).await;
    assert_eq!(list["revoked"], json!([{"device_id": device.id, "generation": 1}]));

    let removed = owner.submit("/console/devices", &format!("/console/devices/{}/remove", other.id), &[]).await;
    assert_eq!(removed.status, 303);
    let listed: Value = app.get("/api/v1/devices", &tenant.api_key).await.json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["state"], "reset");

    // Without the form token nothing changes; another tenant's device is not found; signed out is the sign-in page.
    let forged = owner.post(&rename, &[("name", "x")]).await;
    assert_eq!((forged.status, forged.code.as_deref()), (403, Some("2021")));
    let foreign = owner.submit("/console/devices", &format!("/console/devices/{}/remove", rival_device.id), &[]).await;
    assert_eq!((foreign.status, foreign.code.as_deref()), (404, Some("5042")));
    assert_eq!(
        app.get("/api/v1/devices", &rival.api_key).await.json::<Value>().await.unwrap().as_array().unwrap().len(),
        1
    );
    assert_eq!(Visitor::new(&app).get("/console/devices").await.location.as_deref(), Some("/login"));
}

#[tokio::test]
async fn foreign_expired_and_tampered_bundles_are_refused() {
    let app = TestApp::spawn().await;
    let tenant = tenant_with_content(&app).await;
    let token = app.token_for(&tenant, "u", "movie-1").await;
    let (device, other) = (Device::new(), Device::new());
    register(&app, &token, &device).await;
    register(&app, &token, &other).await;
    let jws = device.decrypt(&jwe_for(&app, &tenant, &device).await);

    // Another device presenting this device's bundle.
    assert_problem(check(&app, &other.id, &jws).await, 403, 5047).await;
    // A tampered payload (another content id) under the original signature.
    let parts: Vec<&str> = jws.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&base64_decode(parts[1])).unwrap();
    claims["content_id"] = json!("movie-2");
    let tampered = format!("{}.{}.{}", parts[0], b64url(claims.to_string().as_bytes()), parts[2]);
    assert_problem(check(&app, &device.id, &tampered).await, 400, 5044).await;
    assert_problem(check(&app, &device.id, "not.a.jws").await, 400, 5044).await;
    // The other device cannot even open this device's JWE.
    let jwe = jwe_for(&app, &tenant, &device).await;
    use josekit::jwk::KeyPair;
    let decrypter = ECDH_ES_A256KW.decrypter_from_jwk(&other.pair.to_jwk_private_key()).unwrap();
    assert!(josekit::jwe::deserialize_compact(&jwe, &decrypter).is_err());

    // An expired bundle: refused online and where Clavis serves it.
    let response = bundle(&app, &tenant, &device, Some(json!({"license_duration_seconds": 1}))).await;
    let bundles: Value = response.json().await.unwrap();
    let short = device.decrypt(bundles[0]["jwe"].as_str().unwrap());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_problem(check(&app, &device.id, &short).await, 403, 5045).await;
    assert_problem(app.http.get(bundles[0]["url"].as_str().unwrap()).send().await.unwrap(), 403, 5045).await;

    // Another tenant cannot see, rename, reset, remove or bundle this tenant's device.
    let rival = app.create_tenant("Rival").await;
    app.create_keys(&rival, json!({"content_id": "movie-1", "tracks": ["SD"]})).await;
    let listed: Value = app.get("/api/v1/devices", &rival.api_key).await.json().await.unwrap();
    assert_eq!(listed, json!([]));
    let path = format!("/api/v1/devices/{}", device.id);
    assert_problem(app.delete(&path, &rival.api_key).await, 404, 5042).await;
    assert_problem(app.post(&format!("{path}/reset"), &rival.api_key, &json!({})).await, 404, 5042).await;
    assert_problem(bundle(&app, &rival, &device, None).await, 404, 5042).await;
    let rename =
        app.http.patch(app.url(&path)).bearer_auth(&rival.api_key).json(&json!({"name": "x"})).send().await.unwrap();
    assert_problem(rename, 404, 5042).await;
    let foreign_url = format!("/license/devices/{}/{}/bundles/movie-1", rival.site_id, device.id);
    assert_problem(app.http.get(app.url(&foreign_url)).send().await.unwrap(), 404, 5042).await;
    // The device is untouched.
    assert_eq!(check(&app, &device.id, &jws).await.status(), 200);
}

fn base64_decode(part: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()
}

#[tokio::test]
async fn a_reset_revokes_the_old_key_and_the_new_key_gets_new_bundles() {
    let app = TestApp::spawn().await;
    let tenant = tenant_with_content(&app).await;
    let token = app.token_for(&tenant, "u", "movie-1").await;
    let device = Device::new();
    register(&app, &token, &device).await;
    let old_jwe = jwe_for(&app, &tenant, &device).await;
    let old_jws = device.decrypt(&old_jwe);
    let key = published_key(&app, &tenant).await;
    assert_eq!(revocations(&app, &tenant, &key).await["version"], 0);

    // A proof signed by another key, or too old, resets nothing.
    let reset_path = app.url(&format!("/license/devices/{}/{}/reset", tenant.site_id, device.id));
    let stranger = Device { id: device.id.clone(), pair: EcKeyPair::generate(EcCurve::P256).unwrap() };
    let now = chrono::Utc::now().timestamp();
    let forged = app.http.post(&reset_path).body(stranger.reset_proof(now)).send().await.unwrap();
    assert_problem(forged, 401, 5048).await;
    let stale = app.http.post(&reset_path).body(device.reset_proof(now - 3600)).send().await.unwrap();
    assert_problem(stale, 401, 5048).await;

    let reset = app.http.post(&reset_path).body(device.reset_proof(now)).send().await.unwrap();
    assert_eq!(reset.status(), 200);
    assert_eq!(reset.json::<Value>().await.unwrap()["state"], "reset");
    // The old bundle is refused wherever Clavis sees it, and listed for clients offline.
    assert_problem(check(&app, &device.id, &old_jws).await, 403, 5046).await;
    let stored = app.http.get(app.url(&format!("/license/devices/{}/{}/bundles/movie-1", tenant.site_id, device.id)));
    assert_problem(stored.send().await.unwrap(), 403, 5046).await;
    let list = revocations(&app, &tenant, &key).await;
    assert_eq!(list["version"], 1);
    assert_eq!(list["revoked"], json!([{"device_id": device.id, "generation": 1}]));
    // No bundles until the device registers a new key.
    assert_problem(bundle(&app, &tenant, &device, None).await, 422, 5049).await;

    let renewed = Device { id: device.id.clone(), pair: EcKeyPair::generate(EcCurve::P256).unwrap() };
    let registered = register(&app, &token, &renewed).await;
    assert_eq!(registered.status(), 200);
    assert_eq!(registered.json::<Value>().await.unwrap()["generation"], 2);
    let new_jws = renewed.decrypt(&jwe_for(&app, &tenant, &renewed).await);
    assert_eq!(verify(&key, &new_jws)["generation"], 2);
    assert_eq!(check(&app, &device.id, &new_jws).await.status(), 200);
    assert_problem(check(&app, &device.id, &old_jws).await, 403, 5046).await;

    // The tenant resets it too: generation 2 joins the list.
    let by_tenant = app.post(&format!("/api/v1/devices/{}/reset", device.id), &tenant.api_key, &json!({})).await;
    assert_eq!(by_tenant.status(), 200);
    let list = revocations(&app, &tenant, &key).await;
    assert_eq!(list["version"], 2);
    assert_problem(check(&app, &device.id, &new_jws).await, 403, 5046).await;
}

/// Open the offline test page and wait until its action finished; returns its state.
async fn run_page(client: &fantoccini::Client, url: &str) -> Value {
    client.goto(url).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let state = client.execute("return window.playerState();", vec![]).await.unwrap();
        if state["done"] == true || std::time::Instant::now() > deadline {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The reference web client in headless Chromium: it registers a WebCrypto key, opens a bundle fetched from a plain
/// static file server (not Clavis), verifies it and plays Shaka-Packager content with its keys through EME ClearKey;
/// after the tenant resets the device the old bundle is refused by the signed revocation list, and after the device
/// registers a new key a new bundle plays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_a_statically_hosted_bundle_and_refuses_it_after_a_reset() {
    use crate::browser::{ChromeDriver, package, play, serve_dir};

    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Offline Films").await;
    let keys = app.create_keys(&tenant, json!({"content_id": "clip"})).await;
    let (kid, key) = (keys["keys"][0]["kid"].as_str().unwrap(), keys["keys"][0]["key"].as_str().unwrap());
    let media = tempfile::tempdir().unwrap();
    let codecs = package(media.path(), kid, key);
    // The client as Clavis serves it.
    let script = app.http.get(app.url("/static/clavis-offline.js")).send().await.unwrap();
    assert_eq!(script.status(), 200);
    std::fs::write(media.path().join("clavis-offline.js"), script.text().await.unwrap()).unwrap();
    std::fs::write(media.path().join("offline.html"), include_str!("offline_player.html")).unwrap();
    let media_port = serve_dir(media.path().to_path_buf()).await;
    let token = app.token_for(&tenant, "viewer", "clip").await;
    let page = |action: &str, bundle: &str| {
        let mut url = reqwest::Url::parse(&format!("http://127.0.0.1:{media_port}/offline.html")).unwrap();
        url.query_pairs_mut()
            .append_pair("clavis", &app.base)
            .append_pair("site", &tenant.site_id)
            .append_pair("token", &token)
            .append_pair("action", action)
            .append_pair("bundle", bundle)
            .append_pair("media", "enc.mp4")
            .append_pair("type", &format!("video/mp4; codecs=\"{codecs}\""));
        url.to_string()
    };
    // The tenant backend makes the bundle, `clavis bundles export` writes it as a static file, and the file is put
    // on the plain static server the page fetches it from.
    let write_bundle = |device_id: String, file: &'static str| {
        let (app, tenant, dir) = (&app, &tenant, media.path().to_path_buf());
        async move {
            let path = format!("/api/v1/devices/{device_id}/bundles");
            let response = app.post(&path, &tenant.api_key, &json!({"content_ids": ["clip"]})).await;
            assert_eq!(response.status(), 200);
            let bundles: Value = response.json().await.unwrap();
            let out = tempfile::tempdir().unwrap();
            let output = crate::cli::clavis()
                .env("CLAVIS_DATABASE_URL", &app.database_url)
                .env("CLAVIS_DATA_DIR", app._dir.path())
                .env("CLAVIS_MASTER_KEY", &app.master_key)
                .args(["bundles", "export", "--tenant", &tenant.site_id, "--device", &device_id, "--out"])
                .arg(out.path())
                .output()
                .unwrap();
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            let relative = format!("license/devices/{}/{device_id}/bundles/clip", tenant.site_id);
            let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
            assert_eq!(printed["written"], json!([relative]));
            let exported = std::fs::read_to_string(out.path().join(&relative)).unwrap();
            assert_eq!(exported, bundles[0]["jwe"].as_str().unwrap(), "the export is the bundle Clavis made");
            std::fs::write(dir.join(file), exported).unwrap();
        }
    };

    let driver = ChromeDriver::start();
    let client = driver.browser().await;
    let registered = run_page(&client, &page("register", "")).await;
    assert!(registered["error"].is_null(), "{registered}");
    let device_id = registered["device"]["device_id"].as_str().unwrap().to_owned();
    assert_eq!(registered["device"]["generation"], 1);
    write_bundle(device_id.clone(), "old.jwe").await;

    let state = play(&client, &page("play", "old.jwe"), 2.0, Duration::from_secs(30)).await;
    assert!(state["currentTime"].as_f64().unwrap() > 2.0, "the bundle plays: {state}");

    // The tenant resets the device (it was reported stolen): the device still holds its key, so the old bundle still
    // decrypts and verifies, and the revocation list is what refuses it.
    let reset = app.post(&format!("/api/v1/devices/{device_id}/reset"), &tenant.api_key, &json!({})).await;
    assert_eq!(reset.status(), 200);
    let state = run_page(&client, &page("play", "old.jwe")).await;
    assert!(state["error"].as_str().is_some_and(|e| e.contains("revoked")), "{state}");
    assert!(state["currentTime"].as_f64().unwrap() < 0.1, "{state}");

    let renewed = run_page(&client, &page("renew", "")).await;
    assert!(renewed["error"].is_null(), "{renewed}");
    assert_eq!(renewed["device"]["device_id"], device_id.as_str());
    assert_eq!(renewed["device"]["generation"], 2);
    write_bundle(device_id.clone(), "new.jwe").await;
    let state = play(&client, &page("play", "new.jwe"), 2.0, Duration::from_secs(30)).await;
    assert!(state["currentTime"].as_f64().unwrap() > 2.0, "the new bundle plays: {state}");
    // The old bundle was for the old key, which the device no longer has.
    let state = run_page(&client, &page("play", "old.jwe")).await;
    assert!(state["error"].is_string() && state["currentTime"].as_f64().unwrap() < 0.1, "{state}");

    // The device resets itself, signing the proof with its non-extractable WebCrypto key: the new bundle is refused.
    let reset = run_page(&client, &page("reset", "")).await;
    assert!(reset["error"].is_null(), "{reset}");
    assert_eq!(reset["device"]["state"], "reset");
    let state = run_page(&client, &page("play", "new.jwe")).await;
    assert!(state["error"].as_str().is_some_and(|e| e.contains("revoked")), "{state}");
    client.close().await.unwrap();
}
