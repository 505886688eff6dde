//! Single logout: RP-initiated logout at the provider, and back-channel logout to every app
//! that shared the SSO session, whatever ended it.

use super::{me, prompt_none_error, sign_in, sign_out_everywhere, signed_out};
use crate::harness::{
    ALICE, BOB, Browser, Options, PATIENCE, Page, Stack, eventually, jwt_part, outbound, param,
    register, spawn, spawn_with,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use provider::keys::{Alg, Keys, generate};
use provider::protocol::registration::{self, ClientMetadata, Registrant};
use provider::types::AuthMethod;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A browser signed in at both apps through one SSO session; returns it and the session's sid.
async fn signed_in_at_both(stack: &Stack) -> (Browser, String) {
    let browser = Browser::new();
    sign_in(stack, &browser, &stack.app_a, ALICE).await;
    sign_in(stack, &browser, &stack.app_b, ALICE).await;
    let sid = me(&browser, &stack.app_a).await.1["provider_sid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        me(&browser, &stack.app_b).await.1["provider_sid"],
        sid.as_str()
    );
    (browser, sid)
}

/// "Sign out everywhere" at App A, which sends the browser to the provider's end-session
/// endpoint with its hint; the provider's answer (not followed).
async fn provider_logout_from_app_a(stack: &Stack, browser: &Browser) -> Page {
    let home = browser.follow(&format!("{}/", stack.app_a.url)).await;
    let to_provider = browser
        .post_once(
            &format!("{}/logout/everywhere", stack.app_a.url),
            &[("csrf_token", &home.hidden("csrf_token").unwrap())],
        )
        .await;
    browser
        .get_once(to_provider.hops[0].location.as_deref().unwrap())
        .await
}

async fn assert_everyone_signed_out(stack: &Stack, browser: &Browser) {
    signed_out(browser, &stack.app_a, "App A signed out").await;
    signed_out(browser, &stack.app_b, "App B signed out").await;
    assert_eq!(
        prompt_none_error(stack, browser).await.as_deref(),
        Some("login_required"),
        "the SSO session is gone"
    );
}

#[tokio::test]
async fn sign_out_everywhere_from_app_b_signs_app_a_out() {
    let stack = spawn().await;
    let (browser, _) = signed_in_at_both(&stack).await;
    let home = browser.follow(&format!("{}/", stack.app_b.url)).await;
    let done = browser.submit(&home, "/logout/everywhere", &[]).await;
    // App B → provider's end_session_endpoint (with the hint) → back to App B.
    let path: Vec<String> = done
        .hops
        .iter()
        .map(|h| format!("{} {}", h.status.as_u16(), h.url.path()))
        .collect();
    assert_eq!(
        path,
        vec!["303 /logout/everywhere", "303 /logout", "200 /"],
        "{path:?}"
    );
    let at_provider = &done.hops[1];
    assert!(at_provider.url.query().unwrap().contains("id_token_hint="));
    let back = at_provider.location.clone().unwrap();
    assert!(
        back.starts_with(&format!("{}/?state=", stack.app_b.url)),
        "{back}"
    );
    assert!(
        at_provider
            .set_cookies
            .iter()
            .any(|c| c.starts_with("gatehouse_sso=") && c.contains("Max-Age=0"))
    );
    assert_everyone_signed_out(&stack, &browser).await;
}

#[tokio::test]
async fn rp_initiated_logout_sends_clear_site_data() {
    let stack = spawn().await;
    let (browser, _) = signed_in_at_both(&stack).await;
    let provider_logout = provider_logout_from_app_a(&stack, &browser).await;
    assert_eq!(provider_logout.status, 303);
    assert_eq!(provider_logout.headers["clear-site-data"], "\"cookies\"");
    assert_everyone_signed_out(&stack, &browser).await;
}

#[tokio::test]
async fn revoking_a_session_at_the_provider_signs_its_apps_out() {
    let stack = spawn().await;
    let (victim, sid) = signed_in_at_both(&stack).await;
    let other = Browser::new();
    sign_in(&stack, &other, &stack.app_b, ALICE).await;
    let page = other
        .follow(&format!("{}/account/sessions", stack.issuer))
        .await;
    other
        .submit(&page, "/account/sessions/revoke", &[("sid", &sid)])
        .await;
    assert_everyone_signed_out(&stack, &victim).await;
    assert_eq!(
        me(&other, &stack.app_b).await.0,
        200,
        "the other device stays signed in"
    );
}

#[tokio::test]
async fn sign_out_everywhere_at_the_provider_signs_every_app_out() {
    let stack = spawn().await;
    let (first, _) = signed_in_at_both(&stack).await;
    let second = Browser::new();
    sign_in(&stack, &second, &stack.app_a, ALICE).await;
    sign_out_everywhere(&stack, &second).await;
    assert_everyone_signed_out(&stack, &first).await;
    signed_out(&second, &stack.app_a, "App A signed out").await;
}

#[tokio::test]
async fn idle_expiry_signs_the_apps_out() {
    let stack = spawn().await;
    let (browser, _) = signed_in_at_both(&stack).await;
    stack.clock.advance(Duration::from_secs(31 * 60));
    // The sweeper runs every second in the harness; the apps' own sessions last 48 h.
    signed_out(&browser, &stack.app_a, "App A signed out").await;
    signed_out(&browser, &stack.app_b, "App B signed out").await;
}

#[tokio::test]
async fn absolute_expiry_signs_the_apps_out() {
    let stack = spawn().await;
    let (browser, _) = signed_in_at_both(&stack).await;
    for _ in 0..(12 * 60 / 20 - 1) {
        stack.clock.advance(Duration::from_secs(20 * 60));
        assert_eq!(
            prompt_none_error(&stack, &browser).await,
            None,
            "kept active"
        );
    }
    assert_eq!(me(&browser, &stack.app_a).await.0, 200);
    stack.clock.advance(Duration::from_secs(20 * 60 + 1));
    signed_out(&browser, &stack.app_a, "App A signed out").await;
    signed_out(&browser, &stack.app_b, "App B signed out").await;
}

#[tokio::test]
async fn a_password_change_signs_the_apps_out() {
    let stack = spawn().await;
    let (browser, _) = signed_in_at_both(&stack).await;
    provider::users::admin::change_password(
        &stack.store,
        &stack.provider.sessions,
        "alice",
        "looking-glass".into(),
    )
    .await
    .unwrap();
    stack.provider.logout_queued.notify_one();
    assert_everyone_signed_out(&stack, &browser).await;
    // The new password works, the old one does not.
    let fresh = Browser::new();
    let page = fresh.follow(&format!("{}/login", stack.app_b.url)).await;
    let old = fresh
        .submit(
            &page,
            "/login",
            &[("username", "alice"), ("password", "wonderland")],
        )
        .await;
    assert_eq!(old.status, 401);
    let new = fresh
        .submit(
            &page,
            "/login",
            &[("username", "alice"), ("password", "looking-glass")],
        )
        .await;
    assert_eq!(new.url.as_str(), format!("{}/", stack.app_b.url));
}

#[tokio::test]
async fn a_disabled_account_signs_the_apps_out() {
    let stack = spawn().await;
    let (browser, _) = signed_in_at_both(&stack).await;
    provider::users::admin::set_disabled(&stack.store, &stack.provider.sessions, "alice", true)
        .await
        .unwrap();
    stack.provider.logout_queued.notify_one();
    assert_everyone_signed_out(&stack, &browser).await;
    let fresh = Browser::new();
    let page = fresh.follow(&format!("{}/login", stack.app_b.url)).await;
    let refused = fresh
        .submit(
            &page,
            "/login",
            &[("username", "alice"), ("password", "wonderland")],
        )
        .await;
    assert_eq!(refused.status, 401, "a disabled account cannot sign in");
}

#[tokio::test]
async fn an_app_that_was_down_gets_its_logout_when_it_is_back() {
    let mut stack = spawn().await;
    let (browser, _) = signed_in_at_both(&stack).await;
    // Retries come only when the test moves time: on the running clock, the first one (a
    // second after the failure) could reach App A while it starts, before the test looks.
    stack.clock.freeze();
    stack.stop_app_a().await;
    let manager = Browser::new();
    sign_in(&stack, &manager, &stack.app_b, ALICE).await;
    let page = manager
        .follow(&format!("{}/account/sessions", stack.issuer))
        .await;
    let sid = me(&browser, &stack.app_b).await.1["provider_sid"]
        .as_str()
        .unwrap()
        .to_owned();
    manager
        .submit(&page, "/account/sessions/revoke", &[("sid", &sid)])
        .await;
    signed_out(&browser, &stack.app_b, "App B, which is up, at once").await;
    // App A's delivery failed and is shown as retrying.
    let sessions_page = format!("{}/account/sessions", stack.issuer);
    let status = eventually("App A's failed delivery is shown", || async {
        let body = manager.follow(&sessions_page).await.body;
        body.contains("Retrying").then_some(body)
    })
    .await;
    // Only the state: no transport error, status code or attempt count, which would make the
    // page an oracle for whatever the registered URI points at (README "Hostile clients").
    assert!(status.contains(">Retrying<"), "{status}");
    for detail in ["could not connect", "attempt ", "HTTP 404", "timed out"] {
        assert!(!status.contains(detail), "{detail}: {status}");
    }
    let alice = stack
        .store
        .user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let recorded = stack.store.deliveries_for_user(&alice.id, 0).await.unwrap();
    assert!(
        recorded
            .iter()
            .any(|(d, _)| d.last_error.as_deref() == Some("could not connect")),
        "the operator's record keeps the reason: {recorded:?}"
    );
    stack.start_app_a().await;
    assert_eq!(
        me(&browser, &stack.app_a).await.0,
        200,
        "App A's session survived its restart"
    );
    stack.clock.advance(Duration::from_secs(2)); // past the first backoff
    signed_out(&browser, &stack.app_a, "delivered once App A is back").await;
    // The outbox records the delivery once App A has answered: the page says so soon after.
    eventually("both deliveries shown as delivered", || async {
        let body = manager.follow(&sessions_page).await.body;
        let settled = !body.contains("Retrying") && !body.contains("Sending");
        (settled && body.matches(">Delivered<").count() == 2).then_some(())
    })
    .await;
}

/// A logout token for App A about `sid`, with `edit` applied to the standard claims.
fn claims(
    stack: &Stack,
    sid: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> serde_json::Value {
    let now = stack.clock.unix();
    let mut c = serde_json::json!({
        "iss": stack.issuer, "aud": "app-a", "iat": now, "exp": now + 120,
        "jti": infra::secret::random_handle().unwrap(), "events": { EVENT: {} }, "sid": sid, "sub": "ignored",
    });
    edit(&mut c);
    c
}

async fn post_logout_token(stack: &Stack, token: &str) -> u16 {
    let client = client_app::http::client_builder().build().unwrap();
    let resp = client
        .post(format!("{}/backchannel-logout", stack.app_a.url))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap();
    resp.status().as_u16()
}

#[tokio::test]
async fn forged_logout_tokens_are_refused_and_the_session_stays() {
    let stack = spawn().await;
    let target = Browser::new();
    sign_in(&stack, &target, &stack.app_a, ALICE).await;
    let sid = me(&target, &stack.app_a).await.1["provider_sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let keys = stack.provider.keys.current();
    let sign = |c: &serde_json::Value| keys.sign(Alg::RS256, "logout+jwt", c).unwrap();
    let stranger = Keys::from_stored(&[generate(Alg::RS256, 0).unwrap()], 1).unwrap();
    let real_kid = jwt_part(&sign(&claims(&stack, &sid, |_| {})), 0)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut impostor_key = generate(Alg::RS256, 0).unwrap();
    impostor_key.kid = real_kid;
    let impostor = Keys::from_stored(&[impostor_key], 1).unwrap();
    let b64 = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());

    let forged: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(serde_json::json!({"alg": "none", "typ": "logout+jwt"})),
                b64(claims(&stack, &sid, |_| {}))
            ),
        ),
        (
            "another key",
            stranger
                .sign(Alg::RS256, "logout+jwt", &claims(&stack, &sid, |_| {}))
                .unwrap(),
        ),
        (
            "another key under our kid",
            impostor
                .sign(Alg::RS256, "logout+jwt", &claims(&stack, &sid, |_| {}))
                .unwrap(),
        ),
        (
            "wrong aud",
            sign(&claims(&stack, &sid, |c| c["aud"] = "app-b".into())),
        ),
        (
            "wrong iss",
            sign(&claims(&stack, &sid, |c| {
                c["iss"] = "http://evil.localhost".into()
            })),
        ),
        (
            "no events",
            sign(&claims(&stack, &sid, |c| {
                c.as_object_mut().unwrap().remove("events");
            })),
        ),
        (
            "other event",
            sign(&claims(&stack, &sid, |c| {
                c["events"] = serde_json::json!({"urn:other": {}})
            })),
        ),
        (
            "a nonce",
            sign(&claims(&stack, &sid, |c| c["nonce"] = "n".into())),
        ),
        (
            "too old",
            sign(&claims(&stack, &sid, |c| {
                c["iat"] = (stack.clock.unix() - 600).into()
            })),
        ),
        (
            "expired",
            sign(&claims(&stack, &sid, |c| {
                c["exp"] = (stack.clock.unix() - 60).into()
            })),
        ),
        (
            "not typed logout+jwt",
            keys.sign(Alg::RS256, "JWT", &claims(&stack, &sid, |_| {}))
                .unwrap(),
        ),
        (
            "neither sid nor sub",
            sign(&claims(&stack, &sid, |c| {
                let o = c.as_object_mut().unwrap();
                o.remove("sid");
                o.remove("sub");
            })),
        ),
        (
            "no jti",
            sign(&claims(&stack, &sid, |c| {
                c.as_object_mut().unwrap().remove("jti");
            })),
        ),
        ("an ID token", {
            let (_, code, verifier) = super::code_for_app_a(&stack, &[]).await;
            stack.redeem_as_app_a(&code, &verifier).await.2["id_token"]
                .as_str()
                .unwrap()
                .to_owned()
        }),
    ];
    for (what, token) in &forged {
        assert_eq!(post_logout_token(&stack, token).await, 400, "{what}");
        assert_eq!(
            me(&target, &stack.app_a).await.0,
            200,
            "{what}: the session stays"
        );
    }
    // Not a form, or no token at all.
    let client = client_app::http::client_builder().build().unwrap();
    let url = format!("{}/backchannel-logout", stack.app_a.url);
    assert_eq!(
        client
            .post(&url)
            .json(&serde_json::json!({"logout_token": "x"}))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        client
            .post(&url)
            .form(&[("other", "x")])
            .send()
            .await
            .unwrap()
            .status(),
        400
    );

    // A valid token is accepted once; its replay is refused.
    let valid = sign(&claims(&stack, &sid, |_| {}));
    assert_eq!(post_logout_token(&stack, &valid).await, 200);
    assert_eq!(
        me(&target, &stack.app_a).await.0,
        401,
        "the valid token signed the session out"
    );
    assert_eq!(post_logout_token(&stack, &valid).await, 400, "replayed jti");
}

