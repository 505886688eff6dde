//! Second factors over HTTP (RFC 6238 TOTP): setting up an authenticator app on "Security",
//! then signing in with its code after the password, each code once, recovery codes once,
//! wrong codes throttled, a password change between the two steps winning, and removal.
//! The codes are computed here from the seed the page shows, as an authenticator app would.

use super::me;
use crate::harness::{ALICE, Browser, Page, Stack, spawn};
use std::time::Duration;

/// The six-digit code for seed `secret` (base32) at unix time `at`.
pub(super) fn code(secret: &str, at: i64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret).unwrap();
    totp_rs::Builder::new()
        .with_secret(secret)
        .with_account_name("test")
        .build()
        .unwrap()
        .generate(u64::try_from(at).unwrap())
        .to_string()
}

/// A code that is surely not `right` (each digit moved on by one).
pub(super) fn wrong(right: &str) -> String {
    right
        .chars()
        .map(|c| char::from_digit((c.to_digit(10).unwrap() + 1) % 10, 10).unwrap())
        .collect()
}

/// The `<code>` items of the recovery codes list.
fn recovery_codes(page: &Page) -> Vec<String> {
    let Some(start) = page.body.find(r#"id="recovery-codes""#) else {
        return Vec::new();
    };
    let list = &page.body[start..];
    let end = list.find("</ul>").unwrap();
    list[..end]
        .split("<code>")
        .skip(1)
        .map(|c| c.split("</code>").next().unwrap().to_owned())
        .collect()
}

