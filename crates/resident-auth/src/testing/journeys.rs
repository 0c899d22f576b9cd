//! The journeys through the service on the store under test: registration, confirmation
//! and activation, expiry, locks, added accounts, recovery, sessions.

use super::*;

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
