//! "Your sessions" at the provider: listing, revoking one, signing out everywhere (CSRF
//! protected, effective at once), and SSO sessions that survive a provider restart.

use super::{me, prompt_none_error, sign_in};
use crate::harness::{ALICE, BOB, Browser, Options, Page, Stack, spawn, spawn_with};

const PAGE: &str = "/account/sessions";

/// Alice on two devices: the first signed in at both apps, the second at App B only.
async fn alice_twice(stack: &Stack) -> (Browser, Browser, String) {
    let first = Browser::new();
    sign_in(stack, &first, &stack.app_a, ALICE).await;
    sign_in(stack, &first, &stack.app_b, ALICE).await;
    let second = Browser::new();
    sign_in(stack, &second, &stack.app_b, ALICE).await;
    let second_sid = me(&second, &stack.app_b).await.1["provider_sid"]
        .as_str()
        .unwrap()
        .to_owned();
    (first, second, second_sid)
}

async fn sessions_page(stack: &Stack, browser: &Browser) -> Page {
    browser.follow(&format!("{}{PAGE}", stack.issuer)).await
}

#[tokio::test]
async fn lists_each_session_with_its_apps() {
    let stack = spawn().await;
    let (first, _, second_sid) = alice_twice(&stack).await;
    let page = sessions_page(&stack, &first).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.headers["cache-control"], "no-store");
    assert_eq!(
        page.body.matches("<tr").count() - 1,
        2,
        "two sessions: {}",
        page.body
    );
    assert_eq!(page.body.matches("this device").count(), 1);
    assert!(
        page.body.contains("App A, App B"),
        "the apps of the first session: {}",
        page.body
    );
    assert!(page.body.contains(&second_sid));
    assert!(page.body.contains("127.0.0.1"), "the address");
    assert!(page.body.contains("gatehouse-e2e/1.0"), "the device");
}

#[tokio::test]
async fn revoking_one_session_takes_effect_at_once() {
    let stack = spawn().await;
    let (first, second, second_sid) = alice_twice(&stack).await;
    let page = sessions_page(&stack, &first).await;
    let after = first
        .submit(&page, "/account/sessions/revoke", &[("sid", &second_sid)])
        .await;
    assert_eq!(after.status, 200);
    assert!(
        after.body.contains("The session was signed out."),
        "{}",
        after.body
    );
    let sessions_table = after.body.split("id=\"deliveries\"").next().unwrap();
    assert!(
        !sessions_table.contains(&second_sid),
        "no longer listed as a session"
    );
    assert_eq!(
        prompt_none_error(&stack, &second).await.as_deref(),
        Some("login_required")
    );
    assert_eq!(
        prompt_none_error(&stack, &first).await,
        None,
        "the other session lives on"
    );
}

#[tokio::test]
async fn revoke_forms_need_this_sessions_csrf_token() {
    let stack = spawn().await;
    let (first, second, second_sid) = alice_twice(&stack).await;
    let url = format!("{}/account/sessions/revoke", stack.issuer);
    let missing = first.post_form(&url, &[("sid", &second_sid)]).await;
    assert_eq!(missing.status, 403);
    let theirs = sessions_page(&stack, &second)
        .await
        .hidden("csrf_token")
        .unwrap();
    let foreign = first
        .post_form(&url, &[("csrf_token", &theirs), ("sid", &second_sid)])
        .await;
    assert_eq!(foreign.status, 403, "another session's token");
    let all = first
        .post_form(
            &format!("{}/account/sessions/revoke-all", stack.issuer),
            &[],
        )
        .await;
    assert_eq!(all.status, 403);
    assert_eq!(
        prompt_none_error(&stack, &second).await,
        None,
        "nothing changed"
    );
    assert_eq!(prompt_none_error(&stack, &first).await, None);
}

#[tokio::test]
async fn nobody_revokes_another_users_session() {
    let stack = spawn().await;
    let (_, alice, alice_sid) = alice_twice(&stack).await;
    let bob = Browser::new();
    sign_in(&stack, &bob, &stack.app_b, BOB).await;
    let page = sessions_page(&stack, &bob).await;
    let after = bob
        .submit(&page, "/account/sessions/revoke", &[("sid", &alice_sid)])
        .await;
    assert!(after.body.contains("already ended"), "{}", after.body);
    assert_eq!(
        prompt_none_error(&stack, &alice).await,
        None,
        "alice is still signed in"
    );
}

#[tokio::test]
async fn sign_out_everywhere_ends_every_session() {
    let stack = spawn().await;
    let (first, second, _) = alice_twice(&stack).await;
    let bob = Browser::new();
    sign_in(&stack, &bob, &stack.app_b, BOB).await;
    let page = sessions_page(&stack, &first).await;
    let done = first
        .submit(&page, "/account/sessions/revoke-all", &[])
        .await;
    assert_eq!(done.url.path(), "/");
    assert!(done.body.contains("not signed in"));
    let removal = done.hops[0]
        .set_cookies
        .iter()
        .find(|c| c.starts_with("gatehouse_sso="))
        .expect("cookie removed");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    assert_eq!(
        prompt_none_error(&stack, &first).await.as_deref(),
        Some("login_required")
    );
    assert_eq!(
        prompt_none_error(&stack, &second).await.as_deref(),
        Some("login_required")
    );
    assert_eq!(
        prompt_none_error(&stack, &bob).await,
        None,
        "other users untouched"
    );
}

