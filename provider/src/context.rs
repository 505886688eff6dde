//! [`Ctx`]: what the provider's rules need, built once and shared: the configuration, the
//! store, the signing keys, the SSO sessions, the revocation feed and the clock. No HTTP and no background work:
//! the web layer (`web`) and the maintenance jobs (`maintenance`) are built on top of it.
//!
//! Also [`SystemError`]: everything that can fail beneath the rules (the database or the
//! session store out of reach, a bug, no randomness), which every boundary answers the same
//! way in its own format (503 and try again, or an opaque 500 logged once).

use crate::config::Config;
use crate::feed::Feed;
use crate::keys::nonce::Nonces;
use crate::keys::successor::Successors;
use crate::keys::{Alg, KeyError, KeyRing, Keys};
use crate::store::Store;
use anyhow::Context as _;
use infra::Clock;
use sessions::Sessions;
use std::time::Duration;

/// The provider's shared context.
pub struct Ctx {
    pub config: Config,
    /// The issuer without a trailing slash, as it appears in tokens (OIDC Discovery §3).
    pub issuer: String,
    pub store: Store,
    /// The signing keys in force (reloaded when rotation changes them).
    pub keys: KeyRing,
    /// Derives each refresh token's one successor.
    pub successors: Successors,
    /// DPoP nonces (RFC 9449 §8).
    pub dpop_nonces: Nonces,
    /// The SSO sessions.
    pub sessions: Sessions,
    pub clock: Clock,
    /// Wakes the back-channel logout outbox when a logout is queued.
    pub logout_queued: tokio::sync::Notify,
    /// The revocation feed APIs subscribe to.
    pub feed: Feed,
    /// Where the provider may send requests to registered URIs (`outbound.allow`).
    pub outbound: infra::outbound::Outbound,
    /// Set once the instance is asked to stop: `/readyz` answers 503 from then on.
    draining: std::sync::atomic::AtomicBool,
}

