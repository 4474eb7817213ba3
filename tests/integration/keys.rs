//! `POST /api/v1/keys` and `GET /api/v1/keys/{content_id}`.

use base64::Engine;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::kit::{TestApp, assert_problem, read_vector_json};

fn is_hex32(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()))
}

#[tokio::test]
async fn creating_keys_is_idempotent_per_content() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let first = app.post("/api/v1/keys", &tenant.api_key, &json!({"content_id": "movie-1"})).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["content_id"], "movie-1");
    let keys = first["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["track_type"], "ALL");
    assert!(is_hex32(&keys[0]["kid"]) && is_hex32(&keys[0]["key"]) && is_hex32(&keys[0]["iv"]), "{first}");
    assert_ne!(keys[0]["kid"], keys[0]["key"]);

    // The common-system PSSH names the KID.
    let pssh = base64::engine::general_purpose::STANDARD.decode(first["pssh"]["common"].as_str().unwrap()).unwrap();
    assert_eq!(&pssh[4..8], b"pssh");
    assert_eq!(hex::encode(&pssh[12..28]), "1077efecc0b24d02ace33c1e52e2fb4b");
    assert_eq!(hex::encode(&pssh[32..48]), keys[0]["kid"].as_str().unwrap());

    let again =
        app.post("/api/v1/keys", &tenant.api_key, &json!({"content_id": "movie-1", "tracks": ["SD", "HD"]})).await;
    assert_eq!(again.status(), 200, "a content's keys are made once");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let read: Value = app.get("/api/v1/keys/movie-1", &tenant.api_key).await.json().await.unwrap();
    assert_eq!(read, first);
}

#[tokio::test]
async fn one_key_per_requested_track() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let answer = app
        .create_keys(&tenant, json!({"content_id": "series/ep-1", "tracks": ["SD", "HD", "AUDIO"], "source": "random"}))
        .await;
    let keys = answer["keys"].as_array().unwrap();
    let tracks: Vec<&str> = keys.iter().map(|k| k["track_type"].as_str().unwrap()).collect();
    assert_eq!(tracks, ["SD", "HD", "AUDIO"]);
    let mut kids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
    kids.dedup();
    assert_eq!(kids.len(), 3);
    let pssh = base64::engine::general_purpose::STANDARD.decode(answer["pssh"]["common"].as_str().unwrap()).unwrap();
    assert_eq!(u32::from_be_bytes(pssh[28..32].try_into().unwrap()), 3);
    // Content ids with slashes are read back through the path (percent-encoded).
    let read = app.get("/api/v1/keys/series%2Fep-1", &tenant.api_key).await;
    assert_eq!(read.status(), 200);
    assert_eq!(read.json::<Value>().await.unwrap(), answer);
}

#[tokio::test]
async fn imported_keys_are_kept_and_conflicts_refused() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let import = json!({"content_id": "imported", "keys": [
        {"track_type": "HD", "kid": "2f05477f-c24b-b4fa-efd8-6517156daffc", "key": "b50d1b25559be9bd0a3cbe8ab59232fc", "iv": "000102030405060708090a0b0c0d0e0f"},
        {"kid": "0d6b40238da15e75af6875c514c59b63", "key": "00112233445566778899aabbccddeeff"}
    ]});
    let created = app.post("/api/v1/keys", &tenant.api_key, &import).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let keys = created["keys"].as_array().unwrap();
    assert_eq!(keys[0]["track_type"], "HD");
    assert_eq!(keys[0]["kid"], "2f05477fc24bb4faefd86517156daffc", "UUID-form KIDs are read as hex");
    assert_eq!(keys[0]["key"], "b50d1b25559be9bd0a3cbe8ab59232fc");
    assert_eq!(keys[0]["iv"], "000102030405060708090a0b0c0d0e0f");
    assert_eq!(keys[1]["track_type"], "ALL");
    assert_eq!(keys[1]["kid"], "0d6b40238da15e75af6875c514c59b63");
    assert!(is_hex32(&keys[1]["iv"]), "a missing IV is generated");
    assert!(keys.iter().all(|k| k["source"] == "imported"));

    // Repeating the same import is a harmless retry; different keys for the same content are refused.
    assert_eq!(app.post("/api/v1/keys", &tenant.api_key, &import).await.status(), 200);
    let other = json!({"content_id": "imported", "keys": [{"kid": "11112222333344445555666677778888", "key": "00112233445566778899aabbccddeeff"}]});
    assert_problem(app.post("/api/v1/keys", &tenant.api_key, &other).await, 409, 3002).await;
    // A KID belongs to one content of a tenant.
    let reused = json!({"content_id": "another", "keys": [{"kid": "2f05477fc24bb4faefd86517156daffc", "key": "00112233445566778899aabbccddeeff"}]});
    assert_problem(app.post("/api/v1/keys", &tenant.api_key, &reused).await, 409, 3003).await;
    assert_problem(app.get("/api/v1/keys/another", &tenant.api_key).await, 404, 3001).await;
}

