//! The portal the configuration asks for: the service on its adapters, the listeners,
//! start-up, and the examples' own endpoint.

use std::path::Path;

use resident_auth::{config::AuthServiceBuilder, mail::QueuedLetter, ports::Versioned};

use super::*;

mod storage;
use storage::{connect_redis, open_storage};

/// A built portal: the service, and what to tell the operator at start-up.
pub struct Portal {
    /// The configuration it was built from.
    pub config: PortalConfig,
    /// The lifecycle service over the selected adapters.
    pub service: AuthService,
    /// Its background task (delivery, purging): spawn `background.run()`.
    pub background: resident_auth::Background,
    /// Start-up lines: URL, storage, mail, a demo account to try.
    pub banner: Vec<String>,
    /// Where operator actions are recorded: the audit table on PostgreSQL, else the log.
    pub audit: Arc<dyn Audit>,
    /// What to close when the portal stops ([`Stop::close`]).
    pub stop: Stop,
}

/// What a stopping portal closes: the SQLite file's pool, whose write-ahead log is
/// checkpointed and truncated first, so that nothing erased stays in it.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    sqlite: Option<resident_auth_sqlite::SqlitePool>,
}

impl Stop {
    /// Closes what the portal opened; says so on stdout.
    pub async fn close(self) {
        if let Some(pool) = self.sqlite {
            match resident_auth_sqlite::close(&pool).await {
                Ok(()) => {
                    println!("Stopped: the SQLite file is closed, its write-ahead log emptied")
                }
                Err(error) => eprintln!("stopping: the SQLite write-ahead log: {error}"),
            }
        }
    }
}

/// Resolves when the process is asked to stop: Ctrl-C (SIGINT) or SIGTERM.
pub async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

impl std::fmt::Debug for Portal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portal")
            .field("config", &self.config)
            .field("banner", &self.banner)
            .finish_non_exhaustive()
    }
}

impl Portal {
    /// Prints the banner and the `Listening on` line tests wait for.
    pub fn announce(&self, listening_on: &str) {
        for line in &self.banner {
            println!("{line}");
        }
        println!("Listening on {listening_on}");
    }

    /// The HTTP API over the service, as configured: `Secure` cookies when `BASE_URL` is
    /// https, clients told apart as `TRUSTED_PROXIES` and `CLIENT_IPV6_PREFIX` say.
    #[must_use]
    pub fn api(&self) -> Api {
        Api::new(self.service.clone())
            .with_connection_limits(self.config.connection_limits)
            .with_secure_cookies(self.config.secure_cookies())
            .with_client_addressing(self.config.client_addressing.clone())
    }

    /// Binds `BIND` (non-blocking, for any runtime) and announces the portal; with
    /// `ADMIN_BIND`, binds the operators' API's own listener too (`Admin listening on …`).
    ///
    /// # Errors
    /// Exit code 1 (after a message) when an address cannot be bound.
    pub fn listen(&self) -> Result<Listeners, ExitCode> {
        let bind = |address: &str, name: &str| {
            std::net::TcpListener::bind(address)
                .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
                .map_err(|e| {
                    eprintln!("cannot listen on {name} {address}: {e}");
                    ExitCode::FAILURE
                })
        };
        let local = |listener: &std::net::TcpListener, address: &str| {
            listener
                .local_addr()
                .map_or_else(|_| address.to_owned(), |a| a.to_string())
        };
        let portal = bind(&self.config.bind, "BIND")?;
        let admin = match &self.config.admin {
            Some((address, tokens)) => {
                let listener = bind(address, "ADMIN_BIND")?;
                println!("Admin listening on {}", local(&listener, address));
                let admin = self.service.admin().with_audit(self.audit.clone());
                Some((listener, AdminApi::new(admin, tokens.clone())))
            }
            None => None,
        };
        self.announce(&local(&portal, &self.config.bind));
        Ok(Listeners { portal, admin })
    }
}

