//! In-process cost of one ClearKey license (no HTTP): the corridor step by step, against the raw HS256 verification
//! of jsonwebtoken measured in the same run. `cargo bench --bench license_corridor`.
//!
//! The numbers are per-operation wall times on this machine; compare the ratios, not the absolute values.

use std::time::{Duration, Instant};

use clavis::{Application, ServiceSet};
use clavis_core::config::Config;
use clavis_core::ids::Drm;
use clavis_licenses::service::Story;
use clavis_tenant::{Email, NewTenant};
use clavis_tokens::Credential;
use secrecy::SecretString;
use serde_json::json;

fn time<F: FnMut()>(name: &str, iterations: u32, mut f: F) -> Duration {
    for _ in 0..iterations / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    let per = start.elapsed() / iterations;
    println!("{name:<44} {:>9.2} µs/op", per.as_secs_f64() * 1e6);
    per
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        master_key: Some(SecretString::from(clavis_core::crypto::MasterKey::generate_base64().unwrap().to_string())),
        log_level: "error".into(),
        workers: Some(1),
        ..Config::default()
    };
    let app = Application::build(config, ServiceSet::ALL).await.unwrap();
    let directory = app.directory();
    let created = directory
        .create_tenant(NewTenant {
            name: "Bench".into(),
            email: Email::parse("b@example.com").unwrap(),
            password: None,
        })
        .await
        .unwrap();
    let tenant = directory.get(created.tenant_id).await.unwrap();
    let keys = app.keys();
    let (set, _) = keys
        .ensure(
            tenant.id,
            clavis_core::ids::ContentId::parse("bench").unwrap(),
            clavis_keys::model::KeyPlan::Generate {
                source: clavis_keys::KeySource::Random,
                tracks: vec![clavis_core::ids::TrackType::All],
            },
        )
        .await
        .unwrap();
    let tokens = app.tokens();
    let issued = tokens
        .issue(&tenant, serde_json::from_value(json!({"user_id": "u", "content_id": "bench"})).unwrap())
        .await
        .unwrap();
    let token = issued.token;
    let body = json!({"kids": [set.keys[0].kid.to_base64url()], "type": "temporary"}).to_string();
    let licenses = app.licenses();

    // Baseline: jsonwebtoken's own HS256 decode + validation with a fixed key.
    let secret = b"0123456789abcdef0123456789abcdef";
    let claims = json!({"iss": "ABCD", "sub": "u", "cid": "bench", "iat": 1, "exp": 4_000_000_000i64, "policy": {}});
    let baseline_token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap();
    let decoding = jsonwebtoken::DecodingKey::from_secret(secret);
    let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    let n = 20_000;
    let baseline = time("jsonwebtoken::decode HS256 (baseline)", n, || {
        jsonwebtoken::decode::<serde_json::Value>(&baseline_token, &decoding, &validation).unwrap();
    });

    let rt = tokio::runtime::Handle::current();
    let _ = rt;
    let mut native = Duration::ZERO;
    {
        let start = Instant::now();
        for _ in 0..n {
            let presented = tokens.parse(Credential::Native(&token)).unwrap();
            let t = tokens.issuer(&presented).await.unwrap();
            tokens.verify(t, presented).await.unwrap();
        }
        native += start.elapsed() / n;
        println!("{:<44} {:>9.2} µs/op", "native token: parse + issuer + verify", native.as_secs_f64() * 1e6);
    }
    println!("{:<44} {:>9.2}", "ratio native/baseline throughput", baseline.as_secs_f64() / native.as_secs_f64());

    // PallyCon's format: decode, hash check (SHA-256), timestamp window, AES-256-CBC policy decryption and parsing.
    {
        use clavis_tokens::foreign::pallycon::{PallyconDrmType, PallyconSecrets, PallyconToken, encode_token};
        let secrets =
            PallyconSecrets::new("lU5D8s3PWoLls3PWFWkClULlFWk5D8oC", "LT2FVJDp2Xr018zf4Di6lzvNOv3DKP20").unwrap();
        let policy = r#"{"policy_version":2,"playback_policy":{"license_duration":3600,"persistent":false}}"#;
        let now = chrono::Utc::now();
        let raw = encode_token(&secrets, PallyconDrmType::Widevine, "TUTO", "u", "bench", policy, now, None);
        let pallycon = time("PallyCon token: parse + verify + policy", n, || {
            let token = PallyconToken::parse(&raw).unwrap();
            let claims = token.verify(&secrets, now, 600, 60).unwrap();
            clavis_tokens::pallycon::map_policy(&claims.policy);
        });
        println!(
            "{:<44} {:>9.2}",
            "ratio PallyCon/baseline throughput",
            baseline.as_secs_f64() / pallycon.as_secs_f64()
        );
    }

    // DRMtoday's upfront token: HS256 JWT, `optData` and `crt` rights parsed.
    {
        use clavis_tokens::foreign::{HmacAlgorithm, drmtoday};
        let now = chrono::Utc::now();
        let crt = json!([{"assetId": "bench", "profile": {"rental": {"relativeExpiration": "PT10M"}}, "storeLicense": false}]);
        let claims = json!({
            "jti": "bench", "iat": now.timestamp(), "exp": now.timestamp() + 600,
            "optData": json!({"merchant": "bench", "userId": "u", "sessionId": "s"}).to_string(),
            "crt": crt.to_string(),
        });
        let raw = drmtoday::sign_token(HmacAlgorithm::Hs256, "k1", secret, &claims);
        let dt = time("DRMtoday token: verify + rights", n, || {
            drmtoday::verify(&raw, |_| Some(secret), now, 60).unwrap();
        });
        println!("{:<44} {:>9.2}", "ratio DRMtoday/baseline throughput", baseline.as_secs_f64() / dt.as_secs_f64());
    }

    // Axinom's license service message: HS256 JWT, entitlement parsed, one inline key decrypted.
    {
        use clavis_tokens::foreign::axinom::{self, AxinomComKey};
        let com_key = AxinomComKey::from_bytes(*secret);
        let com_key_id = uuid::Uuid::new_v4();
        let kid = uuid::Uuid::new_v4();
        let now = chrono::Utc::now();
        let claims = json!({
            "version": 1, "com_key_id": com_key_id.to_string(),
            "message": {"type": "entitlement_message", "version": 2,
                "license": {"duration": 3600, "allow_persistence": false},
                "content_keys_source": {"inline": [{"id": kid.to_string(), "encrypted_key": axinom::encrypt_inline_key(&com_key, &kid, &[7; 16])}]}},
            "expiration_date": (now + chrono::Duration::hours(1)).to_rfc3339(),
        });
        let raw = axinom::sign_message(&com_key, &claims);
        let ax = time("Axinom message: verify + inline key", n, || {
            axinom::verify(&raw, |_| Some(AxinomComKey::from_bytes(*secret)), now, 60).unwrap();
        });
        println!("{:<44} {:>9.2}", "ratio Axinom/baseline throughput", baseline.as_secs_f64() / ax.as_secs_f64());
    }

    let start = Instant::now();
    for _ in 0..n {
        keys.get(tenant.id, &set.content_id).await.unwrap().unwrap();
    }
    println!("{:<44} {:>9.2} µs/op", "cached key set lookup", (start.elapsed() / n).as_secs_f64() * 1e6);

    let start = Instant::now();
    for _ in 0..n {
        let mut story = Story::new(Drm::ClearKey, None, Some("127.0.0.1".into()), None);
        licenses.clearkey(&mut story, Some(Credential::Native(&token)), body.as_bytes()).await.unwrap();
    }
    println!("{:<44} {:>9.2} µs/op", "whole corridor (no log, no HTTP)", (start.elapsed() / n).as_secs_f64() * 1e6);

    let start = Instant::now();
    for _ in 0..n {
        let mut story = Story::new(Drm::ClearKey, None, Some("127.0.0.1".into()), None);
        let result = licenses.clearkey(&mut story, Some(Credential::Native(&token)), body.as_bytes()).await;
        licenses.finish(story, result, "application/json").await;
    }
    licenses.log().flush().await;
    println!("{:<44} {:>9.2} µs/op", "corridor + finish (metrics, log row)", (start.elapsed() / n).as_secs_f64() * 1e6);
}
