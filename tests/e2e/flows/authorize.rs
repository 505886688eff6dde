//! The authorization endpoint's answers to bad requests, and what the app does with bad
//! callbacks.

use super::{me, sign_in};
use crate::harness::{ALICE, Browser, Options, param, spawn, spawn_with};
use std::sync::atomic::Ordering;
use std::time::Duration;

#[tokio::test]
async fn unregistered_redirect_uri_shows_a_page_and_never_redirects() {
    let stack = spawn().await;
    let browser = Browser::new();
    for bad in [
        "http://evil.localhost/callback",
        &format!("{}/callback?x=1", stack.app_a.url),
        &format!("{}/callback/", stack.app_a.url),
        &format!("{}/CALLBACK", stack.app_a.url),
    ] {
        let req = stack.authorize_url(&stack.app_a.client_id, bad, &[]);
        let page = browser.get_once(req.url.as_str()).await;
        assert_eq!(page.status, 400, "{bad}");
        assert!(page.hops[0].location.is_none(), "no redirect for {bad}");
        assert!(page.body.contains("redirect_uri mismatch"), "{}", page.body);
        assert!(
            page.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    // Missing redirect_uri: also a page.
    let req = stack.authorize_url(&stack.app_a.client_id, "", &[]);
    let page = browser.get_once(req.url.as_str()).await;
    assert_eq!(page.status, 400);
    assert!(page.hops[0].location.is_none());
}

#[tokio::test]
async fn unknown_client_shows_a_page() {
    let stack = spawn().await;
    let browser = Browser::new();
    let req = stack.authorize_url("no-such-app", &stack.app_a.redirect_uri, &[]);
    let page = browser.get_once(req.url.as_str()).await;
    assert_eq!(page.status, 400);
    assert!(page.hops[0].location.is_none());
    assert!(page.body.contains("not registered"), "{}", page.body);
    // Repeated client_id: also a page, never a redirect.
    let url = format!("{}&client_id=app-b", req.url);
    let page = browser.get_once(&url).await;
    assert_eq!(page.status, 400);
    assert!(page.hops[0].location.is_none());
}

/// An unsigned request object (RFC 9101 §10.2) is refused, and never answered at the redirect
/// URI beside it (which the object would have to vouch for): a page.
#[tokio::test]
async fn an_unsigned_request_object_is_a_page_not_a_redirect() {
    let stack = spawn().await;
    let browser = Browser::new();
    let extra = [("request", "eyJhbGciOiJub25lIn0.e30.")];
    let req = stack.authorize_url(&stack.app_a.client_id, &stack.app_a.redirect_uri, &extra);
    let page = browser.get_once(req.url.as_str()).await;
    assert_eq!(page.status, 400);
    assert!(page.hops[0].location.is_none());
    assert!(
        page.body.contains("signed request was refused"),
        "{}",
        page.body
    );
}

/// Sends an authorization request with `extra` and returns the error redirect's parameters.
async fn error_redirect(
    extra: &[(&str, &str)],
) -> (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
) {
    let stack = spawn().await;
    let browser = Browser::new();
    let req = stack.authorize_url(&stack.app_a.client_id, &stack.app_a.redirect_uri, extra);
    let page = browser.get_once(req.url.as_str()).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let location = page.hops[0].location.clone().unwrap();
    assert!(
        location.starts_with(&stack.app_a.redirect_uri),
        "{location}"
    );
    assert!(param(&location, "code").is_none());
    let state_echoed = param(&location, "state") == Some(req.state.clone());
    assert!(
        state_echoed || extra.iter().any(|(k, _)| *k == "state"),
        "state echoed: {location}"
    );
    (
        param(&location, "error").unwrap(),
        param(&location, "error_description"),
        param(&location, "iss"),
        param(&location, "state"),
        stack.issuer.clone(),
    )
}

#[tokio::test]
async fn pkce_plain_is_refused() {
    let (error, description, iss, _, issuer) =
        error_redirect(&[("code_challenge_method", "plain")]).await;
    assert_eq!(error, "invalid_request");
    assert!(description.unwrap().contains("S256"));
    assert_eq!(
        iss.as_deref(),
        Some(issuer.as_str()),
        "RFC 9207 iss on errors"
    );
}

#[tokio::test]
async fn pkce_is_required() {
    let (error, ..) =
        error_redirect(&[("code_challenge", ""), ("code_challenge_method", "")]).await;
    assert_eq!(error, "invalid_request");
    let (error, ..) = error_redirect(&[("code_challenge_method", "")]).await;
    assert_eq!(error, "invalid_request", "a missing method means plain");
    let (error, ..) = error_redirect(&[("code_challenge", "too-short")]).await;
    assert_eq!(error, "invalid_request");
}

#[tokio::test]
async fn unsupported_response_type_and_missing_openid() {
    assert_eq!(
        error_redirect(&[("response_type", "token")]).await.0,
        "unsupported_response_type"
    );
    assert_eq!(
        error_redirect(&[("response_type", "")]).await.0,
        "invalid_request"
    );
    assert_eq!(
        error_redirect(&[("scope", "profile")]).await.0,
        "invalid_scope"
    );
    assert_eq!(
        error_redirect(&[("prompt", "none login")]).await.0,
        "invalid_request"
    );
    assert_eq!(
        error_redirect(&[("max_age", "-1")]).await.0,
        "invalid_request"
    );
    assert_eq!(
        error_redirect(&[("response_mode", "fragment")]).await.0,
        "invalid_request"
    );
}

#[tokio::test]
async fn state_is_echoed_byte_for_byte() {
    let odd = "a b+c/d?e=f&g%h✓";
    let (error, _, _, state, _) =
        error_redirect(&[("response_type", "token"), ("state", odd)]).await;
    assert_eq!(error, "unsupported_response_type");
    assert_eq!(state.as_deref(), Some(odd));
}

#[tokio::test]
async fn repeated_parameters_are_refused() {
    let stack = spawn().await;
    let browser = Browser::new();
    let req = stack.authorize_url(&stack.app_a.client_id, &stack.app_a.redirect_uri, &[]);
    let page = browser.get_once(&format!("{}&scope=openid", req.url)).await;
    let location = page.hops[0].location.clone().unwrap();
    assert_eq!(
        param(&location, "error").as_deref(),
        Some("invalid_request")
    );
    assert!(
        param(&location, "error_description")
            .unwrap()
            .contains("repeated")
    );
}

#[tokio::test]
async fn malformed_query_gets_a_page_not_a_500() {
    let stack = spawn().await;
    let browser = Browser::new();
    for raw in ["client_id=%zz", "client_id=%ff%fe", "client_id=a%00b"] {
        let page = browser
            .get_once(&format!("{}/authorize?{raw}", stack.issuer))
            .await;
        assert_eq!(page.status, 400, "{raw}");
    }
}

#[tokio::test]
async fn prompt_none_without_a_session_is_login_required() {
    let (error, _, iss, _, issuer) = error_redirect(&[("prompt", "none")]).await;
    assert_eq!(error, "login_required");
    assert_eq!(iss.as_deref(), Some(issuer.as_str()));
}

#[tokio::test]
async fn prompt_none_with_a_session_but_no_consent_is_consent_required() {
    let stack = spawn().await;
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_b, ALICE).await; // first-party: no consent recorded
    let req = stack.authorize_url(
        &stack.app_a.client_id,
        &stack.app_a.redirect_uri,
        &[("prompt", "none")],
    );
    let page = browser.get_once(req.url.as_str()).await;
    let location = page.hops[0].location.clone().unwrap();
    assert_eq!(
        param(&location, "error").as_deref(),
        Some("consent_required")
    );
}

#[tokio::test]
async fn post_to_the_authorization_endpoint_works() {
    let stack = spawn().await;
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_a, ALICE).await;
    let req = stack.authorize_url(
        &stack.app_a.client_id,
        &stack.app_a.redirect_uri,
        &[("prompt", "none")],
    );
    let fields: Vec<(String, String)> = req
        .url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let page = browser
        .post_once(&format!("{}/authorize", stack.issuer), &fields)
        .await;
    assert_eq!(page.status, 303);
    let location = page.hops[0].location.clone().unwrap();
    assert!(param(&location, "code").is_some(), "{location}");
    assert_eq!(
        param(&location, "iss").as_deref(),
        Some(stack.issuer.as_str())
    );
}

