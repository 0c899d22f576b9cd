//! The outbox writes each letter as one readable RFC 5322 file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use mailparse::MailHeaderMap;
use resident_auth::{
    letters::{Letter, LetterContent},
    mail::{LetterId, Mailer},
    Locale,
};
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
        outbox.send(&LetterId::generate(), &letter).await.unwrap();
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
        outbox.send(&LetterId::generate(), &letter).await.unwrap();
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

/// A letter sent again under its identity (delivery is at least once: a crash between
/// sending and recording it sent repeats it) is recognisable: the same `Message-ID`, and
/// the outbox keeps the one file. The folder is owner-only and so is every letter; a
/// folder others may read is refused, and the letter waits.
#[tokio::test]
async fn a_repeated_letter_is_one_file_and_the_outbox_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let outbox = OutboxMailer::new(dir.path().join("outbox"), default_sender());
    let letter = Letter {
        to: "resident@example.org".parse().unwrap(),
        locale: Locale::Ru,
        content: LetterContent::ConfirmEmail {
            link: SecretString::from("https://portal.example.org/confirm?token=AbC"),
        },
    };
    let id = LetterId::generate();
    outbox.send(&id, &letter).await.unwrap();
    outbox.send(&id, &letter).await.unwrap();
    outbox.send(&LetterId::generate(), &letter).await.unwrap();
    let files: Vec<_> = std::fs::read_dir(outbox.dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2, "the repeat is not a second file: {files:?}");
    let named: Vec<_> = files
        .iter()
        .filter(|f| f.to_string_lossy().ends_with(&format!("-{id}.eml")))
        .collect();
    assert_eq!(named.len(), 1, "{files:?}");
    assert!(
        !files
            .iter()
            .any(|f| f.to_string_lossy().contains("resident")),
        "no address in a file name: {files:?}"
    );
    let raw = std::fs::read(named[0]).unwrap();
    let mail = mailparse::parse_mail(&raw).unwrap();
    assert_eq!(
        mail.headers.get_first_value("Message-ID").unwrap(),
        format!("<{id}@example.org>")
    );
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(outbox.dir()), 0o700);
    for file in &files {
        assert_eq!(mode(file), 0o600, "{file:?}");
    }
    std::fs::set_permissions(outbox.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let refused = outbox
        .send(&LetterId::generate(), &letter)
        .await
        .unwrap_err();
    assert!(refused.is_retryable(), "{refused}");
    assert!(
        format!("{:?}", refused).contains("chmod 700"),
        "{refused:?}"
    );
}
