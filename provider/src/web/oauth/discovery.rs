//! `GET /.well-known/openid-configuration` (OIDC Discovery 1.0 §4) and `GET /jwks` (RFC 7517
//! §5).

use crate::context::Ctx;
use crate::protocol::discovery::ProviderMetadata;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use std::sync::Arc;

pub async fn show_configuration(State(ctx): State<Arc<Ctx>>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(ProviderMetadata::of(&ctx)),
    )
}

/// The JWK Set. Its max-age is under half the publish-ahead time, so a client that caches it
/// has every new key before any token is signed with it.
pub async fn show_jwks(State(ctx): State<Arc<Ctx>>) -> impl IntoResponse {
    let max_age = (ctx.config.keys.publish_ahead.as_secs() / 2).min(300);
    let cache = HeaderValue::from_str(&format!("public, max-age={max_age}"))
        .unwrap_or_else(|_| HeaderValue::from_static("no-cache"));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, cache),
        ],
        ctx.keys.current().jwks_json().to_owned(),
    )
}
