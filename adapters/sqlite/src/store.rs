//! The store on SQLite: the five storage traits of [`resident_auth::ports`]. A read is one
//! statement; a conditional write is a `BEGIN IMMEDIATE` transaction that reads the
//! record's version, compares it and writes (SQLite has one writer at a time, so nothing
//! can come between the read and the write); a link or cabinet write that queues a letter
//! inserts it in the same transaction (the transactional outbox).

use std::{fmt, time::Duration};

use async_trait::async_trait;
use resident_auth::{
    letters::LetterKind,
    mail::{LetterId, LetterStatus, QueuedLetter, SealedLetter},
    ports::{
        Cabinet, CabinetKey, CabinetSnapshot, CabinetStore, CabinetSwap, Count, CounterKey,
        CounterStore, Expected, HashedPassword, LetterStore, Link, LinkAdvance, LinkPurpose,
        LinkStore, Session, SessionStore, Store, StoreError, TokenHash, Version, Versioned,
    },
    AccountNumber, CabinetId, Email, SessionId, Timestamp,
};
use sqlx::{sqlite::SqliteRow, Row, Sqlite, SqliteConnection, SqlitePool, Transaction};

use crate::{is_unique_violation, store_error};

mod composite;
mod reader;
pub(crate) use reader::close_readers;
mod letters;
mod links_and_cabinets;
mod sessions_and_counters;

/// The [`Store`] on SQLite. Cheap to clone (it shares the pool).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The session check's readers (`store/reader.rs`); `None` in memory.
    readers: Option<std::sync::Arc<reader::Readers>>,
}

impl SqliteStore {
    /// A store over a database opened by [`crate::open`] (or migrated by
    /// [`crate::migrate`]).
    #[must_use]
    pub fn new(pool: SqlitePool) -> Self {
        let readers = reader::Readers::of(&pool);
        Self { pool, readers }
    }

    /// The pool, for hosts that share it.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A write transaction that holds the write lock from its first statement; dropped
    /// without a commit, it rolls back.
    /// After a committed erasure (a cabinet or a letter deleted): the write-ahead log is
    /// copied into the file — whose freed space `secure_delete` has zeroed — and truncated,
    /// so that no older copy of the erased rows stays in either (docs/security.md, "What
    /// the files keep"). Best effort: a checkpoint that readers hold up is finished by a
    /// later erasure, SQLite's own checkpoints or [`crate::close`].
    pub(crate) async fn forget_erased(&self) {
        if let Err(error) = crate::checkpoint_truncate(&self.pool).await {
            tracing::warn!(%error, "the write-ahead log could not be truncated after an erasure");
        }
    }

    async fn write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(store_error)
    }

    /// Deletes the rows of `table` whose `column` is at or before `now`, at most
    /// [`PURGE_BATCH`] rows per statement, so a backlog of any size never holds the write
    /// lock long. Returns how many went.
    async fn purge_in_batches(
        &self,
        table: &'static str,
        column: &'static str,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let statement = format!(
            "DELETE FROM {table} WHERE rowid IN
                 (SELECT rowid FROM {table} WHERE {column} <= ?1 LIMIT ?2)"
        );
        let mut purged = 0;
        loop {
            let deleted = sqlx::query(&statement)
                .bind(now.as_millis())
                .bind(PURGE_BATCH)
                .execute(&self.pool)
                .await
                .map_err(store_error)?
                .rows_affected();
            purged += deleted;
            if deleted < PURGE_BATCH as u64 {
                return Ok(purged);
            }
        }
    }
}

/// Rows one purge statement deletes at most.
const PURGE_BATCH: i64 = 10_000;

/// The version of the row of `table` whose `key` column is `value`, read in `tx`.
async fn version_of(
    tx: &mut SqliteConnection,
    table: &'static str,
    key: &'static str,
    value: &[u8],
) -> Result<Option<Version>, StoreError> {
    let version: Option<i64> =
        sqlx::query_scalar(&format!("SELECT version FROM {table} WHERE {key} = ?1"))
            .bind(value)
            .fetch_optional(tx)
            .await
            .map_err(store_error)?;
    version
        .map(|version| {
            u64::try_from(version)
                .map(Version::new)
                .map_err(|_| corrupt("version"))
        })
        .transpose()
}

