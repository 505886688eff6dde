//! Token exchange (RFC 8693) between APIs: the Notes API (client `notes-svc`) calls the Audit
//! API on alice's behalf with a token exchanged for the one App "first" sent it.

use super::apis::{NOTES, ask, code_of, redeem, register_api};
use super::{World, form, register, world, world_on};
use crate::context::testing;
use crate::protocol::error::TokenError;
use crate::protocol::resources;
use crate::protocol::revocation;
use crate::protocol::token::{self, AccessClaims, Actor, TokenResponse};
use crate::types::{AuthMethod, GrantType, TokenErrorCode};
use std::time::Duration;

on_both_databases! {
    an_api_exchanges_a_users_token_for_a_narrower_one_addressed_downstream: an_api_exchanges_a_users_token_for_a_narrower_one_addressed_downstream_on_sqlite, an_api_exchanges_a_users_token_for_a_narrower_one_addressed_downstream_on_postgres;
    each_refused_exchange_gets_the_rfcs_error_and_is_audited: each_refused_exchange_gets_the_rfcs_error_and_is_audited_on_sqlite, each_refused_exchange_gets_the_rfcs_error_and_is_audited_on_postgres;
    no_exchanged_token_outlives_its_subject_tokens_revocation: no_exchanged_token_outlives_its_subject_tokens_revocation_on_sqlite, no_exchanged_token_outlives_its_subject_tokens_revocation_on_postgres;
}

const AUDIT: &str = "https://audit.example";
const SUBJECT_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// Notes (client `notes-svc`) and Audit (client `audit-svc`), both confidential clients
/// registered for the grant; `notes-svc` may exchange for Audit's `audit:write`, `audit-svc`
/// for Notes' `notes:read`.
async fn apis(w: &World) {
    for id in ["notes-svc", "audit-svc"] {
        let grants = [GrantType::TokenExchange];
        register(&w.ctx, id, &grants, AuthMethod::ClientSecretBasic, true).await;
    }
    register_api(
        w,
        NOTES,
        "Notes",
        &["notes:read", "notes:write"],
        "notes-svc",
    )
    .await;
    register_api(
        w,
        AUDIT,
        "Audit",
        &["audit:read", "audit:write"],
        "audit-svc",
    )
    .await;
    for (client, to, scope) in [
        ("notes-svc", AUDIT, "audit:write"),
        ("audit-svc", NOTES, "notes:read"),
    ] {
        let client = w.client(client).await;
        let all = w.ctx.store.resources().await.unwrap();
        let api = w.ctx.store.resource(to).await.unwrap().unwrap();
        let rule = resources::exchange_rule(&client, &all, &api, &[scope.into()]).unwrap();
        w.ctx.store.allow_exchange(&rule, 0).await.unwrap();
    }
}

/// Alice's token for Notes, through App "first": (access token, refresh token).
async fn alices_notes_token(w: &World) -> (String, String) {
    let session = w.signed_in(&w.alice).await;
    let code = code_of(ask(w, &session, "first", "openid notes:read notes:write").await);
    let issued = redeem(w, "first", &code, Some(NOTES)).await.unwrap();
    (issued.access_token, issued.refresh_token.unwrap())
}

