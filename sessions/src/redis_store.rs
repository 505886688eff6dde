//! Redis backend: sessions shared by several processes, kept in memory by Redis.
//!
//! Layout under a configurable prefix `P` (one Redis database; on a Redis Cluster `P` is a hash
//! tag such as `{gatehouse:}`, so that every key is in one slot and every script, which builds
//! key names itself, touches that slot only: the cluster routes each script by its one
//! declared key, `P` itself):
//! - `P s:{id_hash}`: a hash with the session's fields (`data` stays one opaque JSON string, so
//!   no script ever re-encodes it);
//! - `P h:{handle}`: the id hash of the session with that public handle;
//! - `P u:{user_id}` and `P x:{external_key}`: sets of handles (the per-user and per-`sid`
//!   indexes);
//! - `P exp`: a sorted set of handles by idle deadline, which the sweeper reads;
//! - `P e:{marker}`: when an external key or a user ended (kept, by TTL, for an absolute
//!   lifetime).
//!
//! Every change that touches more than one key is one Lua script, so the indexes never
//! disagree with the sessions. Deadlines are checked against the injected clock on every read.
//! Redis TTLs only reclaim memory, and are set from the session's *absolute* deadline plus a
//! grace period (a day by default): a session and its handle live at least until then however
//! often it is touched, and an index set never expires before the longest-lived of its
//! members, so a session in continuous use never drops out of the per-user or per-`sid`
//! index. Idle-expired sessions are removed (and reported) by the sweeper long before that.

use crate::model::StoredSession;
use crate::redis_conn::{Confirm, Conn, RedisTarget};
use crate::store::{SessionStore, StoreError};
use async_trait::async_trait;
use redis::{AsyncCommands, Cmd, Script};
use std::collections::HashMap;
use std::time::Duration;

/// How long a record outlives its absolute deadline in Redis, so that a sweeper that was not
/// running at the time (every instance stopped) can still report its end.
const GRACE_SECS: i64 = 86_400;

/// Sessions in Redis.
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    prefix: String,
    scripts: std::sync::Arc<Scripts>,
    grace_secs: i64,
}

struct Scripts {
    put: Script,
    touch: Script,
    remove: Script,
    remove_set: Script,
    list: Script,
    expired: Script,
}

/// Shared by the scripts: `live(key, now)` and `drop_session(prefix, key)` (deletes a session
/// and its index entries, returning its fields).
const LIB: &str = r"
local function live(key, now)
  local v = redis.call('HMGET', key, 'idle_expires_at', 'absolute_expires_at')
  if not v[1] then return false end
  return tonumber(v[1]) > now and tonumber(v[2]) > now
end
local function drop_session(p, key)
  local fields = redis.call('HGETALL', key)
  if #fields == 0 then return nil end
  local f = {}
  for i = 1, #fields, 2 do f[fields[i]] = fields[i + 1] end
  redis.call('DEL', key)
  if f.handle then
    redis.call('DEL', p .. 'h:' .. f.handle)
    redis.call('ZREM', p .. 'exp', f.handle)
    if f.user_id then redis.call('SREM', p .. 'u:' .. f.user_id, f.handle) end
    if f.external_key then redis.call('SREM', p .. 'x:' .. f.external_key, f.handle) end
  end
  return fields
end
";

/// ARGV: prefix, mode (`insert`|`update`), old hash, new hash, now, ttl, then field/value pairs.
const PUT: &str = r"
local p, mode, old, new = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, ttl = tonumber(ARGV[5]), tonumber(ARGV[6])
local f = {}
for i = 7, #ARGV, 2 do f[ARGV[i]] = ARGV[i + 1] end
if mode == 'insert' then
  if redis.call('EXISTS', p .. 's:' .. new) == 1 or redis.call('EXISTS', p .. 'h:' .. f.handle) == 1 then
    return 0
  end
else
  local okey = p .. 's:' .. old
  if not live(okey, now) then return 0 end
  if tonumber(redis.call('HGET', okey, 'version') or '0') ~= tonumber(f.version) - 1 then
    return 0
  end
  drop_session(p, okey)
end
local key = p .. 's:' .. new
redis.call('HSET', key, unpack(ARGV, 7))
redis.call('EXPIRE', key, ttl)
redis.call('SET', p .. 'h:' .. f.handle, new, 'EX', ttl)
redis.call('ZADD', p .. 'exp', f.idle_expires_at, f.handle)
for _, idx in ipairs({ { 'u:', f.user_id }, { 'x:', f.external_key } }) do
  if idx[2] then
    local set = p .. idx[1] .. idx[2]
    redis.call('SADD', set, f.handle)
    if redis.call('TTL', set) < ttl then redis.call('EXPIRE', set, ttl) end
  end
