//! How a person signed in: the authentication methods (`amr`, RFC 8176) a sign-in used, and
//! the level (`acr`, OIDC Core §2) they add up to.

use std::fmt;

wire_enum! {
    /// An authentication method a Gatehouse sign-in records (RFC 8176 §2). Declaration order
    /// is the order [`Methods`] are written in.
    pub enum Method {
        /// A password.
        Pwd = "pwd",
        /// A one-time password: an authenticator app's code (RFC 6238), or one of the
        /// account's one-time recovery codes.
        Otp = "otp",
    }
}

wire_enum! {
    /// The authentication context classes Gatehouse answers for (`acr`, OIDC Core §2), from
    /// the lowest. A higher level satisfies a request for a lower one.
    pub enum Level {
        /// One factor: a password.
        Pwd = "urn:gatehouse:acr:pwd",
        /// Two factors of different kinds: a password and a code from something the person
        /// has.
        Mfa = "urn:gatehouse:acr:mfa",
    }
}

impl Level {
    /// The values `acr_values_supported` lists (OIDC Discovery §3).
    pub fn supported() -> Vec<&'static str> {
        Self::ALL.iter().map(|l| l.as_str()).collect()
    }
}

/// The methods of one sign-in, written space-separated in declaration order (`pwd otp`),
/// as sessions, codes and refresh tokens keep them.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Methods(u8);

/// A stored method list with a value we do not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown authentication method {0:?}")]
pub struct UnknownMethod(pub String);

impl Methods {
    pub const NONE: Self = Self(0);
    /// A password alone: what every sign-in recorded before methods were recorded.
    pub const PASSWORD: Self = Self(1 << Method::Pwd as u8);

    fn bit(method: Method) -> u8 {
        1 << (method as u8)
    }

    #[must_use]
    pub fn with(self, method: Method) -> Self {
        Self(self.0 | Self::bit(method))
    }

    pub fn contains(self, method: Method) -> bool {
        self.0 & Self::bit(method) != 0
    }

    /// The methods, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Method> {
        Method::ALL
            .iter()
            .copied()
            .filter(move |m| self.contains(*m))
    }

    /// The level these methods reach: two factors of different kinds (something known and
    /// something held) are [`Level::Mfa`].
    pub fn level(self) -> Level {
        if self.contains(Method::Pwd) && self.contains(Method::Otp) {
            Level::Mfa
        } else {
            Level::Pwd
        }
    }

    /// The `amr` claim (OIDC Core §2): the methods, and `mfa` (RFC 8176 §2) when they are
    /// factors of different kinds.
    pub fn amr(self) -> Vec<&'static str> {
        let mut amr: Vec<&'static str> = self.iter().map(Method::as_str).collect();
        if self.level() == Level::Mfa {
            amr.push("mfa");
        }
        amr
    }

    /// A stored list: every value must be a method we know.
    pub fn parse_strict(text: &str) -> Result<Self, UnknownMethod> {
        text.split(' ')
            .filter(|s| !s.is_empty())
            .try_fold(Self::NONE, |acc, s| {
                Method::parse(s)
                    .map(|m| acc.with(m))
                    .ok_or_else(|| UnknownMethod(s.to_owned()))
            })
    }
}

/// A stored method list (`#[sqlx(try_from = "String")]`), parsed strictly.
impl TryFrom<String> for Methods {
    type Error = UnknownMethod;
    fn try_from(text: String) -> Result<Self, UnknownMethod> {
        Self::parse_strict(&text)
    }
}

impl fmt::Display for Methods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, method) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(method.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Methods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Methods({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_alone_is_one_factor_and_with_a_code_two() {
        assert_eq!(Methods::PASSWORD.level(), Level::Pwd);
        assert_eq!(Methods::PASSWORD.amr(), ["pwd"]);
        let both = Methods::PASSWORD.with(Method::Otp);
        assert_eq!(both.level(), Level::Mfa);
        assert_eq!(both.amr(), ["pwd", "otp", "mfa"]);
        // A code alone is one factor too.
        assert_eq!(Methods::NONE.with(Method::Otp).level(), Level::Pwd);
        assert!(
            Level::Mfa > Level::Pwd,
            "a higher level satisfies a lower one"
        );
    }

    #[test]
    fn stored_lists_round_trip_and_unknown_methods_are_refused() {
        let both = Methods::PASSWORD.with(Method::Otp);
        assert_eq!(both.to_string(), "pwd otp");
        assert_eq!(Methods::parse_strict("otp pwd"), Ok(both));
        assert_eq!(Methods::parse_strict(""), Ok(Methods::NONE));
        assert!(
            Methods::parse_strict("pwd mfa").is_err(),
            "mfa is derived, never stored"
        );
        assert!(Methods::parse_strict("PWD").is_err());
    }
}
