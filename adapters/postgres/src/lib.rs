//! PostgreSQL adapters for [`resident_auth`]: the [`Store`](resident_auth::Store) and the
//! [`AccountDirectory`](resident_auth::AccountDirectory), embedded migrations, and a CSV
//! import of the billing directory.
//!
//! Every store operation is one statement or one transaction; tokens are consumed with
//! `UPDATE … RETURNING`/`DELETE … RETURNING` under row locks, so several service instances
//! can share one database. All queries are parameterised.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use resident_auth_postgres::{connect, migrate, PgDirectory, PgStore, PoolConfig};
//! let pool = connect("postgres://portal@127.0.0.1/portal", &PoolConfig::default()).await?;
//! migrate(&pool).await?;
//! let store = PgStore::new(pool.clone());
//! let directory = PgDirectory::new(pool);
//! # let _ = (store, directory);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod directory;
mod store;

use std::time::Duration;

pub use directory::{directory_is_empty, import_directory, ImportError, ImportReport, PgDirectory};
pub use sqlx::PgPool;
pub use store::PgStore;

/// Pool settings exposed to hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Most connections open at once (default 10).
    pub max_connections: u32,
    /// Connections kept open when idle (default 0).
    pub min_connections: u32,
    /// How long a caller waits for a free connection before the store reports itself
    /// unavailable (default 5 s).
    pub acquire_timeout: Duration,
    /// Server-side limit on any one statement (default 5 s).
    pub statement_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
        }
    }
}

/// Opens a pool to `url` with `config`.
///
/// # Errors
/// [`sqlx::Error`] if the URL is malformed or the first connection fails.
pub async fn connect(url: &str, config: &PoolConfig) -> Result<PgPool, sqlx::Error> {
    let statement_timeout = format!("{}", config.statement_timeout.as_millis());
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(config.max_connections)
        .min_connections(config.min_connections)
        .acquire_timeout(config.acquire_timeout)
        .after_connect(move |connection, _| {
            let statement_timeout = statement_timeout.clone();
            Box::pin(async move {
                sqlx::query("SELECT set_config('statement_timeout', $1, false)")
                    .bind(statement_timeout)
                    .execute(connection)
                    .await
                    .map(|_| ())
            })
        })
        .connect(url)
        .await
}

/// The migrations embedded in this crate.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Brings the schema up to date. Running it again is harmless.
///
/// # Errors
/// [`sqlx::migrate::MigrateError`] if the database cannot be migrated.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// Sorts a database error: connection trouble and contention may pass on retry.
pub(crate) fn store_error(error: sqlx::Error) -> resident_auth::StoreError {
    use resident_auth::StoreError;
    let transient = match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 40001/40P01: serialization/deadlock;
            // 57P0x: admin shutdown, crash shutdown, cannot connect now; 53: resources.
            code.starts_with("08")
                || code.starts_with("40")
                || code.starts_with("57P")
                || code.starts_with("53")
        }),
        _ => false,
    };
    if transient {
        StoreError::unavailable(error)
    } else {
        StoreError::generic(error)
    }
}
