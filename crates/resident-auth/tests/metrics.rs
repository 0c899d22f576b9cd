//! The service's metrics tell nobody which emails have a cabinet: a recovery request for a
//! registered email and one for an unknown email move the same counters by the same
//! amounts (docs/security.md, "enumerator"). The recorder is process-wide, so this file holds
//! the one test that installs it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::{harness, ru, RESIDENT};
use metrics_util::{
    debugging::{DebugValue, DebuggingRecorder, Snapshotter},
    MetricKind,
};

/// Every counter's value by name and labels, since the last reading (the debugging
/// recorder's snapshot drains what it reports).
fn counters(snapshotter: &Snapshotter) -> BTreeMap<String, u64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| match (key.kind(), value) {
            (MetricKind::Counter, DebugValue::Counter(count)) => {
                let key = key.key();
                let mut labels: Vec<String> = key
                    .labels()
                    .map(|label| format!("{}={}", label.key(), label.value()))
                    .collect();
                labels.sort();
                Some((format!("{}{{{}}}", key.name(), labels.join(",")), count))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_moves_the_same_counters_for_registered_and_unknown_emails() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();
    let h = harness();
    h.register_and_activate("Иванов", common::FLAT, RESIDENT, "12")
        .await;
    // Each request is delivered at once (the harness delivers in the request) and the
    // round after it finds nothing more to send.
    let mut deltas = Vec::new();
    for email in [RESIDENT, "nobody@example.org"] {
        let _ = counters(&snapshotter);
        h.service.request_recovery(email, &ru()).await.unwrap();
        h.service.deliver_due().await.unwrap();
        let moved = counters(&snapshotter);
        deltas.push(
            moved
                .into_iter()
                .filter(|(_, count)| *count > 0)
                .collect::<BTreeMap<_, _>>(),
        );
    }
    assert!(
        !deltas[0].is_empty(),
        "a recovery moves the letter counters"
    );
    assert_eq!(
        deltas[0], deltas[1],
        "registered (left) and unknown (right) emails moved different counters"
    );
    for name in resident_auth::events::metrics::NAMES {
        assert!(
            !name.contains("withheld"),
            "no metric counts withheld letters apart"
        );
    }

    // A failed store call counts once, where the service calls the store.
    let store = resident_auth::testing::FaultyStore::new(resident_auth::memory::MemoryStore::new());
    let (failing, _background) = resident_auth::AuthService::builder("https://portal.example.org")
        .store(store.clone())
        .directory(resident_auth::memory::MemoryDirectory::default())
        .mailer(resident_auth::memory::RecordingMailer::new())
        .build()
        .unwrap();
    let _ = counters(&snapshotter);
    store.arm(0, resident_auth::testing::FaultMode::BeforeTheCall);
    let refused = failing
        .authenticate("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), resident_auth::ErrorKind::Unavailable);
    assert_eq!(
        counters(&snapshotter).get("resident_auth_store_errors_total{}"),
        Some(&1),
        "one failed store call, one count"
    );
}
