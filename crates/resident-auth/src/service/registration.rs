//! Journeys 1–3 and 7: registering (or adding an address), confirming the email, and
//! activating with the premises number, which issues the credentials.

use super::*;
use crate::ports::prelude::*;

impl AuthService {
    /// Journey 1: registration. Checks every field (all problems together), the region,
    /// the directory (account and surname, one answer for both), and that neither the
    /// account nor the email is registered; then mails "Подтверждение e-mail".
    ///
    /// # Errors
    /// [`Error::Rejected`] with the problems; [`Error::Unavailable`] if storage or mail
    /// failed (nothing is left that blocks a retry).
    #[tracing::instrument(
        name = "resident_auth.register",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn register(
        &self,
        form: &RegistrationForm,
        context: &RequestContext,
    ) -> Result<(), Error> {
        let mut problems = Problems::default();
        let surname = problems.take(form.surname.parse::<Surname>());
        let account = problems.take(form.account_number.parse::<AccountNumber>());
        let email = problems.take(form.email.parse::<Email>());
        if let Some(account) = &account {
            problems.take(self.config.served_regions.check(account));
        }
        problems.finish()?;
        match (surname, account, email) {
            (Some(surname), Some(account), Some(email)) => {
                self.start_registration(&surname, account, email, None, context)
                    .await
            }
            _ => Err(Error::Rejected(Vec::new())),
        }
    }

    /// Journey 7: adds an account to the cabinet of a live session: the registration
    /// checks, then "Подтверждение e-mail" to the cabinet's email.
    ///
    /// # Errors
    /// As [`register`](Self::register).
    #[tracing::instrument(
        name = "resident_auth.add_address",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn add_address(
        &self,
        session: &SignedIn,
        form: &AddressForm,
        context: &RequestContext,
    ) -> Result<(), Error> {
        require_chosen_password(session)?;
        let mut problems = Problems::default();
        let surname = problems.take(form.surname.parse::<Surname>());
        let account = problems.take(form.account_number.parse::<AccountNumber>());
        if let Some(account) = &account {
            problems.take(self.config.served_regions.check(account));
        }
        problems.finish()?;
        match (surname, account) {
            (Some(surname), Some(account)) => {
                self.start_registration(
                    &surname,
                    account,
                    session.email.clone(),
                    Some(session.cabinet),
                    context,
                )
                .await
            }
            _ => Err(Error::Rejected(Vec::new())),
        }
    }

    pub(super) async fn start_registration(
        &self,
        surname: &Surname,
        account: AccountNumber,
        email: Email,
        cabinet: Option<CabinetId>,
        context: &RequestContext,
    ) -> Result<(), Error> {
        let store = self.store();
        let now = self.now();
        if let Some(client) = &context.client {
            let limit = self.config.registration_per_client;
            self.throttle(&[(counters::registration_client(client), limit)], now)
                .await?;
        }
        let record = self.ports.directory.lookup(&account).await?;
        let known = record.is_some_and(|r| {
            r.surnames.is_empty() || r.surnames.iter().any(|s| surname.matches(s))
        });
        if !known {
            return Err(Problem::AccountNotFound.into());
        }
        if store
            .cabinet(CabinetKey::Account(&account))
            .await?
            .is_some()
        {
            return Err(Problem::AlreadyRegistered.into());
        }
        if cabinet.is_none() && store.cabinet(CabinetKey::Email(&email)).await?.is_some() {
            return Err(Problem::AlreadyRegistered.into());
        }
        let limit = self.config.registrations_per_account;
        self.throttle(&[(counters::registration_account(&account), limit)], now)
            .await?;
        let resend = Limit::new(1, self.config.letter_resend_interval);
        let cooldowns = [
            (counters::letter_email(&email), resend),
            (counters::letter_account(&account), resend),
            (
                counters::letter_email_daily(&email),
                self.config.letters_per_address_daily,
            ),
        ];
        let token = Token::generate();
        let sent = self
            .send_confirmation(&token, &cooldowns, email, account, cabinet, context, now)
            .await;
        if matches!(sent, Err(Error::Unavailable(_))) {
            // Storage failed after the cooldowns were counted: no link and no letter were
            // stored (they are one write), so drop the cooldowns, and the same request can
            // be made again at once. If this fails too, they expire by themselves.
            for (key, _) in &cooldowns {
                let _ = store.reset(key).await;
            }
        }
        if sent.is_ok() {
            self.record(
                Event::new(EventKind::Registered, now)
                    .about(cabinet, Some(account))
                    .from_client(context.client.as_deref()),
            )
            .await;
        }
        sent
    }

