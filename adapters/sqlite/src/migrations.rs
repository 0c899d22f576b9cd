//! The library's tables and their migrations ledger, beside whatever the host keeps in the
//! same file.

use sha2::{Digest, Sha256};
use sqlx::{Row, SqlitePool};

/// The migrations, in order: (version, description, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "tables", include_str!("../migrations/0001_tables.sql")),
    (
        2,
        "email-change links",
        include_str!("../migrations/0002_email_change.sql"),
    ),
    (
        3,
        "counters keep their subject apart",
        include_str!("../migrations/0003_counter_subjects.sql"),
    ),
];

/// Why the tables could not be brought up to date.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// The database failed; nothing of the migration stayed.
    #[error("database error while migrating")]
    Database(#[from] sqlx::Error),
    /// An applied migration differs from the one this build carries.
    #[error("migration {version} was applied with different contents")]
    Changed {
        /// The migration's version.
        version: i64,
    },
    /// The database has a migration this build does not know (a newer build ran).
    #[error("the database has migration {version}, newer than this build")]
    Newer {
        /// The migration's version.
        version: i64,
    },
}

/// Brings the tables up to date: applies each migration not in the ledger
/// (`resident_auth_migrations`), all in one `BEGIN IMMEDIATE` transaction, so two processes
/// starting at once take turns and a failed migration leaves no trace. Safe to run at every
/// start; [`crate::open`] does. The host's own tables and `_sqlx_migrations` are never
/// touched.
///
/// # Errors
/// [`MigrateError`].
pub async fn migrate(pool: &SqlitePool) -> Result<(), MigrateError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS resident_auth_migrations (
             version     INTEGER PRIMARY KEY,
             description TEXT NOT NULL,
             checksum    BLOB NOT NULL,
             applied_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
         ) STRICT",
    )
    .execute(&mut *tx)
    .await?;
    let applied =
        sqlx::query("SELECT version, checksum FROM resident_auth_migrations ORDER BY version")
            .fetch_all(&mut *tx)
            .await?;
    let mut applied_versions = Vec::with_capacity(applied.len());
    for row in &applied {
        let version: i64 = row.try_get("version")?;
        let checksum: Vec<u8> = row.try_get("checksum")?;
        match MIGRATIONS.iter().find(|(v, _, _)| *v == version) {
            None => return Err(MigrateError::Newer { version }),
            Some((_, _, sql)) if Sha256::digest(sql.as_bytes()).as_slice() != checksum => {
                return Err(MigrateError::Changed { version })
            }
            Some(_) => applied_versions.push(version),
        }
    }
    for (version, description, sql) in MIGRATIONS {
        if applied_versions.contains(version) {
            continue;
        }
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO resident_auth_migrations (version, description, checksum) VALUES (?1, ?2, ?3)")
            .bind(version)
            .bind(description)
            .bind(Sha256::digest(sql.as_bytes()).as_slice())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|(v, _, _)| *v).collect();
        let expected: Vec<i64> = (1..).take(versions.len()).collect();
        assert_eq!(versions, expected);
    }
}
