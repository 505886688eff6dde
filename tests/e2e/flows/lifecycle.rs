//! Token lifecycle: refresh rotation and reuse detection, online and offline grants,
//! revocation (RFC 7009), introspection (RFC 7662), code replay, client credentials.

use super::{prompt_none_error, sign_in, userinfo_status as userinfo};
use crate::harness::{ALICE, Browser, Stack, grants, param, spawn};
use provider::protocol::registration::{self, ClientMetadata, MetadataError, Registrant};
use provider::types::{AuthMethod, GrantType};
use serde_json::Value;
use std::time::Duration;

const REDIRECT: &str = "http://127.0.0.1:9/cb";

/// Registers the first-party client `id` allowed `grant_types`, with the secret `{id}-secret`
/// unless it is public, through the registration rules (which may refuse it).
async fn try_client(
    stack: &Stack,
    id: &str,
    grant_types: &[GrantType],
    auth: AuthMethod,
) -> Result<(), MetadataError> {
    let metadata = ClientMetadata {
        client_name: Some(id.into()),
        redirect_uris: vec![REDIRECT.into()],
        grant_types: grants(grant_types),
        token_endpoint_auth_method: Some(auth.as_str().into()),
        ..ClientMetadata::default()
    };
    let who = Registrant {
        client_id: Some(id.into()),
        client_secret: Some(format!("{id}-secret")),
        first_party: true,
        ..Registrant::default()
    };
    let now = stack.clock.unix();
    registration::register_or_replace(
        &stack.store,
        metadata.validate(&stack.provider.outbound)?,
        &who,
        now,
    )
    .await
    .unwrap();
    Ok(())
}

async fn client(stack: &Stack, id: &str, grant_types: &[GrantType], auth: AuthMethod) {
    try_client(stack, id, grant_types, auth).await.unwrap();
}

/// A stack with a browser signed in as Alice, and clients `rp` and `rp2` allowed refresh tokens.
async fn setup() -> (Stack, Browser) {
    let stack = spawn().await;
    for id in ["rp", "rp2"] {
        client(
            &stack,
            id,
            &[GrantType::AuthorizationCode, GrantType::RefreshToken],
            AuthMethod::ClientSecretBasic,
        )
        .await;
    }
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_b, ALICE).await;
    (stack, browser)
}

fn creds(id: &str) -> (String, String) {
    (id.to_owned(), format!("{id}-secret"))
}

/// Tokens for `client_id` through the signed-in browser.
async fn grant(stack: &Stack, browser: &Browser, client_id: &str, scope: &str) -> Value {
    let req = stack.authorize_url(client_id, REDIRECT, &[("scope", scope)]);
    let page = browser.follow_until(req.url.as_str(), REDIRECT).await;
    let code = param(page.url.as_str(), "code").unwrap_or_else(|| {
        let body: String = page.body.chars().take(400).collect();
        panic!(
            "no code for {client_id}: {} ({}): {body}",
            page.url, page.status
        )
    });
    let (id, secret) = creds(client_id);
    let (status, _, body) = stack
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &req.verifier),
            ],
            Some((&id, &secret)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn refresh(stack: &Stack, client_id: &str, token: &str, scope: Option<&str>) -> (u16, Value) {
    let (id, secret) = creds(client_id);
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    let (status, _, body) = stack.token(&form, Some((&id, &secret))).await;
    (status.as_u16(), body)
}

/// POSTs a form to `path` with Basic credentials (or none).
async fn post(
    stack: &Stack,
    path: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, Value) {
    let client = client_app::http::client_builder().build().unwrap();
    let mut req = client.post(format!("{}{path}", stack.issuer)).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} in {v}"))
        .to_owned()
}

