//! A password a resident chooses: the rules of docs/contract.md §2 ("A chosen password").
//!
//! NIST SP 800-63B-4 (single-factor passwords) and ASVS 5.0 V6.2: at least
//! [`NEW_PASSWORD_MIN_CHARS`] characters, up to [`NEW_PASSWORD_MAX_CHARS`], any Unicode
//! (normalised to NFKC, as is every password before it is hashed or verified), no
//! composition rules; refused when it is on the blocklist or contains the email's local
//! part. The blocklist is zxcvbn's (the Rust port of Dropbox's estimator): 30,000 common
//! and breached passwords, common names and words, and the patterns crackers try first
//! (repeats, sequences, keyboard runs, dates, l33t spellings). A password zxcvbn reckons
//! guessable in fewer than 10⁸ tries is built from one of those, and is refused.

use std::{
    fmt,
    sync::{mpsc, OnceLock},
};

use secrecy::{ExposeSecret, SecretString};
use unicode_normalization::UnicodeNormalization;

use crate::{
    hasher::HashError,
    locale::{Explain, Field, Locale},
    Email,
};

/// One check for the checking thread: the password, the email, where the verdict goes.
type Check = (
    SecretString,
    Email,
    tokio::sync::oneshot::Sender<Result<NewPassword, NewPasswordError>>,
);

/// The fewest characters of a chosen password.
pub const NEW_PASSWORD_MIN_CHARS: usize = 15;
/// The most characters of a chosen password (at least 64 must be accepted).
pub const NEW_PASSWORD_MAX_CHARS: usize = 256;
/// A local part shorter than this is not looked for inside passwords (one or two letters
/// occur in nearly every password by chance).
const LOCAL_PART_MIN_CHARS: usize = 3;
/// Passwords zxcvbn reckons guessable in fewer than 10^this tries are refused.
const MIN_GUESSES_LOG10: f64 = 8.0;
/// The blocklist and the estimate read at most this many characters of a password. The
/// estimator's time grows faster than the length, and most with symbols it reads as l33t
/// spellings: 64 such characters took ~0.4 s, 256 over a second; 32 take at most ~50 ms (in
/// an optimised build). A password whose first 32 characters are hard to guess is hard to
/// guess.
pub(crate) const ESTIMATED_CHARS: usize = 32;
/// Checks waiting for the checking thread; a check that finds the queue full is refused
/// at once as busy (503 with `Retry-After`), as the hashing pool does.
const CHECK_QUEUE: usize = 64;

/// Why a chosen password is refused. Codes are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NewPasswordError {
    /// Fewer than [`NEW_PASSWORD_MIN_CHARS`] characters.
    #[error("the password is shorter than {NEW_PASSWORD_MIN_CHARS} characters")]
    TooShort,
    /// More than [`NEW_PASSWORD_MAX_CHARS`] characters.
    #[error("the password is longer than {NEW_PASSWORD_MAX_CHARS} characters")]
    TooLong,
    /// A common or breached password, or one built from a common pattern.
    #[error("the password is too common")]
    Common,
    /// Contains the local part of the cabinet's email.
    #[error("the password contains the email")]
    ContainsEmail,
}

impl Explain for NewPasswordError {
    fn code(&self) -> &'static str {
        match self {
            NewPasswordError::TooShort => "password.too_short",
            NewPasswordError::TooLong => "password.too_long",
            NewPasswordError::Common => "password.common",
            NewPasswordError::ContainsEmail => "password.contains_email",
        }
    }

    fn field(&self) -> Option<Field> {
        Some(Field::NewPassword)
    }

    fn message(&self, locale: Locale) -> String {
        match (self, locale) {
            (NewPasswordError::TooShort, Locale::Ru) => format!(
                "Пароль должен содержать не менее {NEW_PASSWORD_MIN_CHARS} символов. Подойдёт фраза из нескольких слов"
            ),
            (NewPasswordError::TooShort, _) => format!(
                "The password must have at least {NEW_PASSWORD_MIN_CHARS} characters. A phrase of several words will do"
            ),
            (NewPasswordError::TooLong, Locale::Ru) => {
                format!("Пароль длиннее {NEW_PASSWORD_MAX_CHARS} символов")
            }
            (NewPasswordError::TooLong, _) => {
                format!("The password is longer than {NEW_PASSWORD_MAX_CHARS} characters")
            }
            (NewPasswordError::Common, Locale::Ru) => {
                "Этот пароль слишком распространён или легко подбирается. Выберите другой".into()
            }
            (NewPasswordError::Common, _) => {
                "This password is too common or easy to guess. Choose another".into()
            }
            (NewPasswordError::ContainsEmail, Locale::Ru) => {
                "Пароль не должен содержать адрес электронной почты".into()
            }
            (NewPasswordError::ContainsEmail, _) => {
                "The password must not contain the email address".into()
            }
        }
    }
}

