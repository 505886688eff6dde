//! Each boundary's error rendered once, in its wire format: an HTML page for a person
//! ([`PageError`]), a redirect to the client ([`AuthorizeError`]), OAuth JSON ([`TokenError`],
//! [`RegistrationError`]) or a `WWW-Authenticate: Bearer` challenge ([`BearerError`]). What
//! fails beneath the rules ([`SystemError`]) is a 503 with `Retry-After` when a store is out of
//! reach, and otherwise an opaque 500 logged once (inside the request's span, which carries
//! its id).

use crate::context::SystemError;
use crate::paths;
use crate::protocol::dpop;
use crate::protocol::error::{
    AuthorizeError, BearerError, PageError, RedirectError, RegistrationError, TokenError,
};
use crate::types::{BearerErrorCode, Scope, TokenErrorCode};
use askama::Template;
use askama_web::WebTemplate;
use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use url::Url;

/// The HTML error page for a person (OAuth errors that cannot go back to a client, bad forms,
/// expired sessions).
#[derive(Template, WebTemplate)]
#[template(path = "provider/error.html")]
pub struct ErrorPage {
    pub title: &'static str,
    pub message: String,
}

/// `Cache-Control: no-store` (RFC 6749 §5.1 for tokens; every session-dependent page too).
pub fn no_store() -> [(HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

fn retry_after_a_second() -> [(HeaderName, HeaderValue); 1] {
    [(header::RETRY_AFTER, HeaderValue::from_static("1"))]
}

/// What a system error is, for the formats: logged here, once.
enum Fault {
    Unavailable,
    Internal,
}

fn fault(e: &SystemError) -> Fault {
    match e {
        SystemError::Unavailable(why) => {
            tracing::warn!(error = %why, "store unreachable: answering 503");
            Fault::Unavailable
        }
        SystemError::Internal(e) => {
            tracing::error!(error = %format!("{e:#}"), "internal error");
            Fault::Internal
        }
    }
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
            Self::SignInFirst { next } => {
                let to = format!("{}?next={next}", paths::LOGIN);
                return (no_store(), Redirect::to(&to)).into_response();
            }
            Self::SignInAgain { next } => {
                let to = format!("{}?next={next}&again=1", paths::LOGIN);
                return (no_store(), Redirect::to(&to)).into_response();
            }
            Self::TooManyRequests { retry_after } => {
                let page = ErrorPage {
                    title: "Too many requests",
                    message: format!(
                        "Too many new visits from your network. Wait {retry_after} seconds \
                         and try again."
                    ),
                };
                let wait = [(header::RETRY_AFTER, retry_after.to_string())];
                return (StatusCode::TOO_MANY_REQUESTS, no_store(), wait, page).into_response();
            }
            Self::System(e) => match fault(&e) {
                Fault::Unavailable => {
                    let page = ErrorPage {
                        title: "Gatehouse is briefly unavailable",
                        message: "Please try again in a moment.".to_owned(),
                    };
                    let status = StatusCode::SERVICE_UNAVAILABLE;
                    return (status, no_store(), retry_after_a_second(), page).into_response();
                }
                Fault::Internal => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong on our side",
                    "Please try again in a moment.".to_owned(),
                ),
            },
        };
        (status, no_store(), ErrorPage { title, message }).into_response()
    }
}

/// A 303 to the client's redirect URI with `params` added to its query (keeping any query it
/// was registered with, RFC 6749 §3.1.2).
pub fn redirect_to_client(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            (no_store(), Redirect::to(url.as_str())).into_response()
        }
        // Registered URIs are absolute; an unparsable one is our data error, never a redirect.
        Err(e) => {
            let bug = anyhow::anyhow!("registered redirect_uri unparsable: {e}");
            PageError::System(SystemError::Internal(bug)).into_response()
        }
    }
}

impl IntoResponse for RedirectError {
    fn into_response(self) -> Response {
        let mut params = vec![
            ("error", self.code.as_str()),
            ("error_description", self.description.as_str()),
        ];
        if let Some(s) = self.state.as_deref() {
            params.push(("state", s));
        }
        params.push(("iss", self.issuer.as_str()));
        redirect_to_client(&self.redirect_uri, &params)
    }
}

impl IntoResponse for AuthorizeError {
    fn into_response(self) -> Response {
        match self {
            Self::Page(p) => p.into_response(),
            Self::Redirect(r) => r.into_response(),
        }
    }
}

/// The JSON answer of the protocol endpoints while a store is unreachable: 503 with
/// `temporarily_unavailable` (RFC 6749 §4.1.2.1's code) and `Retry-After`.
fn unavailable_json() -> Response {
    let body = Json(serde_json::json!({
        "error": "temporarily_unavailable",
        "error_description": "the service is briefly unavailable; try again"
    }));
    let status = StatusCode::SERVICE_UNAVAILABLE;
    (status, no_store(), retry_after_a_second(), body).into_response()
}

/// 429 for a machine client over its request rate (RFC 6585 §4), with `Retry-After`. OAuth
/// defines no error code for it; `temporarily_unavailable` is the one clients already retry.
pub fn rate_limited_json(wait: u64) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        no_store(),
        [(header::RETRY_AFTER, HeaderValue::from(wait))],
        Json(serde_json::json!({
            "error": "temporarily_unavailable",
            "error_description": format!("too many requests; retry in {wait} seconds")
        })),
    )
        .into_response()
}

