//! `refresh_token` (RFC 6749 §6, RFC 9700 §4.14): rotation on every use; a concurrent retry
//! inside the grace window gets its own answer; a reuse after it revokes the whole family and
//! ends an online grant's SSO session. A narrower scope is allowed, a wider one is not.

use super::issue::{Issue, NewRefresh, TokenResponse, active_user, issue, level_still_met};
use crate::audit::{self, Event, Kind};
use crate::context::{Ctx, SystemError};
use crate::logout;
use crate::protocol::error::TokenError;
use crate::protocol::params::Params;
use crate::store::{Client, GrantRow, Guard, RefreshTokenRow, Revoke};
use crate::types::{AuthMethod, GrantType, Scope, ScopeSet, TokenErrorCode};
use infra::secret::hash_secret;
use sessions::EndCause;

const INVALID: &str = "the refresh token is invalid, expired or revoked";

/// The parameters of a refresh.
pub(super) struct RefreshRequest<'a> {
    pub refresh_token: &'a str,
    /// A narrower scope than the grant's, if asked (RFC 6749 §6).
    pub scope: Option<&'a str>,
    /// The API the access token is for (RFC 8707 §2.2), one the grant was given.
    pub resource: Option<&'a str>,
    /// The thumbprint of the request's DPoP proof's key (RFC 9449), if it sent one.
    pub dpop: Option<&'a str>,
}

impl<'a> RefreshRequest<'a> {
    pub(super) fn parse(form: &'a Params) -> Result<Self, TokenError> {
        Ok(Self {
            refresh_token: form
                .get("refresh_token")
                .ok_or_else(|| TokenError::invalid_request("refresh_token is required"))?,
            scope: form.get("scope"),
            resource: super::target::named(form),
            dpop: None,
        })
    }
}

pub(super) async fn refresh(
    ctx: &Ctx,
    client: &Client,
    req: &RefreshRequest<'_>,
) -> Result<TokenResponse, TokenError> {
    let now = ctx.clock.unix();
    let hash = hash_secret(req.refresh_token);
    // As a fresh token first; if a concurrent request spent it meanwhile, once more, as that
    // request's retry.
    let mut result = rotate(ctx, client, req, &hash, now).await;
    if let Err(e) = &result
        && e.code() == Some(TokenErrorCode::InvalidGrant)
        && spent_meanwhile(ctx, &hash).await?
    {
        result = rotate(ctx, client, req, &hash, now).await;
    }
    result
}

/// Whether the presented token is now spent (by a concurrent refresh) but not revoked.
async fn spent_meanwhile(ctx: &Ctx, hash: &str) -> Result<bool, SystemError> {
    Ok(ctx
        .store
        .refresh_token(hash)
        .await?
        .is_some_and(|r| r.used_at.is_some() && r.revoked_at.is_none()))
}

