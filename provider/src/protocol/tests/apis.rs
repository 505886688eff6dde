//! Access tokens for APIs (RFC 8707, RFC 9068): what a grant that names an API may obtain,
//! what a third-party app must be allowed first, and what the API's own client may learn.

use super::{REDIRECT, VERIFIER, World, authorize_params, form, world, world_on};
use crate::context::testing;
use crate::feed::{Heard, Subscription};
use crate::protocol::authorize::{self, Next};
use crate::protocol::consent::{self, Decision};
use crate::protocol::error::{AuthorizeError, TokenError};
use crate::protocol::resources::{self, ResourceSpec};
use crate::protocol::revocation::{self, introspect};
use crate::protocol::token::{self, AccessClaims, TokenResponse};
use crate::types::{AuthorizeErrorCode, TokenErrorCode};
use crate::users::admin;
use sessions::Session;
use std::time::Duration;

on_both_databases! {
    a_grant_loses_its_api_with_the_registration: a_grant_loses_its_api_with_the_registration_on_sqlite, a_grant_loses_its_api_with_the_registration_on_postgres;
    a_grant_for_an_api_gets_tokens_addressed_to_it_for_the_apis_lifetime: a_grant_for_an_api_gets_tokens_addressed_to_it_for_the_apis_lifetime_on_sqlite, a_grant_for_an_api_gets_tokens_addressed_to_it_for_the_apis_lifetime_on_postgres;
    an_api_the_grant_did_not_name_is_an_invalid_target_and_spends_nothing: an_api_the_grant_did_not_name_is_an_invalid_target_and_spends_nothing_on_sqlite, an_api_the_grant_did_not_name_is_an_invalid_target_and_spends_nothing_on_postgres;
    a_third_party_app_is_allowed_an_apis_scopes_by_the_user_once: a_third_party_app_is_allowed_an_apis_scopes_by_the_user_once_on_sqlite, a_third_party_app_is_allowed_an_apis_scopes_by_the_user_once_on_postgres;
    the_apis_client_introspects_the_tokens_addressed_to_it_only: the_apis_client_introspects_the_tokens_addressed_to_it_only_on_sqlite, the_apis_client_introspects_the_tokens_addressed_to_it_only_on_postgres;
    every_revocation_of_an_apis_token_reaches_its_feed: every_revocation_of_an_apis_token_reaches_its_feed_on_sqlite, every_revocation_of_an_apis_token_reaches_its_feed_on_postgres;
    only_the_apis_client_may_subscribe_to_its_feed: only_the_apis_client_may_subscribe_to_its_feed_on_sqlite, only_the_apis_client_may_subscribe_to_its_feed_on_postgres;
}

pub(super) const NOTES: &str = "https://notes.example";

/// Registers the Notes API (`notes:read`, `notes:write`, tokens for two minutes), whose
/// client is `service`.
async fn notes(w: &World) {
    register_api(w, NOTES, "Notes", &["notes:read", "notes:write"], "service").await;
}

pub(super) async fn register_api(w: &World, id: &str, name: &str, scopes: &[&str], client: &str) {
    let spec = ResourceSpec {
        resource_id: id.into(),
        name: Some(name.into()),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        access_token_lifetime: Some(Duration::from_secs(120)),
        access_token_alg: None,
    };
    let client = w.client(client).await;
    let now = w.ctx.clock.unix();
    let new = resources::validate(spec, Some(&client), &w.ctx.issuer, now).unwrap();
    assert!(w.ctx.store.add_resource(&new).await.unwrap());
}

/// A refresh of `rt` by `first` for `resource`, narrowed to `scope` when given.
async fn refresh(
    w: &World,
    rt: &str,
    resource: &str,
    scope: Option<&str>,
) -> Result<TokenResponse, TokenError> {
    let mut pairs = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("resource", resource),
    ];
    pairs.extend(scope.map(|s| ("scope", s)));
    token::exchange(&w.ctx, &w.client("first").await, &form(&pairs)).await
}

/// The authorization request of `client_id` for `scope` at the Notes API.
pub(super) async fn ask(
    w: &World,
    session: &Session,
    client_id: &str,
    scope: &str,
) -> Result<Next, AuthorizeError> {
    let params = authorize_params(client_id, &[("scope", scope), ("resource", NOTES)]);
    authorize::authorize(&w.ctx, &params, Some(session)).await
}

