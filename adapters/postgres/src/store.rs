//! The store on PostgreSQL: the five storage traits of [`resident_auth::ports`] as single
//! statements with compare-and-swap on `version`; a link or cabinet write that queues a
//! letter is one transaction with the letter's insert (the transactional outbox).

use std::time::Duration;

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
use sqlx::{postgres::PgRow, PgExecutor, PgPool, Row};

use crate::{is_unique_violation, store_error, Schema};

mod composite;
mod letters;
mod links_and_cabinets;
mod sessions_and_counters;

/// The [`Store`] on PostgreSQL. Cheap to clone (it shares the pool).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    schema: Schema,
}

impl PgStore {
    /// A store over a database migrated in the default schema (see [`crate::migrate`]).
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self::with_schema(pool, Schema::default())
    }

    /// A store over a database migrated in `schema` (see [`crate::migrate_schema`]).
    #[must_use]
    pub fn with_schema(pool: PgPool, schema: Schema) -> Self {
        Self { pool, schema }
    }

    /// The pool, for hosts that share it.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn sql(&self, text: &str) -> String {
        self.schema.qualify(text)
    }

    /// [`LinkStore::swap_link`]'s statement, on `executor` (the pool, or a transaction
    /// that also queues a letter).
    async fn swap_link_on<'e>(
        &self,
        executor: impl PgExecutor<'e>,
        token: &TokenHash,
        expected: Expected,
        next: Option<(&TokenHash, &Link)>,
    ) -> Result<bool, StoreError> {
        let Some((next_token, link)) = next else {
            // A delete: consume at a version, or unconditionally.
            let key = ("links", "token_hash");
            return self
                .delete_at(executor, key, token.as_bytes(), expected)
                .await;
        };
        let values = "$3, $4, $5, $6, $7, $8, $9";
        let statement = match (expected, next_token == token) {
            (Expected::Absent, _) => format!(
                "INSERT INTO {{schema}}.links (token_hash, {LINK_COLUMNS})
                 SELECT $2, {values}, 1
                  WHERE NOT EXISTS (SELECT 1 FROM {{schema}}.links WHERE token_hash = $1)
                    AND $10::BIGINT IS NULL
                 ON CONFLICT (token_hash) DO NOTHING"
            ),
            (Expected::Version(_), true) => "UPDATE {schema}.links
                SET purpose = $3, email = $4, account_number = $5, cabinet_id = $6,
                    credential_version = $7, expires_at = $8, issuing_until = $9,
                    version = version + 1
              WHERE token_hash = $1 AND token_hash = $2 AND version = $10"
                .to_owned(),
            (Expected::Any, true) => format!(
                "INSERT INTO {{schema}}.links AS l (token_hash, {LINK_COLUMNS})
                 SELECT $2, {values}, 1 WHERE $1 = $2 AND $10::BIGINT IS NULL
                 ON CONFLICT (token_hash) DO UPDATE
                    SET purpose = $3, email = $4, account_number = $5, cabinet_id = $6,
                        credential_version = $7, expires_at = $8, issuing_until = $9,
                        version = l.version + 1"
            ),
            // A move to another token: the insert fails on a taken token, and the whole
            // statement (with its delete) with it.
            (_, false) => format!(
                "WITH gone AS (
                     DELETE FROM {{schema}}.links
                      WHERE token_hash = $1 AND ($10::BIGINT IS NULL OR version = $10)
                  RETURNING version)
                 INSERT INTO {{schema}}.links (token_hash, {LINK_COLUMNS})
                 SELECT $2, {values}, gone.version + 1 FROM gone"
            ),
        };
        let result = sqlx::query(&self.sql(&statement))
            .bind(token.as_bytes().as_slice())
            .bind(next_token.as_bytes().as_slice())
            .bind(link.purpose.as_str())
            .bind(link.email.as_str())
            .bind(link.account_number.as_ref().map(AccountNumber::as_str))
            .bind(link.cabinet.as_ref().map(|id| id.as_bytes().as_slice()))
            .bind(link.credential_version.map(signed))
            .bind(link.expires_at.as_millis())
            .bind(link.issuing_until.map(Timestamp::as_millis))
            .bind(expected_version(expected))
            .execute(executor)
            .await;
        match result {
            Ok(done) => Ok(done.rows_affected() > 0),
            Err(error) if is_unique_violation(&error) => Ok(false),
            Err(error) => Err(store_error(error)),
        }
    }

    /// [`CabinetStore::swap_cabinet`]'s statement, on `executor` (the pool, or a
    /// transaction that also queues a letter).
    async fn swap_cabinet_on<'e>(
        &self,
        executor: impl PgExecutor<'e>,
        id: &CabinetId,
        expected: Expected,
        next: Option<&Cabinet>,
    ) -> Result<CabinetSwap, StoreError> {
        let id_bytes = id.as_bytes().as_slice();
        let Some(next) = next else {
            let key = ("cabinets", "id");
            let written = self.delete_at(executor, key, id_bytes, expected).await?;
            return Ok(if written {
                CabinetSwap::Written
            } else {
                CabinetSwap::Conflict
            });
        };
        let accounts: Vec<&str> = next.accounts.iter().map(AccountNumber::as_str).collect();
        let cabinet = match expected {
            Expected::Absent => {
                "INSERT INTO {schema}.cabinets
                    (id, email, password_hash, credential_version, password_expires_at, version)
                 VALUES ($1, $2, $3, $4, $7, 1)
                 ON CONFLICT (id) DO NOTHING
                 RETURNING id"
            }
            Expected::Version(_) => {
                "UPDATE {schema}.cabinets
                SET email = $2, password_hash = $3, credential_version = $4,
                    password_expires_at = $7, version = version + 1
              WHERE id = $1 AND version = $5
              RETURNING id"
            }
            Expected::Any => {
                "INSERT INTO {schema}.cabinets AS c
                    (id, email, password_hash, credential_version, password_expires_at, version)
                 VALUES ($1, $2, $3, $4, $7, 1)
                 ON CONFLICT (id) DO UPDATE
                    SET email = $2, password_hash = $3, credential_version = $4,
                        password_expires_at = $7, version = c.version + 1
                 RETURNING id"
            }
        };
        // One statement: the cabinet, then its accounts in order — those that left go,
        // those that stay get their position, new ones are inserted. A new account that
        // belongs to another cabinet (or an email another cabinet has) breaks a unique
        // key, and the whole statement, cabinet included, is undone.
        let statement = format!(
            "WITH c AS ({cabinet}),
             gone AS (
                 DELETE FROM {{schema}}.cabinet_accounts a USING c
                  WHERE a.cabinet_id = c.id AND NOT (a.account_number = ANY($6))),
             kept AS (
                 UPDATE {{schema}}.cabinet_accounts a SET position = u.position
                   FROM c, unnest($6::TEXT[]) WITH ORDINALITY AS u(number, position)
                  WHERE a.cabinet_id = c.id AND a.account_number = u.number),
             added AS (
                 INSERT INTO {{schema}}.cabinet_accounts (account_number, cabinet_id, position)
                 SELECT u.number, c.id, u.position
                   FROM c, unnest($6::TEXT[]) WITH ORDINALITY AS u(number, position)
                  WHERE NOT EXISTS (
                      SELECT 1 FROM {{schema}}.cabinet_accounts a
                       WHERE a.account_number = u.number AND a.cabinet_id = c.id))
             SELECT count(*) FROM c"
        );
        let written = sqlx::query_scalar::<_, i64>(&self.sql(&statement))
            .bind(id_bytes)
            .bind(next.email.as_str())
            .bind(next.password_hash.as_phc())
            .bind(signed(next.credential_version))
            .bind(expected_version(expected))
            .bind(&accounts)
            .bind(next.password_expires_at.map(Timestamp::as_millis))
            .fetch_one(executor)
            .await;
        match written {
            Ok(0) => Ok(CabinetSwap::Conflict),
            Ok(_) => Ok(CabinetSwap::Written),
            Err(error) if is_unique_violation(&error) => Ok(CabinetSwap::Taken),
            Err(error) => Err(store_error(error)),
        }
    }

    /// Inserts a letter into the queue, inside the transaction of the write that needs it.
    async fn insert_letter(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        letter: &QueuedLetter,
    ) -> Result<(), StoreError> {
        let sql = self.sql(&format!(
            "INSERT INTO {{schema}}.letters ({LETTER_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1)"
        ));
        bind_letter(sqlx::query(&sql), letter)
            .execute(&mut **tx)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// Deletes the row of `table` whose `key` column is `value` if it is at the `expected`
    /// version (any version for `Any`); whether the expectation held.
    #[tracing::instrument(name = "postgres.delete_at", skip_all, err(level = "debug", Display))]
    async fn delete_at<'e>(
        &self,
        executor: impl PgExecutor<'e>,
        (table, key): (&'static str, &'static str),
        value: &[u8],
        expected: Expected,
    ) -> Result<bool, StoreError> {
        if expected == Expected::Absent {
            // Deleting what must not exist: true when indeed nothing is there.
            let absent: bool = sqlx::query_scalar(&self.sql(&format!(
                "SELECT NOT EXISTS (SELECT 1 FROM {{schema}}.{table} WHERE {key} = $1)"
            )))
            .bind(value)
            .fetch_one(executor)
            .await
            .map_err(store_error)?;
            return Ok(absent);
        }
        let deleted = sqlx::query(&self.sql(&format!(
            "DELETE FROM {{schema}}.{table}
              WHERE {key} = $1 AND ($2::BIGINT IS NULL OR version = $2)"
        )))
        .bind(value)
        .bind(expected_version(expected))
        .execute(executor)
        .await
        .map_err(store_error)?
        .rows_affected();
        Ok(expected == Expected::Any || deleted > 0)
    }

    /// Deletes the rows of `table` whose `column` is at or before `now`, at most
    /// [`PURGE_BATCH`] rows per statement (each its own short transaction), so a backlog of
    /// any size never holds locks long or meets the statement timeout. Counts affected
    /// rows; returns nothing per row.
    #[tracing::instrument(
        name = "postgres.purge_in_batches",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn purge_in_batches(
        &self,
        table: &'static str,
        column: &'static str,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        // Each statement deletes the next batch *after* the previous one's last row (a TID
        // range scan, PostgreSQL 14+), so no statement re-reads the dead rows the earlier
        // ones left behind: every batch costs the same, however large the backlog. Rows
        // that appear behind the cursor meanwhile wait for the next purge.
        let statement = self.sql(&format!(
            "WITH batch AS (
                 SELECT ctid FROM {{schema}}.{table}
                  WHERE ctid > $3::tid AND {column} <= $1 LIMIT $2),
             gone AS (
                 DELETE FROM {{schema}}.{table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM batch)))
             SELECT count(*), max(ctid)::text FROM batch"
        ));
        let mut purged = 0;
        let mut after = "(0,0)".to_owned();
        loop {
            let (deleted, last): (i64, Option<String>) = sqlx::query_as(&statement)
                .bind(now.as_millis())
                .bind(PURGE_BATCH)
                .bind(&after)
                .fetch_one(&self.pool)
                .await
                .map_err(store_error)?;
            purged += u64::try_from(deleted).unwrap_or(0);
            match last {
                Some(last) if deleted >= PURGE_BATCH => after = last,
                _ => return Ok(purged),
            }
        }
    }
}

