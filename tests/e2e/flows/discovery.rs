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
    assert_eq!(set.keys().len(), 2, "RS256 and ES256");
}
