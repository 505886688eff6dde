//! Single logout: every end of an SSO session (logout, revocation, sign-out-everywhere,
//! expiry, password change, account disabled, another user signing in, a reused refresh
//! token) goes through [`end_sessions`], which records the end durably before the session is
//! removed, and queues an OpenID Connect Back-Channel Logout 1.0 token for every app that
//! joined the session. [`outbox`] delivers them.

pub mod outbox;

use crate::audit::{self, Event, Kind};
use crate::context::{Ctx, SystemError};
use crate::keys::KeyError;
use crate::store::Store;
use crate::types::Alg;
use serde::Serialize;
use sessions::{EndCause, SessionEnd, Sessions};

/// The `events` member that marks a logout token (Back-Channel Logout §2.4).
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Logout tokens are valid this long (they are delivered at once or re-signed on retry).
const TOKEN_LIFETIME_SECS: i64 = 120;

/// Back-Channel Logout §2.4 logout token claims (never a `nonce`).
#[derive(Debug, Serialize)]
struct LogoutClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
    events: serde_json::Value,
    sid: &'a str,
    sub: &'a str,
}

/// Signs a logout token for `client_id` about session `sid` of `sub`, with the client's ID
/// token algorithm (`typ: logout+jwt`, Back-Channel Logout §2.4).
pub fn logout_token(
    ctx: &Ctx,
    client_id: &str,
    alg: Alg,
    sid: &str,
    sub: &str,
    now: i64,
) -> Result<String, KeyError> {
    let jti = infra::secret::random_handle().map_err(|_| KeyError::Crypto)?;
    let claims = LogoutClaims {
        iss: &ctx.issuer,
        aud: client_id,
        iat: now,
        exp: now + TOKEN_LIFETIME_SECS,
        jti,
        events: serde_json::json!({ BACKCHANNEL_EVENT: {} }),
        sid,
        sub,
    };
    ctx.keys.current().sign(alg, "logout+jwt", &claims)
}

/// Ends `ends` durably, whoever ended them: each signed-in session's end is recorded first
/// ([`record_end`]: the ledger, the revocations and the back-channel logouts, in one
/// transaction), and only then is each session removed from the session store. If the
/// database fails, nothing has been removed and the caller may try again; if the session
/// store fails after the record, the maintenance loop finishes the removal
/// ([`finish_interrupted`]). Returns how many logouts were queued.
pub async fn end_sessions(
    store: &Store,
    sessions: &Sessions,
    ends: &[SessionEnd],
    now: i64,
) -> Result<u64, SystemError> {
    let mut queued = 0;
    for end in ends {
        queued += record_end(store, end, now).await?;
    }
    for end in ends {
        sessions.remove(&end.handle).await?;
        if end.user_id.is_some() {
            store.mark_removed(&end.handle, now).await?;
        }
    }
    Ok(queued)
}

/// The end of the session with public handle `handle` for `cause`, if it is alive (in the
/// session store, or recorded live in the ledger though the store lost it) and, with
/// `owner`, belongs to that user (a user ends their own sessions only).
pub async fn end_of_handle(
    store: &Store,
    sessions: &Sessions,
    handle: &str,
    owner: Option<&str>,
    cause: EndCause,
) -> Result<Option<SessionEnd>, SystemError> {
    let (found, user_id) = match sessions.by_handle(handle).await? {
        Some(info) => (true, info.user_id),
        None => (false, store.open_session_user(handle).await?),
    };
    if !found && user_id.is_none() {
        return Ok(None);
    }
    if owner.is_some() && user_id.as_deref() != owner {
        return Ok(None);
    }
    Ok(Some(SessionEnd {
        handle: handle.to_owned(),
        user_id,
        external_key: None,
        cause,
    }))
}

/// The ends of every session of `user_id` for `cause`: those the session store lists and
/// those the ledger holds live (which include any the store lost or that a sign-in is
/// writing right now).
pub async fn ends_of_user(
    store: &Store,
    sessions: &Sessions,
    user_id: &str,
    cause: EndCause,
) -> Result<Vec<SessionEnd>, SystemError> {
    let mut handles: Vec<String> = store.open_sessions_of(user_id).await?;
    for s in sessions.list_for_user(user_id).await? {
        if !handles.contains(&s.handle) {
            handles.push(s.handle);
        }
    }
    Ok(handles
        .into_iter()
        .map(|handle| SessionEnd {
            handle,
            user_id: Some(user_id.to_owned()),
            external_key: None,
            cause,
        })
        .collect())
}

/// [`end_sessions`] for a running provider: logged, counted, and the outbox woken.
pub async fn end(ctx: &Ctx, ends: &[SessionEnd]) -> Result<(), SystemError> {
    let queued = end_sessions(&ctx.store, &ctx.sessions, ends, ctx.clock.unix()).await?;
    for end in ends.iter().filter(|e| e.user_id.is_some()) {
        tracing::info!(sid = %end.handle, cause = end.cause.as_str(), "SSO session ended");
        metrics::counter!("gatehouse_sso_sessions_ended_total", "cause" => end.cause.as_str())
            .increment(1);
    }
    if queued > 0 {
        ctx.logout_queued.notify_one();
    }
    Ok(())
}

/// Records the end of a signed-in session in the store (see `store::ledger`): the ledger
/// row, its unredeemed codes and online grants revoked (with their tokens; `offline_access`
/// grants are not bound to it), a back-channel logout queued for each app that joined it,
/// and an audit event; nothing if it had already ended. A pre-login session has nothing to
/// record. Returns how many logouts were queued.
pub async fn record_end(store: &Store, end: &SessionEnd, now: i64) -> Result<u64, sqlx::Error> {
    let Some(user_id) = end.user_id.as_deref() else {
        return Ok(0);
    };
    let Some(queued) = store
        .end_session(&end.handle, user_id, end.cause.as_str(), now)
        .await?
    else {
        return Ok(0);
    };
    audit::record_secs(
        store,
        now,
        Event::new(Kind::SessionEnded)
            .user(user_id)
            .session(&end.handle)
            .detail(end.cause.as_str()),
    )
    .await;
    Ok(queued)
}

/// Finishes what an interrupted end left (run by the maintenance loop): sessions whose end
/// was recorded but whose removal from the session store was not confirmed are removed; and
/// sessions the ledger holds live past their lifetime (lost by the session store without a
/// sweep reporting them) are ended like any expired session. Returns how many logouts were
/// queued.
pub async fn finish_interrupted(
    store: &Store,
    sessions: &Sessions,
    now: i64,
) -> Result<u64, SystemError> {
    const BATCH: i64 = 500;
    loop {
        let unremoved = store.unremoved_ends(BATCH).await?;
        for sid in &unremoved {
            if sessions.remove(sid).await? {
                tracing::info!(%sid, "an ended session removed from the session store at last");
            }
            store.mark_removed(sid, now).await?;
        }
        if (unremoved.len() as i64) < BATCH {
            break;
        }
    }
    let overdue: Vec<SessionEnd> = store
        .overdue_sessions(now, BATCH)
        .await?
        .into_iter()
        .map(|(sid, user_id)| SessionEnd {
            handle: sid,
            user_id: Some(user_id),
            external_key: None,
            cause: EndCause::AbsoluteExpiry,
        })
        .collect();
    if !overdue.is_empty() {
        tracing::warn!(
            count = overdue.len(),
            "sessions past their lifetime that no sweep reported: ending them now"
        );
    }
    end_sessions(store, sessions, &overdue, now).await
}
