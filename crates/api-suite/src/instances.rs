//! Several instances: a killed one leaves its letters to the next, two deliver each letter
//! once, two share sessions and throttles on Redis.

use super::*;

/// An instance is killed (SIGKILL) with letters in the queue while the mail server is
/// down; another instance, started later on the same database with the key rotated,
/// delivers them.
pub async fn a_killed_instance_leaves_its_letters_to_the_next(binary: &str) {
    let database = services::fresh_database().await;
    let port = services::free_port();
    let mut first = Server::start(binary, &queue_variables(&database, port)).await;
    let (status, body) = register(&first, "7800000000001", RESIDENT).await;
    assert_eq!(status, 202, "{body}");
    first.kill().await;
    let smtp = services::SmtpSink::start_on(Some(port)).await;
    // The next instance comes up with the key rotated: a new MAIL_QUEUE_KEY, the old one
    // kept as MAIL_QUEUE_OLD_KEY to open what it sealed.
    let mut rotated = queue_variables(&database, port);
    rotated.retain(|(name, _)| *name != "MAIL_QUEUE_KEY");
    rotated.push((
        "MAIL_QUEUE_KEY",
        "iCdSOmvhJI/UgTWr4mYF8He6urVlPzejyJ1oiSvU+zQ=".to_owned(),
    ));
    rotated.push(("MAIL_QUEUE_OLD_KEY", MAIL_QUEUE_KEY.to_owned()));
    let _second = Server::start(binary, &rotated).await;
    let arrived = wait_for_mail(&smtp.maildir, 1).await;
    assert_eq!(arrived[0].0, "Подтверждение e-mail");
}

/// Two instances on one database deliver 200 queued letters: each arrives exactly once.
pub async fn two_instances_deliver_each_letter_once(binary: &str) {
    use resident_auth::{ports::Expected, ports::LinkStore as _};
    const LETTERS: usize = 200;
    let database = services::fresh_database().await;
    let pool = sqlx::PgPool::connect(&database).await.unwrap();
    resident_auth_postgres::migrate(&pool).await.unwrap();
    let store = resident_auth_postgres::PgStore::new(pool.clone());
    let keys = resident_auth::mail::MailQueueKeys::new(MAIL_QUEUE_KEY.parse().unwrap());
    let now = resident_auth::Timestamp::from_millis(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap(),
    );
    // 200 letters queued with 200 recovery links, as 200 requests would have left them.
    for i in 0..LETTERS {
        let to: resident_auth::Email = format!("resident-{i:03}@example.org").parse().unwrap();
        let token = resident_auth::ports::Token::generate();
        let letter = resident_auth::letters::Letter {
            to: to.clone(),
            locale: resident_auth::Locale::Ru,
            content: resident_auth::letters::LetterContent::RecoverPassword {
                link: resident_auth::secrecy::SecretString::from(format!(
                    "http://127.0.0.1/recover?token={}",
                    token.expose()
                )),
            },
        };
        let id = resident_auth::mail::LetterId::generate();
        let queued = resident_auth::mail::QueuedLetter {
            id,
            to: to.clone(),
            cabinet: None,
            kind: resident_auth::letters::LetterKind::RecoverPassword,
            sealed: Some(keys.seal(&id, &letter)),
            status: resident_auth::mail::LetterStatus::Queued,
            attempts: 0,
            queued_at: now,
            next_attempt_at: now,
            give_up_at: now.plus(Duration::from_secs(3600)),
            keep_until: None,
            last_error: None,
        };
        let link = resident_auth::ports::Link {
            purpose: resident_auth::ports::LinkPurpose::Recovery,
            email: to,
            account_number: None,
            cabinet: None,
            credential_version: Some(1),
            expires_at: now.plus(Duration::from_secs(3600)),
            issuing_until: None,
        };
        let hash = token.hash();
        assert!(store
            .swap_link(&hash, Expected::Absent, Some((&hash, &link)), Some(&queued))
            .await
            .unwrap());
    }
    let smtp = services::SmtpSink::start().await;
    let port: u16 = smtp
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let variables = queue_variables(&database, port);
    let (_one, _two) = tokio::join!(
        Server::start(binary, &variables),
        Server::start(binary, &variables)
    );
    wait_for_mail(&smtp.maildir, LETTERS).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let arrived = letters_in(&smtp.maildir);
    assert_eq!(arrived.len(), LETTERS, "a letter was sent twice");
    let mut recipients: Vec<String> = std::fs::read_dir(&smtp.maildir)
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            (path.extension()? == "json").then(|| std::fs::read_to_string(path).unwrap())
        })
        .map(|meta| serde_json::from_str::<Value>(&meta).unwrap()["rcpt_tos"].to_string())
        .collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(
        recipients.len(),
        LETTERS,
        "each recipient got exactly one letter"
    );
    let sent: i64 =
        sqlx::query_scalar("SELECT count(*) FROM resident_auth.letters WHERE status = 'sent'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(sent, i64::try_from(LETTERS).unwrap());
}