#[tokio::test]
async fn common_pssh_matches_the_vector() {
    let vector = read_vector_json("clearkey/clearkey_examples.json");
    let expected = vector["cenc_initdata_common_pssh_v1_two_kids_hex (generated by us; fed to Chromium in probe)"]
        .as_str()
        .unwrap();
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let answer = app
        .create_keys(
            &tenant,
            json!({"content_id": "two", "keys": [
                {"kid": "2f05477fc24bb4faefd86517156daffc", "key": "b50d1b25559be9bd0a3cbe8ab59232fc"},
                {"kid": "0d6b40238da15e75af6875c514c59b63", "key": "00112233445566778899aabbccddeeff"}
            ]}),
        )
        .await;
    let pssh = base64::engine::general_purpose::STANDARD.decode(answer["pssh"]["common"].as_str().unwrap()).unwrap();
    assert_eq!(hex::encode(pssh), expected, "keys keep the order they were imported in, and so does the PSSH");
}

#[tokio::test]
async fn bad_requests_get_catalog_errors() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let key = &tenant.api_key;

    let no_key = app.http.post(app.url("/api/v1/keys")).json(&json!({"content_id": "m"})).send().await.unwrap();
    assert_problem(no_key, 401, 2001).await;
    assert_problem(app.post("/api/v1/keys", "clv_not-a-real-key", &json!({"content_id": "m"})).await, 401, 2002).await;
    assert_problem(app.get("/api/v1/keys/m", "Basic Zm9v").await, 401, 2002).await;

    let malformed =
        app.http.post(app.url("/api/v1/keys")).bearer_auth(key).body("{\"content_id\": ").send().await.unwrap();
    assert_problem(malformed, 400, 1010).await;
    let body =
        assert_problem(app.post("/api/v1/keys", key, &json!({"content_id": "m", "tracks": ["XX"]})).await, 422, 1011)
            .await;
    assert_eq!(body["field"], "tracks");
    let body = assert_problem(app.post("/api/v1/keys", key, &json!({"tracks": ["SD"]})).await, 422, 1011).await;
    assert_eq!(body["field"], "content_id");
    let body =
        assert_problem(app.post("/api/v1/keys", key, &json!({"content_id": "m", "colour": "red"})).await, 422, 1011)
            .await;
    assert_eq!(body["field"], "colour");
    let body = assert_problem(app.post("/api/v1/keys", key, &json!({"content_id": 7})).await, 422, 1011).await;
    assert_eq!(body["field"], "content_id");
    let body = assert_problem(
        app.post(
            "/api/v1/keys",
            key,
            &json!({"content_id": "m", "keys": [{"kid": "zz", "key": "00112233445566778899aabbccddeeff"}]}),
        )
        .await,
        422,
        1011,
    )
    .await;
    assert_eq!(body["field"], "keys[0].kid");
    assert_problem(app.post("/api/v1/keys", key, &json!({"content_id": "m", "source": "key_seed"})).await, 409, 3004)
        .await;

    let huge = json!({"content_id": "m", "padding": "x".repeat(300 * 1024)});
    assert_problem(app.post("/api/v1/keys", key, &huge).await, 413, 1012).await;
    assert_problem(app.get("/api/v1/keys/nothing-here", key).await, 404, 3001).await;
}

#[tokio::test]
async fn concurrent_first_requests_agree_on_one_key_set() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let body = json!({"content_id": "race"});
    let requests = (0..12).map(|_| app.post("/api/v1/keys", &tenant.api_key, &body));
    let answers = futures_util::future::join_all(requests).await;
    let mut created = 0;
    let mut bodies = Vec::new();
    for answer in answers {
        match answer.status().as_u16() {
            201 => created += 1,
            200 => {}
            other => panic!("unexpected status {other}"),
        }
        bodies.push(answer.json::<Value>().await.unwrap());
    }
    assert_eq!(created, 1, "exactly one request creates the keys");
    assert!(bodies.iter().all(|b| b == &bodies[0]), "every caller sees the same keys");
}

