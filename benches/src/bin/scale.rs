//! PostgreSQL at a region's scale: every journey step's p50/p99 and round trips on a
//! database filled to a region's volume ÷ on an empty one, in the same run and cluster;
//! WAL written by session checks; the purge of a 5 M-row backlog; re-importing 1 M
//! directory rows unchanged and with 1 % changed.
//!
//! Volume: 1 M directory rows, 300 k cabinets with 360 k linked accounts, 1 M sessions (80 %
//! expired), 200 k pending registrations (90 % expired), 300 k throttle rows.
//!
//! Run: `cargo run --release -p resident-auth-benches --bin scale` (`DATABASE_URL` is used
//! when set, else a throwaway cluster with `pg_stat_statements`; `SCALE=0.1` for a tenth of
//! the volume; `SCALE_PART=purge` for the purge alone; `SCALE_STORE=sqlite` for the same
//! volume in a SQLite file: the steps ÷ empty, the purge and the re-import). Argon2 runs with fast test parameters, so the steps' times are the
//! database's and the service's, not the hash's.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use resident_auth::{
    config::{AuthConfig, HashParams, Limit},
    letters::Links,
    Timestamp,
};
use resident_auth_benches::{database_url, directory, JourneySteps};
use resident_auth_postgres::{import_directory, migrate, PgDirectory, PgPool, PgStore, PoolConfig};

