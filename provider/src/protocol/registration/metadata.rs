//! Client metadata (RFC 7591 §2, OIDC Registration §2, Back-Channel Logout §2.2) and the one
//! validation every way of registering goes through: the command line, the developer console
//! and the registration endpoint give the same answer, with the same words, for the same input.

use crate::types::{Alg, AuthMethod, GrantType, Level, RegistrationErrorCode, ResponseType};
use infra::outbound::{Outbound, Refused};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Upper bounds that keep one registration small.
const MAX_URIS: usize = 20;
const MAX_URI_LEN: usize = 2000;
const MAX_NAME_CHARS: usize = 100;
const MAX_JWKS_BYTES: usize = 16 * 1024;

/// Schemes that run code or read local data in a browser: never a redirect target.
const DANGEROUS_SCHEMES: [&str; 7] = [
    "javascript",
    "data",
    "vbscript",
    "file",
    "blob",
    "filesystem",
    "about",
];

/// The client metadata of a registration request, as RFC 7591 §2 names it. Fields we do not
/// know are ignored (RFC 7591 §2: "the authorization server MUST ignore any client metadata
/// it does not understand").
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct ClientMetadata {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_session_required: Option<bool>,
    /// Front-Channel Logout §2: rendered in an iframe on the provider's signed-out page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_session_required: Option<bool>,
    /// RFC 9126 §6: every authorization request of the client is pushed first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_pushed_authorization_requests: Option<bool>,
    /// RFC 9449 §5.2: every access token of the client is bound to a DPoP key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_bound_access_tokens: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signed_response_alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// The levels of sign-in asked when a request names none (OIDC Registration §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_acr_values: Option<Vec<String>>,
    /// Not supported (we hold the keys a client registers); refused with a clear message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
}

/// A refused registration: the code (RFC 7591 §3.2.2: `invalid_redirect_uri` or
/// `invalid_client_metadata`), the form field it concerns, and a sentence for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataError {
    pub code: RegistrationErrorCode,
    /// The metadata field at fault (`redirect_uris`, `grant_types`, …).
    pub field: &'static str,
    pub description: String,
}

impl MetadataError {
    fn redirect(field: &'static str, description: String) -> Self {
        Self {
            code: RegistrationErrorCode::InvalidRedirectUri,
            field,
            description,
        }
    }

    pub fn metadata(field: &'static str, description: impl Into<String>) -> Self {
        Self {
            code: RegistrationErrorCode::InvalidClientMetadata,
            field,
            description: description.into(),
        }
    }
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl std::error::Error for MetadataError {}

/// Metadata that passed validation, with every default filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidMetadata {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    pub frontchannel_logout_uri: Option<String>,
    pub frontchannel_logout_session_required: bool,
    pub require_par: bool,
    pub dpop_bound: bool,
    pub grant_types: Vec<GrantType>,
    pub auth_method: AuthMethod,
    pub id_token_alg: Alg,
    /// A JWK Set (compact JSON), for `private_key_jwt`.
    pub jwks: Option<String>,
    pub default_acr_values: Vec<Level>,
}

