//! Premises numbers (номер помещения) typed at activation.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::locale::{Explain, Field, Locale};

/// The largest number a part of a premises number may have (six digits).
const MAX_PART: u32 = 999_999;

/// What kind of premises a number denotes, from its trailing letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PremisesKind {
    /// No letter: a flat (`12`).
    Apartment,
    /// `П`: a parking place (`123П`, `123/456П`).
    Parking,
    /// `Н`: non-residential or commercial premises (`2Н`).
    NonResidential,
}

impl PremisesKind {
    /// The canonical trailing letter, empty for an apartment.
    #[must_use]
    pub const fn letter(self) -> &'static str {
        match self {
            PremisesKind::Apartment => "",
            PremisesKind::Parking => "П",
            PremisesKind::NonResidential => "Н",
        }
    }

    /// Reads a kind letter leniently: `П`/`п`, `Н`/`н` and the Latin look-alikes `H`/`h`.
    fn from_letter(c: char) -> Option<Self> {
        match c {
            'П' | 'п' => Some(PremisesKind::Parking),
            'Н' | 'н' | 'H' | 'h' => Some(PremisesKind::NonResidential),
            _ => None,
        }
    }
}

/// A premises number: `N` or `N/M`, then an optional kind letter (`П` parking, `Н`
/// non-residential). N and M have 1–6 digits and are not zero.
///
/// Input is read leniently (surrounding and inner spaces, lowercase letters, Latin `H`
/// for `Н`); [`Display`](fmt::Display) gives the canonical form, and two inputs denote the
/// same premises exactly when their canonical forms are equal. Parsing allocates nothing.
///
/// ```
/// use resident_auth::{Premises, PremisesKind};
/// let parking: Premises = " 123 / 456 п".parse()?;
/// assert_eq!(parking.to_string(), "123/456П");
/// assert_eq!(parking.kind(), PremisesKind::Parking);
/// assert_eq!(parking.number(), 123);
/// assert_eq!("2h".parse::<Premises>()?, "2Н".parse::<Premises>()?);
/// # Ok::<(), resident_auth::errors::PremisesError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Premises {
    number: u32,
    part: Option<u32>,
    kind: PremisesKind,
}

/// Why a string is not a premises number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PremisesError {
    /// Nothing was entered.
    #[error("the premises number is empty")]
    Empty,
    /// A letter other than `П` or `Н` (e.g. `12А`).
    #[error("{letter:?} is not a premises letter; only П and Н are")]
    UnknownLetter {
        /// The offending letter.
        letter: char,
    },
    /// A character that is neither a digit, `/`, nor a letter.
    #[error("{character:?} cannot appear in a premises number")]
    UnexpectedCharacter {
        /// The offending character.
        character: char,
    },
    /// The input does not start with a number (`/5`, `П12`).
    #[error("the premises number must start with a number")]
    MissingNumber,
    /// Nothing follows the slash (`12/`, `12/П`).
    #[error("a number must follow the slash")]
    MissingNumberAfterSlash,
    /// A number is zero (`0`, `12/0`).
    #[error("a premises number cannot be zero")]
    Zero,
    /// A number has more than six digits.
    #[error("a premises number has at most six digits")]
    TooLong,
    /// Something follows the kind letter (`12ПП`, `12П3`).
    #[error("nothing may follow the premises letter")]
    TrailingAfterLetter,
}

/// Accumulates one number part, ignoring leading zeros so that only significant digits
/// count towards the six-digit limit.
#[derive(Clone, Copy)]
struct PartAccumulator {
    value: u32,
    significant_digits: u8,
    too_long: bool,
}

impl PartAccumulator {
    const fn new() -> Self {
        Self {
            value: 0,
            significant_digits: 0,
            too_long: false,
        }
    }

    fn push(&mut self, digit: u32) {
        if self.value == 0 && digit == 0 {
            return;
        }
        if self.significant_digits >= 6 {
            self.too_long = true;
            return;
        }
        self.value = self.value * 10 + digit;
        self.significant_digits += 1;
    }

    fn finish(self) -> Result<u32, PremisesError> {
        if self.too_long {
            Err(PremisesError::TooLong)
        } else if self.value == 0 {
            Err(PremisesError::Zero)
        } else {
            debug_assert!(self.value <= MAX_PART);
            Ok(self.value)
        }
    }
}

#[derive(Clone, Copy)]
enum State {
    Start,
    Number,
    Slash,
    Part,
    Letter,
}

