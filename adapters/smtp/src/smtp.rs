//! The SMTP transport.

use std::{fmt, str::FromStr, time::Duration};

use async_trait::async_trait;
use lettre::{
    message::Mailbox,
    transport::smtp::{
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
        PoolConfig,
    },
    AsyncSmtpTransport, AsyncTransport, Tokio1Executor,
};
use resident_auth::{
    letters::Letter,
    mail::{LetterId, MailError, Mailer},
};
use secrecy::{ExposeSecret, SecretString};

use crate::message::{build_message, default_sender};

/// How the connection to the server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Security {
    /// No TLS (a relay on localhost, tests). Credentials then travel in the clear.
    None,
    /// Plain connect, then STARTTLS, required (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    ImplicitTls,
}

/// Everything needed to reach an SMTP server. `Debug` hides the password.
#[derive(Clone)]
#[non_exhaustive]
pub struct SmtpConfig {
    /// Server host name (also the name its certificate must carry).
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Plain, STARTTLS or implicit TLS.
    pub security: Security,
    /// AUTH user name and password, if the server wants them.
    pub credentials: Option<(String, SecretString)>,
    /// The `From` of every letter.
    pub from: Mailbox,
    /// Connect, command and data timeout.
    pub timeout: Duration,
    /// Connections kept open for reuse.
    pub max_connections: u32,
    /// An extra trusted root certificate (PEM), e.g. a private CA or a test server's.
    pub extra_root_certificate: Option<Vec<u8>>,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .field("from", &self.from.to_string())
            .field("timeout", &self.timeout)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

/// An `SMTP_URL` that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SmtpConfigError {
    /// Not a URL.
    #[error("SMTP_URL is not a URL: {0}")]
    NotAUrl(String),
    /// A scheme other than `smtp` or `smtps`.
    #[error("SMTP_URL scheme must be smtp or smtps, not {0:?}")]
    Scheme(String),
    /// No host.
    #[error("SMTP_URL has no host")]
    NoHost,
    /// A query parameter with an unknown name or value.
    #[error("SMTP_URL parameter {0:?} is not understood")]
    Parameter(String),
}

impl FromStr for SmtpConfig {
    type Err = SmtpConfigError;

    /// Reads `smtp[s]://[user[:password]@]host[:port][?tls=none|starttls][&from=…][&timeout=secs]`.
    ///
    /// `smtp://` defaults to STARTTLS on port 587 unless `tls=none` (then port 25);
    /// `smtps://` is implicit TLS on port 465. User and password are percent-decoded.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let url =
            url::Url::parse(text.trim()).map_err(|e| SmtpConfigError::NotAUrl(e.to_string()))?;
        let mut security = match url.scheme() {
            "smtp" => Security::StartTls,
            "smtps" => Security::ImplicitTls,
            other => return Err(SmtpConfigError::Scheme(other.to_owned())),
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or(SmtpConfigError::NoHost)?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let mut from = default_sender();
        let mut timeout = Duration::from_secs(10);
        for (name, value) in url.query_pairs() {
            match (name.as_ref(), value.as_ref()) {
                ("tls", "none") if security == Security::StartTls => security = Security::None,
                ("tls", "starttls") if security == Security::StartTls => {}
                ("from", mailbox) => {
                    from = mailbox
                        .parse()
                        .map_err(|_| SmtpConfigError::Parameter("from".into()))?;
                }
                ("timeout", secs) => {
                    let secs: u64 = secs
                        .parse()
                        .map_err(|_| SmtpConfigError::Parameter("timeout".into()))?;
                    timeout = Duration::from_secs(secs);
                }
                (other, _) => return Err(SmtpConfigError::Parameter(other.to_owned())),
            }
        }
        let port = url.port().unwrap_or(match security {
            Security::None => 25,
            Security::StartTls => 587,
            Security::ImplicitTls => 465,
        });
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let credentials = (!url.username().is_empty()).then(|| {
            (
                decode(url.username()),
                SecretString::from(decode(url.password().unwrap_or(""))),
            )
        });
        Ok(Self {
            host,
            port,
            security,
            credentials,
            from,
            timeout,
            max_connections: 4,
            extra_root_certificate: None,
        })
    }
}

