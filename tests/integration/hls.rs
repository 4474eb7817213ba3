//! HLS: AES-128 key delivery (`GET /license/hls-aes/{site_id}/{content_id}/{kid}`), the `signalling` of the key API
//! that points players at it, an end-to-end check with ffmpeg (encrypt with the key from Clavis, decrypt by fetching
//! the key from Clavis over HTTP), and the DRM `#EXT-X-KEY` lines compared with what Shaka Packager writes.
//! Needs ffmpeg and Shaka Packager (`scripts/test` installs them); a missing tool fails the test.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::browser::{check, packager, serve_dir, tool};
use crate::kit::{TestApp, TestTenant, assert_problem};

fn ffmpeg() -> std::path::PathBuf {
    tool("CLAVIS_FFMPEG", &["/usr/bin/ffmpeg"])
}

/// The value of a quoted attribute (`NAME="..."`) of an `#EXT-X-KEY` line.
fn quoted<'a>(line: &'a str, name: &str) -> &'a str {
    let start =
        line.find(&format!(",{name}=\"")).map(|i| i + name.len() + 3).unwrap_or_else(|| panic!("{name} in {line}"));
    let len = line[start..].find('"').unwrap();
    &line[start..start + len]
}

/// The `IV=0x...` of an AES-128 line, as lowercase hex.
fn iv_of(line: &str) -> String {
    let start = line.find(",IV=0x").unwrap() + 6;
    line[start..].split(',').next().unwrap().to_lowercase()
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_else(|| panic!("not a string: {value}"))
}

async fn fetch_key(app: &TestApp, uri: &str, token: &str) -> reqwest::Response {
    app.http.get(uri).header("X-Clavis-Token", token).send().await.unwrap()
}

async fn assert_key(response: reqwest::Response, key_hex: &str) {
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/octet-stream");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body = response.bytes().await.unwrap();
    assert_eq!(body.len(), 16);
    assert_eq!(hex::encode(&body), key_hex);
}

#[tokio::test]
async fn the_aes128_line_of_the_key_api_points_at_a_working_key_uri() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let created = app.create_keys(&tenant, json!({"content_id": "movie-1"})).await;
    let read: Value = app.get("/api/v1/keys/movie-1", &tenant.api_key).await.json().await.unwrap();
    assert_eq!(read["signalling"], created["signalling"], "the read answers the same signalling");
    let kid = text(&created["keys"][0]["kid"]).to_owned();
    let key = text(&created["keys"][0]["key"]).to_owned();
    let iv = text(&created["keys"][0]["iv"]).to_owned();

    let signalling = &created["signalling"];
    assert!(signalling.get("tracks").is_none(), "one key: no per-track signalling");
    let line = text(&signalling["hls"]["aes128"]);
    let uri = quoted(line, "URI");
    assert_eq!(uri, format!("{}/license/hls-aes/{}/movie-1/{kid}", app.base, tenant.site_id));
    assert_eq!(line, format!("#EXT-X-KEY:METHOD=AES-128,URI=\"{uri}\",IV=0x{iv}"));
    assert_eq!(
        text(&signalling["hls"]["fairplay"]),
        "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://movie-1\",KEYFORMATVERSIONS=\"1\",KEYFORMAT=\"com.apple.streamingkeydelivery\""
    );
    assert!(text(&signalling["hls"]["widevine"]).contains(&format!(",KEYID=0x{kid},")));
    let dash = text(&signalling["dash"]);
    assert!(
        dash.contains(&format!("<clearkey:Laurl Lic_type=\"EME-1.0\">{}/license/clearkey</clearkey:Laurl>", app.base))
    );
    assert!(dash.contains(&format!("cenc:default_KID=\"{}\"", uuid::Uuid::parse_str(&kid).unwrap().hyphenated())));
    assert!(dash.contains(&format!("<cenc:pssh>{}</cenc:pssh>", text(&created["pssh"]["playready"]))));

    // The token in the header, or appended to the URI as players that only follow URIs need.
    let token = app.token_for(&tenant, "viewer-1", "movie-1").await;
    assert_key(fetch_key(&app, uri, &token).await, &key).await;
    assert_key(app.http.get(format!("{uri}?token={token}")).send().await.unwrap(), &key).await;
    // The KID in UUID form names the same key.
    let uuid_uri = uri.replace(&kid, &uuid::Uuid::parse_str(&kid).unwrap().hyphenated().to_string());
    assert_key(fetch_key(&app, &uuid_uri, &token).await, &key).await;

    // Browsers (hls.js) may read the answer from any origin of a new tenant, and may send the token header.
    let response = app
        .http
        .get(uri)
        .header("Origin", "https://player.example")
        .header("X-Clavis-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "https://player.example");
    assert_key(response, &key).await;
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, uri)
        .header("Origin", "https://player.example")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "x-clavis-token")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert!(preflight.headers()["access-control-allow-methods"].to_str().unwrap().contains("GET"));
    assert!(preflight.headers()["access-control-allow-headers"].to_str().unwrap().contains("x-clavis-token"));

    let log = app.license_log(&tenant).await;
    assert_eq!(log.len(), 4);
    for row in &log {
        assert_eq!(row["drm"], "hls-aes");
        assert_eq!(row["outcome"], "issued");
        assert_eq!(row["rule"], "ok");
        assert_eq!(row["user_id"], "viewer-1");
        assert_eq!(row["content_id"], "movie-1");
        assert_eq!(row["kids"], json!([kid]));
    }
}

