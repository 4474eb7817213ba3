//! Master-key rotation (`clavis master-key rotate`): killed midway, resumed, and then the new key alone opens every
//! secret the platform stores (content keys, the key seed, token signing secrets).

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use clavis::ServiceSet;
use clavis_core::crypto::MasterKey;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::cli::clavis;
use crate::kit::TestApp;

fn with_database(command: &mut std::process::Command, app: &TestApp) {
    command.env("CLAVIS_DATABASE_URL", &app.database_url).env("CLAVIS_DATA_DIR", app._dir.path());
}

/// `clavis master-key status`: master key id -> count, per table.
fn status(app: &TestApp, current: &str) -> Value {
    let mut command = clavis();
    with_database(&mut command, app);
    let output = command.args(["master-key", "status"]).env("CLAVIS_MASTER_KEY", current).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let status: Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut by_table = serde_json::Map::new();
    for table in status["tables"].as_array().unwrap() {
        by_table.insert(table["table"].as_str().unwrap().to_owned(), table["by_key"].clone());
    }
    json!({ "current": status["current"], "tables": by_table })
}

fn key_id(encoded: &str) -> String {
    MasterKey::from_base64(encoded).unwrap().id_hex()
}

#[tokio::test]
async fn rotation_killed_midway_resumes_and_loses_no_key() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Rotate").await;
    let seed = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 30]);
    assert_eq!(app.put("/api/v1/key-seed", &tenant.api_key, &json!({ "key_seed": seed })).await.status(), 200);
    let mut contents = Vec::new();
    for i in 0..40 {
        let content = format!("movie-{i}");
        let answer = app.create_keys(&tenant, json!({ "content_id": content, "tracks": ["SD", "HD"] })).await;
        contents.push((content, answer["keys"].clone()));
    }
    // A token signed before the rotation must still verify after it (the signing secret is sealed too).
    let token = app.token_for(&tenant, "user-1", "movie-0").await;

    let old = app.master_key.clone();
    let new = MasterKey::generate_base64().unwrap().to_string();
    let before = status(&app, &old);
    assert_eq!(before["tables"]["content_keys"][key_id(&old)], 80, "{before}");

    // Rotate in small, paced batches and kill the process after a few committed batches of content keys.
    let mut command = clavis();
    with_database(&mut command, &app);
    let mut child = command
        .args(["master-key", "rotate", "--batch-size", "4", "--pause-ms", "150"])
        .env("CLAVIS_MASTER_KEY", &new)
        .env("CLAVIS_MASTER_KEY_PREVIOUS", &old)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("rotation ended before it could be interrupted").unwrap();
        let progress: Value = serde_json::from_str(&line).unwrap();
        if progress["progress"]["table"] == "content_keys" && progress["progress"]["rewrapped"].as_u64() >= Some(12) {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // Midway: some content keys under each key, and no row lost.
    let midway = status(&app, &new);
    let content_keys = &midway["tables"]["content_keys"];
    let (under_old, under_new) =
        (content_keys[key_id(&old)].as_u64().unwrap_or(0), content_keys[key_id(&new)].as_u64().unwrap_or(0));
    assert!(under_old > 0 && under_new >= 12, "the kill should land midway: {midway}");
    assert_eq!(under_old + under_new, 80, "{midway}");

    // A server given the new key and the old one as previous reads everything during the rotation.
    let during = TestApp::spawn_with(ServiceSet::ALL, |config| {
        config.database_url = Some(SecretString::from(app.database_url.clone()));
        config.master_key = Some(SecretString::from(new.clone()));
        config.master_key_previous = Some(SecretString::from(old.clone()));
    })
    .await;
    let read: Value = during.get("/api/v1/keys/movie-39", &tenant.api_key).await.json().await.unwrap();
    assert_eq!(read["keys"], contents[39].1);

    // Resume: the second run finishes, re-wrapping only what the first left.
    let mut command = clavis();
    with_database(&mut command, &app);
    let output = command
        .args(["master-key", "rotate", "--batch-size", "4"])
        .env("CLAVIS_MASTER_KEY", &new)
        .env("CLAVIS_MASTER_KEY_PREVIOUS", &old)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let last: Value = serde_json::from_str(String::from_utf8_lossy(&output.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(last["rotated_to"], key_id(&new));
    let resumed = last["tables"].as_array().unwrap().iter().find(|t| t["table"] == "content_keys").unwrap();
    assert_eq!(resumed["rewrapped"].as_u64().unwrap(), under_old, "only the rows left under the old key: {last}");

    let after = status(&app, &new);
    for (table, by_key) in after["tables"].as_object().unwrap() {
        let ids: Vec<&String> = by_key.as_object().unwrap().keys().collect();
        assert!(ids.is_empty() || ids == [&key_id(&new)], "{table} still has values under another key: {after}");
    }
    assert_eq!(after["tables"]["content_keys"][key_id(&new)], 80);

    // The new key alone now opens every secret: content keys, the key seed, the token signing secret.
    let alone = TestApp::spawn_with(ServiceSet::ALL, |config| {
        config.database_url = Some(SecretString::from(app.database_url.clone()));
        config.master_key = Some(SecretString::from(new.clone()));
    })
    .await;
    for (content, keys) in &contents {
        let read: Value = alone.get(&format!("/api/v1/keys/{content}"), &tenant.api_key).await.json().await.unwrap();
        assert_eq!(&read["keys"], keys, "{content}");
    }
    let seeded = alone.create_keys(&tenant, json!({ "content_id": "after-rotation", "source": "key_seed" })).await;
    assert_eq!(seeded["keys"][0]["source"], "key_seed");
    let kid = contents[0].1[0]["kid"].as_str().unwrap();
    let license = alone.clearkey(&token, &[kid]).await;
    assert_eq!(license.status(), 200, "a token signed before the rotation still verifies");
    let fresh = alone.token_for(&tenant, "user-2", "movie-1").await;
    assert_eq!(alone.clearkey(&fresh, &[contents[1].1[0]["kid"].as_str().unwrap()]).await.status(), 200);

    // And the old key alone no longer can: the rotation really moved the secrets.
    let mut command = clavis();
    with_database(&mut command, &app);
    let output = command.args(["master-key", "rotate"]).env("CLAVIS_MASTER_KEY", &old).output().unwrap();
    assert!(!output.status.success(), "re-wrapping back without the new key must fail, not skip");
}
