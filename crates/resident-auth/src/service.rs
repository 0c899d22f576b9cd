//! The account lifecycle service: every step of the guide's journeys.

use std::{sync::Arc, time::Duration};

use secrecy::SecretString;
use serde::Deserialize;

use crate::{
    clock::{Clock, Timestamp},
    error::{Error, Problem},
    hasher::{PasswordHasher, Verification},
    letters::{Letter, LetterContent, Links},
    ports::{
        AccountDirectory, AttemptPolicy, BeginRegistration, CommitOutcome, FailedAttempt, Grant,
        Mailer, NewRecovery, NewRegistration, NewSession, RegistrationKind, SelectAccount,
        SessionExpiry, StageOutcome, Store, ThrottleDecision, ThrottleKey, ThrottlePolicy,
    },
    secret::{generate_password, Token},
    AccountNumber, Email, Locale, Premises, ServedRegions, Surname,
};

/// Every limit and lifetime of the service. [`Default`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Regions whose account numbers may register (default: all).
    pub served_regions: ServedRegions,
    /// Where links in letters point.
    pub links: Links,
    /// Lifetime of a confirmation link (default 24 h).
    pub confirmation_ttl: Duration,
    /// Lifetime of the activation step after confirmation (default 24 h).
    pub activation_ttl: Duration,
    /// Lifetime of a recovery link (default 1 h).
    pub recovery_ttl: Duration,
    /// Least time between two confirmation letters for one email or account (default 60 s).
    pub letter_resend_interval: Duration,
    /// Wrong premises numbers before activation locks, and for how long (5, 15 min).
    pub activation_attempts: AttemptPolicy,
    /// Failed logins per cabinet (5 per 15 min, then 15 min locked).
    pub login_per_cabinet: ThrottlePolicy,
    /// Failed logins per client address (50 per 15 min, then 15 min locked).
    pub login_per_client: ThrottlePolicy,
    /// Recovery requests per email (3 per hour).
    pub recovery_per_email: ThrottlePolicy,
    /// Registration and add-address requests per client address (20 per hour).
    pub registration_per_client: ThrottlePolicy,
    /// Session idle and absolute lifetimes (30 min, 12 h).
    pub session_expiry: SessionExpiry,
    /// How long staged credentials block a concurrent issue while their letter is sent.
    pub credentials_lease: Duration,
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            served_regions: ServedRegions::all(),
            links: Links::default(),
            confirmation_ttl: 24 * HOUR,
            activation_ttl: 24 * HOUR,
            recovery_ttl: HOUR,
            letter_resend_interval: MINUTE,
            activation_attempts: AttemptPolicy {
                max_attempts: 5,
                lockout: 15 * MINUTE,
            },
            login_per_cabinet: ThrottlePolicy {
                max_events: 5,
                window: 15 * MINUTE,
                lockout: 15 * MINUTE,
            },
            login_per_client: ThrottlePolicy {
                max_events: 50,
                window: 15 * MINUTE,
                lockout: 15 * MINUTE,
            },
            recovery_per_email: ThrottlePolicy {
                max_events: 3,
                window: HOUR,
                lockout: HOUR,
            },
            registration_per_client: ThrottlePolicy {
                max_events: 20,
                window: HOUR,
                lockout: HOUR,
            },
            session_expiry: SessionExpiry {
                idle: 30 * MINUTE,
                absolute: 12 * HOUR,
            },
            credentials_lease: MINUTE,
        }
    }
}

/// The adapters the service runs on.
#[derive(Clone)]
pub struct Ports {
    /// Cabinets, registrations, tokens, sessions, throttles.
    pub store: Arc<dyn Store>,
    /// The billing directory.
    pub directory: Arc<dyn AccountDirectory>,
    /// Outgoing mail.
    pub mailer: Arc<dyn Mailer>,
    /// Password hashing, off the async executor.
    pub hasher: Arc<dyn PasswordHasher>,
    /// The current time.
    pub clock: Arc<dyn Clock>,
}

/// Who is asking: the language to answer and write letters in, and the client address
/// (when the host knows it) for per-client throttles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// Language of messages and letters.
    pub locale: Locale,
    /// The client's address, e.g. the remote IP.
    pub client: Option<String>,
}

impl RequestContext {
    /// A context in `locale` with no client address.
    #[must_use]
    pub fn new(locale: Locale) -> Self {
        Self {
            locale,
            client: None,
        }
    }
}

/// The registration form (journey 1), as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RegistrationForm {
    /// Surname, without initials.
    pub surname: String,
    /// The 13-digit personal account number.
    pub account_number: String,
    /// The email that will be the login.
    pub email: String,
}

