//! The token endpoint: codes are single use, short-lived and bound; clients authenticate.

use super::{code_for_app_a, code_with};
use crate::harness::{jwt_part, register, spawn};
use provider::types::{Alg, AuthMethod};
use std::time::Duration;

#[tokio::test]
async fn code_exchange_returns_verified_tokens() {
    let stack = spawn().await;
    let (_, code, verifier) = code_for_app_a(&stack, &[]).await;
    let (status, headers, body) = stack.redeem_as_app_a(&code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "openid profile email");
    let id = jwt_part(body["id_token"].as_str().unwrap(), 1);
    assert_eq!(id["iss"], stack.issuer);
    assert_eq!(id["aud"], "app-a");
    assert_eq!(id["nonce"], "n-0S6_WzA2Mj");
    for claim in ["sub", "exp", "iat", "auth_time", "sid", "at_hash"] {
        assert!(id.get(claim).is_some(), "{claim} in {id}");
    }
    assert_eq!(
        jwt_part(body["id_token"].as_str().unwrap(), 0)["alg"],
        "RS256"
    );
    let at_header = jwt_part(body["access_token"].as_str().unwrap(), 0);
    assert_eq!(at_header["typ"], "at+jwt", "RFC 9068");
    let at = jwt_part(body["access_token"].as_str().unwrap(), 1);
    for claim in [
        "iss",
        "exp",
        "aud",
        "sub",
        "client_id",
        "iat",
        "jti",
        "scope",
    ] {
        assert!(at.get(claim).is_some(), "{claim} in {at}");
    }
    assert_eq!(at["client_id"], "app-a");
}

#[tokio::test]
async fn a_code_is_single_use() {
    let stack = spawn().await;
    let (_, code, verifier) = code_for_app_a(&stack, &[]).await;
    assert_eq!(stack.redeem_as_app_a(&code, &verifier).await.0, 200);
    let (status, headers, body) = stack.redeem_as_app_a(&code, &verifier).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(headers["cache-control"], "no-store");
}

#[tokio::test]
async fn two_racing_redemptions_get_one_token() {
    let stack = spawn().await;
    let (_, code, verifier) = code_for_app_a(&stack, &[]).await;
    let (a, b) = tokio::join!(
        stack.redeem_as_app_a(&code, &verifier),
        stack.redeem_as_app_a(&code, &verifier)
    );
    // One is a replay: refused, and everything the code issued is revoked (RFC 6749 §4.1.2),
    // whether the other's tokens were stored before the revocation (then they are revoked)
    // or after it (then they are never issued).
    let refused = [&a, &b].iter().filter(|r| r.0.as_u16() == 400).count();
    assert!(refused >= 1, "{a:?} {b:?}");
    for r in [&a, &b] {
        if r.0.as_u16() == 200 {
            let at = r.2["access_token"].as_str().unwrap();
            let status = crate::flows::userinfo_status(&stack, at).await;
            assert_eq!(status, 401, "the replay revoked it");
        } else {
            assert_eq!(r.2["error"], "invalid_grant");
        }
    }
}

#[tokio::test]
async fn a_code_expires_after_sixty_seconds() {
    let stack = spawn().await;
    let (_, code, verifier) = code_for_app_a(&stack, &[]).await;
    stack.clock.advance(Duration::from_secs(61));
    let (status, _, body) = stack.redeem_as_app_a(&code, &verifier).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn redirect_uri_must_match_at_the_token_endpoint() {
    let stack = spawn().await;
    let (_, code, verifier) = code_for_app_a(&stack, &[]).await;
    let (status, _, body) = stack
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &format!("{}/other", stack.app_a.url)),
                ("code_verifier", &verifier),
            ],
            Some((&stack.app_a.client_id, &stack.app_a.secret)),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    // Missing altogether: invalid_request.
    let (_, code, verifier) = code_for_app_a(&stack, &[]).await;
    let (status, _, body) = stack
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
            ],
            Some((&stack.app_a.client_id, &stack.app_a.secret)),
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test]
async fn pkce_verifier_missing_or_wrong() {
    let stack = spawn().await;
    let (browser, code, _) = code_for_app_a(&stack, &[]).await;
    let (status, _, body) = stack
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &stack.app_a.redirect_uri),
            ],
            Some((&stack.app_a.client_id, &stack.app_a.secret)),
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (code, _) = code_with(&stack, &browser, &[]).await;
    let (wrong, _) = crate::harness::pkce();
    let (status, _, body) = stack.redeem_as_app_a(&code, &wrong).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // The challenge itself is not a verifier (that would be `plain`).
    let req = stack.authorize_url(&stack.app_a.client_id, &stack.app_a.redirect_uri, &[]);
    let challenge = crate::harness::param(req.url.as_str(), "code_challenge").unwrap();
    let page = browser.get_once(req.url.as_str()).await;
    let code = crate::harness::param(page.hops[0].location.as_deref().unwrap(), "code").unwrap();
    assert_eq!(
        stack.redeem_as_app_a(&code, &challenge).await.2["error"],
        "invalid_grant"
    );
}

