//! The reference store passes the store conformance suite and the store fault matrix, as
//! every shipped store does — each test on a fresh file under cargo's target tmp dir.
#![allow(clippy::unwrap_used)]

use std::{
    path::PathBuf,
    sync::atomic::{AtomicU64, Ordering},
};

use own_store::SqliteEntries;
use resident_auth::ports::Encoded;

fn new_path() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let directory = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("own-store");
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join(format!(
        "{}-{}.db",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    path
}

async fn fresh_store() -> Encoded<SqliteEntries> {
    Encoded::new(SqliteEntries::open(&new_path()).await.unwrap())
}

resident_auth::testing::store_conformance_tests!(fresh_store());

/// Every store call of every step failed before it reaches the database and after it took
/// effect, each on a fresh file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_fault_of_every_step() {
    let definite = resident_auth::testing::store_fault_matrix(fresh_store).await;
    for (step, problem) in &definite {
        eprintln!("after a lost answer, the retry of {step} answers {problem:?}");
    }
}
