//! Registering apps three ways (the command line, the developer console, RFC 7591/7592
//! dynamic registration): each client so registered signs a user in end to end; every
//! validation rule refuses its input with the same error whichever way it came; tokens and
//! secrets behave as the RFCs say.

use super::sign_in;
use crate::harness::{ALICE, BOB, Browser, Page, Stack, jwt_part, param, spawn};
use provider::types::GrantType;
use serde_json::{Value, json};

/// Runs a `provider` command against the stack's database; its output, or its error.
async fn cli(stack: &Stack, args: &[&str]) -> Result<String, String> {
    stack.cli(args).await
}

fn http() -> reqwest::Client {
    client_app::http::client_builder().build().unwrap()
}

/// A fresh browser signs alice in through an authorization request of `client_id` and comes
/// back with a code, which the client exchanges (with `secret` by HTTP Basic, or as a public
/// client with PKCE only); returns the ID token's claims after userinfo answered.
async fn full_sign_in(
    stack: &Stack,
    client_id: &str,
    secret: Option<&str>,
    redirect_uri: &str,
) -> Value {
    let browser = Browser::new();
    let req = stack.authorize_url(client_id, redirect_uri, &[]);
    let mut page = browser.follow_until(req.url.as_str(), redirect_uri).await;
    assert_eq!(page.url.path(), "/login", "{}", page.body);
    page = browser
        .submit_until(
            &page,
            "/login",
            &[("username", ALICE.0), ("password", ALICE.1)],
            redirect_uri,
        )
        .await;
    if page.url.path() == "/consent" {
        page = browser
            .submit_until(&page, "/consent", &[("decision", "allow")], redirect_uri)
            .await;
    }
    assert!(
        page.url.as_str().starts_with(redirect_uri),
        "ended at {}: {}",
        page.url,
        page.body
    );
    assert_eq!(
        param(page.url.as_str(), "state").as_deref(),
        Some(req.state.as_str())
    );
    let code = param(page.url.as_str(), "code").expect("a code");
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri),
        ("code_verifier", req.verifier.as_str()),
    ];
    if secret.is_none() {
        form.push(("client_id", client_id));
    }
    let (status, _, tokens) = stack.token(&form, secret.map(|s| (client_id, s))).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["aud"], client_id);
    assert_eq!(claims["iss"], stack.issuer.as_str());
    let info = http()
        .get(format!("{}/userinfo", stack.issuer))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);
    let info: Value = info.json().await.unwrap();
    assert_eq!(info["sub"], claims["sub"]);
    claims
}

/// `client_credentials` with HTTP Basic: the status.
async fn client_credentials(stack: &Stack, client_id: &str, secret: &str) -> u16 {
    let (status, _, _) = stack
        .token(
            &[("grant_type", "client_credentials")],
            Some((client_id, secret)),
        )
        .await;
    status.as_u16()
}

// ---- the command line ----------------------------------------------------------------------