/// The sockets a portal listens on.
#[derive(Debug)]
pub struct Listeners {
    /// The residents' portal (`BIND`).
    pub portal: std::net::TcpListener,
    /// The operators' API and its own socket (`ADMIN_BIND`), when configured.
    pub admin: Option<(std::net::TcpListener, AdminApi)>,
}

pub(super) fn read_directory_csv(config: &PortalConfig) -> Result<(String, String), ConfigError> {
    match &config.registry_csv {
        Some(path) => std::fs::read_to_string(path)
            .map(|csv| (csv, path.display().to_string()))
            .map_err(|e| ConfigError(format!("REGISTRY_CSV {}: {e}", path.display()))),
        None => Ok((
            DEMO_DIRECTORY.to_owned(),
            "the bundled demo directory".to_owned(),
        )),
    }
}

/// `records`, with sessions, counters and the cabinet snapshots of session checks in `redis`
/// when there is one.
pub(super) fn with_redis<R: Store + 'static>(
    records: R,
    redis: Option<resident_auth_redis::RedisStore>,
) -> Arc<dyn Store> {
    match redis {
        Some(redis) => Arc::new(resident_auth::ports::Cached::new(
            SplitStore::new(records, redis.clone(), redis.clone()),
            redis,
        )),
        None => Arc::new(records),
    }
}

/// Builds the service the configuration asks for: PostgreSQL (migrated, directory
/// imported) or in-memory; SMTP or the outbox.
///
/// # Errors
/// [`ConfigError`] if the directory, the database or the SMTP URL is unusable.
pub async fn build(config: &PortalConfig) -> Result<Portal, ConfigError> {
    let mut banner = vec![format!("Portal: {}", config.base_url)];
    let redis = connect_redis(config, &mut banner).await?;
    let opened = open_storage(config, redis, &mut banner).await?;
    let mail_queue_keys = mail_queue_keys(config, &mut banner)?;
    if let Some(keys) = &mail_queue_keys {
        if let Some(line) =
            letters_no_key_opens(config, keys, opened.waiting, opened.store.as_ref()).await?
        {
            banner.push(line);
        }
    }
    let mailer = mailer(config, &mut banner)?;
    if config.registry_csv.is_none() {
        banner.push(
            "Try it: register as Иванов with account 7800000000001 and your email; \
             the premises number is 12 (the parking place 7800000000002 is 123/456П)"
                .to_owned(),
        );
    }
    let hasher = hasher(config, &mut banner)?;
    let served_regions = config.served_regions.clone();
    let mailed_password_lifetime = config.mailed_password_lifetime;
    let in_request = config.deliver_in_request;
    let (retry_first, claim) = (config.mail_retry_first, config.mail_claim);
    let deadline = config.mail_deadline;
    let mut builder = AuthService::builder(&config.base_url)
        .shared_store(opened.store)
        .shared_directory(opened.directory)
        .shared_mailer(mailer)
        .hasher(hasher)
        .shared_events(opened.events)
        .configure(|auth| {
            auth.served_regions = served_regions;
            auth.mailed_password_lifetime = mailed_password_lifetime;
            auth.delivery.in_request = in_request;
            if let Some(first) = retry_first {
                auth.delivery.retry_first = first;
            }
            if let Some(claim) = claim {
                auth.delivery.claim = claim;
            }
            if let Some(deadline) = deadline {
                auth.delivery.deadline = deadline;
            }
        });
    if let Some(keys) = mail_queue_keys {
        builder = builder.mail_queue_keys(keys);
    }
    let builder = with_link_templates(builder, config.link_templates.clone(), &mut banner);
    let (service, background) = builder.build().map_err(|e| ConfigError(e.to_string()))?;
    Ok(Portal {
        config: config.clone(),
        service,
        background,
        banner,
        audit: opened.audit,
        stop: opened.stop,
    })
}

