//! `grants`: one notion of a live grant, and revocations that no concurrent issuance escapes.
//!
//! A grant is what one authorization code started: its refresh-token family and access
//! tokens. It is live while not revoked and not past its lifetime; an online grant is also
//! revoked whenever its SSO session ends. Every write that issues a token carries a
//! [`Guard`], a conditional `UPDATE` run in the write's own transaction: a code redemption
//! redeems its code (still unredeemed, unrevoked and in date), a refresh touches its grant (still
//! live), a code issuance its session's ledger row (not ended). The update locks that row until the commit.
//!
//! A revocation ([`Store::revoke`], and a session's end, `Store::end_session` in
//! `store::ledger`) is one transaction that first updates those same rows (ledger, codes,
//! grants, in that order) and only then, in later statements, the tokens
//! hanging off them. So either the revocation comes first, and the guard finds the row
//! revoked and nothing is written; or the write comes first, the revocation waits on its lock,
//! and its later statements (each with a fresh snapshot, even under PostgreSQL's READ
//! COMMITTED) see and revoke what the write inserted. On SQLite the one writer connection
//! serialises the two outright. Deadlocks between concurrent multi-row locks are broken by the
//! database; a revocation is then simply run again.

use super::handle::Store;
use super::rows::{Guard, Insert, Table, Val};
use crate::types::ScopeSet;
use sqlx::FromRow;

/// How often a revocation is attempted before its error is returned (a deadlock broken by the
/// database, a serialisation failure).
const ATTEMPTS: usize = 5;

