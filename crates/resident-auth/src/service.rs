//! The account lifecycle service: every step of the guide's journeys, and every policy —
//! limits, windows, locks, expiry and the order of steps. The store only keeps records and
//! offers atomic primitives ([`crate::ports`]); what a record means is decided here.

use std::{sync::Arc, time::Duration};

use secrecy::SecretString;
use serde::Deserialize;

pub mod admin;
mod mail;
mod own_data;
mod password_and_sessions;
pub use mail::{DeliveryPolicy, DeliveryReport};
pub use password_and_sessions::SessionView;

use crate::{
    clock::{Clock, Timestamp},
    error::{Error, Problem},
    events::{Event, EventKind, Events, TracingEvents},
    hasher::{CredentialHasher, HashParams, Verification},
    ids::{CabinetId, SessionId},
    letters::{Letter, LetterContent, Links},
    mail_queue::{MailQueueKeys, QueuedLetter},
    ports::{
        AccountDirectory, Cabinet, CabinetKey, CabinetSwap, Count, CounterKey, Expected, Link,
        LinkAdvance, LinkPurpose, Mailer, Session, Store, StoreError, Version, Versioned,
    },
    secret::{generate_password, HashedPassword, Token, TokenHash},
    AccountNumber, Email, Locale, Premises, ServedRegions, Surname,
};

/// At most `max` events in a fixed window of `window`; the event after the `max`-th is
/// refused until the window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Events let through in one window.
    pub max: u32,
    /// The window.
    pub window: Duration,
}

impl Limit {
    /// `max` events per `window`.
    #[must_use]
    pub const fn new(max: u32, window: Duration) -> Self {
        Self { max, window }
    }
}

/// Every limit and lifetime of the service. [`AuthConfig::new`] gives the documented
/// defaults for a portal at a base URL; change fields on the value it returns.
#[derive(Debug, Clone)]
#[non_exhaustive]
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
    /// Letters with a link (confirmation, recovery) per recipient address per day (10),
    /// whatever the journey: nobody can use the portal to flood an address.
    pub letters_per_address_daily: Limit,
    /// Premises numbers tried per personal account, in escalating windows (5 per 15
    /// minutes, 10 per hour, 15 per day: a lock of at most 15 minutes, then up to an hour,
    /// then the rest of the day). Every try is counted before it is evaluated; the try that
    /// uses the last one of a window and is wrong locks activation until that window ends.
    /// The counts belong to the account, not to a registration: registering again, or a
    /// new confirmation letter, restarts none of them.
    pub premises_attempts: Vec<Limit>,
    /// Registrations started per personal account (10 per day), so re-registering
    /// cannot be used to flood an account's resident with letters.
    pub registrations_per_account: Limit,
    /// Logins tried per cabinet from one client (5 per 15 minutes): the hard limit. A
    /// stranger who knows the email locks out only their own client, never the owner's.
    /// A successful login from that client clears it.
    pub login_per_cabinet_and_client: Limit,
    /// Logins tried per cabinet from all clients together (100 per day): the slow cap, so
    /// no more than 100 consecutive failures ever get through (NIST SP 800-63B-4
    /// §3.2.2) however many clients an attacker has. A successful login or a completed
    /// recovery clears it.
    pub login_per_cabinet: Limit,
    /// Logins tried per client address, whatever the cabinet (50 per 15 minutes).
    pub login_per_client: Limit,
    /// Recovery requests per email (3 per hour).
    pub recovery_per_email: Limit,
    /// Registration and add-address requests per client address (20 per hour).
    pub registration_per_client: Limit,
    /// A session unused for this long ends (default 30 minutes).
    pub session_idle: Duration,
    /// A session ends this long after login whatever happens (default 12 hours).
    pub session_absolute: Duration,
    /// A session's last use is written only when the stored one is older than this
    /// (default 1 minute), so most session checks are reads.
    pub session_touch_interval: Duration,
    /// How long a request issuing credentials under a link holds it while the letter is
    /// sent (default 1 minute).
    pub credentials_lease: Duration,
    /// Makes every mailed password temporary (ASVS 5.0 6.4.1): it works for this long and
    /// only until the resident, asked at first login, chooses one. `None` (the default)
    /// follows the guide: the mailed password lasts until changed or recovered.
    pub mailed_password_lifetime: Option<Duration>,
    /// How queued letters are delivered: retries, deadline, claims.
    pub delivery: DeliveryPolicy,
    /// The keys that seal queued letters (default: a random key, right for a queue that
    /// lives in memory and dies with the process; a queue in a database needs a key from
    /// configuration that every instance shares).
    pub mail_queue_keys: MailQueueKeys,
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

impl AuthConfig {
    /// The documented defaults, with links in letters pointing under `links`. There is no
    /// default base URL: a letter must never send a resident to a host the portal is not.
    #[must_use]
    pub fn new(links: Links) -> Self {
        Self {
            served_regions: ServedRegions::all(),
            links,
            confirmation_ttl: 24 * HOUR,
            activation_ttl: 24 * HOUR,
            recovery_ttl: HOUR,
            letter_resend_interval: MINUTE,
            letters_per_address_daily: Limit::new(10, 24 * HOUR),
            premises_attempts: vec![
                Limit::new(5, 15 * MINUTE),
                Limit::new(10, HOUR),
                Limit::new(15, 24 * HOUR),
            ],
            registrations_per_account: Limit::new(10, 24 * HOUR),
            login_per_cabinet_and_client: Limit::new(5, 15 * MINUTE),
            login_per_cabinet: Limit::new(100, 24 * HOUR),
            login_per_client: Limit::new(50, 15 * MINUTE),
            recovery_per_email: Limit::new(3, HOUR),
            registration_per_client: Limit::new(20, HOUR),
            session_idle: 30 * MINUTE,
            session_absolute: 12 * HOUR,
            session_touch_interval: MINUTE,
            credentials_lease: MINUTE,
            mailed_password_lifetime: None,
            delivery: DeliveryPolicy::default(),
            mail_queue_keys: MailQueueKeys::made_up(),
        }
    }
}

/// The adapters the service runs on.
#[derive(Clone)]
#[non_exhaustive]
pub struct Ports {
    /// Links, cabinets, sessions and counters.
    pub store: Arc<dyn Store>,
    /// The billing directory.
    pub directory: Arc<dyn AccountDirectory>,
    /// Outgoing mail.
    pub mailer: Arc<dyn Mailer>,
    /// Password hashing, off the async executor.
    pub hasher: Arc<dyn CredentialHasher>,
    /// The current time.
    pub clock: Arc<dyn Clock>,
    /// Where residents' events are recorded (default [`TracingEvents`]).
    pub events: Arc<dyn Events>,
}

impl Ports {
    /// The ports from their parts.
    pub fn new(
        store: Arc<dyn Store>,
        directory: Arc<dyn AccountDirectory>,
        mailer: Arc<dyn Mailer>,
        hasher: Arc<dyn CredentialHasher>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            directory,
            mailer,
            hasher,
            clock,
            events: Arc::new(TracingEvents),
        }
    }

    /// Records residents' events to `events` instead of [`TracingEvents`].
    #[must_use]
    pub fn with_events(mut self, events: Arc<dyn Events>) -> Self {
        self.events = events;
        self
    }
}