/// A code for App A without PKCE (the challenge and its method left out).
async fn code_without_pkce(
    stack: &crate::harness::Stack,
    browser: &crate::harness::Browser,
) -> Result<String, String> {
    let no_pkce = [("code_challenge", ""), ("code_challenge_method", "")];
    let req = stack.authorize_url(&stack.app_a.client_id, &stack.app_a.redirect_uri, &no_pkce);
    let page = browser.get_once(req.url.as_str()).await;
    let location = page.hops[0].location.clone().unwrap_or_default();
    assert!(
        location.starts_with(&stack.app_a.redirect_uri),
        "{location}"
    );
    crate::harness::param(&location, "code")
        .ok_or_else(|| crate::harness::param(&location, "error_description").unwrap_or_default())
}

/// Redeems `code` as App A without a `code_verifier`.
async fn redeem_without_verifier(
    stack: &crate::harness::Stack,
    code: &str,
) -> (u16, serde_json::Value) {
    let (status, _, body) = stack
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &stack.app_a.redirect_uri),
            ],
            Some((&stack.app_a.client_id, &stack.app_a.secret)),
        )
        .await;
    (status.as_u16(), body)
}

/// An operator may let a confidential client go without PKCE (a certification suite's), and
/// only such a client: its requests may then carry no challenge, a challenge it does send is
/// still checked, a verifier for a code without a challenge is refused (PKCE cannot be
/// stripped on the way), and once PKCE is required again its codes without one are refused.
#[tokio::test]
async fn pkce_may_be_turned_off_for_a_confidential_client_only() {
    let stack = spawn().await;
    let (browser, _, _) = code_for_app_a(&stack, &[]).await;
    let refused = code_without_pkce(&stack, &browser).await.unwrap_err();
    assert!(refused.contains("PKCE is required"), "{refused}");

    let out = stack
        .cli(&[
            "clients",
            "update",
            "app-a",
            "--require-pkce",
            "false",
            "--json",
        ])
        .await
        .unwrap();
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["require_pkce"], false, "{out}");

    let code = code_without_pkce(&stack, &browser).await.unwrap();
    let (status, body) = redeem_without_verifier(&stack, &code).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id_token"].as_str().is_some());

    let code = code_without_pkce(&stack, &browser).await.unwrap();
    let (verifier, _) = crate::harness::pkce();
    let (status, _, body) = stack.redeem_as_app_a(&code, &verifier).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("no code_challenge")
    );

    // A challenge sent anyway binds the code as usual.
    let (code, verifier) = code_with(&stack, &browser, &[]).await;
    let (status, body) = redeem_without_verifier(&stack, &code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    assert_eq!(stack.redeem_as_app_a(&code, &verifier).await.0, 200);

    // Required again: a code issued without PKCE meanwhile is refused, new requests too, and
    // a request made before and finished after is answered with an error, not a code.
    let pending = code_without_pkce(&stack, &browser).await.unwrap();
    let waiting = crate::harness::Browser::new();
    let no_pkce = [("code_challenge", ""), ("code_challenge_method", "")];
    let req = stack.authorize_url(&stack.app_a.client_id, &stack.app_a.redirect_uri, &no_pkce);
    let login = waiting
        .follow_until(req.url.as_str(), &stack.app_a.redirect_uri)
        .await;
    assert_eq!(login.status, 200, "the sign-in page: {}", login.body);
    stack
        .cli(&["clients", "update", "app-a", "--require-pkce", "true"])
        .await
        .unwrap();
    let finished = waiting
        .submit_until(
            &login,
            "/login",
            &[
                ("username", crate::harness::ALICE.0),
                ("password", crate::harness::ALICE.1),
            ],
            &stack.app_a.redirect_uri,
        )
        .await;
    let answer = finished.url.as_str();
    assert!(answer.starts_with(&stack.app_a.redirect_uri), "{answer}");
    assert_eq!(
        crate::harness::param(answer, "error").as_deref(),
        Some("invalid_request")
    );
    assert!(crate::harness::param(answer, "code").is_none());
    let (status, body) = redeem_without_verifier(&stack, &pending).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert!(code_without_pkce(&stack, &browser).await.is_err());

    // Never for a public client, at registration or later.
    let public = [
        "clients",
        "add",
        "--name",
        "Public",
        "--client-id",
        "pub",
        "--redirect-uri",
        "http://pub.localhost/cb",
        "--auth-method",
        "none",
    ];
    let err = stack
        .cli(&[&public[..], &["--require-pkce", "false"]].concat())
        .await
        .unwrap_err();
    assert!(err.contains("public client"), "{err}");
    stack.cli(&public).await.unwrap();
    let err = stack
        .cli(&["clients", "update", "pub", "--require-pkce", "false"])
        .await
        .unwrap_err();
    assert!(err.contains("public client"), "{err}");
    // Nor by making a client without PKCE public.
    stack
        .cli(&["clients", "update", "app-a", "--require-pkce", "false"])
        .await
        .unwrap();
    let err = stack
        .cli(&["clients", "update", "app-a", "--auth-method", "none"])
        .await
        .unwrap_err();
    assert!(err.contains("public client"), "{err}");
    // A change of how the client authenticates takes the operator's exception back.
    let out = stack
        .cli(&[
            "clients",
            "update",
            "app-a",
            "--auth-method",
            "client_secret_post",
            "--json",
        ])
        .await
        .unwrap();
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["require_pkce"], true, "{out}");
    let audit = stack.cli(&["audit", "tail", "-n", "200"]).await.unwrap();
    assert!(
        audit.contains("require_pkce false, by an operator"),
        "{audit}"
    );
}

