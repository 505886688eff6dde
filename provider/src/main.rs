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
    /// List or revoke users' SSO sessions (in the configured session store).
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
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
            let rows: Vec<serde_json::Value> = list
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "sid": s.handle,
                        "created_at": fmt(s.created_at),
                        "last_seen_at": fmt(s.last_seen_at),
                        "idle_expires_at": fmt(s.idle_expires_at),
                        "absolute_expires_at": fmt(s.absolute_expires_at),
                        "user_agent": s.user_agent,
                        "client_addr": s.client_addr,
                        "clients": s.data.get("clients").cloned().unwrap_or_default(),
                    })
                })
                .collect();
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
                        row["clients"]
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
