//! The store on PostgreSQL.

use std::time::Duration;

use async_trait::async_trait;
use resident_auth::{
    ports::{
        AttemptPolicy, BeginRegistration, CommitOutcome, FailedAttempt, Grant, NewRecovery,
        NewRegistration, NewSession, PendingRegistration, RegistrationKind, RegistrationStage,
        SelectAccount, SessionExpiry, SessionState, StageOutcome, ThrottleDecision, ThrottleKey,
        ThrottlePolicy,
    },
    AccountNumber, Email, PasswordHash, Store, StoreError, Timestamp, TokenHash,
};
use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::store_error;

/// The [`Store`] on PostgreSQL. Cheap to clone (it shares the pool).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// A store over a migrated database (see [`crate::migrate`]).
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool, for hosts that share it.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(store_error)
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn kind_text(kind: RegistrationKind) -> &'static str {
    match kind {
        RegistrationKind::NewCabinet => "new_cabinet",
        RegistrationKind::AddAccount => "add_account",
    }
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

fn parse_accounts(texts: Vec<String>) -> Result<Vec<AccountNumber>, StoreError> {
    texts.iter().map(|t| parse_account(t)).collect()
}

const PENDING_COLUMNS: &str =
    "email, account_number, kind, stage, expires_at, failed_attempts, locked_until";

fn pending_from_row(row: &sqlx::postgres::PgRow) -> Result<PendingRegistration, StoreError> {
    let kind = match row.try_get::<&str, _>("kind").map_err(store_error)? {
        "new_cabinet" => RegistrationKind::NewCabinet,
        "add_account" => RegistrationKind::AddAccount,
        _ => return Err(corrupt("kind")),
    };
    let stage = match row.try_get::<&str, _>("stage").map_err(store_error)? {
        "awaiting_confirmation" => RegistrationStage::AwaitingConfirmation,
        "awaiting_activation" => RegistrationStage::AwaitingActivation,
        _ => return Err(corrupt("stage")),
    };
    let failed: i32 = row.try_get("failed_attempts").map_err(store_error)?;
    Ok(PendingRegistration {
        email: parse_email(row.try_get("email").map_err(store_error)?)?,
        account_number: parse_account(row.try_get("account_number").map_err(store_error)?)?,
        kind,
        stage,
        expires_at: Timestamp::from_millis(row.try_get("expires_at").map_err(store_error)?),
        failed_attempts: u32::try_from(failed).map_err(|_| corrupt("failed_attempts"))?,
        locked_until: row
            .try_get::<Option<i64>, _>("locked_until")
            .map_err(store_error)?
            .map(Timestamp::from_millis),
    })
}

/// Serialises registrations touching the same email or account across every instance.
/// Email locks are always taken before account locks, so two registrations never wait
/// on each other in a cycle.
async fn lock_registration(
    tx: &mut Transaction<'static, Postgres>,
    email: &Email,
    account: &AccountNumber,
) -> Result<(), StoreError> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(1, hashtext($1)), pg_advisory_xact_lock(2, hashtext($2))",
    )
    .bind(email.as_str())
    .bind(account.as_str())
    .execute(&mut **tx)
    .await
    .map_err(store_error)?;
    Ok(())
}

