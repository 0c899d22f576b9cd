//! The billing directory on PostgreSQL, and its CSV import.

use async_trait::async_trait;
use resident_auth::{
    config::{parse_directory_csv, AccountDirectory, DirectoryRecord},
    errors::DirectoryCsvError,
    ports::StoreError,
    AccountNumber,
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
    #[tracing::instrument(name = "postgres.lookup", skip_all, err(level = "debug", Display))]
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
#[non_exhaustive]
pub struct ImportReport {
    /// Accounts new to the directory.
    pub inserted: u64,
    /// Accounts whose address, premises or surnames changed.
    pub updated: u64,
    /// Accounts already as in the file (not written at all).
    pub unchanged: u64,
    /// Accounts in the directory but not in the file: kept as they are (a resident's
    /// cabinet may still name them); an operator removes them on purpose.
    pub absent: u64,
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

/// Loads a directory CSV (the format of [`resident_auth::config::parse_directory_csv`]) into the
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
    let mut tx = pool.begin().await?;
    // An import is an operator's batch job, not a request: the pool's per-statement limit
    // (seconds, for requests) would stop a region's directory half-way.
    sqlx::query("SET LOCAL statement_timeout = '30min'")
        .execute(&mut *tx)
        .await?;
    // Stage the file with COPY (one round trip for the rows), then one set-based upsert
    // that writes only new or changed rows: an unchanged row is neither locked nor
    // rewritten, so re-importing a region's directory costs next to no WAL.
    sqlx::query(
        "CREATE TEMP TABLE directory_import (
             account_number TEXT NOT NULL, address TEXT NOT NULL,
             premises TEXT NOT NULL, surnames TEXT NOT NULL
         ) ON COMMIT DROP",
    )
    .execute(&mut *tx)
    .await?;
    let mut copy = tx
        .copy_in_raw("COPY directory_import FROM STDIN (FORMAT csv)")
        .await?;
    copy.send(copy_rows(&records)).await?;
    copy.finish().await?;
    // A temporary table has no statistics: without them the planner takes a million
    // staged rows for a handful and joins them row by row.
    sqlx::query("ANALYZE directory_import")
        .execute(&mut *tx)
        .await?;
    let row = sqlx::query(&schema.qualify(
        "WITH staged AS (
             SELECT account_number, address, premises,
                    string_to_array(surnames, ';') AS surnames
               FROM directory_import),
         changed AS (
             SELECT s.* FROM staged s
               LEFT JOIN {schema}.directory d USING (account_number)
              WHERE d.account_number IS NULL
                 OR (d.address, d.premises, d.surnames)
                    IS DISTINCT FROM (s.address, s.premises, s.surnames)),
         written AS (
             INSERT INTO {schema}.directory AS d (account_number, address, premises, surnames)
             SELECT account_number, address, premises, surnames FROM changed
             ON CONFLICT (account_number) DO UPDATE
                SET address = excluded.address, premises = excluded.premises,
                    surnames = excluded.surnames
             RETURNING (xmax = 0) AS inserted)
         SELECT (SELECT count(*) FROM written WHERE inserted) AS inserted,
                (SELECT count(*) FROM written WHERE NOT inserted) AS updated,
                (SELECT count(*) FROM {schema}.directory d
                  WHERE NOT EXISTS (SELECT 1 FROM staged s
                                     WHERE s.account_number = d.account_number)) AS absent",
    ))
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    let count = |column: &str| -> Result<u64, sqlx::Error> {
        let value: i64 = row.try_get(column)?;
        Ok(u64::try_from(value).unwrap_or(0))
    };
    let (inserted, updated) = (count("inserted")?, count("updated")?);
    Ok(ImportReport {
        inserted,
        updated,
        unchanged: (records.len() as u64).saturating_sub(inserted + updated),
        absent: count("absent")?,
    })
}

/// The records as CSV rows for COPY: every field quoted, surnames joined by `;` (a
/// surname never holds one: the file's own separator).
fn copy_rows(records: &[DirectoryRecord]) -> Vec<u8> {
    fn field(out: &mut Vec<u8>, value: &str) {
        out.push(b'"');
        out.extend_from_slice(value.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    }
    let mut out = Vec::with_capacity(records.len() * 96);
    for record in records {
        field(&mut out, record.account_number.as_str());
        out.push(b',');
        field(&mut out, &record.address);
        out.push(b',');
        field(&mut out, &record.premises.to_string());
        out.push(b',');
        field(&mut out, &record.surnames.join(";"));
        out.push(b'\n');
    }
    out
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
