//! The packager guide's snippets (`docs/packagers.md`) against a live server: the Unified Streaming CPIX request
//! posted with curl gets keys and signalling, and the ffmpeg snippet encrypts with the content's key from Clavis and
//! decrypts with the key a ClearKey license delivers. Also the Dockerfile's agreement with the workspace (the image
//! itself cannot be built here: no Docker daemon, no registry).

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clavis_keys::cpix::document::{FieldKind, KeyValue};
use serde_json::{Value, json};

use crate::browser::tool;
use crate::kit::TestApp;
use crate::migrating::run_example;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(relative: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// The decryption check of the ffmpeg section, as the guide prints it (run below with `sh -c`).
const FFMPEG_DECRYPT: &str =
    r#"ffmpeg -loglevel error -decryption_key "$KEY" -i movie-1.mp4 -f framemd5 movie-1.framemd5"#;

#[test]
fn the_guide_shows_the_snippets_as_they_are_tested() {
    let doc = read("docs/packagers.md");
    for file in ["unified/fetch_cpix.sh", "unified/request.cpix.xml", "ffmpeg/package_cenc.sh"] {
        let code = read(&format!("docs/examples/{file}"));
        assert!(doc.contains(&code), "docs/packagers.md does not show docs/examples/{file} as it is");
    }
    assert!(doc.contains(FFMPEG_DECRYPT));
    // mp4split is commercial: the guide says it is not run here.
    let unified = doc.split("### Unified Streaming").nth(1).unwrap();
    assert!(unified.contains("mp4split") && unified.contains("not run in CI"), "{unified:.400}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unified_cpix_request_posted_with_curl_gets_keys_and_signalling() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Unified").await;
    let env =
        [("CLAVIS", app.base.as_str()), ("CLAVIS_API_KEY", tenant.api_key.as_str()), ("SITE_ID", &tenant.site_id)];
    let answer = run_example("sh", "unified/fetch_cpix.sh", &["movie-1", "unified/request.cpix.xml"], &env).await;
    let doc = clavis_keys::cpix::parse::parse(answer.as_bytes()).unwrap_or_else(|e| panic!("{e}: {answer}"));

    // Every requested KID has its key, the one the key API shows for the content.
    let stored: Value = app.get("/api/v1/keys/movie-1", &tenant.api_key).await.json().await.unwrap();
    let stored: Vec<(String, String, String)> = stored["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let field = |name: &str| k[name].as_str().unwrap().to_owned();
            (field("kid"), field("key"), field("track_type"))
        })
        .collect();
    let mut answered: Vec<(String, String)> = doc
        .content_keys
        .iter()
        .map(|k| match &k.value {
            Some(KeyValue::Plain(v)) => (k.kid.to_hex(), hex::encode(**v)),
            other => panic!("{} has no plain key: {other:?}", k.kid),
        })
        .collect();
    answered.sort();
    let mut expected: Vec<(String, String)> = stored.iter().map(|(kid, key, _)| (kid.clone(), key.clone())).collect();
    expected.sort();
    assert_eq!(answered, expected);
    let kids: Vec<&str> = answered.iter().map(|(kid, _)| kid.as_str()).collect();
    assert_eq!(kids, ["5f1c9a0e2b7d4c3e8a6f0d4e1b2c3a01", "5f1c9a0e2b7d4c3e8a6f0d4e1b2c3a02"]);
    let mut tracks: Vec<&str> = stored.iter().map(|(_, _, track)| track.as_str()).collect();
    tracks.sort();
    assert_eq!(tracks, ["AUDIO", "HD"]);
    // The signalling Unified writes into the manifests is filled in for every DRM system.
    assert_eq!(doc.drm_systems.len(), 6);
    for system in &doc.drm_systems {
        for kind in [FieldKind::Pssh, FieldKind::ContentProtectionData] {
            let field = system.fields.iter().find(|f| f.kind == kind).unwrap();
            assert!(!field.value.is_empty(), "{kind:?} of {} is empty", system.system_id);
        }
    }
    // Posting it again (a re-run of the packaging job) answers the same keys.
    let again = run_example("sh", "unified/fetch_cpix.sh", &["movie-1", "unified/request.cpix.xml"], &env).await;
    let again = clavis_keys::cpix::parse::parse(again.as_bytes()).unwrap();
    assert_eq!(again.content_keys.len(), 2);
    for key in &again.content_keys {
        let Some(KeyValue::Plain(v)) = &key.value else { panic!("no plain key") };
        assert!(answered.contains(&(key.kid.to_hex(), hex::encode(**v))));
    }

    // A wrong API key is refused (curl --fail-with-body makes the script fail).
    let mut command = Command::new("sh");
    command
        .arg(Path::new(ROOT).join("docs/examples/unified/fetch_cpix.sh"))
        .args(["movie-1", "unified/request.cpix.xml"])
        .current_dir(Path::new(ROOT).join("docs/examples"))
        .env("CLAVIS", &app.base)
        .env("SITE_ID", &tenant.site_id)
        .env("CLAVIS_API_KEY", "wrong");
    let output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("401"), "{output:?}");
}

