//! castLabs DRMtoday upfront tokens (`x-dt-auth-token`) and Axinom license service messages (`X-AxDRM-Message`)
//! against Clavis: the integration settings, ClearKey licenses for tokens signed the way the merchant's backend signs
//! them, and the refusals, each with its catalog code.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{Duration, Utc};
use clavis_tokens::foreign::HmacAlgorithm;
use clavis_tokens::foreign::axinom::{AxinomComKey, encrypt_inline_key, sign_message};
use clavis_tokens::foreign::drmtoday::sign_token;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::kit::{TestApp, TestTenant, assert_problem, b64url};

const MERCHANT: &str = "acme-media";
const SECRET_1: [u8; 32] = *b"drmtoday shared secret number 1!";
const SECRET_2: [u8; 32] = *b"drmtoday shared secret number 2!";

/// POST /license/clearkey for hex KIDs with the token in `header`.
async fn license_with(app: &TestApp, header: &str, token: &str, kids: &[&str], session: &str) -> reqwest::Response {
    let kids: Vec<String> = kids.iter().map(|k| b64url(&hex::decode(k.replace('-', "")).unwrap())).collect();
    app.http
        .post(app.url("/license/clearkey"))
        .header(header, token)
        .body(json!({"kids": kids, "type": session}).to_string())
        .send()
        .await
        .unwrap()
}

