//! What a store's migrations must keep: rows written before a change of schema, as the
//! store answers for them afterwards. Each backend writes the rows in its own SQL, runs its
//! migration, and calls the check.

use super::*;

/// Counters as a store wrote them before it kept subjects apart: `(key, count)`, each
/// window ending after every test's clock. An IPv6 client holds colons; the per-client
/// families keep the whole client as the subject.
pub const COUNTERS_BEFORE_SUBJECTS: [(&str, u32); 5] = [
    ("login:cabinet:resident@example.org", 3),
    ("login:cabinet-client:2001:db8::/64:resident@example.org", 2),
    ("premises:account:900s:7800000000001", 5),
    ("login:client:2001:db8::/64", 4),
    ("registration:client:192.0.2.1", 1),
];

/// After the migration that gave [`COUNTERS_BEFORE_SUBJECTS`] their subjects, each is
/// found by its subject (`CounterStore::counters_about`), with its family, scope and count
/// kept.
pub async fn counters_from_before_subjects_are_found<S: Store>(store: &S) {
    let about = |subject: &'static str| async move {
        let mut found: Vec<(String, String, u32)> = store
            .counters_about(&[subject.to_owned()])
            .await
            .unwrap()
            .into_iter()
            .map(|(key, count)| {
                (
                    key.family().to_owned(),
                    key.subject().to_owned(),
                    count.count,
                )
            })
            .collect();
        found.sort();
        found
    };
    let expected =
        |family: &str, subject: &str, count: u32| (family.to_owned(), subject.to_owned(), count);
    assert_eq!(
        about("resident@example.org").await,
        [
            expected("login:cabinet", "resident@example.org", 3),
            expected(
                "login:cabinet-client:2001:db8::/64",
                "resident@example.org",
                2
            ),
        ]
    );
    assert_eq!(
        about("7800000000001").await,
        [expected("premises:account:900s", "7800000000001", 5)]
    );
    assert_eq!(
        about("2001:db8::/64").await,
        [expected("login:client", "2001:db8::/64", 4)]
    );
    assert_eq!(
        about("192.0.2.1").await,
        [expected("registration:client", "192.0.2.1", 1)]
    );
}
