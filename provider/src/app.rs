//! The provider application: shared state, router and server.

use crate::config::Config;
use crate::keys::Keys;
use crate::store::Store;
use crate::{account, oidc, web};
use anyhow::Context;
use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use axum::routing::get;
use axum_extra::extract::cookie::CookieJar;
use infra::Clock;
use sessions::{CookiePolicy, NewSession, Session, Sessions, StoreError};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Everything a request handler needs. Built once; shared behind an `Arc`.
pub struct AppState {
    pub config: Config,
    /// The issuer without a trailing slash, as it appears in tokens.
    pub issuer: String,
    pub store: Store,
    /// The parsed signing keys; replaced when rotation changes them.
    keys: std::sync::RwLock<Arc<Keys>>,
    pub sessions: Sessions,
    pub cookies: CookiePolicy,
    pub clock: Clock,
    /// An argon2id hash of a random password: verified against when the user is unknown, so
    /// an unknown user costs the same time as a wrong password.
    pub decoy_hash: String,
    /// Wakes the back-channel logout outbox when a logout is queued.
    pub logout_outbox: tokio::sync::Notify,
    /// Outbound HTTP (back-channel logout deliveries).
    pub http: reqwest::Client,
    /// This process's name for leases (random).
    instance_id: String,
    /// Request rates of the machine-facing endpoints (`limits.*_rate_*`).
    pub rates: crate::web::rate::RateLimiter,
}

pub type SharedState = Arc<AppState>;

/// Facts about the browser recorded with a new session.
#[derive(Clone, Debug, Default)]
pub struct ClientMeta {
    pub user_agent: Option<String>,
    pub addr: Option<String>,
}

impl ClientMeta {
    pub fn from_parts(
        headers: &axum::http::HeaderMap,
        addr: Option<&ConnectInfo<SocketAddr>>,
    ) -> Self {
        Self {
            user_agent: headers
                .get(axum::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            addr: addr.map(|a| a.0.ip().to_string()),
        }
    }
}

impl AppState {
    /// Counts a request against `key`'s budget of `limit` per minute (0: unlimited); the
    /// seconds to wait when it is spent.
    pub fn rate(&self, key: &str, limit: u64) -> Result<(), u64> {
        self.rates.check(key, limit, self.clock.unix())
    }

    /// [`AppState::rate`] for the client address of a request, when it is known.
    pub fn rate_by_address(&self, what: &str, meta: &ClientMeta, limit: u64) -> Result<(), u64> {
        match &meta.addr {
            Some(addr) => self.rate(&format!("{what}:{addr}"), limit),
            None => Ok(()),
        }
    }

    /// The signing keys in force.
    pub fn keys(&self) -> Arc<Keys> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The shared maintenance (sweeping sessions, codes and tokens; rotating keys), done by
    /// one instance at a time under a lease; then every instance reloads its keys if they
    /// changed. Returns whether this instance held the lease.
    pub async fn maintain(&self) -> bool {
        let now = self.clock.unix();
        let ttl = i64::try_from(self.config.session.sweep_interval.as_secs())
            .unwrap_or(60)
            .max(1)
            * 3;
        let holder = match self
            .store
            .try_lease("maintenance", &self.instance_id, now, ttl)
            .await
        {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %e, "maintenance lease unavailable");
                false
            }
        };
        if holder {
            match self.sessions.sweep().await {
                // Idle and absolute expiry are session ends like any other: the apps hear.
                Ok(ended) => crate::logout::session_ended(self, &ended).await,
                Err(e) => tracing::warn!(error = %e, "session sweep failed"),
            }
            // Codes are kept ten minutes past expiry so a late replay is still recognised.
            if let Err(e) = self.store.sweep_auth_codes(now, 600).await {
                tracing::warn!(error = %e, "code sweep failed");
            }
            if let Err(e) = self.store.sweep_tokens(now, 600).await {
                tracing::warn!(error = %e, "token sweep failed");
            }
            if let Err(e) = self.store.sweep_login_throttle(now, 3600).await {
                tracing::warn!(error = %e, "throttle sweep failed");
            }
            let before = (now - crate::audit::RETENTION_SECS).saturating_mul(1_000_000);
            if let Err(e) = self.store.sweep_audit(before).await {
                tracing::warn!(error = %e, "audit sweep failed");
            }
        }
        if let Err(e) = self.maintain_keys(holder).await {
            tracing::warn!(error = %e, "key maintenance failed");
        }
        holder
    }

    /// With `rotate`, one key-rotation step (rotate if due, retire what expired); then reloads
    /// the keys if anything changed, including a pending key becoming the signer.
    pub async fn maintain_keys(&self, rotate: bool) -> Result<(), crate::keys::KeyError> {
        let now = self.clock.unix();
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4);
        let t = &self.config.tokens;
        let policy = crate::keys::RotationPolicy {
            rotation_period: secs(self.config.keys.rotation_period),
            publish_ahead: secs(self.config.keys.publish_ahead),
            // The longest-lived token a key signs, plus a logout token and a margin.
            retire_after: secs(t.access_token_lifetime.max(t.id_token_lifetime)) + 180,
        };
        if rotate {
            crate::keys::maintain(&self.store, now, policy).await?;
        }
        let stored = self.store.signing_keys().await?;
        if self.keys().is_stale(&stored, now) {
            let fresh = Arc::new(Keys::from_stored(&stored, now)?);
            *self
                .keys
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
            tracing::info!("signing keys reloaded");
        }
        Ok(())
    }

    /// The live SSO session named by the request's cookie, if any.
    pub async fn session(&self, jar: &CookieJar) -> Result<Option<Session>, StoreError> {
        match self.cookies.read(jar) {
            Some(id) => self.sessions.load(&id).await,
            None => Ok(None),
        }
    }

    /// The request's session, or a new pre-login one (for CSRF and pending requests). The
    /// returned jar carries the cookie when a session was created.
    pub async fn session_or_new(
        &self,
        jar: CookieJar,
        meta: &ClientMeta,
    ) -> Result<(Session, CookieJar), StoreError> {
        if let Some(s) = self.session(&jar).await? {
            return Ok((s, jar));
        }
        let s = self
            .sessions
            .create(NewSession {
                user_agent: meta.user_agent.clone(),
                client_addr: meta.addr.clone(),
                ..NewSession::default()
            })
            .await?;
        let jar = jar.add(self.cookies.cookie(s.id()));
        Ok((s, jar))
    }
}

