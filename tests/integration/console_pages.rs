//! The console's working pages (token inspector, policy editors, ...), in headless Chromium and over plain HTTP.
//! Screenshots go to `target/test-screenshots/console-pages/`.

use clavis::ServiceSet;
use fantoccini::Locator;
use serde_json::{Value, json};

use crate::browser::ChromeDriver;
use crate::console::{
    PASSWORD, Shots, Visitor, click, create_key, fill, heading_becomes, link_in, mail_to, outbox, path_of, signed_in,
    signed_up, unique_email, wait_for_path,
};
use crate::kit::{TestApp, TestTenant};

/// A tenant made through the console (owner email, API key of that tenant for the API side of the test).
async fn console_tenant(app: &TestApp, organization: &str) -> (String, TestTenant) {
    let email = signed_up(app, organization).await;
    let mut owner = signed_in(app, &email).await;
    let (_, api_key) = create_key(&mut owner, "test").await;
    let tenant: Value = app.get("/api/v1/tenant", &api_key).await.json().await.unwrap();
    let tenant = TestTenant {
        tenant_id: tenant["id"].as_str().unwrap_or_default().to_owned(),
        site_id: tenant["site_id"].as_str().unwrap_or_default().to_owned(),
        api_key,
    };
    (email, tenant)
}

async fn browser_signed_in(app: &TestApp, client: &fantoccini::Client, email: &str) {
    client.goto(&app.url("/login")).await.unwrap();
    fill(client, "email", email).await;
    fill(client, "password", PASSWORD).await;
    click(client, "form[action='/login'] button").await;
    wait_for_path(client, "/console").await;
}

