//! Platform support staff: their own sign-in (lockout, form tokens, no crossing with tenant sessions), the read-only
//! cross-tenant view without secrets, suspend and resume against real license requests, and the audit log that the
//! tenant concerned (and only it) reads in the console and through the API. Plain HTTP with cookies kept by hand,
//! plus one Chromium pass that screenshots the pages into `target/test-screenshots/staff/`.

use clavis::ServiceSet;
use clavis_tenant::Email;
use fantoccini::Locator;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::browser::ChromeDriver;
use crate::console::{
    Shots, Visitor, click, create_key, csrf_of, fill, heading_becomes, signed_in, signed_up, unique_email,
    wait_for_path,
};
use crate::kit::{TestApp, TestTenant, assert_problem};

const STAFF_PASSWORD: &str = "support staff passphrase 7";
// PallyCon credentials stored on a tenant: the staff page must never show them.
const PALLYCON_SITE_KEY: &str = "Q8fJ2kLm9PzX4vR7tY1wE6uI3oA5sD0g";
const PALLYCON_ACCESS_KEY: &str = "Zx9Cv8Bn7Mm6Ll5Kk4Jj3Hh2Gg1Ff0Dd";

async fn create_staff(app: &TestApp) -> String {
    let email = unique_email("support");
    app.directory
        .create_staff(Email::parse(&email).unwrap(), SecretString::from(STAFF_PASSWORD))
        .await
        .expect("staff account created");
    email
}

async fn staff_signed_in<'a>(app: &'a TestApp, email: &str) -> Visitor<'a> {
    let mut visitor = Visitor::new(app);
    let answer =
        visitor.submit("/staff/login", "/staff/login", &[("email", email), ("password", STAFF_PASSWORD)]).await;
    assert_eq!((answer.status, answer.location.as_deref()), (303, Some("/staff")), "{}", answer.body);
    visitor
}

/// A tenant made through the console: (owner email, the tenant with an API key made on the console page).
async fn console_tenant(app: &TestApp, organization: &str) -> (String, TestTenant) {
    let email = signed_up(app, organization).await;
    let mut owner = signed_in(app, &email).await;
    let (_, api_key) = create_key(&mut owner, "test").await;
    let tenant: Value = app.get("/api/v1/tenant", &api_key).await.json().await.unwrap();
    let tenant = TestTenant {
        tenant_id: tenant["tenant_id"].as_str().unwrap().to_owned(),
        site_id: tenant["site_id"].as_str().unwrap().to_owned(),
        api_key,
    };
    (email, tenant)
}

