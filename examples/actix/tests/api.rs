//! The shared black-box API suite against this example's binary.

api_suite::api_tests!(env!("CARGO_BIN_EXE_portal-actix"));
