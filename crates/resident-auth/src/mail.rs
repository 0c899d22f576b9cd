//! Mail: the mailer a host plugs in ([`Mailer`], [`MailError`]) and the mail queue — a
//! transactional outbox. A letter is queued in the same store write as
//! the change that needs it ([`crate::ports::LinkStore::swap_link`],
//! [`crate::ports::CabinetStore::swap_cabinet`]): no password becomes valid without its
//! letter queued, and no letter is queued for a change that did not happen. The service
//! delivers queued letters later ([`crate::AuthService::deliver_due`]), with retries,
//! exponential backoff and jitter, and gives a letter up at its deadline as a dead letter.
//!
//! The letter itself — its links and passwords — is stored only sealed with an AEAD
//! (XChaCha20-Poly1305) under a [`MailQueueKeys`] key, bound to the letter's identity, and
//! scrubbed once the letter is sent or dead. What a store sees in clear is what operators
//! need: the recipient, the cabinet, the kind of letter and its delivery state.

use std::{error::Error as StdError, fmt, str::FromStr};

use async_trait::async_trait;

pub use crate::ids::LetterId;
pub use crate::service::{DeliveryPolicy, DeliveryReport};

use base64::Engine as _;
use chacha20poly1305::{
    aead::{Aead, KeyInit, Payload},
    XChaCha20Poly1305, XNonce,
};
use rand::{rngs::OsRng, RngCore};
use secrecy::{zeroize::Zeroize, ExposeSecret, SecretString};

use crate::{
    clock::Timestamp,
    ids::CabinetId,
    letters::{Letter, LetterContent, LetterKind},
    AccountNumber, Email, Locale,
};

/// Bytes of a key.
pub const MAIL_QUEUE_KEY_BYTES: usize = 32;
/// The first byte of every sealed letter: the format.
const SEALED_FORMAT: u8 = 1;
/// Bytes of a nonce (XChaCha20's 192 bits: random nonces never collide in practice).
const NONCE_BYTES: usize = 24;

/// A 32-byte key that seals queued letters. `Debug` never shows it.
#[derive(Clone)]
pub struct MailQueueKey {
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for MailQueueKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MailQueueKey(…)")
    }
}

/// Why a mail queue key is refused. Both messages say how to make a good one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidMailQueueKey {
    /// The text is not a base64 encoding of exactly 32 bytes.
    #[error("a mail queue key is 32 bytes in base64 (make one with `openssl rand -base64 32`)")]
    Malformed,
    /// The bytes are plainly not random: fewer than 16 distinct values (one repeated byte, a
    /// short pattern), a run such as 0, 1, 2, … (bytes a constant step apart), or text
    /// (every byte printable ASCII: a phrase typed in place of a key).
    #[error(
        "the mail queue key is not random (a repeated byte, a pattern, a run or text); \
         make one with `openssl rand -base64 32`"
    )]
    NotRandom,
}

/// The fewest distinct byte values a key must have. 32 random bytes have about 30; fewer
/// than 16 happens by chance with a probability below 10⁻¹⁵, while a repeated byte or a
/// repeated short pattern has fewer.
const MAIL_QUEUE_KEY_MIN_DISTINCT_BYTES: usize = 16;

impl MailQueueKey {
    /// A fresh random key (the in-memory default's: its queue dies with the process).
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = [0u8; MAIL_QUEUE_KEY_BYTES];
        loop {
            OsRng.fill_bytes(&mut bytes);
            // Astronomically unlikely to loop: the same test every key passes.
            if let Ok(key) = Self::from_bytes(&bytes) {
                bytes.zeroize();
                return key;
            }
        }
    }

    /// The key with these bytes.
    ///
    /// # Errors
    /// [`InvalidMailQueueKey::NotRandom`] for bytes that are plainly not a random key.
    pub fn from_bytes(bytes: &[u8; MAIL_QUEUE_KEY_BYTES]) -> Result<Self, InvalidMailQueueKey> {
        if !looks_random(bytes) {
            return Err(InvalidMailQueueKey::NotRandom);
        }
        Ok(Self {
            cipher: XChaCha20Poly1305::new(bytes.into()),
        })
    }

    /// A key from its base64 text (standard alphabet, padded or not).
    ///
    /// ```
    /// use resident_auth::mail::{InvalidMailQueueKey, MailQueueKey};
    /// assert!(MailQueueKey::from_base64("q3Vd8mN1xJ0cLhR7tY2pWz5eF9sK4gBaUoIvXyCnDlM=").is_ok());
    /// assert_eq!(MailQueueKey::from_base64("c2hvcnQ=").err(), Some(InvalidMailQueueKey::Malformed));
    /// // 32 zero bytes, and the bytes 0, 1, …, 31:
    /// for weak in ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="] {
    ///     assert_eq!(MailQueueKey::from_base64(weak).err(), Some(InvalidMailQueueKey::NotRandom));
    /// }
    /// ```
    ///
    /// # Errors
    /// [`InvalidMailQueueKey::Malformed`] unless the text is base64 of exactly 32 bytes;
    /// [`InvalidMailQueueKey::NotRandom`] for bytes that are plainly not random.
    pub fn from_base64(text: &str) -> Result<Self, InvalidMailQueueKey> {
        let text = text.trim();
        let mut decoded = base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
            .map_err(|_| InvalidMailQueueKey::Malformed)?;
        let key = match <&[u8; MAIL_QUEUE_KEY_BYTES]>::try_from(decoded.as_slice()) {
            Ok(bytes) => Self::from_bytes(bytes),
            Err(_) => Err(InvalidMailQueueKey::Malformed),
        };
        decoded.zeroize();
        key
    }
}

