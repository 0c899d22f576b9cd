//! The SMTP mailer against a real SMTP server (aiosmtpd) on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use common::{free_port, self_signed, SmtpServer};
use mailparse::MailHeaderMap;
use resident_auth::{
    letters::{Letter, LetterContent},
    mail::{LetterId, Mailer},
    Locale,
};
use resident_auth_smtp::{SmtpConfig, SmtpMailer};
use secrecy::SecretString;

fn letter(to: &str, locale: Locale, content: LetterContent) -> Letter {
    Letter {
        to: to.parse().unwrap(),
        locale,
        content,
    }
}

fn confirm(to: &str) -> Letter {
    letter(
        to,
        Locale::Ru,
        LetterContent::ConfirmEmail {
            link: SecretString::from("http://127.0.0.1:3000/confirm?token=AbC-123_xyz"),
        },
    )
}

fn config(url: &str) -> SmtpConfig {
    let mut config: SmtpConfig = url.parse().unwrap();
    config.timeout = Duration::from_secs(5);
    config
}

struct Parts {
    subject: String,
    to: String,
    text: String,
    html: String,
}

fn parse(raw: &[u8]) -> Parts {
    let mail = mailparse::parse_mail(raw).unwrap();
    assert_eq!(mail.ctype.mimetype, "multipart/alternative");
    let part = |mime: &str| {
        mail.subparts
            .iter()
            .find(|p| p.ctype.mimetype == mime)
            .unwrap_or_else(|| panic!("no {mime} part"))
            .get_body()
            .unwrap()
    };
    Parts {
        subject: mail.headers.get_first_value("Subject").unwrap(),
        to: mail.headers.get_first_value("To").unwrap(),
        text: part("text/plain"),
        html: part("text/html"),
    }
}

#[tokio::test]
async fn each_letter_arrives_with_its_subject_parts_and_link() {
    let server = SmtpServer::start("none", None, None).await;
    let mailer = SmtpMailer::new(&config(&format!(
        "smtp://127.0.0.1:{}?tls=none",
        server.port
    )))
    .unwrap();
    let letters = [
        confirm("resident@example.org"),
        letter(
            "resident@кабинет-жителя.рф",
            Locale::Ru,
            LetterContent::Credentials {
                login: "resident@кабинет-жителя.рф".parse().unwrap(),
                password: SecretString::from("Xk3vPq9aRt5mWz2h"),
                temporary: false,
            },
        ),
        letter(
            "resident@example.org",
            Locale::Ru,
            LetterContent::RecoverPassword {
                link: SecretString::from("http://127.0.0.1:3000/recover?token=Zz9"),
            },
        ),
        letter(
            "resident@example.org",
            Locale::En,
            LetterContent::RecoverPassword {
                link: SecretString::from("http://127.0.0.1:3000/recover?token=En1"),
            },
        ),
    ];
    for letter in &letters {
        mailer.send(&LetterId::generate(), letter).await.unwrap();
    }
    let received = server.received(4).await;
    let confirm = parse(&received[0]);
    assert_eq!(confirm.subject, "Подтверждение e-mail");
    assert_eq!(confirm.to, "resident@example.org");
    assert!(confirm
        .text
        .contains("http://127.0.0.1:3000/confirm?token=AbC-123_xyz"));
    assert!(confirm.html.contains(">Подтвердить электронный адрес</a>"));
    assert!(confirm
        .html
        .contains("href=\"http://127.0.0.1:3000/confirm?token=AbC-123_xyz\""));

    let credentials = parse(&received[1]);
    assert_eq!(credentials.subject, "Данные для входа");
    assert_eq!(
        credentials.to, "resident@xn----7sbdqbfldlsq5dd8p.xn--p1ai",
        "IDN recipients go out in ASCII"
    );
    assert!(credentials
        .text
        .lines()
        .any(|l| l == "Логин: resident@кабинет-жителя.рф"));
    assert!(credentials
        .text
        .lines()
        .any(|l| l == "Пароль: Xk3vPq9aRt5mWz2h"));

    let recovery = parse(&received[2]);
    assert_eq!(recovery.subject, "Восстановление пароля");
    assert!(recovery
        .text
        .contains("http://127.0.0.1:3000/recover?token=Zz9"));
    let english = parse(&received[3]);
    assert_eq!(english.subject, "Password recovery");
    assert!(english.html.contains("recover?token=En1"));
    assert!(
        server.metadata()[1].contains("xn----7sbdqbfldlsq5dd8p.xn--p1ai"),
        "envelope recipient in ASCII"
    );
}

#[tokio::test]
async fn starttls_with_a_certificate_the_client_trusts() {
    let tls = self_signed();
    let server = SmtpServer::start("starttls", Some(&tls), None).await;
    let url = format!("smtp://localhost:{}?tls=starttls", server.port);

    let untrusting = SmtpMailer::new(&config(&url)).unwrap();
    let error = untrusting
        .send(&LetterId::generate(), &confirm("resident@example.org"))
        .await
        .unwrap_err();
    assert!(
        error.is_retryable(),
        "an untrusted certificate is not the letter's fault: {error:?}"
    );

    let mut trusting = config(&url);
    trusting.extra_root_certificate = Some(tls.cert_pem.clone().into_bytes());
    let mailer = SmtpMailer::new(&trusting).unwrap();
    mailer
        .send(&LetterId::generate(), &confirm("resident@example.org"))
        .await
        .unwrap();
    assert_eq!(
        parse(&server.received(1).await[0]).subject,
        "Подтверждение e-mail"
    );

    // Plain text to a server that requires STARTTLS is refused, not silently sent.
    let plain = SmtpMailer::new(&config(&format!(
        "smtp://localhost:{}?tls=none",
        server.port
    )))
    .unwrap();
    assert!(plain
        .send(&LetterId::generate(), &confirm("resident@example.org"))
        .await
        .is_err());
}

