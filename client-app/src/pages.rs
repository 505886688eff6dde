//! The app's routes, a contract that external checks rely on (README.md, "The sample app"):
//! `/`, `/login`, `/callback`, `/me`, `/logout`, `/logout/everywhere`, `/backchannel-logout`,
//! `/notes` (a note written to the Notes API, for an app that writes them), and `/settings`
//! (a page that needs a higher level of sign-in, for an app configured with one: `settings`).

use crate::AppState;
use crate::notes::{AfterSignOut, NotWritten, NotesPanel};
use crate::oidc::{PendingLogin, Renew, SignedIn};
use crate::renewal::{renewed, set_user, user_of};
use askama::Template;
use askama_web::WebTemplate;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use infra::secret::ct_eq;
use sessions::{EndCause, NewSession, Session};
use std::collections::HashMap;
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

type Shared = State<Arc<AppState>>;

const PENDING_KEY: &str = "pending";
/// At most this many sign-ins in flight per browser (tabs), each for at most ten minutes.
const PENDING_MAX: usize = 5;
const PENDING_TTL_SECS: i64 = 600;

#[derive(Template, WebTemplate)]
#[template(path = "client-app/home.html")]
struct HomePage {
    app_name: String,
    signed_in: Option<SignedInView>,
    csrf_token: String,
    /// The Notes panel, for a signed-in user of an app that calls Notes.
    notes: Option<NotesPanel>,
    max_note: usize,
    /// The API token of before "Sign out everywhere", presented once more.
    after_sign_out: Option<AfterSignOut>,
    /// The app has a Settings page (`settings_acr`).
    settings: bool,
}

struct SignedInView {
    sub: String,
    name: String,
    email: String,
    provider_sid: String,
    claims_json: String,
    created_at: String,
    last_seen_at: String,
    idle_expires_at: String,
    absolute_expires_at: String,
    access_token_expires_at: String,
    refresh: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "client-app/error.html")]
