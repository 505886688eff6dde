//! "Your sessions": every live SSO session of the signed-in user (device, address, started,
//! last seen, the apps signed in through it), with revoke-one and sign-out-everywhere. Both
//! act on the store at once: the revoked session's next request finds nothing.

use crate::app::SharedState;
use crate::web::{PageError, Params, no_store};
use askama::Template;
use askama_web::WebTemplate;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use sessions::{Session, SessionInfo};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub(super) const PATH: &str = "/account/sessions";

#[derive(Template, WebTemplate)]
#[template(path = "provider/sessions.html")]
struct SessionsPage {
    username: String,
    csrf_token: String,
    sessions: Vec<Row>,
    deliveries: Vec<DeliveryRow>,
    notice: Option<&'static str>,
}

/// A back-channel logout sent to an app in the last day.
struct DeliveryRow {
    app: String,
    sid: String,
    cause: String,
    status: String,
    status_class: &'static str,
    at: String,
}

struct Row {
    handle: String,
    current: bool,
    device: String,
    address: String,
    started: String,
    last_seen: String,
    apps: String,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A short description of a `User-Agent` (browser and platform), or the raw value.
fn device(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent else {
        return "Unknown device".into();
    };
    let browser = [
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| *name);
    let platform = [
        ("Windows", "Windows"),
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| *name);
    match (browser, platform) {
        (Some(b), Some(p)) => format!("{b} on {p}"),
        (Some(b), None) => b.to_owned(),
        _ => ua.chars().take(80).collect(),
    }
}

async fn signed_in(st: &SharedState, jar: &CookieJar) -> Result<Option<Session>, PageError> {
    Ok(st.session(jar).await?.filter(|s| s.user_id.is_some()))
}

async fn app_names(st: &SharedState, info: &SessionInfo) -> Result<String, PageError> {
    let names = st.store.session_client_names(&info.handle).await?;
    Ok(if names.is_empty() {
        "None yet".into()
    } else {
        names.join(", ")
    })
}

async fn render(
    st: &SharedState,
    session: &Session,
    notice: Option<&'static str>,
) -> Result<Response, PageError> {
    let user_id = session.user_id.clone().unwrap_or_default();
    let username = st
        .store
        .user_by_id(&user_id)
        .await?
        .map(|u| u.username)
        .unwrap_or_default();
    let mut rows = Vec::new();
    for info in st.sessions.list_for_user(&user_id).await? {
        rows.push(Row {
            current: info.handle == session.handle,
            device: device(info.user_agent.as_deref()),
            address: info.client_addr.clone().unwrap_or_else(|| "unknown".into()),
            started: rfc3339(info.created_at),
            last_seen: rfc3339(info.last_seen_at),
            apps: app_names(st, &info).await?,
            handle: info.handle,
        });
    }
    let mut deliveries = Vec::new();
    let since = st.clock.unix() - 24 * 3600;
    for d in st.store.deliveries_for_user(&user_id, since).await? {
        let app = st
            .store
            .client(&d.client_id)
            .await?
            .map_or(d.client_id.clone(), |c| c.name);
        let (status, status_class) = match d.state.as_str() {
            "delivered" => ("Delivered".to_owned(), "ok"),
            "failed" => (
                format!(
                    "Failed after {} attempts ({})",
                    d.attempts,
                    d.last_error.unwrap_or_default()
                ),
                "error-text",
            ),
            _ if d.attempts == 0 => ("Sending".to_owned(), "muted"),
            _ => (
                format!(
                    "Retrying (attempt {} failed: {})",
                    d.attempts,
                    d.last_error.unwrap_or_default()
                ),
                "warn",
            ),
        };
        deliveries.push(DeliveryRow {
            app,
            sid: d.sid,
            cause: d.cause.replace('_', " "),
            status,
            status_class,
            at: OffsetDateTime::from_unix_timestamp(d.created_at)
                .map(rfc3339)
                .unwrap_or_default(),
        });
    }
    let page = SessionsPage {
        username,
        csrf_token: session.csrf_token().to_owned(),
        sessions: rows,
        deliveries,
        notice,
    };
    Ok((no_store(), page).into_response())
}

pub(super) async fn show_sessions(
    State(st): State<SharedState>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    // The outcome of a revoke, passed along its redirect (Post/Redirect/Get: a reload of this
    // page never re-submits the form).
    let done = Params::parse(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let notice = match done.get("done") {
        Some("revoked") => Some("The session was signed out."),
        Some("gone") => Some("That session had already ended."),
        _ => None,
    };
    match signed_in(&st, &jar).await? {
        Some(session) => render(&st, &session, notice).await,
        None => Ok((no_store(), Redirect::to(&format!("/login?next={PATH}"))).into_response()),
    }
}

/// Checks the form's CSRF token against the signed-in session.
async fn authorized_form(
    st: &SharedState,
    jar: &CookieJar,
    body: &[u8],
) -> Result<(Session, Params), PageError> {
    let form = Params::parse(body)
        .map_err(|e| PageError::BadRequest(format!("The form is malformed: {e}.")))?;
    let session = signed_in(st, jar)
        .await?
        .ok_or_else(|| PageError::Forbidden("You are not signed in any more.".into()))?;
    if !session.verify_csrf(form.get("csrf_token")) {
        return Err(PageError::csrf());
    }
    Ok((session, form))
}

pub(super) async fn revoke_session(
    State(st): State<SharedState>,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, PageError> {
    let (session, form) = authorized_form(&st, &jar, &body).await?;
    let handle = form
        .get("sid")
        .ok_or_else(|| PageError::BadRequest("Which session? (sid is missing)".into()))?;
    let ended = st
        .sessions
        .revoke_handle(handle, session.user_id.as_deref())
        .await?;
    if let Some(end) = &ended {
        crate::logout::session_ended(&st, std::slice::from_ref(end)).await;
    }
    if handle == session.handle {
        return Ok((
            jar.remove(st.cookies.removal()),
            no_store(),
            Redirect::to("/"),
        )
            .into_response());
    }
    let done = if ended.is_some() { "revoked" } else { "gone" };
    Ok((no_store(), Redirect::to(&format!("{PATH}?done={done}"))).into_response())
}

pub(super) async fn revoke_all_sessions(
    State(st): State<SharedState>,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, PageError> {
    let (session, _) = authorized_form(&st, &jar, &body).await?;
    let user_id = session.user_id.clone().unwrap_or_default();
    let ended = st.sessions.revoke_user(&user_id).await?;
    crate::logout::session_ended(&st, &ended).await;
    Ok((
        jar.remove(st.cookies.removal()),
        no_store(),
        Redirect::to("/"),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::device;

    #[test]
    fn devices_are_named() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
        assert_eq!(device(Some(chrome)), "Chrome on Linux");
        assert_eq!(device(Some("curl/8.0")), "curl/8.0");
        assert_eq!(device(None), "Unknown device");
    }
}
