//! In-memory adapters: the store and directory of tests and of the embedded default, and a
//! recording mailer. Thread-safe; every store call is atomic under one lock.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use async_trait::async_trait;

use crate::{
    clock::Timestamp,
    config::{AccountDirectory, DirectoryRecord},
    ids::{CabinetId, LetterId},
    letters::{Letter, LetterKind},
    mail::{LetterStatus, MailError, Mailer, QueuedLetter},
    ports::{
        Cabinet, CabinetKey, CabinetStore, CabinetSwap, Count, CounterKey, CounterStore, Expected,
        LetterStore, Link, LinkStore, Session, SessionStore, Store, StoreError, Version, Versioned,
    },
    secret::TokenHash,
    AccountNumber, Email,
};

#[derive(Debug, Default)]
struct State {
    links: HashMap<TokenHash, Versioned<Link>>,
    cabinets: HashMap<CabinetId, Versioned<Cabinet>>,
    by_email: HashMap<Email, CabinetId>,
    by_account: HashMap<AccountNumber, CabinetId>,
    sessions: HashMap<TokenHash, Versioned<Session>>,
    counters: HashMap<CounterKey, Count>,
    letters: HashMap<LetterId, Versioned<QueuedLetter>>,
}

impl State {
    /// Whether `letter` (if any) can be queued: its identity is not taken.
    fn letter_fits(&self, letter: Option<&QueuedLetter>) -> bool {
        letter.is_none_or(|letter| !self.letters.contains_key(&letter.id))
    }

    /// Queues `letter` (if any), after a write that needed it.
    fn queue(&mut self, letter: Option<&QueuedLetter>) {
        if let Some(letter) = letter {
            self.letters.insert(
                letter.id,
                Versioned {
                    value: letter.clone(),
                    version: Version::FIRST,
                },
            );
        }
    }
}

/// The in-memory [`Store`]: maps behind one mutex, with indexes of cabinets by email and
/// by account. Cheap to clone; clones share the data.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        self.state
            .lock()
            .map_err(|_| StoreError::generic("memory store lock poisoned"))
    }
}

/// Replaces the record under `key` by `next` if the current one meets `expected`.
fn swap<K: std::hash::Hash + Eq + Clone, T: Clone>(
    map: &mut HashMap<K, Versioned<T>>,
    key: &K,
    expected: Expected,
    next: Option<(&K, &T)>,
) -> bool {
    let current = map.get(key).map(|record| record.version);
    if !expected.admits(current) {
        return false;
    }
    let version = current.map_or(crate::ports::Version::FIRST, crate::ports::Version::next);
    if let Some((next_key, _)) = next {
        if next_key != key && map.contains_key(next_key) {
            return false;
        }
    }
    map.remove(key);
    if let Some((next_key, value)) = next {
        map.insert(
            next_key.clone(),
            Versioned {
                value: value.clone(),
                version,
            },
        );
    }
    true
}

#[async_trait]
impl LinkStore for MemoryStore {
    async fn link(&self, token: &TokenHash) -> Result<Option<Versioned<Link>>, StoreError> {
        Ok(self.state()?.links.get(token).cloned())
    }

    async fn swap_link(
        &self,
        token: &TokenHash,
        expected: Expected,
        next: Option<(&TokenHash, &Link)>,
        letter: Option<&QueuedLetter>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        if !state.letter_fits(letter) {
            return Ok(false);
        }
        let written = swap(&mut state.links, token, expected, next);
        if written {
            state.queue(letter);
        }
        Ok(written)
    }

    async fn purge_links(&self, now: Timestamp) -> Result<u64, StoreError> {
        let links = &mut self.state()?.links;
        let before = links.len();
        links.retain(|_, link| link.value.expires_at > now);
        Ok((before - links.len()) as u64)
    }

    async fn links_about(
        &self,
        email: Option<&Email>,
        accounts: &[AccountNumber],
    ) -> Result<Vec<(TokenHash, Versioned<Link>)>, StoreError> {
        Ok(self
            .state()?
            .links
            .iter()
            .filter(|(_, link)| {
                Some(&link.value.email) == email
                    || link
                        .value
                        .account_number
                        .is_some_and(|account| accounts.contains(&account))
            })
            .map(|(token, link)| (*token, link.clone()))
            .collect())
    }
}

