//! Passkeys in the browser. The page's script (`templates/passkeys.js`) asks for a
//! ceremony's options as JSON (`POST /login/passkey/options`,
//! `POST /account/security/passkeys/options`), hands them to `navigator.credentials`, and
//! posts the authenticator's answer with the page's form: a sign-in with a passkey alone
//! (`POST /login/passkey`), a new passkey (`POST /account/security/passkeys`), or the second
//! step and step-up (the code page's form, `super::login`). Removing one is a plain form
//! (`POST /account/security/passkeys/remove`). Every request carries the session's CSRF
//! token. The rules are `users::passkeys`.
//!
//! Adding and removing a passkey take a recent sign-in, as every change of a second factor.

use super::login::{self, after_sign_in, back_to_password, local_next, sign_in_expired};
use super::security::{page_for, require_confirmable, signed_in};
use crate::paths;
use crate::protocol::error::PageError;
use crate::users::passkeys::{self, PasskeyError, Purpose, Refusal};
use crate::users::{self, SignIn};
use crate::web::error::no_store;
use crate::web::extract::{ClientMeta, PostedForm};
use crate::web::session::remember;
use crate::web::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;

/// A JSON refusal for the page's script to show: `{"error": message}`.
fn refusal(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message });
    (status, no_store(), Json(body)).into_response()
}

/// The options, or why there are none.
fn options(started: Result<serde_json::Value, PasskeyError>) -> Result<Response, PageError> {
    match started {
        Ok(options) => Ok((no_store(), Json(options)).into_response()),
        Err(PasskeyError::Refused(why)) => {
            Ok(refusal(StatusCode::UNPROCESSABLE_ENTITY, &why.to_string()))
        }
        Err(PasskeyError::System(e)) => Err(e.into()),
    }
}

fn expired() -> Response {
    refusal(
        StatusCode::FORBIDDEN,
        "This page expired. Go back to the app and start again.",
    )
}

/// `POST /login/passkey/options`: a passkey sign-in's options, for the `purpose` the form
/// names: `sign-in` (a passkey alone), `second-factor` (after this session's password
/// step) or `step-up` (the signed-in account's).
pub async fn sign_in_options(
    State(st): State<AppState>,
    posted: PostedForm,
) -> Result<Response, PageError> {
    let Some((session, form)) = posted.with_session()? else {
        return Ok(expired());
    };
    let now = st.ctx.clock.unix();
    let (purpose, user_id) = match form.get("purpose") {
        Some("sign-in") => (Purpose::SignIn, None),
        Some("second-factor") => match login::waiting_second_factor(&session, now) {
            Some((user_id, ..)) => (Purpose::SecondFactor, Some(user_id)),
            None => return Ok(expired()),
        },
        Some("step-up") => match session.user_id.clone() {
            Some(user_id) => (Purpose::StepUp, Some(user_id)),
            None => return Ok(expired()),
        },
        _ => return Ok(refusal(StatusCode::BAD_REQUEST, "Unknown purpose.")),
    };
    let started =
        passkeys::start_sign_in(&st.ctx, &session.handle, purpose, user_id.as_deref()).await;
    options(started)
}

/// `POST /login/passkey`: a sign-in with a passkey alone; then on as after any sign-in.
pub async fn submit_passkey(
    State(st): State<AppState>,
    meta: ClientMeta,
    jar: CookieJar,
    posted: PostedForm,
) -> Result<Response, PageError> {
    let (mut session, form) = posted.with_session()?.ok_or_else(sign_in_expired)?;
    let request = form.get("request").unwrap_or("").to_owned();
    let next = local_next(form.get("next"));
    let answer = form.get("credential").unwrap_or("");
    let proved =
        passkeys::finish_sign_in(&st.ctx, &session.handle, Purpose::SignIn, None, answer).await;
    let proved = match proved {
        Ok(proved) => proved,
        Err(PasskeyError::Refused(why)) => {
            return refused_at_sign_in(&st, &session, request, next, why).await;
        }
        Err(PasskeyError::System(e)) => return Err(e.into()),
    };
    let keep = login::remember_days(&st).is_some() && form.get("remember") == Some("yes");
    // A password step waiting for its second factor is replaced by this sign-in.
    login::keep_second_factor(&mut session, None);
    let user_id = proved.user_id.as_str();
    match users::sign_in_with_passkey(&st.ctx, &mut session, user_id, proved.methods, keep).await? {
        SignIn::SignedIn { .. } => {
            let jar = remember(&st, jar, &session);
            Ok(after_sign_in(&st, jar, session, &meta, &request, next).await)
        }
        refused => back_to_password(&st, &session, request, next, refused).await,
    }
}