/// Who is asking: the language to answer and write letters in, the client address (when
/// the host knows it) for per-client throttles, and the client's software for the list of
/// sessions.
///
/// ```
/// use resident_auth::{Locale, RequestContext};
/// let context = RequestContext::new(Locale::Ru)
///     .with_client("203.0.113.7")
///     .with_user_agent("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0");
/// assert_eq!(context.client.as_deref(), Some("203.0.113.7"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestContext {
    /// Language of messages and letters.
    pub locale: Locale,
    /// The client's address, e.g. the remote IP.
    pub client: Option<String>,
    /// The client's `User-Agent`, summarised (browser and system) in the list of sessions.
    pub user_agent: Option<String>,
}

impl RequestContext {
    /// A context in `locale` with no client address.
    #[must_use]
    pub fn new(locale: Locale) -> Self {
        Self {
            locale,
            client: None,
            user_agent: None,
        }
    }

    /// The same context from the client address `client`.
    #[must_use]
    pub fn with_client(mut self, client: impl Into<String>) -> Self {
        self.client = Some(client.into());
        self
    }

    /// The same context from a client whose `User-Agent` is `user_agent`.
    #[must_use]
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
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
#[non_exhaustive]
pub struct LoggedIn {
    /// The session token for the client to keep (cookie or bearer).
    pub session_token: Token,
    /// The cabinet's identity.
    pub cabinet: CabinetId,
    /// The cabinet's email.
    pub email: Email,
    /// The account the session starts on.
    pub active_account: Option<AccountNumber>,
    /// The password is a temporary one: the resident must choose a password
    /// ([`AuthService::change_password`]) before anything else.
    pub password_change_required: bool,
}

/// The session behind a request, as [`AuthService::authenticate`] found it: the other
/// session operations take it, so a request looks its session up once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The cabinet's identity.
    pub cabinet: CabinetId,
    /// The cabinet's email.
    pub email: Email,
    /// The selected account.
    pub active_account: Option<AccountNumber>,
    /// All linked accounts.
    pub accounts: Vec<AccountNumber>,
    /// The password is a temporary one: only [`AuthService::change_password`], the list
    /// of sessions and logout work until the resident chooses a password.
    pub password_change_required: bool,
    session: SessionHandle,
}

