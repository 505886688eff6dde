//! RP-Initiated Logout 1.0: the rules of the end-session endpoint.
//!
//! - Only a valid `id_token_hint` (signed by us; it may have expired, §2) naming the browser's
//!   current session (its `sid` and user) ends that session at once, and the browser goes back
//!   to `post_logout_redirect_uri` (an exact match of one registered by the hint's client)
//!   with `state`.
//! - Anything else (no hint, a hint without `sid`, another session's or another user's) asks
//!   the person ([`EndSession::Ask`]); nothing changes, the cookie included, until they confirm
//!   with this session's CSRF token ([`confirm`]). A valid hint's redirect happens after that
//!   decision (§2: the OP MUST ask when the hint does not belong to the current session).
//! - A `post_logout_redirect_uri` without a valid hint is never redirected to (§3: the OP must
//!   be sure the RP sent it).
//!
//! Every end reaches every app of the session through the back-channel outbox, and the apps
//! that registered a front-channel logout URI through the signed-out page, which frames each
//! (Front-Channel Logout 1.0 §2–§3: with `iss` and `sid` when the app asked for them).

use super::error::PageError;
use super::hint::{self, Hint};
use super::params::Params;
use crate::context::{Ctx, SystemError};
use crate::logout;
use crate::store::Client;
use sessions::{EndCause, Session};

/// What the endpoint does.
#[derive(Debug, PartialEq, Eq)]
pub enum EndSession {
    /// The person is asked to confirm (`client_name` is the app that sent them, if it said),
    /// with a form bearing this session's CSRF token and, when the request may send the
    /// browser back to its app afterwards, the request's own parameters (`resend`), which
    /// [`confirm`] checks again.
    Ask {
        client_name: Option<String>,
        csrf_token: String,
        resend: Vec<(&'static str, String)>,
    },
    /// No proof, and nobody is signed in here: nothing to do.
    NotSignedIn,
    /// The hinted sign-out happened (`was_signed_in`: this browser's session was the one
    /// named, and it ended). The browser forgets its cookie, and goes back to the app if it
    /// registered where.
    SignedOut {
        was_signed_in: bool,
        redirect: Option<PostLogoutRedirect>,
        /// The front-channel logout URIs to frame (Front-Channel Logout §3).
        frames: Vec<String>,
    },
}

/// Where the browser goes after a hinted sign-out (RP-Initiated Logout §3).
#[derive(Debug, PartialEq, Eq)]
pub struct PostLogoutRedirect {
    pub uri: String,
    pub state: Option<String>,
}

/// The parameters of a sign-out request that the confirmation form sends again.
const RESENT: [&str; 4] = [
    "id_token_hint",
    "client_id",
    "post_logout_redirect_uri",
    "state",
];

/// A sign-out request, checked: its hint, its client, where the browser may go afterwards.
struct Checked {
    hint: Option<Hint>,
    client: Option<Client>,
    redirect: Option<PostLogoutRedirect>,
}

async fn check(ctx: &Ctx, params: &Params) -> Result<Checked, PageError> {
    params
        .check_repeated()
        .map_err(|e| PageError::bad_request(format!("The sign-out request is malformed: {e}.")))?;
    let hint = match params.get("id_token_hint") {
        Some(token) => Some(hint::verify(ctx, token).ok_or_else(|| {
            PageError::bad_request(
                "The sign-out request carries an ID token that Gatehouse did not issue.",
            )
        })?),
        None => None,
    };
    let client = client(ctx, params, hint.as_ref()).await?;
    let redirect = post_logout_redirect(params, client.as_ref(), hint.is_some())?;
    Ok(Checked {
        hint,
        client,
        redirect,
    })
}

/// Whether the hint names this very session: its `sid`, and its user.
fn names(hint: &Hint, session: &Session) -> bool {
    hint.sid.as_deref() == Some(session.handle.as_str())
        && session.user_id.as_deref() == Some(hint.sub.as_str())
}

/// A sign-out request, with the browser's signed-in session (if any).
pub async fn end_session(
    ctx: &Ctx,
    params: &Params,
    session: Option<&Session>,
) -> Result<EndSession, PageError> {
    let checked = check(ctx, params).await?;
    Ok(match (session, &checked.hint) {
        (Some(s), Some(hint)) if names(hint, s) => EndSession::SignedOut {
            frames: end(ctx, s).await?,
            was_signed_in: true,
            redirect: checked.redirect,
        },
        (Some(s), _) => EndSession::Ask {
            client_name: checked.client.map(|c| c.name),
            csrf_token: s.csrf_token().to_owned(),
            resend: match checked.redirect {
                Some(_) => RESENT
                    .iter()
                    .filter_map(|p| params.get(p).map(|v| (*p, v.to_owned())))
                    .collect(),
                None => Vec::new(),
            },
        },
        // Nobody to sign out here: a hinted request still goes back to its app.
        (None, Some(_)) => EndSession::SignedOut {
            was_signed_in: false,
            redirect: checked.redirect,
            frames: Vec::new(),
        },
        (None, None) => EndSession::NotSignedIn,
    })
}

/// The client the request is from: its `client_id`, which must agree with the hint's
/// audience (§2).
async fn client(
    ctx: &Ctx,
    params: &Params,
    hint: Option<&Hint>,
) -> Result<Option<Client>, PageError> {
    let client_id = match (hint.and_then(Hint::client_id), params.get("client_id")) {
        (Some(aud), Some(given)) if aud != given => {
            return Err(PageError::bad_request(
                "The sign-out request's client_id does not match its ID token.",
            ));
        }
        (Some(aud), _) => Some(aud),
        (None, given) => given,
    };
    let Some(id) = client_id else {
        return Ok(None);
    };
    let client = ctx.store.client(id).await?.ok_or_else(|| {
        PageError::bad_request("The app asking to sign you out is not registered.")
    })?;
    Ok(Some(client))
}

/// `post_logout_redirect_uri`: refused unless registered by the client; followed only with a
/// valid hint (§3).
fn post_logout_redirect(
    params: &Params,
    client: Option<&Client>,
    hinted: bool,
) -> Result<Option<PostLogoutRedirect>, PageError> {
    let Some(uri) = params.get("post_logout_redirect_uri") else {
        return Ok(None);
    };
    let registered = client.is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri));
    if !registered {
        return Err(PageError::bad_request(
            "The app asked Gatehouse to send you to an address it has not registered for \
             sign-out, so Gatehouse will not send you there.",
        ));
    }
    Ok(hinted.then(|| PostLogoutRedirect {
        uri: uri.to_owned(),
        state: params.get("state").map(str::to_owned),
    }))
}

