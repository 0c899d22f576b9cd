//! The store fault matrix: every store call of every journey step is failed in turn, on any
//! store — once before the call reaches the store, once after it (the write happened, its
//! answer was lost). Run it with [`store_fault_matrix`], one line per store.
//!
//! What must hold (docs/contract.md §7, invariants 3 and 4):
//! - a fault before the call: the step answers a retryable `Unavailable` (503) and the same
//!   step then succeeds; only best-effort cleanup after the step's last needed call may
//!   absorb a fault;
//! - a fault after the call: the step answers 503 or succeeds; a retry then succeeds or
//!   gives a definite answer the resident can act on (the link is spent: ask for a new
//!   letter) — never a 503 loop;
//! - in both: no cabinet ever holds a password that was neither mailed to it nor chosen.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use secrecy::SecretString;

use super::{problem, secret, Journeys, CHOSEN, FLAT, PARKING, RESIDENT};
use crate::{
    errors::{Problem, Unavailable},
    journeys::AddressForm,
    letters::LetterKind,
    ports::{CabinetKey, Store, StoreError},
    CredentialHasher, Error, Verification,
};

/// Where an injected fault strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// The call fails before it reaches the store: nothing was written.
    BeforeTheCall,
    /// The call reaches the store and takes effect; its answer is lost.
    AfterTheCall,
    /// The store cannot be reached: this call and every later one fail before they reach
    /// it ([`StoreError::unreachable`]) until [`FaultyStore::disarm`].
    Outage,
}

#[derive(Debug)]
struct Faults {
    calls: AtomicUsize,
    fail_at: AtomicUsize,
    after: AtomicBool,
    outage: AtomicBool,
}

/// A store that fails exactly one call, chosen by its index, and counts calls. Clones
/// share the count.
#[derive(Debug, Clone)]
pub struct FaultyStore<S> {
    inner: S,
    faults: Arc<Faults>,
}

impl<S: Store> FaultyStore<S> {
    /// `inner`, failing nothing until armed.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            faults: Arc::new(Faults {
                calls: AtomicUsize::new(0),
                fail_at: AtomicUsize::new(usize::MAX),
                after: AtomicBool::new(false),
                outage: AtomicBool::new(false),
            }),
        }
    }

    /// Counts calls from zero and fails call number `call` as `mode` says.
    pub fn arm(&self, call: usize, mode: FaultMode) {
        self.faults.calls.store(0, Ordering::SeqCst);
        self.faults
            .after
            .store(mode == FaultMode::AfterTheCall, Ordering::SeqCst);
        self.faults
            .outage
            .store(mode == FaultMode::Outage, Ordering::SeqCst);
        self.faults.fail_at.store(call, Ordering::SeqCst);
    }

    /// Stops failing; returns how many calls were made since [`FaultyStore::arm`].
    pub fn disarm(&self) -> usize {
        self.faults.fail_at.store(usize::MAX, Ordering::SeqCst);
        self.faults.calls.load(Ordering::SeqCst)
    }

    fn inner(&self) -> &S {
        &self.inner
    }

    async fn gated<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>> + Send,
    ) -> Result<T, StoreError> {
        let index = self.faults.calls.fetch_add(1, Ordering::SeqCst);
        let fail_at = self.faults.fail_at.load(Ordering::SeqCst);
        if self.faults.outage.load(Ordering::SeqCst) && index >= fail_at {
            return Err(StoreError::unreachable("injected: connection refused"));
        }
        let hit = index == fail_at;
        let after = self.faults.after.load(Ordering::SeqCst);
        if hit && !after {
            return Err(StoreError::unavailable("injected store failure"));
        }
        let result = call.await;
        if hit {
            return Err(StoreError::unavailable("injected: the answer was lost"));
        }
        result
    }
}

crate::ports::forward_store!([S: Store] FaultyStore<S>, FaultyStore::inner, FaultyStore::gated);

