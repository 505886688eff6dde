//! One behavioural suite, run against every backend: memory and SQLite always, PostgreSQL when
//! `GATEHOUSE_TEST_POSTGRES_URL` is set (each test in its own database), Redis when
//! `GATEHOUSE_TEST_REDIS_URL` is set (each test under its own key prefix).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use infra::testing::TestPostgres;
use infra::{Clock, Db};
use sessions::testing::TestRedis;
use sessions::{
    EndCause, MemoryStore, NewSession, RedisStore, SessionId, SessionPolicy, SessionStore,
    Sessions, SqlStore, StoredSession,
};
use std::sync::Arc;
use std::time::Duration;

const IDLE: Duration = Duration::from_secs(60);
const ABSOLUTE: Duration = Duration::from_secs(300);
const TOUCH: Duration = Duration::from_secs(10);
/// The limits of a kept session ("keep me signed in").
const KEPT_IDLE: Duration = Duration::from_secs(120);
const KEPT_ABSOLUTE: Duration = Duration::from_secs(600);

/// A backend under test; `url` lets a test reopen the same store as a restarted process would.
struct Backend {
    store: Arc<dyn SessionStore>,
    reopen: Reopen,
    _pg: Option<TestPostgres>,
    _redis: Option<TestRedis>,
    _dir: Option<tempfile::TempDir>,
}

/// How a restarted process would open the same store again.
#[derive(Clone)]
enum Reopen {
    /// Memory: nothing survives, by design.
    Nothing,
    Sql(String),
    Redis(String, String),
}

impl Backend {
    fn new(store: Arc<dyn SessionStore>, reopen: Reopen) -> Self {
        Self {
            store,
            reopen,
            _pg: None,
            _redis: None,
            _dir: None,
        }
    }
}

async fn sql_store(url: &str) -> Arc<dyn SessionStore> {
    let store = SqlStore::new(Db::connect(url, 4).await.unwrap());
    store.migrate().await.unwrap();
    Arc::new(store)
}

async fn memory() -> Option<Backend> {
    Some(Backend::new(Arc::new(MemoryStore::new()), Reopen::Nothing))
}

async fn sqlite() -> Option<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
    let b = Backend::new(sql_store(&url).await, Reopen::Sql(url));
    Some(Backend {
        _dir: Some(dir),
        ..b
    })
}

async fn postgres() -> Option<Backend> {
    let pg = TestPostgres::create("sessions store on PostgreSQL").await?;
    let url = pg.url.clone();
    let b = Backend::new(sql_store(&url).await, Reopen::Sql(url));
    Some(Backend { _pg: Some(pg), ..b })
}

async fn redis() -> Option<Backend> {
    let r = TestRedis::create("sessions store on Redis")?;
    let store = RedisStore::connect(&r.url, &r.prefix).await.unwrap();
    let b = Backend::new(
        Arc::new(store),
        Reopen::Redis(r.url.clone(), r.prefix.clone()),
    );
    Some(Backend {
        _redis: Some(r),
        ..b
    })
}

async fn cluster_backend(cluster: &sessions::testing::RedisCluster, name: &str) -> Backend {
    let url = cluster.url();
    let prefix = format!("{name}:");
    let store = RedisStore::connect(&url, &prefix).await.unwrap();
    Backend::new(Arc::new(store), Reopen::Redis(url, prefix))
}

/// The backend's sessions under the test policy, on a frozen clock: the windows are tested
/// a second from their edge, which a second passing during a slow commit would cross.
fn rules(b: &Backend) -> (Sessions, Clock) {
    let clock = Clock::system();
    clock.freeze();
    let policy = SessionPolicy {
        idle_timeout: IDLE,
        absolute_lifetime: ABSOLUTE,
        touch_interval: TOUCH,
        remembered: Some((KEPT_IDLE, KEPT_ABSOLUTE)),
    };
    (Sessions::new(b.store.clone(), policy, clock.clone()), clock)
}

fn signed_in(user: &str) -> NewSession {
    NewSession {
        user_id: Some(user.into()),
        ..NewSession::default()
    }
}

mod behaviours {
    use super::*;