end
return 1
";

/// ARGV: prefix, id hash, now, new idle deadline. The keys' TTLs already run to the absolute
/// deadline (see the module documentation), so a touch leaves them, and the indexes, alone.
const TOUCH: &str = r"
local p, hash, now, idle = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local key = p .. 's:' .. hash
if not live(key, now) then return 0 end
redis.call('HSET', key, 'last_seen_at', ARGV[3], 'idle_expires_at', idle)
local handle = redis.call('HGET', key, 'handle')
redis.call('ZADD', p .. 'exp', idle, handle)
return 1
";

/// Every removal writes this key first, so that it always replicates something and the `WAIT`
/// sent with it covers every write the primary took before (see `redis_conn`).
const FENCE: &str = r"
redis.call('SET', ARGV[1] .. 'fence', '1', 'EX', 3600)
";

/// ARGV: prefix, `hash` or `handle`, value. Returns the removed session's fields (or nil).
const REMOVE: &str = r"
local p, by, v = ARGV[1], ARGV[2], ARGV[3]
local hash = v
if by == 'handle' then
  hash = redis.call('GET', p .. 'h:' .. v)
  if not hash then
    redis.call('ZREM', p .. 'exp', v)
    return nil
  end
end
return drop_session(p, p .. 's:' .. hash)
";

/// Removes every session in the set `ARGV[2]` (`u:…`/`x:…`), or, with `ARGV[2] = 'expired'`,
/// every session whose idle deadline is at or before `ARGV[3]`. Returns their fields.
const REMOVE_SET: &str = r"
local p, which = ARGV[1], ARGV[2]
local handles
if which == 'expired' then
  handles = redis.call('ZRANGEBYSCORE', p .. 'exp', '-inf', ARGV[3])
else
  handles = redis.call('SMEMBERS', p .. which)
end
local out = {}
for _, handle in ipairs(handles) do
  local hash = redis.call('GET', p .. 'h:' .. handle)
  local fields = hash and drop_session(p, p .. 's:' .. hash)
  if fields then
    local f = {}
    for i = 1, #fields, 2 do f[fields[i]] = fields[i + 1] end
    if which ~= 'expired' or not (tonumber(f.idle_expires_at) > tonumber(ARGV[3]) and tonumber(f.absolute_expires_at) > tonumber(ARGV[3])) then
      table.insert(out, fields)
    end
  else
    redis.call('ZREM', p .. 'exp', handle)
  end
end
if which ~= 'expired' then redis.call('DEL', p .. which) end
return out
";

