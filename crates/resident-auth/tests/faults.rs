//! Fault injection at every port call of every journey (docs/contract.md §7): a failed store
//! write, directory read or hash leaves a state from which the same step succeeds on
//! retry; a failed letter stays in the mail queue and goes out later; and no cabinet ever
//! holds a password whose letter is not queued or sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::sync::{
    atomic::{AtomicBool, AtomicUsize, Ordering},
    Arc,
};

use async_trait::async_trait;
use common::*;
use resident_auth::{
    config::{AccountDirectory, CredentialHasher, DirectoryRecord, HashError, Verification},
    errors::Unavailable,
    letters::{Letter, LetterKind},
    mail::{MailError, Mailer},
    memory::RecordingMailer,
    ports::{CabinetKey, CabinetStore, HashedPassword, LetterStore, StoreError},
    AccountNumber, Error, ErrorKind,
};
use secrecy::SecretString;

/// The store fault matrix (every store call of every step, failed before it reaches the
/// store and after it took effect) on the in-memory store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_fault_of_every_step_on_the_memory_store() {
    let definite = resident_auth::testing::store_fault_matrix(|| async {
        resident_auth::memory::MemoryStore::new()
    })
    .await;
    for (step, problem) in &definite {
        eprintln!("after a lost answer, the retry of {step} answers {problem:?}");
    }
}

// ---- Mail faults (mockall) -------------------------------------------------------------

mockall::mock! {
    pub Mailer {}
    #[async_trait]
    impl Mailer for Mailer {
        async fn send(&self, id: &resident_auth::mail::LetterId, letter: &Letter) -> Result<(), MailError>;
    }
}

/// A mock mailer that refuses the first letter of `kind`, then delivers everything to
/// `recording`.
fn mailer_failing_once(kind: LetterKind, recording: Arc<dyn Mailer>) -> Arc<dyn Mailer> {
    let failed = AtomicBool::new(false);
    let mut mock = MockMailer::new();
    mock.expect_send().returning(move |id, letter| {
        if letter.content.kind() == kind && !failed.swap(true, Ordering::SeqCst) {
            return Err(MailError::retryable("injected: connection refused"));
        }
        futures::executor::block_on(recording.send(id, letter))
    });
    Arc::new(mock)
}

fn harness_failing_mail_once(kind: LetterKind) -> Harness {
    harness_with(config(), |store, mailer| {
        (store, mailer_failing_once(kind, mailer))
    })
}

/// Past the first retry's backoff (5 s at most), then one round of delivery.
async fn retry_delivery(h: &Harness) -> resident_auth::mail::DeliveryReport {
    h.advance(std::time::Duration::from_secs(6));
    h.service.deliver_due().await.unwrap()
}

/// The mail server fails: the step answers as usual, its letter waits in the queue, and
/// the next round of delivery sends it — once.
#[tokio::test]
async fn a_failed_confirmation_letter_waits_in_the_queue_and_goes_out_once() {
    let h = harness_failing_mail_once(LetterKind::ConfirmEmail);
    h.service
        .register(&form("Иванов", FLAT, RESIDENT), &ru())
        .await
        .expect("the answer never depends on the mail server");
    assert!(h.letters_to(RESIDENT, LetterKind::ConfirmEmail).is_empty());
    let report = retry_delivery(&h).await;
    assert_eq!((report.sent, report.retried, report.dead), (1, 0, 0));
    assert_eq!(h.letters_to(RESIDENT, LetterKind::ConfirmEmail).len(), 1);
    let report = retry_delivery(&h).await;
    assert_eq!(report.claimed, 0, "a sent letter is never claimed again");
    assert_eq!(h.letters_to(RESIDENT, LetterKind::ConfirmEmail).len(), 1);
}

