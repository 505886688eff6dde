//! Gatehouse OpenID Connect provider: authorization server, SSO session, tokens, keys.
//!
//! The modules, bottom up; each imports only from those above it in this list (a unit test,
//! `tests/layering.rs`, holds the code to it):
//!
//! 1. [`paths`] and [`types`]: the paths the provider serves, and the typed protocol values.
//! 2. [`config`]: the configuration.
//! 3. [`store`]: all SQL.
//! 4. [`audit`], [`keys`] and [`feed`]: the audit trail; signing keys and JWTs; the revocation
//!    feed of APIs.
//! 5. [`context`]: [`Ctx`], what the rules need, and the errors beneath them.
//! 6. [`logout`]: every end of an SSO session, and the back-channel logout outbox.
//! 7. [`users`]: accounts, passwords, sign-in.
//! 8. [`protocol`]: the rules of every endpoint and grant, with no HTTP in them.
//! 9. [`maintenance`]: sweeps and key rotation.
//! 10. [`web`]: HTTP: the router, extractors, error formats and the handlers.
//! 11. [`app`] and [`cli`]: a serving instance, and the `provider` command.

pub mod app;
pub mod audit;
pub mod cli;
pub mod config;
pub mod context;
pub mod feed;
pub mod keys;
pub mod logout;
pub mod maintenance;
pub mod paths;
pub mod protocol;
pub mod store;
pub mod types;
pub mod users;
pub mod web;

pub use app::App;
pub use config::Config;
pub use context::Ctx;
