//! Store figures: write scaling, SQLite and PostgreSQL.

use super::*;

/// Store writes per second (one counter increment each: the smallest write, a throttle's)
/// with `writers` concurrent tasks for `duration`: where a single-writer database bends.
pub(super) async fn writes_per_second(
    store: &Arc<dyn Store>,
    writers: usize,
    duration: Duration,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (store, done, stop) = (store.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key =
                        resident_auth::ports::CounterKey::new("bench:write", format!("{w}:{i}"));
                    store
                        .increment(
                            &key,
                            resident_auth::config::Clock::now(&SystemClock),
                            Duration::from_secs(3600),
                        )
                        .await
                        .unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / duration.as_secs_f64()
}

/// The writes rows: writes/s at 1, 8 and 32 concurrent writers, each ÷ the 1-writer rate.
pub(super) async fn write_scaling(store: &Arc<dyn Store>, database: &str) {
    let one = writes_per_second(store, 1, Duration::from_secs(3)).await;
    row(
        &format!("store writes/s, {database}, 1 writer"),
        format!("{one:.0}/s"),
        "—",
        "one commit per write",
    );
    for writers in [8, 32] {
        let rate = writes_per_second(store, writers, Duration::from_secs(3)).await;
        row(
            &format!("store writes/s, {database}, {writers} writers ÷ 1 writer"),
            format!("{:.2} ({rate:.0}/s)", rate / one),
            "—",
            if database == "SQLite" {
                "one writer at a time: the file's write lock"
            } else {
                "row locks: writers of different rows proceed together"
            },
        );
    }
}

// ---- SQLite ----------------------------------------------------------------------------

pub(super) async fn sqlite(t: f64) {
    let dir = tempfile::tempdir().unwrap();
    let pool = resident_auth_sqlite::open(
        dir.path().join("resident-auth.db"),
        &resident_auth_sqlite::SqliteOptions::default(),
    )
    .await
    .unwrap();
    let journeys = 40;
    resident_auth_sqlite::import_directory(&pool, &directory(CABINETS + journeys))
        .await
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(resident_auth_sqlite::SqliteStore::new(pool.clone()));
    let dir_port = Arc::new(resident_auth_sqlite::SqliteDirectory::new(pool.clone()));
    let setup = Arc::new(
        setup(
            store.clone(),
            dir_port.clone(),
            Arc::new(Argon2Hasher::new(HashParams::default()).unwrap()),
        )
        .await,
    );
    println!();
    println!("SQLite (a file in a temporary directory, WAL, synchronous=NORMAL):");
    println!();
    println!("| figure | measured | target | what limits it |");
    println!("|---|---|---|---|");
    let (latency, h_alongside) = login_latency(&setup, 40).await;
    row(
        "login latency with SQLite ÷ H (alternating samples)",
        format!(
            "{:.3} ({:.2} ms ÷ {:.2} ms)",
            ms(latency) / ms(h_alongside),
            ms(latency),
            ms(h_alongside)
        ),
        "≤ 1.10",
        "argon2 + 3 statements in the process",
    );
    let (known, unknown) = recovery_timing(&setup, 400).await;
    row(
        "recovery request with SQLite, registered ÷ unknown email",
        format!(
            "{:.3} ({:.2} ms ÷ {:.2} ms)",
            ms(known) / ms(unknown),
            ms(known),
            ms(unknown)
        ),
        "0.95–1.05",
        "one conditional write either way",
    );
    for clients in [cores(), 50] {
        let rate = saturated(&setup, clients, Duration::from_secs(5)).await;
        row(
            &format!("saturated logins/s with SQLite ÷ T, {clients} clients"),
            format!("{:.3} ({rate:.1}/s)", rate / t),
            "≥ 0.85",
            "the hashing pool; a login writes one session",
        );
    }
    let mut journeys_run = JourneySteps::new(store.clone(), dir_port, bench_config());
    for j in 0..journeys {
        journeys_run.walk(CABINETS + j, None).await;
    }
    write_scaling(&store, "SQLite").await;
    println!();
    println!("| journey step (SQLite) | p50 | p99 |");
    println!("|---|---|---|");
    for (name, p50, p99, _) in journeys_run.summary() {
        println!("| {name} | {:.2} ms | {:.2} ms |", ms(p50), ms(p99));
    }
    pool.close().await;
}

// ---- PostgreSQL ------------------------------------------------------------------------

pub(super) async fn postgres(t: f64) {
    let admin_url = database_url();
    let admin = resident_auth_postgres::connect(&admin_url, &Default::default())
        .await
        .unwrap();
    let name = format!("loadtest_{}", std::process::id());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let _ = sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(&admin)
        .await;
    let url = {
        let (base, _) = admin_url.rsplit_once('/').unwrap();
        format!("{base}/{name}")
    };
    let pool = resident_auth_postgres::connect(
        &url,
        &resident_auth_postgres::PoolConfig::with_max_connections(20),
    )
    .await
    .unwrap();
    resident_auth_postgres::migrate(&pool).await.unwrap();
    let journeys = 40;
    resident_auth_postgres::import_directory(&pool, &directory(CABINETS + journeys))
        .await
        .unwrap();
    let _ = sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(&pool)
        .await;
    let stats = reset_stats(&pool).await;
    let store = Arc::new(resident_auth_postgres::PgStore::new(pool.clone()));
    let dir = Arc::new(resident_auth_postgres::PgDirectory::new(pool.clone()));
    let setup = Arc::new(
        setup(
            store.clone(),
            dir.clone(),
            Arc::new(Argon2Hasher::new(HashParams::default()).unwrap()),
        )
        .await,
    );

    println!();
    println!(
        "PostgreSQL ({}):",
        if std::env::var("DATABASE_URL").is_ok() {
            "DATABASE_URL"
        } else {
            "throwaway cluster on 127.0.0.1"
        }
    );
    println!();
    println!("| figure | measured | target | what limits it |");
    println!("|---|---|---|---|");
    let (latency, h_alongside) = login_latency(&setup, 40).await;
    row(
        "login latency with Postgres ÷ H (alternating samples)",
        format!(
            "{:.3} ({:.2} ms ÷ {:.2} ms)",
            ms(latency) / ms(h_alongside),
            ms(latency),
            ms(h_alongside)
        ),
        "≤ 1.10",
        "argon2 + 3 statements on loopback",
    );
    let (known, unknown) = recovery_timing(&setup, 400).await;
    row(
        "recovery request with Postgres, registered ÷ unknown email",
        format!(
            "{:.3} ({:.2} ms ÷ {:.2} ms)",
            ms(known) / ms(unknown),
            ms(known),
            ms(unknown)
        ),
        "0.95–1.05",
        "one conditional write either way (it inserts a link and a letter, or finds nothing)",
    );
    for clients in [cores(), 50] {
        let rate = saturated(&setup, clients, Duration::from_secs(5)).await;
        row(
            &format!("saturated logins/s with Postgres ÷ T, {clients} clients"),
            format!("{:.3} ({rate:.1}/s)", rate / t),
            "≥ 0.85",
            "hashing pool; Postgres shares the same 2 cores",
        );
    }

    let writes_store: Arc<dyn Store> = store.clone();
    write_scaling(&writes_store, "PostgreSQL").await;
    // Each journey step: p50/p99 over fresh residents, and round trips of one pass.
    let mut journeys_run = JourneySteps::new(store, dir, bench_config());
    for j in 0..journeys {
        journeys_run
            .walk(CABINETS + j, stats.then_some(&pool))
            .await;
    }
    println!();
    println!("| journey step (PostgreSQL) | p50 | p99 | round trips |");
    println!("|---|---|---|---|");
    for (name, p50, p99, trips) in journeys_run.summary() {
        let trips = trips.map_or_else(
            || "n/a (no pg_stat_statements)".to_owned(),
            |n| n.to_string(),
        );
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {trips} |",
            ms(p50),
            ms(p99)
        );
    }
    pool.close().await;
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await;
}
