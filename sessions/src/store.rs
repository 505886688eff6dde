//! The [`SessionStore`] backend contract and [`Sessions`], the rules every backend shares.

use crate::id::SessionId;
use crate::model::{EndCause, NewSession, Session, SessionEnd, SessionPolicy, StoredSession};
use async_trait::async_trait;
use infra::Clock;
use infra::secret::{RandomError, random_handle, random_token};
use std::sync::Arc;
use time::OffsetDateTime;

/// A session store failed. Callers answer with an opaque 500 (or 503) and log it once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("session store: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("session store: {0}")]
    Random(#[from] RandomError),
    #[error("session store: stored data is not valid JSON: {0}")]
    Data(#[from] serde_json::Error),
    #[error("session store: {0}")]
    Redis(#[from] redis::RedisError),
    /// A write that matters reached fewer Redis replicas than required in time (see
    /// `redis_conn`): not reported done, since a failover could take it back.
    #[error("session store: the write reached {got} of {wanted} Redis replicas in time")]
    Unconfirmed { wanted: u32, got: u32 },
}

impl StoreError {
    /// The backend could not be reached (or did not answer in time), as opposed to a bug or
    /// bad data: the caller answers 503 and the request can be retried.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Sql(e) => infra::sql_unavailable(e),
            Self::Redis(e) => {
                e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    // A primary demoted under us, or one that lost its replicas
                    // (`min-replicas-to-write`): a failover is under way.
                    || e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
                    || e.code() == Some("NOREPLICAS")
                    || e.code() == Some("MASTERDOWN")
                    || e.code() == Some("LOADING")
            }
            Self::Unconfirmed { .. } => true,
            Self::Random(_) | Self::Data(_) => false,
        }
    }
}

/// Storage primitives. Each backend keys sessions on the SHA-256 of their id, keeps the public
/// handle unique, and never returns a session whose idle or absolute deadline has passed.
/// The rules themselves (id generation, deadlines, touch rate) live in [`Sessions`].
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Adds a new session.
    async fn insert(&self, session: &StoredSession) -> Result<(), StoreError>;
    /// The session stored under `id_hash`, if it is live at `now`.
    async fn get(&self, id_hash: &str, now: i64) -> Result<Option<StoredSession>, StoreError>;
    /// Replaces the live session stored under `old_hash` with `session`, which may carry a new
    /// hash (regeneration: the old id is dead once this returns), if the stored record's
    /// version is `session.version - 1` (the one its writer read). False if there was none, or
    /// another write came first.
    async fn update(
        &self,
        old_hash: &str,
        session: &StoredSession,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Records activity: `last_seen_at = now` and the new idle deadline, if still live.
    async fn touch(&self, id_hash: &str, now: i64, idle_expires_at: i64) -> Result<(), StoreError>;
    /// Deletes by id hash, returning what was deleted.
    async fn remove(&self, id_hash: &str) -> Result<Option<StoredSession>, StoreError>;
    /// Deletes by public handle.
    async fn remove_by_handle(&self, handle: &str) -> Result<Option<StoredSession>, StoreError>;
    /// The session with this public handle, live or not (an ended one is gone, an expired one
    /// stays until swept).
    async fn get_by_handle(&self, handle: &str) -> Result<Option<StoredSession>, StoreError>;
    /// Up to `limit` sessions past a deadline at `now`, without removing them (a caller that
    /// must record each end before it is gone removes them by handle afterwards).
    async fn list_expired(&self, now: i64, limit: usize) -> Result<Vec<StoredSession>, StoreError>;
    /// Deletes every session of a user.
    async fn remove_by_user(&self, user_id: &str) -> Result<Vec<StoredSession>, StoreError>;
    /// Deletes every session with this external key.
    async fn remove_by_external_key(&self, key: &str) -> Result<Vec<StoredSession>, StoreError>;
    /// The live sessions of a user, oldest first.
    async fn list_by_user(&self, user_id: &str, now: i64)
    -> Result<Vec<StoredSession>, StoreError>;
    /// Deletes every session past a deadline at `now`, returning them.
    async fn remove_expired(&self, now: i64) -> Result<Vec<StoredSession>, StoreError>;
    /// Remembers until `keep_until` that `marker` ended at `ended_at`.
    async fn mark_ended(
        &self,
        marker: &str,
        ended_at: i64,
        keep_until: i64,
    ) -> Result<(), StoreError>;
    /// When `marker` ended, if that is still remembered at `now`.
    async fn ended_at(&self, marker: &str, now: i64) -> Result<Option<i64>, StoreError>;
    /// Whether the backend answers (for readiness checks).
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A sign-in under way: see [`Sessions::prepare_sign_in`].
#[derive(Clone, Debug)]
pub struct SignInPlan {
    old_hash: String,
    was_signed_in: bool,
    /// The other user's session that this sign-in replaces (to be ended first).
    pub replaces: Option<SessionEnd>,
}

/// A session as listed to its owner: no secrets.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub handle: String,
    pub user_id: Option<String>,
    pub external_key: Option<String>,
    pub data: serde_json::Value,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub idle_expires_at: OffsetDateTime,
    pub absolute_expires_at: OffsetDateTime,
    pub auth_time: Option<OffsetDateTime>,
    pub user_agent: Option<String>,
    pub client_addr: Option<String>,
}