#[async_trait]
impl Store for PgStore {
    async fn begin_registration(
        &self,
        registration: &NewRegistration,
        now: Timestamp,
    ) -> Result<BeginRegistration, StoreError> {
        let mut tx = self.begin().await?;
        lock_registration(&mut tx, &registration.email, &registration.account_number).await?;
        let new_cabinet = registration.kind == RegistrationKind::NewCabinet;
        let registered: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM cabinet_accounts WHERE account_number = $1)
                 OR ($3 AND EXISTS (SELECT 1 FROM cabinets WHERE email = $2))",
        )
        .bind(registration.account_number.as_str())
        .bind(registration.email.as_str())
        .bind(new_cabinet)
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        if registered {
            return Ok(BeginRegistration::AlreadyRegistered);
        }
        let conflicts = "account_number = $1 OR ($3 AND kind = 'new_cabinet' AND email = $2)";
        let blocked_until: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT max(letter_sent_at + $4) FROM pending_registrations
              WHERE ({conflicts}) AND letter_sent_at + $4 > $5"
        ))
        .bind(registration.account_number.as_str())
        .bind(registration.email.as_str())
        .bind(new_cabinet)
        .bind(millis(registration.resend_interval))
        .bind(now.as_millis())
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        if let Some(retry_at) = blocked_until {
            return Ok(BeginRegistration::Throttled {
                retry_at: Timestamp::from_millis(retry_at),
            });
        }
        sqlx::query(&format!(
            "DELETE FROM pending_registrations WHERE {conflicts}"
        ))
        .bind(registration.account_number.as_str())
        .bind(registration.email.as_str())
        .bind(new_cabinet)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        sqlx::query(
            "INSERT INTO pending_registrations
                 (account_number, email, kind, stage, token_hash, expires_at, letter_sent_at)
             VALUES ($1, $2, $3, 'awaiting_confirmation', $4, $5, $6)",
        )
        .bind(registration.account_number.as_str())
        .bind(registration.email.as_str())
        .bind(kind_text(registration.kind))
        .bind(registration.confirmation.as_bytes().as_slice())
        .bind(registration.expires_at.as_millis())
        .bind(now.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(BeginRegistration::Started)
    }

    async fn abandon_registration(&self, confirmation: &TokenHash) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM pending_registrations
              WHERE token_hash = $1 AND stage = 'awaiting_confirmation'",
        )
        .bind(confirmation.as_bytes().as_slice())
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn confirm_email(
        &self,
        confirmation: &TokenHash,
        activation: &TokenHash,
        activation_expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Option<PendingRegistration>, StoreError> {
        // One statement: the row lock makes a concurrent second consumer see the new
        // token and match nothing.
        let row = sqlx::query(&format!(
            "UPDATE pending_registrations
                SET token_hash = $2, stage = 'awaiting_activation', expires_at = $3
              WHERE token_hash = $1 AND stage = 'awaiting_confirmation' AND expires_at > $4
          RETURNING {PENDING_COLUMNS}"
        ))
        .bind(confirmation.as_bytes().as_slice())
        .bind(activation.as_bytes().as_slice())
        .bind(activation_expires_at.as_millis())
        .bind(now.as_millis())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.as_ref().map(pending_from_row).transpose()
    }

    async fn pending_activation(
        &self,
        activation: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<PendingRegistration>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {PENDING_COLUMNS} FROM pending_registrations
              WHERE token_hash = $1 AND stage = 'awaiting_activation' AND expires_at > $2"
        ))
        .bind(activation.as_bytes().as_slice())
        .bind(now.as_millis())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.as_ref().map(pending_from_row).transpose()
    }

    async fn record_failed_activation(
        &self,
        activation: &TokenHash,
        now: Timestamp,
        policy: &AttemptPolicy,
    ) -> Result<Option<FailedAttempt>, StoreError> {
        let max = i32::try_from(policy.max_attempts).unwrap_or(i32::MAX);
        // One statement: a locked registration is left as it is; an expired lock
        // restarts the count; the try that reaches the maximum locks.
        let row = sqlx::query(
            "WITH current AS (
                 SELECT account_number,
                        locked_until IS NOT NULL AND locked_until > $2 AS locked,
                        CASE WHEN locked_until IS NOT NULL AND locked_until <= $2 THEN 0
                             ELSE failed_attempts END + 1 AS attempts
                   FROM pending_registrations
                  WHERE token_hash = $1 AND stage = 'awaiting_activation' AND expires_at > $2
                    FOR UPDATE)
             UPDATE pending_registrations p
                SET failed_attempts = CASE WHEN c.locked THEN p.failed_attempts
                                           WHEN c.attempts >= $3 THEN 0 ELSE c.attempts END,
                    locked_until = CASE WHEN c.locked THEN p.locked_until
                                        WHEN c.attempts >= $3 THEN $2 + $4 ELSE NULL END
               FROM current c
              WHERE p.account_number = c.account_number
          RETURNING c.locked, c.attempts, p.locked_until",
        )
        .bind(activation.as_bytes().as_slice())
        .bind(now.as_millis())
        .bind(max)
        .bind(millis(policy.lockout))
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        let Some(row) = row else { return Ok(None) };
        let locked: bool = row.try_get("locked").map_err(store_error)?;
        let attempts: i32 = row.try_get("attempts").map_err(store_error)?;
        let locked_until: Option<i64> = row.try_get("locked_until").map_err(store_error)?;
        if locked || attempts >= max {
            return Ok(Some(FailedAttempt {
                attempts_left: 0,
                locked_until: locked_until.map(Timestamp::from_millis),
            }));
        }
        Ok(Some(FailedAttempt {
            attempts_left: u32::try_from(max - attempts).unwrap_or(0),
            locked_until: None,
        }))
    }

    async fn stage_credentials(
        &self,
        grant: &Grant,
        hash: &PasswordHash,
        now: Timestamp,
        lease: Duration,
    ) -> Result<StageOutcome, StoreError> {
        let (stage, busy) = match grant {
            Grant::Activation(_) => (
                "UPDATE pending_registrations SET staged_hash = $2, staged_until = $3 + $4
                  WHERE token_hash = $1 AND stage = 'awaiting_activation' AND expires_at > $3
                    AND (locked_until IS NULL OR locked_until <= $3)
                    AND (staged_until IS NULL OR staged_until <= $3)
              RETURNING email",
                "SELECT staged_until FROM pending_registrations
                  WHERE token_hash = $1 AND stage = 'awaiting_activation' AND expires_at > $2
                    AND (locked_until IS NULL OR locked_until <= $2) AND staged_until > $2",
            ),
            Grant::Recovery(_) => (
                "UPDATE recoveries r SET staged_hash = $2, staged_until = $3 + $4
                   FROM cabinets c
                  WHERE r.token_hash = $1 AND c.id = r.cabinet_id AND r.expires_at > $3
                    AND (r.staged_until IS NULL OR r.staged_until <= $3)
              RETURNING c.email",
                "SELECT staged_until FROM recoveries
                  WHERE token_hash = $1 AND expires_at > $2 AND staged_until > $2",
            ),
        };
        let token = match grant {
            Grant::Activation(token) | Grant::Recovery(token) => token,
        };
        let email: Option<String> = sqlx::query_scalar(stage)
            .bind(token.as_bytes().as_slice())
            .bind(hash.as_phc())
            .bind(now.as_millis())
            .bind(millis(lease))
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        if let Some(email) = email {
            return Ok(StageOutcome::Staged {
                email: parse_email(&email)?,
            });
        }
        let busy_until: Option<i64> = sqlx::query_scalar(busy)
            .bind(token.as_bytes().as_slice())
            .bind(now.as_millis())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(match busy_until {
            Some(until) => StageOutcome::Busy {
                retry_at: Timestamp::from_millis(until),
            },
            None => StageOutcome::Gone,
        })
    }

    async fn unstage_credentials(
        &self,
        grant: &Grant,
        hash: &PasswordHash,
    ) -> Result<(), StoreError> {
        let (statement, token) = match grant {
            Grant::Activation(token) => (
                "UPDATE pending_registrations SET staged_hash = NULL, staged_until = NULL
                  WHERE token_hash = $1 AND staged_hash = $2",
                token,
            ),
            Grant::Recovery(token) => (
                "UPDATE recoveries SET staged_hash = NULL, staged_until = NULL
                  WHERE token_hash = $1 AND staged_hash = $2",
                token,
            ),
        };
        sqlx::query(statement)
            .bind(token.as_bytes().as_slice())
            .bind(hash.as_phc())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn commit_credentials(
        &self,
        grant: &Grant,
        hash: &PasswordHash,
        now: Timestamp,
    ) -> Result<CommitOutcome, StoreError> {
        let mut tx = self.begin().await?;
        let cabinet_id: i64 = match grant {
            Grant::Activation(token) => {
                // Consuming the token first takes its row lock: a concurrent commit of
                // the same grant waits here and then finds nothing.
                let row = sqlx::query(
                    "DELETE FROM pending_registrations
                      WHERE token_hash = $1 AND stage = 'awaiting_activation' AND staged_hash = $2
                  RETURNING email, account_number, kind",
                )
                .bind(token.as_bytes().as_slice())
                .bind(hash.as_phc())
                .fetch_optional(&mut *tx)
                .await
                .map_err(store_error)?;
                let Some(row) = row else {
                    return Ok(CommitOutcome::Gone);
                };
                let email: String = row.try_get("email").map_err(store_error)?;
                let account: String = row.try_get("account_number").map_err(store_error)?;
                let kind: String = row.try_get("kind").map_err(store_error)?;
                let cabinet_id: Option<i64> = if kind == "new_cabinet" {
                    sqlx::query_scalar(
                        "INSERT INTO cabinets (email, password_hash, created_at) VALUES ($1, $2, $3)
                         ON CONFLICT (email) DO NOTHING RETURNING id",
                    )
                    .bind(&email)
                    .bind(hash.as_phc())
                    .bind(now.as_millis())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(store_error)?
                } else {
                    sqlx::query_scalar(
                        "UPDATE cabinets SET password_hash = $2 WHERE email = $1 RETURNING id",
                    )
                    .bind(&email)
                    .bind(hash.as_phc())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(store_error)?
                };
                let Some(cabinet_id) = cabinet_id else {
                    // A new cabinet's email got one meanwhile, or an added account's
                    // cabinet is gone: the registration cannot complete.
                    tx.commit().await.map_err(store_error)?;
                    return Ok(if kind == "new_cabinet" {
                        CommitOutcome::AlreadyRegistered
                    } else {
                        CommitOutcome::Gone
                    });
                };
                let linked = sqlx::query(
                    "INSERT INTO cabinet_accounts (account_number, cabinet_id) VALUES ($1, $2)
                     ON CONFLICT (account_number) DO NOTHING",
                )
                .bind(&account)
                .bind(cabinet_id)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?
                .rows_affected();
                if linked == 0 {
                    tx.rollback().await.map_err(store_error)?;
                    return Ok(CommitOutcome::AlreadyRegistered);
                }
                cabinet_id
            }
            Grant::Recovery(token) => {
                let cabinet_id: Option<i64> = sqlx::query_scalar(
                    "DELETE FROM recoveries WHERE token_hash = $1 AND staged_hash = $2 RETURNING cabinet_id",
                )
                .bind(token.as_bytes().as_slice())
                .bind(hash.as_phc())
                .fetch_optional(&mut *tx)
                .await
                .map_err(store_error)?;
                let Some(cabinet_id) = cabinet_id else {
                    return Ok(CommitOutcome::Gone);
                };
                sqlx::query("UPDATE cabinets SET password_hash = $2 WHERE id = $1")
                    .bind(cabinet_id)
                    .bind(hash.as_phc())
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?;
                cabinet_id
            }
        };
        let email: String = sqlx::query_scalar(
            "WITH ended AS (DELETE FROM sessions WHERE cabinet_id = $1)
             SELECT email FROM cabinets WHERE id = $1",
        )
        .bind(cabinet_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(CommitOutcome::Committed {
            email: parse_email(&email)?,
        })
    }

    async fn begin_recovery(
        &self,
        recovery: &NewRecovery,
        _now: Timestamp,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO recoveries (token_hash, cabinet_id, expires_at)
             SELECT $1, id, $3 FROM cabinets WHERE email = $2
             ON CONFLICT (cabinet_id) DO UPDATE
                SET token_hash = excluded.token_hash, expires_at = excluded.expires_at,
                    staged_hash = NULL, staged_until = NULL",
        )
        .bind(recovery.token.as_bytes().as_slice())
        .bind(recovery.email.as_str())
        .bind(recovery.expires_at.as_millis())
        .execute(&self.pool)
        .await
        .map_err(store_error)?
        .rows_affected();
        Ok(inserted > 0)
    }

    async fn abandon_recovery(&self, token: &TokenHash) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM recoveries WHERE token_hash = $1")
            .bind(token.as_bytes().as_slice())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn password_hash(&self, email: &Email) -> Result<Option<PasswordHash>, StoreError> {
        let hash: Option<String> =
            sqlx::query_scalar("SELECT password_hash FROM cabinets WHERE email = $1")
                .bind(email.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(store_error)?;
        Ok(hash.map(PasswordHash::from_phc))
    }

    async fn upgrade_password_hash(
        &self,
        email: &Email,
        old: &PasswordHash,
        new: &PasswordHash,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE cabinets SET password_hash = $3 WHERE email = $1 AND password_hash = $2",
        )
        .bind(email.as_str())
        .bind(old.as_phc())
        .bind(new.as_phc())
        .execute(&self.pool)
        .await
        .map_err(store_error)?
        .rows_affected();
        Ok(updated > 0)
    }

    async fn open_session(
        &self,
        session: &NewSession,
        clear: &[ThrottleKey],
    ) -> Result<Option<SessionState>, StoreError> {
        let keys: Vec<&str> = clear.iter().map(ThrottleKey::as_str).collect();
        // One round trip: open the session, clear the throttles, list the accounts.
        let row = sqlx::query(
            "WITH opened AS (
                 INSERT INTO sessions (token_hash, cabinet_id, active_account, created_at, last_seen)
                 SELECT $1, c.id,
                        (SELECT account_number FROM cabinet_accounts
                          WHERE cabinet_id = c.id ORDER BY linked_order LIMIT 1),
                        $3, $3
                   FROM cabinets c WHERE c.email = $2
                 RETURNING cabinet_id, active_account),
             cleared AS (DELETE FROM throttles WHERE key = ANY($4))
             SELECT o.active_account,
                    ARRAY(SELECT account_number FROM cabinet_accounts
                           WHERE cabinet_id = o.cabinet_id ORDER BY linked_order) AS accounts
               FROM opened o",
        )
        .bind(session.token.as_bytes().as_slice())
        .bind(session.email.as_str())
        .bind(session.created_at.as_millis())
        .bind(&keys)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        let Some(row) = row else { return Ok(None) };
        let active: Option<String> = row.try_get("active_account").map_err(store_error)?;
        Ok(Some(SessionState {
            email: session.email.clone(),
            active_account: active.as_deref().map(parse_account).transpose()?,
            accounts: parse_accounts(row.try_get("accounts").map_err(store_error)?)?,
        }))
    }

    async fn session(
        &self,
        token: &TokenHash,
        now: Timestamp,
        expiry: &SessionExpiry,
    ) -> Result<Option<SessionState>, StoreError> {
        let row = sqlx::query(
            "UPDATE sessions s SET last_seen = $2
               FROM cabinets c
              WHERE s.token_hash = $1 AND c.id = s.cabinet_id
                AND $2 < s.created_at + $3 AND $2 < s.last_seen + $4
          RETURNING c.email, s.active_account,
                    ARRAY(SELECT account_number FROM cabinet_accounts
                           WHERE cabinet_id = c.id ORDER BY linked_order) AS accounts",
        )
        .bind(token.as_bytes().as_slice())
        .bind(now.as_millis())
        .bind(millis(expiry.absolute))
        .bind(millis(expiry.idle))
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        let Some(row) = row else {
            // Unknown or expired: make sure an expired one is gone for good.
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(token.as_bytes().as_slice())
                .execute(&self.pool)
                .await
                .map_err(store_error)?;
            return Ok(None);
        };
        let active: Option<String> = row.try_get("active_account").map_err(store_error)?;
        Ok(Some(SessionState {
            email: parse_email(row.try_get("email").map_err(store_error)?)?,
            active_account: active.as_deref().map(parse_account).transpose()?,
            accounts: parse_accounts(row.try_get("accounts").map_err(store_error)?)?,
        }))
    }

    async fn select_account(
        &self,
        token: &TokenHash,
        account: &AccountNumber,
        now: Timestamp,
        expiry: &SessionExpiry,
    ) -> Result<SelectAccount, StoreError> {
        let row = sqlx::query(
            "WITH live AS (
                 SELECT token_hash, cabinet_id FROM sessions
                  WHERE token_hash = $1 AND $3 < created_at + $4 AND $3 < last_seen + $5
                    FOR UPDATE),
             linked AS (
                 SELECT 1 FROM live l JOIN cabinet_accounts a
                     ON a.cabinet_id = l.cabinet_id AND a.account_number = $2),
             updated AS (
                 UPDATE sessions s SET active_account = $2, last_seen = $3
                   FROM live l WHERE s.token_hash = l.token_hash AND EXISTS (SELECT 1 FROM linked)
                 RETURNING 1)
             SELECT EXISTS (SELECT 1 FROM live) AS live, EXISTS (SELECT 1 FROM updated) AS selected",
        )
        .bind(token.as_bytes().as_slice())
        .bind(account.as_str())
        .bind(now.as_millis())
        .bind(millis(expiry.absolute))
        .bind(millis(expiry.idle))
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        let live: bool = row.try_get("live").map_err(store_error)?;
        let selected: bool = row.try_get("selected").map_err(store_error)?;
        Ok(match (live, selected) {
            (_, true) => SelectAccount::Selected,
            (true, false) => SelectAccount::NotLinked,
            (false, false) => SelectAccount::NoSession,
        })
    }

    async fn end_session(&self, token: &TokenHash) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token.as_bytes().as_slice())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn throttle_status(
        &self,
        keys: &[ThrottleKey],
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        let keys: Vec<&str> = keys.iter().map(ThrottleKey::as_str).collect();
        let until: Option<i64> = sqlx::query_scalar(
            "SELECT max(locked_until) FROM throttles WHERE key = ANY($1) AND locked_until > $2",
        )
        .bind(&keys)
        .bind(now.as_millis())
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(until.map(Timestamp::from_millis))
    }

    async fn purge_expired(
        &self,
        now: Timestamp,
        expiry: &SessionExpiry,
        throttle_idle: Duration,
    ) -> Result<u64, StoreError> {
        let purged: i64 = sqlx::query_scalar(
            "WITH sessions_gone AS (
                 DELETE FROM sessions WHERE $1 >= created_at + $2 OR $1 >= last_seen + $3 RETURNING 1),
             pending_gone AS (DELETE FROM pending_registrations WHERE expires_at <= $1 RETURNING 1),
             recoveries_gone AS (DELETE FROM recoveries WHERE expires_at <= $1 RETURNING 1),
             throttles_gone AS (
                 DELETE FROM throttles
                  WHERE (locked_until IS NULL OR locked_until <= $1) AND window_start + $4 <= $1
                 RETURNING 1)
             SELECT (SELECT count(*) FROM sessions_gone) + (SELECT count(*) FROM pending_gone)
                  + (SELECT count(*) FROM recoveries_gone) + (SELECT count(*) FROM throttles_gone)",
        )
        .bind(now.as_millis())
        .bind(millis(expiry.absolute))
        .bind(millis(expiry.idle))
        .bind(millis(throttle_idle))
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(u64::try_from(purged).unwrap_or(0))
    }

    async fn count_event(
        &self,
        key: &ThrottleKey,
        now: Timestamp,
        policy: &ThrottlePolicy,
    ) -> Result<ThrottleDecision, StoreError> {
        let max = i32::try_from(policy.max_events).unwrap_or(i32::MAX);
        let mut tx = self.begin().await?;
        // Insert or lock the row, reading its state as it stands.
        let row = sqlx::query(
            "INSERT INTO throttles AS t (key, window_start, count) VALUES ($1, $2, 0)
             ON CONFLICT (key) DO UPDATE SET key = t.key
             RETURNING window_start, count, locked_until",
        )
        .bind(key.as_str())
        .bind(now.as_millis())
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        let window_start: i64 = row.try_get("window_start").map_err(store_error)?;
        let count: i32 = row.try_get("count").map_err(store_error)?;
        let locked_until: Option<i64> = row.try_get("locked_until").map_err(store_error)?;
        if let Some(until) = locked_until.filter(|until| *until > now.as_millis()) {
            tx.commit().await.map_err(store_error)?;
            return Ok(ThrottleDecision::Limited {
                retry_at: Timestamp::from_millis(until),
            });
        }
        let fresh = locked_until.is_some()
            || now.as_millis() >= window_start.saturating_add(millis(policy.window));
        let (window_start, count) = if fresh {
            (now.as_millis(), 1)
        } else {
            (window_start, count + 1)
        };
        let locked_until = (count >= max).then(|| now.plus(policy.lockout).as_millis());
        sqlx::query(
            "UPDATE throttles SET window_start = $2, count = $3, locked_until = $4 WHERE key = $1",
        )
        .bind(key.as_str())
        .bind(window_start)
        .bind(count)
        .bind(locked_until)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(ThrottleDecision::Allowed)
    }
}
