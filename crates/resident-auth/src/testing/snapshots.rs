//! The rules of a [`SnapshotCache`], and of the [`Cached`] store's session check built on
//! one.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::ports::{
    CabinetSnapshot, CabinetStore, Cached, SessionStore, SnapshotCache, SnapshotRead, SplitStore,
    StoreError,
};

/// Every rule below, on fresh snapshot caches from `fresh`.
pub async fn snapshot_rules<S, F, Fut>(fresh: F)
where
    S: SnapshotCache + Clone + 'static,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = S>,
{
    snapshots_are_kept_until_a_write_of_their_cabinet(&fresh().await).await;
    snapshots_are_refused_while_a_write_is_pending(&fresh().await).await;
    cached_store_checks_sessions_from_snapshots(fresh().await).await;
    cached_store_never_keeps_a_snapshot_read_before_a_write(fresh().await).await;
}

fn snapshot(accounts: &[&str], credential_version: u64) -> CabinetSnapshot {
    let mut cabinet = cabinet(
        &email("o'brien+bills@example.org"),
        &accounts.iter().map(|a| account(a)).collect::<Vec<_>>(),
    );
    cabinet.credential_version = credential_version;
    cabinet.into()
}

async fn generation<S: SnapshotCache>(store: &S, id: &CabinetId) -> u64 {
    match store.cabinet_snapshot(id).await.unwrap() {
        SnapshotRead::Missing { generation } => generation,
        other => panic!("no snapshot expected, found {other:?}"),
    }
}

const KEEP: Duration = Duration::from_secs(60);

/// A snapshot offered at the generation read is kept and read back as offered (no
/// accounts, a temporary password, an email with quotes and a plus); a write's beginning
/// and its end each drop it and change the generation, so an offer at an older
/// generation is refused.
pub async fn snapshots_are_kept_until_a_write_of_their_cabinet<S: SnapshotCache>(store: &S) {
    let mut kept = snapshot(&["7800000000001", "7800000000002"], 3);
    let id = kept.id;
    let first = match store.cabinet_snapshot(&id).await.unwrap() {
        SnapshotRead::NotKept => panic!("this cache keeps no cabinet snapshots"),
        SnapshotRead::Missing { generation } => generation,
        SnapshotRead::Found(found) => panic!("a snapshot of an unknown cabinet: {found:?}"),
    };
    assert!(store
        .offer_cabinet_snapshot(first, &kept, KEEP)
        .await
        .unwrap());
    assert_eq!(
        store.cabinet_snapshot(&id).await.unwrap(),
        SnapshotRead::Found(kept.clone())
    );
    let bare = CabinetSnapshot {
        accounts: Vec::new(),
        password_expires_at: Some(t0()),
        ..snapshot(&[], 0)
    };
    let bare_at = generation(store, &bare.id).await;
    assert!(store
        .offer_cabinet_snapshot(bare_at, &bare, KEEP)
        .await
        .unwrap());
    assert_eq!(
        store.cabinet_snapshot(&bare.id).await.unwrap(),
        SnapshotRead::Found(bare)
    );

    store.begin_cabinet_write(&id, KEEP).await.unwrap();
    let during = generation(store, &id).await;
    assert_ne!(during, first, "a write's beginning changes the generation");
    store.end_cabinet_write(&id).await.unwrap();
    let after = generation(store, &id).await;
    assert_ne!(after, during, "a write's end changes the generation");
    kept.credential_version += 1;
    for stale in [first, during] {
        assert!(
            !store
                .offer_cabinet_snapshot(stale, &kept, KEEP)
                .await
                .unwrap(),
            "an offer at a generation from before the write's end is refused"
        );
    }
    assert_eq!(generation(store, &id).await, after);
    assert!(store
        .offer_cabinet_snapshot(after, &kept, KEEP)
        .await
        .unwrap());
    assert_eq!(
        store.cabinet_snapshot(&id).await.unwrap(),
        SnapshotRead::Found(kept)
    );
}

