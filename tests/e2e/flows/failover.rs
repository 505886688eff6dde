//! Redis beyond one server. A failover under load: the provider's sessions in Redis behind Sentinel (a primary,
//! two replicas, three sentinels, all on loopback ports of the test's own), two provider
//! instances sharing them, workers signing in and out through both, and the primary killed
//! (`SIGKILL`) in the middle. Afterwards every session that was confirmed to its browser is
//! still accepted, on both instances, and every confirmed sign-out still refuses its cookie
//! when replayed: nothing lost, nothing wrongly accepted. The test prints what it measured
//! (README, "Redis failover"): requests failed and the time until a new sign-in succeeds.
//! And a Redis Cluster of three primaries holding the sessions, every key in its one slot.

use super::{prompt_none_error, sign_in as sign_in_at_app, sign_out_everywhere};
use crate::harness::{ALICE, Browser, Options, Stack, param, spawn_with};
use sessions::testing::{RedisCluster, SentinelTopology, TestRedis, redis_server_available};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WORKERS: usize = 4;

/// What a request told about a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Accepted,
    Refused,
    /// 503 (or the like): no answer about the session, to be retried.
    Failed,
}

/// A browser whose sign-in was confirmed (the code came back), and the cookie it was given.
struct Confirmed {
    browser: Browser,
    cookies: String,
}

#[derive(Default)]
struct Tally {
    live: Vec<Confirmed>,
    /// Replays of cookies whose sign-out was confirmed.
    revoked: Vec<Browser>,
    failed: usize,
    last_failure: Option<Instant>,
    /// Revoked cookies accepted, at any moment.
    wrong_accepts: usize,
    /// Sign-ins confirmed after the kill, from requests started after it.
    after_kill: usize,
    first_after_kill: Option<Instant>,
}

struct Shared {
    /// The two instances' base URLs.
    bases: [String; 2],
    /// App B's client id and redirect URI.
    app_b: (String, String),
    tally: Mutex<Tally>,
    killed_at: Mutex<Option<Instant>>,
    stop: AtomicBool,
    rounds: AtomicUsize,
}

