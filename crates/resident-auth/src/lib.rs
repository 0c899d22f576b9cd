#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod account_number;
mod clock;
#[cfg(feature = "directory-csv")]
mod directory;
mod email;
mod error;
pub mod events;
mod hasher;
mod ids;
mod letters;
mod locale;
pub mod mail_queue;
pub mod metrics;
mod password;
pub mod ports;
mod premises;
mod secret;
mod service;
mod surname;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod conformance;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod enumeration;
#[cfg(feature = "memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
pub mod memory;

pub use account_number::{
    AccountNumber, AccountNumberError, Region, RegionError, RegionNotServed, ServedRegions,
    ACCOUNT_NUMBER_DIGITS,
};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
#[cfg(feature = "directory-csv")]
#[cfg_attr(docsrs, doc(cfg(feature = "directory-csv")))]
pub use directory::{parse_directory_csv, DirectoryCsvError, DirectoryRowError};
pub use email::{Email, EmailError, EMAIL_MAX_CHARS};
pub use error::{Error, Problem, Unavailable};
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub use hasher::CountingHasher;
pub use hasher::{Argon2Hasher, CredentialHasher, HashError, HashParams, HashWork, Verification};
pub use ids::{CabinetId, InvalidId, LetterId, SessionId};
pub use letters::{escape_html, Letter, LetterContent, LetterKind, Links, RenderedLetter};
pub use locale::{Field, Locale, UnsupportedLocale, UserError};
pub use mail_queue::{
    InvalidMailQueueKey, LetterStatus, MailQueueKey, MailQueueKeys, QueuedLetter, SealedLetter,
};
pub use password::{NewPassword, NewPasswordError, NEW_PASSWORD_MAX_CHARS, NEW_PASSWORD_MIN_CHARS};
pub use ports::{
    AccountDirectory, CabinetStore, CounterStore, DirectoryRecord, LetterStore, LinkStore,
    MailError, Mailer, SessionStore, SplitStore, Store, StoreError,
};
pub use premises::{Premises, PremisesError, PremisesKind};
pub use secret::{generate_password, HashedPassword, Token, TokenHash, GENERATED_PASSWORD_CHARS};
pub use service::admin;
pub use service::{
    AddressForm, AuthConfig, AuthService, AuthServiceBuilder, Authenticated, BuildError,
    CabinetView, DeliveryPolicy, DeliveryReport, Limit, LinkedAccount, LoggedIn, Ports,
    RegistrationForm, RequestContext, SessionView,
};
pub use surname::{surname_matching_key, Surname, SurnameError, SURNAME_MAX_CHARS};

/// Re-exported so hosts name the same secret types the API takes.
pub use secrecy;

/// The workspace README's examples, compiled and run as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct WorkspaceReadmeDoctests;
