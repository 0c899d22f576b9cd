//! SQLite adapters for [`resident_auth`]: the [`Store`](resident_auth::ports::Store), the
//! [`AccountDirectory`](resident_auth::config::AccountDirectory), the operators' audit and the
//! residents' events in one database file, with embedded migrations and a CSV import of the
//! billing directory. For a portal on one server; several instances share PostgreSQL
//! (`resident-auth-postgres`) instead — the crate's README says where SQLite's single writer
//! bends.
//!
//! [`open`] creates the file if it is new (readable by its owner only), turns on WAL mode
//! (readers never wait for the writer), foreign keys and a busy timeout, and brings the
//! tables up to date from the crate's own ledger (`resident_auth_migrations`, not the host's
//! `_sqlx_migrations`). Every table name starts with `resident_auth_`, so the file may hold
//! the host's tables too.
//!
//! Every write is a `BEGIN IMMEDIATE` transaction (or one statement) that compares the
//! record's `version` before it writes: the write lock is taken first, so concurrent tasks of
//! one process — or a second process on the same file, such as the operators' tool — queue for
//! it (up to the busy timeout) instead of failing half-way. A link or cabinet write that
//! queues a letter inserts the letter in the same transaction.
//!
//! The session check — the one read of almost every request — runs its statement through
//! rusqlite on read-only connections to the same file, on the calling task, instead of
//! through sqlx's pool, whose connections each run on a thread of their own: the hand-off
//! to that thread and back cost more than the statement (5–6 times the checks per second,
//! benches/README.md, "The session check on SQLite"). Such a read never waits for a lock
//! (its busy timeout is zero: when SQLite is busy, or every reader is in use, the check goes
//! through the pool), and in WAL mode it sees every write committed before it began.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use resident_auth_sqlite::{open, SqliteDirectory, SqliteOptions, SqliteStore};
//! let pool = open("resident-auth.db", &SqliteOptions::default()).await?;
//! let store = SqliteStore::new(pool.clone());
//! let directory = SqliteDirectory::new(pool);
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

use std::{path::Path, time::Duration};

pub use audit::{SqliteAudit, SqliteEvents};
pub use directory::{
    directory_is_empty, import_directory, ImportError, ImportReport, SqliteDirectory,
};
pub use migrations::{migrate, MigrateError};
pub use sqlx::SqlitePool;
pub use store::SqliteStore;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// Connection settings exposed to hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// Most connections open at once (default 8): readers run side by side in WAL mode;
    /// writers take turns whatever the number.
    pub max_connections: u32,
    /// How long a write waits for another writer (of this process or another) before the
    /// store reports itself unavailable (default 5 s). Also the wait for a free connection.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

impl SqliteOptions {
    /// The defaults with at most `max_connections` connections.
    #[must_use]
    pub fn with_max_connections(max_connections: u32) -> Self {
        Self {
            max_connections: max_connections.max(1),
            ..Self::default()
        }
    }
}

