//! The store `docs/stores.md` walks through: one [`EntryStore`] on SQLite with `sqlx`
//! alone — three tables, nine methods — made a whole resident-auth store by
//! `Encoded::new(SqliteEntries::open(path).await?)`. It uses nothing of
//! resident-auth-sqlite; `tests/conformance.rs` runs the conformance suite and the store
//! fault matrix on it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sqlx::Error> {
//! use own_store::SqliteEntries;
//! use resident_auth::ports::Encoded;
//!
//! let store = Encoded::new(SqliteEntries::open("entries.db".as_ref()).await?);
//! // AuthService::builder(base).store(store) …
//! # let _ = store;
//! # Ok(()) }
//! ```

use std::{path::Path, time::Duration};

use async_trait::async_trait;
use resident_auth::{
    ports::{Change, Commit, Count, CounterKey, Entry, EntryKind, EntryStore, StoreError, Version},
    Timestamp,
};
use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteRow},
    Row, SqliteConnection, SqlitePool,
};

/// The three tables. A term belongs to its entry (`ON DELETE CASCADE`): deleting or purging
/// an entry takes its terms with it.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS entries (
    kind TEXT NOT NULL, key BLOB NOT NULL, version INTEGER NOT NULL, body BLOB NOT NULL,
    expires_at INTEGER, due_at INTEGER, PRIMARY KEY (kind, key));
CREATE INDEX IF NOT EXISTS entries_due ON entries (kind, due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_expiry ON entries (kind, expires_at)
    WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS entry_terms (
    kind TEXT NOT NULL, key BLOB NOT NULL, term TEXT NOT NULL, is_unique INTEGER NOT NULL,
    FOREIGN KEY (kind, key) REFERENCES entries (kind, key) ON DELETE CASCADE);
CREATE INDEX IF NOT EXISTS entry_terms_by_key ON entry_terms (kind, key);
CREATE INDEX IF NOT EXISTS entry_terms_by_term ON entry_terms (kind, term);
CREATE UNIQUE INDEX IF NOT EXISTS entry_terms_unique ON entry_terms (kind, term) WHERE is_unique;
CREATE TABLE IF NOT EXISTS counters (
    key TEXT PRIMARY KEY, subject TEXT NOT NULL, count INTEGER NOT NULL,
    window_ends INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS counters_by_subject ON counters (subject);
";

/// Entries and counters in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteEntries {
    pool: SqlitePool,
}

/// A failure of the database — the file, the pool, a lock held too long — is worth a retry
/// (`StoreError::unavailable`), unless a value read back is not what was written
/// (`StoreError::generic`).
fn failed(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => StoreError::generic(error),
        other => StoreError::unavailable(other),
    }
}

fn entry(row: &SqliteRow) -> Result<(Vec<u8>, Entry), StoreError> {
    let version = u64::try_from(row.try_get::<i64, _>("version").map_err(failed)?);
    let version = Version::new(version.map_err(|_| StoreError::generic("a negative version"))?);
    let body = row.try_get("body").map_err(failed)?;
    Ok((row.try_get("key").map_err(failed)?, Entry { body, version }))
}

fn count(row: &SqliteRow) -> Result<Count, StoreError> {
    let count: i64 = row.try_get("count").map_err(failed)?;
    Ok(Count {
        count: u32::try_from(count).unwrap_or(u32::MAX),
        window_ends: Timestamp::from_millis(row.try_get("window_ends").map_err(failed)?),
    })
}

impl SqliteEntries {
    /// Opens (creating) the file at `path` in WAL mode and creates the tables.
    ///
    /// # Errors
    /// The file cannot be opened or the tables created.
    pub async fn open(path: &Path) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePool::connect_with(options).await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        Ok(Self { pool })
    }

    /// Applies one change in `tx`: `None` if its entry does not meet `expected`, else
    /// whether its unique terms were free. The entry is deleted (its terms with it) and
    /// written again; a change that does not go through rolls the whole transaction back.
    async fn apply(tx: &mut SqliteConnection, change: &Change) -> Result<Option<bool>, StoreError> {
        let kind = change.kind.as_str();
        let current: Option<i64> = sqlx::query_scalar(
            "DELETE FROM entries WHERE kind = ?1 AND key = ?2 RETURNING version",
        )
        .bind(kind)
        .bind(&change.key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(failed)?;
        let current = current
            .and_then(|v| u64::try_from(v).ok())
            .map(Version::new);
        if !change.expected.admits(current) {
            return Ok(None);
        }
        let Some(next) = &change.next else {
            return Ok(Some(true));
        };
        let version = current.map_or(Version::FIRST, Version::next).get();
        sqlx::query(
            "INSERT INTO entries (kind, key, version, body, expires_at, due_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(kind)
        .bind(&change.key)
        .bind(i64::try_from(version).unwrap_or(i64::MAX))
        .bind(&next.body)
        .bind(next.expires_at.map(Timestamp::as_millis))
        .bind(next.due_at.map(Timestamp::as_millis))
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
        for term in &next.terms {
            // A plain INSERT: `OR IGNORE` would drop a taken term, `OR REPLACE` would take it
            // from the entry that has it — either way two entries would share it.
            let inserted = sqlx::query(
                "INSERT INTO entry_terms (kind, key, term, is_unique) VALUES (?1, ?2, ?3, ?4)",
            )
            .bind(kind)
            .bind(&change.key)
            .bind(&term.text)
            .bind(term.unique)
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {}
                Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                    return Ok(Some(false))
                }
                Err(error) => return Err(failed(error)),
            }
        }
        Ok(Some(true))
    }
}

