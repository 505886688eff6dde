//! The Redis store against topologies of the test's own (`redis-server` on loopback ports):
//! writes that matter confirmed by replicas (`WAIT`), and a store that follows the primary
//! through Sentinel across a switch-over and a crash.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sessions::redis_conn::{Confirm, RedisTarget};
use sessions::testing::{RedisProcess, SentinelTopology, redis_server_available};
use sessions::{RedisStore, SessionStore, StoreError, StoredSession};
use std::time::Duration;

const NOW: i64 = 1_000_000;
const PREFIX: &str = "repl:";

fn session(n: &str) -> StoredSession {
    StoredSession {
        id_hash: format!("hash-{n}"),
        handle: format!("handle-{n}"),
        user_id: Some("u1".into()),
        external_key: Some(format!("sid-{n}")),
        data: serde_json::json!({}),
        csrf_token: "csrf".into(),
        created_at: NOW,
        last_seen_at: NOW,
        idle_expires_at: NOW + 600,
        absolute_expires_at: NOW + 3600,
        auth_time: Some(NOW),
        user_agent: None,
        client_addr: None,
        version: 0,
    }
}

async fn on_node(node: &RedisProcess, n: &str) -> bool {
    let fields: Vec<String> = node
        .query(redis::cmd("HGETALL").arg(format!("{PREFIX}s:hash-{n}")))
        .await
        .unwrap();
    !fields.is_empty()
}

/// Polls `check` (every 50 ms, at most a minute) until it holds.
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, check: impl Fn() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within a minute"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn writes_that_matter_are_on_a_replica_before_they_are_done() {
    if !redis_server_available("Redis replication test") {
        return;
    }
    let primary = RedisProcess::server(&[]).await;
    let confirm = Confirm {
        replicas: 1,
        timeout: Duration::from_millis(100),
    };
    let target = RedisTarget::parse(&primary.url()).unwrap();
    let store = RedisStore::connect_to(&target, PREFIX, confirm)
        .await
        .unwrap();

    // No replica: the write is not confirmed, so it is not reported done.
    let err = store.insert(&session("a")).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Unconfirmed { wanted: 1, got: 0 }),
        "{err}"
    );
    assert!(err.is_unavailable(), "answered as 503, to be retried");
    // Reads and touches do not wait for replicas.
    assert!(store.get("hash-a", NOW).await.unwrap().is_some());
    store.touch("hash-a", NOW, NOW + 700).await.unwrap();

    let replica =
        RedisProcess::server(&["--replicaof", "127.0.0.1", &primary.port.to_string()]).await;
    replica
        .wait_until("in sync", |i| {
            i.get("master_link_status").is_some_and(|s| s == "up")
        })
        .await;
    // From here on the writes must be confirmed: a patient timeout, for a loaded machine.
    let store = RedisStore::connect_to(
        &target,
        PREFIX,
        Confirm {
            replicas: 1,
            timeout: Duration::from_secs(5),
        },
    )
    .await
    .unwrap();
    // Each confirmed write is on the replica the moment it is done: no polling here.
    store.insert(&session("b")).await.unwrap();
    assert!(on_node(&replica, "b").await, "a new session");
    let mut changed = session("b");
    changed.id_hash = "hash-b2".into();
    changed.version = 1;
    assert!(store.update("hash-b", &changed, NOW).await.unwrap());
    assert!(on_node(&replica, "b2").await, "a regenerated id");
    assert!(store.remove("hash-b2").await.unwrap().is_some());
    assert!(!on_node(&replica, "b2").await, "a removal");
    store.insert(&session("c")).await.unwrap();
    assert_eq!(store.remove_by_user("u1").await.unwrap().len(), 2);
    assert!(!on_node(&replica, "c").await, "a user's sessions ended");
    store.mark_ended("user:u1", NOW, NOW + 3600).await.unwrap();
    let marker: Option<String> = replica
        .query(redis::cmd("GET").arg(format!("{PREFIX}e:user:u1")))
        .await
        .unwrap();
    assert!(marker.is_some(), "an end marker");
    // A removal that finds nothing still writes (its fence), so that its WAIT covers whatever
    // the primary took before it.
    let _: () = replica
        .query(redis::cmd("DEL").arg(format!("{PREFIX}fence")))
        .await
        .unwrap_or(());
    assert!(store.remove("hash-missing").await.unwrap().is_none());
    let fence: Option<String> = replica
        .query(redis::cmd("GET").arg(format!("{PREFIX}fence")))
        .await
        .unwrap();
    assert!(fence.is_some(), "the fence reached the replica");

    // The replica gone, the store fails closed again, within its timeout.
    drop(replica);
    eventually("the primary sees its replica gone", || async {
        primary.info("replication").await.get("connected_slaves") == Some(&"0".to_owned())
    })
    .await;
    let err = store.remove("hash-a").await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
}