pub(super) fn code_of(next: Result<Next, AuthorizeError>) -> String {
    match next {
        Ok(Next::Code(c)) => c.code,
        other => panic!("no code: {other:?}"),
    }
}

pub(super) async fn redeem(
    w: &World,
    client: &str,
    code: &str,
    resource: Option<&str>,
) -> Result<TokenResponse, TokenError> {
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    pairs.extend(resource.map(|r| ("resource", r)));
    token::exchange(&w.ctx, &w.client(client).await, &form(&pairs)).await
}

/// The claims of an access token addressed to the Notes API, verified as the API would.
fn notes_claims(w: &World, token: &str) -> AccessClaims {
    let now = w.ctx.clock.unix();
    w.ctx
        .keys
        .current()
        .verify(token, "at+jwt", &w.ctx.issuer, NOTES, now)
        .unwrap()
}

async fn a_grant_for_an_api_gets_tokens_addressed_to_it_for_the_apis_lifetime(w: World) {
    notes(&w).await;
    let session = w.signed_in(&w.alice).await;
    let asked = "openid notes:read notes:write other:thing";
    let code = code_of(ask(&w, &session, "first", asked).await);
    let issued = redeem(&w, "first", &code, Some(NOTES)).await.unwrap();
    let claims = notes_claims(&w, &issued.access_token);
    assert_eq!(
        claims.scope, "notes:read notes:write",
        "the API's scopes that were asked"
    );
    assert_eq!(claims.sub, w.alice);
    assert_eq!(claims.exp - claims.iat, 120);
    let header = jsonwebtoken::decode_header(&issued.access_token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256, "RFC 9068 §2.1");
    assert_eq!(issued.scope, "notes:read notes:write");
    assert!(issued.id_token.is_some());
    // The token is the API's: it expires on the API's clock, not the provider's ten minutes.
    w.ctx.clock.advance(Duration::from_secs(121));
    let now = w.ctx.clock.unix();
    let expired = w.ctx.keys.current().verify::<AccessClaims>(
        &issued.access_token,
        "at+jwt",
        &w.ctx.issuer,
        NOTES,
        now,
    );
    assert!(expired.is_err());
    // Refreshing for the API may narrow its scopes, never widen them; the OpenID scopes of
    // the grant may be named alongside; nothing at all of the API is refused.
    let rt = issued.refresh_token.unwrap();
    let narrow = refresh(&w, &rt, NOTES, Some("openid notes:read"))
        .await
        .unwrap();
    assert_eq!(notes_claims(&w, &narrow.access_token).scope, "notes:read");
    let rt = narrow.refresh_token.unwrap();
    for scope in ["notes:read notes:delete", "openid email", "openid"] {
        let refused = refresh(&w, &rt, NOTES, Some(scope)).await;
        assert_eq!(
            refused.unwrap_err().code(),
            Some(TokenErrorCode::InvalidScope),
            "{scope}"
        );
    }
    let whole = refresh(&w, &rt, NOTES, None).await.unwrap();
    assert_eq!(
        notes_claims(&w, &whole.access_token).scope,
        "notes:read notes:write"
    );
    // An API named with none of its scopes is refused at the authorization request.
    let none = ask(&w, &session, "first", "openid other:thing").await;
    match none {
        Err(AuthorizeError::Redirect(r)) => assert_eq!(r.code, AuthorizeErrorCode::InvalidScope),
        other => panic!("{other:?}"),
    }
}

/// A grant keeps its API only while the API stays registered as it was: removed, or removed
/// and registered again, it gets no more tokens, and a refresh for an API the grant never
/// named is refused too.
async fn a_grant_loses_its_api_with_the_registration(w: World) {
    notes(&w).await;
    let session = w.signed_in(&w.alice).await;
    let code = code_of(ask(&w, &session, "first", "openid notes:read").await);
    let issued = redeem(&w, "first", &code, None).await.unwrap();
    let rt = issued.refresh_token.unwrap();
    let plain_code = w.code(&session, "first", "openid").await;
    let plain = redeem(&w, "first", &plain_code, None).await.unwrap();
    let never = refresh(&w, &plain.refresh_token.unwrap(), NOTES, None).await;
    assert_eq!(
        never.unwrap_err().code(),
        Some(TokenErrorCode::InvalidTarget)
    );
    assert!(w.ctx.store.remove_resource(NOTES).await.unwrap());
    w.ctx.clock.advance(Duration::from_secs(1));
    notes(&w).await;
    let gone = refresh(&w, &rt, NOTES, None).await;
    assert_eq!(
        gone.unwrap_err().code(),
        Some(TokenErrorCode::InvalidTarget)
    );
    // A grant given by the new registration works.
    let code = code_of(ask(&w, &session, "first", "openid notes:read").await);
    redeem(&w, "first", &code, Some(NOTES)).await.unwrap();
}

