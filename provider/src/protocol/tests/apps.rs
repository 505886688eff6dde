//! Connected apps (`users::apps`): what the account page lists, disconnecting one app, and
//! the account changes that revoke every grant (offline ones included).

use super::{REDIRECT, VERIFIER, World, form, world};
use crate::protocol::authorize::{self, Next};
use crate::protocol::error::TokenError;
use crate::protocol::token::{self, TokenResponse};
use crate::protocol::userinfo;
use crate::types::ScopeSet;
use crate::users::{admin, apps, sign_out_everywhere};

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

async fn refresh(w: &World, client: &str, t: &TokenResponse) -> Result<TokenResponse, TokenError> {
    let rt = t.refresh_token.as_deref().unwrap();
    let pairs = [("grant_type", "refresh_token"), ("refresh_token", rt)];
    token::exchange(&w.ctx, &w.client(client).await, &form(&pairs)).await
}

async fn works(w: &World, t: &TokenResponse) -> bool {
    userinfo::userinfo(&w.ctx, &t.access_token).await.is_ok()
}

async fn consent_to_third(w: &World) {
    let scopes = ScopeSet::parse_known("openid profile");
    let now = w.ctx.clock.unix();
    w.ctx
        .store
        .grant_consent(&w.alice, "third", scopes, None, now)
        .await
        .unwrap();
}

#[tokio::test]
async fn connected_apps_are_the_consents_and_the_live_grants() {
    let w = world().await;
    consent_to_third(&w).await;
    // The clock is the wall clock moved on by the test: a second may tick between any two
    // steps, so each time is read around the step it checks.
    let first_at = w.ctx.clock.unix();
    tokens(&w, "first", "openid").await;
    let first_by = w.ctx.clock.unix();
    w.ctx.clock.advance(std::time::Duration::from_secs(60));
    let offline_at = w.ctx.clock.unix();
    let offline = tokens(&w, "first", "openid offline_access").await;
    let offline_by = w.ctx.clock.unix();
    // A revoked grant connects nothing.
    let gone = tokens(&w, "public", "openid").await;
    let client = w.client("public").await;
    let revoke = form(&[("token", gone.access_token.as_str())]);
    crate::protocol::revocation::revoke(&w.ctx, &client, &revoke)
        .await
        .unwrap();
    let now = w.ctx.clock.unix();
    w.ctx
        .store
        .revoke(
            crate::store::Revoke::App {
                user_id: &w.alice,
                client_id: "public",
            },
            now,
        )
        .await
        .unwrap();
    let listed = apps::connected_apps(&w.ctx.store, &w.alice, now)
        .await
        .unwrap();
    let names: Vec<&str> = listed.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["App first", "App third"]);
    let first = &listed[0];
    assert_eq!((first.online, first.offline), (1, 1));
    assert!(first.keeps_offline_access());
    assert_eq!(first.scopes.to_string(), "openid offline_access");
    let used = first.last_used.expect("used");
    assert!(
        (offline_at..=offline_by).contains(&used),
        "its latest token"
    );
    assert!(
        (first_at..=first_by).contains(&first.since),
        "its first grant"
    );
    let third = &listed[1];
    assert_eq!((third.online, third.offline, third.last_used), (0, 0, None));
    assert!(!third.keeps_offline_access());
    assert_eq!(third.scopes.to_string(), "openid profile");
    // A refresh is a use.
    w.ctx.clock.advance(std::time::Duration::from_secs(30));
    let refreshed_at = w.ctx.clock.unix();
    refresh(&w, "first", &offline).await.unwrap();
    let listed = apps::connected_apps(&w.ctx.store, &w.alice, w.ctx.clock.unix())
        .await
        .unwrap();
    let used = listed[0].last_used.expect("used");
    assert!(
        used >= refreshed_at && used > offline_by,
        "a refresh is a use"
    );
    assert!(
        apps::connected_apps(&w.ctx.store, &w.bob, now)
            .await
            .unwrap()
            .is_empty(),
        "nothing of Alice's shows for Bob"
    );
}

