//! The device authorization grant (RFC 8628) over HTTP: the `gatehouse-cli` sample (the
//! `oauth2` crate's device-flow client) signs in while a browser with a cookie jar answers at
//! `/device`; the endpoint's and the page's refusals.

use crate::harness::{ALICE, BOB, Browser, Options, PATIENCE, Stack, grants, spawn_with};
use provider::protocol::registration::{self, ClientMetadata, Registrant};
use provider::types::GrantType;
use serde_json::Value;
use tokio::sync::oneshot;

/// Polls once a second (the least), so the clients' waits stay short.
pub(super) fn quick_polls(c: &mut provider::Config) {
    c.tokens.device_poll_interval = std::time::Duration::from_secs(1);
}

async fn stack() -> Stack {
    spawn_with(Options {
        configure: Some(quick_polls),
        ..Options::default()
    })
    .await
}

/// Registers `id` as a public client of the device flow (with refresh tokens), named `name`.
pub(super) async fn register_device_client(stack: &Stack, id: &str, name: &str, first_party: bool) {
    let metadata = ClientMetadata {
        client_name: Some(name.into()),
        grant_types: grants(&[GrantType::DeviceCode, GrantType::RefreshToken]),
        token_endpoint_auth_method: Some("none".into()),
        ..ClientMetadata::default()
    };
    let who = Registrant {
        client_id: Some(id.into()),
        first_party,
        ..Registrant::default()
    };
    let valid = metadata.validate(&crate::harness::outbound()).unwrap();
    registration::register_or_replace(&stack.store, valid, &who, stack.clock.unix())
        .await
        .unwrap();
}

/// Runs `gatehouse-cli login` for `client_id` in a task; what it shows the person, and its
/// outcome.
fn cli_login(
    stack: &Stack,
    client_id: &str,
) -> (
    oneshot::Receiver<gatehouse_cli::Prompt>,
    tokio::task::JoinHandle<anyhow::Result<Value>>,
) {
    let (tx, rx) = oneshot::channel();
    let login = gatehouse_cli::Login {
        issuer: stack.issuer.parse().unwrap(),
        client_id: client_id.into(),
        scopes: vec!["openid".into(), "profile".into(), "email".into()],
    };
    let task = tokio::spawn(async move {
        let http = client_app::http::client_builder().build().unwrap();
        gatehouse_cli::login(&http, &login, |p| {
            let _ = tx.send(p.clone());
        })
        .await
    });
    (rx, task)
}

async fn outcome(task: tokio::task::JoinHandle<anyhow::Result<Value>>) -> anyhow::Result<Value> {
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("the CLI finishes")
        .unwrap()
}

/// Signs `browser` in through the page `page` (the sign-in form) as `who`.
async fn sign_in_on(
    browser: &Browser,
    page: &crate::harness::Page,
    (user, password): (&str, &str),
) -> crate::harness::Page {
    assert_eq!(page.url.path(), "/login", "{}", page.body);
    browser
        .submit(
            page,
            "/login",
            &[("username", user), ("password", password)],
        )
        .await
}

#[tokio::test]
async fn the_cli_signs_in_through_a_browser_that_confirms_its_code() {
    let stack = stack().await;
    register_device_client(&stack, "cli", "Gatehouse CLI", false).await;
    let (prompt, task) = cli_login(&stack, "cli");
    let prompt = prompt.await.unwrap();
    assert_eq!(prompt.verification_uri, format!("{}/device", stack.issuer));
    let direct = prompt.verification_uri_complete.clone().unwrap();

    // The link carries the code through the sign-in; the person still confirms it.
    let browser = Browser::new();
    let page = browser.follow(&direct).await;
    let page = sign_in_on(&browser, &page, ALICE).await;
    assert_eq!(page.url.path(), "/device", "{}", page.body);
    assert!(
        page.body
            .contains(&format!("value=\"{}\"", prompt.user_code)),
        "the code is filled in: {}",
        page.body
    );
    let confirm = browser
        .submit(&page, "/device", &[("user_code", &prompt.user_code)])
        .await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    for shown in [
        "Gatehouse CLI",
        prompt.user_code.as_str(),
        "See your email address",
        "Never enter a code that someone sent you",
    ] {
        assert!(confirm.body.contains(shown), "{shown}: {}", confirm.body);
    }
    let done = browser
        .submit(&confirm, "/device/decide", &[("decision", "allow")])
        .await;
    assert!(
        done.body.contains("Your device is signed in"),
        "{}",
        done.body
    );

    let claims = outcome(task).await.unwrap();
    let alice = stack
        .store
        .user_by_username(ALICE.0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claims["sub"], alice.id.as_str());
    assert_eq!(claims["preferred_username"], ALICE.0);
    // The approval was the consent: the app is among alice's connected apps.
    let apps = browser
        .follow(&format!("{}/account/apps", stack.issuer))
        .await;
    assert!(apps.body.contains("Gatehouse CLI"), "{}", apps.body);
    // The code is spent: typed again, it finds nothing.
    let again = browser
        .submit(&page, "/device", &[("user_code", &prompt.user_code)])
        .await;
    assert_eq!(again.status, 400);
    assert!(
        again.body.contains("That code is not valid"),
        "{}",
        again.body
    );
}

