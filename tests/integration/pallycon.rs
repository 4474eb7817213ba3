//! PallyCon tokens against Clavis: the integration settings, licenses for PallyCon-signed tokens (v1 and v2
//! policies, `external_key`, the legacy `token` field), refusals in Clavis's and in PallyCon's error style.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{Duration, Utc};
use clavis_tokens::foreign::pallycon::{PallyconDrmType, PallyconSecrets, encode_token};
use serde_json::{Value, json};

use crate::kit::{TestApp, TestTenant, assert_problem, b64url};

// The keys of PallyCon's tutorial (the token-formats spec's verified vector).
const SITE: &str = "TUTO";
const SITE_KEY: &str = "lU5D8s3PWoLls3PWFWkClULlFWk5D8oC";
const ACCESS_KEY: &str = "LT2FVJDp2Xr018zf4Di6lzvNOv3DKP20";

fn secrets() -> PallyconSecrets {
    PallyconSecrets::new(SITE_KEY, ACCESS_KEY).unwrap()
}

fn pallycon_token(cid: &str, policy: &Value, at: chrono::DateTime<Utc>) -> String {
    encode_token(&secrets(), PallyconDrmType::Widevine, SITE, "test-user", cid, &policy.to_string(), at, None)
}

async fn enable(app: &TestApp, tenant: &TestTenant, compat_errors: bool) {
    let body = json!({"site_id": SITE, "site_key": SITE_KEY, "access_key": ACCESS_KEY, "compat_errors": compat_errors});
    let response = app.put("/api/v1/integrations/pallycon", &tenant.api_key, &body).await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["site_id"], SITE);
    assert_eq!(view["token_ttl_seconds"], 600);
    assert!(!view.to_string().contains(SITE_KEY) && !view.to_string().contains(ACCESS_KEY), "{view}");
}

async fn license(app: &TestApp, token: &str, kids: &[&str]) -> reqwest::Response {
    let kids: Vec<String> = kids.iter().map(|k| b64url(&hex::decode(k).unwrap())).collect();
    app.http
        .post(app.url("/license/clearkey"))
        .header("pallycon-customdata-v2", token)
        .body(json!({"kids": kids, "type": "temporary"}).to_string())
        .send()
        .await
        .unwrap()
}

