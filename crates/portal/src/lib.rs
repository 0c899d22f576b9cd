//! Framework-neutral pieces of a resident-auth portal, shared by the axum and actix
//! examples so that each is only routing and configuration:
//!
//! - [`api`]: every endpoint of the JSON API (docs/contract.md §5) as a function taking the raw
//!   body and headers' meaning, returning an [`api::ApiResponse`] (status, JSON body,
//!   `Retry-After`);
//! - [`openapi`]: the API's OpenAPI document, generated from those functions;
//! - [`config::PortalConfig`] and [`config::build`]: the environment variables of the README's "Configuration of the examples"
//!   and the adapters they select (in-memory or PostgreSQL; outbox or SMTP).
#![forbid(unsafe_code)]

pub mod api;
pub mod client;
pub mod config;
pub mod openapi;
