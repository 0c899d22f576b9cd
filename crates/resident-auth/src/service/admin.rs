//! The operators' operations (docs/operating.md; docs/contract.md §8): what the
//! settlement center's staff do when a resident calls — find a cabinet, resend a
//! confirmation, clear locks, end sessions, unlink a personal account, erase a cabinet,
//! export its data. Over the same ports as the residents' journeys, with the policy here;
//! every change names its operator and is recorded through an [`Audit`] sink, without
//! personal data.

use std::{fmt, str::FromStr, sync::Arc};

use async_trait::async_trait;
use serde::Serialize;

use super::{AuthService, Expected};
use crate::{
    letters::{Letter, LetterContent},
    mail_queue::{LetterStatus, QueuedLetter},
    ports::{Cabinet, CabinetKey, CabinetSwap, Link, LinkPurpose, StoreError, Versioned},
    AccountNumber, CabinetId, Email, Error, Locale, Timestamp, Token, TokenHash,
};

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
    /// The operation would leave a state the policy forbids; the reason says which.
    #[error("refused: {0}")]
    Refused(&'static str),
    /// The service failed (storage, mail).
    #[error(transparent)]
    Service(#[from] Error),
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
    /// given yet) or `recovery`.
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
    /// Every stored session.
    pub sessions: Vec<SessionExport>,
    /// Pending registrations, additions, recoveries.
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
    fn total(self) -> u64 {
        self.cabinets + self.sessions + self.links + self.counters + self.letters + self.events
    }
}

/// The operators' facade over a service: [`AuthService::admin`].
#[derive(Clone)]
pub struct Admin {
    service: AuthService,
    audit: Arc<dyn Audit>,
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

impl AuthService {
    /// The operators' operations over this service, recording to [`TracingAudit`] until
    /// [`Admin::with_audit`] names another sink.
    #[must_use]
    pub fn admin(&self) -> Admin {
        Admin {
            service: self.clone(),
            audit: Arc::new(TracingAudit),
        }
    }
}

/// The cabinet found, and the emails and accounts a lookup concerns.
struct Subject {
    cabinet: Option<Versioned<Cabinet>>,
    email: Option<Email>,
    accounts: Vec<AccountNumber>,
}

impl Subject {
    /// The counter subjects: the email and the accounts, as counters name them.
    fn counter_subjects(&self) -> Vec<String> {
        self.email
            .iter()
            .map(ToString::to_string)
            .chain(self.accounts.iter().map(ToString::to_string))
            .collect()
    }
}

fn pending_report(link: &Link, now: Timestamp) -> PendingReport {
    PendingReport {
        purpose: link.purpose.as_str(),
        email: link.email.to_string(),
        account_number: link.account_number.map(|a| a.to_string()),
        expires_at: link.expires_at.to_string(),
        expired: link.expires_at <= now,
    }
}

/// The family of a counter key: the key without `:` and its subject.
fn family(key: &str, subjects: &[String]) -> String {
    subjects
        .iter()
        .find_map(|subject| key.strip_suffix(subject.as_str()))
        .map_or(key, |rest| rest.trim_end_matches(':'))
        .to_owned()
}

impl Admin {
    /// Records operator actions to `audit` (e.g. the PostgreSQL audit table).
    #[must_use]
    pub fn with_audit(mut self, audit: Arc<dyn Audit>) -> Self {
        self.audit = audit;
        self
    }

    async fn record(
        &self,
        operator: &Operator,
        action: &'static str,
        cabinet: Option<CabinetId>,
        changed: u64,
    ) -> Result<(), AdminError> {
        let event = AuditEvent {
            at: self.service.now(),
            operator: operator.0.clone(),
            action,
            cabinet,
            changed,
        };
        Ok(self.audit.record(&event).await?)
    }

    /// The cabinet, email and accounts of a lookup.
    async fn subject(&self, lookup: &Lookup) -> Result<Subject, AdminError> {
        let store = self.service.store();
        let cabinet = match lookup {
            Lookup::Email(email) => store.cabinet(CabinetKey::Email(email)).await?,
            Lookup::Account(account) => store.cabinet(CabinetKey::Account(account)).await?,
        };
        let (email, mut accounts) = match (&cabinet, lookup) {
            (Some(cabinet), _) => (
                Some(cabinet.value.email.clone()),
                cabinet.value.accounts.clone(),
            ),
            (None, Lookup::Email(email)) => (Some(email.clone()), Vec::new()),
            (None, Lookup::Account(account)) => (None, vec![*account]),
        };
        if let Lookup::Account(account) = lookup {
            if !accounts.contains(account) {
                accounts.push(*account);
            }
        }
        Ok(Subject {
            cabinet,
            email,
            accounts,
        })
    }

    async fn letters(&self, subject: &Subject) -> Result<Vec<Versioned<QueuedLetter>>, AdminError> {
        let cabinet = subject.cabinet.as_ref().map(|c| c.value.id);
        Ok(self
            .service
            .store()
            .letters_about(subject.email.as_ref(), cabinet.as_ref())
            .await?)
    }

    async fn links(
        &self,
        subject: &Subject,
    ) -> Result<Vec<(TokenHash, Versioned<Link>)>, AdminError> {
        Ok(self
            .service
            .store()
            .links_about(subject.email.as_ref(), &subject.accounts)
            .await?)
    }

    async fn summary(&self, cabinet: &Cabinet) -> Result<CabinetSummary, AdminError> {
        let now = self.service.now();
        let mut accounts = Vec::with_capacity(cabinet.accounts.len());
        for account in &cabinet.accounts {
            let record = self.service.ports.directory.lookup(account).await?;
            accounts.push(AccountReport {
                account_number: account.to_string(),
                address: record.map(|r| r.address).unwrap_or_default(),
            });
        }
        let sessions = self.service.store().cabinet_sessions(&cabinet.id).await?;
        let live = sessions
            .iter()
            .filter(|(_, s)| {
                self.service
                    .session_alive(&s.value, cabinet.credential_version, now)
            })
            .count();
        Ok(CabinetSummary {
            cabinet: cabinet.id.to_string(),
            email: cabinet.email.to_string(),
            accounts,
            sessions: live,
            last_login: sessions
                .iter()
                .map(|(_, s)| s.value.created_at)
                .max()
                .map(|at| at.to_string()),
            temporary_password_until: cabinet.password_expires_at.map(|at| at.to_string()),
        })
    }

    /// Everything about `lookup`: the cabinet (accounts with addresses, live sessions, last
    /// login), registrations under way, and live locks.
    ///
    /// # Errors
    /// [`AdminError::NotFound`] when there is no cabinet, link or lock at all; the
    /// service's errors.
    #[tracing::instrument(name = "resident_auth.find", skip_all, err(level = "debug", Display))]
    pub async fn find(&self, lookup: &Lookup) -> Result<Report, AdminError> {
        let subject = self.subject(lookup).await?;
        let now = self.service.now();
        let cabinet = match &subject.cabinet {
            Some(cabinet) => Some(self.summary(&cabinet.value).await?),
            None => None,
        };
        let pending: Vec<PendingReport> = self
            .links(&subject)
            .await?
            .iter()
            .map(|(_, link)| pending_report(&link.value, now))
            .collect();
        let subjects = subject.counter_subjects();
        let locks: Vec<LockReport> = self
            .service
            .store()
            .counters_about(&subjects)
            .await?
            .into_iter()
            .filter(|(_, count)| count.window_ends > now)
            .map(|(key, count)| LockReport {
                counter: family(key.as_str(), &subjects),
                count: count.count,
                window_ends: count.window_ends.to_string(),
            })
            .collect();
        let mut letters = self.letters(&subject).await?;
        letters.sort_by_key(|letter| std::cmp::Reverse(letter.value.queued_at));
        if cabinet.is_none() && pending.is_empty() && locks.is_empty() && letters.is_empty() {
            return Err(AdminError::NotFound);
        }
        let count = |status| letters.iter().filter(|l| l.value.status == status).count() as u64;
        Ok(Report {
            cabinet,
            pending,
            locks,
            letters_queued: count(LetterStatus::Queued),
            letters_dead: count(LetterStatus::Dead),
            letters: letters
                .iter()
                .map(|letter| LetterReport {
                    letter: letter.value.id.to_string(),
                    kind: letter.value.kind.as_str(),
                    status: letter.value.status.as_str(),
                    attempts: letter.value.attempts,
                    queued_at: letter.value.queued_at.to_string(),
                    last_error: letter.value.last_error.clone(),
                })
                .collect(),
        })
    }

    /// [`Admin::find`], recorded as the operator's lookup (`find`), found or not: what the
    /// operators' API answers, where every call is audited (a lookup of someone's email is
    /// itself worth a trace).
    ///
    /// # Errors
    /// As [`Admin::find`], and when the record cannot be kept.
    #[tracing::instrument(
        name = "resident_auth.find_as",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn find_as(
        &self,
        lookup: &Lookup,
        operator: &Operator,
    ) -> Result<Report, AdminError> {
        let result = self.find(lookup).await;
        let cabinet = result
            .as_ref()
            .ok()
            .and_then(|report| report.cabinet.as_ref())
            .and_then(|c| c.cabinet.parse::<CabinetId>().ok());
        self.record(operator, "find", cabinet, 0).await?;
        result
    }

    /// "The letter never came": sends the pending confirmation again, with a new link
    /// (the old one stops working), whatever the resend cooldown says. Returns where it
    /// went.
    ///
    /// # Errors
    /// [`AdminError::NotFound`] without a live confirmation link; the service's errors
    /// (the mail server's among them).
    #[tracing::instrument(
        name = "resident_auth.resend_confirmation",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn resend_confirmation(
        &self,
        lookup: &Lookup,
        operator: &Operator,
    ) -> Result<Email, AdminError> {
        let subject = self.subject(lookup).await?;
        let now = self.service.now();
        let store = self.service.store();
        let (old, link) = self
            .links(&subject)
            .await?
            .into_iter()
            .filter(|(_, l)| {
                l.value.purpose == LinkPurpose::Confirmation && now < l.value.expires_at
            })
            .max_by_key(|(_, l)| l.value.expires_at)
            .ok_or(AdminError::NotFound)?;
        let token = Token::generate();
        let hash = token.hash();
        let fresh = Link {
            expires_at: now.plus(self.service.config.confirmation_ttl),
            ..link.value.clone()
        };
        let letter = Letter {
            to: fresh.email.clone(),
            locale: Locale::Ru,
            content: LetterContent::ConfirmEmail {
                link: self.service.config.links.confirmation(&token),
            },
        };
        let queued = self.service.queued(&letter, fresh.cabinet, now);
        if !store
            .swap_link(
                &old,
                Expected::Version(link.version),
                Some((&hash, &fresh)),
                Some(&queued),
            )
            .await?
        {
            return Err(AdminError::Refused("the link changed meanwhile; try again"));
        }
        self.service.letter_written(queued).await;
        self.record(operator, "resend_confirmation", fresh.cabinet, 1)
            .await?;
        Ok(fresh.email)
    }

    /// "I am locked out": clears every throttle, cooldown and premises-attempt count of the
    /// lookup's email and accounts (and of the cabinet's, when there is one). Returns how
    /// many counters went.
    ///
    /// # Errors
    /// [`AdminError::NotFound`] when nothing matches; the service's errors.
    #[tracing::instrument(
        name = "resident_auth.clear_locks",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn clear_locks(
        &self,
        lookup: &Lookup,
        operator: &Operator,
    ) -> Result<u64, AdminError> {
        let subject = self.subject(lookup).await?;
        let store = self.service.store();
        let counters = store.counters_about(&subject.counter_subjects()).await?;
        if subject.cabinet.is_none() && counters.is_empty() {
            return Err(AdminError::NotFound);
        }
        let keys: Vec<_> = counters.into_iter().map(|(key, _)| key).collect();
        store.reset_all(&keys).await?;
        let cabinet = subject.cabinet.map(|c| c.value.id);
        self.record(operator, "clear_locks", cabinet, keys.len() as u64)
            .await?;
        Ok(keys.len() as u64)
    }

    /// Ends every session of the lookup's cabinet. Returns how many were stored.
    ///
    /// # Errors
    /// [`AdminError::NotFound`] without a cabinet; the service's errors.
    #[tracing::instrument(
        name = "resident_auth.end_sessions",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn end_sessions(
        &self,
        lookup: &Lookup,
        operator: &Operator,
    ) -> Result<u64, AdminError> {
        let subject = self.subject(lookup).await?;
        let cabinet = subject.cabinet.ok_or(AdminError::NotFound)?;
        let ended = self.delete_sessions(&cabinet.value.id).await?;
        self.record(operator, "end_sessions", Some(cabinet.value.id), ended)
            .await?;
        Ok(ended)
    }

    async fn delete_sessions(&self, cabinet: &CabinetId) -> Result<u64, AdminError> {
        let store = self.service.store();
        let mut ended = 0;
        for (token, session) in store.cabinet_sessions(cabinet).await? {
            if store
                .swap_session(&token, Expected::Version(session.version), None)
                .await?
            {
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// "Someone else registered my account": takes `account` out of the cabinet that holds
    /// it. Every session of the cabinet ends (the credential version moves on) and the
    /// cabinet's email gets a letter saying so. The last account of a cabinet is unlinked
    /// only with `erase`, which erases the whole cabinet ([`Admin::erase`]).
    ///
    /// # Errors
    /// [`AdminError::NotFound`] when no cabinet holds the account;
    /// [`AdminError::Refused`] for the last account without `erase`; the service's errors.
    #[tracing::instrument(name = "resident_auth.unlink", skip_all, err(level = "debug", Display))]
    pub async fn unlink(
        &self,
        account: &AccountNumber,
        erase: bool,
        operator: &Operator,
    ) -> Result<Option<Erased>, AdminError> {
        let store = self.service.store();
        for _ in 0..super::CABINET_WRITE_ATTEMPTS {
            let cabinet = store
                .cabinet(CabinetKey::Account(account))
                .await?
                .ok_or(AdminError::NotFound)?;
            if cabinet.value.accounts.len() == 1 {
                if !erase {
                    return Err(AdminError::Refused(
                        "the cabinet's last account: erase the cabinet instead",
                    ));
                }
                return self
                    .erase(&Lookup::Account(*account), operator)
                    .await
                    .map(Some);
            }
            let mut next = cabinet.value.clone();
            next.accounts.retain(|a| a != account);
            next.credential_version = next.credential_version.saturating_add(1);
            let letter = Letter {
                to: next.email.clone(),
                locale: Locale::Ru,
                content: LetterContent::AccountUnlinked { account: *account },
            };
            let queued = self
                .service
                .queued(&letter, Some(next.id), self.service.now());
            match store
                .swap_cabinet(
                    &next.id,
                    Expected::Version(cabinet.version),
                    Some(&next),
                    Some(&queued),
                )
                .await?
            {
                CabinetSwap::Written => {}
                CabinetSwap::Conflict => continue,
                CabinetSwap::Taken => return Err(AdminError::Refused("the cabinet changed")),
            }
            self.service.letter_written(queued).await;
            let _ = self.delete_sessions(&next.id).await;
            self.record(operator, "unlink", Some(next.id), 1).await?;
            return Ok(None);
        }
        Err(StoreError::unavailable("the cabinet kept changing under a write").into())
    }

    /// "Delete my data": erases the lookup's cabinet with its sessions, every pending
    /// registration, addition and recovery of its email and accounts, and every counter
    /// naming them. Only the audit record stays, naming the cabinet's opaque identity.
    /// Afterwards the accounts can be registered again.
    ///
    /// # Errors
    /// [`AdminError::NotFound`] when nothing matches; the service's errors.
    #[tracing::instrument(name = "resident_auth.erase", skip_all, err(level = "debug", Display))]
    pub async fn erase(&self, lookup: &Lookup, operator: &Operator) -> Result<Erased, AdminError> {
        let (erased, cabinet) = self.erase_quietly(lookup, None).await?;
        self.record(operator, "erase", cabinet, erased.total())
            .await?;
        Ok(erased)
    }

    /// The erasure of [`Admin::erase`] without its audit record; `farewell` is queued in
    /// the write that deletes the cabinet (the resident's own closing).
    pub(crate) async fn erase_quietly(
        &self,
        lookup: &Lookup,
        farewell: Option<&QueuedLetter>,
    ) -> Result<(Erased, Option<CabinetId>), AdminError> {
        let subject = self.subject(lookup).await?;
        let store = self.service.store();
        // Everything is listed before anything is deleted: a store that cannot list
        // (the optional primitives) refuses the erasure whole.
        let links = self.links(&subject).await?;
        let keys: Vec<_> = store
            .counters_about(&subject.counter_subjects())
            .await?
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        let letters = self.letters(&subject).await?;
        let mut erased = Erased::default();
        if let Some(cabinet) = &subject.cabinet {
            erased.sessions = self.delete_sessions(&cabinet.value.id).await?;
        }
        for (token, link) in links {
            if store
                .swap_link(&token, Expected::Version(link.version), None, None)
                .await?
            {
                erased.links += 1;
            }
        }
        store.reset_all(&keys).await?;
        erased.counters = keys.len() as u64;
        for letter in letters {
            if store
                .swap_letter(&letter.value.id, Expected::Version(letter.version), None)
                .await?
            {
                erased.letters += 1;
            }
        }
        let cabinet_id = subject.cabinet.as_ref().map(|c| c.value.id);
        erased.events = self
            .service
            .ports
            .events
            .forget(cabinet_id.as_ref(), &subject.accounts)
            .await?;
        if let Some(cabinet) = &subject.cabinet {
            match store
                .swap_cabinet(
                    &cabinet.value.id,
                    Expected::Version(cabinet.version),
                    None,
                    farewell,
                )
                .await?
            {
                CabinetSwap::Written => erased.cabinets = 1,
                _ => {
                    return Err(AdminError::Refused(
                        "the cabinet changed meanwhile; run again",
                    ))
                }
            }
        }
        if erased.total() == 0 {
            return Err(AdminError::NotFound);
        }
        Ok((erased, subject.cabinet.map(|c| c.value.id)))
    }

    /// "What do you keep about me": the cabinet's data, without secrets.
    ///
    /// # Errors
    /// [`AdminError::NotFound`] without a cabinet; the service's errors.
    #[tracing::instrument(name = "resident_auth.export", skip_all, err(level = "debug", Display))]
    pub async fn export(
        &self,
        lookup: &Lookup,
        operator: &Operator,
    ) -> Result<CabinetExport, AdminError> {
        let (export, cabinet) = self.export_quietly(lookup).await?;
        self.record(operator, "export", Some(cabinet), 1).await?;
        Ok(export)
    }

    /// The export of [`Admin::export`] without its audit record, and the cabinet's id.
    pub(crate) async fn export_quietly(
        &self,
        lookup: &Lookup,
    ) -> Result<(CabinetExport, CabinetId), AdminError> {
        let subject = self.subject(lookup).await?;
        let cabinet = subject.cabinet.as_ref().ok_or(AdminError::NotFound)?;
        let now = self.service.now();
        let summary = self.summary(&cabinet.value).await?;
        let sessions = self
            .service
            .store()
            .cabinet_sessions(&cabinet.value.id)
            .await?
            .into_iter()
            .map(|(_, s)| SessionExport {
                created_at: s.value.created_at.to_string(),
                last_used: s.value.last_used.to_string(),
                client: s.value.client,
            })
            .collect();
        let pending = self
            .links(&subject)
            .await?
            .iter()
            .map(|(_, link)| pending_report(&link.value, now))
            .collect();
        Ok((
            CabinetExport {
                cabinet: summary,
                sessions,
                pending,
            },
            cabinet.value.id,
        ))
    }
}
