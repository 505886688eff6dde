//! Renewing the user's access tokens (the provider's own, and the Notes API's) with the
//! refresh token kept in the app's session: single-flight per session within the process
//! ([`RefreshLocks`]), and a compare-and-set on the presented refresh token when the result
//! is stored ([`save_user`]), so a newer refresh (another request, another instance) is never
//! overwritten with an older one.

use crate::AppState;
use crate::oidc::{Renew, SignedIn};
use sessions::{EndCause, Session};

/// Where the signed-in user is kept in a session's data.
const USER_KEY: &str = "user";

/// The signed-in user kept in a session.
pub(crate) fn user_of(session: &Session) -> Option<SignedIn> {
    session.user_id.as_ref()?;
    serde_json::from_value(session.data.get(USER_KEY)?.clone()).ok()
}

/// Refresh this long before the access token expires.
const REFRESH_MARGIN_SECS: i64 = 60;

/// Striped locks that make a session's refresh single-flight in this process: concurrent
/// requests of one session wait for the one refresh and use its result, instead of each
/// presenting the same refresh token (which the provider answers within its grace window
/// only, and treats as theft after it). A fixed set of stripes, so nothing grows with the
/// number of sessions.
pub struct RefreshLocks([tokio::sync::Mutex<()>; 64]);

impl Default for RefreshLocks {
    fn default() -> Self {
        Self(std::array::from_fn(|_| tokio::sync::Mutex::new(())))
    }
}

impl RefreshLocks {
    fn of(&self, handle: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(handle);
        &self.0[(hash % self.0.len() as u64) as usize]
    }
}

/// Whether `user`'s access token of kind `renew` is due for a refresh: within
/// [`REFRESH_MARGIN_SECS`] of its expiry (or half its lifetime, for an API's tokens that live
/// less than twice that), or, for an API token, not obtained yet unless the provider said it
/// would give none.
fn due(now: i64, user: &SignedIn, renew: Renew) -> bool {
    let (expires_at, margin) = match renew {
        Renew::Provider => (user.access_token_expires_at, REFRESH_MARGIN_SECS),
        Renew::Api if user.api_refused.is_some() => return false,
        Renew::Api if user.api_token.is_none() => (i64::MIN, 0),
        Renew::Api => (
            user.api_token_expires_at,
            REFRESH_MARGIN_SECS.min(user.api_token_lifetime / 2),
        ),
    };
    user.refresh_token.is_some() && expires_at.saturating_sub(now) <= margin
}

pub(crate) fn set_user(session: &mut Session, user: &SignedIn) {
    if let (Some(obj), Ok(v)) = (session.data.as_object_mut(), serde_json::to_value(user)) {
        obj.insert(USER_KEY.into(), v);
    }
}

/// Stores `user` (the result of a refresh that presented refresh token `presented`) in the
/// session, a compare-and-set: if another request wrote the session since it was read, it is
/// read again, and `user` stored over it only if it still holds `presented` (a newer refresh,
/// say by another instance, is never overwritten with an older result). False if the session
/// has ended, or holds another refresh token now.
async fn save_user(
    st: &AppState,
    session: &mut Session,
    user: &SignedIn,
    presented: Option<&str>,
) -> Result<bool, sessions::StoreError> {
    // Each failed try means another request wrote this session meanwhile: a handful at most.
    for _ in 0..50 {
        set_user(session, user);
        if st.sessions.save(session).await? {
            return Ok(true);
        }
        match st.sessions.load(session.id()).await? {
            Some(fresh)
                if user_of(&fresh).is_some_and(|u| u.refresh_token.as_deref() == presented) =>
            {
                *session = fresh
            }
            Some(fresh) => {
                *session = fresh;
                return Ok(false);
            }
            None => return Ok(false),
        }
    }
    tracing::warn!("a refreshed token could not be stored: its session is written too often");
    Ok(false)
}

