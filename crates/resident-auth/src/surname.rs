//! Surnames typed at registration and matched against the billing directory.

use std::borrow::Cow;

use std::{fmt, str::FromStr};
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::locale::{Explain, Field, Locale};

/// The longest surname accepted, in characters.
pub const SURNAME_MAX_CHARS: usize = 100;

/// A surname: 1–100 characters of Cyrillic or Latin letters, hyphens, apostrophes and
/// single inner spaces. Initials are rejected with the guide's hint.
///
/// Input is trimmed and runs of spaces collapse to one; letters keep the case typed.
/// Compare with the directory through [`Surname::matches`] (case-insensitive, `ё` = `е`).
///
/// ```
/// use resident_auth::Surname;
/// let surname: Surname = "  Алёшина-Петрова ".parse()?;
/// assert_eq!(surname.as_str(), "Алёшина-Петрова");
/// assert!(surname.matches("АЛЕШИНА-ПЕТРОВА"));
/// assert!("Иванов И.И.".parse::<Surname>().is_err());
/// # Ok::<(), resident_auth::errors::SurnameError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Surname {
    text: String,
}

/// Why a string is not a surname.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SurnameError {
    /// Nothing was entered.
    #[error("the surname is empty")]
    Empty,
    /// More than [`SURNAME_MAX_CHARS`] characters.
    #[error("the surname is longer than 100 characters")]
    TooLong,
    /// Initials follow the surname (`Иванов И.И.`).
    #[error("the surname is entered without initials")]
    Initials,
    /// A character that is not a letter, hyphen, apostrophe or space.
    #[error("{character:?} cannot appear in a surname")]
    InvalidCharacter {
        /// The offending character.
        character: char,
    },
    /// A hyphen, apostrophe or space stands where a letter must (at either end, or twice
    /// in a row).
    #[error("a surname starts and ends with a letter")]
    MisplacedPunctuation,
}

fn is_surname_letter(c: char) -> bool {
    // Plain range checks: the Unicode property tables cost more than the whole parse.
    c.is_ascii_alphabetic()
        // Cyrillic letters: the basic block А–я plus Ѐ–Џ and ѐ–џ (Ё, Є, І, Ї, Ў, …).
        || ('\u{400}'..='\u{45f}').contains(&c)
        // Ґ ґ and the rest of the extended Cyrillic letters in U+048A–U+04FF.
        || ('\u{48a}'..='\u{4ff}').contains(&c)
        // Latin-1 Supplement and Latin Extended-A/B letters (é, ö, ł, …), minus × and ÷.
        || (('\u{c0}'..='\u{24f}').contains(&c) && c != '\u{d7}' && c != '\u{f7}')
}

fn is_joiner(c: char) -> bool {
    matches!(c, '-' | '\'' | '\u{2019}')
}

impl FromStr for Surname {
    type Err = SurnameError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        // Composed form first: "е" + U+0308 (as some keyboards, phones and PDFs produce)
        // is the letter "ё". Input already in NFC (nearly all) is not copied.
        let composed: Cow<'_, str> = if is_nfc_quick(input.chars()) == IsNormalized::Yes {
            Cow::Borrowed(input)
        } else {
            Cow::Owned(input.nfc().collect())
        };
        let trimmed = composed.trim();
        if trimmed.is_empty() {
            return Err(SurnameError::Empty);
        }
        // Initials: a dot anywhere, or a word after the first that is a single letter
        // ("Иванов И"). Checked first so the guide's hint wins over a character error.
        let initials = trimmed.contains('.')
            || trimmed.split_whitespace().skip(1).any(|w| {
                let mut letters = w.chars();
                letters.next().is_some_and(is_surname_letter) && letters.next().is_none()
            });
        if initials {
            return Err(SurnameError::Initials);
        }
        let mut text = String::with_capacity(trimmed.len());
        let mut chars = 0usize;
        let mut previous_was_letter = false;
        for word in trimmed.split_whitespace() {
            if !text.is_empty() {
                text.push(' ');
                chars += 1;
                previous_was_letter = false;
            }
            for c in word.chars() {
                if is_surname_letter(c) {
                    previous_was_letter = true;
                } else if is_joiner(c) {
                    if !previous_was_letter {
                        return Err(SurnameError::MisplacedPunctuation);
                    }
                    previous_was_letter = false;
                } else {
                    return Err(SurnameError::InvalidCharacter { character: c });
                }
                text.push(c);
                chars += 1;
                if chars > SURNAME_MAX_CHARS {
                    return Err(SurnameError::TooLong);
                }
            }
            if !previous_was_letter {
                return Err(SurnameError::MisplacedPunctuation);
            }
        }
        Ok(Surname { text })
    }
}