impl ClientMetadata {
    /// Checks every rule and fills in the defaults of RFC 7591 §2 (`client_secret_basic`,
    /// `authorization_code`, `code`) and OIDC Registration §2 (`RS256`). `outbound` says
    /// where the provider may send back-channel logouts.
    pub fn validate(&self, outbound: &Outbound) -> Result<ValidMetadata, MetadataError> {
        let auth_method = match self.token_endpoint_auth_method.as_deref() {
            None => AuthMethod::default(),
            Some(m) => AuthMethod::parse(m).ok_or_else(|| {
                MetadataError::metadata(
                    "token_endpoint_auth_method",
                    format!(
                        "token_endpoint_auth_method {m:?} is not supported (use one of {})",
                        joined(AuthMethod::ALL, AuthMethod::as_str)
                    ),
                )
            })?,
        };
        let grant_types = self.grant_types()?;
        self.check_response_types(&grant_types)?;
        let has = |g: GrantType| grant_types.contains(&g);
        for g in [GrantType::ClientCredentials, GrantType::TokenExchange] {
            if has(g) && auth_method == AuthMethod::None {
                return Err(MetadataError::metadata(
                    "grant_types",
                    format!(
                        "{g} needs a confidential client: a public client \
                         (token_endpoint_auth_method none) cannot use it"
                    ),
                ));
            }
        }
        if has(GrantType::RefreshToken)
            && !has(GrantType::AuthorizationCode)
            && !has(GrantType::DeviceCode)
        {
            return Err(MetadataError::metadata(
                "grant_types",
                "refresh_token is only issued with authorization_code or the device flow; \
                 register one of them too",
            ));
        }
        let uses_code = has(GrantType::AuthorizationCode);
        let redirect_uris = check_uris("redirect_uris", &self.redirect_uris)?;
        if uses_code && redirect_uris.is_empty() {
            return Err(MetadataError::redirect(
                "redirect_uris",
                "at least one redirect URI is required for the authorization_code grant".into(),
            ));
        }
        let post_logout_redirect_uris = check_uris(
            "post_logout_redirect_uris",
            self.post_logout_redirect_uris
                .as_deref()
                .unwrap_or_default(),
        )?;
        let backchannel_logout_uri = match self.backchannel_logout_uri.as_deref() {
            None | Some("") => None,
            Some(uri) => {
                // Back-Channel Logout §2.2: absolute, no fragment; and somewhere the provider
                // may post to (RFC 9700 §4.1.1 on URIs a client registers; never inward).
                check_backchannel_uri(uri, outbound).map_err(|why| {
                    MetadataError::metadata(
                        "backchannel_logout_uri",
                        format!("backchannel_logout_uri {}: {why}", shown(uri)),
                    )
                })?;
                Some(uri.to_owned())
            }
        };
        let frontchannel_logout_uri = match self.frontchannel_logout_uri.as_deref() {
            None | Some("") => None,
            Some(uri) => {
                check_frontchannel_uri(uri, &redirect_uris).map_err(|why| {
                    MetadataError::metadata(
                        "frontchannel_logout_uri",
                        format!("frontchannel_logout_uri {}: {why}", shown(uri)),
                    )
                })?;
                Some(uri.to_owned())
            }
        };
        let id_token_alg = match self.id_token_signed_response_alg.as_deref() {
            // OIDC Registration §2: RS256 when none is named.
            None => Alg::RS256,
            Some(a) => Alg::parse(a).ok_or_else(|| {
                MetadataError::metadata(
                    "id_token_signed_response_alg",
                    format!(
                        "id_token_signed_response_alg {} is not supported (use one of {})",
                        shown(a),
                        joined(Alg::ALL, Alg::as_str)
                    ),
                )
            })?,
        };
        if self.jwks_uri.is_some() {
            return Err(MetadataError::metadata(
                "jwks_uri",
                "jwks_uri is not supported: register the public keys themselves in jwks",
            ));
        }
        let jwks = match (&self.jwks, auth_method) {
            (Some(v), _) if !v.is_null() => Some(check_jwks(v)?),
            (_, AuthMethod::PrivateKeyJwt) => {
                return Err(MetadataError::metadata(
                    "jwks",
                    "private_key_jwt needs jwks: the public keys the client signs with",
                ));
            }
            _ => None,
        };
        Ok(ValidMetadata {
            default_acr_values: self.default_acr_values()?,
            name: self.name()?,
            redirect_uris,
            post_logout_redirect_uris,
            backchannel_logout_uri,
            backchannel_logout_session_required: self
                .backchannel_logout_session_required
                .unwrap_or(false),
            frontchannel_logout_session_required: frontchannel_logout_uri.is_some()
                && self.frontchannel_logout_session_required.unwrap_or(false),
            frontchannel_logout_uri,
            require_par: self.require_pushed_authorization_requests.unwrap_or(false),
            dpop_bound: self.dpop_bound_access_tokens.unwrap_or(false),
            grant_types,
            auth_method,
            id_token_alg,
            jwks,
        })
    }

