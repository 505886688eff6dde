//! The developer console (`/developer`): a signed-in user with the developer role lists the
//! apps they registered, registers one through a form (validated by the same rules as the
//! registration endpoint, errors shown beside their field), edits its settings, rotates its
//! secret (shown once) and deletes it. Every form carries the session's CSRF token; every page
//! is plain HTML that works with the keyboard alone and without script.

use crate::context::SystemError;
use crate::paths;
use crate::protocol::error::PageError;
use crate::protocol::params::Params;
use crate::protocol::registration::{
    self, ClientMetadata, MetadataError, RegisterError, Registrant,
};
use crate::store::{Client, User};
use crate::types::{Alg, AuthMethod, GrantType, Level};
use crate::web::error::no_store;
use crate::web::extract::{Page, PostedForm, Query, SignedIn};
use crate::web::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{FromRequestParts, OptionalFromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use sessions::Session;

#[derive(Template, WebTemplate)]
#[template(path = "provider/developer.html")]
struct AppsPage {
    username: String,
    apps: Vec<Client>,
    notice: Option<&'static str>,
}

/// The form's values as typed (re-shown after a refusal).
#[derive(Clone, Debug, Default)]
struct FormValues {
    name: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    backchannel_logout_uri: String,
    frontchannel_logout_uri: String,
    /// `require_pushed_authorization_requests` (RFC 9126 §6).
    require_par: bool,
    /// `dpop_bound_access_tokens` (RFC 9449 §5.2).
    dpop_bound: bool,
    /// The form had the three fields above (`request_security`). One without them (a page
    /// served before the console had them, still open or from an older instance) keeps the
    /// app's stored values rather than clearing them.
    has_security_fields: bool,
    auth_method: String,
    id_token_alg: String,
    grants: Vec<GrantType>,
    jwks: String,
    /// The level of sign-in asked by default (`default_acr_values`), or "" for none.
    level: String,
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

/// What each grant type lets an app do, in words.
fn grant_label(g: GrantType) -> &'static str {
    match g {
        GrantType::AuthorizationCode => "Sign users in",
        GrantType::RefreshToken => "Stay signed in",
        GrantType::ClientCredentials => "Call APIs as itself",
        GrantType::TokenExchange => "Call other APIs on behalf of its callers (an API)",
        GrantType::DeviceCode => "Sign users in on a device without a browser (a TV, a CLI)",
    }
}

/// How an app with each method authenticates, in words.
fn auth_method_label(m: AuthMethod) -> &'static str {
    match m {
        AuthMethod::ClientSecretBasic => "Secret, HTTP Basic (web app on a server)",
        AuthMethod::ClientSecretPost => "Secret, in the form body",
        AuthMethod::None => "None: a public app (single-page or native, PKCE)",
        AuthMethod::PrivateKeyJwt => "Signed JWT (private_key_jwt, keys below)",
    }
}

impl AppPage {
    fn new(session: &Session, client: Option<Client>, form: FormValues) -> Self {
        Self {
            csrf_token: session.csrf_token().to_owned(),
            client,
            form,
            error: None,
            notice: None,
        }
    }

    /// The error message for `field`, if the refusal concerns it.
    fn error_for(&self, field: &str) -> Option<&str> {
        self.error
            .as_ref()
            .filter(|e| e.field == field)
            .map(|e| e.description.as_str())
    }

    fn grant_options(&self) -> Vec<(&'static str, &'static str, bool)> {
        let on = |g: &GrantType| self.form.grants.contains(g);
        GrantType::ALL
            .iter()
            .map(|g| (g.as_str(), grant_label(*g), on(g)))
            .collect()
    }

    fn auth_method_options(&self) -> Vec<(&'static str, &'static str, bool)> {
        let on = |m: &AuthMethod| self.form.auth_method == m.as_str();
        AuthMethod::ALL
            .iter()
            .map(|m| (m.as_str(), auth_method_label(*m), on(m)))
            .collect()
    }

