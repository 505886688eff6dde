//! The token endpoint's grants (RFC 6749 §4.1.3, §6, §4.4).

use super::{REDIRECT, VERIFIER, World, form, world, world_on};
use crate::context::testing;
use crate::protocol::error::TokenError;
use crate::protocol::token::{self, TokenResponse};
use crate::protocol::userinfo;
use crate::types::{Alg, AuthMethod, GrantType, TokenErrorCode};
use std::time::Duration;

fn code_of<T: std::fmt::Debug>(r: Result<T, TokenError>) -> TokenErrorCode {
    match r {
        Err(e) => e
            .code()
            .unwrap_or_else(|| panic!("not a protocol error: {e:?}")),
        Ok(v) => panic!("accepted: {v:?}"),
    }
}

async fn redeem(
    w: &World,
    client: &str,
    code: &str,
    pairs: &[(&str, &str)],
) -> Result<TokenResponse, TokenError> {
    let mut all = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    for (k, v) in pairs {
        all.retain(|(n, _)| n != k);
        if !v.is_empty() {
            all.push((k, v));
        }
    }
    token::exchange(&w.ctx, &w.client(client).await, &form(&all)).await
}

async fn refresh(
    w: &World,
    client: &str,
    rt: &str,
    scope: Option<&str>,
) -> Result<TokenResponse, TokenError> {
    let mut pairs = vec![("grant_type", "refresh_token"), ("refresh_token", rt)];
    pairs.extend(scope.map(|s| ("scope", s)));
    token::exchange(&w.ctx, &w.client(client).await, &form(&pairs)).await
}

#[tokio::test]
async fn a_code_is_redeemed_once_and_its_replay_revokes_what_it_issued() {
    let w = world().await;
    let session = w.signed_in(&w.alice).await;
    let code = w.code(&session, "first", "openid profile").await;
    let issued = redeem(&w, "first", &code, &[]).await.unwrap();
    assert_eq!(issued.token_type.as_str(), "Bearer");
    assert_eq!(issued.scope.to_string(), "openid profile");
    assert!(issued.id_token.is_some() && issued.refresh_token.is_some());
    let claims: serde_json::Value = w
        .ctx
        .keys
        .current()
        .verify(
            issued.id_token.as_deref().unwrap(),
            "JWT",
            &w.ctx.issuer,
            "first",
            w.ctx.clock.unix(),
        )
        .unwrap();
    assert_eq!(claims["sub"], w.alice.as_str());
    assert_eq!(claims["nonce"], "n0nce");
    assert_eq!(claims["sid"], session.handle.as_str());
    assert!(
        userinfo::userinfo(&w.ctx, &issued.access_token)
            .await
            .is_ok()
    );
    // A replay without the code's bindings (another client, a wrong verifier) fails and
    // cancels nothing: holding the code alone is not enough to revoke.
    for (client, pairs) in [
        ("third", vec![]),
        ("first", vec![("code_verifier", "x".repeat(43))]),
    ] {
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            code_of(redeem(&w, client, &code, &pairs).await),
            TokenErrorCode::InvalidGrant
        );
    }
    assert!(
        userinfo::userinfo(&w.ctx, &issued.access_token)
            .await
            .is_ok(),
        "not revoked by a stranger"
    );
    // The replay fails, and the tokens of the first redemption stop working (RFC 9700 §4.2.1).
    assert_eq!(
        code_of(redeem(&w, "first", &code, &[]).await),
        TokenErrorCode::InvalidGrant
    );
    let revoked = userinfo::userinfo(&w.ctx, &issued.access_token).await;
    assert!(revoked.is_err(), "the access token was revoked");
    let rt = issued.refresh_token.unwrap();
    assert_eq!(
        code_of(refresh(&w, "first", &rt, None).await),
        TokenErrorCode::InvalidGrant
    );
}

