//! A store written as one small trait: [`EntryStore`] keeps the records as opaque entries
//! (bytes the library writes and reads, a version, the terms to find them by, when they
//! expire and when they are due) and [`Encoded`] makes it a whole [`Store`]. What a store
//! author writes is a table of entries, a table of terms and the counters — the guide
//! `docs/stores.md` walks through one on SQLite.

use super::*;
use crate::{
    letters::LetterKind,
    mail::{LetterStatus, SealedLetter},
};

mod codec;

/// Which of the service's records an entry holds. Keys are unique within a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EntryKind {
    /// A one-time link, under its token's hash.
    Link,
    /// A cabinet, under its id.
    Cabinet,
    /// A session, under its token's hash.
    Session,
    /// A letter of the mail queue, under its id.
    Letter,
}

impl EntryKind {
    /// The kind's name, lower-case (`link`, `cabinet`, `session`, `letter`): what a store
    /// writes in its kind column.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Link => "link",
            Self::Cabinet => "cabinet",
            Self::Session => "session",
            Self::Letter => "letter",
        }
    }
}

/// An entry as stored: the record's bytes and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The record, as [`Encoded`] wrote it; the store never looks inside.
    pub body: Vec<u8>,
    /// Its version: [`Version::FIRST`] when first written, the next at every write.
    pub version: Version,
}

/// A term an entry is found by ([`EntryStore::entries_with`]), such as `email:a@b.ru`. A
/// unique term names at most one entry of its kind: a write that would give it to a
/// second one fails with [`Commit::Taken`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Term {
    /// The term's text.
    pub text: String,
    /// Whether no two entries of the kind may have it.
    pub unique: bool,
}

/// What a [`Change`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryWrite {
    /// The record's bytes.
    pub body: Vec<u8>,
    /// The terms the entry is found by, replacing its earlier ones.
    pub terms: Vec<Term>,
    /// When [`EntryStore::purge_entries`] may delete it (at or before its `now`); `None`:
    /// never.
    pub expires_at: Option<Timestamp>,
    /// When it is due for [`EntryStore::due_entries`]; `None`: never.
    pub due_at: Option<Timestamp>,
}

/// One conditional write of a [`EntryStore::commit`]: if the entry of `kind` under `key`
/// meets `expected`, it becomes `next` (deleted for `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Change {
    /// The entry's kind.
    pub kind: EntryKind,
    /// Its key.
    pub key: Vec<u8>,
    /// What it must be before the write.
    pub expected: Expected,
    /// What it becomes.
    pub next: Option<EntryWrite>,
}

/// What a [`EntryStore::commit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Every change written.
    Written,
    /// Nothing written: an entry did not meet its `expected`.
    Conflict,
    /// Nothing written: a unique term belongs to another entry.
    Taken,
}

/// Storage as entries and counters, in one `impl`: five methods over a table of entries and
/// one of their terms, four over a table of counters, each counter
/// method promising what its namesake of [`CounterStore`] does. [`Encoded`] turns it into
/// a [`Store`]; it passes the conformance suite in [`crate::testing`] as any store does.
#[async_trait]
pub trait EntryStore: Send + Sync {
    /// The entry of `kind` under `key`.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn entry(&self, kind: EntryKind, key: &[u8]) -> Result<Option<Entry>, StoreError>;

    /// Every entry of `kind` that has the term `term`, each with its key, in no particular
    /// order.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn entries_with(
        &self,
        kind: EntryKind,
        term: &str,
    ) -> Result<Vec<(Vec<u8>, Entry)>, StoreError>;

    /// Up to `limit` entries of `kind` due at or before `now`, earliest first, each with
    /// its key.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn due_entries(
        &self,
        kind: EntryKind,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Entry)>, StoreError>;

    /// Atomically: if every change's entry meets its `expected`, writes them all — each
    /// written entry at the next version of the one it replaces ([`Version::FIRST`] if
    /// none), its terms replaced — unless a unique term would then name two entries of a
    /// kind. All or nothing.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure; then nothing changed.
    async fn commit(&self, changes: &[Change]) -> Result<Commit, StoreError>;

    /// Deletes the entries of `kind` that expire at or before `now`, with their terms;
    /// returns how many went.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn purge_entries(&self, kind: EntryKind, now: Timestamp) -> Result<u64, StoreError>;

    /// Counts one event under `key`, atomically: [`CounterStore::increment`].
    ///
    /// # Errors
    /// [`StoreError`] on backend failure; then nothing was counted.
    async fn increment(
        &self,
        key: &CounterKey,
        now: Timestamp,
        window: Duration,
    ) -> Result<Count, StoreError>;

    /// Deletes the counter under `key`: [`CounterStore::reset`].
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn reset(&self, key: &CounterKey) -> Result<(), StoreError>;

    /// Deletes the counters whose window ended at or before `now`:
    /// [`CounterStore::purge_counters`].
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn purge_counters(&self, now: Timestamp) -> Result<u64, StoreError>;

    /// The counters of `subjects`: [`CounterStore::counters_about`] (what the operators'
    /// tools list and clear, and what closing a cabinet and erasure delete).
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn counters_about(
        &self,
        subjects: &[String],
    ) -> Result<Vec<(CounterKey, Count)>, StoreError>;
}