/// While a write is pending, no offer is kept, even at the current generation; a pending
/// write whose end is never heard of stops blocking when its time ends; a snapshot goes
/// when its own time ends.
pub async fn snapshots_are_refused_while_a_write_is_pending<S: SnapshotCache>(store: &S) {
    let kept = snapshot(&["7800000000001"], 1);
    let id = kept.id;
    store
        .begin_cabinet_write(&id, Duration::from_millis(300))
        .await
        .unwrap();
    let during = generation(store, &id).await;
    assert!(
        !store
            .offer_cabinet_snapshot(during, &kept, KEEP)
            .await
            .unwrap(),
        "no snapshot is kept while a write is pending"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let later = generation(store, &id).await;
    assert!(
        store
            .offer_cabinet_snapshot(later, &kept, KEEP)
            .await
            .unwrap(),
        "a write never heard of again stops blocking when its pending time ends"
    );
    let brief = snapshot(&["7800000000002"], 1);
    let at = generation(store, &brief.id).await;
    assert!(store
        .offer_cabinet_snapshot(at, &brief, Duration::from_millis(200))
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    generation(store, &brief.id).await;
}

/// Records in memory, counting every call made to them.
#[derive(Clone, Default)]
struct CountedRecords {
    inner: crate::memory::MemoryStore,
    calls: Arc<AtomicUsize>,
}

impl CountedRecords {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn records(store: &CountedRecords) -> &crate::memory::MemoryStore {
    &store.inner
}

async fn counted<T>(
    store: &CountedRecords,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    store.calls.fetch_add(1, Ordering::SeqCst);
    call.await
}

crate::ports::forward_store!([] CountedRecords, records, counted);

/// Records counted, sessions in a memory store of their own, snapshots in `cache`.
type CachedSplit<C> =
    Cached<SplitStore<CountedRecords, crate::memory::MemoryStore, crate::memory::MemoryStore>, C>;

async fn cached_with_session<C: SnapshotCache + Clone + 'static>(
    cache: C,
) -> (CachedSplit<C>, CountedRecords, Cabinet, TokenHash) {
    let records = CountedRecords::default();
    let sessions = crate::memory::MemoryStore::new();
    let split = SplitStore::new(records.clone(), sessions, records.inner.clone());
    let store = Cached::new(split, cache);
    let owner = cabinet(&email("resident@example.org"), &[account("7800000000001")]);
    store
        .swap_cabinet(&owner.id, Expected::Absent, Some(&owner), None)
        .await
        .unwrap();
    let t = token();
    store
        .swap_session(&t, Expected::Absent, Some(&session(&owner, t0())))
        .await
        .unwrap();
    (store, records, owner, t)
}

/// On a [`Cached`] store, the first session check reads the cabinet from the records and
/// every later one reads no records at all, until a write of the cabinet: the next check
/// sees the write at once and is then served from the cache again. A session ended after such checks is no session at the next.
pub async fn cached_store_checks_sessions_from_snapshots<C: SnapshotCache + Clone + 'static>(
    cache: C,
) {
    let (store, records, owner, t) = cached_with_session(cache).await;
    let (_, first) = store.session_with_cabinet(&t).await.unwrap().unwrap();
    assert_eq!(first, owner.clone().into());
    let before = records.calls();
    for _ in 0..10 {
        let (_, again) = store.session_with_cabinet(&t).await.unwrap().unwrap();
        assert_eq!(again, first);
    }
    assert_eq!(
        records.calls(),
        before,
        "session checks after the first read no records"
    );
    let reissued = Cabinet {
        credential_version: owner.credential_version + 1,
        ..owner.clone()
    };
    assert_eq!(
        store
            .swap_cabinet(
                &owner.id,
                Expected::Version(Version::FIRST),
                Some(&reissued),
                None
            )
            .await
            .unwrap(),
        CabinetSwap::Written
    );
    let (_, seen) = store.session_with_cabinet(&t).await.unwrap().unwrap();
    assert_eq!(seen, reissued.clone().into(), "the write is seen at once");
    let before = records.calls();
    store.session_with_cabinet(&t).await.unwrap().unwrap();
    assert_eq!(records.calls(), before, "and kept again");
    let ended = token();
    store
        .swap_session(&ended, Expected::Absent, Some(&session(&owner, t0())))
        .await
        .unwrap();
    for _ in 0..2 {
        store.session_with_cabinet(&ended).await.unwrap().unwrap();
    }
    assert!(store
        .swap_session(&ended, Expected::Any, None)
        .await
        .unwrap());
    assert!(
        store.session_with_cabinet(&ended).await.unwrap().is_none(),
        "a session ended after checks served from the cache is no session"
    );
    store
        .swap_cabinet(&owner.id, Expected::Any, None, None)
        .await
        .unwrap();
    assert!(
        store.session_with_cabinet(&t).await.unwrap().is_none(),
        "a session of a deleted cabinet is no session"
    );
}

/// A check that read the cabinet before a write and offers it after (a slow request)
/// keeps nothing: the next check sees the write. A write whose end the cache never
/// heard of (it failed after the records were written) keeps checks reading the records
/// until its pending time ends; a snapshot older than the session's own credentials is
/// never believed.
pub async fn cached_store_never_keeps_a_snapshot_read_before_a_write<
    C: SnapshotCache + Clone + 'static,
>(
    cache: C,
) {
    let (store, records, owner, t) = cached_with_session(cache.clone()).await;
    let slow = generation(&cache, &owner.id).await;
    let read_before: CabinetSnapshot = owner.clone().into();
    let reissued = Cabinet {
        credential_version: owner.credential_version + 1,
        ..owner.clone()
    };
    store
        .swap_cabinet(
            &owner.id,
            Expected::Version(Version::FIRST),
            Some(&reissued),
            None,
        )
        .await
        .unwrap();
    assert!(!cache
        .offer_cabinet_snapshot(slow, &read_before, KEEP)
        .await
        .unwrap());
    let (_, seen) = store.session_with_cabinet(&t).await.unwrap().unwrap();
    assert_eq!(seen, reissued.clone().into());

    // The end of the next write is lost: the records change, the cache only heard of the
    // beginning.
    cache
        .begin_cabinet_write(&owner.id, Duration::from_millis(300))
        .await
        .unwrap();
    let again = Cabinet {
        credential_version: reissued.credential_version + 1,
        ..reissued.clone()
    };
    records
        .inner
        .swap_cabinet(
            &owner.id,
            Expected::Version(Version::FIRST.next()),
            Some(&again),
            None,
        )
        .await
        .unwrap();
    for _ in 0..3 {
        let before = records.calls();
        let (_, seen) = store.session_with_cabinet(&t).await.unwrap().unwrap();
        assert_eq!(seen, again.clone().into());
        assert_eq!(
            records.calls(),
            before + 1,
            "read from the records meanwhile"
        );
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    store.session_with_cabinet(&t).await.unwrap().unwrap();
    let before = records.calls();
    let (_, seen) = store.session_with_cabinet(&t).await.unwrap().unwrap();
    assert_eq!(
        (seen, records.calls()),
        (again.clone().into(), before),
        "kept again once the pending time ended"
    );

    // A session opened under newer credentials than the snapshot kept (the snapshot
    // outlived a write it never heard of) reads the records.
    let newer = token();
    let mut opened = session(&again, t0());
    opened.credential_version = again.credential_version + 1;
    store
        .swap_session(&newer, Expected::Absent, Some(&opened))
        .await
        .unwrap();
    let before = records.calls();
    store.session_with_cabinet(&newer).await.unwrap().unwrap();
    assert_eq!(records.calls(), before + 1);
}
