//! The three letters of the guide, and their rendering to subject, text and HTML.
//!
//! Rendering is pure and shared: the SMTP adapter and the outbox mailer both send what
//! [`Letter::render`] returns.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::{secret::Token, Email, Locale};

mod links;
mod texts;
pub use links::{LinkTemplate, Links};

/// A letter to send: who gets it, in which language, and what it carries.
///
/// `Debug` shows the kind and the recipient, never a link or a password.
#[derive(Clone)]
pub struct Letter {
    /// The recipient.
    pub to: Email,
    /// The language to write in.
    pub locale: Locale,
    /// What the letter carries.
    pub content: LetterContent,
}

/// What a letter carries. Links and passwords stay inside `secrecy` types.
#[derive(Clone)]
#[non_exhaustive]
pub enum LetterContent {
    /// "Подтверждение e-mail": the confirmation link (journeys 1 and 7).
    ConfirmEmail {
        /// `{base}/confirm?token=…`
        link: SecretString,
    },
    /// "Данные для входа": login and the generated password (journeys 3, 6, 7).
    Credentials {
        /// The login: the cabinet's email.
        login: Email,
        /// The generated password.
        password: SecretString,
        /// Whether the password is temporary: valid for a limited time and until the
        /// resident chooses one at first login ([`crate::config::AuthConfig::mailed_password_lifetime`]).
        temporary: bool,
    },
    /// "Восстановление пароля": the recovery link (journey 6).
    RecoverPassword {
        /// `{base}/recover?token=…`
        link: SecretString,
    },
    /// "Пароль изменён": the notice that the cabinet's password was changed (no secret).
    PasswordChanged,
    /// "Подтверждение нового e-mail": the link that makes this address the cabinet's
    /// login (journey 12), mailed to the new address.
    ConfirmEmailChange {
        /// `{base}/email/confirm?token=…`
        link: SecretString,
    },
    /// "Смена e-mail": the notice to the address in force that a change was asked for,
    /// with the link that cancels it ("это был не я", journey 12).
    EmailChangeRequested {
        /// `{base}/email/cancel?token=…`
        link: SecretString,
    },
    /// "Личный кабинет закрыт": the resident closed the cabinet; everything about it is
    /// erased (no secret, no link).
    CabinetClosed,
    /// "Лицевой счёт отвязан": an operator unlinked a personal account from the cabinet.
    AccountUnlinked {
        /// The account no longer in the cabinet.
        account: crate::AccountNumber,
    },
}

/// Which letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LetterKind {
    /// "Подтверждение e-mail".
    ConfirmEmail,
    /// "Данные для входа".
    Credentials,
    /// "Восстановление пароля".
    RecoverPassword,
    /// "Пароль изменён".
    PasswordChanged,
    /// "Лицевой счёт отвязан".
    AccountUnlinked,
    /// "Личный кабинет закрыт".
    CabinetClosed,
    /// "Подтверждение нового e-mail".
    ConfirmEmailChange,
    /// "Смена e-mail".
    EmailChangeRequested,
}

impl LetterKind {
    const ALL: [LetterKind; 8] = [
        LetterKind::ConfirmEmail,
        LetterKind::Credentials,
        LetterKind::RecoverPassword,
        LetterKind::PasswordChanged,
        LetterKind::AccountUnlinked,
        LetterKind::CabinetClosed,
        LetterKind::ConfirmEmailChange,
        LetterKind::EmailChangeRequested,
    ];

    /// The stored name: `confirm_email`, `credentials`, `recover_password`,
    /// `password_changed`, `account_unlinked`, `cabinet_closed`, `confirm_email_change`,
    /// `email_change_requested`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            LetterKind::ConfirmEmail => "confirm_email",
            LetterKind::Credentials => "credentials",
            LetterKind::RecoverPassword => "recover_password",
            LetterKind::PasswordChanged => "password_changed",
            LetterKind::AccountUnlinked => "account_unlinked",
            LetterKind::CabinetClosed => "cabinet_closed",
            LetterKind::ConfirmEmailChange => "confirm_email_change",
            LetterKind::EmailChangeRequested => "email_change_requested",
        }
    }

    /// The kind with this stored name.
    ///
    /// ```
    /// use resident_auth::letters::LetterKind;
    /// assert_eq!(LetterKind::from_name("credentials"), Some(LetterKind::Credentials));
    /// assert_eq!(LetterKind::from_name("spam"), None);
    /// ```
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl LetterContent {
    /// Which letter this is.
    #[must_use]
    pub fn kind(&self) -> LetterKind {
        match self {
            LetterContent::ConfirmEmail { .. } => LetterKind::ConfirmEmail,
            LetterContent::Credentials { .. } => LetterKind::Credentials,
            LetterContent::RecoverPassword { .. } => LetterKind::RecoverPassword,
            LetterContent::PasswordChanged => LetterKind::PasswordChanged,
            LetterContent::AccountUnlinked { .. } => LetterKind::AccountUnlinked,
            LetterContent::CabinetClosed => LetterKind::CabinetClosed,
            LetterContent::ConfirmEmailChange { .. } => LetterKind::ConfirmEmailChange,
            LetterContent::EmailChangeRequested { .. } => LetterKind::EmailChangeRequested,
        }
    }
}