#[tokio::test]
async fn a_sub_only_token_signs_out_all_of_that_users_sessions() {
    let stack = spawn().await;
    let one = Browser::new();
    sign_in(&stack, &one, &stack.app_a, ALICE).await;
    let sub = me(&one, &stack.app_a).await.1["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    let two = Browser::new();
    sign_in(&stack, &two, &stack.app_a, ALICE).await;
    let c = claims(&stack, "", |c| {
        let o = c.as_object_mut().unwrap();
        o.remove("sid");
        o.insert("sub".into(), sub.clone().into());
    });
    assert_eq!(
        post_logout_token(
            &stack,
            &stack
                .provider
                .keys
                .current()
                .sign(Alg::ES256, "logout+jwt", &c)
                .unwrap()
        )
        .await,
        200
    );
    assert_eq!(me(&one, &stack.app_a).await.0, 401);
    assert_eq!(me(&two, &stack.app_a).await.0, 401);
}

/// The provider's logout page for `query`, without following redirects.
async fn logout_with(stack: &Stack, browser: &Browser, query: &[(&str, &str)]) -> Page {
    let mut url = url::Url::parse(&format!("{}/logout", stack.issuer)).unwrap();
    url.query_pairs_mut().extend_pairs(query);
    browser.get_once(url.as_str()).await
}

async fn id_token(stack: &Stack, browser: &Browser) -> String {
    let (code, verifier) = super::code_with(stack, browser, &[]).await;
    stack.redeem_as_app_a(&code, &verifier).await.2["id_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn post_logout_redirects_only_to_registered_uris_with_a_valid_hint() {
    let stack = spawn().await;
    let (browser, _) = signed_in_at_both(&stack).await;
    let hint = id_token(&stack, &browser).await;
    let registered = format!("{}/", stack.app_a.url);
    for bad in [
        "http://evil.localhost/",
        &format!("{registered}?x=1"),
        &format!("{}/other", stack.app_a.url),
    ] {
        let page = logout_with(
            &stack,
            &browser,
            &[("id_token_hint", &hint), ("post_logout_redirect_uri", bad)],
        )
        .await;
        assert_eq!(page.status, 400, "{bad}");
        assert!(page.hops[0].location.is_none(), "never redirected to {bad}");
    }
    // Hint-less: the person is asked; nothing ends, nothing redirects.
    let page = logout_with(
        &stack,
        &browser,
        &[
            ("client_id", "app-a"),
            ("post_logout_redirect_uri", &registered),
        ],
    )
    .await;
    assert_eq!(page.status, 200);
    assert!(page.hops[0].location.is_none());
    assert!(page.body.contains("Sign out of Gatehouse?"));
    // A bare GET: the same.
    let page = logout_with(&stack, &browser, &[]).await;
    assert!(page.body.contains("Sign out of Gatehouse?"));
    // A hint we did not sign.
    let forged = Keys::from_stored(&[generate(Alg::RS256, 0).unwrap()], 1)
        .unwrap()
        .sign(Alg::RS256, "JWT", &jwt_part(&hint, 1))
        .unwrap();
    let page = logout_with(
        &stack,
        &browser,
        &[
            ("id_token_hint", &forged),
            ("post_logout_redirect_uri", &registered),
        ],
    )
    .await;
    assert_eq!(page.status, 400);
    assert!(page.hops[0].location.is_none());
    assert_eq!(
        prompt_none_error(&stack, &browser).await,
        None,
        "still signed in after all of these"
    );
    assert_eq!(me(&browser, &stack.app_a).await.0, 200);
    // An expired hint is still a hint (RP-Initiated Logout §2): the redirect happens, with state.
    stack.clock.advance(Duration::from_secs(15 * 60));
    let page = logout_with(
        &stack,
        &browser,
        &[
            ("id_token_hint", &hint),
            ("post_logout_redirect_uri", &registered),
            ("state", "s t/a+te"),
        ],
    )
    .await;
    assert_eq!(page.status, 303);
    let location = page.hops[0].location.clone().unwrap();
    assert!(location.starts_with(&registered));
    assert_eq!(param(&location, "state").as_deref(), Some("s t/a+te"));
    assert_everyone_signed_out(&stack, &browser).await;
}

#[tokio::test]
async fn the_confirmation_page_needs_its_csrf_token() {
    let stack = spawn().await;
    let (browser, _) = signed_in_at_both(&stack).await;
    let page = logout_with(&stack, &browser, &[]).await;
    let refused = browser
        .post_form(&format!("{}/logout/confirm", stack.issuer), &[])
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        prompt_none_error(&stack, &browser).await,
        None,
        "nothing changed"
    );
    let done = browser.submit(&page, "/logout/confirm", &[]).await;
    assert_eq!(done.status, 200);
    assert!(done.body.contains("You are signed out"));
    assert_eq!(done.headers["clear-site-data"], "\"cookies\"");
    assert_everyone_signed_out(&stack, &browser).await;
}

#[tokio::test]
async fn logout_tokens_are_shaped_as_the_spec_says() {
    let stack = spawn().await;
    // A client whose back-channel endpoint records what it receives.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route(
        "/bcl",
        axum::routing::post(move |body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                axum::http::StatusCode::OK
            }
        }),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let redirect = "http://127.0.0.1:9/cb";
    register(
        &stack.store,
        "recorder",
        "Recorder",
        Some("recorder-secret"),
        &[redirect],
        AuthMethod::ClientSecretBasic,
        true,
        Alg::ES256,
        stack.clock.unix(),
    )
    .await;
    crate::harness::update_client(&stack.store, "recorder", |c| {
        c.backchannel_logout_uri = Some(format!("http://rec.localhost:{port}/bcl"));
    })
    .await
    .unwrap();

    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_b, ALICE).await;
    let req = stack.authorize_url("recorder", redirect, &[]);
    assert!(
        browser
            .follow_until(req.url.as_str(), redirect)
            .await
            .url
            .as_str()
            .starts_with(redirect)
    );
    let (_, me_b) = me(&browser, &stack.app_b).await;
    sign_out_everywhere(&stack, &browser).await;

    let body = tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .unwrap()
        .unwrap();
    server.abort();
    let token = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .unwrap()
        .1
        .into_owned();
    let header = jwt_part(&token, 0);
    assert_eq!(header["typ"], "logout+jwt");
    assert_eq!(header["alg"], "ES256", "the client's registered algorithm");
    let c = jwt_part(&token, 1);
    assert_eq!(c["iss"], stack.issuer);
    assert_eq!(c["aud"], "recorder");
    assert_eq!(c["sid"], me_b["provider_sid"]);
    assert_eq!(c["sub"], me_b["sub"]);
    assert!(c["events"][EVENT].is_object(), "{c}");
    assert!(c.get("nonce").is_none());
    assert!(c["jti"].as_str().is_some_and(|j| !j.is_empty()));
    let (iat, exp) = (c["iat"].as_i64().unwrap(), c["exp"].as_i64().unwrap());
    assert!(
        (iat - stack.clock.unix()).abs() <= 5 && exp > iat && exp - iat <= 300,
        "{c}"
    );
    // And the provider's own key verifies it.
    let verified: serde_json::Value = stack
        .provider
        .keys
        .current()
        .verify(
            &token,
            "logout+jwt",
            &stack.issuer,
            "recorder",
            stack.clock.unix(),
        )
        .unwrap();
    assert_eq!(verified["sid"], c["sid"]);
}