/// The version a record gets when written over `current` (`None`: absent).
fn next_version(current: Option<Version>) -> i64 {
    stored_version(current.map_or(Version::FIRST, Version::next))
}

fn stored_version(version: Version) -> i64 {
    i64::try_from(version.get()).unwrap_or(i64::MAX)
}

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::generic(format!("unexpected value in the database: {what}"))
}

/// A row of either driver read by column name, so that one decoder serves the pool's rows
/// (sqlx) and the session check's (rusqlite, `reader.rs`).
trait Columns {
    fn integer(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn string(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn blob(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError>;
}

impl Columns for SqliteRow {
    fn integer(&self, column: &str) -> Result<Option<i64>, StoreError> {
        self.try_get(column).map_err(store_error)
    }
    fn string(&self, column: &str) -> Result<Option<String>, StoreError> {
        self.try_get(column).map_err(store_error)
    }
    fn blob(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.try_get(column).map_err(store_error)
    }
}

fn text(row: &impl Columns, column: &str) -> Result<String, StoreError> {
    row.string(column)?.ok_or_else(|| corrupt(column))
}

fn optional_text(row: &impl Columns, column: &str) -> Result<Option<String>, StoreError> {
    row.string(column)
}

fn unsigned(row: &impl Columns, column: &str) -> Result<u64, StoreError> {
    let value = row.integer(column)?.ok_or_else(|| corrupt(column))?;
    u64::try_from(value).map_err(|_| corrupt(column))
}

fn version(row: &impl Columns, column: &str) -> Result<Version, StoreError> {
    unsigned(row, column).map(Version::new)
}

fn timestamp(row: &impl Columns, column: &str) -> Result<Timestamp, StoreError> {
    let millis = row.integer(column)?.ok_or_else(|| corrupt(column))?;
    Ok(Timestamp::from_millis(millis))
}

fn optional_timestamp(row: &impl Columns, column: &str) -> Result<Option<Timestamp>, StoreError> {
    Ok(row.integer(column)?.map(Timestamp::from_millis))
}

fn bytes16(row: &impl Columns, column: &str) -> Result<[u8; 16], StoreError> {
    let bytes = row.blob(column)?.ok_or_else(|| corrupt(column))?;
    bytes.try_into().map_err(|_| corrupt(column))
}

fn optional_bytes16(row: &impl Columns, column: &str) -> Result<Option<[u8; 16]>, StoreError> {
    row.blob(column)?
        .map(|bytes| bytes.try_into().map_err(|_| corrupt(column)))
        .transpose()
}

fn token_hash(row: &SqliteRow) -> Result<TokenHash, StoreError> {
    let bytes: Vec<u8> = row.try_get("token_hash").map_err(store_error)?;
    Ok(TokenHash::from_bytes(
        bytes.try_into().map_err(|_| corrupt("token_hash"))?,
    ))
}

fn email(text: &str) -> Result<Email, StoreError> {
    text.parse().map_err(|_| corrupt("email"))
}

fn account(text: &str) -> Result<AccountNumber, StoreError> {
    text.parse().map_err(|_| corrupt("account_number"))
}

/// A JSON array of strings, for `json_each(?)`: one parameter for a list of any length.
fn json_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    serde_json::Value::from(items.into_iter().collect::<Vec<_>>()).to_string()
}

const LINK_COLUMNS: &str =
    "purpose, email, account_number, cabinet_id, credential_version, expires_at, issuing_until, version";

fn link_from_row(row: &SqliteRow) -> Result<Versioned<Link>, StoreError> {
    let purpose = text(row, "purpose")?;
    let credential_version: Option<i64> = row.try_get("credential_version").map_err(store_error)?;
    Ok(Versioned {
        value: Link {
            purpose: LinkPurpose::from_name(&purpose).ok_or_else(|| corrupt("purpose"))?,
            email: email(&text(row, "email")?)?,
            account_number: optional_text(row, "account_number")?
                .as_deref()
                .map(account)
                .transpose()?,
            cabinet: optional_bytes16(row, "cabinet_id")?.map(CabinetId::from_bytes),
            credential_version: credential_version
                .map(|v| u64::try_from(v).map_err(|_| corrupt("credential_version")))
                .transpose()?,
            expires_at: timestamp(row, "expires_at")?,
            issuing_until: optional_timestamp(row, "issuing_until")?,
        },
        version: version(row, "version")?,
    })
}

/// Inserts `link` under `token` at `version`.
async fn insert_link(
    tx: &mut SqliteConnection,
    token: &TokenHash,
    link: &Link,
    version: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO resident_auth_links (token_hash, {LINK_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    ))
    .bind(token.as_bytes().as_slice())
    .bind(link.purpose.as_str())
    .bind(link.email.as_str())
    .bind(link.account_number.as_ref().map(AccountNumber::as_str))
    .bind(link.cabinet.as_ref().map(|id| id.as_bytes().as_slice()))
    .bind(link.credential_version.map(signed))
    .bind(link.expires_at.as_millis())
    .bind(link.issuing_until.map(Timestamp::as_millis))
    .bind(version)
    .execute(tx)
    .await
    .map(|_| ())
}

const LETTER_COLUMNS: &str = "id, recipient, cabinet_id, kind, sealed, status, attempts, queued_at,
     next_attempt_at, give_up_at, keep_until, last_error, version";

/// Inserts `letter` at `version` (a queued letter: in the transaction of the write that
/// needs it). A letter whose id is taken breaks the primary key.
async fn insert_letter(
    tx: &mut SqliteConnection,
    letter: &QueuedLetter,
    version: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO resident_auth_letters ({LETTER_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    ))
    .bind(letter.id.as_bytes().as_slice())
    .bind(letter.to.as_str())
    .bind(letter.cabinet.as_ref().map(|id| id.as_bytes().as_slice()))
    .bind(letter.kind.as_str())
    .bind(letter.sealed.as_ref().map(SealedLetter::as_bytes))
    .bind(letter.status.as_str())
    .bind(i64::from(letter.attempts))
    .bind(letter.queued_at.as_millis())
    .bind(letter.next_attempt_at.as_millis())
    .bind(letter.give_up_at.as_millis())
    .bind(letter.keep_until.map(Timestamp::as_millis))
    .bind(letter.last_error.as_deref())
    .bind(version)
    .execute(tx)
    .await
    .map(|_| ())
}

/// Queues `letter` (if any) in `tx`: whether it went in (`false`: its id is taken, and the
/// caller drops the transaction, undoing the write that needed it).
async fn queue(
    tx: &mut SqliteConnection,
    letter: Option<&QueuedLetter>,
) -> Result<bool, StoreError> {
    let Some(letter) = letter else {
        return Ok(true);
    };
    match insert_letter(tx, letter, stored_version(Version::FIRST)).await {
        Ok(()) => Ok(true),
        Err(error) if is_unique_violation(&error) => Ok(false),
        Err(error) => Err(store_error(error)),
    }
}

fn letter_from_row(row: &SqliteRow) -> Result<Versioned<QueuedLetter>, StoreError> {
    let kind = text(row, "kind")?;
    let status = text(row, "status")?;
    let sealed: Option<Vec<u8>> = row.try_get("sealed").map_err(store_error)?;
    Ok(Versioned {
        value: QueuedLetter {
            id: LetterId::from_bytes(bytes16(row, "id")?),
            to: email(&text(row, "recipient")?)?,
            cabinet: optional_bytes16(row, "cabinet_id")?.map(CabinetId::from_bytes),
            kind: LetterKind::from_name(&kind).ok_or_else(|| corrupt("letters.kind"))?,
            sealed: sealed.map(SealedLetter::from_bytes),
            status: LetterStatus::from_name(&status).ok_or_else(|| corrupt("letters.status"))?,
            attempts: u32::try_from(unsigned(row, "attempts")?)
                .map_err(|_| corrupt("letters.attempts"))?,
            queued_at: timestamp(row, "queued_at")?,
            next_attempt_at: timestamp(row, "next_attempt_at")?,
            give_up_at: timestamp(row, "give_up_at")?,
            keep_until: optional_timestamp(row, "keep_until")?,
            last_error: optional_text(row, "last_error")?,
        },
        version: version(row, "version")?,
    })
}

/// A cabinet's columns, its accounts in order as one comma list.
const CABINET_COLUMNS: &str =
    "c.id, c.email, c.password_hash, c.credential_version, c.password_expires_at,
     c.version AS cabinet_version,
     (SELECT group_concat(account_number, ',' ORDER BY position)
        FROM resident_auth_cabinet_accounts WHERE cabinet_id = c.id) AS accounts";

fn cabinet_from_row(row: &impl Columns) -> Result<Versioned<Cabinet>, StoreError> {
    let accounts = optional_text(row, "accounts")?.unwrap_or_default();
    Ok(Versioned {
        value: Cabinet {
            id: CabinetId::from_bytes(bytes16(row, "id")?),
            email: email(&text(row, "email")?)?,
            password_hash: HashedPassword::from_phc(text(row, "password_hash")?),
            credential_version: unsigned(row, "credential_version")?,
            accounts: accounts
                .split(',')
                .filter(|number| !number.is_empty())
                .map(account)
                .collect::<Result<_, _>>()?,
            password_expires_at: optional_timestamp(row, "password_expires_at")?,
        },
        version: version(row, "cabinet_version")?,
    })
}

const SESSION_COLUMNS: &str = "s.session_id, s.cabinet_id, s.credential_version AS session_credential_version,
     s.active_account, s.created_at, s.last_used, s.expires_at, s.client, s.version AS session_version";

fn session_from_row(row: &impl Columns) -> Result<Versioned<Session>, StoreError> {
    Ok(Versioned {
        value: Session {
            id: SessionId::from_bytes(bytes16(row, "session_id")?),
            cabinet: CabinetId::from_bytes(bytes16(row, "cabinet_id")?),
            credential_version: unsigned(row, "session_credential_version")?,
            active_account: optional_text(row, "active_account")?
                .as_deref()
                .map(account)
                .transpose()?,
            created_at: timestamp(row, "created_at")?,
            last_used: timestamp(row, "last_used")?,
            expires_at: timestamp(row, "expires_at")?,
            client: optional_text(row, "client")?,
        },
        version: version(row, "session_version")?,
    })
}

fn count_from_row(row: &SqliteRow) -> Result<Count, StoreError> {
    Ok(Count {
        count: u32::try_from(unsigned(row, "count")?).unwrap_or(u32::MAX),
        window_ends: timestamp(row, "window_ends")?,
    })
}

/// One counter counted, in whatever transaction (or none) `executor` is.
async fn increment_on(
    executor: &mut SqliteConnection,
    key: &CounterKey,
    now: Timestamp,
    window: Duration,
) -> Result<Count, StoreError> {
    let row = sqlx::query(
        "INSERT INTO resident_auth_counters (key, subject, count, window_ends)
              VALUES (?1, ?4, 1, ?3 + ?2)
         ON CONFLICT (key) DO UPDATE
            SET count = CASE WHEN window_ends <= ?3 THEN 1 ELSE count + 1 END,
                window_ends = CASE WHEN window_ends <= ?3 THEN excluded.window_ends
                                   ELSE window_ends END
         RETURNING count, window_ends",
    )
    .bind(key.as_str())
    .bind(millis(window))
    .bind(now.as_millis())
    .bind(key.subject())
    .fetch_one(executor)
    .await
    .map_err(store_error)?;
    count_from_row(&row)
}