#[tokio::test]
async fn every_key_of_an_oddly_named_content_has_a_working_key_uri() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let content = "Série 1/ép. 2?#%+\"x\"";
    let created = app.create_keys(&tenant, json!({"content_id": content, "tracks": ["SD", "HD", "AUDIO"]})).await;
    let token = app.token_for(&tenant, "viewer", content).await;
    let tracks = created["signalling"]["tracks"].as_array().unwrap();
    assert_eq!(tracks.len(), 3);
    assert_eq!(created["signalling"]["hls"], tracks[0]["hls"], "the top level signals the first key");
    for (track, key) in tracks.iter().zip(created["keys"].as_array().unwrap()) {
        assert_eq!(track["kid"], key["kid"]);
        assert_eq!(track["track_type"], key["track_type"]);
        let line = text(&track["hls"]["aes128"]);
        assert_eq!(iv_of(line), text(&key["iv"]));
        let uri = quoted(line, "URI");
        assert!(
            uri.contains("/S%C3%A9rie%201%2F%C3%A9p.%202%3F%23%25%2B%22x%22/"),
            "the content id is one percent-encoded segment: {uri}"
        );
        assert_key(app.http.get(format!("{uri}?token={token}")).send().await.unwrap(), text(&key["key"])).await;
    }
    let log = app.license_log(&tenant).await;
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|r| r["outcome"] == "issued" && r["content_id"] == content));
}

