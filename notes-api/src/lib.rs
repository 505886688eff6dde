//! The demo's APIs, built on the `resource-server` crate: **Notes** (`GET /notes` with
//! `notes:read`, `POST /notes` with `notes:write`), which keeps each user's notes, and
//! **Audit** (`POST /events` with `audit:write`, `GET /events` with `audit:read`), which Notes
//! calls on the user's behalf with a token exchanged for the one it was called with (RFC 8693),
//! so that Audit records who wrote, through which app, acted for by which API.
//!
//! Each checks every token locally (the provider's keys, cached) and listens to the provider's
//! revocation feed, so a revoked token is refused within a second with no call per request.
//! Every answer says how the token was validated and in how many microseconds. The notes and
//! events live in memory (the demo's; a real API would keep them in its database), bounded per
//! user.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use resource_server::{AccessToken, Config, Listener, RequireScopes, Verifier, refusal_response};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

mod audit;
mod notes;

pub use audit::audit;
pub use notes::{AuditApi, notes};

/// The most entries kept per user; the oldest go first.
const MAX_PER_USER: usize = 50;
/// The longest text accepted, in characters.
const MAX_TEXT: usize = 500;

/// Where an API meets its provider, and as whom.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The provider's issuer.
    pub issuer: String,
    /// This API's resource indicator (its tokens' `aud`).
    pub audience: String,
    /// This API's client (to hear its revocation feed, and to exchange tokens).
    pub client_id: String,
    pub client_secret: String,
    /// Where this API is reached, when not at its indicator: what DPoP proofs sent to it
    /// name (`resource_server::Config::public_url`).
    pub public_url: Option<String>,
}

/// An API's router and the listener that keeps it hearing revocations (keep both).
pub struct Running {
    pub router: axum::Router,
    pub listener: Listener,
}

/// A verifier for `settings`, listening to the revocation feed.
async fn verifier(
    settings: &Settings,
    http: reqwest::Client,
    clock: infra::Clock,
) -> anyhow::Result<(Arc<Verifier>, Listener)> {
    let mut config = Config::new(settings.issuer.clone(), settings.audience.clone());
    if let Some(url) = &settings.public_url {
        config.public_url = url.clone();
    }
    let verifier = Arc::new(Verifier::discover(config, http, clock).await?);
    let listener =
        verifier.hear_revocations(settings.client_id.clone(), settings.client_secret.clone())?;
    Ok((verifier, listener))
}

/// A request's token checked against `rule`, timed: the token, or the RFC 6750 answer (RFC
/// 9449's for a DPoP-bound token's proof). `request`: its method, headers, and the path the
/// client sent (a proof names it).
async fn checked(
    rule: &RequireScopes,
    realm: &str,
    request: &http::request::Parts,
) -> Result<(AccessToken, serde_json::Value), Response> {
    let path = request
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| request.uri.path(), |o| o.0.path());
    let headers = &request.headers;
    let method = &request.method;
    let started = Instant::now();
    let token = rule
        .check(method, path, headers)
        .await
        .map_err(|why| refusal_response(realm, why))?;
    let micros = started.elapsed().as_micros();
    let how = serde_json::json!({
        "method": "JWT checked locally (RFC 9068: signature with the provider's cached keys, \
                   typ, iss, aud, exp, scopes) + the provider's revocation feed",
        "microseconds": u64::try_from(micros).unwrap_or(u64::MAX),
    });
    Ok((token, how))
}

/// Entries kept per user, oldest first, at most [`MAX_PER_USER`] each.
#[derive(Default)]
struct PerUser(Mutex<HashMap<String, VecDeque<serde_json::Value>>>);

impl PerUser {
    fn all(&self) -> MutexGuard<'_, HashMap<String, VecDeque<serde_json::Value>>> {
        // Plain data: still whole after a panic elsewhere.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, sub: String, entry: serde_json::Value) {
        let mut all = self.all();
        let mine = all.entry(sub).or_default();
        mine.push_back(entry);
        while mine.len() > MAX_PER_USER {
            mine.pop_front();
        }
    }

    fn of(&self, sub: &str) -> Vec<serde_json::Value> {
        self.all()
            .get(sub)
            .map(|e| e.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// A JSON error for a request the API itself refuses (RFC 9457-like, small).
fn refused(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({"error": error, "error_description": description});
    (status, Json(body)).into_response()
}

/// The text of a new entry: trimmed, not empty, at most [`MAX_TEXT`] characters.
fn text_of(body: &serde_json::Value) -> Option<String> {
    let text = body.get("text")?.as_str()?.trim();
    (!text.is_empty() && text.chars().count() <= MAX_TEXT).then(|| text.to_owned())
}

/// Now, RFC 3339.
fn now_rfc3339(clock: &infra::Clock) -> String {
    time::OffsetDateTime::from_unix_timestamp(clock.unix())
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
