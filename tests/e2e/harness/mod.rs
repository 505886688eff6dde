//! Starting the stack and talking to it.

pub mod authenticator;
pub mod balancer;
mod browser;
pub mod chrome;
pub mod proxy;

pub use browser::{Browser, Page};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use infra::Clock;
use provider::protocol::registration::{self, ClientMetadata, MetadataError, Registrant};
use provider::store::{NewUser, Store};
use provider::types::{Alg, AuthMethod, GrantType};
use rand::TryRng;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use url::Url;

pub const ALICE: (&str, &str) = ("alice", "wonderland");

/// The stack's outbound exceptions, as in the demo: the apps' back-channel logout endpoints
/// are plain http on `*.localhost`.
pub const OUTBOUND_ALLOW: &[&str] = &["*.localhost"];

/// The stack's outbound policy ([`OUTBOUND_ALLOW`]).
pub fn outbound() -> infra::outbound::Outbound {
    infra::outbound::Outbound::parse(OUTBOUND_ALLOW).expect("valid exceptions")
}
pub const BOB: (&str, &str) = ("bob", "builder");

/// A running sample app.
pub struct RunningApp {
    pub url: String,
    pub client_id: String,
    pub secret: String,
    pub redirect_uri: String,
    config: client_app::Config,
    server: Option<Server>,
}

