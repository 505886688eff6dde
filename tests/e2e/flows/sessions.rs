//! The provider's SSO session: a new id at login and at re-authentication, fixation defence,
//! idle and absolute expiry on the injected clock.

use super::{me, prompt_none_error, sign_in};
use crate::harness::{ALICE, BOB, Browser, param, spawn};
use std::time::Duration;

const COOKIE: &str = "gatehouse_sso";

#[tokio::test]
async fn the_pre_login_id_is_dead_after_login() {
    let stack = spawn().await;
    let browser = Browser::new();
    let page = browser.follow(&format!("{}/login", stack.app_b.url)).await;
    let pre = browser
        .cookie(&stack.issuer, COOKIE)
        .expect("pre-login session");
    browser
        .submit(
            &page,
            "/login",
            &[("username", ALICE.0), ("password", ALICE.1)],
        )
        .await;
    let post = browser.cookie(&stack.issuer, COOKIE).unwrap();
    assert_ne!(pre, post, "new session id at login");
    let attacker = Browser::new();
    attacker.plant_cookie(&stack.issuer, &format!("{COOKIE}={pre}"));
    assert_eq!(
        prompt_none_error(&stack, &attacker).await.as_deref(),
        Some("login_required")
    );
    assert_eq!(
        prompt_none_error(&stack, &browser).await,
        None,
        "the victim is signed in"
    );
}

#[tokio::test]
async fn an_attacker_chosen_id_is_never_adopted() {
    let stack = spawn().await;
    let browser = Browser::new();
    let chosen = "A".repeat(43);
    browser.plant_cookie(&stack.issuer, &format!("{COOKIE}={chosen}"));
    sign_in(&stack, &browser, &stack.app_b, ALICE).await;
    let got = browser.cookie(&stack.issuer, COOKIE).unwrap();
    assert_ne!(got, chosen);
    let attacker = Browser::new();
    attacker.plant_cookie(&stack.issuer, &format!("{COOKIE}={chosen}"));
    assert_eq!(
        prompt_none_error(&stack, &attacker).await.as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn idle_expiry_ends_the_sso_session() {
    let stack = spawn().await;
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_b, ALICE).await;
    stack.clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(
        prompt_none_error(&stack, &browser).await,
        None,
        "29 minutes idle: alive"
    );
    stack.clock.advance(Duration::from_secs(31 * 60));
    assert_eq!(
        prompt_none_error(&stack, &browser).await.as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn absolute_expiry_despite_constant_activity() {
    let stack = spawn().await;
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_b, ALICE).await;
    for _ in 0..(12 * 60 / 20 - 1) {
        stack.clock.advance(Duration::from_secs(20 * 60));
        assert_eq!(prompt_none_error(&stack, &browser).await, None);
    }
    stack.clock.advance(Duration::from_secs(20 * 60 + 1));
    assert_eq!(
        prompt_none_error(&stack, &browser).await.as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn prompt_login_and_max_age_reauthenticate_with_a_new_id() {
    let stack = spawn().await;
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_b, ALICE).await;
    let (_, first) = me(&browser, &stack.app_b).await;
    let before = browser.cookie(&stack.issuer, COOKIE).unwrap();
    for extra in [[("prompt", "login")], [("max_age", "60")]] {
        // Two minutes after the last authentication: older than max_age=60.
        stack.clock.advance(Duration::from_secs(120));
        let req = stack.authorize_url(&stack.app_b.client_id, &stack.app_b.redirect_uri, &extra);
        let page = browser.follow(req.url.as_str()).await;
        assert!(
            page.url.path().starts_with("/login"),
            "re-authentication asked: {}",
            page.url
        );
        let done = browser
            .submit(
                &page,
                "/login",
                &[("username", ALICE.0), ("password", ALICE.1)],
            )
            .await;
        let callback = done
            .hops
            .iter()
            .find(|h| h.url.path() == "/callback")
            .expect("back to the client");
        assert!(param(callback.url.as_str(), "code").is_some());
    }
    let after = browser.cookie(&stack.issuer, COOKIE).unwrap();
    assert_ne!(before, after, "re-authentication gives a new id");
    // Same user: the SSO session (sid) is the same one.
    let req = stack.authorize_url(
        &stack.app_b.client_id,
        &stack.app_b.redirect_uri,
        &[("prompt", "none")],
    );
    let page = browser.get_once(req.url.as_str()).await;
    let code = param(page.hops[0].location.as_deref().unwrap(), "code").unwrap();
    let (_, _, tokens) = stack
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &stack.app_b.redirect_uri),
                ("code_verifier", &req.verifier),
            ],
            Some((&stack.app_b.client_id, &stack.app_b.secret)),
        )
        .await;
    let claims = crate::harness::jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["sid"], first["provider_sid"]);
    assert!(
        claims["auth_time"].as_i64().unwrap() >= stack.clock.unix() - 5,
        "auth_time is the re-authentication"
    );
}

