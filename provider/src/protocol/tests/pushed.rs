//! Pushed authorization requests (RFC 9126) and request objects (RFC 9101): what a push
//! answers, what `/authorize` makes of a `request_uri` or a `request`, and every refusal.

use super::{CHALLENGE, REDIRECT, World, authorize_params, form, world};
use crate::keys::{Keys, generate};
use crate::protocol::authorize::pushed::{self, Pushed};
use crate::protocol::authorize::{self, Next};
use crate::protocol::error::{AuthorizeError, PageError, TokenError};
use crate::protocol::params::Params;
use crate::types::{Alg, AuthorizeErrorCode};
use serde_json::{Value, json};
use std::time::Duration;

/// `first` with an ES256 key registered (for request objects), and the key to sign with.
async fn signing_client(w: &World) -> Keys {
    let now = w.ctx.clock.unix();
    let keys = Keys::from_stored(&[generate(Alg::ES256, now).unwrap()], now).unwrap();
    let jwks = serde_json::from_str(keys.jwks_json()).unwrap();
    w.reregister("first", |m| m.jwks = Some(jwks)).await;
    keys
}

/// The usual request's parameters as a request object's claims, `edit`ed.
fn object(w: &World, keys: &Keys, edit: impl FnOnce(&mut Value)) -> String {
    let now = w.ctx.clock.unix();
    let mut claims = json!({
        "iss": "first", "aud": "https://idp.example", "exp": now + 60, "iat": now,
        "client_id": "first", "response_type": "code", "redirect_uri": REDIRECT,
        "scope": "openid profile", "state": "inner-state", "nonce": "n0nce",
        "code_challenge": CHALLENGE, "code_challenge_method": "S256", "max_age": 3600,
    });
    edit(&mut claims);
    keys.sign(Alg::ES256, "oauth-authz-req+jwt", &claims)
        .unwrap()
}

async fn push(w: &World, client: &str, pairs: &[(&str, &str)]) -> Result<Pushed, TokenError> {
    pushed::push(&w.ctx, &w.client(client).await, &form(pairs), None).await
}

fn pushed_code(r: Result<Pushed, TokenError>) -> AuthorizeErrorCode {
    match r {
        Err(TokenError::Authorization { code, .. }) => code,
        other => panic!("not an authorization request's refusal: {other:?}"),
    }
}

/// The usual request's parameters, as a push sends them.
fn usual(client_id: &str) -> Vec<(String, String)> {
    let params = authorize_params(client_id, &[]);
    [
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
    ]
    .iter()
    .map(|n| ((*n).to_owned(), params.get(n).unwrap_or("").to_owned()))
    .collect()
}

fn pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

async fn at_authorize(w: &World, params: &Params) -> Result<Next, AuthorizeError> {
    let session = w.signed_in(&w.alice).await;
    authorize::authorize(&w.ctx, params, Some(&session)).await
}

fn by_reference(client_id: &str, request_uri: &str) -> Params {
    form(&[("client_id", client_id), ("request_uri", request_uri)])
}

fn page(r: Result<Next, AuthorizeError>) -> String {
    match r {
        Err(AuthorizeError::Page(PageError::BadRequest(m))) => m,
        other => panic!("not a page: {other:?}"),
    }
}

#[tokio::test]
async fn a_pushed_request_is_used_once_by_its_client_within_a_minute() {
    let w = world().await;
    let usual = usual("first");
    let pushed = push(&w, "first", &pairs(&usual)).await.unwrap();
    assert!(pushed.request_uri.starts_with(pushed::REQUEST_URI_PREFIX));
    assert_eq!(pushed.expires_in, 60);
    // Another client's request_uri is neither used nor spent.
    let theirs = at_authorize(&w, &by_reference("third", &pushed.request_uri)).await;
    assert!(page(theirs).contains("expired or was used"));
    let next = at_authorize(&w, &by_reference("first", &pushed.request_uri)).await;
    match next {
        Ok(Next::Code(c)) => {
            assert_eq!(c.redirect_uri, REDIRECT);
            assert_eq!(c.state.as_deref(), Some("st4te"), "the pushed state");
        }
        other => panic!("no code: {other:?}"),
    }
    let again = at_authorize(&w, &by_reference("first", &pushed.request_uri)).await;
    assert!(page(again).contains("expired or was used"));
    // Parameters beside the request_uri are not read: the pushed ones are the request.
    let pushed = push(&w, "first", &pairs(&usual)).await.unwrap();
    let mut outer = pairs(&usual);
    outer.retain(|(n, _)| *n != "state");
    outer.push(("state", "outer"));
    outer.push(("request_uri", pushed.request_uri.as_str()));
    match at_authorize(&w, &form(&outer)).await {
        Ok(Next::Code(c)) => assert_eq!(c.state.as_deref(), Some("st4te")),
        other => panic!("no code: {other:?}"),
    }
    // Expired after a minute; a made-up request_uri is no better.
    let late = push(&w, "first", &pairs(&usual)).await.unwrap();
    w.ctx.clock.advance(Duration::from_secs(61));
    let expired = at_authorize(&w, &by_reference("first", &late.request_uri)).await;
    assert!(page(expired).contains("expired or was used"));
    let made_up = at_authorize(&w, &by_reference("first", "https://evil.example/r")).await;
    assert!(page(made_up).contains("expired or was used"));
    let forged = format!("{}{}", pushed::REQUEST_URI_PREFIX, "x".repeat(43));
    let forged = at_authorize(&w, &by_reference("first", &forged)).await;
    assert!(page(forged).contains("expired or was used"));
}

