//! Token exchange (RFC 8693) between APIs: an API that was called with a user's access token
//! (the `subject_token`, addressed to it) obtains, as its own confidential client, a token for
//! a downstream API on the user's behalf: same `sub`, `sid` and `auth_time`, `aud` the
//! downstream API, at most the scopes an operator's rule allows this client there, no longer
//! than the subject token lives, and an `act` claim naming the API (§4.1: delegation, with
//! earlier actors nested). The new token belongs to the subject token's grant and names its
//! parent: revoking either (or ending the session) revokes it too, and the downstream API's
//! revocation feed hears of it.
//!
//! With a DPoP proof (RFC 9449 §5), the new token is bound to the acting API's key, as any
//! token request's: the downstream API then accepts it only with a proof by that key. The
//! subject token is not the acting API's to prove: it was presented to the API (with a proof,
//! if it was bound) and is redeemed here by the API's own authentication.
//!
//! Refusals (§2.2.2): a subject token that is not ours, not an access token, expired, revoked
//! or not addressed to an API of the calling client is `invalid_request`, and so is an
//! `actor_token` (the actor is the authenticated client) or a token type we do not issue; a
//! `resource`/`audience` that is not a registered API, or one this client has no rule for, is
//! `invalid_target`; scopes beyond the rule are `invalid_scope`. A client that already acted on
//! the token, or a fifth actor, is `invalid_request`. Each exchange, granted or refused, is in
//! the audit trail.
//!
//! The scopes come from the operator's rule for this client and API, not from the subject
//! token: the downstream API's scopes are its own, and the rule is the policy that says what
//! the acting API may do there for a user who called it (§1.1 leaves it to the server).

use super::issue::{ACCESS_TOKEN_TYPE, AccessClaims, Actor, Exchanged, Issue, TokenResponse};
use super::issue::{active_user, issue};
use super::target::Target;
use crate::audit::{self, Event, Kind};
use crate::context::Ctx;
use crate::protocol::error::TokenError;
use crate::protocol::params::Params;
use crate::store::{Client, Guard};
use crate::types::{AuthMethod, GrantType, ScopeSet, TokenErrorCode};

/// The longest chain of actors a token may carry (the API that exchanges it included).
const MAX_ACTORS: usize = 4;

/// RFC 8693 §3: the only token type accepted as `subject_token_type` (and issued).
const SUBJECT_TYPES: [&str; 1] = [ACCESS_TOKEN_TYPE];

/// A token exchange request (RFC 8693 §2.1), checked for shape.
struct Request<'a> {
    subject_token: &'a str,
    /// The downstream API (`resource`, or `audience` naming the same).
    target: &'a str,
    scope: Option<&'a str>,
}

impl<'a> Request<'a> {
    fn parse(form: &'a Params) -> Result<Self, TokenError> {
        let bad = |what: &'static str| TokenError::invalid_request(what);
        form.check_repeated()
            .map_err(|e| TokenError::invalid_request(e.to_string()))?;
        let subject_token = form
            .get("subject_token")
            .ok_or_else(|| bad("subject_token is required"))?;
        match form.get("subject_token_type") {
            None => return Err(bad("subject_token_type is required")),
            Some(t) if !SUBJECT_TYPES.contains(&t) => {
                return Err(bad("only an access token may be exchanged"));
            }
            Some(_) => {}
        }
        if form.get("actor_token").is_some() || form.get("actor_token_type").is_some() {
            return Err(bad(
                "actor_token is not supported: the authenticated client is the actor",
            ));
        }
        if form
            .get("requested_token_type")
            .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
        {
            return Err(bad("only an access token can be issued"));
        }
        let target = match (form.get("resource"), form.get("audience")) {
            (Some(r), Some(a)) if r != a => {
                return Err(TokenError::invalid_target(
                    "resource and audience name different APIs",
                ));
            }
            (Some(t), _) | (None, Some(t)) => t,
            (None, None) => {
                return Err(TokenError::invalid_target(
                    "name the API the token is for (resource or audience)",
                ));
            }
        };
        Ok(Self {
            subject_token,
            target,
            scope: form.get("scope"),
        })
    }
}

/// The exchange; `dpop`, the thumbprint of the request's DPoP proof's key, if it sent one.
pub(super) async fn grant(
    ctx: &Ctx,
    client: &Client,
    form: &Params,
    dpop: Option<&str>,
) -> Result<TokenResponse, TokenError> {
    let outcome = exchange(ctx, client, form, dpop).await;
    if let Err(TokenError::OAuth { code, description }) = &outcome {
        let event = Event::new(Kind::TokenExchangeRefused)
            .client(&client.client_id)
            .detail(format!("{}: {description}", code.as_str()));
        audit::record(&ctx.store, &ctx.clock, event).await;
    }
    outcome
}