/// A code presented with a wrong binding first (a stolen code, a guessed verifier) is refused
/// and not spent: its own client still redeems it, so holding the code alone cannot cancel
/// the rightful sign-in.
#[tokio::test]
async fn a_code_refused_for_a_wrong_binding_is_still_redeemable() {
    let w = world().await;
    let session = w.signed_in(&w.alice).await;
    let code = w.code(&session, "first", "openid").await;
    let wrong = "x".repeat(43);
    for (client, pairs) in [
        ("third", vec![]),
        ("first", vec![("code_verifier", wrong.as_str())]),
        ("first", vec![("redirect_uri", "https://app.example/other")]),
    ] {
        assert_eq!(
            code_of(redeem(&w, client, &code, &pairs).await),
            TokenErrorCode::InvalidGrant
        );
    }
    let issued = redeem(&w, "first", &code, &[]).await.unwrap();
    assert!(
        userinfo::userinfo(&w.ctx, &issued.access_token)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn every_binding_of_a_code_is_checked() {
    let w = world().await;
    let session = w.signed_in(&w.alice).await;
    let other_verifier = "a".repeat(43);
    for (client, pairs) in [
        ("public", vec![]),
        ("first", vec![("redirect_uri", "https://app.example/other")]),
        ("first", vec![("code_verifier", other_verifier.as_str())]),
        ("first", vec![("code", "made-up")]),
    ] {
        let code = w.code(&session, "first", "openid").await;
        let got = redeem(&w, client, &code, &pairs).await;
        assert_eq!(
            code_of(got),
            TokenErrorCode::InvalidGrant,
            "{client} {pairs:?}"
        );
    }
    // An expired code (codes live at most 60 s).
    let code = w.code(&session, "first", "openid").await;
    w.ctx.clock.advance(Duration::from_secs(61));
    assert_eq!(
        code_of(redeem(&w, "first", &code, &[]).await),
        TokenErrorCode::InvalidGrant
    );
}

#[tokio::test]
async fn malformed_requests_and_grants_the_client_may_not_use_are_refused() {
    let w = world().await;
    let first = w.client("first").await;
    for (pairs, code) in [
        (vec![], TokenErrorCode::InvalidRequest),
        (
            vec![("grant_type", "password")],
            TokenErrorCode::UnsupportedGrantType,
        ),
        (
            vec![("grant_type", "client_credentials")],
            TokenErrorCode::UnauthorizedClient,
        ),
        (
            vec![("grant_type", "authorization_code")],
            TokenErrorCode::InvalidRequest,
        ),
        (
            vec![("grant_type", "refresh_token")],
            TokenErrorCode::InvalidRequest,
        ),
    ] {
        let got = token::exchange(&w.ctx, &first, &form(&pairs)).await;
        assert_eq!(code_of(got), code, "{pairs:?}");
    }
    let service = w.client("service").await;
    let got = token::exchange(
        &w.ctx,
        &service,
        &form(&[("grant_type", "authorization_code"), ("code", "x")]),
    )
    .await;
    assert_eq!(code_of(got), TokenErrorCode::UnauthorizedClient);
}

#[tokio::test]
async fn a_refresh_rotates_and_a_reuse_after_the_grace_window_revokes_the_family() {
    let w = world().await;
    // Only the test moves time through the grace window.
    w.ctx.clock.freeze();
    let session = w.signed_in(&w.alice).await;
    let code = w.code(&session, "first", "openid profile").await;
    let first = redeem(&w, "first", &code, &[])
        .await
        .unwrap()
        .refresh_token
        .unwrap();
    let second = refresh(&w, "first", &first, None).await.unwrap();
    let second_rt = second.refresh_token.clone().unwrap();
    assert_ne!(second_rt, first, "rotated");
    assert!(second.id_token.is_some(), "openid: a new ID token");
    // Within the grace window (5 s by default), a retry of the old token gets an answer.
    let retry = refresh(&w, "first", &first, None).await;
    assert!(retry.is_ok(), "a concurrent retry: {retry:?}");
    // After it, the reuse is a theft: the whole family goes, the newest token with it.
    w.ctx.clock.advance(Duration::from_secs(6));
    assert_eq!(
        code_of(refresh(&w, "first", &first, None).await),
        TokenErrorCode::InvalidGrant
    );
    assert_eq!(
        code_of(refresh(&w, "first", &second_rt, None).await),
        TokenErrorCode::InvalidGrant
    );
    assert!(
        userinfo::userinfo(&w.ctx, &second.access_token)
            .await
            .is_err()
    );
    // The online grant's SSO session ends with it.
    assert!(w.ctx.sessions.load(session.id()).await.unwrap().is_none());
}

#[tokio::test]
async fn a_refresh_narrows_the_scope_but_never_widens_it_and_stays_with_its_client() {
    let w = world().await;
    let session = w.signed_in(&w.alice).await;
    let code = w.code(&session, "first", "openid profile").await;
    let rt = redeem(&w, "first", &code, &[])
        .await
        .unwrap()
        .refresh_token
        .unwrap();
    let narrow = refresh(&w, "first", &rt, Some("openid")).await.unwrap();
    assert_eq!(narrow.scope.to_string(), "openid");
    let rt = narrow.refresh_token.unwrap();
    let wider = refresh(&w, "first", &rt, Some("openid email")).await;
    assert_eq!(code_of(wider), TokenErrorCode::InvalidScope);
    // The grant keeps its whole scope: the next refresh may ask for profile again.
    let again = refresh(&w, "first", &rt, Some("openid profile"))
        .await
        .unwrap();
    assert_eq!(again.scope.to_string(), "openid profile");
    // Another client presenting it is refused, and the token is left alone.
    let rt = again.refresh_token.unwrap();
    assert_eq!(
        code_of(refresh(&w, "third", &rt, None).await),
        TokenErrorCode::InvalidGrant
    );
    assert!(refresh(&w, "first", &rt, None).await.is_ok());
}

/// A refresh token is spent only in the transaction that stores its successor: a refresh
/// refused on the way (a wider scope, the user disabled meanwhile) leaves it unspent, so the
/// client may use it again long after the grace window, and nothing counts as a reuse.
async fn a_failed_refresh(w: World) {
    let session = w.signed_in(&w.alice).await;
    let code = w.code(&session, "first", "openid profile").await;
    let rt = redeem(&w, "first", &code, &[])
        .await
        .unwrap()
        .refresh_token
        .unwrap();
    let wider = refresh(&w, "first", &rt, Some("openid email")).await;
    assert_eq!(code_of(wider), TokenErrorCode::InvalidScope);
    let grace = w.ctx.config.tokens.refresh_grace;
    w.ctx.clock.advance(grace + Duration::from_secs(60));
    let next = refresh(&w, "first", &rt, None).await.unwrap();
    assert!(next.refresh_token.is_some());
    // Spent now, and only now: its reuse after the window is a reuse.
    w.ctx.clock.advance(grace + Duration::from_secs(60));
    assert_eq!(
        code_of(refresh(&w, "first", &rt, None).await),
        TokenErrorCode::InvalidGrant
    );
    assert_eq!(
        live_refresh_tokens(&w, "first").await,
        0,
        "the family is revoked"
    );
}

#[tokio::test]
async fn client_credentials_for_confidential_clients_only_and_without_scopes() {
    let w = world().await;
    let service = w.client("service").await;
    let cc = [("grant_type", "client_credentials")];
    let issued = token::exchange(&w.ctx, &service, &form(&cc)).await.unwrap();
    assert!(issued.id_token.is_none() && issued.refresh_token.is_none());
    let claims: token::AccessClaims = w
        .ctx
        .keys
        .current()
        .verify(
            &issued.access_token,
            "at+jwt",
            &w.ctx.issuer,
            &w.ctx.issuer,
            w.ctx.clock.unix(),
        )
        .unwrap();
    assert_eq!(claims.sub, "service", "RFC 9068: the client is the subject");
    let scoped = [("grant_type", "client_credentials"), ("scope", "openid")];
    let got = token::exchange(&w.ctx, &service, &form(&scoped)).await;
    assert_eq!(code_of(got), TokenErrorCode::InvalidScope);
    // Registration refuses the grant to public clients; one stored otherwise is refused here.
    let mut public = w.client("public").await;
    public.grant_types.push(GrantType::ClientCredentials);
    assert_eq!(public.auth_method, AuthMethod::None);
    let got = token::exchange(&w.ctx, &public, &form(&cc)).await;
    assert_eq!(code_of(got), TokenErrorCode::UnauthorizedClient);
}

#[tokio::test]
async fn the_id_token_is_signed_with_the_clients_algorithm() {
    let w = world().await;
    let mut first = w.client("first").await;
    first.id_token_alg = Alg::ES256;
    let session = w.signed_in(&w.alice).await;
    let code = w.code(&session, "first", "openid").await;
    let pairs = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ]);
    let issued = token::exchange(&w.ctx, &first, &pairs).await.unwrap();
    let header = jsonwebtoken::decode_header(issued.id_token.as_deref().unwrap()).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
}

