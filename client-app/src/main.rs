//! The `client-app` binary: one instance of the sample relying party
//! (configuration: client-app.toml and CLIENT_APP_… variables).

use client_app::{App, Config};
use infra::Clock;

/// The same allocator as the provider (see `provider/src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let config = Config::load(&Config::figment())?;
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(name = %config.name, url = %config.public_url, "client app listening");
    let app = App::new(config, Clock::system()).await?;
    app.serve(listener, infra::shutdown::signal_then_force())
        .await?;
    Ok(())
}