/// Rows one purge statement deletes at most.
const PURGE_BATCH: i64 = 10_000;

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn stored_version(version: Version) -> i64 {
    i64::try_from(version.get()).unwrap_or(i64::MAX)
}

fn read_version(row: &PgRow, column: &str) -> Result<Version, StoreError> {
    let version: i64 = row.try_get(column).map_err(store_error)?;
    u64::try_from(version)
        .map(Version::new)
        .map_err(|_| corrupt(column))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::generic(format!("unexpected value in the database: {what}"))
}

fn parse_email(text: &str) -> Result<Email, StoreError> {
    text.parse().map_err(|_| corrupt("email"))
}

fn parse_account(text: &str) -> Result<AccountNumber, StoreError> {
    text.parse().map_err(|_| corrupt("account_number"))
}

fn parse_id<T: From16>(bytes: &[u8], what: &str) -> Result<T, StoreError> {
    <[u8; 16]>::try_from(bytes)
        .map(T::from16)
        .map_err(|_| corrupt(what))
}

/// The two identity types, read from their 16 stored bytes.
trait From16 {
    fn from16(bytes: [u8; 16]) -> Self;
}
impl From16 for CabinetId {
    fn from16(bytes: [u8; 16]) -> Self {
        CabinetId::from_bytes(bytes)
    }
}
impl From16 for SessionId {
    fn from16(bytes: [u8; 16]) -> Self {
        SessionId::from_bytes(bytes)
    }
}

