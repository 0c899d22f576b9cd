//! The store on SQLite: the five storage traits of [`resident_auth::ports`]. A read is one
//! statement; a conditional write is a `BEGIN IMMEDIATE` transaction that reads the
//! record's version, compares it and writes (SQLite has one writer at a time, so nothing
//! can come between the read and the write); a link or cabinet write that queues a letter
//! inserts it in the same transaction (the transactional outbox).

use std::time::Duration;

use async_trait::async_trait;
use resident_auth::{
    letters::LetterKind,
    mail_queue::{LetterId, LetterStatus, QueuedLetter, SealedLetter},
    ports::{
        Cabinet, CabinetKey, CabinetStore, CabinetSwap, Count, CounterKey, CounterStore, Expected,
        HashedPassword, LetterStore, Link, LinkAdvance, LinkPurpose, LinkStore, Session,
        SessionStore, Store, StoreError, TokenHash, Version, Versioned,
    },
    AccountNumber, CabinetId, Email, SessionId, Timestamp,
};
use sqlx::{sqlite::SqliteRow, Row, Sqlite, SqliteConnection, SqlitePool, Transaction};

use crate::{is_unique_violation, store_error};

/// The [`Store`] on SQLite. Cheap to clone (it shares the pool).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// A store over a database opened by [`crate::open`] (or migrated by
    /// [`crate::migrate`]).
    #[must_use]
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// The pool, for hosts that share it.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A write transaction that holds the write lock from its first statement; dropped
    /// without a commit, it rolls back.
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

fn text(row: &SqliteRow, column: &str) -> Result<String, StoreError> {
    row.try_get(column).map_err(store_error)
}

fn optional_text(row: &SqliteRow, column: &str) -> Result<Option<String>, StoreError> {
    row.try_get(column).map_err(store_error)
}

fn unsigned(row: &SqliteRow, column: &str) -> Result<u64, StoreError> {
    let value: i64 = row.try_get(column).map_err(store_error)?;
    u64::try_from(value).map_err(|_| corrupt(column))
}

fn version(row: &SqliteRow, column: &str) -> Result<Version, StoreError> {
    unsigned(row, column).map(Version::new)
}

fn timestamp(row: &SqliteRow, column: &str) -> Result<Timestamp, StoreError> {
    Ok(Timestamp::from_millis(
        row.try_get(column).map_err(store_error)?,
    ))
}

fn optional_timestamp(row: &SqliteRow, column: &str) -> Result<Option<Timestamp>, StoreError> {
    Ok(row
        .try_get::<Option<i64>, _>(column)
        .map_err(store_error)?
        .map(Timestamp::from_millis))
}

fn bytes16(row: &SqliteRow, column: &str) -> Result<[u8; 16], StoreError> {
    let bytes: Vec<u8> = row.try_get(column).map_err(store_error)?;
    bytes.try_into().map_err(|_| corrupt(column))
}