impl fmt::Debug for Letter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Letter")
            .field("to", &self.to)
            .field("locale", &self.locale)
            .field("kind", &self.content.kind())
            .finish_non_exhaustive()
    }
}

/// A rendered letter: subject, plain-text part and HTML part. It holds the secret the
/// letter carries, so `Debug` shows the subject only.
#[derive(Clone)]
pub struct RenderedLetter {
    subject: String,
    text: SecretString,
    html: SecretString,
}

impl RenderedLetter {
    /// The subject line (unencoded; transports apply RFC 2047).
    #[must_use]
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The plain-text part.
    #[must_use]
    pub fn text(&self) -> &str {
        self.text.expose_secret()
    }

    /// The HTML part.
    #[must_use]
    pub fn html(&self) -> &str {
        self.html.expose_secret()
    }
}

impl fmt::Debug for RenderedLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderedLetter")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Escapes text for HTML element content and attribute values (`&<>"'`).
///
/// ```
/// assert_eq!(resident_auth::letters::escape_html("<a href='x'>"), "&lt;a href=&#39;x&#39;&gt;");
/// ```
#[must_use]
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

fn html_page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:Arial,sans-serif;color:#222;max-width:560px\">\
         <h1 style=\"font-size:20px\">{title}</h1>{body}</body></html>\n",
        title = escape_html(title)
    )
}

fn button(link: &str, label: &str) -> String {
    format!(
        "<p><a href=\"{href}\" style=\"display:inline-block;padding:12px 20px;background:#2e7d32;\
         color:#fff;text-decoration:none;border-radius:4px\">{label}</a></p>\
         <p style=\"font-size:12px;color:#555\">{href}</p>",
        href = escape_html(link),
        label = escape_html(label)
    )
}

/// A letter whose point is one link (confirmation, recovery, email change): the intro,
/// the link as a button (and as text), and what to do if the letter was unexpected.
fn link_letter(words: &texts::LinkLetter, link: &str) -> (&'static str, String, String) {
    let texts::LinkLetter {
        subject,
        intro,
        action,
        ignore,
    } = *words;
    let text = format!("{intro}\n\n{action}:\n{link}\n\n{ignore}\n");
    let html = html_page(
        subject,
        &format!(
            "<p>{}</p>{}<p>{}</p>",
            escape_html(intro),
            button(link, action),
            escape_html(ignore)
        ),
    );
    (subject, text, html)
}

/// The letter with the login and the password.
fn credentials_letter(
    words: &texts::CredentialsLetter,
    login: &Email,
    password: &str,
    temporary: bool,
) -> (&'static str, String, String) {
    let texts::CredentialsLetter {
        subject,
        intro,
        login_label,
        password_label,
        ..
    } = *words;
    let mut outro = words.outro.to_owned();
    if temporary {
        outro.push_str(words.temporary);
    }
    let text =
        format!("{intro}\n\n{login_label}: {login}\n{password_label}: {password}\n\n{outro}\n");
    let html = html_page(
        subject,
        &format!(
            "<p>{}</p><p>{}: <b>{}</b><br>{}: <b><code>{}</code></b></p><p>{}</p>",
            escape_html(intro),
            login_label,
            escape_html(login.as_str()),
            password_label,
            escape_html(password),
            escape_html(&outro)
        ),
    );
    (subject, text, html)
}

/// A letter of one paragraph.
fn notice(subject: &'static str, body: &str) -> (&'static str, String, String) {
    let html = html_page(subject, &format!("<p>{}</p>", escape_html(body)));
    (subject, format!("{body}\n"), html)
}