#[tokio::test]
async fn refresh_rotates_and_a_reuse_after_the_window_revokes_the_family() {
    let (stack, browser) = setup().await;
    let first = grant(&stack, &browser, "rp", "openid profile email").await;
    let rt1 = s(&first, "refresh_token");
    let (status, second) = refresh(&stack, "rp", &rt1, None).await;
    assert_eq!(status, 200, "{second}");
    let rt2 = s(&second, "refresh_token");
    assert_ne!(rt1, rt2, "rotated");
    assert!(second.get("id_token").is_some(), "OIDC Core §12.2");
    assert_eq!(userinfo(&stack, &s(&second, "access_token")).await, 200);
    // rt1 again, after the grace window: a copy is loose. Everything of the grant dies.
    stack.clock.advance(Duration::from_secs(6));
    assert_eq!(refresh(&stack, "rp", &rt1, None).await.0, 400);
    assert_eq!(
        refresh(&stack, "rp", &rt2, None).await.1["error"],
        "invalid_grant",
        "the newest rotation too"
    );
    assert_eq!(
        userinfo(&stack, &s(&second, "access_token")).await,
        401,
        "and its access token"
    );
    assert_eq!(userinfo(&stack, &s(&first, "access_token")).await, 401);
    // An online grant: its SSO session ended as well.
    assert_eq!(
        prompt_none_error(&stack, &browser).await.as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn two_parallel_refreshes_inside_the_window_get_one_successor() {
    let (stack, browser) = setup().await;
    let rt = s(
        &grant(&stack, &browser, "rp", "openid").await,
        "refresh_token",
    );
    let (a, b) = tokio::join!(
        refresh(&stack, "rp", &rt, None),
        refresh(&stack, "rp", &rt, None)
    );
    assert_eq!((a.0, b.0), (200, 200), "{a:?} {b:?}");
    // The grant does not fork: a retry is given the very successor the
    // first request got, so there is one live refresh token, not two.
    let successor = s(&a.1, "refresh_token");
    assert_eq!(successor, s(&b.1, "refresh_token"), "one successor");
    for r in [&a.1, &b.1] {
        assert_eq!(userinfo(&stack, &s(r, "access_token")).await, 200);
    }
    let (status, next) = refresh(&stack, "rp", &successor, None).await;
    assert_eq!(status, 200, "{next}");
    // Past the window the original is a replay, and the whole grant dies.
    stack.clock.advance(Duration::from_secs(6));
    assert_eq!(refresh(&stack, "rp", &rt, None).await.0, 400);
    assert_eq!(
        refresh(&stack, "rp", &s(&next, "refresh_token"), None)
            .await
            .0,
        400,
        "the family revoked"
    );
}

#[tokio::test]
async fn a_narrower_scope_is_allowed_a_wider_one_refused() {
    let (stack, browser) = setup().await;
    let rt = s(
        &grant(&stack, &browser, "rp", "openid profile").await,
        "refresh_token",
    );
    let (status, narrow) = refresh(&stack, "rp", &rt, Some("openid")).await;
    assert_eq!(status, 200, "{narrow}");
    assert_eq!(narrow["scope"], "openid");
    // The rotated token still holds the grant's full scope.
    let (status, again) = refresh(
        &stack,
        "rp",
        &s(&narrow, "refresh_token"),
        Some("openid profile"),
    )
    .await;
    assert_eq!(status, 200, "{again}");
    let (status, wide) = refresh(
        &stack,
        "rp",
        &s(&again, "refresh_token"),
        Some("openid profile email"),
    )
    .await;
    assert_eq!(
        (status, wide["error"].as_str()),
        (400, Some("invalid_scope"))
    );
}

#[tokio::test]
async fn a_refresh_token_is_bound_to_its_client() {
    let (stack, browser) = setup().await;
    let rt = s(
        &grant(&stack, &browser, "rp", "openid").await,
        "refresh_token",
    );
    assert_eq!(
        refresh(&stack, "rp2", &rt, None).await.1["error"],
        "invalid_grant"
    );
    assert_eq!(
        refresh(&stack, "rp", &rt, None).await.0,
        200,
        "untouched for its own client"
    );
}

#[tokio::test]
async fn online_grants_die_with_their_session_offline_ones_do_not() {
    let (stack, browser) = setup().await;
    let online = s(
        &grant(&stack, &browser, "rp", "openid").await,
        "refresh_token",
    );
    let offline_grant = grant(&stack, &browser, "rp", "openid offline_access").await;
    assert_eq!(offline_grant["scope"], "openid offline_access");
    let offline = s(&offline_grant, "refresh_token");
    crate::flows::sign_out_everywhere(&stack, &browser).await;
    assert_eq!(
        refresh(&stack, "rp", &online, None).await.1["error"],
        "invalid_grant"
    );
    assert_eq!(
        userinfo(&stack, &s(&offline_grant, "access_token")).await,
        200,
        "offline access token lives"
    );
    let (status, body) = refresh(&stack, "rp", &offline, None).await;
    assert_eq!(status, 200, "{body}");
    // A client not allowed refresh tokens never gets offline_access.
    let home = sign_in(&stack, &browser, &stack.app_b, ALICE).await;
    assert!(
        home.url.as_str().starts_with(stack.app_b.url.as_str()) && home.status == 200,
        "signed in again: {} ({}): {}",
        home.url,
        home.status,
        home.body.chars().take(400).collect::<String>()
    );
    client(
        &stack,
        "plain",
        &[GrantType::AuthorizationCode],
        AuthMethod::ClientSecretBasic,
    )
    .await;
    let plain = grant(&stack, &browser, "plain", "openid offline_access").await;
    assert_eq!(plain["scope"], "openid");
    assert!(plain.get("refresh_token").is_none());
}

#[tokio::test]
async fn a_family_has_an_absolute_lifetime() {
    let (stack, browser) = setup().await;
    let mut rt = s(
        &grant(&stack, &browser, "rp", "openid offline_access").await,
        "refresh_token",
    );
    for _ in 0..4 {
        stack.clock.advance(Duration::from_secs(7 * 24 * 3600));
        let (status, body) = refresh(&stack, "rp", &rt, None).await;
        assert_eq!(status, 200, "{body}");
        rt = s(&body, "refresh_token");
    }
    stack.clock.advance(Duration::from_secs(3 * 24 * 3600));
    assert_eq!(
        refresh(&stack, "rp", &rt, None).await.1["error"],
        "invalid_grant",
        "30 days, whatever the rotation"
    );
}

#[tokio::test]
async fn a_replayed_code_revokes_what_it_issued() {
    let (stack, browser) = setup().await;
    let req = stack.authorize_url("rp", REDIRECT, &[]);
    let code = param(
        browser
            .follow_until(req.url.as_str(), REDIRECT)
            .await
            .url
            .as_str(),
        "code",
    )
    .unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", req.verifier.as_str()),
    ];
    let (status, _, first) = stack.token(&form, Some(("rp", "rp-secret"))).await;
    assert_eq!(status, 200);
    assert_eq!(userinfo(&stack, &s(&first, "access_token")).await, 200);
    let (status, _, replay) = stack.token(&form, Some(("rp", "rp-secret"))).await;
    assert_eq!(
        (status.as_u16(), replay["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        userinfo(&stack, &s(&first, "access_token")).await,
        401,
        "the replay revoked the access token"
    );
    assert_eq!(
        refresh(&stack, "rp", &s(&first, "refresh_token"), None)
            .await
            .0,
        400,
        "and the refresh token"
    );
}

#[tokio::test]
async fn revocation_follows_rfc7009() {
    let (stack, browser) = setup().await;
    let tokens = grant(&stack, &browser, "rp", "openid").await;
    let (at, rt) = (s(&tokens, "access_token"), s(&tokens, "refresh_token"));
    // Client authentication: wrong or missing is 401.
    assert_eq!(
        post(&stack, "/revoke", &[("token", &at)], Some(("rp", "wrong")))
            .await
            .0,
        401
    );
    assert_eq!(
        post(&stack, "/revoke", &[("token", &at)], None).await.0,
        401
    );
    assert_eq!(
        post(&stack, "/revoke", &[], Some(("rp", "rp-secret")))
            .await
            .1["error"],
        "invalid_request"
    );
    // Another client's token: 200, and nothing happens.
    assert_eq!(
        post(
            &stack,
            "/revoke",
            &[("token", &at)],
            Some(("rp2", "rp2-secret"))
        )
        .await
        .0,
        200
    );
    assert_eq!(userinfo(&stack, &at).await, 200);
    // Unknown tokens: 200.
    assert_eq!(
        post(
            &stack,
            "/revoke",
            &[("token", "nonsense")],
            Some(("rp", "rp-secret"))
        )
        .await
        .0,
        200
    );
    // The access token, with its hint.
    assert_eq!(
        post(
            &stack,
            "/revoke",
            &[("token", &at), ("token_type_hint", "access_token")],
            Some(("rp", "rp-secret"))
        )
        .await
        .0,
        200
    );
    assert_eq!(userinfo(&stack, &at).await, 401);
    assert_eq!(
        refresh(&stack, "rp", &rt, None).await.0,
        200,
        "revoking an access token leaves the grant"
    );
    // A refresh token (with a misleading hint): its grant goes, access tokens included.
    let tokens = grant(&stack, &browser, "rp", "openid").await;
    assert_eq!(
        post(
            &stack,
            "/revoke",
            &[
                ("token", &s(&tokens, "refresh_token")),
                ("token_type_hint", "access_token")
            ],
            Some(("rp", "rp-secret"))
        )
        .await
        .0,
        200
    );
    assert_eq!(
        refresh(&stack, "rp", &s(&tokens, "refresh_token"), None)
            .await
            .0,
        400
    );
    assert_eq!(userinfo(&stack, &s(&tokens, "access_token")).await, 401);
}

#[tokio::test]
async fn introspection_follows_rfc7662() {
    let (stack, browser) = setup().await;
    let tokens = grant(&stack, &browser, "rp", "openid profile").await;
    let (at, rt) = (s(&tokens, "access_token"), s(&tokens, "refresh_token"));
    let ask = |token: String, who: &'static str| {
        let stack = &stack;
        async move {
            post(
                stack,
                "/introspect",
                &[("token", &token)],
                Some((who, &format!("{who}-secret"))),
            )
            .await
        }
    };
    let (status, body) = ask(at.clone(), "rp").await;
    assert_eq!(status, 200);
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["scope"], "openid profile");
    assert_eq!(body["client_id"], "rp");
    assert_eq!(body["token_type"], "Bearer");
    let (_, body) = ask(rt.clone(), "rp").await;
    assert_eq!(
        (
            body["active"].as_bool(),
            body["token_type"].as_str(),
            body["username"].as_str()
        ),
        (Some(true), Some("refresh_token"), Some("alice"))
    );
    assert_eq!(
        ask(at.clone(), "rp2").await.1,
        serde_json::json!({"active": false}),
        "another client's token"
    );
    assert_eq!(ask("nonsense".into(), "rp").await.1["active"], false);
    assert_eq!(
        post(
            &stack,
            "/introspect",
            &[("token", &at)],
            Some(("rp", "wrong"))
        )
        .await
        .0,
        401
    );
    assert_eq!(
        post(&stack, "/introspect", &[("token", &at)], None).await.0,
        401
    );
    // Rotated, revoked and expired tokens are not active.
    let (_, rotated) = refresh(&stack, "rp", &rt, None).await;
    assert_eq!(
        ask(rt.clone(), "rp").await.1["active"],
        false,
        "a rotated refresh token"
    );
    post(
        &stack,
        "/revoke",
        &[("token", &s(&rotated, "access_token"))],
        Some(("rp", "rp-secret")),
    )
    .await;
    assert_eq!(
        ask(s(&rotated, "access_token"), "rp").await.1["active"],
        false,
        "revoked"
    );
    stack.clock.advance(Duration::from_secs(11 * 60));
    assert_eq!(ask(at, "rp").await.1["active"], false, "expired");
    assert_eq!(
        ask(s(&rotated, "refresh_token"), "rp").await.1["active"],
        true,
        "the refresh token outlives it"
    );
}

#[tokio::test]
async fn client_credentials_for_clients_allowed_it() {
    let stack = spawn().await;
    client(
        &stack,
        "service",
        &[GrantType::ClientCredentials],
        AuthMethod::ClientSecretBasic,
    )
    .await;
    // A public client cannot have the grant (RFC 6749 §4.4: confidential clients only).
    let refused = try_client(
        &stack,
        "public",
        &[GrantType::ClientCredentials],
        AuthMethod::None,
    );
    let refused = refused.await.unwrap_err();
    assert!(refused.description.contains("public client"), "{refused}");
    client(
        &stack,
        "public",
        &[GrantType::AuthorizationCode],
        AuthMethod::None,
    )
    .await;
    let cc = [("grant_type", "client_credentials")];
    let (status, _, body) = stack.token(&cc, Some(("service", "service-secret"))).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.get("id_token").is_none() && body.get("refresh_token").is_none(),
        "{body}"
    );
    let at = s(&body, "access_token");
    assert_eq!(
        crate::harness::jwt_part(&at, 1)["sub"],
        "service",
        "RFC 9068: the client is the subject"
    );
    assert_eq!(userinfo(&stack, &at).await, 403, "no user, no openid scope");
    let (_, intro) = post(
        &stack,
        "/introspect",
        &[("token", &at)],
        Some(("service", "service-secret")),
    )
    .await;
    assert_eq!(intro["active"], true);
    // Refused: clients without the grant, public clients, scopes.
    let (status, _, body) = stack.token(&cc, Some(("app-a", "app-a-secret"))).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    let (status, _, body) = stack
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "public"),
            ],
            None,
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    let (status, _, body) = stack
        .token(
            &[("grant_type", "client_credentials"), ("scope", "openid")],
            Some(("service", "service-secret")),
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    // And the service may not use the code flow.
    let (status, _, body) = stack
        .token(
            &[("grant_type", "refresh_token"), ("refresh_token", "x")],
            Some(("service", "service-secret")),
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
}

#[tokio::test]
async fn the_app_refreshes_before_expiry_and_keeps_the_rotated_token() {
    let stack = spawn().await;
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_a, ALICE).await;
    let (_, before) = super::me(&browser, &stack.app_a).await;
    stack.clock.advance(Duration::from_secs(9 * 60 + 30)); // 30 s before the 10 min expiry
    let (status, after) = super::me(&browser, &stack.app_a).await;
    assert_eq!(status, 200, "{after}");
    assert!(
        s(&after, "access_token_expires_at") > s(&before, "access_token_expires_at"),
        "{before} → {after}"
    );
    // Again: the rotated refresh token was kept (the first one would now be a reuse).
    stack.clock.advance(Duration::from_secs(9 * 60 + 30));
    let (status, again) = super::me(&browser, &stack.app_a).await;
    assert_eq!(status, 200, "{again}");
    assert!(s(&again, "access_token_expires_at") > s(&after, "access_token_expires_at"));
    assert_eq!(
        prompt_none_error(&stack, &browser).await,
        None,
        "no reuse was detected"
    );
    let home = browser.follow(&format!("{}/", stack.app_a.url)).await;
    assert!(
        home.body.contains("last used"),
        "the page shows the refresh"
    );
}