struct ErrorPage {
    app_name: String,
    title: &'static str,
    message: String,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn unix_rfc3339(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .map(rfc3339)
        .unwrap_or_default()
}

pub(crate) fn no_store() -> [(header::HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

pub(crate) fn error_page(
    st: &AppState,
    status: StatusCode,
    title: &'static str,
    message: impl Into<String>,
) -> Response {
    let page = ErrorPage {
        app_name: st.config.name.clone(),
        title,
        message: message.into(),
    };
    (status, no_store(), page).into_response()
}

/// What can fail beneath a page: the session store (out of reach, or otherwise), or anything
/// else (no randomness, a URL that makes no header).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error(transparent)]
    Store(#[from] sessions::StoreError),
    #[error(transparent)]
    Other(anyhow::Error),
}

impl From<infra::secret::RandomError> for Failure {
    fn from(e: infra::secret::RandomError) -> Self {
        Self::Other(e.into())
    }
}

impl From<header::InvalidHeaderValue> for Failure {
    fn from(e: header::InvalidHeaderValue) -> Self {
        Self::Other(e.into())
    }
}

/// An opaque 500 (logged once), or a 503 when the session store is unreachable.
pub(crate) fn internal(st: &AppState, e: impl Into<Failure>) -> Response {
    let e = e.into();
    if matches!(&e, Failure::Store(s) if s.is_unavailable()) {
        tracing::warn!(error = %e, "session store unreachable: answering 503");
        let mut page = error_page(
            st,
            StatusCode::SERVICE_UNAVAILABLE,
            "Briefly unavailable",
            "Please try again in a moment.",
        );
        page.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return page;
    }
    tracing::error!(error = %e, "internal error");
    error_page(
        st,
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Please try again in a moment.",
    )
}

pub(crate) async fn current(
    st: &AppState,
    jar: &CookieJar,
) -> Result<Option<Session>, sessions::StoreError> {
    match st.cookies.read(jar) {
        Some(id) => st.sessions.load(&id).await,
        None => Ok(None),
    }
}

/// How often a write of a session is tried again after another request's write came first.
const SAVE_ATTEMPTS: usize = 5;

/// The current session, its provider access token refreshed if it is about to expire
/// (`renewal::renewed`).
async fn current_fresh(
    st: &AppState,
    jar: &CookieJar,
) -> Result<Option<Session>, sessions::StoreError> {
    match current(st, jar).await? {
        Some(session) => renewed(st, session, Renew::Provider).await,
        None => Ok(None),
    }
}

pub(crate) async fn show_home(State(st): Shared, jar: CookieJar) -> Response {
    let mut session = match current_fresh(&st, &jar).await {
        Ok(s) => s,
        Err(e) => return internal(&st, e),
    };
    let (mut notes, mut after_sign_out) = (None, None);
    if let Some(api) = &st.notes
        && let Some(s) = session.take()
    {
        session = if user_of(&s).is_some() {
            match crate::notes::panel(&st, api, s).await {
                Ok((s, panel)) => {
                    notes = Some(panel);
                    s
                }
                Err(e) => return internal(&st, e),
            }
        } else {
            match crate::notes::after_sign_out(&st, api, &s).await {
                Ok(check) => {
                    after_sign_out = check;
                    Some(s)
                }
                Err(e) => return internal(&st, e),
            }
        };
    }
    let signed_in = session
        .as_ref()
        .and_then(|s| user_of(s).map(|u| (s, u)))
        .map(|(s, u)| SignedInView {
            sub: u.sub,
            name: u.name.unwrap_or_default(),
            email: u.email.unwrap_or_default(),
            provider_sid: u.provider_sid.unwrap_or_default(),
            claims_json: serde_json::to_string_pretty(&u.id_token_claims).unwrap_or_default(),
            created_at: rfc3339(s.created_at),
            last_seen_at: rfc3339(s.last_seen_at),
            idle_expires_at: rfc3339(s.idle_expires_at),
            absolute_expires_at: rfc3339(s.absolute_expires_at),
            access_token_expires_at: unix_rfc3339(u.access_token_expires_at),
            refresh: match (&u.refresh_token, u.refreshed_at) {
                (None, _) => "none: sign in again when the access token expires".into(),
                (Some(_), None) => "kept on this server; not used yet".into(),
                (Some(_), Some(at)) => {
                    format!("kept on this server; last used {}", unix_rfc3339(at))
                }
            },
        });
    let csrf_token = session
        .as_ref()
        .map(|s| s.csrf_token().to_owned())
        .unwrap_or_default();
    let page = HomePage {
        app_name: st.config.name.clone(),
        signed_in,
        csrf_token,
        notes,
        max_note: crate::notes::MAX_TEXT,
        after_sign_out,
        settings: st.config.settings_acr.is_some(),
    };
    (no_store(), page).into_response()
}

pub(crate) async fn show_me(State(st): Shared, jar: CookieJar) -> Response {
    let session = match current_fresh(&st, &jar).await {
        Ok(s) => s,
        Err(e) => return internal(&st, e),
    };
    let Some((s, u)) = session.as_ref().and_then(|s| user_of(s).map(|u| (s, u))) else {
        return (
            StatusCode::UNAUTHORIZED,
            no_store(),
            Json(serde_json::json!({"error": "not_signed_in"})),
        )
            .into_response();
    };
    let body = serde_json::json!({
        "sub": u.sub,
        "name": u.name,
        "email": u.email,
        "provider_sid": u.provider_sid,
        "session": {
            "created_at": rfc3339(s.created_at),
            "last_seen_at": rfc3339(s.last_seen_at),
            "idle_expires_at": rfc3339(s.idle_expires_at),
            "absolute_expires_at": rfc3339(s.absolute_expires_at),
        },
        "access_token_expires_at": unix_rfc3339(u.access_token_expires_at),
    });
    (no_store(), Json(body)).into_response()
}

/// Starts a sign-in: state, nonce and PKCE verifier are kept in this browser's (pre-login)
/// session; only the authorization URL leaves the server. `?for=settings`: a sign-in at the
/// level the Settings page needs, which returns there.
pub(crate) async fn start_login(
    State(st): Shared,
    jar: CookieJar,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let for_settings = query.as_deref() == Some("for=settings");
    let acr = st.config.settings_acr.as_deref().filter(|_| for_settings);
    let existing = match current(&st, &jar).await {
        Ok(s) => s,
        Err(e) => return internal(&st, e),
    };
    let (mut session, jar) = match existing {
        Some(s) => (s, jar),
        None => {
            let new = NewSession {
                user_agent: headers
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                ..NewSession::default()
            };
            match st.sessions.create(new).await {
                Ok(s) => {
                    let jar = jar.add(st.cookies.cookie(s.id()));
                    (s, jar)
                }
                Err(e) => return internal(&st, e),
            }
        }
    };
    let (url, pending) = st.oidc.start_login(acr);
    let now = st.clock.unix();
    // A compare-and-set: a sign-in started at the same time in another tab is kept.
    let mut saved = false;
    for _ in 0..SAVE_ATTEMPTS {
        let mut list = pending_list(&session);
        list.retain(|p| now - p.created_at < PENDING_TTL_SECS);
        // A sign-in instead of the check after "Sign out everywhere": the kept token goes.
        crate::notes::forget_check(&mut session);
        while list.len() >= PENDING_MAX {
            list.remove(0);
        }
        list.push(pending.clone());
        set_pending(&mut session, &list);
        match st.sessions.save(&mut session).await {
            Ok(true) => {
                saved = true;
                break;
            }
            Ok(false) => match st.sessions.load(session.id()).await {
                Ok(Some(fresh)) => session = fresh,
                Ok(None) => break,
                Err(e) => return internal(&st, e),
            },
            Err(e) => return internal(&st, e),
        }
    }
    if !saved {
        return error_page(
            &st,
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in could not start",
            "This browser's session changed while the sign-in was starting. Please try again."
                .to_owned(),
        );
    }
    // The route contract: 302 to the authorization endpoint.
    let location = HeaderValue::from_str(url.as_str());
    match location {
        Ok(l) => (StatusCode::FOUND, jar, no_store(), [(header::LOCATION, l)]).into_response(),
        Err(e) => internal(&st, e),
    }
}

fn pending_list(session: &Session) -> Vec<PendingLogin> {
    session
        .data
        .get(PENDING_KEY)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

fn set_pending(session: &mut Session, list: &[PendingLogin]) {
    if let (Some(obj), Ok(v)) = (session.data.as_object_mut(), serde_json::to_value(list)) {
        obj.insert(PENDING_KEY.into(), v);
    }
}

/// Takes the pending sign-in with this `state` out of the session, exactly once: the removal
/// is a compare-and-set, so of two callbacks with the same `state` (a double submit, a
/// replay) only one gets it, and the code is never redeemed twice.
async fn take_pending(
    st: &AppState,
    session: &mut Session,
    state: &str,
) -> Result<Option<PendingLogin>, sessions::StoreError> {
    let now = st.clock.unix();
    for _ in 0..SAVE_ATTEMPTS {
        let mut list = pending_list(session);
        let Some(index) = list
            .iter()
            .position(|p| now - p.created_at < PENDING_TTL_SECS && ct_eq(&p.state, state))
        else {
            return Ok(None);
        };
        let pending = list.remove(index);
        set_pending(session, &list);
        if st.sessions.save(session).await? {
            return Ok(Some(pending));
        }
        match st.sessions.load(session.id()).await? {
            Some(fresh) => *session = fresh,
            None => return Ok(None),
        }
    }
    Ok(None)
}

/// Query parameters, refusing repeats (a callback with two `state`s or `code`s is forged).
fn single_params(raw: &str) -> Option<HashMap<String, String>> {
    let mut map = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        if map.insert(k.into_owned(), v.into_owned()).is_some() {
            return None;
        }
    }
    Some(map)
}

/// The redirect back from the provider. Checks state (against this browser's pending
/// sign-ins, in constant time) and `iss` (RFC 9207) before anything else, then exchanges the
/// code and verifies the tokens. Success creates a fresh local session (new id).
pub(crate) async fn finish_login(
    State(st): Shared,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    let refuse = |m: &str| error_page(&st, StatusCode::BAD_REQUEST, "Sign-in failed", m.to_owned());
    let Some(params) = single_params(query.as_deref().unwrap_or("")) else {
        return refuse("The sign-in response was malformed.");
    };
    let mut session = match current(&st, &jar).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return refuse(
                "This sign-in was not started here, or it took too long. Please sign in again.",
            );
        }
        Err(e) => return internal(&st, e),
    };
    let given_state = params.get("state").map(String::as_str).unwrap_or("");
    let pending = match take_pending(&st, &mut session, given_state).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return refuse(
                "This sign-in response does not belong to a sign-in started here, or was \
                 already used (state mismatch).",
            );
        }
        Err(e) => return internal(&st, e),
    };
    // RFC 9207 §2.4: the provider announces `iss`; it must be there and be our issuer.
    if params.get("iss").map(String::as_str) != Some(st.issuer.as_str()) {
        return refuse(
            "The sign-in response did not come from the expected provider (iss mismatch).",
        );
    }
    if let Some(error) = params.get("error") {
        let message = match error.as_str() {
            "access_denied" => "You declined to share your account with this app.".to_owned(),
            "login_required" | "consent_required" => {
                "You need to sign in at the provider first.".to_owned()
            }
            other => format!("The provider refused the sign-in ({other})."),
        };
        return error_page(
            &st,
            StatusCode::BAD_REQUEST,
            "Sign-in did not complete",
            message,
        );
    }
    let Some(code) = params.get("code") else {
        return refuse("The sign-in response has no code.");
    };
    let signed_in = match st.oidc.finish_login(&pending, code).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "sign-in refused");
            return error_page(
                &st,
                StatusCode::BAD_GATEWAY,
                "Sign-in failed",
                format!("Gatehouse's answer was refused: {e}."),
            );
        }
    };
    // A fresh session id for the signed-in user (the pre-login id is dead), written in one
    // go with the provider's sid and the user: a back-channel logout for that sid finds the
    // session as soon as it exists.
    let written = st
        .sessions
        .authenticate_with(&mut session, &signed_in.sub, |s| {
            s.external_key = signed_in.provider_sid.clone();
            set_user(s, &signed_in);
        })
        .await;
    if let Err(e) = written {
        return internal(&st, e);
    }
    // A back-channel logout may have come for this sid (or, without one, for this user) while
    // the code was exchanged, and found no session yet: its end is remembered, and wins.
    match logged_out_meanwhile(&st, &signed_in).await {
        Ok(false) => {}
        Ok(true) => {
            tracing::info!(sub = %signed_in.sub, "sign-in crossed a back-channel logout: refused");
            if let Err(e) = st
                .sessions
                .end(session.id(), EndCause::ExternalRevocation)
                .await
            {
                return internal(&st, e);
            }
            return error_page(
                &st,
                StatusCode::BAD_REQUEST,
                "Sign-in did not complete",
                "Your session at Gatehouse ended while this sign-in was completing. Please \
                 sign in again."
                    .to_owned(),
            );
        }
        Err(e) => return internal(&st, e),
    }
    tracing::info!(sub = %signed_in.sub, "signed in");
    let back_to = if pending.for_settings {
        crate::settings::AFTER_SIGN_IN
    } else {
        "/"
    };
    (
        jar.add(st.cookies.cookie(session.id())),
        no_store(),
        Redirect::to(back_to),
    )
        .into_response()
}

