//! The console's working pages (token inspector, policy editors, ...), in headless Chromium and over plain HTTP.
//! Screenshots go to `target/test-screenshots/console-pages/`.

use clavis::ServiceSet;
use fantoccini::Locator;
use serde_json::{Value, json};

use crate::browser::ChromeDriver;
use crate::console::{
    PASSWORD, Shots, Visitor, click, create_key, fill, heading_becomes, signed_in, signed_up, wait_for_path,
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
    client.wait().for_element(Locator::Id(id)).await.unwrap().text().await.unwrap()
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
    let verdict = text_of(&client, "verdict").await;
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
