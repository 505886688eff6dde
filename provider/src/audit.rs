//! The audit trail: security events (sign-ins, throttling, sessions created and ended, tokens
//! issued and revoked, clients registered or changed, keys rotated), each written to the
//! store's `audit_events` table and logged as a structured `tracing` event (target `audit`)
//! with the request id and client address of the request that caused it.
//!
//! The request id and address reach the event through a task-local that the web layer sets
//! for each request ([`within`]), so the code that records an event (often far from the
//! handler) needs no extra parameters.
//! Nothing secret is recorded: sessions by their public handle, users and clients by id, and
//! a failed sign-in by the account it named only when that account exists (a typed name may
//! be a password typed into the wrong field).
//!
//! Recording never fails the operation it records: if the store refuses the row, the event
//! is still logged, with the error.

use crate::store::{AuditRow, Insert, Store};
use infra::Clock;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    SignInOk,
    SignInFailed,
    SignInThrottled,
    SignInPasswordOk,
    SecondFactorFailed,
    SecondFactorEnrolled,
    SecondFactorRemoved,
    RecoveryCodeUsed,
    SignInSteppedUp,
    SessionCreated,
    SessionEnded,
    TokenIssued,
    TokenExchanged,
    TokenExchangeRefused,
    TokenRevoked,
    RefreshReuseDetected,
    AppDisconnected,
    GrantsRevoked,
    ClientRegistered,
    ClientUpdated,
    ClientSecretRotated,
    ClientDeleted,
    KeyRotated,
    DeviceApproved,
    DeviceDenied,
    DeviceCodeThrottled,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignInOk => "sign_in.ok",
            Self::SignInFailed => "sign_in.failed",
            Self::SignInThrottled => "sign_in.throttled",
            Self::SignInPasswordOk => "sign_in.password_ok",
            Self::SecondFactorFailed => "sign_in.second_factor_failed",
            Self::SecondFactorEnrolled => "mfa.enrolled",
            Self::SecondFactorRemoved => "mfa.removed",
            Self::RecoveryCodeUsed => "mfa.recovery_code_used",
            Self::SignInSteppedUp => "sign_in.stepped_up",
            Self::SessionCreated => "session.created",
            Self::SessionEnded => "session.ended",
            Self::TokenIssued => "token.issued",
            Self::TokenExchanged => "token.exchanged",
            Self::TokenExchangeRefused => "token.exchange_refused",
            Self::TokenRevoked => "token.revoked",
            Self::RefreshReuseDetected => "token.refresh_reuse_detected",
            Self::AppDisconnected => "app.disconnected",
            Self::GrantsRevoked => "grants.revoked",
            Self::ClientRegistered => "client.registered",
            Self::ClientUpdated => "client.updated",
            Self::ClientSecretRotated => "client.secret_rotated",
            Self::ClientDeleted => "client.deleted",
            Self::KeyRotated => "key.rotated",
            Self::DeviceApproved => "device.approved",
            Self::DeviceDenied => "device.denied",
            Self::DeviceCodeThrottled => "device.throttled",
        }
    }
}

/// One event to record; built with the setters.
#[derive(Clone, Debug)]
pub struct Event {
    kind: Kind,
    user_id: Option<String>,
    client_id: Option<String>,
    session: Option<String>,
    detail: Option<String>,
}