/// Beside a `request_uri`, nothing is read: not a redirect URI, nor what would change who
/// signs in or how (RFC 9126 §4).
#[tokio::test]
async fn parameters_beside_a_pushed_request_are_not_read() {
    let w = world().await;
    let usual = usual("first");
    let pushed = push(&w, "first", &pairs(&usual)).await.unwrap();
    let outer = form(&[
        ("client_id", "first"),
        ("request_uri", pushed.request_uri.as_str()),
        ("redirect_uri", "https://evil.example/cb"),
        ("prompt", "login"),
        ("max_age", "0"),
        ("id_token_hint", "not-a-token"),
        ("resource", "https://api.example"),
        ("scope", "openid offline_access"),
    ]);
    match at_authorize(&w, &outer).await {
        Ok(Next::Code(c)) => assert_eq!(c.redirect_uri, REDIRECT),
        other => panic!("the outer parameters were read: {other:?}"),
    }
}

#[tokio::test]
async fn what_cannot_be_stored_as_it_was_checked_is_refused_at_the_push() {
    let w = world().await;
    let keys = signing_client(&w).await;
    let nul = object(&w, &keys, |c| c["state"] = json!("a\u{0}b"));
    let got = pushed_code(push(&w, "first", &[("request", nul.as_str())]).await);
    assert_eq!(got, AuthorizeErrorCode::InvalidRequestObject);
    let many = object(&w, &keys, |c| {
        for i in 0..150 {
            c[format!("extra{i}")] = json!("x");
        }
    });
    let got = pushed_code(push(&w, "first", &[("request", many.as_str())]).await);
    assert_eq!(got, AuthorizeErrorCode::InvalidRequestObject);
    // A form of exactly the most parameters, client_id added by the push: refused, not kept.
    let mut full = usual("first");
    full.retain(|(n, _)| n != "client_id");
    for i in full.len()..100 {
        full.push((format!("extra{i}"), "x".into()));
    }
    let got = pushed_code(push(&w, "first", &pairs(&full)).await);
    assert_eq!(got, AuthorizeErrorCode::InvalidRequest);
}

#[tokio::test]
async fn a_push_is_checked_as_the_authorization_endpoint_would_and_answered_as_json() {
    let w = world().await;
    let usual = usual("first");
    let with = |name: &str, value: &str| {
        let mut p: Vec<(String, String)> = usual.clone();
        p.retain(|(n, _)| n != name);
        if !value.is_empty() {
            p.push((name.to_owned(), value.to_owned()));
        }
        p
    };
    let cases = [
        (
            with("redirect_uri", "https://evil.example/cb"),
            AuthorizeErrorCode::InvalidRequest,
        ),
        (with("scope", "profile"), AuthorizeErrorCode::InvalidScope),
        (
            with("code_challenge", ""),
            AuthorizeErrorCode::InvalidRequest,
        ),
        (
            with("response_type", "token"),
            AuthorizeErrorCode::UnsupportedResponseType,
        ),
        (
            with("request_uri", "urn:ietf:params:oauth:request_uri:x"),
            AuthorizeErrorCode::InvalidRequest,
        ),
        (
            with("client_id", "third"),
            AuthorizeErrorCode::InvalidRequest,
        ),
    ];
    for (params, expected) in cases {
        let got = pushed_code(push(&w, "first", &pairs(&params)).await);
        assert_eq!(got, expected, "{params:?}");
    }
    // Client authentication is not part of the request; client_id may be left out.
    let mut authenticated = with("client_id", "");
    authenticated.push(("client_secret".into(), "first-secret".into()));
    assert!(push(&w, "first", &pairs(&authenticated)).await.is_ok());
}