#[tokio::test]
async fn the_app_signs_out_when_the_provider_refuses_the_refresh() {
    let stack = spawn().await;
    // Without back-channel logout, so that only the refresh can tell App A.
    crate::harness::update_client(&stack.store, "app-a", |c| c.backchannel_logout_uri = None)
        .await
        .unwrap();
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_a, ALICE).await;
    crate::flows::sign_out_everywhere(&stack, &browser).await;
    assert_eq!(
        super::me(&browser, &stack.app_a).await.0,
        200,
        "App A has not heard yet"
    );
    stack.clock.advance(Duration::from_secs(9 * 60 + 30));
    assert_eq!(
        super::me(&browser, &stack.app_a).await.0,
        401,
        "invalid_grant ended the local session"
    );
}

/// A client registered for private_key_jwt with a fresh ES256 key, and that key (to sign).
async fn key_client(stack: &Stack) -> provider::keys::Keys {
    key_client_with(stack, provider::keys::Alg::ES256).await
}

/// [`key_client`] with a key for `alg`.
async fn key_client_with(stack: &Stack, alg: provider::keys::Alg) -> provider::keys::Keys {
    let stored = provider::keys::generate(alg, 0).unwrap();
    let keys = provider::keys::Keys::from_stored(&[stored], 1).unwrap();
    client(
        stack,
        "signer",
        &[GrantType::ClientCredentials],
        AuthMethod::ClientSecretBasic,
    )
    .await;
    let jwks = serde_json::from_str(keys.jwks_json()).unwrap();
    crate::harness::update_client(&stack.store, "signer", |c| {
        c.token_endpoint_auth_method = Some(AuthMethod::PrivateKeyJwt.as_str().into());
        c.jwks = Some(jwks);
    })
    .await
    .unwrap();
    keys
}

