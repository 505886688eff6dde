//! Hostile registrants (README "Hostile clients" 3 and 4): a back-channel logout URI that
//! points inward is refused when the delivery is attempted, whatever was accepted when it was
//! registered (an exception the operator has since withdrawn, a row written before the policy
//! existed), and the attempt never reaches the address; one developer's apps are capped,
//! however many registrations race.

use super::durable::{sign_in, with_client};
use super::{World, world, world_on};
use crate::context::testing;
use crate::logout::{self, outbox::Outbox};
use crate::protocol::registration::{self, ClientMetadata, RegisterError, Registrant};
use crate::types::DeliveryState;
use infra::outbound::Outbound;
use sessions::EndCause;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

async fn an_inward_uri_is_refused_at_send_time(w: World) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let reached = Arc::new(AtomicUsize::new(0));
    let count = reached.clone();
    tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    // Registered while the operator allowed loopback; the running policy allows nothing.
    let then = Outbound::parse(&["127.0.0.1"]).unwrap();
    for (id, uri) in [
        ("literal", format!("http://127.0.0.1:{port}/admin")),
        ("mapped", format!("http://[::ffff:127.0.0.1]:{port}/admin")),
    ] {
        with_client(&w, id, &uri, &then).await;
    }
    let (session, _) = sign_in(&w).await;
    for id in ["literal", "mapped"] {
        w.code(&session, id, "openid").await;
    }
    logout::end(&w.ctx, &[session.ending(EndCause::Logout)])
        .await
        .unwrap();
    Outbox::new(w.ctx.ctx.clone())
        .unwrap()
        .deliver_due_now()
        .await
        .unwrap();
    let recorded = w.ctx.store.deliveries_for_user(&w.alice, 0).await.unwrap();
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    for (d, _) in &recorded {
        assert_eq!(d.state, DeliveryState::Failed, "not retried: {d:?}");
        assert_eq!(
            d.last_error.as_deref(),
            Some("refused by the outbound policy"),
            "{d:?}"
        );
    }
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "nothing reached loopback"
    );
}

/// Forty registrations by one developer at once, with a cap of five: five apps, and every other
/// registration refused as too many (the count and the insert are one transaction, after the
/// owner's row is locked).
async fn the_app_cap_holds_under_a_burst(w: World) {
    let now = w.ctx.clock.unix();
    let valid = ClientMetadata {
        client_name: Some("Burst".into()),
        redirect_uris: vec!["https://burst.example/cb".into()],
        ..ClientMetadata::default()
    }
    .validate(&w.ctx.outbound)
    .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let (ctx, valid, owner) = (w.ctx.ctx.clone(), valid.clone(), w.alice.clone());
        tasks.spawn(async move {
            let who = Registrant {
                owner_id: Some(owner),
                app_limit: Some(5),
                ..Registrant::default()
            };
            registration::register(&ctx.store, valid, &who, now).await
        });
    }
    let (mut ok, mut too_many) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            Ok(_) => ok += 1,
            Err(RegisterError::TooMany(5)) => too_many += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!((ok, too_many), (5, 35));
    let held = w.ctx.store.clients_of_owner(&w.alice).await.unwrap();
    assert_eq!(held.len(), 5);
}

on_both_databases! {
    the_app_cap_holds_under_a_burst:
        the_app_cap_holds_under_a_burst_on_sqlite,
        the_app_cap_holds_under_a_burst_on_postgres;
    an_inward_uri_is_refused_at_send_time:
        an_inward_uri_is_refused_at_send_time_on_sqlite,
        an_inward_uri_is_refused_at_send_time_on_postgres;
}
