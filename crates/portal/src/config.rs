//! The portal's configuration (environment variables: the examples/README.md) and the adapters it
//! selects.

use std::{ops::RangeInclusive, path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use resident_auth::admin::{Audit, TracingAudit};
use resident_auth::letters::LinkTemplate;
use resident_auth::{
    config::{AccountDirectory, Argon2Hasher, HashParams, ServedRegions},
    events::{Events, TracingEvents},
    mail::{MailQueueKey, MailQueueKeys, Mailer},
    memory::{MemoryDirectory, MemoryStore},
    ports::{SplitStore, Store},
    AuthService,
};
use resident_auth_http::{AdminApi, Api, Cidr, ClientAddressing, ConnectionLimits, OperatorTokens};
use resident_auth_smtp::{default_sender, OutboxMailer, SmtpConfig, SmtpMailer};

mod portal;
pub use portal::{bills, build, start, stop_requested, Listeners, Portal, Stop};

/// The bundled demo directory, used when `REGISTRY_CSV` is not set.
pub const DEMO_DIRECTORY: &str = include_str!("../data/demo-directory.csv");

/// Where each kind of letter's link points, when not at the pages under `BASE_URL`.
#[derive(Debug, Clone, Default)]
pub struct LinkTemplates {
    /// `CONFIRMATION_LINK`.
    pub confirmation: Option<LinkTemplate>,
    /// `RECOVERY_LINK`.
    pub recovery: Option<LinkTemplate>,
    /// `EMAIL_CHANGE_LINK`.
    pub email_change: Option<LinkTemplate>,
    /// `EMAIL_CHANGE_CANCEL_LINK`.
    pub email_change_cancel: Option<LinkTemplate>,
}

/// Everything the portal reads from the environment.
#[derive(Debug, Clone)]
pub struct PortalConfig {
    /// `BIND`: the listening address (default `127.0.0.1:3000`).
    pub bind: String,
    /// `BASE_URL`: where links in letters point (default `http://{BIND}`).
    pub base_url: String,
    /// `CONFIRMATION_LINK`, `RECOVERY_LINK`, `EMAIL_CHANGE_LINK` and
    /// `EMAIL_CHANGE_CANCEL_LINK`: link templates on the host's own front end
    /// (`https://app.example/confirm/{token}`) instead of the pages under `BASE_URL`.
    pub link_templates: LinkTemplates,
    /// `REGISTRY_CSV`: the billing directory file (default: the bundled demo).
    pub registry_csv: Option<PathBuf>,
    /// `SERVED_REGIONS`: comma list of region codes (default: all).
    pub served_regions: ServedRegions,
    /// `OUTBOX_DIR`: where letters are written without SMTP (default `./outbox`).
    pub outbox_dir: PathBuf,
    /// Where residents are kept: `DATABASE_URL` (PostgreSQL), else `STORAGE=memory`, else
    /// the SQLite file `SQLITE_PATH` (default `./resident-auth.db`).
    pub storage: Storage,
    /// `REDIS_URL` (and `REDIS_PREFIX`, default `resident-auth`): sessions and throttle
    /// counters in Redis, shared by every instance, the records where `storage` says
    /// (default: everything in `storage`).
    pub redis: Option<(String, String)>,
    /// `SMTP_URL`: the SMTP server (default: the outbox).
    pub smtp_url: Option<String>,
    /// Argon2 parameters (default OWASP's minimum). `ARGON2_TEST_PARAMS=1` selects fast,
    /// insecure ones for test runs only.
    pub hash_params: HashParams,
    /// `TRUSTED_PROXIES` (comma list of CIDR blocks) and `CLIENT_IPV6_PREFIX` (default 64):
    /// how per-client limits tell clients apart.
    pub client_addressing: ClientAddressing,
    /// `TEMPORARY_PASSWORD_HOURS`: mailed passwords are temporary, valid this many hours
    /// and until the resident chooses one at first login (default: unset, as the guide).
    pub mailed_password_lifetime: Option<std::time::Duration>,
    /// `ADMIN_BIND`: the operators' API listens here (off when unset), with
    /// `ADMIN_OPERATORS` (`name=<SHA-256 of the token>`, comma-separated; required then).
    pub admin: Option<(String, OperatorTokens)>,
    /// `MAIL_QUEUE_KEY` (32 bytes, base64; required with `DATABASE_URL`) and
    /// `MAIL_QUEUE_OLD_KEY` (the key being rotated out, still opening what it sealed): what
    /// seals links and passwords in queued letters. Unset: on SQLite, the key file beside the
    /// database (made on first start); in memory, a random key.
    pub mail_queue_keys: Option<MailQueueKeys>,
    /// `GIVE_UP_SEALED_LETTERS=1`: letters waiting in the queue that no configured key
    /// opens are given up at this start (default: the portal refuses to start and says
    /// how many wait, and whose key would open them).
    pub give_up_sealed_letters: bool,
    /// `MAIL_DELIVERY=in-request`: also attempt each letter in the request that queued it
    /// (the test suites read letters right after a step); default: the delivery worker alone.
    pub deliver_in_request: bool,
    /// `METRICS_BIND`: `GET /metrics` listens here (never on the residents' listener);
    /// unset, no metrics are recorded.
    pub metrics_bind: Option<String>,
    /// `MAIL_RETRY_FIRST_MS`: the wait before a failed letter's first retry (default 5 s;
    /// each retry doubles it, up to 15 minutes).
    pub mail_retry_first: Option<std::time::Duration>,
    /// `MAIL_CLAIM_SECONDS`: how long a delivery holds the letters it claimed (default 120);
    /// a letter whose instance died mid-delivery is sent by another after it.
    pub mail_claim: Option<std::time::Duration>,
    /// `MAIL_GIVE_UP_HOURS`: a letter not sent this long after it was queued is dead
    /// (default 24).
    pub mail_deadline: Option<std::time::Duration>,
    /// `HEAD_TIMEOUT_SECS` (request head and idle connection, default 10),
    /// `BODY_TIMEOUT_SECS` (request body, default 10) and `MAX_CONNECTIONS` (per process,
    /// default 512): what slow clients are allowed.
    pub connection_limits: ConnectionLimits,
}

/// Where the portal keeps residents.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Storage {
    /// The SQLite file (`SQLITE_PATH`, default `./resident-auth.db`): the default.
    Sqlite(PathBuf),
    /// PostgreSQL (`DATABASE_URL`).
    Postgres(String),
    /// In memory (`STORAGE=memory`): everything is lost when the process stops.
    Memory,
}

