//! The axum side: a layer that requires a valid access token with given scopes on a route
//! ([`require`]), the verified token for the handler ([`Caller`]), and RFC 6750 §3 answers
//! for everything refused.
//!
//! A tower layer of our own rather than `axum::middleware::from_fn`, so that the type a route
//! is given is nameable and carries its scopes.

use crate::verify::{AccessToken, Verifier, VerifyError};
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// A route's requirement: a token for this API carrying every one of `scopes`.
#[derive(Clone)]
pub struct RequireScopes {
    verifier: Arc<Verifier>,
    scopes: Arc<[String]>,
}

/// The layer for a route (`.route_layer(require(&verifier, &["notes:read"]))`).
pub fn require(verifier: &Arc<Verifier>, scopes: &[&str]) -> RequireScopes {
    RequireScopes {
        verifier: Arc::clone(verifier),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// A request refused, answered as RFC 6750 §3 says.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// No token (§3.1: no error code): a bare challenge for each scheme the API takes, Bearer
    /// and DPoP (RFC 9449 §7.1).
    NoToken,
    /// No bearer token where only that scheme is taken ([`bearer`]): a bare Bearer challenge.
    NoBearerToken,
    /// More than one `Authorization` header, or a bearer token that is not token68 (§2.1).
    InvalidRequest(&'static str),
    /// §3.1 `invalid_token`, with what was wrong.
    InvalidToken(String),
    /// §3.1 `insufficient_scope`, with the scopes the route needs.
    InsufficientScope(String),
    /// RFC 9449 §7.1 `invalid_dpop_proof`: a bound token's proof is missing or wrong.
    InvalidDpopProof(&'static str),
    /// `invalid_token` for a bound token presented as a bearer token: a `DPoP` challenge, so
    /// that the client learns which scheme it needs (RFC 9449 §7.1).
    NeedsDpop,
    /// Whether the token was revoked cannot be known now (the revocation feed is out of
    /// reach): 503, to be tried again.
    Unavailable,
    /// A refusal of a request that presented its token under the `DPoP` scheme: answered
    /// under a `DPoP` challenge, the scheme the client used (RFC 9449 §7.1).
    UnderDpop(Box<Refusal>),
}

impl Refusal {
    /// This refusal, for a request that presented its token under the `DPoP` scheme.
    fn under_dpop(self) -> Self {
        match self {
            Self::InvalidRequest(_) | Self::InvalidToken(_) | Self::InsufficientScope(_) => {
                Self::UnderDpop(Box::new(self))
            }
            other => other,
        }
    }
}

impl RequireScopes {
    /// Checks a request (its method, path and headers) against this route's requirement: a
    /// valid token with the route's scopes; a bound one (RFC 9449) under the `DPoP` scheme with
    /// its proof, an unbound one as a bearer token.
    pub async fn check(
        &self,
        method: &http::Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<AccessToken, Refusal> {
        let under = |why: Refusal, dpop: bool| if dpop { why.under_dpop() } else { why };
        let (dpop, token) = presented(headers).map_err(|why| under(why, dpop_scheme(headers)))?;
        self.check_presented(method, path, headers, (dpop, token))
            .await
            .map_err(|why| under(why, dpop))
    }

    /// [`RequireScopes::check`] for the token presented (and whether under `DPoP`).
    async fn check_presented(
        &self,
        method: &http::Method,
        path: &str,
        headers: &HeaderMap,
        (dpop, token): (bool, &str),
    ) -> Result<AccessToken, Refusal> {
        let verified = self.verifier.verify(token).await.map_err(|e| match e {
            VerifyError::RevocationsUnknown => Refusal::Unavailable,
            e => Refusal::InvalidToken(e.to_string()),
        })?;
        match (&verified.dpop_jkt, dpop) {
            (None, false) => {}
            (Some(_), false) => return Err(Refusal::NeedsDpop),
            (None, true) => {
                return Err(Refusal::InvalidToken(
                    "the token is not bound to a DPoP key: present it as a Bearer token".into(),
                ));
            }
            (Some(jkt), true) => {
                let proofs = infra::dpop::headers(headers).map_err(Refusal::InvalidDpopProof)?;
                self.verifier
                    .check_proof(&proofs, method.as_str(), path, (token, jkt))
                    .map_err(|e| match e {
                        crate::dpop::NotFresh::Refused(why) => Refusal::InvalidDpopProof(why),
                        crate::dpop::NotFresh::Busy => Refusal::Unavailable,
                    })?;
            }
        }
        if self.scopes.iter().all(|s| verified.has_scope(s)) {
            Ok(verified)
        } else {
            Err(Refusal::InsufficientScope(self.scopes.join(" ")))
        }
    }

    fn refuse(&self, why: Refusal) -> Response {
        refusal_response(&self.verifier.config().audience, why)
    }
}

/// Whether the (first) `Authorization` header names the `DPoP` scheme, well-formed or not.
fn dpop_scheme(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(' ').next())
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("dpop"))
}

/// The bearer token of the `Authorization` header ([`presented`] under the `Bearer` scheme),
/// for a route that takes no other: a token under the `DPoP` scheme is `invalid_token`, and
/// none is answered with a Bearer challenge alone.
pub fn bearer(headers: &HeaderMap) -> Result<&str, Refusal> {
    match presented(headers) {
        Ok((false, token)) => Ok(token),
        Ok((true, _)) => Err(Refusal::InvalidToken(
            "this route takes a Bearer token, not the DPoP scheme".into(),
        )),
        Err(Refusal::NoToken) => Err(Refusal::NoBearerToken),
        Err(other) => Err(other),
    }
}

/// The access token of the `Authorization` header, and whether it came under the `DPoP`
/// scheme (RFC 9449 §7.1) rather than `Bearer` (RFC 6750 §2.1; schemes are case-insensitive,
/// RFC 9110 §11.1). Tokens in the query or body are not accepted (§2.2 and §2.3 are optional,
/// and RFC 9700 §4.3.2 advises against the query).
pub fn presented(headers: &HeaderMap) -> Result<(bool, &str), Refusal> {
    let mut all = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = all.next() else {
        return Err(Refusal::NoToken);
    };
    if all.next().is_some() {
        return Err(Refusal::InvalidRequest(
            "more than one Authorization header",
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| Refusal::InvalidRequest("malformed Authorization header"))?;
    let Some((scheme, token)) = value.split_once(' ') else {
        return Err(Refusal::NoToken);
    };
    let dpop = scheme.eq_ignore_ascii_case("dpop");
    if !dpop && !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refusal::NoToken);
    }
    let token = token.trim_start_matches(' ');
    let token68 = !token.is_empty()
        && token
            .trim_end_matches('=')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    if !token68 {
        return Err(Refusal::InvalidRequest("the access token is malformed"));
    }
    Ok((dpop, token))
}

/// Only the characters RFC 6750 §3 allows in a quoted attribute.
fn quotable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if (' '..='~').contains(&c) => c,
            _ => '?',
        })
        .collect()
}

