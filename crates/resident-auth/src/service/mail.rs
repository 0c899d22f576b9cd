//! Queuing letters with the writes that need them, and delivering them later: retries with
//! exponential backoff and full jitter, a deadline after which a letter is dead, claims so
//! that several instances never send one letter twice while a claim lasts.

use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::Rng;

use super::AuthService;
use crate::ports::prelude::*;
use crate::{
    clock::Timestamp,
    errors::problem::Error,
    events::{Event, EventKind},
    ids::{CabinetId, LetterId},
    letters::Letter,
    mail::{LetterStatus, MailErrorKind, QueuedLetter},
    ports::{Expected, Versioned},
};

/// How the mail queue is delivered: retries, deadline, claims, how long settled letters'
/// records stay. Part of [`crate::config::AuthConfig`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeliveryPolicy {
    /// Wait before the first retry (default 5 s); each retry doubles it, up to
    /// `retry_max`, and a random part of it (full jitter, from half to all) is waited.
    pub retry_first: Duration,
    /// The longest wait between two attempts (default 15 minutes).
    pub retry_max: Duration,
    /// A letter not sent this long after it was queued is dead (default 24 hours).
    pub deadline: Duration,
    /// How long a worker holds the letters it claimed (default 2 minutes): a letter whose
    /// worker died is due again then. Longer than the mailer's own timeout.
    pub claim: Duration,
    /// Letters claimed at once by [`AuthService::deliver_due`] (default 32).
    pub batch: usize,
    /// How often the [`Background`](crate::Background) task looks for letters due besides
    /// those this instance queues, which it sends at once: letters queued by other
    /// instances, retries that came due (default 5 s).
    pub poll: Duration,
    /// How long a sent or dead letter's record stays for operators (default 7 days).
    pub retention: Duration,
    /// Attempt each letter at once, in the request that queued it, after the write (the
    /// answer then waits for the mail server, but never depends on it: a failure leaves
    /// the letter queued). Off by default: a delivery worker sends. Tests that read
    /// letters right after a step turn it on.
    pub in_request: bool,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            retry_first: Duration::from_secs(5),
            retry_max: Duration::from_secs(15 * 60),
            deadline: Duration::from_secs(24 * 3600),
            claim: Duration::from_secs(120),
            batch: 32,
            poll: Duration::from_secs(5),
            retention: Duration::from_secs(7 * 24 * 3600),
            in_request: false,
        }
    }
}

impl DeliveryPolicy {
    /// The wait before attempt `attempts + 1`, after `attempts` failed: `retry_first`
    /// doubled per attempt, at most `retry_max`, then a uniformly random part of it from
    /// half to all (so instances that failed together do not retry together).
    #[must_use]
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        let full = self
            .retry_first
            .saturating_mul(1u32 << doublings)
            .min(self.retry_max);
        let half = full / 2;
        half + rand::thread_rng().gen_range(Duration::ZERO..=full - half)
    }
}

/// What one round of [`AuthService::deliver_due`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryReport {
    /// Letters claimed.
    pub claimed: usize,
    /// Accepted by the mail system.
    pub sent: usize,
    /// Failed and queued again for later.
    pub retried: usize,
    /// Given up.
    pub dead: usize,
}

impl DeliveryReport {
    fn add(&mut self, outcome: Delivered) {
        match outcome {
            Delivered::Sent => self.sent += 1,
            Delivered::Retried => self.retried += 1,
            Delivered::Dead => self.dead += 1,
            Delivered::Lost => {}
        }
    }
}

/// What became of one claimed letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivered {
    Sent,
    Retried,
    Dead,
    /// Its claim ran out and another worker has it (or an operator erased it).
    Lost,
}

impl AuthService {
    /// `letter` sealed into a queue record, due now.
    pub(crate) fn queued(
        &self,
        letter: &Letter,
        cabinet: Option<CabinetId>,
        now: Timestamp,
    ) -> QueuedLetter {
        let id = LetterId::generate();
        QueuedLetter {
            id,
            to: letter.to.clone(),
            cabinet,
            kind: letter.content.kind(),
            sealed: Some(self.config.mail_queue_keys.seal(&id, letter)),
            status: LetterStatus::Queued,
            attempts: 0,
            queued_at: now,
            next_attempt_at: now,
            give_up_at: now.plus(self.config.delivery.deadline),
            keep_until: None,
            last_error: None,
        }
    }

    /// After a write queued `letter`: wakes the delivery worker, or with
    /// [`DeliveryPolicy::in_request`] attempts it now (the worker's periodic round retries
    /// it if that fails). Never fails the step: the letter is queued.
    pub(crate) async fn letter_written(&self, letter: QueuedLetter) {
        crate::events::metrics::letter_queued(letter.kind);
        if !self.config.delivery.in_request {
            self.letters_waiting.queued.notify_one();
            let signal = &self.letters_waiting;
            if !signal.delivering.load(Ordering::Relaxed)
                && !signal.warned.swap(true, Ordering::Relaxed)
            {
                tracing::warn!(
                    "resident-auth: a letter was queued but no delivery round has run in this \
                     process: letters are sent only by AuthService::deliver_due. Run the \
                     Background task that AuthServiceBuilder::build returned \
                     (tokio::spawn(background.run())) in every instance"
                );
            }
            return;
        }
        let now = self.now();
        let claimed = QueuedLetter {
            next_attempt_at: now.plus(self.config.delivery.claim),
            ..letter
        };
        let store = self.store();
        match store
            .swap_letter(
                &claimed.id,
                Expected::Version(crate::ports::Version::FIRST),
                Some(&claimed),
            )
            .await
        {
            Ok(true) => {
                let claimed = Versioned {
                    value: claimed,
                    version: crate::ports::Version::FIRST.next(),
                };
                let _ = self.deliver(claimed).await;
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "a queued letter could not be claimed"),
        }
    }