/// The refresh tokens of `client` that are neither used nor revoked.
async fn live_refresh_tokens(w: &World, client: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM refresh_tokens \
         WHERE client_id = $1 AND used_at IS NULL AND revoked_at IS NULL",
    )
    .bind(client)
    .fetch_one(w.ctx.store.db().read())
    .await
    .unwrap();
    n
}

#[tokio::test]
async fn a_retry_in_the_grace_window_gets_the_same_successor() {
    let w = world().await;
    let session = w.signed_in(&w.alice).await;
    let code = w.code(&session, "first", "openid").await;
    let rt = redeem(&w, "first", &code, &[])
        .await
        .unwrap()
        .refresh_token
        .unwrap();
    let one = refresh(&w, "first", &rt, None)
        .await
        .unwrap()
        .refresh_token
        .unwrap();
    let two = refresh(&w, "first", &rt, None)
        .await
        .unwrap()
        .refresh_token
        .unwrap();
    assert_eq!(one, two, "no second branch of the family");
    assert_eq!(live_refresh_tokens(&w, "first").await, 1);
    // The successor rotates on as usual.
    assert!(refresh(&w, "first", &one, None).await.is_ok());
    assert_eq!(live_refresh_tokens(&w, "first").await, 1);
}

#[tokio::test]
async fn no_grace_is_no_retry_even_within_the_second() {
    let mut ctx = crate::context::testing::ctx().await;
    let config = &mut std::sync::Arc::get_mut(&mut ctx.ctx).unwrap().config;
    config.tokens.refresh_grace = Duration::ZERO;
    let w = world_on(ctx).await;
    let session = w.signed_in(&w.alice).await;
    let code = w.code(&session, "first", "openid").await;
    let rt = redeem(&w, "first", &code, &[])
        .await
        .unwrap()
        .refresh_token
        .unwrap();
    let next = refresh(&w, "first", &rt, None)
        .await
        .unwrap()
        .refresh_token
        .unwrap();
    assert_eq!(
        code_of(refresh(&w, "first", &rt, None).await),
        TokenErrorCode::InvalidGrant
    );
    assert_eq!(
        code_of(refresh(&w, "first", &next, None).await),
        TokenErrorCode::InvalidGrant,
        "the family went"
    );
}

