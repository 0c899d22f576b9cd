//! The in-memory store passes the store conformance suite.

resident_auth::store_conformance_tests!(async { resident_auth::memory::MemoryStore::new() });
