//! The provider's sign-in page: passwords, CSRF, and what failure looks like.

use super::{login_page, me, sign_in};
use crate::harness::{ALICE, Browser, spawn};

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let stack = spawn().await;
    let browser = Browser::new();
    let page = login_page(&stack, &browser).await;
    let wrong = browser
        .submit(
            &page,
            "/login",
            &[("username", "alice"), ("password", "Wonderland")],
        )
        .await;
    let unknown = browser
        .submit(
            &page,
            "/login",
            &[("username", "alicia"), ("password", "wonderland")],
        )
        .await;
    let disabled_like = browser
        .submit(&page, "/login", &[("username", ""), ("password", "x")])
        .await;
    for p in [&wrong, &unknown, &disabled_like] {
        assert_eq!(p.status, 401);
        assert!(
            p.body.contains("Incorrect username or password."),
            "{}",
            p.body
        );
        assert_eq!(p.hops.len(), 1, "no redirect");
    }
    // Same page apart from the echoed username.
    assert_eq!(
        wrong.body.replace("value=\"alice\"", ""),
        unknown.body.replace("value=\"alicia\"", "")
    );
    assert_eq!(me(&browser, &stack.app_b).await.0, 401);
    // The right password still works after failures, and carries on to the app.
    let ok = browser
        .submit(
            &page,
            "/login",
            &[("username", "alice"), ("password", "wonderland")],
        )
        .await;
    assert_eq!(ok.url.as_str(), format!("{}/", stack.app_b.url));
    assert_eq!(ok.hops[0].status, 303, "POST answered with 303");
    assert_eq!(me(&browser, &stack.app_b).await.0, 200);
}

#[tokio::test]
async fn login_without_its_csrf_token_is_refused_and_changes_nothing() {
    let stack = spawn().await;
    let browser = Browser::new();
    let page = login_page(&stack, &browser).await;
    let request = page.hidden("request").unwrap();
    let url = format!("{}/login", stack.issuer);
    let missing = browser
        .post_form(
            &url,
            &[
                ("request", &request),
                ("username", "alice"),
                ("password", "wonderland"),
            ],
        )
        .await;
    assert_eq!(missing.status, 403);
    let other = Browser::new();
    let other_page = login_page(&stack, &other).await;
    let foreign = other_page.hidden("csrf_token").unwrap();
    let stolen = browser
        .post_form(
            &url,
            &[
                ("csrf_token", &foreign),
                ("request", &request),
                ("username", "alice"),
                ("password", "wonderland"),
            ],
        )
        .await;
    assert_eq!(
        stolen.status, 403,
        "another session's token is not this one's"
    );
    let provider_home = browser.follow(&format!("{}/", stack.issuer)).await;
    assert!(
        provider_home.body.contains("not signed in"),
        "nothing changed"
    );
    // The real form still works.
    let ok = browser
        .submit(
            &page,
            "/login",
            &[("username", "alice"), ("password", "wonderland")],
        )
        .await;
    assert_eq!(ok.url.as_str(), format!("{}/", stack.app_b.url));
}

#[tokio::test]
async fn login_post_without_a_session_is_refused() {
    let stack = spawn().await;
    let browser = Browser::new();
    let page = browser
        .post_form(
            &format!("{}/login", stack.issuer),
            &[("username", "alice"), ("password", "wonderland")],
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("expired"), "{}", page.body);
}

