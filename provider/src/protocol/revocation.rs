//! Token revocation (RFC 7009) and introspection (RFC 7662). Both take an authenticated
//! client, and a client only ever reaches its own tokens: another client's token is "not
//! revoked" (RFC 7009 §2.1 answers 200 anyway) and "not active" (RFC 7662 §2.2).

use super::error::TokenError;
use super::params::Params;
use super::token::AccessClaims;
use crate::audit::{self, Event, Kind};
use crate::context::Ctx;
use crate::store::{AccessTokenRow, Client, RefreshTokenRow, Revoke};
use crate::types::{AuthMethod, ScopeSet, TokenType, TokenTypeHint};
use infra::secret::hash_secret;
use serde::Serialize;

/// The token a revocation or introspection request is about (RFC 7009 §2.1, RFC 7662 §2.1).
struct TokenQuery<'a> {
    token: &'a str,
    hint: Option<TokenTypeHint>,
}

impl<'a> TokenQuery<'a> {
    fn parse(form: &'a Params) -> Result<Self, TokenError> {
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
    Access(AccessClaims, AccessTokenRow),
}

/// Looks `token` up as the hint suggests (RFC 7009 §2.1: the hint only orders the search; an
/// unknown hint is no hint).
async fn find(ctx: &Ctx, client: &Client, q: &TokenQuery<'_>) -> Result<Option<Found>, TokenError> {
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
            let owner = match &f {
                Found::Refresh(r) => &r.client_id,
                Found::Access(_, a) => &a.client_id,
            };
            return Ok((owner == &client.client_id).then_some(f));
        }
    }
    Ok(None)
}

/// An access token of ours (signature, type and issuer; expiry is judged by the caller) and
/// its registry entry.
async fn find_access(ctx: &Ctx, token: &str) -> Result<Option<Found>, TokenError> {
    let keys = ctx.keys.current();
    let issuer = Some(ctx.issuer.as_str());
    let Ok(claims) = keys.verify_with::<AccessClaims>(token, "at+jwt", &ctx.issuer, issuer, None)
    else {
        return Ok(None);
    };
    let row = ctx.store.access_token(&claims.jti).await?;
    Ok(row.map(|row| Found::Access(claims, row)))
}

/// RFC 7009 §2: revokes the token if it is the caller's. Revoking a refresh token revokes its
/// grant: the family and its access tokens (§2.1). Nothing is said about tokens of others.
pub async fn revoke(ctx: &Ctx, client: &Client, form: &Params) -> Result<(), TokenError> {
    let query = TokenQuery::parse(form)?;
    let now = ctx.clock.unix();
    let event = Event::new(Kind::TokenRevoked).client(&client.client_id);
    match find(ctx, client, &query).await? {
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
    Active(ActiveToken),
    Inactive { active: bool },
}

/// The members of an active token's introspection (RFC 7662 §2.2).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ActiveToken {
    active: bool,
    token_type: &'static str,
    #[serde(with = "super::token::issue::space_separated")]
    scope: ScopeSet,
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
    Ok(match find(ctx, client, &query).await? {
        Some(Found::Refresh(r))
            if r.revoked_at.is_none() && r.used_at.is_none() && r.family_expires_at > now =>
        {
            let user = ctx.store.user_by_id(&r.user_id).await?;
            match user.filter(|u| !u.disabled) {
                Some(user) => Introspection::Active(ActiveToken {
                    active: true,
                    token_type: TokenTypeHint::RefreshToken.as_str(),
                    scope: r.scope,
                    client_id: r.client_id,
                    sub: r.user_id,
                    username: Some(user.username),
                    iss: ctx.issuer.clone(),
                    aud: None,
                    iat: r.issued_at,
                    exp: r.family_expires_at,
                    jti: None,
                }),
                None => Introspection::INACTIVE,
            }
        }
        Some(Found::Access(c, row)) if row.revoked_at.is_none() && c.exp > now => {
            Introspection::Active(ActiveToken {
                active: true,
                token_type: TokenType::Bearer.as_str(),
                scope: c.scope,
                client_id: c.client_id,
                sub: c.sub,
                username: None,
                iss: c.iss,
                aud: Some(c.aud),
                iat: c.iat,
                exp: c.exp,
                jti: Some(c.jti),
            })
        }
        _ => Introspection::INACTIVE,
    })
}
