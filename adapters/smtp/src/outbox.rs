//! The outbox: each letter becomes one `.eml` file in a folder.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;
use lettre::message::Mailbox;
use resident_auth::{Letter, LetterKind, MailError, Mailer};

use crate::message::build_message;

/// A [`Mailer`] that writes every letter to `dir` as one RFC 5322 `.eml` file (UTF-8,
/// encoded subject, text + HTML parts) and logs its path. Open the file with any mail
/// client, or read the text part directly.
///
/// The letters carry passwords and links: the folder is for development and demos.
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
            .map_err(MailError::transient)?;
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
            .map_err(MailError::transient)?;
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(MailError::transient)?;
        tracing::info!(path = %path.display(), kind = ?letter.content.kind(), "letter written to the outbox");
        Ok(())
    }
}