fn unsigned(row: &PgRow, column: &str) -> Result<u64, StoreError> {
    let value: i64 = row.try_get(column).map_err(store_error)?;
    u64::try_from(value).map_err(|_| corrupt(column))
}

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn timestamp(row: &PgRow, column: &str) -> Result<Timestamp, StoreError> {
    Ok(Timestamp::from_millis(
        row.try_get(column).map_err(store_error)?,
    ))
}

fn optional_timestamp(row: &PgRow, column: &str) -> Result<Option<Timestamp>, StoreError> {
    Ok(row
        .try_get::<Option<i64>, _>(column)
        .map_err(store_error)?
        .map(Timestamp::from_millis))
}

const LINK_COLUMNS: &str =
    "purpose, email, account_number, cabinet_id, credential_version, expires_at, issuing_until, version";

fn link_from_row(row: &PgRow) -> Result<Versioned<Link>, StoreError> {
    let purpose: &str = row.try_get("purpose").map_err(store_error)?;
    let account: Option<&str> = row.try_get("account_number").map_err(store_error)?;
    let cabinet: Option<&[u8]> = row.try_get("cabinet_id").map_err(store_error)?;
    let credential_version: Option<i64> = row.try_get("credential_version").map_err(store_error)?;
    Ok(Versioned {
        value: Link {
            purpose: LinkPurpose::from_name(purpose).ok_or_else(|| corrupt("purpose"))?,
            email: parse_email(row.try_get("email").map_err(store_error)?)?,
            account_number: account.map(parse_account).transpose()?,
            cabinet: cabinet.map(|id| parse_id(id, "cabinet_id")).transpose()?,
            credential_version: credential_version
                .map(|v| u64::try_from(v).map_err(|_| corrupt("credential_version")))
                .transpose()?,
            expires_at: timestamp(row, "expires_at")?,
            issuing_until: optional_timestamp(row, "issuing_until")?,
        },
        version: read_version(row, "version")?,
    })
}

