//! Typed protocol values. What the specifications name with strings (grant types, response
//! types, scopes, prompts, signing algorithms, client authentication methods, token type hints,
//! delivery states, error codes) is parsed once, where it enters (a request, a stored row), into
//! these types; the rules work on the types and never compare strings. An unknown value is an
//! error where it is parsed, never a silent default.
//!
//! Nothing here depends on the rest of the provider: every layer above may use these.

#[macro_use]
mod macros;
mod acr;
mod api_scope;
mod errors;
mod scope;

pub use acr::{Level, Method, Methods, UnknownMethod};
pub use api_scope::{ApiScopes, BadApiScope, MAX_API_SCOPE_LEN, MAX_API_SCOPES};
pub use errors::{AuthorizeErrorCode, BearerErrorCode, RegistrationErrorCode, TokenErrorCode};
pub use scope::{Scope, ScopeSet, UnknownScope};

/// A value that is not one of an enum's (read from the store, where it should never happen).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

wire_enum! {
    /// The grant types we implement (RFC 6749 §4.1, §6 and §4.4; RFC 8693 §2.1; RFC 8628).
    pub enum GrantType {
        AuthorizationCode = "authorization_code",
        RefreshToken = "refresh_token",
        ClientCredentials = "client_credentials",
        TokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange",
        /// RFC 8628 §3.4: a device's poll for the person's approval.
        DeviceCode = "urn:ietf:params:oauth:grant-type:device_code",
    }
}

wire_enum! {
    /// `response_type` values (RFC 6749 §3.1.1): the code flow only (OIDC Core §3.1).
    pub enum ResponseType {
        Code = "code",
    }
}

wire_enum! {
    /// `response_mode` values (OAuth 2.0 Multiple Response Type Encoding Practices §2.1): the
    /// authorization response travels in the redirect URI's query.
    pub enum ResponseMode {
        Query = "query",
    }
}

wire_enum! {
    /// `code_challenge_method` (RFC 7636 §4.3): S256 only; `plain` is refused (RFC 9700
    /// §2.1.1).
    pub enum PkceMethod {
        S256 = "S256",
    }
}

wire_enum! {
    /// `token_type` of the access tokens we issue (RFC 6749 §7.1): Bearer tokens (RFC 6750),
    /// or tokens bound to a DPoP key (RFC 9449 §5).
    pub enum TokenType {
        Bearer = "Bearer",
        DPoP = "DPoP",
    }
}

wire_enum! {
    /// JWS algorithms we sign with (RFC 7518 §3.1). RS256 is the one every OP must support for
    /// ID tokens (OIDC Core §15.1); ES256 is far cheaper to sign.
    pub enum Alg {
        RS256 = "RS256",
        ES256 = "ES256",
        /// Ed25519 (RFC 8037).
        EdDSA = "EdDSA",
    }
}

wire_enum! {
    /// How a client authenticates at the token endpoint (RFC 7591 §2
    /// `token_endpoint_auth_method`; OIDC Core §9).
    #[derive(Default)]
    pub enum AuthMethod {
        /// RFC 7591 §2: the default when a registration names none.
        #[default]
        ClientSecretBasic = "client_secret_basic",
        ClientSecretPost = "client_secret_post",
        /// A public client (no secret); PKCE protects its codes.
        None = "none",
        /// A JWT assertion signed with one of the client's registered keys (RFC 7523).
        PrivateKeyJwt = "private_key_jwt",
    }
}

impl AuthMethod {
    /// Whether the client holds a shared secret.
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }
}

wire_enum! {
    /// `token_type_hint` at revocation and introspection (RFC 7009 §2.1, RFC 7662 §2.1). The
    /// hint only orders the search; an unknown hint is no hint.
    pub enum TokenTypeHint {
        AccessToken = "access_token",
        RefreshToken = "refresh_token",
    }
}

wire_enum! {
    /// Where a queued back-channel logout stands.
    pub enum DeliveryState {
        /// Waiting for its (next) attempt.
        Pending = "pending",
        /// The app answered 2xx (Back-Channel Logout §2.8).
        Delivered = "delivered",
        /// Given up after the last attempt.
        Failed = "failed",
    }
}

/// `prompt` (OIDC Core §3.1.2.1): which of its values a request carries.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
    pub select_account: bool,
}

impl Prompt {
    /// The space-separated values; an unknown value, or `none` with another, is refused with
    /// the reason (OIDC Core §3.1.2.1).
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let mut prompt = Self::default();
        for value in text.split(' ').filter(|s| !s.is_empty()) {
            match value {
                "none" => prompt.none = true,
                "login" => prompt.login = true,
                "consent" => prompt.consent = true,
                "select_account" => prompt.select_account = true,
                _ => return Err("unknown prompt value"),
            }
        }
        if prompt.none && (prompt.login || prompt.consent || prompt.select_account) {
            return Err("prompt=none cannot be combined with other values");
        }
        Ok(prompt)
    }

    /// The values `prompt` may carry, for discovery.
    pub const SUPPORTED: [&'static str; 4] = ["none", "login", "consent", "select_account"];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_values_round_trip_and_unknown_ones_are_refused() {
        for g in GrantType::ALL {
            assert_eq!(GrantType::parse(g.as_str()), Some(*g));
        }
        assert_eq!(GrantType::parse("password"), None);
        assert_eq!(GrantType::parse("Authorization_Code"), None, "exact match");
        for a in AuthMethod::ALL {
            assert_eq!(AuthMethod::parse(a.as_str()), Some(*a));
        }
        assert_eq!(Alg::parse("none"), None);
        assert_eq!(Alg::parse("HS256"), None);
        assert_eq!(
            DeliveryState::parse("delivered"),
            Some(DeliveryState::Delivered)
        );
        assert_eq!(AuthMethod::default(), AuthMethod::ClientSecretBasic);
    }

    #[test]
    fn serde_uses_the_wire_strings_and_refuses_others() {
        assert_eq!(
            serde_json::to_string(&GrantType::RefreshToken).unwrap(),
            "\"refresh_token\""
        );
        let back: Alg = serde_json::from_str("\"ES256\"").unwrap();
        assert_eq!(back, Alg::ES256);
        assert_eq!(
            serde_json::from_str::<Alg>("\"EdDSA\"").unwrap(),
            Alg::EdDSA
        );
        let err = serde_json::from_str::<Alg>("\"HS256\"").unwrap_err();
        assert!(err.to_string().contains("unknown Alg"), "{err}");
    }

    #[test]
    fn prompt_values() {
        let p = Prompt::parse("login consent").unwrap();
        assert!(p.login && p.consent && !p.none && !p.select_account);
        assert_eq!(Prompt::parse("").unwrap(), Prompt::default());
        assert!(Prompt::parse("none").unwrap().none);
        assert!(Prompt::parse("none login").is_err());
        assert!(Prompt::parse("sometimes").is_err());
    }
}
