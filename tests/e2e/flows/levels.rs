//! Levels of sign-in over HTTP: the `acr` and `amr` of ID tokens and access tokens (OIDC Core
//! §2, RFC 8176, RFC 9068 §2.2.1), kept by refreshes; step-up (`acr_values`), which keeps the
//! SSO session and asks only for the missing factor, then App B's Settings page that needs
//! it; `max_age` asking both factors again; and the levels an account cannot reach: a
//! voluntary one reported in `acr`, an essential one (`claims`, an operator's `require_mfa`)
//! refused with `unmet_authentication_requirements`.

use super::factors::{code, set_up, wrong};
use super::{code_with, me};
use crate::harness::{ALICE, BOB, Browser, Page, Stack, jwt_part, param, spawn};
use std::time::Duration;

const PWD: &str = "urn:gatehouse:acr:pwd";
const MFA: &str = "urn:gatehouse:acr:mfa";

/// Redeems a code for App A: the ID token's claims, the access token's, and the response.
async fn tokens(
    stack: &Stack,
    code: &str,
    verifier: &str,
) -> (serde_json::Value, serde_json::Value, serde_json::Value) {
    let (status, _, body) = stack.redeem_as_app_a(code, verifier).await;
    assert_eq!(status, 200, "{body}");
    let id = jwt_part(body["id_token"].as_str().unwrap(), 1);
    let access = jwt_part(body["access_token"].as_str().unwrap(), 1);
    (id, access, body)
}