/// A grant, as stored.
#[derive(Clone, Debug, FromRow)]
pub struct GrantRow {
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    /// The SSO session of an online grant; `None` for `offline_access`.
    pub sid: Option<String>,
    #[sqlx(try_from = "String")]
    pub scope: ScopeSet,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// What to revoke, with everything hanging off it.
#[derive(Clone, Copy, Debug)]
pub enum Revoke<'a> {
    /// One grant (a replayed code, a reused or revoked refresh token).
    Grant(&'a str),
    /// Every code and grant of a user (password change, account disabled or removed).
    User(&'a str),
    /// Every code and grant of one user for one client (the app disconnected).
    App {
        user_id: &'a str,
        client_id: &'a str,
    },
    /// Every code and grant of one client, for every user (the app deleted).
    Client(&'a str),
}

static GRANTS: Table = Table {
    head: "INSERT INTO grants (grant_id, client_id, user_id, sid, scope, created_at, \
           last_used_at, expires_at) VALUES",
    columns: 8,
    tail: "",
};

const GRANT_COLUMNS: &str = "grant_id, client_id, user_id, sid, scope, created_at, \
    last_used_at, expires_at, revoked_at";

impl Insert {
    /// A new grant (at the code's redemption).
    pub fn grant(g: &GrantRow) -> Self {
        Self::new(
            &GRANTS,
            vec![
                g.grant_id.as_str().into(),
                g.client_id.as_str().into(),
                g.user_id.as_str().into(),
                g.sid.clone().into(),
                g.scope.to_string().into(),
                g.created_at.into(),
                g.last_used_at.into(),
                g.expires_at.into(),
            ],
        )
    }
}

impl Guard {
    /// SSO session `sid` has not ended: its ledger row is written live (or kept live, its
    /// deadline only ever moved later: a request that read the session before a
    /// re-authentication must not shorten it), never over a tombstone. For a code issuance.
    pub fn session_live(sid: &str, user_id: &str, expires_at: i64) -> Self {
        Self {
            rank: 0,
            sql: "INSERT INTO sso_sessions (sid, user_id, expires_at) VALUES ($1, $2, $3) \
                  ON CONFLICT (sid) DO UPDATE SET expires_at = CASE \
                  WHEN sso_sessions.expires_at < $3 THEN $3 ELSE sso_sessions.expires_at END \
                  WHERE sso_sessions.ended_at IS NULL",
            values: vec![sid.into(), user_id.into(), expires_at.into()],
        }
    }

    /// `user_id` still consents to `client_id` (the consent row is there, and locked): for a
    /// code issued to a third-party app on the strength of that consent, so that a disconnect
    /// (which deletes the consent first) either waits for the code and revokes it, or is seen.
    pub fn consent_held(user_id: &str, client_id: &str) -> Self {
        Self {
            rank: 1,
            sql: "UPDATE consents SET granted_at = granted_at \
                  WHERE user_id = $1 AND client_id = $2",
            values: vec![user_id.into(), client_id.into()],
        }
    }

    /// The code with this hash is unredeemed, unrevoked and in date, and is redeemed now
    /// (`used_at = now`), in the same transaction as the tokens it leads to (RFC 6749 §4.1.2:
    /// used once). For a code's redemption.
    pub fn code_redeemed(code_hash: &str, now: i64) -> Self {
        Self {
            rank: 2,
            sql: "UPDATE authorization_codes SET used_at = $2 \
                  WHERE code_hash = $1 AND used_at IS NULL AND revoked_at IS NULL \
                  AND expires_at > $2",
            values: vec![code_hash.into(), now.into()],
        }
    }

    /// Refresh token `token_hash` is unspent and unrevoked, and is spent now (`used_at =
    /// now`), in the same transaction as its successor: a refresh that fails, or whose commit
    /// is lost, leaves the token as it was. For a refresh.
    pub fn refresh_unspent(token_hash: &str, now: i64) -> Self {
        Self {
            rank: 4,
            sql: "UPDATE refresh_tokens SET used_at = $2 \
                  WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL",
            values: vec![token_hash.into(), now.into()],
        }
    }

    /// Access token `jti` is unrevoked and in date (its row locked until the commit). For a
    /// token exchange (RFC 8693), whose token its subject token's revocation takes along
    /// (`Store::revoke_access_token` updates this row first).
    pub fn access_token_live(jti: &str, now: i64) -> Self {
        Self {
            rank: 5,
            sql: "UPDATE access_tokens SET revoked_at = revoked_at \
                  WHERE jti = $1 AND revoked_at IS NULL AND expires_at > $2",
            values: vec![jti.into(), now.into()],
        }
    }

    /// Client `client_id` still exists (its row locked until the commit). For a token
    /// exchange, whose token belongs to the acting client: its deletion (which locks this row
    /// first, `Store::delete_client`) either waits for the exchange and revokes its token, or
    /// comes first, and nothing is issued.
    pub fn client_exists(client_id: &str) -> Self {
        Self {
            rank: 6,
            sql: "UPDATE clients SET client_id = client_id WHERE client_id = $1",
            values: vec![client_id.into()],
        }
    }

    /// The grant is live (not revoked, in date); its last use becomes `now`. For a refresh
    /// (and a token exchange).
    pub fn grant_live(grant_id: &str, now: i64) -> Self {
        Self {
            rank: 3,
            sql: "UPDATE grants SET last_used_at = $2 \
                  WHERE grant_id = $1 AND revoked_at IS NULL AND expires_at > $2",
            values: vec![grant_id.into(), now.into()],
        }
    }
}

/// One revocation's statements, in order: the rows guards lock (ledger, codes, grants) before
/// the tokens. Their parameters are `$1` the key, `$2` the time, then [`Revoke::extra`];
/// each statement is given as many as it names.
struct Step {
    sql: String,
    params: usize,
}

fn step(sql: String, params: usize) -> Step {
    Step { sql, params }
}

impl Step {
    fn query<'q>(&'q self, params: &[Val]) -> super::rows::AnyQuery<'q> {
        params[..self.params].iter().fold(
            sqlx::query(sqlx::AssertSqlSafe(self.sql.as_str())),
            |q, v| v.bind(q),
        )
    }
}

/// A revocation's steps: codes, grants, refresh tokens and access tokens.
fn plan(what: Revoke<'_>) -> [Step; 4] {
    match what {
        Revoke::Grant(_) => [
            step(
                "UPDATE authorization_codes SET revoked_at = $2 \
                 WHERE code_hash = $1 AND revoked_at IS NULL"
                    .into(),
                2,
            ),
            step(
                "UPDATE grants SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL"
                    .into(),
                2,
            ),
            step(
                "UPDATE refresh_tokens SET revoked_at = $2 \
                 WHERE grant_id = $1 AND revoked_at IS NULL"
                    .into(),
                2,
            ),
            step(
                "UPDATE access_tokens SET revoked_at = $2 \
                 WHERE grant_id = $1 AND revoked_at IS NULL"
                    .into(),
                2,
            ),
        ],
        Revoke::User(_) => plan_for("user_id = $1", 2),
        Revoke::Client(_) => plan_for("client_id = $1", 2),
        Revoke::App { .. } => plan_for("user_id = $1 AND client_id = $3", 3),
    }
}

/// The steps that revoke every code and grant matching `who` (a condition on the `user_id`
/// and `client_id` that codes and grants both carry, naming `params` parameters), and the
/// tokens of those grants.
fn plan_for(who: &str, params: usize) -> [Step; 4] {
    let of_grants = format!("grant_id IN (SELECT grant_id FROM grants WHERE {who})");
    [
        format!(
            "UPDATE authorization_codes SET revoked_at = $2 WHERE {who} AND revoked_at IS NULL"
        ),
        format!("UPDATE grants SET revoked_at = $2 WHERE {who} AND revoked_at IS NULL"),
        format!(
            "UPDATE refresh_tokens SET revoked_at = $2 WHERE revoked_at IS NULL AND {of_grants}"
        ),
        format!(
            "UPDATE access_tokens SET revoked_at = $2 WHERE revoked_at IS NULL AND {of_grants}"
        ),
    ]
    .map(|sql| step(sql, params))
}

impl Revoke<'_> {
    /// `$1`, the key.
    fn key(&self) -> &str {
        match *self {
            Revoke::Grant(g) | Revoke::Client(g) => g,
            Revoke::User(u) | Revoke::App { user_id: u, .. } => u,
        }
    }