#[tokio::test]
async fn refusals_carry_catalog_codes_and_are_logged() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let stranger = app.create_tenant("Other").await;
    let movie = app.create_keys(&tenant, json!({"content_id": "movie-1"})).await;
    let other = app.create_keys(&tenant, json!({"content_id": "movie-2"})).await;
    app.create_keys(&stranger, json!({"content_id": "movie-1"})).await;
    let kid = text(&movie["keys"][0]["kid"]).to_owned();
    let other_kid = text(&other["keys"][0]["kid"]).to_owned();
    let uri = |site: &TestTenant, content: &str, kid: &str| {
        format!("{}/license/hls-aes/{}/{content}/{kid}", app.base, site.site_id)
    };
    let token = app.token_for(&tenant, "u1", "movie-1").await;

    // No token; a token for another content; a URI naming another tenant's site, either way round.
    let response = app.http.get(uri(&tenant, "movie-1", &kid)).send().await.unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_problem(response, 401, 4001).await;
    let movie_2 = app.token_for(&tenant, "u1", "movie-2").await;
    let body = assert_problem(fetch_key(&app, &uri(&tenant, "movie-1", &kid), &movie_2).await, 403, 4008).await;
    assert!(text(&body["detail"]).contains("movie-2"), "{body}");
    let body = assert_problem(fetch_key(&app, &uri(&stranger, "movie-1", &kid), &token).await, 403, 4008).await;
    assert!(text(&body["detail"]).contains(&stranger.site_id), "{body}");
    let strangers_token = app.token_for(&stranger, "u1", "movie-1").await;
    assert_problem(fetch_key(&app, &uri(&tenant, "movie-1", &kid), &strangers_token).await, 403, 4008).await;

    // A KID of no content, a KID of another content, a KID that is not one.
    let none = "00000000000000000000000000000001";
    assert_problem(fetch_key(&app, &uri(&tenant, "movie-1", none), &token).await, 403, 5002).await;
    assert_problem(fetch_key(&app, &uri(&tenant, "movie-1", &other_kid), &token).await, 403, 4008).await;
    assert_problem(fetch_key(&app, &uri(&tenant, "movie-1", "not-a-kid"), &token).await, 400, 5001).await;
    // A URI without a KID is no endpoint.
    let response = fetch_key(&app, &format!("{}/license/hls-aes/{}/movie-1", app.base, tenant.site_id), &token).await;
    assert_problem(response, 404, 1002).await;

    // DRM-limited tokens: only `hls-aes` ones fetch AES-128 keys.
    let clearkey_only =
        app.mint_token(&tenant, json!({"user_id": "u1", "content_id": "movie-1", "drm": "clearkey"})).await;
    assert_problem(fetch_key(&app, &uri(&tenant, "movie-1", &kid), &clearkey_only).await, 403, 4009).await;
    let hls_only = app.mint_token(&tenant, json!({"user_id": "u1", "content_id": "movie-1", "drm": "hls-aes"})).await;
    assert_key(fetch_key(&app, &uri(&tenant, "movie-1", &kid), &hls_only).await, text(&movie["keys"][0]["key"])).await;

    let log = app.license_log(&tenant).await;
    let denied: Vec<(i64, String, Value)> = log
        .iter()
        .filter(|r| r["outcome"] == "denied")
        .map(|r| {
            assert_eq!(r["drm"], "hls-aes");
            (r["error_code"].as_i64().unwrap(), text(&r["rule"]).to_owned(), r["kids"].clone())
        })
        .collect();
    for (code, rule, kids) in [
        (4008, "content", json!([kid])),
        (5002, "kids", json!([none])),
        (4008, "kids", json!([other_kid])),
        (5001, "request", json!([])),
        (4009, "drm", json!([kid])),
    ] {
        assert!(
            denied.iter().any(|(c, r, k)| *c == code && r == rule && *k == kids),
            "({code}, {rule}, {kids}) not in {denied:?}"
        );
    }
    // Two 4008s for the site: the stranger's token is logged with the stranger, the others here.
    assert_eq!(denied.iter().filter(|(c, r, _)| *c == 4008 && r == "content").count(), 2);
    assert!(!denied.iter().any(|(c, _, _)| *c == 4001));
    let strangers = app.license_log(&stranger).await;
    assert!(strangers.iter().any(|r| r["error_code"] == 4008 && r["rule"] == "content"));
}

/// Write `name` in `dir` with ffmpeg: a 4-second 25 fps test clip, HLS with two AES-128 segments, encrypted per
/// `key_info` (the key URI, the key file, the IV), as a packager would.
fn encrypt_hls(dir: &Path, key_info: &str) {
    std::fs::write(dir.join("keyinfo"), key_info).unwrap();
    check(
        Command::new(ffmpeg()).current_dir(dir).args([
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=4:size=320x240:rate=25",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "25",
            "-f",
            "hls",
            "-hls_time",
            "2",
            "-hls_playlist_type",
            "vod",
            "-hls_key_info_file",
            "keyinfo",
            "-hls_segment_filename",
            "seg_%d.ts",
            "playlist.m3u8",
        ]),
        "ffmpeg (encrypt)",
    );
}