/// `GET /readyz`: the database and the session store both answer.
async fn readiness(
    axum::extract::State(st): axum::extract::State<SharedState>,
) -> axum::response::Response {
    use infra::health::{check, report};
    let (database, sessions) = tokio::join!(check(st.store.ping()), check(st.sessions.ping()));
    report(&[("database", database), ("sessions", sessions)])
}

/// A configured provider, ready to serve.
pub struct App {
    state: SharedState,
}

impl App {
    /// Connects to the store, runs migrations, loads (or creates) signing keys.
    pub async fn new(config: Config, clock: Clock) -> anyhow::Result<Self> {
        config.validate()?;
        infra::metrics::install();
        let store = Store::connect(&config.database_url)
            .await
            .with_context(|| "cannot open the database (database_url)".to_owned())?;
        store.migrate().await.context("database migration failed")?;
        // Instances starting together on an empty database must not each generate their own
        // first keys: key creation happens under a short lease, one instance at a time.
        let instance_id = infra::secret::random_handle()?;
        let mut waited = 0;
        while !store
            .try_lease("key-setup", &instance_id, clock.unix(), 10)
            .await?
        {
            anyhow::ensure!(
                waited < 200,
                "another instance held the key-setup lease for too long"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += 1;
        }
        let keys = Keys::load_or_create(&store, clock.unix()).await;
        store.release_lease("key-setup", &instance_id).await?;
        let keys = keys?;
        let sessions = config
            .session
            .sessions(Some(store.db()), clock.clone())
            .await?;
        let cookies = CookiePolicy::for_url(
            &config.cookie.name,
            &config.issuer,
            config.cookie.allow_insecure_http,
        );
        let decoy_password = infra::secret::random_token()?;
        let decoy_hash = account::password::hash(decoy_password).await?;
        let issuer = config.issuer_str();
        let http = infra::http::client_builder().build()?;
        let state = AppState {
            config,
            issuer,
            store,
            keys: std::sync::RwLock::new(Arc::new(keys)),
            sessions,
            cookies,
            clock,
            decoy_hash,
            logout_outbox: tokio::sync::Notify::new(),
            http,
            instance_id,
            rates: crate::web::rate::RateLimiter::new(),
        };
        Ok(Self {
            state: Arc::new(state),
        })
    }

    pub fn state(&self) -> &SharedState {
        &self.state
    }

    /// The whole HTTP surface.
    pub fn router(&self) -> Router {
        Router::new()
            .merge(oidc::routes())
            .merge(crate::registration::routes())
            .merge(crate::developer::routes())
            .merge(account::routes())
            .route("/static/style.css", get(web::stylesheet))
            .route("/healthz", get(infra::health::alive))
            .route("/readyz", get(readiness))
            .route("/metrics", get(infra::metrics::render))
            .fallback(|| async { web::PageError::NotFound("There is no page here.".into()) })
            .layer(axum::middleware::from_fn(crate::audit::middleware))
            .layer(axum::middleware::from_fn(infra::metrics::track))
            .layer(web::security_headers())
            .layer(axum::extract::DefaultBodyLimit::max(
                self.state.config.limits.max_body_bytes,
            ))
            .layer(axum::middleware::from_fn_with_state(
                self.state.config.limits.max_uri_bytes,
                web::limit_uri,
            ))
            .layer(TimeoutLayer::with_status_code(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                self.state.config.limits.request_timeout,
            ))
            .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .with_state(self.state.clone())
    }

    /// Serves on `listener` until `shutdown` completes; meanwhile sweeps expired sessions and
    /// codes, and delivers back-channel logouts, in the background.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let sweeper = self.spawn_sweeper();
        let outbox = crate::logout::outbox::spawn(self.state.clone());
        let limits = self.state.config.limits.clone();
        let result = web::server::serve(listener, self.router(), &limits, shutdown).await;
        sweeper.abort();
        outbox.abort();
        result
    }

    fn spawn_sweeper(&self) -> tokio::task::JoinHandle<()> {
        let state = self.state.clone();
        let every = state.config.session.sweep_interval;
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                state.maintain().await;
            }
        })
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let addr = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        Ok(Self::from_parts(&parts.headers, addr))
    }
}
