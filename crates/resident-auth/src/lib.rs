#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod account_number;
mod clock;
#[cfg(feature = "directory-csv")]
mod directory;
mod email;
mod error;
pub mod errors;
pub mod events;
mod hasher;
mod ids;
pub mod letters;
mod locale;
pub mod mail_queue;
pub mod metrics;
mod password;
pub mod ports;
mod premises;
mod secret;
mod service;
mod surname;

#[cfg(feature = "memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
pub mod memory;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

// What a host names: the service, its forms and answers, the errors, the value types, the
// mail queue key and the hasher. What a store, mailer or directory author names lives in
// `ports`; a letter in `letters`; each parser's error in `errors`; test helpers behind the
// `testing` feature. One path per item: the rest is re-exported here only for the crate.
pub use account_number::{AccountNumber, Region, ServedRegions};
pub use clock::Timestamp;
pub use email::Email;
pub use error::{Error, ErrorKind, Problem, Unavailable};
pub use hasher::{Argon2Hasher, HashParams};
pub use ids::{CabinetId, SessionId};
pub use locale::{Locale, UserError};
pub use mail_queue::{MailQueueKey, MailQueueKeys};
pub use password::NewPassword;
pub use premises::{Premises, PremisesKind};
pub use service::admin;
pub use service::{
    AddressForm, AuthConfig, AuthService, AuthServiceBuilder, Authenticated, Background,
    BuildError, CabinetView, Limit, LinkedAccount, LoggedIn, RegistrationForm, RequestContext,
    SessionView,
};
pub use surname::Surname;

#[allow(unused_imports)]
pub(crate) use account_number::{
    AccountNumberError, RegionError, RegionNotServed, ACCOUNT_NUMBER_DIGITS,
};
#[allow(unused_imports)]
pub(crate) use clock::{Clock, ManualClock, SystemClock};
#[cfg(feature = "directory-csv")]
#[allow(unused_imports)]
pub(crate) use directory::{parse_directory_csv, DirectoryCsvError, DirectoryRowError};
#[allow(unused_imports)]
pub(crate) use email::{EmailError, EMAIL_MAX_CHARS};
#[cfg(feature = "testing")]
#[allow(unused_imports)]
pub(crate) use hasher::CountingHasher;
#[allow(unused_imports)]
pub(crate) use hasher::{CredentialHasher, HashError, HashWork, Verification};
#[allow(unused_imports)]
pub(crate) use ids::{InvalidId, LetterId};
#[allow(unused_imports)]
pub(crate) use letters::{escape_html, Letter, LetterContent, LetterKind, Links, RenderedLetter};
#[allow(unused_imports)]
pub(crate) use locale::{Field, UnsupportedLocale};
#[allow(unused_imports)]
pub(crate) use mail_queue::{InvalidMailQueueKey, LetterStatus, QueuedLetter, SealedLetter};
#[allow(unused_imports)]
pub(crate) use password::{NewPasswordError, NEW_PASSWORD_MAX_CHARS, NEW_PASSWORD_MIN_CHARS};
#[allow(unused_imports)]
pub(crate) use ports::{
    AccountDirectory, CabinetStore, CounterStore, DirectoryRecord, LetterStore, LinkStore,
    MailError, Mailer, SessionStore, SplitStore, Store, StoreError,
};
#[allow(unused_imports)]
pub(crate) use premises::PremisesError;
#[allow(unused_imports)]
pub(crate) use secret::{
    generate_password, HashedPassword, Token, TokenHash, GENERATED_PASSWORD_CHARS,
};
#[allow(unused_imports)]
pub(crate) use service::{DeliveryPolicy, DeliveryReport, Ports};
#[allow(unused_imports)]
pub(crate) use surname::{surname_matching_key, SurnameError, SURNAME_MAX_CHARS};

/// Re-exported so hosts name the same secret types the API takes.
pub use secrecy;

/// The workspace README's examples, compiled and run as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct WorkspaceReadmeDoctests;
