//! An issuer's JSON Web Key Set (RFC 7517), fetched from its `jwks_uri` and cached, for the
//! workspace's verifiers of Gatehouse's JWTs: the sample app's back-channel logout tokens and
//! the `resource-server` crate's access tokens.
//!
//! Written here because the openidconnect crate's key handling serves ID tokens only, and both
//! verifiers need the same rules: a token that names a key the cache does not hold makes the
//! set be fetched again (the provider publishes a new key before it signs with it, so a
//! rotation never strands a verifier), at most once per [`MIN_REFETCH_SECS`] on the injected
//! clock, so that forged `kid`s cannot make a verifier hammer the provider; and a key is used
//! only with the algorithm its type fits (RS256 with RSA, ES256 with P-256, EdDSA with Ed25519),
//! so that no public key is ever read as an HMAC secret.

use crate::Clock;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::RwLock;

/// The key set is fetched again at most this often.
pub const MIN_REFETCH_SECS: i64 = 10;

/// Why no key was found for a token.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("unknown signing key")]
    Unknown,
    #[error("unsupported signing algorithm")]
    Algorithm,
    #[error("the issuer's keys could not be fetched")]
    Fetch,
}

/// The cached key set of one issuer.
pub struct JwksCache {
    uri: String,
    http: reqwest::Client,
    clock: Clock,
    /// The set, and when it was last fetched (Unix seconds).
    cache: RwLock<(JwkSet, Option<i64>)>,
}

impl JwksCache {
    /// A cache for the set at `uri`, fetched at first use.
    pub fn new(uri: String, http: reqwest::Client, clock: Clock) -> Self {
        Self {
            uri,
            http,
            clock,
            cache: RwLock::new((JwkSet { keys: Vec::new() }, None)),
        }
    }

    async fn fetch(&self) -> Result<JwkSet, KeyError> {
        let response = self
            .http
            .get(&self.uri)
            .send()
            .await
            .map_err(|_| KeyError::Fetch)?;
        if !response.status().is_success() {
            return Err(KeyError::Fetch);
        }
        response.json().await.map_err(|_| KeyError::Fetch)
    }

    /// Whether a fetch at `at` is recent enough that no other may happen now.
    fn recent(&self, at: Option<i64>) -> bool {
        at.is_some_and(|at| self.clock.unix() - at < MIN_REFETCH_SECS)
    }

    /// The key `kid`, fetching the set again (rate limited) when it is not held.
    pub async fn key(&self, kid: &str) -> Result<Jwk, KeyError> {
        {
            let cache = self.cache.read().await;
            if let Some(k) = cache.0.find(kid) {
                return Ok(k.clone());
            }
            if self.recent(cache.1) {
                return Err(KeyError::Unknown);
            }
        }
        let mut cache = self.cache.write().await;
        // Another request may have fetched it meanwhile.
        if cache.0.find(kid).is_none() && !self.recent(cache.1) {
            let fresh = self.fetch().await;
            cache.1 = Some(self.clock.unix());
            cache.0 = fresh?;
        }
        cache.0.find(kid).cloned().ok_or(KeyError::Unknown)
    }

    /// The key that verifies a token whose header says `alg` and `kid`: `alg` must be one of
    /// `allowed`, and the key's type must fit it.
    pub async fn decoding_key(
        &self,
        alg: Algorithm,
        kid: Option<&str>,
        allowed: &[Algorithm],
    ) -> Result<DecodingKey, KeyError> {
        if !allowed.contains(&alg) {
            return Err(KeyError::Algorithm);
        }
        let jwk = self.key(kid.ok_or(KeyError::Unknown)?).await?;
        let fits = match (&jwk.algorithm, alg) {
            (AlgorithmParameters::RSA(_), Algorithm::RS256) => true,
            (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
                ec.curve == EllipticCurve::P256
            }
            (AlgorithmParameters::OctetKeyPair(_), Algorithm::EdDSA) => true,
            _ => false,
        };
        if !fits {
            return Err(KeyError::Algorithm);
        }
        DecodingKey::from_jwk(&jwk).map_err(|_| KeyError::Unknown)
    }
}
