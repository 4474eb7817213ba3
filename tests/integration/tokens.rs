//! `POST /api/v1/tokens` and the tenant settings it reads.

use base64::Engine;
use serde_json::{Value, json};

use crate::kit::{TestApp, assert_problem};

fn decode_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test]
async fn minted_tokens_carry_the_native_claims() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let before = chrono::Utc::now().timestamp();
    let response = app
        .post("/api/v1/tokens", &tenant.api_key, &json!({"user_id": "u1", "content_id": "movie-1", "policy": {}}))
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    let header = decode_part(token, 0);
    assert_eq!(header["alg"], "HS256");
    assert!(header["kid"].as_str().unwrap().starts_with("hs-"));
    let claims = decode_part(token, 1);
    assert_eq!(claims["iss"], tenant.site_id.as_str());
    assert_eq!(claims["sub"], "u1");
    assert_eq!(claims["cid"], "movie-1");
    assert!(claims["jti"].is_string());
    let exp = claims["exp"].as_i64().unwrap();
    assert!((before + 600..=before + 602).contains(&exp), "default TTL is 600 s: {claims}");
    let expires_at = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(expires_at.timestamp(), exp);

    // A second token uses the same signing key (created once per tenant).
    let second = app.token_for(&tenant, "u2", "movie-1").await;
    assert_eq!(decode_part(&second, 0)["kid"], header["kid"]);
}

#[tokio::test]
async fn token_requests_are_validated_field_by_field() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let key = &tenant.api_key;
    let cases = [
        (json!({"content_id": "m"}), 1011, "user_id"),
        (json!({"user_id": "", "content_id": "m"}), 1011, "user_id"),
        (
            json!({"user_id": "u", "content_id": "m", "policy": {"license_duration_seconds": "long"}}),
            1011,
            "policy.license_duration_seconds",
        ),
        (
            json!({"user_id": "u", "content_id": "m", "policy": {"licence_duration": 5}}),
            1011,
            "policy.licence_duration",
        ),
        (
            json!({"user_id": "u", "content_id": "m", "policy": {"license_duration_seconds": 999_999}}),
            4010,
            "policy.license_duration_seconds",
        ),
        (json!({"user_id": "u", "content_id": "m", "policy": {"persistent": true}}), 4010, "policy.persistent"),
        (json!({"user_id": "u", "content_id": "m", "drm": "betamax"}), 1011, "drm"),
        (json!({"user_id": "u", "content_id": "m", "ttl_seconds": 100_000}), 1011, "ttl_seconds"),
    ];
    for (body, code, field) in cases {
        let problem = assert_problem(app.post("/api/v1/tokens", key, &body).await, 422, code).await;
        assert_eq!(problem["field"], field, "{body}");
    }
    let malformed = app.http.post(app.url("/api/v1/tokens")).bearer_auth(key).body("not json").send().await.unwrap();
    assert_problem(malformed, 400, 1010).await;
    assert_problem(
        app.post("/api/v1/tokens", "clv_wrong", &json!({"user_id": "u", "content_id": "m"})).await,
        401,
        2002,
    )
    .await;
}

#[tokio::test]
async fn tenant_settings_shape_new_tokens() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let settings = app
        .http
        .patch(app.url("/api/v1/tenant/settings"))
        .bearer_auth(&tenant.api_key)
        .json(&json!({"token_ttl_seconds": 60, "default_policy": {"license_duration_seconds": 3600, "persistent": false}}))
        .send()
        .await
        .unwrap();
    assert_eq!(settings.status(), 200);
    let settings: Value = settings.json().await.unwrap();
    assert_eq!(settings["token_ttl_seconds"], 60);
    let view: Value = app.get("/api/v1/tenant", &tenant.api_key).await.json().await.unwrap();
    assert_eq!(view["site_id"], tenant.site_id.as_str());
    assert_eq!(view["settings"]["default_policy"]["license_duration_seconds"], 3600);

    let token = app.token_for(&tenant, "u1", "m").await;
    let claims = decode_part(&token, 1);
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 60);
    // The policy may narrow the new default but not exceed it.
    let narrowed = app
        .mint_token(&tenant, json!({"user_id": "u", "content_id": "m", "policy": {"license_duration_seconds": 600}}))
        .await;
    assert_eq!(decode_part(&narrowed, 1)["policy"]["license_duration_seconds"], 600);
    let wider = json!({"user_id": "u", "content_id": "m", "policy": {"license_duration_seconds": 7200}});
    assert_problem(app.post("/api/v1/tokens", &tenant.api_key, &wider).await, 422, 4010).await;

    let bad = app
        .http
        .patch(app.url("/api/v1/tenant/settings"))
        .bearer_auth(&tenant.api_key)
        .json(&json!({"clock_skew_seconds": 99_999}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(bad, 422, 1011).await;
    assert_eq!(problem["field"], "clock_skew_seconds");
    let bad = app
        .http
        .patch(app.url("/api/v1/tenant/settings"))
        .bearer_auth(&tenant.api_key)
        .json(&json!({"allowed_origins": ["not an origin"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(assert_problem(bad, 422, 1011).await["field"], "allowed_origins");
}