/// The add-address form (journey 7), as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct AddressForm {
    /// Surname, without initials.
    pub surname: String,
    /// The 13-digit personal account number to add.
    pub account_number: String,
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    /// The session token for the client to keep (cookie or bearer).
    pub session_token: Token,
    /// The cabinet.
    pub email: Email,
    /// The account the session starts on.
    pub active_account: Option<AccountNumber>,
}

/// Who a session token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The cabinet.
    pub email: Email,
    /// The selected account.
    pub active_account: Option<AccountNumber>,
    /// All linked accounts.
    pub accounts: Vec<AccountNumber>,
}

/// One account of a cabinet as the cabinet page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedAccount {
    /// The personal account number.
    pub account_number: AccountNumber,
    /// The address from the directory (empty if the directory no longer has it).
    pub address: String,
    /// The premises from the directory.
    pub premises: Option<Premises>,
}

/// The cabinet behind a session, with addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CabinetView {
    /// The cabinet's email.
    pub email: Email,
    /// Linked accounts, in the order they were added.
    pub accounts: Vec<LinkedAccount>,
    /// The selected account.
    pub active_account: Option<AccountNumber>,
}

/// The account lifecycle service. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct AuthService {
    ports: Ports,
    config: Arc<AuthConfig>,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Collects field problems so that every one is reported at once.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn take<T, E: Into<Problem>>(&mut self, result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.0.push(e.into())).ok()
    }

    fn finish(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Rejected(self.0))
        }
    }
}

