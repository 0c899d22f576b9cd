//! The portal's configuration (environment variables: the examples/README.md) and the adapters it
//! selects.

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use resident_auth::admin::{Audit, TracingAudit};
use resident_auth::letters::LinkTemplate;
use resident_auth::{
    events::{Events, TracingEvents},
    memory::{MemoryDirectory, MemoryStore},
    ports::AccountDirectory,
    ports::Mailer,
    ports::{SplitStore, Store},
    Argon2Hasher, AuthService, HashParams, MailQueueKey, MailQueueKeys, ServedRegions,
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
mod tests {
    use super::*;

    #[test]
    fn defaults_and_variables() {
        let config = PortalConfig::from_lookup(|_| None).unwrap();
        assert_eq!(config.bind, "127.0.0.1:3000");
        assert_eq!(config.base_url, "http://127.0.0.1:3000");
        assert_eq!(config.outbox_dir, PathBuf::from("./outbox"));
        assert_eq!(config.hash_params, HashParams::default());
        assert_eq!(
            config.storage,
            Storage::Sqlite(PathBuf::from("./resident-auth.db"))
        );
        assert_eq!(
            config.storage.key_file(),
            Some(PathBuf::from("./resident-auth.db.mail-queue-key"))
        );
        assert!(!config.secure_cookies());
        let storage = |variables: &[(&str, &str)]| {
            let variables: Vec<(String, String)> = variables
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect();
            PortalConfig::from_lookup(|name| {
                variables
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            })
            .map(|config| config.storage)
        };
        assert_eq!(storage(&[("STORAGE", "memory")]).unwrap(), Storage::Memory);
        assert_eq!(
            storage(&[("SQLITE_PATH", "/var/lib/portal/residents.db")]).unwrap(),
            Storage::Sqlite(PathBuf::from("/var/lib/portal/residents.db"))
        );
        let postgres = [
            ("DATABASE_URL", "postgres://portal@127.0.0.1/portal"),
            ("MAIL_QUEUE_KEY", KEY),
            ("SMTP_URL", "smtp://127.0.0.1:2525?tls=none"),
        ];
        assert!(matches!(storage(&postgres).unwrap(), Storage::Postgres(_)));
        let mut conflicting = postgres.to_vec();
        conflicting.push(("STORAGE", "memory"));
        assert!(storage(&conflicting).is_err());
        assert!(storage(&[("STORAGE", "redis")]).is_err());
        let config = PortalConfig::from_lookup(|name| match name {
            "BIND" => Some("0.0.0.0:8080".into()),
            "BASE_URL" => Some("https://кабинет-жителя.рф".into()),
            "SERVED_REGIONS" => Some("78,47".into()),
            _ => None,
        })
        .unwrap();
        assert!(config.secure_cookies());
        assert!(config
            .served_regions
            .serves(&"4700000000005".parse().unwrap()));
        assert!(!config
            .served_regions
            .serves(&"7700000000005".parse().unwrap()));
        assert!(
            PortalConfig::from_lookup(|n| (n == "SERVED_REGIONS").then(|| "spb".into())).is_err()
        );
    }

    const KEY: &str = "W+GnW7ovu4+pLcpFJ0PaV7gPF+26mTSjS/eVsQfLjUM=";

    #[test]
    fn a_database_without_smtp_needs_an_outbox_chosen_on_purpose() {
        let error = PortalConfig::from_lookup(|name| match name {
            "DATABASE_URL" => Some("postgres://portal@127.0.0.1/portal".into()),
            "MAIL_QUEUE_KEY" => Some(KEY.into()),
            _ => None,
        })
        .unwrap_err();
        assert!(error.to_string().contains("OUTBOX_DIR"), "{error}");
        for extra in ["SMTP_URL", "OUTBOX_DIR"] {
            let config = PortalConfig::from_lookup(|name| match name {
                "DATABASE_URL" => Some("postgres://portal@127.0.0.1/portal".into()),
                "MAIL_QUEUE_KEY" => Some(KEY.into()),
                n if n == extra => Some("smtp://127.0.0.1:2525?tls=none".into()),
                _ => None,
            });
            assert!(config.is_ok(), "{extra}");
        }
    }

    /// Queued letters on a database are sealed with a key every instance shares: without
    /// one (or with a malformed one) the portal refuses to start and says how to make one.
    #[test]
    fn a_database_needs_a_mail_queue_key_and_says_how_to_make_one() {
        let with = |key: Option<&str>, old: Option<&str>| {
            PortalConfig::from_lookup(|name| match name {
                "DATABASE_URL" => Some("postgres://portal@127.0.0.1/portal".into()),
                "SMTP_URL" => Some("smtp://127.0.0.1:2525?tls=none".into()),
                "MAIL_QUEUE_KEY" => key.map(str::to_owned),
                "MAIL_QUEUE_OLD_KEY" => old.map(str::to_owned),
                _ => None,
            })
        };
        let error = with(None, None).unwrap_err().to_string();
        assert!(error.contains("MAIL_QUEUE_KEY") && error.contains("openssl rand -base64 32"));
        let error = with(Some("c2hvcnQ="), None).unwrap_err().to_string();
        assert!(error.contains("32 bytes in base64"), "{error}");
        // 32 zero bytes started the portal before (docs/security.md: weak mail queue keys).
        let zeros = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        for (key, old) in [(Some(zeros), None), (Some(KEY), Some(zeros))] {
            let error = with(key, old).unwrap_err().to_string();
            assert!(
                error.contains("not random") && error.contains("openssl rand -base64 32"),
                "{error}"
            );
        }
        assert!(with(None, Some(KEY)).is_err(), "an old key alone");
        assert!(with(Some(KEY), Some(KEY))
            .unwrap()
            .mail_queue_keys
            .is_some());
        // Without DATABASE_URL none is asked for: SQLite keeps one in a file beside the
        // database (made at the first build), memory makes a random one.
        let config = PortalConfig::from_lookup(|_| None).unwrap();
        assert!(config.mail_queue_keys.is_none());
    }

    #[test]
    fn link_templates_are_read_and_refused_with_their_code() {
        let config = PortalConfig::from_lookup(|name| match name {
            "CONFIRMATION_LINK" => Some("https://app.example.org/confirm/{token}".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            config
                .link_templates
                .confirmation
                .map(|t| t.to_string())
                .as_deref(),
            Some("https://app.example.org/confirm/{token}")
        );
        assert!(config.link_templates.recovery.is_none());
        let error = PortalConfig::from_lookup(|name| {
            (name == "RECOVERY_LINK").then(|| "https://app.example.org/reset".into())
        })
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("RECOVERY_LINK") && error.contains("link_template.placeholder"),
            "{error}"
        );
    }

    #[test]
    fn trusted_proxies_and_the_ipv6_prefix() {
        let config = PortalConfig::from_lookup(|name| match name {
            "TRUSTED_PROXIES" => Some("10.0.0.0/8, ::1".into()),
            "CLIENT_IPV6_PREFIX" => Some("56".into()),
            _ => None,
        })
        .unwrap();
        let key = config.client_addressing.client_key(
            Some("10.1.1.1".parse().unwrap()),
            None,
            Some("2001:db8:aa:bbcc::1"),
        );
        assert_eq!(key.as_deref(), Some("2001:db8:aa:bb00::/56"));
        for (name, value) in [
            ("TRUSTED_PROXIES", "10.0.0.0/40"),
            ("CLIENT_IPV6_PREFIX", "0"),
        ] {
            assert!(
                PortalConfig::from_lookup(|n| (n == name).then(|| value.into())).is_err(),
                "{name}={value}"
            );
        }
    }

    #[test]
    fn the_demo_directory_parses() {
        assert_eq!(MemoryDirectory::from_csv(DEMO_DIRECTORY).unwrap().len(), 5);
    }

    /// The default: a SQLite file that keeps residents, and a mail queue key made once
    /// beside it (owner-only) and read at every later start.
    #[tokio::test]
    async fn builds_the_embedded_default_on_a_sqlite_file_with_its_key_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("residents.db");
        let variables = |name: &str| match name {
            "OUTBOX_DIR" => Some(dir.path().join("outbox").display().to_string()),
            "SQLITE_PATH" => Some(database.display().to_string()),
            "ARGON2_TEST_PARAMS" => Some("1".into()),
            _ => None,
        };
        let config = PortalConfig::from_lookup(variables).unwrap();
        let portal = build(&config).await.unwrap();
        let banner = portal.banner.join("\n");
        assert!(banner.contains("SQLite file"), "{banner}");
        assert!(
            banner.contains("imported into the database (5 new"),
            "{banner}"
        );
        assert!(banner.contains("mail-queue-key (made now"), "{banner}");
        let core = format!("on the {} core", Argon2Hasher::core());
        assert!(banner.contains(&core), "the banner names the argon2 core");
        assert!(banner.contains(".eml"), "{banner}");
        let key_file = config.storage.key_file().unwrap();
        let key = std::fs::read_to_string(&key_file).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |path: &std::path::Path| {
                std::fs::metadata(path).unwrap().permissions().mode() & 0o777
            };
            assert_eq!(mode(&key_file), 0o600);
            assert_eq!(mode(&database), 0o600);
        }
        drop(portal);
        // A restart reads the same key and leaves the directory as it is.
        let portal = build(&config).await.unwrap();
        let banner = portal.banner.join("\n");
        assert!(banner.contains("mail-queue-key (read"), "{banner}");
        assert!(!banner.contains("imported"), "{banner}");
        assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key);
        drop(portal);
        // A key file others may read is refused.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
            let error = build(&config).await.unwrap_err().to_string();
            assert!(error.contains("chmod 600"), "{error}");
            std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
            build(&config).await.unwrap();
        }
    }

    /// As ssh does with its keys: a key file that is a symbolic link, or that another
    /// user owns, is refused (it was accepted before); so are a database file and an
    /// outbox that other users may read (the database was used silently before).
    #[cfg(unix)]
    #[tokio::test]
    async fn files_others_may_read_or_replace_are_refused_with_the_way_out() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("residents.db");
        let outbox = dir.path().join("outbox");
        let variables = |name: &str| match name {
            "OUTBOX_DIR" => Some(outbox.display().to_string()),
            "SQLITE_PATH" => Some(database.display().to_string()),
            "ARGON2_TEST_PARAMS" => Some("1".into()),
            _ => None,
        };
        let config = PortalConfig::from_lookup(variables).unwrap();
        drop(build(&config).await.unwrap());
        let key_file = config.storage.key_file().unwrap();

        // A symbolic link to a private key file elsewhere.
        let elsewhere = dir.path().join("elsewhere-key");
        std::fs::rename(&key_file, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &key_file).unwrap();
        let error = build(&config).await.unwrap_err().to_string();
        assert!(error.contains("symbolic link"), "{error}");
        std::fs::remove_file(&key_file).unwrap();
        std::fs::rename(&elsewhere, &key_file).unwrap();
        drop(build(&config).await.unwrap());

        // Another user's file (only root can hand a file over to test it).
        if std::os::unix::fs::chown(&key_file, Some(65534), None).is_ok() {
            let error = build(&config).await.unwrap_err().to_string();
            assert!(error.contains("belongs to user 65534"), "{error}");
            std::os::unix::fs::chown(&key_file, Some(rustix::process::geteuid().as_raw()), None)
                .unwrap();
        }

        // A database restored with the default umask.
        std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = build(&config).await.unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");
        std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o600)).unwrap();

        // An outbox others may enter.
        std::fs::create_dir_all(&outbox).unwrap();
        std::fs::set_permissions(&outbox, std::fs::Permissions::from_mode(0o755)).unwrap();
        let error = build(&config).await.unwrap_err().to_string();
        assert!(error.contains("chmod 700"), "{error}");
        std::fs::set_permissions(&outbox, std::fs::Permissions::from_mode(0o700)).unwrap();
        build(&config).await.unwrap();
    }

    #[tokio::test]
    async fn builds_in_memory_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let config = PortalConfig::from_lookup(|name| match name {
            "OUTBOX_DIR" => Some(dir.path().join("outbox").display().to_string()),
            "STORAGE" => Some("memory".into()),
            "ARGON2_TEST_PARAMS" => Some("1".into()),
            _ => None,
        })
        .unwrap();
        let portal = build(&config).await.unwrap();
        assert!(portal.banner.iter().any(|l| l.contains("in memory")));
        assert!(!portal.banner.iter().any(|l| l.contains("Mail queue key")));
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "no file made"
        );
    }
}