async fn tenant_with_tracks(app: &TestApp) -> (TestTenant, Vec<String>) {
    let tenant = app.create_tenant("Acme").await;
    let keys = app.create_keys(&tenant, json!({"content_id": "bigbuckbunny", "tracks": ["SD", "HD"]})).await;
    let kids = keys["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect();
    (tenant, kids)
}

#[tokio::test]
async fn pallycon_tokens_get_licenses_once_the_tenant_sets_its_keys() {
    let app = TestApp::spawn().await;
    let (tenant, kids) = tenant_with_tracks(&app).await;
    let v1 = json!({"playback_policy": {"limit": true, "persistent": false, "duration": 3600}});
    let token = pallycon_token("bigbuckbunny", &v1, Utc::now());

    // Before the tenant configures PallyCon, nobody owns the site id.
    assert_problem(license(&app, &token, &[kids[0].as_str()]).await, 401, 4007).await;
    assert_problem(app.get("/api/v1/integrations/pallycon", &tenant.api_key).await, 404, 4012).await;

    enable(&app, &tenant, false).await;
    let issued = license(&app, &token, &[kids[0].as_str(), kids[1].as_str()]).await;
    assert_eq!(issued.status(), 200);
    let issued: Value = issued.json().await.unwrap();
    assert_eq!(issued["keys"].as_array().unwrap().len(), 2);

    // The same token in the query parameter, and in the legacy `token` field.
    let by_query = app
        .http
        .post(app.url("/license/clearkey"))
        .query(&[("pallycon-customdata-v2", &token)])
        .body(json!({"kids": [b64url(&hex::decode(&kids[0]).unwrap())], "type": "temporary"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(by_query.status(), 200);
    let mut legacy: serde_json::Map<String, Value> = serde_json::from_slice(&STANDARD.decode(&token).unwrap()).unwrap();
    let policy = legacy.remove("policy").unwrap();
    legacy.insert("token".into(), policy);
    let legacy = STANDARD.encode(serde_json::to_vec(&legacy).unwrap());
    assert_eq!(license(&app, &legacy, &[kids[0].as_str()]).await.status(), 200);

    let log = app.license_log(&tenant).await;
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|row| row["user_id"] == "test-user" && row["content_id"] == "bigbuckbunny"));

    // Another tenant cannot claim the same site id.
    let other = app.create_tenant("Other").await;
    let body = json!({"site_id": SITE, "site_key": SITE_KEY, "access_key": ACCESS_KEY});
    assert_problem(app.put("/api/v1/integrations/pallycon", &other.api_key, &body).await, 409, 4014).await;

    // Removing the integration stops the tokens.
    assert_eq!(app.delete("/api/v1/integrations/pallycon", &tenant.api_key).await.status(), 204);
    assert_problem(license(&app, &token, &[kids[0].as_str()]).await, 401, 4007).await;
}

#[tokio::test]
async fn v2_policies_and_external_keys_are_honoured() {
    let app = TestApp::spawn().await;
    let (tenant, kids) = tenant_with_tracks(&app).await;
    enable(&app, &tenant, false).await;

    let sd_only =
        json!({"policy_version": 2, "playback_policy": {"allowed_track_types": "SD_ONLY", "license_duration": 600}});
    let token = pallycon_token("bigbuckbunny", &sd_only, Utc::now());
    assert_eq!(license(&app, &token, &[kids[0].as_str()]).await.status(), 200);
    assert_problem(license(&app, &token, &[kids[1].as_str()]).await, 403, 5006).await;

    // A persistent session needs a persistent policy.
    let persistent = |allowed: bool| {
        pallycon_token(
            "bigbuckbunny",
            &json!({"policy_version": 2, "playback_policy": {"persistent": allowed}}),
            Utc::now(),
        )
    };
    let kid_b64 = b64url(&hex::decode(&kids[0]).unwrap());
    let persistent_request = json!({"kids": [kid_b64], "type": "persistent-license"}).to_string();
    let ask = |token: String| {
        app.http
            .post(app.url("/license/clearkey"))
            .header("pallycon-customdata-v2", token)
            .body(persistent_request.clone())
            .send()
    };
    assert_problem(ask(persistent(false)).await.unwrap(), 403, 5004).await;
    // The tenant's default (temporary licenses only) still narrows what the token asks for.
    assert_problem(ask(persistent(true)).await.unwrap(), 403, 5004).await;

    // external_key: the token carries the key; the content needs no stored keys.
    let kid = "0123456789abcdef0123456789abcdef";
    let key = "fedcba9876543210fedcba9876543210";
    let with_key =
        json!({"policy_version": 2, "external_key": {"mpeg_cenc": [{"track_type": "ALL", "key_id": kid, "key": key}]}});
    let token = pallycon_token("live-event", &with_key, Utc::now());
    let answer = license(&app, &token, &[kid]).await;
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["keys"][0]["kid"], b64url(&hex::decode(kid).unwrap()));
    assert_eq!(answer["keys"][0]["k"], b64url(&hex::decode(key).unwrap()));
    assert_problem(license(&app, &token, &[kids[0].as_str()]).await, 403, 5002).await;
}

#[tokio::test]
async fn refusals_use_the_tenants_error_style() {
    let app = TestApp::spawn().await;
    let (tenant, kids) = tenant_with_tracks(&app).await;
    let other_content = app.create_keys(&tenant, json!({"content_id": "other"})).await;
    let other_kid = other_content["keys"][0]["kid"].as_str().unwrap().to_owned();
    let policy = json!({"playback_policy": {"limit": true, "duration": 60}});
    let good = pallycon_token("bigbuckbunny", &policy, Utc::now());
    let expired = pallycon_token("bigbuckbunny", &policy, Utc::now() - Duration::seconds(3600));
    let mut tampered: serde_json::Map<String, Value> =
        serde_json::from_slice(&STANDARD.decode(&good).unwrap()).unwrap();
    tampered.insert("user_id".into(), json!("someone-else"));
    let tampered = STANDARD.encode(serde_json::to_vec(&tampered).unwrap());

    // Clavis's style: problem+json with real statuses.
    enable(&app, &tenant, false).await;
    assert_problem(license(&app, &expired, &[kids[0].as_str()]).await, 401, 4005).await;
    assert_problem(license(&app, &tampered, &[kids[0].as_str()]).await, 401, 4003).await;
    assert_problem(license(&app, &good, &[other_kid.as_str()]).await, 403, 4008).await;
    assert_problem(license(&app, "not base64!", &[kids[0].as_str()]).await, 401, 4002).await;

    // PallyCon's style: HTTP 200 and PallyCon's codes in the body, for players written against PallyCon.
    enable(&app, &tenant, true).await;
    for (token, kid, code) in [
        (&expired, kids[0].as_str(), "7011"),
        (&tampered, kids[0].as_str(), "7019"),
        (&good, other_kid.as_str(), "7012"),
    ] {
        let answer = license(&app, token, &[kid]).await;
        assert_eq!(answer.status(), 200);
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["errorCode"], code, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Success is unchanged, and every refusal is still logged with Clavis's code.
    assert_eq!(license(&app, &good, &[kids[0].as_str()]).await.status(), 200);
    let log = app.license_log(&tenant).await;
    let codes: Vec<i64> = log.iter().filter_map(|row| row["error_code"].as_i64()).collect();
    assert_eq!(codes.iter().filter(|c| **c == 4005).count(), 2);
    assert_eq!(codes.iter().filter(|c| **c == 4003).count(), 2);
}

#[tokio::test]
async fn integration_settings_are_validated_and_scoped() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    for (body, field) in [
        (json!({"site_id": "tuto", "site_key": SITE_KEY, "access_key": ACCESS_KEY}), "site_id"),
        (json!({"site_id": SITE, "site_key": "short", "access_key": ACCESS_KEY}), "site_key"),
        (json!({"site_id": SITE, "site_key": SITE_KEY, "access_key": ""}), "access_key"),
        (
            json!({"site_id": SITE, "site_key": SITE_KEY, "access_key": ACCESS_KEY, "token_ttl_seconds": 0}),
            "token_ttl_seconds",
        ),
    ] {
        let refused = app.put("/api/v1/integrations/pallycon", &tenant.api_key, &body).await;
        assert_eq!(assert_problem(refused, 422, 4013).await["field"], field);
    }
    enable(&app, &tenant, false).await;
    let view: Value = app.get("/api/v1/integrations/pallycon", &tenant.api_key).await.json().await.unwrap();
    assert_eq!(view["site_id"], SITE);
    assert_eq!(view["compat_errors"], false);
    // Another tenant sees nothing of it.
    let other = app.create_tenant("Other").await;
    assert_problem(app.get("/api/v1/integrations/pallycon", &other.api_key).await, 404, 4012).await;
    assert_problem(app.delete("/api/v1/integrations/pallycon", &other.api_key).await, 404, 4012).await;
    assert_eq!(app.get("/api/v1/integrations/pallycon", &tenant.api_key).await.status(), 200);
}
