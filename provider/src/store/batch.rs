//! Group commit for the inserts of the hot paths: authorization codes and session membership
//! at the authorization endpoint; the access-token registry, refresh tokens and audit events
//! at the token endpoint; audit events everywhere.
//!
//! A caller hands over its rows and waits until they are committed, exactly as with a direct
//! `INSERT`: an answer never promises a row that is not stored. Meanwhile other requests'
//! rows queue up, and the next batch writes everything queued in one transaction, one
//! multi-row `INSERT` per table. Under load that turns a dozen statements and commits into a
//! few, which matters most on SQLite: one writer, and each statement a round trip to sqlx's
//! connection thread. A batch that fails (a constraint, say) is retried job by job, so one
//! bad row fails its own request only.
//!
//! A job may carry [`Guard`]s: conditional `UPDATE`s run in the batch's transaction before
//! any row is inserted, each of which must touch a row or the job's rows are left out (and its
//! caller told so). The update also locks the row it touches until the commit, so a revocation that
//! updates the same row first either waits for the job's rows or is seen by the guard; see
//! `store::grants`. Guards run in a fixed order (by rank, then key), so two batches and a
//! revocation take their locks in one order.
//!
//! Written here because sqlx has no batching of its own; the SQL stays portable (multi-row
//! `VALUES` works on SQLite and PostgreSQL alike). On SQLite the batch goes to the writer
//! connection's thread as one text (`store::script`); on PostgreSQL it is one statement of
//! data-modifying CTEs (`rows::combined`: guards first, in the same order, then the rows), and
//! only a batch in which a guard fails, a row clashes or two guards share a key goes through a
//! transaction statement by statement.

use super::rows::{COMMON_JOBS, Guard, Insert, chunks, combined, statement};
use super::script;
use infra::Db;
use tokio::sync::{mpsc, oneshot};

pub(super) struct Job {
    pub(super) guards: Vec<Guard>,
    pub(super) rows: Vec<Insert>,
    pub(super) done: oneshot::Sender<Result<bool, sqlx::Error>>,
}

/// At most this many requests' rows in one transaction.
const MAX_JOBS: usize = 64;

/// The handle requests use; the writing happens in a task of its own.
#[derive(Clone)]
pub(super) struct Batcher {
    jobs: mpsc::Sender<Job>,
}

impl Batcher {
    /// Starts the writing task on the current runtime; it ends when the last handle is gone.
    pub(super) fn spawn(db: Db) -> Self {
        let (jobs, queue) = mpsc::channel(1024);
        tokio::spawn(run(db, queue));
        Self { jobs }
    }

    /// Inserts `rows` (atomically) and returns once they are committed.
    pub(super) async fn insert(&self, rows: Vec<Insert>) -> Result<(), sqlx::Error> {
        if rows.is_empty() {
            return Ok(());
        }
        self.submit(Vec::new(), rows).await.map(drop)
    }

    /// Inserts `rows` if every one of `guards` updates a row, all in one transaction; false
    /// (and nothing written) if one did not.
    pub(super) async fn insert_guarded(
        &self,
        guards: Vec<Guard>,
        rows: Vec<Insert>,
    ) -> Result<bool, sqlx::Error> {
        self.submit(guards, rows).await
    }

    async fn submit(&self, guards: Vec<Guard>, rows: Vec<Insert>) -> Result<bool, sqlx::Error> {
        let (done, committed) = oneshot::channel();
        self.jobs
            .send(Job { guards, rows, done })
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        committed.await.map_err(|_| sqlx::Error::WorkerCrashed)?
    }
}

async fn run(db: Db, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_JOBS);
    while queue.recv_many(&mut batch, MAX_JOBS).await > 0 {
        match write(&db, &batch).await {
            Ok(passed) => {
                for (job, passed) in batch.drain(..).zip(passed) {
                    let _ = job.done.send(Ok(passed));
                }
            }
            Err(e) if batch.len() == 1 && !conflict(&e) => {
                if let Some(job) = batch.pop() {
                    let _ = job.done.send(Err(e));
                }
            }
            // The database is out of reach: every job fails at once the same way (each would
            // only wait out its own timeout), as a 503 to its caller.
            Err(e) if infra::sql_unavailable(&e) => {
                tracing::warn!(error = %e, jobs = batch.len(), "batched insert: database unavailable");
                for job in batch.drain(..) {
                    let _ = job.done.send(Err(sqlx::Error::PoolTimedOut));
                }
            }
            // Someone's row was refused, or the database broke a lock conflict: each job on its
            // own, so only a refused one fails.
            Err(_) => {
                for job in batch.drain(..) {
                    let result = write_alone(&db, &job).await;
                    let _ = job.done.send(result);
                }
            }
        }
    }
}