#[async_trait]
impl EntryStore for SqliteEntries {
    async fn entry(&self, kind: EntryKind, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        let row =
            sqlx::query("SELECT key, version, body FROM entries WHERE kind = ?1 AND key = ?2")
                .bind(kind.as_str())
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(failed)?;
        Ok(row.as_ref().map(entry).transpose()?.map(|(_, entry)| entry))
    }

    async fn entries_with(
        &self,
        kind: EntryKind,
        term: &str,
    ) -> Result<Vec<(Vec<u8>, Entry)>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.key, e.version, e.body FROM entry_terms t
               JOIN entries e ON e.kind = t.kind AND e.key = t.key
              WHERE t.kind = ?1 AND t.term = ?2",
        )
        .bind(kind.as_str())
        .bind(term)
        .fetch_all(&self.pool)
        .await
        .map_err(failed)?;
        rows.iter().map(entry).collect()
    }

    async fn due_entries(
        &self,
        kind: EntryKind,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Entry)>, StoreError> {
        let rows = sqlx::query(
            "SELECT key, version, body FROM entries
              WHERE kind = ?1 AND due_at <= ?2 ORDER BY due_at LIMIT ?3",
        )
        .bind(kind.as_str())
        .bind(now.as_millis())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(failed)?;
        rows.iter().map(entry).collect()
    }

    async fn commit(&self, changes: &[Change]) -> Result<Commit, StoreError> {
        // The write lock from the first statement: nothing comes between read and write.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(failed)?;
        for change in changes {
            match Self::apply(&mut tx, change).await? {
                Some(true) => {}
                // Dropped without a commit, the transaction rolls back.
                Some(false) => return Ok(Commit::Taken),
                None => return Ok(Commit::Conflict),
            }
        }
        tx.commit().await.map_err(failed)?;
        Ok(Commit::Written)
    }

    async fn purge_entries(&self, kind: EntryKind, now: Timestamp) -> Result<u64, StoreError> {
        // Their terms go with them (ON DELETE CASCADE).
        let purged = sqlx::query("DELETE FROM entries WHERE kind = ?1 AND expires_at <= ?2")
            .bind(kind.as_str())
            .bind(now.as_millis())
            .execute(&self.pool)
            .await
            .map_err(failed)?;
        Ok(purged.rows_affected())
    }

    async fn increment(
        &self,
        key: &CounterKey,
        now: Timestamp,
        window: Duration,
    ) -> Result<Count, StoreError> {
        let row = sqlx::query(
            "INSERT INTO counters (key, subject, count, window_ends) VALUES (?1, ?2, 1, ?3 + ?4)
             ON CONFLICT (key) DO UPDATE
                SET count = CASE WHEN window_ends <= ?3 THEN 1 ELSE count + 1 END,
                    window_ends = CASE WHEN window_ends <= ?3 THEN excluded.window_ends
                                       ELSE window_ends END
             RETURNING count, window_ends",
        )
        .bind(key.as_str())
        .bind(key.subject())
        .bind(now.as_millis())
        .bind(i64::try_from(window.as_millis()).unwrap_or(i64::MAX))
        .fetch_one(&self.pool)
        .await
        .map_err(failed)?;
        count(&row)
    }

    async fn reset(&self, key: &CounterKey) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM counters WHERE key = ?1")
            .bind(key.as_str())
            .execute(&self.pool)
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn purge_counters(&self, now: Timestamp) -> Result<u64, StoreError> {
        let purged = sqlx::query("DELETE FROM counters WHERE window_ends <= ?1")
            .bind(now.as_millis())
            .execute(&self.pool)
            .await
            .map_err(failed)?;
        Ok(purged.rows_affected())
    }

    async fn counters_about(
        &self,
        subjects: &[String],
    ) -> Result<Vec<(CounterKey, Count)>, StoreError> {
        let lacks_subject = || StoreError::generic("a counter's key lacks its subject");
        let mut found = Vec::new();
        for subject in subjects {
            let rows =
                sqlx::query("SELECT key, count, window_ends FROM counters WHERE subject = ?1")
                    .bind(subject)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(failed)?;
            for row in &rows {
                let key =
                    CounterKey::from_stored(row.try_get("key").map_err(failed)?, subject.clone());
                found.push((key.ok_or_else(lacks_subject)?, count(row)?));
            }
        }
        Ok(found)
    }
}