/// One attempt: the presented token judged, the scope and the user checked, and the
/// successor issued. A fresh token is spent in the successor's own transaction (RFC 9700
/// §4.14.2 rotation), so a refresh that fails at any step (a narrower scope refused, the
/// user disabled, the grant revoked, the commit lost) leaves it unspent, and a client that
/// never got an answer can simply try again; a retry of a spent token within the grace
/// window gets the same successor back.
async fn rotate(
    ctx: &Ctx,
    client: &Client,
    req: &RefreshRequest<'_>,
    hash: &str,
    now: i64,
) -> Result<TokenResponse, TokenError> {
    let (row, fresh) = presented(ctx, client, hash, now).await?;
    // A retry within the grace window gets the successor already stored: bound to the key of
    // the proof that made it, which this request must then hold too.
    if !fresh
        && let Some(successor) = ctx
            .store
            .refresh_token(&hash_secret(&ctx.successors.of(req.refresh_token)))
            .await?
        && let Some(bound) = successor.dpop_jkt
        && req.dpop != Some(bound.as_str())
    {
        return Err(TokenError::new(
            TokenErrorCode::InvalidDpopProof,
            "the refresh token was refreshed with a DPoP key: retry with a proof made by it",
        ));
    }
    // RFC 9449 §5: a token bound to a DPoP key is refreshed only with a proof by that key
    // (checked before anything is spent).
    if let Some(bound) = &row.dpop_jkt
        && req.dpop != Some(bound.as_str())
    {
        return Err(TokenError::new(
            TokenErrorCode::InvalidDpopProof,
            "the refresh token is bound to a DPoP key: refresh with a proof made by that key",
        ));
    }
    level_still_met(client, row.amr)?;
    // With an API named, `scope` narrows the API's scopes; the OpenID ones stay the grant's.
    let (scope, target) = match req.resource {
        None => (narrowed(row.scope, req.scope)?, None),
        Some(r) => {
            let target = super::target::of_grant(ctx, &row.grant_id, r, req.scope, row.scope);
            (row.scope, Some(target.await?))
        }
    };
    let user = active_user(ctx, &row.user_id).await?;
    // Stored only if the grant is still live when they are (a revocation committed meanwhile,
    // a session end, "disconnect", is never outlived), and a fresh token only if this
    // request is the one that spends it.
    let mut guards = vec![Guard::grant_live(&row.grant_id, now)];
    if fresh {
        guards.push(Guard::refresh_unspent(hash, now));
    }
    issue(
        ctx,
        now,
        Issue {
            grant: GrantType::RefreshToken,
            client,
            user: Some(&user),
            id_token: scope.contains(Scope::OpenId),
            scope,
            grant_id: Some(row.grant_id.clone()),
            sid: row.sid.clone(),
            auth_time: Some(row.auth_time),
            amr: row.amr,
            acr: row.acr.as_deref().and_then(crate::types::Level::parse),
            nonce: None,
            // The presented token's one successor: a retry gets the same one back, so the
            // family never forks (RFC 9700 §4.14.2).
            refresh: Some(NewRefresh {
                token: ctx.successors.of(req.refresh_token),
                sid: row.sid.clone(),
                family_expires_at: row.family_expires_at,
                scope: row.scope,
                // RFC 9449 §5: a public client's refresh token is bound from its first proof
                // on (a grant begun without DPoP is bound at its first refresh with it).
                dpop_jkt: row.dpop_jkt.clone().or_else(|| {
                    req.dpop
                        .filter(|_| client.auth_method == AuthMethod::None)
                        .map(str::to_owned)
                }),
            }),
            starts: None,
            guards,
            adopt: Some(GrantRow {
                grant_id: row.grant_id.clone(),
                client_id: row.client_id.clone(),
                user_id: row.user_id.clone(),
                sid: row.sid.clone(),
                scope: row.scope,
                created_at: row.issued_at,
                last_used_at: now,
                expires_at: row.family_expires_at,
                revoked_at: None,
            }),
            target,
            exchanged: None,
            dpop_jkt: req.dpop.map(str::to_owned),
        },
    )
    .await
}

/// The presented token, and whether it is unspent; within the grace window a token already
/// spent is accepted again (a concurrent retry); after it, the reuse revokes the family.
async fn presented(
    ctx: &Ctx,
    client: &Client,
    hash: &str,
    now: i64,
) -> Result<(RefreshTokenRow, bool), TokenError> {
    let known = ctx
        .store
        .refresh_token(hash)
        .await?
        .ok_or_else(|| TokenError::invalid_grant(INVALID))?;
    if known.used_at.is_none() {
        return if known.client_id == client.client_id
            && known.revoked_at.is_none()
            && known.family_expires_at > now
        {
            Ok((known, true))
        } else {
            Err(TokenError::invalid_grant(INVALID))
        };
    }
    let grace = infra::secs(ctx.config.tokens.refresh_grace);
    match judge_used(&known, &client.client_id, now, grace) {
        Used::Refused => Err(TokenError::invalid_grant(INVALID)),
        Used::Retry => Ok((known, false)),
        Used::Replayed => {
            reuse_detected(ctx, &known, now).await?;
            Err(TokenError::invalid_grant(INVALID))
        }
    }
}

/// What a refresh token that could not be marked used is.
#[derive(Debug, PartialEq, Eq)]
enum Used {
    /// Another client's, revoked, or past its family's lifetime: refused and left alone (a
    /// token of another client must not let that client revoke it, RFC 6749 §6).
    Refused,
    /// Used within the grace window: a concurrent retry, answered again.
    Retry,
    /// Used before the grace window: someone holds a copy.
    Replayed,
}