/// The [`Store`] over an [`EntryStore`]: each record encoded into an entry with the terms
/// the service finds it by (a cabinet's email and accounts unique), its expiry and, for a
/// queued letter, when it is due. A claim of letters reads the due ones and takes each by
/// its version, so two callers never get the same letter.
///
/// ```
/// use resident_auth::ports::{Encoded, EntryStore, Store};
///
/// /// What a host hands `AuthServiceBuilder::store`.
/// fn store_of<T: EntryStore + Clone + 'static>(entries: T) -> impl Store + Clone {
///     Encoded::new(entries)
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Encoded<T>(T);

impl<T: EntryStore> Encoded<T> {
    /// The store over `entries`.
    #[must_use]
    pub fn new(entries: T) -> Self {
        Self(entries)
    }

    /// The entry store.
    #[must_use]
    pub fn entries(&self) -> &T {
        &self.0
    }

    async fn read<R>(
        &self,
        kind: EntryKind,
        key: &[u8],
        decode: fn(&[u8]) -> Result<R, StoreError>,
    ) -> Result<Option<Versioned<R>>, StoreError> {
        self.0
            .entry(kind, key)
            .await?
            .map(|entry| versioned(&entry, decode))
            .transpose()
    }

    /// The entries of `kind` with any of `terms`, each once.
    async fn with_any<R>(
        &self,
        kind: EntryKind,
        terms: &[String],
        decode: fn(&[u8]) -> Result<R, StoreError>,
    ) -> Result<Vec<(Vec<u8>, Versioned<R>)>, StoreError> {
        let mut found: Vec<(Vec<u8>, Versioned<R>)> = Vec::new();
        for term in terms {
            for (key, entry) in self.0.entries_with(kind, term).await? {
                if !found.iter().any(|(seen, _)| *seen == key) {
                    let record = versioned(&entry, decode)?;
                    found.push((key, record));
                }
            }
        }
        Ok(found)
    }
}

/// Reads `body` as a record of `kind`, and if it is one, writes it again and reads that:
/// the same record, or the codec lost something. What `resident_auth::testing::check_entry`
/// and the `entry_bytes` fuzz target run.
#[cfg(feature = "testing")]
pub(crate) fn check_entry(kind: EntryKind, body: &[u8]) -> Result<(), StoreError> {
    fn again<R: PartialEq + fmt::Debug>(
        body: &[u8],
        read: fn(&[u8]) -> Result<R, StoreError>,
        write: fn(&R) -> Vec<u8>,
    ) -> Result<(), StoreError> {
        let record = read(body)?;
        let reread = read(&write(&record));
        assert_eq!(
            reread.ok().as_ref(),
            Some(&record),
            "a record changed on rewriting"
        );
        Ok(())
    }
    match kind {
        EntryKind::Link => again(body, codec::read_link, codec::link),
        EntryKind::Cabinet => again(body, codec::read_cabinet, codec::cabinet),
        EntryKind::Session => again(body, codec::read_session, codec::session),
        EntryKind::Letter => again(body, codec::read_letter, codec::letter),
    }
}

fn versioned<R>(
    entry: &Entry,
    decode: fn(&[u8]) -> Result<R, StoreError>,
) -> Result<Versioned<R>, StoreError> {
    Ok(Versioned {
        value: decode(&entry.body)?,
        version: entry.version,
    })
}