fn ffmpeg() -> PathBuf {
    tool("CLAVIS_FFMPEG", &["/usr/bin/ffmpeg"])
}

/// The decoded frames' checksums of `file` in `dir` (the `#` header lines left out).
fn frame_md5s(dir: &Path, file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join(file)).unwrap();
    text.lines().filter(|l| !l.starts_with('#')).map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_encrypts_with_the_clavis_key_and_the_licensed_key_decrypts() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("ffmpeg").await;
    let media = tempfile::tempdir().unwrap();
    let dir = media.path().to_path_buf();
    // A 2-second clip, and its frames' checksums in the clear.
    let ff = ffmpeg();
    let status = Command::new(&ff)
        .current_dir(&dir)
        .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=2:size=320x240:rate=25"])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "clear.mp4"])
        .status()
        .unwrap();
    assert!(status.success());
    let status = Command::new(&ff)
        .current_dir(&dir)
        .args(["-loglevel", "error", "-i", "clear.mp4", "-f", "framemd5", "clear.framemd5"])
        .status()
        .unwrap();
    assert!(status.success());
    let clear = frame_md5s(&dir, "clear.framemd5");
    assert_eq!(clear.len(), 50);

    // The guide's script, with the ffmpeg the suite uses first on PATH.
    let path = format!("{}:{}", ff.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let input = dir.join("clear.mp4");
    let output = dir.join("movie-1.mp4");
    let env = [("CLAVIS", app.base.as_str()), ("CLAVIS_API_KEY", tenant.api_key.as_str()), ("PATH", path.as_str())];
    let kid = run_example(
        "sh",
        "ffmpeg/package_cenc.sh",
        &["movie-1", input.to_str().unwrap(), output.to_str().unwrap()],
        &env,
    )
    .await;
    let encrypted = std::fs::read(&output).unwrap();
    assert!(encrypted.windows(4).any(|w| w == b"senc") && encrypted.windows(4).any(|w| w == b"tenc"), "CENC boxes");
    let kid_bytes = hex::decode(&kid).unwrap();
    assert!(encrypted.windows(16).any(|w| w == kid_bytes.as_slice()), "tenc names the KID");

    // The player's view: a ClearKey license for the KID, with a token for the content.
    let token = app.token_for(&tenant, "viewer", "movie-1").await;
    let license = app.clearkey(&token, &[kid.as_str()]).await;
    assert_eq!(license.status(), 200);
    let license: Value = license.json().await.unwrap();
    let key = hex::encode(URL_SAFE_NO_PAD.decode(license["keys"][0]["k"].as_str().unwrap()).unwrap());
    let stored: Value = app.get("/api/v1/keys/movie-1", &tenant.api_key).await.json().await.unwrap();
    assert_eq!(stored["keys"][0]["kid"], kid.as_str());
    assert_eq!(stored["keys"][0]["key"], key.as_str());

    // The guide's decryption check, with that key: the frames are the clear ones.
    let decrypt = |key: String| {
        let path = path.clone();
        let dir = dir.clone();
        async move {
            let mut command = Command::new("sh");
            command.args(["-c", FFMPEG_DECRYPT]).current_dir(&dir).env("KEY", key).env("PATH", path);
            let _ = std::fs::remove_file(dir.join("movie-1.framemd5"));
            // Captured: a wrong key makes ffmpeg complain about every frame.
            let output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().unwrap();
            let ok = output.status.success();
            (ok, if ok { frame_md5s(&dir, "movie-1.framemd5") } else { Vec::new() })
        }
    };
    let (ok, frames) = decrypt(key.clone()).await;
    assert!(ok);
    assert_eq!(frames, clear, "decrypted with the licensed key, every frame is the clear frame");
    // With another key the frames are not the clear ones (or ffmpeg gives up).
    let (_, frames) = decrypt("00".repeat(16)).await;
    assert_ne!(frames, clear);
    // A token for other content gets no key for this one.
    app.create_keys(&tenant, json!({"content_id": "other"})).await;
    let other = app.token_for(&tenant, "viewer", "other").await;
    assert_eq!(app.clearkey(&other, &[kid.as_str()]).await.status(), 403);
}

