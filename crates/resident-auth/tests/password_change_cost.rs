//! A refused password change costs (next to) nothing (docs/security.md, "a refused password
//! change"): the try is counted before the strength estimator runs, and the estimator reads
//! a bounded prefix on its own thread. Figures are ratios of paired, interleaved samples
//! taken in one run; a borderline result is measured again, so a busy machine cannot fail
//! the test by noise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use resident_auth::{errors::Problem, journeys::NewPassword, Email};

/// 256 characters of the symbols the estimator reads as l33t spellings of letters: before
/// the fix it ran over the whole password (~0.5 s in a release build).
fn costly_password() -> String {
    "4@8(3<{[6!|1+0$5%7&2^9#"
        .chars()
        .cycle()
        .take(256)
        .collect()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_password_change_costs_nothing_whatever_the_new_password() {
    let h = harness();
    let password = h
        .register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    let token = h.login(RESIDENT, &password).await;
    let session = h.who(&token).await;
    let costly = costly_password();
    let context = ru();
    let change = |new: &str| {
        h.service.change_password(
            &session,
            secret("not the current password"),
            secret(new),
            &context,
        )
    };
    // Five wrong tries fill this cabinet's and client's limit.
    for _ in 0..5 {
        let error = change(CHOSEN_PASSWORD).await.unwrap_err();
        assert!(error.is(&Problem::CurrentPasswordWrong), "{error}");
    }
    // One estimate of the costly password, run directly: what a throttled try must not pay.
    let email: Email = RESIDENT.parse().unwrap();
    let estimate = median(
        (0..5)
            .map(|_| {
                let started = Instant::now();
                let _ = NewPassword::parse(secret(&costly), &email);
                started.elapsed()
            })
            .collect(),
    );
    let mut ratios = (f64::NAN, f64::NAN);
    for _attempt in 0..3 {
        let (mut with_costly, mut with_short) = (Vec::new(), Vec::new());
        for _ in 0..41 {
            for (new, samples) in [(costly.as_str(), &mut with_costly), ("x", &mut with_short)] {
                let started = Instant::now();
                let error = change(new).await.unwrap_err();
                samples.push(started.elapsed());
                assert!(
                    matches!(
                        error.problems().first(),
                        Some(Problem::LoginThrottled { .. })
                    ),
                    "a try over the limit is throttled whatever the new password: {error}"
                );
            }
        }
        let (costly_try, short_try) = (median(with_costly), median(with_short));
        ratios = (
            costly_try.as_secs_f64() / short_try.as_secs_f64(),
            costly_try.as_secs_f64() / estimate.as_secs_f64(),
        );
        println!(
            "throttled try: costly {costly_try:?}, short {short_try:?}; one estimate {estimate:?}; \
             costly ÷ short {:.2}, costly ÷ estimate {:.4}",
            ratios.0, ratios.1
        );
        if ratios.0 <= 3.0 && ratios.1 <= 0.25 {
            return;
        }
    }
    panic!(
        "a throttled try with a costly new password costs {:.2}× one with a short one and \
         {:.4}× an estimate",
        ratios.0, ratios.1
    );
}

/// The estimator's input is bounded: a costly 256-character password costs about what its
/// first 32 characters cost (before, 256 characters cost ~200× as much).
#[test]
fn the_estimate_of_a_long_password_costs_what_its_first_32_characters_cost() {
    let email: Email = RESIDENT.parse().unwrap();
    let costly = costly_password();
    let prefix: String = costly.chars().take(32).collect();
    let mut ratio = f64::NAN;
    for _attempt in 0..3 {
        let (mut whole, mut start) = (Vec::new(), Vec::new());
        for _ in 0..9 {
            for (text, samples) in [(&costly, &mut whole), (&prefix, &mut start)] {
                let started = Instant::now();
                let _ = NewPassword::parse(secret(text), &email);
                samples.push(started.elapsed());
            }
        }
        let (whole, start) = (median(whole), median(start));
        ratio = whole.as_secs_f64() / start.as_secs_f64();
        println!("estimate: 256 characters {whole:?}, first 32 {start:?}, ratio {ratio:.2}");
        if ratio <= 2.0 {
            return;
        }
    }
    panic!("256 characters cost {ratio:.2}× their first 32");
}