async fn tenant_with_tracks(app: &TestApp, content: &str) -> (TestTenant, Vec<String>) {
    let tenant = app.create_tenant("Acme").await;
    let keys = app.create_keys(&tenant, json!({"content_id": content, "tracks": ["SD", "HD"]})).await;
    let kids = keys["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect();
    (tenant, kids)
}

async fn allow_persistence(app: &TestApp, tenant: &TestTenant) {
    let patched = app
        .http
        .patch(app.url("/api/v1/tenant/settings"))
        .bearer_auth(&tenant.api_key)
        .json(&json!({"default_policy": {"license_duration_seconds": 86400, "persistent": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
}

// ---------------------------------------------------------------------------------------------------------------
// DRMtoday

async fn dt_license(app: &TestApp, token: &str, kids: &[&str]) -> reqwest::Response {
    license_with(app, "x-dt-auth-token", token, kids, "temporary").await
}

fn dt_settings(merchant: &str) -> Value {
    json!({"merchant": merchant, "secrets": [
        {"kid": "key-1", "secret": hex::encode(SECRET_1)},
        {"kid": "key-2", "secret": STANDARD.encode(SECRET_2)},
    ]})
}

async fn dt_enable(app: &TestApp, tenant: &TestTenant) {
    let response = app.put("/api/v1/integrations/drmtoday", &tenant.api_key, &dt_settings(MERCHANT)).await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["merchant"], MERCHANT);
    assert_eq!(view["kids"], json!(["key-1", "key-2"]));
    let shown = view.to_string();
    assert!(!shown.contains(&hex::encode(SECRET_1)) && !shown.contains(&STANDARD.encode(SECRET_2)), "{view}");
}

/// Claims as a merchant's backend writes them: `optData` and `crt` as JSON strings.
fn dt_claims(asset: &str, crt_extra: Value) -> Value {
    let mut right = json!({"assetId": asset, "profile": {"purchase": {}}});
    if let (Some(right), Some(extra)) = (right.as_object_mut(), crt_extra.as_object()) {
        right.extend(extra.clone());
    }
    let now = Utc::now().timestamp();
    json!({
        "jti": Uuid::new_v4().to_string(),
        "iat": now - 5,
        "exp": now + 600,
        "optData": json!({"merchant": MERCHANT, "userId": "viewer-7", "sessionId": "s-1"}).to_string(),
        "crt": json!([right]).to_string(),
    })
}

fn dt_sign(claims: &Value) -> String {
    sign_token(HmacAlgorithm::Hs256, "key-1", &SECRET_1, claims)
}

#[tokio::test]
async fn drmtoday_tokens_get_clearkey_licenses_once_each() {
    let app = TestApp::spawn().await;
    let (tenant, kids) = tenant_with_tracks(&app, "bigbuckbunny").await;
    let token = dt_sign(&dt_claims("bigbuckbunny", json!({})));

    // Before the tenant configures DRMtoday, nobody owns the merchant.
    assert_problem(dt_license(&app, &token, &[kids[0].as_str()]).await, 401, 4007).await;
    assert_problem(app.get("/api/v1/integrations/drmtoday", &tenant.api_key).await, 404, 4012).await;

    dt_enable(&app, &tenant).await;
    let issued = dt_license(&app, &token, &[kids[0].as_str(), kids[1].as_str()]).await;
    assert_eq!(issued.status(), 200);
    let issued: Value = issued.json().await.unwrap();
    assert_eq!(issued["keys"].as_array().unwrap().len(), 2);
    // The jti is single use, always.
    assert_problem(dt_license(&app, &token, &[kids[0].as_str()]).await, 403, 4011).await;

    // Any configured secret verifies (rotation), with any of DRMtoday's algorithms; the header name is
    // case-insensitive.
    let rotated = sign_token(HmacAlgorithm::Hs512, "key-2", &SECRET_2, &dt_claims("bigbuckbunny", json!({})));
    let answer = license_with(&app, "X-DT-Auth-Token", &rotated, &[kids[0].as_str()], "temporary").await;
    assert_eq!(answer.status(), 200);

    let log = app.license_log(&tenant).await;
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|row| row["user_id"] == "viewer-7" && row["content_id"] == "bigbuckbunny"), "{log:?}");

    // Another tenant can neither claim the merchant nor see the settings.
    let other = app.create_tenant("Other").await;
    let claimed = app.put("/api/v1/integrations/drmtoday", &other.api_key, &dt_settings(MERCHANT)).await;
    assert_problem(claimed, 409, 4014).await;
    assert_problem(app.get("/api/v1/integrations/drmtoday", &other.api_key).await, 404, 4012).await;
    assert_problem(app.delete("/api/v1/integrations/drmtoday", &other.api_key).await, 404, 4012).await;
    let view: Value = app.get("/api/v1/integrations/drmtoday", &tenant.api_key).await.json().await.unwrap();
    assert_eq!(view["kids"], json!(["key-1", "key-2"]));

    // Removing the integration stops the tokens and frees the merchant.
    assert_eq!(app.delete("/api/v1/integrations/drmtoday", &tenant.api_key).await.status(), 204);
    let fresh = dt_sign(&dt_claims("bigbuckbunny", json!({})));
    assert_problem(dt_license(&app, &fresh, &[kids[0].as_str()]).await, 401, 4007).await;
    assert_eq!(app.put("/api/v1/integrations/drmtoday", &other.api_key, &dt_settings(MERCHANT)).await.status(), 200);
}

#[tokio::test]
async fn drmtoday_rights_map_onto_the_policy() {
    let app = TestApp::spawn().await;
    let (tenant, kids) = tenant_with_tracks(&app, "bigbuckbunny").await;
    let (sd, hd) = (kids[0].as_str(), kids[1].as_str());
    dt_enable(&app, &tenant).await;

    // op.config: a denied quality is not delivered.
    let no_hd = json!({"op": {"config": {"HD": {"*": {"deny": true}}, "SD": {"WidevineM": {"minSL": 1}}}}});
    assert_problem(dt_license(&app, &dt_sign(&dt_claims("bigbuckbunny", no_hd.clone())), &[hd]).await, 403, 5006).await;
    assert_eq!(dt_license(&app, &dt_sign(&dt_claims("bigbuckbunny", no_hd)), &[sd]).await.status(), 200);

    // storeLicense allows persistent sessions (where the tenant's default does too); a refusal does not use up
    // the token.
    allow_persistence(&app, &tenant).await;
    let temporary_only = dt_sign(&dt_claims("bigbuckbunny", json!({})));
    let header = "x-dt-auth-token";
    let persistent = license_with(&app, header, &temporary_only, &[sd], "persistent-license").await;
    assert_problem(persistent, 403, 5004).await;
    assert_eq!(dt_license(&app, &temporary_only, &[sd]).await.status(), 200);
    let stored = dt_sign(&dt_claims("bigbuckbunny", json!({"storeLicense": true})));
    assert_eq!(license_with(&app, header, &stored, &[sd], "persistent-license").await.status(), 200);

    // A rental: an absolute expiration in the past leaves nothing to issue.
    let past = (Utc::now() - Duration::minutes(1)).to_rfc3339();
    let rental = json!({"profile": {"rental": {"absoluteExpiration": past, "playDuration": "PT1M"}}});
    assert_problem(dt_license(&app, &dt_sign(&dt_claims("bigbuckbunny", rental)), &[sd]).await, 403, 5008).await;
    let rental = json!({"profile": {"rental": {"relativeExpiration": "PT10M", "playDuration": 60000}}});
    assert_eq!(dt_license(&app, &dt_sign(&dt_claims("bigbuckbunny", rental)), &[sd]).await.status(), 200);

    // A token for another asset gets none of this one's keys.
    app.create_keys(&tenant, json!({"content_id": "trailer"})).await;
    let other = dt_sign(&dt_claims("trailer", json!({})));
    assert_problem(dt_license(&app, &other, &[sd]).await, 403, 4008).await;
}

#[tokio::test]
async fn drmtoday_refusals_carry_catalog_codes() {
    let app = TestApp::spawn().await;
    let (tenant, kids) = tenant_with_tracks(&app, "bigbuckbunny").await;
    let sd = kids[0].as_str();
    dt_enable(&app, &tenant).await;
    let now = Utc::now().timestamp();

    let forged = sign_token(HmacAlgorithm::Hs256, "key-1", &[7; 32], &dt_claims("bigbuckbunny", json!({})));
    assert_problem(dt_license(&app, &forged, &[sd]).await, 401, 4003).await;
    let unknown_kid = sign_token(HmacAlgorithm::Hs256, "key-9", &SECRET_1, &dt_claims("bigbuckbunny", json!({})));
    assert_problem(dt_license(&app, &unknown_kid, &[sd]).await, 401, 4004).await;

    let mut expired = dt_claims("bigbuckbunny", json!({}));
    expired["iat"] = json!(now - 7200);
    expired["exp"] = json!(now - 3600);
    assert_problem(dt_license(&app, &dt_sign(&expired), &[sd]).await, 401, 4005).await;
    // Without `exp`, a token lives 24 hours after its `iat` (as long as the ledger remembers its jti).
    let mut old = dt_claims("bigbuckbunny", json!({}));
    old.as_object_mut().unwrap().remove("exp");
    old["iat"] = json!(now - 25 * 3600);
    assert_problem(dt_license(&app, &dt_sign(&old), &[sd]).await, 401, 4005).await;
    old["iat"] = json!(now - 23 * 3600);
    assert_eq!(dt_license(&app, &dt_sign(&old), &[sd]).await.status(), 200);
    let mut future = dt_claims("bigbuckbunny", json!({}));
    future["iat"] = json!(now + 3600);
    assert_problem(dt_license(&app, &dt_sign(&future), &[sd]).await, 401, 4006).await;

    // Rights for two assets cannot be one Clavis content.
    let mut two_assets = dt_claims("bigbuckbunny", json!({}));
    two_assets["crt"] = json!([
        {"assetId": "bigbuckbunny", "profile": {"purchase": {}}},
        {"assetId": "trailer", "profile": {"purchase": {}}}
    ])
    .to_string()
    .into();
    let body = assert_problem(dt_license(&app, &dt_sign(&two_assets), &[sd]).await, 401, 4002).await;
    assert_eq!(body["field"], "crt[1].assetId");
    // Rules Clavis cannot apply are refused, not ignored.
    let bad_rule = json!({"op": {"config": {"HD": {"*": {"requireHDCP": "HDCP_V9"}}}}});
    let body =
        assert_problem(dt_license(&app, &dt_sign(&dt_claims("bigbuckbunny", bad_rule)), &[sd]).await, 422, 4010).await;
    assert_eq!(body["field"], "crt[0].op.config.HD.*.requireHDCP");

    // Malformed tokens, and tokens naming no merchant Clavis knows.
    for garbage in ["", "not a jwt", "a.b.c", &"x".repeat(20_000)] {
        let answer = dt_license(&app, garbage, &[sd]).await;
        assert!(answer.status() == 401, "{garbage:.20}: {}", answer.status());
    }
    let mut no_opt_data = dt_claims("bigbuckbunny", json!({}));
    no_opt_data.as_object_mut().unwrap().remove("optData");
    let body = assert_problem(dt_license(&app, &dt_sign(&no_opt_data), &[sd]).await, 401, 4002).await;
    assert_eq!(body["field"], "optData");
    let mut stranger = dt_claims("bigbuckbunny", json!({}));
    stranger["optData"] = json!({"merchant": "someone-else", "userId": "u"}).to_string().into();
    assert_problem(dt_license(&app, &dt_sign(&stranger), &[sd]).await, 401, 4007).await;
    // The token from a refused request was not used up: the good one still works once.
    let good = dt_sign(&dt_claims("bigbuckbunny", json!({})));
    assert_eq!(dt_license(&app, &good, &[sd]).await.status(), 200);
    assert_problem(dt_license(&app, &good, &[sd]).await, 403, 4011).await;
}

// ---------------------------------------------------------------------------------------------------------------
// Axinom

const COM_KEY_ID_1: &str = "69e54088-e9e0-4530-8c1a-1eb6dcd0d14e";
const COM_KEY_ID_2: &str = "8a0c8f1e-3b52-4d1a-9a3e-5f1b2c3d4e5f";
const COM_KEY_1: [u8; 32] = *b"axinom communication key 32 byte";
const COM_KEY_2: [u8; 32] = *b"axinom communication key number2";
const KID_1: &str = "6e5a1d26-2757-47d7-8046-eaa5a9c6ee6b";
const KID_2: &str = "0f8f9e2c-5a4e-4b1e-9b3e-2d7c1a6b4c3d";
const KEY_1: [u8; 16] = *b"content key one!";
const KEY_2: [u8; 16] = [7; 16];

async fn ax_license(app: &TestApp, message: &str, kids: &[&str]) -> reqwest::Response {
    license_with(app, "X-AxDRM-Message", message, kids, "temporary").await
}

fn ax_settings(keys: &[(&str, [u8; 32])]) -> Value {
    let keys: Vec<Value> =
        keys.iter().map(|(id, key)| json!({"com_key_id": id, "com_key": STANDARD.encode(key)})).collect();
    json!({ "keys": keys })
}

/// A message as the tenant's backend writes it, granting KID_1 and KID_2, signed with `com_key`.
fn ax_message(com_key_id: &str, com_key: [u8; 32], adjust: impl FnOnce(&mut Value)) -> String {
    let key = AxinomComKey::from_bytes(com_key);
    let inline = |kid: &str, content_key: &[u8; 16]| json!({"id": kid, "encrypted_key": encrypt_inline_key(&key, &Uuid::parse_str(kid).unwrap(), content_key)});
    let mut claims = json!({
        "version": 1,
        "com_key_id": com_key_id,
        "message": {
            "type": "entitlement_message",
            "version": 2,
            "license": {"duration": 3600, "allow_persistence": false},
            "content_keys_source": {"inline": [inline(KID_1, &KEY_1), inline(KID_2, &KEY_2)]},
            "license_server": {"access_control": {"prevent_drm_message_reuse": false}}
        },
        "begin_date": (Utc::now() - Duration::minutes(5)).to_rfc3339(),
        "expiration_date": (Utc::now() + Duration::minutes(30)).to_rfc3339(),
    });
    adjust(&mut claims);
    sign_message(&key, &claims)
}

#[tokio::test]
async fn axinom_messages_get_clearkey_licenses_for_the_keys_they_grant() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let message = ax_message(COM_KEY_ID_1, COM_KEY_1, |_| {});

    assert_problem(ax_license(&app, &message, &[KID_1]).await, 401, 4007).await;
    assert_problem(app.get("/api/v1/integrations/axinom", &tenant.api_key).await, 404, 4012).await;

    let settings = ax_settings(&[(COM_KEY_ID_1, COM_KEY_1), (COM_KEY_ID_2, COM_KEY_2)]);
    let response = app.put("/api/v1/integrations/axinom", &tenant.api_key, &settings).await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["com_key_ids"], json!([COM_KEY_ID_1, COM_KEY_ID_2]));
    assert!(!view.to_string().contains(&STANDARD.encode(COM_KEY_1)), "{view}");

    // The keys come from the message itself; the tenant stores none.
    let answer = ax_license(&app, &message, &[KID_1, KID_2]).await;
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    let keys = answer["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let by_kid = |kid: &str| {
        let kid = b64url(Uuid::parse_str(kid).unwrap().as_bytes());
        keys.iter().find(|k| k["kid"] == kid.as_str()).map(|k| k["k"].as_str().unwrap().to_owned())
    };
    assert_eq!(by_kid(KID_1), Some(b64url(&KEY_1)));
    assert_eq!(by_kid(KID_2), Some(b64url(&KEY_2)));
    // Reuse is allowed unless the message prevents it.
    assert_eq!(ax_license(&app, &message, &[KID_2]).await.status(), 200);

    // A KID the message does not grant refuses the whole license.
    let stranger = Uuid::new_v4().to_string();
    assert_problem(ax_license(&app, &message, &[KID_1, stranger.as_str()]).await, 403, 5002).await;

    // The second configured key verifies too; the header name is case-insensitive.
    let rotated = ax_message(COM_KEY_ID_2, COM_KEY_2, |_| {});
    assert_eq!(license_with(&app, "x-axdrm-message", &rotated, &[KID_1], "temporary").await.status(), 200);

    let log = app.license_log(&tenant).await;
    assert!(log.iter().all(|row| row["user_id"] == "axinom" && row["content_id"] == "axinom"), "{log:?}");

    // Another tenant can neither claim a key id nor see the settings.
    let other = app.create_tenant("Other").await;
    let second_only = ax_settings(&[(COM_KEY_ID_2, COM_KEY_2)]);
    let claimed = app.put("/api/v1/integrations/axinom", &other.api_key, &second_only).await;
    assert_problem(claimed, 409, 4014).await;
    assert_problem(app.get("/api/v1/integrations/axinom", &other.api_key).await, 404, 4012).await;
    assert_problem(app.delete("/api/v1/integrations/axinom", &other.api_key).await, 404, 4012).await;

    // Replacing the set releases the keys left out: their messages stop, and another tenant may claim them.
    let only_first = ax_settings(&[(COM_KEY_ID_1, COM_KEY_1)]);
    assert_eq!(app.put("/api/v1/integrations/axinom", &tenant.api_key, &only_first).await.status(), 200);
    assert_problem(ax_license(&app, &rotated, &[KID_1]).await, 401, 4007).await;
    assert_eq!(app.put("/api/v1/integrations/axinom", &other.api_key, &second_only).await.status(), 200);
    assert_eq!(ax_license(&app, &message, &[KID_1]).await.status(), 200);

    assert_eq!(app.delete("/api/v1/integrations/axinom", &tenant.api_key).await.status(), 204);
    assert_problem(ax_license(&app, &message, &[KID_1]).await, 401, 4007).await;
}

