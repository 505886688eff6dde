//! Client authentication (RFC 6749 §2.3, RFC 7523): the registered method only, with the right
//! credential.

use super::{form, world};
use crate::protocol::client_auth::{JWT_BEARER, authenticate, presented};
use crate::protocol::registration::{self, ClientMetadata, Registrant};
use crate::types::{Alg, AuthMethod, GrantType, TokenErrorCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

#[tokio::test]
async fn the_registered_method_with_the_right_secret_authenticates() {
    let w = world().await;
    let ok = presented(Some(&basic("first", "first-secret")), &form(&[])).unwrap();
    assert_eq!(authenticate(&w.ctx, &ok).await.unwrap().client_id, "first");
    let public = presented(None, &form(&[("client_id", "public")])).unwrap();
    assert_eq!(
        authenticate(&w.ctx, &public).await.unwrap().client_id,
        "public"
    );
    for p in [
        presented(Some(&basic("first", "wrong")), &form(&[])),
        presented(Some(&basic("nobody", "first-secret")), &form(&[])),
        // The right secret by another method than the registered one.
        presented(
            None,
            &form(&[("client_id", "first"), ("client_secret", "first-secret")]),
        ),
        // A confidential client cannot pass as public.
        presented(None, &form(&[("client_id", "first")])),
    ] {
        let got = authenticate(&w.ctx, &p.unwrap()).await;
        let code = got.err().and_then(|e| e.code());
        assert_eq!(code, Some(TokenErrorCode::InvalidClient));
    }
}

#[tokio::test]
async fn a_signed_assertion_authenticates_once() {
    let w = world().await;
    let key = crate::keys::generate(Alg::ES256, 0).unwrap();
    let keys = crate::keys::Keys::from_stored(std::slice::from_ref(&key), 1).unwrap();
    let metadata = ClientMetadata {
        grant_types: Some(vec![GrantType::ClientCredentials.as_str().into()]),
        token_endpoint_auth_method: Some(AuthMethod::PrivateKeyJwt.as_str().into()),
        jwks: Some(serde_json::from_str(keys.jwks_json()).unwrap()),
        ..ClientMetadata::default()
    };
    let who = Registrant {
        client_id: Some("signer".into()),
        ..Registrant::default()
    };
    let now = w.ctx.clock.unix();
    registration::register(
        &w.ctx.store,
        metadata.validate(&w.ctx.outbound).unwrap(),
        &who,
        now,
    )
    .await
    .unwrap();
    let assertion = |aud: String, exp: i64| {
        let claims = serde_json::json!({"iss": "signer", "sub": "signer", "aud": aud,
            "exp": exp, "jti": infra::secret::random_handle().unwrap()});
        keys.sign(Alg::ES256, "JWT", &claims).unwrap()
    };
    let try_with = |jwt: String| {
        let ctx = &w.ctx;
        async move {
            let f = form(&[
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &jwt),
            ]);
            authenticate(ctx, &presented(None, &f)?).await
        }
    };
    let good = assertion(w.ctx.url(crate::paths::TOKEN), now + 60);
    assert!(try_with(good.clone()).await.is_ok());
    assert!(
        try_with(good).await.is_err(),
        "a replayed assertion is refused"
    );
    assert!(
        try_with(assertion(w.ctx.issuer.clone(), now + 60))
            .await
            .is_ok(),
        "the issuer"
    );
    assert!(
        try_with(assertion("https://elsewhere".into(), now + 60))
            .await
            .is_err()
    );
    assert!(
        try_with(assertion(w.ctx.url(crate::paths::TOKEN), now - 1))
            .await
            .is_err()
    );
    let far = assertion(w.ctx.url(crate::paths::TOKEN), now + 7200);
    assert!(
        try_with(far).await.is_err(),
        "an assertion may not live for hours"
    );
    // A request object (it travels through browsers) or a DPoP proof, with every claim of an
    // assertion, is still not one; the PAR endpoint is an audience (RFC 9126 §2).
    for typ in [
        "oauth-authz-req+jwt",
        "application/oauth-authz-req+jwt",
        "dpop+jwt",
    ] {
        let claims = serde_json::json!({"iss": "signer", "sub": "signer", "aud": w.ctx.issuer,
            "exp": now + 60, "jti": infra::secret::random_handle().unwrap()});
        let jwt = keys.sign(Alg::ES256, typ, &claims).unwrap();
        assert!(try_with(jwt).await.is_err(), "{typ}");
    }
    let par = assertion(w.ctx.url(crate::paths::PUSHED_AUTHORIZATION), now + 60);
    assert!(try_with(par).await.is_ok());
}
