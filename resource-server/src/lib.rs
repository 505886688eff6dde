//! Accepting Gatehouse access tokens in a Rust API.
//!
//! An API registered with the provider (`provider resources add --id URI --scope …`) receives
//! JWT access tokens addressed to it (RFC 9068, `aud` = its resource indicator). This crate
//! checks them where they arrive, with no call to the provider per request: a [`Verifier`]
//! finds the provider's keys through discovery and caches them (fetched again when a token
//! names a key it does not hold, at most every ten seconds), and [`require`] is a layer that
//! asks a route's requests for a valid token carrying the route's scopes, answering RFC 6750
//! errors otherwise (`401` with `WWW-Authenticate: Bearer error="invalid_token"`, `403` with
//! `error="insufficient_scope"`). A token bound to a DPoP key (RFC 9449) is accepted only
//! under the `DPoP` scheme with a proof for the request by that key (`401` with
//! `WWW-Authenticate: DPoP error="invalid_dpop_proof"` otherwise). The handler reads the
//! verified token with [`Caller`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::{Router, routing::get};
//! use resource_server::{Caller, Config, Verifier, require};
//! use std::sync::Arc;
//!
//! let config = Config::new("https://idp.example.com", "https://notes.example.com");
//! let verifier =
//!     Arc::new(Verifier::discover(config, reqwest::Client::new(), infra::Clock::system()).await?);
//! async fn notes(Caller(token): Caller) -> String {
//!     format!("the notes of {}", token.sub)
//! }
//! let app: Router = Router::new().route(
//!     "/notes",
//!     get(notes).route_layer(require(&verifier, &["notes:read"])),
//! );
//! # Ok(()) }
//! ```
//!
//! Local validation cannot hear a revocation by itself: with
//! `verifier.hear_revocations(client_id, secret)` the API also listens to the provider's
//! revocation feed, and a revoked token is refused within a second of its revocation (see
//! [`revocations`](crate::Listener) for what happens while the feed cannot be heard).

mod dpop;
mod exchange;
mod layer;
mod proof;
mod revocations;
mod verify;

pub use dpop::NotFresh;
pub use exchange::{ExchangeError, Exchanged};
pub use layer::{
    Caller, Protected, Refusal, RequireScopes, bearer, presented, refusal_response, require,
};
pub use proof::{ProofKey, ProofKeyError};
pub use revocations::{Feed, Listener};
pub use verify::{AccessToken, Actor, Config, SetupError, Verifier, VerifyError};

#[cfg(test)]
mod tests;