#[async_trait]
impl CabinetStore for MemoryStore {
    async fn cabinet(&self, key: CabinetKey<'_>) -> Result<Option<Versioned<Cabinet>>, StoreError> {
        let state = self.state()?;
        let id = match key {
            CabinetKey::Id(id) => Some(*id),
            CabinetKey::Email(email) => state.by_email.get(email).copied(),
            CabinetKey::Account(account) => state.by_account.get(account).copied(),
        };
        Ok(id.and_then(|id| state.cabinets.get(&id).cloned()))
    }

    async fn swap_cabinet(
        &self,
        id: &CabinetId,
        expected: Expected,
        next: Option<&Cabinet>,
        letter: Option<&QueuedLetter>,
    ) -> Result<CabinetSwap, StoreError> {
        let mut state = self.state()?;
        let current = state.cabinets.get(id).map(|c| c.version);
        if !expected.admits(current) || !state.letter_fits(letter) {
            return Ok(CabinetSwap::Conflict);
        }
        if let Some(next) = next {
            let taken = state
                .by_email
                .get(&next.email)
                .is_some_and(|owner| owner != id)
                || next
                    .accounts
                    .iter()
                    .any(|a| state.by_account.get(a).is_some_and(|owner| owner != id));
            if taken {
                return Ok(CabinetSwap::Taken);
            }
        }
        if let Some(old) = state.cabinets.remove(id) {
            state.by_email.remove(&old.value.email);
            for account in &old.value.accounts {
                state.by_account.remove(account);
            }
        }
        if let Some(next) = next {
            let version = current.map_or(crate::ports::Version::FIRST, crate::ports::Version::next);
            state.by_email.insert(next.email.clone(), *id);
            for account in &next.accounts {
                state.by_account.insert(*account, *id);
            }
            state.cabinets.insert(
                *id,
                Versioned {
                    value: Cabinet {
                        id: *id,
                        ..next.clone()
                    },
                    version,
                },
            );
        }
        state.queue(letter);
        Ok(CabinetSwap::Written)
    }
}

