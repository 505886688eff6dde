//! Token revocation (RFC 7009) and introspection (RFC 7662). Both take an authenticated
//! client, and a client reaches its own tokens only, except that an API's client may also
//! introspect the access tokens addressed to that API (RFC 7662 §2.1): another's token is
//! "not revoked" (RFC 7009 §2.1 answers 200 anyway) and "not active" (RFC 7662 §2.2).

use super::error::TokenError;
use super::params::Params;
use super::token::AccessClaims;
use super::token::issue::Confirmation;
use crate::audit::{self, Event, Kind};
use crate::context::Ctx;
use crate::store::{AccessTokenRow, Client, RefreshTokenRow, Revoke};
use crate::types::{AuthMethod, TokenErrorCode, TokenType, TokenTypeHint};
use infra::secret::hash_secret;
use serde::Serialize;

/// The token a revocation or introspection request is about (RFC 7009 §2.1, RFC 7662 §2.1).
struct TokenQuery<'a> {
    token: &'a str,
    hint: Option<TokenTypeHint>,
}

impl<'a> TokenQuery<'a> {
    fn parse(form: &'a Params) -> Result<Self, TokenError> {
        // The one parameter the form surface lets repeat is the token endpoint's.
        form.check_repeated()
            .map_err(|e| TokenError::invalid_request(e.to_string()))?;
        Ok(Self {
            token: form
                .get("token")
                .ok_or_else(|| TokenError::invalid_request("token is required"))?,
            hint: form.get("token_type_hint").and_then(TokenTypeHint::parse),
        })
    }
}

/// A presented token, found and belonging to the calling client.
enum Found {
    Refresh(RefreshTokenRow),
    Access(AccessClaims, Box<AccessTokenRow>),
}

/// Who may reach a token besides the client it was issued to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// Nobody: revocation (RFC 7009 §2.1, the token must have been issued to the caller).
    Owner,
    /// Also the API an access token is addressed to: introspection (RFC 7662 §2.1).
    OwnerOrAudience,
}

/// Looks `token` up as the hint suggests (RFC 7009 §2.1: the hint only orders the search; an
/// unknown hint is no hint).
async fn find(
    ctx: &Ctx,
    client: &Client,
    q: &TokenQuery<'_>,
    reach: Reach,
) -> Result<Option<Found>, TokenError> {
    let token = q.token;
    let order = match q.hint {
        Some(TokenTypeHint::AccessToken) => {
            [TokenTypeHint::AccessToken, TokenTypeHint::RefreshToken]
        }
        _ => [TokenTypeHint::RefreshToken, TokenTypeHint::AccessToken],
    };
    for kind in order {
        let found = match kind {
            TokenTypeHint::RefreshToken => ctx
                .store
                .refresh_token(&hash_secret(token))
                .await?
                .map(Found::Refresh),
            TokenTypeHint::AccessToken => find_access(ctx, token).await?,
        };
        if let Some(f) = found {
            return Ok(reaches(ctx, client, &f, reach).await?.then_some(f));
        }
    }
    Ok(None)
}

/// Whether `client` may learn about or revoke the token: its own, or, for an access token
/// addressed to an API, the API's own client (RFC 7662 §2.1: the protected resource asks
/// about the tokens presented to it).
async fn reaches(
    ctx: &Ctx,
    client: &Client,
    found: &Found,
    reach: Reach,
) -> Result<bool, TokenError> {
    let (owner, aud) = match found {
        Found::Refresh(r) => (&r.client_id, None),
        Found::Access(c, a) => (&a.client_id, Some(&c.aud)),
    };
    if owner == &client.client_id {
        return Ok(true);
    }
    if reach == Reach::Owner {
        return Ok(false);
    }
    let Some(aud) = aud.filter(|aud| **aud != ctx.issuer) else {
        return Ok(false);
    };
    let api = ctx.store.resource(aud).await?;
    Ok(api.is_some_and(|api| api.client_id.as_deref() == Some(client.client_id.as_str())))
}

/// An access token of ours (signature, type and issuer; expiry is judged by the caller; any
/// audience, judged by [`reaches`]) and its registry entry.
async fn find_access(ctx: &Ctx, token: &str) -> Result<Option<Found>, TokenError> {
    let keys = ctx.keys.current();
    let Ok(claims) = keys.verify_with::<AccessClaims>(token, "at+jwt", &ctx.issuer, None, None)
    else {
        return Ok(None);
    };
    let row = ctx.store.access_token(&claims.jti).await?;
    Ok(row.map(|row| Found::Access(claims, Box::new(row))))
}

