//! Building a service: [`AuthServiceBuilder`].

use super::*;

/// Builds an [`AuthService`]: the base URL is required, and so are a store, a directory
/// and a mailer; the hasher defaults to argon2id at [`HashParams::default`] on one thread
/// per core, the clock to the system clock, the configuration to [`AuthConfig::new`].
///
/// ```
/// use resident_auth::{memory::{MemoryDirectory, MemoryStore, RecordingMailer}, AuthService};
/// let (service, _background) = AuthService::builder("https://portal.example.org")
///     .store(MemoryStore::new())
///     .directory(MemoryDirectory::default())
///     .mailer(RecordingMailer::new())
///     .configure(|config| config.session_idle = std::time::Duration::from_secs(600))
///     .build()?;
/// assert_eq!(service.config().links.base_url(), "https://portal.example.org");
/// # Ok::<(), resident_auth::config::BuildError>(())
/// ```
#[must_use = "call build() to get the service"]
pub struct AuthServiceBuilder {
    pub(super) config: AuthConfig,
    pub(super) store: Option<Arc<dyn Store>>,
    pub(super) directory: Option<Arc<dyn AccountDirectory>>,
    pub(super) mailer: Option<Arc<dyn Mailer>>,
    pub(super) hasher: Option<Arc<dyn CredentialHasher>>,
    pub(super) clock: Option<Arc<dyn Clock>>,
    pub(super) events: Option<Arc<dyn Events>>,
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
    /// A required port was not given.
    #[error("AuthService::builder: no {0} given")]
    Missing(MissingPort),
    /// The default hasher could not start.
    #[error("AuthService::builder: the default hasher: {0}")]
    Hasher(#[from] crate::hasher::HashError),
}

/// A port [`AuthServiceBuilder::build`] needs and was not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MissingPort {
    /// [`AuthServiceBuilder::store`]
    Store,
    /// [`AuthServiceBuilder::directory`]
    Directory,
    /// [`AuthServiceBuilder::mailer`]
    Mailer,
}

impl std::fmt::Display for MissingPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Store => "store",
            Self::Directory => "directory",
            Self::Mailer => "mailer",
        })
    }
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
    /// let (service, _background) = AuthService::builder("https://portal.example.org")
    ///     .store(MemoryStore::new())
    ///     .directory(MemoryDirectory::default())
    ///     .mailer(RecordingMailer::new())
    ///     .confirmation_link("https://app.example.org/confirm/{token}".parse()?)
    ///     .recovery_link("https://app.example.org/reset/{token}".parse()?)
    ///     .email_change_link("https://app.example.org/email/{token}".parse()?)
    ///     .email_change_cancel_link("https://app.example.org/email/{token}/cancel".parse()?)
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

    /// Email-change letters link to `template` on the host's own front end instead of the
    /// library's `{base}/email/confirm` page ([`Links::with_email_change`]).
    pub fn email_change_link(mut self, template: crate::letters::LinkTemplate) -> Self {
        self.config.links = self.config.links.with_email_change(template);
        self
    }

    /// The notices of an email change link to `template` on the host's own front end
    /// instead of the library's `{base}/email/cancel` page
    /// ([`Links::with_email_change_cancel`]).
    pub fn email_change_cancel_link(mut self, template: crate::letters::LinkTemplate) -> Self {
        self.config.links = self.config.links.with_email_change_cancel(template);
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

    /// The service, and its [`Background`] task (delivering the mail queue, purging
    /// expired records) to run for the life of the process.
    ///
    /// # Errors
    /// [`BuildError::Missing`] naming a port not given; [`BuildError::Hasher`] if the
    /// default hasher cannot start its threads.
    pub fn build(self) -> Result<(AuthService, Background), BuildError> {
        let hasher = match self.hasher {
            Some(hasher) => hasher,
            None => Arc::new(crate::hasher::Argon2Hasher::new(HashParams::default())?),
        };
        let ports = Ports {
            store: self.store.ok_or(BuildError::Missing(MissingPort::Store))?,
            directory: self
                .directory
                .ok_or(BuildError::Missing(MissingPort::Directory))?,
            mailer: self
                .mailer
                .ok_or(BuildError::Missing(MissingPort::Mailer))?,
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
        let service = AuthService::new(ports, self.config);
        Ok((service.clone(), Background::new(service)))
    }
}