    pub(crate) async fn create_and_load(b: Backend) {
        let (s, _) = rules(&b);
        let created = s
            .create(NewSession {
                user_id: Some("u1".into()),
                external_key: Some("sid-1".into()),
                data: serde_json::json!({"k": "v"}),
                user_agent: Some("UA".into()),
                client_addr: Some("127.0.0.1".into()),
                ..NewSession::default()
            })
            .await
            .unwrap();
        let loaded = s.load(created.id()).await.unwrap().expect("live session");
        assert_eq!(loaded.handle, created.handle);
        assert_eq!(loaded.user_id.as_deref(), Some("u1"));
        assert_eq!(loaded.external_key.as_deref(), Some("sid-1"));
        assert_eq!(loaded.data["k"], "v");
        assert_eq!(loaded.user_agent.as_deref(), Some("UA"));
        assert_eq!(loaded.csrf_token(), created.csrf_token());
        assert_eq!(
            loaded.absolute_expires_at - loaded.created_at,
            time::Duration::seconds(300)
        );
    }

    /// "Keep me signed in": a kept session lives past the usual limits, by its own, which
    /// every touch slides; a sign-in that does not ask again is not kept.
    pub(crate) async fn a_kept_session_has_its_own_limits(b: Backend) {
        let (s, clock) = rules(&b);
        let sign_in = |kept: bool| {
            let s = s.clone();
            async move {
                let mut session = s.create(NewSession::default()).await.unwrap();
                let plan = s.prepare_sign_in(&mut session, "u1").unwrap();
                if kept {
                    assert!(s.remember(&mut session));
                }
                assert!(s.complete_sign_in(&mut session, &plan).await.unwrap());
                session
            }
        };
        let kept = sign_in(true).await;
        let usual = sign_in(false).await;
        assert!(kept.remembered() && !usual.remembered());
        let lifetime = |s: &sessions::Session| {
            s.absolute_expires_at.unix_timestamp() - s.auth_time.unwrap().unix_timestamp()
        };
        assert_eq!(lifetime(&kept), 600);
        clock.advance(IDLE + Duration::from_secs(10));
        assert!(
            s.load(usual.id()).await.unwrap().is_none(),
            "the usual idle timeout"
        );
        let loaded = s
            .load(kept.id())
            .await
            .unwrap()
            .expect("kept past the usual idle timeout");
        assert!(loaded.remembered());
        let listed = s.list_for_user("u1").await.unwrap();
        assert!(
            listed
                .iter()
                .any(|i| i.handle == kept.handle && i.remembered())
        );
        // Used every 100 s (under its own idle timeout), it lives until its own absolute limit.
        let mut alive = IDLE + Duration::from_secs(10);
        while alive + Duration::from_secs(100) < KEPT_ABSOLUTE {
            clock.advance(Duration::from_secs(100));
            alive += Duration::from_secs(100);
            assert!(
                s.load(kept.id()).await.unwrap().is_some(),
                "alive at {alive:?}"
            );
        }
        clock.advance(KEPT_ABSOLUTE - alive + Duration::from_secs(1));
        assert!(
            s.load(kept.id()).await.unwrap().is_none(),
            "its own absolute limit"
        );
        // Unused for its idle timeout, another kept session ends.
        let idle = sign_in(true).await;
        clock.advance(KEPT_IDLE + Duration::from_secs(1));
        assert!(
            s.load(idle.id()).await.unwrap().is_none(),
            "its own idle timeout"
        );
        // Signed in again without asking, a kept session is kept no more.
        let mut again = sign_in(true).await;
        let plan = s.prepare_sign_in(&mut again, "u1").unwrap();
        assert!(s.complete_sign_in(&mut again, &plan).await.unwrap());
        let loaded = s.load(again.id()).await.unwrap().unwrap();
        assert!(!loaded.remembered());
        assert_eq!(lifetime(&loaded), 300);
    }

    pub(crate) async fn unknown_id_is_no_session(b: Backend) {
        let (s, _) = rules(&b);
        s.create(signed_in("u1")).await.unwrap();
        let chosen = SessionId::parse(&"A".repeat(43)).unwrap();
        assert!(s.load(&chosen).await.unwrap().is_none());
    }

    pub(crate) async fn idle_expiry(b: Backend) {
        let (s, clock) = rules(&b);
        let created = s.create(signed_in("u1")).await.unwrap();
        clock.advance(IDLE - Duration::from_secs(1));
        assert!(
            s.load(created.id()).await.unwrap().is_some(),
            "still inside the idle window"
        );
        clock.advance(IDLE + Duration::from_secs(1));
        assert!(
            s.load(created.id()).await.unwrap().is_none(),
            "idle-expired"
        );
    }

