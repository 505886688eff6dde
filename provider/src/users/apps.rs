//! A user's connected apps: every app holding the user's consent or a live grant, and
//! disconnecting one (its consent forgotten, every code, grant and token of it for the user
//! revoked, and the app told by back-channel logout to end its sessions of the user), or all
//! of them. A password change and a disabled account revoke every grant ([`revoke_all`]).

use crate::audit::{self, Event, Kind};
use crate::context::{Ctx, SystemError};
use crate::store::{GrantRow, Revoke, Store};
use crate::types::{ApiScopes, ScopeSet};
use std::collections::BTreeMap;

/// The cause given to the app in its logout delivery.
pub const DISCONNECTED: &str = "app_disconnected";

/// One connected app, as its owner sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectedApp {
    pub client_id: String,
    pub name: String,
    /// What it was granted: the remembered consent and its live grants together.
    pub scopes: ScopeSet,
    /// What it may do at APIs, by the API's name (consented to, or held by a live grant).
    pub apis: BTreeMap<String, ApiScopes>,
    /// Its first consent or grant.
    pub since: i64,
    /// Its latest token, if it ever got one.
    pub last_used: Option<i64>,
    /// Live grants bound to an SSO session (they end with it).
    pub online: usize,
    /// Live `offline_access` grants (they outlive every session, until disconnected).
    pub offline: usize,
}

impl ConnectedApp {
    /// Whether the app keeps access after "sign out everywhere".
    pub fn keeps_offline_access(&self) -> bool {
        self.offline > 0
    }
}

/// The apps `user_id` is connected to, by name.
pub async fn connected_apps(
    store: &Store,
    user_id: &str,
    now: i64,
) -> Result<Vec<ConnectedApp>, sqlx::Error> {
    let mut apps: BTreeMap<String, ConnectedApp> = BTreeMap::new();
    let blank = |client_id: &str, since: i64| ConnectedApp {
        client_id: client_id.to_owned(),
        name: String::new(),
        scopes: ScopeSet::EMPTY,
        apis: BTreeMap::new(),
        since,
        last_used: None,
        online: 0,
        offline: 0,
    };
    for (client_id, scopes, at) in store.consents_of(user_id).await? {
        let app = apps
            .entry(client_id.clone())
            .or_insert_with(|| blank(&client_id, at));
        app.scopes = app.scopes.union(scopes);
        app.since = app.since.min(at);
    }
    for g in store.live_grants_of(user_id, now).await? {
        let app = apps
            .entry(g.client_id.clone())
            .or_insert_with(|| blank(&g.client_id, g.created_at));
        add_grant(app, &g);
    }
    for (client_id, api, scopes) in store.api_access_of(user_id, now).await? {
        // Only beside a consent or a live grant, which the loops above found.
        if let Some(app) = apps.get_mut(&client_id) {
            let held = app.apis.entry(api).or_default();
            *held = held.union(&scopes);
        }
    }
    let mut named = Vec::with_capacity(apps.len());
    for (client_id, mut app) in apps {
        // An app deleted meanwhile is no longer connected to anything.
        if let Some(client) = store.client(&client_id).await? {
            app.name = client.name;
            named.push(app);
        }
    }
    named.sort_by(|a, b| a.name.cmp(&b.name).then(a.client_id.cmp(&b.client_id)));
    Ok(named)
}

fn add_grant(app: &mut ConnectedApp, g: &GrantRow) {
    app.scopes = app.scopes.union(g.scope);
    app.since = app.since.min(g.created_at);
    app.last_used = app.last_used.max(Some(g.last_used_at));
    if g.sid.is_some() {
        app.online += 1;
    } else {
        app.offline += 1;
    }
}

/// What a disconnect did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Disconnected {
    /// A remembered consent was forgotten.
    pub consent: bool,
    pub grants: u64,
    /// Back-channel logouts queued to the app.
    pub logouts: u64,
}

impl Disconnected {
    pub fn anything(&self) -> bool {
        self.consent || self.grants > 0 || self.logouts > 0
    }
}

/// Disconnects `client_id` from `user_id`: the consent forgotten, then every code, grant and
/// token of it for the user revoked (atomically against a concurrent refresh, redemption or,
/// for a third-party app, code issuance: see `store::Revoke` and `Guard::consent_held`), and
/// a back-channel logout queued for each of the user's sessions the app joined. Audited with
/// `why` (who asked). The caller wakes the outbox if logouts were queued.
pub async fn disconnect(
    store: &Store,
    user_id: &str,
    client_id: &str,
    why: &str,
    now: i64,
) -> Result<Disconnected, sqlx::Error> {
    // The consent goes first: a code being issued on its strength holds it (see
    // `Guard::consent_held`), so the revocation after it sees that code, and no code is issued
    // on it afterwards.
    let consent = store.delete_consent(user_id, client_id).await?;
    let app = Revoke::App { user_id, client_id };
    let grants = store.revoke(app, now).await?;
    let logouts = store
        .enqueue_app_logouts(user_id, client_id, DISCONNECTED, now)
        .await?;
    let done = Disconnected {
        consent,
        grants,
        logouts,
    };
    if done.anything() {
        let detail = format!("{why}: {grants} grants revoked, {logouts} app sessions told");
        let event = Event::new(Kind::AppDisconnected)
            .user(user_id)
            .client(client_id)
            .detail(detail);
        audit::record_secs(store, now, event).await;
    }
    Ok(done)
}

/// Disconnects every app of `user_id` ([`disconnect`] each), then revokes whatever else of
/// the user is left (a code not yet redeemed). Returns what was done, summed.
pub async fn disconnect_all(
    store: &Store,
    user_id: &str,
    why: &str,
    now: i64,
) -> Result<Disconnected, sqlx::Error> {
    let mut all = Disconnected::default();
    for app in connected_apps(store, user_id, now).await? {
        let one = disconnect(store, user_id, &app.client_id, why, now).await?;
        all.consent |= one.consent;
        all.grants += one.grants;
        all.logouts += one.logouts;
    }
    all.grants += revoke_all(store, user_id, why, now).await?;
    Ok(all)
}

/// Revokes every code and grant of `user_id` (a password change, a disabled account), offline
/// ones included; consents are kept. Audited with `why` when something was revoked.
pub async fn revoke_all(
    store: &Store,
    user_id: &str,
    why: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let grants = store.revoke(Revoke::User(user_id), now).await?;
    if grants > 0 {
        let event = Event::new(Kind::GrantsRevoked)
            .user(user_id)
            .detail(format!("{why}: {grants} grants revoked"));
        audit::record_secs(store, now, event).await;
    }
    Ok(grants)
}

/// The owner disconnects `client_id` ([`disconnect`]), in the running provider: the outbox is
/// woken for the app's logouts.
pub async fn disconnect_by_owner(
    ctx: &Ctx,
    user_id: &str,
    client_id: &str,
) -> Result<Disconnected, SystemError> {
    let now = ctx.clock.unix();
    let done = disconnect(&ctx.store, user_id, client_id, "by its user", now).await?;
    if done.logouts > 0 {
        ctx.logout_queued.notify_one();
    }
    Ok(done)
}
