//! Access tokens for APIs over HTTP (RFC 8707 resource indicators, RFC 9068 JWT access
//! tokens): an API registered from the command line, named at `/authorize` and `/token`, its
//! tokens addressed to it, refused by userinfo, and introspected by the API's own client.

use super::{sign_in, signed_out, userinfo_status};
use crate::harness::NOTES_API as NOTES;
use crate::harness::{
    ALICE, Browser, Options, Page, RunningApp, Stack, eventually, jwt_part, param,
    register_service, spawn, spawn_with,
};
use serde_json::Value;

/// `POST /introspect` about `token`, authenticated as `(client_id, secret)`.
async fn introspect(stack: &Stack, token: &str, (id, secret): (&str, &str)) -> Value {
    let http = client_app::http::client_builder().build().unwrap();
    let resp = http
        .post(format!("{}/introspect", stack.issuer))
        .basic_auth(id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// A code for App A (a third-party app in this stack) at the Notes API for `scope`, through
/// `browser`, signed in: the consent page, which must list `asked`, then the code (taken
/// before App A's callback would redeem it). With the same access allowed before, no page.
async fn api_code(
    stack: &Stack,
    browser: &Browser,
    scope: &str,
    asked: &[&str],
) -> (String, String) {
    api_code_if_asked(stack, browser, scope, Some(asked)).await
}

/// [`api_code`], with the consent page (if any) answered whatever it lists when `asked` is
/// `None`.
async fn api_code_if_asked(
    stack: &Stack,
    browser: &Browser,
    scope: &str,
    asked: Option<&[&str]>,
) -> (String, String) {
    let extra = [("scope", scope), ("resource", NOTES)];
    let req = stack.authorize_url(&stack.app_a.client_id, &stack.app_a.redirect_uri, &extra);
    let callback = stack.app_a.redirect_uri.as_str();
    let mut page = browser.follow_until(req.url.as_str(), callback).await;
    if page
        .url
        .as_str()
        .starts_with(&format!("{}/consent", stack.issuer))
    {
        for line in asked.unwrap_or_default() {
            assert!(
                page.body.contains(line),
                "consent lists {line:?}: {}",
                page.body
            );
        }
        page = browser
            .submit_until(&page, "/consent", &[("decision", "allow")], callback)
            .await;
    } else {
        assert!(
            asked.is_none_or(<[&str]>::is_empty),
            "no consent page: {}",
            page.url
        );
    }
    let code = param(page.url.as_str(), "code").expect("a code");
    (code, req.verifier)
}

/// Registers the Notes API from the command line, introspecting as `notes-api`.
async fn notes_api(stack: &Stack) {
    register_service(
        &stack.store,
        "notes-api",
        "notes-secret",
        stack.clock.unix(),
    )
    .await;
    let out = stack.cli(&ADD_NOTES).await.unwrap();
    assert!(out.contains("registered"), "{out}");
}

/// The command that registers the Notes API (as client `notes-api`).
const ADD_NOTES: [&str; 12] = [
    "resources",
    "add",
    "--id",
    NOTES,
    "--name",
    "Notes",
    "--scope",
    "notes:read",
    "--scope",
    "notes:write",
    "--client",
    "notes-api",
];

#[tokio::test]
async fn an_api_gets_tokens_addressed_to_it_that_only_it_can_introspect() {
    let stack = spawn().await;
    notes_api(&stack).await;
    let app_a = (stack.app_a.client_id.as_str(), stack.app_a.secret.as_str());
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_a, ALICE).await;
    let asked = ["Use Notes with the permission “notes:read”"];
    let (code, verifier) = api_code(&stack, &browser, "openid profile notes:read", &asked).await;
    // Allowed once, remembered, and shown among the connected apps.
    let (again, _) = api_code(&stack, &browser, "openid notes:read", &[]).await;
    assert!(!again.is_empty());
    let apps = browser
        .follow(&format!("{}/account/apps", stack.issuer))
        .await;
    assert!(apps.body.contains(asked[0]), "{}", apps.body);
    let with_notes = [("resource", NOTES)];
    let (status, _, body) = stack
        .redeem_as_app_a_with(&code, &verifier, &with_notes)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["scope"], "notes:read",
        "the access token's scope (RFC 6749 §5.1)"
    );
    assert!(
        body["id_token"].is_string(),
        "still an OpenID Connect sign-in"
    );
    let at = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(jwt_part(&at, 0)["typ"], "at+jwt");
    assert_eq!(
        jwt_part(&at, 0)["alg"],
        "RS256",
        "RFC 9068 §2.1: what every API supports"
    );
    let claims = jwt_part(&at, 1);
    assert_eq!(claims["aud"], NOTES, "RFC 9068 §3: aud is the resource");
    assert_eq!(claims["scope"], "notes:read");
    assert_eq!(claims["client_id"], "app-a");
    assert_eq!(claims["iss"], stack.issuer);
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(
        lifetime, 300,
        "the API's token lifetime (default five minutes)"
    );
    assert_eq!(
        userinfo_status(&stack, &at).await,
        401,
        "a token for the API is not one for userinfo"
    );

    // The API's client introspects it; another client learns nothing.
    let seen = introspect(&stack, &at, ("notes-api", "notes-secret")).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["aud"], NOTES);
    assert_eq!(seen["scope"], "notes:read");
    let app_b = (stack.app_b.client_id.as_str(), stack.app_b.secret.as_str());
    assert_eq!(introspect(&stack, &at, app_b).await["active"], false);

    // The refresh token serves both: the provider's own token, and the API's again.
    let rt = body["refresh_token"].as_str().unwrap().to_owned();
    let plain = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
    ];
    let (status, _, own) = stack.token(&plain, Some(app_a)).await;
    assert_eq!(status, 200, "{own}");
    let own_at = own["access_token"].as_str().unwrap();
    assert_eq!(jwt_part(own_at, 1)["aud"], stack.issuer);
    assert_eq!(userinfo_status(&stack, own_at).await, 200);
    // The API's client does not reach the provider's own token.
    let seen = introspect(&stack, own_at, ("notes-api", "notes-secret")).await;
    assert_eq!(seen["active"], false);
    let rt = own["refresh_token"].as_str().unwrap().to_owned();
    let wider = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
        ("resource", NOTES),
        ("scope", "notes:write"),
    ];
    let (status, _, refused) = stack.token(&wider, Some(app_a)).await;
    assert_eq!(
        (status.as_u16(), &refused["error"]),
        (400, &Value::from("invalid_scope"))
    );
    let again = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
        ("resource", NOTES),
    ];
    let (status, _, api) = stack.token(&again, Some(app_a)).await;
    assert_eq!(status, 200, "{api}");
    assert_eq!(
        jwt_part(api["access_token"].as_str().unwrap(), 1)["aud"],
        NOTES
    );

    // Revoking the grant reaches the API's tokens too.
    let rt = api["refresh_token"].as_str().unwrap();
    let http = client_app::http::client_builder().build().unwrap();
    let revoked = http
        .post(format!("{}/revoke", stack.issuer))
        .basic_auth(app_a.0, Some(app_a.1))
        .form(&[("token", rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let api_at = api["access_token"].as_str().unwrap();
    let seen = introspect(&stack, api_at, ("notes-api", "notes-secret")).await;
    assert_eq!(seen["active"], false, "{seen}");
}

#[tokio::test]
async fn a_resource_that_is_not_registered_or_not_granted_is_an_invalid_target() {
    let stack = spawn().await;
    notes_api(&stack).await;
    // At /authorize: back to the app with invalid_target (its redirect URI is good).
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_a, ALICE).await;
    for extra in [
        vec![("resource", "http://elsewhere.localhost:9")],
        vec![("resource", NOTES), ("resource", NOTES)],
    ] {
        let mut req = stack.authorize_url(&stack.app_a.client_id, &stack.app_a.redirect_uri, &[]);
        req.url
            .query_pairs_mut()
            .extend_pairs(extra.iter().copied());
        let page = browser.get_once(req.url.as_str()).await;
        let location = page.hops[0].location.clone().unwrap_or_default();
        assert_eq!(
            param(&location, "error").as_deref(),
            Some("invalid_target"),
            "{extra:?}: {location}"
        );
    }
    // At /token: a grant that did not name the API gets no token for it, and the code is
    // not spent by the refusal.
    let (code, verifier) = super::code_with(&stack, &browser, &[]).await;
    let with_notes = [("resource", NOTES)];
    let (status, _, body) = stack
        .redeem_as_app_a_with(&code, &verifier, &with_notes)
        .await;
    assert_eq!(
        (status.as_u16(), &body["error"]),
        (400, &Value::from("invalid_target"))
    );
    let (status, _, body) = stack.redeem_as_app_a(&code, &verifier).await;
    assert_eq!(
        status, 200,
        "the refused request did not spend the code: {body}"
    );
    // Two resources in one token request: refused as RFC 8707 says.
    let twice = [("resource", NOTES), ("resource", NOTES)];
    let (status, _, body) = stack.redeem_as_app_a_with(&code, &verifier, &twice).await;
    assert_eq!(
        (status.as_u16(), &body["error"]),
        (400, &Value::from("invalid_target"))
    );

    // A removed API gets no more tokens.
    let asked = ["Use Notes with the permission “notes:read”"];
    let (code, verifier) = api_code(&stack, &browser, "openid notes:read", &asked).await;
    let listed = stack.cli(&["resources", "list", "--json"]).await.unwrap();
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed[0]["resource"], NOTES);
    assert_eq!(listed[0]["client_id"], "notes-api");
    stack.cli(&["resources", "remove", NOTES]).await.unwrap();
    let with_notes = [("resource", NOTES)];
    let (status, _, body) = stack
        .redeem_as_app_a_with(&code, &verifier, &with_notes)
        .await;
    assert_eq!(
        (status.as_u16(), &body["error"]),
        (400, &Value::from("invalid_target"))
    );
}

