//! Two provider instances on one PostgreSQL and one Redis, as behind a load balancer with no
//! sticky sessions: whatever one instance does, the other sees at once.

use super::sign_in;
use crate::harness::{ALICE, Browser, Options, Stack, param, spawn_with};
use infra::testing::TestPostgres;
use sessions::testing::TestRedis;
use std::time::Duration;

/// A stack on PostgreSQL + Redis with a second provider instance, or `None` (skipped).
async fn two_instances() -> Option<(Stack, usize)> {
    let postgres = TestPostgres::create("two provider instances (PostgreSQL)").await?;
    let redis = TestRedis::create("two provider instances (Redis)")?;
    let options = Options {
        postgres: Some(postgres),
        redis_sessions: Some(redis),
        ..Options::default()
    };
    let mut stack = spawn_with(options).await;
    let second = stack.start_instance().await;
    Some((stack, second))
}

/// `prompt=none` for App B sent to `base` (an instance): the code or the error, and the PKCE
/// verifier.
async fn authorize_at(
    stack: &Stack,
    browser: &Browser,
    base: &str,
) -> (Option<String>, Option<String>, String) {
    let req = stack.authorize_url(
        &stack.app_b.client_id,
        &stack.app_b.redirect_uri,
        &[("prompt", "none")],
    );
    let url = req.url.as_str().replacen(&stack.issuer, base, 1);
    let page = browser.get_once(&url).await;
    let location = page.hops[0]
        .location
        .clone()
        .unwrap_or_else(|| panic!("{}: {}", page.status, page.body));
    (
        param(&location, "code"),
        param(&location, "error"),
        req.verifier,
    )
}

async fn post_token(stack: &Stack, base: &str, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let client = client_app::http::client_builder().build().unwrap();
    let resp = client
        .post(format!("{base}/token"))
        .basic_auth(&stack.app_b.client_id, Some(&stack.app_b.secret))
        .form(form)
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(serde_json::Value::Null),
    )
}

async fn redeem_at(
    stack: &Stack,
    base: &str,
    code: &str,
    verifier: &str,
) -> (u16, serde_json::Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", stack.app_b.redirect_uri.as_str()),
        ("code_verifier", verifier),
    ];
    post_token(stack, base, &form).await
}

#[tokio::test]
async fn one_session_and_one_code_across_instances() {
    let Some((stack, second)) = two_instances().await else {
        return;
    };
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_b, ALICE).await; // through instance 1
    let (code, error, verifier) = authorize_at(&stack, &browser, stack.instance_url(second)).await;
    assert_eq!(
        error, None,
        "instance 2 knows the session instance 1 created: no login prompt"
    );
    let code = code.unwrap();
    let (status, tokens) = redeem_at(&stack, &stack.issuer, &code, &verifier).await;
    assert_eq!(
        status, 200,
        "a code issued by instance 2 redeemed at instance 1: {tokens}"
    );
    let id = crate::harness::jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(id["iss"], stack.issuer, "one issuer");
    assert_eq!(
        redeem_at(&stack, stack.instance_url(second), &code, &verifier)
            .await
            .0,
        400,
        "replay seen at instance 2"
    );
}

#[tokio::test]
async fn logout_at_one_instance_is_logout_at_the_other_at_once() {
    let Some((stack, second)) = two_instances().await else {
        return;
    };
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_a, ALICE).await;
    sign_in(&stack, &browser, &stack.app_b, ALICE).await;
    crate::flows::sign_out_everywhere(&stack, &browser).await; // at instance 1
    let (_, error, _) = authorize_at(&stack, &browser, stack.instance_url(second)).await;
    assert_eq!(
        error.as_deref(),
        Some("login_required"),
        "dead at instance 2 at once"
    );
    super::signed_out(&browser, &stack.app_a, "App A was told").await;
}

