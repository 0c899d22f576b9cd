//! Personal account numbers (лицевой счёт) and the regions a deployment serves.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::locale::{Explain, Field, Locale};

/// How many digits a personal account number has.
pub const ACCOUNT_NUMBER_DIGITS: usize = 13;

/// A personal account number: exactly 13 ASCII digits.
///
/// Spaces and hyphens copied from a bill are ignored; everything else must be a digit.
/// Parsing allocates nothing.
///
/// ```
/// use resident_auth::AccountNumber;
/// let number: AccountNumber = "78 0000 0000 001".parse()?;
/// assert_eq!(number.to_string(), "7800000000001");
/// assert_eq!(number.region().to_string(), "78");
/// # Ok::<(), resident_auth::errors::AccountNumberError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountNumber {
    digits: [u8; ACCOUNT_NUMBER_DIGITS],
}

/// Why a string is not a personal account number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccountNumberError {
    /// Nothing but separators (or nothing at all) was entered.
    #[error("the account number is empty")]
    Empty,
    /// A character that is neither a digit nor an ignored separator.
    #[error("the account number contains {character:?}, which is not a digit")]
    NonDigit {
        /// The first offending character.
        character: char,
    },
    /// The number of digits is not 13.
    #[error("the account number has {digits} digits instead of 13")]
    WrongLength {
        /// How many digits were entered.
        digits: usize,
    },
}

/// Characters a user may copy from a bill between digit groups.
fn is_separator(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t'
            | '\u{a0}'
            | '\u{202f}'
            | '-'
            | '\u{2010}'
            | '\u{2011}'
            | '\u{2012}'
            | '\u{2013}'
    )
}

impl FromStr for AccountNumber {
    type Err = AccountNumberError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let mut digits = [0u8; ACCOUNT_NUMBER_DIGITS];
        let mut count = 0usize;
        for c in input.chars() {
            if is_separator(c) {
                continue;
            }
            if !c.is_ascii_digit() {
                return Err(AccountNumberError::NonDigit { character: c });
            }
            if let Some(slot) = digits.get_mut(count) {
                // `c` is an ASCII digit, so it fits in one byte.
                *slot = c as u8;
            }
            count += 1;
        }
        match count {
            0 => Err(AccountNumberError::Empty),
            ACCOUNT_NUMBER_DIGITS => Ok(AccountNumber { digits }),
            other => Err(AccountNumberError::WrongLength { digits: other }),
        }
    }
}

impl AccountNumber {
    /// The canonical form: 13 digits, no separators.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored, so this conversion cannot fail.
        std::str::from_utf8(&self.digits).unwrap_or_default()
    }

    /// The region code: the first two digits.
    ///
    /// ```
    /// use resident_auth::AccountNumber;
    /// let number: AccountNumber = "4700000000002".parse()?;
    /// assert_eq!(number.region().as_str(), "47");
    /// # Ok::<(), resident_auth::errors::AccountNumberError>(())
    /// ```
    #[must_use]
    pub fn region(&self) -> Region {
        let [a, b, ..] = self.digits;
        Region { digits: [a, b] }
    }
}

impl AsRef<str> for AccountNumber {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for AccountNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for AccountNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountNumber({})", self.as_str())
    }
}

impl TryFrom<&str> for AccountNumber {
    type Error = AccountNumberError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl Serialize for AccountNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AccountNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Explain for AccountNumberError {
    fn code(&self) -> &'static str {
        match self {
            AccountNumberError::Empty => "account_number.empty",
            AccountNumberError::NonDigit { .. } => "account_number.non_digit",
            AccountNumberError::WrongLength { .. } => "account_number.wrong_length",
        }
    }

    fn field(&self) -> Option<Field> {
        Some(Field::AccountNumber)
    }

    fn message(&self, locale: Locale) -> String {
        match (self, locale) {
            (AccountNumberError::Empty, Locale::Ru) => "Введите номер лицевого счёта".into(),
            (AccountNumberError::Empty, Locale::En) => "Enter the personal account number".into(),
            (AccountNumberError::NonDigit { character }, Locale::Ru) => format!(
                "Номер лицевого счёта состоит только из цифр, а введён символ «{character}»"
            ),
            (AccountNumberError::NonDigit { character }, Locale::En) => format!(
                "A personal account number has digits only, but \u{201c}{character}\u{201d} was entered"
            ),
            (AccountNumberError::WrongLength { digits }, Locale::Ru) => format!(
                "Номер лицевого счёта должен состоять из 13 цифр, а введено {digits} {}",
                russian_plural(*digits, "цифра", "цифры", "цифр")
            ),
            (AccountNumberError::WrongLength { digits }, Locale::En) => format!(
                "A personal account number has 13 digits, but {digits} {} entered",
                if *digits == 1 { "digit was" } else { "digits were" }
            ),
        }
    }
}