/// Whether the provider logged this sign-in's session out (its `sid`), or every session of
/// its user, after the ID token was issued.
async fn logged_out_meanwhile(
    st: &AppState,
    signed_in: &SignedIn,
) -> Result<bool, sessions::StoreError> {
    if let Some(sid) = &signed_in.provider_sid
        && st
            .sessions
            .ended_at(&sessions::external_marker(sid))
            .await?
            .is_some()
    {
        return Ok(true);
    }
    let issued_at = signed_in.id_token_claims["iat"].as_i64().unwrap_or(0);
    Ok(st
        .sessions
        .ended_at(&sessions::user_marker(&signed_in.sub))
        .await?
        .is_some_and(|at| at >= issued_at))
}

/// The session a form was posted from, if its CSRF token is that session's.
/// `Ok(None)`: no session; `Err`: the refusal page, titled `refused`.
async fn posted_from(
    st: &AppState,
    jar: &CookieJar,
    body: &[u8],
    refused: &'static str,
) -> Result<Option<Session>, Response> {
    let Some(session) = current(st, jar).await.map_err(|e| internal(st, e))? else {
        return Ok(None);
    };
    let token = url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "csrf_token")
        .map(|(_, v)| v.into_owned());
    if !session.verify_csrf(token.as_deref()) {
        return Err(error_page(
            st,
            StatusCode::FORBIDDEN,
            refused,
            "This form could not be verified. Reload the page and try again.",
        ));
    }
    Ok(Some(session))
}

