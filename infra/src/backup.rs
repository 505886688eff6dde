//! Online copies of an SQLite database: a snapshot taken while the servers keep serving,
//! checked, and copied back into place.
//!
//! - [`snapshot`] is `VACUUM INTO` on the writer connection: SQLite builds the copy inside one
//!   read transaction, so it is consistent (every committed write before it, none after),
//!   compact, and readers and the writer go on meanwhile.
//! - [`restore`] uses SQLite's backup API (rusqlite's binding of `sqlite3_backup_*`): the
//!   pages are written through the destination's own locks and journal, so a database in WAL
//!   mode is replaced whole, where copying a file beside its `-wal` would mix two states.
//!   sqlx has no binding of that API; rusqlite, the same SQLite library, is already here for
//!   the inline readers.
//! - [`inspect`] opens a copy read-only: SQLite's integrity check, the schema versions sqlx
//!   recorded, and the rows of the tables asked about.
//!
//! PostgreSQL is backed up with its own tools (`pg_dump`); these refuse it.

use super::Db;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};

/// Why a copy was not made, restored or read.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("the database is not SQLite: back PostgreSQL up with pg_dump")]
    NotSqlite,
    #[error("the database is not a file (in memory, or opened read-only)")]
    NotAFile,
    #[error("{0} exists already: choose a new file")]
    Exists(PathBuf),
    #[error("{0} is not there")]
    Missing(PathBuf),
    #[error("{0} is not a sound SQLite database: {1}")]
    Damaged(PathBuf, String),
    #[error("{0} has no schema history: it is not a Gatehouse database")]
    NotOurs(PathBuf),
    #[error("the database stayed busy: stop every instance that uses it, then try again")]
    Busy,
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A schema migration a database records (sqlx's `_sqlx_migrations`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub version: i64,
    /// SHA-384 of the migration's SQL as it was applied.
    pub checksum: Vec<u8>,
    /// False for one that failed half-way.
    pub success: bool,
}

/// What [`inspect`] found in a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The schema migrations recorded, oldest first.
    pub applied: Vec<Applied>,
    /// Rows of each table asked about that exists, in the order asked.
    pub rows: Vec<(String, i64)>,
}

impl Inspection {
    /// The rows of `table`, if it was counted.
    pub fn rows_of(&self, table: &str) -> Option<i64> {
        self.rows.iter().find(|(t, _)| t == table).map(|(_, n)| *n)
    }
}

impl Db {
    /// The file of this SQLite database (`None` for PostgreSQL, or SQLite in memory).
    pub async fn sqlite_file(&self) -> Result<Option<PathBuf>, sqlx::Error> {
        if !self.is_sqlite() {
            return Ok(None);
        }
        let (file,): (String,) =
            sqlx::query_as("SELECT file FROM pragma_database_list WHERE name = 'main'")
                .fetch_one(self.write())
                .await?;
        Ok((!file.is_empty()).then(|| PathBuf::from(file)))
    }
}

/// Writes a consistent copy of `db` (SQLite) to the new file `dest`, while it serves. The
/// file is created here, readable by its owner only (it holds the signing keys and every
/// hash), and never through a link that is already there.
pub async fn snapshot(db: &Db, dest: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::OpenOptionsExt;
    if !db.is_sqlite() {
        return Err(BackupError::NotSqlite);
    }
    let target = dest.to_str().ok_or(BackupError::NotAFile)?;
    // O_CREAT | O_EXCL: refused for anything there already, a dangling link included.
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest);
    match created {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(BackupError::Exists(dest.to_owned()));
        }
        Err(e) => return Err(e.into()),
    }
    // SQLite writes a copy into an empty file as into a new one.
    sqlx::query("VACUUM INTO $1")
        .bind(target)
        .execute(db.write())
        .await?;
    Ok(())
}

