//! The `provider` command line: `serve`, `migrate`, and the operator's tools for users,
//! clients, keys and sessions. It lives in the library so that tests drive the very same
//! commands in-process ([`run_args`]); output goes to an [`Io`], not straight to stdout.

use crate::registration::{self, ClientMetadata, Registrant};
use crate::store::{Client, Store};
use crate::{App, Config};
use clap::{Parser, Subcommand};
use infra::Clock;
use std::io::{BufRead, Write};

/// Where a command reads its input (passwords) and writes its output.
pub struct Io<'a> {
    pub input: &'a mut dyn BufRead,
    pub out: &'a mut dyn Write,
}

macro_rules! out {
    ($io:expr, $($arg:tt)*) => {
        writeln!($io.out, $($arg)*)?
    };
}

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
        command: UsersCommand,
    },
    /// List the signing keys, or rotate them.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Register and manage client apps; hand out initial access tokens for registration.
    Clients {
        #[command(subcommand)]
        command: ClientsCommand,
    },
    /// List or revoke users' SSO sessions (in the configured session store).
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// Read the audit trail: sign-ins, throttling, sessions, tokens, clients, keys.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// The newest events, oldest first; with --follow, then each new one as it happens.
    Tail {
        /// How many events.
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: u32,
        /// Keep watching for new events (until interrupted).
        #[arg(short, long)]
        follow: bool,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Every key: algorithm, kid, and whether it signs, is published ahead, or is retiring.
    List,
    /// Publish a new key for each algorithm; it signs after keys.publish_ahead (the running
    /// provider picks it up by itself), and the old one leaves once its tokens have expired.
    Rotate,
}