async fn text_of(client: &fantoccini::Client, id: &str) -> String {
    // A form's answer replaces the page: an element found just before that goes stale, so read again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let found = client.wait().for_element(Locator::Id(id)).await;
        if let Ok(text) = async { found?.text().await }.await {
            return text;
        }
        assert!(std::time::Instant::now() < deadline, "#{id} kept going stale");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The text of `#id` once it contains `needle` (after a form was submitted, the old page may still be showing).
async fn text_becomes(client: &fantoccini::Client, id: &str, needle: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = text_of(client, id).await;
        if text.contains(needle) {
            return text;
        }
        assert!(std::time::Instant::now() < deadline, "#{id} never said {needle:?}; it says {text:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The first number after `marker` in `html`.
fn number_after(html: &str, marker: &str) -> u16 {
    let start = html.find(marker).unwrap_or_else(|| panic!("{marker} in {html}")) + marker.len();
    html[start..].trim_start().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_inspects_a_good_token_a_tampered_one_and_shows_a_bad_kid_next_to_its_field() {
    let app = TestApp::spawn_with(ServiceSet::ALL, |_| {}).await;
    let (email, tenant) = console_tenant(&app, "Inspector Films").await;
    let keys = app.create_keys(&tenant, json!({"content_id": "movie", "tracks": ["SD", "HD"]})).await;
    let sd = keys["keys"][0]["kid"].as_str().unwrap().to_owned();
    let hd = keys["keys"][1]["kid"].as_str().unwrap().to_owned();
    let token = app
        .mint_token(
            &tenant,
            json!({"user_id": "viewer-7", "content_id": "movie", "policy": {"allowed_tracks": ["SD"]}}),
        )
        .await;

    let driver = ChromeDriver::start();
    let client = driver.browser().await;
    client.set_window_size(1100, 1400).await.unwrap();
    let mut shots = Shots::in_folder("console-pages");
    browser_signed_in(&app, &client, &email).await;
    client.wait().for_element(Locator::LinkText("Token inspector")).await.unwrap().click().await.unwrap();
    heading_becomes(&client, "Token inspector").await;
    shots.take(&client, "inspector-empty").await;

    fill(&client, "token", &token).await;
    fill(&client, "kids", &sd).await;
    click(&client, "form[action='/console/tokens/inspect'] button[type=submit]").await;
    let verdict = text_of(&client, "verdict").await;
    assert!(verdict.contains("A license would be issued"), "{verdict}");
    let policy = text_of(&client, "effective-policy").await;
    assert!(policy.contains("\"allowed_tracks\"") && policy.contains("\"SD\""), "{policy}");
    assert!(text_of(&client, "decoded").await.contains("viewer-7"));
    shots.take(&client, "inspector-issued").await;

    // The HD key is outside the token's policy: refused, with the rule that refused it.
    let kids = client.find(Locator::Id("kids")).await.unwrap();
    kids.clear().await.unwrap();
    kids.send_keys(&hd).await.unwrap();
    click(&client, "form[action='/console/tokens/inspect'] button[type=submit]").await;
    let verdict = text_becomes(&client, "verdict", "refused").await;
    assert!(verdict.contains("refused: 5006"), "{verdict}");
    assert_eq!(text_of(&client, "verdict-rule").await, "policy.allowed_tracks");
    shots.take(&client, "inspector-refused").await;

    // A KID that is not hex: the error stands next to the KIDs box, and the form keeps what was typed.
    let kids = client.find(Locator::Id("kids")).await.unwrap();
    kids.clear().await.unwrap();
    kids.send_keys("not-a-kid").await.unwrap();
    click(&client, "form[action='/console/tokens/inspect'] button[type=submit]").await;
    let error = text_of(&client, "kids-error").await;
    assert!(error.contains("kids[0]"), "{error}");
    let kids = client.find(Locator::Id("kids")).await.unwrap();
    assert_eq!(kids.attr("aria-invalid").await.unwrap().as_deref(), Some("true"));
    assert_eq!(kids.prop("value").await.unwrap().as_deref(), Some("not-a-kid"));
    shots.take(&client, "inspector-field-error").await;

    // A real refusal (the HD key again, at the license endpoint) shows up in the error-code browser's 24-hour count.
    assert_eq!(app.clearkey(&token, &[&hd]).await.status(), 403);
    assert_eq!(app.clearkey(&token, &[&sd]).await.status(), 200);
    app.flush_log().await;
    // The console's own link (the header's "Error codes" is the public reference without counts).
    click(&client, "nav[aria-label=Console] a[href='/console/errors']").await;
    heading_becomes(&client, "Error codes").await;
    fill(&client, "q", "track type").await;
    click(&client, "form[action='/console/errors'] button[type=submit]").await;
    // The GET form navigates: wait for the search's own page before reading its rows.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !client.current_url().await.unwrap().query().unwrap_or_default().contains("q=track") {
        assert!(std::time::Instant::now() < deadline, "the search did not load");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let row = client.wait().for_element(Locator::Css("#code-5006 td.count")).await.unwrap();
    assert_eq!(row.text().await.unwrap(), "1");
    shots.take(&client, "error-codes").await;

    // The dashboard draws the day's requests; the log search finds the refused one and opens its story.
    click(&client, "nav[aria-label=Console] a[href='/console']").await;
    text_becomes(&client, "chart-summary", "1 licenses issued and 1 denied").await;
    shots.take(&client, "dashboard").await;
    click(&client, "nav[aria-label=Console] a[href='/console/logs']").await;
    heading_becomes(&client, "License log").await;
    client.find(Locator::Css("#outcome option[value='denied']")).await.unwrap().click().await.unwrap();
    click(&client, "form[action='/console/logs'] button[type=submit]").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !client.current_url().await.unwrap().query().unwrap_or_default().contains("outcome=denied") {
        assert!(std::time::Instant::now() < deadline, "the search did not load");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    shots.take(&client, "license-log-denied").await;
    click(&client, "#log tbody tr a").await;
    assert_eq!(text_becomes(&client, "rule", "policy.").await, "policy.allowed_tracks");
    shots.take(&client, "license-log-story").await;

    // The default policy editor in the browser: a select and a number, saved, and shown back.
    click(&client, "nav[aria-label=Console] a[href='/console/policy']").await;
    heading_becomes(&client, "Default policy").await;
    shots.take(&client, "default-policy").await;
    let level = client.find(Locator::Css("#widevine_min_security_level option[value='5']")).await.unwrap();
    level.click().await.unwrap();
    let duration = client.find(Locator::Id("license_duration_seconds")).await.unwrap();
    duration.clear().await.unwrap();
    duration.send_keys("7200").await.unwrap();
    click(&client, "form[action='/console/policy'] button[type=submit]").await;
    text_becomes(&client, "saved", "Default policy saved").await;
    let stored = tenant_settings(&app, &tenant).await["default_policy"].clone();
    assert_eq!(
        (stored["license_duration_seconds"].as_u64(), stored["widevine"]["min_security_level"].as_u64()),
        (Some(7200), Some(5))
    );
    shots.take(&client, "default-policy-saved").await;

    // The contents list and a content's page (KIDs, last use, its own policy editor).
    click(&client, "nav[aria-label=Console] a[href='/console/contents']").await;
    heading_becomes(&client, "Contents").await;
    shots.take(&client, "contents").await;
    client.wait().for_element(Locator::LinkText("movie")).await.unwrap().click().await.unwrap();
    heading_becomes(&client, "movie").await;
    let sd_row = client.wait().for_element(Locator::Css(&format!("#kid-{sd} td.last-used"))).await.unwrap();
    assert_ne!(sd_row.text().await.unwrap(), "never", "the SD key was in a license earlier in this test");
    shots.take(&client, "content").await;
    client.close().await.unwrap();
}

#[tokio::test]
async fn the_inspector_page_says_what_the_api_says_for_every_role_and_needs_its_form_token() {
    let app = TestApp::spawn().await;
    let (email, tenant) = console_tenant(&app, "Same Answer Films").await;
    let token = app.token_for(&tenant, "u", "movie").await;
    let tampered = format!("{}x", &token[..token.len() - 1]);
    let api: Value =
        app.post("/api/v1/tokens/inspect", &tenant.api_key, &json!({"token": tampered})).await.json().await.unwrap();
    let api_code = api["refusal"]["code"].as_u64().unwrap() as u16;

    let mut owner = signed_in(&app, &email).await;
    let page = owner.submit("/console/tokens/inspect", "/console/tokens/inspect", &[("token", &tampered)]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(number_after(&page.body, "A license would be refused:"), api_code, "{}", page.body);
    assert!(page.body.contains(api["refusal"]["rule"].as_str().unwrap()));

    // Another tenant's token is refused as not this tenant's, and nothing more is said about it.
    let other = app.create_tenant("Other Films").await;
    let foreign = app.token_for(&other, "u", "movie").await;
    let page = owner.submit("/console/tokens/inspect", "/console/tokens/inspect", &[("token", &foreign)]).await;
    assert!(page.body.contains("not issued for this tenant"), "{}", page.body);
    assert!(!page.body.contains("Effective policy"));

    let missing = owner.post("/console/tokens/inspect", &[("token", &token)]).await;
    assert_eq!((missing.status, missing.code.as_deref()), (403, Some("2021")));
    let empty = owner.submit("/console/tokens/inspect", "/console/tokens/inspect", &[("token", " ")]).await;
    assert_eq!(empty.status, 422);
    assert!(empty.body.contains("id=\"token-error\""), "{}", empty.body);
    let mut stranger = Visitor::new(&app);
    assert_eq!(stranger.get("/console/tokens/inspect").await.location.as_deref(), Some("/login"));
}

/// The `Last 24 h` count in the error browser's row for `code`.
fn count_of(html: &str, code: u16) -> u64 {
    let row = html.find(&format!("id=\"code-{code}\"")).unwrap_or_else(|| panic!("no row for {code}"));
    let start = html[row..].find("class=\"count\">").unwrap() + row + "class=\"count\">".len();
    html[start..].split('<').next().unwrap().trim().parse().unwrap()
}

#[tokio::test]
async fn the_error_browser_lists_the_whole_catalog_searches_it_and_counts_only_this_tenants_refusals() {
    let app = TestApp::spawn().await;
    let (email, tenant) = console_tenant(&app, "Error Films").await;
    let other = app.create_tenant("Neighbour Films").await;
    for (who, refusals) in [(&tenant, 2), (&other, 3)] {
        let keys = app.create_keys(who, json!({"content_id": "movie", "tracks": ["SD", "HD"]})).await;
        let hd = keys["keys"][1]["kid"].as_str().unwrap().to_owned();
        let token = app
            .mint_token(who, json!({"user_id": "u", "content_id": "movie", "policy": {"allowed_tracks": ["SD"]}}))
            .await;
        for _ in 0..refusals {
            assert_eq!(app.clearkey(&token, &[&hd]).await.status(), 403);
        }
    }
    app.flush_log().await;

    let mut viewer_of_the_catalog = signed_in(&app, &email).await;
    let all = viewer_of_the_catalog.get("/console/errors").await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.body.matches("<tr id=\"code-").count(), clavis_core::ErrorCode::ALL.len());
    assert_eq!(count_of(&all.body, 5006), 2, "only this tenant's refusals count");
    assert_eq!(count_of(&all.body, 4011), 0);

    let found = viewer_of_the_catalog.get("/console/errors?q=ALREADY+used").await;
    assert!(found.body.contains("id=\"code-4011\""), "{}", found.body);
    assert!(!found.body.contains("id=\"code-5006\""));
    let seen = viewer_of_the_catalog.get("/console/errors?q=&seen=1").await;
    assert_eq!(seen.body.matches("<tr id=\"code-").count(), 1, "{}", seen.body);
    let nothing = viewer_of_the_catalog.get("/console/errors?q=no+such+words+anywhere").await;
    assert_eq!((nothing.status, nothing.body.matches("<tr id=\"code-").count()), (200, 0));
    assert_eq!(Visitor::new(&app).get("/console/errors").await.location.as_deref(), Some("/login"));
}

/// A member invited by `owner` with `role`, signed in.
async fn invited<'a>(app: &'a TestApp, owner: &mut Visitor<'_>, role: &str) -> Visitor<'a> {
    let email = unique_email(role);
    let invited = owner.submit("/console/team", "/console/team", &[("email", &email), ("role", role)]).await;
    assert_eq!(invited.status, 200, "{}", invited.body);
    let link = path_of(&link_in(&mail_to(&outbox(app), &email, "/invite?token="), "/invite?token="));
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let set = Visitor::new(app).submit(&link, "/invite", &[("token", &token), ("password", PASSWORD)]).await;
    assert_eq!(set.status, 200, "{}", set.body);
    signed_in(app, &email).await
}

async fn tenant_settings(app: &TestApp, tenant: &TestTenant) -> Value {
    app.get("/api/v1/tenant", &tenant.api_key).await.json::<Value>().await.unwrap()["settings"].clone()
}

/// The text of the table cell with `class` in the row whose id is `row_id`.
fn cell(html: &str, row_id: &str, class: &str) -> String {
    let row = html.find(&format!("id=\"{row_id}\"")).unwrap_or_else(|| panic!("no row {row_id} in {html}"));
    let marker = format!("class=\"{class}\">");
    let start = html[row..].find(&marker).unwrap() + row + marker.len();
    html[start..].split('<').next().unwrap().trim().to_owned()
}

#[tokio::test]
async fn the_policy_editors_set_the_default_and_a_contents_policy_and_licenses_follow_them() {
    let app = TestApp::spawn().await;
    let (email, tenant) = console_tenant(&app, "Policy Films").await;
    let keys = app.create_keys(&tenant, json!({"content_id": "series/s1e1", "tracks": ["SD", "HD"]})).await;
    let sd = keys["keys"][0]["kid"].as_str().unwrap().to_owned();
    let hd = keys["keys"][1]["kid"].as_str().unwrap().to_owned();
    let mut owner = signed_in(&app, &email).await;

    // The default policy page shows the stored default (the platform's: one-day temporary licenses).
    let page = owner.get("/console/policy").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("name=\"license_duration_seconds\" value=\"86400\""), "{}", page.body);

    // Saving the form changes what the API reports, field for field.
    let saved = owner
        .submit(
            "/console/policy",
            "/console/policy",
            &[
                ("license_duration_seconds", "600"),
                ("persistent", "false"),
                ("limit_tracks", "on"),
                ("track_sd", "on"),
                ("track_hd", "on"),
                ("widevine_min_security_level", "3"),
                ("allowed_client_networks", "0.0.0.0/0\n::/0"),
                ("fairplay_allow_airplay", "false"),
            ],
        )
        .await;
    assert_eq!((saved.status, saved.location.as_deref()), (303, Some("/console/policy?saved=1")), "{}", saved.body);
    let expected = json!({
        "license_duration_seconds": 600,
        "persistent": false,
        "allowed_tracks": ["SD", "HD"],
        "widevine": {"min_security_level": 3},
        "allowed_client_networks": ["0.0.0.0/0", "::/0"],
        "fairplay": {"allow_airplay": false},
    });
    assert_eq!(tenant_settings(&app, &tenant).await["default_policy"], expected);
    let page = owner.get("/console/policy?saved=1").await;
    assert!(page.body.contains("id=\"saved\""));
    assert!(page.body.contains("<option value=\"3\" selected>"), "{}", page.body);

    // A bad value is refused next to its input, the form keeps what was typed, and nothing is stored.
    let bad = owner
        .submit("/console/policy", "/console/policy", &[("max_devices", "many"), ("license_duration_seconds", "60")])
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("id=\"max_devices-error\""), "{}", bad.body);
    assert!(
        bad.body
            .contains("name=\"max_devices\" value=\"many\" inputmode=\"numeric\" size=\"12\" aria-invalid=\"true\"")
    );
    let bad = owner.submit("/console/policy", "/console/policy", &[("playready_min_security_level", "42")]).await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("id=\"playready_min_security_level-error\""), "{}", bad.body);
    assert_eq!(tenant_settings(&app, &tenant).await["default_policy"], expected);
    let forged = owner.post("/console/policy", &[("csrf", "0000"), ("license_duration_seconds", "1")]).await;
    assert_eq!((forged.status, forged.code.as_deref()), (403, Some("2021")));

    // The contents list finds the content by prefix; its page lists both KIDs, never used yet.
    let list = owner.get("/console/contents?prefix=series").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("href=\"/console/content?id=series%2Fs1e1\""), "{}", list.body);
    assert!(owner.get("/console/contents?prefix=movies").await.body.contains("id=\"no-contents\""));
    let page = owner.get("/console/content?id=series%2Fs1e1").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(cell(&page.body, &format!("kid-{sd}"), "last-used"), "never");
    assert!(!page.body.contains(keys["keys"][0]["key"].as_str().unwrap()), "key values never shown");

    // A content policy that only narrows is stored and applied: HD is no longer delivered for this content.
    let saved = owner
        .submit(
            "/console/content?id=series%2Fs1e1",
            "/console/content/policy?id=series%2Fs1e1",
            &[("limit_tracks", "on"), ("track_sd", "on"), ("license_duration_seconds", "300")],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let content: Value = app.get("/api/v1/contents/series%2Fs1e1", &tenant.api_key).await.json().await.unwrap();
    assert_eq!(content["policy"], json!({"license_duration_seconds": 300, "allowed_tracks": ["SD"]}));
    let token = app.token_for(&tenant, "viewer-1", "series/s1e1").await;
    assert_eq!(app.clearkey(&token, &[&hd]).await.status(), 403);
    assert_eq!(app.clearkey(&token, &[&sd]).await.status(), 200);
    app.flush_log().await;
    let page = owner.get("/console/content?id=series%2Fs1e1").await;
    assert_ne!(cell(&page.body, &format!("kid-{sd}"), "last-used"), "never", "{}", page.body);
    assert_eq!(cell(&page.body, &format!("kid-{hd}"), "last-used"), "never", "a refused key was not used");
    assert!(page.body.contains("&#34;license_duration_seconds&#34;: 300"), "{}", page.body);

    // Wider than the default: refused, naming the field, and the stored policy stays.
    let wider = owner
        .submit(
            "/console/content?id=series%2Fs1e1",
            "/console/content/policy?id=series%2Fs1e1",
            &[("license_duration_seconds", "7200")],
        )
        .await;
    assert_eq!(wider.status, 422);
    assert!(wider.body.contains("id=\"license_duration_seconds-error\""), "{}", wider.body);
    let content: Value = app.get("/api/v1/contents/series%2Fs1e1", &tenant.api_key).await.json().await.unwrap();
    assert_eq!(content["policy"]["license_duration_seconds"], 300);

    // Clearing (an empty form) goes back to the default.
    let cleared =
        owner.submit("/console/content?id=series%2Fs1e1", "/console/content/policy?id=series%2Fs1e1", &[]).await;
    assert_eq!(cleared.status, 303);
    let content: Value = app.get("/api/v1/contents/series%2Fs1e1", &tenant.api_key).await.json().await.unwrap();
    assert!(content.get("policy").is_none(), "{content}");

    // A viewer reads both editors but cannot save either.
    let mut viewer = invited(&app, &mut owner, "viewer").await;
    let page = viewer.get("/console/policy").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<fieldset class=\"policy\" disabled>"));
    let refused = viewer.submit("/console/policy", "/console/policy", &[("license_duration_seconds", "1")]).await;
    assert_eq!((refused.status, refused.code.as_deref()), (403, Some("2026")));
    let refused = viewer
        .submit(
            "/console/content?id=series%2Fs1e1",
            "/console/content/policy?id=series%2Fs1e1",
            &[("max_devices", "1")],
        )
        .await;
    assert_eq!((refused.status, refused.code.as_deref()), (403, Some("2026")));
    assert_eq!(tenant_settings(&app, &tenant).await["default_policy"], expected);

    // Another tenant's content is not found from this account, by page or by form.
    let other = app.create_tenant("Neighbour Films").await;
    app.create_keys(&other, json!({"content_id": "their-movie", "tracks": ["SD"]})).await;
    let theirs = owner.get("/console/content?id=their-movie").await;
    assert_eq!((theirs.status, theirs.code.as_deref()), (404, Some("3001")));
    let theirs =
        owner.submit("/console/policy", "/console/content/policy?id=their-movie", &[("max_devices", "1")]).await;
    assert_eq!((theirs.status, theirs.code.as_deref()), (404, Some("3001")));
    assert!(!owner.get("/console/contents").await.body.contains("their-movie"));
    let their_content: Value = app.get("/api/v1/contents/their-movie", &other.api_key).await.json().await.unwrap();
    assert!(their_content.get("policy").is_none());
}

