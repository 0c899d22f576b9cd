//! The service's decisions at the edges, where a test of the plain journey cannot look:
//! a lease at the very instant it ends, writes that lose a race to another request, a
//! link whose deletion was lost, a second registration of one email, stale session
//! handles. Each test pins one decision a mutation of `service.rs` would change (README,
//! "Mutation testing").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use async_trait::async_trait;
use common::*;
use resident_auth::{
    errors::Problem,
    journeys::AddressForm,
    letters::LetterKind,
    ports::{
        CabinetKey, CabinetStore as _, Expected, Link, LinkStore, StoreError, TokenHash, Versioned,
    },
};
use tokio::sync::Notify;

/// A store that holds the first cabinet write queuing a letter of one kind until the test
/// releases it, so another request can act while a step is between its lease and its
/// write; and, when `lose_next_delete` is armed, loses the next link deletion.
#[derive(Clone)]
struct GatedRecords {
    inner: Arc<dyn resident_auth::ports::Store>,
    gate: Arc<Mutex<Option<Gate>>>,
    lose_next_delete: Arc<AtomicBool>,
}

#[async_trait]
impl resident_auth::ports::SessionStore for GatedRecords {
    async fn purge_sessions(&self, now: resident_auth::Timestamp) -> Result<u64, StoreError> {
        self.inner.purge_sessions(now).await
    }
    async fn session(
        &self,
        token: &TokenHash,
    ) -> Result<Option<Versioned<resident_auth::ports::Session>>, StoreError> {
        self.inner.session(token).await
    }
    async fn swap_session(
        &self,
        token: &TokenHash,
        expected: Expected,
        next: Option<&resident_auth::ports::Session>,
    ) -> Result<bool, StoreError> {
        self.inner.swap_session(token, expected, next).await
    }
    async fn cabinet_sessions(
        &self,
        cabinet: &resident_auth::CabinetId,
    ) -> Result<Vec<(TokenHash, Versioned<resident_auth::ports::Session>)>, StoreError> {
        self.inner.cabinet_sessions(cabinet).await
    }
}

#[async_trait]
impl resident_auth::ports::CounterStore for GatedRecords {
    async fn purge_counters(&self, now: resident_auth::Timestamp) -> Result<u64, StoreError> {
        self.inner.purge_counters(now).await
    }
    async fn increment(
        &self,
        key: &resident_auth::ports::CounterKey,
        now: resident_auth::Timestamp,
        window: Duration,
    ) -> Result<resident_auth::ports::Count, StoreError> {
        self.inner.increment(key, now, window).await
    }
    async fn reset(&self, key: &resident_auth::ports::CounterKey) -> Result<(), StoreError> {
        self.inner.reset(key).await
    }
    async fn counters_about(
        &self,
        subjects: &[String],
    ) -> Result<
        Vec<(
            resident_auth::ports::CounterKey,
            resident_auth::ports::Count,
        )>,
        StoreError,
    > {
        self.inner.counters_about(subjects).await
    }
}

impl resident_auth::ports::Store for GatedRecords {}

struct Gate {
    kind: LetterKind,
    entered: Arc<Notify>,
    release: Arc<Notify>,
}

#[async_trait]
impl LinkStore for GatedRecords {
    async fn purge_links(&self, now: resident_auth::Timestamp) -> Result<u64, StoreError> {
        self.inner.purge_links(now).await
    }
    async fn link(&self, token: &TokenHash) -> Result<Option<Versioned<Link>>, StoreError> {
        self.inner.link(token).await
    }
    async fn swap_link(
        &self,
        token: &TokenHash,
        expected: Expected,
        next: Option<(&TokenHash, &Link)>,
        letter: Option<&resident_auth::mail::QueuedLetter>,
    ) -> Result<bool, StoreError> {
        if next.is_none() && self.lose_next_delete.swap(false, Ordering::SeqCst) {
            return Err(StoreError::unavailable("injected: the deletion was lost"));
        }
        self.inner.swap_link(token, expected, next, letter).await
    }
    async fn links_about(
        &self,
        email: Option<&resident_auth::Email>,
        accounts: &[resident_auth::AccountNumber],
    ) -> Result<Vec<(TokenHash, Versioned<Link>)>, StoreError> {
        self.inner.links_about(email, accounts).await
    }
}

