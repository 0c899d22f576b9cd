//! A login enumeration probe (feature `testing`): what an attacker measures to learn
//! whether an email has a cabinet, run against any [`AuthService`] — so every store
//! adapter can show that an unknown email and a wrong password look the same through it.
//!
//! The answer and the argon2 work are compared exactly (the work is counted inside
//! [`Argon2Hasher`], where argon2 runs). Time is sampled the way an attacker would sample
//! it: many attempts, interleaved, the order flipped every pair so that drift and
//! background load fall on both sides alike, compared by medians and by the median of the
//! per-pair ratios. The bound is relative, never an absolute speed.

use std::time::{Duration, Instant};

pub use crate::hasher::CountingHasher;

use secrecy::SecretString;

use crate::{
    clock::ManualClock, hasher::Argon2Hasher, journeys::LoggedIn, locale::Explain, AuthService,
    Error, ErrorKind, HashWork, Locale, RequestContext,
};

/// What a caller can observe of a failed login, except time: status, codes and messages,
/// and whether a `Retry-After` came with it.
pub type Observed = (Option<ErrorKind>, Vec<(&'static str, String)>, bool);

/// The result of [`probe_login_enumeration`].
#[derive(Debug, Clone)]
pub struct EnumerationReport {
    /// Measured pairs.
    pub pairs: usize,
    /// Median time of a login with the unknown email.
    pub unknown_median: Duration,
    /// Median time of a login with the known email and a wrong password.
    pub wrong_median: Duration,
    /// Median over pairs of (unknown time ÷ wrong time).
    pub median_paired_ratio: f64,
    /// Every attempt's observable answer, unknown-email side.
    pub unknown_answers: Vec<Observed>,
    /// Every attempt's observable answer, wrong-password side.
    pub wrong_answers: Vec<Observed>,
    /// Argon2 work of every attempt, unknown-email side.
    pub unknown_work: Vec<HashWork>,
    /// Argon2 work of every attempt, wrong-password side.
    pub wrong_work: Vec<HashWork>,
}

impl EnumerationReport {
    /// Unknown median ÷ wrong-password median.
    #[must_use]
    pub fn median_ratio(&self) -> f64 {
        self.unknown_median.as_secs_f64() / self.wrong_median.as_secs_f64()
    }

    /// Whether the two sides are indistinguishable: the same answers and the same argon2
    /// work attempt for attempt, and the median paired time ratio within `1 ± tolerance`.
    ///
    /// Time is judged by the paired ratio: each pair's two attempts run back to back, so a
    /// machine that slows down for a while (other processes on its cores) slows both alike
    /// and the ratio holds, where the ratio of the two sides' medians moves with the load
    /// (seen: 1.068 beside a paired 0.993 on a busy machine). A real difference shows in
    /// every pair, so in both.
    #[must_use]
    pub fn indistinguishable(&self, tolerance: f64) -> bool {
        self.unknown_answers == self.wrong_answers
            && self.unknown_work == self.wrong_work
            && (self.median_paired_ratio - 1.0).abs() <= tolerance
    }
}

impl std::fmt::Display for EnumerationReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} interleaved pairs: unknown email {:?}, wrong password {:?} (medians), \
             ratio {:.3}, median paired ratio {:.3}, argon2 work per attempt {:?} vs {:?}",
            self.pairs,
            self.unknown_median,
            self.wrong_median,
            self.median_ratio(),
            self.median_paired_ratio,
            self.unknown_work.first(),
            self.wrong_work.first(),
        )
    }
}

fn observe(result: Result<LoggedIn, Error>) -> Observed {
    match result {
        Ok(_) => (None, Vec::new(), false),
        Err(error) => (
            Some(error.kind()),
            error
                .problems()
                .iter()
                .map(|p| (p.code(), p.message(Locale::Ru)))
                .collect(),
            error.retry_after().is_some(),
        ),
    }
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// One measured login attempt.
struct Sample {
    time: Duration,
    observed: Observed,
    work: HashWork,
}

async fn attempt(
    service: &AuthService,
    hasher: &Argon2Hasher,
    email: &str,
    context: &RequestContext,
) -> Sample {
    let password = SecretString::from("Wrong-Password-1".to_owned());
    let before = hasher.work();
    let started = Instant::now();
    let result = service.login(email, password, context).await;
    let time = started.elapsed();
    Sample {
        time,
        observed: observe(result),
        work: hasher.work().since(before),
    }
}

/// One side's samples.
#[derive(Default)]
struct Side {
    times: Vec<Duration>,
    answers: Vec<Observed>,
    work: Vec<HashWork>,
}

impl Side {
    fn push(&mut self, sample: Sample) {
        self.times.push(sample.time);
        self.answers.push(sample.observed);
        self.work.push(sample.work);
    }
}

/// Logs in `pairs` times with `unknown_email` and with `known_email` and a wrong
/// password, interleaved, after one unmeasured warm-up pair (first calls pay for page
/// faults and cold caches). Between pairs the clock steps past the login throttle windows,
/// so every attempt takes the path an attacker's first attempts take, through argon2.
/// `hasher` must be the service's hasher.
pub async fn probe_login_enumeration(
    service: &AuthService,
    hasher: &Argon2Hasher,
    clock: &ManualClock,
    known_email: &str,
    unknown_email: &str,
    pairs: usize,
) -> EnumerationReport {
    let config = service.config();
    let step = config
        .login_per_cabinet_and_client
        .window
        .max(config.login_per_cabinet.window)
        + Duration::from_secs(60);
    let context = RequestContext::new(Locale::Ru);
    let (mut unknown, mut wrong) = (Side::default(), Side::default());
    let mut ratios = Vec::with_capacity(pairs);
    for pair in 0..=pairs {
        clock.advance(step);
        let unknown_first = pair % 2 == 0;
        let (mut unknown_sample, mut wrong_sample) = (None, None);
        for unknown_turn in [unknown_first, !unknown_first] {
            if unknown_turn {
                unknown_sample = Some(attempt(service, hasher, unknown_email, &context).await);
            } else {
                wrong_sample = Some(attempt(service, hasher, known_email, &context).await);
            }
        }
        if let (true, Some(u), Some(w)) = (pair > 0, unknown_sample, wrong_sample) {
            ratios.push(u.time.as_secs_f64() / w.time.as_secs_f64());
            unknown.push(u);
            wrong.push(w);
        }
    }
    ratios.sort_unstable_by(f64::total_cmp);
    EnumerationReport {
        pairs,
        unknown_median: median(&mut unknown.times),
        wrong_median: median(&mut wrong.times),
        median_paired_ratio: ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN),
        unknown_answers: unknown.answers,
        wrong_answers: wrong.answers,
        unknown_work: unknown.work,
        wrong_work: wrong.work,
    }
}