    /// `default_acr_values`: levels we answer for (`acr_values_supported`), each once.
    fn default_acr_values(&self) -> Result<Vec<Level>, MetadataError> {
        let mut levels = Vec::new();
        for value in self.default_acr_values.iter().flatten() {
            let level = Level::parse(value).ok_or_else(|| {
                MetadataError::metadata(
                    "default_acr_values",
                    format!(
                        "default_acr_values {} is not supported (use one of {})",
                        shown(value),
                        joined(Level::ALL, Level::as_str)
                    ),
                )
            })?;
            if !levels.contains(&level) {
                levels.push(level);
            }
        }
        Ok(levels)
    }

    fn name(&self) -> Result<String, MetadataError> {
        let name = self.client_name.as_deref().unwrap_or("").trim();
        if name.is_empty() {
            return Ok("Unnamed app".to_owned());
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(MetadataError::metadata(
                "client_name",
                format!("client_name is longer than {MAX_NAME_CHARS} characters"),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(MetadataError::metadata(
                "client_name",
                "client_name contains control characters",
            ));
        }
        if name.chars().any(invisible_or_reordering) {
            return Err(MetadataError::metadata(
                "client_name",
                "client_name contains bidirectional or invisible formatting characters",
            ));
        }
        Ok(name.to_owned())
    }

    fn grant_types(&self) -> Result<Vec<GrantType>, MetadataError> {
        let Some(given) = &self.grant_types else {
            // RFC 7591 §2: authorization_code when none is named.
            return Ok(vec![GrantType::AuthorizationCode]);
        };
        if given.is_empty() {
            return Err(MetadataError::metadata(
                "grant_types",
                "grant_types is empty: name at least one grant type",
            ));
        }
        let mut out: Vec<GrantType> = Vec::new();
        for g in given {
            let grant = GrantType::parse(g).ok_or_else(|| {
                MetadataError::metadata(
                    "grant_types",
                    format!(
                        "grant type {} is not supported (use {})",
                        shown(g),
                        joined(GrantType::ALL, GrantType::as_str)
                    ),
                )
            })?;
            if !out.contains(&grant) {
                out.push(grant);
            }
        }
        Ok(out)
    }

    /// RFC 7591 §2.1: `response_types` and `grant_types` must agree; we only speak `code`.
    fn check_response_types(&self, grant_types: &[GrantType]) -> Result<(), MetadataError> {
        let uses_code = grant_types.contains(&GrantType::AuthorizationCode);
        let Some(types) = &self.response_types else {
            return Ok(());
        };
        if let Some(t) = types.iter().find(|t| ResponseType::parse(t).is_none()) {
            return Err(MetadataError::metadata(
                "response_types",
                format!("response type {} is not supported (only code)", shown(t)),
            ));
        }
        if uses_code == types.is_empty() {
            return Err(MetadataError::metadata(
                "response_types",
                "response_types and grant_types disagree: the code response type goes with \
                 the authorization_code grant (RFC 7591 §2.1)",
            ));
        }
        Ok(())
    }
}

/// The wire names of `values`, comma-separated (for error messages).
fn joined<T: Copy>(values: &[T], name: fn(T) -> &'static str) -> String {
    values
        .iter()
        .map(|v| name(*v))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A URI quoted for an error message: at most 100 characters, control characters escaped.
fn shown(s: &str) -> String {
    let cut: String = s.chars().take(100).collect();
    let mut out = format!("{cut:?}");
    if s.chars().count() > 100 {
        out.push('…');
    }
    out
}

fn check_uris(field: &'static str, uris: &[String]) -> Result<Vec<String>, MetadataError> {
    if uris.len() > MAX_URIS {
        return Err(MetadataError::redirect(
            field,
            format!("{field} lists more than {MAX_URIS} URIs"),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for uri in uris {
        check_uri(uri)
            .map_err(|why| MetadataError::redirect(field, format!("{} {why}", shown(uri))))?;
        if !out.contains(uri) {
            out.push(uri.clone());
        }
    }
    Ok(out)
}

/// Whether a host is this machine: loopback addresses, `localhost` and `*.localhost`
/// (RFC 6761 §6.3, RFC 8252 §7.3), where plain http cannot leave the machine.
fn is_local_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// One redirect-style URI: absolute, https (http only for a local host), no fragment, no
/// wildcard, no credentials, nothing a browser would execute (RFC 9700 §2.1 and §4.1.1, OIDC
/// Registration §2, RFC 6749 §3.1.2). The string is kept as given, since redirect URIs are
/// compared exactly (RFC 9700 §4.1.3), so it must not rely on the parser's normalisation.
pub(crate) fn check_uri(uri: &str) -> Result<(), String> {
    let parsed = check_shape(uri)?;
    let Some(host) = parsed.host() else {
        return Err("has no host".into());
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_local_host(&host) => Ok(()),
        "http" => Err("must use https (plain http is only for loopback and *.localhost)".into()),
        other => Err(format!(
            "uses the {other}: scheme; only https (and http on loopback) is allowed"
        )),
    }
}

/// What [`check_uri`] asks of every URI besides its scheme: the URI, parsed.
fn check_shape(uri: &str) -> Result<url::Url, String> {
    if uri.is_empty() {
        return Err("is empty".into());
    }
    if uri.len() > MAX_URI_LEN {
        return Err(format!("is longer than {MAX_URI_LEN} characters"));
    }
    if uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("contains spaces or control characters".into());
    }
    // The scheme, read the way a browser reads it, before the parser sees the rest.
    let scheme = uri
        .split_once(':')
        .map(|(s, _)| s.to_ascii_lowercase())
        .unwrap_or_default();
    if DANGEROUS_SCHEMES.contains(&scheme.as_str()) {
        return Err(format!("uses the {scheme}: scheme, which is never allowed"));
    }
    let parsed = url::Url::parse(uri).map_err(|_| "is not an absolute URI".to_owned())?;
    if uri.contains('#') {
        return Err("contains a fragment (#), which a redirect URI must not have".into());
    }
    if uri.contains('*') {
        return Err("contains a wildcard (*); register every URI exactly".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("contains credentials (user@host)".into());
    }
    Ok(parsed)
}

/// A back-channel logout URI: the shape of every URI ([`check_shape`]), then the outbound
/// policy instead of the browser's scheme rule (https, not inward, unless the operator allows
/// the host).
fn check_backchannel_uri(uri: &str, outbound: &Outbound) -> Result<(), String> {
    let parsed = check_shape(uri)?;
    outbound
        .check_url(&parsed)
        .map_err(|refused| match refused {
            Refused::NotHttp => "must be an https URL".to_owned(),
            Refused::NotHttps => {
                "must use https (plain http only to hosts the operator allows in outbound.allow)"
                    .to_owned()
            }
            Refused::Inward => "points at a local or private address, where the provider sends \
                            nothing unless the operator allows it (outbound.allow)"
                .to_owned(),
        })
}

/// A front-channel logout URI (Front-Channel Logout §2): the shape of every URI
/// ([`check_shape`]; absolute, no fragment, a query allowed), and the scheme, host and port
/// of one of the client's redirect URIs, which the spec requires: a registrant can have the
/// signed-out page frame its own app only.
fn check_frontchannel_uri(uri: &str, redirect_uris: &[String]) -> Result<(), String> {
    let parsed = check_shape(uri)?;
    // Its origin goes into the signed-out page's CSP (`frame-src`): a host of letters,
    // digits, '-' and '.' (or an IPv4 address), nothing that could end a source expression.
    let plain_host = match parsed.host() {
        Some(url::Host::Domain(d)) => d
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.')),
        Some(url::Host::Ipv4(_)) => true,
        _ => false,
    };
    if !plain_host {
        return Err("must have a host of letters, digits, '-' and '.', or an IPv4 address".into());
    }
    // The provider adds these (Front-Channel Logout §2).
    if parsed.query_pairs().any(|(k, _)| k == "iss" || k == "sid") {
        return Err("must not carry iss or sid itself: the provider adds them".into());
    }
    let own = redirect_uris
        .iter()
        .filter_map(|r| url::Url::parse(r).ok())
        .any(|r| r.origin() == parsed.origin() && parsed.origin().is_tuple());
    if !own {
        return Err("must have the scheme, host and port of a registered redirect URI".into());
    }
    Ok(())
}

/// A JWK Set of public keys we can verify with.
fn check_jwks(v: &serde_json::Value) -> Result<String, MetadataError> {
    let text = serde_json::to_string(v).unwrap_or_default();
    if text.len() > MAX_JWKS_BYTES {
        return Err(MetadataError::metadata(
            "jwks",
            format!("jwks is larger than {MAX_JWKS_BYTES} bytes"),
        ));
    }
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(v.clone())
        .map_err(|e| MetadataError::metadata("jwks", format!("jwks is not a JWK Set: {e}")))?;
    if set.keys.is_empty() {
        return Err(MetadataError::metadata("jwks", "jwks has no keys"));
    }
    // RFC 7517 §4: "d" (and the other private members) mark private key material, which a
    // client must never hand to anyone.
    let has_private = v
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|keys| keys.iter().any(|k| k.get("d").is_some()));
    if has_private {
        return Err(MetadataError::metadata(
            "jwks",
            "jwks contains a private key; register only the public keys",
        ));
    }
    for key in &set.keys {
        jsonwebtoken::DecodingKey::from_jwk(key).map_err(|e| {
            MetadataError::metadata("jwks", format!("a key in jwks cannot be used: {e}"))
        })?;
        // jsonwebtoken does not look at an OKP key's curve: Ed25519 is the one EdDSA means
        // here (RFC 8037 §3.1); an X25519 or Ed448 key would be taken for one.
        if let jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(p) = &key.algorithm
            && p.curve != jsonwebtoken::jwk::EllipticCurve::Ed25519
        {
            return Err(MetadataError::metadata(
                "jwks",
                "an OKP key in jwks must be on Ed25519 (EdDSA)",
            ));
        }
    }
    Ok(text)
}

/// Characters that reorder or hide text (Unicode bidirectional embeddings, overrides and
/// isolates, the directional marks, the zero-width space, invisible operators and the
/// byte-order mark): an app name with them could display as another app's name on the
/// consent page. The zero-width (non-)joiners stay allowed: scripts and emoji need them.
fn invisible_or_reordering(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200B}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_uri(uri: &str) -> ClientMetadata {
        ClientMetadata {
            redirect_uris: vec![uri.to_owned()],
            ..ClientMetadata::default()
        }
    }

    fn refused(m: &ClientMetadata) -> MetadataError {
        match m.validate(&Outbound::default()) {
            Ok(v) => panic!("accepted {v:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_frontchannel_uri_is_on_a_redirect_uris_plain_origin() {
        let ok = ["https://app.example/cb".to_owned()];
        assert!(check_frontchannel_uri("https://app.example/fc?x=1", &ok).is_ok());
        assert!(check_frontchannel_uri("https://other.example/fc", &ok).is_err());
        assert!(check_frontchannel_uri("https://app.example/fc?sid=1", &ok).is_err());
        // A host that would end a CSP source expression, even on a registered origin.
        let odd = [
            "https://a,frame-src/cb".to_owned(),
            "https://a;sandbox/cb".to_owned(),
        ];
        for uri in ["https://a,frame-src/fc", "https://a;sandbox/fc"] {
            let e = check_frontchannel_uri(uri, &odd).unwrap_err();
            assert!(e.contains("host"), "{uri}: {e}");
        }
    }

    #[test]
    fn an_okp_key_must_be_ed25519() {
        let key = |crv: &str| ClientMetadata {
            redirect_uris: vec!["https://app.example/cb".into()],
            token_endpoint_auth_method: Some("private_key_jwt".into()),
            jwks: Some(serde_json::json!({"keys": [{"kty": "OKP", "crv": crv,
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]})),
            ..ClientMetadata::default()
        };
        let policy = Outbound::parse::<&str>(&[]).unwrap();
        assert!(key("Ed25519").validate(&policy).is_ok());
        let e = key("X25519").validate(&policy).unwrap_err();
        assert_eq!(e.field, "jwks", "{e:?}");
    }

    #[test]
    fn backchannel_uris_follow_the_outbound_policy() {
        let m = ClientMetadata {
            backchannel_logout_uri: Some("http://app-a.localhost:5001/bc".into()),
            ..with_uri("https://a.example/cb")
        };
        let e = m.validate(&Outbound::default()).unwrap_err();
        assert_eq!(e.field, "backchannel_logout_uri");
        let demo = Outbound::parse(&["*.localhost"]).unwrap();
        let v = m.validate(&demo).unwrap();
        assert_eq!(
            v.backchannel_logout_uri.as_deref(),
            Some("http://app-a.localhost:5001/bc")
        );
    }

    #[test]
    fn default_acr_values_are_our_levels_each_once() {
        let m = ClientMetadata {
            default_acr_values: Some(vec![
                "urn:gatehouse:acr:mfa".into(),
                "urn:gatehouse:acr:pwd".into(),
                "urn:gatehouse:acr:mfa".into(),
            ]),
            ..with_uri("https://app.example.com/cb")
        };
        let v = m.validate(&Outbound::default()).unwrap();
        assert_eq!(v.default_acr_values, [Level::Mfa, Level::Pwd]);
        let none = with_uri("https://app.example.com/cb");
        assert!(
            none.validate(&Outbound::default())
                .unwrap()
                .default_acr_values
                .is_empty()
        );
    }

    #[test]
    fn good_uris_pass_as_given() {
        for uri in [
            "https://app.example.com/callback",
            "https://app.example.com/cb?x=1",
            "http://127.0.0.1:8080/cb",
            "http://[::1]/cb",
            "http://localhost:3000/cb",
            "http://app-a.localhost:5001/callback",
        ] {
            let v = with_uri(uri).validate(&Outbound::default()).unwrap();
            assert_eq!(v.redirect_uris, [uri]);
            assert_eq!(v.auth_method, AuthMethod::ClientSecretBasic);
            assert_eq!(v.grant_types, [GrantType::AuthorizationCode]);
            assert_eq!(v.id_token_alg, Alg::RS256);
        }
    }

    #[test]
    fn each_redirect_rule_refuses_its_input() {
        for (uri, words) in [
            ("/callback", "absolute"),
            ("app.example.com/cb", "absolute"),
            ("https://app.example.com/cb#top", "fragment"),
            ("https://app.example.com/cb#", "fragment"),
            ("http://app.example.com/cb", "https"),
            ("javascript:alert(1)", "javascript"),
            ("JavaScript://x/%0aalert(1)", "javascript"),
            ("data:text/html,hi", "data"),
            ("vbscript:x", "vbscript"),
            ("file:///etc/passwd", "file"),
            ("https://*.example.com/cb", "wildcard"),
            ("https://app.example.com/*", "wildcard"),
            ("https://user:pw@app.example.com/cb", "credentials"),
            ("https://app.example.com/cb\n", "control"),
            (" https://app.example.com/cb", "spaces"),
            ("ftp://app.example.com/cb", "ftp"),
            ("http://localhost.evil.com/cb", "https"),
            ("", "empty"),
        ] {
            let e = refused(&with_uri(uri));
            assert_eq!(e.code, RegistrationErrorCode::InvalidRedirectUri, "{uri}");
            assert_eq!(e.field, "redirect_uris");
            assert!(e.description.contains(words), "{uri}: {}", e.description);
        }
        let long = format!("https://app.example.com/{}", "a".repeat(2100));
        assert!(refused(&with_uri(&long)).description.contains("longer"));
        let many = ClientMetadata {
            redirect_uris: (0..21).map(|i| format!("https://a.example/{i}")).collect(),
            ..ClientMetadata::default()
        };
        assert!(refused(&many).description.contains("more than 20"));
        let none = ClientMetadata::default();
        assert_eq!(
            refused(&none).code,
            RegistrationErrorCode::InvalidRedirectUri
        );
        let logout = ClientMetadata {
            post_logout_redirect_uris: Some(vec!["javascript:x".into()]),
            ..with_uri("https://a.example/cb")
        };
        let e = refused(&logout);
        assert_eq!(
            (e.code, e.field),
            (
                RegistrationErrorCode::InvalidRedirectUri,
                "post_logout_redirect_uris"
            )
        );
    }

    #[test]
    fn metadata_rules_refuse_their_input() {
        let base = with_uri("https://a.example/cb");
        let cases: Vec<(ClientMetadata, &str, &str)> = vec![
            (
                ClientMetadata {
                    token_endpoint_auth_method: Some("client_secret_jwt".into()),
                    ..base.clone()
                },
                "token_endpoint_auth_method",
                "not supported",
            ),
            (
                ClientMetadata {
                    grant_types: Some(vec!["implicit".into()]),
                    ..base.clone()
                },
                "grant_types",
                "implicit",
            ),
            (
                ClientMetadata {
                    grant_types: Some(vec!["password".into()]),
                    ..base.clone()
                },
                "grant_types",
                "password",
            ),
            (
                ClientMetadata {
                    grant_types: Some(vec![]),
                    ..base.clone()
                },
                "grant_types",
                "empty",
            ),
            (
                ClientMetadata {
                    grant_types: Some(vec!["refresh_token".into()]),
                    redirect_uris: vec![],
                    ..base.clone()
                },
                "grant_types",
                "authorization_code",
            ),
            (
                ClientMetadata {
                    grant_types: Some(vec!["client_credentials".into()]),
                    token_endpoint_auth_method: Some("none".into()),
                    ..base.clone()
                },
                "grant_types",
                "public client",
            ),
            (
                ClientMetadata {
                    response_types: Some(vec!["token".into()]),
                    ..base.clone()
                },
                "response_types",
                "only code",
            ),
            (
                ClientMetadata {
                    response_types: Some(vec!["code".into()]),
                    grant_types: Some(vec!["client_credentials".into()]),
                    ..base.clone()
                },
                "response_types",
                "disagree",
            ),
            (
                ClientMetadata {
                    id_token_signed_response_alg: Some("none".into()),
                    ..base.clone()
                },
                "id_token_signed_response_alg",
                "not supported",
            ),
            (
                ClientMetadata {
                    default_acr_values: Some(vec!["urn:elsewhere:gold".into()]),
                    ..base.clone()
                },
                "default_acr_values",
                "urn:gatehouse:acr:mfa",
            ),
            (
                ClientMetadata {
                    token_endpoint_auth_method: Some("private_key_jwt".into()),
                    ..base.clone()
                },
                "jwks",
                "needs jwks",
            ),
            (
                ClientMetadata {
                    jwks: Some(serde_json::json!({"keys": []})),
                    ..base.clone()
                },
                "jwks",
                "no keys",
            ),
            (
                ClientMetadata {
                    jwks: Some(serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256",
                        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
                        "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}]})),
                    ..base.clone()
                },
                "jwks",
                "private key",
            ),
            (
                ClientMetadata {
                    jwks_uri: Some("https://a.example/jwks".into()),
                    ..base.clone()
                },
                "jwks_uri",
                "not supported",
            ),
            (
                ClientMetadata {
                    backchannel_logout_uri: Some("https://a.example/bc#x".into()),
                    ..base.clone()
                },
                "backchannel_logout_uri",
                "fragment",
            ),
            (
                ClientMetadata {
                    backchannel_logout_uri: Some("http://a.example/bc".into()),
                    ..base.clone()
                },
                "backchannel_logout_uri",
                "https",
            ),
            (
                ClientMetadata {
                    backchannel_logout_uri: Some("https://169.254.169.254/latest".into()),
                    ..base.clone()
                },
                "backchannel_logout_uri",
                "local or private",
            ),
            (
                ClientMetadata {
                    backchannel_logout_uri: Some("https://admin.localhost:8080/x".into()),
                    ..base.clone()
                },
                "backchannel_logout_uri",
                "local or private",
            ),
            (
                ClientMetadata {
                    backchannel_logout_uri: Some("http://127.0.0.1:9000/admin".into()),
                    ..base.clone()
                },
                "backchannel_logout_uri",
                "https",
            ),
            (
                ClientMetadata {
                    client_name: Some("x".repeat(101)),
                    ..base.clone()
                },
                "client_name",
                "longer",
            ),
            (
                ClientMetadata {
                    client_name: Some("evil\u{7}".into()),
                    ..base.clone()
                },
                "client_name",
                "control",
            ),
            (
                // "App A" written backwards behind a right-to-left override.
                ClientMetadata {
                    client_name: Some("\u{202E}A ppA".into()),
                    ..base.clone()
                },
                "client_name",
                "bidirectional",
            ),
            (
                ClientMetadata {
                    client_name: Some("App\u{200B} A".into()),
                    ..base
                },
                "client_name",
                "invisible",
            ),
        ];
        for (m, field, words) in cases {
            let e = refused(&m);
            assert_eq!(
                e.code,
                RegistrationErrorCode::InvalidClientMetadata,
                "{m:?}"
            );
            assert_eq!(e.field, field, "{m:?}");
            assert!(e.description.contains(words), "{}", e.description);
        }
    }

    #[test]
    fn public_keys_are_accepted_for_private_key_jwt() {
        let m = ClientMetadata {
            token_endpoint_auth_method: Some("private_key_jwt".into()),
            grant_types: Some(vec!["client_credentials".into()]),
            jwks: Some(serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256",
                "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]})),
            ..ClientMetadata::default()
        };
        let v = m.validate(&Outbound::default()).unwrap();
        assert_eq!(v.auth_method, AuthMethod::PrivateKeyJwt);
        assert!(v.redirect_uris.is_empty());
        assert!(v.jwks.unwrap().contains("P-256"));
    }

    proptest::proptest! {
        /// Whatever is offered as a redirect URI, validation answers; and what it accepts
        /// keeps every rule: absolute, no fragment, no wildcard, https unless on this machine.
        #[test]
        fn accepted_redirect_uris_keep_the_rules(
            uri in proptest::prop_oneof![
                "\\PC{0,60}",
                "(https?|javascript|data|file|myapp)://[a-z*.]{0,20}(:[0-9]{1,5})?(/[a-z#?*%]{0,10}){0,3}",
                "http://(127\\.0\\.0\\.1|\\[::1\\]|[a-z]{1,8}\\.localhost|localhost)(:[0-9]{2,5})?/[a-z]{0,8}",
            ]
        ) {
            if m_ok(&uri) {
                let u = url::Url::parse(&uri).unwrap();
                proptest::prop_assert!(u.fragment().is_none(), "{uri}");
                proptest::prop_assert!(!uri.contains('*'), "{uri}");
                let host = u.host().unwrap();
                proptest::prop_assert!(
                    u.scheme() == "https" || (u.scheme() == "http" && is_local_host(&host)),
                    "{uri}"
                );
            }
        }
    }

    fn m_ok(uri: &str) -> bool {
        with_uri(uri).validate(&Outbound::default()).is_ok()
    }
}