#[async_trait]
impl resident_auth::ports::CabinetStore for GatedRecords {
    async fn cabinet(
        &self,
        key: CabinetKey<'_>,
    ) -> Result<Option<Versioned<resident_auth::ports::Cabinet>>, StoreError> {
        self.inner.cabinet(key).await
    }
    async fn swap_cabinet(
        &self,
        id: &resident_auth::CabinetId,
        expected: Expected,
        next: Option<&resident_auth::ports::Cabinet>,
        letter: Option<&resident_auth::mail::QueuedLetter>,
    ) -> Result<resident_auth::ports::CabinetSwap, StoreError> {
        let gate = {
            let mut gate = self.gate.lock().unwrap();
            if gate
                .as_ref()
                .is_some_and(|g| letter.is_some_and(|l| l.kind == g.kind))
            {
                gate.take()
            } else {
                None
            }
        };
        if let Some(gate) = gate {
            gate.entered.notify_one();
            gate.release.notified().await;
        }
        self.inner.swap_cabinet(id, expected, next, letter).await
    }
}

#[async_trait]
impl resident_auth::ports::LetterStore for GatedRecords {
    async fn purge_letters(&self, now: resident_auth::Timestamp) -> Result<u64, StoreError> {
        self.inner.purge_letters(now).await
    }
    async fn claim_letters(
        &self,
        now: resident_auth::Timestamp,
        until: resident_auth::Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<resident_auth::mail::QueuedLetter>>, StoreError> {
        self.inner.claim_letters(now, until, limit).await
    }
    async fn swap_letter(
        &self,
        id: &resident_auth::mail::LetterId,
        expected: Expected,
        next: Option<&resident_auth::mail::QueuedLetter>,
    ) -> Result<bool, StoreError> {
        self.inner.swap_letter(id, expected, next).await
    }
    async fn letters_about(
        &self,
        email: Option<&resident_auth::Email>,
        cabinet: Option<&resident_auth::CabinetId>,
    ) -> Result<Vec<Versioned<resident_auth::mail::QueuedLetter>>, StoreError> {
        self.inner.letters_about(email, cabinet).await
    }
}

/// A harness whose store can hold one credentials write: `hold(kind)` arms it and
/// returns (entered, release).
struct Held {
    h: Harness,
    gate: Arc<Mutex<Option<Gate>>>,
}

impl Held {
    fn new() -> Self {
        let gate = Arc::new(Mutex::new(None));
        let shared = gate.clone();
        let h = harness_with(config(), move |store, mailer| {
            let gated: Arc<dyn resident_auth::ports::Store> = Arc::new(GatedRecords {
                inner: store,
                gate: shared,
                lose_next_delete: Arc::default(),
            });
            (gated, mailer)
        });
        Self { h, gate }
    }

