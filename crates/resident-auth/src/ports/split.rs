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

/// How long a cabinet's snapshot is kept beside its sessions: the longest a snapshot can
/// outlive a write of its cabinet if the session store failed right after the write and the
/// write took longer than [`WRITE_PENDING`].
const SNAPSHOT_KEPT: Duration = Duration::from_secs(5 * 60);

/// How long the session store refuses snapshots of a cabinet once a write of it began, if
/// the end of the write is never heard of.
const WRITE_PENDING: Duration = Duration::from_secs(30);

/// A cabinet write is framed by its session store: the snapshot kept beside the sessions
/// is forgotten and offers are refused before the records are written, and forgotten again
/// after, so a session check never keeps a cabinet older than a write that completed
/// (docs/security.md, "Cabinet snapshots beside the sessions").
#[async_trait]
impl<R: CabinetStore, S: SessionStore, K: Send + Sync> CabinetStore for SplitStore<R, S, K> {
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
        self.sessions.begin_cabinet_write(id, WRITE_PENDING).await?;
        let swapped = self.records.swap_cabinet(id, expected, next, letter).await;
        if let Err(error) = self.sessions.end_cabinet_write(id).await {
            // The write stands; snapshots of this cabinet are refused until the pending
            // time ends, and read from the records meanwhile.
            tracing::warn!(
                error = %error,
                "the session store did not hear of the end of a cabinet write"
            );
        }
        swapped
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
    async fn cabinet_snapshot(&self, cabinet: &CabinetId) -> Result<SnapshotRead, StoreError> {
        self.sessions.cabinet_snapshot(cabinet).await
    }
    async fn session_and_snapshot(
        &self,
        token: &TokenHash,
    ) -> Result<Option<(Versioned<Session>, SnapshotRead)>, StoreError> {
        self.sessions.session_and_snapshot(token).await
    }
    async fn offer_cabinet_snapshot(
        &self,
        generation: u64,
        snapshot: &CabinetSnapshot,
        keep: Duration,
    ) -> Result<bool, StoreError> {
        self.sessions
            .offer_cabinet_snapshot(generation, snapshot, keep)
            .await
    }
    async fn begin_cabinet_write(
        &self,
        cabinet: &CabinetId,
        pending: Duration,
    ) -> Result<(), StoreError> {
        self.sessions.begin_cabinet_write(cabinet, pending).await
    }
    async fn end_cabinet_write(&self, cabinet: &CabinetId) -> Result<(), StoreError> {
        self.sessions.end_cabinet_write(cabinet).await
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

/// A session check reads the session and, where the session store keeps them, the
/// cabinet's snapshot beside it; the records store only when no snapshot is kept (and then
/// offers the one it read back, under the generation it saw).
#[async_trait]
impl<R: LinkStore + CabinetStore + LetterStore, S: SessionStore, K: CounterStore> Store
    for SplitStore<R, S, K>
{
    async fn session_with_cabinet(
        &self,
        token: &TokenHash,
    ) -> Result<Option<(Versioned<Session>, CabinetSnapshot)>, StoreError> {
        let Some((session, snapshot)) = self.sessions.session_and_snapshot(token).await? else {
            return Ok(None);
        };
        let id = session.value.cabinet;
        let generation = match snapshot {
            // A snapshot older than the session's credentials predates a write whose end
            // the session store missed: read the records.
            SnapshotRead::Found(snapshot)
                if snapshot.credential_version >= session.value.credential_version =>
            {
                return Ok(Some((session, snapshot)));
            }
            SnapshotRead::Missing { generation } => Some(generation),
            _ => None,
        };
        let read_at = std::time::Instant::now();
        let Some(cabinet) = self.records.cabinet(CabinetKey::Id(&id)).await? else {
            return Ok(None);
        };
        let snapshot = CabinetSnapshot::from(cabinet.value);
        // A generation held long enough for writes to have come and gone unseen (their
        // markers expired) is not offered against.
        if let Some(generation) = generation.filter(|_| read_at.elapsed() < WRITE_PENDING) {
            // Best effort: a snapshot not kept is read from the records next time.
            if let Err(error) = self
                .sessions
                .offer_cabinet_snapshot(generation, &snapshot, SNAPSHOT_KEPT)
                .await
            {
                tracing::debug!(error = %error, "a cabinet snapshot was not kept");
            }
        }
        Ok(Some((session, snapshot)))
    }
}
