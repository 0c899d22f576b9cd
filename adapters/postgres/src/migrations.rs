//! The library's own schema and migrations ledger, beside whatever the host keeps in the
//! same database.

use std::fmt;

use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};

/// The migrations, in order: (version, description, SQL).
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "tables", include_str!("../migrations/0001_tables.sql")),
    (
        2,
        "password change and sessions",
        include_str!("../migrations/0002_password_change_and_sessions.sql"),
    ),
    (
        3,
        "operators: link lookups and the audit table",
        include_str!("../migrations/0003_operators.sql"),
    ),
    (
        4,
        "the mail queue and residents' events",
        include_str!("../migrations/0004_mail_queue_and_events.sql"),
    ),
    (
        5,
        "email-change links",
        include_str!("../migrations/0005_email_change.sql"),
    ),
    (
        6,
        "counters keep their subject apart",
        include_str!("../migrations/0006_counter_subjects.sql"),
    ),
];

/// The PostgreSQL schema (namespace) holding the library's tables: a lower-case SQL
/// identifier of at most 63 bytes. Default `resident_auth`.
///
/// ```
/// use resident_auth_postgres::Schema;
/// assert_eq!(Schema::default().as_str(), "resident_auth");
/// assert!(Schema::new("tenant_7").is_ok());
/// assert!(Schema::new("bad; DROP TABLE x").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Schema(String);

/// The name is not a lower-case identifier (`[a-z_][a-z0-9_]*`, at most 63 bytes) or
/// starts with `pg_`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("schema name must match [a-z_][a-z0-9_]{{0,62}} and not start with pg_: {0:?}")]
pub struct InvalidSchema(String);

impl Schema {
    /// The schema named `name`.
    ///
    /// # Errors
    /// [`InvalidSchema`] unless `name` is a plain lower-case identifier.
    pub fn new(name: &str) -> Result<Self, InvalidSchema> {
        let mut bytes = name.bytes();
        let valid = name.len() <= 63
            && bytes
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
            && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !name.starts_with("pg_");
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(InvalidSchema(name.to_owned()))
        }
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `sql` with every `{schema}` replaced by the (quoted) schema name.
    pub(crate) fn qualify(&self, sql: &str) -> String {
        sql.replace("{schema}", &format!("\"{}\"", self.0))
    }

    /// The advisory lock key that serialises migrations of this schema.
    fn lock_key(&self) -> i64 {
        let digest = Sha256::digest(format!("resident-auth migrations {}", self.0).as_bytes());
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
        i64::from_be_bytes(bytes)
    }
}

impl Default for Schema {
    fn default() -> Self {
        Self("resident_auth".to_owned())
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// The database failed; the migration that was running was rolled back.
    #[error("database error while migrating")]
    Database(#[from] sqlx::Error),
    /// An applied migration differs from the one this build carries.
    #[error("migration {version} was applied with different contents")]
    Changed {
        /// The migration's version.
        version: i32,
    },
    /// The database has a migration this build does not know (a newer build ran).
    #[error("the database has migration {version}, newer than this build")]
    Newer {
        /// The migration's version.
        version: i32,
    },
}

/// Brings the default schema (`resident_auth`) up to date; see [`migrate_schema`].
///
/// # Errors
/// [`MigrateError`].
pub async fn migrate(pool: &PgPool) -> Result<(), MigrateError> {
    migrate_schema(pool, &Schema::default()).await
}

/// Brings `schema` up to date: creates it if needed, then applies each migration not in
/// its ledger (`<schema>.migrations`), each in its own transaction. Safe to run again and
/// from several instances at once (they take turns on an advisory lock). The host's own
/// tables and `_sqlx_migrations` are never touched.
///
/// # Errors
/// [`MigrateError`]; a failed migration leaves no trace of itself.
pub async fn migrate_schema(pool: &PgPool, schema: &Schema) -> Result<(), MigrateError> {
    let mut connection = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(schema.lock_key())
        .execute(&mut *connection)
        .await?;
    let result = apply(&mut connection, schema).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(schema.lock_key())
        .execute(&mut *connection)
        .await;
    result?;
    unlocked?;
    Ok(())
}

async fn apply(
    connection: &mut sqlx::pool::PoolConnection<sqlx::Postgres>,
    schema: &Schema,
) -> Result<(), MigrateError> {
    sqlx::raw_sql(&schema.qualify(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.migrations (
             version     INTEGER PRIMARY KEY,
             description TEXT NOT NULL,
             checksum    BYTEA NOT NULL,
             applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
         );",
    ))
    .execute(&mut **connection)
    .await?;
    let applied = sqlx::query(
        &schema.qualify("SELECT version, checksum FROM {schema}.migrations ORDER BY version"),
    )
    .fetch_all(&mut **connection)
    .await?;
    let mut applied_versions = Vec::with_capacity(applied.len());
    for row in &applied {
        let version: i32 = row.try_get("version")?;
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
        let mut tx = sqlx::Connection::begin(&mut **connection).await?;
        sqlx::query(&schema.qualify("SET LOCAL search_path TO {schema}"))
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query(&schema.qualify(
            "INSERT INTO {schema}.migrations (version, description, checksum) VALUES ($1, $2, $3)",
        ))
        .bind(version)
        .bind(description)
        .bind(Sha256::digest(sql.as_bytes()).as_slice())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for good in ["resident_auth", "_x", "a1", &"a".repeat(63)] {
            assert!(Schema::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1a",
            "A",
            "a-b",
            "a\"b",
            "pg_catalog",
            &"a".repeat(64),
            "ж",
        ] {
            assert!(Schema::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn qualify_quotes_the_schema() {
        let schema = Schema::new("tenant").unwrap_or_default();
        assert_eq!(
            schema.qualify("SELECT 1 FROM {schema}.t"),
            "SELECT 1 FROM \"tenant\".t"
        );
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        let versions: Vec<i32> = MIGRATIONS.iter().map(|(v, _, _)| *v).collect();
        let expected: Vec<i32> = (1..).take(versions.len()).collect();
        assert_eq!(versions, expected);
    }
}
