//! Fault injection at every port call of every journey (docs/contract.md §7): a failed letter, store
//! write, directory read or hash leaves a state from which the same step succeeds on
//! retry, and no cabinet ever holds a password that was not mailed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::{
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use async_trait::async_trait;
use common::*;
use resident_auth::{
    memory::RecordingMailer,
    ports::{
        Cabinet, CabinetKey, CabinetSwap, Count, CounterKey, Expected, Link, Session, Versioned,
    },
    AccountDirectory, AccountNumber, AddressForm, CabinetId, CabinetStore, CounterStore,
    CredentialHasher, DirectoryRecord, Error, HashError, HashedPassword, Letter, LetterKind,
    LinkStore, MailError, Mailer, SessionStore, Store, StoreError, Timestamp, TokenHash,
    Unavailable, Verification,
};
use secrecy::SecretString;

/// A store that fails exactly one call, chosen by its index, and counts calls.
struct FaultyStore {
    inner: Arc<dyn Store>,
    calls: AtomicUsize,
    fail_at: AtomicUsize,
}

impl FaultyStore {
    fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            calls: AtomicUsize::new(0),
            fail_at: AtomicUsize::new(usize::MAX),
        }
    }

    fn arm(&self, call: usize) {
        self.calls.store(0, Ordering::SeqCst);
        self.fail_at.store(call, Ordering::SeqCst);
    }

    fn disarm(&self) -> usize {
        self.fail_at.store(usize::MAX, Ordering::SeqCst);
        self.calls.load(Ordering::SeqCst)
    }

    fn gate(&self) -> Result<(), StoreError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if call == self.fail_at.load(Ordering::SeqCst) {
            Err(StoreError::unavailable("injected store failure"))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl LinkStore for FaultyStore {
    async fn link(&self, t: &TokenHash) -> Result<Option<Versioned<Link>>, StoreError> {
        self.gate()?;
        self.inner.link(t).await
    }
    async fn swap_link(
        &self,
        t: &TokenHash,
        e: Expected,
        n: Option<(&TokenHash, &Link)>,
    ) -> Result<bool, StoreError> {
        self.gate()?;
        self.inner.swap_link(t, e, n).await
    }
}

#[async_trait]
impl CabinetStore for FaultyStore {
    async fn cabinet(&self, k: CabinetKey<'_>) -> Result<Option<Versioned<Cabinet>>, StoreError> {
        self.gate()?;
        self.inner.cabinet(k).await
    }
    async fn swap_cabinet(
        &self,
        id: &CabinetId,
        e: Expected,
        n: Option<&Cabinet>,
    ) -> Result<CabinetSwap, StoreError> {
        self.gate()?;
        self.inner.swap_cabinet(id, e, n).await
    }
}

#[async_trait]
impl SessionStore for FaultyStore {
    async fn session(&self, t: &TokenHash) -> Result<Option<Versioned<Session>>, StoreError> {
        self.gate()?;
        self.inner.session(t).await
    }
    async fn swap_session(
        &self,
        t: &TokenHash,
        e: Expected,
        n: Option<&Session>,
    ) -> Result<bool, StoreError> {
        self.gate()?;
        self.inner.swap_session(t, e, n).await
    }
    async fn cabinet_sessions(
        &self,
        c: &CabinetId,
    ) -> Result<Vec<(TokenHash, Versioned<Session>)>, StoreError> {
        self.gate()?;
        self.inner.cabinet_sessions(c).await
    }
}

#[async_trait]
impl CounterStore for FaultyStore {
    async fn increment(
        &self,
        k: &CounterKey,
        now: Timestamp,
        w: Duration,
    ) -> Result<Count, StoreError> {
        self.gate()?;
        self.inner.increment(k, now, w).await
    }
    async fn reset(&self, k: &CounterKey) -> Result<(), StoreError> {
        self.gate()?;
        self.inner.reset(k).await
    }
}

/// Every primitive is gated; the composite defaults call them one by one.
impl Store for FaultyStore {}

/// Everything a step needs from the setup: tokens and passwords gathered on the way.
#[derive(Default, Clone)]
struct Scene {
    activation: String,
    password: Option<SecretString>,
    session: String,
    recovery: String,
}

type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Error>> + 'a>>;

/// Runs `step` after `setup` on a fresh harness, failing store call number 0, 1, 2, …
/// in turn until the step gets through with no failure. Every injected failure must come
/// back as a retryable `Unavailable`, the same step must then succeed, and the cabinet's
/// password must be one that was mailed.
async fn every_store_fault(
    name: &str,
    setup: impl for<'a> Fn(&'a Harness) -> Pin<Box<dyn Future<Output = Scene> + 'a>>,
    step: impl for<'a> Fn(&'a Harness, &'a Scene) -> StepFuture<'a>,
) {
    let mut absorbed = Vec::new();
    let mut failed = Vec::new();
    for call in 0.. {
        let mut faulty: Option<Arc<FaultyStore>> = None;
        let h = harness_with(config(), |store, mailer| {
            let wrapped = Arc::new(FaultyStore::new(store));
            faulty = Some(wrapped.clone());
            (wrapped, mailer)
        });
        let faulty = faulty.unwrap();
        let scene = setup(&h).await;
        faulty.arm(call);
        let result = step(&h, &scene).await;
        let calls = faulty.disarm();
        if calls <= call {
            result.unwrap_or_else(|e| panic!("{name}: clean run failed: {e:?}"));
            assert!(call > 0, "{name}: the step made no store call");
            assert!(
                absorbed.iter().all(|a| failed.iter().all(|f| a > f)),
                "{name}: faults at calls {absorbed:?} were absorbed, but only the cleanup after \
                 the step's last needed call (failures at {failed:?}) may be best effort"
            );
            return;
        }
        match &result {
            Err(error) => {
                failed.push(call);
                assert!(
                    matches!(error, Error::Unavailable(Unavailable::Store(_))),
                    "{name}: store fault at call {call} surfaced as {error:?}"
                );
                assert_eq!(error.http_status(), 503);
                assert!(error.is_retryable());
                step(&h, &scene).await.unwrap_or_else(|e| {
                    panic!("{name}: retry after store fault at call {call} failed: {e:?}")
                });
            }
            // The fault hit a best-effort call (dropping a spent link, clearing a
            // count): the step succeeded all the same, and is not repeated.
            Ok(()) => absorbed.push(call),
        }
        assert!(
            h.stored_password_was_mailed(RESIDENT).await,
            "{name}: after a fault at call {call} the cabinet holds a password nobody was sent"
        );
    }
}

