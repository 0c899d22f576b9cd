//! In-memory adapters: the store and directory of tests and of the embedded default, and a
//! recording mailer. Thread-safe; every store call is atomic under one lock.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use crate::{
    clock::Timestamp,
    letters::{Letter, LetterContent, LetterKind},
    ports::{
        AccountDirectory, AttemptPolicy, BeginRegistration, CommitOutcome, DirectoryRecord,
        FailedAttempt, Grant, MailError, Mailer, NewRecovery, NewRegistration, NewSession,
        PendingRegistration, RegistrationKind, RegistrationStage, SelectAccount, SessionExpiry,
        SessionState, StageOutcome, Store, StoreError, ThrottleDecision, ThrottleKey,
        ThrottlePolicy,
    },
    secret::{PasswordHash, TokenHash},
    AccountNumber, AuthService, Email, Error, Problem, RegistrationForm, RequestContext,
};

#[derive(Debug, Clone)]
struct Cabinet {
    password_hash: PasswordHash,
    accounts: Vec<AccountNumber>,
}

#[derive(Debug, Clone)]
struct Staged {
    hash: PasswordHash,
    until: Timestamp,
}

#[derive(Debug, Clone)]
struct Pending {
    record: PendingRegistration,
    token: TokenHash,
    letter_sent_at: Timestamp,
    staged: Option<Staged>,
}

#[derive(Debug, Clone)]
struct Recovery {
    email: Email,
    expires_at: Timestamp,
    staged: Option<Staged>,
}

#[derive(Debug, Clone)]
struct Session {
    email: Email,
    active_account: Option<AccountNumber>,
    created_at: Timestamp,
    last_seen: Timestamp,
}

#[derive(Debug, Clone, Copy)]
struct Throttle {
    window_start: Timestamp,
    count: u32,
    locked_until: Option<Timestamp>,
}

#[derive(Debug, Default)]
struct State {
    cabinets: HashMap<Email, Cabinet>,
    linked: HashMap<AccountNumber, Email>,
    pending: HashMap<AccountNumber, Pending>,
    recoveries: HashMap<TokenHash, Recovery>,
    sessions: HashMap<TokenHash, Session>,
    throttles: HashMap<ThrottleKey, Throttle>,
}

impl State {
    fn pending_by_token(
        &mut self,
        token: &TokenHash,
        stage: RegistrationStage,
    ) -> Option<&mut Pending> {
        self.pending
            .values_mut()
            .find(|p| p.token == *token && p.record.stage == stage)
    }

    fn live_pending(
        &mut self,
        token: &TokenHash,
        stage: RegistrationStage,
        now: Timestamp,
    ) -> Option<&mut Pending> {
        self.pending_by_token(token, stage)
            .filter(|p| p.record.expires_at > now)
    }

    fn live_session(
        &mut self,
        token: &TokenHash,
        now: Timestamp,
        expiry: &SessionExpiry,
    ) -> Option<&mut Session> {
        let alive = self.sessions.get(token).is_some_and(|s| {
            now < s.created_at.plus(expiry.absolute)
                && now < s.last_seen.plus(expiry.idle)
                && self.cabinets.contains_key(&s.email)
        });
        if !alive {
            self.sessions.remove(token);
            return None;
        }
        let session = self.sessions.get_mut(token)?;
        session.last_seen = now;
        Some(session)
    }

    fn session_state(&self, session: &Session) -> SessionState {
        SessionState {
            email: session.email.clone(),
            active_account: session.active_account,
            accounts: self
                .cabinets
                .get(&session.email)
                .map(|c| c.accounts.clone())
                .unwrap_or_default(),
        }
    }

    fn end_sessions_of(&mut self, email: &Email) {
        self.sessions.retain(|_, s| s.email != *email);
    }
}

/// The in-memory [`Store`].
///
/// ```
/// use resident_auth::memory::MemoryStore;
/// let store = MemoryStore::new();
/// # let _ = store;
/// ```
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

    fn lock(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        self.state
            .lock()
            .map_err(|_| StoreError::generic("memory store lock poisoned"))
    }
}

fn stage(
    slot: &mut Option<Staged>,
    hash: &PasswordHash,
    now: Timestamp,
    lease: Duration,
) -> Option<Timestamp> {
    if let Some(existing) = slot.as_ref().filter(|s| s.until > now) {
        return Some(existing.until);
    }
    *slot = Some(Staged {
        hash: hash.clone(),
        until: now.plus(lease),
    });
    None
}

fn staged_is(slot: &Option<Staged>, hash: &PasswordHash) -> bool {
    slot.as_ref().is_some_and(|s| s.hash == *hash)
}

