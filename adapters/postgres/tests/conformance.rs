//! The PostgreSQL store passes the store conformance suite, unchanged.

mod common;

resident_auth::store_conformance_tests!(common::fresh_store());
