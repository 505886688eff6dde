//! [`Inline`]: SQLite reads on the calling thread, with no hand-off to another thread.
//!
//! Why this is not sqlx: sqlx's SQLite driver gives every connection a thread of its own, and
//! each statement is a message to that thread and an answer back. Profiled under load (README,
//! "Performance"), those hand-offs (futex waits and wake-ups, two per statement) cost more CPU
//! than SQLite spends answering: about 30 µs per read against a few µs for the read itself. A
//! read in WAL mode never waits for the writer, touches pages the operating system already
//! caches, and takes microseconds, which is less than the hand-off it replaces, so it is cheaper
//! to run it where the request already is. rusqlite is the maintained binding to the same
//! SQLite library sqlx links (one `libsqlite3-sys`, so one copy of SQLite and of its locks in
//! the process); it is used for these reads only. Writes stay with sqlx's single writer.
//!
//! SQL is the same portable text the PostgreSQL path runs (`$1`, `$2`, …). SQLite reads `$N` as
//! a parameter *named* `$N` and numbers parameters in the order they first appear, so values
//! are bound by name, not by position, and a statement whose parameters are not exactly
//! `$1`…`$n` for the `n` values given is an error rather than a silently misbound query.

use rusqlite::{Connection, OpenFlags, Row, ToSql};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// How long a read waits on a lock (WAL readers meet one only while a connection recovers the
/// write-ahead log after a crash): short, because the thread waiting is a request worker.
const BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// Connections kept open between reads, at least. Reads never await, so at most one per
/// thread runs at a time: [`Inline::open`] keeps two per CPU (tokio's workers, and blocking
/// threads now and then); more are opened when needed and closed after.
const KEEP_AT_LEAST: usize = 8;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;

/// A value bound to a `$N` parameter.
#[derive(Clone, Copy, Debug)]
pub enum Param<'a> {
    Text(&'a str),
    Int(i64),
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(s: &'a str) -> Self {
        Self::Text(s)
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(s: &'a String) -> Self {
        Self::Text(s)
    }
}

impl From<i64> for Param<'_> {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Self::Text(s) => s.to_sql(),
            Self::Int(i) => i.to_sql(),
        }
    }
}

