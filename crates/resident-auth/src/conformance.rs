//! The store conformance suite: every [`Store`] implementation must pass it unchanged.
//!
//! Two kinds of rules. The primitives' rules call the storage traits directly:
//! compare-and-swap, consume-once, insert-if-absent, uniqueness of emails and accounts,
//! counting in windows, purging — including the same call made by many tasks at once.
//! The journeys' rules run [`AuthService`] on the store (with an in-memory directory, a
//! recording mailer, a manual clock and fast argon2) and check what residents see: the
//! policy lives in the service, and these rules show it holds on top of the store.
//!
//! The [`store_conformance_tests!`](crate::store_conformance_tests) macro turns every rule
//! into a `#[tokio::test]` with one line:
//!
//! ```ignore
//! resident_auth::store_conformance_tests!(async { MyStore::connect_fresh().await });
//! ```
//!
//! Rules panic (assert) on a violation, like any test.
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
//!     resident_auth::conformance::store_fault_matrix(|| MyStore::connect_fresh()).await;
//! }
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::missing_panics_doc,
    clippy::indexing_slicing
)]

mod faults;
mod own_data;

pub use faults::{store_fault_matrix, FaultMode, FaultyStore};
pub use own_data::journey_resident_downloads_the_data_and_closes_the_cabinet;

use std::{sync::Arc, time::Duration};

use futures::future::join_all;
use secrecy::SecretString;

use crate::{
    clock::{ManualClock, Timestamp},
    ids::{CabinetId, LetterId, SessionId},
    letters::LetterKind,
    mail_queue::{LetterStatus, QueuedLetter, SealedLetter},
    memory::{link_token, mailed_password, register_by_mail, MemoryDirectory, RecordingMailer},
    ports::{
        Cabinet, CabinetKey, CabinetSwap, CounterKey, Expected, Link, LinkAdvance, LinkPurpose,
        Session, Store, Version,
    },
    secret::{HashedPassword, Token, TokenHash},
    AccountNumber, AddressForm, Argon2Hasher, AuthConfig, AuthService, Email, Error, HashParams,
    Links, Locale, Ports, Problem, RegistrationForm, RequestContext,
};

/// Generates one `#[tokio::test]` per conformance rule. `$store` is an expression that
/// evaluates to a future of a fresh, empty store (it runs once per test); the store must
/// be `Clone` (clones share the data) and `'static`. The test crate needs the `testing`
/// feature and tokio's `macros` and `rt-multi-thread` ([the module](crate::conformance)).
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
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
            journey_resident_downloads_the_data_and_closes_the_cabinet
        );
    };
    (@rules $store:expr; $($rule:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $rule() {
                let store = $store.await;
                $crate::conformance::$rule(&store).await;
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

/// Links: insert-if-absent, read, compare-and-swap, a move to another token, consume once.
pub async fn links_insert_swap_move_and_consume_once<S: Store + Clone + 'static>(store: &S) {
    let now = t0();
    let to = email("resident@example.org");
    let link = confirmation_link(&to, account("7800000000001"), now.plus(HOUR));
    let first = token();
    assert!(store.link(&first).await.unwrap().is_none());
    assert!(store
        .swap_link(&first, Expected::Absent, Some((&first, &link)), None)
        .await
        .unwrap());
    assert!(
        !store
            .swap_link(&first, Expected::Absent, Some((&first, &link)), None)
            .await
            .unwrap(),
        "insert-if-absent refuses an existing token"
    );
    let stored = store.link(&first).await.unwrap().expect("inserted");
    assert_eq!(stored.value, link);
    assert_eq!(stored.version, Version::FIRST);

    let leased = Link {
        issuing_until: Some(now.plus(MINUTE)),
        ..link.clone()
    };
    assert!(
        !store
            .swap_link(
                &first,
                Expected::Version(Version::new(7)),
                Some((&first, &leased)),
                None
            )
            .await
            .unwrap(),
        "a wrong version writes nothing"
    );
    assert!(store
        .swap_link(
            &first,
            Expected::Version(stored.version),
            Some((&first, &leased)),
            None
        )
        .await
        .unwrap());
    let stored = store.link(&first).await.unwrap().expect("still there");
    assert_eq!(stored.value, leased);
    assert_eq!(stored.version, Version::FIRST.next());

    let second = token();
    let activation = Link {
        purpose: LinkPurpose::Activation,
        ..link.clone()
    };
    assert!(store
        .swap_link(
            &first,
            Expected::Version(stored.version),
            Some((&second, &activation)),
            None
        )
        .await
        .unwrap());
    assert!(store.link(&first).await.unwrap().is_none(), "moved away");
    let moved = store.link(&second).await.unwrap().expect("moved here");
    assert_eq!(moved.value, activation);

    assert!(store
        .swap_link(&second, Expected::Version(moved.version), None, None)
        .await
        .unwrap());
    assert!(store.link(&second).await.unwrap().is_none(), "consumed");
    assert!(
        !store
            .swap_link(&second, Expected::Version(moved.version), None, None)
            .await
            .unwrap(),
        "consumed once"
    );

    // A move onto a token another link holds fails and changes nothing.
    let (a, b) = (token(), token());
    for t in [&a, &b] {
        assert!(store
            .swap_link(t, Expected::Absent, Some((t, &link)), None)
            .await
            .unwrap());
    }
    assert!(!store
        .swap_link(&a, Expected::Any, Some((&b, &activation)), None)
        .await
        .unwrap());
    assert_eq!(
        store.link(&a).await.unwrap().map(|l| l.value),
        Some(link.clone())
    );
    assert_eq!(store.link(&b).await.unwrap().map(|l| l.value), Some(link));
    assert!(store
        .swap_link(&a, Expected::Any, None, None)
        .await
        .unwrap());
    assert!(
        store.link(&a).await.unwrap().is_none(),
        "unconditional delete"
    );
}

/// Advancing a link (the confirmation step in one call): only a live link of the named
/// purpose moves, once, keeping its email, account and cabinet.
pub async fn links_advance_only_when_live_and_of_the_purpose<S: Store + Clone + 'static>(
    store: &S,
) {
    let now = t0();
    let to = email("resident@example.org");
    let link = confirmation_link(&to, account("7800000000001"), now.plus(HOUR));
    let (first, second) = (token(), token());
    store
        .swap_link(&first, Expected::Absent, Some((&first, &link)), None)
        .await
        .unwrap();
    let next = LinkAdvance {
        purpose: LinkPurpose::Activation,
        expires_at: now.plus(24 * HOUR),
    };
    for (purpose, at) in [
        (LinkPurpose::Recovery, now),
        (LinkPurpose::Confirmation, now.plus(HOUR)),
    ] {
        assert_eq!(
            store
                .advance_link(&first, purpose, at, &second, next)
                .await
                .unwrap(),
            None,
            "{purpose:?} at {at:?}"
        );
    }
    assert!(
        store.link(&first).await.unwrap().is_some(),
        "left as it was"
    );
    let moved = store
        .advance_link(&first, LinkPurpose::Confirmation, now, &second, next)
        .await
        .unwrap()
        .expect("a live confirmation advances");
    assert_eq!(
        moved,
        Link {
            purpose: LinkPurpose::Activation,
            expires_at: now.plus(24 * HOUR),
            ..link.clone()
        }
    );
    assert!(store.link(&first).await.unwrap().is_none());
    assert_eq!(
        store.link(&second).await.unwrap().map(|l| l.value),
        Some(moved)
    );
    assert_eq!(
        store
            .advance_link(&first, LinkPurpose::Confirmation, now, &token(), next)
            .await
            .unwrap(),
        None,
        "once"
    );
}

/// Cabinets: found by id, email and account; no email or account in two cabinets;
/// compare-and-swap on the version; accounts re-indexed on every write; delete.
pub async fn cabinets_keep_emails_and_accounts_unique<S: Store + Clone + 'static>(store: &S) {
    let to = email("resident@example.org");
    let (flat, parking) = (account("7800000000001"), account("7800000000002"));
    let first = Cabinet {
        password_expires_at: Some(t0().plus(HOUR)),
        ..cabinet(&to, &[flat])
    };
    assert_eq!(
        store
            .swap_cabinet(&first.id, Expected::Absent, Some(&first), None)
            .await
            .unwrap(),
        CabinetSwap::Written
    );
    for key in [
        CabinetKey::Id(&first.id),
        CabinetKey::Email(&to),
        CabinetKey::Account(&flat),
    ] {
        let found = store.cabinet(key).await.unwrap().expect("found");
        assert_eq!(found.value, first, "{key:?}");
        assert_eq!(found.version, Version::FIRST);
    }
    assert!(store
        .cabinet(CabinetKey::Account(&parking))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .swap_cabinet(&first.id, Expected::Absent, Some(&first), None)
            .await
            .unwrap(),
        CabinetSwap::Conflict,
        "insert-if-absent"
    );

    let same_email = cabinet(&to, &[parking]);
    let same_account = cabinet(&email("other@example.org"), &[parking, flat]);
    for other in [&same_email, &same_account] {
        assert_eq!(
            store
                .swap_cabinet(&other.id, Expected::Absent, Some(other), None)
                .await
                .unwrap(),
            CabinetSwap::Taken
        );
        assert!(store
            .cabinet(CabinetKey::Id(&other.id))
            .await
            .unwrap()
            .is_none());
    }
    assert!(
        store
            .cabinet(CabinetKey::Account(&parking))
            .await
            .unwrap()
            .is_none(),
        "a refused write indexes nothing"
    );

    let mut grown = first.clone();
    grown.accounts.push(parking);
    grown.password_hash = hash("second");
    grown.credential_version = 2;
    assert_eq!(
        store
            .swap_cabinet(
                &first.id,
                Expected::Version(Version::new(9)),
                Some(&grown),
                None
            )
            .await
            .unwrap(),
        CabinetSwap::Conflict
    );
    assert_eq!(
        store
            .swap_cabinet(
                &first.id,
                Expected::Version(Version::FIRST),
                Some(&grown),
                None
            )
            .await
            .unwrap(),
        CabinetSwap::Written
    );
    let found = store
        .cabinet(CabinetKey::Account(&parking))
        .await
        .unwrap()
        .expect("the added account finds the cabinet");
    assert_eq!(found.value, grown, "accounts keep their order");
    assert_eq!(found.version, Version::FIRST.next());

    // An account that leaves a cabinet is free for another.
    let mut shrunk = grown.clone();
    shrunk.accounts = vec![parking];
    assert_eq!(
        store
            .swap_cabinet(
                &first.id,
                Expected::Version(found.version),
                Some(&shrunk),
                None
            )
            .await
            .unwrap(),
        CabinetSwap::Written
    );
    assert!(store
        .cabinet(CabinetKey::Account(&flat))
        .await
        .unwrap()
        .is_none());
    let elsewhere = cabinet(&email("other@example.org"), &[flat]);
    assert_eq!(
        store
            .swap_cabinet(&elsewhere.id, Expected::Absent, Some(&elsewhere), None)
            .await
            .unwrap(),
        CabinetSwap::Written
    );

    assert_eq!(
        store
            .swap_cabinet(&first.id, Expected::Any, None, None)
            .await
            .unwrap(),
        CabinetSwap::Written
    );
    for key in [
        CabinetKey::Id(&first.id),
        CabinetKey::Email(&to),
        CabinetKey::Account(&parking),
    ] {
        assert!(
            store.cabinet(key).await.unwrap().is_none(),
            "{key:?} deleted"
        );
    }
}