#[tokio::test]
async fn another_user_signing_in_gets_a_new_sso_session() {
    let stack = spawn().await;
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_b, ALICE).await;
    let (_, alice) = me(&browser, &stack.app_b).await;
    let req = stack.authorize_url(
        &stack.app_b.client_id,
        &stack.app_b.redirect_uri,
        &[("prompt", "login")],
    );
    let page = browser.follow(req.url.as_str()).await;
    browser
        .submit(&page, "/login", &[("username", BOB.0), ("password", BOB.1)])
        .await;
    browser
        .submit(
            &browser.follow(&format!("{}/", stack.app_b.url)).await,
            "/logout",
            &[],
        )
        .await;
    sign_in(&stack, &browser, &stack.app_b, BOB).await;
    let (_, bob) = me(&browser, &stack.app_b).await;
    assert_ne!(alice["sub"], bob["sub"]);
    assert_ne!(alice["provider_sid"], bob["provider_sid"]);
}

#[tokio::test]
async fn an_id_token_hint_for_someone_else_needs_a_new_login() {
    let stack = spawn().await;
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_b, ALICE).await;
    let (code, verifier) = {
        let req = stack.authorize_url(&stack.app_b.client_id, &stack.app_b.redirect_uri, &[]);
        let page = browser.get_once(req.url.as_str()).await;
        (
            param(page.hops[0].location.as_deref().unwrap(), "code").unwrap(),
            req.verifier,
        )
    };
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", stack.app_b.redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let (_, _, tokens) = stack
        .token(&form, Some((&stack.app_b.client_id, &stack.app_b.secret)))
        .await;
    let alice_hint = tokens["id_token"].as_str().unwrap().to_owned();
    // Alice's own hint: a code. Bob's browser with Alice's hint: login_required.
    assert!(
        param(
            &prompt_none_with_hint(&stack, &browser, alice_hint.clone()).await,
            "code"
        )
        .is_some()
    );
    let bob = Browser::new();
    sign_in(&stack, &bob, &stack.app_b, BOB).await;
    assert_eq!(
        param(
            &prompt_none_with_hint(&stack, &bob, alice_hint).await,
            "error"
        )
        .as_deref(),
        Some("login_required")
    );
    // A hint we did not sign: invalid_request.
    assert_eq!(
        param(
            &prompt_none_with_hint(&stack, &bob, "e30.e30.sig".into()).await,
            "error"
        )
        .as_deref(),
        Some("invalid_request")
    );
}

/// Where a `prompt=none` authorization for App B with `hint` as `id_token_hint` is sent.
async fn prompt_none_with_hint(
    stack: &crate::harness::Stack,
    browser: &Browser,
    hint: String,
) -> String {
    let req = stack.authorize_url(
        &stack.app_b.client_id,
        &stack.app_b.redirect_uri,
        &[("prompt", "none"), ("id_token_hint", hint.as_str())],
    );
    browser.get_once(req.url.as_str()).await.hops[0]
        .location
        .clone()
        .unwrap()
}
