//! The records the store keeps and the versions its compare-and-swap names.

use super::*;

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
    /// Makes the address it was mailed to the cabinet's login ("Подтверждение нового
    /// e-mail", docs/contract.md §3, journey 12).
    EmailChange,
    /// Cancels a pending change of the cabinet's email ("Смена e-mail"), mailed to the
    /// address in force.
    EmailChangeCancel,
}

impl LinkPurpose {
    /// The stored name: `confirmation`, `activation`, `recovery`, `email_change`,
    /// `email_change_cancel`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::Confirmation => "confirmation",
            LinkPurpose::Activation => "activation",
            LinkPurpose::Recovery => "recovery",
            LinkPurpose::EmailChange => "email_change",
            LinkPurpose::EmailChangeCancel => "email_change_cancel",
        }
    }

    /// The purpose with this stored name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [
            LinkPurpose::Confirmation,
            LinkPurpose::Activation,
            LinkPurpose::Recovery,
            LinkPurpose::EmailChange,
            LinkPurpose::EmailChangeCancel,
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
    /// The email the link was mailed to (for an added account, the cabinet's; for an
    /// email change, the new address; for its cancellation, the address in force).
    pub email: Email,
    /// The account being registered; `None` for a recovery or email-change link.
    pub account_number: Option<AccountNumber>,
    /// The cabinet the link acts on: the cabinet gaining an account, or the one
    /// recovering its password or changing its email; `None` for a registration that opens a new cabinet.
    pub cabinet: Option<CabinetId>,
    /// For a recovery or email-change link, the cabinet's credential version when it was
    /// mailed: the link dies once the credentials are issued anew (or the email changes).
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
    /// Changes whenever the password is issued anew, the accounts change, or the email
    /// changes (or a pending change is cancelled); a session
    /// opened under another credential version no longer authenticates.
    pub credential_version: u64,
    /// Linked personal accounts, in the order they were added; no account is in two
    /// cabinets.
    pub accounts: Vec<AccountNumber>,
    /// Set while the password is a temporary one mailed by the portal: it works until
    /// then and until the resident chooses one (`None`: a lasting password).
    pub password_expires_at: Option<Timestamp>,
}

/// What a session check needs of a cabinet: the [`Cabinet`] without its password hash.
/// A session store may keep one beside its sessions
/// ([`SnapshotCache::cabinet_snapshot`](crate::ports::SnapshotCache::cabinet_snapshot)), so
/// that a check reads nothing else; [`Store::session_with_cabinet`](crate::ports::Store::session_with_cabinet)
/// answers one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CabinetSnapshot {
    /// The opaque identity.
    pub id: CabinetId,
    /// The login.
    pub email: Email,
    /// See [`Cabinet::credential_version`].
    pub credential_version: u64,
    /// Linked personal accounts, in the order they were added.
    pub accounts: Vec<AccountNumber>,
    /// See [`Cabinet::password_expires_at`].
    pub password_expires_at: Option<Timestamp>,
}

impl From<Cabinet> for CabinetSnapshot {
    fn from(cabinet: Cabinet) -> Self {
        Self {
            id: cabinet.id,
            email: cabinet.email,
            credential_version: cabinet.credential_version,
            accounts: cabinet.accounts,
            password_expires_at: cabinet.password_expires_at,
        }
    }
}

/// What [`SnapshotCache::cabinet_snapshot`](crate::ports::SnapshotCache::cabinet_snapshot)
/// found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotRead {
    /// The store keeps no snapshots (the default).
    NotKept,
    /// None is kept now. Offered back with this generation, a snapshot read from the
    /// records is kept only if no write of the cabinet began or ended since.
    Missing {
        /// Changes whenever a write of the cabinet begins or ends.
        generation: u64,
    },
    /// The snapshot kept, as the cabinet stood after its last write.
    Found(CabinetSnapshot),
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

/// What a counter is counting: a family of limits (`login:cabinet`), for some families a
/// scope within it (the client a cabinet's tries come from, the window of a lock), and the
/// subject it is about (an email, an account number, a client address). Keys are shared by
/// every service instance using the store.
///
/// A store keeps the key as [`CounterKey::as_str`] (`family:scope:subject`, unique) and the
/// subject apart ([`CounterKey::subject`]), so that [`crate::ports::CounterStore::counters_about`] finds a
/// subject's counters by equality, never by matching the end of a string; it rebuilds the
/// key with [`CounterKey::from_stored`].
///
/// ```
/// use resident_auth::ports::CounterKey;
///
/// let key = CounterKey::scoped("login:cabinet-client", "192.0.2.1", "resident@example.org");
/// assert_eq!(key.as_str(), "login:cabinet-client:192.0.2.1:resident@example.org");
/// assert_eq!(key.family(), "login:cabinet-client:192.0.2.1");
/// assert_eq!(key.subject(), "resident@example.org");
/// let stored = CounterKey::from_stored(key.as_str().to_owned(), key.subject().to_owned());
/// assert_eq!(stored, Some(key));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CounterKey {
    key: String,
    /// Where the subject starts in `key`, after the last separator before it.
    subject_at: usize,
}

impl CounterKey {
    /// A key in `family` (e.g. `login:cabinet`) about `subject` (an email, an address).
    #[must_use]
    pub fn new(family: &str, subject: impl fmt::Display) -> Self {
        Self::parts(format!("{family}:"), subject)
    }

    /// A key in `family` and `scope` (a client, a window) about `subject`.
    #[must_use]
    pub fn scoped(family: &str, scope: impl fmt::Display, subject: impl fmt::Display) -> Self {
        Self::parts(format!("{family}:{scope}:"), subject)
    }

    fn parts(mut key: String, subject: impl fmt::Display) -> Self {
        use fmt::Write as _;
        let subject_at = key.len();
        // Writing to a String cannot fail.
        let _ = write!(key, "{subject}");
        Self { key, subject_at }
    }

    /// The key a store kept as [`CounterKey::as_str`] with its [`CounterKey::subject`];
    /// `None` when `key` does not end with `:` and `subject` (a corrupt record).
    #[must_use]
    pub fn from_stored(key: String, subject: String) -> Option<Self> {
        let family = key.strip_suffix(subject.as_str())?.strip_suffix(':')?;
        if family.is_empty() {
            return None;
        }
        let subject_at = key.len() - subject.len();
        Some(Self { key, subject_at })
    }

    /// The key as stored: unique per counter.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// The family and scope, without the subject (`premises:account:900s`).
    #[must_use]
    pub fn family(&self) -> &str {
        self.key
            .get(..self.subject_at.saturating_sub(1))
            .unwrap_or_default()
    }

    /// What the counter is about: an email, an account number, a client.
    #[must_use]
    pub fn subject(&self) -> &str {
        self.key.get(self.subject_at..).unwrap_or_default()
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
