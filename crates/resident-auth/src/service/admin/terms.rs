//! What the operators' operations name and answer with: lookups, operators, errors, and
//! the audit sink.

use super::*;

/// What an operator looks a resident up by: an email, or a 13-digit personal account
/// number (spaces and hyphens as on a bill allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lookup {
    /// By the cabinet's (or a pending registration's) email.
    Email(Email),
    /// By a personal account number.
    Account(AccountNumber),
}

/// The text is neither an email nor a personal account number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an email or a 13-digit personal account number: {0}")]
pub struct InvalidLookup(String);

impl FromStr for Lookup {
    type Err = InvalidLookup;

    fn from_str(text: &str) -> Result<Self, InvalidLookup> {
        if text.contains('@') {
            return text
                .parse()
                .map(Lookup::Email)
                .map_err(|e| InvalidLookup(format!("{text:?} ({e})")));
        }
        text.parse()
            .map(Lookup::Account)
            .map_err(|e| InvalidLookup(format!("{text:?} ({e})")))
    }
}

impl fmt::Display for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lookup::Email(email) => email.fmt(f),
            Lookup::Account(account) => account.fmt(f),
        }
    }
}

/// Who acts: the operator's name, recorded with every change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator(String);

/// An operator's name must be 1–64 printable characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an operator's name is 1–64 printable characters")]
pub struct InvalidOperator;

impl FromStr for Operator {
    type Err = InvalidOperator;

    fn from_str(text: &str) -> Result<Self, InvalidOperator> {
        let name = text.trim();
        let length = name.chars().count();
        if (1..=64).contains(&length) && !name.chars().any(char::is_control) {
            Ok(Self(name.to_owned()))
        } else {
            Err(InvalidOperator)
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why an operation did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// Nothing matches the lookup.
    #[error("not found")]
    NotFound,
    /// The operation would leave a state the policy forbids, or what it read changed
    /// before it could write; the reason says which.
    #[error("refused: {0}")]
    Refused(RefusalReason),
    /// The service failed (storage, mail).
    #[error(transparent)]
    Service(#[from] Error),
}

/// Why an operator's operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefusalReason {
    /// The account is its cabinet's last: erase the cabinet instead.
    #[error("the cabinet's last account: erase the cabinet instead")]
    LastAccount,
    /// What the operation read changed before it could write: run it again.
    #[error("the record changed meanwhile; run again")]
    ChangedMeanwhile,
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        Self::Service(error.into())
    }
}

/// One recorded operator action: no email, no account number, no secret — the cabinet's
/// opaque identity at most, so the record outlives an erasure without personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AuditEvent {
    /// When.
    pub at: Timestamp,
    /// Who.
    pub operator: String,
    /// What: `find` (the operators' API audits reads too), `resend_confirmation`,
    /// `clear_locks`, `end_sessions`, `unlink`, `erase`, `export`.
    pub action: &'static str,
    /// The cabinet acted on, when there is one.
    pub cabinet: Option<CabinetId>,
    /// How many records the action changed (letters sent, counters cleared, sessions
    /// ended, records erased).
    pub changed: u64,
}

/// Where operator actions are recorded.
#[async_trait]
pub trait Audit: Send + Sync {
    /// Records `event`.
    ///
    /// # Errors
    /// [`StoreError`] when the record cannot be kept; the action has happened then, and
    /// the caller reports the failure.
    async fn record(&self, event: &AuditEvent) -> Result<(), StoreError>;
}

/// Records to the `resident_auth::audit` tracing target (the default sink).
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingAudit;

#[async_trait]
impl Audit for TracingAudit {
    async fn record(&self, event: &AuditEvent) -> Result<(), StoreError> {
        tracing::info!(
            target: "resident_auth::audit",
            operator = %event.operator,
            action = event.action,
            cabinet = event.cabinet.map(|c| c.to_string()),
            changed = event.changed,
            "operator action"
        );
        Ok(())
    }
}
