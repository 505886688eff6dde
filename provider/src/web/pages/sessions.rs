//! "Your sessions" (`/account/sessions`): every live SSO session of the signed-in user
//! (device, address, started, last seen, the apps signed in through it) and the back-channel
//! logouts of the last day, with revoke-one and sign-out-everywhere. Both act on the store at
//! once: the revoked session's next request finds nothing. The connected apps that keep
//! offline access (and so outlive a sign-out everywhere) are named, each with Disconnect.

use super::apps::{AppRow, row};
use super::login::rfc3339;
use crate::paths;
use crate::protocol::end_session;
use crate::protocol::error::PageError;
use crate::store::Delivery;
use crate::types::DeliveryState;
use crate::users;
use crate::users::apps::{self, ConnectedApp};
use crate::web::error::no_store;
use crate::web::extract::{Page, PostedForm, Query, SignedIn};
use crate::web::session::forget;
use crate::web::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use time::OffsetDateTime;

#[derive(Template, WebTemplate)]
#[template(path = "provider/sessions.html")]
struct SessionsPage {
    username: String,
    csrf_token: String,
    sessions: Vec<Row>,
    deliveries: Vec<DeliveryRow>,
    /// Connected apps that keep access after "sign out everywhere".
    offline_apps: Vec<AppRow>,
    notice: Option<&'static str>,
}

/// A back-channel logout sent to an app in the last day.
struct DeliveryRow {
    app: String,
    sid: String,
    cause: String,
    status: &'static str,
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
    /// "Keep me signed in": kept until this absolute expiry.
    kept_until: Option<String>,
    /// How its sign-in was made, in words.
    signed_in_with: &'static str,
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

/// A delivery's state in a word, and its style. Only the state: a transport error, a status
/// code or the timing of attempts would tell whoever registered the URI what it points at
/// (README "Hostile clients"); the reason stays in the operator's log.
fn delivery_status(d: &Delivery) -> (&'static str, &'static str) {
    match d.state {
        DeliveryState::Delivered => ("Delivered", "ok"),
        DeliveryState::Failed => ("Not delivered", "error-text"),
        DeliveryState::Pending if d.attempts == 0 => ("Sending", "muted"),
        DeliveryState::Pending => ("Retrying", "warn"),
    }
}

async fn render(
    st: &AppState,
    me: &SignedIn,
    notice: Option<&'static str>,
) -> Result<Response, PageError> {
    let (store, user_id) = (&st.ctx.store, &me.user_id);
    let username = store.user_by_id(user_id).await?.map(|u| u.username);
    let live = st.ctx.sessions.list_for_user(user_id).await?;
    let handles: Vec<&str> = live.iter().map(|s| s.handle.as_str()).collect();
    let mut apps = store.session_client_names(&handles).await?;
    let sessions = live
        .iter()
        .map(|info| Row {
            current: info.handle == me.session.handle,
            device: device(info.user_agent.as_deref()),
            address: info.client_addr.clone().unwrap_or_else(|| "unknown".into()),
            started: rfc3339(info.created_at),
            last_seen: rfc3339(info.last_seen_at),
            kept_until: info.remembered().then(|| rfc3339(info.absolute_expires_at)),
            signed_in_with: signed_in_with(crate::users::methods_in(&info.data)),
            apps: match apps.remove(&info.handle) {
                Some(names) if !names.is_empty() => names.join(", "),
                _ => "None yet".into(),
            },
            handle: info.handle.clone(),
        })
        .collect();
    let since = st.ctx.clock.unix() - 24 * 3600;
    let recent = store.deliveries_for_user(user_id, since).await?;
    let deliveries = recent
        .into_iter()
        .map(|(d, client_name)| {
            let (status, status_class) = delivery_status(&d);
            DeliveryRow {
                app: client_name.unwrap_or(d.client_id),
                sid: d.sid,
                cause: d.cause.replace('_', " "),
                status,
                status_class,
                at: OffsetDateTime::from_unix_timestamp(d.created_at)
                    .map(rfc3339)
                    .unwrap_or_default(),
            }
        })
        .collect();
    let connected = apps::connected_apps(store, user_id, st.ctx.clock.unix()).await?;
    let offline_apps = connected
        .into_iter()
        .filter(ConnectedApp::keeps_offline_access)
        .map(row)
        .collect();
    let page = SessionsPage {
        username: username.unwrap_or_default(),
        csrf_token: me.session.csrf_token().to_owned(),
        sessions,
        deliveries,
        offline_apps,
        notice,
    };
    Ok((no_store(), page).into_response())
}

pub async fn show_sessions(
    State(st): State<AppState>,
    me: Option<SignedIn>,
    Query(query, _): Query<Page>,
) -> Result<Response, PageError> {
    // The outcome of a revoke, passed along its redirect (Post/Redirect/Get: a reload of this
    // page never re-submits the form).
    let notice = match query.get("done") {
        Some("revoked") => Some("The session was signed out."),
        Some("gone") => Some("That session had already ended."),
        Some("disconnected") => Some("The app was disconnected."),
        _ => None,
    };
    let me = me.ok_or(PageError::SignInFirst {
        next: paths::SESSIONS,
    })?;
    render(&st, &me, notice).await
}

fn not_signed_in() -> PageError {
    PageError::Forbidden("You are not signed in any more.".into())
}

pub async fn revoke_session(
    State(st): State<AppState>,
    jar: CookieJar,
    posted: PostedForm,
) -> Result<Response, PageError> {
    let (me, form) = posted.signed_in()?.ok_or_else(not_signed_in)?;
    let handle = form
        .get("sid")
        .ok_or_else(|| PageError::bad_request("Which session? (sid is missing)"))?;
    let own = handle == me.session.handle;
    let frames = match own {
        true => end_session::frames(&st.ctx, handle).await?,
        false => Vec::new(),
    };
    let ended = users::sign_out_session(&st.ctx, &me.user_id, handle).await?;
    if own {
        return Ok(signed_out_here(&st, jar, frames));
    }
    let done = if ended { "revoked" } else { "gone" };
    let to = format!("{}?done={done}", paths::SESSIONS);
    Ok((no_store(), Redirect::to(&to)).into_response())
}

pub async fn revoke_all_sessions(
    State(st): State<AppState>,
    jar: CookieJar,
    posted: PostedForm,
) -> Result<Response, PageError> {
    let (me, _) = posted.signed_in()?.ok_or_else(not_signed_in)?;
    let frames = end_session::frames(&st.ctx, &me.session.handle).await?;
    users::sign_out_everywhere(&st.ctx, &me.user_id).await?;
    Ok(signed_out_here(&st, jar, frames))
}

/// This browser's session ended here: home, or first the signed-out page framing the apps
/// of this session that asked for front-channel logout (the other sessions' apps hear by
/// back-channel only: no browser of theirs is here).
fn signed_out_here(st: &AppState, jar: CookieJar, frames: Vec<String>) -> Response {
    if frames.is_empty() {
        return (forget(st, jar), no_store(), Redirect::to(paths::HOME)).into_response();
    }
    let page = crate::web::oauth::end_session::frames_page(&st.ctx.issuer, frames, None);
    (forget(st, jar), page).into_response()
}

/// How a session signed in, in words.
fn signed_in_with(methods: crate::types::Methods) -> &'static str {
    use crate::types::Method;
    match (methods.contains(Method::Pwd), methods.has_key()) {
        (true, true) => "Password and passkey",
        (false, true) => "Passkey",
        (true, false) if methods.contains(Method::Otp) => "Password and code",
        _ => "Password",
    }
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
