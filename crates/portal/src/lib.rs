//! What the two example portals share, so that each is only its framework's glue
//! (`publish = false`: not a library for hosts, who use `resident-auth-axum` or
//! `resident-auth-actix` directly):
//!
//! - [`config::PortalConfig`] and [`config::build`]: the environment variables of the
//!   examples/README.md and the adapters they select (in-memory or
//!   PostgreSQL; outbox or SMTP), with the bundled demo directory;
//! - [`config::start`] and [`config::Portal::listen`]: logging, start-up errors for the
//!   operator, the listening socket and the banner the tests wait for;
//! - [`config::bills`]: the examples' own endpoint, `GET /bills`.
#![forbid(unsafe_code)]
// No production function over 80 lines (clippy.toml); tests may be longer.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

pub mod config;

pub use config::{bills, start, stop_requested, Portal, PortalConfig};
