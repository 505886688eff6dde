//! A certified third-party relying party against the provider: openid-client (OpenID
//! Certified) with every validation on completes the code flow, userinfo, and a `prompt=none`
//! re-authorization (also with `max_age`), obtains an API's token with `resource`, sends its
//! requests pushed (RFC 9126), signed (RFC 9101) and both, holds DPoP-bound tokens (RFC 9449),
//! verifies EdDSA ID tokens (RFC 8037) for a client registered for them, and signs in through
//! the device flow (RFC 8628), allowed and denied. The Node script
//! (tests/interop/openid-client/rp.mjs) is the RP; this test plays the browser between its
//! steps.

use crate::harness::{ALICE, Browser, Options, grants, register, spawn_with};
use provider::types::{Alg, AuthMethod, GrantType};
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Quick device polls, and an Ed25519 key among the provider's (for the EdDSA client).
fn interop_settings(c: &mut provider::Config) {
    super::device::quick_polls(c);
    c.keys.algorithms = vec![Alg::RS256, Alg::ES256, Alg::EdDSA];
}

#[tokio::test]
async fn openid_client_completes_code_flow_userinfo_and_prompt_none() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/openid-client");
    let node_ok = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node_ok || !dir.join("node_modules/openid-client").exists() {
        infra::testing::skip(
            "openid-client interop",
            "node on PATH and `npm ci` in tests/interop/openid-client (GATEHOUSE_TEST_NODE)",
        );
        return;
    }
    let stack = spawn_with(Options {
        issuer_host: Some("127.0.0.1"),
        configure: Some(interop_settings),
        ..Options::default()
    })
    .await;
    super::device::register_device_client(&stack, "certified-device", "Certified device", true)
        .await;
    // A redirect URI nothing listens on: the browser stops there and hands it to the RP.
    let redirect_uri = "http://127.0.0.1:9/openid-client/cb";
    register(
        &stack.store,
        "certified-rp",
        "Certified RP",
        Some("certified-rp-secret"),
        &[redirect_uri],
        AuthMethod::ClientSecretBasic,
        false,
        Alg::RS256,
        stack.clock.unix(),
    )
    .await;
    register(
        &stack.store,
        "certified-eddsa",
        "Certified RP (EdDSA)",
        Some("certified-eddsa-secret"),
        &[redirect_uri],
        AuthMethod::ClientSecretBasic,
        true,
        Alg::EdDSA,
        stack.clock.unix(),
    )
    .await;
    crate::harness::update_client(&stack.store, "certified-rp", |c| {
        c.grant_types = grants(&[GrantType::AuthorizationCode, GrantType::RefreshToken]);
    })
    .await
    .unwrap();
    crate::harness::register_service(
        &stack.store,
        "certified-service",
        "certified-service-secret",
        stack.clock.unix(),
    )
    .await;

    // An API, for a token named with `resource` (RFC 8707).
    let api = "http://api.localhost:5003";
    let args = [
        "resources",
        "add",
        "--id",
        api,
        "--name",
        "Notes",
        "--scope",
        "notes:read",
    ];
    stack.cli(&args).await.unwrap();

    let mut child = tokio::process::Command::new("node")
        .arg("rp.mjs")
        .current_dir(&dir)
        .env("ISSUER", &stack.issuer)
        .env("CLIENT_ID", "certified-rp")
        .env("CLIENT_SECRET", "certified-rp-secret")
        .env("REDIRECT_URI", redirect_uri)
        .env("SERVICE_ID", "certified-service")
        .env("SERVICE_SECRET", "certified-service-secret")
        .env("RESOURCE", api)
        .env("DEVICE_ID", "certified-device")
        .env("EDDSA_ID", "certified-eddsa")
        .env("EDDSA_SECRET", "certified-eddsa-secret")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let browser = Browser::new();
    let (mut rounds, mut devices) = (0, 0);
    let result = loop {
        let line = tokio::time::timeout(std::time::Duration::from_secs(30), out.next_line())
            .await
            .expect("the RP answers")
            .unwrap()
            .expect("the RP printed a result");
        let msg: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("RP said: {line}"));
        if let Some(url) = msg["authorize"].as_str() {
            rounds += 1;
            let mut page = browser.follow_until(url, redirect_uri).await;
            if page.url.path() == "/login" {
                page = browser
                    .submit_until(
                        &page,
                        "/login",
                        &[("username", ALICE.0), ("password", ALICE.1)],
                        redirect_uri,
                    )
                    .await;
            }
            if page.url.path() == "/consent" {
                page = browser
                    .submit_until(&page, "/consent", &[("decision", "allow")], redirect_uri)
                    .await;
            }
            assert!(
                page.url.as_str().starts_with(redirect_uri),
                "round {rounds} ended at {}: {}",
                page.url,
                page.body
            );
            let reply = serde_json::json!({ "callback": page.url.as_str() }).to_string() + "\n";
            stdin.write_all(reply.as_bytes()).await.unwrap();
        } else if msg["jwks"].is_object() {
            let jwks = msg["jwks"].clone();
            crate::harness::update_client(&stack.store, "certified-rp", |c| c.jwks = Some(jwks))
                .await
                .unwrap();
            stdin.write_all(b"{\"registered\":true}\n").await.unwrap();
        } else if let Some(user_code) = msg["device"]["user_code"].as_str() {
            devices += 1;
            let url = msg["device"]["verification_uri_complete"].as_str().unwrap();
            let page = browser.follow(url).await;
            assert_eq!(page.url.path(), "/device", "{}", page.body);
            let confirm = browser
                .submit(&page, "/device", &[("user_code", user_code)])
                .await;
            assert_eq!(confirm.status, 200, "{}", confirm.body);
            let answer = msg["answer"].as_str().unwrap();
            let done = browser
                .submit(&confirm, "/device/decide", &[("decision", answer)])
                .await;
            assert!(done.body.contains("id=\"device-done\""), "{}", done.body);
        } else if let Some(error) = msg["error"].as_str() {
            panic!("openid-client refused the provider: {error}");
        } else {
            break msg["result"].clone();
        }
    };
    assert!(child.wait().await.unwrap().success());
    assert_eq!((rounds, devices), (10, 2));
    let (first, silent, fresh) = (&result["first"], &result["silent"], &result["fresh"]);
    // EdDSA ID tokens (RFC 8037) for the client registered for them, RS256 for the other.
    assert_eq!(first["id_token_alg"], "RS256");
    let eddsa = &result["eddsa"];
    assert_eq!(eddsa["id_token_alg"], "EdDSA", "{eddsa}");
    assert_eq!(eddsa["sub"], first["sub"]);
    assert_eq!(eddsa["name"], "Alice Liddell");
    assert_eq!(first["name"], "Alice Liddell");
    assert_eq!(first["email"], "alice@example.com");
    assert_eq!(
        silent["sub"], first["sub"],
        "prompt=none signs the same user in"
    );
    assert_eq!(silent["sid"], first["sid"], "within the same SSO session");
    assert_eq!(fresh["sub"], first["sub"]);
    assert!(fresh["auth_time"].as_i64().is_some());
    // Refresh (its ID token validated by openid-client), introspection, revocation, and
    // client credentials.
    let t = &result["tokens"];
    assert_eq!(t["rotated"], true, "{t}");
    assert_eq!(t["refreshed_sub"], first["sub"]);
    assert_eq!(
        (
            t["introspected_active"].as_bool(),
            t["introspected_client"].as_str()
        ),
        (Some(true), Some("certified-rp"))
    );
    assert_eq!(t["after_revocation"], "invalid_grant", "{t}");
    assert_eq!(
        t["revoked_access_active"], false,
        "revoking the refresh token revoked its grant"
    );
    assert_eq!(
        (
            t["client_credentials_active"].as_bool(),
            t["client_credentials_sub"].as_str()
        ),
        (Some(true), Some("certified-service"))
    );
    assert_eq!(t["client_credentials_has_refresh"], false);
    // The API's token, as openid-client obtained it with `resource`.
    let api_token = &result["api"];
    assert_eq!(api_token["typ"], "at+jwt");
    assert_eq!(api_token["aud"], api);
    assert_eq!(api_token["scope"], "notes:read");
    assert_eq!(api_token["response_scope"], "notes:read");
    // Pushed (RFC 9126), signed (RFC 9101), and signed then pushed: the same sign-in.
    let sent = |how: &str| -> Vec<String> {
        let names = result[how]["sent"].as_array().cloned().unwrap_or_default();
        names
            .iter()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(sent("pushed"), ["client_id", "request_uri"]);
    assert_eq!(sent("signed"), ["client_id", "request"]);
    assert_eq!(sent("signedAndPushed"), ["client_id", "request_uri"]);
    assert!(sent("first").contains(&"code_challenge".to_owned()));
    for how in ["pushed", "signed", "signedAndPushed"] {
        let round = &result[how];
        assert_eq!(round["sub"], first["sub"], "{how}: {round}");
        assert_eq!(round["sid"], first["sid"], "{how}");
        assert_eq!(round["email"], "alice@example.com", "{how}");
    }
    // DPoP (RFC 9449): bound tokens, the nonce, userinfo with a proof, a bound refresh.
    let dpop = &result["dpop"];
    assert_eq!(dpop["token_type"], "dpop", "{dpop}");
    assert_eq!(dpop["sub"], first["sub"]);
    assert_eq!(dpop["name"], "Alice Liddell");
    assert_eq!(dpop["refreshed_type"], "dpop");
    assert_eq!(dpop["introspected_type"], "DPoP");
    assert_eq!(dpop["bound"], true);
    assert_eq!(
        dpop["as_bearer"], "401 invalid_token",
        "a bound token is no bearer token"
    );
    // Pushed with a proof (RFC 9449 §10.1): the code is bound to that key.
    let pushed = &result["dpopPushed"];
    assert_eq!(pushed["token_type"], "dpop", "{pushed}");
    assert_eq!(pushed["sub"], first["sub"]);
    assert_eq!(pushed["bound"], true);
    assert_eq!(pushed["other_key"], "invalid_dpop_proof", "{pushed}");
    // The device flow: openid-client validated the ID token, read userinfo and refreshed.
    let allowed = &result["device"]["allowed"];
    assert_eq!(allowed["sub"], first["sub"], "{allowed}");
    assert_eq!(allowed["name"], "Alice Liddell");
    assert_eq!(allowed["scope"], "openid profile offline_access");
    assert_eq!(allowed["refreshed_sub"], first["sub"]);
    assert_eq!(result["device"]["denied"]["error"], "access_denied");
}
