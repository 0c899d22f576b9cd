//! Every journey of docs/contract.md §3, end to end on the in-memory adapters, with its failure
//! branches.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "../common/mod.rs"]
mod common;
mod invariants;
mod login;
mod recovery_and_addresses;
mod registration;
mod security;

use std::time::Duration;

use common::*;
use resident_auth::{
    config::ServedRegions,
    errors::{Explain, Problem},
    journeys::AddressForm,
    letters::LetterKind,
    Error, ErrorKind, Locale, RequestContext,
};

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

fn codes(error: &Error) -> Vec<&'static str> {
    error.problems().iter().map(Explain::code).collect()
}
