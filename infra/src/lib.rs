//! What Gatehouse's servers (the provider, the sample app, the APIs) share that is not sessions:
//!
//! - [`Db`]: the database handle over the sqlx `Any` driver (SQLite or PostgreSQL), a write
//!   pool and a read pool, with the hot paths' SQLite reads run on the calling thread
//!   ([`Db::read_optional`]), and [`sql_unavailable`], the one test for "the database is out of
//!   reach" that every caller answers with a 503;
//! - [`backup`]: online copies of an SQLite database, checked and restored;
//! - [`config`]: the configuration layering both programs use (defaults, file, environment)
//!   and the duration format;
//! - [`http`]: the HTTP client for calls a server chooses itself (the `*.localhost` resolver,
//!   no redirects, timeouts), and [`outbound`]: the guarded client for URIs others registered
//!   (never inward unless the operator allows it);
//! - [`jwks`]: an issuer's published keys, cached and fetched again (rate limited) when a
//!   token names one not held, for the verifiers of Gatehouse's JWTs (the sample app's logout
//!   tokens, the `resource-server` crate's access tokens);
//! - [`client_addr`]: the client's address behind trusted proxies, and the key it is counted
//!   under;
//! - [`dpop`]: the stateless checks of a DPoP proof (RFC 9449), for the provider and the APIs;
//! - [`secret`]: random tokens from the OS, their stored (hashed) form, constant-time compares;
//! - [`health`], [`metrics`] and [`shutdown`]: `/healthz` and `/readyz`, `/metrics`, and the
//!   stop signal;
//! - [`Clock`]: injected time, so expiry is tested without sleeping.
//!
//! The `sessions` crate builds on it; so do both servers.

pub mod backup;
pub mod client_addr;
mod clock;
pub mod config;
mod db;
pub mod dpop;
pub mod health;
pub mod http;
mod inline;
pub mod jwks;
pub mod metrics;
pub mod outbound;
pub mod secret;
pub mod shutdown;
#[cfg(feature = "testing")]
pub mod testing;

pub use clock::{Clock, secs};
pub use db::{Db, sql_unavailable};
pub use inline::{FromLite, Param, converted as lite_converted};
/// What [`lite_row!`] implementations read from.
pub use rusqlite::{Result as LiteResult, Row as LiteRow};