#[async_trait]
impl Store for MemoryStore {
    async fn begin_registration(
        &self,
        registration: &NewRegistration,
        now: Timestamp,
    ) -> Result<BeginRegistration, StoreError> {
        let mut state = self.lock()?;
        let new_cabinet = registration.kind == RegistrationKind::NewCabinet;
        if state.linked.contains_key(&registration.account_number)
            || (new_cabinet && state.cabinets.contains_key(&registration.email))
        {
            return Ok(BeginRegistration::AlreadyRegistered);
        }
        let conflicts = |p: &Pending| {
            p.record.account_number == registration.account_number
                || (new_cabinet
                    && p.record.kind == RegistrationKind::NewCabinet
                    && p.record.email == registration.email)
        };
        let blocked_until = state
            .pending
            .values()
            .filter(|p| conflicts(p))
            .map(|p| p.letter_sent_at.plus(registration.resend_interval))
            .filter(|until| *until > now)
            .max();
        if let Some(retry_at) = blocked_until {
            return Ok(BeginRegistration::Throttled { retry_at });
        }
        state.pending.retain(|_, p| !conflicts(p));
        state.pending.insert(
            registration.account_number,
            Pending {
                record: PendingRegistration {
                    email: registration.email.clone(),
                    account_number: registration.account_number,
                    kind: registration.kind,
                    stage: RegistrationStage::AwaitingConfirmation,
                    expires_at: registration.expires_at,
                    failed_attempts: 0,
                    locked_until: None,
                },
                token: registration.confirmation,
                letter_sent_at: now,
                staged: None,
            },
        );
        Ok(BeginRegistration::Started)
    }

