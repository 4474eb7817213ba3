//! The `clavis` binary: commands, configuration, the embedded default, and the README quickstart against a real
//! `clavis serve` process.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::kit::TestDb;

pub(crate) fn clavis() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clavis"));
    // Start every command from a clean environment as far as Clavis is concerned.
    for (key, _) in std::env::vars() {
        if key.starts_with("CLAVIS_") {
            command.env_remove(key);
        }
    }
    command.env("CLAVIS_LOG_LEVEL", "warn");
    command
}

fn run(command: &mut Command, stdin: Option<&str>) -> (bool, String, String) {
    command
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn openapi_and_error_reference_commands_match_the_committed_files() {
    let (ok, stdout, stderr) = run(clavis().arg("openapi"), None);
    assert!(ok, "{stderr}");
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json")).unwrap();
    assert_eq!(stdout, committed, "regenerate with `cargo run -- openapi > openapi/openapi.json`");
    let (ok, stdout, _) = run(clavis().arg("errors"), None);
    assert!(ok);
    assert_eq!(stdout, std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/errors.md")).unwrap());
}

#[test]
fn tenant_create_on_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = run(
        clavis().current_dir(dir.path()).args([
            "tenant",
            "create",
            "--name",
            "Acme Films",
            "--email",
            "Ops@Acme.example",
        ]),
        None,
    );
    assert!(ok, "{stderr}");
    let created: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("one JSON object on stdout ({e}): {stdout}"));
    assert!(uuid::Uuid::parse_str(created["tenant_id"].as_str().unwrap()).is_ok());
    let site = created["site_id"].as_str().unwrap();
    assert!(site.len() == 4 && site.chars().all(|c| c.is_ascii_uppercase()));
    assert!(created["api_key"].as_str().unwrap().starts_with("clv_"));
    assert_eq!(created["owner_email"], "ops@acme.example");
    assert!(stderr.contains("generated a new master key"), "the generated key is announced: {stderr}");

    // The embedded default lives under ./data: the database and a private master key.
    let data = dir.path().join("data");
    assert!(data.join("clavis.db").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(data.join("master.key")).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // The API key is stored only as a hash.
    let db = std::fs::read(data.join("clavis.db")).unwrap();
    let wal = std::fs::read(data.join("clavis.db-wal")).unwrap_or_default();
    let key = created["api_key"].as_str().unwrap().as_bytes();
    assert!(!db.windows(key.len()).any(|w| w == key) && !wal.windows(key.len()).any(|w| w == key));

    // The same email cannot open a second tenant; a weak password is refused; a good one works.
    let (ok, _, stderr) = run(
        clavis().current_dir(dir.path()).args(["tenant", "create", "--name", "X", "--email", "ops@acme.example"]),
        None,
    );
    assert!(!ok && stderr.contains("already exists"), "{stderr}");
    let (ok, _, stderr) = run(
        clavis().current_dir(dir.path()).args([
            "tenant",
            "create",
            "--name",
            "Y",
            "--email",
            "y@acme.example",
            "--password-stdin",
        ]),
        Some("short\n"),
    );
    assert!(!ok && stderr.contains("password"), "{stderr}");
    let (ok, _, stderr) = run(
        clavis().current_dir(dir.path()).args([
            "tenant",
            "create",
            "--name",
            "Y",
            "--email",
            "y@acme.example",
            "--password-stdin",
        ]),
        Some("a long enough passphrase\n"),
    );
    assert!(ok, "{stderr}");
    let (ok, stdout, stderr) = run(
        clavis().current_dir(dir.path()).args([
            "staff",
            "create",
            "--email",
            "support@clavis.example",
            "--password-stdin",
        ]),
        Some("support passphrase 1\n"),
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("staff_id"));
}

#[tokio::test]
async fn a_configured_database_needs_a_master_key_and_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let url = TestDb::from_env().fresh(dir.path()).await;
    let port = free_port();

    let (ok, _, stderr) = run(
        clavis().env("CLAVIS_DATABASE_URL", &url).env("CLAVIS_LISTEN", format!("127.0.0.1:{port}")).arg("serve"),
        None,
    );
    assert!(!ok && stderr.contains("CLAVIS_MASTER_KEY is required"), "{stderr}");

    let key = clavis_core::crypto::MasterKey::generate_base64().unwrap().to_string();
    let (ok, _, stderr) = run(
        clavis()
            .env("CLAVIS_DATABASE_URL", &url)
            .env("CLAVIS_MASTER_KEY", &key)
            .env("CLAVIS_LISTEN", format!("127.0.0.1:{port}"))
            .arg("serve"),
        None,
    );
    assert!(!ok && stderr.contains("clavis migrate"), "a shared database is not migrated by serve: {stderr}");
    let (ok, _, stderr) =
        run(clavis().env("CLAVIS_MASTER_KEY", "too-short").env("CLAVIS_DATABASE_URL", &url).arg("migrate"), None);
    assert!(ok, "migrate needs no master key: {stderr}");
    let (ok, stdout, stderr) = run(
        clavis().env("CLAVIS_DATABASE_URL", &url).env("CLAVIS_MASTER_KEY", &key).args([
            "tenant",
            "create",
            "--name",
            "N",
            "--email",
            "n@example.com",
        ]),
        None,
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("api_key"));
    let (ok, _, stderr) = run(
        clavis().env("CLAVIS_DATABASE_URL", &url).env("CLAVIS_MASTER_KEY", "bm90IDMyIGJ5dGVz").args([
            "tenant",
            "create",
            "--name",
            "N",
            "--email",
            "m@example.com",
        ]),
        None,
    );
    assert!(!ok && stderr.contains("32 bytes"), "{stderr}");
}