    pub(crate) async fn activity_slides_idle_expiry(b: Backend) {
        let (s, clock) = rules(&b);
        let created = s.create(signed_in("u1")).await.unwrap();
        for _ in 0..3 {
            clock.advance(Duration::from_secs(40));
            assert!(s.load(created.id()).await.unwrap().is_some());
        }
    }

    pub(crate) async fn absolute_expiry_despite_activity(b: Backend) {
        let (s, clock) = rules(&b);
        let created = s.create(signed_in("u1")).await.unwrap();
        let mut alive_for = Duration::ZERO;
        while alive_for < ABSOLUTE - Duration::from_secs(30) {
            clock.advance(Duration::from_secs(30));
            alive_for += Duration::from_secs(30);
            assert!(
                s.load(created.id()).await.unwrap().is_some(),
                "alive at {alive_for:?}"
            );
        }
        clock.advance(Duration::from_secs(31));
        assert!(
            s.load(created.id()).await.unwrap().is_none(),
            "past the absolute lifetime"
        );
    }

    pub(crate) async fn touch_interval_limits_writes(b: Backend) {
        let (s, clock) = rules(&b);
        let created = s.create(signed_in("u1")).await.unwrap();
        clock.advance(TOUCH - Duration::from_secs(2));
        let seen = s.load(created.id()).await.unwrap().unwrap();
        assert_eq!(
            seen.last_seen_at, created.last_seen_at,
            "no write inside the interval"
        );
        let listed = s.list_for_user("u1").await.unwrap();
        assert_eq!(listed[0].last_seen_at, created.last_seen_at);
        clock.advance(Duration::from_secs(3));
        let seen = s.load(created.id()).await.unwrap().unwrap();
        assert!(
            seen.last_seen_at > created.last_seen_at,
            "written once the interval passed"
        );
        let listed = s.list_for_user("u1").await.unwrap();
        assert_eq!(
            listed[0].last_seen_at, seen.last_seen_at,
            "and the write is stored"
        );
    }

    pub(crate) async fn regenerate_kills_old_id(b: Backend) {
        let (s, _) = rules(&b);
        let mut session = s.create(signed_in("u1")).await.unwrap();
        let old_id = session.id().clone();
        let old_csrf = session.csrf_token().to_owned();
        assert!(s.regenerate(&mut session).await.unwrap());
        assert_ne!(session.id(), &old_id);
        assert_ne!(session.csrf_token(), old_csrf);
        assert!(
            s.load(&old_id).await.unwrap().is_none(),
            "old id dead at once"
        );
        let loaded = s.load(session.id()).await.unwrap().unwrap();
        assert_eq!(loaded.handle, session.handle, "the public handle survives");
    }

    pub(crate) async fn authenticate_makes_new_id(b: Backend) {
        let (s, clock) = rules(&b);
        let mut session = s.create(NewSession::default()).await.unwrap();
        let pre_login = session.id().clone();
        clock.advance(Duration::from_secs(20));
        let ended = s.authenticate(&mut session, "u1").await.unwrap();
        assert!(ended.is_none());
        assert!(
            s.load(&pre_login).await.unwrap().is_none(),
            "pre-login id never valid after"
        );
        let loaded = s.load(session.id()).await.unwrap().unwrap();
        assert_eq!(loaded.user_id.as_deref(), Some("u1"));
        assert!(loaded.auth_time.is_some());
        // Same user again (re-authentication): new id, same handle.
        let before = session.id().clone();
        let handle = session.handle.clone();
        assert!(s.authenticate(&mut session, "u1").await.unwrap().is_none());
        assert!(s.load(&before).await.unwrap().is_none());
        assert_eq!(s.load(session.id()).await.unwrap().unwrap().handle, handle);
        // Another user in the same browser: the old session ends, a new one begins.
        let ended = s
            .authenticate(&mut session, "u2")
            .await
            .unwrap()
            .expect("u1's session ended");
        assert_eq!(ended.user_id.as_deref(), Some("u1"));
        assert_eq!(ended.handle, handle);
        assert_ne!(session.handle, handle);
        assert!(s.list_for_user("u1").await.unwrap().is_empty());
        assert_eq!(s.list_for_user("u2").await.unwrap().len(), 1);
    }

