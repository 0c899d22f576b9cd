//! What the operators' operations answer: reports, exports, what an erasure removed.

use super::*;

/// A personal account of a cabinet, with its address from the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountReport {
    /// 13 digits.
    pub account_number: String,
    /// The directory's address (empty when the directory no longer has the account).
    pub address: String,
}

/// A cabinet as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CabinetSummary {
    /// The opaque identity.
    pub cabinet: String,
    /// The login email.
    pub email: String,
    /// Linked accounts, in the order they were added.
    pub accounts: Vec<AccountReport>,
    /// Live sessions now.
    pub sessions: usize,
    /// The latest login among the stored sessions (RFC 3339), if any is kept.
    pub last_login: Option<String>,
    /// Until when the mailed password is temporary (RFC 3339), if it is.
    pub temporary_password_until: Option<String>,
}

/// A registration, addition or recovery under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingReport {
    /// `confirmation` (letter sent, not followed), `activation` (confirmed, premises not
    /// given yet), `recovery`, `email_change` (the new address, not confirmed yet) or
    /// `email_change_cancel`.
    pub purpose: &'static str,
    /// The email it was made for.
    pub email: String,
    /// The account it concerns.
    pub account_number: Option<String>,
    /// When the link stops working (RFC 3339).
    pub expires_at: String,
    /// Whether it has stopped working already.
    pub expired: bool,
}

/// A throttle, cooldown or attempt limit counting against the resident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockReport {
    /// The counter's family, e.g. `login:cabinet`, `premises:account:900s`.
    pub counter: String,
    /// Events counted in the window.
    pub count: u32,
    /// When the window ends (RFC 3339).
    pub window_ends: String,
}

/// Everything about one lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The cabinet, if there is one.
    pub cabinet: Option<CabinetSummary>,
    /// Registrations, additions and recoveries under way.
    pub pending: Vec<PendingReport>,
    /// Live counters (throttles, cooldowns, premises attempts).
    pub locks: Vec<LockReport>,
    /// Letters waiting in the mail queue.
    pub letters_queued: u64,
    /// Letters given up (dead letters), still on record.
    pub letters_dead: u64,
    /// Every letter on record to the email or about the cabinet, newest first.
    pub letters: Vec<LetterReport>,
}

/// A letter on record in the mail queue: what it is and how its delivery went — never
/// what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LetterReport {
    /// The letter's identity.
    pub letter: String,
    /// Which letter: [`crate::letters::LetterKind::as_str`].
    pub kind: &'static str,
    /// `queued`, `sent` or `dead`.
    pub status: &'static str,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// When it was queued (RFC 3339).
    pub queued_at: String,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
}

/// One session, for an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionExport {
    /// Login time (RFC 3339).
    pub created_at: String,
    /// Last use (RFC 3339).
    pub last_used: String,
    /// Browser, system and address at login, when known.
    pub client: Option<String>,
}

/// A cabinet's data, for the resident's right of access (152-ФЗ art. 14, GDPR art. 15).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CabinetExport {
    /// The cabinet, as [`Report::cabinet`].
    pub cabinet: CabinetSummary,
    /// Every live session (an ended one is no longer the resident's: not listed).
    pub sessions: Vec<SessionExport>,
    /// Pending registrations, additions, recoveries and email changes (with the new
    /// address).
    pub pending: Vec<PendingReport>,
}

/// What an erasure removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Erased {
    /// The cabinet itself (0 when only pending registrations matched).
    pub cabinets: u64,
    /// Sessions.
    pub sessions: u64,
    /// Links (pending registrations, additions, recoveries).
    pub links: u64,
    /// Counters naming the email or an account.
    pub counters: u64,
    /// Letters to the email or about the cabinet, in any state.
    pub letters: u64,
    /// Residents' events about the cabinet or its accounts ([`crate::events::Events::forget`]).
    pub events: u64,
}

impl Erased {
    pub(super) fn total(self) -> u64 {
        self.cabinets + self.sessions + self.links + self.counters + self.letters + self.events
    }
}
