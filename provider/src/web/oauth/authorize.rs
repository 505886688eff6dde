//! `GET` and `POST /authorize` (RFC 6749 §4.1.1, OIDC Core §3.1.2.1): the rules are
//! `protocol::authorize`; here the outcome becomes a redirect (to the client, or to the sign-in
//! or consent page with the request waiting in the session).

use crate::paths;
use crate::protocol::authorize::{self, CodeRedirect, Next, pending};
use crate::protocol::error::AuthorizeError;
use crate::protocol::params::Params;
use crate::web::error::{no_store, redirect_to_client};
use crate::web::extract::{Browser, ClientMeta, Form, Query, SignInRequest};
use crate::web::session::{forget, or_new};
use crate::web::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use sessions::Session;

pub async fn authorize_get(
    State(st): State<AppState>,
    meta: ClientMeta,
    browser: Browser,
    Query(params, _): Query<SignInRequest>,
) -> Response {
    respond(&st, browser, &meta, &params).await
}

pub async fn authorize_post(
    State(st): State<AppState>,
    meta: ClientMeta,
    browser: Browser,
    Form(params, _): Form<SignInRequest>,
) -> Response {
    respond(&st, browser, &meta, &params).await
}

async fn respond(st: &AppState, browser: Browser, meta: &ClientMeta, params: &Params) -> Response {
    let signed_in = browser.session.clone().filter(|s| s.user_id.is_some());
    let next = authorize::authorize(&st.ctx, params, signed_in.as_ref()).await;
    follow(st, browser.jar, browser.session, meta, next).await
}

/// Where the browser goes next, from the rules' outcome (also after sign-in and consent). The
/// jar's cookie changes (a new session id at sign-in) go out with every answer, errors too.
pub async fn follow(
    st: &AppState,
    jar: CookieJar,
    session: Option<Session>,
    meta: &ClientMeta,
    next: Result<Next, AuthorizeError>,
) -> Response {
    let next = match next {
        Ok(n) => n,
        Err(e) => return (jar, e).into_response(),
    };
    let answer = match next {
        Next::Code(code) => Ok((jar, code_redirect(&code)).into_response()),
        Next::Consent(req) => wait_at(st, jar, session, meta, &req, paths::CONSENT).await,
        Next::SignIn {
            request,
            session_over,
        } => {
            let (jar, session) = if session_over {
                (forget(st, jar), None)
            } else {
                (jar, session)
            };
            wait_at(st, jar, session, meta, &request, paths::LOGIN).await
        }
    };
    answer.unwrap_or_else(IntoResponse::into_response)
}

/// The authorization response (RFC 6749 §4.1.2): `code`, `state` and `iss` (RFC 9207).
pub fn code_redirect(c: &CodeRedirect) -> Response {
    let mut params = vec![("code", c.code.as_str())];
    if let Some(s) = c.state.as_deref() {
        params.push(("state", s));
    }
    params.push(("iss", c.issuer.as_str()));
    redirect_to_client(&c.redirect_uri, &params)
}

/// Keeps `req` in the browser's session (a new pre-login one if it has none) and sends the
/// browser to `page` (sign-in or consent) with the request's id.
async fn wait_at(
    st: &AppState,
    jar: CookieJar,
    session: Option<Session>,
    meta: &ClientMeta,
    req: &authorize::request::AuthRequest,
    page: &str,
) -> Result<Response, AuthorizeError> {
    let (session, jar) = or_new(st, jar, session, meta).await?;
    let id = pending::remember(&st.ctx, &session, req).await?;
    let to = format!("{page}?request={id}");
    Ok((jar, no_store(), Redirect::to(&to)).into_response())
}
