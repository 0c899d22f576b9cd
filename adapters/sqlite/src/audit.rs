//! The audit trails in SQLite: operators' actions in `resident_auth_audit` (no personal
//! data) and residents' events in `resident_auth_events`.

use async_trait::async_trait;
use resident_auth::{
    admin::{Audit, AuditEvent},
    events::{Event, Events},
    ports::StoreError,
    AccountNumber, CabinetId,
};
use sqlx::SqlitePool;

use crate::store_error;

/// Records operator actions to the `resident_auth_audit` table.
#[derive(Debug, Clone)]
pub struct SqliteAudit {
    pool: SqlitePool,
}

impl SqliteAudit {
    /// The audit table of a database opened by [`crate::open`].
    #[must_use]
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl Audit for SqliteAudit {
    async fn record(&self, event: &AuditEvent) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO resident_auth_audit (at, operator, action, cabinet, changed)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(event.at.as_millis())
        .bind(&event.operator)
        .bind(event.action)
        .bind(event.cabinet.as_ref().map(|id| id.as_bytes().to_vec()))
        .bind(i64::try_from(event.changed).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }
}

/// Records residents' events ([`resident_auth::events`]) to the `resident_auth_events`
/// table: kind, outcome, time, cabinet, account number and the truncated client — never an
/// email or a secret. A failed insert is logged, never fails the step.
#[derive(Debug, Clone)]
pub struct SqliteEvents {
    pool: SqlitePool,
}

impl SqliteEvents {
    /// The events table of a database opened by [`crate::open`].
    #[must_use]
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl Events for SqliteEvents {
    #[tracing::instrument(name = "sqlite.record_event", skip_all)]
    async fn record(&self, event: &Event) {
        let inserted = sqlx::query(
            "INSERT INTO resident_auth_events (at, kind, outcome, cabinet, account_number, client)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(event.at.as_millis())
        .bind(event.kind.as_str())
        .bind(event.outcome().as_str())
        .bind(event.cabinet.as_ref().map(|id| id.as_bytes().to_vec()))
        .bind(event.account.as_ref().map(AccountNumber::as_str))
        .bind(event.client.as_deref())
        .execute(&self.pool)
        .await;
        if let Err(error) = inserted {
            tracing::warn!(event = event.kind.as_str(), error = %store_error(error), "an event was not recorded");
        }
    }

    #[tracing::instrument(name = "sqlite.forget_events", skip_all, err(level = "debug", Display))]
    async fn forget(
        &self,
        cabinet: Option<&CabinetId>,
        accounts: &[AccountNumber],
    ) -> Result<u64, StoreError> {
        let accounts: Vec<&str> = accounts.iter().map(AccountNumber::as_str).collect();
        let deleted = sqlx::query(
            "DELETE FROM resident_auth_events
              WHERE cabinet = ?1 OR account_number IN (SELECT value FROM json_each(?2))",
        )
        .bind(cabinet.map(|id| id.as_bytes().to_vec()))
        .bind(serde_json::Value::from(accounts).to_string())
        .execute(&self.pool)
        .await
        .map_err(store_error)?
        .rows_affected();
        Ok(deleted)
    }
}
