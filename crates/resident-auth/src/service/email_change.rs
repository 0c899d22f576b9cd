//! Journey 12 (docs/contract.md §3): a signed-in resident changes the cabinet's email. The
//! change waits for a link mailed to the new address; the address in force is told, with a
//! link that cancels it.
//!
//! Both links name the cabinet's credential version when they were mailed, and following
//! either one moves it on: so exactly one of them works, once, and neither survives a
//! recovery, a password change or a change of accounts made meanwhile.

use secrecy::SecretString;

use super::*;
use crate::ports::prelude::*;

impl AuthService {
    /// Journey 12, step 1: asks for the cabinet's email to become `new_email`. Counted first
    /// per cabinet ([`AuthConfig::email_changes_per_cabinet`]) and per client
    /// ([`AuthConfig::registration_per_client`]); then the current password is counted and
    /// checked as for a password change. A new address that is another cabinet's login is
    /// refused without saying whose. Two letters are queued: "Подтверждение нового
    /// e-mail" with the link to the new address ([`AuthService::confirm_email_change`]),
    /// and first "Смена e-mail" to the address in force with the link that cancels the
    /// change ([`AuthService::cancel_email_change`]). Nothing changes until the link is
    /// followed: the resident still logs in with the address in force.
    ///
    /// # Errors
    /// An email syntax problem, [`Problem::EmailUnchanged`], [`Problem::EmailTaken`],
    /// [`Problem::TooManyRequests`], [`Problem::CurrentPasswordWrong`],
    /// [`Problem::PasswordExpired`], [`Problem::LoginThrottled`],
    /// [`Problem::PasswordChangeRequired`] with a temporary password,
    /// [`Problem::SessionInvalid`] if the session ended meanwhile, or
    /// [`Error::Unavailable`].
    #[tracing::instrument(
        name = "resident_auth.request_email_change",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn request_email_change(
        &self,
        session: &SignedIn,
        new_email: &str,
        current_password: SecretString,
        context: &RequestContext,
    ) -> Result<(), Error> {
        require_chosen_password(session)?;
        let new_email: Email = new_email.parse().map_err(Problem::from)?;
        if new_email == session.email {
            return Err(Problem::EmailUnchanged.into());
        }
        let now = self.now();
        let mut limits = vec![(
            counters::email_change_cabinet(&session.cabinet),
            self.config.email_changes_per_cabinet,
        )];
        if let Some(client) = &context.client {
            limits.push((
                counters::registration_client(client),
                self.config.registration_per_client,
            ));
        }
        self.throttle(&limits, now).await?;
        let keys = self
            .check_current_password(session, current_password, context)
            .await?;
        let store = self.store();
        if store
            .cabinet(CabinetKey::Email(&new_email))
            .await?
            .is_some()
        {
            return Err(Problem::EmailTaken.into());
        }
        // The new address gets letters no faster than any other recipient of a link.
        self.throttle(
            &[
                (
                    counters::letter_email(&new_email),
                    Limit::new(1, self.config.letter_resend_interval),
                ),
                (
                    counters::letter_email_daily(&new_email),
                    self.config.letters_per_address_daily,
                ),
            ],
            now,
        )
        .await?;
        let written = self
            .mail_email_change_links(session, &new_email, context, now)
            .await;
        if let Err(Error::Unavailable(_)) = &written {
            // Storage failed before both letters were queued: the same request may be
            // made again at once.
            let _ = store.reset(&counters::letter_email(&new_email)).await;
        }
        for letter in written? {
            self.letter_written(letter).await;
        }
        // The current password was right: its tries start again, as after a login.
        let _ = store.reset_all(&keys).await;
        self.record(
            Event::new(EventKind::EmailChangeRequested, now)
                .about(Some(session.cabinet), None)
                .from_client(context.client.as_deref()),
        )
        .await;
        Ok(())
    }

    /// Journey 12, step 2: the link mailed to the new address. The cabinet's login becomes
    /// that address, once: the link is single-use, expires with
    /// [`AuthConfig::confirmation_ttl`], and dies with any recovery, password change,
    /// account change or cancellation made since it was mailed. Every session ends except
    /// `session`, when the link is followed in a session of the same cabinet. The old
    /// address no longer logs in; the new one does. Returns the new login.
    ///
    /// # Errors
    /// [`Problem::InvalidLink`]; [`Problem::EmailTaken`] if another cabinet took the
    /// address meanwhile; or [`Error::Unavailable`].
    #[tracing::instrument(
        name = "resident_auth.confirm_email_change",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn confirm_email_change(
        &self,
        email_change_token: &str,
        session: Option<&SignedIn>,
        context: &RequestContext,
    ) -> Result<Email, Error> {
        let (hash, link, cabinet, credential_version) = self
            .live_cabinet_link(email_change_token, LinkPurpose::EmailChange)
            .await?;
        let new_email = link.value.email.clone();
        let new_version = self
            .move_credential_version(&cabinet, credential_version, Some(&new_email))
            .await?;
        // Spent: it names the version just replaced, so it is dead even if this fails.
        let _ = self
            .store()
            .swap_link(&hash, Expected::Version(link.version), None, None)
            .await;
        if let Some(session) = session.filter(|session| {
            session.cabinet == cabinet
                && session.session.record.credential_version == credential_version
        }) {
            if let Err(error) = self.keep_session(session, new_version).await {
                tracing::warn!(%cabinet, %error, "the session that confirmed the new email ended");
            }
        }
        self.record(
            Event::new(EventKind::EmailChanged, self.now())
                .about(Some(cabinet), None)
                .from_client(context.client.as_deref()),
        )
        .await;
        Ok(new_email)
    }

