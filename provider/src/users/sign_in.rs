//! Signing in with a password: the throttle first, then the check (the same work and the same
//! answer for an unknown user, a wrong password and a disabled account), then, for an account
//! with an authenticator app, its code (`second_factor`, then [`finish_second_factor`]), then
//! a new session id.

use super::methods::{methods_of, record_sign_in, record_step_up};
use super::{password, throttle};
use crate::audit::{self, Event, Kind};
use crate::context::{Ctx, SystemError};
use crate::logout;
use crate::store::{Credential, User};
use crate::types::Methods;
use sessions::{EndCause, Session, SessionEnd};

/// Longest username accepted (checked before any lookup or hash).
pub const MAX_USERNAME_BYTES: usize = 256;

/// What a sign-in attempt came to.
#[derive(Debug, PartialEq, Eq)]
pub enum SignIn {
    /// Too many failures for this name or address: the password was not even checked. The same
    /// answer for every name typed, whether or not such an account exists.
    Throttled { wait_secs: i64 },
    /// Unknown user, wrong password or disabled account: one answer for all three.
    Refused,
    /// Signed in: the session has a new id (the pre-login one, and any an attacker planted, is
    /// dead), and a new handle if another user was signed in on it (that session ended, and
    /// its apps hear of it).
    SignedIn { user_id: String },
    /// Another sign-in of this very browser session (a form posted twice) completed first:
    /// this one changed nothing, and the browser keeps the other's cookie.
    Superseded,
    /// The password was right, and the account has an authenticator app: its code comes
    /// next ([`finish_second_factor`]). Nothing was written to the session.
    SecondFactor {
        user_id: String,
        /// The credential the password was checked against ([`credential_of`]): a code
        /// completes this sign-in only while it is still current.
        credential: String,
    },
}

/// What a first step's password was checked against: the password hash and the sessions
/// epoch (a new password, a disabled account or "sign out everywhere" moves it), hashed.
fn credential_of(user: &User) -> String {
    infra::secret::hash_secret(&format!("{}:{}", user.password_hash, user.session_epoch))
}

/// One attempt: the name and password typed, and the client's address (for the throttle).
pub struct Attempt<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub addr: Option<&'a str>,
    /// "Keep me signed in" was ticked (honoured only where the configuration allows it).
    pub remember: bool,
}

