//! The web layer: every route ([`router`]), the extractors the handlers share ([`extract`]),
//! each boundary's error in its wire format ([`error`]), the layers every request passes
//! through ([`layers`]), the HTTP server with its connection limits ([`server`]), and the
//! handlers themselves: [`oauth`] (the protocol endpoints) and [`pages`] (pages for people).
//! Handlers only translate: the rules are in `protocol` (and `users` for signing in).

pub mod error;
pub mod extract;
pub mod layers;
pub mod oauth;
pub mod pages;
pub mod rate;
pub mod router;
pub mod server;
pub mod session;
pub mod state;