const SIGN_OUT_REFUSED: &str = "Sign-out refused";

/// Ends the local session only (CSRF-protected form).
pub(crate) async fn logout(State(st): Shared, jar: CookieJar, body: Bytes) -> Response {
    // Read the session before the jar drops its cookie.
    let found = posted_from(&st, &jar, &body, SIGN_OUT_REFUSED).await;
    let jar = jar.remove(st.cookies.removal());
    let session = match found {
        Ok(Some(session)) => session,
        Ok(None) => return (jar, no_store(), Redirect::to("/")).into_response(),
        Err(refused) => return refused,
    };
    if let Err(e) = st.sessions.end(session.id(), EndCause::Logout).await {
        return internal(&st, e);
    }
    (jar, no_store(), Redirect::to("/")).into_response()
}

/// Signs out everywhere: ends the local session, then sends the browser to the provider's
/// `end_session_endpoint` (RP-Initiated Logout 1.0) with the ID token as hint, `state`, and
/// this app's post-logout redirect URI. The provider's back-channel logout then reaches every
/// other app of the SSO session.
pub(crate) async fn logout_everywhere(State(st): Shared, jar: CookieJar, body: Bytes) -> Response {
    // Read the session before the jar drops its cookie.
    let found = posted_from(&st, &jar, &body, SIGN_OUT_REFUSED).await;
    let jar = jar.remove(st.cookies.removal());
    let session = match found {
        Ok(Some(session)) => session,
        Ok(None) => return (jar, no_store(), Redirect::to("/")).into_response(),
        Err(refused) => return refused,
    };
    let user = user_of(&session);
    if let Err(e) = st.sessions.end(session.id(), EndCause::Logout).await {
        return internal(&st, e);
    }
    let (Some(endpoint), Some(user)) = (st.oidc.end_session_endpoint.clone(), user) else {
        return (jar, no_store(), Redirect::to("/")).into_response();
    };
    // The Notes token is presented once more when the browser is back
    // (`notes::after_sign_out`): a demo's extra, which never holds up the sign-out.
    let mut jar = jar;
    if st.notes.is_some() {
        match crate::notes::keep_for_check(&st, &user).await {
            Ok(Some(check)) => jar = jar.add(st.cookies.cookie(check.id())),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "the API token could not be kept for the check"),
        }
    }
    let state = match infra::secret::random_handle() {
        Ok(s) => s,
        Err(e) => return internal(&st, e),
    };
    let mut url = endpoint;
    url.query_pairs_mut()
        .append_pair("id_token_hint", &user.id_token)
        .append_pair("client_id", &st.config.client_id)
        .append_pair(
            "post_logout_redirect_uri",
            &format!("{}/", st.config.public_url.as_str().trim_end_matches('/')),
        )
        .append_pair("state", &state);
    (jar, no_store(), Redirect::to(url.as_str())).into_response()
}

