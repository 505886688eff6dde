//! A full signing-key rotation while the apps stay signed in and keep validating.

use super::{me, sign_in};
use crate::harness::{ALICE, Browser, jwt_part, spawn};
use std::time::Duration;

async fn jwks_kids(stack: &crate::harness::Stack) -> (Vec<String>, String) {
    let client = client_app::http::client_builder().build().unwrap();
    let resp = client
        .get(format!("{}/jwks", stack.issuer))
        .send()
        .await
        .unwrap();
    let cache = resp.headers()["cache-control"].to_str().unwrap().to_owned();
    let body: serde_json::Value = resp.json().await.unwrap();
    let kids = body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    (kids, cache)
}

/// One key per configured algorithm (RS256 and ES256 by default).
const ALGS: usize = 2;

/// Runs the provider's maintenance step now (the harness sweeper also runs it every second).
async fn maintain(stack: &crate::harness::Stack) {
    provider::maintenance::maintain_keys(&stack.provider, true)
        .await
        .unwrap();
}

/// Rotates every algorithm's key (as `provider keys rotate` does): the new keys are published
/// at once and sign in fifteen minutes.
async fn rotate_in_15_minutes(stack: &crate::harness::Stack) {
    let now = stack.clock.unix();
    for &alg in &stack.provider.config.keys.algorithms {
        provider::keys::rotate(&stack.store, alg, now, now + 15 * 60)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_rotation_signs_nobody_out() {
    let stack = spawn().await;
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_a, ALICE).await;
    sign_in(&stack, &browser, &stack.app_b, ALICE).await;
    let a_expiry = me(&browser, &stack.app_a).await.1["access_token_expires_at"].clone();
    let (old_kids, cache) = jwks_kids(&stack).await;
    assert_eq!(old_kids.len(), ALGS);
    assert_eq!(
        cache, "public, max-age=300",
        "shorter than the 15 min publish-ahead"
    );

    // Rotate (as `provider keys rotate` does): new keys are published at once, sign later.
    rotate_in_15_minutes(&stack).await;
    maintain(&stack).await;
    let (kids, _) = jwks_kids(&stack).await;
    assert_eq!(kids.len(), 2 * ALGS, "published ahead");
    let (code, verifier) = super::code_with(&stack, &browser, &[]).await;
    let (_, _, before) = stack.redeem_as_app_a(&code, &verifier).await;
    let before_kid = jwt_part(before["id_token"].as_str().unwrap(), 0)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        old_kids.contains(&before_kid),
        "still signing with the old key"
    );

    // The new keys take over.
    stack.clock.advance(Duration::from_secs(16 * 60));
    maintain(&stack).await;
    let (code, verifier) = super::code_with(&stack, &browser, &[]).await;
    let (_, _, fresh) = stack.redeem_as_app_a(&code, &verifier).await;
    let new_kid = jwt_part(fresh["id_token"].as_str().unwrap(), 0)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!old_kids.contains(&new_kid), "signing with the new key");
    // Both apps keep validating: App A refreshes (a new ID token under the new key, whose
    // JWKS it refetches), App B signs in again from scratch.
    let (status, a) = me(&browser, &stack.app_a).await;
    assert_eq!(status, 200, "{a}");
    assert!(
        a["access_token_expires_at"].as_str() > a_expiry.as_str(),
        "App A refreshed and verified the new ID token: {a_expiry} -> {}",
        a["access_token_expires_at"]
    );
    browser
        .submit(
            &browser.follow(&format!("{}/", stack.app_b.url)).await,
            "/logout",
            &[],
        )
        .await;
    let page = browser.follow(&format!("{}/login", stack.app_b.url)).await;
    assert_eq!(
        page.url.as_str(),
        format!("{}/", stack.app_b.url),
        "{}",
        page.body
    );
    assert_eq!(me(&browser, &stack.app_b).await.0, 200);

    // The old keys stay published until every token they signed has expired, then leave.
    let (kids, _) = jwks_kids(&stack).await;
    assert_eq!(kids.len(), 2 * ALGS);
    stack.clock.advance(Duration::from_secs(14 * 60));
    maintain(&stack).await;
    let (kids, _) = jwks_kids(&stack).await;
    assert_eq!(kids.len(), ALGS, "retired");
    assert!(old_kids.iter().all(|k| !kids.contains(k)));
    assert_eq!(me(&browser, &stack.app_a).await.0, 200, "still signed in");
    assert_eq!(me(&browser, &stack.app_b).await.0, 200);
}

/// A registered API's tokens may live longer than the provider's own (up to an hour): a
/// superseded key stays published until they have expired too, so the API never meets a
/// token it cannot verify.
#[tokio::test]
async fn a_retired_key_outlives_the_longest_api_token() {
    let stack = spawn().await;
    let api = [
        "resources",
        "add",
        "--id",
        "https://notes.example",
        "--scope",
        "n",
    ];
    let hour = ["--access-token-lifetime", "1h"];
    stack.cli(&[&api[..], &hour[..]].concat()).await.unwrap();
    let (old_kids, _) = jwks_kids(&stack).await;
    rotate_in_15_minutes(&stack).await;
    maintain(&stack).await;
    stack.clock.advance(Duration::from_secs(16 * 60));
    maintain(&stack).await;
    // Long past the provider's own tokens (ten minutes), within an API token's hour.
    stack.clock.advance(Duration::from_secs(30 * 60));
    maintain(&stack).await;
    let (kids, _) = jwks_kids(&stack).await;
    assert_eq!(kids.len(), 2 * ALGS, "the old keys are still published");
    stack.clock.advance(Duration::from_secs(34 * 60));
    maintain(&stack).await;
    let (kids, _) = jwks_kids(&stack).await;
    assert_eq!(
        kids.len(),
        ALGS,
        "retired once the API's tokens have expired"
    );
    assert!(old_kids.iter().all(|k| !kids.contains(k)));
}
