//! Back-channel logout tokens (OIDC Back-Channel Logout 1.0 §2.6), validated in full.
//!
//! Written here because the openidconnect crate has no logout-token support. Signatures are
//! checked with jsonwebtoken against the provider's JWKS, through `infra::jwks` (fetched again
//! when an unknown `kid` appears, at most once per ten seconds, so forged `kid`s cannot make
//! us hammer the provider; each key used only with the algorithm its type fits). `jti`s are
//! remembered until their token would have expired, so a token is accepted once. The replay
//! cache lives in this process: a fleet of app instances behind a load balancer would share it
//! in its session store instead.

use infra::Clock;
use infra::jwks::{JwksCache, KeyError};
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;

/// The `events` member of a logout token (§2.4).
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How far `iat` may be from now (§2.6 leaves the window to the RP).
const MAX_AGE_SECS: i64 = 300;
const CLOCK_SKEW_SECS: i64 = 30;

/// Why a logout token was refused (sent back as the 400's description).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LogoutTokenError {
    #[error("malformed logout token")]
    Malformed,
    #[error("logout token must be typed logout+jwt")]
    WrongType,
    #[error("unsupported signing algorithm")]
    Algorithm,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("invalid logout token: {0}")]
    Invalid(String),
    #[error("logout token is expired or too old")]
    Stale,
    #[error("logout token lacks the back-channel logout event")]
    NoEvent,
    #[error("logout token must not contain a nonce")]
    Nonce,
    #[error("logout token names neither sid nor sub")]
    NoSubject,
    #[error("logout token was already used")]
    Replayed,
    #[error("the provider's keys could not be fetched")]
    Jwks,
}

/// What to sign out: every local session of the provider session `sid`, or of user `sub`.
#[derive(Debug, PartialEq, Eq)]
pub enum LogoutTarget {
    Sid(String),
    Sub(String),
}

#[derive(Deserialize)]
struct Claims {
    iat: i64,
    exp: i64,
    jti: Option<String>,
    sid: Option<String>,
    sub: Option<String>,
    events: Option<serde_json::Map<String, serde_json::Value>>,
    nonce: Option<serde_json::Value>,
}

/// Validates logout tokens for one client of one issuer.
pub struct LogoutValidator {
    issuer: String,
    client_id: String,
    clock: Clock,
    keys: JwksCache,
    seen: Mutex<HashMap<String, i64>>,
}

impl LogoutValidator {
    pub fn new(
        issuer: String,
        client_id: String,
        jwks_uri: String,
        http: reqwest::Client,
        clock: Clock,
    ) -> Self {
        Self {
            issuer,
            client_id,
            keys: JwksCache::new(jwks_uri, http, clock.clone()),
            clock,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Validates `token` per Back-Channel Logout §2.6 and says whom to sign out.
    pub async fn validate(&self, token: &str) -> Result<LogoutTarget, LogoutTokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| LogoutTokenError::Malformed)?;
        if !header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("logout+jwt"))
        {
            return Err(LogoutTokenError::WrongType);
        }
        let algorithms = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];
        let key = self
            .keys
            .decoding_key(header.alg, header.kid.as_deref(), &algorithms)
            .await
            .map_err(|e| match e {
                KeyError::Unknown => LogoutTokenError::UnknownKey,
                KeyError::Algorithm => LogoutTokenError::Algorithm,
                KeyError::Fetch => LogoutTokenError::Jwks,
            })?;
        let mut validation = Validation::new(header.alg);
        validation.validate_exp = false; // checked below on the injected clock
        validation.set_required_spec_claims(&["iss", "aud", "iat", "exp"]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.client_id]);
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| LogoutTokenError::Invalid(e.to_string()))?
            .claims;
        let now = self.clock.unix();
        if claims.exp + CLOCK_SKEW_SECS <= now
            || now - claims.iat > MAX_AGE_SECS
            || claims.iat - now > CLOCK_SKEW_SECS
        {
            return Err(LogoutTokenError::Stale);
        }
        let has_event = claims
            .events
            .as_ref()
            .and_then(|e| e.get(BACKCHANNEL_EVENT))
            .is_some_and(serde_json::Value::is_object);
        if !has_event {
            return Err(LogoutTokenError::NoEvent);
        }
        if claims.nonce.is_some() {
            return Err(LogoutTokenError::Nonce);
        }
        let target = match (claims.sid, claims.sub) {
            (Some(sid), _) => LogoutTarget::Sid(sid),
            (None, Some(sub)) => LogoutTarget::Sub(sub),
            (None, None) => return Err(LogoutTokenError::NoSubject),
        };
        let jti = claims
            .jti
            .ok_or_else(|| LogoutTokenError::Invalid("jti is required".into()))?;
        self.remember(jti, claims.exp.max(claims.iat + MAX_AGE_SECS), now)?;
        Ok(target)
    }

    /// Records `jti` until `until`; refuses one seen before.
    fn remember(&self, jti: String, until: i64, now: i64) -> Result<(), LogoutTokenError> {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.retain(|_, exp| *exp + CLOCK_SKEW_SECS > now);
        if seen.contains_key(&jti) {
            return Err(LogoutTokenError::Replayed);
        }
        seen.insert(jti, until);
        Ok(())
    }
}
