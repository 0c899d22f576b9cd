//! The operators' operations through the library (docs/operating.md), one per call a
//! support person takes: each on the in-memory store, with its audit record.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::*;
use resident_auth::{
    admin::{AdminError, Audit, AuditEvent, Lookup, Operator},
    errors::Problem,
    journeys::AddressForm,
    letters::LetterKind,
    ports::StoreError,
};

#[derive(Default)]
struct Recorded(Mutex<Vec<AuditEvent>>);

#[async_trait]
impl Audit for Recorded {
    async fn record(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

fn operator() -> Operator {
    "Мария (поддержка)".parse().unwrap()
}

fn by(text: &str) -> Lookup {
    text.parse().unwrap()
}

/// A cabinet of two accounts, signed in twice; returns the session tokens.
async fn two_accounts_two_sessions(h: &Harness) -> (String, String) {
    let password = h
        .register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    let token = h.login(RESIDENT, &password).await;
    let add = AddressForm {
        surname: "Иванов".into(),
        account_number: PARKING.into(),
    };
    h.service
        .add_address(&h.who(&token).await, &add, &ru())
        .await
        .unwrap();
    let activation = h
        .service
        .confirm_email(&h.link_token(RESIDENT, LetterKind::ConfirmEmail))
        .await
        .unwrap();
    h.service
        .activate(activation.expose(), "123/456П", &ru())
        .await
        .unwrap();
    let password = h.mailed_password(RESIDENT);
    (
        h.login(RESIDENT, &password).await,
        h.login(RESIDENT, &password).await,
    )
}

#[test]
fn lookups_and_operators_parse_or_say_why_not() {
    assert_eq!(
        by(" 78 0000 0000 001"),
        Lookup::Account(FLAT.parse().unwrap())
    );
    assert_eq!(by("Resident@Example.org"), Lookup::Email(email(RESIDENT)));
    for bad in ["780000000000", "resident@", "someone", ""] {
        let error = bad.parse::<Lookup>().unwrap_err();
        assert!(error.to_string().contains("13-digit"), "{bad}: {error}");
    }
    for bad in ["", "   ", "a\nb", &"x".repeat(65)] {
        assert!(bad.parse::<Operator>().is_err(), "{bad:?}");
    }
}

#[tokio::test]
async fn find_shows_the_cabinet_its_accounts_sessions_and_locks() {
    let h = harness();
    two_accounts_two_sessions(&h).await;
    let _ = h.service.login(RESIDENT, secret("wrong"), &ru()).await;
    let admin = h.service.admin();
    for lookup in [by(RESIDENT), by(FLAT), by(PARKING)] {
        let report = admin.find(&lookup).await.unwrap();
        let cabinet = report.cabinet.as_ref().unwrap();
        assert_eq!(cabinet.email, RESIDENT);
        let accounts: Vec<_> = cabinet
            .accounts
            .iter()
            .map(|a| a.account_number.as_str())
            .collect();
        assert_eq!(accounts, [FLAT, PARKING]);
        assert!(cabinet.accounts[1].address.contains("машино-место"));
        assert_eq!(cabinet.sessions, 2);
        assert!(cabinet.last_login.is_some());
        assert!(
            report
                .locks
                .iter()
                .any(|l| l.counter.starts_with("login:") && l.count >= 1),
            "{:?}",
            report.locks
        );
    }
    let error = admin.find(&by("nobody@example.org")).await.unwrap_err();
    assert!(matches!(error, AdminError::NotFound), "{error:?}");
}

#[tokio::test]
async fn a_pending_registration_is_found_and_its_letter_resent_past_the_cooldown() {
    let audit = Arc::new(Recorded::default());
    let h = harness();
    let admin = h.service.admin().with_audit(audit.clone());
    h.service
        .register(&form("Иванов", FLAT, RESIDENT), &ru())
        .await
        .unwrap();
    let old = h.link_token(RESIDENT, LetterKind::ConfirmEmail);
    let report = admin.find(&by(FLAT)).await.unwrap();
    assert!(report.cabinet.is_none());
    assert_eq!(report.pending.len(), 1);
    assert_eq!(report.pending[0].purpose, "confirmation");
    // The resident's own resend waits for the cooldown; the operator's does not.
    let cooldown = h
        .service
        .register(&form("Иванов", FLAT, RESIDENT), &ru())
        .await
        .unwrap_err();
    assert!(matches!(
        cooldown.problems(),
        [Problem::TooManyRequests { .. }]
    ));
    let sent_to = admin
        .resend_confirmation(&by(RESIDENT), &operator())
        .await
        .unwrap();
    assert_eq!(sent_to, email(RESIDENT));
    assert_eq!(h.letters_to(RESIDENT, LetterKind::ConfirmEmail).len(), 2);
    let new = h.link_token(RESIDENT, LetterKind::ConfirmEmail);
    assert_ne!(old, new);
    assert!(h
        .service
        .confirm_email(&old)
        .await
        .unwrap_err()
        .is(&Problem::InvalidLink));
    h.service.confirm_email(&new).await.unwrap();
    let events = audit.0.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].action, events[0].operator.as_str()),
        ("resend_confirmation", "Мария (поддержка)")
    );
    let nothing = admin
        .resend_confirmation(&by("nobody@example.org"), &operator())
        .await;
    assert!(matches!(nothing, Err(AdminError::NotFound)));
}

