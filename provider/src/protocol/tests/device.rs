//! The device authorization grant (RFC 8628): a device's codes, the person's answer, the
//! polls, and every way the approval stops holding. Time moves by the injected clock.

use super::{REDIRECT, World, form, register, world, world_on};
use crate::context::testing;
use crate::protocol::device::{self, Answer, Decided, DeviceAuthorization, DeviceRequest, Found};
use crate::protocol::error::TokenError;
use crate::protocol::token::{self, TokenResponse};
use crate::protocol::userinfo;
use crate::store::{DEVICE_REDIRECT, Poll};
use crate::types::{AuthMethod, GrantType, TokenErrorCode};
use infra::secret::hash_secret;
use sessions::Session;
use std::time::Duration;

on_both_databases! {
    an_approved_device_gets_tokens_once:
        approved_device_on_sqlite, approved_device_on_postgres;
    an_approval_and_its_tokens_end_with_the_session_that_gave_them:
        approval_ends_with_session_on_sqlite, approval_ends_with_session_on_postgres;
    polls_sooner_than_the_interval_slow_the_device_down:
        slow_down_on_sqlite, slow_down_on_postgres;
}

/// `world` plus `tv`, a public client of the device flow with refresh tokens (first-party),
/// and `tv-third`, the same as a third-party app.
async fn devices() -> World {
    with_devices(world().await).await
}

async fn with_devices(w: World) -> World {
    let grants = [GrantType::DeviceCode, GrantType::RefreshToken];
    register(&w.ctx, "tv", &grants, AuthMethod::None, true).await;
    register(&w.ctx, "tv-third", &grants, AuthMethod::None, false).await;
    w
}

async fn start(w: &World, client: &str, scope: &str) -> Result<DeviceAuthorization, TokenError> {
    let pairs = [("client_id", client), ("scope", scope)];
    device::start(&w.ctx, &w.client(client).await, &form(&pairs)).await
}

async fn poll(w: &World, client: &str, device_code: &str) -> Result<TokenResponse, TokenError> {
    let pairs = [
        ("grant_type", GrantType::DeviceCode.as_str()),
        ("device_code", device_code),
    ];
    token::exchange(&w.ctx, &w.client(client).await, &form(&pairs)).await
}

fn code_of(r: Result<TokenResponse, TokenError>) -> Option<TokenErrorCode> {
    r.err().and_then(|e| e.code())
}

async fn find(w: &World, user_id: &str, typed: &str) -> Found {
    device::find(&w.ctx, user_id, Some("192.0.2.7"), typed)
        .await
        .unwrap()
}

async fn found(w: &World, typed: &str) -> DeviceRequest {
    match find(w, &w.alice, typed).await {
        Found::Request(req) => *req,
        other => panic!("no request for {typed}: {other:?}"),
    }
}

/// Starts a request for `client` and has alice (signed in on `session`) answer it.
async fn answered(
    w: &World,
    session: &Session,
    client: &str,
    scope: &str,
    answer: Answer,
) -> (DeviceAuthorization, Decided) {
    let started = start(w, client, scope).await.unwrap();
    let req = found(w, &started.user_code).await;
    let decided = device::decide(&w.ctx, session, &req, answer).await.unwrap();
    (started, decided)
}

