//! The ports: traits through which the service reaches storage, the billing directory and
//! mail. Adapters implement them; the service never does I/O of its own.
//!
//! Storage is small traits of atomic primitives — [`LinkStore`], [`CabinetStore`],
//! [`SessionStore`], [`CounterStore`], [`LetterStore`]; each trait's page lists its
//! required methods and its defaults. They keep records and compare versions; every policy (limits, windows, locks, expiry,
//! retries, the order of steps) lives in [`crate::AuthService`]. [`Store`] puts the five
//! together with defaults a single-backend store may override to save round trips.
//!
//! Links and cabinets take a letter with their conditional write: the mail queue
//! ([`crate::mail_queue`]) is a transactional outbox, so the letter is stored if and only
//! if the write is.

use std::{error::Error as StdError, fmt, time::Duration};

pub use crate::clock::{Clock, ManualClock, SystemClock};
#[cfg(feature = "directory-csv")]
#[cfg_attr(docsrs, doc(cfg(feature = "directory-csv")))]
pub use crate::directory::parse_directory_csv;
pub use crate::hasher::{CredentialHasher, HashError, HashWork, Verification};
pub use crate::secret::{HashedPassword, Token, TokenHash};
pub use crate::service::Ports;
pub use crate::surname::surname_matching_key;

use async_trait::async_trait;

use crate::{
    clock::Timestamp,
    ids::LetterId,
    ids::{CabinetId, SessionId},
    letters::Letter,
    mail_queue::QueuedLetter,
    AccountNumber, Email, Premises,
};

/// A failure of storage (or of the directory behind it). Never caused by the user.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend could not be reached or timed out; the same call may succeed later.
    #[error("store unavailable")]
    Unavailable {
        /// The backend's own error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// Any other backend failure (a constraint the adapter did not expect, bad data).
    #[error("store failure")]
    Generic {
        /// The backend's own error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

impl StoreError {
    /// Wraps a backend error that may go away on retry (connection, timeout).
    pub fn unavailable(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        StoreError::Unavailable {
            source: source.into(),
        }
    }

    /// Wraps any other backend error.
    pub fn generic(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        StoreError::Generic {
            source: source.into(),
        }
    }

    /// Whether retrying the same step may succeed. Callers present every store failure as
    /// retryable to users; this tells operators which ones are transient.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }

    /// Whether the store does not offer the optional primitive that was called.
    #[must_use]
    pub fn is_unsupported(&self) -> bool {
        matches!(self, StoreError::Generic { source } if source.is::<Unsupported>())
    }
}

/// A failure to hand a letter to the mail system.
#[derive(Debug, thiserror::Error)]
#[error("{kind} mail failure")]
pub struct MailError {
    kind: MailErrorKind,
    #[source]
    source: Option<Box<dyn StdError + Send + Sync>>,
}

/// Whether a mail failure may go away by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MailErrorKind {
    /// Server unreachable, timeout, 4xx: retrying later may succeed.
    Transient,
    /// A permanent rejection (5xx): retrying the same letter will fail again.
    Permanent,
}

impl fmt::Display for MailErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MailErrorKind::Transient => "transient",
            MailErrorKind::Permanent => "permanent",
        })
    }
}

impl MailError {
    /// A failure that may go away on retry.
    pub fn transient(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            kind: MailErrorKind::Transient,
            source: Some(source.into()),
        }
    }

    /// A permanent rejection.
    pub fn permanent(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            kind: MailErrorKind::Permanent,
            source: Some(source.into()),
        }
    }

    /// Which kind of failure this is.
    #[must_use]
    pub fn kind(&self) -> MailErrorKind {
        self.kind
    }

    /// Server unreachable, timeout, or a 4xx answer.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        self.kind == MailErrorKind::Transient
    }

    /// A 5xx rejection.
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        self.kind == MailErrorKind::Permanent
    }
}

/// One entry of the billing directory (the settlement center's registry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryRecord {
    /// The personal account number.
    pub account_number: AccountNumber,
    /// The address, as shown to the resident.
    pub address: String,
    /// The premises the account belongs to; activation must name it.
    pub premises: Premises,
    /// Surnames of the people registered on the account; empty means "not checked".
    pub surnames: Vec<String>,
}

/// The billing directory: who lives where, by personal account number.
#[async_trait]
pub trait AccountDirectory: Send + Sync {
    /// The record for `account`, or `None` if the directory has no such account.
    ///
    /// # Errors
    /// [`StoreError`] if the directory cannot be read.
    async fn lookup(&self, account: &AccountNumber) -> Result<Option<DirectoryRecord>, StoreError>;
}