impl AuthService {
    /// A service over `ports` with `config`.
    #[must_use]
    pub fn new(ports: Ports, config: AuthConfig) -> Self {
        Self {
            ports,
            config: Arc::new(config),
        }
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    fn now(&self) -> Timestamp {
        self.ports.clock.now()
    }

    /// Journey 1: registration. Checks every field (all problems together), the region,
    /// the directory (account and surname, one answer for both), and that neither the
    /// account nor the email is registered; then mails "Подтверждение e-mail".
    ///
    /// # Errors
    /// [`Error::Rejected`] with the problems; [`Error::Unavailable`] if storage or mail
    /// failed (nothing is left that blocks a retry).
    pub async fn register(
        &self,
        form: &RegistrationForm,
        context: &RequestContext,
    ) -> Result<(), Error> {
        let mut problems = Problems::default();
        let surname = problems.take(form.surname.parse::<Surname>());
        let account = problems.take(form.account_number.parse::<AccountNumber>());
        let email = problems.take(form.email.parse::<Email>());
        if let Some(account) = &account {
            problems.take(self.config.served_regions.check(account));
        }
        problems.finish()?;
        match (surname, account, email) {
            (Some(surname), Some(account), Some(email)) => {
                self.start_registration(
                    &surname,
                    account,
                    email,
                    RegistrationKind::NewCabinet,
                    context,
                )
                .await
            }
            _ => Err(Error::Rejected(Vec::new())),
        }
    }

    /// Journey 7: adds an account to the cabinet of a live session: the registration
    /// checks, then "Подтверждение e-mail" to the cabinet's email.
    ///
    /// # Errors
    /// As [`register`](Self::register), plus [`Problem::SessionInvalid`].
    pub async fn add_address(
        &self,
        session_token: &str,
        form: &AddressForm,
        context: &RequestContext,
    ) -> Result<(), Error> {
        let session = self.authenticate(session_token).await?;
        let mut problems = Problems::default();
        let surname = problems.take(form.surname.parse::<Surname>());
        let account = problems.take(form.account_number.parse::<AccountNumber>());
        if let Some(account) = &account {
            problems.take(self.config.served_regions.check(account));
        }
        problems.finish()?;
        match (surname, account) {
            (Some(surname), Some(account)) => {
                self.start_registration(
                    &surname,
                    account,
                    session.email,
                    RegistrationKind::AddAccount,
                    context,
                )
                .await
            }
            _ => Err(Error::Rejected(Vec::new())),
        }
    }

    async fn start_registration(
        &self,
        surname: &Surname,
        account: AccountNumber,
        email: Email,
        kind: RegistrationKind,
        context: &RequestContext,
    ) -> Result<(), Error> {
        let store = &self.ports.store;
        let now = self.now();
        if let Some(client) = &context.client {
            let key = ThrottleKey::registration_client(client);
            self.count(&key, now, &self.config.registration_per_client)
                .await?;
        }
        let record = self.ports.directory.lookup(&account).await?;
        let known = record.is_some_and(|r| {
            r.surnames.is_empty() || r.surnames.iter().any(|s| surname.matches(s))
        });
        if !known {
            return Err(Problem::AccountNotFound.into());
        }
        let token = Token::generate();
        let registration = NewRegistration {
            email: email.clone(),
            account_number: account,
            kind,
            confirmation: token.hash(),
            expires_at: now.plus(self.config.confirmation_ttl),
            resend_interval: self.config.letter_resend_interval,
        };
        match store.begin_registration(&registration, now).await? {
            BeginRegistration::Started => {}
            BeginRegistration::AlreadyRegistered => return Err(Problem::AlreadyRegistered.into()),
            BeginRegistration::Throttled { retry_at } => {
                return Err(Problem::TooManyRequests {
                    retry_after: now.until(retry_at),
                }
                .into())
            }
        }
        let letter = Letter {
            to: email,
            locale: context.locale,
            content: LetterContent::ConfirmEmail {
                link: self.config.links.confirmation(&token),
            },
        };
        if let Err(error) = self.ports.mailer.send(&letter).await {
            // The letter stamp would hold a retry back for the resend interval; the user
            // never got the link, so the registration is dropped. If this also fails, the
            // stamp expires by itself.
            let _ = store.abandon_registration(&token.hash()).await;
            return Err(error.into());
        }
        Ok(())
    }

    /// Journey 2: the confirmation link. Returns the activation token that unlocks the
    /// next step; only the link's holder gets it.
    ///
    /// # Errors
    /// [`Problem::InvalidLink`] for an unknown, used or expired token.
    pub async fn confirm_email(&self, confirmation_token: &str) -> Result<Token, Error> {
        let token = Token::from_user(confirmation_token).ok_or(Problem::InvalidLink)?;
        let activation = Token::generate();
        let now = self.now();
        let expires_at = now.plus(self.config.activation_ttl);
        self.ports
            .store
            .confirm_email(&token.hash(), &activation.hash(), expires_at, now)
            .await?
            .ok_or(Problem::InvalidLink)?;
        Ok(activation)
    }

    /// Journey 3 (and 7): activation with the premises number. Right: a new password is
    /// generated, mailed in "Данные для входа", and only then made effective. Returns the
    /// cabinet's email; never the password.
    ///
    /// # Errors
    /// [`Problem::WrongPremises`] with attempts left, [`Problem::ActivationLocked`],
    /// [`Problem::InvalidLink`], a premises syntax problem, or [`Error::Unavailable`].
    pub async fn activate(
        &self,
        activation_token: &str,
        premises: &str,
        context: &RequestContext,
    ) -> Result<Email, Error> {
        let token = Token::from_user(activation_token).ok_or(Problem::InvalidLink)?;
        let premises: Premises = premises.parse().map_err(Problem::from)?;
        let hash = token.hash();
        let now = self.now();
        let store = &self.ports.store;
        let pending = store
            .pending_activation(&hash, now)
            .await?
            .ok_or(Problem::InvalidLink)?;
        if let Some(until) = pending.locked_until.filter(|until| *until > now) {
            return Err(Problem::ActivationLocked {
                retry_after: now.until(until),
            }
            .into());
        }
        let record = self.ports.directory.lookup(&pending.account_number).await?;
        if !record.is_some_and(|r| r.premises == premises) {
            let attempt = store
                .record_failed_activation(&hash, now, &self.config.activation_attempts)
                .await?;
            return Err(match attempt {
                None => Problem::InvalidLink,
                Some(FailedAttempt {
                    locked_until: Some(until),
                    ..
                }) => Problem::ActivationLocked {
                    retry_after: now.until(until),
                },
                Some(FailedAttempt { attempts_left, .. }) => {
                    Problem::WrongPremises { attempts_left }
                }
            }
            .into());
        }
        self.issue_credentials(Grant::Activation(hash), context.locale)
            .await
    }

    /// Generates a password, stages its hash, mails it, and only then commits it, so that
    /// no cabinet ends up with a password nobody received.
    async fn issue_credentials(&self, grant: Grant, locale: Locale) -> Result<Email, Error> {
        let store = &self.ports.store;
        let password = generate_password();
        let hash = self.ports.hasher.hash(password.clone()).await?;
        let email = match store
            .stage_credentials(&grant, &hash, self.now(), self.config.credentials_lease)
            .await?
        {
            StageOutcome::Staged { email } => email,
            StageOutcome::Busy { retry_at } => {
                return Err(Problem::TooManyRequests {
                    retry_after: self.now().until(retry_at),
                }
                .into())
            }
            StageOutcome::Gone => return Err(Problem::InvalidLink.into()),
        };
        let letter = Letter {
            to: email.clone(),
            locale,
            content: LetterContent::Credentials {
                login: email,
                password,
            },
        };
        if let Err(error) = self.ports.mailer.send(&letter).await {
            let _ = store.unstage_credentials(&grant, &hash).await;
            return Err(error.into());
        }
        let committed = match store.commit_credentials(&grant, &hash, self.now()).await {
            Ok(outcome) => outcome,
            Err(error) => {
                // The letter went out but its password never took effect; release the
                // stage so the retry (with a fresh password and letter) need not wait.
                let _ = store.unstage_credentials(&grant, &hash).await;
                return Err(error.into());
            }
        };
        match committed {
            CommitOutcome::Committed { email } => Ok(email),
            CommitOutcome::Gone => Err(Problem::InvalidLink.into()),
            CommitOutcome::AlreadyRegistered => Err(Problem::AlreadyRegistered.into()),
        }
    }

    /// Journey 4, step 1: the email alone, syntax only. Never reveals whether it is
    /// registered. Returns the canonical form.
    ///
    /// # Errors
    /// [`Problem::IncorrectData`] ("Некорректные данные").
    pub fn identify(&self, email: &str) -> Result<Email, Error> {
        email
            .parse::<Email>()
            .map_err(|_| Problem::IncorrectData.into())
    }

    /// Journey 4, step 2: email and password. A wrong password and an unknown email get
    /// the same answer after the same argon2 work and the same store calls.
    ///
    /// # Errors
    /// [`Problem::InvalidCredentials`], [`Problem::LoginThrottled`],
    /// [`Problem::IncorrectData`], or [`Error::Unavailable`].
    pub async fn login(
        &self,
        email: &str,
        password: SecretString,
        context: &RequestContext,
    ) -> Result<LoggedIn, Error> {
        let email = self.identify(email)?;
        let store = &self.ports.store;
        let cabinet_key = ThrottleKey::login_cabinet(&email);
        let mut keys = vec![(cabinet_key.clone(), self.config.login_per_cabinet)];
        if let Some(client) = &context.client {
            keys.push((
                ThrottleKey::login_client(client),
                self.config.login_per_client,
            ));
        }
        let now = self.now();
        let key_names: Vec<ThrottleKey> = keys.iter().map(|(k, _)| k.clone()).collect();
        if let Some(until) = store.throttle_status(&key_names, now).await? {
            return Err(Problem::LoginThrottled {
                retry_after: now.until(until),
            }
            .into());
        }
        let stored = store.password_hash(&email).await?;
        match self
            .ports
            .hasher
            .verify(password.clone(), stored.clone())
            .await?
        {
            Verification::Mismatch => {
                for (key, policy) in &keys {
                    store.count_event(key, now, policy).await?;
                }
                Err(Problem::InvalidCredentials.into())
            }
            Verification::Match { rehash } => {
                if let (true, Some(old)) = (rehash, &stored) {
                    // Best effort: a failed upgrade must not fail a correct login.
                    if let Ok(new) = self.ports.hasher.hash(password).await {
                        let _ = store.upgrade_password_hash(&email, old, &new).await;
                    }
                }
                let session_token = Token::generate();
                let session = NewSession {
                    token: session_token.hash(),
                    email: email.clone(),
                    created_at: now,
                };
                let opened = store
                    .open_session(&session, std::slice::from_ref(&cabinet_key))
                    .await?
                    .ok_or(Problem::InvalidCredentials)?;
                Ok(LoggedIn {
                    session_token,
                    email,
                    active_account: opened.active_account,
                })
            }
        }
    }

    /// Journey 5: who a session token belongs to. Touches the session (idle expiry).
    ///
    /// # Errors
    /// [`Problem::SessionInvalid`] for an unknown or expired session.
    pub async fn authenticate(&self, session_token: &str) -> Result<Authenticated, Error> {
        let token = Token::from_user(session_token).ok_or(Problem::SessionInvalid)?;
        let state = self
            .ports
            .store
            .session(&token.hash(), self.now(), &self.config.session_expiry)
            .await?
            .ok_or(Problem::SessionInvalid)?;
        Ok(Authenticated {
            email: state.email,
            active_account: state.active_account,
            accounts: state.accounts,
        })
    }

    /// Journey 5: the cabinet with the address of every linked account.
    ///
    /// # Errors
    /// [`Problem::SessionInvalid`], or [`Error::Unavailable`].
    pub async fn cabinet(&self, session_token: &str) -> Result<CabinetView, Error> {
        let session = self.authenticate(session_token).await?;
        let mut accounts = Vec::with_capacity(session.accounts.len());
        for account_number in session.accounts {
            let record = self.ports.directory.lookup(&account_number).await?;
            accounts.push(LinkedAccount {
                account_number,
                address: record
                    .as_ref()
                    .map(|r| r.address.clone())
                    .unwrap_or_default(),
                premises: record.map(|r| r.premises),
            });
        }
        Ok(CabinetView {
            email: session.email,
            accounts,
            active_account: session.active_account,
        })
    }

    /// Journey 5: switches the session to another linked account.
    ///
    /// # Errors
    /// [`Problem::SessionInvalid`], [`Problem::AccountNotLinked`], an account number
    /// syntax problem, or [`Error::Unavailable`].
    pub async fn select_account(
        &self,
        session_token: &str,
        account_number: &str,
    ) -> Result<(), Error> {
        let token = Token::from_user(session_token).ok_or(Problem::SessionInvalid)?;
        let account: AccountNumber = account_number.parse().map_err(Problem::from)?;
        match self
            .ports
            .store
            .select_account(
                &token.hash(),
                &account,
                self.now(),
                &self.config.session_expiry,
            )
            .await?
        {
            SelectAccount::Selected => Ok(()),
            SelectAccount::NotLinked => Err(Problem::AccountNotLinked.into()),
            SelectAccount::NoSession => Err(Problem::SessionInvalid.into()),
        }
    }

    /// Journey 5: ends the session.
    ///
    /// # Errors
    /// [`Problem::SessionInvalid`] for a malformed token, or [`Error::Unavailable`].
    pub async fn logout(&self, session_token: &str) -> Result<(), Error> {
        let token = Token::from_user(session_token).ok_or(Problem::SessionInvalid)?;
        self.ports.store.end_session(&token.hash()).await?;
        Ok(())
    }

    /// Journey 6, step 1: asks for a recovery letter. The answer is the same whether or
    /// not the email has a cabinet, and the throttle counts unknown emails too.
    ///
    /// # Errors
    /// An email syntax problem, [`Problem::TooManyRequests`], or [`Error::Unavailable`].
    pub async fn request_recovery(
        &self,
        email: &str,
        context: &RequestContext,
    ) -> Result<(), Error> {
        let email: Email = email.parse().map_err(Problem::from)?;
        let now = self.now();
        self.count(
            &ThrottleKey::recovery(&email),
            now,
            &self.config.recovery_per_email,
        )
        .await?;
        let token = Token::generate();
        let recovery = NewRecovery {
            email: email.clone(),
            token: token.hash(),
            expires_at: now.plus(self.config.recovery_ttl),
        };
        if !self.ports.store.begin_recovery(&recovery, now).await? {
            return Ok(());
        }
        let letter = Letter {
            to: email,
            locale: context.locale,
            content: LetterContent::RecoverPassword {
                link: self.config.links.recovery(&token),
            },
        };
        if let Err(error) = self.ports.mailer.send(&letter).await {
            let _ = self.ports.store.abandon_recovery(&token.hash()).await;
            return Err(error.into());
        }
        Ok(())
    }

    /// Journey 6, step 2: the recovery link. Issues a new password by mail ("Данные для
    /// входа"); the old password and every session stop working.
    ///
    /// # Errors
    /// [`Problem::InvalidLink`], or [`Error::Unavailable`].
    pub async fn complete_recovery(
        &self,
        recovery_token: &str,
        context: &RequestContext,
    ) -> Result<Email, Error> {
        let token = Token::from_user(recovery_token).ok_or(Problem::InvalidLink)?;
        self.issue_credentials(Grant::Recovery(token.hash()), context.locale)
            .await
    }

    /// Deletes expired sessions, links and idle throttles from the store; returns how many
    /// records went. Call it periodically (e.g. every few minutes) from one instance.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if the store fails.
    pub async fn purge_expired(&self) -> Result<u64, Error> {
        let config = &self.config;
        let throttle_idle = [
            config.login_per_cabinet,
            config.login_per_client,
            config.recovery_per_email,
            config.registration_per_client,
        ]
        .iter()
        .map(|p| p.window.max(p.lockout))
        .max()
        .unwrap_or_default();
        Ok(self
            .ports
            .store
            .purge_expired(self.now(), &config.session_expiry, throttle_idle)
            .await?)
    }

    async fn count(
        &self,
        key: &ThrottleKey,
        now: Timestamp,
        policy: &ThrottlePolicy,
    ) -> Result<(), Error> {
        match self.ports.store.count_event(key, now, policy).await? {
            ThrottleDecision::Allowed => Ok(()),
            ThrottleDecision::Limited { retry_at } => Err(Problem::TooManyRequests {
                retry_after: now.until(retry_at),
            }
            .into()),
        }
    }
}
