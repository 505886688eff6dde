//! [`Db`]: one program's database over the sqlx `Any` driver, SQLite (the embedded default) or
//! PostgreSQL by URL, as a pool for writes and a pool for reads.
//!
//! On PostgreSQL both are the same pool: the server runs writers concurrently. SQLite admits
//! one writer at a time, so several pooled writers only take turns through its busy handler,
//! which sleeps (1 ms, 2 ms, 5 ms, …) and retries: latency and wasted work. Here SQLite gets
//! one writer connection (writes queue for it in the pool, in order, without sleeping) and a
//! few reader connections that WAL lets read beside it. Reader connections are
//! `query_only`, so a write sent to the wrong pool fails loudly instead of contending.
//!
//! The reads of the hot paths ([`Db::read_optional`], [`Db::read_all`]) run on SQLite through
//! [`Inline`] readers on the calling thread instead (see that module for why), and through the
//! read pool on PostgreSQL: one SQL text for both.

use crate::inline::{FromLite, Inline, Param};
use sqlx::any::{AnyPoolOptions, AnyRow, install_default_drivers};
use sqlx::{AnyPool, AssertSqlSafe, Executor, FromRow};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long [`Db::connect`] waits for the database at startup.
const STARTUP_WAIT: Duration = Duration::from_secs(15);

/// Write and read pools over one database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    write: AnyPool,
    read: AnyPool,
    sqlite: bool,
    /// SQLite on a file: readers on the calling thread (none for an in-memory database).
    inline: Option<Arc<Inline>>,
}

impl Db {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) with up to `max_connections`: on
    /// PostgreSQL one pool of that size; on SQLite one writer and `max_connections` readers.
    /// SQLite connections get WAL journaling, `synchronous=FULL` (every commit is on disk
    /// before it is acknowledged: a used code, a revocation or a session end survives a power
    /// loss, which `NORMAL` does not promise in WAL mode) and a busy timeout.
    ///
    /// Requests fail fast (a connection is waited for at most a second), but startup waits up
    /// to [`STARTUP_WAIT`] for the first connection: a database that is busy or still starting
    /// (CI starts it just before the suites, a container may start beside it) is not an error
    /// yet. Errors that waiting cannot cure (a bad URL, a refused login) are returned at once.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, sqlx::Error> {
        Self::connect_waiting(url, max_connections, Duration::from_secs(1)).await
    }

    /// [`Db::connect`] for a process where waiting beats failing (a command-line tool): a
    /// connection is waited for up to `acquire` instead of a second.
    pub async fn connect_waiting(
        url: &str,
        max_connections: u32,
        acquire: Duration,
    ) -> Result<Self, sqlx::Error> {
        install_default_drivers();
        let max = max_connections.max(1);
        let options = |max, role| options(max, role, acquire);
        if !is_sqlite(url) {
            let pool = open(options(max, Role::Shared).connect_lazy(url)?).await?;
            return Ok(Self {
                write: pool.clone(),
                read: pool,
                sqlite: false,
                inline: None,
            });
        }
        // The writer first: it creates the file (`mode=rwc`) and switches it to WAL.
        let write = open(options(1, Role::Writer).connect_lazy(url)?).await?;
        let read = match open(options(max, Role::Reader).connect_lazy(url)?).await {
            Ok(read) => read,
            Err(e) => {
                write.close().await;
                return Err(e);
            }
        };
        let inline = match inline_readers(url, &write).await {
            Ok(inline) => inline.map(Arc::new),
            Err(e) => {
                read.close().await;
                write.close().await;
                return Err(e);
            }
        };
        Ok(Self {
            write,
            read,
            sqlite: true,
            inline,
        })
    }

    /// For statements that change something, and for reads that must see the latest write
    /// of a transaction in progress.
    pub fn write(&self) -> &AnyPool {
        &self.write
    }

    /// For reads (autocommit `SELECT`s see every committed write).
    pub fn read(&self) -> &AnyPool {
        &self.read
    }

    /// Whether this is SQLite (one writer connection, each statement a trip to its thread).
    pub fn is_sqlite(&self) -> bool {
        self.sqlite
    }

    /// The row `sql` selects (the first, if several), read as [`Db::read`] reads: on a SQLite
    /// file on this thread ([`Inline`]), otherwise through the read pool. `params[i]` is bound
    /// to `$i+1`, wherever in `sql` it appears; `sql` names exactly `$1`…`$n`.
    pub async fn read_optional<T>(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Option<T>, sqlx::Error>
    where
        T: FromLite + for<'r> FromRow<'r, AnyRow> + Send + Unpin,
    {
        match &self.inline {
            Some(inline) => inline.optional(sql, params),
            None => {
                bind(sqlx::query_as(AssertSqlSafe(sql)), params)
                    .fetch_optional(&self.read)
                    .await
            }
        }
    }

    /// Every row `sql` selects, read as [`Db::read_optional`] reads.
    pub async fn read_all<T>(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<T>, sqlx::Error>
    where
        T: FromLite + for<'r> FromRow<'r, AnyRow> + Send + Unpin,
    {
        match &self.inline {
            Some(inline) => inline.all(sql, params),
            None => {
                bind(sqlx::query_as(AssertSqlSafe(sql)), params)
                    .fetch_all(&self.read)
                    .await
            }
        }
    }

    /// Whether the database answers, on both pools and the inline readers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.write).await?;
        sqlx::query("SELECT 1").execute(&self.read).await?;
        self.read_optional::<(i64,)>("SELECT 1", &[]).await?;
        Ok(())
    }

    /// Closes both pools and the inline readers: every later statement fails as
    /// [`sqlx::Error::PoolClosed`] (also how a test makes the database unreachable).
    pub async fn close(&self) {
        if let Some(inline) = &self.inline {
            inline.close();
        }
        self.write.close().await;
        self.read.close().await;
    }
}

