//! [`Cached`]: a store with a cache of cabinet snapshots beside it, in the shape of
//! tower-sessions' `CachingSessionStore` — the store keeps the records, the cache keeps
//! what a session check needs of a cabinet, and the wrapper keeps the two consistent.

use super::*;

/// How long a cabinet's snapshot is kept in the cache: the longest a snapshot can outlive a
/// write of its cabinet if the cache failed right after the write and the write took longer
/// than [`WRITE_PENDING`].
const SNAPSHOT_KEPT: Duration = Duration::from_secs(5 * 60);

/// How long the cache refuses snapshots of a cabinet once a write of it began, if the end
/// of the write is never heard of.
const WRITE_PENDING: Duration = Duration::from_secs(30);

/// Snapshots of cabinets (a cabinet without its password hash: what a session check needs),
/// kept so that a check need not read the records store, with a generation per cabinet that
/// every write of it changes. `resident-auth-redis`'s `RedisStore` is one; a cache passes
/// `resident_auth::testing::snapshot_rules`.
#[async_trait]
pub trait SnapshotCache: Send + Sync {
    /// The snapshot of `cabinet` if kept, else the generation an offer must name.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn cabinet_snapshot(&self, cabinet: &CabinetId) -> Result<SnapshotRead, StoreError>;

    /// Atomically: keeps `snapshot` for `keep` if no write of its cabinet began or ended
    /// since [`SnapshotCache::cabinet_snapshot`] answered `generation`, and none is pending.
    /// Returns whether it kept it.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure; then nothing is kept.
    async fn offer_cabinet_snapshot(
        &self,
        generation: u64,
        snapshot: &CabinetSnapshot,
        keep: Duration,
    ) -> Result<bool, StoreError>;

    /// Atomically, before a write of `cabinet`: forgets its snapshot, changes its
    /// generation and refuses offers for `pending` (or until the write ends).
    ///
    /// # Errors
    /// [`StoreError`] on backend failure; the write must not go ahead.
    async fn begin_cabinet_write(
        &self,
        cabinet: &CabinetId,
        pending: Duration,
    ) -> Result<(), StoreError>;

    /// Atomically, after a write of `cabinet`: forgets its snapshot again, changes its
    /// generation and takes offers again.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn end_cabinet_write(&self, cabinet: &CabinetId) -> Result<(), StoreError>;
}

/// A [`Store`] whose session checks read cabinets from a [`SnapshotCache`]: every method
/// goes to `store`, except that a cabinet write is framed by the cache (the snapshot is
/// forgotten and offers refused before the write, forgotten again after), and a session
/// check reads the session from `store` and its cabinet from the cache — from `store` only
/// when the cache has none, offering back what it read under the generation it saw. So a
/// check never keeps a cabinet older than a write that completed (docs/security.md,
/// "Cabinet snapshots beside the sessions").
///
/// ```
/// use resident_auth::{memory::MemoryStore, ports::{Cached, SnapshotCache, Store}};
///
/// /// Records and sessions in `store`, what checks need of cabinets in `cache`.
/// fn cached<C: SnapshotCache + 'static>(store: MemoryStore, cache: C) -> impl Store {
///     Cached::new(store, cache)
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Cached<S, C> {
    store: S,
    cache: C,
}

impl<S: Store, C: SnapshotCache> Cached<S, C> {
    /// `store` with snapshots of its cabinets in `cache`.
    pub fn new(store: S, cache: C) -> Self {
        Self { store, cache }
    }
}

fn store_of<S, C>(cached: &Cached<S, C>) -> &S {
    &cached.store
}

forward::forward_links!([S: Store, C: SnapshotCache] Cached<S, C>, store_of, forward::direct);
forward::forward_letters!([S: Store, C: SnapshotCache] Cached<S, C>, store_of, forward::direct);
forward::forward_sessions!([S: Store, C: SnapshotCache] Cached<S, C>, store_of, forward::direct);
forward::forward_counters!([S: Store, C: SnapshotCache] Cached<S, C>, store_of, forward::direct);

#[async_trait]
impl<S: Store, C: SnapshotCache> CabinetStore for Cached<S, C> {
    async fn cabinet(&self, key: CabinetKey<'_>) -> Result<Option<Versioned<Cabinet>>, StoreError> {
        self.store.cabinet(key).await
    }

    async fn swap_cabinet(
        &self,
        id: &CabinetId,
        expected: Expected,
        next: Option<&Cabinet>,
        letter: Option<&QueuedLetter>,
    ) -> Result<CabinetSwap, StoreError> {
        self.cache.begin_cabinet_write(id, WRITE_PENDING).await?;
        let swapped = self.store.swap_cabinet(id, expected, next, letter).await;
        if let Err(error) = self.cache.end_cabinet_write(id).await {
            // The write stands; snapshots of this cabinet are refused until the pending
            // time ends, and read from the store meanwhile.
            tracing::warn!(
                error = %error,
                "the snapshot cache did not hear of the end of a cabinet write"
            );
        }
        swapped
    }
}

#[async_trait]
impl<S: Store, C: SnapshotCache> Store for Cached<S, C> {
    fn outlives_the_process(&self) -> bool {
        self.store.outlives_the_process()
    }

    async fn session_with_cabinet(
        &self,
        token: &TokenHash,
    ) -> Result<Option<(Versioned<Session>, CabinetSnapshot)>, StoreError> {
        let Some(session) = self.store.session(token).await? else {
            return Ok(None);
        };
        let id = session.value.cabinet;
        let generation = match self.cache.cabinet_snapshot(&id).await? {
            // A snapshot older than the session's credentials predates a write whose end
            // the cache missed: read the store.
            SnapshotRead::Found(snapshot)
                if snapshot.credential_version >= session.value.credential_version =>
            {
                return Ok(Some((session, snapshot)));
            }
            SnapshotRead::Missing { generation } => Some(generation),
            _ => None,
        };
        let read_at = std::time::Instant::now();
        let Some(cabinet) = self.store.cabinet(CabinetKey::Id(&id)).await? else {
            return Ok(None);
        };
        let snapshot = CabinetSnapshot::from(cabinet.value);
        // A generation held long enough for writes to have come and gone unseen (their
        // markers expired) is not offered against.
        if let Some(generation) = generation.filter(|_| read_at.elapsed() < WRITE_PENDING) {
            // Best effort: a snapshot not kept is read from the store next time.
            if let Err(error) = self
                .cache
                .offer_cabinet_snapshot(generation, &snapshot, SNAPSHOT_KEPT)
                .await
            {
                tracing::debug!(error = %error, "a cabinet snapshot was not kept");
            }
        }
        Ok(Some((session, snapshot)))
    }

    async fn advance_link(
        &self,
        token: &TokenHash,
        purpose: LinkPurpose,
        now: Timestamp,
        next_token: &TokenHash,
        next: LinkAdvance,
    ) -> Result<Option<Link>, StoreError> {
        self.store
            .advance_link(token, purpose, now, next_token, next)
            .await
    }

    async fn increment_all(
        &self,
        keys: &[(CounterKey, Duration)],
        now: Timestamp,
    ) -> Result<Vec<Count>, StoreError> {
        self.store.increment_all(keys, now).await
    }

    async fn reset_all(&self, keys: &[CounterKey]) -> Result<(), StoreError> {
        self.store.reset_all(keys).await
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.store.purge_expired(now).await
    }
}
