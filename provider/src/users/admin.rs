//! Operations on accounts that end sessions: a password change or a disabled account signs the
//! user out everywhere, and every app that shared those sessions hears of it, and revokes
//! every grant of the user, offline ones included. Used by the
//! `provider users …` commands (and the tests); the running provider's outbox delivers the
//! logouts, whichever process queued them.

use super::{apps, password};
use crate::context::SystemError;
use crate::logout;
use crate::store::Store;
use sessions::{EndCause, SessionEnd, Sessions};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no user named {0}")]
    NoSuchUser(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for AdminError {
    fn from(e: sqlx::Error) -> Self {
        Self::Other(e.into())
    }
}

impl From<SystemError> for AdminError {
    fn from(e: SystemError) -> Self {
        Self::Other(e.into())
    }
}

impl From<sessions::StoreError> for AdminError {
    fn from(e: sessions::StoreError) -> Self {
        Self::Other(e.into())
    }
}

/// Ends every session of `user_id`, with everything a session end does
/// ([`crate::logout::end_sessions`]); returns the ends. The user's sessions epoch moves on
/// first, so a sign-in already under way does not survive it.
pub async fn end_all_sessions(
    store: &Store,
    sessions: &Sessions,
    user_id: &str,
) -> Result<Vec<SessionEnd>, AdminError> {
    store.bump_session_epoch(user_id).await?;
    let ends = logout::ends_of_user(store, sessions, user_id, EndCause::RevokedAll).await?;
    logout::end_sessions(store, sessions, &ends, sessions.clock().unix()).await?;
    Ok(ends)
}

/// Ends the session `sid` (an operator's revoke), with everything a session end does; `None`
/// if it was not alive.
pub async fn end_session(
    store: &Store,
    sessions: &Sessions,
    sid: &str,
) -> Result<Option<SessionEnd>, AdminError> {
    let end = logout::end_of_handle(store, sessions, sid, None, EndCause::Revoked).await?;
    if let Some(end) = &end {
        logout::end_sessions(
            store,
            sessions,
            std::slice::from_ref(end),
            sessions.clock().unix(),
        )
        .await?;
    }
    Ok(end)
}

/// Ends every session of the user named `username` (an operator's revoke).
pub async fn end_sessions_of(
    store: &Store,
    sessions: &Sessions,
    username: &str,
) -> Result<Vec<SessionEnd>, AdminError> {
    let id = user_id(store, username).await?;
    end_all_sessions(store, sessions, &id).await
}

async fn user_id(store: &Store, username: &str) -> Result<String, AdminError> {
    Ok(store
        .user_by_username(username)
        .await?
        .ok_or_else(|| AdminError::NoSuchUser(username.to_owned()))?
        .id)
}

/// Sets a new password, signs the user out everywhere and revokes every grant (a token got
/// with the old password is not good after the change).
pub async fn change_password(
    store: &Store,
    sessions: &Sessions,
    username: &str,
    new_password: String,
) -> Result<Vec<SessionEnd>, AdminError> {
    let id = user_id(store, username).await?;
    let hash = password::hash(new_password).await?;
    let now = sessions.clock().unix();
    store.set_password_hash(&id, &hash, now).await?;
    let ended = end_all_sessions(store, sessions, &id).await?;
    apps::revoke_all(store, &id, "password changed", now).await?;
    Ok(ended)
}

/// Disables (or re-enables) an account; disabling signs the user out everywhere.
pub async fn set_disabled(
    store: &Store,
    sessions: &Sessions,
    username: &str,
    disabled: bool,
) -> Result<Vec<SessionEnd>, AdminError> {
    let id = user_id(store, username).await?;
    store
        .set_disabled(&id, disabled, sessions.clock().unix())
        .await?;
    if disabled {
        let ended = end_all_sessions(store, sessions, &id).await?;
        apps::revoke_all(store, &id, "account disabled", sessions.clock().unix()).await?;
        Ok(ended)
    } else {
        Ok(Vec::new())
    }
}

/// Revokes the grants of the user named `username` (an operator's revoke): with `client_id`,
/// that app is disconnected ([`apps::disconnect`]); without, every app is.
pub async fn revoke_grants(
    store: &Store,
    username: &str,
    client_id: Option<&str>,
    now: i64,
) -> Result<apps::Disconnected, AdminError> {
    let id = user_id(store, username).await?;
    let why = "revoked by an operator";
    Ok(match client_id {
        Some(client) => apps::disconnect(store, &id, client, why, now).await?,
        None => apps::disconnect_all(store, &id, why, now).await?,
    })
}

/// Deletes an account: signs the user out everywhere (the apps are told), then removes the
/// user with everything issued to them.
pub async fn remove_user(
    store: &Store,
    sessions: Option<&Sessions>,
    username: &str,
    clock: &infra::Clock,
) -> Result<Vec<SessionEnd>, AdminError> {
    let id = user_id(store, username).await?;
    let ended = match sessions {
        Some(s) => end_all_sessions(store, s, &id).await?,
        None => Vec::new(),
    };
    // Read now, not before the sessions ended: the revocations are stamped with it, and the
    // APIs' feed looks back only so far (`crate::feed`).
    store.delete_user(&id, clock.unix()).await?;
    Ok(ended)
}