impl Shared {
    /// Counts a request that got no answer, and pauses the worker a little, as a person (or a
    /// client's retry policy) would before trying again.
    async fn failed(&self) {
        {
            let mut tally = self.tally.lock().unwrap();
            tally.failed += 1;
            tally.last_failure = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    /// An authorization request for App B (S256, state, nonce) at `base`.
    fn authorize(&self, base: &str, extra: &[(&str, &str)]) -> String {
        let (client_id, redirect_uri) = &self.app_b;
        let (_, challenge) = crate::harness::pkce();
        let mut url = url::Url::parse(&format!("{base}/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", "openid")
            .append_pair("state", "failover")
            .append_pair("nonce", "failover")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .extend_pairs(extra);
        url.into()
    }
}

/// Signs in at `base`; the confirmed browser, or `None` when the provider could not answer.
async fn sign_in(shared: &Shared, base: &str) -> Option<Confirmed> {
    let browser = Browser::new();
    let redirect_uri = &shared.app_b.1;
    let page = browser
        .follow_until(&shared.authorize(base, &[]), redirect_uri)
        .await;
    if page.status != 200 {
        assert!(
            page.status.is_server_error(),
            "sign-in page: {}",
            page.status
        );
        return None;
    }
    let done = browser
        .submit_until(
            &page,
            "/login",
            &[("username", ALICE.0), ("password", ALICE.1)],
            redirect_uri,
        )
        .await;
    if !done.url.as_str().starts_with(redirect_uri.as_str()) {
        assert!(
            done.status.is_server_error(),
            "sign-in: {} {}",
            done.status,
            done.body
        );
        return None;
    }
    assert!(param(done.url.as_str(), "code").is_some(), "{}", done.url);
    let cookies = browser.cookies_for(base);
    Some(Confirmed { browser, cookies })
}

/// Whether `browser`'s session is accepted at `base` (`prompt=none`).
async fn check(shared: &Shared, browser: &Browser, base: &str) -> Answer {
    let page = browser
        .get_once(&shared.authorize(base, &[("prompt", "none")]))
        .await;
    match page.hops[0].location.as_deref() {
        Some(to) if page.status.is_redirection() => {
            if param(to, "code").is_some() {
                Answer::Accepted
            } else {
                assert_eq!(
                    param(to, "error").as_deref(),
                    Some("login_required"),
                    "{to}"
                );
                Answer::Refused
            }
        }
        _ => {
            assert!(
                page.status.is_server_error(),
                "{}: {}",
                page.status,
                page.body
            );
            Answer::Failed
        }
    }
}

/// Signs `confirmed` out at `base` (RP-initiated logout, confirmed on the provider's page);
/// a replay of its cookie when the sign-out was confirmed.
async fn sign_out(confirmed: &Confirmed, base: &str) -> Option<Browser> {
    let replay = Browser::new();
    for cookie in confirmed.cookies.split("; ").filter(|c| !c.is_empty()) {
        replay.plant_cookie(base, cookie);
    }
    let ask = confirmed.browser.follow(&format!("{base}/logout")).await;
    if ask.status != 200 {
        assert!(ask.status.is_server_error(), "{}", ask.status);
        return None;
    }
    let done = confirmed.browser.submit(&ask, "/logout/confirm", &[]).await;
    if done.status != 200 {
        assert!(done.status.is_server_error(), "{}", done.status);
        return None;
    }
    assert!(done.body.contains("signed out"), "{}", done.body);
    Some(replay)
}

async fn worker(shared: Arc<Shared>, index: usize) {
    let mut round = index;
    while !shared.stop.load(Ordering::SeqCst) {
        round += 1;
        let (here, there) = (&shared.bases[round % 2], &shared.bases[(round + 1) % 2]);
        let started = Instant::now();
        let Some(confirmed) = sign_in(&shared, here).await else {
            shared.failed().await;
            continue;
        };
        let after_kill = shared
            .killed_at
            .lock()
            .unwrap()
            .is_some_and(|killed| started > killed);
        if after_kill {
            let mut tally = shared.tally.lock().unwrap();
            tally.after_kill += 1;
            tally.first_after_kill.get_or_insert_with(Instant::now);
        }
        // Every third session is signed out again, at the other instance.
        if round.is_multiple_of(3) {
            match sign_out(&confirmed, there).await {
                Some(replay) => shared.tally.lock().unwrap().revoked.push(replay),
                None => shared.failed().await,
            }
        } else {
            shared.tally.lock().unwrap().live.push(confirmed);
        }
        // And a revoked cookie is replayed, at either instance, all along.
        let replay = {
            let tally = shared.tally.lock().unwrap();
            tally
                .revoked
                .get(round % tally.revoked.len().max(1))
                .cloned()
        };
        if let Some(replay) = replay {
            match check(&shared, &replay, there).await {
                Answer::Accepted => shared.tally.lock().unwrap().wrong_accepts += 1,
                Answer::Failed => shared.failed().await,
                Answer::Refused => {}
            }
        }
        shared.rounds.fetch_add(1, Ordering::SeqCst);
    }
}

fn configure(config: &mut provider::Config) {
    // The load comes from one address and one account.
    config.limits.rate_per_address = 0;
    config.limits.new_sessions_per_address = 0;
    config.limits.sign_in_throttle = false;
}

/// Waits (at most two minutes: a failover on a loaded machine) until `ready` says so.
async fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready() {
        assert!(Instant::now() < deadline, "{what}: not within two minutes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_redis_primary_loses_no_confirmed_session_and_revives_no_revoked_one() {
    if !redis_server_available("Redis failover test") {
        return;
    }
    let mut topology = SentinelTopology::start(2).await;
    let store = TestRedis {
        url: topology.url(),
        prefix: "failover:".into(),
    };
    let mut stack: Stack = spawn_with(Options {
        redis_sessions: Some(store),
        configure: Some(configure),
        ..Options::default()
    })
    .await;
    let second = stack.start_instance().await;
    let shared = Arc::new(Shared {
        bases: [stack.issuer.clone(), stack.instance_url(second).to_owned()],
        app_b: (
            stack.app_b.client_id.clone(),
            stack.app_b.redirect_uri.clone(),
        ),
        tally: Mutex::new(Tally::default()),
        killed_at: Mutex::new(None),
        stop: AtomicBool::new(false),
        rounds: AtomicUsize::new(0),
    });
    let workers: Vec<_> = (0..WORKERS)
        .map(|i| tokio::spawn(worker(shared.clone(), i)))
        .collect();

    wait_until(
        "twenty sessions and five sign-outs before the failure",
        || {
            let t = shared.tally.lock().unwrap();
            t.live.len() >= 20 && t.revoked.len() >= 5
        },
    )
    .await;
    let primary = topology.primary_port().await.unwrap();
    let failed_before = shared.tally.lock().unwrap().failed;
    topology.node(primary).unwrap().kill();
    let killed = Instant::now();
    *shared.killed_at.lock().unwrap() = Some(killed);

    wait_until("ten new sign-ins after the failure", || {
        shared.tally.lock().unwrap().after_kill >= 10
    })
    .await;
    shared.stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    let promoted = topology.primary_port().await.unwrap();
    assert_ne!(promoted, primary, "a replica was promoted");

    // The audit, on both instances: every confirmed session is there, no revoked one is.
    let tally = std::mem::take(&mut *shared.tally.lock().unwrap());
    let mut lost = 0;
    for confirmed in &tally.live {
        for base in &shared.bases {
            if check(&shared, &confirmed.browser, base).await != Answer::Accepted {
                lost += 1;
            }
        }
    }
    let mut wrong = tally.wrong_accepts;
    for replay in &tally.revoked {
        for base in &shared.bases {
            if check(&shared, replay, base).await != Answer::Refused {
                wrong += 1;
            }
        }
    }
    let recovered = tally.first_after_kill.map(|at| at.duration_since(killed));
    let last_failure = tally
        .last_failure
        .map(|at| at.saturating_duration_since(killed));
    eprintln!(
        "failover: {} sessions confirmed and {} signed out over {} rounds by {WORKERS} \
         workers; after the kill of the primary, {} requests failed (the last {:?} after it) \
         and a new sign-in succeeded after {:?}; sessions lost: {lost}; wrong accepts: {wrong}",
        tally.live.len(),
        tally.revoked.len(),
        shared.rounds.load(Ordering::SeqCst),
        tally.failed - failed_before,
        last_failure,
        recovered,
    );
    assert_eq!(lost, 0, "confirmed sessions lost");
    assert_eq!(wrong, 0, "revoked sessions accepted");
    assert!(recovered.is_some());
    drop(stack);
}

#[tokio::test]
async fn sessions_live_on_a_redis_cluster_in_one_slot() {
    if !redis_server_available("Redis Cluster test") {
        return;
    }
    let cluster = RedisCluster::start().await;
    let stack = spawn_with(Options {
        redis_sessions: Some(TestRedis {
            url: cluster.url(),
            prefix: "e2e:".into(),
        }),
        ..Options::default()
    })
    .await;
    let browser = Browser::new();
    let home = sign_in_at_app(&stack, &browser, &stack.app_b, ALICE).await;
    assert_eq!(home.status, 200);
    assert_eq!(prompt_none_error(&stack, &browser).await, None, "signed in");
    let ready = browser.get_once(&format!("{}/readyz", stack.issuer)).await;
    assert_eq!(ready.status, 200, "{}", ready.body);

    let keys = cluster.keys().await;
    let tag_slot = cluster.keyslot("e2e:").await;
    assert!(keys.len() >= 3, "{keys:?}");
    for (key, slot) in &keys {
        assert!(key.starts_with("{e2e:}"), "{key}");
        assert_eq!(*slot, tag_slot, "{key}");
    }

    sign_out_everywhere(&stack, &browser).await;
    assert_eq!(
        prompt_none_error(&stack, &browser).await.as_deref(),
        Some("login_required")
    );
}