fn assertion(stack: &Stack, keys: &provider::keys::Keys, edit: impl FnOnce(&mut Value)) -> String {
    assertion_with(stack, keys, provider::keys::Alg::ES256, edit)
}

/// [`assertion`] signed with `keys`' key for `alg`.
fn assertion_with(
    stack: &Stack,
    keys: &provider::keys::Keys,
    alg: provider::keys::Alg,
    edit: impl FnOnce(&mut Value),
) -> String {
    let now = stack.clock.unix();
    let mut claims = serde_json::json!({
        "iss": "signer", "sub": "signer", "aud": format!("{}/token", stack.issuer),
        "iat": now, "exp": now + 60, "jti": infra::secret::random_handle().unwrap(),
    });
    edit(&mut claims);
    keys.sign(alg, "JWT", &claims).unwrap()
}

/// A client may sign its assertions with an Ed25519 key (RFC 8037), as discovery says; the
/// key's type must fit the header's `alg`.
#[tokio::test]
async fn private_key_jwt_with_an_ed25519_key() {
    use provider::keys::Alg;
    let stack = spawn().await;
    let keys = key_client_with(&stack, Alg::EdDSA).await;
    let good = assertion_with(&stack, &keys, Alg::EdDSA, |_| {});
    assert_eq!(crate::harness::jwt_part(&good, 0)["alg"], "EdDSA");
    let (status, body) = with_assertion(&stack, &good).await;
    assert_eq!(status, 200, "{body}");
    // The same claims under "ES256" with the Ed25519 key's kid: refused.
    let (head, rest) = good.split_once('.').unwrap();
    let mut header = crate::harness::jwt_part(&good, 0);
    header["alg"] = "ES256".into();
    let forged = format!(
        "{}.{rest}",
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            header.to_string()
        )
    );
    assert_ne!(head, forged.split_once('.').unwrap().0);
    let (status, body) = with_assertion(&stack, &forged).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
}

