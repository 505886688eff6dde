//! Session ends that survive crashes, outages and races: each end is recorded (ledger,
//! revocations, back-channel logouts, in one transaction) before its session leaves the
//! session store, an end interrupted between the two is finished by the maintenance loop, a
//! session the store lost is still ended, and no sign-in brings back a session that ended.
//! Each scenario runs on SQLite (sessions in memory) and on PostgreSQL with sessions in Redis.

use super::{REDIRECT, VERIFIER, World, form, world, world_on};
use crate::context::testing;
use crate::logout;
use crate::protocol::registration::{self, ClientMetadata, Registrant};
use crate::protocol::token::{self, TokenResponse};
use crate::types::DeliveryState;
use crate::users::{self, Attempt, SignIn};
use infra::outbound::Outbound;
use sessions::{EndCause, NewSession, Session, SessionEnd};
use std::sync::Arc;

/// Registers `bc`, a first-party app with a back-channel logout URI.
async fn with_backchannel_app(w: &World) {
    with_client(w, "bc", "https://app.example/backchannel", &w.ctx.outbound).await;
}

/// Registers `id`, a first-party app with back-channel logout URI `uri`, as the rules of
/// `outbound` allow.
pub(super) async fn with_client(w: &World, id: &str, uri: &str, outbound: &Outbound) {
    let metadata = ClientMetadata {
        client_name: Some(format!("App {id}")),
        redirect_uris: vec![REDIRECT.into()],
        grant_types: Some(vec!["authorization_code".into(), "refresh_token".into()]),
        backchannel_logout_uri: Some(uri.into()),
        ..ClientMetadata::default()
    };
    let who = Registrant {
        client_id: Some(id.into()),
        client_secret: Some(format!("{id}-secret")),
        first_party: true,
        ..Registrant::default()
    };
    registration::register(
        &w.ctx.store,
        metadata.validate(outbound).unwrap(),
        &who,
        w.ctx.clock.unix(),
    )
    .await
    .unwrap();
}

/// Alice signed in with her password, as the login page does it.
pub(super) async fn sign_in(w: &World) -> (Session, SignIn) {
    sign_in_as(w, "alice", "wonderland").await
}

/// A fresh browser session signed in with a username and password.
async fn sign_in_as(w: &World, username: &str, password: &str) -> (Session, SignIn) {
    let mut session = w.ctx.sessions.create(NewSession::default()).await.unwrap();
    let attempt = Attempt {
        username,
        password,
        addr: None,
        remember: false,
    };
    let outcome = users::sign_in(&w.ctx, &mut session, attempt).await.unwrap();
    (session, outcome)
}

/// A refresh token of app `bc`, through `session`.
async fn refresh_token(w: &World, session: &Session) -> String {
    let code = w.code(session, "bc", "openid").await;
    let pairs = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let issued = token::exchange(&w.ctx, &w.client("bc").await, &form(&pairs))
        .await
        .unwrap();
    issued.refresh_token.unwrap()
}

async fn refresh(w: &World, rt: &str) -> Result<TokenResponse, crate::protocol::error::TokenError> {
    let pairs = [("grant_type", "refresh_token"), ("refresh_token", rt)];
    token::exchange(&w.ctx, &w.client("bc").await, &form(&pairs)).await
}

/// Back-channel logouts queued for session `sid`.
async fn logouts_queued(w: &World, sid: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM logout_deliveries WHERE sid = $1")
        .bind(sid)
        .fetch_one(w.ctx.store.db().read())
        .await
        .unwrap();
    n
}

/// The process stops after recording an end and before removing the session (the first of
/// `logout::end_sessions`'s two steps, alone, is what a crash there leaves): the session is
/// still in the session store, but its tokens are already dead and its logout is queued; the
/// maintenance loop then removes it, once, and queues nothing twice.
async fn an_end_interrupted_after_its_record(w: World) {
    with_backchannel_app(&w).await;
    let (session, outcome) = sign_in(&w).await;
    assert_eq!(
        outcome,
        SignIn::SignedIn {
            user_id: w.alice.clone()
        }
    );
    let rt = refresh_token(&w, &session).await;
    let end = session.ending(EndCause::Logout);
    let now = w.ctx.clock.unix();
    assert_eq!(
        logout::record_end(&w.ctx.store, &end, now).await.unwrap(),
        1
    );
    // The crash: nothing more happens. What it leaves is safe already.
    assert!(
        w.ctx.sessions.load(session.id()).await.unwrap().is_some(),
        "left behind"
    );
    assert!(
        refresh(&w, &rt).await.is_err(),
        "its grant died with the record"
    );
    assert_eq!(logouts_queued(&w, &session.handle).await, 1);
    assert!(
        w.try_code(&session, "bc", "openid").await.is_err(),
        "no new code from a session whose end is recorded"
    );
    // The next maintenance pass finishes the end.
    logout::finish_interrupted(&w.ctx.store, &w.ctx.sessions, now)
        .await
        .unwrap();
    assert!(
        w.ctx.sessions.load(session.id()).await.unwrap().is_none(),
        "removed"
    );
    assert!(
        w.ctx.store.unremoved_ends(10).await.unwrap().is_empty(),
        "confirmed"
    );
    // Recorded again (a retry, a second instance): nothing is queued twice.
    assert_eq!(
        logout::record_end(&w.ctx.store, &end, now).await.unwrap(),
        0
    );
    assert_eq!(logouts_queued(&w, &session.handle).await, 1);
}

