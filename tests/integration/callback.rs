//! Callback mode: the tenant's settings, the signed exchange with the tenant's backend, every refusal, and the
//! outbound safety rules. The "tenant backend" here is the tenant's own service (a small HTTP/1.1 server on
//! 127.0.0.1 that checks Clavis's signature and answers), so these servers allow private callback targets unless a
//! test is about the SSRF rules.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use clavis::ServiceSet;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::kit::{TestApp, TestTenant, assert_problem, b64url};

pub(crate) const SECRET: [u8; 32] = *b"0123456789abcdef0123456789abcdef";

/// How the tenant backend answers.
#[derive(Clone)]
pub(crate) enum Behaviour {
    Allow(Value),
    WrongNonce,
    NoNonce,
    BadSignature,
    Slow(Duration),
    Status(u16),
    Malformed,
    Deny(&'static str),
    Redirect(String),
}

/// One request as the backend received it.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    signature_valid: bool,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub(crate) fn facts(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut message = timestamp.as_bytes().to_vec();
    message.push(b'.');
    message.extend_from_slice(body);
    hex::encode(ring::hmac::sign(&key, &message).as_ref())
}

/// The tenant's backend: verifies the signature Clavis sent, records the request, answers per `behaviour`.
pub(crate) struct Backend {
    pub(crate) url: String,
    behaviour: Arc<Mutex<Behaviour>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Backend {
    pub(crate) async fn start(behaviour: Behaviour) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}/clavis/callback", listener.local_addr().unwrap().port());
        let behaviour = Arc::new(Mutex::new(behaviour));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (b, r) = (behaviour.clone(), received.clone());
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else { return };
                let (b, r) = (b.clone(), r.clone());
                tokio::spawn(async move { serve(socket, b, r).await });
            }
        });
        Backend { url, behaviour, received }
    }

    pub(crate) fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    pub(crate) fn last(&self) -> Received {
        self.received.lock().unwrap().last().cloned().expect("the backend received a request")
    }

    pub(crate) fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

async fn serve(mut socket: tokio::net::TcpStream, behaviour: Arc<Mutex<Behaviour>>, log: Arc<Mutex<Vec<Received>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut chunk).await.unwrap();
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap().to_owned();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await.unwrap();
        body.extend_from_slice(&chunk[..n]);
    }
    let header = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let timestamp = header("x-clavis-timestamp").unwrap_or_default();
    let signature_valid = header("x-clavis-signature").as_deref() == Some(sign(&SECRET, &timestamp, &body).as_str());
    let received = Received { request_line, headers: headers.clone(), body: body.clone(), signature_valid };
    log.lock().unwrap().push(received);
    let nonce = serde_json::from_slice::<Value>(&body).ok().and_then(|f| f["nonce"].as_str().map(str::to_owned));
    let behaviour = behaviour.lock().unwrap().clone();
    let mut secret = SECRET.to_vec();
    let (status, answer) = if !signature_valid {
        (401, json!({"error": "bad signature"}).to_string())
    } else {
        match behaviour {
            Behaviour::Allow(policy) => {
                (200, json!({"allow": true, "nonce": nonce, "user_id": "viewer-7", "policy": policy}).to_string())
            }
            Behaviour::WrongNonce => (200, json!({"allow": true, "nonce": "0".repeat(32)}).to_string()),
            Behaviour::NoNonce => (200, json!({"allow": true}).to_string()),
            Behaviour::BadSignature => {
                secret = b"another secret, not the shared one".to_vec();
                (200, json!({"allow": true, "nonce": nonce}).to_string())
            }
            Behaviour::Slow(delay) => {
                tokio::time::sleep(delay).await;
                (200, json!({"allow": true, "nonce": nonce}).to_string())
            }
            Behaviour::Status(status) => (status, json!({"error": "backend failed"}).to_string()),
            Behaviour::Malformed => (200, "{\"allow\": tru".to_owned()),
            Behaviour::Deny(reason) => (200, json!({"allow": false, "nonce": nonce, "reason": reason}).to_string()),
            Behaviour::Redirect(location) => {
                let response = format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n");
                socket.write_all(response.as_bytes()).await.ok();
                return;
            }
        }
    };
    let now = chrono::Utc::now().timestamp().to_string();
    let signature = sign(&secret, &now, answer.as_bytes());
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-Clavis-Timestamp: {now}\r\n\
         X-Clavis-Signature: {signature}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
    socket.write_all(response.as_bytes()).await.ok();
}

