//! Single logout: every end of an SSO session (logout, revocation, sign-out-everywhere,
//! expiry, password change, account disabled, another user signing in) goes through
//! [`session_ended`], which queues an OpenID Connect Back-Channel Logout 1.0 token for every
//! app that joined the session. [`outbox`] delivers them.

pub mod outbox;

use crate::audit::{self, Event, Kind};
use crate::context::Ctx;
use crate::keys::KeyError;
use crate::store::{Revoke, Store};
use crate::types::Alg;
use serde::Serialize;
use sessions::SessionEnd;

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

/// What every end of a signed-in SSO session does in the store, whoever ended it: the end is
/// written to the session ledger and the session's unredeemed codes and online grants
/// (refresh-token families and their access tokens) are revoked, since they die with it
/// (`offline_access` grants are not bound to it), in one transaction no concurrent issuance
/// escapes (see `store::Revoke`); and a back-channel logout is queued for each app that
/// joined it. Both are attempted; the first error is returned.
/// Returns how many logouts were queued.
pub async fn record_end(store: &Store, end: &SessionEnd, now: i64) -> Result<u64, sqlx::Error> {
    let Some(user_id) = end.user_id.as_deref() else {
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
    let revoked = store
        .revoke(
            Revoke::Session {
                sid: &end.handle,
                user_id,
            },
            now,
        )
        .await;
    let queued = store
        .enqueue_logouts(&end.handle, user_id, end.cause.as_str(), now)
        .await;
    revoked?;
    queued
}

/// Records each ended signed-in session ([`record_end`]) and wakes the outbox. Errors
/// are logged, not returned: the session has ended either way, and a failed enqueue must not
/// turn a logout into an error page; an end that could not be recorded is tried again in
/// the background ([`record_later`]).
pub async fn session_ended(ctx: &Ctx, ends: &[SessionEnd]) {
    let now = ctx.clock.unix();
    let mut queued = 0;
    for end in ends.iter().filter(|e| e.user_id.is_some()) {
        tracing::info!(sid = %end.handle, cause = end.cause.as_str(), "SSO session ended");
        metrics::counter!("gatehouse_sso_sessions_ended_total", "cause" => end.cause.as_str())
            .increment(1);
        match record_end(&ctx.store, end, now).await {
            Ok(n) => queued += n,
            Err(e) => {
                tracing::error!(sid = %end.handle, error = %e, "could not record the end of a session; trying again");
                tokio::spawn(record_later(ctx.store.clone(), end.clone(), now));
            }
        }
    }
    if queued > 0 {
        ctx.logout_queued.notify_one();
    }
}

/// The session was already gone from the session store when its end could not be recorded
/// (the database out of reach): its grants must still be revoked and its apps told, so the
/// record is tried again, waiting 1, 2, 4 … 64 s between attempts (about two minutes in
/// all); the running outbox picks up what it queues.
pub async fn record_later(store: Store, end: SessionEnd, now: i64) {
    for attempt in 0..7 {
        tokio::time::sleep(std::time::Duration::from_secs(1 << attempt)).await;
        match record_end(&store, &end, now).await {
            Ok(_) => {
                tracing::info!(sid = %end.handle, "the end of a session recorded at last");
                return;
            }
            Err(e) => {
                tracing::warn!(sid = %end.handle, error = %e, "recording the end of a session failed again")
            }
        }
    }
    tracing::error!(sid = %end.handle, "the end of a session could not be recorded: its online grants live on until they expire");
}