fn optional_bytes16(row: &SqliteRow, column: &str) -> Result<Option<[u8; 16]>, StoreError> {
    let bytes: Option<Vec<u8>> = row.try_get(column).map_err(store_error)?;
    bytes
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

fn cabinet_from_row(row: &SqliteRow) -> Result<Versioned<Cabinet>, StoreError> {
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

fn session_from_row(row: &SqliteRow) -> Result<Versioned<Session>, StoreError> {
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
        "INSERT INTO resident_auth_counters (key, count, window_ends) VALUES (?1, 1, ?3 + ?2)
         ON CONFLICT (key) DO UPDATE
            SET count = CASE WHEN window_ends <= ?3 THEN 1 ELSE count + 1 END,
                window_ends = CASE WHEN window_ends <= ?3 THEN excluded.window_ends
                                   ELSE window_ends END
         RETURNING count, window_ends",
    )
    .bind(key.as_str())
    .bind(millis(window))
    .bind(now.as_millis())
    .fetch_one(executor)
    .await
    .map_err(store_error)?;
    count_from_row(&row)
}

#[async_trait]
impl LinkStore for SqliteStore {
    #[tracing::instrument(name = "sqlite.link", skip_all, err(level = "debug", Display))]
    async fn link(&self, token: &TokenHash) -> Result<Option<Versioned<Link>>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {LINK_COLUMNS} FROM resident_auth_links WHERE token_hash = ?1"
        ))
        .bind(token.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.as_ref().map(link_from_row).transpose()
    }

    #[tracing::instrument(name = "sqlite.swap_link", skip_all, err(level = "debug", Display))]
    async fn swap_link(
        &self,
        token: &TokenHash,
        expected: Expected,
        next: Option<(&TokenHash, &Link)>,
        letter: Option<&QueuedLetter>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let current = version_of(
            &mut tx,
            "resident_auth_links",
            "token_hash",
            token.as_bytes(),
        )
        .await?;
        if !expected.admits(current) {
            return Ok(false);
        }
        if let Some((next_token, _)) = next {
            if next_token != token
                && version_of(
                    &mut tx,
                    "resident_auth_links",
                    "token_hash",
                    next_token.as_bytes(),
                )
                .await?
                .is_some()
            {
                return Ok(false);
            }
        }
        sqlx::query("DELETE FROM resident_auth_links WHERE token_hash = ?1")
            .bind(token.as_bytes().as_slice())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        if let Some((next_token, link)) = next {
            insert_link(&mut tx, next_token, link, next_version(current))
                .await
                .map_err(store_error)?;
        }
        if !queue(&mut tx, letter).await? {
            return Ok(false);
        }
        tx.commit().await.map_err(store_error)?;
        Ok(true)
    }

    #[tracing::instrument(name = "sqlite.purge_links", skip_all, err(level = "debug", Display))]
    async fn purge_links(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.purge_in_batches("resident_auth_links", "expires_at", now)
            .await
    }

    /// One statement, by the email and account indexes.
    #[tracing::instrument(name = "sqlite.links_about", skip_all, err(level = "debug", Display))]
    async fn links_about(
        &self,
        email: Option<&Email>,
        accounts: &[AccountNumber],
    ) -> Result<Vec<(TokenHash, Versioned<Link>)>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT token_hash, {LINK_COLUMNS} FROM resident_auth_links
              WHERE email = ?1 OR account_number IN (SELECT value FROM json_each(?2))"
        ))
        .bind(email.map(Email::as_str))
        .bind(json_list(accounts.iter().map(AccountNumber::as_str)))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter()
            .map(|row| Ok((token_hash(row)?, link_from_row(row)?)))
            .collect()
    }
}

#[async_trait]
impl CabinetStore for SqliteStore {
    #[tracing::instrument(name = "sqlite.cabinet", skip_all, err(level = "debug", Display))]
    async fn cabinet(&self, key: CabinetKey<'_>) -> Result<Option<Versioned<Cabinet>>, StoreError> {
        let (condition, id, text): (&str, Option<&[u8]>, Option<&str>) = match key {
            CabinetKey::Id(id) => ("c.id = ?1", Some(id.as_bytes().as_slice()), None),
            CabinetKey::Email(email) => ("c.email = ?2", None, Some(email.as_str())),
            CabinetKey::Account(account) => (
                "c.id = (SELECT cabinet_id FROM resident_auth_cabinet_accounts
                          WHERE account_number = ?2)",
                None,
                Some(account.as_str()),
            ),
            _ => return Err(StoreError::generic("unsupported cabinet key")),
        };
        let row = sqlx::query(&format!(
            "SELECT {CABINET_COLUMNS} FROM resident_auth_cabinets c WHERE {condition}"
        ))
        .bind(id)
        .bind(text)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.as_ref().map(cabinet_from_row).transpose()
    }

    #[tracing::instrument(name = "sqlite.swap_cabinet", skip_all, err(level = "debug", Display))]
    async fn swap_cabinet(
        &self,
        id: &CabinetId,
        expected: Expected,
        next: Option<&Cabinet>,
        letter: Option<&QueuedLetter>,
    ) -> Result<CabinetSwap, StoreError> {
        let id_bytes = id.as_bytes().as_slice();
        let mut tx = self.write().await?;
        let current = version_of(&mut tx, "resident_auth_cabinets", "id", id_bytes).await?;
        if !expected.admits(current) {
            return Ok(CabinetSwap::Conflict);
        }
        let Some(next) = next else {
            // Its accounts, links and sessions go with it (foreign keys, ON DELETE CASCADE).
            sqlx::query("DELETE FROM resident_auth_cabinets WHERE id = ?1")
                .bind(id_bytes)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            if !queue(&mut tx, letter).await? {
                return Ok(CabinetSwap::Conflict);
            }
            tx.commit().await.map_err(store_error)?;
            return Ok(CabinetSwap::Written);
        };
        let accounts = json_list(next.accounts.iter().map(AccountNumber::as_str));
        let taken: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM resident_auth_cabinets WHERE email = ?2 AND id <> ?1)
                 OR EXISTS (SELECT 1 FROM resident_auth_cabinet_accounts
                             WHERE account_number IN (SELECT value FROM json_each(?3))
                               AND cabinet_id <> ?1)",
        )
        .bind(id_bytes)
        .bind(next.email.as_str())
        .bind(&accounts)
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        if taken {
            return Ok(CabinetSwap::Taken);
        }
        let written = sqlx::query(
            "INSERT INTO resident_auth_cabinets
                 (id, email, password_hash, credential_version, password_expires_at, version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO UPDATE
                SET email = ?2, password_hash = ?3, credential_version = ?4,
                    password_expires_at = ?5, version = ?6",
        )
        .bind(id_bytes)
        .bind(next.email.as_str())
        .bind(next.password_hash.as_phc())
        .bind(signed(next.credential_version))
        .bind(next.password_expires_at.map(Timestamp::as_millis))
        .bind(next_version(current))
        .execute(&mut *tx)
        .await;
        match written {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => return Ok(CabinetSwap::Taken),
            Err(error) => return Err(store_error(error)),
        }
        // The accounts as listed, in order: those that left go, the rest are (re)written.
        sqlx::query(
            "DELETE FROM resident_auth_cabinet_accounts
              WHERE cabinet_id = ?1 AND account_number NOT IN (SELECT value FROM json_each(?2))",
        )
        .bind(id_bytes)
        .bind(&accounts)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        let placed = sqlx::query(
            "INSERT INTO resident_auth_cabinet_accounts (account_number, cabinet_id, position)
             SELECT value, ?1, key + 1 FROM json_each(?2) WHERE true
             ON CONFLICT (account_number) DO UPDATE SET position = excluded.position",
        )
        .bind(id_bytes)
        .bind(&accounts)
        .execute(&mut *tx)
        .await;
        match placed {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => return Ok(CabinetSwap::Taken),
            Err(error) => return Err(store_error(error)),
        }
        if !queue(&mut tx, letter).await? {
            return Ok(CabinetSwap::Conflict);
        }
        tx.commit().await.map_err(store_error)?;
        Ok(CabinetSwap::Written)
    }
}

