//! The stylesheet, the passkey script, readiness, and the answer for a path we do not serve.

use crate::context::Ctx;
use crate::protocol::error::PageError;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The one stylesheet (shared with the sample app).
pub const STYLESHEET: &str = include_str!("../../../../templates/style.css");

pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
}

/// The one script: passkey ceremonies (the pages that offer passkeys load it).
pub const PASSKEY_SCRIPT: &str = include_str!("../../../../templates/passkeys.js");

pub async fn passkey_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        PASSKEY_SCRIPT,
    )
}

/// `GET /readyz`: the database and the session store both answer, and the instance is not
/// stopping (once it is, 503 `draining`, so that load balancers move away while it still
/// serves: `shutdown.drain_delay`).
pub async fn readiness(State(ctx): State<Arc<Ctx>>) -> Response {
    use infra::health::{check, report};
    if ctx.is_draining() {
        return report(&[("instance", Err("draining: stopping".to_owned()))]);
    }
    let (database, sessions) = tokio::join!(check(ctx.store.ping()), check(ctx.sessions.ping()));
    report(&[("database", database), ("sessions", sessions)])
}

pub async fn not_found() -> PageError {
    PageError::NotFound("There is no page here.".into())
}