/// `client` exchanges `subject` for a token to `to`, with `extra` parameters.
async fn exchange(
    w: &World,
    client: &str,
    subject: &str,
    to: &str,
    extra: &[(&str, &str)],
) -> Result<TokenResponse, TokenError> {
    let mut pairs = vec![
        ("grant_type", EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", SUBJECT_TYPE),
        ("resource", to),
    ];
    pairs.extend_from_slice(extra);
    token::exchange(&w.ctx, &w.client(client).await, &form(&pairs)).await
}

fn claims(w: &World, token: &str, aud: &str) -> AccessClaims {
    let now = w.ctx.clock.unix();
    let keys = w.ctx.keys.current();
    keys.verify(token, "at+jwt", &w.ctx.issuer, aud, now)
        .unwrap()
}

async fn revoked(w: &World, jti: &str) -> bool {
    let row = w.ctx.store.access_token(jti).await.unwrap().unwrap();
    row.revoked_at.is_some()
}

async fn an_api_exchanges_a_users_token_for_a_narrower_one_addressed_downstream(w: World) {
    apis(&w).await;
    let (subject, _) = alices_notes_token(&w).await;
    let before = claims(&w, &subject, NOTES);
    w.ctx.clock.advance(Duration::from_secs(30));
    let issued = exchange(&w, "notes-svc", &subject, AUDIT, &[])
        .await
        .unwrap();
    assert_eq!(issued.issued_token_type, Some(SUBJECT_TYPE), "§2.2.1");
    assert!(issued.refresh_token.is_none() && issued.id_token.is_none());
    assert_eq!(issued.scope, "audit:write", "what the rule allows");
    let down = claims(&w, &issued.access_token, AUDIT);
    assert_eq!(
        (down.sub.as_str(), down.sid.as_ref()),
        (w.alice.as_str(), before.sid.as_ref())
    );
    assert_eq!(down.auth_time, before.auth_time);
    assert_eq!(down.client_id, "notes-svc");
    let notes_svc = Actor {
        sub: "notes-svc".into(),
        act: None,
    };
    assert_eq!(down.act, Some(notes_svc.clone()), "RFC 8693 §4.1");
    assert_eq!(down.exp, before.exp, "no longer than the subject token");
    // `audience` names the target as well as `resource`; scope may be named (never wider).
    let by_audience = [("audience", AUDIT), ("scope", "audit:write")];
    exchange(&w, "notes-svc", &subject, AUDIT, &by_audience)
        .await
        .unwrap();
    // Audit, called with the exchanged token, may pass the user on to Notes: the actors nest.
    let back = exchange(&w, "audit-svc", &issued.access_token, NOTES, &[])
        .await
        .unwrap();
    let chained = claims(&w, &back.access_token, NOTES);
    assert_eq!(chained.scope, "notes:read");
    let expected = Actor {
        sub: "audit-svc".into(),
        act: Some(Box::new(notes_svc)),
    };
    assert_eq!(chained.act, Some(expected));
    // Notes may not take the token back to Audit: it already acted on it.
    let refused = exchange(&w, "notes-svc", &back.access_token, AUDIT, &[]).await;
    assert_eq!(
        refused.unwrap_err().code(),
        Some(TokenErrorCode::InvalidRequest)
    );
    // Each exchange is in the audit trail, with its subject token and actor.
    let trail = w.ctx.store.audit_tail(20).await.unwrap();
    let exchanged: Vec<_> = trail
        .iter()
        .filter(|e| e.kind == "token.exchanged")
        .collect();
    assert_eq!(exchanged.len(), 3);
    let detail = exchanged
        .iter()
        .filter_map(|e| e.detail.as_deref())
        .find(|d| d.contains(&before.jti))
        .unwrap();
    assert!(detail.contains("acting as notes-svc"), "{detail}");
    // Revoking the user's token revokes what was exchanged from it, at every depth.
    let first = w.client("first").await;
    revocation::revoke(&w.ctx, &first, &form(&[("token", &subject)]))
        .await
        .unwrap();
    assert!(revoked(&w, &down.jti).await && revoked(&w, &chained.jti).await);
}

async fn each_refused_exchange_gets_the_rfcs_error_and_is_audited(w: World) {
    apis(&w).await;
    let (subject, rt) = alices_notes_token(&w).await;
    type Refusal<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], TokenErrorCode);
    let refusals: [Refusal; 6] = [
        // Wider than the rule: audit:read is Audit's, but not allowed to this client.
        (
            "notes-svc",
            AUDIT,
            &[("scope", "audit:write audit:read")],
            TokenErrorCode::InvalidScope,
        ),
        (
            "notes-svc",
            "https://unknown.example",
            &[],
            TokenErrorCode::InvalidTarget,
        ),
        // No rule from Notes to Notes.
        ("notes-svc", NOTES, &[], TokenErrorCode::InvalidTarget),
        // The token was not presented to an API of this actor.
        ("audit-svc", NOTES, &[], TokenErrorCode::InvalidRequest),
        (
            "notes-svc",
            AUDIT,
            &[("actor_token", "x"), ("actor_token_type", SUBJECT_TYPE)],
            TokenErrorCode::InvalidRequest,
        ),
        (
            "notes-svc",
            AUDIT,
            &[(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            )],
            TokenErrorCode::InvalidRequest,
        ),
    ];
    for (client, to, extra, code) in refusals {
        let got = exchange(&w, client, &subject, to, extra).await;
        assert_eq!(
            got.unwrap_err().code(),
            Some(code),
            "{client} {to} {extra:?}"
        );
    }
    // A client not registered for the grant; a subject that is a refresh token.
    let got = exchange(&w, "first", &subject, AUDIT, &[]).await;
    assert_eq!(
        got.unwrap_err().code(),
        Some(TokenErrorCode::UnauthorizedClient)
    );
    let got = exchange(&w, "notes-svc", &rt, AUDIT, &[]).await;
    assert_eq!(
        got.unwrap_err().code(),
        Some(TokenErrorCode::InvalidRequest)
    );
    let untyped = [
        ("grant_type", EXCHANGE),
        ("subject_token", subject.as_str()),
        ("resource", AUDIT),
    ];
    let notes_svc = w.client("notes-svc").await;
    let got = token::exchange(&w.ctx, &notes_svc, &form(&untyped)).await;
    assert_eq!(
        got.unwrap_err().code(),
        Some(TokenErrorCode::InvalidRequest)
    );
    // Revoked, then expired subject tokens.
    let (other, _) = alices_notes_token(&w).await;
    let first = w.client("first").await;
    revocation::revoke(&w.ctx, &first, &form(&[("token", &other)]))
        .await
        .unwrap();
    let got = exchange(&w, "notes-svc", &other, AUDIT, &[]).await;
    assert_eq!(
        got.unwrap_err().code(),
        Some(TokenErrorCode::InvalidRequest)
    );
    w.ctx.clock.advance(Duration::from_secs(121));
    let got = exchange(&w, "notes-svc", &subject, AUDIT, &[]).await;
    assert_eq!(
        got.unwrap_err().code(),
        Some(TokenErrorCode::InvalidRequest)
    );
    let trail = w.ctx.store.audit_tail(50).await.unwrap();
    let refused = trail
        .iter()
        .filter(|e| e.kind == "token.exchange_refused")
        .count();
    assert_eq!(refused, 10, "every refusal past the grant type is audited");
    assert!(!trail.iter().any(|e| e.kind == "token.exchanged"));
}

