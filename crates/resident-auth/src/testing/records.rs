//! The storage primitives' rules: links, cabinets, counters, listing by subject and
//! purging (sessions' rules beside, in `sessions.rs`).

use super::*;

/// Links: insert-if-absent, read, compare-and-swap, a move to another token, consume once.
pub async fn links_insert_swap_move_and_consume_once<S: Store + Clone + 'static>(store: &S) {
    let now = t0();
    let to = email("resident@example.org");
    let link = confirmation_link(&to, account("7800000000001"), now.plus(HOUR));
    let first = token();
    assert!(store.link(&first).await.unwrap().is_none());
    assert!(store
        .swap_link(&first, Expected::Absent, Some((&first, &link)), None)
        .await
        .unwrap());
    assert!(
        !store
            .swap_link(&first, Expected::Absent, Some((&first, &link)), None)
            .await
            .unwrap(),
        "insert-if-absent refuses an existing token"
    );
    let stored = store.link(&first).await.unwrap().expect("inserted");
    assert_eq!(stored.value, link);
    assert_eq!(stored.version, Version::FIRST);

    let leased = Link {
        issuing_until: Some(now.plus(MINUTE)),
        ..link.clone()
    };
    assert!(
        !store
            .swap_link(
                &first,
                Expected::Version(Version::new(7)),
                Some((&first, &leased)),
                None
            )
            .await
            .unwrap(),
        "a wrong version writes nothing"
    );
    assert!(store
        .swap_link(
            &first,
            Expected::Version(stored.version),
            Some((&first, &leased)),
            None
        )
        .await
        .unwrap());
    let stored = store.link(&first).await.unwrap().expect("still there");
    assert_eq!(stored.value, leased);
    assert_eq!(stored.version, Version::FIRST.next());

    let second = token();
    let activation = Link {
        purpose: LinkPurpose::Activation,
        ..link.clone()
    };
    assert!(store
        .swap_link(
            &first,
            Expected::Version(stored.version),
            Some((&second, &activation)),
            None
        )
        .await
        .unwrap());
    assert!(store.link(&first).await.unwrap().is_none(), "moved away");
    let moved = store.link(&second).await.unwrap().expect("moved here");
    assert_eq!(moved.value, activation);

    assert!(store
        .swap_link(&second, Expected::Version(moved.version), None, None)
        .await
        .unwrap());
    assert!(store.link(&second).await.unwrap().is_none(), "consumed");
    assert!(
        !store
            .swap_link(&second, Expected::Version(moved.version), None, None)
            .await
            .unwrap(),
        "consumed once"
    );

    // A move onto a token another link holds fails and changes nothing.
    let (a, b) = (token(), token());
    for t in [&a, &b] {
        assert!(store
            .swap_link(t, Expected::Absent, Some((t, &link)), None)
            .await
            .unwrap());
    }
    assert!(!store
        .swap_link(&a, Expected::Any, Some((&b, &activation)), None)
        .await
        .unwrap());
    assert_eq!(
        store.link(&a).await.unwrap().map(|l| l.value),
        Some(link.clone())
    );
    assert_eq!(store.link(&b).await.unwrap().map(|l| l.value), Some(link));
    assert!(store
        .swap_link(&a, Expected::Any, None, None)
        .await
        .unwrap());
    assert!(
        store.link(&a).await.unwrap().is_none(),
        "unconditional delete"
    );
}

