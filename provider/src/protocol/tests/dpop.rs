//! DPoP (RFC 9449): proofs at the token endpoint (nonce, every check of §4.3), tokens bound to
//! their key (`cnf.jkt`, `token_type` DPoP), a public client's refresh tokens bound too, and
//! userinfo accepting a bound token only under the DPoP scheme with a proof by its key.

use super::{REDIRECT, VERIFIER, World, authorize_params, form, world, world_on};
use crate::context::testing;
use crate::protocol::authorize::{self, pushed};
use crate::protocol::dpop::testing::ClientKey;
use crate::protocol::dpop::{self, Proof, Refused};
use crate::protocol::error::{BearerError, TokenError};
use crate::protocol::token::{self, AccessClaims, TokenResponse};
use crate::protocol::userinfo::{Presented, userinfo, userinfo_presented};
use crate::types::{BearerErrorCode, TokenErrorCode, TokenType};
use serde_json::json;

const TOKEN_URL: &str = "https://idp.example/token";
const USERINFO_URL: &str = "https://idp.example/userinfo";
const PAR_URL: &str = "https://idp.example/par";

/// A proof for the token endpoint, with the current nonce.
fn token_proof(w: &World, key: &ClientKey) -> String {
    let now = w.ctx.clock.unix();
    let nonce = w.ctx.dpop_nonces.current(now);
    key.proof("POST", TOKEN_URL, now, json!({ "nonce": nonce }))
}

async fn at_token(w: &World, proof: &str) -> Result<Option<Proof>, TokenError> {
    dpop::at_token_endpoint(&w.ctx, &[proof]).await
}

/// The form redeeming `code` (issued for the usual redirect URI and PKCE challenge).
fn code_form(code: &str) -> crate::protocol::params::Params {
    form(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ])
}

/// Alice's tokens for `client` (`scope`), redeemed with a proof by `key` if there is one.
async fn alices_tokens(
    w: &World,
    client: &str,
    scope: &str,
    key: Option<&ClientKey>,
) -> TokenResponse {
    let session = w.signed_in(&w.alice).await;
    let code = w.code(&session, client, scope).await;
    redeem(w, client, &code, key).await.unwrap()
}

/// Redeems `code` as `client`, with a proof by `key` if there is one.
async fn redeem(
    w: &World,
    client: &str,
    code: &str,
    key: Option<&ClientKey>,
) -> Result<TokenResponse, TokenError> {
    let proof = match key {
        Some(k) => at_token(w, &token_proof(w, k)).await.unwrap(),
        None => None,
    };
    let client = w.client(client).await;
    token::exchange_with(&w.ctx, &client, &code_form(code), proof.as_ref()).await
}

/// Redeems a code of `client` with a proof by `key`.
async fn bound_tokens(w: &World, client: &str, key: &ClientKey) -> TokenResponse {
    alices_tokens(w, client, "openid profile", Some(key)).await
}

