//! "Keep me signed in" over HTTP: offered only where the configuration allows it; a kept SSO
//! session's cookie carries `Max-Age`, and the session outlives the usual idle timeout, up
//! to its own limits; it goes through the code step of an account with an authenticator app;
//! "Your sessions" says which sessions are kept; and a sign-out ends one like any other.

use super::factors::{code, set_up};
use super::{login_page, prompt_none_error, sign_out_everywhere};
use crate::harness::{ALICE, BOB, Browser, Options, Page, spawn, spawn_with};
use std::time::Duration;

fn with_remember() -> Options {
    Options {
        configure: Some(|c: &mut provider::Config| c.session.remember.enabled = true),
        ..Options::default()
    }
}

/// The `Max-Age` of the provider's session cookie as the hops of `page` set it, if any.
fn cookie_max_age(page: &Page) -> Option<Option<i64>> {
    page.hops
        .iter()
        .flat_map(|h| h.set_cookies.iter())
        .rfind(|c| c.starts_with("gatehouse_sso=") && !c.starts_with("gatehouse_sso=;"))
        .map(|c| {
            c.split(';')
                .find_map(|a| a.trim().strip_prefix("Max-Age="))
                .map(|v| v.parse().unwrap())
        })
}

#[tokio::test]
async fn keep_me_signed_in_is_not_offered_unless_allowed() {
    let stack = spawn().await;
    let browser = Browser::new();
    let page = login_page(&stack, &browser).await;
    assert!(!page.body.contains(r#"id="remember""#), "{}", page.body);
    // Asked for anyway: a session cookie, and the usual idle timeout.
    let fields = [
        ("username", ALICE.0),
        ("password", ALICE.1),
        ("remember", "yes"),
    ];
    let done = browser.submit(&page, "/login", &fields).await;
    assert_eq!(cookie_max_age(&done), Some(None), "a session cookie");
    stack.clock.advance(Duration::from_secs(31 * 60));
    assert_eq!(
        prompt_none_error(&stack, &browser).await.as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn a_kept_session_outlives_the_usual_idle_timeout_up_to_its_own_limits() {
    let stack = spawn_with(with_remember()).await;
    let kept = Browser::new();
    let page = login_page(&stack, &kept).await;
    assert!(page.body.contains(r#"id="remember""#), "{}", page.body);
    assert!(page.body.contains("30 days"), "{}", page.body);
    let fields = [
        ("username", ALICE.0),
        ("password", ALICE.1),
        ("remember", "yes"),
    ];
    let done = kept.submit(&page, "/login", &fields).await;
    let max_age = cookie_max_age(&done)
        .flatten()
        .expect("a persistent cookie");
    assert!(
        (30 * 86400 - 5..=30 * 86400).contains(&max_age),
        "{max_age}"
    );
    // Unticked: the usual session, beside it.
    let usual = Browser::new();
    let page = login_page(&stack, &usual).await;
    let done = usual
        .submit(&page, "/login", &[("username", BOB.0), ("password", BOB.1)])
        .await;
    assert_eq!(cookie_max_age(&done), Some(None));

    // Two hours unused: the usual session is over, the kept one is not.
    stack.clock.advance(Duration::from_secs(2 * 3600));
    assert_eq!(
        prompt_none_error(&stack, &usual).await.as_deref(),
        Some("login_required")
    );
    assert_eq!(prompt_none_error(&stack, &kept).await, None);
    // Asked for the password again (prompt=login), the box is ticked: still kept.
    let extra = [("prompt", "login")];
    let again = stack.authorize_url(&stack.app_b.client_id, &stack.app_b.redirect_uri, &extra);
    let again = kept.follow(again.url.as_str()).await;
    let ticked = r#"aria-describedby="remember-help" checked"#;
    assert!(again.body.contains(ticked), "{}", again.body);
    let sessions = kept
        .follow(&format!("{}/account/sessions", stack.issuer))
        .await;
    assert!(
        sessions.body.contains("kept signed in until"),
        "{}",
        sessions.body
    );
    // Six days unused: still there; then eight: over (its own idle timeout, seven days).
    stack.clock.advance(Duration::from_secs(6 * 86400));
    assert_eq!(prompt_none_error(&stack, &kept).await, None);
    stack.clock.advance(Duration::from_secs(8 * 86400));
    assert_eq!(
        prompt_none_error(&stack, &kept).await.as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn keep_me_signed_in_goes_through_the_code_step_and_ends_like_any_session() {
    let stack = spawn_with(with_remember()).await;
    let alice = Browser::new();
    super::sign_in(&stack, &alice, &stack.app_b, ALICE).await;
    let (secret, _) = set_up(&stack, &alice).await;
    let browser = Browser::new();
    let page = login_page(&stack, &browser).await;
    let fields = [
        ("username", ALICE.0),
        ("password", ALICE.1),
        ("remember", "yes"),
    ];
    let code_page = browser.submit(&page, "/login", &fields).await;
    assert!(
        code_page.body.contains(r#"action="/login/code""#),
        "{}",
        code_page.body
    );
    let now = code(&secret, stack.clock.unix());
    let done = browser
        .submit(&code_page, "/login/code", &[("code", &now)])
        .await;
    assert!(
        cookie_max_age(&done).flatten().is_some(),
        "kept: {:?}",
        done.hops
    );
    stack.clock.advance(Duration::from_secs(2 * 3600));
    assert_eq!(prompt_none_error(&stack, &browser).await, None);
    // "Sign out everywhere" ends it at once, kept or not.
    sign_out_everywhere(&stack, &browser).await;
    assert_eq!(
        prompt_none_error(&stack, &browser).await.as_deref(),
        Some("login_required")
    );
}
