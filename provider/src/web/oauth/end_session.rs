//! `GET` and `POST /logout` (RP-Initiated Logout 1.0 §2) and the confirmation page's answer:
//! the rules are `protocol::end_session`. Every sign-out clears the cookie and sends
//! `Clear-Site-Data: "cookies"`.

use crate::protocol::end_session::{self, EndSession};
use crate::protocol::error::PageError;
use crate::protocol::params::Params;
use crate::web::error::{no_store, redirect_to_client};
use crate::web::extract::{Browser, Form, PostedForm, Query, SignOutRequest};
use crate::web::session::forget;
use crate::web::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

#[derive(Template, WebTemplate)]
#[template(path = "provider/logout.html")]
struct ConfirmPage {
    csrf_token: String,
    client_name: Option<String>,
    /// The request's parameters, sent again with the answer.
    resend: Vec<(&'static str, String)>,
}

#[derive(Template, WebTemplate)]
#[template(path = "provider/signed_out.html")]
struct SignedOutPage {
    was_signed_in: bool,
    /// Front-channel logout URIs, each framed (Front-Channel Logout §3).
    frames: Vec<String>,
    /// Where the browser goes once the frames had their moment (RP-Initiated Logout §3).
    continue_to: Option<String>,
}

pub async fn end_session_get(
    State(st): State<AppState>,
    browser: Browser,
    Query(params, _): Query<SignOutRequest>,
) -> Result<Response, PageError> {
    respond(&st, browser, &params).await
}

pub async fn end_session_post(
    State(st): State<AppState>,
    browser: Browser,
    Form(params, _): Form<SignOutRequest>,
) -> Result<Response, PageError> {
    respond(&st, browser, &params).await
}

async fn respond(st: &AppState, browser: Browser, params: &Params) -> Result<Response, PageError> {
    let jar = browser.jar.clone();
    let me = browser.signed_in();
    let session = me.as_ref().map(|m| &m.session);
    Ok(
        match end_session::end_session(&st.ctx, params, session).await? {
            EndSession::Ask {
                client_name,
                csrf_token,
                resend,
            } => {
                let page = ConfirmPage {
                    csrf_token,
                    client_name,
                    resend,
                };
                (no_store(), page).into_response()
            }
            EndSession::NotSignedIn => signed_out_page(false),
            EndSession::SignedOut {
                was_signed_in,
                redirect,
                frames,
            } => signed_out(st, jar, was_signed_in, redirect, frames),
        },
    )
}

/// `POST /logout/confirm`: the confirmation page's answer (its CSRF token checked).
pub async fn confirm_logout(
    State(st): State<AppState>,
    jar: CookieJar,
    posted: PostedForm,
) -> Result<Response, PageError> {
    let Some((me, form)) = posted.signed_in()? else {
        return Ok(signed_out_page(false));
    };
    let (redirect, frames) = end_session::confirm(&st.ctx, &me.session, &form).await?;
    Ok(signed_out(&st, jar, true, redirect, frames))
}

fn signed_out_page(was_signed_in: bool) -> Response {
    let page = SignedOutPage {
        was_signed_in,
        frames: Vec::new(),
        continue_to: None,
    };
    (no_store(), page).into_response()
}

/// The signed-out page framing the apps' front-channel logout URIs, then (with a redirect)
/// going on to the app. Its CSP allows frames from those apps' origins only; the frames are
/// sandboxed (no top navigation, no pop-ups, no forms).
pub(crate) fn frames_page(
    issuer: &str,
    frames: Vec<String>,
    continue_to: Option<String>,
) -> Response {
    // Registration admits plain hosts only; this guard keeps anything else (a row written
    // before, by hand) out of the CSP, and never frames the provider's own origin (a
    // same-origin frame would undo the sandbox).
    let own = url::Url::parse(issuer).map(|u| u.origin().ascii_serialization());
    let safe = |origin: &str| {
        own.as_deref() != Ok(origin)
            && origin
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':' | b'/'))
    };
    let framed: Vec<(String, String)> = frames
        .into_iter()
        .filter_map(|f| {
            let origin = url::Url::parse(&f).ok()?.origin().ascii_serialization();
            safe(&origin).then_some((f, origin))
        })
        .collect();
    let mut origins: Vec<String> = framed.iter().map(|(_, o)| o.clone()).collect();
    origins.sort();
    origins.dedup();
    let frames: Vec<String> = framed.into_iter().map(|(f, _)| f).collect();
    let csp = format!(
        "{}; frame-src {}",
        crate::web::layers::CSP,
        origins.join(" ")
    );
    let page = SignedOutPage {
        was_signed_in: true,
        frames,
        continue_to,
    };
    let mut response = (no_store(), page).into_response();
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// The answer of a sign-out: back to the app, or the signed-out page; the cookie dropped and
/// `Clear-Site-Data: "cookies"` (the browser forgets what it kept for us).
fn signed_out(
    st: &AppState,
    jar: CookieJar,
    was_signed_in: bool,
    redirect: Option<end_session::PostLogoutRedirect>,
    frames: Vec<String>,
) -> Response {
    let response = match (redirect, frames.is_empty()) {
        (Some(r), true) => {
            let pairs: Vec<(&str, &str)> = r.state.iter().map(|s| ("state", s.as_str())).collect();
            redirect_to_client(&r.uri, &pairs)
        }
        (None, true) => signed_out_page(was_signed_in),
        (redirect, false) => {
            let continue_to = redirect.and_then(|r| {
                let mut url = url::Url::parse(&r.uri).ok()?;
                if let Some(state) = &r.state {
                    url.query_pairs_mut().append_pair("state", state);
                }
                Some(String::from(url))
            });
            frames_page(&st.ctx.issuer, frames, continue_to)
        }
    };
    let mut response = (forget(st, jar), response).into_response();
    response
        .headers_mut()
        .insert("clear-site-data", HeaderValue::from_static("\"cookies\""));
    if response.status() == StatusCode::OK {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