/// Signs `browser` in through App A (password, then code if asked, then consent).
async fn sign_in_at_app_a(stack: &Stack, browser: &Browser, secret: Option<&str>) -> Page {
    let login = browser.follow(&format!("{}/login", stack.app_a.url)).await;
    let fields = [("username", ALICE.0), ("password", ALICE.1)];
    let mut page = browser.submit(&login, "/login", &fields).await;
    if let Some(secret) = secret {
        let now = code(secret, stack.clock.unix());
        page = browser
            .submit(&page, "/login/code", &[("code", &now)])
            .await;
    }
    if page
        .url
        .as_str()
        .starts_with(&format!("{}/consent", stack.issuer))
    {
        page = browser
            .submit(&page, "/consent", &[("decision", "allow")])
            .await;
    }
    assert!(
        page.body.contains(r#"id="status">Signed in"#),
        "{}",
        page.body
    );
    page
}

/// The `error` an authorization request for App A with `extra` gets in `browser`.
async fn refusal(stack: &Stack, browser: &Browser, extra: &[(&str, &str)]) -> Option<String> {
    let req = stack.authorize_url(&stack.app_a.client_id, &stack.app_a.redirect_uri, extra);
    let page = browser.get_once(req.url.as_str()).await;
    let location = page.hops[0].location.clone().unwrap_or_default();
    assert!(
        location.starts_with(&stack.app_a.redirect_uri),
        "{location}: {}",
        page.body
    );
    param(&location, "error")
}

fn amr(claims: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(claims["amr"].clone()).unwrap()
}

#[tokio::test]
async fn tokens_say_how_the_person_signed_in_and_refreshes_keep_it() {
    let stack = spawn().await;
    let discovery = stack.discovery().await;
    assert_eq!(
        discovery["acr_values_supported"],
        serde_json::json!([PWD, MFA])
    );
    assert_eq!(discovery["claims_parameter_supported"], true);

    // A password: one factor.
    let (browser, c, verifier) = super::code_for_app_a(&stack, &[]).await;
    let (id, access, body) = tokens(&stack, &c, &verifier).await;
    assert_eq!(id["acr"], PWD);
    assert_eq!(amr(&id), ["pwd"]);
    assert_eq!(
        (access["acr"].as_str(), amr(&access)),
        (Some(PWD), vec!["pwd".to_owned()])
    );

    // A password and a code: two, and a refresh says so again.
    let (secret, _) = set_up(&stack, &browser).await;
    let second = Browser::new();
    sign_in_at_app_a(&stack, &second, Some(&secret)).await;
    let (c, verifier) = code_with(&stack, &second, &[]).await;
    let (id, access, body2) = tokens(&stack, &c, &verifier).await;
    assert_eq!(id["acr"], MFA);
    assert_eq!(amr(&id), ["pwd", "otp", "mfa"]);
    assert_eq!(access["acr"], MFA);
    stack.clock.advance(Duration::from_secs(120));
    let refresh = body2["refresh_token"].as_str().expect("a refresh token");
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let basic = (stack.app_a.client_id.as_str(), stack.app_a.secret.as_str());
    let (status, _, refreshed) = stack.token(&form, Some(basic)).await;
    assert_eq!(status, 200, "{refreshed}");
    let again = jwt_part(refreshed["id_token"].as_str().unwrap(), 1);
    assert_eq!(
        (again["acr"].clone(), again["amr"].clone()),
        (id["acr"].clone(), id["amr"].clone())
    );
    assert_eq!(again["auth_time"], id["auth_time"]);
    // The first grant, from a password alone, stays at one factor when refreshed.
    let refresh = body["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let (_, _, refreshed) = stack.token(&form, Some(basic)).await;
    assert_eq!(
        jwt_part(refreshed["id_token"].as_str().unwrap(), 1)["acr"],
        PWD
    );
}

#[tokio::test]
async fn step_up_asks_only_the_missing_factor_and_keeps_the_session() {
    let stack = spawn().await;
    let alice = Browser::new();
    super::sign_in(&stack, &alice, &stack.app_b, ALICE).await;
    let (secret, _) = set_up(&stack, &alice).await;
    let sid = me(&alice, &stack.app_b).await.1["provider_sid"].clone();
    let sessions_page = format!("{}/account/sessions", stack.issuer);
    let listed = alice.follow(&sessions_page).await;
    assert!(listed.body.contains("<td>Password</td>"), "{}", listed.body);
    let cookies = alice.cookies_for(&stack.issuer);
    // Six minutes on: the password is no longer fresh enough for sensitive actions.
    stack.clock.advance(Duration::from_secs(6 * 60));
    let stepped_up = stack.clock.unix();

    // Without a person at the browser, nothing can ask for the code: an essential level is
    // refused, a voluntary one answered at the level reached (here: consent is still due).
    let essential = format!(r#"{{"id_token":{{"acr":{{"essential":true,"values":["{MFA}"]}}}}}}"#);
    let asked = [("claims", essential.as_str()), ("prompt", "none")];
    assert_eq!(
        refusal(&stack, &alice, &asked).await.as_deref(),
        Some("interaction_required")
    );
    let voluntary = [("acr_values", MFA), ("prompt", "none")];
    assert_eq!(
        refusal(&stack, &alice, &voluntary).await.as_deref(),
        Some("consent_required")
    );

    // Another tab waits for a sign-in of its own (prompt=login), made before the step-up.
    let extra = [("prompt", "login")];
    let tab = stack.authorize_url(&stack.app_a.client_id, &stack.app_a.redirect_uri, &extra);
    let tab = alice.follow(tab.url.as_str()).await;
    assert!(tab.body.contains(r#"name="password""#), "{}", tab.body);
    stack.clock.advance(Duration::from_secs(2));

    // App B's Settings page needs two factors: the provider asks for the code only.
    let page = alice.follow(&format!("{}/settings", stack.app_b.url)).await;
    assert!(
        page.url
            .as_str()
            .starts_with(&format!("{}/login", stack.issuer)),
        "{}",
        page.url
    );
    assert!(
        page.body.contains(r#"id="step-up-notice""#),
        "{}",
        page.body
    );
    assert!(page.body.contains("App B"), "{}", page.body);
    assert!(
        !page.body.contains(r#"name="password""#),
        "no password asked: {}",
        page.body
    );
    let now = code(&secret, stack.clock.unix());
    let refused = alice
        .submit(&page, "/login/step-up", &[("code", &wrong(&now))])
        .await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(
        refused.body.contains(r#"id="step-up-notice""#),
        "{}",
        refused.body
    );
    // Without the session's CSRF token nothing happens.
    let request = refused.hidden("request").unwrap();
    let forged = alice
        .post_form(
            &format!("{}/login/step-up", stack.issuer),
            &[("request", request.as_str()), ("code", now.as_str())],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let settings = alice
        .submit(&refused, "/login/step-up", &[("code", &now)])
        .await;
    assert!(
        settings
            .url
            .as_str()
            .starts_with(&format!("{}/settings", stack.app_b.url)),
        "{}",
        settings.url
    );
    assert!(
        settings
            .body
            .contains(&format!(r#"id="settings-acr">{MFA}"#)),
        "{}",
        settings.body
    );
    assert!(settings.body.contains("pwd, otp, mfa"), "{}", settings.body);

    // The same SSO session, under a new id, now signed in with two factors at a new time.
    assert_eq!(me(&alice, &stack.app_b).await.1["provider_sid"], sid);
    assert_ne!(
        alice.cookies_for(&stack.issuer),
        cookies,
        "a new session id"
    );
    let (c, verifier) = consented_code(&stack, &alice).await;
    let (id, _, _) = tokens(&stack, &c, &verifier).await;
    assert_eq!(
        (id["acr"].as_str(), id["sid"].clone()),
        (Some(MFA), sid.clone())
    );
    assert!(id["auth_time"].as_i64().unwrap() >= stepped_up, "{id}");
    // The other tab still wants the password: a step-up is no sign-in made for it.
    let reloaded = alice.follow(tab.url.as_str()).await;
    assert!(
        reloaded.body.contains(r#"name="password""#),
        "{}",
        reloaded.body
    );
    // Settings open at once now; a request that names no level gets the session's.
    let again = alice.follow(&format!("{}/settings", stack.app_b.url)).await;
    assert!(again.body.contains(r#"id="settings""#), "{}", again.body);
    let audit = stack.cli(&["audit", "tail", "-n", "200"]).await.unwrap();
    assert!(audit.contains("sign_in.stepped_up"), "{audit}");
    let listed = alice.follow(&sessions_page).await;
    assert!(
        listed.body.contains("<td>Password and code</td>"),
        "{}",
        listed.body
    );
    // A code alone is no fresh password: disconnecting an app still asks for it.
    let apps = alice
        .follow(&format!("{}/account/apps", stack.issuer))
        .await;
    let again = alice
        .submit(&apps, "/account/apps/disconnect", &[("client_id", "app-a")])
        .await;
    assert!(
        again.body.contains(r#"id="sign-in-again-notice""#),
        "{}",
        again.body
    );
    // An essential level is answered with one of the values asked (OIDC Core §5.5.1.1).
    let pwd = format!(r#"{{"id_token":{{"acr":{{"essential":true,"values":["{PWD}"]}}}}}}"#);
    let (c, verifier) = consented_code_with(&stack, &alice, &[("claims", &pwd)]).await;
    let (id, _, _) = tokens(&stack, &c, &verifier).await;
    assert_eq!((id["acr"].as_str(), amr(&id).len()), (Some(PWD), 3));

    // A request that wants the password again cannot be finished with a code alone.
    stack.clock.advance(Duration::from_secs(2));
    let extra = [("prompt", "login")];
    let req = stack.authorize_url(&stack.app_a.client_id, &stack.app_a.redirect_uri, &extra);
    let login = alice.follow(req.url.as_str()).await;
    assert!(login.body.contains(r#"name="password""#), "{}", login.body);
    let request = login.hidden("request").unwrap();
    let csrf = login.hidden("csrf_token").unwrap();
    stack.clock.advance(Duration::from_secs(30));
    let now = code(&secret, stack.clock.unix());
    let fields = [
        ("csrf_token", csrf.as_str()),
        ("request", request.as_str()),
        ("code", now.as_str()),
    ];
    let refused = alice
        .post_form(&format!("{}/login/step-up", stack.issuer), &fields)
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("code alone"), "{}", refused.body);

    // max_age older than the sign-in: both factors again, and still the same session.
    stack.clock.advance(Duration::from_secs(120));
    let asked_again = stack.clock.unix();
    let req = stack.authorize_url(
        &stack.app_a.client_id,
        &stack.app_a.redirect_uri,
        &[("max_age", "60")],
    );
    let login = alice.follow(req.url.as_str()).await;
    assert!(login.body.contains(r#"name="password""#), "{}", login.body);
    let fields = [("username", ALICE.0), ("password", ALICE.1)];
    let code_page = alice.submit(&login, "/login", &fields).await;
    assert!(
        code_page.body.contains(r#"action="/login/code""#),
        "{}",
        code_page.body
    );
    let done = alice
        .submit_until(
            &code_page,
            "/login/code",
            &[("code", &code(&secret, stack.clock.unix()))],
            &stack.app_a.redirect_uri,
        )
        .await;
    let c = param(done.url.as_str(), "code").expect("a code");
    let (id, _, _) = tokens(&stack, &c, &req.verifier).await;
    assert_eq!((id["acr"].as_str(), id["sid"].clone()), (Some(MFA), sid));
    assert!(id["auth_time"].as_i64().unwrap() >= asked_again, "{id}");
}

/// A code for App A in `browser`, consenting first if asked.
async fn consented_code(stack: &Stack, browser: &Browser) -> (String, String) {
    consented_code_with(stack, browser, &[]).await
}

/// [`consented_code`] for a request with `extra` parameters.
async fn consented_code_with(
    stack: &Stack,
    browser: &Browser,
    extra: &[(&str, &str)],
) -> (String, String) {
    let req = stack.authorize_url(&stack.app_a.client_id, &stack.app_a.redirect_uri, extra);
    let redirect = stack.app_a.redirect_uri.as_str();
    let page = browser.follow_until(req.url.as_str(), redirect).await;
    let page = if page
        .url
        .as_str()
        .starts_with(&format!("{}/consent", stack.issuer))
    {
        let allow = [("decision", "allow")];
        browser
            .submit_until(&page, "/consent", &allow, redirect)
            .await
    } else {
        page
    };
    assert!(
        page.url.as_str().starts_with(redirect),
        "{}: {}",
        page.url,
        page.body
    );
    (
        param(page.url.as_str(), "code").expect("a code"),
        req.verifier,
    )
}

#[tokio::test]
async fn a_level_the_account_cannot_reach_is_reported_when_asked_and_refused_when_essential() {
    let stack = spawn().await;
    let bob = Browser::new();
    super::sign_in(&stack, &bob, &stack.app_b, BOB).await;

    // Voluntary: bob has no second factor, so the sign-in comes back at one, and the page
    // says how to add one instead of sending him round again.
    let page = bob.follow(&format!("{}/settings", stack.app_b.url)).await;
    assert!(
        page.url
            .as_str()
            .starts_with(&format!("{}/settings?after=sign-in", stack.app_b.url)),
        "{}",
        page.url
    );
    assert!(
        page.body.contains(r#"id="settings-refused""#),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("{}/account/security", stack.issuer)),
        "{}",
        page.body
    );

    // Essential, in `claims` (OIDC Core §5.5.1.1): refused.
    let essential = format!(r#"{{"id_token":{{"acr":{{"essential":true,"values":["{MFA}"]}}}}}}"#);
    let unmet = Some("unmet_authentication_requirements");
    assert_eq!(
        refusal(&stack, &bob, &[("claims", &essential)])
            .await
            .as_deref(),
        unmet
    );
    // A level nobody here answers for, essential: refused too; malformed claims are invalid.
    let unknown = r#"{"id_token":{"acr":{"essential":true,"value":"urn:elsewhere:gold"}}}"#;
    assert_eq!(
        refusal(&stack, &bob, &[("claims", unknown)])
            .await
            .as_deref(),
        unmet
    );
    assert_eq!(
        refusal(&stack, &bob, &[("claims", "{not json")])
            .await
            .as_deref(),
        Some("invalid_request")
    );

    // An operator requires two factors for App A: every request of it, whatever it asks.
    let shown = stack
        .cli(&["clients", "update", "app-a", "--require-mfa", "true"])
        .await
        .unwrap();
    assert!(shown.contains("requires 2 factors yes"), "{shown}");
    let audit = stack.cli(&["audit", "tail", "-n", "50"]).await.unwrap();
    assert!(
        audit.contains("require_mfa true, by an operator"),
        "{audit}"
    );
    assert_eq!(
        refusal(&stack, &bob, &[("acr_values", PWD)])
            .await
            .as_deref(),
        unmet
    );
    // alice, with a second factor, is asked for it.
    let alice = Browser::new();
    super::sign_in(&stack, &alice, &stack.app_b, ALICE).await;
    set_up(&stack, &alice).await;
    let req = stack.authorize_url(&stack.app_a.client_id, &stack.app_a.redirect_uri, &[]);
    let page = alice.follow(req.url.as_str()).await;
    assert!(
        page.body.contains(r#"id="step-up-notice""#),
        "{}",
        page.body
    );
    // A registration update does not lift the operator's requirement.
    crate::harness::update_client(&stack.store, "app-a", |m| {
        m.client_name = Some("App A2".into())
    })
    .await
    .unwrap();
    assert_eq!(refusal(&stack, &bob, &[]).await.as_deref(), unmet);
    stack
        .cli(&["clients", "update", "app-a", "--require-mfa", "false"])
        .await
        .unwrap();

    // A client's default_acr_values asks when its requests name no level.
    crate::harness::update_client(&stack.store, "app-a", |m| {
        m.default_acr_values = Some(vec![MFA.into()])
    })
    .await
    .unwrap();
    let page = alice.follow(req.url.as_str()).await;
    assert!(
        page.body.contains(r#"id="step-up-notice""#),
        "{}",
        page.body
    );
    // ... voluntarily: bob, without a factor, is signed in at one (after consenting).
    let (c, verifier) = consented_code(&stack, &bob).await;
    let (id, _, body) = tokens(&stack, &c, &verifier).await;
    assert_eq!(id["acr"], PWD);
    // Once an operator requires two factors, that one-factor grant gets no more tokens.
    let set = ["clients", "update", "app-a", "--require-mfa", "true"];
    stack.cli(&set).await.unwrap();
    let refresh = body["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let basic = (stack.app_a.client_id.as_str(), stack.app_a.secret.as_str());
    let (status, _, refused) = stack.token(&form, Some(basic)).await;
    assert_eq!(status.as_u16(), 400, "{refused}");
    assert_eq!(refused["error"], "invalid_grant");
}
