//! The console's page budget: every signed-in page renders in under 50 ms at the 99th percentile with 100 000
//! license log rows for the tenant (issue 5). `cargo bench --bench console_pages`.
//!
//! Seeds 100 000 rows (all within the last 24 hours, the dashboard's worst case; a tenth of them refusals) through
//! the license log's own writer, signs in through the login form, then requests each page 200 times over HTTP, one
//! at a time, and prints p50 and p99 next to `/healthz` measured in the same run. Set `CLAVIS_BENCH_DATABASE_URL`
//! to an empty PostgreSQL database to measure there instead of the embedded SQLite.

use std::time::{Duration, Instant};

use clavis::{Application, ServiceSet};
use clavis_core::config::Config;
use clavis_core::ids::{ContentId, TenantId, TrackType};
use clavis_licenses::log::{LogEntry, Outcome};
use clavis_tenant::{Accounts, Email, NewTenant};
use secrecy::SecretString;

const ROWS: usize = 100_000;
const SAMPLES: usize = 200;
const BUDGET: Duration = Duration::from_millis(50);
const EMAIL: &str = "owner@bench.example";
const PASSWORD: &str = "bench password that is long enough";

fn cookie_of(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|c| {
        let pair = c.split(';').next()?;
        let (n, v) = pair.split_once('=')?;
        (n == name && !v.is_empty()).then(|| v.to_owned())
    })
}

fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    html.split(marker).nth(1).and_then(|rest| rest.split('"').next()).unwrap_or_default().to_owned()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn measure(http: &reqwest::Client, url: &str, cookie: &str) -> (Duration, Duration) {
    let mut times = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES + 20 {
        let start = Instant::now();
        let response = http.get(url).header("cookie", cookie).send().await.unwrap();
        let status = response.status();
        response.bytes().await.unwrap();
        assert!(status.is_success(), "{url}: {status}");
        if i >= 20 {
            times.push(start.elapsed());
        }
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99))
}