async fn an_approved_device_gets_tokens_once(w: World) {
    let w = with_devices(w).await;
    let session = w.signed_in(&w.alice).await;
    let started = start(&w, "tv", "openid profile offline_access nonsense")
        .await
        .unwrap();
    assert_eq!(started.verification_uri, "https://idp.example/device");
    assert!(
        started
            .verification_uri_complete
            .starts_with("https://idp.example/device?user_code=")
    );
    assert_eq!(started.user_code.len(), 9, "{}", started.user_code);
    assert_eq!((started.expires_in, started.interval), (600, 5));
    assert_eq!(
        code_of(poll(&w, "tv", &started.device_code).await),
        Some(TokenErrorCode::AuthorizationPending)
    );

    let req = found(&w, &started.user_code.to_lowercase().replace('-', " ")).await;
    assert_eq!(req.client.client_id, "tv");
    assert_eq!(req.scope.to_string(), "openid profile offline_access");
    let decided = device::decide(&w.ctx, &session, &req, Answer::Approve).await;
    assert_eq!(decided.unwrap(), Decided::Approved);
    // Answered: the code finds nothing more, and a second answer is too late.
    assert!(matches!(
        find(&w, &w.alice, &started.user_code).await,
        Found::Nothing
    ));
    let again = device::decide(&w.ctx, &session, &req, Answer::Deny).await;
    assert_eq!(again.unwrap(), Decided::TooLate);

    let tokens = poll(&w, "tv", &started.device_code).await.unwrap();
    assert!(tokens.id_token.is_some() && tokens.refresh_token.is_some());
    assert_eq!(tokens.scope, "openid profile offline_access");
    let claims = userinfo::userinfo(&w.ctx, &tokens.access_token)
        .await
        .unwrap();
    assert_eq!(claims.sub, w.alice);
    // Used once: polled again (a lost answer, two polls at once), `invalid_grant`, and the
    // tokens it was given stand (unlike a replayed authorization code's).
    assert_eq!(
        code_of(poll(&w, "tv", &started.device_code).await),
        Some(TokenErrorCode::InvalidGrant)
    );
    assert!(
        userinfo::userinfo(&w.ctx, &tokens.access_token)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn denied_expired_unknown_and_foreign_device_codes_are_refused() {
    let w = devices().await;
    let session = w.signed_in(&w.alice).await;
    let (denied, decided) = answered(&w, &session, "tv", "openid", Answer::Deny).await;
    assert_eq!(decided, Decided::Denied);
    assert_eq!(
        code_of(poll(&w, "tv", &denied.device_code).await),
        Some(TokenErrorCode::AccessDenied)
    );

    let late = start(&w, "tv", "openid").await.unwrap();
    let req = found(&w, &late.user_code).await;
    w.ctx.clock.advance(Duration::from_secs(601));
    assert_eq!(
        code_of(poll(&w, "tv", &late.device_code).await),
        Some(TokenErrorCode::ExpiredToken)
    );
    assert!(matches!(
        find(&w, &w.alice, &late.user_code).await,
        Found::Nothing
    ));
    let too_late = device::decide(&w.ctx, &session, &req, Answer::Approve).await;
    assert_eq!(too_late.unwrap(), Decided::TooLate);

    let fresh = start(&w, "tv", "openid").await.unwrap();
    assert_eq!(
        code_of(poll(&w, "tv-third", &fresh.device_code).await),
        Some(TokenErrorCode::InvalidGrant),
        "another client's device code"
    );
    assert_eq!(
        code_of(poll(&w, "tv", "not-a-device-code").await),
        Some(TokenErrorCode::InvalidGrant)
    );
    let missing = [("grant_type", GrantType::DeviceCode.as_str())];
    let r = token::exchange(&w.ctx, &w.client("tv").await, &form(&missing)).await;
    assert_eq!(code_of(r), Some(TokenErrorCode::InvalidRequest));
    // A client not registered for the grant may neither start nor poll.
    let r = start(&w, "public", "openid").await;
    assert_eq!(
        r.unwrap_err().code(),
        Some(TokenErrorCode::UnauthorizedClient)
    );
    assert_eq!(
        code_of(poll(&w, "public", &fresh.device_code).await),
        Some(TokenErrorCode::UnauthorizedClient)
    );
}

/// The approval is a code of its own kind: never redeemed by the code grant, and a code of
/// the authorization endpoint never by the device grant.
#[tokio::test]
async fn approvals_and_authorization_codes_do_not_cross_grants() {
    let w = devices().await;
    let grants = [
        GrantType::AuthorizationCode,
        GrantType::DeviceCode,
        GrantType::RefreshToken,
    ];
    // Confidential, and without PKCE: nothing but the grant check tells the two apart.
    register(&w.ctx, "both", &grants, AuthMethod::ClientSecretBasic, true).await;
    let flag = crate::store::ClientFlag::RequirePkce;
    w.ctx
        .store
        .set_client_flag("both", flag, false)
        .await
        .unwrap();
    let session = w.signed_in(&w.alice).await;
    let (started, _) = answered(&w, &session, "both", "openid", Answer::Approve).await;
    let as_code = [
        ("grant_type", "authorization_code"),
        ("code", started.device_code.as_str()),
        ("redirect_uri", DEVICE_REDIRECT),
    ];
    let r = token::exchange(&w.ctx, &w.client("both").await, &form(&as_code)).await;
    match r {
        Err(TokenError::OAuth { code, description }) => {
            assert_eq!(code, TokenErrorCode::InvalidGrant);
            assert!(
                description.contains("not issued for this grant"),
                "{description}"
            );
        }
        other => panic!("redeemed as a code: {other:?}"),
    }
    // Refused before anything was spent: the device still gets its tokens.
    assert!(poll(&w, "both", &started.device_code).await.is_ok());

    let code = w.code(&session, "both", "openid").await;
    assert_eq!(
        code_of(poll(&w, "both", &code).await),
        Some(TokenErrorCode::InvalidGrant)
    );
    // Even an approved device request under that very hash does not redeem the code: the
    // grant check refuses it, not the missing row.
    let hash = hash_secret(&code);
    let now = w.ctx.clock.unix();
    let request = crate::store::NewDevice {
        device_code_hash: &hash,
        user_code_hash: "not-a-user-code",
        client_id: "both",
        scope: crate::types::ScopeSet::parse_known("openid"),
        created_at: now,
        expires_at: now + 600,
        poll_interval: 5,
    };
    let stored = w.ctx.store.insert_device(&request);
    assert!(stored.await.unwrap());
    sqlx::query("UPDATE device_authorizations SET approved_at = $1 WHERE device_code_hash = $2")
        .bind(now)
        .bind(&hash)
        .execute(w.ctx.store.db().write())
        .await
        .unwrap();
    match poll(&w, "both", &code).await {
        Err(TokenError::OAuth { code, description }) => {
            assert_eq!(code, TokenErrorCode::InvalidGrant);
            assert!(
                description.contains("not issued for this grant"),
                "{description}"
            );
        }
        other => panic!("redeemed as a device code: {other:?}"),
    }
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", super::VERIFIER),
    ];
    let r = token::exchange(&w.ctx, &w.client("both").await, &form(&redeem)).await;
    assert!(r.is_ok(), "the authorization code is unspent");
}

/// An approval lives in the browser session that gave it (unless `offline_access`): ended
/// before the device polls, the device hears `access_denied`; ended after, its tokens die.
async fn an_approval_and_its_tokens_end_with_the_session_that_gave_them(w: World) {
    let w = with_devices(w).await;
    let session = w.signed_in(&w.alice).await;
    let (before, _) = answered(&w, &session, "tv", "openid", Answer::Approve).await;
    let (after, _) = answered(&w, &session, "tv", "openid", Answer::Approve).await;
    let tokens = poll(&w, "tv", &after.device_code).await.unwrap();
    crate::users::sign_out_everywhere(&w.ctx, &w.alice)
        .await
        .unwrap();
    assert_eq!(
        code_of(poll(&w, "tv", &before.device_code).await),
        Some(TokenErrorCode::AccessDenied)
    );
    assert!(
        userinfo::userinfo(&w.ctx, &tokens.access_token)
            .await
            .is_err()
    );
    let refreshed = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens.refresh_token.as_deref().unwrap()),
    ];
    let r = token::exchange(&w.ctx, &w.client("tv").await, &form(&refreshed)).await;
    assert_eq!(code_of(r), Some(TokenErrorCode::InvalidGrant));
    // The ended session approves nothing more.
    let started = start(&w, "tv", "openid").await.unwrap();
    let req = found(&w, &started.user_code).await;
    let decided = device::decide(&w.ctx, &session, &req, Answer::Approve).await;
    assert_eq!(decided.unwrap(), Decided::TooLate);
}