/// A password a resident chose for the cabinet of an email, checked against the rules.
/// Only [`NewPassword::parse`] makes one; `Debug` shows nothing of it.
pub struct NewPassword(SecretString);

impl NewPassword {
    /// Checks `typed` as the new password of the cabinet whose login is `email`.
    ///
    /// The blocklist and the estimate read the first 32 characters.
    ///
    /// # Errors
    /// The first rule it breaks, in the order: length, email, blocklist.
    ///
    /// ```
    /// use resident_auth::{Email, secrecy::SecretString, journeys::NewPassword, errors::NewPasswordError};
    /// let email: Email = "ivanov@example.org".parse()?;
    /// let typed = |s: &str| SecretString::from(s.to_owned());
    /// assert!(NewPassword::parse(typed("верблюд на крыше сарая"), &email).is_ok());
    /// assert_eq!(NewPassword::parse(typed("short one"), &email).err(), Some(NewPasswordError::TooShort));
    /// assert_eq!(NewPassword::parse(typed("Ivanov-1984-07-12!"), &email).err(), Some(NewPasswordError::ContainsEmail));
    /// assert_eq!(NewPassword::parse(typed("passwordpassword"), &email).err(), Some(NewPasswordError::Common));
    /// # Ok::<(), resident_auth::errors::EmailError>(())
    /// ```
    pub fn parse(typed: SecretString, email: &Email) -> Result<Self, NewPasswordError> {
        let normalized = normalize(&typed);
        let text = normalized.expose_secret();
        let chars = text.chars().count();
        if chars < NEW_PASSWORD_MIN_CHARS {
            return Err(NewPasswordError::TooShort);
        }
        if chars > NEW_PASSWORD_MAX_CHARS {
            return Err(NewPasswordError::TooLong);
        }
        let local_part = email.local_part().to_lowercase();
        if local_part.chars().count() >= LOCAL_PART_MIN_CHARS
            && text.to_lowercase().contains(&local_part)
        {
            return Err(NewPasswordError::ContainsEmail);
        }
        let estimated: String = text.chars().take(ESTIMATED_CHARS).collect();
        let estimate = zxcvbn::zxcvbn(&estimated, &[&local_part]);
        if estimate.guesses_log10() < MIN_GUESSES_LOG10 {
            return Err(NewPasswordError::Common);
        }
        Ok(NewPassword(normalized))
    }

    /// [`NewPassword::parse`] on the password-checking thread, never on the caller's async
    /// executor: the estimate takes milliseconds of CPU. Works under any async runtime.
    ///
    /// # Errors
    /// The rule `typed` breaks; [`HashError::Busy`] when [`CHECK_QUEUE`] checks already wait
    /// (nothing is done), [`HashError::WorkersGone`] if the thread cannot run.
    pub(crate) async fn parse_off_executor(
        typed: SecretString,
        email: Email,
    ) -> Result<Result<Self, NewPasswordError>, HashError> {
        static CHECKS: OnceLock<Option<mpsc::SyncSender<Check>>> = OnceLock::new();
        let checks = CHECKS.get_or_init(|| {
            let (checks, waiting) = mpsc::sync_channel::<Check>(CHECK_QUEUE);
            std::thread::Builder::new()
                .name("password-check".to_owned())
                .spawn(move || {
                    for (typed, email, reply) in waiting {
                        let _ = reply.send(NewPassword::parse(typed, &email));
                    }
                })
                .ok()
                .map(|_| checks)
        });
        let checks = checks.as_ref().ok_or(HashError::WorkersGone)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        checks
            .try_send((typed, email, reply))
            .map_err(|error| match error {
                mpsc::TrySendError::Full(_) => HashError::Busy,
                mpsc::TrySendError::Disconnected(_) => HashError::WorkersGone,
            })?;
        answer.await.map_err(|_| HashError::WorkersGone)
    }

    /// The password, normalised, for hashing.
    #[must_use]
    pub fn into_secret(self) -> SecretString {
        self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword([redacted])")
    }
}