/// Whether `bytes` could be a random key: enough distinct values, and not a run.
fn looks_random(bytes: &[u8; MAIL_QUEUE_KEY_BYTES]) -> bool {
    let mut seen = [0u128; 2];
    for &byte in bytes {
        let (word, bit) = (usize::from(byte >> 7), byte & 0x7f);
        if let Some(word) = seen.get_mut(word) {
            *word |= 1 << bit;
        }
    }
    let distinct = seen.iter().map(|word| word.count_ones()).sum::<u32>();
    let mut steps = bytes
        .iter()
        .zip(bytes.iter().skip(1))
        .map(|(a, b)| b.wrapping_sub(*a));
    let first = steps.next();
    let run = steps.all(|step| Some(step) == first);
    // Text typed in place of a key: 32 random bytes are all printable ASCII with a
    // probability of (95/256)^32, about 10⁻¹⁴.
    let typed = bytes.iter().all(|byte| (b' '..=b'~').contains(byte));
    distinct >= u32::try_from(MAIL_QUEUE_KEY_MIN_DISTINCT_BYTES).unwrap_or(u32::MAX)
        && !run
        && !typed
}

impl FromStr for MailQueueKey {
    type Err = InvalidMailQueueKey;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::from_base64(text)
    }
}

/// The keys of the mail queue: the current one seals, and it or any previous one opens —
/// rotation is a new current key with the old one kept as previous until the letters it
/// sealed are delivered or dead.
#[derive(Debug, Clone)]
pub struct MailQueueKeys {
    current: MailQueueKey,
    previous: Vec<MailQueueKey>,
    /// Made up at start-up (the default), not given by the host.
    made_up: bool,
}

impl MailQueueKeys {
    /// Seals with `current`, and opens with it alone.
    #[must_use]
    pub fn new(current: MailQueueKey) -> Self {
        Self {
            current,
            previous: Vec::new(),
            made_up: false,
        }
    }

    /// The default: a random key made at start-up, right for a queue that dies with the
    /// process (in memory) and wrong for one that outlives it.
    pub(crate) fn made_up() -> Self {
        Self {
            made_up: true,
            ..Self::new(MailQueueKey::generate())
        }
    }

    /// Whether these are the default keys made at start-up rather than the host's own.
    #[must_use]
    pub fn is_made_up(&self) -> bool {
        self.made_up
    }

    /// Also opens letters sealed under `previous` (the key being rotated out).
    #[must_use]
    pub fn with_previous(mut self, previous: MailQueueKey) -> Self {
        self.previous.push(previous);
        self
    }

