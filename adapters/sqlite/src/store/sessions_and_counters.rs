//! Sessions and counters in the SQLite file.

use super::*;

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

    /// One statement, through the index on the subject.
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
            "SELECT key, subject, count, window_ends FROM resident_auth_counters
              WHERE subject IN (SELECT value FROM json_each(?1))",
        )
        .bind(json_list(subjects.iter().map(String::as_str)))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter()
            .map(|row| {
                let key = CounterKey::from_stored(text(row, "key")?, text(row, "subject")?)
                    .ok_or_else(|| corrupt("resident_auth_counters.subject"))?;
                Ok((key, count_from_row(row)?))
            })
            .collect()
    }
}
