//! The account lifecycle service: every step of the guide's journeys, and every policy —
//! limits, windows, locks, expiry and the order of steps. The store only keeps records and
//! offers atomic primitives ([`crate::ports`]); what a record means is decided here.

use std::{sync::Arc, time::Duration};

use secrecy::SecretString;
use serde::Deserialize;

mod addresses;
pub mod admin;
mod background;
mod builder;
mod client;
mod email_change;
mod login;
mod mail;
mod own_data;
mod password_and_sessions;
mod recovery;
mod registration;
mod store_health;

pub use background::Background;
pub use builder::{AuthServiceBuilder, BuildError, MissingPort};
pub use mail::{DeliveryPolicy, DeliveryReport};
pub use password_and_sessions::SessionView;

use crate::{
    clock::{Clock, Timestamp},
    config::{AccountDirectory, ServedRegions},
    errors::problem::{Error, Problem},
    events::{Event, EventKind, Events, TracingEvents},
    hasher::{CredentialHasher, HashParams, Verification},
    ids::{CabinetId, SessionId},
    letters::{Letter, LetterContent, Links},
    mail::{MailQueueKeys, Mailer, QueuedLetter},
    ports::{
        Cabinet, CabinetKey, CabinetSwap, Count, CounterKey, Expected, Link, LinkAdvance,
        LinkPurpose, Session, Store, StoreError, Version, Versioned,
    },
    secret::{generate_password, HashedPassword, Token, TokenHash},
    AccountNumber, Email, Locale, Premises, Surname,
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
    /// Email changes asked for per cabinet (5 per day), each mailing two letters; one
    /// client's asks for any cabinet count against `registration_per_client` too.
    pub email_changes_per_cabinet: Limit,
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
    /// How long the addresses shown with a cabinet ([`AuthService::cabinet`]) are kept in
    /// memory after they were read from the directory (default 1 minute; zero reads the
    /// directory every time). Registration and activation always read the directory.
    pub addresses_kept_for: Duration,
    /// How often the [`Background`] task purges expired sessions, links, letters and idle
    /// throttles (default 5 minutes).
    pub purge_every: Duration,
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
            email_changes_per_cabinet: Limit::new(5, 24 * HOUR),
            session_idle: 30 * MINUTE,
            session_absolute: 12 * HOUR,
            session_touch_interval: MINUTE,
            credentials_lease: MINUTE,
            mailed_password_lifetime: None,
            delivery: DeliveryPolicy::default(),
            addresses_kept_for: MINUTE,
            purge_every: 5 * MINUTE,
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
pub struct SignedIn {
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

impl SignedIn {
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
    addresses: Arc<addresses::AddressCache>,
    health: Arc<store_health::StoreHealth>,
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
        CounterKey::scoped("login:cabinet-client", client.unwrap_or("-"), email)
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
        CounterKey::scoped(
            "premises:account",
            format_args!("{}s", window.as_secs()),
            account,
        )
    }
    pub(super) fn registration_account(account: &AccountNumber) -> CounterKey {
        CounterKey::new("registration:account", account)
    }
    pub(super) fn email_change_cabinet(cabinet: &super::CabinetId) -> CounterKey {
        CounterKey::new("email-change:cabinet", cabinet)
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
            addresses: Arc::default(),
            health: Arc::default(),
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

    fn store(&self) -> CountedStore<'_> {
        CountedStore {
            inner: self.ports.store.as_ref(),
            health: &self.health,
        }
    }

    /// Whether the store is known to be unreachable now.
    pub(crate) fn store_is_down(&self) -> bool {
        self.health.is_down()
    }

    /// Resolves when a call finds the store unreachable.
    pub(crate) async fn store_went_down(&self) {
        self.health.went_down.notified().await;
    }

    /// One cheap read that goes to the store even while it is known to be down (the
    /// background task's probe); its answer marks the store up or keeps it down.
    pub(crate) async fn probe_store(&self) {
        if !self.health.start_probe() {
            return;
        }
        let nobody = CabinetId::from_bytes([0; 16]);
        let answer = self
            .ports
            .store
            .cabinet(crate::ports::CabinetKey::Id(&nobody))
            .await;
        self.health.observe(&answer);
        self.health.probed();
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
fn require_chosen_password(session: &SignedIn) -> Result<(), Error> {
    if session.password_change_required {
        Err(Problem::PasswordChangeRequired.into())
    } else {
        Ok(())
    }
}

/// The service's view of its store: every call forwarded to the store's own, each
/// failure counted once ([`crate::events::metrics::STORE_ERRORS`]; a primitive the store does not
/// offer is not a failure).
#[derive(Clone, Copy)]
pub(crate) struct CountedStore<'a> {
    inner: &'a dyn Store,
    health: &'a store_health::StoreHealth,
}

impl CountedStore<'_> {
    fn inner(&self) -> &dyn Store {
        self.inner
    }

    /// Every call: refused at once while the store is known to be down (one probe at a
    /// time excepted), its answer telling whether the store is up ([`store_health`]).
    async fn counted<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, StoreError>> + Send,
    ) -> Result<T, StoreError> {
        let admission = self.health.admit();
        if admission == store_health::Admission::Refuse {
            return Err(store_health::StoreHealth::refusal());
        }
        let result = call.await;
        self.health.observe(&result);
        if admission == store_health::Admission::Probe {
            self.health.probed();
        }
        if result.is_err() {
            crate::events::metrics::store_error();
        }
        result
    }
}

crate::ports::forward_store!(['a] CountedStore<'a>, CountedStore::inner, CountedStore::counted);