async fn seed(app: &Application, tenant: TenantId, kids: &[String]) {
    let log = app.licenses();
    let now = chrono::Utc::now().timestamp_millis();
    let day_ms = 24 * 3_600_000;
    for i in 0..ROWS {
        let denied = i % 10 == 0;
        log.log()
            .record(LogEntry {
                tenant_id: tenant,
                at_ms: now - (i as i64 * day_ms / ROWS as i64),
                drm: if i % 3 == 0 { "widevine" } else { "clearkey" },
                user_id: Some(format!("user-{}", i % 1000)),
                content_id: Some(if i % 2 == 0 { "bench".to_owned() } else { format!("content-{}", i % 500) }),
                kids: vec![kids[i % kids.len()].clone()],
                outcome: if denied { Outcome::Denied } else { Outcome::Issued },
                error_code: denied.then_some(5006),
                rule: if denied { "policy.allowed_tracks" } else { "ok" },
                detail: denied.then(|| "a HD key; the policy allows SD".to_owned()),
                latency_us: 400,
                client_ip: Some("203.0.113.7".into()),
                origin: None,
                request_id: Some(format!("req-{i}")),
                device_id: Some(format!("device-{}", i % 2000)),
                flag: None,
            })
            .await;
    }
    log.log().flush().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        master_key: Some(SecretString::from(clavis_core::crypto::MasterKey::generate_base64().unwrap().to_string())),
        log_level: "error".into(),
        ..Config::default()
    };
    if let Ok(url) = std::env::var("CLAVIS_BENCH_DATABASE_URL") {
        config.database_url = Some(SecretString::from(url));
    }
    let app = Application::build(config, ServiceSet::ALL).await.unwrap();
    let port = app.port();
    let directory = app.directory();
    let created = directory
        .create_tenant(NewTenant {
            name: "Bench Films".into(),
            email: Email::parse(EMAIL).unwrap(),
            password: Some(SecretString::from(PASSWORD.to_owned())),
        })
        .await
        .unwrap();
    let accounts = Accounts::new(app.platform().db.clone());
    let owner = accounts.find_by_email(&Email::parse(EMAIL).unwrap()).await.unwrap().unwrap();
    accounts.mark_verified(&owner).await.unwrap();
    let tenant = directory.get(created.tenant_id).await.unwrap();
    let (set, _) = app
        .keys()
        .ensure(
            tenant.id,
            ContentId::parse("bench").unwrap(),
            clavis_keys::model::KeyPlan::Generate {
                source: clavis_keys::KeySource::Random,
                tracks: vec![TrackType::Sd, TrackType::Hd, TrackType::Audio],
            },
        )
        .await
        .unwrap();
    let kids: Vec<String> = set.keys.iter().map(|k| k.kid.to_hex()).collect();
    for i in 0..200 {
        app.keys()
            .ensure(
                tenant.id,
                ContentId::parse(&format!("content-{i}")).unwrap(),
                clavis_keys::model::KeyPlan::Generate {
                    source: clavis_keys::KeySource::Random,
                    tracks: vec![TrackType::All],
                },
            )
            .await
            .unwrap();
    }
    let started = Instant::now();
    seed(&app, tenant.id, &kids).await;
    println!("seeded {ROWS} license log rows in {:.1} s", started.elapsed().as_secs_f64());
    // PostgreSQL plans from table statistics, which autovacuum refreshes a while after a bulk insert; a production
    // log grows slowly and always has them. Without them, the planner takes the 100 000 seeded rows for a few hundred
    // and the filtered log searches scan the whole tenant.
    if let Ok(url) = std::env::var("CLAVIS_BENCH_DATABASE_URL") {
        use sea_orm::ConnectionTrait;
        let db = clavis_core::db::connect(&url).await.unwrap();
        db.execute_unprepared("ANALYZE license_log").await.unwrap();
    }
    let some_row = app
        .licenses()
        .log()
        .recent(tenant.id, &clavis_licenses::log::LogQuery { limit: 1, ..Default::default() })
        .await
        .unwrap()[0]
        .id;
    tokio::spawn(app.run_until_stopped());
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    // Sign in through the form, as a browser does.
    let page = http.get(format!("{base}/login")).send().await.unwrap();
    let form_cookie = cookie_of(&page, "clavis_form").unwrap();
    let csrf = csrf_of(&page.text().await.unwrap());
    let answer = http
        .post(format!("{base}/login"))
        .header("cookie", format!("clavis_form={form_cookie}"))
        .form(&[("csrf", csrf.as_str()), ("email", EMAIL), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let session = cookie_of(&answer, "clavis_session").expect("signed in");
    let cookie = format!("clavis_session={session}");

    let pages = [
        "/healthz".to_owned(),
        "/console".to_owned(),
        "/console?range=7d".to_owned(),
        "/console/logs".to_owned(),
        "/console/logs?outcome=denied".to_owned(),
        "/console/logs?user=user-7".to_owned(),
        "/console/logs?content=bench&from=2000-01-01T00:00".to_owned(),
        "/console/logs?device=device-7".to_owned(),
        format!("/console/logs/{some_row}"),
        "/console/errors".to_owned(),
        "/console/contents".to_owned(),
        "/console/content?id=bench".to_owned(),
        "/console/policy".to_owned(),
        "/console/integrations".to_owned(),
        "/console/fairplay".to_owned(),
        "/console/api-keys".to_owned(),
        "/console/team".to_owned(),
        "/console/sessions".to_owned(),
        "/console/tokens/inspect".to_owned(),
        "/console/devices".to_owned(),
        "/console/devices?user_id=user-7".to_owned(),
        "/console/drm".to_owned(),
        "/console/audit".to_owned(),
    ];
    println!("{:<52} {:>9} {:>9} {:>11}", "page", "p50 ms", "p99 ms", "p99/healthz");
    let mut baseline = None;
    let mut over = Vec::new();
    for path in &pages {
        let (p50, p99) = measure(&http, &format!("{base}{path}"), &cookie).await;
        let base_p99 = *baseline.get_or_insert(p99);
        println!(
            "{path:<52} {:>9.2} {:>9.2} {:>11.1}",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            p99.as_secs_f64() / base_p99.as_secs_f64()
        );
        if p99 > BUDGET {
            over.push(path.clone());
        }
    }
    if over.is_empty() {
        println!("every page is within the {} ms p99 budget", BUDGET.as_millis());
    } else {
        println!("OVER the {} ms p99 budget: {}", BUDGET.as_millis(), over.join(", "));
        std::process::exit(1);
    }
}
