//! The authorization endpoint's decisions (RFC 6749 §4.1, OIDC Core §3.1.2) and consent.

use super::{REDIRECT, authorize_params, world};
use crate::protocol::authorize::{self, Next, OnSignInPage, must_sign_in, pending};
use crate::protocol::consent::{self, Decision};
use crate::protocol::error::{AuthorizeError, PageError};
use crate::types::{AuthorizeErrorCode, Prompt};
use std::time::Duration;

fn redirect_code(r: Result<Next, AuthorizeError>) -> AuthorizeErrorCode {
    match r {
        Err(AuthorizeError::Redirect(e)) => {
            assert_eq!(e.redirect_uri, REDIRECT);
            assert_eq!(e.state.as_deref(), Some("st4te"), "state goes back");
            e.code
        }
        other => panic!("not an error for the client: {other:?}"),
    }
}

#[tokio::test]
async fn a_visitor_is_sent_to_sign_in_and_prompt_none_is_login_required() {
    let w = world().await;
    let params = authorize_params("first", &[]);
    let next = authorize::authorize(&w.ctx, &params, None).await.unwrap();
    assert!(
        matches!(
            next,
            Next::SignIn {
                session_over: false,
                ..
            }
        ),
        "{next:?}"
    );
    let silent = authorize_params("first", &[("prompt", "none")]);
    let got = authorize::authorize(&w.ctx, &silent, None).await;
    assert_eq!(redirect_code(got), AuthorizeErrorCode::LoginRequired);
    // A pre-login session (no user) is no sign-in either.
    let anonymous = w
        .ctx
        .sessions
        .create(sessions::NewSession::default())
        .await
        .unwrap();
    let next = authorize::authorize(&w.ctx, &params, Some(&anonymous))
        .await
        .unwrap();
    assert!(matches!(next, Next::SignIn { .. }), "{next:?}");
}

