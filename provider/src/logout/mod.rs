//! Single logout: every end of an SSO session (logout, revocation, sign-out-everywhere,
//! expiry, password change, account disabled, another user signing in) goes through
//! [`session_ended`], which queues an OpenID Connect Back-Channel Logout 1.0 token for every
//! app that joined the session. [`outbox`] delivers them.

pub mod outbox;

use crate::app::AppState;
use crate::keys::{Alg, KeyError};
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
    st: &AppState,
    client_id: &str,
    alg: Alg,
    sid: &str,
    sub: &str,
    now: i64,
) -> Result<String, KeyError> {
    let jti = sessions::secret::random_handle().map_err(|_| KeyError::Crypto)?;
    let claims = LogoutClaims {
        iss: &st.issuer,
        aud: client_id,
        iat: now,
        exp: now + TOKEN_LIFETIME_SECS,
        jti,
        events: serde_json::json!({ BACKCHANNEL_EVENT: {} }),
        sid,
        sub,
    };
    st.keys().sign(alg, "logout+jwt", &claims)
}

/// Queues back-channel logouts for each ended signed-in session and wakes the outbox. Errors
/// are logged, not returned: the session has ended either way, and a failed enqueue must not
/// turn a logout into an error page.
pub async fn session_ended(st: &AppState, ends: &[SessionEnd]) {
    let now = st.clock.unix();
    let mut queued = 0;
    for end in ends {
        let Some(user_id) = end.user_id.as_deref() else {
            continue;
        };
        tracing::info!(sid = %end.handle, cause = end.cause.as_str(), "SSO session ended");
        metrics::counter!("gatehouse_sso_sessions_ended_total", "cause" => end.cause.as_str())
            .increment(1);
        if let Err(e) = crate::admin::end_online_grants(&st.store, &end.handle, now).await {
            tracing::error!(sid = %end.handle, error = %e, "could not revoke the session's online grants");
        }
        match st
            .store
            .enqueue_logouts(&end.handle, user_id, end.cause.as_str(), now)
            .await
        {
            Ok(n) => queued += n,
            Err(e) => {
                tracing::error!(sid = %end.handle, error = %e, "could not queue back-channel logouts")
            }
        }
    }
    if queued > 0 {
        st.logout_outbox.notify_one();
    }
}
