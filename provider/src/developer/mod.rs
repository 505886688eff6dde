//! The developer console (`/developer`): a signed-in user with the developer role lists the
//! apps they registered, registers one through a form (validated by the same rules as the
//! registration endpoint, errors shown beside their field), edits its settings, rotates its
//! secret (shown once) and deletes it. Every form carries the session's CSRF token; every page
//! is plain HTML that works with the keyboard alone and without script.

use crate::app::SharedState;
use crate::registration::{self, ClientMetadata, MetadataError, Registrant};
use crate::store::{AuthMethod, Client, User};
use crate::web::{PageError, Params, no_store};
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::CookieJar;
use sessions::Session;

pub const PATH: &str = "/developer";

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route(PATH, get(show_apps))
        .route("/developer/apps", post(create_app))
        .route("/developer/apps/new", get(show_new_app))
        .route(
            "/developer/apps/{client_id}",
            get(show_app).post(update_app),
        )
        .route(
            "/developer/apps/{client_id}/rotate-secret",
            post(rotate_secret),
        )
        .route("/developer/apps/{client_id}/delete", post(delete_app))
}

#[derive(Template, WebTemplate)]
#[template(path = "provider/developer.html")]
struct AppsPage {
    username: String,
    apps: Vec<Client>,
    notice: Option<&'static str>,
}

/// The form's values as typed (re-shown after a refusal) and the refusal, if any.
#[derive(Clone, Debug, Default)]
struct FormValues {
    name: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    backchannel_logout_uri: String,
    auth_method: String,
    id_token_alg: String,
    grant_authorization_code: bool,
    grant_refresh_token: bool,
    grant_client_credentials: bool,
    jwks: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "provider/developer_app.html")]
struct AppPage {
    csrf_token: String,
    /// `None` for a new app.
    client: Option<Client>,
    form: FormValues,
    error: Option<MetadataError>,
    notice: Option<&'static str>,
}

impl AppPage {
    /// The error message for `field`, if the refusal concerns it.
    fn error_for(&self, field: &str) -> Option<&str> {
        self.error
            .as_ref()
            .filter(|e| e.field == field)
            .map(|e| e.description.as_str())
    }

    fn selected(&self, field: &str, value: &str) -> bool {
        match field {
            "auth_method" => self.form.auth_method == value,
            _ => self.form.id_token_alg == value,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "provider/developer_secret.html")]
struct SecretPage {
    client: Client,
    secret: Option<String>,
    created: bool,
}

impl FormValues {
    fn new_app() -> Self {
        Self {
            auth_method: AuthMethod::ClientSecretBasic.as_str().into(),
            id_token_alg: "RS256".into(),
            grant_authorization_code: true,
            grant_refresh_token: true,
            ..Self::default()
        }
    }

    fn of(c: &Client) -> Self {
        Self {
            name: c.name.clone(),
            redirect_uris: c.redirect_uris.join("\n"),
            post_logout_redirect_uris: c.post_logout_redirect_uris.join("\n"),
            backchannel_logout_uri: c.backchannel_logout_uri.clone().unwrap_or_default(),
            auth_method: c.auth_method.as_str().into(),
            id_token_alg: c.id_token_alg.clone(),
            grant_authorization_code: c.allows_grant("authorization_code"),
            grant_refresh_token: c.allows_grant("refresh_token"),
            grant_client_credentials: c.allows_grant("client_credentials"),
            jwks: c.jwks.clone().unwrap_or_default(),
        }
    }

    fn from_form(f: &Params) -> Self {
        let text = |k: &str| f.get(k).unwrap_or_default().to_owned();
        Self {
            name: text("name"),
            redirect_uris: text("redirect_uris"),
            post_logout_redirect_uris: text("post_logout_redirect_uris"),
            backchannel_logout_uri: text("backchannel_logout_uri").trim().to_owned(),
            auth_method: text("auth_method"),
            id_token_alg: text("id_token_alg"),
            grant_authorization_code: f.get("grant_authorization_code").is_some(),
            grant_refresh_token: f.get("grant_refresh_token").is_some(),
            grant_client_credentials: f.get("grant_client_credentials").is_some(),
            jwks: text("jwks"),
        }
    }