#[tokio::test]
async fn scopes_follow_the_request_and_the_client() {
    let w = devices().await;
    register(
        &w.ctx,
        "tv-no-refresh",
        &[GrantType::DeviceCode],
        AuthMethod::None,
        true,
    )
    .await;
    let session = w.signed_in(&w.alice).await;
    // Without `openid` (RFC 8628 is OAuth): an access token alone.
    let (plain, _) = answered(&w, &session, "tv", "profile", Answer::Approve).await;
    let tokens = poll(&w, "tv", &plain.device_code).await.unwrap();
    assert!(tokens.id_token.is_none());
    assert_eq!(tokens.scope, "profile");
    // A client that may not hold refresh tokens is not given `offline_access`, nor one.
    let started = start(&w, "tv-no-refresh", "openid offline_access")
        .await
        .unwrap();
    let req = found(&w, &started.user_code).await;
    assert_eq!(req.scope.to_string(), "openid");
    device::decide(&w.ctx, &session, &req, Answer::Approve)
        .await
        .unwrap();
    let tokens = poll(&w, "tv-no-refresh", &started.device_code)
        .await
        .unwrap();
    assert!(tokens.refresh_token.is_none() && tokens.id_token.is_some());
    // `resource` is not offered with this grant (RFC 8707 would need the API's consent).
    let with_api = [("client_id", "tv"), ("resource", "https://api.example")];
    let r = device::start(&w.ctx, &w.client("tv").await, &form(&with_api)).await;
    assert_eq!(r.unwrap_err().code(), Some(TokenErrorCode::InvalidTarget));
    // Nor `dpop_jkt` (RFC 9449 §10 binds codes): refused, so no client believes it bound.
    let jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    let with_key = [("client_id", "tv"), ("dpop_jkt", jkt)];
    let r = device::start(&w.ctx, &w.client("tv").await, &form(&with_key)).await;
    assert_eq!(r.unwrap_err().code(), Some(TokenErrorCode::InvalidRequest));
}

