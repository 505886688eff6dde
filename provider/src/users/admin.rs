//! Operations on accounts that end sessions: a password change or a disabled account signs the
//! user out everywhere, and every app that shared those sessions hears of it, and revokes
//! every grant of the user, offline ones included. Used by the
//! `provider users …` commands (and the tests); the running provider's outbox delivers the
//! logouts, whichever process queued them.

use super::{apps, password};
use crate::store::Store;
use sessions::{SessionEnd, Sessions};

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

impl From<sessions::StoreError> for AdminError {
    fn from(e: sessions::StoreError) -> Self {
        Self::Other(e.into())
    }
}

/// Ends every session of `user_id`, with everything a session end does
/// ([`crate::logout::record_end`]); returns the ends.
pub async fn end_all_sessions(
    store: &Store,
    sessions: &Sessions,
    user_id: &str,
) -> Result<Vec<SessionEnd>, AdminError> {
    let ended = sessions.revoke_user(user_id).await?;
    let now = sessions.clock().unix();
    // Every end is recorded, even after one failed: they are all gone from the session store.
    let mut failed = None;
    for end in &ended {
        if let Err(e) = crate::logout::record_end(store, end, now).await {
            failed.get_or_insert(e);
        }
    }
    match failed {
        None => Ok(ended),
        Some(e) => Err(e.into()),
    }
}

/// Ends the session `sid` (an operator's revoke), with everything a session end does; `None`
/// if it was not alive.
pub async fn end_session(
    store: &Store,
    sessions: &Sessions,
    sid: &str,
) -> Result<Option<SessionEnd>, AdminError> {
    let ended = sessions.revoke_handle(sid, None).await?;
    if let Some(end) = &ended {
        crate::logout::record_end(store, end, sessions.clock().unix()).await?;
    }
    Ok(ended)
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
) -> Result<Vec<SessionEnd>, AdminError> {
    let id = user_id(store, username).await?;
    let ended = match sessions {
        Some(s) => end_all_sessions(store, s, &id).await?,
        None => Vec::new(),
    };
    store.delete_user(&id).await?;
    Ok(ended)
}
