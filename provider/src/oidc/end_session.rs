//! RP-Initiated Logout 1.0 at `end_session_endpoint`, GET and POST.
//!
//! - With a valid `id_token_hint` (signed by us, for the client; it may have expired, §2) the
//!   SSO session it names ends at once, and the browser goes back to `post_logout_redirect_uri`
//!   (an exact match of one the client registered) with `state`.
//! - Without one, nothing happens on a GET: a confirmation page asks, and only its POST, with
//!   this session's CSRF token, signs out. A `post_logout_redirect_uri` without a valid hint is
//!   never redirected to (§3: the OP must be sure the RP sent it).
//!
//! Every logout clears the cookie and sends `Clear-Site-Data: "cookies"`, and its end reaches
//! every app of the session through the back-channel outbox.

use crate::app::{AppState, SharedState};
use crate::store::Client;
use crate::web::{PageError, Params, no_store};
use askama::Template;
use askama_web::WebTemplate;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use sessions::EndCause;

#[derive(Template, WebTemplate)]
#[template(path = "provider/logout.html")]
struct ConfirmPage {
    csrf_token: String,
    client_name: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "provider/signed_out.html")]
struct SignedOutPage {
    was_signed_in: bool,
}

/// The claims of an `id_token_hint` we use.
#[derive(Deserialize)]
struct HintClaims {
    sub: String,
    aud: Audience,
    sid: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn first(&self) -> Option<&str> {
        match self {
            Self::One(a) => Some(a),
            Self::Many(list) => list.first().map(String::as_str),
        }
    }
}

pub(super) async fn end_session_get(
    State(st): State<SharedState>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    end_session(&st, jar, query.unwrap_or_default().as_bytes())
        .await
        .into_response()
}

pub(super) async fn end_session_post(
    State(st): State<SharedState>,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !super::authorize::is_form(&headers) {
        return PageError::BadRequest("The sign-out request must be sent as a form.".into())
            .into_response();
    }
    end_session(&st, jar, &body).await.into_response()
}

async fn end_session(st: &AppState, jar: CookieJar, raw: &[u8]) -> Result<Response, PageError> {
    let bad = |m: &str| PageError::BadRequest(m.to_owned());
    let params =
        Params::parse(raw).map_err(|e| bad(&format!("The sign-out request is malformed: {e}.")))?;
    params
        .check_repeated()
        .map_err(|e| bad(&format!("The sign-out request is malformed: {e}.")))?;
    let hint: Option<HintClaims> = match params.get("id_token_hint") {
        Some(token) => Some(
            st.keys()
                .verify_with(token, "JWT", &st.issuer, None, None)
                .map_err(|_| {
                    bad("The sign-out request carries an ID token that Gatehouse did not issue.")
                })?,
        ),
        None => None,
    };
    let client_id = match (
        hint.as_ref().and_then(|h| h.aud.first()),
        params.get("client_id"),
    ) {
        (Some(aud), Some(given)) if aud != given => {
            return Err(bad(
                "The sign-out request's client_id does not match its ID token.",
            ));
        }
        (Some(aud), _) => Some(aud.to_owned()),
        (None, given) => given.map(str::to_owned),
    };
    let client: Option<Client> = match &client_id {
        Some(id) => Some(
            st.store
                .client(id)
                .await?
                .ok_or_else(|| bad("The app asking to sign you out is not registered."))?,
        ),
        None => None,
    };
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let registered = client
                .as_ref()
                .is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri));
            if !registered {
                return Err(bad(
                    "The app asked Gatehouse to send you to an address it has not registered for \
                     sign-out, so Gatehouse will not send you there.",
                ));
            }
            // Without a hint we cannot tell the app really sent this: no redirect (§3).
            hint.is_some().then(|| uri.to_owned())
        }
    };
    let session = st.session(&jar).await?.filter(|s| s.user_id.is_some());
    let Some(hint) = hint else {
        // No proof of the app: ask the person (a bare GET never signs anyone out).
        return Ok(match session {
            Some(s) => {
                let page = ConfirmPage {
                    csrf_token: s.csrf_token().to_owned(),
                    client_name: client.map(|c| c.name),
                };
                (no_store(), page).into_response()
            }
            None => (
                no_store(),
                SignedOutPage {
                    was_signed_in: false,
                },
            )
                .into_response(),
        });
    };
    // The hint names the session to end: the one in this browser, if it is that user's.
    let mut was_signed_in = false;
    if let Some(s) = session.filter(|s| {
        s.user_id.as_deref() == Some(hint.sub.as_str())
            && hint.sid.as_deref().is_none_or(|sid| sid == s.handle)
    }) && let Some(end) = st.sessions.end(s.id(), EndCause::Logout).await?
    {
        crate::logout::session_ended(st, &[end]).await;
        was_signed_in = true;
    }
    let jar = jar.remove(st.cookies.removal());
    let response = match redirect {
        Some(uri) => {
            let state = params.get("state");
            let pairs: Vec<(&str, &str)> = state.map(|s| ("state", s)).into_iter().collect();
            super::error::redirect_to_client(&uri, &pairs)
        }
        None => (no_store(), SignedOutPage { was_signed_in }).into_response(),
    };
    Ok(signed_out(jar, response))
}

/// `POST /logout/confirm`: the confirmation page's answer.
pub(super) async fn confirm_logout(
    State(st): State<SharedState>,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = Params::parse(&body)
        .map_err(|e| PageError::BadRequest(format!("The form is malformed: {e}.")))?;
    let Some(session) = st.session(&jar).await?.filter(|s| s.user_id.is_some()) else {
        return Ok((
            no_store(),
            SignedOutPage {
                was_signed_in: false,
            },
        )
            .into_response());
    };
    if !session.verify_csrf(form.get("csrf_token")) {
        return Err(PageError::csrf());
    }
    if let Some(end) = st.sessions.end(session.id(), EndCause::Logout).await? {
        crate::logout::session_ended(&st, &[end]).await;
    }
    let jar = jar.remove(st.cookies.removal());
    Ok(signed_out(
        jar,
        (
            no_store(),
            SignedOutPage {
                was_signed_in: true,
            },
        )
            .into_response(),
    ))
}

/// Adds the removal cookie and `Clear-Site-Data: "cookies"` to a logout response.
fn signed_out(jar: CookieJar, response: Response) -> Response {
    let mut response = (jar, response).into_response();
    response
        .headers_mut()
        .insert("clear-site-data", HeaderValue::from_static("\"cookies\""));
    if response.status() == StatusCode::OK {
        response.headers_mut().insert(
            axum::http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
    }
    response
}
