//! How the Redis session store reaches Redis, and how it knows that a write will survive the
//! loss of the primary.
//!
//! `session.redis_url` names one server (`redis://host:port/db`, followed through reconnects
//! by the redis crate's `ConnectionManager`), a Redis Cluster
//! (`redis+cluster://[user:password@]host:port,host:port,…`, the redis crate's cluster client,
//! which follows the cluster's own failovers and slot moves), or a Sentinel deployment
//! (`redis+sentinel://[user:password@]host:port,host:port,…/service[/db]`). For Sentinel the
//! store asks the sentinels which server is the primary of `service` (the redis crate connects
//! and checks that it says `master`), keeps one connection to it, and asks again when that
//! connection fails or the server answers `READONLY` (it was demoted). A command that surely
//! did not run (the connection was refused, or `READONLY`) is sent once more to the primary
//! found anew; any other failure is the request's, answered with 503 and retried by the person.
//! The following is written here because the redis crate's Sentinel client resolves a primary
//! once per connection and its `ConnectionManager` reconnects to a fixed address.
//!
//! **Confirmed writes.** Redis replicates asynchronously: a primary that dies takes with it
//! what it acknowledged but had not yet sent on. The writes that matter (a new or changed
//! session, every removal, an end marker) are therefore sent together with `WAIT n timeout`,
//! on a connection of their own (`WAIT` holds its connection until the replicas answer, and the
//! reads must not queue behind it), and the store reports success only when `n` replicas have
//! the write. Sentinel promotes the replica with the most replicated data, so a confirmed write
//! survives the loss of the primary: a session that was confirmed is not lost, and a
//! revocation that was confirmed does not come undone. A write that is not confirmed in time
//! fails as the store being unavailable (503), so nothing is reported done that a failover
//! could take back. `n` is `session.redis_confirm_replicas`: 1 by default with Sentinel,
//! 0 (no waiting) with one server or a cluster.

use crate::store::StoreError;
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Cmd, ConnectionAddr, ErrorKind, FromRedisValue, IntoConnectionInfo,
    RedisConnectionInfo, RedisError, RedisFuture, RedisResult, Script, ServerErrorKind, Value,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How long connecting, and each answer, may take.
const TIMEOUT: Duration = Duration::from_secs(1);
/// How long asking the sentinels for the primary may take altogether.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);
/// After the sentinels could not name a reachable primary, requests fail at once for this long
/// instead of each asking again (during a failover they all would).
const RESOLVE_BACKOFF: Duration = Duration::from_millis(100);

/// What `session.redis_url` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server: the URL as the redis crate reads it.
    Server(String),
    /// A Redis Cluster, known first through `nodes`.
    Cluster {
        nodes: Vec<(String, u16)>,
        username: Option<String>,
        password: Option<String>,
    },
    /// The primary of `service`, as the `sentinels` say.
    Sentinel {
        sentinels: Vec<(String, u16)>,
        service: String,
        db: i64,
        username: Option<String>,
        password: Option<String>,
        /// For the sentinels themselves (`?sentinel_username=…&sentinel_password=…`).
        sentinel_username: Option<String>,
        sentinel_password: Option<String>,
    },
}

/// `redis_url` is not one the store can use; the message never repeats a password.
#[derive(Debug, thiserror::Error)]
#[error("session.redis_url: {0}")]
pub struct UrlError(&'static str);

const SENTINEL_SCHEME: &str = "redis+sentinel://";
const CLUSTER_SCHEME: &str = "redis+cluster://";

/// A URL's credentials and host list: `[user[:password]@]host:port,host:port,…`.
type Authority = (Option<String>, Option<String>, Vec<(String, u16)>);

fn authority(authority: &str, default_port: u16) -> Result<Authority, UrlError> {
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let (user, pass) = info
                .split_once(':')
                .map_or((info, None), |(u, p)| (u, Some(p)));
            (decoded(user)?, pass.map(decoded).transpose()?.flatten())
        }
    };
    let hosts = hosts
        .split(',')
        .map(|h| host_port(h, default_port))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((username, password, hosts))
}

