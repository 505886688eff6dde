//! Pushed authorization requests (RFC 9126): a client posts its authorization request to the
//! provider first, authenticated, and sends the browser to `/authorize` with only the
//! `request_uri` it was given (and its `client_id`). The request's parameters, checked at the
//! push as the authorization endpoint checks them, never travel through the browser.
//!
//! A pushed request is kept under the hash of its `request_uri` for [`PUSHED_TTL_SECS`] and
//! taken once (RFC 9126 §4: a `request_uri` is used once), by the client it was pushed by. A
//! client registered with `require_pushed_authorization_requests` (§6) may send no other kind.
//! [`resolve`] turns what reaches the authorization endpoint into the request's own
//! parameters: those pushed, those of a request object (RFC 9101, `request`), or those sent.

use super::request_object;
use crate::context::{Ctx, SystemError};
use crate::protocol::dpop::Proof;
use crate::protocol::error::{PageError, TokenError};
use crate::protocol::params::Params;
use crate::store::Client;
use crate::types::{AuthorizeErrorCode, TokenErrorCode};
use infra::secret::{hash_secret, random_token};
use serde::Serialize;
use std::borrow::Cow;

/// RFC 9126 §2.2: the form of the `request_uri`s this provider hands out.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// How long a pushed request waits for the browser (RFC 9126 §2.2: short-lived).
pub const PUSHED_TTL_SECS: i64 = 60;
/// A pushed request's client authentication, which is not part of the authorization request.
const CLIENT_AUTHENTICATION: [&str; 3] =
    ["client_secret", "client_assertion", "client_assertion_type"];

/// RFC 9126 §2.2: the answer to a push.
#[derive(Debug, Serialize)]
pub struct Pushed {
    pub request_uri: String,
    pub expires_in: i64,
}

fn refused(code: AuthorizeErrorCode, description: impl Into<String>) -> TokenError {
    TokenError::Authorization {
        code,
        description: description.into(),
    }
}

/// A push from the authenticated `client` (RFC 9126 §2.1): the request (its parameters, or
/// its request object) is checked as the authorization endpoint would check it, errors
/// answered here as JSON (§2.3), then kept. With a DPoP proof (`dpop`, verified for this
/// endpoint), the code is bound to the proof's key as if the request named it in `dpop_jkt`
/// (RFC 9449 §10.1); a request that names another key is refused.
pub async fn push(
    ctx: &Ctx,
    client: &Client,
    form: &Params,
    dpop: Option<&Proof>,
) -> Result<Pushed, TokenError> {
    if form.get("request_uri").is_some() {
        return Err(refused(
            AuthorizeErrorCode::InvalidRequest,
            "request_uri cannot be pushed",
        ));
    }
    if form
        .get("client_id")
        .is_some_and(|id| id != client.client_id)
    {
        return Err(refused(
            AuthorizeErrorCode::InvalidRequest,
            "client_id is not the client that authenticated",
        ));
    }
    let now = ctx.clock.unix();
    let params = match form.get("request") {
        Some(jwt) => request_object::parameters(&ctx.issuer, client, jwt, now).map_err(|why| {
            let why = format!("the request object was refused: {why}");
            refused(AuthorizeErrorCode::InvalidRequestObject, why)
        })?,
        None => form
            .without(&CLIENT_AUTHENTICATION)
            .with("client_id", &client.client_id),
    };
    let params = match dpop {
        Some(_) if !ctx.config.tokens.dpop_code_binding => params,
        None => params,
        Some(proof) => match params.get("dpop_jkt") {
            Some(named) if named != proof.jkt => {
                return Err(TokenError::new(
                    TokenErrorCode::InvalidDpopProof,
                    "dpop_jkt names another key than the DPoP proof's",
                ));
            }
            _ => params.with("dpop_jkt", &proof.jkt),
        },
    };
    super::request::validate_resolved(ctx, &params, true).await?;
    // What is kept must read back as it was checked (`resolve` parses it again).
    let text = params
        .encode()
        .and_then(|text| Params::parse(text.as_bytes()).map(|_| text))
        .map_err(|e| refused(AuthorizeErrorCode::InvalidRequest, e.to_string()))?;
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", random_token()?);
    ctx.store
        .insert_pushed(
            &hash_secret(&request_uri),
            &client.client_id,
            &text,
            now,
            now + PUSHED_TTL_SECS,
        )
        .await?;
    Ok(Pushed {
        request_uri,
        expires_in: PUSHED_TTL_SECS,
    })
}

/// The parameters an authorization request stands for, and whether they were pushed.
pub struct Resolved<'a> {
    pub params: Cow<'a, Params>,
    pub pushed: bool,
}

/// What reached the authorization endpoint, resolved: a `request_uri` is taken (once, for its
/// client), a `request` verified; either names its client by `client_id` (RFC 9126 §4, RFC
/// 9101 §5). What cannot be resolved is a page: the redirect URI is not known yet.
pub async fn resolve<'a>(ctx: &Ctx, params: &'a Params) -> Result<Resolved<'a>, PageError> {
    let (uri, object) = (params.get("request_uri"), params.get("request"));
    if uri.is_none() && object.is_none() {
        return Ok(Resolved {
            params: Cow::Borrowed(params),
            pushed: false,
        });
    }
    let client_id = match params.get("client_id") {
        Some(id) if !params.is_repeated("client_id") => id,
        _ => {
            return Err(PageError::bad_request(
                "The sign-in request does not say which app is asking (client_id).",
            ));
        }
    };
    let now = ctx.clock.unix();
    match (uri, object) {
        (Some(uri), None) => {
            let expired = || {
                PageError::bad_request(
                    "This sign-in link has expired or was used already. Go back to the app and \
                     start again.",
                )
            };
            if !uri.starts_with(REQUEST_URI_PREFIX) {
                return Err(expired());
            }
            let text = ctx
                .store
                .take_pushed(&hash_secret(uri), client_id, now)
                .await?
                .ok_or_else(expired)?;
            let stored = Params::parse(text.as_bytes()).map_err(|e| {
                SystemError::Internal(anyhow::anyhow!("a pushed request does not parse: {e}"))
            })?;
            Ok(Resolved {
                params: Cow::Owned(stored),
                pushed: true,
            })
        }
        (None, Some(jwt)) => {
            let client = ctx.store.client(client_id).await?.ok_or_else(|| {
                PageError::bad_request(
                    "The app that sent you here is not registered with Gatehouse (unknown \
                     client_id).",
                )
            })?;
            let inner =
                request_object::parameters(&ctx.issuer, &client, jwt, now).map_err(|why| {
                    PageError::bad_request(format!("The app's signed request was refused: {why}."))
                })?;
            Ok(Resolved {
                params: Cow::Owned(inner),
                pushed: false,
            })
        }
        _ => Err(PageError::bad_request(
            "The sign-in request carries both request and request_uri.",
        )),
    }
}
