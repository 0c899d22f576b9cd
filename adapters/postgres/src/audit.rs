//! The operators' audit trail in PostgreSQL: one row per action in `{schema}.audit`
//! (migration 0003), with no personal data.

use async_trait::async_trait;
use resident_auth::{
    admin::{Audit, AuditEvent},
    StoreError,
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
