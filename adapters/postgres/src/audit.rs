//! The audit trails in PostgreSQL: operators' actions in `{schema}.audit` (migration
//! 0003, no personal data) and residents' events in `{schema}.events` (migration 0004).

use async_trait::async_trait;
use resident_auth::{
    admin::{Audit, AuditEvent},
    events::{Event, Events},
    ports::StoreError,
    AccountNumber, CabinetId,
};
use sqlx::PgPool;

use crate::{store_error, Schema};

/// Records operator actions to the `audit` table.
#[derive(Debug, Clone)]
pub struct PgAudit {
    pool: PgPool,
    schema: Schema,
}

impl PgAudit {
    /// The audit table of the default schema.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self::with_schema(pool, Schema::default())
    }

    /// The audit table of `schema`.
    #[must_use]
    pub fn with_schema(pool: PgPool, schema: Schema) -> Self {
        Self { pool, schema }
    }
}

#[async_trait]
impl Audit for PgAudit {
    async fn record(&self, event: &AuditEvent) -> Result<(), StoreError> {
        sqlx::query(&self.schema.qualify(
            "INSERT INTO {schema}.audit (at, operator, action, cabinet, changed)
             VALUES ($1, $2, $3, $4, $5)",
        ))
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

/// Records residents' events ([`resident_auth::events`]) to the `events` table
/// (migration 0004): kind, outcome, time, cabinet, account number and the truncated
/// client — never an email or a secret. A failed insert is logged, never fails the step.
#[derive(Debug, Clone)]
pub struct PgEvents {
    pool: PgPool,
    schema: Schema,
}

impl PgEvents {
    /// The events table of the default schema.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self::with_schema(pool, Schema::default())
    }

    /// The events table of `schema`.
    #[must_use]
    pub fn with_schema(pool: PgPool, schema: Schema) -> Self {
        Self { pool, schema }
    }
}

#[async_trait]
impl Events for PgEvents {
    #[tracing::instrument(name = "postgres.record_event", skip_all)]
    async fn record(&self, event: &Event) {
        let inserted = sqlx::query(&self.schema.qualify(
            "INSERT INTO {schema}.events (at, kind, outcome, cabinet, account_number, client)
             VALUES ($1, $2, $3, $4, $5, $6)",
        ))
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

    #[tracing::instrument(
        name = "postgres.forget_events",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn forget(
        &self,
        cabinet: Option<&CabinetId>,
        accounts: &[AccountNumber],
    ) -> Result<u64, StoreError> {
        let accounts: Vec<&str> = accounts.iter().map(AccountNumber::as_str).collect();
        let deleted =
            sqlx::query(&self.schema.qualify(
                "DELETE FROM {schema}.events WHERE cabinet = $1 OR account_number = ANY($2)",
            ))
            .bind(cabinet.map(|id| id.as_bytes().to_vec()))
            .bind(&accounts)
            .execute(&self.pool)
            .await
            .map_err(store_error)?
            .rows_affected();
        Ok(deleted)
    }
}
