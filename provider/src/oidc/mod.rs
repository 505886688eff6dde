//! The OpenID Connect / OAuth 2.0 protocol endpoints. Route paths are constants used by both
//! the router and the discovery document, so the two cannot drift apart.

pub mod authorize;
mod client_auth;
mod discovery;
mod end_session;
mod error;
mod pkce;
mod revocation;
pub mod token;
pub(crate) mod userinfo;

pub use error::{AuthorizeError, BearerError, TokenError};

use crate::app::SharedState;
use axum::Router;
use axum::routing::get;

/// Endpoint paths, relative to the issuer.
pub mod paths {
    pub const DISCOVERY: &str = "/.well-known/openid-configuration";
    pub const JWKS: &str = "/jwks";
    pub const AUTHORIZE: &str = "/authorize";
    pub const TOKEN: &str = "/token";
    pub const USERINFO: &str = "/userinfo";
    pub const REVOCATION: &str = "/revoke";
    pub const INTROSPECTION: &str = "/introspect";
    pub const END_SESSION: &str = "/logout";
    pub const END_SESSION_CONFIRM: &str = "/logout/confirm";
}

/// Scopes we understand; others are ignored (OIDC Core §3.1.2.1, RFC 6749 §3.3).
pub const SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

pub fn routes() -> Router<SharedState> {
    use axum::routing::post;
    Router::new()
        .route(paths::DISCOVERY, get(discovery::show_configuration))
        .route(paths::JWKS, get(discovery::show_jwks))
        .route(
            paths::AUTHORIZE,
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route(paths::TOKEN, post(token::issue_token))
        .route(paths::REVOCATION, post(revocation::revoke_token))
        .route(paths::INTROSPECTION, post(revocation::introspect_token))
        .route(
            paths::USERINFO,
            get(userinfo::show_userinfo).post(userinfo::show_userinfo_post),
        )
        .route(
            paths::END_SESSION,
            get(end_session::end_session_get).post(end_session::end_session_post),
        )
        .route(
            paths::END_SESSION_CONFIRM,
            post(end_session::confirm_logout),
        )
}