/// The sign-in page again, saying why the passkey did not sign in.
async fn refused_at_sign_in(
    st: &AppState,
    session: &sessions::Session,
    request: String,
    next: login::Next,
    why: Refusal,
) -> Result<Response, PageError> {
    let mut page = login::login_page(st, session, &request, Some(next.as_str())).await?;
    page.request = request;
    page.error = Some(why.to_string());
    Ok((StatusCode::UNAUTHORIZED, no_store(), page).into_response())
}

/// `POST /account/security/passkeys/options`: a new passkey's options, for a recent sign-in
/// and a name that will do.
pub async fn registration_options(
    State(st): State<AppState>,
    posted: PostedForm,
) -> Result<Response, PageError> {
    let Some((me, form)) = posted.signed_in()? else {
        return Ok(expired());
    };
    // The name first: nothing is made on the authenticator for a form that will be refused.
    if let Err(why) = passkeys::clean_name(form.get("name").unwrap_or("")) {
        return Ok(refusal(StatusCode::UNPROCESSABLE_ENTITY, &why.to_string()));
    }
    if me.require_fresh(&st, paths::SECURITY).is_err() {
        let why = "Sign in again first: adding a passkey needs a recent sign-in.";
        return Ok(refusal(StatusCode::FORBIDDEN, why));
    }
    let Some(user) = st.ctx.store.user_by_id(&me.user_id).await? else {
        return Ok(expired());
    };
    options(passkeys::start_registration(&st.ctx, &me.session.handle, &user).await)
}

/// `POST /account/security/passkeys`: registers the passkey that answered, under the name
/// typed.
pub async fn add_passkey(
    State(st): State<AppState>,
    posted: PostedForm,
) -> Result<Response, PageError> {
    let (me, form) = signed_in(posted)?;
    require_confirmable(&st, &me)?;
    let name = form.get("name").unwrap_or("");
    let answer = form.get("credential").unwrap_or("");
    let session = &me.session.handle;
    match passkeys::finish_registration(&st.ctx, session, &me.user_id, name, answer).await {
        Ok(_) => {
            let to = format!("{}?done=passkey-added", paths::SECURITY);
            Ok((no_store(), Redirect::to(&to)).into_response())
        }
        Err(PasskeyError::Refused(why)) => {
            let mut page = page_for(&st, &me).await?;
            page.error = Some(why.to_string());
            Ok((StatusCode::UNPROCESSABLE_ENTITY, no_store(), page).into_response())
        }
        Err(PasskeyError::System(e)) => Err(e.into()),
    }
}

/// `POST /account/security/passkeys/remove`: removes one of the account's passkeys, for a
/// recent sign-in.
pub async fn remove_passkey(
    State(st): State<AppState>,
    posted: PostedForm,
) -> Result<Response, PageError> {
    let (me, form) = signed_in(posted)?;
    me.require_fresh(&st, paths::SECURITY)?;
    let id = form.get("id").unwrap_or("");
    let removed = passkeys::remove(&st.ctx, &me.user_id, id, "the user").await?;
    let done = if removed { "passkey-removed" } else { "gone" };
    let to = format!("{}?done={done}", paths::SECURITY);
    Ok((no_store(), Redirect::to(&to)).into_response())
}