#[tokio::test]
async fn app_refuses_a_callback_with_the_wrong_state() {
    let stack = spawn().await;
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_b, ALICE).await;
    browser
        .submit(
            &browser.follow(&format!("{}/", stack.app_b.url)).await,
            "/logout",
            &[],
        )
        .await;
    // Start at App B, stop at the callback, and change the state.
    let start = browser
        .get_once(&format!("{}/login", stack.app_b.url))
        .await;
    let authorize = start.hops[0].location.clone().unwrap();
    let at_provider = browser.get_once(&authorize).await;
    let callback = at_provider.hops[0].location.clone().unwrap();
    let forged = callback.replace(
        &format!("state={}", param(&callback, "state").unwrap()),
        "state=forged",
    );
    let page = browser.follow(&forged).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("state mismatch"), "{}", page.body);
    assert_eq!(
        me(&browser, &stack.app_b).await.0,
        401,
        "no session created"
    );
    // And a callback without iss is refused too (RFC 9207).
    let start = browser
        .get_once(&format!("{}/login", stack.app_b.url))
        .await;
    let at_provider = browser
        .get_once(&start.hops[0].location.clone().unwrap())
        .await;
    let callback = at_provider.hops[0].location.clone().unwrap();
    let mut url = url::Url::parse(&callback).unwrap();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "iss")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut().clear().extend_pairs(kept);
    let page = browser.follow(url.as_str()).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("iss mismatch"), "{}", page.body);
    assert_eq!(me(&browser, &stack.app_b).await.0, 401);
}

