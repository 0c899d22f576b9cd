//! Journeys 1–3: registration, confirmation and activation.

use super::*;

#[tokio::test]
async fn registration_reports_every_field_error_together() {
    let h = harness();
    let error = h
        .service
        .register(
            &form("Иванов И.И.", "78 0000 0000", " a b@example.org"),
            &ru(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        codes(&error),
        [
            "surname.initials",
            "account_number.wrong_length",
            "email.whitespace"
        ]
    );
    assert_eq!(error.kind(), ErrorKind::Invalid);
    assert_eq!(
        error.problems()[0].message(Locale::Ru),
        "Фамилия вводится без инициалов"
    );
    assert!(h.mailer.letters().is_empty());
}

#[tokio::test]
async fn registration_refuses_unserved_regions_with_the_guides_explanation() {
    let mut config = config();
    config.served_regions = ServedRegions::only(["78".parse().unwrap()]);
    let h = harness_with(config, |s, m| (s, m));
    let error = h
        .service
        .register(&form("Петров", "4700000000003", RESIDENT), &ru())
        .await
        .unwrap_err();
    assert_eq!(codes(&error), ["account.region_not_served"]);
    assert!(error.problems()[0]
        .message(Locale::Ru)
        .contains("управляющая организация"));
}

#[tokio::test]
async fn unknown_account_and_wrong_surname_get_one_generic_answer() {
    let h = harness();
    let unknown = h
        .service
        .register(&form("Иванов", "7899999999999", RESIDENT), &ru())
        .await
        .unwrap_err();
    let wrong_surname = h
        .service
        .register(&form("Петров", FLAT, RESIDENT), &ru())
        .await
        .unwrap_err();
    assert_eq!(codes(&unknown), ["registration.account_not_found"]);
    assert_eq!(codes(&wrong_surname), codes(&unknown));
    assert_eq!(
        unknown.problems()[0].message(Locale::Ru),
        wrong_surname.problems()[0].message(Locale::Ru)
    );
    assert!(h.mailer.letters().is_empty());
}

#[tokio::test]
async fn surname_matching_ignores_case_and_yo_and_empty_directory_surnames_match_anyone() {
    let h = harness();
    h.service
        .register(&form("СЕМЕНОВ", "7800000000004", "a@example.org"), &ru())
        .await
        .unwrap();
    h.service
        .register(&form("Кто-Угодно", "4700000000003", "b@example.org"), &ru())
        .await
        .unwrap();
    h.service
        .register(&form("иванова", FLAT, "c@example.org"), &ru())
        .await
        .unwrap();
    assert_eq!(h.mailer.letters().len(), 3);
}

#[tokio::test]
async fn registration_sends_the_confirmation_letter_with_a_link() {
    let h = harness();
    h.service
        .register(&form("Иванов", FLAT, " Resident@Example.org"), &ru())
        .await
        .unwrap();
    let letters = h.letters_to(RESIDENT, LetterKind::ConfirmEmail);
    assert_eq!(letters.len(), 1);
    let rendered = letters[0].render();
    assert_eq!(rendered.subject(), "Подтверждение e-mail");
    assert!(rendered.html().contains("Подтвердить электронный адрес"));
    assert!(rendered.text().contains("/confirm?token="));
    assert_eq!(h.link_token(RESIDENT, LetterKind::ConfirmEmail).len(), 43);
}

#[tokio::test]
async fn registering_again_while_pending_is_rate_limited_then_both_links_live() {
    let h = harness();
    h.service
        .register(&form("Иванов", FLAT, RESIDENT), &ru())
        .await
        .unwrap();
    let first = h.link_token(RESIDENT, LetterKind::ConfirmEmail);
    h.advance(Duration::from_secs(20));
    let error = h
        .service
        .register(&form("Иванов", FLAT, RESIDENT), &ru())
        .await
        .unwrap_err();
    assert_eq!(codes(&error), ["request.too_many"]);
    assert_eq!(error.kind(), ErrorKind::Throttled);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(40)));
    h.advance(MINUTE);
    h.service
        .register(&form("Иванов", FLAT, RESIDENT), &ru())
        .await
        .unwrap();
    let second = h.link_token(RESIDENT, LetterKind::ConfirmEmail);
    assert_ne!(first, second);
    // Registering again never takes the link from whoever holds the first letter: a
    // holder of the paper bill cannot keep the resident from finishing.
    h.service.confirm_email(&first).await.unwrap();
    h.service.confirm_email(&second).await.unwrap();
}

#[tokio::test]
async fn already_registered_account_or_email_points_to_recovery() {
    let h = harness();
    h.register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    let same_email = h
        .service
        .register(&form("Иванов", PARKING, RESIDENT), &ru())
        .await
        .unwrap_err();
    let same_account = h
        .service
        .register(&form("Иванов", FLAT, "other@example.org"), &ru())
        .await
        .unwrap_err();
    for error in [same_email, same_account] {
        assert_eq!(codes(&error), ["registration.already_registered"]);
        assert_eq!(error.kind(), ErrorKind::Conflict);
        let message = error.problems()[0].message(Locale::Ru);
        assert!(message.starts_with("Пользователь уже зарегистрирован"));
        assert!(message.contains("Забыли пароль"));
    }
}

#[tokio::test]
async fn per_client_registration_throttle() {
    let h = harness();
    let context = RequestContext::new(Locale::Ru).with_client("198.51.100.7");
    for i in 0..20 {
        let _ = h
            .service
            .register(
                &form("Петров", "7899999999999", &format!("p{i}@example.org")),
                &context,
            )
            .await;
    }
    let error = h
        .service
        .register(&form("Иванов", FLAT, RESIDENT), &context)
        .await
        .unwrap_err();
    assert_eq!(codes(&error), ["request.too_many"]);
    h.service
        .register(&form("Иванов", FLAT, RESIDENT), &ru())
        .await
        .unwrap();
}

