//! How the Redis session store reaches Redis, and how it knows that a write will survive the
//! loss of the primary.
//!
//! `session.redis_url` names one server (`redis://host:port/db`, followed through reconnects
//! by the redis crate's `ConnectionManager`), a Redis Cluster
//! (`redis+cluster://[user:password@]host:port,host:port,…`, the redis crate's cluster client,
//! which follows the cluster's own failovers and slot moves), or a Sentinel deployment
//! (`redis+sentinel://[user:password@]host:port,host:port,…/service[/db]`).
//!
//! **Sentinel.** The store asks every sentinel at once which server is the primary of
//! `service`, takes the answer of a majority of them (a sentinel on the minority side of a
//! partition cannot send it to the old primary), connects, and checks that the server says
//! `master` (`ROLE`). It keeps that one connection, and drops it when it fails, when the server
//! answers `READONLY` or refuses `WAIT` (it was demoted), and when a majority of the sentinels,
//! asked every half second in the background, names another primary: a primary that was cut
//! off (or stopped and resumed) answers reads as if nothing had happened until Sentinel reaches
//! it, so the connection must not wait for an error. A command that surely did not run (the
//! connection was refused, `READONLY`) is sent once more to the primary found anew; any other
//! failure is the request's, answered with 503 and retried by the person. This is written here
//! rather than taken from the redis crate because its Sentinel client takes the first
//! sentinel's word, resolves once per connection, and its `ConnectionManager` reconnects to a
//! fixed address. Needs Redis 7 or later (6 reports a demoted primary's refusal inside script
//! errors).
//!
//! **Confirmed writes.** Redis replicates asynchronously: a primary that dies takes with it
//! what it acknowledged but had not yet sent on. The writes that matter (a new or changed
//! session, every removal, an end marker) are therefore sent together with `WAIT n timeout`,
//! on a connection of their own (`WAIT` holds its connection until the replicas answer, and the
//! reads must not queue behind it), and the store reports success only when `n` replicas have
//! the write. Every such script writes (a removal that finds nothing still writes a fence key),
//! so that `WAIT` covers everything the primary had accepted before it, whoever wrote it: a
//! removal retried after an unconfirmed one is confirmed only once the first is replicated.
//! Sentinel promotes, among the replicas of equal priority, the one with the most replicated
//! data, so a confirmed write survives the loss of the primary: a session that was confirmed is
//! not lost, and a revocation that was confirmed does not come undone. A write that is not
//! confirmed in time fails as the store being unavailable (503), so nothing is reported done
//! that a failover could take back. `n` is `session.redis_confirm_replicas`: 1 by default with
//! Sentinel, 0 (no waiting) with one server or a cluster.

pub use crate::redis_url::{RedisTarget, UrlError};
use crate::store::StoreError;
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncConnectionConfig, Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, FromRedisValue,
    IntoConnectionInfo, RedisConnectionInfo, RedisError, RedisFuture, RedisResult, Script,
    ServerErrorKind, Value,
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
                let followed = Arc::new(Followed::new(target, response_timeout)?);
                // Fails now if no sentinel names a primary, as a wrong `redis://` URL would.
                followed.connection().await?;
                Followed::watch(&followed);
                Ok(Self::Sentinel(followed))
            }
        }
    }
}

/// The primary that the sentinels name, followed across failovers (see the module docs).
struct Followed {
    /// The sentinels, each with the connection kept to it (made again after a failure).
    sentinels: Vec<(ConnectionInfo, Mutex<Option<MultiplexedConnection>>)>,
    service: String,
    /// How to speak to the data nodes (credentials, database).
    node: RedisConnectionInfo,
    /// The current connection, where it goes, and its generation; `None` until one is made.
    current: Mutex<Current>,
    generation: AtomicU64,
    config: AsyncConnectionConfig,
}

#[derive(Default)]
struct Current {
    link: Option<(u64, (String, u16), MultiplexedConnection)>,
    /// When a majority of the sentinels last named the primary of `link`.
    vouched: Option<Instant>,
    /// After a failed lookup: fail fast until then, with this message.
    backoff: Option<(Instant, String)>,
}

