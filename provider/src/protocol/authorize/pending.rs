//! Authorization requests waiting for a person (to sign in, or to approve the app): kept in
//! the database under the hash of a random id, bound to the browser session that started
//! them, so nothing about them travels in the browser but that id. Each is a row of its own,
//! so any number of tabs can wait at once; at most [`PENDING_MAX`] per browser (the oldest give
//! way), each for [`PENDING_TTL_SECS`], and each is taken at most once.

use super::request::AuthRequest;
use crate::context::{Ctx, SystemError};
use infra::secret::{hash_secret, random_handle};
use sessions::Session;

/// Pending requests are kept this long, and at most this many per browser.
pub const PENDING_TTL_SECS: i64 = 600;
pub const PENDING_MAX: i64 = 32;

/// Keeps `req` for `session`; returns the request's id (for the sign-in or consent page's
/// address).
pub async fn remember(
    ctx: &Ctx,
    session: &Session,
    req: &AuthRequest,
) -> Result<String, SystemError> {
    let id = random_handle()?;
    let json = serde_json::to_string(req).map_err(|e| SystemError::Internal(e.into()))?;
    let now = ctx.clock.unix();
    ctx.store
        .insert_pending(
            &hash_secret(&id),
            &session.handle,
            &json,
            now,
            now + PENDING_TTL_SECS,
            PENDING_MAX,
        )
        .await?;
    Ok(id)
}

/// The pending request `id` of `session`, if it exists and is in date.
pub async fn pending(
    ctx: &Ctx,
    session: &Session,
    id: &str,
) -> Result<Option<AuthRequest>, SystemError> {
    let now = ctx.clock.unix();
    let json = ctx
        .store
        .pending(&hash_secret(id), &session.handle, now)
        .await?;
    Ok(json.and_then(decode))
}

/// Removes and returns the pending request `id` of `session`: a request is used at most once.
pub async fn take(
    ctx: &Ctx,
    session: &Session,
    id: &str,
) -> Result<Option<AuthRequest>, SystemError> {
    let now = ctx.clock.unix();
    let json = ctx
        .store
        .take_pending(&hash_secret(id), &session.handle, now)
        .await?;
    Ok(json.and_then(decode))
}

/// A stored request; one that no longer reads (written by an older version) is as good as
/// gone: the person starts again at the app.
fn decode(json: String) -> Option<AuthRequest> {
    serde_json::from_str(&json)
        .inspect_err(|e| tracing::warn!(error = %e, "a pending request could not be read"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::testing;
    use crate::types::{Prompt, ScopeSet};
    use sessions::NewSession;
    use std::time::Duration;

    fn request(state: &str) -> AuthRequest {
        AuthRequest {
            client_id: "app".into(),
            redirect_uri: "https://app.example/cb".into(),
            scopes: ScopeSet::parse_known("openid"),
            state: Some(state.into()),
            nonce: None,
            code_challenge: "c".into(),
            prompt: Prompt::default(),
            max_age: None,
            login_hint: None,
            hint_sub: None,
            resource: None,
            acr: None,
            pushed: false,
            dpop_jkt: None,
            created_at: 0,
        }
    }

    #[tokio::test]
    async fn a_request_is_found_by_its_session_only_in_date_and_taken_once() {
        let ctx = testing::ctx().await;
        let mine = ctx.sessions.create(NewSession::default()).await.unwrap();
        let other = ctx.sessions.create(NewSession::default()).await.unwrap();
        let id = remember(&ctx, &mine, &request("a")).await.unwrap();
        assert_eq!(pending(&ctx, &mine, &id).await.unwrap(), Some(request("a")));
        assert_eq!(
            pending(&ctx, &other, &id).await.unwrap(),
            None,
            "another browser's"
        );
        assert_eq!(take(&ctx, &other, &id).await.unwrap(), None);
        assert_eq!(pending(&ctx, &mine, "unknown").await.unwrap(), None);
        assert_eq!(take(&ctx, &mine, &id).await.unwrap(), Some(request("a")));
        assert_eq!(take(&ctx, &mine, &id).await.unwrap(), None, "taken once");
        let late = remember(&ctx, &mine, &request("b")).await.unwrap();
        ctx.clock
            .advance(Duration::from_secs(PENDING_TTL_SECS as u64));
        assert_eq!(pending(&ctx, &mine, &late).await.unwrap(), None, "expired");
        assert_eq!(take(&ctx, &mine, &late).await.unwrap(), None);
    }

    #[tokio::test]
    async fn concurrent_tabs_keep_every_request_up_to_the_cap() {
        let ctx = testing::ctx().await;
        let session = ctx.sessions.create(NewSession::default()).await.unwrap();
        let mut tabs = tokio::task::JoinSet::new();
        for i in 0..PENDING_MAX {
            let (shared, session) = (ctx.ctx.clone(), session.clone());
            tabs.spawn(async move {
                let id = remember(&shared, &session, &request(&i.to_string())).await;
                (i, id.unwrap())
            });
        }
        let mut ids = vec![String::new(); PENDING_MAX as usize];
        while let Some(done) = tabs.join_next().await {
            let (i, id) = done.unwrap();
            ids[i as usize] = id;
        }
        for (i, id) in ids.iter().enumerate() {
            let found = pending(&ctx, &session, id).await.unwrap();
            assert_eq!(found, Some(request(&i.to_string())), "tab {i}");
        }
        // One more, a second later: the oldest gives way.
        ctx.clock.advance(Duration::from_secs(1));
        remember(&ctx, &session, &request("new")).await.unwrap();
        let mut kept = 0;
        for id in &ids {
            kept += usize::from(pending(&ctx, &session, id).await.unwrap().is_some());
        }
        assert_eq!(kept as i64, PENDING_MAX - 1);
    }
}
