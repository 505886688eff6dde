//! A user ending their own sessions ("your sessions"): one of them, or every one ("sign out
//! everywhere"). Each end is a session end like any other: the online grants die with it and
//! every app of the session hears of it (`logout`).

use crate::context::{Ctx, SystemError};
use crate::logout;
use sessions::EndCause;

/// Ends the session `handle` of `user_id` (another user's handle ends nothing). Returns
/// whether it was still alive.
pub async fn sign_out_session(ctx: &Ctx, user_id: &str, handle: &str) -> Result<bool, SystemError> {
    let end = logout::end_of_handle(
        &ctx.store,
        &ctx.sessions,
        handle,
        Some(user_id),
        EndCause::Revoked,
    )
    .await?;
    let Some(end) = end else {
        return Ok(false);
    };
    logout::end(ctx, &[end]).await?;
    Ok(true)
}

/// Ends every session of `user_id`; returns how many there were. The user's sessions epoch
/// moves on first, so a sign-in of theirs already under way (hashing) does not survive it.
pub async fn sign_out_everywhere(ctx: &Ctx, user_id: &str) -> Result<usize, SystemError> {
    ctx.store.bump_session_epoch(user_id).await?;
    let ends =
        logout::ends_of_user(&ctx.store, &ctx.sessions, user_id, EndCause::RevokedAll).await?;
    logout::end(ctx, &ends).await?;
    Ok(ends.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::testing;
    use sessions::NewSession;

    #[tokio::test]
    async fn a_user_ends_their_own_sessions_only() {
        let ctx = testing::ctx().await;
        let new = |user: &str| NewSession {
            user_id: Some(user.into()),
            ..NewSession::default()
        };
        let mine = ctx.sessions.create(new("alice")).await.unwrap();
        let other = ctx.sessions.create(new("alice")).await.unwrap();
        let theirs = ctx.sessions.create(new("bob")).await.unwrap();
        assert!(
            !sign_out_session(&ctx, "alice", &theirs.handle)
                .await
                .unwrap()
        );
        assert!(
            ctx.sessions.load(theirs.id()).await.unwrap().is_some(),
            "bob's stays"
        );
        assert!(
            sign_out_session(&ctx, "alice", &other.handle)
                .await
                .unwrap()
        );
        assert!(
            !sign_out_session(&ctx, "alice", &other.handle)
                .await
                .unwrap(),
            "gone"
        );
        assert_eq!(sign_out_everywhere(&ctx, "alice").await.unwrap(), 1);
        assert!(ctx.sessions.load(mine.id()).await.unwrap().is_none());
        assert!(ctx.sessions.load(theirs.id()).await.unwrap().is_some());
    }
}
