//! PostgreSQL adapters for [`resident_auth`]: the [`Store`](resident_auth::ports::Store) and the
//! [`AccountDirectory`](resident_auth::config::AccountDirectory), embedded migrations, and a CSV
//! import of the billing directory.
//!
//! Everything lives in a schema of its own (default `resident_auth`, see [`Schema`]),
//! beside the host's tables, with its own migrations ledger (`<schema>.migrations`, not
//! the host's `_sqlx_migrations`). [`migrate`] may run at every start of every instance:
//! instances wait for each other on an advisory lock, and what is applied is skipped.
//!
//! Every store primitive is one statement, except a cabinet write (one transaction);
//! conditional writes compare a `version` column, so several service instances can share
//! one database. All queries are parameterised.
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
// No production function over 80 lines (clippy.toml); tests may be longer.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

mod audit;
mod directory;
mod migrations;
mod store;

use std::time::Duration;

pub use audit::{PgAudit, PgEvents};
pub use directory::{
    directory_is_empty, import_directory, import_directory_into, ImportError, ImportReport,
    PgDirectory,
};
pub use migrations::{migrate, migrate_schema, InvalidSchema, MigrateError, Schema};
pub use sqlx::PgPool;
pub use store::PgStore;

/// Pool settings exposed to hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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

impl PoolConfig {
    /// The defaults with at most `max_connections` connections.
    #[must_use]
    pub fn with_max_connections(max_connections: u32) -> Self {
        Self {
            max_connections,
            ..Self::default()
        }
    }
}

/// Opens a pool to `url` with `config`.
///
/// # Errors
/// [`sqlx::Error`] if the URL is malformed or the first connection fails — with the
/// connection's own error (`Connection refused`, a password refused), not the pool's
/// "timed out" that hid it.
pub async fn connect(url: &str, config: &PoolConfig) -> Result<PgPool, sqlx::Error> {
    match pool(url, config).await {
        Err(sqlx::Error::PoolTimedOut) => {
            // The pool retried until its wait ran out; one direct try says why.
            use sqlx::Connection as _;
            match sqlx::PgConnection::connect(url).await {
                Ok(connection) => {
                    let _ = connection.close().await;
                    Err(sqlx::Error::PoolTimedOut)
                }
                Err(cause) => Err(cause),
            }
        }
        opened => opened,
    }
}

async fn pool(url: &str, config: &PoolConfig) -> Result<PgPool, sqlx::Error> {
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

/// Whether a database error is a unique-constraint violation (SQLSTATE 23505).
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}

/// Whether a SQLSTATE names a condition that may pass on retry: 08 connection exception,
/// 40 transaction rollback (40001 serialization failure, 40P01 deadlock), 57P0x
/// operator intervention (admin or crash shutdown, cannot connect now), 57014 a statement
/// cancelled by its timeout, 53 insufficient resources. Everything else (23505 unique violation, 22xxx bad data, 42xxx bad SQL)
/// will fail the same way again.
fn transient_sqlstate(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("40")
        || code.starts_with("57P")
        || code == "57014"
        || code.starts_with("53")
}

/// Sorts a database error: connection trouble and contention may pass on retry.
///
/// An error that says the server cannot be reached at all — no connection within the
/// pool's wait (the pool retries refused connects until then), the pool closed, or the
/// server not accepting connections (57P03, 08001, 08004) — is
/// [`StoreError::unreachable`]: the service then answers at once until the server is
/// back. A connection lost in the middle of a statement (reset, or its backend terminated:
/// 57P01) is one call's bad luck (retryable), not yet an outage: the next call takes
/// another connection, and finds the outage if there is one.
pub(crate) fn store_error(error: sqlx::Error) -> resident_auth::ports::StoreError {
    use resident_auth::ports::StoreError;
    let unreachable = match &error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| matches!(code.as_ref(), "57P03" | "08001" | "08004")),
        _ => false,
    };
    let transient = match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| transient_sqlstate(&code)),
        _ => false,
    };
    if unreachable {
        StoreError::unreachable(error)
    } else if transient {
        StoreError::unavailable(error)
    } else {
        StoreError::generic(error)
    }
}

#[cfg(test)]
mod tests {
    use super::transient_sqlstate;

    #[test]
    fn sqlstates_are_sorted_into_transient_and_permanent() {
        for transient in [
            "40001", "40P01", "57P01", "57P02", "57P03", "08006", "08001", "53300", "53200",
            "57014",
        ] {
            assert!(transient_sqlstate(transient), "{transient}");
        }
        for permanent in [
            "23505", "23503", "23514", "22P02", "42P01", "42601", "P0001",
        ] {
            assert!(!transient_sqlstate(permanent), "{permanent}");
        }
    }
}

/// The crate's README, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
