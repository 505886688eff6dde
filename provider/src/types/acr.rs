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
        /// A passkey kept on one device (WebAuthn: not backup eligible, such as a security
        /// key or a platform authenticator's chip): proof of a hardware-secured key.
        Hwk = "hwk",
        /// A passkey that may be synchronised between devices (WebAuthn: backup eligible,
        /// such as one in a password manager): proof of a software-secured key.
        Swk = "swk",
        /// The passkey's authenticator verified the person (WebAuthn's UV flag: a PIN or a
        /// biometric on the device; which one it does not say). RFC 8176 `user` is a test of
        /// the person's presence, which user verification includes.
        User = "user",
    }
}

wire_enum! {
    /// The authentication context classes Gatehouse answers for (`acr`, OIDC Core §2), from
    /// the lowest. A higher level satisfies a request for a lower one.
    pub enum Level {
        /// One factor: a password.
        Pwd = "urn:gatehouse:acr:pwd",
        /// Two factors of different kinds: a password and something the person has (an
        /// authenticator app's code, a passkey), or a passkey that verified the person.
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

    /// These methods and `other`'s.
    #[must_use]
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
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

    /// Whether a key was proved (a passkey).
    pub fn has_key(self) -> bool {
        self.contains(Method::Hwk) || self.contains(Method::Swk)
    }

    /// The level these methods reach: two factors of different kinds are [`Level::Mfa`]:
    /// something known (a password) and something held (a code, a key), or a key whose
    /// authenticator verified the person (a PIN or a biometric, known or inherent).
    pub fn level(self) -> Level {
        let held = self.contains(Method::Otp) || self.has_key();
        let known = self.contains(Method::Pwd);
        if (known && held) || (self.has_key() && self.contains(Method::User)) {
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
        // A passkey that verified the person is two; one that did not, one.
        let passkey = Methods::NONE.with(Method::Swk).with(Method::User);
        assert_eq!(passkey.level(), Level::Mfa);
        assert_eq!(passkey.amr(), ["swk", "user", "mfa"]);
        assert_eq!(Methods::NONE.with(Method::Hwk).level(), Level::Pwd);
        assert_eq!(Methods::NONE.with(Method::User).level(), Level::Pwd);
        let second = Methods::PASSWORD.with(Method::Hwk).with(Method::User);
        assert_eq!(second.amr(), ["pwd", "hwk", "user", "mfa"]);
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
        let passkey = Methods::NONE.with(Method::Hwk).with(Method::User);
        assert_eq!(Methods::parse_strict(&passkey.to_string()), Ok(passkey));
        assert_eq!(Methods::parse_strict(""), Ok(Methods::NONE));
        assert!(
            Methods::parse_strict("pwd mfa").is_err(),
            "mfa is derived, never stored"
        );
        assert!(Methods::parse_strict("PWD").is_err());
    }
}