#[tokio::test]
async fn a_failed_credentials_letter_stays_queued_with_its_password_and_goes_out_later() {
    let h = harness_failing_mail_once(LetterKind::Credentials);
    h.service
        .register(&form("Иванов", FLAT, RESIDENT), &ru())
        .await
        .unwrap();
    let activation = h
        .service
        .confirm_email(&h.link_token(RESIDENT, LetterKind::ConfirmEmail))
        .await
        .unwrap();
    h.service
        .activate(activation.expose(), "12", &ru())
        .await
        .expect("the answer never depends on the mail server");
    assert!(h.letters_to(RESIDENT, LetterKind::Credentials).is_empty());
    // The password is in force and its letter is queued: the same write did both.
    let queued = h
        .store
        .letters_about(Some(&email(RESIDENT)), None)
        .await
        .unwrap();
    let credentials: Vec<_> = queued
        .iter()
        .filter(|l| l.value.kind == LetterKind::Credentials)
        .collect();
    assert_eq!(credentials.len(), 1);
    assert_eq!(
        credentials[0].value.status,
        resident_auth::mail::LetterStatus::Queued
    );
    assert_eq!(
        credentials[0].value.last_error.as_deref(),
        Some("transient")
    );
    assert_eq!(retry_delivery(&h).await.sent, 1);
    assert_eq!(h.letters_to(RESIDENT, LetterKind::Credentials).len(), 1);
    assert!(h.stored_password_was_mailed(RESIDENT).await);
    h.login(RESIDENT, &h.mailed_password(RESIDENT)).await;
}

#[tokio::test]
async fn a_failed_recovery_letter_answers_like_an_unknown_email_and_goes_out_later() {
    let h = harness_failing_mail_once(LetterKind::RecoverPassword);
    h.register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    h.service
        .request_recovery(RESIDENT, &ru())
        .await
        .expect("answered like any other email");
    h.service
        .request_recovery("nobody@example.org", &ru())
        .await
        .expect("an unknown email");
    assert!(h
        .letters_to(RESIDENT, LetterKind::RecoverPassword)
        .is_empty());
    assert_eq!(retry_delivery(&h).await.sent, 1);
    let token = h.link_token(RESIDENT, LetterKind::RecoverPassword);
    h.service.complete_recovery(&token, &ru()).await.unwrap();
    assert!(h
        .letters_to("nobody@example.org", LetterKind::RecoverPassword)
        .is_empty());
}

#[tokio::test]
async fn a_failed_recovery_credentials_letter_is_delivered_later_and_its_password_works() {
    let h = harness_with(config(), |s, m| (s, m));
    let old = h
        .register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    // Only now swap in a mailer that fails the next credentials letter.
    let h = {
        let failing = mailer_failing_once(LetterKind::Credentials, Arc::new(h.mailer.clone()));
        rebuild_with_mailer(h, failing)
    };
    h.service.request_recovery(RESIDENT, &ru()).await.unwrap();
    let token = h.link_token(RESIDENT, LetterKind::RecoverPassword);
    h.service.complete_recovery(&token, &ru()).await.unwrap();
    assert!(h.service.login(RESIDENT, old.clone(), &ru()).await.is_err());
    assert_eq!(retry_delivery(&h).await.sent, 1);
    h.login(RESIDENT, &h.mailed_password(RESIDENT)).await;
}

/// A permanent refusal (5xx) makes a dead letter at once: not retried, its content
/// scrubbed, visible to operators, recorded as an event.
#[tokio::test]
async fn a_permanently_refused_letter_is_dead_at_once_and_scrubbed() {
    let recording = RecordingMailer::new();
    let h = harness_with(config(), |store, _| {
        let mut mock = MockMailer::new();
        mock.expect_send()
            .returning(|_, _| Err(MailError::permanent("550 no such mailbox")));
        (store, Arc::new(mock) as Arc<dyn Mailer>)
    });
    drop(recording);
    h.service
        .register(&form("Иванов", FLAT, RESIDENT), &ru())
        .await
        .unwrap();
    let letters = h
        .store
        .letters_about(Some(&email(RESIDENT)), None)
        .await
        .unwrap();
    assert_eq!(letters.len(), 1);
    let dead = &letters[0].value;
    assert_eq!(dead.status, resident_auth::mail::LetterStatus::Dead);
    assert_eq!(dead.attempts, 1);
    assert_eq!(dead.sealed, None, "a dead letter keeps no content");
    assert_eq!(dead.last_error.as_deref(), Some("permanent"));
    assert_eq!(retry_delivery(&h).await.claimed, 0, "never retried");
    let report = h
        .service
        .admin()
        .find(&resident_auth::admin::Lookup::Email(email(RESIDENT)))
        .await
        .unwrap();
    assert_eq!((report.letters_queued, report.letters_dead), (0, 1));
}