#[tokio::test]
async fn the_command_line_refuses_a_resource_that_breaks_the_rules() {
    let stack = spawn().await;
    let on_the_provider = format!("{}/api", stack.issuer);
    let refusals = [
        (vec!["--id", "https://api.example.com/#x"], "fragment"),
        (vec!["--id", "http://api.example.com"], "https"),
        (vec!["--id", &on_the_provider], "own origin"),
        (
            vec!["--id", "https://api.example.com", "--scope", "openid"],
            "OpenID",
        ),
        (
            vec!["--id", "https://api.example.com", "--scope", ""],
            "scope name",
        ),
        (
            vec![
                "--id",
                "https://api.example.com",
                "--access-token-lifetime",
                "2h",
            ],
            "between",
        ),
        (
            vec![
                "--id",
                "https://api.example.com",
                "--access-token-alg",
                "HS256",
            ],
            "RS256 or ES256",
        ),
        (
            vec!["--id", "https://api.example.com", "--client", "nobody"],
            "no client",
        ),
        (
            vec![
                "--id",
                "https://api.example.com",
                "--scope",
                "x",
                "--scope",
                "",
            ],
            "scope name",
        ),
    ];
    for (args, why) in refusals {
        let mut all = vec!["resources", "add"];
        all.extend(&args);
        if !args.contains(&"--scope") {
            all.extend(["--scope", "notes:read"]);
        }
        let refused = stack.cli(&all).await.unwrap_err();
        assert!(refused.contains(why), "{args:?}: {refused}");
    }
    let bare = ["resources", "add", "--id", "https://api.example.com"];
    let refused = stack.cli(&bare).await.unwrap_err();
    assert!(refused.contains("at least one scope"), "{refused}");
    let add = [&bare[..], &["--scope", "notes:read"]].concat();
    let shown = stack.cli(&add).await.unwrap();
    assert!(shown.contains("RS256"), "{shown}");
    let again = stack.cli(&add).await.unwrap_err();
    assert!(again.contains("already registered"), "{again}");
    let missing = ["resources", "remove", "https://nope.example"];
    assert!(stack.cli(&missing).await.is_err());
}

