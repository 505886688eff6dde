//! Scopes (RFC 6749 §3.3, OIDC Core §5.4 and §11) and sets of them.

use std::fmt;

wire_enum! {
    /// The scopes we understand; a request's other scopes are ignored (OIDC Core §3.1.2.1,
    /// RFC 6749 §3.3). Declaration order is the order a [`ScopeSet`] is written in.
    pub enum Scope {
        /// An OpenID Connect request (OIDC Core §3.1.2.1): the ID token and userinfo.
        OpenId = "openid",
        /// `name`, `given_name`, `family_name`, `preferred_username`, `updated_at`
        /// (OIDC Core §5.4).
        Profile = "profile",
        /// `email`, `email_verified` (OIDC Core §5.4).
        Email = "email",
        /// A refresh token that outlives the SSO session (OIDC Core §11).
        OfflineAccess = "offline_access",
    }
}

/// A set of [`Scope`]s, written space-separated in declaration order (`openid profile email`).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(u8);

/// A scope we do not know, where only known scopes may appear.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}")]
pub struct UnknownScope(pub String);

impl ScopeSet {
    pub const EMPTY: Self = Self(0);

    fn bit(scope: Scope) -> u8 {
        1 << (scope as u8)
    }

    /// The scopes we know among a request's space-separated `scope` (the others are ignored,
    /// RFC 6749 §3.3).
    pub fn parse_known(text: &str) -> Self {
        text.split(' ').filter_map(Scope::parse).collect()
    }

    /// Every space-separated value must be a scope we know (a stored value, or a request that
    /// may only narrow a grant).
    pub fn parse_strict(text: &str) -> Result<Self, UnknownScope> {
        text.split(' ')
            .filter(|s| !s.is_empty())
            .map(|s| Scope::parse(s).ok_or_else(|| UnknownScope(s.to_owned())))
            .collect()
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & Self::bit(scope) != 0
    }

    /// Whether every scope of `other` is in this set.
    pub fn covers(self, other: Self) -> bool {
        other.0 & !self.0 == 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    #[must_use]
    pub fn with(self, scope: Scope) -> Self {
        Self(self.0 | Self::bit(scope))
    }

    #[must_use]
    pub fn without(self, scope: Scope) -> Self {
        Self(self.0 & !Self::bit(scope))
    }

    #[must_use]
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The scopes, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .iter()
            .copied()
            .filter(move |s| self.contains(*s))
    }
}

/// A stored scope list (`#[sqlx(try_from = "String")]`), parsed strictly.
impl TryFrom<String> for ScopeSet {
    type Error = UnknownScope;
    fn try_from(text: String) -> Result<Self, UnknownScope> {
        Self::parse_strict(&text)
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        iter.into_iter().fold(Self::EMPTY, Self::with)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopeSet({self})")
    }
}

/// Serialized as a list of scope strings (the shape pending requests were kept in before).
impl serde::Serialize for ScopeSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for ScopeSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<Scope>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_scopes_are_kept_in_declaration_order() {
        let s = ScopeSet::parse_known("email  openid unknown profile");
        assert_eq!(s.to_string(), "openid profile email");
        assert!(s.contains(Scope::OpenId) && !s.contains(Scope::OfflineAccess));
        assert_eq!(ScopeSet::parse_known("").to_string(), "");
        assert!(ScopeSet::parse_known("").is_empty());
    }

    #[test]
    fn strict_parsing_names_the_unknown_scope() {
        assert_eq!(
            ScopeSet::parse_strict("openid admin"),
            Err(UnknownScope("admin".into()))
        );
        assert_eq!(
            ScopeSet::parse_strict(" openid  offline_access ")
                .unwrap()
                .to_string(),
            "openid offline_access"
        );
        assert_eq!(ScopeSet::parse_strict("").unwrap(), ScopeSet::EMPTY);
    }

    #[test]
    fn set_operations() {
        let granted = ScopeSet::parse_known("openid profile email");
        let narrow = ScopeSet::parse_known("openid email");
        assert!(granted.covers(narrow));
        assert!(!narrow.covers(granted));
        assert!(granted.covers(ScopeSet::EMPTY));
        assert_eq!(
            narrow
                .union(ScopeSet::EMPTY.with(Scope::OfflineAccess))
                .to_string(),
            "openid email offline_access"
        );
        assert_eq!(granted.without(Scope::Profile), narrow);
    }

    #[test]
    fn serde_is_a_list_of_strings() {
        let s = ScopeSet::parse_known("openid email");
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"["openid","email"]"#);
        assert_eq!(serde_json::from_str::<ScopeSet>(&json).unwrap(), s);
        assert!(serde_json::from_str::<ScopeSet>(r#"["root"]"#).is_err());
    }
}