#[tokio::test]
async fn content_keys_are_sealed_at_rest() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    app.create_keys(&tenant, json!({"content_id": "sealed", "keys": [{"kid": "2f05477fc24bb4faefd86517156daffc", "key": "b50d1b25559be9bd0a3cbe8ab59232fc"}]}))
        .await;
    let db = clavis_core::db::connect(&app.database_url).await.unwrap();
    let backend = db.get_database_backend();
    let rows = db.query_all_raw(Statement::from_string(backend, "SELECT key_sealed FROM content_keys")).await.unwrap();
    assert_eq!(rows.len(), 1);
    let sealed: Vec<u8> = rows[0].try_get("", "key_sealed").unwrap();
    let plain = hex::decode("b50d1b25559be9bd0a3cbe8ab59232fc").unwrap();
    assert!(sealed.len() > 16 + 60);
    assert!(!sealed.windows(16).any(|w| w == plain.as_slice()), "the content key must not be stored in plaintext");
    // A different master key cannot open it.
    let other =
        clavis_core::crypto::MasterKey::from_base64(&clavis_core::crypto::MasterKey::generate_base64().unwrap())
            .unwrap();
    assert!(
        other.open(&format!("content_key/{}/2f05477fc24bb4faefd86517156daffc", tenant.tenant_id), &sealed).is_err()
    );
    let ours = clavis_core::crypto::MasterKey::from_base64(&app.master_key).unwrap();
    assert_eq!(
        &*ours.open(&format!("content_key/{}/2f05477fc24bb4faefd86517156daffc", tenant.tenant_id), &sealed).unwrap(),
        plain.as_slice()
    );
}

#[tokio::test]
async fn widevine_and_playready_pssh_carry_the_kids_and_the_license_url() {
    use clavis_keys::playready::{PLAYREADY_SYSTEM_ID, wrmheader_from_playready_object};
    use clavis_keys::widevine_pssh::{WIDEVINE_SYSTEM_ID, parse_widevine_pssh_data};
    let b64 = |v: &Value| base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap();
    // A v0 `pssh` box: size, type, version 0, system id, data size, data.
    let data_of = |boxed: &[u8], system_id: &[u8; 16]| {
        assert_eq!(u32::from_be_bytes(boxed[0..4].try_into().unwrap()) as usize, boxed.len());
        assert_eq!(&boxed[4..8], b"pssh");
        assert_eq!(boxed[8], 0, "version 0");
        assert_eq!(&boxed[12..28], system_id);
        let len = u32::from_be_bytes(boxed[28..32].try_into().unwrap()) as usize;
        assert_eq!(32 + len, boxed.len());
        boxed[32..].to_vec()
    };

    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    for tracks in [json!(["ALL"]), json!(["SD", "HD", "AUDIO"])] {
        let content = format!("movie-{}", tracks.as_array().unwrap().len());
        let answer = app.create_keys(&tenant, json!({"content_id": content, "tracks": tracks})).await;
        let keys = answer["keys"].as_array().unwrap();
        let kids: Vec<String> = keys.iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect();

        let widevine =
            parse_widevine_pssh_data(&data_of(&b64(&answer["pssh"]["widevine"]), &WIDEVINE_SYSTEM_ID)).unwrap();
        let wv_kids: Vec<String> = widevine.key_ids.iter().map(|k| k.to_hex()).collect();
        assert_eq!(wv_kids, kids);
        assert_eq!(widevine.content_id.as_deref(), Some(content.as_bytes()));

        let pro = data_of(&b64(&answer["pssh"]["playready"]), &PLAYREADY_SYSTEM_ID);
        let header = wrmheader_from_playready_object(&pro).unwrap();
        let pr_kids: Vec<String> = header.kid_list().iter().map(|k| k.to_hex()).collect();
        assert_eq!(pr_kids, kids);
        assert_eq!(header.version.as_str(), if kids.len() == 1 { "4.0.0.0" } else { "4.2.0.0" });
        assert_eq!(header.la_url.as_deref(), Some(app.url("/license/playready").as_str()));
        for (parsed, key) in header.kids.iter().zip(keys) {
            let key: [u8; 16] = hex::decode(key["key"].as_str().unwrap()).unwrap().try_into().unwrap();
            assert_eq!(parsed.checksum_matches(&key), Some(true), "AESCTR checksum of {}", parsed.kid.to_hex());
        }
    }
}