/// Checks `attempt` and, when it succeeds, signs its user in on `session` (the caller saves
/// nothing: the session is written here, under its new id).
pub async fn sign_in(
    ctx: &Ctx,
    session: &mut Session,
    attempt: Attempt<'_>,
) -> Result<SignIn, SystemError> {
    let Attempt {
        username,
        password,
        addr,
        remember,
    } = attempt;
    let now = ctx.clock.unix();
    let keys = if ctx.config.limits.sign_in_throttle {
        throttle::keys(username, addr)
    } else {
        Vec::new()
    };
    let reserved = match throttle::admit(&ctx.store, &keys, now).await? {
        throttle::Admission::Go(reserved) => reserved,
        throttle::Admission::Wait(wait_secs) => {
            record_throttled(ctx, wait_secs).await;
            return Ok(SignIn::Throttled { wait_secs });
        }
    };
    let plausible = !username.is_empty()
        && username.len() <= MAX_USERNAME_BYTES
        && password.len() <= password::MAX_PASSWORD_BYTES;
    let user = if plausible {
        ctx.store.user_by_username(username).await?
    } else {
        None
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let verified = password::verify(stored, password.to_owned()).await;
    let user = match user {
        Some(u) if verified && !u.disabled => u,
        other => {
            record_refused(ctx, other.as_ref()).await;
            return Ok(SignIn::Refused);
        }
    };
    throttle::succeeded(&ctx.store, &reserved).await?;
    if super::second_factor::factors(&ctx.store, &user.id)
        .await?
        .any()
    {
        let event = Event::new(Kind::SignInPasswordOk)
            .user(&user.id)
            .detail("the second factor is asked next");
        audit::record(&ctx.store, &ctx.clock, event).await;
        return Ok(SignIn::SecondFactor {
            credential: credential_of(&user),
            user_id: user.id,
        });
    }
    finish(ctx, session, user, Methods::PASSWORD, remember).await
}

/// The account of a sign-in whose password step answered [`SignIn::SecondFactor`] with
/// `user_id` and `credential`, if it is still as that step found it and active; `None` (the
/// refusal recorded) if it changed meanwhile (a new password, disabled, signed out
/// everywhere) or is gone.
pub async fn second_step_account(
    ctx: &Ctx,
    user_id: &str,
    credential: &str,
) -> Result<Option<User>, SystemError> {
    match ctx.store.user_by_id(user_id).await? {
        Some(u) if !u.disabled && infra::secret::ct_eq(&credential_of(&u), credential) => {
            Ok(Some(u))
        }
        other => {
            record_refused(ctx, other.as_ref()).await;
            Ok(None)
        }
    }
}

/// Completes the sign-in of `user` (from [`second_step_account`]) once the caller has checked
/// its second factor (`second`: a one-time code, or a passkey's methods): a password and
/// that; kept if the password step asked (`remember`). A change to the account after it was
/// read still wins: the session is recorded only under the credential read (`open`).
pub async fn finish_second_factor(
    ctx: &Ctx,
    session: &mut Session,
    user: User,
    second: Methods,
    remember: bool,
) -> Result<SignIn, SystemError> {
    let methods = Methods::PASSWORD.union(second);
    finish(ctx, session, user, methods, remember).await
}

/// Signs in the account a passkey proved (`methods`: `hwk` or `swk`, and `user`) on
/// `session`, if it is active; kept if `remember` asks.
pub async fn sign_in_with_passkey(
    ctx: &Ctx,
    session: &mut Session,
    user_id: &str,
    methods: Methods,
    remember: bool,
) -> Result<SignIn, SystemError> {
    match ctx.store.user_by_id(user_id).await? {
        Some(user) if !user.disabled => finish(ctx, session, user, methods, remember).await,
        other => {
            record_refused(ctx, other.as_ref()).await;
            Ok(SignIn::Refused)
        }
    }
}

/// Step-up (OIDC Core §3.1.2.1 `acr_values`): the person signed in on `session` proved
/// `added` as well (the caller checked it). The session is kept (its handle, its apps, its
/// deadlines); its methods gain `added`, its `auth_time` is now, and it gets a new id, as at
/// any sign-in. False, and `session` as it was, if the session ended or changed meanwhile.
pub async fn step_up(
    ctx: &Ctx,
    session: &mut Session,
    added: Methods,
) -> Result<bool, SystemError> {
    let before = session.clone();
    let methods = methods_of(session).union(added);
    record_step_up(session, methods);
    session.auth_time = Some(ctx.clock.now());
    if !ctx.sessions.regenerate(session).await? {
        *session = before;
        return Ok(false);
    }
    tracing::info!(sid = %session.handle, "sign-in stepped up");
    let event = Event::new(Kind::SignInSteppedUp)
        .user_opt(session.user_id.as_deref())
        .session(&session.handle)
        .detail(format!("methods now {methods}, level {}", methods.level()));
    audit::record(&ctx.store, &ctx.clock, event).await;
    Ok(true)
}

/// Signs `user` in on `session` (a new id) with `methods`, kept if `remember` asks and the
/// configuration allows, and records it.
async fn finish(
    ctx: &Ctx,
    session: &mut Session,
    user: User,
    methods: Methods,
    remember: bool,
) -> Result<SignIn, SystemError> {
    let before = session.clone();
    match open(ctx, session, &user, methods, remember).await? {
        Opened::Yes => {}
        Opened::Overtaken => {
            // A password change, a disabled account or "sign out everywhere" came during the
            // hash (or this session was ended meanwhile): the change wins.
            tracing::info!("sign-in overtaken by a change to the account's sessions");
            *session = before;
            record_refused(ctx, Some(&user)).await;
            return Ok(SignIn::Refused);
        }
        Opened::Superseded => {
            tracing::info!("sign-in superseded by a concurrent one of the same session");
            *session = before;
            return Ok(SignIn::Superseded);
        }
    }
    let before = before.handle;
    // Someone else signed in on this browser: a new SSO session, and the browser's waiting
    // authorization requests go with it.
    if session.handle != before {
        ctx.store.move_pending(&before, &session.handle).await?;
    }
    tracing::info!(sid = %session.handle, "signed in");
    let signed_in = Event::new(Kind::SignInOk)
        .user(&user.id)
        .session(&session.handle)
        .detail(format!("methods {methods}, level {}", methods.level()));
    audit::record(&ctx.store, &ctx.clock, signed_in).await;
    let created = Event::new(Kind::SessionCreated)
        .user(&user.id)
        .session(&session.handle)
        .detail(format!(
            "idle expiry {}, absolute expiry {}{}",
            session.idle_expires_at,
            session.absolute_expires_at,
            if session.remembered() {
                ", kept signed in"
            } else {
                ""
            }
        ));
    audit::record(&ctx.store, &ctx.clock, created).await;
    metrics::counter!("gatehouse_sign_ins_total").increment(1);
    Ok(SignIn::SignedIn { user_id: user.id })
}

/// What [`open`] came to.
enum Opened {
    Yes,
    /// The credential changed, or the session ended, meanwhile: nothing is left of this
    /// sign-in.
    Overtaken,
    /// A concurrent sign-in of the same session wrote it first; it is left as that one made
    /// it.
    Superseded,
}

/// Signs `user` in on `session`, durably and only with a credential that is still current:
/// the session is recorded in the ledger under its final handle (refused if the password,
/// the sessions epoch or the account changed since `user` was read); the other user's session
/// it replaces, if any, is ended; the session is written; and the ledger is read again, so
/// that an end of the user's sessions that came meanwhile, and missed this one in the
/// session store, still wins (the session is then removed). False if refused.
async fn open(
    ctx: &Ctx,
    session: &mut Session,
    user: &User,
    methods: Methods,
    remember: bool,
) -> Result<Opened, SystemError> {
    let plan = ctx.sessions.prepare_sign_in(session, &user.id)?;
    record_sign_in(session, methods);
    if remember {
        ctx.sessions.remember(session);
    }
    let credential = Credential {
        user_id: &user.id,
        password_hash: &user.password_hash,
        session_epoch: user.session_epoch,
    };
    let expires_at = session.absolute_expires_at.unix_timestamp();
    if !ctx
        .store
        .open_session(&session.handle, credential, expires_at)
        .await?
    {
        return Ok(Opened::Overtaken);
    }
    if let Some(other) = &plan.replaces {
        logout::end(ctx, std::slice::from_ref(other)).await?;
    }
    let handle = session.handle.clone();
    let stale = |cause| SessionEnd {
        handle: handle.clone(),
        user_id: Some(user.id.clone()),
        external_key: None,
        cause,
    };
    if !ctx.sessions.complete_sign_in(session, &plan).await? {
        if ctx.store.session_open(&handle).await? {
            // Another request of this session wrote it first (a double submit): its
            // sign-in stands, and this one leaves it alone.
            return Ok(Opened::Superseded);
        }
        // This user's session ended meanwhile: it is not brought back.
        logout::end(ctx, &[stale(EndCause::Revoked)]).await?;
        return Ok(Opened::Overtaken);
    }
    if !ctx.store.session_open(&handle).await? {
        logout::end(ctx, &[stale(EndCause::RevokedAll)]).await?;
        return Ok(Opened::Overtaken);
    }
    Ok(Opened::Yes)
}

async fn record_throttled(ctx: &Ctx, wait_secs: i64) {
    tracing::info!(wait = wait_secs, "sign-in throttled");
    metrics::counter!("gatehouse_sign_ins_throttled_total").increment(1);
    let event = Event::new(Kind::SignInThrottled).detail(format!("wait {wait_secs} s"));
    audit::record(&ctx.store, &ctx.clock, event).await;
}

/// A refused sign-in, in the audit trail: the account is named only when it exists (a typed
/// name may be a password typed into the wrong field).
async fn record_refused(ctx: &Ctx, user: Option<&User>) {
    tracing::info!("sign-in failed");
    let (user_id, why) = match user {
        None => (None, "no such account"),
        Some(u) if u.disabled => (Some(u.id.as_str()), "account disabled"),
        Some(u) => (Some(u.id.as_str()), "wrong password"),
    };
    let event = Event::new(Kind::SignInFailed).user_opt(user_id).detail(why);
    audit::record(&ctx.store, &ctx.clock, event).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::testing;
    use crate::types::Method;
    use sessions::NewSession;

    async fn with_alice() -> testing::TestCtx {
        let ctx = testing::ctx().await;
        super::super::create_user(&ctx.store, "alice", "wonderland", ctx.clock.unix())
            .await
            .unwrap();
        ctx
    }

    fn attempt<'a>(username: &'a str, password: &'a str) -> Attempt<'a> {
        Attempt {
            username,
            password,
            addr: Some("192.0.2.7"),
            remember: false,
        }
    }

    /// The account as a sign-in reads it before hashing the password.
    async fn read_alice(ctx: &testing::TestCtx) -> User {
        ctx.store.user_by_username("alice").await.unwrap().unwrap()
    }

    /// A password change, "sign out everywhere" or a disabled account that comes while a
    /// sign-in is hashing (after it read the account) wins: the sign-in records nothing and
    /// writes no session. A sign-in that read the account afterwards goes ahead.
    #[tokio::test]
    async fn a_change_during_the_hash_wins_over_the_sign_in_on_sqlite() {
        a_change_during_the_hash_wins(with_alice().await).await;
    }

    #[tokio::test]
    async fn a_change_during_the_hash_wins_over_the_sign_in_on_postgres() {
        if let Some(ctx) = testing::postgres_ctx("sign-in overtaken").await {
            super::super::create_user(&ctx.store, "alice", "wonderland", ctx.clock.unix())
                .await
                .unwrap();
            a_change_during_the_hash_wins(ctx).await;
        }
    }

    /// A step-up moves `auth_time` but never the password's time, also on a session signed
    /// in before that time was recorded: a code alone is no fresh password.
    #[tokio::test]
    async fn a_step_up_is_no_fresh_password() {
        let ctx = with_alice().await;
        let alice = read_alice(&ctx).await;
        let mut session = ctx.sessions.create(NewSession::default()).await.unwrap();
        ctx.sessions
            .authenticate(&mut session, &alice.id)
            .await
            .unwrap();
        assert!(
            session
                .data
                .get(super::super::methods::PASSWORD_AT_KEY)
                .is_none(),
            "as before it was kept"
        );
        let signed_in = session.auth_time.unwrap().unix_timestamp();
        ctx.clock.advance(std::time::Duration::from_secs(600));
        assert!(
            step_up(&ctx, &mut session, Methods::NONE.with(Method::Otp))
                .await
                .unwrap()
        );
        assert_eq!(super::super::password_at(&session), Some(signed_in));
        assert!(session.auth_time.unwrap().unix_timestamp() >= signed_in + 600);
        assert_eq!(
            super::super::methods_of(&session).level(),
            crate::types::Level::Mfa
        );
        let reloaded = ctx.sessions.load(session.id()).await.unwrap().unwrap();
        assert_eq!(super::super::password_at(&reloaded), Some(signed_in));
    }

    async fn a_change_during_the_hash_wins(ctx: testing::TestCtx) {
        let changes: [&str; 3] = ["password", "sign out everywhere", "disabled"];
        for change in changes {
            let stale = read_alice(&ctx).await;
            match change {
                "password" => {
                    super::super::admin::change_password(
                        &ctx.store,
                        &ctx.sessions,
                        "alice",
                        "looking-glass".into(),
                    )
                    .await
                    .unwrap();
                }
                "sign out everywhere" => {
                    super::super::sign_out_everywhere(&ctx, &stale.id)
                        .await
                        .unwrap();
                }
                _ => {
                    super::super::admin::set_disabled(&ctx.store, &ctx.sessions, "alice", true)
                        .await
                        .unwrap();
                }
            }
            let mut session = ctx.sessions.create(NewSession::default()).await.unwrap();
            let pre_login = session.clone();
            assert!(
                matches!(
                    open(&ctx, &mut session, &stale, Methods::PASSWORD, false)
                        .await
                        .unwrap(),
                    Opened::Overtaken
                ),
                "{change}"
            );
            assert!(
                ctx.sessions
                    .list_for_user(&stale.id)
                    .await
                    .unwrap()
                    .is_empty(),
                "{change}: no session written"
            );
            assert!(
                !ctx.store.session_open(&session.handle).await.unwrap(),
                "{change}"
            );
            if change == "disabled" {
                super::super::admin::set_disabled(&ctx.store, &ctx.sessions, "alice", false)
                    .await
                    .unwrap();
            }
            // Read after the change, the account signs in.
            let mut session = pre_login;
            let fresh = read_alice(&ctx).await;
            assert!(
                matches!(
                    open(&ctx, &mut session, &fresh, Methods::PASSWORD, false)
                        .await
                        .unwrap(),
                    Opened::Yes
                ),
                "{change}"
            );
            assert!(ctx.store.session_open(&session.handle).await.unwrap());
            assert_eq!(
                ctx.sessions.list_for_user(&fresh.id).await.unwrap().len(),
                1
            );
            super::super::sign_out_everywhere(&ctx, &fresh.id)
                .await
                .unwrap();
        }
    }

    /// Forty wrong passwords for one account at once, spread over `instances` provider
    /// instances on one database: the attempts are counted before the hash, so only the five
    /// free ones (and, if the machine is slow enough for the first waits to pass meanwhile, a
    /// couple more) are checked; the rest are answered with a wait, as a sequence of attempts
    /// would be.
    async fn a_burst_is_throttled_like_a_sequence(ctx: testing::TestCtx, instances: usize) {
        super::super::create_user(&ctx.store, "alice", "wonderland", ctx.clock.unix())
            .await
            .unwrap();
        let mut all = vec![ctx.ctx.clone()];
        while all.len() < instances {
            all.push(testing::second_instance(&ctx).await);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..40 {
            let ctx = all[i % all.len()].clone();
            tasks.spawn(async move {
                let mut session = ctx.sessions.create(NewSession::default()).await.unwrap();
                sign_in(&ctx, &mut session, attempt("alice", "not-it"))
                    .await
                    .unwrap()
            });
        }
        let outcomes = tasks.join_all().await;
        let checked = outcomes.iter().filter(|o| **o == SignIn::Refused).count();
        let throttled = outcomes
            .iter()
            .filter(|o| matches!(o, SignIn::Throttled { .. }))
            .count();
        eprintln!("checked: {checked}, throttled: {throttled}");
        assert_eq!(checked + throttled, 40);
        assert!((5..=8).contains(&checked), "{checked} passwords checked");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_burst_of_wrong_passwords_is_throttled_on_sqlite() {
        a_burst_is_throttled_like_a_sequence(testing::ctx().await, 1).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_burst_of_wrong_passwords_is_throttled_on_postgres_across_two_instances() {
        if let Some(ctx) = testing::postgres_ctx("sign-in burst").await {
            a_burst_is_throttled_like_a_sequence(ctx, 2).await;
        }
    }

    #[tokio::test]
    async fn the_right_password_signs_in_under_a_new_id() {
        let ctx = with_alice().await;
        let mut session = ctx.sessions.create(NewSession::default()).await.unwrap();
        let before = session.id().clone();
        let got = sign_in(&ctx, &mut session, attempt("alice", "wonderland")).await;
        assert!(matches!(got, Ok(SignIn::SignedIn { .. })), "{got:?}");
        assert_ne!(session.id(), &before, "a new id at sign-in");
        assert!(
            ctx.sessions.load(&before).await.unwrap().is_none(),
            "the old id is dead"
        );
        assert!(session.user_id.is_some() && session.auth_time.is_some());
    }

    #[tokio::test]
    async fn unknown_users_wrong_passwords_and_odd_input_get_one_answer() {
        let ctx = with_alice().await;
        let mut session = ctx.sessions.create(NewSession::default()).await.unwrap();
        let long = "x".repeat(MAX_USERNAME_BYTES + 1);
        for (user, password) in [
            ("alice", "wrong"),
            ("nobody", "wonderland"),
            ("", "x"),
            (long.as_str(), "x"),
        ] {
            let got = sign_in(&ctx, &mut session, attempt(user, password))
                .await
                .unwrap();
            assert_eq!(got, SignIn::Refused, "{user}");
        }
        assert!(session.user_id.is_none(), "nobody signed in");
    }

    #[tokio::test]
    async fn repeated_failures_are_throttled_without_checking_the_password() {
        let ctx = with_alice().await;
        // A one-second wait must not run out while six hashes are checked on a busy machine.
        ctx.clock.freeze();
        let mut session = ctx.sessions.create(NewSession::default()).await.unwrap();
        for _ in 0..5 {
            let got = sign_in(&ctx, &mut session, attempt("alice", "wrong"))
                .await
                .unwrap();
            assert_eq!(got, SignIn::Refused);
        }
        // The right password now waits too: the throttle answers before any check.
        let got = sign_in(&ctx, &mut session, attempt("alice", "wonderland"))
            .await
            .unwrap();
        assert!(
            matches!(got, SignIn::Throttled { wait_secs } if wait_secs >= 1),
            "{got:?}"
        );
        ctx.clock.advance(std::time::Duration::from_secs(61));
        let got = sign_in(&ctx, &mut session, attempt("alice", "wonderland"))
            .await
            .unwrap();
        assert!(matches!(got, SignIn::SignedIn { .. }), "{got:?}");
    }

    #[tokio::test]
    async fn a_disabled_account_is_refused() {
        let ctx = with_alice().await;
        let alice = ctx.store.user_by_username("alice").await.unwrap().unwrap();
        ctx.store
            .set_disabled(&alice.id, true, ctx.clock.unix())
            .await
            .unwrap();
        let mut session = ctx.sessions.create(NewSession::default()).await.unwrap();
        let got = sign_in(&ctx, &mut session, attempt("alice", "wonderland"))
            .await
            .unwrap();
        assert_eq!(got, SignIn::Refused);
    }

    #[tokio::test]
    async fn another_users_session_in_this_browser_ends() {
        let ctx = with_alice().await;
        super::super::create_user(&ctx.store, "bob", "builder", ctx.clock.unix())
            .await
            .unwrap();
        let mut session = ctx.sessions.create(NewSession::default()).await.unwrap();
        sign_in(&ctx, &mut session, attempt("alice", "wonderland"))
            .await
            .unwrap();
        let alices = session.handle.clone();
        sign_in(&ctx, &mut session, attempt("bob", "builder"))
            .await
            .unwrap();
        assert_ne!(session.handle, alices, "a new session for a new user");
        let alice = ctx.store.user_by_username("alice").await.unwrap().unwrap();
        assert!(
            ctx.sessions
                .list_for_user(&alice.id)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
