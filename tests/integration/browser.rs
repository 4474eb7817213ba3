//! Real playback: content encrypted by Shaka Packager with a key made by Clavis, played in headless Chromium
//! through MSE + EME ClearKey with a license from Clavis. Needs chromium, chromedriver, ffmpeg and Shaka Packager
//! (`scripts/test` installs them); a missing tool fails the test, it is never skipped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use crate::kit::TestApp;

pub(crate) const PAGE: &str = include_str!("clearkey_player.html");

pub(crate) fn tool(env: &str, candidates: &[&str]) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    candidates.iter().map(PathBuf::from).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("{env} is not set and none of {candidates:?} exists; run scripts/test, which installs the tools")
    })
}

pub(crate) fn packager() -> PathBuf {
    tool(
        "CLAVIS_PACKAGER",
        &[concat!(env!("CARGO_MANIFEST_DIR"), "/tools/node_modules/shaka-packager/bin/packager-linux-x64")],
    )
}

pub(crate) fn check(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(output.status.success(), "{what} failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// A 6-second test clip, encrypted with `kid`/`key` (CENC, common-system PSSH) into one fragmented MP4.
/// Returns the encrypted file's name in `dir` and its codecs string.
pub(crate) fn package(dir: &Path, kid: &str, key: &str) -> String {
    test_clip(dir, 6);
    check(
        Command::new(packager()).current_dir(dir).args([
            "in=clear.mp4,stream=video,output=enc.mp4",
            "--enable_raw_key_encryption",
            "--keys",
            &format!("label=:key_id={kid}:key={key}"),
            "--protection_systems",
            "CommonSystem",
            "--clear_lead",
            "0",
            "--mpd_output",
            "enc.mpd",
        ]),
        "shaka packager",
    );
    mpd_codecs(&std::fs::read_to_string(dir.join("enc.mpd")).unwrap())
}

/// `clear.mp4` in `dir`: an H.264 test pattern of `seconds` at 320x240, 25 fps, a key frame every second.
pub(crate) fn test_clip(dir: &Path, seconds: u32) {
    check(
        Command::new(tool("CLAVIS_FFMPEG", &["/usr/bin/ffmpeg"])).current_dir(dir).args([
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc=duration={seconds}:size=320x240:rate=25"),
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "25",
            "clear.mp4",
        ]),
        "ffmpeg",
    );
}

/// A plain static file server on its own port (another origin than Clavis, as a real player page would be). It
/// honours single byte ranges like any CDN: players read on-demand MP4s (`SegmentBase`) by range, and dash.js needs it.
pub(crate) async fn serve_dir(dir: PathBuf) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let dir = dir.clone();
        App::new().route(
            "/{file}",
            web::get().to(move |file: web::Path<String>, request: actix_web::HttpRequest| {
                let dir = dir.clone();
                async move {
                    let name = file.into_inner();
                    if name.contains('/') || name.contains("..") {
                        return HttpResponse::NotFound().finish();
                    }
                    let Ok(bytes) = std::fs::read(dir.join(&name)) else { return HttpResponse::NotFound().finish() };
                    let kind = match name.rsplit_once('.').map(|(_, ext)| ext) {
                        Some("html") => "text/html; charset=utf-8",
                        Some("js") => "text/javascript",
                        Some("mpd") => "application/dash+xml",
                        _ => "application/octet-stream",
                    };
                    let range = request.headers().get("range").and_then(|v| v.to_str().ok()).and_then(byte_range);
                    match range {
                        Some((start, end)) if start < bytes.len() => {
                            let end = end.unwrap_or(bytes.len() - 1).min(bytes.len() - 1);
                            HttpResponse::PartialContent()
                                .content_type(kind)
                                .insert_header(("Content-Range", format!("bytes {start}-{end}/{}", bytes.len())))
                                .body(bytes[start..=end].to_vec())
                        }
                        _ => HttpResponse::Ok().content_type(kind).body(bytes),
                    }
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    port
}

/// `bytes=START-` or `bytes=START-END` (the only forms players send).
fn byte_range(header: &str) -> Option<(usize, Option<usize>)> {
    let (start, end) = header.strip_prefix("bytes=")?.split_once('-')?;
    let start = start.parse().ok()?;
    let end = if end.is_empty() { None } else { Some(end.parse().ok()?) };
    Some((start, end)).filter(|(s, e)| e.is_none_or(|e| e >= *s))
}

pub(crate) struct ChromeDriver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl ChromeDriver {
    pub(crate) fn start() -> ChromeDriver {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(tool("CLAVIS_CHROMEDRIVER", &["/usr/bin/chromedriver"]))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        ChromeDriver { child, port, _profile: tempfile::tempdir().unwrap() }
    }

    pub(crate) async fn browser(&self) -> fantoccini::Client {
        let profile = self._profile.path().display().to_string();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": tool("CLAVIS_CHROMIUM", &["/usr/bin/chromium"]),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", "--disable-quic", "--autoplay-policy=no-user-gesture-required",
                    format!("--user-data-dir={profile}"),
                ]
            }),
        );
        fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The URL of the ClearKey test player (`player.html` served by [`serve_dir`] on `media_port`) for one fMP4 file, its
/// codecs string, the Clavis server at `clavis_base` and a license token.
pub(crate) fn player_url(media_port: u16, media: &str, codecs: &str, clavis_base: &str, token: &str) -> String {
    let mut url = reqwest::Url::parse(&format!("http://127.0.0.1:{media_port}/player.html")).unwrap();
    url.query_pairs_mut()
        .append_pair("media", media)
        .append_pair("type", &format!("video/mp4; codecs=\"{codecs}\""))
        .append_pair("license", &format!("{clavis_base}/license/clearkey"))
        .append_pair("token", token);
    url.to_string()
}

/// The `codecs` attribute of the first representation of an MPD.
pub(crate) fn mpd_codecs(mpd: &str) -> String {
    mpd.split("codecs=\"").nth(1).and_then(|rest| rest.split('"').next()).expect("codecs in the MPD").to_owned()
}

/// Open the player page and poll until `currentTime` passes `target` or `timeout` elapses; returns the last state.
pub(crate) async fn play(client: &fantoccini::Client, page_url: &str, target: f64, timeout: Duration) -> Value {
    client.goto(page_url).await.unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        let state = client.execute("return window.playerState();", vec![]).await.unwrap();
        if state["currentTime"].as_f64().unwrap_or(0.0) > target || Instant::now() > deadline {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_clearkey_content_with_a_clavis_license() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Browser Films").await;
    let keys = app.create_keys(&tenant, json!({"content_id": "clip"})).await;
    let kid = keys["keys"][0]["kid"].as_str().unwrap().to_owned();
    let key = keys["keys"][0]["key"].as_str().unwrap().to_owned();
    app.create_keys(&tenant, json!({"content_id": "other-clip"})).await;

    let media = tempfile::tempdir().unwrap();
    let codecs = package(media.path(), &kid, &key);
    std::fs::write(media.path().join("player.html"), PAGE).unwrap();
    let media_port = serve_dir(media.path().to_path_buf()).await;

    let driver = ChromeDriver::start();
    let client = driver.browser().await;
    let page = |token: &str| player_url(media_port, "enc.mp4", &codecs, &app.base, token);

    let token = app.token_for(&tenant, "viewer", "clip").await;
    let state = play(&client, &page(&token), 2.0, Duration::from_secs(30)).await;
    assert!(state["currentTime"].as_f64().unwrap() > 2.0, "playback with a Clavis license: {state}");
    assert_eq!(state["licenseStatus"], 200, "{state}");

    // The same page with a token for another content gets no key and does not play.
    let wrong = app.token_for(&tenant, "viewer", "other-clip").await;
    let state = play(&client, &page(&wrong), 2.0, Duration::from_secs(6)).await;
    assert_eq!(state["licenseStatus"], 403, "{state}");
    assert_eq!(state["licenseError"], "4008", "the player can read the catalog code through CORS: {state}");
    assert!(state["currentTime"].as_f64().unwrap() < 0.1, "no playback without the right key: {state}");

    client.close().await.unwrap();
    let log = app.license_log(&tenant).await;
    assert!(log.iter().any(|r| r["outcome"] == "issued"
        && r["content_id"] == "clip"
        && r["origin"].as_str().is_some_and(|o| o.contains(&media_port.to_string()))));
    assert!(log.iter().any(|r| r["outcome"] == "denied" && r["error_code"] == 4008));
}
