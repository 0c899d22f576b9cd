//! The schema on its own, and concurrent writers within and across service instances.

use super::*;

#[tokio::test]
async fn migrations_run_twice_harmlessly_in_a_schema_of_their_own() {
    let url = fresh_database().await;
    let pool = pool(&url, 2).await;
    migrate(&pool).await.unwrap();
    migrate(&pool).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
          WHERE table_schema = 'resident_auth' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "audit",
            "cabinet_accounts",
            "cabinets",
            "counters",
            "directory",
            "events",
            "letters",
            "links",
            "migrations",
            "sessions"
        ]
    );
    let public: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(public, 0, "nothing outside the library's schema");
    let ledger: i64 = sqlx::query_scalar("SELECT count(*) FROM resident_auth.migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    let shipped = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count();
    assert_eq!(
        usize::try_from(ledger).unwrap(),
        shipped,
        "each shipped migration once"
    );
}

#[tokio::test]
async fn the_schema_enforces_the_invariants_itself() {
    let url = fresh_database().await;
    let pool = pool(&url, 2).await;
    let cabinet = |id: u8, email: &'static str| {
        sqlx::query(
            "INSERT INTO resident_auth.cabinets (id, email, password_hash, credential_version, version)
             VALUES ($1, $2, '$argon2id$x', 1, 1)",
        )
        .bind(vec![id; 16])
        .bind(email)
    };
    cabinet(1, "a@example.org").execute(&pool).await.unwrap();
    cabinet(2, "b@example.org").execute(&pool).await.unwrap();
    assert!(
        cabinet(3, "a@example.org").execute(&pool).await.is_err(),
        "one cabinet per email"
    );
    let link = |id: u8| {
        sqlx::query(
            "INSERT INTO resident_auth.cabinet_accounts (account_number, cabinet_id, position)
             VALUES ('7800000000001', $1, 1)",
        )
        .bind(vec![id; 16])
    };
    link(1).execute(&pool).await.unwrap();
    assert!(
        link(2).execute(&pool).await.is_err(),
        "an account in one cabinet only"
    );
    assert!(link(9).execute(&pool).await.is_err(), "foreign key");
    assert!(sqlx::query(
        "INSERT INTO resident_auth.cabinets (id, email, password_hash, credential_version, version)
         VALUES ($1, 'c@example.org', 'plaintext', 1, 1)"
    )
    .bind(vec![4u8; 16])
    .execute(&pool)
    .await
    .is_err(), "only argon2id hashes");
    assert!(sqlx::query(
        "INSERT INTO resident_auth.sessions (token_hash, session_id, cabinet_id, credential_version,
             created_at, last_used, expires_at, version)
         VALUES ('short', $1, $1, 1, 0, 0, 0, 1)"
    )
    .bind(vec![1u8; 16])
    .execute(&pool)
    .await
    .is_err(), "tokens are 32-byte digests");
}

/// Counters written before migration 6 get the subject their key was written with, so the
/// operators' lookups by subject still find them
/// (`resident_auth::testing::counters_from_before_subjects_are_found`); and a key must end
/// with its subject.
#[tokio::test]
async fn counters_from_before_subjects_keep_theirs_through_the_migration() {
    use resident_auth::testing::{
        counters_from_before_subjects_are_found, COUNTERS_BEFORE_SUBJECTS,
    };
    let url = fresh_database().await;
    let pool = pool(&url, 2).await;
    migrate(&pool).await.unwrap();
    sqlx::raw_sql(
        "ALTER TABLE resident_auth.counters DROP COLUMN subject;
         DELETE FROM resident_auth.migrations WHERE version = 6;",
    )
    .execute(&pool)
    .await
    .unwrap();
    for (key, count) in COUNTERS_BEFORE_SUBJECTS {
        sqlx::query(
            "INSERT INTO resident_auth.counters (key, count, window_ends)
             VALUES ($1, $2, 9000000000000)",
        )
        .bind(key)
        .bind(i32::try_from(count).unwrap())
        .execute(&pool)
        .await
        .unwrap();
    }
    migrate(&pool).await.unwrap();
    counters_from_before_subjects_are_found(&PgStore::new(pool.clone())).await;
    let refused = sqlx::query(
        "INSERT INTO resident_auth.counters (key, subject, count, window_ends)
         VALUES ('login:cabinet:a@example.org', 'b@example.org', 1, 0)",
    )
    .execute(&pool)
    .await;
    assert!(refused.is_err(), "a key must end with its subject");
}