    /// The levels an app may ask by default: none, or one of `acr_values_supported`.
    fn level_options(&self) -> Vec<(&'static str, &'static str, bool)> {
        let label = |l: Level| match l {
            Level::Pwd => "A password (urn:gatehouse:acr:pwd)",
            Level::Mfa => {
                "Two factors: a password and a code or a passkey, or a passkey alone (urn:gatehouse:acr:mfa)"
            }
        };
        let none = ("", "Whatever the request asks", self.form.level.is_empty());
        std::iter::once(none)
            .chain(
                Level::ALL
                    .iter()
                    .map(|l| (l.as_str(), label(*l), self.form.level == l.as_str())),
            )
            .collect()
    }

    fn alg_options(&self) -> Vec<(&'static str, bool)> {
        let on = |a: &Alg| self.form.id_token_alg == a.as_str();
        Alg::ALL.iter().map(|a| (a.as_str(), on(a))).collect()
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "provider/developer_secret.html")]
struct SecretPage {
    client: Client,
    secret: Option<String>,
    created: bool,
}

impl SecretPage {
    fn signs_jwts(&self) -> bool {
        self.client.auth_method == AuthMethod::PrivateKeyJwt
    }
}

impl FormValues {
    fn new_app() -> Self {
        Self {
            has_security_fields: true,
            auth_method: AuthMethod::default().as_str().into(),
            id_token_alg: Alg::RS256.as_str().into(),
            grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            ..Self::default()
        }
    }

    fn of(c: &Client) -> Self {
        Self {
            name: c.name.clone(),
            redirect_uris: c.redirect_uris.join("\n"),
            post_logout_redirect_uris: c.post_logout_redirect_uris.join("\n"),
            backchannel_logout_uri: c.backchannel_logout_uri.clone().unwrap_or_default(),
            frontchannel_logout_uri: c.frontchannel_logout_uri.clone().unwrap_or_default(),
            require_par: c.require_par,
            dpop_bound: c.dpop_bound,
            has_security_fields: true,
            auth_method: c.auth_method.as_str().into(),
            id_token_alg: c.id_token_alg.as_str().into(),
            grants: c.grant_types.clone(),
            jwks: c.jwks.clone().unwrap_or_default(),
            level: c
                .default_acr_values
                .first()
                .map(|l| l.as_str().to_owned())
                .unwrap_or_default(),
        }
    }

    fn from_form(f: &Params) -> Self {
        let text = |k: &str| f.get(k).unwrap_or_default().to_owned();
        Self {
            name: text("name"),
            redirect_uris: text("redirect_uris"),
            post_logout_redirect_uris: text("post_logout_redirect_uris"),
            backchannel_logout_uri: text("backchannel_logout_uri").trim().to_owned(),
            frontchannel_logout_uri: text("frontchannel_logout_uri").trim().to_owned(),
            require_par: f.get("require_par").is_some(),
            dpop_bound: f.get("dpop_bound").is_some(),
            has_security_fields: f.get("request_security").is_some(),
            auth_method: text("auth_method"),
            id_token_alg: text("id_token_alg"),
            grants: GrantType::ALL
                .iter()
                .copied()
                .filter(|g| f.get(&format!("grant_{g}")).is_some())
                .collect(),
            jwks: text("jwks"),
            level: text("level"),
        }
    }