    pub(crate) async fn save_persists_data(b: Backend) {
        let (s, _) = rules(&b);
        let mut session = s.create(NewSession::default()).await.unwrap();
        session.data["pending"] = serde_json::json!({"state": "xyz"});
        assert!(s.save(&mut session).await.unwrap());
        let loaded = s.load(session.id()).await.unwrap().unwrap();
        assert_eq!(loaded.data["pending"]["state"], "xyz");
    }

    /// Two requests read one session and both change it: the second write, made over a
    /// version that is no longer current, is refused rather than writing back stale data;
    /// read again, its change goes through. A touch is not a write.
    pub(crate) async fn saves_are_compare_and_set(b: Backend) {
        let (s, clock) = rules(&b);
        let created = s.create(signed_in("u1")).await.unwrap();
        let mut first = s.load(created.id()).await.unwrap().unwrap();
        let mut second = s.load(created.id()).await.unwrap().unwrap();
        first.data["token"] = serde_json::json!("rotated");
        assert!(s.save(&mut first).await.unwrap());
        second.data["token"] = serde_json::json!("stale");
        assert!(!s.save(&mut second).await.unwrap(), "stale write refused");
        let mut again = s.load(created.id()).await.unwrap().unwrap();
        assert_eq!(again.data["token"], "rotated");
        clock.advance(TOUCH + Duration::from_secs(1));
        assert!(s.load(created.id()).await.unwrap().is_some(), "touched");
        again.data["other"] = serde_json::json!(1);
        assert!(s.save(&mut again).await.unwrap(), "a touch is not a write");
        assert!(
            s.save(&mut again).await.unwrap(),
            "its own version moved on"
        );
        let last = s.load(created.id()).await.unwrap().unwrap();
        assert_eq!(
            (last.data["token"].as_str(), last.data["other"].as_i64()),
            (Some("rotated"), Some(1))
        );
    }

    pub(crate) async fn revoke_one_and_all(b: Backend) {
        let (s, _) = rules(&b);
        let a = s.create(signed_in("u1")).await.unwrap();
        let c = s.create(signed_in("u1")).await.unwrap();
        let other = s.create(signed_in("u2")).await.unwrap();
        // Nobody revokes someone else's session.
        assert!(
            s.revoke_handle(&other.handle, Some("u1"))
                .await
                .unwrap()
                .is_none()
        );
        assert!(s.load(other.id()).await.unwrap().is_some());
        let ended = s
            .revoke_handle(&a.handle, Some("u1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ended.cause, EndCause::Revoked);
        assert!(s.load(a.id()).await.unwrap().is_none());
        assert!(s.load(c.id()).await.unwrap().is_some());
        let ended = s.revoke_user("u1").await.unwrap();
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].cause, EndCause::RevokedAll);
        assert!(s.load(c.id()).await.unwrap().is_none());
        assert!(
            s.load(other.id()).await.unwrap().is_some(),
            "other users untouched"
        );
    }

    pub(crate) async fn revoke_by_external_key(b: Backend) {
        let (s, _) = rules(&b);
        let mk = |k: &str| NewSession {
            external_key: Some(k.into()),
            ..signed_in("u1")
        };
        let a = s.create(mk("sid-a")).await.unwrap();
        let a2 = s.create(mk("sid-a")).await.unwrap();
        let other = s.create(mk("sid-b")).await.unwrap();
        let ended = s.revoke_external("sid-a").await.unwrap();
        assert_eq!(ended.len(), 2);
        assert!(
            ended
                .iter()
                .all(|e| e.cause == EndCause::ExternalRevocation)
        );
        assert!(s.load(a.id()).await.unwrap().is_none());
        assert!(s.load(a2.id()).await.unwrap().is_none());
        assert!(s.load(other.id()).await.unwrap().is_some());
    }

    pub(crate) async fn list_shows_live_sessions_oldest_first(b: Backend) {
        let (s, clock) = rules(&b);
        let first = s.create(signed_in("u1")).await.unwrap();
        clock.advance(Duration::from_secs(5));
        let second = s.create(signed_in("u1")).await.unwrap();
        let listed = s.list_for_user("u1").await.unwrap();
        let handles: Vec<_> = listed.iter().map(|i| i.handle.clone()).collect();
        assert_eq!(handles, vec![first.handle.clone(), second.handle.clone()]);
        clock.advance(IDLE - Duration::from_secs(2));
        let listed = s.list_for_user("u1").await.unwrap();
        assert_eq!(listed.len(), 1, "the idle-expired one is not listed");
        assert_eq!(listed[0].handle, second.handle);
    }

