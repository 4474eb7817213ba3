//! The player snippets of docs/players.md, run as written: the example pages in docs/examples/players/ with Shaka
//! Player and dash.js from npm (tools/package.json), in headless Chromium, against DASH content packaged by Shaka
//! Packager with a Clavis key and licenses from Clavis.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::browser::{ChromeDriver, package, play, serve_dir};
use crate::kit::TestApp;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A player under test: its example page, the library file the page loads, where npm put that file, and the MPD it
/// plays (docs/players.md says why dash.js gets its own).
struct Player {
    page: &'static str,
    library: &'static str,
    installed: &'static str,
    manifest: &'static str,
}

const PLAYERS: &[Player] = &[
    Player {
        page: "shaka.html",
        library: "shaka-player.compiled.js",
        installed: "tools/node_modules/shaka-player/dist/shaka-player.compiled.js",
        manifest: "enc.mpd",
    },
    Player {
        page: "dashjs.html",
        library: "dash.all.min.js",
        installed: "tools/node_modules/dashjs/dist/modern/umd/dash.all.min.js",
        manifest: "clavis.mpd",
    },
];

/// Shaka Packager's MPD with its `ContentProtection` elements replaced by the content's signalling from Clavis
/// (`signalling.dash` of `GET /api/v1/keys/{content_id}`), as docs/players.md tells dash.js users: without the W3C
/// common-PSSH element, which dash.js 5.2.1 hands to Chromium as `keyids` init data (refused with a TypeError).
fn mpd_for_dashjs(packaged: &str, signalling: &str) -> String {
    let mut kept = Vec::new();
    let mut element = String::new();
    for line in signalling.lines() {
        element.push_str(line);
        element.push('\n');
        if line.starts_with("<ContentProtection") && line.ends_with("/>") || line.starts_with("</ContentProtection>") {
            if !element.contains("urn:uuid:1077efec-c0b2-4d02-ace3-3c1e52e2fb4b") {
                kept.push(std::mem::take(&mut element));
            }
            element.clear();
        }
    }
    assert!(kept.iter().any(|e| e.contains("clearkey:Laurl")), "Clavis signals ClearKey with its license URL");
    let mut mpd = String::new();
    let mut skipping = false;
    for line in packaged.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("<ContentProtection") {
            skipping = !trimmed.ends_with("/>");
            continue;
        }
        if skipping {
            skipping = !trimmed.starts_with("</ContentProtection>");
            continue;
        }
        if trimmed.starts_with("<Representation") {
            mpd.push_str(&kept.concat());
        }
        mpd.push_str(line);
        mpd.push('\n');
    }
    mpd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_player_pages_play_with_clavis_licenses() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Player Docs").await;
    let keys = app.create_keys(&tenant, json!({ "content_id": "docs-clip" })).await;
    let (kid, key) = (keys["keys"][0]["kid"].as_str().unwrap(), keys["keys"][0]["key"].as_str().unwrap());
    app.create_keys(&tenant, json!({ "content_id": "another-clip" })).await;

    let media = tempfile::tempdir().unwrap();
    package(media.path(), kid, key);
    let packaged = std::fs::read_to_string(media.path().join("enc.mpd")).unwrap();
    let signalling = keys["signalling"]["dash"].as_str().unwrap();
    std::fs::write(media.path().join("clavis.mpd"), mpd_for_dashjs(&packaged, signalling)).unwrap();
    for player in PLAYERS {
        let source = repo().join(player.installed);
        assert!(source.is_file(), "{} is missing: run scripts/test (it runs npm ci in tools/)", source.display());
        std::fs::copy(&source, media.path().join(player.library)).unwrap();
        std::fs::copy(repo().join("docs/examples/players").join(player.page), media.path().join(player.page)).unwrap();
    }
    let media_port = serve_dir(media.path().to_path_buf()).await;
    let page_url = |player: &Player, token: &str| {
        let mut url = reqwest::Url::parse(&format!("http://127.0.0.1:{media_port}/{}", player.page)).unwrap();
        url.query_pairs_mut()
            .append_pair("manifest", &format!("http://127.0.0.1:{media_port}/{}", player.manifest))
            .append_pair("license", &format!("{}/license/clearkey", app.base))
            .append_pair("token", token);
        url.to_string()
    };

    let driver = ChromeDriver::start();
    let client = driver.browser().await;
    for player in PLAYERS {
        let page = player.page;
        let token = app.token_for(&tenant, "viewer", "docs-clip").await;
        let state = play(&client, &page_url(player, &token), 2.0, Duration::from_secs(30)).await;
        assert!(state["currentTime"].as_f64().unwrap() > 2.0, "{page} plays with a Clavis license: {state}");
        assert_eq!(state["licenseStatus"], 200, "{page}: {state}");

        let wrong = app.token_for(&tenant, "viewer", "another-clip").await;
        let state = play(&client, &page_url(player, &wrong), 2.0, Duration::from_secs(8)).await;
        assert!(state["currentTime"].as_f64().unwrap() < 0.1, "{page} must not play without the key: {state}");
        assert!(state["error"].is_string(), "{page} reports the refusal: {state}");
        assert_eq!(state["licenseStatus"], 403, "{page}: {state}");
        assert_eq!(state["licenseError"], "4008", "{page} reads the catalog code of the refusal: {state}");
    }
    client.close().await.unwrap();

    // Every refusal was Clavis's decision, logged with its rule: one issued and one denied (4008) license per player.
    let log = app.license_log(&tenant).await;
    let issued = log.iter().filter(|r| r["outcome"] == "issued" && r["content_id"] == "docs-clip").count();
    let denied = log.iter().filter(|r| r["outcome"] == "denied" && r["error_code"] == 4008).count();
    assert!(issued >= PLAYERS.len(), "{log:?}");
    assert!(denied >= PLAYERS.len(), "{log:?}");
}
