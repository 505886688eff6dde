//! The consent page (`GET`/`POST /consent`): which app asks for which scopes. The rules are
//! `protocol::consent`.

use crate::protocol::consent::{self, Decision, EXPIRED};
use crate::protocol::error::{AuthorizeError, PageError};
use crate::types::Scope;
use crate::web::error::no_store;
use crate::web::extract::{Page, PostedForm, Query, SignedIn};
use crate::web::oauth::authorize::code_redirect;
use crate::web::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

#[derive(Template, WebTemplate)]
#[template(path = "provider/consent.html")]
struct ConsentPage {
    csrf_token: String,
    request: String,
    client_name: String,
    username: String,
    scopes: Vec<String>,
}

/// What granting `scope` lets the app do, in words.
pub(super) fn describe(scope: Scope) -> &'static str {
    match scope {
        Scope::OpenId => "Know who you are (your account identifier)",
        Scope::Profile => "See your name and username",
        Scope::Email => "See your email address",
        Scope::OfflineAccess => "Keep access while you are signed out (offline access)",
    }
}

/// What holding `scope` at the API `name` lets an app do, in words.
pub(super) fn describe_api(name: &str, scope: &str) -> String {
    format!("Use {name} with the permission “{scope}”")
}

/// Every line of the page's list: the OpenID scopes in words, then each scope asked at an API.
fn described(asked: &consent::ConsentRequest) -> Vec<String> {
    let oidc = asked.scopes.iter().map(|s| describe(s).to_owned());
    let api = asked
        .api
        .iter()
        .flat_map(|(name, scopes)| scopes.iter().map(|s| describe_api(name, s)));
    oidc.chain(api).collect()
}

fn expired() -> PageError {
    PageError::bad_request(EXPIRED)
}

pub async fn show_consent(
    State(st): State<AppState>,
    me: Option<SignedIn>,
    Query(query, _): Query<Page>,
) -> Result<Response, PageError> {
    let me = me.ok_or_else(expired)?;
    let request = query.get("request").unwrap_or("");
    let asked = consent::show(&st.ctx, &me.session, request).await?;
    let page = ConsentPage {
        csrf_token: me.session.csrf_token().to_owned(),
        request: request.to_owned(),
        scopes: described(&asked),
        client_name: asked.client_name,
        username: asked.username,
    };
    Ok((no_store(), page).into_response())
}

/// Allowed: on to the client with a code. Denied: on to the client with `access_denied`.
pub async fn submit_consent(
    State(st): State<AppState>,
    posted: PostedForm,
) -> Result<Response, AuthorizeError> {
    let (me, form) = posted.signed_in()?.ok_or_else(expired)?;
    let decision = Decision::parse(form.get("decision"))?;
    let request = form.get("request").unwrap_or("");
    let code = consent::decide(&st.ctx, &me.session, request, decision).await?;
    Ok(code_redirect(&code))
}
