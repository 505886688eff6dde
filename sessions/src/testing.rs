//! Test support for suites that keep sessions in Redis (feature `testing`): a key prefix of
//! its own per test, deleted afterwards. The PostgreSQL counterpart and the skip rule are
//! `infra::testing`.

use infra::testing::skip;

/// A key prefix of its own on the Redis named by `GATEHOUSE_TEST_REDIS_URL`; its keys are
/// deleted when this value is dropped.
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
}

impl TestRedis {
    /// `None` (after reporting the skip) when the variable is not set.
    pub fn create(what: &str) -> Option<Self> {
        let Ok(url) = std::env::var("GATEHOUSE_TEST_REDIS_URL") else {
            skip(what, "GATEHOUSE_TEST_REDIS_URL");
            return None;
        };
        let tag = infra::secret::random_handle().ok()?;
        Some(Self {
            url,
            prefix: format!("gh-test:{tag}:"),
        })
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

/// A `redis-server` (or sentinel) of a test's own, on a free loopback port, with its own
/// directory; killed and reaped on drop. For the tests that need their own topology (an
/// outage, a failover), as `.ci/run` provides the binaries.
pub struct RedisProcess {
    pub port: u16,
    child: Option<std::process::Child>,
    args: Vec<String>,
    dir: tempfile::TempDir,
}

/// Whether `redis-server` can be run here; reports the skip (or fails, when services are
/// required) if not.
pub fn redis_server_available(what: &str) -> bool {
    let found = std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        skip(what, "redis-server on PATH");
    }
    found
}

/// A free loopback port (free a moment ago).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// How long the topology helpers wait for Redis to get somewhere (a loaded machine).
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

impl RedisProcess {
    /// A server (no persistence) with `extra` arguments, listening once this returns.
    pub async fn server(extra: &[&str]) -> Self {
        let port = free_port();
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Self::spawn(port, args, None).await
    }

    /// A sentinel watching `primary_port` as `service` (quorum 2), quick to act: a primary
    /// that does not answer for a second is down.
    pub async fn sentinel(service: &str, primary_port: u16) -> Self {
        let port = free_port();
        let config = format!(
            "port {port}\nbind 127.0.0.1\n\
             sentinel monitor {service} 127.0.0.1 {primary_port} 2\n\
             sentinel down-after-milliseconds {service} 1000\n\
             sentinel failover-timeout {service} 5000\n\
             sentinel parallel-syncs {service} 1\n"
        );
        Self::spawn(port, Vec::new(), Some(config)).await
    }

    async fn spawn(port: u16, mut args: Vec<String>, config: Option<String>) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        if let Some(config) = config {
            // Sentinel rewrites its configuration file, so it is a file of its own.
            let file = dir.path().join("sentinel.conf");
            std::fs::write(&file, config).unwrap_or_else(|e| panic!("sentinel.conf: {e}"));
            args = vec![file.display().to_string(), "--sentinel".into()];
        }
        args.extend(["--dir".into(), dir.path().display().to_string()]);
        let mut process = Self {
            port,
            child: None,
            args,
            dir,
        };
        process.start().await;
        process
    }