async fn with_assertion(stack: &Stack, assertion: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "client_credentials"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion),
    ];
    let (status, _, body) = stack.token(&form, None).await;
    (status.as_u16(), body)
}

#[tokio::test]
async fn private_key_jwt_good_replayed_wrong_audience_expired() {
    let stack = spawn().await;
    let keys = key_client(&stack).await;
    let good = assertion(&stack, &keys, |_| {});
    let (status, body) = with_assertion(&stack, &good).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        crate::harness::jwt_part(&s(&body, "access_token"), 1)["sub"],
        "signer"
    );
    assert_eq!(
        with_assertion(&stack, &good).await,
        (
            401,
            serde_json::json!({"error": "invalid_client", "error_description": "client authentication failed"})
        ),
        "replayed"
    );
    let wrong_aud = assertion(&stack, &keys, |c| {
        c["aud"] = "https://elsewhere.example/token".into()
    });
    assert_eq!(
        with_assertion(&stack, &wrong_aud).await.0,
        401,
        "wrong audience"
    );
    let expired = assertion(&stack, &keys, |c| {
        c["exp"] = (stack.clock.unix() - 1).into()
    });
    assert_eq!(with_assertion(&stack, &expired).await.0, 401, "expired");
    let far = assertion(&stack, &keys, |c| {
        c["exp"] = (stack.clock.unix() + 24 * 3600).into()
    });
    assert_eq!(
        with_assertion(&stack, &far).await.0,
        401,
        "valid for too long"
    );
    let other_client = assertion(&stack, &keys, |c| c["sub"] = "app-a".into());
    assert_eq!(
        with_assertion(&stack, &other_client).await.0,
        401,
        "sub must be the client"
    );
    let stranger = provider::keys::Keys::from_stored(
        &[provider::keys::generate(provider::keys::Alg::ES256, 0).unwrap()],
        1,
    )
    .unwrap();
    assert_eq!(
        with_assertion(&stack, &assertion(&stack, &stranger, |_| {}))
            .await
            .0,
        401,
        "another key"
    );
    // The issuer itself is an accepted audience (RFC 7523 §3); the jti is new.
    let issuer_aud = assertion(&stack, &keys, |c| c["aud"] = stack.issuer.clone().into());
    assert_eq!(with_assertion(&stack, &issuer_aud).await.0, 200);
    // A secret is no substitute for the registered method.
    let (status, _, _) = stack
        .token(
            &[("grant_type", "client_credentials")],
            Some(("signer", "signer-secret")),
        )
        .await;
    assert_eq!(status, 401);
    // Mixing methods is refused.
    let mixed = assertion(&stack, &keys, |_| {});
    let form = [
        ("grant_type", "client_credentials"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", mixed.as_str()),
    ];
    let (status, _, body) = stack.token(&form, Some(("signer", "x"))).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test]