/// Sessions (of a stored cabinet): insert-if-absent, compare-and-swap, delete; a write at
/// a version read before a delete never brings the session back.
pub async fn sessions_swap_without_resurrection<S: Store + Clone + 'static>(store: &S) {
    let now = t0();
    let owner = cabinet(&email("resident@example.org"), &[account("7800000000001")]);
    store
        .swap_cabinet(&owner.id, Expected::Absent, Some(&owner), None)
        .await
        .unwrap();
    let record = session(&owner, now);
    let t = token();
    assert!(store
        .swap_session(&t, Expected::Absent, Some(&record))
        .await
        .unwrap());
    assert!(!store
        .swap_session(&t, Expected::Absent, Some(&record))
        .await
        .unwrap());
    let stored = store.session(&t).await.unwrap().expect("stored");
    assert_eq!(stored.value, record);
    assert_eq!(stored.version, Version::FIRST);

    let touched = Session {
        last_used: now.plus(MINUTE),
        expires_at: now.plus(31 * MINUTE),
        ..record.clone()
    };
    assert!(store
        .swap_session(&t, Expected::Version(stored.version), Some(&touched))
        .await
        .unwrap());
    assert!(
        !store
            .swap_session(&t, Expected::Version(stored.version), Some(&record))
            .await
            .unwrap(),
        "a stale version writes nothing"
    );
    assert_eq!(
        store.session(&t).await.unwrap().map(|s| s.value),
        Some(touched.clone())
    );

    assert!(store.swap_session(&t, Expected::Any, None).await.unwrap());
    assert!(
        !store
            .swap_session(&t, Expected::Version(Version::FIRST.next()), Some(&touched))
            .await
            .unwrap(),
        "no resurrection of a deleted session"
    );
    assert!(store.session(&t).await.unwrap().is_none());
    assert!(
        store.swap_session(&t, Expected::Any, None).await.unwrap(),
        "deleting nothing is not an error"
    );
}

/// Listing a cabinet's sessions: exactly its own, expired ones included, each under the
/// token it is stored under and at its version; a deleted one is gone from the list.
pub async fn sessions_are_listed_by_cabinet<S: Store + Clone + 'static>(store: &S) {
    let now = t0();
    let owner = cabinet(&email("resident@example.org"), &[account("7800000000001")]);
    let neighbour = cabinet(&email("neighbour@example.org"), &[account("7800000000002")]);
    for c in [&owner, &neighbour] {
        store
            .swap_cabinet(&c.id, Expected::Absent, Some(c), None)
            .await
            .unwrap();
    }
    assert!(store.cabinet_sessions(&owner.id).await.unwrap().is_empty());
    let expired = Session {
        expires_at: now,
        ..session(&owner, Timestamp::from_millis(now.as_millis() - 3_600_000))
    };
    let mine = [
        (token(), session(&owner, now)),
        (token(), session(&owner, now.plus(MINUTE))),
        (token(), expired),
    ];
    for (t, record) in &mine {
        assert!(store
            .swap_session(t, Expected::Absent, Some(record))
            .await
            .unwrap());
    }
    let theirs = token();
    store
        .swap_session(&theirs, Expected::Absent, Some(&session(&neighbour, now)))
        .await
        .unwrap();
    let mut listed = store.cabinet_sessions(&owner.id).await.unwrap();
    listed.sort_by_key(|(_, s)| s.value.created_at);
    let mut expected: Vec<_> = mine.iter().collect();
    expected.sort_by_key(|(_, s)| s.created_at);
    assert_eq!(listed.len(), 3);
    for ((t, stored), (want_t, want)) in listed.iter().zip(expected) {
        assert_eq!(t, want_t);
        assert_eq!(&stored.value, want);
        assert_eq!(stored.version, Version::FIRST);
    }
    store
        .swap_session(&mine[0].0, Expected::Any, None)
        .await
        .unwrap();
    let left = store.cabinet_sessions(&owner.id).await.unwrap();
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|(t, _)| *t != mine[0].0));
    let theirs_listed = store.cabinet_sessions(&neighbour.id).await.unwrap();
    assert_eq!(theirs_listed.len(), 1);
    assert_eq!(theirs_listed[0].0, theirs);
}

