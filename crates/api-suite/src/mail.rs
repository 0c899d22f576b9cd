//! The mail queue through the examples: outages never reach the answers, letters wait and
//! arrive once.

use super::*;

/// The mail server is down (nothing listens at `SMTP_URL`): registration and recovery
/// answer as usual — the letters wait in the queue — and nothing asks to retry.
pub async fn a_mail_outage_never_reaches_the_answers(binary: &str) {
    let closed = services::free_port();
    let smtp = format!("smtp://127.0.0.1:{closed}?tls=none&timeout=2");
    let server = Server::start(binary, &[("SMTP_URL", smtp)]).await;
    let (status, body) = register(&server, "7800000000001", RESIDENT).await;
    assert_eq!(status, 202, "{body}");
    let (status, body, _) = server
        .post(
            "/api/recovery",
            json!({"email": "someone@example.org"}),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
}

/// The letters queued for `to` in the database at `url`: (kind, status, attempts, the
/// letter opened with the checks' key while it is queued).
pub(crate) async fn queued_letters(
    pool: &sqlx::PgPool,
    to: &str,
) -> Vec<(String, String, i32, Option<resident_auth::letters::Letter>)> {
    let keys = resident_auth::mail::MailQueueKeys::new(MAIL_QUEUE_KEY.parse().unwrap());
    type Row = (Vec<u8>, String, String, i32, Option<Vec<u8>>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, kind, status, attempts, sealed FROM resident_auth.letters
          WHERE recipient = $1 ORDER BY queued_at",
    )
    .bind(to)
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(id, kind, status, attempts, sealed)| {
            let id = resident_auth::mail::LetterId::from_bytes(id.try_into().unwrap());
            let letter = sealed.map(|sealed| {
                keys.open(&id, &resident_auth::mail::SealedLetter::from_bytes(sealed))
                    .unwrap()
            });
            (kind, status, attempts, letter)
        })
        .collect()
}

/// The newest queued letter of `kind` to `to`, opened.
pub(crate) async fn queued(
    pool: &sqlx::PgPool,
    to: &str,
    kind: &str,
) -> resident_auth::letters::Letter {
    queued_letters(pool, to)
        .await
        .into_iter()
        .rev()
        .find(|(k, status, _, _)| k == kind && status == "queued")
        .and_then(|(_, _, _, letter)| letter)
        .unwrap_or_else(|| panic!("no queued {kind} letter to {to}"))
}

/// Waits (bounded) until `maildir` holds `count` letters.
pub(crate) async fn wait_for_mail(maildir: &Path, count: usize) -> Vec<(String, String)> {
    for _ in 0..300 {
        let letters = letters_in(maildir);
        if letters.len() >= count {
            return letters;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{count} letters did not arrive in 30 s: {:?}",
        letters_in(maildir)
    );
}

pub(crate) fn queue_variables(database: &str, smtp_port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", database.to_owned()),
        (
            "SMTP_URL",
            format!("smtp://127.0.0.1:{smtp_port}?tls=none&timeout=2"),
        ),
        ("MAIL_QUEUE_KEY", MAIL_QUEUE_KEY.to_owned()),
        ("MAIL_DELIVERY", "worker".to_owned()),
        ("MAIL_RETRY_FIRST_MS", "200".to_owned()),
        // A letter claimed by an instance killed mid-delivery is due again after this.
        ("MAIL_CLAIM_SECONDS", "3".to_owned()),
    ]
}