/// The mail queue's keys: `MAIL_QUEUE_KEY`, else the key file beside the SQLite file (made
/// on first start), else none (in memory: a random key).
fn mail_queue_keys(
    config: &PortalConfig,
    banner: &mut Vec<String>,
) -> Result<Option<MailQueueKeys>, ConfigError> {
    match (&config.mail_queue_keys, config.storage.key_file()) {
        (Some(keys), _) => {
            banner.push("Mail queue key: MAIL_QUEUE_KEY".to_owned());
            Ok(Some(keys.clone()))
        }
        (None, Some(file)) => {
            let (key, made) = key_from_file(&file)?;
            banner.push(format!(
                "Mail queue key: {} ({}; owner-only; queued letters open only with it — keep \
                 it with the database, or set MAIL_QUEUE_KEY)",
                file.display(),
                if made { "made now" } else { "read" }
            ));
            Ok(Some(MailQueueKeys::new(key)))
        }
        (None, None) => Ok(None),
    }
}

/// `SMTP_URL`, else the outbox folder.
fn mailer(config: &PortalConfig, banner: &mut Vec<String>) -> Result<Arc<dyn Mailer>, ConfigError> {
    if let Some(url) = &config.smtp_url {
        let smtp: SmtpConfig = url
            .parse()
            .map_err(|e| ConfigError(format!("SMTP_URL: {e}")))?;
        banner.push(format!("Mail: SMTP {}:{}", smtp.host, smtp.port));
        return Ok(Arc::new(
            SmtpMailer::new(&smtp).map_err(|e| ConfigError(format!("SMTP_URL: {e}")))?,
        ));
    }
    refuse_an_open_outbox(&config.outbox_dir)?;
    banner.push(format!(
        "Mail: each letter is written to {} as an .eml file (owner-only)",
        config.outbox_dir.display()
    ));
    Ok(Arc::new(OutboxMailer::new(
        config.outbox_dir.clone(),
        default_sender(),
    )))
}

/// The hashing pool, and the banner's line on what it runs and what the build assumes.
fn hasher(config: &PortalConfig, banner: &mut Vec<String>) -> Result<Argon2Hasher, ConfigError> {
    let hasher = Argon2Hasher::new(config.hash_params)
        .map_err(|e| ConfigError(format!("argon2 parameters: {e}")))?;
    // What the build may assume of the CPU (RUSTFLAGS `-C target-cpu=…`), beside what
    // argon2 found at run time.
    let built_for = if cfg!(target_feature = "avx512f") {
        "AVX-512"
    } else if cfg!(target_feature = "avx2") {
        "AVX2 (x86-64-v3)"
    } else {
        "the target's baseline"
    };
    banner.push(format!(
        "Password hashing: argon2id m={} KiB, t={}, p={} on the {} core ({} threads; \
         RustCrypto argon2, built for {built_for})",
        config.hash_params.m_cost,
        config.hash_params.t_cost,
        config.hash_params.p_cost,
        Argon2Hasher::core(),
        hasher.workers()
    ));
    Ok(hasher)
}

/// The letters' link templates the configuration names, each said in the banner.
fn with_link_templates(
    mut builder: AuthServiceBuilder,
    templates: LinkTemplates,
    banner: &mut Vec<String>,
) -> AuthServiceBuilder {
    if let Some(template) = templates.confirmation {
        banner.push(format!("Confirmation links: {template}"));
        builder = builder.confirmation_link(template);
    }
    if let Some(template) = templates.recovery {
        banner.push(format!("Recovery links: {template}"));
        builder = builder.recovery_link(template);
    }
    if let Some(template) = templates.email_change {
        banner.push(format!("Email-change links: {template}"));
        builder = builder.email_change_link(template);
    }
    if let Some(template) = templates.email_change_cancel {
        banner.push(format!("Email-change cancel links: {template}"));
        builder = builder.email_change_cancel_link(template);
    }
    builder
}

