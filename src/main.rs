//! `cargo run`: the whole Gatehouse demo in one process — the provider on
//! `idp.localhost:4000`, two sample apps on `app-a.localhost:5001` and
//! `app-b.localhost:5002`, and the Notes API on `api.localhost:5003` with the Audit API it
//! calls on the user's behalf on `audit.localhost:5004` — with demo users, apps and APIs
//! seeded (idempotently) and state kept under `./data`. `PROVIDER_…` and `CLIENT_APP_…` variables reach the parts it starts.

use anyhow::Context;
use clap::Parser;
use figment::providers::Serialized;
use infra::Clock;
use provider::protocol::registration::{self, ClientMetadata, Registrant};
use provider::store::NewUser;
use provider::types::GrantType;
use std::path::{Path, PathBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// mimalloc rather than the system allocator: glibc keeps the 19 MiB that each argon2 hash
/// allocates in one of its per-thread arenas after it is freed (a few hundred MiB after a
/// burst of sign-ins), where mimalloc returns it to the system; it is also faster for the
/// many small allocations of request handling. Measured in README.md, "Performance".
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Gatehouse single sign-on demo: provider + two apps"
)]
struct Args {
    /// Where the demo keeps its databases.
    #[arg(long, env = "GATEHOUSE_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
}

struct DemoApp {
    name: &'static str,
    client_id: &'static str,
    secret: &'static str,
    port: u16,
    first_party: bool,
}

/// The demo's APIs: (indicator, name, scopes, client, its secret, port).
const NOTES: (&str, &str, [&str; 2], &str, &str, u16) = (
    "http://api.localhost:5003",
    "Notes",
    ["notes:read", "notes:write"],
    "notes-api",
    "notes-api-secret",
    5003,
);
const AUDIT: (&str, &str, [&str; 2], &str, &str, u16) = (
    "http://audit.localhost:5004",
    "Audit",
    ["audit:read", "audit:write"],
    "audit-api",
    "audit-api-secret",
    5004,
);

const APPS: [DemoApp; 2] = [
    // App A is a third-party app: the user approves it once (consent is remembered).
    DemoApp {
        name: "App A",
        client_id: "app-a",
        secret: "app-a-secret",
        port: 5001,
        first_party: false,
    },
    // App B is first-party: no consent screen, so single sign-on there is a single click.
    DemoApp {
        name: "App B",
        client_id: "app-b",
        secret: "app-b-secret",
        port: 5002,
        first_party: true,
    },
];