async fn an_api_the_grant_did_not_name_is_an_invalid_target_and_spends_nothing(w: World) {
    notes(&w).await;
    let session = w.signed_in(&w.alice).await;
    let code = w.code(&session, "first", "openid").await;
    let refused = redeem(&w, "first", &code, Some(NOTES)).await;
    assert_eq!(
        refused.unwrap_err().code(),
        Some(TokenErrorCode::InvalidTarget)
    );
    let unknown = redeem(&w, "first", &code, Some("https://other.example")).await;
    assert_eq!(
        unknown.unwrap_err().code(),
        Some(TokenErrorCode::InvalidTarget)
    );
    redeem(&w, "first", &code, None)
        .await
        .expect("the code is still good");
    // At the authorization endpoint an unknown API goes back to the client as
    // invalid_target.
    let params = authorize_params("first", &[("resource", "https://other.example")]);
    match authorize::authorize(&w.ctx, &params, Some(&session)).await {
        Err(AuthorizeError::Redirect(r)) => assert_eq!(r.code, AuthorizeErrorCode::InvalidTarget),
        other => panic!("{other:?}"),
    }
    // A client on its own behalf gets no API token (no grant names one).
    let cc = form(&[("grant_type", "client_credentials"), ("resource", NOTES)]);
    let refused = token::exchange(&w.ctx, &w.client("service").await, &cc).await;
    assert_eq!(
        refused.unwrap_err().code(),
        Some(TokenErrorCode::InvalidTarget)
    );
}

async fn a_third_party_app_is_allowed_an_apis_scopes_by_the_user_once(w: World) {
    notes(&w).await;
    let session = w.signed_in(&w.alice).await;
    let now = w.ctx.clock.unix();
    // Allowed the OpenID scopes before, not the API.
    let oidc = crate::types::ScopeSet::parse_known("openid");
    w.ctx
        .store
        .grant_consent(&w.alice, "third", oidc, None, now)
        .await
        .unwrap();
    let params = authorize_params(
        "third",
        &[
            ("scope", "openid notes:read"),
            ("resource", NOTES),
            ("prompt", "none"),
        ],
    );
    match authorize::authorize(&w.ctx, &params, Some(&session)).await {
        Err(AuthorizeError::Redirect(r)) => {
            assert_eq!(r.code, AuthorizeErrorCode::ConsentRequired);
        }
        other => panic!("prompt=none cannot ask: {other:?}"),
    }
    let Ok(Next::Consent(req)) = ask(&w, &session, "third", "openid notes:read").await else {
        panic!("the API's scopes need the user's consent");
    };
    let id = authorize::pending::remember(&w.ctx, &session, &req)
        .await
        .unwrap();
    let shown = consent::show(&w.ctx, &session, &id).await.unwrap();
    let (name, scopes) = shown.api.unwrap();
    assert_eq!(
        (name.as_str(), scopes.to_string().as_str()),
        ("Notes", "notes:read")
    );
    let code = consent::decide(&w.ctx, &session, &id, Decision::Allow)
        .await
        .unwrap()
        .code;
    let issued = redeem(&w, "third", &code, Some(NOTES)).await.unwrap();
    assert_eq!(notes_claims(&w, &issued.access_token).scope, "notes:read");
    // Remembered: the same request goes straight to a code; a new scope asks again.
    code_of(ask(&w, &session, "third", "openid notes:read").await);
    let more = ask(&w, &session, "third", "openid notes:read notes:write").await;
    assert!(matches!(more, Ok(Next::Consent(_))), "{more:?}");
    // Disconnecting the app withdraws the API consent with the rest.
    assert!(w.ctx.store.delete_consent(&w.alice, "third").await.unwrap());
    let held = w
        .ctx
        .store
        .resource_consent(&w.alice, "third", NOTES)
        .await
        .unwrap();
    assert_eq!(held, None);
}

