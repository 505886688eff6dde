//! Dynamic Client Registration: `POST /register` (RFC 7591 §3) and the client configuration
//! endpoint `GET`/`PUT`/`DELETE /register/{client_id}` (RFC 7592 §2). The rules are
//! `protocol::registration::endpoint`; rates by address are counted before (layers, see
//! `web::router`).

use crate::context::Ctx;
use crate::protocol::error::RegistrationError;
use crate::protocol::registration::endpoint::{self, Body, Registration};
use crate::web::error::no_store;
use crate::web::extract::{Bearer, content_type_is};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The body as RFC 7591 §3.1 wants it: declared `application/json`.
fn body<'a>(headers: &HeaderMap, bytes: &'a [u8]) -> Body<'a> {
    if content_type_is(headers, "application/json") {
        Body::Json(bytes)
    } else {
        Body::NotJson
    }
}

fn answer(status: StatusCode, r: Registration) -> Response {
    (status, no_store(), Json(serde_json::Value::Object(r.0))).into_response()
}

/// The initial access token is read by the rules, which look at it only when registration is
/// not open.
pub async fn register_client(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, RegistrationError> {
    let token = Bearer::of(&headers).map(|b| b.0);
    let done = endpoint::register(&ctx, token, body(&headers, &bytes)).await?;
    Ok(answer(StatusCode::CREATED, done))
}

pub async fn read_client(
    State(ctx): State<Arc<Ctx>>,
    Path(client_id): Path<String>,
    Bearer(token): Bearer,
) -> Result<Response, RegistrationError> {
    let (client, token) = endpoint::managed(&ctx, token, &client_id).await?;
    Ok(answer(
        StatusCode::OK,
        endpoint::read(&ctx, &client, &token),
    ))
}

pub async fn update_client(
    State(ctx): State<Arc<Ctx>>,
    Path(client_id): Path<String>,
    Bearer(token): Bearer,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, RegistrationError> {
    let (client, token) = endpoint::managed(&ctx, token, &client_id).await?;
    let done = endpoint::update(&ctx, client, &token, body(&headers, &bytes)).await?;
    Ok(answer(StatusCode::OK, done))
}

/// 204: the client and everything issued to it are gone at once.
pub async fn delete_client(
    State(ctx): State<Arc<Ctx>>,
    Path(client_id): Path<String>,
    Bearer(token): Bearer,
) -> Result<Response, RegistrationError> {
    let (client, _) = endpoint::managed(&ctx, token, &client_id).await?;
    endpoint::delete(&ctx, &client).await?;
    Ok((StatusCode::NO_CONTENT, no_store()).into_response())
}