impl FromStr for Premises {
    type Err = PremisesError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let mut state = State::Start;
        let mut number = PartAccumulator::new();
        let mut part = PartAccumulator::new();
        let mut kind = PremisesKind::Apartment;
        let mut has_part = false;
        for c in input.chars() {
            if c.is_whitespace() {
                continue;
            }
            let digit = c.to_digit(10).filter(|_| c.is_ascii_digit());
            let letter = PremisesKind::from_letter(c);
            state = match (state, digit, letter, c) {
                (State::Letter, _, _, c)
                    if c.is_alphanumeric() && letter.is_none() && digit.is_none() =>
                {
                    return Err(PremisesError::UnknownLetter { letter: c })
                }
                (State::Letter, _, _, c) if c.is_alphanumeric() => {
                    return Err(PremisesError::TrailingAfterLetter)
                }
                (State::Start, Some(d), _, _) | (State::Number, Some(d), _, _) => {
                    number.push(d);
                    State::Number
                }
                (State::Slash, Some(d), _, _) | (State::Part, Some(d), _, _) => {
                    part.push(d);
                    State::Part
                }
                (State::Start, None, Some(_), _) | (State::Start, None, None, '/') => {
                    return Err(PremisesError::MissingNumber)
                }
                (State::Number, None, None, '/') => {
                    has_part = true;
                    State::Slash
                }
                (State::Slash, None, Some(_), _) | (State::Slash, None, None, '/') => {
                    return Err(PremisesError::MissingNumberAfterSlash)
                }
                (State::Number | State::Part, None, Some(k), _) => {
                    kind = k;
                    State::Letter
                }
                (_, None, None, c) if c.is_alphabetic() => {
                    return Err(PremisesError::UnknownLetter { letter: c })
                }
                (_, _, _, c) => return Err(PremisesError::UnexpectedCharacter { character: c }),
            };
        }
        match state {
            State::Start => Err(PremisesError::Empty),
            State::Slash => Err(PremisesError::MissingNumberAfterSlash),
            State::Number => Ok(Premises {
                number: number.finish()?,
                part: None,
                kind,
            }),
            State::Part | State::Letter => {
                let number = number.finish()?;
                let part = if has_part { Some(part.finish()?) } else { None };
                Ok(Premises { number, part, kind })
            }
        }
    }
}

impl Premises {
    /// The kind of premises, from the trailing letter.
    #[must_use]
    pub fn kind(&self) -> PremisesKind {
        self.kind
    }

    /// The (first) number, `123` in `123/456П`.
    #[must_use]
    pub fn number(&self) -> u32 {
        self.number
    }

    /// The number after the slash, `456` in `123/456П`, if any.
    #[must_use]
    pub fn part(&self) -> Option<u32> {
        self.part
    }
}

impl fmt::Display for Premises {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number)?;
        if let Some(part) = self.part {
            write!(f, "/{part}")?;
        }
        f.write_str(self.kind.letter())
    }
}

impl fmt::Debug for Premises {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Premises({self})")
    }
}