/// ARGV: prefix, now, limit. Up to `limit` sessions whose idle (or absolute) deadline is at or
/// before `now`, left in place; handles whose record is already gone are dropped from the
/// sweep index.
const EXPIRED: &str = r"
local p, now = ARGV[1], ARGV[2]
local out = {}
for _, handle in ipairs(redis.call('ZRANGEBYSCORE', p .. 'exp', '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))) do
  local hash = redis.call('GET', p .. 'h:' .. handle)
  local fields = hash and redis.call('HGETALL', p .. 's:' .. hash)
  if fields and #fields > 0 then
    table.insert(out, fields)
  else
    redis.call('ZREM', p .. 'exp', handle)
  end
end
return out
";

/// The sessions in set `ARGV[2]`, pruning members whose session is gone. Returns their fields.
const LIST: &str = r"
local p, set = ARGV[1], ARGV[2]
local out = {}
for _, handle in ipairs(redis.call('SMEMBERS', p .. set)) do
  local hash = redis.call('GET', p .. 'h:' .. handle)
  local fields = hash and redis.call('HGETALL', p .. 's:' .. hash)
  if fields and #fields > 0 then
    table.insert(out, fields)
  else
    redis.call('SREM', p .. set, handle)
  end
end
return out
";

impl RedisStore {
    /// Connects to `url` (`redis://…`, or `redis+sentinel://…`: see [`crate::redis_conn`])
    /// with the default confirmation of writes ([`RedisStore::default_confirm`]).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let target = RedisTarget::parse(url).map_err(|e| corrupt_config(&e.to_string()))?;
        Self::connect_to(&target, prefix, Self::default_confirm(&target)).await
    }

    /// By default, writes that matter wait for one replica with Sentinel (whose failover
    /// would otherwise lose what the dead primary had not passed on) and for none with one
    /// server or a cluster (whose primaries need not have replicas).
    pub fn default_confirm(target: &RedisTarget) -> Confirm {
        Confirm {
            replicas: u32::from(matches!(target, RedisTarget::Sentinel { .. })),
            timeout: Duration::from_millis(500),
        }
    }

    /// Connects to `target`. Commands time out after a second (plus the confirmation's wait)
    /// and the connection is re-established in the background (to the primary of the moment,
    /// with Sentinel), so an outage answers with errors, not hangs.
    pub async fn connect_to(
        target: &RedisTarget,
        prefix: &str,
        confirm: Confirm,
    ) -> Result<Self, StoreError> {
        let conn = Conn::open(target, confirm).await?;
        let prefix = match target {
            RedisTarget::Cluster { .. } => hash_tagged(prefix),
            _ => prefix.to_owned(),
        };
        let script = |body: &str| Script::new(&format!("{LIB}\n{body}"));
        let scripts = Scripts {
            put: script(PUT),
            touch: script(TOUCH),
            remove: script(&format!("{FENCE}\n{REMOVE}")),
            remove_set: script(&format!("{FENCE}\n{REMOVE_SET}")),
            list: script(LIST),
            expired: script(EXPIRED),
        };
        Ok(Self {
            conn,
            prefix,
            scripts: std::sync::Arc::new(scripts),
            grace_secs: GRACE_SECS,
        })
    }

    /// What `INFO replication` says of this Redis: its role, how many replicas a primary
    /// has, whether a replica's link to its primary is up (`role=master, connected_slaves=1`);
    /// of a cluster, its state and size (`cluster_state=ok, cluster_size=3, …`).
    pub async fn replication(&self) -> Result<String, StoreError> {
        // A cluster answers for itself (`INFO` would go to every primary).
        let (query, wanted): (_, &[&str]) = if self.conn.is_cluster() {
            (
                redis::cmd("CLUSTER").arg("INFO").to_owned(),
                &["cluster_state", "cluster_size", "cluster_known_nodes"],
            )
        } else {
            (
                redis::cmd("INFO").arg("replication").to_owned(),
                &["role", "connected_slaves", "master_link_status"],
            )
        };
        let info: String = query.query_async(&mut self.conn.link()).await?;
        Ok(info
            .lines()
            .filter_map(|line| line.split_once(':'))
            .filter(|(key, _)| wanted.contains(key))
            .map(|(key, value)| format!("{key}={}", value.trim()))
            .collect::<Vec<_>>()
            .join(", "))
    }

    /// With Sentinel, the primary in use (`host:port`), once one was found.
    pub async fn sentinel_primary(&self) -> Option<String> {
        self.conn.primary().await
    }

    /// Keeps records this long past their absolute deadline (default a day). For tests that
    /// let Redis TTLs elapse in real time.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace_secs = i64::try_from(grace.as_secs()).unwrap_or(GRACE_SECS);
        self
    }

    async fn put(
        &self,
        mode: &str,
        old_hash: &str,
        s: &StoredSession,
        now: i64,
    ) -> Result<bool, StoreError> {
        let ttl = (s.absolute_expires_at - now).max(1) + self.grace_secs;
        let mut args = self.args();
        args.arg(mode)
            .arg(old_hash)
            .arg(&s.id_hash)
            .arg(now)
            .arg(ttl);
        for (k, v) in fields(s) {
            args.arg(k).arg(v);
        }
        let done: i64 = self
            .conn
            .eval(&self.scripts.put, &self.prefix, &args, true)
            .await?;
        Ok(done == 1)
    }

    /// Removes the sessions of set `which` (confirmed: a revocation), or the expired ones
    /// (not confirmed: their deadlines refuse them anyway, on whichever server).
    async fn remove_set(&self, which: &str, now: i64) -> Result<Vec<StoredSession>, StoreError> {
        let mut args = self.args();
        args.arg(which).arg(now);
        let confirm = which != "expired";
        let rows: Vec<Vec<String>> = self
            .conn
            .eval(&self.scripts.remove_set, &self.prefix, &args, confirm)
            .await?;
        rows.into_iter().map(from_fields).collect()
    }

    /// A script's arguments, starting with the key prefix.
    fn args(&self) -> Cmd {
        let mut args = Cmd::new();
        args.arg(&self.prefix);
        args
    }
}