/// The `resource-server` crate, as the API would use it: the provider's tokens for the API
/// pass with their scopes, everything else gets RFC 6750's answers, with no call to the
/// provider per request.
#[tokio::test]
async fn the_resource_server_crate_accepts_the_apis_tokens_and_refuses_the_rest() {
    use axum::Router;
    use axum::routing::get;
    use resource_server::{Caller, Config, Verifier, require};
    use std::sync::Arc;
    use tower::ServiceExt;

    let stack = spawn().await;
    notes_api(&stack).await;
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_a, ALICE).await;
    let asked = ["Use Notes with the permission “notes:read”"];
    let (code, verifier) = api_code(&stack, &browser, "openid notes:read", &asked).await;
    let app_a = (stack.app_a.client_id.as_str(), stack.app_a.secret.as_str());
    let with_notes = [("resource", NOTES)];
    let (status, _, body) = stack
        .redeem_as_app_a_with(&code, &verifier, &with_notes)
        .await;
    assert_eq!(status, 200, "{body}");
    let api_token = body["access_token"].as_str().unwrap().to_owned();
    let rt = body["refresh_token"].as_str().unwrap();
    let own = [("grant_type", "refresh_token"), ("refresh_token", rt)];
    let (_, _, own) = stack.token(&own, Some(app_a)).await;
    let own_token = own["access_token"].as_str().unwrap().to_owned();

    let http = client_app::http::client_builder().build().unwrap();
    let config = Config::new(stack.issuer.clone(), NOTES);
    let verifier = Arc::new(
        Verifier::discover(config, http, stack.clock.clone())
            .await
            .unwrap(),
    );
    async fn owner(Caller(token): Caller) -> String {
        token.sub
    }
    let api = Router::new()
        .route(
            "/notes",
            get(owner).route_layer(require(&verifier, &["notes:read"])),
        )
        .route(
            "/notes/new",
            get(owner).route_layer(require(&verifier, &["notes:write"])),
        );
    let call = |path: &'static str, token: String| {
        let api = api.clone();
        async move {
            let req = http::Request::get(path)
                .header("authorization", format!("Bearer {token}"))
                .body(axum::body::Body::empty())
                .unwrap();
            let resp = api.oneshot(req).await.unwrap();
            let challenge = resp
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            (resp.status().as_u16(), challenge)
        }
    };
    assert_eq!(call("/notes", api_token.clone()).await.0, 200);
    let (status, challenge) = call("/notes/new", api_token.clone()).await;
    assert_eq!(status, 403);
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    let (status, challenge) = call("/notes", own_token).await;
    assert_eq!(status, 401, "the provider's own token is not for the API");
    assert!(challenge.contains("invalid_token"), "{challenge}");
    // Past its five minutes (and the thirty seconds of leeway), locally, without asking.
    stack.clock.advance(std::time::Duration::from_secs(331));
    let (status, challenge) = call("/notes", api_token).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("expired"), "{challenge}");
}