#[tokio::test]
async fn implicit_tls() {
    let tls = self_signed();
    let server = SmtpServer::start("implicit", Some(&tls), None).await;
    let mut trusting = config(&format!("smtps://localhost:{}", server.port));
    trusting.extra_root_certificate = Some(tls.cert_pem.clone().into_bytes());
    SmtpMailer::new(&trusting)
        .unwrap()
        .send(&LetterId::generate(), &confirm("resident@example.org"))
        .await
        .unwrap();
    assert_eq!(server.received(1).await.len(), 1);
}

#[tokio::test]
async fn auth_accepted_and_refused() {
    let tls = self_signed();
    let server = SmtpServer::start("starttls", Some(&tls), Some("portal:s3cret")).await;
    let with = |credentials: &str| {
        let mut c = config(&format!(
            "smtp://{credentials}@localhost:{}?tls=starttls",
            server.port
        ));
        c.extra_root_certificate = Some(tls.cert_pem.clone().into_bytes());
        SmtpMailer::new(&c).unwrap()
    };
    with("portal:s3cret")
        .send(&LetterId::generate(), &confirm("resident@example.org"))
        .await
        .unwrap();
    assert!(server.metadata()[0].contains("\"authenticated\": true"));
    let refused = with("portal:wrong")
        .send(&LetterId::generate(), &confirm("resident@example.org"))
        .await
        .unwrap_err();
    assert!(
        refused.is_permanent(),
        "535 is a permanent answer: {refused:?}"
    );
    assert!(
        !format!("{refused:?} {refused}").contains("wrong"),
        "no secret in the error"
    );
}

#[tokio::test]
async fn server_down_is_a_retryable_error() {
    let port = free_port();
    let mailer = SmtpMailer::new(&config(&format!("smtp://127.0.0.1:{port}?tls=none"))).unwrap();
    let error = mailer
        .send(&LetterId::generate(), &confirm("resident@example.org"))
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    assert!(mailer.test_connection().await.unwrap_err().is_retryable());
}

#[tokio::test]
async fn rejections_are_sorted_into_permanent_and_transient() {
    let server = SmtpServer::start("none", None, None).await;
    let mailer = SmtpMailer::new(&config(&format!(
        "smtp://127.0.0.1:{}?tls=none",
        server.port
    )))
    .unwrap();
    mailer.test_connection().await.unwrap();
    let rejected = mailer
        .send(&LetterId::generate(), &confirm("reject@example.org"))
        .await
        .unwrap_err();
    assert!(rejected.is_permanent(), "550: {rejected:?}");
    let busy = mailer
        .send(&LetterId::generate(), &confirm("busy@example.org"))
        .await
        .unwrap_err();
    assert!(busy.is_retryable(), "451: {busy:?}");
    mailer
        .send(&LetterId::generate(), &confirm("resident@example.org"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_hundred_letters_in_a_row_over_one_connection() {
    let server = SmtpServer::start("none", None, None).await;
    let mailer = SmtpMailer::new(&config(&format!(
        "smtp://127.0.0.1:{}?tls=none",
        server.port
    )))
    .unwrap();
    for i in 0..100 {
        mailer
            .send(
                &LetterId::generate(),
                &confirm(&format!("resident{i}@example.org")),
            )
            .await
            .unwrap();
    }
    assert_eq!(server.received(100).await.len(), 100);
    let ports = server.peer_ports();
    assert_eq!(ports.len(), 100);
    let mut distinct = ports.clone();
    distinct.sort_unstable();
    distinct.dedup();
    // lettre hands a connection back to its pool on a task of its own, so a letter sent
    // the instant the previous one finished may open a second one; what matters is that
    // connections are pooled, not opened per letter.
    eprintln!("100 letters over {} connections", distinct.len());
    assert!(distinct.len() <= 4, "connections reused: {distinct:?}");
}

/// Unicode local parts (which `Email` accepts, e.g. "житель@почта.рф"): sent with
/// SMTPUTF8 when the server offers it; refused for good when it does not (a permanent
/// failure: the queued letter is dead at once, operators see it), never retried forever.
#[tokio::test]
async fn unicode_mailboxes_go_by_smtputf8_or_are_refused_for_good() {
    let to = "житель@кабинет-жителя.рф";
    let offering = SmtpServer::start("none", None, None).await;
    let mailer = SmtpMailer::new(&config(&format!(
        "smtp://127.0.0.1:{}?tls=none",
        offering.port
    )))
    .unwrap();
    mailer
        .send(&LetterId::generate(), &confirm(to))
        .await
        .unwrap();
    let received = offering.received(1).await;
    assert_eq!(parse(&received[0]).subject, "Подтверждение e-mail");
    let metadata = offering.metadata().join("");
    assert!(
        metadata.contains("\\u0436\\u0438\\u0442\\u0435\\u043b\\u044c@xn--")
            || metadata.contains("житель@xn--"),
        "the envelope names the Unicode mailbox: {metadata}"
    );

    let refusing = SmtpServer::start_with("none", None, None, &["--no-smtputf8"]).await;
    let mailer = SmtpMailer::new(&config(&format!(
        "smtp://127.0.0.1:{}?tls=none",
        refusing.port
    )))
    .unwrap();
    let error = mailer
        .send(&LetterId::generate(), &confirm(to))
        .await
        .unwrap_err();
    assert!(error.is_permanent(), "{error:?}");
    assert_eq!(
        resident_auth::Error::from(error).problems(),
        [resident_auth::errors::Problem::AddressRefused]
    );
    mailer
        .send(&LetterId::generate(), &confirm("resident@example.org"))
        .await
        .expect("ASCII mailboxes still go");
}
