//! A PostgreSQL server for the tests: `DATABASE_URL` when set, else a throwaway cluster
//! started once per test binary (it stops when the binary exits). Each test gets its own
//! freshly migrated database, so tests run in parallel.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::Path,
    process::{Command, Stdio},
    sync::OnceLock,
};

use resident_auth_postgres::{connect, migrate, PgPool, PgStore, PoolConfig};

static SERVER: OnceLock<String> = OnceLock::new();

/// The URL of a database on the server that may create databases.
pub fn admin_url() -> &'static str {
    SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            return url;
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/throwaway-postgres.sh");
        let mut child = Command::new("bash")
            .arg(script)
            .arg(port.to_string())
            .env("WATCH_PID", std::process::id().to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("bash scripts/throwaway-postgres.sh");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("throwaway PostgreSQL did not start (is the postgresql package installed?): {line:?}"))
            .to_owned();
        // The script watches this process and cleans up when it exits.
        std::mem::forget(child);
        url
    })
}

/// The URL of database `name` on the test server.
pub fn database_url(name: &str) -> String {
    let mut url = url::Url::parse(admin_url()).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// A new, empty, migrated database; returns its URL.
pub async fn fresh_database() -> String {
    let url = empty_database().await;
    let pool = pool(&url, 4).await;
    migrate(&pool).await.unwrap();
    pool.close().await;
    url
}

/// A new database with nothing in it; returns its URL.
pub async fn empty_database() -> String {
    let admin = connect(admin_url(), &PoolConfig::with_max_connections(2))
        .await
        .expect("connect to the test server");
    let name = format!("resident_auth_test_{:016x}", rand::random::<u64>());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    database_url(&name)
}

pub async fn pool(url: &str, max_connections: u32) -> PgPool {
    connect(url, &PoolConfig::with_max_connections(max_connections))
        .await
        .unwrap()
}

/// A store on a fresh database: what the conformance suite runs on.
pub async fn fresh_store() -> PgStore {
    let url = fresh_database().await;
    PgStore::new(pool(&url, 25).await)
}
