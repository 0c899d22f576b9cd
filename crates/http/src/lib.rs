#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod admin_api;
pub mod api;
pub mod client;
pub mod openapi;
pub mod web;

pub use api::{handle, Api, ApiResponse, Incoming, Method, Operation, Route, ROUTES};

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
