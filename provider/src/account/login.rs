//! The sign-in page and the account home.

use super::password::{self, MAX_PASSWORD_BYTES};
use super::throttle;
use crate::app::{ClientMeta, SharedState};
use crate::audit::{self, Event, Kind};
use crate::oidc::authorize;
use crate::web::{PageError, Params, no_store};
use askama::Template;
use askama_web::WebTemplate;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Longest username accepted (checked before any lookup or hash).
const MAX_USERNAME_BYTES: usize = 256;

/// Where a sign-in without an authorization request may return: our own pages only, from a
/// fixed list, so `next` can never become an open redirect.
fn local_next(next: Option<&str>) -> &'static str {
    match next {
        Some("/account/sessions") => "/account/sessions",
        Some(crate::developer::PATH) => crate::developer::PATH,
        _ => "/",
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

#[derive(Template, WebTemplate)]
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

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

pub(super) async fn show_home(
    State(st): State<SharedState>,
    jar: CookieJar,
) -> Result<Response, PageError> {
    let session = st.session(&jar).await?;
    let signed_in = session.as_ref().filter(|s| s.user_id.is_some());
    let account = match signed_in.and_then(|s| s.user_id.as_deref()) {
        Some(id) => st.store.user_by_id(id).await?,
        None => None,
    };
    let developer = account.as_ref().is_some_and(|u| u.developer);
    let user = account.map(|u| u.username);
    let page = match signed_in {
        Some(s) => HomePage {
            user,
            started: rfc3339(s.created_at),
            auth_time: s.auth_time.map(rfc3339).unwrap_or_default(),
            idle_expires: rfc3339(s.idle_expires_at),
            absolute_expires: rfc3339(s.absolute_expires_at),
            developer,
        },
        None => HomePage {
            user: None,
            started: String::new(),
            auth_time: String::new(),
            idle_expires: String::new(),
            absolute_expires: String::new(),
            developer: false,
        },
    };
    Ok((no_store(), page).into_response())
}

pub(super) async fn show_login(
    State(st): State<SharedState>,
    meta: ClientMeta,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let query = Params::parse(query.unwrap_or_default().as_bytes())
        .map_err(|e| PageError::BadRequest(format!("The address is malformed: {e}.")))?;
    let (session, jar) = st.session_or_new(jar, &meta).await?;
    let now = st.clock.unix();
    let pending = query
        .get("request")
        .and_then(|id| authorize::pending(&session, id, now));
    let client_name = match &pending {
        Some(p) => st.store.client(&p.client_id).await?.map(|c| c.name),
        None => None,
    };
    let page = LoginPage {
        csrf_token: session.csrf_token().to_owned(),
        request: if pending.is_some() {
            query.get("request").unwrap_or("").to_owned()
        } else {
            String::new()
        },
        next: local_next(query.get("next")),
        username: pending.and_then(|p| p.login_hint).unwrap_or_default(),
        client_name,
        error: None,
    };
    Ok((jar, no_store(), page).into_response())
}

pub(super) async fn submit_login(
    State(st): State<SharedState>,
    meta: ClientMeta,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = Params::parse(&body)
        .map_err(|e| PageError::BadRequest(format!("The form is malformed: {e}.")))?;
    form.check_repeated()
        .map_err(|e| PageError::BadRequest(format!("The form is malformed: {e}.")))?;
    let Some(mut session) = st.session(&jar).await? else {
        return Err(PageError::Forbidden(
            "Your sign-in page expired. Go back to the app and start again.".into(),
        ));
    };
    // CSRF: the token must be this session's (sessions crate, constant time).
    if !session.verify_csrf(form.get("csrf_token")) {
        return Err(PageError::csrf());
    }
    let request_id = form.get("request").unwrap_or("").to_owned();
    let username = form.get("username").unwrap_or("");
    let password = form.get("password").unwrap_or("");
    let plausible = !username.is_empty()
        && username.len() <= MAX_USERNAME_BYTES
        && password.len() <= MAX_PASSWORD_BYTES;
    let now = st.clock.unix();
    let throttle_keys = throttle::keys(username, meta.addr.as_deref());
    let client_name = match authorize::pending(&session, &request_id, now) {
        Some(p) => st.store.client(&p.client_id).await?.map(|c| c.name),
        None => None,
    };
    let page = |error: String| LoginPage {
        csrf_token: session.csrf_token().to_owned(),
        request: request_id.clone(),
        next: local_next(form.get("next")),
        username: username.chars().take(MAX_USERNAME_BYTES).collect(),
        client_name: client_name.clone(),
        error: Some(error),
    };
    // Throttled: the password is not even checked. The same answer for every name typed,
    // whether or not such an account exists.
    if let Some(wait) = throttle::wait(&st.store, &throttle_keys, now).await? {
        tracing::info!(wait, "sign-in throttled");
        metrics::counter!("gatehouse_sign_ins_throttled_total").increment(1);
        audit::record(
            &st.store,
            &st.clock,
            Event::new(Kind::SignInThrottled).detail(format!("wait {wait} s")),
        )
        .await;
        let retry = [(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(wait),
        )];
        let message = format!(
            "Too many failed attempts. Wait {wait} second{} and try again.",
            if wait == 1 { "" } else { "s" }
        );
        return Ok((
            StatusCode::TOO_MANY_REQUESTS,
            retry,
            no_store(),
            page(message),
        )
            .into_response());
    }
    let user = if plausible {
        st.store.user_by_username(username).await?
    } else {
        None
    };
    // Unknown user, wrong password and disabled account: same hash work, same answer.
    let verified = password::verify(
        user.as_ref().map(|u| u.password_hash.clone()),
        &st.decoy_hash,
        password.to_owned(),
    )
    .await;
    let user = match user {
        Some(u) if verified && !u.disabled => u,
        other => {
            tracing::info!("sign-in failed");
            let (user_id, why) = match &other {
                None => (None, "no such account"),
                Some(u) if u.disabled => (Some(u.id.as_str()), "account disabled"),
                Some(u) => (Some(u.id.as_str()), "wrong password"),
            };
            audit::record(
                &st.store,
                &st.clock,
                Event::new(Kind::SignInFailed).user_opt(user_id).detail(why),
            )
            .await;
            throttle::failed(&st.store, &throttle_keys, now).await?;
            let page = page("Incorrect username or password.".to_owned());
            return Ok((StatusCode::UNAUTHORIZED, no_store(), page).into_response());
        }
    };
    throttle::succeeded(&st.store, &throttle_keys).await?;
    // A new session id at login: the pre-login id (and any id an attacker planted) is dead.
    // Another user's session in this browser ends (and its apps hear of it).
    if let Some(ended) = st.sessions.authenticate(&mut session, &user.id).await? {
        crate::logout::session_ended(&st, &[ended]).await;
    }
    tracing::info!(sid = %session.handle, "signed in");
    audit::record(
        &st.store,
        &st.clock,
        Event::new(Kind::SignInOk)
            .user(&user.id)
            .session(&session.handle),
    )
    .await;
    // The signed-in SSO session, under a new id (and a new handle for a new user).
    audit::record(
        &st.store,
        &st.clock,
        Event::new(Kind::SessionCreated)
            .user(&user.id)
            .session(&session.handle)
            .detail(format!(
                "idle expiry {}, absolute expiry {}",
                session.idle_expires_at, session.absolute_expires_at
            )),
    )
    .await;
    metrics::counter!("gatehouse_sign_ins_total").increment(1);
    let jar = jar.add(st.cookies.cookie(session.id()));
    match authorize::take_pending(&mut session, &request_id, now) {
        Some(req) => Ok(authorize::proceed(&st, jar, session, &meta, req)
            .await
            .into_response()),
        None => {
            st.sessions.save(&session).await?;
            Ok((jar, no_store(), Redirect::to(local_next(form.get("next")))).into_response())
        }
    }
}