#[tokio::test]
async fn axinom_refusals_carry_catalog_codes() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let settings = ax_settings(&[(COM_KEY_ID_1, COM_KEY_1)]);
    assert_eq!(app.put("/api/v1/integrations/axinom", &tenant.api_key, &settings).await.status(), 200);

    // Signed with another key under a configured id; an id nobody configured.
    let forged = ax_message(COM_KEY_ID_1, [9; 32], |_| {});
    assert_problem(ax_license(&app, &forged, &[KID_1]).await, 401, 4003).await;
    let unknown = ax_message(COM_KEY_ID_2, COM_KEY_2, |_| {});
    assert_problem(ax_license(&app, &unknown, &[KID_1]).await, 401, 4007).await;
    let no_id = ax_message(COM_KEY_ID_1, COM_KEY_1, |claims| claims["com_key_id"] = json!("not-a-uuid"));
    let body = assert_problem(ax_license(&app, &no_id, &[KID_1]).await, 401, 4002).await;
    assert_eq!(body["field"], "com_key_id");

    let expired = ax_message(COM_KEY_ID_1, COM_KEY_1, |claims| {
        claims["expiration_date"] = json!((Utc::now() - Duration::hours(1)).to_rfc3339());
    });
    assert_problem(ax_license(&app, &expired, &[KID_1]).await, 401, 4005).await;
    let early = ax_message(COM_KEY_ID_1, COM_KEY_1, |claims| {
        claims["begin_date"] = json!((Utc::now() + Duration::hours(1)).to_rfc3339());
    });
    assert_problem(ax_license(&app, &early, &[KID_1]).await, 401, 4006).await;
    let license_ended = ax_message(COM_KEY_ID_1, COM_KEY_1, |claims| {
        claims["message"]["license"]["expiration_datetime"] = json!((Utc::now() - Duration::minutes(1)).to_rfc3339());
    });
    assert_problem(ax_license(&app, &license_ended, &[KID_1]).await, 403, 5008).await;

    // prevent_drm_message_reuse: one license per message; a refused request does not use it up.
    let once = ax_message(COM_KEY_ID_1, COM_KEY_1, |claims| {
        claims["message"]["license_server"]["access_control"]["prevent_drm_message_reuse"] = json!(true);
    });
    let stranger = Uuid::new_v4().to_string();
    assert_problem(ax_license(&app, &once, &[stranger.as_str()]).await, 403, 5002).await;
    assert_eq!(ax_license(&app, &once, &[KID_1]).await.status(), 200);
    assert_problem(ax_license(&app, &once, &[KID_1]).await, 403, 4011).await;

    // Persistence follows allow_persistence (within the tenant's default).
    allow_persistence(&app, &tenant).await;
    let online = ax_message(COM_KEY_ID_1, COM_KEY_1, |_| {});
    let header = "X-AxDRM-Message";
    assert_problem(license_with(&app, header, &online, &[KID_1], "persistent-license").await, 403, 5004).await;
    let offline = ax_message(COM_KEY_ID_1, COM_KEY_1, |claims| {
        claims["message"]["license"]["allow_persistence"] = json!(true);
    });
    assert_eq!(license_with(&app, header, &offline, &[KID_1], "persistent-license").await.status(), 200);

    // A message whose keys do not decrypt, or that carries none, is refused naming the field.
    let no_keys = ax_message(COM_KEY_ID_1, COM_KEY_1, |claims| {
        claims["message"]["content_keys_source"]["inline"] = json!([]);
    });
    let body = assert_problem(ax_license(&app, &no_keys, &[KID_1]).await, 422, 4010).await;
    assert_eq!(body["field"], "message.content_keys_source.inline");
    let bad_key = ax_message(COM_KEY_ID_1, COM_KEY_1, |claims| {
        claims["message"]["content_keys_source"]["inline"][0]["encrypted_key"] = json!("AAAA");
    });
    let body = assert_problem(ax_license(&app, &bad_key, &[KID_1]).await, 422, 4010).await;
    assert_eq!(body["field"], "message.content_keys_source.inline[0].encrypted_key");
    for garbage in ["", "a.b.c", &"x".repeat(20_000)] {
        assert_eq!(ax_license(&app, garbage, &[KID_1]).await.status(), 401, "{garbage:.20}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Settings

#[tokio::test]
async fn integration_settings_are_validated() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let secret = hex::encode(SECRET_1);
    for (body, field) in [
        (json!({"merchant": "", "secrets": [{"kid": "k", "secret": secret}]}), "merchant"),
        (json!({"merchant": "m\u{7}", "secrets": [{"kid": "k", "secret": secret}]}), "merchant"),
        (json!({"merchant": "m", "secrets": []}), "secrets"),
        (json!({"merchant": "m", "secrets": [{"kid": "", "secret": secret}]}), "secrets[0].kid"),
        (json!({"merchant": "m", "secrets": [{"kid": "k", "secret": "abcd"}]}), "secrets[0].secret"),
        (
            json!({"merchant": "m", "secrets": [{"kid": "k", "secret": STANDARD.encode([1u8; 16])}]}),
            "secrets[0].secret",
        ),
        (
            json!({"merchant": "m", "secrets": [{"kid": "k", "secret": secret}, {"kid": "k", "secret": secret}]}),
            "secrets[1].kid",
        ),
    ] {
        let refused = app.put("/api/v1/integrations/drmtoday", &tenant.api_key, &body).await;
        assert_eq!(assert_problem(refused, 422, 4013).await["field"], field, "{body}");
    }
    let key = STANDARD.encode(COM_KEY_1);
    for (body, field) in [
        (json!({"keys": []}), "keys"),
        (json!({"keys": [{"com_key_id": "nope", "com_key": key}]}), "keys[0].com_key_id"),
        (json!({"keys": [{"com_key_id": COM_KEY_ID_1, "com_key": "AAAA"}]}), "keys[0].com_key"),
        (
            json!({"keys": [{"com_key_id": COM_KEY_ID_1, "com_key": key}, {"com_key_id": COM_KEY_ID_1, "com_key": key}]}),
            "keys[1].com_key_id",
        ),
    ] {
        let refused = app.put("/api/v1/integrations/axinom", &tenant.api_key, &body).await;
        assert_eq!(assert_problem(refused, 422, 4013).await["field"], field, "{body}");
    }
    // Unknown fields are refused by the JSON reader, before the settings are looked at.
    let extra = json!({"merchant": "m", "secrets": [{"kid": "k", "secret": secret}], "compat_errors": true});
    assert_eq!(app.put("/api/v1/integrations/drmtoday", &tenant.api_key, &extra).await.status(), 422);
    // Nothing was stored by the refused requests.
    assert_problem(app.get("/api/v1/integrations/drmtoday", &tenant.api_key).await, 404, 4012).await;
    assert_problem(app.get("/api/v1/integrations/axinom", &tenant.api_key).await, 404, 4012).await;
}
