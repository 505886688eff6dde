//! "Connected apps" (`/account/apps`): every app the signed-in user granted access to (what it
//! may do, since when, when it last got a token, whether it keeps access while the user is
//! signed out), with Disconnect. The rules are in `users::apps`.

use super::consent::{describe, describe_api};
use crate::paths;
use crate::protocol::error::PageError;
use crate::users::apps::{self, ConnectedApp};
use crate::web::error::no_store;
use crate::web::extract::{Page, PostedForm, Query, SignedIn};
use crate::web::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use time::OffsetDateTime;

#[derive(Template, WebTemplate)]
#[template(path = "provider/apps.html")]
struct AppsPage {
    username: String,
    csrf_token: String,
    apps: Vec<AppRow>,
    notice: Option<&'static str>,
}

/// One connected app, for a page.
pub(super) struct AppRow {
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub since: String,
    pub last_used: String,
    pub offline: bool,
}

fn date(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .map(super::login::rfc3339)
        .unwrap_or_default()
}

pub(super) fn row(app: ConnectedApp) -> AppRow {
    AppRow {
        offline: app.keeps_offline_access(),
        scopes: app
            .scopes
            .iter()
            .map(|s| describe(s).to_owned())
            .chain(
                app.apis
                    .iter()
                    .flat_map(|(name, scopes)| scopes.iter().map(move |s| describe_api(name, s))),
            )
            .collect(),
        since: date(app.since),
        last_used: app.last_used.map_or_else(|| "Never".to_owned(), date),
        client_id: app.client_id,
        name: app.name,
    }
}

pub async fn show_apps(
    State(st): State<AppState>,
    me: Option<SignedIn>,
    Query(query, _): Query<Page>,
) -> Result<Response, PageError> {
    let notice = match query.get("done") {
        Some("disconnected") => Some("The app was disconnected."),
        Some("gone") => Some("That app was not connected any more."),
        _ => None,
    };
    let me = me.ok_or(PageError::SignInFirst { next: paths::APPS })?;
    let store = &st.ctx.store;
    let username = store.user_by_id(&me.user_id).await?.map(|u| u.username);
    let connected = apps::connected_apps(store, &me.user_id, st.ctx.clock.unix()).await?;
    let page = AppsPage {
        username: username.unwrap_or_default(),
        csrf_token: me.session.csrf_token().to_owned(),
        apps: connected.into_iter().map(row).collect(),
        notice,
    };
    Ok((no_store(), page).into_response())
}

/// Disconnects the posted `client_id`, then back to the page the form was on (`back`:
/// "sessions" or this page).
pub async fn disconnect_app(
    State(st): State<AppState>,
    posted: PostedForm,
) -> Result<Response, PageError> {
    let (me, form) = posted
        .signed_in()?
        .ok_or_else(|| PageError::Forbidden("You are not signed in any more.".into()))?;
    let back = match form.get("back") {
        Some("sessions") => paths::SESSIONS,
        _ => paths::APPS,
    };
    me.require_fresh(&st, back)?;
    let client_id = form
        .get("client_id")
        .ok_or_else(|| PageError::bad_request("Which app? (client_id is missing)"))?;
    let done = apps::disconnect_by_owner(&st.ctx, &me.user_id, client_id).await?;
    let outcome = if done.anything() {
        "disconnected"
    } else {
        "gone"
    };
    let to = format!("{back}?done={outcome}");
    Ok((no_store(), Redirect::to(&to)).into_response())
}
