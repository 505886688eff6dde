//! OpenID Connect Discovery 1.0 §3 provider metadata, and the JWK Set.

use super::{SCOPES, paths};
use crate::app::SharedState;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;

/// The provider metadata we publish (OIDC Discovery §3, RFC 8414 §2, RFC 9207 §3).
#[derive(Serialize)]
pub(super) struct ProviderMetadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: String,
    revocation_endpoint: String,
    introspection_endpoint: String,
    end_session_endpoint: String,
    registration_endpoint: String,
    jwks_uri: String,
    scopes_supported: Vec<&'static str>,
    response_types_supported: Vec<&'static str>,
    response_modes_supported: Vec<&'static str>,
    grant_types_supported: Vec<&'static str>,
    subject_types_supported: Vec<&'static str>,
    id_token_signing_alg_values_supported: Vec<&'static str>,
    token_endpoint_auth_methods_supported: Vec<&'static str>,
    token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    claims_supported: Vec<&'static str>,
    code_challenge_methods_supported: Vec<&'static str>,
    prompt_values_supported: Vec<&'static str>,
    claims_parameter_supported: bool,
    request_parameter_supported: bool,
    request_uri_parameter_supported: bool,
    authorization_response_iss_parameter_supported: bool,
    backchannel_logout_supported: bool,
    backchannel_logout_session_supported: bool,
}

pub(super) async fn show_configuration(State(st): State<SharedState>) -> impl IntoResponse {
    let at = |path: &str| format!("{}{path}", st.issuer);
    let metadata = ProviderMetadata {
        issuer: st.issuer.clone(),
        authorization_endpoint: at(paths::AUTHORIZE),
        token_endpoint: at(paths::TOKEN),
        userinfo_endpoint: at(paths::USERINFO),
        revocation_endpoint: at(paths::REVOCATION),
        introspection_endpoint: at(paths::INTROSPECTION),
        end_session_endpoint: at(paths::END_SESSION),
        registration_endpoint: at(crate::registration::paths::REGISTRATION),
        jwks_uri: at(paths::JWKS),
        scopes_supported: SCOPES.to_vec(),
        response_types_supported: vec!["code"],
        response_modes_supported: vec!["query"],
        grant_types_supported: vec!["authorization_code", "refresh_token", "client_credentials"],
        subject_types_supported: vec!["public"],
        id_token_signing_alg_values_supported: st.keys().algs().map(|a| a.as_str()).collect(),
        token_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none",
        ],
        token_endpoint_auth_signing_alg_values_supported: vec!["RS256", "ES256"],
        revocation_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none",
        ],
        introspection_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        claims_supported: vec![
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "sid",
            "at_hash",
            "azp",
            "amr",
            "name",
            "given_name",
            "family_name",
            "preferred_username",
            "email",
            "email_verified",
            "updated_at",
        ],
        code_challenge_methods_supported: vec!["S256"],
        prompt_values_supported: vec!["none", "login", "consent", "select_account"],
        claims_parameter_supported: false,
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
        authorization_response_iss_parameter_supported: true,
        // OIDC Back-Channel Logout 1.0 §2.1: logout tokens, always with `sid`.
        backchannel_logout_supported: true,
        backchannel_logout_session_supported: true,
    };
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(metadata),
    )
}

/// The JWK Set. Its max-age is under half the publish-ahead time, so a client that caches it
/// has every new key before any token is signed with it.
pub(super) async fn show_jwks(State(st): State<SharedState>) -> impl IntoResponse {
    let max_age = (st.config.keys.publish_ahead.as_secs() / 2).min(300);
    let cache = axum::http::HeaderValue::from_str(&format!("public, max-age={max_age}"))
        .unwrap_or_else(|_| axum::http::HeaderValue::from_static("no-cache"));
    (
        [
            (
                header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, cache),
        ],
        st.keys().jwks_json().to_owned(),
    )
}