fn sqlite_url(dir: &Path, file: &str) -> String {
    format!("sqlite://{}?mode=rwc", dir.join(file).display())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into()),
        )
        .init();
    let args = Args::parse();
    std::fs::create_dir_all(&args.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            args.data_dir.display()
        )
    })?;
    let clock = Clock::system();
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    // The provider.
    let demo_outbound: Vec<String> = APPS
        .iter()
        .map(|a| format!("{}.localhost:{}", a.client_id, a.port))
        .collect();
    let provider_config = provider::Config::load(&provider::Config::figment_over(
        Serialized::defaults(serde_json::json!({
            "issuer": "http://idp.localhost:4000",
            "listen": "127.0.0.1:4000",
            "metrics_listen": "127.0.0.1:4090",
            "database_url": sqlite_url(&args.data_dir, "provider.db"),
            "cookie": { "allow_insecure_http": true },
            // The sign-in page offers "Keep me signed in" (off unless an operator allows it).
            "session": { "remember": { "enabled": true } },
            // The demo apps' back-channel logout endpoints: plain http on *.localhost, each on
            // its own port (and nothing else on this machine).
            "outbound": { "allow": demo_outbound },
            // Ctrl-C stops the demo at once (no load balancer to wait for).
            "shutdown": { "drain_delay": "0s" },
        })),
    ))?;
    let issuer = provider_config.issuer_str();
    let provider_listener = TcpListener::bind(provider_config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", provider_config.listen))?;
    let provider = provider::App::new(provider_config, clock.clone()).await?;
    let metrics_addr = provider.metrics_addr();

    // The apps' configurations first: their redirect URIs are what the provider registers.
    let mut app_configs = Vec::new();
    for app in &APPS {
        let host = format!("http://{}.localhost:{}", app.client_id, app.port);
        let identity = serde_json::json!({
            "name": app.name,
            "listen": format!("127.0.0.1:{}", app.port),
            "public_url": host,
            "issuer": issuer,
            "client_id": app.client_id,
            "client_secret": app.secret,
            "database_url": sqlite_url(&args.data_dir, &format!("{}.db", app.client_id)),
            "cookie": { "name": format!("{}_session", app.client_id.replace('-', "_")), "allow_insecure_http": true },
            // Both call Notes: App A writes notes, App B reads them.
            "notes": { "resource": NOTES.0, "write": app.client_id == "app-a" },
        });
        // App B's Settings page needs two factors: signed in with a password, a visit there
        // asks the provider for the second factor only (step-up).
        let identity = if app.client_id == "app-b" {
            let mut with = identity;
            with["settings_acr"] = "urn:gatehouse:acr:mfa".into();
            with
        } else {
            identity
        };
        let figment = client_app::Config::figment().merge(Serialized::defaults(identity));
        app_configs.push(client_app::Config::load(&figment)?);
    }
    let store = &provider.ctx().store;
    let bobs_key = seed(provider.ctx(), &app_configs, clock.unix()).await?;
    // An initial access token for trying dynamic client registration (RFC 7591) by hand.
    let (registration_token, _) =
        registration::issue_initial_access_token(store, clock.unix(), 3600).await?;

    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(
        provider.serve(provider_listener, stopped(stop_rx.clone())),
    ));
    // The APIs, once the provider serves (they read its discovery document at start).
    let mut feeds = Vec::new();
    let http = infra::http::client_builder().build()?;
    let settings = |(id, _, _, client, secret, _): (&str, &str, [&str; 2], &str, &str, u16)| {
        notes_api::Settings {
            issuer: issuer.clone(),
            audience: id.into(),
            client_id: client.into(),
            client_secret: secret.into(),
            public_url: None,
        }
    };
    let audit = notes_api::audit(settings(AUDIT), http.clone(), clock.clone()).await?;
    let notes = notes_api::notes(
        settings(NOTES),
        Some(notes_api::AuditApi {
            resource: AUDIT.0.into(),
            url: AUDIT.0.into(),
        }),
        http.clone(),
        clock.clone(),
    )
    .await?;
    for (api, port) in [(notes, NOTES.5), (audit, AUDIT.5)] {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        feeds.push(api.listener);
        let stop = stopped(stop_rx.clone());
        tasks.push(tokio::spawn(async move {
            axum::serve(listener, api.router)
                .with_graceful_shutdown(stop)
                .await
        }));
    }
    let mut urls = Vec::new();
    for config in app_configs {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        urls.push((config.name.clone(), config.public_url.to_string()));
        let app = client_app::App::new(config, clock.clone()).await?;
        tasks.push(tokio::spawn(app.serve(listener, stopped(stop_rx.clone()))));
    }

    println!();
    println!(
        "Gatehouse demo is running (Ctrl-C to stop). State is kept in {}.",
        args.data_dir.display()
    );
    println!("  provider  {issuer}/");
    if let Some(metrics) = metrics_addr {
        println!("  metrics   http://{metrics}/metrics  (the provider's, for a scraper)");
    }
    for (name, url) in &urls {
        println!("  {name:<8}  {url}");
    }
    println!(
        "  Notes API {}/notes  (notes:read, notes:write; each new note is recorded at the \
         Audit API, {}/events, on the user's behalf)",
        NOTES.0, AUDIT.0
    );
    println!("Sign in as alice / wonderland (or bob / builder).");
    println!(
        "  bob has an authenticator app (RFC 6238): add the key {bobs_key} to yours for his codes;\n  \
         alice has none: http://idp.localhost:4000/account/security sets one up."
    );
    println!("Developers (alice) register apps at {issuer}/developer, or by API:");
    println!(
        "  curl -s {issuer}/register -H 'Authorization: Bearer {registration_token}' \\\n    \
         -H 'Content-Type: application/json' \\\n    \
         -d '{{\"client_name\":\"My app\",\"redirect_uris\":[\"http://127.0.0.1:8080/cb\"]}}'"
    );
    println!("  (that initial access token registers one app within the hour)");
    println!(
        "Open App A, sign in, then open App B: it signs you in without a password (single sign-on)."
    );
    println!(
        "Write a note in App A; App B reads it from the Notes API. \"Sign out everywhere\" and \
         App A shows the API refusing the token it held."
    );
    println!(
        "From a terminal (the device flow, RFC 8628): cargo run -p gatehouse-cli -- login \
         --issuer {issuer}"
    );
    println!();

    infra::shutdown::signal_then_force().await;
    println!("stopping… (again to stop at once)");
    let _ = stop_tx.send(true);
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// Demo users and apps. Idempotent: existing users are kept, clients are brought up to date.
/// The clients are registered through the registration rules like any other. Returns bob's
/// authenticator key.
async fn seed(
    ctx: &provider::Ctx,
    apps: &[client_app::Config],
    now: i64,
) -> anyhow::Result<String> {
    let store = &ctx.store;
    let users = [
        (
            "alice",
            "wonderland",
            "Alice Liddell",
            Some("Alice"),
            Some("Liddell"),
            Some("alice@example.com"),
        ),
        ("bob", "builder", "Bob the Builder", Some("Bob"), None, None),
    ];
    for (username, password, name, given, family, email) in users {
        if store.user_by_username(username).await?.is_some() {
            continue;
        }
        let user = NewUser {
            username: username.into(),
            password_hash: provider::users::password::hash(password.into()).await?,
            name: Some(name.into()),
            given_name: given.map(Into::into),
            family_name: family.map(Into::into),
            email: email.map(Into::into),
            email_verified: email.is_some(),
            developer: username == "alice",
        };
        store.create_user(&user, now).await?;
    }
    let grants = |g: &[GrantType]| Some(g.iter().map(|g| g.as_str().to_owned()).collect());
    for (demo, config) in APPS.iter().zip(apps) {
        let base = config.public_url.as_str().trim_end_matches('/');
        let metadata = ClientMetadata {
            client_name: Some(config.name.clone()),
            redirect_uris: vec![config.redirect_uri()],
            post_logout_redirect_uris: Some(vec![format!("{base}/")]),
            backchannel_logout_uri: Some(format!("{base}/backchannel-logout")),
            backchannel_logout_session_required: Some(true),
            grant_types: grants(&[GrantType::AuthorizationCode, GrantType::RefreshToken]),
            ..ClientMetadata::default()
        };
        let who = Registrant {
            client_id: Some(config.client_id.clone()),
            client_secret: Some(config.client_secret.0.clone()),
            first_party: demo.first_party,
            ..Registrant::default()
        };
        let valid = metadata.validate(&ctx.outbound)?;
        registration::register_or_replace(store, valid, &who, now).await?;
    }
    // A machine client: client_credentials only (no user, no redirect).
    let service = ClientMetadata {
        client_name: Some("Demo service".into()),
        grant_types: grants(&[GrantType::ClientCredentials]),
        ..ClientMetadata::default()
    };
    let who = Registrant {
        client_id: Some("demo-service".into()),
        client_secret: Some("demo-service-secret".into()),
        first_party: true,
        ..Registrant::default()
    };
    let valid = service.validate(&ctx.outbound)?;
    registration::register_or_replace(store, valid, &who, now).await?;
    // The command-line sample (`gatehouse-cli login`): a public client of the device flow.
    let cli = ClientMetadata {
        client_name: Some("Gatehouse CLI".into()),
        grant_types: grants(&[GrantType::DeviceCode, GrantType::RefreshToken]),
        token_endpoint_auth_method: Some("none".into()),
        ..ClientMetadata::default()
    };
    let who = Registrant {
        client_id: Some("gatehouse-cli".into()),
        first_party: true,
        ..Registrant::default()
    };
    let valid = cli.validate(&ctx.outbound)?;
    registration::register_or_replace(store, valid, &who, now).await?;
    seed_apis(ctx, now).await?;
    bobs_authenticator(store, now).await
}

