//! `GET` and `POST /userinfo` (OIDC Core §5.3) with a Bearer token (RFC 6750), or a
//! DPoP-bound one with its proof (RFC 9449 §7.1): the rules are `protocol::userinfo`.

use crate::context::Ctx;
use crate::protocol::error::BearerError;
use crate::protocol::params::Params;
use crate::protocol::userinfo::{Presented, one_token, scheme_and_token, userinfo_presented};
use crate::web::error::no_store;
use crate::web::extract::{dpop_headers, is_form};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub async fn show_userinfo(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
) -> Result<Response, BearerError> {
    answer(&ctx, &headers, "GET", None).await
}

/// POST may carry the token in a form body instead (RFC 6750 §2.2), never in both places.
pub async fn show_userinfo_post(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, BearerError> {
    let form = if is_form(&headers) {
        let parsed = Params::parse(&body);
        Some(parsed.map_err(|_| BearerError::invalid_request("malformed form body"))?)
    } else {
        None
    };
    answer(&ctx, &headers, "POST", form.as_ref()).await
}

/// The claims for the token of the `Authorization` header (either scheme) or of the form.
async fn answer(
    ctx: &Ctx,
    headers: &HeaderMap,
    method: &str,
    form: Option<&Params>,
) -> Result<Response, BearerError> {
    let (dpop, in_header) = match headers.get(header::AUTHORIZATION) {
        None => (false, None),
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| BearerError::invalid_request("malformed Authorization header"))?;
            let (dpop, token) = scheme_and_token(v)?;
            (dpop, Some(token))
        }
    };
    // Refused under the scheme the token came with (RFC 9449 §7.1).
    let scheme = |e: BearerError| if dpop { e.under_dpop() } else { e };
    let token = one_token(in_header, form).map_err(scheme)?;
    let proofs = dpop_headers(headers).map_err(|why| scheme(BearerError::invalid_request(why)))?;
    let how = if dpop {
        Presented::Dpop {
            proofs: &proofs,
            method,
        }
    } else {
        Presented::Bearer
    };
    let claims = userinfo_presented(ctx, &token, &how)
        .await
        .map_err(scheme)?;
    Ok((no_store(), Json(claims)).into_response())
}