/// Sign in at `page` with plain requests and return the value of the session cookie `session_cookie`.
async fn raw_session(
    app: &TestApp,
    page: &str,
    form_cookie: &str,
    session_cookie: &str,
    email: &str,
    password: &str,
) -> String {
    let cookie_value = |response: &reqwest::Response, name: &str| -> Option<String> {
        response.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|c| {
            let pair = c.split(';').next()?;
            let (n, v) = pair.split_once('=')?;
            (n == name && !v.is_empty()).then(|| v.to_owned())
        })
    };
    let form = app.http.get(app.url(page)).send().await.unwrap();
    let form_token = cookie_value(&form, form_cookie).expect("the sign-in page sets its form cookie");
    let csrf = csrf_of(&form.text().await.unwrap());
    let answer = app
        .http
        .post(app.url(page))
        .header("cookie", format!("{form_cookie}={form_token}"))
        .form(&[("csrf", csrf.as_str()), ("email", email), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    cookie_value(&answer, session_cookie).expect("a session cookie")
}

async fn get_with_cookie(app: &TestApp, path: &str, cookie: &str) -> reqwest::Response {
    app.http.get(app.url(path)).header("cookie", cookie).send().await.unwrap()
}

fn location(response: &reqwest::Response) -> Option<&str> {
    response.headers().get("location").and_then(|v| v.to_str().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_sign_in_is_its_own_locks_out_and_checks_every_form_token() {
    let app = TestApp::spawn().await;
    let staff = create_staff(&app).await;

    // No session: the staff pages send to the staff sign-in page.
    let mut anonymous = Visitor::new(&app);
    let page = anonymous.get("/staff").await;
    assert_eq!(
        (page.status, page.location.as_deref(), page.code.as_deref()),
        (303, Some("/staff/login"), Some("2020"))
    );

    // A wrong password is refused; so is a form without its token.
    let mut visitor = Visitor::new(&app);
    let wrong = visitor.submit("/staff/login", "/staff/login", &[("email", &staff), ("password", "not the one")]).await;
    assert_eq!((wrong.status, wrong.code.as_deref()), (401, Some("2022")), "{}", wrong.body);
    assert!(wrong.body.contains("the email or the password is wrong"));
    let no_token = visitor.post("/staff/login", &[("email", &staff), ("password", STAFF_PASSWORD)]).await;
    assert_eq!((no_token.status, no_token.code.as_deref()), (403, Some("2021")));

    // The right password signs in (the earlier failure does not count against it).
    let mut signed = staff_signed_in(&app, &staff).await;
    let list = signed.get("/staff").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("<h1>Tenants</h1>"));

    // Every signed-in form checks its token: logging out and suspending without (or with a wrong) one is refused.
    let tenant = app.create_tenant("Token Checked").await;
    let refused = signed.post("/staff/logout", &[]).await;
    assert_eq!((refused.status, refused.code.as_deref()), (403, Some("2021")));
    let refused =
        signed.post(&format!("/staff/tenants/{}/suspend", tenant.tenant_id), &[("csrf", &"0".repeat(64))]).await;
    assert_eq!((refused.status, refused.code.as_deref()), (403, Some("2021")));
    let tenant_view: Value = app.get("/api/v1/tenant", &tenant.api_key).await.json().await.unwrap();
    assert_eq!(tenant_view["status"], "active", "a refused form changed nothing");

    // A tenant member's session opens no staff page, and a staff session opens no console page, even when the
    // cookie is renamed to the other console's name.
    let owner_email = signed_up(&app, "Separate Films").await;
    let mut owner = signed_in(&app, &owner_email).await;
    let staff_page = owner.get("/staff").await;
    assert_eq!((staff_page.status, staff_page.location.as_deref()), (303, Some("/staff/login")));
    let console_page = signed.get("/console").await;
    assert_eq!((console_page.status, console_page.location.as_deref()), (303, Some("/login")));
    let tenant_session =
        raw_session(&app, "/login", "clavis_form", "clavis_session", &owner_email, crate::console::PASSWORD).await;
    let staff_session =
        raw_session(&app, "/staff/login", "clavis_staff_form", "clavis_staff_session", &staff, STAFF_PASSWORD).await;
    assert_eq!(get_with_cookie(&app, "/console", &format!("clavis_session={tenant_session}")).await.status(), 200);
    assert_eq!(get_with_cookie(&app, "/staff", &format!("clavis_staff_session={staff_session}")).await.status(), 200);
    let crossed = get_with_cookie(&app, "/staff", &format!("clavis_staff_session={tenant_session}")).await;
    assert_eq!((crossed.status().as_u16(), location(&crossed)), (303, Some("/staff/login")));
    let crossed = get_with_cookie(&app, "/console", &format!("clavis_session={staff_session}")).await;
    assert_eq!((crossed.status().as_u16(), location(&crossed)), (303, Some("/login")));
    let crossed = get_with_cookie(&app, "/console/audit", &format!("clavis_session={staff_session}")).await;
    assert_eq!((crossed.status().as_u16(), location(&crossed)), (303, Some("/login")));

    // Logging out ends the session on the server.
    let out = signed.submit("/staff", "/staff/logout", &[]).await;
    assert_eq!((out.status, out.location.as_deref()), (303, Some("/staff/login")));
    let after = get_with_cookie(&app, "/staff", &format!("clavis_staff_session={staff_session}")).await;
    assert_eq!(after.status(), 200, "another session of the same person lives on");
    let again = signed.get("/staff").await;
    assert_eq!((again.status, again.location.as_deref()), (303, Some("/staff/login")));

    // Five wrong passwords lock the account: even the right one is refused for 15 minutes.
    let locked_out = create_staff(&app).await;
    let mut attacker = Visitor::new(&app);
    for _ in 0..clavis_web::MAX_FAILURES_PER_ACCOUNT {
        let wrong = attacker
            .submit("/staff/login", "/staff/login", &[("email", &locked_out), ("password", "guess guess")])
            .await;
        assert_eq!(wrong.code.as_deref(), Some("2022"));
    }
    let locked =
        attacker.submit("/staff/login", "/staff/login", &[("email", &locked_out), ("password", STAFF_PASSWORD)]).await;
    assert_eq!((locked.status, locked.code.as_deref()), (429, Some("2024")), "{}", locked.body);
    // Another staff account from the same address still signs in (the per-IP limit is higher).
    staff_signed_in(&app, &staff).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_view_every_tenant_without_secrets_suspend_and_resume_and_the_tenant_reads_the_audit() {
    let app = TestApp::spawn().await;
    let staff = create_staff(&app).await;
    let (owner_a, a) = console_tenant(&app, "Audited Pictures").await;
    let (owner_b, b) = console_tenant(&app, "Bystander Media").await;

    // Tenant A stores PallyCon secrets and has licenses issued and refused.
    let pallycon = json!({"site_id": "STAF", "site_key": PALLYCON_SITE_KEY, "access_key": PALLYCON_ACCESS_KEY});
    let stored = app.put("/api/v1/integrations/pallycon", &a.api_key, &pallycon).await;
    assert_eq!(stored.status(), 200, "{}", stored.text().await.unwrap());
    let keys = app.create_keys(&a, json!({"content_id": "audited-movie", "tracks": ["SD"]})).await;
    let kid = keys["keys"][0]["kid"].as_str().unwrap().to_owned();
    let token = app.token_for(&a, "viewer-1", "audited-movie").await;
    assert_eq!(app.clearkey(&token, &[&kid]).await.status(), 200);
    assert_eq!(app.clearkey(&token, &["00112233445566778899aabbccddeeff"]).await.status(), 403);
    app.flush_log().await;

    // The list shows both tenants.
    let mut desk = staff_signed_in(&app, &staff).await;
    let list = desk.get("/staff").await;
    assert_eq!(list.status, 200);
    for (name, tenant) in [("Audited Pictures", &a), ("Bystander Media", &b)] {
        assert!(list.body.contains(name), "{name} in {}", list.body);
        assert!(list.body.contains(&tenant.site_id));
        assert!(list.body.contains(&format!("/staff/tenants/{}", tenant.tenant_id)));
    }

    // A's page: settings, which integrations are configured, the log and the refusals; never a secret value.
    let page = desk.get(&format!("/staff/tenants/{}", a.tenant_id)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Audited Pictures") && page.body.contains(&a.site_id));
    assert!(page.body.contains("id=\"status\">active"));
    assert!(page.body.contains("PallyCon tokens</td><td>configured"), "{}", page.body);
    assert!(page.body.contains("default-policy"));
    assert!(page.body.contains("audited-movie") && page.body.contains("viewer-1"), "the license log");
    assert!(page.body.contains("id=\"refusal-5002\""), "the refusal counts: {}", page.body);
    // The tenant's dashboard chart and counts by DRM, as the tenant sees them on its own dashboard.
    assert!(page.body.contains("<svg id=\"license-chart\""), "{}", page.body);
    assert!(page.body.contains("1 licenses issued and 1 denied in the last 24 hours"), "{}", page.body);
    assert!(
        page.body
            .contains("id=\"drm-clearkey\"><td>clearkey</td><td class=\"issued\">1</td><td class=\"denied\">1</td>"),
        "{}",
        page.body
    );
    assert!(page.body.contains(&owner_a), "the members");
    for secret in [PALLYCON_SITE_KEY, PALLYCON_ACCESS_KEY, a.api_key.as_str()] {
        assert!(!page.body.contains(secret), "a secret value is on the staff page");
    }
    // An unknown tenant id is the catalog's "not found".
    let missing = desk.get(&format!("/staff/tenants/{}", uuid::Uuid::new_v4())).await;
    assert_eq!((missing.status, missing.code.as_deref()), (404, Some("2004")));

    // Suspend: A's licenses, its API and its console are refused with 2003 at once; B is untouched.
    let mut owner = signed_in(&app, &owner_a).await;
    let tenant_page = format!("/staff/tenants/{}", a.tenant_id);
    let suspended =
        desk.submit(&tenant_page, &format!("{tenant_page}/suspend"), &[("reason", "abuse report 42")]).await;
    assert_eq!((suspended.status, suspended.location.as_deref()), (303, Some(tenant_page.as_str())));
    assert_problem(app.clearkey(&token, &[&kid]).await, 403, 2003).await;
    assert_problem(app.get("/api/v1/tenant", &a.api_key).await, 403, 2003).await;
    assert_eq!(app.get("/api/v1/tenant", &b.api_key).await.status(), 200);
    let refused = owner.get("/console/audit").await;
    assert_eq!((refused.status, refused.code.as_deref()), (403, Some("2003")));
    let page = desk.get(&tenant_page).await;
    assert!(page.body.contains("id=\"status\">suspended") && page.body.contains("Resume this account"));

    // Resume: licenses are issued again.
    let resumed = desk.submit(&tenant_page, &format!("{tenant_page}/resume"), &[("reason", "")]).await;
    assert_eq!(resumed.status, 303);
    assert_eq!(app.clearkey(&token, &[&kid]).await.status(), 200);

    // A reads every view and action in the console (any role) and through the API; B reads none of them.
    let audit = owner.get("/console/audit").await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    for expected in [
        staff.as_str(),
        "viewed the account (settings, license log, refusals)",
        "suspended the account",
        "abuse report 42",
        "resumed the account",
    ] {
        assert!(audit.body.contains(expected), "{expected} in {}", audit.body);
    }
    let rows: Value = app.get("/api/v1/audit", &a.api_key).await.json().await.unwrap();
    let actions: Vec<&str> = rows.as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    // Newest first. Each form was read from the page before it was posted (a view each), and the redirect after
    // resuming was not followed, so resuming is the newest row.
    assert_eq!(actions, ["resume", "view_tenant", "view_tenant", "suspend", "view_tenant", "view_tenant"], "{rows}");
    assert!(rows.as_array().unwrap().iter().all(|r| r["staff_email"] == staff.as_str()));
    assert_eq!(rows[3]["detail"], "abuse report 42");
    assert_eq!(rows[0]["detail"], Value::Null, "an empty reason is no detail");
    let limited: Value = app.get("/api/v1/audit?limit=1", &a.api_key).await.json().await.unwrap();
    assert_eq!(limited.as_array().unwrap().len(), 1);

    let rows_b: Value = app.get("/api/v1/audit", &b.api_key).await.json().await.unwrap();
    assert_eq!(rows_b, json!([]), "B sees nothing of what staff did with A");
    let mut owner_b = signed_in(&app, &owner_b).await;
    let audit_b = owner_b.get("/console/audit").await;
    assert_eq!(audit_b.status, 200);
    assert!(audit_b.body.contains("id=\"audit-empty\"") && !audit_b.body.contains(&staff), "{}", audit_b.body);

    // The staff-wide log has the cross-tenant views and sign-ins too.
    let all = desk.get("/staff/audit").await;
    assert!(all.body.contains("viewed the list of tenants") && all.body.contains("signed in"), "{}", all.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_the_support_console_and_the_tenant_audit_page() {
    let app = TestApp::spawn_with(ServiceSet::ALL, |_| {}).await;
    let staff = create_staff(&app).await;
    let (owner, tenant) = console_tenant(&app, "Screenshot Studios").await;
    app.create_tenant("Second Tenant").await;
    let keys = app.create_keys(&tenant, json!({"content_id": "shot-movie", "tracks": ["SD"]})).await;
    let kid = keys["keys"][0]["kid"].as_str().unwrap().to_owned();
    let token = app.token_for(&tenant, "viewer-9", "shot-movie").await;
    assert_eq!(app.clearkey(&token, &[&kid]).await.status(), 200);
    assert_eq!(app.clearkey(&token, &["00112233445566778899aabbccddeeff"]).await.status(), 403);
    app.flush_log().await;

    let driver = ChromeDriver::start();
    let client = driver.browser().await;
    client.set_window_size(1100, 1400).await.unwrap();
    let mut shots = Shots::in_folder("staff");

    client.goto(&app.url("/staff/login")).await.unwrap();
    heading_becomes(&client, "Platform support sign-in").await;
    shots.take(&client, "login").await;
    fill(&client, "email", &staff).await;
    fill(&client, "password", STAFF_PASSWORD).await;
    click(&client, "form[action='/staff/login'] button").await;
    wait_for_path(&client, "/staff").await;
    heading_becomes(&client, "Tenants").await;
    shots.take(&client, "tenants").await;

    client.wait().for_element(Locator::LinkText("Screenshot Studios")).await.unwrap().click().await.unwrap();
    heading_becomes(&client, "Screenshot Studios").await;
    shots.take(&client, "tenant").await;
    fill(&client, "reason", "payment overdue").await;
    click(&client, "form[action$='/suspend'] button").await;
    // The answer is the same page again, now offering to resume.
    client.wait().for_element(Locator::Css("form[action$='/resume']")).await.unwrap();
    assert_eq!(client.find(Locator::Id("status")).await.unwrap().text().await.unwrap(), "suspended");
    shots.take(&client, "tenant-suspended").await;
    assert_problem(app.clearkey(&token, &[&kid]).await, 403, 2003).await;
    click(&client, "form[action$='/resume'] button").await;
    wait_for_path(&client, &format!("/staff/tenants/{}", tenant.tenant_id)).await;
    client.wait().for_element(Locator::Css("form[action$='/suspend']")).await.unwrap();
    client.wait().for_element(Locator::LinkText("Audit log")).await.unwrap().click().await.unwrap();
    heading_becomes(&client, "Audit log").await;
    shots.take(&client, "staff-audit").await;

    // The tenant's owner reads it in the console (same browser: the staff cookie is scoped to /staff).
    let owner_client = &client;
    owner_client.goto(&app.url("/login")).await.unwrap();
    fill(owner_client, "email", &owner).await;
    fill(owner_client, "password", crate::console::PASSWORD).await;
    click(owner_client, "form[action='/login'] button").await;
    wait_for_path(owner_client, "/console").await;
    click(owner_client, "nav[aria-label=Console] a[href='/console/audit']").await;
    heading_becomes(owner_client, "Support audit log").await;
    let table = owner_client.find(Locator::Id("audit")).await.unwrap().text().await.unwrap();
    assert!(table.contains("suspended the account") && table.contains("payment overdue"), "{table}");
    assert!(table.contains("resumed the account") && table.contains(&staff), "{table}");
    shots.take(owner_client, "console-audit").await;
    client.close().await.ok();
}

#[tokio::test]
async fn staff_cookies_are_scoped_to_staff_pages_strict_and_secure_behind_https() {
    let app = TestApp::spawn_with(ServiceSet::ALL, |config| {
        config.public_url = Some("https://clavis.example.com".into());
    })
    .await;
    let staff = create_staff(&app).await;
    let page = app.http.get(app.url("/staff/login")).send().await.unwrap();
    let form_cookie = page.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    let csrf = csrf_of(&page.text().await.unwrap());
    let token = form_cookie.split(';').next().unwrap().to_owned();
    let answer = app
        .http
        .post(app.url("/staff/login"))
        .header("cookie", token)
        .form(&[("csrf", csrf.as_str()), ("email", staff.as_str()), ("password", STAFF_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    let session_cookie = answer.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    for (cookie, name) in [(&form_cookie, "clavis_staff_form="), (&session_cookie, "clavis_staff_session=")] {
        assert!(cookie.starts_with(name), "{cookie}");
        for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/staff"] {
            assert!(cookie.contains(attribute), "{attribute} in {cookie}");
        }
    }
}
