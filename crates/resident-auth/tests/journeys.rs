//! Every journey of docs/contract.md §3, end to end on the in-memory adapters, with its failure
//! branches.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use common::*;
use resident_auth::{
    letters::LetterKind, AddressForm, Error, ErrorKind, Locale, Problem, RequestContext,
    ServedRegions, UserError,
};

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

fn codes(error: &Error) -> Vec<&'static str> {
    error.problems().iter().map(UserError::code).collect()
}

// ---- Journey 1: registration ----------------------------------------------------------

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

// ---- Journey 4: login ------------------------------------------------------------------

#[tokio::test]
async fn identify_checks_syntax_only() {
    let h = harness();
    assert_eq!(
        h.service
            .identify(" Resident@Example.org")
            .unwrap()
            .as_str(),
        RESIDENT
    );
    assert_eq!(
        h.service.identify("nobody@example.org").unwrap().as_str(),
        "nobody@example.org"
    );
    let error = h.service.identify("resident example.org").unwrap_err();
    assert_eq!(codes(&error), ["login.incorrect_data"]);
    assert_eq!(
        error.problems()[0].message(Locale::Ru),
        "Некорректные данные"
    );
}

#[tokio::test]
async fn login_opens_a_session_on_the_first_account() {
    let h = harness();
    let password = h
        .register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    let logged_in = h
        .service
        .login(" RESIDENT@example.org", password.clone(), &ru())
        .await
        .unwrap();
    assert_eq!(logged_in.email.as_str(), RESIDENT);
    assert_eq!(logged_in.active_account.unwrap().as_str(), FLAT);
    let session = h.who(logged_in.session_token.expose()).await;
    assert_eq!(session.cabinet, logged_in.cabinet);
    let cabinet = h.service.cabinet(&session).await.unwrap();
    assert_eq!(cabinet.cabinet, logged_in.cabinet);
    assert_eq!(cabinet.accounts.len(), 1);
    assert_eq!(
        cabinet.accounts[0].address,
        "г. Санкт-Петербург, ул. Садовая, д. 1, кв. 12"
    );
    assert_eq!(cabinet.accounts[0].premises.unwrap().to_string(), "12");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_are_indistinguishable_and_cost_the_same() {
    let h = harness();
    let password = h
        .register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    let runs = h.hasher.runs();
    let wrong = h
        .service
        .login(RESIDENT, secret("not-the-password"), &ru())
        .await
        .unwrap_err();
    let after_wrong = h.hasher.runs();
    let unknown = h
        .service
        .login("nobody@example.org", password, &ru())
        .await
        .unwrap_err();
    let after_unknown = h.hasher.runs();
    assert!(wrong.is(&Problem::InvalidCredentials));
    assert!(unknown.is(&Problem::InvalidCredentials));
    assert_eq!(wrong.kind(), ErrorKind::Unauthenticated);
    assert_eq!(
        wrong.problems()[0].message(Locale::Ru),
        "Неверное имя пользователя или пароль"
    );
    assert_eq!(
        after_wrong - runs,
        1,
        "one argon2 verification for a wrong password"
    );
    assert_eq!(
        after_unknown - after_wrong,
        1,
        "the same argon2 work for an unknown email"
    );
}

#[tokio::test]
async fn failed_logins_are_throttled_per_cabinet_with_retry_after() {
    let h = harness();
    let password = h
        .register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    for _ in 0..5 {
        let error = h
            .service
            .login(RESIDENT, secret("wrong"), &ru())
            .await
            .unwrap_err();
        assert!(error.is(&Problem::InvalidCredentials));
    }
    let runs = h.hasher.runs();
    let throttled = h
        .service
        .login(RESIDENT, password.clone(), &ru())
        .await
        .unwrap_err();
    assert_eq!(codes(&throttled), ["login.throttled"]);
    assert_eq!(throttled.kind(), ErrorKind::Throttled);
    assert_eq!(throttled.retry_after(), Some(15 * MINUTE));
    assert_eq!(
        h.hasher.runs(),
        runs,
        "a throttled login costs no argon2 work"
    );
    // Unknown emails are throttled the same way: no enumeration through the throttle.
    for _ in 0..5 {
        let _ = h
            .service
            .login("nobody@example.org", secret("x"), &ru())
            .await;
    }
    let unknown = h
        .service
        .login("nobody@example.org", secret("x"), &ru())
        .await
        .unwrap_err();
    assert_eq!(codes(&unknown), ["login.throttled"]);
    h.advance(15 * MINUTE);
    h.login(RESIDENT, &password).await;
    // A success resets the count.
    for _ in 0..4 {
        let _ = h.service.login(RESIDENT, secret("wrong"), &ru()).await;
    }
    h.login(RESIDENT, &password).await;
}

#[tokio::test]
async fn failed_logins_are_throttled_per_client_address() {
    let h = harness();
    let password = h
        .register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    let client = RequestContext::new(Locale::En).with_client("203.0.113.9");
    for i in 0..50 {
        let _ = h
            .service
            .login(&format!("victim{i}@example.org"), secret("guess"), &client)
            .await;
    }
    let error = h
        .service
        .login(RESIDENT, password.clone(), &client)
        .await
        .unwrap_err();
    assert_eq!(codes(&error), ["login.throttled"]);
    assert!(error.problems()[0]
        .message(Locale::En)
        .starts_with("Too many failed logins"));
    h.login(RESIDENT, &password).await;
}

#[tokio::test]
async fn login_upgrades_a_hash_made_with_older_parameters() {
    use resident_auth::{
        ports::CabinetStore as _,
        ports::CredentialHasher as _,
        ports::{CabinetKey, CabinetSwap, Expected},
        Argon2Hasher, HashParams,
    };
    let h = harness();
    let password = h
        .register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    // Pretend the cabinet was created when the parameters were different.
    let old_params = HashParams::new(128, 1, 1).unwrap();
    let old = Argon2Hasher::with_workers(old_params, 1)
        .unwrap()
        .hash(password.clone())
        .await
        .unwrap();
    let resident = email(RESIDENT);
    let current = h
        .store
        .cabinet(CabinetKey::Email(&resident))
        .await
        .unwrap()
        .unwrap();
    let mut older = current.value.clone();
    older.password_hash = old;
    assert_eq!(
        h.store
            .swap_cabinet(
                &older.id,
                Expected::Version(current.version),
                Some(&older),
                None
            )
            .await
            .unwrap(),
        CabinetSwap::Written
    );
    let kept = h.login(RESIDENT, &password).await;
    let upgraded = h
        .store
        .cabinet(CabinetKey::Email(&resident))
        .await
        .unwrap()
        .unwrap()
        .value
        .password_hash;
    h.service
        .authenticate(&kept)
        .await
        .expect("an upgrade is no new password: sessions live on");
    assert!(
        upgraded.as_phc().contains("m=64,t=1,p=1"),
        "rehashed with the configured parameters"
    );
    h.login(RESIDENT, &password).await;
}

// ---- Journey 5: sessions ---------------------------------------------------------------

#[tokio::test]
async fn sessions_authenticate_switch_and_log_out() {
    let h = harness();
    let password = h
        .register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    let session = h.login(RESIDENT, &password).await;
    let who = h.service.authenticate(&session).await.unwrap();
    assert_eq!(who.email.as_str(), RESIDENT);
    let not_linked = h.service.select_account(&who, PARKING).await.unwrap_err();
    assert_eq!(codes(&not_linked), ["session.account_not_linked"]);
    let bad = h.service.select_account(&who, "12").await.unwrap_err();
    assert_eq!(codes(&bad), ["account_number.wrong_length"]);
    h.service.logout(&session).await.unwrap();
    let gone = h.service.authenticate(&session).await.unwrap_err();
    assert!(gone.is(&Problem::SessionInvalid));
    assert_eq!(gone.kind(), ErrorKind::Unauthenticated);
    assert!(h
        .service
        .authenticate("garbage")
        .await
        .unwrap_err()
        .is(&Problem::SessionInvalid));
}

#[tokio::test]
async fn sessions_expire_when_idle_and_absolutely() {
    let h = harness();
    let password = h
        .register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    let idle = h.login(RESIDENT, &password).await;
    h.advance(29 * MINUTE);
    h.service.authenticate(&idle).await.unwrap();
    h.advance(31 * MINUTE);
    assert!(h
        .service
        .authenticate(&idle)
        .await
        .unwrap_err()
        .is(&Problem::SessionInvalid));

    let busy = h.login(RESIDENT, &password).await;
    for _ in 0..35 {
        h.advance(20 * MINUTE);
        h.service.authenticate(&busy).await.unwrap();
    }
    h.advance(20 * MINUTE);
    assert!(
        h.service
            .authenticate(&busy)
            .await
            .unwrap_err()
            .is(&Problem::SessionInvalid),
        "12 hours after login even an active session ends"
    );
}

// ---- Journey 6: recovery ---------------------------------------------------------------

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

// ---- Invariants ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_double_consume_of_one_token_lets_exactly_one_win() {
    let h = harness();
    h.service
        .register(&form("Иванов", FLAT, RESIDENT), &ru())
        .await
        .unwrap();
    let confirmation = h.link_token(RESIDENT, LetterKind::ConfirmEmail);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let service = h.service.clone();
            let token = confirmation.clone();
            tokio::spawn(async move { service.confirm_email(&token).await })
        })
        .collect();
    let mut activations = Vec::new();
    for task in tasks {
        if let Ok(token) = task.await.unwrap() {
            activations.push(token);
        }
    }
    assert_eq!(activations.len(), 1);

    // The same for the activation itself: one credentials letter, one password.
    let activation = activations.pop().unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let service = h.service.clone();
            let token = activation.expose().to_owned();
            tokio::spawn(async move {
                service
                    .activate(&token, "12", &RequestContext::default())
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        wins += usize::from(task.await.unwrap().is_ok());
    }
    assert_eq!(wins, 1);
    assert_eq!(h.letters_to(RESIDENT, LetterKind::Credentials).len(), 1);
    assert!(h.stored_password_was_mailed(RESIDENT).await);
}