    /// The metadata the form describes.
    fn metadata(&self) -> Result<ClientMetadata, MetadataError> {
        let lines = |t: &str| -> Vec<String> {
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let jwks =
            match self.jwks.trim() {
                "" => None,
                text => Some(serde_json::from_str(text).map_err(|e| {
                    MetadataError::metadata("jwks", format!("jwks is not JSON: {e}"))
                })?),
            };
        Ok(ClientMetadata {
            client_name: Some(self.name.clone()),
            redirect_uris: lines(&self.redirect_uris),
            post_logout_redirect_uris: Some(lines(&self.post_logout_redirect_uris)),
            backchannel_logout_session_required: Some(!self.backchannel_logout_uri.is_empty()),
            backchannel_logout_uri: Some(self.backchannel_logout_uri.clone())
                .filter(|u| !u.is_empty()),
            frontchannel_logout_session_required: Some(!self.frontchannel_logout_uri.is_empty()),
            frontchannel_logout_uri: Some(self.frontchannel_logout_uri.clone())
                .filter(|u| !u.is_empty()),
            require_pushed_authorization_requests: Some(self.require_par),
            dpop_bound_access_tokens: Some(self.dpop_bound),
            token_endpoint_auth_method: Some(self.auth_method.clone()),
            id_token_signed_response_alg: Some(self.id_token_alg.clone()),
            grant_types: Some(self.grants.iter().map(|g| g.as_str().to_owned()).collect()),
            jwks,
            default_acr_values: Some(
                Some(self.level.clone())
                    .filter(|l| !l.is_empty())
                    .into_iter()
                    .collect(),
            ),
            ..ClientMetadata::default()
        })
    }
}

/// A signed-in user with the developer role. A visitor (or a disabled account) is sent to sign
/// in; a user without the role gets 403.
pub struct Developer {
    session: Session,
    user: User,
}

impl Developer {
    async fn of(st: &AppState, me: Option<SignedIn>) -> Result<Self, PageError> {
        let sign_in = PageError::SignInFirst {
            next: paths::DEVELOPER,
        };
        let Some(me) = me else {
            return Err(sign_in);
        };
        let user = st.ctx.store.user_by_id(&me.user_id).await?;
        match user.filter(|u| !u.disabled) {
            Some(user) if user.developer => Ok(Self {
                session: me.session,
                user,
            }),
            Some(_) => Err(PageError::Forbidden(
                "The developer console is for accounts with the developer role. Ask an \
                 administrator (provider users add --developer)."
                    .into(),
            )),
            None => Err(sign_in),
        }
    }