async fn exchange(
    ctx: &Ctx,
    client: &Client,
    form: &Params,
    dpop: Option<&str>,
) -> Result<TokenResponse, TokenError> {
    // Registration keeps the grant from public clients; a client stored otherwise is refused.
    if client.auth_method == AuthMethod::None {
        return Err(TokenError::unauthorized_client());
    }
    let req = Request::parse(form)?;
    let now = ctx.clock.unix();
    let invalid =
        || TokenError::invalid_request("the subject token is invalid, expired or revoked");
    let subject: AccessClaims = ctx
        .keys
        .current()
        .verify_with(req.subject_token, "at+jwt", &ctx.issuer, None, Some(now))
        .map_err(|_| invalid())?;
    let row = ctx.store.access_token(&subject.jti).await?;
    let Some(row) = row.filter(|r| r.revoked_at.is_none() && r.expires_at > now) else {
        return Err(invalid());
    };
    // The actor is the API the user's token was presented to.
    let own_api = match &row.resource_id {
        Some(api) => ctx.store.resource(api).await?,
        None => None,
    };
    let caller = Some(client.client_id.as_str());
    if own_api.is_none_or(|api| api.client_id.as_deref() != caller) {
        return Err(TokenError::invalid_request(
            "the subject token is not addressed to an API of this client",
        ));
    }
    let (Some(grant_id), Some(user_id)) = (row.grant_id.clone(), row.user_id.clone()) else {
        return Err(invalid());
    };
    let target = target(ctx, client, &req).await?;
    // A grant (or account) that ended meanwhile is an invalid subject token here (§2.2.2).
    let invalid_grant = |e: TokenError| match e.code() {
        Some(TokenErrorCode::InvalidGrant) => invalid(),
        _ => e,
    };
    let user = active_user(ctx, &user_id).await.map_err(invalid_grant)?;
    let act = actor(client, subject.act.clone())?;
    let guards = vec![
        Guard::grant_live(&grant_id, now),
        Guard::access_token_live(&subject.jti, now),
        Guard::client_exists(&client.client_id),
    ];
    issue(
        ctx,
        now,
        Issue {
            grant: GrantType::TokenExchange,
            client,
            user: Some(&user),
            scope: ScopeSet::EMPTY,
            grant_id: Some(grant_id),
            sid: subject.sid.clone(),
            auth_time: subject.auth_time,
            amr: subject.methods(),
            acr: subject.acr.as_deref().and_then(crate::types::Level::parse),
            nonce: None,
            id_token: false,
            refresh: None,
            starts: None,
            guards,
            adopt: None,
            target: Some(target),
            exchanged: Some(Exchanged {
                subject_jti: subject.jti.clone(),
                act,
                not_after: subject.exp,
            }),
            dpop_jkt: dpop.map(str::to_owned),
        },
    )
    .await
    .map_err(invalid_grant)
}

/// The `act` of an exchange by `client` of a token that carries `before` (RFC 8693 §4.1). A
/// client that already acted on the token, or a chain of [`MAX_ACTORS`], is refused: two APIs
/// allowed to exchange into each other could otherwise pass a token back and forth for ever,
/// and the chain is in every token.
fn actor(client: &Client, before: Option<Actor>) -> Result<Actor, TokenError> {
    let mut depth = 1;
    let mut earlier = before.as_ref();
    while let Some(a) = earlier {
        if a.sub == client.client_id {
            return Err(TokenError::invalid_request(
                "this client already acted on the subject token",
            ));
        }
        depth += 1;
        earlier = a.act.as_deref();
    }
    if depth > MAX_ACTORS {
        return Err(TokenError::invalid_request(
            "the subject token has been exchanged too many times",
        ));
    }
    Ok(Actor {
        sub: client.client_id.clone(),
        act: before.map(Box::new),
    })
}

/// The downstream API, as the client's rule allows it: `invalid_target` without a rule (or
/// for an API that is not registered), `invalid_scope` for scopes beyond the rule's.
async fn target(ctx: &Ctx, client: &Client, req: &Request<'_>) -> Result<Target, TokenError> {
    let Some(api) = ctx.store.resource(req.target).await? else {
        return Err(TokenError::invalid_target(
            "no API is registered at this resource",
        ));
    };
    let Some(rule) = ctx
        .store
        .exchange_rule(&client.client_id, &api.resource_id)
        .await?
    else {
        return Err(TokenError::invalid_target(
            "this client may not obtain tokens for this API",
        ));
    };
    // What the API still defines of what the rule allows.
    let allowed = rule.scopes.intersection(&api.scopes);
    let scopes = match req.scope {
        None => allowed,
        Some(asked) => {
            if asked
                .split(' ')
                .filter(|s| !s.is_empty())
                .any(|s| !allowed.contains(s))
            {
                return Err(TokenError::invalid_scope(
                    "a scope beyond what this client may obtain at this API",
                ));
            }
            allowed.pick(asked)
        }
    };
    if scopes.is_empty() {
        return Err(TokenError::invalid_scope("no scope of the API is asked"));
    }
    Ok(Target {
        resource_id: api.resource_id,
        scopes,
        lifetime: api.access_token_lifetime,
        alg: api.access_token_alg,
    })
}
