//! The store conformance suite: every [`Store`] implementation must pass it unchanged.
//!
//! Each rule is a plain `async fn` taking a fresh, empty store; the
//! [`store_conformance_tests!`](crate::store_conformance_tests) macro turns all of them into
//! `#[tokio::test]`s with one line:
//!
//! ```ignore
//! resident_auth::store_conformance_tests!(async { MyStore::connect_fresh().await });
//! ```
//!
//! Rules panic (assert) on a violation, like any test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::time::Duration;

use futures::future::join_all;

use crate::{
    clock::Timestamp,
    ports::{
        AttemptPolicy, BeginRegistration, CommitOutcome, FailedAttempt, Grant, NewRecovery,
        NewRegistration, NewSession, RegistrationKind, RegistrationStage, SelectAccount,
        SessionExpiry, StageOutcome, Store, ThrottleDecision, ThrottleKey, ThrottlePolicy,
    },
    secret::{PasswordHash, Token, TokenHash},
    AccountNumber, Email,
};

/// Generates one `#[tokio::test]` per conformance rule. `$store` is an expression that
/// evaluates to a future of a fresh, empty store (it runs once per test).
#[macro_export]
macro_rules! store_conformance_tests {
    ($store:expr) => {
        $crate::store_conformance_tests!(@rules $store;
            registration_confirmation_activation,
            registration_resend_interval_and_replacement,
            abandoned_registration_can_restart_at_once,
            tokens_expire,
            failed_activations_count_and_lock,
            staging_is_exclusive_and_commit_needs_the_staged_hash,
            added_account_joins_the_cabinet_and_ends_its_sessions,
            recovery_replaces_the_password_once,
            sessions_expire_and_switch_accounts,
            throttles_count_lock_and_reset,
            password_hash_upgrade_is_compare_and_swap,
            concurrent_confirmations_consume_a_token_once,
            concurrent_registrations_let_one_win,
            concurrent_commits_issue_credentials_once,
            purging_removes_only_what_is_dead
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

fn hash(label: &str) -> PasswordHash {
    PasswordHash::from_phc(format!("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ${label}"))
}

fn token() -> TokenHash {
    Token::generate().hash()
}

fn new_registration(
    email: &Email,
    account: AccountNumber,
    kind: RegistrationKind,
    confirmation: TokenHash,
    now: Timestamp,
) -> NewRegistration {
    NewRegistration {
        email: email.clone(),
        account_number: account,
        kind,
        confirmation,
        expires_at: now.plus(24 * HOUR),
        resend_interval: MINUTE,
    }
}

const ATTEMPTS: AttemptPolicy = AttemptPolicy {
    max_attempts: 3,
    lockout: Duration::from_secs(15 * 60),
};

const EXPIRY: SessionExpiry = SessionExpiry {
    idle: Duration::from_secs(30 * 60),
    absolute: Duration::from_secs(12 * 3600),
};

/// Takes a registration all the way to a cabinet; returns the activation grant's token.
async fn create_cabinet<S: Store + ?Sized>(
    store: &S,
    email: &Email,
    account: AccountNumber,
    password: &PasswordHash,
    now: Timestamp,
) {
    let confirmation = token();
    let activation = token();
    let begun = store
        .begin_registration(
            &new_registration(
                email,
                account,
                RegistrationKind::NewCabinet,
                confirmation,
                now,
            ),
            now,
        )
        .await
        .expect("begin_registration");
    assert_eq!(begun, BeginRegistration::Started);
    let pending = store
        .confirm_email(&confirmation, &activation, now.plus(HOUR), now)
        .await
        .expect("confirm_email");
    assert!(pending.is_some());
    let grant = Grant::Activation(activation);
    let staged = store
        .stage_credentials(&grant, password, now, MINUTE)
        .await
        .expect("stage");
    assert_eq!(
        staged,
        StageOutcome::Staged {
            email: email.clone()
        }
    );
    let committed = store
        .commit_credentials(&grant, password, now)
        .await
        .expect("commit");
    assert_eq!(
        committed,
        CommitOutcome::Committed {
            email: email.clone()
        }
    );
}

async fn open<S: Store + ?Sized>(store: &S, email: &Email, now: Timestamp) -> TokenHash {
    let session = token();
    let opened = store
        .open_session(
            &NewSession {
                token: session,
                email: email.clone(),
                created_at: now,
            },
            &[],
        )
        .await
        .expect("open_session");
    assert!(
        opened.is_some(),
        "open_session found no cabinet for {email}"
    );
    session
}

/// Journeys 1–3 at the store: a pending registration is confirmed once, activated, and
/// becomes a cabinet; the account and the email are then registered.
pub async fn registration_confirmation_activation<S: Store + ?Sized>(store: &S) {
    let now = t0();
    let resident = email("resident@example.org");
    let number = account("7800000000001");
    let confirmation = token();
    let registration = new_registration(
        &resident,
        number,
        RegistrationKind::NewCabinet,
        confirmation,
        now,
    );
    assert_eq!(
        store.begin_registration(&registration, now).await.unwrap(),
        BeginRegistration::Started
    );

    let activation = token();
    assert_eq!(
        store
            .confirm_email(&token(), &activation, now.plus(HOUR), now)
            .await
            .unwrap(),
        None
    );
    let pending = store
        .confirm_email(&confirmation, &activation, now.plus(HOUR), now)
        .await
        .unwrap()
        .expect("a live confirmation token confirms");
    assert_eq!(pending.email, resident);
    assert_eq!(pending.account_number, number);
    assert_eq!(pending.stage, RegistrationStage::AwaitingActivation);
    assert_eq!(pending.expires_at, now.plus(HOUR));
    assert_eq!(
        store
            .confirm_email(&confirmation, &token(), now.plus(HOUR), now)
            .await
            .unwrap(),
        None,
        "a confirmation token works once"
    );
    assert_eq!(
        store.pending_activation(&confirmation, now).await.unwrap(),
        None
    );
    let awaiting = store
        .pending_activation(&activation, now)
        .await
        .unwrap()
        .expect("awaiting activation");
    assert_eq!((awaiting.failed_attempts, awaiting.locked_until), (0, None));
    assert_eq!(
        store.password_hash(&resident).await.unwrap(),
        None,
        "no cabinet before activation"
    );

    let password = hash("first");
    let grant = Grant::Activation(activation);
    assert_eq!(
        store
            .stage_credentials(&grant, &password, now, MINUTE)
            .await
            .unwrap(),
        StageOutcome::Staged {
            email: resident.clone()
        }
    );
    assert_eq!(
        store.password_hash(&resident).await.unwrap(),
        None,
        "staged is not effective"
    );
    assert_eq!(
        store
            .commit_credentials(&grant, &password, now)
            .await
            .unwrap(),
        CommitOutcome::Committed {
            email: resident.clone()
        }
    );
    assert_eq!(
        store.password_hash(&resident).await.unwrap(),
        Some(password.clone())
    );
    assert_eq!(
        store.pending_activation(&activation, now).await.unwrap(),
        None,
        "activation consumed"
    );
    assert_eq!(
        store
            .commit_credentials(&grant, &password, now)
            .await
            .unwrap(),
        CommitOutcome::Gone
    );

    let session = open(store, &resident, now).await;
    let state = store
        .session(&session, now, &EXPIRY)
        .await
        .unwrap()
        .expect("live session");
    assert_eq!(state.accounts, vec![number]);
    assert_eq!(state.active_account, Some(number));

    let again = new_registration(
        &resident,
        account("7800000000002"),
        RegistrationKind::NewCabinet,
        token(),
        now.plus(HOUR),
    );
    assert_eq!(
        store
            .begin_registration(&again, now.plus(HOUR))
            .await
            .unwrap(),
        BeginRegistration::AlreadyRegistered,
        "the email has a cabinet"
    );
    let other = new_registration(
        &email("other@example.org"),
        number,
        RegistrationKind::NewCabinet,
        token(),
        now.plus(HOUR),
    );
    assert_eq!(
        store
            .begin_registration(&other, now.plus(HOUR))
            .await
            .unwrap(),
        BeginRegistration::AlreadyRegistered,
        "the account is linked"
    );
    let add_linked = new_registration(
        &resident,
        number,
        RegistrationKind::AddAccount,
        token(),
        now.plus(HOUR),
    );
    assert_eq!(
        store
            .begin_registration(&add_linked, now.plus(HOUR))
            .await
            .unwrap(),
        BeginRegistration::AlreadyRegistered,
        "an account cannot be added twice"
    );
}

/// Registering again within the resend interval is throttled; after it, the new
/// registration replaces the old one, whose link dies.
pub async fn registration_resend_interval_and_replacement<S: Store + ?Sized>(store: &S) {
    let now = t0();
    let resident = email("resident@example.org");
    let number = account("7800000000001");
    let first = token();
    store
        .begin_registration(
            &new_registration(&resident, number, RegistrationKind::NewCabinet, first, now),
            now,
        )
        .await
        .unwrap();
    let soon = now.plus(Duration::from_secs(10));
    let second = token();
    assert_eq!(
        store
            .begin_registration(
                &new_registration(
                    &resident,
                    number,
                    RegistrationKind::NewCabinet,
                    second,
                    soon
                ),
                soon
            )
            .await
            .unwrap(),
        BeginRegistration::Throttled {
            retry_at: now.plus(MINUTE)
        }
    );
    // Same account, another email: also held back by the same letter stamp.
    assert!(matches!(
        store
            .begin_registration(
                &new_registration(
                    &email("typo@example.org"),
                    number,
                    RegistrationKind::NewCabinet,
                    token(),
                    soon
                ),
                soon
            )
            .await
            .unwrap(),
        BeginRegistration::Throttled { .. }
    ));
    let later = now.plus(2 * MINUTE);
    assert_eq!(
        store
            .begin_registration(
                &new_registration(
                    &resident,
                    number,
                    RegistrationKind::NewCabinet,
                    second,
                    later
                ),
                later
            )
            .await
            .unwrap(),
        BeginRegistration::Started
    );
    assert_eq!(
        store
            .confirm_email(&first, &token(), later.plus(HOUR), later)
            .await
            .unwrap(),
        None,
        "the replaced link no longer works"
    );
    // The same email with another account replaces the pending new-cabinet registration.
    let much_later = later.plus(2 * MINUTE);
    let third = token();
    let other_number = account("7800000000002");
    assert_eq!(
        store
            .begin_registration(
                &new_registration(
                    &resident,
                    other_number,
                    RegistrationKind::NewCabinet,
                    third,
                    much_later
                ),
                much_later
            )
            .await
            .unwrap(),
        BeginRegistration::Started
    );
    assert_eq!(
        store
            .confirm_email(&second, &token(), much_later.plus(HOUR), much_later)
            .await
            .unwrap(),
        None
    );
    let pending = store
        .confirm_email(&third, &token(), much_later.plus(HOUR), much_later)
        .await
        .unwrap()
        .expect("the newest registration confirms");
    assert_eq!(pending.account_number, other_number);
}

/// A registration whose letter failed is dropped and can start again at once.
pub async fn abandoned_registration_can_restart_at_once<S: Store + ?Sized>(store: &S) {
    let now = t0();
    let resident = email("resident@example.org");
    let number = account("7800000000001");
    let first = token();
    store
        .begin_registration(
            &new_registration(&resident, number, RegistrationKind::NewCabinet, first, now),
            now,
        )
        .await
        .unwrap();
    store.abandon_registration(&first).await.unwrap();
    assert_eq!(
        store
            .confirm_email(&first, &token(), now.plus(HOUR), now)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .begin_registration(
                &new_registration(
                    &resident,
                    number,
                    RegistrationKind::NewCabinet,
                    token(),
                    now
                ),
                now
            )
            .await
            .unwrap(),
        BeginRegistration::Started
    );
    store.abandon_registration(&token()).await.unwrap();
}

/// Confirmation, activation and recovery tokens stop working when they expire.
pub async fn tokens_expire<S: Store + ?Sized>(store: &S) {
    let now = t0();
    let resident = email("resident@example.org");
    let confirmation = token();
    let mut registration = new_registration(
        &resident,
        account("7800000000001"),
        RegistrationKind::NewCabinet,
        confirmation,
        now,
    );
    registration.expires_at = now.plus(HOUR);
    store.begin_registration(&registration, now).await.unwrap();
    assert_eq!(
        store
            .confirm_email(&confirmation, &token(), now.plus(2 * HOUR), now.plus(HOUR))
            .await
            .unwrap(),
        None
    );

    let second = account("7800000000002");
    let confirmation = token();
    let activation = token();
    let other = email("other@example.org");
    store
        .begin_registration(
            &new_registration(
                &other,
                second,
                RegistrationKind::NewCabinet,
                confirmation,
                now,
            ),
            now,
        )
        .await
        .unwrap();
    store
        .confirm_email(&confirmation, &activation, now.plus(HOUR), now)
        .await
        .unwrap()
        .expect("confirms");
    assert!(store
        .pending_activation(&activation, now.plus(59 * MINUTE))
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store
            .pending_activation(&activation, now.plus(HOUR))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .stage_credentials(
                &Grant::Activation(activation),
                &hash("x"),
                now.plus(HOUR),
                MINUTE
            )
            .await
            .unwrap(),
        StageOutcome::Gone
    );

    let later = now.plus(2 * HOUR);
    create_cabinet(
        store,
        &resident,
        account("7800000000003"),
        &hash("p"),
        later,
    )
    .await;
    let recovery = token();
    assert!(store
        .begin_recovery(
            &NewRecovery {
                email: resident.clone(),
                token: recovery,
                expires_at: later.plus(HOUR)
            },
            later
        )
        .await
        .unwrap());
    assert_eq!(
        store
            .stage_credentials(
                &Grant::Recovery(recovery),
                &hash("r"),
                later.plus(HOUR),
                MINUTE
            )
            .await
            .unwrap(),
        StageOutcome::Gone
    );
}

/// Wrong premises numbers count down, lock at the maximum, block staging while locked,
/// and start afresh after the lock.
pub async fn failed_activations_count_and_lock<S: Store + ?Sized>(store: &S) {
    let now = t0();
    let confirmation = token();
    let activation = token();
    store
        .begin_registration(
            &new_registration(
                &email("resident@example.org"),
                account("7800000000001"),
                RegistrationKind::NewCabinet,
                confirmation,
                now,
            ),
            now,
        )
        .await
        .unwrap();
    store
        .confirm_email(&confirmation, &activation, now.plus(24 * HOUR), now)
        .await
        .unwrap();
    assert_eq!(
        store
            .record_failed_activation(&token(), now, &ATTEMPTS)
            .await
            .unwrap(),
        None
    );
    let first = store
        .record_failed_activation(&activation, now, &ATTEMPTS)
        .await
        .unwrap();
    assert_eq!(
        first,
        Some(FailedAttempt {
            attempts_left: 2,
            locked_until: None
        })
    );
    let second = store
        .record_failed_activation(&activation, now, &ATTEMPTS)
        .await
        .unwrap();
    assert_eq!(
        second,
        Some(FailedAttempt {
            attempts_left: 1,
            locked_until: None
        })
    );
    let until = now.plus(ATTEMPTS.lockout);
    let third = store
        .record_failed_activation(&activation, now, &ATTEMPTS)
        .await
        .unwrap();
    assert_eq!(
        third,
        Some(FailedAttempt {
            attempts_left: 0,
            locked_until: Some(until)
        })
    );
    let pending = store
        .pending_activation(&activation, now)
        .await
        .unwrap()
        .expect("still pending");
    assert_eq!(pending.locked_until, Some(until));
    assert_eq!(
        store
            .stage_credentials(&Grant::Activation(activation), &hash("x"), now, MINUTE)
            .await
            .unwrap(),
        StageOutcome::Gone,
        "a locked registration cannot be activated"
    );
    let during = store
        .record_failed_activation(&activation, now.plus(MINUTE), &ATTEMPTS)
        .await
        .unwrap();
    assert_eq!(
        during,
        Some(FailedAttempt {
            attempts_left: 0,
            locked_until: Some(until)
        })
    );
    let after = store
        .record_failed_activation(&activation, until, &ATTEMPTS)
        .await
        .unwrap();
    assert_eq!(
        after,
        Some(FailedAttempt {
            attempts_left: 2,
            locked_until: None
        }),
        "a fresh count after the lock"
    );
    assert!(matches!(
        store
            .stage_credentials(&Grant::Activation(activation), &hash("x"), until, MINUTE)
            .await
            .unwrap(),
        StageOutcome::Staged { .. }
    ));
}

/// Only one stage lives at a time; only the staged hash commits; a dropped stage frees
/// the grant.
pub async fn staging_is_exclusive_and_commit_needs_the_staged_hash<S: Store + ?Sized>(store: &S) {
    let now = t0();
    let confirmation = token();
    let activation = token();
    let resident = email("resident@example.org");
    store
        .begin_registration(
            &new_registration(
                &resident,
                account("7800000000001"),
                RegistrationKind::NewCabinet,
                confirmation,
                now,
            ),
            now,
        )
        .await
        .unwrap();
    store
        .confirm_email(&confirmation, &activation, now.plus(HOUR), now)
        .await
        .unwrap();
    let grant = Grant::Activation(activation);
    let (a, b) = (hash("a"), hash("b"));
    assert!(matches!(
        store
            .stage_credentials(&grant, &a, now, MINUTE)
            .await
            .unwrap(),
        StageOutcome::Staged { .. }
    ));
    assert_eq!(
        store
            .stage_credentials(&grant, &b, now.plus(Duration::from_secs(5)), MINUTE)
            .await
            .unwrap(),
        StageOutcome::Busy {
            retry_at: now.plus(MINUTE)
        }
    );
    assert_eq!(
        store.commit_credentials(&grant, &b, now).await.unwrap(),
        CommitOutcome::Gone
    );
    store.unstage_credentials(&grant, &b).await.unwrap();
    assert!(
        matches!(
            store
                .stage_credentials(&grant, &b, now, MINUTE)
                .await
                .unwrap(),
            StageOutcome::Busy { .. }
        ),
        "unstaging another hash leaves the stage alone"
    );
    store.unstage_credentials(&grant, &a).await.unwrap();
    assert!(matches!(
        store
            .stage_credentials(&grant, &b, now, MINUTE)
            .await
            .unwrap(),
        StageOutcome::Staged { .. }
    ));
    assert_eq!(
        store.commit_credentials(&grant, &a, now).await.unwrap(),
        CommitOutcome::Gone
    );
    assert_eq!(
        store.commit_credentials(&grant, &b, now).await.unwrap(),
        CommitOutcome::Committed {
            email: resident.clone()
        }
    );
    assert_eq!(store.password_hash(&resident).await.unwrap(), Some(b));
    // An expired lease may be taken over.
    let confirmation = token();
    let activation = token();
    let other = email("other@example.org");
    store
        .begin_registration(
            &new_registration(
                &other,
                account("7800000000002"),
                RegistrationKind::NewCabinet,
                confirmation,
                now,
            ),
            now,
        )
        .await
        .unwrap();
    store
        .confirm_email(&confirmation, &activation, now.plus(HOUR), now)
        .await
        .unwrap();
    let grant = Grant::Activation(activation);
    store
        .stage_credentials(&grant, &hash("c"), now, MINUTE)
        .await
        .unwrap();
    assert!(matches!(
        store
            .stage_credentials(&grant, &hash("d"), now.plus(MINUTE), MINUTE)
            .await
            .unwrap(),
        StageOutcome::Staged { .. }
    ));
    assert_eq!(
        store
            .commit_credentials(&grant, &hash("c"), now)
            .await
            .unwrap(),
        CommitOutcome::Gone
    );
}

/// Journey 7 at the store: an added account joins the cabinet, the new password replaces
/// the old, and every session of the cabinet ends.
pub async fn added_account_joins_the_cabinet_and_ends_its_sessions<S: Store + ?Sized>(store: &S) {
    let now = t0();
    let resident = email("resident@example.org");
    let first = account("7800000000001");
    let second = account("7800000000002");
    create_cabinet(store, &resident, first, &hash("old"), now).await;
    let session = open(store, &resident, now).await;
    let bystander = email("bystander@example.org");
    create_cabinet(
        store,
        &bystander,
        account("7800000000009"),
        &hash("by"),
        now,
    )
    .await;
    let bystander_session = open(store, &bystander, now).await;

    let confirmation = token();
    let activation = token();
    assert_eq!(
        store
            .begin_registration(
                &new_registration(
                    &resident,
                    second,
                    RegistrationKind::AddAccount,
                    confirmation,
                    now
                ),
                now
            )
            .await
            .unwrap(),
        BeginRegistration::Started
    );
    let pending = store
        .confirm_email(&confirmation, &activation, now.plus(HOUR), now)
        .await
        .unwrap()
        .expect("confirms");
    assert_eq!(pending.kind, RegistrationKind::AddAccount);
    let grant = Grant::Activation(activation);
    let new = hash("new");
    store
        .stage_credentials(&grant, &new, now, MINUTE)
        .await
        .unwrap();
    assert!(
        store
            .session(&session, now, &EXPIRY)
            .await
            .unwrap()
            .is_some(),
        "staging ends nothing"
    );
    assert_eq!(
        store.commit_credentials(&grant, &new, now).await.unwrap(),
        CommitOutcome::Committed {
            email: resident.clone()
        }
    );
    assert_eq!(
        store.session(&session, now, &EXPIRY).await.unwrap(),
        None,
        "sessions end with new credentials"
    );
    assert!(
        store
            .session(&bystander_session, now, &EXPIRY)
            .await
            .unwrap()
            .is_some(),
        "other cabinets keep theirs"
    );
    assert_eq!(store.password_hash(&resident).await.unwrap(), Some(new));
    let session = open(store, &resident, now).await;
    let state = store
        .session(&session, now, &EXPIRY)
        .await
        .unwrap()
        .expect("live");
    assert_eq!(
        state.accounts,
        vec![first, second],
        "accounts in the order they were linked"
    );
    assert_eq!(state.active_account, Some(first));
}

/// Journey 6 at the store: a recovery token for an unknown email is refused; a newer
/// token replaces the older; commit replaces the password once and ends sessions.
pub async fn recovery_replaces_the_password_once<S: Store + ?Sized>(store: &S) {
    let now = t0();
    let resident = email("resident@example.org");
    assert!(!store
        .begin_recovery(
            &NewRecovery {
                email: resident.clone(),
                token: token(),
                expires_at: now.plus(HOUR)
            },
            now
        )
        .await
        .unwrap());
    create_cabinet(
        store,
        &resident,
        account("7800000000001"),
        &hash("old"),
        now,
    )
    .await;
    let session = open(store, &resident, now).await;
    let (older, newer) = (token(), token());
    for t in [older, newer] {
        assert!(store
            .begin_recovery(
                &NewRecovery {
                    email: resident.clone(),
                    token: t,
                    expires_at: now.plus(HOUR)
                },
                now
            )
            .await
            .unwrap());
    }
    assert_eq!(
        store
            .stage_credentials(&Grant::Recovery(older), &hash("x"), now, MINUTE)
            .await
            .unwrap(),
        StageOutcome::Gone,
        "a newer recovery link replaces the older"
    );
    let grant = Grant::Recovery(newer);
    let new = hash("new");
    assert_eq!(
        store
            .stage_credentials(&grant, &new, now, MINUTE)
            .await
            .unwrap(),
        StageOutcome::Staged {
            email: resident.clone()
        }
    );
    assert_eq!(
        store.password_hash(&resident).await.unwrap(),
        Some(hash("old")),
        "staged is not effective"
    );
    assert_eq!(
        store.commit_credentials(&grant, &new, now).await.unwrap(),
        CommitOutcome::Committed {
            email: resident.clone()
        }
    );
    assert_eq!(
        store.password_hash(&resident).await.unwrap(),
        Some(new.clone())
    );
    assert_eq!(store.session(&session, now, &EXPIRY).await.unwrap(), None);
    assert_eq!(
        store.commit_credentials(&grant, &new, now).await.unwrap(),
        CommitOutcome::Gone,
        "single use"
    );
    assert_eq!(
        store
            .stage_credentials(&grant, &hash("y"), now, MINUTE)
            .await
            .unwrap(),
        StageOutcome::Gone
    );

    let abandoned = token();
    store
        .begin_recovery(
            &NewRecovery {
                email: resident.clone(),
                token: abandoned,
                expires_at: now.plus(HOUR),
            },
            now,
        )
        .await
        .unwrap();
    store.abandon_recovery(&abandoned).await.unwrap();
    assert_eq!(
        store
            .stage_credentials(&Grant::Recovery(abandoned), &hash("z"), now, MINUTE)
            .await
            .unwrap(),
        StageOutcome::Gone
    );
}

/// Sessions end after the idle time without use and after the absolute time regardless;
/// they switch only between the cabinet's accounts; ending one is idempotent.
pub async fn sessions_expire_and_switch_accounts<S: Store + ?Sized>(store: &S) {
    let now = t0();
    let resident = email("resident@example.org");
    let first = account("7800000000001");
    create_cabinet(store, &resident, first, &hash("p"), now).await;
    assert_eq!(store.session(&token(), now, &EXPIRY).await.unwrap(), None);

    let idle = open(store, &resident, now).await;
    let t1 = now.plus(29 * MINUTE);
    assert!(
        store.session(&idle, t1, &EXPIRY).await.unwrap().is_some(),
        "use refreshes the idle timer"
    );
    assert!(store
        .session(&idle, t1.plus(29 * MINUTE), &EXPIRY)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store
            .session(&idle, t1.plus(29 * MINUTE).plus(EXPIRY.idle), &EXPIRY)
            .await
            .unwrap(),
        None
    );

    let absolute = open(store, &resident, now).await;
    let mut t = now;
    while t.plus(20 * MINUTE) < now.plus(EXPIRY.absolute) {
        t = t.plus(20 * MINUTE);
        assert!(store
            .session(&absolute, t, &EXPIRY)
            .await
            .unwrap()
            .is_some());
    }
    assert_eq!(
        store
            .session(&absolute, now.plus(EXPIRY.absolute), &EXPIRY)
            .await
            .unwrap(),
        None
    );

    let session = open(store, &resident, now).await;
    assert_eq!(
        store
            .select_account(&session, &account("7800000000002"), now, &EXPIRY)
            .await
            .unwrap(),
        SelectAccount::NotLinked
    );
    assert_eq!(
        store
            .select_account(&session, &first, now, &EXPIRY)
            .await
            .unwrap(),
        SelectAccount::Selected
    );
    assert_eq!(
        store
            .select_account(&token(), &first, now, &EXPIRY)
            .await
            .unwrap(),
        SelectAccount::NoSession
    );
    store.end_session(&session).await.unwrap();
    store.end_session(&session).await.unwrap();
    assert_eq!(store.session(&session, now, &EXPIRY).await.unwrap(), None);
    assert_eq!(
        store
            .select_account(&session, &first, now, &EXPIRY)
            .await
            .unwrap(),
        SelectAccount::NoSession
    );
}

/// Throttles count events in a window, lock at the maximum for the lockout, reset after
/// it, and are cleared by a successful login.
pub async fn throttles_count_lock_and_reset<S: Store + ?Sized>(store: &S) {
    let now = t0();
    let policy = ThrottlePolicy {
        max_events: 3,
        window: 10 * MINUTE,
        lockout: 5 * MINUTE,
    };
    let resident = email("resident@example.org");
    let key = ThrottleKey::login_cabinet(&resident);
    let other = ThrottleKey::login_client("192.0.2.1");
    for _ in 0..3 {
        assert_eq!(
            store.count_event(&key, now, &policy).await.unwrap(),
            ThrottleDecision::Allowed
        );
    }
    let until = now.plus(policy.lockout);
    assert_eq!(
        store.count_event(&key, now, &policy).await.unwrap(),
        ThrottleDecision::Limited { retry_at: until }
    );
    assert_eq!(
        store
            .throttle_status(&[other.clone(), key.clone()], now)
            .await
            .unwrap(),
        Some(until)
    );
    assert_eq!(
        store
            .throttle_status(std::slice::from_ref(&other), now)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .throttle_status(std::slice::from_ref(&key), until)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.count_event(&key, until, &policy).await.unwrap(),
        ThrottleDecision::Allowed
    );

    // Events older than the window do not add up.
    let t = until.plus(HOUR);
    for i in 0..4u32 {
        let at = t.plus(policy.window * i);
        assert_eq!(
            store.count_event(&other, at, &policy).await.unwrap(),
            ThrottleDecision::Allowed
        );
    }
    assert_eq!(
        store
            .throttle_status(std::slice::from_ref(&other), t.plus(policy.window * 3))
            .await
            .unwrap(),
        None
    );

    // A successful login clears the cabinet's count.
    create_cabinet(store, &resident, account("7800000000001"), &hash("p"), now).await;
    let t = t.plus(HOUR);
    store.count_event(&key, t, &policy).await.unwrap();
    store.count_event(&key, t, &policy).await.unwrap();
    store
        .open_session(
            &NewSession {
                token: token(),
                email: resident.clone(),
                created_at: t,
            },
            std::slice::from_ref(&key),
        )
        .await
        .unwrap();
    store.count_event(&key, t, &policy).await.unwrap();
    store.count_event(&key, t, &policy).await.unwrap();
    assert_eq!(
        store
            .throttle_status(std::slice::from_ref(&key), t)
            .await
            .unwrap(),
        None,
        "the count restarted at login"
    );
}

/// A rehash on login replaces the hash only if it is still the one verified.
pub async fn password_hash_upgrade_is_compare_and_swap<S: Store + ?Sized>(store: &S) {
    let now = t0();
    let resident = email("resident@example.org");
    assert!(!store
        .upgrade_password_hash(&resident, &hash("a"), &hash("b"))
        .await
        .unwrap());
    create_cabinet(store, &resident, account("7800000000001"), &hash("a"), now).await;
    assert!(!store
        .upgrade_password_hash(&resident, &hash("x"), &hash("b"))
        .await
        .unwrap());
    assert_eq!(
        store.password_hash(&resident).await.unwrap(),
        Some(hash("a"))
    );
    assert!(store
        .upgrade_password_hash(&resident, &hash("a"), &hash("b"))
        .await
        .unwrap());
    assert_eq!(
        store.password_hash(&resident).await.unwrap(),
        Some(hash("b"))
    );
}

const RACERS: usize = 20;

/// Many concurrent confirmations of one token: exactly one succeeds.
pub async fn concurrent_confirmations_consume_a_token_once<S: Store + ?Sized>(store: &S) {
    let now = t0();
    let confirmation = token();
    store
        .begin_registration(
            &new_registration(
                &email("resident@example.org"),
                account("7800000000001"),
                RegistrationKind::NewCabinet,
                confirmation,
                now,
            ),
            now,
        )
        .await
        .unwrap();
    let results = join_all((0..RACERS).map(|_| async {
        store
            .confirm_email(&confirmation, &token(), now.plus(HOUR), now)
            .await
    }))
    .await;
    let wins = results.iter().filter(|r| matches!(r, Ok(Some(_)))).count();
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(wins, 1, "a token is consumed at most once");
}

/// Many concurrent registrations for one email, and for one account: exactly one letter
/// goes out for each (the rest are throttled or already registered).
pub async fn concurrent_registrations_let_one_win<S: Store + ?Sized>(store: &S) {
    let now = t0();
    let resident = email("resident@example.org");
    let results = join_all((0..RACERS).map(|i| {
        let resident = resident.clone();
        async move {
            let number = account(&format!("78000000001{i:02}"));
            store
                .begin_registration(
                    &new_registration(
                        &resident,
                        number,
                        RegistrationKind::NewCabinet,
                        token(),
                        now,
                    ),
                    now,
                )
                .await
        }
    }))
    .await;
    let started = results
        .iter()
        .filter(|r| matches!(r, Ok(BeginRegistration::Started)))
        .count();
    assert_eq!(started, 1, "one email: {results:?}");

    let number = account("7800000000201");
    let results = join_all((0..RACERS).map(|i| async move {
        let someone = email(&format!("resident{i}@example.org"));
        store
            .begin_registration(
                &new_registration(&someone, number, RegistrationKind::NewCabinet, token(), now),
                now,
            )
            .await
    }))
    .await;
    let started = results
        .iter()
        .filter(|r| matches!(r, Ok(BeginRegistration::Started)))
        .count();
    assert_eq!(started, 1, "one account: {results:?}");
}

/// Many concurrent commits of one staged grant: exactly one issues credentials.
pub async fn concurrent_commits_issue_credentials_once<S: Store + ?Sized>(store: &S) {
    let now = t0();
    let confirmation = token();
    let activation = token();
    let resident = email("resident@example.org");
    store
        .begin_registration(
            &new_registration(
                &resident,
                account("7800000000001"),
                RegistrationKind::NewCabinet,
                confirmation,
                now,
            ),
            now,
        )
        .await
        .unwrap();
    store
        .confirm_email(&confirmation, &activation, now.plus(HOUR), now)
        .await
        .unwrap();
    let grant = Grant::Activation(activation);
    let staged = hash("staged");
    store
        .stage_credentials(&grant, &staged, now, MINUTE)
        .await
        .unwrap();
    let results =
        join_all((0..RACERS).map(|_| store.commit_credentials(&grant, &staged, now))).await;
    let committed = results
        .iter()
        .filter(|r| matches!(r, Ok(CommitOutcome::Committed { .. })))
        .count();
    assert_eq!(committed, 1, "{results:?}");
    let candidates: Vec<PasswordHash> = (0..RACERS).map(|i| hash(&format!("racer{i}"))).collect();
    // Concurrent staging of one recovery grant: exactly one holds the lease.
    let recovery = token();
    store
        .begin_recovery(
            &NewRecovery {
                email: resident.clone(),
                token: recovery,
                expires_at: now.plus(HOUR),
            },
            now,
        )
        .await
        .unwrap();
    let grant = Grant::Recovery(recovery);
    let results = join_all(
        candidates
            .iter()
            .map(|candidate| store.stage_credentials(&grant, candidate, now, MINUTE)),
    )
    .await;
    let staged = results
        .iter()
        .filter(|r| matches!(r, Ok(StageOutcome::Staged { .. })))
        .count();
    assert_eq!(staged, 1, "{results:?}");
}

/// Purging deletes expired sessions, pending registrations, recovery links and idle
/// throttles — and nothing that still works.
pub async fn purging_removes_only_what_is_dead<S: Store + ?Sized>(store: &S) {
    let now = t0();
    let resident = email("resident@example.org");
    create_cabinet(store, &resident, account("7800000000001"), &hash("p"), now).await;
    let stale_session = open(store, &resident, now).await;
    let live_session = open(store, &resident, now.plus(2 * HOUR)).await;
    let stale_recovery = token();
    store
        .begin_recovery(
            &NewRecovery {
                email: resident.clone(),
                token: stale_recovery,
                expires_at: now.plus(HOUR),
            },
            now,
        )
        .await
        .unwrap();
    let stale_confirmation = token();
    let mut stale = new_registration(
        &email("a@example.org"),
        account("7800000000002"),
        RegistrationKind::NewCabinet,
        stale_confirmation,
        now,
    );
    stale.expires_at = now.plus(HOUR);
    store.begin_registration(&stale, now).await.unwrap();
    let live_confirmation = token();
    let mut live = new_registration(
        &email("b@example.org"),
        account("7800000000003"),
        RegistrationKind::NewCabinet,
        live_confirmation,
        now,
    );
    live.expires_at = now.plus(24 * HOUR);
    store.begin_registration(&live, now).await.unwrap();
    let policy = ThrottlePolicy {
        max_events: 10,
        window: MINUTE,
        lockout: MINUTE,
    };
    let idle_key = ThrottleKey::login_client("192.0.2.1");
    let locked_key = ThrottleKey::login_client("192.0.2.2");
    store.count_event(&idle_key, now, &policy).await.unwrap();
    let long_lock = ThrottlePolicy {
        max_events: 1,
        window: MINUTE,
        lockout: 24 * HOUR,
    };
    store
        .count_event(&locked_key, now, &long_lock)
        .await
        .unwrap();

    let later = now.plus(2 * HOUR).plus(MINUTE);
    let purged = store.purge_expired(later, &EXPIRY, HOUR).await.unwrap();
    assert_eq!(
        purged, 4,
        "one stale session, pending registration, recovery link and throttle"
    );
    assert!(store
        .session(&live_session, later, &EXPIRY)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store.session(&stale_session, later, &EXPIRY).await.unwrap(),
        None
    );
    assert!(store
        .confirm_email(&live_confirmation, &token(), later.plus(HOUR), later)
        .await
        .unwrap()
        .is_some());
    assert!(
        store
            .throttle_status(std::slice::from_ref(&locked_key), later)
            .await
            .unwrap()
            .is_some(),
        "a live lock survives"
    );
    assert_eq!(
        store.purge_expired(later, &EXPIRY, HOUR).await.unwrap(),
        0,
        "nothing left to purge"
    );
}
