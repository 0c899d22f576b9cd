//! Sessions and counters on PostgreSQL.

use super::*;

#[async_trait]
impl SessionStore for PgStore {
    #[tracing::instrument(name = "postgres.session", skip_all, err(level = "debug", Display))]
    async fn session(&self, token: &TokenHash) -> Result<Option<Versioned<Session>>, StoreError> {
        let row = sqlx::query(&self.sql(&format!(
            "SELECT {SESSION_COLUMNS} FROM {{schema}}.sessions s WHERE s.token_hash = $1"
        )))
        .bind(token.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.as_ref().map(session_from_row).transpose()
    }

    #[tracing::instrument(
        name = "postgres.swap_session",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn swap_session(
        &self,
        token: &TokenHash,
        expected: Expected,
        next: Option<&Session>,
    ) -> Result<bool, StoreError> {
        let Some(session) = next else {
            let key = ("sessions", "token_hash");
            return self
                .delete_at(&self.pool, key, token.as_bytes(), expected)
                .await;
        };
        const COLUMNS: &str =
            "token_hash, session_id, cabinet_id, credential_version, active_account,
             created_at, last_used, expires_at, client, version";
        let statement = match expected {
            Expected::Absent => format!(
                "INSERT INTO {{schema}}.sessions ({COLUMNS})
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, 1 WHERE $10::BIGINT IS NULL
                 ON CONFLICT (token_hash) DO NOTHING"
            ),
            Expected::Version(_) => "UPDATE {schema}.sessions
                SET session_id = $2, cabinet_id = $3, credential_version = $4,
                    active_account = $5, created_at = $6, last_used = $7, expires_at = $8,
                    client = $9, version = version + 1
              WHERE token_hash = $1 AND version = $10"
                .to_owned(),
            Expected::Any => format!(
                "INSERT INTO {{schema}}.sessions AS s ({COLUMNS})
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, 1 WHERE $10::BIGINT IS NULL
                 ON CONFLICT (token_hash) DO UPDATE
                    SET session_id = $2, cabinet_id = $3, credential_version = $4,
                        active_account = $5, created_at = $6, last_used = $7,
                        expires_at = $8, client = $9, version = s.version + 1"
            ),
        };
        let done = sqlx::query(&self.sql(&statement))
            .bind(token.as_bytes().as_slice())
            .bind(session.id.as_bytes().as_slice())
            .bind(session.cabinet.as_bytes().as_slice())
            .bind(signed(session.credential_version))
            .bind(session.active_account.as_ref().map(AccountNumber::as_str))
            .bind(session.created_at.as_millis())
            .bind(session.last_used.as_millis())
            .bind(session.expires_at.as_millis())
            .bind(session.client.as_deref())
            .bind(expected_version(expected))
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(done.rows_affected() > 0)
    }

    #[tracing::instrument(
        name = "postgres.cabinet_sessions",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn cabinet_sessions(
        &self,
        cabinet: &CabinetId,
    ) -> Result<Vec<(TokenHash, Versioned<Session>)>, StoreError> {
        let rows = sqlx::query(&self.sql(&format!(
            "SELECT s.token_hash, {SESSION_COLUMNS} FROM {{schema}}.sessions s WHERE s.cabinet_id = $1"
        )))
        .bind(cabinet.as_bytes().as_slice())
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter()
            .map(|row| {
                let digest: &[u8] = row.try_get("token_hash").map_err(store_error)?;
                let token = TokenHash::from_bytes(
                    digest
                        .try_into()
                        .map_err(|_| corrupt("sessions.token_hash"))?,
                );
                Ok((token, session_from_row(row)?))
            })
            .collect()
    }

    #[tracing::instrument(
        name = "postgres.purge_sessions",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn purge_sessions(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.purge_in_batches("sessions", "expires_at", now).await
    }
}

pub(super) const INCREMENT: &str =
    "INSERT INTO {schema}.counters AS c (key, subject, count, window_ends)
     SELECT key, subject, 1, $3 + span
       FROM unnest($1::TEXT[], $2::BIGINT[], $4::TEXT[]) AS u(key, span, subject)
     ON CONFLICT (key) DO UPDATE
        SET count = CASE WHEN c.window_ends <= $3 THEN 1 ELSE c.count + 1 END,
            window_ends = CASE WHEN c.window_ends <= $3 THEN excluded.window_ends
                               ELSE c.window_ends END
     RETURNING key, count, window_ends";

#[async_trait]
impl CounterStore for PgStore {
    #[tracing::instrument(name = "postgres.increment", skip_all, err(level = "debug", Display))]
    async fn increment(
        &self,
        key: &CounterKey,
        now: Timestamp,
        window: Duration,
    ) -> Result<Count, StoreError> {
        let counts = self.increment_all(&[(key.clone(), window)], now).await?;
        counts
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::generic("the counter upsert returned no row"))
    }

    #[tracing::instrument(name = "postgres.reset", skip_all, err(level = "debug", Display))]
    async fn reset(&self, key: &CounterKey) -> Result<(), StoreError> {
        sqlx::query(&self.sql("DELETE FROM {schema}.counters WHERE key = $1"))
            .bind(key.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    #[tracing::instrument(
        name = "postgres.purge_counters",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn purge_counters(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.purge_in_batches("counters", "window_ends", now).await
    }

    /// One statement; it reads every counter (an operator's lookup, not a request's).
    #[tracing::instrument(
        name = "postgres.counters_about",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn counters_about(
        &self,
        subjects: &[String],
    ) -> Result<Vec<(CounterKey, Count)>, StoreError> {
        let rows = sqlx::query(&self.sql(
            "SELECT key, subject, count, window_ends FROM {schema}.counters
              WHERE subject = ANY($1::text[])",
        ))
        .bind(subjects)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter()
            .map(|row| {
                let key: String = row.try_get("key").map_err(store_error)?;
                let subject: String = row.try_get("subject").map_err(store_error)?;
                let count: i32 = row.try_get("count").map_err(store_error)?;
                Ok((
                    CounterKey::from_stored(key, subject)
                        .ok_or_else(|| corrupt("counters.subject"))?,
                    Count {
                        count: u32::try_from(count).map_err(|_| corrupt("counters.count"))?,
                        window_ends: timestamp(row, "window_ends")?,
                    },
                ))
            })
            .collect()
    }
}
