//! Turning a letter into an RFC 5322 message.

use lettre::{
    message::{header::ContentType, Mailbox, MultiPart, SinglePart},
    Address, Message,
};
use resident_auth::{
    letters::Letter,
    mail::{LetterId, MailError},
};

/// The sender the examples use by default. The guide's real one is `no_reply@eis24.me`.
#[must_use]
pub fn default_sender() -> Mailbox {
    // A fixed, valid address (checked by a unit test), so no validation is needed.
    Mailbox::new(
        Some("Личный кабинет жителя".to_owned()),
        Address::new_dangerous("no_reply", "example.org"),
    )
}

/// Builds the message for the mail queue's letter `id` from `from`: multipart/alternative
/// with a UTF-8 text part and an HTML part, subject RFC 2047-encoded, `Date` set and the
/// `Message-ID` made from the letter's identity (`<{id}@{sender's domain}>`), so that a
/// letter sent again after a crash (delivery is at least once) carries the same one and a
/// mail server or client can drop the repeat.
///
/// The recipient is written in its ASCII form ([`resident_auth::Email::ascii`]); every
/// header value comes from a parsed [`resident_auth::Email`] or a fixed subject, so no
/// user input can add a header line.
///
/// # Errors
/// A permanent [`MailError`] if the recipient cannot be expressed as an SMTP address.
pub fn build_message(id: &LetterId, letter: &Letter, from: &Mailbox) -> Result<Message, MailError> {
    let rendered = letter.render();
    let to: Address = letter
        .to
        .ascii()
        .parse()
        .map_err(|e| MailError::permanent(format!("recipient not expressible in SMTP: {e}")))?;
    Message::builder()
        .from(from.clone())
        .to(Mailbox::new(None, to))
        .subject(rendered.subject())
        .date_now()
        .message_id(Some(message_id(id, from)))
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(rendered.text().to_owned()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(rendered.html().to_owned()),
                ),
        )
        .map_err(|e| MailError::permanent(format!("message could not be built: {e}")))
}

/// `<{id}@{domain}>`: the letter's identity at the sender's domain (RFC 5322 §3.6.4).
fn message_id(id: &LetterId, from: &Mailbox) -> String {
    format!("<{id}@{}>", from.email.domain())
}

#[cfg(test)]
mod tests {
    use resident_auth::{letters::LetterContent, Locale};
    use secrecy::SecretString;

    use super::*;

    #[test]
    fn the_default_sender_is_valid() {
        assert_eq!(default_sender().email.to_string(), "no_reply@example.org");
    }

    #[test]
    fn messages_are_multipart_with_an_encoded_subject_and_ascii_recipient() {
        let letter = Letter {
            to: "житель@кабинет-жителя.рф".parse().unwrap(),
            locale: Locale::Ru,
            content: LetterContent::ConfirmEmail {
                link: SecretString::from("https://example.org/confirm?token=abc"),
            },
        };
        let message = build_message(&LetterId::generate(), &letter, &default_sender());
        // A Unicode local part needs SMTPUTF8; lettre refuses it, which is a permanent
        // failure of that one letter rather than a panic.
        match message {
            Ok(message) => {
                let text = String::from_utf8(message.formatted()).unwrap();
                assert!(text.contains("xn--"));
            }
            Err(error) => assert!(error.is_permanent()),
        }
        let letter = Letter {
            to: "resident@кабинет-жителя.рф".parse().unwrap(),
            ..letter
        };
        let raw = String::from_utf8(
            build_message(&LetterId::generate(), &letter, &default_sender())
                .unwrap()
                .formatted(),
        )
        .unwrap();
        assert!(
            raw.contains("To: resident@xn----7sbdqbfldlsq5dd8p.xn--p1ai\r\n"),
            "{raw}"
        );
        assert!(raw.contains("Subject: =?utf-8?b?"), "{raw}");
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("Content-Type: text/plain; charset=utf-8"));
        assert!(raw.contains("Content-Type: text/html; charset=utf-8"));
        assert!(raw.contains("Message-ID: <"));
        let id = LetterId::generate();
        let again = |id: &LetterId| {
            String::from_utf8(
                build_message(id, &letter, &default_sender())
                    .unwrap()
                    .formatted(),
            )
            .unwrap()
            .lines()
            .find(|l| l.starts_with("Message-ID: "))
            .unwrap()
            .to_owned()
        };
        assert_eq!(again(&id), format!("Message-ID: <{id}@example.org>"));
        assert_eq!(
            again(&id),
            again(&id),
            "a repeat carries the same Message-ID"
        );
        assert_ne!(again(&id), again(&LetterId::generate()));
        assert!(raw.contains("Date: "));
    }
}