/// How often an instance asks the sentinels which server is the primary, whatever its
/// connection says: a primary cut off by a partition (or stopped, then resumed) answers reads
/// as if nothing had happened, until Sentinel reaches it.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);
/// How long one sentinel may take to answer.
const SENTINEL_TIMEOUT: Duration = Duration::from_millis(500);
/// A primary that no majority of the sentinels has named for this long is left (requests
/// get 503 until a majority names one again): an instance cut off with the old primary and
/// a minority of sentinels must not go on reading from it.
const VOUCH_TIMEOUT: Duration = Duration::from_secs(2);

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
        let sentinels = sentinels
            .iter()
            .map(|(host, port)| {
                ConnectionAddr::Tcp(host.clone(), *port)
                    .into_connection_info()
                    .map(|c| {
                        let c =
                            c.set_redis_settings(credentials(sentinel_username, sentinel_password));
                        (c, Mutex::new(None))
                    })
            })
            .collect::<RedisResult<Vec<_>>>()?;
        Ok(Self {
            sentinels,
            service: service.clone(),
            node: credentials(username, password).set_db(*db),
            current: Mutex::new(Current::default()),
            generation: AtomicU64::new(0),
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(TIMEOUT))
                .set_response_timeout(Some(response_timeout)),
        })
    }

    /// What one sentinel names as the primary of the service (`None`: no answer).
    async fn ask(&self, index: usize) -> Option<(String, u16)> {
        let (info, kept) = self.sentinels.get(index)?;
        let mut kept = kept.lock().await;
        if kept.is_none() {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(SENTINEL_TIMEOUT))
                .set_response_timeout(Some(SENTINEL_TIMEOUT));
            let client = redis::Client::open(info.clone()).ok()?;
            *kept = client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .ok();
        }
        let conn = kept.as_mut()?;
        let named: RedisResult<Option<(String, u16)>> = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(&self.service)
            .query_async(conn)
            .await;
        match named {
            Ok(named) => named,
            Err(_) => {
                *kept = None;
                None
            }
        }
    }

    /// The primary that a majority of the configured sentinels name (all asked at once), so
    /// that a sentinel on the minority side of a partition cannot send us to the old one.
    async fn named_primary(&self) -> Option<(String, u16)> {
        let answers =
            futures_util::future::join_all((0..self.sentinels.len()).map(|i| self.ask(i))).await;
        let answers: Vec<(String, u16)> = answers.into_iter().flatten().collect();
        answers
            .iter()
            .find(|a| answers.iter().filter(|b| b == a).count() * 2 > self.sentinels.len())
            .cloned()
    }

    /// A connection to the server at `addr`, which must say that it is a primary.
    async fn connect(&self, addr: &(String, u16)) -> RedisResult<MultiplexedConnection> {
        let info = ConnectionAddr::Tcp(addr.0.clone(), addr.1)
            .into_connection_info()?
            .set_redis_settings(self.node.clone());
        let mut conn = redis::Client::open(info)?
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        let role: Vec<Value> = redis::cmd("ROLE").query_async(&mut conn).await?;
        match role.first() {
            Some(Value::BulkString(r)) if r.as_slice() == b"master" => Ok(conn),
            _ => Err(unreachable(
                "the server the sentinels name is not a primary (yet)".into(),
            )),
        }
    }

    /// The current connection, or a new one to the primary the sentinels name now. One lookup
    /// at a time: the others wait for its answer.
    async fn connection(&self) -> RedisResult<(u64, MultiplexedConnection)> {
        let mut current = self.current.lock().await;
        if current
            .vouched
            .is_some_and(|at| at.elapsed() > VOUCH_TIMEOUT)
        {
            tracing::warn!("no majority of the sentinels names the Redis primary: leaving it");
            current.link = None;
            current.vouched = None;
        }
        if let Some((generation, _, conn)) = &current.link {
            return Ok((*generation, conn.clone()));
        }
        if let Some((until, message)) = &current.backoff
            && Instant::now() < *until
        {
            return Err(unreachable(message.clone()));
        }
        let lookup = async {
            let addr = self.named_primary().await.ok_or_else(|| {
                unreachable("no majority of the sentinels names a primary".into())
            })?;
            let conn = self.connect(&addr).await?;
            Ok::<_, RedisError>((addr, conn))
        };
        let found = match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
            Ok(found) => found,
            Err(_) => Err(unreachable("the sentinels did not answer in time".into())),
        };
        match found {
            Ok((addr, conn)) => {
                let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::info!(primary = %format!("{}:{}", addr.0, addr.1), "Redis primary (Sentinel)");
                *current = Current {
                    link: Some((generation, addr, conn.clone())),
                    vouched: Some(Instant::now()),
                    backoff: None,
                };
                Ok((generation, conn))
            }
            Err(e) => {
                tracing::warn!(error = %e, "no Redis primary reachable through Sentinel");
                current.backoff = Some((Instant::now() + RESOLVE_BACKOFF, e.to_string()));
                // Every failure of the lookup is the store being unavailable (503).
                Err(unreachable(e.to_string()))
            }
        }
    }

    /// Drops connection `generation` (not a newer one) so that the next command looks again.
    async fn forget(&self, generation: u64) {
        let mut current = self.current.lock().await;
        if current
            .link
            .as_ref()
            .is_some_and(|(g, _, _)| *g == generation)
        {
            current.link = None;
        }
    }

    /// The address of the primary in use, if any.
    async fn primary(&self) -> Option<(String, u16)> {
        self.current
            .lock()
            .await
            .link
            .as_ref()
            .map(|(_, a, _)| a.clone())
    }

    /// Asks the sentinels every [`WATCH_INTERVAL`] while the store lives, and drops the
    /// connection as soon as a majority names another primary than the one it goes to.
    fn watch(followed: &Arc<Self>) {
        let weak = Arc::downgrade(followed);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(WATCH_INTERVAL).await;
                let Some(followed) = weak.upgrade() else {
                    return;
                };
                // The link asked about: a newer one, made while the sentinels answered, is
                // not judged by an older answer.
                let asked = followed.current.lock().await.link.as_ref().map(|l| l.0);
                let Some(named) = followed.named_primary().await else {
                    continue;
                };
                let mut current = followed.current.lock().await;
                let Some((generation, addr, _)) = &current.link else {
                    continue;
                };
                if Some(*generation) != asked {
                    continue;
                }
                if *addr == named {
                    current.vouched = Some(Instant::now());
                } else {
                    tracing::warn!(
                        primary = %format!("{}:{}", named.0, named.1),
                        "the sentinels name another Redis primary: following it"
                    );
                    current.link = None;
                    current.vouched = None;
                }
            }
        });
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

