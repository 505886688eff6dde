//! One notion of a live grant under concurrency: a session end, a revocation and the
//! issuances they race (a code issued, a code redeemed, a refresh), run as hundreds of
//! concurrent pairs on SQLite and on PostgreSQL. Whatever order each pair commits in, no token
//! survives: every token row left is revoked, every code left is unusable.

use super::{REDIRECT, VERIFIER, World, form, world, world_on};
use crate::context::testing;
use crate::protocol::error::TokenError;
use crate::protocol::token::{self, TokenResponse};
use crate::users::sign_out_session;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::SeqCst;

/// Pairs per test: enough for every interleaving to come up on a busy two-core machine.
const PAIRS: usize = 120;

async fn redeem(w: &World, code: &str) -> Result<TokenResponse, TokenError> {
    let pairs = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    token::exchange(&w.ctx, &w.client("first").await, &form(&pairs)).await
}

async fn refresh(w: &World, rt: &str) -> Result<TokenResponse, TokenError> {
    let pairs = [("grant_type", "refresh_token"), ("refresh_token", rt)];
    token::exchange(&w.ctx, &w.client("first").await, &form(&pairs)).await
}

/// Tokens of `user_id` not revoked: access tokens, and refresh tokens not yet rotated.
async fn survivors(w: &World, user_id: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM access_tokens WHERE user_id = $1 AND revoked_at IS NULL) \
         + (SELECT COUNT(*) FROM refresh_tokens \
            WHERE user_id = $1 AND revoked_at IS NULL AND used_at IS NULL)",
    )
    .bind(user_id)
    .fetch_one(w.ctx.store.db().read())
    .await
    .unwrap();
    n
}

/// Pairs run at once: few enough that no request waits long for a worker or a connection.
const WAVE: usize = 10;

/// Runs `pairs` of futures, the two of each pair as separate tasks, [`WAVE`] pairs at a time,
/// each side started after its own spread-out delay (0 to 10 ms), so that every order of
/// the two comes up: the first before, inside and after the second. Returns how many of the
/// first succeeded and failed.
async fn race<A, B>(pairs: Vec<(A, B)>) -> (usize, usize)
where
    A: Future<Output = bool> + Send + 'static,
    B: Future<Output = ()> + Send + 'static,
{
    race_at(0, pairs).await
}

/// [`race`], the pairs numbered from `first` (for their delays).
async fn race_at<A, B>(first: usize, pairs: Vec<(A, B)>) -> (usize, usize)
where
    A: Future<Output = bool> + Send + 'static,
    B: Future<Output = ()> + Send + 'static,
{
    let delay =
        |i: usize, prime: usize| std::time::Duration::from_micros((i * prime % 101) as u64 * 100);
    let (mut won, mut lost) = (0, 0);
    let mut pairs = pairs
        .into_iter()
        .enumerate()
        .map(|(i, p)| (first + i, p))
        .peekable();
    while pairs.peek().is_some() {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, (a, b)) in pairs.by_ref().take(WAVE) {
            let (da, db) = (delay(i, 7919), delay(i, 104_729));
            tasks.spawn(async move {
                tokio::time::sleep(da).await;
                Some(a.await)
            });
            tasks.spawn(async move {
                tokio::time::sleep(db).await;
                b.await;
                None
            });
        }
        while let Some(done) = tasks.join_next().await {
            match done.unwrap() {
                Some(true) => won += 1,
                Some(false) => lost += 1,
                None => {}
            }
        }
    }
    (won, lost)
}

/// A code redeemed while its session ends.
async fn redemption_against_session_end(w: World) {
    let w = Arc::new(w);
    let mut pairs = Vec::new();
    for _ in 0..PAIRS {
        let session = w.signed_in(&w.alice).await;
        let code = w.code(&session, "first", "openid").await;
        let (w1, w2) = (w.clone(), w.clone());
        pairs.push((
            async move { redeem(&w1, &code).await.is_ok() },
            async move {
                assert!(
                    sign_out_session(&w2.ctx, &w2.alice, &session.handle)
                        .await
                        .unwrap()
                );
            },
        ));
    }
    let (won, lost) = race(pairs).await;
    eprintln!("redemptions before the end: {won}, after: {lost}");
    assert_eq!(survivors(&w, &w.alice).await, 0);
}