#[derive(Subcommand, Debug)]
enum UsersCommand {
    /// Create a user; the password is asked for (or read with --password-stdin).
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
        /// Read the password from standard input (otherwise: a prompt on the terminal).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Change a user's password (asked for, or --password-stdin); signs them out everywhere.
    Passwd {
        username: String,
        /// Read the password from standard input (otherwise: a prompt on the terminal).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account; signs the user out everywhere.
    Disable { username: String },
    /// Enable a disabled account.
    Enable { username: String },
    /// Delete an account; signs the user out everywhere first.
    Remove { username: String },
}

/// Client metadata on the command line; the same rules as the registration endpoint.
#[derive(clap::Args, Debug, Default)]
struct MetadataArgs {
    /// The app's name, shown on the consent screen.
    #[arg(long)]
    name: Option<String>,
    /// A redirect URI (repeat for several).
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// A post-logout redirect URI (repeat for several).
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// Where back-channel logout tokens are POSTed.
    #[arg(long)]
    backchannel_logout_uri: Option<String>,
    /// A grant type: authorization_code, refresh_token, client_credentials (repeat).
    #[arg(long = "grant-type")]
    grant_types: Vec<String>,
    /// client_secret_basic (default), client_secret_post, none, private_key_jwt.
    #[arg(long)]
    auth_method: Option<String>,
    /// The client's public keys for private_key_jwt: a JWK Set as JSON, or @FILE.
    #[arg(long)]
    jwks: Option<String>,
    /// ID token signing algorithm: RS256 (default) or ES256.
    #[arg(long)]
    id_token_alg: Option<String>,
}

#[derive(Subcommand, Debug)]
enum ClientsCommand {
    /// Register a client. Its secret is printed once and stored hashed.
    Add {
        #[command(flatten)]
        metadata: MetadataArgs,
        /// Choose the client id (default: random).
        #[arg(long)]
        client_id: Option<String>,
        /// A first-party app: its users are not asked for consent.
        #[arg(long)]
        first_party: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// List clients.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one client.
    Show {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Change a client: each option given replaces that setting.
    Update {
        client_id: String,
        #[command(flatten)]
        metadata: MetadataArgs,
        /// Set or clear the first-party flag (true or false).
        #[arg(long)]
        first_party: Option<bool>,
        #[arg(long)]
        json: bool,
    },
    /// Issue a new secret; the old one stops working at once.
    RotateSecret {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a client and everything issued to it.
    Remove { client_id: String },
    /// Print an initial access token for the registration endpoint (single use).
    InitialToken {
        /// How long it stays usable (e.g. 30m, 1h, 7d).
        #[arg(long, default_value = "1h")]
        ttl: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
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
            app.serve(listener, infra::shutdown::signal()).await?;
        }
        Command::Migrate => {
            let store = Store::connect(&config.database_url).await?;
            store.migrate().await?;
            out!(io, "database is up to date");
        }
        Command::Sessions { command } => manage_sessions(&config, command, io).await?,
        Command::Users { command } => manage_users(&config, command, io).await?,
        Command::Keys { command } => manage_keys(&config, command, io).await?,
        Command::Clients { command } => manage_clients(&config, command, io).await?,
        Command::Audit { command } => audit(&config, command, io).await?,
    }
    Ok(())
}

async fn audit(config: &Config, command: AuditCommand, io: &mut Io<'_>) -> anyhow::Result<()> {
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await?;
    let AuditCommand::Tail {
        lines,
        follow,
        json,
    } = command;
    let show = |io: &mut Io<'_>, row: &crate::store::AuditRow| -> anyhow::Result<()> {
        if json {
            out!(io, "{}", serde_json::to_string(row)?);
        } else {
            out!(io, "{}", crate::audit::format_line(row));
        }
        Ok(())
    };
    let mut last = None;
    for row in store.audit_tail(i64::from(lines)).await? {
        show(io, &row)?;
        last = Some((row.at_us, row.id));
    }
    io.out.flush()?;
    if !follow {
        return Ok(());
    }
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let (at, id) = last.clone().unwrap_or((0, String::new()));
        for row in store.audit_after(at, &id, 1000).await? {
            show(io, &row)?;
            last = Some((row.at_us, row.id));
        }
        io.out.flush()?;
    }
}

async fn manage_sessions(
    config: &Config,
    command: SessionsCommand,
    io: &mut Io<'_>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.session.store != crate::config::SessionBackend::Memory,
        "session.store is memory: those sessions live inside the running provider and \
         cannot be reached from here"
    );
    let store = crate::store::Store::connect(&config.database_url).await?;
    store.migrate().await?;
    let sessions = config
        .session
        .sessions(Some(store.db()), Clock::system())
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
                out!(io, "{}", serde_json::to_string_pretty(&rows)?);
            } else if rows.is_empty() {
                out!(io, "no live sessions");
            } else {
                out!(
                    io,
                    "{:<24}  {:<20}  {:<20}  {:<15}  apps",
                    "sid",
                    "started",
                    "last seen",
                    "address"
                );
                for (s, row) in list.iter().zip(&rows) {
                    out!(
                        io,
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
                Some(_) => out!(io, "session {sid} ended"),
                None => anyhow::bail!("no live session {sid}"),
            }
        }
        SessionsCommand::Revoke {
            user: Some(user), ..
        } => {
            let ended = sessions.revoke_user(&user_id(user.clone()).await?).await?;
            out!(io, "{} session(s) of {user} ended", ended.len());
        }
        SessionsCommand::Revoke { .. } => anyhow::bail!("give --sid or --user"),
    }
    Ok(())
}

/// The new password: the first line of standard input with `--password-stdin`, otherwise
/// typed twice at a prompt on the terminal (not echoed). Never an argument: those end up in
/// shell history and the process list.
fn read_password(io: &mut Io<'_>, from_stdin: bool) -> anyhow::Result<String> {
    let password = if from_stdin {
        let mut line = String::new();
        io.input.read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        let ask = |prompt: &str| {
            rpassword::prompt_password(prompt).map_err(|e| {
                anyhow::anyhow!(
                    "there is no terminal to ask for the password on ({e}); \
                     pipe it in with --password-stdin"
                )
            })
        };
        let first = ask("New password: ")?;
        let again = ask("Repeat it: ")?;
        anyhow::ensure!(first == again, "the two passwords differ");
        first
    };
    anyhow::ensure!(!password.is_empty(), "no password on standard input");
    anyhow::ensure!(
        password.len() <= crate::account::password::MAX_PASSWORD_BYTES,
        "the password is too long"
    );
    Ok(password)
}