/// Counters: 1, 2, 3 in one window; a fresh window at its end; reset; keys independent.
pub async fn counters_count_in_fixed_windows<S: Store + Clone + 'static>(store: &S) {
    let now = t0();
    let key = CounterKey::new("login:cabinet", "resident@example.org");
    let other = CounterKey::new("login:client", "192.0.2.1");
    for expected in 1..=3 {
        let count = store
            .increment(&key, now.plus(Duration::from_secs(expected.into())), HOUR)
            .await
            .unwrap();
        assert_eq!(count.count, expected);
        assert_eq!(
            count.window_ends,
            now.plus(Duration::from_secs(1)).plus(HOUR)
        );
    }
    assert_eq!(store.increment(&other, now, MINUTE).await.unwrap().count, 1);
    let just_before = now
        .plus(Duration::from_secs(1))
        .plus(HOUR)
        .plus(Duration::ZERO);
    let fresh = store.increment(&key, just_before, HOUR).await.unwrap();
    assert_eq!(fresh.count, 1, "the window ends at its end");
    assert_eq!(fresh.window_ends, just_before.plus(HOUR));
    store.reset(&key).await.unwrap();
    store.reset(&key).await.unwrap();
    assert_eq!(
        store
            .increment(&key, just_before, HOUR)
            .await
            .unwrap()
            .count,
        1
    );
    let both = store
        .increment_all(&[(key.clone(), HOUR), (other.clone(), MINUTE)], just_before)
        .await
        .unwrap();
    assert_eq!(both.iter().map(|c| c.count).collect::<Vec<_>>(), vec![2, 1]);
}

/// The operators' optional primitives (docs/operating.md): links listed by email or
/// account, counters by the subject their key ends with — exactly those, no look-alikes.
/// A store that does not offer them answers "unsupported" for both, and the operators'
/// operations refuse on it.
pub async fn operators_list_links_and_counters_by_subject<S: Store + Clone + 'static>(store: &S) {
    let (first, second) = (email("resident@example.org"), email("other@example.org"));
    let (flat, parking) = (account("7800000000001"), account("7800000000002"));
    let listed = store.links_about(Some(&first), &[]).await;
    if let Err(error) = &listed {
        assert!(error.is_unsupported(), "{error:?}");
        let counters = store
            .counters_about(&[first.to_string()])
            .await
            .unwrap_err();
        assert!(counters.is_unsupported(), "both or neither");
        return;
    }
    let mut tokens = Vec::new();
    for (to, number, purpose) in [
        (&first, Some(flat), LinkPurpose::Confirmation),
        (&second, Some(parking), LinkPurpose::Activation),
        (&second, None, LinkPurpose::Recovery),
    ] {
        let link = Link {
            purpose,
            account_number: number,
            ..confirmation_link(to, flat, t0().plus(HOUR))
        };
        let token = token();
        assert!(store
            .swap_link(&token, Expected::Absent, Some((&token, &link)), None)
            .await
            .unwrap());
        tokens.push(token);
    }
    let found = |links: Vec<(TokenHash, crate::ports::Versioned<Link>)>| {
        let mut found: Vec<usize> = links
            .iter()
            .map(|(token, _)| tokens.iter().position(|t| t == token).unwrap())
            .collect();
        found.sort_unstable();
        found
    };
    assert_eq!(
        found(store.links_about(Some(&first), &[]).await.unwrap()),
        [0]
    );
    assert_eq!(
        found(store.links_about(None, &[parking]).await.unwrap()),
        [1]
    );
    assert_eq!(
        found(store.links_about(Some(&second), &[flat]).await.unwrap()),
        [0, 1, 2]
    );
    assert!(store
        .links_about(Some(&email("nobody@example.org")), &[])
        .await
        .unwrap()
        .is_empty());
    let keys = [
        CounterKey::new("login:cabinet", &first),
        CounterKey::new("login:cabinet-client", format_args!("192.0.2.1:{first}")),
        CounterKey::new("premises:account", format_args!("900s:{flat}")),
        CounterKey::new("letter:email", &second),
        CounterKey::new("letter:email", "another-resident@example.org"),
        CounterKey::new("login:client", "192.0.2.1"),
    ];
    for key in &keys {
        store.increment(key, t0(), HOUR).await.unwrap();
    }
    let about = |subjects: Vec<String>| {
        let store = store.clone();
        async move {
            let mut keys: Vec<String> = store
                .counters_about(&subjects)
                .await
                .unwrap()
                .into_iter()
                .map(|(key, count)| {
                    assert_eq!(count.count, 1);
                    key.as_str().to_owned()
                })
                .collect();
            keys.sort();
            keys
        }
    };
    assert_eq!(
        about(vec![first.to_string()]).await,
        [keys[1].as_str(), keys[0].as_str()]
    );
    assert_eq!(about(vec![flat.to_string()]).await, [keys[2].as_str()]);
    assert_eq!(
        about(vec![second.to_string(), flat.to_string()]).await,
        [keys[3].as_str(), keys[2].as_str()]
    );
    assert!(about(vec!["example.org".to_owned()]).await.is_empty());
}

/// The session-and-cabinet lookup returns both, or nothing when either is missing.
pub async fn session_with_cabinet_reads_both<S: Store + Clone + 'static>(store: &S) {
    let now = t0();
    let owner = cabinet(&email("resident@example.org"), &[account("7800000000001")]);
    let t = token();
    assert!(store.session_with_cabinet(&t).await.unwrap().is_none());
    store
        .swap_cabinet(&owner.id, Expected::Absent, Some(&owner), None)
        .await
        .unwrap();
    let record = session(&owner, now);
    store
        .swap_session(&t, Expected::Absent, Some(&record))
        .await
        .unwrap();
    let (found, of) = store
        .session_with_cabinet(&t)
        .await
        .unwrap()
        .expect("both there");
    assert_eq!((found.value, of.value), (record, owner.clone()));
    store
        .swap_cabinet(&owner.id, Expected::Any, None, None)
        .await
        .unwrap();
    assert!(
        store.session_with_cabinet(&t).await.unwrap().is_none(),
        "a session of a deleted cabinet is no session"
    );
}

/// Purging deletes links, sessions and counters expired at or before the time given, and
/// nothing that still lives.
pub async fn purging_removes_only_what_is_dead<S: Store + Clone + 'static>(store: &S) {
    let now = t0();
    let to = email("resident@example.org");
    let owner = cabinet(&to, &[account("7800000000001")]);
    store
        .swap_cabinet(&owner.id, Expected::Absent, Some(&owner), None)
        .await
        .unwrap();
    let (dead_link, live_link) = (token(), token());
    for (t, expires_at) in [
        (&dead_link, now),
        (&live_link, now.plus(Duration::from_millis(1))),
    ] {
        let link = confirmation_link(&to, account("7800000000002"), expires_at);
        store
            .swap_link(t, Expected::Absent, Some((t, &link)), None)
            .await
            .unwrap();
    }
    let (dead_session, live_session) = (token(), token());
    for (t, expires_at) in [
        (&dead_session, now),
        (&live_session, now.plus(Duration::from_millis(1))),
    ] {
        let record = Session {
            expires_at,
            ..session(&owner, now.plus(Duration::from_millis(0)))
        };
        store
            .swap_session(t, Expected::Absent, Some(&record))
            .await
            .unwrap();
    }
    let dead_counter = CounterKey::new("recovery:email", "a@example.org");
    let live_counter = CounterKey::new("recovery:email", "b@example.org");
    store
        .increment(
            &dead_counter,
            now.plus(Duration::from_millis(0)),
            Duration::ZERO,
        )
        .await
        .unwrap();
    store
        .increment(&live_counter, now, Duration::from_millis(1))
        .await
        .unwrap();

    assert_eq!(store.purge_expired(now).await.unwrap(), 3);
    assert!(store.link(&dead_link).await.unwrap().is_none());
    assert!(store.link(&live_link).await.unwrap().is_some());
    assert!(store.session(&dead_session).await.unwrap().is_none());
    assert!(store.session(&live_session).await.unwrap().is_some());
    assert_eq!(
        store
            .increment(&live_counter, now, HOUR)
            .await
            .unwrap()
            .count,
        2,
        "a live counter survives"
    );
    assert!(store
        .cabinet(CabinetKey::Id(&owner.id))
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.purge_expired(now).await.unwrap(), 0);
}

