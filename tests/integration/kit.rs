//! The test kit: a real Clavis server per test on port 0, against SQLite (default) or PostgreSQL
//! (`CLAVIS_TEST_DATABASE_URL=postgres://...`, one fresh database per test), with helpers that speak its HTTP API.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use clavis::{Application, ServiceSet};
use clavis_core::config::Config;
use clavis_core::crypto::MasterKey;
use clavis_licenses::LicenseService;
use clavis_tenant::{Directory, Email, NewTenant};
use secrecy::SecretString;
use serde_json::{Value, json};

/// The shared test vectors (read-only test input, never copied into the repository).
pub fn vectors_dir() -> PathBuf {
    let dir = std::env::var_os("CLAVIS_TEST_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors"));
    assert!(
        dir.is_dir(),
        "test vectors not found at {} (set CLAVIS_TEST_VECTORS); the suite fails rather than skips without them",
        dir.display()
    );
    dir
}

pub fn read_vector_json(relative: &str) -> Value {
    let path = vectors_dir().join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Which database this run tests against.
pub enum TestDb {
    Sqlite,
    Postgres { admin_url: String },
}

impl TestDb {
    pub fn from_env() -> TestDb {
        match std::env::var("CLAVIS_TEST_DATABASE_URL") {
            Ok(url) if url.starts_with("postgres") => TestDb::Postgres { admin_url: url },
            Ok(url) if url.is_empty() || url.starts_with("sqlite") => TestDb::Sqlite,
            Ok(other) => panic!("CLAVIS_TEST_DATABASE_URL must be postgres://... or sqlite (got {other:?})"),
            Err(_) => TestDb::Sqlite,
        }
    }

    /// A fresh, empty database for one test.
    pub async fn fresh(&self, dir: &std::path::Path) -> String {
        match self {
            TestDb::Sqlite => format!("sqlite://{}?mode=rwc", dir.join("clavis.db").display()),
            TestDb::Postgres { admin_url } => {
                use sea_orm::ConnectionTrait;
                let name = format!("clavis_test_{}", uuid::Uuid::new_v4().simple());
                let admin = sea_orm::Database::connect(admin_url.as_str()).await.expect("connect to PostgreSQL");
                admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
                admin.close().await.ok();
                let (base, _) = admin_url.rsplit_once('/').expect("postgres URL with a database name");
                format!("{base}/{name}")
            }
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub directory: Arc<Directory>,
    pub licenses: actix_web::web::Data<LicenseService>,
    pub tokens: std::sync::Arc<clavis_tokens::TokenService>,
    pub database_url: String,
    pub master_key: String,
    /// Keeps the data directory alive for the test's duration.
    pub _dir: tempfile::TempDir,
}

pub struct TestTenant {
    pub tenant_id: String,
    pub site_id: String,
    pub api_key: String,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(ServiceSet::ALL, |_| {}).await
    }

    /// Start a server with `services`, after letting the test adjust the configuration.
    pub async fn spawn_with(services: ServiceSet, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let database_url = TestDb::from_env().fresh(dir.path()).await;
        let master_key = MasterKey::generate_base64().unwrap().to_string();
        let mut config = Config {
            listen: "127.0.0.1:0".into(),
            database_url: Some(SecretString::from(database_url.clone())),
            data_dir: dir.path().to_path_buf(),
            master_key: Some(SecretString::from(master_key.clone())),
            workers: Some(1),
            log_level: "warn".into(),
            ..Config::default()
        };
        adjust(&mut config);
        // A shared database is migrated before the servers start, as `clavis migrate` does in production.
        let db = clavis::startup::connect(&config).await.unwrap();
        clavis::startup::migrate(&db).await.unwrap();
        db.close().await.ok();

        let app = Application::build(config, services).await.expect("server starts");
        let port = app.port();
        let directory = app.directory();
        let licenses = app.licenses();
        let tokens = app.tokens();
        tokio::spawn(app.run_until_stopped());
        TestApp {
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
            directory,
            licenses,
            tokens,
            database_url,
            master_key,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn create_tenant(&self, name: &str) -> TestTenant {
        let email = format!("{}@{}.example.com", uuid::Uuid::new_v4().simple(), name.to_lowercase().replace(' ', "-"));
        let created = self
            .directory
            .create_tenant(NewTenant { name: name.into(), email: Email::parse(&email).unwrap(), password: None })
            .await
            .unwrap();
        TestTenant {
            tenant_id: created.tenant_id.to_string(),
            site_id: created.site_id.to_string(),
            api_key: created.api_key,
        }
    }

    pub async fn post(&self, path: &str, api_key: &str, body: &Value) -> reqwest::Response {
        self.http.post(self.url(path)).bearer_auth(api_key).json(body).send().await.unwrap()
    }

    pub async fn put(&self, path: &str, api_key: &str, body: &Value) -> reqwest::Response {
        self.http.put(self.url(path)).bearer_auth(api_key).json(body).send().await.unwrap()
    }

    pub async fn delete(&self, path: &str, api_key: &str) -> reqwest::Response {
        self.http.delete(self.url(path)).bearer_auth(api_key).send().await.unwrap()
    }

    pub async fn get(&self, path: &str, api_key: &str) -> reqwest::Response {
        self.http.get(self.url(path)).bearer_auth(api_key).send().await.unwrap()
    }

    /// `POST /api/v1/keys`, asserting success; returns the answer.
    pub async fn create_keys(&self, tenant: &TestTenant, body: Value) -> Value {
        let response = self.post("/api/v1/keys", &tenant.api_key, &body).await;
        let status = response.status();
        let json: Value = response.json().await.unwrap();
        assert!(status.is_success(), "keys: {status} {json}");
        json
    }

    /// `POST /api/v1/tokens`, asserting success; returns the token.
    pub async fn mint_token(&self, tenant: &TestTenant, body: Value) -> String {
        let response = self.post("/api/v1/tokens", &tenant.api_key, &body).await;
        let status = response.status();
        let json: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "token: {json}");
        json["token"].as_str().unwrap().to_owned()
    }

    pub async fn token_for(&self, tenant: &TestTenant, user: &str, content: &str) -> String {
        self.mint_token(tenant, json!({"user_id": user, "content_id": content})).await
    }

    /// `POST /license/clearkey` for hex KIDs with the token in the header.
    pub async fn clearkey(&self, token: &str, kids_hex: &[&str]) -> reqwest::Response {
        let kids: Vec<String> = kids_hex.iter().map(|k| b64url(&hex::decode(k).unwrap())).collect();
        self.http
            .post(self.url("/license/clearkey"))
            .header("X-Clavis-Token", token)
            .body(json!({"kids": kids, "type": "temporary"}).to_string())
            .send()
            .await
            .unwrap()
    }

    /// Wait until the license log has written everything enqueued so far.
    pub async fn flush_log(&self) {
        self.licenses.log().flush().await;
    }

    pub async fn license_log(&self, tenant: &TestTenant) -> Vec<Value> {
        self.flush_log().await;
        let response = self.get("/api/v1/license-log?limit=100", &tenant.api_key).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

pub fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Assert a problem+json answer with `status` and catalog `code`; returns the body.
pub async fn assert_problem(response: reqwest::Response, status: u16, code: u16) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    assert_eq!(response.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/problem+json"));
    let header = response.headers().get("x-clavis-error").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(header.as_deref(), Some(code.to_string().as_str()), "X-Clavis-Error");
    body
}