/// A token of alice's for the Notes API through App A, in a new browser (signed in with
/// `password`; App A asks for consent again after a disconnect): the access token and the
/// grant's refresh token.
async fn fresh_api_token(stack: &Stack, password: &str) -> (String, String) {
    api_token_with(stack, password, "openid notes:read").await
}

/// [`fresh_api_token`] for `scope`.
async fn api_token_with(stack: &Stack, password: &str, scope: &str) -> (String, String) {
    let browser = Browser::new();
    sign_in(stack, &browser, &stack.app_a, (ALICE.0, password)).await;
    let (code, verifier) = api_code_if_asked(stack, &browser, scope, None).await;
    let with_notes = [("resource", NOTES)];
    let (status, _, body) = stack
        .redeem_as_app_a_with(&code, &verifier, &with_notes)
        .await;
    assert_eq!(status, 200, "{body}");
    let at = body["access_token"].as_str().unwrap().to_owned();
    (at, body["refresh_token"].as_str().unwrap().to_owned())
}

/// An API validating tokens locally with the `resource-server` crate hears each cause of
/// revocation through the provider's feed, and refuses the token from then on; how long that
/// took is printed (the figures in README: measured, not asserted, on a shared machine).
#[tokio::test]
async fn an_api_refuses_a_token_soon_after_each_cause_of_its_revocation() {
    use resource_server::{Config, Verifier, VerifyError};
    use std::time::{Duration, Instant};

    let stack = spawn().await;
    notes_api(&stack).await;
    let http = client_app::http::client_builder().build().unwrap();
    let config = Config::new(stack.issuer.clone(), NOTES);
    let api = Verifier::discover(config, http.clone(), stack.clock.clone())
        .await
        .unwrap();
    let _feed = api.hear_revocations("notes-api", "notes-secret").unwrap();
    let app_a = (stack.app_a.client_id.as_str(), stack.app_a.secret.as_str());
    let mut heard = Vec::new();
    // Each cause: a fresh token, accepted once the feed is synced; then the cause, then the
    // wait until the API refuses it.
    for cause in [
        "revoke",
        "refresh reuse",
        "sign out everywhere",
        "disconnect",
        "password",
    ] {
        let (at, rt) = fresh_api_token(&stack, ALICE.1).await;
        eventually("the API accepts the fresh token", || async {
            api.verify(&at).await.ok()
        })
        .await;
        let started = Instant::now();
        match cause {
            "revoke" => {
                let resp = http
                    .post(format!("{}/revoke", stack.issuer))
                    .basic_auth(app_a.0, Some(app_a.1))
                    .form(&[("token", at.as_str())])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
            }
            "refresh reuse" => {
                let form = [
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt.as_str()),
                ];
                assert_eq!(stack.token(&form, Some(app_a)).await.0, 200);
                stack.clock.advance(Duration::from_secs(6));
                assert_eq!(stack.token(&form, Some(app_a)).await.0, 400);
            }
            "sign out everywhere" => {
                let out = stack.cli(&["sessions", "revoke", "--user", ALICE.0]).await;
                out.unwrap();
            }
            "disconnect" => {
                let out = stack.cli(&["users", "revoke-grants", ALICE.0, "--client", "app-a"]);
                out.await.unwrap();
            }
            _ => {
                let args = ["users", "passwd", ALICE.0, "--password-stdin"];
                stack
                    .cli_with_stdin(&args, "a-new-passw0rd\n")
                    .await
                    .unwrap();
            }
        }
        eventually(&format!("the API hears of {cause}"), || async {
            (api.verify(&at).await == Err(VerifyError::Revoked)).then_some(())
        })
        .await;
        heard.push((cause, started.elapsed()));
    }
    for (cause, took) in heard {
        eprintln!(
            "revocation heard by the API: {cause}: {} ms",
            took.as_millis()
        );
    }
}