impl Storage {
    /// The key file beside a SQLite database: `<file>.mail-queue-key`.
    #[must_use]
    pub fn key_file(&self) -> Option<PathBuf> {
        match self {
            Storage::Sqlite(path) => {
                let mut name = path.clone().into_os_string();
                name.push(".mail-queue-key");
                Some(PathBuf::from(name))
            }
            Storage::Postgres(_) | Storage::Memory => None,
        }
    }
}

/// How to make a mail queue key, for the start-up errors that ask for one.
const MAKE_A_KEY: &str =
    "make one with `openssl rand -base64 32` (or `head -c 32 /dev/urandom | base64`)";

/// A configuration or start-up failure, with a message for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl PortalConfig {
    /// Reads the process environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable that cannot be understood.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// Reads variables through `lookup` (tests pass a map).
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable that cannot be understood.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let lookup: Lookup<'_> = &lookup;
        let bind = lookup("BIND").unwrap_or_else(|| "127.0.0.1:3000".to_owned());
        let served_regions = match lookup("SERVED_REGIONS") {
            Some(list) => list.parse().map_err(|_| {
                ConfigError(format!(
                    "SERVED_REGIONS must be a comma list of two-digit codes, not {list:?}"
                ))
            })?,
            None => ServedRegions::all(),
        };
        let hash_params = if lookup("ARGON2_TEST_PARAMS").as_deref() == Some("1") {
            // The black-box tests' fast parameters: no protection, never for production.
            HashParams::new(64, 1, 1).map_err(|e| ConfigError(format!("argon2: {e}")))?
        } else {
            HashParams::default()
        };
        let client_addressing = client_addressing(lookup)?;
        let mailed_password_lifetime = hours(lookup, "TEMPORARY_PASSWORD_HOURS", 24 * 365)?;
        let admin = admin(lookup)?;
        let storage = storage(lookup)?;
        let on_postgres = matches!(storage, Storage::Postgres(_));
        let mail_queue_keys = mail_queue_keys(lookup, on_postgres)?;
        let deliver_in_request = deliver_in_request(lookup)?;
        let mail_retry_first = number(
            lookup,
            "MAIL_RETRY_FIRST_MS",
            1..=3_600_000,
            " milliseconds",
        )?
        .map(Duration::from_millis);
        let mail_claim =
            number(lookup, "MAIL_CLAIM_SECONDS", 1..=3600, " seconds")?.map(Duration::from_secs);
        let mail_deadline = hours(lookup, "MAIL_GIVE_UP_HOURS", 24 * 30)?;
        let connection_limits = connection_limits(lookup)?;
        let link_templates = link_templates(lookup)?;
        let smtp_url = lookup("SMTP_URL");
        let outbox_dir = lookup("OUTBOX_DIR");
        if on_postgres && smtp_url.is_none() && outbox_dir.is_none() {
            // A deployment on a real database that forgot SMTP would otherwise write every
            // resident's password into ./outbox on this machine's disk without a word.
            return Err(ConfigError(
                "DATABASE_URL is set but SMTP_URL is not: letters (with passwords and links) \
                 would be written as files. Set SMTP_URL to send them, or set OUTBOX_DIR to \
                 the directory where they may be written on purpose."
                    .to_owned(),
            ));
        }
        Ok(Self {
            base_url: lookup("BASE_URL").unwrap_or_else(|| format!("http://{bind}")),
            bind,
            link_templates,
            registry_csv: lookup("REGISTRY_CSV").map(PathBuf::from),
            served_regions,
            outbox_dir: outbox_dir.map_or_else(|| PathBuf::from("./outbox"), PathBuf::from),
            mail_queue_keys,
            storage,
            redis: lookup("REDIS_URL").map(|url| {
                let prefix = lookup("REDIS_PREFIX").unwrap_or_else(|| "resident-auth".to_owned());
                (url, prefix)
            }),
            smtp_url,
            hash_params,
            client_addressing,
            mailed_password_lifetime,
            admin,
            give_up_sealed_letters: lookup("GIVE_UP_SEALED_LETTERS").as_deref() == Some("1"),
            deliver_in_request,
            metrics_bind: lookup("METRICS_BIND"),
            mail_retry_first,
            mail_claim,
            mail_deadline,
            connection_limits,
        })
    }

    /// Whether the session cookie must be `Secure` (links use https).
    #[must_use]
    pub fn secure_cookies(&self) -> bool {
        self.base_url.starts_with("https://")
    }
}