/// The answer to a refused request: status, `WWW-Authenticate` and a JSON body.
pub fn refusal_response(realm: &str, why: Refusal) -> Response {
    let (why, under_dpop) = match why {
        Refusal::UnderDpop(inner) => (*inner, true),
        other => (other, false),
    };
    let bearer = format!("Bearer realm=\"{}\"", quotable(realm));
    let dpop = format!("DPoP algs=\"{}\"", infra::dpop::ALGS.join(" "));
    let error = |code: &str, what: &str| {
        format!("error=\"{code}\", error_description=\"{}\"", quotable(what))
    };
    // No token: a bare challenge for each scheme the API accepts (RFC 9449 §7.1).
    let offer_dpop = matches!(why, Refusal::NoToken);
    // The status, whether the challenge is the DPoP scheme's, its error attributes, the body.
    let (status, in_dpop, attributes, body) = match why {
        Refusal::Unavailable => {
            let body = serde_json::json!({"error": "temporarily_unavailable", "error_description": "revocations cannot be checked now"});
            let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
        // Nested (never built so): answered as the innermost.
        Refusal::UnderDpop(inner) => return refusal_response(realm, Refusal::UnderDpop(inner)),
        Refusal::NoToken | Refusal::NoBearerToken => (
            StatusCode::UNAUTHORIZED,
            false,
            None,
            serde_json::json!({"error": "unauthorized", "error_description": "an access token is required"}),
        ),
        Refusal::InvalidRequest(what) => (
            StatusCode::BAD_REQUEST,
            under_dpop,
            Some(error("invalid_request", what)),
            serde_json::json!({"error": "invalid_request", "error_description": what}),
        ),
        Refusal::InvalidToken(what) => (
            StatusCode::UNAUTHORIZED,
            under_dpop,
            Some(error("invalid_token", &what)),
            serde_json::json!({"error": "invalid_token", "error_description": what}),
        ),
        Refusal::NeedsDpop => {
            let what = "the token is bound to a DPoP key: present it under the DPoP scheme, \
                        with a proof";
            (
                StatusCode::UNAUTHORIZED,
                true,
                Some(error("invalid_token", what)),
                serde_json::json!({"error": "invalid_token", "error_description": what}),
            )
        }
        Refusal::InvalidDpopProof(what) => (
            StatusCode::UNAUTHORIZED,
            true,
            Some(error("invalid_dpop_proof", what)),
            serde_json::json!({"error": "invalid_dpop_proof", "error_description": what}),
        ),
        Refusal::InsufficientScope(scopes) => (
            StatusCode::FORBIDDEN,
            under_dpop,
            Some(format!(
                "error=\"insufficient_scope\", scope=\"{}\"",
                quotable(&scopes)
            )),
            serde_json::json!({"error": "insufficient_scope", "scope": scopes}),
        ),
    };
    let scheme = if in_dpop { &dpop } else { &bearer };
    let mut challenges = vec![match attributes {
        Some(a) => format!("{scheme}, {a}"),
        None => scheme.clone(),
    }];
    if offer_dpop {
        challenges.push(dpop);
    }
    let mut response = (status, axum::Json(body)).into_response();
    for challenge in challenges {
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            response.headers_mut().append(header::WWW_AUTHENTICATE, v);
        }
    }
    response
}