#[tokio::test]
async fn a_queued_logout_survives_a_provider_restart() {
    let mut stack = spawn().await;
    let (browser, sid) = signed_in_at_both(&stack).await;
    // Retries come only when the test moves time (see above).
    stack.clock.freeze();
    stack.stop_app_a().await;
    let ended = provider::logout::end_of_handle(
        &stack.provider.store,
        &stack.provider.sessions,
        &sid,
        None,
        sessions::EndCause::Revoked,
    )
    .await
    .unwrap()
    .unwrap();
    provider::logout::end(&stack.provider, &[ended])
        .await
        .unwrap();
    signed_out(&browser, &stack.app_b, "App B signed out").await;
    // The provider goes down with App A's delivery still pending, and comes back.
    stack.restart_provider().await;
    stack.start_app_a().await;
    assert_eq!(me(&browser, &stack.app_a).await.0, 200, "not yet told");
    // Past the backoff, and past the claim of a delivery the stopped process had in flight.
    stack.clock.advance(Duration::from_secs(60));
    signed_out(
        &browser,
        &stack.app_a,
        "the new provider process delivered it",
    )
    .await;
}

/// An online refresh token of App A, issued through `browser`'s SSO session.
async fn online_refresh_token(stack: &Stack, browser: &Browser) -> String {
    let (code, verifier) = super::code_with(stack, browser, &[]).await;
    let (status, _, tokens) = stack.redeem_as_app_a(&code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    tokens["refresh_token"].as_str().unwrap().to_owned()
}

/// The `error` of a refresh as App A.
async fn refresh_error(stack: &Stack, refresh_token: &str) -> Option<String> {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    let app = Some((stack.app_a.client_id.as_str(), stack.app_a.secret.as_str()));
    let (_, _, body) = stack.token(&form, app).await;
    body["error"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn the_command_line_ends_whole_sessions() {
    let stack = spawn().await;
    // By user: both apps are told, and the session's online grant dies with it.
    let (browser, _) = signed_in_at_both(&stack).await;
    let rt = online_refresh_token(&stack, &browser).await;
    let out = stack
        .cli(&["sessions", "revoke", "--user", "alice"])
        .await
        .unwrap();
    assert!(out.contains("1 session(s) of alice ended"), "{out}");
    assert_everyone_signed_out(&stack, &browser).await;
    assert_eq!(
        refresh_error(&stack, &rt).await.as_deref(),
        Some("invalid_grant")
    );
    // By sid: the same.
    let (browser, sid) = signed_in_at_both(&stack).await;
    let rt = online_refresh_token(&stack, &browser).await;
    let out = stack
        .cli(&["sessions", "revoke", "--sid", &sid])
        .await
        .unwrap();
    assert!(out.contains(&format!("session {sid} ended")), "{out}");
    assert_everyone_signed_out(&stack, &browser).await;
    assert_eq!(
        refresh_error(&stack, &rt).await.as_deref(),
        Some("invalid_grant")
    );
    let gone = stack
        .cli(&["sessions", "revoke", "--sid", &sid])
        .await
        .unwrap_err();
    assert!(gone.contains("no live session"), "{gone}");
}

#[tokio::test]
async fn another_users_id_token_only_asks_and_changes_nothing_until_the_answer() {
    let stack = spawn().await;
    // Bob's ID token, in an attacker's hands; alice is signed in in her browser.
    let bobs = Browser::new();
    sign_in(&stack, &bobs, &stack.app_a, crate::harness::BOB).await;
    let hint = id_token(&stack, &bobs).await;
    let (browser, _) = signed_in_at_both(&stack).await;
    let back = format!("{}/", stack.app_a.url);
    let query = [
        ("id_token_hint", hint.as_str()),
        ("post_logout_redirect_uri", back.as_str()),
        ("state", "x"),
    ];
    let page = logout_with(&stack, &browser, &query).await;
    assert_eq!(page.status, 200, "a question, not a sign-out");
    assert!(page.body.contains("Sign out of Gatehouse?"));
    assert!(
        page.hops[0].location.is_none(),
        "not sent anywhere before the answer"
    );
    assert!(
        page.hops[0].set_cookies.is_empty(),
        "the cookie is untouched"
    );
    assert!(!page.headers.contains_key("clear-site-data"));
    assert_eq!(
        prompt_none_error(&stack, &browser).await,
        None,
        "still signed in"
    );
    assert_eq!(
        me(&bobs, &stack.app_a).await.0,
        200,
        "bob's session is not ended"
    );
    // The answer signs alice out, everywhere, then back to the app the hint was issued to.
    let done = browser
        .submit_until(&page, "/logout/confirm", &[], &back)
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(done.hops[0].url.path(), "/logout/confirm");
    assert_eq!(param(done.url.as_str(), "state").as_deref(), Some("x"));
    assert_everyone_signed_out(&stack, &browser).await;
    assert_eq!(me(&bobs, &stack.app_a).await.0, 200, "bob's still is not");
}

/// A back-channel logout that crosses a sign-in: it reaches the app after the provider
/// issued the code for that SSO session but before the app wrote its session, and finds
/// nothing to end. The app remembers the ended `sid`, so the session it writes a moment
/// later is found out and refused, instead of living on under a logged-out `sid`.
#[tokio::test]
async fn a_sign_in_that_crosses_a_back_channel_logout_is_refused() {
    let stack = spawn().await;
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_a, ALICE).await;
    let sid = me(&browser, &stack.app_a).await.1["provider_sid"]
        .as_str()
        .unwrap()
        .to_owned();
    // Signed out of App A only; the SSO session goes on.
    browser
        .submit(
            &browser.follow(&format!("{}/", stack.app_a.url)).await,
            "/logout",
            &[],
        )
        .await;
    assert_eq!(me(&browser, &stack.app_a).await.0, 401);
    let start = browser
        .get_once(&format!("{}/login", stack.app_a.url))
        .await;
    let at_provider = browser
        .get_once(&start.hops[0].location.clone().unwrap())
        .await;
    let callback = at_provider.hops[0].location.clone().unwrap();
    // The logout for this sid arrives now, before the callback.
    let keys = stack.provider.keys.current();
    let token = keys
        .sign(Alg::RS256, "logout+jwt", &claims(&stack, &sid, |_| {}))
        .unwrap();
    assert_eq!(post_logout_token(&stack, &token).await, 200);
    let page = browser.follow(&callback).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(
        page.body.contains("ended while this sign-in"),
        "{}",
        page.body
    );
    assert_eq!(
        me(&browser, &stack.app_a).await.0,
        401,
        "no session under a logged-out sid"
    );
}

/// Accepts connections and never answers; counts them.
async fn black_hole() -> (u16, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(conn);
        }
    });
    (port, accepted, task)
}

