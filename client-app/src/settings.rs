//! The Settings page (`GET /settings`) of an app configured with `settings_acr`: it needs a
//! sign-in at that level, as the ID token's `acr` says (OIDC Core §2). A person signed in
//! below it is sent to the provider with `acr_values` (OIDC Core §3.1.2.1); the provider keeps
//! their session there and asks only for the missing factor (step-up), and the sign-in comes
//! back here. `acr_values` is a voluntary request: a person whose account has no second
//! factor comes back at the lower level, and this page says how to set one up instead of
//! sending them round again.

use crate::AppState;
use crate::pages::{current, error_page, internal, no_store};
use crate::renewal::user_of;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use std::sync::Arc;

/// Where a sign-in for the Settings page returns: the page, told that the sign-in was just
/// made (so a level still short of the page's is explained, not asked again).
pub(crate) const AFTER_SIGN_IN: &str = "/settings?after=sign-in";

#[derive(Template, WebTemplate)]
#[template(path = "client-app/settings.html")]
struct SettingsPage {
    app_name: String,
    /// The level the page needs.
    needed: String,
    /// What the ID token says the sign-in reached (`acr`), and how (`amr`).
    reached: String,
    methods: String,
    /// Whether the sign-in reached the level (the settings are shown).
    allowed: bool,
    /// The provider's page where the person sets up a second factor.
    security_url: String,
}

pub(crate) async fn show_settings(
    State(st): State<Arc<AppState>>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(needed) = st.config.settings_acr.clone() else {
        let why = "This app has no settings page.";
        return error_page(&st, StatusCode::NOT_FOUND, "Not found", why);
    };
    let session = match current(&st, &jar).await {
        Ok(s) => s,
        Err(e) => return internal(&st, e),
    };
    let Some(user) = session.as_ref().and_then(user_of) else {
        return (no_store(), Redirect::to("/login?for=settings")).into_response();
    };
    let claim = |name: &str| user.id_token_claims.get(name).cloned();
    let reached = claim("acr")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let allowed = reached == needed;
    let just_signed_in = query.as_deref() == Some("after=sign-in");
    if !allowed && !just_signed_in {
        // Step-up: the provider asks only for what is missing, and sends the browser back.
        return (no_store(), Redirect::to("/login?for=settings")).into_response();
    }
    let methods = claim("amr")
        .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok())
        .unwrap_or_default()
        .join(", ");
    let page = SettingsPage {
        app_name: st.config.name.clone(),
        needed,
        reached,
        methods,
        allowed,
        security_url: format!("{}/account/security", st.issuer.trim_end_matches('/')),
    };
    (no_store(), page).into_response()
}