    pub(crate) async fn sweep_reports_each_end(b: Backend) {
        let (s, clock) = rules(&b);
        let idle = s.create(signed_in("u1")).await.unwrap();
        let busy = s.create(signed_in("u2")).await.unwrap();
        let mut t = Duration::ZERO;
        while t <= ABSOLUTE {
            clock.advance(Duration::from_secs(30));
            t += Duration::from_secs(30);
            let _ = s.load(busy.id()).await.unwrap();
        }
        let mut ended = s.sweep().await.unwrap();
        ended.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        assert_eq!(ended.len(), 2);
        assert_eq!(
            (ended[0].handle.as_str(), ended[0].cause),
            (idle.handle.as_str(), EndCause::IdleExpiry)
        );
        assert_eq!(
            (ended[1].handle.as_str(), ended[1].cause),
            (busy.handle.as_str(), EndCause::AbsoluteExpiry)
        );
        assert!(s.sweep().await.unwrap().is_empty(), "reported once");
    }

    /// Expired sessions are listed (with their causes) without being removed, so that a
    /// caller can record each end first; found by handle meanwhile; gone once removed.
    pub(crate) async fn expired_are_listed_until_removed(b: Backend) {
        let (s, clock) = rules(&b);
        let old = s.create(signed_in("u1")).await.unwrap();
        clock.advance(IDLE + Duration::from_secs(1));
        let fresh = s.create(signed_in("u2")).await.unwrap();
        for _ in 0..2 {
            let listed = s.expired(10).await.unwrap();
            assert_eq!(listed.len(), 1, "listed again until removed");
            assert_eq!(
                (listed[0].handle.as_str(), listed[0].cause),
                (old.handle.as_str(), EndCause::IdleExpiry)
            );
        }
        let found = s.by_handle(&old.handle).await.unwrap().unwrap();
        assert_eq!(found.user_id.as_deref(), Some("u1"));
        assert!(s.by_handle(&fresh.handle).await.unwrap().is_some());
        assert!(s.remove(&old.handle).await.unwrap());
        assert!(!s.remove(&old.handle).await.unwrap());
        assert!(s.expired(10).await.unwrap().is_empty());
        assert!(s.by_handle(&old.handle).await.unwrap().is_none());
        assert!(s.load(fresh.id()).await.unwrap().is_some());
    }