/// The session store loses a signed-in session without any sweep seeing it (Redis data lost
/// in a failover, or expired past its grace while every instance was down): the ledger still
/// holds it live, and once its lifetime is over it is ended like any expired session, so
/// its grants die and its apps hear of it.
async fn a_session_the_store_lost(w: World) {
    with_backchannel_app(&w).await;
    let (session, _) = sign_in(&w).await;
    let rt = refresh_token(&w, &session).await;
    assert!(
        w.ctx.sessions.remove(&session.handle).await.unwrap(),
        "lost"
    );
    let now = w.ctx.clock.unix();
    logout::finish_interrupted(&w.ctx.store, &w.ctx.sessions, now)
        .await
        .unwrap();
    assert_eq!(logouts_queued(&w, &session.handle).await, 0, "not over yet");
    w.ctx
        .clock
        .advance(w.ctx.sessions.policy().absolute_lifetime + std::time::Duration::from_secs(1));
    let later = w.ctx.clock.unix();
    let queued = logout::finish_interrupted(&w.ctx.store, &w.ctx.sessions, later)
        .await
        .unwrap();
    assert_eq!(queued, 1, "its app is told");
    assert_eq!(logouts_queued(&w, &session.handle).await, 1);
    assert!(refresh(&w, &rt).await.is_err(), "its online grant is over");
}

