//! User enumeration through login (docs/security.md, "user enumeration"): an unknown email and
//! a registered email with a wrong password must be indistinguishable — by the answer, by
//! the argon2 work done, and by the time taken — with the production argon2 parameters.
//!
//! The probe is `resident_auth::testing::enumeration::probe_login_enumeration`, shared with the
//! PostgreSQL adapter's tests: answers and argon2 work compared exactly, time by the median
//! ratio of interleaved pairs, within 5 % (a relative bound, never an absolute speed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use resident_auth::{
    config::{Argon2Hasher, HashParams, HashWork},
    errors::Explain,
    journeys::LoggedIn,
    testing::enumeration::probe_login_enumeration,
    Error, Locale,
};

/// Interleaved pairs of attempts. Each attempt costs one production argon2 verification
/// (~20 ms optimised), so the whole test takes a few seconds.
const PAIRS: usize = 80;
const UNKNOWN: &str = "nobody@example.org";

/// Everything a caller can observe of a failed login except time.
fn observable(
    result: Result<LoggedIn, Error>,
) -> (resident_auth::ErrorKind, Vec<(&'static str, String)>, bool) {
    let error = result.expect_err("a wrong password must not log in");
    let problems = error
        .problems()
        .iter()
        .map(|p| (p.code(), p.message(Locale::Ru)))
        .collect();
    (error.kind(), problems, error.retry_after().is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_email_and_wrong_password_are_indistinguishable() {
    let hasher = Argon2Hasher::with_workers(HashParams::default(), 1).unwrap();
    let h = harness_with_hasher(config(), hasher.clone(), |s, m| (s, m));
    h.register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;

    let mut report =
        probe_login_enumeration(&h.service, &hasher, &h.clock, RESIDENT, UNKNOWN, PAIRS).await;
    eprintln!("login, in memory: {report}");
    if !report.indistinguishable(0.05) {
        // Other test binaries share the two cores: one noisy probe is measured again. A real
        // timing channel shows in both runs.
        report =
            probe_login_enumeration(&h.service, &hasher, &h.clock, RESIDENT, UNKNOWN, PAIRS).await;
        eprintln!("login, in memory, measured again: {report}");
    }

    assert_eq!(report.unknown_answers, report.wrong_answers);
    assert_eq!(
        report.unknown_answers[0].0,
        Some(resident_auth::ErrorKind::Unauthenticated)
    );
    let per_attempt = HashWork {
        runs: 1,
        block_passes: u64::from(HashParams::default().m_cost)
            * u64::from(HashParams::default().t_cost),
    };
    assert!(report
        .unknown_work
        .iter()
        .chain(&report.wrong_work)
        .all(|w| *w == per_attempt));
    assert!(report.indistinguishable(0.05), "{report}");
}

#[tokio::test]
async fn throttled_unknown_and_known_emails_answer_alike_without_argon2_work() {
    let hasher = Argon2Hasher::with_workers(HashParams::insecure_fast_for_tests(), 1).unwrap();
    let h = harness_with_hasher(config(), hasher.clone(), |s, m| (s, m));
    h.register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    let limit = config().login_per_cabinet_and_client.max;
    let mut answers = [Vec::new(), Vec::new()];
    let mut work = [Vec::new(), Vec::new()];
    for _ in 0..=limit {
        for (side, email) in [UNKNOWN, RESIDENT].into_iter().enumerate() {
            let before = hasher.work();
            let result = h
                .service
                .login(email, secret("Wrong-Password-1"), &ru())
                .await;
            work[side].push(hasher.work().since(before).runs);
            answers[side].push(observable(result));
        }
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(work[0], work[1]);
    // The attempt past the limit is refused before argon2 runs, for both.
    let last = answers[0].last().unwrap();
    assert_eq!(
        (last.0, last.2),
        (resident_auth::ErrorKind::Throttled, true)
    );
    assert_eq!(work[0].last(), Some(&0));
}
