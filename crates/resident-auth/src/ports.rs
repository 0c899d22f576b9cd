//! The ports: traits through which the service reaches storage, the billing directory and
//! mail. Adapters implement them; the service never does I/O of its own.
//!
//! Store operations follow the journeys: each step that must be atomic is one call, so a
//! SQL adapter implements it as one transaction.

use std::{error::Error as StdError, fmt, time::Duration};

use async_trait::async_trait;

use crate::{
    clock::Timestamp,
    letters::Letter,
    secret::{PasswordHash, TokenHash},
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

/// Whether a registration opens a new cabinet or adds an account to an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistrationKind {
    /// Journey 1: a new cabinet for the email.
    NewCabinet,
    /// Journey 7: one more account in the (logged-in) cabinet of the email.
    AddAccount,
}

/// Where a pending registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistrationStage {
    /// The confirmation letter is out; its token is the live one.
    AwaitingConfirmation,
    /// The email is confirmed; the activation token is the live one.
    AwaitingActivation,
}

/// A registration that has not become (part of) a cabinet yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRegistration {
    /// The email that will log in (the cabinet's, for [`RegistrationKind::AddAccount`]).
    pub email: Email,
    /// The account being registered.
    pub account_number: AccountNumber,
    /// New cabinet or added account.
    pub kind: RegistrationKind,
    /// Confirmation or activation.
    pub stage: RegistrationStage,
    /// When the live token stops working.
    pub expires_at: Timestamp,
    /// Wrong premises numbers entered since the last lock.
    pub failed_attempts: u32,
    /// Activation is refused until then.
    pub locked_until: Option<Timestamp>,
}

/// What [`Store::begin_registration`] is asked to record.
#[derive(Debug, Clone)]
pub struct NewRegistration {
    /// The email to confirm.
    pub email: Email,
    /// The account to register.
    pub account_number: AccountNumber,
    /// New cabinet or added account.
    pub kind: RegistrationKind,
    /// Hash of the confirmation token mailed in the link.
    pub confirmation: TokenHash,
    /// When the confirmation link expires.
    pub expires_at: Timestamp,
    /// The least time between two letters for the same email or account.
    pub resend_interval: Duration,
}

/// The outcome of [`Store::begin_registration`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeginRegistration {
    /// Recorded; any earlier pending registration for the same account (or, for a new
    /// cabinet, the same email) was replaced and its link no longer works.
    Started,
    /// The account is already linked to a cabinet, or (new cabinet) the email already
    /// has one.
    AlreadyRegistered,
    /// A letter went out for the same email or account less than the resend interval ago.
    Throttled {
        /// When a new letter may be sent.
        retry_at: Timestamp,
    },
}

/// Limits on wrong premises numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptPolicy {
    /// Wrong tries before the pending registration locks (default 5).
    pub max_attempts: u32,
    /// How long it stays locked (default 15 minutes).
    pub lockout: Duration,
}

/// The result of recording a wrong premises number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedAttempt {
    /// Tries left before the lock; zero when this try locked it.
    pub attempts_left: u32,
    /// Set when this try locked the registration.
    pub locked_until: Option<Timestamp>,
}

/// A one-time right to set a cabinet's credentials: the live activation token of a pending
/// registration, or a recovery token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grant {
    /// Journey 3 (and 7): activation with the right premises number.
    Activation(TokenHash),
    /// Journey 6: a recovery link.
    Recovery(TokenHash),
}

/// The outcome of [`Store::stage_credentials`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageOutcome {
    /// The hash is staged; nothing is effective until [`Store::commit_credentials`].
    Staged {
        /// The cabinet's email: where the credentials letter goes.
        email: Email,
    },
    /// Another request staged credentials for the same grant moments ago.
    Busy {
        /// When that request's lease ends.
        retry_at: Timestamp,
    },
    /// The grant's token is unknown, used or expired.
    Gone,
}

/// The outcome of [`Store::commit_credentials`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The cabinet now has the new password hash (and, for an activation, the account);
    /// the token is consumed and all the cabinet's sessions are ended.
    Committed {
        /// The cabinet's email.
        email: Email,
    },
    /// The token is unknown, used, expired, or holds another staged hash.
    Gone,
    /// The account got linked to a cabinet (or the email got a cabinet) in the meantime.
    AlreadyRegistered,
}

