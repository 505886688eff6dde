//! Discovery and JWKS, checked by the openidconnect crate's own types.

use crate::harness::spawn;
use openidconnect::core::{CoreJsonWebKeySet, CoreProviderMetadata};

#[tokio::test]
async fn discovery_document_is_complete_and_parses() {
    let stack = spawn().await;
    let client = client_app::http::client_builder().build().unwrap();
    let resp = client
        .get(format!("{}/.well-known/openid-configuration", stack.issuer))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let raw: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(raw["issuer"], stack.issuer);
    assert_eq!(
        raw["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(raw["authorization_response_iss_parameter_supported"], true);
    assert_eq!(raw["response_types_supported"], serde_json::json!(["code"]));
    for field in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
        "scopes_supported",
        "claims_supported",
        "token_endpoint_auth_methods_supported",
    ] {
        assert!(raw.get(field).is_some(), "{field}");
    }
    assert!(
        raw["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&"RS256".into())
    );
    let parsed: CoreProviderMetadata = serde_json::from_value(raw).unwrap();
    assert_eq!(parsed.issuer().as_str(), stack.issuer);

    let jwks = client.get(parsed.jwks_uri().as_str()).send().await.unwrap();
    assert_eq!(jwks.status(), 200);
    let set: CoreJsonWebKeySet = jwks.json().await.unwrap();
    assert_eq!(
        set.keys().len(),
        2,
        "RS256 and ES256 (EdDSA when configured)"
    );
}

/// The Prometheus text of the provider's `/metrics`, on its own listener (`metrics_listen`);
/// the public listener does not serve it.
async fn metrics(stack: &crate::harness::Stack) -> String {
    let client = client_app::http::client_builder().build().unwrap();
    let public = client
        .get(format!("{}/metrics", stack.issuer))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 404, "README \"Hostile clients\" 7");
    let resp = client.get(&stack.metrics_url).send().await.unwrap();
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    resp.text().await.unwrap()
}

/// The value of one series in a Prometheus text (0 when it is not there yet).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_requests_sessions_tokens_and_deliveries() {
    use crate::harness::{ALICE, Browser, eventually};
    // The recorder is the process's: other tests running at the same time bump it too, so
    // this test reads how much each series grew while it ran, at least its own share.
    let series = [
        r#"gatehouse_http_requests_total{route="/authorize",method="GET",status="303"}"#,
        r#"gatehouse_http_request_duration_seconds_count{route="/token"}"#,
        "gatehouse_sign_ins_total",
        r#"gatehouse_tokens_issued_total{grant="authorization_code"}"#,
        r#"gatehouse_sso_sessions_ended_total{cause="revoked_all"}"#,
        r#"gatehouse_logout_deliveries_total{outcome="delivered"}"#,
    ];
    let stack = spawn().await;
    let before = metrics(&stack).await;
    let browser = Browser::new();
    crate::flows::sign_in(&stack, &browser, &stack.app_a, ALICE).await;
    crate::flows::sign_out_everywhere(&stack, &browser).await;
    // The logout to App A is delivered in the background.
    let delivered = series[5];
    let text = eventually("the delivery is counted", || async {
        let text = metrics(&stack).await;
        (value(&text, delivered) > value(&before, delivered)).then_some(text)
    })
    .await;
    for s in series {
        let grew = value(&text, s) - value(&before, s);
        assert!(grew >= 1.0, "{s} grew by {grew}:\n{text}");
    }
    // Routes are templates: no per-user ids or query strings become labels.
    assert!(!text.contains("request="), "{text}");
}