/// `session` with its user's access token of kind `renew` refreshed if it is due; `None` when
/// the session has ended. When the provider refuses the refresh (`invalid_grant`: the grant
/// was revoked or ended with the SSO session), the local session ends too; a grant it gives
/// no API token is remembered ([`SignedIn::api_refused`]). Any other failure keeps the session
/// and its refresh token, which the provider leaves unspent when a refresh fails on its side.
pub(crate) async fn renewed(
    st: &AppState,
    session: Session,
    renew: Renew,
) -> Result<Option<Session>, sessions::StoreError> {
    if !user_of(&session).is_some_and(|u| due(st.clock.unix(), &u, renew)) {
        return Ok(Some(session));
    }
    let _one_at_a_time = st.refreshing.of(&session.handle).lock().await;
    // Read again: a request that held the lock before may have refreshed already.
    let Some(mut session) = st.sessions.load(session.id()).await? else {
        return Ok(None);
    };
    let Some(user) = user_of(&session).filter(|u| due(st.clock.unix(), u, renew)) else {
        return Ok(Some(session));
    };
    match st.oidc.refresh(&user, renew).await {
        Ok(next) => {
            if !save_user(st, &mut session, &next, user.refresh_token.as_deref()).await? {
                return st.sessions.load(session.id()).await;
            }
            Ok(Some(session))
        }
        Err(crate::oidc::RefreshError::Rejected) => {
            tracing::info!(sub = %user.sub, "the provider ended the grant: signing out locally");
            st.sessions
                .end(session.id(), EndCause::ExternalRevocation)
                .await?;
            Ok(None)
        }
        Err(crate::oidc::RefreshError::NoApi(why)) => {
            // Kept, so that no page asks again before the next sign-in (the refresh token is
            // unspent: the provider rotates it only when it answers with tokens).
            tracing::info!(error = %why, "the provider gives this grant no token for the API");
            let refused = SignedIn {
                api_refused: Some(why),
                ..user.clone()
            };
            save_user(st, &mut session, &refused, user.refresh_token.as_deref()).await?;
            Ok(Some(session))
        }
        Err(crate::oidc::RefreshError::Unverified { rotated, why }) => {
            // The provider rotated the token, but its new ID token did not verify: the
            // rotated refresh token is kept (the old one is spent), nothing else.
            tracing::warn!(error = %why, "refreshed ID token refused; keeping the rotated refresh token only");
            save_user(st, &mut session, &rotated, user.refresh_token.as_deref()).await?;
            Ok(Some(session))
        }
        Err(e) => {
            tracing::warn!(error = %e, "token refresh failed; keeping the session");
            Ok(Some(session))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(api_token: Option<&str>, expires_at: i64, lifetime: i64) -> SignedIn {
        SignedIn {
            sub: "alice".into(),
            name: None,
            email: None,
            provider_sid: None,
            id_token_claims: serde_json::Value::Null,
            id_token: String::new(),
            access_token: String::new(),
            access_token_expires_at: 1_000,
            refresh_token: Some("rt".into()),
            refreshed_at: None,
            api_token: api_token.map(str::to_owned),
            api_token_expires_at: expires_at,
            api_token_lifetime: lifetime,
            api_refused: None,
        }
    }

    #[test]
    fn an_api_token_is_due_when_missing_or_near_its_expiry_unless_refused() {
        let now = 10_000;
        assert!(due(now, &user(None, 0, 0), Renew::Api), "none yet");
        let fresh = user(Some("at"), now + 300, 300);
        assert!(!due(now, &fresh, Renew::Api));
        assert!(due(now + 240, &fresh, Renew::Api), "within a minute");
        // A 30-second token is renewed at half its life, not at every request.
        let short = user(Some("at"), now + 30, 30);
        assert!(!due(now, &short, Renew::Api));
        assert!(due(now + 15, &short, Renew::Api));
        let refused = SignedIn {
            api_refused: Some("invalid_target".into()),
            ..user(None, 0, 0)
        };
        assert!(!due(now, &refused, Renew::Api), "not asked again");
        let no_refresh = SignedIn {
            refresh_token: None,
            ..user(None, 0, 0)
        };
        assert!(!due(now, &no_refresh, Renew::Api));
        // The provider's own token is judged by its own expiry.
        assert!(due(1_000 - 60, &fresh, Renew::Provider));
        assert!(!due(1_000 - 61, &fresh, Renew::Provider));
    }
}
