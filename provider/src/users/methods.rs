//! What a signed-in session remembers of how it signed in, in its data: the methods (`amr`,
//! RFC 8176) and when its password was typed. Sign-in and step-up write them; tokens,
//! levels (`protocol::authorize::level`), the fresh-sign-in gate and "Your sessions" read
//! them.

use crate::types::{Method, Methods};
use sessions::Session;

/// Where a signed-in session keeps the methods its sign-in used.
const METHODS_KEY: &str = "amr";

/// Where a signed-in session keeps when its password was last typed, or a passkey that
/// verified the person last signed it in (Unix seconds): a step-up moves `auth_time` but not
/// this, so a code alone never passes for a password.
pub(super) const PASSWORD_AT_KEY: &str = "password_at";

/// The methods `session`'s sign-in used. A session from before methods were recorded signed
/// in with a password.
pub fn methods_of(session: &Session) -> Methods {
    methods_in(&session.data)
}

/// [`methods_of`] a session's data (as "Your sessions" lists it).
pub fn methods_in(data: &serde_json::Value) -> Methods {
    data.get(METHODS_KEY)
        .and_then(|v| v.as_str())
        .and_then(|text| Methods::parse_strict(text).ok())
        .unwrap_or(Methods::PASSWORD)
}

/// When the password of `session`'s sign-in was typed (or a passkey verified the person).
/// A session from before methods were recorded: its `auth_time`; one that records methods
/// but no such time: none.
pub fn password_at(session: &Session) -> Option<i64> {
    match session.data.get(PASSWORD_AT_KEY) {
        Some(at) => at.as_i64(),
        None if session.data.get(METHODS_KEY).is_some() => None,
        None => session.auth_time.map(time::OffsetDateTime::unix_timestamp),
    }
}

/// A sign-in with `methods` on `session` (its `auth_time` already set): the methods and,
/// when one is a password or a passkey that verified the person (a whole sign-in by
/// itself), that the person proved who they are then.
pub(super) fn record_sign_in(session: &mut Session, methods: Methods) {
    let proved = methods.contains(Method::Pwd) || methods.level() == crate::types::Level::Mfa;
    let typed = session
        .auth_time
        .map(time::OffsetDateTime::unix_timestamp)
        .filter(|_| proved);
    record(session, methods, typed);
}

/// A step-up to `methods` on `session` (before its `auth_time` moves): the methods, and the
/// password's time as it was (a session from before it was recorded: its sign-in's).
pub(super) fn record_step_up(session: &mut Session, methods: Methods) {
    let typed = password_at(session);
    record(session, methods, typed);
}

fn record(session: &mut Session, methods: Methods, password_at: Option<i64>) {
    if !session.data.is_object() {
        session.data = serde_json::json!({});
    }
    if let Some(data) = session.data.as_object_mut() {
        data.insert(METHODS_KEY.into(), methods.to_string().into());
        match password_at {
            Some(at) => data.insert(PASSWORD_AT_KEY.into(), at.into()),
            None => data.remove(PASSWORD_AT_KEY),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::testing;
    use sessions::NewSession;

    /// A passkey that verified the person is a whole sign-in, so its time counts as the
    /// password's; methods without one (never written today) leave no such time, and never
    /// fall back to `auth_time`.
    #[tokio::test]
    async fn a_verified_passkey_counts_as_a_fresh_sign_in_and_a_lone_key_does_not() {
        let ctx = testing::ctx().await;
        let mut session = ctx.sessions.create(NewSession::default()).await.unwrap();
        session.auth_time = Some(ctx.clock.now());
        let at = ctx.clock.unix();
        record_sign_in(
            &mut session,
            Methods::NONE.with(Method::Hwk).with(Method::User),
        );
        assert_eq!(password_at(&session), Some(at));
        record_sign_in(&mut session, Methods::NONE.with(Method::Hwk));
        assert_eq!(password_at(&session), None, "the earlier time is gone too");
        // A session from before methods were recorded: its sign-in's time.
        let mut old = ctx.sessions.create(NewSession::default()).await.unwrap();
        old.auth_time = Some(ctx.clock.now());
        assert_eq!(password_at(&old), Some(at));
    }
}