fn nothing(_: &Harness) -> Pin<Box<dyn Future<Output = Scene> + '_>> {
    Box::pin(async { Scene::default() })
}

fn registered(h: &Harness) -> Pin<Box<dyn Future<Output = Scene> + '_>> {
    Box::pin(async move {
        h.service
            .register(&form("Иванов", FLAT, RESIDENT), &ru())
            .await
            .unwrap();
        Scene::default()
    })
}

fn confirmed(h: &Harness) -> Pin<Box<dyn Future<Output = Scene> + '_>> {
    Box::pin(async move {
        registered(h).await;
        let activation = h
            .service
            .confirm_email(&h.link_token(RESIDENT, LetterKind::ConfirmEmail))
            .await
            .unwrap();
        Scene {
            activation: activation.expose().to_owned(),
            ..Scene::default()
        }
    })
}

fn active(h: &Harness) -> Pin<Box<dyn Future<Output = Scene> + '_>> {
    Box::pin(async move {
        let password = h
            .register_and_activate("Иванов", FLAT, RESIDENT, "12")
            .await;
        let session = h.login(RESIDENT, &password).await;
        // A resident takes a minute before the next letter (the per-address cooldown).
        h.advance(Duration::from_secs(60));
        Scene {
            password: Some(password),
            session,
            ..Scene::default()
        }
    })
}

fn recovering(h: &Harness) -> Pin<Box<dyn Future<Output = Scene> + '_>> {
    Box::pin(async move {
        let mut scene = active(h).await;
        h.service.request_recovery(RESIDENT, &ru()).await.unwrap();
        scene.recovery = h.link_token(RESIDENT, LetterKind::RecoverPassword);
        scene
    })
}

