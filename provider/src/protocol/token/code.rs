//! `authorization_code` (RFC 6749 §4.1.3): the code once, every binding checked. A replayed
//! code revokes everything it issued (RFC 6749 §4.1.2, RFC 9700 §4.2.1). A device's approval
//! (RFC 8628) is a code of its own kind ([`DEVICE_REDIRECT`]), redeemed here for `device_code`
//! and never for this grant.

use super::issue::{Issue, NewRefresh, TokenResponse, issue, level_still_met};
use super::target::Target;
use crate::context::{Ctx, SystemError};
use crate::protocol::error::TokenError;
use crate::protocol::params::Params;
use crate::protocol::pkce;
use crate::store::{AuthCode, Client, CodeState, DEVICE_REDIRECT, GrantRow, Guard, Revoke, User};
use crate::types::{AuthMethod, GrantType, Level, Scope, TokenErrorCode};
use infra::secret::{hash_secret, random_token};

const UNUSABLE: &str = "the code is invalid, expired or already used";

/// The parameters of a code redemption.
pub(super) struct CodeRequest<'a> {
    pub code: &'a str,
    pub redirect_uri: &'a str,
    /// Absent only when the code was issued without a challenge (`check_bindings`).
    pub code_verifier: Option<&'a str>,
    /// The API the access token is for (RFC 8707 §2.2), one the authorization request named.
    pub resource: Option<&'a str>,
    /// A device's poll (`device_code`, RFC 8628 §3.4) rather than the code grant.
    pub device: bool,
    /// The thumbprint of the request's DPoP proof's key (RFC 9449), if it sent one.
    pub dpop: Option<&'a str>,
}

impl<'a> CodeRequest<'a> {
    pub(super) fn parse(form: &'a Params) -> Result<Self, TokenError> {
        let required = |p: &'static str, what: &'static str| {
            form.get(p)
                .ok_or_else(|| TokenError::invalid_request(format!("{what} is required")))
        };
        Ok(Self {
            code: required("code", "code")?,
            redirect_uri: required("redirect_uri", "redirect_uri")?,
            code_verifier: form.get("code_verifier"),
            resource: super::target::named(form),
            device: false,
            dpop: None,
        })
    }
}

pub(super) async fn redeem(
    ctx: &Ctx,
    client: &Client,
    req: &CodeRequest<'_>,
) -> Result<TokenResponse, TokenError> {
    let now = ctx.clock.unix();
    let code_hash = hash_secret(req.code);
    let read = ctx.store.auth_code(&code_hash, now).await?;
    redeem_as_read(ctx, client, req, &code_hash, now, read).await
}

/// [`redeem`], the code as it was read (`read`): whatever happened to it since is found by
/// the guard of the issuing transaction.
pub(super) async fn redeem_as_read(
    ctx: &Ctx,
    client: &Client,
    req: &CodeRequest<'_>,
    code_hash: &str,
    now: i64,
    (state, user): (CodeState, Option<User>),
) -> Result<TokenResponse, TokenError> {
    let bound = match state {
        CodeState::Fresh(c) => c,
        CodeState::Replayed(c) => return Err(replayed(ctx, &c, code_hash, client, req, now).await),
        CodeState::Revoked | CodeState::Expired | CodeState::Unknown => {
            return Err(TokenError::invalid_grant(UNUSABLE));
        }
    };
    check_bindings(&bound, client, req)?;
    let user = user
        .filter(|u| !u.disabled)
        .ok_or_else(|| TokenError::invalid_grant("the user is no longer active"))?;
    let target = match req.resource {
        Some(r) => Some(super::target::of_grant(ctx, code_hash, r, None, bound.scope).await?),
        None => None,
    };
    let issued = exchange(
        ctx,
        client,
        bound,
        &user,
        (code_hash, req.dpop),
        now,
        target,
    )
    .await;
    // The code was redeemed by a concurrent request between the read and this request's
    // commit: this one is the replay (and nothing of it was stored).
    if let Err(e) = &issued
        && e.code() == Some(TokenErrorCode::InvalidGrant)
        && let (CodeState::Replayed(c), _) = ctx.store.auth_code(code_hash, now).await?
    {
        return Err(replayed(ctx, &c, code_hash, client, req, now).await);
    }
    issued
}