#[tokio::test]
async fn app_refuses_an_id_token_with_another_nonce() {
    let stack = spawn().await;
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_b, ALICE).await;
    browser
        .submit(
            &browser.follow(&format!("{}/", stack.app_b.url)).await,
            "/logout",
            &[],
        )
        .await;
    let start = browser
        .get_once(&format!("{}/login", stack.app_b.url))
        .await;
    let mut authorize = url::Url::parse(&start.hops[0].location.clone().unwrap()).unwrap();
    let pairs: Vec<(String, String)> = authorize
        .query_pairs()
        .map(|(k, v)| {
            if k == "nonce" {
                (k.into_owned(), "attacker-nonce".to_owned())
            } else {
                (k.into_owned(), v.into_owned())
            }
        })
        .collect();
    authorize.query_pairs_mut().clear().extend_pairs(pairs);
    let page = browser.follow(authorize.as_str()).await;
    assert_eq!(page.status, 502, "{}", page.body);
    assert!(page.body.to_lowercase().contains("nonce"), "{}", page.body);
    assert_eq!(
        me(&browser, &stack.app_b).await.0,
        401,
        "no session created"
    );
}

#[tokio::test]
async fn app_refuses_a_tampered_id_token() {
    let stack = spawn_with(Options {
        proxy: true,
        ..Options::default()
    })
    .await;
    let browser = Browser::new();
    stack.tamper_id_tokens.store(true, Ordering::SeqCst);
    let page = sign_in(&stack, &browser, &stack.app_b, ALICE).await;
    assert_eq!(page.status, 502, "{}", page.body);
    assert!(page.body.contains("ID token is not valid"), "{}", page.body);
    assert_eq!(
        me(&browser, &stack.app_b).await.0,
        401,
        "no session created"
    );
    // Untampered, the same path works (the proxy itself is not the problem).
    stack.tamper_id_tokens.store(false, Ordering::SeqCst);
    let page = browser.follow(&format!("{}/login", stack.app_b.url)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(me(&browser, &stack.app_b).await.0, 200);
}

/// The same callback arriving eight times at once (a double submit, replays racing the real
/// one): the app takes its pending state out of the session exactly once (a compare-and-set),
/// so one callback signs in and the others are refused before the code is sent again. The code
/// is redeemed once: the provider has no replay to answer by revoking the grant, and the
/// session's later refresh works.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_double_callback_redeems_the_code_once() {
    let stack = spawn().await;
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_b, ALICE).await;
    browser
        .submit(
            &browser.follow(&format!("{}/", stack.app_b.url)).await,
            "/logout",
            &[],
        )
        .await;
    let start = browser
        .get_once(&format!("{}/login", stack.app_b.url))
        .await;
    let at_provider = browser
        .get_once(&start.hops[0].location.clone().unwrap())
        .await;
    let callback = at_provider.hops[0].location.clone().unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (browser, callback) = (browser.clone(), callback.clone());
        tasks.spawn(async move { browser.get_once(&callback).await });
    }
    let pages = tasks.join_all().await;
    let signed_in = pages.iter().filter(|p| p.status.as_u16() == 303).count();
    assert_eq!(signed_in, 1, "exactly one callback signs in");
    for refused in pages.iter().filter(|p| p.status.as_u16() != 303) {
        assert_eq!(refused.status.as_u16(), 400, "{}", refused.body);
    }
    let (status, before) = me(&browser, &stack.app_b).await;
    assert_eq!(status, 200, "signed in once");
    // The access token comes due; its refresh works, because the grant was never revoked.
    stack.clock.advance(Duration::from_secs(570));
    let (status, after) = me(&browser, &stack.app_b).await;
    assert_eq!(status, 200, "{after}");
    assert_ne!(
        before["access_token_expires_at"], after["access_token_expires_at"],
        "refreshed"
    );
}

/// The provider allows no grace for a reused refresh token: a second use is theft at once.
pub(super) fn no_refresh_grace(c: &mut provider::Config) {
    c.tokens.refresh_grace = Duration::ZERO;
}

/// Eight requests of one signed-in browser arrive at App B just as its access token comes
/// due, with the provider allowing no grace for a reused refresh token: the app refreshes
/// once for all of them (single-flight per session), so the provider never sees the token
/// twice, nobody is signed out, and the grant lives on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_refresh_once() {
    let stack = spawn_with(Options {
        configure: Some(no_refresh_grace),
        ..Options::default()
    })
    .await;
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_b, ALICE).await;
    let (_, before) = me(&browser, &stack.app_b).await;
    stack.clock.advance(Duration::from_secs(570));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (browser, url) = (browser.clone(), stack.app_b.url.clone());
        tasks.spawn(async move { browser.get_once(&format!("{url}/me")).await.status.as_u16() });
    }
    let statuses = tasks.join_all().await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let (status, after) = me(&browser, &stack.app_b).await;
    assert_eq!(status, 200);
    assert_ne!(
        before["access_token_expires_at"], after["access_token_expires_at"],
        "refreshed"
    );
    // Refreshing again later works: the family was never revoked.
    stack.clock.advance(Duration::from_secs(570));
    assert_eq!(me(&browser, &stack.app_b).await.0, 200);
}