/// Advancing a link (the confirmation step in one call): only a live link of the named
/// purpose moves, once, keeping its email, account and cabinet.
pub async fn links_advance_only_when_live_and_of_the_purpose<S: Store + Clone + 'static>(
    store: &S,
) {
    let now = t0();
    let to = email("resident@example.org");
    let link = confirmation_link(&to, account("7800000000001"), now.plus(HOUR));
    let (first, second) = (token(), token());
    store
        .swap_link(&first, Expected::Absent, Some((&first, &link)), None)
        .await
        .unwrap();
    let next = LinkAdvance {
        purpose: LinkPurpose::Activation,
        expires_at: now.plus(24 * HOUR),
    };
    for (purpose, at) in [
        (LinkPurpose::Recovery, now),
        (LinkPurpose::Confirmation, now.plus(HOUR)),
    ] {
        assert_eq!(
            store
                .advance_link(&first, purpose, at, &second, next)
                .await
                .unwrap(),
            None,
            "{purpose:?} at {at:?}"
        );
    }
    assert!(
        store.link(&first).await.unwrap().is_some(),
        "left as it was"
    );
    let moved = store
        .advance_link(&first, LinkPurpose::Confirmation, now, &second, next)
        .await
        .unwrap()
        .expect("a live confirmation advances");
    assert_eq!(
        moved,
        Link {
            purpose: LinkPurpose::Activation,
            expires_at: now.plus(24 * HOUR),
            ..link.clone()
        }
    );
    assert!(store.link(&first).await.unwrap().is_none());
    assert_eq!(
        store.link(&second).await.unwrap().map(|l| l.value),
        Some(moved)
    );
    assert_eq!(
        store
            .advance_link(&first, LinkPurpose::Confirmation, now, &token(), next)
            .await
            .unwrap(),
        None,
        "once"
    );
}

/// Cabinets: found by id, email and account; no email or account in two cabinets;
/// compare-and-swap on the version; accounts re-indexed on every write; delete.
pub async fn cabinets_keep_emails_and_accounts_unique<S: Store + Clone + 'static>(store: &S) {
    let to = email("resident@example.org");
    let (flat, parking) = (account("7800000000001"), account("7800000000002"));
    let first = Cabinet {
        password_expires_at: Some(t0().plus(HOUR)),
        ..cabinet(&to, &[flat])
    };
    assert_eq!(
        store
            .swap_cabinet(&first.id, Expected::Absent, Some(&first), None)
            .await
            .unwrap(),
        CabinetSwap::Written
    );
    for key in [
        CabinetKey::Id(&first.id),
        CabinetKey::Email(&to),
        CabinetKey::Account(&flat),
    ] {
        let found = store.cabinet(key).await.unwrap().expect("found");
        assert_eq!(found.value, first, "{key:?}");
        assert_eq!(found.version, Version::FIRST);
    }
    assert!(store
        .cabinet(CabinetKey::Account(&parking))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .swap_cabinet(&first.id, Expected::Absent, Some(&first), None)
            .await
            .unwrap(),
        CabinetSwap::Conflict,
        "insert-if-absent"
    );

    let same_email = cabinet(&to, &[parking]);
    let same_account = cabinet(&email("other@example.org"), &[parking, flat]);
    for other in [&same_email, &same_account] {
        assert_eq!(
            store
                .swap_cabinet(&other.id, Expected::Absent, Some(other), None)
                .await
                .unwrap(),
            CabinetSwap::Taken
        );
        assert!(store
            .cabinet(CabinetKey::Id(&other.id))
            .await
            .unwrap()
            .is_none());
    }
    assert!(
        store
            .cabinet(CabinetKey::Account(&parking))
            .await
            .unwrap()
            .is_none(),
        "a refused write indexes nothing"
    );

    let mut grown = first.clone();
    grown.accounts.push(parking);
    grown.password_hash = hash("second");
    grown.credential_version = 2;
    assert_eq!(
        store
            .swap_cabinet(
                &first.id,
                Expected::Version(Version::new(9)),
                Some(&grown),
                None
            )
            .await
            .unwrap(),
        CabinetSwap::Conflict
    );
    assert_eq!(
        store
            .swap_cabinet(
                &first.id,
                Expected::Version(Version::FIRST),
                Some(&grown),
                None
            )
            .await
            .unwrap(),
        CabinetSwap::Written
    );
    let found = store
        .cabinet(CabinetKey::Account(&parking))
        .await
        .unwrap()
        .expect("the added account finds the cabinet");
    assert_eq!(found.value, grown, "accounts keep their order");
    assert_eq!(found.version, Version::FIRST.next());

    // An account that leaves a cabinet is free for another.
    let mut shrunk = grown.clone();
    shrunk.accounts = vec![parking];
    assert_eq!(
        store
            .swap_cabinet(
                &first.id,
                Expected::Version(found.version),
                Some(&shrunk),
                None
            )
            .await
            .unwrap(),
        CabinetSwap::Written
    );
    assert!(store
        .cabinet(CabinetKey::Account(&flat))
        .await
        .unwrap()
        .is_none());
    let elsewhere = cabinet(&email("other@example.org"), &[flat]);
    assert_eq!(
        store
            .swap_cabinet(&elsewhere.id, Expected::Absent, Some(&elsewhere), None)
            .await
            .unwrap(),
        CabinetSwap::Written
    );

    assert_eq!(
        store
            .swap_cabinet(&first.id, Expected::Any, None, None)
            .await
            .unwrap(),
        CabinetSwap::Written
    );
    for key in [
        CabinetKey::Id(&first.id),
        CabinetKey::Email(&to),
        CabinetKey::Account(&parking),
    ] {
        assert!(
            store.cabinet(key).await.unwrap().is_none(),
            "{key:?} deleted"
        );
    }
}