/// The person confirmed, on the form [`EndSession::Ask`] showed (its CSRF token checked by
/// the caller): the session ends whatever happened meanwhile, and the browser goes back to
/// the app only if the request it carries still checks out (the app may have been deleted,
/// its sign-out address removed: then it stays on the provider's signed-out page).
/// Returns where the browser goes next and the front-channel logout URIs to frame.
pub async fn confirm(
    ctx: &Ctx,
    session: &Session,
    form: &Params,
) -> Result<(Option<PostLogoutRedirect>, Vec<String>), PageError> {
    let checked = check(ctx, form).await;
    let frames = end(ctx, session).await?;
    match checked {
        Ok(c) => Ok((c.redirect, frames)),
        Err(PageError::System(e)) => Err(e.into()),
        Err(_) => Ok((None, frames)),
    }
}

/// Ends the session; returns the front-channel logout URIs of the apps that joined it, with
/// `iss` and `sid` for those that asked (Front-Channel Logout §2), read before the end
/// forgets who joined.
async fn end(ctx: &Ctx, session: &Session) -> Result<Vec<String>, SystemError> {
    let frames = frames(ctx, &session.handle).await?;
    logout::end(ctx, &[session.ending(EndCause::Logout)]).await?;
    Ok(frames)
}

/// The front-channel logout URIs of the apps that joined session `sid`, with `iss` and `sid`
/// for those that asked (Front-Channel Logout §2). Read before the session ends: its end
/// forgets who joined.
pub async fn frames(ctx: &Ctx, sid: &str) -> Result<Vec<String>, SystemError> {
    let targets = ctx.store.frontchannel_targets(sid).await?;
    Ok(targets
        .into_iter()
        .filter_map(|(uri, with_session)| {
            let mut url = url::Url::parse(&uri).ok()?;
            if with_session {
                url.query_pairs_mut()
                    .append_pair("iss", &ctx.issuer)
                    .append_pair("sid", sid);
            }
            Some(url.into())
        })
        .collect())
}
