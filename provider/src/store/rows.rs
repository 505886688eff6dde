//! What the store writes in batches (`store::batch`): rows for tables that take multi-row
//! `INSERT`s, the guards a job's rows are written under, and the SQL for both.

use std::fmt::Write as _;

/// At most this many rows in one statement (far under either database's parameter limit).
const MAX_ROWS: usize = 64;

/// A table that takes batched inserts: `head` is `INSERT INTO t (a, b, …) VALUES`, `tail`
/// what follows the rows (an `ON CONFLICT` clause, or nothing).
pub(super) struct Table {
    pub head: &'static str,
    pub columns: usize,
    pub tail: &'static str,
}

/// One column's value.
#[derive(Clone)]
pub(super) enum Val {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Self::Text(Some(v.to_owned()))
    }
}

impl From<String> for Val {
    fn from(v: String) -> Self {
        Self::Text(Some(v))
    }
}

impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        Self::Text(v)
    }
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Self::Int(Some(v))
    }
}

/// One row for one table, built by the constructors beside each table's queries.
#[derive(Clone)]
pub struct Insert {
    pub(super) table: &'static Table,
    pub(super) values: Vec<Val>,
}

impl Insert {
    pub(super) fn new(table: &'static Table, values: Vec<Val>) -> Self {
        debug_assert_eq!(values.len(), table.columns, "{}", table.head);
        Self { table, values }
    }
}

/// A condition a job's rows are written under: `sql` must update at least one row. `rank`
/// orders guards of one batch (lower first), then `key`.
#[derive(Clone)]
pub struct Guard {
    pub(super) rank: u8,
    /// One statement with `$1`… for `values`, and no `RETURNING` clause of its own.
    pub(super) sql: &'static str,
    pub(super) values: Vec<Val>,
}

impl Guard {
    pub(super) fn key(&self) -> (u8, Option<&str>) {
        let first = match self.values.first() {
            Some(Val::Text(t)) => t.as_deref(),
            _ => None,
        };
        (self.rank, first)
    }

    /// Appends the guard's statement to `out`, its parameters numbered after `$after`,
    /// answering `k` for each row it touched (`RETURNING k`).
    pub(super) fn push_sql(&self, out: &mut String, after: usize, k: usize) {
        // `renumber` knows no quoting, and `RETURNING` is appended to the text.
        debug_assert!(
            !self.sql.contains(['\'', ';', '?']) && !self.sql.contains("--"),
            "a guard is one statement with $n parameters and no literals: {}",
            self.sql
        );
        renumber(out, self.sql, after);
        let _ = write!(out, " RETURNING {k}");
    }
}

/// Appends `sql` with every parameter `$n` renumbered `$(n + after)`.
fn renumber(out: &mut String, sql: &str, after: usize) {
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => {
                let _ = write!(out, "{}", n + after);
            }
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
}

