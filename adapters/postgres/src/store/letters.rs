//! The mail queue on PostgreSQL: claims with `FOR UPDATE SKIP LOCKED`, settling, listing
//! and purging.

use super::*;

impl PgStore {
    /// Every letter waiting in the queue, read only (nothing claimed): what a host checks
    /// at start-up against its mail queue keys, before it delivers any.
    ///
    /// # Errors
    /// [`StoreError`] if the database cannot be read.
    pub async fn letters_waiting(&self) -> Result<Vec<Versioned<QueuedLetter>>, StoreError> {
        let rows = sqlx::query(&self.sql(&format!(
            "SELECT {LETTER_COLUMNS} FROM {{schema}}.letters WHERE status = 'queued'"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(letter_from_row).collect()
    }
}

#[async_trait]
impl LetterStore for PgStore {
    /// One statement: the due letters, earliest first, locked with `SKIP LOCKED` (rows
    /// another instance is claiming are skipped, never waited for) and moved to the end of
    /// the claim.
    #[tracing::instrument(
        name = "postgres.claim_letters",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn claim_letters(
        &self,
        now: Timestamp,
        claim_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<QueuedLetter>>, StoreError> {
        let rows = sqlx::query(&self.sql(&format!(
            "WITH due AS (
                 SELECT id FROM {{schema}}.letters
                  WHERE status = 'queued' AND next_attempt_at <= $1
                  ORDER BY next_attempt_at
                  LIMIT $3
                  FOR UPDATE SKIP LOCKED)
             UPDATE {{schema}}.letters l
                SET next_attempt_at = $2, version = l.version + 1
               FROM due WHERE l.id = due.id
             RETURNING {}",
            LETTER_COLUMNS
                .split(',')
                .map(|column| format!("l.{}", column.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        )))
        .bind(now.as_millis())
        .bind(claim_until.as_millis())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(letter_from_row).collect()
    }

    #[tracing::instrument(name = "postgres.swap_letter", skip_all, err(level = "debug", Display))]
    async fn swap_letter(
        &self,
        id: &LetterId,
        expected: Expected,
        next: Option<&QueuedLetter>,
    ) -> Result<bool, StoreError> {
        let id_bytes = id.as_bytes().as_slice();
        let Some(letter) = next else {
            let key = ("letters", "id");
            return self.delete_at(&self.pool, key, id_bytes, expected).await;
        };
        if letter.id != *id {
            return Err(StoreError::generic(
                "a letter is swapped under its own id only",
            ));
        }
        let set = "recipient = $2, cabinet_id = $3, kind = $4, sealed = $5, status = $6,
                   attempts = $7, queued_at = $8, next_attempt_at = $9, give_up_at = $10,
                   keep_until = $11, last_error = $12";
        let statement = match expected {
            Expected::Absent => format!(
                "INSERT INTO {{schema}}.letters ({LETTER_COLUMNS})
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1
                  WHERE $13::BIGINT IS NULL
                 ON CONFLICT (id) DO NOTHING"
            ),
            Expected::Version(_) => format!(
                "UPDATE {{schema}}.letters SET {set}, version = version + 1
                  WHERE id = $1 AND version = $13"
            ),
            Expected::Any => format!(
                "INSERT INTO {{schema}}.letters AS l ({LETTER_COLUMNS})
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1
                  WHERE $13::BIGINT IS NULL
                 ON CONFLICT (id) DO UPDATE SET {set}, version = l.version + 1"
            ),
        };
        let sql = self.sql(&statement);
        let written = bind_letter(sqlx::query(&sql), letter)
            .bind(expected_version(expected))
            .execute(&self.pool)
            .await
            .map_err(store_error)?
            .rows_affected();
        Ok(written > 0)
    }

    /// One statement, by the recipient and cabinet indexes of migration 0004.
    #[tracing::instrument(
        name = "postgres.letters_about",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn letters_about(
        &self,
        email: Option<&Email>,
        cabinet: Option<&CabinetId>,
    ) -> Result<Vec<Versioned<QueuedLetter>>, StoreError> {
        let rows = sqlx::query(&self.sql(&format!(
            "SELECT {LETTER_COLUMNS} FROM {{schema}}.letters
              WHERE recipient = $1 OR cabinet_id = $2"
        )))
        .bind(email.map(Email::as_str))
        .bind(cabinet.map(|id| id.as_bytes().as_slice()))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(letter_from_row).collect()
    }

    #[tracing::instrument(
        name = "postgres.purge_letters",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn purge_letters(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.purge_in_batches("letters", "keep_until", now).await
    }
}