/// A server task that stops gracefully (open connections close too) when told.
struct Server {
    stop: tokio::sync::oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Server {
    fn spawn<F>(serve: impl FnOnce(tokio::sync::oneshot::Receiver<()>) -> F) -> Self
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        Self {
            stop,
            task: tokio::spawn(serve(stopped)),
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

/// Provider + App A (third-party: consent once) + App B (first-party), on one shared clock.
pub struct Stack {
    pub clock: Clock,
    pub issuer: String,
    pub store: Store,
    /// The running provider's state (its keys, sessions, store).
    pub provider: Arc<provider::Ctx>,
    /// The provider's `/metrics`, on its own listener.
    pub metrics_url: String,
    pub app_a: RunningApp,
    pub app_b: RunningApp,
    /// Set to make the proxy in front of the provider tamper with ID tokens (only when the
    /// stack was spawned with `Options::proxy`).
    pub tamper_id_tokens: Arc<AtomicBool>,
    provider_config: provider::Config,
    provider_server: Option<Server>,
    /// Further provider instances (same configuration, own address): base URL and server.
    instances: Vec<(String, Option<Server>)>,
    tasks: Vec<JoinHandle<()>>,
    _redis: Option<sessions::testing::TestRedis>,
    _pg: Option<infra::testing::TestPostgres>,
    _dir: tempfile::TempDir,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        let servers = [
            &self.provider_server,
            &self.app_a.server,
            &self.app_b.server,
        ];
        for server in servers.into_iter().flatten() {
            server.task.abort();
        }
        for server in self.instances.iter().filter_map(|(_, s)| s.as_ref()) {
            server.task.abort();
        }
    }
}

async fn start_provider(
    config: provider::Config,
    clock: Clock,
    listener: TcpListener,
) -> (Arc<provider::Ctx>, Server, String) {
    let app = provider::App::new(config, clock).await.unwrap();
    let state = app.ctx().clone();
    let metrics = format!("http://{}/metrics", app.metrics_addr().unwrap());
    let server = Server::spawn(|stopped| async move {
        app.serve(listener, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (state, server, metrics)
}

/// A listener on `addr` again, after a restart. The port is free once the old listener is
/// gone (SO_REUSEADDR), unless an outgoing connection took it as its source port meanwhile:
/// then it is tried again, for a while.
async fn rebind(addr: std::net::SocketAddr) -> TcpListener {
    eventually("the port is free again", || async {
        TcpListener::bind(addr).await.ok()
    })
    .await
}

/// Starts an app on `listener`, or (for a restart) on its configured address again.
async fn start_app(
    config: client_app::Config,
    clock: Clock,
    listener: Option<TcpListener>,
) -> Server {
    let listener = match listener {
        Some(l) => l,
        None => rebind(config.listen).await,
    };
    let app = client_app::App::new(config, clock).await.unwrap();
    Server::spawn(|stopped| async move {
        app.serve(listener, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    })
}

#[derive(Default)]
pub struct Options {
    /// Put a reverse proxy in front of the provider (the issuer is the proxy's address).
    pub proxy: bool,
    /// The issuer's host instead of `idp.localhost` (for clients that cannot resolve
    /// `*.localhost`, such as Node's fetch).
    pub issuer_host: Option<&'static str>,
    /// Keep the provider's SSO sessions in Redis (`GATEHOUSE_TEST_REDIS_URL`, own key prefix).
    pub redis_sessions: Option<sessions::testing::TestRedis>,
    /// Put the provider's database on PostgreSQL (`GATEHOUSE_TEST_POSTGRES_URL`, own database).
    pub postgres: Option<infra::testing::TestPostgres>,
    /// `Secure` cookies with the `__Host-` prefix even over http (for a real browser, which
    /// treats `*.localhost` as a secure context; the test HTTP client would not send them).
    pub secure_cookies: bool,
    /// Dynamic client registration without an initial access token.
    pub open_registration: bool,
    /// Any other change to the provider's configuration.
    pub configure: Option<fn(&mut provider::Config)>,
    /// Where the Notes API (resource [`NOTES_API`]) is served: both apps call it there, App A
    /// writing notes and App B reading them (the test starts the API).
    pub notes_url: Option<String>,
}

/// The Notes API's resource indicator, as in the demo.
pub const NOTES_API: &str = "http://api.localhost:5003";

async fn listen() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

pub async fn spawn() -> Stack {
    spawn_with(Options::default()).await
}

pub async fn spawn_with(mut options: Options) -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::system();
    let mut tasks = Vec::new();
    let tamper = Arc::new(AtomicBool::new(false));

    let (provider_listener, provider_port) = listen().await;
    let issuer_port = if options.proxy {
        let (proxy_listener, proxy_port) = listen().await;
        tasks.push(proxy::spawn(proxy_listener, provider_port, tamper.clone()));
        proxy_port
    } else {
        provider_port
    };
    let issuer = format!(
        "http://{}:{issuer_port}",
        options.issuer_host.unwrap_or("idp.localhost")
    );
    let mut config = provider::Config {
        issuer: issuer.parse().unwrap(),
        listen: provider_listener.local_addr().unwrap(),
        database_url: format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("provider.db").display()
        ),
        ..provider::Config::default()
    };
    config.cookie.allow_insecure_http = !options.secure_cookies;
    config.registration.open = options.open_registration;
    // No load balancer to wait for, unless a test says otherwise (`configure`).
    config.shutdown.drain_delay = std::time::Duration::ZERO;
    config.outbound.allow = OUTBOUND_ALLOW.iter().map(|s| (*s).to_owned()).collect();
    if let Some(configure) = options.configure {
        configure(&mut config);
    }
    // Expired sessions are swept (and their apps told) within a second of real time.
    config.session.sweep_interval = Duration::from_secs(1);
    // GATEHOUSE_E2E_STORE=postgres: the whole suite with the provider on PostgreSQL (its own
    // database per test) and its sessions in Redis (its own key prefix per test), the
    // scale-out configuration. `.ci/run` runs the suite once more this way.
    let mut pg = options.postgres.take();
    if let Some(db) = &pg {
        config.database_url = db.url.clone();
    }
    let mut redis = options.redis_sessions.take();
    if pg.is_none() && std::env::var("GATEHOUSE_E2E_STORE").is_ok_and(|v| v == "postgres") {
        let db = infra::testing::TestPostgres::create("end-to-end suite on PostgreSQL")
            .await
            .expect("GATEHOUSE_E2E_STORE=postgres needs GATEHOUSE_TEST_POSTGRES_URL");
        config.database_url = db.url.clone();
        pg = Some(db);
        if redis.is_none() {
            redis = sessions::testing::TestRedis::create("end-to-end suite on Redis");
        }
    }
    if let Some(r) = &redis {
        config.session.store = sessions::SessionBackend::Redis;
        config.session.redis_url = Some(r.url.clone());
        config.session.redis_prefix = r.prefix.clone();
    }
    // `/metrics` on a listener of its own, as `metrics_listen` puts it (any free port).
    config.metrics_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let (provider, provider_server, metrics_url) =
        start_provider(config.clone(), clock.clone(), provider_listener).await;
    // The test's own handle on the database, which waits out a busy writer as an operator's
    // command does (the provider's own fails a request after a second, which a loaded machine
    // starting twenty stacks at once can reach while seeding).
    let store = Store::connect_waiting(&config.database_url, PATIENCE)
        .await
        .unwrap();

    seed_users(&store, clock.unix()).await;
    let mut apps = Vec::new();
    for (id, name, first_party) in [("app-a", "App A", false), ("app-b", "App B", true)] {
        let (listener, port) = listen().await;
        let url = format!("http://{id}.localhost:{port}");
        let secret = format!("{id}-secret");
        let redirect_uri = format!("{url}/callback");
        let metadata = ClientMetadata {
            client_name: Some(name.into()),
            redirect_uris: vec![redirect_uri.clone()],
            post_logout_redirect_uris: Some(vec![format!("{url}/")]),
            backchannel_logout_uri: Some(format!("{url}/backchannel-logout")),
            backchannel_logout_session_required: Some(true),
            grant_types: grants(&[GrantType::AuthorizationCode, GrantType::RefreshToken]),
            ..ClientMetadata::default()
        };
        let who = Registrant {
            client_id: Some(id.into()),
            client_secret: Some(secret.clone()),
            first_party,
            ..Registrant::default()
        };
        registration::register(
            &store,
            metadata.validate(&provider.outbound).unwrap(),
            &who,
            clock.unix(),
        )
        .await
        .unwrap();
        let mut app_config = client_app::Config {
            name: name.into(),
            listen: listener.local_addr().unwrap(),
            public_url: url.parse().unwrap(),
            issuer: issuer.parse().unwrap(),
            client_id: id.into(),
            client_secret: client_app::config::Secret(secret.clone()),
            database_url: format!(
                "sqlite://{}?mode=rwc",
                dir.path().join(format!("{id}.db")).display()
            ),
            notes: options
                .notes_url
                .clone()
                .map(|url| client_app::config::NotesConfig {
                    url: Some(url),
                    // Within the test browser's 10 s timeout; the API hears a revocation in
                    // well under a second (README, "APIs").
                    refusal_wait: Duration::from_secs(8),
                    ..client_app::config::NotesConfig::new(NOTES_API, id == "app-a")
                }),
            // As in the demo: App B's Settings page needs two factors.
            settings_acr: (id == "app-b").then(|| "urn:gatehouse:acr:mfa".to_owned()),
            ..client_app::Config::default()
        };
        // Cookies ignore ports: distinct names keep the two apps' cookies apart.
        app_config.cookie.name = format!("{}_session", id.replace('-', "_"));
        app_config.cookie.allow_insecure_http = !options.secure_cookies;
        // The apps' own sessions outlive the provider's, so a test of the provider's expiry
        // sees the apps signed out by the back-channel, not by their own timers.
        app_config.session.idle_timeout = Duration::from_secs(48 * 3600);
        app_config.session.absolute_lifetime = Duration::from_secs(48 * 3600);
        let server = start_app(app_config.clone(), clock.clone(), Some(listener)).await;
        apps.push(RunningApp {
            url,
            client_id: id.into(),
            secret,
            redirect_uri,
            config: app_config,
            server: Some(server),
        });
    }
    let app_b = apps.pop().unwrap();
    let app_a = apps.pop().unwrap();
    Stack {
        clock,
        issuer,
        store,
        provider,
        metrics_url,
        app_a,
        app_b,
        tamper_id_tokens: tamper,
        provider_config: config,
        provider_server: Some(provider_server),
        instances: Vec::new(),
        tasks,
        _redis: redis,
        _pg: pg,
        _dir: dir,
    }
}

async fn seed_users(store: &Store, now: i64) {
    for ((username, password), name, email) in [
        (ALICE, "Alice Liddell", Some("alice@example.com")),
        (BOB, "Bob the Builder", None),
    ] {
        let user = NewUser {
            username: username.into(),
            password_hash: provider::users::password::hash(password.into())
                .await
                .unwrap(),
            name: Some(name.into()),
            email: email.map(Into::into),
            email_verified: email.is_some(),
            // As in the demo: alice may use the developer console, bob may not.
            developer: username == ALICE.0,
            ..NewUser::default()
        };
        store.create_user(&user, now).await.unwrap();
    }
}

/// The wire names of `grants`, as client metadata lists them.
pub fn grants(grants: &[GrantType]) -> Option<Vec<String>> {
    Some(grants.iter().map(|g| g.as_str().to_owned()).collect())
}

/// Registers a client through the registration rules, as an operator would (a chosen id and
/// secret; the code flow only); [`update_client`] changes it further.
#[allow(clippy::too_many_arguments)]
pub async fn register(
    store: &Store,
    client_id: &str,
    name: &str,
    secret: Option<&str>,
    redirect_uris: &[&str],
    auth_method: AuthMethod,
    first_party: bool,
    id_token_alg: Alg,
    now: i64,
) {
    let metadata = ClientMetadata {
        client_name: Some(name.into()),
        redirect_uris: redirect_uris.iter().map(|s| (*s).to_owned()).collect(),
        token_endpoint_auth_method: Some(auth_method.as_str().into()),
        id_token_signed_response_alg: Some(id_token_alg.as_str().into()),
        ..ClientMetadata::default()
    };
    let who = Registrant {
        client_id: Some(client_id.into()),
        client_secret: secret.map(Into::into),
        first_party,
        ..Registrant::default()
    };
    let valid = metadata
        .validate(&infra::outbound::Outbound::default())
        .expect("valid client metadata");
    registration::register_or_replace(store, valid, &who, now)
        .await
        .unwrap();
}

/// Registers a first-party machine client (`client_credentials` only, no redirect URI) with
/// the secret `secret`, through the registration rules.
pub async fn register_service(store: &Store, client_id: &str, secret: &str, now: i64) {
    let metadata = ClientMetadata {
        client_name: Some(client_id.into()),
        grant_types: grants(&[GrantType::ClientCredentials]),
        ..ClientMetadata::default()
    };
    let who = Registrant {
        client_id: Some(client_id.into()),
        client_secret: Some(secret.into()),
        first_party: true,
        ..Registrant::default()
    };
    let valid = metadata
        .validate(&infra::outbound::Outbound::default())
        .expect("valid client metadata");
    registration::register_or_replace(store, valid, &who, now)
        .await
        .unwrap();
}

/// Changes a registered client's metadata through the registration rules (every field it
/// has is kept unless `edit` changes it; the rules must accept the result).
pub async fn update_client(
    store: &Store,
    client_id: &str,
    edit: impl FnOnce(&mut ClientMetadata),
) -> Result<(), MetadataError> {
    let c = store
        .client(client_id)
        .await
        .unwrap()
        .expect("a registered client");
    let mut metadata = registration::metadata_of(&c);
    edit(&mut metadata);
    let valid = metadata.validate(&outbound())?;
    let now = infra::Clock::system().unix();
    registration::update(store, c, valid, None, now)
        .await
        .unwrap();
    Ok(())
}

/// PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::SysRng.try_fill_bytes(&mut bytes).unwrap();
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// An authorization request as a test-driven relying party sends it.
pub struct AuthorizeRequest {
    pub url: Url,
    pub verifier: String,
    pub state: String,
}

impl Stack {
    /// Stops the provider (gracefully, as a deployment would) and starts a new process-worth
    /// of it on the same address, database and session store.
    pub async fn restart_provider(&mut self) {
        if let Some(server) = self.provider_server.take() {
            server.stop().await;
        }
        let listener = rebind(self.provider_config.listen).await;
        let (state, server, metrics_url) =
            start_provider(self.provider_config.clone(), self.clock.clone(), listener).await;
        self.provider = state;
        self.metrics_url = metrics_url;
        self.provider_server = Some(server);
    }

    /// Starts another provider instance with the same configuration (database, session store,
    /// issuer) on its own port, as a second process behind a load balancer would be; returns
    /// its index. Its base URL is [`Stack::instance_url`].
    pub async fn start_instance(&mut self) -> usize {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut config = self.provider_config.clone();
        config.listen = listener.local_addr().unwrap();
        let (_, server, _) = start_provider(config, self.clock.clone(), listener).await;
        self.instances
            .push((format!("http://idp.localhost:{port}"), Some(server)));
        self.instances.len() - 1
    }

    pub fn instance_url(&self, index: usize) -> &str {
        &self.instances[index].0
    }

    /// Restarts instance `index` on its address.
    pub async fn restart_instance(&mut self, index: usize) {
        if let Some(server) = self.instances[index].1.take() {
            server.stop().await;
        }
        let url = url::Url::parse(&self.instances[index].0).unwrap();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], url.port().unwrap()));
        let listener = rebind(addr).await;
        let mut config = self.provider_config.clone();
        config.listen = addr;
        let (_, server, _) = start_provider(config, self.clock.clone(), listener).await;
        self.instances[index].1 = Some(server);
    }

    /// Stops App A (it is down until [`Stack::start_app_a`]).
    pub async fn stop_app_a(&mut self) {
        if let Some(server) = self.app_a.server.take() {
            server.stop().await;
        }
    }

    /// Starts App A again on the same address and session database.
    pub async fn start_app_a(&mut self) {
        self.app_a.server =
            Some(start_app(self.app_a.config.clone(), self.clock.clone(), None).await);
    }

    /// `GET /authorize` URL for `client_id` with PKCE S256, state and nonce; `extra` adds or
    /// replaces parameters (an empty value removes one).
    pub fn authorize_url(
        &self,
        client_id: &str,
        redirect_uri: &str,
        extra: &[(&str, &str)],
    ) -> AuthorizeRequest {
        let (verifier, challenge) = pkce();
        let state = pkce().0;
        let mut params: Vec<(String, String)> = [
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", "openid profile email"),
            ("state", state.as_str()),
            ("nonce", "n-0S6_WzA2Mj"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        for (k, v) in extra {
            params.retain(|(name, _)| name != k);
            if !v.is_empty() {
                params.push(((*k).to_owned(), (*v).to_owned()));
            }
        }
        let mut url = Url::parse(&format!("{}/authorize", self.issuer)).unwrap();
        url.query_pairs_mut().extend_pairs(params);
        AuthorizeRequest {
            url,
            verifier,
            state,
        }
    }

    /// POSTs to the token endpoint; `basic` sends client_secret_basic credentials.
    pub async fn token(
        &self,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> (
        reqwest::StatusCode,
        reqwest::header::HeaderMap,
        serde_json::Value,
    ) {
        let client = client_app::http::client_builder().build().unwrap();
        let mut req = client.post(format!("{}/token", self.issuer)).form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.json().await.unwrap_or(serde_json::Value::Null);
        (status, headers, body)
    }

    /// The provider's discovery document.
    pub async fn discovery(&self) -> serde_json::Value {
        let http = client_app::http::client_builder().build().unwrap();
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        http.get(url).send().await.unwrap().json().await.unwrap()
    }

    /// Runs a `provider` command against the stack's database and session store; its output,
    /// or its error.
    pub async fn cli(&self, args: &[&str]) -> Result<String, String> {
        self.cli_with_stdin(args, "").await
    }

    /// [`Stack::cli`] with `stdin` as its standard input.
    pub async fn cli_with_stdin(&self, args: &[&str], stdin: &str) -> Result<String, String> {
        let url = self.provider.config.database_url.clone();
        let mut all = vec!["provider", "--database-url", url.as_str()];
        all.extend_from_slice(args);
        provider::cli::run_args(self.provider.config.clone(), all, stdin)
            .await
            .map_err(|e| format!("{e:#}"))
    }

    /// Exchanges `code` as App A would (basic auth, its redirect URI).
    pub async fn redeem_as_app_a(
        &self,
        code: &str,
        verifier: &str,
    ) -> (
        reqwest::StatusCode,
        reqwest::header::HeaderMap,
        serde_json::Value,
    ) {
        self.redeem_as_app_a_with(code, verifier, &[]).await
    }

    /// [`Stack::redeem_as_app_a`] with `extra` parameters (a `resource`, say) after the usual.
    pub async fn redeem_as_app_a_with(
        &self,
        code: &str,
        verifier: &str,
        extra: &[(&str, &str)],
    ) -> (
        reqwest::StatusCode,
        reqwest::header::HeaderMap,
        serde_json::Value,
    ) {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.app_a.redirect_uri.as_str()),
            ("code_verifier", verifier),
        ];
        form.extend_from_slice(extra);
        let basic = (self.app_a.client_id.as_str(), self.app_a.secret.as_str());
        self.token(&form, Some(basic)).await
    }
}

/// How long a test waits for what happens in the background (a back-channel logout, a sweep, a
/// reconnection): long enough for a loaded machine, so that no test races the wall clock.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Polls `check` until it gives a value, for at most [`PATIENCE`], and returns it; panics with
/// `what` after that. The one place the tests wait on a condition.
pub async fn eventually<T, Fut>(what: &str, check: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Option<T>>,
{
    match within_patience(check).await {
        Some(found) => found,
        None => panic!("{what}: not within {PATIENCE:?}"),
    }
}

/// [`eventually`] for a caller that gathers evidence before it fails: `None` once
/// [`PATIENCE`] has run out.
pub async fn within_patience<T, Fut>(mut check: impl FnMut() -> Fut) -> Option<T>
where
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(found) = check().await {
            return Some(found);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The query parameter `name` of `url`.
pub fn param(url: &str, name: &str) -> Option<String> {
    Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Decodes the claims (or header, `part` 0) of a compact JWS without verifying it.
pub fn jwt_part(jwt: &str, part: usize) -> serde_json::Value {
    let seg = jwt.split('.').nth(part).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(seg).unwrap()).unwrap()
}