#[tokio::test]
async fn no_secret_appears_in_debug_output() {
    let h = harness();
    let password = h
        .register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    let logged_in = h
        .service
        .login(RESIDENT, password.clone(), &ru())
        .await
        .unwrap();
    let token = logged_in.session_token.expose().to_owned();
    let error = h
        .service
        .login(RESIDENT, secret("wrong-password-xyz"), &ru())
        .await
        .unwrap_err();
    let letters = h.mailer.letters();
    let debug = format!(
        "{logged_in:?} {error:?} {error} {letters:?} {:?} {password:?}",
        h.service
    );
    assert!(!debug.contains(expose(&password)));
    assert!(!debug.contains(&token));
    assert!(!debug.contains("wrong-password-xyz"));
    for letter in &letters {
        if let Some(link_token) = resident_auth::memory::link_token(letter) {
            assert!(!debug.contains(&link_token));
        }
    }
}

#[tokio::test]
async fn each_login_issues_a_fresh_session_token_and_leaves_others_alone() {
    let h = harness();
    let password = h
        .register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    let first = h.login(RESIDENT, &password).await;
    let second = h.login(RESIDENT, &password).await;
    assert_ne!(
        first, second,
        "no token is ever reused: a session cannot be fixed in advance"
    );
    h.service.logout(&first).await.unwrap();
    assert!(h.service.authenticate(&first).await.is_err());
    h.service.authenticate(&second).await.unwrap();
}