#[tokio::test]
async fn a_refresh_token_replayed_at_the_other_instance_is_detected() {
    let Some((stack, second)) = two_instances().await else {
        return;
    };
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_b, ALICE).await;
    let (code, _, verifier) = authorize_at(&stack, &browser, &stack.issuer).await;
    let (_, tokens) = redeem_at(&stack, &stack.issuer, &code.unwrap(), &verifier).await;
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let first = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
    ];
    let (status, rotated) = post_token(&stack, &stack.issuer, &first).await;
    assert_eq!(status, 200, "rotated at instance 1: {rotated}");
    stack.clock.advance(Duration::from_secs(6));
    let (status, body) = post_token(&stack, stack.instance_url(second), &first).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "replay at instance 2 detected"
    );
    let newest = rotated["refresh_token"].as_str().unwrap();
    let again = [("grant_type", "refresh_token"), ("refresh_token", newest)];
    assert_eq!(
        post_token(&stack, &stack.issuer, &again).await.0,
        400,
        "the whole family revoked"
    );
}

#[tokio::test]
async fn both_instances_restarted_lose_nothing() {
    let Some((mut stack, second)) = two_instances().await else {
        return;
    };
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_b, ALICE).await;
    let (code, _, verifier) = authorize_at(&stack, &browser, stack.instance_url(second)).await;
    stack.restart_provider().await;
    stack.restart_instance(second).await;
    let (status, _) = redeem_at(
        &stack,
        stack.instance_url(second),
        &code.unwrap(),
        &verifier,
    )
    .await;
    assert_eq!(status, 200, "the code outlived both restarts");
    for base in [stack.issuer.clone(), stack.instance_url(second).to_owned()] {
        let (code, error, _) = authorize_at(&stack, &browser, &base).await;
        assert!(
            code.is_some() && error.is_none(),
            "the session outlived both restarts ({base})"
        );
    }
}

#[tokio::test]
async fn one_instance_at_a_time_does_the_maintenance() {
    let dir = tempfile::tempdir().unwrap();
    let clock = infra::Clock::system();
    let config = provider::Config {
        database_url: format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display()),
        ..provider::Config::default()
    };
    let one = provider::App::new(config.clone(), clock.clone())
        .await
        .unwrap();
    let two = provider::App::new(config, clock.clone()).await.unwrap();
    let store = one.ctx().store.clone();
    let (one, two) = (one.maintenance(), two.maintenance());
    let algs = provider::Config::default().keys.algorithms.len();
    assert_eq!(store.signing_keys().await.unwrap().len(), algs);
    // Rotation is due; both instances run their maintenance at the same moment.
    clock.advance(Duration::from_secs(91 * 24 * 3600));
    let (a, b) = tokio::join!(one.run_once(), two.run_once());
    assert!(a ^ b, "exactly one instance holds the lease ({a}, {b})");
    assert_eq!(
        store.signing_keys().await.unwrap().len(),
        2 * algs,
        "one new key per algorithm, not two"
    );
    // The holder keeps it while it renews; once it stops, the other takes over.
    let (holder, other) = if a { (one, two) } else { (two, one) };
    assert!(holder.run_once().await);
    assert!(!other.run_once().await);
    clock.advance(Duration::from_secs(181));
    assert!(other.run_once().await, "an expired lease passes on");
}

#[tokio::test]
async fn two_instances_may_start_at_once_on_an_empty_database() {
    let Some(db) = TestPostgres::create("two instances starting at once (PostgreSQL)").await else {
        return;
    };
    let clock = infra::Clock::system();
    let config = provider::Config {
        database_url: db.url.clone(),
        ..provider::Config::default()
    };
    let (one, two) = tokio::join!(
        provider::App::new(config.clone(), clock.clone()),
        provider::App::new(config, clock)
    );
    let (one, two) = (one.unwrap(), two.unwrap());
    assert_eq!(
        one.ctx().store.signing_keys().await.unwrap().len(),
        provider::Config::default().keys.algorithms.len(),
        "one set of first keys, migrations run once"
    );
    assert_eq!(
        one.ctx().keys.current().jwks_json(),
        two.ctx().keys.current().jwks_json(),
        "the same JWKS from both"
    );
}
