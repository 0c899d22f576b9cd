//! Property tests for every parser: canonical round trips, lenient inputs, no panics, and
//! stable error codes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use proptest::prelude::*;
use resident_auth::{
    config::ServedRegions, errors::Explain, AccountNumber, Email, Locale, Premises, PremisesKind,
    Surname,
};

const ACCOUNT_CODES: &[&str] = &[
    "account_number.empty",
    "account_number.non_digit",
    "account_number.wrong_length",
];
const PREMISES_CODES: &[&str] = &[
    "premises.empty",
    "premises.unknown_letter",
    "premises.unexpected_character",
    "premises.missing_number",
    "premises.missing_number_after_slash",
    "premises.zero",
    "premises.too_long",
    "premises.trailing_after_letter",
];
const SURNAME_CODES: &[&str] = &[
    "surname.empty",
    "surname.too_long",
    "surname.initials",
    "surname.invalid_character",
    "surname.misplaced_punctuation",
];
const EMAIL_CODES: &[&str] = &[
    "email.empty",
    "email.whitespace",
    "email.control_character",
    "email.too_long",
    "email.not_plain",
    "email.missing_at",
    "email.invalid_local_part",
    "email.invalid_domain",
];

/// Every error code is one of the published ones and has messages in both locales.
fn assert_published(error: &dyn Explain, published: &[&str]) {
    assert!(
        published.contains(&error.code()),
        "unpublished code {}",
        error.code()
    );
    assert!(!error.message(Locale::Ru).is_empty());
    assert!(!error.message(Locale::En).is_empty());
    assert!(error.field().is_some());
}

/// Checks the canonical round trip and serde for any parsed value.
fn assert_round_trip<T>(value: &T)
where
    T: std::str::FromStr + std::fmt::Display + PartialEq + std::fmt::Debug + serde::Serialize,
    T: serde::de::DeserializeOwned,
    T::Err: std::fmt::Debug,
{
    let canonical = value.to_string();
    let reparsed: T = canonical.parse().expect("canonical form parses");
    assert_eq!(&reparsed, value);
    assert_eq!(reparsed.to_string(), canonical);
    let json = serde_json::to_string(value).unwrap();
    assert_eq!(json, serde_json::to_string(&canonical).unwrap());
    let back: T = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, value);
}