async fn manage_users(
    config: &Config,
    command: UsersCommand,
    io: &mut Io<'_>,
) -> anyhow::Result<()> {
    let store = crate::store::Store::connect(&config.database_url).await?;
    store.migrate().await?;
    let clock = Clock::system();
    // Sessions to end on a password change or a disabled account. An in-memory store lives
    // inside the running provider and cannot be reached from here; the provider refuses
    // disabled users on their next request in any case.
    let sessions = match config.session.store {
        crate::config::SessionBackend::Memory => None,
        _ => Some(
            config
                .session
                .sessions(Some(store.db()), clock.clone())
                .await?,
        ),
    };
    match command {
        UsersCommand::Add {
            username,
            name,
            email,
            email_verified,
            developer,
            password_stdin,
        } => {
            let password = read_password(io, password_stdin)?;
            let user = crate::store::NewUser {
                username: username.clone(),
                password_hash: crate::account::password::hash(password).await?,
                name,
                email,
                email_verified,
                developer,
                ..crate::store::NewUser::default()
            };
            match store.create_user(&user, clock.unix()).await {
                Ok(u) => out!(io, "user {username} created (sub {})", u.id),
                Err(e) if crate::store::is_unique_violation(&e) => {
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
                out!(
                    io,
                    "{:<20} {:<36} {:<24} {flags}",
                    u.username,
                    u.id,
                    u.email.unwrap_or_default()
                );
            }
        }
        UsersCommand::Passwd {
            username,
            password_stdin,
        } => {
            let password = read_password(io, password_stdin)?;
            match &sessions {
                Some(s) => {
                    let n = crate::admin::change_password(&store, s, &username, password)
                        .await?
                        .len();
                    out!(
                        io,
                        "{n} session(s) ended; the apps are told through back-channel logout"
                    );
                }
                None => {
                    let user = store
                        .user_by_username(&username)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("no user named {username}"))?;
                    let hash = crate::account::password::hash(password).await?;
                    store
                        .set_password_hash(&user.id, &hash, clock.unix())
                        .await?;
                }
            }
            out!(io, "password of {username} changed");
        }
        UsersCommand::Disable { username } => {
            set_disabled(&store, sessions.as_ref(), &username, true, io).await?
        }
        UsersCommand::Enable { username } => {
            set_disabled(&store, sessions.as_ref(), &username, false, io).await?
        }
        UsersCommand::Remove { username } => {
            let ended = crate::admin::remove_user(&store, sessions.as_ref(), &username).await?;
            out!(
                io,
                "user {username} removed; {} session(s) ended, the apps are told through \
                 back-channel logout",
                ended.len()
            );
        }
    }
    Ok(())
}

