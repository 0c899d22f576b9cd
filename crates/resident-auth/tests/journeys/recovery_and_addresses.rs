//! Journeys 6 and 7: recovery and adding an address.

use super::*;

#[tokio::test]
async fn recovery_answers_the_same_for_unknown_emails_and_sends_nothing() {
    let h = harness();
    h.service
        .request_recovery("nobody@example.org", &ru())
        .await
        .unwrap();
    assert!(h.mailer.letters().is_empty());
    let error = h
        .service
        .request_recovery("not an email", &ru())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Invalid);
}

#[tokio::test]
async fn recovery_issues_a_new_password_and_ends_the_old_one_and_its_sessions() {
    let h = harness();
    let old = h
        .register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    let session = h.login(RESIDENT, &old).await;
    h.service
        .request_recovery(" Resident@example.org ", &ru())
        .await
        .unwrap();
    let letter = h
        .mailer
        .last(&email(RESIDENT), LetterKind::RecoverPassword)
        .unwrap();
    assert_eq!(letter.render().subject(), "Восстановление пароля");
    assert!(letter.render().text().contains("/recover?token="));
    let token = h.link_token(RESIDENT, LetterKind::RecoverPassword);
    // Asking is not enough: the old password still works until the link is followed.
    h.login(RESIDENT, &old).await;

    h.service.complete_recovery(&token, &ru()).await.unwrap();
    let new = h.mailed_password(RESIDENT);
    assert_ne!(expose(&new), expose(&old));
    assert!(h
        .service
        .login(RESIDENT, old, &ru())
        .await
        .unwrap_err()
        .is(&Problem::InvalidCredentials));
    assert!(h
        .service
        .authenticate(&session)
        .await
        .unwrap_err()
        .is(&Problem::SessionInvalid));
    h.login(RESIDENT, &new).await;
    assert!(
        h.service
            .complete_recovery(&token, &ru())
            .await
            .unwrap_err()
            .is(&Problem::InvalidLink),
        "single use"
    );
}

#[tokio::test]
async fn recovery_links_expire_after_an_hour() {
    let h = harness();
    h.register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    h.service.request_recovery(RESIDENT, &ru()).await.unwrap();
    let token = h.link_token(RESIDENT, LetterKind::RecoverPassword);
    h.advance(60 * MINUTE);
    assert!(h
        .service
        .complete_recovery(&token, &ru())
        .await
        .unwrap_err()
        .is(&Problem::InvalidLink));
}

#[tokio::test]
async fn recovery_requests_are_rate_limited_for_known_and_unknown_emails_alike() {
    let h = harness();
    h.register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    for target in [RESIDENT, "nobody@example.org"] {
        for _ in 0..3 {
            h.service.request_recovery(target, &ru()).await.unwrap();
            h.advance(MINUTE);
        }
        let error = h.service.request_recovery(target, &ru()).await.unwrap_err();
        assert_eq!(codes(&error), ["request.too_many"], "{target}");
        assert_eq!(error.retry_after(), Some(57 * MINUTE), "the hour's window");
    }
    assert_eq!(h.letters_to(RESIDENT, LetterKind::RecoverPassword).len(), 3);
}

// ---- Journey 7: adding an address ------------------------------------------------------

#[tokio::test]
async fn adding_an_address_links_a_second_account_after_confirmation_and_activation() {
    let h = harness();
    let first_password = h
        .register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    let session = h.login(RESIDENT, &first_password).await;
    h.advance(MINUTE);
    let add = AddressForm {
        surname: "Иванов".into(),
        account_number: "78 0000 0000 002".into(),
    };
    h.service
        .add_address(&h.who(&session).await, &add, &ru())
        .await
        .unwrap();
    assert_eq!(h.letters_to(RESIDENT, LetterKind::ConfirmEmail).len(), 2);
    let activation = h
        .service
        .confirm_email(&h.link_token(RESIDENT, LetterKind::ConfirmEmail))
        .await
        .unwrap();
    let wrong = h
        .service
        .activate(activation.expose(), "123П", &ru())
        .await
        .unwrap_err();
    assert!(wrong.is(&Problem::WrongPremises { attempts_left: 4 }));
    h.service
        .activate(activation.expose(), "123/456П", &ru())
        .await
        .unwrap();
    let second_password = h.mailed_password(RESIDENT);
    assert!(
        h.service.authenticate(&session).await.is_err(),
        "new credentials end the sessions"
    );
    assert!(h
        .service
        .login(RESIDENT, first_password, &ru())
        .await
        .is_err());

    let session = h.login(RESIDENT, &second_password).await;
    let cabinet = h.service.cabinet(&h.who(&session).await).await.unwrap();
    let numbers: Vec<&str> = cabinet
        .accounts
        .iter()
        .map(|a| a.account_number.as_str())
        .collect();
    assert_eq!(numbers, [FLAT, PARKING]);
    assert_eq!(cabinet.active_account.unwrap().as_str(), FLAT);
    h.service
        .select_account(&h.who(&session).await, PARKING)
        .await
        .unwrap();
    let cabinet = h.service.cabinet(&h.who(&session).await).await.unwrap();
    assert_eq!(cabinet.active_account.unwrap().as_str(), PARKING);
}

#[tokio::test]
async fn adding_an_address_checks_like_registration() {
    let h = harness();
    let password = h
        .register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    let session = h.who(&h.login(RESIDENT, &password).await).await;
    let linked = AddressForm {
        surname: "Иванов".into(),
        account_number: FLAT.into(),
    };
    let error = h
        .service
        .add_address(&session, &linked, &ru())
        .await
        .unwrap_err();
    assert_eq!(codes(&error), ["registration.already_registered"]);
    let wrong_surname = AddressForm {
        surname: "Петров".into(),
        account_number: PARKING.into(),
    };
    let error = h
        .service
        .add_address(&session, &wrong_surname, &ru())
        .await
        .unwrap_err();
    assert_eq!(codes(&error), ["registration.account_not_found"]);
    let both_bad = AddressForm {
        surname: "".into(),
        account_number: "x".into(),
    };
    let error = h
        .service
        .add_address(&session, &both_bad, &ru())
        .await
        .unwrap_err();
    assert_eq!(codes(&error), ["surname.empty", "account_number.non_digit"]);
}