/// README "Hostile clients" 4: 300 apps whose back-channel endpoint accepts the connection and
/// never answers (200 behind one host, 100 on hosts of their own) hold their deliveries for
/// the whole test (the attempt timeout is ten minutes here), yet an ordinary sign-out still
/// reaches App A and App B: no batch waits for its slowest member, and one host gets at most
/// `outbound.per_host` connections however many apps point at it.
#[tokio::test]
async fn apps_that_never_answer_do_not_stall_anyone_elses_logout() {
    let stack = spawn_with(Options {
        configure: Some(|c| c.outbound.attempt_timeout = Duration::from_secs(600)),
        ..Options::default()
    })
    .await;
    let per_host = stack.provider.config.outbound.per_host;
    let (shared_port, shared_accepted, _shared) = black_hole().await;
    let (own_port, own_accepted, _own) = black_hole().await;
    let now = stack.clock.unix();
    let mut ids = Vec::new();
    for i in 0..300 {
        let id = format!("hole-{i}");
        let uri = if i < 200 {
            format!("http://shared-hole.localhost:{shared_port}/logout?app={i}")
        } else {
            format!("http://hole-{i}.localhost:{own_port}/logout")
        };
        let metadata = ClientMetadata {
            client_name: Some(id.clone()),
            redirect_uris: vec![HOLE_REDIRECT.into()],
            backchannel_logout_uri: Some(uri),
            ..ClientMetadata::default()
        };
        let who = Registrant {
            client_id: Some(id.clone()),
            first_party: true,
            ..Registrant::default()
        };
        let valid = metadata.validate(&outbound()).unwrap();
        registration::register(&stack.store, valid, &who, now)
            .await
            .unwrap();
        ids.push(id);
    }
    // Bob's session joins all 300 (a code for each), then ends: 300 deliveries that hang.
    let bob = Browser::new();
    sign_in(&stack, &bob, &stack.app_b, BOB).await;
    for id in &ids {
        let request = stack.authorize_url(id, HOLE_REDIRECT, &[]);
        let page = bob.get_once(request.url.as_str()).await;
        assert_eq!(page.status.as_u16(), 303, "{id}: {}", page.body);
    }
    sign_out_everywhere(&stack, &bob).await;
    eventually("every black hole holds its deliveries", || async {
        let own = own_accepted.load(Ordering::SeqCst);
        let shared = shared_accepted.load(Ordering::SeqCst);
        (own >= 100 && shared >= per_host).then_some(())
    })
    .await;

    // Alice's ordinary sign-out reaches both apps meanwhile.
    let (alice, _) = signed_in_at_both(&stack).await;
    sign_out_everywhere(&stack, &alice).await;
    assert_everyone_signed_out(&stack, &alice).await;
    assert_eq!(
        shared_accepted.load(Ordering::SeqCst),
        per_host,
        "one host gets at most outbound.per_host deliveries at once"
    );
}