/// Sends letters.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Delivers `letter` to the mail system. Returning `Ok` means the letter was accepted
    /// for delivery; the service relies on that before it makes credentials effective.
    ///
    /// # Errors
    /// [`MailError`], transient or permanent.
    async fn send(&self, letter: &Letter) -> Result<(), MailError>;
}

/// What a link becomes in [`Store::advance_link`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkAdvance {
    /// The new purpose.
    pub purpose: LinkPurpose,
    /// The new expiry.
    pub expires_at: Timestamp,
}

/// A record's version as its store assigned it. Every write that changes a record gives
/// it a new version; a conditional write names the version it read (compare-and-swap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(u64);

impl Version {
    /// The version a store gives a record it inserts.
    pub const FIRST: Version = Version(1);

    /// A version as stored.
    #[must_use]
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The stored number.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The version after this one.
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

/// A record with the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The record.
    pub value: T,
    /// Its version, to name in a conditional write.
    pub version: Version,
}

/// What a conditional write expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// No record under the key (insert-if-absent).
    Absent,
    /// The record at exactly this version (compare-and-swap, consume-once).
    Version(Version),
    /// Whatever is there, if anything (unconditional write or delete).
    Any,
}

impl Expected {
    /// Whether a record at `current` (`None`: no record) meets the expectation.
    #[must_use]
    pub fn admits(self, current: Option<Version>) -> bool {
        match (self, current) {
            (Expected::Any, _) | (Expected::Absent, None) => true,
            (Expected::Version(expected), Some(current)) => expected == current,
            _ => false,
        }
    }
}

/// What a one-time link lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LinkPurpose {
    /// Confirms the email of a registration ("Подтверждение e-mail").
    Confirmation,
    /// Activates a confirmed registration with the premises number.
    Activation,
    /// Sets a new password ("Восстановление пароля").
    Recovery,
}

impl LinkPurpose {
    /// The stored name: `confirmation`, `activation`, `recovery`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::Confirmation => "confirmation",
            LinkPurpose::Activation => "activation",
            LinkPurpose::Recovery => "recovery",
        }
    }

    /// The purpose with this stored name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [
            LinkPurpose::Confirmation,
            LinkPurpose::Activation,
            LinkPurpose::Recovery,
        ]
        .into_iter()
        .find(|purpose| purpose.as_str() == name)
    }
}

/// A one-time link, stored under the hash of its token. A pending registration is its
/// confirmation link and then its activation link; several pending registrations of one
/// account coexist, each with its own link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// What the link is for.
    pub purpose: LinkPurpose,
    /// The email the link was mailed to (for an added account, the cabinet's).
    pub email: Email,
    /// The account being registered; `None` for a recovery link.
    pub account_number: Option<AccountNumber>,
    /// The cabinet the link acts on: the cabinet gaining an account, or the one
    /// recovering its password; `None` for a registration that opens a new cabinet.
    pub cabinet: Option<CabinetId>,
    /// For a recovery link, the cabinet's credential version when it was mailed: the
    /// link dies once the credentials are issued anew.
    pub credential_version: Option<u64>,
    /// When the link stops working.
    pub expires_at: Timestamp,
    /// Set while a request is issuing credentials under this link (and mailing them):
    /// another request must wait until then.
    pub issuing_until: Option<Timestamp>,
}

/// A cabinet: one email, one password, one or more personal accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cabinet {
    /// The opaque identity.
    pub id: CabinetId,
    /// The login; no two cabinets share one.
    pub email: Email,
    /// The argon2id hash of the password.
    pub password_hash: HashedPassword,
    /// Changes whenever the password is issued anew or the accounts change; a session
    /// opened under another credential version no longer authenticates.
    pub credential_version: u64,
    /// Linked personal accounts, in the order they were added; no account is in two
    /// cabinets.
    pub accounts: Vec<AccountNumber>,
    /// Set while the password is a temporary one mailed by the portal: it works until
    /// then and until the resident chooses one (`None`: a lasting password).
    pub password_expires_at: Option<Timestamp>,
}