// ---- Journeys 2 and 3: confirmation and activation ------------------------------------

#[tokio::test]
async fn confirmation_is_single_use_and_only_the_link_holder_reaches_activation() {
    let h = harness();
    h.service
        .register(&form("Иванов", FLAT, RESIDENT), &ru())
        .await
        .unwrap();
    let confirmation = h.link_token(RESIDENT, LetterKind::ConfirmEmail);
    assert!(h
        .service
        .confirm_email("not-a-token")
        .await
        .unwrap_err()
        .is(&Problem::InvalidLink));
    let activation = h.service.confirm_email(&confirmation).await.unwrap();
    assert_ne!(activation.expose(), confirmation);
    assert!(h
        .service
        .confirm_email(&confirmation)
        .await
        .unwrap_err()
        .is(&Problem::InvalidLink));
    // The confirmation token itself does not activate.
    assert!(h
        .service
        .activate(&confirmation, "12", &ru())
        .await
        .unwrap_err()
        .is(&Problem::InvalidLink));
    h.service
        .activate(activation.expose(), "12", &ru())
        .await
        .unwrap();
}

#[tokio::test]
async fn activation_with_wrong_then_right_premises_mails_credentials() {
    let h = harness();
    h.service
        .register(&form("Иванов", PARKING, RESIDENT), &ru())
        .await
        .unwrap();
    let activation = h
        .service
        .confirm_email(&h.link_token(RESIDENT, LetterKind::ConfirmEmail))
        .await
        .unwrap();

    let syntax = h
        .service
        .activate(activation.expose(), "12А", &ru())
        .await
        .unwrap_err();
    assert_eq!(codes(&syntax), ["premises.unknown_letter"]);
    let wrong = h
        .service
        .activate(activation.expose(), "123П", &ru())
        .await
        .unwrap_err();
    assert!(
        wrong.is(&Problem::WrongPremises { attempts_left: 4 }),
        "{wrong:?}"
    );
    assert!(wrong.problems()[0]
        .message(Locale::Ru)
        .contains("Осталось 4 попытки"));
    assert!(h.letters_to(RESIDENT, LetterKind::Credentials).is_empty());

    let email = h
        .service
        .activate(activation.expose(), " 123 / 456 п", &ru())
        .await
        .unwrap();
    assert_eq!(email.as_str(), RESIDENT);
    let letters = h.letters_to(RESIDENT, LetterKind::Credentials);
    assert_eq!(letters.len(), 1);
    let rendered = letters[0].render();
    assert_eq!(rendered.subject(), "Данные для входа");
    let password = h.mailed_password(RESIDENT);
    assert!(rendered
        .text()
        .lines()
        .any(|l| l == format!("Логин: {RESIDENT}")));
    assert!(rendered
        .text()
        .lines()
        .any(|l| l == format!("Пароль: {}", expose(&password))));
    assert!(expose(&password).len() >= 12);
    assert!(h
        .service
        .activate(activation.expose(), "123/456П", &ru())
        .await
        .unwrap_err()
        .is(&Problem::InvalidLink));
}

#[tokio::test]
async fn activation_locks_after_five_wrong_premises_then_recovers() {
    let h = harness();
    h.service
        .register(&form("Иванов", FLAT, RESIDENT), &ru())
        .await
        .unwrap();
    let activation = h
        .service
        .confirm_email(&h.link_token(RESIDENT, LetterKind::ConfirmEmail))
        .await
        .unwrap();
    for left in (1..=4).rev() {
        let error = h
            .service
            .activate(activation.expose(), "13", &ru())
            .await
            .unwrap_err();
        assert!(
            error.is(&Problem::WrongPremises {
                attempts_left: left
            }),
            "{error:?}"
        );
    }
    let locked = h
        .service
        .activate(activation.expose(), "13", &ru())
        .await
        .unwrap_err();
    assert_eq!(codes(&locked), ["activation.locked"]);
    assert_eq!(locked.kind(), ErrorKind::Throttled);
    assert_eq!(locked.retry_after(), Some(15 * MINUTE));
    let still = h
        .service
        .activate(activation.expose(), "12", &ru())
        .await
        .unwrap_err();
    assert_eq!(
        codes(&still),
        ["activation.locked"],
        "even the right number waits"
    );
    h.advance(15 * MINUTE);
    h.service
        .activate(activation.expose(), "12", &ru())
        .await
        .unwrap();
}

#[tokio::test]
async fn confirmation_and_activation_links_expire() {
    let h = harness();
    h.service
        .register(&form("Иванов", FLAT, RESIDENT), &ru())
        .await
        .unwrap();
    h.advance(24 * 60 * MINUTE);
    let error = h
        .service
        .confirm_email(&h.link_token(RESIDENT, LetterKind::ConfirmEmail))
        .await
        .unwrap_err();
    assert!(error.is(&Problem::InvalidLink));

    h.service
        .register(&form("Иванов", FLAT, RESIDENT), &ru())
        .await
        .unwrap();
    let activation = h
        .service
        .confirm_email(&h.link_token(RESIDENT, LetterKind::ConfirmEmail))
        .await
        .unwrap();
    h.advance(24 * 60 * MINUTE);
    assert!(h
        .service
        .activate(activation.expose(), "12", &ru())
        .await
        .unwrap_err()
        .is(&Problem::InvalidLink));
}
