//! The composite steps of `Store` in one statement or transaction each.

use super::{sessions_and_counters::INCREMENT, *};

#[async_trait]
impl Store for PgStore {
    /// One statement: the session joined with its cabinet.
    #[tracing::instrument(
        name = "postgres.session_with_cabinet",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn session_with_cabinet(
        &self,
        token: &TokenHash,
    ) -> Result<Option<(Versioned<Session>, CabinetSnapshot)>, StoreError> {
        let row = sqlx::query(&self.sql(&format!(
            "SELECT {SESSION_COLUMNS}, {CABINET_COLUMNS}
               FROM {{schema}}.sessions s JOIN {{schema}}.cabinets c ON c.id = s.cabinet_id
              WHERE s.token_hash = $1"
        )))
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

    /// One statement: the link moves only if it has the purpose and is live.
    #[tracing::instrument(
        name = "postgres.advance_link",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn advance_link(
        &self,
        token: &TokenHash,
        purpose: LinkPurpose,
        now: Timestamp,
        next_token: &TokenHash,
        next: LinkAdvance,
    ) -> Result<Option<Link>, StoreError> {
        let row = sqlx::query(&self.sql(&format!(
            "WITH gone AS (
                 DELETE FROM {{schema}}.links
                  WHERE token_hash = $1 AND purpose = $2 AND expires_at > $3
              RETURNING {LINK_COLUMNS})
             INSERT INTO {{schema}}.links (token_hash, {LINK_COLUMNS})
             SELECT $4, $5, email, account_number, cabinet_id, credential_version, $6,
                    issuing_until, version + 1
               FROM gone
             RETURNING {LINK_COLUMNS}"
        )))
        .bind(token.as_bytes().as_slice())
        .bind(purpose.as_str())
        .bind(now.as_millis())
        .bind(next_token.as_bytes().as_slice())
        .bind(next.purpose.as_str())
        .bind(next.expires_at.as_millis())
        .fetch_optional(&self.pool)
        .await;
        match row {
            Ok(row) => Ok(row
                .as_ref()
                .map(link_from_row)
                .transpose()?
                .map(|link| link.value)),
            Err(error) if is_unique_violation(&error) => Ok(None),
            Err(error) => Err(store_error(error)),
        }
    }

    /// One statement for every key.
    #[tracing::instrument(name = "postgres.reset_all", skip_all, err(level = "debug", Display))]
    async fn reset_all(&self, keys: &[CounterKey]) -> Result<(), StoreError> {
        let names: Vec<&str> = keys.iter().map(CounterKey::as_str).collect();
        sqlx::query(&self.sql("DELETE FROM {schema}.counters WHERE key = ANY($1)"))
            .bind(&names)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// One statement for every key (each key at most once per call).
    #[tracing::instrument(
        name = "postgres.increment_all",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn increment_all(
        &self,
        keys: &[(CounterKey, Duration)],
        now: Timestamp,
    ) -> Result<Vec<Count>, StoreError> {
        let names: Vec<&str> = keys.iter().map(|(key, _)| key.as_str()).collect();
        let windows: Vec<i64> = keys.iter().map(|(_, window)| millis(*window)).collect();
        let subjects: Vec<&str> = keys.iter().map(|(key, _)| key.subject()).collect();
        let rows = sqlx::query(&self.sql(INCREMENT))
            .bind(&names)
            .bind(&windows)
            .bind(now.as_millis())
            .bind(&subjects)
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        names
            .iter()
            .map(|name| {
                let row = rows
                    .iter()
                    .find(|row| row.try_get::<&str, _>("key").is_ok_and(|key| key == *name))
                    .ok_or_else(|| StoreError::generic("a counter upsert returned no row"))?;
                let count: i32 = row.try_get("count").map_err(store_error)?;
                Ok(Count {
                    count: u32::try_from(count).map_err(|_| corrupt("count"))?,
                    window_ends: timestamp(row, "window_ends")?,
                })
            })
            .collect()
    }
}
