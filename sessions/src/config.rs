//! Session settings as both apps configure them (`session.store`, `session.idle_timeout`, …).

use crate::redis_conn::{Confirm, RedisTarget, UrlError};
use crate::{MemoryStore, RedisStore, SessionPolicy, SessionStore, Sessions, SqlStore, StoreError};
use infra::config::{duration, opt_duration};
use infra::{Clock, Db};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Where sessions live and how long they last.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    pub store: SessionBackend,
    #[serde(with = "duration")]
    pub idle_timeout: Duration,
    #[serde(with = "duration")]
    pub absolute_lifetime: Duration,
    /// How often `last_seen_at` may be written; by default a sixtieth of the idle timeout.
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub touch_interval: Option<Duration>,
    /// How often expired sessions are swept.
    #[serde(with = "duration")]
    pub sweep_interval: Duration,
    /// `redis://…`, `redis+sentinel://host:port,…/service[/db]` or
    /// `redis+cluster://host:port,…`, for `store = "redis"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// How many replicas must have a new session or a revocation before it is reported done
    /// (`WAIT`); by default 1 with Sentinel and 0 with one server (see `redis_conn`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_confirm_replicas: Option<u32>,
    /// How long such a write waits for them before failing (503).
    #[serde(with = "duration")]
    pub redis_confirm_timeout: Duration,
    /// Prefix of every Redis key (several apps or tests can share one Redis).
    pub redis_prefix: String,
    /// "Keep me signed in": off unless allowed here.
    pub remember: RememberConfig,
}

/// "Keep me signed in": a person may ask, at sign-in, for a session whose cookie outlives the
/// browser, with these (longer) limits of its own.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RememberConfig {
    /// Offer it at sign-in.
    pub enabled: bool,
    /// A kept session unused for this long ends.
    #[serde(with = "duration")]
    pub idle_timeout: Duration,
    /// A kept session ends this long after its sign-in, however active.
    #[serde(with = "duration")]
    pub absolute_lifetime: Duration,
}

impl Default for RememberConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            idle_timeout: Duration::from_secs(7 * 24 * 3600),
            absolute_lifetime: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// The longest a kept session may last: a cookie's `Max-Age` is capped at 400 days
/// (RFC 6265bis §5.6.2).
const REMEMBER_MAX: Duration = Duration::from_secs(400 * 24 * 3600);

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SessionBackend {
    /// The app's SQL database (SQLite or PostgreSQL): survives restarts, shared by instances.
    Sql,
    /// Redis (`redis_url`): shared by instances, kept in memory by Redis.
    Redis,
    /// This process's memory: lost on restart, one instance only.
    Memory,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            store: SessionBackend::Sql,
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_lifetime: Duration::from_secs(12 * 3600),
            touch_interval: None,
            sweep_interval: Duration::from_secs(60),
            redis_url: None,
            redis_confirm_replicas: None,
            redis_confirm_timeout: Duration::from_millis(500),
            redis_prefix: "gatehouse:".into(),
            remember: RememberConfig::default(),
        }
    }
}

impl SessionConfig {
    /// The expiry rules these settings describe.
    pub fn policy(&self) -> SessionPolicy {
        let mut policy = SessionPolicy::new(self.idle_timeout, self.absolute_lifetime);
        if let Some(t) = self.touch_interval {
            policy.touch_interval = t;
        }
        if self.remember.enabled {
            policy.remembered = Some((self.remember.idle_timeout, self.remember.absolute_lifetime));
        }
        policy
    }

    /// Sessions on the configured backend; `db` serves the `sql` backend (its migrations
    /// must have run) and is required for it.
    pub async fn sessions(&self, db: Option<&Db>, clock: Clock) -> Result<Sessions, ConfigError> {
        let backend: Arc<dyn SessionStore> = match (self.store, db) {
            (SessionBackend::Sql, Some(db)) => Arc::new(SqlStore::new(db.clone())),
            (SessionBackend::Sql, None) => {
                return Err(ConfigError::Invalid(
                    "the sql session store needs a database",
                ));
            }
            (SessionBackend::Redis, _) => {
                let url = self.redis_url.as_deref().ok_or(ConfigError::Invalid(
                    "session.store = redis needs session.redis_url",
                ))?;
                Arc::new(self.redis_store(url).await?)
            }
            (SessionBackend::Memory, _) => Arc::new(MemoryStore::new()),
        };
        Ok(Sessions::new(backend, self.policy(), clock))
    }

    /// The Redis store at `url` with these settings (prefix, confirmed writes).
    pub async fn redis_store(&self, url: &str) -> Result<RedisStore, ConfigError> {
        let target = RedisTarget::parse(url)?;
        let confirm = self.redis_confirm(&target);
        Ok(RedisStore::connect_to(&target, &self.redis_prefix, confirm).await?)
    }

    /// How writes that matter are confirmed on `target`: the defaults
    /// ([`RedisStore::default_confirm`]) overridden by these settings.
    pub fn redis_confirm(&self, target: &RedisTarget) -> Confirm {
        let default = RedisStore::default_confirm(target);
        Confirm {
            replicas: self.redis_confirm_replicas.unwrap_or(default.replicas),
            timeout: self.redis_confirm_timeout,
        }
    }

    /// Rules a type cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.idle_timeout > self.absolute_lifetime {
            return Err("session.idle_timeout must not exceed session.absolute_lifetime".into());
        }
        if self.idle_timeout.is_zero() || self.sweep_interval.is_zero() {
            return Err("session durations must be positive".into());
        }
        if let Some(url) = &self.redis_url {
            RedisTarget::parse(url).map_err(|e| e.to_string())?;
        }
        if self.redis_confirm_timeout.is_zero()
            || self.redis_confirm_timeout > Duration::from_secs(10)
        {
            return Err("session.redis_confirm_timeout must be between 1ms and 10s".into());
        }
        let kept = &self.remember;
        if kept.enabled {
            if kept.idle_timeout.is_zero() || kept.idle_timeout > kept.absolute_lifetime {
                return Err(
                    "session.remember.idle_timeout must be positive and not exceed \
                     session.remember.absolute_lifetime"
                        .into(),
                );
            }
            if kept.idle_timeout < self.idle_timeout
                || kept.absolute_lifetime < self.absolute_lifetime
            {
                return Err(
                    "session.remember limits must not be shorter than the usual ones".into(),
                );
            }
            if kept.absolute_lifetime > REMEMBER_MAX {
                return Err("session.remember.absolute_lifetime must not exceed 400 days".into());
            }
        }
        Ok(())
    }
}

/// The session settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Url(#[from] UrlError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_policy_follows() {
        let c: SessionConfig = serde_json::from_str(
            r#"{"idle_timeout":"5s","absolute_lifetime":"1h","store":"memory"}"#,
        )
        .unwrap();
        assert_eq!(c.idle_timeout, Duration::from_secs(5));
        assert_eq!(c.store, SessionBackend::Memory);
        assert_eq!(c.policy().touch_interval, Duration::from_secs(1));
        assert!(c.validate().is_ok());
        let bad: SessionConfig =
            serde_json::from_str(r#"{"idle_timeout":"2h","absolute_lifetime":"1h"}"#).unwrap();
        assert!(bad.validate().is_err());
        assert!(serde_json::from_str::<SessionConfig>(r#"{"store":"redis-cluster"}"#).is_err());
    }
}