/// How to find a cabinet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CabinetKey<'a> {
    /// By identity.
    Id(&'a CabinetId),
    /// By login email.
    Email(&'a Email),
    /// By one of its personal accounts.
    Account(&'a AccountNumber),
}

/// The outcome of [`CabinetStore::swap_cabinet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CabinetSwap {
    /// Written (or deleted) as asked.
    Written,
    /// The cabinet is not at the expected version (or exists when absence was expected).
    Conflict,
    /// The email or one of the accounts belongs to another cabinet; nothing was written.
    Taken,
}

/// A signed-in session, stored under the hash of its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The public identity (not the token).
    pub id: SessionId,
    /// The cabinet signed in.
    pub cabinet: CabinetId,
    /// The cabinet's credential version at login; the session is dead once it changes.
    pub credential_version: u64,
    /// The personal account shown.
    pub active_account: Option<AccountNumber>,
    /// Login time.
    pub created_at: Timestamp,
    /// Last use, as last written (the service writes it at most about once a minute).
    pub last_used: Timestamp,
    /// When the session dies if unused: the earlier of its idle and absolute expiry, as
    /// of `last_used`. Stores purge by it.
    pub expires_at: Timestamp,
    /// A short description of the client (truncated), for the list of sessions.
    pub client: Option<String>,
}

/// What a counter is counting. Keys are shared by every service instance using the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CounterKey(String);

impl CounterKey {
    /// A key in `family` (e.g. `login:cabinet`) for `subject` (an email, an address).
    #[must_use]
    pub fn new(family: &str, subject: impl fmt::Display) -> Self {
        Self(format!("{family}:{subject}"))
    }

    /// A key exactly as stored.
    #[must_use]
    pub fn from_stored(key: String) -> Self {
        Self(key)
    }

    /// The key as stored.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A counter's state after an increment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Events counted in the current window, this one included.
    pub count: u32,
    /// When the current window ends (and the count starts again from zero).
    pub window_ends: Timestamp,
}

/// Registrations and other one-time links. Two primitives; the service decides what a
/// link means, when it has expired and who may use it.
#[async_trait]
pub trait LinkStore: Send + Sync {
    /// The link stored under `token`, expired or not.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn link(&self, token: &TokenHash) -> Result<Option<Versioned<Link>>, StoreError>;

    /// Atomically: if the link under `token` meets `expected`, removes it and stores
    /// `next` (under its own token, which may be `token` or another) at a new version.
    /// Inserting is `swap_link(t, Expected::Absent, Some((t, link)))`, consuming is
    /// `swap_link(t, Expected::Version(v), None)`, and a confirmation turning into an
    /// activation moves the registration from one token to another in one step. Returns
    /// whether it wrote; a `next` token already taken by another link fails the swap.
    /// With a `letter`, the letter is inserted into the mail queue in the same atomic
    /// step: if and only if the swap writes.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure; then nothing changed.
    async fn swap_link(
        &self,
        token: &TokenHash,
        expected: Expected,
        next: Option<(&TokenHash, &Link)>,
        letter: Option<&QueuedLetter>,
    ) -> Result<bool, StoreError>;

    /// Deletes links that expired at or before `now`; returns how many went. The default
    /// deletes nothing, for backends that expire records by themselves.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn purge_links(&self, now: Timestamp) -> Result<u64, StoreError> {
        let _ = now;
        Ok(0)
    }

    /// Every link naming `email` or one of `accounts` (pending registrations, additions
    /// and recoveries), expired or not, each with its token hash: what an operator looks
    /// up, resends and erases ([`crate::admin`]). Optional: the default answers that the
    /// store cannot list links, and the operators' operations that need it refuse.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure, or when the store does not list links.
    async fn links_about(
        &self,
        email: Option<&Email>,
        accounts: &[AccountNumber],
    ) -> Result<Vec<(TokenHash, Versioned<Link>)>, StoreError> {
        let _ = (email, accounts);
        Err(StoreError::generic(Unsupported(
            "listing links by email or account",
        )))
    }
}

