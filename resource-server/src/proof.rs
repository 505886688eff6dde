//! An API's own DPoP key (RFC 9449), for the calls it makes as a client: a token exchange
//! sent with a proof gets a token bound to this key (§5), and the next API accepts that token
//! only with a proof by it (§7). Proofs are made here because no well-kept Rust crate makes
//! them; the signature itself is `jsonwebtoken`'s, the key `aws-lc-rs`'s, and the claims are
//! the handful §4.2 lists.
//!
//! The key lives in memory: a restarted API makes a new one, and its bound tokens (minutes
//! long) are simply exchanged again. Each server's last `DPoP-Nonce` (§8) is kept, by origin,
//! and sent to that server alone, so that only the first request, or one after the nonce
//! moved on, costs a second round trip.

use infra::Clock;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// The most servers whose nonces are kept (an API calls a handful).
const MAX_NONCES: usize = 16;

/// Why no key could be made, or no proof signed.
#[derive(Debug, thiserror::Error)]
#[error("DPoP proof key: {0}")]
pub struct ProofKeyError(String);

/// An ES256 key for DPoP proofs, and the provider's last nonce.
pub struct ProofKey {
    key: EncodingKey,
    jwk: Jwk,
    jkt: String,
    clock: Clock,
    /// The last nonce each server (by origin) sent.
    nonces: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for ProofKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key stays out of logs.
        f.debug_struct("ProofKey").field("jkt", &self.jkt).finish()
    }
}

impl ProofKey {
    /// A new P-256 key; proofs are dated by `clock`.
    pub fn generate(clock: Clock) -> Result<Self, ProofKeyError> {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let fail = |e: &dyn std::fmt::Display| ProofKeyError(e.to_string());
        let pair =
            EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|e| fail(&e))?;
        let der = pair.to_pkcs8v1().map_err(|e| fail(&e))?;
        let key = EncodingKey::from_ec_der(der.as_ref());
        let jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).map_err(|e| fail(&e))?;
        let jkt = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| fail(&e))?;
        Ok(Self {
            key,
            jwk,
            jkt,
            clock,
            nonces: Mutex::new(HashMap::new()),
        })
    }

    /// The key's RFC 7638 thumbprint: a token bound to it carries it as `cnf.jkt`.
    pub fn jkt(&self) -> &str {
        &self.jkt
    }

    /// A proof for one request (§4.2): `method` to `url` (its query and fragment are not
    /// part of `htu`), with that server's last nonce if one was heard, naming `access_token`
    /// (`ath`) when the request carries one.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
    ) -> Result<String, ProofKeyError> {
        let htu = url.split(['?', '#']).next().unwrap_or(url);
        let jti = infra::secret::random_handle().map_err(|e| ProofKeyError(e.to_string()))?;
        let mut claims = serde_json::json!({
            "jti": jti, "htm": method, "htu": htu, "iat": self.clock.unix(),
        });
        if let Some(nonce) = self.nonce_of(url) {
            claims["nonce"] = nonce.into();
        }
        if let Some(token) = access_token {
            claims["ath"] = infra::dpop::token_hash(token).into();
        }
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.jwk.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| ProofKeyError(e.to_string()))
    }

    /// The `Authorization` and `DPoP` header values for a call to another API with `token`,
    /// a token bound to this key (§7.1).
    pub fn authorization(
        &self,
        method: &str,
        url: &str,
        token: &str,
    ) -> Result<(String, String), ProofKeyError> {
        Ok((
            format!("DPoP {token}"),
            self.proof(method, url, Some(token))?,
        ))
    }

    /// Keeps the nonce the server at `url` sent (`DPoP-Nonce`), for the next proofs to it.
    pub fn heard_nonce(&self, url: &str, nonce: &str) {
        let Some(origin) = origin(url) else { return };
        let mut nonces = self.nonces.lock().unwrap_or_else(PoisonError::into_inner);
        if nonces.len() >= MAX_NONCES && !nonces.contains_key(&origin) {
            nonces.clear();
        }
        nonces.insert(origin, nonce.to_owned());
    }

    fn nonce_of(&self, url: &str) -> Option<String> {
        let nonces = self.nonces.lock().unwrap_or_else(PoisonError::into_inner);
        nonces.get(&origin(url)?).cloned()
    }
}

/// The origin of `url` (scheme, host and port): whose nonce a proof carries.
fn origin(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    Some(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Its proofs pass the checks the provider and the APIs make (`infra::dpop::check`).
    #[test]
    fn its_proofs_pass_the_checks_of_rfc_9449() {
        let clock = Clock::system();
        let key = ProofKey::generate(clock.clone()).unwrap();
        let url = "https://audit.example/events";
        let proof = key
            .proof("POST", &format!("{url}?x=1"), Some("tok"))
            .unwrap();
        let expected = infra::dpop::Expected {
            method: "POST",
            url,
            access_token: Some("tok"),
        };
        let checked = infra::dpop::check(&proof, &expected, clock.unix()).unwrap();
        assert_eq!(checked.jkt, key.jkt());
        assert_eq!(checked.nonce, None);
        // Another proof has another jti; a nonce heard is carried from then on, to its
        // server alone.
        key.heard_nonce("https://audit.example/other", "n-1");
        let (authorization, again) = key.authorization("POST", url, "tok").unwrap();
        assert_eq!(authorization, "DPoP tok");
        let again = infra::dpop::check(&again, &expected, clock.unix()).unwrap();
        assert_ne!(again.jti, checked.jti);
        assert_eq!(again.nonce.as_deref(), Some("n-1"));
        let elsewhere = key
            .proof("POST", "https://idp.example/token", None)
            .unwrap();
        let payload = elsewhere.split('.').nth(1).unwrap();
        let claims =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&claims).unwrap();
        assert!(claims.get("nonce").is_none(), "{claims}");
        assert!(!format!("{key:?}").contains("key:"));
    }
}