    async fn start(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("log"))
            .unwrap_or_else(|e| panic!("log file: {e}"));
        let child = std::process::Command::new("redis-server")
            .args(&self.args)
            .stdout(log)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("redis-server: {e}"));
        let pid = child.id().to_string();
        self.child = Some(child);
        // This process answering, not another that took the port meanwhile.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.info("server").await.get("process_id") != Some(&pid) {
            if tokio::time::Instant::now() >= deadline {
                let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
                panic!("redis-server on port {} did not start:\n{log}", self.port);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Stops it (`SIGSTOP`) without closing anything, as a partition or a long pause would
    /// look from outside; [`RedisProcess::resume`] lets it go on.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let done = std::process::Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
            assert!(done.is_ok_and(|s| s.success()), "kill {signal}");
        }
    }

    /// Kills it at once (`SIGKILL`: nothing flushed, nothing handed over), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on its port, with its arguments.
    pub async fn restart(&mut self) {
        self.kill();
        self.start().await;
    }

    /// `redis://127.0.0.1:port/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A command's answer from this process.
    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        let client = redis::Client::open(self.url())?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(2)))
            .set_response_timeout(Some(std::time::Duration::from_secs(2)));
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        cmd.query_async(&mut conn).await
    }

    /// `INFO` section `section` (all the usual ones when empty) as `key → value`.
    pub async fn info(&self, section: &str) -> std::collections::HashMap<String, String> {
        let mut cmd = redis::cmd("INFO");
        if !section.is_empty() {
            cmd.arg(section);
        }
        let text: String = self.query(&cmd).await.unwrap_or_default();
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
            .collect()
    }

    /// Waits (at most a minute) until `INFO` says what `ok` wants; panics with `what` after.
    pub async fn wait_until(
        &self,
        what: &str,
        ok: impl Fn(&std::collections::HashMap<String, String>) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let info = self.info("").await;
            if !info.is_empty() && ok(&info) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis on port {}: {what}: not within {PATIENCE:?}",
                self.port
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A primary, `replicas` replicas and three sentinels (quorum 2) on loopback, all ready: the
/// replicas in sync and every sentinel aware of them and of the two other sentinels.
pub struct SentinelTopology {
    pub service: String,
    /// The data nodes, the first being the primary at the start.
    pub nodes: Vec<RedisProcess>,
    pub sentinels: Vec<RedisProcess>,
}

impl SentinelTopology {
    pub async fn start(replicas: usize) -> Self {
        let service = "gatehouse-test".to_owned();
        let primary = RedisProcess::server(&[]).await;
        let mut nodes = vec![];
        let replica_of = primary.port.to_string();
        nodes.push(primary);
        for _ in 0..replicas {
            nodes.push(RedisProcess::server(&["--replicaof", "127.0.0.1", &replica_of]).await);
        }
        for node in &nodes[1..] {
            node.wait_until("in sync with the primary", |i| {
                i.get("master_link_status").is_some_and(|s| s == "up")
            })
            .await;
        }
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            sentinels.push(RedisProcess::sentinel(&service, nodes[0].port).await);
        }
        let topology = Self {
            service,
            nodes,
            sentinels,
        };
        topology.wait_until_watched(replicas).await;
        topology
    }

    /// Waits until every sentinel sees the primary up, `replicas` replicas and the two other
    /// sentinels (only then can they agree on a failover).
    pub async fn wait_until_watched(&self, replicas: usize) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        for sentinel in &self.sentinels {
            loop {
                let fields: redis::RedisResult<std::collections::HashMap<String, String>> =
                    sentinel
                        .query(redis::cmd("SENTINEL").arg("MASTER").arg(&self.service))
                        .await;
                let ready = fields.is_ok_and(|f| {
                    let n = |k: &str| f.get(k).and_then(|v| v.parse::<usize>().ok());
                    f.get("flags").is_some_and(|v| v == "master")
                        && n("num-slaves") == Some(replicas)
                        && n("num-other-sentinels") == Some(2)
                });
                if ready {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the sentinels did not see the whole topology within {PATIENCE:?}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }

    /// `redis+sentinel://…` naming the three sentinels.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!("redis+sentinel://{}/{}", hosts.join(","), self.service)
    }

    /// The port of the primary that a majority of sentinels name, once they agree.
    pub async fn primary_port(&self) -> Option<u16> {
        let mut named = Vec::new();
        for sentinel in &self.sentinels {
            let addr: redis::RedisResult<(String, u16)> = sentinel
                .query(
                    redis::cmd("SENTINEL")
                        .arg("GET-MASTER-ADDR-BY-NAME")
                        .arg(&self.service),
                )
                .await;
            if let Ok((_, port)) = addr {
                named.push(port);
            }
        }
        named
            .iter()
            .copied()
            .find(|p| named.iter().filter(|q| *q == p).count() >= 2)
    }

    /// The data node on `port`.
    pub fn node(&mut self, port: u16) -> Option<&mut RedisProcess> {
        self.nodes.iter_mut().find(|n| n.port == port)
    }
}

/// A Redis Cluster of three primaries (no replicas) on loopback, its slots shared out and
/// every node agreeing that the cluster is up.
pub struct RedisCluster {
    pub nodes: Vec<RedisProcess>,
}

impl RedisCluster {
    pub async fn start() -> Self {
        let mut nodes = Vec::new();
        for _ in 0..3 {
            nodes.push(
                RedisProcess::server(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                ])
                .await,
            );
        }
        // The 16384 slots in three ranges, then one node meets the others.
        let ranges = [(0, 5460), (5461, 10922), (10923, 16383)];
        for (node, (first, last)) in nodes.iter().zip(ranges) {
            let _: () = node
                .query(
                    redis::cmd("CLUSTER")
                        .arg("ADDSLOTSRANGE")
                        .arg(first)
                        .arg(last),
                )
                .await
                .unwrap_or_else(|e| panic!("CLUSTER ADDSLOTSRANGE: {e}"));
        }
        for other in &nodes[1..] {
            let _: () = nodes[0]
                .query(
                    redis::cmd("CLUSTER")
                        .arg("MEET")
                        .arg("127.0.0.1")
                        .arg(other.port),
                )
                .await
                .unwrap_or_else(|e| panic!("CLUSTER MEET: {e}"));
        }
        let deadline = tokio::time::Instant::now() + PATIENCE;
        for node in &nodes {
            loop {
                let info: String = node
                    .query(redis::cmd("CLUSTER").arg("INFO"))
                    .await
                    .unwrap_or_default();
                if info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3") {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the cluster did not come up within {PATIENCE:?}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        Self { nodes }
    }

    /// `redis+cluster://…` naming the three nodes.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// The slot `key` hashes to.
    pub async fn keyslot(&self, key: &str) -> u16 {
        self.nodes[0]
            .query(redis::cmd("CLUSTER").arg("KEYSLOT").arg(key))
            .await
            .unwrap_or_else(|e| panic!("CLUSTER KEYSLOT: {e}"))
    }

    /// Every key on any node, with the slot it hashes to.
    pub async fn keys(&self) -> Vec<(String, u16)> {
        let mut all = Vec::new();
        for node in &self.nodes {
            let keys: Vec<String> = node
                .query(redis::cmd("KEYS").arg("*"))
                .await
                .unwrap_or_default();
            for key in keys {
                let slot = self.keyslot(&key).await;
                all.push((key, slot));
            }
        }
        all
    }
}
