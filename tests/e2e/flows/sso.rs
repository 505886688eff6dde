//! The single sign-on journey: a password at App A, none at App B, the same user.

use super::{me, sign_in};
use crate::harness::{ALICE, Browser, spawn};

#[tokio::test]
async fn sign_in_at_app_a_then_app_b_without_a_password() {
    let stack = spawn().await;
    let browser = Browser::new();

    let page = sign_in(&stack, &browser, &stack.app_a, ALICE).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.url.as_str(), format!("{}/", stack.app_a.url));
    assert!(
        page.visited(&format!("{}/login", stack.issuer)),
        "App A asked for the password"
    );
    assert!(
        page.visited(&format!("{}/consent", stack.issuer)),
        "App A is third-party: consent shown"
    );
    assert!(page.body.contains("Signed in"), "{}", page.body);
    let (status, a) = me(&browser, &stack.app_a).await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["name"], "Alice Liddell");
    assert_eq!(a["email"], "alice@example.com");

    // App B: straight through the provider, no login page, no consent (first-party).
    let page = browser.follow(&format!("{}/login", stack.app_b.url)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.url.as_str(), format!("{}/", stack.app_b.url));
    assert!(
        !page.visited(&format!("{}/login", stack.issuer)),
        "no password prompt: {:#?}",
        page.hops
    );
    assert!(
        !page.visited(&format!("{}/consent", stack.issuer)),
        "no consent prompt"
    );
    let (status, b) = me(&browser, &stack.app_b).await;
    assert_eq!(status, 200);
    assert_eq!(b["sub"], a["sub"], "the same user");
    assert_eq!(b["provider_sid"], a["provider_sid"], "the same SSO session");
    assert!(a["provider_sid"].as_str().is_some_and(|s| !s.is_empty()));

    // The hops: app → authorize → (302/303) → callback → app home.
    let hops: Vec<String> = page
        .hops
        .iter()
        .map(|h| format!("{} {}", h.status.as_u16(), h.url.path()))
        .collect();
    assert_eq!(
        hops,
        vec!["302 /login", "303 /authorize", "303 /callback", "200 /"],
        "{hops:?}"
    );
}

#[tokio::test]
async fn consent_is_remembered_and_local_logout_keeps_sso() {
    let stack = spawn().await;
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_a, ALICE).await;
    assert_eq!(me(&browser, &stack.app_a).await.0, 200);

    // Sign out of App A only (CSRF-protected form).
    let old_cookie = browser.cookie(&stack.app_a.url, "app_a_session").unwrap();
    let home = browser.follow(&format!("{}/", stack.app_a.url)).await;
    let out = browser.submit(&home, "/logout", &[]).await;
    assert_eq!(out.status, 200);
    assert!(out.body.contains("not signed in"), "{}", out.body);
    assert_eq!(me(&browser, &stack.app_a).await.0, 401);
    // Ended on the server, not just forgotten by this browser: the old id is dead.
    let replay = Browser::new();
    replay.plant_cookie(&stack.app_a.url, &format!("app_a_session={old_cookie}"));
    assert_eq!(
        me(&replay, &stack.app_a).await.0,
        401,
        "the local session ended server-side"
    );

    // Signing in again: the provider session is still there and consent was remembered.
    let page = browser.follow(&format!("{}/login", stack.app_a.url)).await;
    assert_eq!(page.url.as_str(), format!("{}/", stack.app_a.url));
    assert!(!page.visited(&format!("{}/login", stack.issuer)));
    assert!(
        !page.visited(&format!("{}/consent", stack.issuer)),
        "consent remembered"
    );
    assert_eq!(me(&browser, &stack.app_a).await.0, 200);
}

#[tokio::test]
async fn app_logout_without_csrf_token_is_refused() {
    let stack = spawn().await;
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_a, ALICE).await;
    let page = browser
        .post_form(&format!("{}/logout", stack.app_a.url), &[])
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(me(&browser, &stack.app_a).await.0, 200, "still signed in");
}

#[tokio::test]
async fn app_sessions_are_fresh_at_sign_in_and_tokens_stay_server_side() {
    let stack = spawn().await;
    let browser = Browser::new();
    // Before sign-in, /login gives the browser a pre-login session cookie.
    let start = browser
        .get_once(&format!("{}/login", stack.app_a.url))
        .await;
    assert_eq!(start.status, 302);
    let pre = browser
        .cookie(&stack.app_a.url, "app_a_session")
        .expect("pre-login cookie");
    let page = sign_in(&stack, &browser, &stack.app_a, ALICE).await;
    let post = browser
        .cookie(&stack.app_a.url, "app_a_session")
        .expect("session cookie");
    assert_ne!(pre, post, "a new local session id at sign-in");
    // The old id is dead: a second browser holding it is not signed in.
    let thief = Browser::new();
    thief.plant_cookie(&stack.app_a.url, &format!("app_a_session={pre}"));
    assert_eq!(me(&thief, &stack.app_a).await.0, 401);
    // Nothing but the opaque id reaches the browser.
    let cookies = browser.cookies_for(&stack.app_a.url);
    assert!(!cookies.contains("eyJ"), "no JWT in cookies: {cookies}");
    assert!(!page.body.contains(".eyJ"), "no token in the page");
    let set = page
        .hops
        .iter()
        .flat_map(|h| h.set_cookies.clone())
        .find(|c| c.starts_with("app_a_session="))
        .unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/"),
        "{set}"
    );
    let (_, me) = me(&browser, &stack.app_a).await;
    for key in [
        "created_at",
        "last_seen_at",
        "idle_expires_at",
        "absolute_expires_at",
    ] {
        assert!(
            me["session"][key]
                .as_str()
                .is_some_and(|t| t.ends_with('Z')),
            "{key}: {me}"
        );
    }
    assert!(me["access_token_expires_at"].as_str().is_some());
}
