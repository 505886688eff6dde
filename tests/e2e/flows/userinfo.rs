//! UserInfo with Bearer tokens (RFC 6750).

use super::code_for_app_a;
use crate::harness::spawn;
use std::time::Duration;

async fn access_token(stack: &crate::harness::Stack, extra: &[(&str, &str)]) -> String {
    let (_, code, verifier) = code_for_app_a(stack, extra).await;
    let (_, _, body) = stack.redeem_as_app_a(&code, &verifier).await;
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn userinfo_returns_claims_by_scope() {
    let stack = spawn().await;
    let token = access_token(&stack, &[]).await;
    let client = client_app::http::client_builder().build().unwrap();
    let url = format!("{}/userinfo", stack.issuer);
    let resp = client.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["name"], "Alice Liddell");
    assert_eq!(body["preferred_username"], "alice");
    assert_eq!(body["email"], "alice@example.com");
    assert_eq!(body["email_verified"], true);
    // POST with the token in the form body (RFC 6750 §2.2).
    let resp = client
        .post(&url)
        .form(&[("access_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Only the scopes granted: openid alone gives just sub.
    let token = access_token(&stack, &[("scope", "openid")]).await;
    let body: serde_json::Value = client
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.get("sub").is_some());
    assert!(
        body.get("email").is_none() && body.get("name").is_none(),
        "{body}"
    );
}

#[tokio::test]
async fn userinfo_errors_follow_rfc6750() {
    let stack = spawn().await;
    let client = client_app::http::client_builder().build().unwrap();
    let url = format!("{}/userinfo", stack.issuer);
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    // A bare challenge for each scheme userinfo accepts (RFC 6750 §3.1, RFC 9449 §7.1).
    let challenges: Vec<_> = resp.headers().get_all("www-authenticate").iter().collect();
    assert_eq!(
        challenges,
        [
            r#"Bearer realm="gatehouse""#,
            r#"DPoP algs="ES256 RS256 EdDSA""#
        ]
    );
    let resp = client
        .get(&url)
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    // A tampered token.
    let token = access_token(&stack, &[]).await;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].chars().rev().collect();
    let resp = client
        .get(&url)
        .bearer_auth(parts.join("."))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // The ID token is not an access token (typ).
    let (_, code, verifier) = code_for_app_a(&stack, &[]).await;
    let (_, _, body) = stack.redeem_as_app_a(&code, &verifier).await;
    let resp = client
        .get(&url)
        .bearer_auth(body["id_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // Expired (the injected clock).
    stack.clock.advance(Duration::from_secs(11 * 60));
    let resp = client.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    // Token in two places at once.
    let resp = client
        .post(&url)
        .bearer_auth(&token)
        .form(&[("access_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}