/// A code presented again: the grant it started is revoked (RFC 6749 §4.1.2), but only when
/// it comes with the code's own bindings (its client, redirect URI and PKCE verifier):
/// someone who holds the code alone must not be able to cancel the rightful redemption. A
/// device polling again after its tokens (a lost answer, two polls at once) is not a replay
/// of that kind, and revokes nothing (RFC 8628 asks no such thing).
async fn replayed(
    ctx: &Ctx,
    code: &AuthCode,
    code_hash: &str,
    client: &Client,
    req: &CodeRequest<'_>,
    now: i64,
) -> TokenError {
    if !req.device && check_bindings(code, client, req).is_ok() {
        tracing::warn!(client_id = %code.client_id, "authorization code replayed: revoking its tokens");
        if let Err(e) = ctx.store.revoke(Revoke::Grant(code_hash), now).await {
            return SystemError::from(e).into();
        }
    }
    TokenError::invalid_grant(UNUSABLE)
}

/// Issues the tokens of a fresh code whose bindings hold, redeeming it in their transaction;
/// with a DPoP proof (`dpop`, its key's thumbprint), the access token is bound to its key, and
/// so are a public client's refresh tokens (RFC 9449 §5).
async fn exchange(
    ctx: &Ctx,
    client: &Client,
    bound: AuthCode,
    user: &User,
    (code_hash, dpop): (&str, Option<&str>),
    now: i64,
    target: Option<Target>,
) -> Result<TokenResponse, TokenError> {
    level_still_met(client, bound.amr)?;
    let grant = if bound.redirect_uri == DEVICE_REDIRECT {
        GrantType::DeviceCode
    } else {
        GrantType::AuthorizationCode
    };
    // The grant is offline (outlives the SSO session) when offline_access was granted, else
    // online (dies with it). It lives as long as its refresh tokens may, or, without them,
    // its access token.
    let online = (!bound.scope.contains(Scope::OfflineAccess)).then(|| bound.sid.clone());
    let with_refresh = client.allows_grant(GrantType::RefreshToken);
    let lifetime = if with_refresh {
        ctx.config.tokens.refresh_token_lifetime
    } else {
        ctx.config.tokens.access_token_lifetime
    };
    let expires_at = now + infra::secs(lifetime);
    let refresh = with_refresh
        .then(|| {
            random_token().map(|token| NewRefresh {
                token,
                sid: online.clone(),
                family_expires_at: expires_at,
                scope: bound.scope,
                dpop_jkt: dpop
                    .filter(|_| client.auth_method == AuthMethod::None)
                    .map(str::to_owned),
            })
        })
        .transpose()?;
    let starts = GrantRow {
        grant_id: code_hash.to_owned(),
        client_id: client.client_id.clone(),
        user_id: user.id.clone(),
        sid: online,
        scope: bound.scope,
        created_at: now,
        last_used_at: now,
        expires_at,
        revoked_at: None,
    };
    issue(
        ctx,
        now,
        Issue {
            grant,
            client,
            user: Some(user),
            scope: bound.scope,
            grant_id: Some(code_hash.to_owned()),
            sid: Some(bound.sid.clone()),
            auth_time: Some(bound.auth_time),
            amr: bound.amr,
            acr: bound.acr.as_deref().and_then(Level::parse),
            nonce: bound.nonce,
            // Every authorization request asks for `openid`; a device's need not (RFC 8628
            // is OAuth): without it, an access token alone.
            id_token: bound.scope.contains(Scope::OpenId),
            refresh,
            // Stored only with the code's redemption, and only if no concurrent request
            // redeemed it and nothing revoked it (its session ended, its app was
            // disconnected) since it was read: a revocation then sees these tokens, or they
            // are never written and the code stays unused.
            guards: vec![Guard::code_redeemed(code_hash, now)],
            starts: Some(starts),
            adopt: None,
            target,
            exchanged: None,
            dpop_jkt: dpop.map(str::to_owned),
        },
    )
    .await
}