/// One code redeemed twice at once (a replay racing the rightful redemption): never both
/// answered, and whichever commits first, the other (the replay) revokes what it issued
/// (RFC 6749 §4.1.2).
async fn redemption_against_redemption(w: World) {
    let w = Arc::new(w);
    let mut pairs = Vec::new();
    let mut seconds = Vec::new();
    for _ in 0..PAIRS {
        let session = w.signed_in(&w.alice).await;
        let code = w.code(&session, "first", "openid").await;
        let (w1, w2, again) = (w.clone(), w.clone(), code.clone());
        let (first, second) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        seconds.push((first.clone(), second.clone()));
        pairs.push((
            async move {
                let ok = redeem(&w1, &code).await.is_ok();
                first.store(ok, SeqCst);
                ok
            },
            async move { second.store(redeem(&w2, &again).await.is_ok(), SeqCst) },
        ));
    }
    let (won, lost) = race(pairs).await;
    let twice = seconds
        .iter()
        .filter(|(a, b)| a.load(SeqCst) && b.load(SeqCst))
        .count();
    let second = seconds.iter().filter(|(_, b)| b.load(SeqCst)).count();
    eprintln!("first redemptions answered: {won}, refused: {lost}; second answered: {second}");
    assert_eq!(twice, 0, "a code was answered twice");
    assert_eq!(survivors(&w, &w.alice).await, 0);
}

/// An online grant refreshed while its session ends.
async fn refresh_against_session_end(w: World) {
    let w = Arc::new(w);
    let mut pairs = Vec::new();
    for _ in 0..PAIRS {
        let session = w.signed_in(&w.alice).await;
        let code = w.code(&session, "first", "openid").await;
        let rt = redeem(&w, &code).await.unwrap().refresh_token.unwrap();
        let (w1, w2) = (w.clone(), w.clone());
        pairs.push(
            (async move { refresh(&w1, &rt).await.is_ok() }, async move {
                assert!(
                    sign_out_session(&w2.ctx, &w2.alice, &session.handle)
                        .await
                        .unwrap()
                );
            }),
        );
    }
    let (won, lost) = race(pairs).await;
    eprintln!("refreshes before the end: {won}, after: {lost}");
    assert_eq!(survivors(&w, &w.alice).await, 0);
}