/// The [`Mailer`] over SMTP: pooled connections (reused across letters), timeouts, and
/// errors sorted into transient (unreachable, timeout, 4xx) and permanent (5xx).
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for `config`. No connection is made until the first letter.
    ///
    /// # Errors
    /// A permanent [`MailError`] if the TLS settings (e.g. the extra root certificate)
    /// are invalid.
    pub fn new(config: &SmtpConfig) -> Result<Self, MailError> {
        let tls_parameters = || {
            let mut builder = TlsParameters::builder(config.host.clone());
            if let Some(pem) = &config.extra_root_certificate {
                let certificate = Certificate::from_pem(pem).map_err(MailError::permanent)?;
                builder = builder.add_root_certificate(certificate);
            }
            builder.build_rustls().map_err(MailError::permanent)
        };
        let tls = match config.security {
            Security::None => Tls::None,
            Security::StartTls => Tls::Required(tls_parameters()?),
            Security::ImplicitTls => Tls::Wrapper(tls_parameters()?),
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.clone())
                .port(config.port)
                .tls(tls)
                .timeout(Some(config.timeout))
                .pool_config(PoolConfig::new().max_size(config.max_connections.max(1)));
        if let Some((user, password)) = &config.credentials {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        Ok(Self {
            transport: builder.build(),
            from: config.from.clone(),
        })
    }

    /// Checks that the server answers and accepts our TLS and credentials.
    ///
    /// # Errors
    /// The [`MailError`] a letter would get.
    pub async fn test_connection(&self) -> Result<(), MailError> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(MailError::retryable("SMTP server did not answer NOOP")),
            Err(error) => Err(classify(error)),
        }
    }
}

/// 5xx answers are permanent, and so is what the client refuses to send through this
/// server (a Unicode mailbox to a server that does not offer SMTPUTF8); everything else
/// (connect, TLS, timeout, 4xx) may pass.
fn classify(error: lettre::transport::smtp::Error) -> MailError {
    if error.is_permanent() || error.is_client() {
        MailError::permanent(error)
    } else {
        MailError::retryable(error)
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    #[tracing::instrument(name = "smtp.send", skip_all, err(level = "debug", Display))]
    async fn send(&self, id: &LetterId, letter: &Letter) -> Result<(), MailError> {
        let message = build_message(id, letter, &self.from)?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(classify)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let c: SmtpConfig = "smtps://no_reply%40eis24.me:p%40ss@smtp.example.org"
            .parse()
            .unwrap();
        assert_eq!(
            (c.security, c.port, c.host.as_str()),
            (Security::ImplicitTls, 465, "smtp.example.org")
        );
        let (user, password) = c.credentials.unwrap();
        assert_eq!(
            (user.as_str(), password.expose_secret()),
            ("no_reply@eis24.me", "p@ss")
        );
        let c: SmtpConfig = "smtp://127.0.0.1:2525?tls=none&timeout=3".parse().unwrap();
        assert_eq!(
            (c.security, c.port, c.timeout),
            (Security::None, 2525, Duration::from_secs(3))
        );
        assert!(c.credentials.is_none());
        let c: SmtpConfig = "smtp://mail.example.org?from=Portal%20%3Cportal%40example.org%3E"
            .parse()
            .unwrap();
        assert_eq!((c.security, c.port), (Security::StartTls, 587));
        assert_eq!(c.from.email.to_string(), "portal@example.org");
        assert!(matches!(
            "http://x".parse::<SmtpConfig>(),
            Err(SmtpConfigError::Scheme(_))
        ));
        assert!(matches!(
            "smtp://x?tls=maybe".parse::<SmtpConfig>(),
            Err(SmtpConfigError::Parameter(_))
        ));
        assert!(matches!(
            "smtps://x?tls=none".parse::<SmtpConfig>(),
            Err(SmtpConfigError::Parameter(_))
        ));
        assert!(matches!(
            "not a url".parse::<SmtpConfig>(),
            Err(SmtpConfigError::NotAUrl(_))
        ));
    }

    #[test]
    fn debug_hides_the_password() {
        let c: SmtpConfig = "smtp://user:hunter2@mail.example.org".parse().unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
