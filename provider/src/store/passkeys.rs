//! `user_passkeys` and `passkey_ceremonies`: a user's passkeys and the WebAuthn ceremonies
//! under way. A ceremony is taken by the one statement that reads it (`DELETE … RETURNING`),
//! and a signature counter only moves forward in the statement that checks it, so of two
//! requests racing with one answer, or one authenticator's two uses, one wins, on every
//! instance.

use super::handle::{Store, is_unique_violation};
use sqlx::FromRow;

/// One registered passkey.
#[derive(Clone, Debug, FromRow)]
pub struct PasskeyRow {
    /// Ours, for the page (removing one names this, never the credential id).
    pub id: String,
    pub user_id: String,
    /// The WebAuthn credential id, base64url.
    pub credential_id: String,
    /// The name its owner gave it.
    pub name: String,
    /// The credential as webauthn-rs keeps it (JSON; public key and counter, nothing secret).
    pub passkey: String,
    pub sign_count: i64,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

const COLUMNS: &str =
    "id, user_id, credential_id, name, passkey, sign_count, created_at, last_used_at";

/// What [`Store::add_passkey`] came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    Yes,
    /// The credential is registered already.
    Taken,
    /// The account has as many as it may.
    TooMany,
    /// The account is gone.
    Gone,
}

/// A ceremony taken: the user it was started for (none for a sign-in with a passkey alone)
/// and its state.
#[derive(Debug)]
pub struct Ceremony {
    pub user_id: Option<String>,
    pub state: String,
}

