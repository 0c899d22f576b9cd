#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
// No production function over 80 lines (clippy.toml); tests may be longer.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod account_number;
mod clock;
pub mod config;
#[cfg(feature = "directory-csv")]
mod directory;
mod email;
pub mod errors;
pub mod events;
mod hasher;
mod ids;
pub mod journeys;
pub mod letters;
mod locale;
pub mod mail;
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

// The root names what nearly every host names: the service, the context of a request,
// the errors, and the value types. The rest is one module deep, each item at one path:
// `config` (builder, limits, hasher, clock, directory), `journeys` (forms and views),
// `mail` (the mailer and the queue), `ports` (storage), `errors`, `events` (and metrics),
// `letters`, `admin`, and behind features `memory` and `testing`. The crate's own code
// names them at the root too (the `pub(crate)` re-exports below).
pub use account_number::AccountNumber;
pub use clock::Timestamp;
pub use email::Email;
pub use errors::problem::{Error, ErrorKind};
pub use ids::{CabinetId, SessionId};
pub use locale::Locale;
pub use premises::{Premises, PremisesKind};
pub use service::admin;
pub use service::{AuthService, Background, RequestContext};
pub use surname::Surname;

#[allow(unused_imports)]
pub(crate) use account_number::{Region, ServedRegions};
#[allow(unused_imports)]
pub(crate) use errors::{Problem, Unavailable};
#[allow(unused_imports)]
pub(crate) use hasher::{Argon2Hasher, HashParams};
#[allow(unused_imports)]
pub(crate) use locale::Explain;
#[allow(unused_imports)]
pub(crate) use mail::{MailQueueKey, MailQueueKeys};
#[allow(unused_imports)]
pub(crate) use password::NewPassword;
#[allow(unused_imports)]
pub(crate) use service::{
    AddressForm, AuthConfig, AuthServiceBuilder, BuildError, CabinetView, Limit, LinkedAccount,
    LoggedIn, RegistrationForm, SessionView, SignedIn,
};

#[allow(unused_imports)]
pub(crate) use account_number::{
    AccountNumberError, RegionError, RegionNotServed, ACCOUNT_NUMBER_DIGITS,
};
#[allow(unused_imports)]
pub(crate) use clock::{Clock, ManualClock, SystemClock};
#[allow(unused_imports)]
pub(crate) use config::{AccountDirectory, DirectoryRecord};
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
pub(crate) use mail::{InvalidMailQueueKey, LetterStatus, QueuedLetter, SealedLetter};
#[allow(unused_imports)]
pub(crate) use mail::{MailError, Mailer};
#[allow(unused_imports)]
pub(crate) use password::{NewPasswordError, NEW_PASSWORD_MAX_CHARS, NEW_PASSWORD_MIN_CHARS};
#[allow(unused_imports)]
pub(crate) use ports::{
    CabinetStore, CounterStore, LetterStore, LinkStore, SessionStore, SplitStore, Store, StoreError,
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
