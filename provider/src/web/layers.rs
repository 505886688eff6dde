//! The layers every request passes through: security headers, the URI length limit, the audit
//! context, and the per-address request budget of the machine-facing endpoints.

use super::error::{ErrorPage, no_store, rate_limited_json};
use super::extract::ClientMeta;
use super::state::AppState;
use crate::audit;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use infra::client_addr::ClientAddr;
use std::net::SocketAddr;
use tower_http::set_header::SetResponseHeaderLayer;

/// Content-Security-Policy for every page: scripts and styles from our own origin only (the
/// one script runs passkey ceremonies; no inline script, no `eval`), requests from script to
/// our own origin only, no framing. No `form-action`: Chromium applies it to the redirect that
/// follows a form POST, and our login and consent forms end in a redirect to the client.
pub const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
    style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";

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

/// `Strict-Transport-Security` (RFC 6797) for an https issuer: two years, this host only (the
/// issuer's parent domain may serve other things over plain http). None for a plain-http
/// issuer, which is loopback only (see `Config::validate`).
pub fn hsts(issuer: &url::Url) -> Option<HeaderValue> {
    (issuer.scheme() == "https").then(|| HeaderValue::from_static("max-age=63072000"))
}

/// 414 for a request target longer than `max` bytes (RFC 9110 §15.5.15), before any handler
/// parses it.
pub async fn limit_uri(State(max): State<usize>, req: Request, next: Next) -> Response {
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

/// Runs the rest of the request with its id (set by `SetRequestIdLayer`, which runs first)
/// and client address in reach of the audit trail.
pub async fn audit_context(req: Request, next: Next) -> Response {
    // A request id from upstream (a proxy's) is kept if it looks like one.
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned);
    let addr = req
        .extensions()
        .get::<ClientAddr>()
        .map(|c| c.0)
        .or_else(|| {
            req.extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        })
        .map(|ip| ip.to_string());
    let context = audit::RequestContext { request_id, addr };
    audit::within(context, next.run(req)).await
}

/// A budget of requests per minute from one client address.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    /// `limits.rate_per_address`: the token, revocation, introspection and registration
    /// endpoints, counted before the client authenticates.
    Machine,
    /// `limits.registration_rate_per_address`: registration (RFC 7591 and 7592) besides.
    Registration,
    /// `limits.rate_per_address`, a count of its own: the passkey sign-in endpoints, which
    /// anyone with a sign-in page may call and each of which writes (a ceremony, an audit
    /// event).
    Passkey,
}

/// Refuses (429, `Retry-After`) a request over its address's budget, before anything else is
/// done for it.
pub async fn limit_by_address(
    State((st, budget)): State<(AppState, Budget)>,
    meta: ClientMeta,
    req: Request,
    next: Next,
) -> Response {
    let limits = &st.ctx.config.limits;
    let (what, limit) = match budget {
        Budget::Machine => ("addr", limits.rate_per_address),
        Budget::Registration => ("register", limits.registration_rate_per_address),
        Budget::Passkey => ("passkey", limits.rate_per_address),
    };
    if let Some(addr) = &meta.key
        && let Err(wait) = st.address_rate(&format!("{what}:{addr}"), limit)
    {
        return rate_limited_json(wait);
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsts_only_over_https() {
        let https = url::Url::parse("https://idp.example.com").unwrap();
        let http = url::Url::parse("http://idp.localhost:4000").unwrap();
        assert_eq!(
            hsts(&https).as_ref().map(|v| v.to_str().unwrap()),
            Some("max-age=63072000")
        );
        assert_eq!(hsts(&http), None);
    }
}
