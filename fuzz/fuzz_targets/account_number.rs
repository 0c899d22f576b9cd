//! Fuzzes the `AccountNumber` parser: no panic on any input, and every accepted input
//! round-trips through its canonical form with a published error code otherwise.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resident_auth::{AccountNumber, Locale, UserError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match text.parse::<AccountNumber>() {
        Ok(value) => {
            let canonical = value.to_string();
            let reparsed: AccountNumber = canonical.parse().expect("canonical form must parse");
            assert_eq!(reparsed, value, "round trip changed the value");
            assert_eq!(reparsed.to_string(), canonical, "canonical form is not stable");
        }
        Err(error) => {
            assert!(error.code().contains('.'), "code {} is not dotted", error.code());
            assert!(!error.message(Locale::Ru).is_empty());
            assert!(!error.message(Locale::En).is_empty());
        }
    }
});