impl Store {
    /// `user_id`'s passkeys, oldest first.
    pub async fn passkeys(&self, user_id: &str) -> Result<Vec<PasskeyRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM user_passkeys WHERE user_id = $1 ORDER BY created_at, id"
        )))
        .bind(user_id)
        .fetch_all(self.db.read())
        .await
    }

    /// Whether `user_id` has a passkey.
    pub async fn has_passkey(&self, user_id: &str) -> Result<bool, sqlx::Error> {
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM user_passkeys WHERE user_id = $1 LIMIT 1")
                .bind(user_id)
                .fetch_optional(self.db.read())
                .await?;
        Ok(found.is_some())
    }

    /// The passkey with WebAuthn credential id `credential_id` (base64url), whoever's it is.
    pub async fn passkey_by_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<PasskeyRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM user_passkeys WHERE credential_id = $1"
        )))
        .bind(credential_id)
        .fetch_optional(self.db.read())
        .await
    }

    /// Registers `row` if its account has fewer than `max` passkeys: [`Added::Taken`]
    /// (nothing written) if its credential is registered already, to this account or
    /// another; [`Added::Gone`] if the account is gone.
    pub async fn add_passkey(&self, row: &PasskeyRow, max: i64) -> Result<Added, sqlx::Error> {
        let mut tx = self.db.write().begin().await?;
        // The count below is read and the row written in one statement; on PostgreSQL (READ
        // COMMITTED) two such statements for one account could both count below the limit,
        // so the account's row is locked first and they take turns. SQLite has one writer.
        if !self.db.is_sqlite() {
            let found: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
                    .bind(&row.user_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if found.is_none() {
                return Ok(Added::Gone);
            }
        }
        let done = sqlx::query(
            "INSERT INTO user_passkeys \
             (id, user_id, credential_id, name, passkey, sign_count, created_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7 \
             WHERE (SELECT COUNT(*) FROM user_passkeys WHERE user_id = $2) < $8",
        )
        .bind(&row.id)
        .bind(&row.user_id)
        .bind(&row.credential_id)
        .bind(&row.name)
        .bind(&row.passkey)
        .bind(row.sign_count)
        .bind(row.created_at)
        .bind(max)
        .execute(&mut *tx)
        .await;
        let added = match done {
            Ok(done) if done.rows_affected() == 1 => Added::Yes,
            Ok(_) => return Ok(Added::TooMany),
            Err(e) if is_unique_violation(&e) => return Ok(Added::Taken),
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                return Ok(Added::Gone);
            }
            Err(e) => return Err(e),
        };
        tx.commit().await?;
        Ok(added)
    }

    /// Records a use of passkey `id` at `now`, with its credential as it stands after it
    /// (`passkey`, counter `sign_count`). The counter must move past the stored one in this
    /// statement, or both be zero (an authenticator without a counter; WebAuthn §7.2 step
    /// 22): false if it did not (a cloned authenticator, two uses racing with one counter, a
    /// counter back at zero), or the passkey is gone.
    pub async fn use_passkey(
        &self,
        id: &str,
        passkey: &str,
        sign_count: i64,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE user_passkeys SET passkey = $2, sign_count = $3, last_used_at = $4 \
             WHERE id = $1 AND (sign_count < $3 OR ($3 = 0 AND sign_count = 0))",
        )
        .bind(id)
        .bind(passkey)
        .bind(sign_count)
        .bind(now)
        .execute(self.db.write())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes `user_id`'s passkey `id`; its name if there was one.
    pub async fn remove_passkey(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar(
            "DELETE FROM user_passkeys WHERE user_id = $1 AND id = $2 RETURNING name",
        )
        .bind(user_id)
        .bind(id)
        .fetch_optional(self.db.write())
        .await
    }

    /// Removes every passkey of `user_id`; how many there were.
    pub async fn remove_passkeys(&self, user_id: &str) -> Result<u64, sqlx::Error> {
        let done = sqlx::query("DELETE FROM user_passkeys WHERE user_id = $1")
            .bind(user_id)
            .execute(self.db.write())
            .await?;
        Ok(done.rows_affected())
    }

    /// Starts a ceremony for `purpose` in browser session `session_handle`, replacing the one
    /// of the same purpose under way there.
    pub async fn put_ceremony(
        &self,
        session_handle: &str,
        purpose: &str,
        user_id: Option<&str>,
        state: &str,
        expires_at: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO passkey_ceremonies (session_handle, purpose, user_id, state, expires_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_handle, purpose) DO UPDATE SET \
             user_id = excluded.user_id, state = excluded.state, expires_at = excluded.expires_at",
        )
        .bind(session_handle)
        .bind(purpose)
        .bind(user_id)
        .bind(state)
        .bind(expires_at)
        .execute(self.db.write())
        .await?;
        Ok(())
    }

    /// Takes the ceremony for `purpose` of `session_handle`, if it is in date: one statement,
    /// so of two answers racing one gets it, and neither can be checked again.
    pub async fn take_ceremony(
        &self,
        session_handle: &str,
        purpose: &str,
        now: i64,
    ) -> Result<Option<Ceremony>, sqlx::Error> {
        let row: Option<(Option<String>, String, i64)> = sqlx::query_as(
            "DELETE FROM passkey_ceremonies WHERE session_handle = $1 AND purpose = $2 \
             RETURNING user_id, state, expires_at",
        )
        .bind(session_handle)
        .bind(purpose)
        .fetch_optional(self.db.write())
        .await?;
        Ok(row.and_then(|(user_id, state, expires_at)| {
            (expires_at > now).then_some(Ceremony { user_id, state })
        }))
    }

    /// Deletes ceremonies out of date.
    pub async fn sweep_ceremonies(&self, now: i64) -> Result<u64, sqlx::Error> {
        self.delete_batched(
            "passkey_ceremonies",
            "(session_handle, purpose)",
            "expires_at <= $1",
            &[now],
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::testing::{self, TestCtx};

    fn row(id: &str, user_id: &str, credential_id: &str) -> PasskeyRow {
        PasskeyRow {
            id: id.into(),
            user_id: user_id.into(),
            credential_id: credential_id.into(),
            name: "Laptop".into(),
            passkey: "{}".into(),
            sign_count: 0,
            created_at: 1,
            last_used_at: None,
        }
    }

    /// Sixteen requests racing with one answer take its ceremony once; sixteen uses of one
    /// authenticator with the same counter move it once; a credential registers once, to
    /// one account.
    async fn each_is_once(ctx: TestCtx) {
        let alice = crate::users::create_user(&ctx.store, "alice", "pw", 1)
            .await
            .unwrap();
        let bob = crate::users::create_user(&ctx.store, "bob", "pw", 1)
            .await
            .unwrap();
        let now = ctx.clock.unix();
        ctx.store
            .put_ceremony("sid", "sign-in", None, "state", now + 300)
            .await
            .unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let store = ctx.store.clone();
            tasks.spawn(async move { store.take_ceremony("sid", "sign-in", now).await.unwrap() });
        }
        let taken = tasks.join_all().await;
        assert_eq!(taken.iter().filter(|t| t.is_some()).count(), 1);
        // Out of date: not handed out (and gone).
        ctx.store
            .put_ceremony("sid", "register", Some(&alice.id), "s", now)
            .await
            .unwrap();
        assert!(
            ctx.store
                .take_ceremony("sid", "register", now)
                .await
                .unwrap()
                .is_none()
        );
        // One out of date and one in date: the sweep takes the first.
        for (purpose, expires_at) in [("step-up", now), ("second-factor", now + 1)] {
            ctx.store
                .put_ceremony("sid", purpose, None, "s", expires_at)
                .await
                .unwrap();
        }
        assert_eq!(ctx.store.sweep_ceremonies(now).await.unwrap(), 1);
        let kept = ctx.store.take_ceremony("sid", "second-factor", now).await;
        assert!(kept.unwrap().is_some());

        let add = |r: PasskeyRow| {
            let store = ctx.store.clone();
            async move { store.add_passkey(&r, 2).await.unwrap() }
        };
        assert_eq!(add(row("p1", &alice.id, "cred")).await, Added::Yes);
        assert_eq!(add(row("p2", &bob.id, "cred")).await, Added::Taken);
        assert_eq!(add(row("p3", &alice.id, "cred")).await, Added::Taken);
        assert_eq!(add(row("p5", "nobody", "other")).await, Added::Gone);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let store = ctx.store.clone();
            tasks.spawn(async move { store.use_passkey("p1", "{}", 7, now).await.unwrap() });
        }
        let moved = tasks.join_all().await;
        assert_eq!(moved.iter().filter(|m| **m).count(), 1, "{moved:?}");
        let used = |id: &'static str, count: i64| {
            let store = ctx.store.clone();
            async move { store.use_passkey(id, "{}", count, now).await.unwrap() }
        };
        assert!(!used("p1", 3).await, "backwards");
        assert!(!used("p1", 0).await, "back to zero");
        assert!(used("p1", 8).await);
        assert!(!used("missing", 9).await, "gone");
        // An authenticator without a counter (zero) is used any number of times.
        assert_eq!(add(row("p4", &bob.id, "synced")).await, Added::Yes);
        for _ in 0..2 {
            assert!(used("p4", 0).await);
        }
        // The account's limit.
        assert_eq!(add(row("p6", &bob.id, "third")).await, Added::Yes);
        assert_eq!(add(row("p7", &bob.id, "fourth")).await, Added::TooMany);
        // Sixteen at once for an account with room for one more: one is added.
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..16 {
            let r = row(&format!("race{i}"), &alice.id, &format!("race-cred{i}"));
            tasks.spawn(add(r));
        }
        let added = tasks.join_all().await;
        let yes = added.iter().filter(|a| **a == Added::Yes).count();
        assert_eq!(yes, 1, "{added:?}");
        // Only its owner removes one.
        assert!(
            ctx.store
                .remove_passkey(&bob.id, "p1")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            ctx.store
                .remove_passkey(&alice.id, "p1")
                .await
                .unwrap()
                .as_deref(),
            Some("Laptop")
        );
        assert!(ctx.store.has_passkey(&bob.id).await.unwrap());
        assert_eq!(ctx.store.remove_passkeys(&bob.id).await.unwrap(), 2);
        assert!(!ctx.store.has_passkey(&bob.id).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn ceremonies_counters_and_credentials_are_each_once_on_sqlite() {
        each_is_once(testing::ctx().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn ceremonies_counters_and_credentials_are_each_once_on_postgres() {
        if let Some(ctx) = testing::postgres_ctx("passkeys").await {
            each_is_once(ctx).await;
        }
    }
}
