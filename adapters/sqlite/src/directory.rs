//! The billing directory in SQLite, and its CSV import.

use async_trait::async_trait;
use resident_auth::{
    config::{parse_directory_csv, AccountDirectory, DirectoryRecord},
    errors::DirectoryCsvError,
    ports::StoreError,
    AccountNumber,
};
use sqlx::{Row, SqlitePool};

use crate::store_error;

/// The [`AccountDirectory`] on the `resident_auth_directory` table.
#[derive(Debug, Clone)]
pub struct SqliteDirectory {
    pool: SqlitePool,
}

impl SqliteDirectory {
    /// A directory over a database opened by [`crate::open`].
    #[must_use]
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl AccountDirectory for SqliteDirectory {
    #[tracing::instrument(name = "sqlite.lookup", skip_all, err(level = "debug", Display))]
    async fn lookup(&self, account: &AccountNumber) -> Result<Option<DirectoryRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT address, premises, surnames FROM resident_auth_directory
              WHERE account_number = ?1",
        )
        .bind(account.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        let Some(row) = row else { return Ok(None) };
        let premises: String = row.try_get("premises").map_err(store_error)?;
        let surnames: String = row.try_get("surnames").map_err(store_error)?;
        Ok(Some(DirectoryRecord {
            account_number: *account,
            address: row.try_get("address").map_err(store_error)?,
            premises: premises
                .parse()
                .map_err(|_| StoreError::generic("unexpected premises in the directory table"))?,
            surnames: split_surnames(&surnames),
        }))
    }
}

/// Surnames as stored: joined by `;`, which the directory file never has inside a surname
/// (it is the file's own separator); empty for "not checked".
fn join_surnames(surnames: &[String]) -> String {
    surnames.join(";")
}

fn split_surnames(stored: &str) -> Vec<String> {
    stored
        .split(';')
        .filter(|surname| !surname.is_empty())
        .map(str::to_owned)
        .collect()
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

/// Loads a directory CSV (the format of [`resident_auth::config::parse_directory_csv`]): all
/// rows or none, in one transaction. Re-importing writes only new or changed rows.
///
/// # Errors
/// [`ImportError::Csv`] listing every bad row with its line number, or
/// [`ImportError::Database`]; in both cases the database is unchanged.
pub async fn import_directory(pool: &SqlitePool, csv: &str) -> Result<ImportReport, ImportError> {
    let records = parse_directory_csv(csv)?;
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    // The directory as it stands, read in one pass (a row-by-row lookup held the write
    // lock 27 s for a million unchanged rows; this, a few), then only new or changed rows
    // are written.
    let stored: std::collections::HashMap<String, (String, String, String)> = sqlx::query_as(
        "SELECT account_number, address, premises, surnames FROM resident_auth_directory",
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(
        |(account, address, premises, surnames): (String, String, String, String)| {
            (account, (address, premises, surnames))
        },
    )
    .collect();
    let mut report = ImportReport::default();
    for record in &records {
        let surnames = join_surnames(&record.surnames);
        let premises = record.premises.to_string();
        match stored.get(record.account_number.as_str()) {
            Some((address, stored_premises, stored_surnames))
                if *address == record.address
                    && *stored_premises == premises
                    && *stored_surnames == surnames =>
            {
                report.unchanged += 1;
                continue;
            }
            Some(_) => report.updated += 1,
            None => report.inserted += 1,
        }
        sqlx::query(
            "INSERT INTO resident_auth_directory (account_number, address, premises, surnames)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (account_number) DO UPDATE
                SET address = excluded.address, premises = excluded.premises,
                    surnames = excluded.surnames",
        )
        .bind(record.account_number.as_str())
        .bind(&record.address)
        .bind(&premises)
        .bind(&surnames)
        .execute(&mut *tx)
        .await?;
    }
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM resident_auth_directory")
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    let in_file = report.inserted + report.updated + report.unchanged;
    report.absent = u64::try_from(total).unwrap_or(0).saturating_sub(in_file);
    Ok(report)
}

/// Whether the directory table has no rows (a new database).
///
/// # Errors
/// [`sqlx::Error`] if the query fails.
pub async fn directory_is_empty(pool: &SqlitePool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM resident_auth_directory)")
        .fetch_one(pool)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surnames_round_trip_through_their_stored_form() {
        for surnames in [
            vec![],
            vec!["Иванов".to_owned()],
            vec!["Иванов".to_owned(), "Петрова".to_owned()],
        ] {
            assert_eq!(split_surnames(&join_surnames(&surnames)), surnames);
        }
    }
}
