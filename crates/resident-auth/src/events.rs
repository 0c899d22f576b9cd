//! The residents' audit trail: one typed [`Event`] per step of a journey, recorded through
//! the [`Events`] port — to `tracing` by default ([`TracingEvents`]), to a table with the
//! PostgreSQL adapter's `PgEvents`. An event carries the cabinet when it is known, the
//! personal account, the client (truncated) and the time; never an email, a password, a
//! token or a link.

pub mod metrics;

use std::{fmt, net::IpAddr};

use async_trait::async_trait;

use crate::{clock::Timestamp, ids::CabinetId, AccountNumber, StoreError};

/// Characters of a client description kept in an event.
pub const EVENT_CLIENT_MAX_CHARS: usize = 64;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// A registration (or an added address) was accepted and its letter queued.
    Registered,
    /// A confirmation link was used.
    Confirmed,
    /// A registration was activated: a cabinet opened with its password queued.
    Activated,
    /// An activation named the wrong premises.
    ActivationFailed,
    /// An activation was refused: the account's tries are used up.
    ActivationLocked,
    /// A login succeeded.
    LoginSucceeded,
    /// A login named an unknown email or a wrong password.
    LoginFailed,
    /// A login was refused by a limit before any password was checked.
    LoginThrottled,
    /// A recovery was asked for (known email or not: the event says which by its cabinet).
    RecoveryRequested,
    /// A recovery link was used: a new password issued and queued.
    RecoveryCompleted,
    /// The resident changed the password.
    PasswordChanged,
    /// A session ended by the resident (logout, or ending one of their sessions).
    SessionEnded,
    /// A personal account was added to a cabinet.
    AccountAdded,
    /// The resident switched to another personal account.
    AccountSelected,
    /// A letter was given up.
    LetterDead,
    /// The resident downloaded the cabinet's data.
    DataExported,
    /// The resident closed the cabinet: it is erased.
    CabinetClosed,
    /// The resident asked to change the cabinet's email: links mailed to both addresses.
    EmailChangeRequested,
    /// An email-change link was followed: the cabinet's login is the new address.
    EmailChanged,
    /// The address in force cancelled a pending email change ("это был не я").
    EmailChangeCancelled,
}

/// Whether the step went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// It did.
    Succeeded,
    /// It was tried and failed (wrong premises, wrong password, a dead letter).
    Failed,
    /// It was refused before being tried (a limit, a lock).
    Refused,
}

impl Outcome {
    /// The stored name: `succeeded`, `failed`, `refused`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
        }
    }
}