impl<S> tower::Layer<S> for RequireScopes {
    type Service = Protected<S>;

    fn layer(&self, inner: S) -> Protected<S> {
        Protected {
            inner,
            rule: self.clone(),
        }
    }
}

/// A route behind [`RequireScopes`].
#[derive(Clone)]
pub struct Protected<S> {
    inner: S,
    rule: RequireScopes,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> tower::Service<Request<Body>> for Protected<S>
where
    S: tower::Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let rule = self.rule.clone();
        // The service that was polled ready serves this request; a fresh clone stays behind.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        Box::pin(async move {
            // The path the client sent (a proof names it), not what a nesting router left.
            let path = req
                .extensions()
                .get::<axum::extract::OriginalUri>()
                .map_or_else(|| req.uri().path().to_owned(), |o| o.0.path().to_owned());
            match rule.check(req.method(), &path, req.headers()).await {
                Ok(token) => {
                    req.extensions_mut().insert(token);
                    inner.call(req).await
                }
                Err(why) => Ok(rule.refuse(why)),
            }
        })
    }
}

/// The verified token of a request that passed [`require`]: `async fn list(Caller(token):
/// Caller) …`. On a route without the layer it refuses the request as unauthenticated.
pub struct Caller(pub AccessToken);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        parts
            .extensions
            .get::<AccessToken>()
            .cloned()
            .map(Caller)
            .ok_or_else(|| refusal_response("", Refusal::NoToken))
    }
}
