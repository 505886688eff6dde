//! Passkeys over HTTP (WebAuthn Level 3), with the software authenticator of
//! `harness::authenticator` answering the options the provider sends: registering on
//! "Security" (a recent sign-in only), signing in with a passkey alone (`hwk`/`swk`, `user`,
//! two factors), as the second step after a password, and as a step-up; each answer once,
//! under a race too; and the refusals: another origin, no user verification, a counter put
//! back, another account's user handle, a credential registered twice, a forged or missing
//! ceremony.

use super::me;
use crate::harness::authenticator::SoftKey;
use crate::harness::{ALICE, Browser, Page, Stack, jwt_part, param, spawn};
use std::time::Duration;

const MFA: &str = "urn:gatehouse:acr:mfa";

/// The JSON answer to a passkey sign-in options request for `purpose` posted from `page`
/// (its CSRF token).
async fn options(browser: &Browser, page: &Page, path: &str, purpose: &str) -> Page {
    options_with(browser, page, path, &[("purpose", purpose)]).await
}

/// The JSON answer to a passkey options request with `fields`, posted from `page`.
async fn options_with(browser: &Browser, page: &Page, path: &str, fields: &[(&str, &str)]) -> Page {
    let csrf = page.hidden("csrf_token").expect("a CSRF token");
    let url = page.url.join(path).unwrap();
    let mut all = vec![("csrf_token", csrf.as_str())];
    all.extend_from_slice(fields);
    browser.post_once(url.as_str(), &all).await
}

/// Registers `key` as `name` for the account `browser` is signed in as (recently): the page
/// the registration ends on.
async fn register(stack: &Stack, browser: &Browser, key: &mut SoftKey, name: &str) -> Page {
    let security = browser
        .follow(&format!("{}/account/security", stack.issuer))
        .await;
    assert_eq!(security.status, 200, "{}", security.body);
    let path = "/account/security/passkeys/options";
    let asked = options_with(browser, &security, path, &[("name", name)]).await;
    if asked.status != 200 {
        return asked;
    }
    let answer = key.register(&asked.json());
    let fields = [("name", name), ("credential", answer.as_str())];
    browser
        .submit(&security, "/account/security/passkeys", &fields)
        .await
}

/// Alice, signed in with her password in `browser`, with `key` registered as "Laptop".
async fn alice_with_a_passkey(stack: &Stack, browser: &Browser, key: &mut SoftKey) {
    super::sign_in(stack, browser, &stack.app_b, ALICE).await;
    let done = register(stack, browser, key, "Laptop").await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("Your passkey was added."),
        "{}",
        done.body
    );
    assert!(done.body.contains("Laptop"), "{}", done.body);
}

/// The sign-in page of an authorization request for App A (with `extra`) in `browser`, and
/// the request's PKCE verifier.
async fn login_for_app_a(
    stack: &Stack,
    browser: &Browser,
    extra: &[(&str, &str)],
) -> (Page, String) {
    let req = stack.authorize_url(&stack.app_a.client_id, &stack.app_a.redirect_uri, extra);
    let page = browser
        .follow_until(req.url.as_str(), &stack.app_a.redirect_uri)
        .await;
    (page, req.verifier)
}

/// Posts `answer` with `page`'s form to `action`, consents if asked, and returns App A's
/// code, or the page it stopped on.
async fn answer_to(
    stack: &Stack,
    browser: &Browser,
    page: &Page,
    action: &str,
    answer: &str,
) -> Result<String, Page> {
    let redirect = stack.app_a.redirect_uri.as_str();
    let fields = [("credential", answer)];
    let mut page = browser.submit_until(page, action, &fields, redirect).await;
    if page
        .url
        .as_str()
        .starts_with(&format!("{}/consent", stack.issuer))
    {
        let allow = [("decision", "allow")];
        page = browser
            .submit_until(&page, "/consent", &allow, redirect)
            .await;
    }
    match param(page.url.as_str(), "code") {
        Some(code) if page.url.as_str().starts_with(redirect) => Ok(code),
        _ => Err(page),
    }
}