/// A third-party app's approval is the consent: it is remembered (and listed), and taking it
/// back (disconnecting the app) withdraws an approval not yet redeemed.
#[tokio::test]
async fn a_third_party_approval_is_a_consent_and_disconnecting_withdraws_it() {
    let w = devices().await;
    let session = w.signed_in(&w.alice).await;
    // An approval that comes too late (another tab denied it) remembers no consent.
    let started = start(&w, "tv-third", "openid email").await.unwrap();
    let req = found(&w, &started.user_code).await;
    let denied = device::decide(&w.ctx, &session, &req, Answer::Deny).await;
    assert_eq!(denied.unwrap(), Decided::Denied);
    let late = device::decide(&w.ctx, &session, &req, Answer::Approve).await;
    assert_eq!(late.unwrap(), Decided::TooLate);
    let consent = w.ctx.store.consent(&w.alice, "tv-third").await.unwrap();
    assert_eq!(consent, None);
    let (started, _) = answered(&w, &session, "tv-third", "openid email", Answer::Approve).await;
    let now = w.ctx.clock.unix();
    let connected = crate::users::apps::connected_apps(&w.ctx.store, &w.alice, now)
        .await
        .unwrap();
    assert!(connected.iter().any(|a| a.client_id == "tv-third"));
    crate::users::apps::disconnect_by_owner(&w.ctx, &w.alice, "tv-third")
        .await
        .unwrap();
    assert_eq!(
        code_of(poll(&w, "tv-third", &started.device_code).await),
        Some(TokenErrorCode::AccessDenied)
    );
}

