//! The router's state: the provider's [`Ctx`] and what only the web layer needs (the cookie
//! policy and the request-rate counters). Handlers take `State<Arc<Ctx>>` when the context is
//! all they need; extractors take the whole [`AppState`].

use super::rate::RateLimiter;
use crate::context::Ctx;
use axum::extract::FromRef;
use sessions::CookiePolicy;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub ctx: Arc<Ctx>,
    pub web: Arc<WebParts>,
}

/// What only HTTP needs.
pub struct WebParts {
    /// The SSO cookie's name and attributes.
    pub cookies: CookiePolicy,
    /// Request rates per client address (`limits.*_per_address`).
    pub address_rates: RateLimiter,
    /// Request rates per authenticated client (`limits.*_per_client`), apart from the
    /// addresses so that no flood of addresses evicts a client's count.
    pub client_rates: RateLimiter,
}

impl AppState {
    pub fn new(ctx: Arc<Ctx>) -> Self {
        let cookies = CookiePolicy::for_url(
            &ctx.config.cookie.name,
            &ctx.config.issuer,
            ctx.config.cookie.allow_insecure_http,
        );
        Self {
            ctx,
            web: Arc::new(WebParts {
                cookies,
                address_rates: RateLimiter::new(),
                client_rates: RateLimiter::new(),
            }),
        }
    }

    /// Counts a request from address key `key` against its budget of `limit` per minute (0:
    /// unlimited); the seconds to wait when it is spent.
    pub fn address_rate(&self, key: &str, limit: u64) -> Result<(), u64> {
        self.web
            .address_rates
            .check(key, limit, self.ctx.clock.unix())
    }

    /// [`AppState::address_rate`] for an authenticated client's key.
    pub fn client_rate(&self, key: &str, limit: u64) -> Result<(), u64> {
        self.web
            .client_rates
            .check(key, limit, self.ctx.clock.unix())
    }
}

impl FromRef<AppState> for Arc<Ctx> {
    fn from_ref(state: &AppState) -> Self {
        state.ctx.clone()
    }
}
