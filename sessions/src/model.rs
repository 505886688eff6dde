//! The session as the rules see it ([`Session`]) and as a backend stores it ([`StoredSession`]).

use crate::id::SessionId;
use infra::secret::ct_eq;
use serde_json::Value;
use time::OffsetDateTime;

/// Idle timeout, absolute lifetime and touch interval, all enforced server-side.
#[derive(Clone, Copy, Debug)]
pub struct SessionPolicy {
    /// A session unused for this long is dead.
    pub idle_timeout: std::time::Duration,
    /// A session is dead this long after it was created (or re-authenticated), however active.
    pub absolute_lifetime: std::time::Duration,
    /// `last_seen_at` is written at most once per interval, so a page view is not a write.
    pub touch_interval: std::time::Duration,
    /// The idle timeout and absolute lifetime of a session the person asked to keep ("keep
    /// me signed in", [`crate::Sessions::remember`]); `None`: no session may be kept.
    pub remembered: Option<(std::time::Duration, std::time::Duration)>,
}

impl SessionPolicy {
    /// Idle and absolute limits with a touch interval of a sixtieth of the idle timeout
    /// (30 s for a 30 min timeout), at least one second.
    pub fn new(idle_timeout: std::time::Duration, absolute_lifetime: std::time::Duration) -> Self {
        let touch = (idle_timeout / 60).max(std::time::Duration::from_secs(1));
        Self {
            idle_timeout,
            absolute_lifetime,
            touch_interval: touch,
            remembered: None,
        }
    }

    /// The idle timeout of a session with `data`: a kept one's, or the usual.
    pub(crate) fn idle_secs_of(&self, data: &Value) -> i64 {
        match self.remembered {
            Some((idle, _)) if is_remembered(data) => secs(idle),
            _ => self.idle_secs(),
        }
    }

    pub(crate) fn idle_secs(&self) -> i64 {
        secs(self.idle_timeout)
    }

    pub(crate) fn absolute_secs(&self) -> i64 {
        secs(self.absolute_lifetime)
    }

    pub(crate) fn touch_secs(&self) -> i64 {
        secs(self.touch_interval)
    }
}

use infra::secs;

/// The key of a session's data that marks it kept ("keep me signed in"): reserved by this
/// crate, set only by [`crate::Sessions::remember`].
pub(crate) const REMEMBERED_KEY: &str = "remembered";

/// Whether a session's data marks it kept.
pub(crate) fn is_remembered(data: &Value) -> bool {
    data.get(REMEMBERED_KEY).and_then(Value::as_bool) == Some(true)
}

/// What a new session starts with.
#[derive(Clone, Debug, Default)]
pub struct NewSession {
    /// The signed-in user, or `None` for a pre-login session (it carries CSRF and pending state).
    pub user_id: Option<String>,
    /// A key from elsewhere to revoke by (the app keeps the provider's `sid` here).
    pub external_key: Option<String>,
    /// Application data (a JSON object).
    pub data: Value,
    /// When the user last proved who they are, if signed in.
    pub auth_time: Option<OffsetDateTime>,
    /// The browser's `User-Agent`, for the "your sessions" page.
    pub user_agent: Option<String>,
    /// The client's address, for the "your sessions" page.
    pub client_addr: Option<String>,
}

/// A live session. `id` is the secret the cookie carries; `handle` is its public, stable name
/// (the OIDC `sid`), kept across id regeneration.
#[derive(Clone, Debug)]
pub struct Session {
    id: SessionId,
    pub handle: String,
    pub user_id: Option<String>,
    pub external_key: Option<String>,
    pub data: Value,
    csrf_token: String,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub idle_expires_at: OffsetDateTime,
    pub absolute_expires_at: OffsetDateTime,
    pub auth_time: Option<OffsetDateTime>,
    pub user_agent: Option<String>,
    pub client_addr: Option<String>,
    /// The version of the record this was read as (see [`StoredSession::version`]).
    version: i64,
}

impl Session {
    /// The secret id (for the cookie).
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// The event of this session ending for `cause`.
    pub fn ending(&self, cause: EndCause) -> SessionEnd {
        SessionEnd {
            handle: self.handle.clone(),
            user_id: self.user_id.clone(),
            external_key: self.external_key.clone(),
            cause,
        }
    }

    /// Whether the person asked to keep this session ("keep me signed in"): its cookie
    /// outlives the browser, and its limits are the kept ones.
    pub fn remembered(&self) -> bool {
        is_remembered(&self.data)
    }