#[tokio::test]
async fn store_faults_in_registration() {
    every_store_fault("register", nothing, |h, _| {
        Box::pin(async move {
            h.service
                .register(&form("Иванов", FLAT, RESIDENT), &ru())
                .await
        })
    })
    .await;
}

#[tokio::test]
async fn store_faults_in_confirmation() {
    // A fault after the token was consumed cannot happen: consumption is one call.
    every_store_fault("confirm", registered, |h, _| {
        Box::pin(async move {
            let token = h.link_token(RESIDENT, LetterKind::ConfirmEmail);
            h.service.confirm_email(&token).await.map(|_| ())
        })
    })
    .await;
}

#[tokio::test]
async fn store_faults_in_activation() {
    every_store_fault("activate", confirmed, |h, scene| {
        Box::pin(async move {
            h.service
                .activate(&scene.activation, "12", &ru())
                .await
                .map(|_| ())
        })
    })
    .await;
}

#[tokio::test]
async fn store_faults_in_login_and_sessions() {
    every_store_fault("login", active, |h, scene| {
        Box::pin(async move {
            let password = scene.password.clone().unwrap();
            h.service.login(RESIDENT, password, &ru()).await.map(|_| ())
        })
    })
    .await;
    every_store_fault("cabinet", active, |h, scene| {
        Box::pin(async move {
            let session = h.service.authenticate(&scene.session).await?;
            h.service.cabinet(&session).await.map(|_| ())
        })
    })
    .await;
    every_store_fault("select", active, |h, scene| {
        Box::pin(async move {
            let session = h.service.authenticate(&scene.session).await?;
            h.service.select_account(&session, FLAT).await
        })
    })
    .await;
    every_store_fault("logout", active, |h, scene| {
        Box::pin(async move { h.service.logout(&scene.session).await })
    })
    .await;
}

#[tokio::test]
async fn store_faults_in_recovery() {
    every_store_fault("request recovery", active, |h, _| {
        Box::pin(async move { h.service.request_recovery(RESIDENT, &ru()).await })
    })
    .await;
    every_store_fault("complete recovery", recovering, |h, scene| {
        Box::pin(async move {
            h.service
                .complete_recovery(&scene.recovery, &ru())
                .await
                .map(|_| ())
        })
    })
    .await;
}

#[tokio::test]
async fn store_faults_in_adding_an_address() {
    every_store_fault("add address", active, |h, scene| {
        Box::pin(async move {
            let form = AddressForm {
                surname: "Иванов".into(),
                account_number: PARKING.into(),
            };
            let session = h.service.authenticate(&scene.session).await?;
            h.service.add_address(&session, &form, &ru()).await
        })
    })
    .await;
}

#[tokio::test]
async fn store_faults_in_password_change_and_sessions() {
    every_store_fault("change password", active, |h, scene| {
        Box::pin(async move {
            let session = h.service.authenticate(&scene.session).await?;
            let current = scene.password.clone().unwrap();
            let new = SecretString::from(CHOSEN_PASSWORD.to_owned());
            h.service
                .change_password(&session, current, new, &ru())
                .await
        })
    })
    .await;
    every_store_fault("list sessions", active, |h, scene| {
        Box::pin(async move {
            let session = h.service.authenticate(&scene.session).await?;
            h.service.sessions(&session).await.map(|_| ())
        })
    })
    .await;
    every_store_fault("end other sessions", active, |h, scene| {
        Box::pin(async move {
            let session = h.service.authenticate(&scene.session).await?;
            h.service.end_other_sessions(&session).await.map(|_| ())
        })
    })
    .await;
}

// ---- Mail faults (mockall) -------------------------------------------------------------

mockall::mock! {
    pub Mailer {}
    #[async_trait]
    impl Mailer for Mailer {
        async fn send(&self, letter: &Letter) -> Result<(), MailError>;
    }
}