/// A letter that keeps failing is retried with growing waits and given up at its
/// deadline.
#[tokio::test]
async fn a_letter_failing_until_its_deadline_is_given_up() {
    let h = harness_with(config(), |store, _| {
        let mut mock = MockMailer::new();
        mock.expect_send()
            .returning(|_, _| Err(MailError::retryable("421 try later")));
        (store, Arc::new(mock) as Arc<dyn Mailer>)
    });
    h.service
        .register(&form("Иванов", FLAT, RESIDENT), &ru())
        .await
        .unwrap();
    let mut rounds = 0;
    let mut retried = 0;
    loop {
        h.advance(std::time::Duration::from_secs(20 * 60));
        let report = h.service.deliver_due().await.unwrap();
        retried += report.retried;
        rounds += 1;
        if report.dead == 1 {
            break;
        }
        assert!(rounds < 200, "given up at the deadline");
    }
    // 24 hours at no more than 15 minutes (plus jitter) between attempts.
    assert!(retried >= 24 * 60 / 20 - 2, "{retried}");
    let letters = h
        .store
        .letters_about(Some(&email(RESIDENT)), None)
        .await
        .unwrap();
    assert_eq!(
        letters[0].value.status,
        resident_auth::mail::LetterStatus::Dead
    );
    assert_eq!(letters[0].value.sealed, None);
}

/// The same store, directory, clock and hasher behind a different mailer.
fn rebuild_with_mailer(h: Harness, mailer: Arc<dyn Mailer>) -> Harness {
    use resident_auth::{config::Ports, memory::MemoryDirectory, AuthService};
    let ports = Ports::new(
        Arc::new(h.store.clone()),
        Arc::new(MemoryDirectory::from_csv(DIRECTORY).unwrap()),
        mailer,
        Arc::new(h.hasher.clone()),
        h.clock.clone(),
    );
    Harness {
        service: AuthService::new(ports, config()),
        ..h
    }
}

// ---- Directory and hashing faults (mockall) --------------------------------------------

mockall::mock! {
    pub Directory {}
    #[async_trait]
    impl AccountDirectory for Directory {
        async fn lookup(&self, account: &AccountNumber) -> Result<Option<DirectoryRecord>, StoreError>;
    }
}

mockall::mock! {
    pub Hasher {}
    #[async_trait]
    impl CredentialHasher for Hasher {
        async fn hash(&self, password: SecretString) -> Result<HashedPassword, HashError>;
        async fn verify(&self, password: SecretString, stored: Option<HashedPassword>) -> Result<Verification, HashError>;
    }
}

#[tokio::test]
async fn directory_and_hashing_faults_are_retryable() {
    use resident_auth::{config::Ports, memory::MemoryDirectory, AuthService};
    let real = MemoryDirectory::from_csv(DIRECTORY).unwrap();
    let directory_calls = Arc::new(AtomicUsize::new(0));
    let mut directory = MockDirectory::new();
    let counter = directory_calls.clone();
    directory.expect_lookup().returning(move |account| {
        // Fail the 1st (registration) and 3rd (activation) lookups.
        match counter.fetch_add(1, Ordering::SeqCst) {
            0 | 2 => Err(StoreError::unavailable("injected directory failure")),
            _ => futures::executor::block_on(real.lookup(account)),
        }
    });
    let real_hasher = fast_hasher();
    let hash_calls = Arc::new(AtomicUsize::new(0));
    let mut hasher = MockHasher::new();
    let counter = hash_calls.clone();
    let for_hash = real_hasher.clone();
    hasher.expect_hash().returning(
        move |password| match counter.fetch_add(1, Ordering::SeqCst) {
            0 => Err(HashError::WorkersGone),
            _ => futures::executor::block_on(for_hash.hash(password)),
        },
    );
    hasher.expect_verify().returning(move |password, stored| {
        futures::executor::block_on(real_hasher.verify(password, stored))
    });
    let mailer = RecordingMailer::new();
    let store = resident_auth::memory::MemoryStore::new();
    let service = AuthService::new(
        Ports::new(
            Arc::new(store.clone()),
            Arc::new(directory),
            Arc::new(mailer.clone()),
            Arc::new(hasher),
            Arc::new(resident_auth::config::ManualClock::new(start())),
        ),
        config(),
    );
    let registration = form("Иванов", FLAT, RESIDENT);
    let error = service.register(&registration, &ru()).await.unwrap_err();
    assert!(
        matches!(error, Error::Unavailable(Unavailable::Store(_))),
        "{error:?}"
    );
    service.register(&registration, &ru()).await.unwrap();
    let letter = mailer
        .last(&email(RESIDENT), LetterKind::ConfirmEmail)
        .unwrap();
    let activation = service
        .confirm_email(&resident_auth::memory::link_token(&letter).unwrap())
        .await
        .unwrap();
    let error = service
        .activate(activation.expose(), "12", &ru())
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Unavailable(Unavailable::Store(_))),
        "directory: {error:?}"
    );
    let error = service
        .activate(activation.expose(), "12", &ru())
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Unavailable(Unavailable::Hashing(_))),
        "hasher: {error:?}"
    );
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    service
        .activate(activation.expose(), "12", &ru())
        .await
        .unwrap();
    assert_eq!(hash_calls.load(Ordering::SeqCst), 2);
    assert!(store
        .cabinet(CabinetKey::Email(&email(RESIDENT)))
        .await
        .unwrap()
        .is_some());
}

