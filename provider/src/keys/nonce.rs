//! DPoP nonces (RFC 9449 §8): values the provider hands out and expects back in proofs, so
//! that a proof cannot have been made ahead of time. Stateless: a nonce is a minute's number
//! and its HMAC-SHA256 under a server secret (made at first start, shared by every instance
//! through the store), so any instance checks any instance's nonce without a lookup. A nonce
//! is good in its minute and the next one, and a minute early (an instance whose clock runs a
//! little ahead may hand out the next minute's).

use super::KeyError;
use crate::store::Store;
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The secret's name in the store.
const SECRET: &str = "dpop_nonce";
/// A nonce's minute, in seconds.
const WINDOW_SECS: i64 = 60;

/// Makes and checks nonces (no `Debug` output of the key).
pub struct Nonces(hmac::Key);

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Nonces(<redacted>)")
    }
}

impl Nonces {
    /// The provider's nonce secret, made at first start (all instances share it).
    pub async fn load(store: &Store) -> Result<Self, KeyError> {
        let secret = super::server_secret(store, SECRET).await?;
        Ok(Self::from_secret(secret.as_bytes()))
    }

    pub fn from_secret(secret: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    fn of_window(&self, window: i64) -> String {
        let mut message = b"gatehouse dpop nonce\0".to_vec();
        message.extend_from_slice(&window.to_be_bytes());
        let mac = hmac::sign(&self.0, &message);
        format!("{window}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()))
    }

    /// The nonce to hand out at `now`.
    pub fn current(&self, now: i64) -> String {
        self.of_window(now.div_euclid(WINDOW_SECS))
    }

    /// Whether `nonce` was handed out in this minute, the last or (by a clock a little ahead)
    /// the next (constant-time comparison).
    pub fn accepts(&self, nonce: &str, now: i64) -> bool {
        let window = now.div_euclid(WINDOW_SECS);
        let Some(given) = nonce
            .split_once('.')
            .and_then(|(w, _)| w.parse::<i64>().ok())
        else {
            return false;
        };
        (window - 1..=window + 1).contains(&given)
            && infra::secret::ct_eq(&self.of_window(given), nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_good_for_its_minute_and_the_next_under_its_secret_only() {
        let n = Nonces::from_secret(b"secret");
        let t = 6_000_000;
        let nonce = n.current(t);
        assert!(n.accepts(&nonce, t));
        assert!(n.accepts(&nonce, t + 119));
        assert!(!n.accepts(&nonce, t + 120));
        assert!(n.accepts(&nonce, t - 60), "a clock a minute behind");
        assert!(!n.accepts(&nonce, t - 120), "not long before it was made");
        assert!(!Nonces::from_secret(b"other").accepts(&nonce, t));
        for forged in ["", ".", "100000.x", &format!("{}.AAAA", t / 60)] {
            assert!(!n.accepts(forged, t), "{forged}");
        }
        assert_eq!(format!("{n:?}"), "Nonces(<redacted>)");
    }
}