/// Counters: 1, 2, 3 in one window; a fresh window at its end; reset; keys independent.
pub async fn counters_count_in_fixed_windows<S: Store + Clone + 'static>(store: &S) {
    let now = t0();
    let key = CounterKey::new("login:cabinet", "resident@example.org");
    let other = CounterKey::new("login:client", "192.0.2.1");
    for expected in 1..=3 {
        let count = store
            .increment(&key, now.plus(Duration::from_secs(expected.into())), HOUR)
            .await
            .unwrap();
        assert_eq!(count.count, expected);
        assert_eq!(
            count.window_ends,
            now.plus(Duration::from_secs(1)).plus(HOUR)
        );
    }
    assert_eq!(store.increment(&other, now, MINUTE).await.unwrap().count, 1);
    let just_before = now
        .plus(Duration::from_secs(1))
        .plus(HOUR)
        .plus(Duration::ZERO);
    let fresh = store.increment(&key, just_before, HOUR).await.unwrap();
    assert_eq!(fresh.count, 1, "the window ends at its end");
    assert_eq!(fresh.window_ends, just_before.plus(HOUR));
    store.reset(&key).await.unwrap();
    store.reset(&key).await.unwrap();
    assert_eq!(
        store
            .increment(&key, just_before, HOUR)
            .await
            .unwrap()
            .count,
        1
    );
    let both = store
        .increment_all(&[(key.clone(), HOUR), (other.clone(), MINUTE)], just_before)
        .await
        .unwrap();
    assert_eq!(both.iter().map(|c| c.count).collect::<Vec<_>>(), vec![2, 1]);
}

