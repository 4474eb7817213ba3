//! Signing keys (HS256 and EdDSA, rotation, retirement) and self-signed tokens: the Python, Node.js and shell
//! examples of `docs/tokens.md` run against a live server and their tokens get licenses.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::kit::{TestApp, TestTenant, assert_problem, b64url};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/examples");

/// Run an example signer and return the token it prints.
fn run(program: &str, script: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .arg(Path::new(EXAMPLES).join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} {script}: {e}"));
    assert!(output.status.success(), "{script}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn header(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

async fn new_key(app: &TestApp, tenant: &TestTenant, body: Value) -> Value {
    let response = app.post("/api/v1/token-keys", &tenant.api_key, &body).await;
    let status = response.status();
    let json: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{json}");
    json
}

async fn tenant_with_content(app: &TestApp) -> (TestTenant, String) {
    let tenant = app.create_tenant("Acme").await;
    let keys = app.create_keys(&tenant, json!({"content_id": "movie-1"})).await;
    (tenant, keys["keys"][0]["kid"].as_str().unwrap().to_owned())
}

#[test]
fn the_docs_show_the_examples_as_they_are_tested() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/tokens.md")).unwrap();
    for script in ["sign_token.py", "sign_token.js", "sign_token.sh"] {
        let code = std::fs::read_to_string(Path::new(EXAMPLES).join(script)).unwrap();
        assert!(doc.contains(&code), "docs/tokens.md does not show docs/examples/{script} as it is");
    }
}

#[tokio::test]
async fn hs256_tokens_signed_by_the_python_node_and_shell_examples_get_licenses() {
    let app = TestApp::spawn().await;
    let (tenant, kid) = tenant_with_content(&app).await;
    let key = new_key(&app, &tenant, json!({"algorithm": "HS256"})).await;
    assert_eq!(key["algorithm"], "HS256");
    assert_eq!(key["current"], true);
    let secret = key["secret_hex"].as_str().unwrap();
    assert_eq!(secret.len(), 64);
    let key_id = key["kid"].as_str().unwrap();
    let args = [tenant.site_id.as_str(), key_id, secret, "viewer-1", "movie-1"];
    for (program, script) in [("python3", "sign_token.py"), ("node", "sign_token.js"), ("sh", "sign_token.sh")] {
        let token = run(program, script, &args);
        assert_eq!(header(&token)["kid"], key_id);
        let answer = app.clearkey(&token, &[kid.as_str()]).await;
        assert_eq!(answer.status(), 200, "{script}: {}", answer.text().await.unwrap());
    }
    // A self-signed token asking for a policy wider than the tenant's default gets no more than the default.
    let wide = run("python3", "sign_token.py", &[&args[..], &[r#"{"persistent": true}"#]].concat());
    let kids = [b64url(&hex::decode(&kid).unwrap())];
    let persistent = app
        .http
        .post(app.url("/license/clearkey"))
        .header("X-Clavis-Token", &wide)
        .body(json!({"kids": kids, "type": "persistent-license"}).to_string())
        .send()
        .await
        .unwrap();
    assert_problem(persistent, 403, 5004).await;
    // The same example with a wrong secret is refused.
    let forged = run("python3", "sign_token.py", &[args[0], args[1], &"00".repeat(32), args[3], args[4]]);
    assert_problem(app.clearkey(&forged, &[kid.as_str()]).await, 401, 4003).await;
}

#[tokio::test]
async fn eddsa_keys_made_by_clavis_or_registered_by_the_tenant_verify() {
    let app = TestApp::spawn().await;
    let (tenant, kid) = tenant_with_content(&app).await;
    let dir = tempfile::tempdir().unwrap();

    // A key pair made by Clavis: the private key is shown once; the token API now signs with it.
    let made = new_key(&app, &tenant, json!({"algorithm": "EdDSA"})).await;
    let private_pem = dir.path().join("clavis-made.pem");
    std::fs::write(&private_pem, made["private_key"].as_str().unwrap()).unwrap();
    let made_kid = made["kid"].as_str().unwrap();
    for (program, script) in [("node", "sign_token.js"), ("sh", "sign_token.sh")] {
        let token =
            run(program, script, &[&tenant.site_id, made_kid, private_pem.to_str().unwrap(), "viewer-1", "movie-1"]);
        assert_eq!(header(&token)["alg"], "EdDSA");
        assert_eq!(app.clearkey(&token, &[kid.as_str()]).await.status(), 200, "{script}");
    }
    let minted = app.token_for(&tenant, "viewer-2", "movie-1").await;
    assert_eq!(header(&minted)["alg"], "EdDSA");
    assert_eq!(header(&minted)["kid"], made_kid);
    assert_eq!(app.clearkey(&minted, &[kid.as_str()]).await.status(), 200);

    // A public key the tenant registers: its private key never leaves the tenant.
    let own_pem = dir.path().join("own.pem");
    let status = Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out", own_pem.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let public = Command::new("openssl").args(["pkey", "-in", own_pem.to_str().unwrap(), "-pubout"]).output().unwrap();
    let public = String::from_utf8(public.stdout).unwrap();
    let registered = new_key(&app, &tenant, json!({"algorithm": "EdDSA", "public_key": public})).await;
    assert_eq!(registered["can_sign"], false);
    assert!(registered.get("private_key").is_none());
    let own_kid = registered["kid"].as_str().unwrap();
    let token = run("sh", "sign_token.sh", &[&tenant.site_id, own_kid, own_pem.to_str().unwrap(), "u", "movie-1"]);
    assert_eq!(app.clearkey(&token, &[kid.as_str()]).await.status(), 200);
    // The token API keeps signing with the key it holds.
    assert_eq!(header(&app.token_for(&tenant, "u", "movie-1").await)["kid"], made_kid);

    // Algorithm confusion: an HS256 token naming the EdDSA key (signed with its public key bytes) is refused.
    let confused = {
        let claims = json!({"iss": tenant.site_id, "sub": "u", "cid": "movie-1", "iat": chrono::Utc::now().timestamp(), "exp": chrono::Utc::now().timestamp() + 60});
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = Some(own_kid.to_owned());
        jsonwebtoken::encode(&h, &claims, &jsonwebtoken::EncodingKey::from_secret(public.as_bytes())).unwrap()
    };
    assert_problem(app.clearkey(&confused, &[kid.as_str()]).await, 401, 4003).await;

    // Bad public keys are refused naming the field.
    let bad =
        app.post("/api/v1/token-keys", &tenant.api_key, &json!({"algorithm": "EdDSA", "public_key": "nope"})).await;
    assert_eq!(assert_problem(bad, 422, 1011).await["field"], "public_key");
    let bad = app.post("/api/v1/token-keys", &tenant.api_key, &json!({"algorithm": "RS256"})).await;
    assert_eq!(assert_problem(bad, 422, 1011).await["field"], "algorithm");
}

#[tokio::test]
async fn rotation_keeps_old_tokens_until_the_old_key_is_retired() {
    let app = TestApp::spawn().await;
    let (tenant, kid) = tenant_with_content(&app).await;
    let old_token = app.token_for(&tenant, "u", "movie-1").await;
    let old_kid = header(&old_token)["kid"].as_str().unwrap().to_owned();

    let rotated = new_key(&app, &tenant, json!({"algorithm": "HS256"})).await;
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    let new_token = app.token_for(&tenant, "u", "movie-1").await;
    assert_eq!(header(&new_token)["kid"], new_kid.as_str(), "new tokens use the newest key");
    assert_eq!(app.clearkey(&old_token, &[kid.as_str()]).await.status(), 200, "old tokens still verify");

    let listed: Vec<Value> = app.get("/api/v1/token-keys", &tenant.api_key).await.json().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["kid"], new_kid.as_str());
    assert_eq!(listed[0]["current"], true);
    assert_eq!(listed[1]["current"], false);
    assert!(listed.iter().all(|k| k.get("secret_hex").is_none()), "secrets are shown only once");

    let retired = app.delete(&format!("/api/v1/token-keys/{old_kid}"), &tenant.api_key).await;
    assert_eq!(retired.status(), 204);
    assert_problem(app.clearkey(&old_token, &[kid.as_str()]).await, 401, 4004).await;
    assert_eq!(app.clearkey(&new_token, &[kid.as_str()]).await.status(), 200);
    // The last key Clavis can sign with stays; unknown and other tenants' keys are not found.
    let last = app.delete(&format!("/api/v1/token-keys/{new_kid}"), &tenant.api_key).await;
    assert_problem(last, 422, 1011).await;
    let other = app.create_tenant("Other").await;
    let foreign = app.delete(&format!("/api/v1/token-keys/{new_kid}"), &other.api_key).await;
    assert_problem(foreign, 401, 4004).await;
    assert_eq!(app.clearkey(&new_token, &[kid.as_str()]).await.status(), 200);
}

#[tokio::test]
async fn self_signed_tokens_from_the_future_or_with_a_mistyped_policy_are_refused_naming_why() {
    let app = TestApp::spawn().await;
    let (tenant, kid) = tenant_with_content(&app).await;
    let key = new_key(&app, &tenant, json!({"algorithm": "HS256"})).await;
    let secret = hex::decode(key["secret_hex"].as_str().unwrap()).unwrap();
    let sign = |claims: Value| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(key["kid"].as_str().unwrap().to_owned());
        jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(&secret)).unwrap()
    };
    let now = chrono::Utc::now().timestamp();
    let claims = |extra: Value| {
        let mut claims =
            json!({"iss": tenant.site_id, "sub": "viewer-1", "cid": "movie-1", "iat": now, "exp": now + 600});
        claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        claims
    };
    assert_eq!(app.clearkey(&sign(claims(json!({}))), &[kid.as_str()]).await.status(), 200);
    // Beyond the tenant's clock-skew window (60 s by default): not yet valid.
    let body =
        assert_problem(app.clearkey(&sign(claims(json!({"nbf": now + 600}))), &[kid.as_str()]).await, 401, 4006).await;
    assert!(body["detail"].as_str().unwrap().contains("nbf"), "{body}");
    let body =
        assert_problem(app.clearkey(&sign(claims(json!({"iat": now + 600}))), &[kid.as_str()]).await, 401, 4006).await;
    assert!(body["detail"].as_str().unwrap().contains("iat"), "{body}");
    // Within the window it passes.
    assert_eq!(app.clearkey(&sign(claims(json!({"nbf": now + 30}))), &[kid.as_str()]).await.status(), 200);
    // A policy field of the wrong type is named.
    let wrong = sign(claims(json!({"policy": {"license_duration_seconds": "one hour"}})));
    let body = assert_problem(app.clearkey(&wrong, &[kid.as_str()]).await, 422, 4010).await;
    assert_eq!(body["field"], "policy.license_duration_seconds", "{body}");
    let unknown = sign(claims(json!({"policy": {"max_screens": 2}})));
    assert_problem(app.clearkey(&unknown, &[kid.as_str()]).await, 422, 4010).await;
}