impl Surname {
    /// The surname as typed, trimmed, with single spaces.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The key the directory match compares: lowercase, `ё` read as `е`.
    #[must_use]
    pub fn matching_key(&self) -> String {
        surname_matching_key(&self.text)
    }

    /// Whether this surname matches `other` (a directory entry): case-insensitive, `ё` = `е`.
    #[must_use]
    pub fn matches(&self, other: &str) -> bool {
        self.matching_key() == surname_matching_key(other.trim())
    }
}

/// The matching key of any surname text: lowercase, `ё` read as `е`, inner whitespace
/// collapsed. Two surnames match when their keys are equal.
///
/// ```
/// use resident_auth::config::surname_matching_key;
/// assert_eq!(surname_matching_key("Семёнов"), surname_matching_key("СЕМЕНОВ"));
/// ```
#[must_use]
pub fn surname_matching_key(text: &str) -> String {
    let composed: String = text.nfc().collect();
    let mut key = String::with_capacity(composed.len());
    for (i, word) in composed.split_whitespace().enumerate() {
        if i > 0 {
            key.push(' ');
        }
        // Lower case of the upper case: "ß" and "SS", "ŉ" and "ʼN" get one key.
        for c in word
            .chars()
            .flat_map(char::to_uppercase)
            .flat_map(char::to_lowercase)
        {
            key.push(match c {
                'ё' => 'е',
                '\u{2019}' => '\'',
                other => other,
            });
        }
    }
    key
}

impl AsRef<str> for Surname {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Surname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Surname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Surname({:?})", self.text)
    }
}

