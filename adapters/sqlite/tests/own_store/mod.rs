//! The store an embedder writes from `docs/stores.md`: one [`EntryStore`] on SQLite with
//! `sqlx` alone — three tables, eight required methods — made a whole store by
//! `Encoded::new(SqliteEntries::open(path).await?)`. It uses nothing of
//! resident-auth-sqlite; `tests/entry_store.rs` runs the conformance suite on it.
#![allow(dead_code)]

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

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS entries (
    kind TEXT NOT NULL, key BLOB NOT NULL, version INTEGER NOT NULL, body BLOB NOT NULL,
    expires_at INTEGER, due_at INTEGER, PRIMARY KEY (kind, key));
CREATE INDEX IF NOT EXISTS entries_due ON entries (kind, due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_expiry ON entries (kind, expires_at)
    WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS entry_terms (
    kind TEXT NOT NULL, key BLOB NOT NULL, term TEXT NOT NULL, is_unique INTEGER NOT NULL);
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

/// A failure of the database: the file, the pool or a lock held too long — worth a retry —
/// unless a value read back is not what was written.
fn failed(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => StoreError::generic(error),
        other => StoreError::unavailable(other),
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn entry(row: &SqliteRow) -> Result<(Vec<u8>, Entry), StoreError> {
    let version: i64 = row.try_get("version").map_err(failed)?;
    let version = u64::try_from(version).map_err(|_| StoreError::generic("a negative version"))?;
    Ok((
        row.try_get("key").map_err(failed)?,
        Entry {
            body: row.try_get("body").map_err(failed)?,
            version: Version::new(version),
        },
    ))
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
    pub async fn open(path: &Path) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePool::connect_with(options).await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        Ok(Self { pool })
    }

    /// Applies one change in `tx`: `None` if its entry does not meet `expected`, else
    /// whether its terms were free.
    async fn apply(tx: &mut SqliteConnection, change: &Change) -> Result<Option<bool>, StoreError> {
        let kind = change.kind.as_str();
        let current: Option<i64> =
            sqlx::query_scalar("SELECT version FROM entries WHERE kind = ?1 AND key = ?2")
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
        sqlx::query("DELETE FROM entry_terms WHERE kind = ?1 AND key = ?2")
            .bind(kind)
            .bind(&change.key)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        let Some(next) = &change.next else {
            sqlx::query("DELETE FROM entries WHERE kind = ?1 AND key = ?2")
                .bind(kind)
                .bind(&change.key)
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            return Ok(Some(true));
        };
        let version = current.map_or(Version::FIRST, Version::next).get();
        sqlx::query(
            "INSERT INTO entries (kind, key, version, body, expires_at, due_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (kind, key) DO UPDATE SET version = excluded.version,
                body = excluded.body, expires_at = excluded.expires_at, due_at = excluded.due_at",
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
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(failed)?;
        sqlx::query(
            "DELETE FROM entry_terms WHERE kind = ?1 AND key IN
                (SELECT key FROM entries WHERE kind = ?1 AND expires_at <= ?2)",
        )
        .bind(kind.as_str())
        .bind(now.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
        let purged = sqlx::query("DELETE FROM entries WHERE kind = ?1 AND expires_at <= ?2")
            .bind(kind.as_str())
            .bind(now.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(failed)?
            .rows_affected();
        tx.commit().await.map_err(failed)?;
        Ok(purged)
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
        .bind(millis(window))
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
        let mut found = Vec::new();
        for subject in subjects {
            let rows =
                sqlx::query("SELECT key, count, window_ends FROM counters WHERE subject = ?1")
                    .bind(subject)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(failed)?;
            for row in &rows {
                let key: String = row.try_get("key").map_err(failed)?;
                let key = CounterKey::from_stored(key, subject.clone())
                    .ok_or_else(|| StoreError::generic("a counter's key lacks its subject"))?;
                found.push((key, count(row)?));
            }
        }
        Ok(found)
    }
}
