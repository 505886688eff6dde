//! Gatehouse sample relying party: signs users in with the provider (openidconnect crate),
//! keeps its own server-side session (the cookie holds only an opaque id; tokens stay on the
//! server), and shows what it knows.

pub mod config;
pub mod http;
pub mod logout;
mod notes;
pub mod oidc;
mod pages;
mod renewal;
mod settings;

pub use config::Config;

use anyhow::Context;
use axum::Router;
use axum::routing::{get, post};
use infra::Clock;
use sessions::{CookiePolicy, Sessions, SqlStore};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;

/// Everything the app's handlers share.
pub struct AppState {
    pub config: Config,
    pub issuer: String,
    pub oidc: oidc::Oidc,
    pub logout: logout::LogoutValidator,
    pub sessions: Sessions,
    pub cookies: CookiePolicy,
    pub clock: Clock,
    /// One refresh per session at a time in this process (see `renewal::renewed`).
    pub refreshing: renewal::RefreshLocks,
    /// The Notes API, when this app calls it.
    notes: Option<notes::NotesApi>,
}

/// A configured app instance.
pub struct App {
    state: Arc<AppState>,
}

const STYLESHEET: &str = include_str!("../../templates/style.css");
const CSP: &str = "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'";

impl App {
    /// Opens the session store and discovers the provider (retrying while it starts).
    pub async fn new(config: Config, clock: Clock) -> anyhow::Result<Self> {
        config.validate()?;
        infra::metrics::install();
        let db = match config.session.store {
            sessions::SessionBackend::Sql => {
                let db = infra::Db::connect(&config.database_url, 4)
                    .await
                    .context("cannot open the app database (database_url)")?;
                SqlStore::new(db.clone())
                    .migrate()
                    .await
                    .context("session table migration failed")?;
                Some(db)
            }
            sessions::SessionBackend::Memory | sessions::SessionBackend::Redis => None,
        };
        let sessions = config.session.sessions(db.as_ref(), clock.clone()).await?;
        let client = http::client_builder().build()?;
        let oidc =
            oidc::Oidc::discover(&config, http::OidcHttp(client.clone()), clock.clone()).await?;
        let cookies = CookiePolicy::for_url(
            &config.cookie.name,
            &config.public_url,
            config.cookie.allow_insecure_http,
        );
        let issuer = config.issuer.as_str().trim_end_matches('/').to_owned();
        let notes = config
            .notes
            .clone()
            .map(|n| notes::NotesApi::new(n, client.clone()));
        let logout = logout::LogoutValidator::new(
            issuer.clone(),
            config.client_id.clone(),
            oidc.jwks_uri.clone(),
            client,
            clock.clone(),
        );
        Ok(Self {
            state: Arc::new(AppState {
                config,
                issuer,
                oidc,
                logout,
                sessions,
                cookies,
                clock,
                refreshing: renewal::RefreshLocks::default(),
                notes,
            }),
        })
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    pub fn router(&self) -> Router {
        use axum::http::{HeaderValue, header};
        Router::new()
            .route("/", get(pages::show_home))
            .route("/login", get(pages::start_login))
            .route("/callback", get(pages::finish_login))
            .route("/me", get(pages::show_me))
            .route("/notes", post(pages::add_note))
            .route("/settings", get(settings::show_settings))
            .route("/healthz", get(infra::health::alive))
            .route("/readyz", get(pages::readiness))
            .route("/metrics", get(infra::metrics::render))
            .route("/logout", post(pages::logout))
            .route("/logout/everywhere", post(pages::logout_everywhere))
            .route("/backchannel-logout", post(pages::backchannel_logout))
            .route(
                "/static/style.css",
                get(|| async {
                    (
                        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
                        STYLESHEET,
                    )
                }),
            )
            .layer(SetResponseHeaderLayer::if_not_present(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ))
            // For browsers that predate CSP's frame-ancestors: no framing (clickjacking).
            .layer(SetResponseHeaderLayer::if_not_present(
                header::X_FRAME_OPTIONS,
                HeaderValue::from_static("DENY"),
            ))
            // Framed by the provider's signed-out page: outside the no-framing layers above,
            // with headers of its own (its provider as the only frame ancestor).
            .route("/frontchannel-logout", get(pages::frontchannel_logout))
            .layer(axum::middleware::from_fn(infra::metrics::track))
            .layer(tower_http::trace::TraceLayer::new_for_http())
            .with_state(self.state.clone())
    }

    /// Serves until `shutdown`; sweeps expired sessions meanwhile.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let sweeper = self
            .state
            .sessions
            .spawn_sweeper(self.state.config.session.sweep_interval, |_| {});
        let result = axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await;
        sweeper.abort();
        result
    }
}