impl TryFrom<&str> for Premises {
    type Error = PremisesError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl Serialize for Premises {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Premises {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Explain for PremisesError {
    fn code(&self) -> &'static str {
        match self {
            PremisesError::Empty => "premises.empty",
            PremisesError::UnknownLetter { .. } => "premises.unknown_letter",
            PremisesError::UnexpectedCharacter { .. } => "premises.unexpected_character",
            PremisesError::MissingNumber => "premises.missing_number",
            PremisesError::MissingNumberAfterSlash => "premises.missing_number_after_slash",
            PremisesError::Zero => "premises.zero",
            PremisesError::TooLong => "premises.too_long",
            PremisesError::TrailingAfterLetter => "premises.trailing_after_letter",
        }
    }

    fn field(&self) -> Option<Field> {
        Some(Field::Premises)
    }

    fn message(&self, locale: Locale) -> String {
        const HINT_RU: &str = "Для квартиры введите число (12), для парковочного места добавьте русскую букву П без пробела (123П, 123/456П), для нежилого помещения — Н (2Н)";
        const HINT_EN: &str = "For a flat enter a number (12); for a parking place add the Cyrillic letter П (123П, 123/456П); for non-residential premises add Н (2Н)";
        let (ru, en) = match self {
            PremisesError::Empty => ("Введите номер помещения".to_owned(), "Enter the premises number".to_owned()),
            PremisesError::UnknownLetter { letter } => (
                format!("Буква «{letter}» не используется в номере помещения: допустимы только П и Н"),
                format!("The letter \u{201c}{letter}\u{201d} is not used in premises numbers: only П and Н are"),
            ),
            PremisesError::UnexpectedCharacter { character } => (
                format!("Символ «{character}» недопустим в номере помещения"),
                format!("The character \u{201c}{character}\u{201d} cannot appear in a premises number"),
            ),
            PremisesError::MissingNumber => (
                "Номер помещения должен начинаться с числа".to_owned(),
                "A premises number starts with a number".to_owned(),
            ),
            PremisesError::MissingNumberAfterSlash => (
                "После косой черты должно стоять число".to_owned(),
                "A number must follow the slash".to_owned(),
            ),
            PremisesError::Zero => (
                "Номер помещения не может быть нулём".to_owned(),
                "A premises number cannot be zero".to_owned(),
            ),
            PremisesError::TooLong => (
                "Номер помещения содержит не больше шести цифр".to_owned(),
                "A premises number has at most six digits".to_owned(),
            ),
            PremisesError::TrailingAfterLetter => (
                "После буквы П или Н ничего не вводится".to_owned(),
                "Nothing may follow the letter П or Н".to_owned(),
            ),
        };
        match locale {
            Locale::Ru => format!("{ru}. {HINT_RU}"),
            Locale::En => format!("{en}. {HINT_EN}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(input: &str) -> String {
        input.parse::<Premises>().unwrap().to_string()
    }

    fn error(input: &str) -> PremisesError {
        input.parse::<Premises>().unwrap_err()
    }

    #[test]
    fn spec_examples_parse_to_canonical_form() {
        assert_eq!(canonical("12"), "12");
        assert_eq!(canonical("123П"), "123П");
        assert_eq!(canonical("123/456П"), "123/456П");
        assert_eq!(canonical("2Н"), "2Н");
        assert_eq!(canonical("123 П"), "123П");
        assert_eq!(canonical(" 123п "), "123П");
        assert_eq!(canonical("2н"), "2Н");
        assert_eq!(canonical("2H"), "2Н");
        assert_eq!(canonical("2h"), "2Н");
        assert_eq!(canonical("12/3"), "12/3");
        assert_eq!(canonical("012"), "12");
        assert_eq!(canonical("999999"), "999999");
    }

    #[test]
    fn kinds_and_accessors() {
        let p: Premises = "123/456П".parse().unwrap();
        assert_eq!(
            (p.kind(), p.number(), p.part()),
            (PremisesKind::Parking, 123, Some(456))
        );
        assert_eq!(
            "12".parse::<Premises>().unwrap().kind(),
            PremisesKind::Apartment
        );
        assert_eq!(
            "2Н".parse::<Premises>().unwrap().kind(),
            PremisesKind::NonResidential
        );
    }

    #[test]
    fn spec_rejections_name_what_was_wrong() {
        assert_eq!(error("12А"), PremisesError::UnknownLetter { letter: 'А' });
        assert_eq!(error("0"), PremisesError::Zero);
        assert_eq!(error("/5"), PremisesError::MissingNumber);
        assert_eq!(error("12/"), PremisesError::MissingNumberAfterSlash);
        assert_eq!(error("12ПП"), PremisesError::TrailingAfterLetter);
        assert_eq!(error(""), PremisesError::Empty);
        assert_eq!(error("   "), PremisesError::Empty);
        assert_eq!(error("П12"), PremisesError::MissingNumber);
        assert_eq!(error("12/П"), PremisesError::MissingNumberAfterSlash);
        assert_eq!(error("12//3"), PremisesError::MissingNumberAfterSlash);
        assert_eq!(
            error("12/3/4"),
            PremisesError::UnexpectedCharacter { character: '/' }
        );
        assert_eq!(
            error("12.5"),
            PremisesError::UnexpectedCharacter { character: '.' }
        );
        assert_eq!(error("1234567"), PremisesError::TooLong);
        assert_eq!(error("12/0П"), PremisesError::Zero);
        assert_eq!(error("12П3"), PremisesError::TrailingAfterLetter);
        assert_eq!(error("12Пx"), PremisesError::UnknownLetter { letter: 'x' });
        assert_eq!(error("12x"), PremisesError::UnknownLetter { letter: 'x' });
        assert_eq!(
            error("١٢"),
            PremisesError::UnexpectedCharacter { character: '١' }
        );
        assert_eq!(error("12А").code(), "premises.unknown_letter");
        assert!(error("12А").message(Locale::Ru).contains("«А»"));
    }

    #[test]
    fn same_premises_iff_same_canonical_form() {
        let a: Premises = "123/456 п".parse().unwrap();
        let b: Premises = "123/456П".parse().unwrap();
        let c: Premises = "123/456Н".parse().unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}

#[cfg(test)]
mod trait_forms {
    use super::*;

    /// Every standard trait shows the canonical form (mutation testing found them unchecked).
    #[test]
    fn every_form_is_the_canonical_one() {
        let premises: Premises = "123/456 п".parse().unwrap();
        assert_eq!(premises.to_string(), "123/456П");
        assert_eq!(format!("{premises:?}"), "Premises(123/456П)");
        assert_eq!(Premises::try_from("123/456П").unwrap(), premises);
        let json = serde_json::to_string(&premises).unwrap();
        assert_eq!(json, "\"123/456П\"");
        assert_eq!(serde_json::from_str::<Premises>(&json).unwrap(), premises);
        assert!(serde_json::from_str::<Premises>("\"0\"").is_err());
        assert_eq!(PremisesError::Empty.field(), Some(Field::Premises));
    }

    /// Leading zeros go, inner and trailing ones stay; what follows the kind letter.
    #[test]
    fn zeros_and_what_follows_the_letter() {
        let canonical = |text: &str| text.parse::<Premises>().map(|p| p.to_string());
        assert_eq!(canonical("007").as_deref(), Ok("7"));
        assert_eq!(canonical("10").as_deref(), Ok("10"));
        assert_eq!(canonical("100500").as_deref(), Ok("100500"));
        assert_eq!(canonical("0100/020П").as_deref(), Ok("100/20П"));
        assert_eq!(canonical("1000000"), Err(PremisesError::TooLong));
        assert_eq!(
            canonical("12П/3"),
            Err(PremisesError::UnexpectedCharacter { character: '/' })
        );
    }
}
