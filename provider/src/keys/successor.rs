//! A refresh token's one successor (RFC 9700 §4.14.2, rotation): derived from the token with a
//! server secret (HMAC-SHA256 through aws-lc-rs), so that every use of one refresh token,
//! however many arrive within the grace window and on whichever instance, yields the very
//! same successor, and nobody without the secret can compute it from the token.

use super::KeyError;
use crate::store::Store;
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The secret's name in the store.
const SECRET: &str = "refresh_derivation";

/// Derives successors. The key never leaves the database and this value (no `Debug` output).
pub struct Successors(hmac::Key);

impl std::fmt::Debug for Successors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Successors(<redacted>)")
    }
}

impl Successors {
    /// The provider's derivation secret, made at first start (all instances share it).
    pub async fn load(store: &Store) -> Result<Self, KeyError> {
        Ok(Self::from_secret(
            super::server_secret(store, SECRET).await?.as_bytes(),
        ))
    }

    pub fn from_secret(secret: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// The successor of refresh token `parent`: 256 bits, written like any random token.
    pub fn of(&self, parent: &str) -> String {
        let mut message = b"gatehouse refresh successor\0".to_vec();
        message.extend_from_slice(parent.as_bytes());
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.0, &message).as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_token_has_one_successor_and_the_secret_decides_it() {
        let a = Successors::from_secret(b"one secret");
        let b = Successors::from_secret(b"another secret");
        assert_eq!(a.of("token"), a.of("token"));
        assert_ne!(a.of("token"), a.of("other"));
        assert_ne!(a.of("token"), b.of("token"));
        assert!(infra::secret::is_token_shaped(&a.of("token")));
        assert_eq!(format!("{a:?}"), "Successors(<redacted>)");
    }
}
