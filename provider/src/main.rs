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
    }
    Ok(())
}
