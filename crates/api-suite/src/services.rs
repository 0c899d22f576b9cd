//! The real services an example can run on: PostgreSQL (`DATABASE_URL` when set, else a
//! throwaway cluster started once per test binary, `scripts/throwaway-postgres.sh`) with a
//! fresh database per server, and an SMTP server (aiosmtpd, the SMTP adapter's
//! `tests/smtp_server.py`) whose received letters are read like the outbox's.

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::{Path, PathBuf},
    process::Stdio,
    sync::OnceLock,
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, BufReader as AsyncBufReader},
    process::{Child, Command},
};

static POSTGRES: OnceLock<String> = OnceLock::new();

/// The URL of a database on the test server that may create databases.
pub fn admin_url() -> &'static str {
    POSTGRES.get_or_init(|| std::env::var("DATABASE_URL").unwrap_or_else(|_| throwaway_cluster("")))
}

/// Starts a throwaway cluster on 127.0.0.1 (`scripts/throwaway-postgres.sh`, server options
/// `extra_options` added) that stops when this process exits; its admin URL.
///
/// # Panics
/// If the cluster does not start (no `initdb`: install the postgresql package).
#[must_use]
pub fn throwaway_cluster(extra_options: &str) -> String {
    let port = free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/throwaway-postgres.sh");
    let mut child = std::process::Command::new("bash")
        .arg(script)
        .arg(port.to_string())
        .env("WATCH_PID", std::process::id().to_string())
        .env("PG_EXTRA_OPTS", extra_options)
        .stdout(Stdio::piped())
        .spawn()
        .expect("bash scripts/throwaway-postgres.sh");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // The script watches this process and stops the cluster when it exits.
    std::mem::forget(child);
    line.trim()
        .strip_prefix("READY ")
        .unwrap_or_else(|| panic!("throwaway PostgreSQL did not start: {line:?}"))
        .to_owned()
}

/// A new, empty database on the test server; its URL. The example migrates it.
pub async fn fresh_database() -> String {
    use sqlx::Connection as _;
    let mut admin = sqlx::PgConnection::connect(admin_url())
        .await
        .expect("connect to the test PostgreSQL");
    let name = format!("api_suite_{:016x}", rand_u64());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let (base, _) = admin_url().rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    hasher.finish()
}

/// A port of 127.0.0.1 with nothing listening (bound, then released).
#[must_use]
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running SMTP server on 127.0.0.1 that writes every letter it accepts to a folder.
pub struct SmtpSink {
    /// `smtp://127.0.0.1:<port>?tls=none`.
    pub url: String,
    /// Where received letters are written (`NNNNN.eml`).
    pub maildir: PathBuf,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts the server (a port taken between the pick and the bind is retried).
    pub async fn start() -> Self {
        Self::start_on(None).await
    }

    /// Starts the server on `port` (one an example was told of while nothing listened
    /// there: the mail server coming back), or on a free port.
    pub async fn start_on(port: Option<u16>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("mail");
        std::fs::create_dir_all(&maildir).unwrap();
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../adapters/smtp/tests/smtp_server.py");
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
        for _ in 0..5 {
            let port = port.unwrap_or_else(free_port);
            let mut child = Command::new(&python)
                .arg(&script)
                .arg("--port")
                .arg(port.to_string())
                .arg("--maildir")
                .arg(&maildir)
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("python3 with aiosmtpd (scripts/test.sh installs it)");
            let mut lines = AsyncBufReader::new(child.stdout.take().unwrap()).lines();
            let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("the SMTP server did not start in 30 s")
                .unwrap();
            if ready.as_deref() == Some("READY") {
                return Self {
                    url: format!("smtp://127.0.0.1:{port}?tls=none"),
                    maildir,
                    _child: child,
                    _dir: dir,
                };
            }
        }
        panic!("the SMTP server failed to start on five free ports");
    }
}

/// Makes the database at `url` refuse every connection, and ends those it has: what an
/// example sees when its database goes away.
pub async fn make_unreachable(url: &str) {
    use sqlx::Connection as _;
    let name = url.rsplit_once('/').unwrap().1.to_owned();
    let mut admin = sqlx::PgConnection::connect(admin_url())
        .await
        .expect("connect to the test PostgreSQL");
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&name)
        .execute(&mut admin)
        .await
        .unwrap();
}

/// The columns of the library's schema (the settlement center's directory aside: it is
/// their registry, not the resident's data) where `needle` occurs: every text, bytea and
/// array column, bytes searched as bytes and as their hex text.
pub async fn columns_mentioning(pool: &sqlx::PgPool, needle: &str) -> Vec<String> {
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text
           FROM information_schema.columns
          WHERE table_schema = 'resident_auth' AND table_name <> 'directory'
            AND data_type IN ('text', 'character varying', 'bytea', 'ARRAY', 'jsonb')",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(columns.len() >= 10, "{columns:?}");
    let mut found = Vec::new();
    for (table, column, kind) in columns {
        let condition = if kind == "bytea" {
            format!("position(convert_to($1, 'UTF8') in {column}) > 0 OR {column}::text LIKE '%' || $1 || '%'")
        } else {
            format!("{column}::text LIKE '%' || $1 || '%'")
        };
        let sql = format!("SELECT count(*) FROM resident_auth.{table} WHERE {condition}");
        let count: i64 = sqlx::query_scalar(&sql)
            .bind(needle)
            .fetch_one(pool)
            .await
            .unwrap();
        if count > 0 {
            found.push(format!("{table}.{column}"));
        }
    }
    found
}

static REDIS: OnceLock<String> = OnceLock::new();

/// The URL of the tests' Redis: `REDIS_URL` when set, else a throwaway `redis-server`
/// (`scripts/throwaway-redis.sh`) started once per test binary. Each server that uses it
/// gets a key prefix of its own.
///
/// # Panics
/// If the throwaway server does not start (no `redis-server`: install the package).
pub fn redis_url() -> &'static str {
    REDIS.get_or_init(|| {
        if let Ok(url) = std::env::var("REDIS_URL") {
            return url;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/throwaway-redis.sh");
        let mut child = std::process::Command::new("bash")
            .arg(script)
            .arg(free_port().to_string())
            .env("WATCH_PID", std::process::id().to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("bash scripts/throwaway-redis.sh");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        std::mem::forget(child);
        line.trim()
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("throwaway Redis did not start: {line:?}"))
            .to_owned()
    })
}