impl RedisTarget {
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        if let Some(rest) = url.strip_prefix(CLUSTER_SCHEME) {
            let rest = rest.strip_suffix('/').unwrap_or(rest);
            if rest.contains(['/', '?']) {
                return Err(UrlError(
                    "expected redis+cluster://host:port,… (a cluster has one database)",
                ));
            }
            let (username, password, nodes) = authority(rest, 6379)?;
            return Ok(Self::Cluster {
                nodes,
                username,
                password,
            });
        }
        let Some(rest) = url.strip_prefix(SENTINEL_SCHEME) else {
            if url.contains("+sentinel://") || url.contains("+cluster://") {
                return Err(UrlError(
                    "only redis+sentinel:// and redis+cluster:// (no TLS) are supported",
                ));
            }
            return Ok(Self::Server(url.to_owned()));
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority_part, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (username, password, sentinels) = authority(authority_part, 26379)?;
        let mut segments = path.trim_end_matches('/').split('/');
        let service = segments.next().filter(|s| !s.is_empty()).ok_or(UrlError(
            "name the monitored service: redis+sentinel://host:port,…/service",
        ))?;
        let db = match segments.next() {
            None => 0,
            Some(db) => db
                .parse()
                .map_err(|_| UrlError("the database must be a number"))?,
        };
        if segments.next().is_some() {
            return Err(UrlError("expected redis+sentinel://hosts/service[/db]"));
        }
        let mut target_sentinel = (None, None);
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "sentinel_username" => target_sentinel.0 = Some(value.into_owned()),
                "sentinel_password" => target_sentinel.1 = Some(value.into_owned()),
                _ => return Err(UrlError("unknown query parameter")),
            }
        }
        Ok(Self::Sentinel {
            sentinels,
            service: decoded(service)?.unwrap_or_default(),
            db,
            username,
            password,
            sentinel_username: target_sentinel.0,
            sentinel_password: target_sentinel.1,
        })
    }
}

fn decoded(part: &str) -> Result<Option<String>, UrlError> {
    if part.is_empty() {
        return Ok(None);
    }
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .map(|s| Some(s.into_owned()))
        .map_err(|_| UrlError("user and password must be UTF-8"))
}

/// `host:port`, `[v6]:port`, or a host alone (on `default_port`).
fn host_port(entry: &str, default_port: u16) -> Result<(String, u16), UrlError> {
    let bad = UrlError("each sentinel is host:port");
    let (host, port) = if let Some(v6) = entry.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or(bad)?;
        (host, after.strip_prefix(':'))
    } else {
        match entry.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (entry, None),
        }
    };
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse()
            .map_err(|_| UrlError("each sentinel is host:port"))?,
    };
    if host.is_empty() || port == 0 {
        return Err(UrlError("each sentinel is host:port"));
    }
    Ok((host.to_owned(), port))
}

/// A connection to the primary, in any form; cheap to clone (clones share it).
#[derive(Clone)]
enum Link {
    Server(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(Arc<Followed>),
}

impl Link {
    async fn open(target: &RedisTarget, response_timeout: Duration) -> RedisResult<Self> {
        match target {
            RedisTarget::Server(url) => {
                let client = redis::Client::open(url.as_str())?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(TIMEOUT))
                    .set_response_timeout(Some(response_timeout))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_secs(2));
                Ok(Self::Server(
                    ConnectionManager::new_with_config(client, config).await?,
                ))
            }
            RedisTarget::Cluster {
                nodes,
                username,
                password,
            } => {
                let addrs = nodes
                    .iter()
                    .map(|(host, port)| ConnectionAddr::Tcp(host.clone(), *port));
                let mut builder = ClusterClientBuilder::new(addrs)
                    .connection_timeout(TIMEOUT)
                    .response_timeout(response_timeout)
                    .retries(2);
                if let Some(u) = username {
                    builder = builder.username(u);
                }
                if let Some(p) = password {
                    builder = builder.password(p);
                }
                Ok(Self::Cluster(
                    builder.build()?.get_async_connection().await?,
                ))
            }
            RedisTarget::Sentinel { .. } => {
                let followed = Followed::new(target, response_timeout)?;
                // Fails now if no sentinel names a primary, as a wrong `redis://` URL would.
                followed.connection().await?;
                Ok(Self::Sentinel(Arc::new(followed)))
            }
        }
    }
}

