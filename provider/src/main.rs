//! The `provider` binary: see [`provider::cli`] for its commands.

use clap::Parser;
use std::io::Write;

/// mimalloc rather than the system allocator: glibc keeps the 19 MiB that each argon2 hash
/// allocates in one of its per-thread arenas after it is freed (a few hundred MiB after a
/// burst of sign-ins), where mimalloc returns it to the system; it is also faster for the
/// many small allocations of request handling. Measured in README.md, "Performance".
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