    /// One round of delivery: claims up to [`DeliveryPolicy::batch`] due letters and sends
    /// them (at once), then marks each sent, queued again with backoff, or dead. The
    /// delivery worker calls it whenever a letter is queued and every few seconds; a
    /// report with `claimed` equal to the batch means more may be due at once.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if the queue cannot be read.
    #[tracing::instrument(
        name = "resident_auth.deliver_due",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn deliver_due(&self) -> Result<DeliveryReport, Error> {
        self.letters_waiting
            .delivering
            .store(true, Ordering::Relaxed);
        let now = self.now();
        let policy = &self.config.delivery;
        let claimed = self
            .store()
            .claim_letters(now, now.plus(policy.claim), policy.batch)
            .await?;
        let mut report = DeliveryReport {
            claimed: claimed.len(),
            ..DeliveryReport::default()
        };
        let outcomes =
            futures::future::join_all(claimed.into_iter().map(|letter| self.deliver(letter))).await;
        for outcome in outcomes {
            report.add(outcome?);
        }
        Ok(report)
    }

    /// Waits until a letter is queued by this instance (the delivery worker's wake-up;
    /// letters queued by other instances are found by its periodic round).
    pub async fn letter_queued(&self) {
        self.letters_waiting
            .delivering
            .store(true, Ordering::Relaxed);
        self.letters_waiting.queued.notified().await;
    }

    /// Sends one claimed letter and settles it.
    async fn deliver(&self, claimed: Versioned<QueuedLetter>) -> Result<Delivered, Error> {
        let Versioned {
            value: mut letter,
            version,
        } = claimed;
        let opened = letter
            .sealed
            .as_ref()
            .ok_or(crate::mail::UnsealError)
            .and_then(|sealed| self.config.mail_queue_keys.open(&letter.id, sealed));
        let unsealable = opened.is_err();
        let sent = match &opened {
            Ok(open) => self
                .ports
                .mailer
                .send(&letter.id, open)
                .await
                .map_err(|e| e.kind()),
            Err(_) => Err(MailErrorKind::Permanent),
        };
        drop(opened);
        let now = self.now();
        letter.attempts = letter.attempts.saturating_add(1);
        let outcome = match sent {
            Ok(()) => {
                letter.status = LetterStatus::Sent;
                letter.last_error = None;
                Delivered::Sent
            }
            Err(MailErrorKind::Retryable) if now < letter.give_up_at => {
                letter.next_attempt_at = now.plus(self.config.delivery.backoff(letter.attempts));
                letter.last_error = Some("transient".to_owned());
                Delivered::Retried
            }
            Err(kind) => {
                letter.status = LetterStatus::Dead;
                letter.last_error = Some(if unsealable {
                    "unsealable".to_owned()
                } else {
                    kind.to_string()
                });
                Delivered::Dead
            }
        };
        if outcome != Delivered::Retried {
            // Sent or dead: the content (its links and passwords) goes.
            letter.sealed = None;
            letter.keep_until = Some(now.plus(self.config.delivery.retention));
        }
        // The farewell of a closed cabinet outlives the erasure it reports only until it
        // is settled: then its record — the recipient — goes too.
        let forgotten = outcome != Delivered::Retried
            && letter.kind == crate::letters::LetterKind::CabinetClosed;
        let settled = self
            .store()
            .swap_letter(
                &letter.id,
                Expected::Version(version),
                (!forgotten).then_some(&letter),
            )
            .await?;
        if !settled {
            tracing::warn!(letter = %letter.id, "a letter's claim ran out before it was settled");
            return Ok(Delivered::Lost);
        }
        self.report_delivery(&letter, outcome, now).await;
        Ok(outcome)
    }

    /// Counts a settled delivery, and reports a dead letter (log and event).
    async fn report_delivery(&self, letter: &QueuedLetter, outcome: Delivered, now: Timestamp) {
        match outcome {
            Delivered::Sent => crate::events::metrics::letter_sent(letter.kind),
            Delivered::Retried => crate::events::metrics::letter_retried(letter.kind),
            Delivered::Dead => {
                crate::events::metrics::letter_dead(letter.kind);
                tracing::warn!(
                    letter = %letter.id,
                    kind = letter.kind.as_str(),
                    attempts = letter.attempts,
                    reason = letter.last_error.as_deref().unwrap_or(""),
                    "a letter is dead"
                );
                self.record(Event::new(EventKind::LetterDead, now).about(letter.cabinet, None))
                    .await;
            }
            Delivered::Lost => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum_with_jitter_from_half_to_all() {
        let policy = DeliveryPolicy::default();
        for attempts in 1..40 {
            let full = (policy.retry_first * 2u32.saturating_pow((attempts - 1).min(30)))
                .min(policy.retry_max);
            for _ in 0..20 {
                let wait = policy.backoff(attempts);
                assert!(wait <= full && wait >= full / 2, "{attempts}: {wait:?}");
            }
        }
        let waits: std::collections::HashSet<Duration> =
            (0..50).map(|_| policy.backoff(3)).collect();
        assert!(waits.len() > 1, "jitter varies the wait");
    }
}
