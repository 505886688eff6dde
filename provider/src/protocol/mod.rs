//! The protocol core: the rules of every endpoint and grant, with no HTTP in it. Each rule is a
//! function over typed inputs (parsed [`params::Params`], a `sessions::Session`, a
//! `store::Client`) that returns a typed outcome or an error of its boundary ([`error`]); the
//! web layer (`web`) only translates HTTP to these and back. Every rule is unit-tested here,
//! with the time injected.
//!
//! Where things go:
//! - a new grant type: a variant of `types::GrantType`, a file in [`token`], an arm in
//!   [`token::exchange`];
//! - a new endpoint: its rules in a file here, its handler in `web`, its path in `paths`;
//! - a new error code: its spec family's enum in `types`.

pub mod authorize;
pub mod client_auth;
pub mod consent;
pub mod device;
pub mod discovery;
pub mod dpop;
pub mod end_session;
pub mod error;
pub mod hint;
pub mod params;
pub mod pkce;
pub mod registration;
pub mod resources;
pub mod revocation;
pub mod token;
pub mod userinfo;

#[cfg(test)]
mod tests;

pub use params::{Params, ParamsError};
