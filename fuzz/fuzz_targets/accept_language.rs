//! Fuzzes the `Accept-Language` header parser (attacker-controlled on every request) and
//! the link-token reader: no panic, and their promises hold for any text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resident_auth::{Locale, Token};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let locale = Locale::from_accept_language(text);
    // A header that names no supported language leaves the default, Russian.
    if !text.to_ascii_lowercase().contains("en") {
        assert_eq!(locale, Locale::Ru, "{text:?}");
    }
    // Parsing is a pure function of the header.
    assert_eq!(locale, Locale::from_accept_language(text));
    if let Some(token) = Token::from_user(text) {
        let exposed = token.expose();
        assert_eq!(exposed, text.trim());
        assert_eq!(exposed.len(), 43);
        assert!(exposed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
});
