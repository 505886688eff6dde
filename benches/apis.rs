//! Issue 19's trade-off, per request at an API, measured in one process: a JWT access token
//! checked locally by the `resource-server` crate (the provider's keys cached, the revocation
//! feed's list consulted), the same token checked by asking the provider (RFC 7662
//! introspection over loopback HTTP, as the API's client), and a server-side session looked
//! up in the SQL store on SQLite (what a stateful API would do instead of a token).
//!
//! `cargo bench --bench apis`. Figures in README.md ("APIs"); how soon each hears a revocation
//! is measured by `tests/e2e/flows/apis.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use infra::{Clock, Db};
use provider::protocol::registration::{self, ClientMetadata, Registrant};
use provider::protocol::resources::{self, ResourceSpec};
use provider::protocol::token::issue::{Issue, issue};
use provider::protocol::token::target::Target;
use provider::store::GrantRow;
use provider::types::{Alg, ApiScopes, GrantType, ScopeSet};
use resource_server::{Config, Verifier};
use sessions::{NewSession, SessionId, SessionPolicy, Sessions, SqlStore};
use std::sync::Arc;
use std::time::Duration;

const API: &str = "http://api.localhost:5003";

/// A provider serving on loopback (SQLite), with alice, an app, the API and its client.
struct World {
    issuer: String,
    token: String,
    verifier: Verifier,
    _feed: resource_server::Listener,
    http: reqwest::Client,
    sessions: Sessions,
    session: SessionId,
    _dir: tempfile::TempDir,
}

async fn client(ctx: &provider::Ctx, id: &str, grants: &[GrantType], redirect: bool) {
    let metadata = ClientMetadata {
        client_name: Some(id.into()),
        redirect_uris: if redirect {
            vec!["http://app.localhost/cb".into()]
        } else {
            Vec::new()
        },
        grant_types: Some(grants.iter().map(|g| g.as_str().to_owned()).collect()),
        ..ClientMetadata::default()
    };
    let who = Registrant {
        client_id: Some(id.into()),
        client_secret: Some(format!("{id}-secret")),
        first_party: true,
        ..Registrant::default()
    };
    let valid = metadata.validate(&ctx.outbound).unwrap();
    registration::register_or_replace(&ctx.store, valid, &who, ctx.clock.unix())
        .await
        .unwrap();
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let mut config = provider::Config {
        issuer: issuer.parse().unwrap(),
        listen: listener.local_addr().unwrap(),
        database_url: format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display()),
        ..provider::Config::default()
    };
    // The bench is one client at full speed: no budget stops it.
    config.limits.rate_per_address = u64::MAX;
    config.limits.introspection_rate_per_client = u64::MAX;
    let clock = Clock::system();
    let app = provider::App::new(config, clock.clone()).await.unwrap();
    let ctx = app.ctx().clone();
    tokio::spawn(app.serve(listener, std::future::pending()));
    let now = clock.unix();
    let new = provider::store::NewUser {
        username: "alice".into(),
        password_hash: "unused".into(),
        name: None,
        given_name: None,
        family_name: None,
        email: None,
        email_verified: false,
        developer: false,
    };
    let user = ctx.store.create_user(&new, now).await.unwrap();
    client(&ctx, "app", &[GrantType::AuthorizationCode], true).await;
    client(&ctx, "notes-api", &[GrantType::ClientCredentials], false).await;
    let api_client = ctx.store.client("notes-api").await.unwrap();
    let spec = ResourceSpec {
        resource_id: API.into(),
        name: Some("Notes".into()),
        scopes: vec!["notes:read".into()],
        ..ResourceSpec::default()
    };
    let new = resources::validate(spec, api_client.as_ref(), &ctx.issuer, now).unwrap();
    ctx.store.add_resource(&new).await.unwrap();
    // A token as a code's redemption would issue it (RS256, five minutes, in the registry).
    let app_client = ctx.store.client("app").await.unwrap().unwrap();
    let grant = GrantRow {
        grant_id: "bench-grant".into(),
        client_id: "app".into(),
        user_id: user.id.clone(),
        sid: None,
        scope: ScopeSet::parse_known("openid"),
        created_at: now,
        last_used_at: now,
        expires_at: now + 3600,
        revoked_at: None,
    };
    let issued = issue(
        &ctx,
        now,
        Issue {
            grant: GrantType::AuthorizationCode,
            client: &app_client,
            user: Some(&user),
            scope: ScopeSet::parse_known("openid"),
            grant_id: Some(grant.grant_id.clone()),
            sid: None,
            auth_time: Some(now),
            amr: provider::types::Methods::PASSWORD,
            acr: None,
            nonce: None,
            id_token: false,
            refresh: None,
            starts: Some(grant),
            guards: Vec::new(),
            adopt: None,
            target: Some(Target {
                resource_id: API.into(),
                scopes: ApiScopes::define(["notes:read"]).unwrap(),
                lifetime: 300,
                alg: Alg::RS256,
            }),
            exchanged: None,
            dpop_jkt: None,
        },
    )
    .await
    .unwrap();
    let http = infra::http::client_builder().build().unwrap();
    let verifier = Verifier::discover(Config::new(issuer.clone(), API), http.clone(), clock)
        .await
        .unwrap();
    let feed = verifier
        .hear_revocations("notes-api", "notes-api-secret")
        .unwrap();
    // Heard once: the keys fetched, the feed synced.
    while verifier.verify(&issued.access_token).await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let store = SqlStore::new(
        Db::connect(
            &format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display()),
            4,
        )
        .await
        .unwrap(),
    );
    store.migrate().await.unwrap();
    let policy = SessionPolicy {
        touch_interval: Duration::from_secs(3600),
        ..SessionPolicy::new(Duration::from_secs(1800), Duration::from_secs(12 * 3600))
    };
    let sessions = Sessions::new(Arc::new(store), policy, Clock::system());
    let new = NewSession {
        user_id: Some(user.id),
        ..NewSession::default()
    };
    let session = sessions.create(new).await.unwrap().id().clone();
    World {
        issuer,
        token: issued.access_token,
        verifier,
        _feed: feed,
        http,
        sessions,
        session,
        _dir: dir,
    }
}

fn per_request(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let w = rt.block_on(world());
    let mut group = c.benchmark_group("api_request");
    group
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    group.bench_function("local_jwt_with_feed", |b| {
        b.to_async(&rt)
            .iter(|| async { w.verifier.verify(&w.token).await.unwrap() });
    });
    let introspect = format!("{}/introspect", w.issuer);
    group.bench_function("introspection_http", |b| {
        b.to_async(&rt).iter(|| async {
            let answer: serde_json::Value = w
                .http
                .post(&introspect)
                .basic_auth("notes-api", Some("notes-api-secret"))
                .form(&[("token", w.token.as_str())])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(answer["active"], true);
        });
    });
    group.bench_function("session_lookup_sqlite", |b| {
        b.to_async(&rt)
            .iter(|| async { w.sessions.load(&w.session).await.unwrap().unwrap() });
    });
    group.finish();
}

criterion_group!(benches, per_request);
criterion_main!(benches);