#[tokio::test]
async fn the_integrations_page_sets_license_settings_callback_mode_and_token_formats_without_showing_secrets() {
    use crate::callback::{Backend, Behaviour, SECRET};
    use base64::Engine;
    let app = TestApp::spawn_with(ServiceSet::ALL, |config| config.callback_allow_private_networks = true).await;
    let (email, tenant) = console_tenant(&app, "Integration Films").await;
    let mut owner = signed_in(&app, &email).await;
    let page = owner.get("/console/integrations").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<strong>token mode</strong>; no callback configured"));

    // License settings: the API's rules, the API's result; the crossdomain.xml follows the origins.
    let saved = owner
        .submit(
            "/console/integrations",
            "/console/integrations/settings",
            &[
                ("token_ttl_seconds", "900"),
                ("clock_skew_seconds", "30"),
                ("allowed_origins", "https://player.example.com\nhttp://legacy.example.com:8080"),
            ],
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(saved.body.contains("id=\"settings-outcome\""));
    let settings = tenant_settings(&app, &tenant).await;
    assert_eq!(
        (settings["token_ttl_seconds"].as_u64(), settings["clock_skew_seconds"].as_u64()),
        (Some(900), Some(30))
    );
    assert_eq!(settings["allowed_origins"], json!(["https://player.example.com", "http://legacy.example.com:8080"]));
    let bad = owner
        .submit(
            "/console/integrations",
            "/console/integrations/settings",
            &[("token_ttl_seconds", "900"), ("clock_skew_seconds", "999999"), ("allowed_origins", "")],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("clock_skew_seconds"), "{}", bad.body);
    assert_eq!(tenant_settings(&app, &tenant).await["clock_skew_seconds"], 30);
    let policy = app.http.get(app.url(&format!("/license/{}/crossdomain.xml", tenant.site_id))).send().await.unwrap();
    assert_eq!(policy.status(), 200);
    assert_eq!(policy.headers()["content-type"], "text/x-cross-domain-policy");
    let xml = policy.text().await.unwrap();
    assert!(xml.contains("<allow-access-from domain=\"player.example.com\" secure=\"true\"/>"), "{xml}");
    assert!(xml.contains("<allow-access-from domain=\"legacy.example.com\" secure=\"false\"/>"), "{xml}");
    assert!(!xml.contains("domain=\"*\""));
    let unknown = app.http.get(app.url("/license/ZZZZ/crossdomain.xml")).send().await.unwrap();
    crate::kit::assert_problem(unknown, 404, 2004).await;

    // Callback mode with the backend's secret, then "send test callback": the page shows the exact exchange.
    let backend = Backend::start(Behaviour::Allow(json!({"allowed_tracks": ["SD"]}))).await;
    let secret = base64::engine::general_purpose::STANDARD.encode(SECRET);
    let saved = owner
        .submit(
            "/console/integrations",
            "/console/integrations/callback",
            &[
                ("mode", "callback"),
                ("url", &backend.url),
                ("timeout_ms", "1500"),
                ("secret", "set"),
                ("shared_secret", &secret),
            ],
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(saved.body.contains("<strong>callback mode</strong>"), "{}", saved.body);
    assert!(!saved.body.contains(&secret), "a secret set by the tenant is never shown back");
    let api: Value = app.get("/api/v1/integrations/callback", &tenant.api_key).await.json().await.unwrap();
    assert_eq!((api["mode"].as_str(), api["url"].as_str()), (Some("callback"), Some(backend.url.as_str())));
    let tested = owner.submit("/console/integrations", "/console/integrations/callback/test", &[]).await;
    assert_eq!(tested.status, 200, "{}", tested.body);
    assert!(tested.body.contains("The test callback passed every check."), "{}", tested.body);
    assert!(tested.body.contains("id=\"callback-exchange\""));
    assert!(
        tested.body.contains("&#34;type&#34;: &#34;test&#34;")
            || tested.body.contains("\\&#34;type\\&#34;:\\&#34;test\\&#34;"),
        "{}",
        tested.body
    );
    assert_eq!(backend.count(), 1, "the backend got exactly the test request");
    // Generating a new secret shows it once; the old secret no longer passes the test.
    let regenerated = owner
        .submit(
            "/console/integrations",
            "/console/integrations/callback",
            &[("mode", "callback"), ("url", &backend.url), ("timeout_ms", "1500"), ("secret", "generate")],
        )
        .await;
    assert!(regenerated.body.contains("id=\"callback-secret\""), "{}", regenerated.body);
    assert!(!owner.get("/console/integrations").await.body.contains("id=\"callback-secret\""), "shown only once");
    let tested = owner.submit("/console/integrations", "/console/integrations/callback/test", &[]).await;
    assert!(tested.body.contains("The test callback failed"), "{}", tested.body);
    let refused = owner
        .submit("/console/integrations", "/console/integrations/callback", &[("mode", "callback"), ("url", "ftp://x")])
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);

    // Token formats: set through the forms, visible through the API, secrets never on the page.
    let site_key = "0123456789abcdef0123456789abcdef";
    let access_key = "access-key-only-the-backend-knows";
    let saved = owner
        .submit(
            "/console/integrations",
            "/console/integrations/pallycon",
            &[
                ("site_id", "CNSL"),
                ("site_key", site_key),
                ("access_key", access_key),
                ("token_ttl_seconds", "300"),
                ("compat_errors", "on"),
            ],
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    let pallycon: Value = app.get("/api/v1/integrations/pallycon", &tenant.api_key).await.json().await.unwrap();
    assert_eq!(pallycon["site_id"], "CNSL");
    assert_eq!((pallycon["token_ttl_seconds"].as_u64(), pallycon["compat_errors"].as_bool()), (Some(300), Some(true)));
    let drm_secret = "aa".repeat(32);
    let saved = owner
        .submit(
            "/console/integrations",
            "/console/integrations/drmtoday",
            &[("merchant", "console-merchant"), ("keys", &format!("key-1 {drm_secret}"))],
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    let drmtoday: Value = app.get("/api/v1/integrations/drmtoday", &tenant.api_key).await.json().await.unwrap();
    assert_eq!((drmtoday["merchant"].as_str(), drmtoday["kids"].clone()), (Some("console-merchant"), json!(["key-1"])));
    let com_key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let com_key_id = "69e54088-e9e0-4530-8c1a-1eb6dcd0d14e";
    let saved = owner
        .submit(
            "/console/integrations",
            "/console/integrations/axinom",
            &[("keys", &format!("{com_key_id} {com_key}"))],
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    let page = owner.get("/console/integrations").await;
    assert!(page.body.contains("Accepted: site id CNSL"), "{}", page.body);
    assert!(page.body.contains("Accepted: merchant console-merchant, key ids key-1"));
    assert!(page.body.contains(&format!("Accepted: communication key ids {com_key_id}")));
    for secret in [site_key, access_key, drm_secret.as_str(), com_key.as_str(), secret.as_str()] {
        assert!(!page.body.contains(secret), "the page shows no secret");
    }
    let bad = owner
        .submit(
            "/console/integrations",
            "/console/integrations/drmtoday",
            &[("merchant", "m"), ("keys", "key-1 short")],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("secrets[0].secret"), "{}", bad.body);

    // One PallyCon site belongs to one tenant: another tenant's form is refused with 4014.
    let other_email = signed_up(&app, "Other Integration Films").await;
    let mut other = signed_in(&app, &other_email).await;
    let taken = other
        .submit(
            "/console/integrations",
            "/console/integrations/pallycon",
            &[("site_id", "CNSL"), ("site_key", site_key), ("access_key", "x")],
        )
        .await;
    assert_eq!(taken.status, 409, "{}", taken.body);
    assert!(taken.body.contains("4014"));
    assert!(
        other.get("/console/integrations").await.body.contains("<strong>token mode</strong>"),
        "not the neighbour's"
    );

    // A viewer reads, cannot save or test; removing forgets the secrets.
    let mut viewer = invited(&app, &mut owner, "viewer").await;
    assert_eq!(viewer.get("/console/integrations").await.status, 200);
    let refused = viewer.submit("/console/integrations", "/console/integrations/callback/test", &[]).await;
    assert_eq!((refused.status, refused.code.as_deref()), (403, Some("2026")));
    let refused = viewer
        .submit(
            "/console/integrations",
            "/console/integrations/settings",
            &[("token_ttl_seconds", "1"), ("clock_skew_seconds", "1")],
        )
        .await;
    assert_eq!((refused.status, refused.code.as_deref()), (403, Some("2026")));
    let removed = owner.submit("/console/integrations", "/console/integrations/pallycon/remove", &[]).await;
    assert_eq!(removed.status, 200);
    assert_eq!(app.get("/api/v1/integrations/pallycon", &tenant.api_key).await.status(), 404);
    let forged = owner.post("/console/integrations/axinom/remove", &[("csrf", "nope")]).await;
    assert_eq!((forged.status, forged.code.as_deref()), (403, Some("2021")));
    assert_eq!(app.get("/api/v1/integrations/axinom", &tenant.api_key).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_switches_to_callback_mode_and_sends_a_test_callback() {
    use crate::callback::{Backend, Behaviour, SECRET};
    use base64::Engine;
    let app = TestApp::spawn_with(ServiceSet::ALL, |config| config.callback_allow_private_networks = true).await;
    let (email, _tenant) = console_tenant(&app, "Callback Films").await;
    let backend = Backend::start(Behaviour::Allow(json!({}))).await;
    let driver = ChromeDriver::start();
    let client = driver.browser().await;
    client.set_window_size(1100, 1600).await.unwrap();
    let mut shots = Shots::in_folder("console-pages");
    browser_signed_in(&app, &client, &email).await;
    click(&client, "nav[aria-label=Console] a[href='/console/integrations']").await;
    heading_becomes(&client, "Integration settings").await;
    shots.take(&client, "integrations").await;

    client.find(Locator::Css("#mode option[value='callback']")).await.unwrap().click().await.unwrap();
    fill(&client, "url", &backend.url).await;
    client.find(Locator::Css("#secret option[value='set']")).await.unwrap().click().await.unwrap();
    fill(&client, "shared_secret", &base64::engine::general_purpose::STANDARD.encode(SECRET)).await;
    click(&client, "form[action='/console/integrations/callback'] button[type=submit]").await;
    text_becomes(&client, "callback-state", "callback mode").await;
    click(&client, "#send-test-callback").await;
    let outcome = text_becomes(&client, "callback-outcome", "test callback").await;
    assert!(outcome.contains("The test callback passed every check."), "{outcome}");
    let exchange = text_of(&client, "callback-exchange").await;
    assert!(exchange.contains(&backend.url) && exchange.contains("\"status\": 200"), "{exchange}");
    shots.take(&client, "integrations-test-callback").await;
    assert_eq!(backend.count(), 1);
    client.close().await.unwrap();
}

fn fairplay_dev_credentials() -> (std::path::PathBuf, std::path::PathBuf) {
    // Canonical: ChromeDriver takes only canonical paths for file inputs.
    let dir = crate::kit::vectors_dir()
        .join("fairplay/apple-fps-sdk-4.1.0-via-andreyrikunov/credentials")
        .canonicalize()
        .unwrap();
    (dir.join("dev_certificate.der"), dir.join("dev_private_key.pem"))
}

const FAIRPLAY_ASK: &str = "00112233445566778899aabbccddeeff";
const FAIRPLAY_DASK: &str = "d87ce7a26081de2e8eb8acef3a6dc179";
const DEV_CERT_SHA1: &str = "5561980aa51f03aa04bca24556c841a71736c771";

/// The upload form with `files` (name, bytes) and text fields.
fn fairplay_form(csrf: &str, files: &[(&str, Vec<u8>)], fields: &[(&str, &str)]) -> reqwest::multipart::Form {
    let mut form = reqwest::multipart::Form::new().text("csrf", csrf.to_owned());
    for (name, bytes) in files {
        form = form
            .part(name.to_string(), reqwest::multipart::Part::bytes(bytes.clone()).file_name(format!("{name}.bin")));
    }
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    form
}

#[tokio::test]
async fn the_fairplay_page_uploads_the_development_credentials_says_what_it_checked_and_refuses_bad_files() {
    let app = TestApp::spawn().await;
    let (email, tenant) = console_tenant(&app, "FairPlay Films").await;
    let mut owner = signed_in(&app, &email).await;
    let (cert_path, key_path) = fairplay_dev_credentials();
    let (cert, key) = (std::fs::read(cert_path).unwrap(), std::fs::read(key_path).unwrap());
    let page = owner.get("/console/fairplay").await;
    assert!(page.body.contains("id=\"no-credentials\""), "{}", page.body);
    let csrf = crate::console::csrf_of(&page.body);
    let fixed = [("ask", FAIRPLAY_ASK), ("d_function", "fixed"), ("dask", FAIRPLAY_DASK)];

    // Refusals first, each naming what is wrong, and nothing is stored.
    // (files, fields, status, what the answer names)
    type Refusal<'a> = (Vec<(&'a str, Vec<u8>)>, Vec<(&'a str, &'a str)>, u16, &'a str);
    let refusals: Vec<Refusal> = vec![
        (vec![("private_key", key.clone())], fixed.to_vec(), 422, "certificate"),
        (
            vec![("certificate", cert.clone()), ("private_key", b"not a key".to_vec())],
            fixed.to_vec(),
            422,
            "private_key",
        ),
        (
            vec![("certificate", cert.clone()), ("private_key", key.clone())],
            vec![("ask", "abcd"), ("d_function", "fixed"), ("dask", FAIRPLAY_DASK)],
            422,
            "ask",
        ),
        (
            vec![("certificate", cert.clone()), ("private_key", key.clone())],
            vec![("ask", FAIRPLAY_ASK), ("d_function", "fixed")],
            422,
            "dask",
        ),
        (vec![("certificate", vec![b'x'; 70 * 1024]), ("private_key", key.clone())], fixed.to_vec(), 413, "1012"),
    ];
    for (files, fields, status, named) in refusals {
        let answer = owner.post_multipart("/console/fairplay", fairplay_form(&csrf, &files, &fields)).await;
        assert_eq!(answer.status, status, "{named}: {}", answer.body);
        assert!(answer.body.contains(named), "{named}: {}", answer.body);
    }
    let forged = owner
        .post_multipart(
            "/console/fairplay",
            fairplay_form("wrong", &[("certificate", cert.clone()), ("private_key", key.clone())], &fixed),
        )
        .await;
    assert_eq!((forged.status, forged.code.as_deref()), (403, Some("2021")));
    let listed: Value = app.get("/api/v1/fairplay/credentials", &tenant.api_key).await.json().await.unwrap();
    assert_eq!(listed, json!([]));

    // The development credentials: stored, described in plain words, served to players, no secret on the page.
    let uploaded = owner
        .post_multipart(
            "/console/fairplay",
            fairplay_form(&csrf, &[("certificate", cert.clone()), ("private_key", key.clone())], &fixed),
        )
        .await;
    assert_eq!(uploaded.status, 200, "{}", uploaded.body);
    assert!(uploaded.body.contains(&format!("SHA-1 {DEV_CERT_SHA1}")), "{}", uploaded.body);
    assert!(
        uploaded.body.contains("the private key matches the certificate (1024-bit RSA, so players send SPC version 1)")
    );
    assert!(uploaded.body.contains("the ASk is 16 bytes; D function: a fixed DASk"));
    let key_text = String::from_utf8(key.clone()).unwrap();
    let key_body = key_text.lines().nth(1).unwrap();
    for secret in [FAIRPLAY_ASK, FAIRPLAY_DASK, "PRIVATE KEY", key_body] {
        assert!(!uploaded.body.contains(secret), "{secret} is not shown");
    }
    let listed: Value = app.get("/api/v1/fairplay/credentials", &tenant.api_key).await.json().await.unwrap();
    assert_eq!((listed[0]["sha1"].as_str(), listed[0]["d_function"].as_str()), (Some(DEV_CERT_SHA1), Some("fixed")));
    // The expiry date in words: Apple's development certificate has expired, and the page says so with its date.
    let not_after: chrono::DateTime<chrono::Utc> = listed[0]["not_after"].as_str().unwrap().parse().unwrap();
    let expiry = format!(
        "{} {}",
        if not_after < chrono::Utc::now() { "The certificate expired on" } else { "The certificate is valid until" },
        not_after.format("%Y-%m-%d %H:%M UTC")
    );
    assert!(uploaded.body.contains(&expiry), "{expiry}: {}", uploaded.body);

    // A password-protected key (PKCS#8, PBES2): refused without its password or with a wrong one, naming the
    // password field; accepted with it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dev.pem"), &key).unwrap();
    let status = std::process::Command::new("openssl")
        .args(["pkcs8", "-topk8", "-in", "dev.pem", "-out", "enc.pem", "-v2", "aes-256-cbc", "-passout", "pass:s3cret"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let encrypted = std::fs::read(dir.path().join("enc.pem")).unwrap();
    let files = [("certificate", cert.clone()), ("private_key", encrypted)];
    for password in ["", "wrong"] {
        let mut fields = fixed.to_vec();
        fields.push(("private_key_password", password));
        let answer = owner.post_multipart("/console/fairplay", fairplay_form(&csrf, &files, &fields)).await;
        assert_eq!(answer.status, 422, "{password:?}: {}", answer.body);
        assert!(answer.body.contains("(5015): private_key_password"), "{}", answer.body);
    }
    let mut fields = fixed.to_vec();
    fields.push(("private_key_password", "s3cret"));
    let opened = owner.post_multipart("/console/fairplay", fairplay_form(&csrf, &files, &fields)).await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    assert!(opened.body.contains("the private key matches the certificate"), "{}", opened.body);
    assert!(!opened.body.contains("s3cret"), "the password is not shown");
    let served =
        app.http.get(app.url(&format!("/license/fairplay/certificate/{}", tenant.site_id))).send().await.unwrap();
    assert_eq!(served.bytes().await.unwrap().as_ref(), cert.as_slice(), "players get the uploaded certificate");
    // A PEM certificate file is read as well (the same certificate: replaced, not added).
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &cert)
    );
    let replaced = owner
        .post_multipart(
            "/console/fairplay",
            fairplay_form(
                &csrf,
                &[("certificate", pem.into_bytes()), ("private_key", key.clone())],
                &[("ask", FAIRPLAY_ASK)],
            ),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    let listed: Value = app.get("/api/v1/fairplay/credentials", &tenant.api_key).await.json().await.unwrap();
    assert_eq!((listed.as_array().unwrap().len(), listed[0]["d_function"].as_str()), (1, Some("apple-sample")));

    // Another tenant neither sees nor deletes it; a viewer cannot upload; the owner deletes it.
    let other_email = signed_up(&app, "Other FairPlay Films").await;
    let mut other = signed_in(&app, &other_email).await;
    assert!(other.get("/console/fairplay").await.body.contains("id=\"no-credentials\""));
    let theirs = other.submit("/console/fairplay", &format!("/console/fairplay/{DEV_CERT_SHA1}/delete"), &[]).await;
    assert_eq!((theirs.status, theirs.code.as_deref()), (404, Some("5014")));
    let mut viewer = invited(&app, &mut owner, "viewer").await;
    let viewer_csrf = crate::console::csrf_of(&viewer.get("/console/fairplay").await.body);
    let refused = viewer
        .post_multipart(
            "/console/fairplay",
            fairplay_form(&viewer_csrf, &[("certificate", cert.clone()), ("private_key", key.clone())], &fixed),
        )
        .await;
    assert_eq!((refused.status, refused.code.as_deref()), (403, Some("2026")));
    let deleted = owner.submit("/console/fairplay", &format!("/console/fairplay/{DEV_CERT_SHA1}/delete"), &[]).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let listed: Value = app.get("/api/v1/fairplay/credentials", &tenant.api_key).await.json().await.unwrap();
    assert_eq!(listed, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_uploads_the_fairplay_development_credentials() {
    let app = TestApp::spawn().await;
    let (email, tenant) = console_tenant(&app, "Browser FairPlay Films").await;
    let (cert_path, key_path) = fairplay_dev_credentials();
    let driver = ChromeDriver::start();
    let client = driver.browser().await;
    client.set_window_size(1100, 1400).await.unwrap();
    let mut shots = Shots::in_folder("console-fairplay");
    browser_signed_in(&app, &client, &email).await;
    click(&client, "nav[aria-label=Console] a[href='/console/fairplay']").await;
    heading_becomes(&client, "FairPlay credentials").await;
    shots.take(&client, "fairplay-empty").await;
    let file = |id: &'static str| client.find(Locator::Id(id));
    file("certificate").await.unwrap().send_keys(cert_path.to_str().unwrap()).await.unwrap();
    file("private_key").await.unwrap().send_keys(key_path.to_str().unwrap()).await.unwrap();
    fill(&client, "ask", FAIRPLAY_ASK).await;
    client.find(Locator::Css("#d_function option[value='fixed']")).await.unwrap().click().await.unwrap();
    fill(&client, "dask", FAIRPLAY_DASK).await;
    click(&client, "form[action='/console/fairplay'] button[type=submit]").await;
    let outcome = text_becomes(&client, "fairplay-outcome", "Uploaded").await;
    assert!(outcome.contains(DEV_CERT_SHA1) && outcome.contains("matches the certificate"), "{outcome}");
    shots.take(&client, "fairplay-uploaded").await;
    let listed: Value = app.get("/api/v1/fairplay/credentials", &tenant.api_key).await.json().await.unwrap();
    assert_eq!(listed[0]["sha1"], DEV_CERT_SHA1);
    client.close().await.unwrap();
}

#[tokio::test]
async fn the_dashboard_and_the_log_search_show_this_tenants_requests_and_each_ones_story() {
    let app = TestApp::spawn().await;
    let (email, tenant) = console_tenant(&app, "Dashboard Films").await;
    let other = app.create_tenant("Noisy Neighbour Films").await;
    let mut denied_hd = String::new();
    for (who, user, issued, denied) in [(&tenant, "viewer-1", 3, 2), (&other, "viewer-1", 0, 4)] {
        let keys = app.create_keys(who, json!({"content_id": "movie", "tracks": ["SD", "HD"]})).await;
        let (sd, hd) =
            (keys["keys"][0]["kid"].as_str().unwrap().to_owned(), keys["keys"][1]["kid"].as_str().unwrap().to_owned());
        let token = app
            .mint_token(who, json!({"user_id": user, "content_id": "movie", "policy": {"allowed_tracks": ["SD"]}}))
            .await;
        for _ in 0..issued {
            assert_eq!(app.clearkey(&token, &[&sd]).await.status(), 200);
        }
        for _ in 0..denied {
            assert_eq!(app.clearkey(&token, &[&hd]).await.status(), 403);
        }
        if std::ptr::eq(who, &tenant) {
            denied_hd = hd;
        }
    }
    app.flush_log().await;
    let mut owner = signed_in(&app, &email).await;

    let dashboard = owner.get("/console").await;
    assert_eq!(dashboard.status, 200, "{}", dashboard.body);
    assert!(dashboard.body.contains("3 licenses issued and 2 denied in the last 24 hours"), "{}", dashboard.body);
    assert_eq!(dashboard.body.matches("<rect class=\"issued\"").count(), 24, "one bar per hour");
    assert!(dashboard.body.contains("<svg id=\"license-chart\" role=\"img\""));
    assert_eq!(cell(&dashboard.body, "drm-clearkey", "issued"), "3");
    assert_eq!(cell(&dashboard.body, "drm-clearkey", "denied"), "2");
    assert_eq!(cell(&dashboard.body, "by-code-5006", "count"), "2", "the neighbour's four refusals are not ours");
    let week = owner.get("/console?range=7d").await;
    assert!(week.body.contains("3 licenses issued and 2 denied in the last 7 days"));
    assert_eq!(week.body.matches("<rect class=\"issued\"").count(), 28);

    // The log search: by outcome, user, content and time; a bad time names its field.
    let denied = owner.get("/console/logs?outcome=denied").await;
    assert_eq!(denied.status, 200, "{}", denied.body);
    assert_eq!(denied.body.matches("<td class=\"outcome\">denied</td>").count(), 2, "{}", denied.body);
    assert_eq!(denied.body.matches("<tr id=\"log-").count(), 2);
    let by_user = owner.get("/console/logs?user=viewer-1&content=movie").await;
    assert_eq!(by_user.body.matches("<tr id=\"log-").count(), 5);
    assert!(owner.get("/console/logs?content=another-movie").await.body.contains("id=\"no-rows\""));
    assert!(owner.get("/console/logs?from=2999-01-01T00:00").await.body.contains("id=\"no-rows\""));
    assert_eq!(owner.get("/console/logs?to=2999-01-01T00:00").await.body.matches("<tr id=\"log-").count(), 5);
    let bad = owner.get("/console/logs?from=yesterday").await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("id=\"search-error\"") && bad.body.contains("from"), "{}", bad.body);

    // A refused request's story: the rule, the code, the catalog's advice, the KIDs asked for.
    let first = denied.body.split("<tr id=\"log-").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let story = owner.get(&format!("/console/logs/{first}")).await;
    assert_eq!(story.status, 200, "{}", story.body);
    assert!(story.body.contains("id=\"refusal\""));
    assert!(story.body.contains("<code id=\"rule\">policy.allowed_tracks</code>"), "{}", story.body);
    assert!(story.body.contains("5006"));
    assert!(story.body.contains(&format!("<code>{denied_hd}</code>")));
    let remedy = clavis_core::ErrorCode::TrackNotAllowed
        .remedy()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;");
    assert!(story.body.contains(&remedy), "{remedy} in {}", story.body);

    // The neighbour's rows are not found from this account, and their ids are not ours to open.
    let theirs: Vec<Value> = app.license_log(&other).await;
    let their_id = theirs[0]["id"].as_i64().unwrap();
    let opened = owner.get(&format!("/console/logs/{their_id}")).await;
    assert_eq!(opened.status, 404);
    assert!(!owner.get("/console/logs").await.body.contains(&format!("id=\"log-{their_id}\"")));

    // Paging: 50 rows a page, the next page continues where the first stopped.
    let token = app.token_for(&tenant, "pager", "movie").await;
    let sd = app.get("/api/v1/contents/movie", &tenant.api_key).await.json::<Value>().await.unwrap()["keys"][0]["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..52 {
        assert_eq!(app.clearkey(&token, &[&sd]).await.status(), 200);
    }
    app.flush_log().await;
    let page_one = owner.get("/console/logs?user=pager").await;
    assert_eq!(page_one.body.matches("<tr id=\"log-").count(), 50);
    let next = page_one
        .body
        .split("id=\"next-page\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&#38;", "&");
    let page_two = owner.get(&next).await;
    assert_eq!(page_two.body.matches("<tr id=\"log-").count(), 2, "{next}");
    assert!(!page_two.body.contains("id=\"next-page\""));
}

/// The multipart form of the signer upload.
fn signer_form(csrf: &str, fields: &[(&str, &str)], pem: Option<Vec<u8>>) -> reqwest::multipart::Form {
    let mut form = reqwest::multipart::Form::new().text("csrf", csrf.to_owned());
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    if let Some(pem) = pem {
        form = form.part("rsa_public_key", reqwest::multipart::Part::bytes(pem).file_name("signer.pem"));
    }
    form
}

#[tokio::test]
async fn the_drm_page_sets_signers_the_key_seed_and_both_upstreams_without_showing_secrets() {
    let app = TestApp::spawn().await;
    let (email, tenant) = console_tenant(&app, "DRM Films").await;
    let mut owner = signed_in(&app, &email).await;
    let page = owner.get("/console/drm").await;
    assert_eq!(page.status, 200, "{}", page.body);
    for empty in ["no-signers", "no-widevine", "no-seed", "no-playready"] {
        assert!(page.body.contains(&format!("id=\"{empty}\"")), "{empty}");
    }
    let csrf = crate::console::csrf_of(&page.body);

    // An AES signer (the public widevine_test key), then an RSA one from a .pem file.
    let vector = crate::kit::read_vector_json("widevine/aes_signature_vector.json");
    let (key, iv) = (vector["aes_key_hex"].as_str().unwrap(), vector["aes_iv_hex"].as_str().unwrap());
    let saved = owner
        .post_multipart(
            "/console/drm",
            signer_form(&csrf, &[("name", "packager"), ("aes_key", key), ("aes_iv", iv)], None),
        )
        .await;
    assert_eq!(saved.status, 404, "the form posts to /console/drm/signers");
    let saved = owner
        .post_multipart(
            "/console/drm/signers",
            signer_form(&csrf, &[("name", "packager"), ("aes_key", key), ("aes_iv", iv)], None),
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(
        saved.body.contains("Signer packager saved") && saved.body.contains("an AES-256 key and IV"),
        "{}",
        saved.body
    );
    assert!(!saved.body.contains(key) && !saved.body.contains(iv), "the key is never shown");
    let private =
        crate::kit::vectors_dir().join("widevine/shaka-packager-3.4.2-capture/rsa_test_key_GENERATED_BY_US.pem");
    let public =
        std::process::Command::new("openssl").args(["rsa", "-pubout", "-in"]).arg(&private).output().expect("openssl");
    assert!(public.status.success());
    let rsa = owner
        .post_multipart("/console/drm/signers", signer_form(&csrf, &[("name", "rsa-packager")], Some(public.stdout)))
        .await;
    assert_eq!(rsa.status, 200, "{}", rsa.body);
    assert!(rsa.body.contains("an RSA 2048-bit public key"), "{}", rsa.body);
    let signers: Value = app.get("/api/v1/widevine/signers", &tenant.api_key).await.json().await.unwrap();
    assert_eq!(signers.as_array().unwrap().len(), 2);
    // Refusals say what is wrong, with the API's code and status.
    let bad = owner
        .post_multipart(
            "/console/drm/signers",
            signer_form(&csrf, &[("name", "x"), ("aes_key", "12"), ("aes_iv", iv)], None),
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("Not saved") && bad.body.contains("aes_key"), "{}", bad.body);
    let other_email = signed_up(&app, "Rival Films").await;
    let mut rival = signed_in(&app, &other_email).await;
    let rival_page = rival.get("/console/drm").await;
    assert!(!rival_page.body.contains("id=\"signer-packager\""), "another tenant sees none of them");
    let taken = rival
        .post_multipart(
            "/console/drm/signers",
            signer_form(
                &crate::console::csrf_of(&rival_page.body),
                &[("name", "packager"), ("aes_key", key), ("aes_iv", iv)],
                None,
            ),
        )
        .await;
    assert_eq!(taken.status, 409, "a name belongs to one tenant");

    // The key seed: generated and shown once, then only its fingerprint.
    let generated = owner.submit("/console/drm", "/console/drm/key-seed", &[("action", "generate")]).await;
    assert_eq!(generated.status, 200, "{}", generated.body);
    let shown = generated.body.split("id=\"generated-seed\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    assert!(base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &shown).unwrap().len() >= 30);
    let later = owner.get("/console/drm").await;
    assert!(!later.body.contains(&shown) && later.body.contains("id=\"seed-summary\""), "shown once only");
    let set = owner
        .submit(
            "/console/drm",
            "/console/drm/key-seed",
            &[("action", "set"), ("key_seed", "XVBovsmzhP9gRIZxWfFta3VVRPzVEWmJsazEJ46I")],
        )
        .await;
    assert!(set.body.contains("Key seed saved. A 30-byte key seed"), "{}", set.body);
    let short = owner.submit("/console/drm", "/console/drm/key-seed", &[("action", "set"), ("key_seed", "AAAA")]).await;
    assert_eq!(short.status, 422);

    // Both upstreams; their secrets stay out of the page.
    let widevine = owner
        .submit(
            "/console/drm",
            "/console/drm/widevine",
            &[
                ("license_url", "https://license.example.com/cenc/getlicense/acme"),
                ("provider", "acme"),
                ("signing_key", key),
                ("signing_iv", iv),
                ("timeout_ms", "2500"),
                ("retries", "2"),
            ],
        )
        .await;
    assert_eq!(widevine.status, 200, "{}", widevine.body);
    assert!(widevine.body.contains("Widevine proxy saved") && !widevine.body.contains(key), "{}", widevine.body);
    let view: Value = app.get("/api/v1/integrations/widevine", &tenant.api_key).await.json().await.unwrap();
    assert_eq!((view["provider"].as_str(), view["timeout_ms"].as_u64()), (Some("acme"), Some(2500)));
    let playready = owner
        .submit(
            "/console/drm",
            "/console/drm/playready",
            &[
                ("license_url", "https://playready.example.com/rightsmanager.asmx"),
                ("authorization_action", "set"),
                ("authorization", "Bearer sesame"),
            ],
        )
        .await;
    assert_eq!(playready.status, 200, "{}", playready.body);
    assert!(playready.body.contains("with your Authorization value") && !playready.body.contains("sesame"));
    let private_target = owner
        .submit(
            "/console/drm",
            "/console/drm/playready",
            &[("license_url", "https://10.0.0.7/pr"), ("authorization_action", "keep")],
        )
        .await;
    assert_eq!(private_target.status, 422);
    assert!(private_target.body.contains("5072"), "{}", private_target.body);

    // A forged form changes nothing; deleting turns them off.
    let forged = owner.post("/console/drm/widevine/delete", &[("csrf", "wrong")]).await;
    assert_eq!((forged.status, forged.code.as_deref()), (403, Some("2021")));
    for (action, gone) in [
        ("/console/drm/widevine/delete", "no-widevine"),
        ("/console/drm/playready/delete", "no-playready"),
        ("/console/drm/key-seed/delete", "no-seed"),
        ("/console/drm/signers/packager/delete", "signer-rsa-packager"),
    ] {
        let answer = owner.submit("/console/drm", action, &[]).await;
        assert_eq!(answer.status, 200, "{action}: {}", answer.body);
        assert!(answer.body.contains(&format!("id=\"{gone}\"")), "{action}");
    }
    assert_eq!(app.get("/api/v1/integrations/widevine", &tenant.api_key).await.status(), 404);
}