/// The ID token's claims for App A's `code`.
async fn id_token(stack: &Stack, code: &str, verifier: &str) -> serde_json::Value {
    let (status, _, body) = stack.redeem_as_app_a(code, verifier).await;
    assert_eq!(status, 200, "{body}");
    jwt_part(body["id_token"].as_str().unwrap(), 1)
}

/// A sign-in with `key` alone, for App A in a new browser: the answer's outcome.
async fn sign_in_alone(
    stack: &Stack,
    key: &mut SoftKey,
) -> (Browser, Result<String, Page>, String) {
    let browser = Browser::new();
    let (login, verifier) = login_for_app_a(stack, &browser, &[]).await;
    assert!(
        login.body.contains(r#"id="passkey-sign-in""#),
        "{}",
        login.body
    );
    let asked = options(&browser, &login, "/login/passkey/options", "sign-in").await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    let answer = key.sign_in(&asked.json());
    let outcome = answer_to(stack, &browser, &login, "/login/passkey", &answer).await;
    (browser, outcome, verifier)
}

fn refused(outcome: Result<String, Page>, why: &str) {
    match outcome {
        Ok(code) => panic!("signed in ({code}), not refused for {why:?}"),
        Err(page) => {
            assert_eq!(page.status, 401, "{}", page.body);
            assert!(page.body.contains(why), "{why:?}: {}", page.body);
        }
    }
}

#[tokio::test]
async fn a_passkey_signs_in_alone_with_two_factors_and_each_answer_counts_once() {
    let stack = spawn().await;
    let alice = Browser::new();
    let mut key = SoftKey::new(&stack.issuer, false);
    alice_with_a_passkey(&stack, &alice, &mut key).await;
    // "Your sessions" says how this one signed in: a password alone.
    let sessions = alice
        .follow(&format!("{}/account/sessions", stack.issuer))
        .await;
    assert!(
        sessions.body.contains("<td>Password</td>"),
        "{}",
        sessions.body
    );

    let (browser, outcome, verifier) = sign_in_alone(&stack, &mut key).await;
    let code = outcome.unwrap_or_else(|p| panic!("signed in: {}", p.body));
    let id = id_token(&stack, &code, &verifier).await;
    assert_eq!(id["acr"], MFA);
    assert_eq!(id["amr"], serde_json::json!(["hwk", "user", "mfa"]));
    let sessions = browser
        .follow(&format!("{}/account/sessions", stack.issuer))
        .await;
    assert!(
        sessions.body.contains("<td>Passkey</td>"),
        "{}",
        sessions.body
    );
    // A verified passkey is a fresh sign-in: the sensitive actions are open.
    let security = browser
        .follow(&format!("{}/account/security", stack.issuer))
        .await;
    assert!(
        security.body.contains(r#"id="add-passkey""#),
        "{}",
        security.body
    );

    // A synchronised passkey (backup eligible) is a software-secured key.
    let mut synced = SoftKey::new(&stack.issuer, true);
    let done = register(&stack, &alice, &mut synced, "Phone").await;
    assert!(done.body.contains("Phone"), "{}", done.body);
    let (_, outcome, verifier) = sign_in_alone(&stack, &mut synced).await;
    let id = id_token(&stack, &outcome.unwrap(), &verifier).await;
    assert_eq!(id["amr"], serde_json::json!(["swk", "user", "mfa"]));

    // One answer, posted twice at once: the ceremony is taken once, so one signs in.
    let browser = Browser::new();
    let (login, _) = login_for_app_a(&stack, &browser, &[]).await;
    let asked = options(&browser, &login, "/login/passkey/options", "sign-in").await;
    let answer = key.sign_in(&asked.json());
    let (a, b) = tokio::join!(
        answer_to(&stack, &browser, &login, "/login/passkey", &answer),
        answer_to(&stack, &browser, &login, "/login/passkey", &answer),
    );
    // The other finds the ceremony taken, or (if it came after the sign-in) the form's token
    // gone with the pre-login session.
    let lost =
        |r: &Result<String, Page>| matches!(r, Err(p) if [401, 403].contains(&p.status.as_u16()));
    assert!(
        (a.is_ok() && lost(&b)) || (lost(&a) && b.is_ok()),
        "{a:?}\n{b:?}"
    );
    // And once more later, against a ceremony of its own: the challenge signed is not that
    // one's.
    let later = Browser::new();
    let (late, _) = login_for_app_a(&stack, &later, &[]).await;
    let asked = options(&later, &late, "/login/passkey/options", "sign-in").await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    refused(
        answer_to(&stack, &later, &late, "/login/passkey", &answer).await,
        "did not check out",
    );
}

#[tokio::test]
async fn forged_and_misbehaving_answers_are_refused() {
    let stack = spawn().await;
    let alice = Browser::new();
    let mut key = SoftKey::new(&stack.issuer, false);
    alice_with_a_passkey(&stack, &alice, &mut key).await;

    // Another site's page asked the authenticator (a phishing origin).
    key.origin = "http://idp.localhost.evil.localhost:5000".into();
    refused(sign_in_alone(&stack, &mut key).await.1, "did not check out");
    key.origin = url::Url::parse(&stack.issuer)
        .unwrap()
        .origin()
        .ascii_serialization();
    // No user verification: not enough for a passkey.
    key.verifies = false;
    refused(sign_in_alone(&stack, &mut key).await.1, "did not check out");
    key.verifies = true;
    // The answer names another account (its user handle): refused.
    let handle = std::mem::replace(&mut key.user_handle, uuid_bytes());
    refused(sign_in_alone(&stack, &mut key).await.1, "not registered");
    key.user_handle = handle;
    // An unknown credential.
    let mut stranger = SoftKey::new(&stack.issuer, false);
    stranger.user_handle.clone_from(&key.user_handle);
    refused(
        sign_in_alone(&stack, &mut stranger).await.1,
        "not registered",
    );
    // No ceremony started (or another browser's): nothing to answer.
    let browser = Browser::new();
    let (login, _) = login_for_app_a(&stack, &browser, &[]).await;
    let other = Browser::new();
    let (other_login, _) = login_for_app_a(&stack, &other, &[]).await;
    let asked = options(&other, &other_login, "/login/passkey/options", "sign-in").await;
    let answer = key.sign_in(&asked.json());
    refused(
        answer_to(&stack, &browser, &login, "/login/passkey", &answer).await,
        "answered already",
    );
    // Garbage instead of an answer.
    let asked = options(&browser, &login, "/login/passkey/options", "sign-in").await;
    assert_eq!(asked.status, 200);
    refused(
        answer_to(&stack, &browser, &login, "/login/passkey", "{not json").await,
        "did not check out",
    );

    // A counter that went back (a cloned authenticator): refused, and audited.
    key.counter = 5;
    let (_, outcome, _) = sign_in_alone(&stack, &mut key).await;
    assert!(outcome.is_ok(), "counting from 6");
    key.counter = 2;
    refused(sign_in_alone(&stack, &mut key).await.1, "counter went back");
    key.counter = 10;
    assert!(
        sign_in_alone(&stack, &mut key).await.1.is_ok(),
        "forward again"
    );

    // The same credential registered again (by this account, or after a reset by another).
    let again = register(&stack, &alice, &mut key, "Again").await;
    assert_eq!(again.status, 422, "{}", again.body);
    assert!(again.body.contains("registered already"), "{}", again.body);
    // A registration answer for no ceremony, and a name too long: refused, nothing added.
    let security = alice
        .follow(&format!("{}/account/security", stack.issuer))
        .await;
    let mut fresh = SoftKey::new(&stack.issuer, false);
    let forged = fresh.register(&serde_json::json!({
        "publicKey": {"challenge": "AAAA", "user": {"id": "AAAA"}}
    }));
    let fields = [("name", "Forged"), ("credential", forged.as_str())];
    let page = alice
        .submit(&security, "/account/security/passkeys", &fields)
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.body.contains("answered already"), "{}", page.body);
    // A name that will not do is refused before the authenticator is asked.
    for bad in ["x".repeat(65), "   ".to_owned()] {
        let page = register(&stack, &alice, &mut fresh, &bad).await;
        assert_eq!(page.status, 422, "{}", page.body);
        assert!(
            page.json()["error"].as_str().unwrap().contains("name"),
            "{}",
            page.body
        );
    }
    let listed = alice
        .follow(&format!("{}/account/security", stack.issuer))
        .await;
    assert!(!listed.body.contains("Forged"), "{}", listed.body);
    let audit = stack.cli(&["audit", "tail", "-n", "200"]).await.unwrap();
    assert!(audit.contains("counter did not move forward"), "{audit}");

    // The options want the page's CSRF token and a known purpose.
    let url = format!("{}/login/passkey/options", stack.issuer);
    let forged = browser.post_once(&url, &[("purpose", "sign-in")]).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let odd = options(&browser, &login, "/login/passkey/options", "steal").await;
    assert_eq!(odd.status, 400, "{}", odd.body);
    // Nobody waits for a second step in this browser.
    let none = options(&browser, &login, "/login/passkey/options", "second-factor").await;
    assert_eq!(none.status, 403, "{}", none.body);
}

/// Sixteen random bytes, as another account's user handle.
fn uuid_bytes() -> Vec<u8> {
    let mut bytes = vec![0u8; 16];
    rand::fill(&mut bytes[..]);
    bytes
}

#[tokio::test]
async fn a_passkey_is_the_second_step_after_a_password_and_a_step_up() {
    let stack = spawn().await;
    let alice = Browser::new();
    let mut key = SoftKey::new(&stack.issuer, false);
    alice_with_a_passkey(&stack, &alice, &mut key).await;

    // Step-up: this session signed in with a password before the passkey was added; an
    // app asking for two factors gets the passkey asked alone, and the session is kept.
    let (step, verifier) = login_for_app_a(&stack, &alice, &[("acr_values", MFA)]).await;
    assert!(
        step.body.contains(r#"id="step-up-notice""#),
        "{}",
        step.body
    );
    assert!(
        step.body.contains(r#"data-purpose="step-up""#),
        "{}",
        step.body
    );
    // The authenticator naming another account (its user handle): refused.
    let asked = options(&alice, &step, "/login/passkey/options", "step-up").await;
    let own = std::mem::replace(&mut key.user_handle, uuid_bytes());
    let answer = key.sign_in(&asked.json());
    key.user_handle = own;
    refused(
        answer_to(&stack, &alice, &step, "/login/step-up", &answer).await,
        "not registered",
    );
    let asked = options(&alice, &step, "/login/passkey/options", "step-up").await;
    let answer = key.sign_in(&asked.json());
    let code = answer_to(&stack, &alice, &step, "/login/step-up", &answer)
        .await
        .unwrap_or_else(|p| panic!("stepped up: {}", p.body));
    let id = id_token(&stack, &code, &verifier).await;
    assert_eq!(id["acr"], MFA);
    assert_eq!(id["amr"], serde_json::json!(["pwd", "hwk", "user", "mfa"]));

    // A new sign-in: the password, then the passkey (no code field: no authenticator app).
    let browser = Browser::new();
    let (login, verifier) = login_for_app_a(&stack, &browser, &[]).await;
    let fields = [("username", ALICE.0), ("password", ALICE.1)];
    let second = browser.submit(&login, "/login", &fields).await;
    assert!(
        second.body.contains(r#"id="use-passkey""#),
        "{}",
        second.body
    );
    assert!(!second.body.contains(r#"id="code""#), "{}", second.body);
    assert_eq!(me(&browser, &stack.app_a).await.0, 401);
    // The sign-in ceremony is not this one's: a passkey alone posted here is refused.
    let asked = options(&browser, &second, "/login/passkey/options", "sign-in").await;
    let answer = key.sign_in(&asked.json());
    refused(
        answer_to(&stack, &browser, &second, "/login/code", &answer).await,
        "answered already",
    );
    let asked = options(&browser, &second, "/login/passkey/options", "second-factor").await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    let answer = key.sign_in(&asked.json());
    let code = answer_to(&stack, &browser, &second, "/login/code", &answer)
        .await
        .unwrap_or_else(|p| panic!("signed in: {}", p.body));
    let id = id_token(&stack, &code, &verifier).await;
    assert_eq!(id["amr"], serde_json::json!(["pwd", "hwk", "user", "mfa"]));
}

#[tokio::test]
async fn adding_and_removing_a_passkey_needs_a_recent_sign_in_and_an_operator_resets_them() {
    let stack = spawn().await;
    let alice = Browser::new();
    let mut key = SoftKey::new(&stack.issuer, false);
    alice_with_a_passkey(&stack, &alice, &mut key).await;
    let security = alice
        .follow(&format!("{}/account/security", stack.issuer))
        .await;
    let id = security.hidden("id").expect("the passkey's remove form");

    // Ten minutes on, neither adding nor removing: sign in again first.
    stack.clock.advance(Duration::from_secs(600));
    let stale = alice
        .follow(&format!("{}/account/security", stack.issuer))
        .await;
    assert!(
        !stale.body.contains(r#"id="add-passkey""#),
        "{}",
        stale.body
    );
    // (The forms are not on the stale page; the session's token, as an earlier page had it.)
    let path = "/account/security/passkeys/options";
    let asked = options_with(&alice, &security, path, &[("name", "Another")]).await;
    assert_eq!(asked.status, 403, "{}", asked.body);
    assert!(
        asked.json()["error"]
            .as_str()
            .unwrap()
            .contains("Sign in again")
    );
    let csrf = security.hidden("csrf_token").unwrap();
    let url = format!("{}/account/security/passkeys/remove", stack.issuer);
    let removed = alice
        .post_form(&url, &[("csrf_token", &csrf), ("id", &id)])
        .await;
    assert!(removed.url.path().starts_with("/login"), "{}", removed.url);
    let shown = stack.cli(&["users", "mfa", "show", ALICE.0]).await.unwrap();
    assert!(shown.contains(r#"passkey "Laptop""#), "{shown}");

    // Signed in again with the passkey (a whole sign-in): removing works.
    let (browser, outcome, _) = sign_in_alone(&stack, &mut key).await;
    assert!(outcome.is_ok());
    let fresh = browser
        .follow(&format!("{}/account/security", stack.issuer))
        .await;
    let removed = browser
        .submit(&fresh, "/account/security/passkeys/remove", &[("id", &id)])
        .await;
    assert!(
        removed.body.contains("The passkey was removed."),
        "{}",
        removed.body
    );
    assert!(
        removed.body.contains(r#"id="no-passkeys""#),
        "{}",
        removed.body
    );
    refused(sign_in_alone(&stack, &mut key).await.1, "not registered");
    // Removing it again removes nothing.
    let csrf = fresh.hidden("csrf_token").unwrap();
    let again = browser
        .post_form(&url, &[("csrf_token", &csrf), ("id", &id)])
        .await;
    assert!(again.body.contains("removed already"), "{}", again.body);

    // An operator's reset removes every passkey: the password alone signs in again.
    let mut other = SoftKey::new(&stack.issuer, true);
    let done = register(&stack, &browser, &mut other, "Phone").await;
    assert!(done.body.contains("Phone"), "{}", done.body);
    let reset = stack
        .cli(&["users", "mfa", "reset", ALICE.0])
        .await
        .unwrap();
    assert!(reset.contains("1 passkey(s) removed"), "{reset}");
    let b = Browser::new();
    let home = super::sign_in(&stack, &b, &stack.app_b, ALICE).await;
    assert!(
        home.body.contains(r#"id="status">Signed in"#),
        "{}",
        home.body
    );
}