/// A store that does not offer an optional primitive.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("this store does not support {0}")]
pub struct Unsupported(pub &'static str);

/// Cabinets and their credentials. Two primitives: a read by any key and a conditional
/// write that keeps emails and accounts unique across cabinets.
#[async_trait]
pub trait CabinetStore: Send + Sync {
    /// The cabinet found by `key`.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn cabinet(&self, key: CabinetKey<'_>) -> Result<Option<Versioned<Cabinet>>, StoreError>;

    /// Atomically: if the cabinet `id` meets `expected`, replaces it by `next` (or deletes
    /// it for `None`) at a new version, unless `next`'s email or one of its accounts
    /// belongs to another cabinet ([`CabinetSwap::Taken`]). With a `letter`, the letter is
    /// inserted into the mail queue in the same atomic step: if and only if the swap
    /// writes ([`CabinetSwap::Written`]).
    ///
    /// # Errors
    /// [`StoreError`] on backend failure; then nothing changed.
    async fn swap_cabinet(
        &self,
        id: &CabinetId,
        expected: Expected,
        next: Option<&Cabinet>,
        letter: Option<&QueuedLetter>,
    ) -> Result<CabinetSwap, StoreError>;
}

/// The mail queue's own primitives: letters are inserted by [`LinkStore::swap_link`] and
/// [`CabinetStore::swap_cabinet`]; these claim, settle, list and purge them. Which letter
/// is due, how long a claim lasts, when to retry and when to give up is the service's
/// policy ([`crate::AuthService::deliver_due`]).
#[async_trait]
pub trait LetterStore: Send + Sync {
    /// Atomically claims up to `limit` letters that are [`crate::LetterStatus::Queued`]
    /// with `next_attempt_at` at or before `now`, earliest first: each claimed letter's
    /// `next_attempt_at` becomes `claim_until` and its version moves on, and it is returned
    /// as written. Letters another caller is claiming at the same moment are skipped, never
    /// waited for (PostgreSQL: `FOR UPDATE SKIP LOCKED`), so several workers never get the
    /// same letter while a claim lasts.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure; then nothing was claimed.
    async fn claim_letters(
        &self,
        now: Timestamp,
        claim_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<QueuedLetter>>, StoreError>;

    /// Atomically: if the letter `id` meets `expected`, replaces it by `next` (whose `id` is
    /// `id`; or deletes it for `None`) at a new version. Returns whether it wrote.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure; then nothing changed.
    async fn swap_letter(
        &self,
        id: &LetterId,
        expected: Expected,
        next: Option<&QueuedLetter>,
    ) -> Result<bool, StoreError>;

    /// Every letter to `email` or about `cabinet`, in any state: what an operator looks up
    /// and what erasure deletes.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn letters_about(
        &self,
        email: Option<&Email>,
        cabinet: Option<&CabinetId>,
    ) -> Result<Vec<Versioned<QueuedLetter>>, StoreError>;

    /// Deletes sent and dead letters whose `keep_until` is at or before `now`; returns how
    /// many went. The default deletes nothing.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn purge_letters(&self, now: Timestamp) -> Result<u64, StoreError> {
        let _ = now;
        Ok(0)
    }
}

/// Signed-in sessions. Two primitives, plus listing a cabinet's sessions.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// The session stored under `token`, expired or not.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn session(&self, token: &TokenHash) -> Result<Option<Versioned<Session>>, StoreError>;

    /// Atomically: if the session under `token` meets `expected`, replaces it by `next`
    /// (or deletes it for `None`). Returns whether it wrote.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure; then nothing changed.
    async fn swap_session(
        &self,
        token: &TokenHash,
        expected: Expected,
        next: Option<&Session>,
    ) -> Result<bool, StoreError>;

    /// Every session stored for `cabinet`, expired or not, each with the token it is
    /// stored under, in no particular order (the list of sessions a resident sees).
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn cabinet_sessions(
        &self,
        cabinet: &CabinetId,
    ) -> Result<Vec<(TokenHash, Versioned<Session>)>, StoreError>;

    /// Deletes sessions whose `expires_at` is at or before `now`; returns how many went.
    /// The default deletes nothing, for backends that expire records by themselves.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn purge_sessions(&self, now: Timestamp) -> Result<u64, StoreError> {
        let _ = now;
        Ok(0)
    }
}

/// Counters in fixed windows: the service's throttles, cooldowns and attempt limits.
#[async_trait]
pub trait CounterStore: Send + Sync {
    /// Atomically counts one event under `key`: a counter that is absent or whose window
    /// has ended at `now` starts again at 1 with a window ending at `now + window`;
    /// otherwise its count grows by one in the same window. Returns the new state, so
    /// checking a limit and counting against it are one step.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure; then nothing was counted.
    async fn increment(
        &self,
        key: &CounterKey,
        now: Timestamp,
        window: Duration,
    ) -> Result<Count, StoreError>;

    /// Deletes the counter under `key` (nothing if there is none).
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn reset(&self, key: &CounterKey) -> Result<(), StoreError>;