pub(crate) async fn spawn_allowing_private() -> TestApp {
    TestApp::spawn_with(ServiceSet::ALL, |config| config.callback_allow_private_networks = true).await
}

/// A tenant with content "movie" (SD, HD and audio keys); returns the KIDs in that order.
async fn tenant_with_content(app: &TestApp, name: &str) -> (TestTenant, Vec<String>) {
    let tenant = app.create_tenant(name).await;
    let keys = app.create_keys(&tenant, json!({"content_id": "movie", "tracks": ["SD", "HD", "AUDIO"]})).await;
    let kids = (0..3).map(|i| keys["keys"][i]["kid"].as_str().unwrap().to_owned()).collect();
    (tenant, kids)
}

pub(crate) async fn configure(app: &TestApp, tenant: &TestTenant, url: &str) {
    let response = app
        .put(
            "/api/v1/integrations/callback",
            &tenant.api_key,
            &json!({"mode": "callback", "url": url, "shared_secret": base64::engine::general_purpose::STANDARD.encode(SECRET), "timeout_ms": 800}),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
}

async fn callback_license(app: &TestApp, value: &str, kids: &[&str], session_type: &str) -> reqwest::Response {
    let kids: Vec<String> = kids.iter().map(|k| b64url(&hex::decode(k).unwrap())).collect();
    app.http
        .post(app.url("/license/clearkey"))
        .header("X-Clavis-Callback", value)
        .header("User-Agent", "TestPlayer/1.0")
        .body(json!({"kids": kids, "type": session_type}).to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_license_is_issued_under_the_callbacks_policy_and_the_request_is_signed() {
    let app = spawn_allowing_private().await;
    let (tenant, kids) = tenant_with_content(&app, "Acme").await;
    let backend = Backend::start(Behaviour::Allow(json!({"allowed_tracks": ["SD"], "persistent": true}))).await;
    configure(&app, &tenant, &backend.url).await;
    let value = format!("{}.session-abc", tenant.site_id);

    let response = callback_license(&app, &value, &[&kids[0]], "temporary").await;
    assert_eq!(response.status(), 200);
    let license: Value = response.json().await.unwrap();
    assert_eq!(license["keys"][0]["kid"], b64url(&hex::decode(&kids[0]).unwrap()));

    // The exact request Clavis sent.
    let sent = backend.last();
    assert!(sent.signature_valid, "the signature verifies with the shared secret");
    assert_eq!(sent.request_line, "POST /clavis/callback HTTP/1.1");
    assert_eq!(sent.header("content-type"), Some("application/json"));
    let timestamp: i64 = sent.header("x-clavis-timestamp").unwrap().parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 10);
    let facts = sent.facts();
    assert_eq!(facts["type"], "license_request");
    assert_eq!(facts["session"], "session-abc");
    assert_eq!(facts["site_id"], tenant.site_id);
    assert_eq!(facts["content_id"], "movie");
    assert_eq!(facts["drm"], "clearkey");
    assert_eq!(facts["kids"], json!([kids[0]]));
    assert_eq!(facts["client_ip"], "127.0.0.1");
    assert_eq!(facts["device"]["user_agent"], "TestPlayer/1.0");
    assert_eq!(facts["timestamp"], timestamp);
    let nonce = facts["nonce"].as_str().unwrap().to_owned();
    assert_eq!(nonce.len(), 32);

    // The callback's policy narrowed the tenant's: HD is refused, and `persistent: true` did not widen the tenant
    // default (temporary only).
    let hd = callback_license(&app, &value, &[&kids[1]], "temporary").await;
    let body = assert_problem(hd, 403, 5006).await;
    assert!(body["detail"].as_str().unwrap().contains("SD"), "{body}");
    assert_ne!(backend.last().facts()["nonce"], nonce, "every request gets a fresh nonce");
    assert_problem(callback_license(&app, &value, &[&kids[0]], "persistent-license").await, 403, 5004).await;

    let log = app.license_log(&tenant).await;
    assert_eq!(log.len(), 3);
    let issued = log.iter().find(|r| r["outcome"] == "issued").unwrap();
    assert_eq!(issued["rule"], "ok");
    assert_eq!(issued["user_id"], "viewer-7");
    assert_eq!(issued["content_id"], "movie");
    assert!(log.iter().any(|r| r["rule"] == "policy.allowed_tracks" && r["error_code"] == 5006));
    // The session value is the tenant's secret-ish handle: never in the log.
    assert!(!serde_json::to_string(&log).unwrap().contains("session-abc"));
}

#[tokio::test]
async fn every_bad_answer_is_refused_with_its_code() {
    let app = spawn_allowing_private().await;
    let (tenant, kids) = tenant_with_content(&app, "Acme").await;
    let backend = Backend::start(Behaviour::WrongNonce).await;
    configure(&app, &tenant, &backend.url).await;
    let value = format!("{}.s1", tenant.site_id);
    let kid = kids[0].as_str();

    assert_problem(callback_license(&app, &value, &[kid], "temporary").await, 502, 5029).await;
    backend.set(Behaviour::NoNonce);
    assert_problem(callback_license(&app, &value, &[kid], "temporary").await, 502, 5029).await;
    backend.set(Behaviour::BadSignature);
    assert_problem(callback_license(&app, &value, &[kid], "temporary").await, 502, 5028).await;
    backend.set(Behaviour::Status(500));
    let body = assert_problem(callback_license(&app, &value, &[kid], "temporary").await, 502, 5026).await;
    assert!(body["detail"].as_str().unwrap().contains("500"), "{body}");
    backend.set(Behaviour::Malformed);
    assert_problem(callback_license(&app, &value, &[kid], "temporary").await, 502, 5027).await;
    backend.set(Behaviour::Deny("subscription expired"));
    let body = assert_problem(callback_license(&app, &value, &[kid], "temporary").await, 403, 5030).await;
    assert!(body["detail"].as_str().unwrap().contains("subscription expired"), "{body}");
    backend.set(Behaviour::Allow(json!({"allowed_tracks": ["not-a-track"]})));
    assert_problem(callback_license(&app, &value, &[kid], "temporary").await, 502, 5027).await;

    // Slow backend: refused within the 800 ms budget (well under 2 s), not after the backend's 5 s.
    backend.set(Behaviour::Slow(Duration::from_secs(5)));
    let started = Instant::now();
    assert_problem(callback_license(&app, &value, &[kid], "temporary").await, 504, 5025).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(750) && took < Duration::from_millis(1500), "took {took:?}");

    // Redirects are answers, not followed: the target never sees a request.
    let target = Backend::start(Behaviour::Allow(json!({}))).await;
    backend.set(Behaviour::Redirect(target.url.clone()));
    assert_problem(callback_license(&app, &value, &[kid], "temporary").await, 502, 5026).await;
    assert_eq!(target.count(), 0, "the redirect was not followed");

    // A malformed callback value never reaches the backend.
    let before = backend.count();
    assert_problem(callback_license(&app, "no-site-id", &[kid], "temporary").await, 400, 5031).await;
    assert_problem(callback_license(&app, "ZZZZ.s1", &[kid], "temporary").await, 404, 2004).await;
    assert_eq!(backend.count(), before);

    let log = app.license_log(&tenant).await;
    let rules: Vec<(&str, i64)> =
        log.iter().rev().map(|r| (r["rule"].as_str().unwrap(), r["error_code"].as_i64().unwrap())).collect();
    assert_eq!(
        rules,
        vec![
            ("callback.nonce", 5029),
            ("callback.nonce", 5029),
            ("callback.signature", 5028),
            ("callback.status", 5026),
            ("callback.answer", 5027),
            ("callback.deny", 5030),
            ("callback.answer", 5027),
            ("callback.timeout", 5025),
            ("callback.status", 5026),
        ]
    );
}

#[tokio::test]
async fn settings_are_per_tenant_and_never_show_the_secret() {
    let app = spawn_allowing_private().await;
    let (acme, _) = tenant_with_content(&app, "Acme").await;
    let (other, other_kids) = tenant_with_content(&app, "Other").await;
    let backend = Backend::start(Behaviour::Allow(json!({}))).await;
    configure(&app, &acme, &backend.url).await;

    let view: Value = app.get("/api/v1/integrations/callback", &acme.api_key).await.json().await.unwrap();
    assert_eq!(view["mode"], "callback");
    assert_eq!(view["url"], backend.url);
    assert_eq!(view["timeout_ms"], 800);
    assert_eq!(view["shared_secret_set"], true);
    let secret_b64 = base64::engine::general_purpose::STANDARD.encode(SECRET);
    assert!(!view.to_string().contains(&secret_b64));

    // Another tenant neither reads nor uses Acme's settings.
    assert_problem(app.get("/api/v1/integrations/callback", &other.api_key).await, 404, 5020).await;
    assert_problem(app.post("/api/v1/integrations/callback/test", &other.api_key, &json!({})).await, 404, 5020).await;
    let value = format!("{}.s", other.site_id);
    assert_problem(callback_license(&app, &value, &[&other_kids[0]], "temporary").await, 404, 5020).await;
    // Acme's callback cannot be pointed at Other's content: its KIDs are not Acme's.
    let value = format!("{}.s", acme.site_id);
    assert_problem(callback_license(&app, &value, &[&other_kids[0]], "temporary").await, 403, 5002).await;
    assert_eq!(backend.count(), 0);

    // Validation, and a generated secret shown once.
    for (body, field) in [
        (json!({"mode": "callback", "url": backend.url, "shared_secret": "c2hvcnQ="}), "shared_secret"),
        (json!({"mode": "callback", "url": backend.url, "timeout_ms": 2001}), "timeout_ms"),
        (json!({"mode": "callback", "url": "ftp://example.com/"}), "url"),
    ] {
        let problem =
            assert_problem(app.put("/api/v1/integrations/callback", &other.api_key, &body).await, 422, 5021).await;
        assert_eq!(problem["field"], field);
    }
    let generated: Value = app
        .put("/api/v1/integrations/callback", &other.api_key, &json!({"mode": "token", "url": backend.url}))
        .await
        .json()
        .await
        .unwrap();
    let secret = generated["generated_shared_secret"].as_str().unwrap();
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(secret).unwrap().len(), 32);
    assert_eq!(generated["timeout_ms"], 1500);
    // Mode `token` refuses callback requests.
    let value = format!("{}.s", other.site_id);
    assert_problem(callback_license(&app, &value, &[&other_kids[0]], "temporary").await, 404, 5020).await;

    assert_eq!(app.delete("/api/v1/integrations/callback", &acme.api_key).await.status(), 204);
    assert_problem(app.get("/api/v1/integrations/callback", &acme.api_key).await, 404, 5020).await;
    assert_eq!(app.get("/api/v1/integrations/callback", &other.api_key).await.status(), 200);
}

