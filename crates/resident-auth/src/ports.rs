//! The ports: traits through which the service reaches storage, the billing directory and
//! mail. Adapters implement them; the service never does I/O of its own.
//!
//! Storage is small traits of atomic primitives — [`LinkStore`], [`CabinetStore`],
//! [`SessionStore`], [`CounterStore`], [`LetterStore`]; each trait's page lists its
//! required methods and its defaults. They keep records and compare versions; every policy (limits, windows, locks, expiry,
//! retries, the order of steps) lives in [`crate::AuthService`]. [`Store`] puts the five
//! together with defaults a single-backend store may override to save round trips. A
//! store behind an `Arc` or a `Box` (`Arc<dyn Store>` included) is a store too: the pointer
//! forwards every method, the store's own overrides included.
//!
//! A store may also be written as entries: one [`EntryStore`] (five methods over a table of
//! opaque, versioned entries and their terms, four over counters), made all of the above
//! by [`Encoded`] — the way the guide `docs/stores.md` takes.
//!
//! [`SplitStore`] keeps records, sessions and counters in backends of their own;
//! [`Cached`] wraps any store with a [`SnapshotCache`] (Redis) that session checks read
//! cabinets from.
//!
//! Links and cabinets take a letter with their conditional write: the mail queue
//! ([`crate::mail`]) is a transactional outbox, so the letter is stored if and only
//! if the write is.

use std::{error::Error as StdError, fmt, time::Duration};

pub use crate::secret::{HashedPassword, Token, TokenHash};

use async_trait::async_trait;

use crate::{
    clock::Timestamp,
    ids::{CabinetId, LetterId, SessionId},
    mail::QueuedLetter,
    AccountNumber, Email,
};

mod cache;
pub(crate) mod entries;
pub(crate) mod forward;
mod records;
mod split;
pub use cache::{Cached, SnapshotCache};
pub use entries::{Change, Commit, Encoded, Entry, EntryKind, EntryStore, EntryWrite, Term};
pub(crate) use forward::forward_store;
pub use records::{
    Cabinet, CabinetKey, CabinetSnapshot, CabinetSwap, Count, CounterKey, Expected, Link,
    LinkAdvance, LinkPurpose, Session, SnapshotRead, Version, Versioned,
};
pub use split::SplitStore;

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
    /// The backend cannot be reached at all (connection refused, no connection within the
    /// pool's wait, the server shutting down): not one call's bad luck but an outage. The
    /// service answers every request at once while it lasts and probes for the store's
    /// return (docs/operating.md, "When the database goes away").
    #[error("store unreachable")]
    Unreachable {
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

    /// Wraps a backend error that says the backend cannot be reached at all (connection
    /// refused or reset, no connection within the pool's wait): an outage, not contention.
    pub fn unreachable(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        StoreError::Unreachable {
            source: source.into(),
        }
    }

    /// How long a client is asked to wait after a failure of storage (the `Retry-After` of
    /// its 503).
    pub const RETRY_AFTER: Duration = Duration::from_secs(2);

    /// Wraps any other backend error.
    pub fn generic(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        StoreError::Generic {
            source: source.into(),
        }
    }

    /// Whether retrying the same step may succeed (the name [`crate::Error::is_retryable`]
    /// and [`MailError::is_retryable`](crate::mail::MailError::is_retryable) use too). Callers present every store failure as
    /// retryable to users; this tells operators which ones are.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable { .. } | StoreError::Unreachable { .. }
        )
    }

    /// Whether the backend could not be reached at all ([`StoreError::unreachable`]).
    #[must_use]
    pub fn is_unreachable(&self) -> bool {
        matches!(self, StoreError::Unreachable { .. })
    }
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

    /// Deletes links that expired at or before `now`; returns how many went. Required: the
    /// conformance suite checks that expired links go and live ones stay.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn purge_links(&self, now: Timestamp) -> Result<u64, StoreError>;

    /// Every link naming `email` or one of `accounts` (pending registrations, additions
    /// and recoveries), expired or not, each with its token hash: what an operator looks
    /// up, resends and erases, and what closing a cabinet deletes ([`crate::admin`]).
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn links_about(
        &self,
        email: Option<&Email>,
        accounts: &[AccountNumber],
    ) -> Result<Vec<(TokenHash, Versioned<Link>)>, StoreError>;
}

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
    /// many went. Required: the conformance suite checks that settled letters go at their
    /// `keep_until` and queued ones stay.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn purge_letters(&self, now: Timestamp) -> Result<u64, StoreError>;
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
    /// Required: the conformance suite checks that expired sessions go and live ones stay
    /// (a backend that also expires records by itself, as Redis does by TTL, still answers
    /// for the ones it keeps).
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn purge_sessions(&self, now: Timestamp) -> Result<u64, StoreError>;
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

    /// Deletes counters whose window ended at or before `now`; returns how many went.
    /// Required: the conformance suite checks that ended counters go and live ones stay.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn purge_counters(&self, now: Timestamp) -> Result<u64, StoreError>;

    /// Every counter whose [`CounterKey::subject`] is one of `subjects` (an email, an
    /// account number): the locks and throttles an operator sees and clears, and what
    /// closing a cabinet and erasure delete ([`crate::admin`]).
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn counters_about(
        &self,
        subjects: &[String],
    ) -> Result<Vec<(CounterKey, Count)>, StoreError>;
}

/// Everything the service stores: the five storage traits together. Its methods are
/// defaults built on them, which a store holding several of them in one backend may
/// override to save round trips; `impl Store for MyStore {}` is enough otherwise.
/// [`SplitStore`] puts sessions and counters in backends of their own.
///
/// Every store runs the conformance suite in [`crate::testing`] (feature `testing`).
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
    ) -> Result<Option<(Versioned<Session>, CabinetSnapshot)>, StoreError> {
        let Some(session) = self.session(token).await? else {
            return Ok(None);
        };
        let cabinet = self.cabinet(CabinetKey::Id(&session.value.cabinet)).await?;
        Ok(cabinet.map(|cabinet| (session, cabinet.value.into())))
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
/// The storage traits, in scope for calling their methods on a store value (the service's
/// counted view of its store).
pub(crate) mod prelude {
    pub(crate) use super::{
        CabinetStore as _, CounterStore as _, LetterStore as _, LinkStore as _, SessionStore as _,
        Store as _,
    };
}