const AUDIT: &str = "http://audit.localhost:5004";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The Notes API ([`notes_api`]) and the Audit API (client `audit-api`), set up from the
/// command line as an operator would: `notes-api` registered for token exchange, and allowed
/// Audit's `audit:write`.
async fn notes_with_audit(stack: &Stack) {
    notes_api(stack).await;
    register_service(
        &stack.store,
        "audit-api",
        "audit-secret",
        stack.clock.unix(),
    )
    .await;
    let commands: [&[&str]; 3] = [
        &[
            "clients",
            "update",
            "notes-api",
            "--grant-type",
            "client_credentials",
            "--grant-type",
            EXCHANGE,
        ],
        &[
            "resources",
            "add",
            "--id",
            AUDIT,
            "--scope",
            "audit:read",
            "--scope",
            "audit:write",
            "--client",
            "audit-api",
        ],
        &[
            "resources",
            "allow-exchange",
            "--client",
            "notes-api",
            "--to",
            AUDIT,
            "--scope",
            "audit:write",
        ],
    ];
    let mut said = String::new();
    for args in commands {
        said = stack.cli(args).await.unwrap();
    }
    assert!(said.contains("may exchange"), "{said}");
}

/// Token exchange over HTTP, set up from the command line as an operator would: the Notes
/// API, called with alice's token, obtains a token for the Audit API on her behalf, with
/// `act` naming it; what the rule does not allow is refused.
#[tokio::test]
async fn an_api_exchanges_a_users_token_for_one_to_the_next_api() {
    let stack = spawn().await;
    notes_with_audit(&stack).await;
    let cli = |args: &'static [&'static str]| {
        let stack = &stack;
        async move { stack.cli(args).await.unwrap() }
    };
    let listed = cli(&["resources", "list"]).await;
    assert!(
        listed.contains("exchanged for by   notes-api (audit:write)"),
        "{listed}"
    );

    let (subject, _) = fresh_api_token(&stack, ALICE.1).await;
    let notes = ("notes-api", "notes-secret");
    let ask = |extra: &'static [(&'static str, &'static str)]| {
        let (stack, subject) = (&stack, subject.clone());
        async move {
            let mut form = vec![
                ("grant_type", EXCHANGE),
                ("subject_token", subject.as_str()),
                ("subject_token_type", ACCESS_TOKEN),
                ("resource", AUDIT),
            ];
            form.extend_from_slice(extra);
            stack.token(&form, Some(notes)).await
        }
    };
    let (status, _, body) = ask(&[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(body["token_type"], "Bearer");
    let claims = jwt_part(body["access_token"].as_str().unwrap(), 1);
    assert_eq!(claims["aud"], AUDIT);
    assert_eq!(claims["scope"], "audit:write");
    assert_eq!(claims["act"], serde_json::json!({"sub": "notes-api"}));
    assert_eq!(claims["sub"], jwt_part(&subject, 1)["sub"]);
    let (status, _, body) = ask(&[("scope", "audit:read")]).await;
    assert_eq!(
        (status.as_u16(), &body["error"]),
        (400, &Value::from("invalid_scope"))
    );
    // A client not registered for the grant (the Audit API's) is refused outright.
    let form = [
        ("grant_type", EXCHANGE),
        ("subject_token", subject.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
        ("resource", NOTES),
    ];
    let (status, _, body) = stack
        .token(&form, Some(("audit-api", "audit-secret")))
        .await;
    assert_eq!(
        (status.as_u16(), &body["error"]),
        (400, &Value::from("unauthorized_client"))
    );
    cli(&[
        "resources",
        "disallow-exchange",
        "--client",
        "notes-api",
        "--to",
        AUDIT,
    ])
    .await;
    let (status, _, body) = ask(&[]).await;
    assert_eq!(
        (status.as_u16(), &body["error"]),
        (400, &Value::from("invalid_target"))
    );
    // Discovery lists the grant.
    let doc = stack.discovery().await;
    let grants = doc["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&Value::from(EXCHANGE)), "{grants:?}");
    assert!(doc["gatehouse_revocation_feed_endpoint"].is_string());
}

/// The demo's Notes and Audit APIs, running in-process against a stack.
pub(super) struct RunningApis {
    pub notes_url: String,
    /// What keeps them hearing the provider's revocation feed.
    _feeds: [resource_server::Listener; 2],
}

/// A stack whose apps call the Notes API (App A writes notes, App B reads them), with Notes
/// and Audit set up as [`notes_with_audit`] does and running in-process.
pub(super) async fn spawn_with_notes(options: Options) -> (Stack, RunningApis) {
    let notes_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let notes_url = format!("http://{}", notes_listener.local_addr().unwrap());
    let stack = spawn_with(Options {
        notes_url: Some(notes_url.clone()),
        ..options
    })
    .await;
    notes_with_audit(&stack).await;
    let http = client_app::http::client_builder().build().unwrap();
    let settings = |audience: &str, client: &str, secret: &str| notes_api::Settings {
        issuer: stack.issuer.clone(),
        audience: audience.into(),
        client_id: client.into(),
        client_secret: secret.into(),
        public_url: None,
    };
    let serve = |listener: tokio::net::TcpListener, router: axum::Router| {
        tokio::spawn(async move { axum::serve(listener, router).await });
    };
    // Audit is reached at its listener's address: what the DPoP proofs sent to it name.
    let audit_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let audit_url = format!("http://{}", audit_listener.local_addr().unwrap());
    let audit = notes_api::audit(
        notes_api::Settings {
            public_url: Some(audit_url.clone()),
            ..settings(AUDIT, "audit-api", "audit-secret")
        },
        http.clone(),
        stack.clock.clone(),
    )
    .await
    .unwrap();
    let target = notes_api::AuditApi {
        resource: AUDIT.into(),
        url: audit_url,
    };
    serve(audit_listener, audit.router);
    let notes = notes_api::notes(
        settings(NOTES, "notes-api", "notes-secret"),
        Some(target),
        http,
        stack.clock.clone(),
    )
    .await
    .unwrap();
    serve(notes_listener, notes.router);
    let apis = RunningApis {
        notes_url,
        _feeds: [notes.listener, audit.listener],
    };
    (stack, apis)
}

/// The demo's Notes API, in-process against the stack: it keeps alice's note, records it at
/// the Audit API on her behalf with an exchanged token (`act` naming Notes), shows how each
/// token was validated, refuses what it should, and hears "sign out everywhere".
#[tokio::test]
async fn the_notes_api_keeps_notes_audits_them_and_hears_sign_out_everywhere() {
    let (stack, apis) = spawn_with_notes(Options::default()).await;
    let http = client_app::http::client_builder().build().unwrap();
    let notes_url = apis.notes_url.clone();

    let (token, _) = api_token_with(&stack, ALICE.1, "openid notes:read notes:write").await;
    let call = |method: reqwest::Method, token: Option<String>, body: Option<&'static str>| {
        let (http, url) = (http.clone(), format!("{notes_url}/notes"));
        async move {
            let mut req = http.request(method, url);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if let Some(b) = body {
                req = req.header("content-type", "application/json").body(b);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Accepted once the API hears the feed; then the note is kept and audited.
    let written = eventually("the Notes API accepts alice's token", || {
        let token = token.clone();
        async move {
            let (status, body) = call(
                reqwest::Method::POST,
                Some(token),
                Some(r#"{"text":"buy milk"}"#),
            )
            .await;
            (status == 201).then_some(body)
        }
    })
    .await;
    assert_eq!(written["note"]["text"], "buy milk");
    assert_eq!(written["note"]["by_app"], "app-a");
    assert_eq!(written["audit"]["status"], 201, "{written}");
    let event = &written["audit"]["event"];
    assert_eq!(event["acted_by"], serde_json::json!(["notes-api"]));
    assert_eq!(event["client_id"], "notes-api");
    // The exchanged token is bound to Notes' own DPoP key (RFC 9449 §5), and Audit took it
    // only with Notes' proof (§7).
    assert_eq!(written["audit"]["token_type"], "DPoP", "{written}");
    assert_eq!(event["sender_constrained"], true);
    assert_eq!(event["for"], jwt_part(&token, 1)["sub"]);
    assert!(written["validation"]["microseconds"].is_u64());
    let (status, listed) = call(reqwest::Method::GET, Some(token.clone()), None).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["notes"][0]["text"], "buy milk");
    // Refusals: no token, bad input, a token without notes:write.
    assert_eq!(call(reqwest::Method::GET, None, None).await.0, 401);
    let (status, body) = call(reqwest::Method::POST, Some(token.clone()), Some("not json")).await;
    assert_eq!(
        (status, &body["error"]),
        (400, &Value::from("invalid_request"))
    );
    let (status, _) = call(
        reqwest::Method::POST,
        Some(token.clone()),
        Some(r#"{"text":"  "}"#),
    )
    .await;
    assert_eq!(status, 422);
    let (reader, _) = fresh_api_token(&stack, ALICE.1).await;
    let (status, body) = call(reqwest::Method::POST, Some(reader), Some(r#"{"text":"x"}"#)).await;
    assert_eq!(
        (status, &body["error"]),
        (403, &Value::from("insufficient_scope"))
    );
    // "Sign out everywhere": the API refuses the token soon after, locally.
    stack
        .cli(&["sessions", "revoke", "--user", ALICE.0])
        .await
        .unwrap();
    let refused = eventually("the Notes API hears the sign-out", || {
        let token = token.clone();
        async move {
            let (status, body) = call(reqwest::Method::GET, Some(token), None).await;
            (status == 401).then_some(body)
        }
    })
    .await;
    assert_eq!(refused["error"], "invalid_token");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{refused}"
    );
}

/// `app`'s home page in `browser`, loaded again until it shows `expected` (the API is heard
/// once its revocation feed is synced).
async fn home_showing(browser: &Browser, app: &RunningApp, expected: &str) -> Page {
    let last = std::cell::RefCell::new(String::new());
    let found = crate::harness::within_patience(|| async {
        let page = browser.follow(&format!("{}/", app.url)).await;
        if page.body.contains(expected) {
            return Some(page);
        }
        *last.borrow_mut() = page.body;
        None
    })
    .await;
    found.unwrap_or_else(|| {
        let last = last.borrow();
        panic!("{} shows {expected:?}; it shows:\n{last}", app.url)
    })
}

/// The demo's journey over HTTP with a cookie jar: App A (third-party) asks for the Notes API
/// at sign-in, writes a note through its page (CSRF-protected, escaped on display); App B
/// (first-party, single sign-on) reads it and cannot write; an expired API token is renewed by
/// a refresh that names the API; after "Sign out everywhere" App A shows the API refusing the
/// token it held, once, and App B is signed out too.
#[tokio::test]
async fn app_a_writes_notes_that_app_b_reads_and_sign_out_everywhere_reaches_the_api() {
    let (stack, _apis) = spawn_with_notes(Options::default()).await;
    let (app_a, app_b) = (&stack.app_a, &stack.app_b);
    let browser = Browser::new();
    let login = browser.follow(&format!("{}/login", app_a.url)).await;
    let authorize = format!("{}/authorize?", stack.issuer);
    assert!(
        login
            .hops
            .iter()
            .any(|h| h.url.as_str().starts_with(&authorize)
                && param(h.url.as_str(), "resource").as_deref() == Some(NOTES)),
        "RFC 8707 §2.1: the API is named at sign-in: {:?}",
        login.hops
    );
    let fields = [("username", ALICE.0), ("password", ALICE.1)];
    let consent = browser.submit(&login, "/login", &fields).await;
    for line in [
        "Use Notes with the permission “notes:read”",
        "Use Notes with the permission “notes:write”",
    ] {
        assert!(consent.body.contains(line), "{line}: {}", consent.body);
    }
    browser
        .submit(&consent, "/consent", &[("decision", "allow")])
        .await;
    let home = home_showing(&browser, app_a, r#"id="no-notes""#).await;
    assert!(
        home.body.contains("JWT checked locally"),
        "how the API validated the token: {}",
        home.body
    );
    assert!(home.body.contains(" µs</dd>"), "{}", home.body);

    // A form without the session's CSRF token is refused and writes nothing; so is an empty note.
    let forged = [("csrf_token", "forged"), ("text", "forged")];
    let refused = browser
        .post_form(&format!("{}/notes", app_a.url), &forged)
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let empty = browser.submit(&home, "/notes", &[("text", "   ")]).await;
    assert_eq!(empty.status, 422, "{}", empty.body);
    let written = browser
        .submit(&home, "/notes", &[("text", "buy <b>milk</b>")])
        .await;
    assert_eq!(written.status, 200, "{}", written.body);
    assert_eq!(written.url.as_str(), format!("{}/", app_a.url));
    assert!(
        written.body.contains("buy &#60;b&#62;milk&#60;/b&#62;")
            && written.body.contains("written through app-a"),
        "the note, escaped, written through App A: {}",
        written.body
    );
    assert!(!written.body.contains("forged"), "{}", written.body);

    // App B: single sign-on, the same user's notes, no form, and no writing.
    sign_in(&stack, &browser, app_b, ALICE).await;
    let at_b = home_showing(&browser, app_b, "buy &#60;b&#62;milk&#60;/b&#62;").await;
    assert!(!at_b.body.contains(r#"action="/notes""#), "{}", at_b.body);
    let csrf = at_b.hidden("csrf_token").unwrap();
    let post = [("csrf_token", csrf.as_str()), ("text", "from B")];
    let not_here = browser
        .post_form(&format!("{}/notes", app_b.url), &post)
        .await;
    assert_eq!(not_here.status, 404, "{}", not_here.body);

    // The API token expires (five minutes), so the API would refuse it: the next page renews
    // it with a refresh that names the API again, and the note is listed.
    stack.clock.advance(std::time::Duration::from_secs(6 * 60));
    let renewed = home_showing(&browser, app_a, "buy &#60;b&#62;milk&#60;/b&#62;").await;

    // Sign out everywhere from App A: back there, the page shows the API refusing the token.
    let out = browser.submit(&renewed, "/logout/everywhere", &[]).await;
    assert!(
        out.url
            .as_str()
            .starts_with(&format!("{}/?state=", app_a.url)),
        "{}",
        out.url
    );
    assert!(out.body.contains(r#"id="api-refused""#), "{}", out.body);
    assert!(
        out.body.contains("401 invalid_token") && out.body.contains("revoked"),
        "{}",
        out.body
    );
    let again = browser.follow(&format!("{}/", app_a.url)).await;
    assert!(
        !again.body.contains("after-sign-out") && again.body.contains("You are not signed in."),
        "the check is shown once: {}",
        again.body
    );
    signed_out(&browser, app_b, "App B hears the sign-out").await;
}

/// An API registered anew after the sign-in (a new registration, which the grant was not
/// given): the provider refuses App A's refresh for it (`invalid_target`), and App A says so
/// and keeps the user signed in; signing in again (and allowing Notes again) brings the notes
/// back.
#[tokio::test]
async fn an_app_whose_grant_does_not_cover_the_api_says_so_and_stays_signed_in() {
    let (stack, _apis) = spawn_with_notes(Options::default()).await;
    let app_a = &stack.app_a;
    let browser = Browser::new();
    sign_in(&stack, &browser, app_a, ALICE).await;
    home_showing(&browser, app_a, r#"id="no-notes""#).await;
    // Notes registered anew: the grant names the old registration only.
    stack.cli(&["resources", "remove", NOTES]).await.unwrap();
    stack.cli(&ADD_NOTES).await.unwrap();
    // The token App A holds expires, and the refresh for a new one is refused.
    stack.clock.advance(std::time::Duration::from_secs(6 * 60));
    let told = home_showing(&browser, app_a, "Sign out and in again to allow it.").await;
    assert!(
        told.body.contains(r#"id="status">Signed in"#),
        "{}",
        told.body
    );
    // Remembered (not asked again: `due` in client-app/src/pages.rs and its test).
    let still = browser.follow(&format!("{}/", app_a.url)).await;
    assert!(still.body.contains("Sign out and in again to allow it."));

    // Signed in again, Notes is allowed again (App A is third-party: consent) and answers.
    let home = browser.follow(&format!("{}/", app_a.url)).await;
    browser.submit(&home, "/logout", &[]).await;
    sign_in(&stack, &browser, app_a, ALICE).await;
    home_showing(&browser, app_a, r#"id="no-notes""#).await;
}

/// Eight requests of one browser arrive at App B just as its API token comes due, with the
/// provider allowing no grace for a reused refresh token: the app renews the API token once
/// for all of them (single-flight per session, as for the provider's own token), so nobody is
/// signed out, and later renewals work (the refresh-token family was never revoked).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pages_renew_the_api_token_once() {
    let (stack, _apis) = spawn_with_notes(Options {
        configure: Some(super::authorize::no_refresh_grace),
        ..Options::default()
    })
    .await;
    let app_b = &stack.app_b;
    let browser = Browser::new();
    sign_in(&stack, &browser, app_b, ALICE).await;
    home_showing(&browser, app_b, r#"id="no-notes""#).await;
    for round in 0..2 {
        // Past the API token's expiry (five minutes), before the provider's own is due.
        stack
            .clock
            .advance(std::time::Duration::from_secs(5 * 60 + 1));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (browser, url) = (browser.clone(), app_b.url.clone());
            tasks.spawn(async move { browser.follow(&format!("{url}/")).await });
        }
        for page in tasks.join_all().await {
            assert_eq!(page.status, 200, "round {round}: {}", page.body);
            assert!(
                page.body.contains(r#"id="status">Signed in"#),
                "round {round}: {}",
                page.body
            );
        }
        // The API answers with the renewed token (once it has heard the feed since).
        home_showing(&browser, app_b, r#"id="no-notes""#).await;
    }
}
