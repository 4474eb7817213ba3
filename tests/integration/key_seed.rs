//! The PlayReady key seed: setting, generating, reading and deleting it, and keys derived from it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::kit::{TestApp, assert_problem, read_vector_json};

/// Microsoft's published derivation, written out again here from the spec so the server's implementation is checked
/// against an independent one (which the Microsoft vectors check first).
fn derive(seed: &[u8], kid_be: &[u8]) -> [u8; 16] {
    let s = &seed[..30];
    let mut kid = [0u8; 16];
    kid.copy_from_slice(kid_be);
    kid[0..4].reverse();
    kid[4..6].reverse();
    kid[6..8].reverse();
    let sha = |parts: &[&[u8]]| {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        parts.iter().for_each(|p| ctx.update(p));
        ctx.finish()
    };
    let a = sha(&[s, &kid]);
    let b = sha(&[s, &kid, s]);
    let c = sha(&[s, &kid, s, &kid]);
    let (a, b, c) = (a.as_ref(), b.as_ref(), c.as_ref());
    std::array::from_fn(|i| a[i] ^ a[i + 16] ^ b[i] ^ b[i + 16] ^ c[i] ^ c[i + 16])
}

#[test]
fn the_independent_derivation_matches_microsofts_vectors() {
    let vectors = read_vector_json("playready/keyseed_vectors.json");
    let seed = STANDARD.decode(vectors["key_seed_b64"].as_str().unwrap()).unwrap();
    let cases = vectors["vectors"].as_array().unwrap();
    assert!(cases.len() >= 4);
    for case in cases {
        let kid = hex::decode(case["kid_be_hex"].as_str().unwrap()).unwrap();
        assert_eq!(hex::encode(derive(&seed, &kid)), case["content_key_hex"].as_str().unwrap());
    }
}

#[tokio::test]
async fn keys_from_the_seed_are_derived_from_their_kid() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let vectors = read_vector_json("playready/keyseed_vectors.json");
    let seed_b64 = vectors["key_seed_b64"].as_str().unwrap();

    // Without a seed, key_seed keys are refused with the catalog code.
    let refused = app.post("/api/v1/keys", &tenant.api_key, &json!({"content_id": "m", "source": "key_seed"})).await;
    assert_problem(refused, 409, 3004).await;
    assert_problem(app.get("/api/v1/key-seed", &tenant.api_key).await, 409, 3004).await;

    let set = app.put("/api/v1/key-seed", &tenant.api_key, &json!({"key_seed": seed_b64})).await;
    assert_eq!(set.status(), 200);
    let set: Value = set.json().await.unwrap();
    assert_eq!(set["length"], 30);
    assert!(set.get("key_seed").is_none(), "a seed the tenant gave is not echoed: {set}");
    let fingerprint = set["fingerprint"].as_str().unwrap().to_owned();
    assert_eq!(fingerprint.len(), 16);

    let read: Value = app.get("/api/v1/key-seed", &tenant.api_key).await.json().await.unwrap();
    assert_eq!(read["fingerprint"], fingerprint.as_str());
    assert!(read.get("key_seed").is_none());

    let answer =
        app.create_keys(&tenant, json!({"content_id": "movie-pr", "source": "key_seed", "tracks": ["SD", "HD"]})).await;
    let seed = STANDARD.decode(seed_b64).unwrap();
    for key in answer["keys"].as_array().unwrap() {
        assert_eq!(key["source"], "key_seed");
        let kid = hex::decode(key["kid"].as_str().unwrap()).unwrap();
        assert_eq!(key["key"].as_str().unwrap(), hex::encode(derive(&seed, &kid)), "{key}");
    }

    // The seed is sealed at rest: its bytes appear nowhere in the row.
    let db = clavis_core::db::connect(&app.database_url).await.unwrap();
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(backend, "SELECT value_sealed, meta FROM tenant_secrets"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let sealed: Vec<u8> = rows[0].try_get("", "value_sealed").unwrap();
    let meta: String = rows[0].try_get("", "meta").unwrap();
    assert!(!sealed.windows(16).any(|w| w == &seed[..16]), "the seed must not be stored in plaintext");
    assert!(!meta.contains(seed_b64));
}

#[tokio::test]
async fn a_generated_seed_is_shown_once_and_stays_with_its_tenant() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("Acme").await;
    let other = app.create_tenant("Other").await;

    let generated = app.post("/api/v1/key-seed", &acme.api_key, &json!({})).await;
    assert_eq!(generated.status(), 201);
    let generated: Value = generated.json().await.unwrap();
    let seed = STANDARD.decode(generated["key_seed"].as_str().unwrap()).unwrap();
    assert_eq!(seed.len(), 30);

    let read: Value = app.get("/api/v1/key-seed", &acme.api_key).await.json().await.unwrap();
    assert_eq!(read["fingerprint"], generated["fingerprint"]);
    assert!(read.get("key_seed").is_none(), "shown only at generation");

    // Another tenant neither sees nor uses it.
    assert_problem(app.get("/api/v1/key-seed", &other.api_key).await, 409, 3004).await;
    let refused = app.post("/api/v1/keys", &other.api_key, &json!({"content_id": "m", "source": "key_seed"})).await;
    assert_problem(refused, 409, 3004).await;

    // Keys made before a change of seed keep their values.
    let before = app.create_keys(&acme, json!({"content_id": "a", "source": "key_seed"})).await;
    let kid = hex::decode(before["keys"][0]["kid"].as_str().unwrap()).unwrap();
    assert_eq!(before["keys"][0]["key"].as_str().unwrap(), hex::encode(derive(&seed, &kid)));
    let regenerated: Value = app.post("/api/v1/key-seed", &acme.api_key, &json!({})).await.json().await.unwrap();
    assert_ne!(regenerated["fingerprint"], generated["fingerprint"]);
    let again: Value = app.get("/api/v1/keys/a", &acme.api_key).await.json().await.unwrap();
    assert_eq!(again["keys"], before["keys"]);

    assert_eq!(app.delete("/api/v1/key-seed", &acme.api_key).await.status(), 204);
    assert_problem(app.delete("/api/v1/key-seed", &acme.api_key).await, 409, 3004).await;
    assert_problem(app.get("/api/v1/key-seed", &acme.api_key).await, 409, 3004).await;
}

#[tokio::test]
async fn bad_seeds_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    for bad in [json!({"key_seed": "not base64!"}), json!({"key_seed": STANDARD.encode([7u8; 29])})] {
        let body = assert_problem(app.put("/api/v1/key-seed", &tenant.api_key, &bad).await, 422, 1011).await;
        assert_eq!(body["field"], "key_seed", "{body}");
    }
    let body =
        assert_problem(app.put("/api/v1/key-seed", &tenant.api_key, &json!({"seed": "x"})).await, 422, 1011).await;
    assert!(body["detail"].as_str().unwrap().contains("seed"), "{body}");
    assert_problem(app.put("/api/v1/key-seed", "clv_wrong", &json!({"key_seed": "x"})).await, 401, 2002).await;
}