/// Binds a letter's columns as `$1`–`$12`, in [`LETTER_COLUMNS`]' order (its id first;
/// the version is the statement's).
fn bind_letter<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    letter: &'q QueuedLetter,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(letter.id.as_bytes().as_slice())
        .bind(letter.to.as_str())
        .bind(letter.cabinet.as_ref().map(|id| id.as_bytes().as_slice()))
        .bind(letter.kind.as_str())
        .bind(letter.sealed.as_ref().map(SealedLetter::as_bytes))
        .bind(letter.status.as_str())
        .bind(i32::try_from(letter.attempts).unwrap_or(i32::MAX))
        .bind(letter.queued_at.as_millis())
        .bind(letter.next_attempt_at.as_millis())
        .bind(letter.give_up_at.as_millis())
        .bind(letter.keep_until.map(Timestamp::as_millis))
        .bind(letter.last_error.as_deref())
}

const LETTER_COLUMNS: &str = "id, recipient, cabinet_id, kind, sealed, status, attempts, queued_at,
     next_attempt_at, give_up_at, keep_until, last_error, version";

fn letter_from_row(row: &PgRow) -> Result<Versioned<QueuedLetter>, StoreError> {
    let id: &[u8] = row.try_get("id").map_err(store_error)?;
    let cabinet: Option<&[u8]> = row.try_get("cabinet_id").map_err(store_error)?;
    let kind: &str = row.try_get("kind").map_err(store_error)?;
    let status: &str = row.try_get("status").map_err(store_error)?;
    let sealed: Option<Vec<u8>> = row.try_get("sealed").map_err(store_error)?;
    let attempts: i32 = row.try_get("attempts").map_err(store_error)?;
    Ok(Versioned {
        value: QueuedLetter {
            id: LetterId::from_bytes(id.try_into().map_err(|_| corrupt("letters.id"))?),
            to: parse_email(row.try_get("recipient").map_err(store_error)?)?,
            cabinet: cabinet
                .map(|id| parse_id(id, "letters.cabinet_id"))
                .transpose()?,
            kind: LetterKind::from_name(kind).ok_or_else(|| corrupt("letters.kind"))?,
            sealed: sealed.map(SealedLetter::from_bytes),
            status: LetterStatus::from_name(status).ok_or_else(|| corrupt("letters.status"))?,
            attempts: u32::try_from(attempts).map_err(|_| corrupt("letters.attempts"))?,
            queued_at: timestamp(row, "queued_at")?,
            next_attempt_at: timestamp(row, "next_attempt_at")?,
            give_up_at: timestamp(row, "give_up_at")?,
            keep_until: optional_timestamp(row, "keep_until")?,
            last_error: row.try_get("last_error").map_err(store_error)?,
        },
        version: read_version(row, "version")?,
    })
}

