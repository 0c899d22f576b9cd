//! The mail queue in the SQLite file: claims, settling, listing and purging.

use super::*;

impl SqliteStore {
    /// Every letter waiting in the queue, read only (nothing claimed): what a host checks
    /// at start-up against its mail queue keys, before it delivers any.
    ///
    /// # Errors
    /// [`StoreError`] if the file cannot be read.
    pub async fn letters_waiting(&self) -> Result<Vec<Versioned<QueuedLetter>>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {LETTER_COLUMNS} FROM resident_auth_letters WHERE status = 'queued'"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(letter_from_row).collect()
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
        if next.is_none() {
            self.forget_erased().await;
        }
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
