//! Verifying an access token the way RFC 9068 §4 asks a resource server to, locally: no call
//! to the provider per request, only its published keys.

use crate::revocations::{Feed, Listener, Revocations};
use infra::Clock;
use infra::jwks::{JwksCache, KeyError};
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// The signing algorithms accepted (RFC 9068 §4: RS256 at least; Gatehouse signs access tokens
/// with ES256). `none` and HMAC never.
const ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// Where the API meets its provider.
#[derive(Clone, Debug)]
pub struct Config {
    /// The provider's issuer identifier, exactly as in its tokens' `iss`.
    pub issuer: String,
    /// This API's resource indicator: what its tokens carry in `aud` (RFC 9068 §3).
    pub audience: String,
    /// How far the API's clock may be from the provider's (`exp`, `nbf`, `iat`).
    pub leeway: Duration,
    /// Where the API is reached (scheme, host, port and any path prefix): what DPoP proofs
    /// name, with the request's path (`htu`, RFC 9449 §4.2). The audience, unless set.
    pub public_url: String,
}

impl Config {
    /// The usual settings: a leeway of 30 seconds.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        let audience: String = audience.into();
        Self {
            issuer: issuer.into(),
            public_url: audience.clone(),
            audience,
            leeway: Duration::from_secs(30),
        }
    }
}

/// A verified access token: who it is for and what it allows (RFC 9068 §2.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessToken {
    /// The user, or the client itself for a token it obtained on its own behalf.
    pub sub: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    pub auth_time: Option<i64>,
    /// The provider's SSO session the token was issued under.
    pub sid: Option<String>,
    pub acr: Option<String>,
    /// Who acts for `sub` (RFC 8693 §4.1), when the token was obtained by token exchange: the
    /// API that called this one on the user's behalf, and those before it.
    pub actor: Option<Actor>,
    /// The thumbprint of the DPoP key the token is bound to (`cnf.jkt`, RFC 9449 §6.1): it is
    /// then accepted only with a proof by that key ([`Verifier::check_proof`]).
    pub dpop_jkt: Option<String>,
}

/// RFC 8693 §4.1 `act`: an actor (a client id, for Gatehouse), and the one before it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Actor {
    pub sub: String,
    #[serde(default)]
    pub act: Option<Box<Actor>>,
}

impl AccessToken {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Why a token was refused. Each is `invalid_token` to the caller (RFC 6750 §3.1), its words
/// the description.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("the access token is not a JWT")]
    Malformed,
    #[error("the token is not an access token (typ at+jwt)")]
    WrongType,
    #[error("the token's signing key or algorithm is not the provider's")]
    Key(#[from] KeyError),
    #[error("the token is invalid: {0}")]
    Invalid(String),
    #[error("the token is not for this API")]
    Audience,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYet,
    #[error("the token has been revoked")]
    Revoked,
    /// The revocation feed is listened to but cannot be heard (not yet, or lost for too long):
    /// whether the token was revoked is unknown. Not the caller's fault: a 503.
    #[error("revocations cannot be checked now")]
    RevocationsUnknown,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    client_id: String,
    jti: String,
    iat: i64,
    exp: i64,
    nbf: Option<i64>,
    #[serde(default)]
    scope: String,
    auth_time: Option<i64>,
    sid: Option<String>,
    acr: Option<String>,
    act: Option<Actor>,
    cnf: Option<Confirmation>,
}

/// RFC 9449 §6.1 `cnf`.
#[derive(Deserialize)]
struct Confirmation {
    jkt: String,
}

/// Verifies the access tokens addressed to one API.
pub struct Verifier {
    config: Config,
    keys: JwksCache,
    clock: Clock,
    http: reqwest::Client,
    /// The provider's revocation feed, if its discovery document names one.
    feed_endpoint: Option<String>,
    /// The provider's token endpoint (for token exchange), if known.
    token_endpoint: Option<String>,
    pub(crate) revocations: Arc<Revocations>,
    /// The DPoP proofs seen (RFC 9449 §11.1).
    replays: crate::dpop::Replays,
}

/// Why the verifier could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the provider's discovery document could not be fetched: {0}")]
    Discovery(String),
    #[error("the discovery document names issuer {found:?}, not {expected:?}")]
    Issuer { expected: String, found: String },
    #[error("the provider's discovery document names no revocation feed")]
    NoFeed,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
    token_endpoint: Option<String>,
    gatehouse_revocation_feed_endpoint: Option<String>,
}

