//! Signing keys: RS256 (every OP must support it for ID tokens, OIDC Core §15.1), ES256, and
//! EdDSA with Ed25519 (RFC 8037), each generated at first start and rotated alike.
//!
//! Keys are generated at first start, kept in the store as PKCS#8, parsed once at start-up and
//! held ready in memory. JWTs are signed here with aws-lc-rs directly instead of through
//! `jsonwebtoken::encode`, because jsonwebtoken's `EncodingKey` re-parses an RSA key on every
//! signature (about 435 µs on top of about 860 µs of signing, measured on this machine).
//! Verification of our own access tokens goes through jsonwebtoken with pre-built keys.

pub mod nonce;
pub mod successor;

use crate::store::{Store, StoredKey};
pub use crate::types::Alg;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The `jsonwebtoken` name of one of our algorithms.
fn jsonwebtoken_alg(alg: Alg) -> Algorithm {
    match alg {
        Alg::RS256 => Algorithm::RS256,
        Alg::ES256 => Algorithm::ES256,
        Alg::EdDSA => Algorithm::EdDSA,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key store: {0}")]
    Store(#[from] sqlx::Error),
    #[error("signing key {kid} cannot be used: {why}")]
    Invalid { kid: String, why: String },
    #[error("no signing key for {0:?}")]
    Missing(Alg),
    #[error("signing failed")]
    Crypto,
    #[error("claims cannot be serialized: {0}")]
    Claims(#[from] serde_json::Error),
}

/// A public key as published in the JWKS (RFC 7517).
#[derive(Clone, Debug, Serialize)]
pub struct Jwk {
    pub kty: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub alg: &'static str,
    pub kid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// One parsed private key, ready to sign.
pub struct SigningKey {
    kid: String,
    alg: Alg,
    pair: Pair,
    decoding: DecodingKey,
}

impl SigningKey {
    fn from_stored(k: &StoredKey) -> Result<(Self, Jwk), KeyError> {
        let invalid = |why: String| KeyError::Invalid {
            kid: k.kid.clone(),
            why,
        };
        let alg = k.alg;
        let der = STANDARD
            .decode(&k.private_key)
            .map_err(|e| invalid(e.to_string()))?;
        let (pair, mut jwk) = match alg {
            Alg::RS256 => {
                let pair = RsaKeyPair::from_pkcs8(&der).map_err(|e| invalid(e.to_string()))?;
                let public = pair.public_key();
                let jwk = Jwk {
                    kty: "RSA",
                    use_: "sig",
                    alg: alg.as_str(),
                    kid: String::new(),
                    n: Some(b64(public.modulus().big_endian_without_leading_zero())),
                    e: Some(b64(public.exponent().big_endian_without_leading_zero())),
                    crv: None,
                    x: None,
                    y: None,
                };
                (Pair::Rsa(pair), jwk)
            }
            Alg::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                    .map_err(|e| invalid(e.to_string()))?;
                // Uncompressed SEC1 point: 0x04 || X (32 bytes) || Y (32 bytes).
                let point = pair.public_key().as_ref();
                if point.len() != 65 || point[0] != 4 {
                    return Err(invalid("unexpected P-256 public key encoding".into()));
                }
                let jwk = Jwk {
                    kty: "EC",
                    use_: "sig",
                    alg: alg.as_str(),
                    kid: String::new(),
                    n: None,
                    e: None,
                    crv: Some("P-256"),
                    x: Some(b64(&point[1..33])),
                    y: Some(b64(&point[33..65])),
                };
                (Pair::Ec(pair), jwk)
            }
            Alg::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(&der).map_err(|e| invalid(e.to_string()))?;
                let jwk = Jwk {
                    kty: "OKP",
                    use_: "sig",
                    alg: alg.as_str(),
                    kid: String::new(),
                    n: None,
                    e: None,
                    crv: Some("Ed25519"),
                    x: Some(b64(pair.public_key().as_ref())),
                    y: None,
                };
                (Pair::Ed(pair), jwk)
            }
        };
        jwk.kid = k.kid.clone();
        let decoding = match (&jwk.n, &jwk.e, &jwk.x, &jwk.y) {
            (Some(n), Some(e), _, _) => DecodingKey::from_rsa_components(n, e),
            (_, _, Some(x), Some(y)) => DecodingKey::from_ec_components(x, y),
            (_, _, Some(x), None) => DecodingKey::from_ed_components(x),
            _ => return Err(invalid("incomplete public key".into())),
        }
        .map_err(|e| invalid(e.to_string()))?;
        Ok((
            Self {
                kid: k.kid.clone(),
                alg,
                pair,
                decoding,
            },
            jwk,
        ))
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(|_| KeyError::Crypto)?;
                Ok(sig)
            }
            Pair::Ec(pair) => Ok(pair
                .sign(&rng, message)
                .map_err(|_| KeyError::Crypto)?
                .as_ref()
                .to_vec()),
            Pair::Ed(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

/// Generates a new private key for `alg`, as it is stored.
pub fn generate(alg: Alg, now: i64) -> Result<StoredKey, KeyError> {
    let der = match alg {
        Alg::RS256 => {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Crypto)?;
            pair.as_der()
                .map_err(|_| KeyError::Crypto)?
                .as_ref()
                .to_vec()
        }
        Alg::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|p| p.to_pkcs8v1())
            .map_err(|_| KeyError::Crypto)?
            .as_ref()
            .to_vec(),
        Alg::EdDSA => Ed25519KeyPair::generate()
            .and_then(|p| p.to_pkcs8v1())
            .map_err(|_| KeyError::Crypto)?
            .as_ref()
            .to_vec(),
    };
    let mut stored = StoredKey {
        kid: String::new(),
        alg,
        private_key: STANDARD.encode(&der),
        created_at: now,
        activates_at: now,
    };
    // The kid is the key's RFC 7638 thumbprint: stable, and different for every key.
    let (_, jwk) = SigningKey::from_stored(&StoredKey {
        kid: "new".into(),
        ..stored.clone()
    })?;
    stored.kid = thumbprint(&jwk);
    Ok(stored)
}

/// The server secret `name` (the HMAC key of the refresh successors, of the DPoP nonces): made
/// at the first start that asks for it, kept in the store, the same for every instance.
async fn server_secret(store: &crate::store::Store, name: &str) -> Result<String, KeyError> {
    let candidate = infra::secret::random_token().map_err(|_| KeyError::Crypto)?;
    Ok(store.server_secret(name, &candidate).await?)
}

/// RFC 7638 JWK thumbprint (SHA-256, base64url) over the required members in lexical order.
pub fn thumbprint(jwk: &Jwk) -> String {
    let canonical = match (jwk.kty, &jwk.n, &jwk.e, jwk.crv, &jwk.x, &jwk.y) {
        ("RSA", Some(n), Some(e), ..) => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
        ("EC", _, _, Some(crv), Some(x), Some(y)) => {
            format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#)
        }
        // RFC 8037 §2.
        ("OKP", _, _, Some(crv), Some(x), None) => {
            format!(r#"{{"crv":"{crv}","kty":"OKP","x":"{x}"}}"#)
        }
        _ => String::new(),
    };
    b64(&Sha256::digest(canonical.as_bytes()))
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Why a JWT we were handed is not acceptable.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed token")]
    Malformed,
    #[error("unexpected token type")]
    WrongType,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token expired")]
    Expired,
}

/// The provider's parsed keys and its published JWKS.
pub struct Keys {
    signers: HashMap<Alg, SigningKey>,
    verifiers: HashMap<String, (Alg, DecodingKey)>,
    jwks_json: String,
    /// What these keys were built from (kids, activation times, the signers chosen).
    fingerprint: String,
}

/// The key of each algorithm that signs at `now`: the newest already active.
fn signer_kids(stored: &[StoredKey], now: i64) -> HashMap<Alg, String> {
    let mut chosen: HashMap<Alg, &StoredKey> = HashMap::new();
    for k in stored.iter().filter(|k| k.activates_at <= now) {
        let newer = chosen.get(&k.alg).is_none_or(|c| {
            (k.activates_at, k.created_at, &k.kid) > (c.activates_at, c.created_at, &c.kid)
        });
        if newer {
            chosen.insert(k.alg, k);
        }
    }
    chosen
        .into_iter()
        .map(|(alg, k)| (alg, k.kid.clone()))
        .collect()
}

fn fingerprint(stored: &[StoredKey], now: i64) -> String {
    let mut parts: Vec<String> = stored
        .iter()
        .map(|k| format!("{}@{}", k.kid, k.activates_at))
        .collect();
    let mut signers: Vec<String> = signer_kids(stored, now).into_values().collect();
    parts.sort();
    signers.sort();
    format!("{}|{}", parts.join(","), signers.join(","))
}

/// Rotation settings, in seconds.
#[derive(Clone, Copy, Debug)]
pub struct RotationPolicy {
    /// A key is replaced this long after it started signing.
    pub rotation_period: i64,
    /// A new key is published this long before it signs.
    pub publish_ahead: i64,
    /// A superseded key stays published this long (the longest token it signed).
    pub retire_after: i64,
}

/// One rotation step at `now`: adds a pending key for each algorithm of `algs`, or that has
/// keys, whose signing key is older than the rotation period (and has no successor yet), and
/// deletes keys superseded for longer than `retire_after`. Returns whether anything changed.
pub async fn maintain(
    store: &Store,
    now: i64,
    policy: RotationPolicy,
    algs: &[Alg],
) -> Result<bool, KeyError> {
    let stored = store.signing_keys().await?;
    let mut changed = false;
    for alg in kept_algs(algs, &stored) {
        let newest = stored
            .iter()
            .filter(|k| k.alg == alg)
            .max_by_key(|k| (k.activates_at, k.created_at));
        if newest.is_none_or(|k| k.activates_at + policy.rotation_period <= now) {
            rotate(store, alg, now, now + policy.publish_ahead).await?;
            changed = true;
        }
    }
    let active = signer_kids(&stored, now);
    for k in &stored {
        let successor = stored
            .iter()
            .filter(|n| n.alg == k.alg && n.activates_at > k.activates_at && n.activates_at <= now)
            .map(|n| n.activates_at)
            .min();
        let superseded_long_ago = successor.is_some_and(|at| at + policy.retire_after <= now);
        if superseded_long_ago && active.get(&k.alg) != Some(&k.kid) {
            store.delete_signing_key(&k.kid).await?;
            tracing::info!(kid = %k.kid, alg = k.alg.as_str(), "retired signing key left the JWKS");
            changed = true;
        }
    }
    Ok(changed)
}

/// The algorithms whose keys are kept and rotated: the configured ones (`keys.algorithms`),
/// and any that still has keys (an algorithm taken off the list keeps its keys, so the apps
/// registered for it go on working; none is made for it anew).
pub fn kept_algs(configured: &[Alg], stored: &[StoredKey]) -> Vec<Alg> {
    Alg::ALL
        .iter()
        .copied()
        .filter(|alg| configured.contains(alg) || stored.iter().any(|k| k.alg == *alg))
        .collect()
}

/// Adds a new key for `alg`, published now and signing from `activates_at`.
pub async fn rotate(
    store: &Store,
    alg: Alg,
    now: i64,
    activates_at: i64,
) -> Result<StoredKey, KeyError> {
    let mut key = generate(alg, now)?;
    key.activates_at = activates_at;
    store.insert_signing_key(&key).await?;
    tracing::info!(kid = %key.kid, alg = alg.as_str(), activates_at, "new signing key published");
    let detail = format!(
        "{} key {} published, signing from {activates_at}",
        alg.as_str(),
        key.kid
    );
    let event = crate::audit::Event::new(crate::audit::Kind::KeyRotated).detail(detail);
    crate::audit::record_secs(store, now, event).await;
    Ok(key)
}

impl Keys {
    /// Loads the stored keys, generating a key for any algorithm of `algs` that has none.
    pub async fn load_or_create(store: &Store, now: i64, algs: &[Alg]) -> Result<Self, KeyError> {
        let mut stored = store.signing_keys().await?;
        for &alg in algs {
            if !stored.iter().any(|k| k.alg == alg) {
                let key = generate(alg, now)?;
                store.insert_signing_key(&key).await?;
                tracing::info!(kid = %key.kid, alg = alg.as_str(), "generated signing key");
                stored.push(key);
            }
        }
        Self::from_stored(&stored, now)
    }

    /// Whether the stored keys (at `now`) differ from the ones these were built from.
    pub fn is_stale(&self, stored: &[StoredKey], now: i64) -> bool {
        self.fingerprint != fingerprint(stored, now)
    }

    /// Parses keys: the newest active key of each algorithm signs, all are published and
    /// verify.
    pub fn from_stored(stored: &[StoredKey], now: i64) -> Result<Self, KeyError> {
        // One order for every instance, whatever order it saw the keys in.
        let mut stored = stored.to_vec();
        stored.sort_by(|a, b| {
            (a.activates_at, a.created_at, &a.kid).cmp(&(b.activates_at, b.created_at, &b.kid))
        });
        let stored = &stored;
        let chosen = signer_kids(stored, now);
        let mut signers = HashMap::new();
        let mut verifiers = HashMap::new();
        let mut jwks = Vec::new();
        for k in stored {
            let (key, jwk) = SigningKey::from_stored(k)?;
            verifiers.insert(key.kid.clone(), (key.alg, key.decoding.clone()));
            jwks.push(jwk);
            if chosen.get(&k.alg) == Some(&k.kid) {
                signers.insert(key.alg, key);
            }
        }
        let jwks_json = serde_json::to_string(&serde_json::json!({ "keys": jwks }))?;
        Ok(Self {
            signers,
            verifiers,
            jwks_json,
            fingerprint: fingerprint(stored, now),
        })
    }

    /// The JWK Set document (RFC 7517 §5).
    pub fn jwks_json(&self) -> &str {
        &self.jwks_json
    }

    /// The algorithms we can sign with.
    pub fn algs(&self) -> impl Iterator<Item = Alg> + '_ {
        Alg::ALL
            .iter()
            .copied()
            .filter(|a| self.signers.contains_key(a))
    }

    /// Signs `claims` as a compact JWS with header `{alg, typ, kid}`.
    pub fn sign(&self, alg: Alg, typ: &str, claims: &impl Serialize) -> Result<String, KeyError> {
        let key = self.signers.get(&alg).ok_or(KeyError::Missing(alg))?;
        let header = serde_json::json!({ "alg": alg.as_str(), "typ": typ, "kid": key.kid });
        let mut jws = b64(&serde_json::to_vec(&header)?);
        jws.push('.');
        jws.push_str(&b64(&serde_json::to_vec(claims)?));
        let signature = key.sign(jws.as_bytes())?;
        jws.push('.');
        jws.push_str(&b64(&signature));
        Ok(jws)
    }

    /// Verifies a JWT we issued: signature by one of our keys, header `typ`, `iss`, `aud`, and
    /// `exp` against `now` (our injected clock, not the system clock).
    pub fn verify<C: DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
        issuer: &str,
        audience: &str,
        now: i64,
    ) -> Result<C, VerifyError> {
        self.verify_with(token, typ, issuer, Some(audience), Some(now))
    }

    /// Like [`Keys::verify`], but the audience is checked only when given, and expiry only
    /// when `now` is given (an `id_token_hint` may have expired, RP-Initiated Logout §2).
    pub fn verify_with<C: DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
        issuer: &str,
        audience: Option<&str>,
        now: Option<i64>,
    ) -> Result<C, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if !header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(typ))
        {
            return Err(VerifyError::WrongType);
        }
        let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
        let (alg, key) = self.verifiers.get(&kid).ok_or(VerifyError::UnknownKey)?;
        if header.alg != jsonwebtoken_alg(*alg) {
            return Err(VerifyError::UnknownKey);
        }
        let mut validation = Validation::new(jsonwebtoken_alg(*alg));
        validation.validate_exp = false; // checked below against the injected clock
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[issuer]);
        match audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        let data = jsonwebtoken::decode::<serde_json::Value>(token, key, &validation)
            .map_err(|e| VerifyError::Invalid(e.to_string()))?;
        if let Some(now) = now {
            let exp = data.claims.get("exp").and_then(serde_json::Value::as_i64);
            if exp.is_none_or(|exp| exp <= now) {
                return Err(VerifyError::Expired);
            }
        }
        serde_json::from_value(data.claims).map_err(|e| VerifyError::Invalid(e.to_string()))
    }
}