/// Sets up an authenticator app for the user `browser` is signed in as: its seed and the
/// recovery codes shown once.
pub(super) async fn set_up(stack: &Stack, browser: &Browser) -> (String, Vec<String>) {
    let page = browser
        .follow(&format!("{}/account/security", stack.issuer))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let setup = browser.submit(&page, "/account/security/totp", &[]).await;
    assert!(setup.body.contains("<svg"), "a QR code: {}", setup.body);
    let secret = setup.hidden("secret").expect("the seed");
    // A code from another time does not turn it on.
    let stale = code(&secret, stack.clock.unix() - 3600);
    let wrong = browser
        .submit(
            &setup,
            "/account/security/totp/confirm",
            &[("code", &stale)],
        )
        .await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    let now = code(&secret, stack.clock.unix());
    let done = browser
        .submit(&setup, "/account/security/totp/confirm", &[("code", &now)])
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let codes = recovery_codes(&done);
    assert_eq!(codes.len(), 10, "{}", done.body);
    // Shown once: the page does not list them again.
    let again = browser
        .follow(&format!("{}/account/security", stack.issuer))
        .await;
    assert!(
        again.body.contains(r#"id="totp-status">On"#),
        "{}",
        again.body
    );
    assert!(recovery_codes(&again).is_empty());
    assert!(!again.body.contains(&codes[0]));
    // The confirming code's step is spent: the clock moves on before the first sign-in.
    stack.clock.advance(Duration::from_secs(30));
    (secret, codes)
}

/// In a new browser, the password step of a sign-in at App B: the code page.
async fn password_step(stack: &Stack) -> (Browser, Page) {
    let browser = Browser::new();
    let login = browser.follow(&format!("{}/login", stack.app_b.url)).await;
    let fields = [("username", ALICE.0), ("password", ALICE.1)];
    let page = browser.submit(&login, "/login", &fields).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(r#"action="/login/code""#),
        "{}",
        page.body
    );
    (browser, page)
}

/// The code step: the page it ends on.
async fn code_step(browser: &Browser, page: &Page, code: &str) -> Page {
    browser.submit(page, "/login/code", &[("code", code)]).await
}

fn signed_in_at_app(page: &Page) -> bool {
    page.body.contains(r#"id="status">Signed in"#)
}

#[tokio::test]
async fn an_authenticator_app_is_asked_after_the_password_and_each_code_counts_once() {
    let stack = spawn().await;
    let alice = Browser::new();
    super::sign_in(&stack, &alice, &stack.app_b, ALICE).await;
    let (secret, recovery) = set_up(&stack, &alice).await;

    // The password alone does not sign in: the code page, and the app has no session yet.
    let (browser, page) = password_step(&stack).await;
    assert_eq!(me(&browser, &stack.app_b).await.0, 401);
    let now = code(&secret, stack.clock.unix());
    let refused = code_step(&browser, &page, &wrong(&now)).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(refused.body.contains("not right"), "{}", refused.body);
    let done = code_step(&browser, &refused, &now).await;
    assert!(signed_in_at_app(&done), "{}", done.body);

    // The same code again (same time step) is refused: RFC 6238 §5.2.
    let (replayer, page) = password_step(&stack).await;
    let replayed = code_step(&replayer, &page, &now).await;
    assert_eq!(replayed.status, 401, "{}", replayed.body);
    // The next step's code works.
    stack.clock.advance(Duration::from_secs(30));
    let next = code(&secret, stack.clock.unix());
    assert!(signed_in_at_app(
        &code_step(&replayer, &replayed, &next).await
    ));

    // A recovery code, typed loosely, once.
    let (b, page) = password_step(&stack).await;
    let loose = recovery[0].to_uppercase().replace('-', " ");
    assert!(signed_in_at_app(&code_step(&b, &page, &loose).await));
    let (b, page) = password_step(&stack).await;
    assert_eq!(code_step(&b, &page, &recovery[0]).await.status, 401);
    let security = alice
        .follow(&format!("{}/account/security", stack.issuer))
        .await;
    assert!(
        security.body.contains(r#"id="codes-left">9<"#),
        "{}",
        security.body
    );
    let shown = stack.cli(&["users", "mfa", "show", ALICE.0]).await.unwrap();
    assert!(
        shown.contains("authenticator app on since") && shown.contains("9 recovery code(s) left"),
        "{shown}"
    );
    let audit = stack.cli(&["audit", "tail", "-n", "200"]).await.unwrap();
    for kind in [
        "mfa.enrolled",
        "mfa.recovery_code_used",
        "sign_in.second_factor_failed",
    ] {
        assert!(audit.contains(kind), "{kind}: {audit}");
    }
}

#[tokio::test]
async fn wrong_codes_are_throttled_and_a_new_password_between_the_steps_wins() {
    let stack = spawn().await;
    let alice = Browser::new();
    super::sign_in(&stack, &alice, &stack.app_b, ALICE).await;
    let (secret, _) = set_up(&stack, &alice).await;

    // Five wrong codes are answered; then the account waits, the right code too.
    stack.clock.freeze();
    let (b, mut page) = password_step(&stack).await;
    let right = code(&secret, stack.clock.unix());
    for _ in 0..5 {
        page = code_step(&b, &page, &wrong(&right)).await;
        assert_eq!(page.status, 401, "{}", page.body);
    }
    let waiting = code_step(&b, &page, &right).await;
    assert_eq!(waiting.status, 429, "{}", waiting.body);
    assert!(waiting.headers.contains_key("retry-after"));
    stack.clock.advance(Duration::from_secs(61));
    let right = code(&secret, stack.clock.unix());
    assert!(signed_in_at_app(&code_step(&b, &waiting, &right).await));

    // The password changes between the two steps: the right code no longer signs in.
    let (b, page) = password_step(&stack).await;
    stack
        .cli_with_stdin(
            &["users", "passwd", ALICE.0, "--password-stdin"],
            "a-new-passw0rd\n",
        )
        .await
        .unwrap();
    stack.clock.advance(Duration::from_secs(30));
    let late = code_step(&b, &page, &code(&secret, stack.clock.unix())).await;
    assert_eq!(late.status, 401, "{}", late.body);
    assert!(!signed_in_at_app(&late));
    assert_eq!(me(&b, &stack.app_b).await.0, 401);

    // The operator resets the factors (a lost phone): the new password alone signs in.
    let reset = stack
        .cli(&["users", "mfa", "reset", ALICE.0])
        .await
        .unwrap();
    assert!(reset.contains("removed"), "{reset}");
    let b = Browser::new();
    let home = super::sign_in(&stack, &b, &stack.app_b, (ALICE.0, "a-new-passw0rd")).await;
    assert!(signed_in_at_app(&home), "{}", home.body);
    let audit = stack.cli(&["audit", "tail", "-n", "200"]).await.unwrap();
    assert!(audit.contains("by an operator"), "{audit}");
}

#[tokio::test]
async fn removing_the_app_takes_a_current_code_and_then_the_password_is_enough() {
    let stack = spawn().await;
    let alice = Browser::new();
    super::sign_in(&stack, &alice, &stack.app_b, ALICE).await;
    let (secret, _) = set_up(&stack, &alice).await;
    let page = alice
        .follow(&format!("{}/account/security", stack.issuer))
        .await;
    let now = code(&secret, stack.clock.unix());
    let refused = alice
        .submit(
            &page,
            "/account/security/totp/remove",
            &[("code", &wrong(&now))],
        )
        .await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    // Without the session's CSRF token nothing is removed.
    let forged = alice
        .post_form(
            &format!("{}/account/security/totp/remove", stack.issuer),
            &[("code", &code(&secret, stack.clock.unix()))],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let removed = alice
        .submit(
            &refused,
            "/account/security/totp/remove",
            &[("code", &code(&secret, stack.clock.unix()))],
        )
        .await;
    assert!(removed.body.contains("was removed"), "{}", removed.body);
    assert!(removed.body.contains("Set up an authenticator app"));
    // The password alone signs in again.
    let b = Browser::new();
    let home = super::sign_in(&stack, &b, &stack.app_b, ALICE).await;
    assert!(signed_in_at_app(&home), "{}", home.body);
    let audit = stack.cli(&["audit", "tail", "-n", "200"]).await.unwrap();
    assert!(audit.contains("mfa.removed"), "{audit}");
    let shown = stack.cli(&["users", "mfa", "show", ALICE.0]).await.unwrap();
    assert!(shown.contains("no second factor"), "{shown}");

    // Setting one up again, six minutes after the password: the password is asked first.
    stack.clock.advance(Duration::from_secs(6 * 60));
    let stale = alice
        .follow(&format!("{}/account/security", stack.issuer))
        .await;
    assert!(
        stale.body.contains(r#"id="sign-in-again""#),
        "{}",
        stale.body
    );
    let sessions = alice
        .follow(&format!("{}/account/sessions", stack.issuer))
        .await;
    let csrf = sessions.hidden("csrf_token").unwrap();
    let direct = alice
        .post_form(
            &format!("{}/account/security/totp", stack.issuer),
            &[("csrf_token", csrf.as_str())],
        )
        .await;
    assert!(
        direct.body.contains(r#"id="login-form""#),
        "{}",
        direct.body
    );
    let fields = [("username", ALICE.0), ("password", ALICE.1)];
    let back = alice.submit(&direct, "/login", &fields).await;
    assert_eq!(
        back.url.as_str(),
        format!("{}/account/security", stack.issuer)
    );
    assert!(back.body.contains(r#"id="start-totp""#), "{}", back.body);
}
