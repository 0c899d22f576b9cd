//! The session check's read on the calling task. sqlx runs each SQLite connection on a
//! thread of its own and reaches it through a channel: two thread hand-offs per statement,
//! which cost a session check more than the statement itself (benches/README.md, "The
//! session check on SQLite"). The check's one statement — the session joined with its
//! cabinet — is instead run through rusqlite on read-only connections to the same file,
//! each used by one caller at a time, on the caller's thread.
//!
//! It never waits: a connection's busy timeout is zero, and when every reader is in use or
//! SQLite answers busy the check goes through the pool as any other read. In WAL mode a
//! reader does not wait for the writer, and it reads what was committed before it began, as
//! a pool connection would. What it can still wait for is the disk, when the pages it needs
//! are not in the operating system's cache.

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, LazyLock, Mutex, PoisonError, Weak,
    },
};

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::*;

/// The statement a check runs: the one the pool runs too (`composite.rs`).
pub(super) static SESSION_WITH_CABINET: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {SESSION_COLUMNS}, {CABINET_COLUMNS}
           FROM resident_auth_sessions s
           JOIN resident_auth_cabinets c ON c.id = s.cabinet_id
          WHERE s.token_hash = ?1"
    )
});

/// Every set of readers alive, so that [`close_readers`] finds those of a file.
static ALIVE: Mutex<Vec<Weak<Readers>>> = Mutex::new(Vec::new());

/// What a check found: the session with its cabinet, if there is one.
type Found = Option<(Versioned<Session>, CabinetSnapshot)>;

/// Read-only connections to one database file, opened when first needed.
pub(super) struct Readers {
    path: PathBuf,
    connections: Vec<Mutex<Option<Connection>>>,
    closed: AtomicBool,
}

impl fmt::Debug for Readers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readers")
            .field("path", &self.path)
            .field("connections", &self.connections.len())
            .finish_non_exhaustive()
    }
}

impl Columns for rusqlite::Row<'_> {
    fn integer(&self, column: &str) -> Result<Option<i64>, StoreError> {
        self.get(column).map_err(StoreError::generic)
    }
    fn string(&self, column: &str) -> Result<Option<String>, StoreError> {
        self.get(column).map_err(StoreError::generic)
    }
    fn blob(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(column).map_err(StoreError::generic)
    }
}

impl Readers {
    /// The readers of the file behind `pool`; `None` for a database that is not a file on
    /// disk (in memory), whose every read goes through the pool.
    pub(super) fn of(pool: &SqlitePool) -> Option<Arc<Self>> {
        let path = pool.connect_options().get_filename().to_path_buf();
        if !std::fs::metadata(&path).is_ok_and(|metadata| metadata.is_file()) {
            return None;
        }
        let count = std::thread::available_parallelism().map_or(2, usize::from);
        let readers = Arc::new(Self {
            path,
            connections: (0..count.clamp(2, 8)).map(|_| Mutex::new(None)).collect(),
            closed: AtomicBool::new(false),
        });
        let mut alive = ALIVE.lock().unwrap_or_else(PoisonError::into_inner);
        alive.retain(|readers| readers.strong_count() > 0);
        alive.push(Arc::downgrade(&readers));
        Some(readers)
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(&self.path, flags)?;
        connection.busy_timeout(Duration::ZERO)?;
        connection.pragma_update(None, "trusted_schema", "OFF")?;
        Ok(connection)
    }

    /// The session under `token` with its cabinet, read on this thread; `None` when no
    /// reader is free, SQLite is busy or the readers are closed: then the pool reads it.
    pub(super) fn session_with_cabinet(
        &self,
        token: &TokenHash,
    ) -> Option<Result<Found, StoreError>> {
        for slot in &self.connections {
            let Ok(mut slot) = slot.try_lock() else {
                continue;
            };
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            if slot.is_none() {
                *slot = Some(self.open().ok()?);
            }
            let connection = slot.as_ref()?;
            return match read(connection, token) {
                Ok(found) => Some(found),
                Err(rusqlite::Error::SqliteFailure(error, _))
                    if matches!(
                        error.code,
                        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked
                    ) =>
                {
                    None
                }
                Err(error) => {
                    // Opened again at the next check.
                    *slot = None;
                    Some(Err(StoreError::unavailable(error)))
                }
            };
        }
        None
    }
}

fn read(connection: &Connection, token: &TokenHash) -> rusqlite::Result<Result<Found, StoreError>> {
    let mut statement = connection.prepare_cached(&SESSION_WITH_CABINET)?;
    let mut rows = statement.query([token.as_bytes().as_slice()])?;
    let Some(row) = rows.next()? else {
        return Ok(Ok(None));
    };
    let decoded = session_from_row(row)
        .and_then(|session| Ok(Some((session, cabinet_from_row(row)?.value.into()))));
    Ok(decoded)
}

/// Closes the readers of the file at `path` and keeps them closed: what [`crate::close`]
/// does first, so that the pool's last connection, closing, removes the write-ahead log.
pub(crate) fn close_readers(path: &Path) {
    let alive = ALIVE.lock().unwrap_or_else(PoisonError::into_inner);
    for readers in alive.iter().filter_map(Weak::upgrade) {
        if readers.path == path {
            readers.closed.store(true, Ordering::Release);
            for slot in &readers.connections {
                *slot.lock().unwrap_or_else(PoisonError::into_inner) = None;
            }
        }
    }
}