const HOLE_REDIRECT: &str = "https://hole.example/cb";

/// Registers App B for front-channel logout alone (no back-channel endpoint), from the
/// command line; its front-channel URI and the command's JSON output.
async fn app_b_front_channel_only(stack: &Stack) -> (String, String) {
    let uri = format!("{}/frontchannel-logout", stack.app_b.url);
    let out = stack
        .cli(&[
            "clients",
            "update",
            "app-b",
            "--backchannel-logout-uri",
            "",
            "--frontchannel-logout-uri",
            &uri,
            "--json",
        ])
        .await
        .unwrap();
    (uri, out)
}

/// The `src` of every front-channel frame on a signed-out page (HTML-unescaped).
fn frames(page: &Page) -> Vec<String> {
    page.body
        .split("<iframe class=\"frontchannel\" src=\"")
        .skip(1)
        .filter_map(|rest| {
            rest.split_once('"')
                .map(|(src, _)| src.replace("&#38;", "&").replace("&amp;", "&"))
        })
        .collect()
}

/// Front-Channel Logout 1.0: an app that registered a front-channel logout URI (here App B,
/// with no back-channel endpoint) is framed by the provider's signed-out page, with `iss` and
/// `sid`, under a CSP that allows frames from it alone; loading the frame (as the browser
/// does, without the app's cookie) ends its session. The page then goes on to the app that
/// asked for the sign-out. Only a URI on the app's own origin can be registered.
#[tokio::test]
async fn front_channel_logout_frames_the_apps_that_asked_for_it() {
    let stack = spawn().await;
    let (uri, out) = app_b_front_channel_only(&stack).await;
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["frontchannel_logout_uri"], uri.as_str(), "{out}");
    assert_eq!(shown["frontchannel_logout_session_required"], true);
    assert!(shown.get("backchannel_logout_uri").is_none(), "{out}");
    let discovery = stack.discovery().await;
    assert_eq!(discovery["frontchannel_logout_supported"], true);
    assert_eq!(discovery["frontchannel_logout_session_supported"], true);

    let (browser, sid) = signed_in_at_both(&stack).await;
    let page = provider_logout_from_app_a(&stack, &browser).await;
    assert_eq!(page.status, 200, "the signed-out page, not a redirect yet");
    assert_eq!(page.headers["clear-site-data"], "\"cookies\"");
    let framed = frames(&page);
    assert_eq!(framed.len(), 1, "App B only: {}", page.body);
    assert!(framed[0].starts_with(&uri), "{}", framed[0]);
    assert_eq!(
        param(&framed[0], "iss").as_deref(),
        Some(stack.issuer.as_str())
    );
    assert_eq!(
        param(&framed[0], "sid").as_deref(),
        Some(sid.as_str()),
        "{}",
        framed[0]
    );
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    let app_b_origin = stack.app_b.url.clone();
    assert!(csp.contains(&format!("frame-src {app_b_origin}")), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        page.body
            .contains("sandbox=\"allow-scripts allow-same-origin\"")
    );
    assert!(
        page.body
            .contains(&format!("content=\"2;url={}/?state=", stack.app_a.url)),
        "then back to App A: {}",
        page.body
    );
    signed_out(&browser, &stack.app_a, "App A signed out (back-channel)").await;
    assert_eq!(me(&browser, &stack.app_b).await.0, 200, "App B not yet");

    // The frame's request carries no App B cookie (a third-party frame): the sid does it.
    let frame = Browser::new();
    let wrong_iss = framed[0].replace(
        &format!("iss={}", url_encoded(&stack.issuer)),
        "iss=https%3A%2F%2Fevil.example",
    );
    assert_ne!(wrong_iss, framed[0]);
    assert_eq!(frame.get_once(&wrong_iss).await.status, 400);
    assert_eq!(frame.get_once(&uri).await.status, 400, "no sid");
    assert_eq!(
        me(&browser, &stack.app_b).await.0,
        200,
        "refusals end nothing"
    );
    let loaded = frame.get_once(&framed[0]).await;
    assert_eq!(loaded.status, 200);
    assert_eq!(loaded.headers["cache-control"], "no-store");
    let ancestors = loaded.headers["content-security-policy"].to_str().unwrap();
    let issuer_origin = url::Url::parse(&stack.issuer)
        .unwrap()
        .origin()
        .ascii_serialization();
    assert_eq!(
        ancestors,
        format!("default-src 'none'; frame-ancestors {issuer_origin}")
    );
    assert_eq!(me(&browser, &stack.app_b).await.0, 401, "App B signed out");

    // Anyone can send that request: it ends what exists and locks nobody out. A forged one
    // for App A's live session signs App A out, and the person signs in again at once.
    let other = Browser::new();
    sign_in(&stack, &other, &stack.app_a, ALICE).await;
    let live = me(&other, &stack.app_a).await.1["provider_sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let forged = format!(
        "{}/frontchannel-logout?iss={}&sid={live}",
        stack.app_a.url,
        url_encoded(&stack.issuer)
    );
    assert_eq!(Browser::new().get_once(&forged).await.status, 200);
    assert_eq!(me(&other, &stack.app_a).await.0, 401);
    sign_in(&stack, &other, &stack.app_a, ALICE).await;
    assert_eq!(me(&other, &stack.app_a).await.0, 200, "not locked out");

    // Only the app's own origin, as a registered redirect URI has it.
    for bad in [
        "https://evil.example/fc",
        "http://app-a.localhost:1/fc",
        &format!("{uri}#x"),
    ] {
        let err = stack
            .cli(&[
                "clients",
                "update",
                "app-b",
                "--frontchannel-logout-uri",
                bad,
            ])
            .await
            .unwrap_err();
        assert!(err.contains("frontchannel_logout_uri"), "{bad}: {err}");
    }
}

