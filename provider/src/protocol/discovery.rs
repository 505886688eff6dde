//! The provider metadata (OIDC Discovery 1.0 §3, RFC 8414 §2, RFC 9207 §3), built from the
//! path constants and the typed values, so that what is advertised is what is served.

use crate::context::Ctx;
use crate::paths;
use crate::types::{
    Alg, AuthMethod, GrantType, Level, PkceMethod, Prompt, ResponseMode, ResponseType, Scope,
};
use serde::Serialize;

/// The provider metadata we publish.
#[derive(Debug, Serialize)]
pub struct ProviderMetadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: String,
    revocation_endpoint: String,
    introspection_endpoint: String,
    end_session_endpoint: String,
    registration_endpoint: String,
    /// RFC 8628 §4.
    device_authorization_endpoint: String,
    /// RFC 9126 §5.
    pushed_authorization_request_endpoint: String,
    require_pushed_authorization_requests: bool,
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
    /// The levels of sign-in we answer for (`acr`), lowest first.
    acr_values_supported: Vec<&'static str>,
    code_challenge_methods_supported: Vec<&'static str>,
    prompt_values_supported: Vec<&'static str>,
    claims_parameter_supported: bool,
    request_parameter_supported: bool,
    /// RFC 9449 §5.1: the algorithms a DPoP proof may be signed with.
    dpop_signing_alg_values_supported: Vec<&'static str>,
    /// RFC 9101 §10.1 (OIDC Discovery §3): how request objects may be signed.
    request_object_signing_alg_values_supported: Vec<&'static str>,
    /// OIDC Discovery §3: a `request_uri` the provider would fetch. Not offered: the only
    /// `request_uri`s accepted are those of the PAR endpoint (RFC 9126 §4).
    request_uri_parameter_supported: bool,
    authorization_response_iss_parameter_supported: bool,
    backchannel_logout_supported: bool,
    backchannel_logout_session_supported: bool,
    frontchannel_logout_supported: bool,
    frontchannel_logout_session_supported: bool,
    /// Where an API's client subscribes to the revocations of its tokens (an extension,
    /// Discovery 1.0 §3 allows more members; see `crate::feed`).
    gatehouse_revocation_feed_endpoint: String,
}

/// The claims our ID tokens and userinfo carry (OIDC Core §2, §5.1).
const CLAIMS: [&str; 19] = [
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
    "acr",
    "amr",
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "email",
    "email_verified",
    "updated_at",
];

fn names<T: Copy>(values: &[T], name: fn(T) -> &'static str) -> Vec<&'static str> {
    values.iter().map(|v| name(*v)).collect()
}

impl ProviderMetadata {
    pub fn of(ctx: &Ctx) -> Self {
        let at = |path: &str| ctx.url(path);
        let auth_methods = names(AuthMethod::ALL, AuthMethod::as_str);
        let confidential: Vec<&'static str> = AuthMethod::ALL
            .iter()
            .filter(|m| **m != AuthMethod::None)
            .map(|m| m.as_str())
            .collect();
        Self {
            issuer: ctx.issuer.clone(),
            authorization_endpoint: at(paths::AUTHORIZE),
            token_endpoint: at(paths::TOKEN),
            userinfo_endpoint: at(paths::USERINFO),
            revocation_endpoint: at(paths::REVOCATION),
            introspection_endpoint: at(paths::INTROSPECTION),
            end_session_endpoint: at(paths::END_SESSION),
            registration_endpoint: at(paths::REGISTRATION),
            device_authorization_endpoint: at(paths::DEVICE_AUTHORIZATION),
            pushed_authorization_request_endpoint: at(paths::PUSHED_AUTHORIZATION),
            // Per client (`require_pushed_authorization_requests`), not for all.
            require_pushed_authorization_requests: false,
            jwks_uri: at(paths::JWKS),
            scopes_supported: names(Scope::ALL, Scope::as_str),
            response_types_supported: names(ResponseType::ALL, ResponseType::as_str),
            response_modes_supported: names(ResponseMode::ALL, ResponseMode::as_str),
            grant_types_supported: names(GrantType::ALL, GrantType::as_str),
            subject_types_supported: vec!["public"],
            id_token_signing_alg_values_supported: ctx
                .keys
                .current()
                .algs()
                .map(|a| a.as_str())
                .collect(),
            token_endpoint_auth_methods_supported: auth_methods.clone(),
            // A `private_key_jwt` assertion may use any algorithm we sign with (`client_auth`).
            token_endpoint_auth_signing_alg_values_supported: names(Alg::ALL, Alg::as_str),
            revocation_endpoint_auth_methods_supported: auth_methods,
            // Introspection tells what a token grants: confidential clients only.
            introspection_endpoint_auth_methods_supported: confidential,
            claims_supported: CLAIMS.to_vec(),
            acr_values_supported: Level::supported(),
            code_challenge_methods_supported: names(PkceMethod::ALL, PkceMethod::as_str),
            prompt_values_supported: Prompt::SUPPORTED.to_vec(),
            // OIDC Core §5.5: its `acr` member is honoured (`authorize::level`); the other
            // claims it names are answered by the scopes, as §5.5 allows.
            claims_parameter_supported: true,
            request_parameter_supported: true,
            dpop_signing_alg_values_supported: names(&crate::protocol::dpop::ALGS, Alg::as_str),
            request_object_signing_alg_values_supported: names(Alg::ALL, Alg::as_str),
            request_uri_parameter_supported: false,
            authorization_response_iss_parameter_supported: true,
            // OIDC Back-Channel Logout 1.0 §2.1: logout tokens, always with `sid`.
            backchannel_logout_supported: true,
            backchannel_logout_session_supported: true,
            frontchannel_logout_supported: true,
            frontchannel_logout_session_supported: true,
            gatehouse_revocation_feed_endpoint: at(paths::REVOCATION_FEED),
        }
    }
}
