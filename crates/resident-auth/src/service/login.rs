//! Journeys 4, 5 and 7: logging in, checking a session, the cabinet, switching accounts,
//! logging out.

use super::*;
use crate::ports::prelude::*;

impl AuthService {
    /// Journey 4, step 1: the email alone, syntax only. Never reveals whether it is
    /// registered. Returns the canonical form.
    ///
    /// # Errors
    /// [`Problem::IncorrectData`] ("Некорректные данные").
    pub fn identify(&self, email: &str) -> Result<Email, Error> {
        email
            .parse::<Email>()
            .map_err(|_| Problem::IncorrectData.into())
    }

    /// Journey 4, step 2: email and password. The try is counted against the cabinet's
    /// and the client's limits before argon2 runs, so a burst of parallel tries runs at
    /// most the limit's verifications. A wrong password and an unknown email get the same
    /// answer after the same argon2 work and the same store calls.
    ///
    /// # Errors
    /// [`Problem::InvalidCredentials`], [`Problem::LoginThrottled`],
    /// [`Problem::IncorrectData`], or [`Error::Unavailable`].
    #[tracing::instrument(name = "resident_auth.login", skip_all, err(level = "debug", Display))]
    pub async fn login(
        &self,
        email: &str,
        password: SecretString,
        context: &RequestContext,
    ) -> Result<LoggedIn, Error> {
        let result = self.login_steps(email, password, context).await;
        let (kind, outcome) = match &result {
            Ok(_) => (EventKind::LoginSucceeded, "succeeded"),
            Err(error) if error.is(&Problem::InvalidCredentials) => {
                (EventKind::LoginFailed, "failed")
            }
            Err(Error::Rejected(problems))
                if problems
                    .iter()
                    .any(|p| matches!(p, Problem::LoginThrottled { .. })) =>
            {
                (EventKind::LoginThrottled, "throttled")
            }
            // Malformed input or a failure of storage: no login was tried.
            Err(_) => return result,
        };
        crate::events::metrics::login(outcome);
        let cabinet = result.as_ref().ok().map(|logged_in| logged_in.cabinet);
        self.record(
            Event::new(kind, self.now())
                .about(cabinet, None)
                .from_client(context.client.as_deref()),
        )
        .await;
        result
    }

    pub(super) async fn login_steps(
        &self,
        email: &str,
        password: SecretString,
        context: &RequestContext,
    ) -> Result<LoggedIn, Error> {
        let email = self.identify(email)?;
        let password = crate::password::normalize(&password);
        let store = self.store();
        let now = self.now();
        let [pair_key, cabinet_key] = self.count_password_try(&email, context, now).await?;
        let cabinet = store.cabinet(CabinetKey::Email(&email)).await?;
        let stored = cabinet.as_ref().map(|c| c.value.password_hash.clone());
        let rehash = match self.ports.hasher.verify(password.clone(), stored).await? {
            Verification::Mismatch => return Err(Problem::InvalidCredentials.into()),
            Verification::Match { rehash } => rehash,
        };
        let Some(mut cabinet) = cabinet else {
            return Err(Problem::InvalidCredentials.into());
        };
        if cabinet
            .value
            .password_expires_at
            .is_some_and(|until| until <= now)
        {
            return Err(Problem::PasswordExpired.into());
        }
        if rehash {
            // Best effort: a failed upgrade must not fail a correct login. The credential
            // version stays: the password is the same, its sessions live on.
            if let Ok(new) = self.ports.hasher.hash(password).await {
                let mut next = cabinet.value.clone();
                next.password_hash = new;
                if let Ok(CabinetSwap::Written) = store
                    .swap_cabinet(
                        &next.id,
                        Expected::Version(cabinet.version),
                        Some(&next),
                        None,
                    )
                    .await
                {
                    cabinet.value = next;
                }
            }
        }
        let session_token = Token::generate();
        let session = Session {
            id: SessionId::generate(),
            cabinet: cabinet.value.id,
            credential_version: cabinet.value.credential_version,
            active_account: cabinet.value.accounts.first().copied(),
            created_at: now,
            last_used: now,
            expires_at: self.session_expires_at(now, now),
            client: super::client::client_summary(context),
        };
        let token_hash = session_token.hash();
        let cleared = [pair_key, cabinet_key];
        let (opened, _) = futures::join!(
            store.swap_session(&token_hash, Expected::Absent, Some(&session)),
            // Best effort: a lingering count only shortens the next run of tries.
            store.reset_all(&cleared),
        );
        if !opened? {
            return Err(StoreError::generic("a fresh token collided with a stored one").into());
        }
        Ok(LoggedIn {
            session_token,
            cabinet: cabinet.value.id,
            email: cabinet.value.email,
            active_account: session.active_account,
            password_change_required: cabinet.value.password_expires_at.is_some(),
        })
    }

