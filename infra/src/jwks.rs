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
use tokio::sync::{Mutex, RwLock};

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
    /// The set; a verification only ever holds it for a lookup, never across a fetch.
    set: RwLock<JwkSet>,
    /// When the set was last fetched (Unix seconds), held while a fetch is under way, so that
    /// one request fetches and the others with the same unknown `kid` wait for it.
    fetched_at: Mutex<Option<i64>>,
}

impl JwksCache {
    /// A cache for the set at `uri`, fetched at first use.
    pub fn new(uri: String, http: reqwest::Client, clock: Clock) -> Self {
        Self {
            uri,
            http,
            clock,
            set: RwLock::new(JwkSet { keys: Vec::new() }),
            fetched_at: Mutex::new(None),
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

    async fn held(&self, kid: &str) -> Option<Jwk> {
        self.set.read().await.find(kid).cloned()
    }

    /// The key `kid`, fetching the set again (rate limited) when it is not held. Requests for
    /// keys that are held never wait for a fetch.
    pub async fn key(&self, kid: &str) -> Result<Jwk, KeyError> {
        if let Some(k) = self.held(kid).await {
            return Ok(k);
        }
        let mut fetched_at = self.fetched_at.lock().await;
        // Another request may have fetched it while this one waited.
        if let Some(k) = self.held(kid).await {
            return Ok(k);
        }
        let now = self.clock.unix();
        if fetched_at.is_some_and(|at| now - at < MIN_REFETCH_SECS) {
            return Err(KeyError::Unknown);
        }
        *fetched_at = Some(now);
        let fresh = self.fetch().await?;
        *self.set.write().await = fresh;
        drop(fetched_at);
        self.held(kid).await.ok_or(KeyError::Unknown)
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
