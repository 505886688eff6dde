//! Gatehouse OpenID Connect provider: authorization server, SSO session, tokens, keys.
//!
//! Layers point down: `oidc` (protocol endpoints) and `account` (pages for people) use
//! `keys` and the shared `sessions` crate, which use `store` (the only SQL).

pub mod account;
pub mod admin;
pub mod app;
pub mod audit;
pub mod cli;
pub mod config;
pub mod developer;
pub mod keys;
pub mod logout;
pub mod oidc;
pub mod registration;
pub mod store;
pub mod web;

pub use app::{App, AppState, SharedState};
pub use config::Config;
