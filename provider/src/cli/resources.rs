//! `provider resources …`: registering the APIs that accept Gatehouse access tokens, through
//! the rules of `protocol::resources`.

use super::io::{Io, rfc3339, store};
use crate::Config;
use crate::protocol::resources::{self, ResourceSpec};
use crate::store::{ExchangeRule, Resource};
use crate::types::Alg;
use clap::Subcommand;
use infra::Clock;

#[derive(Subcommand, Debug)]
pub(super) enum ResourcesCommand {
    /// Register an API. Clients ask for its tokens with `resource=ID` (RFC 8707); the tokens'
    /// `aud` is ID.
    Add {
        /// The resource indicator: the API's https URI (http only on loopback/*.localhost).
        #[arg(long)]
        id: String,
        /// A name shown on the consent screen (default: the indicator).
        #[arg(long)]
        name: Option<String>,
        /// A scope the API defines (repeat for several), e.g. notes:read.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// How long its access tokens live (30s to 1h; default 5m).
        #[arg(long)]
        access_token_lifetime: Option<String>,
        /// How its access tokens are signed: RS256 (default; every RFC 9068 API supports it)
        /// or ES256 (cheaper to sign).
        #[arg(long)]
        access_token_alg: Option<String>,
        /// The confidential client the API authenticates as, to introspect its tokens.
        #[arg(long)]
        client: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List the registered APIs.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove an API: no new token is issued for it, and no grant or consent names it.
    Remove { id: String },
    /// Let an API's client exchange the user tokens presented to its API for tokens addressed
    /// to another API (RFC 8693 token exchange, on the user's behalf).
    AllowExchange {
        /// The acting API's client (confidential, registered for the token-exchange grant).
        #[arg(long)]
        client: String,
        /// The API the exchanged tokens are for.
        #[arg(long)]
        to: String,
        /// A scope of that API the client may obtain (repeat; default: all of them).
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    /// Withdraw a token-exchange rule (tokens already exchanged expire within their lifetime).
    DisallowExchange {
        #[arg(long)]
        client: String,
        #[arg(long)]
        to: String,
    },
}

pub(super) async fn run(
    config: &Config,
    command: ResourcesCommand,
    io: &mut Io<'_>,
) -> anyhow::Result<()> {
    let store = store(config).await?;
    match command {
        ResourcesCommand::Add {
            id,
            name,
            scopes,
            access_token_lifetime,
            access_token_alg,
            client,
            json,
        } => {
            let alg = access_token_alg
                .map(|a| {
                    // RFC 9068 §2.1 asks every API to take RS256; ES256 is offered too. EdDSA
                    // stays for ID tokens, whose key an operator may not have enabled.
                    Alg::parse(&a)
                        .filter(|alg| matches!(alg, Alg::RS256 | Alg::ES256))
                        .ok_or_else(|| anyhow::anyhow!("--access-token-alg {a}: RS256 or ES256"))
                })
                .transpose()?;
            let lifetime = access_token_lifetime
                .map(|t| {
                    humantime::parse_duration(t.trim())
                        .map_err(|e| anyhow::anyhow!("--access-token-lifetime {t}: {e}"))
                })
                .transpose()?;
            let client = match client {
                Some(c) => Some(
                    store
                        .client(&c)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("no client {c}"))?,
                ),
                None => None,
            };
            let spec = ResourceSpec {
                resource_id: id,
                name,
                scopes,
                access_token_lifetime: lifetime,
                access_token_alg: alg,
            };
            let now = Clock::system().unix();
            let issuer = config.issuer_str();
            let new = resources::validate(spec, client.as_ref(), &issuer, now)?;
            anyhow::ensure!(
                store.add_resource(&new).await?,
                "a resource {} is already registered",
                new.0.resource_id
            );
            if json {
                out!(
                    io,
                    "{}",
                    serde_json::to_string_pretty(&resource_json(&new.0, &[]))?
                );
            } else {
                out!(io, "resource {} registered", new.0.resource_id);
                print(io, &new.0, &[])?;
            }
        }
        ResourcesCommand::List { json } => {
            let all = store.resources().await?;
            let rules = store.exchange_rules().await?;
            if json {
                let list: Vec<_> = all.iter().map(|r| resource_json(r, &rules)).collect();
                out!(io, "{}", serde_json::to_string_pretty(&list)?);
            } else if all.is_empty() {
                out!(io, "no resources");
            } else {
                for r in &all {
                    print(io, r, &rules)?;
                }
            }
        }
        ResourcesCommand::AllowExchange { client, to, scopes } => {
            let found = store.client(&client).await?;
            let client = found.ok_or_else(|| anyhow::anyhow!("no client {client}"))?;
            let api = store.resource(&to).await?;
            let api = api.ok_or_else(|| anyhow::anyhow!("no resource {to}"))?;
            let apis = store.resources().await?;
            let rule = resources::exchange_rule(&client, &apis, &api, &scopes)?;
            store.allow_exchange(&rule, Clock::system().unix()).await?;
            out!(
                io,
                "{} may exchange for tokens to {} with {}",
                rule.client_id,
                rule.resource_id,
                rule.scopes
            );
        }
        ResourcesCommand::DisallowExchange { client, to } => {
            let had = store.disallow_exchange(&client, &to).await?;
            anyhow::ensure!(had, "no exchange rule for {client} to {to}");
            out!(io, "{client} may no longer exchange for tokens to {to}");
        }
        ResourcesCommand::Remove { id } => {
            anyhow::ensure!(store.remove_resource(&id).await?, "no resource {id}");
            out!(
                io,
                "resource {id} removed; tokens already issued for it expire within their lifetime"
            );
        }
    }
    Ok(())
}

/// Who may exchange for tokens to `r`, with what: (client, scopes).
fn exchangers<'a>(r: &Resource, rules: &'a [ExchangeRule]) -> Vec<(&'a str, String)> {
    rules
        .iter()
        .filter(|x| x.resource_id == r.resource_id)
        .map(|x| (x.client_id.as_str(), x.scopes.to_string()))
        .collect()
}

fn resource_json(r: &Resource, rules: &[ExchangeRule]) -> serde_json::Value {
    let exchange: Vec<_> = exchangers(r, rules)
        .into_iter()
        .map(|(client, scopes)| serde_json::json!({"client_id": client, "scopes": scopes}))
        .collect();
    serde_json::json!({
        "exchange_from": exchange,
        "resource": r.resource_id,
        "name": r.name,
        "scopes": r.scopes.iter().collect::<Vec<_>>(),
        "access_token_lifetime": r.access_token_lifetime,
        "access_token_alg": r.access_token_alg,
        "client_id": r.client_id,
        "created_at": rfc3339(r.created_at),
    })
}

fn print(io: &mut Io<'_>, r: &Resource, rules: &[ExchangeRule]) -> anyhow::Result<()> {
    out!(io, "resource           {}", r.resource_id);
    out!(io, "name               {}", r.name);
    out!(io, "scopes             {}", r.scopes);
    out!(io, "token lifetime     {}s", r.access_token_lifetime);
    out!(io, "token algorithm    {}", r.access_token_alg);
    out!(
        io,
        "introspects as     {}",
        r.client_id.as_deref().unwrap_or("-")
    );
    for (client, scopes) in exchangers(r, rules) {
        out!(io, "exchanged for by   {client} ({scopes})");
    }
    Ok(())
}