#[tokio::test]
async fn fifty_concurrent_consumers_of_one_link_let_exactly_one_win() {
    let url = fresh_database().await;
    let store = PgStore::new(pool(&url, 50).await);
    let token = Token::generate().hash();
    let link = Link {
        purpose: LinkPurpose::Confirmation,
        email: RESIDENT.parse().unwrap(),
        account_number: Some("7800000000001".parse().unwrap()),
        cabinet: None,
        credential_version: None,
        expires_at: start().plus(Duration::from_secs(3600)),
        issuing_until: None,
    };
    assert!(store
        .swap_link(&token, Expected::Absent, Some((&token, &link)), None)
        .await
        .unwrap());
    let version = store.link(&token).await.unwrap().unwrap().version;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = store.clone();
            let link = link.clone();
            tokio::spawn(async move {
                let next = Token::generate().hash();
                store
                    .swap_link(
                        &token,
                        Expected::Version(version),
                        Some((&next, &link)),
                        None,
                    )
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        if task
            .await
            .unwrap()
            .expect("a loser is told false, not an error")
        {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn twenty_concurrent_registrations_of_one_email_and_of_one_account_let_one_win() {
    let (url, _pool) = database_with_directory().await;
    let clock = Arc::new(ManualClock::new(start()));
    let one = instance(&url, clock.clone(), RecordingMailer::new()).await;
    let other = instance(&url, clock, RecordingMailer::new()).await;
    // Two instances, alternating: the database decides.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let service = if i % 2 == 0 {
                one.service.clone()
            } else {
                other.service.clone()
            };
            let account = if i % 2 == 0 {
                "7800000000001"
            } else {
                "7800000000002"
            };
            tokio::spawn(async move { service.register(&form(account), &ctx()).await })
        })
        .collect();
    let mut started = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => started += 1,
            Err(error) => assert!(
                matches!(error.problems(), [Problem::TooManyRequests { .. }]),
                "a loser is told to wait for the letter's cooldown: {error:?}"
            ),
        }
    }
    assert_eq!(started, 1, "one email");
    assert_eq!(one.mailer.letters().len() + other.mailer.letters().len(), 1);

    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let service = if i % 2 == 0 {
                one.service.clone()
            } else {
                other.service.clone()
            };
            tokio::spawn(async move {
                // An account the first race did not touch.
                let registration = RegistrationForm {
                    surname: "Иванов".into(),
                    account_number: "7800000000003".into(),
                    email: format!("someone{i}@example.org"),
                };
                service.register(&registration, &ctx()).await
            })
        })
        .collect();
    let mut started = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => started += 1,
            Err(error) => assert!(
                matches!(error.problems(), [Problem::TooManyRequests { .. }]),
                "a loser waits for the account's letter cooldown or daily cap: {error:?}"
            ),
        }
    }
    assert_eq!(started, 1, "one account");
}

#[tokio::test]
async fn two_instances_share_one_login_throttle_and_one_activation_limit() {
    let (url, _pool) = database_with_directory().await;
    let clock = Arc::new(ManualClock::new(start()));
    let mailer = RecordingMailer::new();
    let a = instance(&url, clock.clone(), mailer.clone()).await;
    let b = instance(&url, clock.clone(), mailer.clone()).await;
    a.service
        .register(&form("7800000000001"), &ctx())
        .await
        .unwrap();
    let letter = mailer
        .last(&RESIDENT.parse().unwrap(), LetterKind::ConfirmEmail)
        .unwrap();
    let activation = b
        .service
        .confirm_email(&link_token(&letter).unwrap())
        .await
        .unwrap();
    for i in 0..4 {
        let service = if i % 2 == 0 { &a.service } else { &b.service };
        let error = service
            .activate(activation.expose(), "13", &ctx())
            .await
            .unwrap_err();
        assert!(
            error.is(&Problem::WrongPremises {
                attempts_left: 4 - i
            }),
            "{error:?}"
        );
    }
    let locked = b
        .service
        .activate(activation.expose(), "13", &ctx())
        .await
        .unwrap_err();
    assert_eq!(
        locked.kind(),
        ErrorKind::Throttled,
        "the fifth wrong try on either instance locks"
    );
    assert_eq!(
        a.service
            .activate(activation.expose(), "12", &ctx())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Throttled
    );
    clock.advance(Duration::from_secs(15 * 60));
    a.service
        .activate(activation.expose(), "12", &ctx())
        .await
        .unwrap();
    let password = mailed_password(
        &mailer
            .last(&RESIDENT.parse().unwrap(), LetterKind::Credentials)
            .unwrap(),
    )
    .unwrap();

    for i in 0..5 {
        let service = if i % 2 == 0 { &a.service } else { &b.service };
        let error = service
            .login(RESIDENT, SecretString::from("wrong"), &ctx())
            .await
            .unwrap_err();
        assert!(error.is(&Problem::InvalidCredentials));
    }
    for service in [&a.service, &b.service] {
        let error = service
            .login(RESIDENT, password.clone(), &ctx())
            .await
            .unwrap_err();
        assert_eq!(
            error.kind(),
            ErrorKind::Throttled,
            "five failures across both instances throttle both"
        );
    }
    clock.advance(Duration::from_secs(15 * 60));
    b.service.login(RESIDENT, password, &ctx()).await.unwrap();
}
