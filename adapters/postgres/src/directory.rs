//! The billing directory on PostgreSQL, and its CSV import.

use async_trait::async_trait;
use resident_auth::{
    parse_directory_csv, AccountDirectory, AccountNumber, DirectoryCsvError, DirectoryRecord,
    StoreError,
};
use sqlx::{PgPool, Row};

use crate::{store_error, Schema};

/// The [`AccountDirectory`] on the `directory` table.
#[derive(Debug, Clone)]
pub struct PgDirectory {
    pool: PgPool,
    lookup: String,
}

impl PgDirectory {
    /// A directory over a database migrated in the default schema.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self::with_schema(pool, &Schema::default())
    }

    /// A directory over a database migrated in `schema`.
    #[must_use]
    pub fn with_schema(pool: PgPool, schema: &Schema) -> Self {
        Self {
            pool,
            lookup: schema.qualify(
                "SELECT address, premises, surnames FROM {schema}.directory WHERE account_number = $1",
            ),
        }
    }
}

#[async_trait]
impl AccountDirectory for PgDirectory {
    async fn lookup(&self, account: &AccountNumber) -> Result<Option<DirectoryRecord>, StoreError> {
        let row = sqlx::query(&self.lookup)
            .bind(account.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        let Some(row) = row else { return Ok(None) };
        let premises: String = row.try_get("premises").map_err(store_error)?;
        Ok(Some(DirectoryRecord {
            account_number: *account,
            address: row.try_get("address").map_err(store_error)?,
            premises: premises
                .parse()
                .map_err(|_| StoreError::generic("unexpected premises in the directory table"))?,
            surnames: row.try_get("surnames").map_err(store_error)?,
        }))
    }
}

/// What an import changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportReport {
    /// Accounts new to the directory.
    pub inserted: u64,
    /// Accounts whose address, premises or surnames changed.
    pub updated: u64,
    /// Accounts already as in the file.
    pub unchanged: u64,
}

/// Why an import did nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file has bad rows (each with its line number); nothing was written.
    #[error(transparent)]
    Csv(#[from] DirectoryCsvError),
    /// The database failed; the transaction was rolled back.
    #[error("database error during import")]
    Database(#[from] sqlx::Error),
}

/// Loads a directory CSV (the format of [`resident_auth::parse_directory_csv`]) into the
/// default schema; see [`import_directory_into`].
///
/// # Errors
/// As [`import_directory_into`].
pub async fn import_directory(pool: &PgPool, csv: &str) -> Result<ImportReport, ImportError> {
    import_directory_into(pool, &Schema::default(), csv).await
}

/// Loads a directory CSV into `schema`: all rows or none, in one transaction.
/// Re-importing updates changed rows and leaves the others untouched.
///
/// # Errors
/// [`ImportError::Csv`] listing every bad row with its line number, or
/// [`ImportError::Database`]; in both cases the database is unchanged.
pub async fn import_directory_into(
    pool: &PgPool,
    schema: &Schema,
    csv: &str,
) -> Result<ImportReport, ImportError> {
    let records = parse_directory_csv(csv)?;
    let upsert = schema.qualify(
        "INSERT INTO {schema}.directory AS d (account_number, address, premises, surnames)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (account_number) DO UPDATE
                SET address = excluded.address, premises = excluded.premises, surnames = excluded.surnames
              WHERE (d.address, d.premises, d.surnames)
                    IS DISTINCT FROM (excluded.address, excluded.premises, excluded.surnames)
             RETURNING (xmax = 0) AS inserted",
    );
    let mut tx = pool.begin().await?;
    let mut report = ImportReport::default();
    for record in &records {
        let row = sqlx::query(&upsert)
            .bind(record.account_number.as_str())
            .bind(&record.address)
            .bind(record.premises.to_string())
            .bind(&record.surnames)
            .fetch_optional(&mut *tx)
            .await?;
        match row {
            Some(row) if row.try_get::<bool, _>("inserted")? => report.inserted += 1,
            Some(_) => report.updated += 1,
            None => report.unchanged += 1,
        }
    }
    tx.commit().await?;
    Ok(report)
}

/// Whether the directory table of `schema` has no rows (a new database).
///
/// # Errors
/// [`sqlx::Error`] if the query fails.
pub async fn directory_is_empty(pool: &PgPool, schema: &Schema) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(&schema.qualify("SELECT NOT EXISTS (SELECT 1 FROM {schema}.directory)"))
        .fetch_one(pool)
        .await
}