#[tokio::test]
async fn the_store_follows_the_primary_through_sentinel() {
    if !redis_server_available("Redis Sentinel test") {
        return;
    }
    let mut topology = SentinelTopology::start(1).await;
    let first = topology.primary_port().await.unwrap();
    let store = RedisStore::connect(&topology.url(), PREFIX).await.unwrap();
    store.insert(&session("a")).await.unwrap();

    // A switch-over (as for maintenance): the sentinels promote the replica and demote the
    // primary, and the store follows without being told.
    // (Refused while the sentinels are still settling: asked again.)
    eventually("the sentinels take the switch-over", || async {
        let asked: redis::RedisResult<String> = topology.sentinels[0]
            .query(
                redis::cmd("SENTINEL")
                    .arg("FAILOVER")
                    .arg(&topology.service),
            )
            .await;
        asked.is_ok()
    })
    .await;
    eventually("the sentinels name a new primary", || async {
        topology.primary_port().await.is_some_and(|p| p != first)
    })
    .await;
    let second = topology.primary_port().await.unwrap();
    topology.nodes[0]
        .wait_until("the old primary follows the new one", |i| {
            i.get("master_link_status").is_some_and(|s| s == "up")
        })
        .await;
    eventually("a write reaches the new primary", || async {
        store.insert(&session("b")).await.is_ok()
    })
    .await;
    for n in ["a", "b"] {
        assert!(
            store
                .get(&format!("hash-{n}"), NOW)
                .await
                .unwrap()
                .is_some()
        );
    }
    let demoted = topology.node(first).unwrap();
    assert!(on_node(demoted, "b").await, "confirmed on the demoted one");

    // A crash of the new primary: its replica (the first one) takes over with every
    // confirmed write. With no replica left, a write that matters cannot be confirmed and
    // is refused; the sessions are there, and reads go on.
    topology.node(second).unwrap().kill();
    eventually("the sentinels promote the survivor", || async {
        topology.primary_port().await == Some(first)
    })
    .await;
    eventually("the store reads from the survivor", || async {
        store.get("hash-b", NOW).await.is_ok_and(|s| s.is_some())
    })
    .await;
    assert!(store.get("hash-a", NOW).await.unwrap().is_some());
    // (The first write may instead meet the connection to the dead node, and fail as
    // well: it may have run, so it is not sent again.)
    let mut refused = false;
    for attempt in ["c1", "c2", "c3"] {
        let err = store.insert(&session(attempt)).await.unwrap_err();
        assert!(err.is_unavailable(), "{err}");
        refused = matches!(err, StoreError::Unconfirmed { wanted: 1, got: 0 });
        if refused {
            break;
        }
    }
    assert!(refused, "refused for want of a replica");
    // The crashed node comes back empty; the sentinels make it a replica, and writes are
    // confirmed again.
    topology.node(second).unwrap().restart().await;
    let tries = std::sync::atomic::AtomicUsize::new(0);
    let confirmed = std::sync::Mutex::new(String::new());
    eventually("writes are confirmed again", || async {
        // A new session each time: an unconfirmed one stays on the primary.
        let n = format!(
            "d{}",
            tries.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let done = store.insert(&session(&n)).await.is_ok();
        if done {
            *confirmed.lock().unwrap() = n;
        }
        done
    })
    .await;
    let back = topology.node(second).unwrap();
    let n = confirmed.lock().unwrap().clone();
    assert!(on_node(back, "a").await && on_node(back, &n).await);
}

/// A primary that stops (`SIGSTOP`, as a partition or a long pause looks from outside) keeps
/// its clients' connections open, and, once it goes on, answers reads as if nothing had
/// happened until Sentinel reaches it. An idle store must leave it for the primary a majority
/// of the sentinels names, without waiting for an error, so that a session ended on the new
/// primary is not read back from the old one.
#[tokio::test]
async fn a_primary_cut_off_is_left_for_the_one_the_sentinels_name() {
    if !redis_server_available("Redis Sentinel partition test") {
        return;
    }
    let mut topology = SentinelTopology::start(2).await;
    let first = topology.primary_port().await.unwrap();
    let idle = RedisStore::connect(&topology.url(), PREFIX).await.unwrap();
    let busy = RedisStore::connect(&topology.url(), PREFIX).await.unwrap();
    busy.insert(&session("a")).await.unwrap();
    assert!(idle.get("hash-a", NOW).await.unwrap().is_some());
    assert_eq!(
        idle.sentinel_primary().await,
        Some(format!("127.0.0.1:{first}"))
    );

    topology.node(first).unwrap().pause();
    eventually("the sentinels promote a replica", || async {
        topology.primary_port().await.is_some_and(|p| p != first)
    })
    .await;
    let second = topology.primary_port().await.unwrap();
    // It lets the old one go (and finds the new one at its next command).
    eventually("the idle store leaves the old primary", || async {
        idle.sentinel_primary().await != Some(format!("127.0.0.1:{first}"))
    })
    .await;
    eventually("the session is ended on the new primary", || async {
        busy.remove("hash-a").await.is_ok_and(|s| s.is_some())
    })
    .await;
    topology.node(first).unwrap().resume();
    assert!(
        idle.get("hash-a", NOW).await.unwrap().is_none(),
        "not read back from the old primary"
    );
    assert_eq!(
        idle.sentinel_primary().await,
        Some(format!("127.0.0.1:{second}"))
    );
}

/// Without a majority of the sentinels (two of three gone), a store does not go on trusting
/// the primary it has: it could be the old one, cut off with a minority. Its requests fail
/// (503) until a majority names a primary again.
#[tokio::test]
async fn without_a_majority_of_sentinels_the_store_stops_trusting_its_primary() {
    if !redis_server_available("Redis Sentinel majority test") {
        return;
    }
    let mut topology = SentinelTopology::start(1).await;
    let store = RedisStore::connect(&topology.url(), PREFIX).await.unwrap();
    store.insert(&session("a")).await.unwrap();
    topology.sentinels[0].kill();
    topology.sentinels[1].kill();
    eventually("the store refuses to answer", || async {
        store
            .get("hash-a", NOW)
            .await
            .is_err_and(|e| e.is_unavailable())
    })
    .await;
    topology.sentinels[0].restart().await;
    topology.sentinels[1].restart().await;
    eventually("a majority names the primary again", || async {
        store.get("hash-a", NOW).await.is_ok_and(|s| s.is_some())
    })
    .await;
}