#[test]
fn configuration_files_are_versioned_and_strict() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clavis.toml");
    std::fs::write(&file, "version = 1\nlisten = \"127.0.0.1:0\"\nlisten_port = 8080\n").unwrap();
    let (ok, _, stderr) = run(clavis().arg("--config").arg(&file).arg("migrate"), None);
    assert!(!ok && stderr.contains("listen_port"), "unknown keys are refused: {stderr}");
    std::fs::write(&file, "version = 7\n").unwrap();
    let (ok, _, stderr) = run(clavis().env("CLAVIS_CONFIG", &file).arg("migrate"), None);
    assert!(!ok && stderr.contains("version 7"), "{stderr}");
    let (ok, _, stderr) = run(clavis().arg("serve").arg("--services").arg("keys,billing"), None);
    assert!(!ok && stderr.contains("billing"), "{stderr}");
}

/// Start `clavis serve` on the embedded default in `dir` and wait until it answers.
struct Served {
    child: std::process::Child,
    base: String,
}

impl Served {
    fn start(dir: &Path) -> Served {
        Served::start_with(dir, |serve| {
            serve.stdout(Stdio::piped()).stderr(Stdio::null());
        })
    }

    /// The same, with the command adjusted first (more environment, where its output goes).
    fn start_with(dir: &Path, adjust: impl FnOnce(&mut Command)) -> Served {
        let port = free_port();
        let mut serve = clavis();
        serve.current_dir(dir).env("CLAVIS_LISTEN", format!("127.0.0.1:{port}")).arg("serve");
        adjust(&mut serve);
        let child = serve.spawn().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "clavis serve did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Served { child, base }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The README's quickstart, run as written against a real `clavis serve`.
#[test]
fn the_readme_quickstart_works() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("<!-- quickstart:begin -->").expect("quickstart markers in README.md");
    let end = readme.find("<!-- quickstart:end -->").unwrap();
    let section = &readme[start..end];
    let script: String = section
        .split("```sh\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(script.contains("clavis tenant create") && script.contains("/license/clearkey"));

    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path());
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_clavis")).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let output = Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", path)
        .env("CLAVIS", &served.base)
        .env_remove("CLAVIS_DATABASE_URL")
        .env_remove("CLAVIS_MASTER_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "quickstart failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let license_line =
        stdout.lines().rev().find(|l| l.contains("\"keys\"")).expect("the quickstart prints the license");
    let license: Value = serde_json::from_str(license_line).unwrap();
    assert_eq!(license["keys"][0]["kty"], "oct");
    drop(served);
}

/// JSON logs (`CLAVIS_LOG_FORMAT=json`): license decisions carry the request id and the tenant id, and no secret
/// (API key, token, content key) is ever written.
#[test]
fn json_logs_name_the_request_and_the_tenant_and_never_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = run(
        clavis().current_dir(dir.path()).args(["tenant", "create", "--name", "Logs", "--email", "ops@logs.example"]),
        None,
    );
    assert!(ok, "{stderr}");
    let created: Value = serde_json::from_str(stdout.trim()).unwrap();
    let (tenant_id, api_key) = (created["tenant_id"].as_str().unwrap(), created["api_key"].as_str().unwrap());
    let log_path = dir.path().join("serve.log");
    let served = Served::start_with(dir.path(), |serve| {
        serve
            .env("CLAVIS_LOG_FORMAT", "json")
            .env("CLAVIS_LOG_LEVEL", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap());
    });
    let base = served.base.clone();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (token, key) = runtime.block_on(async {
        let http = reqwest::Client::new();
        let keys: Value = http
            .post(format!("{base}/api/v1/keys"))
            .bearer_auth(api_key)
            .json(&serde_json::json!({"content_id": "movie", "tracks": ["SD", "HD"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token: Value = http
            .post(format!("{base}/api/v1/tokens"))
            .bearer_auth(api_key)
            .json(&serde_json::json!({"user_id": "u1", "content_id": "movie", "policy": {"allowed_tracks": ["SD"]}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = token["token"].as_str().unwrap().to_owned();
        // The HD key is refused by the policy: a logged decision.
        let hd = keys["keys"][1]["kid"].as_str().unwrap();
        let kid = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, hex::decode(hd).unwrap());
        let refused = http
            .post(format!("{base}/license/clearkey"))
            .header("X-Clavis-Token", &token)
            .body(serde_json::json!({"kids": [kid], "type": "temporary"}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 403);
        (token, keys["keys"][0]["key"].as_str().unwrap().to_owned())
    });
    std::thread::sleep(Duration::from_millis(300));
    drop(served);
    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<Value> = log.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(!lines.is_empty(), "JSON lines: {log}");
    let denied = lines
        .iter()
        .find(|l| l["message"] == "license denied")
        .unwrap_or_else(|| panic!("a license decision is logged: {log}"));
    assert_eq!(denied["code"], 5006, "{denied}");
    assert_eq!(denied["span"]["tenant_id"], tenant_id, "{denied}");
    assert!(denied["span"]["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{denied}");
    for secret in [api_key, token.as_str(), key.as_str()] {
        assert!(!log.contains(secret), "a secret is in the log");
    }
}