fn judge_used(row: &RefreshTokenRow, client_id: &str, now: i64, grace: i64) -> Used {
    if row.client_id != client_id || row.revoked_at.is_some() || row.family_expires_at <= now {
        return Used::Refused;
    }
    // A grace of zero is no grace at all, even within the same second.
    match row.used_at {
        Some(used) if grace > 0 && now - used <= grace => Used::Retry,
        _ => Used::Replayed,
    }
}

/// The scope of this refresh: the grant's, or a narrower one asked for (RFC 6749 §6).
fn narrowed(granted: ScopeSet, asked: Option<&str>) -> Result<ScopeSet, TokenError> {
    let Some(asked) = asked else {
        return Ok(granted);
    };
    let widen = || TokenError::invalid_scope("a refresh cannot widen the granted scope");
    let asked = ScopeSet::parse_strict(asked).map_err(|_| widen())?;
    if !granted.covers(asked) {
        return Err(widen());
    }
    Ok(asked)
}

/// A rotated refresh token came back after the grace window: someone holds a copy. The whole
/// family (refresh and access tokens) is revoked, and an online grant's SSO session ends.
async fn reuse_detected(ctx: &Ctx, row: &RefreshTokenRow, now: i64) -> Result<(), SystemError> {
    tracing::warn!(client_id = %row.client_id, "refresh token reused: revoking its family");
    let event = Event::new(Kind::RefreshReuseDetected)
        .client(&row.client_id)
        .user(&row.user_id)
        .session_opt(row.sid.as_deref())
        .detail(format!("grant {} revoked", row.grant_id));
    audit::record(&ctx.store, &ctx.clock, event).await;
    ctx.store.revoke(Revoke::Grant(&row.grant_id), now).await?;
    if let Some(sid) = &row.sid
        && let Some(end) =
            logout::end_of_handle(&ctx.store, &ctx.sessions, sid, None, EndCause::Revoked).await?
    {
        logout::end(ctx, &[end]).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Methods;

    fn row(client_id: &str, used_at: Option<i64>, revoked_at: Option<i64>) -> RefreshTokenRow {
        RefreshTokenRow {
            token_hash: "h".into(),
            grant_id: "g".into(),
            client_id: client_id.into(),
            user_id: "u".into(),
            scope: ScopeSet::parse_known("openid profile offline_access"),
            sid: None,
            auth_time: 0,
            amr: Methods::PASSWORD,
            acr: None,
            issued_at: 0,
            family_expires_at: 1000,
            used_at,
            revoked_at,
            dpop_jkt: None,
        }
    }

    #[test]
    fn a_used_token_is_a_retry_inside_the_grace_window_and_a_replay_after_it() {
        assert_eq!(
            judge_used(&row("rp", Some(100), None), "rp", 105, 5),
            Used::Retry
        );
        assert_eq!(
            judge_used(&row("rp", Some(100), None), "rp", 106, 5),
            Used::Replayed
        );
        // No grace: a replay in the very second of the rotation is still a replay.
        assert_eq!(
            judge_used(&row("rp", Some(100), None), "rp", 100, 0),
            Used::Replayed
        );
    }

    #[test]
    fn other_clients_revoked_and_expired_tokens_are_refused_and_left_alone() {
        assert_eq!(
            judge_used(&row("rp", Some(100), None), "rp2", 101, 5),
            Used::Refused
        );
        assert_eq!(
            judge_used(&row("rp", Some(100), Some(100)), "rp", 101, 5),
            Used::Refused
        );
        assert_eq!(
            judge_used(&row("rp", Some(100), None), "rp", 1000, 5),
            Used::Refused
        );
    }

    #[test]
    fn a_refresh_may_narrow_the_scope_but_never_widen_it() {
        let granted = ScopeSet::parse_known("openid profile");
        assert_eq!(narrowed(granted, None).unwrap(), granted);
        assert_eq!(
            narrowed(granted, Some("openid")).unwrap().to_string(),
            "openid"
        );
        for wider in [
            "openid email",
            "openid profile offline_access",
            "openid admin",
        ] {
            let e = narrowed(granted, Some(wider)).unwrap_err();
            assert_eq!(
                e.code(),
                Some(crate::types::TokenErrorCode::InvalidScope),
                "{wider}"
            );
        }
    }
}
