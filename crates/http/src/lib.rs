#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
// No production function over 80 lines (clippy.toml); tests may be longer.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

// Layers, each module importing only from the ones below it: at the bottom `web` (headers,
// cookies, CSRF), `client` and `limits`; over them `integration` (routes, requests,
// responses: what a framework integration names); then `openapi` (what the documents
// share); then the parts: `api`, and over its answers `admin_api`, `pages` and
// `resident` (the extractor's core).
mod admin_api;
mod api;
mod client;
pub mod integration;
mod limits;
mod openapi;
#[cfg(feature = "pages")]
mod pages;
mod resident;
#[cfg(test)]
mod tests;
mod web;

pub use admin_api::{AdminApi, InvalidOperatorTokens, OperatorTokens};
pub use api::Api;
pub use client::{Cidr, ClientAddressing, InvalidCidr};
pub use limits::ConnectionLimits;
#[cfg(feature = "pages")]
#[cfg_attr(docsrs, doc(cfg(feature = "pages")))]
pub use pages::Pages;
pub use resident::{AuthError, Resident};
pub use web::{CsrfKey, CSRF_HEADER};