/// Twenty tasks consume one link at one version: exactly one wins; every other gets
/// `false`, never an error.
pub async fn concurrent_link_swaps_let_one_win<S: Store + Clone + 'static>(store: &S) {
    let t = token();
    let link = confirmation_link(
        &email("resident@example.org"),
        account("7800000000001"),
        t0().plus(HOUR),
    );
    store
        .swap_link(&t, Expected::Absent, Some((&t, &link)), None)
        .await
        .unwrap();
    let results = join_all(
        (0..20).map(|_| store.swap_link(&t, Expected::Version(Version::FIRST), None, None)),
    )
    .await;
    let wins = results
        .into_iter()
        .map(|r| r.expect("a loser is told false, not an error"))
        .filter(|won| *won)
        .count();
    assert_eq!(wins, 1);
}

/// Twenty tasks count one event each under one key at once: the counts returned are
/// exactly 1 to 20, so a limit checked on the returned count lets exactly the limit through.
pub async fn concurrent_increments_count_every_event<S: Store + Clone + 'static>(store: &S) {
    let key = CounterKey::new("premises:account", "7800000000001");
    let now = t0();
    let results = join_all((0..20).map(|_| store.increment(&key, now, HOUR))).await;
    let mut counts: Vec<u32> = results.into_iter().map(|r| r.unwrap().count).collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=20).collect::<Vec<_>>());
}

/// Ten cabinets claim one account at once: one is written, the others are told `Taken`.
pub async fn concurrent_cabinets_for_one_account_let_one_win<S: Store + Clone + 'static>(
    store: &S,
) {
    let number = account("7800000000001");
    let cabinets: Vec<Cabinet> = (0..10)
        .map(|i| cabinet(&email(&format!("resident{i}@example.org")), &[number]))
        .collect();
    let results = join_all(
        cabinets
            .iter()
            .map(|c| store.swap_cabinet(&c.id, Expected::Absent, Some(c), None)),
    )
    .await;
    let outcomes: Vec<CabinetSwap> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == CabinetSwap::Written)
            .count(),
        1
    );
    assert!(outcomes
        .iter()
        .all(|o| matches!(o, CabinetSwap::Written | CabinetSwap::Taken)));
}

/// Ten writes of one cabinet at one version: one is written, the others are told
/// `Conflict`.
pub async fn concurrent_cabinet_updates_let_one_win<S: Store + Clone + 'static>(store: &S) {
    let owner = cabinet(&email("resident@example.org"), &[account("7800000000001")]);
    store
        .swap_cabinet(&owner.id, Expected::Absent, Some(&owner), None)
        .await
        .unwrap();
    let updates: Vec<Cabinet> = (0..10)
        .map(|i| Cabinet {
            password_hash: hash(&format!("p{i}")),
            credential_version: 2,
            ..owner.clone()
        })
        .collect();
    let results = join_all(
        updates
            .iter()
            .map(|c| store.swap_cabinet(&c.id, Expected::Version(Version::FIRST), Some(c), None)),
    )
    .await;
    let outcomes: Vec<CabinetSwap> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == CabinetSwap::Written)
            .count(),
        1
    );
    assert!(outcomes
        .iter()
        .all(|o| matches!(o, CabinetSwap::Written | CabinetSwap::Conflict)));
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

/// Register, confirm, activate: the cabinet exists only after activation, every link
/// works once, and the account and email are then taken.
pub async fn journey_registration_confirmation_activation<S: Store + Clone + 'static>(store: &S) {
    let j = Journeys::on(store);
    let activation = j.confirmed(FLAT, RESIDENT).await;
    let confirmation = j.link(RESIDENT, LetterKind::ConfirmEmail);
    assert_eq!(
        problem(j.service.confirm_email(&confirmation).await),
        Problem::InvalidLink,
        "a confirmation link works once"
    );
    assert!(store
        .cabinet(CabinetKey::Email(&email(RESIDENT)))
        .await
        .unwrap()
        .is_none());
    j.service
        .activate(activation.expose(), "12", &Journeys::context())
        .await
        .unwrap();
    let password = j.password(RESIDENT);
    assert_eq!(
        problem(
            j.service
                .activate(activation.expose(), "12", &Journeys::context())
                .await
        ),
        Problem::InvalidLink,
        "an activation link works once"
    );
    let token = j.login(RESIDENT, &password).await.unwrap();
    let session = j.service.authenticate(&token).await.unwrap();
    assert_eq!(session.accounts, vec![account(FLAT)]);
    assert_eq!(session.active_account, Some(account(FLAT)));
    j.advance(HOUR);
    for (number, to) in [(PARKING, RESIDENT), (FLAT, "other@example.org")] {
        assert_eq!(
            problem(
                j.service
                    .register(&Journeys::form(number, to), &Journeys::context())
                    .await
            ),
            Problem::AlreadyRegistered,
            "{number} {to}"
        );
    }
}

/// A second letter for the same email or account within the resend interval is refused;
/// after it, a second registration coexists with the first, and the first to activate wins.
pub async fn journey_resend_interval_and_coexisting_registrations<S: Store + Clone + 'static>(
    store: &S,
) {
    let j = Journeys::on(store);
    let first = j.confirmed(FLAT, RESIDENT).await;
    for (number, to) in [(FLAT, "other@example.org"), (PARKING, RESIDENT)] {
        assert!(matches!(
            problem(
                j.service
                    .register(&Journeys::form(number, to), &Journeys::context())
                    .await
            ),
            Problem::TooManyRequests { retry_after } if retry_after <= MINUTE
        ));
    }
    j.advance(MINUTE);
    let second = j.confirmed(FLAT, "other@example.org").await;
    j.service
        .activate(second.expose(), "12", &Journeys::context())
        .await
        .unwrap();
    assert_eq!(
        problem(
            j.service
                .activate(first.expose(), "12", &Journeys::context())
                .await
        ),
        Problem::AlreadyRegistered,
        "the first to activate wins"
    );
    // Decided at commit time by the service, the same on every store: the losing
    // registration's link is kept (not consumed) and answers "already registered" again,
    // never a password, until it expires.
    for _ in 0..2 {
        assert_eq!(
            problem(
                j.service
                    .activate(first.expose(), "12", &Journeys::context())
                    .await
            ),
            Problem::AlreadyRegistered
        );
    }
    assert_eq!(j.letters(LetterKind::Credentials), 1);
    j.advance(25 * HOUR);
    assert_eq!(
        problem(
            j.service
                .activate(first.expose(), "12", &Journeys::context())
                .await
        ),
        Problem::InvalidLink
    );
}

fn letter_to(to: &Email, cabinet: Option<CabinetId>, at: Timestamp) -> QueuedLetter {
    let id = LetterId::generate();
    QueuedLetter {
        id,
        to: to.clone(),
        cabinet,
        kind: LetterKind::ConfirmEmail,
        sealed: Some(SealedLetter::from_bytes(vec![1, 2, 3, 4])),
        status: LetterStatus::Queued,
        attempts: 0,
        queued_at: at,
        next_attempt_at: at,
        give_up_at: at.plus(24 * HOUR),
        keep_until: None,
        last_error: None,
    }
}