    async fn abandon_registration(&self, confirmation: &TokenHash) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        state.pending.retain(|_, p| {
            !(p.token == *confirmation && p.record.stage == RegistrationStage::AwaitingConfirmation)
        });
        Ok(())
    }

    async fn confirm_email(
        &self,
        confirmation: &TokenHash,
        activation: &TokenHash,
        activation_expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Option<PendingRegistration>, StoreError> {
        let mut state = self.lock()?;
        let Some(pending) =
            state.live_pending(confirmation, RegistrationStage::AwaitingConfirmation, now)
        else {
            return Ok(None);
        };
        pending.token = *activation;
        pending.record.stage = RegistrationStage::AwaitingActivation;
        pending.record.expires_at = activation_expires_at;
        Ok(Some(pending.record.clone()))
    }

    async fn pending_activation(
        &self,
        activation: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<PendingRegistration>, StoreError> {
        let mut state = self.lock()?;
        Ok(state
            .live_pending(activation, RegistrationStage::AwaitingActivation, now)
            .map(|p| p.record.clone()))
    }

    async fn record_failed_activation(
        &self,
        activation: &TokenHash,
        now: Timestamp,
        policy: &AttemptPolicy,
    ) -> Result<Option<FailedAttempt>, StoreError> {
        let mut state = self.lock()?;
        let Some(pending) =
            state.live_pending(activation, RegistrationStage::AwaitingActivation, now)
        else {
            return Ok(None);
        };
        let record = &mut pending.record;
        match record.locked_until {
            Some(until) if until > now => {
                return Ok(Some(FailedAttempt {
                    attempts_left: 0,
                    locked_until: Some(until),
                }))
            }
            Some(_) => {
                record.locked_until = None;
                record.failed_attempts = 0;
            }
            None => {}
        }
        record.failed_attempts += 1;
        if record.failed_attempts >= policy.max_attempts {
            let until = now.plus(policy.lockout);
            record.locked_until = Some(until);
            record.failed_attempts = 0;
            return Ok(Some(FailedAttempt {
                attempts_left: 0,
                locked_until: Some(until),
            }));
        }
        Ok(Some(FailedAttempt {
            attempts_left: policy.max_attempts - record.failed_attempts,
            locked_until: None,
        }))
    }

    async fn stage_credentials(
        &self,
        grant: &Grant,
        hash: &PasswordHash,
        now: Timestamp,
        lease: Duration,
    ) -> Result<StageOutcome, StoreError> {
        let mut guard = self.lock()?;
        // Reborrow through the guard once so the borrow checker sees disjoint fields.
        let state = &mut *guard;
        let (slot, email) = match grant {
            Grant::Activation(token) => {
                match state.live_pending(token, RegistrationStage::AwaitingActivation, now) {
                    Some(p) if p.record.locked_until.is_none_or(|until| until <= now) => {
                        (&mut p.staged, p.record.email.clone())
                    }
                    _ => return Ok(StageOutcome::Gone),
                }
            }
            Grant::Recovery(token) => {
                let cabinets = &state.cabinets;
                match state.recoveries.get_mut(token) {
                    Some(r) if r.expires_at > now && cabinets.contains_key(&r.email) => {
                        (&mut r.staged, r.email.clone())
                    }
                    _ => return Ok(StageOutcome::Gone),
                }
            }
        };
        Ok(match stage(slot, hash, now, lease) {
            Some(retry_at) => StageOutcome::Busy { retry_at },
            None => StageOutcome::Staged { email },
        })
    }

    async fn unstage_credentials(
        &self,
        grant: &Grant,
        hash: &PasswordHash,
    ) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        let slot = match grant {
            Grant::Activation(token) => state
                .pending_by_token(token, RegistrationStage::AwaitingActivation)
                .map(|p| &mut p.staged),
            Grant::Recovery(token) => state.recoveries.get_mut(token).map(|r| &mut r.staged),
        };
        if let Some(slot) = slot {
            if staged_is(slot, hash) {
                *slot = None;
            }
        }
        Ok(())
    }

    async fn commit_credentials(
        &self,
        grant: &Grant,
        hash: &PasswordHash,
        _now: Timestamp,
    ) -> Result<CommitOutcome, StoreError> {
        let mut state = self.lock()?;
        let email = match grant {
            Grant::Activation(token) => {
                let Some(pending) = state
                    .pending_by_token(token, RegistrationStage::AwaitingActivation)
                    .filter(|p| staged_is(&p.staged, hash))
                    .map(|p| p.record.clone())
                else {
                    return Ok(CommitOutcome::Gone);
                };
                state.pending.remove(&pending.account_number);
                let email = pending.email;
                if state.linked.contains_key(&pending.account_number) {
                    return Ok(CommitOutcome::AlreadyRegistered);
                }
                match (pending.kind, state.cabinets.get_mut(&email)) {
                    (RegistrationKind::NewCabinet, Some(_)) => {
                        return Ok(CommitOutcome::AlreadyRegistered)
                    }
                    (RegistrationKind::NewCabinet, None) => {
                        state.cabinets.insert(
                            email.clone(),
                            Cabinet {
                                password_hash: hash.clone(),
                                accounts: vec![pending.account_number],
                            },
                        );
                    }
                    (RegistrationKind::AddAccount, Some(cabinet)) => {
                        cabinet.password_hash = hash.clone();
                        cabinet.accounts.push(pending.account_number);
                    }
                    (RegistrationKind::AddAccount, None) => return Ok(CommitOutcome::Gone),
                }
                state.linked.insert(pending.account_number, email.clone());
                email
            }
            Grant::Recovery(token) => {
                let Some(recovery) = state
                    .recoveries
                    .get(token)
                    .filter(|r| staged_is(&r.staged, hash))
                    .cloned()
                else {
                    return Ok(CommitOutcome::Gone);
                };
                state.recoveries.remove(token);
                let Some(cabinet) = state.cabinets.get_mut(&recovery.email) else {
                    return Ok(CommitOutcome::Gone);
                };
                cabinet.password_hash = hash.clone();
                recovery.email
            }
        };
        state.end_sessions_of(&email);
        Ok(CommitOutcome::Committed { email })
    }

    async fn begin_recovery(
        &self,
        recovery: &NewRecovery,
        _now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock()?;
        if !state.cabinets.contains_key(&recovery.email) {
            return Ok(false);
        }
        state.recoveries.retain(|_, r| r.email != recovery.email);
        state.recoveries.insert(
            recovery.token,
            Recovery {
                email: recovery.email.clone(),
                expires_at: recovery.expires_at,
                staged: None,
            },
        );
        Ok(true)
    }

    async fn abandon_recovery(&self, token: &TokenHash) -> Result<(), StoreError> {
        self.lock()?.recoveries.remove(token);
        Ok(())
    }

    async fn password_hash(&self, email: &Email) -> Result<Option<PasswordHash>, StoreError> {
        Ok(self
            .lock()?
            .cabinets
            .get(email)
            .map(|c| c.password_hash.clone()))
    }

    async fn upgrade_password_hash(
        &self,
        email: &Email,
        old: &PasswordHash,
        new: &PasswordHash,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock()?;
        match state.cabinets.get_mut(email) {
            Some(cabinet) if cabinet.password_hash == *old => {
                cabinet.password_hash = new.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn open_session(
        &self,
        session: &NewSession,
        clear: &[ThrottleKey],
    ) -> Result<Option<SessionState>, StoreError> {
        let mut state = self.lock()?;
        let Some(cabinet) = state.cabinets.get(&session.email) else {
            return Ok(None);
        };
        let record = Session {
            email: session.email.clone(),
            active_account: cabinet.accounts.first().copied(),
            created_at: session.created_at,
            last_seen: session.created_at,
        };
        let view = state.session_state(&record);
        state.sessions.insert(session.token, record);
        for key in clear {
            state.throttles.remove(key);
        }
        Ok(Some(view))
    }

    async fn session(
        &self,
        token: &TokenHash,
        now: Timestamp,
        expiry: &SessionExpiry,
    ) -> Result<Option<SessionState>, StoreError> {
        let mut state = self.lock()?;
        let Some(session) = state.live_session(token, now, expiry).cloned() else {
            return Ok(None);
        };
        Ok(Some(state.session_state(&session)))
    }

    async fn select_account(
        &self,
        token: &TokenHash,
        account: &AccountNumber,
        now: Timestamp,
        expiry: &SessionExpiry,
    ) -> Result<SelectAccount, StoreError> {
        let mut state = self.lock()?;
        let Some(email) = state
            .live_session(token, now, expiry)
            .map(|s| s.email.clone())
        else {
            return Ok(SelectAccount::NoSession);
        };
        let linked = state
            .cabinets
            .get(&email)
            .is_some_and(|c| c.accounts.contains(account));
        if !linked {
            return Ok(SelectAccount::NotLinked);
        }
        if let Some(session) = state.sessions.get_mut(token) {
            session.active_account = Some(*account);
        }
        Ok(SelectAccount::Selected)
    }

    async fn end_session(&self, token: &TokenHash) -> Result<(), StoreError> {
        self.lock()?.sessions.remove(token);
        Ok(())
    }

    async fn throttle_status(
        &self,
        keys: &[ThrottleKey],
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        let state = self.lock()?;
        Ok(keys
            .iter()
            .filter_map(|k| state.throttles.get(k).and_then(|t| t.locked_until))
            .filter(|until| *until > now)
            .max())
    }

    async fn purge_expired(
        &self,
        now: Timestamp,
        expiry: &SessionExpiry,
        throttle_idle: Duration,
    ) -> Result<u64, StoreError> {
        let mut state = self.lock()?;
        let before = state.sessions.len()
            + state.pending.len()
            + state.recoveries.len()
            + state.throttles.len();
        state.sessions.retain(|_, s| {
            now < s.created_at.plus(expiry.absolute) && now < s.last_seen.plus(expiry.idle)
        });
        state.pending.retain(|_, p| p.record.expires_at > now);
        state.recoveries.retain(|_, r| r.expires_at > now);
        state.throttles.retain(|_, t| {
            t.locked_until.is_some_and(|until| until > now)
                || t.window_start.plus(throttle_idle) > now
        });
        let after = state.sessions.len()
            + state.pending.len()
            + state.recoveries.len()
            + state.throttles.len();
        Ok(u64::try_from(before - after).unwrap_or(u64::MAX))
    }

    async fn count_event(
        &self,
        key: &ThrottleKey,
        now: Timestamp,
        policy: &ThrottlePolicy,
    ) -> Result<ThrottleDecision, StoreError> {
        let mut state = self.lock()?;
        let throttle = state.throttles.entry(key.clone()).or_insert(Throttle {
            window_start: now,
            count: 0,
            locked_until: None,
        });
        if let Some(until) = throttle.locked_until.filter(|until| *until > now) {
            return Ok(ThrottleDecision::Limited { retry_at: until });
        }
        if throttle.locked_until.is_some() || now >= throttle.window_start.plus(policy.window) {
            *throttle = Throttle {
                window_start: now,
                count: 0,
                locked_until: None,
            };
        }
        throttle.count += 1;
        if throttle.count >= policy.max_events {
            throttle.locked_until = Some(now.plus(policy.lockout));
        }
        Ok(ThrottleDecision::Allowed)
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
    async fn send(&self, letter: &Letter) -> Result<(), MailError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(MailError::transient("recording mailer set to fail"));
        }
        self.letters
            .lock()
            .map_err(|_| MailError::transient("recording mailer lock poisoned"))?
            .push(letter.clone());
        Ok(())
    }
}

/// The token in a letter's link (`…?token=…`), as a test reading the letter would see it.
#[must_use]
pub fn link_token(letter: &Letter) -> Option<String> {
    let link = match &letter.content {
        LetterContent::ConfirmEmail { link } | LetterContent::RecoverPassword { link } => link,
        LetterContent::Credentials { .. } => return None,
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
