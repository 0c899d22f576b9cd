//! Cabinet snapshots beside the sessions in Redis: kept until a write of their cabinet,
//! refused while one is pending, and a `SplitStore` session check that reads no records
//! store once one is kept — the rules of `resident_auth::testing::snapshot_rules`.

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cabinet_snapshots_follow_every_write_on_redis() {
    resident_auth::testing::snapshot_rules(common::fresh_redis).await;
}