/// Decode an HLS playlist over HTTP as a player would (the key fetched from its key URI); the decoded frames, or
/// ffmpeg's complaint.
fn decode_hls(url: &str) -> Result<usize, String> {
    let output = Command::new(ffmpeg())
        .args(["-hide_banner", "-nostats", "-loglevel", "error", "-protocol_whitelist", "file,http,tcp,crypto"])
        .args(["-i", url, "-map", "0:v", "-f", "framemd5", "-"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        return Err(stderr);
    }
    let frames = String::from_utf8_lossy(&output.stdout).lines().filter(|l| !l.starts_with('#')).count();
    Ok(frames)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_decrypts_hls_aes128_with_the_key_from_clavis() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("HLS Films").await;
    let keys = app.create_keys(&tenant, json!({"content_id": "clip"})).await;
    app.create_keys(&tenant, json!({"content_id": "other-clip"})).await;
    let line = text(&keys["signalling"]["hls"]["aes128"]).to_owned();
    let (uri, iv) = (quoted(&line, "URI").to_owned(), iv_of(&line));
    let key = hex::decode(text(&keys["keys"][0]["key"])).unwrap();

    // Package with the key and the key URI Clavis gave (plus the player's token), as a packager would.
    let token = app.token_for(&tenant, "viewer", "clip").await;
    let media = tempfile::tempdir().unwrap();
    std::fs::write(media.path().join("clip.key"), &key).unwrap();
    encrypt_hls(media.path(), &format!("{uri}?token={token}\nclip.key\n{iv}\n"));
    let playlist = std::fs::read_to_string(media.path().join("playlist.m3u8")).unwrap();
    let written: Vec<&str> = playlist.lines().filter(|l| l.starts_with("#EXT-X-KEY")).collect();
    let expected = line.replacen(&format!("URI=\"{uri}\""), &format!("URI=\"{uri}?token={token}\""), 1);
    assert_eq!(written, [expected.as_str()], "ffmpeg writes the line Clavis signalled");
    let segment = std::fs::read(media.path().join("seg_0.ts")).unwrap();
    let clear_ts = [0, 188, 376].iter().all(|&i| segment.get(i) == Some(&0x47));
    assert!(!clear_ts, "segments are encrypted (clear TS packets start with the sync byte 0x47)");

    // The same segments behind a playlist whose token is for another content.
    let wrong = app.token_for(&tenant, "viewer", "other-clip").await;
    std::fs::write(media.path().join("wrong.m3u8"), playlist.replace(&token, &wrong)).unwrap();
    let port = serve_dir(media.path().to_path_buf()).await;

    let url = format!("http://127.0.0.1:{port}/playlist.m3u8");
    let frames = tokio::task::spawn_blocking(move || decode_hls(&url)).await.unwrap();
    assert_eq!(frames, Ok(100), "4 s at 25 fps, decrypted with the key from Clavis");

    let url = format!("http://127.0.0.1:{port}/wrong.m3u8");
    let refused = tokio::task::spawn_blocking(move || decode_hls(&url)).await.unwrap();
    let complaint = refused.expect_err("no key, no playback");
    assert!(complaint.contains("key"), "{complaint}");

    let log = app.license_log(&tenant).await;
    assert!(log.iter().any(|r| r["outcome"] == "issued" && r["drm"] == "hls-aes" && r["content_id"] == "clip"));
    assert!(log.iter().any(|r| r["outcome"] == "denied" && r["error_code"] == 4008 && r["content_id"] == "other-clip"));
}

/// The DRM lines of a media playlist Shaka Packager wrote.
fn shaka_key_lines(dir: &Path, name: &str, args: &[&str]) -> Vec<String> {
    let mut command = Command::new(packager());
    command.current_dir(dir).arg(format!(
        "in=clear.mp4,stream=video,init_segment={name}/init.mp4,segment_template={name}/$Number$.m4s,playlist_name={name}.m3u8"
    ));
    command.args(args).args(["--clear_lead", "0", "--hls_master_playlist_output", &format!("{name}-master.m3u8")]);
    check(&mut command, "shaka packager");
    let playlist = std::fs::read_to_string(dir.join(format!("{name}.m3u8"))).unwrap();
    playlist.lines().filter(|l| l.starts_with("#EXT-X-KEY")).map(str::to_owned).collect()
}

#[tokio::test]
async fn shaka_packager_writes_the_drm_lines_clavis_signals() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let keys = app.create_keys(&tenant, json!({"content_id": "movie-1"})).await;
    let raw_key = format!("label=:key_id={}:key={}", text(&keys["keys"][0]["kid"]), text(&keys["keys"][0]["key"]));
    let hls = &keys["signalling"]["hls"];
    let dir = tempfile::tempdir().unwrap();
    check(
        Command::new(ffmpeg()).current_dir(dir.path()).args([
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=2:size=160x120:rate=25",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "clear.mp4",
        ]),
        "ffmpeg",
    );
    // `cenc` with Clavis's Widevine and PlayReady boxes: the packager writes exactly Clavis's two lines.
    let b64 = |v: &Value| {
        use base64::Engine;
        hex::encode(base64::engine::general_purpose::STANDARD.decode(text(v)).unwrap())
    };
    let pssh = format!("{}{}", b64(&keys["pssh"]["widevine"]), b64(&keys["pssh"]["playready"]));
    let mut lines =
        shaka_key_lines(dir.path(), "cenc", &["--enable_raw_key_encryption", "--keys", &raw_key, "--pssh", &pssh]);
    lines.sort();
    let mut ours = vec![text(&hls["playready"]).to_owned(), text(&hls["widevine"]).to_owned()];
    ours.sort();
    assert_eq!(lines, ours);

    // FairPlay (`cbcs`), with the skd:// URI Clavis signals as the packager's key URI.
    let skd = quoted(text(&hls["fairplay"]), "URI").to_owned();
    let lines = shaka_key_lines(
        dir.path(),
        "fairplay",
        &[
            "--enable_raw_key_encryption",
            "--keys",
            &raw_key,
            "--protection_systems",
            "FairPlay",
            "--protection_scheme",
            "cbcs",
            "--hls_key_uri",
            &skd,
        ],
    );
    assert_eq!(lines, [text(&hls["fairplay"])]);
}

