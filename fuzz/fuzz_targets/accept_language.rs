//! Fuzzes the `Accept-Language` header parser (attacker-controlled on every request) and
//! the link-token reader: no panic, the header read as an independent reading reads it,
//! and the token reader's promises hold for any text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resident_auth::{ports::Token, Locale};

/// An independent reading of the header: every item's language (by its primary subtag)
/// and quality; of those we support with a positive quality, the highest wins, the
/// earliest among equals; none → Russian.
fn reference(text: &str) -> Locale {
    let mut candidates: Vec<(f32, usize, Locale)> = text
        .split(',')
        .enumerate()
        .filter_map(|(index, item)| {
            let mut params = item.split(';');
            let tag = params.next()?.trim();
            let primary = tag.split(['-', '_']).next()?.to_ascii_lowercase();
            let locale = match primary.as_str() {
                "ru" => Locale::Ru,
                "en" => Locale::En,
                _ => return None,
            };
            let quality = params
                .map(str::trim)
                .find(|p| p.starts_with("q="))
                .map_or(Some(1.0), |p| p[2..].trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (quality > 0.0).then_some((quality, index, locale))
        })
        .collect();
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    candidates.first().map_or(Locale::Ru, |c| c.2)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let locale = Locale::from_accept_language(text);
    // A header that names no supported language leaves the default, Russian.
    if !text.to_ascii_lowercase().contains("en") {
        assert_eq!(locale, Locale::Ru, "{text:?}");
    }
    // Parsing is a pure function of the header, and agrees with the independent reading.
    assert_eq!(locale, Locale::from_accept_language(text));
    assert_eq!(locale, reference(text), "{text:?}");
    if let Some(token) = Token::from_user(text) {
        let exposed = token.expose();
        assert_eq!(exposed, text.trim());
        assert_eq!(exposed.len(), 43);
        assert!(exposed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
});