    /// Deletes counters whose window ended at or before `now`; returns how many went. The
    /// default deletes nothing, for backends that expire records by themselves.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn purge_counters(&self, now: Timestamp) -> Result<u64, StoreError> {
        let _ = now;
        Ok(0)
    }

    /// Every counter whose key ends in `:` and one of `subjects` (an email, an account
    /// number: [`CounterKey::new`]'s subject, last): the locks and throttles an operator
    /// sees and clears, and what erasure deletes ([`crate::admin`]). Optional: the default
    /// answers that the store cannot list counters.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure, or when the store does not list counters.
    async fn counters_about(
        &self,
        subjects: &[String],
    ) -> Result<Vec<(CounterKey, Count)>, StoreError> {
        let _ = subjects;
        Err(StoreError::generic(Unsupported(
            "listing counters by subject",
        )))
    }
}

impl CounterKey {
    /// Whether the key's subject ends with `subject` (after a `:`).
    #[must_use]
    pub fn is_about(&self, subject: &str) -> bool {
        self.0
            .strip_suffix(subject)
            .is_some_and(|rest| rest.ends_with(':'))
    }
}

/// Everything the service stores: the five storage traits together. Its methods are
/// defaults built on them, which a store holding several of them in one backend may
/// override to save round trips; `impl Store for MyStore {}` is enough otherwise.
/// [`SplitStore`] puts sessions and counters in backends of their own.
///
/// Every store runs the conformance suite in [`crate::conformance`] (feature `testing`).
#[async_trait]
pub trait Store: LinkStore + CabinetStore + SessionStore + CounterStore + LetterStore {
    /// Whether what this store keeps — the mail queue among it — outlives the process
    /// (a database: the default); the in-memory store answers `false`. The service builder
    /// warns when a store that outlives the process gets the default random mail queue key,
    /// whose letters no later start could open.
    fn outlives_the_process(&self) -> bool {
        true
    }

    /// The session under `token` with its cabinet (one lookup per request).
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn session_with_cabinet(
        &self,
        token: &TokenHash,
    ) -> Result<Option<(Versioned<Session>, Versioned<Cabinet>)>, StoreError> {
        let Some(session) = self.session(token).await? else {
            return Ok(None);
        };
        let cabinet = self.cabinet(CabinetKey::Id(&session.value.cabinet)).await?;
        Ok(cabinet.map(|cabinet| (session, cabinet)))
    }

    /// Atomically moves the link under `token` to `next_token` as `next`'s purpose with
    /// `next`'s expiry — only if it has `purpose` and has not expired at `now` — and returns
    /// the link as it now stands (the service's confirmation step, in one call). The
    /// default reads the link and swaps it at the version read.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure; then nothing changed.
    async fn advance_link(
        &self,
        token: &TokenHash,
        purpose: LinkPurpose,
        now: Timestamp,
        next_token: &TokenHash,
        next: LinkAdvance,
    ) -> Result<Option<Link>, StoreError> {
        let Some(current) = self.link(token).await? else {
            return Ok(None);
        };
        if current.value.purpose != purpose || current.value.expires_at <= now {
            return Ok(None);
        }
        let moved = Link {
            purpose: next.purpose,
            expires_at: next.expires_at,
            ..current.value
        };
        let written = self
            .swap_link(
                token,
                Expected::Version(current.version),
                Some((next_token, &moved)),
                None,
            )
            .await?;
        Ok(written.then_some(moved))
    }

    /// Counts one event under each key, in order; see [`CounterStore::increment`].
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn increment_all(
        &self,
        keys: &[(CounterKey, Duration)],
        now: Timestamp,
    ) -> Result<Vec<Count>, StoreError> {
        let mut counts = Vec::with_capacity(keys.len());
        for (key, window) in keys {
            counts.push(self.increment(key, now, *window).await?);
        }
        Ok(counts)
    }

    /// Deletes the counters under `keys`; see [`CounterStore::reset`].
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn reset_all(&self, keys: &[CounterKey]) -> Result<(), StoreError> {
        for key in keys {
            self.reset(key).await?;
        }
        Ok(())
    }

    /// Deletes every record that can never be used again; returns how many went.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        Ok(self.purge_links(now).await?
            + self.purge_sessions(now).await?
            + self.purge_counters(now).await?
            + self.purge_letters(now).await?)
    }
}

/// A [`Store`] made of three backends: `records` keeps links, cabinets and the mail queue
/// (one backend, since a letter is queued in the same write as the link or cabinet that
/// needs it), `sessions` and `counters` the rest — e.g. registrations and cabinets in
/// PostgreSQL, sessions and counters in Redis. Each part may be the same value.
#[derive(Debug, Clone)]
pub struct SplitStore<R, S, K> {
    records: R,
    sessions: S,
    counters: K,
}