/// A row type read by column name from a rusqlite row, as `sqlx::FromRow` reads it from an
/// sqlx row ([`lite_row!`](crate::lite_row) writes the impl for a plain struct).
pub trait FromLite: Sized {
    fn from_lite(row: &Row<'_>) -> rusqlite::Result<Self>;
}

/// A one-column row, by position (as sqlx reads a tuple).
impl<A: rusqlite::types::FromSql> FromLite for (A,) {
    fn from_lite(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok((row.get(0)?,))
    }
}

/// A two-column row, by position.
impl<A: rusqlite::types::FromSql, B: rusqlite::types::FromSql> FromLite for (A, B) {
    fn from_lite(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok((row.get(0)?, row.get(1)?))
    }
}

/// Implements [`FromLite`] for a struct whose fields are columns of the same names:
/// `lite_row!(SessionRow { id_hash, handle, … })`; `scope as String` reads the column as a
/// `String` and converts it with `TryFrom` (as `#[sqlx(try_from = "String")]` does). Every
/// field must be listed (the struct literal it expands to does not compile otherwise).
#[macro_export]
macro_rules! lite_row {
    ($ty:ident { $($field:ident $(as $via:ty)?),* $(,)? }) => {
        impl $crate::FromLite for $ty {
            fn from_lite(row: &$crate::LiteRow<'_>) -> $crate::LiteResult<Self> {
                Ok($ty { $($field: $crate::lite_row!(@get row, $field $(, $via)?)),* })
            }
        }
    };
    (@get $row:ident, $field:ident) => {
        $row.get(stringify!($field))?
    };
    (@get $row:ident, $field:ident, $via:ty) => {
        $crate::lite_converted::<$via, _>($row, stringify!($field))?
    };
}

/// Column `name` read as `V` and converted to `T` (see [`lite_row!`](crate::lite_row)); a value
/// that does not convert is a decode error naming the column.
pub fn converted<V, T>(row: &Row<'_>, name: &str) -> rusqlite::Result<T>
where
    V: rusqlite::types::FromSql,
    T: TryFrom<V>,
    T::Error: std::error::Error + Send + Sync + 'static,
{
    let index = row.as_ref().column_index(name)?;
    T::try_from(row.get::<_, V>(index)?).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Reader connections to one SQLite file, used on the calling thread.
#[derive(Debug)]
pub(crate) struct Inline {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    keep: usize,
    closed: AtomicBool,
}

impl Inline {
    /// Readers for the database file at `path`, which must exist (the writer creates it and
    /// switches it to WAL first). One connection is opened now, so a bad path fails here.
    pub(crate) fn open(path: &Path) -> Result<Self, sqlx::Error> {
        let first = connect(path).map_err(into_sqlx)?;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Self {
            path: path.to_owned(),
            idle: Mutex::new(vec![first]),
            keep: KEEP_AT_LEAST.max(cpus * 2),
            closed: AtomicBool::new(false),
        })
    }

    /// Closes the idle connections; every later read fails as [`sqlx::Error::PoolClosed`].
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// The row `sql` selects with `params`, if any (the first, if several).
    pub(crate) fn optional<T: FromLite>(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Option<T>, sqlx::Error> {
        self.with(|conn| {
            let mut statement = prepare(conn, sql, params)?;
            let mut rows = statement.raw_query();
            rows.next()?.map(T::from_lite).transpose()
        })
    }

    /// Every row `sql` selects with `params`.
    pub(crate) fn all<T: FromLite>(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<T>, sqlx::Error> {
        self.with(|conn| {
            let mut statement = prepare(conn, sql, params)?;
            let mut rows = statement.raw_query();
            let mut all = Vec::new();
            while let Some(row) = rows.next()? {
                all.push(T::from_lite(row)?);
            }
            Ok(all)
        })
    }

    fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, sqlx::Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(sqlx::Error::PoolClosed);
        }
        let conn = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match conn {
            Some(conn) => conn,
            None => connect(&self.path).map_err(into_sqlx)?,
        };
        let result = read(&conn);
        // A connection whose read failed is dropped: whatever state it was left in goes with it.
        if result.is_ok() && !self.closed.load(Ordering::Acquire) {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < self.keep {
                idle.push(conn);
            }
        }
        result.map_err(into_sqlx)
    }
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    // Read-write (not read-only) so that the connection may create the WAL index it shares
    // with the writer, then `query_only`: a write through it fails loudly.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch("PRAGMA query_only = ON;")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

const NAMES: [&str; 16] = [
    "$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12", "$13", "$14", "$15",
    "$16",
];

/// Prepares (or takes from the cache) `sql` and binds `params[i]` to the parameter named
/// `$i+1`; every parameter of the statement must be one of those (see the module doc).
fn prepare<'c>(
    conn: &'c Connection,
    sql: &str,
    params: &[Param<'_>],
) -> rusqlite::Result<rusqlite::CachedStatement<'c>> {
    let mut statement = conn.prepare_cached(sql)?;
    if statement.parameter_count() != params.len() {
        return Err(rusqlite::Error::InvalidParameterCount(
            params.len(),
            statement.parameter_count(),
        ));
    }
    for (i, value) in params.iter().enumerate() {
        let name: std::borrow::Cow<'_, str> = NAMES
            .get(i)
            .map_or_else(|| format!("${}", i + 1).into(), |&n| n.into());
        let index = statement
            .parameter_index(&name)?
            .ok_or_else(|| rusqlite::Error::InvalidParameterName(name.into_owned()))?;
        statement.raw_bind_parameter(index, value)?;
    }
    Ok(statement)
}

/// The error as sqlx would have reported it: a lock or an I/O failure is "unavailable" (the
/// caller answers 503, see [`crate::sql_unavailable`]); anything else is a fault.
fn into_sqlx(e: rusqlite::Error) -> sqlx::Error {
    use rusqlite::ErrorCode::{
        CannotOpen, DatabaseBusy, DatabaseLocked, DiskFull, OutOfMemory, SystemIoFailure,
    };
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                DatabaseBusy
                    | DatabaseLocked
                    | CannotOpen
                    | SystemIoFailure
                    | DiskFull
                    | OutOfMemory
            ) =>
        {
            sqlx::Error::Io(std::io::Error::other(e))
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => sqlx::Error::Decode(Box::new(e)),
        e => sqlx::Error::Protocol(format!("sqlite read: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Pair {
        k: String,
        v: Option<i64>,
    }
    crate::lite_row!(Pair { k, v });

    fn db() -> (tempfile::TempDir, Inline) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (k TEXT, v BIGINT);
                 INSERT INTO t VALUES ('a', 1), ('b', NULL), ('c', 3);",
            )
            .unwrap();
        let inline = Inline::open(&path).unwrap();
        (dir, inline)
    }

    #[test]
    fn reads_rows_by_column_name_with_numbered_parameters() {
        let (_dir, db) = db();
        let one: Option<Pair> = db
            .optional(
                "SELECT v, k FROM t WHERE k = $1 AND $2 > 0",
                &["a".into(), 5.into()],
            )
            .unwrap();
        let one = one.unwrap();
        assert_eq!((one.k.as_str(), one.v), ("a", Some(1)));
        let none: Option<Pair> = db
            .optional("SELECT k, v FROM t WHERE k = $1", &["zz".into()])
            .unwrap();
        assert!(none.is_none());
        let all: Vec<Pair> = db
            .all(
                "SELECT k, v FROM t WHERE v IS NULL OR v > $1 ORDER BY k",
                &[2.into()],
            )
            .unwrap();
        let keys: Vec<_> = all.iter().map(|p| (p.k.as_str(), p.v)).collect();
        assert_eq!(keys, [("b", None), ("c", Some(3))]);
        // A parameter used twice is bound once.
        let twice: Vec<Pair> = db
            .all("SELECT k, v FROM t WHERE v = $1 OR v = $1 + 2", &[1.into()])
            .unwrap();
        assert_eq!(twice.len(), 2);
    }

    #[test]
    fn parameters_bind_by_name_and_must_be_exactly_those_given() {
        let (_dir, db) = db();
        // `$2` appears first: SQLite numbers it 1, the value is still bound to `$2`.
        let swapped: Option<Pair> = db
            .optional(
                "SELECT k, v FROM t WHERE v > $2 AND k = $1",
                &["c".into(), 0.into()],
            )
            .unwrap();
        assert_eq!(swapped.unwrap().v, Some(3));
        let short = db.optional::<Pair>("SELECT k, v FROM t WHERE k = $1", &[]);
        assert!(short.is_err());
        let extra = db.optional::<Pair>("SELECT k, v FROM t WHERE k = $1", &["a".into(), 1.into()]);
        assert!(extra.is_err());
        let skipped = db.optional::<Pair>(
            "SELECT k, v FROM t WHERE k = $1 AND v = $3",
            &["a".into(), 1.into()],
        );
        assert!(skipped.is_err(), "$3 is not among the two values given");
        let unnumbered = db.optional::<Pair>("SELECT k, v FROM t WHERE k = ?", &["a".into()]);
        assert!(unnumbered.is_err());
        // The connection that failed was dropped, and the next read opens another.
        assert!(
            db.optional::<Pair>("SELECT k, v FROM t", &[])
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn a_closed_reader_refuses_every_read() {
        let (_dir, db) = db();
        assert!(
            db.optional::<Pair>("SELECT k, v FROM t", &[])
                .unwrap()
                .is_some()
        );
        db.close();
        let refused = db.optional::<Pair>("SELECT k, v FROM t", &[]);
        assert!(matches!(refused, Err(sqlx::Error::PoolClosed)));
        assert!(crate::sql_unavailable(&refused.err().unwrap()));
    }

    #[test]
    fn readers_see_commits_and_cannot_write() {
        let (dir, db) = db();
        let writer = Connection::open(dir.path().join("t.db")).unwrap();
        writer.execute("INSERT INTO t VALUES ('d', 4)", []).unwrap();
        let d: Option<Pair> = db
            .optional("SELECT k, v FROM t WHERE k = $1", &["d".into()])
            .unwrap();
        assert_eq!(d.unwrap().v, Some(4));
        let refused = db.with(|c| c.execute("DELETE FROM t", []));
        assert!(refused.is_err(), "a reader must not write");
        let wrong_type = db.optional::<Pair>("SELECT v AS k, v FROM t WHERE k = $1", &["a".into()]);
        assert!(matches!(wrong_type, Err(sqlx::Error::Decode(_))));
    }
}