async fn the_apis_client_introspects_the_tokens_addressed_to_it_only(w: World) {
    notes(&w).await;
    let session = w.signed_in(&w.alice).await;
    let code = code_of(ask(&w, &session, "first", "openid notes:write").await);
    let issued = redeem(&w, "first", &code, Some(NOTES)).await.unwrap();
    let at = issued.access_token.as_str();
    // Another API, whose client is `third`: its client reaches its own tokens only.
    register_api(
        &w,
        "https://calendar.example",
        "Calendar",
        &["cal:read"],
        "third",
    )
    .await;
    let service = w.client("service").await;
    let third = w.client("third").await;
    let about = |t: &str| form(&[("token", t)]);
    let seen = introspect(&w.ctx, &service, &about(at)).await.unwrap();
    let json = serde_json::to_value(&seen).unwrap();
    assert_eq!(json["active"], true);
    assert_eq!(json["aud"], NOTES);
    assert_eq!(json["scope"], "notes:write");
    assert!(
        !introspect(&w.ctx, &third, &about(at))
            .await
            .unwrap()
            .is_active()
    );
    // Not the refresh token, nor the grant's tokens for the provider itself.
    let rt = issued.refresh_token.unwrap();
    assert!(
        !introspect(&w.ctx, &service, &about(&rt))
            .await
            .unwrap()
            .is_active()
    );
    // Revocation stays the issued-to client's (RFC 7009 §2.1): the API's attempt changes
    // nothing.
    crate::protocol::revocation::revoke(&w.ctx, &service, &about(at))
        .await
        .unwrap();
    assert!(
        introspect(&w.ctx, &service, &about(at))
            .await
            .unwrap()
            .is_active()
    );
    crate::protocol::revocation::revoke(&w.ctx, &w.client("first").await, &about(&rt))
        .await
        .unwrap();
    assert!(
        !introspect(&w.ctx, &service, &about(at))
            .await
            .unwrap()
            .is_active()
    );
}

/// A token for the Notes API from a new grant of alice's (in a new session): the access
/// token, its jti, and the grant's refresh token.
async fn notes_token(w: &World) -> (String, String, String) {
    let session = w.signed_in(&w.alice).await;
    let code = code_of(ask(w, &session, "first", "openid notes:read").await);
    let issued = redeem(w, "first", &code, Some(NOTES)).await.unwrap();
    let jti = notes_claims(w, &issued.access_token).jti;
    (issued.access_token, jti, issued.refresh_token.unwrap())
}