/// Letters waiting in the queue that none of `keys` opens (the key file was deleted and
/// made anew, or `MAIL_QUEUE_KEY` replaced without `MAIL_QUEUE_OLD_KEY`): residents were
/// told they are on their way, and they would die unsent at the first delivery round.
/// Refused, naming the way out — unless `GIVE_UP_SEALED_LETTERS=1` asks to give them up
/// (marked dead, as a letter no key opens is), which the banner line returned says.
async fn letters_no_key_opens(
    config: &PortalConfig,
    keys: &MailQueueKeys,
    waiting: Vec<Versioned<QueuedLetter>>,
    store: &dyn Store,
) -> Result<Option<String>, ConfigError> {
    let unopenable: Vec<_> = waiting
        .into_iter()
        .filter(|letter| {
            letter
                .value
                .sealed
                .as_ref()
                .is_some_and(|sealed| keys.open(&letter.value.id, sealed).is_err())
        })
        .collect();
    if unopenable.is_empty() {
        return Ok(None);
    }
    let count = unopenable.len();
    let key = match (&config.mail_queue_keys, config.storage.key_file()) {
        (None, Some(file)) => format!("the key file {}", file.display()),
        _ => "MAIL_QUEUE_KEY (and MAIL_QUEUE_OLD_KEY)".to_owned(),
    };
    if !config.give_up_sealed_letters {
        return Err(ConfigError(format!(
            "{count} letters wait in the mail queue sealed under a key that {key} is not: they \
             would never be sent. Restore the key that sealed them (the key file from the \
             backup of the database, or the old key as MAIL_QUEUE_OLD_KEY), or give them up \
             once with GIVE_UP_SEALED_LETTERS=1 (residents ask for those letters again)"
        )));
    }
    let now = resident_auth::config::Clock::now(&resident_auth::config::SystemClock);
    let retention = resident_auth::mail::DeliveryPolicy::default().retention;
    let mut given_up = 0;
    for letter in unopenable {
        let mut dead = letter.value.clone();
        dead.status = resident_auth::mail::LetterStatus::Dead;
        dead.sealed = None;
        dead.last_error = Some("unsealable".to_owned());
        dead.keep_until = Some(now.plus(retention));
        let settled = store
            .swap_letter(
                &dead.id,
                resident_auth::ports::Expected::Version(letter.version),
                Some(&dead),
            )
            .await
            .map_err(|e| ConfigError(format!("giving up a sealed letter: {}", chain(&e))))?;
        if settled {
            given_up += 1;
        }
    }
    Ok(Some(format!(
        "Mail queue: {given_up} of {count} letters sealed under a key {key} is not were given \
         up (GIVE_UP_SEALED_LETTERS=1); unset it for the next start"
    )))
}