#[tokio::test]
async fn a_denied_device_hears_access_denied() {
    let stack = stack().await;
    register_device_client(&stack, "cli", "Gatehouse CLI", true).await;
    let (prompt, task) = cli_login(&stack, "cli");
    let prompt = prompt.await.unwrap();
    let browser = Browser::new();
    let page = browser.follow(&prompt.verification_uri).await;
    let page = sign_in_on(&browser, &page, BOB).await;
    assert_eq!(page.url.path(), "/device", "{}", page.body);
    let typed = prompt.user_code.to_lowercase().replace('-', "");
    let confirm = browser
        .submit(&page, "/device", &[("user_code", &typed)])
        .await;
    let done = browser
        .submit(&confirm, "/device/decide", &[("decision", "deny")])
        .await;
    assert!(
        done.body.contains("The device was not signed in"),
        "{}",
        done.body
    );
    let refused = outcome(task).await.unwrap_err().to_string();
    assert!(refused.contains("access_denied"), "{refused}");
}

#[tokio::test]
async fn the_endpoint_and_the_page_refuse_what_they_should() {
    let stack = stack().await;
    register_device_client(&stack, "cli", "Gatehouse CLI", true).await;
    let http = client_app::http::client_builder().build().unwrap();
    let endpoint = format!("{}/device_authorization", stack.issuer);
    let discovery = stack.discovery().await;
    assert_eq!(
        discovery["device_authorization_endpoint"],
        endpoint.as_str()
    );
    let supported = discovery["grant_types_supported"].as_array().unwrap();
    assert!(supported.contains(&Value::from(GrantType::DeviceCode.as_str())));

    let post = |form: Vec<(&'static str, &'static str)>| {
        let http = http.clone();
        let endpoint = endpoint.clone();
        async move {
            let resp = http.post(&endpoint).form(&form).send().await.unwrap();
            let status = resp.status();
            let no_store = resp.headers()["cache-control"] == "no-store";
            (status, no_store, resp.json::<Value>().await.unwrap())
        }
    };
    let (status, no_store, body) = post(vec![("client_id", "cli"), ("scope", "openid")]).await;
    assert_eq!(status, 200, "{body}");
    assert!(no_store);
    assert_eq!(body["interval"], 1);
    assert_eq!(body["expires_in"], 600);
    let device_code = body["device_code"].as_str().unwrap().to_owned();
    let (status, _, body) = post(vec![("client_id", "nobody")]).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // App A is a confidential code-flow client: it must authenticate, and may not use this.
    let (status, _, body) = post(vec![("client_id", "app-a")]).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    // Polling before any answer.
    let form = [
        ("grant_type", GrantType::DeviceCode.as_str()),
        ("device_code", device_code.as_str()),
        ("client_id", "cli"),
    ];
    let (status, headers, body) = stack.token(&form, None).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    assert_eq!(headers["cache-control"], "no-store");

    // The page: signed out, to the sign-in page; a hostile `next` leads home, never outward.
    let browser = Browser::new();
    let page = browser
        .get_once(&format!("{}/device?user_code=bcdf-ghjk", stack.issuer))
        .await;
    assert_eq!(page.status, 303);
    let location = page.hops[0].location.clone().unwrap();
    assert_eq!(location, "/login?next=%2Fdevice%3Fuser_code%3DBCDFGHJK");
    for hostile in [
        "https://evil.example/",
        "/device?user_code=BCDF-GHJK\"><script>",
        "//evil.example/device?user_code=BCDFGHJK",
        "/device?user_code=BCDFGHJK&next=https://evil.example",
    ] {
        let next: String = url::form_urlencoded::byte_serialize(hostile.as_bytes()).collect();
        let browser = Browser::new();
        let page = browser
            .follow(&format!("{}/login?next={next}", stack.issuer))
            .await;
        let after = sign_in_on(&browser, &page, ALICE).await;
        assert_eq!(
            after.url.as_str(),
            format!("{}/", stack.issuer),
            "{hostile}"
        );
    }

    // Signed in: no CSRF token, no look-up; a wrong code is said plainly.
    let page = browser.follow(&format!("{}/device", stack.issuer)).await;
    let page = sign_in_on(&browser, &page, ALICE).await;
    assert_eq!(page.url.path(), "/device");
    let forged = browser
        .post_form(
            &format!("{}/device", stack.issuer),
            &[("user_code", "BCDF-GHJK")],
        )
        .await;
    assert_eq!(forged.status, 403);
    let wrong = browser
        .submit(&page, "/device", &[("user_code", "BCDF-GHJK")])
        .await;
    assert_eq!(wrong.status, 400);
    assert!(
        wrong.body.contains("That code is not valid"),
        "{}",
        wrong.body
    );
    let hostile = browser
        .submit(
            &page,
            "/device",
            &[("user_code", "<script>alert(1)</script>")],
        )
        .await;
    assert_eq!(hostile.status, 400);
    assert!(!hostile.body.contains("<script>alert"), "{}", hostile.body);
    // A decision for a code never confirmed finds nothing either.
    let csrf = page.hidden("csrf_token").unwrap();
    let forged_answer = browser
        .post_form(
            &format!("{}/device/decide", stack.issuer),
            &[
                ("csrf_token", &csrf),
                ("user_code", "BCDFGHJK"),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(forged_answer.status, 400);
}
