//! [`SessionId`]: the secret a session cookie carries.

use infra::secret::{RandomError, hash_secret, is_token_shaped, random_token};

/// A session id: the secret the cookie carries. Never logged (its `Debug` is redacted) and
/// never stored (the store keys on [`SessionId::hash`]).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId(String);

impl SessionId {
    /// A new id: 256 bits from the OS CSPRNG.
    pub fn generate() -> Result<Self, RandomError> {
        random_token().map(Self)
    }

    /// Accepts a cookie value only if it has the shape of an id we issue; anything else is
    /// treated as no session at all (and so can never be adopted).
    pub fn parse(value: &str) -> Option<Self> {
        is_token_shaped(value).then(|| Self(value.to_owned()))
    }

    /// The value to put in the cookie.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The key the store uses.
    pub fn hash(&self) -> String {
        hash_secret(&self.0)
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_refuses_foreign_shapes() {
        assert!(SessionId::parse("short").is_none());
        assert!(SessionId::parse(&"a".repeat(44)).is_none());
        assert!(SessionId::parse(&format!("{}=", "a".repeat(42))).is_none());
        assert!(SessionId::parse(&"a".repeat(43)).is_some());
    }

    #[test]
    fn hash_is_stable_and_not_the_id() {
        let id = SessionId::generate().unwrap();
        assert_eq!(id.hash(), id.hash());
        assert_ne!(id.hash(), id.expose());
        assert_eq!(format!("{id:?}"), "SessionId(<redacted>)");
    }
}