/// Queues `letter` with a fresh confirmation link to its recipient (the write a
/// registration makes).
async fn queue_with_a_link<S: Store>(store: &S, letter: &QueuedLetter) {
    let t = token();
    let link = confirmation_link(
        &letter.to,
        account("7800000000001"),
        letter.queued_at.plus(HOUR),
    );
    assert!(store
        .swap_link(&t, Expected::Absent, Some((&t, &link)), Some(letter))
        .await
        .unwrap());
}

/// A letter is stored with the link or cabinet write that carries it, and only if that
/// write is: a failed compare-and-swap, a token taken, an email taken queue nothing.
pub async fn letters_ride_with_their_write_only<S: Store + Clone + 'static>(store: &S) {
    let now = t0();
    let to = email("queue@example.org");
    let link = confirmation_link(&to, account("7800000000001"), now.plus(HOUR));
    let (t, lost) = (token(), letter_to(&to, None, now));
    // A swap that fails (wrong version) queues nothing.
    assert!(!store
        .swap_link(
            &t,
            Expected::Version(Version::new(7)),
            Some((&t, &link)),
            Some(&lost)
        )
        .await
        .unwrap());
    let kept = letter_to(&to, None, now);
    assert!(store
        .swap_link(&t, Expected::Absent, Some((&t, &link)), Some(&kept))
        .await
        .unwrap());
    let letters = store.letters_about(Some(&to), None).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].value, kept);
    assert_eq!(letters[0].version, Version::FIRST);
    // Cabinets: a conflict or a taken email queues nothing; a write does.
    let first = cabinet(&to, &[account("7800000000001")]);
    let second = cabinet(&to, &[account("7800000000002")]);
    let with_first = letter_to(&to, Some(first.id), now);
    assert_eq!(
        store
            .swap_cabinet(&first.id, Expected::Absent, Some(&first), Some(&with_first))
            .await
            .unwrap(),
        CabinetSwap::Written
    );
    let refused = letter_to(&to, Some(second.id), now);
    assert_eq!(
        store
            .swap_cabinet(&second.id, Expected::Absent, Some(&second), Some(&refused))
            .await
            .unwrap(),
        CabinetSwap::Taken
    );
    assert_eq!(
        store
            .swap_cabinet(
                &first.id,
                Expected::Version(Version::new(9)),
                Some(&first),
                Some(&refused)
            )
            .await
            .unwrap(),
        CabinetSwap::Conflict
    );
    let about_first = store.letters_about(None, Some(&first.id)).await.unwrap();
    assert_eq!(about_first.len(), 1);
    assert_eq!(about_first[0].value.id, with_first.id);
    assert_eq!(store.letters_about(Some(&to), None).await.unwrap().len(), 2);
}

/// Claiming moves a due letter's next attempt to the end of the claim, so concurrent
/// callers never get one letter twice; once the claim ends unsettled (a dead worker), the
/// letter is due again. Earliest first; letters not yet due, sent or dead are never
/// claimed.
pub async fn letters_are_claimed_by_one_caller_until_the_claim_ends<S: Store + Clone + 'static>(
    store: &S,
) {
    let now = t0();
    let to = email("claims@example.org");
    let mut queued = Vec::new();
    for i in 0..30u64 {
        let mut letter = letter_to(&to, None, now.plus(Duration::from_millis(i)));
        if i == 29 {
            letter.next_attempt_at = now.plus(HOUR);
        }
        queue_with_a_link(store, &letter).await;
        queued.push(letter.id);
    }
    let at = now.plus(MINUTE);
    let claim_until = at.plus(2 * MINUTE);
    // Earliest due first.
    let first = store.claim_letters(at, claim_until, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].value.id, queued[0], "earliest due first");
    let claims = join_all((0..10).map(|_| {
        let store = store.clone();
        async move { store.claim_letters(at, claim_until, 4).await.unwrap() }
    }))
    .await;
    let mut claimed: Vec<LetterId> = claims.iter().flatten().map(|l| l.value.id).collect();
    assert!(claims.iter().all(|c| c.len() <= 4));
    let total = claimed.len();
    claimed.sort();
    claimed.dedup();
    assert_eq!(claimed.len(), total, "a letter was claimed twice");
    assert!(total <= 28, "the letter not yet due was claimed");
    assert!(
        !claimed.contains(&queued[0]),
        "a claimed letter was claimed again"
    );
    for letter in claims.iter().flatten() {
        assert_eq!(letter.value.next_attempt_at, claim_until);
        assert_eq!(letter.version, Version::FIRST.next());
    }
    // The rest of the due ones, then nothing until a claim ends.
    let rest = store.claim_letters(at, claim_until, 100).await.unwrap();
    assert_eq!(total + rest.len(), 28);
    assert!(store
        .claim_letters(at, claim_until, 100)
        .await
        .unwrap()
        .is_empty());
    // A claim that ended unsettled: every letter is due again (the one not yet due stays).
    let again = store
        .claim_letters(claim_until, claim_until.plus(MINUTE), 100)
        .await
        .unwrap();
    assert_eq!(again.len(), 29);
}

/// Settling is a compare-and-swap on the claimed version (a worker whose claim ran out
/// cannot overwrite the next one's settlement); sent and dead letters are never claimed
/// and are purged at their `keep_until`.
pub async fn letters_are_settled_listed_and_purged<S: Store + Clone + 'static>(store: &S) {
    let now = t0();
    let to = email("settle@example.org");
    for _ in 0..3 {
        queue_with_a_link(store, &letter_to(&to, None, now)).await;
    }
    let claimed = store
        .claim_letters(now, now.plus(MINUTE), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let settle = |letter: &crate::ports::Versioned<QueuedLetter>, status| QueuedLetter {
        status,
        sealed: None,
        attempts: 1,
        keep_until: Some(now.plus(HOUR)),
        ..letter.value.clone()
    };
    let sent = settle(&claimed[0], LetterStatus::Sent);
    assert!(
        !store
            .swap_letter(&sent.id, Expected::Version(Version::FIRST), Some(&sent))
            .await
            .unwrap(),
        "settling at a version before the claim fails"
    );
    assert!(store
        .swap_letter(&sent.id, Expected::Version(claimed[0].version), Some(&sent))
        .await
        .unwrap());
    let dead = settle(&claimed[1], LetterStatus::Dead);
    assert!(store
        .swap_letter(&dead.id, Expected::Version(claimed[1].version), Some(&dead))
        .await
        .unwrap());
    // The third is left claimed and unsettled: due again after its claim.
    let later = now.plus(2 * MINUTE);
    let due = store
        .claim_letters(later, later.plus(MINUTE), 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].value.id, claimed[2].value.id);
    let listed = store.letters_about(Some(&to), None).await.unwrap();
    let status_of = |id: LetterId| {
        listed
            .iter()
            .find(|l| l.value.id == id)
            .unwrap()
            .value
            .clone()
    };
    assert_eq!(status_of(sent.id).status, LetterStatus::Sent);
    assert_eq!(status_of(sent.id).sealed, None);
    assert_eq!(status_of(dead.id).status, LetterStatus::Dead);
    // Purged at keep_until, not before; the queued one stays. (A store that expires
    // records by itself keeps the default purge, which deletes nothing.)
    let just_before = Timestamp::from_millis(now.plus(HOUR).as_millis() - 1);
    assert_eq!(store.purge_letters(just_before).await.unwrap(), 0);
    let purged = store.purge_letters(now.plus(HOUR)).await.unwrap();
    let left: Vec<LetterId> = store
        .letters_about(Some(&to), None)
        .await
        .unwrap()
        .iter()
        .map(|l| l.value.id)
        .collect();
    match purged {
        0 => assert_eq!(left.len(), 3),
        2 => assert_eq!(left, vec![claimed[2].value.id]),
        other => panic!("purged {other} letters; 2 were settled"),
    }
}

