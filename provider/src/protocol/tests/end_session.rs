//! RP-Initiated Logout: only a hint naming this very session ends it at once; anything else
//! asks the person, and changes nothing until they answer.

use super::{POST_LOGOUT, REDIRECT, VERIFIER, World, form, world};
use crate::protocol::end_session::{EndSession, PostLogoutRedirect, confirm, end_session};
use crate::protocol::error::PageError;
use crate::protocol::token;
use sessions::Session;

/// An ID token for `first` with `scope`, issued through `session` (with `offline_access`, the
/// refreshed one, which names no session).
async fn id_token(w: &World, session: &Session, scope: &str) -> String {
    let code = w.code(session, "first", scope).await;
    let pairs = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let first = w.client("first").await;
    let issued = token::exchange(&w.ctx, &first, &form(&pairs))
        .await
        .unwrap();
    if !scope.contains("offline_access") {
        return issued.id_token.unwrap();
    }
    let rt = issued.refresh_token.unwrap();
    let pairs = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
    ];
    let refreshed = token::exchange(&w.ctx, &first, &form(&pairs))
        .await
        .unwrap();
    refreshed.id_token.unwrap()
}

async fn alive(w: &World, session: &Session) -> bool {
    w.ctx.sessions.load(session.id()).await.unwrap().is_some()
}

#[tokio::test]
async fn without_a_hint_the_person_is_asked_and_nothing_ends() {
    let w = world().await;
    let session = w.signed_in(&w.alice).await;
    let asked = end_session(&w.ctx, &form(&[("client_id", "first")]), Some(&session)).await;
    match asked.unwrap() {
        EndSession::Ask {
            client_name,
            csrf_token,
            resend,
        } => {
            assert_eq!(client_name.as_deref(), Some("App first"));
            assert_eq!(csrf_token, session.csrf_token());
            assert!(resend.is_empty(), "nowhere to go back to");
        }
        other => panic!("{other:?}"),
    }
    assert!(alive(&w, &session).await, "still signed in");
    // A registered post-logout URI without a hint is not followed (§3): still a question.
    let params = form(&[
        ("client_id", "first"),
        ("post_logout_redirect_uri", POST_LOGOUT),
    ]);
    let asked = end_session(&w.ctx, &params, Some(&session)).await.unwrap();
    assert!(matches!(asked, EndSession::Ask { ref resend, .. } if resend.is_empty()));
    let nobody = end_session(&w.ctx, &form(&[]), None).await.unwrap();
    assert_eq!(nobody, EndSession::NotSignedIn);
    // The answer ends it, and goes nowhere.
    assert_eq!(
        confirm(&w.ctx, &session, &form(&[])).await.unwrap(),
        (None, vec![])
    );
    assert!(!alive(&w, &session).await);
}

#[tokio::test]
async fn a_hint_naming_this_session_ends_it_and_sends_the_browser_back() {
    let w = world().await;
    let session = w.signed_in(&w.alice).await;
    let hint = id_token(&w, &session, "openid").await;
    let params = form(&[
        ("id_token_hint", &hint),
        ("post_logout_redirect_uri", POST_LOGOUT),
        ("state", "bye"),
    ]);
    let done = end_session(&w.ctx, &params, Some(&session)).await.unwrap();
    let back = PostLogoutRedirect {
        uri: POST_LOGOUT.into(),
        state: Some("bye".into()),
    };
    assert_eq!(
        done,
        EndSession::SignedOut {
            was_signed_in: true,
            redirect: Some(back),
            frames: vec![],
        }
    );
    assert!(!alive(&w, &session).await);
}

#[tokio::test]
async fn another_users_hint_asks_and_the_answer_goes_back_to_the_app() {
    let w = world().await;
    let alices = w.signed_in(&w.alice).await;
    let hint = id_token(&w, &alices, "openid").await;
    let bobs = w.signed_in(&w.bob).await;
    let params = form(&[
        ("id_token_hint", &hint),
        ("post_logout_redirect_uri", POST_LOGOUT),
        ("state", "s"),
    ]);
    let asked = end_session(&w.ctx, &params, Some(&bobs)).await.unwrap();
    let EndSession::Ask { resend, .. } = asked else {
        panic!("{asked:?}");
    };
    assert!(
        alive(&w, &bobs).await && alive(&w, &alices).await,
        "nothing ended yet"
    );
    // The confirmation sends the request again: checked again, then bob is signed out.
    let pairs: Vec<(&str, &str)> = resend.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (back, _) = confirm(&w.ctx, &bobs, &form(&pairs)).await.unwrap();
    assert_eq!(back.map(|r| r.uri).as_deref(), Some(POST_LOGOUT));
    assert!(!alive(&w, &bobs).await);
    assert!(
        alive(&w, &alices).await,
        "alice's session is not bob's to end"
    );
}

#[tokio::test]
async fn a_hint_without_sid_or_for_another_session_asks() {
    let w = world().await;
    let older = w.signed_in(&w.alice).await;
    let stale = id_token(&w, &older, "openid").await;
    let session = w.signed_in(&w.alice).await;
    // An offline grant's refreshed ID token names no session.
    let sessionless = id_token(&w, &session, "openid offline_access").await;
    assert!(
        crate::protocol::hint::verify(&w.ctx, &sessionless)
            .unwrap()
            .sid
            .is_none()
    );
    for hint in [&stale, &sessionless] {
        let asked = end_session(&w.ctx, &form(&[("id_token_hint", hint)]), Some(&session)).await;
        assert!(matches!(asked, Ok(EndSession::Ask { .. })), "{asked:?}");
    }
    assert!(alive(&w, &session).await && alive(&w, &older).await);
}

#[tokio::test]
async fn bad_requests_are_refused_before_anything_ends() {
    let w = world().await;
    let session = w.signed_in(&w.alice).await;
    let hint = id_token(&w, &session, "openid").await;
    for pairs in [
        vec![("id_token_hint", "forged")],
        vec![("id_token_hint", hint.as_str()), ("client_id", "third")],
        vec![("client_id", "nobody")],
        vec![
            ("client_id", "first"),
            ("post_logout_redirect_uri", "https://evil.example/"),
        ],
        vec![("post_logout_redirect_uri", POST_LOGOUT)],
        vec![("state", "a"), ("state", "b")],
    ] {
        let got = end_session(&w.ctx, &form(&pairs), Some(&session)).await;
        assert!(
            matches!(got, Err(PageError::BadRequest(_))),
            "{pairs:?}: {got:?}"
        );
    }
    assert!(alive(&w, &session).await);
}

#[tokio::test]
async fn a_confirmed_sign_out_ends_the_session_even_if_its_app_went_meanwhile() {
    let w = world().await;
    let session = w.signed_in(&w.alice).await;
    // The confirmation page carried a request that no longer checks out (its client was
    // deleted, or the form was tampered with): the person said yes, so the session ends, and
    // the browser goes nowhere.
    let gone = form(&[
        ("client_id", "nobody"),
        ("post_logout_redirect_uri", POST_LOGOUT),
    ]);
    assert_eq!(
        confirm(&w.ctx, &session, &gone).await.unwrap(),
        (None, vec![])
    );
    assert!(!alive(&w, &session).await);
}