impl Authenticated {
    /// The session's public identity.
    #[must_use]
    pub fn session_id(&self) -> SessionId {
        self.session.record.id
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SessionHandle {
    token: TokenHash,
    version: Version,
    record: Session,
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
    /// The cabinet's identity.
    pub cabinet: CabinetId,
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
    letters_waiting: Arc<DeliverySignal>,
}

/// Between the steps that queue letters and the delivery worker of this process.
#[derive(Default)]
pub(crate) struct DeliverySignal {
    /// Wakes the worker when this instance queues a letter.
    pub(crate) queued: tokio::sync::Notify,
    /// A delivery round has run, or a worker waits: letters will go out.
    pub(crate) delivering: std::sync::atomic::AtomicBool,
    /// The "no delivery" warning was given (once per service).
    pub(crate) warned: std::sync::atomic::AtomicBool,
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

/// The counters the service keeps, one family per concept.
mod counters {
    use super::{AccountNumber, CounterKey, Duration, Email};

    pub(super) fn login_cabinet(email: &Email) -> CounterKey {
        CounterKey::new("login:cabinet", email)
    }
    /// A client the host did not name shares one key with every other such client.
    pub(super) fn login_cabinet_client(email: &Email, client: Option<&str>) -> CounterKey {
        CounterKey::new(
            "login:cabinet-client",
            format_args!("{}:{email}", client.unwrap_or("-")),
        )
    }
    pub(super) fn login_client(client: &str) -> CounterKey {
        CounterKey::new("login:client", client)
    }
    pub(super) fn recovery_email(email: &Email) -> CounterKey {
        CounterKey::new("recovery:email", email)
    }
    pub(super) fn registration_client(client: &str) -> CounterKey {
        CounterKey::new("registration:client", client)
    }
    pub(super) fn letter_email(email: &Email) -> CounterKey {
        CounterKey::new("letter:email", email)
    }
    pub(super) fn letter_email_daily(email: &Email) -> CounterKey {
        CounterKey::new("letter:email:day", email)
    }
    pub(super) fn letter_account(account: &AccountNumber) -> CounterKey {
        CounterKey::new("letter:account", account)
    }
    /// One key per window length, so each escalation step counts on its own.
    pub(super) fn premises_account(account: &AccountNumber, window: Duration) -> CounterKey {
        CounterKey::new(
            "premises:account",
            format_args!("{}s:{account}", window.as_secs()),
        )
    }
    pub(super) fn registration_account(account: &AccountNumber) -> CounterKey {
        CounterKey::new("registration:account", account)
    }
}

/// How many times a conditional cabinet write is retried after another request changed
/// the cabinet between the read and the write.
const CABINET_WRITE_ATTEMPTS: usize = 4;

/// The outcome of counting against limits.
enum Counted {
    /// Every limit held; the counts in the order of the limits.
    Within(Vec<Count>),
    /// A limit was exceeded; the latest end of an exceeded window.
    Exceeded(Timestamp),
}

/// What a grant to set credentials acts on.
enum Issue {
    /// A registration opening a new cabinet for `email` with `account`.
    NewCabinet {
        email: Email,
        account: AccountNumber,
    },
    /// A registration adding `account` to the cabinet `cabinet`.
    AddAccount {
        cabinet: CabinetId,
        account: AccountNumber,
    },
    /// A recovery of the cabinet `cabinet`, issued at `credential_version`.
    Recovery {
        cabinet: CabinetId,
        credential_version: u64,
    },
}

/// Builds an [`AuthService`]: the base URL is required, and so are a store, a directory
/// and a mailer; the hasher defaults to argon2id at [`HashParams::default`] on one thread
/// per core, the clock to the system clock, the configuration to [`AuthConfig::new`].
///
/// ```
/// use resident_auth::{memory::{MemoryDirectory, MemoryStore, RecordingMailer}, AuthService};
/// let service = AuthService::builder("https://portal.example.org")
///     .store(MemoryStore::new())
///     .directory(MemoryDirectory::default())
///     .mailer(RecordingMailer::new())
///     .configure(|config| config.session_idle = std::time::Duration::from_secs(600))
///     .build()?;
/// assert_eq!(service.config().links.base_url(), "https://portal.example.org");
/// # Ok::<(), resident_auth::BuildError>(())
/// ```
#[must_use = "call build() to get the service"]
pub struct AuthServiceBuilder {
    config: AuthConfig,
    store: Option<Arc<dyn Store>>,
    directory: Option<Arc<dyn AccountDirectory>>,
    mailer: Option<Arc<dyn Mailer>>,
    hasher: Option<Arc<dyn CredentialHasher>>,
    clock: Option<Arc<dyn Clock>>,
    events: Option<Arc<dyn Events>>,
}

impl std::fmt::Debug for AuthServiceBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthServiceBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What [`AuthServiceBuilder::build`] was not given, or could not make.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A required port was not given: `store`, `directory` or `mailer`.
    #[error("AuthService::builder: no {0} given")]
    Missing(&'static str),
    /// The default hasher could not start.
    #[error("AuthService::builder: the default hasher: {0}")]
    Hasher(#[from] crate::hasher::HashError),
}

impl AuthServiceBuilder {
    /// The store (any [`Store`], e.g. `MemoryStore` or `PgStore`).
    pub fn store(mut self, store: impl Store + 'static) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// The store, already shared.
    pub fn shared_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The billing directory.
    pub fn directory(mut self, directory: impl AccountDirectory + 'static) -> Self {
        self.directory = Some(Arc::new(directory));
        self
    }

    /// The billing directory, already shared.
    pub fn shared_directory(mut self, directory: Arc<dyn AccountDirectory>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// The mailer.
    pub fn mailer(mut self, mailer: impl Mailer + 'static) -> Self {
        self.mailer = Some(Arc::new(mailer));
        self
    }

    /// The mailer, already shared.
    pub fn shared_mailer(mut self, mailer: Arc<dyn Mailer>) -> Self {
        self.mailer = Some(mailer);
        self
    }

    /// The password hasher (default: argon2id at [`HashParams::default`]).
    pub fn hasher(mut self, hasher: impl CredentialHasher + 'static) -> Self {
        self.hasher = Some(Arc::new(hasher));
        self
    }

    /// Where residents' events are recorded (default: [`TracingEvents`]).
    pub fn events(mut self, events: impl Events + 'static) -> Self {
        self.events = Some(Arc::new(events));
        self
    }

    /// Where residents' events are recorded, already shared.
    pub fn shared_events(mut self, events: Arc<dyn Events>) -> Self {
        self.events = Some(events);
        self
    }

    /// The keys that seal queued letters ([`AuthConfig::mail_queue_keys`]).
    pub fn mail_queue_keys(mut self, keys: MailQueueKeys) -> Self {
        self.config.mail_queue_keys = keys;
        self
    }

    /// Confirmation letters link to `template` on the host's own front end instead of the
    /// library's `{base}/confirm` page ([`Links::with_confirmation`]).
    ///
    /// ```
    /// # use resident_auth::{memory::{MemoryDirectory, MemoryStore, RecordingMailer}, AuthService};
    /// let service = AuthService::builder("https://portal.example.org")
    ///     .store(MemoryStore::new())
    ///     .directory(MemoryDirectory::default())
    ///     .mailer(RecordingMailer::new())
    ///     .confirmation_link("https://app.example.org/confirm/{token}".parse()?)
    ///     .recovery_link("https://app.example.org/reset/{token}".parse()?)
    ///     .build()?;
    /// assert!(service.config().links.pages_needed().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn confirmation_link(mut self, template: crate::letters::LinkTemplate) -> Self {
        self.config.links = self.config.links.with_confirmation(template);
        self
    }

    /// Recovery letters link to `template` on the host's own front end instead of the
    /// library's `{base}/recover` page ([`Links::with_recovery`]).
    pub fn recovery_link(mut self, template: crate::letters::LinkTemplate) -> Self {
        self.config.links = self.config.links.with_recovery(template);
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Changes the configuration (limits, lifetimes, served regions).
    pub fn configure(mut self, change: impl FnOnce(&mut AuthConfig)) -> Self {
        change(&mut self.config);
        self
    }

    /// The service.
    ///
    /// # Errors
    /// [`BuildError::Missing`] naming a port not given; [`BuildError::Hasher`] if the
    /// default hasher cannot start its threads.
    pub fn build(self) -> Result<AuthService, BuildError> {
        let hasher = match self.hasher {
            Some(hasher) => hasher,
            None => Arc::new(crate::hasher::Argon2Hasher::new(HashParams::default())?),
        };
        let ports = Ports {
            store: self.store.ok_or(BuildError::Missing("store"))?,
            directory: self.directory.ok_or(BuildError::Missing("directory"))?,
            mailer: self.mailer.ok_or(BuildError::Missing("mailer"))?,
            hasher,
            clock: self
                .clock
                .unwrap_or_else(|| Arc::new(crate::clock::SystemClock)),
            events: self.events.unwrap_or_else(|| Arc::new(TracingEvents)),
        };
        if self.config.mail_queue_keys.is_made_up() && ports.store.outlives_the_process() {
            // Letters queued now would be sealed under a key the next start does not have:
            // after a restart they cannot be opened and die undelivered.
            tracing::warn!(
                "resident-auth: the store outlives the process but the mail queue key is \
                 random, made at start-up: letters still queued at a restart will be dead \
                 letters. Give every instance the same key: \
                 AuthServiceBuilder::mail_queue_keys(MailQueueKeys::new(MailQueueKey::from_base64(…)?)) \
                 (make one with `openssl rand -base64 32`)"
            );
        }
        Ok(AuthService::new(ports, self.config))
    }
}

impl AuthService {
    /// A builder for a portal whose letters link under `base_url` (e.g.
    /// `https://кабинет-жителя.рф`).
    pub fn builder(base_url: &str) -> AuthServiceBuilder {
        AuthServiceBuilder {
            config: AuthConfig::new(Links::new(base_url)),
            store: None,
            directory: None,
            mailer: None,
            hasher: None,
            clock: None,
            events: None,
        }
    }

    /// A service over `ports` with `config`; [`AuthService::builder`] is the short way.
    #[must_use]
    pub fn new(ports: Ports, config: AuthConfig) -> Self {
        Self {
            ports,
            config: Arc::new(config),
            letters_waiting: Arc::new(DeliverySignal::default()),
        }
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// The ports the service runs on (to build another service over the same adapters,
    /// with another configuration).
    #[must_use]
    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    fn now(&self) -> Timestamp {
        self.ports.clock.now()
    }

    fn store(&self) -> &dyn Store {
        self.ports.store.as_ref()
    }

    /// Records a resident's event (never fails the step).
    pub(crate) async fn record(&self, event: Event) {
        self.ports.events.record(&event).await;
    }

    /// Counts one event under each key against its limit, in one store step. Returns the
    /// counts, or when any limit is exceeded the time its window ends.
    async fn count_against(
        &self,
        limits: &[(CounterKey, Limit)],
        now: Timestamp,
    ) -> Result<Counted, Error> {
        let keys: Vec<(CounterKey, Duration)> = limits
            .iter()
            .map(|(key, limit)| (key.clone(), limit.window))
            .collect();
        let counts = self.store().increment_all(&keys, now).await?;
        let exceeded = counts
            .iter()
            .zip(limits)
            .filter(|(count, (_, limit))| count.count > limit.max)
            .map(|(count, _)| count.window_ends)
            .max();
        Ok(match exceeded {
            Some(until) => Counted::Exceeded(until),
            None => Counted::Within(counts),
        })
    }

    /// [`count_against`](Self::count_against), a limit exceeded answered as
    /// [`Problem::TooManyRequests`].
    async fn throttle(&self, limits: &[(CounterKey, Limit)], now: Timestamp) -> Result<(), Error> {
        match self.count_against(limits, now).await? {
            Counted::Within(_) => Ok(()),
            Counted::Exceeded(until) => Err(Problem::TooManyRequests {
                retry_after: now.until(until),
            }
            .into()),
        }
    }

    /// Journey 1: registration. Checks every field (all problems together), the region,
    /// the directory (account and surname, one answer for both), and that neither the
    /// account nor the email is registered; then mails "Подтверждение e-mail".
    ///
    /// # Errors
    /// [`Error::Rejected`] with the problems; [`Error::Unavailable`] if storage or mail
    /// failed (nothing is left that blocks a retry).
    #[tracing::instrument(
        name = "resident_auth.register",
        skip_all,
        err(level = "debug", Display)
    )]
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
                self.start_registration(&surname, account, email, None, context)
                    .await
            }
            _ => Err(Error::Rejected(Vec::new())),
        }
    }

    /// Journey 7: adds an account to the cabinet of a live session: the registration
    /// checks, then "Подтверждение e-mail" to the cabinet's email.
    ///
    /// # Errors
    /// As [`register`](Self::register).
    #[tracing::instrument(
        name = "resident_auth.add_address",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn add_address(
        &self,
        session: &Authenticated,
        form: &AddressForm,
        context: &RequestContext,
    ) -> Result<(), Error> {
        require_chosen_password(session)?;
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
                    session.email.clone(),
                    Some(session.cabinet),
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
        cabinet: Option<CabinetId>,
        context: &RequestContext,
    ) -> Result<(), Error> {
        let store = self.store();
        let now = self.now();
        if let Some(client) = &context.client {
            let limit = self.config.registration_per_client;
            self.throttle(&[(counters::registration_client(client), limit)], now)
                .await?;
        }
        let record = self.ports.directory.lookup(&account).await?;
        let known = record.is_some_and(|r| {
            r.surnames.is_empty() || r.surnames.iter().any(|s| surname.matches(s))
        });
        if !known {
            return Err(Problem::AccountNotFound.into());
        }
        if store
            .cabinet(CabinetKey::Account(&account))
            .await?
            .is_some()
        {
            return Err(Problem::AlreadyRegistered.into());
        }
        if cabinet.is_none() && store.cabinet(CabinetKey::Email(&email)).await?.is_some() {
            return Err(Problem::AlreadyRegistered.into());
        }
        let limit = self.config.registrations_per_account;
        self.throttle(&[(counters::registration_account(&account), limit)], now)
            .await?;
        let resend = Limit::new(1, self.config.letter_resend_interval);
        let cooldowns = [
            (counters::letter_email(&email), resend),
            (counters::letter_account(&account), resend),
            (
                counters::letter_email_daily(&email),
                self.config.letters_per_address_daily,
            ),
        ];
        let token = Token::generate();
        let sent = self
            .send_confirmation(&token, &cooldowns, email, account, cabinet, context, now)
            .await;
        if matches!(sent, Err(Error::Unavailable(_))) {
            // Storage failed after the cooldowns were counted: no link and no letter were
            // stored (they are one write), so drop the cooldowns, and the same request can
            // be made again at once. If this fails too, they expire by themselves.
            for (key, _) in &cooldowns {
                let _ = store.reset(key).await;
            }
        }
        if sent.is_ok() {
            self.record(
                Event::new(EventKind::Registered, now)
                    .about(cabinet, Some(account))
                    .from_client(context.client.as_deref()),
            )
            .await;
        }
        sent
    }

    /// Counts the letter against the cooldowns, then stores the confirmation link with its
    /// letter queued, in one write.
    #[allow(clippy::too_many_arguments)]
    async fn send_confirmation(
        &self,
        token: &Token,
        cooldowns: &[(CounterKey, Limit)],
        email: Email,
        account: AccountNumber,
        cabinet: Option<CabinetId>,
        context: &RequestContext,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.throttle(cooldowns, now).await?;
        let hash = token.hash();
        let link = Link {
            purpose: LinkPurpose::Confirmation,
            email: email.clone(),
            account_number: Some(account),
            cabinet,
            credential_version: None,
            expires_at: now.plus(self.config.confirmation_ttl),
            issuing_until: None,
        };
        let letter = Letter {
            to: email,
            locale: context.locale,
            content: LetterContent::ConfirmEmail {
                link: self.config.links.confirmation(token),
            },
        };
        let queued = self.queued(&letter, cabinet, now);
        if !self
            .store()
            .swap_link(&hash, Expected::Absent, Some((&hash, &link)), Some(&queued))
            .await?
        {
            return Err(StoreError::generic("a fresh token collided with a stored one").into());
        }
        self.letter_written(queued).await;
        Ok(())
    }

    /// A live link of `purpose` under `token`, or [`Problem::InvalidLink`].
    async fn live_link(
        &self,
        token: &TokenHash,
        purpose: LinkPurpose,
        now: Timestamp,
    ) -> Result<Versioned<Link>, Error> {
        match self.store().link(token).await? {
            Some(link) if link.value.purpose == purpose && now < link.value.expires_at => Ok(link),
            _ => Err(Problem::InvalidLink.into()),
        }
    }

    /// The account's premises counters with their limits, shortest window first.
    fn premises_limits(&self, account: &AccountNumber) -> Vec<(CounterKey, Limit)> {
        self.config
            .premises_attempts
            .iter()
            .map(|limit| (counters::premises_account(account, limit.window), *limit))
            .collect()
    }

    /// Journey 2: the confirmation link. Returns the activation token that unlocks the
    /// next step; only the link's holder gets it.
    ///
    /// # Errors
    /// [`Problem::InvalidLink`] for an unknown, used or expired token.
    #[tracing::instrument(
        name = "resident_auth.confirm_email",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn confirm_email(&self, confirmation_token: &str) -> Result<Token, Error> {
        let token = Token::from_user(confirmation_token).ok_or(Problem::InvalidLink)?;
        let hash = token.hash();
        let now = self.now();
        let activation = Token::generate();
        let next = LinkAdvance {
            purpose: LinkPurpose::Activation,
            expires_at: now.plus(self.config.activation_ttl),
        };
        let link = self
            .store()
            .advance_link(
                &hash,
                LinkPurpose::Confirmation,
                now,
                &activation.hash(),
                next,
            )
            .await?
            .ok_or(Problem::InvalidLink)?;
        self.record(Event::new(EventKind::Confirmed, now).about(link.cabinet, link.account_number))
            .await;
        Ok(activation)
    }

    /// Journey 3 (and 7): activation with the premises number. Every try is counted
    /// against the account's limit before it is evaluated. Right: a new password is
    /// generated and made effective in the same store write that queues its letter
    /// "Данные для входа" (the mail queue). Returns the cabinet's email; never the password.
    ///
    /// # Errors
    /// [`Problem::WrongPremises`] with attempts left, [`Problem::ActivationLocked`],
    /// [`Problem::InvalidLink`], a premises syntax problem, or [`Error::Unavailable`].
    #[tracing::instrument(
        name = "resident_auth.activate",
        skip_all,
        err(level = "debug", Display)
    )]
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
        let link = self.live_link(&hash, LinkPurpose::Activation, now).await?;
        let Some(account) = link.value.account_number else {
            return Err(Problem::InvalidLink.into());
        };
        let attempts = self.premises_limits(&account);
        let event = |kind| {
            Event::new(kind, now)
                .about(link.value.cabinet, Some(account))
                .from_client(context.client.as_deref())
        };
        let counts = match self.count_against(&attempts, now).await? {
            Counted::Within(counts) => counts,
            Counted::Exceeded(until) => {
                self.record(event(EventKind::ActivationLocked)).await;
                return Err(Problem::ActivationLocked {
                    retry_after: now.until(until),
                }
                .into());
            }
        };
        let record = self.ports.directory.lookup(&account).await?;
        if !record.is_some_and(|r| r.premises == premises) {
            let attempts_left = counts
                .iter()
                .zip(&attempts)
                .map(|(count, (_, limit))| limit.max.saturating_sub(count.count))
                .min()
                .unwrap_or(0);
            let locked_until = counts
                .iter()
                .zip(&attempts)
                .filter(|(count, (_, limit))| count.count >= limit.max)
                .map(|(count, _)| count.window_ends)
                .max();
            self.record(event(match locked_until {
                Some(_) => EventKind::ActivationLocked,
                None => EventKind::ActivationFailed,
            }))
            .await;
            return Err(match locked_until {
                Some(until) => Problem::ActivationLocked {
                    retry_after: now.until(until),
                },
                None => Problem::WrongPremises { attempts_left },
            }
            .into());
        }
        let (issue, kind) = match link.value.cabinet {
            None => (
                Issue::NewCabinet {
                    email: link.value.email.clone(),
                    account,
                },
                EventKind::Activated,
            ),
            Some(cabinet) => (
                Issue::AddAccount { cabinet, account },
                EventKind::AccountAdded,
            ),
        };
        let (email, cabinet) = self
            .issue_credentials(&hash, link, issue, context.locale)
            .await?;
        self.record(
            Event::new(kind, now)
                .about(Some(cabinet), Some(account))
                .from_client(context.client.as_deref()),
        )
        .await;
        // The registration is complete: its tries and its letter cooldowns are spent, so
        // the resident may add an address at once. Best effort: a lingering count only
        // shortens a later activation's tries or delays a letter by the resend interval.
        let mut spent: Vec<CounterKey> = attempts.into_iter().map(|(key, _)| key).collect();
        spent.push(counters::letter_email(&email));
        spent.push(counters::letter_account(&account));
        let _ = self.store().reset_all(&spent).await;
        Ok(email)
    }

    /// Generates a password under the grant of `link` and makes it effective in the same
    /// write that queues its letter, so that no cabinet ends up with a password whose
    /// letter is not on its way. The link is held (leased) meanwhile, so a concurrent use
    /// waits rather than issuing a second password; argon2 runs only after the link has
    /// been validated. Returns the cabinet's email and identity.
    async fn issue_credentials(
        &self,
        token: &TokenHash,
        link: Versioned<Link>,
        issue: Issue,
        locale: Locale,
    ) -> Result<(Email, CabinetId), Error> {
        let store = self.store();
        let now = self.now();
        // Another request is issuing under this link right now: it will finish the job.
        if let Some(until) = link.value.issuing_until.filter(|until| *until > now) {
            return Err(Problem::TooManyRequests {
                retry_after: now.until(until),
            }
            .into());
        }
        // A registration that can no longer succeed (or whose credentials an earlier try
        // already made effective) is answered before any letter.
        let mut cabinet_read = None;
        let email = match &issue {
            Issue::NewCabinet { email, account } => {
                if let Some(done) = self.already_done(token, &link, email, account).await? {
                    return done;
                }
                email.clone()
            }
            Issue::AddAccount { cabinet, account } => {
                let Some(current) = store.cabinet(CabinetKey::Id(cabinet)).await? else {
                    return Err(Problem::InvalidLink.into());
                };
                let email = current.value.email.clone();
                if let Some(done) = self.already_done(token, &link, &email, account).await? {
                    return done;
                }
                cabinet_read = Some(current);
                email
            }
            Issue::Recovery {
                cabinet,
                credential_version,
            } => match store.cabinet(CabinetKey::Id(cabinet)).await? {
                Some(current) if current.value.credential_version == *credential_version => {
                    let email = current.value.email.clone();
                    cabinet_read = Some(current);
                    email
                }
                _ => return Err(Problem::InvalidLink.into()),
            },
        };
        let leased = Link {
            issuing_until: Some(now.plus(self.config.credentials_lease)),
            ..link.value.clone()
        };
        if !store
            .swap_link(
                token,
                Expected::Version(link.version),
                Some((token, &leased)),
                None,
            )
            .await?
        {
            return Err(Problem::InvalidLink.into());
        }
        let leased_version = link.version.next();
        let release = || async {
            let _ = store
                .swap_link(
                    token,
                    Expected::Version(leased_version),
                    Some((token, &link.value)),
                    None,
                )
                .await;
        };
        let password = generate_password();
        let hash = match self.ports.hasher.hash(password.clone()).await {
            Ok(hash) => hash,
            Err(error) => {
                release().await;
                return Err(error.into());
            }
        };
        let letter = Letter {
            to: email.clone(),
            locale,
            content: LetterContent::Credentials {
                login: email.clone(),
                password,
                temporary: self.config.mailed_password_lifetime.is_some(),
            },
        };
        let (cabinet, queued) = match self
            .write_credentials(&issue, &email, hash, cabinet_read, &letter)
            .await
        {
            Ok(written) => written,
            Err(error) => {
                // Neither the password nor its letter were written; release the link so
                // the retry need not wait the lease.
                release().await;
                return Err(error);
            }
        };
        self.letter_written(queued).await;
        // The credentials are in force and their letter queued: the step succeeded. The link is spent;
        // should deleting it fail, it is dead all the same — a recovery link names the
        // credential version just replaced, and a registration link finds its account
        // linked and its work done.
        let _ = store
            .swap_link(token, Expected::Version(leased_version), None, None)
            .await;
        Ok((email, cabinet))
    }

    /// For a registration whose account is already in `email`'s cabinet (an earlier try
    /// of this very link got that far), spends the link and answers as that try should
    /// have. For an account or email registered otherwise, refuses.
    async fn already_done(
        &self,
        token: &TokenHash,
        link: &Versioned<Link>,
        email: &Email,
        account: &AccountNumber,
    ) -> Result<Option<Result<(Email, CabinetId), Error>>, Error> {
        let store = self.store();
        let owner = match store.cabinet(CabinetKey::Account(account)).await? {
            Some(cabinet) => Some(cabinet),
            // The email's cabinet, read second, may have been made by this very link a
            // moment after the account was read.
            None if link.value.cabinet.is_none() => store.cabinet(CabinetKey::Email(email)).await?,
            None => None,
        };
        match owner {
            Some(cabinet)
                if &cabinet.value.email == email && cabinet.value.accounts.contains(account) =>
            {
                // Only the request that spends the link may say it worked.
                let spent = store
                    .swap_link(token, Expected::Version(link.version), None, None)
                    .await?;
                Ok(Some(if spent {
                    Ok((email.clone(), cabinet.value.id))
                } else {
                    Err(Problem::InvalidLink.into())
                }))
            }
            Some(_) => Ok(Some(Err(Problem::AlreadyRegistered.into()))),
            None => Ok(None),
        }
    }

    /// Makes `hash` the cabinet's password (creating the cabinet, or linking the account,
    /// as `issue` says), bumping the credential version so every session opened before
    /// ends, and queues `letter` in the same write. Retries when another request changed
    /// the cabinet in between; `read` is the cabinet as the caller just read it, if it did.
    /// Returns the cabinet's identity and the letter as queued.
    async fn write_credentials(
        &self,
        issue: &Issue,
        email: &Email,
        hash: HashedPassword,
        mut read: Option<Versioned<Cabinet>>,
        letter: &Letter,
    ) -> Result<(CabinetId, QueuedLetter), Error> {
        let store = self.store();
        let now = self.now();
        let password_expires_at = self
            .config
            .mailed_password_lifetime
            .map(|lifetime| now.plus(lifetime));
        if let Issue::NewCabinet { account, .. } = issue {
            let cabinet = Cabinet {
                id: CabinetId::generate(),
                email: email.clone(),
                password_hash: hash,
                credential_version: 1,
                accounts: vec![*account],
                password_expires_at,
            };
            let queued = self.queued(letter, Some(cabinet.id), now);
            return match store
                .swap_cabinet(&cabinet.id, Expected::Absent, Some(&cabinet), Some(&queued))
                .await?
            {
                CabinetSwap::Written => Ok((cabinet.id, queued)),
                CabinetSwap::Conflict | CabinetSwap::Taken => {
                    Err(Problem::AlreadyRegistered.into())
                }
            };
        }
        let id = match issue {
            Issue::AddAccount { cabinet, .. } | Issue::Recovery { cabinet, .. } => *cabinet,
            Issue::NewCabinet { .. } => return Err(Problem::InvalidLink.into()),
        };
        let queued = self.queued(letter, Some(id), now);
        for _ in 0..CABINET_WRITE_ATTEMPTS {
            let current = match read.take() {
                Some(current) => current,
                None => match store.cabinet(CabinetKey::Id(&id)).await? {
                    Some(current) => current,
                    None => return Err(Problem::InvalidLink.into()),
                },
            };
            let mut next = current.value.clone();
            match issue {
                Issue::AddAccount { account, .. } if !next.accounts.contains(account) => {
                    next.accounts.push(*account);
                }
                Issue::Recovery {
                    credential_version, ..
                } if next.credential_version != *credential_version => {
                    return Err(Problem::InvalidLink.into());
                }
                _ => {}
            }
            next.password_hash = hash.clone();
            next.credential_version = next.credential_version.saturating_add(1);
            next.password_expires_at = password_expires_at;
            match store
                .swap_cabinet(
                    &id,
                    Expected::Version(current.version),
                    Some(&next),
                    Some(&queued),
                )
                .await?
            {
                CabinetSwap::Written => return Ok((id, queued)),
                CabinetSwap::Taken => return Err(Problem::AlreadyRegistered.into()),
                CabinetSwap::Conflict => {}
            }
        }
        Err(StoreError::unavailable("the cabinet kept changing under a write").into())
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

    /// Journey 4, step 2: email and password. The try is counted against the cabinet's
    /// and the client's limits before argon2 runs, so a burst of parallel tries runs at
    /// most the limit's verifications. A wrong password and an unknown email get the same
    /// answer after the same argon2 work and the same store calls.
    ///
    /// # Errors
    /// [`Problem::InvalidCredentials`], [`Problem::LoginThrottled`],
    /// [`Problem::IncorrectData`], or [`Error::Unavailable`].
    #[tracing::instrument(name = "resident_auth.login", skip_all, err(level = "debug", Display))]
    pub async fn login(
        &self,
        email: &str,
        password: SecretString,
        context: &RequestContext,
    ) -> Result<LoggedIn, Error> {
        let result = self.login_steps(email, password, context).await;
        let (kind, outcome) = match &result {
            Ok(_) => (EventKind::LoginSucceeded, "succeeded"),
            Err(error) if error.is(&Problem::InvalidCredentials) => {
                (EventKind::LoginFailed, "failed")
            }
            Err(Error::Rejected(problems))
                if problems
                    .iter()
                    .any(|p| matches!(p, Problem::LoginThrottled { .. })) =>
            {
                (EventKind::LoginThrottled, "throttled")
            }
            // Malformed input or a failure of storage: no login was tried.
            Err(_) => return result,
        };
        crate::metrics::login(outcome);
        let cabinet = result.as_ref().ok().map(|logged_in| logged_in.cabinet);
        self.record(
            Event::new(kind, self.now())
                .about(cabinet, None)
                .from_client(context.client.as_deref()),
        )
        .await;
        result
    }

    async fn login_steps(
        &self,
        email: &str,
        password: SecretString,
        context: &RequestContext,
    ) -> Result<LoggedIn, Error> {
        let email = self.identify(email)?;
        let password = crate::password::normalize(&password);
        let store = self.store();
        let now = self.now();
        let [pair_key, cabinet_key] = self.count_password_try(&email, context, now).await?;
        let cabinet = store.cabinet(CabinetKey::Email(&email)).await?;
        let stored = cabinet.as_ref().map(|c| c.value.password_hash.clone());
        let rehash = match self.ports.hasher.verify(password.clone(), stored).await? {
            Verification::Mismatch => return Err(Problem::InvalidCredentials.into()),
            Verification::Match { rehash } => rehash,
        };
        let Some(mut cabinet) = cabinet else {
            return Err(Problem::InvalidCredentials.into());
        };
        if cabinet
            .value
            .password_expires_at
            .is_some_and(|until| until <= now)
        {
            return Err(Problem::PasswordExpired.into());
        }
        if rehash {
            // Best effort: a failed upgrade must not fail a correct login. The credential
            // version stays: the password is the same, its sessions live on.
            if let Ok(new) = self.ports.hasher.hash(password).await {
                let mut next = cabinet.value.clone();
                next.password_hash = new;
                if let Ok(CabinetSwap::Written) = store
                    .swap_cabinet(
                        &next.id,
                        Expected::Version(cabinet.version),
                        Some(&next),
                        None,
                    )
                    .await
                {
                    cabinet.value = next;
                }
            }
        }
        let session_token = Token::generate();
        let session = Session {
            id: SessionId::generate(),
            cabinet: cabinet.value.id,
            credential_version: cabinet.value.credential_version,
            active_account: cabinet.value.accounts.first().copied(),
            created_at: now,
            last_used: now,
            expires_at: self.session_expires_at(now, now),
            client: client_summary(context),
        };
        let token_hash = session_token.hash();
        let cleared = [pair_key, cabinet_key];
        let (opened, _) = futures::join!(
            store.swap_session(&token_hash, Expected::Absent, Some(&session)),
            // Best effort: a lingering count only shortens the next run of tries.
            store.reset_all(&cleared),
        );
        if !opened? {
            return Err(StoreError::generic("a fresh token collided with a stored one").into());
        }
        Ok(LoggedIn {
            session_token,
            cabinet: cabinet.value.id,
            email: cabinet.value.email,
            active_account: session.active_account,
            password_change_required: cabinet.value.password_expires_at.is_some(),
        })
    }

    /// Whether `session` still authenticates at `now` for a cabinet whose credentials are
    /// at `credential_version`: neither idle nor absolute expiry has passed (alive at
    /// expiry − 1 ms, dead at expiry), and no new credentials were issued since it opened.
    fn session_alive(&self, session: &Session, credential_version: u64, now: Timestamp) -> bool {
        session.credential_version == credential_version
            && now < session.created_at.plus(self.config.session_absolute)
            && now < session.last_used.plus(self.config.session_idle)
    }

    /// Counts a password try for the cabinet of `email` before argon2 runs, and refuses it
    /// when a limit is exceeded. Two steps: the limits of this client (for this cabinet,
    /// and whatever the cabinet) first; only a try they let through counts against the
    /// cabinet-wide cap, so one client's refused tries never fill the cap that would lock
    /// the owner out everywhere. Returns the keys a success clears: (cabinet, client) and
    /// the cabinet's.
    async fn count_password_try(
        &self,
        email: &Email,
        context: &RequestContext,
        now: Timestamp,
    ) -> Result<[CounterKey; 2], Error> {
        let pair_key = counters::login_cabinet_client(email, context.client.as_deref());
        let mut client_limits = vec![(pair_key.clone(), self.config.login_per_cabinet_and_client)];
        if let Some(client) = &context.client {
            client_limits.push((counters::login_client(client), self.config.login_per_client));
        }
        let cabinet_key = counters::login_cabinet(email);
        let cabinet_limit = [(cabinet_key.clone(), self.config.login_per_cabinet)];
        for limits in [client_limits.as_slice(), cabinet_limit.as_slice()] {
            if let Counted::Exceeded(until) = self.count_against(limits, now).await? {
                return Err(Problem::LoginThrottled {
                    retry_after: now.until(until),
                }
                .into());
            }
        }
        Ok([pair_key, cabinet_key])
    }

    fn session_expires_at(&self, created_at: Timestamp, last_used: Timestamp) -> Timestamp {
        created_at
            .plus(self.config.session_absolute)
            .min(last_used.plus(self.config.session_idle))
    }

    /// Journey 5: who a session token belongs to, in one store lookup. The session's last
    /// use is written only when the stored one is older than the touch interval, and never
    /// moves backwards. A session is dead once idle or absolute expiry passes, or once the
    /// cabinet's credentials were issued anew after it was opened.
    ///
    /// # Errors
    /// [`Problem::SessionInvalid`] for an unknown or expired session.
    #[tracing::instrument(
        name = "resident_auth.authenticate",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn authenticate(&self, session_token: &str) -> Result<Authenticated, Error> {
        let token = Token::from_user(session_token).ok_or(Problem::SessionInvalid)?;
        let hash = token.hash();
        let store = self.store();
        let now = self.now();
        let Some((session, cabinet)) = store.session_with_cabinet(&hash).await? else {
            return Err(Problem::SessionInvalid.into());
        };
        let record = &session.value;
        if !self.session_alive(record, cabinet.value.credential_version, now) {
            // Dead for good: make sure it is gone.
            store
                .swap_session(&hash, Expected::Version(session.version), None)
                .await?;
            return Err(Problem::SessionInvalid.into());
        }
        let mut handle = SessionHandle {
            token: hash,
            version: session.version,
            record: session.value.clone(),
        };
        if record.last_used.plus(self.config.session_touch_interval) <= now {
            let mut touched = handle.record.clone();
            touched.last_used = now.max(record.last_used);
            touched.expires_at = self.session_expires_at(touched.created_at, touched.last_used);
            // Losing this race (another request touched it, or a logout) changes nothing
            // for this request.
            if store
                .swap_session(&hash, Expected::Version(session.version), Some(&touched))
                .await?
            {
                handle.version = session.version.next();
                handle.record = touched;
            }
        }
        let active_account = handle
            .record
            .active_account
            .filter(|account| cabinet.value.accounts.contains(account))
            .or_else(|| cabinet.value.accounts.first().copied());
        Ok(Authenticated {
            cabinet: cabinet.value.id,
            email: cabinet.value.email,
            active_account,
            accounts: cabinet.value.accounts,
            password_change_required: cabinet.value.password_expires_at.is_some(),
            session: handle,
        })
    }

    /// Journey 5: the cabinet with the address of every linked account.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if the directory cannot be read.
    #[tracing::instrument(
        name = "resident_auth.cabinet",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn cabinet(&self, session: &Authenticated) -> Result<CabinetView, Error> {
        require_chosen_password(session)?;
        let mut accounts = Vec::with_capacity(session.accounts.len());
        for account_number in &session.accounts {
            let record = self.ports.directory.lookup(account_number).await?;
            accounts.push(LinkedAccount {
                account_number: *account_number,
                address: record
                    .as_ref()
                    .map(|r| r.address.clone())
                    .unwrap_or_default(),
                premises: record.map(|r| r.premises),
            });
        }
        Ok(CabinetView {
            cabinet: session.cabinet,
            email: session.email.clone(),
            accounts,
            active_account: session.active_account,
        })
    }

    /// Journey 5: switches the session to another linked account.
    ///
    /// # Errors
    /// [`Problem::SessionInvalid`] if the session ended meanwhile,
    /// [`Problem::AccountNotLinked`], an account number syntax problem, or
    /// [`Error::Unavailable`].
    #[tracing::instrument(
        name = "resident_auth.select_account",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn select_account(
        &self,
        session: &Authenticated,
        account_number: &str,
    ) -> Result<(), Error> {
        require_chosen_password(session)?;
        let account: AccountNumber = account_number.parse().map_err(Problem::from)?;
        if !session.accounts.contains(&account) {
            return Err(Problem::AccountNotLinked.into());
        }
        let handle = &session.session;
        let store = self.store();
        let (mut record, mut version) = (handle.record.clone(), handle.version);
        for _ in 0..CABINET_WRITE_ATTEMPTS {
            let next = Session {
                active_account: Some(account),
                ..record
            };
            if store
                .swap_session(&handle.token, Expected::Version(version), Some(&next))
                .await?
            {
                self.record(
                    Event::new(EventKind::AccountSelected, self.now())
                        .about(Some(session.cabinet), Some(account)),
                )
                .await;
                return Ok(());
            }
            // Another request of the same session touched it: write over its version,
            // unless the session is gone or belongs to older credentials.
            match store.session(&handle.token).await? {
                Some(current)
                    if current.value.credential_version == handle.record.credential_version =>
                {
                    (record, version) = (current.value, current.version);
                }
                _ => return Err(Problem::SessionInvalid.into()),
            }
        }
        Err(StoreError::unavailable("the session kept changing under a write").into())
    }

    /// Journey 5: ends the session.
    ///
    /// # Errors
    /// [`Problem::SessionInvalid`] for a malformed token, or [`Error::Unavailable`].
    #[tracing::instrument(name = "resident_auth.logout", skip_all, err(level = "debug", Display))]
    pub async fn logout(&self, session_token: &str) -> Result<(), Error> {
        let token = Token::from_user(session_token).ok_or(Problem::SessionInvalid)?;
        let hash = token.hash();
        let store = self.store();
        let ended = store.session(&hash).await?;
        if let Some(ended) = ended {
            if store
                .swap_session(&hash, Expected::Version(ended.version), None)
                .await?
            {
                self.record(
                    Event::new(EventKind::SessionEnded, self.now())
                        .about(Some(ended.value.cabinet), None),
                )
                .await;
            }
        }
        Ok(())
    }

    /// Journey 6, step 1: asks for a recovery letter. The answer is the same whether or
    /// not the email has a cabinet, and the throttle counts unknown emails too.
    ///
    /// # Errors
    /// An email syntax problem, [`Problem::TooManyRequests`], or [`Error::Unavailable`].
    #[tracing::instrument(
        name = "resident_auth.request_recovery",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn request_recovery(
        &self,
        email: &str,
        context: &RequestContext,
    ) -> Result<(), Error> {
        let email: Email = email.parse().map_err(Problem::from)?;
        let now = self.now();
        // One cooldown per recipient across every letter with a link, counted for known
        // and unknown addresses alike, before anything is looked up.
        let limits = [
            (
                counters::letter_email(&email),
                Limit::new(1, self.config.letter_resend_interval),
            ),
            (
                counters::letter_email_daily(&email),
                self.config.letters_per_address_daily,
            ),
            (
                counters::recovery_email(&email),
                self.config.recovery_per_email,
            ),
        ];
        let sent = self
            .send_recovery(email.clone(), &limits, context, now)
            .await;
        if let Ok(cabinet) = &sent {
            self.record(
                Event::new(EventKind::RecoveryRequested, now)
                    .about(*cabinet, None)
                    .from_client(context.client.as_deref()),
            )
            .await;
        }
        if let Err(Error::Unavailable(_)) = &sent {
            // Storage failed (counting, or looking up) before any letter: the same request
            // may be made again at once.
            let _ = self.store().reset(&counters::letter_email(&email)).await;
        }
        sent.map(|_| ())
    }

    /// Stores a recovery link for the cabinet of `email`, if there is one, with its letter
    /// queued in the same write; returns the cabinet. For an unknown email it does the
    /// same work — a fresh token, a sealed letter, the same write of a link and a letter —
    /// but the link is dead on arrival and the letter withheld (never sent, no content),
    /// so that both answers take the same time and nothing reaches the unknown address.
    async fn send_recovery(
        &self,
        email: Email,
        limits: &[(CounterKey, Limit)],
        context: &RequestContext,
        now: Timestamp,
    ) -> Result<Option<CabinetId>, Error> {
        self.throttle(limits, now).await?;
        let store = self.store();
        let cabinet = store.cabinet(CabinetKey::Email(&email)).await?;
        let known = cabinet.is_some();
        let token = Token::generate();
        let hash = token.hash();
        let link = Link {
            purpose: LinkPurpose::Recovery,
            email: email.clone(),
            account_number: None,
            cabinet: cabinet.as_ref().map(|c| c.value.id),
            credential_version: cabinet.as_ref().map(|c| c.value.credential_version),
            expires_at: if known {
                now.plus(self.config.recovery_ttl)
            } else {
                now
            },
            issuing_until: None,
        };
        let letter = Letter {
            to: email,
            locale: context.locale,
            content: LetterContent::RecoverPassword {
                link: self.config.links.recovery(&token),
            },
        };
        let mut queued = self.queued(&letter, link.cabinet, now);
        if !known {
            queued.status = crate::LetterStatus::Withheld;
            queued.sealed = None;
            queued.keep_until = Some(now.plus(self.config.delivery.retention));
        }
        if !store
            .swap_link(&hash, Expected::Absent, Some((&hash, &link)), Some(&queued))
            .await?
        {
            return Err(StoreError::generic("a fresh token collided with a stored one").into());
        }
        let Some(cabinet) = cabinet else {
            // Counted as what the answer claims (a letter queued and sent), so that no
            // metric tells a registered email from an unknown one.
            crate::metrics::letter_queued(queued.kind);
            crate::metrics::letter_sent(queued.kind);
            return Ok(None);
        };
        self.letter_written(queued).await;
        Ok(Some(cabinet.value.id))
    }

    /// Journey 6, step 2: the recovery link. Issues a new password by mail ("Данные для
    /// входа"); the old password, every session and every other recovery link stop
    /// working.
    ///
    /// # Errors
    /// [`Problem::InvalidLink`], or [`Error::Unavailable`].
    #[tracing::instrument(
        name = "resident_auth.complete_recovery",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn complete_recovery(
        &self,
        recovery_token: &str,
        context: &RequestContext,
    ) -> Result<Email, Error> {
        let token = Token::from_user(recovery_token).ok_or(Problem::InvalidLink)?;
        let hash = token.hash();
        let now = self.now();
        let link = self.live_link(&hash, LinkPurpose::Recovery, now).await?;
        let (Some(cabinet), Some(credential_version)) =
            (link.value.cabinet, link.value.credential_version)
        else {
            return Err(Problem::InvalidLink.into());
        };
        let issue = Issue::Recovery {
            cabinet,
            credential_version,
        };
        let (email, _) = self
            .issue_credentials(&hash, link, issue, context.locale)
            .await?;
        self.record(
            Event::new(EventKind::RecoveryCompleted, now)
                .about(Some(cabinet), None)
                .from_client(context.client.as_deref()),
        )
        .await;
        // The owner proved the mailbox: the cabinet-wide login cap (what a crowd of
        // attackers' clients could have filled) starts again. Best effort.
        let _ = self
            .store()
            .reset_all(&[
                counters::login_cabinet(&email),
                counters::login_cabinet_client(&email, context.client.as_deref()),
            ])
            .await;
        Ok(email)
    }

    /// Deletes expired sessions, links and counters from the store; returns how many
    /// records went. Call it periodically (e.g. every few minutes) from one instance.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if the store fails.
    #[tracing::instrument(
        name = "resident_auth.purge_expired",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn purge_expired(&self) -> Result<u64, Error> {
        Ok(self.store().purge_expired(self.now()).await?)
    }
}

