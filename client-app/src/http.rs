//! The app's HTTP client for the provider: the shared outbound policy (`infra::http`), and
//! the adapter that lets openidconnect use reqwest 0.13 (its own `reqwest` feature would pull
//! in reqwest 0.12 as well).

pub use infra::http::{LocalhostResolver, OAuthHttp as OidcHttp, client_builder, is_localhost};
