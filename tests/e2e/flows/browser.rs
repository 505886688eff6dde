//! The journeys people take, in headless Chromium: cookies, redirects across three sites and
//! SameSite rules are decided by the browser, so they are tested in one.

use super::{me, sign_in};
use crate::harness::chrome::Chrome;
use crate::harness::{ALICE, Browser, Options, Stack, spawn, spawn_with};
use fantoccini::Locator;

/// Signs Chromium in at App A: button, login form, consent; screenshots each step.
async fn sign_in_at_app_a(chrome: &mut Chrome, stack: &Stack) {
    chrome.goto(&format!("{}/", stack.app_a.url)).await;
    assert_eq!(chrome.text("status").await, "You are not signed in.");
    chrome.shot("app-a-signed-out").await;
    chrome.click("login").await;
    chrome
        .wait_for_url(&format!("{}/login", stack.issuer))
        .await;
    chrome.shot("provider-login").await;
    chrome.fill("username", ALICE.0).await;
    chrome.fill("password", ALICE.1).await;
    chrome.click("login-submit").await;
    chrome
        .wait_for_url(&format!("{}/consent", stack.issuer))
        .await;
    chrome.shot("consent").await;
    chrome.click("allow").await;
    chrome.wait_for_url(&format!("{}/", stack.app_a.url)).await;
    chrome.wait_for_text("status", "Signed in").await;
    chrome.shot("app-a-signed-in").await;
}

/// Signs in at App B with the session Chromium already has: no prompt at all.
async fn sso_at_app_b(chrome: &mut Chrome, stack: &Stack) {
    chrome.goto(&format!("{}/", stack.app_b.url)).await;
    chrome.click("login").await;
    // Single sign-on: signed in with no prompt on the way.
    chrome.wait_for_text("status", "Signed in").await;
    let at = chrome.client.current_url().await.unwrap();
    assert!(at.as_str().starts_with(&stack.app_b.url), "{at}");
}

/// Waits until the provider's end-session endpoint has sent Chromium back to App B (with
/// App B's state), which shows the person signed out.
async fn back_at_app_b_signed_out(chrome: &Chrome, stack: &Stack) {
    chrome
        .wait_for_url(&format!("{}/?state=", stack.app_b.url))
        .await;
    chrome
        .wait_for_text("status", "You are not signed in.")
        .await;
}