/// Refuses the operations a temporary password does not open.
fn require_chosen_password(session: &Authenticated) -> Result<(), Error> {
    if session.password_change_required {
        Err(Problem::PasswordChangeRequired.into())
    } else {
        Ok(())
    }
}

/// The client as the list of sessions shows it, at most 64 characters: the browser and
/// system read off the `User-Agent`, and the client address.
fn client_summary(context: &RequestContext) -> Option<String> {
    let software = context.user_agent.as_deref().map(user_agent_summary);
    let summary = match (software, context.client.as_deref()) {
        (Some(software), Some(client)) => format!("{software}, {client}"),
        (Some(software), None) => software,
        (None, Some(client)) => client.to_owned(),
        (None, None) => return None,
    };
    Some(summary.chars().take(64).collect())
}

/// "Firefox on Linux", from a `User-Agent` value; the first product token for clients
/// that are not browsers ("curl").
fn user_agent_summary(user_agent: &str) -> String {
    const BROWSERS: [(&str, &str); 7] = [
        ("YaBrowser/", "Yandex Browser"),
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ];
    const SYSTEMS: [(&str, &str); 6] = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ];
    let browser = BROWSERS
        .iter()
        .find(|(mark, _)| user_agent.contains(mark))
        .map(|(_, name)| *name);
    let system = SYSTEMS
        .iter()
        .find(|(mark, _)| user_agent.contains(mark))
        .map(|(_, name)| *name);
    let product = || {
        let first = user_agent.split(['/', ' ']).next().unwrap_or_default();
        first
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(24)
            .collect::<String>()
    };
    match (browser, system) {
        (Some(browser), Some(system)) => format!("{browser} on {system}"),
        (Some(browser), None) => browser.to_owned(),
        (None, _) => product(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_summarised() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(user_agent_summary(firefox), "Firefox on Linux");
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";
        assert_eq!(user_agent_summary(chrome), "Chrome on Windows");
        let yandex =
            "Mozilla/5.0 (Linux; Android 13) Chrome/120.0 YaBrowser/24.1 Mobile Safari/537.36";
        assert_eq!(user_agent_summary(yandex), "Yandex Browser on Android");
        assert_eq!(user_agent_summary("curl/8.5.0"), "curl");
        assert_eq!(user_agent_summary("\u{7}evil\r\nheader"), "evilheader");
        let context = RequestContext::new(Locale::Ru)
            .with_client("2001:db8:1:2::/64")
            .with_user_agent(firefox);
        assert_eq!(
            client_summary(&context).as_deref(),
            Some("Firefox on Linux, 2001:db8:1:2::/64")
        );
        let long = RequestContext::new(Locale::Ru).with_user_agent("x".repeat(200));
        assert_eq!(client_summary(&long).map(|s| s.chars().count()), Some(24));
        assert_eq!(client_summary(&RequestContext::new(Locale::Ru)), None);
    }
}