    fn hold(&self, kind: LetterKind) -> (Arc<Notify>, Arc<Notify>) {
        let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        *self.gate.lock().unwrap() = Some(Gate {
            kind,
            entered: entered.clone(),
            release: release.clone(),
        });
        (entered, release)
    }
}

/// A lease ends at its instant: a retry exactly `credentials_lease` after a step began
/// (which never finished) goes ahead; a millisecond earlier it is told to wait.
#[tokio::test]
async fn a_credentials_lease_ends_at_its_instant() {
    let held = Held::new();
    let h = &held.h;
    let activation = h.confirmed("Иванов", FLAT, RESIDENT).await;
    let (entered, release) = held.hold(LetterKind::Credentials);
    let service = h.service.clone();
    let token = activation.clone();
    let first = tokio::spawn(async move { service.activate(&token, "12", &ru()).await });
    entered.notified().await;
    let lease = config().credentials_lease;
    h.advance(lease - Duration::from_millis(1));
    let early = h
        .service
        .activate(&activation, "12", &ru())
        .await
        .unwrap_err();
    assert!(
        matches!(early.problems(), [Problem::TooManyRequests { .. }]),
        "{early:?}"
    );
    h.advance(Duration::from_millis(1));
    let at_the_instant = h.service.activate(&activation, "12", &ru()).await;
    assert_eq!(at_the_instant.unwrap(), email(RESIDENT));
    release.notify_one();
    let _ = first.await.unwrap();
    assert!(h.stored_password_was_mailed(RESIDENT).await);
}

/// Two registrations of one email for two accounts: once the first made the cabinet, the
/// second is refused before any letter (the email's cabinet is read even though the
/// account has none).
#[tokio::test]
async fn a_second_registration_of_an_email_is_refused_before_its_letter() {
    let h = harness();
    h.service
        .register(&form("Иванов", FLAT, RESIDENT), &ru())
        .await
        .unwrap();
    let first = h.link_token(RESIDENT, LetterKind::ConfirmEmail);
    h.advance(Duration::from_secs(61));
    h.service
        .register(&form("Иванов", PARKING, RESIDENT), &ru())
        .await
        .unwrap();
    let second = h.link_token(RESIDENT, LetterKind::ConfirmEmail);
    let first = h.service.confirm_email(&first).await.unwrap();
    let second = h.service.confirm_email(&second).await.unwrap();
    h.service
        .activate(first.expose(), "12", &ru())
        .await
        .unwrap();
    let refused = h
        .service
        .activate(second.expose(), "123/456П", &ru())
        .await
        .unwrap_err();
    assert!(refused.is(&Problem::AlreadyRegistered), "{refused:?}");
    assert_eq!(
        h.letters_to(RESIDENT, LetterKind::Credentials).len(),
        1,
        "no letter with a password that could never take effect"
    );
}

/// The step worked but deleting its link was lost: after the lease, the same link answers
/// as the step did (the account is in the email's cabinet), with no second letter.
#[tokio::test]
async fn a_step_whose_link_deletion_was_lost_answers_as_done() {
    let armed = Arc::new(AtomicBool::new(false));
    let lose_next_delete = armed.clone();
    let h = harness_with(config(), move |store, mailer| {
        let losing: Arc<dyn resident_auth::ports::Store> = Arc::new(GatedRecords {
            inner: store,
            gate: Arc::default(),
            lose_next_delete,
        });
        (losing, mailer)
    });
    let activation = h.confirmed("Иванов", FLAT, RESIDENT).await;
    armed.store(true, Ordering::SeqCst);
    h.service.activate(&activation, "12", &ru()).await.unwrap();
    assert!(
        !armed.load(Ordering::SeqCst),
        "the deletion was tried and lost"
    );
    h.advance(config().credentials_lease + Duration::from_millis(1));
    let again = h.service.activate(&activation, "12", &ru()).await;
    assert_eq!(again.unwrap(), email(RESIDENT));
    assert_eq!(h.letters_to(RESIDENT, LetterKind::Credentials).len(), 1);
    let spent = h
        .service
        .activate(&activation, "12", &ru())
        .await
        .unwrap_err();
    assert!(spent.is(&Problem::InvalidLink), "{spent:?}");
}

/// A cabinet of `FLAT` with a session; returns (password, session token).
async fn signed_in(h: &Harness) -> (resident_auth::secrecy::SecretString, String) {
    let password = h
        .register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    let token = h.login(RESIDENT, &password).await;
    (password, token)
}

/// Confirms the latest add-address letter; returns the activation token.
async fn confirm_latest_address(h: &Harness) -> String {
    h.service
        .confirm_email(&h.link_token(RESIDENT, LetterKind::ConfirmEmail))
        .await
        .unwrap()
        .expose()
        .to_owned()
}

/// Two links adding the same account race: the one that loses its write finds the
/// account already linked and does not link it twice.
#[tokio::test]
async fn an_account_added_by_two_racing_links_is_linked_once() {
    let held = Held::new();
    let h = &held.h;
    let (_, token) = signed_in(h).await;
    let add = AddressForm {
        surname: "Иванов".into(),
        account_number: PARKING.into(),
    };
    h.service
        .add_address(&h.who(&token).await, &add, &ru())
        .await
        .unwrap();
    let first = confirm_latest_address(h).await;
    h.advance(Duration::from_secs(61));
    h.service
        .add_address(&h.who(&token).await, &add, &ru())
        .await
        .unwrap();
    let second = confirm_latest_address(h).await;
    let (entered, release) = held.hold(LetterKind::Credentials);
    let service = h.service.clone();
    let racing = tokio::spawn(async move { service.activate(&second, "123/456П", &ru()).await });
    entered.notified().await;
    h.service.activate(&first, "123/456П", &ru()).await.unwrap();
    release.notify_one();
    assert_eq!(racing.await.unwrap().unwrap(), email(RESIDENT));
    let cabinet = h
        .store
        .cabinet(CabinetKey::Email(&email(RESIDENT)))
        .await
        .unwrap()
        .unwrap();
    let accounts: Vec<String> = cabinet
        .value
        .accounts
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(accounts, [FLAT, PARKING]);
    assert!(h.stored_password_was_mailed(RESIDENT).await);
}

/// A recovery that loses its write to a password change (the credentials it was issued
/// for are gone) refuses, and the chosen password stays.
#[tokio::test]
async fn a_recovery_racing_a_password_change_leaves_the_chosen_password() {
    let held = Held::new();
    let h = &held.h;
    let (password, token) = signed_in(h).await;
    h.service.request_recovery(RESIDENT, &ru()).await.unwrap();
    let link = h.link_token(RESIDENT, LetterKind::RecoverPassword);
    let (entered, release) = held.hold(LetterKind::Credentials);
    let service = h.service.clone();
    let racing = tokio::spawn(async move { service.complete_recovery(&link, &ru()).await });
    entered.notified().await;
    h.service
        .change_password(
            &h.who(&token).await,
            password,
            secret(CHOSEN_PASSWORD),
            &ru(),
        )
        .await
        .unwrap();
    release.notify_one();
    let refused = racing.await.unwrap().unwrap_err();
    assert!(refused.is(&Problem::InvalidLink), "{refused:?}");
    h.login(RESIDENT, &secret(CHOSEN_PASSWORD)).await;
}

/// A cabinet of two accounts, signed in with the latest password; returns (password,
/// token).
async fn two_accounts(h: &Harness) -> (resident_auth::secrecy::SecretString, String) {
    let (_, token) = signed_in(h).await;
    let add = AddressForm {
        surname: "Иванов".into(),
        account_number: PARKING.into(),
    };
    h.service
        .add_address(&h.who(&token).await, &add, &ru())
        .await
        .unwrap();
    let activation = confirm_latest_address(h).await;
    h.service
        .activate(&activation, "123/456П", &ru())
        .await
        .unwrap();
    let password = h.mailed_password(RESIDENT);
    let token = h.login(RESIDENT, &password).await;
    (password, token)
}

/// Two requests of one session switch accounts: the second, holding the session as it was
/// before the first, writes over the first's version (same credentials) and wins.
#[tokio::test]
async fn concurrent_account_switches_of_one_session_both_apply_in_turn() {
    let h = harness();
    let (_, token) = two_accounts(&h).await;
    let (one, two) = (h.who(&token).await, h.who(&token).await);
    h.service.select_account(&one, PARKING).await.unwrap();
    h.service.select_account(&two, FLAT).await.unwrap();
    let active = h.who(&token).await.active_account.unwrap();
    assert_eq!(active.to_string(), FLAT);
}

/// A request holding the session as it was before the password changed cannot switch
/// accounts: the session now belongs to the new credentials.
#[tokio::test]
async fn a_switch_by_a_handle_from_before_a_password_change_is_refused() {
    let h = harness();
    let (password, token) = two_accounts(&h).await;
    let stale = h.who(&token).await;
    h.service
        .change_password(
            &h.who(&token).await,
            password,
            secret(CHOSEN_PASSWORD),
            &ru(),
        )
        .await
        .unwrap();
    let refused = h.service.select_account(&stale, PARKING).await.unwrap_err();
    assert!(refused.is(&Problem::SessionInvalid), "{refused:?}");
    assert!(
        h.who(&token).await.active_account.is_some(),
        "the session lives"
    );
}

/// Ending the other sessions counts only those that were alive: an idle-expired one is
/// removed but not counted.
#[tokio::test]
async fn ending_other_sessions_counts_only_live_ones() {
    let h = harness();
    let (password, _) = signed_in(&h).await;
    h.advance(config().session_idle + Duration::from_secs(1));
    let token = h.login(RESIDENT, &password).await;
    let ended = h
        .service
        .end_other_sessions(&h.who(&token).await)
        .await
        .unwrap();
    assert_eq!(ended, 0, "the idle-expired session was not alive");
    let _other = h.login(RESIDENT, &password).await;
    let ended = h
        .service
        .end_other_sessions(&h.who(&token).await)
        .await
        .unwrap();
    assert_eq!(ended, 1);
}

/// Purging reports what it removed: nothing on a fresh store, each dead record after.
#[tokio::test]
async fn purging_counts_what_it_removed() {
    let h = harness();
    assert_eq!(h.service.purge_expired().await.unwrap(), 0);
    let (password, _) = signed_in(&h).await;
    h.login(RESIDENT, &password).await;
    h.advance(config().session_absolute + Duration::from_secs(1));
    let purged = h.service.purge_expired().await.unwrap();
    assert!(purged >= 2, "two expired sessions at least: {purged}");
    assert_eq!(h.service.purge_expired().await.unwrap(), 0);
}

/// Debug output names the service and its configuration, never a port's secret.
#[test]
fn the_service_and_its_builder_debug_their_configuration() {
    let h = harness();
    let debug = format!("{:?}", h.service);
    assert!(
        debug.starts_with("AuthService {") && debug.contains("config"),
        "{debug}"
    );
    let builder = resident_auth::AuthService::builder("https://portal.example.org");
    let debug = format!("{builder:?}");
    assert!(
        debug.starts_with("AuthServiceBuilder {") && debug.contains("session_idle"),
        "{debug}"
    );
}
