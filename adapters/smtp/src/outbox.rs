//! The outbox: each letter becomes one `.eml` file in a folder.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;
use lettre::message::Mailbox;
use resident_auth::{
    letters::Letter,
    mail::{LetterId, MailError, Mailer},
};

use crate::message::build_message;

/// A [`Mailer`] that writes every letter to `dir` as one RFC 5322 `.eml` file and logs its
/// path. Files are named `<unix millis>-<sequence>-<kind>-<letter id>.eml`, so a folder
/// sorts oldest first; the kinds are [`LetterKind::as_str`](resident_auth::letters::LetterKind::as_str)'s
/// (`confirm_email`, `credentials`, `recover_password`, `password_changed`,
/// `account_unlinked`, `cabinet_closed`, `confirm_email_change`, `email_change_requested`).
/// No address appears in a file name. A letter sent again
/// under the same identity (after a crash between sending and recording it sent) is
/// recognised by its file name and not written twice. Each is a MIME message with a text
/// and an HTML part; Russian text is base64-encoded in the file, so read it with a mail
/// client or [`OutboxLetter::read`] (the decoded subject, text, link and password), not
/// with `cat`.
///
/// The letters carry passwords and links: the folder is made owner-only (0700) and each
/// file readable by its owner only (0600); a folder that others may enter is refused (the
/// letter waits in the queue) until `chmod 700` fixes it. For development and demos.
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

/// Creates `dir` owner-only if it is missing; refuses one that others may enter or read.
fn private_folder(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "the outbox {} may be read by others (mode {:o}); its letters carry \
                     passwords and links: `chmod 700 {}`",
                    dir.display(),
                    mode & 0o777,
                    dir.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Writes `bytes` to a new file at `path`, readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[async_trait]
impl Mailer for OutboxMailer {
    #[tracing::instrument(name = "outbox.send", skip_all, err(level = "debug", Display))]
    async fn send(&self, id: &LetterId, letter: &Letter) -> Result<(), MailError> {
        let message = build_message(id, letter, &self.from)?;
        let dir = self.dir.clone();
        let kind = letter.content.kind();
        let id = *id;
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<Option<PathBuf>> {
            private_folder(&dir)?;
            let suffix = format!("-{id}.eml");
            for entry in std::fs::read_dir(&dir)? {
                if entry?.file_name().to_string_lossy().ends_with(&suffix) {
                    // The same letter again (sent, then the process stopped before it was
                    // recorded sent): the first copy is the letter.
                    return Ok(None);
                }
            }
            let millis = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
            let name = format!("{millis}-{sequence:04}-{}{suffix}", kind.as_str());
            let path = dir.join(&name);
            // Write beside, then rename: a reader never sees half a letter.
            let partial = dir.join(format!(".{name}.part"));
            write_private(&partial, &message.formatted())?;
            std::fs::rename(&partial, &path)?;
            Ok(Some(path))
        })
        .await
        .map_err(MailError::retryable)?
        .map_err(MailError::retryable)?;
        match written {
            Some(path) => {
                tracing::info!(path = %path.display(), ?kind, "letter written to the outbox");
            }
            None => tracing::info!(letter = %id, ?kind, "letter already in the outbox"),
        }
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
