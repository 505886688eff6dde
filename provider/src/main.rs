//! The `provider` binary: `serve` runs the provider; `migrate` prepares a database.

use clap::{Parser, Subcommand};
use provider::{App, Config};
use sessions::Clock;

#[derive(Parser)]
#[command(
    name = "provider",
    version,
    about = "Gatehouse OpenID Connect provider"
)]
struct Cli {
    /// Database URL (`sqlite://…?mode=rwc` or `postgres://…`); overrides the configuration.
    #[arg(long, env = "PROVIDER_DATABASE_URL", global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the provider (configuration: provider.toml and PROVIDER_… variables).
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage user accounts. Passwords are read from standard input, never from arguments.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// List the signing keys, or rotate them.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// List or revoke users' SSO sessions (in the configured session store).
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Every key: algorithm, kid, and whether it signs, is published ahead, or is retiring.
    List,
    /// Publish a new key for each algorithm; it signs after keys.publish_ahead (the running
    /// provider picks it up by itself), and the old one leaves once its tokens have expired.
    Rotate,
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create a user; the password is the first line of standard input.
    Add {
        username: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// The email address is verified.
        #[arg(long)]
        email_verified: bool,
        /// May use the developer console.
        #[arg(long)]
        developer: bool,
        /// Read the password from standard input (required: never from an argument).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Change a user's password (first line of standard input); signs them out everywhere.
    Passwd {
        username: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Disable an account; signs the user out everywhere.
    Disable { username: String },
    /// Enable a disabled account.
    Enable { username: String },
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// The live sessions of a user.
    List {
        #[arg(long)]
        user: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// End one session (by its sid) or every session of a user, at once.
    Revoke {
        #[arg(long, conflicts_with = "user", required_unless_present = "user")]
        sid: Option<String>,
        #[arg(long)]
        user: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let mut config = Config::load(&Config::figment())?;
    if let Some(url) = cli.database_url {
        config.database_url = url;
    }
    match cli.command {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(config.listen).await?;
            tracing::info!(issuer = %config.issuer, listen = %config.listen, "provider listening");
            let app = App::new(config, Clock::system()).await?;
            app.serve(listener, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        }
        Command::Migrate => {
            let store = provider::store::Store::connect(&config.database_url).await?;
            store.migrate().await?;
            println!("database is up to date");
        }
        Command::Sessions { command } => manage_sessions(&config, command).await?,
        Command::Users { command } => manage_users(&config, command).await?,
        Command::Keys { command } => manage_keys(&config, command).await?,
    }
    Ok(())
}

async fn manage_sessions(config: &Config, command: SessionsCommand) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.session.store != provider::config::SessionBackend::Memory,
        "session.store is memory: those sessions live inside the running provider and \
         cannot be reached from here"
    );
    let store = provider::store::Store::connect(&config.database_url).await?;
    store.migrate().await?;
    let sessions = config
        .session
        .sessions(Some(store.pool()), Clock::system())
        .await?;
    let user_id = |name: String| {
        let store = store.clone();
        async move {
            store
                .user_by_username(&name)
                .await?
                .map(|u| u.id)
                .ok_or_else(|| anyhow::anyhow!("no user named {name}"))
        }
    };
    match command {
        SessionsCommand::List { user, json } => {
            let list = sessions.list_for_user(&user_id(user).await?).await?;
            let fmt = |t: time::OffsetDateTime| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            };
            let mut rows: Vec<serde_json::Value> = Vec::new();
            for s in &list {
                rows.push(serde_json::json!({
                    "sid": s.handle,
                    "created_at": fmt(s.created_at),
                    "last_seen_at": fmt(s.last_seen_at),
                    "idle_expires_at": fmt(s.idle_expires_at),
                    "absolute_expires_at": fmt(s.absolute_expires_at),
                    "user_agent": s.user_agent,
                    "client_addr": s.client_addr,
                    "apps": store.session_client_names(&s.handle).await?,
                }));
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if rows.is_empty() {
                println!("no live sessions");
            } else {
                println!(
                    "{:<24}  {:<20}  {:<20}  {:<15}  apps",
                    "sid", "started", "last seen", "address"
                );
                for (s, row) in list.iter().zip(&rows) {
                    println!(
                        "{:<24}  {:<20}  {:<20}  {:<15}  {}",
                        s.handle,
                        fmt(s.created_at),
                        fmt(s.last_seen_at),
                        s.client_addr.as_deref().unwrap_or("-"),
                        row["apps"]
                    );
                }
            }
        }
        SessionsCommand::Revoke { sid: Some(sid), .. } => {
            match sessions.revoke_handle(&sid, None).await? {
                Some(_) => println!("session {sid} ended"),
                None => anyhow::bail!("no live session {sid}"),
            }
        }
        SessionsCommand::Revoke {
            user: Some(user), ..
        } => {
            let ended = sessions.revoke_user(&user_id(user.clone()).await?).await?;
            println!("{} session(s) of {user} ended", ended.len());
        }
        SessionsCommand::Revoke { .. } => anyhow::bail!("give --sid or --user"),
    }
    Ok(())
}

/// The first line of standard input, without its line ending.
fn password_from_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(!password.is_empty(), "no password on standard input");
    anyhow::ensure!(
        password.len() <= provider::account::password::MAX_PASSWORD_BYTES,
        "the password is too long"
    );
    Ok(password)
}

async fn manage_users(config: &Config, command: UsersCommand) -> anyhow::Result<()> {
    let store = provider::store::Store::connect(&config.database_url).await?;
    store.migrate().await?;
    let clock = Clock::system();
    // Sessions to end on a password change or a disabled account. An in-memory store lives
    // inside the running provider and cannot be reached from here; the provider refuses
    // disabled users on their next request in any case.
    let sessions = match config.session.store {
        provider::config::SessionBackend::Memory => None,
        _ => Some(
            config
                .session
                .sessions(Some(store.pool()), clock.clone())
                .await?,
        ),
    };
    let ended =
        |n: usize| println!("{n} session(s) ended; the apps are told through back-channel logout");
    match command {
        UsersCommand::Add {
            username,
            name,
            email,
            email_verified,
            developer,
            ..
        } => {
            let password = password_from_stdin()?;
            let user = provider::store::NewUser {
                username: username.clone(),
                password_hash: provider::account::password::hash(password).await?,
                name,
                email,
                email_verified,
                developer,
                ..provider::store::NewUser::default()
            };
            match store.create_user(&user, clock.unix()).await {
                Ok(u) => println!("user {username} created (sub {})", u.id),
                Err(e) if provider::store::is_unique_violation(&e) => {
                    anyhow::bail!("the username {username} is taken")
                }
                Err(e) => return Err(e.into()),
            }
        }
        UsersCommand::List => {
            for u in store.list_users().await? {
                let flags = [(u.disabled, "disabled"), (u.developer, "developer")]
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, f)| *f)
                    .collect::<Vec<_>>()
                    .join(",");
                println!(
                    "{:<20} {:<36} {:<24} {flags}",
                    u.username,
                    u.id,
                    u.email.unwrap_or_default()
                );
            }
        }
        UsersCommand::Passwd { username, .. } => {
            let password = password_from_stdin()?;
            match &sessions {
                Some(s) => ended(
                    provider::admin::change_password(&store, s, &username, password)
                        .await?
                        .len(),
                ),
                None => {
                    let user = store
                        .user_by_username(&username)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("no user named {username}"))?;
                    let hash = provider::account::password::hash(password).await?;
                    store
                        .set_password_hash(&user.id, &hash, clock.unix())
                        .await?;
                }
            }
            println!("password of {username} changed");
        }
        UsersCommand::Disable { username } => {
            set_disabled(&store, sessions.as_ref(), &username, true).await?
        }
        UsersCommand::Enable { username } => {
            set_disabled(&store, sessions.as_ref(), &username, false).await?
        }
    }
    Ok(())
}