/// The keys in force, shared by every request and replaced whole when rotation changes what is
/// stored (each instance reloads on its own), with the time they were chosen for; reloads
/// take turns (the second lock).
pub struct KeyRing(
    std::sync::RwLock<(std::sync::Arc<Keys>, i64)>,
    tokio::sync::Mutex<()>,
);

impl KeyRing {
    pub fn new(keys: Keys) -> Self {
        Self(
            std::sync::RwLock::new((std::sync::Arc::new(keys), i64::MIN)),
            tokio::sync::Mutex::new(()),
        )
    }

    /// The keys in force now (a cheap clone of a shared pointer).
    pub fn current(&self) -> std::sync::Arc<Keys> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            .clone()
    }

    /// Reloads the keys if the stored ones (at `now`) differ from those in force, including a
    /// published key whose time to sign has come. Returns whether it reloaded. Reloads take
    /// turns, each reading the store after the one before installed its keys, and keys chosen
    /// for an earlier time never replace those chosen for a later one: a slow reload (the
    /// maintenance round's, which read the clock before an operator's) cannot bring back what
    /// was superseded.
    pub async fn refresh(&self, store: &Store, now: i64) -> Result<bool, KeyError> {
        let _turn = self.1.lock().await;
        let stored = store.signing_keys().await?;
        if !self.current().is_stale(&stored, now) {
            return Ok(false);
        }
        let fresh = std::sync::Arc::new(Keys::from_stored(&stored, now)?);
        let mut installed = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if installed.1 > now {
            return Ok(false);
        }
        *installed = (fresh, now);
        Ok(true)
    }
}