/// How the configuration reads a variable: the environment, or a test's map.
type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// `name` as a whole number within `range` (`unit` follows the range in the refusal).
fn number(
    lookup: Lookup<'_>,
    name: &str,
    range: RangeInclusive<u64>,
    unit: &str,
) -> Result<Option<u64>, ConfigError> {
    let Some(text) = lookup(name) else {
        return Ok(None);
    };
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| range.contains(n))
        .map(Some)
        .ok_or_else(|| {
            ConfigError(format!(
                "{name} must be {}–{}{unit}, not {text:?}",
                range.start(),
                range.end()
            ))
        })
}

/// `name` as a number of hours, 1 to `most`.
fn hours(lookup: Lookup<'_>, name: &str, most: u64) -> Result<Option<Duration>, ConfigError> {
    Ok(number(lookup, name, 1..=most, " hours")?.map(|h| Duration::from_secs(h * 3600)))
}

/// `DATABASE_URL`, `STORAGE` and `SQLITE_PATH`: where residents are kept.
fn storage(lookup: Lookup<'_>) -> Result<Storage, ConfigError> {
    match (lookup("DATABASE_URL"), lookup("STORAGE").as_deref()) {
        (Some(url), None | Some("postgres")) => Ok(Storage::Postgres(url)),
        (None, Some("memory")) => Ok(Storage::Memory),
        (None, None | Some("sqlite")) => Ok(Storage::Sqlite(
            lookup("SQLITE_PATH")
                .map_or_else(|| PathBuf::from("./resident-auth.db"), PathBuf::from),
        )),
        (Some(_), Some(other)) => Err(ConfigError(format!(
            "DATABASE_URL is set, so STORAGE must be unset or `postgres`, not {other:?}"
        ))),
        (None, Some(other)) => Err(ConfigError(format!(
            "STORAGE must be `sqlite` (the default, SQLITE_PATH), `memory`, or unset with \
             DATABASE_URL for PostgreSQL; not {other:?}"
        ))),
    }
}

/// `MAIL_QUEUE_KEY` and `MAIL_QUEUE_OLD_KEY`; required on PostgreSQL (every instance needs
/// the same key).
fn mail_queue_keys(
    lookup: Lookup<'_>,
    on_postgres: bool,
) -> Result<Option<MailQueueKeys>, ConfigError> {
    let key = |name: &str| {
        lookup(name)
            .map(|text| {
                MailQueueKey::from_base64(&text).map_err(|e| ConfigError(format!("{name}: {e}")))
            })
            .transpose()
    };
    match (key("MAIL_QUEUE_KEY")?, key("MAIL_QUEUE_OLD_KEY")?) {
        (None, Some(_)) => Err(ConfigError(
            "MAIL_QUEUE_OLD_KEY is set but MAIL_QUEUE_KEY is not: the old key only \
             opens letters; set the new one in MAIL_QUEUE_KEY"
                .to_owned(),
        )),
        (None, None) if on_postgres => Err(ConfigError(format!(
            "DATABASE_URL is set but MAIL_QUEUE_KEY is not: queued letters (with \
             passwords and links) are sealed with it, and every instance needs the \
             same key. Set MAIL_QUEUE_KEY to 32 random bytes in base64: {MAKE_A_KEY}"
        ))),
        (None, None) => Ok(None),
        (Some(current), None) => Ok(Some(MailQueueKeys::new(current))),
        (Some(current), Some(old)) => Ok(Some(MailQueueKeys::new(current).with_previous(old))),
    }
}