/// A typed password in the form it is hashed and verified in: NFKC, so that the same
/// characters typed on another keyboard (composed or decomposed, full-width digits) are
/// the same password. Generated passwords are ASCII, which NFKC leaves as they are.
#[must_use]
pub fn normalize(typed: &SecretString) -> SecretString {
    let text = typed.expose_secret();
    if text.is_ascii() {
        return typed.clone();
    }
    SecretString::from(text.nfkc().collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, email: &str) -> Result<NewPassword, NewPasswordError> {
        NewPassword::parse(SecretString::from(text.to_owned()), &email.parse().unwrap())
    }

    #[test]
    fn length_is_counted_in_characters_after_normalisation() {
        let email = "resident@example.org";
        assert_eq!(
            parse("абвгдеёжзийклм", email).err(),
            Some(NewPasswordError::TooShort)
        );
        assert!(parse("тихий вечер у реки", email).is_ok());
        // 15 characters once "е" + combining diaeresis becomes "ё".
        let decomposed = "ёлка на опушке\u{0435}\u{0308}";
        assert_eq!(decomposed.chars().count(), 16);
        assert!(parse(decomposed, email).is_ok());
        let sixty_four: String = "жираф-в-шарфе-".repeat(5).chars().take(64).collect();
        assert!(parse(&sixty_four, email).is_ok());
        let too_long: String = "x7Щ".repeat(86);
        assert_eq!(
            parse(&too_long, email).err(),
            Some(NewPasswordError::TooLong)
        );
    }

    #[test]
    fn the_local_part_is_refused_in_any_case() {
        let email = "Petrova.Anna@example.org";
        assert_eq!(
            parse("my name is PETROVA.ANNA and I live here", email).err(),
            Some(NewPasswordError::ContainsEmail)
        );
        // A two-letter local part is not looked for.
        assert!(parse("oak tree near the old mill", "ok@example.org").is_ok());
    }

    #[test]
    fn common_passwords_and_patterns_are_refused() {
        for common in [
            "passwordpassword",
            "qwertyuiop123456",
            "1111111111111111",
            "iloveyouiloveyou",
            "abcdefghijklmnop",
            "123456789012345",
        ] {
            assert_eq!(
                parse(common, "resident@example.org").err(),
                Some(NewPasswordError::Common),
                "{common}"
            );
        }
    }

    #[test]
    fn the_bounds_are_inclusive_and_the_secret_is_the_normalised_text() {
        use secrecy::ExposeSecret;
        let email = "resident@example.org";
        let longest: String = "жираф в шарфе "
            .repeat(30)
            .chars()
            .take(NEW_PASSWORD_MAX_CHARS)
            .collect();
        assert!(
            parse(&longest, email).is_ok(),
            "exactly the maximum is accepted"
        );
        let decomposed = "ёлка на опушке \u{0435}\u{0308}";
        let secret = parse(decomposed, email).unwrap().into_secret();
        assert_eq!(secret.expose_secret(), "ёлка на опушке ё");
    }

    #[test]
    fn every_error_has_a_code_a_field_and_two_messages() {
        let errors = [
            NewPasswordError::TooShort,
            NewPasswordError::TooLong,
            NewPasswordError::Common,
            NewPasswordError::ContainsEmail,
        ];
        let codes: std::collections::BTreeSet<&str> = errors.iter().map(Explain::code).collect();
        assert_eq!(
            codes.into_iter().collect::<Vec<_>>(),
            [
                "password.common",
                "password.contains_email",
                "password.too_long",
                "password.too_short"
            ]
        );
        for error in errors {
            assert_eq!(error.field(), Some(Field::NewPassword));
            let (ru, en) = (error.message(Locale::Ru), error.message(Locale::En));
            assert!(ru.contains("Пароль") || ru.contains("пароль"), "{ru}");
            assert!(en.to_lowercase().contains("password") && ru != en, "{en}");
        }
        assert!(NewPasswordError::TooShort
            .message(Locale::Ru)
            .contains("15"));
    }

    #[test]
    fn the_estimate_reads_the_first_32_characters() {
        let email = "resident@example.org";
        // Common at the start, strong after the 32nd character: the estimate sees only
        // the start.
        let weak_start = format!("{}{}", "password".repeat(4), "Щ7ж!q9Ъ-Lz#4ё");
        assert_eq!(
            parse(&weak_start, email).err(),
            Some(NewPasswordError::Common)
        );
        // The email is looked for in the whole text.
        let late_email = format!("{}resident", "жираф в шарфе ".repeat(6));
        assert_eq!(
            parse(&late_email, email).err(),
            Some(NewPasswordError::ContainsEmail)
        );
    }

    #[tokio::test]
    async fn checks_run_on_their_own_thread_and_answer_alike() {
        let email: Email = "resident@example.org".parse().unwrap();
        for text in ["тихий вечер у реки", "short", "passwordpassword"] {
            let typed = SecretString::from(text.to_owned());
            let there = NewPassword::parse_off_executor(typed.clone(), email.clone())
                .await
                .unwrap()
                .map(|password| password.into_secret().expose_secret().to_owned());
            let here = NewPassword::parse(typed, &email)
                .map(|password| password.into_secret().expose_secret().to_owned());
            assert_eq!(there, here);
        }
    }

    #[test]
    fn debug_shows_nothing() {
        let password = parse("тихий вечер у реки", "resident@example.org").unwrap();
        assert_eq!(format!("{password:?}"), "NewPassword([redacted])");
    }
}
