#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod admin_api;
pub mod api;
pub mod client;
mod limits;
pub mod openapi;
#[cfg(feature = "pages")]
#[cfg_attr(docsrs, doc(cfg(feature = "pages")))]
pub mod pages;
pub mod web;

pub use api::{
    handle, Api, ApiResponse, Incoming, Method, Operation, Refusal, Route, BODY_LIMIT, ROUTES,
};
pub use limits::ConnectionLimits;

/// Purges expired sessions, links and idle throttles every `every`, for the life of the
/// process: spawn it on the server's runtime (the framework adapters' `spawn_purge` do).
/// A failure is logged and tried again next time.
pub async fn purge_periodically(service: resident_auth::AuthService, every: std::time::Duration) {
    loop {
        tokio::time::sleep(every).await;
        match service.purge_expired().await {
            Ok(purged) => tracing::debug!(purged, "purged expired records"),
            Err(error) => tracing::warn!(%error, "purging expired records failed"),
        }
    }
}

/// Delivers the mail queue for the life of the process: a round of
/// [`resident_auth::AuthService::deliver_due`] whenever this instance queues a letter, and
/// every `every` besides (letters queued by other instances, retries that came due). Spawn
/// it on the server's runtime (the framework adapters' `spawn_delivery` do); run it in
/// every instance — claims keep two instances from sending one letter. A failure is
/// logged and tried again next time.
pub async fn deliver_periodically(service: resident_auth::AuthService, every: std::time::Duration) {
    loop {
        match service.deliver_due().await {
            // A full batch: more may be due at once.
            Ok(report) if report.claimed >= service.config().delivery.batch => continue,
            Ok(report) if report.claimed > 0 => tracing::debug!(
                sent = report.sent,
                retried = report.retried,
                dead = report.dead,
                "delivered letters"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "delivering letters failed"),
        }
        tokio::select! {
            () = service.letter_queued() => {}
            () = tokio::time::sleep(every) => {}
        }
    }
}