impl Event {
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            user_id: None,
            client_id: None,
            session: None,
            detail: None,
        }
    }

    pub fn user(mut self, id: impl Into<String>) -> Self {
        self.user_id = Some(id.into());
        self
    }

    pub fn user_opt(mut self, id: Option<&str>) -> Self {
        self.user_id = id.map(str::to_owned);
        self
    }

    pub fn client(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    /// The SSO session, by its public handle (never its id).
    pub fn session(mut self, handle: impl Into<String>) -> Self {
        self.session = Some(handle.into());
        self
    }

    pub fn session_opt(mut self, handle: Option<&str>) -> Self {
        self.session = handle.map(str::to_owned);
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// The request an event belongs to.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    pub request_id: Option<String>,
    pub addr: Option<String>,
}

tokio::task_local! {
    static CONTEXT: RequestContext;
}

/// Runs `work` (the rest of a request) with `context` in reach of [`record`].
pub async fn within<F: Future>(context: RequestContext, work: F) -> F::Output {
    CONTEXT.scope(context, work).await
}

/// The current request's context, if the caller runs inside one.
pub fn context() -> RequestContext {
    CONTEXT.try_with(Clone::clone).unwrap_or_default()
}

/// Microseconds since the Unix epoch on `clock`.
pub fn now_us(clock: &Clock) -> i64 {
    i64::try_from(clock.now().unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// The last time stamp handed out: within one process, events are strictly ordered even when
/// their callers know the time only to the second.
static LAST_US: AtomicI64 = AtomicI64::new(0);

fn stamp(at_us: i64) -> i64 {
    let prev = LAST_US
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(at_us.max(last.saturating_add(1)))
        })
        .unwrap_or(at_us);
    at_us.max(prev.saturating_add(1))
}

/// Records `event` at `at_us`: a structured log line and a row in the store.
pub async fn record_at(store: &Store, at_us: i64, event: Event) {
    let row = prepare(at_us, event);
    let stored = store.insert(vec![Insert::audit(&row)]).await;
    log(&row, &stored);
}

/// The stored form of `event` at `at_us`, with the current request's id and address, for a
/// caller that stores it together with what it records (then calls [`log`]).
pub fn prepare(at_us: i64, event: Event) -> AuditRow {
    let at_us = stamp(at_us);
    let ctx = context();
    AuditRow {
        id: match infra::secret::random_handle() {
            Ok(h) => h,
            Err(_) => format!("{at_us:x}"),
        },
        at_us,
        kind: event.kind.as_str().to_owned(),
        user_id: event.user_id,
        client_id: event.client_id,
        session: event.session,
        addr: ctx.addr,
        request_id: ctx.request_id,
        detail: event.detail,
    }
}

/// The structured log line of an event [`prepare`]d and then stored (or not).
pub fn log(row: &AuditRow, stored: &Result<(), sqlx::Error>) {
    tracing::info!(
        target: "audit",
        kind = %row.kind,
        user = row.user_id.as_deref().unwrap_or("-"),
        client = row.client_id.as_deref().unwrap_or("-"),
        sid = row.session.as_deref().unwrap_or("-"),
        addr = row.addr.as_deref().unwrap_or("-"),
        request_id = row.request_id.as_deref().unwrap_or("-"),
        detail = row.detail.as_deref().unwrap_or(""),
        stored = stored.is_ok(),
        "audit"
    );
    if let Err(e) = stored {
        tracing::error!(target: "audit", error = %e, kind = %row.kind, "audit event not stored");
    }
}

/// [`record_at`] now on `clock`.
pub async fn record(store: &Store, clock: &Clock, event: Event) {
    record_at(store, now_us(clock), event).await;
}

/// [`record_at`] for callers that only know the time in seconds.
pub async fn record_secs(store: &Store, now: i64, event: Event) {
    record_at(store, now.saturating_mul(1_000_000), event).await;
}

/// How long events are kept (`maintain` deletes older ones).
pub const RETENTION_SECS: i64 = 90 * 24 * 3600;

/// One line of `provider audit tail`.
pub fn format_line(row: &AuditRow) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(row.at_us) * 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| row.at_us.to_string());
    let mut line = format!("{at}  {:<28}", row.kind);
    for (name, value) in [
        ("user", &row.user_id),
        ("client", &row.client_id),
        ("sid", &row.session),
        ("addr", &row.addr),
        ("request", &row.request_id),
    ] {
        if let Some(v) = value {
            line.push_str(&format!(" {name}={v}"));
        }
    }
    if let Some(d) = &row.detail {
        line.push_str(&format!("  {d}"));
    }
    line
}
