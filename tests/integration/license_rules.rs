//! The license rules that remember (seed documents 000, 002, 004), through ClearKey with the `X-Clavis-*` request
//! headers: device limits (with freeing a device), concurrent streams held by renewals, message replay and its time
//! window, client state rollback (refused and flagged), and versioned server configuration data. Concurrent
//! requests prove the limits hold when they race.

use base64::Engine;
use serde_json::{Value, json};

use crate::kit::{TestApp, TestTenant, assert_problem, b64url};

async fn tenant_with_content(app: &TestApp, name: &str) -> (TestTenant, String) {
    let tenant = app.create_tenant(name).await;
    let keys = app.create_keys(&tenant, json!({"content_id": "movie"})).await;
    (tenant, keys["keys"][0]["kid"].as_str().unwrap().to_owned())
}

/// A ClearKey request with extra headers.
async fn license(app: &TestApp, token: &str, kid: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app
        .http
        .post(app.url("/license/clearkey"))
        .header("X-Clavis-Token", token)
        .body(json!({"kids": [b64url(&hex::decode(kid).unwrap())], "type": "temporary"}).to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn devices_past_the_limit_are_refused_until_one_is_freed_even_when_they_race() {
    let app = TestApp::spawn().await;
    let (tenant, kid) = tenant_with_content(&app, "Acme").await;
    let token =
        app.mint_token(&tenant, json!({"user_id": "u1", "content_id": "movie", "policy": {"max_devices": 2}})).await;
    for device in ["tv", "phone", "tv"] {
        assert_eq!(license(&app, &token, &kid, &[("X-Clavis-Device", device)]).await.status(), 200, "{device}");
    }
    let body = assert_problem(license(&app, &token, &kid, &[("X-Clavis-Device", "tablet")]).await, 403, 5041).await;
    assert!(body["detail"].as_str().unwrap().contains("2 devices"), "{body}");

    let listed: Value = app.get("/api/v1/users/u1/devices", &tenant.api_key).await.json().await.unwrap();
    let mut ids: Vec<&str> = listed.as_array().unwrap().iter().map(|d| d["device_id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["phone", "tv"]);
    assert_eq!(listed[0]["drm"], "clearkey");

    // Another tenant sees none of them and cannot free them.
    let other = app.create_tenant("Other").await;
    let theirs: Value = app.get("/api/v1/users/u1/devices", &other.api_key).await.json().await.unwrap();
    assert_eq!(theirs, json!([]));
    assert_problem(app.delete("/api/v1/users/u1/devices/tv", &other.api_key).await, 404, 5042).await;

    // Freeing a device makes room.
    assert_eq!(app.delete("/api/v1/users/u1/devices/tv", &tenant.api_key).await.status(), 204);
    assert_eq!(license(&app, &token, &kid, &[("X-Clavis-Device", "tablet")]).await.status(), 200);
    assert_problem(app.delete("/api/v1/users/u1/devices/tv", &tenant.api_key).await, 404, 5042).await;
    // The freed device is new again (its admission moments ago is not remembered): the two others fill the limit.
    assert_problem(license(&app, &token, &kid, &[("X-Clavis-Device", "tv")]).await, 403, 5041).await;
    // A remembered device is still admitted without asking the database again.
    assert_eq!(license(&app, &token, &kid, &[("X-Clavis-Device", "phone")]).await.status(), 200);

    // Twenty new devices of another user at once, with room for three: exactly three get a license.
    let token =
        app.mint_token(&tenant, json!({"user_id": "u2", "content_id": "movie", "policy": {"max_devices": 3}})).await;
    let attempts = (0..20).map(|i| {
        let (app, token, kid) = (&app, &token, &kid);
        async move {
            let device = format!("device-{i}");
            license(app, token, kid, &[("X-Clavis-Device", device.as_str())]).await.status().as_u16()
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 403).count(), 17, "{statuses:?}");

    // The log names each request's device and can be searched by it; refusals name the rule.
    app.flush_log().await;
    let rows: Value =
        app.get("/api/v1/license-log?device_id=tablet&limit=10", &tenant.api_key).await.json().await.unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r["device_id"] == "tablet"));
    assert!(rows.iter().any(|r| r["error_code"] == 5041 && r["rule"] == "policy.max_devices"));
    // A malformed device id is refused, naming the header.
    let body = assert_problem(license(&app, &token, &kid, &[("X-Clavis-Device", "two words")]).await, 400, 5001).await;
    assert_eq!(body["field"], "x-clavis-device");
}

#[tokio::test]
async fn streams_hold_slots_that_renewals_extend_and_that_free_when_they_stop_or_end() {
    let app = TestApp::spawn().await;
    let (tenant, kid) = tenant_with_content(&app, "Acme").await;
    let policy = json!({"max_concurrent_streams": 1, "renewal_interval_seconds": 30});
    let token = app.mint_token(&tenant, json!({"user_id": "u1", "content_id": "movie", "policy": policy})).await;

    let first = license(&app, &token, &kid, &[("X-Clavis-Session", "s1")]).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-clavis-session"], "s1");
    let body = assert_problem(license(&app, &token, &kid, &[("X-Clavis-Session", "s2")]).await, 403, 5063).await;
    assert!(body["detail"].as_str().unwrap().contains("movie"), "{body}");
    // A renewal of the playing stream keeps its slot.
    assert_eq!(license(&app, &token, &kid, &[("X-Clavis-Session", "s1")]).await.status(), 200);
    let streams: Value = app.get("/api/v1/users/u1/streams", &tenant.api_key).await.json().await.unwrap();
    assert_eq!(streams.as_array().unwrap().len(), 1);
    assert_eq!(streams[0]["stream_id"], "s1");
    assert_eq!(streams[0]["content_id"], "movie");

    // The tenant ends it; the other stream starts.
    assert_eq!(app.delete("/api/v1/users/u1/streams/s1", &tenant.api_key).await.status(), 204);
    assert_problem(app.delete("/api/v1/users/u1/streams/s1", &tenant.api_key).await, 404, 5064).await;
    assert_eq!(license(&app, &token, &kid, &[("X-Clavis-Session", "s2")]).await.status(), 200);
    // The ended stream's renewal moments ago is not remembered: it would be a second stream now.
    assert_problem(license(&app, &token, &kid, &[("X-Clavis-Session", "s1")]).await, 403, 5063).await;

    // When renewals stop, the slot expires: the interval and half again (at least ten seconds) later. The
    // sweeper run at that time frees it, and a new stream gets a session id from Clavis.
    let later = chrono::Utc::now().timestamp_millis() + 46_000;
    assert_eq!(app.licenses.rules().sweep(later - 2_000).await.unwrap(), 0, "not yet expired");
    assert_eq!(app.licenses.rules().sweep(later).await.unwrap(), 1);
    let fresh = license(&app, &token, &kid, &[]).await;
    assert_eq!(fresh.status(), 200);
    assert_eq!(fresh.headers()["x-clavis-session"].len(), 32, "a session id made by Clavis");

    // Ten new streams of another user at once, with room for two: exactly two.
    let policy = json!({"max_concurrent_streams": 2, "renewal_interval_seconds": 30});
    let token = app.mint_token(&tenant, json!({"user_id": "u2", "content_id": "movie", "policy": policy})).await;
    let attempts = (0..10).map(|_| {
        let (app, token, kid) = (&app, &token, &kid);
        async move { license(app, token, kid, &[]).await.status().as_u16() }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 2, "{statuses:?}");

    // A refused single-use token gives its new slot back.
    let policy = json!({"max_concurrent_streams": 1, "renewal_interval_seconds": 30, "single_use": true});
    let once = app.mint_token(&tenant, json!({"user_id": "u3", "content_id": "movie", "policy": policy})).await;
    assert_eq!(license(&app, &once, &kid, &[("X-Clavis-Session", "a")]).await.status(), 200);
    assert_problem(license(&app, &once, &kid, &[("X-Clavis-Session", "b")]).await, 403, 5063).await;
    assert_eq!(app.delete("/api/v1/users/u3/streams/a", &tenant.api_key).await.status(), 204);
    assert_problem(license(&app, &once, &kid, &[("X-Clavis-Session", "b")]).await, 403, 4011).await;
    let streams: Value = app.get("/api/v1/users/u3/streams", &tenant.api_key).await.json().await.unwrap();
    assert_eq!(streams, json!([]), "the refused request holds no slot");
}

#[tokio::test]
async fn replayed_messages_rolled_back_clients_and_server_configuration_versions() {
    let app = TestApp::spawn().await;
    let (tenant, kid) = tenant_with_content(&app, "Acme").await;
    let token = app.token_for(&tenant, "u1", "movie").await;
    let now = chrono::Utc::now().timestamp().to_string();

    // A message id is used once; its time must be within the window (600 s by default).
    let message = [("X-Clavis-Message-Id", "m-1"), ("X-Clavis-Message-Time", now.as_str())];
    assert_eq!(license(&app, &token, &kid, &message).await.status(), 200);
    assert_problem(license(&app, &token, &kid, &message).await, 403, 5060).await;
    let old = (chrono::Utc::now().timestamp() - 3600).to_string();
    let stale = [("X-Clavis-Message-Id", "m-2"), ("X-Clavis-Message-Time", old.as_str())];
    assert_problem(license(&app, &token, &kid, &stale).await, 403, 5061).await;
    // Replay ids are per tenant.
    let (other, other_kid) = tenant_with_content(&app, "Other").await;
    let other_token = app.token_for(&other, "u1", "movie").await;
    assert_eq!(license(&app, &other_token, &other_kid, &message).await.status(), 200);

    // The client state counter of a device never goes back; a rollback is refused and flagged.
    for state in ["5", "7", "7"] {
        let headers = [("X-Clavis-Device", "tv"), ("X-Clavis-Client-State", state)];
        assert_eq!(license(&app, &token, &kid, &headers).await.status(), 200, "state {state}");
    }
    let rolled = [("X-Clavis-Device", "tv"), ("X-Clavis-Client-State", "6")];
    let body = assert_problem(license(&app, &token, &kid, &rolled).await, 403, 5062).await;
    assert!(body["detail"].as_str().unwrap().contains("showed 7 before"), "{body}");
    app.flush_log().await;
    let flagged: Value = app.get("/api/v1/license-log?flagged=true", &tenant.api_key).await.json().await.unwrap();
    let flagged = flagged.as_array().unwrap();
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    assert_eq!((flagged[0]["flag"].as_str(), flagged[0]["rule"].as_str()), (Some("rollback"), Some("rollback")));
    // Another tenant's device of the same name has its own counter.
    let headers = [("X-Clavis-Device", "tv"), ("X-Clavis-Client-State", "1")];
    assert_eq!(license(&app, &other_token, &other_kid, &headers).await.status(), 200);

    // Server configuration data: every answer names the version; a client holding an older one gets it.
    let response = license(&app, &token, &kid, &[("X-Clavis-Config-Version", "1")]).await;
    assert_eq!(response.headers()["x-clavis-server-config-version"], "1");
    assert!(response.headers().get("x-clavis-server-config").is_none(), "the client is current");
    let patch = json!({"server_config": {"clock_windback_tolerance_seconds": 120, "rollback_detection": false}});
    let settings: Value = app
        .http
        .patch(app.url("/api/v1/tenant/settings"))
        .bearer_auth(&tenant.api_key)
        .json(&patch)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(settings["server_config"]["version"], 2, "{settings}");
    let response = license(&app, &token, &kid, &[("X-Clavis-Config-Version", "1")]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-clavis-server-config-version"], "2");
    let config = response.headers()["x-clavis-server-config"].to_str().unwrap().to_owned();
    let config: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(config).unwrap()).unwrap();
    assert_eq!(config["version"], 2);
    assert_eq!(config["clock_windback_tolerance_seconds"], 120);
    // The same values again are no new version; with rollback detection off, the rolled-back client passes.
    let settings: Value = app
        .http
        .patch(app.url("/api/v1/tenant/settings"))
        .bearer_auth(&tenant.api_key)
        .json(&patch)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(settings["server_config"]["version"], 2);
    assert_eq!(license(&app, &token, &kid, &rolled).await.status(), 200);
    // Out of range, named.
    let bad = json!({"server_config": {"message_time_tolerance_seconds": 0}});
    let response = app
        .http
        .patch(app.url("/api/v1/tenant/settings"))
        .bearer_auth(&tenant.api_key)
        .json(&bad)
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 422, 1011).await;
    assert_eq!(body["field"], "server_config.message_time_tolerance_seconds");
    // Players can read the headers through CORS.
    let response = app
        .http
        .post(app.url("/license/clearkey"))
        .header("Origin", "https://player.example.com")
        .header("X-Clavis-Token", &token)
        .body(json!({"kids": [b64url(&hex::decode(&kid).unwrap())], "type": "temporary"}).to_string())
        .send()
        .await
        .unwrap();
    let exposed = response.headers()["access-control-expose-headers"].to_str().unwrap();
    for header in ["x-clavis-session", "x-clavis-server-config", "x-clavis-server-config-version"] {
        assert!(exposed.contains(header), "{exposed}");
    }
}

#[tokio::test]
async fn the_console_shows_a_users_devices_and_streams_and_frees_them() {
    use crate::console::{create_key, signed_in, signed_up};

    let app = TestApp::spawn().await;
    let email = signed_up(&app, "Rule Films").await;
    let mut owner = signed_in(&app, &email).await;
    let (_, api_key) = create_key(&mut owner, "backend").await;
    let info: Value = app.get("/api/v1/tenant", &api_key).await.json().await.unwrap();
    let tenant = TestTenant {
        tenant_id: info["id"].as_str().unwrap_or_default().to_owned(),
        site_id: info["site_id"].as_str().unwrap().to_owned(),
        api_key,
    };
    let keys = app.create_keys(&tenant, json!({"content_id": "movie"})).await;
    let kid = keys["keys"][0]["kid"].as_str().unwrap().to_owned();
    let policy = json!({"max_devices": 1, "max_concurrent_streams": 1, "renewal_interval_seconds": 60});
    let token =
        app.mint_token(&tenant, json!({"user_id": "viewer <7>", "content_id": "movie", "policy": policy})).await;
    let tv = [("X-Clavis-Device", "tv-1"), ("X-Clavis-Session", "evening")];
    assert_eq!(license(&app, &token, &kid, &tv).await.status(), 200);
    let phone = [("X-Clavis-Device", "phone-1"), ("X-Clavis-Session", "bus")];
    assert_problem(license(&app, &token, &kid, &phone).await, 403, 5041).await;

    let page = owner.get("/console/devices?user_id=viewer%20%3C7%3E").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Devices with licenses of viewer &#60;7&#62;"), "{}", page.body);
    assert!(page.body.contains("<code>tv-1</code>") && page.body.contains("<code>evening</code>"), "{}", page.body);
    // Without a user the lists are not shown.
    assert!(!owner.get("/console/devices").await.body.contains("id=\"licensed\""));

    let back = "/console/devices?user_id=viewer%20%3C7%3E";
    let freed = owner.submit(back, "/console/devices/free", &[("user_id", "viewer <7>"), ("device_id", "tv-1")]).await;
    assert_eq!(freed.status, 303);
    assert_eq!(freed.location.as_deref(), Some("/console/devices?user_id=viewer%20%3C7%3E&done=freed"));
    let page = owner.get(back).await;
    assert!(!page.body.contains("<code>tv-1</code>"), "the device and its stream are gone: {}", page.body);
    assert_eq!(license(&app, &token, &kid, &phone).await.status(), 200, "the freed device made room");
    let ended = owner.submit(back, "/console/streams/end", &[("user_id", "viewer <7>"), ("stream_id", "bus")]).await;
    assert_eq!(ended.status, 303);
    let streams: Value = app.get("/api/v1/users/viewer%20%3C7%3E/streams", &tenant.api_key).await.json().await.unwrap();
    assert_eq!(streams, json!([]));
    // Unknown ones are not found; without the form token nothing happens.
    let again = owner.submit(back, "/console/streams/end", &[("user_id", "viewer <7>"), ("stream_id", "bus")]).await;
    assert_eq!((again.status, again.code.as_deref()), (404, Some("5064")));
    let forged = owner.post("/console/devices/free", &[("user_id", "viewer <7>"), ("device_id", "phone-1")]).await;
    assert_eq!((forged.status, forged.code.as_deref()), (403, Some("2021")));
}
