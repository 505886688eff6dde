//! `notes-api`: the demo's Notes API (and, with `--audit-listen`, the Audit API it calls) as a
//! program of its own. `cargo run` at the top of the workspace starts both with the rest.

use clap::Parser;
use notes_api::Settings;
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(name = "notes-api", about = "Gatehouse demo: the Notes API")]
struct Args {
    /// The provider's issuer.
    #[arg(
        long,
        env = "NOTES_ISSUER",
        default_value = "http://idp.localhost:4000"
    )]
    issuer: String,
    #[arg(long, env = "NOTES_LISTEN", default_value = "127.0.0.1:5003")]
    listen: std::net::SocketAddr,
    /// This API's resource indicator.
    #[arg(
        long,
        env = "NOTES_AUDIENCE",
        default_value = "http://api.localhost:5003"
    )]
    audience: String,
    #[arg(long, env = "NOTES_CLIENT_ID", default_value = "notes-api")]
    client_id: String,
    #[arg(long, env = "NOTES_CLIENT_SECRET")]
    client_secret: String,
    /// The Audit API's indicator: each new note is recorded there on the user's behalf.
    #[arg(long, env = "NOTES_AUDIT")]
    audit: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let settings = Settings {
        issuer: args.issuer,
        audience: args.audience,
        client_id: args.client_id,
        client_secret: args.client_secret,
        public_url: None,
    };
    let http = infra::http::client_builder().build()?;
    let audit = args.audit.map(|a| notes_api::AuditApi {
        resource: a.clone(),
        url: a,
    });
    let api = notes_api::notes(settings, audit, http, infra::Clock::system()).await?;
    let listener = TcpListener::bind(args.listen).await?;
    tracing::info!(addr = %args.listen, "the Notes API is listening");
    axum::serve(listener, api.router)
        .with_graceful_shutdown(infra::shutdown::signal_then_force())
        .await?;
    drop(api.listener);
    Ok(())
}