#[tokio::test]
async fn a_first_party_app_gets_a_code_at_once_with_state_and_issuer() {
    let w = world().await;
    let session = w.signed_in(&w.alice).await;
    let params = authorize_params("first", &[]);
    match authorize::authorize(&w.ctx, &params, Some(&session)).await {
        Ok(Next::Code(c)) => {
            assert_eq!(c.redirect_uri, REDIRECT);
            assert_eq!(c.state.as_deref(), Some("st4te"));
            assert_eq!(c.issuer, "https://idp.example", "RFC 9207 iss");
            assert_eq!(c.code.len(), 43, "256 random bits");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_client_and_redirect_uri_are_checked_before_anything_goes_back() {
    let w = world().await;
    for extra in [
        [("client_id", "nobody")],
        [("redirect_uri", "https://evil.example/cb")],
        [("redirect_uri", "")],
        [("client_id", "")],
    ] {
        let params = authorize_params("first", &extra);
        let got = authorize::authorize(&w.ctx, &params, None).await;
        assert!(
            matches!(got, Err(AuthorizeError::Page(PageError::BadRequest(_)))),
            "{extra:?}: {got:?}"
        );
    }
}

#[tokio::test]
async fn a_third_party_app_asks_for_consent_once() {
    let w = world().await;
    let session = w.signed_in(&w.alice).await;
    let params = authorize_params("third", &[]);
    let Ok(Next::Consent(req)) = authorize::authorize(&w.ctx, &params, Some(&session)).await else {
        panic!("consent first");
    };
    // Without a person, consent_required (OIDC Core §3.1.2.6).
    let silent = authorize_params("third", &[("prompt", "none")]);
    let got = authorize::authorize(&w.ctx, &silent, Some(&session)).await;
    assert_eq!(redirect_code(got), AuthorizeErrorCode::ConsentRequired);
    // The page shows who asks for what; allowing gives a code.
    let id = pending::remember(&w.ctx, &session, &req).await.unwrap();
    let shown = consent::show(&w.ctx, &session, &id).await.unwrap();
    assert_eq!(shown.client_name, "App third");
    assert_eq!(shown.username, "alice");
    assert_eq!(shown.scopes.to_string(), "openid profile");
    let code = consent::decide(&w.ctx, &session, &id, Decision::Allow)
        .await
        .unwrap();
    assert_eq!(code.state.as_deref(), Some("st4te"));
    // The request is used up, and the grant remembered: the next request gets a code at once.
    let again = consent::decide(&w.ctx, &session, &id, Decision::Allow).await;
    assert!(matches!(again, Err(AuthorizeError::Page(_))), "taken once");
    let next = authorize::authorize(&w.ctx, &params, Some(&session))
        .await
        .unwrap();
    assert!(matches!(next, Next::Code(_)), "{next:?}");
    // A wider request asks again; so does prompt=consent.
    let wider = authorize_params("third", &[("scope", "openid profile email")]);
    let next = authorize::authorize(&w.ctx, &wider, Some(&session))
        .await
        .unwrap();
    assert!(matches!(next, Next::Consent(_)), "{next:?}");
    let forced = authorize_params("third", &[("prompt", "consent")]);
    let next = authorize::authorize(&w.ctx, &forced, Some(&session))
        .await
        .unwrap();
    assert!(matches!(next, Next::Consent(_)), "{next:?}");
}

#[tokio::test]
async fn a_denied_request_tells_the_client_access_denied() {
    let w = world().await;
    let session = w.signed_in(&w.alice).await;
    let params = authorize_params("third", &[]);
    let Ok(Next::Consent(req)) = authorize::authorize(&w.ctx, &params, Some(&session)).await else {
        panic!("consent first");
    };
    let id = pending::remember(&w.ctx, &session, &req).await.unwrap();
    let got = consent::decide(&w.ctx, &session, &id, Decision::Deny).await;
    match got {
        Err(AuthorizeError::Redirect(e)) => assert_eq!(e.code, AuthorizeErrorCode::AccessDenied),
        other => panic!("{other:?}"),
    }
    assert!(
        consent::show(&w.ctx, &session, &id).await.is_err(),
        "the request is gone"
    );
    assert!(Decision::parse(Some("maybe")).is_err());
}

#[tokio::test]
async fn an_old_sign_in_prompt_login_or_another_users_hint_need_a_new_sign_in() {
    let w = world().await;
    let session = w.signed_in(&w.alice).await;
    let params = authorize_params("first", &[("max_age", "60")]);
    let (req, _) = authorize::request::validate(&w.ctx, &params).await.unwrap();
    let now = w.ctx.clock.unix();
    assert!(
        !must_sign_in(&req, &session, now),
        "a fresh sign-in will do"
    );
    assert!(must_sign_in(&req, &session, now + 61), "older than max_age");
    let login = authorize::request::AuthRequest {
        prompt: Prompt::parse("login").unwrap(),
        max_age: None,
        ..req.clone()
    };
    assert!(must_sign_in(&login, &session, now));
    let someone_else = authorize::request::AuthRequest {
        hint_sub: Some(w.bob.clone()),
        max_age: None,
        ..req.clone()
    };
    assert!(must_sign_in(&someone_else, &session, now));
    let alice_hint = authorize::request::AuthRequest {
        hint_sub: Some(w.alice.clone()),
        max_age: None,
        ..req
    };
    assert!(!must_sign_in(&alice_hint, &session, now));
    // Through the endpoint: max_age passed and prompt=none is login_required.
    w.ctx.clock.advance(Duration::from_secs(120));
    let silent = authorize_params("first", &[("max_age", "60"), ("prompt", "none")]);
    let got = authorize::authorize(&w.ctx, &silent, Some(&session)).await;
    assert_eq!(redirect_code(got), AuthorizeErrorCode::LoginRequired);
}

#[tokio::test]
async fn a_disabled_account_ends_its_session_and_must_sign_in_again() {
    let w = world().await;
    let session = w.signed_in(&w.alice).await;
    w.ctx
        .store
        .set_disabled(&w.alice, true, w.ctx.clock.unix())
        .await
        .unwrap();
    let params = authorize_params("first", &[]);
    let next = authorize::authorize(&w.ctx, &params, Some(&session))
        .await
        .unwrap();
    assert!(
        matches!(
            next,
            Next::SignIn {
                session_over: true,
                ..
            }
        ),
        "{next:?}"
    );
    assert!(
        w.ctx.sessions.load(session.id()).await.unwrap().is_none(),
        "the session ended"
    );
}

#[tokio::test]
async fn after_sign_in_the_waiting_request_goes_on_once() {
    let w = world().await;
    let params = authorize_params("first", &[]);
    let Ok(Next::SignIn { request, .. }) = authorize::authorize(&w.ctx, &params, None).await else {
        panic!("sign in first");
    };
    let session = w.signed_in(&w.alice).await;
    let id = pending::remember(&w.ctx, &session, &request).await.unwrap();
    let next = authorize::resume(&w.ctx, &session, &id).await.unwrap();
    assert!(matches!(next, Some(Next::Code(_))), "{next:?}");
    // The request was taken: it cannot be replayed.
    let reloaded = w.ctx.sessions.load(session.id()).await.unwrap().unwrap();
    let again = authorize::resume(&w.ctx, &reloaded, &id).await.unwrap();
    assert!(again.is_none(), "used once");
}

#[tokio::test]
async fn a_waiting_request_is_checked_again_against_the_clients_registration() {
    use crate::protocol::registration::{self, metadata_of};
    let w = world().await;
    let session = w.signed_in(&w.alice).await;
    let params = authorize_params("first", &[]);
    let (req, _) = authorize::request::validate(&w.ctx, &params).await.unwrap();
    let id = pending::remember(&w.ctx, &session, &req).await.unwrap();
    // Meanwhile the app's registration loses that redirect URI.
    let first = w.client("first").await;
    let mut changed = metadata_of(&first);
    changed.redirect_uris = vec!["https://app.example/elsewhere".into()];
    let now = w.ctx.clock.unix();
    registration::update(
        &w.ctx.store,
        first,
        changed.validate(&w.ctx.outbound).unwrap(),
        None,
        now,
    )
    .await
    .unwrap();
    let got = authorize::resume(&w.ctx, &session, &id).await;
    assert!(
        matches!(got, Err(AuthorizeError::Page(_))),
        "never redirected: {got:?}"
    );
    // The same on consent: an app deleted while its consent page was open.
    let third = authorize_params("third", &[]);
    let Ok(Next::Consent(req)) = authorize::authorize(&w.ctx, &third, Some(&session)).await else {
        panic!("consent first");
    };
    let id = pending::remember(&w.ctx, &session, &req).await.unwrap();
    let client = w.client("third").await;
    registration::remove(&w.ctx.store, &client, now)
        .await
        .unwrap();
    let got = consent::decide(&w.ctx, &session, &id, Decision::Allow).await;
    assert!(matches!(got, Err(AuthorizeError::Page(_))), "{got:?}");
}

#[tokio::test]
async fn a_code_from_before_sign_out_everywhere_dies_with_the_session() {
    let w = world().await;
    let session = w.signed_in(&w.alice).await;
    // A code got silently, then "sign out everywhere" before the app redeems it.
    let params = authorize_params("first", &[("prompt", "none")]);
    let code = match authorize::authorize(&w.ctx, &params, Some(&session)).await {
        Ok(Next::Code(c)) => c.code,
        other => panic!("no code: {other:?}"),
    };
    crate::users::sign_out_everywhere(&w.ctx, &w.alice)
        .await
        .unwrap();
    let pairs = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", super::VERIFIER),
    ];
    let redeemed =
        crate::protocol::token::exchange(&w.ctx, &w.client("first").await, &super::form(&pairs))
            .await;
    match redeemed {
        Err(e) => assert_eq!(e.code(), Some(crate::types::TokenErrorCode::InvalidGrant)),
        Ok(t) => panic!("a code of an ended session was redeemed: {t:?}"),
    }
    // A request still holding the ended session (loaded just before the end) gets no code.
    let got = authorize::authorize(&w.ctx, &authorize_params("first", &[]), Some(&session)).await;
    assert_eq!(redirect_code(got), AuthorizeErrorCode::LoginRequired);
}

#[tokio::test]
async fn a_tab_left_at_the_sign_in_page_goes_on_once_another_tab_signed_in() {
    use sessions::NewSession;
    let w = world().await;
    let visitor = w.ctx.sessions.create(NewSession::default()).await.unwrap();
    let waiting = |extra: &'static [(&'static str, &'static str)]| {
        let w = &w;
        let visitor = &visitor;
        async move {
            let params = authorize_params("first", extra);
            let Ok(Next::SignIn { request, .. }) =
                authorize::authorize(&w.ctx, &params, None).await
            else {
                panic!("sign in first");
            };
            pending::remember(&w.ctx, visitor, &request).await.unwrap()
        }
    };
    let plain = waiting(&[]).await;
    let fresh = waiting(&[("prompt", "login")]).await;
    // Not signed in yet: the page is shown.
    let shown = authorize::on_sign_in_page(&w.ctx, &visitor, &plain)
        .await
        .unwrap();
    assert!(matches!(shown, OnSignInPage::Password), "{shown:?}");
    // Another tab signs in (same browser session, same handle).
    let mut session = visitor.clone();
    w.ctx.clock.advance(Duration::from_secs(1));
    w.ctx
        .sessions
        .authenticate(&mut session, &w.alice)
        .await
        .unwrap();
    let next = authorize::on_sign_in_page(&w.ctx, &session, &plain)
        .await
        .unwrap();
    assert!(matches!(next, OnSignInPage::Go(Next::Code(_))), "{next:?}");
    // A prompt=login request made before that sign-in is answered by it as well.
    let next = authorize::on_sign_in_page(&w.ctx, &session, &fresh)
        .await
        .unwrap();
    assert!(matches!(next, OnSignInPage::Go(Next::Code(_))), "{next:?}");
    // One made after it is not: it wants a sign-in of its own.
    w.ctx.clock.advance(Duration::from_secs(1));
    let later = waiting(&[("prompt", "login")]).await;
    let shown = authorize::on_sign_in_page(&w.ctx, &session, &later)
        .await
        .unwrap();
    assert!(
        matches!(shown, OnSignInPage::Password),
        "prompt=login asks again"
    );
    // Nor does a max_age the sign-in is older than.
    w.ctx.clock.advance(Duration::from_secs(30));
    let strict = waiting(&[("max_age", "10")]).await;
    let shown = authorize::on_sign_in_page(&w.ctx, &session, &strict)
        .await
        .unwrap();
    assert!(
        matches!(shown, OnSignInPage::Password),
        "too old for max_age"
    );
}

#[tokio::test]
async fn prompt_login_is_not_answered_by_the_sign_in_it_was_asked_from() {
    let w = world().await;
    let session = w.signed_in(&w.alice).await;
    // Same second as the sign-in: this request asks for a new one, and the page is shown.
    let params = authorize_params("first", &[("prompt", "login")]);
    let Ok(Next::SignIn { request, .. }) =
        authorize::authorize(&w.ctx, &params, Some(&session)).await
    else {
        panic!("prompt=login asks to sign in");
    };
    let id = pending::remember(&w.ctx, &session, &request).await.unwrap();
    let shown = authorize::on_sign_in_page(&w.ctx, &session, &id)
        .await
        .unwrap();
    assert!(matches!(shown, OnSignInPage::Password), "{shown:?}");
}

#[tokio::test]
async fn a_waiting_request_for_one_person_is_not_answered_for_another() {
    let w = world().await;
    let bob = w.signed_in(&w.bob).await;
    for client in ["first", "third"] {
        let params = authorize_params(client, &[]);
        let (mut req, _) = authorize::request::validate(&w.ctx, &params).await.unwrap();
        // Its id_token_hint named Alice; Bob signed in on the browser meanwhile.
        req.hint_sub = Some(w.alice.clone());
        let id = pending::remember(&w.ctx, &bob, &req).await.unwrap();
        let got = if client == "first" {
            authorize::resume(&w.ctx, &bob, &id)
                .await
                .map(|n| n.expect("a waiting request"))
        } else {
            consent::decide(&w.ctx, &bob, &id, Decision::Allow)
                .await
                .map(Next::Code)
        };
        assert_eq!(
            redirect_code(got),
            AuthorizeErrorCode::LoginRequired,
            "{client}"
        );
    }
}
