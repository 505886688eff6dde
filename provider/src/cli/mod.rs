//! The `provider` command line: `serve`, `migrate`, and the operator's tools for users,
//! clients, resources, keys, sessions, the audit trail, backups and a self-check (`doctor`), one
//! file each. It lives in the library so that
//! tests drive the very same commands in-process ([`run_args`]); output goes to an [`Io`], not
//! straight to stdout.

/// Writes a line of a command's output.
macro_rules! out {
    ($io:expr, $($arg:tt)*) => {
        writeln!($io.out, $($arg)*)?
    };
}

mod audit;
mod backup;
mod clients;
mod doctor;
mod io;
mod keys;
mod resources;
mod sessions;
mod users;

pub use io::Io;

use crate::store::Store;
use crate::{App, Config};
use clap::{Parser, Subcommand};
use infra::Clock;

#[derive(Parser, Debug)]
#[command(
    name = "provider",
    version,
    about = "Gatehouse OpenID Connect provider"
)]
pub struct Cli {
    /// Database URL (`sqlite://…?mode=rwc` or `postgres://…`); overrides the configuration.
    #[arg(long, env = "PROVIDER_DATABASE_URL", global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the provider (configuration: provider.toml and PROVIDER_… variables).
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage user accounts. Passwords are typed at a prompt or piped in, never arguments.
    Users {
        #[command(subcommand)]
        command: users::UsersCommand,
    },
    /// List the signing keys, or rotate them.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Register and manage client apps; hand out initial access tokens for registration.
    Clients {
        #[command(subcommand)]
        command: clients::ClientsCommand,
    },
    /// Register the APIs that accept Gatehouse access tokens (RFC 8707 resources).
    Resources {
        #[command(subcommand)]
        command: resources::ResourcesCommand,
    },
    /// List or revoke users' SSO sessions (in the configured session store).
    Sessions {
        #[command(subcommand)]
        command: sessions::SessionsCommand,
    },
    /// Read the audit trail: sign-ins, throttling, sessions, tokens, clients, keys.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Check a deployment from here: the issuer and its discovery, keys, clocks, the cookie as
    /// served, apps' back-channel endpoints, replication. Fails on a problem.
    Doctor,
    /// Write a consistent copy of the SQLite database to a new FILE, while the provider
    /// serves (PostgreSQL: use pg_dump).
    Backup { file: std::path::PathBuf },
    /// Replace the SQLite database with the copy in FILE (made by `backup`). Stop every
    /// provider instance first.
    Restore {
        file: std::path::PathBuf,
        /// Restore even though an instance seems to be at work on the database.
        #[arg(long)]
        force: bool,
    },
}

/// Runs a command line (`args[0]` is the program name) against `config` (what `provider.toml`
/// and the environment would give) with `input` as standard input, and returns what it
/// printed. For tests and scripts; `main` uses [`run`].
pub async fn run_args<I, T>(config: Config, args: I, input: &str) -> anyhow::Result<String>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::try_parse_from(args)?;
    let mut reader = std::io::Cursor::new(input.as_bytes().to_vec());
    let mut out = Vec::new();
    let mut io = Io {
        input: &mut reader,
        out: &mut out,
    };
    run(cli, config, &mut io).await?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Runs one command against `config` (the `--database-url` option wins over it).
pub async fn run(cli: Cli, mut config: Config, io: &mut Io<'_>) -> anyhow::Result<()> {
    if let Some(url) = cli.database_url {
        config.database_url = url;
    }
    match cli.command {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(config.listen).await?;
            tracing::info!(issuer = %config.issuer, listen = %config.listen, "provider listening");
            let app = App::new(config, Clock::system()).await?;
            app.serve(listener, infra::shutdown::signal_then_force())
                .await?;
        }
        Command::Migrate => {
            let store = Store::connect(&config.database_url).await?;
            store.migrate().await?;
            out!(io, "database is up to date");
        }
        Command::Sessions { command } => sessions::run(&config, command, io).await?,
        Command::Users { command } => users::run(&config, command, io).await?,
        Command::Keys { command } => keys::run(&config, command, io).await?,
        Command::Clients { command } => clients::run(&config, command, io).await?,
        Command::Audit { command } => audit::run(&config, command, io).await?,
        Command::Resources { command } => resources::run(&config, command, io).await?,
        Command::Doctor => doctor::run(&config, io).await?,
        Command::Backup { file } => backup::backup(&config, file, io).await?,
        Command::Restore { file, force } => backup::restore(&config, file, force, io).await?,
    }
    Ok(())
}
