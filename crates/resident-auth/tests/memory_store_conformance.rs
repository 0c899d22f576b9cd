//! The in-memory store passes the store conformance suite, and so does a store shared
//! behind an `Arc`: the pointer forwards every method, the store's own overrides included.

resident_auth::testing::store_conformance_tests!(async {
    resident_auth::memory::MemoryStore::new()
});

mod shared {
    resident_auth::testing::store_conformance_tests!(async {
        std::sync::Arc::new(resident_auth::memory::MemoryStore::new())
    });
}

/// A shared or boxed store answers with the store's own methods, not the traits' defaults
/// (the in-memory store says it does not outlive the process; the default says it does).
#[test]
fn shared_and_boxed_stores_are_the_store_itself() {
    use resident_auth::{memory::MemoryStore, ports::Store};
    let shared = std::sync::Arc::new(MemoryStore::new());
    let boxed: Box<dyn Store> = Box::new(MemoryStore::new());
    let shared_boxed: std::sync::Arc<dyn Store> = std::sync::Arc::new(MemoryStore::new());
    // Called on the pointer types themselves, not on what they point to.
    assert!(!<std::sync::Arc<MemoryStore> as Store>::outlives_the_process(&shared));
    assert!(!<Box<dyn Store> as Store>::outlives_the_process(&boxed));
    assert!(!<std::sync::Arc<dyn Store> as Store>::outlives_the_process(
        &shared_boxed
    ));
}