    /// A signing-in session of a user that was revoked meanwhile comes back under a new handle,
    /// never its old one (whose end has been reported).
    pub(crate) async fn sign_in_never_brings_back_an_ended_session(b: Backend) {
        let (s, _) = rules(&b);
        let mut a = s.create(NewSession::default()).await.unwrap();
        s.authenticate(&mut a, "u1").await.unwrap();
        let revoked = a.handle.clone();
        s.revoke_handle(&revoked, None).await.unwrap().unwrap();
        // The same browser signs in again (prompt=login) with its now-dead session.
        assert_eq!(s.authenticate(&mut a, "u1").await.unwrap(), None);
        assert_ne!(a.handle, revoked, "a new session");
        assert!(
            s.by_handle(&revoked).await.unwrap().is_none(),
            "not resurrected"
        );
        let live = s.list_for_user("u1").await.unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].handle, a.handle);
        assert!(s.load(a.id()).await.unwrap().is_some());
    }

    /// An external key's end is remembered (so that a session written under it afterwards
    /// can be refused), for an absolute lifetime; so is a user's, when asked.
    pub(crate) async fn ended_keys_are_remembered(b: Backend) {
        let (s, clock) = rules(&b);
        let mk = NewSession {
            external_key: Some("sid-1".into()),
            ..signed_in("u1")
        };
        s.create(mk).await.unwrap();
        let marker = sessions::external_marker("sid-1");
        assert_eq!(s.ended_at(&marker).await.unwrap(), None);
        let before = clock.unix();
        assert_eq!(s.revoke_external("sid-1").await.unwrap().len(), 1);
        let at = s.ended_at(&marker).await.unwrap().expect("remembered");
        assert!(at >= before);
        assert_eq!(
            s.ended_at(&sessions::external_marker("sid-2"))
                .await
                .unwrap(),
            None
        );
        s.remember_end(&sessions::user_marker("u1")).await.unwrap();
        assert!(
            s.ended_at(&sessions::user_marker("u1"))
                .await
                .unwrap()
                .is_some()
        );
        clock.advance(ABSOLUTE + Duration::from_secs(1));
        assert_eq!(
            s.ended_at(&marker).await.unwrap(),
            None,
            "forgotten in time"
        );
    }

    pub(crate) async fn end_is_logout(b: Backend) {
        let (s, _) = rules(&b);
        let a = s.create(signed_in("u1")).await.unwrap();
        let ended = s.end(a.id(), EndCause::Logout).await.unwrap().unwrap();
        assert_eq!(ended.cause, EndCause::Logout);
        assert!(s.load(a.id()).await.unwrap().is_none());
        assert!(s.end(a.id(), EndCause::Logout).await.unwrap().is_none());
    }

    pub(crate) async fn csrf_token_is_bound_to_session(b: Backend) {
        let (s, _) = rules(&b);
        let a = s.create(NewSession::default()).await.unwrap();
        let other = s.create(NewSession::default()).await.unwrap();
        assert!(a.verify_csrf(Some(a.csrf_token())));
        assert!(!a.verify_csrf(Some(other.csrf_token())));
        assert!(!a.verify_csrf(None));
        assert!(!a.verify_csrf(Some("")));
    }

    pub(crate) async fn survives_restart(b: Backend) {
        let store: Arc<dyn SessionStore> = match b.reopen.clone() {
            Reopen::Nothing => return, // memory: lost on restart by design
            Reopen::Sql(url) => sql_store(&url).await,
            Reopen::Redis(url, prefix) => {
                Arc::new(RedisStore::connect(&url, &prefix).await.unwrap())
            }
        };
        let (s, _) = rules(&b);
        let a = s.create(signed_in("u1")).await.unwrap();
        let reopened = Backend::new(store, Reopen::Nothing);
        let (s2, _) = rules(&reopened);
        let loaded = s2
            .load(a.id())
            .await
            .unwrap()
            .expect("the session outlives the process");
        assert_eq!(loaded.handle, a.handle);
        assert_eq!(s2.list_for_user("u1").await.unwrap().len(), 1);
        drop(b);
    }
}

macro_rules! suite {
    ($backend:ident: $($name:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(b) = super::$backend().await {
                        super::behaviours::$name(b).await;
                    }
                }
            )*
        }
    };
}

macro_rules! all_backends {
    ($($name:ident),* $(,)?) => {
        suite!(memory: $($name),*);
        suite!(sqlite: $($name),*);
        suite!(postgres: $($name),*);
        suite!(redis: $($name),*);
        in_one_cluster!($($name),*);
    };
}

/// Every behaviour against one local Redis Cluster of three primaries (one cluster for them
/// all: each costs three processes), each under a key prefix of its own, which the store makes
/// a hash tag. Then every key that the behaviours left is in the slot of its prefix's tag.
macro_rules! in_one_cluster {
    ($($name:ident),* $(,)?) => {
        #[tokio::test]
        async fn redis_cluster_passes_every_behaviour() {
            if !sessions::testing::redis_server_available("sessions store on Redis Cluster") {
                return;
            }
            let cluster = sessions::testing::RedisCluster::start().await;
            $(
                behaviours::$name(cluster_backend(&cluster, stringify!($name)).await).await;
            )*
            let keys = cluster.keys().await;
            assert!(keys.len() > 10, "{keys:?}");
            for (key, slot) in &keys {
                let tag = key.split_once('{').and_then(|(_, r)| r.split_once('}')).unwrap().0;
                let tagged = cluster.keyslot(tag).await;
                assert_eq!(*slot, tagged, "{key}");
            }
            let prefixes: std::collections::HashSet<u16> = keys.iter().map(|k| k.1).collect();
            assert!(prefixes.len() > 1, "the behaviours' prefixes spread over slots");
        }
    };
}

all_backends!(
    create_and_load,
    a_kept_session_has_its_own_limits,
    unknown_id_is_no_session,
    idle_expiry,
    activity_slides_idle_expiry,
    absolute_expiry_despite_activity,
    touch_interval_limits_writes,
    regenerate_kills_old_id,
    authenticate_makes_new_id,
    save_persists_data,
    saves_are_compare_and_set,
    revoke_one_and_all,
    revoke_by_external_key,
    list_shows_live_sessions_oldest_first,
    sweep_reports_each_end,
    expired_are_listed_until_removed,
    sign_in_never_brings_back_an_ended_session,
    ended_keys_are_remembered,
    end_is_logout,
    csrf_token_is_bound_to_session,
    survives_restart,
);

