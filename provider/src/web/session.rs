//! The SSO session cookie: a new pre-login session when a page needs one (for its CSRF token
//! and the requests waiting for sign-in), and the cookie set or dropped. New sessions are
//! counted per client address (`limits.new_sessions_per_address`), so that a flood of
//! cookieless requests cannot fill the session store (README "Hostile clients" 5).

use super::extract::ClientMeta;
use super::state::AppState;
use crate::context::SystemError;
use crate::protocol::error::PageError;
use axum_extra::extract::cookie::CookieJar;
use sessions::{NewSession, Session};

/// `session`, or a new pre-login one; the returned jar carries its cookie when it is new.
pub async fn or_new(
    st: &AppState,
    jar: CookieJar,
    session: Option<Session>,
    meta: &ClientMeta,
) -> Result<(Session, CookieJar), PageError> {
    if let Some(s) = session {
        return Ok((s, jar));
    }
    if let Some(key) = &meta.key {
        let limit = st.ctx.config.limits.new_sessions_per_address;
        st.address_rate(&format!("session:{key}"), limit)
            .map_err(|retry_after| PageError::TooManyRequests { retry_after })?;
    }
    let s = st
        .ctx
        .sessions
        .create(NewSession {
            user_agent: meta.user_agent.clone(),
            client_addr: meta.addr.clone(),
            ..NewSession::default()
        })
        .await
        .map_err(SystemError::from)?;
    let jar = jar.add(st.web.cookies.cookie(s.id()));
    Ok((s, jar))
}

/// The jar with the session's cookie (its id may be new: sign-in regenerates it).
/// A kept session's ("keep me signed in") outlives the browser.
pub fn remember(st: &AppState, jar: CookieJar, session: &Session) -> CookieJar {
    jar.add(st.web.cookies.cookie_for(session, st.ctx.clock.unix()))
}

/// The jar with the cookie dropped.
pub fn forget(st: &AppState, jar: CookieJar) -> CookieJar {
    jar.remove(st.web.cookies.removal())
}