#[tokio::test]
async fn revoking_this_device_signs_it_out() {
    let stack = spawn().await;
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_b, ALICE).await;
    let sid = me(&browser, &stack.app_b).await.1["provider_sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = sessions_page(&stack, &browser).await;
    let done = browser
        .submit(&page, "/account/sessions/revoke", &[("sid", &sid)])
        .await;
    assert!(done.body.contains("not signed in"));
    assert_eq!(
        prompt_none_error(&stack, &browser).await.as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn the_page_asks_for_sign_in_and_returns_there() {
    let stack = spawn().await;
    let browser = Browser::new();
    let page = sessions_page(&stack, &browser).await;
    assert_eq!(page.url.path(), "/login");
    let done = browser
        .submit(
            &page,
            "/login",
            &[("username", ALICE.0), ("password", ALICE.1)],
        )
        .await;
    assert_eq!(done.url.path(), PAGE);
    assert_eq!(done.status, 200);
    // `next` only ever names our own pages.
    let evil = browser
        .follow(&format!(
            "{}/login?next=https://evil.example/",
            stack.issuer
        ))
        .await;
    assert_eq!(evil.hidden("next").as_deref(), Some("/"));
}

async fn survives_restart(mut stack: Stack) {
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_b, ALICE).await;
    let sid = me(&browser, &stack.app_b).await.1["provider_sid"].clone();
    stack.restart_provider().await;
    assert_eq!(
        prompt_none_error(&stack, &browser).await,
        None,
        "the SSO session outlived the restart"
    );
    let page = sessions_page(&stack, &browser).await;
    assert!(page.body.contains(sid.as_str().unwrap()));
    // The apps keep working against the restarted provider.
    browser
        .submit(
            &browser.follow(&format!("{}/", stack.app_b.url)).await,
            "/logout",
            &[],
        )
        .await;
    let again = browser.follow(&format!("{}/login", stack.app_b.url)).await;
    assert_eq!(again.url.as_str(), format!("{}/", stack.app_b.url));
    assert_eq!(me(&browser, &stack.app_b).await.1["provider_sid"], sid);
}

#[tokio::test]
async fn sql_sessions_survive_a_provider_restart() {
    survives_restart(spawn().await).await;
}

#[tokio::test]
async fn redis_sessions_survive_a_provider_restart() {
    let Some(redis) = sessions::testing::TestRedis::create("provider sessions on Redis") else {
        return;
    };
    survives_restart(
        spawn_with(Options {
            redis_sessions: Some(redis),
            ..Options::default()
        })
        .await,
    )
    .await;
}

#[tokio::test]
async fn the_whole_flow_works_with_redis_sessions() {
    let Some(redis) = sessions::testing::TestRedis::create("provider sessions on Redis") else {
        return;
    };
    let stack = spawn_with(Options {
        redis_sessions: Some(redis),
        ..Options::default()
    })
    .await;
    let (first, second, second_sid) = alice_twice(&stack).await;
    let page = sessions_page(&stack, &first).await;
    assert_eq!(page.body.matches("<tr").count() - 1, 2);
    first
        .submit(&page, "/account/sessions/revoke", &[("sid", &second_sid)])
        .await;
    assert_eq!(
        prompt_none_error(&stack, &second).await.as_deref(),
        Some("login_required")
    );
    assert_eq!(prompt_none_error(&stack, &first).await, None);
}

#[tokio::test]
async fn connected_apps_lists_each_app_and_disconnect_signs_only_that_one_out() {
    let stack = spawn().await;
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_a, ALICE).await;
    sign_in(&stack, &browser, &stack.app_b, ALICE).await;
    let home = browser.follow(&format!("{}/", stack.issuer)).await;
    assert!(
        home.body.contains("href=\"/account/apps\""),
        "linked from the home page"
    );
    let page = browser
        .follow(&format!("{}/account/apps", stack.issuer))
        .await;
    assert_eq!(page.status, 200);
    for id in ["app-a", "app-b"] {
        assert!(
            page.body.contains(&format!("id=\"app-{id}\"")),
            "{}",
            page.body
        );
    }
    // Without the form's CSRF token: refused, nothing changes.
    let forged = browser
        .post_once(
            &format!("{}/account/apps/disconnect", stack.issuer),
            &[("client_id", "app-a")],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(me(&browser, &stack.app_a).await.0, 200);
    let done = browser
        .submit(&page, "/account/apps/disconnect", &[("client_id", "app-a")])
        .await;
    assert_eq!(done.url.path(), "/account/apps");
    assert!(
        done.body.contains("The app was disconnected."),
        "{}",
        done.body
    );
    assert!(!done.body.contains("id=\"app-app-a\""), "{}", done.body);
    // App A hears of it by back-channel logout and ends its session; App B and the SSO
    // session carry on.
    super::signed_out(&browser, &stack.app_a, "App A signed out").await;
    assert_eq!(me(&browser, &stack.app_b).await.0, 200);
    assert_eq!(prompt_none_error(&stack, &browser).await, None);
    // App A is third-party: its consent went with it, so it asks again.
    let again = browser.follow(&format!("{}/login", stack.app_a.url)).await;
    assert!(again.url.path().starts_with("/consent"), "{}", again.url);
}