/// Why [`open`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The file could not be created with owner-only permissions.
    #[error("cannot create {path}")]
    Create {
        /// The database file.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file (or its `-wal` or `-shm`) may be read by other users of the machine; it
    /// holds password hashes and the sealed mail queue. `chmod 600 <path>` fixes it.
    #[error("{path} may be read by other users (mode {mode:o}): `chmod 600 {path}`")]
    Exposed {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// SQLite could not open the file or set it up.
    #[error("cannot open the database")]
    Database(#[from] sqlx::Error),
    /// The tables could not be brought up to date.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
}

/// Opens (creating it if needed) the database file at `path` and migrates it: a pool ready
/// for [`SqliteStore`], [`SqliteDirectory`], [`SqliteAudit`] and [`SqliteEvents`].
///
/// A new file is created readable and writable by its owner only (it holds password hashes
/// and the sealed mail queue); SQLite gives its `-wal` and `-shm` files the same
/// permissions. An existing file that other users may read or write (a backup restored with
/// the default umask, mode 644) is refused with the `chmod` that fixes it, as are its `-wal`
/// and `-shm` files. Deleted rows are overwritten (`secure_delete`), and
/// [`close`] leaves no write-ahead log behind. Journal mode WAL, `synchronous = NORMAL` (a commit survives the process
/// crashing; a power cut may lose the last commits, never corrupt the file), foreign keys
/// on.
///
/// # Errors
/// [`OpenError`] if the file cannot be created or opened, or its tables migrated.
pub async fn open(
    path: impl AsRef<Path>,
    options: &SqliteOptions,
) -> Result<SqlitePool, OpenError> {
    let path = path.as_ref();
    create_private(path).map_err(|source| OpenError::Create {
        path: path.display().to_string(),
        source,
    })?;
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        refuse_exposed(Path::new(&file))?;
    }
    let connect = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(options.busy_timeout)
        // The schema's own SQL only: no function a file's views or triggers could name.
        .pragma("trusted_schema", "OFF")
        // Deleted rows are overwritten with zeros, not left in freed space: an erased
        // resident is gone from the file once the log is checkpointed.
        .pragma("secure_delete", "ON");
    let pool = SqlitePoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .acquire_timeout(options.busy_timeout)
        .connect_with(connect)
        .await?;
    migrate(&pool).await?;
    Ok(pool)
}

/// Copies the write-ahead log into the database file and truncates the log to nothing
/// (`PRAGMA wal_checkpoint(TRUNCATE)`), waiting up to the busy timeout for readers.
///
/// # Errors
/// The database's, or "busy" when readers kept the log from being truncated.
pub(crate) async fn checkpoint_truncate(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    let (busy,): (i64,) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(pool)
        .await?;
    if busy != 0 {
        return Err(sqlx::Error::Protocol(
            "readers kept the write-ahead log from being truncated".to_owned(),
        ));
    }
    Ok(())
}

/// Closes a pool [`open`] made, leaving one file: the write-ahead log is checkpointed into
/// the database and truncated, then every connection closes (SQLite removes the empty
/// `-wal` and `-shm` files with the last one). What a portal does when it stops, so that
/// nothing erased lingers in the log (docs/security.md, "What the files keep").
///
/// # Errors
/// [`sqlx::Error`] when the checkpoint fails; the pool is closed all the same.
pub async fn close(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    store::close_readers(pool.connect_options().get_filename());
    let checkpointed = checkpoint_truncate(pool).await;
    pool.close().await;
    checkpointed
}

/// Creates `path` empty with mode 0600 unless it exists (then it is left as it is).
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// Refuses a file (if it exists) that users other than its owner may read or write.
fn refuse_exposed(file: &Path) -> Result<(), OpenError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(metadata) = std::fs::metadata(file) {
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(OpenError::Exposed {
                    path: file.display().to_string(),
                    mode,
                });
            }
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// Whether a database error is a unique-key violation.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Whether an SQLite result code may pass on retry: `SQLITE_BUSY` (5) and `SQLITE_LOCKED`
/// (6), with their extended codes (the primary code is the low byte). Everything else (a
/// constraint, a malformed file, a full disk) fails the same way again.
fn transient_code(code: &str) -> bool {
    code.parse::<i32>()
        .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
}

/// Sorts a database error: contention and connection trouble may pass on retry.
pub(crate) fn store_error(error: sqlx::Error) -> resident_auth::ports::StoreError {
    use resident_auth::ports::StoreError;
    let transient = match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| transient_code(&code)),
        _ => false,
    };
    if transient {
        StoreError::unavailable(error)
    } else {
        StoreError::generic(error)
    }
}

#[cfg(test)]
mod tests {
    use super::transient_code;

    #[test]
    fn result_codes_are_sorted_into_transient_and_permanent() {
        // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_BUSY_SNAPSHOT, SQLITE_LOCKED_SHAREDCACHE.
        for transient in ["5", "6", "517", "262"] {
            assert!(transient_code(transient), "{transient}");
        }
        // SQLITE_CONSTRAINT_UNIQUE, _CHECK, SQLITE_CORRUPT, SQLITE_FULL, not a number.
        for permanent in ["2067", "275", "11", "13", "", "x"] {
            assert!(!transient_code(permanent), "{permanent}");
        }
    }
}

/// The crate's README, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
