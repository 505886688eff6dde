//! The provider's hot paths below HTTP: signing an ID token and an access token per
//! algorithm, verifying one, redeeming an authorization code, and rotating a refresh token,
//! each store operation on SQLite and (when `GATEHOUSE_TEST_POSTGRES_URL` is set) PostgreSQL.
//!
//! `cargo bench --bench tokens`. Figures in README.md ("Performance").

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use infra::secret::{hash_secret, random_token};
use infra::testing::TestPostgres;
use provider::keys::{Alg, Keys, generate};
use provider::store::{AuthCode, CodeState, Guard, Insert, NewUser, RefreshTokenRow, Store};
use provider::types::ScopeSet;
use std::hint::black_box;

/// Claims the size of a real ID token.
fn id_claims(now: i64) -> serde_json::Value {
    serde_json::json!({
        "iss": "http://idp.localhost:4000", "sub": "0b0c6ef5-52d3-4bd5-9a43-6b2a8f37a3c1",
        "aud": "app-a", "exp": now + 600, "iat": now, "auth_time": now,
        "nonce": "n-0S6_WzA2Mj", "sid": "9eXwB5y7xq2ZcW1pV3Ut8rKsNmLoJhGf",
        "at_hash": "77QmUPtjPfzWtF2AnpK9RQ", "azp": "app-a", "amr": ["pwd"],
    })
}

fn access_claims(now: i64) -> serde_json::Value {
    serde_json::json!({
        "iss": "http://idp.localhost:4000", "sub": "0b0c6ef5-52d3-4bd5-9a43-6b2a8f37a3c1",
        "aud": "http://idp.localhost:4000", "client_id": "app-a", "exp": now + 600,
        "iat": now, "jti": "2c4b1a0e-8f5d-4c3b-9a1e-7d6f5e4c3b2a",
        "scope": "openid profile email",
    })
}

fn signing(c: &mut Criterion) {
    let now = 1_800_000_000;
    let stored: Vec<_> = Alg::ALL
        .iter()
        .map(|alg| generate(*alg, now - 10).unwrap())
        .collect();
    let keys = Keys::from_stored(&stored, now).unwrap();
    let mut g = c.benchmark_group("sign");
    for &alg in Alg::ALL {
        g.bench_function(format!("{}/id_token", alg.as_str()), |b| {
            b.iter(|| keys.sign(alg, "JWT", black_box(&id_claims(now))).unwrap())
        });
        g.bench_function(format!("{}/access_token", alg.as_str()), |b| {
            b.iter(|| {
                keys.sign(alg, "at+jwt", black_box(&access_claims(now)))
                    .unwrap()
            })
        });
    }
    g.finish();
    let mut g = c.benchmark_group("verify");
    for &alg in Alg::ALL {
        let token = keys.sign(alg, "at+jwt", &access_claims(now)).unwrap();
        g.bench_function(format!("{}/access_token", alg.as_str()), |b| {
            b.iter(|| {
                let claims: serde_json::Value = keys
                    .verify(
                        black_box(&token),
                        "at+jwt",
                        "http://idp.localhost:4000",
                        "http://idp.localhost:4000",
                        now,
                    )
                    .unwrap();
                claims
            })
        });
    }
    g.finish();
}

async fn stores() -> Vec<(
    &'static str,
    Store,
    Option<TestPostgres>,
    Option<tempfile::TempDir>,
)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let sqlite = Store::connect(&url).await.unwrap();
    sqlite.migrate().await.unwrap();
    let mut out = vec![("sqlite", sqlite, None, Some(dir))];
    if let Some(pg) = TestPostgres::create("PostgreSQL token benchmark").await {
        let store = Store::connect(&pg.url).await.unwrap();
        store.migrate().await.unwrap();
        out.push(("postgres", store, Some(pg), None));
    }
    out
}

fn store_paths(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let backends = rt.block_on(stores());
    let now = 1_800_000_000;
    let mut g = c.benchmark_group("store");
    for (name, store, _pg, _dir) in &backends {
        // A code is written at authorize and redeemed (atomically) at the token endpoint; it
        // is read with its user.
        let user = NewUser {
            username: "bench".into(),
            password_hash: "x".into(),
            ..NewUser::default()
        };
        let user_id = rt.block_on(store.create_user(&user, now)).unwrap().id;
        g.bench_function(format!("{name}/code_insert_redeem"), |b| {
            b.to_async(&rt).iter(|| async {
                let hash = hash_secret(&random_token().unwrap());
                let code = AuthCode {
                    client_id: "app-a".into(),
                    user_id: user_id.clone(),
                    redirect_uri: "http://app-a.localhost:5001/callback".into(),
                    scope: ScopeSet::parse_known("openid profile email"),
                    nonce: Some("n".into()),
                    code_challenge: "c".repeat(43),
                    sid: "s".into(),
                    auth_time: now,
                    amr: provider::types::Methods::PASSWORD,
                    acr: None,
                    expires_at: now + 60,
                    dpop_jkt: None,
                };
                store
                    .insert(vec![Insert::auth_code(&hash, &code, now)])
                    .await
                    .unwrap();
                let (r, _) = store.auth_code(&hash, now).await.unwrap();
                assert!(matches!(r, CodeState::Fresh(_)));
                let redeemed = store
                    .insert_guarded(vec![Guard::code_redeemed(&hash, now)], Vec::new())
                    .await
                    .unwrap();
                assert!(redeemed);
            })
        });
        // A refresh: read the presented token, then spend it and store its successor in one
        // transaction.
        let first = hash_secret(&random_token().unwrap());
        let row = |hash: String| RefreshTokenRow {
            token_hash: hash,
            grant_id: "g".into(),
            client_id: "app-a".into(),
            user_id: "u".into(),
            scope: ScopeSet::parse_known("openid"),
            sid: Some("s".into()),
            auth_time: now,
            amr: provider::types::Methods::PASSWORD,
            acr: None,
            issued_at: now,
            family_expires_at: now + 86400,
            used_at: None,
            revoked_at: None,
            dpop_jkt: None,
        };
        rt.block_on(store.insert(vec![Insert::refresh_token(&row(first.clone()))]))
            .unwrap();
        let current = std::sync::Mutex::new(first);
        g.bench_function(format!("{name}/refresh_rotation"), |b| {
            b.to_async(&rt).iter(|| async {
                let presented = current.lock().unwrap().clone();
                let known = store.refresh_token(&presented).await.unwrap();
                assert!(known.is_some_and(|r| r.used_at.is_none()));
                let next = hash_secret(&random_token().unwrap());
                let spent = store
                    .insert_guarded(
                        vec![Guard::refresh_unspent(&presented, now)],
                        vec![Insert::refresh_token(&row(next.clone()))],
                    )
                    .await
                    .unwrap();
                assert!(spent);
                *current.lock().unwrap() = next;
            })
        });
    }
    g.finish();
}

criterion_group!(benches, signing, store_paths);
criterion_main!(benches);
