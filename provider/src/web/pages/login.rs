//! The sign-in page (`GET`/`POST /login`) and the account home (`GET /`). The rules are
//! `users::sign_in`; a sign-in that finishes an authorization request goes on to
//! `protocol::authorize::proceed`.

use crate::paths;
use crate::protocol::authorize::{self, pending};
use crate::protocol::error::PageError;
use crate::users::{self, Attempt, MAX_USERNAME_BYTES, SignIn};
use crate::web::error::no_store;
use crate::web::extract::{Browser, ClientMeta, Page, PostedForm, Query, SignedIn};
use crate::web::oauth::authorize::follow;
use crate::web::session::{or_new, remember};
use crate::web::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use sessions::Session;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Where a sign-in without an authorization request may return: our own pages only, from a
/// fixed list, so `next` can never become an open redirect.
fn local_next(next: Option<&str>) -> &'static str {
    match next {
        Some(paths::SESSIONS) => paths::SESSIONS,
        Some(paths::DEVELOPER) => paths::DEVELOPER,
        _ => paths::HOME,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "provider/login.html")]
struct LoginPage {
    csrf_token: String,
    request: String,
    next: &'static str,
    username: String,
    client_name: Option<String>,
    error: Option<String>,
}

#[derive(Template, WebTemplate, Default)]
#[template(path = "provider/home.html")]
struct HomePage {
    user: Option<String>,
    started: String,
    auth_time: String,
    idle_expires: String,
    absolute_expires: String,
    /// Shows the way to the developer console.
    developer: bool,
}

pub(super) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

pub async fn show_home(
    State(st): State<AppState>,
    me: Option<SignedIn>,
) -> Result<Response, PageError> {
    let Some(SignedIn {
        session: s,
        user_id,
    }) = me
    else {
        return Ok((no_store(), HomePage::default()).into_response());
    };
    let account = st.ctx.store.user_by_id(&user_id).await?;
    let page = HomePage {
        developer: account.as_ref().is_some_and(|u| u.developer),
        user: account.map(|u| u.username),
        started: rfc3339(s.created_at),
        auth_time: s.auth_time.map(rfc3339).unwrap_or_default(),
        idle_expires: rfc3339(s.idle_expires_at),
        absolute_expires: rfc3339(s.absolute_expires_at),
    };
    Ok((no_store(), page).into_response())
}

/// The page for `session`, about the pending request `request_id` (if it is one).
async fn login_page(
    st: &AppState,
    session: &Session,
    request_id: &str,
    next: Option<&str>,
) -> Result<LoginPage, PageError> {
    let pending = pending::pending(&st.ctx, session, request_id).await?;
    let client_name = match &pending {
        Some(p) => st.ctx.store.client(&p.client_id).await?.map(|c| c.name),
        None => None,
    };
    Ok(LoginPage {
        csrf_token: session.csrf_token().to_owned(),
        request: match pending {
            Some(_) => request_id.to_owned(),
            None => String::new(),
        },
        next: local_next(next),
        username: pending.and_then(|p| p.login_hint).unwrap_or_default(),
        client_name,
        error: None,
    })
}

pub async fn show_login(
    State(st): State<AppState>,
    meta: ClientMeta,
    browser: Browser,
    Query(query, _): Query<Page>,
) -> Result<Response, PageError> {
    let (session, jar) = or_new(&st, browser.jar, browser.session, &meta).await?;
    let request = query.get("request").unwrap_or("");
    // Signed in meanwhile (in another tab): this tab's request goes on without a second
    // sign-in, when that one will do for it.
    match authorize::resume_signed_in(&st.ctx, &session, request).await {
        Ok(None) => {}
        Ok(Some(n)) => return Ok(follow(&st, jar, Some(session), &meta, Ok(n)).await),
        Err(e) => return Ok((jar, e).into_response()),
    }
    let page = login_page(&st, &session, request, query.get("next")).await?;
    Ok((jar, no_store(), page).into_response())
}

pub async fn submit_login(
    State(st): State<AppState>,
    meta: ClientMeta,
    jar: CookieJar,
    posted: PostedForm,
) -> Result<Response, PageError> {
    let Some((mut session, form)) = posted.with_session()? else {
        return Err(PageError::Forbidden(
            "Your sign-in page expired. Go back to the app and start again.".into(),
        ));
    };
    let request = form.get("request").unwrap_or("").to_owned();
    let username = form.get("username").unwrap_or("");
    let mut page = login_page(&st, &session, &request, form.get("next")).await?;
    page.request = request.clone();
    page.username = username.chars().take(MAX_USERNAME_BYTES).collect();
    let attempt = Attempt {
        username,
        password: form.get("password").unwrap_or(""),
        addr: meta.key.as_deref(),
    };
    match users::sign_in(&st.ctx, &mut session, attempt).await? {
        SignIn::SignedIn { .. } => {
            let jar = remember(&st, jar, &session);
            Ok(after_sign_in(&st, jar, session, &meta, &request, page.next).await)
        }
        refused => Ok(not_signed_in(refused, page)),
    }
}

/// The sign-in page again, saying why the attempt did not sign anyone in.
fn not_signed_in(outcome: SignIn, mut page: LoginPage) -> Response {
    let (status, error) = match outcome {
        SignIn::Throttled { wait_secs } => {
            let plural = if wait_secs == 1 { "" } else { "s" };
            let wait =
                format!("Too many failed attempts. Wait {wait_secs} second{plural} and try again.");
            page.error = Some(wait);
            let retry = [(header::RETRY_AFTER, HeaderValue::from(wait_secs))];
            return (StatusCode::TOO_MANY_REQUESTS, retry, no_store(), page).into_response();
        }
        SignIn::Superseded => (
            StatusCode::CONFLICT,
            "This browser signed in twice at once, and the other sign-in went first. Reload \
             the app to go on.",
        ),
        SignIn::Refused | SignIn::SignedIn { .. } => {
            (StatusCode::UNAUTHORIZED, "Incorrect username or password.")
        }
    };
    page.error = Some(error.to_owned());
    (status, no_store(), page).into_response()
}

/// Signed in: on with the pending authorization request, or back to the page asked for.
async fn after_sign_in(
    st: &AppState,
    jar: CookieJar,
    session: Session,
    meta: &ClientMeta,
    request: &str,
    next: &'static str,
) -> Response {
    match authorize::resume(&st.ctx, &session, request).await {
        Ok(None) => (jar, no_store(), Redirect::to(next)).into_response(),
        Ok(Some(n)) => follow(st, jar, Some(session), meta, Ok(n)).await,
        Err(e) => (jar, e).into_response(),
    }
}