/// The primary that the sentinels name, followed across failovers (see the module docs).
struct Followed {
    sentinel: Mutex<SentinelClient>,
    /// The current connection and its generation; `None` until one is made.
    current: Mutex<Current>,
    generation: AtomicU64,
    config: AsyncConnectionConfig,
}

#[derive(Default)]
struct Current {
    link: Option<(u64, MultiplexedConnection)>,
    /// After a failed lookup: fail fast until then, with this message.
    backoff: Option<(Instant, String)>,
}

impl Followed {
    fn new(target: &RedisTarget, response_timeout: Duration) -> RedisResult<Self> {
        let RedisTarget::Sentinel {
            sentinels,
            service,
            db,
            username,
            password,
            sentinel_username,
            sentinel_password,
        } = target
        else {
            return Err(invalid("not a Sentinel URL"));
        };
        let credentials = |user: &Option<String>, pass: &Option<String>| {
            let mut info = RedisConnectionInfo::default();
            if let Some(u) = user {
                info = info.set_username(u);
            }
            if let Some(p) = pass {
                info = info.set_password(p);
            }
            info
        };
        let nodes = sentinels
            .iter()
            .map(|(host, port)| {
                ConnectionAddr::Tcp(host.clone(), *port)
                    .into_connection_info()
                    .map(|c| {
                        c.set_redis_settings(credentials(sentinel_username, sentinel_password))
                    })
            })
            .collect::<RedisResult<Vec<_>>>()?;
        let node = SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(credentials(username, password).set_db(*db));
        let client = SentinelClient::build(
            nodes,
            service.clone(),
            Some(node),
            SentinelServerType::Master,
        )?;
        Ok(Self {
            sentinel: Mutex::new(client),
            current: Mutex::new(Current::default()),
            generation: AtomicU64::new(0),
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(TIMEOUT))
                .set_response_timeout(Some(response_timeout)),
        })
    }

    /// The current connection, or a new one to the primary the sentinels name now. One lookup
    /// at a time: the others wait for its answer.
    async fn connection(&self) -> RedisResult<(u64, MultiplexedConnection)> {
        let mut current = self.current.lock().await;
        if let Some((generation, conn)) = &current.link {
            return Ok((*generation, conn.clone()));
        }
        if let Some((until, message)) = &current.backoff
            && Instant::now() < *until
        {
            return Err(unreachable(message.clone()));
        }
        let lookup = async {
            let mut sentinel = self.sentinel.lock().await;
            sentinel
                .get_async_connection_with_config(&self.config)
                .await
        };
        let found = match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
            Ok(found) => found,
            Err(_) => Err(unreachable("the sentinels did not answer in time".into())),
        };
        match found {
            Ok(conn) => {
                let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
                *current = Current {
                    link: Some((generation, conn.clone())),
                    backoff: None,
                };
                Ok((generation, conn))
            }
            Err(e) => {
                tracing::warn!(error = %e, "no Redis primary reachable through Sentinel");
                current.backoff = Some((Instant::now() + RESOLVE_BACKOFF, e.to_string()));
                Err(e)
            }
        }
    }

    /// Drops connection `generation` (not a newer one) so that the next command looks again.
    async fn forget(&self, generation: u64) {
        let mut current = self.current.lock().await;
        if current.link.as_ref().is_some_and(|(g, _)| *g == generation) {
            current.link = None;
        }
    }

    /// Runs `op` on the primary; once more on the primary found anew when it surely did not
    /// run (refused, or `READONLY` from a demoted primary).
    async fn run<T, F, Fut>(&self, op: F) -> RedisResult<T>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
        T: Answer,
    {
        let mut attempt = 0;
        loop {
            let (generation, conn) = self.connection().await?;
            let result = op(conn).await;
            let failure = match &result {
                Ok(answer) => answer.read_only(),
                Err(e) => Some(Failure::of(e)),
            };
            match failure {
                None | Some(Failure::Other) => return result,
                Some(failure) => {
                    self.forget(generation).await;
                    attempt += 1;
                    if failure == Failure::Link || attempt > 1 {
                        return result;
                    }
                }
            }
        }
    }
}

