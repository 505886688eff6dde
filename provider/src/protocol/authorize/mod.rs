//! The authorization endpoint's rules (RFC 6749 §4.1, OIDC Core §3.1.2): which request is
//! valid ([`request`]; pushed first, [`pushed`], or signed, [`request_object`]), and what
//! happens next for this browser: sign in, approve the app, or receive a code ([`Next`]).
//! Requests that wait for a person are kept in the session ([`pending`]).

pub mod level;
pub mod pending;
pub mod pushed;
pub mod request;
pub mod request_object;

use super::error::{AuthorizeError, PageError};
use super::params::Params;
use crate::context::Ctx;
use crate::logout;
use crate::store::{AuthCode, Client, Guard, Insert};
use crate::types::{AuthorizeErrorCode, GrantType};
use infra::secret::{hash_secret, random_token};
use level::StepUp;
use request::AuthRequest;
use sessions::{EndCause, Session};

/// What the endpoint does next.
#[derive(Debug)]
pub enum Next {
    /// The person must sign in (again) first; the request waits in their session.
    /// `session_over`: this browser's SSO session ended here (its account is gone or
    /// disabled), so its cookie goes too.
    SignIn {
        request: AuthRequest,
        session_over: bool,
    },
    /// The person must approve the app first; the request waits in their session.
    Consent(AuthRequest),
    /// The authorization response: a code for the client.
    Code(CodeRedirect),
}

/// A successful authorization response (RFC 6749 §4.1.2, RFC 9207 `iss`).
#[derive(Debug, PartialEq, Eq)]
pub struct CodeRedirect {
    pub redirect_uri: String,
    pub code: String,
    pub state: Option<String>,
    pub issuer: String,
}

/// A request as it arrives, with the browser's SSO session (if any).
pub async fn authorize(
    ctx: &Ctx,
    params: &Params,
    session: Option<&Session>,
) -> Result<Next, AuthorizeError> {
    let resolved = pushed::resolve(ctx, params).await?;
    let (req, client) = request::validate_resolved(ctx, &resolved.params, resolved.pushed).await?;
    let now = ctx.clock.unix();
    match session.filter(|s| s.user_id.is_some()) {
        Some(s) if !must_sign_in(&req, s, now) => proceed_with(ctx, s, req, &client).await,
        _ if req.prompt.none => Err(login_required(ctx, &req)),
        _ => Ok(Next::SignIn {
            request: req,
            session_over: false,
        }),
    }
}

/// Whether a signed-in session will not do for `req`: `prompt=login` or `select_account`, a
/// sign-in older than `max_age` (OIDC Core §3.1.2.1), or an `id_token_hint` naming someone
/// else (OIDC Core §3.1.2.2).
pub fn must_sign_in(req: &AuthRequest, session: &Session, now: i64) -> bool {
    wants_fresh_sign_in(req) || !sign_in_answers(req, session, now)
}

/// `prompt=login` or `select_account`: a sign-in made for this request.
fn wants_fresh_sign_in(req: &AuthRequest) -> bool {
    req.prompt.login || req.prompt.select_account
}

/// The session's sign-in is recent enough for `max_age` and of the person `id_token_hint`
/// names, if it names one. Its password counts, not a later step-up: `max_age` asks for the
/// whole sign-in again.
pub fn sign_in_answers(req: &AuthRequest, session: &Session, now: i64) -> bool {
    let too_old = req
        .max_age
        .is_some_and(|max| crate::users::password_at(session).is_none_or(|t| now - t > max));
    let someone_else = req
        .hint_sub
        .as_deref()
        .is_some_and(|sub| session.user_id.as_deref() != Some(sub));
    !too_old && !someone_else
}

pub fn login_required(ctx: &Ctx, req: &AuthRequest) -> AuthorizeError {
    req.error(
        &ctx.issuer,
        AuthorizeErrorCode::LoginRequired,
        "the user must sign in",
    )
    .into()
}

