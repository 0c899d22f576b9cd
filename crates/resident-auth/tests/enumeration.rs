//! User enumeration through login (SECURITY.md, "user enumeration"): an unknown email and
//! a registered email with a wrong password must be indistinguishable — by the answer, by
//! the argon2 work done, and by the time taken — with the production argon2 parameters.
//!
//! The answer and the work are compared exactly; the work is counted inside the hasher,
//! where argon2 runs. Time is what a shared machine can disturb, so it is sampled the way
//! an attacker would sample it: many attempts, interleaved (and the order flipped every
//! pair) so that drift and background load fall on both sides alike, compared by medians.
//! The bound is relative (within 5 %), never an absolute speed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use resident_auth::{
    Argon2Hasher, AuthConfig, Error, HashParams, HashWork, Locale, LoggedIn, UserError,
};

/// Interleaved pairs of attempts. Each attempt costs one production argon2 verification
/// (~20 ms optimised), so the whole test takes a few seconds.
const PAIRS: usize = 80;
const UNKNOWN: &str = "nobody@example.org";

/// Everything a caller can observe of a failed login except time.
fn observable(result: Result<LoggedIn, Error>) -> (u16, Vec<(&'static str, String)>, bool) {
    let error = result.expect_err("a wrong password must not log in");
    let problems = error
        .problems()
        .iter()
        .map(|p| (p.code(), p.message(Locale::Ru)))
        .collect();
    (error.http_status(), problems, error.retry_after().is_some())
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_email_and_wrong_password_are_indistinguishable() {
    let hasher = Argon2Hasher::with_workers(HashParams::default(), 1).unwrap();
    let h = harness_with_hasher(AuthConfig::default(), hasher.clone(), |s, m| (s, m));
    h.register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    let per_attempt = HashWork {
        runs: 1,
        block_passes: u64::from(HashParams::default().m_cost)
            * u64::from(HashParams::default().t_cost),
    };

    let mut times = [Vec::with_capacity(PAIRS), Vec::with_capacity(PAIRS)];
    let mut answers = [Vec::new(), Vec::new()];
    let mut ratios = Vec::with_capacity(PAIRS);
    // One unmeasured pair first: the first calls pay for page faults and cold caches.
    for pair in 0..=PAIRS {
        // Throttle windows are 15 minutes: stepping past them keeps every attempt on the
        // path an attacker's first attempts take, through argon2.
        h.advance(Duration::from_secs(16 * 60));
        let order = if pair % 2 == 0 { [0, 1] } else { [1, 0] };
        let mut pair_times = [Duration::ZERO; 2];
        for side in order {
            let email = [UNKNOWN, RESIDENT][side];
            let before = hasher.work();
            let started = Instant::now();
            let result = h
                .service
                .login(email, secret("Wrong-Password-1"), &ru())
                .await;
            let elapsed = started.elapsed();
            assert_eq!(hasher.work().since(before), per_attempt, "{email}");
            pair_times[side] = elapsed;
            if pair > 0 {
                times[side].push(elapsed);
                answers[side].push(observable(result));
            }
        }
        if pair > 0 {
            ratios.push(pair_times[0].as_secs_f64() / pair_times[1].as_secs_f64());
        }
    }

    // Identical answers, attempt for attempt.
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0][0].0, 401);

    let [unknown, wrong] = &mut times;
    let (unknown, wrong) = (median(unknown), median(wrong));
    ratios.sort_unstable_by(f64::total_cmp);
    let paired = ratios[ratios.len() / 2];
    let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
    eprintln!(
        "login medians over {PAIRS} interleaved pairs: unknown email {unknown:?}, \
         wrong password {wrong:?}, ratio {ratio:.3}, median paired ratio {paired:.3}"
    );
    assert!(
        (0.95..=1.05).contains(&ratio),
        "medians differ by more than 5 %: unknown {unknown:?} vs wrong {wrong:?}"
    );
    assert!(
        (0.95..=1.05).contains(&paired),
        "paired ratio {paired:.3} is outside 0.95–1.05"
    );
}

#[tokio::test]
async fn throttled_unknown_and_known_emails_answer_alike_without_argon2_work() {
    let hasher = Argon2Hasher::with_workers(HashParams::insecure_fast_for_tests(), 1).unwrap();
    let h = harness_with_hasher(AuthConfig::default(), hasher.clone(), |s, m| (s, m));
    h.register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    let limit = AuthConfig::default().login_per_cabinet.max_events;
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
    assert_eq!((last.0, last.2), (429, true));
    assert_eq!(work[0].last(), Some(&0));
}