#[tokio::test]
async fn clearing_locks_lets_a_locked_out_resident_in_again() {
    let h = harness();
    let activation = h.confirmed("Иванов", FLAT, RESIDENT).await;
    let mut locked = false;
    for _ in 0..6 {
        let error = h
            .service
            .activate(&activation, "99", &ru())
            .await
            .unwrap_err();
        locked |= matches!(error.problems(), [Problem::ActivationLocked { .. }]);
    }
    assert!(locked, "wrong premises lock the activation");
    let admin = h.service.admin();
    let cleared = admin.clear_locks(&by(FLAT), &operator()).await.unwrap();
    assert!(cleared >= 1);
    h.service.activate(&activation, "12", &ru()).await.unwrap();
    let password = h.mailed_password(RESIDENT);
    let mut throttled = false;
    for _ in 0..12 {
        let error = h
            .service
            .login(RESIDENT, secret("wrong"), &ru())
            .await
            .unwrap_err();
        throttled |= matches!(error.problems(), [Problem::LoginThrottled { .. }]);
    }
    assert!(throttled, "wrong passwords throttle the login");
    admin.clear_locks(&by(RESIDENT), &operator()).await.unwrap();
    h.login(RESIDENT, &password).await;
}

#[tokio::test]
async fn ending_sessions_signs_every_device_out() {
    let h = harness();
    let (one, two) = two_accounts_two_sessions(&h).await;
    let ended = h
        .service
        .admin()
        .end_sessions(&by(RESIDENT), &operator())
        .await
        .unwrap();
    // The two live ones, and the one from before the second account (ended by it, still
    // stored until the purge).
    assert_eq!(ended, 3);
    for token in [one, two] {
        let error = h.service.authenticate(&token).await.unwrap_err();
        assert!(error.is(&Problem::SessionInvalid));
    }
}

#[tokio::test]
async fn unlinking_takes_the_account_out_and_tells_the_resident() {
    let h = harness();
    let (token, _) = two_accounts_two_sessions(&h).await;
    let admin = h.service.admin();
    let erased = admin
        .unlink(&PARKING.parse().unwrap(), false, &operator())
        .await
        .unwrap();
    assert!(erased.is_none());
    assert!(
        h.service.authenticate(&token).await.is_err(),
        "sessions ended"
    );
    let report = admin.find(&by(RESIDENT)).await.unwrap();
    let accounts: Vec<_> = report
        .cabinet
        .unwrap()
        .accounts
        .into_iter()
        .map(|a| a.account_number)
        .collect();
    assert_eq!(accounts, [FLAT]);
    let letters = h.letters_to(RESIDENT, LetterKind::AccountUnlinked);
    assert_eq!(letters.len(), 1);
    assert!(letters[0].render().text().contains(PARKING));
    // The account is free: its owner registers it into another cabinet.
    h.register_and_activate("Иванов", PARKING, "owner@example.org", "123/456П")
        .await;
    // The last account goes only with the whole cabinet.
    let refused = admin
        .unlink(&FLAT.parse().unwrap(), false, &operator())
        .await;
    assert!(
        matches!(refused, Err(AdminError::Refused(_))),
        "{refused:?}"
    );
    let erased = admin
        .unlink(&FLAT.parse().unwrap(), true, &operator())
        .await
        .unwrap();
    assert_eq!(erased.unwrap().cabinets, 1);
    let gone = admin
        .unlink(&FLAT.parse().unwrap(), true, &operator())
        .await;
    assert!(matches!(gone, Err(AdminError::NotFound)));
}

#[tokio::test]
async fn erasure_leaves_nothing_about_the_resident_and_the_account_can_register_again() {
    let audit = Arc::new(Recorded::default());
    let h = harness();
    let (token, _) = two_accounts_two_sessions(&h).await;
    let _ = h.service.login(RESIDENT, secret("wrong"), &ru()).await;
    h.service.request_recovery(RESIDENT, &ru()).await.unwrap();
    let admin = h.service.admin().with_audit(audit.clone());
    let erased = admin.erase(&by(FLAT), &operator()).await.unwrap();
    assert_eq!(erased.cabinets, 1);
    assert_eq!(
        erased.sessions, 3,
        "two live, one ended by the added account"
    );
    assert!(erased.links >= 1, "the recovery link");
    assert!(erased.counters >= 1, "the failed login's counts");
    assert!(h.service.authenticate(&token).await.is_err());
    for lookup in [by(RESIDENT), by(FLAT), by(PARKING)] {
        assert!(
            matches!(admin.find(&lookup).await, Err(AdminError::NotFound)),
            "{lookup}"
        );
    }
    let event = serde_json::to_string(&audit.0.lock().unwrap()[0]).unwrap();
    assert!(event.contains("\"erase\"") && event.contains("cabinet"));
    for personal in [RESIDENT, FLAT, PARKING, "Иванов"] {
        assert!(
            !event.contains(personal),
            "the audit record names {personal}: {event}"
        );
    }
    h.register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
}

#[tokio::test]
async fn an_export_has_the_residents_data_and_no_secret() {
    let h = harness();
    let (token, _) = two_accounts_two_sessions(&h).await;
    let export = h
        .service
        .admin()
        .export(&by(RESIDENT), &operator())
        .await
        .unwrap();
    assert_eq!(export.cabinet.email, RESIDENT);
    assert_eq!(
        export.sessions.len(),
        2,
        "the live sessions, as the cabinet's count and the sessions list say (the one that \
         ended when the second account was added is no longer the resident's)"
    );
    assert_eq!(export.cabinet.sessions, 2, "two of them live");
    let json = serde_json::to_string(&export).unwrap();
    assert!(json.contains(FLAT) && json.contains(PARKING));
    assert!(!json.contains(&token), "no session token");
    assert!(!json.contains("argon2"), "no password hash");
    let password = h.mailed_password(RESIDENT);
    assert!(!json.contains(expose(&password)), "no password");
}
