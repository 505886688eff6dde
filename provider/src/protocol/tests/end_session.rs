//! RP-Initiated Logout: a hint ends its session at once, anything else asks the person.

use super::{POST_LOGOUT, REDIRECT, VERIFIER, World, form, world};
use crate::protocol::end_session::{EndSession, PostLogoutRedirect, confirm, end_session};
use crate::protocol::error::PageError;
use crate::protocol::token;
use sessions::Session;

/// An ID token for `first`, issued through `session`.
async fn id_token(w: &World, session: &Session) -> String {
    let code = w.code(session, "first", "openid").await;
    let pairs = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let issued = token::exchange(&w.ctx, &w.client("first").await, &form(&pairs)).await;
    issued.unwrap().id_token.unwrap()
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
        } => {
            assert_eq!(client_name.as_deref(), Some("App first"));
            assert_eq!(csrf_token, session.csrf_token());
        }
        other => panic!("{other:?}"),
    }
    assert!(
        w.ctx.sessions.load(session.id()).await.unwrap().is_some(),
        "still signed in"
    );
    // A registered post-logout URI without a hint is not followed (§3): still a question.
    let params = form(&[
        ("client_id", "first"),
        ("post_logout_redirect_uri", POST_LOGOUT),
    ]);
    let asked = end_session(&w.ctx, &params, Some(&session)).await.unwrap();
    assert!(matches!(asked, EndSession::Ask { .. }), "{asked:?}");
    let nobody = end_session(&w.ctx, &form(&[]), None).await.unwrap();
    assert_eq!(nobody, EndSession::NotSignedIn);
    // The answer ends it.
    assert!(confirm(&w.ctx, &session).await.unwrap());
    assert!(w.ctx.sessions.load(session.id()).await.unwrap().is_none());
}

#[tokio::test]
async fn a_hint_ends_its_session_and_sends_the_browser_back() {
    let w = world().await;
    let session = w.signed_in(&w.alice).await;
    let hint = id_token(&w, &session).await;
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
            redirect: Some(back)
        }
    );
    assert!(w.ctx.sessions.load(session.id()).await.unwrap().is_none());
}

#[tokio::test]
async fn another_users_hint_ends_nothing_here() {
    let w = world().await;
    let alices = w.signed_in(&w.alice).await;
    let hint = id_token(&w, &alices).await;
    let bobs = w.signed_in(&w.bob).await;
    let done = end_session(&w.ctx, &form(&[("id_token_hint", &hint)]), Some(&bobs)).await;
    assert!(
        matches!(
            done,
            Ok(EndSession::SignedOut {
                was_signed_in: false,
                ..
            })
        ),
        "{done:?}"
    );
    assert!(
        w.ctx.sessions.load(bobs.id()).await.unwrap().is_some(),
        "bob is still in"
    );
}

#[tokio::test]
async fn bad_requests_are_refused_before_anything_ends() {
    let w = world().await;
    let session = w.signed_in(&w.alice).await;
    let hint = id_token(&w, &session).await;
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
    assert!(w.ctx.sessions.load(session.id()).await.unwrap().is_some());
}