/// The mail server is down for a whole registration: the answers are as usual, the
/// letters wait in the store, failed attempts come back later, and once the server is
/// up every letter goes out exactly once.
pub async fn journey_letters_wait_out_a_mail_outage<S: Store + Clone + 'static>(store: &S) {
    let j = Journeys::on(store);
    j.mailer.set_failing(true);
    j.service
        .register(&Journeys::form(FLAT, RESIDENT), &Journeys::context())
        .await
        .expect("the answer never waits for the mail server");
    assert!(j.mailer.letters().is_empty());
    j.advance(Duration::from_secs(6));
    let report = j.service.deliver_due().await.unwrap();
    assert_eq!((report.claimed, report.retried), (1, 1));
    j.mailer.set_failing(false);
    // Not due yet: the backoff grows.
    assert_eq!(j.service.deliver_due().await.unwrap().claimed, 0);
    j.advance(Duration::from_secs(11));
    let report = j.service.deliver_due().await.unwrap();
    assert_eq!((report.claimed, report.sent), (1, 1));
    j.advance(HOUR);
    assert_eq!(j.service.deliver_due().await.unwrap().claimed, 0);
    assert_eq!(j.mailer.letters().len(), 1);
    let activation = j
        .service
        .confirm_email(&j.link(RESIDENT, LetterKind::ConfirmEmail))
        .await
        .unwrap();
    j.service
        .activate(activation.expose(), "12", &Journeys::context())
        .await
        .unwrap();
    assert_eq!(j.mailer.letters().len(), 2);
}

/// Confirmation links die after 24 hours, activation 24 hours after confirmation,
/// recovery links after an hour: alive a millisecond before, dead at the boundary.
pub async fn journey_links_expire<S: Store + Clone + 'static>(store: &S) {
    let j = Journeys::on(store);
    j.service
        .register(&Journeys::form(FLAT, RESIDENT), &Journeys::context())
        .await
        .unwrap();
    let confirmation = j.link(RESIDENT, LetterKind::ConfirmEmail);
    j.advance(24 * HOUR);
    assert_eq!(
        problem(j.service.confirm_email(&confirmation).await),
        Problem::InvalidLink
    );
    j.advance(MINUTE);
    let activation = j.confirmed(FLAT, RESIDENT).await;
    j.advance(24 * HOUR - Duration::from_millis(1));
    assert_eq!(
        problem(
            j.service
                .activate(activation.expose(), "1", &Journeys::context())
                .await
        ),
        Problem::WrongPremises { attempts_left: 4 },
        "alive a millisecond before"
    );
    j.advance(Duration::from_millis(1));
    assert_eq!(
        problem(
            j.service
                .activate(activation.expose(), "12", &Journeys::context())
                .await
        ),
        Problem::InvalidLink
    );
    j.advance(MINUTE);
    j.register(FLAT, RESIDENT).await;
    j.service
        .request_recovery(RESIDENT, &Journeys::context())
        .await
        .unwrap();
    let recovery = j.link(RESIDENT, LetterKind::RecoverPassword);
    j.advance(HOUR);
    assert_eq!(
        problem(
            j.service
                .complete_recovery(&recovery, &Journeys::context())
                .await
        ),
        Problem::InvalidLink
    );
}

/// Wrong premises numbers count per personal account: five lock it for the window, a new
/// registration of the same account does not start the count again, and the right
/// number after the limit answers like a locked wrong one.
pub async fn journey_premises_attempts_count_per_account<S: Store + Clone + 'static>(store: &S) {
    let j = Journeys::on(store);
    let first = j.confirmed(FLAT, RESIDENT).await;
    for left in (1..5).rev() {
        assert_eq!(
            problem(
                j.service
                    .activate(first.expose(), "13", &Journeys::context())
                    .await
            ),
            Problem::WrongPremises {
                attempts_left: left
            }
        );
    }
    assert!(matches!(
        problem(
            j.service
                .activate(first.expose(), "13", &Journeys::context())
                .await
        ),
        Problem::ActivationLocked { .. }
    ));
    j.advance(2 * MINUTE);
    let second = j.confirmed(FLAT, "attacker@example.org").await;
    for token in [&second, &first] {
        assert!(
            matches!(
                problem(
                    j.service
                        .activate(token.expose(), "12", &Journeys::context())
                        .await
                ),
                Problem::ActivationLocked { .. }
            ),
            "the right number is locked out too, on every registration of the account"
        );
    }
    j.advance(15 * MINUTE);
    j.service
        .activate(first.expose(), "12", &Journeys::context())
        .await
        .expect("after the window the right number activates");
}

/// An added account joins the cabinet; the cabinet's sessions end (its credentials are new).
pub async fn journey_added_account_joins_and_ends_sessions<S: Store + Clone + 'static>(store: &S) {
    let j = Journeys::on(store);
    let password = j.register(FLAT, RESIDENT).await;
    let token = j.login(RESIDENT, &password).await.unwrap();
    let session = j.service.authenticate(&token).await.unwrap();
    j.advance(MINUTE);
    j.service
        .add_address(
            &session,
            &AddressForm {
                surname: "Иванов".into(),
                account_number: PARKING.into(),
            },
            &Journeys::context(),
        )
        .await
        .unwrap();
    let activation = j
        .service
        .confirm_email(&j.link(RESIDENT, LetterKind::ConfirmEmail))
        .await
        .unwrap();
    j.service
        .activate(activation.expose(), "123/456П", &Journeys::context())
        .await
        .unwrap();
    assert_eq!(
        problem(j.service.authenticate(&token).await),
        Problem::SessionInvalid
    );
    assert!(
        j.login(RESIDENT, &password).await.is_err(),
        "old password dead"
    );
    let token = j.login(RESIDENT, &j.password(RESIDENT)).await.unwrap();
    let session = j.service.authenticate(&token).await.unwrap();
    assert_eq!(session.accounts, vec![account(FLAT), account(PARKING)]);
}

/// Recovery: one new password per link, the old one and every session end, and a second
/// recovery link mailed before the first was used dies with the old password.
pub async fn journey_recovery_replaces_the_password_once<S: Store + Clone + 'static>(store: &S) {
    let j = Journeys::on(store);
    let old = j.register(FLAT, RESIDENT).await;
    let token = j.login(RESIDENT, &old).await.unwrap();
    j.service
        .request_recovery(RESIDENT, &Journeys::context())
        .await
        .unwrap();
    let first = j.link(RESIDENT, LetterKind::RecoverPassword);
    j.advance(MINUTE);
    j.service
        .request_recovery(RESIDENT, &Journeys::context())
        .await
        .unwrap();
    let second = j.link(RESIDENT, LetterKind::RecoverPassword);
    j.service
        .complete_recovery(&first, &Journeys::context())
        .await
        .unwrap();
    let new = j.password(RESIDENT);
    for link in [&first, &second] {
        assert_eq!(
            problem(
                j.service
                    .complete_recovery(link, &Journeys::context())
                    .await
            ),
            Problem::InvalidLink
        );
    }
    assert_eq!(
        problem(j.service.authenticate(&token).await),
        Problem::SessionInvalid
    );
    assert_eq!(
        problem(j.login(RESIDENT, &old).await),
        Problem::InvalidCredentials
    );
    j.login(RESIDENT, &new).await.unwrap();
    assert_eq!(j.letters(LetterKind::Credentials), 2);
}

