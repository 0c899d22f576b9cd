//! Fuzzes the `Premises` parser (see `resident_auth_fuzz::check_parser`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| resident_auth_fuzz::check_parser::<resident_auth::Premises>(data));