    /// Seals `letter` as the letter `id` (the identity is authenticated with it, so a
    /// sealed letter cannot be moved to another row).
    #[must_use]
    pub fn seal(&self, id: &LetterId, letter: &Letter) -> SealedLetter {
        let mut plain = encode(letter);
        let mut nonce = [0u8; NONCE_BYTES];
        OsRng.fill_bytes(&mut nonce);
        let sealed = self.current.cipher.encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plain.as_bytes(),
                aad: id.as_bytes(),
            },
        );
        plain.zeroize();
        let mut bytes = Vec::with_capacity(1 + NONCE_BYTES + plain.len() + 16);
        bytes.push(SEALED_FORMAT);
        bytes.extend_from_slice(&nonce);
        // Encryption with a valid key and nonce size cannot fail; an empty body would only
        // fail to open, never leak.
        bytes.extend_from_slice(&sealed.unwrap_or_default());
        SealedLetter(bytes)
    }

    /// Opens the letter `id` sealed as `sealed`, with the current key or a previous one.
    ///
    /// # Errors
    /// [`UnsealError`] when no key opens it (a key rotated out too early, a moved or
    /// altered row) or what it holds is not a letter.
    pub fn open(&self, id: &LetterId, sealed: &SealedLetter) -> Result<Letter, UnsealError> {
        let bytes = sealed.as_bytes();
        let (format, rest) = bytes.split_first().ok_or(UnsealError)?;
        if *format != SEALED_FORMAT || rest.len() < NONCE_BYTES {
            return Err(UnsealError);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_BYTES);
        let nonce = XNonce::try_from(nonce).map_err(|_| UnsealError)?;
        let payload = || Payload {
            msg: ciphertext,
            aad: id.as_bytes(),
        };
        let mut plain = std::iter::once(&self.current)
            .chain(&self.previous)
            .find_map(|key| key.cipher.decrypt(&nonce, payload()).ok())
            .ok_or(UnsealError)?;
        let letter = std::str::from_utf8(&plain)
            .map_err(|_| UnsealError)
            .and_then(decode);
        plain.zeroize();
        letter
    }
}

/// No key opens a sealed letter, or it does not hold a letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the queued letter cannot be opened with the configured keys")]
pub struct UnsealError;

/// A letter as the queue stores it: format, nonce and ciphertext. `Debug` shows its length.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedLetter(Vec<u8>);

impl SealedLetter {
    /// A sealed letter as stored.
    #[must_use]
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The bytes to store.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SealedLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedLetter({} bytes)", self.0.len())
    }
}

/// Where a queued letter stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LetterStatus {
    /// Waiting for its next attempt (or being attempted, until its claim runs out).
    Queued,
    /// Accepted by the mail system; its content is gone.
    Sent,
    /// Given up (a permanent refusal, or its deadline passed); its content is gone.
    Dead,
    /// Never to be sent, and never with content: the stand-in a recovery request for an
    /// unknown email writes, so that its answer costs what a registered email's does.
    Withheld,
}

impl LetterStatus {
    /// The stored name: `queued`, `sent`, `dead`, `withheld`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            LetterStatus::Queued => "queued",
            LetterStatus::Sent => "sent",
            LetterStatus::Dead => "dead",
            LetterStatus::Withheld => "withheld",
        }
    }

    /// The status with this stored name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [
            LetterStatus::Queued,
            LetterStatus::Sent,
            LetterStatus::Dead,
            LetterStatus::Withheld,
        ]
        .into_iter()
        .find(|status| status.as_str() == name)
    }
}

/// A letter in the mail queue, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedLetter {
    /// The identity.
    pub id: LetterId,
    /// The recipient.
    pub to: Email,
    /// The cabinet the letter is about, when there is one (not for a first registration).
    pub cabinet: Option<CabinetId>,
    /// Which letter.
    pub kind: LetterKind,
    /// The sealed letter; `None` once it is sent or dead.
    pub sealed: Option<SealedLetter>,
    /// Where it stands.
    pub status: LetterStatus,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// When it was queued.
    pub queued_at: Timestamp,
    /// When it is next due. Claiming a letter moves this to the end of the claim, so a
    /// letter whose worker died is due again then.
    pub next_attempt_at: Timestamp,
    /// When it is given up if still not sent.
    pub give_up_at: Timestamp,
    /// When a sent or dead letter's record may be deleted.
    pub keep_until: Option<Timestamp>,
    /// Why the last attempt failed: `transient`, `permanent` or `unsealable` (never the
    /// server's words, which may quote the letter).
    pub last_error: Option<String>,
}

/// Encodes a letter as lines: format, language, kind, recipient, then the kind's fields.
fn encode(letter: &Letter) -> String {
    let mut lines = vec![
        "1".to_owned(),
        letter.locale.code().to_owned(),
        letter.content.kind().as_str().to_owned(),
        letter.to.to_string(),
    ];
    match &letter.content {
        LetterContent::ConfirmEmail { link }
        | LetterContent::RecoverPassword { link }
        | LetterContent::ConfirmEmailChange { link }
        | LetterContent::EmailChangeRequested { link } => {
            lines.push(link.expose_secret().to_owned());
        }
        LetterContent::Credentials {
            login,
            password,
            temporary,
        } => {
            lines.push(login.to_string());
            lines.push(password.expose_secret().to_owned());
            lines.push(if *temporary { "1" } else { "0" }.to_owned());
        }
        LetterContent::PasswordChanged | LetterContent::CabinetClosed => {}
        LetterContent::AccountUnlinked { account } => lines.push(account.to_string()),
    }
    let text = lines.join("\n");
    lines.iter_mut().for_each(Zeroize::zeroize);
    text
}