/// RFC 7009 §2: revokes the token if it is the caller's. Revoking a refresh token revokes its
/// grant: the family and its access tokens (§2.1). Nothing is said about tokens of others.
pub async fn revoke(ctx: &Ctx, client: &Client, form: &Params) -> Result<(), TokenError> {
    let query = TokenQuery::parse(form)?;
    let now = ctx.clock.unix();
    let event = Event::new(Kind::TokenRevoked).client(&client.client_id);
    match find(ctx, client, &query, Reach::Owner).await? {
        Some(Found::Refresh(r)) => {
            ctx.store.revoke(Revoke::Grant(&r.grant_id), now).await?;
            let detail = format!("refresh token: grant {} revoked", r.grant_id);
            let event = event.user(&r.user_id).detail(detail);
            audit::record(&ctx.store, &ctx.clock, event).await;
        }
        Some(Found::Access(claims, _)) => {
            ctx.store.revoke_access_token(&claims.jti, now).await?;
            let detail = format!("access token {}", claims.jti);
            let event = event.user(&claims.sub).detail(detail);
            audit::record(&ctx.store, &ctx.clock, event).await;
        }
        None => {}
    }
    Ok(())
}

/// RFC 7662 §2.2: whether a token is active, and what it says.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Introspection {
    Active(Box<ActiveToken>),
    Inactive { active: bool },
}

/// The members of an active token's introspection (RFC 7662 §2.2).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ActiveToken {
    active: bool,
    token_type: &'static str,
    scope: String,
    client_id: String,
    sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    iss: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    iat: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    /// The DPoP key a bound access token needs (RFC 9449 §6.2, RFC 7800).
    #[serde(skip_serializing_if = "Option::is_none")]
    cnf: Option<Confirmation>,
}

impl Introspection {
    const INACTIVE: Self = Self::Inactive { active: false };

    pub fn is_active(&self) -> bool {
        matches!(self, Self::Active(_))
    }
}

/// RFC 7662 §2: what the caller's token is. Introspection tells what a token grants, so only
/// confidential clients may ask (RFC 7662 §2.1).
pub async fn introspect(
    ctx: &Ctx,
    client: &Client,
    form: &Params,
) -> Result<Introspection, TokenError> {
    if client.auth_method == AuthMethod::None {
        return Err(TokenError::invalid_client());
    }
    let query = TokenQuery::parse(form)?;
    let now = ctx.clock.unix();
    Ok(
        match find(ctx, client, &query, Reach::OwnerOrAudience).await? {
            Some(Found::Refresh(r))
                if r.revoked_at.is_none() && r.used_at.is_none() && r.family_expires_at > now =>
            {
                let user = ctx.store.user_by_id(&r.user_id).await?;
                match user.filter(|u| !u.disabled) {
                    Some(user) => Introspection::Active(Box::new(ActiveToken {
                        active: true,
                        token_type: TokenTypeHint::RefreshToken.as_str(),
                        scope: r.scope.to_string(),
                        client_id: r.client_id,
                        sub: r.user_id,
                        username: Some(user.username),
                        iss: ctx.issuer.clone(),
                        aud: None,
                        iat: r.issued_at,
                        exp: r.family_expires_at,
                        jti: None,
                        cnf: r.dpop_jkt.map(|jkt| Confirmation { jkt }),
                    })),
                    None => Introspection::INACTIVE,
                }
            }
            Some(Found::Access(c, row)) if row.revoked_at.is_none() && c.exp > now => {
                Introspection::Active(Box::new(ActiveToken {
                    active: true,
                    // RFC 9449 §6.2: a bound token's type is DPoP.
                    token_type: match c.cnf {
                        Some(_) => TokenType::DPoP.as_str(),
                        None => TokenType::Bearer.as_str(),
                    },
                    scope: c.scope,
                    client_id: c.client_id,
                    sub: c.sub,
                    username: None,
                    iss: c.iss,
                    aud: Some(c.aud),
                    iat: c.iat,
                    exp: c.exp,
                    jti: Some(c.jti),
                    cnf: c.cnf,
                }))
            }
            _ => Introspection::INACTIVE,
        },
    )
}

/// The API whose revocation feed `client` asks for (`resource`, its indicator): only the API's
/// own client, confidential, may hear which of its tokens are revoked (`crate::feed`).
/// `invalid_target` for an indicator that is not a registered API, `unauthorized_client` for
/// any other client (RFC 6749 §5.2, RFC 8707 §2).
pub async fn feed_subscriber(
    ctx: &Ctx,
    client: &Client,
    form: &Params,
) -> Result<String, TokenError> {
    form.check_repeated()
        .map_err(|e| TokenError::invalid_request(e.to_string()))?;
    let resource = form
        .get("resource")
        .ok_or_else(|| TokenError::invalid_request("resource is required"))?;
    let Some(api) = ctx.store.resource(resource).await? else {
        return Err(TokenError::invalid_target(
            "no API is registered at this resource",
        ));
    };
    let own = api.client_id.as_deref() == Some(client.client_id.as_str());
    if !own || client.auth_method == AuthMethod::None {
        return Err(TokenError::new(
            TokenErrorCode::UnauthorizedClient,
            "only the API's own confidential client may hear its revocations",
        ));
    }
    Ok(api.resource_id)
}
