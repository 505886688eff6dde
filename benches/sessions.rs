//! What one request's session check costs: a server-side session load (with and without the
//! touch write) on each backend, against verifying a self-contained JWT session.
//!
//! `cargo bench --bench sessions`; PostgreSQL and Redis are measured when
//! `GATEHOUSE_TEST_POSTGRES_URL` / `GATEHOUSE_TEST_REDIS_URL` are set. Figures in README.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use infra::testing::TestPostgres;
use infra::{Clock, Db};
use provider::keys::{Alg, Keys, generate};
use sessions::testing::TestRedis;
use sessions::{
    MemoryStore, NewSession, RedisStore, SessionId, SessionPolicy, SessionStore, Sessions, SqlStore,
};
use std::sync::Arc;
use std::time::Duration;

/// Holds what must outlive a backend (temporary directory, database, key prefix).
enum Guard {
    None,
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Pg(#[allow(dead_code)] TestPostgres),
    Redis(#[allow(dead_code)] TestRedis),
}

async fn sql(url: &str) -> Arc<dyn SessionStore> {
    let store = SqlStore::new(Db::connect(url, 4).await.unwrap());
    store.migrate().await.unwrap();
    Arc::new(store)
}

async fn backends() -> Vec<(&'static str, Arc<dyn SessionStore>, Guard)> {
    let mut out: Vec<(&'static str, Arc<dyn SessionStore>, Guard)> =
        vec![("memory", Arc::new(MemoryStore::new()), Guard::None)];
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    out.push(("sqlite", sql(&url).await, Guard::Dir(dir)));
    if let Some(pg) = TestPostgres::create("PostgreSQL session benchmark").await {
        let store = sql(&pg.url).await;
        out.push(("postgres", store, Guard::Pg(pg)));
    }
    if let Some(r) = TestRedis::create("Redis session benchmark") {
        let store = RedisStore::connect(&r.url, &r.prefix).await.unwrap();
        out.push(("redis", Arc::new(store), Guard::Redis(r)));
    }
    out
}

/// Sessions whose touch interval is `touch`: an hour means every load is a read only; zero
/// means every load also writes `last_seen_at`.
fn rules(store: &Arc<dyn SessionStore>, touch: Duration) -> Sessions {
    let policy = SessionPolicy {
        idle_timeout: Duration::from_secs(1800),
        absolute_lifetime: Duration::from_secs(12 * 3600),
        touch_interval: touch,
        remembered: None,
    };
    Sessions::new(store.clone(), policy, Clock::system())
}

fn session_load(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let backends = rt.block_on(backends());
    let mut group = c.benchmark_group("session");
    group
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    for (name, store, _guard) in &backends {
        let (read_only, touching) = (
            rules(store, Duration::from_secs(3600)),
            rules(store, Duration::ZERO),
        );
        let id: SessionId = rt.block_on(async {
            let new = NewSession {
                user_id: Some("bench-user".into()),
                external_key: Some("bench-sid".into()),
                data: serde_json::json!({"clients": ["app-a", "app-b"], "pending": []}),
                user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0".into()),
                client_addr: Some("127.0.0.1".into()),
                ..NewSession::default()
            };
            read_only.create(new).await.unwrap().id().clone()
        });
        group.bench_function(format!("load/{name}"), |b| {
            b.to_async(&rt)
                .iter(|| async { read_only.load(&id).await.unwrap().unwrap() });
        });
        group.bench_function(format!("load+touch/{name}"), |b| {
            b.to_async(&rt)
                .iter(|| async { touching.load(&id).await.unwrap().unwrap() });
        });
    }
    group.finish();
}

fn jwt_session(c: &mut Criterion) {
    let stored: Vec<_> = Alg::ALL.iter().map(|a| generate(*a, 0).unwrap()).collect();
    let keys = Keys::from_stored(&stored, 1).unwrap();
    let claims = serde_json::json!({
        "iss": "https://idp.example", "aud": "https://idp.example", "sub": "bench-user",
        "exp": 4_000_000_000i64, "iat": 1_700_000_000, "sid": "bench-sid",
        "name": "Alice Liddell", "email": "alice@example.com",
    });
    let mut group = c.benchmark_group("jwt");
    group
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    for &alg in Alg::ALL {
        let token = keys.sign(alg, "JWT", &claims).unwrap();
        group.bench_function(format!("verify/{}", alg.as_str()), |b| {
            b.iter(|| {
                keys.verify::<serde_json::Value>(
                    &token,
                    "JWT",
                    "https://idp.example",
                    "https://idp.example",
                    1_800_000_000,
                )
                .unwrap()
            });
        });
        group.bench_function(format!("sign/{}", alg.as_str()), |b| {
            b.iter(|| keys.sign(alg, "JWT", &claims).unwrap());
        });
    }
    group.finish();
}

criterion_group!(benches, session_load, jwt_session);
criterion_main!(benches);
