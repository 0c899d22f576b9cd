//! No field a user controls can add a header line to a letter.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use mailparse::MailHeaderMap;
use proptest::prelude::*;
use resident_auth::{letters::Letter, letters::LetterContent, Email, Locale};
use resident_auth_smtp::{build_message, default_sender};
use secrecy::SecretString;

const EXPECTED_HEADERS: &[&str] = &[
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
];

fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        Just("a@example.org\r\nBcc: victim@example.org".to_owned()),
        Just("x\nSubject: pwned".to_owned()),
        "[a-z\\r\\n: ]{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Every case reaches the assertions: the address always parses (the strategy makes
    /// only valid ones), and the hostile text goes where users' text goes, into the body.
    #[test]
    fn headers_are_exactly_the_expected_ones(
        email_input in "[a-zA-Z0-9]{1,10}([._+-][a-zA-Z0-9]{1,5})?@[a-z0-9]{1,10}\\.(org|рф|com)",
        body_secret in hostile(),
        locale in prop::sample::select(vec![Locale::Ru, Locale::En]),
        kind in 0..5u8,
    ) {
        let to = email_input.parse::<Email>();
        prop_assert!(to.is_ok(), "the strategy makes valid addresses: {:?}", email_input);
        let to = to.unwrap();
        let content = match kind {
            0 => LetterContent::ConfirmEmail { link: SecretString::from(body_secret.clone()) },
            1 | 3 => LetterContent::Credentials { login: to.clone(), password: SecretString::from(body_secret.clone()), temporary: kind == 3 },
            4 => LetterContent::PasswordChanged,
            _ => LetterContent::RecoverPassword { link: SecretString::from(body_secret.clone()) },
        };
        let letter = Letter { to: to.clone(), locale, content };
        let message = build_message(&resident_auth::mail::LetterId::generate(), &letter, &default_sender());
        prop_assert!(message.is_ok(), "every letter builds");
        let raw = message.unwrap().formatted();
        let mail = mailparse::parse_mail(&raw).unwrap();
        let mut names: Vec<String> = mail.headers.iter().map(|h| h.get_key().to_lowercase()).collect();
        names.sort();
        let mut expected: Vec<String> = EXPECTED_HEADERS.iter().map(|s| (*s).to_owned()).collect();
        expected.sort();
        prop_assert_eq!(names, expected);
        prop_assert_eq!(mail.headers.get_first_value("To").unwrap(), to.ascii().to_owned());
        prop_assert_eq!(mail.headers.get_all_values("To").len(), 1);
    }

    /// The first defence: no text with a line break, a NUL or another control character
    /// is ever an `Email`, so it cannot reach a header.
    #[test]
    fn addresses_with_line_breaks_or_controls_never_parse(
        text in hostile().prop_filter("has a control character", |t| t.trim().chars().any(char::is_control)),
    ) {
        prop_assert!(text.parse::<Email>().is_err(), "{:?}", text);
    }
}
