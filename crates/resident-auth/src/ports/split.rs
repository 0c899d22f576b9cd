//! [`SplitStore`]: records in one backend, sessions and counters in others.

use super::*;

/// A [`Store`] made of three backends: `records` keeps links, cabinets and the mail queue
/// (one backend, since a letter is queued in the same write as the link or cabinet that
/// needs it), `sessions` and `counters` the rest — e.g. registrations and cabinets in
/// PostgreSQL, sessions and counters in Redis. Each part may be the same value.
#[derive(Debug, Clone)]
pub struct SplitStore<R, S, K> {
    records: R,
    sessions: S,
    counters: K,
}

impl<R, S, K> SplitStore<R, S, K> {
    /// A store keeping links, cabinets and letters in `records`, sessions in `sessions`
    /// and counters in `counters`.
    pub fn new(records: R, sessions: S, counters: K) -> Self {
        Self {
            records,
            sessions,
            counters,
        }
    }
}

#[async_trait]
impl<R: LinkStore, S: Send + Sync, K: Send + Sync> LinkStore for SplitStore<R, S, K> {
    async fn link(&self, token: &TokenHash) -> Result<Option<Versioned<Link>>, StoreError> {
        self.records.link(token).await
    }
    async fn swap_link(
        &self,
        token: &TokenHash,
        expected: Expected,
        next: Option<(&TokenHash, &Link)>,
        letter: Option<&QueuedLetter>,
    ) -> Result<bool, StoreError> {
        self.records.swap_link(token, expected, next, letter).await
    }
    async fn purge_links(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.records.purge_links(now).await
    }
    async fn links_about(
        &self,
        email: Option<&Email>,
        accounts: &[AccountNumber],
    ) -> Result<Vec<(TokenHash, Versioned<Link>)>, StoreError> {
        self.records.links_about(email, accounts).await
    }
}

#[async_trait]
impl<R: CabinetStore, S: Send + Sync, K: Send + Sync> CabinetStore for SplitStore<R, S, K> {
    async fn cabinet(&self, key: CabinetKey<'_>) -> Result<Option<Versioned<Cabinet>>, StoreError> {
        self.records.cabinet(key).await
    }
    async fn swap_cabinet(
        &self,
        id: &CabinetId,
        expected: Expected,
        next: Option<&Cabinet>,
        letter: Option<&QueuedLetter>,
    ) -> Result<CabinetSwap, StoreError> {
        self.records.swap_cabinet(id, expected, next, letter).await
    }
}

#[async_trait]
impl<R: LetterStore, S: Send + Sync, K: Send + Sync> LetterStore for SplitStore<R, S, K> {
    async fn claim_letters(
        &self,
        now: Timestamp,
        claim_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<QueuedLetter>>, StoreError> {
        self.records.claim_letters(now, claim_until, limit).await
    }
    async fn swap_letter(
        &self,
        id: &LetterId,
        expected: Expected,
        next: Option<&QueuedLetter>,
    ) -> Result<bool, StoreError> {
        self.records.swap_letter(id, expected, next).await
    }
    async fn letters_about(
        &self,
        email: Option<&Email>,
        cabinet: Option<&CabinetId>,
    ) -> Result<Vec<Versioned<QueuedLetter>>, StoreError> {
        self.records.letters_about(email, cabinet).await
    }
    async fn purge_letters(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.records.purge_letters(now).await
    }
}

#[async_trait]
impl<R: Send + Sync, S: SessionStore, K: Send + Sync> SessionStore for SplitStore<R, S, K> {
    async fn session(&self, token: &TokenHash) -> Result<Option<Versioned<Session>>, StoreError> {
        self.sessions.session(token).await
    }
    async fn swap_session(
        &self,
        token: &TokenHash,
        expected: Expected,
        next: Option<&Session>,
    ) -> Result<bool, StoreError> {
        self.sessions.swap_session(token, expected, next).await
    }
    async fn cabinet_sessions(
        &self,
        cabinet: &CabinetId,
    ) -> Result<Vec<(TokenHash, Versioned<Session>)>, StoreError> {
        self.sessions.cabinet_sessions(cabinet).await
    }
    async fn purge_sessions(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.sessions.purge_sessions(now).await
    }
}

#[async_trait]
impl<R: Send + Sync, S: Send + Sync, K: CounterStore> CounterStore for SplitStore<R, S, K> {
    async fn increment(
        &self,
        key: &CounterKey,
        now: Timestamp,
        window: Duration,
    ) -> Result<Count, StoreError> {
        self.counters.increment(key, now, window).await
    }
    async fn reset(&self, key: &CounterKey) -> Result<(), StoreError> {
        self.counters.reset(key).await
    }
    async fn purge_counters(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.counters.purge_counters(now).await
    }
    async fn counters_about(
        &self,
        subjects: &[String],
    ) -> Result<Vec<(CounterKey, Count)>, StoreError> {
        self.counters.counters_about(subjects).await
    }
}

/// The composites are the traits' defaults over the parts: a session check reads the
/// session from `sessions` and its cabinet from `records` (wrap the split store in
/// [`Cached`] to read cabinets from a snapshot cache instead).
#[async_trait]
impl<R: LinkStore + CabinetStore + LetterStore, S: SessionStore, K: CounterStore> Store
    for SplitStore<R, S, K>
{
}
