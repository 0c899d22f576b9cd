//! The store conformance suite: every [`Store`] implementation must pass it unchanged.
//!
//! Two kinds of rules. The primitives' rules call the storage traits directly:
//! compare-and-swap, consume-once, insert-if-absent, uniqueness of emails and accounts,
//! counting in windows, purging — including the same call made by many tasks at once.
//! The journeys' rules run [`AuthService`] on the store (with an in-memory directory, a
//! recording mailer, a manual clock and fast argon2) and check what residents see: the
//! policy lives in the service, and these rules show it holds on top of the store.
//!
//! The [`store_conformance_tests!`] macro turns every rule
//! into a `#[tokio::test]` with one line:
//!
//! ```ignore
//! resident_auth::testing::store_conformance_tests!(async { MyStore::connect_fresh().await });
//! ```
//!
//! Rules panic (assert) on a violation, like any test. The macro and the fault matrix are
//! this module's stable surface; the rules themselves and the helpers of the workspace's
//! own tests are public only so that the macro's expansion can reach them: hidden from the
//! docs, and not under semver.
//!
//! The test crate needs `resident-auth` with the `testing` feature (this module and the
//! macro exist only with it) and tokio with the `macros` and `rt-multi-thread` features
//! (the generated tests are `#[tokio::test(flavor = "multi_thread")]`):
//!
//! ```toml
//! [dev-dependencies]
//! resident-auth = { version = "0.1", features = ["testing"] }
//! tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//! ```
//!
//! The fault matrix ([`store_fault_matrix`]) is the third check, one more line: it fails
//! every store call of every journey step in turn, before and after the call took effect,
//! through [`FaultyStore`], and checks that each step answers a retryable 503 and then
//! succeeds, or — when the write happened but its answer was lost — that the retry
//! succeeds or gives one of the definite answers a resident can act on
//! ([`Problem::InvalidLink`], [`Problem::SessionInvalid`],
//! [`Problem::CurrentPasswordWrong`], [`Problem::AlreadyRegistered`],
//! [`Problem::TooManyRequests`]); never a password nobody was sent.
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread")]
//! async fn every_store_fault_of_every_step() {
//!     resident_auth::testing::store_fault_matrix(|| MyStore::connect_fresh()).await;
//! }
//! ```
#![allow(
    clippy::too_many_lines,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::missing_panics_doc,
    clippy::indexing_slicing
)]

mod email_change;
#[doc(hidden)]
pub mod enumeration;
mod faults;
mod journeys;
mod letters;
mod migrations;
mod own_data;
mod races;
mod records;
mod sessions;
mod snapshots;

// The stable part: the conformance macro and the fault matrix.
#[doc(no_inline)]
pub use crate::store_conformance_tests;
pub use faults::{store_fault_matrix, FaultMode, FaultyStore};

// The rules one by one, and the helpers of this workspace's own tests: hidden, and not
// under semver — they change with every rule added (only the macro and the matrix above
// are the stable way to run them).
#[doc(hidden)]
pub use email_change::*;
#[doc(hidden)]
pub use journeys::*;
#[doc(hidden)]
pub use letters::*;
#[doc(hidden)]
pub use migrations::{counters_from_before_subjects_are_found, COUNTERS_BEFORE_SUBJECTS};
#[doc(hidden)]
pub use own_data::journey_resident_downloads_the_data_and_closes_the_cabinet;
#[doc(hidden)]
pub use races::*;
#[doc(hidden)]
pub use records::*;
#[doc(hidden)]
pub use sessions::*;
#[doc(hidden)]
pub use snapshots::*;

use std::{sync::Arc, time::Duration};

use futures::future::join_all;
use secrecy::SecretString;

use crate::{
    clock::{ManualClock, Timestamp},
    config::{Argon2Hasher, AuthConfig, HashParams},
    errors::Problem,
    ids::{CabinetId, LetterId, SessionId},
    journeys::{AddressForm, RegistrationForm},
    letters::LetterKind,
    mail::{LetterStatus, QueuedLetter, SealedLetter},
    memory::{link_token, mailed_password, register_by_mail, MemoryDirectory, RecordingMailer},
    ports::{
        Cabinet, CabinetKey, CabinetSwap, CounterKey, Expected, Link, LinkAdvance, LinkPurpose,
        Session, Store, Version,
    },
    secret::{HashedPassword, Token, TokenHash},
    AccountNumber, AuthService, Email, Error, Links, Locale, Ports, RequestContext,
};

