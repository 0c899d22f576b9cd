//! The mail queue's rules: letters ride with their write, are claimed once, settled,
//! listed and purged.

use super::*;

fn letter_to(to: &Email, cabinet: Option<CabinetId>, at: Timestamp) -> QueuedLetter {
    let id = LetterId::generate();
    QueuedLetter {
        id,
        to: to.clone(),
        cabinet,
        kind: LetterKind::ConfirmEmail,
        sealed: Some(SealedLetter::from_bytes(vec![1, 2, 3, 4])),
        status: LetterStatus::Queued,
        attempts: 0,
        queued_at: at,
        next_attempt_at: at,
        give_up_at: at.plus(24 * HOUR),
        keep_until: None,
        last_error: None,
    }
}

/// Queues `letter` with a fresh confirmation link to its recipient (the write a
/// registration makes).
async fn queue_with_a_link<S: Store>(store: &S, letter: &QueuedLetter) {
    let t = token();
    let link = confirmation_link(
        &letter.to,
        account("7800000000001"),
        letter.queued_at.plus(HOUR),
    );
    assert!(store
        .swap_link(&t, Expected::Absent, Some((&t, &link)), Some(letter))
        .await
        .unwrap());
}

/// A letter is stored with the link or cabinet write that carries it, and only if that
/// write is: a failed compare-and-swap, a token taken, an email taken queue nothing.
pub async fn letters_ride_with_their_write_only<S: Store + Clone + 'static>(store: &S) {
    let now = t0();
    let to = email("queue@example.org");
    let link = confirmation_link(&to, account("7800000000001"), now.plus(HOUR));
    let (t, lost) = (token(), letter_to(&to, None, now));
    // A swap that fails (wrong version) queues nothing.
    assert!(!store
        .swap_link(
            &t,
            Expected::Version(Version::new(7)),
            Some((&t, &link)),
            Some(&lost)
        )
        .await
        .unwrap());
    let kept = letter_to(&to, None, now);
    assert!(store
        .swap_link(&t, Expected::Absent, Some((&t, &link)), Some(&kept))
        .await
        .unwrap());
    let letters = store.letters_about(Some(&to), None).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].value, kept);
    assert_eq!(letters[0].version, Version::FIRST);
    // Cabinets: a conflict or a taken email queues nothing; a write does.
    let first = cabinet(&to, &[account("7800000000001")]);
    let second = cabinet(&to, &[account("7800000000002")]);
    let with_first = letter_to(&to, Some(first.id), now);
    assert_eq!(
        store
            .swap_cabinet(&first.id, Expected::Absent, Some(&first), Some(&with_first))
            .await
            .unwrap(),
        CabinetSwap::Written
    );
    let refused = letter_to(&to, Some(second.id), now);
    assert_eq!(
        store
            .swap_cabinet(&second.id, Expected::Absent, Some(&second), Some(&refused))
            .await
            .unwrap(),
        CabinetSwap::Taken
    );
    assert_eq!(
        store
            .swap_cabinet(
                &first.id,
                Expected::Version(Version::new(9)),
                Some(&first),
                Some(&refused)
            )
            .await
            .unwrap(),
        CabinetSwap::Conflict
    );
    let about_first = store.letters_about(None, Some(&first.id)).await.unwrap();
    assert_eq!(about_first.len(), 1);
    assert_eq!(about_first[0].value.id, with_first.id);
    assert_eq!(store.letters_about(Some(&to), None).await.unwrap().len(), 2);
}