const RESIDENTS: usize = 300;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn scale() -> f64 {
    std::env::var("SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0)
}

fn rows(n: f64) -> i64 {
    (n * scale()).round() as i64
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// The service's pool (the default 5 s statement timeout) and a bulk pool for filling.
async fn database(admin: &PgPool, admin_url: &str, name: &str) -> (PgPool, PgPool) {
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(admin)
        .await;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(admin)
        .await
        .unwrap();
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    let url = format!("{base}/{name}");
    let pool = resident_auth_postgres::connect(&url, &PoolConfig::with_max_connections(8))
        .await
        .unwrap();
    let mut bulk = PoolConfig::with_max_connections(1);
    bulk.statement_timeout = Duration::from_secs(3600);
    let bulk = resident_auth_postgres::connect(&url, &bulk).await.unwrap();
    let _ = sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(&pool)
        .await;
    migrate(&pool).await.unwrap();
    (pool, bulk)
}

/// Fills the library's tables to the volume, set-based (generate_series). Bulk accounts
/// are in region 77, apart from the measured residents' region 78.
async fn fill(pool: &PgPool) -> Duration {
    let now = now_ms();
    let (directory, cabinets, second_accounts, sessions, links, counters) = (
        rows(1_000_000.0),
        rows(300_000.0),
        rows(60_000.0),
        rows(1_000_000.0),
        rows(200_000.0),
        rows(300_000.0),
    );
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let statements = format!(
        "SET search_path = resident_auth;
         INSERT INTO directory (account_number, address, premises, surnames)
         SELECT '77' || lpad(i::text, 11, '0'), 'ул. Объёмная, д. ' || (i / 100) || ', кв. ' || (i % 100 + 1),
                (i % 100 + 1)::text, ARRAY['Петров']
           FROM generate_series(1, {directory}) i;
         INSERT INTO cabinets (id, email, password_hash, credential_version, version)
         SELECT decode(md5('c' || i), 'hex'), 'bulk' || i || '@example.org', '{hash}', 1, 1
           FROM generate_series(1, {cabinets}) i;
         INSERT INTO cabinet_accounts (account_number, cabinet_id, position)
         SELECT '77' || lpad(i::text, 11, '0'), decode(md5('c' || i), 'hex'), 1
           FROM generate_series(1, {cabinets}) i;
         INSERT INTO cabinet_accounts (account_number, cabinet_id, position)
         SELECT '77' || lpad(({cabinets} + i)::text, 11, '0'), decode(md5('c' || i), 'hex'), 2
           FROM generate_series(1, {second_accounts}) i;
         INSERT INTO sessions (token_hash, session_id, cabinet_id, credential_version,
                               active_account, created_at, last_used, expires_at, client, version)
         SELECT sha256(('s' || i)::bytea), decode(md5('sid' || i), 'hex'),
                decode(md5('c' || (i % {cabinets} + 1)), 'hex'), 1, NULL,
                {now} - 3600000, {now} - 1800000,
                CASE WHEN i % 5 = 0 THEN {now} + 1800000 ELSE {now} - 60000 END,
                'Firefox on Linux, 203.0.113.' || (i % 250), 1
           FROM generate_series(1, {sessions}) i;
         INSERT INTO links (token_hash, purpose, email, account_number, expires_at, version)
         SELECT sha256(('l' || i)::bytea), 'confirmation', 'pending' || i || '@example.org',
                '77' || lpad((500000 + i)::text, 11, '0'),
                CASE WHEN i % 10 = 0 THEN {now} + 86400000 ELSE {now} - 60000 END, 1
           FROM generate_series(1, {links}) i;
         INSERT INTO counters (key, subject, count, window_ends)
         SELECT 'login:cabinet:bulk' || i || '@example.org', 'bulk' || i || '@example.org', 1 + i % 4,
                CASE WHEN i % 2 = 0 THEN {now} + 900000 ELSE {now} - 60000 END
           FROM generate_series(1, {counters}) i;"
    );
    let started = Instant::now();
    sqlx::raw_sql(&statements).execute(pool).await.unwrap();
    // As autovacuum would have left a database that grew over months.
    sqlx::query("VACUUM ANALYZE").execute(pool).await.unwrap();
    started.elapsed()
}

fn config() -> AuthConfig {
    let open = Limit::new(u32::MAX, Duration::from_secs(1));
    let mut config = AuthConfig::new(Links::new("https://portal.example.org"));
    config.login_per_cabinet = open;
    config.login_per_cabinet_and_client = open;
    config.login_per_client = open;
    config.registration_per_client = open;
    // Each step's letter is sent in the step, as the walk reads it at once.
    config.delivery.in_request = true;
    config
}

fn steps(pool: &PgPool) -> JourneySteps {
    JourneySteps::with_hash_params(
        Arc::new(PgStore::new(pool.clone())),
        Arc::new(PgDirectory::new(pool.clone())),
        config(),
        HashParams::insecure_fast_for_tests(),
    )
}

async fn wal_lsn(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// WAL bytes written by `checks` checks of one session within its first minute, twice in
/// a row, and by the idle cluster over as long.
async fn wal_of_checks(pool: &PgPool, checks: usize) -> (i64, i64, i64) {
    let resident = RESIDENTS + 1;
    let mut one = steps(pool);
    one.walk(resident, None).await;
    let session = one.open_session(resident).await;
    let mut rounds = Vec::new();
    let mut elapsed = Duration::ZERO;
    for _ in 0..2 {
        let before = wal_lsn(pool).await;
        let started = Instant::now();
        for _ in 0..checks {
            one.check(&session).await;
        }
        elapsed = started.elapsed();
        rounds.push(wal_lsn(pool).await - before);
    }
    let before = wal_lsn(pool).await;
    tokio::time::sleep(elapsed).await;
    (rounds[0], rounds[1], wal_lsn(pool).await - before)
}

/// Adds `n` expired sessions (through `bulk`); then purges on `pool` and times it, with the
/// slowest statement.
async fn purge(pool: &PgPool, bulk: &PgPool, n: i64) -> (u64, Duration, f64, i64) {
    let now = now_ms();
    sqlx::raw_sql(&format!(
        "SET search_path = resident_auth;
         INSERT INTO sessions (token_hash, session_id, cabinet_id, credential_version,
                               created_at, last_used, expires_at, version)
         SELECT sha256(('backlog' || i)::bytea), decode(md5('backlog' || i), 'hex'),
                decode(md5('c' || (i % 1000 + 1)), 'hex'), 1,
                {now} - 7200000, {now} - 7200000, {now} - 3600000, 1
           FROM generate_series(1, {n}) i;
         ANALYZE sessions;"
    ))
    .execute(bulk)
    .await
    .unwrap();
    let _ = sqlx::query("SELECT pg_stat_statements_reset()")
        .execute(pool)
        .await;
    let store = PgStore::new(pool.clone());
    let started = Instant::now();
    let purged =
        resident_auth::ports::Store::purge_expired(&store, Timestamp::from_millis(now_ms()))
            .await
            .unwrap();
    let elapsed = started.elapsed();
    let slowest: Option<(f64, i64)> = sqlx::query_as(
        "SELECT max(max_exec_time), sum(calls)::bigint FROM pg_stat_statements
          WHERE query ILIKE '%DELETE FROM%ctid%'",
    )
    .fetch_optional(pool)
    .await
    .ok()
    .flatten();
    let (slowest, statements) = slowest.unwrap_or((f64::NAN, 0));
    (purged, elapsed, slowest, statements)
}

/// A directory CSV of the bulk accounts, `changed_every`-th address changed.
fn bulk_csv(n: i64, changed_every: Option<i64>) -> String {
    let mut csv = String::with_capacity(usize::try_from(n).unwrap() * 70);
    csv.push_str("account_number,surnames,address,premises\n");
    for i in 1..=n {
        let changed = changed_every.is_some_and(|every| i % every == 0);
        csv.push_str(&format!(
            "77{i:011},Петров,\"ул. Объёмная, д. {}, кв. {}{}\",{}\n",
            i / 100,
            i % 100 + 1,
            if changed {
                " (новый адрес)"
            } else {
                ""
            },
            i % 100 + 1
        ));
    }
    csv
}

#[tokio::main]
async fn main() {
    if std::env::var("SCALE_STORE").as_deref() == Ok("sqlite") {
        sqlite().await;
        return;
    }
    let admin_url = database_url();
    let admin = resident_auth_postgres::connect(&admin_url, &PoolConfig::default())
        .await
        .unwrap();
    let (empty, _) = database(&admin, &admin_url, "scale_empty").await;
    let (volume, bulk) = database(&admin, &admin_url, "scale_volume").await;
    if std::env::var("SCALE_PART").as_deref() == Ok("purge") {
        // The purge alone, on a database holding only the backlog.
        let backlog = rows(5_000_000.0);
        sqlx::raw_sql(
            "INSERT INTO resident_auth.cabinets (id, email, password_hash, credential_version, version)
             SELECT decode(md5('c' || i), 'hex'), 'bulk' || i || '@example.org', '$argon2id$x', 1, 1
               FROM generate_series(1, 1000) i",
        )
        .execute(&bulk)
        .await
        .unwrap();
        let (purged, elapsed, slowest, statements) = purge(&volume, &bulk, backlog).await;
        println!(
            "purge of a {backlog}-row session backlog: {purged} rows in {:.1} s, {statements} statements, slowest {slowest:.0} ms (statement_timeout 5,000 ms)",
            elapsed.as_secs_f64()
        );
        return;
    }
    let filled = fill(&bulk).await;
    let residents = directory(RESIDENTS + 8);
    for pool in [&empty, &volume] {
        import_directory(pool, &residents).await.unwrap();
    }
    println!(
        "filled to volume (scale {}) in {:.1} s",
        scale(),
        filled.as_secs_f64()
    );

    // Journey steps, residents alternating between the two databases.
    let (mut on_empty, mut on_volume) = (steps(&empty), steps(&volume));
    for i in 0..RESIDENTS {
        let count = i == RESIDENTS - 1;
        on_empty.walk(i, count.then_some(&empty)).await;
        on_volume.walk(i, count.then_some(&volume)).await;
    }
    println!();
    println!("| journey step | p50 empty | p50 at volume | ÷ | p99 empty | p99 at volume | ÷ | round trips (empty / volume) |");
    println!("|---|---|---|---|---|---|---|---|");
    for ((name, p50e, p99e, te), (_, p50v, p99v, tv)) in
        on_empty.summary().into_iter().zip(on_volume.summary())
    {
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {:.2} | {:.2} ms | {:.2} ms | {:.2} | {} / {} |",
            ms(p50e),
            ms(p50v),
            ms(p50v) / ms(p50e),
            ms(p99e),
            ms(p99v),
            ms(p99v) / ms(p99e),
            te.map_or("n/a".into(), |t| t.to_string()),
            tv.map_or("n/a".into(), |t| t.to_string()),
        );
    }

    let (first, second, idle) = wal_of_checks(&volume, 1000).await;
    println!();
    println!(
        "WAL of 1,000 session checks within the minute (cluster-wide LSN): {first} bytes, then {second} bytes for 1,000 more; the idle cluster over as long: {idle} bytes"
    );

    let imported = rows(1_000_000.0);
    let unchanged = bulk_csv(imported, None);
    let started = Instant::now();
    let report = import_directory(&volume, &unchanged).await.unwrap();
    println!(
        "re-import of {imported} unchanged directory rows: {:.2} s ({report:?})",
        started.elapsed().as_secs_f64()
    );
    let changed = bulk_csv(imported, Some(100));
    let started = Instant::now();
    let report = import_directory(&volume, &changed).await.unwrap();
    println!(
        "re-import with 1 % changed: {:.2} s ({report:?})",
        started.elapsed().as_secs_f64()
    );

    let backlog = rows(5_000_000.0);
    let (purged, elapsed, slowest, statements) = purge(&volume, &bulk, backlog).await;
    println!(
        "purge of a {backlog}-row session backlog (+ the volume's expired rows): {purged} rows in {:.1} s, {statements} statements, slowest {slowest:.0} ms (statement_timeout 5,000 ms)",
        elapsed.as_secs_f64()
    );

    bulk.close().await;
    for (pool, name) in [(empty, "scale_empty"), (volume, "scale_volume")] {
        pool.close().await;
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&admin)
            .await;
    }
}

// ---- SQLite ----------------------------------------------------------------------------

/// The volume above in a SQLite file, set-based (a recursive counter): ids and digests are
/// the row number, zero-padded to their length.
async fn fill_sqlite(pool: &sqlx::SqlitePool) -> Duration {
    let now = now_ms();
    let (directory, cabinets, second_accounts, sessions, links, counters) = (
        rows(1_000_000.0),
        rows(300_000.0),
        rows(60_000.0),
        rows(1_000_000.0),
        rows(200_000.0),
        rows(300_000.0),
    );
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let series = |n: i64| {
        format!("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})")
    };
    let statements = format!(
        "BEGIN;
         INSERT INTO resident_auth_directory (account_number, address, premises, surnames)
         {d} SELECT '77' || printf('%011d', i), 'ул. Объёмная, д. ' || (i / 100) || ', кв. ' || (i % 100 + 1),
                (i % 100 + 1), 'Петров' FROM n;
         INSERT INTO resident_auth_cabinets (id, email, password_hash, credential_version, version)
         {c} SELECT CAST(printf('c%015d', i) AS BLOB), 'bulk' || i || '@example.org', '{hash}', 1, 1 FROM n;
         INSERT INTO resident_auth_cabinet_accounts (account_number, cabinet_id, position)
         {c} SELECT '77' || printf('%011d', i), CAST(printf('c%015d', i) AS BLOB), 1 FROM n;
         INSERT INTO resident_auth_cabinet_accounts (account_number, cabinet_id, position)
         {a} SELECT '77' || printf('%011d', {cabinets} + i), CAST(printf('c%015d', i) AS BLOB), 2 FROM n;
         INSERT INTO resident_auth_sessions (token_hash, session_id, cabinet_id, credential_version,
                               active_account, created_at, last_used, expires_at, client, version)
         {s} SELECT CAST(printf('s%031d', i) AS BLOB), CAST(printf('i%015d', i) AS BLOB),
                CAST(printf('c%015d', i % {cabinets} + 1) AS BLOB), 1, NULL,
                {now} - 3600000, {now} - 1800000,
                CASE WHEN i % 5 = 0 THEN {now} + 1800000 ELSE {now} - 60000 END,
                'Firefox on Linux, 203.0.113.' || (i % 250), 1 FROM n;
         INSERT INTO resident_auth_links (token_hash, purpose, email, account_number, expires_at, version)
         {l} SELECT CAST(printf('l%031d', i) AS BLOB), 'confirmation', 'pending' || i || '@example.org',
                '77' || printf('%011d', 500000 + i),
                CASE WHEN i % 10 = 0 THEN {now} + 86400000 ELSE {now} - 60000 END, 1 FROM n;
         INSERT INTO resident_auth_counters (key, subject, count, window_ends)
         {k} SELECT 'login:cabinet:bulk' || i || '@example.org', 'bulk' || i || '@example.org', 1 + i % 4,
                CASE WHEN i % 2 = 0 THEN {now} + 900000 ELSE {now} - 60000 END FROM n;
         COMMIT;
         ANALYZE;",
        d = series(directory),
        c = series(cabinets),
        a = series(second_accounts),
        s = series(sessions),
        l = series(links),
        k = series(counters),
    );
    let started = Instant::now();
    sqlx::raw_sql(&statements).execute(pool).await.unwrap();
    started.elapsed()
}

fn sqlite_steps(pool: &sqlx::SqlitePool) -> JourneySteps {
    JourneySteps::with_hash_params(
        Arc::new(resident_auth_sqlite::SqliteStore::new(pool.clone())),
        Arc::new(resident_auth_sqlite::SqliteDirectory::new(pool.clone())),
        config(),
        HashParams::insecure_fast_for_tests(),
    )
}

async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let options = resident_auth_sqlite::SqliteOptions::default();
    let empty = resident_auth_sqlite::open(dir.path().join("empty.db"), &options)
        .await
        .unwrap();
    let volume = resident_auth_sqlite::open(dir.path().join("volume.db"), &options)
        .await
        .unwrap();
    let filled = fill_sqlite(&volume).await;
    let residents = directory(RESIDENTS + 8);
    for pool in [&empty, &volume] {
        resident_auth_sqlite::import_directory(pool, &residents)
            .await
            .unwrap();
    }
    let bytes = std::fs::metadata(dir.path().join("volume.db")).map_or(0, |m| m.len());
    println!(
        "SQLite filled to volume (scale {}) in {:.1} s: {:.0} MiB",
        scale(),
        filled.as_secs_f64(),
        bytes as f64 / 1048576.0
    );
    let (mut on_empty, mut on_volume) = (sqlite_steps(&empty), sqlite_steps(&volume));
    for i in 0..RESIDENTS {
        on_empty.walk(i, None).await;
        on_volume.walk(i, None).await;
    }
    println!();
    println!(
        "| journey step (SQLite) | p50 empty | p50 at volume | ÷ | p99 empty | p99 at volume | ÷ |"
    );
    println!("|---|---|---|---|---|---|---|");
    for ((name, p50e, p99e, _), (_, p50v, p99v, _)) in
        on_empty.summary().into_iter().zip(on_volume.summary())
    {
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {:.2} | {:.2} ms | {:.2} ms | {:.2} |",
            ms(p50e),
            ms(p50v),
            ms(p50v) / ms(p50e),
            ms(p99e),
            ms(p99v),
            ms(p99v) / ms(p99e),
        );
    }
    let imported = rows(1_000_000.0);
    let started = Instant::now();
    let report = resident_auth_sqlite::import_directory(&volume, &bulk_csv(imported, None))
        .await
        .unwrap();
    println!(
        "re-import of {imported} unchanged directory rows: {:.2} s ({report:?})",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let report = resident_auth_sqlite::import_directory(&volume, &bulk_csv(imported, Some(100)))
        .await
        .unwrap();
    println!(
        "re-import with 1 % changed: {:.2} s ({report:?})",
        started.elapsed().as_secs_f64()
    );
    let store = resident_auth_sqlite::SqliteStore::new(volume.clone());
    let started = Instant::now();
    let purged =
        resident_auth::ports::Store::purge_expired(&store, Timestamp::from_millis(now_ms()))
            .await
            .unwrap();
    println!(
        "purge of the volume's expired rows: {purged} rows in {:.1} s (batches of 10,000)",
        started.elapsed().as_secs_f64()
    );
}
