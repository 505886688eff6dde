//! `audit_events`: the audit trail's table (security events, newest kept 90 days).

use super::handle::Store;
use super::rows::{Insert, Table};
use sqlx::FromRow;

/// One stored security event.
#[derive(Clone, Debug, FromRow, serde::Serialize)]
pub struct AuditRow {
    pub id: String,
    /// Microseconds since the Unix epoch.
    pub at_us: i64,
    pub kind: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub session: Option<String>,
    pub addr: Option<String>,
    pub request_id: Option<String>,
    pub detail: Option<String>,
}

const COLUMNS: &str = "id, at_us, kind, user_id, client_id, session, addr, request_id, detail";

static AUDIT_EVENTS: Table = Table {
    head: "INSERT INTO audit_events (id, at_us, kind, user_id, client_id, session, addr, \
           request_id, detail) VALUES",
    columns: 9,
    tail: "",
};

impl Insert {
    /// One security event.
    pub fn audit(row: &AuditRow) -> Self {
        Self::new(
            &AUDIT_EVENTS,
            vec![
                row.id.as_str().into(),
                row.at_us.into(),
                row.kind.as_str().into(),
                row.user_id.clone().into(),
                row.client_id.clone().into(),
                row.session.clone().into(),
                row.addr.clone().into(),
                row.request_id.clone().into(),
                row.detail.clone().into(),
            ],
        )
    }
}

impl Store {
    /// The newest `limit` events, oldest first.
    pub async fn audit_tail(&self, limit: i64) -> Result<Vec<AuditRow>, sqlx::Error> {
        let mut rows: Vec<AuditRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events ORDER BY at_us DESC, id DESC LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(self.db.read())
        .await?;
        rows.reverse();
        Ok(rows)
    }

    /// Events after `(at_us, id)`, oldest first (for following the trail).
    pub async fn audit_after(
        &self,
        at_us: i64,
        id: &str,
        limit: i64,
    ) -> Result<Vec<AuditRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events \
             WHERE at_us > $1 OR (at_us = $1 AND id > $2) \
             ORDER BY at_us, id LIMIT $3"
        )))
        .bind(at_us)
        .bind(id)
        .bind(limit)
        .fetch_all(self.db.read())
        .await
    }

    /// Forgets events older than `before_us`.
    pub async fn sweep_audit(&self, before_us: i64) -> Result<u64, sqlx::Error> {
        self.delete_batched("audit_events", "id", "at_us < $1", &[before_us])
            .await
    }
}