/// What a step needs from its setup.
#[derive(Default, Clone)]
struct Scene {
    activation: String,
    password: Option<SecretString>,
    session: String,
    recovery: String,
    email_change: String,
    email_change_cancel: String,
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
type Setup = for<'a> fn(&'a Journeys) -> Boxed<'a, Scene>;
type Step = for<'a> fn(&'a Journeys, &'a Scene) -> Boxed<'a, Result<(), Error>>;

fn nothing(_: &Journeys) -> Boxed<'_, Scene> {
    Box::pin(async { Scene::default() })
}

fn registered(j: &Journeys) -> Boxed<'_, Scene> {
    Box::pin(async move {
        j.service
            .register(&Journeys::form(FLAT, RESIDENT), &Journeys::context())
            .await
            .unwrap();
        Scene::default()
    })
}

fn confirmed(j: &Journeys) -> Boxed<'_, Scene> {
    Box::pin(async move {
        Scene {
            activation: j.confirmed(FLAT, RESIDENT).await.expose().to_owned(),
            ..Scene::default()
        }
    })
}

fn active(j: &Journeys) -> Boxed<'_, Scene> {
    Box::pin(async move {
        let password = j.register(FLAT, RESIDENT).await;
        let session = j.login(RESIDENT, &password).await.unwrap();
        // A resident takes a minute before the next letter (the per-address cooldown).
        j.advance(Duration::from_secs(60));
        Scene {
            password: Some(password),
            session,
            ..Scene::default()
        }
    })
}

fn recovering(j: &Journeys) -> Boxed<'_, Scene> {
    Box::pin(async move {
        let mut scene = active(j).await;
        j.service
            .request_recovery(RESIDENT, &Journeys::context())
            .await
            .unwrap();
        scene.recovery = j.link(RESIDENT, LetterKind::RecoverPassword);
        scene
    })
}

fn changing_email(j: &Journeys) -> Boxed<'_, Scene> {
    Box::pin(async move {
        let mut scene = active(j).await;
        let session = j.service.authenticate(&scene.session).await.unwrap();
        j.service
            .request_email_change(
                &session,
                NEW_ADDRESS,
                scene.password.clone().unwrap(),
                &Journeys::context(),
            )
            .await
            .unwrap();
        scene.email_change = j.link(NEW_ADDRESS, LetterKind::ConfirmEmailChange);
        scene.email_change_cancel = j.link(RESIDENT, LetterKind::EmailChangeRequested);
        scene
    })
}

const NEW_ADDRESS: &str = "new.address@example.org";