/// An app registered for EdDSA gets Ed25519 ID tokens (RFC 8037): signed by the key the JWKS
/// publishes as an `OKP` key, with `at_hash` the left half of SHA-512; the sample app, built on
/// the `openidconnect` crate, verifies them and signs the person in.
#[tokio::test]
async fn an_app_registered_for_eddsa_gets_ed25519_id_tokens() {
    use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use sha2::{Digest, Sha512};

    // Off by default: nothing would sign.
    let plain = spawn().await;
    let err = plain
        .cli(&["clients", "update", "app-a", "--id-token-alg", "EdDSA"])
        .await
        .unwrap_err();
    assert!(err.contains("not enabled on this provider"), "{err}");
    assert_eq!(
        plain.discovery().await["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256", "ES256"])
    );
    drop(plain);

    let stack = crate::harness::spawn_with(crate::harness::Options {
        configure: Some(|c| c.keys.algorithms.push(Alg::EdDSA)),
        ..crate::harness::Options::default()
    })
    .await;
    assert_eq!(
        stack.discovery().await["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256", "ES256", "EdDSA"])
    );
    let out = stack
        .cli(&[
            "clients",
            "update",
            "app-a",
            "--id-token-alg",
            "EdDSA",
            "--json",
        ])
        .await
        .unwrap();
    assert!(
        out.contains(r#""id_token_signed_response_alg": "EdDSA""#),
        "{out}"
    );

    let browser = crate::harness::Browser::new();
    let home = super::sign_in(&stack, &browser, &stack.app_a, crate::harness::ALICE).await;
    assert_eq!(home.status, 200, "{}", home.body);
    let (status, me) = super::me(&browser, &stack.app_a).await;
    assert_eq!(status, 200, "the app verified the EdDSA ID token: {me}");

    let (code, verifier) = code_with(&stack, &browser, &[]).await;
    let (status, _, body) = stack.redeem_as_app_a(&code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    let id_token = body["id_token"].as_str().unwrap();
    let header = jwt_part(id_token, 0);
    assert_eq!(header["alg"], "EdDSA");
    let http = client_app::http::client_builder().build().unwrap();
    let jwks: serde_json::Value = http
        .get(format!("{}/jwks", stack.issuer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the signing key is published");
    assert_eq!(
        (&key["kty"], &key["crv"]),
        (&"OKP".into(), &"Ed25519".into())
    );
    let x = URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap();
    let (signed, signature) = id_token.rsplit_once('.').unwrap();
    UnparsedPublicKey::new(&ED25519, &x)
        .verify(
            signed.as_bytes(),
            &URL_SAFE_NO_PAD.decode(signature).unwrap(),
        )
        .expect("a valid Ed25519 signature");
    let access_token = body["access_token"].as_str().unwrap();
    let expected = URL_SAFE_NO_PAD.encode(&Sha512::digest(access_token.as_bytes())[..32]);
    assert_eq!(jwt_part(id_token, 1)["at_hash"], expected);
}

#[tokio::test]
async fn wrong_client_secret_is_401_with_www_authenticate() {
    let stack = spawn().await;
    let (_, code, verifier) = code_for_app_a(&stack, &[]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", stack.app_a.redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, headers, body) = stack.token(&form, Some(("app-a", "wrong-secret"))).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic"),
        "{headers:?}"
    );
    let (status, headers, _) = stack.token(&form, Some(("no-such-client", "x"))).await;
    assert_eq!(status, 401);
    assert!(headers.contains_key("www-authenticate"));
    // No credentials at all.
    let (status, _, body) = stack.token(&form, None).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // The wrong secret did not consume the code: the right one still works.
    assert_eq!(stack.redeem_as_app_a(&code, &verifier).await.0, 200);
}

#[tokio::test]
async fn a_code_is_bound_to_its_client() {
    let stack = spawn().await;
    let (_, code, verifier) = code_for_app_a(&stack, &[]).await;
    let (status, _, body) = stack
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &stack.app_a.redirect_uri),
                ("code_verifier", &verifier),
            ],
            Some((&stack.app_b.client_id, &stack.app_b.secret)),
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn public_clients_and_client_secret_post() {
    let stack = spawn().await;
    let now = stack.clock.unix();
    let cli_redirect = "http://127.0.0.1:9/cli-callback";
    register(
        &stack.store,
        "cli",
        "CLI",
        None,
        &[cli_redirect],
        AuthMethod::None,
        true,
        Alg::ES256,
        now,
    )
    .await;
    let post_redirect = "http://post.localhost:9/cb";
    register(
        &stack.store,
        "post-app",
        "Post App",
        Some("post-secret"),
        &[post_redirect],
        AuthMethod::ClientSecretPost,
        true,
        Alg::RS256,
        now,
    )
    .await;
    let (browser, _, _) = code_for_app_a(&stack, &[]).await;

    let code_for = |client: &'static str, redirect: &'static str| {
        let req = stack.authorize_url(client, redirect, &[]);
        let browser = &browser;
        async move {
            let page = browser.get_once(req.url.as_str()).await;
            let location = page.hops[0].location.clone().unwrap();
            (
                crate::harness::param(&location, "code").unwrap(),
                req.verifier,
            )
        }
    };
    // Public client: client_id in the body, no secret, PKCE; ES256 ID token as registered.
    let (code, verifier) = code_for("cli", cli_redirect).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", cli_redirect),
        ("code_verifier", verifier.as_str()),
        ("client_id", "cli"),
    ];
    let (status, _, body) = stack.token(&form, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        jwt_part(body["id_token"].as_str().unwrap(), 0)["alg"],
        "ES256"
    );

    // client_secret_post: credentials in the body; Basic is refused for this client.
    let (code, verifier) = code_for("post-app", post_redirect).await;
    let base = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", post_redirect),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, _, _) = stack.token(&base, Some(("post-app", "post-secret"))).await;
    assert_eq!(status, 401, "registered method is client_secret_post");
    let mut with_post = base.to_vec();
    with_post.extend([("client_id", "post-app"), ("client_secret", "post-secret")]);
    let (status, _, body) = stack.token(&with_post, None).await;
    assert_eq!(status, 200, "{body}");
    // Two methods at once are refused.
    let (status, _, body) = stack
        .token(&with_post, Some(("post-app", "post-secret")))
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test]
async fn bad_token_requests_get_json_errors() {
    let stack = spawn().await;
    let creds = Some(("app-a", "app-a-secret"));
    let (status, _, body) = stack
        .token(&[("grant_type", "password"), ("username", "a")], creds)
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (status, _, body) = stack.token(&[("code", "x")], creds).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, _, body) = stack
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("grant_type", "authorization_code"),
            ],
            creds,
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    // JSON instead of a form.
    let client = client_app::http::client_builder().build().unwrap();
    let resp = client
        .post(format!("{}/token", stack.issuer))
        .json(&serde_json::json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );
}
