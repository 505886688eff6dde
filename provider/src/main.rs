//! The `provider` binary: see [`provider::cli`] for its commands.

use clap::Parser;
use std::io::Write;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = provider::cli::Cli::parse();
    let config = provider::Config::load(&provider::Config::figment())?;
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = provider::cli::run(
        cli,
        config,
        &mut provider::cli::Io {
            input: &mut input,
            out: &mut out,
        },
    )
    .await;
    out.flush()?;
    result
}