    /// `$3`: the client.
    fn extra(&self) -> Vec<Val> {
        match *self {
            Revoke::Grant(_) | Revoke::User(_) | Revoke::Client(_) => vec![],
            Revoke::App { client_id, .. } => vec![client_id.into()],
        }
    }
}

/// Runs `attempt` until it succeeds, fails for want of the database, or has failed
/// [`ATTEMPTS`] times (a deadlock broken by the database, a serialisation failure: the
/// transaction is simply run again).
pub(super) async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let mut n = 1;
    loop {
        match attempt().await {
            Err(e) if n < ATTEMPTS && !infra::sql_unavailable(&e) => {
                tracing::debug!(error = %e, attempt = n, "transaction conflicted; again");
                n += 1;
            }
            done => return done,
        }
    }
}

impl Store {
    /// Inserts `rows` if every one of `guards` holds, in one transaction with them (and with
    /// other requests' rows, see [`Guard`]); false, and nothing written, if one did not.
    pub async fn insert_guarded(
        &self,
        guards: Vec<Guard>,
        rows: Vec<Insert>,
    ) -> Result<bool, sqlx::Error> {
        self.batch.insert_guarded(guards, rows).await
    }

    /// Records grant `g` if it has no row (a refresh-token family issued by a version of the
    /// provider that kept no grants, still running beside this one during an upgrade); true
    /// if it was missing.
    pub async fn adopt_grant(&self, g: &GrantRow) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "INSERT INTO grants (grant_id, client_id, user_id, sid, scope, created_at, \
             last_used_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (grant_id) DO NOTHING",
        )
        .bind(&g.grant_id)
        .bind(&g.client_id)
        .bind(&g.user_id)
        .bind(&g.sid)
        .bind(g.scope.to_string())
        .bind(g.created_at)
        .bind(g.last_used_at)
        .bind(g.expires_at)
        .bind(g.revoked_at)
        .execute(self.db.write())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Revokes `what` and every token hanging off it, atomically against any concurrent
    /// issuance (see the module documentation). Returns how many grants it revoked.
    pub async fn revoke(&self, what: Revoke<'_>, now: i64) -> Result<u64, sqlx::Error> {
        retrying(|| self.revoke_once(what, now)).await
    }

    async fn revoke_once(&self, what: Revoke<'_>, now: i64) -> Result<u64, sqlx::Error> {
        let params: Vec<Val> = [what.key().into(), now.into()]
            .into_iter()
            .chain(what.extra())
            .collect();
        let [codes, grants, refresh, access] = plan(what);
        let mut tx = self.db.write().begin().await?;
        codes.query(&params).execute(&mut *tx).await?;
        let revoked = grants.query(&params).execute(&mut *tx).await?;
        for step in [refresh, access] {
            step.query(&params).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.revoked();
        Ok(revoked.rows_affected())
    }

    /// The live grants of `user_id` (not revoked, in date), newest first.
    pub async fn live_grants_of(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<GrantRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {GRANT_COLUMNS} FROM grants \
             WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
             ORDER BY created_at DESC"
        )))
        .bind(user_id)
        .bind(now)
        .fetch_all(self.db.read())
        .await
    }

    /// Deletes the tombstones of ended (and removed) sessions past their deadline, and grants
    /// past theirs by more than `keep_secs`.
    pub async fn sweep_grants(&self, now: i64, keep_secs: i64) -> Result<(), sqlx::Error> {
        self.delete_batched(
            "sso_sessions",
            "sid",
            "expires_at < $1 AND ended_at IS NOT NULL AND removed_at IS NOT NULL",
            &[now],
        )
        .await?;
        self.delete_batched("grants", "grant_id", "expires_at < $1", &[now - keep_secs])
            .await?;
        self.sweep_grant_resources(now - keep_secs).await?;
        Ok(())
    }
}