#[tokio::test]
async fn purging_keeps_live_sessions_and_drops_dead_ones() {
    let h = harness();
    let password = h
        .register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    let old = h.login(RESIDENT, &password).await;
    h.advance(25 * MINUTE);
    let fresh = h.login(RESIDENT, &password).await;
    h.advance(10 * MINUTE);
    assert_eq!(
        h.service.purge_expired().await.unwrap(),
        1,
        "the idle session (the registration's counters ended with its activation)"
    );
    h.service.authenticate(&fresh).await.unwrap();
    assert!(h.service.authenticate(&old).await.is_err());
}

// ---- Security, second round -------------------------------------------------------------

#[tokio::test]
async fn no_argon2_runs_before_a_grant_is_validated() {
    let h = harness();
    h.register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    let before = h.hasher.runs();
    // Well-formed, made-up tokens: the link is looked up, found missing, refused.
    for _ in 0..5 {
        let made_up = resident_auth::ports::Token::generate();
        let error = h
            .service
            .complete_recovery(made_up.expose(), &ru())
            .await
            .unwrap_err();
        assert!(error.is(&Problem::InvalidLink));
        let error = h
            .service
            .activate(made_up.expose(), "12", &ru())
            .await
            .unwrap_err();
        assert!(error.is(&Problem::InvalidLink));
    }
    assert_eq!(
        h.hasher.runs(),
        before,
        "no password was generated or hashed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_parallel_wrong_logins_runs_at_most_the_limits_argon2_jobs() {
    let h = harness();
    h.register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    let before = h.hasher.runs();
    let context = ru().with_client("192.0.2.7");
    let attempts = futures::future::join_all((0..200).map(|_| {
        h.service
            .login(RESIDENT, secret("wrong-password"), &context)
    }))
    .await;
    let limit = config().login_per_cabinet_and_client.max as usize;
    let refused = attempts
        .iter()
        .filter(|a| matches!(a, Err(e) if e.kind() == ErrorKind::Throttled))
        .count();
    assert_eq!(refused, 200 - limit, "every try past the limit is refused");
    assert_eq!(
        h.hasher.runs() - before,
        limit,
        "checking the limit and counting the try are one step: only the limit's tries hash"
    );
}

#[tokio::test]
async fn a_busy_hashing_pool_answers_503_with_retry_after_at_once() {
    // Production parameters: a verification takes long enough for the others to arrive.
    let hasher =
        resident_auth::Argon2Hasher::with_queue(resident_auth::HashParams::default(), 1, 1)
            .unwrap();
    let h = harness_with_hasher(config(), hasher, |s, m| (s, m));
    let password = h
        .register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    // One worker and one place to wait: concurrent logins beyond those are refused.
    let context = ru();
    let attempts = futures::future::join_all(
        (0..5).map(|_| h.service.login(RESIDENT, password.clone(), &context)),
    )
    .await;
    let busy: Vec<&Error> = attempts.iter().filter_map(|a| a.as_ref().err()).collect();
    assert!(!busy.is_empty(), "some logins found the pool busy");
    for error in busy {
        assert_eq!(error.kind(), ErrorKind::Unavailable);
        assert!(error.is_retryable());
        assert_eq!(error.retry_after(), Some(Duration::from_secs(1)));
    }
}

/// Activation tokens of fresh registrations of FLAT by different emails, a minute apart.
async fn fresh_activations(h: &Harness, emails: &[&str]) -> Vec<String> {
    let mut tokens = Vec::new();
    for to in emails {
        h.advance(MINUTE);
        tokens.push(h.confirmed("Иванов", FLAT, to).await);
    }
    tokens
}

#[tokio::test]
async fn premises_locks_escalate_per_account_and_survive_re_registration() {
    let h = harness();
    let tokens = fresh_activations(&h, &["a@example.org", "b@example.org", "c@example.org"]).await;
    let wrong = |token: String| {
        let service = h.service.clone();
        async move { service.activate(&token, "13", &ru()).await.unwrap_err() }
    };
    // Four wrong tries with 4, 3, 2, 1 left, then the fifth locks: how long.
    let four_left_then_locked = |token: &String| {
        let token = token.clone();
        let wrong = &wrong;
        async move {
            for left in [4, 3, 2, 1] {
                let error = wrong(token.clone()).await;
                assert!(
                    error.is(&Problem::WrongPremises {
                        attempts_left: left
                    }),
                    "{error:?}"
                );
            }
            let locked = wrong(token).await;
            assert_eq!(codes(&locked), ["activation.locked"]);
            locked.retry_after().unwrap()
        }
    };
    // First window: five tries over two registrations, then 15 minutes.
    for (i, left) in [4, 3, 2, 1].into_iter().enumerate() {
        let error = wrong(tokens[i % 2].clone()).await;
        assert!(
            error.is(&Problem::WrongPremises {
                attempts_left: left
            }),
            "{error:?}"
        );
    }
    let locked = wrong(tokens[2].clone()).await;
    assert_eq!(codes(&locked), ["activation.locked"]);
    let first_lock = locked.retry_after().unwrap();
    assert!(first_lock <= 15 * MINUTE, "{first_lock:?}");
    // Second window: five more, then the lock lasts until the hour's window ends.
    h.advance(first_lock);
    let second_lock = four_left_then_locked(&tokens[0]).await;
    assert!(
        second_lock > 15 * MINUTE && second_lock <= HOUR,
        "{second_lock:?}"
    );
    // Third: after the hour, five more reach the daily cap, locked for the rest of the day.
    h.advance(second_lock);
    let daily_lock = four_left_then_locked(&tokens[1]).await;
    assert!(daily_lock > 20 * HOUR, "{daily_lock:?}");
    // The right number on a registration made after all this answers exactly like a
    // wrong one: locked, with the same wait.
    let late = fresh_activations(&h, &["d@example.org"]).await;
    let right = h.service.activate(&late[0], "12", &ru()).await.unwrap_err();
    let wrong_now = wrong(late[0].clone()).await;
    assert_eq!(codes(&right), ["activation.locked"]);
    assert_eq!(format!("{right:?}"), format!("{wrong_now:?}"));
}

/// A directory that counts its lookups: how many premises guesses were evaluated.
#[derive(Clone)]
struct CountingDirectory {
    inner: resident_auth::memory::MemoryDirectory,
    lookups: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait::async_trait]
impl resident_auth::ports::AccountDirectory for CountingDirectory {
    async fn lookup(
        &self,
        account: &resident_auth::AccountNumber,
    ) -> Result<Option<resident_auth::ports::DirectoryRecord>, resident_auth::ports::StoreError>
    {
        self.lookups
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.lookup(account).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_guesses_evaluate_at_most_the_limit() {
    let directory = CountingDirectory {
        inner: resident_auth::memory::MemoryDirectory::from_csv(DIRECTORY).unwrap(),
        lookups: Default::default(),
    };
    let lookups = directory.lookups.clone();
    let mailer = resident_auth::memory::RecordingMailer::new();
    let (service, _background) = resident_auth::AuthService::builder("https://portal.example.org")
        .store(resident_auth::memory::MemoryStore::new())
        .directory(directory)
        .mailer(mailer.clone())
        .hasher(fast_hasher())
        .configure(|c| c.delivery.in_request = true)
        .build()
        .unwrap();
    service
        .register(&form("Иванов", FLAT, RESIDENT), &ru())
        .await
        .unwrap();
    let letter = mailer
        .last(&email(RESIDENT), LetterKind::ConfirmEmail)
        .unwrap();
    let activation = service
        .confirm_email(&resident_auth::memory::link_token(&letter).unwrap())
        .await
        .unwrap();
    let before = lookups.load(std::sync::atomic::Ordering::SeqCst);
    let context = ru();
    let guesses = futures::future::join_all(
        (0..20).map(|_| service.activate(activation.expose(), "13", &context)),
    )
    .await;
    let evaluated = lookups.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert_eq!(evaluated, 5, "only the limit's guesses reach the directory");
    assert_eq!(
        guesses
            .iter()
            .filter(|g| matches!(g, Err(e) if codes(e) == ["activation.locked"]))
            .count(),
        16,
        "the fifth wrong guess and the fifteen refused ones"
    );
}

fn from(client: &str) -> RequestContext {
    ru().with_client(client)
}

#[tokio::test]
async fn a_stranger_who_knows_the_email_locks_out_only_their_own_client() {
    let h = harness();
    let password = h
        .register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    for _ in 0..5 {
        let error = h
            .service
            .login(RESIDENT, secret("guess"), &from("203.0.113.9"))
            .await
            .unwrap_err();
        assert!(error.is(&Problem::InvalidCredentials));
    }
    let refused = h
        .service
        .login(RESIDENT, secret("guess"), &from("203.0.113.9"))
        .await
        .unwrap_err();
    assert_eq!(codes(&refused), ["login.throttled"]);
    // The owner, from a client that has not failed, logs in at once.
    h.service
        .login(RESIDENT, password, &from("192.0.2.10"))
        .await
        .expect("the owner is not locked out");
}

#[tokio::test]
async fn a_hundred_failures_from_many_clients_lock_the_cabinet_until_a_recovery() {
    let h = harness();
    let password = h
        .register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    for client in 0..20 {
        for _ in 0..5 {
            let error = h
                .service
                .login(
                    RESIDENT,
                    secret("guess"),
                    &from(&format!("198.51.100.{client}")),
                )
                .await
                .unwrap_err();
            assert!(error.is(&Problem::InvalidCredentials), "{error:?}");
        }
    }
    // No more than 100 consecutive failures: the 101st try is refused from any client.
    let capped = h
        .service
        .login(RESIDENT, password, &from("192.0.2.10"))
        .await
        .unwrap_err();
    assert_eq!(codes(&capped), ["login.throttled"]);
    // The owner proves the mailbox: a completed recovery lifts the cap.
    h.advance(MINUTE);
    h.service.request_recovery(RESIDENT, &ru()).await.unwrap();
    let link = h.link_token(RESIDENT, LetterKind::RecoverPassword);
    h.service
        .complete_recovery(&link, &from("192.0.2.10"))
        .await
        .unwrap();
    h.service
        .login(RESIDENT, h.mailed_password(RESIDENT), &from("192.0.2.10"))
        .await
        .expect("recovery cleared the cabinet's cap");
}

/// Tries refused by the per-client limits never reach the cabinet-wide cap: one client
/// hammering a cabinet 150 times fills only its own limit, and the owner, from a client
/// that has not failed, still logs in (found by the black-box attack run).
#[tokio::test]
async fn refused_tries_from_one_client_do_not_fill_the_cabinet_wide_cap() {
    let h = harness();
    let password = h
        .register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    let mut answers = std::collections::BTreeMap::new();
    for _ in 0..150 {
        let error = h
            .service
            .login(RESIDENT, secret("guess"), &from("198.51.100.66"))
            .await
            .unwrap_err();
        *answers.entry(codes(&error).join(",")).or_insert(0) += 1;
    }
    assert_eq!(answers.get("login.invalid_credentials"), Some(&5));
    assert_eq!(answers.get("login.throttled"), Some(&145));
    h.service
        .login(RESIDENT, password, &from("203.0.113.9"))
        .await
        .expect("the owner's client is not locked out");
}

#[tokio::test]
async fn one_letter_a_minute_and_ten_a_day_per_address_across_every_journey() {
    let h = harness();
    // A confirmation letter to an address, then a recovery letter asked for it: the
    // second waits, exactly as it does for an address nobody registered.
    h.service
        .register(&form("Иванов", FLAT, "a@example.org"), &ru())
        .await
        .unwrap();
    h.service
        .request_recovery("b@example.org", &ru())
        .await
        .unwrap();
    for to in ["a@example.org", "b@example.org"] {
        let error = h.service.request_recovery(to, &ru()).await.unwrap_err();
        assert_eq!(codes(&error), ["request.too_many"], "{to}");
        assert_eq!(error.retry_after(), Some(MINUTE), "{to}");
    }
    // Ten letters a day to one address, whatever asks for them.
    let mut sent = 1;
    for round in 0..12 {
        h.advance(MINUTE);
        let answer = if round % 2 == 0 {
            h.service.request_recovery("a@example.org", &ru()).await
        } else {
            h.service
                .register(&form("Иванов", PARKING, "a@example.org"), &ru())
                .await
        };
        match answer {
            Ok(()) => sent += 1,
            Err(error) => assert_eq!(codes(&error), ["request.too_many"]),
        }
    }
    assert!(sent <= 10, "{sent} letters in a day");
}

/// A refused address (5xx) no longer reaches the answer — the letter is queued and the
/// answer never waits for the mail server — but makes a dead letter, which operators see.
#[tokio::test]
async fn a_refused_address_makes_a_dead_letter_the_operators_see() {
    let h = harness();
    h.mailer.set_refusing(true);
    h.service
        .register(&form("Иванов", FLAT, RESIDENT), &ru())
        .await
        .expect("the answer never depends on the mail server");
    assert!(h.letters_to(RESIDENT, LetterKind::ConfirmEmail).is_empty());
    let report = h
        .service
        .admin()
        .find(&resident_auth::admin::Lookup::Email(email(RESIDENT)))
        .await
        .unwrap();
    assert_eq!((report.letters_queued, report.letters_dead), (0, 1));
    assert_eq!(report.letters[0].kind, "confirm_email");
    assert_eq!(report.letters[0].status, "dead");
    assert_eq!(report.letters[0].last_error.as_deref(), Some("permanent"));
    // The operator's resend, once the address takes mail, goes out.
    h.mailer.set_refusing(false);
    h.service
        .admin()
        .resend_confirmation(
            &resident_auth::admin::Lookup::Email(email(RESIDENT)),
            &"support".parse().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(h.letters_to(RESIDENT, LetterKind::ConfirmEmail).len(), 1);
}

/// A mailer that holds credentials letters until released, passing the rest through.
struct HeldCredentials {
    inner: std::sync::Arc<dyn resident_auth::ports::Mailer>,
    arrived: std::sync::Arc<tokio::sync::Notify>,
    release: std::sync::Arc<tokio::sync::Notify>,
}

#[async_trait::async_trait]
impl resident_auth::ports::Mailer for HeldCredentials {
    async fn send(
        &self,
        letter: &resident_auth::letters::Letter,
    ) -> Result<(), resident_auth::ports::MailError> {
        if letter.content.kind() == LetterKind::Credentials {
            self.arrived.notify_one();
            self.release.notified().await;
        }
        self.inner.send(letter).await
    }
}

/// While one request issues credentials under a recovery link (its letter on the way), a
/// second use of the link is told to wait (429 `request.too_many` with the lease's time),
/// not given a second password; once the first finishes, the link is spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_link_in_use_answers_wait_and_issues_one_password() {
    let arrived = std::sync::Arc::new(tokio::sync::Notify::new());
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let (a, r) = (arrived.clone(), release.clone());
    let h = harness_with(config(), move |store, mailer| {
        let held: std::sync::Arc<dyn resident_auth::ports::Mailer> =
            std::sync::Arc::new(HeldCredentials {
                inner: mailer,
                arrived: a,
                release: r,
            });
        (store, held)
    });
    // The activation's credentials letter passes at once.
    let activation_letter = {
        let (arrived, release) = (arrived.clone(), release.clone());
        tokio::spawn(async move {
            arrived.notified().await;
            release.notify_one();
        })
    };
    h.register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    activation_letter.await.unwrap();
    h.advance(MINUTE);
    h.service.request_recovery(RESIDENT, &ru()).await.unwrap();
    let link = h.link_token(RESIDENT, LetterKind::RecoverPassword);
    let first = {
        let (service, link) = (h.service.clone(), link.clone());
        tokio::spawn(async move { service.complete_recovery(&link, &ru()).await })
    };
    arrived.notified().await;
    let second = h.service.complete_recovery(&link, &ru()).await.unwrap_err();
    assert_eq!(codes(&second), ["request.too_many"]);
    assert_eq!(second.kind(), ErrorKind::Throttled);
    assert!(second.retry_after().is_some_and(|wait| wait <= MINUTE));
    release.notify_one();
    first
        .await
        .unwrap()
        .expect("the first use issues the password");
    let spent = h.service.complete_recovery(&link, &ru()).await.unwrap_err();
    assert_eq!(codes(&spent), ["link.invalid"]);
    assert_eq!(h.letters_to(RESIDENT, LetterKind::Credentials).len(), 2);
}

/// A hasher whose next `verify` waits, once it has begun, until the test lets it go.
struct HeldVerify {
    inner: resident_auth::Argon2Hasher,
    armed: std::sync::atomic::AtomicBool,
    entered: std::sync::Arc<tokio::sync::Notify>,
    release: std::sync::Arc<tokio::sync::Notify>,
}

#[async_trait::async_trait]
impl resident_auth::ports::CredentialHasher for HeldVerify {
    async fn hash(
        &self,
        password: resident_auth::secrecy::SecretString,
    ) -> Result<resident_auth::ports::HashedPassword, resident_auth::ports::HashError> {
        self.inner.hash(password).await
    }

    async fn verify(
        &self,
        password: resident_auth::secrecy::SecretString,
        stored: Option<resident_auth::ports::HashedPassword>,
    ) -> Result<resident_auth::ports::Verification, resident_auth::ports::HashError> {
        let verdict = self.inner.verify(password, stored).await;
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.entered.notify_one();
            self.release.notified().await;
        }
        verdict
    }
}

/// A login whose argon2 verification of the old password is still running when a
/// recovery commits new credentials keeps no session (defect 1 of the tests issue: the
/// session is opened at the credential version read before verifying, never a later one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_verifying_while_a_recovery_commits_keeps_no_session() {
    use resident_auth::{memory::*, AuthService, RegistrationForm};
    let entered = std::sync::Arc::new(tokio::sync::Notify::new());
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let hasher = std::sync::Arc::new(HeldVerify {
        inner: fast_hasher(),
        armed: std::sync::atomic::AtomicBool::new(false),
        entered: entered.clone(),
        release: release.clone(),
    });
    let mailer = RecordingMailer::new();
    let clock = std::sync::Arc::new(resident_auth::ports::ManualClock::new(start()));
    let (service, _background) = AuthService::builder("https://portal.example.org")
        .store(MemoryStore::new())
        .directory(MemoryDirectory::from_csv(DIRECTORY).unwrap())
        .mailer(mailer.clone())
        .hasher(HeldVerifyHandle(hasher.clone()))
        .clock(clock.clone())
        .configure(|c| c.delivery.in_request = true)
        .build()
        .unwrap();
    let form = RegistrationForm {
        surname: "Иванов".into(),
        account_number: FLAT.into(),
        email: RESIDENT.into(),
    };
    let old = register_by_mail(&service, &mailer, &form, "12", &ru())
        .await
        .unwrap();
    clock.advance(MINUTE);
    hasher
        .armed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let login = {
        let (service, old) = (service.clone(), old.clone());
        tokio::spawn(async move { service.login(RESIDENT, old, &ru()).await })
    };
    entered.notified().await;
    service.request_recovery(RESIDENT, &ru()).await.unwrap();
    let link = link_token(
        &mailer
            .last(&RESIDENT.parse().unwrap(), LetterKind::RecoverPassword)
            .unwrap(),
    )
    .unwrap();
    service.complete_recovery(&link, &ru()).await.unwrap();
    release.notify_one();
    match login.await.unwrap() {
        Err(error) => assert!(error.is_retryable() || !error.problems().is_empty()),
        Ok(logged_in) => assert_eq!(
            codes(
                &service
                    .authenticate(logged_in.session_token.expose())
                    .await
                    .unwrap_err()
            ),
            ["session.invalid"],
            "a session opened with the replaced password"
        ),
    }
}

/// The shared hasher as the builder takes it.
struct HeldVerifyHandle(std::sync::Arc<HeldVerify>);

#[async_trait::async_trait]
impl resident_auth::ports::CredentialHasher for HeldVerifyHandle {
    async fn hash(
        &self,
        password: resident_auth::secrecy::SecretString,
    ) -> Result<resident_auth::ports::HashedPassword, resident_auth::ports::HashError> {
        self.0.hash(password).await
    }

    async fn verify(
        &self,
        password: resident_auth::secrecy::SecretString,
        stored: Option<resident_auth::ports::HashedPassword>,
    ) -> Result<resident_auth::ports::Verification, resident_auth::ports::HashError> {
        self.0.verify(password, stored).await
    }
}
