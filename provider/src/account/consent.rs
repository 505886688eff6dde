//! The consent page: which app asks for which scopes; the answer is remembered per user and
//! client (first-party clients skip it).

use crate::app::SharedState;
use crate::oidc::authorize;
use crate::web::{PageError, Params, no_store};
use askama::Template;
use askama_web::WebTemplate;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use sessions::Session;

#[derive(Template, WebTemplate)]
#[template(path = "provider/consent.html")]
struct ConsentPage {
    csrf_token: String,
    request: String,
    client_name: String,
    username: String,
    scopes: Vec<&'static str>,
}

fn describe(scope: &str) -> &'static str {
    match scope {
        "openid" => "Know who you are (your account identifier)",
        "profile" => "See your name and username",
        "email" => "See your email address",
        "offline_access" => "Keep access while you are signed out (offline access)",
        _ => "Other access",
    }
}

const EXPIRED: &str = "This approval request has expired. Go back to the app and sign in again.";

async fn signed_in(st: &SharedState, jar: &CookieJar) -> Result<Session, PageError> {
    st.session(jar)
        .await?
        .filter(|s| s.user_id.is_some())
        .ok_or_else(|| PageError::BadRequest(EXPIRED.into()))
}

pub(super) async fn show_consent(
    State(st): State<SharedState>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let query = Params::parse(query.unwrap_or_default().as_bytes())
        .map_err(|e| PageError::BadRequest(format!("The address is malformed: {e}.")))?;
    let session = signed_in(&st, &jar).await?;
    let id = query.get("request").unwrap_or("");
    let req = authorize::pending(&session, id, st.clock.unix())
        .ok_or_else(|| PageError::BadRequest(EXPIRED.into()))?;
    let client = st
        .store
        .client(&req.client_id)
        .await?
        .ok_or_else(|| PageError::BadRequest(EXPIRED.into()))?;
    let username = match &session.user_id {
        Some(uid) => st
            .store
            .user_by_id(uid)
            .await?
            .map(|u| u.username)
            .unwrap_or_default(),
        None => String::new(),
    };
    let page = ConsentPage {
        csrf_token: session.csrf_token().to_owned(),
        request: id.to_owned(),
        client_name: client.name,
        username,
        scopes: req.scopes.iter().map(|s| describe(s)).collect(),
    };
    Ok((no_store(), page).into_response())
}

pub(super) async fn submit_consent(
    State(st): State<SharedState>,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = Params::parse(&body)
        .map_err(|e| PageError::BadRequest(format!("The form is malformed: {e}.")))?;
    form.check_repeated()
        .map_err(|e| PageError::BadRequest(format!("The form is malformed: {e}.")))?;
    let mut session = signed_in(&st, &jar).await?;
    if !session.verify_csrf(form.get("csrf_token")) {
        return Err(PageError::csrf());
    }
    let now = st.clock.unix();
    let req = authorize::take_pending(&mut session, form.get("request").unwrap_or(""), now)
        .ok_or_else(|| PageError::BadRequest(EXPIRED.into()))?;
    match form.get("decision") {
        Some("allow") => {
            let user_id = session.user_id.clone().unwrap_or_default();
            st.store
                .grant_consent(&user_id, &req.client_id, &req.scopes, now)
                .await?;
            Ok(authorize::issue_code(&st, jar, session, &req)
                .await
                .into_response())
        }
        Some("deny") => {
            st.sessions.save(&session).await?;
            Ok(req
                .error(&st, "access_denied", "the user denied the request")
                .into_response())
        }
        _ => Err(PageError::BadRequest("Choose Allow or Deny.".into())),
    }
}
