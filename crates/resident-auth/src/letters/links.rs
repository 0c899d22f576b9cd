//! Where letters' links point: [`Links`], with the library's own pages or the host's
//! [`LinkTemplate`]s.

use super::*;

/// Builds the links letters carry. By default they point at the library's own pages under
/// the base URL, `{base}/confirm?token=…`, `{base}/recover?token=…`,
/// `{base}/email/confirm?token=…` and `{base}/email/cancel?token=…` (served by
/// `resident-auth-axum` and `resident-auth-actix` with their `pages` feature); a host with a front end of its own points
/// each kind at its own route with a [`LinkTemplate`].
///
/// ```
/// use resident_auth::letters::{LinkTemplate, Links};
/// let links = Links::new("https://portal.example.org")
///     .with_confirmation("https://app.example.org/confirm/{token}".parse::<LinkTemplate>()?);
/// assert_eq!(
///     links.pages_needed(),
///     [
///         "https://portal.example.org/recover",
///         "https://portal.example.org/email/confirm",
///         "https://portal.example.org/email/cancel",
///     ]
/// );
/// # Ok::<(), resident_auth::errors::InvalidLinkTemplate>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    base_url: String,
    confirmation: Option<LinkTemplate>,
    recovery: Option<LinkTemplate>,
    email_change: Option<LinkTemplate>,
    email_change_cancel: Option<LinkTemplate>,
}

impl Links {
    /// Links under `base_url` (e.g. `https://кабинет-жителя.рф`); a trailing slash is
    /// ignored.
    #[must_use]
    pub fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.trim().trim_end_matches('/').to_owned(),
            confirmation: None,
            recovery: None,
            email_change: None,
            email_change_cancel: None,
        }
    }

    /// Confirmation links ("Подтверждение e-mail", also for an added account) point at
    /// `template` instead of `{base}/confirm?token=…`.
    #[must_use]
    pub fn with_confirmation(mut self, template: LinkTemplate) -> Self {
        self.confirmation = Some(template);
        self
    }

    /// Recovery links ("Восстановление пароля") point at `template` instead of
    /// `{base}/recover?token=…`.
    #[must_use]
    pub fn with_recovery(mut self, template: LinkTemplate) -> Self {
        self.recovery = Some(template);
        self
    }

    /// Email-change links ("Подтверждение нового e-mail") point at `template` instead of
    /// `{base}/email/confirm?token=…`.
    #[must_use]
    pub fn with_email_change(mut self, template: LinkTemplate) -> Self {
        self.email_change = Some(template);
        self
    }

    /// The links that cancel an email change ("Смена e-mail", to the address in force)
    /// point at `template` instead of `{base}/email/cancel?token=…`.
    #[must_use]
    pub fn with_email_change_cancel(mut self, template: LinkTemplate) -> Self {
        self.email_change_cancel = Some(template);
        self
    }

    /// The base URL.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The library's own pages these links land on (`{base}/confirm`, `{base}/recover`,
    /// `{base}/email/confirm`, `{base}/email/cancel`):
    /// a host must serve each, or give its kind a [`LinkTemplate`]. Empty when every kind
    /// points at the host's own routes.
    #[must_use]
    pub fn pages_needed(&self) -> Vec<String> {
        [
            (self.confirmation.is_none(), "/confirm"),
            (self.recovery.is_none(), "/recover"),
            (self.email_change.is_none(), "/email/confirm"),
            (self.email_change_cancel.is_none(), "/email/cancel"),
        ]
        .into_iter()
        .filter(|(needed, _)| *needed)
        .map(|(_, path)| format!("{}{path}", self.base_url))
        .collect()
    }

    /// The confirmation link for `token`.
    #[must_use]
    pub fn confirmation(&self, token: &Token) -> SecretString {
        self.link(self.confirmation.as_ref(), "/confirm", token)
    }

    /// The recovery link for `token`.
    #[must_use]
    pub fn recovery(&self, token: &Token) -> SecretString {
        self.link(self.recovery.as_ref(), "/recover", token)
    }

    /// The email-change link for `token`.
    #[must_use]
    pub fn email_change(&self, token: &Token) -> SecretString {
        self.link(self.email_change.as_ref(), "/email/confirm", token)
    }

    /// The link that cancels an email change, for `token`.
    #[must_use]
    pub fn email_change_cancel(&self, token: &Token) -> SecretString {
        self.link(self.email_change_cancel.as_ref(), "/email/cancel", token)
    }

    fn link(&self, template: Option<&LinkTemplate>, page: &str, token: &Token) -> SecretString {
        match template {
            Some(template) => template.fill(token),
            None => SecretString::from(format!("{}{page}?token={}", self.base_url, token.expose())),
        }
    }
}

