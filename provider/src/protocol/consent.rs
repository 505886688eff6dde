//! The consent rules (OIDC Core §3.1.2.4): which app asks for which scopes, and the person's
//! answer, remembered per user and client (first-party clients never ask, see
//! `authorize::Next`).

use super::authorize::pending;
use super::authorize::{CodeRedirect, issue_code};
use super::error::{AuthorizeError, PageError};
use crate::context::Ctx;
use crate::types::{ApiScopes, AuthorizeErrorCode, ScopeSet};
use sessions::Session;

pub const EXPIRED: &str =
    "This approval request has expired. Go back to the app and sign in again.";

/// What the consent page shows.
#[derive(Debug, PartialEq, Eq)]
pub struct ConsentRequest {
    pub client_name: String,
    pub username: String,
    pub scopes: ScopeSet,
    /// The API the app asks tokens for: its name and the scopes asked there.
    pub api: Option<(String, ApiScopes)>,
}

/// The person's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    pub fn parse(value: Option<&str>) -> Result<Self, PageError> {
        match value {
            Some("allow") => Ok(Self::Allow),
            Some("deny") => Ok(Self::Deny),
            _ => Err(PageError::bad_request("Choose Allow or Deny.")),
        }
    }
}

/// The pending request `request_id` of this signed-in session, as the page shows it.
pub async fn show(
    ctx: &Ctx,
    session: &Session,
    request_id: &str,
) -> Result<ConsentRequest, PageError> {
    let expired = || PageError::bad_request(EXPIRED);
    let req = pending::pending(ctx, session, request_id)
        .await?
        .ok_or_else(expired)?;
    let client = ctx
        .store
        .client(&req.client_id)
        .await?
        .ok_or_else(expired)?;
    let username = match &session.user_id {
        Some(uid) => ctx.store.user_by_id(uid).await?.map(|u| u.username),
        None => None,
    };
    let api = match &req.resource {
        Some(r) => {
            let name = ctx
                .store
                .resource(&r.resource_id)
                .await?
                .map(|found| found.name);
            Some((name.ok_or_else(expired)?, r.scopes.clone()))
        }
        None => None,
    };
    Ok(ConsentRequest {
        client_name: client.name,
        username: username.unwrap_or_default(),
        scopes: req.scopes,
        api,
    })
}

/// The answer to the pending request `request_id`: allowed, the grant is remembered and a
/// code issued; denied, the client hears `access_denied`. Either way the request is gone.
pub async fn decide(
    ctx: &Ctx,
    session: &Session,
    request_id: &str,
    decision: Decision,
) -> Result<CodeRedirect, AuthorizeError> {
    let req = pending::take(ctx, session, request_id)
        .await?
        .ok_or_else(|| PageError::bad_request(EXPIRED))?;
    // The request waited for the person: the client must still allow it.
    let client = super::authorize::still_allowed(ctx, &req).await?;
    // The request may have waited while someone else signed in on this browser: it is
    // answered only for the person it allows (OIDC Core §3.1.2.2, `max_age`).
    if !super::authorize::sign_in_answers(&req, session, ctx.clock.unix()) {
        return Err(super::authorize::login_required(ctx, &req));
    }
    match decision {
        Decision::Allow => {
            let user_id = session.user_id.clone().unwrap_or_default();
            let now = ctx.clock.unix();
            let api = req
                .resource
                .as_ref()
                .map(|r| (r.resource_id.as_str(), &r.scopes));
            ctx.store
                .grant_consent(&user_id, &req.client_id, req.scopes, api, now)
                .await?;
            Ok(issue_code(ctx, session, &req, &client).await?)
        }
        Decision::Deny => {
            let code = AuthorizeErrorCode::AccessDenied;
            Err(req
                .error(&ctx.issuer, code, "the user denied the request")
                .into())
        }
    }
}