    /// One of the developer's own apps.
    async fn app(&self, st: &AppState, client_id: &str) -> Result<Client, PageError> {
        registration::owned_by(&st.ctx.store, &self.user.id, client_id)
            .await?
            .ok_or_else(|| PageError::NotFound("You have no app with that id.".into()))
    }
}

impl FromRequestParts<AppState> for Developer {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, PageError> {
        let me =
            <SignedIn as OptionalFromRequestParts<AppState>>::from_request_parts(parts, st).await?;
        Self::of(st, me).await
    }
}

/// A form from the developer (its CSRF token checked), and the developer.
async fn developer_form(
    st: &AppState,
    posted: PostedForm,
) -> Result<(Developer, Params), PageError> {
    let signed_in = posted.signed_in()?;
    let (me, form) = signed_in.ok_or(PageError::SignInFirst {
        next: paths::DEVELOPER,
    })?;
    Ok((Developer::of(st, Some(me)).await?, form))
}

fn internal(e: RegisterError) -> PageError {
    match e {
        RegisterError::System(e) => e.into(),
        other => SystemError::Internal(other.into()).into(),
    }
}

pub async fn show_apps(
    State(st): State<AppState>,
    me: Developer,
    Query(query, _): Query<Page>,
) -> Result<Response, PageError> {
    let notice = match query.get("done") {
        Some("deleted") => Some("The app was deleted; its tokens no longer work."),
        _ => None,
    };
    let apps = st.ctx.store.clients_of_owner(&me.user.id).await?;
    let page = AppsPage {
        username: me.user.username,
        apps,
        notice,
    };
    Ok((no_store(), page).into_response())
}

pub async fn show_new_app(me: Developer) -> Response {
    (
        no_store(),
        AppPage::new(&me.session, None, FormValues::new_app()),
    )
        .into_response()
}

/// The form again, with what was typed and why it was refused (422).
fn refused(
    session: &Session,
    client: Option<Client>,
    form: FormValues,
    e: MetadataError,
) -> Response {
    let mut page = AppPage::new(session, client, form);
    page.error = Some(e);
    (StatusCode::UNPROCESSABLE_ENTITY, no_store(), page).into_response()
}

pub async fn create_app(
    State(st): State<AppState>,
    posted: PostedForm,
) -> Result<Response, PageError> {
    let (me, form) = developer_form(&st, posted).await?;
    let values = FormValues::from_form(&form);
    let valid = match values.metadata().and_then(|m| m.validate(&st.ctx.outbound)) {
        Ok(v) => v,
        Err(e) => return Ok(refused(&me.session, None, values, e)),
    };
    let limit = st.ctx.config.registration.apps_per_developer;
    let who = Registrant {
        owner_id: Some(me.user.id.clone()),
        app_limit: (limit > 0).then_some(limit),
        ..Registrant::default()
    };
    let now = st.ctx.clock.unix();
    let done = match registration::register(&st.ctx.store, valid, &who, now).await {
        Ok(done) => done,
        Err(e @ RegisterError::TooMany(_)) => {
            let e = MetadataError::metadata("client_name", e.to_string());
            return Ok(refused(&me.session, None, values, e));
        }
        Err(e) => return Err(internal(e)),
    };
    tracing::info!(client_id = %done.client.client_id, "client registered in the developer console");
    let page = SecretPage {
        client: done.client,
        secret: done.client_secret,
        created: true,
    };
    Ok((StatusCode::CREATED, no_store(), page).into_response())
}

pub async fn show_app(
    State(st): State<AppState>,
    me: Developer,
    Path(client_id): Path<String>,
    Query(query, _): Query<Page>,
) -> Result<Response, PageError> {
    let client = me.app(&st, &client_id).await?;
    let mut page = AppPage::new(&me.session, None, FormValues::of(&client));
    page.client = Some(client);
    page.notice = match query.get("done") {
        Some("saved") => Some("Saved. The new settings apply from the next request."),
        _ => None,
    };
    Ok((no_store(), page).into_response())
}

pub async fn update_app(
    State(st): State<AppState>,
    Path(client_id): Path<String>,
    posted: PostedForm,
) -> Result<Response, PageError> {
    let (me, form) = developer_form(&st, posted).await?;
    let client = me.app(&st, &client_id).await?;
    let mut values = FormValues::from_form(&form);
    if !values.has_security_fields {
        values.frontchannel_logout_uri = client.frontchannel_logout_uri.clone().unwrap_or_default();
        values.require_par = client.require_par;
        values.dpop_bound = client.dpop_bound;
    }
    let valid = match values.metadata().and_then(|m| m.validate(&st.ctx.outbound)) {
        Ok(v) => v,
        Err(e) => return Ok(refused(&me.session, Some(client), values, e)),
    };
    let now = st.ctx.clock.unix();
    let done = registration::update(&st.ctx.store, client, valid, None, now)
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
    let to = format!(
        "{}?done=saved",
        paths::for_client(paths::DEVELOPER_APP, &done.client.client_id)
    );
    Ok((no_store(), Redirect::to(&to)).into_response())
}

pub async fn rotate_secret(
    State(st): State<AppState>,
    Path(client_id): Path<String>,
    posted: PostedForm,
) -> Result<Response, PageError> {
    let (me, _) = developer_form(&st, posted).await?;
    let client = me.app(&st, &client_id).await?;
    crate::web::extract::require_fresh(&st, &me.session, paths::DEVELOPER)?;
    let now = st.ctx.clock.unix();
    let secret = registration::rotate_secret(&st.ctx.store, &client, now)
        .await
        .map_err(|e| match e {
            RegisterError::NoSecret(..) => {
                PageError::bad_request("This app has no secret to rotate.")
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

pub async fn delete_app(
    State(st): State<AppState>,
    Path(client_id): Path<String>,
    posted: PostedForm,
) -> Result<Response, PageError> {
    let (me, form) = developer_form(&st, posted).await?;
    let client = me.app(&st, &client_id).await?;
    crate::web::extract::require_fresh(&st, &me.session, paths::DEVELOPER)?;
    if form.get("confirm") != Some("yes") {
        return Err(PageError::bad_request(
            "Tick the box to confirm that the app and its tokens should be deleted.",
        ));
    }
    registration::remove(&st.ctx.store, &client, st.ctx.clock.unix()).await?;
    tracing::info!(client_id = %client.client_id, "client deleted in the developer console");
    let to = format!("{}?done=deleted", paths::DEVELOPER);
    Ok((no_store(), Redirect::to(&to)).into_response())
}