impl EventKind {
    /// The stored name, e.g. `login_failed`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Registered => "registered",
            EventKind::Confirmed => "confirmed",
            EventKind::Activated => "activated",
            EventKind::ActivationFailed => "activation_failed",
            EventKind::ActivationLocked => "activation_locked",
            EventKind::LoginSucceeded => "login_succeeded",
            EventKind::LoginFailed => "login_failed",
            EventKind::LoginThrottled => "login_throttled",
            EventKind::RecoveryRequested => "recovery_requested",
            EventKind::RecoveryCompleted => "recovery_completed",
            EventKind::PasswordChanged => "password_changed",
            EventKind::SessionEnded => "session_ended",
            EventKind::AccountAdded => "account_added",
            EventKind::AccountSelected => "account_selected",
            EventKind::LetterDead => "letter_dead",
            EventKind::DataExported => "data_exported",
            EventKind::CabinetClosed => "cabinet_closed",
            EventKind::EmailChangeRequested => "email_change_requested",
            EventKind::EmailChanged => "email_changed",
            EventKind::EmailChangeCancelled => "email_change_cancelled",
        }
    }

    /// Whether this kind of step went through.
    #[must_use]
    pub const fn outcome(self) -> Outcome {
        match self {
            EventKind::ActivationFailed | EventKind::LoginFailed | EventKind::LetterDead => {
                Outcome::Failed
            }
            EventKind::ActivationLocked | EventKind::LoginThrottled => Outcome::Refused,
            _ => Outcome::Succeeded,
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of a resident's journey, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// When.
    pub at: Timestamp,
    /// The cabinet, when known.
    pub cabinet: Option<CabinetId>,
    /// The personal account, when the step names one.
    pub account: Option<AccountNumber>,
    /// The client, truncated: an IPv4 address to its /24, IPv6 to its /48, anything else
    /// to [`EVENT_CLIENT_MAX_CHARS`] characters.
    pub client: Option<String>,
}

impl Event {
    /// An event of `kind` at `at`, about nobody yet.
    #[must_use]
    pub fn new(kind: EventKind, at: Timestamp) -> Self {
        Self {
            kind,
            at,
            cabinet: None,
            account: None,
            client: None,
        }
    }

    /// The cabinet and the account it is about.
    #[must_use]
    pub fn about(mut self, cabinet: Option<CabinetId>, account: Option<AccountNumber>) -> Self {
        self.cabinet = cabinet;
        self.account = account;
        self
    }

    /// The client, truncated.
    ///
    /// ```
    /// use resident_auth::{events::{Event, EventKind}, Timestamp};
    /// let event = Event::new(EventKind::LoginFailed, Timestamp::from_millis(0))
    ///     .from_client(Some("203.0.113.77"));
    /// assert_eq!(event.client.as_deref(), Some("203.0.113.0/24"));
    /// let event = event.from_client(Some("2001:db8:1:2::7"));
    /// assert_eq!(event.client.as_deref(), Some("2001:db8:1::/48"));
    /// ```
    #[must_use]
    pub fn from_client(mut self, client: Option<&str>) -> Self {
        self.client = client.map(truncate_client);
        self
    }

    /// Whether the step went through.
    #[must_use]
    pub fn outcome(&self) -> Outcome {
        self.kind.outcome()
    }
}

fn truncate_client(client: &str) -> String {
    match client.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments();
            let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
            format!("{prefix}/48")
        }
        Err(_) => client.chars().take(EVENT_CLIENT_MAX_CHARS).collect(),
    }
}

/// Where residents' events go. Recording never fails the step: a sink that cannot keep an
/// event reports it itself (the `tracing` warning of the PostgreSQL sink).
#[async_trait]
pub trait Events: Send + Sync {
    /// Records `event`.
    async fn record(&self, event: &Event);

    /// Deletes every recorded event about `cabinet` or one of `accounts` (erasure of a
    /// resident's data); returns how many went. The default keeps nothing to delete.
    ///
    /// # Errors
    /// [`StoreError`] when the sink cannot delete.
    async fn forget(
        &self,
        cabinet: Option<&CabinetId>,
        accounts: &[AccountNumber],
    ) -> Result<u64, StoreError> {
        let _ = (cabinet, accounts);
        Ok(0)
    }
}

/// Records to the `resident_auth::events` tracing target at `info` (the default sink).
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingEvents;

#[async_trait]
impl Events for TracingEvents {
    async fn record(&self, event: &Event) {
        tracing::info!(
            target: "resident_auth::events",
            event = event.kind.as_str(),
            outcome = event.outcome().as_str(),
            at = event.at.as_millis(),
            cabinet = event.cabinet.map(|c| c.to_string()),
            account = event.account.map(|a| a.to_string()),
            client = event.client.as_deref(),
            "resident event"
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn clients_are_truncated() {
        assert_eq!(truncate_client("10.1.2.3"), "10.1.2.0/24");
        assert_eq!(truncate_client("::1"), "::/48");
        assert_eq!(truncate_client(&"x".repeat(100)).chars().count(), 64);
        assert_eq!(truncate_client("proxy-a"), "proxy-a");
    }

    #[test]
    fn outcomes_follow_the_kind() {
        assert_eq!(EventKind::LoginThrottled.outcome(), Outcome::Refused);
        assert_eq!(EventKind::LoginFailed.outcome(), Outcome::Failed);
        assert_eq!(EventKind::Activated.outcome(), Outcome::Succeeded);
        assert_eq!(EventKind::LetterDead.to_string(), "letter_dead");
    }
}