async fn set_disabled(
    store: &crate::store::Store,
    sessions: Option<&sessions::Sessions>,
    username: &str,
    disable: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<()> {
    let sessions = sessions.ok_or_else(|| {
        anyhow::anyhow!("session.store is memory: its sessions live inside the running provider; use a shared session store")
    })?;
    let ended = crate::admin::set_disabled(store, sessions, username, disable).await?;
    if disable {
        out!(
            io,
            "{} session(s) ended; the apps are told through back-channel logout",
            ended.len()
        );
    }
    out!(
        io,
        "{username} is {}",
        if disable { "disabled" } else { "enabled" }
    );
    Ok(())
}

async fn manage_keys(config: &Config, command: KeysCommand, io: &mut Io<'_>) -> anyhow::Result<()> {
    let store = crate::store::Store::connect(&config.database_url).await?;
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
                out!(io, "{:<6} {:<44} {state}", k.alg, k.kid);
            }
        }
        KeysCommand::Rotate => {
            let ahead = i64::try_from(config.keys.publish_ahead.as_secs()).unwrap_or(900);
            for alg in crate::keys::Alg::ALL {
                let key = crate::keys::rotate(&store, alg, now, now + ahead).await?;
                out!(
                    io,
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

impl MetadataArgs {
    /// Applies the options given over `base` (an empty request for `add`, the client's
    /// current metadata for `update`).
    fn apply(self, mut base: ClientMetadata) -> anyhow::Result<ClientMetadata> {
        if let Some(name) = self.name {
            base.client_name = Some(name);
        }
        if !self.redirect_uris.is_empty() {
            base.redirect_uris = self.redirect_uris;
        }
        if !self.post_logout_redirect_uris.is_empty() {
            base.post_logout_redirect_uris = Some(self.post_logout_redirect_uris);
        }
        if let Some(uri) = self.backchannel_logout_uri {
            base.backchannel_logout_session_required = Some(!uri.is_empty());
            base.backchannel_logout_uri = Some(uri).filter(|u| !u.is_empty());
        }
        if !self.grant_types.is_empty() {
            base.grant_types = Some(self.grant_types);
        }
        if let Some(m) = self.auth_method {
            base.token_endpoint_auth_method = Some(m);
        }
        if let Some(a) = self.id_token_alg {
            base.id_token_signed_response_alg = Some(a);
        }
        if let Some(jwks) = self.jwks {
            let text = match jwks.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("cannot read {path}: {e}"))?,
                None => jwks,
            };
            base.jwks = Some(
                serde_json::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("--jwks is not JSON: {e}"))?,
            );
        }
        Ok(base)
    }
}

/// A client as the command line prints it: the RFC 7591 metadata and its operator fields.
fn client_json(client: &Client, secret: Option<&str>) -> serde_json::Value {
    let mut m = registration::describe(client);
    m.insert("first_party".into(), client.first_party.into());
    if let Some(secret) = secret {
        m.insert("client_secret".into(), secret.into());
    }
    serde_json::Value::Object(m)
}

fn print_client(io: &mut Io<'_>, c: &Client) -> anyhow::Result<()> {
    out!(io, "client_id          {}", c.client_id);
    out!(io, "name               {}", c.name);
    out!(io, "auth method        {}", c.auth_method.as_str());
    out!(io, "grant types        {}", c.grant_types.join(", "));
    out!(io, "redirect URIs      {}", c.redirect_uris.join(" "));
    out!(
        io,
        "post-logout URIs   {}",
        c.post_logout_redirect_uris.join(" ")
    );
    out!(
        io,
        "back-channel URI   {}",
        c.backchannel_logout_uri.as_deref().unwrap_or("-")
    );
    out!(io, "ID token alg       {}", c.id_token_alg);
    out!(
        io,
        "first party        {}",
        if c.first_party { "yes" } else { "no" }
    );
    Ok(())
}

/// Prints a secret that will not be shown again.
fn print_secret(io: &mut Io<'_>, secret: &str) -> anyhow::Result<()> {
    out!(io, "client_secret      {secret}");
    out!(
        io,
        "(shown once: it is stored hashed; `provider clients rotate-secret` issues a new one)"
    );
    Ok(())
}