/// The person has just signed in (the login page) with the pending request `request_id`: it is
/// taken (once), and the request goes on to consent or to the code. `None` when there is no
/// such request (a sign-in for the provider's own pages).
pub async fn resume(
    ctx: &Ctx,
    session: &Session,
    request_id: &str,
) -> Result<Option<Next>, AuthorizeError> {
    let Some(req) = pending::take(ctx, session, request_id).await? else {
        return Ok(None);
    };
    proceed(ctx, session, req).await.map(Some)
}

/// What the sign-in page does for a browser already signed in.
#[derive(Debug)]
pub enum OnSignInPage {
    /// Ask for the password (nobody signed in, or a sign-in that will not do).
    Password,
    /// Ask only for the second factor that the request's level needs (step-up); the request
    /// keeps waiting.
    StepUp(AuthRequest),
    /// The request goes on.
    Go(Next),
}

/// The sign-in page is asked for (after a redirect for step-up, a reload, another tab) by a
/// browser that is signed in, with the pending request `request_id`: the request goes on as
/// after a sign-in here, if that sign-in will do for it ([`signed_in_for`]); or, if only a
/// second factor is missing, that is asked for.
pub async fn on_sign_in_page(
    ctx: &Ctx,
    session: &Session,
    request_id: &str,
) -> Result<OnSignInPage, AuthorizeError> {
    match answerable(ctx, session, request_id).await? {
        None => Ok(OnSignInPage::Password),
        Some((req, StepUp::Ask { .. })) => Ok(OnSignInPage::StepUp(req)),
        Some(_) => Ok(match resume(ctx, session, request_id).await? {
            Some(next) => OnSignInPage::Go(next),
            None => OnSignInPage::Password,
        }),
    }
}

/// The pending request `request_id` of `session` if it waits for a step-up: the session's
/// sign-in answers it in every other way ([`signed_in_for`]: the person, `max_age`,
/// `prompt=login`), and only the second factor its level needs is missing. Nothing else may
/// be finished with a code alone.
pub async fn waiting_for_step_up(
    ctx: &Ctx,
    session: &Session,
    request_id: &str,
) -> Result<Option<AuthRequest>, AuthorizeError> {
    Ok(match answerable(ctx, session, request_id).await? {
        Some((req, StepUp::Ask { .. })) => Some(req),
        _ => None,
    })
}

/// The pending request `request_id` of a signed-in `session`, if that sign-in answers it
/// ([`signed_in_for`]), with whether its level is reached ([`level::step_up`]).
async fn answerable(
    ctx: &Ctx,
    session: &Session,
    request_id: &str,
) -> Result<Option<(AuthRequest, StepUp)>, AuthorizeError> {
    if session.user_id.is_none() {
        return Ok(None);
    }
    let now = ctx.clock.unix();
    let Some(req) = pending::pending(ctx, session, request_id).await? else {
        return Ok(None);
    };
    if !signed_in_for(&req, session, now) {
        return Ok(None);
    }
    let client = still_allowed(ctx, &req).await?;
    let verdict = level::step_up(ctx, req.acr.as_ref(), &client, session).await?;
    Ok(Some((req, verdict)))
}

/// Whether the session's sign-in answers the waiting request `req`: the right person, recent
/// enough for `max_age`, and, where the request wanted a fresh sign-in (`prompt=login` or
/// `select_account`), made after the request (in a later second: the same second could be
/// the sign-in the request was made from).
fn signed_in_for(req: &AuthRequest, session: &Session, now: i64) -> bool {
    // The password typed after the request (a step-up since then is not a sign-in).
    let since_request = crate::users::password_at(session).is_some_and(|t| t > req.created_at);
    sign_in_answers(req, session, now) && (since_request || !wants_fresh_sign_in(req))
}

async fn proceed(ctx: &Ctx, session: &Session, req: AuthRequest) -> Result<Next, AuthorizeError> {
    let client = still_allowed(ctx, &req).await?;
    // Someone other than the person the request's id_token_hint names signed in on this
    // browser (OIDC Core §3.1.2.2): no code for them.
    if !sign_in_answers(&req, session, ctx.clock.unix()) {
        return Err(login_required(ctx, &req));
    }
    proceed_with(ctx, session, req, &client).await
}