/// `TRUSTED_PROXIES` and `CLIENT_IPV6_PREFIX`: who the client is for per-client limits.
fn client_addressing(lookup: Lookup<'_>) -> Result<ClientAddressing, ConfigError> {
    let trusted_proxies = match lookup("TRUSTED_PROXIES") {
        Some(list) => list
            .split(',')
            .map(|block| block.trim().parse::<Cidr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ConfigError(format!("TRUSTED_PROXIES: {e}")))?,
        None => Vec::new(),
    };
    let ipv6_prefix = number(lookup, "CLIENT_IPV6_PREFIX", 1..=128, "")?
        .map_or(64, |prefix| u8::try_from(prefix).unwrap_or(64));
    Ok(ClientAddressing::new(trusted_proxies, ipv6_prefix))
}

/// `ADMIN_BIND` and `ADMIN_OPERATORS`: the operators' listener, never without operators.
fn admin(lookup: Lookup<'_>) -> Result<Option<(String, OperatorTokens)>, ConfigError> {
    match (lookup("ADMIN_BIND"), lookup("ADMIN_OPERATORS")) {
        (None, _) => Ok(None),
        (Some(_), None) => Err(ConfigError(
            "ADMIN_BIND is set but ADMIN_OPERATORS is not: nobody could use the \
             operators' API. Make a token with `resident-auth-admin new-operator-token \
             NAME` and put the line it prints in ADMIN_OPERATORS."
                .to_owned(),
        )),
        (Some(bind), Some(operators)) => Ok(Some((
            bind,
            OperatorTokens::parse(&operators)
                .map_err(|e| ConfigError(format!("ADMIN_OPERATORS: {e}")))?,
        ))),
    }
}

/// `MAIL_DELIVERY`: by the background worker (the default) or within the request.
fn deliver_in_request(lookup: Lookup<'_>) -> Result<bool, ConfigError> {
    match lookup("MAIL_DELIVERY").as_deref() {
        None | Some("worker") => Ok(false),
        Some("in-request") => Ok(true),
        Some(other) => Err(ConfigError(format!(
            "MAIL_DELIVERY must be `worker` or `in-request`, not {other:?}"
        ))),
    }
}

/// `HEAD_TIMEOUT_SECS`, `BODY_TIMEOUT_SECS` and `MAX_CONNECTIONS`.
fn connection_limits(lookup: Lookup<'_>) -> Result<ConnectionLimits, ConfigError> {
    let mut limits = ConnectionLimits::default();
    if let Some(seconds) = number(lookup, "HEAD_TIMEOUT_SECS", 1..=3600, "")? {
        limits = limits.with_head_timeout(Duration::from_secs(seconds));
    }
    if let Some(seconds) = number(lookup, "BODY_TIMEOUT_SECS", 1..=3600, "")? {
        limits = limits.with_body_timeout(Duration::from_secs(seconds));
    }
    if let Some(connections) = number(lookup, "MAX_CONNECTIONS", 1..=1_000_000, "")? {
        limits = limits.with_max_connections(usize::try_from(connections).unwrap_or(usize::MAX));
    }
    Ok(limits)
}

/// The four letters' link templates, each optional.
fn link_templates(lookup: Lookup<'_>) -> Result<LinkTemplates, ConfigError> {
    let template = |name: &str| {
        lookup(name)
            .map(|text| {
                text.trim()
                    .parse::<LinkTemplate>()
                    .map_err(|e| ConfigError(format!("{name}: {e} ({}), not {text:?}", e.code())))
            })
            .transpose()
    };
    Ok(LinkTemplates {
        confirmation: template("CONFIRMATION_LINK")?,
        recovery: template("RECOVERY_LINK")?,
        email_change: template("EMAIL_CHANGE_LINK")?,
        email_change_cancel: template("EMAIL_CHANGE_CANCEL_LINK")?,
    })
}

#[cfg(test)]
mod tests;