/// Chooses the Russian plural form for `n` (1 цифра, 2 цифры, 5 цифр).
pub(crate) fn russian_plural(
    n: usize,
    one: &'static str,
    few: &'static str,
    many: &'static str,
) -> &'static str {
    let (tens, units) = (n % 100, n % 10);
    if (11..=14).contains(&tens) {
        many
    } else if units == 1 {
        one
    } else if (2..=4).contains(&units) {
        few
    } else {
        many
    }
}

/// A region code: the first two digits of a personal account number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Region {
    digits: [u8; 2],
}

impl Region {
    /// The two digits as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.digits).unwrap_or_default()
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Region({})", self.as_str())
    }
}

/// A string that is not a two-digit region code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a region code is exactly two digits")]
pub struct RegionError;

impl FromStr for Region {
    type Err = RegionError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        match input.trim().as_bytes() {
            &[a, b] if a.is_ascii_digit() && b.is_ascii_digit() => Ok(Region { digits: [a, b] }),
            _ => Err(RegionError),
        }
    }
}

/// The regions a deployment serves. The default serves all.
///
/// ```
/// use resident_auth::{AccountNumber, config::ServedRegions};
/// let served: ServedRegions = "78, 47".parse()?;
/// let spb: AccountNumber = "7800000000001".parse()?;
/// let moscow: AccountNumber = "7700000000001".parse()?;
/// assert!(served.serves(&spb));
/// assert!(served.check(&moscow).is_err());
/// assert!(ServedRegions::all().serves(&moscow));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServedRegions {
    /// `None` serves every region.
    only: Option<Vec<Region>>,
}

impl ServedRegions {
    /// Serves every region.
    #[must_use]
    pub fn all() -> Self {
        Self { only: None }
    }

    /// Serves exactly the given regions.
    #[must_use]
    pub fn only(regions: impl IntoIterator<Item = Region>) -> Self {
        let mut list: Vec<Region> = regions.into_iter().collect();
        list.sort_unstable();
        list.dedup();
        Self { only: Some(list) }
    }

    /// Whether the account's region is served.
    #[must_use]
    pub fn serves(&self, account: &AccountNumber) -> bool {
        match &self.only {
            None => true,
            Some(list) => list.binary_search(&account.region()).is_ok(),
        }
    }

    /// Like [`serves`](Self::serves), as a typed error for the registration journey.
    ///
    /// # Errors
    /// [`RegionNotServed`] when the account's first two digits are not a served region.
    pub fn check(&self, account: &AccountNumber) -> Result<(), RegionNotServed> {
        if self.serves(account) {
            Ok(())
        } else {
            Err(RegionNotServed {
                region: account.region(),
            })
        }
    }
}

impl FromStr for ServedRegions {
    type Err = RegionError;

    /// A comma-separated list of two-digit codes; an empty string or `*` means all.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let trimmed = input.trim();
        if trimmed.is_empty() || trimmed == "*" {
            return Ok(Self::all());
        }
        let regions = trimmed
            .split(',')
            .map(str::parse)
            .collect::<Result<Vec<Region>, _>>()?;
        Ok(Self::only(regions))
    }
}

/// The account number's region is not served by this deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("region {region} is not served")]
pub struct RegionNotServed {
    /// The account number's first two digits.
    pub region: Region,
}

