//! The PostgreSQL store passes the store conformance suite, unchanged.

mod common;

resident_auth::testing::store_conformance_tests!(common::fresh_store());

/// The store fault matrix on PostgreSQL: every store call of every step failed before it
/// reaches the database and after it took effect, each on a fresh database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_fault_of_every_step_on_postgres() {
    let definite = resident_auth::testing::store_fault_matrix(common::fresh_store).await;
    for (step, problem) in &definite {
        eprintln!("after a lost answer, the retry of {step} answers {problem:?}");
    }
}
