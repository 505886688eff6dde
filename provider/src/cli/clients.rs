//! `provider clients …`: registering and managing client apps, through the same rules as the
//! developer console and the registration endpoint (`protocol::registration`).

use super::io::{Io, rfc3339, store};
use crate::Config;
use crate::audit::{self, Event, Kind};
use crate::protocol::registration::{self, ClientMetadata, Registered, Registrant};
use crate::store::{Client, ClientFlag, Store};
use crate::types::AuthMethod;
use clap::Subcommand;
use infra::Clock;

/// Client metadata on the command line; the same rules as the registration endpoint.
#[derive(clap::Args, Debug, Default)]
pub(super) struct MetadataArgs {
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
    /// Where the app is framed, with `iss` and `sid`, by the provider's signed-out page
    /// (Front-Channel Logout; same scheme, host and port as a redirect URI; '' removes it).
    #[arg(long)]
    frontchannel_logout_uri: Option<String>,
    /// A grant type: authorization_code, refresh_token, client_credentials,
    /// urn:ietf:params:oauth:grant-type:token-exchange,
    /// urn:ietf:params:oauth:grant-type:device_code (repeat).
    #[arg(long = "grant-type")]
    grant_types: Vec<String>,
    /// client_secret_basic (default), client_secret_post, none, private_key_jwt.
    #[arg(long)]
    auth_method: Option<String>,
    /// The client's public keys for private_key_jwt: a JWK Set as JSON, or @FILE.
    #[arg(long)]
    jwks: Option<String>,
    /// ID token signing algorithm: RS256 (default), ES256 or EdDSA (Ed25519).
    #[arg(long)]
    id_token_alg: Option<String>,
    /// A level of sign-in asked when a request names none: urn:gatehouse:acr:pwd or
    /// urn:gatehouse:acr:mfa (repeat, in order of preference; '' clears them).
    #[arg(long = "default-acr-value")]
    default_acr_values: Vec<String>,
    /// Whether every authorization request must be pushed first (RFC 9126 PAR).
    #[arg(long, action = clap::ArgAction::Set)]
    require_par: Option<bool>,
    /// Whether every token request must carry a DPoP proof (RFC 9449 §5.2).
    #[arg(long, action = clap::ArgAction::Set)]
    require_dpop: Option<bool>,
}