impl Verifier {
    /// Reads the provider's discovery document (OpenID Connect Discovery 1.0 §4) for its
    /// `jwks_uri`; its `issuer` must be exactly the configured one (§4.3).
    pub async fn discover(
        config: Config,
        http: reqwest::Client,
        clock: Clock,
    ) -> Result<Self, SetupError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            config.issuer.trim_end_matches('/')
        );
        let fail = |e: &dyn std::fmt::Display| SetupError::Discovery(e.to_string());
        let response = http.get(&url).send().await.map_err(|e| fail(&e))?;
        let response = response.error_for_status().map_err(|e| fail(&e))?;
        let doc: Discovery = response.json().await.map_err(|e| fail(&e))?;
        if doc.issuer != config.issuer {
            return Err(SetupError::Issuer {
                expected: config.issuer,
                found: doc.issuer,
            });
        }
        let mut verifier = Self::with_jwks_uri(config, doc.jwks_uri, http, clock);
        verifier.feed_endpoint = doc.gatehouse_revocation_feed_endpoint;
        verifier.token_endpoint = doc.token_endpoint;
        Ok(verifier)
    }

    /// A verifier for keys published at `jwks_uri` (no discovery).
    pub fn with_jwks_uri(
        config: Config,
        jwks_uri: String,
        http: reqwest::Client,
        clock: Clock,
    ) -> Self {
        Self {
            keys: JwksCache::new(jwks_uri, http.clone(), clock.clone()),
            revocations: Arc::new(Revocations::new(clock.clone(), config.leeway)),
            config,
            clock,
            http,
            feed_endpoint: None,
            token_endpoint: None,
            replays: crate::dpop::Replays::default(),
        }
    }

    /// Checks the DPoP proof a request carries for `token`, bound to the key `jkt` (RFC 9449
    /// §7.1): exactly one proof (`proofs`, the `DPoP` headers' values), for `method` and this
    /// API's `public_url` with the request's `path`, naming the token, by that key, fresh and
    /// never seen before. The error says why not.
    pub fn check_proof(
        &self,
        proofs: &[&str],
        method: &str,
        path: &str,
        (token, jkt): (&str, &str),
    ) -> Result<(), crate::dpop::NotFresh> {
        let url = format!("{}{path}", self.config.public_url.trim_end_matches('/'));
        let now = self.clock.unix();
        crate::dpop::check(&self.replays, proofs, (method, &url), (token, jkt), now)
    }

    pub(crate) fn token_endpoint(&self) -> Option<&str> {
        self.token_endpoint.as_deref()
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Listens to the provider's revocation feed (found through discovery) as the API's
    /// client, until the returned [`Listener`] is dropped: from then on a revoked token is
    /// refused (see `revocations`).
    pub fn hear_revocations(
        &self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Result<Listener, SetupError> {
        let endpoint = self.feed_endpoint.clone().ok_or(SetupError::NoFeed)?;
        Ok(self.hear_revocations_at(Feed::new(endpoint, client_id, client_secret)))
    }

    /// [`Verifier::hear_revocations`] with the feed's settings given.
    pub fn hear_revocations_at(&self, feed: Feed) -> Listener {
        Listener::spawn(
            self.revocations.clone(),
            feed,
            self.config.audience.clone(),
            self.http.clone(),
        )
    }

    /// Verifies `token` per RFC 9068 §4: typed `at+jwt`, signed by one of the provider's keys
    /// with an algorithm its key fits, from the configured issuer, addressed to this API, in
    /// date (with the leeway), with the claims of §2.2. Its DPoP binding is not checked here:
    /// a token with [`AccessToken::dpop_jkt`] is good only with a proof
    /// ([`Verifier::check_proof`], which the route layer runs), never as a bearer token.
    pub async fn verify(&self, token: &str) -> Result<AccessToken, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        let typ = header.typ.as_deref().unwrap_or("");
        if !typ.eq_ignore_ascii_case("at+jwt") && !typ.eq_ignore_ascii_case("application/at+jwt") {
            return Err(VerifyError::WrongType);
        }
        let key = self
            .keys
            .decoding_key(header.alg, header.kid.as_deref(), &ALGORITHMS)
            .await?;
        let mut validation = Validation::new(header.alg);
        // Dates are checked below on the injected clock; the audience too, to tell it apart.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["iss", "exp", "aud", "sub", "iat"]);
        validation.set_issuer(&[&self.config.issuer]);
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .map_err(|e| VerifyError::Invalid(e.to_string()))?;
        let addressed = match data.claims.get("aud") {
            Some(serde_json::Value::String(a)) => *a == self.config.audience,
            Some(serde_json::Value::Array(all)) => all
                .iter()
                .any(|a| a.as_str() == Some(self.config.audience.as_str())),
            _ => false,
        };
        if !addressed {
            return Err(VerifyError::Audience);
        }
        let claims: Claims =
            serde_json::from_value(data.claims).map_err(|e| VerifyError::Invalid(e.to_string()))?;
        let now = self.clock.unix();
        let leeway = i64::try_from(self.config.leeway.as_secs()).unwrap_or(i64::MAX);
        if claims.exp.saturating_add(leeway) <= now {
            return Err(VerifyError::Expired);
        }
        if claims.nbf.unwrap_or(claims.iat) > now.saturating_add(leeway) {
            return Err(VerifyError::NotYet);
        }
        self.revocations.check(&claims.jti)?;
        Ok(AccessToken {
            sub: claims.sub,
            client_id: claims.client_id,
            scopes: claims
                .scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            jti: claims.jti,
            iat: claims.iat,
            exp: claims.exp,
            auth_time: claims.auth_time,
            sid: claims.sid,
            acr: claims.acr,
            actor: claims.act,
            dpop_jkt: claims.cnf.map(|c| c.jkt),
        })
    }
}