/// Waits (generously) until the feed tells of `jti`, revoked at the Notes API.
async fn heard(live: &mut Subscription, jti: &str) {
    let wait = async {
        loop {
            match live.next().await {
                // A heartbeat (nothing revoked), or news of other tokens.
                Heard::Revoked(batch) => {
                    if batch.iter().any(|t| t.jti == jti && t.resource_id == NOTES) {
                        return;
                    }
                }
                Heard::End => panic!("the feed ended"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .unwrap_or_else(|_| panic!("{jti} was never told"));
}

/// Every cause that revokes a user's token for an API reaches the API's feed (as the poll
/// finds it, once), and is in the catch-up of whoever subscribes later while it is unexpired.
async fn every_revocation_of_an_apis_token_reaches_its_feed(w: World) {
    notes(&w).await;
    let feed = w.ctx.feed.clone();
    let mut live = feed.subscribe("service").unwrap();
    let poll = tokio::spawn(feed.clone().run());
    let first = w.client("first").await;
    let mut told = Vec::new();
    // The token revoked by its client (RFC 7009).
    let (at, jti, _) = notes_token(&w).await;
    let row = w.ctx.store.access_token(&jti).await.unwrap().unwrap();
    assert_eq!(row.resource_id.as_deref(), Some(NOTES));
    revocation::revoke(&w.ctx, &first, &form(&[("token", &at)]))
        .await
        .unwrap();
    heard(&mut live, &jti).await;
    told.push(jti);
    // Its grant revoked through the refresh token.
    let (_, jti, rt) = notes_token(&w).await;
    revocation::revoke(&w.ctx, &first, &form(&[("token", &rt)]))
        .await
        .unwrap();
    heard(&mut live, &jti).await;
    told.push(jti);
    // A refresh token used twice, past the grace: the family, the new token with it.
    let (_, _, rt) = notes_token(&w).await;
    let renewed = refresh(&w, &rt, NOTES, None).await.unwrap();
    let jti = notes_claims(&w, &renewed.access_token).jti;
    w.ctx.clock.advance(Duration::from_secs(6));
    assert!(refresh(&w, &rt, NOTES, None).await.is_err());
    heard(&mut live, &jti).await;
    told.push(jti);
    // The SSO session ended ("sign out everywhere").
    let (_, jti, _) = notes_token(&w).await;
    crate::users::sign_out_everywhere(&w.ctx, &w.alice)
        .await
        .unwrap();
    heard(&mut live, &jti).await;
    told.push(jti);
    // The app disconnected.
    let (_, jti, _) = notes_token(&w).await;
    let now = w.ctx.clock.unix();
    crate::users::apps::disconnect(&w.ctx.store, &w.alice, "first", "test", now)
        .await
        .unwrap();
    heard(&mut live, &jti).await;
    told.push(jti);
    // A new password.
    let (_, jti, _) = notes_token(&w).await;
    let changed = admin::change_password(&w.ctx.store, &w.ctx.sessions, "alice", "n3w".into());
    changed.await.unwrap();
    heard(&mut live, &jti).await;
    told.push(jti);
    // The account removed: its API tokens stay, revoked, until they expire.
    let (_, jti, _) = notes_token(&w).await;
    admin::remove_user(&w.ctx.store, Some(&w.ctx.sessions), "alice", &w.ctx.clock)
        .await
        .unwrap();
    heard(&mut live, &jti).await;
    told.push(jti);
    // A later subscriber catches up with all of them; once expired (and past the grace an
    // API's leeway needs) they are no longer told.
    let backlog: Vec<String> = feed
        .catch_up(NOTES)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.jti)
        .collect();
    for jti in &told {
        assert!(backlog.contains(jti), "{jti} missing from {backlog:?}");
    }
    w.ctx.clock.advance(Duration::from_secs(120 + 61));
    assert!(feed.catch_up(NOTES).await.unwrap().is_empty());
    feed.close();
    assert!(matches!(live.next().await, Heard::End));
    tokio::time::timeout(Duration::from_secs(30), poll)
        .await
        .unwrap()
        .unwrap();
}

/// Only the API's own confidential client hears its feed.
async fn only_the_apis_client_may_subscribe_to_its_feed(w: World) {
    notes(&w).await;
    let subscribe = |client: &'static str, pairs: Vec<(&'static str, &'static str)>| {
        let w = &w;
        async move {
            let client = w.client(client).await;
            revocation::feed_subscriber(&w.ctx, &client, &form(&pairs)).await
        }
    };
    let ok = subscribe("service", vec![("resource", NOTES)])
        .await
        .unwrap();
    assert_eq!(ok, NOTES);
    // Sixteen streams at once per client, no more; a closed one frees its place.
    let mut held: Vec<_> = (0..crate::feed::MAX_STREAMS_PER_CLIENT)
        .map(|_| w.ctx.feed.subscribe("service").unwrap())
        .collect();
    assert!(w.ctx.feed.subscribe("service").is_err());
    w.ctx.feed.subscribe("other").unwrap();
    held.pop();
    w.ctx.feed.subscribe("service").unwrap();
    let refusals = [
        (
            "first",
            vec![("resource", NOTES)],
            TokenErrorCode::UnauthorizedClient,
        ),
        (
            "service",
            vec![("resource", "https://other.example")],
            TokenErrorCode::InvalidTarget,
        ),
        ("service", vec![], TokenErrorCode::InvalidRequest),
        (
            "service",
            vec![("resource", NOTES), ("resource", NOTES)],
            TokenErrorCode::InvalidRequest,
        ),
    ];
    for (client, pairs, code) in refusals {
        let got = subscribe(client, pairs.clone()).await;
        assert_eq!(got.unwrap_err().code(), Some(code), "{client} {pairs:?}");
    }
}