/// Redis keeps its indexes consistent: after every session has ended, by any path, no key of
/// the store remains.
#[tokio::test]
async fn redis_leaves_no_orphan_keys() {
    let Some(b) = redis().await else { return };
    let (s, clock) = rules(&b);
    let mk = |u: &str, k: &str| NewSession {
        external_key: Some(k.into()),
        ..signed_in(u)
    };
    let mut a = s.create(NewSession::default()).await.unwrap();
    s.authenticate(&mut a, "u1").await.unwrap();
    a.external_key = Some("sid-a".into());
    assert!(s.save(&mut a).await.unwrap());
    s.regenerate(&mut a).await.unwrap();
    let c = s.create(mk("u1", "sid-c")).await.unwrap();
    let d = s.create(mk("u2", "sid-d")).await.unwrap();
    let e = s.create(mk("u3", "sid-e")).await.unwrap();
    s.create(mk("u4", "sid-f")).await.unwrap();
    s.revoke_handle(&c.handle, Some("u1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.revoke_user("u1").await.unwrap().len(), 1);
    assert_eq!(s.revoke_external("sid-d").await.unwrap().len(), 1);
    s.end(e.id(), EndCause::Logout).await.unwrap().unwrap();
    clock.advance(IDLE + Duration::from_secs(1));
    assert_eq!(
        s.sweep().await.unwrap().len(),
        1,
        "u4's session, idle-expired"
    );
    assert!(s.load(d.id()).await.unwrap().is_none());
    let r = b._redis.as_ref().unwrap();
    let client = ::redis::Client::open(r.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut left: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{}*", r.prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    left.sort();
    // What remains is the record that sid-d ended, kept for an absolute lifetime by TTL, and
    // the removals' fence (one key, an hour by TTL).
    assert_eq!(
        left,
        vec![
            format!("{}e:x:sid-d", r.prefix),
            format!("{}fence", r.prefix)
        ],
        "orphaned keys"
    );
    for key in &left {
        let ttl: i64 = ::redis::cmd("TTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ttl > 0, "{key} expires by itself");
    }
}

/// Redis TTLs elapse in real time, which the injected clock cannot stand in for. Here the
/// store is driven with a fixed logical `now` (so nothing expires by the session's own
/// deadlines) while five real seconds pass, with a grace of one second and an idle deadline
/// two seconds ahead: two sessions touched every second stay in the per-user and per-`sid`
/// indexes, and each index still ends its session.
#[tokio::test]
async fn redis_indexes_live_as_long_as_their_sessions() {
    let Some(r) = TestRedis::create("Redis index lifetimes") else {
        return;
    };
    let store = RedisStore::connect(&r.url, &r.prefix)
        .await
        .unwrap()
        .with_grace(Duration::from_secs(1));
    let now = 1_000_000;
    let mk = |n: &str| StoredSession {
        id_hash: format!("hash-{n}"),
        handle: format!("handle-{n}"),
        user_id: Some("u1".into()),
        external_key: Some(format!("sid-{n}")),
        data: serde_json::json!({}),
        csrf_token: "csrf".into(),
        created_at: now,
        last_seen_at: now,
        idle_expires_at: now + 2,
        absolute_expires_at: now + 3600,
        auth_time: Some(now),
        user_agent: None,
        client_addr: None,
        version: 0,
    };
    store.insert(&mk("a")).await.unwrap();
    store.insert(&mk("b")).await.unwrap();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        for n in ["a", "b"] {
            store
                .touch(&format!("hash-{n}"), now, now + 2)
                .await
                .unwrap();
            assert!(
                store
                    .get(&format!("hash-{n}"), now)
                    .await
                    .unwrap()
                    .is_some()
            );
        }
    }
    assert_eq!(store.list_by_user("u1", now).await.unwrap().len(), 2);
    assert_eq!(
        store.remove_by_external_key("sid-a").await.unwrap().len(),
        1
    );
    assert_eq!(
        store.remove_by_user("u1").await.unwrap().len(),
        1,
        "b, by user"
    );
    assert!(store.get("hash-b", now).await.unwrap().is_none());
}