/// Refuses an existing outbox folder that other users may enter: its letters carry
/// passwords and links (the outbox makes a new one owner-only).
fn refuse_an_open_outbox(dir: &std::path::Path) -> Result<(), ConfigError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Some(metadata) = std::fs::metadata(dir)
            .ok()
            .filter(std::fs::Metadata::is_dir)
        {
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(ConfigError(format!(
                    "OUTBOX_DIR {shown} may be read by other users (mode {mode:o}), and its \
                     letters carry passwords and links: `chmod 700 {shown}` (and `chmod 600` \
                     its files)",
                    shown = dir.display()
                )));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// An error with its causes, `: `-separated.
pub(super) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The mail queue key in `file` (base64, as `MAIL_QUEUE_KEY`), made from the operating
/// system's random source on first start (owner-only); whether it was made now. As ssh
/// treats a private key, the file is opened without following a symbolic link, and
/// refused unless this process's user owns it and nobody else may read or write it.
pub(super) fn key_from_file(file: &std::path::Path) -> Result<(MailQueueKey, bool), ConfigError> {
    use base64::Engine as _;
    use std::io::{Read as _, Write as _};
    let shown = file.display();
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    match options.open(file) {
        Ok(mut opened) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                let metadata = opened
                    .metadata()
                    .map_err(|e| ConfigError(format!("mail queue key file {shown}: {e}")))?;
                let me = rustix::process::geteuid().as_raw();
                if metadata.uid() != me {
                    return Err(ConfigError(format!(
                        "mail queue key file {shown} belongs to user {} and this process runs \
                         as {me}: another user could have written the key. Make it this user's \
                         (`chown {me} {shown}`) or restore the right file",
                        metadata.uid()
                    )));
                }
                let mode = metadata.mode();
                if mode & 0o077 != 0 {
                    return Err(ConfigError(format!(
                        "mail queue key file {shown} may be read by others (mode {:o}): \
                         `chmod 600 {shown}`",
                        mode & 0o777
                    )));
                }
            }
            let mut text = String::new();
            opened
                .read_to_string(&mut text)
                .map_err(|e| ConfigError(format!("mail queue key file {shown}: {e}")))?;
            let key = MailQueueKey::from_base64(text.trim())
                .map_err(|e| ConfigError(format!("mail queue key file {shown}: {e}")))?;
            Ok((key, false))
        }
        #[cfg(unix)]
        Err(error) if error.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            Err(ConfigError(format!(
                "mail queue key file {shown} is a symbolic link: it is read only as a file of \
                 its own (copy the key there with mode 600)"
            )))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
            let key = MailQueueKey::from_bytes(&bytes)
                .map_err(|e| ConfigError(format!("a new mail queue key: {e}")))?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut out = options
                .open(file)
                .map_err(|e| ConfigError(format!("mail queue key file {shown}: {e}")))?;
            writeln!(
                out,
                "{}",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            )
            .and_then(|()| out.sync_all())
            .map_err(|e| ConfigError(format!("mail queue key file {shown}: {e}")))?;
            Ok((key, true))
        }
        Err(error) => Err(ConfigError(format!("mail queue key file {shown}: {error}"))),
    }
}

pub(super) async fn directory_is_empty(
    pool: &resident_auth_postgres::PgPool,
) -> Result<bool, ConfigError> {
    resident_auth_postgres::directory_is_empty(pool, &resident_auth_postgres::Schema::default())
        .await
        .map_err(|e| ConfigError(format!("DATABASE_URL: {e}")))
}

/// What every example does first: log to stderr (`RUST_LOG`, default `info`), read the
/// environment, build the portal.
///
/// # Errors
/// Exit code 2, after printing the [`ConfigError`] for the operator.
pub async fn start() -> Result<Portal, ExitCode> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a log written to a file or a journal is text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let built = match PortalConfig::from_env() {
        Ok(config) => build(&config).await,
        Err(error) => Err(error),
    };
    let portal = built.map_err(|error| {
        eprintln!("start-up: {error}");
        ExitCode::from(2)
    })?;
    // The metrics: only on METRICS_BIND, the exporter's own listener (an operators'
    // network), never on the residents' one; without it nothing is recorded.
    if let Some(address) = &portal.config.metrics_bind {
        let address: std::net::SocketAddr = address.parse().map_err(|e| {
            eprintln!("start-up: METRICS_BIND {address:?}: {e}");
            ExitCode::from(2)
        })?;
        // Durations as Prometheus histograms (the exporter's default is a summary), from a
        // millisecond to ten seconds.
        let installed = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_seconds".to_owned()),
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ],
            )
            .and_then(|builder| builder.with_http_listener(address).install());
        match installed {
            Ok(()) => {
                resident_auth::events::metrics::describe();
                println!("Metrics listening on {address}");
            }
            Err(error) => eprintln!("metrics: {error}"),
        }
    }
    Ok(portal)
}

/// The examples' own endpoint, `GET /bills`: the resident's selected personal account and
/// its address from the directory.
///
/// # Errors
/// The service's, when the directory cannot be read.
pub async fn bills(
    service: &AuthService,
    session: &resident_auth::journeys::SignedIn,
) -> Result<serde_json::Value, resident_auth::Error> {
    let cabinet = service.cabinet(session).await?;
    let active = cabinet
        .accounts
        .iter()
        .find(|account| cabinet.active_account == Some(account.account_number));
    Ok(serde_json::json!({
        "account_number": active.map(|account| account.account_number.to_string()),
        "address": active.map(|account| account.address.clone()),
    }))
}
