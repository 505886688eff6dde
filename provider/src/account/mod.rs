//! Pages for people: sign-in, consent, and the account home.

mod consent;
mod login;
pub mod password;

use crate::app::SharedState;
use axum::Router;
use axum::routing::get;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/", get(login::show_home))
        .route("/login", get(login::show_login).post(login::submit_login))
        .route(
            "/consent",
            get(consent::show_consent).post(consent::submit_consent),
        )
}