#[async_trait]
impl LetterStore for MemoryStore {
    async fn claim_letters(
        &self,
        now: Timestamp,
        claim_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<QueuedLetter>>, StoreError> {
        let mut state = self.state()?;
        let mut due: Vec<&mut Versioned<QueuedLetter>> = state
            .letters
            .values_mut()
            .filter(|letter| {
                letter.value.status == LetterStatus::Queued && letter.value.next_attempt_at <= now
            })
            .collect();
        due.sort_by_key(|letter| letter.value.next_attempt_at);
        Ok(due
            .into_iter()
            .take(limit)
            .map(|letter| {
                letter.value.next_attempt_at = claim_until;
                letter.version = letter.version.next();
                letter.clone()
            })
            .collect())
    }

    async fn swap_letter(
        &self,
        id: &LetterId,
        expected: Expected,
        next: Option<&QueuedLetter>,
    ) -> Result<bool, StoreError> {
        Ok(swap(
            &mut self.state()?.letters,
            id,
            expected,
            next.map(|letter| (id, letter)),
        ))
    }

    async fn letters_about(
        &self,
        email: Option<&Email>,
        cabinet: Option<&CabinetId>,
    ) -> Result<Vec<Versioned<QueuedLetter>>, StoreError> {
        Ok(self
            .state()?
            .letters
            .values()
            .filter(|letter| {
                Some(&letter.value.to) == email
                    || (letter.value.cabinet.is_some() && letter.value.cabinet.as_ref() == cabinet)
            })
            .cloned()
            .collect())
    }

    async fn purge_letters(&self, now: Timestamp) -> Result<u64, StoreError> {
        let letters = &mut self.state()?.letters;
        let before = letters.len();
        letters.retain(|_, letter| letter.value.keep_until.is_none_or(|until| until > now));
        Ok((before - letters.len()) as u64)
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn session(&self, token: &TokenHash) -> Result<Option<Versioned<Session>>, StoreError> {
        Ok(self.state()?.sessions.get(token).cloned())
    }

    async fn swap_session(
        &self,
        token: &TokenHash,
        expected: Expected,
        next: Option<&Session>,
    ) -> Result<bool, StoreError> {
        Ok(swap(
            &mut self.state()?.sessions,
            token,
            expected,
            next.map(|session| (token, session)),
        ))
    }

    async fn cabinet_sessions(
        &self,
        cabinet: &CabinetId,
    ) -> Result<Vec<(TokenHash, Versioned<Session>)>, StoreError> {
        Ok(self
            .state()?
            .sessions
            .iter()
            .filter(|(_, session)| session.value.cabinet == *cabinet)
            .map(|(token, session)| (*token, session.clone()))
            .collect())
    }

    async fn purge_sessions(&self, now: Timestamp) -> Result<u64, StoreError> {
        let sessions = &mut self.state()?.sessions;
        let before = sessions.len();
        sessions.retain(|_, session| session.value.expires_at > now);
        Ok((before - sessions.len()) as u64)
    }
}

#[async_trait]
impl CounterStore for MemoryStore {
    async fn increment(
        &self,
        key: &CounterKey,
        now: Timestamp,
        window: Duration,
    ) -> Result<Count, StoreError> {
        let mut state = self.state()?;
        let count = state.counters.entry(key.clone()).or_insert(Count {
            count: 0,
            window_ends: now,
        });
        if count.window_ends <= now {
            *count = Count {
                count: 0,
                window_ends: now.plus(window),
            };
        }
        count.count = count.count.saturating_add(1);
        Ok(*count)
    }

    async fn reset(&self, key: &CounterKey) -> Result<(), StoreError> {
        self.state()?.counters.remove(key);
        Ok(())
    }

    async fn purge_counters(&self, now: Timestamp) -> Result<u64, StoreError> {
        let counters = &mut self.state()?.counters;
        let before = counters.len();
        counters.retain(|_, count| count.window_ends > now);
        Ok((before - counters.len()) as u64)
    }

    async fn counters_about(
        &self,
        subjects: &[String],
    ) -> Result<Vec<(CounterKey, Count)>, StoreError> {
        Ok(self
            .state()?
            .counters
            .iter()
            .filter(|(key, _)| subjects.iter().any(|subject| key.subject() == subject))
            .map(|(key, count)| (key.clone(), *count))
            .collect())
    }
}

impl Store for MemoryStore {
    fn outlives_the_process(&self) -> bool {
        false
    }
}

/// The in-memory [`AccountDirectory`].
#[derive(Debug, Clone, Default)]
pub struct MemoryDirectory {
    records: Arc<HashMap<AccountNumber, DirectoryRecord>>,
}

impl MemoryDirectory {
    /// A directory of `records`.
    #[must_use]
    pub fn new(records: impl IntoIterator<Item = DirectoryRecord>) -> Self {
        Self {
            records: Arc::new(records.into_iter().map(|r| (r.account_number, r)).collect()),
        }
    }

    #[cfg(feature = "directory-csv")]
    #[cfg_attr(docsrs, doc(cfg(feature = "directory-csv")))]
    /// A directory from CSV text (see [`crate::parse_directory_csv`]).
    ///
    /// # Errors
    /// [`crate::DirectoryCsvError`] listing every bad row.
    pub fn from_csv(text: &str) -> Result<Self, crate::DirectoryCsvError> {
        Ok(Self::new(crate::parse_directory_csv(text)?))
    }

    /// How many accounts the directory holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the directory is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[async_trait]
impl AccountDirectory for MemoryDirectory {
    async fn lookup(&self, account: &AccountNumber) -> Result<Option<DirectoryRecord>, StoreError> {
        Ok(self.records.get(account).cloned())
    }
}

/// A [`Mailer`] that keeps every letter instead of sending it, and can be told to fail.
#[derive(Debug, Clone, Default)]
pub struct RecordingMailer {
    letters: Arc<Mutex<Vec<Letter>>>,
    failing: Arc<std::sync::atomic::AtomicBool>,
    refusing: Arc<std::sync::atomic::AtomicBool>,
}

impl RecordingMailer {
    /// A mailer that accepts every letter.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A mailer that refuses every letter with a transient error.
    #[must_use]
    pub fn failing() -> Self {
        let mailer = Self::default();
        mailer.set_failing(true);
        mailer
    }

    /// Switches failing on or off.
    pub fn set_failing(&self, failing: bool) {
        self.failing
            .store(failing, std::sync::atomic::Ordering::SeqCst);
    }

    /// Switches refusing on or off: every letter then fails with a permanent error, as a
    /// server's "550 no such mailbox" does.
    pub fn set_refusing(&self, refusing: bool) {
        self.refusing
            .store(refusing, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every letter accepted so far, oldest first.
    #[must_use]
    pub fn letters(&self) -> Vec<Letter> {
        self.letters.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The latest accepted letter of `kind` to `to`.
    #[must_use]
    pub fn last(&self, to: &Email, kind: LetterKind) -> Option<Letter> {
        self.letters()
            .into_iter()
            .rev()
            .find(|l| l.to == *to && l.content.kind() == kind)
    }
}

#[async_trait]
impl Mailer for RecordingMailer {
    async fn send(&self, _id: &crate::LetterId, letter: &Letter) -> Result<(), MailError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(MailError::retryable("recording mailer set to fail"));
        }
        if self.refusing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(MailError::permanent(
                "550 no such mailbox (recording mailer)",
            ));
        }
        self.letters
            .lock()
            .map_err(|_| MailError::retryable("recording mailer lock poisoned"))?
            .push(letter.clone());
        Ok(())
    }
}

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub use reading::{link_token, mailed_password, register_by_mail};

/// Reading letters the way a resident does, for tests, benches and demos.
#[cfg(feature = "testing")]
mod reading {
    use secrecy::{ExposeSecret, SecretString};

    use super::RecordingMailer;
    use crate::{
        errors::Problem,
        journeys::RegistrationForm,
        letters::{Letter, LetterContent, LetterKind},
        AuthService, Email, Error, RequestContext,
    };

    /// The token in a letter's link (`…?token=…`), as a test reading the letter would see it.
    #[must_use]
    pub fn link_token(letter: &Letter) -> Option<String> {
        let link = match &letter.content {
            LetterContent::ConfirmEmail { link }
            | LetterContent::RecoverPassword { link }
            | LetterContent::ConfirmEmailChange { link }
            | LetterContent::EmailChangeRequested { link } => link,
            LetterContent::Credentials { .. }
            | LetterContent::PasswordChanged
            | LetterContent::CabinetClosed
            | LetterContent::AccountUnlinked { .. } => return None,
        };
        link.expose_secret()
            .split_once("token=")
            .map(|(_, token)| token.to_owned())
    }

    /// The password a credentials letter carries, read from its rendered text part the way a
    /// resident would read it (the `Пароль:` / `Password:` line).
    #[must_use]
    pub fn mailed_password(letter: &Letter) -> Option<SecretString> {
        let rendered = letter.render();
        rendered.text().lines().find_map(|line| {
            line.strip_prefix("Пароль: ")
                .or_else(|| line.strip_prefix("Password: "))
                .map(|p| SecretString::from(p.to_owned()))
        })
    }

    /// Journeys 1–3 for a new cabinet, done the way a resident does them: register, follow the
    /// confirmation letter's link, activate with `premises`, read the password from the
    /// credentials letter. `mailer` must be the service's mailer. For tests, benches and demos.
    ///
    /// # Errors
    /// The first failing step's error; [`Problem::InvalidLink`] if a letter the next step
    /// needs did not arrive.
    pub async fn register_by_mail(
        service: &AuthService,
        mailer: &RecordingMailer,
        form: &RegistrationForm,
        premises: &str,
        context: &RequestContext,
    ) -> Result<SecretString, Error> {
        service.register(form, context).await?;
        let to: Email = form.email.parse().map_err(Problem::Email)?;
        let token = mailer
            .last(&to, LetterKind::ConfirmEmail)
            .as_ref()
            .and_then(link_token)
            .ok_or(Problem::InvalidLink)?;
        let activation = service.confirm_email(&token).await?;
        service
            .activate(activation.expose(), premises, context)
            .await?;
        mailer
            .last(&to, LetterKind::Credentials)
            .as_ref()
            .and_then(mailed_password)
            .ok_or_else(|| Problem::InvalidLink.into())
    }
}