/// An exchange racing the revocation of its subject token, many times over, and an exchange
/// of an exchanged token racing the revocation of the user's token two levels up: whichever
/// commits first, no exchanged token is left unrevoked.
async fn no_exchanged_token_outlives_its_subject_tokens_revocation(w: World) {
    apis(&w).await;
    let first = w.client("first").await;
    for _ in 0..40 {
        let (subject, _) = alices_notes_token(&w).await;
        let about = form(&[("token", &subject)]);
        let revoke = revocation::revoke(&w.ctx, &first, &about);
        let (exchanged, revoking) =
            tokio::join!(exchange(&w, "notes-svc", &subject, AUDIT, &[]), revoke);
        revoking.unwrap();
        match exchanged {
            Ok(issued) => {
                let jti = claims(&w, &issued.access_token, AUDIT).jti;
                assert!(
                    revoked(&w, &jti).await,
                    "an exchanged token outlived its subject"
                );
            }
            Err(e) => assert_eq!(e.code(), Some(TokenErrorCode::InvalidRequest)),
        }
    }
    for _ in 0..20 {
        let (subject, _) = alices_notes_token(&w).await;
        let first_hop = exchange(&w, "notes-svc", &subject, AUDIT, &[]).await;
        let middle = first_hop.unwrap().access_token;
        let about = form(&[("token", &subject)]);
        let revoke = revocation::revoke(&w.ctx, &first, &about);
        let (exchanged, revoking) =
            tokio::join!(exchange(&w, "audit-svc", &middle, NOTES, &[]), revoke);
        revoking.unwrap();
        assert!(revoked(&w, &claims_unchecked(&middle).jti).await);
        match exchanged {
            Ok(issued) => {
                let jti = claims(&w, &issued.access_token, NOTES).jti;
                assert!(
                    revoked(&w, &jti).await,
                    "a second-hop token outlived the user's"
                );
            }
            Err(e) => assert_eq!(e.code(), Some(TokenErrorCode::InvalidRequest)),
        }
    }
}

/// The claims of one of our tokens, read without checking it (it may have expired).
fn claims_unchecked(token: &str) -> AccessClaims {
    let part = token.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

/// RFC 9449 §5 with RFC 8693: an exchange sent with a DPoP proof gets a token bound to the
/// acting API's key (the downstream API then wants that API's proof); without one, a bearer
/// token as before.
#[tokio::test]
async fn an_exchange_with_a_proof_binds_the_new_token_to_the_acting_apis_key() {
    use crate::protocol::dpop::{self, testing::ClientKey};
    use crate::types::TokenType;
    let w = world().await;
    apis(&w).await;
    let (subject, _) = alices_notes_token(&w).await;
    let key = ClientKey::new();
    let now = w.ctx.clock.unix();
    let nonce = w.ctx.dpop_nonces.current(now);
    let proof = key.proof(
        "POST",
        "https://idp.example/token",
        now,
        serde_json::json!({ "nonce": nonce }),
    );
    let proof = dpop::at_token_endpoint(&w.ctx, &[&proof]).await.unwrap();
    let pairs = [
        ("grant_type", EXCHANGE),
        ("subject_token", subject.as_str()),
        ("subject_token_type", SUBJECT_TYPE),
        ("resource", AUDIT),
    ];
    let notes_svc = w.client("notes-svc").await;
    let bound = token::exchange_with(&w.ctx, &notes_svc, &form(&pairs), proof.as_ref())
        .await
        .unwrap();
    assert_eq!(bound.token_type, TokenType::DPoP);
    let down = claims(&w, &bound.access_token, AUDIT);
    assert_eq!(down.cnf.map(|c| c.jkt), Some(key.jkt()));
    let plain = exchange(&w, "notes-svc", &subject, AUDIT, &[])
        .await
        .unwrap();
    assert_eq!(plain.token_type, TokenType::Bearer);
    assert!(claims(&w, &plain.access_token, AUDIT).cnf.is_none());
    // An API registered with dpop_bound_access_tokens exchanges only with a proof (§5.2).
    w.reregister("notes-svc", |m| m.dpop_bound_access_tokens = Some(true))
        .await;
    let refused = exchange(&w, "notes-svc", &subject, AUDIT, &[]).await;
    assert_eq!(
        refused.unwrap_err().code(),
        Some(TokenErrorCode::InvalidDpopProof)
    );
}
