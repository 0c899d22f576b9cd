//! The service's metrics, through the `metrics` facade: nothing is recorded until the host
//! installs a recorder (the examples install the Prometheus exporter and serve
//! `GET /metrics`). Names follow Prometheus' conventions; [`NAMES`] lists them all.

use std::time::Duration;

use crate::letters::LetterKind;

/// Logins by outcome (`succeeded`, `failed`, `throttled`).
pub const LOGINS: &str = "resident_auth_logins_total";
/// Letters queued, by kind. A recovery request for an email without a cabinet counts
/// here and in [`LETTERS_SENT`] as its answer claims (its letter is withheld, never sent),
/// so that no metric tells which emails are registered.
pub const LETTERS_QUEUED: &str = "resident_auth_letters_queued_total";
/// Letters accepted by the mail system, by kind.
pub const LETTERS_SENT: &str = "resident_auth_letters_sent_total";
/// Delivery attempts that failed and were queued again, by kind.
pub const LETTERS_RETRIED: &str = "resident_auth_letters_retried_total";
/// Letters given up, by kind.
pub const LETTERS_DEAD: &str = "resident_auth_letters_dead_total";
/// Store (and directory) failures seen by the service.
pub const STORE_ERRORS: &str = "resident_auth_store_errors_total";
/// Password hashings and verifications waiting for a hasher thread.
pub const HASHER_QUEUE_DEPTH: &str = "resident_auth_hasher_queue_depth";
/// The argon2 core hashing runs on (`core` label: `avx2`, `portable`), always 1.
pub const HASHER_CORE: &str = "resident_auth_hasher_core";
/// Seconds a hashing or verification waited for a hasher thread.
pub const HASHER_WAIT: &str = "resident_auth_hasher_wait_seconds";
/// Seconds an HTTP request took, by route, method and status (recorded by the web
/// integrations).
pub const HTTP_REQUEST_DURATION: &str = "resident_auth_http_request_duration_seconds";

/// Every metric's name.
pub const NAMES: [&str; 10] = [
    LOGINS,
    LETTERS_QUEUED,
    LETTERS_SENT,
    LETTERS_RETRIED,
    LETTERS_DEAD,
    STORE_ERRORS,
    HASHER_QUEUE_DEPTH,
    HASHER_CORE,
    HASHER_WAIT,
    HTTP_REQUEST_DURATION,
];

/// Names and describes every metric for the installed recorder (its `# HELP` lines), and
/// records the one that never changes: which argon2 core runs ([`HASHER_CORE`]).
pub fn describe() {
    metrics::describe_gauge!(HASHER_CORE, "The argon2 core hashing runs on (label core)");
    metrics::gauge!(HASHER_CORE, "core" => crate::config::Argon2Hasher::core()).set(1.0);
    metrics::describe_counter!(LOGINS, "Logins by outcome");
    metrics::describe_counter!(LETTERS_QUEUED, "Letters queued, by kind");
    metrics::describe_counter!(LETTERS_SENT, "Letters accepted by the mail system");
    metrics::describe_counter!(LETTERS_RETRIED, "Failed delivery attempts queued again");
    metrics::describe_counter!(LETTERS_DEAD, "Letters given up");
    metrics::describe_counter!(STORE_ERRORS, "Store and directory failures");
    metrics::describe_gauge!(HASHER_QUEUE_DEPTH, "Hashings waiting for a hasher thread");
    metrics::describe_histogram!(
        HASHER_WAIT,
        metrics::Unit::Seconds,
        "Time a hashing waited for a hasher thread"
    );
    metrics::describe_histogram!(
        HTTP_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "HTTP request duration by route, method and status"
    );
}

pub(crate) fn login(outcome: &'static str) {
    metrics::counter!(LOGINS, "outcome" => outcome).increment(1);
}

pub(crate) fn letter_queued(kind: LetterKind) {
    metrics::counter!(LETTERS_QUEUED, "kind" => kind.as_str()).increment(1);
}

pub(crate) fn letter_sent(kind: LetterKind) {
    metrics::counter!(LETTERS_SENT, "kind" => kind.as_str()).increment(1);
}

pub(crate) fn letter_retried(kind: LetterKind) {
    metrics::counter!(LETTERS_RETRIED, "kind" => kind.as_str()).increment(1);
}

pub(crate) fn letter_dead(kind: LetterKind) {
    metrics::counter!(LETTERS_DEAD, "kind" => kind.as_str()).increment(1);
}

pub(crate) fn store_error() {
    metrics::counter!(STORE_ERRORS).increment(1);
}

pub(crate) fn hasher_queue(depth: usize) {
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!(HASHER_QUEUE_DEPTH).set(depth as f64);
}

pub(crate) fn hasher_wait(waited: Duration) {
    metrics::histogram!(HASHER_WAIT).record(waited.as_secs_f64());
}

/// Records one HTTP request's duration (for the web integrations).
pub fn http_request(route: &'static str, method: &str, status: u16, took: Duration) {
    metrics::histogram!(
        HTTP_REQUEST_DURATION,
        "route" => route,
        "method" => method.to_owned(),
        "status" => status.to_string()
    )
    .record(took.as_secs_f64());
}