    /// Whether `session` still authenticates at `now` for a cabinet whose credentials are
    /// at `credential_version`: neither idle nor absolute expiry has passed (alive at
    /// expiry − 1 ms, dead at expiry), and no new credentials were issued since it opened.
    pub(super) fn session_alive(
        &self,
        session: &Session,
        credential_version: u64,
        now: Timestamp,
    ) -> bool {
        session.credential_version == credential_version
            && now < session.created_at.plus(self.config.session_absolute)
            && now < session.last_used.plus(self.config.session_idle)
    }

    /// Counts a password try for the cabinet of `email` before argon2 runs, and refuses it
    /// when a limit is exceeded. Two steps: the limits of this client (for this cabinet,
    /// and whatever the cabinet) first; only a try they let through counts against the
    /// cabinet-wide cap, so one client's refused tries never fill the cap that would lock
    /// the owner out everywhere. Returns the keys a success clears: (cabinet, client) and
    /// the cabinet's.
    pub(super) async fn count_password_try(
        &self,
        email: &Email,
        context: &RequestContext,
        now: Timestamp,
    ) -> Result<[CounterKey; 2], Error> {
        let pair_key = counters::login_cabinet_client(email, context.client.as_deref());
        let mut client_limits = vec![(pair_key.clone(), self.config.login_per_cabinet_and_client)];
        if let Some(client) = &context.client {
            client_limits.push((counters::login_client(client), self.config.login_per_client));
        }
        let cabinet_key = counters::login_cabinet(email);
        let cabinet_limit = [(cabinet_key.clone(), self.config.login_per_cabinet)];
        for limits in [client_limits.as_slice(), cabinet_limit.as_slice()] {
            if let Counted::Exceeded(until) = self.count_against(limits, now).await? {
                return Err(Problem::LoginThrottled {
                    retry_after: now.until(until),
                }
                .into());
            }
        }
        Ok([pair_key, cabinet_key])
    }

    pub(super) fn session_expires_at(
        &self,
        created_at: Timestamp,
        last_used: Timestamp,
    ) -> Timestamp {
        created_at
            .plus(self.config.session_absolute)
            .min(last_used.plus(self.config.session_idle))
    }

    /// Journey 5: who a session token belongs to, in one store lookup. The session's last
    /// use is written only when the stored one is older than the touch interval, and never
    /// moves backwards. A session is dead once idle or absolute expiry passes, or once the
    /// cabinet's credentials were issued anew after it was opened.
    ///
    /// # Errors
    /// [`Problem::SessionInvalid`] for an unknown or expired session.
    #[tracing::instrument(
        name = "resident_auth.authenticate",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn authenticate(&self, session_token: &str) -> Result<SignedIn, Error> {
        let token = Token::from_user(session_token).ok_or(Problem::SessionInvalid)?;
        let hash = token.hash();
        let store = self.store();
        let now = self.now();
        let Some((session, cabinet)) = store.session_with_cabinet(&hash).await? else {
            return Err(Problem::SessionInvalid.into());
        };
        let record = &session.value;
        if !self.session_alive(record, cabinet.credential_version, now) {
            // Dead for good: make sure it is gone.
            store
                .swap_session(&hash, Expected::Version(session.version), None)
                .await?;
            return Err(Problem::SessionInvalid.into());
        }
        let mut handle = SessionHandle {
            token: hash,
            version: session.version,
            record: session.value.clone(),
        };
        if record.last_used.plus(self.config.session_touch_interval) <= now {
            let mut touched = handle.record.clone();
            touched.last_used = now.max(record.last_used);
            touched.expires_at = self.session_expires_at(touched.created_at, touched.last_used);
            // Losing this race (another request touched it, or a logout) changes nothing
            // for this request.
            if store
                .swap_session(&hash, Expected::Version(session.version), Some(&touched))
                .await?
            {
                handle.version = session.version.next();
                handle.record = touched;
            }
        }
        let active_account = handle
            .record
            .active_account
            .filter(|account| cabinet.accounts.contains(account))
            .or_else(|| cabinet.accounts.first().copied());
        Ok(SignedIn {
            cabinet: cabinet.id,
            email: cabinet.email,
            active_account,
            accounts: cabinet.accounts,
            password_change_required: cabinet.password_expires_at.is_some(),
            session: handle,
        })
    }

