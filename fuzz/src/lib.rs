//! What every parser target checks: no panic on any input; an accepted input round-trips
//! through its canonical form; a refused one has a published, dotted code and messages.

use std::{fmt::Display, str::FromStr};

use resident_auth::{errors::Explain, Locale};

/// Parses `data` (when it is UTF-8) as `T` and checks the parser's promises.
pub fn check_parser<T>(data: &[u8])
where
    T: FromStr + Display + PartialEq + std::fmt::Debug,
    T::Err: Explain,
{
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match text.parse::<T>() {
        Ok(value) => {
            let canonical = value.to_string();
            let reparsed: T = match canonical.parse() {
                Ok(reparsed) => reparsed,
                Err(_) => panic!("canonical form {canonical:?} must parse"),
            };
            assert_eq!(reparsed, value, "round trip changed the value");
            assert_eq!(
                reparsed.to_string(),
                canonical,
                "canonical form is not stable"
            );
        }
        Err(error) => {
            assert!(
                error.code().contains('.'),
                "code {} is not dotted",
                error.code()
            );
            assert!(!error.message(Locale::Ru).is_empty());
            assert!(!error.message(Locale::En).is_empty());
        }
    }
}
