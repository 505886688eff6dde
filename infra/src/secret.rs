//! Secrets: generation from the OS CSPRNG, hashing for storage, constant-time comparison.
//!
//! Session ids, authorization codes, refresh tokens, client secrets and registration tokens are
//! all 256-bit random values written as base64url. The store only ever sees their SHA-256 (also base64url): a
//! 256-bit secret needs no slow password hash, and a leaked table yields nothing usable.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Length of a base64url-encoded 256-bit token.
pub const TOKEN_LEN: usize = 43;

/// The OS random source failed; nothing safe can be issued.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomError;

/// Fills `buf` from the OS CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> Result<(), RandomError> {
    rand::rngs::SysRng
        .try_fill_bytes(buf)
        .map_err(|_| RandomError)
}

/// A fresh 256-bit token from the OS CSPRNG, base64url without padding (43 characters).
pub fn random_token() -> Result<String, RandomError> {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// A fresh 128-bit identifier (for public handles), base64url (22 characters).
pub fn random_handle() -> Result<String, RandomError> {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// SHA-256 of `secret`, base64url: the form in which secrets are stored and looked up.
pub fn hash_secret(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time equality of two strings (length is not secret).
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Whether `s` has the shape of a token made by [`random_token`].
pub fn is_token_shaped(s: &str) -> bool {
    s.len() == TOKEN_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_well_formed() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert_ne!(a, b);
        assert!(is_token_shaped(&a), "{a}");
        assert_eq!(random_handle().unwrap().len(), 22);
    }

    #[test]
    fn ct_eq_compares() {
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "abcd"));
    }
}