/// The letter [`encode`] wrote.
fn decode(text: &str) -> Result<Letter, UnsealError> {
    let mut lines = text.split('\n');
    let mut next = || lines.next().ok_or(UnsealError);
    if next()? != "1" {
        return Err(UnsealError);
    }
    let locale: Locale = next()?.parse().map_err(|_| UnsealError)?;
    let kind = LetterKind::from_name(next()?).ok_or(UnsealError)?;
    let to: Email = next()?.parse().map_err(|_| UnsealError)?;
    let content = match kind {
        LetterKind::ConfirmEmail => LetterContent::ConfirmEmail {
            link: SecretString::from(next()?.to_owned()),
        },
        LetterKind::RecoverPassword => LetterContent::RecoverPassword {
            link: SecretString::from(next()?.to_owned()),
        },
        LetterKind::Credentials => LetterContent::Credentials {
            login: next()?.parse().map_err(|_| UnsealError)?,
            password: SecretString::from(next()?.to_owned()),
            temporary: next()? == "1",
        },
        LetterKind::ConfirmEmailChange => LetterContent::ConfirmEmailChange {
            link: SecretString::from(next()?.to_owned()),
        },
        LetterKind::EmailChangeRequested => LetterContent::EmailChangeRequested {
            link: SecretString::from(next()?.to_owned()),
        },
        LetterKind::PasswordChanged => LetterContent::PasswordChanged,
        LetterKind::CabinetClosed => LetterContent::CabinetClosed,
        LetterKind::AccountUnlinked => LetterContent::AccountUnlinked {
            account: next()?.parse::<AccountNumber>().map_err(|_| UnsealError)?,
        },
    };
    if next().is_ok() {
        return Err(UnsealError);
    }
    Ok(Letter {
        to,
        locale,
        content,
    })
}

/// A failure to hand a letter to the mail system.
#[derive(Debug, thiserror::Error)]
#[error("{kind} mail failure")]
pub struct MailError {
    kind: MailErrorKind,
    #[source]
    source: Box<dyn StdError + Send + Sync>,
}

/// Whether a mail failure may go away by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MailErrorKind {
    /// Server unreachable, timeout, 4xx: retrying later may succeed.
    Retryable,
    /// A permanent rejection (5xx): retrying the same letter will fail again.
    Permanent,
}

impl fmt::Display for MailErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MailErrorKind::Retryable => "retryable",
            MailErrorKind::Permanent => "permanent",
        })
    }
}

impl MailError {
    /// A failure that may go away on retry.
    pub fn retryable(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            kind: MailErrorKind::Retryable,
            source: source.into(),
        }
    }

    /// A permanent rejection.
    pub fn permanent(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            kind: MailErrorKind::Permanent,
            source: source.into(),
        }
    }

    /// Which kind of failure this is.
    #[must_use]
    pub fn kind(&self) -> MailErrorKind {
        self.kind
    }

    /// Server unreachable, timeout, or a 4xx answer.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        self.kind == MailErrorKind::Retryable
    }

    /// A 5xx rejection.
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        self.kind == MailErrorKind::Permanent
    }
}