/// A code issued while its session ends: a code that got out cannot be redeemed.
async fn issuance_against_session_end(w: World) {
    let w = Arc::new(w);
    let (codes, codes_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut pairs = Vec::new();
    for _ in 0..PAIRS {
        let session = w.signed_in(&w.alice).await;
        let (w1, w2, codes) = (w.clone(), w.clone(), codes.clone());
        let handle = session.handle.clone();
        pairs.push((
            async move {
                let params = super::authorize_params("first", &[("scope", "openid")]);
                match crate::protocol::authorize::authorize(&w1.ctx, &params, Some(&session)).await
                {
                    Ok(crate::protocol::authorize::Next::Code(c)) => {
                        codes.send(c.code).unwrap();
                        true
                    }
                    _ => false,
                }
            },
            async move {
                assert!(sign_out_session(&w2.ctx, &w2.alice, &handle).await.unwrap());
            },
        ));
    }
    drop(codes);
    let (won, lost) = race(pairs).await;
    eprintln!("codes issued before the end: {won}, refused after it: {lost}");
    let mut codes_rx = codes_rx;
    while let Some(code) = codes_rx.recv().await {
        assert!(
            redeem(&w, &code).await.is_err(),
            "a code of an ended session"
        );
    }
    assert_eq!(survivors(&w, &w.alice).await, 0);
}

/// An offline grant refreshed while its refresh token is revoked (RFC 7009).
async fn refresh_against_revocation(w: World) {
    let w = Arc::new(w);
    let session = w.signed_in(&w.alice).await;
    let mut pairs = Vec::new();
    for _ in 0..PAIRS {
        let code = w.code(&session, "first", "openid offline_access").await;
        let rt = redeem(&w, &code).await.unwrap().refresh_token.unwrap();
        let (w1, w2, revoked) = (w.clone(), w.clone(), rt.clone());
        pairs.push(
            (async move { refresh(&w1, &rt).await.is_ok() }, async move {
                let client = w2.client("first").await;
                let form = form(&[("token", &revoked)]);
                crate::protocol::revocation::revoke(&w2.ctx, &client, &form)
                    .await
                    .unwrap();
            }),
        );
    }
    let (won, lost) = race(pairs).await;
    eprintln!("refreshes before the revocation: {won}, after: {lost}");
    assert_eq!(survivors(&w, &w.alice).await, 0);
}

/// A third-party app signing in (a code issued on the strength of the user's consent, then
/// redeemed) while the user disconnects it. The pairs run one after the other, each with the
/// consent given afresh, since every disconnect takes the consent away.
async fn sign_in_against_disconnect(w: World) {
    let w = Arc::new(w);
    let session = w.signed_in(&w.alice).await;
    let scopes = crate::types::ScopeSet::parse_known("openid profile");
    let (mut won, mut lost) = (0, 0);
    for i in 0..PAIRS {
        let now = w.ctx.clock.unix();
        w.ctx
            .store
            .grant_consent(&w.alice, "third", scopes, None, now)
            .await
            .unwrap();
        let (w1, w2, session) = (w.clone(), w.clone(), session.clone());
        let pair = vec![(
            async move {
                let params = super::authorize_params("third", &[]);
                let next =
                    crate::protocol::authorize::authorize(&w1.ctx, &params, Some(&session)).await;
                match next {
                    Ok(crate::protocol::authorize::Next::Code(c)) => {
                        let pairs = [
                            ("grant_type", "authorization_code"),
                            ("code", c.code.as_str()),
                            ("redirect_uri", REDIRECT),
                            ("code_verifier", VERIFIER),
                        ];
                        let client = w1.client("third").await;
                        token::exchange(&w1.ctx, &client, &form(&pairs))
                            .await
                            .is_ok()
                    }
                    _ => false,
                }
            },
            async move {
                crate::users::apps::disconnect_by_owner(&w2.ctx, &w2.alice, "third")
                    .await
                    .unwrap();
            },
        )];
        // The pair's place in the list sets its delays (see `race`).
        let (a, b) = race_at(i, pair).await;
        won += a;
        lost += b;
    }
    eprintln!("sign-ins before the disconnect: {won}, after: {lost}");
    assert_eq!(survivors(&w, &w.alice).await, 0);
}

on_both_databases! {
    redemption_against_redemption:
        a_code_redeemed_twice_at_once_leaves_nothing_on_sqlite,
        a_code_redeemed_twice_at_once_leaves_nothing_on_postgres;
    redemption_against_session_end:
        no_code_redeemed_as_its_session_ends_survives_on_sqlite,
        no_code_redeemed_as_its_session_ends_survives_on_postgres;
    refresh_against_session_end:
        no_refresh_as_its_session_ends_survives_on_sqlite,
        no_refresh_as_its_session_ends_survives_on_postgres;
    issuance_against_session_end:
        no_code_issued_as_its_session_ends_is_redeemable_on_sqlite,
        no_code_issued_as_its_session_ends_is_redeemable_on_postgres;
    refresh_against_revocation:
        no_refresh_as_its_token_is_revoked_survives_on_sqlite,
        no_refresh_as_its_token_is_revoked_survives_on_postgres;
    sign_in_against_disconnect:
        no_sign_in_as_the_app_is_disconnected_survives_on_sqlite,
        no_sign_in_as_the_app_is_disconnected_survives_on_postgres;
}