    /// The registration request the form stands for.
    fn metadata(&self) -> Result<ClientMetadata, MetadataError> {
        let lines = |t: &str| -> Vec<String> {
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let grants = [
            (self.grant_authorization_code, "authorization_code"),
            (self.grant_refresh_token, "refresh_token"),
            (self.grant_client_credentials, "client_credentials"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, g)| (*g).to_owned())
        .collect();
        let jwks = match self.jwks.trim() {
            "" => None,
            text => Some(serde_json::from_str(text).map_err(|e| MetadataError {
                code: registration::ErrorCode::InvalidClientMetadata,
                field: "jwks",
                description: format!("jwks is not JSON: {e}"),
            })?),
        };
        Ok(ClientMetadata {
            client_name: Some(self.name.clone()),
            redirect_uris: lines(&self.redirect_uris),
            post_logout_redirect_uris: Some(lines(&self.post_logout_redirect_uris)),
            backchannel_logout_session_required: Some(!self.backchannel_logout_uri.is_empty()),
            backchannel_logout_uri: Some(self.backchannel_logout_uri.clone())
                .filter(|u| !u.is_empty()),
            token_endpoint_auth_method: Some(self.auth_method.clone()),
            id_token_signed_response_alg: Some(self.id_token_alg.clone()),
            grant_types: Some(grants),
            jwks,
            ..ClientMetadata::default()
        })
    }
}

/// The signed-in developer, or the answer for everybody else: a sign-in for a visitor, 403
/// for a user without the developer role.
async fn developer(st: &SharedState, jar: &CookieJar) -> Result<(Session, User), Response> {
    let session = st
        .session(jar)
        .await
        .map_err(|e| PageError::from(e).into_response())?
        .filter(|s| s.user_id.is_some());
    let Some(session) = session else {
        return Err((no_store(), Redirect::to(&format!("/login?next={PATH}"))).into_response());
    };
    let user = st
        .store
        .user_by_id(session.user_id.as_deref().unwrap_or_default())
        .await
        .map_err(|e| PageError::from(e).into_response())?
        .filter(|u| !u.disabled);
    match user {
        Some(u) if u.developer => Ok((session, u)),
        Some(_) => Err(PageError::Forbidden(
            "The developer console is for accounts with the developer role. Ask an \
             administrator (provider users add --developer)."
                .into(),
        )
        .into_response()),
        None => Err((no_store(), Redirect::to(&format!("/login?next={PATH}"))).into_response()),
    }
}

/// A form post from the developer, with its CSRF token checked.
async fn developer_form(
    st: &SharedState,
    jar: &CookieJar,
    body: &[u8],
) -> Result<(Session, User, Params), Response> {
    let form = Params::parse(body).map_err(|e| {
        PageError::BadRequest(format!("The form is malformed: {e}.")).into_response()
    })?;
    let (session, user) = developer(st, jar).await?;
    if !session.verify_csrf(form.get("csrf_token")) {
        return Err(PageError::csrf().into_response());
    }
    Ok((session, user, form))
}

/// One of the developer's own apps (another user's app is "not found", like a missing one).
async fn own_app(st: &SharedState, user: &User, client_id: &str) -> Result<Client, Response> {
    st.store
        .client(client_id)
        .await
        .map_err(|e| PageError::from(e).into_response())?
        .filter(|c| c.owner_id.as_deref() == Some(user.id.as_str()))
        .ok_or_else(|| PageError::NotFound("You have no app with that id.".into()).into_response())
}

fn internal(e: impl Into<anyhow::Error>) -> Response {
    PageError::Internal(e.into()).into_response()
}

async fn show_apps(
    State(st): State<SharedState>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Result<Response, Response> {
    let (_, user) = developer(&st, &jar).await?;
    let done = Params::parse(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let notice = match done.get("done") {
        Some("deleted") => Some("The app was deleted; its tokens no longer work."),
        _ => None,
    };
    let apps = st
        .store
        .clients_of_owner(&user.id)
        .await
        .map_err(|e| PageError::from(e).into_response())?;
    let page = AppsPage {
        username: user.username,
        apps,
        notice,
    };
    Ok((no_store(), page).into_response())
}

async fn show_new_app(State(st): State<SharedState>, jar: CookieJar) -> Result<Response, Response> {
    let (session, _) = developer(&st, &jar).await?;
    let page = AppPage {
        csrf_token: session.csrf_token().to_owned(),
        client: None,
        form: FormValues::new_app(),
        error: None,
        notice: None,
    };
    Ok((no_store(), page).into_response())
}

/// The form again, with what was typed and why it was refused (422).
fn refused(
    session: &Session,
    client: Option<Client>,
    form: FormValues,
    e: MetadataError,
) -> Response {
    let page = AppPage {
        csrf_token: session.csrf_token().to_owned(),
        client,
        form,
        error: Some(e),
        notice: None,
    };
    (StatusCode::UNPROCESSABLE_ENTITY, no_store(), page).into_response()
}

async fn create_app(
    State(st): State<SharedState>,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, Response> {
    let (session, user, form) = developer_form(&st, &jar, &body).await?;
    let values = FormValues::from_form(&form);
    let valid = match values.metadata().and_then(|m| m.validate()) {
        Ok(v) => v,
        Err(e) => return Ok(refused(&session, None, values, e)),
    };
    let who = Registrant {
        owner_id: Some(user.id.clone()),
        ..Registrant::default()
    };
    let done = registration::register(&st.store, valid, &who, st.clock.unix())
        .await
        .map_err(internal)?;
    tracing::info!(client_id = %done.client.client_id, "client registered in the developer console");
    let page = SecretPage {
        client: done.client,
        secret: done.client_secret,
        created: true,
    };
    Ok((StatusCode::CREATED, no_store(), page).into_response())
}

async fn show_app(
    State(st): State<SharedState>,
    jar: CookieJar,
    Path(client_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Response> {
    let (session, user) = developer(&st, &jar).await?;
    let client = own_app(&st, &user, &client_id).await?;
    let done = Params::parse(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let notice = match done.get("done") {
        Some("saved") => Some("Saved. The new settings apply from the next request."),
        _ => None,
    };
    let page = AppPage {
        csrf_token: session.csrf_token().to_owned(),
        form: FormValues::of(&client),
        client: Some(client),
        error: None,
        notice,
    };
    Ok((no_store(), page).into_response())
}

async fn update_app(
    State(st): State<SharedState>,
    jar: CookieJar,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let (session, user, form) = developer_form(&st, &jar, &body).await?;
    let client = own_app(&st, &user, &client_id).await?;
    let values = FormValues::from_form(&form);
    let valid = match values.metadata().and_then(|m| m.validate()) {
        Ok(v) => v,
        Err(e) => return Ok(refused(&session, Some(client), values, e)),
    };
    let done = registration::update(&st.store, client, valid, None, st.clock.unix())
        .await
        .map_err(internal)?;
    tracing::info!(client_id = %done.client.client_id, "client changed in the developer console");
    if done.client_secret.is_some() {
        // The app moved to a secret-based method: its first secret, shown once.
        let page = SecretPage {
            client: done.client,
            secret: done.client_secret,
            created: false,
        };
        return Ok((no_store(), page).into_response());
    }
    let to = format!("/developer/apps/{}?done=saved", done.client.client_id);
    Ok((no_store(), Redirect::to(&to)).into_response())
}

async fn rotate_secret(
    State(st): State<SharedState>,
    jar: CookieJar,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let (_, user, _) = developer_form(&st, &jar, &body).await?;
    let client = own_app(&st, &user, &client_id).await?;
    let secret = registration::rotate_secret(&st.store, &client, st.clock.unix())
        .await
        .map_err(|e| match e {
            registration::RegisterError::NoSecret(..) => {
                PageError::BadRequest("This app has no secret to rotate.".into()).into_response()
            }
            other => internal(other),
        })?;
    tracing::info!(client_id = %client.client_id, "client secret rotated in the developer console");
    let page = SecretPage {
        client,
        secret: Some(secret),
        created: false,
    };
    Ok((no_store(), page).into_response())
}

async fn delete_app(
    State(st): State<SharedState>,
    jar: CookieJar,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let (_, user, form) = developer_form(&st, &jar, &body).await?;
    let client = own_app(&st, &user, &client_id).await?;
    if form.get("confirm") != Some("yes") {
        return Err(PageError::BadRequest(
            "Tick the box to confirm that the app and its tokens should be deleted.".into(),
        )
        .into_response());
    }
    registration::remove(&st.store, &client, st.clock.unix())
        .await
        .map_err(|e| PageError::from(e).into_response())?;
    tracing::info!(client_id = %client.client_id, "client deleted in the developer console");
    Ok((no_store(), Redirect::to("/developer?done=deleted")).into_response())
}