/// The code was issued to this client, for this redirect URI (RFC 6749 §4.1.3), the
/// verifier matches its challenge (RFC 7636 §4.6), and a code bound to a DPoP key comes with
/// a proof by it (RFC 9449 §10). A device's approval is bound to its client alone: its
/// device code is the secret, and there is no PKCE in RFC 8628.
fn check_bindings(
    bound: &AuthCode,
    client: &Client,
    req: &CodeRequest<'_>,
) -> Result<(), TokenError> {
    if bound.client_id != client.client_id {
        return Err(TokenError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    if (bound.redirect_uri == DEVICE_REDIRECT) != req.device {
        return Err(TokenError::invalid_grant(
            "the code was not issued for this grant type",
        ));
    }
    if req.device {
        return Ok(());
    }
    if bound.redirect_uri != req.redirect_uri {
        return Err(TokenError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (bound.code_challenge.as_str(), req.code_verifier) {
        ("", None) if !client.pkce_required() => {}
        // Issued without PKCE, and now the client must use it (an operator turned it on).
        ("", None) => {
            return Err(TokenError::invalid_grant(
                "the code was issued without PKCE, which this client now requires",
            ));
        }
        // A verifier for a code without a challenge: refused, so that PKCE cannot be
        // stripped from a request on its way (RFC 9700 §2.1.1).
        ("", Some(_)) => {
            return Err(TokenError::invalid_grant(
                "code_verifier was sent, but the authorization request had no code_challenge",
            ));
        }
        (_, None) => {
            return Err(TokenError::invalid_request(
                "code_verifier (PKCE) is required",
            ));
        }
        (challenge, Some(verifier)) => {
            if !pkce::verify_s256(verifier, challenge) {
                return Err(TokenError::invalid_grant("PKCE verification failed"));
            }
        }
    }
    // RFC 9449 §10: a code bound to a DPoP key is redeemed only with a proof by that key.
    if let Some(jkt) = &bound.dpop_jkt
        && req.dpop != Some(jkt.as_str())
    {
        return Err(TokenError::new(
            TokenErrorCode::InvalidDpopProof,
            "the code is bound to a DPoP key: send a proof signed by that key",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::{REDIRECT, VERIFIER, world};
    use crate::protocol::userinfo;

    /// The code is read fresh, then redeemed by another request before this one commits:
    /// this one's guard finds it spent, nothing of it is stored, and as the replay it is, it
    /// revokes what the other request was given (RFC 6749 §4.1.2). Deterministic: the race
    /// tests meet this order only by chance.
    #[tokio::test]
    async fn a_redemption_that_loses_to_a_concurrent_one_revokes_it() {
        let w = world().await;
        let session = w.signed_in(&w.alice).await;
        let code = w.code(&session, "first", "openid").await;
        let client = w.client("first").await;
        let req = CodeRequest {
            code: &code,
            redirect_uri: REDIRECT,
            code_verifier: Some(VERIFIER),
            resource: None,
            device: false,
            dpop: None,
        };
        let now = w.ctx.clock.unix();
        let hash = hash_secret(&code);
        let read = w.ctx.store.auth_code(&hash, now).await.unwrap();
        assert!(matches!(read.0, CodeState::Fresh(_)));
        let other = redeem(&w.ctx, &client, &req).await.unwrap();
        assert!(
            userinfo::userinfo(&w.ctx, &other.access_token)
                .await
                .is_ok()
        );
        let lost = redeem_as_read(&w.ctx, &client, &req, &hash, now, read).await;
        assert_eq!(lost.unwrap_err().code(), Some(TokenErrorCode::InvalidGrant));
        assert!(
            userinfo::userinfo(&w.ctx, &other.access_token)
                .await
                .is_err(),
            "the replay revoked the other redemption's tokens"
        );
    }
}