/// The rows grouped by table (in the order tables first appear), at most [`MAX_ROWS`] each.
pub(super) fn chunks<'a>(
    rows: impl Iterator<Item = &'a Insert>,
) -> Vec<(&'static Table, Vec<&'a Insert>)> {
    let mut groups: Vec<(&'static Table, Vec<&'a Insert>)> = Vec::new();
    for row in rows {
        match groups.iter_mut().find(|(t, _)| std::ptr::eq(*t, row.table)) {
            Some((_, rows)) => rows.push(row),
            None => groups.push((row.table, vec![row])),
        }
    }
    groups
        .into_iter()
        .flat_map(|(t, rows)| {
            rows.chunks(MAX_ROWS)
                .map(|c| (t, c.to_vec()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `INSERT … VALUES ($1, $2), ($3, $4) …` for `rows` rows of `table`, its parameters
/// numbered from `$1`.
fn sql(table: &Table, rows: usize) -> String {
    let mut out = String::new();
    push_sql(&mut out, table, rows, 0);
    out
}

/// Appends [`sql`]'s statement to `sql`, its parameters numbered after `$after`.
pub(super) fn push_sql(sql: &mut String, table: &Table, rows: usize, after: usize) {
    sql.reserve(table.head.len() + rows * table.columns * 5 + 40);
    sql.push_str(table.head);
    let mut n = after;
    for i in 0..rows {
        sql.push_str(if i == 0 { " (" } else { ", (" });
        for c in 0..table.columns {
            n += 1;
            let _ = write!(sql, "{}${n}", if c == 0 { "" } else { ", " });
        }
        sql.push(')');
    }
    sql.push_str(table.tail);
}

pub(super) fn statement<'q>(table: &Table, rows: &[&Insert]) -> AnyQuery<'q> {
    let sql = sql(table, rows.len());
    // A single row is the common statement and stays prepared; a multi-row one is prepared
    // for its batch only (its shape varies with the batch).
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(rows.len() == 1);
    for row in rows {
        for v in &row.values {
            query = v.bind(query);
        }
    }
    query
}

/// Batches of up to this many requests' rows are kept prepared: their shapes recur (a code,
/// a redemption, a refresh, a few of them together); larger ones are rarer and more varied.
pub(super) const COMMON_JOBS: usize = 4;

/// PostgreSQL: a batch as one statement, one round trip and one implicit transaction instead
/// of `BEGIN`, each guard, an `INSERT` per chunk and `COMMIT`.
///
/// Unguarded, every chunk but the last is a data-modifying CTE of the last (`WITH w0 AS
/// (INSERT …), w1 AS (…) INSERT …`). Each CTE runs once and to completion whether or not the
/// main statement reads it, and foreign keys are checked at the end of the statement
/// (PostgreSQL manual, "Data-Modifying Statements in WITH"); one that fails fails the
/// statement, so it is all rows or none.
///
/// Guarded, the guards come first (`g0 AS (UPDATE … RETURNING 0)`, …), every chunk is a CTE,
/// and the main statement is `SELECT 1 / LEAST((SELECT COUNT(*) FROM g0), …)`: a guard that
/// touched no row makes it divide by zero, which aborts the statement and with it every guard's
/// write and every row. The caller then goes job by job in a transaction (`store::batch`), as
/// SQLite's script does (`store::script`); guards fail only in races and replays. The divisor
/// is a subquery, never a constant the planner could fold. The sub-statements share one
/// snapshot and cannot see each other's writes, so the caller uses this form only when no two
/// guards aim at the same row (a second update of a row in one statement would silently touch
/// nothing, which here only means the slower path).
pub(super) fn combined<'q>(
    guards: &[&Guard],
    chunks: &[(&'static Table, Vec<&Insert>)],
    common: bool,
) -> AnyQuery<'q> {
    let mut sql = String::new();
    let mut values: Vec<&Val> = Vec::new();
    let mut ctes = 0;
    let mut cte = |sql: &mut String, name: &str| {
        let _ = write!(sql, "{}{name} AS (", if ctes == 0 { "WITH " } else { ", " });
        ctes += 1;
    };
    for (k, guard) in guards.iter().enumerate() {
        cte(&mut sql, &format!("g{k}"));
        guard.push_sql(&mut sql, values.len(), k);
        sql.push(')');
        values.extend(&guard.values);
    }
    // Unguarded, the last chunk is the main statement.
    let ctes_of_chunks = if guards.is_empty() {
        chunks.len().saturating_sub(1)
    } else {
        chunks.len()
    };
    for (i, (table, rows)) in chunks.iter().enumerate() {
        if i < ctes_of_chunks {
            cte(&mut sql, &format!("w{i}"));
        } else if !sql.is_empty() {
            sql.push(' ');
        }
        push_sql(&mut sql, table, rows.len(), values.len());
        if i < ctes_of_chunks {
            sql.push(')');
        }
        values.extend(rows.iter().flat_map(|r| &r.values));
    }
    if !guards.is_empty() {
        sql.push_str(" SELECT 1 / LEAST(");
        for k in 0..guards.len() {
            let _ = write!(
                sql,
                "{}(SELECT COUNT(*) FROM g{k})",
                if k == 0 { "" } else { ", " }
            );
        }
        sql.push(')');
    }
    let query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(common);
    values.iter().fold(query, |q, v| v.bind(q))
}

pub(super) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

impl Val {
    pub(super) fn bind<'q>(&self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        match self {
            Val::Text(t) => query.bind(t.clone()),
            Val::Int(i) => query.bind(*i),
        }
    }
}

/// What the store's batching tests share: two tables that take batched rows, a table of gates
/// for guards, and reads of what was written.
#[cfg(test)]
pub(super) mod fixtures {
    use super::{Guard, Table};
    use infra::Db;

    /// `t (a PRIMARY KEY, b)`, duplicate keys ignored.
    pub(in crate::store) static T: Table = Table {
        head: "INSERT INTO t (a, b) VALUES",
        columns: 2,
        tail: " ON CONFLICT (a) DO NOTHING",
    };
    /// `u (a UNIQUE)`: a duplicate is an error.
    pub(in crate::store) static U: Table = Table {
        head: "INSERT INTO u (a) VALUES",
        columns: 1,
        tail: "",
    };

    const SCHEMA: [&str; 4] = [
        "CREATE TABLE t (a TEXT PRIMARY KEY, b BIGINT)",
        "CREATE TABLE u (a TEXT NOT NULL UNIQUE)",
        "CREATE TABLE gates (name TEXT PRIMARY KEY, open BIGINT, passes BIGINT)",
        "INSERT INTO gates VALUES ('open', 1, 0), ('also-open', 1, 0), ('shut', 0, 0)",
    ];

    /// A fresh SQLite database with `t`, `u` and the gates `open`, `also-open` and `shut`.
    pub(in crate::store) async fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("b.db").display());
        let db = Db::connect(&url, 2).await.unwrap();
        for ddl in SCHEMA {
            sqlx::query(ddl).execute(db.write()).await.unwrap();
        }
        (dir, db)
    }

    /// [`db`]'s tables on a fresh PostgreSQL database (`None`, reported as skipped, without one).
    pub(in crate::store) async fn postgres_db(
        what: &str,
    ) -> Option<(infra::testing::TestPostgres, Db)> {
        let pg = infra::testing::TestPostgres::create(what).await?;
        let db = Db::connect(&pg.url, 2).await.unwrap();
        for ddl in SCHEMA {
            sqlx::query(ddl).execute(db.write()).await.unwrap();
        }
        Some((pg, db))
    }

    /// A guard that passes while gate `$1` is open, and counts its passes.
    pub(in crate::store) fn gate(name: &str, rank: u8) -> Guard {
        Guard {
            rank,
            sql: "UPDATE gates SET passes = passes + 1 WHERE name = $1 AND open = 1",
            values: vec![name.into()],
        }
    }

    pub(in crate::store) async fn scalar(db: &Db, sql: &'static str) -> i64 {
        let (n,): (i64,) = sqlx::query_as(sql).fetch_one(db.read()).await.unwrap();
        n
    }

    pub(in crate::store) async fn count(db: &Db, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_one(db.read())
            .await
            .unwrap();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{T, U};
    use super::*;

    #[test]
    fn parameters_are_renumbered_after_the_ones_before() {
        let mut out = String::new();
        renumber(
            &mut out,
            "UPDATE x SET a = $2 WHERE k = $1 AND c = $10 AND d = '$'",
            4,
        );
        assert_eq!(
            out,
            "UPDATE x SET a = $6 WHERE k = $5 AND c = $14 AND d = '$'"
        );
    }

    #[test]
    fn statements_number_their_parameters_across_rows() {
        assert_eq!(
            sql(&T, 2),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT (a) DO NOTHING"
        );
        assert_eq!(sql(&U, 1), "INSERT INTO u (a) VALUES ($1)");
    }

    #[test]
    fn tables_combine_into_one_statement_numbered_throughout() {
        let t = Insert::new(&T, vec!["k".into(), 1.into()]);
        let u = Insert::new(&U, vec!["x".into()]);
        let query = combined(
            &[],
            &[(&T, vec![&t, &t]), (&U, vec![&u]), (&T, vec![&t])],
            false,
        );
        let sql = sqlx::Execute::sql(query);
        assert_eq!(
            sql.as_str(),
            "WITH w0 AS (INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT (a) DO NOTHING), \
             w1 AS (INSERT INTO u (a) VALUES ($5)) \
             INSERT INTO t (a, b) VALUES ($6, $7) ON CONFLICT (a) DO NOTHING"
        );
    }

    /// Guarded, the guards lead (numbered first, answering their own number), every chunk is
    /// a CTE, and the statement divides by the count of each guard's rows.
    #[test]
    fn guards_lead_a_combined_statement_that_fails_when_one_touched_nothing() {
        let t = Insert::new(&T, vec!["k".into(), 1.into()]);
        let u = Insert::new(&U, vec!["x".into()]);
        let (a, b) = (fixtures::gate("a", 0), fixtures::gate("b", 1));
        let query = combined(&[&a, &b], &[(&T, vec![&t]), (&U, vec![&u])], true);
        assert_eq!(
            sqlx::Execute::sql(query).as_str(),
            "WITH g0 AS (UPDATE gates SET passes = passes + 1 WHERE name = $1 AND open = 1 \
             RETURNING 0), \
             g1 AS (UPDATE gates SET passes = passes + 1 WHERE name = $2 AND open = 1 \
             RETURNING 1), \
             w0 AS (INSERT INTO t (a, b) VALUES ($3, $4) ON CONFLICT (a) DO NOTHING), \
             w1 AS (INSERT INTO u (a) VALUES ($5)) \
             SELECT 1 / LEAST((SELECT COUNT(*) FROM g0), (SELECT COUNT(*) FROM g1))"
        );
    }
}