/// The steps of every journey, each after the setup it needs.
fn steps() -> Vec<(&'static str, Setup, Step)> {
    vec![
        ("register", nothing, |j, _| {
            Box::pin(async move {
                j.service
                    .register(&Journeys::form(FLAT, RESIDENT), &Journeys::context())
                    .await
            })
        }),
        ("confirm", registered, |j, _| {
            Box::pin(async move {
                let token = j.link(RESIDENT, LetterKind::ConfirmEmail);
                j.service.confirm_email(&token).await.map(|_| ())
            })
        }),
        ("activate", confirmed, |j, scene| {
            Box::pin(async move {
                j.service
                    .activate(&scene.activation, "12", &Journeys::context())
                    .await
                    .map(|_| ())
            })
        }),
        ("login", active, |j, scene| {
            Box::pin(async move {
                let password = scene.password.clone().unwrap();
                j.login(RESIDENT, &password).await.map(|_| ())
            })
        }),
        ("cabinet", active, |j, scene| {
            Box::pin(async move {
                let session = j.service.authenticate(&scene.session).await?;
                j.service.cabinet(&session).await.map(|_| ())
            })
        }),
        ("select account", active, |j, scene| {
            Box::pin(async move {
                let session = j.service.authenticate(&scene.session).await?;
                j.service.select_account(&session, FLAT).await
            })
        }),
        ("logout", active, |j, scene| {
            Box::pin(async move { j.service.logout(&scene.session).await })
        }),
        ("request recovery", active, |j, _| {
            Box::pin(async move {
                j.service
                    .request_recovery(RESIDENT, &Journeys::context())
                    .await
            })
        }),
        ("complete recovery", recovering, |j, scene| {
            Box::pin(async move {
                j.service
                    .complete_recovery(&scene.recovery, &Journeys::context())
                    .await
                    .map(|_| ())
            })
        }),
        ("add address", active, |j, scene| {
            Box::pin(async move {
                let form = AddressForm {
                    surname: "Иванов".into(),
                    account_number: PARKING.into(),
                };
                let session = j.service.authenticate(&scene.session).await?;
                j.service
                    .add_address(&session, &form, &Journeys::context())
                    .await
            })
        }),
        ("change password", active, |j, scene| {
            Box::pin(async move {
                let session = j.service.authenticate(&scene.session).await?;
                let current = scene.password.clone().unwrap();
                j.service
                    .change_password(&session, current, secret(CHOSEN), &Journeys::context())
                    .await
            })
        }),
        ("list sessions", active, |j, scene| {
            Box::pin(async move {
                let session = j.service.authenticate(&scene.session).await?;
                j.service.sessions(&session).await.map(|_| ())
            })
        }),
        ("end other sessions", active, |j, scene| {
            Box::pin(async move {
                let session = j.service.authenticate(&scene.session).await?;
                j.service.end_other_sessions(&session).await.map(|_| ())
            })
        }),
        ("request email change", active, |j, scene| {
            Box::pin(async move {
                let session = j.service.authenticate(&scene.session).await?;
                let current = scene.password.clone().unwrap();
                j.service
                    .request_email_change(&session, NEW_ADDRESS, current, &Journeys::context())
                    .await
            })
        }),
        ("confirm email change", changing_email, |j, scene| {
            Box::pin(async move {
                let session = j.service.authenticate(&scene.session).await?;
                j.service
                    .confirm_email_change(&scene.email_change, Some(&session), &Journeys::context())
                    .await
                    .map(|_| ())
            })
        }),
        ("cancel email change", changing_email, |j, scene| {
            Box::pin(async move {
                j.service
                    .cancel_email_change(&scene.email_change_cancel, &Journeys::context())
                    .await
                    .map(|_| ())
            })
        }),
    ]
}

/// Whether the resident's cabinet (if any) holds a password that was mailed to it, whose
/// letter waits in the mail queue, or that the matrix chose.
async fn holds_a_delivered_password(j: &Journeys, store: &dyn Store) -> bool {
    let Some(cabinet) = store
        .cabinet(CabinetKey::Email(&super::email(RESIDENT)))
        .await
        .unwrap()
    else {
        return true;
    };
    let mut letters = j.mailer.letters();
    letters.extend(queued_letters(j, store, &super::email(RESIDENT)).await);
    let mut candidates: Vec<SecretString> = letters
        .iter()
        .filter(|l| l.content.kind() == LetterKind::Credentials)
        .filter_map(crate::memory::mailed_password)
        .collect();
    candidates.push(secret(CHOSEN));
    let hasher = crate::config::Argon2Hasher::with_workers(
        crate::config::HashParams::insecure_fast_for_tests(),
        1,
    )
    .unwrap();
    for password in candidates {
        let verdict = hasher
            .verify(password, Some(cabinet.value.password_hash.clone()))
            .await
            .unwrap();
        if matches!(verdict, Verification::Match { .. }) {
            return true;
        }
    }
    false
}

/// The letters to `to` still waiting in the store's mail queue, opened with the service's
/// keys.
pub(crate) async fn queued_letters(
    j: &Journeys,
    store: &dyn Store,
    to: &crate::Email,
) -> Vec<crate::Letter> {
    let keys = &j.service.config().mail_queue_keys;
    store
        .letters_about(Some(to), None)
        .await
        .unwrap()
        .into_iter()
        .filter(|l| l.value.status == crate::LetterStatus::Queued)
        .filter_map(|l| {
            let sealed = l.value.sealed.as_ref()?;
            keys.open(&l.value.id, sealed).ok()
        })
        .collect()
}