/// An expired session is recorded ended before the sweep removes it: the sweep and the
/// end are one step as far as anyone can see, and a second sweep finds nothing.
async fn expiry_is_recorded_before_removal(w: World) {
    with_backchannel_app(&w).await;
    let (session, _) = sign_in(&w).await;
    let rt = refresh_token(&w, &session).await;
    w.ctx
        .clock
        .advance(w.ctx.sessions.policy().idle_timeout + std::time::Duration::from_secs(1));
    let expired = w.ctx.sessions.expired(10).await.unwrap();
    assert_eq!(expired.len(), 1);
    logout::end(&w.ctx, &expired).await.unwrap();
    assert!(w.ctx.sessions.expired(10).await.unwrap().is_empty());
    assert!(
        w.ctx
            .sessions
            .by_handle(&session.handle)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(logouts_queued(&w, &session.handle).await, 1);
    assert!(refresh(&w, &rt).await.is_err());
    assert!(
        w.ctx.store.unremoved_ends(10).await.unwrap().is_empty(),
        "the removal is confirmed at once, not left to maintenance"
    );
}

/// Finished back-channel logout deliveries are forgotten after their retention; one still
/// being tried is kept, however old.
async fn finished_deliveries_are_pruned(w: World) {
    with_backchannel_app(&w).await;
    let mut sids = Vec::new();
    for _ in 0..2 {
        let (session, _) = sign_in(&w).await;
        refresh_token(&w, &session).await;
        logout::end(&w.ctx, &[session.ending(EndCause::Logout)])
            .await
            .unwrap();
        sids.push(session.handle);
    }
    let now = w.ctx.clock.unix();
    let delivered = format!("{} bc", sids[0]);
    let claimed = w
        .ctx
        .store
        .claim_due_deliveries(now, 30, 10, 4, &[])
        .await
        .unwrap();
    let d = claimed.iter().find(|d| d.id == delivered).unwrap();
    let store = &w.ctx.store;
    let recorded =
        |claim| store.record_delivery(&d.id, claim, DeliveryState::Delivered, 1, now, None, now);
    assert!(
        !recorded(d.next_attempt_at + 1).await.unwrap(),
        "another claim's record is refused"
    );
    assert!(recorded(d.next_attempt_at).await.unwrap());
    let retention = crate::store::DELIVERY_RETENTION_SECS;
    assert_eq!(
        store.sweep_deliveries(now - retention).await.unwrap(),
        0,
        "not yet"
    );
    let later = now + retention + 1;
    assert_eq!(store.sweep_deliveries(later - retention).await.unwrap(), 1);
    assert_eq!(
        logouts_queued(&w, &sids[0]).await,
        0,
        "delivered: forgotten"
    );
    assert_eq!(logouts_queued(&w, &sids[1]).await, 1, "pending: kept");
}

/// The database is out of reach when a session should end (here: its pools closed, as an
/// outage looks to the provider): nothing is removed from the session store, and the caller
/// gets an error, so the end can be tried again in full instead of half-happening.
async fn an_end_while_the_database_is_down(w: World) {
    let (session, _) = sign_in(&w).await;
    w.ctx.store.db().close().await;
    let ended = logout::end(&w.ctx, &[session.ending(EndCause::Logout)]).await;
    assert!(ended.is_err(), "the end is not reported as done");
    assert!(
        w.ctx.sessions.load(session.id()).await.unwrap().is_some(),
        "and nothing was removed"
    );
}

/// Sign-ins racing "sign out everywhere", 40 pairs, each pair with an account of its own:
/// whatever the order, the session store and the ledger agree afterwards. No session is in
/// the store that the ledger has ended (nothing brought back), and every session a sign-in
/// reported is either live in both (the sign-out came first) or ended in both (it came
/// after); a sign-out during the password hash refuses the sign-in.
async fn sign_in_against_sign_out_everywhere(w: World) {
    const PAIRS: u64 = 40;
    let w = Arc::new(w);
    let mut ids = Vec::new();
    for i in 0..PAIRS {
        let name = format!("user{i}");
        let now = w.ctx.clock.unix();
        ids.push(
            users::create_user(&w.ctx.store, &name, "password", now)
                .await
                .unwrap()
                .id,
        );
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, id) in (0..PAIRS).zip(ids.clone()) {
        let (w1, w2) = (w.clone(), w.clone());
        tasks.spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(i * 7 % 41)).await;
            let name = format!("user{i}");
            let (session, outcome) = sign_in_as(&w1, &name, "password").await;
            matches!(outcome, SignIn::SignedIn { .. }).then_some(session)
        });
        tasks.spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(i * 37 % 1201)).await;
            users::sign_out_everywhere(&w2.ctx, &id).await.unwrap();
            None
        });
    }
    let mut signed_in = Vec::new();
    while let Some(done) = tasks.join_next().await {
        signed_in.extend(done.unwrap());
    }
    let (mut live, mut ended) = (0, 0);
    for session in &signed_in {
        let in_store = w
            .ctx
            .sessions
            .by_handle(&session.handle)
            .await
            .unwrap()
            .is_some();
        let open = w.ctx.store.session_open(&session.handle).await.unwrap();
        assert_eq!(
            in_store, open,
            "store and ledger disagree on {}",
            session.handle
        );
        if open { live += 1 } else { ended += 1 }
    }
    for id in &ids {
        for s in w.ctx.sessions.list_for_user(id).await.unwrap() {
            assert!(
                w.ctx.store.session_open(&s.handle).await.unwrap(),
                "a session the ledger has ended is back"
            );
        }
    }
    eprintln!(
        "sign-ins after the sign-out: {live}, ended by it: {ended}, refused during the hash: {}",
        PAIRS as usize - signed_in.len()
    );
}

/// The sign-in form posted twice (a double click), by a fresh browser and by a signed-in one
/// re-authenticating: the second sign-in finds the session already written by the first and
/// leaves it alone. Nothing is ended, no app is logged out, no error.
async fn a_double_submitted_sign_in(w: World) {
    with_backchannel_app(&w).await;
    let attempt = || Attempt {
        username: "alice",
        password: "wonderland",
        addr: None,
        remember: false,
    };
    let pre_login = w.ctx.sessions.create(NewSession::default()).await.unwrap();
    let (mut first, mut second) = (pre_login.clone(), pre_login);
    let got = users::sign_in(&w.ctx, &mut first, attempt()).await.unwrap();
    assert!(matches!(got, SignIn::SignedIn { .. }));
    let got = users::sign_in(&w.ctx, &mut second, attempt())
        .await
        .unwrap();
    assert_eq!(got, SignIn::Superseded);
    assert!(w.ctx.sessions.load(first.id()).await.unwrap().is_some());
    // Signed in, with an app: re-authentication (prompt=login) posted twice.
    let rt = refresh_token(&w, &first).await;
    let (mut again, mut twice) = (first.clone(), first.clone());
    let got = users::sign_in(&w.ctx, &mut again, attempt()).await.unwrap();
    assert!(matches!(got, SignIn::SignedIn { .. }));
    assert_eq!(again.handle, first.handle, "the same SSO session");
    let got = users::sign_in(&w.ctx, &mut twice, attempt()).await.unwrap();
    assert_eq!(got, SignIn::Superseded);
    assert!(
        w.ctx.sessions.load(again.id()).await.unwrap().is_some(),
        "still signed in"
    );
    assert!(w.ctx.store.session_open(&first.handle).await.unwrap());
    assert_eq!(
        logouts_queued(&w, &first.handle).await,
        0,
        "no app was logged out"
    );
    assert!(refresh(&w, &rt).await.is_ok(), "its grant lives");
}

