//! Error responses, one type per surface, each in its spec's format.

use crate::web::{PageError, no_store};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use url::Url;

/// Authorization endpoint errors. An unknown client or an unregistered `redirect_uri` is shown
/// to the person and never redirected (RFC 6749 §4.1.2.1); everything else goes back to the
/// client's redirect URI with `error`, `error_description`, `state` and `iss` (RFC 9207).
#[derive(Debug)]
pub enum AuthorizeError {
    Page(PageError),
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        issuer: String,
        error: &'static str,
        description: String,
    },
}

impl From<PageError> for AuthorizeError {
    fn from(e: PageError) -> Self {
        Self::Page(e)
    }
}

impl From<sqlx::Error> for AuthorizeError {
    fn from(e: sqlx::Error) -> Self {
        Self::Page(e.into())
    }
}

impl From<sessions::StoreError> for AuthorizeError {
    fn from(e: sessions::StoreError) -> Self {
        Self::Page(e.into())
    }
}

impl From<anyhow::Error> for AuthorizeError {
    fn from(e: anyhow::Error) -> Self {
        Self::Page(e.into())
    }
}

/// A 303 to the client's redirect URI with `params` added to its query (keeping any query it
/// was registered with, OAuth 2.0 §3.1.2).
pub(super) fn redirect_to_client(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            (no_store(), Redirect::to(url.as_str())).into_response()
        }
        // Registered URIs are absolute; an unparsable one is our data error, never a redirect.
        Err(e) => PageError::Internal(anyhow::anyhow!("registered redirect_uri unparsable: {e}"))
            .into_response(),
    }
}

impl IntoResponse for AuthorizeError {
    fn into_response(self) -> Response {
        match self {
            Self::Page(p) => p.into_response(),
            Self::Redirect {
                redirect_uri,
                state,
                issuer,
                error,
                description,
            } => {
                let mut params = vec![
                    ("error", error),
                    ("error_description", description.as_str()),
                ];
                if let Some(s) = state.as_deref() {
                    params.push(("state", s));
                }
                params.push(("iss", issuer.as_str()));
                redirect_to_client(&redirect_uri, &params)
            }
        }
    }
}

/// Token endpoint errors (RFC 6749 §5.2), rendered as JSON.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// 401 with `WWW-Authenticate` (RFC 6749 §5.2).
    #[error("invalid_client")]
    InvalidClient,
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    #[error("unauthorized_client")]
    UnauthorizedClient,
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("invalid_scope: {0}")]
    InvalidScope(&'static str),
    /// A store is unreachable: 503 `temporarily_unavailable`.
    #[error("temporarily unavailable")]
    Unavailable,
    /// Too many requests from this client or address: 429 with `Retry-After` (seconds).
    #[error("rate limited")]
    RateLimited(u64),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for TokenError {
    fn from(e: sqlx::Error) -> Self {
        if infra::sql_unavailable(&e) {
            crate::web::unreachable_store(&e);
            return Self::Unavailable;
        }
        Self::Internal(e.into())
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let (status, error, description) = match &self {
            Self::InvalidRequest(d) => (StatusCode::BAD_REQUEST, "invalid_request", d.clone()),
            Self::InvalidClient => (
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed".to_owned(),
            ),
            Self::InvalidGrant(d) => (StatusCode::BAD_REQUEST, "invalid_grant", (*d).to_owned()),
            Self::UnauthorizedClient => (
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                "this client may not use this grant type".to_owned(),
            ),
            Self::InvalidScope(d) => (StatusCode::BAD_REQUEST, "invalid_scope", (*d).to_owned()),
            Self::UnsupportedGrantType => (
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type is not supported".to_owned(),
            ),
            Self::Unavailable => return crate::web::unavailable_json(),
            Self::RateLimited(wait) => return crate::web::rate_limited_json(*wait),
            Self::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error at the token endpoint");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    no_store(),
                    Json(serde_json::json!({"error": "server_error"})),
                )
                    .into_response();
            }
        };
        let body = Json(serde_json::json!({"error": error, "error_description": description}));
        let mut response = (status, no_store(), body).into_response();
        if matches!(self, Self::InvalidClient) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="gatehouse", charset="UTF-8""#),
            );
        }
        response
    }
}

/// Bearer-token errors at protected resources (RFC 6750 §3).
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    /// No credentials at all: a bare challenge, no error code (RFC 6750 §3.1).
    #[error("missing token")]
    Missing,
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    #[error("invalid_token: {0}")]
    InvalidToken(&'static str),
    #[error("insufficient_scope")]
    InsufficientScope,
    /// A store is unreachable: 503 `temporarily_unavailable`.
    #[error("temporarily unavailable")]
    Unavailable,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for BearerError {
    fn from(e: sqlx::Error) -> Self {
        if infra::sql_unavailable(&e) {
            crate::web::unreachable_store(&e);
            return Self::Unavailable;
        }
        Self::Internal(e.into())
    }
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let (status, challenge, body) = match &self {
            Self::Missing => (
                StatusCode::UNAUTHORIZED,
                r#"Bearer realm="gatehouse""#.to_owned(),
                serde_json::json!({"error": "invalid_request", "error_description": "a Bearer access token is required"}),
            ),
            Self::InvalidRequest(d) => (
                StatusCode::BAD_REQUEST,
                format!(
                    r#"Bearer realm="gatehouse", error="invalid_request", error_description="{d}""#
                ),
                serde_json::json!({"error": "invalid_request", "error_description": d}),
            ),
            Self::InvalidToken(d) => (
                StatusCode::UNAUTHORIZED,
                format!(
                    r#"Bearer realm="gatehouse", error="invalid_token", error_description="{d}""#
                ),
                serde_json::json!({"error": "invalid_token", "error_description": d}),
            ),
            Self::InsufficientScope => (
                StatusCode::FORBIDDEN,
                r#"Bearer realm="gatehouse", error="insufficient_scope", scope="openid""#
                    .to_owned(),
                serde_json::json!({"error": "insufficient_scope", "error_description": "the openid scope is required"}),
            ),
            Self::Unavailable => return crate::web::unavailable_json(),
            Self::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error at a protected resource");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    no_store(),
                    Json(serde_json::json!({"error": "server_error"})),
                )
                    .into_response();
            }
        };
        let mut response = (status, no_store(), Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        response
    }
}
