//! The store an embedder writes from `docs/stores.md` (`tests/own_store/mod.rs`:
//! one `EntryStore` on SQLite, made a `Store` by `Encoded`) passes the store
//! conformance suite and the store fault matrix, as every adapter does.
#![allow(clippy::unwrap_used)]

mod common;
mod own_store;

use own_store::SqliteEntries;
use resident_auth::ports::Encoded;

async fn fresh_store() -> Encoded<SqliteEntries> {
    Encoded::new(SqliteEntries::open(&common::new_path()).await.unwrap())
}

resident_auth::testing::store_conformance_tests!(fresh_store());

/// Every store call of every step failed before it reaches the database and after it took
/// effect, each on a fresh file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_fault_of_every_step_on_entries() {
    let definite = resident_auth::testing::store_fault_matrix(fresh_store).await;
    for (step, problem) in &definite {
        eprintln!("after a lost answer, the retry of {step} answers {problem:?}");
    }
}