#[async_trait]
impl LetterStore for SqliteStore {
    /// One transaction: the due letters, earliest first, moved to the end of the claim.
    /// SQLite's single writer means no other claim runs meanwhile.
    #[tracing::instrument(name = "sqlite.claim_letters", skip_all, err(level = "debug", Display))]
    async fn claim_letters(
        &self,
        now: Timestamp,
        claim_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<QueuedLetter>>, StoreError> {
        let mut tx = self.write().await?;
        let rows = sqlx::query(&format!(
            "SELECT {LETTER_COLUMNS} FROM resident_auth_letters
              WHERE status = 'queued' AND next_attempt_at <= ?1
              ORDER BY next_attempt_at LIMIT ?2"
        ))
        .bind(now.as_millis())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await
        .map_err(store_error)?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut letter = letter_from_row(row)?;
            letter.value.next_attempt_at = claim_until;
            letter.version = letter.version.next();
            sqlx::query(
                "UPDATE resident_auth_letters SET next_attempt_at = ?2, version = ?3 WHERE id = ?1",
            )
            .bind(letter.value.id.as_bytes().as_slice())
            .bind(claim_until.as_millis())
            .bind(stored_version(letter.version))
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
            claimed.push(letter);
        }
        tx.commit().await.map_err(store_error)?;
        Ok(claimed)
    }

    #[tracing::instrument(name = "sqlite.swap_letter", skip_all, err(level = "debug", Display))]
    async fn swap_letter(
        &self,
        id: &LetterId,
        expected: Expected,
        next: Option<&QueuedLetter>,
    ) -> Result<bool, StoreError> {
        if next.is_some_and(|letter| letter.id != *id) {
            return Err(StoreError::generic(
                "a letter is swapped under its own id only",
            ));
        }
        let id_bytes = id.as_bytes().as_slice();
        let mut tx = self.write().await?;
        let current = version_of(&mut tx, "resident_auth_letters", "id", id_bytes).await?;
        if !expected.admits(current) {
            return Ok(false);
        }
        sqlx::query("DELETE FROM resident_auth_letters WHERE id = ?1")
            .bind(id_bytes)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        if let Some(letter) = next {
            insert_letter(&mut tx, letter, next_version(current))
                .await
                .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)?;
        Ok(true)
    }

