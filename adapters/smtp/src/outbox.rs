//! The outbox: each letter becomes one `.eml` file in a folder.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;
use lettre::message::Mailbox;
use resident_auth::{letters::Letter, letters::LetterKind, ports::MailError, ports::Mailer};

use crate::message::build_message;

/// A [`Mailer`] that writes every letter to `dir` as one RFC 5322 `.eml` file and logs its
/// path. Files are named `<unix millis>-<sequence>-<kind>-<recipient>.eml` (kinds
/// `confirm-email`, `credentials`, `recover-password`, `password-changed`,
/// `account-unlinked`; `@`, `/`, `\` in the address become `_`), so a folder sorts oldest
/// first. Each is a MIME message with a text and an HTML part; Russian text is
/// base64-encoded in the file, so read it with a mail client or [`OutboxLetter::read`]
/// (the decoded subject, text, link and password), not with `cat`.
///
/// The letters carry passwords and links: the folder is for development and demos.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use resident_auth_smtp::OutboxLetter;
/// for letter in OutboxLetter::read_all("./outbox")? {
///     println!("{}: {} {:?}", letter.to(), letter.subject(), letter.link());
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct OutboxMailer {
    dir: PathBuf,
    from: Mailbox,
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl OutboxMailer {
    /// An outbox writing into `dir` (created on first use), letters from `from`.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>, from: Mailbox) -> Self {
        Self {
            dir: dir.into(),
            from,
        }
    }

    /// The folder letters go to.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn kind_name(kind: LetterKind) -> &'static str {
    match kind {
        LetterKind::ConfirmEmail => "confirm-email",
        LetterKind::Credentials => "credentials",
        LetterKind::RecoverPassword => "recover-password",
        LetterKind::PasswordChanged => "password-changed",
        LetterKind::AccountUnlinked => "account-unlinked",
        LetterKind::CabinetClosed => "cabinet-closed",
        LetterKind::ConfirmEmailChange => "confirm-email-change",
        LetterKind::EmailChangeRequested => "email-change-requested",
        _ => "letter",
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    #[tracing::instrument(name = "outbox.send", skip_all, err(level = "debug", Display))]
    async fn send(&self, letter: &Letter) -> Result<(), MailError> {
        let message = build_message(letter, &self.from)?;
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(MailError::retryable)?;
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "{millis}-{sequence:04}-{}-{}.eml",
            kind_name(letter.content.kind()),
            letter.to.ascii().replace(['@', '/', '\\'], "_")
        );
        let path = self.dir.join(&name);
        // Write beside, then rename: a reader never sees half a letter.
        let partial = self.dir.join(format!(".{name}.part"));
        tokio::fs::write(&partial, message.formatted())
            .await
            .map_err(MailError::retryable)?;
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(MailError::retryable)?;
        tracing::info!(path = %path.display(), kind = ?letter.content.kind(), "letter written to the outbox");
        Ok(())
    }
}

/// A letter the [`OutboxMailer`] wrote, decoded: what a resident would read in it.
#[derive(Clone)]
pub struct OutboxLetter {
    path: PathBuf,
    to: String,
    subject: String,
    text: String,
}

/// Debug names the file and the subject; never the text (it carries links and passwords).
impl std::fmt::Debug for OutboxLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxLetter")
            .field("path", &self.path)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// An outbox file that could not be read or is not a letter the outbox wrote.
#[derive(Debug, thiserror::Error)]
#[error("outbox letter {path}: {reason}")]
pub struct OutboxReadError {
    path: PathBuf,
    reason: String,
}

impl OutboxLetter {
    /// Reads and decodes one `.eml` file.
    ///
    /// # Errors
    /// [`OutboxReadError`] if the file cannot be read or parsed.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, OutboxReadError> {
        let path = path.as_ref().to_owned();
        let failed = |reason: String| OutboxReadError {
            path: path.clone(),
            reason,
        };
        let raw = std::fs::read(&path).map_err(|e| failed(e.to_string()))?;
        let mail = mailparse::parse_mail(&raw).map_err(|e| failed(e.to_string()))?;
        use mailparse::MailHeaderMap as _;
        let subject = mail.headers.get_first_value("Subject").unwrap_or_default();
        let to = mail.headers.get_first_value("To").unwrap_or_default();
        let text = mail
            .subparts
            .iter()
            .find(|part| part.ctype.mimetype == "text/plain")
            .ok_or_else(|| failed("no text part".to_owned()))?
            .get_body()
            .map_err(|e| failed(e.to_string()))?;
        Ok(Self {
            path,
            to,
            subject,
            text,
        })
    }

    /// Every `.eml` letter in `dir`, oldest first (by file name); none if `dir` does not
    /// exist yet.
    ///
    /// # Errors
    /// [`OutboxReadError`] for a file that cannot be read or parsed.
    pub fn read_all(dir: impl AsRef<Path>) -> Result<Vec<Self>, OutboxReadError> {
        let Ok(entries) = std::fs::read_dir(dir.as_ref()) else {
            return Ok(Vec::new());
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        files.iter().map(Self::read).collect()
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The recipient, as the `To` header has it.
    #[must_use]
    pub fn to(&self) -> &str {
        &self.to
    }

    /// The decoded subject (`Подтверждение e-mail`, `Данные для входа`, …).
    #[must_use]
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The decoded text part.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The link the letter carries (confirmation, recovery), if any.
    #[must_use]
    pub fn link(&self) -> Option<&str> {
        self.text
            .split_whitespace()
            .find(|word| word.starts_with("http") && word.contains("token="))
    }

    /// The link's token, if any.
    #[must_use]
    pub fn token(&self) -> Option<&str> {
        self.link()
            .and_then(|link| link.split_once("token="))
            .map(|(_, token)| token)
    }

    /// The password a credentials letter carries (its `Пароль:` / `Password:` line).
    #[must_use]
    pub fn password(&self) -> Option<&str> {
        self.text.lines().find_map(|line| {
            line.trim_end()
                .strip_prefix("Пароль: ")
                .or_else(|| line.trim_end().strip_prefix("Password: "))
        })
    }
}
