//! The outbox writes each letter as one readable RFC 5322 file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use mailparse::MailHeaderMap;
use resident_auth::{letters::Letter, letters::LetterContent, ports::Mailer, Locale};
use resident_auth_smtp::{default_sender, OutboxMailer};
use secrecy::SecretString;

#[tokio::test]
async fn each_letter_becomes_one_eml_file() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = OutboxMailer::new(dir.path().join("outbox"), default_sender());
    for password in ["First1PassWord23", "Second4PassWord5"] {
        let letter = Letter {
            to: "resident@example.org".parse().unwrap(),
            locale: Locale::Ru,
            content: LetterContent::Credentials {
                login: "resident@example.org".parse().unwrap(),
                password: SecretString::from(password),
                temporary: false,
            },
        };
        outbox.send(&letter).await.unwrap();
    }
    let mut files: Vec<_> = std::fs::read_dir(outbox.dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|f| f.extension().unwrap() == "eml"));
    let raw = std::fs::read(&files[1]).unwrap();
    let mail = mailparse::parse_mail(&raw).unwrap();
    assert_eq!(
        mail.headers.get_first_value("Subject").unwrap(),
        "Данные для входа"
    );
    assert!(mail
        .headers
        .get_first_value("From")
        .unwrap()
        .contains("no_reply@example.org"));
    let text = mail
        .subparts
        .iter()
        .find(|p| p.ctype.mimetype == "text/plain")
        .unwrap()
        .get_body()
        .unwrap();
    assert!(text.lines().any(|l| l == "Пароль: Second4PassWord5"));
    assert!(mail
        .subparts
        .iter()
        .any(|p| p.ctype.mimetype == "text/html"));
}

/// `OutboxLetter` reads back what a resident would: subject, recipient, the decoded text,
/// the link and its token, the password; `Debug` shows none of the text.
#[tokio::test]
async fn outbox_letters_read_back_their_link_and_password() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = OutboxMailer::new(dir.path().join("outbox"), default_sender());
    assert!(resident_auth_smtp::OutboxLetter::read_all(outbox.dir())
        .unwrap()
        .is_empty());
    for (locale, content) in [
        (
            Locale::Ru,
            LetterContent::ConfirmEmail {
                link: SecretString::from("https://portal.example.org/confirm?token=AbC-12_z"),
            },
        ),
        (
            Locale::En,
            LetterContent::Credentials {
                login: "resident@example.org".parse().unwrap(),
                password: SecretString::from("Kx7pQ2zz9Lm3Rt8w"),
                temporary: false,
            },
        ),
    ] {
        let letter = Letter {
            to: "resident@example.org".parse().unwrap(),
            locale,
            content,
        };
        outbox.send(&letter).await.unwrap();
    }
    let letters = resident_auth_smtp::OutboxLetter::read_all(outbox.dir()).unwrap();
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[0].subject(), "Подтверждение e-mail");
    assert!(letters[0].to().contains("resident@example.org"));
    assert_eq!(
        letters[0].link(),
        Some("https://portal.example.org/confirm?token=AbC-12_z")
    );
    assert_eq!(letters[0].token(), Some("AbC-12_z"));
    assert_eq!(letters[0].password(), None);
    assert_eq!(letters[1].password(), Some("Kx7pQ2zz9Lm3Rt8w"));
    assert_eq!(letters[1].link(), None);
    let debug = format!("{:?}", letters[1]);
    assert!(!debug.contains("Kx7pQ2zz9Lm3Rt8w"), "{debug}");
}