async fn a_code_got_silently_before_sign_out_everywhere_is_refused_after_it() {
    let (stack, browser) = setup().await;
    let req = stack.authorize_url("rp", REDIRECT, &[("scope", "openid"), ("prompt", "none")]);
    let page = browser.follow_until(req.url.as_str(), REDIRECT).await;
    let code = param(page.url.as_str(), "code").expect("a code, silently");
    let done = crate::flows::sign_out_everywhere(&stack, &browser).await;
    assert!(done.body.contains("not signed in"), "{}", done.body);
    let (id, secret) = creds("rp");
    let (status, _, body) = stack
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &req.verifier),
            ],
            Some((&id, &secret)),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn an_offline_app_is_named_on_the_sessions_page_and_disconnected_in_one_click() {
    let (stack, browser) = setup().await;
    let online = grant(&stack, &browser, "rp", "openid").await;
    let offline = grant(&stack, &browser, "rp2", "openid offline_access").await;
    let sessions = browser
        .follow(&format!("{}/account/sessions", stack.issuer))
        .await;
    let listed = &sessions.body[sessions.body.find("id=\"offline-apps\"").expect("listed")..];
    assert!(listed.contains("id=\"offline-rp2\""), "{listed}");
    assert!(
        !listed.contains("id=\"offline-rp\""),
        "an online grant ends with the session"
    );
    let done = browser
        .submit(
            &sessions,
            "/account/apps/disconnect",
            &[("client_id", "rp2"), ("back", "sessions")],
        )
        .await;
    assert_eq!(done.url.path(), "/account/sessions");
    assert!(
        done.body.contains("The app was disconnected."),
        "{}",
        done.body
    );
    assert!(!done.body.contains("id=\"offline-apps\""), "none left");
    let (status, body) = refresh(&stack, "rp2", &s(&offline, "refresh_token"), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(userinfo(&stack, &s(&offline, "access_token")).await, 401);
    // The other app, and the session, carry on.
    let (status, _) = refresh(&stack, "rp", &s(&online, "refresh_token"), None).await;
    assert_eq!(status, 200);
    assert_eq!(prompt_none_error(&stack, &browser).await, None);
}

#[tokio::test]
async fn a_new_password_from_the_command_line_revokes_offline_grants() {
    let (stack, browser) = setup().await;
    let offline = grant(&stack, &browser, "rp", "openid offline_access").await;
    let rt = s(&offline, "refresh_token");
    let (status, next) = refresh(&stack, "rp", &rt, None).await;
    assert_eq!(status, 200, "{next}");
    stack
        .cli_with_stdin(
            &["users", "passwd", "alice", "--password-stdin"],
            "a-new-passw0rd\n",
        )
        .await
        .unwrap();
    let (status, body) = refresh(&stack, "rp", &s(&next, "refresh_token"), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn an_operator_disconnects_one_app_from_the_command_line() {
    let (stack, browser) = setup().await;
    let one = grant(&stack, &browser, "rp", "openid offline_access").await;
    let other = grant(&stack, &browser, "rp2", "openid offline_access").await;
    let out = stack
        .cli(&["users", "revoke-grants", "alice", "--client", "rp"])
        .await
        .unwrap();
    assert!(out.contains("1 grant(s) revoked"), "{out}");
    assert_eq!(
        refresh(&stack, "rp", &s(&one, "refresh_token"), None)
            .await
            .0,
        400
    );
    assert_eq!(
        refresh(&stack, "rp2", &s(&other, "refresh_token"), None)
            .await
            .0,
        200
    );
    let unknown = stack.cli(&["users", "revoke-grants", "mallory"]).await;
    assert!(unknown.unwrap_err().contains("no user named mallory"));
}