async fn manage_clients(
    config: &Config,
    command: ClientsCommand,
    io: &mut Io<'_>,
) -> anyhow::Result<()> {
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await?;
    let now = Clock::system().unix();
    let find = |id: String| {
        let store = store.clone();
        async move {
            store
                .client(&id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no client {id}"))
        }
    };
    match command {
        ClientsCommand::Add {
            metadata,
            client_id,
            first_party,
            json,
        } => {
            let valid = metadata.apply(ClientMetadata::default())?.validate()?;
            let who = Registrant {
                client_id,
                first_party,
                ..Registrant::default()
            };
            let done = registration::register(&store, valid, &who, now).await?;
            if json {
                let v = client_json(&done.client, done.client_secret.as_deref());
                out!(io, "{}", serde_json::to_string_pretty(&v)?);
            } else {
                out!(io, "client {} registered", done.client.client_id);
                print_client(io, &done.client)?;
                if let Some(secret) = &done.client_secret {
                    print_secret(io, secret)?;
                }
            }
        }
        ClientsCommand::List { json } => {
            let clients = store.list_clients().await?;
            if json {
                let list: Vec<_> = clients.iter().map(|c| client_json(c, None)).collect();
                out!(io, "{}", serde_json::to_string_pretty(&list)?);
            } else if clients.is_empty() {
                out!(io, "no clients");
            } else {
                out!(
                    io,
                    "{:<34}  {:<24}  {:<20}  redirect URIs",
                    "client_id",
                    "name",
                    "auth method"
                );
                for c in &clients {
                    out!(
                        io,
                        "{:<34}  {:<24}  {:<20}  {}",
                        c.client_id,
                        c.name,
                        c.auth_method.as_str(),
                        c.redirect_uris.join(" ")
                    );
                }
            }
        }
        ClientsCommand::Show { client_id, json } => {
            let c = find(client_id).await?;
            if json {
                out!(
                    io,
                    "{}",
                    serde_json::to_string_pretty(&client_json(&c, None))?
                );
            } else {
                print_client(io, &c)?;
            }
        }
        ClientsCommand::Update {
            client_id,
            metadata,
            first_party,
            json,
        } => {
            let c = find(client_id).await?;
            let valid = metadata.apply(registration::metadata_of(&c))?.validate()?;
            let done = registration::update(&store, c, valid, first_party, now).await?;
            if json {
                let v = client_json(&done.client, done.client_secret.as_deref());
                out!(io, "{}", serde_json::to_string_pretty(&v)?);
            } else {
                out!(io, "client {} updated", done.client.client_id);
                print_client(io, &done.client)?;
                if let Some(secret) = &done.client_secret {
                    print_secret(io, secret)?;
                }
            }
        }
        ClientsCommand::RotateSecret { client_id, json } => {
            let c = find(client_id).await?;
            let secret = registration::rotate_secret(&store, &c, now).await?;
            if json {
                let v = serde_json::json!({"client_id": c.client_id, "client_secret": secret});
                out!(io, "{}", serde_json::to_string_pretty(&v)?);
            } else {
                out!(
                    io,
                    "client {}: new secret issued; the old one no longer works",
                    c.client_id
                );
                print_secret(io, &secret)?;
            }
        }
        ClientsCommand::Remove { client_id } => {
            let c = find(client_id.clone()).await?;
            anyhow::ensure!(
                registration::remove(&store, &c, now).await?,
                "no client {client_id}"
            );
            out!(
                io,
                "client {client_id} removed, with every code and token issued to it"
            );
        }
        ClientsCommand::InitialToken { ttl, json } => {
            let ttl = humantime::parse_duration(ttl.trim())
                .map_err(|e| anyhow::anyhow!("--ttl {ttl}: {e}"))?;
            anyhow::ensure!(!ttl.is_zero(), "--ttl must be longer than zero");
            let secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
            let (token, expires_at) =
                registration::issue_initial_access_token(&store, now, secs).await?;
            let at = time::OffsetDateTime::from_unix_timestamp(expires_at)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default();
            if json {
                let v = serde_json::json!({"token": token, "expires_at": at});
                out!(io, "{}", serde_json::to_string_pretty(&v)?);
            } else {
                out!(io, "{token}");
                out!(
                    io,
                    "(an initial access token for {}{}: one registration, until {at})",
                    config.issuer.as_str().trim_end_matches('/'),
                    registration::paths::REGISTRATION
                );
            }
        }
    }
    Ok(())
}
