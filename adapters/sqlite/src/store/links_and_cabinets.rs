//! Links and cabinets in the SQLite file: compare-and-swap by version inside
//! `BEGIN IMMEDIATE`, with the letter that rides with the write.

use super::*;

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
            self.forget_erased().await;
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