#[tokio::test]
async fn an_app_that_needs_two_factors_sends_a_password_session_to_sign_in_again() {
    let w = devices().await;
    w.ctx
        .store
        .set_client_flag("tv", crate::store::ClientFlag::RequireMfa, true)
        .await
        .unwrap();
    let secret = crate::users::second_factor::new_secret();
    let now = w.ctx.clock.unix();
    let store = &w.ctx.store;
    assert!(store.begin_totp(&w.alice, &secret, now).await.unwrap());
    assert!(
        store
            .confirm_totp(&w.alice, &secret, 0, &[], now)
            .await
            .unwrap()
    );
    let session = w.signed_in(&w.alice).await;
    let (started, decided) = answered(&w, &session, "tv", "openid", Answer::Approve).await;
    assert_eq!(decided, Decided::SignInAgain);
    assert_eq!(
        code_of(poll(&w, "tv", &started.device_code).await),
        Some(TokenErrorCode::AuthorizationPending),
        "nothing was approved"
    );
    // Without a second factor to add, the page says so.
    let bob = w.signed_in(&w.bob).await;
    let started = start(&w, "tv", "openid").await.unwrap();
    let Found::Request(req) = find(&w, &w.bob, &started.user_code).await else {
        panic!("bob finds the request");
    };
    let refused = device::decide(&w.ctx, &bob, &req, Answer::Approve).await;
    assert!(refused.is_err());
}

/// Guessing user codes (RFC 8628 §5.1) is throttled per account, like sign-ins; a right code
/// costs nothing, and wipes out nothing: anyone can start a request of their own and look its
/// code up between guesses.
#[tokio::test]
async fn wrong_user_codes_are_throttled_per_account() {
    let w = devices().await;
    // The first wait is one second: on the running clock it could end before the next look-up.
    w.ctx.clock.freeze();
    let started = start(&w, "tv", "openid").await.unwrap();
    for _ in 0..3 {
        assert!(matches!(
            find(&w, &w.alice, &started.user_code).await,
            Found::Request(_)
        ));
    }
    let mut throttled = false;
    for _ in 0..8 {
        // The guesser's own request, looked up between guesses, resets nothing.
        assert!(matches!(
            find(&w, &w.alice, &started.user_code).await,
            Found::Request(_) | Found::Throttled { .. }
        ));
        match find(&w, &w.alice, "BCDF-GHJK").await {
            Found::Nothing => {}
            Found::Throttled { wait_secs } => {
                assert!(wait_secs >= 1);
                throttled = true;
                break;
            }
            Found::Request(_) => panic!("a guess found a request"),
        }
    }
    assert!(throttled, "wrong codes are throttled");
    // Even the right code waits now, for this account; another account is not slowed.
    assert!(matches!(
        find(&w, &w.alice, &started.user_code).await,
        Found::Throttled { .. }
    ));
    assert!(matches!(
        device::find(&w.ctx, &w.bob, None, &started.user_code)
            .await
            .unwrap(),
        Found::Request(_)
    ));
}

/// RFC 8628 §3.5: a poll sooner than the interval is `slow_down`, and the interval grows by
/// five seconds each time (to a minute at most); one that waits is on time. The times are
/// given, not read from a clock.
async fn polls_sooner_than_the_interval_slow_the_device_down(w: World) {
    let w = with_devices(w).await;
    let started = start(&w, "tv", "openid").await.unwrap();
    let hash = hash_secret(&started.device_code);
    let store = &w.ctx.store;
    let t = w.ctx.clock.unix();
    assert_eq!(store.device_polled(&hash, t).await.unwrap(), Poll::OnTime);
    assert_eq!(
        store.device_polled(&hash, t + 4).await.unwrap(),
        Poll::TooSoon
    );
    // The interval is now 10 s from the latest poll.
    assert_eq!(
        store.device_polled(&hash, t + 13).await.unwrap(),
        Poll::TooSoon
    );
    assert_eq!(
        store.device_polled(&hash, t + 28).await.unwrap(),
        Poll::OnTime
    );
    let mut at = t + 28;
    for _ in 0..20 {
        at += 1;
        store.device_polled(&hash, at).await.unwrap();
    }
    let row = store.device_by_device_code(&hash).await.unwrap().unwrap();
    assert_eq!(row.poll_interval, crate::store::MAX_POLL_INTERVAL);
    // Through the token endpoint: a device that waits (a minute after the last poll, at
    // `at`) is answered as pending.
    w.ctx
        .clock
        .advance(Duration::from_secs(u64::try_from(at - t + 61).unwrap()));
    assert_eq!(
        code_of(poll(&w, "tv", &started.device_code).await),
        Some(TokenErrorCode::AuthorizationPending)
    );
}
