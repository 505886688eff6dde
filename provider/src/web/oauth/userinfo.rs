//! `GET` and `POST /userinfo` (OIDC Core §5.3) with a Bearer token (RFC 6750): the rules are
//! `protocol::userinfo`.

use crate::context::Ctx;
use crate::protocol::error::BearerError;
use crate::protocol::params::Params;
use crate::protocol::userinfo::{one_token, userinfo};
use crate::web::error::no_store;
use crate::web::extract::{Bearer, is_form};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub async fn show_userinfo(
    State(ctx): State<Arc<Ctx>>,
    Bearer(token): Bearer,
) -> Result<Response, BearerError> {
    let claims = userinfo(&ctx, &one_token(token, None)?).await?;
    Ok((no_store(), Json(claims)).into_response())
}

/// POST may carry the token in a form body instead (RFC 6750 §2.2), never in both places.
pub async fn show_userinfo_post(
    State(ctx): State<Arc<Ctx>>,
    Bearer(token): Bearer,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, BearerError> {
    let form = if is_form(&headers) {
        let parsed = Params::parse(&body);
        Some(parsed.map_err(|_| BearerError::invalid_request("malformed form body"))?)
    } else {
        None
    };
    let claims = userinfo(&ctx, &one_token(token, form.as_ref())?).await?;
    Ok((no_store(), Json(claims)).into_response())
}