/// What a demoted primary answers to `WAIT`: the command before it did not write either (a
/// replica refuses writes), and the link must go.
const WAIT_ON_REPLICA: &str = "WAIT cannot be used with replica instances";

impl Failure {
    fn of(e: &RedisError) -> Self {
        if e.is_connection_refusal()
            || e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
            || e.detail().is_some_and(|d| d.contains(WAIT_ON_REPLICA))
        {
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
    matches!(v, Value::ServerError(e)
        if e.kind() == Some(ServerErrorKind::ReadOnly)
            || e.details().is_some_and(|d| d.contains(WAIT_ON_REPLICA)))
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
        let (mut link, confirm) = self.link_for(confirm);
        match Self::send(&mut link, &cmd, confirm).await {
            Err(StoreError::Redis(e))
                if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) =>
            {
                // A primary new since the script was loaded (or a restarted one): loaded
                // through the same link, so on the same server.
                script.load_async(&mut link).await?;
                Self::send(&mut link, &cmd, confirm).await
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
        let (mut link, confirm) = self.link_for(confirm);
        Self::send(&mut link, cmd, confirm).await
    }

    /// The link for a command, and the confirmation it waits for (`None`: it does not).
    fn link_for(&self, confirm: bool) -> (Link, Option<Confirm>) {
        match (&self.confirmed, confirm) {
            (Some((link, c)), true) => (link.clone(), Some(*c)),
            _ => (self.main.clone(), None),
        }
    }

    /// The address of the primary in use, when it is Sentinel's to name.
    pub(crate) async fn primary(&self) -> Option<String> {
        match &self.main {
            Link::Sentinel(followed) => followed
                .primary()
                .await
                .map(|(host, port)| format!("{host}:{port}")),
            _ => None,
        }
    }

    async fn send<T: FromRedisValue>(
        link: &mut Link,
        cmd: &Cmd,
        confirm: Option<Confirm>,
    ) -> Result<T, StoreError> {
        let Some(confirm) = confirm else {
            return Ok(cmd.query_async(link).await?);
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
            .arg(millis)
            // Each answer on its own, so that a server error keeps its code (NOREPLICAS,
            // NOSCRIPT, …) instead of becoming the pipeline's.
            .ignore_errors();
        let answers: Vec<Value> = pipe.query_async(link).await?;
        let mut answers = answers.into_iter().map(|v| match v {
            Value::ServerError(e) => Err(RedisError::from(e)),
            v => Ok(v),
        });
        let (Some(answer), Some(replicas)) = (answers.next(), answers.next()) else {
            return Err(StoreError::Redis(invalid(
                "WAIT pipeline: two answers expected",
            )));
        };
        let answer: T = redis::from_redis_value(answer?).map_err(RedisError::from)?;
        let replicas: u32 = redis::from_redis_value(replicas?).map_err(RedisError::from)?;
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
