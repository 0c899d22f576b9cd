//! Links and cabinets on PostgreSQL: compare-and-swap by version, in one transaction with
//! the letter that rides with the write.

use super::*;

#[async_trait]
impl LinkStore for PgStore {
    #[tracing::instrument(name = "postgres.link", skip_all, err(level = "debug", Display))]
    async fn link(&self, token: &TokenHash) -> Result<Option<Versioned<Link>>, StoreError> {
        let row = sqlx::query(&self.sql(&format!(
            "SELECT {LINK_COLUMNS} FROM {{schema}}.links WHERE token_hash = $1"
        )))
        .bind(token.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.as_ref().map(link_from_row).transpose()
    }

    #[tracing::instrument(name = "postgres.swap_link", skip_all, err(level = "debug", Display))]
    async fn swap_link(
        &self,
        token: &TokenHash,
        expected: Expected,
        next: Option<(&TokenHash, &Link)>,
        letter: Option<&QueuedLetter>,
    ) -> Result<bool, StoreError> {
        let Some(letter) = letter else {
            return self.swap_link_on(&self.pool, token, expected, next).await;
        };
        // The link and its letter in one transaction; a swap that does not write rolls
        // back (the transaction is dropped) with nothing queued.
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        if !self.swap_link_on(&mut *tx, token, expected, next).await? {
            return Ok(false);
        }
        self.insert_letter(&mut tx, letter).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(true)
    }

    #[tracing::instrument(name = "postgres.purge_links", skip_all, err(level = "debug", Display))]
    async fn purge_links(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.purge_in_batches("links", "expires_at", now).await
    }

    /// One statement, by the email and account indexes of migration 0003.
    #[tracing::instrument(name = "postgres.links_about", skip_all, err(level = "debug", Display))]
    async fn links_about(
        &self,
        email: Option<&Email>,
        accounts: &[AccountNumber],
    ) -> Result<Vec<(TokenHash, Versioned<Link>)>, StoreError> {
        let accounts: Vec<&str> = accounts.iter().map(AccountNumber::as_str).collect();
        let rows = sqlx::query(&self.sql(&format!(
            "SELECT token_hash, {LINK_COLUMNS} FROM {{schema}}.links
              WHERE email = $1 OR account_number = ANY($2)"
        )))
        .bind(email.map(Email::as_str))
        .bind(&accounts)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter()
            .map(|row| {
                let digest: &[u8] = row.try_get("token_hash").map_err(store_error)?;
                let token = TokenHash::from_bytes(
                    digest.try_into().map_err(|_| corrupt("links.token_hash"))?,
                );
                Ok((token, link_from_row(row)?))
            })
            .collect()
    }
}

#[async_trait]
impl CabinetStore for PgStore {
    #[tracing::instrument(name = "postgres.cabinet", skip_all, err(level = "debug", Display))]
    async fn cabinet(&self, key: CabinetKey<'_>) -> Result<Option<Versioned<Cabinet>>, StoreError> {
        let (condition, bytes, text): (&str, Option<&[u8]>, Option<&str>) = match key {
            CabinetKey::Id(id) => ("c.id = $1", Some(id.as_bytes().as_slice()), None),
            CabinetKey::Email(email) => ("c.email = $2", None, Some(email.as_str())),
            CabinetKey::Account(account) => (
                "c.id = (SELECT cabinet_id FROM {schema}.cabinet_accounts WHERE account_number = $2)",
                None,
                Some(account.as_str()),
            ),
            _ => return Err(StoreError::generic("unsupported cabinet key")),
        };
        let row = sqlx::query(&self.sql(&format!(
            "SELECT {CABINET_COLUMNS} FROM {{schema}}.cabinets c WHERE {condition}"
        )))
        .bind(bytes)
        .bind(text)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.as_ref().map(cabinet_from_row).transpose()
    }

    #[tracing::instrument(
        name = "postgres.swap_cabinet",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn swap_cabinet(
        &self,
        id: &CabinetId,
        expected: Expected,
        next: Option<&Cabinet>,
        letter: Option<&QueuedLetter>,
    ) -> Result<CabinetSwap, StoreError> {
        let Some(letter) = letter else {
            return self.swap_cabinet_on(&self.pool, id, expected, next).await;
        };
        // The cabinet and its letter in one transaction; a swap that does not write rolls
        // back (the transaction is dropped) with nothing queued.
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let swap = self.swap_cabinet_on(&mut *tx, id, expected, next).await?;
        if swap != CabinetSwap::Written {
            return Ok(swap);
        }
        self.insert_letter(&mut tx, letter).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(CabinetSwap::Written)
    }
}