/// A letter no configured key opens (its key rotated out too early) is dead at once, as
/// `unsealable`, and never handed to the mailer.
#[tokio::test]
async fn a_letter_no_key_opens_is_dead_as_unsealable() {
    let h = harness_with(config(), |store, mailer| (store, mailer));
    let mut queued_only = config();
    queued_only.delivery.in_request = false;
    let queuing = resident_auth::AuthService::new(h.service.ports().clone(), queued_only);
    queuing
        .register(&form("Иванов", FLAT, RESIDENT), &ru())
        .await
        .unwrap();
    // Another instance, whose key is not the one that sealed the letter.
    let other = resident_auth::AuthService::new(h.service.ports().clone(), config());
    let report = other.deliver_due().await.unwrap();
    assert_eq!((report.claimed, report.dead), (1, 1));
    assert!(h.letters_to(RESIDENT, LetterKind::ConfirmEmail).is_empty());
    let letters = h
        .store
        .letters_about(Some(&email(RESIDENT)), None)
        .await
        .unwrap();
    assert_eq!(letters[0].value.last_error.as_deref(), Some("unsealable"));
    assert_eq!(letters[0].value.sealed, None);
}

// ---- An outage of the store ------------------------------------------------------------

/// While the store cannot be reached, the first call that finds it so waits (the pool's
/// wait, in a real adapter); every later call — of the same request or of any other — is
/// answered at once, 503 with `Retry-After`, without reaching the store; once the store
/// is back, a probe finds it and steps succeed again. Before, every call of every request
/// waited: a recovery request twice.
#[tokio::test]
async fn while_the_store_is_unreachable_steps_answer_at_once_until_a_probe_finds_it_back() {
    use resident_auth::testing::{FaultMode, FaultyStore};
    let faulty = std::sync::Mutex::new(None);
    let h = harness_with(config(), |store, mailer| {
        let wrapped = FaultyStore::new(store);
        *faulty.lock().unwrap() = Some(wrapped.clone());
        (Arc::new(wrapped), mailer)
    });
    let store = faulty.lock().unwrap().take().unwrap();
    h.register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    store.arm(0, FaultMode::Outage);
    let first = h
        .service
        .request_recovery(RESIDENT, &ru())
        .await
        .unwrap_err();
    assert_eq!(first.kind(), ErrorKind::Unavailable);
    assert_eq!(first.retry_after(), Some(StoreError::RETRY_AFTER));
    for _ in 0..10 {
        let again = h
            .service
            .login(RESIDENT, SecretString::from("anything"), &ru())
            .await
            .unwrap_err();
        assert_eq!(again.kind(), ErrorKind::Unavailable);
        assert_eq!(again.retry_after(), Some(StoreError::RETRY_AFTER));
    }
    assert_eq!(
        store.disarm(),
        1,
        "only the call that found the outage reached the store"
    );
    // The store is back; without a background task, a request probes it after a while.
    let back = std::time::Instant::now();
    loop {
        match h.service.request_recovery(RESIDENT, &ru()).await {
            Ok(()) => break,
            Err(error) => assert_eq!(error.kind(), ErrorKind::Unavailable),
        }
        assert!(
            back.elapsed() < std::time::Duration::from_secs(5),
            "found back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