/// A stack with `Secure`, `__Host-` cookies, as a browser on `*.localhost` takes them.
async fn spawn_secure() -> Stack {
    spawn_with(Options {
        secure_cookies: true,
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn single_sign_on_across_two_sites_with_host_prefixed_secure_cookies() {
    let Some(mut chrome) = Chrome::start("single_sign_on").await else {
        return;
    };
    let stack = spawn_secure().await;
    sign_in_at_app_a(&mut chrome, &stack).await;
    sso_at_app_b(&mut chrome, &stack).await;
    chrome.shot("app-b-single-sign-on").await;
    let sub_a = {
        chrome.goto(&format!("{}/", stack.app_a.url)).await;
        chrome.text("sub").await
    };
    chrome.goto(&format!("{}/", stack.app_b.url)).await;
    assert_eq!(
        chrome.text("sub").await,
        sub_a,
        "the same user at both apps"
    );
    // Each host's session cookie: __Host- prefixed, Secure, HttpOnly, SameSite=Lax, Path=/,
    // host-only, and invisible to scripts.
    for (host, name) in [
        (stack.issuer.clone(), "__Host-gatehouse_sso"),
        (stack.app_a.url.clone(), "__Host-app_a_session"),
        (stack.app_b.url.clone(), "__Host-app_b_session"),
    ] {
        chrome.goto(&format!("{host}/static/style.css")).await;
        let script_sees = chrome
            .client
            .execute("return document.cookie", vec![])
            .await
            .unwrap();
        assert_eq!(
            script_sees, "",
            "{host}: no cookie visible to document.cookie"
        );
        let cookies = chrome.client.get_all_cookies().await.unwrap();
        let c = cookies
            .iter()
            .find(|c| c.name() == name)
            .unwrap_or_else(|| panic!("{name} at {host}: {cookies:?}"));
        assert_eq!(c.http_only(), Some(true), "{name}");
        assert_eq!(c.secure(), Some(true), "{name}");
        assert_eq!(c.same_site(), Some(cookie::SameSite::Lax), "{name}");
        assert_eq!(c.path(), Some("/"), "{name}");
        assert!(
            !c.domain().unwrap_or("").starts_with('.'),
            "{name} is host-only"
        );
        assert_eq!(c.value().len(), 43, "{name} holds only a 256-bit id");
    }
    chrome.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn demo_cookies_are_http_only_and_lax() {
    let Some(mut chrome) = Chrome::start("demo_cookies").await else {
        return;
    };
    let stack = spawn().await;
    sign_in_at_app_a(&mut chrome, &stack).await;
    chrome.goto(&format!("{}/", stack.issuer)).await;
    assert_eq!(
        chrome
            .client
            .execute("return document.cookie", vec![])
            .await
            .unwrap(),
        ""
    );
    let cookies = chrome.client.get_all_cookies().await.unwrap();
    let c = cookies
        .iter()
        .find(|c| c.name() == "gatehouse_sso")
        .expect("the SSO cookie");
    assert_eq!(c.http_only(), Some(true));
    assert_eq!(c.same_site(), Some(cookie::SameSite::Lax));
    assert_eq!(c.path(), Some("/"));
    chrome.shot("provider-home").await;
    chrome.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn consent_is_shown_once_and_remembered() {
    let Some(mut chrome) = Chrome::start("consent_remembered").await else {
        return;
    };
    let stack = spawn().await;
    sign_in_at_app_a(&mut chrome, &stack).await;
    chrome.click("logout").await;
    chrome
        .wait_for_text("status", "You are not signed in.")
        .await;
    chrome.click("login").await;
    // No login, no consent the second time.
    chrome.wait_for_text("status", "Signed in").await;
    let at = chrome.client.current_url().await.unwrap();
    assert_eq!(at.as_str(), format!("{}/", stack.app_a.url));
    chrome.shot("app-a-signed-in-again").await;
    chrome.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn sign_out_everywhere_from_app_b_and_app_a_shows_signed_out_on_reload() {
    let Some(mut chrome) = Chrome::start("sign_out_everywhere").await else {
        return;
    };
    let stack = spawn().await;
    sign_in_at_app_a(&mut chrome, &stack).await;
    sso_at_app_b(&mut chrome, &stack).await;
    chrome.click("logout-everywhere").await;
    // Back from the provider's end_session_endpoint with our state.
    back_at_app_b_signed_out(&chrome, &stack).await;
    chrome.shot("app-b-signed-out-everywhere").await;
    // App A's cookie is still in the browser (Clear-Site-Data from the provider's site does
    // not reach another site): it is the back-channel that ended its session on the server.
    chrome
        .goto(&format!("{}/static/style.css", stack.app_a.url))
        .await;
    let cookies = chrome.client.get_all_cookies().await.unwrap();
    assert!(
        cookies.iter().any(|c| c.name() == "app_a_session"),
        "App A's cookie is kept: {cookies:?}"
    );
    chrome.goto(&format!("{}/", stack.app_a.url)).await;
    assert_eq!(
        chrome.text("status").await,
        "You are not signed in.",
        "App A heard the back-channel logout"
    );
    chrome.shot("app-a-signed-out-on-reload").await;
    chrome.goto(&format!("{}/", stack.issuer)).await;
    assert!(chrome.page_text().await.contains("You are not signed in."));
    chrome.client.clone().close().await.unwrap();
}

/// Front-Channel Logout in a real browser: App A has no back-channel endpoint, only a
/// front-channel one. Signing out everywhere from App B shows the provider's signed-out page,
/// whose CSP lets Chromium frame App A's URI (with `iss` and `sid`); the page then goes back to
/// App B, and App A, which heard of the end only through that frame, shows signed out.
#[tokio::test]
async fn front_channel_logout_reaches_an_app_through_the_browser() {
    let Some(mut chrome) = Chrome::start("front_channel_logout").await else {
        return;
    };
    let stack = spawn().await;
    let uri = format!("{}/frontchannel-logout", stack.app_a.url);
    crate::harness::update_client(&stack.store, "app-a", |c| {
        c.backchannel_logout_uri = None;
        c.frontchannel_logout_uri = Some(uri);
        c.frontchannel_logout_session_required = Some(true);
    })
    .await
    .unwrap();
    sign_in_at_app_a(&mut chrome, &stack).await;
    sso_at_app_b(&mut chrome, &stack).await;
    chrome.click("logout-everywhere").await;
    chrome
        .wait_for_url(&format!("{}/logout", stack.issuer))
        .await;
    chrome.shot("provider-signed-out-with-frames").await;
    back_at_app_b_signed_out(&chrome, &stack).await;
    chrome.goto(&format!("{}/", stack.app_a.url)).await;
    assert_eq!(
        chrome.text("status").await,
        "You are not signed in.",
        "App A heard the front-channel logout"
    );
    chrome.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn revoking_a_session_on_your_sessions_signs_its_app_out() {
    let Some(mut chrome) = Chrome::start("your_sessions").await else {
        return;
    };
    let stack = spawn().await;
    // Another device of Alice's, signed in at App B.
    let other = Browser::new();
    sign_in(&stack, &other, &stack.app_b, ALICE).await;
    let other_sid = me(&other, &stack.app_b).await.1["provider_sid"]
        .as_str()
        .unwrap()
        .to_owned();
    sign_in_at_app_a(&mut chrome, &stack).await;
    chrome.goto(&format!("{}/", stack.issuer)).await;
    chrome.click("your-sessions").await;
    chrome
        .wait_for_url(&format!("{}/account/sessions", stack.issuer))
        .await;
    chrome.shot("your-sessions").await;
    let button = format!("//input[@name='sid' and @value='{other_sid}']/following-sibling::button");
    chrome
        .client
        .find(Locator::XPath(&button))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The notice of the page the revoke redirected to (the URL matches before it lands).
    chrome
        .wait_for_text("notice", "The session was signed out.")
        .await;
    chrome.shot("your-sessions-after-revoke").await;
    let what = "the app of the revoked session signed it out";
    super::signed_out(&other, &stack.app_b, what).await;
    // The outbox records the delivery once the app has answered: a reload soon shows it.
    let page = &chrome;
    crate::harness::eventually("the page shows the delivery", || async move {
        page.client.refresh().await.unwrap();
        page.text("deliveries")
            .await
            .contains("Delivered")
            .then_some(())
    })
    .await;
    assert_eq!(
        chrome.text("notice").await,
        "The session was signed out.",
        "a reload re-submits nothing"
    );
    chrome.shot("your-sessions-delivered").await;
    chrome.goto(&format!("{}/", stack.app_a.url)).await;
    assert_eq!(
        chrome.text("status").await,
        "Signed in",
        "this device is untouched"
    );
    chrome.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_bad_redirect_uri_shows_an_error_and_stays_on_the_provider() {
    let Some(mut chrome) = Chrome::start("bad_redirect_uri").await else {
        return;
    };
    let stack = spawn().await;
    let req = stack.authorize_url("app-a", "http://evil.localhost:9/steal", &[]);
    chrome.goto(req.url.as_str()).await;
    let at = chrome.client.current_url().await.unwrap();
    assert!(
        at.as_str()
            .starts_with(&format!("{}/authorize", stack.issuer)),
        "stayed on the provider: {at}"
    );
    assert!(chrome.page_text().await.contains("redirect_uri mismatch"));
    chrome.shot("bad-redirect-uri").await;
    chrome.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_developer_registers_an_app_with_the_keyboard_alone() {
    use fantoccini::key::Key;
    let Some(mut chrome) = Chrome::start("developer_console").await else {
        return;
    };
    let stack = spawn().await;
    sign_in_at_app_a(&mut chrome, &stack).await;
    chrome.goto(&format!("{}/", stack.issuer)).await;
    chrome.tab_to("developer-console").await;
    chrome.press(Key::Enter).await;
    chrome
        .wait_for_url(&format!("{}/developer", stack.issuer))
        .await;
    chrome.shot("developer-console-empty").await;
    chrome.tab_to("new-app").await;
    chrome.press(Key::Enter).await;
    chrome
        .wait_for_url(&format!("{}/developer/apps/new", stack.issuer))
        .await;
    chrome.tab_to("name").await;
    chrome.type_keys("Keyboard app").await;
    chrome.tab_to("redirect_uris").await;
    // Plain http on a public host: refused, with the reason beside the field.
    chrome.type_keys("http://keyboard.example/callback").await;
    chrome.tab_to("save").await;
    chrome.press(Key::Enter).await;
    chrome
        .wait_for_text(
            "redirect_uris-error",
            "\"http://keyboard.example/callback\" must use https (plain http is only for \
             loopback and *.localhost)",
        )
        .await;
    chrome.shot("developer-console-inline-error").await;
    let field = chrome
        .client
        .find(Locator::Id("redirect_uris"))
        .await
        .unwrap();
    assert_eq!(
        field.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    assert_eq!(
        chrome.text("name").await,
        "",
        "an input shows its value attribute, not text"
    );
    chrome.tab_to("redirect_uris").await;
    // Select the text and type the corrected URI over it.
    let select_all = format!("{}a", Key::Control);
    chrome.type_keys(&select_all).await;
    chrome.type_keys("https://keyboard.example/callback").await;
    chrome.tab_to("save").await;
    chrome.press(Key::Enter).await;
    chrome.wait_for_text("to-app", "Continue to the app").await;
    chrome.shot("developer-console-secret-once").await;
    let id = chrome.text("client-id").await;
    let secret = chrome.text("client-secret").await;
    let stored = stack.store.client(&id).await.unwrap().unwrap();
    assert_eq!(stored.name, "Keyboard app");
    assert_eq!(stored.redirect_uris, ["https://keyboard.example/callback"]);
    assert_eq!(
        stored.secret_hash.as_deref(),
        Some(infra::secret::hash_secret(&secret).as_str())
    );
    chrome.tab_to("to-app").await;
    chrome.press(Key::Enter).await;
    chrome
        .wait_for_url(&format!("{}/developer/apps/{id}", stack.issuer))
        .await;
    chrome.shot("developer-console-app").await;
    chrome.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn connected_apps_disconnect_signs_app_a_out_and_keeps_app_b() {
    let Some(mut chrome) = Chrome::start("connected_apps").await else {
        return;
    };
    let stack = spawn().await;
    sign_in_at_app_a(&mut chrome, &stack).await;
    sso_at_app_b(&mut chrome, &stack).await;
    chrome.goto(&format!("{}/", stack.issuer)).await;
    chrome.click("connected-apps").await;
    chrome
        .wait_for_url(&format!("{}/account/apps", stack.issuer))
        .await;
    chrome.shot("connected-apps").await;
    chrome.click("disconnect-app-a").await;
    chrome
        .wait_for_text("notice", "The app was disconnected.")
        .await;
    chrome.shot("app-a-disconnected").await;
    // App A's session ended by back-channel logout: a reload shows it signed out.
    crate::harness::eventually("App A shows signed out", || async {
        chrome.goto(&format!("{}/", stack.app_a.url)).await;
        (chrome.text("status").await == "You are not signed in.").then_some(())
    })
    .await;
    chrome.goto(&format!("{}/", stack.app_b.url)).await;
    chrome.wait_for_text("status", "Signed in").await;
    chrome.client.clone().close().await.unwrap();
}

/// Waits until element `id` is on the page Chromium shows (a navigation a click started has
/// landed).
async fn wait_for_element(chrome: &Chrome, id: &str) {
    let found = crate::harness::within_patience(|| async {
        chrome.client.find(Locator::Id(id)).await.ok()
    })
    .await;
    if found.is_none() {
        let text = chrome.page_text().await;
        panic!("#{id} appears: the page shows\n{text}");
    }
}

/// Reloads `url` in Chromium until element `id` is on the page (the demo API answers once it
/// has heard the provider's revocation feed).
async fn reload_until(chrome: &Chrome, url: &str, id: &str) {
    let found = crate::harness::within_patience(|| async {
        chrome.goto(url).await;
        chrome.client.find(Locator::Id(id)).await.ok()
    })
    .await;
    if found.is_none() {
        let text = chrome.page_text().await;
        panic!("{url} shows #{id}: it shows\n{text}");
    }
}

/// The demo's journey with the Notes API: a note written in App A is read in App B, and after
/// "Sign out everywhere" App A shows the API refusing the token it held.
#[tokio::test]
async fn a_note_written_in_app_a_is_read_in_app_b_until_sign_out_everywhere() {
    let Some(mut chrome) = Chrome::start("notes").await else {
        return;
    };
    let (stack, _apis) = super::apis::spawn_with_notes(Options {
        secure_cookies: true,
        ..Options::default()
    })
    .await;
    sign_in_at_app_a(&mut chrome, &stack).await;
    let app_a = format!("{}/", stack.app_a.url);
    reload_until(&chrome, &app_a, "no-notes").await;
    chrome.fill("note-text", "Buy milk for the tea party").await;
    chrome.click("add-note").await;
    wait_for_element(&chrome, "note-list").await;
    assert!(
        chrome
            .text("note-list")
            .await
            .contains("Buy milk for the tea party"),
        "{}",
        chrome.page_text().await
    );
    chrome.shot("app-a-writes-a-note").await;

    sso_at_app_b(&mut chrome, &stack).await;
    reload_until(&chrome, &format!("{}/", stack.app_b.url), "note-list").await;
    assert!(
        chrome
            .text("note-list")
            .await
            .contains("written through app-a"),
        "{}",
        chrome.page_text().await
    );
    assert!(chrome.client.find(Locator::Id("add-note")).await.is_err());
    chrome.shot("app-b-reads-the-note").await;

    chrome.goto(&app_a).await;
    chrome.click("logout-everywhere").await;
    chrome.wait_for_text("api-refused", "Refused").await;
    assert!(
        chrome
            .text("api-answer")
            .await
            .contains("401 invalid_token"),
        "{}",
        chrome.page_text().await
    );
    chrome.shot("app-a-api-refuses-after-sign-out").await;
    chrome.client.clone().close().await.unwrap();
}

/// Setting up an authenticator app on "Security" (its QR code and key), the recovery codes
/// shown once, App B's Settings page stepping the password sign-in up with a code, and the
/// next sign-in asking for the app's code after the password.
#[tokio::test]
async fn an_authenticator_app_is_set_up_and_asked_for_at_the_next_sign_in() {
    let Some(mut chrome) = Chrome::start("authenticator_app").await else {
        return;
    };
    let stack = spawn_secure().await;
    sign_in_at_app_a(&mut chrome, &stack).await;
    chrome
        .goto(&format!("{}/account/security", stack.issuer))
        .await;
    chrome.click("start-totp").await;
    wait_for_element(&chrome, "totp-qr").await;
    chrome.shot("security-set-up").await;
    let secret = chrome.text("totp-secret").await.replace(' ', "");
    let code = super::factors::code(&secret, stack.clock.unix());
    chrome.fill("confirm-code", &code).await;
    chrome.click("confirm-totp").await;
    wait_for_element(&chrome, "recovery-codes").await;
    chrome.shot("security-recovery-codes").await;

    // App B's Settings need two factors, and this session has the password only: the
    // provider asks for the code alone (step-up), then App B shows the page.
    stack.clock.advance(std::time::Duration::from_secs(30));
    sso_at_app_b(&mut chrome, &stack).await;
    chrome.click("settings-link").await;
    wait_for_element(&chrome, "step-up-notice").await;
    chrome.shot("step-up").await;
    let code = super::factors::code(&secret, stack.clock.unix());
    chrome.fill("code", &code).await;
    chrome.click("code-submit").await;
    wait_for_element(&chrome, "settings").await;
    chrome.shot("app-b-settings").await;

    // Signed out everywhere, the next sign-in asks for the code after the password.
    stack
        .cli(&["sessions", "revoke", "--user", ALICE.0])
        .await
        .unwrap();
    stack.clock.advance(std::time::Duration::from_secs(30));
    // App B hears of the end by back-channel logout, in the background.
    reload_until(&chrome, &format!("{}/", stack.app_b.url), "login").await;
    chrome.click("login").await;
    chrome
        .wait_for_url(&format!("{}/login", stack.issuer))
        .await;
    chrome.fill("username", ALICE.0).await;
    chrome.fill("password", ALICE.1).await;
    chrome.click("login-submit").await;
    wait_for_element(&chrome, "code-form").await;
    chrome.shot("sign-in-code").await;
    let code = super::factors::code(&secret, stack.clock.unix());
    chrome.fill("code", &code).await;
    chrome.click("code-submit").await;
    chrome.wait_for_text("status", "Signed in").await;
    chrome.client.clone().close().await.unwrap();
}

/// Signs alice out everywhere and, once App B has heard (back-channel logout, in the
/// background), opens its sign-in at the provider.
async fn signed_out_to_app_b_sign_in(chrome: &Chrome, stack: &Stack) {
    stack
        .cli(&["sessions", "revoke", "--user", ALICE.0])
        .await
        .unwrap();
    reload_until(chrome, &format!("{}/", stack.app_b.url), "login").await;
    chrome.click("login").await;
    chrome
        .wait_for_url(&format!("{}/login", stack.issuer))
        .await;
}

/// Types alice's name and password on the sign-in page, and sends them.
async fn type_alices_password(chrome: &Chrome) {
    chrome.fill("username", ALICE.0).await;
    chrome.fill("password", ALICE.1).await;
    chrome.click("login-submit").await;
}

/// Passkeys in Chromium, with its virtual authenticator: one added on "Security" (named, and
/// listed), then signing in with it alone (no username, no password) at App B, whose Settings
/// need two factors and open at once (a verified passkey is two); then, after a password, as
/// the second step.
#[tokio::test]
async fn a_passkey_is_added_and_signs_in_alone_and_as_the_second_step() {
    let Some(mut chrome) = Chrome::start("passkeys").await else {
        return;
    };
    chrome.add_virtual_authenticator().await;
    let stack = spawn_secure().await;
    sign_in_at_app_a(&mut chrome, &stack).await;
    chrome
        .goto(&format!("{}/account/security", stack.issuer))
        .await;
    wait_for_element(&chrome, "no-passkeys").await;
    chrome.fill("passkey-name", "Laptop").await;
    chrome.click_when_enabled("add-passkey").await;
    chrome
        .wait_for_text("notice", "Your passkey was added.")
        .await;
    assert!(chrome.text("passkeys").await.contains("Laptop"));
    chrome.shot("security-passkeys").await;

    // Signed out everywhere; App B's sign-in, with the passkey alone.
    signed_out_to_app_b_sign_in(&chrome, &stack).await;
    chrome.shot("sign-in-with-a-passkey").await;
    chrome.click_when_enabled("passkey-sign-in").await;
    chrome.wait_for_text("status", "Signed in").await;
    // Two factors already: App B's Settings open without a step-up.
    chrome.click("settings-link").await;
    wait_for_element(&chrome, "settings").await;
    chrome.shot("app-b-settings-with-a-passkey").await;

    // After the password, the passkey is the second step.
    signed_out_to_app_b_sign_in(&chrome, &stack).await;
    type_alices_password(&chrome).await;
    wait_for_element(&chrome, "use-passkey").await;
    assert!(
        chrome.client.find(Locator::Id("code")).await.is_err(),
        "no authenticator app: no code field"
    );
    chrome.shot("passkey-second-step").await;
    chrome.click_when_enabled("use-passkey").await;
    chrome.wait_for_text("status", "Signed in").await;

    // With an authenticator app as well, the second step offers both; the passkey button
    // works with the code field left empty.
    chrome
        .goto(&format!("{}/account/security", stack.issuer))
        .await;
    chrome.click("start-totp").await;
    wait_for_element(&chrome, "totp-qr").await;
    let secret = chrome.text("totp-secret").await.replace(' ', "");
    let code = super::factors::code(&secret, stack.clock.unix());
    chrome.fill("confirm-code", &code).await;
    chrome.click("confirm-totp").await;
    wait_for_element(&chrome, "recovery-codes").await;
    signed_out_to_app_b_sign_in(&chrome, &stack).await;
    type_alices_password(&chrome).await;
    wait_for_element(&chrome, "code").await;
    chrome.shot("code-or-passkey").await;
    chrome.click_when_enabled("use-passkey").await;
    chrome.wait_for_text("status", "Signed in").await;
    chrome.client.clone().close().await.unwrap();
}