/// What [`Store::begin_recovery`] is asked to record.
#[derive(Debug, Clone)]
pub struct NewRecovery {
    /// The cabinet's email.
    pub email: Email,
    /// Hash of the recovery token mailed in the link.
    pub token: TokenHash,
    /// When the link expires.
    pub expires_at: Timestamp,
}

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpiry {
    /// A session unused for this long ends (default 30 minutes).
    pub idle: Duration,
    /// A session ends this long after login whatever happens (default 12 hours).
    pub absolute: Duration,
}

/// A session to open at login.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Hash of the session token.
    pub token: TokenHash,
    /// The cabinet.
    pub email: Email,
    /// Login time.
    pub created_at: Timestamp,
}

/// A live session as the store sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionState {
    /// The cabinet.
    pub email: Email,
    /// The account currently selected; `None` only if the cabinet has none.
    pub active_account: Option<AccountNumber>,
    /// Every account linked to the cabinet, in the order they were linked.
    pub accounts: Vec<AccountNumber>,
}

/// The outcome of [`Store::select_account`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectAccount {
    /// The session now shows this account.
    Selected,
    /// The account is not linked to the session's cabinet.
    NotLinked,
    /// No live session has this token.
    NoSession,
}

/// A throttle's key: what is being counted (`login:cabinet:<email>`, `login:client:<ip>`,
/// `recovery:<email>`). Keys are shared by every service instance using the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThrottleKey(String);

impl ThrottleKey {
    /// Failed logins of one cabinet.
    #[must_use]
    pub fn login_cabinet(email: &Email) -> Self {
        Self(format!("login:cabinet:{email}"))
    }

    /// Failed logins from one client address.
    #[must_use]
    pub fn login_client(client: &str) -> Self {
        Self(format!("login:client:{client}"))
    }

    /// Recovery letters requested for one email.
    #[must_use]
    pub fn recovery(email: &Email) -> Self {
        Self(format!("recovery:{email}"))
    }

    /// Registration requests from one client address.
    #[must_use]
    pub fn registration_client(client: &str) -> Self {
        Self(format!("registration:client:{client}"))
    }

    /// The key as stored.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How many events a throttle lets through, and for how long it then blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Events allowed in one window; the event that reaches this count locks the key.
    pub max_events: u32,
    /// The counting window.
    pub window: Duration,
    /// How long the key stays locked once the count is reached.
    pub lockout: Duration,
}

/// The outcome of counting one event against a throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleDecision {
    /// Counted and let through.
    Allowed,
    /// The key is locked; the event was not counted.
    Limited {
        /// When the lock ends.
        retry_at: Timestamp,
    },
}

/// Storage of cabinets, pending registrations, tokens, sessions and throttles.
///
/// Every method is one atomic step. Tokens arrive as hashes only. Every implementation
/// runs the conformance suite in [`crate::conformance`] (feature `testing`).
#[async_trait]
pub trait Store: Send + Sync {
    /// Records a pending registration and its confirmation token, atomically checking
    /// that the account is not linked, that (for a new cabinet) the email has no cabinet,
    /// and that no letter for the same email or account went out within the resend
    /// interval. Earlier pending registrations for the same account, or new-cabinet ones
    /// for the same email, are replaced.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure; then nothing was recorded.
    async fn begin_registration(
        &self,
        registration: &NewRegistration,
        now: Timestamp,
    ) -> Result<BeginRegistration, StoreError>;

    /// Deletes the pending registration whose live token is `confirmation`, so that a
    /// registration whose letter could not be sent can be retried at once.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn abandon_registration(&self, confirmation: &TokenHash) -> Result<(), StoreError>;

    /// Consumes a live confirmation token: the registration moves to activation under the
    /// new `activation` token, valid until `activation_expires_at`. `None` if the token is
    /// unknown, used or expired.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn confirm_email(
        &self,
        confirmation: &TokenHash,
        activation: &TokenHash,
        activation_expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Option<PendingRegistration>, StoreError>;

    /// The registration awaiting activation under `activation`, if the token is live.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn pending_activation(
        &self,
        activation: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<PendingRegistration>, StoreError>;

