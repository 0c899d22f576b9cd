//! Locales of user-facing messages and the fields they concern.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// The language of a user-facing message. Russian is the default, as in the guide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Locale {
    /// Russian, the guide's language and the default.
    #[default]
    Ru,
    /// English.
    En,
}

impl Locale {
    /// Picks a locale from an HTTP `Accept-Language` value: the first supported language
    /// wins, Russian when none is supported or the header is absent.
    ///
    /// ```
    /// use resident_auth::Locale;
    /// assert_eq!(Locale::from_accept_language("en-GB,en;q=0.9"), Locale::En);
    /// assert_eq!(Locale::from_accept_language("de, ru;q=0.5"), Locale::Ru);
    /// assert_eq!(Locale::from_accept_language(""), Locale::Ru);
    /// ```
    #[must_use]
    pub fn from_accept_language(header: &str) -> Self {
        let mut best: Option<(Locale, f32)> = None;
        for part in header.split(',') {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or("").trim();
            let quality = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let Ok(locale) = tag.parse::<Locale>() else {
                continue;
            };
            if quality > 0.0 && best.is_none_or(|(_, q)| quality > q) {
                best = Some((locale, quality));
            }
        }
        best.map(|(locale, _)| locale).unwrap_or_default()
    }

    /// The two-letter language code (`ru`, `en`).
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Locale::Ru => "ru",
            Locale::En => "en",
        }
    }
}

impl FromStr for Locale {
    type Err = UnsupportedLocale;

    /// Accepts a language tag such as `ru`, `ru-RU`, `en`, `en-US` (case-insensitive).
    fn from_str(tag: &str) -> Result<Self, Self::Err> {
        let primary = tag.split(['-', '_']).next().unwrap_or("");
        if primary.eq_ignore_ascii_case("ru") {
            Ok(Locale::Ru)
        } else if primary.eq_ignore_ascii_case("en") {
            Ok(Locale::En)
        } else {
            Err(UnsupportedLocale)
        }
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A language tag that names neither Russian nor English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unsupported locale")]
pub struct UnsupportedLocale;

/// The input field an error concerns; serialised as the field's name in the JSON API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Field {
    /// The resident's surname.
    Surname,
    /// The 13-digit personal account number.
    AccountNumber,
    /// The email address (the login).
    Email,
    /// The premises number typed at activation.
    Premises,
    /// The password typed at login.
    Password,
    /// The current password, typed to change it.
    CurrentPassword,
    /// The new password a resident chooses.
    NewPassword,
    /// A session's public identity.
    Session,
    /// A token from a link (confirmation, activation, recovery).
    Token,
}

impl Field {
    /// The field's name as used in the JSON API (`account_number`, `premises`, …).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Field::Surname => "surname",
            Field::AccountNumber => "account_number",
            Field::Email => "email",
            Field::Premises => "premises",
            Field::Password => "password",
            Field::CurrentPassword => "current_password",
            Field::NewPassword => "new_password",
            Field::Session => "session_id",
            Field::Token => "token",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error a user can cause and fix: a stable dotted code, the field it concerns, and a
/// message in each supported locale.
///
/// Codes never change once published; hosts may match on them.
pub trait Explain {
    /// The stable dotted code, e.g. `premises.unknown_letter`.
    fn code(&self) -> &'static str;
    /// The input field the error concerns, if any.
    fn field(&self) -> Option<Field>;
    /// The message shown to the user in `locale`.
    fn message(&self, locale: Locale) -> String;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_prefers_highest_quality_supported_tag() {
        assert_eq!(
            Locale::from_accept_language("ru;q=0.4, en;q=0.8"),
            Locale::En
        );
        assert_eq!(Locale::from_accept_language("en;q=0, ru"), Locale::Ru);
        assert_eq!(Locale::from_accept_language("fr-FR"), Locale::Ru);
        assert_eq!(Locale::from_accept_language("EN-us"), Locale::En);
    }
}
