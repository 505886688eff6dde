//! `gatehouse-cli login`: see the library (`gatehouse_cli`).

use clap::{Parser, Subcommand};
use std::io::Write;
use std::process::ExitCode;
use url::Url;

#[derive(Parser)]
#[command(about = "A sample command-line client of Gatehouse")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign in through a browser on any device (RFC 8628), then print who signed in.
    Login {
        /// The provider's issuer URL.
        #[arg(
            long,
            env = "GATEHOUSE_ISSUER",
            default_value = "http://idp.localhost:4000"
        )]
        issuer: Url,
        /// This app's client id (a client registered for the device flow).
        #[arg(long, env = "GATEHOUSE_CLIENT_ID", default_value = "gatehouse-cli")]
        client_id: String,
        /// The scopes to ask for, space-separated.
        #[arg(long, default_value = "openid profile email")]
        scope: String,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let Command::Login {
        issuer,
        client_id,
        scope,
    } = Cli::parse().command;
    let login = gatehouse_cli::Login {
        issuer,
        client_id,
        scopes: scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    let http = match infra::http::client_builder().build() {
        Ok(http) => http,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let show = |p: &gatehouse_cli::Prompt| {
        eprintln!("To sign in, open {}", p.verification_uri);
        eprintln!("and enter the code {}", p.user_code);
        if let Some(direct) = &p.verification_uri_complete {
            eprintln!("(or open {direct})");
        }
        eprintln!(
            "The code expires in {} minutes. Waiting…",
            p.expires_in.as_secs() / 60
        );
    };
    match gatehouse_cli::login(&http, &login, show).await {
        Ok(claims) => {
            let text = serde_json::to_string_pretty(&claims).unwrap_or_default();
            let _ = writeln!(std::io::stdout(), "{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
