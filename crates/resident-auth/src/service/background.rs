//! The service's work between requests: delivering the mail queue and purging expired
//! records, as one task the builder hands out with the service.

use std::{future::Future, pin::pin, time::Duration};

use futures::future::{select, Either};

use super::AuthService;

/// The service's work between requests, returned with it by
/// [`AuthServiceBuilder::build`](crate::config::AuthServiceBuilder::build) — as tokio-postgres
/// returns a client with its connection — so that it cannot be forgotten: run it for the
/// life of the process, in every instance, on the runtime that serves requests.
///
/// It delivers the mail queue (a round at once when this instance queues a letter, and
/// every [`DeliveryPolicy::poll`](crate::service::DeliveryPolicy) besides, for letters
/// queued by other instances and retries that came due; claims keep two instances from
/// sending one letter) and purges expired sessions, links, letters and idle throttles
/// every [`AuthConfig::purge_every`](crate::config::AuthConfig::purge_every). A failure is logged
/// and tried again next time. A letter queued while no instance runs it waits in the
/// queue, and the service logs a warning.
///
/// ```no_run
/// # async fn run(builder: resident_auth::config::AuthServiceBuilder) -> Result<(), Box<dyn std::error::Error>> {
/// let (service, background) = builder.build()?;
/// tokio::spawn(background.run());
/// # let _ = service;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[must_use = "letters are sent and expired records purged only while the background task \
              runs: spawn `background.run()` on the server's runtime"]
pub struct Background {
    service: AuthService,
}

impl Background {
    pub(crate) fn new(service: AuthService) -> Self {
        Self { service }
    }

    /// Delivers and purges for as long as the future is polled (it never ends by itself:
    /// spawn it).
    pub async fn run(self) {
        self.run_with(|wait| tokio::time::sleep(wait)).await;
    }

    /// [`Background::run`] with the timer given, so tests need no real waiting.
    async fn run_with<F: Future<Output = ()>>(self, sleep: impl Fn(Duration) -> F) {
        let service = self.service;
        let config = service.config();
        let (poll, purge_every, batch) = (
            config.delivery.poll,
            config.purge_every,
            config.delivery.batch,
        );
        let mut until_purge = purge_every;
        loop {
            // The store is down: probe it often, so that requests, answered at once
            // meanwhile, are served again moments after it is back.
            while service.store_is_down() {
                sleep(super::store_health::PROBE_EVERY).await;
                service.probe_store().await;
            }
            let started = std::time::Instant::now();
            let more_due = match service.deliver_due().await {
                Ok(report) => {
                    if report.claimed > 0 {
                        tracing::debug!(
                            sent = report.sent,
                            retried = report.retried,
                            dead = report.dead,
                            "delivered letters"
                        );
                    }
                    // A full batch: more may be due at once.
                    report.claimed >= batch
                }
                Err(error) => {
                    tracing::warn!(%error, "delivering letters failed");
                    false
                }
            };
            until_purge = until_purge.saturating_sub(started.elapsed());
            if until_purge.is_zero() {
                match service.purge_expired().await {
                    Ok(purged) => tracing::debug!(purged, "purged expired records"),
                    Err(error) => tracing::warn!(%error, "purging expired records failed"),
                }
                until_purge = purge_every;
            }
            if more_due {
                continue;
            }
            let wait = poll.min(until_purge);
            let waited = std::time::Instant::now();
            let (timer, outage) = (pin!(sleep(wait)), pin!(service.store_went_down()));
            match select(pin!(service.letter_queued()), select(timer, outage)).await {
                Either::Right((Either::Left(_), _)) => {
                    until_purge = until_purge.saturating_sub(wait);
                }
                Either::Left(_) | Either::Right((Either::Right(_), _)) => {
                    until_purge = until_purge.saturating_sub(waited.elapsed());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        clock::{ManualClock, Timestamp},
        journeys::RegistrationForm,
        letters::LetterKind,
        memory::{link_token, mailed_password, MemoryDirectory, MemoryStore, RecordingMailer},
        ports::{CabinetStore, SessionStore},
        Email, RequestContext,
    };

    const DIRECTORY: &str = "account_number,surnames,address,premises\n\
        7800000000001,Иванов,\"ул. Садовая, д. 1, кв. 12\",12\n";

    /// Waits (at most 10 s) for `done`, yielding to the background task between looks.
    async fn eventually(mut done: impl AsyncFnMut() -> bool) -> bool {
        for _ in 0..1000 {
            if done().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test]
    async fn it_sends_what_is_queued_and_purges_what_expired() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_800_000_000_000)));
        let mailer = Arc::new(RecordingMailer::new());
        let store = MemoryStore::new();
        let (service, background) = AuthService::builder("https://portal.example.org")
            .store(store.clone())
            .directory(MemoryDirectory::from_csv(DIRECTORY).unwrap())
            .shared_mailer(mailer.clone())
            .hasher(
                crate::config::Argon2Hasher::new(
                    crate::config::HashParams::insecure_fast_for_tests(),
                )
                .unwrap(),
            )
            .clock(clock.clone())
            // Only the wake-up can deliver within the test: the timer never fires.
            .configure(|c| c.delivery.poll = Duration::from_secs(3600))
            .configure(|c| c.purge_every = Duration::from_millis(1))
            .build()
            .unwrap();
        // Timers that fire at once after the first purge round would spin: the test's
        // timer yields instead, so each wait is one turn of the runtime.
        let task = tokio::spawn(background.run_with(|_| tokio::task::yield_now()));

        let form = RegistrationForm {
            surname: "Иванов".into(),
            account_number: "7800000000001".into(),
            email: "resident@example.org".into(),
        };
        let context = RequestContext::default();
        let to: Email = "resident@example.org".parse().unwrap();
        service.register(&form, &context).await.unwrap();
        assert!(
            eventually(async || mailer.last(&to, LetterKind::ConfirmEmail).is_some()).await,
            "the background task sent the confirmation letter"
        );
        let letter = mailer.last(&to, LetterKind::ConfirmEmail).unwrap();
        let activation = service
            .confirm_email(&link_token(&letter).unwrap())
            .await
            .unwrap();
        service
            .activate(activation.expose(), "12", &context)
            .await
            .unwrap();
        assert!(
            eventually(async || mailer.last(&to, LetterKind::Credentials).is_some()).await,
            "the background task sent the credentials"
        );
        let password =
            mailed_password(&mailer.last(&to, LetterKind::Credentials).unwrap()).unwrap();
        let session = service
            .login("resident@example.org", password, &context)
            .await
            .unwrap();
        let cabinet = session.cabinet;
        assert_eq!(store.cabinet_sessions(&cabinet).await.unwrap().len(), 1);

        clock.advance(service.config().session_absolute + Duration::from_secs(60));
        assert!(
            eventually(async || store.cabinet_sessions(&cabinet).await.unwrap().is_empty()).await,
            "the background task purged the expired session"
        );
        assert!(store
            .cabinet(crate::ports::CabinetKey::Id(&cabinet))
            .await
            .unwrap()
            .is_some());
        task.abort();
    }
}