/// Strings drawn from the characters each parser cares about, so the search reaches deep
/// states instead of failing on the first character.
fn tricky_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(vec![
                '0', '1', '2', '7', '8', '9', ' ', '-', '/', 'П', 'п', 'Н', 'н', 'H', 'h', 'А',
                '@', '.', 'a', 'Z', 'ё', 'Ё', '\'', '’', '\u{a0}', '\t', '\n', '\r', '\0', 'ж',
                'é', '<', '>', '"', '٣', 'x', 'И',
            ]),
            any::<char>(),
        ],
        0..40,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn any_input() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), tricky_text()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn account_number_parse_never_panics_and_round_trips(input in any_input()) {
        match input.parse::<AccountNumber>() {
            Ok(number) => {
                assert_round_trip(&number);
                prop_assert_eq!(number.as_str().len(), 13);
                prop_assert!(number.as_str().starts_with(number.region().as_str()));
            }
            Err(error) => assert_published(&error, ACCOUNT_CODES),
        }
    }

    #[test]
    fn account_number_ignores_bill_separators(
        digits in "[0-9]{13}",
        separators in prop::collection::vec(prop::sample::select(vec!["", " ", "-", " - ", "\u{a0}"]), 14),
    ) {
        let mut lenient = String::new();
        for (i, d) in digits.chars().enumerate() {
            lenient.push_str(separators[i]);
            lenient.push(d);
        }
        lenient.push_str(separators[13]);
        let number: AccountNumber = lenient.parse().unwrap();
        prop_assert_eq!(number.as_str(), digits.as_str());
    }

    #[test]
    fn account_number_wrong_length_reports_the_count(digits in "[0-9]{1,30}") {
        let result = digits.parse::<AccountNumber>();
        if digits.len() == 13 {
            prop_assert!(result.is_ok());
        } else {
            prop_assert_eq!(result, Err(resident_auth::errors::AccountNumberError::WrongLength { digits: digits.len() }));
        }
    }

    #[test]
    fn premises_parse_never_panics_and_round_trips(input in any_input()) {
        match input.parse::<Premises>() {
            Ok(premises) => assert_round_trip(&premises),
            Err(error) => assert_published(&error, PREMISES_CODES),
        }
    }

    #[test]
    fn premises_lenient_forms_map_to_canonical(
        number in 1u32..=999_999,
        part in prop::option::of(1u32..=999_999),
        kind in prop::sample::select(vec![PremisesKind::Apartment, PremisesKind::Parking, PremisesKind::NonResidential]),
        lower in any::<bool>(),
        latin_h in any::<bool>(),
        spaced in any::<bool>(),
        zeros in 0usize..3,
    ) {
        let canonical = match part {
            Some(p) => format!("{number}/{p}{}", kind.letter()),
            None => format!("{number}{}", kind.letter()),
        };
        let letter = match (kind, lower, latin_h) {
            (PremisesKind::Apartment, ..) => "",
            (PremisesKind::Parking, true, _) => "п",
            (PremisesKind::Parking, false, _) => "П",
            (PremisesKind::NonResidential, _, true) => if lower { "h" } else { "H" },
            (PremisesKind::NonResidential, true, false) => "н",
            (PremisesKind::NonResidential, false, false) => "Н",
        };
        let gap = if spaced { " " } else { "" };
        let lenient = match part {
            Some(p) => format!("{gap}{}{number}{gap}/{gap}{p}{gap}{letter}{gap}", "0".repeat(zeros)),
            None => format!("{gap}{}{number}{gap}{letter}{gap}", "0".repeat(zeros)),
        };
        let parsed: Premises = lenient.parse().unwrap();
        prop_assert_eq!(parsed.to_string(), canonical.clone());
        prop_assert_eq!(parsed.kind(), kind);
        prop_assert_eq!(parsed.number(), number);
        prop_assert_eq!(parsed, canonical.parse::<Premises>().unwrap());
    }

    #[test]
    fn premises_other_letters_are_named(number in 1u32..=999_999, letter in "[A-GI-Za-gi-zА-МОР-ЯЁа-мор-яё]") {
        let letter_char = letter.chars().next().unwrap();
        let result = format!("{number}{letter}").parse::<Premises>();
        prop_assert_eq!(result, Err(resident_auth::errors::PremisesError::UnknownLetter { letter: letter_char }));
    }

    #[test]
    fn surname_parse_never_panics_and_round_trips(input in any_input()) {
        match input.parse::<Surname>() {
            Ok(surname) => {
                assert_round_trip(&surname);
                prop_assert!(surname.matches(&surname.as_str().to_uppercase()));
                prop_assert!(surname.matches(&surname.as_str().replace('ё', "е")));
            }
            Err(error) => assert_published(&error, SURNAME_CODES),
        }
    }

    #[test]
    fn surname_lenient_spacing_maps_to_canonical(
        words in prop::collection::vec("[А-ЯЁ][а-яё]{1,12}", 1..4),
        pad in "[ \t]{0,3}",
        gap in "  {0,2}",
    ) {
        let canonical = words.join(" ");
        let lenient = format!("{pad}{}{pad}", words.join(&format!(" {gap}")));
        let surname: Surname = lenient.parse().unwrap();
        prop_assert_eq!(surname.as_str(), canonical.as_str());
    }

    #[test]
    fn surname_with_initials_gets_the_hint(
        word in "[А-ЯЁ][а-яё]{2,12}",
        initials in prop::sample::select(vec![" И.И.", " И. И.", " И", " A.", " П.С"]),
    ) {
        let result = format!("{word}{initials}").parse::<Surname>();
        prop_assert_eq!(result, Err(resident_auth::errors::SurnameError::Initials));
    }

    #[test]
    fn email_parse_never_panics_and_round_trips(input in any_input()) {
        match input.parse::<Email>() {
            Ok(email) => {
                assert_round_trip(&email);
                prop_assert!(email.ascii().is_ascii() || !email.local_part().is_ascii());
                prop_assert_eq!(email.as_str().to_lowercase(), email.as_str());
            }
            Err(error) => assert_published(&error, EMAIL_CODES),
        }
    }

    #[test]
    fn email_generated_addresses_round_trip(
        local in "[a-zA-Z0-9][a-zA-Z0-9._+-]{0,20}[a-zA-Z0-9]",
        labels in prop::collection::vec("[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?", 1..4),
        tld in "[a-zA-Z]{2,6}|рф|com",
        pad in "[ \t\u{a0}]{0,2}",
    ) {
        prop_assume!(!local.contains(".."));
        // A label with `--` in its third and fourth places is an IDNA A-label (`xn--a`,
        // found by this test): not always a valid one, so not a plain domain to generate.
        prop_assume!(labels.iter().all(|label| label.get(2..4) != Some("--")));
        let address = format!("{}@{}.{tld}", local, labels.join("."));
        let email: Email = format!("{pad}{address}{pad}").parse().unwrap();
        prop_assert_eq!(email.as_str(), address.to_lowercase());
        assert_round_trip(&email);
    }

    #[test]
    fn email_inner_whitespace_or_control_is_rejected(
        left in "[a-z]{1,8}",
        bad in prop::sample::select(vec![' ', '\t', '\r', '\n', '\0', '\u{7}', '\u{a0}']),
    ) {
        let input = format!("{left}{bad}x@example.org");
        prop_assert!(input.parse::<Email>().is_err());
    }

    #[test]
    fn served_regions_parse_never_panics(input in any_input()) {
        let _ = input.parse::<ServedRegions>();
    }

    #[test]
    fn accept_language_never_panics_and_defaults_to_russian(input in any_input()) {
        let locale = Locale::from_accept_language(&input);
        if !input.to_ascii_lowercase().contains("en") {
            prop_assert_eq!(locale, Locale::Ru);
        }
    }

    #[test]
    fn accept_language_picks_the_preferred_supported_language(
        ru_q in 1u32..=1000,
        en_q in 1u32..=1000,
        others in prop::collection::vec(
            (prop::sample::select(vec!["de", "fr", "uk", "zh-Hans", "*"]), 0u32..=1000),
            0..4,
        ),
        region in prop::sample::select(vec!["", "-RU", "-GB", "_US"]),
    ) {
        let q = |n: u32| format!("{}.{:03}", n / 1000, n % 1000);
        let mut parts: Vec<String> = others.iter().map(|(tag, n)| format!("{tag};q={}", q(*n))).collect();
        parts.push(format!("ru{region};q={}", q(ru_q)));
        parts.push(format!("EN{region} ; q={}", q(en_q)));
        let header = parts.join(", ");
        let expected = if en_q > ru_q { Locale::En } else { Locale::Ru };
        prop_assert_eq!(Locale::from_accept_language(&header), expected, "{}", header);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Decomposed input (NFD: "е" + U+0308 for "ё", Latin letters with combining
    /// accents) parses to the same surname as the composed form, and they match.
    #[test]
    fn decomposed_surnames_parse_like_composed_ones(
        word in "[А-ЯЁ][а-яё]{1,12}(-[А-ЯЁ][а-яё]{1,10})?|[A-Z][a-zéèöüñç]{1,12}"
    ) {
        use unicode_normalization::UnicodeNormalization;
        let decomposed: String = word.nfd().collect();
        let composed = word.parse::<Surname>();
        let from_decomposed = decomposed.parse::<Surname>();
        prop_assert_eq!(&composed, &from_decomposed);
        if let Ok(surname) = composed {
            prop_assert!(surname.matches(&decomposed));
            prop_assert!(surname.matches(&decomposed.to_uppercase()));
        }
    }

    /// Upper-case IDN addresses fold to the lower-case canonical form.
    #[test]
    fn upper_case_idn_addresses_fold(local in "[а-я]{1,10}", label in "[а-я]{2,10}") {
        let upper = format!("{}@{}-ЖИТЕЛЯ.РФ", local.to_uppercase(), label.to_uppercase());
        let email: Email = upper.parse().map_err(|e| TestCaseError::fail(format!("{upper}: {e}")))?;
        prop_assert_eq!(email.as_str(), format!("{local}@{label}-жителя.рф"));
    }
}