/// How often a job is written again when the database broke a lock conflict it was in.
const CONFLICT_ATTEMPTS: usize = 3;

/// A deadlock or serialisation failure the database broke by aborting this transaction
/// (PostgreSQL's 40P01 and 40001): the same write may well succeed when run again.
fn conflict(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("40P01" | "40001")))
}

/// Writes one job in a transaction of its own, again after a broken lock conflict.
async fn write_alone(db: &Db, job: &Job) -> Result<bool, sqlx::Error> {
    let mut attempt = 1;
    loop {
        match write(db, std::slice::from_ref(job)).await {
            Err(e) if conflict(&e) && attempt < CONFLICT_ATTEMPTS => attempt += 1,
            done => return done.map(|p| p.first().copied().unwrap_or(false)),
        }
    }
}

/// Writes `jobs`: in one statement where it can (PostgreSQL, `rows::combined`) or one trip
/// (SQLite, `store::script`), else in a transaction: their guards in order, a job's later
/// guards skipped once one fails, then one multi-row `INSERT` per table for the jobs whose
/// guards passed, tables in the order they first appear. Returns, per job, whether it was
/// written.
async fn write(db: &Db, jobs: &[Job]) -> Result<Vec<bool>, sqlx::Error> {
    let mut guarded: Vec<(usize, &Guard)> = jobs
        .iter()
        .enumerate()
        .flat_map(|(i, j)| j.guards.iter().map(move |g| (i, g)))
        .collect();
    guarded.sort_by(|a, b| a.1.key().cmp(&b.1.key()));
    let mut passed = vec![true; jobs.len()];
    let guards: Vec<&Guard> = guarded.iter().map(|(_, g)| *g).collect();
    let rows = jobs.iter().flat_map(|j| j.rows.iter());
    if db.is_sqlite() {
        if script::write(db, &guards, rows, jobs.len()).await? {
            return Ok(passed);
        }
    } else if apart(&guards) {
        let chunks = chunks(rows);
        if guards.is_empty() && chunks.is_empty() {
            return Ok(passed);
        }
        let common = jobs.len() <= COMMON_JOBS;
        match combined(&guards, &chunks, common).execute(db.write()).await {
            Ok(_) => return Ok(passed),
            Err(e) if guards.is_empty() || infra::sql_unavailable(&e) => return Err(e),
            // A guard did not pass, or a row clashed (perhaps one of a job whose guard did
            // not): nothing was written, and the transaction below decides job by job.
            Err(_) => {}
        }
    }
    let mut tx = db.write().begin().await?;
    for (i, guard) in guarded {
        if !passed[i] {
            continue;
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(guard.sql));
        for v in &guard.values {
            query = v.bind(query);
        }
        passed[i] = query.execute(&mut *tx).await?.rows_affected() > 0;
    }
    let rows = jobs
        .iter()
        .zip(&passed)
        .filter(|(_, p)| **p)
        .flat_map(|(j, _)| j.rows.iter());
    for (table, rows) in chunks(rows) {
        statement(table, &rows).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(passed)
}

/// No two of `guards` (sorted by key) aim at the same row, as far as their keys tell: the
/// condition for one statement on PostgreSQL (`rows::combined`). Guards of one rank update one
/// table, keyed by their first value; a key shared by different rows (one user's consents to
/// two apps) only means the transaction.
fn apart(guards: &[&Guard]) -> bool {
    guards.windows(2).all(|w| w[0].key() != w[1].key())
}

#[cfg(test)]
mod tests {
    use super::super::rows::fixtures::{T, U, count, db, gate, postgres_db, scalar};
    use super::*;

    fn t(a: &str, b: i64) -> Insert {
        Insert::new(&T, vec![a.into(), b.into()])
    }

    fn u(a: &str) -> Insert {
        Insert::new(&U, vec![a.into()])
    }

    /// Runs each scenario (an `async fn(&Db)`) on a fresh SQLite database and on PostgreSQL
    /// (where a batch is one statement until a guard fails: then nothing of that statement
    /// stays, and the transaction decides job by job): `scenario: sqlite_test, postgres_test;`.
    macro_rules! on_both_databases {
        ($($scenario:ident: $sqlite:ident, $postgres:ident;)*) => {$(
            #[tokio::test]
            async fn $sqlite() {
                let (_dir, db) = db().await;
                $scenario(&db).await;
            }

            #[tokio::test]
            async fn $postgres() {
                let Some((_pg, db)) = postgres_db(stringify!($postgres)).await else {
                    return;
                };
                $scenario(&db).await;
            }
        )*};
    }

    on_both_databases! {
        failed_guard_fails_its_own_job_only: a_failed_guard_fails_its_own_job_only, on_postgres_a_failed_guard_fails_its_own_job_only;
        clash_with_a_job_whose_guard_failed: a_clash_with_a_job_whose_guard_failed_is_not_an_error, on_postgres_a_clash_with_a_job_whose_guard_failed_is_not_an_error;
        guarded_jobs_at_once: concurrent_guarded_jobs_are_written_whole_or_not_at_all, on_postgres_concurrent_guarded_jobs_are_written_whole_or_not_at_all;
    }

    /// `n` concurrent jobs, each a row of `t` and a row of `u`; every one must succeed.
    async fn pairs_at_once(batcher: &Batcher, n: i64) {
        let mut tasks = Vec::new();
        for i in 0..n {
            let b = batcher.clone();
            tasks.push(tokio::spawn(async move {
                b.insert(vec![t(&format!("k{i}"), i), u(&format!("u{i}"))])
                    .await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
    }

    #[tokio::test]
    async fn concurrent_jobs_are_all_committed_before_their_callers_return() {
        let (_dir, db) = db().await;
        let batcher = Batcher::spawn(db.clone());
        pairs_at_once(&batcher, 200).await;
        assert_eq!(count(&db, "t").await, 200);
        assert_eq!(count(&db, "u").await, 200);
        let (b,): (i64,) = sqlx::query_as("SELECT b FROM t WHERE a = 'k7'")
            .fetch_one(db.read())
            .await
            .unwrap();
        assert_eq!(b, 7, "values land in their own row");
    }

    /// On PostgreSQL rows of several tables go as one statement (`rows::combined`): every
    /// job's rows land, and a refused row still fails its own job only, and all of it.
    #[tokio::test]
    async fn on_postgres_several_tables_are_one_statement_and_all_or_nothing() {
        let Some((_pg, db)) = postgres_db("batched inserts on PostgreSQL").await else {
            return;
        };
        let batcher = Batcher::spawn(db.clone());
        pairs_at_once(&batcher, 100).await;
        assert_eq!((count(&db, "t").await, count(&db, "u").await), (100, 100));
        batcher.insert(vec![u("taken")]).await.unwrap();
        let (bad, good) = tokio::join!(
            batcher.insert(vec![t("bad", 1), u("taken")]),
            batcher.insert(vec![t("good", 2), u("free")]),
        );
        assert!(bad.is_err(), "a unique violation is reported to its caller");
        good.unwrap();
        assert_eq!(
            scalar(&db, "SELECT COUNT(*) FROM t WHERE a = 'bad'").await,
            0,
            "the bad job's other row was not kept"
        );
        assert_eq!(count(&db, "u").await, 102);
        // A duplicate key in `t` is ignored (its tail applies inside the CTE too).
        batcher
            .insert(vec![t("good", 3), u("another")])
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_refused_row_fails_its_own_job_only_and_atomically() {
        let (_dir, db) = db().await;
        let batcher = Batcher::spawn(db.clone());
        batcher.insert(vec![u("taken")]).await.unwrap();
        let (bad, good) = tokio::join!(
            batcher.insert(vec![t("bad", 1), u("taken")]),
            batcher.insert(vec![t("good", 2), u("free")]),
        );
        assert!(bad.is_err(), "a unique violation is reported to its caller");
        good.unwrap();
        // The bad job's other row was not kept: a job is all or nothing.
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t WHERE a = 'bad'")
            .fetch_one(db.read())
            .await
            .unwrap();
        assert_eq!(n, 0);
        assert_eq!(count(&db, "u").await, 2);
        // The tail applies: a duplicate key in `t` is ignored, not an error.
        batcher.insert(vec![t("good", 3)]).await.unwrap();
        assert_eq!(count(&db, "t").await, 1);
    }

    #[tokio::test]
    async fn an_unreachable_database_fails_every_waiting_job_at_once() {
        let (_dir, db) = db().await;
        let batcher = Batcher::spawn(db.clone());
        // The one writer connection is taken: every batch waits out the pool's one-second
        // acquire timeout.
        let held = db.write().acquire().await.unwrap();
        let started = std::time::Instant::now();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let b = batcher.clone();
            tasks.push(tokio::spawn(async move {
                b.insert(vec![u(&format!("x{i}"))]).await
            }));
        }
        for task in tasks {
            let e = task.await.unwrap().unwrap_err();
            assert!(infra::sql_unavailable(&e), "{e}");
        }
        // One or two batches' timeouts, not one per job.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        drop(held);
        batcher.insert(vec![u("after")]).await.unwrap();
    }

    /// Through the batcher: of jobs sharing a batch, the one whose guard fails is left out,
    /// its later guards never run, and the others are written once.
    async fn failed_guard_fails_its_own_job_only(db: &Db) {
        let batcher = Batcher::spawn(db.clone());
        let (passes, fails) = tokio::join!(
            batcher.insert_guarded(vec![gate("open", 0)], vec![u("p")]),
            batcher.insert_guarded(vec![gate("shut", 0), gate("also-open", 1)], vec![u("f")],),
        );
        assert!(passes.unwrap());
        assert!(!fails.unwrap());
        assert_eq!(scalar(db, "SELECT COUNT(*) FROM u WHERE a = 'p'").await, 1);
        assert_eq!(scalar(db, "SELECT COUNT(*) FROM u WHERE a = 'f'").await, 0);
        assert_eq!(
            scalar(db, "SELECT passes FROM gates WHERE name = 'open'").await,
            1
        );
        assert_eq!(
            scalar(db, "SELECT passes FROM gates WHERE name = 'also-open'").await,
            0
        );
    }

    /// Two jobs whose rows clash, the second's guard failing (a code redeemed twice in one
    /// batch): the first is written, the second refused, and neither is an error.
    async fn clash_with_a_job_whose_guard_failed(db: &Db) {
        let batcher = Batcher::spawn(db.clone());
        let shared = Guard {
            rank: 0,
            sql: "UPDATE gates SET open = 0 WHERE name = $1 AND open = 1",
            values: vec!["open".into()],
        };
        let (a, b) = tokio::join!(
            batcher.insert_guarded(vec![shared.clone()], vec![u("same")]),
            batcher.insert_guarded(vec![shared.clone()], vec![u("same")]),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a != b, "exactly one passes: {a} {b}");
        assert_eq!(count(db, "u").await, 1);
    }

    /// 200 concurrent guarded jobs of two tables each, every other one's gate shut: each open
    /// one is written whole and passes its gate once, each shut one leaves nothing, whichever
    /// batches they shared.
    async fn guarded_jobs_at_once(db: &Db) {
        let n = 200;
        let gates: Vec<String> = (0..n)
            .map(|i| format!("('g{i}', {}, 0)", 1 - i % 2))
            .collect();
        let sql = format!("INSERT INTO gates VALUES {}", gates.join(", "));
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(db.write())
            .await
            .unwrap();
        let batcher = Batcher::spawn(db.clone());
        let mut tasks = Vec::new();
        for i in 0..n {
            let b = batcher.clone();
            tasks.push(tokio::spawn(async move {
                let rows = vec![t(&format!("k{i}"), i), u(&format!("u{i}"))];
                b.insert_guarded(vec![gate(&format!("g{i}"), 0)], rows)
                    .await
            }));
        }
        for (i, task) in tasks.into_iter().enumerate() {
            assert_eq!(task.await.unwrap().unwrap(), i % 2 == 0, "job {i}");
        }
        assert_eq!((count(db, "t").await, count(db, "u").await), (100, 100));
        let odd = "SELECT COUNT(*) FROM t WHERE b % 2 = 1";
        assert_eq!(scalar(db, odd).await, 0, "no row of a shut gate's job");
        let once = "SELECT COUNT(*) FROM gates WHERE name LIKE 'g%' AND passes = open";
        assert_eq!(
            scalar(db, once).await,
            200,
            "each open gate passed once, no shut one"
        );
    }
}