/// Forty uses of one refresh token at once: every answer carries the same successor, and one
/// live token is left in the family.
async fn concurrent_uses_leave_one_successor(w: World) {
    let w = std::sync::Arc::new(w);
    let session = w.signed_in(&w.alice).await;
    let code = w.code(&session, "first", "openid").await;
    let rt = redeem(&w, "first", &code, &[])
        .await
        .unwrap()
        .refresh_token
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let (w, rt) = (w.clone(), rt.clone());
        tasks.spawn(async move {
            refresh(&w, "first", &rt, None)
                .await
                .map(|r| r.refresh_token)
        });
    }
    let mut successors = std::collections::BTreeSet::new();
    while let Some(done) = tasks.join_next().await {
        successors.insert(done.unwrap().unwrap().unwrap());
    }
    assert_eq!(successors.len(), 1, "{successors:?}");
    assert_eq!(live_refresh_tokens(&w, "first").await, 1);
}

#[tokio::test]
async fn concurrent_uses_of_one_refresh_token_leave_one_successor_on_sqlite() {
    concurrent_uses_leave_one_successor(world().await).await;
}

#[tokio::test]
async fn concurrent_uses_of_one_refresh_token_leave_one_successor_on_postgres() {
    let Some(ctx) = crate::context::testing::postgres_ctx("refresh successors (PostgreSQL)").await
    else {
        return;
    };
    concurrent_uses_leave_one_successor(world_on(ctx).await).await;
}

/// A family issued by a provider version that kept no grants (still running beside this one
/// during an upgrade) has no `grants` row: its refresh records one and goes on.
#[tokio::test]
async fn a_family_from_before_the_grants_table_is_adopted_on_refresh() {
    let w = world().await;
    let session = w.signed_in(&w.alice).await;
    let code = w.code(&session, "first", "openid offline_access").await;
    let rt = redeem(&w, "first", &code, &[])
        .await
        .unwrap()
        .refresh_token
        .unwrap();
    let db = w.ctx.store.db();
    sqlx::query("DELETE FROM grants")
        .execute(db.write())
        .await
        .unwrap();
    let next = refresh(&w, "first", &rt, None).await.expect("adopted");
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM grants WHERE revoked_at IS NULL")
        .fetch_one(db.read())
        .await
        .unwrap();
    assert_eq!(n, 1, "the grant has its row again");
    // And from now on it is revoked like any other.
    let now = w.ctx.clock.unix();
    let revoked = w
        .ctx
        .store
        .revoke(crate::store::Revoke::User(&w.alice), now)
        .await
        .unwrap();
    assert_eq!(revoked, 1);
    assert_eq!(
        code_of(refresh(&w, "first", &next.refresh_token.unwrap(), None).await),
        TokenErrorCode::InvalidGrant
    );
}

on_both_databases! {
    a_failed_refresh:
        a_failed_refresh_leaves_its_token_unspent_on_sqlite,
        a_failed_refresh_leaves_its_token_unspent_on_postgres;
}