#[test]
fn the_dockerfile_builds_the_workspace_binary_with_the_settings_it_reads() {
    let dockerfile = read("Dockerfile");
    let manifest = read("Cargo.toml");
    // The binary: the root package `clavis` (src/main.rs), built by name and copied to the ENTRYPOINT.
    assert!(manifest.contains("[package]\nname = \"clavis\""));
    assert!(Path::new(ROOT).join("src/main.rs").is_file());
    assert!(dockerfile.contains("cargo build --release --locked --bin clavis"));
    assert!(dockerfile.contains("target/release/clavis /out/clavis"));
    assert!(dockerfile.contains("COPY --from=build /out/clavis /usr/local/bin/clavis"));
    assert!(dockerfile.contains(r#"ENTRYPOINT ["/usr/local/bin/clavis"]"#));
    assert!(dockerfile.contains(r#"CMD ["serve"]"#));
    // The builder's Rust is at least the workspace's rust-version.
    let version = |text: &str| -> (u32, u32) {
        let mut parts = text.split('.').map(|p| p.parse::<u32>().unwrap());
        (parts.next().unwrap(), parts.next().unwrap())
    };
    let image = dockerfile.split("FROM rust:").nth(1).unwrap().split('-').next().unwrap();
    let required = manifest.split("rust-version = \"").nth(1).unwrap().split('"').next().unwrap();
    assert!(version(image) >= version(required), "rust:{image} is older than rust-version {required}");
    // Every CLAVIS_* the image sets is a setting Clavis reads.
    let env_block = dockerfile.split("ENV ").nth(1).unwrap().split("EXPOSE").next().unwrap();
    let names: Vec<&str> = env_block.split_whitespace().filter_map(|w| w.split_once('=').map(|(n, _)| n)).collect();
    assert_eq!(names, ["CLAVIS_LISTEN", "CLAVIS_DATA_DIR", "CLAVIS_LOG_FORMAT"]);
    for name in names {
        let key = name.trim_start_matches("CLAVIS_").to_lowercase();
        assert!(clavis_core::config::ENV_KEYS.contains(&key.as_str()), "{name} is not a Clavis setting");
    }
    assert!(dockerfile.contains("CLAVIS_LISTEN=0.0.0.0:8080") && dockerfile.contains("EXPOSE 8080"));
    // The build context leaves out the local build output and node tools.
    let ignore = read(".dockerignore");
    assert!(ignore.lines().any(|l| l == "target/") && ignore.lines().any(|l| l == "tools/node_modules/"));
    // The operations guide says where the image is built, since CI here cannot.
    let ops = read("docs/operations.md");
    assert!(ops.contains("docker build") && ops.contains("not built in CI"));
}