#[tokio::test]
async fn disconnecting_an_app_ends_its_grants_and_consent_and_nothing_else() {
    let w = world().await;
    consent_to_third(&w).await;
    let online = tokens(&w, "first", "openid").await;
    let offline = tokens(&w, "first", "openid offline_access").await;
    let third = tokens(&w, "third", "openid profile").await;
    let session = w.signed_in(&w.alice).await;
    let done = apps::disconnect_by_owner(&w.ctx, &w.alice, "first")
        .await
        .unwrap();
    assert_eq!(done.grants, 2);
    assert!(done.anything());
    for t in [&online, &offline] {
        assert!(!works(&w, t).await, "its access tokens stop at once");
        assert!(
            refresh(&w, "first", t).await.is_err(),
            "and its refresh tokens"
        );
    }
    assert!(works(&w, &third).await, "another app's grant is untouched");
    assert!(refresh(&w, "third", &third).await.is_ok());
    // The user stays signed in; a first-party app may sign in again.
    w.code(&session, "first", "openid").await;
    // A third-party app disconnected asks for consent again.
    apps::disconnect_by_owner(&w.ctx, &w.alice, "third")
        .await
        .unwrap();
    let params = super::authorize_params("third", &[]);
    let next = authorize::authorize(&w.ctx, &params, Some(&session)).await;
    assert!(matches!(next, Ok(Next::Consent(_))), "{next:?}");
    // Twice is nothing more.
    let again = apps::disconnect_by_owner(&w.ctx, &w.alice, "third")
        .await
        .unwrap();
    assert!(!again.anything(), "{again:?}");
}

#[tokio::test]
async fn sign_out_everywhere_keeps_offline_grants_a_new_password_does_not() {
    let w = world().await;
    let online = tokens(&w, "first", "openid").await;
    let offline = tokens(&w, "first", "openid offline_access").await;
    sign_out_everywhere(&w.ctx, &w.alice).await.unwrap();
    assert!(
        refresh(&w, "first", &online).await.is_err(),
        "online: ended"
    );
    let offline = refresh(&w, "first", &offline).await.expect("offline: kept");
    admin::change_password(
        &w.ctx.store,
        &w.ctx.sessions,
        "alice",
        "n3w-password".into(),
    )
    .await
    .unwrap();
    assert!(!works(&w, &offline).await);
    assert!(
        refresh(&w, "first", &offline).await.is_err(),
        "after a new password: gone"
    );
    let kinds: Vec<String> = w
        .ctx
        .store
        .audit_tail(50)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert!(kinds.iter().any(|k| k == "grants.revoked"), "{kinds:?}");
}

#[tokio::test]
async fn a_disabled_account_loses_its_offline_grants() {
    let w = world().await;
    let offline = tokens(&w, "first", "openid offline_access").await;
    admin::set_disabled(&w.ctx.store, &w.ctx.sessions, "alice", true)
        .await
        .unwrap();
    admin::set_disabled(&w.ctx.store, &w.ctx.sessions, "alice", false)
        .await
        .unwrap();
    assert!(
        refresh(&w, "first", &offline).await.is_err(),
        "re-enabling brings nothing back"
    );
}

#[tokio::test]
async fn an_operator_revokes_one_apps_grants_or_all_of_them() {
    let w = world().await;
    consent_to_third(&w).await;
    let first = tokens(&w, "first", "openid offline_access").await;
    let third = tokens(&w, "third", "openid").await;
    let now = w.ctx.clock.unix();
    let one = admin::revoke_grants(&w.ctx.store, "alice", Some("first"), now)
        .await
        .unwrap();
    assert_eq!(one.grants, 1);
    assert!(refresh(&w, "first", &first).await.is_err());
    let third = refresh(&w, "third", &third)
        .await
        .expect("the other app is kept");
    let all = admin::revoke_grants(&w.ctx.store, "alice", None, now)
        .await
        .unwrap();
    assert_eq!(all.grants, 1);
    assert!(all.consent, "the consent to third went too");
    assert!(refresh(&w, "third", &third).await.is_err());
    assert!(
        apps::connected_apps(&w.ctx.store, &w.alice, now)
            .await
            .unwrap()
            .is_empty()
    );
    let nobody = admin::revoke_grants(&w.ctx.store, "mallory", None, now).await;
    assert!(matches!(nobody, Err(admin::AdminError::NoSuchUser(_))));
}