#[tokio::test]
async fn a_client_that_must_push_may_send_nothing_else() {
    let w = world().await;
    w.reregister("first", |m| {
        m.require_pushed_authorization_requests = Some(true)
    })
    .await;
    match at_authorize(&w, &authorize_params("first", &[])).await {
        Err(AuthorizeError::Redirect(e)) => {
            assert_eq!(e.code, AuthorizeErrorCode::InvalidRequest);
            assert!(e.description.contains("PAR"), "{}", e.description);
        }
        other => panic!("not refused: {other:?}"),
    }
    let pushed = push(&w, "first", &pairs(&usual("first"))).await.unwrap();
    let next = at_authorize(&w, &by_reference("first", &pushed.request_uri)).await;
    assert!(matches!(next, Ok(Next::Code(_))), "{next:?}");
    // A signed request by value is no pushed one.
    let keys = signing_client(&w).await;
    let client = w.client("first").await;
    assert!(client.require_par, "the key's registration kept the rule");
    let jwt = object(&w, &keys, |_| {});
    let by_value = form(&[("client_id", "first"), ("request", jwt.as_str())]);
    match at_authorize(&w, &by_value).await {
        Err(AuthorizeError::Redirect(e)) => assert_eq!(e.code, AuthorizeErrorCode::InvalidRequest),
        other => panic!("not refused: {other:?}"),
    }
}

/// A request that waited (for sign-in) goes on only if it would still be accepted: one that
/// was not pushed, once the client must push.
#[tokio::test]
async fn a_waiting_request_that_was_not_pushed_stops_once_pushing_is_required() {
    let w = world().await;
    let session = w.signed_in(&w.alice).await;
    let req = match authorize::authorize(&w.ctx, &authorize_params("first", &[]), None).await {
        Ok(Next::SignIn { request, .. }) => request,
        other => panic!("no sign-in: {other:?}"),
    };
    let id = authorize::pending::remember(&w.ctx, &session, &req)
        .await
        .unwrap();
    w.reregister("first", |m| {
        m.require_pushed_authorization_requests = Some(true)
    })
    .await;
    match authorize::resume(&w.ctx, &session, &id).await {
        Err(AuthorizeError::Page(PageError::BadRequest(m))) => assert!(m.contains("another way")),
        other => panic!("went on: {other:?}"),
    }
}

#[tokio::test]
async fn a_signed_request_object_is_the_request_by_value_or_pushed() {
    let w = world().await;
    let keys = signing_client(&w).await;
    let jwt = object(&w, &keys, |_| {});
    // By value: only its claims count (RFC 9101 §6.3), not the parameters beside it.
    let outer = form(&[
        ("client_id", "first"),
        ("request", jwt.as_str()),
        ("state", "outer-state"),
        ("redirect_uri", "https://evil.example/cb"),
    ]);
    match at_authorize(&w, &outer).await {
        Ok(Next::Code(c)) => {
            assert_eq!(c.state.as_deref(), Some("inner-state"));
            assert_eq!(c.redirect_uri, REDIRECT);
        }
        other => panic!("no code: {other:?}"),
    }
    // The media type may be written in full (RFC 7515 §4.1.9).
    let now = w.ctx.clock.unix();
    let claims = json!({
        "iss": "first", "aud": "https://idp.example", "exp": now + 60, "client_id": "first",
        "response_type": "code", "redirect_uri": REDIRECT, "scope": "openid",
        "code_challenge": CHALLENGE, "code_challenge_method": "S256",
    });
    let full = keys
        .sign(Alg::ES256, "application/oauth-authz-req+jwt", &claims)
        .unwrap();
    let outer = form(&[("client_id", "first"), ("request", full.as_str())]);
    assert!(matches!(at_authorize(&w, &outer).await, Ok(Next::Code(_))));
    // Pushed.
    let jwt = object(&w, &keys, |_| {});
    let pushed = push(&w, "first", &[("request", jwt.as_str())])
        .await
        .unwrap();
    let next = at_authorize(&w, &by_reference("first", &pushed.request_uri)).await;
    assert!(matches!(next, Ok(Next::Code(_))), "{next:?}");
}