    /// Journey 12, "это был не я": the link mailed to the address in force cancels the
    /// pending change. Asking for a change needs the current password, so a change the
    /// owner cancels means someone else has it: the password is retired with it. New
    /// credentials go to the address in force ("Данные для входа", as after a recovery),
    /// and the email-change link, every session and every other link naming the old
    /// credentials stop working. Single-use, and dead once the change was confirmed.
    /// Returns the login the new password belongs to.
    ///
    /// # Errors
    /// [`Problem::InvalidLink`], [`Problem::TooManyRequests`] while the same link is
    /// being used, or [`Error::Unavailable`].
    #[tracing::instrument(
        name = "resident_auth.cancel_email_change",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn cancel_email_change(
        &self,
        cancel_token: &str,
        context: &RequestContext,
    ) -> Result<Email, Error> {
        let (hash, link, cabinet, credential_version) = self
            .live_cabinet_link(cancel_token, LinkPurpose::EmailChangeCancel)
            .await?;
        let issue = Issue::Recovery {
            cabinet,
            credential_version,
        };
        let (email, _) = self
            .issue_credentials(&hash, link, issue, context.locale)
            .await?;
        self.record(
            Event::new(EventKind::EmailChangeCancelled, self.now())
                .about(Some(cabinet), None)
                .from_client(context.client.as_deref()),
        )
        .await;
        Ok(email)
    }

    /// Stores the cancel link with its notice to the address in force, then the change
    /// link with its letter to `new_email`, each in one write; returns both letters.
    async fn mail_email_change_links(
        &self,
        session: &SignedIn,
        new_email: &Email,
        context: &RequestContext,
        now: Timestamp,
    ) -> Result<[QueuedLetter; 2], Error> {
        let credential_version = session.session.record.credential_version;
        let expires_at = now.plus(self.config.confirmation_ttl);
        let link = |purpose, email: &Email| Link {
            purpose,
            email: email.clone(),
            account_number: None,
            cabinet: Some(session.cabinet),
            credential_version: Some(credential_version),
            expires_at,
            issuing_until: None,
        };
        // The notice first: no change can be confirmed before the address in force has
        // its way to cancel it.
        let cancel = Token::generate();
        let notice = Letter {
            to: session.email.clone(),
            locale: context.locale,
            content: LetterContent::EmailChangeRequested {
                link: self.config.links.email_change_cancel(&cancel),
            },
        };
        let notice = self
            .store_link_with_letter(
                &cancel.hash(),
                &link(LinkPurpose::EmailChangeCancel, &session.email),
                &notice,
                Some(session.cabinet),
            )
            .await?;
        let change = Token::generate();
        let confirmation = Letter {
            to: new_email.clone(),
            locale: context.locale,
            content: LetterContent::ConfirmEmailChange {
                link: self.config.links.email_change(&change),
            },
        };
        let confirmation = self
            .store_link_with_letter(
                &change.hash(),
                &link(LinkPurpose::EmailChange, new_email),
                &confirmation,
                Some(session.cabinet),
            )
            .await?;
        Ok([notice, confirmation])
    }

    /// A live link of `purpose` that names a cabinet and its credential version.
    async fn live_cabinet_link(
        &self,
        token: &str,
        purpose: LinkPurpose,
    ) -> Result<(TokenHash, Versioned<Link>, CabinetId, u64), Error> {
        let token = Token::from_user(token).ok_or(Problem::InvalidLink)?;
        let hash = token.hash();
        let link = self.live_link(&hash, purpose, self.now()).await?;
        let (Some(cabinet), Some(credential_version)) =
            (link.value.cabinet, link.value.credential_version)
        else {
            return Err(Problem::InvalidLink.into());
        };
        Ok((hash, link, cabinet, credential_version))
    }

    /// Moves the cabinet from `credential_version` to the next one (ending its sessions and
    /// the links that name the old one), with `email` as its login if given; returns the
    /// new version.
    async fn move_credential_version(
        &self,
        cabinet: &CabinetId,
        credential_version: u64,
        email: Option<&Email>,
    ) -> Result<u64, Error> {
        let store = self.store();
        for _ in 0..CABINET_WRITE_ATTEMPTS {
            let Some(current) = store.cabinet(CabinetKey::Id(cabinet)).await? else {
                return Err(Problem::InvalidLink.into());
            };
            if current.value.credential_version != credential_version {
                return Err(Problem::InvalidLink.into());
            }
            let mut next = current.value.clone();
            next.credential_version = credential_version.saturating_add(1);
            if let Some(email) = email {
                next.email = email.clone();
            }
            match store
                .swap_cabinet(
                    cabinet,
                    Expected::Version(current.version),
                    Some(&next),
                    None,
                )
                .await?
            {
                CabinetSwap::Written => return Ok(next.credential_version),
                CabinetSwap::Taken => return Err(Problem::EmailTaken.into()),
                CabinetSwap::Conflict => {}
            }
        }
        Err(StoreError::unavailable("the cabinet kept changing under a write").into())
    }

    /// Stores a fresh link under `hash` with its letter queued in the same write; returns
    /// the letter.
    async fn store_link_with_letter(
        &self,
        hash: &TokenHash,
        link: &Link,
        letter: &Letter,
        cabinet: Option<CabinetId>,
    ) -> Result<QueuedLetter, Error> {
        let queued = self.queued(letter, cabinet, self.now());
        if !self
            .store()
            .swap_link(hash, Expected::Absent, Some((hash, link)), Some(&queued))
            .await?
        {
            return Err(StoreError::generic("a fresh token collided with a stored one").into());
        }
        Ok(queued)
    }
}