/// The listing primitives (what the operators' tools, closing a cabinet and erasure
/// gather): links listed by email or account, counters by their subject — exactly those,
/// no look-alikes (a subject that only ends like the one asked for), each key given back
/// as it was written.
pub async fn operators_list_links_and_counters_by_subject<S: Store + Clone + 'static>(store: &S) {
    let (first, second) = (email("resident@example.org"), email("other@example.org"));
    let (flat, parking) = (account("7800000000001"), account("7800000000002"));
    let mut tokens = Vec::new();
    for (to, number, purpose) in [
        (&first, Some(flat), LinkPurpose::Confirmation),
        (&second, Some(parking), LinkPurpose::Activation),
        (&second, None, LinkPurpose::Recovery),
    ] {
        let link = Link {
            purpose,
            account_number: number,
            ..confirmation_link(to, flat, t0().plus(HOUR))
        };
        let token = token();
        assert!(store
            .swap_link(&token, Expected::Absent, Some((&token, &link)), None)
            .await
            .unwrap());
        tokens.push(token);
    }
    let found = |links: Vec<(TokenHash, crate::ports::Versioned<Link>)>| {
        let mut found: Vec<usize> = links
            .iter()
            .map(|(token, _)| tokens.iter().position(|t| t == token).unwrap())
            .collect();
        found.sort_unstable();
        found
    };
    assert_eq!(
        found(store.links_about(Some(&first), &[]).await.unwrap()),
        [0]
    );
    assert_eq!(
        found(store.links_about(None, &[parking]).await.unwrap()),
        [1]
    );
    assert_eq!(
        found(store.links_about(Some(&second), &[flat]).await.unwrap()),
        [0, 1, 2]
    );
    assert!(store
        .links_about(Some(&email("nobody@example.org")), &[])
        .await
        .unwrap()
        .is_empty());
    let keys = [
        CounterKey::new("login:cabinet", &first),
        CounterKey::scoped("login:cabinet-client", "192.0.2.1", &first),
        CounterKey::scoped("premises:account", "900s", flat),
        CounterKey::new("letter:email", &second),
        CounterKey::new("letter:email", "another-resident@example.org"),
        CounterKey::new("login:client", "192.0.2.1"),
        // A subject that merely ends like another ("…:resident@example.org") is not it.
        CounterKey::new("login:client", format_args!("203.0.113.9:{first}")),
    ];
    for key in &keys {
        store.increment(key, t0(), HOUR).await.unwrap();
    }
    let about = |subjects: Vec<String>| {
        let store = store.clone();
        let written = keys.clone();
        async move {
            let mut keys: Vec<String> = store
                .counters_about(&subjects)
                .await
                .unwrap()
                .into_iter()
                .map(|(key, count)| {
                    assert_eq!(count.count, 1);
                    assert!(
                        written.contains(&key),
                        "{key:?}: family, scope and subject kept as written"
                    );
                    key.as_str().to_owned()
                })
                .collect();
            keys.sort();
            keys
        }
    };
    assert_eq!(
        about(vec![first.to_string()]).await,
        [keys[1].as_str(), keys[0].as_str()]
    );
    assert_eq!(about(vec![flat.to_string()]).await, [keys[2].as_str()]);
    assert_eq!(
        about(vec![second.to_string(), flat.to_string()]).await,
        [keys[3].as_str(), keys[2].as_str()]
    );
    assert!(about(vec!["example.org".to_owned()]).await.is_empty());
}

/// Purging deletes links, sessions and counters expired at or before the time given, and
/// nothing that still lives.
pub async fn purging_removes_only_what_is_dead<S: Store + Clone + 'static>(store: &S) {
    let now = t0();
    let to = email("resident@example.org");
    let owner = cabinet(&to, &[account("7800000000001")]);
    store
        .swap_cabinet(&owner.id, Expected::Absent, Some(&owner), None)
        .await
        .unwrap();
    let (dead_link, live_link) = (token(), token());
    for (t, expires_at) in [
        (&dead_link, now),
        (&live_link, now.plus(Duration::from_millis(1))),
    ] {
        let link = confirmation_link(&to, account("7800000000002"), expires_at);
        store
            .swap_link(t, Expected::Absent, Some((t, &link)), None)
            .await
            .unwrap();
    }
    let (dead_session, live_session) = (token(), token());
    for (t, expires_at) in [
        (&dead_session, now),
        (&live_session, now.plus(Duration::from_millis(1))),
    ] {
        let record = Session {
            expires_at,
            ..session(&owner, now.plus(Duration::from_millis(0)))
        };
        store
            .swap_session(t, Expected::Absent, Some(&record))
            .await
            .unwrap();
    }
    let dead_counter = CounterKey::new("recovery:email", "a@example.org");
    let live_counter = CounterKey::new("recovery:email", "b@example.org");
    store
        .increment(
            &dead_counter,
            now.plus(Duration::from_millis(0)),
            Duration::ZERO,
        )
        .await
        .unwrap();
    store
        .increment(&live_counter, now, Duration::from_millis(1))
        .await
        .unwrap();

    assert_eq!(store.purge_expired(now).await.unwrap(), 3);
    assert!(store.link(&dead_link).await.unwrap().is_none());
    assert!(store.link(&live_link).await.unwrap().is_some());
    assert!(store.session(&dead_session).await.unwrap().is_none());
    assert!(store.session(&live_session).await.unwrap().is_some());
    assert_eq!(
        store
            .increment(&live_counter, now, HOUR)
            .await
            .unwrap()
            .count,
        2,
        "a live counter survives"
    );
    assert!(store
        .cabinet(CabinetKey::Id(&owner.id))
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.purge_expired(now).await.unwrap(), 0);
}
