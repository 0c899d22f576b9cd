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
use crate::ports::prelude::*;
use crate::{
    letters::{Letter, LetterContent},
    mail::{LetterStatus, QueuedLetter},
    ports::{Cabinet, CabinetKey, CabinetSwap, Link, LinkPurpose, StoreError, Versioned},
    AccountNumber, CabinetId, Email, Error, Locale, Timestamp, Token, TokenHash,
};

mod reports;
mod terms;
pub use reports::{
    AccountReport, CabinetExport, CabinetSummary, Erased, LetterReport, LockReport, PendingReport,
    Report, SessionExport,
};
pub use terms::{
    AdminError, Audit, AuditEvent, InvalidLookup, InvalidOperator, Lookup, Operator, RefusalReason,
    TracingAudit,
};

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
    /// The new address of a change under way ([`Admin::with_pending_addresses`]).
    new_addresses: Vec<Email>,
}

impl Subject {
    /// The counter subjects: the email, a pending new address and the accounts, as
    /// counters name them.
    fn counter_subjects(&self) -> Vec<String> {
        self.email
            .iter()
            .chain(&self.new_addresses)
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
            operator: operator.to_string(),
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
            new_addresses: Vec::new(),
        })
    }

    /// The subject with the new address of the cabinet's change under way: its link and
    /// counters name that address, which the cabinet's own letter to it ("Подтверждение
    /// нового e-mail", kept longer than the link) tells.
    async fn with_pending_addresses(&self, mut subject: Subject) -> Result<Subject, AdminError> {
        if subject.cabinet.is_none() {
            return Ok(subject);
        }
        let mut new_addresses: Vec<Email> = self
            .letters(&subject)
            .await?
            .into_iter()
            .filter(|letter| letter.value.kind == crate::letters::LetterKind::ConfirmEmailChange)
            .map(|letter| letter.value.to)
            .filter(|to| Some(to) != subject.email.as_ref())
            .collect();
        new_addresses.sort();
        new_addresses.dedup();
        subject.new_addresses = new_addresses;
        Ok(subject)
    }

    async fn letters(&self, subject: &Subject) -> Result<Vec<Versioned<QueuedLetter>>, AdminError> {
        let cabinet = subject.cabinet.as_ref().map(|c| c.value.id);
        Ok(self
            .service
            .store()
            .letters_about(subject.email.as_ref(), cabinet.as_ref())
            .await?)
    }

    /// The links about the subject's email and accounts, and the cabinet's pending email
    /// change (under its new address).
    async fn links(
        &self,
        subject: &Subject,
    ) -> Result<Vec<(TokenHash, Versioned<Link>)>, AdminError> {
        let store = self.service.store();
        let mut links = store
            .links_about(subject.email.as_ref(), &subject.accounts)
            .await?;
        let Some(cabinet) = subject.cabinet.as_ref().map(|c| c.value.id) else {
            return Ok(links);
        };
        for address in &subject.new_addresses {
            for (token, link) in store.links_about(Some(address), &[]).await? {
                if link.value.purpose == LinkPurpose::EmailChange
                    && link.value.cabinet == Some(cabinet)
                    && !links.iter().any(|(known, _)| *known == token)
                {
                    links.push((token, link));
                }
            }
        }
        Ok(links)
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
        let subject = self
            .with_pending_addresses(self.subject(lookup).await?)
            .await?;
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
                counter: key.family().to_owned(),
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
            return Err(AdminError::Refused(RefusalReason::ChangedMeanwhile));
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
                    return Err(AdminError::Refused(RefusalReason::LastAccount));
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
                CabinetSwap::Taken => {
                    return Err(AdminError::Refused(RefusalReason::ChangedMeanwhile))
                }
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
        let subject = self
            .with_pending_addresses(self.subject(lookup).await?)
            .await?;
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
                _ => return Err(AdminError::Refused(RefusalReason::ChangedMeanwhile)),
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
        let subject = self
            .with_pending_addresses(self.subject(lookup).await?)
            .await?;
        let cabinet = subject.cabinet.as_ref().ok_or(AdminError::NotFound)?;
        let now = self.service.now();
        let summary = self.summary(&cabinet.value).await?;
        let sessions = self
            .service
            .store()
            .cabinet_sessions(&cabinet.value.id)
            .await?
            .into_iter()
            .filter(|(_, s)| {
                self.service
                    .session_alive(&s.value, cabinet.value.credential_version, now)
            })
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