/// Two instances on one PostgreSQL database with `REDIS_URL`: a session opened on one is
/// live on the other and ended there for both; wrong passwords sent to both instances in
/// turn meet one shared throttle; and neither sessions nor counters are in PostgreSQL.
pub async fn two_instances_share_sessions_and_limits_on_redis(binary: &str) {
    let database = services::fresh_database().await;
    let outbox = tempfile::tempdir().unwrap();
    let prefix = format!("suite-{}", std::process::id());
    let variables = [
        ("DATABASE_URL", database.clone()),
        ("MAIL_QUEUE_KEY", MAIL_QUEUE_KEY.to_owned()),
        (
            "OUTBOX_DIR",
            outbox.path().join("outbox").display().to_string(),
        ),
        ("REDIS_URL", services::redis_url().to_owned()),
        ("REDIS_PREFIX", format!("{prefix}-{}", binary.len())),
    ];
    let (mut one, mut two) = tokio::join!(
        Server::start(binary, &variables),
        Server::start(binary, &variables)
    );
    one.outbox = outbox.path().join("outbox");
    two.outbox = outbox.path().join("outbox");
    let password = activate(&one, "7800000000001", RESIDENT, "12").await;
    let session = login(&one, RESIDENT, &password).await;
    let (status, body, _) = two.get("/api/session", Some(&session)).await;
    assert_eq!(
        status, 200,
        "the session is live on the other instance: {body}"
    );
    let pool = sqlx::PgPool::connect(&database).await.unwrap();
    for table in ["sessions", "counters"] {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM resident_auth.{table}"))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(
            rows, 0,
            "nothing in PostgreSQL's {table}: they are in Redis"
        );
    }
    let mut throttled_at = None;
    for attempt in 0..40 {
        let server = if attempt % 2 == 0 { &one } else { &two };
        let (status, body, _) = server
            .post(
                "/api/login",
                json!({"email": RESIDENT, "password": "not the password at all"}),
                None,
            )
            .await;
        if status == 429 {
            throttled_at = Some(attempt);
            break;
        }
        assert_eq!(status, 401, "{body}");
    }
    let throttled_at = throttled_at.expect("the shared throttle");
    let other = if throttled_at % 2 == 0 { &two } else { &one };
    let (status, body, _) = other
        .post(
            "/api/login",
            json!({"email": RESIDENT, "password": "not the password at all"}),
            None,
        )
        .await;
    assert_eq!(status, 429, "the other instance throttles too: {body}");
    let (status, _, _) = two.post("/api/logout", json!({}), Some(&session)).await;
    assert_eq!(status, 204);
    let (status, _, _) = one.get("/api/session", Some(&session)).await;
    assert_eq!(status, 401, "ended on one instance, ended on both");
}
