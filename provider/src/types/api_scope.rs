//! The scopes an API defines (`notes:read`), and sets of them as granted and carried by its
//! access tokens. Unlike [`super::ScopeSet`] these are not ours to know in advance: each API
//! registers its own (`provider resources add --scope …`).

use std::collections::BTreeSet;
use std::fmt;

/// The longest scope name an API may define.
pub const MAX_API_SCOPE_LEN: usize = 64;
/// The most scopes one API may define.
pub const MAX_API_SCOPES: usize = 32;

/// A set of API scope names, each a valid scope token (RFC 6749 §3.3), written space-separated
/// in sorted order.
#[derive(Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ApiScopes(BTreeSet<String>);

/// Why a scope name cannot be an API's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadApiScope {
    #[error(
        "{0:?} is not a scope name (RFC 6749 §3.3: printable ASCII without spaces, quotes or backslashes)"
    )]
    Syntax(String),
    #[error("{0:?} is longer than {MAX_API_SCOPE_LEN} characters")]
    TooLong(String),
    #[error("{0:?} is an OpenID Connect scope of the provider's own")]
    Reserved(String),
    #[error("an API defines at most {MAX_API_SCOPES} scopes")]
    TooMany,
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

impl ApiScopes {
    /// The scopes an API registers: valid, short, none of the provider's own, at most
    /// [`MAX_API_SCOPES`].
    pub fn define<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, BadApiScope> {
        let mut set = BTreeSet::new();
        for name in names {
            if !is_scope_token(name) {
                return Err(BadApiScope::Syntax(name.to_owned()));
            }
            if name.len() > MAX_API_SCOPE_LEN {
                return Err(BadApiScope::TooLong(name.chars().take(80).collect()));
            }
            if super::Scope::parse(name).is_some() {
                return Err(BadApiScope::Reserved(name.to_owned()));
            }
            set.insert(name.to_owned());
            if set.len() > MAX_API_SCOPES {
                return Err(BadApiScope::TooMany);
            }
        }
        Ok(Self(set))
    }

    /// Those of `self` that the space-separated `requested` names; the rest of `requested` is
    /// not this API's and is ignored (RFC 6749 §3.3).
    #[must_use]
    pub fn pick(&self, requested: &str) -> Self {
        Self(
            requested
                .split(' ')
                .filter(|s| self.0.contains(*s))
                .map(str::to_owned)
                .collect(),
        )
    }

    /// Whether every scope of `other` is in `self`.
    pub fn covers(&self, other: &Self) -> bool {
        other.0.is_subset(&self.0)
    }

    #[must_use]
    pub fn union(&self, other: &Self) -> Self {
        Self(self.0.union(&other.0).cloned().collect())
    }

    #[must_use]
    pub fn intersection(&self, other: &Self) -> Self {
        Self(self.0.intersection(&other.0).cloned().collect())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains(name)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// A stored list (`#[sqlx(try_from = "String")]`), written under [`ApiScopes::define`]'s
/// rules and read back by syntax alone: a later version that knows another OpenID scope, or
/// defines fewer, must still read what an earlier one stored.
impl TryFrom<String> for ApiScopes {
    type Error = BadApiScope;
    fn try_from(text: String) -> Result<Self, BadApiScope> {
        let mut set = BTreeSet::new();
        for name in text.split(' ').filter(|s| !s.is_empty()) {
            if !is_scope_token(name) {
                return Err(BadApiScope::Syntax(name.to_owned()));
            }
            set.insert(name.to_owned());
        }
        Ok(Self(set))
    }
}

impl fmt::Display for ApiScopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope)?;
        }
        Ok(())
    }
}

impl fmt::Debug for ApiScopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiScopes({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_defines_valid_scope_tokens_of_its_own() {
        let s = ApiScopes::define(["notes:write", "notes:read", "notes:read"]).unwrap();
        assert_eq!(s.to_string(), "notes:read notes:write");
        for (bad, why) in [
            ("", BadApiScope::Syntax(String::new())),
            ("a b", BadApiScope::Syntax("a b".into())),
            ("quo\"te", BadApiScope::Syntax("quo\"te".into())),
            ("back\\slash", BadApiScope::Syntax("back\\slash".into())),
            ("tab\t", BadApiScope::Syntax("tab\t".into())),
            ("é", BadApiScope::Syntax("é".into())),
            ("openid", BadApiScope::Reserved("openid".into())),
            (
                "offline_access",
                BadApiScope::Reserved("offline_access".into()),
            ),
        ] {
            assert_eq!(ApiScopes::define([bad]), Err(why), "{bad:?}");
        }
        let long = "x".repeat(MAX_API_SCOPE_LEN + 1);
        assert!(matches!(
            ApiScopes::define([long.as_str()]),
            Err(BadApiScope::TooLong(_))
        ));
        let many: Vec<String> = (0..=MAX_API_SCOPES).map(|i| format!("s{i}")).collect();
        assert_eq!(
            ApiScopes::define(many.iter().map(String::as_str)),
            Err(BadApiScope::TooMany)
        );
    }

    #[test]
    fn a_request_picks_only_the_apis_scopes() {
        let api = ApiScopes::define(["notes:read", "notes:write"]).unwrap();
        let picked = api.pick("openid notes:read  admin notes:read");
        assert_eq!(picked.to_string(), "notes:read");
        assert!(api.covers(&picked) && !picked.covers(&api));
        assert!(api.pick("openid").is_empty());
        assert_eq!(picked.union(&api), api);
        assert_eq!(api.intersection(&picked), picked);
        let stored = ApiScopes::try_from(api.to_string()).unwrap();
        assert_eq!(stored, api);
        // Stored values are read by syntax alone (a name a later version reserves still reads).
        assert!(ApiScopes::try_from("openid".to_owned()).is_ok());
        assert!(ApiScopes::try_from("bad\"name".to_owned()).is_err());
    }
}
