//! Pages for people: sign-in, consent, the account home and "your sessions".

mod consent;
mod login;
pub mod password;
mod sessions;
pub mod throttle;

use crate::app::SharedState;
use axum::Router;
use axum::routing::{get, post};

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/", get(login::show_home))
        .route("/login", get(login::show_login).post(login::submit_login))
        .route(
            "/consent",
            get(consent::show_consent).post(consent::submit_consent),
        )
        .route(sessions::PATH, get(sessions::show_sessions))
        .route("/account/sessions/revoke", post(sessions::revoke_session))
        .route(
            "/account/sessions/revoke-all",
            post(sessions::revoke_all_sessions),
        )
}