/// `prefix` as a Redis Cluster hash tag: as it is when it already holds one (`{…}` with
/// something inside, the first such being the tag), else `{prefix}`.
fn hash_tagged(prefix: &str) -> String {
    let tagged = prefix
        .split_once('{')
        .and_then(|(_, rest)| rest.split_once('}'))
        .is_some_and(|(tag, _)| !tag.is_empty());
    if tagged {
        prefix.to_owned()
    } else {
        format!("{{{prefix}}}")
    }
}

/// A session as hash fields; absent options are left out.
fn fields(s: &StoredSession) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("handle", s.handle.clone()),
        ("data", s.data.to_string()),
        ("csrf_token", s.csrf_token.clone()),
        ("created_at", s.created_at.to_string()),
        ("last_seen_at", s.last_seen_at.to_string()),
        ("idle_expires_at", s.idle_expires_at.to_string()),
        ("absolute_expires_at", s.absolute_expires_at.to_string()),
        ("version", s.version.to_string()),
    ];
    let optional = [
        ("user_id", s.user_id.clone()),
        ("external_key", s.external_key.clone()),
        ("auth_time", s.auth_time.map(|t| t.to_string())),
        ("user_agent", s.user_agent.clone()),
        ("client_addr", s.client_addr.clone()),
    ];
    out.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    out
}

fn corrupt_config(what: &str) -> StoreError {
    StoreError::Redis(redis::RedisError::from((
        redis::ErrorKind::InvalidClientConfig,
        "invalid session.redis_url",
        what.to_owned(),
    )))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Sql(sqlx::Error::Decode(
        format!("redis session record: {what}").into(),
    ))
}

/// Parses `HGETALL` output (`[k1, v1, k2, v2, …]`); `id_hash` is not a field, so it is left
/// empty here and filled in by callers that know it.
fn from_fields(flat: Vec<String>) -> Result<StoredSession, StoreError> {
    let mut map: HashMap<String, String> = HashMap::new();
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        map.insert(k, v);
    }
    let int = |k: &str| -> Result<i64, StoreError> {
        map.get(k)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| corrupt(k))
    };
    Ok(StoredSession {
        id_hash: map.get("id_hash").cloned().unwrap_or_default(),
        handle: map
            .get("handle")
            .cloned()
            .ok_or_else(|| corrupt("handle"))?,
        user_id: map.get("user_id").cloned(),
        external_key: map.get("external_key").cloned(),
        data: serde_json::from_str(map.get("data").map_or("{}", String::as_str))?,
        csrf_token: map
            .get("csrf_token")
            .cloned()
            .ok_or_else(|| corrupt("csrf_token"))?,
        created_at: int("created_at")?,
        last_seen_at: int("last_seen_at")?,
        idle_expires_at: int("idle_expires_at")?,
        absolute_expires_at: int("absolute_expires_at")?,
        auth_time: map.get("auth_time").and_then(|v| v.parse().ok()),
        user_agent: map.get("user_agent").cloned(),
        client_addr: map.get("client_addr").cloned(),
        version: map.get("version").and_then(|v| v.parse().ok()).unwrap_or(0),
    })
}

