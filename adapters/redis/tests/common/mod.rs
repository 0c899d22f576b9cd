//! The servers of the tests: PostgreSQL (the postgres adapter's test server: `DATABASE_URL`
//! or a throwaway cluster) for the records, Redis (`REDIS_URL`, else a throwaway
//! `redis-server` started once per test binary) for sessions and counters. Each store gets
//! a fresh database and a fresh key prefix, so tests run in parallel on one Redis.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::Path,
    process::{Command, Stdio},
    sync::OnceLock,
};

use resident_auth::ports::{Cached, SplitStore};
use resident_auth_postgres::PgStore;
use resident_auth_redis::RedisStore;

#[path = "../../../postgres/tests/common/mod.rs"]
pub mod postgres;

static REDIS: OnceLock<String> = OnceLock::new();

/// The URL of the tests' Redis.
pub fn redis_url() -> &'static str {
    REDIS.get_or_init(|| {
        if let Ok(url) = std::env::var("REDIS_URL") {
            return url;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/throwaway-redis.sh");
        let mut child = Command::new("bash")
            .arg(script)
            .arg(port.to_string())
            .env("WATCH_PID", std::process::id().to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("bash scripts/throwaway-redis.sh");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("READY ")
            .unwrap_or_else(|| {
                panic!("throwaway Redis did not start (is redis-server installed?): {line:?}")
            })
            .to_owned();
        std::mem::forget(child);
        url
    })
}

/// A Redis store under a prefix no other test uses.
pub async fn fresh_redis() -> RedisStore {
    let prefix = format!("resident-auth-test-{:016x}", rand::random::<u64>());
    RedisStore::connect(redis_url(), &prefix).await.unwrap()
}

/// The store of the checks: records on a fresh PostgreSQL database, sessions and counters
/// on Redis under a fresh prefix, cabinet snapshots cached there too.
pub async fn fresh_store() -> Cached<SplitStore<PgStore, RedisStore, RedisStore>, RedisStore> {
    let url = postgres::fresh_database().await;
    let records = PgStore::new(postgres::pool(&url, 8).await);
    let redis = fresh_redis().await;
    Cached::new(
        SplitStore::new(records, redis.clone(), redis.clone()),
        redis,
    )
}
