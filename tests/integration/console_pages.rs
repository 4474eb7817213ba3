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