fn term(text: String, unique: bool) -> Term {
    Term { text, unique }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn link_write(link: &Link) -> EntryWrite {
    let mut terms = vec![term(format!("email:{}", link.email.as_str()), false)];
    terms.extend(
        link.account_number
            .map(|account| term(format!("account:{account}"), false)),
    );
    EntryWrite {
        body: codec::link(link),
        terms,
        expires_at: Some(link.expires_at),
        due_at: None,
    }
}

fn letter_change(letter: &QueuedLetter, expected: Expected) -> Change {
    let mut terms = vec![term(format!("to:{}", letter.to.as_str()), false)];
    terms.extend(
        letter
            .cabinet
            .map(|cabinet| term(format!("cabinet:{}", hex(cabinet.as_bytes())), false)),
    );
    let queued = letter.status == LetterStatus::Queued;
    Change {
        kind: EntryKind::Letter,
        key: letter.id.as_bytes().to_vec(),
        expected,
        next: Some(EntryWrite {
            body: codec::letter(letter),
            terms,
            expires_at: letter.keep_until,
            due_at: queued.then_some(letter.next_attempt_at),
        }),
    }
}

fn deleted(kind: EntryKind, key: &[u8], expected: Expected) -> Change {
    Change {
        kind,
        key: key.to_vec(),
        expected,
        next: None,
    }
}

#[async_trait]
impl<T: EntryStore> LinkStore for Encoded<T> {
    async fn link(&self, token: &TokenHash) -> Result<Option<Versioned<Link>>, StoreError> {
        self.read(EntryKind::Link, token.as_bytes(), codec::read_link)
            .await
    }

    async fn swap_link(
        &self,
        token: &TokenHash,
        expected: Expected,
        next: Option<(&TokenHash, &Link)>,
        letter: Option<&QueuedLetter>,
    ) -> Result<bool, StoreError> {
        let mut changes = Vec::with_capacity(3);
        match next {
            Some((next_token, link)) if next_token == token => changes.push(Change {
                next: Some(link_write(link)),
                ..deleted(EntryKind::Link, token.as_bytes(), expected)
            }),
            Some((next_token, link)) => {
                changes.push(deleted(EntryKind::Link, token.as_bytes(), expected));
                changes.push(Change {
                    next: Some(link_write(link)),
                    ..deleted(EntryKind::Link, next_token.as_bytes(), Expected::Absent)
                });
            }
            None => changes.push(deleted(EntryKind::Link, token.as_bytes(), expected)),
        }
        changes.extend(letter.map(|letter| letter_change(letter, Expected::Absent)));
        Ok(self.0.commit(&changes).await? == Commit::Written)
    }

    async fn purge_links(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.0.purge_entries(EntryKind::Link, now).await
    }

    async fn links_about(
        &self,
        email: Option<&Email>,
        accounts: &[AccountNumber],
    ) -> Result<Vec<(TokenHash, Versioned<Link>)>, StoreError> {
        let mut terms: Vec<String> = email
            .map(|email| format!("email:{}", email.as_str()))
            .into_iter()
            .collect();
        terms.extend(accounts.iter().map(|account| format!("account:{account}")));
        let found = self
            .with_any(EntryKind::Link, &terms, codec::read_link)
            .await?;
        found
            .into_iter()
            .map(|(key, link)| Ok((token_of(&key)?, link)))
            .collect()
    }
}

fn token_of(key: &[u8]) -> Result<TokenHash, StoreError> {
    let bytes = key
        .try_into()
        .map_err(|_| StoreError::generic("an entry's key is not a token hash"))?;
    Ok(TokenHash::from_bytes(bytes))
}

#[async_trait]
impl<T: EntryStore> CabinetStore for Encoded<T> {
    async fn cabinet(&self, key: CabinetKey<'_>) -> Result<Option<Versioned<Cabinet>>, StoreError> {
        let term = match key {
            CabinetKey::Id(id) => {
                return self
                    .read(EntryKind::Cabinet, id.as_bytes(), codec::read_cabinet)
                    .await
            }
            CabinetKey::Email(email) => format!("email:{}", email.as_str()),
            CabinetKey::Account(account) => format!("account:{account}"),
        };
        let found = self
            .with_any(EntryKind::Cabinet, &[term], codec::read_cabinet)
            .await?;
        Ok(found.into_iter().next().map(|(_, cabinet)| cabinet))
    }

    async fn swap_cabinet(
        &self,
        id: &CabinetId,
        expected: Expected,
        next: Option<&Cabinet>,
        letter: Option<&QueuedLetter>,
    ) -> Result<CabinetSwap, StoreError> {
        let write = next.map(|cabinet| {
            let mut terms = vec![term(format!("email:{}", cabinet.email.as_str()), true)];
            terms.extend(
                cabinet
                    .accounts
                    .iter()
                    .map(|account| term(format!("account:{account}"), true)),
            );
            EntryWrite {
                body: codec::cabinet(cabinet),
                terms,
                expires_at: None,
                due_at: None,
            }
        });
        let mut changes = vec![Change {
            next: write,
            ..deleted(EntryKind::Cabinet, id.as_bytes(), expected)
        }];
        changes.extend(letter.map(|letter| letter_change(letter, Expected::Absent)));
        Ok(match self.0.commit(&changes).await? {
            Commit::Written => CabinetSwap::Written,
            Commit::Conflict => CabinetSwap::Conflict,
            Commit::Taken => CabinetSwap::Taken,
        })
    }
}

#[async_trait]
impl<T: EntryStore> LetterStore for Encoded<T> {
    async fn claim_letters(
        &self,
        now: Timestamp,
        claim_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<QueuedLetter>>, StoreError> {
        let mut claimed = Vec::new();
        for (_, entry) in self.0.due_entries(EntryKind::Letter, now, limit).await? {
            let mut letter = codec::read_letter(&entry.body)?;
            if letter.status != LetterStatus::Queued || letter.next_attempt_at > now {
                continue;
            }
            letter.next_attempt_at = claim_until;
            let change = letter_change(&letter, Expected::Version(entry.version));
            // Another caller took it first: it is theirs until the claim ends.
            if self.0.commit(&[change]).await? == Commit::Written {
                claimed.push(Versioned {
                    value: letter,
                    version: entry.version.next(),
                });
            }
        }
        Ok(claimed)
    }

    async fn swap_letter(
        &self,
        id: &LetterId,
        expected: Expected,
        next: Option<&QueuedLetter>,
    ) -> Result<bool, StoreError> {
        let change = match next {
            Some(letter) => letter_change(letter, expected),
            None => deleted(EntryKind::Letter, id.as_bytes(), expected),
        };
        Ok(self.0.commit(&[change]).await? == Commit::Written)
    }

    async fn letters_about(
        &self,
        email: Option<&Email>,
        cabinet: Option<&CabinetId>,
    ) -> Result<Vec<Versioned<QueuedLetter>>, StoreError> {
        let mut terms: Vec<String> = email
            .map(|email| format!("to:{}", email.as_str()))
            .into_iter()
            .collect();
        terms.extend(cabinet.map(|cabinet| format!("cabinet:{}", hex(cabinet.as_bytes()))));
        let found = self
            .with_any(EntryKind::Letter, &terms, codec::read_letter)
            .await?;
        Ok(found.into_iter().map(|(_, letter)| letter).collect())
    }

    async fn purge_letters(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.0.purge_entries(EntryKind::Letter, now).await
    }
}

#[async_trait]
impl<T: EntryStore> SessionStore for Encoded<T> {
    async fn session(&self, token: &TokenHash) -> Result<Option<Versioned<Session>>, StoreError> {
        self.read(EntryKind::Session, token.as_bytes(), codec::read_session)
            .await
    }

    async fn swap_session(
        &self,
        token: &TokenHash,
        expected: Expected,
        next: Option<&Session>,
    ) -> Result<bool, StoreError> {
        let write = next.map(|session| EntryWrite {
            body: codec::session(session),
            terms: vec![term(
                format!("cabinet:{}", hex(session.cabinet.as_bytes())),
                false,
            )],
            expires_at: Some(session.expires_at),
            due_at: None,
        });
        let change = Change {
            next: write,
            ..deleted(EntryKind::Session, token.as_bytes(), expected)
        };
        Ok(self.0.commit(&[change]).await? == Commit::Written)
    }

    async fn cabinet_sessions(
        &self,
        cabinet: &CabinetId,
    ) -> Result<Vec<(TokenHash, Versioned<Session>)>, StoreError> {
        let term = format!("cabinet:{}", hex(cabinet.as_bytes()));
        let found = self
            .with_any(EntryKind::Session, &[term], codec::read_session)
            .await?;
        found
            .into_iter()
            .map(|(key, session)| Ok((token_of(&key)?, session)))
            .collect()
    }

    async fn purge_sessions(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.0.purge_entries(EntryKind::Session, now).await
    }
}

#[async_trait]
impl<T: EntryStore> CounterStore for Encoded<T> {
    async fn increment(
        &self,
        key: &CounterKey,
        now: Timestamp,
        window: Duration,
    ) -> Result<Count, StoreError> {
        self.0.increment(key, now, window).await
    }

    async fn reset(&self, key: &CounterKey) -> Result<(), StoreError> {
        self.0.reset(key).await
    }

    async fn purge_counters(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.0.purge_counters(now).await
    }

    async fn counters_about(
        &self,
        subjects: &[String],
    ) -> Result<Vec<(CounterKey, Count)>, StoreError> {
        self.0.counters_about(subjects).await
    }
}

impl<T: EntryStore> Store for Encoded<T> {}