/// The mail server is down for a whole journey — register, confirm, activate, log in,
/// recover — on PostgreSQL, with the delivery worker: every answer is as usual; the
/// letters wait in the queue (read here with the key, as the resident would read them
/// later), and no column holds a token or a password in clear meanwhile. When the server
/// comes up, every letter arrives, each once; a 4xx recipient is retried, a 5xx one is a
/// dead letter.
pub async fn letters_wait_out_a_mail_outage_on_postgres_and_smtp(binary: &str) {
    let database = services::fresh_database().await;
    let port = services::free_port();
    let server = Server::start(binary, &queue_variables(&database, port)).await;
    let pool = sqlx::PgPool::connect(&database).await.unwrap();
    let post = |path: &'static str, body: Value| server.post(path, body, None);
    let (status, body, _) = post(
        "/api/registrations",
        registration("7800000000001", RESIDENT),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let letter = queued(&pool, RESIDENT, "confirm_email").await;
    let confirmation = resident_auth::memory::link_token(&letter).unwrap();
    let (status, body, _) =
        post("/api/registrations/confirm", json!({"token": confirmation})).await;
    assert_eq!(status, 200, "{body}");
    let activation = body["activation_token"].as_str().unwrap().to_owned();
    let (status, body, _) = post(
        "/api/registrations/activate",
        json!({"activation_token": activation, "premises": "12"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let letter = queued(&pool, RESIDENT, "credentials").await;
    let password = resident_auth::memory::mailed_password(&letter).unwrap();
    use resident_auth::secrecy::ExposeSecret as _;
    let password = password.expose_secret().to_owned();
    login(&server, RESIDENT, &password).await;
    let (status, body, _) = post("/api/recovery", json!({"email": RESIDENT})).await;
    assert_eq!(status, 202, "{body}");
    let letter = queued(&pool, RESIDENT, "recover_password").await;
    let recovery = resident_auth::memory::link_token(&letter).unwrap();
    // A recipient the server will answer 451 (retried) and one it will answer 550 (dead).
    for (account, email) in [
        ("7800000000003", "busy-1@example.org"),
        ("7800000000004", "reject-1@example.org"),
    ] {
        let body = json!({"surname": if account.ends_with('3') { "Петрова" } else { "Семёнов" },
                          "account_number": account, "email": email});
        let (status, answer, _) = post("/api/registrations", body).await;
        assert_eq!(status, 202, "{answer}");
    }
    // While they wait: no column holds a token, a link or the password in clear.
    for secret in [&confirmation, &recovery, &password] {
        assert_eq!(
            services::columns_mentioning(&pool, secret).await,
            Vec::<String>::new(),
            "a secret of a queued letter is stored in clear"
        );
    }
    let waiting = queued_letters(&pool, RESIDENT).await;
    assert_eq!(waiting.len(), 3);
    assert!(waiting
        .iter()
        .all(|(_, status, attempts, _)| status == "queued" && *attempts >= 1));
    // The mail server comes up on the port the portal was told of.
    let smtp = services::SmtpSink::start_on(Some(port)).await;
    let arrived = wait_for_mail(&smtp.maildir, 3).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let arrived_later = letters_in(&smtp.maildir);
    assert_eq!(arrived_later.len(), arrived.len(), "a letter arrived twice");
    let subjects: Vec<&str> = arrived_later.iter().map(|(s, _)| s.as_str()).collect();
    for subject in ["Данные для входа", "Восстановление пароля"] {
        assert_eq!(
            subjects.iter().filter(|s| **s == subject).count(),
            1,
            "{subjects:?}"
        );
    }
    // The resident's confirmation, and the 451 recipient's is not among them.
    assert_eq!(
        subjects
            .iter()
            .filter(|s| **s == "Подтверждение e-mail")
            .count(),
        1,
        "{subjects:?}"
    );
    let after: Vec<_> = queued_letters(&pool, RESIDENT).await;
    assert!(after
        .iter()
        .all(|(_, status, _, letter)| status == "sent" && letter.is_none()));
    let busy = queued_letters(&pool, "busy-1@example.org").await;
    assert_eq!(busy[0].1, "queued", "a 4xx answer is retried");
    assert!(busy[0].2 >= 2, "{busy:?}");
    let rejected = queued_letters(&pool, "reject-1@example.org").await;
    assert_eq!(rejected[0].1, "dead", "a 5xx answer makes a dead letter");
    assert!(rejected[0].3.is_none(), "a dead letter keeps no content");
    // The residents' events are in the table, by kind, without the email.
    let events: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT kind, outcome, account_number FROM resident_auth.events ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for kind in [
        "registered",
        "confirmed",
        "activated",
        "login_succeeded",
        "recovery_requested",
        "letter_dead",
    ] {
        assert!(
            events.iter().any(|(k, _, _)| k == kind),
            "no {kind} event: {events:?}"
        );
    }
    assert!(events.iter().any(|(k, outcome, account)| k == "registered"
        && outcome == "succeeded"
        && account.as_deref() == Some("7800000000001")));
    assert_eq!(
        services::columns_mentioning(&pool, RESIDENT)
            .await
            .iter()
            .filter(|column| column.starts_with("events."))
            .count(),
        0,
        "an event names the resident's email"
    );
    // The links work: the recovery link issues a new password, mailed.
    let (status, body, _) = post("/api/recovery/complete", json!({"token": recovery})).await;
    assert!(status == 200 || status == 202, "{status} {body}");
}
