//! Web plumbing shared by the provider's handlers: the friendly error page, the security
//! headers every response carries, and strict parsing of OAuth parameters.

mod params;
pub mod rate;
pub mod server;

pub use params::{Params, ParamsError};

use askama::Template;
use askama_web::WebTemplate;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_http::set_header::SetResponseHeaderLayer;

/// The HTML error page for a person (OAuth errors that cannot go back to a client, bad forms,
/// expired sessions).
#[derive(Template, WebTemplate)]
#[template(path = "provider/error.html")]
pub struct ErrorPage {
    pub title: &'static str,
    pub message: String,
}

/// An error on a page meant for a person.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The database or session store cannot be reached: 503, try again (never a hang).
    #[error("temporarily unavailable")]
    Unavailable,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl PageError {
    /// A form whose CSRF token is missing, stale or another session's: refused, nothing done.
    pub fn csrf() -> Self {
        Self::Forbidden(
            "This form could not be verified (its security token is missing or stale). \
             Reload the page and try again."
                .into(),
        )
    }
}

impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> Self {
        if infra::sql_unavailable(&e) {
            unreachable_store(&e);
            return Self::Unavailable;
        }
        Self::Internal(e.into())
    }
}

impl From<sessions::StoreError> for PageError {
    fn from(e: sessions::StoreError) -> Self {
        if e.is_unavailable() {
            unreachable_store(&e);
            return Self::Unavailable;
        }
        Self::Internal(e.into())
    }
}

/// Logs a store outage once per request (inside its span).
pub fn unreachable_store(e: &dyn std::fmt::Display) {
    tracing::warn!(error = %e, "store unreachable: answering 503");
}

/// The JSON answer of the protocol endpoints while a store is unreachable: 503 with
/// `temporarily_unavailable` (RFC 6749 §4.1.2.1's code) and `Retry-After`.
pub fn unavailable_json() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        no_store(),
        [(header::RETRY_AFTER, HeaderValue::from_static("1"))],
        axum::Json(serde_json::json!({
            "error": "temporarily_unavailable",
            "error_description": "the service is briefly unavailable; try again"
        })),
    )
        .into_response()
}

/// 429 for a machine client over its request rate (RFC 6585 §4), with `Retry-After`. OAuth
/// defines no error code for it; `temporarily_unavailable` is the one clients already retry.
pub fn rate_limited_json(wait: u64) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        no_store(),
        [(header::RETRY_AFTER, HeaderValue::from(wait))],
        axum::Json(serde_json::json!({
            "error": "temporarily_unavailable",
            "error_description": format!("too many requests; retry in {wait} seconds")
        })),
    )
        .into_response()
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            Self::BadRequest(m) => (
                StatusCode::BAD_REQUEST,
                "Something is wrong with this request",
                m,
            ),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, "This request was refused", m),
            Self::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m),
            Self::Unavailable => {
                let page = ErrorPage {
                    title: "Gatehouse is briefly unavailable",
                    message: "Please try again in a moment.".to_owned(),
                };
                let retry = [(header::RETRY_AFTER, HeaderValue::from_static("1"))];
                return (StatusCode::SERVICE_UNAVAILABLE, no_store(), retry, page).into_response();
            }
            Self::Internal(e) => {
                // Logged once, here, inside the request's span (which carries its id).
                tracing::error!(error = %format!("{e:#}"), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong on our side",
                    "Please try again in a moment.".to_owned(),
                )
            }
        };
        (status, no_store(), ErrorPage { title, message }).into_response()
    }
}

/// `Cache-Control: no-store` (RFC 6749 §5.1 for tokens; every session-dependent page too).
pub fn no_store() -> [(HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

/// Content-Security-Policy for every page: no script at all, styles from our own origin, no
/// framing. No `form-action`: Chromium applies it to the redirect that follows a form POST, and
/// our login and consent forms end in a redirect to the client.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
    frame-ancestors 'none'; base-uri 'none'";

/// The security headers every response carries (unless a handler set its own).
pub fn security_headers() -> (
    SetResponseHeaderLayer<HeaderValue>,
    SetResponseHeaderLayer<HeaderValue>,
    SetResponseHeaderLayer<HeaderValue>,
    SetResponseHeaderLayer<HeaderValue>,
) {
    (
        SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ),
    )
}

/// The one stylesheet (shared with the sample app).
pub const STYLESHEET: &str = include_str!("../../../templates/style.css");

pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
}

/// 414 for a request target longer than `max` bytes (RFC 9110 §15.5.15), before any handler
/// parses it.
pub async fn limit_uri(
    axum::extract::State(max): axum::extract::State<usize>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if len > max {
        let page = ErrorPage {
            title: "This address is too long",
            message: format!("Addresses here are at most {max} bytes long."),
        };
        return (StatusCode::URI_TOO_LONG, no_store(), page).into_response();
    }
    next.run(req).await
}
