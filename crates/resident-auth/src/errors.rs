//! Why an input was refused: each parser's error, with its stable code and messages
//! ([`crate::errors::Explain`]), the field it names, and the limits the messages quote.

pub use crate::account_number::ACCOUNT_NUMBER_DIGITS;
pub use crate::account_number::{AccountNumberError, RegionError, RegionNotServed};
#[cfg(feature = "directory-csv")]
#[cfg_attr(docsrs, doc(cfg(feature = "directory-csv")))]
pub use crate::directory::{DirectoryCsvError, DirectoryRowError};
pub use crate::email::EmailError;
pub use crate::email::EMAIL_MAX_CHARS;
pub(crate) mod problem;
pub use crate::ids::InvalidId;
pub use crate::locale::Explain;
pub use crate::locale::{Field, UnsupportedLocale};
pub use crate::password::NewPasswordError;
pub use crate::password::{NEW_PASSWORD_MAX_CHARS, NEW_PASSWORD_MIN_CHARS};
pub use crate::premises::PremisesError;
pub use crate::service::MissingPort;
pub use crate::surname::SurnameError;
pub use crate::surname::SURNAME_MAX_CHARS;
pub use problem::{Problem, Unavailable};

/// Why a link template was refused (see [`crate::letters::LinkTemplate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidLinkTemplate {
    /// Not an absolute `https://` URL (`http://` only for a loopback host).
    #[error("a link template must be an absolute https:// URL (http:// only for localhost)")]
    NotAbsoluteHttps,
    /// No `{token}`, or more than one.
    #[error("a link template must hold `{{token}}` exactly once")]
    Placeholder,
    /// `{token}` (or a brace) in the scheme, user or host.
    #[error("a link template must put `{{token}}` after the host")]
    PlaceholderInHost,
    /// Whitespace, control characters, a stray brace, user information, no host, or over
    /// 2048 bytes.
    #[error("a link template must be a plain URL: no spaces, stray braces or user@")]
    Malformed,
}

impl InvalidLinkTemplate {
    /// The stable code: `link_template.not_https`, `link_template.placeholder`,
    /// `link_template.placeholder_in_host`, `link_template.malformed`.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            InvalidLinkTemplate::NotAbsoluteHttps => "link_template.not_https",
            InvalidLinkTemplate::Placeholder => "link_template.placeholder",
            InvalidLinkTemplate::PlaceholderInHost => "link_template.placeholder_in_host",
            InvalidLinkTemplate::Malformed => "link_template.malformed",
        }
    }
}
