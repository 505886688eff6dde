//! `urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4–3.5): a device polls with
//! its device code until the person answers (`protocol::device`). Approved, the approval is
//! redeemed as the code it is stored as (`code`), once; until then the answer is
//! `authorization_pending`, or `slow_down` for a poll sooner than the interval; then
//! `access_denied` or `expired_token`.

use super::code::{CodeRequest, redeem_as_read};
use super::issue::TokenResponse;
use crate::context::Ctx;
use crate::protocol::error::TokenError;
use crate::protocol::params::Params;
use crate::store::Client;
use crate::store::{CodeState, DEVICE_REDIRECT, Poll};
use crate::types::TokenErrorCode;
use infra::secret::hash_secret;

const UNKNOWN: &str = "the device code is invalid";

pub(super) async fn grant(
    ctx: &Ctx,
    client: &Client,
    form: &Params,
    dpop: Option<&str>,
) -> Result<TokenResponse, TokenError> {
    let device_code = form
        .get("device_code")
        .ok_or_else(|| TokenError::invalid_request("device_code is required"))?;
    if super::target::named(form).is_some() {
        return Err(TokenError::invalid_target(
            "resource is not supported with the device flow",
        ));
    }
    let now = ctx.clock.unix();
    let hash = hash_secret(device_code);
    let Some(request) = ctx.store.device_by_device_code(&hash).await? else {
        return Err(TokenError::invalid_grant(UNKNOWN));
    };
    if request.client_id != client.client_id {
        return Err(TokenError::invalid_grant(
            "the device code was issued to another client",
        ));
    }
    if request.denied_at.is_some() {
        return Err(denied("the user denied the request"));
    }
    if request.approved_at.is_some() {
        return redeem(ctx, client, (device_code, dpop), &hash, now).await;
    }
    if request.expires_at <= now {
        return Err(expired());
    }
    Err(match ctx.store.device_polled(&hash, now).await? {
        Poll::OnTime => TokenError::new(
            TokenErrorCode::AuthorizationPending,
            "the user has not answered yet",
        ),
        Poll::TooSoon => TokenError::new(
            TokenErrorCode::SlowDown,
            "polled sooner than the interval: wait five seconds more between polls",
        ),
    })
}

/// The approval, redeemed as its code.
async fn redeem(
    ctx: &Ctx,
    client: &Client,
    (device_code, dpop): (&str, Option<&str>),
    hash: &str,
    now: i64,
) -> Result<TokenResponse, TokenError> {
    let read = ctx.store.auth_code(hash, now).await?;
    match &read.0 {
        CodeState::Fresh(_) | CodeState::Replayed(_) => {}
        CodeState::Expired => return Err(expired()),
        // Its session ended, the app was disconnected, the account disabled: the approval
        // stands no more.
        CodeState::Revoked => return Err(denied("the approval was withdrawn")),
        CodeState::Unknown => return Err(TokenError::invalid_grant(UNKNOWN)),
    }
    let req = CodeRequest {
        code: device_code,
        redirect_uri: DEVICE_REDIRECT,
        code_verifier: None,
        resource: None,
        device: true,
        dpop,
    };
    redeem_as_read(ctx, client, &req, hash, now, read).await
}

fn denied(why: &'static str) -> TokenError {
    TokenError::new(TokenErrorCode::AccessDenied, why)
}

fn expired() -> TokenError {
    TokenError::new(
        TokenErrorCode::ExpiredToken,
        "the device code has expired: start again",
    )
}