const CABINET_COLUMNS: &str =
    "c.id, c.email, c.password_hash, c.credential_version, c.password_expires_at,
     c.version AS cabinet_version,
     ARRAY(SELECT account_number FROM {schema}.cabinet_accounts
            WHERE cabinet_id = c.id ORDER BY position) AS accounts";

fn cabinet_from_row(row: &PgRow) -> Result<Versioned<Cabinet>, StoreError> {
    let accounts: Vec<String> = row.try_get("accounts").map_err(store_error)?;
    Ok(Versioned {
        value: Cabinet {
            id: parse_id(row.try_get("id").map_err(store_error)?, "cabinets.id")?,
            email: parse_email(row.try_get("email").map_err(store_error)?)?,
            password_hash: HashedPassword::from_phc(
                row.try_get("password_hash").map_err(store_error)?,
            ),
            credential_version: unsigned(row, "credential_version")?,
            accounts: accounts
                .iter()
                .map(|a| parse_account(a))
                .collect::<Result<_, _>>()?,
            password_expires_at: optional_timestamp(row, "password_expires_at")?,
        },
        version: read_version(row, "cabinet_version")?,
    })
}

const SESSION_COLUMNS: &str = "s.session_id, s.cabinet_id, s.credential_version AS session_credential_version,
     s.active_account, s.created_at, s.last_used, s.expires_at, s.client, s.version AS session_version";

fn session_from_row(row: &PgRow) -> Result<Versioned<Session>, StoreError> {
    let active: Option<&str> = row.try_get("active_account").map_err(store_error)?;
    Ok(Versioned {
        value: Session {
            id: parse_id(
                row.try_get("session_id").map_err(store_error)?,
                "sessions.id",
            )?,
            cabinet: parse_id(
                row.try_get("cabinet_id").map_err(store_error)?,
                "cabinet_id",
            )?,
            credential_version: unsigned(row, "session_credential_version")?,
            active_account: active.map(parse_account).transpose()?,
            created_at: timestamp(row, "created_at")?,
            last_used: timestamp(row, "last_used")?,
            expires_at: timestamp(row, "expires_at")?,
            client: row.try_get("client").map_err(store_error)?,
        },
        version: read_version(row, "session_version")?,
    })
}

/// The version a conditional write names, or `NULL` for "whatever is there".
fn expected_version(expected: Expected) -> Option<i64> {
    match expected {
        Expected::Version(version) => Some(stored_version(version)),
        Expected::Absent | Expected::Any => None,
    }
}
