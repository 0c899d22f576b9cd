//! Why an input was refused: each parser's error, with its stable code and messages
//! ([`crate::UserError`]), the field it names, and the limits the messages quote.

pub use crate::account_number::ACCOUNT_NUMBER_DIGITS;
pub use crate::account_number::{AccountNumberError, RegionError, RegionNotServed};
#[cfg(feature = "directory-csv")]
#[cfg_attr(docsrs, doc(cfg(feature = "directory-csv")))]
pub use crate::directory::{DirectoryCsvError, DirectoryRowError};
pub use crate::email::EmailError;
pub use crate::email::EMAIL_MAX_CHARS;
pub use crate::ids::InvalidId;
pub use crate::locale::{Field, UnsupportedLocale};
pub use crate::mail_queue::InvalidMailQueueKey;
pub use crate::password::NewPasswordError;
pub use crate::password::{NEW_PASSWORD_MAX_CHARS, NEW_PASSWORD_MIN_CHARS};
pub use crate::premises::PremisesError;
pub use crate::surname::SurnameError;
pub use crate::surname::SURNAME_MAX_CHARS;