/// Where one kind of letter's link points on a host's own front end: an absolute `https`
/// URL with exactly one `{token}` after its host (in the path, query or fragment), e.g.
/// `https://app.example.org/confirm/{token}` or `https://app.example.org/#/reset?t={token}`.
/// Plain `http` is accepted for `localhost`, `127.0.0.1` and `[::1]` only (development).
/// The token is 43 URL-safe base64 characters, so it needs no escaping anywhere there.
///
/// ```
/// use resident_auth::letters::LinkTemplate;
/// assert!("https://app.example.org/confirm/{token}".parse::<LinkTemplate>().is_ok());
/// assert!("http://127.0.0.1:5173/confirm?token={token}".parse::<LinkTemplate>().is_ok());
/// for refused in [
///     "http://app.example.org/confirm/{token}",     // not https
///     "/confirm/{token}",                            // not absolute
///     "https://app.example.org/confirm",             // no placeholder
///     "https://app.example.org/{token}/{token}",     // two
///     "https://{token}.example.org/",                // in the host
///     "https://app.example.org/confirm/{tokne}",     // a stray brace
/// ] {
///     assert!(refused.parse::<LinkTemplate>().is_err(), "{refused}");
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkTemplate {
    before: String,
    after: String,
}

/// The placeholder a [`LinkTemplate`] carries once.
const TOKEN_PLACEHOLDER: &str = "{token}";

impl LinkTemplate {
    fn fill(&self, token: &Token) -> SecretString {
        SecretString::from(format!("{}{}{}", self.before, token.expose(), self.after))
    }
}

impl std::str::FromStr for LinkTemplate {
    type Err = crate::errors::InvalidLinkTemplate;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        use crate::errors::InvalidLinkTemplate as Invalid;
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) || text.len() > 2048 {
            return Err(Invalid::Malformed);
        }
        let (scheme, rest) = text.split_once("://").ok_or(Invalid::NotAbsoluteHttps)?;
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, _) = rest.split_at(authority_end);
        if authority.contains(['{', '}']) {
            return Err(Invalid::PlaceholderInHost);
        }
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        let host_name = host
            .strip_prefix('[')
            .and_then(|h| h.split_once(']'))
            .map_or_else(
                || host.split(':').next().unwrap_or(""),
                |(inside, _)| inside,
            );
        if host_name.is_empty() || authority.contains('@') {
            return Err(Invalid::Malformed);
        }
        let loopback = matches!(host_name, "localhost" | "127.0.0.1" | "::1");
        match scheme {
            "https" => {}
            "http" if loopback => {}
            _ => return Err(Invalid::NotAbsoluteHttps),
        }
        let (before, after) = text
            .split_once(TOKEN_PLACEHOLDER)
            .ok_or(Invalid::Placeholder)?;
        if after.contains(TOKEN_PLACEHOLDER) {
            return Err(Invalid::Placeholder);
        }
        if before.contains(['{', '}']) || after.contains(['{', '}']) {
            return Err(Invalid::Malformed);
        }
        Ok(Self {
            before: before.to_owned(),
            after: after.to_owned(),
        })
    }
}

impl std::fmt::Display for LinkTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{TOKEN_PLACEHOLDER}{}", self.before, self.after)
    }
}
