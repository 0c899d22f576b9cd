//! Connections dropped inside writes: nothing partial is left, and the step succeeds on retry.

use super::*;

#[tokio::test]
async fn a_connection_dropped_mid_transaction_leaves_no_partial_rows_and_the_step_can_be_retried() {
    let (url, pool) = database_with_directory().await;
    let clock = Arc::new(ManualClock::new(start()));
    let mailer = RecordingMailer::new();
    let portal = instance(&url, clock, mailer.clone()).await;
    let email = RESIDENT.parse().unwrap();
    portal
        .service
        .register(&form("7800000000001"), &ctx())
        .await
        .unwrap();
    let confirmation = link_token(&mailer.last(&email, LetterKind::ConfirmEmail).unwrap()).unwrap();
    let activation = portal.service.confirm_email(&confirmation).await.unwrap();

    // The backend that links the account kills its own connection, halfway through the
    // transaction that consumes the token and creates the cabinet.
    sqlx::query(
        "CREATE FUNCTION drop_connection() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("CREATE TRIGGER drop_connection BEFORE INSERT ON resident_auth.cabinet_accounts FOR EACH ROW EXECUTE FUNCTION drop_connection()")
        .execute(&pool)
        .await
        .unwrap();
    let error = portal
        .service
        .activate(activation.expose(), "12", &ctx())
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Unavailable(Unavailable::Store(_))),
        "{error:?}"
    );
    assert!(error.is_retryable());
    let count = |table: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(&format!("SELECT count(*) FROM resident_auth.{table}"))
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(count("cabinets").await, 0, "no cabinet without its account");
    assert_eq!(count("cabinet_accounts").await, 0);
    assert_eq!(count("links").await, 1, "the link was not consumed");

    sqlx::query("DROP TRIGGER drop_connection ON resident_auth.cabinet_accounts")
        .execute(&pool)
        .await
        .unwrap();
    portal
        .service
        .activate(activation.expose(), "12", &ctx())
        .await
        .unwrap();
    assert_eq!(count("cabinets").await, 1);
    assert_eq!(count("links").await, 0);
    let password = mailed_password(&mailer.last(&email, LetterKind::Credentials).unwrap()).unwrap();
    portal
        .service
        .login(RESIDENT, password, &ctx())
        .await
        .unwrap();
}
/// Installs (or removes) a trigger that kills its own backend's connection at the first
/// row written to `table`: the connection drops inside that statement's transaction.
async fn drop_connections_writing(pool: &PgPool, table: &str, on: bool) {
    sqlx::query(
        "CREATE OR REPLACE FUNCTION drop_connection() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$",
    )
    .execute(pool)
    .await
    .unwrap();
    let statement = if on {
        format!("CREATE TRIGGER drop_connection BEFORE INSERT OR UPDATE OR DELETE ON resident_auth.{table} FOR EACH ROW EXECUTE FUNCTION drop_connection()")
    } else {
        format!("DROP TRIGGER drop_connection ON resident_auth.{table}")
    };
    sqlx::query(&statement).execute(pool).await.unwrap();
}

/// The rows of every table, to compare states.
async fn snapshot(pool: &PgPool) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "cabinets",
        "cabinet_accounts",
        "links",
        "sessions",
        "counters",
        "directory",
    ] {
        counts.push(
            sqlx::query_scalar::<_, i64>(&format!("SELECT count(*) FROM resident_auth.{table}"))
                .fetch_one(pool)
                .await
                .unwrap(),
        );
    }
    counts
}

/// A connection dropped inside the transaction of every table's writes, at every step
/// that writes it: the step answers a retryable error, the database is as before (no
/// partial rows), and the same step then succeeds.
#[tokio::test]
async fn a_connection_dropped_inside_any_write_leaves_nothing_behind_and_the_step_succeeds_on_retry(
) {
    for (table, step) in [
        ("counters", "register"),
        ("links", "register"),
        ("links", "confirm"),
        ("cabinets", "activate"),
        ("cabinet_accounts", "activate"),
        ("sessions", "login"),
        ("sessions", "logout"),
        ("directory", "import"),
    ] {
        let (url, pool) = database_with_directory().await;
        let clock = Arc::new(ManualClock::new(start()));
        let mailer = RecordingMailer::new();
        let portal = instance(&url, clock, mailer.clone()).await;
        let email = RESIDENT.parse().unwrap();
        // Everything before the step under test.
        let mut activation = None;
        let mut session = None;
        if step != "register" && step != "import" {
            portal
                .service
                .register(&form("7800000000001"), &ctx())
                .await
                .unwrap();
            let link = link_token(&mailer.last(&email, LetterKind::ConfirmEmail).unwrap()).unwrap();
            if step != "confirm" {
                activation = Some(portal.service.confirm_email(&link).await.unwrap());
            }
        }
        if step == "login" || step == "logout" {
            let token = activation.take().unwrap();
            portal
                .service
                .activate(token.expose(), "12", &ctx())
                .await
                .unwrap();
        }
        if step == "logout" {
            let password =
                mailed_password(&mailer.last(&email, LetterKind::Credentials).unwrap()).unwrap();
            session = Some(
                portal
                    .service
                    .login(RESIDENT, password, &ctx())
                    .await
                    .unwrap(),
            );
        }
        let run = || async {
            match step {
                "register" => portal
                    .service
                    .register(&form("7800000000001"), &ctx())
                    .await
                    .map(|_| ()),
                "confirm" => {
                    let link = link_token(&mailer.last(&email, LetterKind::ConfirmEmail).unwrap())
                        .unwrap();
                    portal.service.confirm_email(&link).await.map(|_| ())
                }
                "activate" => {
                    let token = activation.as_ref().unwrap();
                    portal
                        .service
                        .activate(token.expose(), "12", &ctx())
                        .await
                        .map(|_| ())
                }
                "login" => {
                    let password =
                        mailed_password(&mailer.last(&email, LetterKind::Credentials).unwrap())
                            .unwrap();
                    portal
                        .service
                        .login(RESIDENT, password, &ctx())
                        .await
                        .map(|_| ())
                }
                "logout" => {
                    let token = session.as_ref().unwrap().session_token.expose();
                    portal.service.logout(token).await
                }
                _ => import_directory(
                    &pool,
                    &format!("{DIRECTORY}7800000000009,Петров,\"ул. Новая, д. 9\",9\n"),
                )
                .await
                .map(|_| ())
                .map_err(|e| {
                    Error::Unavailable(Unavailable::Store(
                        resident_auth::ports::StoreError::unavailable(e.to_string()),
                    ))
                }),
            }
        };
        let before = snapshot(&pool).await;
        drop_connections_writing(&pool, table, true).await;
        let error = run().await.expect_err(&format!("{step} writing {table}"));
        assert!(error.is_retryable(), "{step} writing {table}: {error:?}");
        drop_connections_writing(&pool, table, false).await;
        // Counting a try is the one write a failed step may keep (it expires by itself).
        let mut after = snapshot(&pool).await;
        let mut expected = before.clone();
        after[4] = 0;
        expected[4] = 0;
        assert_eq!(
            after, expected,
            "{step} writing {table}: the database is as before"
        );
        run()
            .await
            .unwrap_or_else(|e| panic!("{step} after dropping inside {table}: {e:?}"));
    }
}
