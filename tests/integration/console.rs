//! The tenant console: sign-up with email verification (through a real SMTP server in the browser test, through the
//! outbox otherwise), sign-in, sessions, CSRF, lockout, API keys, roles and tenant isolation.
//!
//! The browser test drives headless Chromium (the WebDriver setup of `browser.rs`) and saves a screenshot of every
//! page under `target/test-screenshots/console/`. The security tests speak plain HTTP and keep cookies by hand, so
//! each assertion sees exactly which cookie the server set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clavis::ServiceSet;
use fantoccini::Locator;
use serde_json::json;

use crate::browser::ChromeDriver;
use crate::kit::TestApp;

pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// One HTTP answer, read whole.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) location: Option<String>,
    pub(crate) code: Option<String>,
    set_cookies: Vec<String>,
    pub(crate) body: String,
}

/// A browser without JavaScript: cookies kept by hand, no redirects followed.
pub(crate) struct Visitor<'a> {
    app: &'a TestApp,
    cookies: BTreeMap<String, String>,
}

impl<'a> Visitor<'a> {
    pub(crate) fn new(app: &'a TestApp) -> Visitor<'a> {
        Visitor { app, cookies: BTreeMap::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn read(&mut self, response: reqwest::Response) -> Answer {
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let set_cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        for cookie in &set_cookies {
            let pair = cookie.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if cookie.contains("Max-Age=0") || value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Answer {
            status: response.status().as_u16(),
            location: header("location"),
            code: header("x-clavis-error"),
            set_cookies,
            body: response.text().await.unwrap(),
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Answer {
        let response =
            self.app.http.get(self.app.url(path)).header("cookie", self.cookie_header()).send().await.unwrap();
        self.read(response).await
    }

    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let response = self
            .app
            .http
            .post(self.app.url(path))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.read(response).await
    }

    /// POST a multipart form (file uploads).
    pub(crate) async fn post_multipart(&mut self, path: &str, form: reqwest::multipart::Form) -> Answer {
        let response = self
            .app
            .http
            .post(self.app.url(path))
            .header("cookie", self.cookie_header())
            .multipart(form)
            .send()
            .await
            .unwrap();
        self.read(response).await
    }

    /// GET a page with a form and POST it back with the page's CSRF token and `fields`.
    pub(crate) async fn submit(&mut self, page: &str, action: &str, fields: &[(&str, &str)]) -> Answer {
        let html = self.get(page).await;
        assert_eq!(html.status, 200, "{page}: {}", html.body);
        let csrf = csrf_of(&html.body);
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.post(action, &form).await
    }

    fn session(&self) -> Option<String> {
        self.cookies.get("clavis_session").cloned()
    }
}

pub(crate) fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + "name=\"csrf\" value=\"".len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// A quoted-printable body decoded (lettre encodes text with lines over 76 characters, such as links, that way).
fn unquote(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1..i + 3).and_then(|h| hex::decode(h).ok())) {
            (b'=', Some(byte)) => {
                out.extend_from_slice(&byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// The first `http...` link in a mail that contains `path`.
pub(crate) fn link_in(mail: &str, path: &str) -> String {
    let text = unquote(mail);
    text.split_whitespace()
        .find(|word| word.starts_with("http") && word.contains(path))
        .unwrap_or_else(|| panic!("no {path} link in:\n{text}"))
        .to_owned()
}

pub(crate) fn path_of(url: &str) -> String {
    let url = reqwest::Url::parse(url).unwrap();
    format!("{}?{}", url.path(), url.query().unwrap_or_default())
}

pub(crate) fn outbox(app: &TestApp) -> PathBuf {
    app._dir.path().join("outbox")
}

/// The newest mail to `to` among `.eml`-like files in `dir` (waits up to 10 s).
pub(crate) fn mail_to(dir: &Path, to: &str, containing: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(entries) = std::fs::read_dir(dir) {
            let mut found: Vec<(std::time::SystemTime, String)> = entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let text = std::fs::read_to_string(e.path()).ok()?;
                    let modified = e.metadata().ok()?.modified().ok()?;
                    (text.contains(&format!("To: {to}")) && text.contains(containing)).then_some((modified, text))
                })
                .collect();
            found.sort();
            if let Some((_, text)) = found.pop() {
                return text;
            }
        }
        assert!(Instant::now() < deadline, "no mail to {to} containing {containing} in {}", dir.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(crate) fn unique_email(label: &str) -> String {
    format!("{label}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// Sign up through the forms and verify through the mail in the outbox.
pub(crate) async fn signed_up(app: &TestApp, organization: &str) -> String {
    let email = unique_email("owner");
    let mut visitor = Visitor::new(app);
    let done = visitor
        .submit("/signup", "/signup", &[("organization", organization), ("email", &email), ("password", PASSWORD)])
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let mail = mail_to(&outbox(app), &email, "/verify?token=");
    let verified = visitor.get(&path_of(&link_in(&mail, "/verify?token="))).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    email
}

pub(crate) async fn signed_in<'a>(app: &'a TestApp, email: &str) -> Visitor<'a> {
    let mut visitor = Visitor::new(app);
    let answer = visitor.submit("/login", "/login", &[("email", email), ("password", PASSWORD)]).await;
    assert_eq!((answer.status, answer.location.as_deref()), (303, Some("/console")), "{}", answer.body);
    visitor
}

/// Create an API key on the page; returns (key id, key).
pub(crate) async fn create_key(visitor: &mut Visitor<'_>, name: &str) -> (String, String) {
    let page = visitor.submit("/console/api-keys", "/console/api-keys", &[("name", name)]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let start = page.body.find("id=\"new-key\">").expect("the new key is shown") + "id=\"new-key\">".len();
    let key = page.body[start..].split('<').next().unwrap().to_owned();
    let row = page.body.find(&format!("<td>{name}</td>")).unwrap();
    let id = page.body[row..].split("/console/api-keys/").nth(1).unwrap().split('/').next().unwrap().to_owned();
    (id, key)
}

// ---------------------------------------------------------------------------------------------------------------
// A real SMTP server (Debian's python3-aiosmtpd, writing each message into a Maildir)

struct SmtpServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpServer {
    fn start() -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let python = crate::browser::tool("CLAVIS_AIOSMTPD_PYTHON", &["/usr/bin/python3"]);
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("maildir"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 -m aiosmtpd starts (apt-get install python3-aiosmtpd; scripts/test does)");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpServer { child, port, dir }
    }

    fn mail_to(&self, to: &str, containing: &str) -> String {
        mail_to(&self.dir.path().join("maildir/new"), to, containing)
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The browser test

pub(crate) struct Shots {
    dir: PathBuf,
    count: usize,
}

impl Shots {
    fn new() -> Shots {
        Shots::in_folder("console")
    }

    /// Screenshots under `target/test-screenshots/<folder>/`.
    pub(crate) fn in_folder(folder: &str) -> Shots {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-screenshots").join(folder);
        std::fs::create_dir_all(&dir).unwrap();
        Shots { dir, count: 0 }
    }

    pub(crate) async fn take(&mut self, client: &fantoccini::Client, name: &str) {
        self.count += 1;
        let png = client.screenshot().await.unwrap();
        std::fs::write(self.dir.join(format!("{:02}-{name}.png", self.count)), png).unwrap();
    }
}

pub(crate) async fn fill(client: &fantoccini::Client, id: &str, value: &str) {
    client.wait().for_element(Locator::Id(id)).await.unwrap().send_keys(value).await.unwrap();
}

pub(crate) async fn click(client: &fantoccini::Client, css: &str) {
    client.wait().for_element(Locator::Css(css)).await.unwrap().click().await.unwrap();
}

/// Wait (up to 10 s) until the browser shows `path`: a form submission navigates asynchronously.
pub(crate) async fn wait_for_path(client: &fantoccini::Client, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let current = client.current_url().await.unwrap();
        if current.path() == path {
            return;
        }
        assert!(Instant::now() < deadline, "the browser stayed at {current}, expected {path}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait (up to 10 s) until the page's heading is `expected`; returns it.
pub(crate) async fn heading_becomes(client: &fantoccini::Client, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let current = match client.find(Locator::Css("h1")).await {
            Ok(h1) => h1.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if current == expected {
            return;
        }
        assert!(Instant::now() < deadline, "the heading is {current:?}, expected {expected:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_up_verifies_by_mail_logs_in_creates_an_api_key_and_logs_out() {
    let smtp = SmtpServer::start();
    let smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
    let app = TestApp::spawn_with(ServiceSet::ALL, |config| {
        config.smtp_url = Some(smtp_url.clone().into());
        config.smtp_from = "Clavis <no-reply@clavis.test>".into();
    })
    .await;
    let driver = ChromeDriver::start();
    let client = driver.browser().await;
    client.set_window_size(1100, 800).await.unwrap();
    let mut shots = Shots::new();
    let email = unique_email("browser");

    client.goto(&app.url("/")).await.unwrap();
    shots.take(&client, "home").await;
    client.wait().for_element(Locator::LinkText("Sign up")).await.unwrap().click().await.unwrap();
    heading_becomes(&client, "Create your Clavis account").await;
    fill(&client, "organization", "Browser Films").await;
    fill(&client, "email", &email).await;
    fill(&client, "password", PASSWORD).await;
    shots.take(&client, "signup").await;
    click(&client, "form button[type=submit]").await;
    heading_becomes(&client, "Check your mail").await;
    shots.take(&client, "signup-done").await;

    // Before verification, sign-in is refused with a way to get a new mail.
    client.goto(&app.url("/login")).await.unwrap();
    fill(&client, "email", &email).await;
    fill(&client, "password", PASSWORD).await;
    click(&client, "form[action='/login'] button").await;
    let error = client.wait().for_element(Locator::Id("form-error")).await.unwrap().text().await.unwrap();
    assert!(error.contains("verify your email"), "{error}");
    client.wait().for_element(Locator::Css("form[action='/verify/resend'] button")).await.unwrap();
    shots.take(&client, "login-unverified").await;

    let mail = smtp.mail_to(&email, "/verify?token=");
    assert!(mail.contains("From: Clavis <no-reply@clavis.test>"), "{mail}");
    client.goto(&link_in(&mail, "/verify?token=")).await.unwrap();
    heading_becomes(&client, "Email address verified").await;
    shots.take(&client, "verified").await;

    client.wait().for_element(Locator::LinkText("Sign in")).await.unwrap().click().await.unwrap();
    fill(&client, "email", &email).await;
    fill(&client, "password", PASSWORD).await;
    shots.take(&client, "login").await;
    click(&client, "form[action='/login'] button").await;
    wait_for_path(&client, "/console").await;
    heading_becomes(&client, "Browser Films").await;
    let logout = client.wait().for_element(Locator::Css("form[action='/logout'] button")).await.unwrap();
    assert_eq!(logout.text().await.unwrap(), "Log out");
    shots.take(&client, "console").await;

    client.wait().for_element(Locator::LinkText("API keys")).await.unwrap().click().await.unwrap();
    fill(&client, "key-name", "packaging server").await;
    click(&client, "form[action='/console/api-keys'] button").await;
    let key = client.wait().for_element(Locator::Id("new-key")).await.unwrap().text().await.unwrap();
    assert!(key.starts_with("clv_"), "{key}");
    shots.take(&client, "api-key-created").await;

    // The key works from outside the browser, like curl in the tenant's backend.
    let keys = app.post("/api/v1/keys", &key, &json!({"content_id": "from-the-console"})).await;
    assert!(keys.status().is_success(), "{}", keys.status());

    client.wait().for_element(Locator::LinkText("Team")).await.unwrap().click().await.unwrap();
    heading_becomes(&client, "Team").await;
    shots.take(&client, "team").await;
    client.wait().for_element(Locator::LinkText("Sessions")).await.unwrap().click().await.unwrap();
    heading_becomes(&client, "Your sessions").await;
    let sessions = client.wait().for_element(Locator::Css("tbody")).await.unwrap().text().await.unwrap();
    assert!(sessions.contains("(this browser)"), "{sessions}");
    shots.take(&client, "sessions").await;

    click(&client, "form[action='/logout'] button").await;
    wait_for_path(&client, "/login").await;
    shots.take(&client, "logged-out").await;
    // Signed out: the console sends to the sign-in page.
    client.goto(&app.url("/console")).await.unwrap();
    wait_for_path(&client, "/login").await;

    client.goto(&app.url("/password/forgot")).await.unwrap();
    shots.take(&client, "forgot-password").await;
    client.close().await.unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// Security over plain HTTP

#[tokio::test]
async fn without_smtp_mail_goes_to_the_outbox_and_the_link_verifies_once() {
    let app = TestApp::spawn().await;
    let email = unique_email("outbox");
    let mut visitor = Visitor::new(&app);
    let done = visitor
        .submit("/signup", "/signup", &[("organization", "Outbox Films"), ("email", &email), ("password", PASSWORD)])
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(!done.body.contains("clv_"), "the browser sign-up does not show an API key");

    let files: Vec<PathBuf> = std::fs::read_dir(outbox(&app)).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().and_then(|e| e.to_str()), Some("eml"));
    let mail = std::fs::read_to_string(&files[0]).unwrap();
    let link = path_of(&link_in(&mail, "/verify?token="));

    let refused = visitor.submit("/login", "/login", &[("email", &email), ("password", PASSWORD)]).await;
    assert_eq!((refused.status, refused.code.as_deref()), (403, Some("2023")), "unverified");
    assert!(refused.body.contains("/verify/resend"));

    assert_eq!(visitor.get(&link).await.status, 200);
    let again = visitor.get(&link).await;
    assert_eq!((again.status, again.code.as_deref()), (400, Some("2025")), "single use");
    let forged = visitor.get("/verify?token=AAAA").await;
    assert_eq!(forged.code.as_deref(), Some("2025"));
    signed_in(&app, &email).await;
}

#[tokio::test]
async fn forms_without_or_with_a_wrong_csrf_token_are_refused() {
    let app = TestApp::spawn().await;
    let email = signed_up(&app, "Csrf Films").await;
    let mut owner = signed_in(&app, &email).await;

    let missing = owner.post("/console/api-keys", &[("name", "forged")]).await;
    assert_eq!((missing.status, missing.code.as_deref()), (403, Some("2021")));
    let wrong = owner.post("/console/api-keys", &[("csrf", &"0".repeat(64)), ("name", "forged")]).await;
    assert_eq!((wrong.status, wrong.code.as_deref()), (403, Some("2021")));
    let logout = owner.post("/logout", &[("csrf", "wrong")]).await;
    assert_eq!(logout.status, 403);
    let page = owner.get("/console/api-keys").await;
    assert_eq!(page.status, 200, "still signed in");
    assert!(!page.body.contains("forged"), "no key was made");

    // A token from another session does not work either.
    let other = signed_in(&app, &email).await;
    let others_token = csrf_of(&Visitor { app: &app, cookies: other.cookies.clone() }.get("/console").await.body);
    let cross = owner.post("/console/api-keys", &[("csrf", &others_token), ("name", "forged")]).await;
    assert_eq!(cross.status, 403);

    // Forms before sign-in need the form cookie's token too.
    let mut stranger = Visitor::new(&app);
    let login = stranger.post("/login", &[("email", &email), ("password", PASSWORD)]).await;
    assert_eq!((login.status, login.code.as_deref()), (403, Some("2021")));
    let signup = stranger
        .post("/signup", &[("csrf", "x"), ("organization", "X"), ("email", "x@example.com"), ("password", PASSWORD)])
        .await;
    assert_eq!(signup.status, 403);
}

#[tokio::test]
async fn sign_in_makes_a_new_session_id_and_sessions_can_all_be_ended() {
    let app = TestApp::spawn().await;
    let email = signed_up(&app, "Fixation Films").await;
    let mut visitor = Visitor::new(&app);
    visitor.cookies.insert("clavis_session".into(), "planted-by-an-attacker".into());
    assert_eq!(visitor.get("/console").await.location.as_deref(), Some("/login"));
    let answer = visitor.submit("/login", "/login", &[("email", &email), ("password", PASSWORD)]).await;
    assert_eq!(answer.status, 303);
    let cookie = answer.set_cookies.iter().find(|c| c.starts_with("clavis_session=")).unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && !cookie.contains("Secure"), "{cookie}");
    let first = visitor.session().unwrap();
    assert_ne!(first, "planted-by-an-attacker");

    // Signing in again replaces the session; the old id is dead.
    visitor.submit("/login", "/login", &[("email", &email), ("password", PASSWORD)]).await;
    let second = visitor.session().unwrap();
    assert_ne!(first, second);
    let mut old = Visitor::new(&app);
    old.cookies.insert("clavis_session".into(), first);
    assert_eq!(old.get("/console").await.location.as_deref(), Some("/login"));
    assert_eq!(visitor.get("/console").await.status, 200);

    // Two browsers, one "sign out everywhere".
    let mut laptop = signed_in(&app, &email).await;
    let sessions = visitor.get("/console/sessions").await;
    assert_eq!(sessions.body.matches("<tr><td><code>").count(), 2, "{}", sessions.body);
    let out = visitor.submit("/console/sessions", "/console/sessions/sign-out-everywhere", &[]).await;
    assert_eq!(out.location.as_deref(), Some("/login"));
    assert_eq!(laptop.get("/console").await.location.as_deref(), Some("/login"));
    assert_eq!(visitor.get("/console").await.location.as_deref(), Some("/login"));
}

#[tokio::test]
async fn sign_ups_from_one_address_are_limited_per_hour() {
    let app = TestApp::spawn().await;
    let mut visitor = Visitor::new(&app);
    // Every attempt counts, a refused one too: each could send a mail.
    for i in 0..clavis_web::MAX_SIGNUPS_PER_IP_PER_HOUR {
        let email = format!("not an email {i}");
        let answer = visitor
            .submit("/signup", "/signup", &[("organization", "Flood"), ("email", &email), ("password", PASSWORD)])
            .await;
        assert_ne!(answer.status, 429, "attempt {i}: {}", answer.body);
    }
    let email = unique_email("flood");
    let answer = visitor
        .submit("/signup", "/signup", &[("organization", "Flood"), ("email", &email), ("password", PASSWORD)])
        .await;
    assert_eq!((answer.status, answer.code.as_deref()), (429, Some("2027")), "{}", answer.body);
    let mails: Vec<String> = std::fs::read_dir(outbox(&app))
        .map(|dir| dir.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok()).collect())
        .unwrap_or_default();
    assert!(mails.iter().all(|mail| !mail.contains(&email)), "no mail for a refused sign-up");
}

#[tokio::test]
async fn cookies_are_secure_when_the_public_url_is_https() {
    let app = TestApp::spawn_with(ServiceSet::ALL, |config| {
        config.public_url = Some("https://clavis.example.com".into());
    })
    .await;
    let page = Visitor::new(&app).get("/login").await;
    let cookie = page.set_cookies.iter().find(|c| c.starts_with("clavis_form=")).unwrap();
    assert!(cookie.contains("Secure") && cookie.contains("HttpOnly"), "{cookie}");
}

#[tokio::test]
async fn repeated_failed_sign_ins_lock_the_account_and_then_the_address() {
    let app = TestApp::spawn().await;
    let email = signed_up(&app, "Locked Films").await;
    let other = signed_up(&app, "Neighbour Films").await;
    let mut attacker = Visitor::new(&app);
    for _ in 0..clavis_web::MAX_FAILURES_PER_ACCOUNT {
        let answer = attacker.submit("/login", "/login", &[("email", &email), ("password", "wrong password!")]).await;
        assert_eq!((answer.status, answer.code.as_deref()), (401, Some("2022")));
    }
    // Locked: even the right password is refused, by anyone, until the window passes.
    let locked = attacker.submit("/login", "/login", &[("email", &email), ("password", PASSWORD)]).await;
    assert_eq!((locked.status, locked.code.as_deref()), (429, Some("2024")), "{}", locked.body);
    assert!(locked.body.contains("15 minutes"));
    // Another account from the same address is not locked yet.
    signed_in(&app, &other).await;

    // Enough failures from one address lock every account for that address.
    for i in clavis_web::MAX_FAILURES_PER_ACCOUNT..clavis_web::MAX_FAILURES_PER_IP {
        let email = format!("nobody{i}@example.com");
        let answer = attacker.submit("/login", "/login", &[("email", &email), ("password", "wrong password!")]).await;
        assert_eq!(answer.code.as_deref(), Some("2022"));
    }
    let answer = attacker.submit("/login", "/login", &[("email", &other), ("password", PASSWORD)]).await;
    assert_eq!((answer.status, answer.code.as_deref()), (429, Some("2024")));
}

#[tokio::test]
async fn a_password_reset_by_mail_sets_a_new_password_and_ends_sessions() {
    let app = TestApp::spawn().await;
    let email = signed_up(&app, "Reset Films").await;
    let mut old = signed_in(&app, &email).await;
    let mut visitor = Visitor::new(&app);
    let sent = visitor.submit("/password/forgot", "/password/forgot", &[("email", &email)]).await;
    assert_eq!(sent.status, 200);
    let unknown = visitor.submit("/password/forgot", "/password/forgot", &[("email", "nobody@example.com")]).await;
    assert_eq!(unknown.body, sent.body, "the answer does not tell whether the address has an account");

    let link = path_of(&link_in(&mail_to(&outbox(&app), &email, "/password/reset"), "/password/reset"));
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let new_password = "a brand new password";
    let set = visitor.submit(&link, "/password/reset", &[("token", &token), ("password", new_password)]).await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(old.get("/console").await.location.as_deref(), Some("/login"), "earlier sessions end");
    let csrf = csrf_of(&visitor.get("/login").await.body);
    let reused = visitor
        .post("/password/reset", &[("csrf", &csrf), ("token", &token), ("password", "yet another password")])
        .await;
    assert_eq!(reused.code.as_deref(), Some("2025"));

    let mut fresh = Visitor::new(&app);
    let answer = fresh.submit("/login", "/login", &[("email", &email), ("password", new_password)]).await;
    assert_eq!(answer.status, 303);
    let answer = Visitor::new(&app).submit("/login", "/login", &[("email", &email), ("password", PASSWORD)]).await;
    assert_eq!(answer.code.as_deref(), Some("2022"));
}

#[tokio::test]
async fn api_keys_are_shown_once_work_and_can_be_revoked() {
    let app = TestApp::spawn().await;
    let email = signed_up(&app, "Keys Films").await;
    let mut owner = signed_in(&app, &email).await;
    let (id, key) = create_key(&mut owner, "packager").await;
    assert_eq!(app.get("/api/v1/tenant", &key).await.status(), 200);
    let page = owner.get("/console/api-keys").await;
    assert!(!page.body.contains(&key), "the key is shown only once");
    assert!(page.body.contains("packager"));

    // The list says when each key was last used: "never" until a request, then its time (written off the request
    // path, so poll briefly).
    let row_of = |body: &str| body.split("<tr>").find(|row| row.contains("packager")).unwrap_or_default().to_owned();
    let mut used = String::new();
    for _ in 0..50 {
        used = row_of(&owner.get("/console/api-keys").await.body);
        if !used.contains("never") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let year = chrono::Utc::now().format("%Y").to_string();
    assert!(!used.contains("never") && used.matches(&year).count() >= 2, "created and last used: {used}");
    let (_, unused) = create_key(&mut owner, "spare").await;
    let spare = owner.get("/console/api-keys").await.body;
    let spare = spare.split("<tr>").find(|row| row.contains("spare")).unwrap();
    assert!(spare.contains("never"), "{spare}");
    drop(unused);

    let revoked = owner.submit("/console/api-keys", &format!("/console/api-keys/{id}/revoke"), &[]).await;
    assert_eq!(revoked.status, 303);
    assert_eq!(app.get("/api/v1/tenant", &key).await.status(), 401);
    assert!(owner.get("/console/api-keys").await.body.contains("revoked"));
}

#[tokio::test]
async fn a_viewer_cannot_do_what_needs_a_higher_role() {
    let app = TestApp::spawn().await;
    let email = signed_up(&app, "Roles Films").await;
    let mut owner = signed_in(&app, &email).await;
    let viewer_email = unique_email("viewer");
    let invited = owner.submit("/console/team", "/console/team", &[("email", &viewer_email), ("role", "viewer")]).await;
    assert_eq!(invited.status, 200, "{}", invited.body);
    assert!(invited.body.contains("Invitation sent"));

    let link = path_of(&link_in(&mail_to(&outbox(&app), &viewer_email, "/invite?token="), "/invite?token="));
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let mut viewer = Visitor::new(&app);
    let set = viewer.submit(&link, "/invite", &[("token", &token), ("password", PASSWORD)]).await;
    assert_eq!(set.status, 200, "{}", set.body);
    let mut viewer = signed_in(&app, &viewer_email).await;

    let keys = viewer.get("/console/api-keys").await;
    assert_eq!(keys.status, 200);
    assert!(!keys.body.contains("Create key"), "no create form for a viewer");
    let create = viewer.submit("/console/api-keys", "/console/api-keys", &[("name", "sneaky")]).await;
    assert_eq!((create.status, create.code.as_deref()), (403, Some("2026")));
    let invite =
        viewer.submit("/console/team", "/console/team", &[("email", "friend@example.com"), ("role", "admin")]).await;
    assert_eq!((invite.status, invite.code.as_deref()), (403, Some("2026")));
    let (owner_key_id, _) = create_key(&mut owner, "owner key").await;
    let revoke = viewer.submit("/console/api-keys", &format!("/console/api-keys/{owner_key_id}/revoke"), &[]).await;
    assert_eq!(revoke.code.as_deref(), Some("2026"));
}

#[tokio::test]
async fn a_member_of_one_tenant_cannot_touch_another_tenants_keys() {
    let app = TestApp::spawn().await;
    let alice_email = signed_up(&app, "Alice Films").await;
    let bob_email = signed_up(&app, "Bob Films").await;
    let mut alice = signed_in(&app, &alice_email).await;
    let mut bob = signed_in(&app, &bob_email).await;
    let (bob_key_id, bob_key) = create_key(&mut bob, "bob key").await;

    assert!(!alice.get("/console/api-keys").await.body.contains("bob key"));
    let revoke = alice.submit("/console/api-keys", &format!("/console/api-keys/{bob_key_id}/revoke"), &[]).await;
    assert_eq!((revoke.status, revoke.code.as_deref()), (404, Some("2028")));
    assert_eq!(app.get("/api/v1/tenant", &bob_key).await.status(), 200, "Bob's key still works");
    let team = alice.get("/console/team").await;
    assert!(team.body.contains(&alice_email) && !team.body.contains(&bob_email));
}

/// Invite `email` as `role` and let them set their password; answers them signed in.
async fn joined<'a>(app: &'a TestApp, owner: &mut Visitor<'_>, email: &str, role: &str) -> Visitor<'a> {
    let invited = owner.submit("/console/team", "/console/team", &[("email", email), ("role", role)]).await;
    assert_eq!(invited.status, 200, "{}", invited.body);
    let link = path_of(&link_in(&mail_to(&outbox(app), email, "/invite?token="), "/invite?token="));
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let mut visitor = Visitor::new(app);
    assert_eq!(visitor.submit(&link, "/invite", &[("token", &token), ("password", PASSWORD)]).await.status, 200);
    signed_in(app, email).await
}

fn member_id(team_page: &str, email: &str) -> String {
    let row = team_page
        .split("<tr id=\"member-")
        .skip(1)
        .find(|row| row.split("</tr>").next().unwrap().contains(email))
        .expect("the member row");
    row.split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn owners_and_admins_change_roles_and_remove_members_below_them() {
    let app = TestApp::spawn().await;
    let email = signed_up(&app, "Team Films").await;
    let mut owner = signed_in(&app, &email).await;
    let (admin_email, dev_email) = (unique_email("admin"), unique_email("dev"));
    let mut admin = joined(&app, &mut owner, &admin_email, "admin").await;
    let mut developer = joined(&app, &mut owner, &dev_email, "developer").await;
    let team = owner.get("/console/team").await.body;
    let (owner_id, admin_id, dev_id) =
        (member_id(&team, &email), member_id(&team, &admin_email), member_id(&team, &dev_email));

    // The developer manages nobody.
    let refused = developer.submit("/console/team", &format!("/console/team/{admin_id}/remove"), &[]).await;
    assert_eq!((refused.status, refused.code.as_deref()), (403, Some("2026")));
    // The admin makes the developer a viewer, but cannot touch the owner, make anyone owner, or change themselves.
    let changed = admin.submit("/console/team", &format!("/console/team/{dev_id}/role"), &[("role", "viewer")]).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert!(changed.body.contains(&format!("{dev_email} is now viewer")), "{}", changed.body);
    let viewer_keys = developer.submit("/console/api-keys", "/console/api-keys", &[("name", "x")]).await;
    assert_eq!(viewer_keys.code.as_deref(), Some("2026"), "the new role applies at once");
    for (target, role) in [(&owner_id, "viewer"), (&dev_id, "owner"), (&admin_id, "viewer")] {
        let answer = admin.submit("/console/team", &format!("/console/team/{target}/role"), &[("role", role)]).await;
        assert_eq!(answer.code.as_deref(), Some("2026"), "{target} {role}");
    }
    assert_eq!(
        admin.submit("/console/team", &format!("/console/team/{owner_id}/remove"), &[]).await.code.as_deref(),
        Some("2026")
    );
    // Another tenant's member is not found; a forged form changes nothing.
    let rival_email = signed_up(&app, "Rival Team Films").await;
    let mut rival = signed_in(&app, &rival_email).await;
    let foreign = rival.submit("/console/team", &format!("/console/team/{dev_id}/remove"), &[]).await;
    assert_eq!((foreign.status, foreign.code.as_deref()), (404, Some("2030")));
    let forged = owner.post(&format!("/console/team/{dev_id}/remove"), &[("csrf", "wrong")]).await;
    assert_eq!(forged.code.as_deref(), Some("2021"));
    // The owner removes the member: gone from the team, signed out at once, unable to sign in.
    let removed = owner.submit("/console/team", &format!("/console/team/{dev_id}/remove"), &[]).await;
    assert_eq!(removed.status, 200);
    assert!(removed.body.contains("was removed") && !removed.body.contains(&format!("member-{dev_id}")));
    let after = developer.get("/console").await;
    assert!(
        after.status == 303 || after.code.as_deref() == Some("2020"),
        "signed out: {} {:?}",
        after.status,
        after.code
    );
    let mut again = Visitor::new(&app);
    let login = again.submit("/login", "/login", &[("email", &dev_email), ("password", PASSWORD)]).await;
    assert_eq!(login.code.as_deref(), Some("2022"));
}