    /// One statement, by the recipient and cabinet indexes.
    #[tracing::instrument(name = "sqlite.letters_about", skip_all, err(level = "debug", Display))]
    async fn letters_about(
        &self,
        email: Option<&Email>,
        cabinet: Option<&CabinetId>,
    ) -> Result<Vec<Versioned<QueuedLetter>>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {LETTER_COLUMNS} FROM resident_auth_letters
              WHERE recipient = ?1 OR cabinet_id = ?2"
        ))
        .bind(email.map(Email::as_str))
        .bind(cabinet.map(|id| id.as_bytes().as_slice()))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(letter_from_row).collect()
    }

    #[tracing::instrument(name = "sqlite.purge_letters", skip_all, err(level = "debug", Display))]
    async fn purge_letters(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.purge_in_batches("resident_auth_letters", "keep_until", now)
            .await
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    #[tracing::instrument(name = "sqlite.session", skip_all, err(level = "debug", Display))]
    async fn session(&self, token: &TokenHash) -> Result<Option<Versioned<Session>>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM resident_auth_sessions s WHERE s.token_hash = ?1"
        ))
        .bind(token.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.as_ref().map(session_from_row).transpose()
    }

    #[tracing::instrument(name = "sqlite.swap_session", skip_all, err(level = "debug", Display))]
    async fn swap_session(
        &self,
        token: &TokenHash,
        expected: Expected,
        next: Option<&Session>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let current = version_of(
            &mut tx,
            "resident_auth_sessions",
            "token_hash",
            token.as_bytes(),
        )
        .await?;
        if !expected.admits(current) {
            return Ok(false);
        }
        let written = match next {
            None => sqlx::query("DELETE FROM resident_auth_sessions WHERE token_hash = ?1")
                .bind(token.as_bytes().as_slice())
                .execute(&mut *tx)
                .await
                .map(|_| ()),
            Some(session) => sqlx::query(
                "INSERT INTO resident_auth_sessions
                     (token_hash, session_id, cabinet_id, credential_version, active_account,
                      created_at, last_used, expires_at, client, version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (token_hash) DO UPDATE
                    SET session_id = ?2, cabinet_id = ?3, credential_version = ?4,
                        active_account = ?5, created_at = ?6, last_used = ?7,
                        expires_at = ?8, client = ?9, version = ?10",
            )
            .bind(token.as_bytes().as_slice())
            .bind(session.id.as_bytes().as_slice())
            .bind(session.cabinet.as_bytes().as_slice())
            .bind(signed(session.credential_version))
            .bind(session.active_account.as_ref().map(AccountNumber::as_str))
            .bind(session.created_at.as_millis())
            .bind(session.last_used.as_millis())
            .bind(session.expires_at.as_millis())
            .bind(session.client.as_deref())
            .bind(next_version(current))
            .execute(&mut *tx)
            .await
            .map(|_| ()),
        };
        match written {
            Ok(()) => {}
            // Another session already has this public id: nothing is written.
            Err(error) if is_unique_violation(&error) => return Ok(false),
            Err(error) => return Err(store_error(error)),
        }
        tx.commit().await.map_err(store_error)?;
        Ok(true)
    }

    #[tracing::instrument(
        name = "sqlite.cabinet_sessions",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn cabinet_sessions(
        &self,
        cabinet: &CabinetId,
    ) -> Result<Vec<(TokenHash, Versioned<Session>)>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT s.token_hash, {SESSION_COLUMNS} FROM resident_auth_sessions s
              WHERE s.cabinet_id = ?1"
        ))
        .bind(cabinet.as_bytes().as_slice())
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter()
            .map(|row| Ok((token_hash(row)?, session_from_row(row)?)))
            .collect()
    }

    #[tracing::instrument(
        name = "sqlite.purge_sessions",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn purge_sessions(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.purge_in_batches("resident_auth_sessions", "expires_at", now)
            .await
    }
}

#[async_trait]
impl CounterStore for SqliteStore {
    /// One statement (an upsert that returns the count).
    #[tracing::instrument(name = "sqlite.increment", skip_all, err(level = "debug", Display))]
    async fn increment(
        &self,
        key: &CounterKey,
        now: Timestamp,
        window: Duration,
    ) -> Result<Count, StoreError> {
        let mut connection = self.pool.acquire().await.map_err(store_error)?;
        increment_on(&mut connection, key, now, window).await
    }

