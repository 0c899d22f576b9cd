#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod account_number;
mod email;
mod locale;
mod premises;
mod surname;

pub use account_number::{
    AccountNumber, AccountNumberError, Region, RegionError, RegionNotServed, ServedRegions,
    ACCOUNT_NUMBER_DIGITS,
};
pub use email::{Email, EmailError, EMAIL_MAX_CHARS};
pub use locale::{Field, Locale, UnsupportedLocale, UserError};
pub use premises::{Premises, PremisesError, PremisesKind};
pub use surname::{surname_matching_key, Surname, SurnameError, SURNAME_MAX_CHARS};
