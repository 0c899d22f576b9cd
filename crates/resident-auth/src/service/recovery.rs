//! Journey 6: password recovery by a link.

use super::*;
use crate::ports::prelude::*;

impl AuthService {
    /// Journey 6, step 1: asks for a recovery letter. The answer is the same whether or
    /// not the email has a cabinet, and the throttle counts unknown emails too.
    ///
    /// # Errors
    /// An email syntax problem, [`Problem::TooManyRequests`], or [`Error::Unavailable`].
    #[tracing::instrument(
        name = "resident_auth.request_recovery",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn request_recovery(
        &self,
        email: &str,
        context: &RequestContext,
    ) -> Result<(), Error> {
        let email: Email = email.parse().map_err(Problem::from)?;
        let now = self.now();
        // One cooldown per recipient across every letter with a link, counted for known
        // and unknown addresses alike, before anything is looked up.
        let limits = [
            (
                counters::letter_email(&email),
                Limit::new(1, self.config.letter_resend_interval),
            ),
            (
                counters::letter_email_daily(&email),
                self.config.letters_per_address_daily,
            ),
            (
                counters::recovery_email(&email),
                self.config.recovery_per_email,
            ),
        ];
        let sent = self
            .send_recovery(email.clone(), &limits, context, now)
            .await;
        if let Ok(cabinet) = &sent {
            self.record(
                Event::new(EventKind::RecoveryRequested, now)
                    .about(*cabinet, None)
                    .from_client(context.client.as_deref()),
            )
            .await;
        }
        if let Err(Error::Unavailable(_)) = &sent {
            // Storage failed (counting, or looking up) before any letter: the same request
            // may be made again at once.
            let _ = self.store().reset(&counters::letter_email(&email)).await;
        }
        sent.map(|_| ())
    }

    /// Stores a recovery link for the cabinet of `email`, if there is one, with its letter
    /// queued in the same write; returns the cabinet. For an unknown email it does the
    /// same work — a fresh token, a sealed letter, the same write of a link and a letter —
    /// but the link is dead on arrival and the letter withheld (never sent, no content),
    /// so that both answers take the same time and nothing reaches the unknown address.
    pub(super) async fn send_recovery(
        &self,
        email: Email,
        limits: &[(CounterKey, Limit)],
        context: &RequestContext,
        now: Timestamp,
    ) -> Result<Option<CabinetId>, Error> {
        self.throttle(limits, now).await?;
        let store = self.store();
        let cabinet = store.cabinet(CabinetKey::Email(&email)).await?;
        let known = cabinet.is_some();
        let token = Token::generate();
        let hash = token.hash();
        let link = Link {
            purpose: LinkPurpose::Recovery,
            email: email.clone(),
            account_number: None,
            cabinet: cabinet.as_ref().map(|c| c.value.id),
            credential_version: cabinet.as_ref().map(|c| c.value.credential_version),
            expires_at: if known {
                now.plus(self.config.recovery_ttl)
            } else {
                now
            },
            issuing_until: None,
        };
        let letter = Letter {
            to: email,
            locale: context.locale,
            content: LetterContent::RecoverPassword {
                link: self.config.links.recovery(&token),
            },
        };
        let mut queued = self.queued(&letter, link.cabinet, now);
        if !known {
            queued.status = crate::LetterStatus::Withheld;
            queued.sealed = None;
            queued.keep_until = Some(now.plus(self.config.delivery.retention));
        }
        if !store
            .swap_link(&hash, Expected::Absent, Some((&hash, &link)), Some(&queued))
            .await?
        {
            return Err(StoreError::generic("a fresh token collided with a stored one").into());
        }
        let Some(cabinet) = cabinet else {
            // Counted as what the answer claims (a letter queued and sent), so that no
            // metric tells a registered email from an unknown one.
            crate::events::metrics::letter_queued(queued.kind);
            crate::events::metrics::letter_sent(queued.kind);
            return Ok(None);
        };
        self.letter_written(queued).await;
        Ok(Some(cabinet.value.id))
    }

    /// Journey 6, step 2: the recovery link. Issues a new password by mail ("Данные для
    /// входа"); the old password, every session and every other recovery link stop
    /// working.
    ///
    /// # Errors
    /// [`Problem::InvalidLink`], or [`Error::Unavailable`].
    #[tracing::instrument(
        name = "resident_auth.complete_recovery",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn complete_recovery(
        &self,
        recovery_token: &str,
        context: &RequestContext,
    ) -> Result<Email, Error> {
        let token = Token::from_user(recovery_token).ok_or(Problem::InvalidLink)?;
        let hash = token.hash();
        let now = self.now();
        let link = self.live_link(&hash, LinkPurpose::Recovery, now).await?;
        let (Some(cabinet), Some(credential_version)) =
            (link.value.cabinet, link.value.credential_version)
        else {
            return Err(Problem::InvalidLink.into());
        };
        let issue = Issue::Recovery {
            cabinet,
            credential_version,
        };
        let (email, _) = self
            .issue_credentials(&hash, link, issue, context.locale)
            .await?;
        self.record(
            Event::new(EventKind::RecoveryCompleted, now)
                .about(Some(cabinet), None)
                .from_client(context.client.as_deref()),
        )
        .await;
        // The owner proved the mailbox: the cabinet-wide login cap (what a crowd of
        // attackers' clients could have filled) starts again. Best effort.
        let _ = self
            .store()
            .reset_all(&[
                counters::login_cabinet(&email),
                counters::login_cabinet_client(&email, context.client.as_deref()),
            ])
            .await;
        Ok(email)
    }
}
