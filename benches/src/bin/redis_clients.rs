//! The two well-kept Redis clients side by side on a session check's one round trip.
//!
//! `cargo run --release -p resident-auth-benches --bin redis-clients -- [REDIS_URL]
//! [--seconds 5] [--clients 32] [--rounds 3]`
//!
//! A session check on `RedisStore` pipelines `HGETALL` of the session's hash and `HMGET` of
//! its cabinet's snapshot. This driver stores 1,000 such pairs (under a key prefix of its
//! own, deleted at the end) and has `--clients` tasks repeat that pipeline for `--seconds`,
//! once through `redis`'s `ConnectionManager` (what `resident-auth-redis` uses) and once
//! through `fred`'s `Client`, alternating for `--rounds` rounds so that both meet the same
//! machine; it prints each round and the ratio of the means. Figures: `benches/README.md`.
#![allow(
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::panic,
    missing_docs
)]

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use fred::prelude::{ClientLike, HashesInterface};

const PAIRS: usize = 1_000;
const SNAPSHOT_FIELDS: [&str; 5] = ["g", "em", "cv", "acc", "pe"];

struct Options {
    url: String,
    seconds: u64,
    clients: usize,
    rounds: usize,
}

fn options() -> Options {
    let mut options = Options {
        url: "redis://127.0.0.1:6379".to_owned(),
        seconds: 5,
        clients: 32,
        rounds: 3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().expect("a value after the flag");
        match arg.as_str() {
            "--seconds" => options.seconds = value().parse().expect("seconds"),
            "--clients" => options.clients = value().parse().expect("clients"),
            "--rounds" => options.rounds = value().parse().expect("rounds"),
            url if url.starts_with("redis://") => options.url = url.to_owned(),
            other => panic!("unknown argument {other}"),
        }
    }
    options
}

fn session_key(prefix: &str, i: usize) -> String {
    format!("{prefix}:session:{i:064x}")
}

fn snapshot_key(prefix: &str, i: usize) -> String {
    format!("{prefix}:{{cabinet:{i:032x}}}:snapshot")
}

/// Runs `check` from `clients` tasks for `seconds`; answers checks per second.
async fn saturate<F, Fut>(clients: usize, seconds: u64, check: F) -> f64
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (done, stop, check) = (Arc::clone(&done), Arc::clone(&stop), check.clone());
            tokio::spawn(async move {
                let mut i = client;
                while !stop.load(Ordering::Relaxed) {
                    check(i % PAIRS).await;
                    done.fetch_add(1, Ordering::Relaxed);
                    i += clients;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("a client task");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let options = options();
    let prefix: Arc<str> = format!("bench-clients-{}", std::process::id()).into();
    let client = redis::Client::open(options.url.as_str()).expect("a Redis URL");
    let manager = redis::aio::ConnectionManager::new(client)
        .await
        .expect("Redis through the redis crate");
    let fred = fred::prelude::Builder::from_config(
        fred::prelude::Config::from_url(&options.url).expect("a Redis URL"),
    )
    .build()
    .expect("a fred client");
    fred.init().await.expect("Redis through fred");

    let mut setup = manager.clone();
    for i in 0..PAIRS {
        let session = [
            ("v", "3".to_owned()),
            ("id", format!("{i:032x}")),
            ("cab", format!("{i:032x}")),
            ("cv", "1".to_owned()),
            ("ca", "1764979200000".to_owned()),
            ("lu", "1764979200000".to_owned()),
            ("ea", "1765584000000".to_owned()),
            ("acc", "7800000000001".to_owned()),
        ];
        let snapshot = [
            ("g", "17".to_owned()),
            ("em", format!("resident{i}@example.org")),
            ("cv", "1".to_owned()),
            ("acc", "7800000000001,7800000000002".to_owned()),
            ("pe", String::new()),
        ];
        let () = redis::pipe()
            .hset_multiple(session_key(&prefix, i), &session)
            .ignore()
            .hset_multiple(snapshot_key(&prefix, i), &snapshot)
            .ignore()
            .query_async(&mut setup)
            .await
            .expect("the pairs stored");
    }

    let through_redis = {
        let (manager, prefix) = (manager.clone(), Arc::clone(&prefix));
        move |i: usize| {
            let (mut connection, prefix) = (manager.clone(), Arc::clone(&prefix));
            async move {
                let (session, snapshot): (HashMap<String, String>, Vec<Option<String>>) =
                    redis::pipe()
                        .hgetall(session_key(&prefix, i))
                        .cmd("HMGET")
                        .arg(snapshot_key(&prefix, i))
                        .arg(&SNAPSHOT_FIELDS)
                        .query_async(&mut connection)
                        .await
                        .expect("a check through redis");
                assert_eq!((session.len(), snapshot.len()), (8, 5));
            }
        }
    };
    let through_fred = {
        let (fred, prefix) = (fred.clone(), Arc::clone(&prefix));
        move |i: usize| {
            let (fred, prefix) = (fred.clone(), Arc::clone(&prefix));
            async move {
                let pipeline = fred.pipeline();
                let () = pipeline
                    .hgetall(session_key(&prefix, i))
                    .await
                    .expect("queued");
                let () = pipeline
                    .hmget(snapshot_key(&prefix, i), SNAPSHOT_FIELDS.to_vec())
                    .await
                    .expect("queued");
                let (session, snapshot): (HashMap<String, String>, Vec<Option<String>>) =
                    pipeline.all().await.expect("a check through fred");
                assert_eq!((session.len(), snapshot.len()), (8, 5));
            }
        }
    };

    println!(
        "\n{} clients, {} s per figure, {} rounds alternating\n",
        options.clients, options.seconds, options.rounds
    );
    println!(
        "| round | redis (ConnectionManager) checks/s | fred (Client) checks/s | fred ÷ redis |"
    );
    println!("|---|---|---|---|");
    let (mut redis_sum, mut fred_sum) = (0.0, 0.0);
    for round in 1..=options.rounds {
        // Alternate which goes first, so neither always meets a warmer machine.
        let (r, f) = if round % 2 == 1 {
            let r = saturate(options.clients, options.seconds, through_redis.clone()).await;
            let f = saturate(options.clients, options.seconds, through_fred.clone()).await;
            (r, f)
        } else {
            let f = saturate(options.clients, options.seconds, through_fred.clone()).await;
            let r = saturate(options.clients, options.seconds, through_redis.clone()).await;
            (r, f)
        };
        println!("| {round} | {r:.0} | {f:.0} | {:.2} |", f / r);
        redis_sum += r;
        fred_sum += f;
    }
    println!(
        "| mean | {:.0} | {:.0} | {:.2} |",
        redis_sum / options.rounds as f64,
        fred_sum / options.rounds as f64,
        fred_sum / redis_sum
    );

    let mut cleanup = manager.clone();
    for i in 0..PAIRS {
        let () = redis::pipe()
            .del(session_key(&prefix, i))
            .ignore()
            .del(snapshot_key(&prefix, i))
            .ignore()
            .query_async(&mut cleanup)
            .await
            .expect("the pairs deleted");
    }
    fred.quit().await.expect("fred closed");
}
