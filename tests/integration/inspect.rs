//! The token inspector: decode, verify, effective policy, and the exact reason a license would be refused, without
//! issuing, logging or using the token up.

use serde_json::{Value, json};

use crate::kit::{TestApp, TestTenant};

async fn inspect(app: &TestApp, tenant: &TestTenant, body: Value) -> Value {
    let response = app.post("/api/v1/tokens/inspect", &tenant.api_key, &body).await;
    let status = response.status();
    let json: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{json}");
    json
}

#[tokio::test]
async fn the_inspector_explains_a_good_token_and_each_refusal() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let keys = app.create_keys(&tenant, json!({"content_id": "movie", "tracks": ["SD", "HD"]})).await;
    let sd = keys["keys"][0]["kid"].as_str().unwrap().to_owned();
    let hd = keys["keys"][1]["kid"].as_str().unwrap().to_owned();
    let token = app
        .mint_token(&tenant, json!({"user_id": "viewer", "content_id": "movie", "policy": {"allowed_tracks": ["SD"], "single_use": true}}))
        .await;

    let good = inspect(&app, &tenant, json!({"token": token, "kids": [sd]})).await;
    assert_eq!(good["license_would_be_issued"], true, "{good}");
    assert_eq!(good["user_id"], "viewer");
    assert_eq!(good["content_id"], "movie");
    assert_eq!(good["decoded"]["claims"]["iss"], tenant.site_id.as_str());
    assert_eq!(good["decoded"]["header"]["alg"], "HS256");
    // The effective policy combines the tenant default (one day, temporary) with the token's.
    assert_eq!(good["effective_policy"]["license_duration_seconds"], 86400);
    assert_eq!(good["effective_policy"]["allowed_tracks"], json!(["SD"]));

    let hd_refused = inspect(&app, &tenant, json!({"token": token, "kids": [hd]})).await;
    assert_eq!(hd_refused["license_would_be_issued"], false);
    assert_eq!(hd_refused["refusal"]["code"], 5006);
    assert_eq!(hd_refused["refusal"]["rule"], "policy.allowed_tracks");
    assert!(hd_refused["refusal"]["remedy"].as_str().unwrap().contains("allowed_tracks"));

    let persistent = inspect(&app, &tenant, json!({"token": token, "session_type": "persistent-license"})).await;
    assert_eq!(persistent["refusal"]["code"], 5004);

    // Another user's name in the claims, the original signature.
    let tampered = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let parts: Vec<&str> = token.split('.').collect();
        let mut claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
        claims["sub"] = json!("someone-else");
        format!("{}.{}.{}", parts[0], b64.encode(claims.to_string()), parts[2])
    };
    let bad = inspect(&app, &tenant, json!({"token": tampered})).await;
    assert_eq!(bad["refusal"]["code"], 4003);
    assert!(bad["decoded"]["claims"]["cid"] == "movie", "a refused token is still decoded: {bad}");
    assert_eq!(inspect(&app, &tenant, json!({"token": "garbage"})).await["refusal"]["code"], 4002);

    // Inspecting does not use the single-use token up, log anything or issue anything...
    assert_eq!(app.clearkey(&token, &[sd.as_str()]).await.status(), 200);
    let log = app.license_log(&tenant).await;
    assert_eq!(log.len(), 1, "only the real request is logged");
    // ...and after the real use, the inspector says it was used.
    let replayed = inspect(&app, &tenant, json!({"token": token, "kids": [sd]})).await;
    assert_eq!(replayed["refusal"]["code"], 4011);
    assert_eq!(replayed["refusal"]["rule"], "replay");
}

#[tokio::test]
async fn another_tenants_token_is_not_judged() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("Acme").await;
    let other = app.create_tenant("Other").await;
    app.create_keys(&acme, json!({"content_id": "movie"})).await;
    let token = app.token_for(&acme, "viewer", "movie").await;
    let answer = inspect(&app, &other, json!({"token": token})).await;
    assert_eq!(answer["license_would_be_issued"], false);
    assert_eq!(answer["refusal"]["code"], 4007);
    assert!(answer.get("effective_policy").is_none() && answer.get("user_id").is_none(), "{answer}");

    let bad = app.post("/api/v1/tokens/inspect", &acme.api_key, &json!({"token": token, "format": "jwe"})).await;
    assert_eq!(bad.status(), 422);
    let bad = app.post("/api/v1/tokens/inspect", &acme.api_key, &json!({"token": token, "kids": ["xyz"]})).await;
    assert_eq!(bad.json::<Value>().await.unwrap()["field"], "kids[0]");
}
