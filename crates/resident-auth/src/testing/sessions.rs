//! The session primitives' rules: compare-and-swap without resurrection, listing by
//! cabinet, and the session check's composite read.

use super::*;

/// Sessions (of a stored cabinet): insert-if-absent, compare-and-swap, delete; a write at
/// a version read before a delete never brings the session back.
pub async fn sessions_swap_without_resurrection<S: Store + Clone + 'static>(store: &S) {
    let now = t0();
    let owner = cabinet(&email("resident@example.org"), &[account("7800000000001")]);
    store
        .swap_cabinet(&owner.id, Expected::Absent, Some(&owner), None)
        .await
        .unwrap();
    let record = session(&owner, now);
    let t = token();
    assert!(store
        .swap_session(&t, Expected::Absent, Some(&record))
        .await
        .unwrap());
    assert!(!store
        .swap_session(&t, Expected::Absent, Some(&record))
        .await
        .unwrap());
    let stored = store.session(&t).await.unwrap().expect("stored");
    assert_eq!(stored.value, record);
    assert_eq!(stored.version, Version::FIRST);

    let touched = Session {
        last_used: now.plus(MINUTE),
        expires_at: now.plus(31 * MINUTE),
        ..record.clone()
    };
    assert!(store
        .swap_session(&t, Expected::Version(stored.version), Some(&touched))
        .await
        .unwrap());
    assert!(
        !store
            .swap_session(&t, Expected::Version(stored.version), Some(&record))
            .await
            .unwrap(),
        "a stale version writes nothing"
    );
    assert_eq!(
        store.session(&t).await.unwrap().map(|s| s.value),
        Some(touched.clone())
    );

    assert!(store.swap_session(&t, Expected::Any, None).await.unwrap());
    assert!(
        !store
            .swap_session(&t, Expected::Version(Version::FIRST.next()), Some(&touched))
            .await
            .unwrap(),
        "no resurrection of a deleted session"
    );
    assert!(store.session(&t).await.unwrap().is_none());
    assert!(
        store.swap_session(&t, Expected::Any, None).await.unwrap(),
        "deleting nothing is not an error"
    );
}

/// Listing a cabinet's sessions: exactly its own, expired ones included, each under the
/// token it is stored under and at its version; a deleted one is gone from the list.
pub async fn sessions_are_listed_by_cabinet<S: Store + Clone + 'static>(store: &S) {
    let now = t0();
    let owner = cabinet(&email("resident@example.org"), &[account("7800000000001")]);
    let neighbour = cabinet(&email("neighbour@example.org"), &[account("7800000000002")]);
    for c in [&owner, &neighbour] {
        store
            .swap_cabinet(&c.id, Expected::Absent, Some(c), None)
            .await
            .unwrap();
    }
    assert!(store.cabinet_sessions(&owner.id).await.unwrap().is_empty());
    let expired = Session {
        expires_at: now,
        ..session(&owner, Timestamp::from_millis(now.as_millis() - 3_600_000))
    };
    let mine = [
        (token(), session(&owner, now)),
        (token(), session(&owner, now.plus(MINUTE))),
        (token(), expired),
    ];
    for (t, record) in &mine {
        assert!(store
            .swap_session(t, Expected::Absent, Some(record))
            .await
            .unwrap());
    }
    let theirs = token();
    store
        .swap_session(&theirs, Expected::Absent, Some(&session(&neighbour, now)))
        .await
        .unwrap();
    let mut listed = store.cabinet_sessions(&owner.id).await.unwrap();
    listed.sort_by_key(|(_, s)| s.value.created_at);
    let mut expected: Vec<_> = mine.iter().collect();
    expected.sort_by_key(|(_, s)| s.created_at);
    assert_eq!(listed.len(), 3);
    for ((t, stored), (want_t, want)) in listed.iter().zip(expected) {
        assert_eq!(t, want_t);
        assert_eq!(&stored.value, want);
        assert_eq!(stored.version, Version::FIRST);
    }
    store
        .swap_session(&mine[0].0, Expected::Any, None)
        .await
        .unwrap();
    let left = store.cabinet_sessions(&owner.id).await.unwrap();
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|(t, _)| *t != mine[0].0));
    let theirs_listed = store.cabinet_sessions(&neighbour.id).await.unwrap();
    assert_eq!(theirs_listed.len(), 1);
    assert_eq!(theirs_listed[0].0, theirs);
}

/// The session-and-cabinet lookup returns both, or nothing when either is missing.
pub async fn session_with_cabinet_reads_both<S: Store + Clone + 'static>(store: &S) {
    let now = t0();
    let owner = cabinet(&email("resident@example.org"), &[account("7800000000001")]);
    let t = token();
    assert!(store.session_with_cabinet(&t).await.unwrap().is_none());
    store
        .swap_cabinet(&owner.id, Expected::Absent, Some(&owner), None)
        .await
        .unwrap();
    let record = session(&owner, now);
    store
        .swap_session(&t, Expected::Absent, Some(&record))
        .await
        .unwrap();
    let (found, of) = store
        .session_with_cabinet(&t)
        .await
        .unwrap()
        .expect("both there");
    assert_eq!((found.value, of), (record.clone(), owner.clone().into()));
    // Read again (a store keeping snapshots now answers from its own), then write the
    // cabinet: the next lookup sees the write, never the snapshot from before it.
    let again = store
        .session_with_cabinet(&t)
        .await
        .unwrap()
        .expect("both there");
    assert_eq!(again.1, owner.clone().into());
    let reissued = Cabinet {
        credential_version: owner.credential_version + 1,
        accounts: vec![account("7800000000001"), account("7800000000002")],
        password_expires_at: None,
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
    let (_, of) = store
        .session_with_cabinet(&t)
        .await
        .unwrap()
        .expect("both there");
    assert_eq!(of, reissued.clone().into(), "the write is seen at once");
    store
        .swap_cabinet(&owner.id, Expected::Any, None, None)
        .await
        .unwrap();
    assert!(
        store.session_with_cabinet(&t).await.unwrap().is_none(),
        "a session of a deleted cabinet is no session"
    );
}