fn is_store_unavailable(error: &Error) -> bool {
    matches!(error, Error::Unavailable(Unavailable::Store(_)))
}

/// Runs the whole matrix on stores made by `fresh` (a fresh, empty store per run): every
/// step, every store call it makes, both [`FaultMode`]s. Returns, for faults after the
/// call, the steps whose retry gave a definite answer instead of succeeding (with it);
/// the acceptable definite answers are [`Problem::InvalidLink`],
/// [`Problem::SessionInvalid`], [`Problem::CurrentPasswordWrong`],
/// [`Problem::AlreadyRegistered`] and [`Problem::TooManyRequests`] — anything else fails.
///
/// # Panics
/// On any violation (it is a test).
pub async fn store_fault_matrix<S, F, Fut>(fresh: F) -> Vec<(String, Problem)>
where
    S: Store + Clone + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let mut definite = Vec::new();
    for (name, setup, step) in steps() {
        for mode in [FaultMode::BeforeTheCall, FaultMode::AfterTheCall] {
            let mut absorbed = Vec::new();
            let mut failed = Vec::new();
            for call in 0.. {
                let store = FaultyStore::new(fresh().await);
                let j = Journeys::on(&store);
                let scene = setup(&j).await;
                store.arm(call, mode);
                let result = step(&j, &scene).await;
                let calls = store.disarm();
                if calls <= call {
                    result.unwrap_or_else(|e| panic!("{name}: clean run failed: {e:?}"));
                    assert!(call > 0, "{name}: the step made no store call");
                    if mode == FaultMode::BeforeTheCall {
                        assert!(
                            absorbed.iter().all(|a| failed.iter().all(|f| a > f)),
                            "{name}: faults at calls {absorbed:?} were absorbed, but only the \
                             cleanup after the step's last needed call (failures at \
                             {failed:?}) may be best effort"
                        );
                    }
                    break;
                }
                match (&result, mode) {
                    (Ok(()), _) => absorbed.push(call),
                    (Err(error), FaultMode::BeforeTheCall | FaultMode::Outage) => {
                        failed.push(call);
                        assert!(
                            is_store_unavailable(error),
                            "{name}: store fault at call {call} surfaced as {error:?}"
                        );
                        assert!(
                            error.is_retryable() && error.kind() == crate::ErrorKind::Unavailable
                        );
                        step(&j, &scene).await.unwrap_or_else(|e| {
                            panic!("{name}: retry after store fault at call {call} failed: {e:?}")
                        });
                    }
                    (Err(error), FaultMode::AfterTheCall) => {
                        assert!(
                            is_store_unavailable(error),
                            "{name}: lost answer at call {call} surfaced as {error:?}"
                        );
                        match step(&j, &scene).await {
                            Ok(()) => {}
                            Err(Error::Rejected(problems)) => {
                                let problem = problem(Err::<(), _>(Error::Rejected(problems)));
                                assert!(
                                    matches!(
                                        problem,
                                        Problem::InvalidLink
                                            | Problem::SessionInvalid
                                            | Problem::CurrentPasswordWrong
                                            | Problem::AlreadyRegistered
                                            | Problem::TooManyRequests { .. }
                                    ),
                                    "{name}: retry after a lost answer at call {call}: {problem:?}"
                                );
                                definite.push((format!("{name} (call {call})"), problem));
                            }
                            Err(error) => panic!(
                                "{name}: retry after a lost answer at call {call} failed: {error:?}"
                            ),
                        }
                    }
                }
                assert!(
                    holds_a_delivered_password(&j, &store).await,
                    "{name}: after a fault at call {call} ({mode:?}) the cabinet holds a \
                     password nobody was sent"
                );
            }
        }
    }
    definite
}