impl Explain for RegionNotServed {
    fn code(&self) -> &'static str {
        "account.region_not_served"
    }

    fn field(&self) -> Option<Field> {
        Some(Field::AccountNumber)
    }

    fn message(&self, locale: Locale) -> String {
        match locale {
            Locale::Ru => format!(
                "Первые две цифры лицевого счёта ({}) не совпадают с кодом обслуживаемого региона: \
                 либо введён не номер лицевого счёта, либо управляющая организация не сотрудничает \
                 с нашим расчётным центром",
                self.region
            ),
            Locale::En => format!(
                "The first two digits of the account number ({}) are not a region we serve: either \
                 this is not a personal account number, or the managing company does not work with \
                 our settlement center",
                self.region
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples() {
        let n: AccountNumber = "78 0000 0000 001".parse().unwrap();
        assert_eq!(n.as_str(), "7800000000001");
        assert_eq!(n.region().as_str(), "78");
        assert_eq!("78-0000-0000-001".parse::<AccountNumber>().unwrap(), n);
        assert_eq!("".parse::<AccountNumber>(), Err(AccountNumberError::Empty));
        assert_eq!(
            " - ".parse::<AccountNumber>(),
            Err(AccountNumberError::Empty)
        );
        assert_eq!(
            "78000000000x1".parse::<AccountNumber>(),
            Err(AccountNumberError::NonDigit { character: 'x' })
        );
        assert_eq!(
            "780000000001".parse::<AccountNumber>(),
            Err(AccountNumberError::WrongLength { digits: 12 })
        );
        assert_eq!(
            "78000000000012".parse::<AccountNumber>(),
            Err(AccountNumberError::WrongLength { digits: 14 })
        );
    }

    #[test]
    fn non_ascii_digits_are_not_digits() {
        assert_eq!(
            "٧٨00000000001".parse::<AccountNumber>(),
            Err(AccountNumberError::NonDigit { character: '٧' })
        );
    }

    #[test]
    fn messages_name_what_was_wrong() {
        let e = AccountNumberError::WrongLength { digits: 12 };
        assert!(e.message(Locale::Ru).contains("12 цифр"));
        assert!(e.message(Locale::En).contains("12 digits"));
        let e = AccountNumberError::NonDigit { character: 'x' };
        assert!(e.message(Locale::Ru).contains('x'));
    }

    #[test]
    fn russian_plurals() {
        assert_eq!(russian_plural(1, "a", "b", "c"), "a");
        assert_eq!(russian_plural(3, "a", "b", "c"), "b");
        assert_eq!(russian_plural(12, "a", "b", "c"), "c");
        assert_eq!(russian_plural(22, "a", "b", "c"), "b");
        assert_eq!(russian_plural(111, "a", "b", "c"), "c");
    }

    #[test]
    fn region_not_served_explains_like_the_guide() {
        let served: ServedRegions = "78".parse().unwrap();
        let other: AccountNumber = "5000000000001".parse().unwrap();
        let err = served.check(&other).unwrap_err();
        assert_eq!(err.code(), "account.region_not_served");
        assert!(err.message(Locale::Ru).contains("не номер лицевого счёта"));
        assert!(err.message(Locale::Ru).contains("расчётным центром"));
        assert!(" , ".parse::<ServedRegions>().is_err());
        assert_eq!("".parse::<ServedRegions>().unwrap(), ServedRegions::all());
    }
}

#[cfg(test)]
mod trait_forms {
    use super::*;

    /// Every standard trait shows the canonical form (mutation testing found them unchecked).
    #[test]
    fn every_form_is_the_canonical_one() {
        let account: AccountNumber = "78 0000-0000 001".parse().unwrap();
        assert_eq!(account.as_ref(), "7800000000001");
        assert_eq!(account.to_string(), "7800000000001");
        assert_eq!(format!("{account:?}"), "AccountNumber(7800000000001)");
        assert_eq!(AccountNumber::try_from("7800000000001").unwrap(), account);
        let json = serde_json::to_string(&account).unwrap();
        assert_eq!(json, "\"7800000000001\"");
        assert_eq!(
            serde_json::from_str::<AccountNumber>(&json).unwrap(),
            account
        );
        assert!(serde_json::from_str::<AccountNumber>("\"12\"").is_err());
        let region = account.region();
        assert_eq!(region.to_string(), "78");
        assert_eq!(format!("{region:?}"), "Region(78)");
        for error in [
            AccountNumberError::Empty,
            AccountNumberError::NonDigit { character: 'x' },
            AccountNumberError::WrongLength { digits: 12 },
        ] {
            assert_eq!(error.field(), Some(Field::AccountNumber));
        }
        assert_eq!(" 47 ".parse::<Region>().unwrap().to_string(), "47");
        for bad in ["7a", "a7", "478", "7", "", "٤٧"] {
            assert_eq!(bad.parse::<Region>(), Err(RegionError), "{bad:?}");
        }
        assert!(ServedRegions::all().serves(&account));
        assert!("78".parse::<ServedRegions>().unwrap().serves(&account));
        assert!(!"47".parse::<ServedRegions>().unwrap().serves(&account));
        let not_served = "47"
            .parse::<ServedRegions>()
            .unwrap()
            .check(&account)
            .unwrap_err();
        assert_eq!(not_served.field(), Some(Field::AccountNumber));
    }
}