    /// Journey 5: the cabinet with the address of every linked account.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if the directory cannot be read.
    #[tracing::instrument(
        name = "resident_auth.cabinet",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn cabinet(&self, session: &SignedIn) -> Result<CabinetView, Error> {
        require_chosen_password(session)?;
        let mut accounts = Vec::with_capacity(session.accounts.len());
        for account_number in &session.accounts {
            let (address, premises) = self.address_of(account_number).await?.unzip();
            accounts.push(LinkedAccount {
                account_number: *account_number,
                address: address.unwrap_or_default(),
                premises,
            });
        }
        Ok(CabinetView {
            cabinet: session.cabinet,
            email: session.email.clone(),
            accounts,
            active_account: session.active_account,
        })
    }

    /// The address and premises of `account` from the directory, or as read within
    /// [`AuthConfig::addresses_kept_for`].
    async fn address_of(
        &self,
        account: &AccountNumber,
    ) -> Result<super::addresses::Address, Error> {
        let now = self.now();
        if let Some(kept) = self.addresses.get(account, now) {
            return Ok(kept);
        }
        let address = self
            .ports
            .directory
            .lookup(account)
            .await?
            .map(|record| (record.address, record.premises));
        if !self.config.addresses_kept_for.is_zero() {
            self.addresses.put(
                *account,
                now.plus(self.config.addresses_kept_for),
                address.clone(),
            );
        }
        Ok(address)
    }

    /// Journey 5: switches the session to another linked account.
    ///
    /// # Errors
    /// [`Problem::SessionInvalid`] if the session ended meanwhile,
    /// [`Problem::AccountNotLinked`], an account number syntax problem, or
    /// [`Error::Unavailable`].
    #[tracing::instrument(
        name = "resident_auth.select_account",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn select_account(
        &self,
        session: &SignedIn,
        account_number: &str,
    ) -> Result<(), Error> {
        require_chosen_password(session)?;
        let account: AccountNumber = account_number.parse().map_err(Problem::from)?;
        if !session.accounts.contains(&account) {
            return Err(Problem::AccountNotLinked.into());
        }
        let handle = &session.session;
        let store = self.store();
        let (mut record, mut version) = (handle.record.clone(), handle.version);
        for _ in 0..CABINET_WRITE_ATTEMPTS {
            let next = Session {
                active_account: Some(account),
                ..record
            };
            if store
                .swap_session(&handle.token, Expected::Version(version), Some(&next))
                .await?
            {
                self.record(
                    Event::new(EventKind::AccountSelected, self.now())
                        .about(Some(session.cabinet), Some(account)),
                )
                .await;
                return Ok(());
            }
            // Another request of the same session touched it: write over its version,
            // unless the session is gone or belongs to older credentials.
            match store.session(&handle.token).await? {
                Some(current)
                    if current.value.credential_version == handle.record.credential_version =>
                {
                    (record, version) = (current.value, current.version);
                }
                _ => return Err(Problem::SessionInvalid.into()),
            }
        }
        Err(StoreError::unavailable("the session kept changing under a write").into())
    }

    /// Journey 5: ends the session.
    ///
    /// # Errors
    /// [`Problem::SessionInvalid`] for a malformed token, or [`Error::Unavailable`].
    #[tracing::instrument(name = "resident_auth.logout", skip_all, err(level = "debug", Display))]
    pub async fn logout(&self, session_token: &str) -> Result<(), Error> {
        let token = Token::from_user(session_token).ok_or(Problem::SessionInvalid)?;
        let hash = token.hash();
        let store = self.store();
        let ended = store.session(&hash).await?;
        if let Some(ended) = ended {
            if store
                .swap_session(&hash, Expected::Version(ended.version), None)
                .await?
            {
                self.record(
                    Event::new(EventKind::SessionEnded, self.now())
                        .about(Some(ended.value.cabinet), None),
                )
                .await;
            }
        }
        Ok(())
    }
}
