#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod admin_api;
mod api;
mod client;
mod limits;
pub mod openapi;
#[cfg(feature = "pages")]
mod pages;
mod resident;
mod surface;
mod web;

pub use admin_api::{AdminApi, InvalidOperatorTokens, OperatorTokens};
pub use api::{Api, Refusal, BODY_LIMIT};
pub use client::{Cidr, ClientAddressing, InvalidCidr};
pub use limits::ConnectionLimits;
#[cfg(feature = "pages")]
#[cfg_attr(docsrs, doc(cfg(feature = "pages")))]
pub use pages::Pages;
pub use resident::{AuthError, SignedIn};
pub use surface::{Incoming, Method, Resource, Response, Route, Surface};
pub use web::{CsrfKey, Headers, CSRF_HEADER};