#[derive(Subcommand, Debug)]
pub(super) enum ClientsCommand {
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
        /// Every sign-in for this app needs two factors, whatever its requests ask.
        #[arg(long)]
        require_mfa: bool,
        /// Whether its authorization requests must carry PKCE (default true; false only for a
        /// confidential client, such as a certification suite's that sends no challenge).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        require_pkce: bool,
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
        /// Whether every sign-in for this app needs two factors (true or false).
        #[arg(long)]
        require_mfa: Option<bool>,
        /// Whether its authorization requests must carry PKCE (true or false; false only for
        /// a confidential client).
        #[arg(long)]
        require_pkce: Option<bool>,
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

pub(super) async fn run(
    config: &Config,
    command: ClientsCommand,
    io: &mut Io<'_>,
) -> anyhow::Result<()> {
    let store = store(config).await?;
    let outbound = config.outbound.policy()?;
    let now = Clock::system().unix();
    match command {
        ClientsCommand::Add {
            metadata,
            client_id,
            first_party,
            require_mfa,
            require_pkce,
            json,
        } => {
            let valid = metadata
                .apply(ClientMetadata::default())?
                .validate(&outbound)?;
            if !require_pkce {
                confidential(valid.auth_method)?;
            }
            let who = Registrant {
                client_id,
                first_party,
                ..Registrant::default()
            };
            let mut done = registration::register(&store, valid, &who, now).await?;
            if require_mfa {
                set_flag(&store, &mut done.client, ClientFlag::RequireMfa, true, now).await?;
            }
            if !require_pkce {
                set_flag(
                    &store,
                    &mut done.client,
                    ClientFlag::RequirePkce,
                    false,
                    now,
                )
                .await?;
            }
            show_registered(io, "registered", &done, json)?;
        }
        ClientsCommand::List { json } => list(&store, json, io).await?,
        ClientsCommand::Show { client_id, json } => {
            let c = find(&store, &client_id).await?;
            show_client(io, &c, json)?;
        }
        ClientsCommand::Update {
            client_id,
            metadata,
            first_party,
            require_mfa,
            require_pkce,
            json,
        } => {
            let c = find(&store, &client_id).await?;
            let valid = metadata
                .apply(registration::metadata_of(&c))?
                .validate(&outbound)?;
            if require_pkce == Some(false) || (!c.require_pkce && require_pkce.is_none()) {
                // Off, or left off: the client as it will be must keep a secret.
                confidential(valid.auth_method)?;
            }
            let mut done = registration::update(&store, c, valid, first_party, now).await?;
            if let Some(required) = require_mfa {
                set_flag(
                    &store,
                    &mut done.client,
                    ClientFlag::RequireMfa,
                    required,
                    now,
                )
                .await?;
            }
            if let Some(required) = require_pkce {
                set_flag(
                    &store,
                    &mut done.client,
                    ClientFlag::RequirePkce,
                    required,
                    now,
                )
                .await?;
            }
            show_registered(io, "updated", &done, json)?;
        }
        ClientsCommand::RotateSecret { client_id, json } => {
            rotate_secret(&store, &client_id, json, now, io).await?
        }
        ClientsCommand::Remove { client_id } => remove(&store, &client_id, now, io).await?,
        ClientsCommand::InitialToken { ttl, json } => {
            initial_token(config, &store, &ttl, json, now, io).await?
        }
    }
    Ok(())
}

/// Sets one of an operator's settings on `client` (stored, audited, and in the copy printed).
async fn set_flag(
    store: &Store,
    client: &mut Client,
    which: ClientFlag,
    on: bool,
    now: i64,
) -> anyhow::Result<()> {
    if !store.set_client_flag(&client.client_id, which, on).await? {
        anyhow::bail!("no client {}", client.client_id);
    }
    match which {
        ClientFlag::RequireMfa => client.require_mfa = on,
        ClientFlag::RequirePkce => client.require_pkce = on,
    }
    let event = Event::new(Kind::ClientUpdated)
        .client(&client.client_id)
        .detail(format!("{} {on}, by an operator", which.name()));
    audit::record_secs(store, now, event).await;
    Ok(())
}

/// PKCE may be turned off only for a client that authenticates at the token endpoint: a
/// public client's codes have nothing else to protect them (RFC 9700 §2.1.1).
fn confidential(method: AuthMethod) -> anyhow::Result<()> {
    if method == AuthMethod::None {
        anyhow::bail!(
            "PKCE stays required for a public client (token_endpoint_auth_method none): \
             nothing else protects its codes"
        );
    }
    Ok(())
}

async fn find(store: &Store, id: &str) -> anyhow::Result<Client> {
    store
        .client(id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no client {id}"))
}

fn show_registered(
    io: &mut Io<'_>,
    what: &str,
    done: &Registered,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        let v = client_json(&done.client, done.client_secret.as_deref());
        out!(io, "{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    out!(io, "client {} {what}", done.client.client_id);
    print_client(io, &done.client)?;
    if let Some(secret) = &done.client_secret {
        print_secret(io, secret)?;
    }
    Ok(())
}

fn show_client(io: &mut Io<'_>, c: &Client, json: bool) -> anyhow::Result<()> {
    if json {
        out!(
            io,
            "{}",
            serde_json::to_string_pretty(&client_json(c, None))?
        );
        Ok(())
    } else {
        print_client(io, c)
    }
}

async fn list(store: &Store, json: bool, io: &mut Io<'_>) -> anyhow::Result<()> {
    let clients = store.list_clients().await?;
    if json {
        let list: Vec<_> = clients.iter().map(|c| client_json(c, None)).collect();
        out!(io, "{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if clients.is_empty() {
        out!(io, "no clients");
        return Ok(());
    }
    let head = ("client_id", "name", "auth method");
    out!(
        io,
        "{:<34}  {:<24}  {:<20}  redirect URIs",
        head.0,
        head.1,
        head.2
    );
    for c in &clients {
        let uris = c.redirect_uris.join(" ");
        out!(
            io,
            "{:<34}  {:<24}  {:<20}  {uris}",
            c.client_id,
            c.name,
            c.auth_method
        );
    }
    Ok(())
}

async fn rotate_secret(
    store: &Store,
    client_id: &str,
    json: bool,
    now: i64,
    io: &mut Io<'_>,
) -> anyhow::Result<()> {
    let c = find(store, client_id).await?;
    let secret = registration::rotate_secret(store, &c, now).await?;
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
    Ok(())
}

async fn remove(store: &Store, client_id: &str, now: i64, io: &mut Io<'_>) -> anyhow::Result<()> {
    let c = find(store, client_id).await?;
    anyhow::ensure!(
        registration::remove(store, &c, now).await?,
        "no client {client_id}"
    );
    out!(
        io,
        "client {client_id} removed, with every code and token issued to it"
    );
    Ok(())
}

async fn initial_token(
    config: &Config,
    store: &Store,
    ttl: &str,
    json: bool,
    now: i64,
    io: &mut Io<'_>,
) -> anyhow::Result<()> {
    let ttl =
        humantime::parse_duration(ttl.trim()).map_err(|e| anyhow::anyhow!("--ttl {ttl}: {e}"))?;
    anyhow::ensure!(!ttl.is_zero(), "--ttl must be longer than zero");
    let (token, expires_at) =
        registration::issue_initial_access_token(store, now, infra::secs(ttl)).await?;
    let at = rfc3339(expires_at);
    if json {
        let v = serde_json::json!({"token": token, "expires_at": at});
        out!(io, "{}", serde_json::to_string_pretty(&v)?);
    } else {
        out!(io, "{token}");
        let endpoint = format!("{}{}", config.issuer_str(), crate::paths::REGISTRATION);
        out!(
            io,
            "(an initial access token for {endpoint}: one registration, until {at})"
        );
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
        if let Some(uri) = self.frontchannel_logout_uri {
            base.frontchannel_logout_session_required = Some(!uri.is_empty());
            base.frontchannel_logout_uri = Some(uri).filter(|u| !u.is_empty());
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
        if let Some(on) = self.require_par {
            base.require_pushed_authorization_requests = Some(on);
        }
        if let Some(on) = self.require_dpop {
            base.dpop_bound_access_tokens = Some(on);
        }
        if !self.default_acr_values.is_empty() {
            let values = self
                .default_acr_values
                .into_iter()
                .filter(|v| !v.is_empty());
            base.default_acr_values = Some(values.collect());
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
    m.insert("require_mfa".into(), client.require_mfa.into());
    m.insert("require_pkce".into(), client.pkce_required().into());
    if let Some(secret) = secret {
        m.insert("client_secret".into(), secret.into());
    }
    serde_json::Value::Object(m)
}

fn print_client(io: &mut Io<'_>, c: &Client) -> anyhow::Result<()> {
    out!(io, "client_id          {}", c.client_id);
    out!(io, "name               {}", c.name);
    let grants: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
    out!(io, "auth method        {}", c.auth_method);
    out!(io, "grant types        {}", grants.join(", "));
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
    out!(
        io,
        "front-channel URI  {}",
        c.frontchannel_logout_uri.as_deref().unwrap_or("-")
    );
    out!(io, "ID token alg       {}", c.id_token_alg);
    out!(
        io,
        "first party        {}",
        if c.first_party { "yes" } else { "no" }
    );
    let levels: Vec<&str> = c.default_acr_values.iter().map(|l| l.as_str()).collect();
    out!(io, "default acr values {}", levels.join(" "));
    out!(
        io,
        "requires 2 factors {}",
        if c.require_mfa { "yes" } else { "no" }
    );
    out!(
        io,
        "requires PKCE      {}",
        if c.pkce_required() { "yes" } else { "no" }
    );
    out!(
        io,
        "requires PAR       {}",
        if c.require_par { "yes" } else { "no" }
    );
    out!(
        io,
        "requires DPoP      {}",
        if c.dpop_bound { "yes" } else { "no" }
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
