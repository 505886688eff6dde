//! Authorization requests waiting for a person (to sign in, or to approve the app): kept in
//! the browser's SSO session under a random id, so nothing about them travels in the browser
//! but that id. At most [`PENDING_MAX`] per browser (tabs), each for [`PENDING_TTL_SECS`].

use super::request::AuthRequest;
use crate::context::{Ctx, SystemError};
use infra::secret::{RandomError, random_handle};
use sessions::Session;

/// Pending requests are kept this long, and at most this many per browser.
pub const PENDING_TTL_SECS: i64 = 600;
pub const PENDING_MAX: usize = 8;
const PENDING_KEY: &str = "pending";

/// Keeps `req` in `session` and saves it; returns the request's id (for the sign-in or consent
/// page's address).
pub async fn remember(
    ctx: &Ctx,
    session: &mut Session,
    req: &AuthRequest,
) -> Result<String, SystemError> {
    let id = stash(session, req, ctx.clock.unix())?;
    ctx.sessions.save(session).await?;
    Ok(id)
}

/// Removes the pending request `id` and saves the session: a request is used at most once.
pub async fn take_saved(
    ctx: &Ctx,
    session: &mut Session,
    id: &str,
) -> Result<Option<AuthRequest>, SystemError> {
    let req = take(session, id, ctx.clock.unix());
    ctx.sessions.save(session).await?;
    Ok(req)
}

/// Adds `req` to the session's pending requests (dropping expired ones, and the oldest beyond
/// the cap) and returns its id. The caller saves the session.
pub fn stash(session: &mut Session, req: &AuthRequest, now: i64) -> Result<String, RandomError> {
    let id = random_handle()?;
    let mut pending: Vec<(String, AuthRequest)> = list(session)
        .into_iter()
        .filter(|(_, r)| now - r.created_at < PENDING_TTL_SECS)
        .collect();
    pending.sort_by_key(|(_, r)| r.created_at);
    while pending.len() >= PENDING_MAX {
        pending.remove(0);
    }
    pending.push((id.clone(), req.clone()));
    set(session, pending);
    Ok(id)
}

/// The pending request `id`, if it exists and is in date.
pub fn pending(session: &Session, id: &str, now: i64) -> Option<AuthRequest> {
    list(session)
        .into_iter()
        .find(|(k, r)| k == id && now - r.created_at < PENDING_TTL_SECS)
        .map(|(_, r)| r)
}

/// Removes and returns the pending request `id` (the caller saves the session).
pub fn take(session: &mut Session, id: &str, now: i64) -> Option<AuthRequest> {
    let found = pending(session, id, now);
    let rest: Vec<(String, AuthRequest)> =
        list(session).into_iter().filter(|(k, _)| k != id).collect();
    set(session, rest);
    found
}

fn list(session: &Session) -> Vec<(String, AuthRequest)> {
    session
        .data
        .get(PENDING_KEY)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

fn set(session: &mut Session, list: Vec<(String, AuthRequest)>) {
    if let (Some(obj), Ok(v)) = (session.data.as_object_mut(), serde_json::to_value(list)) {
        obj.insert(PENDING_KEY.into(), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Prompt, ScopeSet};
    use sessions::{MemoryStore, NewSession, SessionPolicy, Sessions};
    use std::time::Duration;

    fn request(created_at: i64) -> AuthRequest {
        AuthRequest {
            client_id: "app".into(),
            redirect_uri: "https://app.example/cb".into(),
            scopes: ScopeSet::parse_known("openid"),
            state: Some("s".into()),
            nonce: None,
            code_challenge: "c".into(),
            prompt: Prompt::default(),
            max_age: None,
            login_hint: None,
            hint_sub: None,
            created_at,
        }
    }

    async fn session() -> Session {
        let policy = SessionPolicy::new(Duration::from_secs(60), Duration::from_secs(600));
        let sessions = Sessions::new(
            std::sync::Arc::new(MemoryStore::new()),
            policy,
            infra::Clock::system(),
        );
        sessions.create(NewSession::default()).await.unwrap()
    }

    #[tokio::test]
    async fn a_stashed_request_is_found_once_and_only_in_date() {
        let mut s = session().await;
        let id = stash(&mut s, &request(100), 100).unwrap();
        assert_eq!(
            pending(&s, &id, 100 + PENDING_TTL_SECS - 1),
            Some(request(100))
        );
        assert_eq!(pending(&s, &id, 100 + PENDING_TTL_SECS), None, "expired");
        assert_eq!(pending(&s, "other", 100), None);
        assert_eq!(take(&mut s, &id, 101), Some(request(100)));
        assert_eq!(take(&mut s, &id, 101), None, "taken once");
    }

    #[tokio::test]
    async fn the_oldest_requests_give_way_beyond_the_cap() {
        let mut s = session().await;
        let ids: Vec<String> = (0..PENDING_MAX + 2)
            .map(|i| stash(&mut s, &request(i as i64), 50).unwrap())
            .collect();
        assert_eq!(pending(&s, &ids[0], 50), None);
        assert_eq!(pending(&s, &ids[1], 50), None);
        assert!(pending(&s, &ids[2], 50).is_some());
        assert!(pending(&s, ids.last().unwrap(), 50).is_some());
    }
}