/// Whether a database error means "unreachable": no connection in time, or the connection
/// broke (as opposed to a bug or bad data). Callers answer 503 and the request can be retried.
pub fn sql_unavailable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::WorkerCrashed
    )
}

type QueryAs<'q, T> = sqlx::query::QueryAs<'q, sqlx::Any, T, sqlx::any::AnyArguments>;

fn bind<'q, T>(mut query: QueryAs<'q, T>, params: &[Param<'_>]) -> QueryAs<'q, T> {
    for p in params {
        query = match *p {
            Param::Text(s) => query.bind(s.to_owned()),
            Param::Int(i) => query.bind(i),
        };
    }
    query
}

/// Inline readers for the file the writer has open, as SQLite itself names it (so whatever
/// sqlx made of the URL, the readers open the same file); none for an in-memory or temporary
/// database, or when the URL asks for what plain readers would not honour (another VFS, an
/// immutable or read-only file).
async fn inline_readers(url: &str, write: &AnyPool) -> Result<Option<Inline>, sqlx::Error> {
    let options = url.split_once('?').map_or("", |(_, query)| query);
    let special = options
        .split('&')
        .any(|o| o.starts_with("vfs=") || o.starts_with("immutable=") || o == "mode=ro");
    if special {
        return Ok(None);
    }
    let (file,): (String,) =
        sqlx::query_as("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_one(write)
            .await?;
    if file.is_empty() {
        return Ok(None);
    }
    Inline::open(std::path::Path::new(&file)).map(Some)
}

fn is_sqlite(url: &str) -> bool {
    url.get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("sqlite:"))
}

/// Waits for the pool's first connection (see [`Db::connect`]).
async fn open(pool: AnyPool) -> Result<AnyPool, sqlx::Error> {
    let started = Instant::now();
    loop {
        match pool.acquire().await {
            Ok(_) => return Ok(pool),
            Err(sqlx::Error::PoolTimedOut) if started.elapsed() < STARTUP_WAIT => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                pool.close().await;
                return Err(e);
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A PostgreSQL pool, for reads and writes alike.
    Shared,
    Writer,
    Reader,
}

fn options(max_connections: u32, role: Role, acquire: Duration) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max_connections)
        // Fail fast: an unreachable database answers within a second (`acquire`), never hangs
        // a request.
        .acquire_timeout(acquire)
        // A PostgreSQL connection may have died while idle (a server restart, a proxy), so it
        // is checked before use; a SQLite connection is a file handle in this process, and
        // the check would cost a round trip to its worker thread on every query.
        .test_before_acquire(role == Role::Shared)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if conn.backend_name().eq_ignore_ascii_case("sqlite") {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
                    )
                    .await?;
                    if role == Role::Reader {
                        conn.execute("PRAGMA query_only = ON;").await?;
                    }
                }
                Ok(())
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Table `t` with one row, 7, written through the writer.
    async fn table_holding_seven(db: &Db) {
        for sql in ["CREATE TABLE t (v BIGINT)", "INSERT INTO t (v) VALUES (7)"] {
            sqlx::query(sql).execute(db.write()).await.unwrap();
        }
    }

    #[tokio::test]
    async fn sqlite_reads_see_writes_and_readers_refuse_to_write() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = Db::connect(&url, 2).await.unwrap();
        table_holding_seven(&db).await;
        let (v,): (i64,) = sqlx::query_as("SELECT v FROM t")
            .fetch_one(db.read())
            .await
            .unwrap();
        assert_eq!(v, 7);
        let refused = sqlx::query("INSERT INTO t (v) VALUES (8)")
            .execute(db.read())
            .await;
        assert!(refused.is_err(), "a reader connection must not write");
        db.ping().await.unwrap();
    }

    /// The inline readers open the file the writer has open, however the URL spells it, and
    /// stop with the pools.
    #[tokio::test]
    async fn inline_reads_follow_the_writers_file_and_close_with_the_pools() {
        let dir = tempfile::tempdir().unwrap();
        // sqlx parses the URL, which drops `sub/..` as text; the file system would follow
        // the link `sub` into `other/inner` and `..` to `other`, where a decoy stands.
        std::fs::create_dir_all(dir.path().join("other/inner")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("other/inner"), dir.path().join("sub")).unwrap();
        rusqlite::Connection::open(dir.path().join("other/t.db"))
            .unwrap()
            .execute_batch("CREATE TABLE t (v BIGINT); INSERT INTO t VALUES (99);")
            .unwrap();
        let url = format!("sqlite://{}/sub/../t.db?mode=rwc", dir.path().display());
        let db = Db::connect(&url, 2).await.unwrap();
        assert!(db.inline.is_some(), "a SQLite file gets inline readers");
        table_holding_seven(&db).await;
        let row: Option<(i64,)> = db
            .read_optional("SELECT v FROM t WHERE v = $1", &[7.into()])
            .await
            .unwrap();
        assert_eq!(row, Some((7,)));
        let decoy: Option<(i64,)> = db
            .read_optional("SELECT v FROM t WHERE v = $1", &[99.into()])
            .await
            .unwrap();
        assert_eq!(
            decoy, None,
            "the readers opened the writer's file, not the decoy"
        );
        db.ping().await.unwrap();
        db.close().await;
        let closed = db.read_optional::<(i64,)>("SELECT 1", &[]).await;
        assert!(closed.as_ref().is_err_and(sql_unavailable), "{closed:?}");
        assert!(db.ping().await.is_err());
    }

    #[tokio::test]
    async fn an_in_memory_database_reads_through_its_pool() {
        let db = Db::connect("sqlite::memory:", 1).await.unwrap();
        assert!(db.inline.is_none());
        let row: Option<(i64,)> = db.read_optional("SELECT $1", &[5.into()]).await.unwrap();
        assert_eq!(row, Some((5,)));
    }

    #[test]
    fn sqlite_urls_are_recognised_in_any_case() {
        assert!(is_sqlite("sqlite://x.db?mode=rwc"));
        assert!(is_sqlite("SQLite:x.db"));
        assert!(!is_sqlite("postgres://h/db"));
        assert!(!is_sqlite("sql"));
    }
}