#[tokio::test]
async fn request_objects_that_do_not_verify_are_refused() {
    let w = world().await;
    let keys = signing_client(&w).await;
    let now = w.ctx.clock.unix();
    let other = Keys::from_stored(&[generate(Alg::ES256, now).unwrap()], now).unwrap();
    let unsigned = {
        use base64::Engine;
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let claims = json!({"iss": "first", "aud": "https://idp.example", "exp": now + 60,
            "client_id": "first", "response_type": "code", "redirect_uri": REDIRECT,
            "scope": "openid"});
        format!("{}.{}.", b64(json!({"alg": "none"})), b64(claims))
    };
    let cases: Vec<(&str, String)> = vec![
        ("unsigned", unsigned),
        ("another key", object(&w, &other, |_| {})),
        ("expired", object(&w, &keys, |c| c["exp"] = json!(now - 1))),
        (
            "lives a day",
            object(&w, &keys, |c| c["exp"] = json!(now + 86_400)),
        ),
        (
            "wrong aud",
            object(&w, &keys, |c| c["aud"] = json!("https://other.example")),
        ),
        (
            "wrong iss",
            object(&w, &keys, |c| c["iss"] = json!("third")),
        ),
        (
            "no client_id",
            object(&w, &keys, |c| c["client_id"] = Value::Null),
        ),
        (
            "other client_id",
            object(&w, &keys, |c| c["client_id"] = json!("third")),
        ),
        (
            "nested",
            object(&w, &keys, |c| {
                c["request_uri"] = json!("https://x.example/r")
            }),
        ),
        (
            "an array",
            object(&w, &keys, |c| c["scope"] = json!(["openid"])),
        ),
        (
            "not yet",
            object(&w, &keys, |c| c["nbf"] = json!(now + 600)),
        ),
        (
            "a client assertion's sub",
            object(&w, &keys, |c| c["sub"] = json!("first")),
        ),
        ("a bad typ", {
            let claims = json!({"iss": "first", "aud": "https://idp.example",
                "exp": now + 60, "client_id": "first"});
            keys.sign(Alg::ES256, "at+jwt", &claims).unwrap()
        }),
    ];
    for (what, jwt) in &cases {
        let outer = form(&[("client_id", "first"), ("request", jwt.as_str())]);
        let message = page(at_authorize(&w, &outer).await);
        assert!(
            message.contains("signed request was refused"),
            "{what}: {message}"
        );
        let got = pushed_code(push(&w, "first", &[("request", jwt.as_str())]).await);
        assert_eq!(got, AuthorizeErrorCode::InvalidRequestObject, "{what}");
    }
    // A client with no keys has nothing to verify with.
    let jwt = object(&w, &keys, |c| {
        c["iss"] = json!("third");
        c["client_id"] = json!("third");
    });
    let outer = form(&[("client_id", "third"), ("request", jwt.as_str())]);
    assert!(page(at_authorize(&w, &outer).await).contains("registered keys"));
    // Both kinds at once, or none of the client: a page.
    let both = form(&[
        ("client_id", "first"),
        ("request", "x"),
        ("request_uri", "urn:ietf:params:oauth:request_uri:x"),
    ]);
    assert!(page(at_authorize(&w, &both).await).contains("both"));
    let anonymous = form(&[("request", cases[1].1.as_str())]);
    assert!(page(at_authorize(&w, &anonymous).await).contains("client_id"));
}

/// A request object's `dpop_jkt` claim binds the code (RFC 9449 §10), by value or pushed; one
/// beside the request object is not read (RFC 9101 §6.3).
#[tokio::test]
async fn a_request_objects_dpop_jkt_binds_its_code() {
    use crate::protocol::token;
    use crate::types::TokenErrorCode;
    let w = world().await;
    let keys = signing_client(&w).await;
    let jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    let redeem = |code: String| {
        let w = &w;
        async move {
            let pairs = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", super::VERIFIER),
            ];
            let client = w.client("first").await;
            token::exchange(&w.ctx, &client, &form(&pairs))
                .await
                .map(|_| ())
                .map_err(|e| e.code())
        }
    };
    let code_of = |next: Result<Next, AuthorizeError>| match next {
        Ok(Next::Code(c)) => c.code,
        other => panic!("no code: {other:?}"),
    };
    let bound = object(&w, &keys, |c| c["dpop_jkt"] = json!(jkt));
    let by_value = form(&[("client_id", "first"), ("request", bound.as_str())]);
    let code = code_of(at_authorize(&w, &by_value).await);
    assert_eq!(
        redeem(code).await,
        Err(Some(TokenErrorCode::InvalidDpopProof))
    );
    let pushed = push(&w, "first", &[("request", bound.as_str())])
        .await
        .unwrap();
    let code = code_of(at_authorize(&w, &by_reference("first", &pushed.request_uri)).await);
    assert_eq!(
        redeem(code).await,
        Err(Some(TokenErrorCode::InvalidDpopProof))
    );
    // Beside an unbound request object, dpop_jkt is not the request's.
    let plain = object(&w, &keys, |_| {});
    let beside = form(&[
        ("client_id", "first"),
        ("request", plain.as_str()),
        ("dpop_jkt", jkt),
    ]);
    let code = code_of(at_authorize(&w, &beside).await);
    assert_eq!(redeem(code).await, Ok(()));
}