impl<R, S, K> SplitStore<R, S, K> {
    /// A store keeping links, cabinets and letters in `records`, sessions in `sessions`
    /// and counters in `counters`.
    pub fn new(records: R, sessions: S, counters: K) -> Self {
        Self {
            records,
            sessions,
            counters,
        }
    }
}

#[async_trait]
impl<R: LinkStore, S: Send + Sync, K: Send + Sync> LinkStore for SplitStore<R, S, K> {
    async fn link(&self, token: &TokenHash) -> Result<Option<Versioned<Link>>, StoreError> {
        self.records.link(token).await
    }
    async fn swap_link(
        &self,
        token: &TokenHash,
        expected: Expected,
        next: Option<(&TokenHash, &Link)>,
        letter: Option<&QueuedLetter>,
    ) -> Result<bool, StoreError> {
        self.records.swap_link(token, expected, next, letter).await
    }
    async fn purge_links(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.records.purge_links(now).await
    }
    async fn links_about(
        &self,
        email: Option<&Email>,
        accounts: &[AccountNumber],
    ) -> Result<Vec<(TokenHash, Versioned<Link>)>, StoreError> {
        self.records.links_about(email, accounts).await
    }
}

#[async_trait]
impl<R: CabinetStore, S: Send + Sync, K: Send + Sync> CabinetStore for SplitStore<R, S, K> {
    async fn cabinet(&self, key: CabinetKey<'_>) -> Result<Option<Versioned<Cabinet>>, StoreError> {
        self.records.cabinet(key).await
    }
    async fn swap_cabinet(
        &self,
        id: &CabinetId,
        expected: Expected,
        next: Option<&Cabinet>,
        letter: Option<&QueuedLetter>,
    ) -> Result<CabinetSwap, StoreError> {
        self.records.swap_cabinet(id, expected, next, letter).await
    }
}

#[async_trait]
impl<R: LetterStore, S: Send + Sync, K: Send + Sync> LetterStore for SplitStore<R, S, K> {
    async fn claim_letters(
        &self,
        now: Timestamp,
        claim_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<QueuedLetter>>, StoreError> {
        self.records.claim_letters(now, claim_until, limit).await
    }
    async fn swap_letter(
        &self,
        id: &LetterId,
        expected: Expected,
        next: Option<&QueuedLetter>,
    ) -> Result<bool, StoreError> {
        self.records.swap_letter(id, expected, next).await
    }
    async fn letters_about(
        &self,
        email: Option<&Email>,
        cabinet: Option<&CabinetId>,
    ) -> Result<Vec<Versioned<QueuedLetter>>, StoreError> {
        self.records.letters_about(email, cabinet).await
    }
    async fn purge_letters(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.records.purge_letters(now).await
    }
}

#[async_trait]
impl<R: Send + Sync, S: SessionStore, K: Send + Sync> SessionStore for SplitStore<R, S, K> {
    async fn session(&self, token: &TokenHash) -> Result<Option<Versioned<Session>>, StoreError> {
        self.sessions.session(token).await
    }
    async fn swap_session(
        &self,
        token: &TokenHash,
        expected: Expected,
        next: Option<&Session>,
    ) -> Result<bool, StoreError> {
        self.sessions.swap_session(token, expected, next).await
    }
    async fn cabinet_sessions(
        &self,
        cabinet: &CabinetId,
    ) -> Result<Vec<(TokenHash, Versioned<Session>)>, StoreError> {
        self.sessions.cabinet_sessions(cabinet).await
    }
    async fn purge_sessions(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.sessions.purge_sessions(now).await
    }
}

#[async_trait]
impl<R: Send + Sync, S: Send + Sync, K: CounterStore> CounterStore for SplitStore<R, S, K> {
    async fn increment(
        &self,
        key: &CounterKey,
        now: Timestamp,
        window: Duration,
    ) -> Result<Count, StoreError> {
        self.counters.increment(key, now, window).await
    }
    async fn reset(&self, key: &CounterKey) -> Result<(), StoreError> {
        self.counters.reset(key).await
    }
    async fn purge_counters(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.counters.purge_counters(now).await
    }
    async fn counters_about(
        &self,
        subjects: &[String],
    ) -> Result<Vec<(CounterKey, Count)>, StoreError> {
        self.counters.counters_about(subjects).await
    }
}

impl<R: LinkStore + CabinetStore + LetterStore, S: SessionStore, K: CounterStore> Store
    for SplitStore<R, S, K>
{
}