/// Sessions: alive a millisecond before idle expiry, dead at it; absolute expiry however
/// busy; account switching; logout.
pub async fn journey_sessions_expire_and_switch_accounts<S: Store + Clone + 'static>(store: &S) {
    let j = Journeys::on(store);
    let password = j.register(FLAT, RESIDENT).await;
    let token = j.login(RESIDENT, &password).await.unwrap();
    j.advance(30 * MINUTE - Duration::from_millis(1));
    let session = j.service.authenticate(&token).await.unwrap();
    assert_eq!(
        problem(j.service.select_account(&session, PARKING).await),
        Problem::AccountNotLinked
    );
    j.service.select_account(&session, FLAT).await.unwrap();
    j.advance(30 * MINUTE - Duration::from_millis(1));
    j.service
        .authenticate(&token)
        .await
        .expect("touched, so alive");
    j.advance(30 * MINUTE);
    assert_eq!(
        problem(j.service.authenticate(&token).await),
        Problem::SessionInvalid,
        "dead at idle expiry"
    );

    let token = j.login(RESIDENT, &password).await.unwrap();
    for _ in 0..24 {
        j.advance(29 * MINUTE);
        j.service.authenticate(&token).await.unwrap();
    }
    j.advance(12 * HOUR - 24 * 29 * MINUTE);
    assert_eq!(
        problem(j.service.authenticate(&token).await),
        Problem::SessionInvalid,
        "dead at absolute expiry"
    );

    let token = j.login(RESIDENT, &password).await.unwrap();
    j.service.logout(&token).await.unwrap();
    assert_eq!(
        problem(j.service.authenticate(&token).await),
        Problem::SessionInvalid
    );
}

/// Logins per cabinet: five tries in the window, the sixth refused without argon2 until
/// the window ends; a success clears the count.
pub async fn journey_login_throttle_counts_and_clears<S: Store + Clone + 'static>(store: &S) {
    let j = Journeys::on(store);
    let password = j.register(FLAT, RESIDENT).await;
    let wrong = SecretString::from("wrong password".to_owned());
    for _ in 0..4 {
        assert_eq!(
            problem(j.login(RESIDENT, &wrong).await),
            Problem::InvalidCredentials
        );
    }
    j.login(RESIDENT, &password)
        .await
        .expect("the fifth try, right");
    for _ in 0..5 {
        assert_eq!(
            problem(j.login(RESIDENT, &wrong).await),
            Problem::InvalidCredentials,
            "the success cleared the count: five more tries"
        );
    }
    assert!(matches!(
        problem(j.login(RESIDENT, &password).await),
        Problem::LoginThrottled { retry_after } if retry_after <= 15 * MINUTE
    ));
    j.advance(15 * MINUTE);
    j.login(RESIDENT, &password)
        .await
        .expect("after the window");
}

/// Ten activations of one link at once, all with the right premises: one cabinet, one
/// password, and it is the mailed one; the others are told to wait, that the link is
/// used, or (beyond the five tries an account has) that activation is locked.
pub async fn journey_concurrent_activations_issue_credentials_once<S: Store + Clone + 'static>(
    store: &S,
) {
    let j = Journeys::on(store);
    let activation = j.confirmed(FLAT, RESIDENT).await;
    let context = Journeys::context();
    let results =
        join_all((0..10).map(|_| j.service.activate(activation.expose(), "12", &context))).await;
    let mut wins = 0;
    for result in results {
        match result {
            Ok(to) => {
                assert_eq!(to, email(RESIDENT));
                wins += 1;
            }
            Err(Error::Rejected(problems)) => assert!(
                matches!(
                    problems.as_slice(),
                    [Problem::InvalidLink
                        | Problem::TooManyRequests { .. }
                        | Problem::ActivationLocked { .. }]
                ),
                "{problems:?}"
            ),
            Err(other) => panic!("a loser got {other:?}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(j.letters(LetterKind::Credentials), 1);
    j.login(RESIDENT, &j.password(RESIDENT))
        .await
        .expect("the mailed password is the one in force");
}

/// Ten confirmations of one link at once: one activation link comes out.
pub async fn journey_concurrent_confirmations_consume_a_link_once<S: Store + Clone + 'static>(
    store: &S,
) {
    let j = Journeys::on(store);
    j.service
        .register(&Journeys::form(FLAT, RESIDENT), &Journeys::context())
        .await
        .unwrap();
    let confirmation = j.link(RESIDENT, LetterKind::ConfirmEmail);
    let results = join_all((0..10).map(|_| j.service.confirm_email(&confirmation))).await;
    let mut wins = 0;
    for result in results {
        match result {
            Ok(_) => wins += 1,
            Err(error) => assert_eq!(problem(Err::<(), _>(error)), Problem::InvalidLink),
        }
    }
    assert_eq!(wins, 1);
}

/// A session opened with a password verified just before a recovery committed new
/// credentials does not authenticate.
pub async fn journey_login_racing_a_reissue_keeps_no_session<S: Store + Clone + 'static>(
    store: &S,
) {
    let j = Journeys::on(store);
    let old = j.register(FLAT, RESIDENT).await;
    let before = store
        .cabinet(CabinetKey::Email(&email(RESIDENT)))
        .await
        .unwrap()
        .expect("cabinet");
    j.service
        .request_recovery(RESIDENT, &Journeys::context())
        .await
        .unwrap();
    let link = j.link(RESIDENT, LetterKind::RecoverPassword);
    j.service
        .complete_recovery(&link, &Journeys::context())
        .await
        .unwrap();
    // What a login that verified `old` before the recovery committed writes after it.
    let late = Token::generate();
    let record = session(&before.value, j.clock_now());
    store
        .swap_session(&late.hash(), Expected::Absent, Some(&record))
        .await
        .unwrap();
    assert_eq!(
        problem(j.service.authenticate(late.expose()).await),
        Problem::SessionInvalid
    );
    assert_eq!(
        problem(j.login(RESIDENT, &old).await),
        Problem::InvalidCredentials
    );
}

/// The service's purge keeps live sessions and links and drops dead ones.
pub async fn journey_purge_keeps_the_living<S: Store + Clone + 'static>(store: &S) {
    let j = Journeys::on(store);
    let password = j.register(FLAT, RESIDENT).await;
    let dead = j.login(RESIDENT, &password).await.unwrap();
    j.advance(20 * MINUTE);
    let live = j.login(RESIDENT, &password).await.unwrap();
    j.advance(10 * MINUTE);
    assert!(j.service.purge_expired().await.unwrap() >= 1);
    assert_eq!(
        problem(j.service.authenticate(&dead).await),
        Problem::SessionInvalid
    );
    j.service.authenticate(&live).await.expect("alive");
}

impl Journeys {
    fn clock_now(&self) -> Timestamp {
        use crate::Clock as _;
        self.clock.now()
    }
}

/// A session check writes the last use only when the stored one is a minute old or more,
/// so a busy resident's requests are reads; and a lagging clock never moves it backwards.
pub async fn journey_session_checks_are_reads_within_a_minute<S: Store + Clone + 'static>(
    store: &S,
) {
    let j = Journeys::on(store);
    let password = j.register(FLAT, RESIDENT).await;
    let token = j.login(RESIDENT, &password).await.unwrap();
    let hash = Token::from_user(&token).expect("a token").hash();
    let stored = || async { store.session(&hash).await.unwrap().expect("the session") };
    let opened = stored().await;
    for _ in 0..5 {
        j.advance(Duration::from_secs(11));
        j.service.authenticate(&token).await.unwrap();
    }
    assert_eq!(
        stored().await,
        opened,
        "five checks within a minute wrote nothing"
    );
    j.advance(Duration::from_secs(5));
    j.service.authenticate(&token).await.unwrap();
    let touched = stored().await;
    assert_eq!(
        touched.version,
        opened.version.next(),
        "a minute on: one write"
    );
    assert_eq!(
        touched.value.last_used,
        opened.value.created_at.plus(MINUTE)
    );
    assert_eq!(
        touched.value.expires_at,
        touched.value.last_used.plus(30 * MINUTE),
        "the purge horizon follows the last use"
    );
    // An instance whose clock runs ten minutes ahead wrote a later last use; this one,
    // two minutes on by its own clock, must not move it back.
    let ahead = Session {
        last_used: touched.value.last_used.plus(10 * MINUTE),
        ..touched.value.clone()
    };
    store
        .swap_session(&hash, Expected::Version(touched.version), Some(&ahead))
        .await
        .unwrap();
    j.advance(2 * MINUTE);
    j.service.authenticate(&token).await.unwrap();
    assert_eq!(
        stored().await.value.last_used,
        ahead.last_used,
        "the last use never moves backwards"
    );
}