impl Ctx {
    /// Opens the store (migrating it), loads or creates the signing keys, and opens the
    /// session store: everything a provider instance needs before it serves.
    pub async fn open(config: Config, clock: Clock) -> anyhow::Result<Self> {
        config.validate()?;
        let outbound = config.outbound.policy()?;
        let store = Store::connect_waiting(&config.database_url, config.limits.database_wait)
            .await
            .context("cannot open the database (database_url)")?;
        store.migrate().await.context("database migration failed")?;
        let keys = first_keys(&store, &clock, &config.keys.algorithms).await?;
        let successors = Successors::load(&store).await?;
        let dpop_nonces = Nonces::load(&store).await?;
        let sessions = config
            .session
            .sessions(Some(store.db()), clock.clone())
            .await?;
        Ok(Self {
            feed: Feed::new(store.clone(), clock.clone()),
            issuer: config.issuer_str(),
            config,
            store,
            keys: KeyRing::new(keys),
            successors,
            dpop_nonces,
            sessions,
            clock,
            logout_queued: tokio::sync::Notify::new(),
            outbound,
            draining: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The instance is stopping: readiness says so from now on.
    pub fn start_draining(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether the instance is stopping.
    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The issuer followed by `path` (one of [`crate::paths`]).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

/// Loads the signing keys, creating the first ones on an empty database. Instances starting
/// together must not each generate their own first keys: creation happens under a short
/// lease, one instance at a time.
async fn first_keys(store: &Store, clock: &Clock, algs: &[Alg]) -> anyhow::Result<Keys> {
    let holder = infra::secret::random_handle()?;
    let mut waited = 0;
    while !store
        .try_lease("key-setup", &holder, clock.unix(), 10)
        .await?
    {
        anyhow::ensure!(
            waited < 200,
            "another instance held the key-setup lease for too long"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    let keys = Keys::load_or_create(store, clock.unix(), algs).await;
    store.release_lease("key-setup", &holder).await?;
    Ok(keys?)
}

/// A failure beneath the rules: the answer is 503 (retry) or an opaque 500, never a detail.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    /// The database or the session store cannot be reached (or did not answer in time).
    #[error("store unreachable: {0}")]
    Unavailable(String),
    /// Anything else: a bug, corrupt data, no randomness. Logged once, shown as a 500.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for SystemError {
    fn from(e: sqlx::Error) -> Self {
        if infra::sql_unavailable(&e) {
            Self::Unavailable(e.to_string())
        } else {
            Self::Internal(e.into())
        }
    }
}

impl From<sessions::StoreError> for SystemError {
    fn from(e: sessions::StoreError) -> Self {
        if e.is_unavailable() {
            Self::Unavailable(e.to_string())
        } else {
            Self::Internal(e.into())
        }
    }
}

impl From<KeyError> for SystemError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Store(e) => e.into(),
            other => Self::Internal(other.into()),
        }
    }
}

impl From<infra::secret::RandomError> for SystemError {
    fn from(e: infra::secret::RandomError) -> Self {
        Self::Internal(e.into())
    }
}

/// A context for unit tests: a fresh SQLite database in a temporary directory (migrated, with
/// keys), sessions in memory, and a clock the test moves.
#[cfg(test)]
pub(crate) mod testing {
    use super::Ctx;
    use crate::config::Config;
    use infra::Clock;

    /// Keeps the database (its directory, or its PostgreSQL database) alive as long as the
    /// context.
    pub(crate) struct TestCtx {
        pub ctx: std::sync::Arc<Ctx>,
        _guard: Guard,
    }

    /// Held for its `Drop`: the directory or the database goes with the context.
    #[allow(dead_code)]
    enum Guard {
        Dir(tempfile::TempDir),
        Postgres(
            infra::testing::TestPostgres,
            Option<sessions::testing::TestRedis>,
        ),
    }

    impl std::ops::Deref for TestCtx {
        type Target = Ctx;
        fn deref(&self) -> &Ctx {
            &self.ctx
        }
    }

    pub(crate) async fn ctx() -> TestCtx {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display());
        open(config(url), Guard::Dir(dir)).await
    }

    /// The scale-out configuration: a database of its own on `GATEHOUSE_TEST_POSTGRES_URL`'s
    /// server, and sessions in Redis (`GATEHOUSE_TEST_REDIS_URL`, under a key prefix of its
    /// own). `None`, reported as skipped, without PostgreSQL; sessions in memory (also
    /// reported) without Redis.
    pub(crate) async fn postgres_ctx(what: &str) -> Option<TestCtx> {
        let db = infra::testing::TestPostgres::create(what).await?;
        let url = db.url.clone();
        let redis = sessions::testing::TestRedis::create(what);
        let mut config = config(url);
        if let Some(r) = &redis {
            config.session.store = sessions::SessionBackend::Redis;
            config.session.redis_url = Some(r.url.clone());
            config.session.redis_prefix = r.prefix.clone();
        }
        Some(open(config, Guard::Postgres(db, redis)).await)
    }

    fn config(database_url: String) -> Config {
        let mut config = Config {
            issuer: "https://idp.example".parse().expect("an issuer URL"),
            database_url,
            ..Config::default()
        };
        config.session.store = sessions::SessionBackend::Memory;
        // Tests send dozens of writes at once to one SQLite writer, whose commits a busy
        // machine slows: they queue rather than fail after the production second.
        config.limits.database_wait = std::time::Duration::from_secs(20);
        config
    }

    /// Another provider instance on `ctx`'s database and session store (as a second process
    /// behind a load balancer would be), with its own in-memory state.
    pub(crate) async fn second_instance(ctx: &TestCtx) -> std::sync::Arc<Ctx> {
        let ctx = Ctx::open(ctx.config.clone(), ctx.clock.clone())
            .await
            .expect("a second provider context");
        std::sync::Arc::new(ctx)
    }

    async fn open(config: Config, guard: Guard) -> TestCtx {
        let ctx = Ctx::open(config, Clock::system())
            .await
            .expect("a provider context");
        TestCtx {
            ctx: std::sync::Arc::new(ctx),
            _guard: guard,
        }
    }
}
