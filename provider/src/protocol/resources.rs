//! Registering an API that accepts our access tokens (a protected resource): the rules every
//! way of registering one goes through (today the command line). An API is named by its
//! resource indicator (RFC 8707 §2), which clients send as `resource` and which becomes the
//! `aud` of its tokens (RFC 9068 §3), so it must be exactly the URI they will send.

use super::registration::check_uri;
use crate::store::{Client, ExchangeRule, NewResource, Resource};
use crate::types::{Alg, ApiScopes, AuthMethod, GrantType};
use std::time::Duration;

/// Access tokens for an API live this long unless its registration says otherwise.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// The shortest and longest an API's tokens may live: a JWT access token is checked locally,
/// so its lifetime is how long a leaked one works (RFC 9700 §4.10.2).
pub const MIN_LIFETIME: Duration = Duration::from_secs(30);
pub const MAX_LIFETIME: Duration = Duration::from_secs(3600);
/// The longest name shown for an API.
const MAX_NAME: usize = 100;

/// What an operator asks to register.
#[derive(Clone, Debug, Default)]
pub struct ResourceSpec {
    pub resource_id: String,
    pub name: Option<String>,
    pub scopes: Vec<String>,
    pub access_token_lifetime: Option<Duration>,
    /// RS256 by default: RFC 9068 §2.1 has every resource server support it.
    pub access_token_alg: Option<Alg>,
}

/// Why a registration was refused, in words for the operator.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ResourceError(pub String);

/// A resource that follows the rules: the indicator an absolute https URI (http only on this
/// machine) with no fragment (RFC 8707 §2), no query (§2: SHOULD NOT) and no credentials, and
/// not on the provider's own origin (`issuer`: its tokens would be the provider's, and the
/// provider's its); a name; at least one valid scope of its own; a lifetime within bounds; and,
/// if it introspects, a confidential `client` to authenticate as.
pub fn validate(
    spec: ResourceSpec,
    client: Option<&Client>,
    issuer: &str,
    now: i64,
) -> Result<NewResource, ResourceError> {
    let id = &spec.resource_id;
    check_uri(id).map_err(|why| ResourceError(format!("the resource {id:?} {why}")))?;
    if id.contains('?') {
        return Err(ResourceError(format!(
            "the resource {id:?} has a query; a resource indicator should not (RFC 8707 §2)"
        )));
    }
    let origin = |u: &str| url::Url::parse(u).ok().map(|u| u.origin());
    if origin(id).is_some_and(|o| Some(o) == origin(issuer)) {
        return Err(ResourceError(format!(
            "the resource {id:?} is on the provider's own origin ({issuer})"
        )));
    }
    let name = spec.name.unwrap_or_else(|| id.clone());
    if name.trim().is_empty()
        || name.chars().count() > MAX_NAME
        || name.chars().any(char::is_control)
    {
        return Err(ResourceError(format!(
            "the name must be 1 to {MAX_NAME} characters, none of them control characters"
        )));
    }
    let scopes = ApiScopes::define(spec.scopes.iter().map(String::as_str))
        .map_err(|e| ResourceError(e.to_string()))?;
    if scopes.is_empty() {
        return Err(ResourceError(
            "an API defines at least one scope (--scope), which its tokens carry".into(),
        ));
    }
    let lifetime = spec.access_token_lifetime.unwrap_or(DEFAULT_LIFETIME);
    if !(MIN_LIFETIME..=MAX_LIFETIME).contains(&lifetime) {
        return Err(ResourceError(format!(
            "an access token lifetime must be between {} and {}",
            humantime::format_duration(MIN_LIFETIME),
            humantime::format_duration(MAX_LIFETIME)
        )));
    }
    if let Some(c) = client
        && c.auth_method == AuthMethod::None
    {
        return Err(ResourceError(format!(
            "client {:?} is public; an API authenticates as a confidential client",
            c.client_id
        )));
    }
    Ok(NewResource(Resource {
        resource_id: id.clone(),
        name: name.trim().to_owned(),
        scopes,
        access_token_lifetime: infra::secs(lifetime),
        access_token_alg: spec.access_token_alg.unwrap_or(Alg::RS256),
        client_id: client.map(|c| c.client_id.clone()),
        created_at: now,
    }))
}

