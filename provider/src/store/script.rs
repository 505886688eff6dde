//! SQLite: a batch of `store::batch` in one or two trips to the writer connection's thread.
//!
//! sqlx runs each SQLite connection on a thread of its own, and every statement is a message to
//! that thread and an answer back: two thread wake-ups, which under load cost more CPU (futex
//! waits, context switches) than the statement itself. A batch written statement by statement
//! is `BEGIN`, each guard, each `INSERT` and `COMMIT`: seven trips for a code's redemption. Here
//! the whole batch is one SQL text, its parameters numbered through, which sqlx's SQLite driver
//! runs statement after statement on its thread in one trip:
//!
//! - no guards: `BEGIN; INSERT …; INSERT …; COMMIT`, one trip (a single `INSERT` alone, with
//!   no transaction of its own);
//! - with guards: `BEGIN; guard RETURNING k; …; INSERT …` in one trip, the guards that touched a
//!   row answering with their number, then `COMMIT` if every guard passed. If one did not (or
//!   a statement failed: the rows of a job whose guard failed may be what clashed), the
//!   transaction is rolled back and the batch is written statement by statement as on
//!   PostgreSQL, where a job's later guards are skipped once one fails (a guard writes: a
//!   refresh token must not be spent for a job that is not written). Guards fail only in races
//!   and replays, so the slow path is rare.
//!
//! Written here because sqlx offers no batching of its own. It relies on the SQLite driver
//! running every statement of a query text, which sqlx calls deprecated (launchbadge/sqlx#3108)
//! but still does; the tests below fail if a release stops. On any error the transaction is
//! rolled back, and a connection that cannot roll back, or whose write was abandoned half way
//! (a cancelled future, a panic), is closed rather than returned to the pool mid-transaction.

use super::rows::{AnyQuery, COMMON_JOBS, Guard, Insert, Val, chunks, push_sql};
use infra::Db;
use sqlx::pool::PoolConnection;
use sqlx::{Any, Row};

/// Writes a batch in one transaction: its `guards` (in the batch's order) and then its
/// `rows`, of `jobs` requests. True if written; false if a guard did not pass or
/// a statement failed with one (nothing written; the caller goes statement by statement).
pub(super) async fn write<'a>(
    db: &Db,
    guards: &[&'a Guard],
    rows: impl Iterator<Item = &'a Insert>,
    jobs: usize,
) -> Result<bool, sqlx::Error> {
    let script = Script::of(guards, rows, jobs);
    let mut conn = Writing(Some(db.write().acquire().await?));
    let Some(c) = conn.0.as_mut() else {
        return Err(sqlx::Error::PoolClosed);
    };
    let result = run(c, &script).await;
    if script.transaction && !matches!(result, Ok(true)) {
        rollback(c).await;
    }
    conn.settled();
    match result {
        // The rows of a job whose guard did not pass were inserted too, and may be what
        // failed (a second redemption's grant, say): statement by statement decides.
        Err(e) if script.guards > 0 && !infra::sql_unavailable(&e) => Ok(false),
        other => other,
    }
}

/// The writer connection while a script may hold a transaction open on it: dropped unsettled
/// (the write's future cancelled, a panic), it is closed rather than returned to the pool
/// inside that transaction, where the next user's statements would silently join it.
struct Writing(Option<PoolConnection<Any>>);

impl Writing {
    /// The transaction is committed or rolled back: the connection may go back to the pool.
    fn settled(mut self) {
        drop(self.0.take());
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        if let Some(conn) = self.0.as_mut() {
            conn.close_on_drop();
        }
    }
}

/// The batch as one text: `sql`, its parameters in order, and the number of guards.
struct Script<'a> {
    sql: String,
    values: Vec<&'a Val>,
    guards: usize,
    /// Whether it begins a transaction (all but a single unguarded statement).
    transaction: bool,
    /// Whether the text's shape recurs (a batch of a few requests' rows): kept prepared, in
    /// the connection's statement cache (least recently used out), so a shape seen again is
    /// not parsed again.
    common: bool,
}

impl<'a> Script<'a> {
    fn of(guards: &[&'a Guard], rows: impl Iterator<Item = &'a Insert>, jobs: usize) -> Self {
        let inserts = chunks(rows);
        // A single statement needs no transaction of its own.
        let alone = guards.is_empty() && inserts.len() == 1;
        let mut sql = String::new();
        let mut values = Vec::new();
        let next = |sql: &mut String| {
            if !sql.is_empty() {
                sql.push_str("; ");
            }
        };
        if !alone {
            sql.push_str("BEGIN");
        }
        for (k, guard) in guards.iter().enumerate() {
            next(&mut sql);
            guard.push_sql(&mut sql, values.len(), k);
            values.extend(guard.values.iter());
        }
        let common = jobs <= COMMON_JOBS;
        for (table, rows) in &inserts {
            next(&mut sql);
            push_sql(&mut sql, table, rows.len(), values.len());
            values.extend(rows.iter().flat_map(|r| r.values.iter()));
        }
        if guards.is_empty() && !alone {
            sql.push_str("; COMMIT");
        }
        Self {
            sql,
            values,
            guards: guards.len(),
            transaction: !alone,
            common,
        }
    }

    fn query(&self) -> AnyQuery<'static> {
        let query = sqlx::query(sqlx::AssertSqlSafe(self.sql.clone())).persistent(self.common);
        self.values.iter().fold(query, |q, v| v.bind(q))
    }
}