fn optional(flat: Option<Vec<String>>) -> Result<Option<StoredSession>, StoreError> {
    flat.filter(|f| !f.is_empty()).map(from_fields).transpose()
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn insert(&self, session: &StoredSession) -> Result<(), StoreError> {
        let now = session.last_seen_at;
        if self.put("insert", "", session, now).await? {
            Ok(())
        } else {
            Err(corrupt("id or handle already exists"))
        }
    }

    async fn get(&self, id_hash: &str, now: i64) -> Result<Option<StoredSession>, StoreError> {
        let key = format!("{}s:{id_hash}", self.prefix);
        let flat: Vec<String> = self.conn.link().hgetall(&key).await?;
        let found = optional(Some(flat))?.map(|mut s| {
            s.id_hash = id_hash.to_owned();
            s
        });
        Ok(found.filter(|s| s.is_live(now)))
    }

    async fn update(
        &self,
        old_hash: &str,
        session: &StoredSession,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.put("update", old_hash, session, now).await
    }

    /// Not confirmed: a touch lost in a failover brings the idle deadline nearer, never
    /// further.
    async fn touch(&self, id_hash: &str, now: i64, idle_expires_at: i64) -> Result<(), StoreError> {
        let mut args = self.args();
        args.arg(id_hash).arg(now).arg(idle_expires_at);
        let _: i64 = self
            .conn
            .eval(&self.scripts.touch, &self.prefix, &args, false)
            .await?;
        Ok(())
    }

    async fn remove(&self, id_hash: &str) -> Result<Option<StoredSession>, StoreError> {
        let mut args = self.args();
        args.arg("hash").arg(id_hash);
        let flat: Option<Vec<String>> = self
            .conn
            .eval(&self.scripts.remove, &self.prefix, &args, true)
            .await?;
        optional(flat)
    }

    async fn remove_by_handle(&self, handle: &str) -> Result<Option<StoredSession>, StoreError> {
        let mut args = self.args();
        args.arg("handle").arg(handle);
        let flat: Option<Vec<String>> = self
            .conn
            .eval(&self.scripts.remove, &self.prefix, &args, true)
            .await?;
        optional(flat)
    }

    async fn get_by_handle(&self, handle: &str) -> Result<Option<StoredSession>, StoreError> {
        let mut conn = self.conn.link();
        let hash: Option<String> = conn.get(format!("{}h:{handle}", self.prefix)).await?;
        let Some(hash) = hash else {
            return Ok(None);
        };
        let flat: Vec<String> = conn.hgetall(format!("{}s:{hash}", self.prefix)).await?;
        Ok(optional(Some(flat))?.map(|mut s| {
            s.id_hash = hash;
            s
        }))
    }

    async fn list_expired(&self, now: i64, limit: usize) -> Result<Vec<StoredSession>, StoreError> {
        let mut args = self.args();
        args.arg(now).arg(limit);
        let rows: Vec<Vec<String>> = self
            .conn
            .eval(&self.scripts.expired, &self.prefix, &args, false)
            .await?;
        rows.into_iter().map(from_fields).collect()
    }

    async fn mark_ended(
        &self,
        marker: &str,
        ended_at: i64,
        keep_until: i64,
    ) -> Result<(), StoreError> {
        let ttl = u64::try_from((keep_until - ended_at).max(1)).unwrap_or(1);
        let key = format!("{}e:{marker}", self.prefix);
        let value = format!("{ended_at} {keep_until}");
        // A revocation: confirmed like the removals.
        let mut set = redis::cmd("SET");
        set.arg(key).arg(value).arg("EX").arg(ttl);
        let _: () = self.conn.query(&set, true).await?;
        Ok(())
    }

    async fn ended_at(&self, marker: &str, now: i64) -> Result<Option<i64>, StoreError> {
        let key = format!("{}e:{marker}", self.prefix);
        let value: Option<String> = self.conn.link().get(&key).await?;
        // `ended_at keep_until`: the deadline is checked against the injected clock, like
        // the sessions'; the TTL only reclaims memory.
        Ok(value.and_then(|v| {
            let (at, until) = v.split_once(' ')?;
            let until: i64 = until.parse().ok()?;
            (until > now).then(|| at.parse().ok()).flatten()
        }))
    }

    async fn remove_by_user(&self, user_id: &str) -> Result<Vec<StoredSession>, StoreError> {
        self.remove_set(&format!("u:{user_id}"), 0).await
    }

    async fn remove_by_external_key(&self, key: &str) -> Result<Vec<StoredSession>, StoreError> {
        self.remove_set(&format!("x:{key}"), 0).await
    }

    async fn list_by_user(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<StoredSession>, StoreError> {
        let mut args = self.args();
        args.arg(format!("u:{user_id}"));
        let rows: Vec<Vec<String>> = self
            .conn
            .eval(&self.scripts.list, &self.prefix, &args, false)
            .await?;
        let mut list: Vec<StoredSession> = rows
            .into_iter()
            .map(from_fields)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|s| s.is_live(now))
            .collect();
        list.sort_by_key(|s| s.created_at);
        Ok(list)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.conn.link())
            .await?;
        Ok(())
    }

    async fn remove_expired(&self, now: i64) -> Result<Vec<StoredSession>, StoreError> {
        self.remove_set("expired", now).await
    }
}

#[cfg(test)]
mod tests {
    use super::hash_tagged;

    #[test]
    fn a_cluster_prefix_is_a_hash_tag() {
        assert_eq!(hash_tagged("gatehouse:"), "{gatehouse:}");
        assert_eq!(hash_tagged("{gh}:sessions:"), "{gh}:sessions:");
        assert_eq!(hash_tagged("app:{gh}:"), "app:{gh}:");
        assert_eq!(hash_tagged("{}gh:"), "{{}gh:}", "an empty tag is no tag");
        assert_eq!(hash_tagged("gh{"), "{gh{}");
    }
}