async fn set_disabled(
    store: &provider::store::Store,
    sessions: Option<&sessions::Sessions>,
    username: &str,
    disable: bool,
) -> anyhow::Result<()> {
    let sessions = sessions.ok_or_else(|| {
        anyhow::anyhow!("session.store is memory: its sessions live inside the running provider; use a shared session store")
    })?;
    let ended = provider::admin::set_disabled(store, sessions, username, disable).await?;
    if disable {
        println!(
            "{} session(s) ended; the apps are told through back-channel logout",
            ended.len()
        );
    }
    println!(
        "{username} is {}",
        if disable { "disabled" } else { "enabled" }
    );
    Ok(())
}

async fn manage_keys(config: &Config, command: KeysCommand) -> anyhow::Result<()> {
    let store = provider::store::Store::connect(&config.database_url).await?;
    store.migrate().await?;
    let now = Clock::system().unix();
    let fmt = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default()
    };
    match command {
        KeysCommand::List => {
            let stored = store.signing_keys().await?;
            for k in &stored {
                let newer_active = stored.iter().any(|n| {
                    n.alg == k.alg && n.activates_at > k.activates_at && n.activates_at <= now
                });
                let state = if k.activates_at > now {
                    format!("published, signs from {}", fmt(k.activates_at))
                } else if newer_active {
                    "retiring (verifies, no longer signs)".to_owned()
                } else {
                    "signing".to_owned()
                };
                println!("{:<6} {:<44} {state}", k.alg, k.kid);
            }
        }
        KeysCommand::Rotate => {
            let ahead = i64::try_from(config.keys.publish_ahead.as_secs()).unwrap_or(900);
            for alg in provider::keys::Alg::ALL {
                let key = provider::keys::rotate(&store, alg, now, now + ahead).await?;
                println!(
                    "{:<6} {:<44} published, signs from {}",
                    alg.as_str(),
                    key.kid,
                    fmt(key.activates_at)
                );
            }
        }
    }
    Ok(())
}