/// OIDC Core §3.1.3.6 `at_hash`: the left half of the hash of the access token, base64url,
/// the hash being the one of the ID token's `alg`: SHA-256 for RS256 and ES256, and for EdDSA
/// with Ed25519 SHA-512 (Ed25519 signs with SHA-512; what certified relying parties, and the
/// `openidconnect` crate, compute).
pub fn at_hash(alg: Alg, access_token: &str) -> String {
    match alg {
        Alg::RS256 | Alg::ES256 => b64(&Sha256::digest(access_token.as_bytes())[..16]),
        Alg::EdDSA => b64(&sha2::Sha512::digest(access_token.as_bytes())[..32]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys chosen for an earlier time (a slow reload that read the clock before a faster one)
    /// never replace those chosen for a later one.
    #[tokio::test]
    async fn a_reload_for_an_earlier_time_does_not_undo_a_later_one() {
        let ctx = crate::context::testing::ctx().await;
        let now = ctx.clock.unix();
        let signer = |keys: &Keys| {
            let jwt = keys
                .sign(Alg::RS256, "JWT", &serde_json::json!({"sub": "s"}))
                .unwrap();
            jsonwebtoken::decode_header(&jwt).unwrap().kid.unwrap()
        };
        let before = signer(&ctx.keys.current());
        let next = rotate(&ctx.store, Alg::RS256, now, now + 60).await.unwrap();
        assert!(ctx.keys.refresh(&ctx.store, now + 61).await.unwrap());
        assert_eq!(signer(&ctx.keys.current()), next.kid);
        assert!(!ctx.keys.refresh(&ctx.store, now).await.unwrap());
        assert_eq!(signer(&ctx.keys.current()), next.kid);
        assert_ne!(before, next.kid);
    }

    fn keys() -> Keys {
        let stored: Vec<StoredKey> = Alg::ALL.iter().map(|a| generate(*a, 1).unwrap()).collect();
        Keys::from_stored(&stored, 1).unwrap()
    }

    #[test]
    fn signs_and_verifies_each_alg() {
        let keys = keys();
        for &alg in Alg::ALL {
            let claims =
                serde_json::json!({"iss": "i", "aud": "a", "sub": "s", "exp": 2_000_000_000});
            let jwt = keys.sign(alg, "at+jwt", &claims).unwrap();
            let back: serde_json::Value = keys.verify(&jwt, "at+jwt", "i", "a", 1_000).unwrap();
            assert_eq!(back["sub"], "s");
            assert!(matches!(
                keys.verify::<serde_json::Value>(&jwt, "JWT", "i", "a", 1_000),
                Err(VerifyError::WrongType)
            ));
            assert!(matches!(
                keys.verify::<serde_json::Value>(&jwt, "at+jwt", "other", "a", 1_000),
                Err(VerifyError::Invalid(_))
            ));
            assert!(matches!(
                keys.verify::<serde_json::Value>(&jwt, "at+jwt", "i", "b", 1_000),
                Err(VerifyError::Invalid(_))
            ));
            assert!(matches!(
                keys.verify::<serde_json::Value>(&jwt, "at+jwt", "i", "a", 2_000_000_000),
                Err(VerifyError::Expired)
            ));
        }
    }

    #[test]
    fn the_newest_active_key_signs_and_pending_keys_are_published() {
        let old = generate(Alg::ES256, 0).unwrap();
        let mut next = generate(Alg::ES256, 100).unwrap();
        next.activates_at = 200;
        let stored = vec![old.clone(), next.clone()];
        let kid_of = |keys: &Keys| {
            let jwt = keys
                .sign(Alg::ES256, "JWT", &serde_json::json!({"sub": "s"}))
                .unwrap();
            jsonwebtoken::decode_header(&jwt).unwrap().kid.unwrap()
        };
        let before = Keys::from_stored(&stored, 150).unwrap();
        assert_eq!(
            kid_of(&before),
            old.kid,
            "the pending key does not sign yet"
        );
        assert!(
            before.jwks_json().contains(&next.kid),
            "but it is published"
        );
        assert!(
            before.is_stale(&stored, 200),
            "its activation calls for a reload"
        );
        let after = Keys::from_stored(&stored, 200).unwrap();
        assert_eq!(kid_of(&after), next.kid);
        assert!(!after.is_stale(&stored, 300));
    }

    #[test]
    fn tampered_signature_is_refused() {
        let keys = keys();
        let claims = serde_json::json!({"iss": "i", "aud": "a", "sub": "s", "exp": 2_000_000_000});
        let jwt = keys.sign(Alg::ES256, "at+jwt", &claims).unwrap();
        let (head, _) = jwt.rsplit_once('.').unwrap();
        let forged_claims = b64(br#"{"iss":"i","aud":"a","sub":"admin","exp":2000000000}"#);
        let parts: Vec<&str> = jwt.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], forged_claims, parts[2]);
        assert!(
            keys.verify::<serde_json::Value>(&forged, "at+jwt", "i", "a", 1)
                .is_err()
        );
        let unsigned = format!("{head}.");
        assert!(
            keys.verify::<serde_json::Value>(&unsigned, "at+jwt", "i", "a", 1)
                .is_err()
        );
    }

    #[test]
    fn jwks_publishes_public_parts_only_with_thumbprint_kids() {
        let keys = keys();
        let jwks: serde_json::Value = serde_json::from_str(keys.jwks_json()).unwrap();
        let list = jwks["keys"].as_array().unwrap();
        assert_eq!(list.len(), 3);
        let okp = list.iter().find(|k| k["kty"] == "OKP").unwrap();
        assert_eq!(
            (&okp["crv"], &okp["alg"]),
            (&"Ed25519".into(), &"EdDSA".into())
        );
        assert_eq!(okp["x"].as_str().unwrap().len(), 43, "32 bytes, base64url");
        for k in list {
            assert!(k.get("d").is_none(), "no private member");
            assert_eq!(k["use"], "sig");
            assert_eq!(k["kid"].as_str().unwrap().len(), 43);
        }
    }

    #[test]
    fn at_hash_matches_oidc_example() {
        // OIDC Core §A.3 example: access token and its at_hash (RS256).
        assert_eq!(
            at_hash(Alg::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        // SHA-512's left half (32 of 64 bytes) for Ed25519.
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        let full = sha2::Sha512::digest(token.as_bytes());
        assert_eq!(
            URL_SAFE_NO_PAD.decode(at_hash(Alg::EdDSA, token)).unwrap(),
            full[..32].to_vec()
        );
    }

    /// The bytes of each part of a compact JWS (`None` where a part is not base64url).
    fn decoded(jws: &str) -> Vec<Option<Vec<u8>>> {
        jws.split('.')
            .map(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Any string offered as a token (an `id_token_hint`, a bearer token) is refused
        /// without a panic; so is a real token with any one character changed.
        #[test]
        fn arbitrary_and_mangled_tokens_are_refused(
            junk in "\\PC{0,300}",
            dots in "[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,80}",
            at in 0usize..400, with in proptest::char::range('!', '~'),
        ) {
            let k = keys();
            for token in [&junk, &dots] {
                let got = k.verify::<serde_json::Value>(token, "JWT", "https://i", "a", 10);
                proptest::prop_assert!(got.is_err());
            }
            // Every claim `verify` requires, so that the unmangled token is accepted and a
            // refusal of the mangled one can only come from the mangling.
            let claims =
                serde_json::json!({"iss": "https://i", "aud": "a", "sub": "s", "exp": 100});
            let good = k.sign(Alg::ES256, "JWT", &claims).unwrap();
            let accepted = k.verify::<serde_json::Value>(&good, "JWT", "https://i", "a", 10);
            proptest::prop_assert_eq!(accepted.as_ref().ok(), Some(&claims));
            let mut chars: Vec<char> = good.chars().collect();
            let i = at % chars.len();
            if chars[i] != with {
                chars[i] = with;
                let bad: String = chars.into_iter().collect();
                let got = k.verify::<serde_json::Value>(&bad, "JWT", "https://i", "a", 10);
                // Base64url has unused trailing bits: a change there may decode to the very
                // same token, which is rightly accepted; any other change is refused.
                let same_bytes = decoded(&bad) == decoded(&good);
                proptest::prop_assert!(got.is_err() || same_bytes, "{bad} was accepted");
            }
        }
    }
}
