//! Concurrency and races: one winner per conflicting write, every increment counted, and
//! the journeys that race each other; session checks, password change, sessions,
//! temporary passwords.

use super::*;

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