#[tokio::test]
async fn consent_can_be_denied() {
    let stack = spawn().await;
    let browser = Browser::new();
    let page = browser.follow(&format!("{}/login", stack.app_a.url)).await;
    let consent = browser
        .submit(
            &page,
            "/login",
            &[("username", ALICE.0), ("password", ALICE.1)],
        )
        .await;
    assert!(
        consent.url.path().starts_with("/consent"),
        "{}",
        consent.url
    );
    assert!(consent.body.contains("App A"));
    let denied = browser
        .submit(&consent, "/consent", &[("decision", "deny")])
        .await;
    assert_eq!(denied.status, 400);
    assert!(denied.body.contains("declined"), "{}", denied.body);
    let callback = denied
        .hops
        .iter()
        .find(|h| h.url.path() == "/callback")
        .unwrap();
    assert_eq!(
        crate::harness::param(callback.url.as_str(), "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(me(&browser, &stack.app_a).await.0, 401);
    // Nothing was remembered: the next sign-in asks again.
    let page = sign_in(&stack, &browser, &stack.app_a, ALICE).await;
    assert!(page.visited(&format!("{}/consent", stack.issuer)));
}

#[tokio::test]
async fn provider_pages_carry_security_headers() {
    let stack = spawn().await;
    let browser = Browser::new();
    let page = login_page(&stack, &browser).await;
    let h = &page.headers;
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'")
            && !csp.contains("unsafe-inline")
            && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
    assert!(h.contains_key("x-request-id"));
    // One script, our own file (passkeys), and nothing inline or evaluated.
    assert!(
        csp.contains("script-src 'self';") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    let own = r#"<script src="/static/passkeys.js" defer></script>"#;
    assert_eq!(page.body.matches("<script").count(), 1, "{}", page.body);
    assert!(page.body.contains(own), "{}", page.body);
    let script = browser
        .get_once(&format!("{}/static/passkeys.js", stack.issuer))
        .await;
    assert_eq!(script.status, 200);
    assert!(
        script.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript"),
        "{:?}",
        script.headers
    );
    // The cookie promised in README.md ("Sessions").
    let set = page
        .hops
        .iter()
        .flat_map(|hop| hop.set_cookies.clone())
        .find(|c| c.starts_with("gatehouse_sso="))
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attr), "{attr} in {set}");
    }
    assert!(!set.contains("Domain"), "{set}");
    // Unknown page: a friendly 404, not an empty body.
    let missing = browser.follow(&format!("{}/nope", stack.issuer)).await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("There is no page here."));
}

#[tokio::test]
async fn app_pages_carry_security_headers_too() {
    let stack = spawn().await;
    let page = Browser::new()
        .follow(&format!("{}/", stack.app_a.url))
        .await;
    let h = &page.headers;
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(
        h["x-frame-options"], "DENY",
        "for browsers without frame-ancestors"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
}

/// Eight tabs of one browser start a sign-in at the same moment; the person signs in in one,
/// and every other tab, reloaded, goes on to its app with its own code and state: no tab's
/// waiting request erased another's.
#[tokio::test]
async fn eight_tabs_starting_sign_in_at_once_all_get_through() {
    use crate::harness::{param, register};
    use provider::keys::Alg;
    use provider::types::AuthMethod;
    const REDIRECT: &str = "http://127.0.0.1:9/tabs";
    let stack = spawn().await;
    let now = stack.clock.unix();
    register(
        &stack.store,
        "tabs",
        "Tabs",
        Some("tabs-secret"),
        &[REDIRECT],
        AuthMethod::ClientSecretBasic,
        true,
        Alg::RS256,
        now,
    )
    .await;
    let browser = Browser::new();
    // The browser has been to the provider before: one session cookie, shared by its tabs.
    browser.follow(&format!("{}/login", stack.issuer)).await;
    let requests: Vec<_> = (0..8)
        .map(|_| stack.authorize_url("tabs", REDIRECT, &[("scope", "openid")]))
        .collect();
    let mut tabs = tokio::task::JoinSet::new();
    for (i, req) in requests.iter().enumerate() {
        let (browser, url) = (browser.clone(), req.url.to_string());
        tabs.spawn(async move { (i, browser.follow(&url).await) });
    }
    let mut pages: Vec<Option<crate::harness::Page>> = (0..8).map(|_| None).collect();
    while let Some(done) = tabs.join_next().await {
        let (i, page) = done.unwrap();
        assert_eq!(page.url.path(), "/login", "tab {i}");
        assert!(page.hidden("request").is_some(), "tab {i}: {}", page.body);
        pages[i] = Some(page);
    }
    let pages: Vec<_> = pages.into_iter().map(Option::unwrap).collect();
    // Signed in in the first tab.
    let first = browser
        .submit_until(
            &pages[0],
            "/login",
            &[("username", ALICE.0), ("password", ALICE.1)],
            REDIRECT,
        )
        .await;
    let mut landed = vec![first.url.to_string()];
    // The seven others, reloaded at once.
    let mut tabs = tokio::task::JoinSet::new();
    for page in &pages[1..] {
        let (browser, url) = (browser.clone(), page.url.to_string());
        tabs.spawn(async move { browser.follow_until(&url, REDIRECT).await.url.to_string() });
    }
    while let Some(done) = tabs.join_next().await {
        landed.push(done.unwrap());
    }
    for req in &requests {
        let back = landed
            .iter()
            .find(|u| param(u, "state").as_deref() == Some(req.state.as_str()))
            .unwrap_or_else(|| panic!("no tab came back with state {}: {landed:?}", req.state));
        let code = param(back, "code").expect("a code");
        let (status, _, body) = stack
            .token(
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", &req.verifier),
                ],
                Some(("tabs", "tabs-secret")),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
}