/// A request that waited (for sign-in or consent, up to ten minutes) is checked again against
/// the client's registration as it is now: the client may be gone, the redirect URI removed,
/// the code flow withdrawn. Each is a page for the person, never a redirect.
pub async fn still_allowed(ctx: &Ctx, req: &AuthRequest) -> Result<Client, PageError> {
    let client = ctx
        .store
        .client(&req.client_id)
        .await?
        .ok_or_else(|| PageError::bad_request("This app is no longer registered."))?;
    if !client.has_redirect_uri(&req.redirect_uri) {
        return Err(PageError::bad_request(
            "The app no longer has the address it asked Gatehouse to send you to, so \
             Gatehouse will not send you there.",
        ));
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(PageError::bad_request(
            "This app may no longer sign you in.",
        ));
    }
    // The app now requires pushed requests, or an operator turned code binding off while
    // instances that cannot enforce it share the database (`tokens.dpop_code_binding`).
    if (client.require_par && !req.pushed)
        || (req.dpop_jkt.is_some() && !ctx.config.tokens.dpop_code_binding)
    {
        return Err(PageError::bad_request(
            "This app must now send its sign-in requests another way. Go back to the app and \
             start again.",
        ));
    }
    Ok(client)
}

/// A signed-in session: the account must still be active; then consent (unless first-party
/// or already given for these scopes, and not `prompt=consent`), then the code.
async fn proceed_with(
    ctx: &Ctx,
    session: &Session,
    req: AuthRequest,
    client: &Client,
) -> Result<Next, AuthorizeError> {
    // A first-party app asks only when `prompt=consent` says so: its consent is not read.
    // Otherwise the user and their consent to this app are read in one query.
    let reads_consent = !client.first_party && !req.prompt.consent;
    let user = match &session.user_id {
        Some(id) if reads_consent => ctx.store.user_with_consent(id, &client.client_id).await?,
        Some(id) => ctx.store.user_by_id(id).await?.map(|u| (u, None)),
        None => None,
    };
    let Some((_, consent)) = user.filter(|(u, _)| !u.disabled) else {
        return account_gone(ctx, session, req).await;
    };
    match level::step_up(ctx, req.acr.as_ref(), client, session).await? {
        StepUp::Reached => {}
        // Without a person to ask (`prompt=none`), a level that will do is answered as it is.
        StepUp::Ask { optional: true } if req.prompt.none => {}
        // OIDC Core §3.1.2.6: the person would have to interact.
        StepUp::Ask { .. } if req.prompt.none => {
            let code = AuthorizeErrorCode::InteractionRequired;
            let why = "the app needs a second factor, which the user must give";
            return Err(req.error(&ctx.issuer, code, why).into());
        }
        StepUp::Ask { .. } => {
            return Ok(Next::SignIn {
                request: req,
                session_over: false,
            });
        }
        StepUp::Unmet => {
            let code = AuthorizeErrorCode::UnmetAuthenticationRequirements;
            let why = "the app needs a sign-in with two factors, and the account has no \
                       second factor set up";
            return Err(req.error(&ctx.issuer, code, why).into());
        }
    }
    let consented = client.first_party
        || (consent.is_some_and(|g| g.covers(req.scopes))
            && api_consented(ctx, session, &req).await?);
    let asks = req.prompt.consent || !consented;
    if asks {
        if req.prompt.none {
            let code = AuthorizeErrorCode::ConsentRequired;
            return Err(req
                .error(&ctx.issuer, code, "the user must approve this app")
                .into());
        }
        return Ok(Next::Consent(req));
    }
    Ok(Next::Code(issue_code(ctx, session, &req, client).await?))
}

/// The session's account was removed or disabled: this session is over, everywhere.
async fn account_gone(
    ctx: &Ctx,
    session: &Session,
    req: AuthRequest,
) -> Result<Next, AuthorizeError> {
    logout::end(ctx, &[session.ending(EndCause::Revoked)]).await?;
    if req.prompt.none {
        return Err(login_required(ctx, &req));
    }
    Ok(Next::SignIn {
        request: req,
        session_over: true,
    })
}