    /// Counts the letter against the cooldowns, then stores the confirmation link with its
    /// letter queued, in one write.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn send_confirmation(
        &self,
        token: &Token,
        cooldowns: &[(CounterKey, Limit)],
        email: Email,
        account: AccountNumber,
        cabinet: Option<CabinetId>,
        context: &RequestContext,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.throttle(cooldowns, now).await?;
        let hash = token.hash();
        let link = Link {
            purpose: LinkPurpose::Confirmation,
            email: email.clone(),
            account_number: Some(account),
            cabinet,
            credential_version: None,
            expires_at: now.plus(self.config.confirmation_ttl),
            issuing_until: None,
        };
        let letter = Letter {
            to: email,
            locale: context.locale,
            content: LetterContent::ConfirmEmail {
                link: self.config.links.confirmation(token),
            },
        };
        let queued = self.queued(&letter, cabinet, now);
        if !self
            .store()
            .swap_link(&hash, Expected::Absent, Some((&hash, &link)), Some(&queued))
            .await?
        {
            return Err(StoreError::generic("a fresh token collided with a stored one").into());
        }
        self.letter_written(queued).await;
        Ok(())
    }

    /// A live link of `purpose` under `token`, or [`Problem::InvalidLink`].
    pub(super) async fn live_link(
        &self,
        token: &TokenHash,
        purpose: LinkPurpose,
        now: Timestamp,
    ) -> Result<Versioned<Link>, Error> {
        match self.store().link(token).await? {
            Some(link) if link.value.purpose == purpose && now < link.value.expires_at => Ok(link),
            _ => Err(Problem::InvalidLink.into()),
        }
    }

    /// The account's premises counters with their limits, shortest window first.
    pub(super) fn premises_limits(&self, account: &AccountNumber) -> Vec<(CounterKey, Limit)> {
        self.config
            .premises_attempts
            .iter()
            .map(|limit| (counters::premises_account(account, limit.window), *limit))
            .collect()
    }

    /// Journey 2: the confirmation link. Returns the activation token that unlocks the
    /// next step; only the link's holder gets it.
    ///
    /// # Errors
    /// [`Problem::InvalidLink`] for an unknown, used or expired token.
    #[tracing::instrument(
        name = "resident_auth.confirm_email",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn confirm_email(&self, confirmation_token: &str) -> Result<Token, Error> {
        let token = Token::from_user(confirmation_token).ok_or(Problem::InvalidLink)?;
        let hash = token.hash();
        let now = self.now();
        let activation = Token::generate();
        let next = LinkAdvance {
            purpose: LinkPurpose::Activation,
            expires_at: now.plus(self.config.activation_ttl),
        };
        let link = self
            .store()
            .advance_link(
                &hash,
                LinkPurpose::Confirmation,
                now,
                &activation.hash(),
                next,
            )
            .await?
            .ok_or(Problem::InvalidLink)?;
        self.record(Event::new(EventKind::Confirmed, now).about(link.cabinet, link.account_number))
            .await;
        Ok(activation)
    }

    /// Journey 3 (and 7): activation with the premises number. Every try is counted
    /// against the account's limit before the directory is read, except one refused
    /// because the link is busy issuing credentials (a try cut off by a crash holds it for
    /// [`AuthConfig::credentials_lease`]), which compares nothing. Right: a new password is
    /// generated and made effective in the same store write that queues its letter
    /// "Данные для входа" (the mail queue). Returns the cabinet's email; never the password.
    ///
    /// # Errors
    /// [`Problem::WrongPremises`] with attempts left, [`Problem::ActivationLocked`],
    /// [`Problem::InvalidLink`], [`Problem::TooManyRequests`] while another try of the link
    /// issues credentials, a premises syntax problem, or [`Error::Unavailable`].
    #[tracing::instrument(
        name = "resident_auth.activate",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn activate(
        &self,
        activation_token: &str,
        premises: &str,
        context: &RequestContext,
    ) -> Result<Email, Error> {
        let token = Token::from_user(activation_token).ok_or(Problem::InvalidLink)?;
        let premises: Premises = premises.parse().map_err(Problem::from)?;
        let hash = token.hash();
        let now = self.now();
        let link = self.live_link(&hash, LinkPurpose::Activation, now).await?;
        let Some(account) = link.value.account_number else {
            return Err(Problem::InvalidLink.into());
        };
        // A try refused because another try of this link is issuing credentials right
        // now (or was cut off doing so and holds its lease) compares no premises: it is
        // not counted.
        if let Some(until) = link.value.issuing_until.filter(|until| *until > now) {
            return Err(Problem::TooManyRequests {
                retry_after: now.until(until),
            }
            .into());
        }
        let attempts = self.premises_limits(&account);
        let event = |kind| {
            Event::new(kind, now)
                .about(link.value.cabinet, Some(account))
                .from_client(context.client.as_deref())
        };
        let counts = match self.count_against(&attempts, now).await? {
            Counted::Within(counts) => counts,
            Counted::Exceeded(until) => {
                self.record(event(EventKind::ActivationLocked)).await;
                return Err(Problem::ActivationLocked {
                    retry_after: now.until(until),
                }
                .into());
            }
        };
        // Only counted tries reach the directory (a guesser cannot make it work harder).
        let record = self.ports.directory.lookup(&account).await?;
        if !record.is_some_and(|r| r.premises == premises) {
            let (kind, problem) = wrong_premises(&counts, &attempts, now);
            self.record(event(kind)).await;
            return Err(problem.into());
        }
        let (issue, kind) = match link.value.cabinet {
            None => (
                Issue::NewCabinet {
                    email: link.value.email.clone(),
                    account,
                },
                EventKind::Activated,
            ),
            Some(cabinet) => (
                Issue::AddAccount { cabinet, account },
                EventKind::AccountAdded,
            ),
        };
        let (email, cabinet) = self
            .issue_credentials(&hash, link, issue, context.locale)
            .await?;
        self.record(
            Event::new(kind, now)
                .about(Some(cabinet), Some(account))
                .from_client(context.client.as_deref()),
        )
        .await;
        // The registration is complete: its tries and its letter cooldowns are spent, so
        // the resident may add an address at once. Best effort: a lingering count only
        // shortens a later activation's tries or delays a letter by the resend interval.
        let mut spent: Vec<CounterKey> = attempts.into_iter().map(|(key, _)| key).collect();
        spent.push(counters::letter_email(&email));
        spent.push(counters::letter_account(&account));
        let _ = self.store().reset_all(&spent).await;
        Ok(email)
    }

    /// Takes the lease on `link` for issuing credentials (another request for the same link
    /// waits it out); the version the link has under the lease.
    async fn lease_link(
        &self,
        token: &TokenHash,
        link: &Versioned<Link>,
        now: Timestamp,
    ) -> Result<Version, Error> {
        let leased = Link {
            issuing_until: Some(now.plus(self.config.credentials_lease)),
            ..link.value.clone()
        };
        if !self
            .store()
            .swap_link(
                token,
                Expected::Version(link.version),
                Some((token, &leased)),
                None,
            )
            .await?
        {
            return Err(Problem::InvalidLink.into());
        }
        Ok(link.version.next())
    }

    /// The letter with the login and a new password.
    fn credentials_letter(&self, email: &Email, password: SecretString, locale: Locale) -> Letter {
        Letter {
            to: email.clone(),
            locale,
            content: LetterContent::Credentials {
                login: email.clone(),
                password,
                temporary: self.config.mailed_password_lifetime.is_some(),
            },
        }
    }

    /// Generates a password under the grant of `link` and makes it effective in the same
    /// write that queues its letter, so that no cabinet ends up with a password whose
    /// letter is not on its way. The link is held (leased) meanwhile, so a concurrent use
    /// waits rather than issuing a second password; argon2 runs only after the link has
    /// been validated. Returns the cabinet's email and identity.
    pub(super) async fn issue_credentials(
        &self,
        token: &TokenHash,
        link: Versioned<Link>,
        issue: Issue,
        locale: Locale,
    ) -> Result<(Email, CabinetId), Error> {
        let store = self.store();
        let now = self.now();
        // Another request is issuing under this link right now: it will finish the job.
        if let Some(until) = link.value.issuing_until.filter(|until| *until > now) {
            return Err(Problem::TooManyRequests {
                retry_after: now.until(until),
            }
            .into());
        }
        // A registration that can no longer succeed (or whose credentials an earlier try
        // already made effective) is answered before any letter.
        let mut cabinet_read = None;
        let email = match &issue {
            Issue::NewCabinet { email, account } => {
                if let Some(done) = self.already_done(token, &link, email, account).await? {
                    return done;
                }
                email.clone()
            }
            Issue::AddAccount { cabinet, account } => {
                let Some(current) = store.cabinet(CabinetKey::Id(cabinet)).await? else {
                    return Err(Problem::InvalidLink.into());
                };
                let email = current.value.email.clone();
                if let Some(done) = self.already_done(token, &link, &email, account).await? {
                    return done;
                }
                cabinet_read = Some(current);
                email
            }
            Issue::Recovery {
                cabinet,
                credential_version,
            } => match store.cabinet(CabinetKey::Id(cabinet)).await? {
                Some(current) if current.value.credential_version == *credential_version => {
                    let email = current.value.email.clone();
                    cabinet_read = Some(current);
                    email
                }
                _ => return Err(Problem::InvalidLink.into()),
            },
        };
        let leased_version = self.lease_link(token, &link, now).await?;
        let release = || async {
            let _ = store
                .swap_link(
                    token,
                    Expected::Version(leased_version),
                    Some((token, &link.value)),
                    None,
                )
                .await;
        };
        let password = generate_password();
        let hash = match self.ports.hasher.hash(password.clone()).await {
            Ok(hash) => hash,
            Err(error) => {
                release().await;
                return Err(error.into());
            }
        };
        let letter = self.credentials_letter(&email, password, locale);
        let (cabinet, queued) = match self
            .write_credentials(&issue, &email, hash, cabinet_read, &letter)
            .await
        {
            Ok(written) => written,
            Err(error) => {
                // Neither the password nor its letter were written; release the link so
                // the retry need not wait the lease.
                release().await;
                return Err(error);
            }
        };
        self.letter_written(queued).await;
        // The credentials are in force and their letter queued: the step succeeded. The link is spent;
        // should deleting it fail, it is dead all the same — a recovery link names the
        // credential version just replaced, and a registration link finds its account
        // linked and its work done.
        let _ = store
            .swap_link(token, Expected::Version(leased_version), None, None)
            .await;
        Ok((email, cabinet))
    }

    /// For a registration whose account is already in `email`'s cabinet (an earlier try
    /// of this very link got that far), spends the link and answers as that try should
    /// have. For an account or email registered otherwise, refuses.
    pub(super) async fn already_done(
        &self,
        token: &TokenHash,
        link: &Versioned<Link>,
        email: &Email,
        account: &AccountNumber,
    ) -> Result<Option<Result<(Email, CabinetId), Error>>, Error> {
        let store = self.store();
        let owner = match store.cabinet(CabinetKey::Account(account)).await? {
            Some(cabinet) => Some(cabinet),
            // The email's cabinet, read second, may have been made by this very link a
            // moment after the account was read.
            None if link.value.cabinet.is_none() => store.cabinet(CabinetKey::Email(email)).await?,
            None => None,
        };
        match owner {
            Some(cabinet)
                if &cabinet.value.email == email && cabinet.value.accounts.contains(account) =>
            {
                // Only the request that spends the link may say it worked.
                let spent = store
                    .swap_link(token, Expected::Version(link.version), None, None)
                    .await?;
                Ok(Some(if spent {
                    Ok((email.clone(), cabinet.value.id))
                } else {
                    Err(Problem::InvalidLink.into())
                }))
            }
            Some(_) => Ok(Some(Err(Problem::AlreadyRegistered.into()))),
            None => Ok(None),
        }
    }

    /// Makes `hash` the cabinet's password (creating the cabinet, or linking the account,
    /// as `issue` says), bumping the credential version so every session opened before
    /// ends, and queues `letter` in the same write. Retries when another request changed
    /// the cabinet in between; `read` is the cabinet as the caller just read it, if it did.
    /// Returns the cabinet's identity and the letter as queued.
    pub(super) async fn write_credentials(
        &self,
        issue: &Issue,
        email: &Email,
        hash: HashedPassword,
        mut read: Option<Versioned<Cabinet>>,
        letter: &Letter,
    ) -> Result<(CabinetId, QueuedLetter), Error> {
        let store = self.store();
        let now = self.now();
        let password_expires_at = self
            .config
            .mailed_password_lifetime
            .map(|lifetime| now.plus(lifetime));
        if let Issue::NewCabinet { account, .. } = issue {
            let cabinet = Cabinet {
                id: CabinetId::generate(),
                email: email.clone(),
                password_hash: hash,
                credential_version: 1,
                accounts: vec![*account],
                password_expires_at,
            };
            let queued = self.queued(letter, Some(cabinet.id), now);
            return match store
                .swap_cabinet(&cabinet.id, Expected::Absent, Some(&cabinet), Some(&queued))
                .await?
            {
                CabinetSwap::Written => Ok((cabinet.id, queued)),
                CabinetSwap::Conflict | CabinetSwap::Taken => {
                    Err(Problem::AlreadyRegistered.into())
                }
            };
        }
        let id = match issue {
            Issue::AddAccount { cabinet, .. } | Issue::Recovery { cabinet, .. } => *cabinet,
            Issue::NewCabinet { .. } => return Err(Problem::InvalidLink.into()),
        };
        let queued = self.queued(letter, Some(id), now);
        for _ in 0..CABINET_WRITE_ATTEMPTS {
            let current = match read.take() {
                Some(current) => current,
                None => match store.cabinet(CabinetKey::Id(&id)).await? {
                    Some(current) => current,
                    None => return Err(Problem::InvalidLink.into()),
                },
            };
            let mut next = current.value.clone();
            match issue {
                Issue::AddAccount { account, .. } if !next.accounts.contains(account) => {
                    next.accounts.push(*account);
                }
                Issue::Recovery {
                    credential_version, ..
                } if next.credential_version != *credential_version => {
                    return Err(Problem::InvalidLink.into());
                }
                _ => {}
            }
            next.password_hash = hash.clone();
            next.credential_version = next.credential_version.saturating_add(1);
            next.password_expires_at = password_expires_at;
            match store
                .swap_cabinet(
                    &id,
                    Expected::Version(current.version),
                    Some(&next),
                    Some(&queued),
                )
                .await?
            {
                CabinetSwap::Written => return Ok((id, queued)),
                CabinetSwap::Taken => return Err(Problem::AlreadyRegistered.into()),
                CabinetSwap::Conflict => {}
            }
        }
        Err(StoreError::unavailable("the cabinet kept changing under a write").into())
    }
}

/// The answer to a premises number that does not match, after the try was counted: how
/// many tries are left, or the lock once a window is full.
fn wrong_premises(
    counts: &[Count],
    attempts: &[(CounterKey, Limit)],
    now: Timestamp,
) -> (EventKind, Problem) {
    let attempts_left = counts
        .iter()
        .zip(attempts)
        .map(|(count, (_, limit))| limit.max.saturating_sub(count.count))
        .min()
        .unwrap_or(0);
    let locked_until = counts
        .iter()
        .zip(attempts)
        .filter(|(count, (_, limit))| count.count >= limit.max)
        .map(|(count, _)| count.window_ends)
        .max();
    match locked_until {
        Some(until) => (
            EventKind::ActivationLocked,
            Problem::ActivationLocked {
                retry_after: now.until(until),
            },
        ),
        None => (
            EventKind::ActivationFailed,
            Problem::WrongPremises { attempts_left },
        ),
    }
}
