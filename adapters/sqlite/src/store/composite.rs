//! The composite steps of `Store`, each in one statement or transaction.

use super::*;

#[async_trait]
impl Store for SqliteStore {
    /// One statement: the session joined with its cabinet, on this thread where a reader
    /// is free (`reader.rs`), else through the pool.
    #[tracing::instrument(
        name = "sqlite.session_with_cabinet",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn session_with_cabinet(
        &self,
        token: &TokenHash,
    ) -> Result<Option<(Versioned<Session>, CabinetSnapshot)>, StoreError> {
        let on_this_thread = self.readers.as_ref();
        if let Some(found) = on_this_thread.and_then(|readers| readers.session_with_cabinet(token))
        {
            return found;
        }
        let row = sqlx::query(&reader::SESSION_WITH_CABINET)
            .bind(token.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some((
            session_from_row(&row)?,
            cabinet_from_row(&row)?.value.into(),
        )))
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