/// Re-authenticating (prompt=login) on a session that was ended meanwhile: the old sid
/// does not come back, in the store or the ledger; the user gets a new session.
async fn re_authentication_of_an_ended_session(w: World) {
    let (mut session, _) = sign_in(&w).await;
    let old = session.handle.clone();
    let end = SessionEnd {
        handle: old.clone(),
        user_id: Some(w.alice.clone()),
        external_key: None,
        cause: EndCause::Revoked,
    };
    logout::end(&w.ctx, &[end]).await.unwrap();
    let attempt = Attempt {
        username: "alice",
        password: "wonderland",
        addr: None,
        remember: false,
    };
    let outcome = users::sign_in(&w.ctx, &mut session, attempt).await.unwrap();
    assert_eq!(
        outcome,
        SignIn::Refused,
        "this sign-in was overtaken by the end"
    );
    assert!(
        w.ctx.sessions.by_handle(&old).await.unwrap().is_none(),
        "not back"
    );
    assert!(!w.ctx.store.session_open(&old).await.unwrap());
    // Signing in afresh works.
    let (fresh, outcome) = sign_in(&w).await;
    assert_eq!(
        outcome,
        SignIn::SignedIn {
            user_id: w.alice.clone()
        }
    );
    assert_ne!(fresh.handle, old);
}

/// Memberships left behind by a session that is over (here: rows from before the session
/// ledger, 2,500 of them, more than one batch) are swept; a live session's are kept however
/// old, since its end will still need them to tell its apps.
async fn orphaned_memberships_are_swept_in_batches(w: World) {
    with_backchannel_app(&w).await;
    let (session, _) = sign_in(&w).await;
    w.code(&session, "bc", "openid").await;
    let now = w.ctx.clock.unix();
    let db = w.ctx.store.db().write();
    sqlx::query("UPDATE session_clients SET joined_at = $1")
        .bind(now - 1_000_000)
        .execute(db)
        .await
        .unwrap();
    let mut tx = db.begin().await.unwrap();
    for i in 0..2500 {
        sqlx::query(
            "INSERT INTO session_clients (sid, client_id, user_id, joined_at) \
             VALUES ($1, 'bc', $2, $3)",
        )
        .bind(format!("legacy-{i}"))
        .bind(&w.alice)
        .bind(now - 1_000_000)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    const { assert!(2500 > crate::store::SWEEP_BATCH * 2) };
    let swept = w.ctx.store.sweep_memberships(now - 86_400).await.unwrap();
    assert_eq!(swept, 2500);
    let names = w
        .ctx
        .store
        .session_client_names(&[session.handle.as_str()])
        .await
        .unwrap();
    assert_eq!(names.len(), 1, "the live session's membership is kept");
    // And its end still tells the app.
    logout::end(&w.ctx, &[session.ending(EndCause::Logout)])
        .await
        .unwrap();
    assert_eq!(logouts_queued(&w, &session.handle).await, 1);
}

on_both_databases! {
    orphaned_memberships_are_swept_in_batches:
        orphaned_memberships_are_swept_in_batches_on_sqlite,
        orphaned_memberships_are_swept_in_batches_on_postgres;
    an_end_interrupted_after_its_record:
        an_end_interrupted_after_its_record_is_finished_on_sqlite,
        an_end_interrupted_after_its_record_is_finished_on_postgres;
    a_session_the_store_lost:
        a_session_the_store_lost_is_ended_when_its_lifetime_is_over_on_sqlite,
        a_session_the_store_lost_is_ended_when_its_lifetime_is_over_on_postgres;
    expiry_is_recorded_before_removal:
        expiry_is_recorded_before_removal_on_sqlite,
        expiry_is_recorded_before_removal_on_postgres;
    finished_deliveries_are_pruned:
        finished_deliveries_are_pruned_after_their_retention_on_sqlite,
        finished_deliveries_are_pruned_after_their_retention_on_postgres;
    an_end_while_the_database_is_down:
        an_end_while_the_database_is_down_removes_nothing_on_sqlite,
        an_end_while_the_database_is_down_removes_nothing_on_postgres;
    sign_in_against_sign_out_everywhere:
        no_sign_in_racing_sign_out_everywhere_is_brought_back_on_sqlite,
        no_sign_in_racing_sign_out_everywhere_is_brought_back_on_postgres;
    a_double_submitted_sign_in:
        a_double_submitted_sign_in_leaves_the_first_alone_on_sqlite,
        a_double_submitted_sign_in_leaves_the_first_alone_on_postgres;
    re_authentication_of_an_ended_session:
        re_authentication_never_brings_back_an_ended_session_on_sqlite,
        re_authentication_never_brings_back_an_ended_session_on_postgres;
}