#[tokio::test]
async fn callback_mode_serves_the_key_of_the_uri_when_the_backend_allows_it() {
    use crate::callback::{Backend, Behaviour};
    let app = crate::callback::spawn_allowing_private().await;
    let tenant = app.create_tenant("Callback HLS").await;
    let created = app.create_keys(&tenant, json!({"content_id": "movie-1"})).await;
    let other = app.create_keys(&tenant, json!({"content_id": "movie-2"})).await;
    let (kid, key) = (text(&created["keys"][0]["kid"]).to_owned(), text(&created["keys"][0]["key"]).to_owned());
    let backend = Backend::start(Behaviour::Allow(json!({}))).await;
    crate::callback::configure(&app, &tenant, &backend.url).await;
    let uri = |content: &str, kid: &str| {
        format!(
            "{}/license/hls-aes/{}/{content}/{kid}?callback={}.hls-session",
            app.base, tenant.site_id, tenant.site_id
        )
    };

    // The key URI carries the callback value (a player fetching it sends no headers of ours).
    let answer = app.http.get(uri("movie-1", &kid)).send().await.unwrap();
    assert_key(answer, &key).await;
    let facts = backend.last().facts();
    assert_eq!((facts["drm"].as_str(), facts["content_id"].as_str()), (Some("hls-aes"), Some("movie-1")), "{facts}");
    assert_eq!(facts["kids"], json!([kid]));
    assert_eq!(facts["session"], "hls-session");

    // A URI whose KID belongs to another content than it names is refused after the backend allowed that KID's
    // content; the backend's refusal is the answer.
    let other_kid = text(&other["keys"][0]["kid"]).to_owned();
    assert_problem(app.http.get(uri("movie-1", &other_kid)).send().await.unwrap(), 403, 4008).await;
    backend.set(Behaviour::Deny("rental over"));
    assert_problem(app.http.get(uri("movie-1", &kid)).send().await.unwrap(), 403, 5030).await;
}