    /// The CSRF token bound to this session, for hidden form fields.
    pub fn csrf_token(&self) -> &str {
        &self.csrf_token
    }

    /// Whether a submitted CSRF token is this session's (constant time).
    pub fn verify_csrf(&self, submitted: Option<&str>) -> bool {
        submitted.is_some_and(|s| ct_eq(s, &self.csrf_token))
    }

    pub(crate) fn from_stored(id: SessionId, s: StoredSession) -> Self {
        Self {
            id,
            handle: s.handle,
            user_id: s.user_id,
            external_key: s.external_key,
            data: s.data,
            csrf_token: s.csrf_token,
            created_at: at(s.created_at),
            last_seen_at: at(s.last_seen_at),
            idle_expires_at: at(s.idle_expires_at),
            absolute_expires_at: at(s.absolute_expires_at),
            auth_time: s.auth_time.map(at),
            user_agent: s.user_agent,
            client_addr: s.client_addr,
            version: s.version,
        }
    }

    pub(crate) fn to_stored(&self) -> StoredSession {
        StoredSession {
            id_hash: self.id.hash(),
            handle: self.handle.clone(),
            user_id: self.user_id.clone(),
            external_key: self.external_key.clone(),
            data: self.data.clone(),
            csrf_token: self.csrf_token.clone(),
            created_at: self.created_at.unix_timestamp(),
            last_seen_at: self.last_seen_at.unix_timestamp(),
            idle_expires_at: self.idle_expires_at.unix_timestamp(),
            absolute_expires_at: self.absolute_expires_at.unix_timestamp(),
            auth_time: self.auth_time.map(OffsetDateTime::unix_timestamp),
            user_agent: self.user_agent.clone(),
            client_addr: self.client_addr.clone(),
            version: self.version,
        }
    }

    /// The version of the record this session was read (or last written) as.
    pub fn version(&self) -> i64 {
        self.version
    }

    pub(crate) fn set_version(&mut self, version: i64) {
        self.version = version;
    }

    pub(crate) fn set_secrets(&mut self, id: SessionId, csrf_token: String) {
        self.id = id;
        self.csrf_token = csrf_token;
    }
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A session as a backend keeps it: times in Unix seconds, the id only as its hash.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSession {
    pub id_hash: String,
    pub handle: String,
    pub user_id: Option<String>,
    pub external_key: Option<String>,
    pub data: Value,
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub idle_expires_at: i64,
    pub absolute_expires_at: i64,
    pub auth_time: Option<i64>,
    pub user_agent: Option<String>,
    pub client_addr: Option<String>,
    /// Moved on by every write of the record (not by a touch); a write is made only over the
    /// version its writer read.
    pub version: i64,
}

impl StoredSession {
    /// Alive at `now`: both deadlines still ahead.
    pub fn is_live(&self, now: i64) -> bool {
        self.idle_expires_at > now && self.absolute_expires_at > now
    }

    /// Why this session ended by time: whichever deadline passed first.
    pub(crate) fn expiry_cause(&self) -> EndCause {
        if self.idle_expires_at < self.absolute_expires_at {
            EndCause::IdleExpiry
        } else {
            EndCause::AbsoluteExpiry
        }
    }

    pub(crate) fn end(&self, cause: EndCause) -> SessionEnd {
        SessionEnd {
            handle: self.handle.clone(),
            user_id: self.user_id.clone(),
            external_key: self.external_key.clone(),
            cause,
        }
    }
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndCause {
    /// The user logged out.
    Logout,
    /// Revoked by handle (one session, from a list).
    Revoked,
    /// Revoked with all the user's sessions ("sign out everywhere").
    RevokedAll,
    /// Revoked by its external key (the app received a back-channel logout).
    ExternalRevocation,
    /// Unused for longer than the idle timeout.
    IdleExpiry,
    /// Past its absolute lifetime.
    AbsoluteExpiry,
}

impl EndCause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::Revoked => "revoked",
            Self::RevokedAll => "revoked_all",
            Self::ExternalRevocation => "external_revocation",
            Self::IdleExpiry => "idle_expiry",
            Self::AbsoluteExpiry => "absolute_expiry",
        }
    }
}

/// The event reported when a session ends, whatever ended it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionEnd {
    pub handle: String,
    pub user_id: Option<String>,
    pub external_key: Option<String>,
    pub cause: EndCause,
}
