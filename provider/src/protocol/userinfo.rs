//! The UserInfo endpoint's rules (OIDC Core §5.3) and where a Bearer token may travel (RFC
//! 6750 §2): the standard claims of the scopes the access token carries, once the token is
//! ours, live, unrevoked, and its user still active. A token bound to a DPoP key (RFC 9449)
//! comes under the `DPoP` scheme, with a proof by that key for this request and this token
//! (§7.1); it is refused as a bearer token, and the `DPoP` scheme with an unbound one.

use super::dpop;
use super::error::BearerError;
use super::params::Params;
use super::token::AccessClaims;
use crate::context::Ctx;
use crate::store::User;
use crate::types::{BearerErrorCode, Scope, ScopeSet};
use serde::Serialize;

/// How a token was presented: as a bearer token (RFC 6750), or under the `DPoP` scheme with
/// the request's proofs (its `DPoP` headers' values) and method (RFC 9449 §7.1).
pub enum Presented<'a> {
    Bearer,
    Dpop {
        proofs: &'a [&'a str],
        method: &'a str,
    },
}

/// The token in an `Authorization` header's value, under the `Bearer` or the `DPoP` scheme.
pub fn scheme_and_token(value: &str) -> Result<(bool, String), BearerError> {
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("dpop") && !token.trim().is_empty() =>
        {
            Ok((true, token.trim().to_owned()))
        }
        _ => token_in_header(value).map(|t| (false, t)),
    }
}

/// The token in an `Authorization` header's value (RFC 6750 §2.1).
pub fn token_in_header(value: &str) -> Result<String, BearerError> {
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim().to_owned())
        }
        _ => Err(BearerError::invalid_request(
            "the Authorization header must use the Bearer scheme",
        )),
    }
}

/// The one token of a request: in the header, or in a form body's `access_token` (RFC 6750
/// §2.2), never in both.
pub fn one_token(in_header: Option<String>, form: Option<&Params>) -> Result<String, BearerError> {
    let in_body = form.and_then(|f| f.get("access_token")).map(str::to_owned);
    match (in_header, in_body) {
        (Some(_), Some(_)) => Err(BearerError::invalid_request(
            "send the token in one place only",
        )),
        (Some(t), None) | (None, Some(t)) => Ok(t),
        (None, None) => Err(BearerError::MissingAnyScheme),
    }
}

/// The claims userinfo returns (OIDC Core §5.1): `sub`, and those of `profile` and `email`.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct UserInfo {
    pub sub: String,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
}

/// The `profile` scope's claims (OIDC Core §5.4).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Profile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    pub preferred_username: String,
    pub updated_at: i64,
}

/// The `email` scope's claims (OIDC Core §5.4).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Email {
    pub email: String,
    pub email_verified: bool,
}

impl UserInfo {
    /// What `scopes` release of `user`.
    pub fn of(user: &User, scopes: ScopeSet) -> Self {
        let profile = scopes.contains(Scope::Profile).then(|| Profile {
            name: user.name.clone(),
            given_name: user.given_name.clone(),
            family_name: user.family_name.clone(),
            preferred_username: user.username.clone(),
            updated_at: user.updated_at,
        });
        let email = scopes
            .contains(Scope::Email)
            .then(|| user.email.clone())
            .flatten()
            .map(|email| Email {
                email,
                email_verified: user.email_verified,
            });
        Self {
            sub: user.id.clone(),
            profile,
            email,
        }
    }
}

/// The claims for the bearer of `token`.
pub async fn userinfo(ctx: &Ctx, token: &str) -> Result<UserInfo, BearerError> {
    userinfo_presented(ctx, token, &Presented::Bearer).await
}

/// The claims for `token`, presented as `how`.
pub async fn userinfo_presented(
    ctx: &Ctx,
    token: &str,
    how: &Presented<'_>,
) -> Result<UserInfo, BearerError> {
    let now = ctx.clock.unix();
    let claims: AccessClaims = ctx
        .keys
        .current()
        .verify(token, "at+jwt", &ctx.issuer, &ctx.issuer, now)
        .map_err(|_| BearerError::invalid_token("the access token is invalid or expired"))?;
    bound_as_presented(ctx, token, &claims, how).await?;
    let revoked = || BearerError::invalid_token("the access token was revoked");
    if !claims.oidc_scopes().contains(Scope::OpenId) {
        // Not a token for userinfo (RFC 6750 §3.1), once it is known to be live.
        return match ctx.store.access_token(&claims.jti).await? {
            Some(t) if t.revoked_at.is_none() => Err(BearerError::insufficient_scope()),
            _ => Err(revoked()),
        };
    }
    // Revocation takes effect at once: the registry is checked on every use (with the user,
    // in the same query).
    let (_, user) = ctx
        .store
        .access_token_user(&claims.jti)
        .await?
        .filter(|(revoked_at, user)| revoked_at.is_none() && user.id == claims.sub)
        .ok_or_else(revoked)?;
    if user.disabled {
        return Err(BearerError::invalid_token("the user is no longer active"));
    }
    Ok(UserInfo::of(&user, claims.oidc_scopes()))
}