/// Reads `body` as an entry of `kind` the way [`crate::ports::Encoded`] does: bytes that are
/// not a record are refused with a [`crate::ports::StoreError`], never a panic; a record read
/// is written again and must read back the same (it panics if not). The `entry_bytes` fuzz
/// target's check.
///
/// # Errors
/// [`crate::ports::StoreError`] when `body` is not a record of `kind`.
#[doc(hidden)]
pub fn check_entry(
    kind: crate::ports::EntryKind,
    body: &[u8],
) -> Result<(), crate::ports::StoreError> {
    crate::ports::entries::check_entry(kind, body)
}

/// Generates one `#[tokio::test]` per conformance rule. `$store` is an expression that
/// evaluates to a future of a fresh, empty store (it runs once per test); the store must
/// be `Clone` (clones share the data) and `'static`. The test crate needs the `testing`
/// feature and tokio's `macros` and `rt-multi-thread` ([the module](crate::testing)).
///
/// Named as `resident_auth::testing::store_conformance_tests!`.
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
#[doc(hidden)]
#[macro_export]
macro_rules! store_conformance_tests {
    ($store:expr) => {
        $crate::store_conformance_tests!(@rules $store;
            links_insert_swap_move_and_consume_once,
            links_advance_only_when_live_and_of_the_purpose,
            cabinets_keep_emails_and_accounts_unique,
            sessions_swap_without_resurrection,
            sessions_are_listed_by_cabinet,
            counters_count_in_fixed_windows,
            session_with_cabinet_reads_both,
            operators_list_links_and_counters_by_subject,
            purging_removes_only_what_is_dead,
            concurrent_link_swaps_let_one_win,
            concurrent_increments_count_every_event,
            concurrent_cabinets_for_one_account_let_one_win,
            concurrent_cabinet_updates_let_one_win,
            journey_registration_confirmation_activation,
            journey_resend_interval_and_coexisting_registrations,
            letters_ride_with_their_write_only,
            letters_are_claimed_by_one_caller_until_the_claim_ends,
            letters_are_settled_listed_and_purged,
            journey_letters_wait_out_a_mail_outage,
            journey_links_expire,
            journey_premises_attempts_count_per_account,
            journey_added_account_joins_and_ends_sessions,
            journey_recovery_replaces_the_password_once,
            journey_sessions_expire_and_switch_accounts,
            journey_login_throttle_counts_and_clears,
            journey_concurrent_activations_issue_credentials_once,
            journey_concurrent_confirmations_consume_a_link_once,
            journey_login_racing_a_reissue_keeps_no_session,
            journey_purge_keeps_the_living,
            journey_session_checks_are_reads_within_a_minute,
            journey_password_change_keeps_only_this_session,
            journey_sessions_listed_and_ended_by_id,
            journey_temporary_password_must_be_changed,
            journey_resident_downloads_the_data_and_closes_the_cabinet,
            journey_resident_changes_the_email,
            journey_email_change_racing_a_recovery_lets_one_win,
            journey_email_change_racing_logins_keeps_no_old_session,
            journey_two_cabinets_asking_for_one_address_let_the_first_confirmed_win
        );
    };
    (@rules $store:expr; $($rule:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $rule() {
                let store = $store.await;
                $crate::testing::$rule(&store).await;
            }
        )+
    };
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// A fixed starting time, so the suite never depends on the wall clock.
fn t0() -> Timestamp {
    Timestamp::from_millis(1_767_225_600_000)
}

fn email(text: &str) -> Email {
    text.parse()
        .unwrap_or_else(|e| panic!("test email {text}: {e}"))
}

fn account(text: &str) -> AccountNumber {
    text.parse()
        .unwrap_or_else(|e| panic!("test account {text}: {e}"))
}

fn hash(label: &str) -> HashedPassword {
    HashedPassword::from_phc(format!("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$${label}"))
}

fn token() -> TokenHash {
    Token::generate().hash()
}

fn confirmation_link(to: &Email, number: AccountNumber, expires_at: Timestamp) -> Link {
    Link {
        purpose: LinkPurpose::Confirmation,
        email: to.clone(),
        account_number: Some(number),
        cabinet: None,
        credential_version: None,
        expires_at,
        issuing_until: None,
    }
}

fn cabinet(to: &Email, accounts: &[AccountNumber]) -> Cabinet {
    Cabinet {
        id: CabinetId::generate(),
        email: to.clone(),
        password_hash: hash("first"),
        credential_version: 1,
        accounts: accounts.to_vec(),
        password_expires_at: None,
    }
}

fn session(of: &Cabinet, at: Timestamp) -> Session {
    Session {
        id: SessionId::generate(),
        cabinet: of.id,
        credential_version: of.credential_version,
        active_account: of.accounts.first().copied(),
        created_at: at,
        last_used: at,
        expires_at: at.plus(30 * MINUTE),
        client: Some("192.0.2.1".to_owned()),
    }
}

const DIRECTORY: &str = "account_number,surnames,address,premises\n\
7800000000001,Иванов,\"ул. Садовая, д. 1, кв. 12\",12\n\
7800000000002,Иванов,\"ул. Садовая, д. 1, машино-место 123/456П\",123/456П\n";
const RESIDENT: &str = "resident@example.org";
const FLAT: &str = "7800000000001";
const PARKING: &str = "7800000000002";

/// The service on the store under test, as the journeys' rules drive it.
struct Journeys {
    service: AuthService,
    mailer: RecordingMailer,
    clock: Arc<ManualClock>,
}

impl Journeys {
    fn on<S: Store + Clone + 'static>(store: &S) -> Self {
        Self::configured(store, |_| {})
    }

    fn configured<S: Store + Clone + 'static>(
        store: &S,
        change: impl FnOnce(&mut AuthConfig),
    ) -> Self {
        let mut config = AuthConfig::new(Links::new("https://portal.example.org"));
        // The suite reads each letter right after the step that queued it.
        config.delivery.in_request = true;
        change(&mut config);
        let mailer = RecordingMailer::new();
        let clock = Arc::new(ManualClock::new(t0()));
        let ports = Ports::new(
            Arc::new(store.clone()),
            Arc::new(MemoryDirectory::from_csv(DIRECTORY).unwrap()),
            Arc::new(mailer.clone()),
            Arc::new(Argon2Hasher::with_workers(HashParams::insecure_fast_for_tests(), 2).unwrap()),
            clock.clone(),
        );
        Self {
            service: AuthService::new(ports, config),
            mailer,
            clock,
        }
    }

    fn context() -> RequestContext {
        RequestContext::new(Locale::Ru)
    }

    fn form(account_number: &str, to: &str) -> RegistrationForm {
        RegistrationForm {
            surname: "Иванов".into(),
            account_number: account_number.into(),
            email: to.into(),
        }
    }

    fn link(&self, to: &str, kind: LetterKind) -> String {
        self.mailer
            .last(&email(to), kind)
            .as_ref()
            .and_then(link_token)
            .expect("a letter with a link")
    }

    fn password(&self, to: &str) -> SecretString {
        self.mailer
            .last(&email(to), LetterKind::Credentials)
            .as_ref()
            .and_then(mailed_password)
            .expect("a credentials letter")
    }

    fn letters(&self, kind: LetterKind) -> usize {
        self.mailer
            .letters()
            .iter()
            .filter(|l| l.content.kind() == kind)
            .count()
    }

    async fn register(&self, account_number: &str, to: &str) -> SecretString {
        register_by_mail(
            &self.service,
            &self.mailer,
            &Self::form(account_number, to),
            premises_of(account_number),
            &Self::context(),
        )
        .await
        .unwrap()
    }

    async fn confirmed(&self, account_number: &str, to: &str) -> Token {
        self.service
            .register(&Self::form(account_number, to), &Self::context())
            .await
            .unwrap();
        let confirmation = self.link(to, LetterKind::ConfirmEmail);
        self.service.confirm_email(&confirmation).await.unwrap()
    }

    async fn login(&self, to: &str, password: &SecretString) -> Result<String, Error> {
        self.service
            .login(to, password.clone(), &Self::context())
            .await
            .map(|l| l.session_token.expose().to_owned())
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

fn premises_of(account_number: &str) -> &'static str {
    if account_number == PARKING {
        "123/456П"
    } else {
        "12"
    }
}

fn problem(result: Result<impl std::fmt::Debug, Error>) -> Problem {
    match result {
        Err(Error::Rejected(mut problems)) if problems.len() == 1 => problems.remove(0),
        other => panic!("expected one problem, got {other:?}"),
    }
}

impl Journeys {
    fn clock_now(&self) -> Timestamp {
        use crate::Clock as _;
        self.clock.now()
    }
}

fn secret(text: &str) -> SecretString {
    SecretString::from(text.to_owned())
}

const CHOSEN: &str = "тихий вечер у старой реки";