impl TryFrom<&str> for Surname {
    type Error = SurnameError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl Serialize for Surname {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Surname {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Explain for SurnameError {
    fn code(&self) -> &'static str {
        match self {
            SurnameError::Empty => "surname.empty",
            SurnameError::TooLong => "surname.too_long",
            SurnameError::Initials => "surname.initials",
            SurnameError::InvalidCharacter { .. } => "surname.invalid_character",
            SurnameError::MisplacedPunctuation => "surname.misplaced_punctuation",
        }
    }

    fn field(&self) -> Option<Field> {
        Some(Field::Surname)
    }

    fn message(&self, locale: Locale) -> String {
        match (self, locale) {
            (SurnameError::Empty, Locale::Ru) => "Введите фамилию".into(),
            (SurnameError::Empty, Locale::En) => "Enter the surname".into(),
            (SurnameError::TooLong, Locale::Ru) => "Фамилия длиннее 100 символов".into(),
            (SurnameError::TooLong, Locale::En) => "The surname is longer than 100 characters".into(),
            (SurnameError::Initials, Locale::Ru) => "Фамилия вводится без инициалов".into(),
            (SurnameError::Initials, Locale::En) => "Enter the surname without initials".into(),
            (SurnameError::InvalidCharacter { character }, Locale::Ru) => format!(
                "Символ «{character}» недопустим в фамилии: только буквы, дефис, апостроф и пробел"
            ),
            (SurnameError::InvalidCharacter { character }, Locale::En) => format!(
                "\u{201c}{character}\u{201d} cannot appear in a surname: letters, hyphen, apostrophe and space only"
            ),
            (SurnameError::MisplacedPunctuation, Locale::Ru) => {
                "Фамилия начинается и заканчивается буквой".into()
            }
            (SurnameError::MisplacedPunctuation, Locale::En) => {
                "A surname starts and ends with a letter".into()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decomposed_yo_is_the_letter_yo() {
        let decomposed = "Семе\u{308}нов";
        let surname: Surname = decomposed.parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(surname.as_str(), "Семёнов");
        assert!(surname.matches("Семенов"));
        assert!(surname.matches("СЕМЕ\u{308}НОВ"));
        let composed: Surname = "Семёнов".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            composed.matches(decomposed),
            "a decomposed directory entry matches too"
        );
        assert_eq!(
            surname_matching_key(decomposed),
            surname_matching_key("Семенов")
        );
    }

    #[test]
    fn letters_whose_upper_case_is_longer_match_it() {
        for surname in ["Straß", "ŉ", "Jǰ"] {
            let parsed: Surname = surname.parse().unwrap_or_else(|e| panic!("{surname}: {e}"));
            assert!(parsed.matches(&surname.to_uppercase()), "{surname}");
        }
    }

    fn error(input: &str) -> SurnameError {
        input.parse::<Surname>().unwrap_err()
    }

    #[test]
    fn spec_initials_are_rejected_with_the_guides_hint() {
        for input in ["Иванов И.И.", "Иванов И. И.", "Иванов И"] {
            let e = error(input);
            assert_eq!(e, SurnameError::Initials, "{input}");
            assert_eq!(e.message(Locale::Ru), "Фамилия вводится без инициалов");
        }
    }

    #[test]
    fn accepted_forms() {
        for (input, canonical) in [
            ("Иванов", "Иванов"),
            ("  Иванов  ", "Иванов"),
            ("Салтыков-Щедрин", "Салтыков-Щедрин"),
            ("О'Коннор", "О'Коннор"),
            ("d'Artagnan", "d'Artagnan"),
            ("Ван  дер Берг", "Ван дер Берг"),
            ("Müller", "Müller"),
            ("Ёлкина", "Ёлкина"),
        ] {
            assert_eq!(input.parse::<Surname>().unwrap().as_str(), canonical);
        }
        assert!("я".repeat(100).parse::<Surname>().is_ok());
    }

    #[test]
    fn rejections() {
        assert_eq!(error(""), SurnameError::Empty);
        assert_eq!(error("  \t"), SurnameError::Empty);
        assert_eq!(error(&"я".repeat(101)), SurnameError::TooLong);
        assert_eq!(
            error("Иванов2"),
            SurnameError::InvalidCharacter { character: '2' }
        );
        assert_eq!(error("-Иванов"), SurnameError::MisplacedPunctuation);
        assert_eq!(error("Иванов-"), SurnameError::MisplacedPunctuation);
        assert_eq!(error("Иванов--Петров"), SurnameError::MisplacedPunctuation);
        assert_eq!(
            error("Ivanov\u{0}"),
            SurnameError::InvalidCharacter { character: '\u{0}' }
        );
        assert_eq!(
            error("王"),
            SurnameError::InvalidCharacter { character: '王' }
        );
    }

    #[test]
    fn matching_ignores_case_and_yo() {
        let s: Surname = "Семёнов".parse().unwrap();
        assert!(s.matches("СЕМЕНОВ"));
        assert!(s.matches("семёнов"));
        assert!(!s.matches("Семенова"));
        let s: Surname = "О’Коннор".parse().unwrap();
        assert!(s.matches("о'коннор"));
    }
}

#[cfg(test)]
mod trait_forms {
    use super::*;

    /// Every standard trait shows the canonical form (mutation testing found them unchecked).
    #[test]
    fn every_form_is_the_canonical_one() {
        let surname: Surname = "  Семёнов-Тян-Шанский ".parse().unwrap();
        assert_eq!(surname.as_ref(), "Семёнов-Тян-Шанский");
        assert_eq!(surname.to_string(), "Семёнов-Тян-Шанский");
        assert_eq!(format!("{surname:?}"), "Surname(\"Семёнов-Тян-Шанский\")");
        assert_eq!(Surname::try_from("Семёнов-Тян-Шанский").unwrap(), surname);
        let json = serde_json::to_string(&surname).unwrap();
        assert_eq!(serde_json::from_str::<Surname>(&json).unwrap(), surname);
        assert!(serde_json::from_str::<Surname>("\"Иванов И.\"").is_err());
        assert_eq!(SurnameError::Empty.field(), Some(Field::Surname));
    }

    /// Words are joined by one space in the matching key, never led by one.
    #[test]
    fn matching_keys_of_several_words() {
        assert_eq!(
            surname_matching_key("  Ван  Дер   Ваальс "),
            "ван дер ваальс"
        );
        assert_eq!(surname_matching_key("Семёнов"), "семенов");
        assert_eq!(surname_matching_key("О\u{2019}Нил"), "о'нил");
    }

    #[test]
    fn every_error_has_its_own_code_and_the_surname_field() {
        let errors = [
            SurnameError::Empty,
            SurnameError::TooLong,
            SurnameError::Initials,
            SurnameError::InvalidCharacter { character: '1' },
            SurnameError::MisplacedPunctuation,
        ];
        let codes: std::collections::BTreeSet<&str> = errors.iter().map(Explain::code).collect();
        assert_eq!(codes.len(), errors.len());
        for error in errors {
            assert!(error.code().starts_with("surname."), "{error:?}");
            assert_eq!(error.field(), Some(Field::Surname));
        }
    }

    /// The 100-character limit counts the spaces between words too.
    #[test]
    fn the_length_limit_counts_spaces() {
        let words = |n: usize, letters: usize| vec!["Ж".repeat(letters); n].join(" ");
        assert!(words(10, 9).parse::<Surname>().is_ok(), "99 characters");
        assert!(words(1, 100).parse::<Surname>().is_ok(), "100 characters");
        assert_eq!(words(10, 10).parse::<Surname>(), Err(SurnameError::TooLong));
    }
}