/// Writes a note to the Notes API (CSRF-protected form: `csrf_token`, `text`), then back to
/// the home page, which lists it (POST-redirect-GET).
pub(crate) async fn add_note(State(st): Shared, jar: CookieJar, body: Bytes) -> Response {
    const REFUSED: &str = "Note not saved";
    let Some(api) = st.notes.as_ref().filter(|n| n.config.write) else {
        return error_page(
            &st,
            StatusCode::NOT_FOUND,
            "Not found",
            "This app does not write notes.",
        );
    };
    let session = match posted_from(&st, &jar, &body, REFUSED).await {
        Ok(Some(session)) if user_of(&session).is_some() => session,
        Ok(_) => {
            return error_page(&st, StatusCode::UNAUTHORIZED, REFUSED, "Sign in first.");
        }
        Err(refused) => return refused,
    };
    let text = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "text")
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    if text.is_empty() || text.chars().count() > crate::notes::MAX_TEXT {
        let why = format!("A note is 1 to {} characters long.", crate::notes::MAX_TEXT);
        return error_page(&st, StatusCode::UNPROCESSABLE_ENTITY, REFUSED, why);
    }
    match crate::notes::write(&st, api, session, &text).await {
        Ok(Ok(())) | Ok(Err(NotWritten::SignedOut)) => {
            (no_store(), Redirect::to("/")).into_response()
        }
        Ok(Err(NotWritten::Refused(why))) => error_page(&st, StatusCode::BAD_GATEWAY, REFUSED, why),
        Err(e) => internal(&st, e),
    }
}

