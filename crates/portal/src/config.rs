//! The portal's configuration (environment variables: the examples/README.md) and the adapters it
//! selects.

use std::{path::PathBuf, process::ExitCode, sync::Arc};

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
        let trusted_proxies = match lookup("TRUSTED_PROXIES") {
            Some(list) => list
                .split(',')
                .map(|block| block.trim().parse::<Cidr>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ConfigError(format!("TRUSTED_PROXIES: {e}")))?,
            None => Vec::new(),
        };
        let ipv6_prefix = match lookup("CLIENT_IPV6_PREFIX") {
            Some(prefix) => prefix
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| (1..=128).contains(p))
                .ok_or_else(|| {
                    ConfigError(format!("CLIENT_IPV6_PREFIX must be 1–128, not {prefix:?}"))
                })?,
            None => 64,
        };
        let mailed_password_lifetime = match lookup("TEMPORARY_PASSWORD_HOURS") {
            Some(hours) => Some(
                hours
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|h| (1..=24 * 365).contains(h))
                    .map(|h| std::time::Duration::from_secs(h * 3600))
                    .ok_or_else(|| {
                        ConfigError(format!(
                            "TEMPORARY_PASSWORD_HOURS must be 1–8760 hours, not {hours:?}"
                        ))
                    })?,
            ),
            None => None,
        };
        let admin = match (lookup("ADMIN_BIND"), lookup("ADMIN_OPERATORS")) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(ConfigError(
                    "ADMIN_BIND is set but ADMIN_OPERATORS is not: nobody could use the \
                     operators' API. Make a token with `resident-auth-admin new-operator-token \
                     NAME` and put the line it prints in ADMIN_OPERATORS."
                        .to_owned(),
                ))
            }
            (Some(bind), Some(operators)) => Some((
                bind,
                OperatorTokens::parse(&operators)
                    .map_err(|e| ConfigError(format!("ADMIN_OPERATORS: {e}")))?,
            )),
        };
        let database_url = lookup("DATABASE_URL");
        let storage = match (lookup("DATABASE_URL"), lookup("STORAGE").as_deref()) {
            (Some(url), None | Some("postgres")) => Storage::Postgres(url),
            (None, Some("memory")) => Storage::Memory,
            (None, None | Some("sqlite")) => Storage::Sqlite(
                lookup("SQLITE_PATH")
                    .map_or_else(|| PathBuf::from("./resident-auth.db"), PathBuf::from),
            ),
            (Some(_), Some(other)) => {
                return Err(ConfigError(format!(
                    "DATABASE_URL is set, so STORAGE must be unset or `postgres`, not {other:?}"
                )))
            }
            (None, Some(other)) => {
                return Err(ConfigError(format!(
                    "STORAGE must be `sqlite` (the default, SQLITE_PATH), `memory`, or unset with \
                     DATABASE_URL for PostgreSQL; not {other:?}"
                )))
            }
        };
        let key = |name: &str| {
            lookup(name)
                .map(|text| {
                    MailQueueKey::from_base64(&text)
                        .map_err(|e| ConfigError(format!("{name}: {e}")))
                })
                .transpose()
        };
        let mail_queue_keys = match (key("MAIL_QUEUE_KEY")?, key("MAIL_QUEUE_OLD_KEY")?) {
            (None, Some(_)) => {
                return Err(ConfigError(
                    "MAIL_QUEUE_OLD_KEY is set but MAIL_QUEUE_KEY is not: the old key only \
                     opens letters; set the new one in MAIL_QUEUE_KEY"
                        .to_owned(),
                ))
            }
            (None, None) if database_url.is_some() => {
                return Err(ConfigError(format!(
                    "DATABASE_URL is set but MAIL_QUEUE_KEY is not: queued letters (with \
                     passwords and links) are sealed with it, and every instance needs the \
                     same key. Set MAIL_QUEUE_KEY to 32 random bytes in base64: {MAKE_A_KEY}"
                )))
            }
            (None, None) => None,
            (Some(current), old) => Some(match old {
                Some(old) => MailQueueKeys::new(current).with_previous(old),
                None => MailQueueKeys::new(current),
            }),
        };
        let deliver_in_request = match lookup("MAIL_DELIVERY").as_deref() {
            None | Some("worker") => false,
            Some("in-request") => true,
            Some(other) => {
                return Err(ConfigError(format!(
                    "MAIL_DELIVERY must be `worker` or `in-request`, not {other:?}"
                )))
            }
        };
        let mail_retry_first = match lookup("MAIL_RETRY_FIRST_MS") {
            Some(ms) => Some(
                ms.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|ms| (1..=3_600_000).contains(ms))
                    .map(std::time::Duration::from_millis)
                    .ok_or_else(|| {
                        ConfigError(format!(
                            "MAIL_RETRY_FIRST_MS must be 1–3600000 milliseconds, not {ms:?}"
                        ))
                    })?,
            ),
            None => None,
        };
        let mail_claim = match lookup("MAIL_CLAIM_SECONDS") {
            Some(seconds) => Some(
                seconds
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|s| (1..=3600).contains(s))
                    .map(std::time::Duration::from_secs)
                    .ok_or_else(|| {
                        ConfigError(format!(
                            "MAIL_CLAIM_SECONDS must be 1–3600 seconds, not {seconds:?}"
                        ))
                    })?,
            ),
            None => None,
        };
        let mail_deadline = match lookup("MAIL_GIVE_UP_HOURS") {
            Some(hours) => Some(
                hours
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|h| (1..=24 * 30).contains(h))
                    .map(|h| std::time::Duration::from_secs(h * 3600))
                    .ok_or_else(|| {
                        ConfigError(format!(
                            "MAIL_GIVE_UP_HOURS must be 1–720 hours, not {hours:?}"
                        ))
                    })?,
            ),
            None => None,
        };
        let number = |name: &str, range: std::ops::RangeInclusive<u64>| match lookup(name) {
            Some(text) => text
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| range.contains(n))
                .map(Some)
                .ok_or_else(|| {
                    ConfigError(format!(
                        "{name} must be {}–{}, not {text:?}",
                        range.start(),
                        range.end()
                    ))
                }),
            None => Ok(None),
        };
        let mut connection_limits = ConnectionLimits::default();
        if let Some(seconds) = number("HEAD_TIMEOUT_SECS", 1..=3600)? {
            connection_limits =
                connection_limits.with_head_timeout(std::time::Duration::from_secs(seconds));
        }
        if let Some(seconds) = number("BODY_TIMEOUT_SECS", 1..=3600)? {
            connection_limits =
                connection_limits.with_body_timeout(std::time::Duration::from_secs(seconds));
        }
        if let Some(connections) = number("MAX_CONNECTIONS", 1..=1_000_000)? {
            connection_limits = connection_limits
                .with_max_connections(usize::try_from(connections).unwrap_or(usize::MAX));
        }
        let template = |name: &str| {
            lookup(name)
                .map(|text| {
                    text.trim().parse::<LinkTemplate>().map_err(|e| {
                        ConfigError(format!("{name}: {e} ({}), not {text:?}", e.code()))
                    })
                })
                .transpose()
        };
        let link_templates = LinkTemplates {
            confirmation: template("CONFIRMATION_LINK")?,
            recovery: template("RECOVERY_LINK")?,
            email_change: template("EMAIL_CHANGE_LINK")?,
            email_change_cancel: template("EMAIL_CHANGE_CANCEL_LINK")?,
        };
        let smtp_url = lookup("SMTP_URL");
        let outbox_dir = lookup("OUTBOX_DIR");
        if database_url.is_some() && smtp_url.is_none() && outbox_dir.is_none() {
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
            storage,
            redis: lookup("REDIS_URL").map(|url| {
                let prefix = lookup("REDIS_PREFIX").unwrap_or_else(|| "resident-auth".to_owned());
                (url, prefix)
            }),
            smtp_url,
            hash_params,
            client_addressing: ClientAddressing::new(trusted_proxies, ipv6_prefix),
            mailed_password_lifetime,
            admin,
            mail_queue_keys,
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

#[cfg(test)]
mod tests;