/// Whether the user allowed this third-party app every scope it asks at the API the request
/// names (true if it names none).
async fn api_consented(
    ctx: &Ctx,
    session: &Session,
    req: &AuthRequest,
) -> Result<bool, AuthorizeError> {
    let (Some(r), Some(user_id)) = (&req.resource, &session.user_id) else {
        return Ok(true);
    };
    let held = ctx
        .store
        .resource_consent(user_id, &req.client_id, &r.resource_id)
        .await?;
    Ok(held.is_some_and(|h| h.covers(&r.scopes)))
}

/// Issues a code bound to the client, redirect URI, PKCE challenge, nonce and SSO session
/// (RFC 6749 §4.1.2), and records the client as a member of the session (for back-channel
/// logout), both in one commit, and only while the session has not ended.
pub async fn issue_code(
    ctx: &Ctx,
    session: &Session,
    req: &AuthRequest,
    client: &Client,
) -> Result<CodeRedirect, AuthorizeError> {
    let Some(user_id) = session.user_id.clone() else {
        let bug = anyhow::anyhow!("issue_code without a signed-in session");
        return Err(crate::context::SystemError::Internal(bug).into());
    };
    // A request taken while the client went without PKCE, finished after it must use it
    // again: refused now rather than with a code that the token endpoint will refuse.
    if client.pkce_required() && req.code_challenge.is_empty() {
        let why = "PKCE is required: code_challenge is missing";
        return Err(AuthorizeError::Redirect(req.error(
            &ctx.issuer,
            AuthorizeErrorCode::InvalidRequest,
            why,
        )));
    }
    let now = ctx.clock.unix();
    let code = random_token()?;
    let methods = crate::users::methods_of(session);
    let bound = AuthCode {
        client_id: req.client_id.clone(),
        user_id,
        redirect_uri: req.redirect_uri.clone(),
        scope: req.scopes,
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        sid: session.handle.clone(),
        auth_time: session.auth_time.map_or(now, |t| t.unix_timestamp()),
        amr: methods,
        acr: level::required(req.acr.as_ref(), client)
            .filter(|need| need.essential)
            .map(|need| need.answer(methods.level()).as_str().to_owned()),
        expires_at: now + infra::secs(ctx.config.tokens.code_lifetime),
        dpop_jkt: req.dpop_jkt.clone(),
    };
    // Stored only while the session has not ended and, for a third-party app, while the
    // user's consent stands: an end or a disconnect committed meanwhile finds the code and
    // revokes it, or the code is never written.
    let mut guards = vec![Guard::session_live(
        &session.handle,
        &bound.user_id,
        session.absolute_expires_at.unix_timestamp(),
    )];
    if !client.first_party {
        guards.push(Guard::consent_held(&bound.user_id, &client.client_id));
    }
    let code_hash = hash_secret(&code);
    let mut rows = vec![
        Insert::auth_code(&code_hash, &bound, now),
        Insert::session_member(&session.handle, &req.client_id, &bound.user_id, now),
    ];
    if let Some(r) = &req.resource {
        // Kept as long as the grant the code starts could live.
        let tokens = &ctx.config.tokens;
        let longest = tokens
            .refresh_token_lifetime
            .max(tokens.access_token_lifetime);
        let until = bound.expires_at + infra::secs(longest);
        rows.push(Insert::grant_resource(
            &code_hash,
            &r.resource_id,
            r.generation,
            &r.scopes,
            until,
        ));
    }
    let stored = ctx.store.insert_guarded(guards, rows).await?;
    if !stored {
        let code = AuthorizeErrorCode::LoginRequired;
        let why = "the session has ended, or the app was disconnected";
        return Err(req.error(&ctx.issuer, code, why).into());
    }
    Ok(CodeRedirect {
        redirect_uri: req.redirect_uri.clone(),
        code,
        state: req.state.clone(),
        issuer: ctx.issuer.clone(),
    })
}