/// bob's authenticator app (on, with no recovery codes: the demo prints its key), kept
/// across runs; its key.
async fn bobs_authenticator(store: &provider::store::Store, now: i64) -> anyhow::Result<String> {
    let bob = store
        .user_by_username("bob")
        .await?
        .ok_or_else(|| anyhow::anyhow!("the demo user bob is missing"))?;
    if let Some(on) = store.totp_factor(&bob.id).await?
        && on.confirmed_at.is_some()
    {
        return Ok(on.secret);
    }
    let secret = provider::users::second_factor::new_secret();
    store.begin_totp(&bob.id, &secret, now).await?;
    store.confirm_totp(&bob.id, &secret, 0, &[], now).await?;
    Ok(secret)
}

/// The Notes and Audit APIs, each with its own confidential client (to hear its revocation
/// feed), and the rule that lets Notes exchange a user's token for Audit's `audit:write`.
async fn seed_apis(ctx: &provider::Ctx, now: i64) -> anyhow::Result<()> {
    use provider::protocol::resources::{self, ResourceSpec};
    let store = &ctx.store;
    for (id, name, scopes, client, secret, _) in [NOTES, AUDIT] {
        let mut grants = vec![GrantType::ClientCredentials];
        if client == NOTES.3 {
            grants.push(GrantType::TokenExchange);
        }
        let metadata = ClientMetadata {
            client_name: Some(format!("{name} API")),
            grant_types: Some(grants.iter().map(|g| g.as_str().to_owned()).collect()),
            ..ClientMetadata::default()
        };
        let who = Registrant {
            client_id: Some(client.into()),
            client_secret: Some(secret.into()),
            first_party: true,
            ..Registrant::default()
        };
        let valid = metadata.validate(&ctx.outbound)?;
        registration::register_or_replace(store, valid, &who, now).await?;
        if store.resource(id).await?.is_none() {
            let spec = ResourceSpec {
                resource_id: id.into(),
                name: Some(name.into()),
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                ..ResourceSpec::default()
            };
            let client = store.client(client).await?;
            let new = resources::validate(spec, client.as_ref(), &ctx.issuer, now)?;
            store.add_resource(&new).await?;
        }
    }
    let (notes_client, audit) = (store.client(NOTES.3).await?, store.resource(AUDIT.0).await?);
    if let (Some(client), Some(audit)) = (notes_client, audit) {
        let all = store.resources().await?;
        let rule = resources::exchange_rule(&client, &all, &audit, &["audit:write".into()])?;
        store.allow_exchange(&rule, now).await?;
    }
    Ok(())
}
