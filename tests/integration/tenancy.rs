//! Multi-tenancy is the security boundary: one tenant cannot read or use another's keys, tokens, settings or logs.

use base64::Engine;
use serde_json::{Value, json};

use crate::kit::{TestApp, assert_problem};

#[tokio::test]
async fn tenants_cannot_reach_each_others_keys_tokens_settings_or_logs() {
    let app = TestApp::spawn().await;
    let alice = app.create_tenant("Alice Films").await;
    let bob = app.create_tenant("Bob Streams").await;
    let alice_keys = app.create_keys(&alice, json!({"content_id": "movie-1"})).await;
    let alice_kid = alice_keys["keys"][0]["kid"].as_str().unwrap().to_owned();
    let alice_token = app.token_for(&alice, "viewer", "movie-1").await;
    assert_eq!(app.clearkey(&alice_token, &[&alice_kid]).await.status(), 200);

    // Bob's API key cannot read Alice's content; asking for the same content id makes Bob's own, different keys.
    assert_problem(app.get("/api/v1/keys/movie-1", &bob.api_key).await, 404, 3001).await;
    let bob_keys = app.create_keys(&bob, json!({"content_id": "movie-1"})).await;
    assert_eq!(app.post("/api/v1/keys", &bob.api_key, &json!({"content_id": "movie-1"})).await.status(), 200);
    assert_ne!(bob_keys["keys"][0]["kid"], alice_keys["keys"][0]["kid"]);
    assert_ne!(bob_keys["keys"][0]["key"], alice_keys["keys"][0]["key"]);
    let alice_again: Value = app.get("/api/v1/keys/movie-1", &alice.api_key).await.json().await.unwrap();
    assert_eq!(alice_again, alice_keys, "Bob's request changed nothing of Alice's");

    // Bob's valid token, for the same content id, cannot unlock Alice's KID.
    let bob_token = app.token_for(&bob, "viewer", "movie-1").await;
    assert_problem(app.clearkey(&bob_token, &[&alice_kid]).await, 403, 5002).await;

    // Re-labelling Bob's token as Alice's (iss) breaks its signature.
    let parts: Vec<&str> = bob_token.split('.').collect();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
    claims["iss"] = json!(alice.site_id);
    let relabelled = format!("{}.{}.{}", parts[0], engine.encode(claims.to_string()), parts[2]);
    let refused = app.clearkey(&relabelled, &[&alice_kid]).await;
    assert!(matches!(refused.status().as_u16(), 401), "{}", refused.status());
    let body: Value = refused.json().await.unwrap();
    assert!(matches!(body["code"].as_u64(), Some(4003 | 4004)), "{body}");

    // Settings are per tenant.
    let patch = app
        .http
        .patch(app.url("/api/v1/tenant/settings"))
        .bearer_auth(&bob.api_key)
        .json(&json!({"allowed_origins": ["https://bob.example"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 200);
    let alice_view: Value = app.get("/api/v1/tenant", &alice.api_key).await.json().await.unwrap();
    assert_eq!(alice_view["settings"]["allowed_origins"], json!([]));
    assert_eq!(alice_view["site_id"], alice.site_id.as_str());

    // Logs are per tenant: Bob sees his refusal, never Alice's issuance.
    let bob_log = app.license_log(&bob).await;
    assert!(!bob_log.is_empty());
    assert!(bob_log.iter().all(|row| row["user_id"] == "viewer" && row["outcome"] == "denied"), "{bob_log:?}");
    let alice_log = app.license_log(&alice).await;
    assert!(alice_log.iter().any(|row| row["outcome"] == "issued"));
    assert!(alice_log.iter().all(|row| row["kids"] == json!([alice_kid])), "{alice_log:?}");
}
