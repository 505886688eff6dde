//! `provider sessions list|revoke`: users' SSO sessions in the configured session store.

use super::io::{Io, store};
use crate::Config;
use crate::config::SessionBackend;
use crate::store::Store;
use crate::users::admin;
use clap::Subcommand;
use infra::Clock;
use sessions::SessionInfo;
use time::format_description::well_known::Rfc3339;

#[derive(Subcommand, Debug)]
pub(super) enum SessionsCommand {
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
        /// A sid is random base64url and may begin with `-`, so a value that looks like an
        /// option is still taken as the sid.
        #[arg(
            long,
            conflicts_with = "user",
            required_unless_present = "user",
            allow_hyphen_values = true
        )]
        sid: Option<String>,
        #[arg(long)]
        user: Option<String>,
    },
}

pub(super) async fn run(
    config: &Config,
    command: SessionsCommand,
    io: &mut Io<'_>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.session.store != SessionBackend::Memory,
        "session.store is memory: those sessions live inside the running provider and \
         cannot be reached from here"
    );
    let store = store(config).await?;
    let sessions = config
        .session
        .sessions(Some(store.db()), Clock::system())
        .await?;
    match command {
        SessionsCommand::List { user, json } => {
            let list = sessions
                .list_for_user(&user_id(&store, &user).await?)
                .await?;
            list_sessions(&store, &list, json, io).await?;
        }
        // Each end is a whole one: the apps are told, the online grants revoked, the cause
        // audited (`users::admin`).
        SessionsCommand::Revoke { sid: Some(sid), .. } => {
            match admin::end_session(&store, &sessions, &sid).await? {
                Some(_) => out!(
                    io,
                    "session {sid} ended; the apps are told through back-channel logout"
                ),
                None => anyhow::bail!("no live session {sid}"),
            }
        }
        SessionsCommand::Revoke {
            user: Some(user), ..
        } => {
            let n = admin::end_sessions_of(&store, &sessions, &user)
                .await?
                .len();
            out!(
                io,
                "{n} session(s) of {user} ended; the apps are told through back-channel logout"
            );
        }
        SessionsCommand::Revoke { .. } => anyhow::bail!("give --sid or --user"),
    }
    Ok(())
}

async fn user_id(store: &Store, name: &str) -> anyhow::Result<String> {
    let user = store.user_by_username(name).await?;
    Ok(user
        .ok_or_else(|| anyhow::anyhow!("no user named {name}"))?
        .id)
}

/// The sessions as a table, or as JSON, with the apps signed in through each.
async fn list_sessions(
    store: &Store,
    list: &[SessionInfo],
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<()> {
    let fmt = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    let handles: Vec<&str> = list.iter().map(|s| s.handle.as_str()).collect();
    let mut apps = store.session_client_names(&handles).await?;
    let rows: Vec<serde_json::Value> = list
        .iter()
        .map(|s| {
            serde_json::json!({
                "sid": s.handle,
                "created_at": fmt(s.created_at),
                "last_seen_at": fmt(s.last_seen_at),
                "idle_expires_at": fmt(s.idle_expires_at),
                "absolute_expires_at": fmt(s.absolute_expires_at),
                "user_agent": s.user_agent,
                "client_addr": s.client_addr,
                "apps": apps.remove(&s.handle).unwrap_or_default(),
            })
        })
        .collect();
    if json {
        out!(io, "{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        out!(io, "no live sessions");
        return Ok(());
    }
    let head = ("sid", "started", "last seen", "address");
    out!(
        io,
        "{:<24}  {:<20}  {:<20}  {:<15}  apps",
        head.0,
        head.1,
        head.2,
        head.3
    );
    for (s, row) in list.iter().zip(&rows) {
        let addr = s.client_addr.as_deref().unwrap_or("-");
        let (started, seen) = (fmt(s.created_at), fmt(s.last_seen_at));
        out!(
            io,
            "{:<24}  {started:<20}  {seen:<20}  {addr:<15}  {}",
            s.handle,
            row["apps"]
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{Cli, Command};
    use super::SessionsCommand;
    use clap::Parser;

    /// A sid is base64url: one in 64 begins with `-`, and must still be taken as the value.
    #[test]
    fn a_sid_that_begins_with_a_dash_is_a_sid() {
        let cli = Cli::try_parse_from(["provider", "sessions", "revoke", "--sid", "-0EV2LAz"])
            .expect("parses");
        match cli.command {
            Command::Sessions {
                command: SessionsCommand::Revoke { sid, user },
            } => {
                assert_eq!(sid.as_deref(), Some("-0EV2LAz"));
                assert_eq!(user, None);
            }
            other => panic!("parsed as {other:?}"),
        }
    }
}