#[tokio::test]
async fn a_client_added_on_the_command_line_signs_a_user_in() {
    let stack = spawn().await;
    let redirect = "http://cli-app.localhost:7001/callback";
    let out = cli(
        &stack,
        &[
            "clients",
            "add",
            "--name",
            "CLI app",
            "--redirect-uri",
            redirect,
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "client_credentials",
            "--json",
        ],
    )
    .await
    .unwrap();
    let added: Value = serde_json::from_str(&out).unwrap();
    let id = added["client_id"].as_str().unwrap();
    let secret = added["client_secret"].as_str().unwrap();
    assert!(secret.len() >= 43, "a 256-bit secret");
    // Stored hashed: the secret itself is nowhere in the database row.
    let stored = stack.store.client(id).await.unwrap().unwrap();
    assert_ne!(stored.secret_hash.as_deref(), Some(secret));
    assert_eq!(
        stored.secret_hash.as_deref(),
        Some(infra::secret::hash_secret(secret).as_str())
    );
    let claims = full_sign_in(&stack, id, Some(secret), redirect).await;
    assert_eq!(claims["aud"], id);

    // list, show, update: the same client, read back.
    let list: Value =
        serde_json::from_str(&cli(&stack, &["clients", "list", "--json"]).await.unwrap()).unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|c| c["client_id"] == id && c.get("client_secret").is_none())
    );
    let shown = cli(&stack, &["clients", "show", id]).await.unwrap();
    assert!(
        shown.contains("CLI app") && shown.contains(redirect),
        "{shown}"
    );
    let updated: Value = serde_json::from_str(
        &cli(
            &stack,
            &[
                "clients",
                "update",
                id,
                "--name",
                "CLI app v2",
                "--id-token-alg",
                "ES256",
                "--first-party",
                "true",
                "--json",
            ],
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(updated["client_name"], "CLI app v2");
    assert_eq!(updated["first_party"], true);
    assert_eq!(updated["redirect_uris"], json!([redirect]));
    assert!(
        updated.get("client_secret").is_none(),
        "an update keeps the secret"
    );
    assert_eq!(client_credentials(&stack, id, secret).await, 200);
    let claims = full_sign_in(&stack, id, Some(secret), redirect).await;
    assert_eq!(claims["aud"], id);

    // remove: gone, with its tokens.
    cli(&stack, &["clients", "remove", id]).await.unwrap();
    assert!(stack.store.client(id).await.unwrap().is_none());
    assert_eq!(client_credentials(&stack, id, secret).await, 401);
    let err = cli(&stack, &["clients", "show", id]).await.unwrap_err();
    assert!(err.contains("no client"), "{err}");
}

#[tokio::test]
async fn a_rotated_secret_stops_the_old_one_at_once() {
    let stack = spawn().await;
    let out = cli(
        &stack,
        &[
            "clients",
            "add",
            "--name",
            "Service",
            "--grant-type",
            "client_credentials",
            "--auth-method",
            "client_secret_post",
            "--json",
        ],
    )
    .await
    .unwrap();
    let added: Value = serde_json::from_str(&out).unwrap();
    let id = added["client_id"].as_str().unwrap();
    let old = added["client_secret"].as_str().unwrap();
    let post = |secret: String| {
        let id = id.to_owned();
        let issuer = stack.issuer.clone();
        async move {
            http()
                .post(format!("{issuer}/token"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", &id),
                    ("client_secret", &secret),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(post(old.to_owned()).await, 200);
    let rotated: Value = serde_json::from_str(
        &cli(&stack, &["clients", "rotate-secret", id, "--json"])
            .await
            .unwrap(),
    )
    .unwrap();
    let new = rotated["client_secret"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(post(old.to_owned()).await, 401, "the old secret is dead");
    assert_eq!(post(new.to_owned()).await, 200);

    // A public client has no secret to rotate.
    let public: Value = serde_json::from_str(
        &cli(
            &stack,
            &[
                "clients",
                "add",
                "--redirect-uri",
                "http://127.0.0.1:9/cb",
                "--auth-method",
                "none",
                "--json",
            ],
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert!(public.get("client_secret").is_none());
    let err = cli(
        &stack,
        &[
            "clients",
            "rotate-secret",
            public["client_id"].as_str().unwrap(),
        ],
    )
    .await
    .unwrap_err();
    assert!(err.contains("no secret"), "{err}");
}

#[tokio::test]
async fn a_public_client_from_the_command_line_signs_in_with_pkce_alone() {
    let stack = spawn().await;
    let redirect = "http://127.0.0.1:7002/cb";
    let out = cli(
        &stack,
        &[
            "clients",
            "add",
            "--client-id",
            "my-spa",
            "--name",
            "SPA",
            "--redirect-uri",
            redirect,
            "--auth-method",
            "none",
            "--json",
        ],
    )
    .await
    .unwrap();
    let added: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(added["client_id"], "my-spa");
    full_sign_in(&stack, "my-spa", None, redirect).await;
    // A chosen id that is taken is refused, and nothing changes.
    let err = cli(
        &stack,
        &[
            "clients",
            "add",
            "--client-id",
            "my-spa",
            "--redirect-uri",
            redirect,
        ],
    )
    .await
    .unwrap_err();
    assert!(err.contains("taken"), "{err}");
}

#[tokio::test]
async fn users_can_be_removed_and_their_sessions_end() {
    let stack = spawn().await;
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_a, BOB).await;
    assert_eq!(super::me(&browser, &stack.app_a).await.0, 200);
    let out = cli(&stack, &["users", "remove", "bob"]).await.unwrap();
    assert!(out.contains("1 session(s) ended"), "{out}");
    assert!(stack.store.user_by_username("bob").await.unwrap().is_none());
    // The app heard of it through back-channel logout.
    super::signed_out(&browser, &stack.app_a, "App A's session ended").await;
    let err = cli(&stack, &["users", "remove", "bob"]).await.unwrap_err();
    assert!(err.contains("no user named bob"), "{err}");
}

// ---- dynamic client registration -----------------------------------------------------------

async fn initial_token(stack: &Stack, ttl: &str) -> String {
    let out: Value = serde_json::from_str(
        &cli(stack, &["clients", "initial-token", "--ttl", ttl, "--json"])
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(out["expires_at"].as_str().is_some());
    out["token"].as_str().unwrap().to_owned()
}

async fn post_registration(
    stack: &Stack,
    token: Option<&str>,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = http().post(format!("{}/register", stack.issuer)).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn dynamic_registration_and_its_management_api() {
    let stack = spawn().await;
    let discovery: Value = http()
        .get(format!("{}/.well-known/openid-configuration", stack.issuer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["registration_endpoint"],
        format!("{}/register", stack.issuer)
    );
    let redirect = "http://dcr-app.localhost:7003/callback";
    let token = initial_token(&stack, "1h").await;
    let request = json!({
        "client_name": "Dynamic app",
        "redirect_uris": [redirect],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "post_logout_redirect_uris": ["http://dcr-app.localhost:7003/"],
        "software_id": "ignored-unknown-metadata"
    });
    let (status, headers, reg) = post_registration(&stack, Some(&token), &request).await;
    assert_eq!(status, 201, "{reg}");
    assert_eq!(headers["cache-control"], "no-store");
    let id = reg["client_id"].as_str().unwrap().to_owned();
    let secret = reg["client_secret"].as_str().unwrap().to_owned();
    let rat = reg["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let uri = reg["registration_client_uri"].as_str().unwrap().to_owned();
    assert_eq!(uri, format!("{}/register/{id}", stack.issuer));
    assert_eq!(reg["client_secret_expires_at"], 0);
    assert_eq!(reg["client_name"], "Dynamic app");
    assert_eq!(reg["redirect_uris"], json!([redirect]));
    assert!(reg.get("software_id").is_none(), "unknown metadata ignored");
    full_sign_in(&stack, &id, Some(&secret), redirect).await;

    // The initial access token was single use.
    let (status, headers, body) = post_registration(&stack, Some(&token), &request).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_token");
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );

    // RFC 7592 §2.1 read.
    let read = http().get(&uri).bearer_auth(&rat).send().await.unwrap();
    assert_eq!(read.status(), 200);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["client_id"], id.as_str());
    assert_eq!(read["registration_access_token"], rat.as_str());
    assert!(read.get("client_secret").is_none());
    let wrong = http()
        .get(&uri)
        .bearer_auth("wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let no_token = http().get(&uri).send().await.unwrap();
    assert_eq!(no_token.status(), 401);
    // The token of one client does not manage another.
    let other = http()
        .get(format!(
            "{}/register/{}",
            stack.issuer, stack.app_a.client_id
        ))
        .bearer_auth(&rat)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 401);

    // RFC 7592 §2.2 update: the whole metadata, client_id included.
    let new_redirect = "http://dcr-app.localhost:7003/callback2";
    let mut update = request.clone();
    update["client_id"] = id.clone().into();
    update["redirect_uris"] = json!([new_redirect]);
    update["client_name"] = "Dynamic app, renamed".into();
    let put = http()
        .put(&uri)
        .bearer_auth(&rat)
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let put: Value = put.json().await.unwrap();
    assert_eq!(put["redirect_uris"], json!([new_redirect]));
    assert_eq!(put["client_name"], "Dynamic app, renamed");
    full_sign_in(&stack, &id, Some(&secret), new_redirect).await;
    // The old redirect URI is no longer registered: an error page, not a redirect.
    let req = stack.authorize_url(&id, redirect, &[]);
    let page = Browser::new().get_once(req.url.as_str()).await;
    assert_eq!(page.status, 400);
    // Updates that break RFC 7592 §2.2 are refused.
    for (field, value) in [
        ("client_id", json!("another-id")),
        ("registration_access_token", json!("x")),
        ("client_secret", json!("not-the-secret")),
    ] {
        let mut bad = update.clone();
        bad[field] = value;
        let resp = http()
            .put(&uri)
            .bearer_auth(&rat)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{field}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{field}");
    }
    let mut bad = update.clone();
    bad["redirect_uris"] = json!(["https://app.example/cb#frag"]);
    let resp = http()
        .put(&uri)
        .bearer_auth(&rat)
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_redirect_uri");

    // RFC 7592 §2.3 delete: 204, then the client and its token are gone.
    let del = http().delete(&uri).bearer_auth(&rat).send().await.unwrap();
    assert_eq!(del.status(), 204);
    assert!(stack.store.client(&id).await.unwrap().is_none());
    let again = http().get(&uri).bearer_auth(&rat).send().await.unwrap();
    assert_eq!(again.status(), 401);
    assert_eq!(client_credentials(&stack, &id, &secret).await, 401);
}

#[tokio::test]
async fn registration_needs_a_live_initial_access_token() {
    let stack = spawn().await;
    let body = json!({"redirect_uris": ["https://app.example/cb"]});
    let (status, headers, err) = post_registration(&stack, None, &body).await;
    assert_eq!(status, 401, "{err}");
    // A bare Bearer challenge, and only that: registration takes no DPoP-bound token.
    let challenges: Vec<_> = headers.get_all("www-authenticate").iter().collect();
    assert_eq!(challenges, [r#"Bearer realm="gatehouse""#]);
    let (status, _, err) = post_registration(&stack, Some("made-up"), &body).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (401, Some("invalid_token"))
    );

    // Expired: a token for a minute, a minute and a second later.
    let token = initial_token(&stack, "60s").await;
    stack.clock.advance(std::time::Duration::from_secs(61));
    let (status, _, err) = post_registration(&stack, Some(&token), &body).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (401, Some("invalid_token"))
    );

    // A refused registration does not spend the token: the corrected one succeeds with it.
    let token = initial_token(&stack, "10m").await;
    let (status, _, err) = post_registration(
        &stack,
        Some(&token),
        &json!({"redirect_uris": ["http://app.example/cb"]}),
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_redirect_uri"))
    );
    let (status, _, reg) = post_registration(&stack, Some(&token), &body).await;
    assert_eq!(status, 201, "{reg}");
    let (status, _, _) = post_registration(&stack, Some(&token), &body).await;
    assert_eq!(status, 401, "and then it is spent");

    // Malformed requests: JSON errors, never a 500.
    let token = initial_token(&stack, "10m").await;
    for (content_type, raw, error) in [
        ("application/json", "{not json", "invalid_request"),
        ("application/json", "[1,2]", "invalid_request"),
        (
            "application/x-www-form-urlencoded",
            "redirect_uris=x",
            "invalid_request",
        ),
        (
            "application/json",
            r#"{"redirect_uris": "https://app.example/cb"}"#,
            "invalid_client_metadata",
        ),
        (
            "application/json",
            r#"{"redirect_uris": ["https://app.example/cb"], "grant_types": 7}"#,
            "invalid_client_metadata",
        ),
    ] {
        let resp = http()
            .post(format!("{}/register", stack.issuer))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{raw}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], error, "{raw}");
        assert!(body["error_description"].as_str().is_some());
    }
}

#[tokio::test]
async fn open_registration_needs_no_token_when_switched_on() {
    let stack = crate::harness::spawn_with(crate::harness::Options {
        open_registration: true,
        ..Default::default()
    })
    .await;
    let redirect = "http://open-app.localhost:7004/cb";
    let (status, _, reg) = post_registration(
        &stack,
        None,
        &json!({"redirect_uris": [redirect], "token_endpoint_auth_method": "none"}),
    )
    .await;
    assert_eq!(status, 201, "{reg}");
    assert!(reg.get("client_secret").is_none(), "a public client");
    full_sign_in(&stack, reg["client_id"].as_str().unwrap(), None, redirect).await;
}

// ---- the same validation, three ways -------------------------------------------------------

/// Bad metadata, the error code it must get, and words of its description.
fn bad_inputs() -> Vec<(Value, &'static str, &'static str)> {
    let ok = "https://app.example/cb";
    vec![
        (
            json!({"redirect_uris": ["/relative/cb"]}),
            "invalid_redirect_uri",
            "absolute",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb#x"]}),
            "invalid_redirect_uri",
            "fragment",
        ),
        (
            json!({"redirect_uris": ["http://app.example/cb"]}),
            "invalid_redirect_uri",
            "https",
        ),
        (
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            "invalid_redirect_uri",
            "javascript",
        ),
        (
            json!({"redirect_uris": ["data:text/html,x"]}),
            "invalid_redirect_uri",
            "data",
        ),
        (
            json!({"redirect_uris": ["https://*.example/cb"]}),
            "invalid_redirect_uri",
            "wildcard",
        ),
        (
            json!({"redirect_uris": [ok], "post_logout_redirect_uris": ["http://evil.example/"]}),
            "invalid_redirect_uri",
            "https",
        ),
        (
            json!({"redirect_uris": [ok], "grant_types": ["implicit"]}),
            "invalid_client_metadata",
            "implicit",
        ),
        (
            json!({"redirect_uris": [ok], "token_endpoint_auth_method": "tls_client_auth"}),
            "invalid_client_metadata",
            "not supported",
        ),
        (
            json!({"redirect_uris": [ok], "id_token_signed_response_alg": "none"}),
            "invalid_client_metadata",
            "not supported",
        ),
        (
            json!({"redirect_uris": [ok], "backchannel_logout_uri": "http://app.example/bc"}),
            "invalid_client_metadata",
            "https",
        ),
        (
            // README "Hostile clients" 3: never aimed inward (cloud metadata, loopback).
            json!({"redirect_uris": [ok], "backchannel_logout_uri": "https://169.254.169.254/latest/meta-data/"}),
            "invalid_client_metadata",
            "local or private",
        ),
        (
            json!({"redirect_uris": [ok], "backchannel_logout_uri": "http://127.0.0.1:9000/admin"}),
            "invalid_client_metadata",
            "https",
        ),
        (
            json!({"redirect_uris": [ok], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
            "jwks",
        ),
    ]
}

#[tokio::test]
async fn each_validation_rule_refuses_its_input_the_same_way_three_ways() {
    let stack = spawn().await;
    let token = initial_token(&stack, "1h").await;
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_a, ALICE).await;
    let form_page = browser
        .follow(&format!("{}/developer/apps/new", stack.issuer))
        .await;
    assert_eq!(form_page.status, 200, "{}", form_page.body);
    for (body, code, words) in bad_inputs() {
        // 1. The registration endpoint.
        let (status, _, err) = post_registration(&stack, Some(&token), &body).await;
        assert_eq!(status, 400, "{body}: {err}");
        assert_eq!(err["error"], code, "{body}");
        let description = err["error_description"].as_str().unwrap().to_owned();
        assert!(description.contains(words), "{body}: {description}");

        // 2. The command line: the same words.
        let mut args: Vec<String> = vec!["clients".into(), "add".into()];
        for uri in body["redirect_uris"].as_array().unwrap() {
            args.extend(["--redirect-uri".into(), uri.as_str().unwrap().into()]);
        }
        for uri in body["post_logout_redirect_uris"]
            .as_array()
            .into_iter()
            .flatten()
        {
            args.extend([
                "--post-logout-redirect-uri".into(),
                uri.as_str().unwrap().into(),
            ]);
        }
        for g in body["grant_types"].as_array().into_iter().flatten() {
            args.extend(["--grant-type".into(), g.as_str().unwrap().into()]);
        }
        for (key, flag) in [
            ("token_endpoint_auth_method", "--auth-method"),
            ("id_token_signed_response_alg", "--id-token-alg"),
            ("backchannel_logout_uri", "--backchannel-logout-uri"),
        ] {
            if let Some(v) = body[key].as_str() {
                args.extend([flag.into(), v.into()]);
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = cli(&stack, &args).await.unwrap_err();
        assert!(err.contains(code), "{body}: {err}");
        assert!(err.contains(&description), "{body}: {err}");

        // 3. The developer console: the same words, beside the form, nothing registered.
        let lines = |k: &str| {
            body[k]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| v.as_str().unwrap())
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default()
        };
        let redirects = lines("redirect_uris");
        let logouts = lines("post_logout_redirect_uris");
        let grant = body["grant_types"][0]
            .as_str()
            .unwrap_or("authorization_code");
        let grant_field = format!("grant_{grant}");
        let mut fields: Vec<(&str, &str)> = vec![
            ("name", "Console app"),
            ("redirect_uris", &redirects),
            ("post_logout_redirect_uris", &logouts),
            (
                "auth_method",
                body["token_endpoint_auth_method"]
                    .as_str()
                    .unwrap_or("client_secret_basic"),
            ),
            (
                "id_token_alg",
                body["id_token_signed_response_alg"]
                    .as_str()
                    .unwrap_or("RS256"),
            ),
            (
                "backchannel_logout_uri",
                body["backchannel_logout_uri"].as_str().unwrap_or(""),
            ),
        ];
        if ["authorization_code", "refresh_token", "client_credentials"].contains(&grant) {
            fields.push((&grant_field, "on"));
        } else {
            fields.push(("grant_authorization_code", "on"));
        }
        let page = browser.submit(&form_page, "/developer/apps", &fields).await;
        if grant == "implicit" {
            // The console cannot even express an unknown grant: it registers the known one.
            assert_eq!(page.status, 201);
            continue;
        }
        assert_eq!(page.status, 422, "{body}: {}", page.body);
        let shown = html_unescape(&page.body);
        assert!(shown.contains(&description), "{body}: {}", page.body);
        assert!(shown.contains(code));
        assert!(
            page.body.contains("aria-invalid=\"true\""),
            "the field is marked"
        );
    }
    let mine = stack
        .store
        .clients_of_owner(
            &stack
                .store
                .user_by_username("alice")
                .await
                .unwrap()
                .unwrap()
                .id,
        )
        .await
        .unwrap();
    assert_eq!(mine.len(), 1, "only the one valid form registered an app");
}

/// Undoes askama's HTML escaping for comparisons.
fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

// ---- the developer console -----------------------------------------------------------------

/// The value of the `<code id="ID">` element of a page.
fn code_text(page: &Page, id: &str) -> String {
    let start = page
        .body
        .find(&format!("<code id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no #{id} in {}", page.body));
    let rest = &page.body[start + id.len() + 12..];
    html_unescape(&rest[..rest.find("</code>").unwrap()])
}

#[tokio::test]
async fn a_developer_registers_edits_rotates_and_deletes_an_app_in_the_console() {
    let stack = spawn().await;
    let browser = Browser::new();
    // Not signed in: the console sends the visitor to sign in, and back.
    let page = browser.follow(&format!("{}/developer", stack.issuer)).await;
    assert_eq!(page.url.path(), "/login");
    let page = browser
        .submit(
            &page,
            "/login",
            &[("username", ALICE.0), ("password", ALICE.1)],
        )
        .await;
    assert_eq!(page.url.path(), "/developer", "{}", page.body);
    assert!(page.body.contains("You have not registered an app yet"));

    let form = browser
        .follow(&format!("{}/developer/apps/new", stack.issuer))
        .await;
    let redirect = "http://console-app.localhost:7005/callback";
    let created = browser
        .submit(
            &form,
            "/developer/apps",
            &[
                ("name", "Console <app>"),
                ("redirect_uris", &format!("{redirect}\n")),
                ("post_logout_redirect_uris", ""),
                ("backchannel_logout_uri", ""),
                ("auth_method", "client_secret_basic"),
                ("id_token_alg", "ES256"),
                ("grant_authorization_code", "on"),
                ("grant_refresh_token", "on"),
            ],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.headers["cache-control"], "no-store");
    assert!(
        created.body.contains("Console &#60;app&#62;")
            || created.body.contains("Console &lt;app&gt;"),
        "escaped: {}",
        created.body
    );
    assert!(!created.body.contains("Console <app>"));
    let id = code_text(&created, "client-id");
    let secret = code_text(&created, "client-secret");
    let claims = full_sign_in(&stack, &id, Some(&secret), redirect).await;
    assert_eq!(claims["aud"], id.as_str());
    // The app lists under its owner.
    let list = browser.follow(&format!("{}/developer", stack.issuer)).await;
    assert!(list.body.contains(&id));

    // Edit its URIs.
    let edit_url = format!("{}/developer/apps/{id}", stack.issuer);
    let edit = browser.follow(&edit_url).await;
    assert_eq!(edit.status, 200);
    let second = "http://console-app.localhost:7005/other";
    let saved = browser
        .submit(
            &edit,
            &format!("/developer/apps/{id}"),
            &[
                ("name", "Console app"),
                ("redirect_uris", &format!("{redirect}\n{second}")),
                (
                    "post_logout_redirect_uris",
                    "http://console-app.localhost:7005/",
                ),
                ("backchannel_logout_uri", ""),
                ("auth_method", "client_secret_basic"),
                ("id_token_alg", "ES256"),
                ("grant_authorization_code", "on"),
            ],
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(saved.url.as_str().ends_with("?done=saved"), "{}", saved.url);
    let stored = stack.store.client(&id).await.unwrap().unwrap();
    assert_eq!(stored.redirect_uris, [redirect, second]);
    assert_eq!(stored.grant_types, [GrantType::AuthorizationCode]);
    full_sign_in(&stack, &id, Some(&secret), second).await;

    // Rotate: the new secret is shown once, the old one stops at once.
    let edit = browser.follow(&edit_url).await;
    let rotated = browser
        .submit(&edit, &format!("/developer/apps/{id}/rotate-secret"), &[])
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new_secret = code_text(&rotated, "client-secret");
    assert_ne!(new_secret, secret);
    let (status, _, _) = stack
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", "whatever"),
                ("redirect_uri", redirect),
            ],
            Some((&id, &secret)),
        )
        .await;
    assert_eq!(status, 401, "the old secret no longer authenticates");
    full_sign_in(&stack, &id, Some(&new_secret), redirect).await;

    // Front-channel logout, PAR and DPoP required: set, shown, and cleared again.
    let edit = browser.follow(&edit_url).await;
    let base = [
        ("name", "Console app"),
        ("redirect_uris", redirect),
        ("auth_method", "client_secret_basic"),
        ("id_token_alg", "ES256"),
        ("grant_authorization_code", "on"),
    ];
    let frontchannel = "http://console-app.localhost:7005/frontchannel-logout";
    let mut strict = base.to_vec();
    strict.extend([
        ("frontchannel_logout_uri", frontchannel),
        ("require_par", "on"),
        ("dpop_bound", "on"),
    ]);
    let saved = browser
        .submit(&edit, &format!("/developer/apps/{id}"), &strict)
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    let stored = stack.store.client(&id).await.unwrap().unwrap();
    assert_eq!(
        stored.frontchannel_logout_uri.as_deref(),
        Some(frontchannel)
    );
    assert!(stored.frontchannel_logout_session_required);
    assert!(stored.require_par && stored.dpop_bound);
    for checked in [
        "id=\"require_par\" value=\"on\" checked",
        "id=\"dpop_bound\" value=\"on\" checked",
    ] {
        assert!(saved.body.contains(checked), "{checked}: {}", saved.body);
    }
    assert!(saved.body.contains(frontchannel));
    // A form from before the console had these fields (no `request_security`) keeps them.
    let mut stale = base.to_vec();
    stale.push(("request_security", ""));
    let kept = browser
        .submit(&saved, &format!("/developer/apps/{id}"), &stale)
        .await;
    assert_eq!(kept.status, 200, "{}", kept.body);
    let stored = stack.store.client(&id).await.unwrap().unwrap();
    assert_eq!(
        stored.frontchannel_logout_uri.as_deref(),
        Some(frontchannel)
    );
    assert!(stored.require_par && stored.dpop_bound);
    // A front-channel URI on a host that is no redirect URI's is refused beside its field.
    let mut elsewhere = base.to_vec();
    elsewhere.push(("frontchannel_logout_uri", "http://other.localhost:7005/fc"));
    let refused = browser
        .submit(&saved, &format!("/developer/apps/{id}"), &elsewhere)
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("id=\"frontchannel_logout_uri-error\"")
    );
    let cleared = browser
        .submit(&saved, &format!("/developer/apps/{id}"), &base)
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    let stored = stack.store.client(&id).await.unwrap().unwrap();
    assert!(stored.frontchannel_logout_uri.is_none());
    assert!(!stored.require_par && !stored.dpop_bound);

    // Delete: needs the confirmation box, then the app and its tokens are gone.
    let edit = browser.follow(&edit_url).await;
    let unconfirmed = browser
        .submit(&edit, &format!("/developer/apps/{id}/delete"), &[])
        .await;
    assert_eq!(unconfirmed.status, 400);
    assert!(stack.store.client(&id).await.unwrap().is_some());
    let deleted = browser
        .submit(
            &edit,
            &format!("/developer/apps/{id}/delete"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(deleted.url.path(), "/developer");
    assert!(deleted.body.contains("The app was deleted"));
    assert!(stack.store.client(&id).await.unwrap().is_none());
}

#[tokio::test]
async fn the_console_is_for_developers_and_their_own_apps_only() {
    let stack = spawn().await;
    // bob is not a developer: 403 on every console page and form.
    let bob = Browser::new();
    sign_in(&stack, &bob, &stack.app_a, BOB).await;
    for path in ["/developer", "/developer/apps/new"] {
        let page = bob.follow(&format!("{}{path}", stack.issuer)).await;
        assert_eq!(page.status, 403, "{path}");
        assert!(page.body.contains("developer role"));
    }
    let csrf_of_bob = {
        let home = bob
            .follow(&format!("{}/account/sessions", stack.issuer))
            .await;
        home.hidden("csrf_token").unwrap()
    };
    let page = bob
        .post_form(
            &format!("{}/developer/apps", stack.issuer),
            &[
                ("csrf_token", &csrf_of_bob),
                ("name", "sneaky"),
                ("redirect_uris", "https://app.example/cb"),
                ("auth_method", "none"),
                ("id_token_alg", "RS256"),
                ("grant_authorization_code", "on"),
            ],
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(
        stack
            .store
            .list_clients()
            .await
            .unwrap()
            .iter()
            .all(|c| c.name != "sneaky")
    );

    // alice: a form without the CSRF token is refused, and nothing is registered.
    let alice = Browser::new();
    sign_in(&stack, &alice, &stack.app_a, ALICE).await;
    let page = alice
        .post_form(
            &format!("{}/developer/apps", stack.issuer),
            &[
                ("name", "forged"),
                ("redirect_uris", "https://app.example/cb"),
                ("auth_method", "none"),
                ("id_token_alg", "RS256"),
                ("grant_authorization_code", "on"),
            ],
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(
        stack
            .store
            .list_clients()
            .await
            .unwrap()
            .iter()
            .all(|c| c.name != "forged")
    );
    // Apps registered another way are not alice's to see or change.
    let page = alice
        .follow(&format!(
            "{}/developer/apps/{}",
            stack.issuer, stack.app_a.client_id
        ))
        .await;
    assert_eq!(page.status, 404);
    let token = alice
        .follow(&format!("{}/developer/apps/new", stack.issuer))
        .await
        .hidden("csrf_token")
        .unwrap();
    let page = alice
        .post_form(
            &format!(
                "{}/developer/apps/{}/rotate-secret",
                stack.issuer, stack.app_a.client_id
            ),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(page.status, 404);
    assert_eq!(
        client_credentials_status_of_app_a(&stack).await,
        "App A's secret still works"
    );
}

async fn client_credentials_status_of_app_a(stack: &Stack) -> &'static str {
    let (status, _, body) = stack
        .token(
            &[("grant_type", "refresh_token"), ("refresh_token", "nope")],
            Some((&stack.app_a.client_id, &stack.app_a.secret)),
        )
        .await;
    // Authenticated (a grant error, not invalid_client).
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    "App A's secret still works"
}

/// A new client secret, deleting an app and disconnecting one are sensitive: more than
/// `fresh_sign_in` (five minutes) after the password, each asks for it again first (the
/// action is not done), then comes back to its page, where it works.
#[tokio::test]
async fn sensitive_actions_ask_for_the_password_again_after_five_minutes() {
    let stack = spawn().await;
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_a, ALICE).await;
    let form = browser
        .follow(&format!("{}/developer/apps/new", stack.issuer))
        .await;
    let created = browser
        .submit(
            &form,
            "/developer/apps",
            &[
                ("name", "Fresh app"),
                ("redirect_uris", "http://fresh.localhost:7006/callback"),
                ("auth_method", "client_secret_basic"),
                ("id_token_alg", "RS256"),
                ("grant_authorization_code", "on"),
            ],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = code_text(&created, "client-id");
    let secret = code_text(&created, "client-secret");
    let edit_url = format!("{}/developer/apps/{id}", stack.issuer);
    let rotate = format!("/developer/apps/{id}/rotate-secret");

    let before = stack.store.client(&id).await.unwrap().unwrap().secret_hash;
    stack.clock.advance(std::time::Duration::from_secs(6 * 60));
    let edit = browser.follow(&edit_url).await;
    let asked = browser.submit(&edit, &rotate, &[]).await;
    assert_eq!(asked.url.path(), "/login", "{}", asked.body);
    assert!(
        asked.body.contains(r#"id="sign-in-again-notice""#),
        "{}",
        asked.body
    );
    let stored = stack.store.client(&id).await.unwrap().unwrap();
    assert_eq!(stored.secret_hash, before, "the secret was not rotated");
    let fields = [("username", ALICE.0), ("password", ALICE.1)];
    let back = browser.submit(&asked, "/login", &fields).await;
    assert_eq!(back.url.path(), "/developer", "{}", back.body);
    let edit = browser.follow(&edit_url).await;
    let rotated = browser.submit(&edit, &rotate, &[]).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert_ne!(code_text(&rotated, "client-secret"), secret);

    // Disconnecting App A from "Connected apps", likewise.
    stack.clock.advance(std::time::Duration::from_secs(6 * 60));
    let apps = browser
        .follow(&format!("{}/account/apps", stack.issuer))
        .await;
    let fields = [("client_id", stack.app_a.client_id.as_str())];
    let asked = browser
        .submit(&apps, "/account/apps/disconnect", &fields)
        .await;
    assert_eq!(asked.url.path(), "/login", "{}", asked.body);
    assert!(
        browser
            .follow(&format!("{}/account/apps", stack.issuer))
            .await
            .body
            .contains("App A"),
        "still connected"
    );
    let password = [("username", ALICE.0), ("password", ALICE.1)];
    let back = browser.submit(&asked, "/login", &password).await;
    assert_eq!(back.url.path(), "/account/apps", "{}", back.body);
    let done = browser
        .submit(&back, "/account/apps/disconnect", &fields)
        .await;
    assert!(
        done.url.as_str().ends_with("?done=disconnected"),
        "{}",
        done.url
    );
}