/// A mock mailer that refuses the first letter of `kind`, then delivers everything to
/// `recording`.
fn mailer_failing_once(kind: LetterKind, recording: Arc<dyn Mailer>) -> Arc<dyn Mailer> {
    let failed = AtomicBool::new(false);
    let mut mock = MockMailer::new();
    mock.expect_send().returning(move |letter| {
        if letter.content.kind() == kind && !failed.swap(true, Ordering::SeqCst) {
            return Err(MailError::transient("injected: connection refused"));
        }
        futures::executor::block_on(recording.send(letter))
    });
    Arc::new(mock)
}

fn harness_failing_mail_once(kind: LetterKind) -> Harness {
    harness_with(config(), |store, mailer| {
        (store, mailer_failing_once(kind, mailer))
    })
}

fn assert_mail_unavailable(error: &Error) {
    assert!(
        matches!(error, Error::Unavailable(Unavailable::Mail(_))),
        "{error:?}"
    );
    assert_eq!(error.http_status(), 503);
    assert!(error.is_retryable());
    assert!(
        !format!("{error}").contains("refused"),
        "no internals in the user-facing text"
    );
}

#[tokio::test]
async fn a_failed_confirmation_letter_can_be_retried_at_once() {
    let h = harness_failing_mail_once(LetterKind::ConfirmEmail);
    let error = h
        .service
        .register(&form("Иванов", FLAT, RESIDENT), &ru())
        .await
        .unwrap_err();
    assert_mail_unavailable(&error);
    h.service
        .register(&form("Иванов", FLAT, RESIDENT), &ru())
        .await
        .unwrap();
    assert_eq!(h.letters_to(RESIDENT, LetterKind::ConfirmEmail).len(), 1);
}

#[tokio::test]
async fn a_failed_credentials_letter_leaves_no_active_password_and_can_be_retried() {
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
    let error = h
        .service
        .activate(activation.expose(), "12", &ru())
        .await
        .unwrap_err();
    assert_mail_unavailable(&error);
    assert!(
        h.store
            .cabinet(CabinetKey::Email(&email(RESIDENT)))
            .await
            .unwrap()
            .is_none(),
        "no cabinet with an unsent password"
    );
    h.service
        .activate(activation.expose(), "12", &ru())
        .await
        .unwrap();
    assert_eq!(h.letters_to(RESIDENT, LetterKind::Credentials).len(), 1);
    assert!(h.stored_password_was_mailed(RESIDENT).await);
    h.login(RESIDENT, &h.mailed_password(RESIDENT)).await;
}

#[tokio::test]
async fn a_failed_recovery_letter_answers_like_an_unknown_email_and_can_be_retried() {
    let h = harness_failing_mail_once(LetterKind::RecoverPassword);
    h.register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    // The answer must not tell a registered email (whose letter failed) from an unknown
    // one (which has no letter to send): both are accepted; the failure is logged.
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
    // The resident asks again after the per-address minute.
    h.advance(std::time::Duration::from_secs(60));
    h.service.request_recovery(RESIDENT, &ru()).await.unwrap();
    let token = h.link_token(RESIDENT, LetterKind::RecoverPassword);
    h.service.complete_recovery(&token, &ru()).await.unwrap();
}

#[tokio::test]
async fn a_failed_recovery_credentials_letter_keeps_the_old_password() {
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
    assert_mail_unavailable(
        &h.service
            .complete_recovery(&token, &ru())
            .await
            .unwrap_err(),
    );
    h.login(RESIDENT, &old).await;
    h.service.complete_recovery(&token, &ru()).await.unwrap();
    assert!(h.service.login(RESIDENT, old, &ru()).await.is_err());
    h.login(RESIDENT, &h.mailed_password(RESIDENT)).await;
}

/// The same store, directory, clock and hasher behind a different mailer.
fn rebuild_with_mailer(h: Harness, mailer: Arc<dyn Mailer>) -> Harness {
    use resident_auth::{memory::MemoryDirectory, AuthService, Ports};
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
    use resident_auth::{memory::MemoryDirectory, AuthService, Ports};
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
            Arc::new(resident_auth::ManualClock::new(start())),
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
    assert_eq!(error.http_status(), 503);
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