impl Letter {
    /// Renders the letter in its locale.
    ///
    /// ```
    /// use secrecy::SecretString;
    /// use resident_auth::{letters::Letter, letters::LetterContent, Locale};
    /// let letter = Letter {
    ///     to: "resident@example.org".parse()?,
    ///     locale: Locale::Ru,
    ///     content: LetterContent::Credentials {
    ///         login: "resident@example.org".parse()?,
    ///         password: SecretString::from("Xk3vPq9aRt5mWz2h"),
    ///         temporary: false,
    ///     },
    /// };
    /// let rendered = letter.render();
    /// assert_eq!(rendered.subject(), "Данные для входа");
    /// assert!(rendered.text().lines().any(|l| l == "Логин: resident@example.org"));
    /// assert!(rendered.text().lines().any(|l| l == "Пароль: Xk3vPq9aRt5mWz2h"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn render(&self) -> RenderedLetter {
        let words = texts::of(self.locale);
        let (subject, text, html) = match &self.content {
            LetterContent::ConfirmEmail { link } => {
                link_letter(&words.confirm_email, link.expose_secret())
            }
            LetterContent::Credentials {
                login,
                password,
                temporary,
            } => credentials_letter(
                &words.credentials,
                login,
                password.expose_secret(),
                *temporary,
            ),
            LetterContent::RecoverPassword { link } => {
                link_letter(&words.recover_password, link.expose_secret())
            }
            LetterContent::ConfirmEmailChange { link } => {
                link_letter(&words.confirm_email_change, link.expose_secret())
            }
            LetterContent::EmailChangeRequested { link } => {
                link_letter(&words.email_change_requested, link.expose_secret())
            }
            LetterContent::PasswordChanged => {
                notice(words.password_changed.subject, words.password_changed.body)
            }
            LetterContent::CabinetClosed => {
                notice(words.cabinet_closed.subject, words.cabinet_closed.body)
            }
            LetterContent::AccountUnlinked { account } => notice(
                words.account_unlinked.subject,
                &words
                    .account_unlinked
                    .body
                    .replace("{account}", account.as_str()),
            ),
        };
        RenderedLetter {
            subject: subject.to_owned(),
            text: SecretString::from(text),
            html: SecretString::from(html),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_carry_the_token_where_the_host_put_it() {
        let token = Token::generate();
        let links = Links::new("https://portal.example.org/").with_recovery(
            "https://app.example.org/#/reset?t={token}&from=mail"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            links.recovery(&token).expose_secret(),
            format!(
                "https://app.example.org/#/reset?t={}&from=mail",
                token.expose()
            )
        );
        assert_eq!(
            links.confirmation(&token).expose_secret(),
            format!(
                "https://portal.example.org/confirm?token={}",
                token.expose()
            )
        );
        assert_eq!(
            links.pages_needed(),
            [
                "https://portal.example.org/confirm",
                "https://portal.example.org/email/confirm",
                "https://portal.example.org/email/cancel"
            ]
        );
        let template: LinkTemplate = "https://app.example.org/c/{token}".parse().unwrap();
        assert_eq!(template.to_string(), "https://app.example.org/c/{token}");
        assert!(Links::new("https://p.example")
            .with_confirmation(template.clone())
            .with_recovery(template.clone())
            .with_email_change(template.clone())
            .with_email_change_cancel(template)
            .pages_needed()
            .is_empty());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        /// Any text: no panic; a template that parses prints back to itself.
        #[test]
        fn link_templates_parse_without_panic_and_round_trip(text in "\\PC{0,80}") {
            if let Ok(template) = text.parse::<LinkTemplate>() {
                proptest::prop_assert_eq!(template.to_string().parse::<LinkTemplate>(), Ok(template));
            }
        }

        /// A host's path around the placeholder is kept byte for byte.
        #[test]
        fn templated_paths_round_trip(path in "[a-z0-9/._-]{0,30}", query in "[a-z0-9=&]{0,20}") {
            let text = format!("https://app.example.org/{path}{{token}}?{query}");
            let template: LinkTemplate = text.parse().map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{e}")))?;
            proptest::prop_assert_eq!(template.to_string(), text);
        }
    }

    #[test]
    fn link_templates_are_refused_with_a_stable_code() {
        use crate::errors::InvalidLinkTemplate as Invalid;
        for (text, error) in [
            ("ftp://app.example.org/{token}", Invalid::NotAbsoluteHttps),
            ("http://app.example.org/{token}", Invalid::NotAbsoluteHttps),
            (
                "http://localhost.example.org/{token}",
                Invalid::NotAbsoluteHttps,
            ),
            ("app.example.org/{token}", Invalid::NotAbsoluteHttps),
            ("https://app.example.org/", Invalid::Placeholder),
            (
                "https://app.example.org/{token}?again={token}",
                Invalid::Placeholder,
            ),
            ("https://{token}.example.org/x", Invalid::PlaceholderInHost),
            (
                "https://user:{token}@app.example.org/x",
                Invalid::PlaceholderInHost,
            ),
            (
                "https://evil.example@app.example.org/{token}",
                Invalid::Malformed,
            ),
            ("https:///{token}", Invalid::Malformed),
            ("https://app.example.org/{token} ", Invalid::Malformed),
            ("https://app.example.org/{id}/{token}", Invalid::Malformed),
        ] {
            assert_eq!(text.parse::<LinkTemplate>(), Err(error), "{text}");
            assert!(error.code().starts_with("link_template."));
        }
        for good in [
            "http://[::1]:8080/confirm/{token}",
            "http://localhost/c?token={token}",
            "https://кабинет.рф/подтвердить/{token}",
        ] {
            assert!(good.parse::<LinkTemplate>().is_ok(), "{good}");
        }
    }

    fn letter(locale: Locale, content: LetterContent) -> Letter {
        Letter {
            to: "a@example.org".parse().unwrap(),
            locale,
            content,
        }
    }

    #[test]
    fn confirmation_letter_has_the_guides_button_and_link() {
        let link = SecretString::from("https://portal.example.org/confirm?token=abc");
        let rendered = letter(Locale::Ru, LetterContent::ConfirmEmail { link }).render();
        assert_eq!(rendered.subject(), "Подтверждение e-mail");
        assert!(rendered
            .html()
            .contains(">Подтвердить электронный адрес</a>"));
        assert!(rendered
            .html()
            .contains("href=\"https://portal.example.org/confirm?token=abc\""));
        assert!(rendered
            .text()
            .contains("https://portal.example.org/confirm?token=abc"));
        let en = letter(
            Locale::En,
            LetterContent::ConfirmEmail {
                link: SecretString::from("x"),
            },
        )
        .render();
        assert_eq!(en.subject(), "Email confirmation");
    }

    #[test]
    fn recovery_letter_and_html_escaping() {
        let link = SecretString::from("https://x.example/recover?token=a&b=\"<c>\"");
        let rendered = letter(Locale::Ru, LetterContent::RecoverPassword { link }).render();
        assert_eq!(rendered.subject(), "Восстановление пароля");
        assert!(rendered
            .html()
            .contains("token=a&amp;b=&quot;&lt;c&gt;&quot;"));
        assert!(!rendered.html().contains("<c>"));
    }

    #[test]
    fn debug_shows_no_secret() {
        let content = LetterContent::Credentials {
            login: "a@example.org".parse().unwrap(),
            password: SecretString::from("SuperSecret42"),
            temporary: false,
        };
        let letter = letter(Locale::En, content);
        assert!(!format!("{letter:?}").contains("SuperSecret42"));
        assert!(!format!("{:?}", letter.render()).contains("SuperSecret42"));
        assert!(letter.render().text().contains("Password: SuperSecret42\n"));
        assert!(!letter.render().text().contains("temporary"));
    }

    #[test]
    fn temporary_passwords_and_the_change_notice_say_so() {
        let content = LetterContent::Credentials {
            login: "a@example.org".parse().unwrap(),
            password: SecretString::from("SuperSecret42"),
            temporary: true,
        };
        let rendered = letter(Locale::Ru, content).render();
        assert!(rendered.text().contains("временный пароль"));
        let notice = letter(Locale::Ru, LetterContent::PasswordChanged).render();
        assert_eq!(notice.subject(), "Пароль изменён");
        assert!(notice.text().contains("Забыли пароль"));
        let notice = letter(Locale::En, LetterContent::PasswordChanged).render();
        assert_eq!(notice.subject(), "Password changed");
    }

    #[test]
    fn links_follow_the_spec() {
        let links = Links::new("https://portal.example.org/");
        let token = Token::generate();
        assert_eq!(
            links.confirmation(&token).expose_secret(),
            &format!(
                "https://portal.example.org/confirm?token={}",
                token.expose()
            )
        );
        assert!(links
            .recovery(&token)
            .expose_secret()
            .starts_with("https://portal.example.org/recover?token="));
    }
}