    #[tracing::instrument(name = "sqlite.reset", skip_all, err(level = "debug", Display))]
    async fn reset(&self, key: &CounterKey) -> Result<(), StoreError> {
        self.reset_all(std::slice::from_ref(key)).await
    }

    #[tracing::instrument(
        name = "sqlite.purge_counters",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn purge_counters(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.purge_in_batches("resident_auth_counters", "window_ends", now)
            .await
    }

    /// One statement; it reads every counter (an operator's lookup, not a request's).
    #[tracing::instrument(
        name = "sqlite.counters_about",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn counters_about(
        &self,
        subjects: &[String],
    ) -> Result<Vec<(CounterKey, Count)>, StoreError> {
        let rows = sqlx::query(
            // `c.key`: json_each has a `key` column of its own.
            "SELECT c.key, c.count, c.window_ends FROM resident_auth_counters c
              WHERE EXISTS (SELECT 1 FROM json_each(?1) AS s
                             WHERE substr(c.key, -length(s.value) - 1) = ':' || s.value)",
        )
        .bind(json_list(subjects.iter().map(String::as_str)))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter()
            .map(|row| {
                Ok((
                    CounterKey::from_stored(text(row, "key")?),
                    count_from_row(row)?,
                ))
            })
            .collect()
    }
}

#[async_trait]
impl Store for SqliteStore {
    /// One statement: the session joined with its cabinet.
    #[tracing::instrument(
        name = "sqlite.session_with_cabinet",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn session_with_cabinet(
        &self,
        token: &TokenHash,
    ) -> Result<Option<(Versioned<Session>, Versioned<Cabinet>)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS}, {CABINET_COLUMNS}
               FROM resident_auth_sessions s
               JOIN resident_auth_cabinets c ON c.id = s.cabinet_id
              WHERE s.token_hash = ?1"
        ))
        .bind(token.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some((session_from_row(&row)?, cabinet_from_row(&row)?)))
    }

    /// One transaction: the link moves only if it has the purpose, is live, and the new
    /// token is free.
    #[tracing::instrument(name = "sqlite.advance_link", skip_all, err(level = "debug", Display))]
    async fn advance_link(
        &self,
        token: &TokenHash,
        purpose: LinkPurpose,
        now: Timestamp,
        next_token: &TokenHash,
        next: LinkAdvance,
    ) -> Result<Option<Link>, StoreError> {
        let mut tx = self.write().await?;
        let row = sqlx::query(&format!(
            "DELETE FROM resident_auth_links
              WHERE token_hash = ?1 AND purpose = ?2 AND expires_at > ?3
             RETURNING {LINK_COLUMNS}"
        ))
        .bind(token.as_bytes().as_slice())
        .bind(purpose.as_str())
        .bind(now.as_millis())
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
        let Some(row) = row else { return Ok(None) };
        let current = link_from_row(&row)?;
        let moved = Link {
            purpose: next.purpose,
            expires_at: next.expires_at,
            ..current.value
        };
        match insert_link(
            &mut tx,
            next_token,
            &moved,
            next_version(Some(current.version)),
        )
        .await
        {
            Ok(()) => {}
            // The new token is taken: the delete is undone with the transaction.
            Err(error) if is_unique_violation(&error) => return Ok(None),
            Err(error) => return Err(store_error(error)),
        }
        tx.commit().await.map_err(store_error)?;
        Ok(Some(moved))
    }

    /// One statement for every key.
    #[tracing::instrument(name = "sqlite.reset_all", skip_all, err(level = "debug", Display))]
    async fn reset_all(&self, keys: &[CounterKey]) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM resident_auth_counters WHERE key IN (SELECT value FROM json_each(?1))",
        )
        .bind(json_list(keys.iter().map(CounterKey::as_str)))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    /// One transaction for every key, in order.
    #[tracing::instrument(name = "sqlite.increment_all", skip_all, err(level = "debug", Display))]
    async fn increment_all(
        &self,
        keys: &[(CounterKey, Duration)],
        now: Timestamp,
    ) -> Result<Vec<Count>, StoreError> {
        let mut tx = self.write().await?;
        let mut counts = Vec::with_capacity(keys.len());
        for (key, window) in keys {
            counts.push(increment_on(&mut tx, key, now, *window).await?);
        }
        tx.commit().await.map_err(store_error)?;
        Ok(counts)
    }
}