/// OIDC Back-Channel Logout 1.0 §2.5–2.8: a valid logout token ends every local session of the
/// provider session it names (or of its user) and gets 200; anything else gets 400 and ends
/// nothing.
pub(crate) async fn backchannel_logout(
    State(st): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let refuse = |description: String| {
        (
            StatusCode::BAD_REQUEST,
            no_store(),
            Json(serde_json::json!({"error": "invalid_request", "error_description": description})),
        )
            .into_response()
    };
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return refuse("the body must be application/x-www-form-urlencoded".into());
    }
    let Some(params) = std::str::from_utf8(&body).ok().and_then(single_params) else {
        return refuse("malformed form".into());
    };
    let Some(token) = params.get("logout_token") else {
        return refuse("logout_token is required".into());
    };
    let target = match st.logout.validate(token).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "logout token refused");
            return refuse(e.to_string());
        }
    };
    // The end is remembered before the sessions are removed, so a sign-in that crosses this
    // logout (its session written a moment later) finds it and is refused (`finish_login`).
    let ended = match &target {
        crate::logout::LogoutTarget::Sid(sid) => st.sessions.revoke_external(sid).await,
        crate::logout::LogoutTarget::Sub(sub) => {
            match st.sessions.remember_end(&sessions::user_marker(sub)).await {
                Ok(()) => st.sessions.revoke_user(sub).await,
                Err(e) => Err(e),
            }
        }
    };
    match ended {
        Ok(ended) => {
            tracing::info!(?target, sessions = ended.len(), "back-channel logout");
            (StatusCode::OK, no_store()).into_response()
        }
        Err(e) => internal(&st, e),
    }
}

/// `GET /frontchannel-logout?iss=…&sid=…` (OpenID Connect Front-Channel Logout 1.0 §2–§4):
/// the provider's signed-out page frames this for every app of the session that ended. The
/// browser's cookies may not come with a framed request (third-party cookies), so the local
/// sessions of that `sid` end here on the server, as with a logout token; `iss` must be our
/// provider. Framed by the provider only (`frame-ancestors`), never cached.
pub(crate) async fn frontchannel_logout(State(st): Shared, RawQuery(query): RawQuery) -> Response {
    let params = single_params(query.as_deref().unwrap_or(""));
    let (iss, sid) = match &params {
        Some(p) => (p.get("iss"), p.get("sid")),
        None => (None, None),
    };
    let answer = |status: StatusCode, text: &'static str| {
        let frame_ancestors = url::Url::parse(&st.issuer)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_else(|_| "'none'".into());
        let csp = format!("default-src 'none'; frame-ancestors {frame_ancestors}");
        let headers = [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
        ];
        let mut response = (status, headers, text).into_response();
        if let Ok(csp) = HeaderValue::from_str(&csp) {
            response
                .headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, csp);
        }
        response
    };
    let Some(sid) = sid.filter(|sid| !sid.is_empty() && sid.len() <= 256) else {
        return answer(StatusCode::BAD_REQUEST, "sid is required");
    };
    if !iss.is_some_and(|iss| ct_eq(iss, &st.issuer)) {
        return answer(StatusCode::BAD_REQUEST, "iss is not this app's provider");
    }
    // Unlike a logout token, anyone can send this: it ends what exists and writes nothing
    // else (no end marker for whatever sid it names).
    match st.sessions.end_external(sid).await {
        Ok(ended) => {
            tracing::info!(sessions = ended.len(), "front-channel logout");
            answer(StatusCode::OK, "signed out")
        }
        Err(e) => {
            tracing::error!(error = %e, "front-channel logout");
            answer(StatusCode::SERVICE_UNAVAILABLE, "try again")
        }
    }
}

/// `GET /readyz`: the app's session store answers.
pub(crate) async fn readiness(State(st): Shared) -> Response {
    use infra::health::{check, report};
    report(&[("sessions", check(st.sessions.ping()).await)])
}