#[tokio::test]
async fn the_test_endpoint_shows_the_exchange() {
    let app = spawn_allowing_private().await;
    let (tenant, _) = tenant_with_content(&app, "Acme").await;
    let backend = Backend::start(Behaviour::Allow(json!({}))).await;
    configure(&app, &tenant, &backend.url).await;

    let exchange: Value =
        app.post("/api/v1/integrations/callback/test", &tenant.api_key, &json!({})).await.json().await.unwrap();
    assert_eq!(exchange["ok"], true, "{exchange}");
    assert!(exchange["code"].is_null());
    let received = backend.last();
    assert_eq!(exchange["request"]["method"], "POST");
    assert_eq!(exchange["request"]["url"], backend.url);
    assert_eq!(exchange["request"]["body"].as_str().unwrap().as_bytes(), received.body.as_slice());
    let sent_headers = exchange["request"]["headers"].as_array().unwrap();
    for (name, value) in &received.headers {
        assert!(
            sent_headers.iter().any(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name) && h[1] == *value),
            "header {name} as received is in the shown request: {exchange}"
        );
    }
    assert_eq!(sent_headers.len(), received.headers.len());
    assert_eq!(received.facts()["type"], "test");
    assert_eq!(exchange["response"]["status"], 200);
    let answer: Value = serde_json::from_str(exchange["response"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(answer["nonce"], received.facts()["nonce"]);
    assert!(exchange["response"]["headers"].as_array().unwrap().iter().any(|h| h[0] == "x-clavis-signature"));
    assert!(!exchange.to_string().contains(&base64::engine::general_purpose::STANDARD.encode(SECRET)));

    backend.set(Behaviour::Deny("nope"));
    let exchange: Value =
        app.post("/api/v1/integrations/callback/test", &tenant.api_key, &json!({})).await.json().await.unwrap();
    assert_eq!(exchange["ok"], false);
    assert_eq!(exchange["code"], 5030);
    assert_eq!(exchange["response"]["status"], 200);
    backend.set(Behaviour::Slow(Duration::from_secs(3)));
    let exchange: Value =
        app.post("/api/v1/integrations/callback/test", &tenant.api_key, &json!({})).await.json().await.unwrap();
    assert_eq!(exchange["code"], 5025);
    assert!(exchange["response"].is_null());
    assert_eq!(exchange["request"]["method"], "POST");
}

#[tokio::test]
async fn private_and_metadata_targets_are_refused_unless_the_operator_allows_them() {
    // Default configuration: private targets are forbidden.
    let app = TestApp::spawn().await;
    let (tenant, kids) = tenant_with_content(&app, "Acme").await;
    let secret = base64::engine::general_purpose::STANDARD.encode(SECRET);
    for url in ["https://127.0.0.1/cb", "https://10.1.2.3/cb", "https://169.254.169.254/latest", "https://[::1]/"] {
        let response = app
            .put(
                "/api/v1/integrations/callback",
                &tenant.api_key,
                &json!({"mode": "callback", "url": url, "shared_secret": secret}),
            )
            .await;
        let problem = assert_problem(response, 422, 5022).await;
        assert_eq!(problem["field"], "url", "{url}");
    }
    // Plain http is for private networks only.
    let response = app
        .put(
            "/api/v1/integrations/callback",
            &tenant.api_key,
            &json!({"mode": "callback", "url": "http://example.com/", "shared_secret": secret}),
        )
        .await;
    assert_problem(response, 422, 5021).await;

    // A name is checked on what it resolves to, at request time: `localhost` passes the settings check and resolves
    // to 127.0.0.1, where a real backend listens; nothing reaches it. (Names resolving to 10.x and 169.254.169.254
    // need a DNS server this test does not have: the unit test `resolved_addresses_are_checked` covers the check.)
    let backend = Backend::start(Behaviour::Allow(json!({}))).await;
    let port = backend.url.split(':').nth(2).unwrap().split('/').next().unwrap().to_owned();
    for host in ["localhost"] {
        let response = app
            .put(
                "/api/v1/integrations/callback",
                &tenant.api_key,
                &json!({"mode": "callback", "url": format!("https://{host}:{port}/cb"), "shared_secret": secret}),
            )
            .await;
        assert_eq!(response.status(), 200);
        let value = format!("{}.s", tenant.site_id);
        assert_problem(callback_license(&app, &value, &[&kids[0]], "temporary").await, 502, 5023).await;
        let exchange: Value =
            app.post("/api/v1/integrations/callback/test", &tenant.api_key, &json!({})).await.json().await.unwrap();
        assert_eq!(exchange["code"], 5023, "{exchange}");
    }
    assert_eq!(backend.count(), 0, "nothing reached the loopback backend");
    let log = app.license_log(&tenant).await;
    assert!(log.iter().all(|r| r["rule"] == "callback.network" && r["error_code"] == 5023), "{log:?}");
}

#[tokio::test]
async fn the_documented_python_backend_works() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/callback.md")).unwrap();
    let start = doc.find("```python\n").expect("docs/callback.md has a python block") + "```python\n".len();
    let script = &doc[start..start + doc[start..].find("```").unwrap()];
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let secret_b64 = base64::engine::general_purpose::STANDARD.encode(SECRET);
    let mut python = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(port.to_string())
        .env("CLAVIS_CALLBACK_SECRET", &secret_b64)
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "the python backend did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let app = spawn_allowing_private().await;
    let (tenant, kids) = tenant_with_content(&app, "Acme").await;
    configure(&app, &tenant, &format!("http://127.0.0.1:{port}/clavis")).await;
    let allowed = callback_license(&app, &format!("{}.ok-alice", tenant.site_id), &[&kids[0]], "temporary").await;
    assert_eq!(allowed.status(), 200);
    // Its policy allows SD only.
    let hd = callback_license(&app, &format!("{}.ok-alice", tenant.site_id), &[&kids[1]], "temporary").await;
    assert_problem(hd, 403, 5006).await;
    let denied = callback_license(&app, &format!("{}.stranger", tenant.site_id), &[&kids[0]], "temporary").await;
    let body = assert_problem(denied, 403, 5030).await;
    assert!(body["detail"].as_str().unwrap().contains("unknown session"));
    let log = app.license_log(&tenant).await;
    assert!(log.iter().any(|r| r["outcome"] == "issued" && r["user_id"] == "alice"));
    python.kill().await.ok();
}