/// A rule that lets `client` exchange the tokens addressed to its own API for tokens addressed
/// to `api` (RFC 8693), with at most `scopes` (all of the API's when none are named): the
/// client confidential and registered for the token-exchange grant, the client of an API
/// (only tokens presented to an API of its own can be exchanged), and every scope one that
/// `api` defines.
pub fn exchange_rule(
    client: &Client,
    own_apis: &[Resource],
    api: &Resource,
    scopes: &[String],
) -> Result<ExchangeRule, ResourceError> {
    let id = &client.client_id;
    if client.auth_method == AuthMethod::None {
        return Err(ResourceError(format!(
            "client {id} is public: it cannot act for others"
        )));
    }
    if !client.allows_grant(GrantType::TokenExchange) {
        return Err(ResourceError(format!(
            "client {id} is not registered for the token-exchange grant (provider clients \
             update {id} --grant-type {})",
            GrantType::TokenExchange
        )));
    }
    if !own_apis
        .iter()
        .any(|r| r.client_id.as_deref() == Some(id.as_str()))
    {
        return Err(ResourceError(format!(
            "client {id} is the client of no API (provider resources add … --client {id})"
        )));
    }
    let scopes = if scopes.is_empty() {
        api.scopes.clone()
    } else {
        let unknown: Vec<&String> = scopes.iter().filter(|s| !api.scopes.contains(s)).collect();
        if !unknown.is_empty() {
            return Err(ResourceError(format!(
                "{} defines no scope {unknown:?} (it has: {})",
                api.resource_id, api.scopes
            )));
        }
        api.scopes.pick(&scopes.join(" "))
    };
    Ok(ExchangeRule {
        client_id: id.clone(),
        resource_id: api.resource_id.clone(),
        scopes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str) -> ResourceSpec {
        ResourceSpec {
            resource_id: id.into(),
            scopes: vec!["notes:read".into(), "notes:write".into()],
            ..ResourceSpec::default()
        }
    }

    const ISSUER: &str = "https://idp.example.com";

    #[test]
    fn a_good_resource_gets_defaults() {
        let r = validate(spec("https://api.example.com"), None, ISSUER, 7)
            .unwrap()
            .0;
        assert_eq!(r.name, "https://api.example.com");
        assert_eq!(r.scopes.to_string(), "notes:read notes:write");
        assert_eq!(r.access_token_lifetime, 300);
        assert_eq!(r.access_token_alg, Alg::RS256);
        assert_eq!((r.client_id, r.created_at), (None, 7));
        assert!(validate(spec("http://api.localhost:5003"), None, ISSUER, 0).is_ok());
    }

    #[test]
    fn each_rule_refuses_its_input() {
        for id in [
            "",
            "api",
            "/notes",
            "http://api.example.com",
            "https://api.example.com/#frag",
            "https://api.example.com/?tenant=1",
            "https://user:pw@api.example.com",
            "javascript:alert(1)",
            "https://api.example.com/ x",
            ISSUER,
            "https://idp.example.com/api",
            "https://idp.example.com:443/",
        ] {
            assert!(validate(spec(id), None, ISSUER, 0).is_err(), "{id:?}");
        }
        for scopes in [vec!["openid".to_owned()], Vec::new()] {
            let mut bad = spec("https://api.example.com");
            bad.scopes = scopes;
            assert!(validate(bad, None, ISSUER, 0).is_err());
        }
        for name in ["", "  ", "a\u{7}b", &"n".repeat(MAX_NAME + 1)] {
            let mut bad = spec("https://api.example.com");
            bad.name = Some(name.to_owned());
            assert!(validate(bad, None, ISSUER, 0).is_err(), "{name:?}");
        }
        for secs in [29, 3601] {
            let mut bad = spec("https://api.example.com");
            bad.access_token_lifetime = Some(Duration::from_secs(secs));
            assert!(validate(bad, None, ISSUER, 0).is_err(), "{secs}");
        }
    }
}
