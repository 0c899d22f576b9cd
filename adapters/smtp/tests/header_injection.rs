//! No field a user controls can add a header line to a letter.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use mailparse::MailHeaderMap;
use proptest::prelude::*;
use resident_auth::{Email, Letter, LetterContent, Locale};
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

    #[test]
    fn headers_are_exactly_the_expected_ones(
        email_input in prop_oneof![hostile(), "[a-zA-Z0-9.+_-]{1,20}@[a-z0-9-]{1,10}\\.(org|рф|com)"],
        body_secret in hostile(),
        locale in prop::sample::select(vec![Locale::Ru, Locale::En]),
        kind in 0..3u8,
    ) {
        // Only an address that parses can reach a letter: that is the first defence.
        let Ok(to) = email_input.parse::<Email>() else { return Ok(()); };
        let content = match kind {
            0 => LetterContent::ConfirmEmail { link: SecretString::from(body_secret.clone()) },
            1 => LetterContent::Credentials { login: to.clone(), password: SecretString::from(body_secret.clone()) },
            _ => LetterContent::RecoverPassword { link: SecretString::from(body_secret.clone()) },
        };
        let letter = Letter { to: to.clone(), locale, content };
        let Ok(message) = build_message(&letter, &default_sender()) else { return Ok(()); };
        let raw = message.formatted();
        let mail = mailparse::parse_mail(&raw).unwrap();
        let mut names: Vec<String> = mail.headers.iter().map(|h| h.get_key().to_lowercase()).collect();
        names.sort();
        let mut expected: Vec<String> = EXPECTED_HEADERS.iter().map(|s| (*s).to_owned()).collect();
        expected.sort();
        prop_assert_eq!(names, expected);
        prop_assert_eq!(mail.headers.get_first_value("To").unwrap(), to.ascii().to_owned());
        prop_assert_eq!(mail.headers.get_all_values("To").len(), 1);
    }
}