fn secret(text: &str) -> SecretString {
    SecretString::from(text.to_owned())
}

const CHOSEN: &str = "тихий вечер у старой реки";

/// Changing the password: the new one is checked, the current one verified; success keeps
/// the asking session, ends every other one and every recovery link, makes the old
/// password useless, and mails the notice.
pub async fn journey_password_change_keeps_only_this_session<S: Store + Clone + 'static>(
    store: &S,
) {
    let j = Journeys::on(store);
    let password = j.register(FLAT, RESIDENT).await;
    let this = j.login(RESIDENT, &password).await.unwrap();
    let other = j.login(RESIDENT, &password).await.unwrap();
    j.service
        .request_recovery(RESIDENT, &Journeys::context())
        .await
        .unwrap();
    let recovery = j.link(RESIDENT, LetterKind::RecoverPassword);
    let session = j.service.authenticate(&this).await.unwrap();
    let context = Journeys::context();
    let change = |current: &SecretString, new: &str| {
        j.service
            .change_password(&session, current.clone(), secret(new), &context)
    };
    assert_eq!(
        problem(change(&password, "too short").await),
        Problem::NewPassword(crate::NewPasswordError::TooShort)
    );
    assert_eq!(
        problem(change(&secret("not the password at all"), CHOSEN).await),
        Problem::CurrentPasswordWrong
    );
    assert_eq!(j.letters(LetterKind::PasswordChanged), 0);
    change(&password, CHOSEN).await.unwrap();

    let kept = j
        .service
        .authenticate(&this)
        .await
        .expect("this session lives on");
    assert!(!kept.password_change_required);
    assert_eq!(
        problem(j.service.authenticate(&other).await),
        Problem::SessionInvalid,
        "every other session ended"
    );
    assert_eq!(
        problem(j.login(RESIDENT, &password).await),
        Problem::InvalidCredentials
    );
    j.login(RESIDENT, &secret(CHOSEN))
        .await
        .expect("the new password works");
    assert_eq!(
        problem(
            j.service
                .complete_recovery(&recovery, &Journeys::context())
                .await
        ),
        Problem::InvalidLink,
        "a recovery link issued before the change is dead"
    );
    assert_eq!(j.letters(LetterKind::PasswordChanged), 1);
    assert_eq!(
        problem(change(&password, "another long passphrase here").await),
        Problem::SessionInvalid,
        "the handle read before the change is stale"
    );
}

/// The list of sessions: the cabinet's live ones, the asking one first and marked; one
/// ended by its identity, then all the others; an unknown or foreign identity is not found.
pub async fn journey_sessions_listed_and_ended_by_id<S: Store + Clone + 'static>(store: &S) {
    let j = Journeys::on(store);
    let password = j.register(FLAT, RESIDENT).await;
    let neighbour_password = j.register(PARKING, "neighbour@example.org").await;
    let neighbour = j
        .login("neighbour@example.org", &neighbour_password)
        .await
        .unwrap();
    let neighbour_id = j
        .service
        .authenticate(&neighbour)
        .await
        .unwrap()
        .session_id();
    let first = j.login(RESIDENT, &password).await.unwrap();
    j.advance(MINUTE);
    let second = j.login(RESIDENT, &password).await.unwrap();
    j.advance(MINUTE);
    let third = j.login(RESIDENT, &password).await.unwrap();
    let stale = j.login(RESIDENT, &password).await.unwrap();
    j.service.logout(&stale).await.unwrap();

    let me = j.service.authenticate(&first).await.unwrap();
    let listed = j.service.sessions(&me).await.unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed[0].current);
    assert_eq!(listed[0].id, me.session_id());
    assert_eq!(listed.iter().filter(|s| s.current).count(), 1);
    let second_id = j.service.authenticate(&second).await.unwrap().session_id();
    assert!(listed.iter().any(|s| s.id == second_id));

    j.service
        .end_session(&me, &second_id.to_string())
        .await
        .unwrap();
    assert_eq!(
        problem(j.service.authenticate(&second).await),
        Problem::SessionInvalid
    );
    assert_eq!(
        problem(j.service.end_session(&me, &second_id.to_string()).await),
        Problem::SessionNotFound,
        "ended already"
    );
    for foreign in [neighbour_id.to_string(), "not-an-id".to_owned()] {
        assert_eq!(
            problem(j.service.end_session(&me, &foreign).await),
            Problem::SessionNotFound
        );
    }
    j.service.authenticate(&neighbour).await.expect("untouched");

    assert_eq!(j.service.end_other_sessions(&me).await.unwrap(), 1);
    assert_eq!(
        problem(j.service.authenticate(&third).await),
        Problem::SessionInvalid
    );
    let me = j
        .service
        .authenticate(&first)
        .await
        .expect("the asking session stays");
    assert_eq!(j.service.sessions(&me).await.unwrap().len(), 1);
    j.service
        .end_session(&me, &me.session_id().to_string())
        .await
        .unwrap();
    assert_eq!(
        problem(j.service.authenticate(&first).await),
        Problem::SessionInvalid,
        "ending the current session is a logout"
    );
}

/// Temporary mailed passwords (when configured): the first login must choose a password
/// before the cabinet opens; an unchanged one stops working when its time is over, at login
/// and for a password change from a session opened before.
pub async fn journey_temporary_password_must_be_changed<S: Store + Clone + 'static>(store: &S) {
    let j = Journeys::configured(store, |config| {
        config.mailed_password_lifetime = Some(24 * HOUR);
    });
    let password = j.register(FLAT, RESIDENT).await;
    let logged_in = j
        .service
        .login(RESIDENT, password.clone(), &Journeys::context())
        .await
        .unwrap();
    assert!(logged_in.password_change_required);
    let token = logged_in.session_token.expose().to_owned();
    let session = j.service.authenticate(&token).await.unwrap();
    assert!(session.password_change_required);
    assert_eq!(
        problem(j.service.cabinet(&session).await),
        Problem::PasswordChangeRequired
    );
    assert_eq!(
        problem(j.service.select_account(&session, FLAT).await),
        Problem::PasswordChangeRequired
    );
    assert_eq!(j.service.sessions(&session).await.unwrap().len(), 1);
    j.service
        .change_password(&session, password, secret(CHOSEN), &Journeys::context())
        .await
        .unwrap();
    let session = j.service.authenticate(&token).await.unwrap();
    assert!(!session.password_change_required);
    j.service.cabinet(&session).await.expect("open now");
    j.advance(48 * HOUR);
    j.login(RESIDENT, &secret(CHOSEN))
        .await
        .expect("a chosen password does not expire");

    let neighbour = "neighbour@example.org";
    let temporary = j.register(PARKING, neighbour).await;
    j.advance(24 * HOUR - Duration::from_millis(1));
    let earlier = j
        .login(neighbour, &temporary)
        .await
        .expect("alive to the last millisecond");
    let earlier = j.service.authenticate(&earlier).await.unwrap();
    j.advance(Duration::from_millis(1));
    assert_eq!(
        problem(j.login(neighbour, &temporary).await),
        Problem::PasswordExpired
    );
    // A session opened before the mailed password expired cannot use it either.
    assert_eq!(
        problem(
            j.service
                .change_password(&earlier, temporary, secret(CHOSEN), &Journeys::context())
                .await
        ),
        Problem::PasswordExpired
    );
}