impl SessionInfo {
    /// Whether the person asked to keep this session ("keep me signed in").
    pub fn remembered(&self) -> bool {
        crate::model::is_remembered(&self.data)
    }
}

/// The session rules over a backend. Cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    store: Arc<dyn SessionStore>,
    policy: SessionPolicy,
    clock: Clock,
}

impl Sessions {
    pub fn new(store: Arc<dyn SessionStore>, policy: SessionPolicy, clock: Clock) -> Self {
        Self {
            store,
            policy,
            clock,
        }
    }

    pub fn policy(&self) -> &SessionPolicy {
        &self.policy
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Starts a session with a fresh id, handle and CSRF token.
    pub async fn create(&self, new: NewSession) -> Result<Session, StoreError> {
        let now = self.clock.unix();
        let absolute = now.saturating_add(self.policy.absolute_secs());
        let stored_id = SessionId::generate()?;
        let stored = StoredSession {
            id_hash: stored_id.hash(),
            handle: random_handle()?,
            user_id: new.user_id,
            external_key: new.external_key,
            data: if new.data.is_null() {
                serde_json::json!({})
            } else {
                new.data
            },
            csrf_token: random_token()?,
            created_at: now,
            last_seen_at: now,
            idle_expires_at: now.saturating_add(self.policy.idle_secs()).min(absolute),
            absolute_expires_at: absolute,
            auth_time: new.auth_time.map(OffsetDateTime::unix_timestamp),
            user_agent: new.user_agent.map(|ua| truncate(ua, 512)),
            client_addr: new.client_addr,
            version: 0,
        };
        self.store.insert(&stored).await?;
        Ok(Session::from_stored(stored_id, stored))
    }

    /// The live session for this id, or `None` (unknown, idle-expired or absolute-expired,
    /// whatever the cookie says). Slides the idle deadline, writing at most once per touch
    /// interval.
    pub async fn load(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let now = self.clock.unix();
        let hash = id.hash();
        let Some(mut stored) = self.store.get(&hash, now).await? else {
            return Ok(None);
        };
        if !stored.is_live(now) {
            return Ok(None);
        }
        if now - stored.last_seen_at >= self.policy.touch_secs() {
            let idle = now
                .saturating_add(self.policy.idle_secs_of(&stored.data))
                .min(stored.absolute_expires_at);
            self.store.touch(&hash, now, idle).await?;
            stored.last_seen_at = now;
            stored.idle_expires_at = idle;
        }
        Ok(Some(Session::from_stored(id.clone(), stored)))
    }

    /// Writes the session's data, user and external key back, if no other write of it came
    /// since it was read (a compare-and-set on its version). False if one did, or if it has
    /// ended meanwhile: the caller reads it again and redoes its change, or gives up.
    pub async fn save(&self, session: &mut Session) -> Result<bool, StoreError> {
        let old_hash = session.id().hash();
        self.write(&old_hash, session).await
    }

    /// Writes `session` over the record stored under `old_hash` at the version it was read
    /// as; on success the session carries the new version.
    async fn write(&self, old_hash: &str, session: &mut Session) -> Result<bool, StoreError> {
        let mut stored = session.to_stored();
        stored.version = session.version() + 1;
        let done = self
            .store
            .update(old_hash, &stored, self.clock.unix())
            .await?;
        if done {
            session.set_version(stored.version);
        }
        Ok(done)
    }

    /// Gives the session a new id and CSRF token; the old id is dead when this returns.
    /// False if the session had ended meanwhile.
    pub async fn regenerate(&self, session: &mut Session) -> Result<bool, StoreError> {
        let old_hash = session.id().hash();
        session.set_secrets(SessionId::generate()?, random_token()?);
        self.write(&old_hash, session).await
    }

    /// Signs `user_id` in on this session: a new id and CSRF token (the pre-login id is dead),
    /// `auth_time` now, and fresh idle and absolute deadlines. If the session belonged to
    /// another user, that session ends (reported) and a new one, with a new handle, begins.
    /// A session of this user that ended meanwhile is not brought back: a new one, with a new
    /// handle, begins instead.
    pub async fn authenticate(
        &self,
        session: &mut Session,
        user_id: &str,
    ) -> Result<Option<SessionEnd>, StoreError> {
        self.authenticate_with(session, user_id, |_| {}).await
    }

    /// [`Sessions::authenticate`], with `edit` applied to the signed-in session before it is
    /// written, so that what the caller keeps with it (its external key, its data) is stored
    /// in the same single write, never a moment later.
    pub async fn authenticate_with(
        &self,
        session: &mut Session,
        user_id: &str,
        edit: impl FnOnce(&mut Session),
    ) -> Result<Option<SessionEnd>, StoreError> {
        let plan = self.prepare_sign_in(session, user_id)?;
        edit(session);
        let mut ended = None;
        if let Some(other) = &plan.replaces
            && self.remove(&other.handle).await?
        {
            ended = Some(other.clone());
        }
        if !self.complete_sign_in(session, &plan).await? {
            session.handle = random_handle()?;
            session.created_at = self.clock.now();
            self.store.insert(&session.to_stored()).await?;
        }
        Ok(ended)
    }

    /// Step one of a sign-in, in memory only: `session` as it will be once `user_id` is signed
    /// in on it (a new id and CSRF token, `auth_time` now, fresh deadlines, and a new handle if
    /// another user was signed in on it). Nothing is stored; a caller that keeps a record of
    /// sessions (the provider's ledger) writes it now, under the final handle, then calls
    /// [`Sessions::complete_sign_in`]. The session the plan replaces, if any, is the caller's
    /// to end first.
    pub fn prepare_sign_in(
        &self,
        session: &mut Session,
        user_id: &str,
    ) -> Result<SignInPlan, StoreError> {
        let now_at = self.clock.now();
        let now = now_at.unix_timestamp();
        let plan = SignInPlan {
            old_hash: session.id().hash(),
            was_signed_in: session.user_id.is_some(),
            replaces: match session.user_id.as_deref() {
                Some(current) if current != user_id => Some(session.ending(EndCause::Logout)),
                _ => None,
            },
        };
        match session.user_id.as_deref() {
            Some(current) if current == user_id => {}
            Some(_) => {
                session.handle = random_handle()?;
                session.external_key = None;
                session.created_at = now_at;
            }
            None => session.created_at = now_at,
        }
        let absolute = now.saturating_add(self.policy.absolute_secs());
        // A sign-in is kept only if the person asks again ([`Sessions::remember`]).
        if let Some(data) = session.data.as_object_mut() {
            data.remove(crate::model::REMEMBERED_KEY);
        }
        session.user_id = Some(user_id.to_owned());
        session.auth_time = Some(now_at);
        session.last_seen_at = now_at;
        session.absolute_expires_at = at(absolute);
        session.idle_expires_at = at(now.saturating_add(self.policy.idle_secs()).min(absolute));
        session.set_secrets(SessionId::generate()?, random_token()?);
        Ok(plan)
    }

    /// "Keep me signed in", between [`Sessions::prepare_sign_in`] and
    /// [`Sessions::complete_sign_in`] (in memory only): the session takes the kept idle timeout
    /// and absolute lifetime from its sign-in, and is marked kept (its cookie then carries
    /// `Max-Age`, [`crate::CookiePolicy::cookie_for`]). False, and nothing changed, if the
    /// policy keeps no session.
    pub fn remember(&self, session: &mut Session) -> bool {
        let Some((idle, absolute)) = self.policy.remembered else {
            return false;
        };
        let Some(data) = session.data.as_object_mut() else {
            return false;
        };
        data.insert(crate::model::REMEMBERED_KEY.into(), true.into());
        // From the sign-in, as its usual deadlines were.
        let now = session
            .auth_time
            .map_or_else(|| self.clock.unix(), OffsetDateTime::unix_timestamp);
        let absolute = now.saturating_add(infra::secs(absolute));
        session.absolute_expires_at = at(absolute);
        session.idle_expires_at = at(now.saturating_add(infra::secs(idle)).min(absolute));
        true
    }

    /// Step two of a sign-in: writes `session` as [`Sessions::prepare_sign_in`] left it, in
    /// place of its pre-login record. A pre-login session that expired meanwhile, or one whose
    /// other user's session the caller ended, is stored afresh; but a signed-in session of
    /// this user that ended meanwhile (revoked, signed out everywhere) is never brought back
    /// under its old handle, and a record that another request wrote since it was read is
    /// not overwritten: false, and nothing is written.
    pub async fn complete_sign_in(
        &self,
        session: &mut Session,
        plan: &SignInPlan,
    ) -> Result<bool, StoreError> {
        if self.write(&plan.old_hash, session).await? {
            return Ok(true);
        }
        // Not written: the record ended, or another write of it came first (still there).
        if plan.replaces.is_none()
            && (plan.was_signed_in
                || self
                    .store
                    .get(&plan.old_hash, self.clock.unix())
                    .await?
                    .is_some()
                // A concurrent sign-in of this very session (a double submit) wrote it first.
                || self.store.get_by_handle(&session.handle).await?.is_some())
        {
            return Ok(false);
        }
        self.store.insert(&session.to_stored()).await?;
        Ok(true)
    }

    /// Ends this session (logout).
    pub async fn end(
        &self,
        id: &SessionId,
        cause: EndCause,
    ) -> Result<Option<SessionEnd>, StoreError> {
        Ok(self.store.remove(&id.hash()).await?.map(|s| s.end(cause)))
    }

    /// Ends the session with this public handle, but only if it belongs to `user_id` (a user
    /// revokes their own sessions; `None` is an administrator's revoke).
    pub async fn revoke_handle(
        &self,
        handle: &str,
        owner: Option<&str>,
    ) -> Result<Option<SessionEnd>, StoreError> {
        if let Some(owner) = owner {
            let mine = self.list_for_user(owner).await?;
            if !mine.iter().any(|s| s.handle == handle) {
                return Ok(None);
            }
        }
        Ok(self
            .store
            .remove_by_handle(handle)
            .await?
            .map(|s| s.end(EndCause::Revoked)))
    }

    /// The session with this public handle (live, or expired but not yet swept).
    pub async fn by_handle(&self, handle: &str) -> Result<Option<SessionInfo>, StoreError> {
        Ok(self.store.get_by_handle(handle).await?.map(info))
    }

    /// Deletes the session with this handle, whatever its state; whether there was one. The
    /// caller has already recorded its end.
    pub async fn remove(&self, handle: &str) -> Result<bool, StoreError> {
        Ok(self.store.remove_by_handle(handle).await?.is_some())
    }

    /// Up to `limit` expired sessions, each with its cause, left in place: a caller that must
    /// record every end before the session is gone records them, then [`Sessions::remove`]s
    /// them.
    pub async fn expired(&self, limit: usize) -> Result<Vec<SessionEnd>, StoreError> {
        let now = self.clock.unix();
        let found = self.store.list_expired(now, limit).await?;
        Ok(found.iter().map(|s| s.end(s.expiry_cause())).collect())
    }

    /// Ends every session of a user ("sign out everywhere").
    pub async fn revoke_user(&self, user_id: &str) -> Result<Vec<SessionEnd>, StoreError> {
        let removed = self.store.remove_by_user(user_id).await?;
        Ok(removed
            .iter()
            .map(|s| s.end(EndCause::RevokedAll))
            .collect())
    }

    /// Ends every session with this external key (the app's sessions under a provider
    /// `sid`), remembering first, for an absolute lifetime, that it ended: a session written
    /// under it afterwards (a sign-in that crossed this end) is then found out by
    /// [`Sessions::ended_at`].
    pub async fn revoke_external(&self, key: &str) -> Result<Vec<SessionEnd>, StoreError> {
        self.remember_end(&external_marker(key)).await?;
        self.end_external(key).await
    }

    /// Ends the live sessions of external key `key`, remembering nothing: for a request
    /// anyone could send (front-channel logout), which must not leave a record for every key
    /// it names, nor refuse later sign-ins under a key that is still live.
    pub async fn end_external(&self, key: &str) -> Result<Vec<SessionEnd>, StoreError> {
        let removed = self.store.remove_by_external_key(key).await?;
        Ok(removed
            .iter()
            .map(|s| s.end(EndCause::ExternalRevocation))
            .collect())
    }

    /// Remembers, for an absolute lifetime, that `marker` ended now ([`external_marker`],
    /// [`user_marker`]).
    pub async fn remember_end(&self, marker: &str) -> Result<(), StoreError> {
        let now = self.clock.unix();
        let keep = now.saturating_add(self.policy.absolute_secs());
        self.store.mark_ended(marker, now, keep).await
    }

    /// When `marker` ended, if it did within an absolute lifetime.
    pub async fn ended_at(&self, marker: &str) -> Result<Option<i64>, StoreError> {
        self.store.ended_at(marker, self.clock.unix()).await
    }

    /// The live sessions of a user, oldest first, without their secrets.
    pub async fn list_for_user(&self, user_id: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let now = self.clock.unix();
        let rows = self.store.list_by_user(user_id, now).await?;
        Ok(rows
            .into_iter()
            .filter(|s| s.is_live(now))
            .map(info)
            .collect())
    }

    /// Whether the backend answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    /// Deletes every expired session and reports each end with its cause.
    pub async fn sweep(&self) -> Result<Vec<SessionEnd>, StoreError> {
        let now = self.clock.unix();
        let removed = self.store.remove_expired(now).await?;
        Ok(removed.iter().map(|s| s.end(s.expiry_cause())).collect())
    }

    /// Runs [`Sessions::sweep`] every `every`, handing each batch of ends to `on_end`.
    pub fn spawn_sweeper<F>(
        &self,
        every: std::time::Duration,
        on_end: F,
    ) -> tokio::task::JoinHandle<()>
    where
        F: Fn(Vec<SessionEnd>) + Send + Sync + 'static,
    {
        let this = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match this.sweep().await {
                    Ok(ended) if !ended.is_empty() => on_end(ended),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "session sweep failed"),
                }
            }
        })
    }
}

/// The marker of an external key's end ([`Sessions::revoke_external`]).
pub fn external_marker(key: &str) -> String {
    format!("x:{key}")
}

/// The marker of the end of every session of a user.
pub fn user_marker(user_id: &str) -> String {
    format!("u:{user_id}")
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn info(s: StoredSession) -> SessionInfo {
    SessionInfo {
        handle: s.handle,
        user_id: s.user_id,
        external_key: s.external_key,
        data: s.data,
        created_at: at(s.created_at),
        last_seen_at: at(s.last_seen_at),
        idle_expires_at: at(s.idle_expires_at),
        absolute_expires_at: at(s.absolute_expires_at),
        auth_time: s.auth_time.map(at),
        user_agent: s.user_agent,
        client_addr: s.client_addr,
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}
