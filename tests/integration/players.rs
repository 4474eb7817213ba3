//! The player snippets of docs/players.md, run as written: the example pages in docs/examples/players/ with Shaka
//! Player from npm (tools/package.json), in headless Chromium, against DASH content packaged by Shaka
//! Packager with a Clavis key and licenses from Clavis.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::browser::{ChromeDriver, package, play, serve_dir};
use crate::kit::TestApp;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The players under test: (example page, the library file it loads, where npm put that file).
const PLAYERS: &[(&str, &str, &str)] =
    &[("shaka.html", "shaka-player.compiled.js", "tools/node_modules/shaka-player/dist/shaka-player.compiled.js")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_player_pages_play_with_clavis_licenses() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Player Docs").await;
    let keys = app.create_keys(&tenant, json!({ "content_id": "docs-clip" })).await;
    let (kid, key) = (keys["keys"][0]["kid"].as_str().unwrap(), keys["keys"][0]["key"].as_str().unwrap());
    app.create_keys(&tenant, json!({ "content_id": "another-clip" })).await;

    let media = tempfile::tempdir().unwrap();
    package(media.path(), kid, key);
    for (page, library, installed) in PLAYERS {
        let source = repo().join(installed);
        assert!(source.is_file(), "{} is missing: run scripts/test (it runs npm ci in tools/)", source.display());
        std::fs::copy(&source, media.path().join(library)).unwrap();
        std::fs::copy(repo().join("docs/examples/players").join(page), media.path().join(page)).unwrap();
    }
    let media_port = serve_dir(media.path().to_path_buf()).await;
    let page_url = |page: &str, token: &str| {
        let mut url = reqwest::Url::parse(&format!("http://127.0.0.1:{media_port}/{page}")).unwrap();
        url.query_pairs_mut()
            .append_pair("manifest", &format!("http://127.0.0.1:{media_port}/enc.mpd"))
            .append_pair("license", &format!("{}/license/clearkey", app.base))
            .append_pair("token", token);
        url.to_string()
    };

    let driver = ChromeDriver::start();
    let client = driver.browser().await;
    for (page, _, _) in PLAYERS {
        let token = app.token_for(&tenant, "viewer", "docs-clip").await;
        let state = play(&client, &page_url(page, &token), 2.0, Duration::from_secs(30)).await;
        assert!(state["currentTime"].as_f64().unwrap() > 2.0, "{page} plays with a Clavis license: {state}");

        let wrong = app.token_for(&tenant, "viewer", "another-clip").await;
        let state = play(&client, &page_url(page, &wrong), 2.0, Duration::from_secs(8)).await;
        assert!(state["currentTime"].as_f64().unwrap() < 0.1, "{page} must not play without the key: {state}");
        assert!(state["error"].is_string(), "{page} reports the refusal: {state}");
    }
    client.close().await.unwrap();

    // Every refusal was Clavis's decision, logged with its rule: one issued and one denied (4008) license per player.
    let log = app.license_log(&tenant).await;
    let issued = log.iter().filter(|r| r["outcome"] == "issued" && r["content_id"] == "docs-clip").count();
    let denied = log.iter().filter(|r| r["outcome"] == "denied" && r["error_code"] == 4008).count();
    assert!(issued >= PLAYERS.len(), "{log:?}");
    assert!(denied >= PLAYERS.len(), "{log:?}");
}
