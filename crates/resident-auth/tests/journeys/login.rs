//! Journeys 4 and 5: login and sessions.

use super::*;

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
        config::{Argon2Hasher, CredentialHasher as _, HashParams},
        ports::{CabinetKey, CabinetStore as _, CabinetSwap, Expected},
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