/// Why a command failed, as far as following the primary goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// It did not run and may run elsewhere: refused, or `READONLY`.
    NotRun,
    /// The connection broke or timed out: it may have run.
    Link,
    /// An answer of the server's own (a script error, …): nothing to follow.
    Other,
}

impl Failure {
    fn of(e: &RedisError) -> Self {
        if e.is_connection_refusal() || e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly) {
            Self::NotRun
        } else if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
            Self::Link
        } else {
            Self::Other
        }
    }
}

/// An answer that may carry a server error inside (`READONLY` comes back as a value).
trait Answer {
    fn read_only(&self) -> Option<Failure>;
}

fn value_read_only(v: &Value) -> bool {
    matches!(v, Value::ServerError(e) if e.kind() == Some(ServerErrorKind::ReadOnly))
}

impl Answer for Value {
    fn read_only(&self) -> Option<Failure> {
        value_read_only(self).then_some(Failure::NotRun)
    }
}

impl Answer for Vec<Value> {
    fn read_only(&self) -> Option<Failure> {
        self.iter().any(value_read_only).then_some(Failure::NotRun)
    }
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Server(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
            Self::Sentinel(followed) => Box::pin(async move {
                followed
                    .run(|mut conn| async move { conn.req_packed_command(cmd).await })
                    .await
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Server(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Sentinel(followed) => Box::pin(async move {
                followed
                    .run(|mut conn| async move {
                        conn.req_packed_commands(pipeline, offset, count).await
                    })
                    .await
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Server(conn) => conn.get_db(),
            Self::Cluster(_) | Self::Sentinel(_) => 0,
        }
    }
}

/// How many replicas must have a write that matters, and how long to wait for them.
#[derive(Clone, Copy, Debug)]
pub struct Confirm {
    pub replicas: u32,
    pub timeout: Duration,
}

/// The store's connections: one for everything, and one for confirmed writes (when replicas
/// confirm them), whose `WAIT` must not hold up the others.
#[derive(Clone)]
pub(crate) struct Conn {
    main: Link,
    confirmed: Option<(Link, Confirm)>,
}

impl Conn {
    pub(crate) async fn open(target: &RedisTarget, confirm: Confirm) -> RedisResult<Self> {
        // A confirmed write's answer takes up to the `WAIT` timeout longer.
        let main = Link::open(target, TIMEOUT).await?;
        let confirmed = if confirm.replicas > 0 {
            Some((
                Link::open(target, TIMEOUT + confirm.timeout).await?,
                confirm,
            ))
        } else {
            None
        };
        Ok(Self { main, confirmed })
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.main, Link::Cluster(_))
    }

    /// A handle for single commands.
    pub(crate) fn link(&self) -> impl ConnectionLike + Send + use<> {
        self.main.clone()
    }

    /// Runs `script` with `args` as `ARGV` and `route` as its one key (`KEYS[1]`, which a
    /// cluster routes by: a key in the slot of every key the script touches); `confirm` makes
    /// it a write that matters, reported done only once the configured replicas have it.
    pub(crate) async fn eval<T: FromRedisValue>(
        &self,
        script: &Script,
        route: &str,
        args: &Cmd,
        confirm: bool,
    ) -> Result<T, StoreError> {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(script.get_hash()).arg(1).arg(route);
        for arg in args.args_iter() {
            if let redis::Arg::Simple(bytes) = arg {
                cmd.arg(bytes);
            }
        }
        match self.query(&cmd, confirm).await {
            Err(StoreError::Redis(e))
                if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) =>
            {
                // A primary new since the script was loaded (or a restarted one).
                script.load_async(&mut self.main.clone()).await?;
                self.query(&cmd, confirm).await
            }
            other => other,
        }
    }

    /// Sends `cmd`; `confirm` makes it a write that matters (see [`Conn::eval`]).
    pub(crate) async fn query<T: FromRedisValue>(
        &self,
        cmd: &Cmd,
        confirm: bool,
    ) -> Result<T, StoreError> {
        let (mut link, confirm) = match (&self.confirmed, confirm) {
            (Some((link, c)), true) => (link.clone(), *c),
            _ => return Ok(cmd.query_async(&mut self.main.clone()).await?),
        };
        let millis = u64::try_from(confirm.timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        // One pipeline on one connection: `WAIT` counts the replicas that have everything this
        // connection wrote, the script's write included.
        let mut pipe = redis::pipe();
        pipe.add_command(cmd.clone())
            .cmd("WAIT")
            .arg(confirm.replicas)
            .arg(millis);
        let (answer, replicas): (T, u32) = pipe.query_async(&mut link).await?;
        if replicas < confirm.replicas {
            return Err(StoreError::Unconfirmed {
                wanted: confirm.replicas,
                got: replicas,
            });
        }
        Ok(answer)
    }
}

fn invalid(what: &'static str) -> RedisError {
    RedisError::from((ErrorKind::InvalidClientConfig, what))
}

fn unreachable(message: String) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        message,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_parse() {
        let t =
            RedisTarget::parse("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2,[::1]:7002/").unwrap();
        assert_eq!(
            t,
            RedisTarget::Cluster {
                nodes: vec![
                    ("10.0.0.1".into(), 7000),
                    ("10.0.0.2".into(), 6379),
                    ("::1".into(), 7002)
                ],
                username: None,
                password: Some("pw".into()),
            }
        );
        for bad in [
            "redis+cluster://h1:7000/1",
            "redis+cluster://h1:7000?x=1",
            "redis+cluster://",
            "redis+cluster://h1:70000",
            "rediss+cluster://h1:7000",
        ] {
            assert!(RedisTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sentinel_urls_parse() {
        let t = RedisTarget::parse(
            "redis+sentinel://u%40x:p%3Aw@10.0.0.1:26379,sentinel-b,[::1]:26380/mymaster/2?sentinel_password=s%20p",
        )
        .unwrap();
        assert_eq!(
            t,
            RedisTarget::Sentinel {
                sentinels: vec![
                    ("10.0.0.1".into(), 26379),
                    ("sentinel-b".into(), 26379),
                    ("::1".into(), 26380)
                ],
                service: "mymaster".into(),
                db: 2,
                username: Some("u@x".into()),
                password: Some("p:w".into()),
                sentinel_username: None,
                sentinel_password: Some("s p".into()),
            }
        );
        let plain = RedisTarget::parse("redis://127.0.0.1:6379/").unwrap();
        assert_eq!(plain, RedisTarget::Server("redis://127.0.0.1:6379/".into()));
        let t = RedisTarget::parse("redis+sentinel://:pw@h:1/svc").unwrap();
        assert!(
            matches!(t, RedisTarget::Sentinel { username: None, password: Some(p), .. } if p == "pw")
        );
    }

    #[test]
    fn bad_sentinel_urls_are_refused_without_repeating_them() {
        for bad in [
            "redis+sentinel://h1:26379,h2:26379",
            "redis+sentinel://h1:26379/",
            "redis+sentinel://h1:x/svc",
            "redis+sentinel://h1:0/svc",
            "redis+sentinel://,h2/svc",
            "redis+sentinel://h1/svc/db",
            "redis+sentinel://h1/svc/0/extra",
            "redis+sentinel://h1/svc?password=secret",
            "rediss+sentinel://h1/svc",
            "redis+sentinel://[::1/svc",
        ] {
            let err = RedisTarget::parse(bad).unwrap_err().to_string();
            assert!(
                !err.contains("secret") && !err.contains("h1"),
                "{bad}: {err}"
            );
        }
    }
}