/// Checks the copy at `path` and counts the rows of `tables` (those it has).
pub fn inspect(path: &Path, tables: &[&str]) -> Result<Inspection, BackupError> {
    if !path.is_file() {
        return Err(BackupError::Missing(path.to_owned()));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let damaged = |e: rusqlite::Error| BackupError::Damaged(path.to_owned(), e.to_string());
    let conn = Connection::open_with_flags(path, flags).map_err(damaged)?;
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(damaged)?;
    if verdict != "ok" {
        return Err(BackupError::Damaged(path.to_owned(), verdict));
    }
    let present = |table: &str| -> Result<bool, rusqlite::Error> {
        conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
    };
    if !present("_sqlx_migrations")? {
        return Err(BackupError::NotOurs(path.to_owned()));
    }
    let mut applied = Vec::new();
    let mut stmt =
        conn.prepare("SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version")?;
    let rows = stmt.query_map([], |r| {
        Ok(Applied {
            version: r.get(0)?,
            checksum: r.get(1)?,
            success: r.get(2)?,
        })
    })?;
    for row in rows {
        applied.push(row?);
    }
    let mut rows = Vec::new();
    for table in tables {
        if present(table)? {
            // A table name from the caller's constants, never input; quoted all the same.
            let sql = format!("SELECT COUNT(*) FROM \"{}\"", table.replace('"', "\"\""));
            rows.push(((*table).to_owned(), conn.query_row(&sql, [], |r| r.get(0))?));
        }
    }
    Ok(Inspection { applied, rows })
}

/// Replaces the database in the file `dest` with the copy at `src` (which [`inspect`] should
/// have passed), page by page through `dest`'s own locks and journal: all of it, or (on an
/// error) nothing. A database that stays busy (another process writing) for five seconds is
/// left alone.
pub fn restore(src: &Path, dest: &Path) -> Result<(), BackupError> {
    use rusqlite::backup::StepResult;
    if !src.is_file() {
        return Err(BackupError::Missing(src.to_owned()));
    }
    let from = Connection::open_with_flags(src, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut to = Connection::open(dest)?;
    // SQLite's busy handler waits out another connection's write, for five seconds at most.
    to.busy_timeout(std::time::Duration::from_secs(5))?;
    let backup = rusqlite::backup::Backup::new(&from, &mut to)?;
    loop {
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            // Busy or locked past the wait: another connection is writing.
            _ => return Err(BackupError::Busy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn db_with_rows(dir: &Path) -> Db {
        let url = format!("sqlite://{}?mode=rwc", dir.join("live.db").display());
        let db = Db::connect(&url, 2).await.unwrap();
        for sql in [
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, checksum BLOB, \
             success BOOLEAN)",
            "INSERT INTO _sqlx_migrations VALUES (1, x'01', 1), (2, x'02', 1)",
            "CREATE TABLE users (id TEXT)",
            "INSERT INTO users VALUES ('alice'), ('bob')",
        ] {
            sqlx::query(sql).execute(db.write()).await.unwrap();
        }
        db
    }

    #[tokio::test]
    async fn a_snapshot_is_checked_and_restored_into_another_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with_rows(dir.path()).await;
        let copy = dir.path().join("copy.db");
        snapshot(&db, &copy).await.unwrap();
        assert!(matches!(
            snapshot(&db, &copy).await,
            Err(BackupError::Exists(_))
        ));
        // Written after the snapshot: not in it.
        sqlx::query("INSERT INTO users VALUES ('carol')")
            .execute(db.write())
            .await
            .unwrap();
        let seen = inspect(&copy, &["users", "nothing"]).unwrap();
        let versions: Vec<i64> = seen.applied.iter().map(|a| a.version).collect();
        assert_eq!(versions, [1, 2]);
        assert_eq!(seen.applied[1].checksum, [2]);
        // Readable by its owner only.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Never through a link already there, even one pointing nowhere.
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(dir.path().join("elsewhere.db"), &link).unwrap();
        assert!(matches!(
            snapshot(&db, &link).await,
            Err(BackupError::Exists(_))
        ));
        assert!(!dir.path().join("elsewhere.db").exists());
        assert_eq!(seen.rows, [("users".to_owned(), 2)]);
        let restored = dir.path().join("restored.db");
        restore(&copy, &restored).unwrap();
        assert_eq!(
            inspect(&restored, &["users"]).unwrap().rows_of("users"),
            Some(2)
        );
        // Over the live database, whose other connections see the copy's rows.
        let live = db.sqlite_file().await.unwrap().unwrap();
        restore(&copy, &live).unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
            .fetch_one(db.write())
            .await
            .unwrap();
        assert_eq!(n, 2);
    }

    #[tokio::test]
    async fn what_is_not_a_sound_copy_of_ours_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "not a database at all, but long enough to look at").unwrap();
        assert!(matches!(inspect(&text, &[]), Err(BackupError::Damaged(..))));
        let missing = dir.path().join("missing.db");
        assert!(matches!(
            inspect(&missing, &[]),
            Err(BackupError::Missing(_))
        ));
        assert!(matches!(
            restore(&missing, &dir.path().join("x.db")),
            Err(BackupError::Missing(_))
        ));
        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        assert!(matches!(inspect(&other, &[]), Err(BackupError::NotOurs(_))));
    }
}
