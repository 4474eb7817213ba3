//! The policy model on the license path: single-use tokens (replay protection), allowed tracks, client networks,
//! absolute expiry, and refusal of widening token policies.

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::kit::{TestApp, TestTenant, assert_problem};

/// A tenant with content `movie` keyed per track (SD, HD, AUDIO); returns the KIDs in that order.
async fn tenant_with_tracks(app: &TestApp) -> (TestTenant, Vec<String>) {
    let tenant = app.create_tenant("Acme").await;
    let keys = app.create_keys(&tenant, json!({"content_id": "movie", "tracks": ["SD", "HD", "AUDIO"]})).await;
    let kids = keys["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect();
    (tenant, kids)
}

async fn token(app: &TestApp, tenant: &TestTenant, policy: Value) -> String {
    app.mint_token(tenant, json!({"user_id": "viewer", "content_id": "movie", "policy": policy})).await
}

#[tokio::test]
async fn a_single_use_token_yields_exactly_one_license_under_100_concurrent_uses() {
    let app = TestApp::spawn().await;
    let (tenant, kids) = tenant_with_tracks(&app).await;
    let token = token(&app, &tenant, json!({"single_use": true})).await;
    let sd = kids[0].as_str();
    let sd_kids = [sd];
    let answers = join_all((0..100).map(|_| app.clearkey(&token, &sd_kids))).await;
    let mut issued = 0;
    for answer in answers {
        if answer.status() == 200 {
            issued += 1;
        } else {
            assert_problem(answer, 403, 4011).await;
        }
    }
    assert_eq!(issued, 1, "exactly one of 100 concurrent uses gets a license");
    let log = app.license_log(&tenant).await;
    assert_eq!(log.iter().filter(|row| row["outcome"] == "issued").count(), 1);
    assert_eq!(log.iter().filter(|row| row["error_code"] == 4011).count(), 99);
    assert!(log.iter().filter(|row| row["error_code"] == 4011).all(|row| row["rule"] == "replay"));

    // Tokens without single_use stay reusable.
    let reusable = app.token_for(&tenant, "viewer", "movie").await;
    for _ in 0..3 {
        assert_eq!(app.clearkey(&reusable, &[sd]).await.status(), 200);
    }
}

#[tokio::test]
async fn a_refused_request_does_not_burn_a_single_use_token_and_expired_entries_are_swept() {
    let app = TestApp::spawn().await;
    let (tenant, kids) = tenant_with_tracks(&app).await;
    let token = token(&app, &tenant, json!({"single_use": true})).await;
    // A request refused for another reason (a KID that is not the content's) leaves the token unused.
    assert_problem(app.clearkey(&token, &["00000000000000000000000000000001"]).await, 403, 5002).await;
    assert_eq!(app.clearkey(&token, &[kids[0].as_str()]).await.status(), 200);
    assert_problem(app.clearkey(&token, &[kids[0].as_str()]).await, 403, 4011).await;

    // The ledger keeps the entry while the token could verify, and forgets it after.
    let replay = app.tokens.replay();
    assert_eq!(replay.sweep(chrono::Utc::now().timestamp_millis()).await.unwrap(), 0);
    assert_problem(app.clearkey(&token, &[kids[0].as_str()]).await, 403, 4011).await;
    let far_future = chrono::Utc::now().timestamp_millis() + 10 * 24 * 3600 * 1000;
    assert_eq!(replay.sweep(far_future).await.unwrap(), 1);
}

#[tokio::test]
async fn single_use_is_per_tenant() {
    let app = TestApp::spawn().await;
    let (acme, _) = tenant_with_tracks(&app).await;
    let (other, _) = tenant_with_tracks(&app).await;
    let replay = app.tokens.replay();
    let acme_id = clavis_core::ids::TenantId(acme.tenant_id.parse().unwrap());
    let other_id = clavis_core::ids::TenantId(other.tenant_id.parse().unwrap());
    let until = chrono::Utc::now().timestamp_millis() + 60_000;
    replay.claim(acme_id, "native", "same-jti", until).await.unwrap();
    replay.claim(other_id, "native", "same-jti", until).await.unwrap();
    replay.claim(acme_id, "drmtoday", "same-jti", until).await.unwrap();
    assert_eq!(replay.claim(acme_id, "native", "same-jti", until).await.unwrap_err().code.code(), 4011);
}

#[tokio::test]
async fn allowed_tracks_limit_which_keys_are_delivered() {
    let app = TestApp::spawn().await;
    let (tenant, kids) = tenant_with_tracks(&app).await;
    let sd_and_audio = token(&app, &tenant, json!({"allowed_tracks": ["SD", "AUDIO"]})).await;
    assert_eq!(app.clearkey(&sd_and_audio, &[kids[0].as_str(), kids[2].as_str()]).await.status(), 200);
    let body =
        assert_problem(app.clearkey(&sd_and_audio, &[kids[0].as_str(), kids[1].as_str()]).await, 403, 5006).await;
    assert!(body["detail"].as_str().unwrap().contains("HD"), "{body}");
    let log = app.license_log(&tenant).await;
    assert_eq!(log[0]["rule"], "policy.allowed_tracks", "{}", log[0]);

    // A tenant default narrows every token: an SD-only tenant delivers no HD key even to a token that asks nothing.
    let patched = app
        .http
        .patch(app.url("/api/v1/tenant/settings"))
        .bearer_auth(&tenant.api_key)
        .json(&json!({"default_policy": {"license_duration_seconds": 3600, "allowed_tracks": ["SD"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let plain = app.token_for(&tenant, "viewer", "movie").await;
    assert_problem(app.clearkey(&plain, &[kids[1].as_str()]).await, 403, 5006).await;
    assert_eq!(app.clearkey(&plain, &[kids[0].as_str()]).await.status(), 200);
    // And the token API refuses a token that asks for more, naming the field.
    let wider = app
        .post(
            "/api/v1/tokens",
            &tenant.api_key,
            &json!({"user_id": "u", "content_id": "movie", "policy": {"allowed_tracks": ["SD", "HD"]}}),
        )
        .await;
    assert_eq!(assert_problem(wider, 422, 4010).await["field"], "policy.allowed_tracks");
}

#[tokio::test]
async fn client_networks_and_absolute_expiry_are_enforced() {
    let app = TestApp::spawn().await;
    let (tenant, kids) = tenant_with_tracks(&app).await;
    let sd = kids[0].as_str();
    let elsewhere = token(&app, &tenant, json!({"allowed_client_networks": ["198.51.100.0/24"]})).await;
    assert_problem(app.clearkey(&elsewhere, &[sd]).await, 403, 5007).await;
    let local = token(&app, &tenant, json!({"allowed_client_networks": ["127.0.0.0/8", "::1"]})).await;
    assert_eq!(app.clearkey(&local, &[sd]).await.status(), 200);

    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let expired = token(&app, &tenant, json!({"expires_at": past})).await;
    assert_problem(app.clearkey(&expired, &[sd]).await, 403, 5008).await;
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let current = token(&app, &tenant, json!({"expires_at": future})).await;
    assert_eq!(app.clearkey(&current, &[sd]).await.status(), 200);

    // Malformed policy fields are refused by the token API with the field's path.
    for (policy, field) in [
        (json!({"allowed_client_networks": ["10.0.0.0/40"]}), "policy.allowed_client_networks[0]"),
        (json!({"widevine": {"min_security_level": 7}}), "policy.widevine.min_security_level"),
        (json!({"fairplay": {"allow_airplay": "yes"}}), "policy.fairplay.allow_airplay"),
        (json!({"max_devices": -1}), "policy.max_devices"),
    ] {
        let refused = app
            .post("/api/v1/tokens", &tenant.api_key, &json!({"user_id": "u", "content_id": "movie", "policy": policy}))
            .await;
        let body = refused.json::<Value>().await.unwrap();
        assert_eq!(body["field"], field, "{body}");
    }
}

#[tokio::test]
async fn a_contents_own_policy_narrows_every_token_for_it() {
    let app = TestApp::spawn().await;
    let (tenant, kids) = tenant_with_tracks(&app).await;
    let put = |policy: Value| {
        app.http.put(app.url("/api/v1/contents/movie/policy")).bearer_auth(&tenant.api_key).json(&policy).send()
    };
    let set = put(json!({"allowed_tracks": ["SD", "AUDIO"], "widevine": {"min_security_level": 5}})).await.unwrap();
    assert_eq!(set.status(), 200);
    let view: Value = set.json().await.unwrap();
    assert_eq!(view["policy"]["allowed_tracks"], json!(["SD", "AUDIO"]));
    assert_eq!(view["keys"].as_array().unwrap().len(), 3);
    assert!(view["keys"].as_array().unwrap().iter().all(|k| k.get("key").is_none()), "key values are never shown");

    let plain = app.token_for(&tenant, "viewer", "movie").await;
    assert_eq!(app.clearkey(&plain, &[kids[0].as_str()]).await.status(), 200);
    assert_problem(app.clearkey(&plain, &[kids[1].as_str()]).await, 403, 5006).await;

    // A content policy may not widen the tenant default (one-day, temporary licenses).
    let wider = put(json!({"persistent": true})).await.unwrap();
    assert_eq!(assert_problem(wider, 422, 4010).await["field"], "policy.persistent");
    // `{}` clears it.
    assert_eq!(put(json!({})).await.unwrap().status(), 200);
    assert_eq!(app.clearkey(&plain, &[kids[1].as_str()]).await.status(), 200);
    let view: Value = app.get("/api/v1/contents/movie", &tenant.api_key).await.json().await.unwrap();
    assert!(view.get("policy").is_none(), "{view}");

    // Other tenants neither read nor set it.
    let other = app.create_tenant("Other").await;
    assert_problem(app.get("/api/v1/contents/movie", &other.api_key).await, 404, 3001).await;
    let foreign = app
        .http
        .put(app.url("/api/v1/contents/movie/policy"))
        .bearer_auth(&other.api_key)
        .json(&json!({"allowed_tracks": ["SD"]}))
        .send()
        .await
        .unwrap();
    assert_problem(foreign, 404, 3001).await;
}
