//! Each process keeps the sessions and cabinet snapshots its checks read in a cache that Redis
//! keeps current (server-assisted client-side caching): what this process writes is never read
//! back stale, and a session another process ends is refused here within moments — not after
//! the cache's own limit of 5 s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use resident_auth::{
    config::{Clock, SystemClock},
    ports::{Expected, Session, SessionStore, TokenHash},
    CabinetId, SessionId,
};
use resident_auth_redis::RedisStore;

/// A session stored under a fresh token, alive for an hour.
async fn stored_session(store: &RedisStore) -> TokenHash {
    let now = SystemClock.now();
    let session = Session {
        id: SessionId::generate(),
        cabinet: CabinetId::generate(),
        credential_version: 1,
        active_account: None,
        created_at: now,
        last_used: now,
        expires_at: now.plus(Duration::from_secs(3600)),
        client: None,
    };
    let token = TokenHash::from_bytes(rand::random());
    assert!(store
        .swap_session(&token, Expected::Absent, Some(&session))
        .await
        .unwrap());
    token
}

/// Reads the session the way a check does, three times: the first from Redis, the later
/// ones from the cache.
async fn check_thrice(store: &RedisStore, token: &TokenHash) {
    for _ in 0..3 {
        assert!(store.session(token).await.unwrap().is_some());
    }
}

async fn end(store: &RedisStore, token: &TokenHash) {
    let current = store.session(token).await.unwrap().expect("stored");
    assert!(store
        .swap_session(token, Expected::Version(current.version), None)
        .await
        .unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_this_process_writes_is_read_back_as_written() {
    let store = common::fresh_redis().await;
    let token = stored_session(&store).await;
    for _ in 0..50 {
        check_thrice(&store, &token).await;
        let current = store.session(&token).await.unwrap().unwrap();
        let touched = Session {
            last_used: current.value.last_used.plus(Duration::from_millis(1)),
            ..current.value
        };
        assert!(store
            .swap_session(&token, Expected::Version(current.version), Some(&touched))
            .await
            .unwrap());
        let read = store.session(&token).await.unwrap().unwrap();
        assert_eq!(
            read.version,
            current.version.next(),
            "a session this process wrote read back from the cache as it was before"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_another_process_ends_is_refused_here_within_moments() {
    let here = common::fresh_redis().await;
    let elsewhere = RedisStore::connect(common::redis_url(), here.prefix())
        .await
        .unwrap();
    let token = stored_session(&elsewhere).await;
    check_thrice(&here, &token).await;
    end(&elsewhere, &token).await;
    // Redis's notice takes a message's time; the cache alone would keep the session 5 s.
    let ended = Instant::now();
    while here.session(&token).await.unwrap().is_some() {
        assert!(
            ended.elapsed() < Duration::from_secs(3),
            "a session ended elsewhere still served from this process's cache"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
