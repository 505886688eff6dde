//! The flows, one module per area; helpers shared by them.

mod account;
mod apis;
mod authorize;
mod backup;
mod browser;
mod device;
mod discovery;
mod doctor;
mod dpop;
mod factors;
mod failover;
mod hardening;
mod hostile;
mod instances;
mod interop;
mod kept;
mod levels;
mod lifecycle;
mod login;
mod logout;
mod outage;
mod passkeys;
mod pushed;
mod registration;
mod rolling;
mod rotation;
mod sessions;
mod sso;
mod token;
mod userinfo;

use crate::harness::{Browser, Page, RunningApp, Stack};

/// Signs in at `app` through the provider's pages: login form (if shown), consent (if shown),
/// back to the app. Returns the final page (the app's home).
pub async fn sign_in(
    stack: &Stack,
    browser: &Browser,
    app: &RunningApp,
    (user, password): (&str, &str),
) -> Page {
    let mut page = browser.follow(&format!("{}/login", app.url)).await;
    let mut hops = Vec::new();
    if page
        .url
        .as_str()
        .starts_with(&format!("{}/login", stack.issuer))
    {
        assert_eq!(page.status, 200, "login page: {}", page.body);
        hops.append(&mut page.hops);
        page = browser
            .submit(
                &page,
                "/login",
                &[("username", user), ("password", password)],
            )
            .await;
    }
    if page
        .url
        .as_str()
        .starts_with(&format!("{}/consent", stack.issuer))
    {
        assert_eq!(page.status, 200, "consent page: {}", page.body);
        hops.append(&mut page.hops);
        page = browser
            .submit(&page, "/consent", &[("decision", "allow")])
            .await;
    }
    hops.append(&mut page.hops);
    page.hops = hops;
    page
}

/// Starts a sign-in at App B and returns the provider's login page.
pub async fn login_page(stack: &Stack, browser: &Browser) -> Page {
    let page = browser.follow(&format!("{}/login", stack.app_b.url)).await;
    assert!(
        page.url
            .as_str()
            .starts_with(&format!("{}/login", stack.issuer)),
        "{}",
        page.url
    );
    page
}

/// Waits until `app` no longer knows `browser` (its `/me` answers 401): the app heard of the
/// end of the session (through back-channel logout, or a refused refresh).
pub async fn signed_out(browser: &Browser, app: &RunningApp, what: &str) {
    crate::harness::eventually(what, || async {
        (me(browser, app).await.0 == 401).then_some(())
    })
    .await;
}

/// "Sign out everywhere" on the provider's sessions page, in `browser`; the page it ends on.
pub async fn sign_out_everywhere(stack: &Stack, browser: &Browser) -> Page {
    let page = browser
        .follow(&format!("{}/account/sessions", stack.issuer))
        .await;
    browser
        .submit(&page, "/account/sessions/revoke-all", &[])
        .await
}

/// `GET {app}/me` as JSON, with its status.
pub async fn me(browser: &Browser, app: &RunningApp) -> (u16, serde_json::Value) {
    let page = browser.get_once(&format!("{}/me", app.url)).await;
    (page.status.as_u16(), page.json())
}

/// A browser signed in at the provider (through App A) and a code for App A from a direct
/// authorization request, with its PKCE verifier.
pub async fn code_for_app_a(stack: &Stack, extra: &[(&str, &str)]) -> (Browser, String, String) {
    let browser = Browser::new();
    sign_in(stack, &browser, &stack.app_a, crate::harness::ALICE).await;
    let (code, verifier) = code_with(stack, &browser, extra).await;
    (browser, code, verifier)
}

/// A code for App A through `browser` (already signed in and consented).
pub async fn code_with(
    stack: &Stack,
    browser: &Browser,
    extra: &[(&str, &str)],
) -> (String, String) {
    let req = stack.authorize_url(&stack.app_a.client_id, &stack.app_a.redirect_uri, extra);
    let page = browser.get_once(req.url.as_str()).await;
    assert_eq!(page.status, 303, "authorize: {}", page.body);
    let location = page.hops[0].location.clone().unwrap();
    assert!(
        location.starts_with(&stack.app_a.redirect_uri),
        "{location}"
    );
    assert_eq!(
        crate::harness::param(&location, "state").as_deref(),
        Some(req.state.as_str())
    );
    (
        crate::harness::param(&location, "code").expect("a code"),
        req.verifier,
    )
}

/// The `error` of a `prompt=none` authorization for App B in `browser`: `None` means the SSO
/// session is alive (a code came back), `login_required` that it is not.
pub async fn prompt_none_error(stack: &Stack, browser: &Browser) -> Option<String> {
    let req = stack.authorize_url(
        &stack.app_b.client_id,
        &stack.app_b.redirect_uri,
        &[("prompt", "none")],
    );
    let page = browser.get_once(req.url.as_str()).await;
    crate::harness::param(page.hops[0].location.as_deref().unwrap(), "error")
}

/// The status of `GET /userinfo` with `access_token`.
pub async fn userinfo_status(stack: &Stack, access_token: &str) -> u16 {
    let client = client_app::http::client_builder().build().unwrap();
    client
        .get(format!("{}/userinfo", stack.issuer))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}
