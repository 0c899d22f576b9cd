//! Sessions and counters on Redis with the records on PostgreSQL pass the store conformance
//! suite, unchanged.

mod common;

resident_auth::testing::store_conformance_tests!(common::fresh_store());

/// The store fault matrix on `SplitStore<PgStore, RedisStore, RedisStore>`: every store
/// call of every step failed before it reaches a backend and after it took effect. The
/// adapters' own statements and scripts run (the fault store forwards every method).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_fault_of_every_step_on_postgres_and_redis() {
    let definite = resident_auth::testing::store_fault_matrix(common::fresh_store).await;
    for (step, problem) in &definite {
        eprintln!("after a lost answer, the retry of {step} answers {problem:?}");
    }
}