fn claims(token: &str) -> AccessClaims {
    let payload = token.split('.').nth(1).unwrap();
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn refresh(
    w: &World,
    client: &str,
    t: &TokenResponse,
    key: Option<&ClientKey>,
) -> Result<TokenResponse, TokenError> {
    let pairs = [
        ("grant_type", "refresh_token"),
        ("refresh_token", t.refresh_token.as_deref().unwrap()),
    ];
    let proof = match key {
        Some(k) => at_token(w, &token_proof(w, k)).await.unwrap(),
        None => None,
    };
    token::exchange_with(
        &w.ctx,
        &w.client(client).await,
        &form(&pairs),
        proof.as_ref(),
    )
    .await
}

async fn with_proof(
    w: &World,
    token: &str,
    proof: &str,
) -> Result<crate::protocol::userinfo::UserInfo, BearerError> {
    let proofs = [proof];
    let how = Presented::Dpop {
        proofs: &proofs,
        method: "GET",
    };
    userinfo_presented(&w.ctx, token, &how).await
}

fn bearer_code<T: std::fmt::Debug>(r: Result<T, BearerError>) -> Option<BearerErrorCode> {
    r.err().and_then(|e| e.code())
}

#[tokio::test]
async fn a_proof_needs_the_nonce_at_the_token_endpoint() {
    let w = world().await;
    let key = ClientKey::new();
    let now = w.ctx.clock.unix();
    assert!(
        dpop::at_token_endpoint(&w.ctx, &[])
            .await
            .unwrap()
            .is_none()
    );
    let bare = key.proof("POST", TOKEN_URL, now, json!({}));
    match at_token(&w, &bare).await {
        Err(TokenError::UseDpopNonce(nonce)) => assert!(w.ctx.dpop_nonces.accepts(&nonce, now)),
        other => panic!("no nonce asked for: {other:?}"),
    }
    let proof = at_token(&w, &token_proof(&w, &key)).await.unwrap().unwrap();
    assert_eq!(proof.jkt, key.jkt());
    let two = dpop::at_token_endpoint(&w.ctx, &[&bare, &bare]).await;
    assert_eq!(
        two.unwrap_err().code(),
        Some(TokenErrorCode::InvalidDpopProof)
    );
}

/// Every check of RFC 9449 §4.3 refuses its own fault.
#[tokio::test]
async fn each_check_of_a_proof_refuses_its_fault() {
    let w = world().await;
    // The proofs are made a second outside the accepted window: frozen, it stays a second.
    w.ctx.clock.freeze();
    let key = ClientKey::new();
    let now = w.ctx.clock.unix();
    let expected = dpop::Expected {
        method: "POST",
        url: TOKEN_URL,
        access_token: Some("the-token"),
    };
    let ath = dpop::token_hash("the-token");
    let good = |extra: serde_json::Value| {
        let mut claims = json!({"ath": ath});
        if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        key.proof("POST", TOKEN_URL, now, claims)
    };
    let private_jwk = {
        let mut raw = serde_json::to_value(&key.jwk).unwrap();
        raw["d"] = json!("AAAA");
        raw
    };
    let forged_private = {
        use base64::Engine;
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let proof = good(json!({}));
        let rest = proof.split_once('.').unwrap().1;
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private_jwk});
        format!("{}.{rest}", b64(header))
    };
    let cases: Vec<(&str, String)> = vec![
        ("well-formed", "garbage".into()),
        (
            "typ",
            key.sign(
                "JWT",
                &json!({"jti": "a", "htm": "POST", "htu": TOKEN_URL, "iat": now, "ath": ath}),
            ),
        ),
        ("htm", key.proof("GET", TOKEN_URL, now, json!({"ath": ath}))),
        (
            "htu",
            key.proof(
                "POST",
                "https://idp.example/userinfo",
                now,
                json!({"ath": ath}),
            ),
        ),
        (
            "iat",
            key.proof("POST", TOKEN_URL, now - 301, json!({"ath": ath})),
        ),
        (
            "iat",
            key.proof("POST", TOKEN_URL, now + 61, json!({"ath": ath})),
        ),
        (
            "ath",
            good(json!({"ath": dpop::token_hash("another token")})),
        ),
        ("ath", key.proof("POST", TOKEN_URL, now, json!({}))),
        ("private", forged_private),
        ("jti", good(json!({"jti": ""}))),
    ];
    // Each refusal names what was wrong.
    for (what, proof) in &cases {
        match dpop::verify(&w.ctx, proof, &expected, false).await {
            Err(Refused::Invalid(why)) => assert!(why.contains(what), "{what}: {why}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    // The query does not count in htu; the same proof twice does.
    let proof = key.proof(
        "POST",
        &format!("{TOKEN_URL}?x=1"),
        now,
        json!({"ath": ath}),
    );
    assert!(dpop::verify(&w.ctx, &proof, &expected, false).await.is_ok());
    match dpop::verify(&w.ctx, &proof, &expected, false).await {
        Err(Refused::Invalid(why)) => assert!(why.contains("used before"), "{why}"),
        other => panic!("replayed: {other:?}"),
    }
}

on_both_databases! {
    a_bound_token_works_only_with_a_proof_by_its_key:
        bound_token_on_sqlite, bound_token_on_postgres;
}

async fn a_bound_token_works_only_with_a_proof_by_its_key(w: World) {
    let key = ClientKey::new();
    let tokens = bound_tokens(&w, "first", &key).await;
    assert_eq!(tokens.token_type, TokenType::DPoP);
    let bound = claims(&tokens.access_token);
    assert_eq!(bound.cnf.map(|c| c.jkt), Some(key.jkt()));
    let now = w.ctx.clock.unix();
    let ath = dpop::token_hash(&tokens.access_token);
    let proof = key.proof("GET", USERINFO_URL, now, json!({ "ath": ath }));
    assert!(with_proof(&w, &tokens.access_token, &proof).await.is_ok());
    // As a bearer token: refused.
    let as_bearer = userinfo(&w.ctx, &tokens.access_token).await;
    assert_eq!(bearer_code(as_bearer), Some(BearerErrorCode::InvalidToken));
    // A proof by another key, or the same proof again: refused.
    let other = ClientKey::new();
    let stolen = other.proof("GET", USERINFO_URL, now, json!({ "ath": ath }));
    let r = with_proof(&w, &tokens.access_token, &stolen).await;
    assert_eq!(bearer_code(r), Some(BearerErrorCode::InvalidDpopProof));
    let r = with_proof(&w, &tokens.access_token, &proof).await;
    assert_eq!(bearer_code(r), Some(BearerErrorCode::InvalidDpopProof));
    // An unbound token under the DPoP scheme: refused.
    let plain = alices_tokens(&w, "first", "openid", None).await;
    assert_eq!(plain.token_type, TokenType::Bearer);
    let ath = dpop::token_hash(&plain.access_token);
    let proof = key.proof("GET", USERINFO_URL, now, json!({ "ath": ath }));
    let r = with_proof(&w, &plain.access_token, &proof).await;
    assert_eq!(bearer_code(r), Some(BearerErrorCode::InvalidToken));
}

/// RFC 9449 §5: a public client's refresh token is bound to its key; a confidential client's
/// is not (its authentication binds it), though each access token follows its request's proof.
#[tokio::test]
async fn a_public_clients_refresh_token_is_bound_to_its_key() {
    let w = world().await;
    // The retries below are within the refresh grace window: only the test moves time.
    w.ctx.clock.freeze();
    super::register(
        &w.ctx,
        "native",
        &[
            crate::types::GrantType::AuthorizationCode,
            crate::types::GrantType::RefreshToken,
        ],
        crate::types::AuthMethod::None,
        true,
    )
    .await;
    let key = ClientKey::new();
    let tokens = bound_tokens(&w, "native", &key).await;
    let without = refresh(&w, "native", &tokens, None).await;
    assert_eq!(
        without.unwrap_err().code(),
        Some(TokenErrorCode::InvalidDpopProof)
    );
    let other = ClientKey::new();
    let stolen = refresh(&w, "native", &tokens, Some(&other)).await;
    assert_eq!(
        stolen.unwrap_err().code(),
        Some(TokenErrorCode::InvalidDpopProof)
    );
    // Refused before anything was spent: the rightful key still refreshes, and the successor
    // is bound as well.
    let next = refresh(&w, "native", &tokens, Some(&key)).await.unwrap();
    assert_eq!(next.token_type, TokenType::DPoP);
    let again = refresh(&w, "native", &next, None).await;
    assert_eq!(
        again.unwrap_err().code(),
        Some(TokenErrorCode::InvalidDpopProof)
    );

    // A grant begun without DPoP is bound at its first refresh with a proof.
    let plain = alices_tokens(&w, "native", "openid", None).await;
    assert_eq!(plain.token_type, TokenType::Bearer);
    let now_bound = refresh(&w, "native", &plain, Some(&key)).await.unwrap();
    // A retry of that refresh (within the grace window) gets the bound successor: only with a
    // proof by its key.
    let retried = refresh(&w, "native", &plain, None).await;
    assert_eq!(
        retried.unwrap_err().code(),
        Some(TokenErrorCode::InvalidDpopProof)
    );
    let retried = refresh(&w, "native", &plain, Some(&key)).await.unwrap();
    assert_eq!(retried.refresh_token, now_bound.refresh_token);
    let unbound_again = refresh(&w, "native", &now_bound, None).await;
    assert_eq!(
        unbound_again.unwrap_err().code(),
        Some(TokenErrorCode::InvalidDpopProof)
    );

    let confidential = bound_tokens(&w, "first", &key).await;
    let plain = refresh(&w, "first", &confidential, None).await.unwrap();
    assert_eq!(plain.token_type, TokenType::Bearer);
    assert!(claims(&plain.access_token).cnf.is_none());
}

/// RFC 9449 §5.2: a client registered with `dpop_bound_access_tokens` gets no token without a
/// proof (and its code is not spent by the refusal).
#[tokio::test]
async fn a_client_that_must_use_dpop_gets_no_bearer_token() {
    let w = world().await;
    w.reregister("first", |m| m.dpop_bound_access_tokens = Some(true))
        .await;
    let session = w.signed_in(&w.alice).await;
    let code = w.code(&session, "first", "openid").await;
    let client = w.client("first").await;
    assert!(client.dpop_bound);
    let bare = token::exchange(&w.ctx, &client, &code_form(&code)).await;
    assert_eq!(
        bare.unwrap_err().code(),
        Some(TokenErrorCode::InvalidDpopProof)
    );
    let key = ClientKey::new();
    let proof = at_token(&w, &token_proof(&w, &key)).await.unwrap();
    let bound = token::exchange_with(&w.ctx, &client, &code_form(&code), proof.as_ref())
        .await
        .unwrap();
    assert_eq!(bound.token_type, TokenType::DPoP);
}

fn token_code<T: std::fmt::Debug>(r: Result<T, TokenError>) -> Option<TokenErrorCode> {
    r.err().and_then(|e| e.code())
}

/// RFC 9449 §10: a code whose request named a key (`dpop_jkt`) is redeemed only with a proof
/// by it; the refusals spend nothing, and a replay by someone without the key revokes nothing.
#[tokio::test]
async fn a_code_bound_by_dpop_jkt_needs_a_proof_by_that_key() {
    let w = world().await;
    let key = ClientKey::new();
    let session = w.signed_in(&w.alice).await;
    let jkt = key.jkt();
    let params = authorize_params("first", &[("dpop_jkt", &jkt)]);
    let code = w.code_for(&session, &params).await;
    let stolen = ClientKey::new();
    for by in [None, Some(&stolen)] {
        let refused = redeem(&w, "first", &code, by).await;
        assert_eq!(token_code(refused), Some(TokenErrorCode::InvalidDpopProof));
    }
    let tokens = redeem(&w, "first", &code, Some(&key)).await.unwrap();
    assert_eq!(tokens.token_type, TokenType::DPoP);
    assert_eq!(claims(&tokens.access_token).cnf.map(|c| c.jkt), Some(jkt));
    // The code again, without its key: refused, and the tokens stand.
    let replay = redeem(&w, "first", &code, None).await;
    assert_eq!(token_code(replay), Some(TokenErrorCode::InvalidGrant));
    let now = w.ctx.clock.unix();
    let userinfo_proof = || {
        let ath = dpop::token_hash(&tokens.access_token);
        key.proof("GET", USERINFO_URL, now, json!({ "ath": ath }))
    };
    assert!(
        with_proof(&w, &tokens.access_token, &userinfo_proof())
            .await
            .is_ok()
    );
    // With its key, the replay is the code's own client's: its tokens are revoked.
    let replay = redeem(&w, "first", &code, Some(&key)).await;
    assert_eq!(token_code(replay), Some(TokenErrorCode::InvalidGrant));
    let after = with_proof(&w, &tokens.access_token, &userinfo_proof()).await;
    assert_eq!(bearer_code(after), Some(BearerErrorCode::InvalidToken));
}

/// RFC 9449 §10.1: a proof sent with a push binds the code as `dpop_jkt` would; a push that
/// names another key in `dpop_jkt` is refused; the proof is checked for the PAR endpoint.
#[tokio::test]
async fn a_proof_sent_with_a_push_binds_the_code() {
    let w = world().await;
    let key = ClientKey::new();
    let client = w.client("first").await;
    let now = w.ctx.clock.unix();
    let nonce = w.ctx.dpop_nonces.current(now);
    let ctx = &w.ctx;
    let at_par = |proof: String| async move {
        dpop::at_endpoint(ctx, crate::paths::PUSHED_AUTHORIZATION, &[&proof]).await
    };
    // A proof made for the token endpoint is not one for the PAR endpoint.
    let misdirected = at_par(token_proof(&w, &key)).await;
    assert_eq!(
        token_code(misdirected),
        Some(TokenErrorCode::InvalidDpopProof)
    );
    let proof = at_par(key.proof("POST", PAR_URL, now, json!({ "nonce": nonce })))
        .await
        .unwrap()
        .unwrap();

    let other = ClientKey::new().jkt();
    let contradicted = authorize_params("first", &[("dpop_jkt", &other)]);
    let refused = pushed::push(&w.ctx, &client, &contradicted, Some(&proof)).await;
    assert_eq!(token_code(refused), Some(TokenErrorCode::InvalidDpopProof));

    // Naming the proof's own key is no contradiction.
    let same = authorize_params("first", &[("dpop_jkt", &key.jkt())]);
    let again = at_par(key.proof("POST", PAR_URL, now, json!({ "nonce": &nonce })))
        .await
        .unwrap();
    assert!(
        pushed::push(&w.ctx, &client, &same, again.as_ref())
            .await
            .is_ok()
    );
    let pushed = pushed::push(
        &w.ctx,
        &client,
        &authorize_params("first", &[]),
        Some(&proof),
    )
    .await
    .unwrap();
    let by_reference = form(&[("client_id", "first"), ("request_uri", &pushed.request_uri)]);
    let session = w.signed_in(&w.alice).await;
    let code = w.code_for(&session, &by_reference).await;
    let unbound = redeem(&w, "first", &code, None).await;
    assert_eq!(token_code(unbound), Some(TokenErrorCode::InvalidDpopProof));
    let tokens = redeem(&w, "first", &code, Some(&key)).await.unwrap();
    assert_eq!(
        claims(&tokens.access_token).cnf.map(|c| c.jkt),
        Some(key.jkt())
    );
}

/// While instances of a release without code binding share the database
/// (`tokens.dpop_code_binding` off), a request naming a key is refused, as that release did,
/// and a push's proof binds nothing: no code is bound that such an instance could redeem.
#[tokio::test]
async fn without_code_binding_dpop_jkt_is_refused_and_a_push_binds_nothing() {
    let mut ctx = testing::ctx().await;
    let config = &mut std::sync::Arc::get_mut(&mut ctx.ctx).unwrap().config;
    config.tokens.dpop_code_binding = false;
    let w = world_on(ctx).await;
    let key = ClientKey::new();
    let session = w.signed_in(&w.alice).await;
    let named = authorize_params("first", &[("dpop_jkt", &key.jkt())]);
    match authorize::authorize(&w.ctx, &named, Some(&session)).await {
        Err(crate::protocol::error::AuthorizeError::Redirect(r)) => {
            assert!(r.description.contains("dpop_jkt"), "{}", r.description);
        }
        other => panic!("not refused: {other:?}"),
    }
    let now = w.ctx.clock.unix();
    let nonce = w.ctx.dpop_nonces.current(now);
    let proof = key.proof("POST", PAR_URL, now, json!({ "nonce": nonce }));
    let paths = crate::paths::PUSHED_AUTHORIZATION;
    let proof = dpop::at_endpoint(&w.ctx, paths, &[&proof]).await.unwrap();
    let client = w.client("first").await;
    let pushed = pushed::push(
        &w.ctx,
        &client,
        &authorize_params("first", &[]),
        proof.as_ref(),
    )
    .await
    .unwrap();
    let by_reference = form(&[("client_id", "first"), ("request_uri", &pushed.request_uri)]);
    let code = w.code_for(&session, &by_reference).await;
    let tokens = redeem(&w, "first", &code, None).await.unwrap();
    assert_eq!(tokens.token_type, TokenType::Bearer);
}
