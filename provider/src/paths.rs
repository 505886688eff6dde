//! Every path the provider serves, relative to the issuer. The router (`web::router`), the
//! discovery document, the redirects between pages and the tests all use these constants, so
//! none of them can drift from the others.

// OpenID Connect and OAuth 2.0 endpoints (advertised in discovery).
/// OIDC Discovery 1.0 §4.
pub const DISCOVERY: &str = "/.well-known/openid-configuration";
/// The JWK Set (RFC 7517 §5).
pub const JWKS: &str = "/jwks";
/// RFC 6749 §3.1, OIDC Core §3.1.2.
pub const AUTHORIZE: &str = "/authorize";
/// RFC 6749 §3.2.
pub const TOKEN: &str = "/token";
/// OIDC Core §5.3.
pub const USERINFO: &str = "/userinfo";
/// RFC 7009.
pub const REVOCATION: &str = "/revoke";
/// RFC 7662.
pub const INTROSPECTION: &str = "/introspect";
/// The revocation feed of an API (server-sent events), advertised as
/// `gatehouse_revocation_feed_endpoint`.
pub const REVOCATION_FEED: &str = "/revocation-feed";
/// RP-Initiated Logout 1.0 §2.
pub const END_SESSION: &str = "/logout";
/// The answer of the sign-out confirmation page.
pub const END_SESSION_CONFIRM: &str = "/logout/confirm";
/// RFC 8628 §3.1.
pub const DEVICE_AUTHORIZATION: &str = "/device_authorization";
/// RFC 9126 §2.
pub const PUSHED_AUTHORIZATION: &str = "/par";
/// RFC 7591 §3.
pub const REGISTRATION: &str = "/register";
/// RFC 7592 §2: the client configuration endpoint, `/register/{client_id}`.
pub const REGISTRATION_CLIENT: &str = "/register/{client_id}";

// Pages for people.
/// The account home.
pub const HOME: &str = "/";
pub const LOGIN: &str = "/login";
/// The second step of a sign-in: an authenticator app's code.
pub const LOGIN_CODE: &str = "/login/code";
/// Step-up: the second factor an app's request needs, for a browser signed in with a password.
pub const LOGIN_STEP_UP: &str = "/login/step-up";
/// Signing in with a passkey alone (a discoverable credential).
pub const LOGIN_PASSKEY: &str = "/login/passkey";
/// The options of a passkey sign-in (alone, as the second step, or a step-up), as JSON.
pub const LOGIN_PASSKEY_OPTIONS: &str = "/login/passkey/options";
pub const CONSENT: &str = "/consent";
/// Where a person types a device's user code (RFC 8628 §3.3 `verification_uri`), and answers.
pub const DEVICE: &str = "/device";
pub const DEVICE_DECIDE: &str = "/device/decide";
/// "Your sessions".
pub const SESSIONS: &str = "/account/sessions";
pub const SESSIONS_REVOKE: &str = "/account/sessions/revoke";
pub const SESSIONS_REVOKE_ALL: &str = "/account/sessions/revoke-all";
/// "Connected apps".
pub const APPS: &str = "/account/apps";
pub const APPS_DISCONNECT: &str = "/account/apps/disconnect";
/// "Security": second factors.
pub const SECURITY: &str = "/account/security";
pub const SECURITY_TOTP: &str = "/account/security/totp";
pub const SECURITY_TOTP_CONFIRM: &str = "/account/security/totp/confirm";
pub const SECURITY_TOTP_REMOVE: &str = "/account/security/totp/remove";
pub const SECURITY_PASSKEYS: &str = "/account/security/passkeys";
/// The options of a passkey registration, as JSON.
pub const SECURITY_PASSKEYS_OPTIONS: &str = "/account/security/passkeys/options";
pub const SECURITY_PASSKEYS_REMOVE: &str = "/account/security/passkeys/remove";
/// The developer console.
pub const DEVELOPER: &str = "/developer";
pub const DEVELOPER_APPS: &str = "/developer/apps";
pub const DEVELOPER_NEW_APP: &str = "/developer/apps/new";
pub const DEVELOPER_APP: &str = "/developer/apps/{client_id}";
pub const DEVELOPER_APP_ROTATE: &str = "/developer/apps/{client_id}/rotate-secret";
pub const DEVELOPER_APP_DELETE: &str = "/developer/apps/{client_id}/delete";

// Operations.
pub const STYLESHEET: &str = "/static/style.css";
/// The one script: passkey ceremonies (`navigator.credentials`).
pub const PASSKEY_SCRIPT: &str = "/static/passkeys.js";
/// The process is alive.
pub const HEALTHZ: &str = "/healthz";
/// The database and the session store answer.
pub const READYZ: &str = "/readyz";
/// Prometheus text format.
pub const METRICS: &str = "/metrics";

/// A path template with its `{client_id}` filled in.
pub fn for_client(template: &str, client_id: &str) -> String {
    template.replace("{client_id}", client_id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn templates_are_filled() {
        assert_eq!(
            super::for_client(super::DEVELOPER_APP_ROTATE, "abc"),
            "/developer/apps/abc/rotate-secret"
        );
        assert_eq!(
            super::for_client(super::REGISTRATION_CLIENT, "x"),
            "/register/x"
        );
    }
}
