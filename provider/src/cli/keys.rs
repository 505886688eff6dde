//! `provider keys list|rotate`: the signing keys, and rotating them by hand.

use super::io::{Io, rfc3339, store};
use crate::Config;
use crate::store::StoredKey;
use clap::Subcommand;
use infra::Clock;

#[derive(Subcommand, Debug)]
pub(super) enum KeysCommand {
    /// Every key: algorithm, kid, and whether it signs, is published ahead, or is retiring.
    List,
    /// Publish a new key for each algorithm; it signs after keys.publish_ahead (the running
    /// provider picks it up by itself), and the old one leaves once its tokens have expired.
    Rotate,
}

pub(super) async fn run(
    config: &Config,
    command: KeysCommand,
    io: &mut Io<'_>,
) -> anyhow::Result<()> {
    let store = store(config).await?;
    let now = Clock::system().unix();
    match command {
        KeysCommand::List => {
            let stored = store.signing_keys().await?;
            for k in &stored {
                out!(io, "{:<6} {:<44} {}", k.alg, k.kid, state(k, &stored, now));
            }
        }
        KeysCommand::Rotate => {
            let ahead = infra::secs(config.keys.publish_ahead);
            let stored = store.signing_keys().await?;
            for alg in crate::keys::kept_algs(&config.keys.algorithms, &stored) {
                let key = crate::keys::rotate(&store, alg, now, now + ahead).await?;
                let at = rfc3339(key.activates_at);
                out!(io, "{:<6} {:<44} published, signs from {at}", alg, key.kid);
            }
        }
    }
    Ok(())
}

/// Whether `k` signs, is published ahead of signing, or is retiring.
fn state(k: &StoredKey, all: &[StoredKey], now: i64) -> String {
    let newer_active = all
        .iter()
        .any(|n| n.alg == k.alg && n.activates_at > k.activates_at && n.activates_at <= now);
    if k.activates_at > now {
        format!("published, signs from {}", rfc3339(k.activates_at))
    } else if newer_active {
        "retiring (verifies, no longer signs)".to_owned()
    } else {
        "signing".to_owned()
    }
}