    /// Counts a wrong premises number; the try that reaches the policy's maximum locks
    /// the registration for the lockout. An expired lock starts a fresh count. `None` if
    /// the token is not live.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn record_failed_activation(
        &self,
        activation: &TokenHash,
        now: Timestamp,
        policy: &AttemptPolicy,
    ) -> Result<Option<FailedAttempt>, StoreError>;

    /// Stages `hash` under a live, unlocked grant for `lease`, without making it
    /// effective. A stage younger than its lease blocks others ([`StageOutcome::Busy`]).
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn stage_credentials(
        &self,
        grant: &Grant,
        hash: &PasswordHash,
        now: Timestamp,
        lease: Duration,
    ) -> Result<StageOutcome, StoreError>;

    /// Drops a stage whose letter could not be sent, so a retry need not wait the lease.
    /// Does nothing if another hash is staged.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn unstage_credentials(
        &self,
        grant: &Grant,
        hash: &PasswordHash,
    ) -> Result<(), StoreError>;

    /// Makes the staged `hash` effective in one transaction: consumes the grant's token,
    /// sets the cabinet's password hash (creating the cabinet or linking the account for
    /// an activation), and ends all the cabinet's sessions.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure; then nothing changed.
    async fn commit_credentials(
        &self,
        grant: &Grant,
        hash: &PasswordHash,
        now: Timestamp,
    ) -> Result<CommitOutcome, StoreError>;

    /// Records a recovery token for the cabinet of `recovery.email`, replacing any
    /// earlier one. Returns `false` (and records nothing) if there is no such cabinet.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn begin_recovery(
        &self,
        recovery: &NewRecovery,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Deletes a recovery token whose letter could not be sent.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn abandon_recovery(&self, token: &TokenHash) -> Result<(), StoreError>;

    /// The password hash of the cabinet of `email`, if there is one.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn password_hash(&self, email: &Email) -> Result<Option<PasswordHash>, StoreError>;

    /// Replaces the cabinet's hash by `new` if it is still `old` (an upgrade on login
    /// after the parameters changed). Returns whether it replaced.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn upgrade_password_hash(
        &self,
        email: &Email,
        old: &PasswordHash,
        new: &PasswordHash,
    ) -> Result<bool, StoreError>;

    /// Opens a session showing the cabinet's first linked account, and clears the given
    /// throttles (the cabinet's failed logins). Returns the session as opened, or `None`
    /// if the cabinet no longer exists.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn open_session(
        &self,
        session: &NewSession,
        clear: &[ThrottleKey],
    ) -> Result<Option<SessionState>, StoreError>;

    /// The live session under `token`, marking it used at `now`. A session past its idle
    /// or absolute expiry is deleted and `None` returned.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn session(
        &self,
        token: &TokenHash,
        now: Timestamp,
        expiry: &SessionExpiry,
    ) -> Result<Option<SessionState>, StoreError>;

    /// Selects one of the cabinet's accounts in a live session.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn select_account(
        &self,
        token: &TokenHash,
        account: &AccountNumber,
        now: Timestamp,
        expiry: &SessionExpiry,
    ) -> Result<SelectAccount, StoreError>;

    /// Ends one session. Ending an unknown session is not an error.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn end_session(&self, token: &TokenHash) -> Result<(), StoreError>;

    /// The latest lock end among `keys` that is still in the future, if any.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn throttle_status(
        &self,
        keys: &[ThrottleKey],
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError>;

    /// Deletes what can never be used again, and returns how many records went: sessions
    /// past their idle or absolute expiry, pending registrations and recovery links past
    /// their expiry, and throttles untouched for `throttle_idle` whose lock is over.
    /// Hosts call it periodically (see [`crate::AuthService::purge_expired`]).
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn purge_expired(
        &self,
        now: Timestamp,
        expiry: &SessionExpiry,
        throttle_idle: Duration,
    ) -> Result<u64, StoreError>;

    /// Counts one event against `key` under `policy`.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn count_event(
        &self,
        key: &ThrottleKey,
        now: Timestamp,
        policy: &ThrottlePolicy,
    ) -> Result<ThrottleDecision, StoreError>;
}