/// Sends letters.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Delivers `letter`, the mail queue's letter `id`, to the mail system. Returning `Ok`
    /// means the letter was accepted for delivery.
    ///
    /// Delivery is at least once: a process that stops between sending a letter and
    /// recording it sent sends it again after a restart, under the same `id`. A mailer
    /// makes the repeat recognisable from `id` — the SMTP and outbox mailers derive the
    /// `Message-ID` (and the outbox its file name) from it, so that a mail server or
    /// client can drop the second copy.
    ///
    /// # Errors
    /// [`MailError`], transient or permanent.
    async fn send(&self, id: &LetterId, letter: &Letter) -> Result<(), MailError>;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn letters() -> Vec<Letter> {
        let to: Email = "Ivanov@Example.org".parse().unwrap();
        let account: AccountNumber = "0100000000001".parse().unwrap();
        [
            LetterContent::ConfirmEmail {
                link: SecretString::from("https://p.example/confirm?token=abc".to_owned()),
            },
            LetterContent::RecoverPassword {
                link: SecretString::from("https://p.example/recover?token=def".to_owned()),
            },
            LetterContent::Credentials {
                login: to.clone(),
                password: SecretString::from("Kx7-pQ2-zz9".to_owned()),
                temporary: true,
            },
            LetterContent::PasswordChanged,
            LetterContent::AccountUnlinked { account },
        ]
        .into_iter()
        .map(|content| Letter {
            to: to.clone(),
            locale: Locale::En,
            content,
        })
        .collect()
    }

    #[test]
    fn every_letter_round_trips_through_a_seal_and_no_secret_shows_in_it() {
        let keys = MailQueueKeys::new(MailQueueKey::generate());
        for letter in letters() {
            let id = LetterId::generate();
            let sealed = keys.seal(&id, &letter);
            let opened = keys.open(&id, &sealed).unwrap();
            assert_eq!(opened.render().text(), letter.render().text());
            assert_eq!(opened.to, letter.to);
            let bytes = String::from_utf8_lossy(sealed.as_bytes()).into_owned();
            for secret in ["token=abc", "token=def", "Kx7-pQ2-zz9", "example.org"] {
                assert!(!bytes.contains(secret));
            }
        }
    }

    #[test]
    fn a_letter_opens_only_under_its_own_identity_and_keys() {
        let old = MailQueueKey::generate();
        let letter = letters().remove(2);
        let id = LetterId::generate();
        let sealed = MailQueueKeys::new(old.clone()).seal(&id, &letter);
        let rotated = MailQueueKeys::new(MailQueueKey::generate());
        assert_eq!(rotated.open(&id, &sealed).err(), Some(UnsealError));
        let rotated = rotated.with_previous(old);
        assert!(rotated.open(&id, &sealed).is_ok());
        assert_eq!(
            rotated.open(&LetterId::generate(), &sealed).err(),
            Some(UnsealError)
        );
        let mut altered = sealed.as_bytes().to_vec();
        if let Some(last) = altered.last_mut() {
            *last ^= 1;
        }
        let altered = SealedLetter::from_bytes(altered);
        assert_eq!(rotated.open(&id, &altered).err(), Some(UnsealError));
        assert_eq!(
            rotated
                .open(&id, &SealedLetter::from_bytes(Vec::new()))
                .err(),
            Some(UnsealError)
        );
    }

    #[test]
    fn keys_parse_from_base64_of_exactly_32_bytes() {
        let random: [u8; 32] =
            std::array::from_fn(|i| u8::try_from((i * 73 + 11) % 251).unwrap_or(0) ^ 0x5a);
        let text = base64::engine::general_purpose::STANDARD.encode(random);
        assert!(text.parse::<MailQueueKey>().is_ok());
        assert!(text.trim_end_matches('=').parse::<MailQueueKey>().is_ok());
        let short = base64::engine::general_purpose::STANDARD.encode([7u8; 31]);
        assert_eq!(
            short.parse::<MailQueueKey>().err(),
            Some(InvalidMailQueueKey::Malformed)
        );
        assert!("not base64!".parse::<MailQueueKey>().is_err());
        assert_eq!(format!("{:?}", MailQueueKey::generate()), "MailQueueKey(…)");
    }

    /// docs/security.md: a key that is plainly not random is refused by the key type itself
    /// (32 zero bytes started the portal before).
    #[test]
    fn keys_that_are_plainly_not_random_are_refused() {
        let mut weak: Vec<[u8; 32]> = (0..=255u8).map(|byte| [byte; 32]).collect();
        weak.push(std::array::from_fn(|i| u8::try_from(i).unwrap_or(0)));
        weak.push(std::array::from_fn(|i| 255 - u8::try_from(i).unwrap_or(0)));
        weak.push(std::array::from_fn(|i| u8::try_from(i % 8).unwrap_or(0)));
        weak.push(*b"my secret mail queue key 123456!");
        weak.push(*b"aaaaaaaabbbbbbbbccccccccdddddddd");
        for bytes in weak {
            assert_eq!(
                MailQueueKey::from_bytes(&bytes).err(),
                Some(InvalidMailQueueKey::NotRandom),
                "{bytes:?}"
            );
            let text = base64::engine::general_purpose::STANDARD.encode(bytes);
            assert_eq!(
                MailQueueKey::from_base64(&text).err(),
                Some(InvalidMailQueueKey::NotRandom)
            );
        }
        // Random keys pass, every time.
        for _ in 0..10_000 {
            let mut bytes = [0u8; 32];
            OsRng.fill_bytes(&mut bytes);
            assert!(MailQueueKey::from_bytes(&bytes).is_ok());
        }
    }

    #[test]
    fn statuses_round_trip_by_name() {
        for status in [
            LetterStatus::Queued,
            LetterStatus::Sent,
            LetterStatus::Dead,
            LetterStatus::Withheld,
        ] {
            assert_eq!(LetterStatus::from_name(status.as_str()), Some(status));
        }
        assert_eq!(LetterStatus::from_name("lost"), None);
    }
}
