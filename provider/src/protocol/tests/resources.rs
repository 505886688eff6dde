//! What a token is good for after it was issued: revocation (RFC 7009), introspection (RFC
//! 7662) and userinfo (OIDC Core §5.3).

use super::{REDIRECT, VERIFIER, World, form, world};
use crate::protocol::error::BearerError;
use crate::protocol::revocation::{introspect, revoke};
use crate::protocol::token::{self, TokenResponse};
use crate::protocol::userinfo::userinfo;
use crate::types::{BearerErrorCode, TokenErrorCode};
use std::time::Duration;

async fn tokens(w: &World, client: &str, scope: &str) -> TokenResponse {
    let session = w.signed_in(&w.alice).await;
    let code = w.code(&session, client, scope).await;
    let pairs = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    token::exchange(&w.ctx, &w.client(client).await, &form(&pairs))
        .await
        .unwrap()
}

fn bearer_code(r: Result<impl std::fmt::Debug, BearerError>) -> Option<BearerErrorCode> {
    r.err().and_then(|e| e.code())
}

#[tokio::test]
async fn userinfo_releases_the_claims_of_the_scopes_while_the_token_is_good() {
    let w = world().await;
    let issued = tokens(&w, "first", "openid profile").await;
    let claims = userinfo(&w.ctx, &issued.access_token).await.unwrap();
    assert_eq!(claims.sub, w.alice);
    assert_eq!(claims.profile.unwrap().preferred_username, "alice");
    assert!(claims.email.is_none(), "no email scope, no email");
    let garbage = userinfo(&w.ctx, "not-a-token").await;
    assert_eq!(bearer_code(garbage), Some(BearerErrorCode::InvalidToken));
    // A disabled user's token stops working at once; so does every token once it expires.
    w.ctx
        .store
        .set_disabled(&w.alice, true, w.ctx.clock.unix())
        .await
        .unwrap();
    let disabled = userinfo(&w.ctx, &issued.access_token).await;
    assert_eq!(bearer_code(disabled), Some(BearerErrorCode::InvalidToken));
    w.ctx
        .store
        .set_disabled(&w.alice, false, w.ctx.clock.unix())
        .await
        .unwrap();
    w.ctx.clock.advance(Duration::from_secs(601));
    let expired = userinfo(&w.ctx, &issued.access_token).await;
    assert_eq!(bearer_code(expired), Some(BearerErrorCode::InvalidToken));
}

#[tokio::test]
async fn a_token_without_openid_is_insufficient_for_userinfo() {
    let w = world().await;
    let service = w.client("service").await;
    let cc = form(&[("grant_type", "client_credentials")]);
    let issued = token::exchange(&w.ctx, &service, &cc).await.unwrap();
    let got = userinfo(&w.ctx, &issued.access_token).await;
    assert_eq!(bearer_code(got), Some(BearerErrorCode::InsufficientScope));
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_grant_and_only_for_its_client() {
    let w = world().await;
    let issued = tokens(&w, "first", "openid").await;
    let rt = issued.refresh_token.clone().unwrap();
    let third = w.client("third").await;
    let first = w.client("first").await;
    // Another client's request changes nothing (and is answered like any other, RFC 7009 §2.2).
    revoke(&w.ctx, &third, &form(&[("token", &rt)]))
        .await
        .unwrap();
    assert!(
        introspect(&w.ctx, &first, &form(&[("token", &rt)]))
            .await
            .unwrap()
            .is_active()
    );
    revoke(&w.ctx, &first, &form(&[("token", &rt)]))
        .await
        .unwrap();
    assert!(
        !introspect(&w.ctx, &first, &form(&[("token", &rt)]))
            .await
            .unwrap()
            .is_active()
    );
    let access = form(&[
        ("token", &issued.access_token),
        ("token_type_hint", "access_token"),
    ]);
    assert!(
        !introspect(&w.ctx, &first, &access)
            .await
            .unwrap()
            .is_active(),
        "the family went"
    );
    assert!(userinfo(&w.ctx, &issued.access_token).await.is_err());
    let missing = revoke(&w.ctx, &first, &form(&[])).await;
    assert_eq!(
        missing.err().and_then(|e| e.code()),
        Some(TokenErrorCode::InvalidRequest)
    );
}

#[tokio::test]
async fn introspection_tells_the_owner_what_a_token_is() {
    let w = world().await;
    let issued = tokens(&w, "first", "openid profile").await;
    let first = w.client("first").await;
    // Any hint, or none: the hint only orders the search.
    for hint in [
        None,
        Some("refresh_token"),
        Some("access_token"),
        Some("bogus"),
    ] {
        let mut pairs = vec![("token", issued.access_token.as_str())];
        pairs.extend(hint.map(|h| ("token_type_hint", h)));
        let answer = introspect(&w.ctx, &first, &form(&pairs)).await.unwrap();
        let json = serde_json::to_value(&answer).unwrap();
        assert_eq!(json["active"], true, "{hint:?}");
        assert_eq!(json["token_type"], "Bearer");
        assert_eq!(json["scope"], "openid profile");
        assert_eq!(json["sub"], w.alice.as_str());
    }
    let third = w.client("third").await;
    let theirs = introspect(&w.ctx, &third, &form(&[("token", &issued.access_token)])).await;
    assert_eq!(
        serde_json::to_value(theirs.unwrap()).unwrap(),
        serde_json::json!({"active": false})
    );
    // Public clients may not ask (RFC 7662 §2.1).
    let public = w.client("public").await;
    let refused = introspect(&w.ctx, &public, &form(&[("token", &issued.access_token)])).await;
    assert_eq!(
        refused.err().and_then(|e| e.code()),
        Some(TokenErrorCode::InvalidClient)
    );
}