/// RFC 9449 §7.1: a bound token only under the `DPoP` scheme, with one proof for this request
/// (`GET` or `POST` to userinfo), naming this token, by the key it is bound to; the `DPoP`
/// scheme only with a bound token.
async fn bound_as_presented(
    ctx: &Ctx,
    token: &str,
    claims: &AccessClaims,
    how: &Presented<'_>,
) -> Result<(), BearerError> {
    let invalid_proof = |why| BearerError::OAuth {
        code: BearerErrorCode::InvalidDpopProof,
        description: why,
    };
    match (&claims.cnf, how) {
        (None, Presented::Bearer) => Ok(()),
        (Some(_), Presented::Bearer) => Err(BearerError::NeedsDpop(
            "the access token is bound to a DPoP key: present it under the DPoP scheme, with a \
             proof",
        )),
        (None, Presented::Dpop { .. }) => Err(BearerError::invalid_token(
            "the access token is not bound to a DPoP key: present it as a Bearer token",
        )),
        (Some(cnf), Presented::Dpop { proofs, method }) => {
            let [proof] = proofs else {
                return Err(invalid_proof("send one DPoP proof with the token"));
            };
            let url = ctx.url(crate::paths::USERINFO);
            let expected = dpop::Expected {
                method,
                url: &url,
                access_token: Some(token),
            };
            match dpop::verify(ctx, proof, &expected, false).await {
                Ok(p) if p.jkt == cnf.jkt => Ok(()),
                Ok(_) => Err(invalid_proof(
                    "the proof is made by another key than the token's",
                )),
                Err(dpop::Refused::Invalid(why)) => Err(invalid_proof(why)),
                Err(dpop::Refused::Nonce) => Err(invalid_proof("a nonce is required")),
                Err(dpop::Refused::System(e)) => Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> User {
        User {
            id: "u1".into(),
            username: "alice".into(),
            password_hash: String::new(),
            name: Some("Alice Liddell".into()),
            given_name: None,
            family_name: None,
            email: Some("alice@example.com".into()),
            email_verified: true,
            developer: false,
            disabled: false,
            updated_at: 7,
            session_epoch: 0,
        }
    }

    #[test]
    fn each_scope_releases_its_claims_only() {
        let bare = UserInfo::of(&alice(), ScopeSet::parse_known("openid"));
        assert_eq!(
            serde_json::to_value(&bare).unwrap(),
            serde_json::json!({"sub": "u1"})
        );
        let all = UserInfo::of(&alice(), ScopeSet::parse_known("openid profile email"));
        assert_eq!(
            serde_json::to_value(&all).unwrap(),
            serde_json::json!({"sub": "u1", "name": "Alice Liddell", "preferred_username": "alice",
                "updated_at": 7, "email": "alice@example.com", "email_verified": true})
        );
        let mut no_email = alice();
        no_email.email = None;
        let info = UserInfo::of(&no_email, ScopeSet::parse_known("openid email"));
        assert_eq!(info.email, None, "no address, no email claims");
    }

    #[test]
    fn the_token_travels_in_one_place() {
        assert_eq!(token_in_header("Bearer abc ").unwrap(), "abc");
        assert_eq!(token_in_header("bearer abc").unwrap(), "abc");
        for bad in ["Basic abc", "Bearer", "Bearer  ", "abc"] {
            let code = token_in_header(bad).unwrap_err().code();
            assert_eq!(code, Some(BearerErrorCode::InvalidRequest), "{bad}");
        }
        let form = Params::parse(b"access_token=xyz").unwrap();
        assert_eq!(one_token(None, Some(&form)).unwrap(), "xyz");
        assert_eq!(one_token(Some("h".into()), None).unwrap(), "h");
        let both = one_token(Some("h".into()), Some(&form)).unwrap_err();
        assert_eq!(both.code(), Some(BearerErrorCode::InvalidRequest));
        assert!(matches!(
            one_token(None, None),
            Err(BearerError::MissingAnyScheme)
        ));
    }
}
