//! `device_authorizations`: device authorization requests (RFC 8628 §3.1) waiting for a
//! person, stored under the hashes of their device code and user code. The person's approval
//! is written as an authorization code under the device code's hash ([`Insert::auth_code`]
//! with [`DEVICE_REDIRECT`]), under [`Guard::device_approved`]: so the device's redemption is
//! a code's (once, in the transaction of its tokens), and every revocation of codes (the
//! session ended, the app disconnected, the account disabled) covers an approval not yet
//! redeemed.

use super::handle::Store;
use super::rows::Guard;
use crate::types::ScopeSet;
use sqlx::FromRow;

/// The redirect URI of the authorization code a device approval is written as: no redirect
/// happens, and no authorization request's code can carry it (`protocol::token` refuses it
/// to the code grant, and requires it of the device grant).
pub const DEVICE_REDIRECT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The longest poll interval [`Store::device_polled`] grows to (RFC 8628 §3.5 `slow_down`).
pub const MAX_POLL_INTERVAL: i64 = 60;

/// A device authorization request, as stored.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct DeviceRow {
    pub device_code_hash: String,
    pub client_id: String,
    #[sqlx(try_from = "String")]
    pub scope: ScopeSet,
    pub created_at: i64,
    pub expires_at: i64,
    /// Seconds the device must leave between polls (RFC 8628 §3.2 `interval`).
    pub poll_interval: i64,
    pub approved_at: Option<i64>,
    pub denied_at: Option<i64>,
}

impl DeviceRow {
    /// Neither approved nor denied, and in date: the person may still answer.
    pub fn open(&self, now: i64) -> bool {
        self.approved_at.is_none() && self.denied_at.is_none() && self.expires_at > now
    }
}

/// A new device authorization request.
pub struct NewDevice<'a> {
    pub device_code_hash: &'a str,
    pub user_code_hash: &'a str,
    pub client_id: &'a str,
    pub scope: ScopeSet,
    pub created_at: i64,
    pub expires_at: i64,
    pub poll_interval: i64,
}

/// A poll, as the pace of earlier ones finds it (RFC 8628 §3.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    /// At least the interval after the previous poll (or the first).
    OnTime,
    /// Sooner: the interval has grown by five seconds (up to [`MAX_POLL_INTERVAL`]).
    TooSoon,
}

const DEVICE_COLUMNS: &str = "device_code_hash, client_id, scope, created_at, expires_at, \
    poll_interval, approved_at, denied_at";

impl Guard {
    /// The device authorization request with this device code hash is still open (neither
    /// approved nor denied, and in date), and is approved now: in the transaction that writes
    /// the approval's code, so of two answers (two tabs, two people) one counts.
    pub fn device_approved(device_code_hash: &str, now: i64) -> Self {
        Self {
            rank: 2,
            sql: "UPDATE device_authorizations SET approved_at = $2 \
                  WHERE device_code_hash = $1 AND approved_at IS NULL AND denied_at IS NULL \
                  AND expires_at > $2",
            values: vec![device_code_hash.into(), now.into()],
        }
    }
}

impl Store {
    /// Stores a new request; false if its user code is taken by a request not yet swept (the
    /// caller draws another).
    pub async fn insert_device(&self, d: &NewDevice<'_>) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "INSERT INTO device_authorizations (device_code_hash, user_code_hash, client_id, \
             scope, created_at, expires_at, poll_interval) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (user_code_hash) DO NOTHING",
        )
        .bind(d.device_code_hash)
        .bind(d.user_code_hash)
        .bind(d.client_id)
        .bind(d.scope.to_string())
        .bind(d.created_at)
        .bind(d.expires_at)
        .bind(d.poll_interval)
        .execute(self.db.write())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The request with this device code hash (what the device presents).
    pub async fn device_by_device_code(
        &self,
        device_code_hash: &str,
    ) -> Result<Option<DeviceRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {DEVICE_COLUMNS} FROM device_authorizations WHERE device_code_hash = $1"
        )))
        .bind(device_code_hash)
        .fetch_optional(self.db.read())
        .await
    }

    /// The request with this user code hash (what the person types).
    pub async fn device_by_user_code(
        &self,
        user_code_hash: &str,
    ) -> Result<Option<DeviceRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {DEVICE_COLUMNS} FROM device_authorizations WHERE user_code_hash = $1"
        )))
        .bind(user_code_hash)
        .fetch_optional(self.db.read())
        .await
    }

    /// The person denied the request; false if it was no longer open (answered, expired).
    pub async fn deny_device(&self, device_code_hash: &str, now: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE device_authorizations SET denied_at = $2 \
             WHERE device_code_hash = $1 AND approved_at IS NULL AND denied_at IS NULL \
             AND expires_at > $2",
        )
        .bind(device_code_hash)
        .bind(now)
        .execute(self.db.write())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a poll of a pending request and says whether it kept the interval: one
    /// conditional statement decides, so concurrent polls cannot both pass as on time. A poll
    /// too soon grows the interval by five seconds (RFC 8628 §3.5) and counts as the latest.
    pub async fn device_polled(
        &self,
        device_code_hash: &str,
        now: i64,
    ) -> Result<Poll, sqlx::Error> {
        let on_time = sqlx::query(
            "UPDATE device_authorizations SET polled_at = $2 WHERE device_code_hash = $1 \
             AND (polled_at IS NULL OR polled_at + poll_interval <= $2)",
        )
        .bind(device_code_hash)
        .bind(now)
        .execute(self.db.write())
        .await?;
        if on_time.rows_affected() == 1 {
            return Ok(Poll::OnTime);
        }
        sqlx::query(
            "UPDATE device_authorizations SET polled_at = $2, poll_interval = CASE \
             WHEN poll_interval + 5 > $3 THEN $3 ELSE poll_interval + 5 END \
             WHERE device_code_hash = $1",
        )
        .bind(device_code_hash)
        .bind(now)
        .bind(MAX_POLL_INTERVAL)
        .execute(self.db.write())
        .await?;
        Ok(Poll::TooSoon)
    }

    /// Deletes requests that expired more than `keep_secs` ago (kept a while, so that a device
    /// still polling hears `expired_token` rather than an unknown code).
    pub async fn sweep_devices(&self, now: i64, keep_secs: i64) -> Result<u64, sqlx::Error> {
        self.delete_batched(
            "device_authorizations",
            "device_code_hash",
            "expires_at < $1",
            &[now - keep_secs],
        )
        .await
    }
}