/// Claiming moves a due letter's next attempt to the end of the claim, so concurrent
/// callers never get one letter twice; once the claim ends unsettled (a dead worker), the
/// letter is due again. Earliest first; letters not yet due, sent or dead are never
/// claimed.
pub async fn letters_are_claimed_by_one_caller_until_the_claim_ends<S: Store + Clone + 'static>(
    store: &S,
) {
    let now = t0();
    let to = email("claims@example.org");
    let mut queued = Vec::new();
    for i in 0..30u64 {
        let mut letter = letter_to(&to, None, now.plus(Duration::from_millis(i)));
        if i == 29 {
            letter.next_attempt_at = now.plus(HOUR);
        }
        queue_with_a_link(store, &letter).await;
        queued.push(letter.id);
    }
    let at = now.plus(MINUTE);
    let claim_until = at.plus(2 * MINUTE);
    // Earliest due first.
    let first = store.claim_letters(at, claim_until, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].value.id, queued[0], "earliest due first");
    let claims = join_all((0..10).map(|_| {
        let store = store.clone();
        async move { store.claim_letters(at, claim_until, 4).await.unwrap() }
    }))
    .await;
    let mut claimed: Vec<LetterId> = claims.iter().flatten().map(|l| l.value.id).collect();
    assert!(claims.iter().all(|c| c.len() <= 4));
    let total = claimed.len();
    claimed.sort();
    claimed.dedup();
    assert_eq!(claimed.len(), total, "a letter was claimed twice");
    assert!(total <= 28, "the letter not yet due was claimed");
    assert!(
        !claimed.contains(&queued[0]),
        "a claimed letter was claimed again"
    );
    for letter in claims.iter().flatten() {
        assert_eq!(letter.value.next_attempt_at, claim_until);
        assert_eq!(letter.version, Version::FIRST.next());
    }
    // The rest of the due ones, then nothing until a claim ends.
    let rest = store.claim_letters(at, claim_until, 100).await.unwrap();
    assert_eq!(total + rest.len(), 28);
    assert!(store
        .claim_letters(at, claim_until, 100)
        .await
        .unwrap()
        .is_empty());
    // A claim that ended unsettled: every letter is due again (the one not yet due stays).
    let again = store
        .claim_letters(claim_until, claim_until.plus(MINUTE), 100)
        .await
        .unwrap();
    assert_eq!(again.len(), 29);
}

/// Settling is a compare-and-swap on the claimed version (a worker whose claim ran out
/// cannot overwrite the next one's settlement); sent and dead letters are never claimed
/// and are purged at their `keep_until`.
pub async fn letters_are_settled_listed_and_purged<S: Store + Clone + 'static>(store: &S) {
    let now = t0();
    let to = email("settle@example.org");
    for _ in 0..3 {
        queue_with_a_link(store, &letter_to(&to, None, now)).await;
    }
    let claimed = store
        .claim_letters(now, now.plus(MINUTE), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let settle = |letter: &crate::ports::Versioned<QueuedLetter>, status| QueuedLetter {
        status,
        sealed: None,
        attempts: 1,
        keep_until: Some(now.plus(HOUR)),
        ..letter.value.clone()
    };
    let sent = settle(&claimed[0], LetterStatus::Sent);
    assert!(
        !store
            .swap_letter(&sent.id, Expected::Version(Version::FIRST), Some(&sent))
            .await
            .unwrap(),
        "settling at a version before the claim fails"
    );
    assert!(store
        .swap_letter(&sent.id, Expected::Version(claimed[0].version), Some(&sent))
        .await
        .unwrap());
    let dead = settle(&claimed[1], LetterStatus::Dead);
    assert!(store
        .swap_letter(&dead.id, Expected::Version(claimed[1].version), Some(&dead))
        .await
        .unwrap());
    // The third is left claimed and unsettled: due again after its claim.
    let later = now.plus(2 * MINUTE);
    let due = store
        .claim_letters(later, later.plus(MINUTE), 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].value.id, claimed[2].value.id);
    let listed = store.letters_about(Some(&to), None).await.unwrap();
    let status_of = |id: LetterId| {
        listed
            .iter()
            .find(|l| l.value.id == id)
            .unwrap()
            .value
            .clone()
    };
    assert_eq!(status_of(sent.id).status, LetterStatus::Sent);
    assert_eq!(status_of(sent.id).sealed, None);
    assert_eq!(status_of(dead.id).status, LetterStatus::Dead);
    // Purged at keep_until, not before; the queued one stays.
    let just_before = Timestamp::from_millis(now.plus(HOUR).as_millis() - 1);
    assert_eq!(store.purge_letters(just_before).await.unwrap(), 0);
    let purged = store.purge_letters(now.plus(HOUR)).await.unwrap();
    let left: Vec<LetterId> = store
        .letters_about(Some(&to), None)
        .await
        .unwrap()
        .iter()
        .map(|l| l.value.id)
        .collect();
    assert_eq!(purged, 2, "the two settled letters go at their keep_until");
    assert_eq!(left, vec![claimed[2].value.id], "the queued letter stays");
}