fn url_encoded(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// "Sign out everywhere" on the provider's sessions page ends this browser's session too: its
/// apps that asked for front-channel logout are framed as on the signed-out page (the other
/// sessions' apps hear by back-channel); without such apps it goes home as before.
#[tokio::test]
async fn signing_out_everywhere_at_the_provider_frames_this_sessions_apps() {
    let stack = spawn().await;
    let (browser, _) = signed_in_at_both(&stack).await;
    let page = sign_out_everywhere_page(&stack, &browser).await;
    assert_eq!(
        page.hops[0].status, 303,
        "no front-channel app: home as before"
    );

    app_b_front_channel_only(&stack).await;
    let (browser, sid) = signed_in_at_both(&stack).await;
    let page = sign_out_everywhere_page(&stack, &browser).await;
    assert_eq!(page.hops[0].status, 200, "{}", page.body);
    let framed = frames(&page);
    assert_eq!(framed.len(), 1, "{}", page.body);
    assert_eq!(param(&framed[0], "sid").as_deref(), Some(sid.as_str()));
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains(&format!("frame-src {}", stack.app_b.url)),
        "{csp}"
    );
    assert!(
        page.hops[0]
            .set_cookies
            .iter()
            .any(|c| c.starts_with("gatehouse_sso=") && c.contains("Max-Age=0")),
        "the cookie is dropped"
    );
    assert_eq!(Browser::new().get_once(&framed[0]).await.status, 200);
    assert_eq!(me(&browser, &stack.app_b).await.0, 401, "App B signed out");
}

/// Posts "Sign out everywhere" on the provider's sessions page; its answer, not followed.
async fn sign_out_everywhere_page(stack: &Stack, browser: &Browser) -> Page {
    let page = browser
        .follow(&format!("{}/account/sessions", stack.issuer))
        .await;
    let csrf = page.hidden("csrf_token").unwrap();
    browser
        .post_once(
            &format!("{}/account/sessions/revoke-all", stack.issuer),
            &[("csrf_token", csrf.as_str())],
        )
        .await
}
