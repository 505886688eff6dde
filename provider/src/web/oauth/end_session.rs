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
            } => signed_out(st, jar, was_signed_in, redirect),
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
    let redirect = end_session::confirm(&st.ctx, &me.session, &form).await?;
    Ok(signed_out(&st, jar, true, redirect))
}

fn signed_out_page(was_signed_in: bool) -> Response {
    (no_store(), SignedOutPage { was_signed_in }).into_response()
}

/// The answer of a sign-out: back to the app, or the signed-out page; the cookie dropped and
/// `Clear-Site-Data: "cookies"` (the browser forgets what it kept for us).
fn signed_out(
    st: &AppState,
    jar: CookieJar,
    was_signed_in: bool,
    redirect: Option<end_session::PostLogoutRedirect>,
) -> Response {
    let response = match redirect {
        Some(r) => {
            let pairs: Vec<(&str, &str)> = r.state.iter().map(|s| ("state", s.as_str())).collect();
            redirect_to_client(&r.uri, &pairs)
        }
        None => signed_out_page(was_signed_in),
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