/// The JSON answer for a system error: 503 or an opaque `server_error`.
fn system_json(e: &SystemError) -> Response {
    match fault(e) {
        Fault::Unavailable => unavailable_json(),
        Fault::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            no_store(),
            Json(serde_json::json!({"error": "server_error"})),
        )
            .into_response(),
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let (code, description) = match self {
            Self::OAuth { code, description } => (code, description),
            Self::UseDpopNonce(nonce) => {
                let body = serde_json::json!({"error": TokenErrorCode::UseDpopNonce.as_str(),
                    "error_description": "the DPoP proof must carry the nonce of the DPoP-Nonce header"});
                let mut response =
                    (StatusCode::BAD_REQUEST, no_store(), Json(body)).into_response();
                if let Ok(value) = HeaderValue::from_str(&nonce) {
                    response.headers_mut().insert("dpop-nonce", value);
                }
                return response;
            }
            Self::Authorization { code, description } => {
                let body =
                    serde_json::json!({"error": code.as_str(), "error_description": description});
                return (StatusCode::BAD_REQUEST, no_store(), Json(body)).into_response();
            }
            Self::RateLimited(wait) => return rate_limited_json(wait),
            Self::System(e) => return system_json(&e),
        };
        let status = match code {
            TokenErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        };
        let body =
            Json(serde_json::json!({"error": code.as_str(), "error_description": description}));
        let mut response = (status, no_store(), body).into_response();
        if code == TokenErrorCode::InvalidClient {
            // RFC 6749 §5.2: a 401 names the scheme the client may retry with.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="gatehouse", charset="UTF-8""#),
            );
        }
        response
    }
}

/// RFC 9449 §7.1: the DPoP scheme's challenge, with the algorithms a proof may use.
fn dpop_scheme() -> String {
    let algs: Vec<&str> = dpop::ALGS.iter().map(|a| a.as_str()).collect();
    format!(r#"DPoP algs="{}""#, algs.join(" "))
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        // A request without a token is told both schemes it may use (RFC 9449 §7.1: one
        // challenge each).
        let offer_dpop = matches!(self, Self::MissingAnyScheme);
        let under_dpop = matches!(self, Self::UnderDpop { .. });
        let (status, challenge, body) = match self {
            Self::Missing => (
                StatusCode::UNAUTHORIZED,
                r#"Bearer realm="gatehouse""#.to_owned(),
                serde_json::json!({"error": "invalid_request", "error_description": "a Bearer access token is required"}),
            ),
            Self::MissingAnyScheme => (
                StatusCode::UNAUTHORIZED,
                r#"Bearer realm="gatehouse""#.to_owned(),
                serde_json::json!({"error": "invalid_request", "error_description": "an access token is required"}),
            ),
            Self::OAuth { code, description } | Self::UnderDpop { code, description } => {
                let status = match code {
                    BearerErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
                    BearerErrorCode::InvalidToken | BearerErrorCode::InvalidDpopProof => {
                        StatusCode::UNAUTHORIZED
                    }
                    BearerErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
                };
                // RFC 6750 §3: the code in the challenge; insufficient_scope names the scope
                // needed instead of a description.
                let detail = match code {
                    BearerErrorCode::InsufficientScope => format!(r#"scope="{}""#, Scope::OpenId),
                    _ => format!(r#"error_description="{description}""#),
                };
                // RFC 9449 §7.1: a proof's refusal is a DPoP challenge, with the algorithms.
                let scheme = match code {
                    _ if under_dpop => dpop_scheme(),
                    BearerErrorCode::InvalidDpopProof => dpop_scheme(),
                    _ => r#"Bearer realm="gatehouse""#.to_owned(),
                };
                (
                    status,
                    format!(r#"{scheme}, error="{code}", {detail}"#),
                    serde_json::json!({"error": code.as_str(), "error_description": description}),
                )
            }
            Self::NeedsDpop(description) => (
                StatusCode::UNAUTHORIZED,
                format!(
                    r#"{}, error="invalid_token", error_description="{description}""#,
                    dpop_scheme()
                ),
                serde_json::json!({"error": "invalid_token", "error_description": description}),
            ),
            Self::System(e) => return system_json(&e),
        };
        let mut response = (status, no_store(), Json(body)).into_response();
        let mut challenges = vec![challenge];
        if offer_dpop {
            challenges.push(dpop_scheme());
        }
        for challenge in challenges {
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                response.headers_mut().append(header::WWW_AUTHENTICATE, v);
            }
        }
        response
    }
}

impl IntoResponse for RegistrationError {
    fn into_response(self) -> Response {
        let (code, description) = match self {
            Self::Bearer(e) => return e.into_response(),
            Self::RateLimited(wait) => return rate_limited_json(wait),
            Self::System(e) => return system_json(&e),
            Self::Metadata(m) => (m.code, m.description),
            Self::InvalidRequest(d) => (crate::types::RegistrationErrorCode::InvalidRequest, d),
        };
        (
            StatusCode::BAD_REQUEST,
            no_store(),
            Json(serde_json::json!({"error": code.as_str(), "error_description": description})),
        )
            .into_response()
    }
}
