//! `provider users …`: accounts. A new password, a disabled account and a removed one sign the
//! user out everywhere (`users::admin`), and every app that shared those sessions hears of
//! it; the first two also revoke every grant of the user, offline ones included.
//! `revoke-grants` disconnects one app, or every app, from a user (`users::apps`).

use super::io::{Io, store};
use crate::Config;
use crate::config::SessionBackend;
use crate::store::{NewUser, Store};
use crate::users::password::{self, MAX_PASSWORD_BYTES};
use crate::users::{admin, second_factor};
use clap::Subcommand;
use infra::Clock;
use sessions::Sessions;

#[derive(Subcommand, Debug)]
pub(super) enum UsersCommand {
    /// Create a user; the password is asked for (or read with --password-stdin).
    Add(AddUser),
    /// List users.
    List,
    /// Change a user's password (asked for, or --password-stdin); signs them out everywhere
    /// and revokes every grant (offline ones too).
    Passwd {
        username: String,
        /// Read the password from standard input (otherwise: a prompt on the terminal).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account; signs the user out everywhere and revokes every grant.
    Disable { username: String },
    /// Enable a disabled account.
    Enable { username: String },
    /// Delete an account; signs the user out everywhere first.
    Remove { username: String },
    /// Disconnect an app (or every app) from a user: its grants and tokens revoked, its
    /// consent forgotten, its sessions of the user ended by back-channel logout.
    RevokeGrants {
        username: String,
        /// Only this app (default: every app).
        #[arg(long = "client")]
        client_id: Option<String>,
    },
    /// A user's second factors: `show` them, or `reset` them (the way back in for a user who
    /// lost both the authenticator app and the recovery codes).
    Mfa {
        #[command(subcommand)]
        action: MfaAction,
    },
}

/// `users mfa`.
#[derive(clap::Subcommand, Debug)]
pub(super) enum MfaAction {
    /// Whether the user has an authenticator app, since when, and how many recovery codes
    /// are left; and their passkeys.
    Show { username: String },
    /// Remove the user's authenticator app, recovery codes and passkeys: a password signs
    /// them in again, and they can set up new ones.
    Reset { username: String },
}

/// `users add`: a new account.
#[derive(clap::Args, Debug)]
pub(super) struct AddUser {
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
}

pub(super) async fn run(
    config: &Config,
    command: UsersCommand,
    io: &mut Io<'_>,
) -> anyhow::Result<()> {
    let store = store(config).await?;
    // Sessions to end on a password change or a disabled account. An in-memory store lives
    // inside the running provider and cannot be reached from here; the provider refuses
    // disabled users on their next request in any case.
    let sessions = match config.session.store {
        SessionBackend::Memory => None,
        _ => Some(
            config
                .session
                .sessions(Some(store.db()), Clock::system())
                .await?,
        ),
    };
    match command {
        UsersCommand::Add(user) => add(&store, user, io).await?,
        UsersCommand::List => list(&store, io).await?,
        UsersCommand::Passwd {
            username,
            password_stdin,
        } => {
            let password = read_password(io, password_stdin)?;
            passwd(&store, sessions.as_ref(), &username, password, io).await?;
        }
        UsersCommand::Disable { username } => {
            set_disabled(&store, sessions.as_ref(), &username, true, io).await?
        }
        UsersCommand::Enable { username } => {
            set_disabled(&store, sessions.as_ref(), &username, false, io).await?
        }
        UsersCommand::RevokeGrants {
            username,
            client_id,
        } => {
            let now = Clock::system().unix();
            let done = admin::revoke_grants(&store, &username, client_id.as_deref(), now).await?;
            let (grants, told) = (done.grants, done.logouts);
            let apps = client_id.map_or_else(|| "every app".to_owned(), |c| format!("app {c}"));
            out!(
                io,
                "{apps} disconnected from {username}: {grants} grant(s) revoked, {told} app session(s) told through back-channel logout"
            );
        }
        UsersCommand::Mfa { action } => mfa(&store, action, io).await?,
        UsersCommand::Remove { username } => {
            let clock = Clock::system();
            let ended = admin::remove_user(&store, sessions.as_ref(), &username, &clock).await?;
            let n = ended.len();
            out!(
                io,
                "user {username} removed; {n} session(s) ended, the apps are told through back-channel logout"
            );
        }
    }
    Ok(())
}

async fn mfa(store: &Store, action: MfaAction, io: &mut Io<'_>) -> anyhow::Result<()> {
    let (MfaAction::Show { username } | MfaAction::Reset { username }) = &action;
    let user = store.user_by_username(username).await?;
    let user = user.ok_or_else(|| anyhow::anyhow!("no user named {username}"))?;
    let passkeys = store.passkeys(&user.id).await?;
    match action {
        MfaAction::Show { .. } => {
            match store.totp_factor(&user.id).await? {
                Some(f) if f.confirmed_at.is_some() => {
                    let left = store.recovery_codes_left(&user.id).await?;
                    let since = f.confirmed_at.unwrap_or_default();
                    out!(
                        io,
                        "{username}: authenticator app on since {since} (unix time); {left} recovery code(s) left"
                    );
                }
                Some(_) => out!(
                    io,
                    "{username}: an authenticator app is being set up, not on yet"
                ),
                None if passkeys.is_empty() => out!(io, "{username}: no second factor"),
                None => {}
            }
            for p in &passkeys {
                let used = p.last_used_at.map_or("never".into(), |t| t.to_string());
                out!(
                    io,
                    "{username}: passkey {:?} added {} (unix time), last used {used}",
                    p.name,
                    p.created_at
                );
            }
        }
        MfaAction::Reset { .. } => {
            let clock = Clock::system();
            let app = second_factor::remove(store, &clock, &user.id, "an operator").await?;
            let keys = crate::users::passkeys::remove_all(store, &clock, &user.id).await?;
            if app {
                out!(
                    io,
                    "{username}: authenticator app and recovery codes removed"
                );
            }
            if keys > 0 {
                out!(io, "{username}: {keys} passkey(s) removed");
            }
            if !app && keys == 0 {
                out!(io, "{username}: no second factor to remove");
            }
        }
    }
    Ok(())
}

async fn add(store: &Store, args: AddUser, io: &mut Io<'_>) -> anyhow::Result<()> {
    let user = NewUser {
        password_hash: password::hash(read_password(io, args.password_stdin)?).await?,
        username: args.username,
        name: args.name,
        email: args.email,
        email_verified: args.email_verified,
        developer: args.developer,
        ..NewUser::default()
    };
    let username = &user.username;
    match store.create_user(&user, Clock::system().unix()).await {
        Ok(u) => out!(io, "user {username} created (sub {})", u.id),
        Err(e) if crate::store::is_unique_violation(&e) => {
            anyhow::bail!("the username {username} is taken")
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

async fn list(store: &Store, io: &mut Io<'_>) -> anyhow::Result<()> {
    for u in store.list_users().await? {
        let flags = [(u.disabled, "disabled"), (u.developer, "developer")]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, f)| *f)
            .collect::<Vec<_>>()
            .join(",");
        let email = u.email.unwrap_or_default();
        out!(io, "{:<20} {:<36} {email:<24} {flags}", u.username, u.id);
    }
    Ok(())
}

async fn passwd(
    store: &Store,
    sessions: Option<&Sessions>,
    username: &str,
    new_password: String,
    io: &mut Io<'_>,
) -> anyhow::Result<()> {
    match sessions {
        Some(s) => {
            let n = admin::change_password(store, s, username, new_password)
                .await?
                .len();
            out!(
                io,
                "{n} session(s) ended; the apps are told through back-channel logout"
            );
        }
        None => {
            let user = store.user_by_username(username).await?;
            let user = user.ok_or_else(|| anyhow::anyhow!("no user named {username}"))?;
            let hash = password::hash(new_password).await?;
            let now = Clock::system().unix();
            store.set_password_hash(&user.id, &hash, now).await?;
            crate::users::apps::revoke_all(store, &user.id, "password changed", now).await?;
        }
    }
    out!(io, "password of {username} changed; every grant revoked");
    Ok(())
}

async fn set_disabled(
    store: &Store,
    sessions: Option<&Sessions>,
    username: &str,
    disable: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<()> {
    let sessions = sessions.ok_or_else(|| {
        anyhow::anyhow!("session.store is memory: its sessions live inside the running provider; use a shared session store")
    })?;
    let ended = admin::set_disabled(store, sessions, username, disable).await?;
    if disable {
        let n = ended.len();
        out!(
            io,
            "{n} session(s) ended; the apps are told through back-channel logout"
        );
    }
    let now = if disable { "disabled" } else { "enabled" };
    out!(io, "{username} is {now}");
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
        password.len() <= MAX_PASSWORD_BYTES,
        "the password is too long"
    );
    Ok(password)
}