/// Runs the script; true if it committed, false if a guard did not pass (the transaction is
/// still open: the caller rolls it back).
async fn run(conn: &mut PoolConnection<Any>, script: &Script<'_>) -> Result<bool, sqlx::Error> {
    if script.guards == 0 {
        script.query().execute(&mut **conn).await?;
        return Ok(true);
    }
    let rows = script.query().fetch_all(&mut **conn).await?;
    let mut passed = vec![false; script.guards];
    for row in rows {
        let k: i64 = row.try_get(0)?;
        if let Some(p) = usize::try_from(k).ok().and_then(|k| passed.get_mut(k)) {
            *p = true;
        }
    }
    if !passed.iter().all(|p| *p) {
        return Ok(false);
    }
    sqlx::query("COMMIT").execute(&mut **conn).await?;
    Ok(true)
}

/// Ends whatever transaction the script left open; a connection that cannot is closed
/// instead of going back to the pool mid-transaction.
async fn rollback(conn: &mut PoolConnection<Any>) {
    // SQLite may have rolled back already (an I/O error, a full disk): ROLLBACK then fails
    // with "no transaction is active", and a fresh connection costs little on this rare path.
    if let Err(e) = sqlx::query("ROLLBACK").execute(&mut **conn).await {
        tracing::warn!(error = %e, "batched write: rollback failed; closing the connection");
        conn.close_on_drop();
    }
}

#[cfg(test)]
mod tests {
    use super::super::rows::fixtures::{T, U, db, gate, scalar};
    use super::*;

    type Job = (Vec<Guard>, Vec<Insert>);

    fn job(guards: Vec<Guard>, rows: Vec<Insert>) -> Job {
        (guards, rows)
    }

    /// [`write`] as the batcher calls it: the jobs' guards in order, then their rows.
    async fn write_jobs(db: &Db, jobs: &[Job]) -> Result<bool, sqlx::Error> {
        let mut guards: Vec<&Guard> = jobs.iter().flat_map(|j| j.0.iter()).collect();
        guards.sort_by(|a, b| a.key().cmp(&b.key()));
        write(
            db,
            &guards,
            jobs.iter().flat_map(|j| j.1.iter()),
            jobs.len(),
        )
        .await
    }

    /// Every statement of one text runs (sqlx's SQLite driver still does this; see the module
    /// documentation), with its own parameters, in one transaction.
    #[tokio::test]
    async fn a_batch_runs_as_one_text_with_every_guard_and_row() {
        let (_dir, db) = db().await;
        let jobs = [
            job(
                vec![gate("open", 0), gate("also-open", 1)],
                vec![
                    Insert::new(&T, vec!["a".into(), 1.into()]),
                    Insert::new(&U, vec!["x".into()]),
                ],
            ),
            job(
                Vec::new(),
                vec![Insert::new(&T, vec!["b".into(), 2.into()])],
            ),
        ];
        assert!(write_jobs(&db, &jobs).await.unwrap());
        assert_eq!(scalar(&db, "SELECT SUM(b) FROM t").await, 3);
        assert_eq!(scalar(&db, "SELECT COUNT(*) FROM u WHERE a = 'x'").await, 1);
        assert_eq!(scalar(&db, "SELECT SUM(passes) FROM gates").await, 2);
        // Unguarded, one table or two.
        let alone = [job(Vec::new(), vec![Insert::new(&U, vec!["y".into()])])];
        assert!(write_jobs(&db, &alone).await.unwrap());
        let two = [job(
            Vec::new(),
            vec![
                Insert::new(&T, vec!["c".into(), 4.into()]),
                Insert::new(&U, vec!["z".into()]),
            ],
        )];
        assert!(write_jobs(&db, &two).await.unwrap());
        assert_eq!(
            scalar(&db, "SELECT COUNT(*) FROM t").await
                + scalar(&db, "SELECT COUNT(*) FROM u").await,
            6
        );
    }

    /// A guard that does not pass undoes the whole text: no row and no other guard's write is
    /// left, and the writer connection is usable again.
    #[tokio::test]
    async fn a_guard_that_does_not_pass_leaves_nothing() {
        let (_dir, db) = db().await;
        let jobs = [
            job(
                vec![gate("open", 0)],
                vec![Insert::new(&U, vec!["kept?".into()])],
            ),
            job(
                vec![gate("shut", 0), gate("also-open", 1)],
                vec![Insert::new(&U, vec!["no".into()])],
            ),
        ];
        assert!(!write_jobs(&db, &jobs).await.unwrap());
        assert_eq!(scalar(&db, "SELECT COUNT(*) FROM u").await, 0);
        assert_eq!(scalar(&db, "SELECT SUM(passes) FROM gates").await, 0);
        // A failing statement (a unique violation) is rolled back too, and, guarded, handed to
        // the statement-by-statement path; unguarded, it is the caller's error.
        let dup = [job(
            vec![gate("open", 0)],
            vec![
                Insert::new(&U, vec!["d".into()]),
                Insert::new(&U, vec!["d".into()]),
            ],
        )];
        assert!(!write_jobs(&db, &dup).await.unwrap());
        assert_eq!(scalar(&db, "SELECT SUM(passes) FROM gates").await, 0);
        let unguarded = [job(
            Vec::new(),
            vec![
                Insert::new(&T, vec!["d".into(), 1.into()]),
                Insert::new(&U, vec!["d".into()]),
                Insert::new(&U, vec!["d".into()]),
            ],
        )];
        assert!(write_jobs(&db, &unguarded).await.is_err());
        assert_eq!(scalar(&db, "SELECT COUNT(*) FROM t").await, 0);
        let next = [job(
            vec![gate("open", 0)],
            vec![Insert::new(&U, vec!["e".into()])],
        )];
        assert!(write_jobs(&db, &next).await.unwrap());
        assert_eq!(scalar(&db, "SELECT COUNT(*) FROM u").await, 1);
    }
}
